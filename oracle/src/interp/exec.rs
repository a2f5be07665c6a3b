//! Executes decoded instructions for one thread: register file, operand reads and writes with
//! PTX width rules, integer and floating-point semantics, and memory accesses with bounds and
//! alignment checks.
//!
//! Every operation computes exactly what the PTX ISA defines; where the ISA leaves a result
//! unspecified (integer division by zero, signed division overflow) the thread faults instead of
//! inventing a value. Nothing here may panic, whatever the kernel does.

use std::cmp::Ordering;

use super::decode::{
    Addr, AtomOp, BoolOp, Cmp, CvtRnd, FBin, FUn, IBin, IUn, Kernel, MadMode, Op, Space, Special,
    Src, TestKind, wide_of,
};
use super::float::{
    self, Rnd, add32, canon32, div32, fma32, ftz32, int_to_f32, int_to_f64, max64, min64, mul32,
    nan64, quiet64, round_integral, round_to_f32, sat32, sat64, sqrt32,
};
use crate::error::{Error, FaultKind, Result, Site};
use crate::memory::DeviceMemory;
use crate::ptx::ScalarType;

/// Where a thread is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadState {
    /// Ready to run.
    Running,
    /// Stopped after the `bar.sync` at this instruction index.
    AtBarrier(usize),
    /// Returned.
    Exited,
}

/// One thread's registers and position.
#[derive(Debug, Clone)]
pub struct Thread {
    regs: Vec<u64>,
    /// Per register, the block (`epoch`) in which this thread last wrote it: a register is
    /// initialized when that is the current block. Reusing a thread for the next block is then
    /// O(1) instead of clearing every register (kernels with shared-memory tiles have hundreds).
    init: Vec<u32>,
    epoch: u32,
    pc: usize,
    steps: u64,
    /// `%tid`.
    pub tid: [u32; 3],
    /// Where it is.
    pub state: ThreadState,
}

impl Thread {
    /// A fresh thread at the first instruction.
    pub fn new(nregs: usize, tid: [u32; 3]) -> Thread {
        Thread {
            regs: vec![0; nregs],
            init: vec![0; nregs],
            epoch: 1,
            pc: 0,
            steps: 0,
            tid,
            state: ThreadState::Running,
        }
    }

    /// The same thread, fresh at the first instruction of the next block: every register
    /// uninitialized again.
    pub fn restart(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.init.fill(0);
            self.epoch = 1;
        }
        self.pc = 0;
        self.steps = 0;
        self.state = ThreadState::Running;
    }
}

/// Everything a thread of one block can see.
#[derive(Debug)]
pub struct BlockCtx<'a> {
    /// The program.
    pub kernel: &'a Kernel,
    /// Global memory.
    pub mem: &'a mut DeviceMemory,
    /// This block's shared memory.
    pub shared: &'a mut [u8],
    /// Parameter buffer.
    pub params: &'a [u8],
    /// `%ctaid`.
    pub ctaid: [u32; 3],
    /// `%ntid`.
    pub ntid: [u32; 3],
    /// `%nctaid`.
    pub nctaid: [u32; 3],
    /// Instructions per thread before `StepLimit`.
    pub step_limit: u64,
    /// Instructions executed so far (all threads).
    pub executed: u64,
}

#[inline(always)]
fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

#[inline(always)]
fn sext(v: u64, bits: u32) -> i64 {
    if bits >= 64 {
        v as i64
    } else {
        let sh = 64 - bits;
        ((v << sh) as i64) >> sh
    }
}

/// The integer value of `v` read as `ty`.
fn int_value(v: u64, ty: ScalarType) -> i128 {
    if ty.is_signed() {
        i128::from(sext(v, ty.bits()))
    } else {
        i128::from(v & mask(ty.bits()))
    }
}

fn int_range(ty: ScalarType) -> (i128, i128) {
    let w = ty.bits();
    if ty.is_signed() {
        (-(1i128 << (w - 1)), (1i128 << (w - 1)) - 1)
    } else {
        (0, (1i128 << w) - 1)
    }
}

impl BlockCtx<'_> {
    fn site(&self, t: &Thread, line: u32) -> Site {
        Site {
            line,
            block: self.ctaid,
            thread: t.tid,
        }
    }

    fn fault(&self, t: &Thread, line: u32, kind: FaultKind) -> Error {
        Error::Fault {
            kind,
            site: self.site(t, line),
        }
    }

    #[inline(always)]
    fn read(&self, t: &Thread, line: u32, src: Src, ty: ScalarType) -> Result<u64> {
        let v = match src {
            Src::Imm(b) => b,
            Src::Reg(r) => {
                let i = r as usize;
                if t.init.get(i).copied() != Some(t.epoch) {
                    let name = self.kernel.reg_names.get(i).cloned().unwrap_or_default();
                    return Err(self.fault(t, line, FaultKind::UninitializedRegister(name)));
                }
                t.regs.get(i).copied().unwrap_or(0)
            }
            Src::Special(s) => u64::from(match s {
                Special::Tid(d) => t.tid[d.min(2)],
                Special::Ntid(d) => self.ntid[d.min(2)],
                Special::Ctaid(d) => self.ctaid[d.min(2)],
                Special::Nctaid(d) => self.nctaid[d.min(2)],
            }),
        };
        Ok(v & mask(ty.bits()))
    }

    #[inline(always)]
    fn f32(&self, t: &Thread, line: u32, src: Src, ftz: bool) -> Result<f32> {
        let x = f32::from_bits(self.read(t, line, src, ScalarType::F32)? as u32);
        Ok(if ftz { ftz32(x) } else { x })
    }

    #[inline(always)]
    fn f64(&self, t: &Thread, line: u32, src: Src) -> Result<f64> {
        Ok(f64::from_bits(self.read(t, line, src, ScalarType::F64)?))
    }

    #[inline(always)]
    fn address(&self, t: &Thread, line: u32, a: Addr) -> Result<u64> {
        let base = match a.reg {
            Some(r) => self.read(t, line, Src::Reg(r), ScalarType::U64)?,
            None => 0,
        };
        Ok(base.wrapping_add(a.offset as u64))
    }

    fn load(&self, t: &Thread, line: u32, space: Space, addr: u64, size: u32) -> Result<u64> {
        let bytes: Option<&[u8]> = match space {
            Space::Global => {
                self.check_align(t, line, "global", addr, size)?;
                self.mem.slice(addr, size)
            }
            Space::Shared => {
                self.check_align(t, line, "shared", addr, size)?;
                self.shared_range(addr, size)
                    .and_then(|r| self.shared.get(r))
            }
            Space::Param => usize::try_from(addr)
                .ok()
                .and_then(|a| self.params.get(a..a.checked_add(size as usize)?)),
        };
        let Some(bytes) = bytes else {
            let space = match space {
                Space::Global => "global",
                Space::Shared => "shared",
                Space::Param => "param",
            };
            return Err(self.fault(t, line, FaultKind::OutOfBounds { space, addr, size }));
        };
        let mut buf = [0u8; 8];
        buf[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
        Ok(u64::from_le_bytes(buf))
    }

    fn store(
        &mut self,
        t: &Thread,
        line: u32,
        space: Space,
        addr: u64,
        size: u32,
        v: u64,
    ) -> Result<()> {
        let src = v.to_le_bytes();
        let name = if space == Space::Global {
            "global"
        } else {
            "shared"
        };
        self.check_align(t, line, name, addr, size)?;
        let dst: Option<&mut [u8]> = match space {
            Space::Global => self.mem.slice_mut(addr, size),
            _ => match self.shared_range(addr, size) {
                Some(r) => self.shared.get_mut(r),
                None => None,
            },
        };
        match dst {
            Some(d) => {
                let n = d.len().min(8);
                d[..n].copy_from_slice(&src[..n]);
                Ok(())
            }
            None => Err(self.fault(
                t,
                line,
                FaultKind::OutOfBounds {
                    space: name,
                    addr,
                    size,
                },
            )),
        }
    }

    #[inline(always)]
    fn check_align(
        &self,
        t: &Thread,
        line: u32,
        space: &'static str,
        addr: u64,
        size: u32,
    ) -> Result<()> {
        if !addr.is_multiple_of(u64::from(size.max(1))) {
            return Err(self.fault(t, line, FaultKind::Misaligned { space, addr, size }));
        }
        Ok(())
    }

    /// The byte range of a shared access if it lies inside one declared variable.
    fn shared_range(&self, addr: u64, size: u32) -> Option<std::ops::Range<usize>> {
        let end = addr.checked_add(u64::from(size))?;
        self.kernel
            .shared
            .iter()
            .find(|v| addr >= v.addr && end <= v.addr.saturating_add(v.size))?;
        Some(usize::try_from(addr).ok()?..usize::try_from(end).ok()?)
    }

    /// Runs `t` until it exits, reaches a barrier or faults.
    pub fn run(&mut self, t: &mut Thread) -> Result<()> {
        let kernel = self.kernel;
        loop {
            let Some(inst) = kernel.insts.get(t.pc) else {
                t.state = ThreadState::Exited;
                return Ok(());
            };
            t.steps += 1;
            self.executed += 1;
            if t.steps > self.step_limit {
                return Err(self.fault(t, inst.line, FaultKind::StepLimit(self.step_limit)));
            }
            if let Some((p, neg)) = inst.guard {
                let v = self.read(t, inst.line, Src::Reg(p), ScalarType::Pred)? != 0;
                if v == neg {
                    t.pc += 1;
                    continue;
                }
            }
            match &inst.op {
                Op::Bra { target } => {
                    t.pc = *target;
                    continue;
                }
                Op::Bar => {
                    t.state = ThreadState::AtBarrier(t.pc);
                    t.pc += 1;
                    return Ok(());
                }
                Op::Exit => {
                    t.state = ThreadState::Exited;
                    return Ok(());
                }
                op => self.step(t, inst.line, op)?,
            }
            t.pc += 1;
        }
    }

    #[inline(always)]
    fn write(&self, t: &mut Thread, d: u32, v: u64, ty: ScalarType) {
        let i = d as usize;
        let rty = self
            .kernel
            .reg_types
            .get(i)
            .copied()
            .unwrap_or(ScalarType::B64);
        let w = ty.bits();
        let mut v = v & mask(w);
        if rty == ScalarType::Pred {
            v &= 1;
        } else if rty.bits() > w && ty.is_signed() {
            v = sext(v, w) as u64;
        }
        if let (Some(slot), Some(init)) = (t.regs.get_mut(i), t.init.get_mut(i)) {
            *slot = v & mask(rty.bits());
            *init = t.epoch;
        }
    }

    fn step(&mut self, t: &mut Thread, line: u32, op: &Op) -> Result<()> {
        match *op {
            Op::Mov { ty, d, a } => {
                let v = self.read(t, line, a, ty)?;
                self.write(t, d, v, ty);
            }
            Op::IntBin {
                op,
                ty,
                sat,
                d,
                a,
                b,
            } => {
                let bty = if matches!(op, IBin::Shl | IBin::Shr) {
                    ScalarType::U32
                } else {
                    ty
                };
                let (x, y) = (self.read(t, line, a, ty)?, self.read(t, line, b, bty)?);
                let v = int_bin(op, ty, sat, x, y).map_err(|k| self.fault(t, line, k))?;
                self.write(t, d, v, ty);
            }
            Op::IntUn { op, ty, d, a } => {
                let x = self.read(t, line, a, ty)?;
                let (v, rty) = int_un(op, ty, x);
                self.write(t, d, v, rty);
            }
            Op::MulWide { ty, d, a, b } => {
                let (x, y) = (self.read(t, line, a, ty)?, self.read(t, line, b, ty)?);
                let p = int_value(x, ty) * int_value(y, ty);
                self.write(t, d, p as u64, wide_of(ty));
            }
            Op::Mad {
                mode,
                ty,
                d,
                a,
                b,
                c,
            } => {
                let (x, y) = (self.read(t, line, a, ty)?, self.read(t, line, b, ty)?);
                let cty = if mode == MadMode::Wide {
                    wide_of(ty)
                } else {
                    ty
                };
                let z = self.read(t, line, c, cty)?;
                let p = int_value(x, ty) * int_value(y, ty);
                let w = ty.bits();
                let prod = match mode {
                    MadMode::Lo | MadMode::Wide => p as u64,
                    MadMode::Hi => (p >> w) as u64,
                };
                self.write(t, d, prod.wrapping_add(z), cty);
            }
            Op::Setp {
                cmp,
                ty,
                ftz,
                d,
                a,
                b,
                combine,
            } => {
                let r = if ty.is_float() {
                    let (x, y) = if ty == ScalarType::F32 {
                        (
                            f64::from(self.f32(t, line, a, ftz)?),
                            f64::from(self.f32(t, line, b, ftz)?),
                        )
                    } else {
                        (self.f64(t, line, a)?, self.f64(t, line, b)?)
                    };
                    float_cmp(cmp, x, y)
                } else {
                    let (x, y) = (self.read(t, line, a, ty)?, self.read(t, line, b, ty)?);
                    int_cmp(cmp, ty, x, y)
                };
                let r = match combine {
                    None => r,
                    Some((op, c, neg)) => {
                        let c = (self.read(t, line, c, ScalarType::Pred)? != 0) != neg;
                        match op {
                            BoolOp::And => r && c,
                            BoolOp::Or => r || c,
                            BoolOp::Xor => r != c,
                        }
                    }
                };
                self.write(t, d, u64::from(r), ScalarType::Pred);
            }
            Op::Selp { ty, d, a, b, c } => {
                let pick = if self.read(t, line, c, ScalarType::Pred)? != 0 {
                    a
                } else {
                    b
                };
                let v = self.read(t, line, pick, ty)?;
                self.write(t, d, v, ty);
            }
            Op::Slct {
                ty,
                cty,
                ftz,
                d,
                a,
                b,
                c,
            } => {
                let take_a = if cty == ScalarType::F32 {
                    self.f32(t, line, c, ftz)? >= 0.0
                } else {
                    sext(self.read(t, line, c, cty)?, 32) >= 0
                };
                let v = self.read(t, line, if take_a { a } else { b }, ty)?;
                self.write(t, d, v, ty);
            }
            Op::FBin {
                op,
                ty,
                rnd,
                ftz,
                sat,
                d,
                a,
                b,
            } => {
                let v = if ty == ScalarType::F32 {
                    let (x, y) = (self.f32(t, line, a, ftz)?, self.f32(t, line, b, ftz)?);
                    u64::from(fbin32(op, rnd, ftz, sat, x, y).to_bits())
                } else {
                    let (x, y) = (self.f64(t, line, a)?, self.f64(t, line, b)?);
                    fbin64(op, x, y).to_bits()
                };
                self.write(t, d, v, ty);
            }
            Op::FUn {
                op,
                ty,
                rnd,
                ftz,
                d,
                a,
            } => {
                let v = if ty == ScalarType::F32 {
                    let x = self.f32(t, line, a, ftz)?;
                    let r = match op {
                        FUn::Sqrt => canon32(sqrt32(x, rnd)),
                        FUn::Rcp => canon32(div32(1.0, x, rnd)),
                        // A NaN operand gives the canonical NaN on the GPU, not a sign change.
                        FUn::Abs | FUn::Neg if x.is_nan() => f32::from_bits(float::CANON_NAN_F32),
                        FUn::Abs => f32::from_bits(x.to_bits() & 0x7fff_ffff),
                        FUn::Neg => f32::from_bits(x.to_bits() ^ 0x8000_0000),
                    };
                    u64::from((if ftz { ftz32(r) } else { r }).to_bits())
                } else {
                    let x = self.f64(t, line, a)?;
                    match op {
                        FUn::Sqrt => nan64(x.sqrt(), &[x]).to_bits(),
                        FUn::Rcp => nan64(1.0 / x, &[x]).to_bits(),
                        // A NaN operand comes back unchanged on the GPU, sign included.
                        FUn::Abs | FUn::Neg if x.is_nan() => quiet64(x).to_bits(),
                        FUn::Abs => x.to_bits() & !(1 << 63),
                        FUn::Neg => x.to_bits() ^ (1 << 63),
                    }
                };
                self.write(t, d, v, ty);
            }
            Op::Fma {
                ty,
                rnd,
                ftz,
                sat,
                d,
                a,
                b,
                c,
            } => {
                let v = if ty == ScalarType::F32 {
                    let (x, y, z) = (
                        self.f32(t, line, a, ftz)?,
                        self.f32(t, line, b, ftz)?,
                        self.f32(t, line, c, ftz)?,
                    );
                    let mut r = canon32(fma32(x, y, z, rnd));
                    if ftz {
                        r = ftz32(r);
                    }
                    if sat {
                        r = sat32(r);
                    }
                    u64::from(r.to_bits())
                } else {
                    let (x, y, z) = (
                        self.f64(t, line, a)?,
                        self.f64(t, line, b)?,
                        self.f64(t, line, c)?,
                    );
                    // NaN priority a, c, b: as an H200 picks among NaN operands.
                    nan64(x.mul_add(y, z), &[x, z, y]).to_bits()
                };
                self.write(t, d, v, ty);
            }
            Op::Testp { kind, ty, d, a } => {
                let x = if ty == ScalarType::F32 {
                    f64::from(self.f32(t, line, a, false)?)
                } else {
                    self.f64(t, line, a)?
                };
                let sub = if ty == ScalarType::F32 {
                    (x as f32).is_subnormal()
                } else {
                    x.is_subnormal()
                };
                let r = match kind {
                    TestKind::Finite => x.is_finite(),
                    TestKind::Infinite => x.is_infinite(),
                    TestKind::Number => !x.is_nan(),
                    TestKind::NotANumber => x.is_nan(),
                    // PTX ISA (testp): zeros count as normal numbers; an H200 agrees.
                    TestKind::Normal => x.is_finite() && !sub,
                    TestKind::Subnormal => sub,
                };
                self.write(t, d, u64::from(r), ScalarType::Pred);
            }
            Op::Cvt {
                dty,
                aty,
                rnd,
                ftz,
                sat,
                d,
                a,
            } => {
                let x = self.read(t, line, a, aty)?;
                let v = cvt(dty, aty, rnd, ftz, sat, x);
                self.write(t, d, v, dty);
            }
            Op::Ld { space, ty, d, addr } => {
                let at = self.address(t, line, addr)?;
                let v = self.load(t, line, space, at, ty.bytes())?;
                self.write(t, d, v, ty);
            }
            Op::St { space, ty, addr, a } => {
                let at = self.address(t, line, addr)?;
                let v = self.read(t, line, a, ty)?;
                self.store(t, line, space, at, ty.bytes(), v)?;
            }
            Op::Atom { op, ty, d, addr, b } => {
                let at = self.address(t, line, addr)?;
                let old = self.load(t, line, Space::Global, at, ty.bytes())?;
                let y = self.read(t, line, b, ty)?;
                let new = match op {
                    AtomOp::Add => old.wrapping_add(y),
                    AtomOp::Or => old | y,
                    AtomOp::And => old & y,
                    AtomOp::Xor => old ^ y,
                    AtomOp::Exch => y,
                    AtomOp::Min => int_bin(IBin::Min, ty, false, old, y).unwrap_or(old),
                    AtomOp::Max => int_bin(IBin::Max, ty, false, old, y).unwrap_or(old),
                } & mask(ty.bits());
                self.store(t, line, Space::Global, at, ty.bytes(), new)?;
                self.write(t, d, old, ty);
            }
            Op::Bra { .. } | Op::Bar | Op::Exit => {}
        }
        Ok(())
    }
}

/// Integer binary operation at the width of `ty`.
pub fn int_bin(
    op: IBin,
    ty: ScalarType,
    sat: bool,
    a: u64,
    b: u64,
) -> std::result::Result<u64, FaultKind> {
    let w = ty.bits();
    let signed = ty.is_signed();
    let (sa, sb) = (sext(a, w), sext(b, w));
    let (lo, hi) = int_range(ty);
    let v = match op {
        IBin::Add if sat => (i128::from(sa) + i128::from(sb)).clamp(lo, hi) as u64,
        IBin::Sub if sat => (i128::from(sa) - i128::from(sb)).clamp(lo, hi) as u64,
        IBin::Add => a.wrapping_add(b),
        IBin::Sub => a.wrapping_sub(b),
        IBin::MulLo => a.wrapping_mul(b),
        IBin::MulHi => {
            let p = int_value(a, ty) * int_value(b, ty);
            (p >> w) as u64
        }
        IBin::Div | IBin::Rem => {
            if b & mask(w) == 0 {
                return Err(FaultKind::IntegerDivisionByZero);
            }
            if signed {
                if op == IBin::Div && i128::from(sa) == lo && sb == -1 {
                    return Err(FaultKind::IntegerDivisionOverflow);
                }
                (if op == IBin::Div {
                    sa.wrapping_div(sb)
                } else {
                    sa.wrapping_rem(sb)
                }) as u64
            } else if op == IBin::Div {
                a / b
            } else {
                a % b
            }
        }
        IBin::And => a & b,
        IBin::Or => a | b,
        IBin::Xor => a ^ b,
        IBin::Shl => {
            if b >= u64::from(w) {
                0
            } else {
                a << b
            }
        }
        IBin::Shr => {
            if signed {
                (sa >> b.min(u64::from(w - 1))) as u64
            } else if b >= u64::from(w) {
                0
            } else {
                (a & mask(w)) >> b
            }
        }
        IBin::Min | IBin::Max => {
            let a_lt_b = if signed { sa < sb } else { a < b };
            if a_lt_b == (op == IBin::Min) { a } else { b }
        }
    };
    Ok(v & mask(w))
}

/// Integer unary operation; returns the result and the type it is written as.
pub fn int_un(op: IUn, ty: ScalarType, a: u64) -> (u64, ScalarType) {
    let w = ty.bits();
    let a = a & mask(w);
    match op {
        IUn::Not => (!a & mask(w), ty),
        IUn::Neg => (a.wrapping_neg() & mask(w), ty),
        IUn::Abs => (sext(a, w).wrapping_abs() as u64 & mask(w), ty),
        IUn::Clz => (
            if a == 0 {
                u64::from(w)
            } else {
                u64::from(a.leading_zeros() - (64 - w))
            },
            ScalarType::U32,
        ),
        IUn::Popc => (u64::from(a.count_ones()), ScalarType::U32),
        IUn::Brev => (a.reverse_bits() >> (64 - w), ty),
        IUn::Bfind { shiftamt } => {
            let msb = w - 1;
            let x = if ty.is_signed() && (a >> msb) & 1 == 1 {
                !a & mask(w)
            } else {
                a
            };
            let r = if x == 0 {
                0xffff_ffff
            } else {
                let pos = 63 - x.leading_zeros();
                if shiftamt { msb - pos } else { pos }
            };
            (u64::from(r), ScalarType::U32)
        }
    }
}

fn int_cmp(cmp: Cmp, ty: ScalarType, a: u64, b: u64) -> bool {
    let ord = match cmp {
        Cmp::Lo | Cmp::Ls | Cmp::Hi | Cmp::Hs => a.cmp(&b),
        _ if ty.is_signed() => sext(a, ty.bits()).cmp(&sext(b, ty.bits())),
        _ => a.cmp(&b),
    };
    match cmp {
        Cmp::Eq => ord == Ordering::Equal,
        Cmp::Ne => ord != Ordering::Equal,
        Cmp::Lt | Cmp::Lo => ord == Ordering::Less,
        Cmp::Le | Cmp::Ls => ord != Ordering::Greater,
        Cmp::Gt | Cmp::Hi => ord == Ordering::Greater,
        Cmp::Ge | Cmp::Hs => ord != Ordering::Less,
        _ => false,
    }
}

fn float_cmp(cmp: Cmp, a: f64, b: f64) -> bool {
    let unordered = a.is_nan() || b.is_nan();
    match cmp {
        Cmp::Eq => a == b,
        Cmp::Ne => !unordered && a != b,
        Cmp::Lt => a < b,
        Cmp::Le => a <= b,
        Cmp::Gt => a > b,
        Cmp::Ge => a >= b,
        Cmp::Equ => unordered || a == b,
        Cmp::Neu => unordered || a != b,
        Cmp::Ltu => unordered || a < b,
        Cmp::Leu => unordered || a <= b,
        Cmp::Gtu => unordered || a > b,
        Cmp::Geu => unordered || a >= b,
        Cmp::Num => !unordered,
        Cmp::Nan => unordered,
        Cmp::Lo | Cmp::Ls | Cmp::Hi | Cmp::Hs => false,
    }
}

fn fbin32(op: FBin, rnd: Rnd, ftz: bool, sat: bool, x: f32, y: f32) -> f32 {
    let mut r = match op {
        FBin::Add => canon32(add32(x, y, rnd)),
        FBin::Sub => canon32(add32(x, -y, rnd)),
        FBin::Mul => canon32(mul32(x, y, rnd)),
        FBin::Div => canon32(div32(x, y, rnd)),
        FBin::Min { nan } => min64(f64::from(x), f64::from(y), nan)
            .map_or(f32::from_bits(float::CANON_NAN_F32), |v| v as f32),
        FBin::Max { nan } => max64(f64::from(x), f64::from(y), nan)
            .map_or(f32::from_bits(float::CANON_NAN_F32), |v| v as f32),
        FBin::Copysign => {
            return f32::from_bits((y.to_bits() & 0x7fff_ffff) | (x.to_bits() & 0x8000_0000));
        }
    };
    if ftz {
        r = ftz32(r);
    }
    if sat {
        r = sat32(r);
    }
    r
}

fn fbin64(op: FBin, x: f64, y: f64) -> f64 {
    match op {
        FBin::Add => nan64(x + y, &[x, y]),
        FBin::Sub => nan64(x - y, &[x, y]),
        FBin::Mul => nan64(x * y, &[x, y]),
        FBin::Div => nan64(x / y, &[x, y]),
        FBin::Min { nan } => min64(x, y, nan).unwrap_or_else(|| float::nan_minmax64(x, y)),
        FBin::Max { nan } => max64(x, y, nan).unwrap_or_else(|| float::nan_minmax64(x, y)),
        FBin::Copysign => f64::from_bits((y.to_bits() & !(1 << 63)) | (x.to_bits() & (1 << 63))),
    }
}

/// `cvt` on raw bits; returns the destination bits.
pub fn cvt(dty: ScalarType, aty: ScalarType, rnd: CvtRnd, ftz: bool, sat: bool, x: u64) -> u64 {
    let finish32 = |r: f32| {
        let mut r = canon32(r);
        if ftz {
            r = ftz32(r);
        }
        if sat {
            r = sat32(r);
        }
        u64::from(r.to_bits())
    };
    // Integer sources: the result is never NaN.
    let finish64 = |r: f64| (if sat { sat64(r) } else { r }).to_bits();
    let read_float = |x: u64| -> f64 {
        if aty == ScalarType::F32 {
            let f = f32::from_bits(x as u32);
            f64::from(if ftz { ftz32(f) } else { f })
        } else {
            f64::from_bits(x)
        }
    };
    match (dty.is_float(), aty.is_float()) {
        (false, false) => {
            let v = int_value(x, aty);
            let (lo, hi) = int_range(dty);
            (if sat { v.clamp(lo, hi) } else { v }) as u64 & mask(dty.bits())
        }
        (true, false) => {
            let v = int_value(x, aty);
            let r = match rnd {
                CvtRnd::Float(r) => r,
                _ => Rnd::N,
            };
            if dty == ScalarType::F32 {
                finish32(int_to_f32(v, r))
            } else {
                finish64(int_to_f64(v, r))
            }
        }
        (false, true) => {
            let f = read_float(x);
            let w = dty.bits();
            if f.is_nan() {
                // PTX ISA 9.7.9.21 (cvt), Integer Notes: NaN gives 0 unless the source is .f64 or
                // the destination is 64-bit, where it gives 1 << (width - 1).
                return if aty != ScalarType::F64 && w != 64 {
                    0
                } else {
                    1u64 << (w - 1)
                };
            }
            let r = match rnd {
                CvtRnd::Int(r) => r,
                _ => Rnd::Z,
            };
            let (lo, hi) = int_range(dty);
            let v = (round_integral(f, r) as i128).clamp(lo, hi);
            v as u64 & mask(w)
        }
        (true, true) => {
            let f = read_float(x);
            if f.is_nan() {
                return if sat {
                    0
                } else {
                    float::cvt_nan(dty == ScalarType::F32, aty == ScalarType::F32, x)
                };
            }
            match (dty, rnd) {
                (ScalarType::F32, CvtRnd::Float(r)) if aty == ScalarType::F64 => {
                    finish32(round_to_f32(f, Ordering::Equal, r))
                }
                (ScalarType::F32, CvtRnd::Int(r)) => finish32(round_integral(f, r) as f32),
                (ScalarType::F32, _) => finish32(f as f32),
                (_, CvtRnd::Int(r)) => finish64(round_integral(f, r)),
                _ => finish64(f),
            }
        }
    }
}
