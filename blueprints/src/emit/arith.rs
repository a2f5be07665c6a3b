//! The emitter's values and operators: constants, and each Wasm unary and binary operator
//! lowered to PTX that computes exactly what Wasm computes (the rules are in the [`super`]
//! docs), with the trap checks of the operators that can trap.

use super::{Emitter, bty, class, fty, int_class, is64, sty, uty};
use crate::error::{Error, Result};
use crate::kernel_ir::{BinKind, BinOp, Const, UnKind, UnOp, ValType};
use crate::ptx::{Cmp, Operand, Reg, RegClass, Rnd, Ty};

fn float_imm(t: ValType, v: f64) -> Operand {
    if is64(t) {
        Operand::F64(v.to_bits())
    } else {
        Operand::F32((v as f32).to_bits())
    }
}

/// The sign bit and the magnitude mask of a float's width, as immediates.
fn sign_mask(t: ValType) -> (i64, i64) {
    if is64(t) {
        (i64::MIN, i64::MAX)
    } else {
        (i64::from(i32::MIN), i64::from(i32::MAX))
    }
}

fn canonical_nan(t: ValType) -> Operand {
    if is64(t) {
        Operand::F64(0x7FF8_0000_0000_0000)
    } else {
        Operand::F32(0x7FC0_0000)
    }
}

/// `lo (<= or <) x < hi`: the values a trapping truncation accepts. Each bound is a power of
/// two or −1, exact in both float formats; the lower bound is inclusive exactly when the
/// largest float below the first invalid value is itself the integer minimum.
fn trunc_bounds(src: ValType, dst: ValType, signed: bool) -> (f64, bool, f64) {
    match (dst, signed) {
        (ValType::I32, true) if src == ValType::F64 => (-2_147_483_649.0, false, 2_147_483_648.0),
        (ValType::I32, true) => (-2_147_483_648.0, true, 2_147_483_648.0),
        (ValType::I32, false) => (-1.0, false, 4_294_967_296.0),
        (_, true) => (
            -9_223_372_036_854_775_808.0,
            true,
            9_223_372_036_854_775_808.0,
        ),
        (_, false) => (-1.0, false, 18_446_744_073_709_551_616.0),
    }
}

impl Emitter<'_> {
    pub(super) fn constant(&mut self, c: Const) -> Reg {
        let d = self.b.reg(class(c.ty()));
        match c {
            Const::I32(v) => self.b.mov(Ty::B32, d, i64::from(v)),
            Const::I64(v) => self.b.mov(Ty::B64, d, v),
            Const::F32(bits) => self.b.mov(Ty::F32, d, Operand::F32(bits)),
            Const::F64(bits) => self.b.mov(Ty::F64, d, Operand::F64(bits)),
        };
        d
    }

    /// Branches to the trap block when `p` holds (or, with `negate`, when it does not).
    fn trap_if(&mut self, p: Reg, negate: bool) {
        self.trap_used = true;
        if negate {
            self.b.guard_not(p);
        } else {
            self.b.guard(p);
        }
        self.b.bra(self.trap);
    }

    pub(super) fn unary(&mut self, op: UnOp, a: Reg) -> Result<Reg> {
        let (src, dst) = (op.operand(), op.result());
        let d = self.b.reg(class(dst));
        match op.kind() {
            UnKind::Eqz => {
                let p = self.b.reg(RegClass::Pred);
                self.b
                    .setp(Cmp::Eq, sty(src), p, a, 0)
                    .selp(Ty::B32, d, 1, 0, p);
            }
            UnKind::Clz | UnKind::Ctz | UnKind::Popcnt => {
                let x = if op.kind() == UnKind::Ctz {
                    // ctz(x) = clz(bit-reverse(x)); both give the width for zero.
                    let r = self.b.reg(class(src));
                    self.b.brev(bty(src), r, a);
                    r
                } else {
                    a
                };
                let count = if src == ValType::I32 {
                    d
                } else {
                    self.b.reg(RegClass::B32)
                };
                if op.kind() == UnKind::Popcnt {
                    self.b.popc(bty(src), count, x);
                } else {
                    self.b.clz(bty(src), count, x);
                }
                if src == ValType::I64 {
                    self.b.cvt(None, Ty::U64, Ty::U32, d, count);
                }
            }
            UnKind::Extend8S => {
                self.b.cvt(None, sty(src), Ty::S8, d, a);
            }
            UnKind::Extend16S => {
                self.b.cvt(None, sty(src), Ty::S16, d, a);
            }
            UnKind::Extend32S => {
                let low = self.b.reg(RegClass::B32);
                self.b
                    .cvt(None, Ty::U32, Ty::U64, low, a)
                    .cvt(None, Ty::S64, Ty::S32, d, low);
            }
            UnKind::Abs | UnKind::Neg => {
                // Bit operations, exact for every input including NaN payloads.
                let (sign, mag) = sign_mask(src);
                let bits = self.b.reg(int_class(src));
                let out = self.b.reg(int_class(src));
                self.b.mov(bty(src), bits, a);
                if op.kind() == UnKind::Abs {
                    self.b.and(bty(src), out, bits, mag);
                } else {
                    self.b.xor(bty(src), out, bits, sign);
                }
                self.b.mov(bty(src), d, out);
            }
            UnKind::Sqrt => {
                self.b.sqrt_rn(fty(src), d, a);
            }
            UnKind::Ceil | UnKind::Floor | UnKind::Trunc | UnKind::Nearest => {
                let rnd = match op.kind() {
                    UnKind::Ceil => Rnd::Rpi,
                    UnKind::Floor => Rnd::Rmi,
                    UnKind::Trunc => Rnd::Rzi,
                    _ => Rnd::Rni,
                };
                self.b.cvt(Some(rnd), fty(src), fty(src), d, a);
            }
            UnKind::Wrap => {
                self.b.cvt(None, Ty::U32, Ty::U64, d, a);
            }
            UnKind::ExtendS => {
                self.b.cvt(None, Ty::S64, Ty::S32, d, a);
            }
            UnKind::ExtendU => {
                self.b.cvt(None, Ty::U64, Ty::U32, d, a);
            }
            UnKind::TruncS | UnKind::TruncU => {
                let signed = op.kind() == UnKind::TruncS;
                let (lo, lo_incl, hi) = trunc_bounds(src, dst, signed);
                let (below_hi, ok) = (self.b.reg(RegClass::Pred), self.b.reg(RegClass::Pred));
                let lo_cmp = if lo_incl { Cmp::Ge } else { Cmp::Gt };
                // Ordered comparisons: NaN fails both, so NaN traps too.
                self.b
                    .setp(Cmp::Lt, fty(src), below_hi, a, float_imm(src, hi))
                    .setp_and(lo_cmp, fty(src), ok, a, float_imm(src, lo), below_hi);
                self.trap_if(ok, true);
                let ity = if signed { sty(dst) } else { uty(dst) };
                self.b.cvt(Some(Rnd::Rzi), ity, fty(src), d, a);
            }
            UnKind::TruncSatS | UnKind::TruncSatU => {
                // cvt.rzi saturates; NaN gives 0 only for f32 → 32-bit, so fix NaN explicitly.
                let ity = if op.kind() == UnKind::TruncSatS {
                    sty(dst)
                } else {
                    uty(dst)
                };
                let t = self.b.reg(class(dst));
                let nan = self.b.reg(RegClass::Pred);
                self.b
                    .cvt(Some(Rnd::Rzi), ity, fty(src), t, a)
                    .setp(Cmp::Nan, fty(src), nan, a, a)
                    .selp(bty(dst), d, 0, t, nan);
            }
            UnKind::ConvertS | UnKind::ConvertU => {
                let ity = if op.kind() == UnKind::ConvertS {
                    sty(src)
                } else {
                    uty(src)
                };
                self.b.cvt(Some(Rnd::Rn), fty(dst), ity, d, a);
            }
            UnKind::Demote => {
                self.b.cvt(Some(Rnd::Rn), Ty::F32, Ty::F64, d, a);
            }
            UnKind::Promote => {
                self.b.cvt(None, Ty::F64, Ty::F32, d, a);
            }
            UnKind::Reinterpret => {
                self.b.mov(bty(src), d, a);
            }
        }
        Ok(d)
    }

    /// A masked shift count: `n & 31` or `n & 63`, as a `.b32` register.
    fn shift_count(&mut self, t: ValType, n: Reg) -> Reg {
        let m = self.b.reg(RegClass::B32);
        if t == ValType::I64 {
            let low = self.b.reg(RegClass::B32);
            self.b
                .cvt(None, Ty::U32, Ty::U64, low, n)
                .and(Ty::B32, m, low, 63);
        } else {
            self.b.and(Ty::B32, m, n, 31);
        }
        m
    }

    fn trap_if_zero(&mut self, t: ValType, b: Reg) {
        let z = self.b.reg(RegClass::Pred);
        self.b.setp(Cmp::Eq, sty(t), z, b, 0);
        self.trap_if(z, false);
    }

    pub(super) fn binary(&mut self, op: BinOp, a: Reg, b: Reg) -> Result<Reg> {
        let t = op.operand();
        let d = self.b.reg(class(op.result()));
        let float = !t.is_int();
        match op.kind() {
            BinKind::Add if float => {
                self.b.add_rn(fty(t), d, a, b);
            }
            BinKind::Sub if float => {
                self.b.sub_rn(fty(t), d, a, b);
            }
            BinKind::Mul if float => {
                self.b.mul_rn(fty(t), d, a, b);
            }
            BinKind::Add => {
                self.b.add(sty(t), d, a, b);
            }
            BinKind::Sub => {
                self.b.sub(sty(t), d, a, b);
            }
            BinKind::Mul => {
                self.b.mul_lo(sty(t), d, a, b);
            }
            BinKind::DivS => {
                self.trap_if_zero(t, b);
                let min = if t == ValType::I64 {
                    i64::MIN
                } else {
                    i64::from(i32::MIN)
                };
                let (is_min, overflow) = (self.b.reg(RegClass::Pred), self.b.reg(RegClass::Pred));
                self.b.setp(Cmp::Eq, sty(t), is_min, a, min).setp_and(
                    Cmp::Eq,
                    sty(t),
                    overflow,
                    b,
                    -1,
                    is_min,
                );
                self.trap_if(overflow, false);
                self.b.div(sty(t), d, a, b);
            }
            BinKind::DivU => {
                self.trap_if_zero(t, b);
                self.b.div(uty(t), d, a, b);
            }
            BinKind::RemS => {
                // x rem_s -1 is 0 in Wasm (no trap); divide by 1 instead so that
                // INT_MIN rem -1 never reaches the hardware.
                self.trap_if_zero(t, b);
                let (m1, safe) = (self.b.reg(RegClass::Pred), self.b.reg(int_class(t)));
                self.b
                    .setp(Cmp::Eq, sty(t), m1, b, -1)
                    .selp(bty(t), safe, 1, b, m1)
                    .rem(sty(t), d, a, safe);
            }
            BinKind::RemU => {
                self.trap_if_zero(t, b);
                self.b.rem(uty(t), d, a, b);
            }
            BinKind::And => {
                self.b.and(bty(t), d, a, b);
            }
            BinKind::Or => {
                self.b.or(bty(t), d, a, b);
            }
            BinKind::Xor => {
                self.b.xor(bty(t), d, a, b);
            }
            BinKind::Shl | BinKind::ShrS | BinKind::ShrU => {
                let n = self.shift_count(t, b);
                match op.kind() {
                    BinKind::Shl => self.b.shl(bty(t), d, a, n),
                    BinKind::ShrS => self.b.shr(sty(t), d, a, n),
                    _ => self.b.shr(uty(t), d, a, n),
                };
            }
            BinKind::Rotl | BinKind::Rotr => self.rotate(op.kind() == BinKind::Rotl, t, d, a, b),
            BinKind::FDiv => {
                self.b.div_rn(fty(t), d, a, b);
            }
            BinKind::Min | BinKind::Max => self.minmax(op.kind() == BinKind::Max, t, d, a, b),
            BinKind::Copysign => {
                let (sign, mag) = sign_mask(t);
                let c = int_class(t);
                let (ia, ib, ma, sb, r) = (
                    self.b.reg(c),
                    self.b.reg(c),
                    self.b.reg(c),
                    self.b.reg(c),
                    self.b.reg(c),
                );
                self.b
                    .mov(bty(t), ia, a)
                    .mov(bty(t), ib, b)
                    .and(bty(t), ma, ia, mag)
                    .and(bty(t), sb, ib, sign)
                    .or(bty(t), r, ma, sb)
                    .mov(bty(t), d, r);
            }
            kind => {
                let (cmp, ty) = match kind {
                    BinKind::Eq if float => (Cmp::Eq, fty(t)),
                    // Wasm `ne` is true when either operand is NaN: the unordered compare.
                    BinKind::Ne if float => (Cmp::Neu, fty(t)),
                    BinKind::Eq => (Cmp::Eq, bty(t)),
                    BinKind::Ne => (Cmp::Ne, bty(t)),
                    BinKind::LtS => (Cmp::Lt, sty(t)),
                    BinKind::LtU => (Cmp::Lt, uty(t)),
                    BinKind::GtS => (Cmp::Gt, sty(t)),
                    BinKind::GtU => (Cmp::Gt, uty(t)),
                    BinKind::LeS => (Cmp::Le, sty(t)),
                    BinKind::LeU => (Cmp::Le, uty(t)),
                    BinKind::GeS => (Cmp::Ge, sty(t)),
                    BinKind::GeU => (Cmp::Ge, uty(t)),
                    BinKind::FLt => (Cmp::Lt, fty(t)),
                    BinKind::FGt => (Cmp::Gt, fty(t)),
                    BinKind::FLe => (Cmp::Le, fty(t)),
                    BinKind::FGe => (Cmp::Ge, fty(t)),
                    other => return Err(Error::Bug(format!("{other:?} is not a comparison"))),
                };
                let p = self.b.reg(RegClass::Pred);
                self.b.setp(cmp, ty, p, a, b).selp(Ty::B32, d, 1, 0, p);
            }
        }
        Ok(d)
    }

    fn rotate(&mut self, left: bool, t: ValType, d: Reg, a: Reg, n: Reg) {
        if t == ValType::I32 {
            // shf.wrap uses n & 31, exactly Wasm's count.
            self.b.shf_wrap(left, d, a, a, n);
            return;
        }
        let k = self.shift_count(t, n);
        let (back, hi, lo) = (
            self.b.reg(RegClass::B32),
            self.b.reg(RegClass::B64),
            self.b.reg(RegClass::B64),
        );
        // (64 - k) & 63 is 0 when k is 0, so both halves are then `a` and the OR is `a`.
        self.b
            .sub(Ty::U32, back, 64, k)
            .and(Ty::B32, back, back, 63);
        if left {
            self.b.shl(Ty::B64, hi, a, k).shr(Ty::U64, lo, a, back);
        } else {
            self.b.shr(Ty::U64, hi, a, k).shl(Ty::B64, lo, a, back);
        }
        self.b.or(Ty::B64, d, hi, lo);
    }

    /// Wasm `fmin`/`fmax`: NaN if either operand is NaN, and −0 < +0.
    fn minmax(&mut self, max: bool, t: ValType, d: Reg, a: Reg, b: Reg) {
        if t == ValType::F32 && self.target.has_minmax_nan() {
            // PTX ISA `min`/`max`: `.NaN` gives the canonical NaN if any input is NaN, and
            // orders −0.0 below +0.0.
            self.b.minmax(max, true, Ty::F32, d, a, b);
            return;
        }
        let f = class(t);
        let c = int_class(t);
        let (m, z, picked) = (self.b.reg(f), self.b.reg(f), self.b.reg(f));
        let (ia, ib, iz) = (self.b.reg(c), self.b.reg(c), self.b.reg(c));
        let (eq, nan) = (self.b.reg(RegClass::Pred), self.b.reg(RegClass::Pred));
        self.b
            .minmax(max, false, fty(t), m, a, b)
            .mov(bty(t), ia, a)
            .mov(bty(t), ib, b);
        // Equal operands differ at most in the sign of zero: OR of the bits keeps −0 for
        // min, AND keeps +0 for max (for other equal values the bits are identical).
        if max {
            self.b.and(bty(t), iz, ia, ib);
        } else {
            self.b.or(bty(t), iz, ia, ib);
        }
        self.b
            .mov(bty(t), z, iz)
            .setp(Cmp::Eq, fty(t), eq, a, b)
            .selp(fty(t), picked, z, m, eq)
            .setp(Cmp::Nan, fty(t), nan, a, b)
            .selp(fty(t), d, canonical_nan(t), picked, nan);
    }
}
