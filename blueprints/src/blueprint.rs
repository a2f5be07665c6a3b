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
//! pair, in either orientation). Only loads of the loop body's own assignments count: one under
//! an `if` inside the loop may not run for every `k`.
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
//!
//! **Tiled stencil** (`tiled-stencil`). A kernel with two grid dimensions (constant starts in
//! `[0, 2²⁰]`, step 1; a third is a batch), no sequential loop and no trapping operator, whose
//! first statements that load (reached through uniform `if`s, no store before them) read one
//! row-major array at least twice at fixed offsets `(dx, dy)` from the thread's own element.
//! Before those statements every thread of a 16 × 16 block fills a shared tile with a halo
//! (each element with the address a load of a thread inside the grid computes, only where such
//! a thread needs it), waits at `bar.sync`, and the loads then read the tile. See
//! [`stencil_plan`] and `docs/OFFLOAD.md`, "Tiled stencil".
//!
//! **Tiled conv2d** (`tiled-conv2d`). Grid x and y as for the stencil, and exactly two
//! sequential loops, `kx` directly in `ky`'s body, counting up by one from 0 to uniform bounds
//! (run-time filter sizes), whose loads read a row-major array at `(x + kx + dx, y + ky + dy)`.
//! When both filter sizes are in `[1, MAX_FILTER]`, every thread of a 16 × 16 block first fills
//! a shared window with the whole input the block's loops read (each element with the address
//! a thread inside the grid computes for some `(ky, kx)`), waits at `bar.sync`, and the loops
//! read the window; otherwise the kernel runs the direct loops. See [`conv_plan`] and
//! `docs/OFFLOAD.md`, "Tiled conv2d".

use crate::kernel_ir::{
    Addr, AffineTerm, AffineVar, Const, Expr, Ext, ForLoop, Kernel, LoadOp, LoopId, MemOp, ParamId,
    Start, Stmt, ValType, mem_ops,
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
    /// Shared-memory tiles with a halo for loads at fixed offsets from each thread's own
    /// element (see the module docs), with the block shape it requires: 16 × 16.
    TiledStencil([u32; 3]),
    /// A shared window over the input a block's filter loops read (see the module docs), with
    /// the block shape it requires: 16 × 16.
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
    if tiled_plan(kernel).is_some() {
        Blueprint::TiledMatmul([TILE, TILE, 1])
    } else if stencil_plan(kernel).is_some() {
        Blueprint::TiledStencil([TILE, TILE, 1])
    } else if conv_plan(kernel).is_some() {
        Blueprint::TiledConv2d([TILE, TILE, 1])
    } else {
        Blueprint::Generic
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
        runs_everywhere(
            s,
            &self.needed,
            &|s| matches!(s, Stmt::For(f) if f.counter == self.k_loop),
        )
    }
}

/// Whether every thread of a block runs `s` under a tiled plan: the plan's `target` (the tiled
/// loop, the stencil's anchor), assignments to `needed` locals, and the `if`s around either.
fn runs_everywhere(s: &Stmt, needed: &[bool], target: &dyn Fn(&Stmt) -> bool) -> bool {
    target(s)
        || match s {
            Stmt::Set(l, _) => needed.get(l.0 as usize).copied().unwrap_or(false),
            Stmt::If { then, els, .. } => then
                .iter()
                .chain(els)
                .any(|s| runs_everywhere(s, needed, target)),
            Stmt::For(_) | Stmt::Store(..) => false,
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
    needed_for(
        k,
        &[&f.start, &f.bound],
        &|s| matches!(s, Stmt::For(g) if g.counter == f.counter),
    )
}

/// The locals every thread must compute to reach the statement `target` picks, given the
/// expressions `roots` that it evaluates on the way in (see [`needed_locals`]).
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

/// The loads of loop `f` to stage: those whose address moves with `k` and with exactly one of
/// grid x and y (the tiles span those two, the two innermost grid loops; a z dimension is a
/// batch that every thread of a block shares). `None` unless both x and y have one.
fn stage(k: &Kernel, f: &ForLoop) -> Option<Vec<Staged>> {
    let k_loop = f.counter;
    let (x, y) = (k.grid[0].counter, k.grid[1].counter);
    let mut staged: Vec<Staged> = Vec::new();
    // Only loads that run in every iteration: those of the body's own assignments. A load
    // under an `if` in the loop may not run for some `k` (its condition may even be a live-in
    // that the host evaluates to leave the access out of its checks), so it is not staged.
    let every_k: Vec<Stmt> = f
        .body
        .iter()
        .filter(|s| matches!(s, Stmt::Set(..)))
        .cloned()
        .collect();
    for op in mem_ops(&every_k) {
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

/// Half the widest halo a stencil tile may have, in elements, along x or y (a tile is at most
/// `TILE + 2·MAX_HALO` elements on a side).
pub const MAX_HALO: i64 = 4;

/// At most this many shared tiles (groups) in a stencil kernel.
pub const MAX_STENCIL_GROUPS: usize = 4;

/// The largest grid start a stencil kernel may have: with it, and at least 4 bytes per
/// element, every counter of a launch the host accepts stays below 2³¹ (see
/// [`stencil_offsets`]).
const MAX_STENCIL_START: i64 = 1 << 20;

/// One load of a stencil group: it reads the group's array at `(x + dx, y + dy)`, where
/// `(x, y)` is the thread's own element.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StencilLoad {
    pub op: LoadOp,
    pub addr: Addr,
    pub dx: i64,
    pub dy: i64,
}

/// Loads reading one array at fixed offsets: one shared tile of `height() × width()`
/// elements, rows [`StencilGroup::pitch`] elements apart.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StencilGroup {
    pub loads: Vec<StencilLoad>,
}

impl StencilGroup {
    fn span(&self, f: impl Fn(&StencilLoad) -> i64) -> (i64, i64) {
        let lo = self.loads.iter().map(&f).min().unwrap_or(0);
        let hi = self.loads.iter().map(&f).max().unwrap_or(0);
        (lo, hi)
    }

    /// The least and greatest `dx`.
    pub fn dx(&self) -> (i64, i64) {
        self.span(|l| l.dx)
    }

    /// The least and greatest `dy`.
    pub fn dy(&self) -> (i64, i64) {
        self.span(|l| l.dy)
    }

    /// Elements per tile row: the block's 16 plus the halo along x.
    pub fn width(&self) -> u32 {
        let (lo, hi) = self.dx();
        TILE + (hi - lo) as u32
    }

    /// Tile rows: the block's 16 plus the halo along y.
    pub fn height(&self) -> u32 {
        let (lo, hi) = self.dy();
        TILE + (hi - lo) as u32
    }

    /// Elements from one row to the next: the width rounded up to 16 modulo 32, so that the
    /// two half-warps of a warp (two rows of 16 lanes) read different banks.
    pub fn pitch(&self) -> u32 {
        pitch_for(self.width())
    }

    /// The element type's width in bytes (every load of a group has the same operator).
    pub fn elem_bytes(&self) -> u32 {
        match self.loads.first().map(|l| l.op.value_type()) {
            Some(ValType::I64 | ValType::F64) => 8,
            _ => 4,
        }
    }
}

/// Elements from one row of a tile `w` elements wide to the next: `w` rounded up to 16 modulo
/// 32, so that the two half-warps of a warp (two rows of 16 lanes) read different banks.
pub(crate) fn pitch_for(w: u32) -> u32 {
    if w <= TILE {
        TILE
    } else {
        TILE + (w - TILE).div_ceil(32) * 32
    }
}

/// How a kernel matching the tiled-stencil blueprint is emitted.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StencilPlan {
    pub groups: Vec<StencilGroup>,
    /// The statement before which every thread of a block fills the tiles, by address (the
    /// plan is made for, and used with, one borrowed kernel).
    anchor: *const Stmt,
    /// How many statements from the anchor on (in its list) read the tiles.
    pub span: usize,
    /// Per local: whether threads outside the grid's range must compute it (see
    /// [`needed_for`]).
    pub needed: Vec<bool>,
}

impl StencilPlan {
    /// Whether `s` is the statement the tiles are filled before.
    pub fn is_anchor(&self, s: &Stmt) -> bool {
        std::ptr::eq(s, self.anchor)
    }

    /// Whether every thread of a block runs `s`: the anchor, assignments to needed locals and
    /// the `if`s around them.
    pub fn everywhere(&self, s: &Stmt) -> bool {
        runs_everywhere(s, &self.needed, &|s| self.is_anchor(s))
    }
}

/// How a stencil load's address moves with the y counter: by `cy·zx(P)` bytes per row for a
/// pitch param `P` (a run-time width; `cy` is the element's width), or by a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RowStride {
    Param(i64, ParamId),
    Const(i64),
}

/// The group key of a stencil load: array base, the terms besides the x, y and row-shift ones,
/// the element stride along x, the row stride, and the operator.
type GroupKey = (ParamId, Vec<AffineTerm>, i64, RowStride, LoadOp);

/// `addr` as an element of a row-major array, `base + rest + cx·x + y·row + shift + c`, with
/// `cx` the element's width and `rest` free of counters and locals. Returns the group key,
/// `c` and, for a pitch param `P`, the rows `shift` moves by (`cx·dy·zx(P)` terms). `None`
/// when it has another form. [`stencil_offsets`] turns `c` and the shift into offsets.
fn stencil_form(k: &Kernel, op: LoadOp, addr: &Addr) -> Option<(GroupKey, i64, i64)> {
    let width = i64::from(op.bytes());
    if width < 4 || !addr.aligned {
        return None;
    }
    let (x, y) = (k.grid.first()?.counter, k.grid.get(1)?.counter);
    // A third grid dimension is a batch: one value per block (`.reqntid 16, 16, 1`), so its
    // term is the same in every thread of the block, like a param's.
    let z = k.grid.get(2).map(|g| g.counter);
    let (mut xt, mut yt) = (None, None);
    let mut rest = Vec::new();
    for t in addr.offset.terms.iter().filter(|t| t.coef != 0) {
        match t.var {
            AffineVar::Counter(c) if Some(c) == z => rest.push(*t),
            AffineVar::Counter(c) if c == x && t.stride.is_none() && xt.is_none() => {
                xt = Some(t.coef);
            }
            AffineVar::Counter(c) if c == y && yt.is_none() => {
                yt = Some(match t.stride {
                    Some((p, Ext::Unsigned)) if t.coef == width => RowStride::Param(t.coef, p),
                    Some(_) => return None,
                    None => RowStride::Const(t.coef),
                });
            }
            AffineVar::Counter(_) | AffineVar::Local(_) => return None,
            AffineVar::Param(_) => rest.push(*t),
        }
    }
    let (cx, row) = (xt?, yt?);
    if cx != width {
        return None;
    }
    let mut dy = 0i64;
    if let RowStride::Param(cy, pitch) = row {
        rest.retain(|t| {
            let shift = t.var == AffineVar::Param(pitch)
                && t.stride.is_none()
                && t.ext == Ext::Unsigned
                && t.coef % cy == 0;
            if shift {
                dy += t.coef / cy;
            }
            !shift
        });
    }
    rest.sort_by_key(|t| format!("{t:?}"));
    Some(((addr.base, rest, cx, row, op), addr.offset.constant, dy))
}

/// Offsets `(dx, dy)` for each load of one group (from [`stencil_form`]: its constants `c`
/// and row shifts), relative to the first load's constant. With a pitch param, `dy` is the
/// shift and `c` must move by whole elements; with a constant row stride `row`, `c` splits into
/// `dy·row + dx·cx` with the `dy` nearest `c / row`. `None` when an offset does not split or
/// the tile's halo is wider than `2·MAX_HALO` along x or y.
///
/// Any split is sound: the offsets only name which tile slot holds an address, and a slot is
/// filled by a load some thread inside the grid runs at the address the same arithmetic gives
/// (`base + rest + cx·(x + dx) + row·(y + dy) + c₀`, in the wrapping 64-bit arithmetic of the
/// kernel, where, with counters that never wrap, `sx(x + d) = sx(x) + d`: a constant start in
/// `[0, 2²⁰]`, step 1, and an element of at least 4 bytes keep every counter of a launch the
/// host accepts below 2³¹).
fn stencil_offsets(key: &GroupKey, forms: &[(i64, i64)]) -> Option<Vec<(i64, i64)>> {
    let (_, _, cx, row, _) = key;
    let c0 = forms.first()?.0;
    let mut out = Vec::new();
    for &(c, shift) in forms {
        let diff = c.checked_sub(c0)?;
        let (dx, dy) = match *row {
            RowStride::Param(..) => (diff % cx == 0).then_some((diff / cx, shift))?,
            RowStride::Const(r) if r != 0 => {
                let dy = (diff + r / 2).div_euclid(r);
                let left = diff.checked_sub(dy.checked_mul(r)?)?;
                (left % cx == 0).then_some((left / cx, dy))?
            }
            RowStride::Const(_) => return None,
        };
        out.push((dx, dy));
    }
    let span = |f: fn(&(i64, i64)) -> i64| {
        out.iter().map(f).max().unwrap_or(0) - out.iter().map(f).min().unwrap_or(0)
    };
    (span(|o| o.0) <= 2 * MAX_HALO && span(|o| o.1) <= 2 * MAX_HALO).then_some(out)
}

/// Loads in the stencil's form ([`stencil_form`]), grouped by key: each with its constant and
/// row shift.
#[derive(Default)]
struct LoadForms(Vec<(GroupKey, Vec<FormLoad>)>);

/// A load with its constant and row shift.
type FormLoad = (LoadOp, Addr, i64, i64);

impl LoadForms {
    fn add(&mut self, key: GroupKey, op: LoadOp, addr: Addr, c: i64, shift: i64) {
        let load = (op, addr, c, shift);
        match self.0.iter_mut().find(|(g, _)| *g == key) {
            Some((_, g)) if !g.contains(&load) => g.push(load),
            Some(_) => {}
            None => self.0.push((key, vec![load])),
        }
    }

    /// The groups of at least `min` loads, with their offsets ([`stencil_offsets`]); `None`
    /// when one's offsets do not split or reach too far.
    fn groups(&self, min: usize) -> Option<Vec<StencilGroup>> {
        let mut groups = Vec::new();
        for (key, loads) in self.0.iter().filter(|(_, l)| l.len() >= min) {
            let cs: Vec<(i64, i64)> = loads.iter().map(|l| (l.2, l.3)).collect();
            let offsets = stencil_offsets(key, &cs)?;
            groups.push(StencilGroup {
                loads: loads
                    .iter()
                    .zip(offsets)
                    .map(|((op, addr, _, _), (dx, dy))| StencilLoad {
                        op: *op,
                        addr: addr.clone(),
                        dx,
                        dy,
                    })
                    .collect(),
            });
        }
        Some(groups)
    }
}

/// The tiled-stencil plan for `k`, if it matches: two or three grid dimensions, x and y each
/// `i32` or `i64` with a constant start in `[0, 2²⁰]` and step 1 (a z dimension is a batch); no sequential loop and no operator that can
/// trap; a statement list reached through `if`s on uniform values whose statements load, at
/// fixed offsets from the thread's own element, one array at least twice (a group; at most
/// [`MAX_STENCIL_GROUPS`] of them, offsets at most [`MAX_HALO`]); and no store before the
/// last statement that does (which may itself be a store).
pub(crate) fn stencil_plan(k: &Kernel) -> Option<StencilPlan> {
    if !(2..=3).contains(&k.grid.len())
        || k.trap_flag.is_some()
        || k.can_trap()
        || contains_for(&k.body)
    {
        return None;
    }
    if !halo_grid(k) {
        return None;
    }
    let uniform = uniform_locals(k);
    let (list, at) = stencil_list(k, &k.body, &uniform)?;
    // From the anchor on: the statements that read tiles, up to the last with a staged load.
    let direct = |s: &Stmt| -> Vec<(LoadOp, Addr)> {
        match s {
            Stmt::Set(..) | Stmt::Store(..) => mem_ops(std::slice::from_ref(s))
                .into_iter()
                .filter_map(|m| match m {
                    MemOp::Load(op, a) => Some((op, a.clone())),
                    MemOp::Store(..) => None,
                })
                .collect(),
            Stmt::If { .. } | Stmt::For(_) => Vec::new(),
        }
    };
    let mut forms = LoadForms::default();
    let mut last = at;
    for (i, s) in list.iter().enumerate().skip(at) {
        let mut any = false;
        for (op, addr) in direct(s) {
            let Some((key, c, shift)) = stencil_form(k, op, &addr) else {
                continue;
            };
            any = true;
            forms.add(key, op, addr, c, shift);
        }
        if any {
            last = i;
        }
        if has_store(std::slice::from_ref(s)) {
            break;
        }
    }
    // A store before the last statement that loads would run before a staged load.
    // (`list[last]` itself is a `Set` or a `Store`, whose loads run before its store.)
    if list[at..last]
        .iter()
        .any(|s| has_store(std::slice::from_ref(s)))
    {
        return None;
    }
    let groups = forms.groups(2)?;
    if groups.is_empty() || groups.len() > MAX_STENCIL_GROUPS {
        return None;
    }
    let anchor: *const Stmt = &list[at];
    let needed = needed_for(k, &[], &|s| std::ptr::eq(s, anchor));
    if needed.iter().zip(&uniform).any(|(n, u)| *n && !*u) {
        return None;
    }
    Some(StencilPlan {
        groups,
        anchor,
        span: last + 1 - at,
        needed,
    })
}

/// Whether grid x and y both step by 1 from a constant start in `[0, 2²⁰]`: what the stencil
/// and conv2d tiles need for a lane's counter to be lane 0's plus the lane, with no wrap (see
/// [`stencil_offsets`]).
fn halo_grid(k: &Kernel) -> bool {
    k.grid.len() >= 2
        && k.grid[..2].iter().all(|g| {
            g.step == 1
                && matches!(g.start, Start::Const(s) if (0..=MAX_STENCIL_START).contains(&s))
        })
}

/// The statement list holding the first statement that loads at fixed offsets (and its
/// index), reached from `ss` through `if`s on uniform values with no store on the way.
fn stencil_list<'a>(k: &Kernel, ss: &'a [Stmt], uniform: &[bool]) -> Option<(&'a [Stmt], usize)> {
    for (i, s) in ss.iter().enumerate() {
        match s {
            Stmt::Set(..) | Stmt::Store(..) => {
                let loads = mem_ops(std::slice::from_ref(s));
                if loads
                    .iter()
                    .any(|m| matches!(m, MemOp::Load(op, a) if stencil_form(k, *op, a).is_some()))
                {
                    return Some((ss, i));
                }
                if has_store(std::slice::from_ref(s)) {
                    return None;
                }
            }
            Stmt::If { cond, then, els } => {
                if expr_uniform(cond, uniform) {
                    if let Some(found) = stencil_list(k, then, uniform) {
                        return Some(found);
                    }
                    if let Some(found) = stencil_list(k, els, uniform) {
                        return Some(found);
                    }
                }
                if has_store(std::slice::from_ref(s)) {
                    return None;
                }
            }
            Stmt::For(_) => return None,
        }
    }
    None
}

/// The largest trip count of either filter loop a tiled-conv2d kernel stages in shared memory.
/// With a larger one (or a loop that does not run) the kernel runs its direct lowering, which
/// it carries as well; the choice is the same in every thread.
pub const MAX_FILTER: u32 = 17;

/// At most this many shared windows (groups) in a tiled-conv2d kernel.
pub const MAX_CONV_GROUPS: usize = 2;

/// How a kernel matching the tiled-conv2d blueprint is emitted.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ConvPlan {
    /// The filter's row loop (`ky`): the window is filled before it.
    pub rows: LoopId,
    /// The filter's column loop (`kx`), directly in the row loop's body.
    pub cols: LoopId,
    /// The loads read from the window, grouped by array; `dx`, `dy` are their offsets beside
    /// the filter's (the full address is `(x + kx + dx, y + ky + dy)`).
    pub groups: Vec<StencilGroup>,
    /// Per local: whether threads outside the grid's range must compute it (see
    /// [`needed_for`]). Always uniform.
    pub needed: Vec<bool>,
}

impl ConvPlan {
    /// Whether every thread of a block runs `s`: the row loop (the fill and its barrier),
    /// assignments to needed locals and the `if`s around them.
    pub fn everywhere(&self, s: &Stmt) -> bool {
        runs_everywhere(
            s,
            &self.needed,
            &|s| matches!(s, Stmt::For(f) if f.counter == self.rows),
        )
    }

    /// Rows of a group's window at the largest filter: the block's 16, the filter's reach and
    /// the group's own halo.
    pub fn height(g: &StencilGroup) -> u32 {
        g.height() + MAX_FILTER - 1
    }

    /// Elements per window row at the largest filter.
    pub fn width(g: &StencilGroup) -> u32 {
        g.width() + MAX_FILTER - 1
    }

    /// Elements from one window row to the next.
    pub fn pitch(g: &StencilGroup) -> u32 {
        pitch_for(Self::width(g))
    }
}

/// `addr` as `(x + kx + dx, y + ky + dy)` of a row-major array, for the grid counters `x`, `y`
/// and the filter loops' counters `ky` (`rows`) and `kx` (`cols`): `ky`'s term equals `y`'s
/// (the same coefficient and stride) and `kx`'s equals `x`'s; without those two terms the
/// address has the tiled stencil's form ([`stencil_form`]), whose key and constant it returns.
fn conv_form(
    k: &Kernel,
    op: LoadOp,
    addr: &Addr,
    rows: LoopId,
    cols: LoopId,
) -> Option<(GroupKey, i64, i64)> {
    let (x, y) = (k.grid.first()?.counter, k.grid.get(1)?.counter);
    let one = |v: LoopId| -> Option<AffineTerm> {
        let mut it = addr
            .offset
            .terms
            .iter()
            .filter(|t| t.var == AffineVar::Counter(v) && t.coef != 0);
        let t = *it.next()?;
        it.next().is_none().then_some(t)
    };
    let (ty, tx) = (one(rows)?, one(cols)?);
    let (yt, xt) = (one(y)?, one(x)?);
    if (ty.coef, ty.stride) != (yt.coef, yt.stride) || (tx.coef, tx.stride) != (xt.coef, xt.stride)
    {
        return None;
    }
    let mut rest = addr.clone();
    rest.offset
        .terms
        .retain(|t| t.var != AffineVar::Counter(rows) && t.var != AffineVar::Counter(cols));
    stencil_form(k, op, &rest)
}

/// The tiled-conv2d plan for `k`, if it matches: two or three grid dimensions with x and y as
/// for the tiled stencil (a z dimension is a batch), no operator that can trap, and exactly two
/// sequential loops, `kx` directly in `ky`'s body, each counting up by one from 0 to a bound
/// that is the same in every thread; every `if` on the way to `ky` tests a uniform value and
/// nothing stores before `ky` or inside it; and `kx`'s body has, outside any `if`, loads of
/// the form `(x + kx + dx, y + ky + dy)` ([`conv_form`]; at most [`MAX_CONV_GROUPS`] arrays,
/// the fixed offsets within [`MAX_HALO`]).
///
/// Every thread inside the grid then runs every `(ky, kx)` of the filter, so each window
/// element a fill loads is one such a thread loads, at the address the same arithmetic gives.
pub(crate) fn conv_plan(k: &Kernel) -> Option<ConvPlan> {
    if !(2..=3).contains(&k.grid.len()) || k.trap_flag.is_some() || k.can_trap() || !halo_grid(k) {
        return None;
    }
    let mut fors = Vec::new();
    collect_fors(&k.body, &mut fors);
    let [fy, fx] = fors[..] else {
        return None;
    };
    if !fy
        .body
        .iter()
        .any(|s| matches!(s, Stmt::For(f) if f.counter == fx.counter))
    {
        return None;
    }
    let uniform = uniform_locals(k);
    let zero = |e: &Expr| matches!(e, Expr::Const(c) if matches!(c, Const::I32(0) | Const::I64(0)));
    if [fy, fx]
        .iter()
        .any(|f| f.step != 1 || !zero(&f.start) || !expr_uniform(&f.bound, &uniform))
        || !path_ok(&k.body, &uniform)
    {
        return None;
    }
    let mut forms = LoadForms::default();
    for s in &fx.body {
        // Loads under an `if` may not run for every `(ky, kx)`; stores cannot be here.
        if !matches!(s, Stmt::Set(..)) {
            continue;
        }
        for m in mem_ops(std::slice::from_ref(s)) {
            let MemOp::Load(op, addr) = m else {
                continue;
            };
            if let Some((key, c, shift)) = conv_form(k, op, addr, fy.counter, fx.counter) {
                forms.add(key, op, addr.clone(), c, shift);
            }
        }
    }
    let groups = forms.groups(1)?;
    if groups.is_empty() || groups.len() > MAX_CONV_GROUPS {
        return None;
    }
    let needed = needed_for(
        k,
        &[&fy.start, &fy.bound, &fx.start, &fx.bound],
        &|s| matches!(s, Stmt::For(f) if f.counter == fy.counter),
    );
    if needed.iter().zip(&uniform).any(|(n, u)| *n && !*u) {
        return None;
    }
    Some(ConvPlan {
        rows: fy.counter,
        cols: fx.counter,
        groups,
        needed,
    })
}
