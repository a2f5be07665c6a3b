//! Exact semantics of single instructions, each checked against the PTX ISA rule it cites
//! (PTX ISA 9.x, section numbers as in docs/ORACLE.md).

mod common;

use common::*;

const CANON: u32 = 0x7fff_ffff;
const QNAN: u32 = 0x7fc0_0000;
const NEG0: u32 = 0x8000_0000;

// ---- min / max (9.7.3.11/12): NaN operand ignored, both NaN -> canonical NaN, -0 < +0 ----

#[test]
fn min_max_nan_and_signed_zero() {
    let min = |a: V, b: V| ev32("min.f32 %dst, %s0, %s1", "f32", &[a, b]);
    let max = |a: V, b: V| ev32("max.f32 %dst, %s0, %s1", "f32", &[a, b]);
    assert_eq!(min(fb(QNAN), f(2.0)), 2f32.to_bits());
    assert_eq!(min(f(2.0), fb(QNAN)), 2f32.to_bits());
    assert_eq!(max(fb(QNAN), f(-3.0)), (-3f32).to_bits());
    assert_eq!(min(fb(QNAN), fb(0xffc0_0001)), CANON);
    assert_eq!(max(fb(QNAN), fb(QNAN)), CANON);
    assert_eq!(min(f(0.0), f(-0.0)), NEG0);
    assert_eq!(min(f(-0.0), f(0.0)), NEG0);
    assert_eq!(max(f(-0.0), f(0.0)), 0);
    assert_eq!(max(f(0.0), f(-0.0)), 0);
    assert_eq!(min(f(-1.0), f(1.0)), (-1f32).to_bits());
    assert_eq!(max(f(f32::NEG_INFINITY), f(-1e30)), (-1e30f32).to_bits());
}

#[test]
fn min_max_nan_modifier_propagates_canonical_nan() {
    let min = |a: V, b: V| ev32("min.NaN.f32 %dst, %s0, %s1", "f32", &[a, b]);
    let max = |a: V, b: V| ev32("max.NaN.f32 %dst, %s0, %s1", "f32", &[a, b]);
    assert_eq!(min(fb(QNAN), f(2.0)), CANON);
    assert_eq!(max(f(2.0), fb(0xffc0_1234)), CANON);
    assert_eq!(min(f(3.0), f(2.0)), 2f32.to_bits());
    assert_eq!(min(f(0.0), f(-0.0)), NEG0);
}

#[test]
fn min_max_f64() {
    let min = |a: f64, b: f64| f64::from_bits(ev("min.f64 %dst, %s0, %s1", "f64", &[d(a), d(b)]));
    assert_eq!(min(f64::NAN, 1.5), 1.5);
    assert_eq!(min(0.0, -0.0).to_bits(), (-0.0f64).to_bits());
    let max = |a: f64, b: f64| ev("max.f64 %dst, %s0, %s1", "f64", &[d(a), d(b)]);
    // Both NaN: the second operand, quieted (as an H200 computes it; see tests/hardware.rs).
    assert_eq!(max(f64::NAN, f64::NAN), 0x7ff8_0000_0000_0000);
}

// ---- .ftz (9.7.3): subnormal inputs and results flushed to sign-preserving zero ----

#[test]
fn ftz_flushes_subnormal_inputs_and_results() {
    let sub = f32::from_bits(0x0000_0001); // smallest positive subnormal
    let neg_sub = f32::from_bits(0x8000_0010);
    assert_eq!(
        ev32("add.rn.f32 %dst, %s0, %s1", "f32", &[f(sub), f(0.0)]),
        1
    );
    assert_eq!(
        ev32("add.rn.ftz.f32 %dst, %s0, %s1", "f32", &[f(sub), f(0.0)]),
        0
    );
    assert_eq!(
        ev32(
            "add.rn.ftz.f32 %dst, %s0, %s1",
            "f32",
            &[f(neg_sub), f(-0.0)]
        ),
        NEG0
    );
    // A normal product whose result is subnormal: 2^-70 * 2^-70 = 2^-140.
    let x = 2f32.powi(-70);
    assert_eq!(ev32("mul.rn.f32 %dst, %s0, %s1", "f32", &[f(x), f(x)]), 512);
    assert_eq!(
        ev32("mul.rn.ftz.f32 %dst, %s0, %s1", "f32", &[f(x), f(-x)]),
        NEG0
    );
    assert_eq!(
        ev32("min.ftz.f32 %dst, %s0, %s1", "f32", &[f(neg_sub), f(1.0)]),
        NEG0
    );
    // Without .ftz subnormals survive.
    assert_eq!(
        ev32("min.f32 %dst, %s0, %s1", "f32", &[f(neg_sub), f(1.0)]),
        neg_sub.to_bits()
    );
    // setp.ftz compares the flushed value.
    assert_eq!(
        ev32("setp.eq.ftz.f32 %dst, %s0, %s1", "pred", &[f(sub), f(0.0)]),
        1
    );
    assert_eq!(
        ev32("setp.eq.f32 %dst, %s0, %s1", "pred", &[f(sub), f(0.0)]),
        0
    );
}

// ---- rounding: .rn once, fma once, directed modes exact ----

#[test]
fn fma_rounds_once_mul_add_rounds_twice() {
    let a = f32::from_bits(0x3f80_0001);
    let c = -f32::from_bits(0x3f80_0002);
    assert_eq!(
        evf("fma.rn.f32 %dst, %s0, %s1, %s2", &[f(a), f(a), f(c)]),
        2f32.powi(-46)
    );
    assert_eq!(
        evf("mad.rn.f32 %dst, %s0, %s1, %s2", &[f(a), f(a), f(c)]),
        2f32.powi(-46)
    );
    let p = evf("mul.rn.f32 %dst, %s0, %s1", &[f(a), f(a)]);
    assert_eq!(evf("add.rn.f32 %dst, %s0, %s1", &[f(p), f(c)]), 0.0);
    let x = 0.1f64;
    let r = f64::from_bits(ev(
        "fma.rn.f64 %dst, %s0, %s1, %s2",
        "f64",
        &[d(x), d(10.0), d(-1.0)],
    ));
    assert_eq!(r, x.mul_add(10.0, -1.0));
}

#[test]
fn directed_rounding_f32() {
    let one = 1.0f32;
    let tiny = 2f32.powi(-30);
    assert_eq!(evf("add.rz.f32 %dst, %s0, %s1", &[f(one), f(tiny)]), 1.0);
    assert_eq!(evf("add.rm.f32 %dst, %s0, %s1", &[f(one), f(tiny)]), 1.0);
    assert_eq!(
        evf("add.rp.f32 %dst, %s0, %s1", &[f(one), f(tiny)]),
        one.next_up()
    );
    assert_eq!(evf("add.rn.f32 %dst, %s0, %s1", &[f(one), f(tiny)]), 1.0);
    assert_eq!(
        evf("add.rm.f32 %dst, %s0, %s1", &[f(-one), f(-tiny)]),
        (-one).next_down()
    );
    assert_eq!(evf("add.rz.f32 %dst, %s0, %s1", &[f(-one), f(-tiny)]), -1.0);
    assert_eq!(
        evf("sub.rp.f32 %dst, %s0, %s1", &[f(one), f(-tiny)]),
        one.next_up()
    );
    // Exact zero sums: +0 except in .rm (IEEE 754 6.3).
    assert_eq!(
        ev32("add.rm.f32 %dst, %s0, %s1", "f32", &[f(1.5), f(-1.5)]),
        NEG0
    );
    assert_eq!(
        ev32("add.rz.f32 %dst, %s0, %s1", "f32", &[f(1.5), f(-1.5)]),
        0
    );
    // Division and square root.
    let third_rn = 1.0f32 / 3.0;
    // 1/3 rounded to nearest is above 1/3, so .rz and .rm give the value below it.
    let third_lo = if f64::from(third_rn) > 1.0 / 3.0 {
        third_rn.next_down()
    } else {
        third_rn
    };
    assert_eq!(third_lo.to_bits(), 0x3eaa_aaaa);
    assert_eq!(
        evf("div.rn.f32 %dst, %s0, %s1", &[f(1.0), f(3.0)]),
        third_rn
    );
    assert_eq!(
        evf("div.rz.f32 %dst, %s0, %s1", &[f(1.0), f(3.0)]),
        third_lo
    );
    assert_eq!(
        evf("div.rp.f32 %dst, %s0, %s1", &[f(1.0), f(3.0)]),
        third_lo.next_up()
    );
    assert_eq!(
        evf("div.rm.f32 %dst, %s0, %s1", &[f(1.0), f(-3.0)]),
        -third_lo.next_up()
    );
    assert_eq!(
        evf("div.rz.f32 %dst, %s0, %s1", &[f(1.0), f(-3.0)]),
        -third_lo
    );
    let s2 = 2f32.sqrt();
    let lo = if f64::from(s2) > 2f64.sqrt() {
        s2.next_down()
    } else {
        s2
    };
    assert_eq!(evf("sqrt.rz.f32 %dst, %s0", &[f(2.0)]), lo);
    assert_eq!(evf("sqrt.rp.f32 %dst, %s0", &[f(2.0)]), lo.next_up());
    assert_eq!(evf("sqrt.rn.f32 %dst, %s0", &[f(2.0)]), s2);
    assert_eq!(evf("rcp.rn.f32 %dst, %s0", &[f(3.0)]), third_rn);
    assert_eq!(evf("rcp.rz.f32 %dst, %s0", &[f(3.0)]), third_lo);
    assert_eq!(evf("rcp.rp.f32 %dst, %s0", &[f(3.0)]), third_lo.next_up());
    // Overflow: rz saturates to MAX, rn goes to infinity.
    assert_eq!(
        evf("mul.rz.f32 %dst, %s0, %s1", &[f(f32::MAX), f(2.0)]),
        f32::MAX
    );
    assert_eq!(
        evf("mul.rn.f32 %dst, %s0, %s1", &[f(f32::MAX), f(2.0)]),
        f32::INFINITY
    );
    assert_eq!(
        evf("mul.rm.f32 %dst, %s0, %s1", &[f(f32::MAX), f(-2.0)]),
        f32::NEG_INFINITY
    );
    // fma in a directed mode: 1*1 + 2^-40 rounds up only in .rp.
    assert_eq!(
        evf(
            "fma.rp.f32 %dst, %s0, %s1, %s2",
            &[f(1.0), f(1.0), f(2f32.powi(-40))]
        ),
        one.next_up()
    );
    assert_eq!(
        evf(
            "fma.rz.f32 %dst, %s0, %s1, %s2",
            &[f(1.0), f(1.0), f(2f32.powi(-40))]
        ),
        1.0
    );
}

#[test]
fn sat_clamps_and_flushes_nan() {
    assert_eq!(
        evf("add.rn.sat.f32 %dst, %s0, %s1", &[f(0.75), f(0.5)]),
        1.0
    );
    assert_eq!(
        evf("add.rn.sat.f32 %dst, %s0, %s1", &[f(-0.75), f(0.5)]),
        0.0
    );
    assert_eq!(
        ev32(
            "mul.rn.sat.f32 %dst, %s0, %s1",
            "f32",
            &[f(f32::INFINITY), f(0.0)]
        ),
        0
    );
}

#[test]
fn nan_results_are_canonical() {
    assert_eq!(
        ev32(
            "add.rn.f32 %dst, %s0, %s1",
            "f32",
            &[f(f32::INFINITY), f(f32::NEG_INFINITY)]
        ),
        CANON
    );
    assert_eq!(ev32("sqrt.rn.f32 %dst, %s0", "f32", &[f(-1.0)]), CANON);
    assert_eq!(
        ev32("div.rn.f32 %dst, %s0, %s1", "f32", &[f(0.0), f(0.0)]),
        CANON
    );
}

#[test]
fn abs_neg_copysign() {
    assert_eq!(ev32("abs.f32 %dst, %s0", "f32", &[f(-0.0)]), 0);
    assert_eq!(ev32("neg.f32 %dst, %s0", "f32", &[f(0.0)]), NEG0);
    assert_eq!(evf("copysign.f32 %dst, %s0, %s1", &[f(-1.0), f(2.5)]), -2.5);
    assert_eq!(evf("copysign.f32 %dst, %s0, %s1", &[f(1.0), f(-2.5)]), 2.5);
    assert_eq!(
        f64::from_bits(ev("abs.f64 %dst, %s0", "f64", &[d(-3.0)])),
        3.0
    );
}

// ---- setp / testp / selp / slct ----

#[test]
fn setp_ordered_and_unordered() {
    let p = |instr: &str, a: f32, b: f32| ev32(instr, "pred", &[f(a), f(b)]);
    assert_eq!(p("setp.ne.f32 %dst, %s0, %s1", f32::NAN, 1.0), 0);
    assert_eq!(p("setp.neu.f32 %dst, %s0, %s1", f32::NAN, 1.0), 1);
    assert_eq!(p("setp.lt.f32 %dst, %s0, %s1", f32::NAN, 1.0), 0);
    assert_eq!(p("setp.ltu.f32 %dst, %s0, %s1", f32::NAN, 1.0), 1);
    assert_eq!(p("setp.num.f32 %dst, %s0, %s1", 0.0, 1.0), 1);
    assert_eq!(p("setp.nan.f32 %dst, %s0, %s1", 0.0, f32::NAN), 1);
    assert_eq!(p("setp.eq.f32 %dst, %s0, %s1", 0.0, -0.0), 1);
    let i = |instr: &str, a: i32, b: i32| ev32(instr, "pred", &[s32(a), s32(b)]);
    assert_eq!(i("setp.lt.s32 %dst, %s0, %s1", -1, 0), 1);
    assert_eq!(
        ev32(
            "setp.lo.u32 %dst, %s0, %s1",
            "pred",
            &[u32v(u32::MAX), u32v(0)]
        ),
        0
    );
    assert_eq!(
        ev32(
            "setp.hi.u32 %dst, %s0, %s1",
            "pred",
            &[u32v(u32::MAX), u32v(0)]
        ),
        1
    );
    // setp with a boolean combiner and a negated predicate.
    assert_eq!(
        ev32(
            "setp.lt.and.s32 %dst, %s0, %s1, !%s2",
            "pred",
            &[s32(1), s32(2), pred(false)]
        ),
        1
    );
    assert_eq!(
        ev32(
            "setp.lt.and.s32 %dst, %s0, %s1, %s2",
            "pred",
            &[s32(1), s32(2), pred(false)]
        ),
        0
    );
}

#[test]
fn testp_selp_slct() {
    let t = |k: &str, x: f32| ev32(&format!("testp.{k}.f32 %dst, %s0"), "pred", &[f(x)]);
    assert_eq!(t("subnormal", f32::from_bits(1)), 1);
    assert_eq!(t("normal", f32::from_bits(1)), 0);
    // The ISA counts zeros as normal numbers, and the hardware agrees.
    assert_eq!(t("normal", 0.0), 1);
    assert_eq!(t("normal", 1.0), 1);
    assert_eq!(t("finite", f32::INFINITY), 0);
    assert_eq!(t("infinite", f32::NEG_INFINITY), 1);
    assert_eq!(t("notanumber", f32::NAN), 1);
    assert_eq!(t("number", f32::NAN), 0);
    assert_eq!(
        ev32(
            "selp.u32 %dst, %s0, %s1, %s2",
            "u32",
            &[u32v(7), u32v(9), pred(true)]
        ),
        7
    );
    assert_eq!(
        ev32(
            "selp.u32 %dst, %s0, %s1, %s2",
            "u32",
            &[u32v(7), u32v(9), pred(false)]
        ),
        9
    );
    assert_eq!(
        ev32(
            "slct.u32.s32 %dst, %s0, %s1, %s2",
            "u32",
            &[u32v(7), u32v(9), s32(0)]
        ),
        7
    );
    assert_eq!(
        ev32(
            "slct.u32.s32 %dst, %s0, %s1, %s2",
            "u32",
            &[u32v(7), u32v(9), s32(-1)]
        ),
        9
    );
    assert_eq!(
        ev32(
            "slct.u32.f32 %dst, %s0, %s1, %s2",
            "u32",
            &[u32v(7), u32v(9), f(-0.0)]
        ),
        7
    );
    assert_eq!(
        ev32(
            "slct.u32.f32 %dst, %s0, %s1, %s2",
            "u32",
            &[u32v(7), u32v(9), f(f32::NAN)]
        ),
        9
    );
}

// ---- cvt (9.7.9.21) ----

#[test]
fn cvt_float_to_int_saturates_and_maps_nan() {
    let c = |instr: &str, x: f32| ev(instr, "s64", &[f(x)]);
    let s32c = |x: f32| ev32("cvt.rzi.s32.f32 %dst, %s0", "s32", &[f(x)]) as i32;
    assert_eq!(s32c(3e9), i32::MAX);
    assert_eq!(s32c(-3e9), i32::MIN);
    assert_eq!(s32c(f32::INFINITY), i32::MAX);
    assert_eq!(s32c(f32::NAN), 0);
    assert_eq!(s32c(-7.9), -7);
    assert_eq!(ev32("cvt.rzi.u32.f32 %dst, %s0", "u32", &[f(-1.5)]), 0);
    assert_eq!(
        ev32("cvt.rzi.u32.f32 %dst, %s0", "u32", &[f(5e9)]),
        u32::MAX
    );
    assert_eq!(ev32("cvt.rzi.u32.f32 %dst, %s0", "u32", &[f(f32::NAN)]), 0);
    // NaN from .f64 or into a 64-bit integer gives 1 << (width - 1).
    assert_eq!(
        ev32("cvt.rzi.s32.f64 %dst, %s0", "s32", &[d(f64::NAN)]),
        0x8000_0000
    );
    assert_eq!(
        ev32("cvt.rzi.u32.f64 %dst, %s0", "u32", &[d(f64::NAN)]),
        0x8000_0000
    );
    assert_eq!(c("cvt.rzi.s64.f32 %dst, %s0", f32::NAN), 1 << 63);
    assert_eq!(
        ev("cvt.rzi.u64.f32 %dst, %s0", "u64", &[f(f32::NAN)]),
        1 << 63
    );
    assert_eq!(c("cvt.rzi.s64.f32 %dst, %s0", -1e30) as i64, i64::MIN);
}

#[test]
fn cvt_integer_rounding_modes() {
    let r = |m: &str, x: f32| ev32(&format!("cvt.{m}.s32.f32 %dst, %s0"), "s32", &[f(x)]) as i32;
    assert_eq!(
        [
            r("rni", 2.5),
            r("rni", 3.5),
            r("rni", -2.5),
            r("rni", -0.5),
            r("rni", 1.5000001)
        ],
        [2, 4, -2, 0, 2]
    );
    assert_eq!([r("rzi", 2.7), r("rzi", -2.7)], [2, -2]);
    assert_eq!([r("rmi", 2.7), r("rmi", -2.2)], [2, -3]);
    assert_eq!([r("rpi", 2.2), r("rpi", -2.7)], [3, -2]);
    // Round to integral in float format.
    assert_eq!(evf("cvt.rni.f32.f32 %dst, %s0", &[f(2.5)]), 2.0);
    assert_eq!(evf("cvt.rmi.f32.f32 %dst, %s0", &[f(-0.5)]), -1.0);
    assert_eq!(ev32("cvt.rzi.f32.f32 %dst, %s0", "f32", &[f(-0.5)]), NEG0);
}

#[test]
fn cvt_to_float_rounding() {
    // 2^24 + 1 is not an f32.
    let v = 16_777_217i32;
    let c = |m: &str| evf(&format!("cvt.{m}.f32.s32 %dst, %s0"), &[s32(v)]);
    assert_eq!(
        [c("rn"), c("rz"), c("rm"), c("rp")],
        [16_777_216.0, 16_777_216.0, 16_777_216.0, 16_777_218.0]
    );
    let n = |m: &str| evf(&format!("cvt.{m}.f32.s32 %dst, %s0"), &[s32(-v)]);
    assert_eq!(
        [n("rz"), n("rm"), n("rp")],
        [-16_777_216.0, -16_777_218.0, -16_777_216.0]
    );
    assert_eq!(
        evf("cvt.rn.f32.u64 %dst, %s0", &[u64v(u64::MAX)]),
        18_446_744_073_709_551_616.0
    );
    assert_eq!(
        evf("cvt.rz.f32.u64 %dst, %s0", &[u64v(u64::MAX)]),
        18_446_744_073_709_551_616f32.next_down()
    );
    let x = 0.1f64;
    assert_eq!(evf("cvt.rn.f32.f64 %dst, %s0", &[d(x)]), x as f32);
    let down = if f64::from(x as f32) > x {
        (x as f32).next_down()
    } else {
        x as f32
    };
    assert_eq!(evf("cvt.rz.f32.f64 %dst, %s0", &[d(x)]), down);
    assert_eq!(evf("cvt.rp.f32.f64 %dst, %s0", &[d(x)]), down.next_up());
    assert_eq!(evf("cvt.rz.f32.f64 %dst, %s0", &[d(1e300)]), f32::MAX);
    assert_eq!(
        f64::from_bits(ev("cvt.f64.f32 %dst, %s0", "f64", &[f(0.1)])),
        f64::from(0.1f32)
    );
    assert_eq!(
        ev32("cvt.ftz.f32.f32 %dst, %s0", "f32", &[fb(0x8000_0001)]),
        NEG0
    );
    assert_eq!(evf("cvt.sat.f32.f32 %dst, %s0", &[f(1.5)]), 1.0);
}

#[test]
fn cvt_integer_widths_and_saturation() {
    assert_eq!(ev32("cvt.s32.s8 %dst, %s0", "s32", &[s32(0xff)]) as i32, -1);
    assert_eq!(ev32("cvt.u32.u8 %dst, %s0", "u32", &[u32v(0x1ff)]), 0xff);
    assert_eq!(ev32("cvt.sat.u8.s32 %dst, %s0", "u32", &[s32(300)]), 255);
    assert_eq!(ev32("cvt.sat.u8.s32 %dst, %s0", "u32", &[s32(-5)]), 0);
    assert_eq!(
        ev32("cvt.sat.s8.s32 %dst, %s0", "s32", &[s32(-300)]) as i32,
        -128
    );
    assert_eq!(
        ev32("cvt.u16.u32 %dst, %s0", "u32", &[u32v(0x12345)]),
        0x2345
    );
    assert_eq!(ev("cvt.s64.s32 %dst, %s0", "s64", &[s32(-2)]) as i64, -2);
    assert_eq!(
        ev("cvt.u64.u32 %dst, %s0", "u64", &[u32v(u32::MAX)]),
        u64::from(u32::MAX)
    );
    assert_eq!(
        ev32("cvt.sat.s32.s64 %dst, %s0", "s32", &[s64(1 << 40)]) as i32,
        i32::MAX
    );
    assert_eq!(
        ev32("cvt.u32.u64 %dst, %s0", "u32", &[u64v(0x1_0000_0005)]),
        5
    );
}

// ---- integer arithmetic (9.7.1) ----

#[test]
fn shifts_clamp_at_width() {
    // "Shift amounts greater than the register width N are clamped to N" (shl, shr Notes).
    assert_eq!(
        ev32("shl.b32 %dst, %s0, %s1", "b32", &[b32(1), u32v(31)]),
        0x8000_0000
    );
    assert_eq!(
        ev32("shl.b32 %dst, %s0, %s1", "b32", &[b32(1), u32v(32)]),
        0
    );
    assert_eq!(
        ev32("shl.b32 %dst, %s0, %s1", "b32", &[b32(1), u32v(u32::MAX)]),
        0
    );
    assert_eq!(
        ev32("shr.u32 %dst, %s0, %s1", "u32", &[u32v(u32::MAX), u32v(40)]),
        0
    );
    assert_eq!(
        ev32(
            "shr.b32 %dst, %s0, %s1",
            "b32",
            &[b32(0x8000_0000), u32v(31)]
        ),
        1
    );
    assert_eq!(
        ev32("shr.s32 %dst, %s0, %s1", "s32", &[s32(-8), u32v(100)]) as i32,
        -1
    );
    assert_eq!(
        ev32("shr.s32 %dst, %s0, %s1", "s32", &[s32(8), u32v(100)]),
        0
    );
    assert_eq!(
        ev32("shr.s32 %dst, %s0, %s1", "s32", &[s32(-8), u32v(1)]) as i32,
        -4
    );
    assert_eq!(ev("shl.b64 %dst, %s0, %s1", "b64", &[b64(3), u32v(64)]), 0);
    assert_eq!(
        ev("shl.b64 %dst, %s0, %s1", "b64", &[b64(3), u32v(62)]),
        0xc000_0000_0000_0000
    );
    assert_eq!(
        ev("shr.s64 %dst, %s0, %s1", "s64", &[s64(i64::MIN), u32v(64)]),
        u64::MAX
    );
}

#[test]
fn mul_hi_wide_and_mad() {
    assert_eq!(
        ev32(
            "mul.hi.u32 %dst, %s0, %s1",
            "u32",
            &[u32v(0xffff_ffff), u32v(0xffff_ffff)]
        ),
        0xffff_fffe
    );
    assert_eq!(
        ev32("mul.hi.s32 %dst, %s0, %s1", "s32", &[s32(-1), s32(1)]) as i32,
        -1
    );
    assert_eq!(
        ev32(
            "mul.hi.s32 %dst, %s0, %s1",
            "s32",
            &[s32(i32::MIN), s32(i32::MIN)]
        ),
        0x4000_0000
    );
    assert_eq!(
        ev(
            "mul.hi.u64 %dst, %s0, %s1",
            "u64",
            &[u64v(u64::MAX), u64v(3)]
        ),
        2
    );
    assert_eq!(
        ev("mul.hi.s64 %dst, %s0, %s1", "s64", &[s64(-1), s64(5)]) as i64,
        -1
    );
    assert_eq!(
        ev(
            "mul.wide.s32 %dst, %s0, %s1",
            "s64",
            &[s32(-2), s32(i32::MAX)]
        ) as i64,
        -2 * i64::from(i32::MAX)
    );
    assert_eq!(
        ev(
            "mul.wide.u32 %dst, %s0, %s1",
            "u64",
            &[u32v(u32::MAX), u32v(u32::MAX)]
        ),
        u64::from(u32::MAX) * u64::from(u32::MAX)
    );
    assert_eq!(
        ev32(
            "mul.lo.s32 %dst, %s0, %s1",
            "s32",
            &[s32(0x10000), s32(0x10001)]
        ),
        0x10000
    );
    assert_eq!(
        ev32(
            "mad.lo.s32 %dst, %s0, %s1, %s2",
            "s32",
            &[s32(3), s32(4), s32(5)]
        ),
        17
    );
    assert_eq!(
        ev32(
            "mad.hi.u32 %dst, %s0, %s1, %s2",
            "u32",
            &[u32v(u32::MAX), u32v(2), u32v(1)]
        ),
        2
    );
    assert_eq!(
        ev(
            "mad.wide.s32 %dst, %s0, %s1, %s2",
            "s64",
            &[s32(-3), s32(4), s64(1)]
        ) as i64,
        -11
    );
}

#[test]
fn bit_operations() {
    assert_eq!(ev32("brev.b32 %dst, %s0", "b32", &[b32(1)]), 0x8000_0000);
    assert_eq!(
        ev32("brev.b32 %dst, %s0", "b32", &[b32(0x0000_00f0)]),
        0x0f00_0000
    );
    assert_eq!(ev("brev.b64 %dst, %s0", "b64", &[b64(1)]), 1 << 63);
    assert_eq!(ev32("clz.b32 %dst, %s0", "u32", &[b32(0)]), 32);
    assert_eq!(ev32("clz.b32 %dst, %s0", "u32", &[b32(1)]), 31);
    assert_eq!(ev32("clz.b64 %dst, %s0", "u32", &[b64(0)]), 64);
    assert_eq!(ev32("clz.b64 %dst, %s0", "u32", &[b64(1 << 40)]), 23);
    assert_eq!(ev32("popc.b32 %dst, %s0", "u32", &[b32(0xf0f0_0001)]), 9);
    assert_eq!(ev32("popc.b64 %dst, %s0", "u32", &[b64(u64::MAX)]), 64);
    assert_eq!(ev32("bfind.u32 %dst, %s0", "u32", &[u32v(0)]), 0xffff_ffff);
    assert_eq!(ev32("bfind.u32 %dst, %s0", "u32", &[u32v(0x10)]), 4);
    assert_eq!(
        ev32("bfind.shiftamt.u32 %dst, %s0", "u32", &[u32v(0x10)]),
        27
    );
    assert_eq!(ev32("bfind.s32 %dst, %s0", "u32", &[s32(-1)]), 0xffff_ffff);
    assert_eq!(ev32("bfind.s32 %dst, %s0", "u32", &[s32(-16)]), 3);
    assert_eq!(
        ev32("not.b32 %dst, %s0", "b32", &[b32(0x0f0f_0f0f)]),
        0xf0f0_f0f0
    );
    assert_eq!(
        ev32("and.b32 %dst, %s0, %s1", "b32", &[b32(0b1100), b32(0b1010)]),
        0b1000
    );
    assert_eq!(
        ev32("xor.b32 %dst, %s0, %s1", "b32", &[b32(0b1100), b32(0b1010)]),
        0b0110
    );
}

#[test]
fn signed_division_remainder_and_edges() {
    let div = |a: i32, b: i32| {
        eval("div.s32 %dst, %s0, %s1", "s32", &[s32(a), s32(b)]).map(|v| v as u32 as i32)
    };
    let rem = |a: i32, b: i32| {
        eval("rem.s32 %dst, %s0, %s1", "s32", &[s32(a), s32(b)]).map(|v| v as u32 as i32)
    };
    assert_eq!(div(-7, 2).unwrap(), -3);
    assert_eq!(rem(-7, 2).unwrap(), -1);
    assert_eq!(rem(7, -2).unwrap(), 1);
    assert_eq!(rem(i32::MIN, -1).unwrap(), 0);
    let e = div(i32::MIN, -1).unwrap_err().to_string();
    assert!(e.contains("overflow") && e.contains("line"), "{e}");
    let e = div(5, 0).unwrap_err().to_string();
    assert!(e.starts_with("integer division by zero at line "), "{e}");
    let e = rem(5, 0).unwrap_err().to_string();
    assert!(e.starts_with("integer division by zero at line "), "{e}");
    let e = eval("div.u64 %dst, %s0, %s1", "u64", &[u64v(1), u64v(0)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("division by zero"), "{e}");
    assert_eq!(
        ev32("div.u32 %dst, %s0, %s1", "u32", &[u32v(u32::MAX), u32v(2)]),
        u32::MAX / 2
    );
    assert_eq!(
        ev32("rem.u32 %dst, %s0, %s1", "u32", &[u32v(u32::MAX), u32v(10)]),
        u32::MAX % 10
    );
}

#[test]
fn min_max_abs_neg_integer_and_saturating_add() {
    assert_eq!(
        ev32("min.s32 %dst, %s0, %s1", "s32", &[s32(-1), s32(1)]) as i32,
        -1
    );
    assert_eq!(
        ev32("min.u32 %dst, %s0, %s1", "u32", &[u32v(u32::MAX), u32v(1)]),
        1
    );
    assert_eq!(ev32("max.s32 %dst, %s0, %s1", "s32", &[s32(-1), s32(1)]), 1);
    assert_eq!(
        ev32("abs.s32 %dst, %s0", "s32", &[s32(i32::MIN)]) as i32,
        i32::MIN
    );
    assert_eq!(ev32("neg.s32 %dst, %s0", "s32", &[s32(5)]) as i32, -5);
    assert_eq!(
        ev32(
            "add.sat.s32 %dst, %s0, %s1",
            "s32",
            &[s32(i32::MAX), s32(1)]
        ) as i32,
        i32::MAX
    );
    assert_eq!(
        ev32(
            "sub.sat.s32 %dst, %s0, %s1",
            "s32",
            &[s32(i32::MIN), s32(1)]
        ) as i32,
        i32::MIN
    );
    assert_eq!(
        ev32("add.s32 %dst, %s0, %s1", "s32", &[s32(i32::MAX), s32(1)]) as i32,
        i32::MIN
    );
    assert_eq!(ev("add.s64 %dst, %s0, %s1", "s64", &[s64(-1), s64(1)]), 0);
}

#[test]
fn literals_in_instructions() {
    assert_eq!(evf("add.rn.f32 %dst, %s0, 0f3F800000", &[f(1.0)]), 2.0);
    assert_eq!(evf("add.rn.f32 %dst, %s0, 0.5", &[f(1.0)]), 1.5);
    assert_eq!(ev32("add.s32 %dst, %s0, -3", "s32", &[s32(1)]) as i32, -2);
    assert_eq!(ev32("and.b32 %dst, %s0, 0xFF", "b32", &[b32(0x1234)]), 0x34);
    assert_eq!(
        f64::from_bits(ev(
            "add.rn.f64 %dst, %s0, 0d3FF0000000000000",
            "f64",
            &[d(1.0)]
        )),
        2.0
    );
}
