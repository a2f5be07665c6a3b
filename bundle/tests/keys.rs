//! Key files, key ids and the trust list.

mod common;

use common::*;
use tensorwasm_bundle::*;

#[test]
fn key_files_round_trip() {
    let k = SigningKey::generate();
    let text = k.to_file_text();
    assert!(text.starts_with(&format!(
        "tensorwasm-secret-key v1 {}\n",
        k.public().key_id()
    )));
    let back = SigningKey::from_file_text(&text).unwrap();
    assert_eq!(back.public(), k.public());

    let p = k.public();
    let text = p.to_file_text();
    assert_eq!(
        text,
        format!(
            "tensorwasm-public-key v1 {}\n{}\n",
            p.key_id(),
            hex::encode(p.to_bytes())
        )
    );
    assert_eq!(PublicKey::from_file_text(&text).unwrap(), p);
    // Tolerates CRLF and a missing final newline.
    assert_eq!(
        PublicKey::from_file_text(&text.replace('\n', "\r\n")).unwrap(),
        p
    );
    assert_eq!(PublicKey::from_file_text(text.trim_end()).unwrap(), p);
}

#[test]
fn debug_does_not_leak_the_secret() {
    let k = key(5);
    let secret = hex::encode([5u8; 32]);
    assert!(!format!("{k:?}").contains(&secret));
    assert!(format!("{k:?}").contains(&k.public().key_id().to_string()));
}

#[test]
fn wrong_key_id_is_rejected() {
    let (a, b) = (key(1), key(2));
    let text = a.public().to_file_text().replace(
        &a.public().key_id().to_string(),
        &b.public().key_id().to_string(),
    );
    assert!(matches!(
        PublicKey::from_file_text(&text),
        Err(Error::KeyIdMismatch { .. })
    ));
    let text = a.to_file_text().replace(
        &a.public().key_id().to_string(),
        &b.public().key_id().to_string(),
    );
    assert!(matches!(
        SigningKey::from_file_text(&text),
        Err(Error::KeyIdMismatch { .. })
    ));
}

#[test]
fn bad_hex_and_shapes_are_rejected() {
    let p = key(1).public();
    let good = p.to_file_text();
    let id = p.key_id().to_string();
    let hexed = hex::encode(p.to_bytes());
    let cases = [
        good.replace(&hexed, &format!("{}zz", &hexed[..62])),
        good.replace(&hexed, &hexed[..62]),
        good.replace(&id, "0123"),
        good.replace(&id, "zzzzzzzzzzzzzzzz"),
        good.replace("v1", "v2"),
        good.replace("tensorwasm-public-key", "tensorwasm-secret-key"),
        format!("{good}extra\n"),
        good.lines().next().unwrap().to_owned(),
        String::new(),
        "x".repeat(5000),
    ];
    for c in cases {
        assert!(PublicKey::from_file_text(&c).is_err(), "accepted {c:?}");
    }
    // A public key file is not a secret key file.
    assert!(matches!(
        SigningKey::from_file_text(&good),
        Err(Error::BadKeyFile(_))
    ));
}

#[test]
fn weak_and_invalid_keys_are_rejected() {
    // The identity point (small order) and a byte string that is not a point.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let not_a_point = {
        let mut b = [0u8; 32];
        b[0] = 2;
        b
    };
    for bytes in [identity, not_a_point] {
        assert!(matches!(
            PublicKey::from_bytes(&bytes),
            Err(Error::BadKeyFile(_))
        ));
        let id = KeyId(spec_key_id(&bytes));
        let text = format!("tensorwasm-public-key v1 {id}\n{}\n", hex::encode(bytes));
        let e = PublicKey::from_file_text(&text).unwrap_err();
        assert!(matches!(e, Error::BadKeyFile(_)), "{e}");
    }
}

#[test]
fn key_ids() {
    let p = key(1).public();
    let id = p.key_id();
    assert_eq!(id.0, spec_key_id(&p.to_bytes()));
    let s = id.to_string();
    assert_eq!(s.len(), 16);
    assert_eq!(s.parse::<KeyId>().unwrap(), id);
    assert_eq!(s.to_uppercase().parse::<KeyId>().unwrap(), id);
    assert!("abc".parse::<KeyId>().is_err());
    assert!("0123456789abcdeg".parse::<KeyId>().is_err());
    assert!("ü123456789abcde".parse::<KeyId>().is_err());
    assert_ne!(key(2).public().key_id(), id);
}

#[test]
fn trusted_keys() {
    let (a, b) = (key(1), key(2));
    assert!(TrustedKeys::new(vec![]).is_empty());
    let t = TrustedKeys::new(vec![a.public(), b.public(), a.public()]);
    assert_eq!(t.len(), 2);
    assert!(t.contains(&a.public()));
    assert!(!t.contains(&key(3).public()));
    assert_eq!(t.iter().count(), 2);
}
