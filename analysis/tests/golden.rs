//! Golden tests: each `tests/golden/NAME.wat` is translated, verified and analyzed; the IR, the
//! loop facts and the detector's diagnostics are compared with `NAME.out`. Refresh with
//! `BLESS=1 cargo test -p tensorwasm-analysis --test golden`.

use std::fmt::Write;
use std::path::Path;
use tensorwasm_analysis::loops::{FuncInfo, analyze_function};
use tensorwasm_analysis::{Verdict, analyze, translate, verify::verify};

fn report(wat_text: &str) -> String {
    let wasm = wat::parse_str(wat_text).expect("test input is valid wat");
    let module = translate(&wasm).expect("translate");
    verify(&module).expect("verifier");
    let mut out = String::new();
    for func in &module.functions {
        let _ = writeln!(out, "{func}");
        let info = FuncInfo::new(func);
        for facts in analyze_function(&info) {
            let _ = write!(out, "{facts}");
        }
        out.push('\n');
    }
    let (plan, diags) = analyze(&module);
    for d in &diags {
        let _ = writeln!(out, "{d}");
    }
    for nest in &plan.nests {
        if let Verdict::Candidate(c) = &nest.verdict {
            let _ = writeln!(out, "\nfunction {} {} plan\n{c}", nest.function, nest.root);
        }
    }
    let loops: usize = module.functions.iter().map(|f| f.loops.len()).sum();
    assert_eq!(diags.len(), loops, "one diagnostic per loop");
    // The outermost nests cover every loop once; a nest inside another is decided only when
    // every nest around it was rejected.
    let parent = |n: &tensorwasm_analysis::NestVerdict| {
        let func = module.function(n.function).expect("function");
        func.loop_data(n.root).and_then(|d| d.parent)
    };
    assert_eq!(
        plan.nests
            .iter()
            .filter(|n| parent(n).is_none())
            .map(|n| n.loops.len())
            .sum::<usize>(),
        loops
    );
    for inner in plan.nests.iter().filter(|n| parent(n).is_some()) {
        for outer in &plan.nests {
            if outer.function == inner.function && outer.loops[1..].contains(&inner.root) {
                assert!(
                    matches!(outer.verdict, Verdict::Rejected { .. }),
                    "{} is decided inside the offloadable {}",
                    inner.root,
                    outer.root
                );
            }
        }
    }
    out
}

fn check(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let input = std::fs::read_to_string(dir.join(format!("{name}.wat"))).expect("read input");
    let actual = report(&input);
    let expect_path = dir.join(format!("{name}.out"));
    let old = std::fs::read_to_string(&expect_path).ok();
    // On when set to anything but empty or `0` (docs/TESTING.md). A run that blesses fails.
    if std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0") {
        if old.as_deref() != Some(actual.as_str()) {
            std::fs::write(&expect_path, &actual).expect("write golden");
            panic!("blessed 1 golden file ({name}.out); run again without BLESS to check");
        }
        return;
    }
    let expect = old.unwrap_or_default();
    assert!(
        expect == actual,
        "golden mismatch for {name} (rerun with BLESS=1 to accept)\n--- expected\n{expect}\n--- actual\n{actual}"
    );
}

#[test]
fn vadd_rotated() {
    check("vadd_rotated");
}

#[test]
fn ptr_increment() {
    check("ptr_increment");
}

#[test]
fn unroll2() {
    check("unroll2");
}

#[test]
fn matmul() {
    check("matmul");
}

#[test]
fn calls() {
    check("calls");
}

#[test]
fn fsum() {
    check("fsum");
}

#[test]
fn histogram() {
    check("histogram");
}

#[test]
fn reused_local() {
    check("reused_local");
}

#[test]
fn bound_changes() {
    check("bound_changes");
}

#[test]
fn control() {
    check("control");
}

#[test]
fn unsupported() {
    check("unsupported");
}

#[test]
fn malformed_binary_is_an_error_with_offset() {
    let mut wasm = wat::parse_str("(module (func (result i32) i32.const 1))").expect("wat");
    let last = wasm.len() - 2;
    wasm[last] = 0xff; // not an opcode
    let err = translate(&wasm).expect_err("malformed");
    assert!(err.to_string().starts_with("invalid wasm: "), "{err}");
    assert!(err.to_string().contains("(at offset 0x"), "{err}");
}

/// Three functions, the second invalid (`i32.add` on an empty stack), then a data section whose
/// segment is cut short: a sequential validator reports the body first, at its lower offset.
#[test]
fn the_first_error_in_byte_order_is_reported_on_any_number_of_threads() {
    let mut wasm = wat::parse_str(
        "(module (memory 1)
           (func (result i32) i32.const 1)
           (func (result i32) i32.const 2)
           (func (result i32) i32.const 3)
           (data (i32.const 0) \"abcdef\"))",
    )
    .expect("wat");
    // Second body: `i32.const 2` (0x41 0x02) becomes `i32.add` (0x6a) + `nop` (0x01).
    let at = wasm
        .windows(2)
        .position(|w| w == [0x41, 0x02])
        .expect("second body");
    wasm[at] = 0x6a;
    wasm[at + 1] = 0x01;
    let valid_prefix = wasm.clone();
    let cut = wasm.len() - 3;
    wasm.truncate(cut);
    let mut seen = Vec::new();
    for threads in [1, 2, 3, 8] {
        let err = tensorwasm_analysis::translate_with_threads(&wasm, threads).expect_err("invalid");
        seen.push(err.to_string());
    }
    assert!(seen.iter().all(|e| e == &seen[0]), "{seen:?}");
    assert!(seen[0].contains("type mismatch"), "{}", seen[0]);
    // With only the body wrong, the same error.
    let only_body = tensorwasm_analysis::translate_with_threads(&valid_prefix, 3)
        .expect_err("invalid body")
        .to_string();
    assert_eq!(only_body, seen[0]);
}

#[test]
fn verifier_requires_loop_blocks_in_increasing_order() {
    // `FuncInfo::in_loop` binary-searches a loop's blocks, so the verifier holds the order.
    let wasm = wat::parse_str(
        r#"(module (func (param i32)
             (loop $l (br_if $l (local.get 0)) (if (local.get 0) (then nop)) (br $l))))"#,
    )
    .unwrap();
    let mut module = translate(&wasm).unwrap();
    verify(&module).expect("as translated");
    let blocks = &mut module.functions[0].loops[0].blocks;
    assert!(blocks.len() > 1, "{blocks:?}");
    blocks.reverse();
    let err = verify(&module)
        .expect_err("blocks out of order")
        .to_string();
    assert!(err.contains("not in increasing order"), "{err}");
}

#[test]
fn rejected_nest() {
    check("rejected_nest");
}

#[test]
fn counted_outer() {
    check("counted_outer");
}

#[test]
fn partial_iteration() {
    check("partial_iteration");
}
