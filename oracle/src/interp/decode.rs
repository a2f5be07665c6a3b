//! Decoder: turns one parsed `.entry` into a flat program of typed operations with resolved
//! registers, labels, parameters and shared variables.
//!
//! This is where the accepted subset is enforced. Every opcode, modifier and operand form is
//! either understood exactly or rejected with `Error::Unsupported` naming its line; the decoder
//! must never ignore a modifier it does not know, and never accept an instruction whose PTX
//! result is not bit-reproducible (`.approx`, `.full`, implicit rounding unless allowed).

use std::collections::HashMap;

use super::float::Rnd;
use crate::error::{Error, Result};
use crate::ptx::{AddrBase, Entry, Instruction, Literal, Operand, ScalarType, Statement};

/// A source operand.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Src {
    /// Register index.
    Reg(u32),
    /// Immediate bits (already converted to the instruction type).
    Imm(u64),
    /// Special register.
    Special(Special),
}

/// A special register; the `usize` is the dimension (0 = x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// `%tid`
    Tid(usize),
    /// `%ntid`
    Ntid(usize),
    /// `%ctaid`
    Ctaid(usize),
    /// `%nctaid`
    Nctaid(usize),
}

/// A state space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// `.global`
    Global,
    /// `.shared`
    Shared,
    /// `.param` (kernel parameters, read-only)
    Param,
}

/// An address: register or absolute base plus byte offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Addr {
    /// Register holding the base, or `None` for an absolute address.
    pub reg: Option<u32>,
    /// Absolute part.
    pub offset: i64,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IBin {
    Add,
    Sub,
    MulLo,
    MulHi,
    Div,
    Rem,
    And,
    Or,
    Xor,
    Shl,
    Shr,
    Min,
    Max,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IUn {
    Not,
    Neg,
    Abs,
    Clz,
    Popc,
    Brev,
    Bfind { shiftamt: bool },
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FBin {
    Add,
    Sub,
    Mul,
    Div,
    Min { nan: bool },
    Max { nan: bool },
    Copysign,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FUn {
    Sqrt,
    Rcp,
    Abs,
    Neg,
}

/// `setp` comparison.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Lo,
    Ls,
    Hi,
    Hs,
    Equ,
    Neu,
    Ltu,
    Leu,
    Gtu,
    Geu,
    Num,
    Nan,
}

/// Boolean combiner of `setp.CMP.BOOL`.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolOp {
    And,
    Or,
    Xor,
}

/// `testp` property.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKind {
    Finite,
    Infinite,
    Number,
    NotANumber,
    Normal,
    Subnormal,
}

/// `atom` operation.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomOp {
    Add,
    Or,
    And,
    Xor,
    Exch,
    Min,
    Max,
}

/// `mad` variant.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MadMode {
    Lo,
    Hi,
    Wide,
}

/// `cvt` rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CvtRnd {
    /// No rounding modifier.
    None,
    /// `.rn/.rz/.rm/.rp`
    Float(Rnd),
    /// `.rni/.rzi/.rmi/.rpi`
    Int(Rnd),
}

/// One decoded operation.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Mov {
        ty: ScalarType,
        d: u32,
        a: Src,
    },
    IntBin {
        op: IBin,
        ty: ScalarType,
        sat: bool,
        d: u32,
        a: Src,
        b: Src,
    },
    IntUn {
        op: IUn,
        ty: ScalarType,
        d: u32,
        a: Src,
    },
    MulWide {
        ty: ScalarType,
        d: u32,
        a: Src,
        b: Src,
    },
    Mad {
        mode: MadMode,
        ty: ScalarType,
        d: u32,
        a: Src,
        b: Src,
        c: Src,
    },
    Setp {
        cmp: Cmp,
        ty: ScalarType,
        ftz: bool,
        d: u32,
        a: Src,
        b: Src,
        combine: Option<(BoolOp, Src, bool)>,
    },
    Selp {
        ty: ScalarType,
        d: u32,
        a: Src,
        b: Src,
        c: Src,
    },
    Slct {
        ty: ScalarType,
        cty: ScalarType,
        ftz: bool,
        d: u32,
        a: Src,
        b: Src,
        c: Src,
    },
    FBin {
        op: FBin,
        ty: ScalarType,
        rnd: Rnd,
        ftz: bool,
        sat: bool,
        d: u32,
        a: Src,
        b: Src,
    },
    FUn {
        op: FUn,
        ty: ScalarType,
        rnd: Rnd,
        ftz: bool,
        d: u32,
        a: Src,
    },
    Fma {
        ty: ScalarType,
        rnd: Rnd,
        ftz: bool,
        sat: bool,
        d: u32,
        a: Src,
        b: Src,
        c: Src,
    },
    Testp {
        kind: TestKind,
        ty: ScalarType,
        d: u32,
        a: Src,
    },
    Cvt {
        dty: ScalarType,
        aty: ScalarType,
        rnd: CvtRnd,
        ftz: bool,
        sat: bool,
        d: u32,
        a: Src,
    },
    Ld {
        space: Space,
        ty: ScalarType,
        d: u32,
        addr: Addr,
    },
    St {
        space: Space,
        ty: ScalarType,
        addr: Addr,
        a: Src,
    },
    Atom {
        op: AtomOp,
        ty: ScalarType,
        d: u32,
        addr: Addr,
        b: Src,
    },
    Bra {
        target: usize,
    },
    Bar,
    Exit,
}

/// A decoded instruction.
#[derive(Debug, Clone, PartialEq)]
pub struct Inst {
    /// The operation.
    pub op: Op,
    /// Guard predicate register and whether it is negated.
    pub guard: Option<(u32, bool)>,
    /// PTX line.
    pub line: u32,
}

/// A shared variable's place in the block's shared window.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedVar {
    /// Address in the shared window.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// A kernel parameter's place in the parameter buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSlot {
    /// Name.
    pub name: String,
    /// Declared type.
    pub ty: ScalarType,
    /// Byte offset in the parameter buffer.
    pub offset: u64,
}

/// A decoded kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    /// Instructions in order.
    pub insts: Vec<Inst>,
    /// Declared type of every register.
    pub reg_types: Vec<ScalarType>,
    /// Name of every register (for messages).
    pub reg_names: Vec<String>,
    /// Shared variables.
    pub shared: Vec<SharedVar>,
    /// Total bytes of shared memory per block.
    pub shared_bytes: u64,
    /// The block shape `.reqntid` demands, if declared.
    pub reqntid: Option<[u32; 3]>,
    /// Parameters.
    pub params: Vec<ParamSlot>,
    /// Total bytes of the parameter buffer.
    pub param_bytes: u64,
}

/// Decoder options.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// Treat `add/sub/mul.f32/.f64` without a rounding modifier as `.rn`.
    pub allow_implicit_rounding: bool,
}

/// Shared memory available to one block (bytes), as on sm_80 with the largest carve-out.
pub const MAX_SHARED_BYTES: u64 = 163 * 1024;

/// Decodes an entry.
pub fn decode(entry: &Entry, opts: DecodeOptions) -> Result<Kernel> {
    let mut d = Decoder {
        regs: HashMap::new(),
        reg_types: Vec::new(),
        reg_names: Vec::new(),
        symbols: HashMap::new(),
        opts,
    };
    for r in &entry.regs {
        match r.count {
            None => d.add_reg(&r.name, r.ty, r.line)?,
            Some(n) => {
                for i in 0..n {
                    d.add_reg(&format!("{}{i}", r.name), r.ty, r.line)?;
                }
            }
        }
    }
    let mut params = Vec::new();
    let mut off = 0u64;
    for p in &entry.params {
        if p.ty == ScalarType::Pred || p.ty == ScalarType::F16 {
            return unsupported(p.line, format!("parameter `{}` of type {}", p.name, p.ty));
        }
        let align = u64::from(p.align.unwrap_or(p.ty.bytes()).max(1));
        off = off.div_ceil(align) * align;
        d.define(&p.name, Sym::Param(off), p.line)?;
        params.push(ParamSlot {
            name: p.name.clone(),
            ty: p.ty,
            offset: off,
        });
        off += u64::from(p.ty.bytes());
    }
    let param_bytes = off;
    let mut shared = Vec::new();
    let mut soff = 0u64;
    for s in &entry.shared {
        if s.ty == ScalarType::F16 {
            return unsupported(s.line, "`.f16` shared variables".into());
        }
        let align = u64::from(s.align.max(1));
        soff = soff.div_ceil(align) * align;
        let size = s.len.saturating_mul(u64::from(s.ty.bytes()));
        d.define(&s.name, Sym::Shared(soff), s.line)?;
        shared.push(SharedVar { addr: soff, size });
        soff = soff.saturating_add(size);
        if soff > MAX_SHARED_BYTES {
            return unsupported(
                s.line,
                format!("shared memory above {MAX_SHARED_BYTES} bytes per block"),
            );
        }
    }
    // Labels first, so branches can go forward.
    let mut pc = 0usize;
    for st in &entry.body {
        match st {
            Statement::Label { name, line } => d.define(name, Sym::Label(pc), *line)?,
            Statement::Instr(_) => pc += 1,
        }
    }
    let mut insts = Vec::with_capacity(pc);
    for st in &entry.body {
        if let Statement::Instr(i) = st {
            insts.push(d.inst(i)?);
        }
    }
    Ok(Kernel {
        insts,
        reg_types: d.reg_types,
        reg_names: d.reg_names,
        shared,
        shared_bytes: soff,
        reqntid: entry.reqntid,
        params,
        param_bytes,
    })
}

fn unsupported<T>(line: u32, what: String) -> Result<T> {
    Err(Error::Unsupported { line, what })
}

#[derive(Debug, Clone, Copy)]
enum Sym {
    Param(u64),
    Shared(u64),
    Label(usize),
}

struct Decoder {
    regs: HashMap<String, u32>,
    reg_types: Vec<ScalarType>,
    reg_names: Vec<String>,
    symbols: HashMap<String, Sym>,
    opts: DecodeOptions,
}

/// Modifiers still to be consumed by an instruction's decoder.
struct Mods<'a> {
    list: Vec<&'a str>,
    line: u32,
    mnem: String,
}

const ROUND_F: [&str; 4] = ["rn", "rz", "rm", "rp"];
const ROUND_I: [&str; 4] = ["rni", "rzi", "rmi", "rpi"];

fn rnd_of(s: &str) -> Rnd {
    match s.trim_end_matches('i') {
        "rz" => Rnd::Z,
        "rm" => Rnd::M,
        "rp" => Rnd::P,
        _ => Rnd::N,
    }
}

impl<'a> Mods<'a> {
    fn flag(&mut self, name: &str) -> bool {
        match self.list.iter().position(|m| *m == name) {
            Some(i) => {
                self.list.remove(i);
                true
            }
            None => false,
        }
    }

    fn one_of(&mut self, names: &[&str]) -> Option<&'a str> {
        let i = self.list.iter().position(|m| names.contains(m))?;
        Some(self.list.remove(i))
    }

    fn types(&mut self) -> Vec<ScalarType> {
        let mut out = Vec::new();
        self.list.retain(|m| match ScalarType::from_name(m) {
            Some(t) => {
                out.push(t);
                false
            }
            None => true,
        });
        out
    }

    fn one_type(&mut self) -> Result<ScalarType> {
        let t = self.types();
        match t.as_slice() {
            [t] => Ok(*t),
            _ => unsupported(
                self.line,
                format!("`{}` needs exactly one type modifier", self.mnem),
            ),
        }
    }

    fn finish(&self) -> Result<()> {
        match self.list.first() {
            None => Ok(()),
            Some(m) => unsupported(self.line, format!("modifier `.{m}` on `{}`", self.mnem)),
        }
    }
}

fn special(name: &str) -> Option<Special> {
    let (base, dim) = name.rsplit_once('.')?;
    let dim = match dim {
        "x" => 0,
        "y" => 1,
        "z" => 2,
        _ => return None,
    };
    Some(match base {
        "%tid" => Special::Tid(dim),
        "%ntid" => Special::Ntid(dim),
        "%ctaid" => Special::Ctaid(dim),
        "%nctaid" => Special::Nctaid(dim),
        _ => return None,
    })
}

/// Converts a literal to the bits of a value of type `ty`.
fn literal_bits(lit: Literal, ty: ScalarType) -> Option<u64> {
    let mask = if ty.bits() >= 64 {
        u64::MAX
    } else {
        (1u64 << ty.bits()) - 1
    };
    Some(match (ty, lit) {
        (ScalarType::F32, Literal::F32Bits(b)) => u64::from(b),
        (ScalarType::F32, Literal::Float(v)) => u64::from((v as f32).to_bits()),
        (ScalarType::F32, Literal::Int(v)) => u64::from((v as f32).to_bits()),
        (ScalarType::F64, Literal::F64Bits(b)) => b,
        (ScalarType::F64, Literal::F32Bits(b)) => f64::from(f32::from_bits(b)).to_bits(),
        (ScalarType::F64, Literal::Float(v)) => v.to_bits(),
        (ScalarType::F64, Literal::Int(v)) => (v as f64).to_bits(),
        (ScalarType::Pred, Literal::Int(v)) => u64::from(v != 0),
        (t, Literal::Int(v)) if t.is_int() => (v as u64) & mask,
        // Bit-size types may hold float literals (`mov.b32 %r, 0f3F800000`).
        (ScalarType::B32, Literal::F32Bits(b)) => u64::from(b),
        (ScalarType::B64, Literal::F64Bits(b)) => b,
        _ => return None,
    })
}

impl Decoder {
    fn add_reg(&mut self, name: &str, ty: ScalarType, line: u32) -> Result<()> {
        if self.regs.contains_key(name) || special(name).is_some() {
            return Err(Error::Parse {
                line,
                col: 1,
                msg: format!("register `{name}` declared twice"),
            });
        }
        let idx = self.reg_types.len() as u32;
        self.regs.insert(name.to_string(), idx);
        self.reg_types.push(ty);
        self.reg_names.push(name.to_string());
        Ok(())
    }

    fn define(&mut self, name: &str, sym: Sym, line: u32) -> Result<()> {
        if self.symbols.insert(name.to_string(), sym).is_some() {
            return Err(Error::Parse {
                line,
                col: 1,
                msg: format!("`{name}` defined twice"),
            });
        }
        Ok(())
    }

    fn reg(&self, name: &str, line: u32) -> Result<u32> {
        self.regs.get(name).copied().ok_or_else(|| Error::Parse {
            line,
            col: 1,
            msg: format!("undeclared register `{name}`"),
        })
    }

    fn dst(&self, i: &Instruction, k: usize) -> Result<u32> {
        match i.operands.get(k) {
            Some(Operand::Reg(r)) => {
                if special(r).is_some() {
                    return unsupported(i.line, format!("write to special register `{r}`"));
                }
                self.reg(r, i.line)
            }
            _ => unsupported(
                i.line,
                format!("operand {} of `{}` must be a register", k + 1, i.mnemonic()),
            ),
        }
    }

    fn pred_dst(&self, i: &Instruction, k: usize) -> Result<u32> {
        let d = self.dst(i, k)?;
        if self.reg_types[d as usize] != ScalarType::Pred {
            return unsupported(
                i.line,
                format!(
                    "operand {} of `{}` must be a `.pred` register",
                    k + 1,
                    i.mnemonic()
                ),
            );
        }
        Ok(d)
    }

    fn src(&self, i: &Instruction, k: usize, ty: ScalarType) -> Result<Src> {
        match i.operands.get(k) {
            Some(Operand::Reg(r)) => match special(r) {
                Some(s) => Ok(Src::Special(s)),
                None => Ok(Src::Reg(self.reg(r, i.line)?)),
            },
            Some(Operand::Imm(lit)) => match literal_bits(*lit, ty) {
                Some(b) => Ok(Src::Imm(b)),
                None => unsupported(
                    i.line,
                    format!("literal {lit:?} as a {ty} operand of `{}`", i.mnemonic()),
                ),
            },
            Some(Operand::Symbol(s)) => match self.symbols.get(s) {
                Some(Sym::Shared(a)) if ty.bits() >= 32 && ty.is_int() => Ok(Src::Imm(*a)),
                _ => unsupported(
                    i.line,
                    format!("symbol `{s}` as an operand of `{}`", i.mnemonic()),
                ),
            },
            Some(_) => unsupported(i.line, format!("operand {} of `{}`", k + 1, i.mnemonic())),
            None => unsupported(
                i.line,
                format!("`{}` is missing operand {}", i.mnemonic(), k + 1),
            ),
        }
    }

    fn pred_src(&self, i: &Instruction, k: usize) -> Result<(Src, bool)> {
        let (name, neg) = match i.operands.get(k) {
            Some(Operand::Reg(r)) => (r, false),
            Some(Operand::NotReg(r)) => (r, true),
            _ => {
                return unsupported(
                    i.line,
                    format!(
                        "operand {} of `{}` must be a predicate",
                        k + 1,
                        i.mnemonic()
                    ),
                );
            }
        };
        let r = self.reg(name, i.line)?;
        if self.reg_types[r as usize] != ScalarType::Pred {
            return unsupported(i.line, format!("`{name}` is not a `.pred` register"));
        }
        Ok((Src::Reg(r), neg))
    }

    fn addr(&self, i: &Instruction, k: usize, space: Space) -> Result<Addr> {
        let Some(Operand::Addr { base, offset }) = i.operands.get(k) else {
            return unsupported(
                i.line,
                format!(
                    "operand {} of `{}` must be an address `[...]`",
                    k + 1,
                    i.mnemonic()
                ),
            );
        };
        match base {
            None => Ok(Addr {
                reg: None,
                offset: *offset,
            }),
            Some(AddrBase::Reg(r)) => {
                if space == Space::Param {
                    return unsupported(i.line, "register-based `.param` address".into());
                }
                Ok(Addr {
                    reg: Some(self.reg(r, i.line)?),
                    offset: *offset,
                })
            }
            Some(AddrBase::Symbol(s)) => match (self.symbols.get(s), space) {
                (Some(Sym::Param(o)), Space::Param) | (Some(Sym::Shared(o)), Space::Shared) => {
                    Ok(Addr {
                        reg: None,
                        offset: (*o as i64).saturating_add(*offset),
                    })
                }
                _ => unsupported(i.line, format!("`[{s}]` in `{}`", i.mnemonic())),
            },
        }
    }

    fn arity(&self, i: &Instruction, n: usize) -> Result<()> {
        if i.operands.len() == n {
            Ok(())
        } else {
            unsupported(
                i.line,
                format!(
                    "`{}` takes {n} operands, found {}",
                    i.mnemonic(),
                    i.operands.len()
                ),
            )
        }
    }

    fn inst(&self, i: &Instruction) -> Result<Inst> {
        let guard = match &i.guard {
            None => None,
            Some(g) => {
                let r = self.reg(&g.reg, i.line)?;
                if self.reg_types[r as usize] != ScalarType::Pred {
                    return unsupported(
                        i.line,
                        format!("guard `{}` is not a `.pred` register", g.reg),
                    );
                }
                Some((r, g.negated))
            }
        };
        let mut m = Mods {
            list: i.modifiers.iter().map(String::as_str).collect(),
            line: i.line,
            mnem: i.mnemonic(),
        };
        let op = self.op(i, &mut m)?;
        m.finish()?;
        Ok(Inst {
            op,
            guard,
            line: i.line,
        })
    }

    fn float_rnd(
        &self,
        i: &Instruction,
        m: &mut Mods,
        ty: ScalarType,
        required: bool,
    ) -> Result<Rnd> {
        if m.flag("approx") || m.flag("full") {
            return unsupported(
                i.line,
                format!(
                    "`{}`: approximate results are not bit-reproducible",
                    i.mnemonic()
                ),
            );
        }
        let rnd = match m.one_of(&ROUND_F) {
            Some(r) => rnd_of(r),
            None if required => {
                return unsupported(
                    i.line,
                    format!("`{}` needs a rounding modifier", i.mnemonic()),
                );
            }
            None if self.opts.allow_implicit_rounding => Rnd::N,
            None => {
                return unsupported(
                    i.line,
                    format!(
                        "`{}` without a rounding modifier may be contracted into fma by ptxas; write `.rn`",
                        i.mnemonic()
                    ),
                );
            }
        };
        if ty == ScalarType::F64 && rnd != Rnd::N {
            return unsupported(
                i.line,
                format!("`{}`: directed rounding of `.f64` results", i.mnemonic()),
            );
        }
        Ok(rnd)
    }

    fn check_ftz(&self, i: &Instruction, m: &mut Mods, ty: ScalarType) -> Result<bool> {
        let ftz = m.flag("ftz");
        if ftz && ty != ScalarType::F32 {
            return unsupported(
                i.line,
                format!("`.ftz` on `{}` (only `.f32`)", i.mnemonic()),
            );
        }
        Ok(ftz)
    }

    fn float_ty(&self, i: &Instruction, m: &mut Mods) -> Result<ScalarType> {
        let ty = m.one_type()?;
        if ty != ScalarType::F32 && ty != ScalarType::F64 {
            return unsupported(i.line, format!("`{}` on type {ty}", i.mnemonic()));
        }
        Ok(ty)
    }

    fn op(&self, i: &Instruction, m: &mut Mods) -> Result<Op> {
        let types_peek: Vec<ScalarType> = i
            .modifiers
            .iter()
            .filter_map(|s| ScalarType::from_name(s))
            .collect();
        let is_float = types_peek.last().is_some_and(|t| t.is_float());
        let line = i.line;
        Ok(match i.opcode.as_str() {
            "ld" | "st" => return self.ld_st(i, m),
            "atom" => return self.atom(i, m),
            "mov" => {
                self.arity(i, 2)?;
                let ty = m.one_type()?;
                Op::Mov {
                    ty,
                    d: self.dst(i, 0)?,
                    a: self.src(i, 1, ty)?,
                }
            }
            "cvta" => {
                self.arity(i, 2)?;
                let _ = m.flag("to");
                if !m.flag("global") {
                    return unsupported(
                        line,
                        format!("`{}` (only `cvta.to.global` / `cvta.global`)", i.mnemonic()),
                    );
                }
                let ty = m.one_type()?;
                if ty.bits() != 64 {
                    return unsupported(line, "cvta on a 32-bit address".into());
                }
                Op::Mov {
                    ty,
                    d: self.dst(i, 0)?,
                    a: self.src(i, 1, ty)?,
                }
            }
            "add" | "sub" | "mul" | "div" | "min" | "max" if is_float => {
                self.arity(i, 3)?;
                let ty = self.float_ty(i, m)?;
                let ftz = self.check_ftz(i, m, ty)?;
                let sat = m.flag("sat");
                let (op, rnd) = match i.opcode.as_str() {
                    "add" => (FBin::Add, self.float_rnd(i, m, ty, false)?),
                    "sub" => (FBin::Sub, self.float_rnd(i, m, ty, false)?),
                    "mul" => (FBin::Mul, self.float_rnd(i, m, ty, false)?),
                    "div" => (FBin::Div, self.float_rnd(i, m, ty, true)?),
                    name => {
                        let nan = m.flag("NaN");
                        if m.flag("xorsign") || m.flag("abs") {
                            return unsupported(
                                line,
                                format!("`{}` with `.xorsign`/`.abs`", i.mnemonic()),
                            );
                        }
                        (
                            if name == "min" {
                                FBin::Min { nan }
                            } else {
                                FBin::Max { nan }
                            },
                            Rnd::N,
                        )
                    }
                };
                if sat
                    && (ty != ScalarType::F32
                        || matches!(op, FBin::Div | FBin::Min { .. } | FBin::Max { .. }))
                {
                    return unsupported(line, format!("`.sat` on `{}`", i.mnemonic()));
                }
                Op::FBin {
                    op,
                    ty,
                    rnd,
                    ftz,
                    sat,
                    d: self.dst(i, 0)?,
                    a: self.src(i, 1, ty)?,
                    b: self.src(i, 2, ty)?,
                }
            }
            "copysign" => {
                self.arity(i, 3)?;
                let ty = self.float_ty(i, m)?;
                Op::FBin {
                    op: FBin::Copysign,
                    ty,
                    rnd: Rnd::N,
                    ftz: false,
                    sat: false,
                    d: self.dst(i, 0)?,
                    a: self.src(i, 1, ty)?,
                    b: self.src(i, 2, ty)?,
                }
            }
            "fma" | "mad" if is_float => {
                self.arity(i, 4)?;
                let ty = self.float_ty(i, m)?;
                let ftz = self.check_ftz(i, m, ty)?;
                let sat = m.flag("sat");
                if sat && ty != ScalarType::F32 {
                    return unsupported(line, format!("`.sat` on `{}`", i.mnemonic()));
                }
                let rnd = self.float_rnd(i, m, ty, true)?;
                Op::Fma {
                    ty,
                    rnd,
                    ftz,
                    sat,
                    d: self.dst(i, 0)?,
                    a: self.src(i, 1, ty)?,
                    b: self.src(i, 2, ty)?,
                    c: self.src(i, 3, ty)?,
                }
            }
            "sqrt" | "rcp" | "abs" | "neg" if is_float => {
                self.arity(i, 2)?;
                let ty = self.float_ty(i, m)?;
                let ftz = self.check_ftz(i, m, ty)?;
                let (op, rnd) = match i.opcode.as_str() {
                    "sqrt" => (FUn::Sqrt, self.float_rnd(i, m, ty, true)?),
                    "rcp" => (FUn::Rcp, self.float_rnd(i, m, ty, true)?),
                    "abs" => (FUn::Abs, Rnd::N),
                    _ => (FUn::Neg, Rnd::N),
                };
                Op::FUn {
                    op,
                    ty,
                    rnd,
                    ftz,
                    d: self.dst(i, 0)?,
                    a: self.src(i, 1, ty)?,
                }
            }
            "testp" => {
                self.arity(i, 2)?;
                let kind = match m.one_of(&[
                    "finite",
                    "infinite",
                    "number",
                    "notanumber",
                    "normal",
                    "subnormal",
                ]) {
                    Some("finite") => TestKind::Finite,
                    Some("infinite") => TestKind::Infinite,
                    Some("number") => TestKind::Number,
                    Some("notanumber") => TestKind::NotANumber,
                    Some("normal") => TestKind::Normal,
                    Some(_) => TestKind::Subnormal,
                    None => {
                        return unsupported(line, format!("`{}` needs a property", i.mnemonic()));
                    }
                };
                let ty = self.float_ty(i, m)?;
                Op::Testp {
                    kind,
                    ty,
                    d: self.pred_dst(i, 0)?,
                    a: self.src(i, 1, ty)?,
                }
            }
            "setp" => {
                let cmp = match m.one_of(&[
                    "eq", "ne", "lt", "le", "gt", "ge", "lo", "ls", "hi", "hs", "equ", "neu",
                    "ltu", "leu", "gtu", "geu", "num", "nan",
                ]) {
                    Some(c) => cmp_of(c),
                    None => {
                        return unsupported(line, format!("`{}` needs a comparison", i.mnemonic()));
                    }
                };
                let boolop = match m.one_of(&["and", "or", "xor"]) {
                    Some("and") => Some(BoolOp::And),
                    Some("or") => Some(BoolOp::Or),
                    Some(_) => Some(BoolOp::Xor),
                    None => None,
                };
                let ty = m.one_type()?;
                let ftz = self.check_ftz(i, m, ty)?;
                let float_only = matches!(
                    cmp,
                    Cmp::Equ
                        | Cmp::Neu
                        | Cmp::Ltu
                        | Cmp::Leu
                        | Cmp::Gtu
                        | Cmp::Geu
                        | Cmp::Num
                        | Cmp::Nan
                );
                let int_only = matches!(cmp, Cmp::Lo | Cmp::Ls | Cmp::Hi | Cmp::Hs);
                if (ty.is_float() && int_only)
                    || (!ty.is_float() && float_only)
                    || ty == ScalarType::F16
                    || ty == ScalarType::Pred
                    || ty.bits() < 16
                {
                    return unsupported(line, format!("`{}`", i.mnemonic()));
                }
                let combine = match boolop {
                    Some(op) => {
                        self.arity(i, 4)?;
                        let (c, neg) = self.pred_src(i, 3)?;
                        Some((op, c, neg))
                    }
                    None => {
                        self.arity(i, 3)?;
                        None
                    }
                };
                Op::Setp {
                    cmp,
                    ty,
                    ftz,
                    d: self.pred_dst(i, 0)?,
                    a: self.src(i, 1, ty)?,
                    b: self.src(i, 2, ty)?,
                    combine,
                }
            }
            "selp" => {
                self.arity(i, 4)?;
                let ty = m.one_type()?;
                let (c, neg) = self.pred_src(i, 3)?;
                if neg {
                    return unsupported(line, "negated predicate in `selp`".into());
                }
                Op::Selp {
                    ty,
                    d: self.dst(i, 0)?,
                    a: self.src(i, 1, ty)?,
                    b: self.src(i, 2, ty)?,
                    c,
                }
            }
            "slct" => {
                self.arity(i, 4)?;
                let ftz = m.flag("ftz");
                let t = m.types();
                let [ty, cty] = t.as_slice() else {
                    return unsupported(line, format!("`{}` needs two types", i.mnemonic()));
                };
                if !matches!(cty, ScalarType::S32 | ScalarType::F32)
                    || (ftz && *cty != ScalarType::F32)
                {
                    return unsupported(line, format!("`{}`", i.mnemonic()));
                }
                Op::Slct {
                    ty: *ty,
                    cty: *cty,
                    ftz,
                    d: self.dst(i, 0)?,
                    a: self.src(i, 1, *ty)?,
                    b: self.src(i, 2, *ty)?,
                    c: self.src(i, 3, *cty)?,
                }
            }
            "cvt" => return self.cvt(i, m),
            "bra" => {
                self.arity(i, 1)?;
                let _ = m.flag("uni");
                match i.operands.first() {
                    Some(Operand::Symbol(s)) => match self.symbols.get(s) {
                        Some(Sym::Label(pc)) => Op::Bra { target: *pc },
                        _ => {
                            return Err(Error::Parse {
                                line,
                                col: i.col,
                                msg: format!("unknown label `{s}`"),
                            });
                        }
                    },
                    _ => return unsupported(line, "indirect branch".into()),
                }
            }
            "bar" | "barrier" => {
                if !m.flag("sync") {
                    return unsupported(line, format!("`{}` (only `bar.sync 0`)", i.mnemonic()));
                }
                let _ = m.flag("aligned");
                if i.operands.len() != 1 || i.operands[0] != Operand::Imm(Literal::Int(0)) {
                    return unsupported(line, "barrier other than `bar.sync 0`".into());
                }
                Op::Bar
            }
            "ret" | "exit" => {
                self.arity(i, 0)?;
                let _ = m.flag("uni");
                Op::Exit
            }
            _ => return self.int_op(i, m),
        })
    }

    fn int_op(&self, i: &Instruction, m: &mut Mods) -> Result<Op> {
        let line = i.line;
        let name = i.opcode.as_str();
        let bin = match name {
            "add" => Some(IBin::Add),
            "sub" => Some(IBin::Sub),
            "div" => Some(IBin::Div),
            "rem" => Some(IBin::Rem),
            "and" => Some(IBin::And),
            "or" => Some(IBin::Or),
            "xor" => Some(IBin::Xor),
            "shl" => Some(IBin::Shl),
            "shr" => Some(IBin::Shr),
            "min" => Some(IBin::Min),
            "max" => Some(IBin::Max),
            _ => None,
        };
        let check_int = |ty: ScalarType, allow_pred: bool| -> Result<()> {
            if (ty.is_int() && ty.bits() >= 16) || (allow_pred && ty == ScalarType::Pred) {
                Ok(())
            } else {
                unsupported(line, format!("`{}` on type {ty}", i.mnemonic()))
            }
        };
        if let Some(op) = bin {
            self.arity(i, 3)?;
            let sat = m.flag("sat");
            let ty = m.one_type()?;
            check_int(ty, matches!(op, IBin::And | IBin::Or | IBin::Xor))?;
            if sat && !(ty == ScalarType::S32 && matches!(op, IBin::Add | IBin::Sub)) {
                return unsupported(line, format!("`.sat` on `{}`", i.mnemonic()));
            }
            let bty = if matches!(op, IBin::Shl | IBin::Shr) {
                ScalarType::U32
            } else {
                ty
            };
            return Ok(Op::IntBin {
                op,
                ty,
                sat,
                d: self.dst(i, 0)?,
                a: self.src(i, 1, ty)?,
                b: self.src(i, 2, bty)?,
            });
        }
        Ok(match name {
            "mul" => {
                self.arity(i, 3)?;
                let mode = m.one_of(&["lo", "hi", "wide"]);
                let ty = m.one_type()?;
                check_int(ty, false)?;
                let (d, a, b) = (self.dst(i, 0)?, self.src(i, 1, ty)?, self.src(i, 2, ty)?);
                match mode {
                    Some("lo") => Op::IntBin {
                        op: IBin::MulLo,
                        ty,
                        sat: false,
                        d,
                        a,
                        b,
                    },
                    Some("hi") => Op::IntBin {
                        op: IBin::MulHi,
                        ty,
                        sat: false,
                        d,
                        a,
                        b,
                    },
                    Some(_) if ty.bits() <= 32 => Op::MulWide { ty, d, a, b },
                    _ => {
                        return unsupported(
                            line,
                            format!(
                                "`{}` (needs `.lo`, `.hi` or 16/32-bit `.wide`)",
                                i.mnemonic()
                            ),
                        );
                    }
                }
            }
            "mad" => {
                self.arity(i, 4)?;
                let mode = match m.one_of(&["lo", "hi", "wide"]) {
                    Some("lo") => MadMode::Lo,
                    Some("hi") => MadMode::Hi,
                    Some(_) => MadMode::Wide,
                    None => {
                        return unsupported(
                            line,
                            format!("`{}` needs `.lo`, `.hi` or `.wide`", i.mnemonic()),
                        );
                    }
                };
                let ty = m.one_type()?;
                check_int(ty, false)?;
                if mode == MadMode::Wide && ty.bits() > 32 {
                    return unsupported(line, format!("`{}`", i.mnemonic()));
                }
                let cty = if mode == MadMode::Wide { wide(ty) } else { ty };
                Op::Mad {
                    mode,
                    ty,
                    d: self.dst(i, 0)?,
                    a: self.src(i, 1, ty)?,
                    b: self.src(i, 2, ty)?,
                    c: self.src(i, 3, cty)?,
                }
            }
            "not" | "neg" | "abs" | "clz" | "popc" | "brev" | "bfind" => {
                self.arity(i, 2)?;
                let op = match name {
                    "not" => IUn::Not,
                    "neg" => IUn::Neg,
                    "abs" => IUn::Abs,
                    "clz" => IUn::Clz,
                    "popc" => IUn::Popc,
                    "brev" => IUn::Brev,
                    _ => IUn::Bfind {
                        shiftamt: m.flag("shiftamt"),
                    },
                };
                let ty = m.one_type()?;
                check_int(ty, op == IUn::Not)?;
                if matches!(op, IUn::Clz | IUn::Popc | IUn::Brev | IUn::Bfind { .. })
                    && ty.bits() < 32
                {
                    return unsupported(line, format!("`{}` on type {ty}", i.mnemonic()));
                }
                Op::IntUn {
                    op,
                    ty,
                    d: self.dst(i, 0)?,
                    a: self.src(i, 1, ty)?,
                }
            }
            _ => return unsupported(line, format!("instruction `{}`", i.mnemonic())),
        })
    }

    fn ld_st(&self, i: &Instruction, m: &mut Mods) -> Result<Op> {
        self.arity(i, 2)?;
        let is_ld = i.opcode == "ld";
        let space = match m.one_of(&["global", "shared", "param", "local", "const"]) {
            Some("global") => Space::Global,
            Some("shared") => Space::Shared,
            Some("param") if is_ld => Space::Param,
            Some(s) => {
                return unsupported(i.line, format!("`.{s}` state space in `{}`", i.mnemonic()));
            }
            None => {
                return unsupported(
                    i.line,
                    format!(
                        "generic addressing in `{}` (name a state space)",
                        i.mnemonic()
                    ),
                );
            }
        };
        if m.list.iter().any(|s| s.starts_with('v') && s.len() == 2) {
            return unsupported(i.line, format!("vector access `{}`", i.mnemonic()));
        }
        for ignorable in [
            "weak", "volatile", "ca", "cg", "cs", "lu", "cv", "wb", "wt", "nc",
        ] {
            let _ = m.flag(ignorable);
        }
        let ty = m.one_type()?;
        if ty == ScalarType::Pred || ty == ScalarType::F16 {
            return unsupported(i.line, format!("`{}` on type {ty}", i.mnemonic()));
        }
        if is_ld {
            Ok(Op::Ld {
                space,
                ty,
                d: self.dst(i, 0)?,
                addr: self.addr(i, 1, space)?,
            })
        } else {
            Ok(Op::St {
                space,
                ty,
                addr: self.addr(i, 0, space)?,
                a: self.src(i, 1, ty)?,
            })
        }
    }

    fn atom(&self, i: &Instruction, m: &mut Mods) -> Result<Op> {
        self.arity(i, 3)?;
        if !m.flag("global") {
            return unsupported(i.line, format!("`{}` (only `atom.global`)", i.mnemonic()));
        }
        for ignorable in ["relaxed", "gpu", "sys", "cta"] {
            let _ = m.flag(ignorable);
        }
        let op = match m.one_of(&["add", "or", "and", "xor", "exch", "min", "max"]) {
            Some("add") => AtomOp::Add,
            Some("or") => AtomOp::Or,
            Some("and") => AtomOp::And,
            Some("xor") => AtomOp::Xor,
            Some("exch") => AtomOp::Exch,
            Some("min") => AtomOp::Min,
            Some("max") => AtomOp::Max,
            _ => return unsupported(i.line, format!("`{}`", i.mnemonic())),
        };
        let ty = m.one_type()?;
        if !(ty.is_int() && ty.bits() >= 32) {
            return unsupported(i.line, format!("`{}` on type {ty}", i.mnemonic()));
        }
        Ok(Op::Atom {
            op,
            ty,
            d: self.dst(i, 0)?,
            addr: self.addr(i, 1, Space::Global)?,
            b: self.src(i, 2, ty)?,
        })
    }

    fn cvt(&self, i: &Instruction, m: &mut Mods) -> Result<Op> {
        self.arity(i, 2)?;
        let line = i.line;
        let rnd = if let Some(r) = m.one_of(&ROUND_F) {
            CvtRnd::Float(rnd_of(r))
        } else if let Some(r) = m.one_of(&ROUND_I) {
            CvtRnd::Int(rnd_of(r))
        } else {
            CvtRnd::None
        };
        let ftz = m.flag("ftz");
        let sat = m.flag("sat");
        let t = m.types();
        let [dty, aty] = t.as_slice() else {
            return unsupported(
                line,
                format!("`{}` needs a destination and a source type", i.mnemonic()),
            );
        };
        let (dty, aty) = (*dty, *aty);
        for t in [dty, aty] {
            if t == ScalarType::F16 || t == ScalarType::Pred {
                return unsupported(line, format!("`{}` on type {t}", i.mnemonic()));
            }
        }
        if ftz && dty != ScalarType::F32 && aty != ScalarType::F32 {
            return unsupported(line, format!("`.ftz` on `{}`", i.mnemonic()));
        }
        let bad = |why: &str| unsupported(line, format!("`{}`: {why}", i.mnemonic()));
        match (dty.is_float(), aty.is_float(), rnd) {
            (false, false, CvtRnd::None) => {}
            (false, false, _) => return bad("integer conversions take no rounding modifier"),
            (false, true, CvtRnd::Int(_)) => {}
            (false, true, _) => {
                return bad("float-to-integer conversions need `.rni/.rzi/.rmi/.rpi`");
            }
            (true, false, CvtRnd::Float(_)) => {}
            (true, false, _) => return bad("integer-to-float conversions need `.rn/.rz/.rm/.rp`"),
            (true, true, CvtRnd::Int(_)) if dty == aty => {}
            (true, true, CvtRnd::Float(_)) if dty == ScalarType::F32 && aty == ScalarType::F64 => {}
            (true, true, CvtRnd::None) if dty.bits() >= aty.bits() => {}
            (true, true, _) => return bad("rounding modifier does not fit the conversion"),
        }
        Ok(Op::Cvt {
            dty,
            aty,
            rnd,
            ftz,
            sat,
            d: self.dst(i, 0)?,
            a: self.src(i, 1, aty)?,
        })
    }
}

fn wide(ty: ScalarType) -> ScalarType {
    match ty {
        ScalarType::S16 => ScalarType::S32,
        ScalarType::U16 | ScalarType::B16 => ScalarType::U32,
        ScalarType::S32 => ScalarType::S64,
        _ => ScalarType::U64,
    }
}

fn cmp_of(c: &str) -> Cmp {
    match c {
        "eq" => Cmp::Eq,
        "ne" => Cmp::Ne,
        "lt" => Cmp::Lt,
        "le" => Cmp::Le,
        "gt" => Cmp::Gt,
        "ge" => Cmp::Ge,
        "lo" => Cmp::Lo,
        "ls" => Cmp::Ls,
        "hi" => Cmp::Hi,
        "hs" => Cmp::Hs,
        "equ" => Cmp::Equ,
        "neu" => Cmp::Neu,
        "ltu" => Cmp::Ltu,
        "leu" => Cmp::Leu,
        "gtu" => Cmp::Gtu,
        "geu" => Cmp::Geu,
        "num" => Cmp::Num,
        _ => Cmp::Nan,
    }
}

/// The wide type of a `mul.wide`/`mad.wide` source type.
pub fn wide_of(ty: ScalarType) -> ScalarType {
    wide(ty)
}
