//! Writing then reading gives back what was written, deterministically.

mod common;

use common::*;
use tensorwasm_bundle::*;

#[test]
fn round_trip_one_signer() {
    let k = key(1);
    let bytes = sample_bundle(&[&k]);
    let b = VerifiedBundle::open(&bytes, &trust(&[&k]), NOW).unwrap();
    assert_eq!(b.manifest().name, "matmul");
    assert_eq!(b.manifest().sections.len(), 2);
    assert_eq!(b.section(0).unwrap(), WASM);
    assert_eq!(b.section(1).unwrap(), CODE);
    assert_eq!(b.manifest().targets[0].code_section, 1);
    let stored = b.section_stored(1).unwrap();
    assert_eq!(stored.len() as u64, b.manifest().sections[1].stored_len);
    assert_eq!(b.signatures().len(), 1);
    assert_eq!(b.signatures()[0].key_id, k.public().key_id());
    assert!(b.signatures()[0].trusted);
    assert!(matches!(
        b.section(2),
        Err(Error::NoSuchSection { index: 2, count: 2 })
    ));
    assert!(matches!(
        b.section_stored(u32::MAX),
        Err(Error::NoSuchSection { .. })
    ));
}

#[test]
fn round_trip_two_signers_one_trusted() {
    let (a, b) = (key(1), key(2));
    let bytes = sample_bundle(&[&b, &a]);
    for trusted in [trust(&[&a]), trust(&[&b]), trust(&[&a, &b])] {
        let v = VerifiedBundle::open(&bytes, &trusted, NOW).unwrap();
        assert_eq!(v.section(0).unwrap(), WASM);
        let sigs = v.signatures();
        assert_eq!(sigs.len(), 2);
        assert!(
            sigs[0].key_id < sigs[1].key_id,
            "signatures sorted by key id"
        );
        for s in sigs {
            assert_eq!(s.trusted, trusted.contains(&s.public_key));
            assert_eq!(s.key_id, s.public_key.key_id());
        }
    }
}

#[test]
fn writes_are_byte_identical() {
    let (a, b) = (key(1), key(2));
    assert_eq!(sample_bundle(&[&a]), sample_bundle(&[&a]));
    // Signer order does not matter: signatures are sorted by key id.
    assert_eq!(sample_bundle(&[&a, &b]), sample_bundle(&[&b, &a]));
    assert_ne!(sample_bundle(&[&a]), sample_bundle(&[&b]));
}

#[test]
fn independent_writer_of_the_documented_format_agrees() {
    let (a, b) = (key(1), key(2));
    let bytes = sample_bundle(&[&a, &b]);
    let (m, _, layout) = inspect_untrusted(&bytes).unwrap();
    let manifest_bytes = &bytes[16..16 + layout.manifest_len];
    assert_eq!(manifest_bytes, postcard::to_stdvec(&m).unwrap());
    assert_eq!(manifest_digest(manifest_bytes), spec_digest(manifest_bytes));
    let sections: Vec<&[u8]> = layout
        .section_offsets
        .iter()
        .zip(&m.sections)
        .map(|(&o, s)| &bytes[o as usize..(o + s.stored_len) as usize])
        .collect();
    let again = craft_bytes(manifest_bytes, &[seed(1), seed(2)], &sections);
    assert_eq!(again, bytes);
    assert_eq!(
        KeyId(spec_key_id(&a.public().to_bytes())),
        a.public().key_id()
    );
}

#[test]
fn layout_and_inspect() {
    let k = key(3);
    let bytes = sample_bundle(&[&k]);
    let (m, sigs, layout) = inspect_untrusted(&bytes).unwrap();
    assert_eq!(layout.header_len, HEADER_LEN);
    assert_eq!(layout.sig_block_len, 1 + SIGNATURE_ENTRY_LEN);
    assert_eq!(layout.total_len, bytes.len() as u64);
    assert_eq!(
        layout.section_offsets[0],
        (16 + layout.manifest_len + layout.sig_block_len) as u64
    );
    assert_eq!(
        layout.section_offsets[1],
        layout.section_offsets[0] + m.sections[0].stored_len
    );
    assert_eq!(sigs.len(), 1);
    assert!(!sigs[0].trusted);
    let v = VerifiedBundle::open(&bytes, &trust(&[&k]), NOW).unwrap();
    assert_eq!(v.manifest(), &m);
    assert_eq!(v.layout(), &layout);
    // Each section is one zstd frame at the recorded offset, hashed as stored.
    for (i, s) in m.sections.iter().enumerate() {
        let o = layout.section_offsets[i] as usize;
        let stored = &bytes[o..o + s.stored_len as usize];
        assert_eq!(blake3::hash(stored).as_bytes(), &s.hash);
        assert_eq!(&stored[..4], &[0x28, 0xB5, 0x2F, 0xFD]);
    }
}

#[test]
fn empty_section_round_trips() {
    let k = key(1);
    let mut w = BundleWriter::new(sample_manifest());
    w.add_section(SectionKind::OracleReport, b"").unwrap();
    let bytes = w.finish(&[&k]).unwrap();
    let v = VerifiedBundle::open(&bytes, &trust(&[&k]), NOW).unwrap();
    assert_eq!(v.section(0).unwrap(), Vec::<u8>::new());
}

#[test]
fn large_compressible_section_round_trips() {
    let k = key(1);
    let raw: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut w = BundleWriter::new(sample_manifest());
    w.add_section(SectionKind::Ptx, &raw).unwrap();
    let bytes = w.finish(&[&k]).unwrap();
    assert!(bytes.len() < raw.len() / 10);
    let v = VerifiedBundle::open(&bytes, &trust(&[&k]), NOW).unwrap();
    assert_eq!(v.section(0).unwrap(), raw);
}

#[test]
fn writer_refuses_bad_input() {
    let (a, b) = (key(1), key(2));
    let w = BundleWriter::new(sample_manifest());
    assert_eq!(w.finish(&[]).unwrap_err(), Error::NoSignatures);

    let w = BundleWriter::new(sample_manifest());
    assert!(matches!(w.finish(&[&a, &b, &a]), Err(Error::Layout(_))));

    let mut w = BundleWriter::new(sample_manifest());
    w.add_section(SectionKind::Wasm, b"x").unwrap();
    w.manifest_mut().targets.push(Target {
        triple: "t".into(),
        wasmtime_version: "48.0.8".into(),
        engine_fingerprint: [0; 32],
        engine_profile: String::new(),
        cpu_features: vec![],
        code_section: 0,
    });
    let e = w.finish(&[&a]).unwrap_err();
    assert!(
        e.to_string()
            .contains("targets[0].code_section 0 is a wasm section"),
        "{e}"
    );

    let mut w = BundleWriter::new(sample_manifest());
    w.add_section(SectionKind::Wasm, b"x").unwrap();
    w.manifest_mut().sections[0].raw_len = 5;
    assert!(matches!(w.finish(&[&a]), Err(Error::Manifest(_))));

    let mut w = BundleWriter::new(sample_manifest());
    w.manifest_mut().name = "n".repeat(caps::MAX_STRING + 1);
    assert!(matches!(w.finish(&[&a]), Err(Error::TooLarge { .. })));

    let mut m = sample_manifest();
    m.exports.push(m.exports[0].clone());
    let e = BundleWriter::new(m).finish(&[&a]).unwrap_err();
    assert!(e.to_string().contains("exported twice"), "{e}");
}

#[test]
fn writer_drops_caller_sections_and_caps_their_number() {
    let k = key(1);
    let mut m = sample_manifest();
    m.sections.push(SectionEntry {
        kind: SectionKind::Code,
        stored_len: 1,
        raw_len: 1,
        hash: [0; 32],
    });
    let mut w = BundleWriter::new(m);
    assert!(w.manifest_mut().sections.is_empty());
    for _ in 0..caps::MAX_SECTIONS {
        w.add_section(SectionKind::Cubin, b"").unwrap();
    }
    assert!(matches!(
        w.add_section(SectionKind::Cubin, b""),
        Err(Error::TooLarge { .. })
    ));
    let bytes = w.finish(&[&k]).unwrap();
    let v = VerifiedBundle::open(&bytes, &trust(&[&k]), NOW).unwrap();
    assert_eq!(v.manifest().sections.len(), caps::MAX_SECTIONS);
}

#[test]
fn displays() {
    assert_eq!(SectionKind::RewrittenWasm.to_string(), "rewritten-wasm");
    assert_eq!(SectionKind::OracleReport.to_string(), "oracle-report");
    assert_eq!(SectionKind::Cubin.to_string(), "cubin");
    assert_eq!(SectionKind::Offload.to_string(), "offload");
    assert_eq!(ValType::ExternRef.to_string(), "externref");
    assert_eq!(ValType::V128.to_string(), "v128");
    let f = ExportKind::Func {
        params: vec![ValType::I32, ValType::I64],
        results: vec![ValType::F32],
    };
    assert_eq!(f.to_string(), "func (i32, i64) -> (f32)");
    assert_eq!(ExportKind::Memory.to_string(), "memory");
}

#[test]
fn expiry_is_checked_against_now() {
    let k = key(1);
    let m = Manifest {
        expires_at: Some(NOW),
        ..sample_manifest()
    };
    let bytes = sample_bundle_with(m, &[&k]);
    assert!(VerifiedBundle::open(&bytes, &trust(&[&k]), NOW - 1).is_ok());
    assert_eq!(
        VerifiedBundle::open(&bytes, &trust(&[&k]), NOW).unwrap_err(),
        Error::Expired {
            expires_at: NOW,
            now: NOW
        }
    );
    // inspect shows expired bundles.
    assert!(inspect_untrusted(&bytes).is_ok());
}

/// The worked example in docs/BUNDLE-FORMAT.md ("Test vectors"); keep the two in sync.
#[test]
fn documented_test_vectors() {
    let m = Manifest {
        name: "add".into(),
        version: 300,
        created_at: None,
        expires_at: Some(1_700_000_000),
        tool: "tw".into(),
        source_hash: [0xAA; 32],
        exports: vec![Export {
            name: "add".into(),
            kind: ExportKind::Func {
                params: vec![ValType::I32, ValType::I32],
                results: vec![ValType::I32],
            },
        }],
        targets: vec![],
        sections: vec![SectionEntry {
            kind: SectionKind::Wasm,
            stored_len: 20,
            raw_len: 41,
            hash: [0xBB; 32],
        }],
    };
    let bytes = postcard::to_stdvec(&m).unwrap();
    let expected = [
        "03616464",       // name
        "ac02",           // version 300
        "00",             // created_at None
        "0180e2cfaa06",   // expires_at Some(1700000000)
        "027477",         // tool
        &"aa".repeat(32), // source_hash
        "01",             // 1 export
        "03616464",       // name
        "00",             // Func
        "020000",         // params i32 i32
        "0100",           // results i32
        "00",             // 0 targets
        "01",             // 1 section
        "00",             // Wasm
        "14",             // stored_len 20
        "29",             // raw_len 41
        &"bb".repeat(32), // hash
    ]
    .concat();
    assert_eq!(hex::encode(&bytes), expected);
    assert_eq!(
        hex::encode(manifest_digest(&bytes)),
        "796d0f327785e68e3942f63e7e94ca90a3011fae4b56bf42472b49a81db3ba88"
    );
    let k = SigningKey::from_bytes(&[1; 32]);
    assert_eq!(
        hex::encode(k.public().to_bytes()),
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    );
    assert_eq!(k.public().key_id().to_string(), "f920e3c694678471");
    assert_eq!(
        k.public().to_file_text(),
        "tensorwasm-public-key v1 f920e3c694678471\n\
         8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c\n"
    );
    assert_eq!(
        k.to_file_text(),
        format!(
            "tensorwasm-secret-key v1 f920e3c694678471\n{}\n",
            "01".repeat(32)
        )
    );
    assert_eq!(postcard::from_bytes::<Manifest>(&bytes).unwrap(), m);
}
