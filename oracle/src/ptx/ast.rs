//! The syntax tree of a PTX module, as written: directives, declarations and instructions with
//! their opcode, modifiers and operands kept as text-level items.
//!
//! The tree records what the text says and where (line, column); it gives no meaning to opcodes.
//! It must never drop an instruction or modifier silently: whatever the interpreter does not
//! understand it must be able to see here and report.

use std::fmt;

/// A PTX fundamental type (and `.pred`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum ScalarType {
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
    F16,
    F32,
    F64,
    Pred,
}

impl ScalarType {
    /// Parses a type modifier without its dot (`"u32"`).
    pub fn from_name(s: &str) -> Option<ScalarType> {
        use ScalarType::*;
        Some(match s {
            "b8" => B8,
            "b16" => B16,
            "b32" => B32,
            "b64" => B64,
            "u8" => U8,
            "u16" => U16,
            "u32" => U32,
            "u64" => U64,
            "s8" => S8,
            "s16" => S16,
            "s32" => S32,
            "s64" => S64,
            "f16" => F16,
            "f32" => F32,
            "f64" => F64,
            "pred" => Pred,
            _ => return None,
        })
    }

    /// Width in bits (`.pred` counts as 1).
    pub fn bits(self) -> u32 {
        use ScalarType::*;
        match self {
            Pred => 1,
            B8 | U8 | S8 => 8,
            B16 | U16 | S16 | F16 => 16,
            B32 | U32 | S32 | F32 => 32,
            B64 | U64 | S64 | F64 => 64,
        }
    }

    /// Width in bytes of a memory access of this type.
    pub fn bytes(self) -> u32 {
        self.bits().div_ceil(8)
    }

    /// `.sN` types.
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            ScalarType::S8 | ScalarType::S16 | ScalarType::S32 | ScalarType::S64
        )
    }

    /// `.f16`, `.f32`, `.f64`.
    pub fn is_float(self) -> bool {
        matches!(self, ScalarType::F16 | ScalarType::F32 | ScalarType::F64)
    }

    /// Integer and bit-size types.
    pub fn is_int(self) -> bool {
        !self.is_float() && self != ScalarType::Pred
    }

    /// The PTX spelling without the dot.
    pub fn name(self) -> &'static str {
        use ScalarType::*;
        match self {
            B8 => "b8",
            B16 => "b16",
            B32 => "b32",
            B64 => "b64",
            U8 => "u8",
            U16 => "u16",
            U32 => "u32",
            U64 => "u64",
            S8 => "s8",
            S16 => "s16",
            S32 => "s32",
            S64 => "s64",
            F16 => "f16",
            F32 => "f32",
            F64 => "f64",
            Pred => "pred",
        }
    }
}

impl fmt::Display for ScalarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ".{}", self.name())
    }
}

/// A parsed module.
#[derive(Debug, Clone, PartialEq)]
pub struct PtxModule {
    /// `.version` as written (`"8.0"`).
    pub version: Option<String>,
    /// `.target` items (`["sm_80"]`).
    pub target: Vec<String>,
    /// `.address_size`.
    pub address_size: Option<u32>,
    /// Kernel entries in source order.
    pub entries: Vec<Entry>,
}

impl PtxModule {
    /// The entry called `name`.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// One `.entry`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Kernel name.
    pub name: String,
    /// Whether declared `.visible`.
    pub visible: bool,
    /// Parameters in order.
    pub params: Vec<Param>,
    /// `.reg` declarations.
    pub regs: Vec<RegDecl>,
    /// `.shared` declarations.
    pub shared: Vec<SharedDecl>,
    /// Labels and instructions in order.
    pub body: Vec<Statement>,
    /// The block shape `.reqntid` demands (missing dimensions are 1), if declared.
    pub reqntid: Option<[u32; 3]>,
    /// Line of the `.entry` keyword.
    pub line: u32,
}

/// One kernel parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: ScalarType,
    /// Explicit `.align`, if any.
    pub align: Option<u32>,
    /// Source line.
    pub line: u32,
}

/// `.reg .TYPE name;` or `.reg .TYPE name<N>;` (which declares `name0`..`name{N-1}`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegDecl {
    /// Type.
    pub ty: ScalarType,
    /// Name, or prefix when `count` is set.
    pub name: String,
    /// `<N>` count.
    pub count: Option<u32>,
    /// Source line.
    pub line: u32,
}

/// `.shared .align A .TYPE name[N];`
#[derive(Debug, Clone, PartialEq)]
pub struct SharedDecl {
    /// Name.
    pub name: String,
    /// Element type.
    pub ty: ScalarType,
    /// Alignment in bytes (the element size when not given).
    pub align: u32,
    /// Number of elements (1 for a scalar).
    pub len: u64,
    /// Source line.
    pub line: u32,
}

/// A label or an instruction.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `name:`
    Label {
        /// Label name.
        name: String,
        /// Source line.
        line: u32,
    },
    /// An instruction.
    Instr(Instruction),
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// Source line.
    pub line: u32,
    /// Source column of the opcode.
    pub col: u32,
    /// `@%p` / `@!%p` guard.
    pub guard: Option<Guard>,
    /// Opcode without modifiers (`"ld"`).
    pub opcode: String,
    /// Modifiers without dots, in order (`["global", "f32"]`).
    pub modifiers: Vec<String>,
    /// Operands in order.
    pub operands: Vec<Operand>,
}

impl Instruction {
    /// `opcode.mod1.mod2`, for messages.
    pub fn mnemonic(&self) -> String {
        let mut s = self.opcode.clone();
        for m in &self.modifiers {
            s.push('.');
            s.push_str(m);
        }
        s
    }
}

/// A guard predicate.
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    /// `@!%p`.
    pub negated: bool,
    /// Predicate register name.
    pub reg: String,
}

/// An operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A register (`%r1`) or special register (`%tid.x`).
    Reg(String),
    /// A literal.
    Imm(Literal),
    /// A name: label, parameter or variable.
    Symbol(String),
    /// `[base]`, `[base+imm]`, `[imm]`.
    Addr {
        /// Register or symbol; `None` for an absolute address.
        base: Option<AddrBase>,
        /// Byte offset.
        offset: i64,
    },
    /// A negated predicate operand `!%p` (as in `setp ... , !%p`).
    NotReg(String),
}

/// The base of an address operand.
#[derive(Debug, Clone, PartialEq)]
pub enum AddrBase {
    /// `[%rd1]`
    Reg(String),
    /// `[name]`
    Symbol(String),
}

/// A literal operand.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Literal {
    /// Integer literal, with its two's-complement bits.
    Int(i128),
    /// `0fXXXXXXXX`: the bits of an f32.
    F32Bits(u32),
    /// `0dXXXXXXXXXXXXXXXX`: the bits of an f64.
    F64Bits(u64),
    /// A decimal floating-point literal (double precision).
    Float(f64),
}
