//! From a nest that passed the body checks to a candidate: affine addresses, the grid, the
//! dependence test's runtime conditions, live-outs with closed forms, traps, and a
//! profitability estimate. Conditions 2–6 of the offload model (docs/DESIGN.md).
//!
//! **Grid.** The root loop is grid dimension 0 (x). A directly nested loop becomes the next
//! dimension while: it is its parent's only nested loop, the parent stores nothing outside it,
//! its trip count is fixed for the nest (rectangular), the dependence test still passes with it,
//! and there are fewer than three dimensions. Every other loop stays sequential inside a thread,
//! in its original order, so every float result is computed in the CPU's order.
//!
//! **Dependence test.** Each address is split into base, grid and sequential strides and a
//! constant ([`AccessPlan`]); accesses with the same base form a [`Group`]. Whether two threads
//! can touch the same byte is decided in [`crate::dependence`] (also used at run time by the
//! dispatch host); here only the resulting proofs, refutations and runtime conditions are
//! collected.

use crate::dependence::{Proof, pair_test};
use crate::detect::Reason;
use crate::ir::{Block, Loop, OpClass, Opcode, Terminator};
use crate::loops::FuncInfo;
use crate::opcode::ScalarOpcode as S;
use crate::poly::{Poly, Sym};
use crate::symbolic::{Alts, NestEval, TripForm};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Fewest threads for which the guard dispatches (a heuristic: below this a launch costs more
/// than the loop; see docs/OFFLOAD.md).
pub const MIN_THREADS: u64 = 4096;

/// One memory access of a candidate, split for the dependence test and the host's range check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessPlan {
    /// Byte offset of the operator.
    pub offset: u32,
    /// Operator name.
    pub op: String,
    /// Whether it writes.
    pub store: bool,
    /// Bytes touched.
    pub width: u32,
    /// The full address.
    pub addr: Poly,
    /// Its group (index into [`Candidate::groups`]).
    pub group: usize,
    /// Stride per grid dimension (bytes per iteration), outermost first.
    pub grid: Vec<Poly>,
    /// Stride per enclosing sequential loop.
    pub seq: Vec<(Loop, Poly)>,
    /// The constant part.
    pub constant: i64,
    /// Branches that decide whether it runs at all (see [`crate::symbolic::Guard`]). The
    /// analysis's own tests count the access regardless; the host drops it from its range and
    /// alias checks when a guard fails for the launch's live-ins.
    pub when: Vec<crate::symbolic::Guard>,
}

crate::dependence::strided_by_fields!(AccessPlan);

/// Accesses sharing one base.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The base (live-ins only, no constant).
    pub base: Poly,
    /// Whether some access of the group writes.
    pub writes: bool,
    /// The bytes the group's accesses may touch over the whole nest, `[lo, hi)`, over the
    /// live-ins and trip counts, when the accesses differ only by constants. Symbolic strides are
    /// taken as non-negative here; the host evaluates each access's extremes exactly.
    pub range: Option<(Poly, Poly)>,
}

/// A check the guard makes at run time, before dispatching.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Condition {
    /// A bottom-tested loop runs at least once, so its trip count formula holds.
    AtLeastOnce {
        /// The loop.
        lp: Loop,
    },
    /// The trip count's division is exact (else the loop would not end this way).
    ExactTrip {
        /// The loop.
        lp: Loop,
    },
    /// The bytes two groups touch do not overlap.
    NoOverlap {
        /// A writing group.
        a: usize,
        /// Another group.
        b: usize,
    },
    /// Different threads touch different bytes of a writing group.
    DisjointThreads {
        /// The group.
        group: usize,
    },
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::AtLeastOnce { lp } => write!(f, "T{} >= 1", lp.0),
            Condition::ExactTrip { lp } => write!(f, "T{} divides exactly", lp.0),
            Condition::NoOverlap { a, b } => write!(f, "range(G{a}) ∩ range(G{b}) = ∅"),
            Condition::DisjointThreads { group } => {
                write!(f, "threads touch disjoint bytes of G{group}")
            }
        }
    }
}

/// Everything the compiler needs to lower and guard a nest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Loops mapped to grid dimensions, outermost (x) first.
    pub grid: Vec<Loop>,
    /// Loops run sequentially inside each thread.
    pub sequential: Vec<Loop>,
    /// Trip count of each loop of the nest.
    pub trips: BTreeMap<Loop, TripForm>,
    /// Induction variables per loop: local → step.
    pub ivs: BTreeMap<Loop, BTreeMap<u32, Poly>>,
    /// Locals whose value on entry the kernel needs.
    pub live_ins: Vec<u32>,
    /// Locals constant on entry (not passed; folded).
    pub entry_constants: BTreeMap<u32, i64>,
    /// Every memory access.
    pub accesses: Vec<AccessPlan>,
    /// Access groups.
    pub groups: Vec<Group>,
    /// Checks the guard makes at run time.
    pub conditions: Vec<Condition>,
    /// Locals used after the nest, with their values after it.
    pub live_outs: Vec<(u32, Poly)>,
    /// Operators that can trap (they set the kernel's trap flag): name and offset.
    pub traps: Vec<(String, u32)>,
    /// Operators per thread: arithmetic, memory (over the sequential loops' trip counts).
    pub work: (Poly, Poly),
}

impl Candidate {
    /// The number of threads: the product of the grid loops' trip counts.
    pub fn threads(&self) -> String {
        let t: Vec<String> = self.grid.iter().map(|l| format!("T{}", l.0)).collect();
        t.join("*")
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |ls: &[Loop]| {
            if ls.is_empty() {
                "-".to_string()
            } else {
                ls.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        writeln!(
            f,
            "  grid {} (x first); sequential {}",
            names(&self.grid),
            names(&self.sequential)
        )?;
        for (lp, t) in &self.trips {
            write!(f, "  T{} = {t}", lp.0)?;
            if let Some(ivs) = self.ivs.get(lp) {
                for (l, s) in ivs {
                    write!(f, "; l{l} += {s}")?;
                }
            }
            writeln!(f)?;
        }
        let li: Vec<String> = self.live_ins.iter().map(|l| format!("l{l}")).collect();
        let ec: Vec<String> = self
            .entry_constants
            .iter()
            .filter(|(l, _)| self.live_ins.contains(l) || self.mentioned(**l))
            .map(|(l, c)| format!("l{l}={c}"))
            .collect();
        writeln!(
            f,
            "  live-ins {}{}",
            if li.is_empty() {
                "-".into()
            } else {
                li.join(" ")
            },
            if ec.is_empty() {
                String::new()
            } else {
                format!("; constant on entry {}", ec.join(" "))
            }
        )?;
        for (i, g) in self.groups.iter().enumerate() {
            let range = match &g.range {
                Some((lo, hi)) => format!("[{lo}, {hi})"),
                None => "per access".into(),
            };
            writeln!(
                f,
                "  G{i}: base {}{}, bytes {range}",
                g.base,
                if g.writes { ", written" } else { ", read only" }
            )?;
        }
        for a in &self.accesses {
            writeln!(f, "    {:#x} {} G{} [{}]", a.offset, a.op, a.group, a.addr)?;
        }
        let conds: Vec<String> = self.conditions.iter().map(ToString::to_string).collect();
        writeln!(
            f,
            "  runtime conditions: {}",
            if conds.is_empty() {
                "none".into()
            } else {
                conds.join("; ")
            }
        )?;
        let lo: Vec<String> = self
            .live_outs
            .iter()
            .map(|(l, p)| format!("l{l} = {p}"))
            .collect();
        writeln!(
            f,
            "  live-outs: {}",
            if lo.is_empty() {
                "none".into()
            } else {
                lo.join("; ")
            }
        )?;
        let tr: Vec<String> = self
            .traps
            .iter()
            .map(|(op, off)| format!("{op} at {off:#x}"))
            .collect();
        writeln!(
            f,
            "  may trap (sets the trap flag): {}",
            if tr.is_empty() {
                "nothing".into()
            } else {
                tr.join(", ")
            }
        )?;
        write!(
            f,
            "  per thread: {} arithmetic, {} memory ops; dispatched when {} >= {MIN_THREADS}",
            self.work.0,
            self.work.1,
            self.threads()
        )
    }
}

impl Candidate {
    fn mentioned(&self, l: u32) -> bool {
        self.accesses
            .iter()
            .any(|a| a.addr.mentions(|s| s == Sym::Local(l)))
    }
}

/// Builds the candidate for `nest` (root first) from its symbolic evaluation, or the reasons it
/// is not one.
pub fn build(
    info: &FuncInfo<'_>,
    nest: &[Loop],
    eval: &NestEval,
) -> Result<Candidate, Vec<Reason>> {
    let root = nest.first().copied().unwrap_or(Loop(0));
    if let Some(why) = &eval.gave_up {
        return Err(vec![Reason::Evaluation { why: why.clone() }]);
    }
    let mut reasons = Vec::new();
    // Rectangular trip counts.
    let mut trips = BTreeMap::new();
    for &lp in nest {
        match eval.loops.get(&lp).and_then(|e| e.trip.clone()) {
            Some(t) if t.symbols().iter().all(|s| s.is_invariant()) => {
                trips.insert(lp, t);
            }
            Some(_) => reasons.push(Reason::NonRectangular { lp }),
            None => reasons.push(Reason::TripCount {
                lp,
                why: "not computable from the values on entry to the nest".into(),
            }),
        }
    }
    // Whole iterations: a loop that leaves from the middle of an iteration must not have run a
    // memory access or a trapping operator by then (a kernel runs whole iterations only).
    for &lp in nest {
        if let Some(offset) = effect_before_exit(info, lp) {
            reasons.push(Reason::PartialIteration { lp, offset });
        }
    }
    // Affine addresses.
    for a in &eval.accesses {
        if let Err(why) = affine(a.addr.as_ref()) {
            reasons.push(Reason::AddressNotAffine {
                offset: a.offset,
                op: a.op.clone(),
                why: why.into(),
            });
        }
    }
    // Live-outs.
    let live_outs = match live_outs(info, root, eval) {
        Ok(l) => l,
        Err(mut r) => {
            reasons.append(&mut r);
            Vec::new()
        }
    };
    if !reasons.is_empty() {
        return Err(reasons);
    }
    let trip_poly = |lp: Loop| -> Poly {
        trips
            .get(&lp)
            .and_then(TripForm::as_poly)
            .unwrap_or_else(|| Poly::sym(Sym::Trip(lp)))
    };
    // Grid: grow from the root while the dependence test holds.
    let func = info.func;
    let children = |lp: Loop| -> Vec<Loop> {
        nest.iter()
            .copied()
            .filter(|&c| func.loop_data(c).and_then(|d| d.parent) == Some(lp))
            .collect()
    };
    let stores_outside = |lp: Loop, child: Loop| -> bool {
        info.insts_in(lp)
            .iter()
            .any(|(b, _, inst)| inst.op.class() == OpClass::Store && !info.in_loop(child, *b))
    };
    let mut grid = vec![root];
    let mut best = dependences(eval, &grid, nest, &trip_poly)?;
    while grid.len() < 3 {
        let Some(&last) = grid.last() else { break };
        let [child] = children(last)[..] else { break };
        if stores_outside(last, child) {
            break;
        }
        // A scalar carried from one iteration of the child to the next (other than its
        // induction variables) would become a race between threads.
        let child_ivs: std::collections::HashSet<u32> = eval
            .loops
            .get(&child)
            .map(|e| e.ivs.keys().copied().collect())
            .unwrap_or_default();
        let mut carried = Vec::new();
        crate::detect::carried_scalars(info, child, &child_ivs, &mut carried);
        if !carried.is_empty() {
            break;
        }
        let mut g = grid.clone();
        g.push(child);
        match dependences(eval, &g, nest, &trip_poly) {
            Ok(d) => {
                grid = g;
                best = d;
            }
            Err(_) => break,
        }
    }
    let (groups, accesses, dep_conditions) = best;
    // Trip-count conditions first, then the alias checks.
    let mut conditions = Vec::new();
    // Both come from the symbolic evaluation, which also finds trip counts that the local loop
    // facts miss (a bound reached through a chain of locals): a bottom-tested loop's formula holds
    // only if the body runs at least once, whichever analysis found it.
    for &lp in nest {
        let Some(t) = trips.get(&lp) else { continue };
        if eval.loops.get(&lp).is_some_and(|e| e.bottom) {
            conditions.push(Condition::AtLeastOnce { lp });
        }
        if t.exact && t.as_poly().is_none() {
            conditions.push(Condition::ExactTrip { lp });
        }
    }
    conditions.extend(dep_conditions);
    let sequential: Vec<Loop> = nest.iter().copied().filter(|l| !grid.contains(l)).collect();
    Ok(Candidate {
        live_ins: live_ins(info, root, eval, &accesses, &trips, &live_outs),
        ivs: eval
            .loops
            .iter()
            .map(|(l, e)| (*l, e.ivs.clone()))
            .collect(),
        entry_constants: eval.entry_constants.clone(),
        traps: traps(info, root),
        work: work(info, &grid, &sequential, &trip_poly),
        grid,
        sequential,
        trips,
        accesses,
        groups,
        conditions,
        live_outs,
    })
}

/// The first memory access or trapping operator that the iteration leaving `lp` runs before
/// its exit test, when the exit is not decided at a latch (a bottom-tested loop's last iteration
/// is a whole one). The loop's *body* is the blocks that can still reach a latch; a body block
/// with a way out of the body decides the exit. Every body block from which such a block is
/// reached without a back edge of `lp` runs once more than the loop's trip count.
fn effect_before_exit(info: &FuncInfo<'_>, lp: Loop) -> Option<u32> {
    let func = info.func;
    let header = func.loop_data(lp)?.header;
    let targets = |b: Block| -> Vec<Block> {
        func.block(b)
            .map(|bd| bd.term.successors().map(|s| s.block).collect())
            .unwrap_or_default()
    };
    let (latches, _) = crate::loops::latches_and_exits(info, lp);
    let is_latch = |b: Block| latches.contains(&b);
    // Backwards over the edges inside `lp`, not past the header (no back edge of `lp`).
    let back = |from: Vec<Block>| -> BTreeSet<Block> {
        let mut seen = BTreeSet::new();
        let mut stack = from;
        while let Some(b) = stack.pop() {
            if !seen.insert(b) || b == header {
                continue;
            }
            stack.extend(
                info.dom
                    .preds(b)
                    .iter()
                    .copied()
                    .filter(|&p| info.in_loop(lp, p)),
            );
        }
        seen
    };
    let body = back(latches.clone());
    let deciding: Vec<Block> = body
        .iter()
        .copied()
        .filter(|&b| !is_latch(b) && targets(b).iter().any(|t| !body.contains(t)))
        .collect();
    if deciding.is_empty() {
        return None;
    }
    back(deciding)
        .iter()
        .filter_map(|&b| func.block(b))
        .flat_map(|bd| bd.insts.iter())
        .find(|inst| matches!(inst.op.class(), OpClass::Load | OpClass::Store) || can_trap(inst.op))
        .map(|inst| inst.offset)
}

fn affine(addr: Option<&Alts>) -> Result<(), &'static str> {
    let Some(alts) = addr else {
        return Err("not an affine expression of the loop counters and live-ins");
    };
    for (m, _) in alts.all().iter().flat_map(Poly::terms) {
        if m.iter().any(|s| matches!(s, Sym::Head(..))) {
            return Err("depends on a value carried across iterations");
        }
        if m.iter().filter(|s| matches!(s, Sym::Iter(_))).count() > 1 {
            return Err("multiplies two loop counters");
        }
    }
    Ok(())
}

type Deps = (Vec<Group>, Vec<AccessPlan>, Vec<Condition>);

fn dependences(
    eval: &NestEval,
    grid: &[Loop],
    nest: &[Loop],
    trip: &dyn Fn(Loop) -> Poly,
) -> Result<Deps, Vec<Reason>> {
    let mut groups: Vec<Group> = Vec::new();
    let mut plans = Vec::new();
    for a in &eval.accesses {
        let Some(addrs) = &a.addr else { continue };
        for addr in addrs.all() {
            let mut rest = addr.clone();
            let mut gs = Vec::new();
            for &g in grid {
                let (r, c) = rest.split_linear(Sym::Iter(g)).unwrap_or_default();
                gs.push(c);
                rest = r;
            }
            let mut seq = Vec::new();
            for &s in nest.iter().filter(|l| !grid.contains(l)) {
                let (r, c) = rest.split_linear(Sym::Iter(s)).unwrap_or_default();
                if c != Poly::default() {
                    seq.push((s, c));
                }
                rest = r;
            }
            let constant = rest.constant_term();
            let base = rest.sub(&Poly::constant(constant)).unwrap_or_default();
            let group = match groups.iter().position(|g| g.base == base) {
                Some(i) => i,
                None => {
                    groups.push(Group {
                        base,
                        writes: false,
                        range: None,
                    });
                    groups.len() - 1
                }
            };
            if a.store
                && let Some(g) = groups.get_mut(group)
            {
                g.writes = true;
            }
            plans.push(AccessPlan {
                offset: a.offset,
                op: a.op.clone(),
                store: a.store,
                width: a.width,
                addr: addr.clone(),
                group,
                grid: gs,
                seq,
                constant,
                when: a.when.clone(),
            });
        }
    }
    for (gi, g) in groups.iter_mut().enumerate() {
        g.range = group_range(plans.iter().filter(|p| p.group == gi), trip);
    }
    let mut conditions = Vec::new();
    let mut reasons = Vec::new();
    let mut refuted = BTreeSet::new();
    let push = |c: Condition, v: &mut Vec<Condition>| {
        if !v.contains(&c) {
            v.push(c);
        }
    };
    for (i, p) in plans.iter().enumerate() {
        for q in plans.iter().skip(i) {
            if !p.store && !q.store {
                continue;
            }
            let (w, o) = if p.store { (p, q) } else { (q, p) };
            if w.group != o.group {
                let (a, b) = (w.group.min(o.group), w.group.max(o.group));
                let (a, b) = if groups.get(a).is_some_and(|g| g.writes) {
                    (a, b)
                } else {
                    (b, a)
                };
                push(Condition::NoOverlap { a, b }, &mut conditions);
                continue;
            }
            let base = groups
                .get(w.group)
                .map(|g| g.base.clone())
                .unwrap_or_default();
            match pair_test(w, o, grid, trip, &base) {
                Proof::Proved => {}
                Proof::Runtime => push(
                    Condition::DisjointThreads { group: w.group },
                    &mut conditions,
                ),
                Proof::Refuted(why) => {
                    if !refuted.insert((w.offset, o.offset, why.clone())) {
                        continue;
                    }
                    // One reason per distinct finding: further pairs refuted for the same
                    // reason (every access to a row the outer loop rewrites) are counted.
                    let same = reasons.iter_mut().find_map(|r| match r {
                        Reason::CarriedDependence { why: w2, more, .. } if *w2 == why => Some(more),
                        _ => None,
                    });
                    match same {
                        Some(more) => *more += 1,
                        None => reasons.push(Reason::CarriedDependence {
                            offset: w.offset,
                            other: o.offset,
                            why,
                            more: 0,
                        }),
                    }
                }
            }
        }
    }
    if reasons.is_empty() {
        Ok((groups, plans, conditions))
    } else {
        Err(reasons)
    }
}

/// `[lo, hi)` of a group's accesses (see [`Group::range`]).
fn group_range<'p>(
    members: impl Iterator<Item = &'p AccessPlan>,
    trip: &dyn Fn(Loop) -> Poly,
) -> Option<(Poly, Poly)> {
    let mut best: Option<(Poly, Poly)> = None;
    for p in members {
        let mut lo = p.addr.clone();
        let mut hi = p.addr.clone();
        // Replace every iteration number by its extreme: 0 or T - 1 by the stride's sign.
        let iters: Vec<Sym> = p
            .addr
            .symbols()
            .filter(|s| matches!(s, Sym::Iter(_)))
            .collect();
        for s in iters {
            let Sym::Iter(lp) = s else { continue };
            let last = trip(lp).sub(&Poly::constant(1))?;
            let (_, c) = p.addr.split_linear(s)?;
            let negative = c.as_constant().is_some_and(|c| c < 0);
            let (at_lo, at_hi) = if negative {
                (last.clone(), Poly::default())
            } else {
                (Poly::default(), last.clone())
            };
            lo = lo.substitute(s, &at_lo)?;
            hi = hi.substitute(s, &at_hi)?;
        }
        let hi = hi.add(&Poly::constant(i64::from(p.width)))?;
        best = Some(match best {
            None => (lo, hi),
            Some((blo, bhi)) => {
                let dlo = lo.sub(&blo)?.as_constant()?;
                let dhi = hi.sub(&bhi)?.as_constant()?;
                (
                    if dlo < 0 { lo } else { blo },
                    if dhi > 0 { hi } else { bhi },
                )
            }
        });
    }
    best
}

/// Values used after the nest, each with its closed form.
fn live_outs(
    info: &FuncInfo<'_>,
    root: Loop,
    eval: &NestEval,
) -> Result<Vec<(u32, Poly)>, Vec<Reason>> {
    let func = info.func;
    let Some(data) = func.loop_data(root) else {
        return Ok(Vec::new());
    };
    let mut targets = BTreeSet::new();
    for &b in &data.blocks {
        let Some(bd) = func.block(b) else { continue };
        if !info.dom.is_reachable(b) {
            continue;
        }
        for s in bd.term.successors() {
            if !info.in_loop(root, s.block) {
                if !s.args.is_empty() {
                    return Err(vec![Reason::Exits {
                        why: "passes values on the stack out of the loop".into(),
                    }]);
                }
                targets.insert(s.block);
            }
        }
        if matches!(bd.term, Terminator::Return(_)) {
            return Err(vec![Reason::Returns]);
        }
    }
    if targets.len() > 1 {
        return Err(vec![Reason::Exits {
            why: format!("{} exit targets", targets.len()),
        }]);
    }
    let Some(&target) = targets.iter().next() else {
        return Ok(Vec::new()); // never exits: the trip count check already failed
    };
    let live = info.liveness().at_entry(target);
    let mut out = Vec::new();
    let mut reasons = Vec::new();
    let exit = eval.exit.clone().unwrap_or_default();
    for l in info.local_sets(root).into_keys() {
        if !live.contains(l) {
            continue;
        }
        match exit
            .get(&l)
            .cloned()
            .flatten()
            .as_ref()
            .and_then(Alts::single)
        {
            Some(p) if p.symbols().all(|s| s.is_invariant()) => out.push((l, p.clone())),
            _ => reasons.push(Reason::LiveOut { local: l }),
        }
    }
    if reasons.is_empty() {
        Ok(out)
    } else {
        Err(reasons)
    }
}

fn live_ins(
    info: &FuncInfo<'_>,
    root: Loop,
    eval: &NestEval,
    accesses: &[AccessPlan],
    trips: &BTreeMap<Loop, TripForm>,
    live_outs: &[(u32, Poly)],
) -> Vec<u32> {
    let written = info.local_sets(root);
    let mut out = BTreeSet::new();
    for (_, _, inst) in info.insts_in(root) {
        if let (Opcode::Scalar(S::LocalGet), crate::ir::Imm::Local(l)) = (inst.op, &inst.imm)
            && !written.contains_key(l)
            && !eval.entry_constants.contains_key(l)
        {
            out.insert(*l);
        }
    }
    let mut add = |p: &Poly| {
        for s in p.symbols() {
            if let Sym::Local(l) = s {
                out.insert(l);
            }
        }
    };
    accesses.iter().for_each(|a| add(&a.addr));
    trips.values().for_each(|t| add(&t.num));
    live_outs.iter().for_each(|(_, p)| add(p));
    out.into_iter().collect()
}

fn traps(info: &FuncInfo<'_>, root: Loop) -> Vec<(String, u32)> {
    info.insts_in(root)
        .into_iter()
        .filter(|(b, _, _)| info.dom.is_reachable(*b))
        .filter(|(_, _, inst)| can_trap(inst.op))
        .map(|(_, _, inst)| (inst.op.name(), inst.offset))
        .collect()
}

/// Integer division and remainder, and float-to-integer truncation: the operators of an
/// offloadable body that can trap (memory accesses aside).
fn can_trap(op: Opcode) -> bool {
    matches!(
        op,
        Opcode::Scalar(
            S::I32DivS
                | S::I32DivU
                | S::I32RemS
                | S::I32RemU
                | S::I64DivS
                | S::I64DivU
                | S::I64RemS
                | S::I64RemU
                | S::I32TruncF32S
                | S::I32TruncF32U
                | S::I32TruncF64S
                | S::I32TruncF64U
                | S::I64TruncF32S
                | S::I64TruncF32U
                | S::I64TruncF64S
                | S::I64TruncF64U
        )
    )
}

/// Operators one thread runs: (arithmetic, memory), over the sequential loops' trip counts.
fn work(
    info: &FuncInfo<'_>,
    grid: &[Loop],
    sequential: &[Loop],
    trip: &dyn Fn(Loop) -> Poly,
) -> (Poly, Poly) {
    let (mut arith, mut mem) = (Poly::default(), Poly::default());
    let Some(&inner) = grid.last() else {
        return (arith, mem);
    };
    let Some(data) = info.func.loop_data(inner) else {
        return (arith, mem);
    };
    for &b in &data.blocks {
        let Some(bd) = info.func.block(b) else {
            continue;
        };
        let c = bd.counts;
        let mut factor = Poly::constant(1);
        let mut l = bd.innermost_loop;
        while let Some(lp) = l {
            if sequential.contains(&lp) {
                factor = factor.mul(&trip(lp)).unwrap_or(factor);
            }
            l = info.func.loop_data(lp).and_then(|d| d.parent);
        }
        let a = i64::from(c.int_arith + c.float_arith + c.conversion + c.compare);
        let m = i64::from(c.load + c.store);
        arith = factor.scale(a).and_then(|x| arith.add(&x)).unwrap_or(arith);
        mem = factor.scale(m).and_then(|x| mem.add(&x)).unwrap_or(mem);
    }
    (arith, mem)
}
