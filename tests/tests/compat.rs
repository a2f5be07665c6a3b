//! Engine compatibility: a bundle made for another Wasmtime version, engine configuration, CPU or
//! target is refused with an error that names both sides and the command to rebuild — and code
//! whose manifest lies about its engine is still refused by Wasmtime, never run.

use tensorwasm::aot;
use tensorwasm_bundle::{BundleWriter, Manifest, SectionKind, SigningKey, Target, TrustedKeys};
use tensorwasmd::engine::{EngineProfile, WASMTIME_VERSION, base_config, host_triple};
use tensorwasmd::{Error, restore};
use wasmtime::Engine;

const ADD: &str = r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#;

struct Signed {
    key: SigningKey,
}

impl Signed {
    fn new() -> Signed {
        Signed {
            key: SigningKey::generate(),
        }
    }

    fn trusted(&self) -> TrustedKeys {
        TrustedKeys::new(vec![self.key.public()])
    }

    /// A bundle of `code` whose single target is described by `edit` applied to the truth.
    fn bundle(
        &self,
        code: &[u8],
        profile: &EngineProfile,
        edit: impl FnOnce(&mut Target),
    ) -> Vec<u8> {
        let wasm = wat::parse_str(ADD).unwrap();
        let mut writer = BundleWriter::new(Manifest {
            name: "add".into(),
            version: 1,
            created_at: None,
            expires_at: None,
            tool: tensorwasm::tool_version(),
            source_hash: [0; 32],
            exports: vec![],
            targets: vec![],
            sections: vec![],
        });
        writer.add_section(SectionKind::Wasm, &wasm).unwrap();
        let code_section = writer.add_section(SectionKind::Code, code).unwrap();
        let mut target = Target {
            triple: profile.triple.clone(),
            wasmtime_version: profile.wasmtime_version.clone(),
            engine_fingerprint: profile.fingerprint,
            engine_profile: profile.description.clone(),
            cpu_features: vec![],
            code_section,
        };
        edit(&mut target);
        writer.manifest_mut().targets.push(target);
        writer.finish(&[&self.key]).unwrap()
    }
}

fn runtime_engine() -> Engine {
    Engine::new(&base_config()).unwrap()
}

fn host_code() -> aot::Compiled {
    aot::compile(&wat::parse_str(ADD).unwrap(), &host_triple()).unwrap()
}

fn restore_err(engine: &Engine, bytes: &[u8], trusted: &TrustedKeys) -> Error {
    match restore::restore(engine, bytes, trusted, 0) {
        Ok(_) => panic!("bundle should have been refused"),
        Err(e) => e,
    }
}

#[test]
fn a_matching_bundle_restores_and_runs() {
    let signed = Signed::new();
    let compiled = host_code();
    let bytes = signed.bundle(&compiled.code, &compiled.profile, |_| {});
    let engine = runtime_engine();
    let restored = restore::restore(&engine, &bytes, &signed.trusted(), 0).unwrap();
    let runtime = tensorwasmd::invoke::Runtime::new(engine).unwrap();
    let out = runtime
        .invoke(
            &restored.module,
            "add",
            &serde_json::json!([2, 3]),
            &Default::default(),
        )
        .unwrap();
    assert_eq!(out.to_string(), "[5]");
}

#[test]
fn another_wasmtime_version_is_refused_naming_both_versions() {
    let signed = Signed::new();
    let compiled = host_code();
    let bytes = signed.bundle(&compiled.code, &compiled.profile, |t| {
        t.wasmtime_version = "47.0.1".into()
    });
    let msg = restore_err(&runtime_engine(), &bytes, &signed.trusted()).to_string();
    assert!(
        msg.contains("Wasmtime 47.0.1") && msg.contains(&format!("Wasmtime {WASMTIME_VERSION}")),
        "{msg}"
    );
    assert!(msg.contains("tensorwasm build SOURCE --target"), "{msg}");
}

#[test]
fn another_engine_configuration_is_refused_naming_both_profiles() {
    let signed = Signed::new();
    let compiled = host_code();
    let bytes = signed.bundle(&compiled.code, &compiled.profile, |_| {});
    let mut other = base_config();
    other.consume_fuel(true);
    let fuel_engine = Engine::new(&other).unwrap();
    let err = restore_err(&fuel_engine, &bytes, &signed.trusted());
    let msg = err.to_string();
    assert!(matches!(err, Error::EngineMismatch { .. }), "{msg}");
    assert!(
        msg.contains("consume_fuel=false") && msg.contains("consume_fuel=true"),
        "{msg}"
    );
    assert!(msg.contains("rebuild"), "{msg}");
}

#[test]
fn missing_cpu_features_are_refused() {
    let signed = Signed::new();
    let compiled = host_code();
    let bytes = signed.bundle(&compiled.code, &compiled.profile, |t| {
        t.cpu_features = vec!["imaginary-simd".into()]
    });
    let msg = restore_err(&runtime_engine(), &bytes, &signed.trusted()).to_string();
    assert!(
        msg.contains("requires CPU feature(s) imaginary-simd"),
        "{msg}"
    );
}

#[test]
fn a_bundle_for_another_target_is_refused_with_the_rebuild_command() {
    let signed = Signed::new();
    let other = if cfg!(target_arch = "aarch64") {
        "x86_64-unknown-linux-gnu"
    } else {
        "aarch64-unknown-linux-gnu"
    };
    let compiled = aot::compile(&wat::parse_str(ADD).unwrap(), other).unwrap();
    let bytes = signed.bundle(&compiled.code, &compiled.profile, |_| {});
    let msg = restore_err(&runtime_engine(), &bytes, &signed.trusted()).to_string();
    assert!(msg.contains(other) && msg.contains(&host_triple()), "{msg}");
}

#[test]
fn code_whose_manifest_lies_about_its_engine_is_still_refused_by_wasmtime() {
    let signed = Signed::new();
    let truth = host_code();
    // Code compiled with fuel metering, labelled as the standard engine's.
    let mut fuel = base_config();
    fuel.consume_fuel(true).target(&host_triple()).unwrap();
    let fuel_code = Engine::new(&fuel)
        .unwrap()
        .precompile_module(&wat::parse_str(ADD).unwrap())
        .unwrap();
    let bytes = signed.bundle(&fuel_code, &truth.profile, |_| {});
    let err = restore_err(&runtime_engine(), &bytes, &signed.trusted());
    assert!(matches!(err, Error::Deserialize { .. }), "{err}");

    // Random bytes in a code section signed by a trusted key: refused, not run.
    let bytes = signed.bundle(b"\x7fELF not really code", &truth.profile, |_| {});
    let err = restore_err(&runtime_engine(), &bytes, &signed.trusted());
    assert!(matches!(err, Error::Deserialize { .. }), "{err}");
}
