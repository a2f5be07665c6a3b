//! The KernelIR text form: what golden tests diff and what error messages quote.
//!
//! It reads like Wasm text with structured statements, for example
//! `f32.store [p2 + 4*c0], f32.add(f32.load [p0 + 4*c0], f32.load [p1 + 4*c0])`.
//! There is no parser; the form must never be used as an interchange format (serde is).

use std::fmt::{self, Display, Formatter};

use super::{
    Addr, Affine, AffineVar, Const, Expr, Ext, ForLoop, Kernel, LocalId, LoopId, ParamId,
    ParamKind, Start, Stmt, ValType,
};

impl Display for ValType {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
        })
    }
}

impl Display for ParamId {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl Display for LoopId {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

impl Display for LocalId {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "l{}", self.0)
    }
}

impl Display for ParamKind {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ParamKind::Ptr => f.write_str("ptr"),
            ParamKind::Scalar(t) => t.fmt(f),
        }
    }
}

impl Display for Const {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Const::I32(v) => write!(f, "i32.const {v}"),
            Const::I64(v) => write!(f, "i64.const {v}"),
            Const::F32(b) => write!(f, "f32.const {:?} (0x{b:08x})", f32::from_bits(*b)),
            Const::F64(b) => write!(f, "f64.const {:?} (0x{b:016x})", f64::from_bits(*b)),
        }
    }
}

fn ext_name(e: Ext) -> &'static str {
    match e {
        Ext::Signed => "sx",
        Ext::Unsigned => "zx",
    }
}

impl Display for Affine {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for t in &self.terms {
            if !first {
                f.write_str(" + ")?;
            }
            first = false;
            let var = match t.var {
                AffineVar::Counter(c) => c.to_string(),
                AffineVar::Param(p) => p.to_string(),
                AffineVar::Local(l) => l.to_string(),
            };
            write!(f, "{}*{}({var})", t.coef, ext_name(t.ext))?;
            if let Some((p, e)) = t.stride {
                write!(f, "*{}({p})", ext_name(e))?;
            }
        }
        if first || self.constant != 0 {
            if !first {
                f.write_str(" + ")?;
            }
            write!(f, "{}", self.constant)?;
        }
        Ok(())
    }
}

impl Display for Addr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if !self.aligned {
            f.write_str("unaligned ")?;
        }
        write!(f, "[{} + {}]", self.base, self.offset)
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Const(c) => c.fmt(f),
            Expr::Param(p) => p.fmt(f),
            Expr::Counter(c) => c.fmt(f),
            Expr::Local(l) => l.fmt(f),
            Expr::Unary(op, a) => write!(f, "{}({a})", op.name()),
            Expr::Binary(op, a, b) => write!(f, "{}({a}, {b})", op.name()),
            Expr::Select { cond, then, els } => write!(f, "select({cond}, {then}, {els})"),
            Expr::Load(op, addr) => write!(f, "{} {addr}", op.name()),
        }
    }
}

fn indent(f: &mut Formatter<'_>, depth: usize) -> fmt::Result {
    for _ in 0..depth {
        f.write_str("  ")?;
    }
    Ok(())
}

fn stmts(f: &mut Formatter<'_>, ss: &[Stmt], depth: usize) -> fmt::Result {
    for s in ss {
        stmt(f, s, depth)?;
    }
    Ok(())
}

fn stmt(f: &mut Formatter<'_>, s: &Stmt, depth: usize) -> fmt::Result {
    indent(f, depth)?;
    match s {
        Stmt::Set(l, e) => writeln!(f, "{l} = {e}"),
        Stmt::Store(op, addr, e) => writeln!(f, "{} {addr}, {e}", op.name()),
        Stmt::If { cond, then, els } => {
            writeln!(f, "if {cond} {{")?;
            stmts(f, then, depth + 1)?;
            if !els.is_empty() {
                indent(f, depth)?;
                writeln!(f, "}} else {{")?;
                stmts(f, els, depth + 1)?;
            }
            indent(f, depth)?;
            writeln!(f, "}}")
        }
        Stmt::For(l) => for_loop(f, l, depth),
    }
}

fn for_loop(f: &mut Formatter<'_>, l: &ForLoop, depth: usize) -> fmt::Result {
    let cmp = match (l.step > 0, l.signed) {
        (true, true) => "<s",
        (true, false) => "<u",
        (false, true) => ">s",
        (false, false) => ">u",
    };
    writeln!(
        f,
        "for {c}: {t} = {s}; {c} {cmp} {b}; {c} += {st} {{",
        c = l.counter,
        t = l.ty,
        s = l.start,
        b = l.bound,
        st = l.step
    )?;
    stmts(f, &l.body, depth + 1)?;
    indent(f, depth)?;
    writeln!(f, "}}")
}

impl Display for Stmt {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        stmt(f, self, 0)
    }
}

impl Display for Kernel {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "kernel {}(", self.name)?;
        for (i, p) in self.params.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "p{i}: {} {:?}", p.kind, p.name)?;
        }
        f.write_str(")")?;
        if let Some(t) = self.trap_flag {
            write!(f, " trap {t}")?;
        }
        writeln!(f, " {{")?;
        for (g, axis) in self.grid.iter().zip(["x", "y", "z"]) {
            let start = match g.start {
                Start::Const(c) => c.to_string(),
                Start::Param(p) => p.to_string(),
            };
            writeln!(
                f,
                "  grid.{axis} {}: {} = {start} + tid.{axis} * {}, trip {}",
                g.counter, g.ty, g.step, g.trip
            )?;
        }
        for (i, t) in self.locals.iter().enumerate() {
            writeln!(f, "  local l{i}: {t}")?;
        }
        stmts(f, &self.body, 1)?;
        writeln!(f, "}}")
    }
}
