//! The text form of BlockIR, used by golden tests and (later) `tensorwasm inspect --ir`.
//!
//! ```text
//! function 0 (params 2, results 0)
//!   locals: i32 i32 i32
//!   loop0: header block3, depth 1, parent -, offset 0x2e
//! block0:
//!   v0 = local.get 1
//!   br_if v0, block1, block2
//! block3:  ; loop0 header
//!   v4 = f32.load offset=4 align=2 v3
//!   ; counts: int 2, load 1, control 1
//!   jump block3
//! ```
//!
//! Printing is total: it must never fail or panic, whatever the IR holds.

use crate::ir::{
    BlockCall, BlockData, FeatureCounts, FunctionIr, Imm, Inst, ModuleIr, Terminator, Value,
};
use std::fmt::{self, Write};

fn values(vals: &[Value]) -> String {
    vals.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn call(c: &BlockCall) -> String {
    if c.args.is_empty() {
        c.block.to_string()
    } else {
        format!("{}({})", c.block, values(&c.args))
    }
}

fn mem(m: &crate::ir::MemArg) -> String {
    let mut s = String::new();
    if m.memory != 0 {
        let _ = write!(s, " mem={}", m.memory);
    }
    if m.offset != 0 {
        let _ = write!(s, " offset={}", m.offset);
    }
    let _ = write!(s, " align={}", 1u64 << m.align.min(63));
    s
}

impl fmt::Display for Inst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.results.is_empty() {
            write!(f, "{} = ", values(&self.results))?;
        }
        write!(f, "{}", self.op)?;
        match &self.imm {
            Imm::None => {}
            Imm::Int(v) => write!(f, " {v}")?,
            Imm::FloatBits(b) => write!(f, " {b:#x}")?,
            Imm::Local(i) | Imm::Global(i) | Imm::Func(i) => write!(f, " {i}")?,
            Imm::Mem(m) => f.write_str(&mem(m))?,
            Imm::MemLane(m, lane) => write!(f, "{} lane={lane}", mem(m))?,
            Imm::Indirect { type_index, table } => write!(f, " type={type_index} table={table}")?,
            Imm::Other(s) => write!(f, " {s}")?,
        }
        if !self.args.is_empty() {
            write!(f, " {}", values(&self.args))?;
        }
        Ok(())
    }
}

impl fmt::Display for Terminator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Terminator::Jump(c) => write!(f, "jump {}", call(c)),
            Terminator::BrIf {
                cond,
                then,
                otherwise,
            } => write!(f, "br_if {cond}, {}, {}", call(then), call(otherwise)),
            Terminator::BrTable {
                index,
                targets,
                default,
            } => {
                let t: Vec<String> = targets.iter().map(call).collect();
                write!(f, "br_table {index}, [{}], {}", t.join(", "), call(default))
            }
            Terminator::Return(vals) if vals.is_empty() => f.write_str("return"),
            Terminator::Return(vals) => write!(f, "return {}", values(vals)),
            Terminator::Unreachable => f.write_str("unreachable"),
        }
    }
}

impl fmt::Display for FeatureCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = [
            ("int", self.int_arith),
            ("float", self.float_arith),
            ("conv", self.conversion),
            ("cmp", self.compare),
            ("const", self.constant),
            ("var", self.variable),
            ("load", self.load),
            ("store", self.store),
            ("control", self.control),
            ("call", self.call),
            ("v128", self.v128),
            ("other", self.other),
        ];
        let parts: Vec<String> = fields
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

fn write_block(
    f: &mut fmt::Formatter<'_>,
    func: &FunctionIr,
    i: usize,
    b: &BlockData,
) -> fmt::Result {
    write!(f, "block{i}")?;
    if !b.params.is_empty() {
        write!(f, "({})", values(&b.params))?;
    }
    f.write_str(":")?;
    let header_of = func.loops.iter().position(|l| l.header.index() == i);
    match (header_of, b.innermost_loop) {
        (Some(l), _) => write!(f, "  ; loop{l} header")?,
        (None, Some(l)) => write!(f, "  ; in {l}")?,
        (None, None) => {}
    }
    writeln!(f)?;
    for inst in &b.insts {
        writeln!(f, "  {inst}")?;
    }
    if b.counts.total() > 0 {
        writeln!(f, "  ; counts: {}", b.counts)?;
    }
    writeln!(f, "  {}", b.term)
}

impl fmt::Display for FunctionIr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "function {} (params {}, results {})",
            self.index, self.num_params, self.num_results
        )?;
        let locals: Vec<String> = self.locals.iter().map(ToString::to_string).collect();
        writeln!(f, "  locals: {}", locals.join(" "))?;
        for (i, l) in self.loops.iter().enumerate() {
            let parent = l.parent.map_or("-".to_string(), |p| p.to_string());
            writeln!(
                f,
                "  loop{i}: header {}, depth {}, parent {parent}, offset {:#x}, {} blocks",
                l.header,
                l.depth,
                l.offset,
                l.blocks.len()
            )?;
        }
        for u in &self.unsupported {
            writeln!(
                f,
                "  unsupported {} (at offset {:#x}) in {}",
                u.op, u.offset, u.block
            )?;
        }
        for (i, b) in self.blocks.iter().enumerate() {
            write_block(f, self, i, b)?;
        }
        Ok(())
    }
}

impl fmt::Display for ModuleIr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, func) in self.functions.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{func}")?;
        }
        Ok(())
    }
}
