//! Golden tests: the KernelIR text and the PTX of the sample kernels (and of the operator
//! classes whose lowering depends on the target) are checked in under `tests/golden/`.
//! Refresh them with `BLESS=1 cargo test -p tensorwasm-blueprints --test golden`.

mod common;

use std::path::PathBuf;

use tensorwasm_blueprints::kernel_ir::{BinOp, UnOp};
use tensorwasm_blueprints::{EmitOptions, Target, emit_ptx, samples};

use common::{AnyOp, op_kernel, switch};

/// Compares `actual` with the golden file, or with `BLESS` on rewrites a file that differs or is
/// missing; returns 1 when it rewrote one, so that the test can fail ([`none_blessed`]).
fn check(file: &str, actual: &str) -> usize {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    if switch("BLESS") {
        if std::fs::read_to_string(&path).is_ok_and(|old| old == actual) {
            return 0;
        }
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return 1;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (run with BLESS=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or(expected.lines().count().min(actual.lines().count()), |l| l);
        panic!(
            "{file} differs from the golden file at line {} (run with BLESS=1 to accept):\n\
             --- expected\n{}\n+++ actual\n{}",
            line + 1,
            expected.lines().nth(line).unwrap_or("<end>"),
            actual.lines().nth(line).unwrap_or("<end>"),
        );
    }
    0
}

/// A run that blessed never passes: the rewritten files are checked by the next run.
fn none_blessed(blessed: usize) {
    assert!(
        blessed == 0,
        "blessed {blessed} golden file(s); run again without BLESS to check"
    );
}

fn ptx(k: &tensorwasm_blueprints::Kernel, target: Target) -> String {
    emit_ptx(k, &EmitOptions::for_target(target)).unwrap_or_else(|e| panic!("{}: {e}", k.name))
}

#[test]
fn samples_match_golden() {
    let mut blessed = 0;
    for k in samples::all().expect("samples verify") {
        blessed += check(&format!("{}.kir", k.name), &k.to_string());
        blessed += check(&format!("{}.sm_75.ptx", k.name), &ptx(&k, Target::SM_75));
    }
    none_blessed(blessed);
}

#[test]
fn target_dependent_lowering_matches_golden() {
    let minmax = op_kernel(
        "minmax",
        &[
            AnyOp::Bin(BinOp::F32Min),
            AnyOp::Bin(BinOp::F32Max),
            AnyOp::Bin(BinOp::F64Min),
            AnyOp::Bin(BinOp::F64Max),
        ],
    );
    let mut blessed = check("minmax.sm_75.ptx", &ptx(&minmax, Target::SM_75));
    blessed += check("minmax.sm_80.ptx", &ptx(&minmax, Target::SM_80));
    let k = op_kernel(
        "traps",
        &[
            AnyOp::Un(UnOp::I32TruncF32S),
            AnyOp::Un(UnOp::I64TruncF64U),
            AnyOp::Un(UnOp::I32TruncSatF64S),
            AnyOp::Bin(BinOp::I64RemS),
            AnyOp::Bin(BinOp::I64Rotr),
            AnyOp::Bin(BinOp::I32Shl),
        ],
    );
    blessed += check("traps.sm_100.ptx", &ptx(&k, Target::SM_100));
    none_blessed(blessed);
}
