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
//!
//! This module is the core every kernel goes through: [`emit_ptx`] and its options, the
//! `Emitter` with the kernel's parameters, grid counters, statements, `for` loops (with loop
//! pointers and unrolling), addresses, loads and stores; `arith` holds the operators. A kernel
//! that matches a blueprint is emitted through the same core: the blueprint's module (under
//! [`crate::blueprint`]) adds its own `impl Emitter` block for what it does differently, and
//! hooks in where the core calls it (`run`, `if_else`, `for_loop`, `load`).

mod arith;

use crate::blueprint::Plan;
use crate::blueprint::conv2d::Window;
use crate::blueprint::tiled::Tiled;
use crate::error::{Error, Result};
use crate::kernel_ir::{
    Addr, AffineTerm, AffineVar, Expr, Ext, ForLoop, GridDim, Kernel, LoadOp, LoopId, MemOp,
    ParamId, ParamKind, Start, Stmt, StoreOp, ValType, mem_ops, verify,
};
use crate::ptx::{
    Address, Axis, Cmp, Entry, Label, Module, Operand, PtxBuilder, PtxVersion, Reg, RegClass,
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
    let plan = if opts.generic_only {
        None
    } else {
        Plan::find(kernel)
    };
    let entry = Emitter::new(kernel, opts.target).run(plan)?;
    Ok(Module {
        version: opts
            .ptx_version
            .unwrap_or_else(|| opts.target.default_ptx_version()),
        target: opts.target,
        entries: vec![entry],
    })
}

pub(crate) fn class(t: ValType) -> RegClass {
    match t {
        ValType::I32 => RegClass::B32,
        ValType::I64 => RegClass::B64,
        ValType::F32 => RegClass::F32,
        ValType::F64 => RegClass::F64,
    }
}

/// The signed, unsigned and bit-size integer types of `t`'s width.
pub(crate) fn sty(t: ValType) -> Ty {
    if is64(t) { Ty::S64 } else { Ty::S32 }
}
pub(crate) fn uty(t: ValType) -> Ty {
    if is64(t) { Ty::U64 } else { Ty::U32 }
}
pub(crate) fn bty(t: ValType) -> Ty {
    if is64(t) { Ty::B64 } else { Ty::B32 }
}

/// The type a value of `t` is kept in shared memory with (its full register width).
pub(crate) fn shared_ty(t: ValType) -> Ty {
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

pub(crate) fn is64(t: ValType) -> bool {
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

pub(crate) const AXES: [Axis; 3] = [Axis::X, Axis::Y, Axis::Z];

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
pub(crate) fn stmts_size(ss: &[Stmt]) -> usize {
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

/// One kernel's emission: the builder and what the statements being emitted see (registers of
/// params, counters and locals, loop pointers). Blueprints add their state and methods (see
/// [`crate::blueprint`]).
pub(crate) struct Emitter<'k> {
    pub(crate) k: &'k Kernel,
    target: Target,
    pub(crate) b: PtxBuilder,
    /// Per param: the global address (pointers) or the value (scalars).
    params: Vec<Reg>,
    pub(crate) counters: Vec<(LoopId, Reg, ValType)>,
    /// Grid counters known to lie in `[0, 2³¹)` (so `sx(c) = zx(c)`), see [`Emitter::grid_dim`].
    nonneg: Vec<LoopId>,
    /// Addresses kept in registers by enclosing `for` loops (see [`Emitter::for_loop`]),
    /// innermost last.
    pointers: Vec<LoopPointer>,
    locals: Vec<Reg>,
    exit: Label,
    trap: Label,
    trap_used: bool,
    /// The blueprint's plan and state, when the kernel is emitted with one (see
    /// [`crate::blueprint`]).
    pub(crate) tiled: Option<Tiled>,
    /// Where a tiled-matmul tile step or the statements after a tiled-stencil fill run: the
    /// shared-memory address each staged load reads.
    pub(crate) staged_read: Vec<(LoadOp, Addr, Address)>,
    /// Inside a tiled-conv2d kernel's filter loops: the loads read from its window, and the
    /// pointers that walk it (see [`crate::blueprint::conv2d`]); empty otherwise.
    pub(crate) window: Window,
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
            window: Window::default(),
        }
    }

    /// The entry, with a blueprint when `plan` is its plan for this kernel.
    fn run(mut self, plan: Option<Plan>) -> Result<Entry> {
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
        let exit_early = plan.is_none();
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
        match plan {
            Some(plan) => self.tiled_body(plan, outside)?,
            None => self.stmts(&k.body)?,
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

    pub(crate) fn param(&self, p: Option<u32>) -> Result<Reg> {
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

    pub(crate) fn stmts(&mut self, ss: &[Stmt]) -> Result<()> {
        ss.iter().try_for_each(|s| self.stmt(s))
    }

    pub(crate) fn stmt(&mut self, s: &Stmt) -> Result<()> {
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
    pub(crate) fn if_else(
        &mut self,
        cond: &Expr,
        then: &[Stmt],
        els: &[Stmt],
        tiled: bool,
    ) -> Result<()> {
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
    pub(crate) fn for_loop(&mut self, f: &ForLoop) -> Result<()> {
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
        let outer_window = self.window.at.clone();
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
        self.window.at = outer_window;
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

    pub(crate) fn scalar_type(&self, p: ParamId) -> Result<ValType> {
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

    pub(crate) fn expr(&mut self, e: &Expr) -> Result<Reg> {
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
    pub(crate) fn widen(&mut self, v: Reg, t: ValType, ext: Ext) -> Reg {
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

    pub(crate) fn load(&mut self, op: LoadOp, addr: &Addr) -> Result<Reg> {
        let vt = op.value_type();
        let bytes = op.bytes();
        let d = self.b.reg(class(vt));
        if let Some(a) = self.shared_read(op, addr)? {
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
