//! The lowering of each operator says what `docs/OFFLOAD.md` says it does: these tests read the
//! PTX text (ptxas checks validity elsewhere) through one `check` helper.

mod common;

use common::{AnyOp, all_ops, coverage_kernels, memory_kernel, op_kernel};
use tensorwasm_blueprints::kernel_ir::{BinOp, UnOp};
use tensorwasm_blueprints::{EmitOptions, Target, emit_ptx, samples};

fn emit(ops: &[AnyOp], target: Target) -> String {
    let k = op_kernel("t", ops);
    emit_ptx(&k, &EmitOptions::for_target(target)).expect("emits")
}

/// Asserts that the PTX for `op` on `target` contains every string in `want` and none in `deny`.
fn check(op: AnyOp, target: Target, want: &[&str], deny: &[&str]) {
    let ptx = emit(&[op], target);
    for w in want {
        assert!(
            ptx.contains(w),
            "{op:?} on {target}: expected `{w}` in\n{ptx}"
        );
    }
    for d in deny {
        assert!(
            !ptx.contains(d),
            "{op:?} on {target}: unexpected `{d}` in\n{ptx}"
        );
    }
}

fn every_emitted_kernel() -> Vec<String> {
    let mut kernels: Vec<_> = coverage_kernels().into_iter().map(|(k, _)| k).collect();
    kernels.push(memory_kernel(true));
    kernels.push(memory_kernel(false));
    kernels.extend(samples::all().expect("samples"));
    let mut out = Vec::new();
    for k in &kernels {
        for t in [Target::SM_75, Target::SM_80, Target::SM_90, Target::SM_100] {
            out.push(emit_ptx(k, &EmitOptions::for_target(t)).expect("emits"));
        }
    }
    out
}

#[test]
fn every_operator_emits_alone_on_every_target() {
    for op in all_ops() {
        for t in [Target::SM_75, Target::SM_80, Target::SM_90, Target::SM_100] {
            let ptx = emit(&[op], t);
            assert!(ptx.contains(&format!(".target {t}")), "{op:?}");
        }
    }
}

#[test]
fn no_ftz_no_fma_and_explicit_rounding_everywhere() {
    for ptx in every_emitted_kernel() {
        for bad in [".ftz", "fma.", "mad.f", "mad.rn", ".approx", ".full"] {
            assert!(!ptx.contains(bad), "found `{bad}` in\n{ptx}");
        }
        for line in ptx.lines().map(str::trim) {
            let op = line.split_whitespace().next().unwrap_or("");
            let float_arith = ["add.", "sub.", "mul.", "div.", "sqrt."]
                .iter()
                .any(|p| op.starts_with(p))
                && (op.ends_with(".f32") || op.ends_with(".f64"));
            if float_arith {
                assert!(op.contains(".rn."), "float arithmetic without .rn: {line}");
            }
        }
    }
}

#[test]
fn float_min_max() {
    let (min32, max32) = (AnyOp::Bin(BinOp::F32Min), AnyOp::Bin(BinOp::F32Max));
    // sm_80+: min.NaN.f32 returns canonical NaN on any NaN input and orders -0 < +0.
    check(min32, Target::SM_80, &["min.NaN.f32"], &["setp.nan"]);
    check(max32, Target::SM_90, &["max.NaN.f32"], &["setp.nan"]);
    // sm_75: no .NaN modifier; explicit NaN test and sign-of-zero fix.
    check(
        min32,
        Target::SM_75,
        &["min.f32", "setp.nan.f32", "or.b32", "0f7FC00000"],
        &[".NaN"],
    );
    check(
        max32,
        Target::SM_75,
        &["max.f32", "setp.nan.f32", "and.b32"],
        &[".NaN"],
    );
    // f64 has no .NaN form on any target.
    for t in [Target::SM_75, Target::SM_100] {
        check(
            AnyOp::Bin(BinOp::F64Min),
            t,
            &["min.f64", "setp.nan.f64", "or.b64", "0d7FF8000000000000"],
            &[".NaN"],
        );
        check(
            AnyOp::Bin(BinOp::F64Max),
            t,
            &["max.f64", "and.b64"],
            &[".NaN"],
        );
    }
}

#[test]
fn float_bit_operations_are_integer_ops() {
    let t = Target::SM_75;
    check(AnyOp::Un(UnOp::F32Neg), t, &["xor.b32"], &["neg.f32"]);
    check(AnyOp::Un(UnOp::F64Abs), t, &["and.b64"], &["abs.f64"]);
    check(
        AnyOp::Bin(BinOp::F32Copysign),
        t,
        &["and.b32", "or.b32"],
        &["copysign"],
    );
}

#[test]
fn rounding_ops() {
    let t = Target::SM_75;
    check(AnyOp::Un(UnOp::F32Ceil), t, &["cvt.rpi.f32.f32"], &[]);
    check(AnyOp::Un(UnOp::F64Floor), t, &["cvt.rmi.f64.f64"], &[]);
    check(AnyOp::Un(UnOp::F32Trunc), t, &["cvt.rzi.f32.f32"], &[]);
    check(AnyOp::Un(UnOp::F64Nearest), t, &["cvt.rni.f64.f64"], &[]);
    check(AnyOp::Un(UnOp::F32Sqrt), t, &["sqrt.rn.f32"], &[]);
    check(AnyOp::Bin(BinOp::F64Div), t, &["div.rn.f64"], &[]);
    check(AnyOp::Un(UnOp::F32DemoteF64), t, &["cvt.rn.f32.f64"], &[]);
    check(AnyOp::Un(UnOp::F64PromoteF32), t, &["cvt.f64.f32"], &[]);
    check(AnyOp::Un(UnOp::F32ConvertI64U), t, &["cvt.rn.f32.u64"], &[]);
}

#[test]
fn truncation_traps_or_saturates() {
    let t = Target::SM_75;
    // i32.trunc_f32_s accepts -2^31 <= x < 2^31 (both exact in f32), traps otherwise and on NaN.
    check(
        AnyOp::Un(UnOp::I32TruncF32S),
        t,
        &[
            "setp.lt.f32",
            "0f4F000000",
            "setp.ge.and.f32",
            "0fCF000000",
            "@!%p",
            "st.global.u32",
        ],
        &[],
    );
    // From f64 the lower bound is exclusive: -2^31 - 1 is exact in f64.
    check(
        AnyOp::Un(UnOp::I32TruncF64S),
        t,
        &["setp.gt.and.f64", "0dC1E0000000200000"],
        &[],
    );
    // Unsigned: -1 < x < 2^64.
    check(
        AnyOp::Un(UnOp::I64TruncF64U),
        t,
        &[
            "0d43F0000000000000",
            "0dBFF0000000000000",
            "cvt.rzi.u64.f64",
        ],
        &[],
    );
    // Saturating: cvt.rzi clamps; NaN is forced to 0 (PTX gives MININT for f64 / 64-bit).
    check(
        AnyOp::Un(UnOp::I64TruncSatF64S),
        t,
        &["cvt.rzi.s64.f64", "setp.nan.f64", "selp.b64"],
        &["$L__1:"],
    );
}

#[test]
fn integer_division_traps() {
    let t = Target::SM_75;
    check(
        AnyOp::Bin(BinOp::I32DivS),
        t,
        &[
            "setp.eq.s32",
            "-2147483648",
            "setp.eq.and.s32",
            "div.s32",
            "st.global.u32",
        ],
        &[],
    );
    check(
        AnyOp::Bin(BinOp::I64DivU),
        t,
        &["setp.eq.s64", "div.u64"],
        &[],
    );
    // rem_s by -1 is 0, never a trap: the divisor is replaced by 1.
    check(
        AnyOp::Bin(BinOp::I32RemS),
        t,
        &["selp.b32", "rem.s32"],
        &["setp.eq.and"],
    );
    check(AnyOp::Bin(BinOp::I64RemU), t, &["rem.u64"], &[]);
}

#[test]
fn shifts_mask_their_count() {
    let t = Target::SM_75;
    check(
        AnyOp::Bin(BinOp::I32Shl),
        t,
        &["and.b32", ", 31;", "shl.b32"],
        &[],
    );
    check(
        AnyOp::Bin(BinOp::I64ShrS),
        t,
        &["cvt.u32.u64", ", 63;", "shr.s64"],
        &[],
    );
    check(AnyOp::Bin(BinOp::I64ShrU), t, &[", 63;", "shr.u64"], &[]);
    check(AnyOp::Bin(BinOp::I32Rotl), t, &["shf.l.wrap.b32"], &[]);
    check(AnyOp::Bin(BinOp::I32Rotr), t, &["shf.r.wrap.b32"], &[]);
    check(
        AnyOp::Bin(BinOp::I64Rotl),
        t,
        &["shl.b64", "shr.u64", "or.b64"],
        &[],
    );
}

#[test]
fn bit_counts() {
    let t = Target::SM_75;
    check(AnyOp::Un(UnOp::I32Ctz), t, &["brev.b32", "clz.b32"], &[]);
    check(
        AnyOp::Un(UnOp::I64Ctz),
        t,
        &["brev.b64", "clz.b64", "cvt.u64.u32"],
        &[],
    );
    check(AnyOp::Un(UnOp::I64Popcnt), t, &["popc.b64"], &[]);
    check(AnyOp::Un(UnOp::I64Extend32S), t, &["cvt.s64.s32"], &[]);
    check(AnyOp::Un(UnOp::I32Extend8S), t, &["cvt.s32.s8"], &[]);
}

#[test]
fn float_comparisons_follow_wasm_nan_rules() {
    let t = Target::SM_75;
    check(AnyOp::Bin(BinOp::F32Ne), t, &["setp.neu.f32"], &[]);
    check(AnyOp::Bin(BinOp::F64Eq), t, &["setp.eq.f64"], &[]);
    check(AnyOp::Bin(BinOp::F64Lt), t, &["setp.lt.f64"], &["ltu"]);
    check(AnyOp::Bin(BinOp::I32LtU), t, &["setp.lt.u32"], &[]);
    check(AnyOp::Bin(BinOp::I64GeS), t, &["setp.ge.s64"], &[]);
}

#[test]
fn narrow_and_unaligned_memory() {
    let aligned = emit_ptx(&memory_kernel(true), &EmitOptions::default()).expect("emits");
    for w in [
        "ld.global.s8",
        "ld.global.u16",
        "ld.global.s32",
        "st.global.u8",
        "st.global.u16",
    ] {
        assert!(aligned.contains(w), "missing {w}");
    }
    let unaligned = emit_ptx(&memory_kernel(false), &EmitOptions::default()).expect("emits");
    for bad in [
        "ld.global.u32",
        "ld.global.f32",
        "ld.global.u64",
        "st.global.u32",
        "st.global.f64",
    ] {
        assert!(!unaligned.contains(bad), "unaligned kernel uses {bad}");
    }
}

#[test]
fn targets_pick_ptx_versions() {
    let k = samples::vadd().expect("vadd");
    for (t, v) in [
        ("sm_75", "8.0"),
        ("sm_90", "8.0"),
        ("sm_100", "8.6"),
        ("sm_120", "8.7"),
    ] {
        let ptx = emit_ptx(
            &k,
            &EmitOptions::for_target(Target::parse(t).expect("known")),
        )
        .expect("emits");
        assert!(ptx.contains(&format!(".version {v}\n.target {t}\n")), "{t}");
    }
    assert!(Target::parse("sm_70").is_err());
    assert!(Target::parse("compute_80").is_err());
}
