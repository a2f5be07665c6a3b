//! The detector: one verdict per outermost loop nest, one diagnostic per loop.
//!
//! A nest is rejected, with every reason found, when its body does something the offload model
//! (docs/DESIGN.md, "The offload model") excludes: calls, `memory.grow`, global writes, table and
//! other non-arithmetic operators, memories other than 0, returns, operators the front end does
//! not model; when a loop of the nest has no induction variable or no trip count computable on
//! entry; when the outermost loop carries a scalar from one iteration to the next (a float
//! accumulator: a parallel reduction would change the result; any other scalar: no reduction
//! support yet); or when a store address depends on a loaded value (an indirect store, as in a
//! histogram).
//!
//! A **candidate** has passed only these checks. Not built yet, and listed in
//! [`Verdict::Candidate::pending`]: affine address analysis, the dependence test between
//! iterations (and the runtime alias conditions for the guard), live-outs with closed forms, and
//! trap analysis. A candidate is therefore not yet proved offloadable.
//!
//! This is an analysis: it never fails and never panics, whatever the IR holds.

use crate::candidate::Candidate;
use crate::ir::{Block, FunctionIr, Imm, Loop, ModuleIr, OpClass, Opcode, Terminator, Value};
use crate::loops::{FuncInfo, LoopFacts, TripCount, analyze_function};
use crate::opcode::ScalarOpcode as S;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// Why a loop nest is not offloaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Reason {
    /// A direct call.
    Calls {
        /// Callee (function index space).
        function: u32,
        /// Byte offset of the call.
        offset: u32,
    },
    /// `call_indirect`.
    IndirectCall {
        /// Byte offset.
        offset: u32,
    },
    /// `memory.grow`.
    MemoryGrow {
        /// Byte offset.
        offset: u32,
    },
    /// `global.set`.
    GlobalWrite {
        /// The global.
        global: u32,
        /// Byte offset.
        offset: u32,
    },
    /// An operator the front end does not model.
    Unsupported {
        /// Operator name.
        op: String,
        /// Byte offset.
        offset: u32,
    },
    /// An operator outside the offload model (tables, SIMD, atomics, bulk memory, ...).
    NotOffloadable {
        /// Operator name.
        op: String,
        /// Byte offset.
        offset: u32,
    },
    /// A load or store to a memory other than 0.
    OtherMemory {
        /// The memory.
        memory: u32,
        /// Byte offset.
        offset: u32,
    },
    /// A `return` (or branch to the function label) inside the nest.
    Returns,
    /// A loop of the nest has no induction variable.
    NoInductionVariable {
        /// The loop.
        lp: Loop,
    },
    /// A loop of the nest has no trip count computable on entry.
    TripCount {
        /// The loop.
        lp: Loop,
        /// Why.
        why: String,
    },
    /// A float local carried from one iteration of the outermost loop to the next.
    FloatAccumulator {
        /// The local.
        local: u32,
        /// `f32` or `f64`.
        ty: String,
    },
    /// Another scalar local carried from one iteration of the outermost loop to the next.
    CarriedScalar {
        /// The local.
        local: u32,
    },
    /// A store whose address depends on a value loaded from memory.
    StoreAddressFromLoad {
        /// Byte offset of the store.
        offset: u32,
    },
    /// A load or store address that is not affine in the loop counters and live-ins.
    AddressNotAffine {
        /// Byte offset of the access.
        offset: u32,
        /// The operator.
        op: String,
        /// Why.
        why: String,
    },
    /// A loop that leaves from the middle of an iteration after a memory access or an operator
    /// that can trap: the iteration that leaves runs part of the body, which a kernel of whole
    /// iterations would not.
    PartialIteration {
        /// The loop.
        lp: Loop,
        /// Byte offset of the first such operator before the exit test.
        offset: u32,
    },
    /// A loop whose trip count changes with the iteration of an enclosing loop.
    NonRectangular {
        /// The loop.
        lp: Loop,
    },
    /// Two iterations of a parallel loop touch the same bytes, at least one writing.
    CarriedDependence {
        /// Byte offset of a writing access.
        offset: u32,
        /// Byte offset of the access it conflicts with.
        other: u32,
        /// Why.
        why: String,
        /// Other pairs of accesses refuted for the same reason (listed once, with this pair).
        #[serde(skip_serializing_if = "is_zero")]
        more: u32,
    },
    /// A local used after the nest whose value there has no closed form.
    LiveOut {
        /// The local.
        local: u32,
    },
    /// The nest leaves in a way the rewrite cannot reproduce.
    Exits {
        /// How.
        why: String,
    },
    /// The symbolic evaluation gave up.
    Evaluation {
        /// Why.
        why: String,
    },
}

impl Reason {
    /// A short, stable name for the kind of reason, for histograms (`calls`, `float-accumulator`).
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Calls { .. } => "calls",
            Reason::IndirectCall { .. } => "indirect-call",
            Reason::MemoryGrow { .. } => "memory-grow",
            Reason::GlobalWrite { .. } => "global-write",
            Reason::Unsupported { .. } => "unsupported-op",
            Reason::NotOffloadable { .. } => "op-outside-model",
            Reason::OtherMemory { .. } => "other-memory",
            Reason::Returns => "returns",
            Reason::NoInductionVariable { .. } => "no-induction-variable",
            Reason::TripCount { .. } => "trip-count",
            Reason::FloatAccumulator { .. } => "float-accumulator",
            Reason::CarriedScalar { .. } => "carried-scalar",
            Reason::StoreAddressFromLoad { .. } => "store-address-from-load",
            Reason::AddressNotAffine { .. } => "address-not-affine",
            Reason::PartialIteration { .. } => "partial-iteration",
            Reason::NonRectangular { .. } => "non-rectangular",
            Reason::CarriedDependence { .. } => "carried-dependence",
            Reason::LiveOut { .. } => "live-out",
            Reason::Exits { .. } => "exits",
            Reason::Evaluation { .. } => "too-complex",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Calls { function, offset } => {
                write!(f, "calls function {function} (offset {offset:#x})")
            }
            Reason::IndirectCall { offset } => write!(f, "indirect call (offset {offset:#x})"),
            Reason::MemoryGrow { offset } => write!(f, "memory.grow (offset {offset:#x})"),
            Reason::GlobalWrite { global, offset } => {
                write!(f, "writes global {global} (offset {offset:#x})")
            }
            Reason::Unsupported { op, offset } => {
                write!(f, "unsupported operator {op} (offset {offset:#x})")
            }
            Reason::NotOffloadable { op, offset } => {
                write!(f, "operator {op} cannot be offloaded (offset {offset:#x})")
            }
            Reason::OtherMemory { memory, offset } => write!(
                f,
                "accesses memory {memory}, only memory 0 is offloaded (offset {offset:#x})"
            ),
            Reason::Returns => f.write_str("returns from inside the loop nest"),
            Reason::NoInductionVariable { lp } => write!(f, "{lp}: no induction variable"),
            Reason::TripCount { lp, why } => {
                write!(f, "{lp}: trip count not computable on entry: {why}")
            }
            Reason::FloatAccumulator { local, ty } => write!(
                f,
                "loop-carried {ty} accumulator l{local}: parallel reduction would change the result"
            ),
            Reason::CarriedScalar { local } => write!(
                f,
                "loop-carried scalar l{local} (not an induction variable)"
            ),
            Reason::StoreAddressFromLoad { offset } => write!(
                f,
                "store address depends on a loaded value (offset {offset:#x})"
            ),
            Reason::AddressNotAffine { offset, op, why } => {
                write!(f, "{op} address {why} (offset {offset:#x})")
            }
            Reason::PartialIteration { lp, offset } => write!(
                f,
                "{lp}: the iteration that leaves runs a memory access or a trapping operator \
                 (offset {offset:#x}) before its exit test"
            ),
            Reason::NonRectangular { lp } => write!(
                f,
                "{lp}: trip count depends on an enclosing loop's iteration (non-rectangular nest)"
            ),
            Reason::CarriedDependence {
                offset,
                other,
                why,
                more,
            } => {
                write!(
                    f,
                    "loop-carried dependence between the accesses at {offset:#x} and {other:#x}"
                )?;
                if *more > 0 {
                    write!(
                        f,
                        " (and {more} more pair{})",
                        if *more == 1 { "" } else { "s" }
                    )?;
                }
                write!(f, ": {why}")
            }
            Reason::LiveOut { local } => write!(
                f,
                "l{local} is used after the loop and its final value has no closed form"
            ),
            Reason::Exits { why } => write!(f, "the nest's exit {why}"),
            Reason::Evaluation { why } => write!(f, "too complex to analyze: {why}"),
        }
    }
}

/// The verdict on one loop nest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Offloadable, with the plan for lowering and guarding it.
    Candidate(Box<Candidate>),
    /// Rejected, with every reason found (at least one), the most fundamental first.
    Rejected {
        /// The reasons.
        reasons: Vec<Reason>,
    },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Candidate(c) => write!(
                f,
                "offloadable: grid {}",
                c.grid
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Verdict::Rejected { reasons } => {
                let r: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                write!(f, "rejected: {}", r.join("; "))
            }
        }
    }
}

/// One outermost loop nest and its verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NestVerdict {
    /// Function index (imports first).
    pub function: u32,
    /// The outermost loop.
    pub root: Loop,
    /// Byte offset of the root's `loop` opcode.
    pub offset: u32,
    /// Every loop of the nest, root first.
    pub loops: Vec<Loop>,
    /// Facts about each loop of the nest, in the order of `loops`.
    pub facts: Vec<LoopFacts>,
    /// The verdict.
    pub verdict: Verdict,
}

/// The detector's result: a verdict for every outermost loop nest of the module.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OffloadPlan {
    /// Nests in function order, then loop order.
    pub nests: Vec<NestVerdict>,
}

/// One line about one loop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Function index (imports first).
    pub function: u32,
    /// The loop.
    pub lp: Loop,
    /// Byte offset of its `loop` opcode.
    pub offset: u32,
    /// The outermost loop of its nest.
    pub nest: Loop,
    /// What was decided, and why.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "function {} {} (offset {:#x}): {}",
            self.function, self.lp, self.offset, self.message
        )
    }
}

/// Decides every loop nest of `module`. Never fails: one diagnostic per loop. Functions are
/// independent, so they are analyzed on all available cores ([`analyze_with_threads`]); the
/// result does not depend on the number of threads.
pub fn analyze(module: &ModuleIr) -> (OffloadPlan, Vec<Diagnostic>) {
    analyze_with_threads(module, crate::par::default_threads())
}

/// [`analyze`] on at most `threads` threads (1: on the calling thread).
pub fn analyze_with_threads(module: &ModuleIr, threads: usize) -> (OffloadPlan, Vec<Diagnostic>) {
    let funcs = &module.functions;
    let per_func = crate::par::map(funcs.len(), threads, |i| analyze_one(&funcs[i]));
    let mut plan = OffloadPlan::default();
    let mut diags = Vec::new();
    for (nests, d) in per_func {
        plan.nests.extend(nests);
        diags.extend(d);
    }
    (plan, diags)
}

/// The verdicts and diagnostics of one function.
type FunctionVerdicts = (Vec<NestVerdict>, Vec<Diagnostic>);

fn analyze_one(func: &FunctionIr) -> FunctionVerdicts {
    let mut nests = Vec::new();
    let mut diags = Vec::new();
    let info = FuncInfo::new(func);
    let facts = analyze_function(&info);
    for (li, data) in func.loops.iter().enumerate() {
        if data.parent.is_none() {
            visit_nest(&info, &facts, Loop(li as u32), &mut nests, &mut diags);
        }
    }
    (nests, diags)
}

/// Decides the nest rooted at `root`; when it is rejected, decides each child loop's nest in
/// turn (recursively), so a parallel nest inside a sequential loop (a time step, the pivot loop
/// of an elimination) is offloaded on its own: the host runs the rejected loop and dispatches the
/// inner nest on every iteration, in program order. Every loop gets one diagnostic, from the
/// innermost nest decided that contains it.
fn visit_nest(
    info: &FuncInfo<'_>,
    facts: &[LoopFacts],
    root: Loop,
    nests: &mut Vec<NestVerdict>,
    diags: &mut Vec<Diagnostic>,
) {
    let func = info.func;
    let Some(data) = func.loop_data(root) else {
        return;
    };
    let nest = nest_loops(func, root);
    let (verdict, counted) = decide(info, facts, &nest);
    let text = verdict.to_string();
    // Why a loop of a rejected nest is not decided on its own (see the end of this function).
    let alone = if counted {
        String::new()
    } else {
        format!("; not decided on its own, since {root} has no trip count")
    };
    let rejected = matches!(verdict, Verdict::Rejected { .. });
    // The loops of a rejected counted nest are decided again below, each in the innermost
    // nest that contains it, and get their lines there: only the root's is written here.
    let inner_decided = rejected && counted;
    for &lp in &nest {
        if inner_decided && lp != root {
            continue;
        }
        let offset = func.loop_data(lp).map_or(0, |d| d.offset);
        // A rejected nest's reasons are listed once, at its outermost loop.
        let message = match &verdict {
            _ if lp == root => text.clone(),
            Verdict::Rejected { reasons } => format!(
                "in nest {root}: rejected ({} reason{} listed at {root}{alone})",
                reasons.len(),
                if reasons.len() == 1 { "" } else { "s" },
            ),
            Verdict::Candidate(_) => format!("in nest {root}: {text}"),
        };
        diags.push(Diagnostic {
            function: func.index,
            lp,
            offset,
            nest: root,
            message,
        });
    }
    nests.push(NestVerdict {
        function: func.index,
        root,
        offset: data.offset,
        facts: nest
            .iter()
            .filter_map(|l| facts.get(l.index()).cloned())
            .collect(),
        loops: nest.clone(),
        verdict,
    });
    // Only a counted loop is a sequential loop the host runs around kernels (a time step, a
    // pivot, a column). Inside a loop whose trip count is not known on entry (a parser's or a
    // codec's `while (ip < end)`), the inner loops are short copies that a dispatch call on
    // every entry would only slow down.
    if inner_decided {
        for &child in &nest {
            if func.loop_data(child).and_then(|d| d.parent) == Some(root) {
                visit_nest(info, facts, child, nests, diags);
            }
        }
    }
}

fn nest_loops(func: &FunctionIr, root: Loop) -> Vec<Loop> {
    let mut out = vec![root];
    for (i, l) in func.loops.iter().enumerate() {
        // Parents come before children, so one pass finds every descendant.
        if l.parent.is_some_and(|p| out.contains(&p)) {
            out.push(Loop(i as u32));
        }
    }
    out
}

/// The verdict on `nest`, and whether its root's trip count is known on entry.
fn decide(info: &FuncInfo<'_>, facts: &[LoopFacts], nest: &[Loop]) -> (Verdict, bool) {
    let mut reasons = Vec::new();
    let root = nest.first().copied().unwrap_or(Loop(0));
    body_reasons(info, root, &mut reasons);
    // The symbolic evaluation finds induction variables and trip counts the local patterns of
    // `loops` miss (a counter updated on two paths, a test on a copy of the counter).
    let eval = reasons
        .is_empty()
        .then(|| crate::symbolic::evaluate_nest(info, facts, root));
    let symbolic_trip = |lp: Loop| {
        eval.as_ref()
            .and_then(|e| e.loops.get(&lp))
            .is_some_and(|l| l.trip.is_some())
    };
    let counted = symbolic_trip(root)
        || facts
            .get(root.index())
            .is_some_and(|f| matches!(f.trip_count, TripCount::Known { .. }));
    for &lp in nest {
        if symbolic_trip(lp) {
            continue;
        }
        match facts.get(lp.index()) {
            Some(f) if f.ivs.is_empty() => reasons.push(Reason::NoInductionVariable { lp }),
            Some(LoopFacts {
                trip_count: TripCount::Unknown(why),
                ..
            }) => reasons.push(Reason::TripCount {
                lp,
                why: why.clone(),
            }),
            Some(_) => {}
            None => reasons.push(Reason::TripCount {
                lp,
                why: "no loop facts".into(),
            }),
        }
    }
    let mut ivs: HashSet<u32> = facts
        .get(root.index())
        .map(|f| f.ivs.iter().map(|iv| iv.local).collect())
        .unwrap_or_default();
    // Pointers an inner loop advances and the outer loop never resets are induction variables
    // of the outer loop too (the evaluator finds their step, e.g. `4 * T2`).
    if let Some(e) = eval.as_ref().and_then(|e| e.loops.get(&root)) {
        ivs.extend(e.ivs.keys());
    }
    carried_scalars(info, root, &ivs, &mut reasons);
    indirect_stores(info, root, &mut reasons);
    let mut unique = Vec::new();
    for r in reasons {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    if !unique.is_empty() {
        return (Verdict::Rejected { reasons: unique }, counted);
    }
    // No reason means the body checks passed, so the evaluation above ran: reuse it.
    let eval = eval.unwrap_or_else(|| crate::symbolic::evaluate_nest(info, facts, root));
    let verdict = match crate::candidate::build(info, nest, &eval) {
        Ok(c) => Verdict::Candidate(Box::new(c)),
        Err(reasons) => Verdict::Rejected { reasons },
    };
    (verdict, counted)
}

fn body_reasons(info: &FuncInfo<'_>, root: Loop, out: &mut Vec<Reason>) {
    let unsupported: HashSet<u32> = info.func.unsupported.iter().map(|u| u.offset).collect();
    for (b, _, inst) in info.insts_in(root) {
        if !info.dom.is_reachable(b) {
            continue;
        }
        let offset = inst.offset;
        let reason = match (inst.op, &inst.imm) {
            _ if unsupported.contains(&offset) => Some(Reason::Unsupported {
                op: inst.op.name(),
                offset,
            }),
            (Opcode::Scalar(S::Call | S::ReturnCall), Imm::Func(function)) => Some(Reason::Calls {
                function: *function,
                offset,
            }),
            (Opcode::Scalar(S::CallIndirect | S::ReturnCallIndirect), _) => {
                Some(Reason::IndirectCall { offset })
            }
            (Opcode::Scalar(S::MemoryGrow), _) => Some(Reason::MemoryGrow { offset }),
            (Opcode::Scalar(S::GlobalSet), Imm::Global(global)) => Some(Reason::GlobalWrite {
                global: *global,
                offset,
            }),
            (_, Imm::Mem(m) | Imm::MemLane(m, _)) if m.memory != 0 => Some(Reason::OtherMemory {
                memory: m.memory,
                offset,
            }),
            (op, _) if !offloadable(op) => Some(Reason::NotOffloadable {
                op: op.name(),
                offset,
            }),
            _ => None,
        };
        out.extend(reason);
    }
    let returns = info.func.loop_data(root).is_some_and(|d| {
        d.blocks.iter().any(|&b| {
            info.dom.is_reachable(b)
                && info
                    .func
                    .block(b)
                    .is_some_and(|bd| matches!(bd.term, Terminator::Return(_)))
        })
    });
    if returns {
        out.push(Reason::Returns);
    }
}

fn offloadable(op: Opcode) -> bool {
    match op.class() {
        OpClass::IntArith
        | OpClass::FloatArith
        | OpClass::Conversion
        | OpClass::Compare
        | OpClass::Const
        | OpClass::Variable => true,
        OpClass::Load | OpClass::Store => matches!(op, Opcode::Scalar(_)),
        OpClass::Control => !matches!(op, Opcode::Scalar(S::Unreachable)),
        OpClass::Other => matches!(
            op,
            Opcode::Scalar(S::Select | S::TypedSelect | S::Drop | S::Nop)
        ),
        OpClass::Call | OpClass::V128 => false,
    }
}

/// Locals read in an iteration of `root` on some path from its head that has not written them
/// yet in that iteration (a must-be-assigned dataflow over the nest, back edges ignored: any path
/// to a back edge passes its loop's head first, so they can only add assignments).
pub(crate) fn carried_scalars(
    info: &FuncInfo<'_>,
    root: Loop,
    ivs: &HashSet<u32>,
    out: &mut Vec<Reason>,
) {
    let func = info.func;
    let sets = info.local_sets(root);
    let Some(data) = func.loop_data(root) else {
        return;
    };
    let is_back_edge = |from: Block, to: Block| {
        func.block(to)
            .and_then(|t| t.innermost_loop)
            .is_some_and(|l| {
                func.loop_data(l).is_some_and(|d| d.header == to) && info.in_loop(l, from)
            })
    };
    // Topological order of the nest's blocks without back edges (DFS post-order, reversed).
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![(data.header, false)];
    while let Some((b, done)) = stack.pop() {
        if done {
            order.push(b);
            continue;
        }
        if !seen.insert(b) {
            continue;
        }
        stack.push((b, true));
        if let Some(bd) = func.block(b) {
            for s in bd.term.successors() {
                if info.in_loop(root, s.block)
                    && !is_back_edge(b, s.block)
                    && !seen.contains(&s.block)
                {
                    stack.push((s.block, false));
                }
            }
        }
    }
    order.reverse();
    let mut assigned_in: BTreeMap<Block, std::collections::BTreeSet<u32>> = BTreeMap::new();
    assigned_in.insert(data.header, Default::default());
    let mut reported = HashSet::new();
    for &b in &order {
        let Some(mut assigned) = assigned_in.get(&b).cloned() else {
            continue;
        };
        let Some(bd) = func.block(b) else { continue };
        for inst in &bd.insts {
            match (inst.op, &inst.imm) {
                (Opcode::Scalar(S::LocalGet), Imm::Local(l))
                    if sets.contains_key(l)
                        && !ivs.contains(l)
                        && !assigned.contains(l)
                        && reported.insert(*l) =>
                {
                    match func.local_type(*l) {
                        Some(ty) if ty.is_float() => out.push(Reason::FloatAccumulator {
                            local: *l,
                            ty: ty.to_string(),
                        }),
                        _ => out.push(Reason::CarriedScalar { local: *l }),
                    }
                }
                (Opcode::Scalar(S::LocalSet | S::LocalTee), Imm::Local(l)) => {
                    assigned.insert(*l);
                }
                _ => {}
            }
        }
        for s in bd.term.successors() {
            if !info.in_loop(root, s.block) || is_back_edge(b, s.block) {
                continue;
            }
            match assigned_in.get_mut(&s.block) {
                Some(cur) => cur.retain(|l| assigned.contains(l)),
                None => {
                    assigned_in.insert(s.block, assigned.clone());
                }
            }
        }
    }
}

fn indirect_stores(info: &FuncInfo<'_>, root: Loop, out: &mut Vec<Reason>) {
    let incoming = incoming_args(info, root);
    for (_, _, inst) in info.insts_in(root) {
        if inst.op.class() != OpClass::Store {
            continue;
        }
        let Some(&addr) = inst.args.first() else {
            continue;
        };
        let mut visited = HashSet::new();
        if depends_on_load(info, root, &incoming, addr, &mut visited) {
            out.push(Reason::StoreAddressFromLoad {
                offset: inst.offset,
            });
        }
    }
}

/// For each block parameter of a block in `root`: the values branches in `root` pass to it.
fn incoming_args(info: &FuncInfo<'_>, root: Loop) -> BTreeMap<Value, Vec<Value>> {
    let mut map: BTreeMap<Value, Vec<Value>> = BTreeMap::new();
    let Some(data) = info.func.loop_data(root) else {
        return map;
    };
    for &b in &data.blocks {
        let Some(bd) = info.func.block(b) else {
            continue;
        };
        for call in bd.term.successors() {
            let Some(target) = info.func.block(call.block) else {
                continue;
            };
            for (p, a) in target.params.iter().zip(&call.args) {
                map.entry(*p).or_default().push(*a);
            }
        }
    }
    map
}

fn depends_on_load(
    info: &FuncInfo<'_>,
    root: Loop,
    incoming: &BTreeMap<Value, Vec<Value>>,
    v: Value,
    visited: &mut HashSet<Value>,
) -> bool {
    if !visited.insert(v) || visited.len() > 1024 {
        return false;
    }
    if let Some(args) = incoming.get(&v) {
        return args
            .iter()
            .any(|&a| depends_on_load(info, root, incoming, a, visited));
    }
    let Some(inst) = info.def(v) else {
        return false;
    };
    if inst.op.class() == OpClass::Load {
        return true;
    }
    if let (Opcode::Scalar(S::LocalGet), Imm::Local(l)) = (inst.op, &inst.imm) {
        // Only the writes that can reach this read: a local that later in the iteration holds
        // a loaded value does not make an earlier address loaded.
        let Some(site) = info.def_site(v) else {
            return false;
        };
        return info
            .reaching_sets(root, *l, site)
            .into_iter()
            .any(|(b, i)| {
                info.func
                    .block(b)
                    .and_then(|bd| bd.insts.get(i))
                    .and_then(|set| set.args.first())
                    .is_some_and(|&a| depends_on_load(info, root, incoming, a, visited))
            });
    }
    inst.args
        .iter()
        .any(|&a| depends_on_load(info, root, incoming, a, visited))
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
