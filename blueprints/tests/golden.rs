//! Golden tests: the KernelIR text and the PTX of the sample kernels (and of the operator
//! classes whose lowering depends on the target) are checked in under `tests/golden/`.
//! Refresh them with `BLESS=1 cargo test -p tensorwasm-blueprints --test golden`.

mod common;

use std::path::PathBuf;

use tensorwasm_blueprints::kernel_ir::{BinOp, UnOp};
use tensorwasm_blueprints::{EmitOptions, Target, emit_ptx, samples};

use common::{AnyOp, op_kernel};

fn check(file: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    if std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
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
}

fn ptx(k: &tensorwasm_blueprints::Kernel, target: Target) -> String {
    emit_ptx(k, &EmitOptions::for_target(target)).unwrap_or_else(|e| panic!("{}: {e}", k.name))
}

#[test]
fn samples_match_golden() {
    for k in samples::all().expect("samples verify") {
        check(&format!("{}.kir", k.name), &k.to_string());
        check(&format!("{}.sm_75.ptx", k.name), &ptx(&k, Target::SM_75));
    }
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
    check("minmax.sm_75.ptx", &ptx(&minmax, Target::SM_75));
    check("minmax.sm_80.ptx", &ptx(&minmax, Target::SM_80));
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
    check("traps.sm_100.ptx", &ptx(&k, Target::SM_100));
}
