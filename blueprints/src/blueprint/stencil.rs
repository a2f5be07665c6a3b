//! **Tiled stencil** (`tiled-stencil`): the match (`stencil_plan`) and the emission
//! (`Emitter::stencil_run`). The tiled conv2d builds on its load forms, tile groups and
//! per-axis lane limits.
//!
//! A kernel with two grid dimensions (constant starts in `[0, 2²⁰]`, step 1; a third is a
//! batch), no sequential loop and no trapping operator, whose first statements that load
//! (reached through uniform `if`s, no store before them) read one row-major array at least
//! twice at fixed offsets `(dx, dy)` from the thread's own element. Before those statements
//! every thread of a 16 × 16 block fills a shared tile with a halo (each element with the
//! address a load of a thread inside the grid computes, only where such a thread needs it),
//! waits at `bar.sync`, and the loads then read the tile. See `docs/OFFLOAD.md`, "Tiled
//! stencil".

use super::{TILE, contains_for, expr_uniform, has_store, needed_for, uniform_locals};
use crate::emit::{AXES, Emitter, class};
use crate::error::{Error, Result};
use crate::kernel_ir::{
    Addr, AffineTerm, AffineVar, Ext, Kernel, LoadOp, MemOp, ParamId, Start, Stmt, ValType, mem_ops,
};
use crate::ptx::{Address, Cmp, Label, Operand, Reg, RegClass, Special, Ty};

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
}

/// How a stencil load's address moves with the y counter: by `cy·zx(P)` bytes per row for a
/// pitch param `P` (a run-time width; `cy` is the element's width), or by a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowStride {
    Param(i64, ParamId),
    Const(i64),
}

/// The group key of a stencil load: array base, the terms besides the x, y and row-shift ones,
/// the element stride along x, the row stride, and the operator.
pub(crate) type GroupKey = (ParamId, Vec<AffineTerm>, i64, RowStride, LoadOp);

/// `addr` as an element of a row-major array, `base + rest + cx·x + y·row + shift + c`, with
/// `cx` the element's width and `rest` free of counters and locals. Returns the group key,
/// `c` and, for a pitch param `P`, the rows `shift` moves by (`cx·dy·zx(P)` terms). `None`
/// when it has another form. [`stencil_offsets`] turns `c` and the shift into offsets.
pub(crate) fn stencil_form(k: &Kernel, op: LoadOp, addr: &Addr) -> Option<(GroupKey, i64, i64)> {
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
pub(crate) struct LoadForms(Vec<(GroupKey, Vec<FormLoad>)>);

/// A load with its constant and row shift.
type FormLoad = (LoadOp, Addr, i64, i64);

impl LoadForms {
    pub(crate) fn add(&mut self, key: GroupKey, op: LoadOp, addr: Addr, c: i64, shift: i64) {
        let load = (op, addr, c, shift);
        match self.0.iter_mut().find(|(g, _)| *g == key) {
            Some((_, g)) if !g.contains(&load) => g.push(load),
            Some(_) => {}
            None => self.0.push((key, vec![load])),
        }
    }

    /// The groups of at least `min` loads, with their offsets ([`stencil_offsets`]); `None`
    /// when one's offsets do not split or reach too far.
    pub(crate) fn groups(&self, min: usize) -> Option<Vec<StencilGroup>> {
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
pub(crate) fn halo_grid(k: &Kernel) -> bool {
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

impl Emitter<'_> {
    /// The statements from `plan`'s anchor on, the first of `ss`: every thread fills the
    /// tiles; then the statements that read them run in the threads inside the grid, reading
    /// the staged loads from shared memory. Returns how many statements of `ss` that took.
    pub(crate) fn stencil_run(&mut self, plan: &StencilPlan, ss: &[Stmt]) -> Result<usize> {
        self.stencil_fill(plan)?;
        let end = plan.span.min(ss.len());
        self.inside_grid(&ss[..end])?;
        self.staged_read.clear();
        Ok(end)
    }

    /// The tiled-stencil fill, run by every thread of the block before the anchor:
    ///
    /// ```text
    /// per group G (a tile of H × W elements, halo dx in [dx0, dx1], dy in [dy0, dy1]):
    ///   for each element (r, c) this thread owns (r = %tid.y + 16a < H, c = %tid.x + 16b < W):
    ///     for each load L of G, until one fills it:
    ///       lane (c + dx0 − L.dx, r + dy0 − L.dy); when it lies in the block and the grid,
    ///       tile[r][c] = L as that lane's thread computes it
    /// bar.sync 0
    /// L then reads tile[%tid.y + L.dy − dy0][%tid.x + L.dx − dx0]
    /// ```
    ///
    /// An element is loaded only by a load some thread inside the grid runs, with that
    /// thread's own address, so no new address is touched.
    fn stencil_fill(&mut self, plan: &StencilPlan) -> Result<()> {
        let [tx, ty] = self.tiled_state()?.lanes;
        let (gx, gy) = (self.k.grid[0], self.k.grid[1]);
        let limits = [self.stencil_axis(0)?, self.stencil_axis(1)?];
        let mut reads = Vec::new();
        for g in &plan.groups {
            let (h, w, pitch, bytes) = (g.height(), g.width(), g.pitch(), g.elem_bytes());
            let ((dx0, _), (dy0, _)) = (g.dx(), g.dy());
            let base = self.fill_tile(
                (h, w, pitch, bytes),
                [tx, ty],
                &g.loads,
                &mut |e: &mut Self, l: &StencilLoad, c: Reg, r: Reg, skip: Label| {
                    let (lx, ly) = (e.b.reg(RegClass::B32), e.b.reg(RegClass::B32));
                    let (bad, off_y) = (e.b.reg(RegClass::Pred), e.b.reg(RegClass::Pred));
                    e.b.add(Ty::S32, lx, c, dx0 - l.dx)
                        .add(Ty::S32, ly, r, dy0 - l.dy)
                        .setp(Cmp::Ge, Ty::U32, bad, lx, limits[0].0)
                        .setp(Cmp::Ge, Ty::U32, off_y, ly, limits[1].0)
                        .or_pred(bad, bad, off_y)
                        .guard(bad)
                        .bra(skip);
                    let cx = e.k_plus(gx.ty, limits[0].1, Operand::Reg(lx));
                    let cy = e.k_plus(gy.ty, limits[1].1, Operand::Reg(ly));
                    Ok(vec![(gx.counter, cx, gx.ty), (gy.counter, cy, gy.ty)])
                },
            )?;
            let read = self.tile_slot(base, ty, tx, pitch, bytes);
            for l in &g.loads {
                let at = (l.dy - dy0) * i64::from(pitch) + (l.dx - dx0);
                reads.push((
                    l.op,
                    l.addr.clone(),
                    Address {
                        base: read,
                        offset: (at * i64::from(bytes)) as i32,
                    },
                ));
            }
        }
        self.b.bar_sync();
        self.staged_read = reads;
        Ok(())
    }

    /// For the tiled stencil's fill (and the tiled conv2d's, see [`halo_grid`]), along grid axis
    /// `axis`: how many lanes of this block lie inside the grid (`min(16, trip − 16·ctaid)`, a
    /// `.u32`; at least 1 in a launched block) and the counter of lane 0 (`start + 16·ctaid`;
    /// the plan requires step 1 and a constant start). A lane `l` below the first is inside the
    /// block and the grid, and its counter is the second plus `l` (see [`Emitter::k_plus`]).
    pub(crate) fn stencil_axis(&mut self, axis: usize) -> Result<(Reg, Reg)> {
        let g = *self
            .k
            .grid
            .get(axis)
            .ok_or_else(|| Error::Bug(format!("no grid axis {axis}")))?;
        let Start::Const(start) = g.start else {
            return Err(Error::Bug("a stencil grid starting at a param".into()));
        };
        let cta = self.b.reg(RegClass::B32);
        self.b
            .mov(Ty::U32, cta, Operand::Special(Special::Ctaid(AXES[axis])));
        let trip = self.param(Some(g.trip.0))?;
        let (short, lim) = (self.b.reg(RegClass::Pred), self.b.reg(RegClass::B32));
        let base = self.b.reg(class(g.ty));
        if self.scalar_type(g.trip)? == ValType::I32 {
            // A block exists only below ceil(trip / 16) <= 2^28, so 16·ctaid fits 32 bits.
            let (first, rest) = (self.b.reg(RegClass::B32), self.b.reg(RegClass::B32));
            self.b
                .mul_lo(Ty::U32, first, cta, i64::from(TILE))
                .sub(Ty::U32, rest, trip, first)
                .setp(Cmp::Lt, Ty::U32, short, rest, i64::from(TILE))
                .selp(Ty::B32, lim, rest, i64::from(TILE), short);
            if g.ty == ValType::I32 {
                self.b.add(Ty::S32, base, first, start);
            } else {
                let f64_ = self.b.reg(RegClass::B64);
                self.b
                    .cvt(None, Ty::U64, Ty::U32, f64_, first)
                    .add(Ty::S64, base, f64_, start);
            }
            return Ok((lim, base));
        }
        let (first, rest) = (self.b.reg(RegClass::B64), self.b.reg(RegClass::B64));
        self.b
            .mul_wide(false, first, cta, i64::from(TILE))
            .sub(Ty::S64, rest, trip, first)
            .setp(Cmp::Lt, Ty::U64, short, rest, i64::from(TILE))
            .selp(Ty::B64, rest, rest, i64::from(TILE), short)
            .cvt(None, Ty::U32, Ty::U64, lim, rest);
        if g.ty == ValType::I32 {
            let f32_ = self.b.reg(RegClass::B32);
            self.b
                .cvt(None, Ty::U32, Ty::U64, f32_, first)
                .add(Ty::S32, base, f32_, start);
        } else {
            self.b.add(Ty::S64, base, first, start);
        }
        Ok((lim, base))
    }
}
