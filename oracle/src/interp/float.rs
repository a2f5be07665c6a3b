//! Exact floating-point semantics used by the interpreter: IEEE rounding in all four modes for
//! `.f32` results, flush-to-zero, PTX `min`/`max`, saturation and float<->int conversion.
//!
//! Every function here computes one correctly rounded result; none may approximate. Directed
//! rounding of `.f32` results is computed from an `f64` value plus the sign of its exact error
//! (error-free transformations), which is exact for every `.f32` input. Nothing here may panic.

use std::cmp::Ordering;

/// A PTX floating-point rounding mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rnd {
    /// `.rn`: to nearest, ties to even.
    N,
    /// `.rz`: toward zero.
    Z,
    /// `.rm`: toward negative infinity.
    M,
    /// `.rp`: toward positive infinity.
    P,
}

/// Canonical NaN bits produced by this interpreter for `.f32` NaN results.
pub const CANON_NAN_F32: u32 = 0x7fff_ffff;

/// Flushes a subnormal to a zero of the same sign.
pub fn ftz32(x: f32) -> f32 {
    if x.is_subnormal() {
        f32::from_bits(x.to_bits() & 0x8000_0000)
    } else {
        x
    }
}

/// `.f32` NaN results become the canonical NaN.
pub fn canon32(x: f32) -> f32 {
    if x.is_nan() {
        f32::from_bits(CANON_NAN_F32)
    } else {
        x
    }
}

/// The NaN an `.f64` operation produces when no operand is a NaN (0 × ∞, ∞ − ∞, 0 / 0,
/// `sqrt` of a negative): negative, quiet, no payload — as an H200 (sm_90) computes it.
pub const DEFAULT_NAN_F64: u64 = 0xfff8_0000_0000_0000;

/// A NaN with its quiet bit set (an `.f64` signaling NaN becomes quiet, payload kept).
pub fn quiet64(x: f64) -> f64 {
    f64::from_bits(x.to_bits() | (1 << 51))
}

/// An `.f64` result as the GPU gives it: a NaN result is the first NaN operand in `operands`
/// (the caller lists them in the hardware's priority), quieted, with its sign and payload; a NaN that no operand carried is [`DEFAULT_NAN_F64`]. (Hardware-pinned
/// in `tests/hardware.rs`; `.f32` results are canonical instead.)
pub fn nan64(r: f64, operands: &[f64]) -> f64 {
    if !r.is_nan() {
        return r;
    }
    operands
        .iter()
        .find(|x| x.is_nan())
        .map_or(f64::from_bits(DEFAULT_NAN_F64), |x| quiet64(*x))
}

/// `.sat`: clamp to [0.0, 1.0], NaN to +0.0.
pub fn sat32(x: f32) -> f32 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

/// `.sat` for `.f64`.
pub fn sat64(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

/// Minimal float interface for directed rounding.
pub trait Fp: Copy + PartialOrd {
    /// Next representable value toward +inf.
    fn up(self) -> Self;
    /// Next representable value toward -inf.
    fn down(self) -> Self;
}

impl Fp for f32 {
    fn up(self) -> Self {
        self.next_up()
    }
    fn down(self) -> Self {
        self.next_down()
    }
}

impl Fp for f64 {
    fn up(self) -> Self {
        self.next_up()
    }
    fn down(self) -> Self {
        self.next_down()
    }
}

/// Given `r`, the round-to-nearest of an exact value `t`, and `ord = t.cmp(r)`, returns `t`
/// rounded in `mode`. `negative` is the sign of `t`.
pub fn directed<F: Fp>(r: F, ord: Ordering, mode: Rnd, negative: bool) -> F {
    match (mode, ord) {
        (_, Ordering::Equal) | (Rnd::N, _) => r,
        (Rnd::M, Ordering::Less) => r.down(),
        (Rnd::P, Ordering::Greater) => r.up(),
        (Rnd::Z, Ordering::Less) if !negative => r.down(),
        (Rnd::Z, Ordering::Greater) if negative => r.up(),
        _ => r,
    }
}

/// Rounds the exact value `s + e` to `.f32` in `mode`, where `s` is an `f64` and `e_sign` the sign
/// of the (tiny) exact remainder `e`, with `s = RN64(s + e)`.
pub fn round_to_f32(s: f64, e_sign: Ordering, mode: Rnd) -> f32 {
    let r = s as f32;
    if s.is_nan() || s.is_infinite() {
        return r;
    }
    let ord = match (r as f64).partial_cmp(&s) {
        Some(Ordering::Greater) => Ordering::Less,
        Some(Ordering::Less) => Ordering::Greater,
        _ => e_sign,
    };
    let negative = s < 0.0 || (s == 0.0 && e_sign == Ordering::Less);
    directed(r, ord, mode, negative)
}

fn sign_of(x: f64) -> Ordering {
    x.partial_cmp(&0.0).unwrap_or(Ordering::Equal)
}

/// Error-free sum: `a + b == s + e` exactly.
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    (s, e)
}

/// Sign of an exact zero sum `x + y` in `mode` (IEEE 754 §6.3).
fn zero_sum_sign(x: f64, y: f64, mode: Rnd) -> f32 {
    let neg = if x == 0.0 && y == 0.0 {
        if mode == Rnd::M {
            x.is_sign_negative() || y.is_sign_negative()
        } else {
            x.is_sign_negative() && y.is_sign_negative()
        }
    } else {
        mode == Rnd::M
    };
    if neg { -0.0 } else { 0.0 }
}

/// `.f32` addition in any mode.
pub fn add32(a: f32, b: f32, mode: Rnd) -> f32 {
    if mode == Rnd::N {
        return a + b;
    }
    let (x, y) = (f64::from(a), f64::from(b));
    let (s, e) = two_sum(x, y);
    if s == 0.0 && e == 0.0 {
        return zero_sum_sign(x, y, mode);
    }
    if !s.is_finite() {
        return s as f32;
    }
    round_to_f32(s, sign_of(e), mode)
}

/// `.f32` multiplication in any mode (the `f64` product of two `.f32` values is exact).
pub fn mul32(a: f32, b: f32, mode: Rnd) -> f32 {
    if mode == Rnd::N {
        return a * b;
    }
    round_to_f32(f64::from(a) * f64::from(b), Ordering::Equal, mode)
}

/// `.f32` fused multiply-add in any mode: one rounding of `a*b+c`.
pub fn fma32(a: f32, b: f32, c: f32, mode: Rnd) -> f32 {
    if mode == Rnd::N {
        return a.mul_add(b, c);
    }
    let p = f64::from(a) * f64::from(b);
    let z = f64::from(c);
    let (s, e) = two_sum(p, z);
    if s == 0.0 && e == 0.0 {
        return zero_sum_sign(p, z, mode);
    }
    if !s.is_finite() {
        return a.mul_add(b, c);
    }
    round_to_f32(s, sign_of(e), mode)
}

/// `.f32` division in any mode.
pub fn div32(a: f32, b: f32, mode: Rnd) -> f32 {
    if mode == Rnd::N {
        return a / b;
    }
    let (x, y) = (f64::from(a), f64::from(b));
    let q = x / y;
    if !q.is_finite() || q == 0.0 {
        return q as f32;
    }
    // x - q*y is exact in f64; the true quotient lies on the side of q given by sign(r/y).
    let r = (-q).mul_add(y, x);
    let side = if y < 0.0 {
        sign_of(r).reverse()
    } else {
        sign_of(r)
    };
    round_to_f32(q, side, mode)
}

/// `.f32` square root in any mode.
pub fn sqrt32(a: f32, mode: Rnd) -> f32 {
    if mode == Rnd::N {
        return a.sqrt();
    }
    let x = f64::from(a);
    let q = x.sqrt();
    if !q.is_finite() || q == 0.0 {
        return q as f32;
    }
    let r = (-q).mul_add(q, x);
    round_to_f32(q, sign_of(r), mode)
}

/// PTX `min` (`nan_mode` = `.NaN`): -0.0 < +0.0; NaN inputs per the ISA.
pub fn min64(a: f64, b: f64, nan_mode: bool) -> Option<f64> {
    minmax(a, b, nan_mode, true)
}

/// PTX `max`.
pub fn max64(a: f64, b: f64, nan_mode: bool) -> Option<f64> {
    minmax(a, b, nan_mode, false)
}

/// `None` means "NaN": canonical for `.f32`; for `.f64` see [`nan_minmax64`].
fn minmax(a: f64, b: f64, nan_mode: bool, is_min: bool) -> Option<f64> {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => return None,
        (true, false) | (false, true) if nan_mode => return None,
        (true, false) => return Some(b),
        (false, true) => return Some(a),
        (false, false) => {}
    }
    // total_cmp orders -0.0 below +0.0, as the ISA requires.
    let a_lt_b = a.total_cmp(&b) == Ordering::Less;
    Some(if a_lt_b == is_min { a } else { b })
}

/// Rounds an integer to `.f32` in `mode`.
pub fn int_to_f32(v: i128, mode: Rnd) -> f32 {
    let r = v as f32;
    let ord = v.cmp(&(r as i128));
    // r never exceeds 2^128 for |v| < 2^127, so `r as i128` is exact except at the saturation
    // bound, which 64-bit sources never reach.
    directed(r, ord, mode, v < 0)
}

/// Rounds an integer to `.f64` in `mode`.
pub fn int_to_f64(v: i128, mode: Rnd) -> f64 {
    let r = v as f64;
    let ord = v.cmp(&(r as i128));
    directed(r, ord, mode, v < 0)
}

/// An integer rounding modifier (`.rni`, `.rzi`, `.rmi`, `.rpi`).
pub fn round_integral(x: f64, mode: Rnd) -> f64 {
    match mode {
        Rnd::N => x.round_ties_even(),
        Rnd::Z => x.trunc(),
        Rnd::M => x.floor(),
        Rnd::P => x.ceil(),
    }
}

/// The NaN `.f64` `min`/`max` return when both operands are NaN: the second, quieted (an H200
/// returns it with sign and payload).
pub fn nan_minmax64(a: f64, b: f64) -> f64 {
    quiet64(if b.is_nan() { b } else { a })
}

/// `cvt` from a NaN of type `aty` (raw bits `x`) to the float type `dty`, as an H200 computes it:
/// `.f32` → `.f64` widens the payload and quiets it, `.f64` → `.f64` quiets, `.f64` → `.f32`
/// keeps only the sign (`0x7fc00000` or `0xffc00000`), `.f32` → `.f32` is the canonical NaN.
pub fn cvt_nan(dty_is_f32: bool, aty_is_f32: bool, x: u64) -> u64 {
    match (dty_is_f32, aty_is_f32) {
        (true, false) => ((x >> 63) << 31) | 0x7fc0_0000,
        (true, true) => u64::from(CANON_NAN_F32),
        (false, true) => {
            let sign = (x >> 31) & 1;
            (sign << 63) | 0x7ff8_0000_0000_0000 | ((x & 0x7f_ffff) << 29)
        }
        (false, false) => x | (1 << 51),
    }
}
