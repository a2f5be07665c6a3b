//! The emitter: KernelIR → PTX text with exact Wasm semantics.
//!
//! Every rule it follows, and why, is in `docs/OFFLOAD.md` ("Float and integer semantics in
//! PTX"); in short: float arithmetic always carries `.rn` (never contracted into FMA), nothing
//! carries `.ftz`, division and square root are IEEE (`div.rn`, `sqrt.rn`), min/max propagate
//! NaN and order −0 below +0, `abs`/`neg`/`copysign` are bit operations, shift counts are masked
//! like Wasm's, float→int truncation is range-checked (trapping) or NaN-fixed (saturating), and
//! every trapping operator sets the trap flag and ends the thread.
//!
//! The emitter verifies its input first and lowers only through the typed builder in `ptx.rs`;
//! it must never format PTX text itself and never emit an instruction whose result can differ
//! from the Wasm operator it stands for.

use crate::blueprint::{
    ConvPlan, MAX_FILTER, PITCH, StencilLoad, StencilPlan, TILE, TiledPlan, conv_plan,
    stencil_plan, tiled_plan,
};
use crate::error::{Error, Result};
use crate::kernel_ir::{
    Addr, AffineTerm, AffineVar, BinKind, BinOp, Const, Expr, Ext, ForLoop, GridDim, Kernel,
    LoadOp, LoopId, MemOp, ParamId, ParamKind, Start, Stmt, StoreOp, UnKind, UnOp, ValType,
    mem_ops, verify,
};
use crate::ptx::{
    Address, Axis, Cmp, Entry, Label, Module, Operand, PtxBuilder, PtxVersion, Reg, RegClass, Rnd,
    Special, Target, Ty,
};

/// How to emit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmitOptions {
    /// The `.target` (default `sm_75`); it picks instructions (`min.NaN` needs sm_80).
    pub target: Target,
    /// Overrides the `.version` (default: [`Target::default_ptx_version`]).
    pub ptx_version: Option<PtxVersion>,
    /// Emit the direct lowering even when a blueprint matches (see [`crate::blueprint`]).
    pub generic_only: bool,
}

impl EmitOptions {
    /// Options for `target` with its default PTX version.
    pub fn for_target(target: Target) -> Self {
        EmitOptions {
            target,
            ptx_version: None,
            generic_only: false,
        }
    }
}

/// Verifies `kernel` and emits a PTX module holding it as one `.visible .entry`.
pub fn emit_ptx(kernel: &Kernel, opts: &EmitOptions) -> Result<String> {
    Ok(emit_module(kernel, opts)?.to_string())
}

/// Like [`emit_ptx`], returning the module before printing.
pub fn emit_module(kernel: &Kernel, opts: &EmitOptions) -> Result<Module> {
    verify(kernel)?;
    let shape = if opts.generic_only {
        None
    } else if let Some(plan) = tiled_plan(kernel) {
        Some(Shape::Matmul(plan))
    } else if let Some(plan) = stencil_plan(kernel) {
        Some(Shape::Stencil(plan))
    } else {
        conv_plan(kernel).map(Shape::Conv)
    };
    let entry = Emitter::new(kernel, opts.target).run(shape)?;
    Ok(Module {
        version: opts
            .ptx_version
            .unwrap_or_else(|| opts.target.default_ptx_version()),
        target: opts.target,
        entries: vec![entry],
    })
}

fn class(t: ValType) -> RegClass {
    match t {
        ValType::I32 => RegClass::B32,
        ValType::I64 => RegClass::B64,
        ValType::F32 => RegClass::F32,
        ValType::F64 => RegClass::F64,
    }
}

/// The signed, unsigned and bit-size integer types of `t`'s width.
fn sty(t: ValType) -> Ty {
    if is64(t) { Ty::S64 } else { Ty::S32 }
}
fn uty(t: ValType) -> Ty {
    if is64(t) { Ty::U64 } else { Ty::U32 }
}
fn bty(t: ValType) -> Ty {
    if is64(t) { Ty::B64 } else { Ty::B32 }
}
/// The type a value of `t` is kept in shared memory with (its full register width).
fn shared_ty(t: ValType) -> Ty {
    match t {
        ValType::I32 => Ty::U32,
        ValType::I64 => Ty::U64,
        ValType::F32 => Ty::F32,
        ValType::F64 => Ty::F64,
    }
}

fn int_class(t: ValType) -> RegClass {
    if is64(t) {
        RegClass::B64
    } else {
        RegClass::B32
    }
}
fn is64(t: ValType) -> bool {
    matches!(t, ValType::I64 | ValType::F64)
}
/// The float type of `t` (`t` is `f32` or `f64`).
fn fty(t: ValType) -> Ty {
    if is64(t) { Ty::F64 } else { Ty::F32 }
}
/// The natural `mov` type of a value.
fn mov_ty(t: ValType) -> Ty {
    match t {
        ValType::I32 => Ty::B32,
        ValType::I64 => Ty::B64,
        ValType::F32 => Ty::F32,
        ValType::F64 => Ty::F64,
    }
}
fn float_imm(t: ValType, v: f64) -> Operand {
    if is64(t) {
        Operand::F64(v.to_bits())
    } else {
        Operand::F32((v as f32).to_bits())
    }
}
/// The sign bit and the magnitude mask of a float's width, as immediates.
fn sign_mask(t: ValType) -> (i64, i64) {
    if is64(t) {
        (i64::MIN, i64::MAX)
    } else {
        (i64::from(i32::MIN), i64::from(i32::MAX))
    }
}
fn canonical_nan(t: ValType) -> Operand {
    if is64(t) {
        Operand::F64(0x7FF8_0000_0000_0000)
    } else {
        Operand::F32(0x7FC0_0000)
    }
}

/// `lo (<= or <) x < hi`: the values a trapping truncation accepts. Each bound is a power of
/// two or −1, exact in both float formats; the lower bound is inclusive exactly when the
/// largest float below the first invalid value is itself the integer minimum.
fn trunc_bounds(src: ValType, dst: ValType, signed: bool) -> (f64, bool, f64) {
    match (dst, signed) {
        (ValType::I32, true) if src == ValType::F64 => (-2_147_483_649.0, false, 2_147_483_648.0),
        (ValType::I32, true) => (-2_147_483_648.0, true, 2_147_483_648.0),
        (ValType::I32, false) => (-1.0, false, 4_294_967_296.0),
        (_, true) => (
            -9_223_372_036_854_775_808.0,
            true,
            9_223_372_036_854_775_808.0,
        ),
        (_, false) => (-1.0, false, 18_446_744_073_709_551_616.0),
    }
}

const AXES: [Axis; 3] = [Axis::X, Axis::Y, Axis::Z];

/// Whether `v` is a 32-bit value of the given signedness (so `mul.wide` takes it exactly).
fn fits_ext(v: i64, signed: bool) -> bool {
    if signed {
        i32::try_from(v).is_ok()
    } else {
        u32::try_from(v).is_ok()
    }
}

/// The most addresses one `for` loop keeps in registers (each costs two registers, and one or
/// two more for a run-time increment); the rest are computed where they are used.
const MAX_LOOP_POINTERS: usize = 8;

/// How many iterations an unrolled loop body holds.
const UNROLL: i64 = 8;

/// The largest `k` loop body (see [`stmts_size`]) whose full tiles of the tiled-matmul
/// blueprint are unrolled [`TILE`] times.
const MAX_TILE_UNROLL_BODY: usize = 64;

/// The largest loop body (in statements and expression nodes, see [`stmts_size`]) that is
/// unrolled.
const MAX_UNROLL_BODY: usize = 32;

/// Whether `ss` holds a `for` loop.
fn has_loop(ss: &[Stmt]) -> bool {
    ss.iter().any(|s| match s {
        Stmt::For(_) => true,
        Stmt::If { then, els, .. } => has_loop(then) || has_loop(els),
        Stmt::Set(..) | Stmt::Store(..) => false,
    })
}

/// Statements plus expression nodes in `ss`: a measure of the code one copy of it becomes.
fn stmts_size(ss: &[Stmt]) -> usize {
    ss.iter()
        .map(|s| match s {
            Stmt::Set(_, e) => 1 + expr_size(e),
            Stmt::Store(_, _, e) => 1 + expr_size(e),
            Stmt::If { cond, then, els } => {
                1 + expr_size(cond) + stmts_size(then) + stmts_size(els)
            }
            Stmt::For(f) => 1 + expr_size(&f.start) + expr_size(&f.bound) + stmts_size(&f.body),
        })
        .sum()
}

fn expr_size(e: &Expr) -> usize {
    match e {
        Expr::Const(_) | Expr::Param(_) | Expr::Counter(_) | Expr::Local(_) | Expr::Load(..) => 1,
        Expr::Unary(_, a) => 1 + expr_size(a),
        Expr::Binary(_, a, b) => 1 + expr_size(a) + expr_size(b),
        Expr::Select { cond, then, els } => 1 + expr_size(cond) + expr_size(then) + expr_size(els),
    }
}

/// `base + Σ terms` of an address (its constant excluded), held in a register by a `for`
/// loop: set on loop entry, advanced at the end of every iteration, so that the body reads
/// the current value instead of recomputing it.
#[derive(Debug)]
struct LoopPointer {
    base: ParamId,
    terms: Vec<AffineTerm>,
    reg: Reg,
}

/// How a loop pointer advances per iteration: `add` plus `Σ factor·ext(stride)`.
#[derive(Debug, Default)]
struct Increment {
    add: i64,
    strided: Vec<(i64, ParamId, Ext)>,
}

struct Emitter<'k> {
    k: &'k Kernel,
    target: Target,
    b: PtxBuilder,
    /// Per param: the global address (pointers) or the value (scalars).
    params: Vec<Reg>,
    counters: Vec<(LoopId, Reg, ValType)>,
    /// Grid counters known to lie in `[0, 2³¹)` (so `sx(c) = zx(c)`), see [`Emitter::grid_dim`].
    nonneg: Vec<LoopId>,
    /// Addresses kept in registers by enclosing `for` loops (see [`Emitter::for_loop`]),
    /// innermost last.
    pointers: Vec<LoopPointer>,
    locals: Vec<Reg>,
    exit: Label,
    trap: Label,
    trap_used: bool,
    /// The tiled-matmul blueprint's plan and state, when the kernel is emitted with it.
    tiled: Option<Tiled>,
    /// Inside a tile's loop body: the shared-memory address each staged load reads.
    staged_read: Vec<(LoadOp, Addr, Address)>,
    /// Inside a tiled-conv2d kernel's filter loops: the loads read from a window (see
    /// [`Emitter::conv_loop`]).
    window_read: Vec<WindowRead>,
    /// Inside a tiled-conv2d kernel's filter loops: per window base (a thread's own slot), the
    /// register that holds `base + (ky·pitch + kx)·bytes` for the counters' current values,
    /// set up by the loops and advanced with them (see [`Emitter::window_pointers`]).
    window_at: Vec<(Reg, Reg)>,
}

/// For [`Emitter::fill_tile`]: given a load and a tile element's column and row, emits the test
/// that branches to the label when the load cannot fill it, and returns the counters to load it
/// with.
type FillLane<'a, 'k> = dyn FnMut(&mut Emitter<'k>, &StencilLoad, Reg, Reg, Label) -> Result<Vec<(LoopId, Reg, ValType)>>
    + 'a;

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

/// The plan of a kernel emitted with a blueprint.
#[derive(Debug)]
enum Shape {
    Matmul(TiledPlan),
    Stencil(StencilPlan),
    Conv(ConvPlan),
}

impl Shape {
    fn everywhere(&self, s: &Stmt) -> bool {
        match self {
            Shape::Matmul(p) => p.everywhere(s),
            Shape::Stencil(p) => p.everywhere(s),
            Shape::Conv(p) => p.everywhere(s),
        }
    }
}

/// State of a kernel emitted with a tiled blueprint (see [`Emitter::tiled_loop`] and
/// [`Emitter::stencil_fill`]).
#[derive(Debug)]
struct Tiled {
    plan: Shape,
    /// True in threads outside the grid's range: they load tiles and wait at barriers, and
    /// skip everything else.
    inactive: Reg,
    /// `%tid.x`, `%tid.y`.
    lanes: [Reg; 2],
}

impl<'k> Emitter<'k> {
    fn new(k: &'k Kernel, target: Target) -> Self {
        let mut b = PtxBuilder::new();
        let exit = b.label();
        let trap = b.label();
        Emitter {
            k,
            target,
            b,
            params: Vec::new(),
            counters: Vec::new(),
            nonneg: Vec::new(),
            pointers: Vec::new(),
            locals: Vec::new(),
            exit,
            trap,
            trap_used: false,
            tiled: None,
            staged_read: Vec::new(),
            window_read: Vec::new(),
            window_at: Vec::new(),
        }
    }

    /// The entry, with a blueprint when `tiled` is its plan for this kernel.
    fn run(mut self, tiled: Option<Shape>) -> Result<Entry> {
        let mut param_tys = Vec::new();
        for (i, p) in self.k.params.iter().enumerate() {
            let i = i as u32;
            match p.kind {
                ParamKind::Ptr => {
                    let raw = self.b.reg(RegClass::B64);
                    let global = self.b.reg(RegClass::B64);
                    self.b.ld_param(Ty::U64, raw, i).cvta_to_global(global, raw);
                    self.params.push(global);
                    param_tys.push(Ty::U64);
                }
                ParamKind::Scalar(t) => {
                    let ty = match t {
                        ValType::I32 => Ty::U32,
                        ValType::I64 => Ty::U64,
                        other => fty(other),
                    };
                    let r = self.b.reg(class(t));
                    self.b.ld_param(ty, r, i);
                    self.params.push(r);
                    param_tys.push(ty);
                }
            }
        }
        let exit_early = tiled.is_none();
        let mut outside: Option<Reg> = None;
        for (g, axis) in self.k.grid.iter().zip(AXES) {
            let done = self.grid_dim(*g, axis, exit_early)?;
            if exit_early {
                continue;
            }
            outside = Some(match outside {
                None => done,
                Some(o) => {
                    let d = self.b.reg(RegClass::Pred);
                    self.b.or_pred(d, o, done);
                    d
                }
            });
        }
        let k = self.k;
        self.locals = k.locals.iter().map(|t| self.b.reg(class(*t))).collect();
        if let Some(plan) = tiled {
            let inactive =
                outside.ok_or_else(|| Error::Bug("tiled kernel without a grid".into()))?;
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
            self.tiled_stmts(&k.body)?;
        } else {
            self.stmts(&k.body)?;
        }
        self.b.place(self.exit).ret();
        if self.trap_used {
            let flag = self.param(self.k.trap_flag.map(|p| p.0))?;
            let one = self.b.reg(RegClass::B32);
            self.b
                .place(self.trap)
                .mov(Ty::B32, one, 1)
                .st_global(
                    Ty::U32,
                    Address {
                        base: flag,
                        offset: 0,
                    },
                    one,
                )
                .ret();
        }
        self.b.finish(&self.k.name, &param_tys)
    }

    fn param(&self, p: Option<u32>) -> Result<Reg> {
        p.and_then(|p| self.params.get(p as usize).copied())
            .ok_or_else(|| Error::Bug(format!("param {p:?} has no register")))
    }

    /// `counter = start + (ctaid * ntid + tid) * step`, after leaving when the index reaches
    /// the trip count (compared as unsigned) if `exit_early`; returns the predicate that says
    /// the index is past it.
    ///
    /// Along x the index can pass 2³² (`%nctaid.x` goes to 2³¹−1), so it is computed and
    /// compared in 64 bits. Along y and z it cannot (PTX ISA, special registers: `%nctaid.y/z`
    /// ≤ 65535, `%ntid.y` ≤ 1024, `%ntid.z` ≤ 64, so the index is below 2²⁶), and 32 bits
    /// are exact.
    fn grid_dim(&mut self, g: GridDim, axis: Axis, exit_early: bool) -> Result<Reg> {
        let GridDim {
            counter: c,
            ty,
            start,
            step,
            trip,
        } = g;
        let trip = trip.0;
        let b = &mut self.b;
        let (cta, ntid, tid) = (
            b.reg(RegClass::B32),
            b.reg(RegClass::B32),
            b.reg(RegClass::B32),
        );
        b.mov(Ty::U32, cta, Operand::Special(Special::Ctaid(axis)))
            .mov(Ty::U32, ntid, Operand::Special(Special::Ntid(axis)))
            .mov(Ty::U32, tid, Operand::Special(Special::Tid(axis)));
        let trip_reg = self.param(Some(trip))?;
        let trip32 = matches!(
            self.k.params.get(trip as usize).map(|p| p.kind),
            Some(ParamKind::Scalar(ValType::I32))
        );
        let done = self.b.reg(RegClass::Pred);
        // The index in 32 bits (along y and z) or in 64 (along x).
        let (g32, gid): (Option<Reg>, Option<Reg>) = if axis == Axis::X {
            let (prod, tid64, gid) = (
                self.b.reg(RegClass::B64),
                self.b.reg(RegClass::B64),
                self.b.reg(RegClass::B64),
            );
            self.b
                .mul_wide_u32(prod, cta, ntid)
                .cvt(None, Ty::U64, Ty::U32, tid64, tid)
                .add(Ty::S64, gid, prod, tid64);
            let trip64 = if trip32 {
                let t = self.b.reg(RegClass::B64);
                self.b.cvt(None, Ty::U64, Ty::U32, t, trip_reg);
                t
            } else {
                trip_reg
            };
            self.b.setp(Cmp::Ge, Ty::U64, done, gid, trip64);
            (None, Some(gid))
        } else {
            let g32 = self.b.reg(RegClass::B32);
            self.b.mad_lo(Ty::U32, g32, cta, ntid, tid);
            if trip32 {
                self.b.setp(Cmp::Ge, Ty::U32, done, g32, trip_reg);
            } else {
                let g64 = self.b.reg(RegClass::B64);
                self.b.cvt(None, Ty::U64, Ty::U32, g64, g32).setp(
                    Cmp::Ge,
                    Ty::U64,
                    done,
                    g64,
                    trip_reg,
                );
            }
            (Some(g32), None)
        };
        if exit_early {
            self.b.guard(done).bra(self.exit);
        }
        let g32 = match (g32, gid) {
            (Some(g), _) => g,
            (None, Some(gid)) => {
                let g = self.b.reg(RegClass::B32);
                self.b.cvt(None, Ty::U32, Ty::U64, g, gid);
                g
            }
            (None, None) => return Err(Error::Bug("grid index has no register".into())),
        };
        let start_op = match start {
            Start::Const(v) => Operand::Imm(v),
            Start::Param(p) => Operand::Reg(self.param(Some(p.0))?),
        };
        let counter = self.b.reg(class(ty));
        if ty == ValType::I32 {
            // Along y and z the index is at most 65534·1024 + 1023 (y) or 65534·64 + 63 (z):
            // with a constant start, the counter's range is known, and when it lies in
            // [0, 2³¹) its sign and zero extensions agree.
            let max_index: i128 = match axis {
                Axis::X => -1,
                Axis::Y => 65_534 * 1024 + 1023,
                Axis::Z => 65_534 * 64 + 63,
            };
            if let (Start::Const(s), true) = (start, max_index >= 0) {
                let last = i128::from(s) + max_index * i128::from(step);
                let range = 0..=i128::from(i32::MAX);
                if range.contains(&i128::from(s)) && range.contains(&last) {
                    self.nonneg.push(c);
                }
            }
            self.b.mad_lo(Ty::S32, counter, g32, step, start_op);
        } else {
            let gid = match gid {
                Some(g) => g,
                None => {
                    let g = self.b.reg(RegClass::B64);
                    self.b.cvt(None, Ty::U64, Ty::U32, g, g32);
                    g
                }
            };
            self.b.mad_lo(Ty::S64, counter, gid, step, start_op);
        }
        self.counters.push((c, counter, ty));
        Ok(done)
    }

    fn stmts(&mut self, ss: &[Stmt]) -> Result<()> {
        ss.iter().try_for_each(|s| self.stmt(s))
    }

    fn stmt(&mut self, s: &Stmt) -> Result<()> {
        match s {
            Stmt::Set(l, e) => {
                let v = self.expr(e)?;
                let t = self.type_of(e)?;
                let dst = self
                    .locals
                    .get(l.0 as usize)
                    .copied()
                    .ok_or_else(|| Error::Bug(format!("local {l} has no register")))?;
                self.b.mov(mov_ty(t), dst, v);
            }
            Stmt::Store(op, addr, e) => {
                let v = self.expr(e)?;
                self.store(*op, addr, v)?;
            }
            Stmt::If { cond, then, els } => self.if_else(cond, then, els, false)?,
            Stmt::For(f) => self.for_loop(f)?,
        }
        Ok(())
    }

    /// `if cond { then } else { els }`; the branches through [`Emitter::tiled_stmts`] when
    /// `tiled`.
    fn if_else(&mut self, cond: &Expr, then: &[Stmt], els: &[Stmt], tiled: bool) -> Result<()> {
        let c = self.expr(cond)?;
        let p = self.b.reg(RegClass::Pred);
        let (else_l, end_l) = (self.b.label(), self.b.label());
        self.b.setp(Cmp::Eq, Ty::S32, p, c, 0).guard(p).bra(else_l);
        if tiled {
            self.tiled_stmts(then)?;
        } else {
            self.stmts(then)?;
        }
        self.b.bra(end_l).place(else_l);
        if tiled {
            self.tiled_stmts(els)?;
        } else {
            self.stmts(els)?;
        }
        self.b.place(end_l);
        Ok(())
    }

    fn tiled_state(&self) -> Result<&Tiled> {
        self.tiled
            .as_ref()
            .ok_or_else(|| Error::Bug("tiled emission of an untiled kernel".into()))
    }

    /// Statements of a tiled kernel (see `blueprint`): the tiled loop, the assignments that
    /// decide the way to it and the `if`s around them run in every thread (so that every
    /// thread reaches the loop's barriers alike); every other run of statements is skipped by
    /// threads outside the grid's range.
    fn tiled_stmts(&mut self, ss: &[Stmt]) -> Result<()> {
        let mut i = 0;
        while i < ss.len() {
            if let Some(span) = self.stencil_span(&ss[i]) {
                // Every thread fills the tiles; then the statements that read them run in the
                // threads inside the grid, reading the staged loads from shared memory.
                self.stencil_fill()?;
                let end = (i + span).min(ss.len());
                let skip = self.b.label();
                let inactive = self.tiled_state()?.inactive;
                self.b.guard(inactive).bra(skip);
                self.stmts(&ss[i..end])?;
                self.b.place(skip);
                self.staged_read.clear();
                i = end;
                continue;
            }
            if self.runs_everywhere(&ss[i]) {
                let conv = matches!(self.tiled.as_ref().map(|t| &t.plan), Some(Shape::Conv(_)));
                match &ss[i] {
                    Stmt::For(f) if conv => self.conv_loop(f)?,
                    Stmt::For(f) => self.tiled_loop(f)?,
                    Stmt::If { cond, then, els } => self.if_else(cond, then, els, true)?,
                    other => self.stmt(other)?,
                }
                i += 1;
                continue;
            }
            let j = (i..ss.len())
                .find(|&j| self.runs_everywhere(&ss[j]) || self.stencil_span(&ss[j]).is_some())
                .unwrap_or(ss.len());
            let skip = self.b.label();
            let inactive = self.tiled_state()?.inactive;
            self.b.guard(inactive).bra(skip);
            self.stmts(&ss[i..j])?;
            self.b.place(skip);
            i = j;
        }
        Ok(())
    }

    fn runs_everywhere(&self, s: &Stmt) -> bool {
        self.tiled.as_ref().is_some_and(|t| t.plan.everywhere(s))
    }

    /// When `s` is the tiled-stencil plan's anchor: how many statements read the tiles.
    fn stencil_span(&self, s: &Stmt) -> Option<usize> {
        match self.tiled.as_ref().map(|t| &t.plan) {
            Some(Shape::Stencil(p)) if p.is_anchor(s) => Some(p.span),
            _ => None,
        }
    }

    /// The tiled-stencil fill, run by every thread of the block before the anchor (see
    /// `blueprint`):
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
    fn stencil_fill(&mut self) -> Result<()> {
        let (groups, [tx, ty]) = match self.tiled.as_ref() {
            Some(Tiled {
                plan: Shape::Stencil(p),
                lanes,
                ..
            }) => (p.groups.clone(), *lanes),
            _ => return Err(Error::Bug("stencil fill without a stencil plan".into())),
        };
        let (gx, gy) = (self.k.grid[0], self.k.grid[1]);
        let limits = [self.stencil_axis(0)?, self.stencil_axis(1)?];
        let mut reads = Vec::new();
        for g in &groups {
            let (h, w, pitch, bytes) = (g.height(), g.width(), g.pitch(), g.elem_bytes());
            let ((dx0, _), (dy0, _)) = (g.dx(), g.dy());
            let arr = self.b.shared_array(h * pitch * bytes);
            let base = self.b.reg(RegClass::B64);
            self.b.mov(Ty::U64, base, Operand::Shared(arr));
            self.fill_tile(
                (base, h, w, pitch, bytes),
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

    /// The tiled `k` loop (see `blueprint`):
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
    fn tiled_loop(&mut self, f: &ForLoop) -> Result<()> {
        let (staged, inactive, [tx, ty]) = match self.tiled_state()? {
            Tiled {
                plan: Shape::Matmul(p),
                inactive,
                lanes,
            } => (p.staged.clone(), *inactive, *lanes),
            _ => return Err(Error::Bug("tiled loop without a matmul plan".into())),
        };
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
        for st in &staged {
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
                self.tile_step(f, kc, &staged, reads)?;
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
        self.tile_step(f, kc, &staged, reads)?;
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

    /// The tiled-conv2d kernel's filter loops (see `blueprint`), at the row loop `fy`:
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
    fn conv_loop(&mut self, fy: &ForLoop) -> Result<()> {
        let (plan, inactive, [tx, ty]) = match self.tiled_state()? {
            Tiled {
                plan: Shape::Conv(p),
                inactive,
                lanes,
            } => (p.clone(), *inactive, *lanes),
            _ => return Err(Error::Bug("conv loop without a conv2d plan".into())),
        };
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
        self.conv_fill(&plan, fy, &fx, [nx, ny], [tx, ty])?;
        self.b.bar_sync().guard(inactive).bra(after);
        self.for_loop(fy)?;
        self.window_read.clear();
        self.b.bra(after).place(direct).guard(inactive).bra(after);
        self.for_loop(fy)?;
        self.b.place(after);
        Ok(())
    }

    /// The tiled-conv2d fill (see [`Emitter::conv_loop`]) for filter trip counts `n` (x, y;
    /// each in `[1, MAX_FILTER]`); sets [`Emitter::window_read`] for the loops.
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
            let arr = self.b.shared_array(h * pitch * bytes);
            let base = self.b.reg(RegClass::B64);
            self.b.mov(Ty::U64, base, Operand::Shared(arr));
            self.fill_tile(
                (base, h, w, pitch, bytes),
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
        self.window_read = reads;
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
    fn window_pointers(&mut self, f: &ForLoop) -> Vec<(Reg, Vec<Reg>, i64)> {
        let Some((rows, cols)) = self.filter_loops() else {
            return Vec::new();
        };
        let mut bases: Vec<(Reg, u32, u32)> = Vec::new();
        for w in &self.window_read {
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
                .window_at
                .iter()
                .find(|(b, _)| *b == base)
                .map_or(base, |(_, r)| *r);
            let ptr = self.b.reg(RegClass::B64);
            self.b.mov(Ty::U64, ptr, from);
            self.window_at.retain(|(b, _)| *b != base);
            self.window_at.push((base, ptr));
            out.push((ptr, Vec::new(), step));
        }
        out
    }

    /// A tiled-conv2d kernel's filter loops (row, column), when this is one.
    fn filter_loops(&self) -> Option<(LoopId, LoopId)> {
        match self.tiled.as_ref().map(|t| &t.plan) {
            Some(Shape::Conv(p)) => Some((p.rows, p.cols)),
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
        match self.window_at.iter().find(|(b, _)| *b == w.base) {
            Some(&(_, at)) if self.counters.iter().any(|(id, _, _)| *id == cols) => Ok(Address {
                base: at,
                offset: w.offset,
            }),
            _ => Err(Error::Bug(
                "window read outside the filter loops' column loop".into(),
            )),
        }
    }

    /// Fills a shared tile of `h × w` elements at `base` (rows `pitch` elements of `bytes`
    /// apart): this thread takes the elements `(r, c) = (lanes.y + 16a, lanes.x + 16b)` inside
    /// the tile, and for each tries `loads` in order. For a load, `lane` emits the test that
    /// branches to its `skip` label when the load cannot fill `(r, c)`, and returns the
    /// counters to compute it with (a lane's and, for conv2d, an iteration's); the first load
    /// that can fills the slot. An element no load can fill stays unwritten.
    fn fill_tile(
        &mut self,
        (base, h, w, pitch, bytes): (Reg, u32, u32, u32, u32),
        lanes: [Reg; 2],
        loads: &[StencilLoad],
        lane: &mut FillLane<'_, 'k>,
    ) -> Result<()> {
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
        Ok(())
    }

    /// For the tiled stencil's fill, along grid axis `axis`: how many lanes of this block lie
    /// inside the grid (`min(16, trip − 16·ctaid)`, a `.u32`; at least 1 in a launched block)
    /// and the counter of lane 0 (`start + 16·ctaid`; the plan requires step 1 and a constant
    /// start). A lane `l` below the first is inside the block and the grid, and its counter is
    /// the second plus `l` (see [`Emitter::k_plus`]).
    fn stencil_axis(&mut self, axis: usize) -> Result<(Reg, Reg)> {
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
    fn tile_slot(&mut self, base: Reg, row: Reg, col: Reg, pitch: u32, bytes: u32) -> Reg {
        let (idx, slot) = (self.b.reg(RegClass::B32), self.b.reg(RegClass::B64));
        self.b
            .mad_lo(Ty::U32, idx, row, i64::from(pitch), col)
            .mul_wide(false, slot, idx, i64::from(bytes))
            .add(Ty::S64, slot, slot, base);
        slot
    }

    /// `kbase + d` in the counter's type `t` (`d` a `.u32` lane register or a small constant):
    /// a `k` of a tile, or a stencil lane's counter from lane 0's.
    fn k_plus(&mut self, t: ValType, kbase: Reg, d: Operand) -> Reg {
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

    /// One iteration of the tiled loop's body with counter value `kc`, the staged loads read
    /// from `reads`.
    fn tile_step(
        &mut self,
        f: &ForLoop,
        kc: Reg,
        staged: &[crate::blueprint::Staged],
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

    /// A sequential loop, top-tested: `c = start; while !(c >= bound) { body; c += step }`
    /// (`<=` for a negative step; signed or unsigned).
    ///
    /// Addresses in the body that do not change inside it, or that change by the same amount
    /// every iteration, live in registers (`LoopPointer`): computed once on entry, advanced
    /// at the end of each iteration. An address changes by a fixed amount when its terms in
    /// this loop's counter `c` advance exactly by `step·coef[·ext(stride)]` in wrapping 64-bit
    /// arithmetic: always for an `i64` counter (the terms are `coef·c·stride mod 2⁶⁴`), and
    /// for an `i32` counter when `ext(c)` cannot wrap between two iterations that run the
    /// body: step ±1 and the extension matching the compare (a signed `c < bound` with step 1
    /// keeps `c + 1 <= i32::MAX`, so `sx(c + 1) = sx(c) + 1`; likewise unsigned, and step −1
    /// against `c > bound`). Any other address is computed in place as before.
    fn for_loop(&mut self, f: &ForLoop) -> Result<()> {
        let start = self.expr(&f.start)?;
        let bound_value = self.expr(&f.bound)?;
        // Copy the bound: the body may assign a local that the bound expression read.
        let bound = self.b.reg(class(f.ty));
        self.b.mov(bty(f.ty), bound, bound_value);
        let c = self.b.reg(class(f.ty));
        let (head, end) = (self.b.label(), self.b.label());
        let cmp_ty = if f.signed { sty(f.ty) } else { uty(f.ty) };
        let cmp = if f.step > 0 { Cmp::Ge } else { Cmp::Le };
        let done = self.b.reg(RegClass::Pred);
        self.b.mov(bty(f.ty), c, start);
        self.counters.push((f.counter, c, f.ty));
        let outer_pointers = self.pointers.len();
        let mut increments = self.loop_pointers(f)?;
        let outer_window = self.window_at.clone();
        increments.extend(self.window_pointers(f));
        if (f.step == 1 || f.step == -1)
            && !has_loop(&f.body)
            && stmts_size(&f.body) <= MAX_UNROLL_BODY
        {
            // Unrolled by UNROLL: `limit = bound ∓ (UNROLL-1)`; while `c` is before `limit`,
            // the next UNROLL iterations all pass the bound test, so they run without it.
            // When computing `limit` wraps, no group of UNROLL fits: the main loop is skipped.
            let (limit, skip, main_done) = (
                self.b.reg(class(f.ty)),
                self.b.reg(RegClass::Pred),
                self.b.reg(RegClass::Pred),
            );
            let (main, rest) = (self.b.label(), self.b.label());
            let wraps = if f.step > 0 { Cmp::Gt } else { Cmp::Lt };
            self.b
                .add(sty(f.ty), limit, bound, -(UNROLL - 1) * f.step)
                .setp(wraps, cmp_ty, skip, limit, bound)
                .guard(skip)
                .bra(rest)
                .place(main)
                .setp(cmp, cmp_ty, main_done, c, limit)
                .guard(main_done)
                .bra(rest);
            for _ in 0..UNROLL {
                self.iteration(f, c, &increments)?;
            }
            self.b.bra(main).place(rest);
        }
        self.b
            .place(head)
            .setp(cmp, cmp_ty, done, c, bound)
            .guard(done)
            .bra(end);
        self.iteration(f, c, &increments)?;
        self.pointers.truncate(outer_pointers);
        self.window_at = outer_window;
        self.counters.retain(|(id, _, _)| *id != f.counter);
        self.b.bra(head).place(end);
        Ok(())
    }

    /// One iteration of `f`'s body, then its pointers and counter `c` advance.
    fn iteration(
        &mut self,
        f: &ForLoop,
        c: Reg,
        increments: &[(Reg, Vec<Reg>, i64)],
    ) -> Result<()> {
        self.stmts(&f.body)?;
        for (ptr, deltas, add) in increments {
            for d in deltas {
                self.b.add(Ty::S64, *ptr, *ptr, *d);
            }
            if *add != 0 {
                self.b.add(Ty::S64, *ptr, *ptr, *add);
            }
        }
        self.b.add(sty(f.ty), c, c, f.step);
        Ok(())
    }

    /// Sets up the loop pointers of `f` (its counter's register holds `start`), and returns
    /// each new pointer that advances with what it advances by per iteration: registers
    /// (computed here, before the loop) and a constant.
    fn loop_pointers(&mut self, f: &ForLoop) -> Result<Vec<(Reg, Vec<Reg>, i64)>> {
        let addrs: Vec<&Addr> = mem_ops(&f.body).into_iter().map(MemOp::addr).collect();
        let exact_step = f.ty == ValType::I64 || f.step == 1 || f.step == -1;
        let in_scope = |s: &Self, id: LoopId| s.counters.iter().any(|(c, _, _)| *c == id);
        let mut out: Vec<(Reg, Vec<Reg>, i64)> = Vec::new();
        for a in addrs {
            if out.len() == MAX_LOOP_POINTERS {
                break;
            }
            let terms = &a.offset.terms;
            if terms.is_empty()
                || self
                    .pointers
                    .iter()
                    .any(|p| p.base == a.base && p.terms == *terms)
            {
                continue;
            }
            let mut inc = Increment::default();
            let mut ok = true;
            for t in terms {
                match t.var {
                    AffineVar::Counter(id) if id == f.counter => {
                        let ext_ok = f.ty == ValType::I64 || (t.ext == Ext::Signed) == f.signed;
                        if !exact_step || !ext_ok {
                            ok = false;
                            break;
                        }
                        let factor = t.coef.wrapping_mul(f.step);
                        match t.stride {
                            None => inc.add = inc.add.wrapping_add(factor),
                            Some((p, ext)) => inc.strided.push((factor, p, ext)),
                        }
                    }
                    AffineVar::Counter(id) if !in_scope(self, id) => {
                        ok = false;
                        break;
                    }
                    // A local may change anywhere in the body: never hoisted.
                    AffineVar::Local(_) => {
                        ok = false;
                        break;
                    }
                    _ => {}
                }
            }
            if !ok {
                continue;
            }
            let value = self.address_terms(a.base, terms)?;
            let advances = inc.add != 0 || !inc.strided.is_empty();
            let reg = if advances {
                // A register of its own: the loop advances it.
                let ptr = self.b.reg(RegClass::B64);
                self.b.mov(Ty::B64, ptr, value);
                let deltas = inc
                    .strided
                    .iter()
                    .map(|&(factor, p, ext)| self.strided_delta(factor, p, ext))
                    .collect::<Result<Vec<_>>>()?;
                out.push((ptr, deltas, inc.add));
                ptr
            } else {
                value
            };
            self.pointers.push(LoopPointer {
                base: a.base,
                terms: terms.clone(),
                reg,
            });
        }
        Ok(out)
    }

    /// `factor·ext(stride)` in a `.b64` register: one `mul.wide` when `stride` is an `i32` and
    /// `factor` fits its extension's 32-bit range (the product of two 32-bit values is exact in
    /// 64 bits, so it equals the wrapping product), else widen and `mul.lo.s64`.
    fn strided_delta(&mut self, factor: i64, p: ParamId, ext: Ext) -> Result<Reg> {
        let t = self.scalar_type(p)?;
        let s = self.param(Some(p.0))?;
        let d = self.b.reg(RegClass::B64);
        let signed = ext == Ext::Signed;
        if t == ValType::I32 && fits_ext(factor, signed) {
            self.b.mul_wide(signed, d, s, factor);
        } else {
            let s64 = self.widen(s, t, ext);
            self.b.mul_lo(Ty::S64, d, s64, factor);
        }
        Ok(d)
    }

    fn scalar_type(&self, p: ParamId) -> Result<ValType> {
        match self.k.params.get(p.0 as usize).map(|p| p.kind) {
            Some(ParamKind::Scalar(t)) => Ok(t),
            _ => Err(Error::Bug(format!("affine param {p} is not a scalar"))),
        }
    }

    fn type_of(&self, e: &Expr) -> Result<ValType> {
        match e {
            Expr::Counter(c) => self.counter(*c).map(|(_, t)| t),
            _ => self
                .k
                .expr_type(e)
                .ok_or_else(|| Error::Bug(format!("untyped expression `{e}`"))),
        }
    }

    fn counter(&self, c: LoopId) -> Result<(Reg, ValType)> {
        self.counters
            .iter()
            .rev()
            .find(|(id, _, _)| *id == c)
            .map(|(_, r, t)| (*r, *t))
            .ok_or_else(|| Error::Bug(format!("counter {c} has no register")))
    }

    fn expr(&mut self, e: &Expr) -> Result<Reg> {
        match e {
            Expr::Const(c) => Ok(self.constant(*c)),
            Expr::Param(p) => self.param(Some(p.0)),
            Expr::Counter(c) => self.counter(*c).map(|(r, _)| r),
            Expr::Local(l) => self
                .locals
                .get(l.0 as usize)
                .copied()
                .ok_or_else(|| Error::Bug(format!("local {l} has no register"))),
            Expr::Unary(op, a) => {
                let a = self.expr(a)?;
                self.unary(*op, a)
            }
            Expr::Binary(op, a, b) => {
                let a = self.expr(a)?;
                let b = self.expr(b)?;
                self.binary(*op, a, b)
            }
            Expr::Select { cond, then, els } => {
                // Wasm's operand order: both values, then the condition.
                let t = self.type_of(then)?;
                let a = self.expr(then)?;
                let b = self.expr(els)?;
                let c = self.expr(cond)?;
                let p = self.b.reg(RegClass::Pred);
                let d = self.b.reg(class(t));
                self.b
                    .setp(Cmp::Ne, Ty::S32, p, c, 0)
                    .selp(mov_ty(t), d, a, b, p);
                Ok(d)
            }
            Expr::Load(op, addr) => self.load(*op, addr),
        }
    }

    fn constant(&mut self, c: Const) -> Reg {
        let d = self.b.reg(class(c.ty()));
        match c {
            Const::I32(v) => self.b.mov(Ty::B32, d, i64::from(v)),
            Const::I64(v) => self.b.mov(Ty::B64, d, v),
            Const::F32(bits) => self.b.mov(Ty::F32, d, Operand::F32(bits)),
            Const::F64(bits) => self.b.mov(Ty::F64, d, Operand::F64(bits)),
        };
        d
    }

    /// Branches to the trap block when `p` holds (or, with `negate`, when it does not).
    fn trap_if(&mut self, p: Reg, negate: bool) {
        self.trap_used = true;
        if negate {
            self.b.guard_not(p);
        } else {
            self.b.guard(p);
        }
        self.b.bra(self.trap);
    }

    fn unary(&mut self, op: UnOp, a: Reg) -> Result<Reg> {
        let (src, dst) = (op.operand(), op.result());
        let d = self.b.reg(class(dst));
        match op.kind() {
            UnKind::Eqz => {
                let p = self.b.reg(RegClass::Pred);
                self.b
                    .setp(Cmp::Eq, sty(src), p, a, 0)
                    .selp(Ty::B32, d, 1, 0, p);
            }
            UnKind::Clz | UnKind::Ctz | UnKind::Popcnt => {
                let x = if op.kind() == UnKind::Ctz {
                    // ctz(x) = clz(bit-reverse(x)); both give the width for zero.
                    let r = self.b.reg(class(src));
                    self.b.brev(bty(src), r, a);
                    r
                } else {
                    a
                };
                let count = if src == ValType::I32 {
                    d
                } else {
                    self.b.reg(RegClass::B32)
                };
                if op.kind() == UnKind::Popcnt {
                    self.b.popc(bty(src), count, x);
                } else {
                    self.b.clz(bty(src), count, x);
                }
                if src == ValType::I64 {
                    self.b.cvt(None, Ty::U64, Ty::U32, d, count);
                }
            }
            UnKind::Extend8S => {
                self.b.cvt(None, sty(src), Ty::S8, d, a);
            }
            UnKind::Extend16S => {
                self.b.cvt(None, sty(src), Ty::S16, d, a);
            }
            UnKind::Extend32S => {
                let low = self.b.reg(RegClass::B32);
                self.b
                    .cvt(None, Ty::U32, Ty::U64, low, a)
                    .cvt(None, Ty::S64, Ty::S32, d, low);
            }
            UnKind::Abs | UnKind::Neg => {
                // Bit operations, exact for every input including NaN payloads.
                let (sign, mag) = sign_mask(src);
                let bits = self.b.reg(int_class(src));
                let out = self.b.reg(int_class(src));
                self.b.mov(bty(src), bits, a);
                if op.kind() == UnKind::Abs {
                    self.b.and(bty(src), out, bits, mag);
                } else {
                    self.b.xor(bty(src), out, bits, sign);
                }
                self.b.mov(bty(src), d, out);
            }
            UnKind::Sqrt => {
                self.b.sqrt_rn(fty(src), d, a);
            }
            UnKind::Ceil | UnKind::Floor | UnKind::Trunc | UnKind::Nearest => {
                let rnd = match op.kind() {
                    UnKind::Ceil => Rnd::Rpi,
                    UnKind::Floor => Rnd::Rmi,
                    UnKind::Trunc => Rnd::Rzi,
                    _ => Rnd::Rni,
                };
                self.b.cvt(Some(rnd), fty(src), fty(src), d, a);
            }
            UnKind::Wrap => {
                self.b.cvt(None, Ty::U32, Ty::U64, d, a);
            }
            UnKind::ExtendS => {
                self.b.cvt(None, Ty::S64, Ty::S32, d, a);
            }
            UnKind::ExtendU => {
                self.b.cvt(None, Ty::U64, Ty::U32, d, a);
            }
            UnKind::TruncS | UnKind::TruncU => {
                let signed = op.kind() == UnKind::TruncS;
                let (lo, lo_incl, hi) = trunc_bounds(src, dst, signed);
                let (below_hi, ok) = (self.b.reg(RegClass::Pred), self.b.reg(RegClass::Pred));
                let lo_cmp = if lo_incl { Cmp::Ge } else { Cmp::Gt };
                // Ordered comparisons: NaN fails both, so NaN traps too.
                self.b
                    .setp(Cmp::Lt, fty(src), below_hi, a, float_imm(src, hi))
                    .setp_and(lo_cmp, fty(src), ok, a, float_imm(src, lo), below_hi);
                self.trap_if(ok, true);
                let ity = if signed { sty(dst) } else { uty(dst) };
                self.b.cvt(Some(Rnd::Rzi), ity, fty(src), d, a);
            }
            UnKind::TruncSatS | UnKind::TruncSatU => {
                // cvt.rzi saturates; NaN gives 0 only for f32 → 32-bit, so fix NaN explicitly.
                let ity = if op.kind() == UnKind::TruncSatS {
                    sty(dst)
                } else {
                    uty(dst)
                };
                let t = self.b.reg(class(dst));
                let nan = self.b.reg(RegClass::Pred);
                self.b
                    .cvt(Some(Rnd::Rzi), ity, fty(src), t, a)
                    .setp(Cmp::Nan, fty(src), nan, a, a)
                    .selp(bty(dst), d, 0, t, nan);
            }
            UnKind::ConvertS | UnKind::ConvertU => {
                let ity = if op.kind() == UnKind::ConvertS {
                    sty(src)
                } else {
                    uty(src)
                };
                self.b.cvt(Some(Rnd::Rn), fty(dst), ity, d, a);
            }
            UnKind::Demote => {
                self.b.cvt(Some(Rnd::Rn), Ty::F32, Ty::F64, d, a);
            }
            UnKind::Promote => {
                self.b.cvt(None, Ty::F64, Ty::F32, d, a);
            }
            UnKind::Reinterpret => {
                self.b.mov(bty(src), d, a);
            }
        }
        Ok(d)
    }

    /// A masked shift count: `n & 31` or `n & 63`, as a `.b32` register.
    fn shift_count(&mut self, t: ValType, n: Reg) -> Reg {
        let m = self.b.reg(RegClass::B32);
        if t == ValType::I64 {
            let low = self.b.reg(RegClass::B32);
            self.b
                .cvt(None, Ty::U32, Ty::U64, low, n)
                .and(Ty::B32, m, low, 63);
        } else {
            self.b.and(Ty::B32, m, n, 31);
        }
        m
    }

    fn trap_if_zero(&mut self, t: ValType, b: Reg) {
        let z = self.b.reg(RegClass::Pred);
        self.b.setp(Cmp::Eq, sty(t), z, b, 0);
        self.trap_if(z, false);
    }

    fn binary(&mut self, op: BinOp, a: Reg, b: Reg) -> Result<Reg> {
        let t = op.operand();
        let d = self.b.reg(class(op.result()));
        let float = !t.is_int();
        match op.kind() {
            BinKind::Add if float => {
                self.b.add_rn(fty(t), d, a, b);
            }
            BinKind::Sub if float => {
                self.b.sub_rn(fty(t), d, a, b);
            }
            BinKind::Mul if float => {
                self.b.mul_rn(fty(t), d, a, b);
            }
            BinKind::Add => {
                self.b.add(sty(t), d, a, b);
            }
            BinKind::Sub => {
                self.b.sub(sty(t), d, a, b);
            }
            BinKind::Mul => {
                self.b.mul_lo(sty(t), d, a, b);
            }
            BinKind::DivS => {
                self.trap_if_zero(t, b);
                let min = if t == ValType::I64 {
                    i64::MIN
                } else {
                    i64::from(i32::MIN)
                };
                let (is_min, overflow) = (self.b.reg(RegClass::Pred), self.b.reg(RegClass::Pred));
                self.b.setp(Cmp::Eq, sty(t), is_min, a, min).setp_and(
                    Cmp::Eq,
                    sty(t),
                    overflow,
                    b,
                    -1,
                    is_min,
                );
                self.trap_if(overflow, false);
                self.b.div(sty(t), d, a, b);
            }
            BinKind::DivU => {
                self.trap_if_zero(t, b);
                self.b.div(uty(t), d, a, b);
            }
            BinKind::RemS => {
                // x rem_s -1 is 0 in Wasm (no trap); divide by 1 instead so that
                // INT_MIN rem -1 never reaches the hardware.
                self.trap_if_zero(t, b);
                let (m1, safe) = (self.b.reg(RegClass::Pred), self.b.reg(int_class(t)));
                self.b
                    .setp(Cmp::Eq, sty(t), m1, b, -1)
                    .selp(bty(t), safe, 1, b, m1)
                    .rem(sty(t), d, a, safe);
            }
            BinKind::RemU => {
                self.trap_if_zero(t, b);
                self.b.rem(uty(t), d, a, b);
            }
            BinKind::And => {
                self.b.and(bty(t), d, a, b);
            }
            BinKind::Or => {
                self.b.or(bty(t), d, a, b);
            }
            BinKind::Xor => {
                self.b.xor(bty(t), d, a, b);
            }
            BinKind::Shl | BinKind::ShrS | BinKind::ShrU => {
                let n = self.shift_count(t, b);
                match op.kind() {
                    BinKind::Shl => self.b.shl(bty(t), d, a, n),
                    BinKind::ShrS => self.b.shr(sty(t), d, a, n),
                    _ => self.b.shr(uty(t), d, a, n),
                };
            }
            BinKind::Rotl | BinKind::Rotr => self.rotate(op.kind() == BinKind::Rotl, t, d, a, b),
            BinKind::FDiv => {
                self.b.div_rn(fty(t), d, a, b);
            }
            BinKind::Min | BinKind::Max => self.minmax(op.kind() == BinKind::Max, t, d, a, b),
            BinKind::Copysign => {
                let (sign, mag) = sign_mask(t);
                let c = int_class(t);
                let (ia, ib, ma, sb, r) = (
                    self.b.reg(c),
                    self.b.reg(c),
                    self.b.reg(c),
                    self.b.reg(c),
                    self.b.reg(c),
                );
                self.b
                    .mov(bty(t), ia, a)
                    .mov(bty(t), ib, b)
                    .and(bty(t), ma, ia, mag)
                    .and(bty(t), sb, ib, sign)
                    .or(bty(t), r, ma, sb)
                    .mov(bty(t), d, r);
            }
            kind => {
                let (cmp, ty) = match kind {
                    BinKind::Eq if float => (Cmp::Eq, fty(t)),
                    // Wasm `ne` is true when either operand is NaN: the unordered compare.
                    BinKind::Ne if float => (Cmp::Neu, fty(t)),
                    BinKind::Eq => (Cmp::Eq, bty(t)),
                    BinKind::Ne => (Cmp::Ne, bty(t)),
                    BinKind::LtS => (Cmp::Lt, sty(t)),
                    BinKind::LtU => (Cmp::Lt, uty(t)),
                    BinKind::GtS => (Cmp::Gt, sty(t)),
                    BinKind::GtU => (Cmp::Gt, uty(t)),
                    BinKind::LeS => (Cmp::Le, sty(t)),
                    BinKind::LeU => (Cmp::Le, uty(t)),
                    BinKind::GeS => (Cmp::Ge, sty(t)),
                    BinKind::GeU => (Cmp::Ge, uty(t)),
                    BinKind::FLt => (Cmp::Lt, fty(t)),
                    BinKind::FGt => (Cmp::Gt, fty(t)),
                    BinKind::FLe => (Cmp::Le, fty(t)),
                    BinKind::FGe => (Cmp::Ge, fty(t)),
                    other => return Err(Error::Bug(format!("{other:?} is not a comparison"))),
                };
                let p = self.b.reg(RegClass::Pred);
                self.b.setp(cmp, ty, p, a, b).selp(Ty::B32, d, 1, 0, p);
            }
        }
        Ok(d)
    }

    fn rotate(&mut self, left: bool, t: ValType, d: Reg, a: Reg, n: Reg) {
        if t == ValType::I32 {
            // shf.wrap uses n & 31, exactly Wasm's count.
            self.b.shf_wrap(left, d, a, a, n);
            return;
        }
        let k = self.shift_count(t, n);
        let (back, hi, lo) = (
            self.b.reg(RegClass::B32),
            self.b.reg(RegClass::B64),
            self.b.reg(RegClass::B64),
        );
        // (64 - k) & 63 is 0 when k is 0, so both halves are then `a` and the OR is `a`.
        self.b
            .sub(Ty::U32, back, 64, k)
            .and(Ty::B32, back, back, 63);
        if left {
            self.b.shl(Ty::B64, hi, a, k).shr(Ty::U64, lo, a, back);
        } else {
            self.b.shr(Ty::U64, hi, a, k).shl(Ty::B64, lo, a, back);
        }
        self.b.or(Ty::B64, d, hi, lo);
    }

    /// Wasm `fmin`/`fmax`: NaN if either operand is NaN, and −0 < +0.
    fn minmax(&mut self, max: bool, t: ValType, d: Reg, a: Reg, b: Reg) {
        if t == ValType::F32 && self.target.has_minmax_nan() {
            // PTX ISA `min`/`max`: `.NaN` gives the canonical NaN if any input is NaN, and
            // orders −0.0 below +0.0.
            self.b.minmax(max, true, Ty::F32, d, a, b);
            return;
        }
        let f = class(t);
        let c = int_class(t);
        let (m, z, picked) = (self.b.reg(f), self.b.reg(f), self.b.reg(f));
        let (ia, ib, iz) = (self.b.reg(c), self.b.reg(c), self.b.reg(c));
        let (eq, nan) = (self.b.reg(RegClass::Pred), self.b.reg(RegClass::Pred));
        self.b
            .minmax(max, false, fty(t), m, a, b)
            .mov(bty(t), ia, a)
            .mov(bty(t), ib, b);
        // Equal operands differ at most in the sign of zero: OR of the bits keeps −0 for
        // min, AND keeps +0 for max (for other equal values the bits are identical).
        if max {
            self.b.and(bty(t), iz, ia, ib);
        } else {
            self.b.or(bty(t), iz, ia, ib);
        }
        self.b
            .mov(bty(t), z, iz)
            .setp(Cmp::Eq, fty(t), eq, a, b)
            .selp(fty(t), picked, z, m, eq)
            .setp(Cmp::Nan, fty(t), nan, a, b)
            .selp(fty(t), d, canonical_nan(t), picked, nan);
    }

    /// `base + Σ coef·ext(var)` in a `.b64` register (a loop pointer's when a `for` loop
    /// holds it), and the constant as the displacement when it fits (leaving `headroom` bytes
    /// for byte-wise accesses).
    fn address(&mut self, addr: &Addr, headroom: i32) -> Result<Address> {
        let held = self
            .pointers
            .iter()
            .rev()
            .find(|p| p.base == addr.base && p.terms == addr.offset.terms)
            .map(|p| p.reg);
        let acc = match held {
            Some(r) => r,
            None => self.address_terms(addr.base, &addr.offset.terms)?,
        };
        let c = addr.offset.constant;
        match i32::try_from(c) {
            Ok(o) if o.checked_add(headroom).is_some() => Ok(Address {
                base: acc,
                offset: o,
            }),
            _ => {
                let next = self.b.reg(RegClass::B64);
                self.b.add(Ty::S64, next, acc, c);
                Ok(Address {
                    base: next,
                    offset: 0,
                })
            }
        }
    }

    /// `base + Σ coef·ext(var)[·ext(stride)]` in wrapping 64-bit arithmetic. An `i32`
    /// variable without a stride whose coefficient fits its extension's 32-bit range is a
    /// `mul.wide.s32`/`.u32` and an `add.s64` (`ext(var)·coef` is exact in 64 bits, so equal
    /// to the wrapping product; ptxas makes one `IMAD.WIDE` of the pair); otherwise the
    /// variable widens first and `mad.lo.s64` adds it.
    fn address_terms(&mut self, base: ParamId, terms: &[AffineTerm]) -> Result<Reg> {
        let mut acc = self.param(Some(base.0))?;
        for term in terms {
            if term.coef == 0 {
                continue; // 0·anything adds nothing
            }
            let (v, t) = match term.var {
                AffineVar::Counter(c) => self.counter(c)?,
                AffineVar::Param(p) => (self.param(Some(p.0))?, self.scalar_type(p)?),
                AffineVar::Local(l) => {
                    let r = self
                        .locals
                        .get(l.0 as usize)
                        .copied()
                        .ok_or_else(|| Error::Bug(format!("local {l} has no register")))?;
                    let t = self
                        .k
                        .locals
                        .get(l.0 as usize)
                        .copied()
                        .ok_or_else(|| Error::Bug(format!("local {l} is not declared")))?;
                    (r, t)
                }
            };
            let signed = term.ext == Ext::Signed;
            if t == ValType::I32 && term.stride.is_none() && fits_ext(term.coef, signed) {
                let (prod, next) = (self.b.reg(RegClass::B64), self.b.reg(RegClass::B64));
                self.b
                    .mul_wide(signed, prod, v, term.coef)
                    .add(Ty::S64, next, acc, prod);
                acc = next;
                continue;
            }
            // `coef·zx(v)` with a negative `coef`: subtract `|coef|·zx(v)` (exact in 64 bits).
            let negated = term.coef.checked_neg().filter(|&m| fits_ext(m, false));
            if let (ValType::I32, None, false, Some(m)) = (t, term.stride, signed, negated) {
                let (prod, next) = (self.b.reg(RegClass::B64), self.b.reg(RegClass::B64));
                self.b
                    .mul_wide(false, prod, v, m)
                    .sub(Ty::S64, next, acc, prod);
                acc = next;
                continue;
            }
            let mut v64 = None;
            if let Some((p, ext)) = term.stride {
                let st = self.scalar_type(p)?;
                let s = self.param(Some(p.0))?;
                let prod = self.b.reg(RegClass::B64);
                // Two 32-bit values extended the same way: their product is exact in 64 bits
                // (`mul.wide`), so equal to the wrapping product of the extended values.
                let known = matches!(term.var, AffineVar::Counter(c) if self.nonneg.contains(&c));
                let v_unsigned = term.ext == Ext::Unsigned || known;
                let v_signed = term.ext == Ext::Signed || known;
                if t == ValType::I32 && st == ValType::I32 && v_unsigned && ext == Ext::Unsigned {
                    self.b.mul_wide(false, prod, v, s);
                } else if t == ValType::I32 && st == ValType::I32 && v_signed && ext == Ext::Signed
                {
                    self.b.mul_wide(true, prod, v, s);
                } else {
                    let v64 = self.widen(v, t, term.ext);
                    let s64 = self.widen(s, st, ext);
                    self.b.mul_lo(Ty::S64, prod, v64, s64);
                }
                v64 = Some(prod);
            }
            let v64 = match v64 {
                Some(r) => r,
                None => self.widen(v, t, term.ext),
            };
            let next = self.b.reg(RegClass::B64);
            if term.coef == 1 {
                self.b.add(Ty::S64, next, acc, v64);
            } else {
                self.b.mad_lo(Ty::S64, next, v64, term.coef, acc);
            }
            acc = next;
        }
        Ok(acc)
    }

    /// `v` as a 64-bit integer (`i32` values widened by `ext`).
    fn widen(&mut self, v: Reg, t: ValType, ext: Ext) -> Reg {
        if t != ValType::I32 {
            return v;
        }
        let w = self.b.reg(RegClass::B64);
        match ext {
            Ext::Signed => self.b.cvt(None, Ty::S64, Ty::S32, w, v),
            Ext::Unsigned => self.b.cvt(None, Ty::U64, Ty::U32, w, v),
        };
        w
    }

    fn load(&mut self, op: LoadOp, addr: &Addr) -> Result<Reg> {
        let vt = op.value_type();
        let bytes = op.bytes();
        let d = self.b.reg(class(vt));
        if let Some(&(_, _, a)) = self
            .staged_read
            .iter()
            .find(|(o, ad, _)| *o == op && ad == addr)
        {
            self.b.ld_shared(shared_ty(vt), d, a);
            return Ok(d);
        }
        if let Some(w) = self
            .window_read
            .iter()
            .find(|w| w.op == op && w.addr == *addr)
            .cloned()
        {
            let a = self.window_slot(&w)?;
            self.b.ld_shared(shared_ty(vt), d, a);
            return Ok(d);
        }
        if addr.aligned || bytes == 1 {
            let a = self.address(addr, 0)?;
            let ty = match (bytes, vt, op.signed()) {
                (1, _, true) => Ty::S8,
                (1, _, false) => Ty::U8,
                (2, _, true) => Ty::S16,
                (2, _, false) => Ty::U16,
                (4, ValType::F32, _) => Ty::F32,
                (4, _, true) => Ty::S32,
                (4, _, false) => Ty::U32,
                (_, ValType::F64, _) => Ty::F64,
                _ => Ty::U64,
            };
            self.b.ld_global(ty, d, a);
            return Ok(d);
        }
        // Byte-wise, little-endian like both Wasm and the GPU.
        let a = self.address(addr, 8)?;
        let wide = bytes == 8;
        let (c, bt) = if wide {
            (RegClass::B64, Ty::B64)
        } else {
            (RegClass::B32, Ty::B32)
        };
        let mut acc: Option<Reg> = None;
        for i in 0..bytes {
            let byte = self.b.reg(c);
            self.b.ld_global(
                Ty::U8,
                byte,
                Address {
                    base: a.base,
                    offset: a.offset + i as i32,
                },
            );
            acc = Some(match acc {
                None => byte,
                Some(prev) => {
                    let (s, n) = (self.b.reg(c), self.b.reg(c));
                    self.b.shl(bt, s, byte, i64::from(8 * i)).or(bt, n, prev, s);
                    n
                }
            });
        }
        let acc = acc.ok_or_else(|| Error::Bug("empty unaligned load".into()))?;
        match op {
            LoadOp::I32Load | LoadOp::I64Load | LoadOp::I32Load16U => return Ok(acc),
            LoadOp::F32Load => self.b.mov(Ty::B32, d, acc),
            LoadOp::F64Load => self.b.mov(Ty::B64, d, acc),
            LoadOp::I32Load16S => self.b.cvt(None, Ty::S32, Ty::S16, d, acc),
            LoadOp::I64Load16S => self.b.cvt(None, Ty::S64, Ty::S16, d, acc),
            LoadOp::I64Load16U => self.b.cvt(None, Ty::U64, Ty::U16, d, acc),
            LoadOp::I64Load32S => self.b.cvt(None, Ty::S64, Ty::S32, d, acc),
            LoadOp::I64Load32U => self.b.cvt(None, Ty::U64, Ty::U32, d, acc),
            other => {
                return Err(Error::Bug(format!(
                    "{} is not a multi-byte load",
                    other.name()
                )));
            }
        };
        Ok(d)
    }

    fn store(&mut self, op: StoreOp, addr: &Addr, v: Reg) -> Result<()> {
        let vt = op.value_type();
        let bytes = op.bytes();
        if addr.aligned || bytes == 1 {
            let a = self.address(addr, 0)?;
            let ty = match (bytes, vt) {
                (1, _) => Ty::U8,
                (2, _) => Ty::U16,
                (4, ValType::F32) => Ty::F32,
                (4, _) => Ty::U32,
                (_, ValType::F64) => Ty::F64,
                _ => Ty::U64,
            };
            self.b.st_global(ty, a, v);
            return Ok(());
        }
        let a = self.address(addr, 8)?;
        let (c, bt, ut) = if is64(vt) {
            (RegClass::B64, Ty::B64, Ty::U64)
        } else {
            (RegClass::B32, Ty::B32, Ty::U32)
        };
        let bits = if vt.is_int() {
            v
        } else {
            let r = self.b.reg(c);
            self.b.mov(bt, r, v);
            r
        };
        for i in 0..bytes {
            let at = Address {
                base: a.base,
                offset: a.offset + i as i32,
            };
            if i == 0 {
                self.b.st_global(Ty::U8, at, bits);
            } else {
                let s = self.b.reg(c);
                self.b
                    .shr(ut, s, bits, i64::from(8 * i))
                    .st_global(Ty::U8, at, s);
            }
        }
        Ok(())
    }
}
