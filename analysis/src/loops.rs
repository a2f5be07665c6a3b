//! Loop facts: for every loop of a function, its latches and exits, its induction variables and
//! its trip count as an expression over values live on entry (or the reason there is none).
//!
//! The loop forest itself comes from the front end ([`crate::ir::LoopData`]): Wasm loops are
//! structured, so the nesting of `loop` constructs *is* the forest. This module adds:
//!
//! - **induction variables**: a local of type `i32`/`i64` with exactly one `local.set`/`local.tee`
//!   in the loop (nested loops included), in a block of the loop itself (not a nested loop) that
//!   dominates every latch, storing `local.get x ± constant` read in the loop. A variable whose
//!   value (plus a constant) is used as a load or store address is a [`IvKind::Pointer`] — the
//!   pointers clang makes by strength reduction; any other is a [`IvKind::Counter`];
//! - **trip counts** for a single-latch, single-exit loop whose exit test compares an induction
//!   variable (before or after its update) with a loop-invariant value: the rotated clang -O2
//!   shape `loop … i' = i + s; br_if (i' != n)`/`(i' <s n)` at the bottom, the count-down shape
//!   `br_if (i' != 0)`, and the top-tested shape `br_if exit (i >= n) … br loop`.
//!
//! What is not built yet (see docs/OFFLOAD.md): affine address expressions, loop invariants
//! beyond locals/globals/constants, live-outs with closed forms, guard detection (a bottom-tested
//! loop's formula assumes the guard before the loop made the compare true on entry), and
//! wrap-around reasoning. Every function here is total: analyses never fail, they say "unknown"
//! with a reason.

use crate::dom::DomTree;
use crate::ir::{Block, FunctionIr, Imm, Inst, Loop, OpClass, Opcode, Terminator, ValType, Value};
use crate::opcode::ScalarOpcode as S;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// An edge that leaves a loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Exit {
    /// The block in the loop.
    pub from: Block,
    /// The block outside the loop, or `None` for a return from the function.
    pub to: Option<Block>,
}

/// Whether an induction variable is a counter or a strength-reduced pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum IvKind {
    /// Not used directly as an address.
    Counter,
    /// Used (plus a constant) as a load or store address.
    Pointer,
}

/// A local updated exactly once per iteration by a constant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InductionVar {
    /// The local.
    pub local: u32,
    /// `i32` or `i64`.
    pub ty: ValType,
    /// The constant added per iteration (negative for a decrement).
    pub step: i64,
    /// Counter or pointer.
    pub kind: IvKind,
    /// The block holding the update.
    pub update: Block,
}

/// A small expression over values live on loop entry, evaluated in the induction variable's
/// integer type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Expr {
    /// A constant.
    Const(i64),
    /// The value of a local on loop entry (`l3`).
    Local(u32),
    /// The value of a global on loop entry (`g0`).
    Global(u32),
    /// `a + b`.
    Add(Box<Expr>, Box<Expr>),
    /// `a - b`.
    Sub(Box<Expr>, Box<Expr>),
    /// `ceil(a / k)`, `k > 0`.
    DivCeil(Box<Expr>, i64),
    /// `a / k`, assuming `k` divides `a` (else the loop does not terminate this way).
    DivExact(Box<Expr>, i64),
}

impl Expr {
    fn add(a: Expr, b: Expr) -> Expr {
        match (a, b) {
            (e, Expr::Const(0)) | (Expr::Const(0), e) => e,
            (Expr::Const(x), Expr::Const(y)) => Expr::Const(x.wrapping_add(y)),
            (Expr::Add(e, c), Expr::Const(y)) if matches!(*c, Expr::Const(_)) => {
                let Expr::Const(x) = *c else {
                    return Expr::Add(e, c);
                };
                Expr::add(*e, Expr::Const(x.wrapping_add(y)))
            }
            (a, b) => Expr::Add(Box::new(a), Box::new(b)),
        }
    }

    fn sub(a: Expr, b: Expr) -> Expr {
        match (a, b) {
            (e, Expr::Const(0)) => e,
            (Expr::Const(x), Expr::Const(y)) => Expr::Const(x.wrapping_sub(y)),
            (a, b) => Expr::Sub(Box::new(a), Box::new(b)),
        }
    }

    fn div_ceil(a: Expr, k: i64) -> Expr {
        if k == 1 {
            a
        } else {
            Expr::DivCeil(Box::new(a), k)
        }
    }

    fn div_exact(a: Expr, k: i64) -> Expr {
        if k == 1 {
            a
        } else {
            Expr::DivExact(Box::new(a), k)
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Const(c) => write!(f, "{c}"),
            Expr::Local(l) => write!(f, "l{l}"),
            Expr::Global(g) => write!(f, "g{g}"),
            Expr::Add(a, b) => write!(f, "({a} + {b})"),
            Expr::Sub(a, b) => write!(f, "({a} - {b})"),
            Expr::DivCeil(a, k) => write!(f, "ceil({a} / {k})"),
            Expr::DivExact(a, k) => write!(f, "({a} /exact {k})"),
        }
    }
}

/// The number of iterations of a loop (times its latch runs), or why it is not known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum TripCount {
    /// Computable on entry.
    Known {
        /// The count, over values live on entry.
        expr: Expr,
        /// The controlling induction variable (a local).
        iv: u32,
        /// The exit test, e.g. `i32.ne at bottom on the updated value`.
        test: String,
        /// Bottom-tested (runs at least once): the count is exact only when the compare holds on
        /// entry, which clang's guard before a rotated loop ensures.
        at_least_once: bool,
    },
    /// Not computable; the reason.
    Unknown(String),
}

impl fmt::Display for TripCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TripCount::Known {
                expr,
                test,
                at_least_once,
                ..
            } => {
                write!(f, "{expr} [{test}")?;
                if *at_least_once {
                    f.write_str(", runs at least once")?;
                }
                f.write_str("]")
            }
            TripCount::Unknown(why) => write!(f, "unknown: {why}"),
        }
    }
}

/// Everything known about one loop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoopFacts {
    /// The loop.
    pub lp: Loop,
    /// Blocks of the loop that branch back to the header.
    pub latches: Vec<Block>,
    /// Edges that leave the loop.
    pub exits: Vec<Exit>,
    /// Induction variables, by local index.
    pub ivs: Vec<InductionVar>,
    /// The trip count.
    pub trip_count: TripCount,
}

impl fmt::Display for LoopFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: Vec<String>| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(" ")
            }
        };
        let latches = list(self.latches.iter().map(ToString::to_string).collect());
        let exits = list(
            self.exits
                .iter()
                .map(|e| match e.to {
                    Some(t) => format!("{}->{t}", e.from),
                    None => format!("{}->return", e.from),
                })
                .collect(),
        );
        writeln!(f, "{}: latches {latches}; exits {exits}", self.lp)?;
        for iv in &self.ivs {
            let kind = match iv.kind {
                IvKind::Counter => "counter",
                IvKind::Pointer => "pointer",
            };
            writeln!(
                f,
                "  iv l{}: {} {kind}, step {:+}, updated in {}",
                iv.local, iv.ty, iv.step, iv.update
            )?;
        }
        writeln!(f, "  trip count: {}", self.trip_count)
    }
}

/// Per-function lookup tables shared by the loop analysis and the detector.
#[derive(Debug)]
pub struct FuncInfo<'f> {
    /// The function.
    pub func: &'f FunctionIr,
    /// Dominators.
    pub dom: DomTree,
    defs: Vec<Option<(Block, usize)>>,
    /// Per block, its `local.set`/`local.tee` instructions: (local, index).
    sets: Vec<Vec<(u32, usize)>>,
    /// The constant propagation over the locals, computed on first use.
    local_consts: std::cell::OnceCell<crate::constprop::LocalConsts>,
    /// The live locals on entry to every block, computed on first use.
    liveness: std::cell::OnceCell<crate::liveness::Liveness>,
}

impl<'f> FuncInfo<'f> {
    /// Builds the tables for `func`.
    pub fn new(func: &'f FunctionIr) -> Self {
        let mut defs = vec![None; func.num_values as usize];
        let mut sets = Vec::with_capacity(func.blocks.len());
        for (bi, b) in func.blocks.iter().enumerate() {
            let mut in_block = Vec::new();
            for (ii, inst) in b.insts.iter().enumerate() {
                for r in &inst.results {
                    if let Some(slot) = defs.get_mut(r.index()) {
                        *slot = Some((Block(bi as u32), ii));
                    }
                }
                if let (Opcode::Scalar(S::LocalSet | S::LocalTee), Imm::Local(l)) =
                    (inst.op, &inst.imm)
                {
                    in_block.push((*l, ii));
                }
            }
            sets.push(in_block);
        }
        FuncInfo {
            func,
            dom: DomTree::new(func),
            defs,
            sets,
            local_consts: std::cell::OnceCell::new(),
            liveness: std::cell::OnceCell::new(),
        }
    }

    /// The forward constant propagation over the locals of the function (the same for every
    /// nest, so computed once).
    pub fn local_consts(&self) -> &crate::constprop::LocalConsts {
        self.local_consts
            .get_or_init(|| crate::constprop::LocalConsts::new(self.func, self.dom.rpo()))
    }

    /// The locals live on entry to every block (the same for every nest, so computed once).
    pub fn liveness(&self) -> &crate::liveness::Liveness {
        self.liveness
            .get_or_init(|| crate::liveness::Liveness::new(self.func))
    }

    /// Where `v` is defined by an instruction (not for block parameters).
    pub fn def_site(&self, v: Value) -> Option<(Block, usize)> {
        self.defs.get(v.index()).copied().flatten()
    }

    /// The instruction defining `v`.
    pub fn def(&self, v: Value) -> Option<&'f Inst> {
        let (b, i) = self.def_site(v)?;
        self.func.blocks.get(b.index())?.insts.get(i)
    }

    /// `v`, looking through `local.tee`.
    pub fn strip(&self, mut v: Value) -> Value {
        for _ in 0..64 {
            match self.def(v) {
                Some(inst) if inst.op == Opcode::Scalar(S::LocalTee) => match inst.args.first() {
                    Some(&a) => v = a,
                    None => return v,
                },
                _ => return v,
            }
        }
        v
    }

    /// The integer constant `v` is, if any.
    pub fn constant(&self, v: Value) -> Option<i64> {
        let inst = self.def(self.strip(v))?;
        match (inst.op, &inst.imm) {
            (Opcode::Scalar(S::I32Const | S::I64Const), Imm::Int(c)) => Some(*c),
            _ => None,
        }
    }

    /// Instructions in the blocks of `lp` with their sites.
    pub fn insts_in(&self, lp: Loop) -> Vec<(Block, usize, &'f Inst)> {
        let mut out = Vec::new();
        if let Some(data) = self.func.loop_data(lp) {
            for &b in &data.blocks {
                if let Some(bd) = self.func.block(b) {
                    out.extend(bd.insts.iter().enumerate().map(|(i, inst)| (b, i, inst)));
                }
            }
        }
        out
    }

    /// Whether `b` is one of `lp`'s blocks (a binary search: they are in increasing order).
    pub fn in_loop(&self, lp: Loop, b: Block) -> bool {
        self.func
            .loop_data(lp)
            .is_some_and(|d| d.blocks.binary_search(&b).is_ok())
    }

    /// Every `local.set`/`local.tee` in `lp`, by local.
    pub fn local_sets(&self, lp: Loop) -> BTreeMap<u32, Vec<(Block, usize)>> {
        let mut out: BTreeMap<u32, Vec<(Block, usize)>> = BTreeMap::new();
        if let Some(data) = self.func.loop_data(lp) {
            for &b in &data.blocks {
                for &(l, i) in self.sets.get(b.index()).map_or(&[][..], Vec::as_slice) {
                    out.entry(l).or_default().push((b, i));
                }
            }
        }
        out
    }

    /// The `local.set`/`local.tee` instructions of `local` inside `lp` whose value can reach
    /// the instruction at `at` (a block of `lp` and an index into it), along paths inside `lp`
    /// (back edges included, so the previous iteration's last write reaches the loop head). A
    /// write outside `lp` is not listed. Clang reuses locals for unrelated values; this tells
    /// which of a local's values an instruction can see, where [`Self::local_sets`] lists them
    /// all.
    pub fn reaching_sets(&self, lp: Loop, local: u32, at: (Block, usize)) -> Vec<(Block, usize)> {
        let last_before = |b: Block, end: usize| {
            self.sets
                .get(b.index())
                .into_iter()
                .flatten()
                .filter(|&&(l, i)| l == local && i < end)
                .map(|&(_, i)| (b, i))
                .next_back()
        };
        if let Some(site) = last_before(at.0, at.1) {
            return vec![site];
        }
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut stack: Vec<Block> = self.dom.preds(at.0).to_vec();
        while let Some(b) = stack.pop() {
            if !self.in_loop(lp, b) || !seen.insert(b) {
                continue;
            }
            match last_before(b, usize::MAX) {
                Some(site) => out.push(site),
                None => stack.extend_from_slice(self.dom.preds(b)),
            }
        }
        out.sort_unstable();
        out
    }

    /// The local `v` was read from (`local.get`), looking through `local.tee`.
    pub fn local_of(&self, v: Value) -> Option<u32> {
        let inst = self.def(self.strip(v))?;
        match (inst.op, &inst.imm) {
            (Opcode::Scalar(S::LocalGet), Imm::Local(l)) => Some(*l),
            _ => None,
        }
    }
}

/// Computes the facts of every loop of `func`, in loop order.
pub fn analyze_function(info: &FuncInfo<'_>) -> Vec<LoopFacts> {
    (0..info.func.loops.len())
        .map(|i| loop_facts(info, Loop(i as u32)))
        .collect()
}

fn loop_facts(info: &FuncInfo<'_>, lp: Loop) -> LoopFacts {
    let (latches, exits) = latches_and_exits(info, lp);
    let ivs = induction_vars(info, lp, &latches);
    let trip_count =
        trip_count(info, lp, &latches, &exits, &ivs).unwrap_or_else(TripCount::Unknown);
    LoopFacts {
        lp,
        latches,
        exits,
        ivs,
        trip_count,
    }
}

/// The blocks of `lp` with a back edge to its header, and its exit edges.
pub(crate) fn latches_and_exits(info: &FuncInfo<'_>, lp: Loop) -> (Vec<Block>, Vec<Exit>) {
    let (mut latches, mut exits) = (Vec::new(), Vec::new());
    let Some(data) = info.func.loop_data(lp) else {
        return (latches, exits);
    };
    for &b in &data.blocks {
        if !info.dom.is_reachable(b) {
            continue;
        }
        let Some(bd) = info.func.block(b) else {
            continue;
        };
        if matches!(bd.term, Terminator::Return(_)) {
            exits.push(Exit { from: b, to: None });
        }
        for s in bd.term.successors() {
            if s.block == data.header && !latches.contains(&b) {
                latches.push(b);
            } else if data.blocks.binary_search(&s.block).is_err() {
                let e = Exit {
                    from: b,
                    to: Some(s.block),
                };
                if !exits.contains(&e) {
                    exits.push(e);
                }
            }
        }
    }
    (latches, exits)
}

fn induction_vars(info: &FuncInfo<'_>, lp: Loop, latches: &[Block]) -> Vec<InductionVar> {
    let mut out = Vec::new();
    if latches.is_empty() {
        return out;
    }
    for (local, sets) in info.local_sets(lp) {
        let [(b, i)] = sets[..] else { continue };
        let Some(bd) = info.func.block(b) else {
            continue;
        };
        if bd.innermost_loop != Some(lp) || !latches.iter().all(|&l| info.dom.dominates(b, l)) {
            continue;
        }
        let Some(&v) = bd.insts.get(i).and_then(|inst| inst.args.first()) else {
            continue;
        };
        let Some((ty, step)) = step_of(info, lp, local, v) else {
            continue;
        };
        let kind = if is_address_base(info, lp, local) {
            IvKind::Pointer
        } else {
            IvKind::Counter
        };
        out.push(InductionVar {
            local,
            ty,
            step,
            kind,
            update: b,
        });
    }
    out
}

/// If `v` is `local.get local ± c` read inside `lp`: the type and the step.
fn step_of(info: &FuncInfo<'_>, lp: Loop, local: u32, v: Value) -> Option<(ValType, i64)> {
    let v = info.strip(v);
    let inst = info.def(v)?;
    let (ty, sub) = match inst.op {
        Opcode::Scalar(S::I32Add) => (ValType::I32, false),
        Opcode::Scalar(S::I32Sub) => (ValType::I32, true),
        Opcode::Scalar(S::I64Add) => (ValType::I64, false),
        Opcode::Scalar(S::I64Sub) => (ValType::I64, true),
        _ => return None,
    };
    let [a, b] = inst.args[..] else { return None };
    let reads_self = |x: Value| {
        info.local_of(x) == Some(local)
            && info
                .def_site(info.strip(x))
                .is_some_and(|(blk, _)| info.in_loop(lp, blk))
    };
    let step = match (info.constant(a), info.constant(b)) {
        (_, Some(c)) if reads_self(a) => {
            if sub {
                c.checked_neg()?
            } else {
                c
            }
        }
        (Some(c), _) if !sub && reads_self(b) => c,
        _ => return None,
    };
    (step != 0).then_some((ty, step))
}

/// Whether `local` (plus constants) is the address operand of a load or store in `lp`.
fn is_address_base(info: &FuncInfo<'_>, lp: Loop, local: u32) -> bool {
    info.insts_in(lp).into_iter().any(|(_, _, inst)| {
        matches!(inst.op.class(), OpClass::Load | OpClass::Store)
            && inst
                .args
                .first()
                .is_some_and(|&a| base_local(info, a) == Some(local))
    })
}

fn base_local(info: &FuncInfo<'_>, mut v: Value) -> Option<u32> {
    for _ in 0..16 {
        v = info.strip(v);
        if let Some(l) = info.local_of(v) {
            return Some(l);
        }
        let inst = info.def(v)?;
        if !matches!(inst.op, Opcode::Scalar(S::I32Add | S::I64Add)) {
            return None;
        }
        let [a, b] = inst.args[..] else { return None };
        v = if info.constant(b).is_some() {
            a
        } else if info.constant(a).is_some() {
            b
        } else {
            return None;
        };
    }
    None
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pred {
    Ne,
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Pred {
    pub(crate) fn negate(self) -> Pred {
        match self {
            Pred::Ne => Pred::Eq,
            Pred::Eq => Pred::Ne,
            Pred::Lt => Pred::Ge,
            Pred::Ge => Pred::Lt,
            Pred::Gt => Pred::Le,
            Pred::Le => Pred::Gt,
        }
    }

    pub(crate) fn mirror(self) -> Pred {
        match self {
            Pred::Lt => Pred::Gt,
            Pred::Gt => Pred::Lt,
            Pred::Le => Pred::Ge,
            Pred::Ge => Pred::Le,
            p => p,
        }
    }
}

pub(crate) fn pred_of(op: Opcode) -> Option<Pred> {
    let Opcode::Scalar(op) = op else { return None };
    Some(match op {
        S::I32Ne | S::I64Ne => Pred::Ne,
        S::I32Eq | S::I64Eq => Pred::Eq,
        S::I32LtS | S::I32LtU | S::I64LtS | S::I64LtU => Pred::Lt,
        S::I32LeS | S::I32LeU | S::I64LeS | S::I64LeU => Pred::Le,
        S::I32GtS | S::I32GtU | S::I64GtS | S::I64GtU => Pred::Gt,
        S::I32GeS | S::I32GeU | S::I64GeS | S::I64GeU => Pred::Ge,
        _ => return None,
    })
}

/// Follows empty jump-only blocks inside the loop: does `b` lead straight out of `lp`?
fn leaves(info: &FuncInfo<'_>, lp: Loop, mut b: Block) -> bool {
    for _ in 0..8 {
        if !info.in_loop(lp, b) {
            return true;
        }
        match info.func.block(b) {
            Some(bd) if bd.insts.is_empty() => match &bd.term {
                Terminator::Jump(c) => b = c.block,
                _ => return false,
            },
            _ => return false,
        }
    }
    false
}

/// The controlling exit test: (condition, continue when true, tested at the bottom).
pub(crate) fn exit_test(
    info: &FuncInfo<'_>,
    lp: Loop,
    latches: &[Block],
    exits: &[Exit],
) -> Result<(Value, bool, bool), String> {
    let [latch] = latches[..] else {
        return Err(format!("{} back edges", latches.len()));
    };
    let header = info.func.loop_data(lp).map(|d| d.header);
    let latch_term = info.func.block(latch).map(|b| &b.term);
    if exits.len() != 1 {
        return Err(format!("{} exits", exits.len()));
    }
    if let Some(Terminator::BrIf {
        cond,
        then,
        otherwise,
    }) = latch_term
    {
        let back_then = Some(then.block) == header;
        let other = if back_then {
            otherwise.block
        } else {
            then.block
        };
        if leaves(info, lp, other) {
            return Ok((*cond, back_then, true));
        }
        return Err("the latch's other edge stays in the loop".into());
    }
    if !matches!(latch_term, Some(Terminator::Jump(_))) {
        return Err("unrecognized latch".into());
    }
    let from = exits[0].from;
    match info.func.block(from).map(|b| &b.term) {
        Some(Terminator::BrIf {
            cond,
            then,
            otherwise,
        }) if info.dom.dominates(from, latch) => {
            let then_leaves = !info.in_loop(lp, then.block);
            let other_leaves = !info.in_loop(lp, otherwise.block);
            match (then_leaves, other_leaves) {
                (true, false) => Ok((*cond, false, false)),
                (false, true) => Ok((*cond, true, false)),
                _ => Err("unrecognized exit branch".into()),
            }
        }
        _ => Err("the exit is not a conditional branch that runs every iteration".into()),
    }
}

/// A loop-invariant integer expression for `v`, if it is one.
fn invariant(
    info: &FuncInfo<'_>,
    lp: Loop,
    v: Value,
    sets: &BTreeMap<u32, Vec<(Block, usize)>>,
    depth: u32,
) -> Option<Expr> {
    if depth > 8 {
        return None;
    }
    let v = info.strip(v);
    if let Some(c) = info.constant(v) {
        return Some(Expr::Const(c));
    }
    let inst = info.def(v)?;
    match (inst.op, &inst.imm) {
        (Opcode::Scalar(S::LocalGet), Imm::Local(l)) if !sets.contains_key(l) => {
            Some(Expr::Local(*l))
        }
        (Opcode::Scalar(S::GlobalGet), Imm::Global(g)) => {
            let written = info
                .insts_in(lp)
                .iter()
                .any(|(_, _, i)| i.op == Opcode::Scalar(S::GlobalSet) && i.imm == Imm::Global(*g));
            (!written).then_some(Expr::Global(*g))
        }
        (Opcode::Scalar(op @ (S::I32Add | S::I64Add | S::I32Sub | S::I64Sub)), _) => {
            let [a, b] = inst.args[..] else { return None };
            let (a, b) = (
                invariant(info, lp, a, sets, depth + 1)?,
                invariant(info, lp, b, sets, depth + 1)?,
            );
            Some(if matches!(op, S::I32Add | S::I64Add) {
                Expr::add(a, b)
            } else {
                Expr::sub(a, b)
            })
        }
        _ => None,
    }
}

fn trip_count(
    info: &FuncInfo<'_>,
    lp: Loop,
    latches: &[Block],
    exits: &[Exit],
    ivs: &[InductionVar],
) -> Result<TripCount, String> {
    if ivs.is_empty() {
        return Err("no induction variable".into());
    }
    let (cond, continue_when_true, bottom) = exit_test(info, lp, latches, exits)?;
    let cond = info.strip(cond);
    let sets = info.local_sets(lp);
    // (predicate, lhs, rhs, op name)
    let (mut pred, lhs, rhs, test_op): (Pred, Value, Option<Value>, String) = match info.def(cond) {
        Some(inst) if pred_of(inst.op).is_some() => {
            let [a, b] = inst.args[..] else {
                return Err("malformed compare".into());
            };
            (
                pred_of(inst.op).unwrap_or(Pred::Ne),
                a,
                Some(b),
                inst.op.name(),
            )
        }
        Some(inst) if matches!(inst.op, Opcode::Scalar(S::I32Eqz | S::I64Eqz)) => {
            let [a] = inst.args[..] else {
                return Err("malformed eqz".into());
            };
            (Pred::Eq, a, None, inst.op.name())
        }
        _ => (Pred::Ne, cond, None, "nonzero".to_string()),
    };
    if !continue_when_true {
        pred = pred.negate();
    }
    let iv_side = |v: Value| iv_operand(info, lp, ivs, &sets, v);
    let (iv, new_value, bound) = match (iv_side(lhs), rhs.and_then(iv_side)) {
        (Some((iv, nv)), _) => (iv, nv, rhs),
        (None, Some((iv, nv))) => {
            pred = pred.mirror();
            (iv, nv, Some(lhs))
        }
        (None, None) => return Err("the exit test does not compare an induction variable".into()),
    };
    let n = match bound {
        None => Expr::Const(0),
        Some(b) => invariant(info, lp, b, &sets, 0)
            .ok_or_else(|| format!("the loop bound {b} is not invariant"))?,
    };
    let i0 = Expr::Local(iv.local);
    let s = iv.step;
    let adjust = i64::from(bottom) - i64::from(new_value);
    let base = match pred {
        Pred::Ne if s > 0 => Expr::div_exact(Expr::sub(n, i0), s),
        Pred::Ne => Expr::div_exact(Expr::sub(i0, n), s.checked_neg().ok_or("step overflow")?),
        Pred::Lt if s > 0 => Expr::div_ceil(Expr::sub(n, i0), s),
        Pred::Le if s > 0 => Expr::div_ceil(Expr::sub(Expr::add(n, Expr::Const(1)), i0), s),
        Pred::Gt if s < 0 => {
            Expr::div_ceil(Expr::sub(i0, n), s.checked_neg().ok_or("step overflow")?)
        }
        Pred::Ge if s < 0 => Expr::div_ceil(
            Expr::sub(Expr::add(i0, Expr::Const(1)), n),
            s.checked_neg().ok_or("step overflow")?,
        ),
        Pred::Eq => return Err("the loop continues while a value is equal to the bound".into()),
        _ => return Err("the exit compare runs against the step's direction".into()),
    };
    let test = format!(
        "{test_op} at {} on the {} value",
        if bottom { "bottom" } else { "top" },
        if new_value { "updated" } else { "old" }
    );
    Ok(TripCount::Known {
        expr: Expr::add(base, Expr::Const(adjust)),
        iv: iv.local,
        test,
        at_least_once: bottom,
    })
}

/// If `v` is an induction variable's value: the variable and whether it is the updated value.
fn iv_operand<'a>(
    info: &FuncInfo<'_>,
    lp: Loop,
    ivs: &'a [InductionVar],
    sets: &BTreeMap<u32, Vec<(Block, usize)>>,
    v: Value,
) -> Option<(&'a InductionVar, bool)> {
    let v = info.strip(v);
    // The update's own value (`local.tee x (i32.add ...)`).
    for iv in ivs {
        let (b, i) = *sets.get(&iv.local)?.first()?;
        let set = info.func.block(b)?.insts.get(i)?;
        if set.args.first().map(|&a| info.strip(a)) == Some(v) {
            return Some((iv, true));
        }
    }
    let local = info.local_of(v)?;
    let iv = ivs.iter().find(|iv| iv.local == local)?;
    let (gb, gi) = info.def_site(v)?;
    if !info.in_loop(lp, gb) {
        return None;
    }
    let (sb, si) = *sets.get(&local)?.first()?;
    let after = if gb == sb {
        gi > si
    } else {
        info.dom.dominates(sb, gb)
    };
    Some((iv, after))
}
