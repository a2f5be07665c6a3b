//! What the three tiled blueprints share when emitting: their state in the emitter
//! ([`Tiled`]), the driver that runs each statement in every thread of a block or only in the
//! threads inside the grid's range ([`Emitter::tiled_stmts`]), and the fill of a shared tile
//! (used by the tiled stencil and the tiled conv2d).
//!
//! Each blueprint's own emission (the matmul's tiled `k` loop, the stencil's fill, the conv2d's
//! filter loops) is in its module; the driver hands it the statement its plan targets.

use super::stencil::StencilLoad;
use super::{Plan, TILE};
use crate::emit::{Emitter, class, shared_ty, sty};
use crate::error::{Error, Result};
use crate::kernel_ir::{Addr, LoadOp, LoopId, Stmt, ValType};
use crate::ptx::{Address, Axis, Cmp, Label, Operand, Reg, RegClass, Special, Ty};

/// For [`Emitter::fill_tile`]: given a load and a tile element's column and row, emits the test
/// that branches to the label when the load cannot fill it, and returns the counters to load it
/// with.
pub(crate) type FillLane<'a, 'k> = dyn FnMut(&mut Emitter<'k>, &StencilLoad, Reg, Reg, Label) -> Result<Vec<(LoopId, Reg, ValType)>>
    + 'a;

/// State of a kernel emitted with a tiled blueprint.
#[derive(Debug)]
pub(crate) struct Tiled {
    /// The plan the kernel is emitted with.
    pub plan: Plan,
    /// True in threads outside the grid's range: they load tiles and wait at barriers, and
    /// skip everything else.
    pub inactive: Reg,
    /// `%tid.x`, `%tid.y`.
    pub lanes: [Reg; 2],
}

impl<'k> Emitter<'k> {
    /// The body of a kernel emitted with `plan`, in blocks of `TILE × TILE` threads; `outside`
    /// says a thread is outside the grid's range (no thread left early).
    pub(crate) fn tiled_body(&mut self, plan: Plan, outside: Option<Reg>) -> Result<()> {
        let inactive = outside.ok_or_else(|| Error::Bug("tiled kernel without a grid".into()))?;
        let (tx, ty) = (self.b.reg(RegClass::B32), self.b.reg(RegClass::B32));
        self.b
            .reqntid([TILE, TILE, 1])
            .mov(Ty::U32, tx, Operand::Special(Special::Tid(Axis::X)))
            .mov(Ty::U32, ty, Operand::Special(Special::Tid(Axis::Y)));
        self.tiled = Some(Tiled {
            plan,
            inactive,
            lanes: [tx, ty],
        });
        let k = self.k;
        self.tiled_stmts(&k.body)
    }

    /// The tiled state; a bug in a kernel emitted without a blueprint.
    pub(crate) fn tiled_state(&self) -> Result<&Tiled> {
        self.tiled
            .as_ref()
            .ok_or_else(|| Error::Bug("tiled emission of an untiled kernel".into()))
    }

    /// Statements of a tiled kernel: the plan's target (see [`Plan::is_target`]), the
    /// assignments that decide the way to it and the `if`s around them run in every thread (so
    /// that every thread reaches the target's barriers alike); every other run of statements is
    /// skipped by threads outside the grid's range.
    pub(crate) fn tiled_stmts(&mut self, ss: &[Stmt]) -> Result<()> {
        let mut i = 0;
        while i < ss.len() {
            if self.runs_everywhere(&ss[i]) {
                i += match &ss[i] {
                    s if self.tiled_state()?.plan.is_target(s) => self.tiled_target(&ss[i..])?,
                    Stmt::If { cond, then, els } => {
                        self.if_else(cond, then, els, true)?;
                        1
                    }
                    other => {
                        self.stmt(other)?;
                        1
                    }
                };
                continue;
            }
            let j = (i..ss.len())
                .find(|&j| self.runs_everywhere(&ss[j]))
                .unwrap_or(ss.len());
            self.inside_grid(&ss[i..j])?;
            i = j;
        }
        Ok(())
    }

    /// The plan's target, the first of `ss`, emitted by its blueprint; returns how many
    /// statements of `ss` that took.
    fn tiled_target(&mut self, ss: &[Stmt]) -> Result<usize> {
        let plan = self.tiled_state()?.plan.clone();
        match (&plan, &ss[0]) {
            (Plan::Matmul(p), Stmt::For(f)) => self.matmul_loop(p, f).map(|()| 1),
            (Plan::Conv(p), Stmt::For(f)) => self.conv_loop(p, f).map(|()| 1),
            (Plan::Stencil(p), _) => self.stencil_run(p, ss),
            _ => Err(Error::Bug("a tiled target that is not a loop".into())),
        }
    }

    /// Whether every thread of the block runs `s` (see [`Plan::everywhere`]).
    fn runs_everywhere(&self, s: &Stmt) -> bool {
        self.tiled.as_ref().is_some_and(|t| t.plan.everywhere(s))
    }

    /// Statements that only the threads inside the grid's range run.
    pub(crate) fn inside_grid(&mut self, ss: &[Stmt]) -> Result<()> {
        let skip = self.b.label();
        let inactive = self.tiled_state()?.inactive;
        self.b.guard(inactive).bra(skip);
        self.stmts(ss)?;
        self.b.place(skip);
        Ok(())
    }

    /// Where a load of `op` at `addr` reads shared memory instead: a staged load (a
    /// tiled-matmul tile step, the statements after a tiled-stencil fill) or a window load (a
    /// tiled-conv2d kernel's filter loops).
    pub(crate) fn shared_read(&self, op: LoadOp, addr: &Addr) -> Result<Option<Address>> {
        if let Some(&(_, _, a)) = self
            .staged_read
            .iter()
            .find(|(o, ad, _)| *o == op && ad == addr)
        {
            return Ok(Some(a));
        }
        self.window_read(op, addr)
    }

    /// Fills a new shared tile of `h × w` elements (rows `pitch` elements of `bytes` apart) and
    /// returns its base address: this thread takes the elements `(r, c) = (lanes.y + 16a, lanes.x + 16b)` inside
    /// the tile, and for each tries `loads` in order. For a load, `lane` emits the test that
    /// branches to its `skip` label when the load cannot fill `(r, c)`, and returns the
    /// counters to compute it with (a lane's and, for conv2d, an iteration's); the first load
    /// that can fills the slot. An element no load can fill stays unwritten.
    pub(crate) fn fill_tile(
        &mut self,
        (h, w, pitch, bytes): (u32, u32, u32, u32),
        lanes: [Reg; 2],
        loads: &[StencilLoad],
        lane: &mut FillLane<'_, 'k>,
    ) -> Result<Reg> {
        let arr = self.b.shared_array(h * pitch * bytes);
        let base = self.b.reg(RegClass::B64);
        self.b.mov(Ty::U64, base, Operand::Shared(arr));
        for a in 0..h.div_ceil(TILE) {
            // Rows `tid.y + 16a`; a band that can run past the tile skips as a whole.
            let row_end = self.b.label();
            let r = self.tile_band(lanes[1], a, h, row_end);
            for bcol in 0..w.div_ceil(TILE) {
                let next = self.b.label();
                let c = self.tile_band(lanes[0], bcol, w, next);
                let slot = self.tile_slot(base, r, c, pitch, bytes);
                for l in loads {
                    let skip = self.b.label();
                    let counters = lane(self, l, c, r, skip)?;
                    let depth = self.counters.len();
                    self.counters.extend(counters);
                    let got = self.load(l.op, &l.addr)?;
                    self.counters.truncate(depth);
                    self.b
                        .st_shared(
                            shared_ty(l.op.value_type()),
                            Address {
                                base: slot,
                                offset: 0,
                            },
                            got,
                        )
                        .bra(next)
                        .place(skip);
                }
                self.b.place(next);
            }
            self.b.place(row_end);
        }
        Ok(base)
    }

    /// Lane `lane` plus `16·band` (a tile row or column this thread fills), branching to `skip`
    /// when a band that can run past the tile's `len` does for this lane.
    fn tile_band(&mut self, lane: Reg, band: u32, len: u32, skip: Label) -> Reg {
        if band == 0 {
            return lane;
        }
        let v = self.b.reg(RegClass::B32);
        self.b.add(Ty::U32, v, lane, i64::from(band * TILE));
        if (band + 1) * TILE > len {
            let out = self.b.reg(RegClass::Pred);
            self.b
                .setp(Cmp::Ge, Ty::U32, out, v, i64::from(len))
                .guard(out)
                .bra(skip);
        }
        v
    }

    /// The shared address of element `(row, col)` of a tile at `base` with rows `pitch`
    /// elements of `bytes` apart.
    pub(crate) fn tile_slot(
        &mut self,
        base: Reg,
        row: Reg,
        col: Reg,
        pitch: u32,
        bytes: u32,
    ) -> Reg {
        let (idx, slot) = (self.b.reg(RegClass::B32), self.b.reg(RegClass::B64));
        self.b
            .mad_lo(Ty::U32, idx, row, i64::from(pitch), col)
            .mul_wide(false, slot, idx, i64::from(bytes))
            .add(Ty::S64, slot, slot, base);
        slot
    }

    /// `kbase + d` in the counter's type `t` (`d` a `.u32` lane register or a small constant):
    /// a `k` of a tile, or a stencil lane's counter from lane 0's.
    pub(crate) fn k_plus(&mut self, t: ValType, kbase: Reg, d: Operand) -> Reg {
        let kc = self.b.reg(class(t));
        match (t, d) {
            (ValType::I64, Operand::Reg(r)) => {
                let w = self.b.reg(RegClass::B64);
                self.b
                    .cvt(None, Ty::U64, Ty::U32, w, r)
                    .add(Ty::S64, kc, kbase, w);
            }
            _ => {
                self.b.add(sty(t), kc, kbase, d);
            }
        }
        kc
    }
}
