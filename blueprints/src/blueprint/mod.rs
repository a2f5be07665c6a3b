//! Blueprints: tuned shapes for kernels that match a pattern. The emitter picks one with
//! [`choose`]; a kernel that matches none is lowered directly (one thread per iteration of the
//! parallel loops, inner loops sequential).
//!
//! Each blueprint has its own module, holding both the match (its plan: whether a kernel fits,
//! and what the emission needs to know) and its emission (an `impl Emitter` block over the
//! emitter core in [`crate::emit`]):
//! - [`matmul`] (`tiled-matmul`): shared-memory tiles over a sequential `k` loop;
//! - [`stencil`] (`tiled-stencil`): a shared tile with a halo for loads at fixed offsets from
//!   each thread's own element;
//! - [`conv2d`] (`tiled-conv2d`): a shared window over the input a block's two filter loops
//!   read.
//!
//! This module holds what they share to match: the [`Blueprint`] names, [`choose`], the plan of
//! a matching kernel (`Plan`), and the analysis of which values are the same in every thread
//! (`uniform_locals`), which locals every thread must compute (`needed_for`) and whether the
//! way to a loop is safe (`path_ok`). What they share to emit (the statement driver, shared
//! tiles) is in `tiled.rs`.
//!
//! All three run in 16 × 16 blocks (`.reqntid 16, 16, 1`; a third grid dimension is a batch,
//! one value per block) and are bit-identical to the direct lowering: each thread computes its
//! own outputs with the same operations in the same order; only where loaded values come from
//! changes. They share the soundness argument (the long form is in `docs/OFFLOAD.md`,
//! "Blueprints"): shared memory is filled only with what some thread of the original kernel
//! loads, at its own address; nothing stores before those loads; and every thread of a block
//! reaches every `bar.sync` alike, because the way to it depends only on uniform values and
//! threads outside the grid's range take part in the fills and barriers but skip everything
//! else.

pub mod conv2d;
pub mod matmul;
pub mod stencil;
pub(crate) mod tiled;

pub use conv2d::{MAX_CONV_GROUPS, MAX_FILTER};
pub use matmul::{MAX_STAGED, PITCH};
pub use stencil::{MAX_HALO, MAX_STENCIL_GROUPS};

use conv2d::{ConvPlan, conv_plan};
use matmul::{MatmulPlan, matmul_plan};
use stencil::{StencilPlan, stencil_plan};

use crate::kernel_ir::{Expr, ForLoop, Kernel, MemOp, Stmt, mem_ops};

/// The edge of a tile: blocks are `TILE × TILE` threads and the `k` loop advances by `TILE`.
pub const TILE: u32 = 16;

/// The blueprint a kernel is emitted with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Blueprint {
    /// The direct lowering.
    Generic,
    /// Shared-memory tiles over the sequential `k` loop (see [`matmul`]), with the block shape
    /// it requires: 16 × 16 over grid x and y, 1 along z (a batch).
    TiledMatmul([u32; 3]),
    /// Shared-memory tiles with a halo for loads at fixed offsets from each thread's own
    /// element (see [`stencil`]), with the block shape it requires: 16 × 16.
    TiledStencil([u32; 3]),
    /// A shared window over the input a block's filter loops read (see [`conv2d`]), with the
    /// block shape it requires: 16 × 16.
    TiledConv2d([u32; 3]),
}

impl Blueprint {
    /// The name `tensorwasm analyze` and build reports show.
    pub fn name(self) -> &'static str {
        match self {
            Blueprint::Generic => "generic",
            Blueprint::TiledMatmul(_) => "tiled-matmul",
            Blueprint::TiledStencil(_) => "tiled-stencil",
            Blueprint::TiledConv2d(_) => "tiled-conv2d",
        }
    }

    /// The block shape the blueprint requires, if it requires one.
    pub fn block(self) -> Option<[u32; 3]> {
        match self {
            Blueprint::Generic => None,
            Blueprint::TiledMatmul(block)
            | Blueprint::TiledStencil(block)
            | Blueprint::TiledConv2d(block) => Some(block),
        }
    }
}

/// The blueprint [`crate::emit_ptx`] uses for `kernel` (unless told to use the generic one).
pub fn choose(kernel: &Kernel) -> Blueprint {
    Plan::find(kernel).map_or(Blueprint::Generic, |p| p.blueprint())
}

/// The plan of a kernel that matches a blueprint: what that blueprint's emission follows.
#[derive(Clone, Debug)]
pub(crate) enum Plan {
    Matmul(MatmulPlan),
    Stencil(StencilPlan),
    Conv(ConvPlan),
}

impl Plan {
    /// The plan of the first blueprint `k` matches: tiled matmul, tiled stencil, tiled conv2d.
    pub(crate) fn find(k: &Kernel) -> Option<Plan> {
        if let Some(p) = matmul_plan(k) {
            Some(Plan::Matmul(p))
        } else if let Some(p) = stencil_plan(k) {
            Some(Plan::Stencil(p))
        } else {
            conv_plan(k).map(Plan::Conv)
        }
    }

    /// The blueprint the plan is for.
    fn blueprint(&self) -> Blueprint {
        let block = [TILE, TILE, 1];
        match self {
            Plan::Matmul(_) => Blueprint::TiledMatmul(block),
            Plan::Stencil(_) => Blueprint::TiledStencil(block),
            Plan::Conv(_) => Blueprint::TiledConv2d(block),
        }
    }

    /// Whether `s` is the statement the blueprint emits its own way: the tiled `k` loop, the
    /// stencil's anchor (the first statement that reads the tiles), the filter's row loop.
    fn is_target(&self, s: &Stmt) -> bool {
        match self {
            Plan::Matmul(p) => matches!(s, Stmt::For(f) if f.counter == p.k_loop),
            Plan::Stencil(p) => p.is_anchor(s),
            Plan::Conv(p) => matches!(s, Stmt::For(f) if f.counter == p.rows),
        }
    }

    /// Per local: whether threads outside the grid's range must compute it too (see
    /// [`needed_for`]). Always uniform.
    fn needed(&self) -> &[bool] {
        match self {
            Plan::Matmul(p) => &p.needed,
            Plan::Stencil(p) => &p.needed,
            Plan::Conv(p) => &p.needed,
        }
    }

    /// Whether every thread of a block runs `s` (threads outside the grid's range skip the
    /// rest): the target, assignments to needed locals, and the `if`s around either.
    fn everywhere(&self, s: &Stmt) -> bool {
        self.is_target(s)
            || match s {
                Stmt::Set(l, _) => self.needed().get(l.0 as usize).copied().unwrap_or(false),
                Stmt::If { then, els, .. } => then.iter().chain(els).any(|s| self.everywhere(s)),
                Stmt::For(_) | Stmt::Store(..) => false,
            }
    }
}

/// The locals every thread must compute to reach the statement `target` picks, given the
/// expressions `roots` that it evaluates on the way in (a loop's start and bound): those the
/// roots read, those the conditions of the `if`s around the target read, and, transitively,
/// those read by their assignments and by the conditions of the `if`s around those
/// assignments. (The C samples assign dozens of locals before the loop; only a few decide the
/// way to it, and threads outside the grid skip the rest.)
fn needed_for(k: &Kernel, roots: &[&Expr], target: &dyn Fn(&Stmt) -> bool) -> Vec<bool> {
    fn mark(e: &Expr, need: &mut [bool], changed: &mut bool) {
        match e {
            Expr::Local(l) => {
                if let Some(n) = need.get_mut(l.0 as usize)
                    && !*n
                {
                    *n = true;
                    *changed = true;
                }
            }
            Expr::Unary(_, a) => mark(a, need, changed),
            Expr::Binary(_, a, b) => {
                mark(a, need, changed);
                mark(b, need, changed);
            }
            Expr::Select { cond, then, els } => {
                mark(cond, need, changed);
                mark(then, need, changed);
                mark(els, need, changed);
            }
            Expr::Const(_) | Expr::Param(_) | Expr::Counter(_) | Expr::Load(..) => {}
        }
    }
    /// Marks what `ss` needs; whether it holds a statement every thread runs.
    fn walk(
        ss: &[Stmt],
        target: &dyn Fn(&Stmt) -> bool,
        need: &mut [bool],
        changed: &mut bool,
    ) -> bool {
        let mut any = false;
        for s in ss {
            if target(s) {
                any = true;
                continue;
            }
            match s {
                Stmt::For(_) => {}
                Stmt::Set(l, e) => {
                    if need.get(l.0 as usize).copied().unwrap_or(false) {
                        mark(e, need, changed);
                        any = true;
                    }
                }
                Stmt::If { cond, then, els } => {
                    let t = walk(then, target, need, changed);
                    let e = walk(els, target, need, changed);
                    if t || e {
                        mark(cond, need, changed);
                        any = true;
                    }
                }
                Stmt::Store(..) => {}
            }
        }
        any
    }
    let mut need = vec![false; k.locals.len()];
    let mut changed = false;
    for e in roots {
        mark(e, &mut need, &mut changed);
    }
    loop {
        changed = false;
        walk(&k.body, target, &mut need, &mut changed);
        if !changed {
            return need;
        }
    }
}

fn collect_fors<'a>(ss: &'a [Stmt], out: &mut Vec<&'a ForLoop>) {
    for s in ss {
        match s {
            Stmt::For(f) => {
                out.push(f);
                collect_fors(&f.body, out);
            }
            Stmt::If { then, els, .. } => {
                collect_fors(then, out);
                collect_fors(els, out);
            }
            Stmt::Set(..) | Stmt::Store(..) => {}
        }
    }
}

fn contains_for(ss: &[Stmt]) -> bool {
    let mut v = Vec::new();
    collect_fors(ss, &mut v);
    !v.is_empty()
}

fn has_store(ss: &[Stmt]) -> bool {
    mem_ops(ss).iter().any(|m| matches!(m, MemOp::Store(..)))
}

/// Whether every `if` on the way from `ss` to the kernel's one `for` tests a uniform value,
/// and nothing before that `for` or inside it stores to memory. (A store before the loop could
/// race with another thread's shared-memory load of the same address, which the original
/// kernel loads in the storing thread only; one inside could change a value already staged.)
fn path_ok(ss: &[Stmt], uniform: &[bool]) -> bool {
    for s in ss {
        match s {
            Stmt::For(f) => return !has_store(&f.body),
            Stmt::If { cond, then, els } if contains_for(then) || contains_for(els) => {
                // The other branch runs instead of the loop, in every thread alike.
                let branch = if contains_for(then) { then } else { els };
                return expr_uniform(cond, uniform) && path_ok(branch, uniform);
            }
            s if has_store(std::slice::from_ref(s)) => return false,
            _ => {}
        }
    }
    false
}

/// Whether `e` has the same value in every thread: built from constants, params and uniform
/// locals, with no counter and no load.
fn expr_uniform(e: &Expr, uniform: &[bool]) -> bool {
    match e {
        Expr::Const(_) | Expr::Param(_) => true,
        Expr::Counter(_) | Expr::Load(..) => false,
        Expr::Local(l) => uniform.get(l.0 as usize).copied().unwrap_or(false),
        Expr::Unary(_, a) => expr_uniform(a, uniform),
        Expr::Binary(_, a, b) => expr_uniform(a, uniform) && expr_uniform(b, uniform),
        Expr::Select { cond, then, els } => {
            expr_uniform(cond, uniform) && expr_uniform(then, uniform) && expr_uniform(els, uniform)
        }
    }
}

/// The locals that hold the same value in every thread at every point: every assignment to
/// one is a uniform expression in uniform control flow (outside any `for`, and under `if`s
/// whose conditions are uniform). A greatest fixed point: start with every local uniform and
/// drop those with an assignment that is not.
fn uniform_locals(k: &Kernel) -> Vec<bool> {
    fn walk(ss: &[Stmt], ctx: bool, u: &mut Vec<bool>, changed: &mut bool) {
        for s in ss {
            match s {
                Stmt::Set(l, e) => {
                    let keep = ctx && expr_uniform(e, u);
                    if let Some(slot) = u.get_mut(l.0 as usize)
                        && *slot
                        && !keep
                    {
                        *slot = false;
                        *changed = true;
                    }
                }
                Stmt::Store(..) => {}
                Stmt::If { cond, then, els } => {
                    let c = ctx && expr_uniform(cond, u);
                    walk(then, c, u, changed);
                    walk(els, c, u, changed);
                }
                Stmt::For(f) => walk(&f.body, false, u, changed),
            }
        }
    }
    let mut u = vec![true; k.locals.len()];
    loop {
        let mut changed = false;
        walk(&k.body, true, &mut u, &mut changed);
        if !changed {
            return u;
        }
    }
}
