//! **Tiled conv2d** (`tiled-conv2d`): the match (`conv_plan`) and the emission
//! (`Emitter::conv_loop`, and the window pointers the emitter core's `for` loops keep).
//!
//! Grid x and y as for the tiled stencil, and exactly two sequential loops, `kx` directly in
//! `ky`'s body, counting up by one from 0 to uniform bounds (run-time filter sizes), whose loads
//! read a row-major array at `(x + kx + dx, y + ky + dy)`. When both filter sizes are in
//! `[1, MAX_FILTER]`, every thread of a 16 × 16 block first fills a shared window with the
//! whole input the block's loops read (each element with the address a thread inside the grid
//! computes for some `(ky, kx)`), waits at `bar.sync`, and the loops read the window; otherwise
//! the kernel runs the direct loops. See `docs/OFFLOAD.md`, "Tiled conv2d".
//!
//! A window is a stencil tile grown by the filter's reach: the match reuses the tiled
//! stencil's load forms and groups, and the fill its lane limits and the shared tile fill.

use super::stencil::{
    GroupKey, LoadForms, StencilGroup, StencilLoad, halo_grid, pitch_for, stencil_form,
};
use super::{Plan, collect_fors, expr_uniform, needed_for, path_ok, uniform_locals};
use crate::emit::{Emitter, class, is64, sty, uty};
use crate::error::{Error, Result};
use crate::kernel_ir::{
    Addr, AffineTerm, AffineVar, Const, Expr, ForLoop, Kernel, LoadOp, LoopId, MemOp, Stmt,
    ValType, mem_ops,
};
use crate::ptx::{Address, Cmp, Label, Operand, Reg, RegClass, Ty};

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

/// A load a tiled-conv2d kernel reads from its window: at `base + (ky·pitch + kx)·bytes +
/// offset` for the filter counters `ky`, `kx`, where `base` is this thread's own slot.
#[derive(Clone, Debug)]
struct WindowRead {
    op: LoadOp,
    addr: Addr,
    base: Reg,
    offset: i32,
    pitch: u32,
    bytes: u32,
}

/// The emitter's state inside a tiled-conv2d kernel's filter loops (empty elsewhere).
#[derive(Debug, Default)]
pub(crate) struct Window {
    /// The loads read from the window (see [`Emitter::conv_loop`]).
    reads: Vec<WindowRead>,
    /// Per window base (a thread's own slot), the register that holds
    /// `base + (ky·pitch + kx)·bytes` for the counters' current values, set up by the loops and
    /// advanced with them (see [`Emitter::window_pointers`]); a loop's end restores the
    /// pointers of the loops around it.
    pub at: Vec<(Reg, Reg)>,
}

impl Emitter<'_> {
    /// The tiled-conv2d kernel's filter loops, for `plan`, at the row loop `fy`:
    ///
    /// ```text
    /// NY, NX = the row and column loops' bounds (uniform; both start at 0, step 1)
    /// if NY - 1 < MAX_FILTER and NX - 1 < MAX_FILTER (unsigned, so a loop that does not run
    ///     or a larger filter takes the other way):
    ///   per group G (offsets dx in [dx0, dx1], dy in [dy0, dy1]):
    ///     for each window element (r, c) this thread owns (r = %tid.y + 16a, c = %tid.x + 16b):
    ///       for each load L of G, until one fills it:
    ///         rr = r + dy0 − L.dy, cc = c + dx0 − L.dx; when rr < ny + NY − 1 and
    ///         cc < nx + NX − 1 (ny, nx: the block's lanes inside the grid), lane
    ///         (min(cc, nx − 1), min(rr, ny − 1)) loads it at kx = cc − lane.x, ky = rr − lane.y
    ///   bar.sync 0
    ///   inside the grid: the loops, L reading window[%tid.y + ky + L.dy − dy0]
    ///                                              [%tid.x + kx + L.dx − dx0]
    /// else: inside the grid: the loops as the direct lowering runs them
    /// ```
    ///
    /// Every thread inside the grid runs every `(ky, kx)` (the plan's conditions), so the fill
    /// loads only what such a thread loads, at that thread's own address.
    pub(crate) fn conv_loop(&mut self, plan: &ConvPlan, fy: &ForLoop) -> Result<()> {
        let (inactive, [tx, ty]) = self.tiled_state().map(|t| (t.inactive, t.lanes))?;
        let fx = fy
            .body
            .iter()
            .find_map(|s| match s {
                Stmt::For(f) if f.counter == plan.cols => Some(f.clone()),
                _ => None,
            })
            .ok_or_else(|| Error::Bug("conv2d plan without its column loop".into()))?;
        let (direct, after) = (self.b.label(), self.b.label());
        // Each trip count in 32 bits, once it is known to be in [1, MAX_FILTER].
        let mut trips = Vec::new();
        let mut big: Option<Reg> = None;
        for f in [fy, &fx] {
            let bound = self.expr(&f.bound)?;
            let (m, over) = (self.b.reg(class(f.ty)), self.b.reg(RegClass::Pred));
            self.b.sub(sty(f.ty), m, bound, 1i64).setp(
                Cmp::Ge,
                uty(f.ty),
                over,
                m,
                i64::from(MAX_FILTER),
            );
            big = Some(match big {
                None => over,
                Some(b) => {
                    self.b.or_pred(b, b, over);
                    b
                }
            });
            let t32 = if is64(f.ty) {
                let t = self.b.reg(RegClass::B32);
                self.b.cvt(None, Ty::U32, Ty::U64, t, bound);
                t
            } else {
                bound
            };
            trips.push(t32);
        }
        let big = big.ok_or_else(|| Error::Bug("conv2d loops without bounds".into()))?;
        self.b.guard(big).bra(direct);
        let (ny, nx) = (trips[0], trips[1]);
        self.conv_fill(plan, fy, &fx, [nx, ny], [tx, ty])?;
        self.b.bar_sync().guard(inactive).bra(after);
        self.for_loop(fy)?;
        self.window.reads.clear();
        self.b.bra(after).place(direct).guard(inactive).bra(after);
        self.for_loop(fy)?;
        self.b.place(after);
        Ok(())
    }

    /// The tiled-conv2d fill (see [`Emitter::conv_loop`]) for filter trip counts `n` (x, y;
    /// each in `[1, MAX_FILTER]`); sets the window's reads for the loops.
    fn conv_fill(
        &mut self,
        plan: &ConvPlan,
        fy: &ForLoop,
        fx: &ForLoop,
        n: [Reg; 2],
        lanes: [Reg; 2],
    ) -> Result<()> {
        let (gx, gy) = (self.k.grid[0], self.k.grid[1]);
        let limits = [self.stencil_axis(0)?, self.stencil_axis(1)?];
        // Per axis: `lanes inside + trip − 1` (how far the block's loads reach, in elements
        // from its first) and the last lane inside.
        let mut reach = Vec::new();
        for axis in 0..2 {
            let (r, last) = (self.b.reg(RegClass::B32), self.b.reg(RegClass::B32));
            self.b
                .add(Ty::U32, r, limits[axis].0, n[axis])
                .sub(Ty::U32, r, r, 1i64)
                .sub(Ty::U32, last, limits[axis].0, 1i64);
            reach.push((r, last));
        }
        let mut reads = Vec::new();
        for g in &plan.groups {
            let (h, w, pitch, bytes) = (
                ConvPlan::height(g),
                ConvPlan::width(g),
                ConvPlan::pitch(g),
                g.elem_bytes(),
            );
            let ((dx0, _), (dy0, _)) = (g.dx(), g.dy());
            let base = self.fill_tile(
                (h, w, pitch, bytes),
                lanes,
                &g.loads,
                &mut |e: &mut Self, l: &StencilLoad, c: Reg, r: Reg, skip: Label| {
                    let mut at = Vec::new();
                    for (axis, (pos, shift)) in
                        [(c, dx0 - l.dx), (r, dy0 - l.dy)].into_iter().enumerate()
                    {
                        let (rr, out) = (e.b.reg(RegClass::B32), e.b.reg(RegClass::Pred));
                        let (lane, k, under) = (
                            e.b.reg(RegClass::B32),
                            e.b.reg(RegClass::B32),
                            e.b.reg(RegClass::Pred),
                        );
                        let (reach, last) = reach[axis];
                        e.b.add(Ty::S32, rr, pos, shift)
                            .setp(Cmp::Ge, Ty::U32, out, rr, reach)
                            .guard(out)
                            .bra(skip)
                            .setp(Cmp::Lt, Ty::U32, under, rr, last)
                            .selp(Ty::B32, lane, rr, last, under)
                            .sub(Ty::U32, k, rr, lane);
                        at.push((lane, k));
                    }
                    let cx = e.k_plus(gx.ty, limits[0].1, Operand::Reg(at[0].0));
                    let cy = e.k_plus(gy.ty, limits[1].1, Operand::Reg(at[1].0));
                    let kx = e.lane_value(fx.ty, at[0].1);
                    let ky = e.lane_value(fy.ty, at[1].1);
                    Ok(vec![
                        (gx.counter, cx, gx.ty),
                        (gy.counter, cy, gy.ty),
                        (fx.counter, kx, fx.ty),
                        (fy.counter, ky, fy.ty),
                    ])
                },
            )?;
            let read = self.tile_slot(base, lanes[1], lanes[0], pitch, bytes);
            for l in &g.loads {
                let at = (l.dy - dy0) * i64::from(pitch) + (l.dx - dx0);
                reads.push(WindowRead {
                    op: l.op,
                    addr: l.addr.clone(),
                    base: read,
                    offset: (at * i64::from(bytes)) as i32,
                    pitch,
                    bytes,
                });
            }
        }
        self.window.reads = reads;
        Ok(())
    }

    /// A `.u32` lane register `v` as a value of type `t` (`i32` or `i64`; `v` < 2³¹).
    fn lane_value(&mut self, t: ValType, v: Reg) -> Reg {
        if !is64(t) {
            return v;
        }
        let w = self.b.reg(RegClass::B64);
        self.b.cvt(None, Ty::U64, Ty::U32, w, v);
        w
    }

    /// For a tiled-conv2d kernel's filter loop `f` (whose counter starts at 0 and steps by 1),
    /// a pointer per window base that the loop advances: the row loop's starts at the base and
    /// moves one row (`pitch·bytes`) per iteration, the column loop's starts at the row's and
    /// moves one element. Returns them as loop increments; empty for any other loop.
    pub(crate) fn window_pointers(&mut self, f: &ForLoop) -> Vec<(Reg, Vec<Reg>, i64)> {
        let Some((rows, cols)) = self.filter_loops() else {
            return Vec::new();
        };
        let mut bases: Vec<(Reg, u32, u32)> = Vec::new();
        for w in &self.window.reads {
            if !bases.iter().any(|(b, _, _)| *b == w.base) {
                bases.push((w.base, w.pitch, w.bytes));
            }
        }
        let mut out = Vec::new();
        for (base, pitch, bytes) in bases {
            let step = if f.counter == rows {
                i64::from(pitch) * i64::from(bytes)
            } else if f.counter == cols {
                i64::from(bytes)
            } else {
                continue;
            };
            // The column loop starts at its row's pointer; the row loop at the base.
            let from = self
                .window
                .at
                .iter()
                .find(|(b, _)| *b == base)
                .map_or(base, |(_, r)| *r);
            let ptr = self.b.reg(RegClass::B64);
            self.b.mov(Ty::U64, ptr, from);
            self.window.at.retain(|(b, _)| *b != base);
            self.window.at.push((base, ptr));
            out.push((ptr, Vec::new(), step));
        }
        out
    }

    /// A tiled-conv2d kernel's filter loops (row, column), when this is one.
    fn filter_loops(&self) -> Option<(LoopId, LoopId)> {
        match self.tiled.as_ref().map(|t| &t.plan) {
            Some(Plan::Conv(p)) => Some((p.rows, p.cols)),
            _ => None,
        }
    }

    /// Where a window load reads for the filter counters' current values,
    /// `base + (ky·pitch + kx)·bytes + offset`: the column loop's pointer, which
    /// [`Emitter::window_pointers`] keeps there (window reads are only in that loop).
    fn window_slot(&self, w: &WindowRead) -> Result<Address> {
        let (_, cols) = self
            .filter_loops()
            .ok_or_else(|| Error::Bug("window read without a conv2d plan".into()))?;
        match self.window.at.iter().find(|(b, _)| *b == w.base) {
            Some(&(_, at)) if self.counters.iter().any(|(id, _, _)| *id == cols) => Ok(Address {
                base: at,
                offset: w.offset,
            }),
            _ => Err(Error::Bug(
                "window read outside the filter loops' column loop".into(),
            )),
        }
    }

    /// Where a load of `op` at `addr` reads the window, when it is one of the window's loads.
    pub(crate) fn window_read(&self, op: LoadOp, addr: &Addr) -> Result<Option<Address>> {
        match self
            .window
            .reads
            .iter()
            .find(|w| w.op == op && w.addr == *addr)
        {
            Some(w) => self.window_slot(w).map(Some),
            None => Ok(None),
        }
    }
}
