//! BlockIR: the data structures the front end produces and every analysis reads.
//!
//! **Form.** Each function is a control-flow graph of basic blocks ([`Block`]) with Cranelift-style
//! block parameters. The Wasm operand stack is resolved at translation time into SSA values
//! ([`Value`]): every value is defined exactly once, by an instruction result or a block
//! parameter, and instructions name their operands. Wasm *locals* are deliberately **not**
//! promoted to SSA: `local.get`/`local.set`/`local.tee` stay instructions. That keeps the IR one
//! to one with the Wasm (every instruction keeps its byte offset, so a diagnostic can point at the
//! binary) and it is where clang keeps loop-carried state anyway (the LLVM Wasm backend lowers
//! phis to locals), so induction-variable analysis works on locals directly. Values only cross
//! block boundaries along the structured nesting (a value pushed before a `block` and consumed
//! after its `end`), or as block parameters at merge points (the continuation of a `block`/`if`
//! gets the results; a `loop` header gets the loop's parameters).
//!
//! **Loops.** Wasm loops are structured, so the loop forest is recorded during translation: a
//! [`LoopData`] per reachable `loop` opcode with its header, all its blocks (nested loops
//! included), its parent and its nesting depth.
//!
//! This module only holds data; it must never parse, analyze or fail.

use serde::Serialize;
use std::fmt;

pub use crate::opcode::{OpClass, Opcode};

macro_rules! entity {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        pub struct $name(pub u32);

        impl $name {
            /// The index of this entity in its owning vector.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

entity!(
    /// A basic block of one function; prints as `block3`.
    Block,
    "block"
);
entity!(
    /// An SSA value of one function; prints as `v7`.
    Value,
    "v"
);
entity!(
    /// A loop of one function, numbered in the order of the `loop` opcodes; prints as `loop2`.
    Loop,
    "loop"
);

/// A Wasm value type, reduced to what the analyses need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ValType {
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `v128`
    V128,
    /// Any reference type.
    Ref,
}

impl ValType {
    /// Whether this is `f32` or `f64`.
    pub fn is_float(self) -> bool {
        matches!(self, ValType::F32 | ValType::F64)
    }
}

impl From<wasmparser::ValType> for ValType {
    fn from(t: wasmparser::ValType) -> Self {
        match t {
            wasmparser::ValType::I32 => ValType::I32,
            wasmparser::ValType::I64 => ValType::I64,
            wasmparser::ValType::F32 => ValType::F32,
            wasmparser::ValType::F64 => ValType::F64,
            wasmparser::ValType::V128 => ValType::V128,
            wasmparser::ValType::Ref(_) => ValType::Ref,
        }
    }
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::V128 => "v128",
            ValType::Ref => "ref",
        })
    }
}

/// A memory immediate: `offset=` and `align=` (log2) of one memory, as in the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MemArg {
    /// Static offset added to the dynamic address.
    pub offset: u64,
    /// Alignment hint, log2 of bytes.
    pub align: u8,
    /// Memory index.
    pub memory: u32,
}

/// The immediate of an instruction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Imm {
    /// No immediate.
    None,
    /// An integer constant (`i32.const`, `i64.const`); i32 constants are sign-extended.
    Int(i64),
    /// A float constant by bit pattern (`f32.const`, `f64.const`).
    FloatBits(u64),
    /// A local index.
    Local(u32),
    /// A global index.
    Global(u32),
    /// A memory access.
    Mem(MemArg),
    /// A memory access with a lane index (`v128.load8_lane`, ...).
    MemLane(MemArg, u8),
    /// A direct call's callee (function index space, imports first).
    Func(u32),
    /// An indirect call's type and table.
    Indirect {
        /// Type index of the callee signature.
        type_index: u32,
        /// Table index.
        table: u32,
    },
    /// Any other immediate, in wasmparser's debug form (lanes, table indices, ...).
    Other(String),
}

/// One instruction: an operator with its operands, results and immediate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Inst {
    /// The operator.
    pub op: Opcode,
    /// Immediate operands.
    pub imm: Imm,
    /// Value operands, in Wasm stack order (first pushed first).
    pub args: Vec<Value>,
    /// Results, in Wasm stack order.
    pub results: Vec<Value>,
    /// Byte offset of the operator in the module binary.
    pub offset: u32,
}

/// A branch target with the values passed to its block parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockCall {
    /// The target block.
    pub block: Block,
    /// One value per parameter of `block`.
    pub args: Vec<Value>,
}

/// How a basic block ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Terminator {
    /// Unconditional jump (fallthrough into a merge point, `br`).
    Jump(BlockCall),
    /// `br_if` or `if`: to `then` when `cond != 0`, else to `otherwise`.
    BrIf {
        /// The `i32` condition.
        cond: Value,
        /// Target when the condition is non-zero.
        then: BlockCall,
        /// Target when the condition is zero.
        otherwise: BlockCall,
    },
    /// `br_table`.
    BrTable {
        /// The `i32` index.
        index: Value,
        /// Targets for index `0..targets.len()`.
        targets: Vec<BlockCall>,
        /// Target for any other index.
        default: BlockCall,
    },
    /// `return`, a branch to the function's label, or the function's final `end`.
    Return(Vec<Value>),
    /// `unreachable`, or a block no control reaches (offset of the trap when known).
    Unreachable,
}

/// The successor edges of a [`Terminator`], in order.
pub type Successors<'a> = std::iter::Chain<
    std::iter::Chain<std::option::IntoIter<&'a BlockCall>, std::slice::Iter<'a, BlockCall>>,
    std::option::IntoIter<&'a BlockCall>,
>;

impl Terminator {
    /// Every successor edge of the terminator, in order (a block may appear twice). Allocates
    /// nothing: the analyses walk the edges of every block many times.
    pub fn successors(&self) -> Successors<'_> {
        let (first, middle, last): (Option<&BlockCall>, &[BlockCall], Option<&BlockCall>) =
            match self {
                Terminator::Jump(c) => (Some(c), &[], None),
                Terminator::BrIf {
                    then, otherwise, ..
                } => (Some(then), &[], Some(otherwise)),
                Terminator::BrTable {
                    targets, default, ..
                } => (None, targets, Some(default)),
                Terminator::Return(_) | Terminator::Unreachable => (None, &[], None),
            };
        first.into_iter().chain(middle).chain(last)
    }

    /// The values the terminator reads (conditions, indices, branch arguments, return values).
    pub fn uses(&self) -> Vec<Value> {
        let mut out = Vec::new();
        match self {
            Terminator::BrIf { cond, .. } => out.push(*cond),
            Terminator::BrTable { index, .. } => out.push(*index),
            Terminator::Return(vals) => out.extend(vals),
            Terminator::Jump(_) | Terminator::Unreachable => {}
        }
        for s in self.successors() {
            out.extend(&s.args);
        }
        out
    }
}

/// Operator counts of one block, by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FeatureCounts {
    /// Integer arithmetic and bit operations.
    pub int_arith: u32,
    /// Float arithmetic (including `abs`, `ceil`, `sqrt`, `min`, ...).
    pub float_arith: u32,
    /// Conversions between value types (`wrap`, `extend`, `convert`, `trunc_f*`, ...).
    pub conversion: u32,
    /// Comparisons and `eqz`.
    pub compare: u32,
    /// Constants.
    pub constant: u32,
    /// Local and global reads and writes.
    pub variable: u32,
    /// Memory loads (scalar and v128).
    pub load: u32,
    /// Memory stores (scalar and v128).
    pub store: u32,
    /// Structured control and branches (`block`, `loop`, `if`, `br*`, `return`, `end`, ...).
    pub control: u32,
    /// Direct and indirect calls.
    pub call: u32,
    /// Non-memory `v128` operators.
    pub v128: u32,
    /// Everything else (`memory.grow`, table ops, `select`, `drop`, atomics, ...).
    pub other: u32,
}

impl FeatureCounts {
    /// Adds one operator of `class`.
    pub fn add(&mut self, class: OpClass) {
        let slot = match class {
            OpClass::IntArith => &mut self.int_arith,
            OpClass::FloatArith => &mut self.float_arith,
            OpClass::Conversion => &mut self.conversion,
            OpClass::Compare => &mut self.compare,
            OpClass::Const => &mut self.constant,
            OpClass::Variable => &mut self.variable,
            OpClass::Load => &mut self.load,
            OpClass::Store => &mut self.store,
            OpClass::Control => &mut self.control,
            OpClass::Call => &mut self.call,
            OpClass::V128 => &mut self.v128,
            OpClass::Other => &mut self.other,
        };
        *slot = slot.saturating_add(1);
    }

    /// Total number of operators counted.
    pub fn total(&self) -> u32 {
        [
            self.int_arith,
            self.float_arith,
            self.conversion,
            self.compare,
            self.constant,
            self.variable,
            self.load,
            self.store,
            self.control,
            self.call,
            self.v128,
            self.other,
        ]
        .iter()
        .fold(0u32, |a, b| a.saturating_add(*b))
    }
}

/// One basic block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockData {
    /// Block parameters (merge-point values).
    pub params: Vec<Value>,
    /// Instructions in order.
    pub insts: Vec<Inst>,
    /// How the block ends.
    pub term: Terminator,
    /// The innermost loop containing the block, if any.
    pub innermost_loop: Option<Loop>,
    /// Operator counts, control operators included.
    pub counts: FeatureCounts,
}

/// One `loop` construct that control can reach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoopData {
    /// The block that starts at the `loop` opcode; branches to the loop's label go here.
    pub header: Block,
    /// Every block created between `loop` and its `end`, header and nested loops included,
    /// in creation order, which is increasing block order ([`crate::verify`] checks it; lookups
    /// such as `FuncInfo::in_loop` binary-search it).
    pub blocks: Vec<Block>,
    /// The enclosing loop.
    pub parent: Option<Loop>,
    /// 1 for an outermost loop.
    pub depth: u32,
    /// Byte offset of the `loop` opcode in the module binary.
    pub offset: u32,
}

/// An operator the front end does not model (its stack effect is not known to the translator);
/// the code after it in the same construct is treated as unreachable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unsupported {
    /// The operator.
    pub op: Opcode,
    /// Byte offset in the module binary.
    pub offset: u32,
    /// The block it appears in.
    pub block: Block,
}

/// The BlockIR of one defined function.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunctionIr {
    /// Index in the function index space (imported functions first).
    pub index: u32,
    /// Number of parameters (the first locals).
    pub num_params: u32,
    /// Number of results.
    pub num_results: u32,
    /// Types of all locals, parameters first.
    pub locals: Vec<ValType>,
    /// Basic blocks; `block0` is the entry.
    pub blocks: Vec<BlockData>,
    /// Loops in the order of their `loop` opcodes (a parent comes before its children).
    pub loops: Vec<LoopData>,
    /// Number of values defined.
    pub num_values: u32,
    /// Operators the front end did not model.
    pub unsupported: Vec<Unsupported>,
    /// Byte offset of the function body in the module binary.
    pub offset: u32,
}

impl FunctionIr {
    /// The data of `block`.
    pub fn block(&self, block: Block) -> Option<&BlockData> {
        self.blocks.get(block.index())
    }

    /// The data of `lp`.
    pub fn loop_data(&self, lp: Loop) -> Option<&LoopData> {
        self.loops.get(lp.index())
    }

    /// The type of local `index`.
    pub fn local_type(&self, index: u32) -> Option<ValType> {
        self.locals.get(index as usize).copied()
    }
}

/// The BlockIR of a module.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModuleIr {
    /// Number of imported functions (defined functions are numbered after them).
    pub num_imported_functions: u32,
    /// One entry per defined function, in order.
    pub functions: Vec<FunctionIr>,
    /// Function names from the `name` section (function index space), where present.
    pub function_names: std::collections::BTreeMap<u32, String>,
}

impl ModuleIr {
    /// The defined function with index `index` (function index space).
    pub fn function(&self, index: u32) -> Option<&FunctionIr> {
        let i = index.checked_sub(self.num_imported_functions)?;
        self.functions.get(i as usize)
    }

    /// The defined function named `name` in the `name` section.
    pub fn function_named(&self, name: &str) -> Option<&FunctionIr> {
        let (&index, _) = self.function_names.iter().find(|(_, n)| *n == name)?;
        self.function(index)
    }
}
