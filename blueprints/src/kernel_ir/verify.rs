//! The KernelIR verifier. It checks exactly these invariants, and nothing else:
//!
//! - **name**: the kernel name is a PTX identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 200 bytes).
//! - **params**: at most [`MAX_PARAMS`] params.
//! - **trap flag**: `trap_flag`, when set, names a pointer param; it is set whenever any operator
//!   in the body can trap (`div`/`rem`, trapping `trunc`).
//! - **grid**: 1 to 3 dimensions; each has an integer type, a non-zero step that fits the type,
//!   a trip count that is an integer scalar param, and a start that is a constant fitting the
//!   type or a scalar param of the counter's type.
//! - **counters**: every [`LoopId`] is bound once (by a grid dimension or one `for`); a counter is
//!   read only inside the loop that binds it (grid counters everywhere).
//! - **defined before use**: every param read is a scalar param that exists; every local read is
//!   declared and definitely assigned on every path that reaches it (a `for` body may run zero
//!   times, so what it assigns is not assigned after it; an `if` assigns what both arms assign).
//! - **types**: operands match each operator's signature; `select` arms have one type and an
//!   `i32` condition; `if` conditions are `i32`; a `for` has an integer type, a non-zero step
//!   fitting it, and start/bound of its type; `Set` and `Store` values have the local's / the
//!   store's type.
//! - **memory**: loads and stores go only through pointer params that are not the trap flag; each
//!   affine variable is a counter in scope, an integer scalar param or a definitely-assigned
//!   integer local, and each stride an integer scalar param.
//! - **depth**: statement and expression nesting stays within [`MAX_DEPTH`] (so every recursive
//!   walk in this crate is bounded).
//!
//! A failure is the caller's fault (a front-end bug) and comes back as `Error::Verify` with a
//! path to the offending node. The verifier must never panic, whatever the input.

use super::{
    Addr, AffineVar, Expr, ForLoop, Kernel, LocalId, LoopId, ParamId, ParamKind, Start, Stmt,
    ValType,
};
use crate::error::{Error, Result};

/// Maximum nesting of statements plus expressions.
pub const MAX_DEPTH: usize = 200;
/// Maximum number of kernel parameters.
pub const MAX_PARAMS: usize = 256;

/// Checks every invariant listed in this module's documentation.
pub fn verify(kernel: &Kernel) -> Result<()> {
    Verifier {
        k: kernel,
        bound: Vec::new(),
        in_scope: Vec::new(),
        path: Vec::new(),
    }
    .run()
}

struct Verifier<'a> {
    k: &'a Kernel,
    /// Every counter bound so far (to reject double binding).
    bound: Vec<LoopId>,
    /// Counters readable here, with their types.
    in_scope: Vec<(LoopId, ValType)>,
    /// Where we are, for messages.
    path: Vec<String>,
}

fn fits(v: i64, ty: ValType) -> bool {
    match ty {
        ValType::I32 => i32::try_from(v).is_ok(),
        _ => true,
    }
}

impl Verifier<'_> {
    fn fail<T>(&self, msg: impl Into<String>) -> Result<T> {
        let at = if self.path.is_empty() {
            String::new()
        } else {
            format!("at {}: ", self.path.join("."))
        };
        Err(Error::Verify {
            kernel: self.k.name.clone(),
            message: format!("{at}{}", msg.into()),
        })
    }

    fn run(mut self) -> Result<()> {
        let k = self.k;
        let name_ok = !k.name.is_empty()
            && k.name.len() <= 200
            && k.name
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
        if !name_ok {
            return self.fail(format!("name {:?} is not a PTX identifier", k.name));
        }
        if k.params.len() > MAX_PARAMS {
            return self.fail(format!("{} params, at most {MAX_PARAMS}", k.params.len()));
        }
        if let Some(t) = k.trap_flag
            && self.param_kind(t) != Some(ParamKind::Ptr)
        {
            return self.fail(format!("trap flag {t} is not a pointer param"));
        }
        if k.grid.is_empty() || k.grid.len() > 3 {
            return self.fail(format!("{} grid dimensions, need 1 to 3", k.grid.len()));
        }
        for (i, g) in k.grid.iter().enumerate() {
            self.path.push(format!("grid[{i}]"));
            if !g.ty.is_int() {
                return self.fail("counter type is not an integer");
            }
            if g.step == 0 || !fits(g.step, g.ty) {
                return self.fail(format!("step {} is zero or does not fit", g.step));
            }
            if !matches!(self.param_kind(g.trip), Some(ParamKind::Scalar(t)) if t.is_int()) {
                return self.fail(format!(
                    "trip count {} is not an integer scalar param",
                    g.trip
                ));
            }
            match g.start {
                Start::Const(c) if !fits(c, g.ty) => {
                    return self.fail(format!("start {c} does not fit"));
                }
                Start::Param(p) if self.param_kind(p) != Some(ParamKind::Scalar(g.ty)) => {
                    return self.fail(format!("start {p} is not a scalar of the counter type"));
                }
                _ => {}
            }
            self.bind(g.counter, g.ty)?;
            self.path.pop();
        }
        let mut assigned = vec![false; k.locals.len()];
        self.stmts(&k.body, &mut assigned, 0, "body")?;
        // Only now is the body known to be shallow enough for a recursive walk.
        if k.can_trap() && k.trap_flag.is_none() {
            return self.fail("the body can trap but the kernel has no trap flag");
        }
        Ok(())
    }

    fn param_kind(&self, p: ParamId) -> Option<ParamKind> {
        self.k.params.get(p.0 as usize).map(|p| p.kind)
    }

    fn bind(&mut self, c: LoopId, ty: ValType) -> Result<()> {
        if self.bound.contains(&c) {
            return self.fail(format!("counter {c} is bound twice"));
        }
        self.bound.push(c);
        self.in_scope.push((c, ty));
        Ok(())
    }

    fn scope_type(&self, c: LoopId) -> Option<ValType> {
        self.in_scope
            .iter()
            .find(|(id, _)| *id == c)
            .map(|(_, t)| *t)
    }

    fn depth(&self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::ImplLimit(format!(
                "kernel `{}` nests deeper than {MAX_DEPTH}",
                self.k.name
            )));
        }
        Ok(())
    }

    fn stmts(&mut self, ss: &[Stmt], asg: &mut [bool], depth: usize, what: &str) -> Result<()> {
        self.depth(depth)?;
        for (i, s) in ss.iter().enumerate() {
            self.path.push(format!("{what}[{i}]"));
            self.stmt(s, asg, depth + 1)?;
            self.path.pop();
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt, asg: &mut [bool], depth: usize) -> Result<()> {
        match s {
            Stmt::Set(l, e) => {
                let Some(&lt) = self.k.locals.get(l.0 as usize) else {
                    return self.fail(format!("local {l} is not declared"));
                };
                self.expect(e, lt, asg, depth)?;
                if let Some(a) = asg.get_mut(l.0 as usize) {
                    *a = true;
                }
            }
            Stmt::Store(op, addr, e) => {
                self.addr(addr, asg)?;
                self.expect(e, op.value_type(), asg, depth)?;
            }
            Stmt::If { cond, then, els } => {
                self.expect(cond, ValType::I32, asg, depth)?;
                let mut a_then = asg.to_vec();
                self.stmts(then, &mut a_then, depth + 1, "then")?;
                let mut a_else = asg.to_vec();
                self.stmts(els, &mut a_else, depth + 1, "else")?;
                for (i, a) in asg.iter_mut().enumerate() {
                    *a = a_then.get(i).copied().unwrap_or(false)
                        && a_else.get(i).copied().unwrap_or(false);
                }
            }
            Stmt::For(f) => self.for_loop(f, asg, depth)?,
        }
        Ok(())
    }

    fn for_loop(&mut self, f: &ForLoop, asg: &mut [bool], depth: usize) -> Result<()> {
        if !f.ty.is_int() {
            return self.fail("for counter type is not an integer");
        }
        if f.step == 0 || !fits(f.step, f.ty) {
            return self.fail(format!("for step {} is zero or does not fit", f.step));
        }
        self.expect(&f.start, f.ty, asg, depth)?;
        self.expect(&f.bound, f.ty, asg, depth)?;
        self.bind(f.counter, f.ty)?;
        let mut inner = asg.to_vec();
        self.stmts(&f.body, &mut inner, depth + 1, "for")?;
        self.in_scope.retain(|(c, _)| *c != f.counter);
        Ok(())
    }

    fn addr(&self, a: &Addr, asg: &[bool]) -> Result<()> {
        if self.param_kind(a.base) != Some(ParamKind::Ptr) {
            return self.fail(format!(
                "memory access through {}, not a pointer param",
                a.base
            ));
        }
        if self.k.trap_flag == Some(a.base) {
            return self.fail(format!("memory access through the trap flag {}", a.base));
        }
        for t in &a.offset.terms {
            match t.var {
                AffineVar::Counter(c) if self.scope_type(c).is_none() => {
                    return self.fail(format!("address uses counter {c} out of scope"));
                }
                AffineVar::Param(p) => {
                    if !matches!(self.param_kind(p), Some(ParamKind::Scalar(t)) if t.is_int()) {
                        return self.fail(format!("address uses {p}, not an integer scalar"));
                    }
                }
                AffineVar::Counter(_) => {}
                AffineVar::Local(l) => {
                    if !self.local(l, asg)?.is_int() {
                        return self.fail(format!("address uses {l}, not an integer local"));
                    }
                }
            }
            if let Some((p, _)) = t.stride
                && !matches!(self.param_kind(p), Some(ParamKind::Scalar(t)) if t.is_int())
            {
                return self.fail(format!("address stride {p} is not an integer scalar"));
            }
        }
        Ok(())
    }

    fn expect(&self, e: &Expr, want: ValType, asg: &[bool], depth: usize) -> Result<()> {
        let got = self.expr(e, asg, depth)?;
        if got != want {
            return self.fail(format!("expected {want}, found {got} in `{e}`"));
        }
        Ok(())
    }

    fn expr(&self, e: &Expr, asg: &[bool], depth: usize) -> Result<ValType> {
        self.depth(depth)?;
        let d = depth + 1;
        match e {
            Expr::Const(c) => Ok(c.ty()),
            Expr::Param(p) => match self.param_kind(*p) {
                Some(ParamKind::Scalar(t)) => Ok(t),
                Some(ParamKind::Ptr) => self.fail(format!("{p} is a pointer, not a value")),
                None => self.fail(format!("{p} does not exist")),
            },
            Expr::Counter(c) => match self.scope_type(*c) {
                Some(t) => Ok(t),
                None => self.fail(format!("counter {c} is read out of scope")),
            },
            Expr::Local(l) => self.local(*l, asg),
            Expr::Unary(op, a) => {
                self.expect(a, op.operand(), asg, d)?;
                Ok(op.result())
            }
            Expr::Binary(op, a, b) => {
                self.expect(a, op.operand(), asg, d)?;
                self.expect(b, op.operand(), asg, d)?;
                Ok(op.result())
            }
            Expr::Select { cond, then, els } => {
                self.expect(cond, ValType::I32, asg, d)?;
                let t = self.expr(then, asg, d)?;
                self.expect(els, t, asg, d)?;
                Ok(t)
            }
            Expr::Load(op, addr) => {
                self.addr(addr, asg)?;
                Ok(op.value_type())
            }
        }
    }

    fn local(&self, l: LocalId, asg: &[bool]) -> Result<ValType> {
        let Some(&t) = self.k.locals.get(l.0 as usize) else {
            return self.fail(format!("local {l} is not declared"));
        };
        if !asg.get(l.0 as usize).copied().unwrap_or(false) {
            return self.fail(format!(
                "local {l} is read before it is assigned on every path"
            ));
        }
        Ok(t)
    }
}
