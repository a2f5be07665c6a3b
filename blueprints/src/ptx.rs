//! A small typed PTX builder and printer.
//!
//! Registers are typed by class ([`RegClass`]: `.pred`, `.b32`, `.b64`, `.f32`, `.f64`) and every
//! instruction is built through a method that states its PTX type ([`Ty`]) and checks that each
//! register operand fits it, so the lowering in `emit/` never formats text. A type mismatch is
//! recorded and returned by [`PtxBuilder::finish`] as `Error::Bug`. [`Module`] prints the text
//! with `.version`, `.target`, `.address_size 64` and `.visible .entry` functions.
//!
//! This module knows PTX syntax only; it must never decide semantics (rounding, NaN handling,
//! traps are the emitter's). It never emits `.ftz`, and float `add`/`sub`/`mul`/`div`/`sqrt` only
//! exist here with an explicit rounding mode, so ptxas can never contract them into FMA.

use std::fmt::{self, Display, Formatter};

use crate::error::{Error, Result};

/// A PTX instruction type suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Ty {
    Pred,
    B8,
    B16,
    B32,
    B64,
    U8,
    U16,
    U32,
    U64,
    S8,
    S16,
    S32,
    S64,
    F32,
    F64,
}

impl Ty {
    /// The suffix without the dot (`u32`).
    pub fn name(self) -> &'static str {
        match self {
            Ty::Pred => "pred",
            Ty::B8 => "b8",
            Ty::B16 => "b16",
            Ty::B32 => "b32",
            Ty::B64 => "b64",
            Ty::U8 => "u8",
            Ty::U16 => "u16",
            Ty::U32 => "u32",
            Ty::U64 => "u64",
            Ty::S8 => "s8",
            Ty::S16 => "s16",
            Ty::S32 => "s32",
            Ty::S64 => "s64",
            Ty::F32 => "f32",
            Ty::F64 => "f64",
        }
    }

    /// Whether a register of class `c` may be an operand of this type. Narrow integer types
    /// accept wider integer registers (PTX ISA, "Operand Size Exceeding Instruction-Type
    /// Size"); bit-size types accept float registers of their width.
    fn accepts(self, c: RegClass) -> bool {
        use RegClass as C;
        match self {
            Ty::Pred => c == C::Pred,
            Ty::B8 | Ty::B16 | Ty::U8 | Ty::U16 | Ty::S8 | Ty::S16 => matches!(c, C::B32 | C::B64),
            Ty::B32 => matches!(c, C::B32 | C::F32),
            Ty::U32 | Ty::S32 => c == C::B32,
            Ty::B64 => matches!(c, C::B64 | C::F64),
            Ty::U64 | Ty::S64 => c == C::B64,
            Ty::F32 => c == C::F32,
            Ty::F64 => c == C::F64,
        }
    }
}

/// A register class: what a `.reg` declaration holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegClass {
    /// `.pred %p<N>`.
    Pred,
    /// `.b32 %r<N>`.
    B32,
    /// `.b64 %rd<N>`.
    B64,
    /// `.f32 %f<N>`.
    F32,
    /// `.f64 %fd<N>`.
    F64,
}

const CLASSES: [RegClass; 5] = [
    RegClass::Pred,
    RegClass::B32,
    RegClass::B64,
    RegClass::F32,
    RegClass::F64,
];

impl RegClass {
    fn index(self) -> usize {
        match self {
            RegClass::Pred => 0,
            RegClass::B32 => 1,
            RegClass::B64 => 2,
            RegClass::F32 => 3,
            RegClass::F64 => 4,
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            RegClass::Pred => "%p",
            RegClass::B32 => "%r",
            RegClass::B64 => "%rd",
            RegClass::F32 => "%f",
            RegClass::F64 => "%fd",
        }
    }
    fn decl(self) -> &'static str {
        match self {
            RegClass::Pred => ".pred",
            RegClass::B32 => ".b32",
            RegClass::B64 => ".b64",
            RegClass::F32 => ".f32",
            RegClass::F64 => ".f64",
        }
    }
}

/// A virtual register; prints as `%r3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reg {
    class: RegClass,
    n: u32,
}

impl Reg {
    /// The register's class.
    pub fn class(self) -> RegClass {
        self.class
    }
}

impl Display for Reg {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.class.prefix(), self.n)
    }
}

/// A special register read with `mov.u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Special {
    Tid(Axis),
    Ntid(Axis),
    Ctaid(Axis),
}

/// A grid axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Axis {
    X,
    Y,
    Z,
}

impl Display for Special {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let (name, axis) = match self {
            Special::Tid(a) => ("%tid", a),
            Special::Ntid(a) => ("%ntid", a),
            Special::Ctaid(a) => ("%ctaid", a),
        };
        let axis = match axis {
            Axis::X => "x",
            Axis::Y => "y",
            Axis::Z => "z",
        };
        write!(f, "{name}.{axis}")
    }
}

/// A source operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A register.
    Reg(Reg),
    /// An integer immediate, printed in decimal.
    Imm(i64),
    /// An `f32` immediate by bits, printed `0fXXXXXXXX`.
    F32(u32),
    /// An `f64` immediate by bits, printed `0dXXXXXXXXXXXXXXXX`.
    F64(u64),
    /// A special register.
    Special(Special),
    /// The shared-memory address of the entry's shared array `n` (see
    /// [`PtxBuilder::shared_array`]); prints as `tw_tile<n>`.
    Shared(u32),
}

impl From<Reg> for Operand {
    fn from(r: Reg) -> Self {
        Operand::Reg(r)
    }
}

impl From<i64> for Operand {
    fn from(v: i64) -> Self {
        Operand::Imm(v)
    }
}

impl Display for Operand {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Reg(r) => r.fmt(f),
            Operand::Imm(v) => write!(f, "{v}"),
            Operand::F32(b) => write!(f, "0f{b:08X}"),
            Operand::F64(b) => write!(f, "0d{b:016X}"),
            Operand::Special(s) => s.fmt(f),
            Operand::Shared(n) => write!(f, "tw_tile{n}"),
        }
    }
}

/// A global-memory address `[base+offset]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// A `.b64` register holding a global address.
    pub base: Reg,
    /// A constant byte offset that fits in 32 signed bits.
    pub offset: i32,
}

impl Display for Address {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        // ptxas accepts `[%rd1+-4]` but not `[%rd1-4]`.
        match self.offset {
            0 => write!(f, "[{}]", self.base),
            o => write!(f, "[{}+{o}]", self.base),
        }
    }
}

/// A branch target; prints as `$L__3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(u32);

impl Display for Label {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "$L__{}", self.0)
    }
}

/// A rounding modifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rnd {
    /// Float result, to nearest even.
    Rn,
    /// Float result, toward zero.
    Rz,
    /// Integer result (or integral float), to nearest even.
    Rni,
    /// Integer result, toward zero.
    Rzi,
    /// Integer result, toward −∞.
    Rmi,
    /// Integer result, toward +∞.
    Rpi,
}

impl Rnd {
    fn name(self) -> &'static str {
        match self {
            Rnd::Rn => "rn",
            Rnd::Rz => "rz",
            Rnd::Rni => "rni",
            Rnd::Rzi => "rzi",
            Rnd::Rmi => "rmi",
            Rnd::Rpi => "rpi",
        }
    }
}

/// A `setp` comparison. Integer signedness comes from the type (`.s32`/`.u32`); for floats,
/// the plain operators are ordered (false on NaN) and the `u` ones unordered (true on NaN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Equ,
    Neu,
    Ltu,
    Leu,
    Gtu,
    Geu,
    /// Neither operand is NaN.
    Num,
    /// Either operand is NaN.
    Nan,
}

impl Cmp {
    fn name(self) -> &'static str {
        match self {
            Cmp::Eq => "eq",
            Cmp::Ne => "ne",
            Cmp::Lt => "lt",
            Cmp::Le => "le",
            Cmp::Gt => "gt",
            Cmp::Ge => "ge",
            Cmp::Equ => "equ",
            Cmp::Neu => "neu",
            Cmp::Ltu => "ltu",
            Cmp::Leu => "leu",
            Cmp::Gtu => "gtu",
            Cmp::Geu => "geu",
            Cmp::Num => "num",
            Cmp::Nan => "nan",
        }
    }
}

#[derive(Clone, Debug)]
enum Arg {
    Op(Operand),
    Addr(Address),
    Label(Label),
    Param(u32),
}

#[derive(Clone, Debug)]
struct Inst {
    guard: Option<(Reg, bool)>,
    opcode: Vec<&'static str>,
    args: Vec<Arg>,
}

#[derive(Clone, Debug)]
enum Line {
    Inst(Inst),
    Label(Label),
}

/// Builds the body of one entry function.
#[derive(Debug, Default)]
pub struct PtxBuilder {
    lines: Vec<Line>,
    counts: [u32; 5],
    /// Bytes of each shared array, in declaration order.
    shared: Vec<u32>,
    reqntid: Option<[u32; 3]>,
    labels: u32,
    guard: Option<(Reg, bool)>,
    error: Option<String>,
}

impl PtxBuilder {
    /// An empty body.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh register of class `c`.
    pub fn reg(&mut self, c: RegClass) -> Reg {
        let slot = &mut self.counts[c.index()];
        let r = Reg { class: c, n: *slot };
        *slot += 1;
        r
    }

    /// Declares a shared array of `bytes` bytes (8-byte aligned) and returns its number, for
    /// [`Operand::Shared`].
    pub fn shared_array(&mut self, bytes: u32) -> u32 {
        self.shared.push(bytes);
        (self.shared.len() - 1) as u32
    }

    /// Requires the launch's block shape to be exactly `block` (`.reqntid`): a launch with
    /// any other shape fails instead of computing with the wrong tile geometry.
    pub fn reqntid(&mut self, block: [u32; 3]) -> &mut Self {
        self.reqntid = Some(block);
        self
    }

    /// A fresh label, placed later with [`PtxBuilder::place`].
    pub fn label(&mut self) -> Label {
        let l = Label(self.labels);
        self.labels += 1;
        l
    }

    /// Places `l` before the next instruction.
    pub fn place(&mut self, l: Label) -> &mut Self {
        self.lines.push(Line::Label(l));
        self
    }

    /// Predicates the next instruction on `p` (`@p`).
    pub fn guard(&mut self, p: Reg) -> &mut Self {
        self.check_reg(p, Ty::Pred);
        self.guard = Some((p, false));
        self
    }

    /// Predicates the next instruction on `!p` (`@!p`).
    pub fn guard_not(&mut self, p: Reg) -> &mut Self {
        self.check_reg(p, Ty::Pred);
        self.guard = Some((p, true));
        self
    }

    fn check_reg(&mut self, r: Reg, ty: Ty) {
        if !ty.accepts(r.class) && self.error.is_none() {
            self.error = Some(format!("register {r} used as .{}", ty.name()));
        }
    }

    /// Like `check_reg`, but a 32-bit memory access may use a 64-bit register (`i64.load32_s`,
    /// `i64.store32`): PTX ISA `ld`/`st`, "Operand Size Exceeding Instruction-Type Size".
    fn check_mem(&mut self, r: Reg, ty: Ty) {
        if !(matches!(ty, Ty::U32 | Ty::S32 | Ty::B32) && r.class == RegClass::B64) {
            self.check_reg(r, ty);
        }
    }

    fn check(&mut self, o: Operand, ty: Ty) {
        if let Operand::Reg(r) = o {
            self.check_reg(r, ty);
        }
    }

    fn push(&mut self, opcode: Vec<&'static str>, args: Vec<Arg>) -> &mut Self {
        let guard = self.guard.take();
        self.lines.push(Line::Inst(Inst {
            guard,
            opcode,
            args,
        }));
        self
    }

    /// `op.ty d, a, b` after checking every operand against `ty`.
    fn op3(
        &mut self,
        opcode: Vec<&'static str>,
        ty: Ty,
        d: Reg,
        a: Operand,
        b: Operand,
    ) -> &mut Self {
        self.check_reg(d, ty);
        self.check(a, ty);
        self.check(b, ty);
        self.push(opcode, vec![Arg::Op(d.into()), Arg::Op(a), Arg::Op(b)])
    }

    /// `mov.ty d, a`.
    pub fn mov(&mut self, ty: Ty, d: Reg, a: impl Into<Operand>) -> &mut Self {
        let a = a.into();
        self.check_reg(d, ty);
        self.check(a, ty);
        self.push(vec!["mov", ty.name()], vec![Arg::Op(d.into()), Arg::Op(a)])
    }

    /// `ld.param.ty d, [param_i]`.
    pub fn ld_param(&mut self, ty: Ty, d: Reg, index: u32) -> &mut Self {
        self.check_reg(d, ty);
        self.push(
            vec!["ld", "param", ty.name()],
            vec![Arg::Op(d.into()), Arg::Param(index)],
        )
    }

    /// `cvta.to.global.u64 d, a`.
    pub fn cvta_to_global(&mut self, d: Reg, a: Reg) -> &mut Self {
        self.check_reg(d, Ty::U64);
        self.check_reg(a, Ty::U64);
        self.push(
            vec!["cvta", "to", "global", "u64"],
            vec![Arg::Op(d.into()), Arg::Op(a.into())],
        )
    }

    /// `ld.global.ty d, [addr]` (narrow signed types sign-extend into `d`, others zero-extend).
    pub fn ld_global(&mut self, ty: Ty, d: Reg, addr: Address) -> &mut Self {
        self.ld("global", ty, d, addr)
    }

    /// `ld.shared.ty d, [addr]` (`addr.base` holds a shared-window address).
    pub fn ld_shared(&mut self, ty: Ty, d: Reg, addr: Address) -> &mut Self {
        self.ld("shared", ty, d, addr)
    }

    /// `st.shared.ty [addr], v`.
    pub fn st_shared(&mut self, ty: Ty, addr: Address, v: Reg) -> &mut Self {
        self.st("shared", ty, addr, v)
    }

    fn ld(&mut self, space: &'static str, ty: Ty, d: Reg, addr: Address) -> &mut Self {
        self.check_mem(d, ty);
        self.check_reg(addr.base, Ty::U64);
        self.push(
            vec!["ld", space, ty.name()],
            vec![Arg::Op(d.into()), Arg::Addr(addr)],
        )
    }

    fn st(&mut self, space: &'static str, ty: Ty, addr: Address, v: Reg) -> &mut Self {
        self.check_mem(v, ty);
        self.check_reg(addr.base, Ty::U64);
        self.push(
            vec!["st", space, ty.name()],
            vec![Arg::Addr(addr), Arg::Op(v.into())],
        )
    }

    /// `bar.sync 0`: every thread of the block waits here until all have arrived.
    pub fn bar_sync(&mut self) -> &mut Self {
        self.push(vec!["bar", "sync"], vec![Arg::Op(Operand::Imm(0))])
    }

    /// `or.pred d, a, b`.
    pub fn or_pred(&mut self, d: Reg, a: Reg, b: Reg) -> &mut Self {
        self.check_reg(d, Ty::Pred);
        self.check_reg(a, Ty::Pred);
        self.check_reg(b, Ty::Pred);
        self.push(
            vec!["or", "pred"],
            vec![Arg::Op(d.into()), Arg::Op(a.into()), Arg::Op(b.into())],
        )
    }

    /// `st.global.ty [addr], v` (narrow types store the low bytes of `v`).
    pub fn st_global(&mut self, ty: Ty, addr: Address, v: Reg) -> &mut Self {
        self.st("global", ty, addr, v)
    }

    /// Integer `add.ty d, a, b` (wrapping).
    pub fn add(
        &mut self,
        ty: Ty,
        d: Reg,
        a: impl Into<Operand>,
        b: impl Into<Operand>,
    ) -> &mut Self {
        self.op3(vec!["add", ty.name()], ty, d, a.into(), b.into())
    }

    /// Integer `sub.ty d, a, b` (wrapping).
    pub fn sub(
        &mut self,
        ty: Ty,
        d: Reg,
        a: impl Into<Operand>,
        b: impl Into<Operand>,
    ) -> &mut Self {
        self.op3(vec!["sub", ty.name()], ty, d, a.into(), b.into())
    }

    /// Integer `mul.lo.ty d, a, b` (the low half, wrapping).
    pub fn mul_lo(
        &mut self,
        ty: Ty,
        d: Reg,
        a: impl Into<Operand>,
        b: impl Into<Operand>,
    ) -> &mut Self {
        self.op3(vec!["mul", "lo", ty.name()], ty, d, a.into(), b.into())
    }

    /// `mul.wide.u32 d, a, b`: a 64-bit product of two 32-bit operands.
    pub fn mul_wide_u32(
        &mut self,
        d: Reg,
        a: impl Into<Operand>,
        b: impl Into<Operand>,
    ) -> &mut Self {
        let (a, b) = (a.into(), b.into());
        self.check_reg(d, Ty::U64);
        self.check(a, Ty::U32);
        self.check(b, Ty::U32);
        self.push(
            vec!["mul", "wide", "u32"],
            vec![Arg::Op(d.into()), Arg::Op(a), Arg::Op(b)],
        )
    }

    /// `mul.wide.s32 d, a, b` (`signed`) or `mul.wide.u32`: the exact 64-bit product of two
    /// 32-bit operands, sign- or zero-extended.
    pub fn mul_wide(
        &mut self,
        signed: bool,
        d: Reg,
        a: impl Into<Operand>,
        b: impl Into<Operand>,
    ) -> &mut Self {
        let (a, b) = (a.into(), b.into());
        let (narrow, wide) = if signed {
            (Ty::S32, Ty::S64)
        } else {
            (Ty::U32, Ty::U64)
        };
        self.check_reg(d, wide);
        self.check(a, narrow);
        self.check(b, narrow);
        self.push(
            vec!["mul", "wide", narrow.name()],
            vec![Arg::Op(d.into()), Arg::Op(a), Arg::Op(b)],
        )
    }

    /// Integer `mad.lo.ty d, a, b, c` (`a*b + c`, low half).
    pub fn mad_lo(
        &mut self,
        ty: Ty,
        d: Reg,
        a: impl Into<Operand>,
        b: impl Into<Operand>,
        c: impl Into<Operand>,
    ) -> &mut Self {
        let (a, b, c) = (a.into(), b.into(), c.into());
        self.check_reg(d, ty);
        self.check(a, ty);
        self.check(b, ty);
        self.check(c, ty);
        self.push(
            vec!["mad", "lo", ty.name()],
            vec![Arg::Op(d.into()), Arg::Op(a), Arg::Op(b), Arg::Op(c)],
        )
    }

    /// Integer `div.ty d, a, b` (the caller rules out zero and overflow first).
    pub fn div(&mut self, ty: Ty, d: Reg, a: Reg, b: Reg) -> &mut Self {
        self.op3(vec!["div", ty.name()], ty, d, a.into(), b.into())
    }

    /// Integer `rem.ty d, a, b` (the caller rules out zero and overflow first).
    pub fn rem(&mut self, ty: Ty, d: Reg, a: Reg, b: Reg) -> &mut Self {
        self.op3(vec!["rem", ty.name()], ty, d, a.into(), b.into())
    }

    /// `and.ty d, a, b` (`.pred` or bit-size types).
    pub fn and(
        &mut self,
        ty: Ty,
        d: Reg,
        a: impl Into<Operand>,
        b: impl Into<Operand>,
    ) -> &mut Self {
        self.op3(vec!["and", ty.name()], ty, d, a.into(), b.into())
    }

    /// `or.ty d, a, b`.
    pub fn or(
        &mut self,
        ty: Ty,
        d: Reg,
        a: impl Into<Operand>,
        b: impl Into<Operand>,
    ) -> &mut Self {
        self.op3(vec!["or", ty.name()], ty, d, a.into(), b.into())
    }

    /// `xor.ty d, a, b`.
    pub fn xor(
        &mut self,
        ty: Ty,
        d: Reg,
        a: impl Into<Operand>,
        b: impl Into<Operand>,
    ) -> &mut Self {
        self.op3(vec!["xor", ty.name()], ty, d, a.into(), b.into())
    }

    /// `shl.ty d, a, n` (`n` is a `.u32`; PTX clamps counts above the width).
    pub fn shl(&mut self, ty: Ty, d: Reg, a: Reg, n: impl Into<Operand>) -> &mut Self {
        let n = n.into();
        self.check_reg(d, ty);
        self.check_reg(a, ty);
        self.check(n, Ty::U32);
        self.push(
            vec!["shl", ty.name()],
            vec![Arg::Op(d.into()), Arg::Op(a.into()), Arg::Op(n)],
        )
    }

    /// `shr.ty d, a, n` (`.s` types shift in the sign; `n` is a `.u32`).
    pub fn shr(&mut self, ty: Ty, d: Reg, a: Reg, n: impl Into<Operand>) -> &mut Self {
        let n = n.into();
        self.check_reg(d, ty);
        self.check_reg(a, ty);
        self.check(n, Ty::U32);
        self.push(
            vec!["shr", ty.name()],
            vec![Arg::Op(d.into()), Arg::Op(a.into()), Arg::Op(n)],
        )
    }

    /// `shf.l.wrap.b32` (`left`) or `shf.r.wrap.b32`: a funnel shift of `hi:lo` by `n & 31`.
    pub fn shf_wrap(&mut self, left: bool, d: Reg, lo: Reg, hi: Reg, n: Reg) -> &mut Self {
        for r in [d, lo, hi, n] {
            self.check_reg(r, Ty::B32);
        }
        let dir = if left { "l" } else { "r" };
        self.push(
            vec!["shf", dir, "wrap", "b32"],
            vec![
                Arg::Op(d.into()),
                Arg::Op(lo.into()),
                Arg::Op(hi.into()),
                Arg::Op(n.into()),
            ],
        )
    }

    fn bitcount(&mut self, op: &'static str, ty: Ty, d: Reg, a: Reg) -> &mut Self {
        self.check_reg(d, Ty::U32);
        self.check_reg(a, ty);
        self.push(
            vec![op, ty.name()],
            vec![Arg::Op(d.into()), Arg::Op(a.into())],
        )
    }

    /// `clz.ty d, a` (`.b32`/`.b64`; `d` is a `.u32`, 32 or 64 for zero).
    pub fn clz(&mut self, ty: Ty, d: Reg, a: Reg) -> &mut Self {
        self.bitcount("clz", ty, d, a)
    }

    /// `popc.ty d, a` (`d` is a `.u32`).
    pub fn popc(&mut self, ty: Ty, d: Reg, a: Reg) -> &mut Self {
        self.bitcount("popc", ty, d, a)
    }

    /// `brev.ty d, a`: bit reversal.
    pub fn brev(&mut self, ty: Ty, d: Reg, a: Reg) -> &mut Self {
        self.check_reg(d, ty);
        self.check_reg(a, ty);
        self.push(
            vec!["brev", ty.name()],
            vec![Arg::Op(d.into()), Arg::Op(a.into())],
        )
    }

    /// `not.pred d, a`.
    pub fn not_pred(&mut self, d: Reg, a: Reg) -> &mut Self {
        self.check_reg(d, Ty::Pred);
        self.check_reg(a, Ty::Pred);
        self.push(
            vec!["not", "pred"],
            vec![Arg::Op(d.into()), Arg::Op(a.into())],
        )
    }

    /// Float `add.rn.ty` (IEEE round to nearest even; never fused).
    pub fn add_rn(&mut self, ty: Ty, d: Reg, a: Reg, b: Reg) -> &mut Self {
        self.op3(vec!["add", "rn", ty.name()], ty, d, a.into(), b.into())
    }

    /// Float `sub.rn.ty`.
    pub fn sub_rn(&mut self, ty: Ty, d: Reg, a: Reg, b: Reg) -> &mut Self {
        self.op3(vec!["sub", "rn", ty.name()], ty, d, a.into(), b.into())
    }

    /// Float `mul.rn.ty`.
    pub fn mul_rn(&mut self, ty: Ty, d: Reg, a: Reg, b: Reg) -> &mut Self {
        self.op3(vec!["mul", "rn", ty.name()], ty, d, a.into(), b.into())
    }

    /// Float `div.rn.ty` (IEEE division).
    pub fn div_rn(&mut self, ty: Ty, d: Reg, a: Reg, b: Reg) -> &mut Self {
        self.op3(vec!["div", "rn", ty.name()], ty, d, a.into(), b.into())
    }

    /// Float `sqrt.rn.ty` (IEEE square root).
    pub fn sqrt_rn(&mut self, ty: Ty, d: Reg, a: Reg) -> &mut Self {
        self.check_reg(d, ty);
        self.check_reg(a, ty);
        self.push(
            vec!["sqrt", "rn", ty.name()],
            vec![Arg::Op(d.into()), Arg::Op(a.into())],
        )
    }

    /// Float `min{.NaN}.ty` / `max{.NaN}.ty`. `.NaN` (f32 only, sm_80+) returns the canonical
    /// NaN when either input is NaN; without it a single NaN input is ignored.
    pub fn minmax(&mut self, max: bool, nan: bool, ty: Ty, d: Reg, a: Reg, b: Reg) -> &mut Self {
        let mut opcode = vec![if max { "max" } else { "min" }];
        if nan {
            opcode.push("NaN");
        }
        opcode.push(ty.name());
        self.op3(opcode, ty, d, a.into(), b.into())
    }

    /// `setp.cmp.ty p, a, b`.
    pub fn setp(
        &mut self,
        cmp: Cmp,
        ty: Ty,
        p: Reg,
        a: impl Into<Operand>,
        b: impl Into<Operand>,
    ) -> &mut Self {
        let (a, b) = (a.into(), b.into());
        self.check_reg(p, Ty::Pred);
        self.check(a, ty);
        self.check(b, ty);
        self.push(
            vec!["setp", cmp.name(), ty.name()],
            vec![Arg::Op(p.into()), Arg::Op(a), Arg::Op(b)],
        )
    }

    /// `setp.cmp.and.ty p, a, b, c`: `p = (a cmp b) && c`.
    pub fn setp_and(
        &mut self,
        cmp: Cmp,
        ty: Ty,
        p: Reg,
        a: impl Into<Operand>,
        b: impl Into<Operand>,
        c: Reg,
    ) -> &mut Self {
        let (a, b) = (a.into(), b.into());
        self.check_reg(p, Ty::Pred);
        self.check_reg(c, Ty::Pred);
        self.check(a, ty);
        self.check(b, ty);
        self.push(
            vec!["setp", cmp.name(), "and", ty.name()],
            vec![Arg::Op(p.into()), Arg::Op(a), Arg::Op(b), Arg::Op(c.into())],
        )
    }

    /// `selp.ty d, a, b, p`: `d = p ? a : b`.
    pub fn selp(
        &mut self,
        ty: Ty,
        d: Reg,
        a: impl Into<Operand>,
        b: impl Into<Operand>,
        p: Reg,
    ) -> &mut Self {
        let (a, b) = (a.into(), b.into());
        self.check_reg(d, ty);
        self.check(a, ty);
        self.check(b, ty);
        self.check_reg(p, Ty::Pred);
        self.push(
            vec!["selp", ty.name()],
            vec![Arg::Op(d.into()), Arg::Op(a), Arg::Op(b), Arg::Op(p.into())],
        )
    }

    /// `cvt{.rnd}.dty.sty d, a`.
    pub fn cvt(&mut self, rnd: Option<Rnd>, dty: Ty, sty: Ty, d: Reg, a: Reg) -> &mut Self {
        self.check_reg(d, dty);
        self.check_reg(a, sty);
        let mut opcode = vec!["cvt"];
        if let Some(r) = rnd {
            opcode.push(r.name());
        }
        opcode.push(dty.name());
        opcode.push(sty.name());
        self.push(opcode, vec![Arg::Op(d.into()), Arg::Op(a.into())])
    }

    /// `bra.uni label` when unguarded, `@p bra label` when guarded.
    pub fn bra(&mut self, l: Label) -> &mut Self {
        let opcode = if self.guard.is_some() {
            vec!["bra"]
        } else {
            vec!["bra", "uni"]
        };
        self.push(opcode, vec![Arg::Label(l)])
    }

    /// `ret`.
    pub fn ret(&mut self) -> &mut Self {
        self.push(vec!["ret"], Vec::new())
    }

    /// The finished body of entry `name` with parameter types `params`.
    pub fn finish(mut self, name: &str, params: &[Ty]) -> Result<Entry> {
        if self.guard.is_some() && self.error.is_none() {
            self.error = Some("a guard was set but no instruction followed".into());
        }
        if let Some(e) = self.error {
            return Err(Error::Bug(format!("PTX builder for `{name}`: {e}")));
        }
        Ok(Entry {
            name: name.to_string(),
            params: params.to_vec(),
            counts: self.counts,
            shared: self.shared,
            reqntid: self.reqntid,
            lines: self.lines,
        })
    }
}

/// A finished `.visible .entry` function.
#[derive(Clone, Debug)]
pub struct Entry {
    name: String,
    params: Vec<Ty>,
    counts: [u32; 5],
    shared: Vec<u32>,
    reqntid: Option<[u32; 3]>,
    lines: Vec<Line>,
}

impl Entry {
    fn param_name(&self, f: &mut Formatter<'_>, i: u32) -> fmt::Result {
        write!(f, "{}_param_{i}", self.name)
    }
}

impl Display for Entry {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, ".visible .entry {}(", self.name)?;
        for (i, ty) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { "\n" } else { ",\n" })?;
            write!(f, "\t.param .{} ", ty.name())?;
            self.param_name(f, i as u32)?;
        }
        f.write_str("\n)\n")?;
        if let Some([x, y, z]) = self.reqntid {
            writeln!(f, ".reqntid {x}, {y}, {z}")?;
        }
        f.write_str("{\n")?;
        for (n, bytes) in self.shared.iter().enumerate() {
            writeln!(f, "\t.shared .align 8 .b8 tw_tile{n}[{bytes}];")?;
        }
        for c in CLASSES {
            let n = self.counts[c.index()];
            if n > 0 {
                writeln!(f, "\t.reg {} \t{}<{n}>;", c.decl(), c.prefix())?;
            }
        }
        f.write_str("\n")?;
        for line in &self.lines {
            match line {
                Line::Label(l) => writeln!(f, "{l}:")?,
                Line::Inst(i) => {
                    f.write_str("\t")?;
                    if let Some((p, neg)) = i.guard {
                        write!(f, "@{}{p} ", if neg { "!" } else { "" })?;
                    }
                    f.write_str(&i.opcode.join("."))?;
                    for (k, a) in i.args.iter().enumerate() {
                        f.write_str(if k == 0 { " \t" } else { ", " })?;
                        match a {
                            Arg::Op(o) => o.fmt(f)?,
                            Arg::Addr(ad) => ad.fmt(f)?,
                            Arg::Label(l) => l.fmt(f)?,
                            Arg::Param(p) => {
                                f.write_str("[")?;
                                self.param_name(f, *p)?;
                                f.write_str("]")?;
                            }
                        }
                    }
                    f.write_str(";\n")?;
                }
            }
        }
        f.write_str("}\n")
    }
}

/// A GPU architecture (`sm_NN`), the `.target` of a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target(u32);

impl Target {
    /// Turing (the default; the oldest CUDA 13 supports).
    pub const SM_75: Target = Target(75);
    /// Ampere A100.
    pub const SM_80: Target = Target(80);
    /// Hopper.
    pub const SM_90: Target = Target(90);
    /// Blackwell B200.
    pub const SM_100: Target = Target(100);

    /// Targets whose default PTX version this crate knows.
    pub const KNOWN: &'static [u32] = &[75, 80, 86, 87, 89, 90, 100, 103, 110, 120, 121];

    /// Parses `sm_80`. Only the architectures in [`Target::KNOWN`] are accepted.
    pub fn parse(s: &str) -> Result<Target> {
        let n = s
            .strip_prefix("sm_")
            .and_then(|d| d.parse::<u32>().ok())
            .filter(|n| Self::KNOWN.contains(n));
        n.map(Target)
            .ok_or_else(|| Error::Unsupported(format!("target {s:?} (known: sm_75 and newer)")))
    }

    /// The number (80 for `sm_80`).
    pub fn sm(self) -> u32 {
        self.0
    }

    /// The lowest PTX ISA version this crate uses for the target: 8.0 up to sm_90 (CUDA 12.0
    /// drivers and newer JIT it), then the version that introduced the target.
    pub fn default_ptx_version(self) -> PtxVersion {
        let (major, minor) = match self.0 {
            0..=90 => (8, 0),
            91..=102 => (8, 6),
            103 => (8, 8),
            104..=119 => (9, 0),
            120 => (8, 7),
            _ => (8, 8),
        };
        PtxVersion { major, minor }
    }

    /// Whether `min.NaN.f32`/`max.NaN.f32` exist (PTX ISA `min`: requires sm_80).
    pub fn has_minmax_nan(self) -> bool {
        self.0 >= 80
    }
}

impl Default for Target {
    fn default() -> Self {
        Target::SM_75
    }
}

impl Display for Target {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "sm_{}", self.0)
    }
}

/// A PTX ISA version (`.version 8.0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PtxVersion {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
}

impl Display for PtxVersion {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A PTX module: a header and entry functions.
#[derive(Clone, Debug)]
pub struct Module {
    /// `.version`.
    pub version: PtxVersion,
    /// `.target`.
    pub target: Target,
    /// The entries, in order.
    pub entries: Vec<Entry>,
}

impl Display for Module {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "//\n// Generated by tensorwasm-blueprints\n//\n")?;
        writeln!(f, ".version {}", self.version)?;
        writeln!(f, ".target {}", self.target)?;
        writeln!(f, ".address_size 64\n")?;
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            e.fmt(f)?;
        }
        Ok(())
    }
}
