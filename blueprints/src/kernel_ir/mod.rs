//! KernelIR: the kernel that one offloaded Wasm loop nest becomes.
//!
//! A [`Kernel`] has a name, [`Param`]s (device pointers to the regions it accesses, and scalar
//! live-ins), a [`GridDim`] per parallel loop (1 to 3: the global thread index stands for that
//! loop's counter, `counter = start + tid * step`, and threads with `tid >= trip` do nothing),
//! typed local variables, and a body of [`Stmt`]s over [`Expr`] trees with Wasm semantics.
//! Memory is reached only through pointer params plus an [`Affine`] byte offset, in 64-bit
//! arithmetic. Operators that trap in Wasm set the kernel's trap flag instead (see
//! `docs/OFFLOAD.md`, "Float and integer semantics in PTX").
//!
//! The text form ([`std::fmt::Display`]) is for humans and golden tests; [`verify`] checks the
//! invariants listed at the top of `verify.rs`. This module must never do I/O and never decide
//! what is offloadable: that is the compiler's detector.

mod display;
mod ops;
mod verify;

pub use ops::{BinKind, BinOp, LoadOp, StoreOp, UnKind, UnOp};
pub use verify::{MAX_DEPTH, MAX_PARAMS, verify};

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A Wasm value type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary64.
    F64,
}

impl ValType {
    /// Whether this is `i32` or `i64`.
    pub fn is_int(self) -> bool {
        matches!(self, ValType::I32 | ValType::I64)
    }
}

/// A kernel parameter, by index into [`Kernel::params`]; prints as `p3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ParamId(pub u32);

/// A loop counter (grid dimension or sequential `for`); prints as `c1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LoopId(pub u32);

/// A local variable, by index into [`Kernel::locals`]; prints as `l0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LocalId(pub u32);

/// What a parameter carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ParamKind {
    /// A 64-bit device pointer to an accessed region (see [`Addr`] for what it points at).
    Ptr,
    /// A scalar live-in of the given type.
    Scalar(ValType),
}

/// One kernel parameter. The name is for people; PTX uses positional names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// Human-readable name (the Wasm local or global it came from).
    pub name: String,
    /// Pointer or scalar.
    pub kind: ParamKind,
}

/// A constant. Floats are kept as bit patterns so that every value, NaN payloads included,
/// round-trips exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Const {
    /// `i32.const`.
    I32(i32),
    /// `i64.const`.
    I64(i64),
    /// `f32.const`, as bits.
    F32(u32),
    /// `f64.const`, as bits.
    F64(u64),
}

impl Const {
    /// The constant's type.
    pub fn ty(self) -> ValType {
        match self {
            Const::I32(_) => ValType::I32,
            Const::I64(_) => ValType::I64,
            Const::F32(_) => ValType::F32,
            Const::F64(_) => ValType::F64,
        }
    }
}

/// How an `i32` variable widens to 64 bits inside an [`Affine`] offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ext {
    /// Sign-extend (the default for loop counters).
    Signed,
    /// Zero-extend (the default for params: Wasm addresses are unsigned).
    Unsigned,
}

/// A variable of an affine offset: a loop counter in scope, an integer scalar param, or an
/// integer local (a value the thread computed, e.g. a counter clang keeps after an unrolled loop;
/// addresses with a local are computed where they are used, never hoisted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AffineVar {
    /// A loop counter.
    Counter(LoopId),
    /// An integer scalar param.
    Param(ParamId),
    /// An integer local.
    Local(LocalId),
}

impl From<LoopId> for AffineVar {
    fn from(c: LoopId) -> Self {
        AffineVar::Counter(c)
    }
}

impl From<ParamId> for AffineVar {
    fn from(p: ParamId) -> Self {
        AffineVar::Param(p)
    }
}

/// `coef * ext(var) [* ext(stride)]`, in bytes.
///
/// The optional stride is a live-in (an integer scalar param), so a row-major access
/// `a[i*n + j]` with a run-time `n` is `4*i*n + 4*j`: affine in the counters, with live-in
/// coefficients. The host evaluates the same terms to compute accessed ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AffineTerm {
    /// Multiplier, in bytes.
    pub coef: i64,
    /// The variable.
    pub var: AffineVar,
    /// How an `i32` variable widens (ignored for `i64`).
    pub ext: Ext,
    /// An optional live-in factor, and how it widens.
    pub stride: Option<(ParamId, Ext)>,
}

/// `constant + Σ coef·var`, evaluated in wrapping 64-bit arithmetic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Affine {
    /// Constant byte offset.
    pub constant: i64,
    /// The terms, in order.
    pub terms: Vec<AffineTerm>,
}

impl Affine {
    /// The constant offset `c`.
    pub fn constant(c: i64) -> Self {
        Affine {
            constant: c,
            terms: Vec::new(),
        }
    }

    /// Adds `coef * var`, with the default extension (signed for counters, unsigned for params).
    pub fn plus(self, coef: i64, var: impl Into<AffineVar>) -> Self {
        let var = var.into();
        let ext = match var {
            AffineVar::Counter(_) => Ext::Signed,
            AffineVar::Param(_) | AffineVar::Local(_) => Ext::Unsigned,
        };
        self.plus_ext(coef, var, ext)
    }

    /// Adds `coef * ext(var)`.
    pub fn plus_ext(mut self, coef: i64, var: impl Into<AffineVar>, ext: Ext) -> Self {
        self.terms.push(AffineTerm {
            coef,
            var: var.into(),
            ext,
            stride: None,
        });
        self
    }

    /// Adds `coef * var * stride` with default extensions (the stride zero-extends).
    pub fn plus_strided(self, coef: i64, var: impl Into<AffineVar>, stride: ParamId) -> Self {
        let mut a = self.plus(coef, var);
        if let Some(t) = a.terms.last_mut() {
            t.stride = Some((stride, Ext::Unsigned));
        }
        a
    }
}

/// A memory address: `base + offset`.
///
/// The host passes each pointer param *biased*: `device_copy_of_range - range_start`
/// (wrapping), so `offset` is the Wasm effective address itself (`addr_operand + memarg.offset`)
/// and the kernel's arithmetic matches the Wasm arithmetic. The compiler guarantees that the
/// Wasm address computation does not wrap for any iteration it offloads.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Addr {
    /// A [`ParamKind::Ptr`] param that is not the trap flag.
    pub base: ParamId,
    /// Byte offset from `base`.
    pub offset: Affine,
    /// Whether the access is known to be naturally aligned on the device. When false the
    /// emitter accesses memory byte by byte (Wasm allows unaligned accesses; PTX does not).
    pub aligned: bool,
}

impl Addr {
    /// An aligned address.
    pub fn new(base: ParamId, offset: Affine) -> Self {
        Addr {
            base,
            offset,
            aligned: true,
        }
    }

    /// The same address, accessed byte by byte.
    pub fn unaligned(mut self) -> Self {
        self.aligned = false;
        self
    }
}

/// An expression tree. Operands are evaluated left to right; a trapping operator sets the trap
/// flag and ends the thread (see `docs/OFFLOAD.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// A constant.
    Const(Const),
    /// A scalar param.
    Param(ParamId),
    /// A loop counter in scope.
    Counter(LoopId),
    /// A definitely-assigned local.
    Local(LocalId),
    /// A unary operator.
    Unary(UnOp, Box<Expr>),
    /// A binary operator.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// Wasm `select`: both arms are evaluated; `cond` is an `i32`, non-zero picks `then`.
    Select {
        /// `i32` condition.
        cond: Box<Expr>,
        /// Value when `cond != 0`.
        then: Box<Expr>,
        /// Value when `cond == 0`.
        els: Box<Expr>,
    },
    /// A load.
    Load(LoadOp, Addr),
}

impl Expr {
    /// `i32.const v`.
    pub fn i32(v: i32) -> Self {
        Expr::Const(Const::I32(v))
    }
    /// `i64.const v`.
    pub fn i64(v: i64) -> Self {
        Expr::Const(Const::I64(v))
    }
    /// `f32.const v`.
    pub fn f32(v: f32) -> Self {
        Expr::Const(Const::F32(v.to_bits()))
    }
    /// `f64.const v`.
    pub fn f64(v: f64) -> Self {
        Expr::Const(Const::F64(v.to_bits()))
    }
    /// A scalar param.
    pub fn param(p: ParamId) -> Self {
        Expr::Param(p)
    }
    /// A loop counter.
    pub fn counter(c: LoopId) -> Self {
        Expr::Counter(c)
    }
    /// A local.
    pub fn local(l: LocalId) -> Self {
        Expr::Local(l)
    }
    /// `op(a)`.
    pub fn unary(op: UnOp, a: Expr) -> Self {
        Expr::Unary(op, Box::new(a))
    }
    /// `op(a, b)`.
    pub fn binary(op: BinOp, a: Expr, b: Expr) -> Self {
        Expr::Binary(op, Box::new(a), Box::new(b))
    }
    /// `select(cond, then, els)`.
    pub fn select(cond: Expr, then: Expr, els: Expr) -> Self {
        Expr::Select {
            cond: Box::new(cond),
            then: Box::new(then),
            els: Box::new(els),
        }
    }
    /// `op [addr]`.
    pub fn load(op: LoadOp, addr: Addr) -> Self {
        Expr::Load(op, addr)
    }
}

/// A sequential loop inside one thread: `for (c = start; c < bound; c += step)` for a positive
/// step, `c > bound` for a negative one. `start` and `bound` are evaluated once, on entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForLoop {
    /// The counter, bound only inside `body`.
    pub counter: LoopId,
    /// `i32` or `i64`.
    pub ty: ValType,
    /// Initial value.
    pub start: Expr,
    /// Exclusive bound.
    pub bound: Expr,
    /// Non-zero constant step (fits in `ty`).
    pub step: i64,
    /// Whether the bound comparison is signed.
    pub signed: bool,
    /// The loop body.
    pub body: Vec<Stmt>,
}

/// A statement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Stmt {
    /// `local = value`.
    Set(LocalId, Expr),
    /// `op [addr], value`.
    Store(StoreOp, Addr, Expr),
    /// `if cond != 0 { then } else { els }` (`cond` is an `i32`).
    If {
        /// `i32` condition.
        cond: Expr,
        /// Taken when `cond != 0`.
        then: Vec<Stmt>,
        /// Taken when `cond == 0`.
        els: Vec<Stmt>,
    },
    /// A sequential inner loop.
    For(ForLoop),
}

/// A load or a store of a body, with its address.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MemOp<'a> {
    /// `op [addr]`.
    Load(LoadOp, &'a Addr),
    /// `op [addr], value`.
    Store(StoreOp, &'a Addr),
}

impl<'a> MemOp<'a> {
    /// The address.
    pub fn addr(self) -> &'a Addr {
        match self {
            MemOp::Load(_, a) | MemOp::Store(_, a) => a,
        }
    }
}

/// Every load and store in `ss`, nested `if`s and `for`s included (their conditions and
/// bounds too), in the emitter's order: a store's value before the store, `select`'s arms
/// before its condition.
pub fn mem_ops(ss: &[Stmt]) -> Vec<MemOp<'_>> {
    fn stmts<'a>(ss: &'a [Stmt], out: &mut Vec<MemOp<'a>>) {
        for s in ss {
            match s {
                Stmt::Set(_, e) => expr(e, out),
                Stmt::Store(op, a, e) => {
                    expr(e, out);
                    out.push(MemOp::Store(*op, a));
                }
                Stmt::If { cond, then, els } => {
                    expr(cond, out);
                    stmts(then, out);
                    stmts(els, out);
                }
                Stmt::For(f) => {
                    expr(&f.start, out);
                    expr(&f.bound, out);
                    stmts(&f.body, out);
                }
            }
        }
    }
    fn expr<'a>(e: &'a Expr, out: &mut Vec<MemOp<'a>>) {
        match e {
            Expr::Const(_) | Expr::Param(_) | Expr::Counter(_) | Expr::Local(_) => {}
            Expr::Unary(_, a) => expr(a, out),
            Expr::Binary(_, a, b) => {
                expr(a, out);
                expr(b, out);
            }
            Expr::Select { cond, then, els } => {
                expr(then, out);
                expr(els, out);
                expr(cond, out);
            }
            Expr::Load(op, a) => out.push(MemOp::Load(*op, a)),
        }
    }
    let mut out = Vec::new();
    stmts(ss, &mut out);
    out
}

/// Where a grid dimension's counter starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Start {
    /// A constant.
    Const(i64),
    /// An integer scalar param of the counter's type.
    Param(ParamId),
}

/// One parallel dimension: thread index `tid` along x, y or z (by position) runs the loop
/// iteration with `counter = start + tid * step`; threads with `tid >= trip` do nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GridDim {
    /// The counter this dimension stands for.
    pub counter: LoopId,
    /// `i32` or `i64` (the counter's wrapping arithmetic).
    pub ty: ValType,
    /// First value.
    pub start: Start,
    /// Non-zero constant step (fits in `ty`).
    pub step: i64,
    /// An integer scalar param: the trip count, read as unsigned.
    pub trip: ParamId,
}

/// A kernel. Build one with [`KernelBuilder`]; check it with [`verify`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Kernel {
    /// The PTX entry name (an identifier).
    pub name: String,
    /// Parameters, in launch order.
    pub params: Vec<Param>,
    /// The `u32` flag that trapping operators set to 1; required when any operator can trap.
    pub trap_flag: Option<ParamId>,
    /// One to three parallel dimensions: x, y, z.
    pub grid: Vec<GridDim>,
    /// Local variable types.
    pub locals: Vec<ValType>,
    /// The per-thread body.
    pub body: Vec<Stmt>,
}

impl Kernel {
    /// The type of `e` in this kernel, if it is well typed enough to have one.
    pub fn expr_type(&self, e: &Expr) -> Option<ValType> {
        match e {
            Expr::Const(c) => Some(c.ty()),
            Expr::Param(p) => match self.params.get(p.0 as usize)?.kind {
                ParamKind::Scalar(t) => Some(t),
                ParamKind::Ptr => None,
            },
            Expr::Counter(c) => self.counter_type(*c),
            Expr::Local(l) => self.locals.get(l.0 as usize).copied(),
            Expr::Unary(op, _) => Some(op.result()),
            Expr::Binary(op, _, _) => Some(op.result()),
            Expr::Select { then, .. } => self.expr_type(then),
            Expr::Load(op, _) => Some(op.value_type()),
        }
    }

    /// The declared type of a counter (grid dimension or `for` loop), if it exists.
    pub fn counter_type(&self, c: LoopId) -> Option<ValType> {
        if let Some(g) = self.grid.iter().find(|g| g.counter == c) {
            return Some(g.ty);
        }
        fn find(stmts: &[Stmt], c: LoopId) -> Option<ValType> {
            stmts.iter().find_map(|s| match s {
                Stmt::For(f) if f.counter == c => Some(f.ty),
                Stmt::For(f) => find(&f.body, c),
                Stmt::If { then, els, .. } => find(then, c).or_else(|| find(els, c)),
                _ => None,
            })
        }
        find(&self.body, c)
    }

    /// Whether any operator in the body can trap.
    pub fn can_trap(&self) -> bool {
        fn expr(e: &Expr) -> bool {
            match e {
                Expr::Unary(op, a) => op.can_trap() || expr(a),
                Expr::Binary(op, a, b) => op.can_trap() || expr(a) || expr(b),
                Expr::Select { cond, then, els } => expr(cond) || expr(then) || expr(els),
                _ => false,
            }
        }
        fn stmts(ss: &[Stmt]) -> bool {
            ss.iter().any(|s| match s {
                Stmt::Set(_, e) | Stmt::Store(_, _, e) => expr(e),
                Stmt::If { cond, then, els } => expr(cond) || stmts(then) || stmts(els),
                Stmt::For(f) => expr(&f.start) || expr(&f.bound) || stmts(&f.body),
            })
        }
        stmts(&self.body)
    }
}

/// Builds a [`Kernel`] step by step; [`KernelBuilder::build`] verifies it.
#[derive(Debug)]
pub struct KernelBuilder {
    kernel: Kernel,
    next_loop: u32,
}

impl KernelBuilder {
    /// A kernel named `name` with nothing in it.
    pub fn new(name: impl Into<String>) -> Self {
        KernelBuilder {
            kernel: Kernel {
                name: name.into(),
                params: Vec::new(),
                trap_flag: None,
                grid: Vec::new(),
                locals: Vec::new(),
                body: Vec::new(),
            },
            next_loop: 0,
        }
    }

    fn param(&mut self, name: impl Into<String>, kind: ParamKind) -> ParamId {
        let id = ParamId(self.kernel.params.len() as u32);
        self.kernel.params.push(Param {
            name: name.into(),
            kind,
        });
        id
    }

    /// Adds a device-pointer param.
    pub fn ptr(&mut self, name: impl Into<String>) -> ParamId {
        self.param(name, ParamKind::Ptr)
    }

    /// Adds a scalar param.
    pub fn scalar(&mut self, name: impl Into<String>, ty: ValType) -> ParamId {
        self.param(name, ParamKind::Scalar(ty))
    }

    /// Adds the trap-flag pointer param (named `trap`) and makes it the kernel's trap flag.
    pub fn trap_flag(&mut self) -> ParamId {
        let p = self.ptr("trap");
        self.kernel.trap_flag = Some(p);
        p
    }

    /// A fresh loop id for a [`ForLoop`].
    pub fn loop_id(&mut self) -> LoopId {
        let id = LoopId(self.next_loop);
        self.next_loop += 1;
        id
    }

    /// Adds the next grid dimension (x, then y, then z) and returns its counter.
    pub fn grid(&mut self, ty: ValType, start: Start, step: i64, trip: ParamId) -> LoopId {
        let counter = self.loop_id();
        self.kernel.grid.push(GridDim {
            counter,
            ty,
            start,
            step,
            trip,
        });
        counter
    }

    /// Adds a local of type `ty`.
    pub fn local(&mut self, ty: ValType) -> LocalId {
        let id = LocalId(self.kernel.locals.len() as u32);
        self.kernel.locals.push(ty);
        id
    }

    /// Appends a statement to the body.
    pub fn push(&mut self, s: Stmt) -> &mut Self {
        self.kernel.body.push(s);
        self
    }

    /// The kernel, unverified.
    pub fn finish(self) -> Kernel {
        self.kernel
    }

    /// The kernel, after [`verify`] accepts it.
    pub fn build(self) -> Result<Kernel> {
        verify(&self.kernel)?;
        Ok(self.kernel)
    }
}
