//! The guarded rewrite and the outliner, checked structurally with no Wasm engine: every
//! rewritten and outlined module validates, a declined nest's fallback copy is its function
//! operator for operator, and the driver's two views of a module (kernels for `--emit-ptx`,
//! kernel-table entries for the bundle) name the same nests. Running the rewritten modules is
//! `tensorwasm`'s test (compiler/tests/offload.rs).

#[path = "common/bodies.rs"]
mod bodies;
use bodies::bodies;
use std::path::{Path, PathBuf};

use tensorwasm_guard::OffloadTable;
use tensorwasm_offload::{Analysed, kernel_name, outline, plan_module, rewrite};

fn offloaded(wasm: &[u8]) -> (Vec<u8>, OffloadTable) {
    let kernels = plan_module(wasm, Default::default()).expect("plan").kernels;
    let rewritten = rewrite(wasm, &kernels).expect("rewrite");
    (rewritten, OffloadTable { kernels })
}

/// Every sample module (bare and WASI).
fn samples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/wasm");
    let mut out = Vec::new();
    for dir in ["bare", "wasi"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("samples") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "wasm") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn validate(wasm: &[u8], what: &str) {
    let mut features = wasmparser::WasmFeatures::default();
    features.insert(wasmparser::WasmFeatures::TAIL_CALL);
    wasmparser::Validator::new_with_features(features)
        .validate_all(wasm)
        .unwrap_or_else(|e| panic!("{what} does not validate: {e}"));
}

#[test]
fn every_rewritten_and_outlined_sample_validates() {
    let mut kernels = 0;
    for path in samples() {
        let name = path.display().to_string();
        let wasm = std::fs::read(&path).expect("sample");
        let planned = plan_module(&wasm, Default::default()).expect("plan");
        let rewritten = rewrite(&wasm, &planned.kernels).expect("rewrite");
        validate(&rewritten, &format!("{name} rewritten"));
        let outlined = outline(&wasm, &planned.kernels, &planned.locals).expect("outline");
        validate(&outlined, &format!("{name} outlined"));
        kernels += planned.kernels.len();
    }
    assert!(kernels >= 10, "only {kernels} kernels over the samples");
}

#[test]
fn the_kernels_and_the_plan_come_from_one_lowering_and_name_the_same_nests() {
    for path in samples() {
        let wasm = std::fs::read(&path).expect("sample");
        let analysed = Analysed::new(&wasm).expect("analyses");
        let target = tensorwasm_blueprints::Target::default();
        let emitted = analysed.kernels(target);
        let planned = analysed.plan(target);
        let emitted_names: Vec<(&str, u32)> = emitted
            .iter()
            .map(|k| (k.name.as_str(), k.offset))
            .collect();
        let planned_names: Vec<(&str, u32)> = planned
            .reports
            .iter()
            .map(|r| (r.name.as_str(), r.offset))
            .collect();
        assert_eq!(emitted_names, planned_names, "{}", path.display());
        for k in &emitted {
            assert_eq!(k.name, kernel_name(k.function, k.root));
        }
        // A planned kernel ships the PTX `--emit-ptx` writes for the same target.
        for k in &planned.kernels {
            let e = emitted.iter().find(|e| e.name == k.name).expect("emitted");
            assert_eq!(e.ptx.as_deref(), Some(k.ptx.as_str()), "{}", k.name);
        }
    }
}

#[test]
fn a_module_that_already_imports_the_offload_module_is_not_rewritten() {
    let wasm = wat::parse_str(
        r#"(module (import "tensorwasm:offload" "live_out" (func (param i32) (result i64))))"#,
    )
    .expect("wat");
    let err = rewrite(&wasm, &[]).expect_err("refused");
    assert!(err.contains("already imports"), "{err}");
}

#[test]
fn a_declined_nest_that_runs_first_falls_back_to_an_untouched_copy_of_its_function() {
    // In every bare sample with a kernel, the kernel's function runs no effect before its
    // nest: the rewritten module gains a copy of that function, operator for operator, which
    // the guard tail-calls when the nest declines (so the CPU runs the original code;
    // docs/PERFORMANCE.md, "Guard overhead").
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/wasm/bare");
    let mut copied = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("samples") {
        let path = entry.expect("entry").path();
        let name = path.display().to_string();
        let original = std::fs::read(&path).expect("sample");
        let (rewritten, table) = offloaded(&original);
        let (before, after) = (bodies(&original), bodies(&rewritten));
        if table.kernels.is_empty() {
            // (The `live_out` import still shifts the call indices.)
            assert_eq!(after.len(), before.len(), "{name}: nothing to copy");
            continue;
        }
        // A nest inside a loop the host runs (a time step) is guarded in place: the loop
        // around it has run before the guard, so its function is not copied.
        let ir = tensorwasm_analysis::translate(&original).expect("translate");
        let inside_a_loop = |k: &tensorwasm_guard::OffloadKernel| {
            let func = ir.function(k.function).expect("function");
            func.loops
                .iter()
                .any(|l| l.offset == k.offset && l.parent.is_some())
        };
        if table.kernels.iter().all(inside_a_loop) {
            assert_eq!(after.len(), before.len(), "{name}: nothing copied");
            assert!(
                !after
                    .iter()
                    .flatten()
                    .any(|op| op.starts_with("ReturnCall")),
                "{name}: no tail call"
            );
            continue;
        }
        assert_eq!(table.kernels.len(), 1, "{name}");
        // Bare samples import no function, so the kernel's function index is its body's.
        let function = table.kernels[0].function as usize;
        assert_eq!(
            after.len(),
            before.len() + 1,
            "{name}: the function and its copy"
        );
        assert_eq!(
            after.last(),
            Some(&before[function]),
            "{name}: the copy is the original function"
        );
        assert!(
            after[function]
                .iter()
                .any(|op| op.starts_with("ReturnCall")),
            "{name}: the guard tail-calls the copy"
        );
        copied.push(name);
    }
    assert!(copied.len() >= 8, "{copied:?}");
}
