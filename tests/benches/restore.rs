//! Restore benchmark: bundle bytes → verified, decompressed, deserialized module, against plain
//! `Module::deserialize` of the same uncompressed code, for modules of ~100 KB to ~10 MB of code.
//! Also prints build time, bundle size against `.cwasm` + `.wasm`, and whether two builds are
//! byte-identical.
//!
//! Run: `cargo bench -p tensorwasm-tests --bench restore` (add `-- --quick` for fewer rounds).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tensorwasm_bundle::{BundleWriter, Manifest, SectionKind, SigningKey, Target, TrustedKeys};
use tensorwasmd::engine::{base_config, host_triple};
use wasmtime::{Engine, Module};

/// A module with `funcs` functions, each a chain of arithmetic and a loop, so that code size
/// grows roughly linearly with `funcs`.
fn module(funcs: usize) -> Vec<u8> {
    let mut wat = String::from("(module (memory 1)\n");
    for i in 0..funcs {
        let _ = write!(
            wat,
            "(func (export \"f{i}\") (param i32 i32) (result i32) (local i32)
               (loop $l
                 local.get 0 local.get 1 i32.mul i32.const {i} i32.add local.set 2
                 local.get 2 i32.const 3 i32.shl local.get 0 i32.xor local.set 0
                 local.get 1 i32.const 1 i32.sub local.tee 1
                 local.get 0 i32.const 65532 i32.and i32.load i32.add
                 br_if $l)
               local.get 0 local.get 2 i32.add)\n"
        );
    }
    wat.push(')');
    wat::parse_str(&wat).expect("generated module is valid")
}

fn bundle(
    wasm: &[u8],
    code: &[u8],
    profile: &tensorwasmd::engine::EngineProfile,
    key: &SigningKey,
) -> Vec<u8> {
    let mut writer = BundleWriter::new(Manifest {
        name: "bench".into(),
        version: 1,
        created_at: None,
        expires_at: None,
        tool: tensorwasm::tool_version(),
        source_hash: *blake3::hash(wasm).as_bytes(),
        exports: vec![],
        targets: vec![],
        sections: vec![],
    });
    writer
        .add_section(SectionKind::Wasm, wasm)
        .expect("wasm section");
    let code_section = writer
        .add_section(SectionKind::Code, code)
        .expect("code section");
    writer.manifest_mut().targets.push(Target {
        triple: profile.triple.clone(),
        wasmtime_version: profile.wasmtime_version.clone(),
        engine_fingerprint: profile.fingerprint,
        engine_profile: profile.description.clone(),
        cpu_features: vec![],
        code_section,
    });
    writer.finish(&[key]).expect("sign")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(rounds: usize, mut f: impl FnMut() -> T) -> Duration {
    let _ = f(); // warm-up
    median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 5 } else { 21 };
    let triple = host_triple();
    let engine = Engine::new(&base_config()).expect("engine");
    let key = SigningKey::generate();
    let trusted = TrustedKeys::new(vec![key.public()]);

    println!(
        "| funcs | wasm | code (.cwasm) | bundle | bundle / (cwasm+wasm) | build (compile+bundle) | plain deserialize | restore (verify+hash+zstd+deserialize) | ratio | of which verify / hash+zstd / deserialize | identical rebuild |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|:---:|");
    for funcs in [100, 1_000, 10_000, 40_000] {
        let wasm = module(funcs);
        let t0 = Instant::now();
        let compiled = tensorwasm::aot::compile(&wasm, &triple).expect("compile");
        let bytes = bundle(&wasm, &compiled.code, &compiled.profile, &key);
        let build = t0.elapsed();
        let again = bundle(
            &wasm,
            &tensorwasm::aot::compile(&wasm, &triple)
                .expect("compile")
                .code,
            &compiled.profile,
            &key,
        );

        let plain = time(rounds, || {
            // SAFETY: `compiled.code` was produced just above by an engine with this
            // configuration.
            unsafe { Module::deserialize(&engine, &compiled.code) }.expect("deserialize")
        });
        let ours = time(rounds, || {
            tensorwasmd::restore::restore(&engine, &bytes, &trusted, 0).expect("restore")
        });
        let split = tensorwasmd::restore::restore(&engine, &bytes, &trusted, 0)
            .expect("restore")
            .timings;
        println!(
            "| {funcs} | {} KB | {} KB | {} KB | {:.2} | {:.0} ms | {:.3} ms | {:.3} ms | {:.2}x | {:.3} / {:.3} / {:.3} ms | {} |",
            wasm.len() / 1024,
            compiled.code.len() / 1024,
            bytes.len() / 1024,
            bytes.len() as f64 / (compiled.code.len() + wasm.len()) as f64,
            build.as_secs_f64() * 1e3,
            plain.as_secs_f64() * 1e3,
            ours.as_secs_f64() * 1e3,
            ours.as_secs_f64() / plain.as_secs_f64(),
            split.verify.as_secs_f64() * 1e3,
            split.decompress.as_secs_f64() * 1e3,
            split.deserialize.as_secs_f64() * 1e3,
            if bytes == again { "yes" } else { "NO" },
        );
    }
}
