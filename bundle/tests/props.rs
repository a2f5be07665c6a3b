//! Property tests: no input panics the reader; any valid manifest round-trips.

mod common;

use common::*;
use proptest::prelude::*;
use tensorwasm_bundle::*;

fn valtype() -> impl Strategy<Value = ValType> {
    prop_oneof![
        Just(ValType::I32),
        Just(ValType::I64),
        Just(ValType::F32),
        Just(ValType::F64),
        Just(ValType::V128),
        Just(ValType::FuncRef),
        Just(ValType::ExternRef),
        Just(ValType::Other),
    ]
}

fn export_kind() -> impl Strategy<Value = ExportKind> {
    prop_oneof![
        (
            prop::collection::vec(valtype(), 0..5),
            prop::collection::vec(valtype(), 0..3)
        )
            .prop_map(|(params, results)| ExportKind::Func { params, results }),
        Just(ExportKind::Memory),
        Just(ExportKind::Table),
        Just(ExportKind::Global),
        Just(ExportKind::Tag),
    ]
}

fn section_kind() -> impl Strategy<Value = SectionKind> {
    prop_oneof![
        Just(SectionKind::Wasm),
        Just(SectionKind::RewrittenWasm),
        Just(SectionKind::Code),
        Just(SectionKind::Ptx),
        Just(SectionKind::Cubin),
        Just(SectionKind::OracleReport),
        Just(SectionKind::Offload),
    ]
}

/// A manifest (without sections or targets), plus sections to add and targets to attach.
#[allow(clippy::type_complexity)]
fn inputs() -> impl Strategy<
    Value = (
        Manifest,
        Vec<(SectionKind, Vec<u8>)>,
        Vec<(String, Vec<String>)>,
    ),
> {
    let exports = prop::collection::btree_map("\\PC{0,12}", export_kind(), 0..6).prop_map(|m| {
        m.into_iter()
            .map(|(name, kind)| Export { name, kind })
            .collect::<Vec<_>>()
    });
    let manifest = (
        "\\PC{0,20}",
        any::<u64>(),
        any::<Option<u64>>(),
        "\\PC{0,20}",
        any::<[u8; 32]>(),
        exports,
    )
        .prop_map(
            |(name, version, created_at, tool, source_hash, exports)| Manifest {
                name,
                version,
                created_at,
                expires_at: None,
                tool,
                source_hash,
                exports,
                targets: vec![],
                sections: vec![],
            },
        );
    let sections = prop::collection::vec(
        (section_kind(), prop::collection::vec(any::<u8>(), 0..200)),
        0..4,
    );
    let targets = prop::collection::vec(
        (
            "[a-z0-9_-]{1,30}",
            prop::collection::vec("[a-z0-9.+]{1,8}", 0..4),
        ),
        0..3,
    );
    (manifest, sections, targets)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let k = key(1);
        prop_assert!(VerifiedBundle::open(&bytes, &trust(&[&k]), NOW).is_err());
        prop_assert!(inspect_untrusted(&bytes).is_err());
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(
        manifest_len in 0u32..400,
        sig_len in 0u32..300,
        body in prop::collection::vec(any::<u8>(), 0..800),
    ) {
        let k = key(1);
        let mut bytes = b"TWB\0\x01\0\0\0".to_vec();
        bytes.extend_from_slice(&manifest_len.to_le_bytes());
        bytes.extend_from_slice(&sig_len.to_le_bytes());
        bytes.extend_from_slice(&body);
        prop_assert!(VerifiedBundle::open(&bytes, &trust(&[&k]), NOW).is_err());
        prop_assert!(inspect_untrusted(&bytes).is_err());
    }

    #[test]
    fn random_edits_to_a_valid_bundle_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let k = key(1);
        let mut bytes = sample_bundle(&[&k]);
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if do_cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(b) = VerifiedBundle::open(&bytes, &trust(&[&k]), NOW) {
            for i in 0..b.manifest().sections.len() as u32 {
                let _ = b.section(i);
            }
        }
        let _ = inspect_untrusted(&bytes);
    }

    #[test]
    fn random_manifests_round_trip((m, sections, targets) in inputs()) {
        let k = key(1);
        let mut w = BundleWriter::new(m.clone());
        let mut expected = Vec::new();
        for (kind, raw) in &sections {
            w.add_section(*kind, raw).unwrap();
            expected.push(raw.clone());
        }
        for (triple, cpu_features) in targets {
            let code = w.add_section(SectionKind::Code, triple.as_bytes()).unwrap();
            expected.push(triple.clone().into_bytes());
            w.manifest_mut().targets.push(Target {
                triple,
                wasmtime_version: "48.0.8".into(),
                engine_fingerprint: [1; 32],
                engine_profile: "p".into(),
                cpu_features,
                code_section: code,
            });
        }
        let want = w.manifest_mut().clone();
        let bytes = w.finish(&[&k]).unwrap();
        let b = VerifiedBundle::open(&bytes, &trust(&[&k]), NOW).unwrap();
        prop_assert_eq!(b.manifest(), &want);
        prop_assert_eq!(&b.manifest().exports, &m.exports);
        for (i, raw) in expected.iter().enumerate() {
            prop_assert_eq!(&b.section(i as u32).unwrap(), raw);
        }
        let (im, _, _) = inspect_untrusted(&bytes).unwrap();
        prop_assert_eq!(&im, &want);
    }
}
