//! Every offloadable loop nest of every C sample (bare and WASI forms) lowers to a KernelIR
//! kernel that verifies, emits PTX, and — where `ptxas` is available (mandatory with
//! `TENSORWASM_REQUIRE_PTXAS=1`, as `scripts/test.sh` sets) — assembles for sm_75, sm_80, sm_90
//! and sm_100 with no spills.

use std::path::Path;
use tensorwasm_analysis::{Verdict, analyze, translate};
use tensorwasm_blueprints::{EmitOptions, Target, emit_ptx, ptxas};
use tensorwasm_offload::lower::{ParamSource, lower};

const ARCHS: [&str; 4] = ["sm_75", "sm_80", "sm_90", "sm_100"];

fn ptxas_available() -> bool {
    if ptxas::find_ptxas().is_some() {
        return true;
    }
    // On when set to anything but empty or `0` (docs/TESTING.md, "Environment switches").
    let required =
        std::env::var_os("TENSORWASM_REQUIRE_PTXAS").is_some_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "ptxas not found and TENSORWASM_REQUIRE_PTXAS is set"
    );
    eprintln!("skipped ptxas checks: ptxas not found (run scripts/cuda-tools, put it on PATH)");
    false
}

#[test]
fn every_sample_candidate_lowers_emits_and_assembles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/wasm");
    let assemble = ptxas_available();
    let mut lowered = 0;
    let mut failures = Vec::new();
    for form in ["bare", "wasi"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(form))
            .expect("samples/wasm exists")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        files.sort();
        for path in files {
            let wasm = std::fs::read(&path).expect("read sample");
            let module = translate(&wasm).expect("sample translates");
            let (plan, _) = analyze(&module);
            for nest in &plan.nests {
                let Verdict::Candidate(cand) = &nest.verdict else {
                    continue;
                };
                let func = module.function(nest.function).expect("nest's function");
                let name = format!("k_f{}_l{}", nest.function, nest.root.0);
                let what = format!("{form}/{} {name}", path.display());
                let low = match lower(func, nest, cand, &name) {
                    Ok(l) => l,
                    Err(e) => {
                        failures.push(format!("{what}: {e}"));
                        continue;
                    }
                };
                assert_eq!(low.sources.len(), low.kernel.params.len(), "{what}");
                assert!(
                    low.sources.contains(&ParamSource::Memory),
                    "{what}: no memory window"
                );
                lowered += 1;
                for arch in ARCHS {
                    let target = Target::parse(arch).expect("known arch");
                    let ptx = emit_ptx(&low.kernel, &EmitOptions::for_target(target))
                        .unwrap_or_else(|e| panic!("{what}: emit for {arch}: {e}\n{}", low.kernel));
                    if !assemble {
                        continue;
                    }
                    let report = ptxas::assemble(&ptx, arch)
                        .unwrap_or_else(|e| panic!("{what} for {arch}: {e}\n{ptx}"));
                    assert_eq!(report.spill_stores(), 0, "{what} spills on {arch}");
                    assert_eq!(report.spill_loads(), 0, "{what} spills on {arch}");
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "lowering failed:\n{}",
        failures.join("\n")
    );
    assert!(lowered >= 16, "only {lowered} kernels lowered");
}

/// The KernelIR of each bare sample's kernels, held in `compiler/tests/golden/lower/NAME.kir`
/// (refresh with `BLESS=1 cargo test -p tensorwasm --test lower`).
#[test]
fn bare_sample_kernels_match_golden() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let golden = root.join("tests/golden/lower");
    let bless = std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0");
    let mut blessed = 0;
    for name in [
        "vadd",
        "saxpy",
        "relu_clamp",
        "matmul",
        "conv2d",
        "jacobi2d",
        "transpose",
        "batched_matmul",
        "threshold",
        "diffuse_steps",
        "orthonormalize",
    ] {
        let wasm = std::fs::read(root.join(format!("../samples/wasm/bare/{name}.wasm")))
            .expect("read sample");
        let module = translate(&wasm).expect("translate");
        let (plan, _) = analyze(&module);
        let mut text = String::new();
        for nest in &plan.nests {
            let Verdict::Candidate(cand) = &nest.verdict else {
                continue;
            };
            let func = module.function(nest.function).expect("function");
            let kname = format!("{name}_loop{}", nest.root.0);
            let low = lower(func, nest, cand, &kname).unwrap_or_else(|e| panic!("{name}: {e}"));
            text.push_str(&format!("{}\nparams: {:?}\n\n", low.kernel, low.sources));
        }
        assert!(!text.is_empty(), "{name}: no kernel");
        let path = golden.join(format!("{name}.kir"));
        let expect = std::fs::read_to_string(&path).ok();
        if bless {
            if expect.as_deref() != Some(text.as_str()) {
                std::fs::create_dir_all(&golden).expect("mkdir golden");
                std::fs::write(&path, &text).expect("write golden");
                blessed += 1;
            }
            continue;
        }
        let expect = expect.unwrap_or_default();
        assert!(
            expect == text,
            "golden mismatch for {name} (BLESS=1 to accept)\n--- expected\n{expect}\n--- actual\n{text}"
        );
    }
    assert!(
        blessed == 0,
        "blessed {blessed} golden file(s); run again without BLESS to check"
    );
}
