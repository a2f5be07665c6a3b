//! Blueprints: tuned shapes for kernels that match a pattern. The emitter picks one with
//! [`choose`]; a kernel that matches none is lowered directly (one thread per iteration of the
//! parallel loops, inner loops sequential).
//!
//! **Tiled matmul** (`tiled-matmul`). A kernel matches when it has two or three grid dimensions,
//! no operator that can trap, and exactly one sequential loop (`k`), counting up by one from a
//! start to a bound that are the same for every thread; every `if` around that loop tests a
//! value that is the same for every thread; nothing stores to memory before that loop or
//! inside it; and inside it at least one load depends on `k` and the x counter but not the y
//! counter, and one on `k` and the y counter but not the x counter (an `A[i][k]`/`B[k][j]`
//! pair, in either orientation).
//!
//! With three grid dimensions the tiles span x and y and z is a batch, one value per block.
//!
//! The kernel then runs in 16×16 blocks (`.reqntid 16, 16, 1`). The `k` loop walks tiles of 16
//! values of `k`. For each tile, every thread of the block loads one element of each such load
//! into shared memory, the block waits at `bar.sync`, and then each thread runs the original
//! loop body for the tile's values of `k`, in order, reading those loads from shared memory; a
//! second `bar.sync` keeps the next tile from overwriting one still being read. Each thread
//! still computes its own outputs with the same operations in the same order as the CPU loop,
//! so the results are bit-identical; only where the loaded values come from changes.
//!
//! Why that is sound, in short (the long form is in `docs/OFFLOAD.md`, "Blueprints"):
//! - An element is loaded into shared memory only when some thread of the original kernel
//!   loads that address (the same `k` bound and the same grid-range test), so no new address is
//!   touched and the host's range and alias checks cover every access.
//! - Loads read what the original reads: the host dispatches only when no thread writes a byte
//!   that another thread accesses, and the thread itself stores nothing before the loop or in
//!   it, so no store can change a value between its shared-memory load and the original load.
//! - Every thread reaches every `bar.sync` the same number of times: the tile loop depends only
//!   on values that are the same across the block, and threads outside the grid's range take
//!   part in the loads and barriers but skip the loop body and every other statement.

use crate::kernel_ir::{
    Addr, AffineVar, Expr, ForLoop, Kernel, LoadOp, LoopId, MemOp, Stmt, mem_ops,
};

/// The edge of a tile: blocks are `TILE × TILE` threads and the `k` loop advances by `TILE`.
pub const TILE: u32 = 16;

/// Elements per row of a shared tile: one more than [`TILE`], so that a warp writing a tile
/// column touches 16 different banks.
pub const PITCH: u32 = TILE + 1;

/// At most this many loads are staged in shared memory (each takes `TILE·PITCH` elements).
pub const MAX_STAGED: usize = 8;

/// The blueprint a kernel is emitted with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Blueprint {
    /// The direct lowering.
    Generic,
    /// Shared-memory tiles over the sequential `k` loop (see the module docs), with the block
    /// shape it requires: 16 × 16 over grid x and y, 1 along z (a batch).
    TiledMatmul([u32; 3]),
}

impl Blueprint {
    /// The name `tensorwasm analyze` and build reports show.
    pub fn name(self) -> &'static str {
        match self {
            Blueprint::Generic => "generic",
            Blueprint::TiledMatmul(_) => "tiled-matmul",
        }
    }

    /// The block shape the blueprint requires, if it requires one.
    pub fn block(self) -> Option<[u32; 3]> {
        match self {
            Blueprint::Generic => None,
            Blueprint::TiledMatmul(block) => Some(block),
        }
    }
}

/// The blueprint [`crate::emit_ptx`] uses for `kernel` (unless told to use the generic one).
pub fn choose(kernel: &Kernel) -> Blueprint {
    match tiled_plan(kernel) {
        Some(_) => Blueprint::TiledMatmul([TILE, TILE, 1]),
        None => Blueprint::Generic,
    }
}

/// One load staged in shared memory.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Staged {
    pub op: LoadOp,
    pub addr: Addr,
    /// The grid axis its address moves with besides `k`: 0 (x) or 1 (y).
    pub axis: usize,
    /// Whether the threads of a warp load consecutive `k` (its address moves less with `k`
    /// than with the axis counter) rather than consecutive axis positions.
    pub along_k: bool,
}

/// How a kernel matching the tiled-matmul blueprint is emitted.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TiledPlan {
    /// The sequential loop that is tiled.
    pub k_loop: LoopId,
    /// The loads read from shared memory inside it.
    pub staged: Vec<Staged>,
    /// Per local: whether threads outside the grid's range must compute it too, because the
    /// way to the loop or its bounds depend on it (see [`needed_locals`]). Always uniform.
    pub needed: Vec<bool>,
}

impl TiledPlan {
    /// Whether every thread of a block runs `s` (the rest is skipped by threads outside the
    /// grid's range): the tiled loop, assignments to needed locals, and the `if`s around them.
    pub fn everywhere(&self, s: &Stmt) -> bool {
        match s {
            Stmt::For(f) => f.counter == self.k_loop,
            Stmt::Set(l, _) => self.needed.get(l.0 as usize).copied().unwrap_or(false),
            Stmt::If { then, els, .. } => then.iter().chain(els).any(|s| self.everywhere(s)),
            Stmt::Store(..) => false,
        }
    }
}

/// The tiled-matmul plan for `k`, if it matches (the conditions are in the module docs).
pub(crate) fn tiled_plan(k: &Kernel) -> Option<TiledPlan> {
    if !(2..=3).contains(&k.grid.len()) || k.trap_flag.is_some() || k.can_trap() {
        return None;
    }
    let mut fors = Vec::new();
    collect_fors(&k.body, &mut fors);
    let [f] = fors[..] else {
        return None;
    };
    if f.step != 1 {
        return None;
    }
    let uniform = uniform_locals(k);
    if !expr_uniform(&f.start, &uniform)
        || !expr_uniform(&f.bound, &uniform)
        || !path_ok(&k.body, &uniform)
    {
        return None;
    }
    let needed = needed_locals(k, f);
    // Implied by the checks above; kept as a guard, since a thread outside the grid that
    // computed a non-uniform value would take another way to the barriers.
    if needed.iter().zip(&uniform).any(|(n, u)| *n && !*u) {
        return None;
    }
    Some(TiledPlan {
        k_loop: f.counter,
        staged: stage(k, f)?,
        needed,
    })
}

/// The locals every thread must compute: those the loop's start and bound read, those the
/// conditions of the `if`s around the loop read, and, transitively, those read by their
/// assignments and by the conditions of the `if`s around those assignments. (The C samples
/// assign dozens of locals before the loop; only a few decide the way to it, and threads
/// outside the grid skip the rest.)
fn needed_locals(k: &Kernel, f: &ForLoop) -> Vec<bool> {
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
    fn walk(ss: &[Stmt], k_loop: LoopId, need: &mut [bool], changed: &mut bool) -> bool {
        let mut any = false;
        for s in ss {
            match s {
                Stmt::For(f) => any |= f.counter == k_loop,
                Stmt::Set(l, e) => {
                    if need.get(l.0 as usize).copied().unwrap_or(false) {
                        mark(e, need, changed);
                        any = true;
                    }
                }
                Stmt::If { cond, then, els } => {
                    let t = walk(then, k_loop, need, changed);
                    let e = walk(els, k_loop, need, changed);
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
    mark(&f.start, &mut need, &mut changed);
    mark(&f.bound, &mut need, &mut changed);
    loop {
        changed = false;
        walk(&k.body, f.counter, &mut need, &mut changed);
        if !changed {
            return need;
        }
    }
}

/// The loads of loop `f` to stage: those whose address moves with `k` and with exactly one of
/// grid x and y (the tiles span those two, the two innermost grid loops; a z dimension is a
/// batch that every thread of a block shares). `None` unless both x and y have one.
fn stage(k: &Kernel, f: &ForLoop) -> Option<Vec<Staged>> {
    let k_loop = f.counter;
    let (x, y) = (k.grid[0].counter, k.grid[1].counter);
    let mut staged: Vec<Staged> = Vec::new();
    for op in mem_ops(&f.body) {
        let MemOp::Load(op, addr) = op else {
            continue;
        };
        if staged.iter().any(|s| s.op == op && s.addr == *addr)
            || addr
                .offset
                .terms
                .iter()
                .any(|t| matches!(t.var, AffineVar::Local(_)))
        {
            continue;
        }
        let coef = |v: LoopId| {
            addr.offset
                .terms
                .iter()
                .find(|t| t.var == AffineVar::Counter(v))
                .map(|t| (t.coef.unsigned_abs(), t.stride.is_some()))
        };
        let Some(kc) = coef(k_loop) else {
            continue;
        };
        let (axis, sc) = match (coef(x), coef(y)) {
            (Some(s), None) => (0, s),
            (None, Some(s)) => (1, s),
            _ => continue,
        };
        // Consecutive threads should load neighbouring bytes: along k when k moves the address
        // by a constant and the axis by a run-time stride, or by a smaller constant.
        let along_k = match (kc, sc) {
            ((_, true), _) => false,
            ((_, false), (_, true)) => true,
            ((kb, false), (sb, false)) => kb < sb,
        };
        staged.push(Staged {
            op,
            addr: addr.clone(),
            axis,
            along_k,
        });
    }
    let has = |axis: usize| staged.iter().any(|s| s.axis == axis);
    (has(0) && has(1) && staged.len() <= MAX_STAGED).then_some(staged)
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
