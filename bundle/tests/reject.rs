//! Bundles that must be refused, and why.

mod common;

use common::*;
use tensorwasm_bundle::*;

fn open(bytes: &[u8], k: &SigningKey) -> Result<()> {
    VerifiedBundle::open(bytes, &trust(&[k]), NOW).map(|_| ())
}

fn set_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn untrusted_key() {
    let (a, b) = (key(1), key(2));
    let bytes = sample_bundle(&[&a]);
    let e = open(&bytes, &b).unwrap_err();
    assert_eq!(
        e,
        Error::UntrustedKey {
            key_ids: vec![a.public().key_id()]
        }
    );
    assert!(e.to_string().contains(&a.public().key_id().to_string()));
    let e = VerifiedBundle::open(&bytes, &TrustedKeys::default(), NOW).unwrap_err();
    assert!(matches!(e, Error::UntrustedKey { .. }));
}

#[test]
fn unsigned_bundle() {
    let k = key(1);
    let m = postcard::to_stdvec(&sample_manifest()).unwrap();
    let bytes = spec_assemble(&m, &[0], &[]);
    assert_eq!(open(&bytes, &k).unwrap_err(), Error::NoSignatures);
    assert_eq!(inspect_untrusted(&bytes).unwrap_err(), Error::NoSignatures);
    let bytes = spec_assemble(&m, &[], &[]);
    assert!(matches!(
        open(&bytes, &k),
        Err(Error::Truncated {
            what: "signature block",
            ..
        })
    ));
}

#[test]
fn truncated_at_every_length() {
    let k = key(1);
    let bytes = sample_bundle(&[&k]);
    for len in 0..bytes.len() {
        let cut = &bytes[..len];
        let e = open(cut, &k).unwrap_err();
        assert!(e.is_before_decompression(), "len {len}: {e}");
        assert!(inspect_untrusted(cut).is_err(), "len {len}");
    }
    assert!(open(&bytes, &k).is_ok());
}

#[test]
fn trailing_byte() {
    let k = key(1);
    let mut bytes = sample_bundle(&[&k]);
    let len = bytes.len() as u64;
    bytes.push(0);
    assert_eq!(
        open(&bytes, &k).unwrap_err(),
        Error::TrailingBytes {
            offset: len,
            count: 1
        }
    );
    assert!(matches!(
        inspect_untrusted(&bytes),
        Err(Error::TrailingBytes { .. })
    ));
}

#[test]
fn bad_magic_future_version_flags() {
    let k = key(1);
    let good = sample_bundle(&[&k]);
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(
        open(&b, &k).unwrap_err(),
        Error::BadMagic { found: *b"XWB\0" }
    );
    let mut b = good.clone();
    b[4] = 2;
    assert_eq!(
        open(&b, &k).unwrap_err(),
        Error::UnsupportedVersion {
            found: 2,
            supported: FORMAT_VERSION
        }
    );
    let mut b = good.clone();
    b[6] = 1;
    assert_eq!(
        open(&b, &k).unwrap_err(),
        Error::UnsupportedFlags { flags: 1 }
    );
}

#[test]
fn oversized_lengths_rejected_from_the_header_alone() {
    let k = key(1);
    let mut header = sample_bundle(&[&k])[..16].to_vec();
    set_u32(&mut header, 8, caps::MAX_MANIFEST as u32 + 1);
    let e = open(&header, &k).unwrap_err();
    assert!(
        matches!(&e, Error::TooLarge { what, .. } if what.starts_with("manifest_len")),
        "{e}"
    );

    let mut header = sample_bundle(&[&k])[..16].to_vec();
    set_u32(&mut header, 12, caps::MAX_SIG_BLOCK as u32 + 1);
    let e = open(&header, &k).unwrap_err();
    assert!(
        matches!(&e, Error::TooLarge { what, .. } if what.starts_with("sig_block_len")),
        "{e}"
    );

    // At the caps exactly, the header is fine and the file is merely short.
    let mut header = sample_bundle(&[&k])[..16].to_vec();
    set_u32(&mut header, 8, caps::MAX_MANIFEST as u32);
    assert!(matches!(open(&header, &k), Err(Error::Truncated { .. })));
}

#[test]
fn signature_block_caps_and_shape() {
    let k = key(1);
    let m = postcard::to_stdvec(&sample_manifest()).unwrap();
    // 17 signatures: count over the cap.
    let seeds: Vec<[u8; 32]> = (1..=17).map(seed).collect();
    let bytes = craft_bytes(&m, &seeds, &[]);
    assert!(matches!(open(&bytes, &k), Err(Error::TooLarge { .. })));
    // 16 signatures are fine (and one of them is trusted).
    let bytes = craft_bytes(&m, &seeds[..16], &[]);
    assert!(open(&bytes, &k).is_ok());
    // Length not matching count.
    let mut block = spec_sig_block(&m, &[seed(1)]);
    block.push(0);
    assert!(matches!(
        open(&spec_assemble(&m, &block, &[]), &k),
        Err(Error::Layout(_))
    ));
    // Duplicate entries (not strictly increasing).
    let one = spec_sig_block(&m, &[seed(1)]);
    let mut dup = vec![2u8];
    dup.extend_from_slice(&one[1..]);
    dup.extend_from_slice(&one[1..]);
    assert!(matches!(
        open(&spec_assemble(&m, &dup, &[]), &k),
        Err(Error::Layout(_))
    ));
    // Unsorted entries.
    let two = spec_sig_block(&m, &[seed(1), seed(2)]);
    let mut swapped = vec![2u8];
    swapped.extend_from_slice(&two[1 + SIGNATURE_ENTRY_LEN..]);
    swapped.extend_from_slice(&two[1..1 + SIGNATURE_ENTRY_LEN]);
    assert!(matches!(
        open(&spec_assemble(&m, &swapped, &[]), &k),
        Err(Error::Layout(_))
    ));
}

#[test]
fn any_invalid_signature_rejects_even_with_a_valid_trusted_one() {
    let (a, b) = (key(1), key(2));
    let bytes = sample_bundle(&[&a, &b]);
    let layout = inspect_untrusted(&bytes).unwrap().2;
    let block_start = 16 + layout.manifest_len;
    for entry in 0..2 {
        let mut t = bytes.clone();
        let sig_at = block_start + 1 + entry * SIGNATURE_ENTRY_LEN + 8 + 32;
        t[sig_at + 5] ^= 1;
        let e = open(&t, &a).unwrap_err();
        assert!(matches!(e, Error::BadSignature { .. }), "{e}");
        assert!(matches!(
            inspect_untrusted(&t),
            Err(Error::BadSignature { .. })
        ));
    }
}

#[test]
fn signature_by_a_weak_embedded_key_is_rejected() {
    let k = key(1);
    let m = postcard::to_stdvec(&sample_manifest()).unwrap();
    let mut block = spec_sig_block(&m, &[seed(1)]);
    // Replace the key with the identity point and fix up its key id: a forged "signature"
    // (R = identity, S = 0) verifies under the lax check for any message.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut forged = KeyId(spec_key_id(&identity)).0.to_vec();
    forged.extend_from_slice(&identity);
    forged.extend_from_slice(&identity);
    forged.extend_from_slice(&[0u8; 32]);
    let mut entries = [block[1..].to_vec(), forged];
    entries.sort();
    block = vec![2];
    block.extend_from_slice(&entries.concat());
    let e = open(&spec_assemble(&m, &block, &[]), &k).unwrap_err();
    assert!(matches!(e, Error::BadSignature { .. }), "{e}");
}

#[test]
fn key_id_must_match_embedded_key() {
    let k = key(1);
    let m = postcard::to_stdvec(&sample_manifest()).unwrap();
    let mut block = spec_sig_block(&m, &[seed(1)]);
    block[1] ^= 0x80;
    let e = open(&spec_assemble(&m, &block, &[]), &k).unwrap_err();
    assert!(matches!(e, Error::KeyIdMismatch { .. }), "{e}");
}

#[test]
fn signed_but_malformed_manifests() {
    let k = key(1);
    let good = postcard::to_stdvec(&sample_manifest()).unwrap();
    // Trailing byte inside the manifest.
    let mut m = good.clone();
    m.push(0);
    let e = open(&craft_bytes(&m, &[seed(1)], &[]), &k).unwrap_err();
    assert!(matches!(e, Error::Manifest(_)), "{e}");
    // Overlong varint for `version` (7 encoded as 0x87 0x00): same value, not canonical.
    let name_len = 1 + "matmul".len();
    assert_eq!(m[name_len], 7);
    let mut m = good[..name_len].to_vec();
    m.extend_from_slice(&[0x87, 0x00]);
    m.extend_from_slice(&good[name_len + 1..]);
    let e = open(&craft_bytes(&m, &[seed(1)], &[]), &k).unwrap_err();
    assert!(e.to_string().contains("canonical"), "{e}");
    // Garbage.
    let e = open(&craft_bytes(&[0xff; 40], &[seed(1)], &[]), &k).unwrap_err();
    assert!(matches!(e, Error::Manifest(_)), "{e}");
}

#[test]
fn caps_enforced_on_signed_manifests() {
    let k = key(1);
    let too_many_sections = manifest_with_sections(vec![
        entry(SectionKind::Wasm, b"", 0);
        caps::MAX_SECTIONS + 1
    ]);
    let e = open(&craft(&too_many_sections, &[seed(1)], &[]), &k).unwrap_err();
    assert!(matches!(e, Error::Manifest(_)), "{e}");

    let long_name = Manifest {
        name: "x".repeat(caps::MAX_STRING + 1),
        ..sample_manifest()
    };
    let e = open(&craft(&long_name, &[seed(1)], &[]), &k).unwrap_err();
    assert!(matches!(e, Error::Manifest(_)), "{e}");

    let huge = manifest_with_sections(vec![SectionEntry {
        kind: SectionKind::Code,
        stored_len: caps::MAX_SECTION_STORED + 1,
        raw_len: 1,
        hash: [0; 32],
    }]);
    let e = open(&craft(&huge, &[seed(1)], &[]), &k).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");

    let huge_raw = manifest_with_sections(vec![SectionEntry {
        kind: SectionKind::Code,
        stored_len: 0,
        raw_len: caps::MAX_SECTION_RAW + 1,
        hash: [0; 32],
    }]);
    let e = open(&craft(&huge_raw, &[seed(1)], &[]), &k).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");

    // A vector length prefix far over the cap is refused before anything is allocated for it.
    let mut m = postcard::to_stdvec(&Manifest {
        exports: vec![],
        ..sample_manifest()
    })
    .unwrap();
    let exports_at = m.len() - 3; // exports, targets, sections: three empty vectors at the end
    m.splice(exports_at..exports_at + 1, [0xff, 0xff, 0xff, 0xff, 0x0f]);
    let e = open(&craft_bytes(&m, &[seed(1)], &[]), &k).unwrap_err();
    assert!(matches!(e, Error::Manifest(_)), "{e}");
}

#[test]
fn target_must_point_at_a_code_section() {
    let k = key(1);
    let mut m = manifest_with_sections(vec![entry(SectionKind::Wasm, b"", 0)]);
    m.targets.push(Target {
        triple: "t".into(),
        wasmtime_version: "v".into(),
        engine_fingerprint: [0; 32],
        engine_profile: String::new(),
        cpu_features: vec![],
        code_section: 3,
    });
    let e = open(&craft(&m, &[seed(1)], &[b""]), &k).unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
}

#[test]
fn section_table_must_cover_the_file_exactly() {
    let k = key(1);
    let m = manifest_with_sections(vec![entry(SectionKind::Wasm, b"abcd", 4)]);
    let e = open(&craft(&m, &[seed(1)], &[b"abc"]), &k).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Truncated {
                what: "sections",
                ..
            }
        ),
        "{e}"
    );
    let e = open(&craft(&m, &[seed(1)], &[b"abcde"]), &k).unwrap_err();
    assert!(matches!(e, Error::TrailingBytes { count: 1, .. }), "{e}");
}

#[test]
fn error_messages_have_no_trailing_period() {
    let k = key(1);
    let errors = [
        open(&[], &k).unwrap_err(),
        open(b"XXXXXXXXXXXXXXXXXXXX", &k).unwrap_err(),
        Error::SectionInflates {
            index: 1,
            raw_len: 2,
        },
        Error::BadKeyId("x".into()),
    ];
    for e in errors {
        let s = e.to_string();
        assert!(!s.ends_with('.'), "{s}");
        assert!(e.is_before_decompression() || matches!(e, Error::SectionInflates { .. }));
    }
}
