//! **Tiled matmul** (`tiled-matmul`): the match (`matmul_plan`) and the emission
//! (`Emitter::matmul_loop`).
//!
//! A kernel matches when it has two or three grid dimensions, no operator that can trap, and
//! exactly one sequential loop (`k`), counting up by one from a start to a bound that are the
//! same for every thread; every `if` around that loop tests a value that is the same for every
//! thread; nothing stores to memory before that loop or inside it; and inside it at least one
//! load depends on `k` and the x counter but not the y counter, and one on `k` and the y
//! counter but not the x counter (an `A[i][k]`/`B[k][j]` pair, in either orientation). Only
//! loads of the loop body's own assignments count: one under an `if` inside the loop may not
//! run for every `k`.
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

use super::{TILE, collect_fors, expr_uniform, needed_for, path_ok, uniform_locals};
use crate::emit::{AXES, Emitter, bty, class, is64, shared_ty, stmts_size, sty, uty};
use crate::error::{Error, Result};
use crate::kernel_ir::{
    Addr, AffineVar, Ext, ForLoop, Kernel, LoadOp, LoopId, MemOp, Start, Stmt, ValType, mem_ops,
};
use crate::ptx::{Address, Cmp, Operand, Reg, RegClass, Special, Ty};

/// Elements per row of a shared tile: one more than [`TILE`], so that a warp writing a tile
/// column touches 16 different banks.
pub const PITCH: u32 = TILE + 1;

/// At most this many loads are staged in shared memory (each takes `TILE·PITCH` elements).
pub const MAX_STAGED: usize = 8;

/// The largest `k` loop body (see [`stmts_size`]) whose full tiles are unrolled [`TILE`]
/// times.
const MAX_TILE_UNROLL_BODY: usize = 64;

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
pub(crate) struct MatmulPlan {
    /// The sequential loop that is tiled.
    pub k_loop: LoopId,
    /// The loads read from shared memory inside it.
    pub staged: Vec<Staged>,
    /// Per local: whether threads outside the grid's range must compute it too, because the
    /// way to the loop or its bounds depend on it (see [`needed_locals`]). Always uniform.
    pub needed: Vec<bool>,
}

/// The tiled-matmul plan for `k`, if it matches (the conditions are in the module docs).
pub(crate) fn matmul_plan(k: &Kernel) -> Option<MatmulPlan> {
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
    Some(MatmulPlan {
        k_loop: f.counter,
        staged: stage(k, f)?,
        needed,
    })
}

/// The locals every thread must compute to reach loop `f` (see [`needed_for`]).
fn needed_locals(k: &Kernel, f: &ForLoop) -> Vec<bool> {
    needed_for(
        k,
        &[&f.start, &f.bound],
        &|s| matches!(s, Stmt::For(g) if g.counter == f.counter),
    )
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

impl Emitter<'_> {
    /// The tiled `k` loop `f`, for `plan`:
    ///
    /// ```text
    /// n = trip count of k (u64); kbase = start
    /// while n != 0:
    ///   cnt = min(n, TILE)
    ///   per staged load L: tile_L[kl][sl] = L at (k = kbase + kl, axis lane sl)
    ///                      when kl < cnt and that lane is inside the grid
    ///   bar.sync 0
    ///   if inside the grid: for kk in 0..cnt: body with k = kbase + kk, L read from
    ///                       tile_L[kk][own lane]   (unrolled when cnt == TILE)
    ///   bar.sync 0
    ///   n -= cnt; kbase += TILE
    /// ```
    ///
    /// `(kl, sl)` is `(%tid.x, %tid.y)` when L's threads load along k, else `(%tid.y, %tid.x)`;
    /// rows are [`PITCH`] elements long.
    pub(crate) fn matmul_loop(&mut self, plan: &MatmulPlan, f: &ForLoop) -> Result<()> {
        let staged = &plan.staged;
        let (inactive, [tx, ty]) = self.tiled_state().map(|t| (t.inactive, t.lanes))?;
        let start = self.expr(&f.start)?;
        let bound_value = self.expr(&f.bound)?;
        let (kbase, bound) = (self.b.reg(class(f.ty)), self.b.reg(class(f.ty)));
        self.b
            .mov(bty(f.ty), kbase, start)
            .mov(bty(f.ty), bound, bound_value);
        // The trip count: `bound - start` in exact 64-bit arithmetic when the loop runs.
        let (cmp_ty, ext) = if f.signed {
            (sty(f.ty), Ext::Signed)
        } else {
            (uty(f.ty), Ext::Unsigned)
        };
        let runs = self.b.reg(RegClass::Pred);
        self.b.setp(Cmp::Lt, cmp_ty, runs, kbase, bound);
        let (s64, b64) = (self.widen(kbase, f.ty, ext), self.widen(bound, f.ty, ext));
        let n = self.b.reg(RegClass::B64);
        self.b
            .sub(Ty::S64, n, b64, s64)
            .guard_not(runs)
            .mov(Ty::B64, n, 0i64);
        // Per staged load: its tile, the slot this thread fills, where this thread reads, and
        // the lane it loads for.
        let mut lanes: Vec<(usize, bool, Reg, Reg)> = Vec::new();
        let mut slots = Vec::new();
        for st in staged {
            let vt = st.op.value_type();
            let w = if is64(vt) { 8 } else { 4 };
            let tile = self.b.shared_array(TILE * PITCH * w);
            let base = self.b.reg(RegClass::B64);
            self.b.mov(Ty::U64, base, Operand::Shared(tile));
            let (sl, kl) = if st.along_k { (ty, tx) } else { (tx, ty) };
            let (idx, store, read) = (
                self.b.reg(RegClass::B32),
                self.b.reg(RegClass::B64),
                self.b.reg(RegClass::B64),
            );
            let own = if st.axis == 0 { tx } else { ty };
            self.b
                .mad_lo(Ty::U32, idx, kl, i64::from(PITCH), sl)
                .mul_wide(false, store, idx, i64::from(w))
                .add(Ty::S64, store, store, base)
                .mul_wide(false, read, own, i64::from(w))
                .add(Ty::S64, read, read, base);
            if !lanes
                .iter()
                .any(|(a, k, _, _)| *a == st.axis && *k == st.along_k)
            {
                let (c, d) = self.lane_counter(st.axis, sl)?;
                lanes.push((st.axis, st.along_k, c, d));
            }
            slots.push((st.clone(), vt, w, store, read));
        }
        let (head, end, rolled, after) = (
            self.b.label(),
            self.b.label(),
            self.b.label(),
            self.b.label(),
        );
        let (done, short) = (self.b.reg(RegClass::Pred), self.b.reg(RegClass::Pred));
        let (cnt, cnt32) = (self.b.reg(RegClass::B64), self.b.reg(RegClass::B32));
        let tile = i64::from(TILE);
        self.b
            .place(head)
            .setp(Cmp::Eq, Ty::U64, done, n, 0i64)
            .guard(done)
            .bra(end)
            .setp(Cmp::Lt, Ty::U64, short, n, tile)
            .selp(Ty::B64, cnt, n, tile, short)
            .cvt(None, Ty::U32, Ty::U64, cnt32, cnt);
        // Loads that share a lane (the same axis and orientation) share its test and `k`: a
        // thread whose slot is outside the tile or the grid skips them all (its slots are never
        // read).
        for &(axis, along_k, lane_c, lane_out) in &lanes {
            let kl = if along_k { tx } else { ty };
            let bad = self.b.reg(RegClass::Pred);
            let skip = self.b.label();
            self.b
                .setp(Cmp::Ge, Ty::U32, bad, kl, cnt32)
                .or_pred(bad, bad, lane_out)
                .guard(bad)
                .bra(skip);
            let kc = self.k_plus(f.ty, kbase, Operand::Reg(kl));
            let g = self.k.grid[axis];
            let depth = self.counters.len();
            self.counters.push((f.counter, kc, f.ty));
            self.counters.push((g.counter, lane_c, g.ty));
            for (st, vt, _, store, _) in &slots {
                if st.axis != axis || st.along_k != along_k {
                    continue;
                }
                let got = self.load(st.op, &st.addr)?;
                self.b.st_shared(
                    shared_ty(*vt),
                    Address {
                        base: *store,
                        offset: 0,
                    },
                    got,
                );
            }
            self.counters.truncate(depth);
            self.b.place(skip);
        }
        self.b.bar_sync().guard(inactive).bra(after);
        if stmts_size(&f.body) <= MAX_TILE_UNROLL_BODY {
            let partial = self.b.reg(RegClass::Pred);
            self.b
                .setp(Cmp::Lt, Ty::U32, partial, cnt32, tile)
                .guard(partial)
                .bra(rolled);
            for kk in 0..TILE {
                let kc = self.k_plus(f.ty, kbase, Operand::Imm(i64::from(kk)));
                let reads = slots
                    .iter()
                    .map(|(_, _, w, _, read)| Address {
                        base: *read,
                        offset: (kk * PITCH * w) as i32,
                    })
                    .collect();
                self.tile_step(f, kc, staged, reads)?;
            }
            self.b.bra(after);
        }
        // A partial tile (or a body too large to unroll): one `k` at a time.
        let (kk, more) = (self.b.reg(RegClass::B32), self.b.reg(RegClass::Pred));
        let step_head = self.b.label();
        let ptrs: Vec<Reg> = slots.iter().map(|_| self.b.reg(RegClass::B64)).collect();
        self.b.place(rolled).mov(Ty::U32, kk, 0i64);
        for (p, (_, _, _, _, read)) in ptrs.iter().zip(&slots) {
            self.b.mov(Ty::B64, *p, *read);
        }
        self.b
            .place(step_head)
            .setp(Cmp::Ge, Ty::U32, more, kk, cnt32)
            .guard(more)
            .bra(after);
        let kc = self.k_plus(f.ty, kbase, Operand::Reg(kk));
        let reads = ptrs
            .iter()
            .map(|p| Address {
                base: *p,
                offset: 0,
            })
            .collect();
        self.tile_step(f, kc, staged, reads)?;
        for (p, (_, _, w, _, _)) in ptrs.iter().zip(&slots) {
            self.b.add(Ty::S64, *p, *p, i64::from(PITCH * w));
        }
        self.b
            .add(Ty::U32, kk, kk, 1i64)
            .bra(step_head)
            .place(after)
            .bar_sync()
            .sub(Ty::S64, n, n, cnt)
            .add(sty(f.ty), kbase, kbase, tile)
            .bra(head)
            .place(end);
        Ok(())
    }

    /// One iteration of the tiled `k` loop's body with counter value `kc`, the staged loads read
    /// from `reads`.
    fn tile_step(
        &mut self,
        f: &ForLoop,
        kc: Reg,
        staged: &[Staged],
        reads: Vec<Address>,
    ) -> Result<()> {
        self.staged_read = staged
            .iter()
            .zip(reads)
            .map(|(st, a)| (st.op, st.addr.clone(), a))
            .collect();
        let depth = self.counters.len();
        self.counters.push((f.counter, kc, f.ty));
        self.stmts(&f.body)?;
        self.counters.truncate(depth);
        self.staged_read.clear();
        Ok(())
    }

    /// The counter of grid axis `axis` (an index into the grid) for lane `lane` (a `.u32` in
    /// `[0, TILE)`) of this block, and the predicate that says that lane is past the trip count.
    fn lane_counter(&mut self, axis: usize, lane: Reg) -> Result<(Reg, Reg)> {
        let g = *self
            .k
            .grid
            .get(axis)
            .ok_or_else(|| Error::Bug(format!("no grid axis {axis}")))?;
        let (cta, gid, lane64, out) = (
            self.b.reg(RegClass::B32),
            self.b.reg(RegClass::B64),
            self.b.reg(RegClass::B64),
            self.b.reg(RegClass::Pred),
        );
        self.b
            .mov(Ty::U32, cta, Operand::Special(Special::Ctaid(AXES[axis])))
            .mul_wide(false, gid, cta, i64::from(TILE))
            .cvt(None, Ty::U64, Ty::U32, lane64, lane)
            .add(Ty::S64, gid, gid, lane64);
        let trip = self.param(Some(g.trip.0))?;
        let trip64 = if self.scalar_type(g.trip)? == ValType::I32 {
            let t = self.b.reg(RegClass::B64);
            self.b.cvt(None, Ty::U64, Ty::U32, t, trip);
            t
        } else {
            trip
        };
        self.b.setp(Cmp::Ge, Ty::U64, out, gid, trip64);
        let start = match g.start {
            Start::Const(v) => Operand::Imm(v),
            Start::Param(p) => Operand::Reg(self.param(Some(p.0))?),
        };
        let c = self.b.reg(class(g.ty));
        if g.ty == ValType::I32 {
            let g32 = self.b.reg(RegClass::B32);
            self.b
                .cvt(None, Ty::U32, Ty::U64, g32, gid)
                .mad_lo(Ty::S32, c, g32, g.step, start);
        } else {
            self.b.mad_lo(Ty::S64, c, gid, g.step, start);
        }
        Ok((c, out))
    }
}
