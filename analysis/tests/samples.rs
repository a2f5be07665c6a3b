//! The C samples (`samples/wasm/`, built by `samples/build.sh` with clang -O2): every offloadable
//! kernel is detected in both forms — the bare kernel and inlined into a WASI program's `main` —
//! and every must-reject kernel is rejected with the right reason. Golden files hold the IR, the
//! loop facts, the verdicts and the plans of the function holding the kernel. Refresh with
//! `BLESS=1 cargo test -p tensorwasm-analysis --test samples`.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use tensorwasm_analysis::ir::{FunctionIr, ModuleIr};
use tensorwasm_analysis::loops::{FuncInfo, analyze_function};
use tensorwasm_analysis::{NestVerdict, Verdict, analyze, translate, verify::verify};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What the kernel's nest must come out as.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Offloadable, with this many grid dimensions.
    Offload { grid: usize },
    /// Rejected, with a reason of this kind.
    Reject(&'static str),
    /// At least this many nests offloadable on their own inside a rejected loop.
    Inside { nests: usize },
}

const SAMPLES: &[(&str, Expect)] = &[
    ("vadd", Expect::Offload { grid: 1 }),
    ("saxpy", Expect::Offload { grid: 1 }),
    ("relu_clamp", Expect::Offload { grid: 1 }),
    ("matmul", Expect::Offload { grid: 2 }),
    ("conv2d", Expect::Offload { grid: 2 }),
    ("jacobi2d", Expect::Offload { grid: 2 }),
    // clang unrolls the column loop with a remainder iteration after it, a store outside the
    // inner loop: only the row loop becomes a grid dimension.
    ("transpose", Expect::Offload { grid: 1 }),
    ("batched_matmul", Expect::Offload { grid: 3 }),
    // clang unrolls the row by 2 and reuses one local for a store address and, later in the
    // same iteration, a loaded byte: offloadable only because the analysis follows the writes
    // that reach each use. The unrolled column loop has a remainder store after it, so only the
    // row loop becomes a grid dimension.
    ("threshold", Expect::Offload { grid: 1 }),
    // A time loop around two sweeps: the time loop carries a dependence; each sweep is a nest
    // of its own, dispatched once per step.
    ("diffuse_steps", Expect::Inside { nests: 2 }),
    // Gram-Schmidt's column loop: the column scaling and the update of the columns right of k
    // (a bound the column loop sets; each thread sums its own dot product in order) are
    // offloaded inside it; the norm, a float sum, stays on the CPU.
    ("orthonormalize", Expect::Inside { nests: 2 }),
    ("histogram", Expect::Reject("store-address-from-load")),
    ("prefix_sum", Expect::Reject("float-accumulator")),
    ("prefix_mem", Expect::Reject("carried-dependence")),
    ("fsum", Expect::Reject("float-accumulator")),
    ("calls_fn", Expect::Reject("calls")),
    ("bound_changes", Expect::Reject("trip-count")),
];

fn load(form: &str, name: &str) -> ModuleIr {
    let path = root().join(format!("samples/wasm/{form}/{name}.wasm"));
    let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let module = translate(&wasm).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    verify(&module).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    module
}

/// The function holding the kernel: the export in the bare form, `main` in the WASI form.
fn kernel_function<'m>(module: &'m ModuleIr, form: &str, name: &str) -> &'m FunctionIr {
    let names: &[&str] = if form == "bare" {
        &[name]
    } else {
        &["__original_main", "main"]
    };
    names
        .iter()
        .filter_map(|n| module.function_named(n))
        .find(|f| !f.loops.is_empty())
        .unwrap_or_else(|| panic!("{form}/{name}: no function {names:?} with loops"))
}

fn report(module: &ModuleIr, func: &FunctionIr, nests: &[&NestVerdict]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{func}");
    let info = FuncInfo::new(func);
    for facts in analyze_function(&info) {
        let _ = write!(out, "{facts}");
    }
    out.push('\n');
    for n in nests {
        let _ = writeln!(
            out,
            "function {} {} (offset {:#x}): {}",
            n.function, n.root, n.offset, n.verdict
        );
    }
    for n in nests {
        if let Verdict::Candidate(c) = &n.verdict {
            let _ = writeln!(out, "\n{} plan\n{c}", n.root);
        }
    }
    let _ = module;
    out
}

/// Compares with the golden file, or with `BLESS` on (set, not empty, not `0`: docs/TESTING.md)
/// rewrites it; returns whether it rewrote it, so that a blessing run fails.
fn check_golden(form: &str, name: &str, actual: &str) -> bool {
    let path = root().join(format!("analysis/tests/golden/samples/{form}/{name}.out"));
    let old = std::fs::read_to_string(&path).ok();
    if std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0") {
        let changed = old.as_deref() != Some(actual);
        if changed {
            std::fs::write(&path, actual).expect("write golden");
        }
        return changed;
    }
    let expect = old.unwrap_or_default();
    assert!(
        expect == actual,
        "golden mismatch for {form}/{name} (rerun with BLESS=1 to accept)\n--- expected\n{expect}\n--- actual\n{actual}"
    );
    false
}

fn check(form: &str) {
    let mut failures = Vec::new();
    let mut blessed = 0;
    for &(name, expect) in SAMPLES {
        let module = load(form, name);
        let func = kernel_function(&module, form, name);
        let (plan, diags) = analyze(&module);
        let loops: usize = module.functions.iter().map(|f| f.loops.len()).sum();
        assert_eq!(diags.len(), loops, "{form}/{name}: one diagnostic per loop");
        let nests: Vec<&NestVerdict> = plan
            .nests
            .iter()
            .filter(|n| n.function == func.index)
            .collect();
        let candidates: Vec<usize> = nests
            .iter()
            .filter_map(|n| match &n.verdict {
                Verdict::Candidate(c) => Some(c.grid.len()),
                Verdict::Rejected { .. } => None,
            })
            .collect();
        let inner_candidates = nests
            .iter()
            .filter(|n| {
                matches!(n.verdict, Verdict::Candidate(_))
                    && func.loop_data(n.root).is_some_and(|d| d.parent.is_some())
            })
            .count();
        let ok = match expect {
            Expect::Offload { grid } => candidates.iter().any(|&g| g >= grid),
            Expect::Inside { nests } => inner_candidates >= nests,
            Expect::Reject(kind) => {
                let kinds: Vec<&str> = nests
                    .iter()
                    .filter_map(|n| match &n.verdict {
                        Verdict::Rejected { reasons } => Some(reasons),
                        Verdict::Candidate(_) => None,
                    })
                    .flatten()
                    .map(|r| r.kind())
                    .collect();
                candidates.is_empty() && kinds.contains(&kind)
            }
        };
        if !ok {
            let verdicts: Vec<String> = nests
                .iter()
                .map(|n| format!("  {}: {}", n.root, n.verdict))
                .collect();
            failures.push(format!(
                "{form}/{name}: expected {expect:?}, got\n{}",
                verdicts.join("\n")
            ));
        }
        blessed += usize::from(check_golden(form, name, &report(&module, func, &nests)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        blessed == 0,
        "blessed {blessed} golden file(s); run again without BLESS to check"
    );
}

#[test]
fn bare_kernels() {
    check("bare");
}

#[test]
fn kernels_inlined_into_wasi_main() {
    check("wasi");
}

#[test]
fn the_ir_and_plan_do_not_depend_on_the_number_of_threads() {
    for form in ["bare", "wasi"] {
        for &(name, _) in SAMPLES {
            let module = load(form, name);
            let path = root().join(format!("samples/wasm/{form}/{name}.wasm"));
            let wasm = std::fs::read(&path).expect("sample");
            for threads in [2, 5] {
                let ir = tensorwasm_analysis::translate_with_threads(&wasm, threads).expect("ir");
                assert_eq!(
                    ir,
                    tensorwasm_analysis::translate_with_threads(&wasm, 1).expect("ir"),
                    "{form}/{name}: IR on {threads} threads"
                );
            }
            let one = tensorwasm_analysis::analyze_with_threads(&module, 1);
            assert!(
                module.functions.len() > 1 || form == "bare",
                "{form}/{name}"
            );
            for threads in [2, 3, 8] {
                let many = tensorwasm_analysis::analyze_with_threads(&module, threads);
                assert_eq!(one, many, "{form}/{name} on {threads} threads");
            }
        }
    }
}
