//! Symbolic evaluation of a loop nest: every integer value, local and memory address of the
//! nest as a [`Poly`] over the nest's live-ins and its loops' iteration numbers.
//!
//! **Method.** A loop `L` is evaluated twice from the state at its entry (each local → a
//! polynomial, or unknown). Pass 1 gives every local that `L` writes a fresh symbol
//! `Head(L, x)` at the loop head and walks the body (nested loops recursively) to the latch; a
//! local whose latch value is `Head(L, x) + d`, with `d` free of `L`'s own symbols, is an
//! induction variable with step `d` — a constant, or any value fixed in `L` (the row stride
//! `n` of a strength-reduced `i*n`). Pass 2 sets each induction variable to
//! `entry + d * Iter(L)`, every other local `L` writes to unknown, and walks the body again,
//! recording values and memory accesses. The state on `L`'s exit edge, with `Iter(L)` replaced
//! by the last iteration, is what the enclosing code sees: the closed form of every induction
//! variable after the loop.
//!
//! Inside a loop, blocks are walked in topological order of the loop's body with its nested
//! loops collapsed to single nodes (Wasm loops are reducible, so ignoring the back edges leaves a
//! DAG); at a merge, a local keeps its polynomial only when every incoming edge agrees.
//!
//! **Arithmetic.** `const`, `local.get/set/tee`, `global.get`, `add`, `sub`, `mul`, `shl` by a
//! constant, `or` with a constant whose bits are known to be clear, `wrap`, and `select` of equal
//! arms are exact (they commute with reduction modulo 2^32); anything else, loads included, is
//! unknown. Polynomials are exact integers: see [`crate::poly`] for what that means at run time.
//!
//! The evaluator is total: it never fails, and caps its work (nest depth, term count).

use crate::ir::{Block, FunctionIr, Imm, Inst, Loop, OpClass, Opcode, Terminator, Value};
use crate::loops::{Expr, FuncInfo, LoopFacts, Pred, TripCount, exit_test, pred_of};
use crate::opcode::ScalarOpcode as S;
use crate::poly::{Poly, Sym};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Moved to [`crate::constprop`]; kept here so the old path still names it.
pub use crate::constprop::LocalConsts;

/// Deepest nest the evaluator walks (it walks a loop body twice per enclosing loop).
pub const MAX_DEPTH: usize = 6;

/// Most alternatives a value may have before it counts as unknown.
const MAX_ALTS: usize = 4;

/// The values something may have: one polynomial per way control can have come (a merge of
/// paths that disagree keeps both, up to [`MAX_ALTS`]), sorted, without duplicates.
///
/// Shared (`Arc`): the evaluator copies whole states of locals at every branch and merge, and a
/// copy of a value is then a reference count, not a copy of its polynomials.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Alts(std::sync::Arc<[Poly]>);

impl Serialize for Alts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl Alts {
    /// One value.
    pub fn one(p: Poly) -> Alts {
        Alts(std::sync::Arc::new([p]))
    }

    /// The value, if there is exactly one.
    pub fn single(&self) -> Option<&Poly> {
        match &self.0[..] {
            [p] => Some(p),
            _ => None,
        }
    }

    /// Every alternative.
    pub fn all(&self) -> &[Poly] {
        &self.0
    }

    fn from_vec(mut v: Vec<Poly>) -> Option<Alts> {
        v.sort();
        v.dedup();
        (!v.is_empty() && v.len() <= MAX_ALTS).then(|| Alts(v.into()))
    }

    fn union(&self, other: &Alts) -> Option<Alts> {
        if self == other {
            // Already sorted and without duplicates: the union is itself.
            return Some(self.clone());
        }
        let mut v = self.0.to_vec();
        v.extend(other.0.iter().cloned());
        Alts::from_vec(v)
    }

    fn map(&self, f: impl Fn(&Poly) -> Option<Poly>) -> Option<Alts> {
        Alts::from_vec(self.0.iter().map(f).collect::<Option<Vec<_>>>()?)
    }

    fn zip(&self, other: &Alts, f: impl Fn(&Poly, &Poly) -> Option<Poly>) -> Option<Alts> {
        let mut v = Vec::new();
        for a in self.0.iter() {
            for b in other.0.iter() {
                v.push(f(a, b)?);
                if v.len() > MAX_ALTS * MAX_ALTS {
                    return None;
                }
            }
        }
        Alts::from_vec(v)
    }

    /// Whether `pred` holds for some symbol of some alternative.
    pub fn mentions(&self, pred: impl Fn(Sym) -> bool + Copy) -> bool {
        self.0.iter().any(|p| p.mentions(pred))
    }
}

impl std::fmt::Display for Alts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        if parts.len() == 1 {
            f.write_str(&parts[0])
        } else {
            write!(f, "{{{}}}", parts.join(" | "))
        }
    }
}

type Val = Option<Alts>;

/// Locals → value; a missing local has its default (its value on nest entry).
#[derive(Clone, Debug, Default, PartialEq)]
struct State {
    vals: BTreeMap<u32, Val>,
}

/// A memory access of the nest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Access {
    /// The block holding it.
    pub block: Block,
    /// Index of the instruction in the block.
    pub index: usize,
    /// Byte offset of the operator in the module.
    pub offset: u32,
    /// The operator's name (`f32.load`).
    pub op: String,
    /// Whether it writes.
    pub store: bool,
    /// Bytes accessed.
    pub width: u32,
    /// The effective address (dynamic address plus the `offset=` immediate), if known.
    pub addr: Option<Alts>,
    /// The loops of the nest around it, outermost first.
    pub loops: Vec<Loop>,
    /// Branches of the nest that every way to the access takes the same way, with conditions
    /// fixed for the whole nest: when one of them goes the other way, no iteration runs it.
    pub when: Vec<Guard>,
}

/// A branch on a value fixed for the whole nest (live-ins, globals, trip counts) that decides
/// whether an access runs at all: it runs only if `value`, reduced to `bits` bits, is non-zero
/// (`nonzero`) or zero (`!nonzero`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Guard {
    /// The tested value (exact; the Wasm value is it modulo `2^bits`).
    pub value: Poly,
    /// 32 or 64.
    pub bits: u32,
    /// Whether the access needs the value non-zero.
    pub nonzero: bool,
}

/// What one loop of the nest turned out to be.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoopEval {
    /// Induction variables: local → step per iteration.
    pub ivs: BTreeMap<u32, Poly>,
    /// The trip count over the nest's live-ins (and outer iteration numbers, for a
    /// non-rectangular nest), or `None` when unknown.
    pub trip: Option<TripForm>,
    /// The value of each induction variable on entry to the loop.
    pub entry: BTreeMap<u32, Val>,
    /// Bottom-tested (the body runs before the first test).
    pub bottom: bool,
}

/// An operand of an ordered exit compare (`lt`, `le`, `gt`, `ge`), which the trip formula reads
/// as a mathematical integer: the formula holds only while every value the compare sees lies in
/// the compare's domain (`[0, 2^bits)` unsigned, `[-2^(bits-1), 2^(bits-1))` signed). The host
/// checks the extremes over the iterations whose test runs (`k` up to `T - 1` for a bottom-tested
/// loop, up to `T` for a top-tested one) and over the enclosing loops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WrapCheck {
    /// The operand at iteration `k` (`Sym::Iter` of this and enclosing loops).
    pub value: Poly,
    /// Signed compare.
    pub signed: bool,
    /// 32 or 64.
    pub bits: u32,
    /// The test also runs at `k = T` (top-tested).
    pub top: bool,
}

/// A trip count: `(num / div)` rounded as stated, plus `add`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TripForm {
    /// Numerator.
    pub num: Poly,
    /// Divisor (≥ 1).
    pub div: i64,
    /// `true`: the loop ends this way only when `div` divides `num` exactly; `false`: ceiling.
    pub exact: bool,
    /// Added after dividing.
    pub add: i64,
    /// The exit compare's operands, when it is ordered (see [`WrapCheck`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wrap: Vec<WrapCheck>,
    /// The exit compare is ordered but its operands are not known: the formula cannot be
    /// guarded against wrap-around, so the loop must not be offloaded.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unguarded: bool,
}

/// An exit compare: its predicate, both operands, and `(signed, bits)` when it is ordered.
type Compare = (Pred, Poly, Poly, Option<(bool, u32)>);

/// `(signed, bits)` of an ordered integer compare; `None` for others.
fn ordered_domain(op: Opcode) -> Option<(bool, u32)> {
    let name = op.name_str();
    let bits = match name.get(..4) {
        Some("i32.") => 32,
        Some("i64.") => 64,
        _ => return None,
    };
    let rest = &name[4..];
    if !["lt_", "le_", "gt_", "ge_"]
        .iter()
        .any(|p| rest.starts_with(p))
    {
        return None;
    }
    Some((rest.ends_with("_s"), bits))
}

impl TripForm {
    /// The count as a polynomial, when the division is exact for every value of the symbols.
    pub fn as_poly(&self) -> Option<Poly> {
        if self.div == 1 || self.num.divisible_by(self.div) {
            let mut q = Poly::default();
            for (m, c) in self.num.terms() {
                let mut t = Poly::constant(c / self.div);
                for &s in m {
                    t = t.mul(&Poly::sym(s))?;
                }
                q = q.add(&t)?;
            }
            q.add(&Poly::constant(self.add))
        } else {
            None
        }
    }

    /// Evaluates the count (`None`: unknown symbol, overflow, or an inexact division).
    pub fn eval(&self, value: &dyn Fn(Sym) -> Option<i128>) -> Option<i128> {
        let n = self.num.eval(value)?;
        let d = i128::from(self.div);
        let q = if self.exact {
            if n % d != 0 {
                return None;
            }
            n / d
        } else {
            // ceil for any sign
            let q = n.div_euclid(d);
            if n.rem_euclid(d) != 0 { q + 1 } else { q }
        };
        q.checked_add(i128::from(self.add))
    }

    /// Every symbol of the count.
    pub fn symbols(&self) -> Vec<Sym> {
        self.num.symbols().collect()
    }
}

impl std::fmt::Display for TripForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(p) = self.as_poly() {
            return write!(f, "{p}");
        }
        let op = if self.exact { "/exact" } else { "/ceil" };
        write!(f, "(({}) {op} {})", self.num, self.div)?;
        match self.add {
            0 => Ok(()),
            a if a < 0 => write!(f, " - {}", a.unsigned_abs()),
            a => write!(f, " + {a}"),
        }
    }
}

/// The result of evaluating a nest.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NestEval {
    /// Every memory access, in block order.
    pub accesses: Vec<Access>,
    /// Per loop of the nest.
    pub loops: BTreeMap<Loop, LoopEval>,
    /// The value of each local the nest writes, on the nest's exit (`None`: unknown), when the
    /// nest has exactly one exit.
    pub exit: Option<BTreeMap<u32, Val>>,
    /// Constant values locals are known to hold on entry to the nest.
    pub entry_constants: BTreeMap<u32, i64>,
    /// Why the evaluation stopped early, if it did.
    pub gave_up: Option<String>,
    /// The value of every SSA value of the nest, from the last pass (the one in terms of the
    /// loops' iteration numbers); missing or `None`: not known.
    #[serde(skip)]
    pub values: HashMap<Value, Option<Alts>>,
}

struct Walker<'a, 'f> {
    info: &'a FuncInfo<'f>,
    facts: &'a [LoopFacts],
    entry_constants: BTreeMap<u32, i64>,
    values: HashMap<Value, Val>,
    accesses: BTreeMap<(Block, usize), Access>,
    loops: BTreeMap<Loop, LoopEval>,
    sets: HashMap<Loop, BTreeSet<u32>>,
    gave_up: Option<String>,
}

/// An edge leaving a region: (from, to, state, branch arguments).
type Outgoing = (Block, Block, State, Vec<Val>);

/// Evaluates the nest rooted at `root` (an outermost loop of `info.func`).
pub fn evaluate_nest(info: &FuncInfo<'_>, facts: &[LoopFacts], root: Loop) -> NestEval {
    let entry_constants = crate::constprop::entry_constants(info, root);
    let mut w = Walker {
        info,
        facts,
        entry_constants,
        values: HashMap::new(),
        accesses: BTreeMap::new(),
        loops: BTreeMap::new(),
        sets: HashMap::new(),
        gave_up: None,
    };
    let depth = nest_depth(info.func, root);
    if depth > MAX_DEPTH {
        w.gave_up = Some(format!("nest is {depth} loops deep (at most {MAX_DEPTH})"));
        return NestEval {
            gave_up: w.gave_up,
            ..NestEval::default()
        };
    }
    let exits = w.eval_loop(root, State::default(), &[]);
    let guards: Vec<((Block, usize), Vec<Guard>)> = w
        .accesses
        .keys()
        .map(|&(b, i)| ((b, i), w.guards(root, b)))
        .collect();
    for (key, when) in guards {
        if let Some(a) = w.accesses.get_mut(&key) {
            a.when = when;
        }
    }
    let written = w.sets_of(root);
    let exit = match &exits[..] {
        [(_, _, state, _)] => Some(
            written
                .iter()
                .map(|&l| (l, w.get(state, l)))
                .collect::<BTreeMap<_, _>>(),
        ),
        _ => None,
    };
    NestEval {
        accesses: w.accesses.into_values().collect(),
        loops: w.loops,
        exit,
        entry_constants: w.entry_constants,
        gave_up: w.gave_up,
        values: w.values,
    }
}

fn nest_depth(func: &FunctionIr, root: Loop) -> usize {
    let base = func.loop_data(root).map_or(1, |d| d.depth);
    func.loops
        .iter()
        .enumerate()
        .filter(|(i, _)| is_within(func, Loop(*i as u32), root))
        .map(|(_, d)| (d.depth - base + 1) as usize)
        .max()
        .unwrap_or(1)
}

/// Whether `lp` is `root` or nested in it.
pub(crate) fn is_within(func: &FunctionIr, mut lp: Loop, root: Loop) -> bool {
    for _ in 0..=func.loops.len() {
        if lp == root {
            return true;
        }
        match func.loop_data(lp).and_then(|d| d.parent) {
            Some(p) => lp = p,
            None => return false,
        }
    }
    false
}

impl Walker<'_, '_> {
    fn default_of(&self, local: u32) -> Poly {
        match self.entry_constants.get(&local) {
            Some(&c) => Poly::constant(c),
            None => Poly::sym(Sym::Local(local)),
        }
    }

    fn get(&self, state: &State, local: u32) -> Val {
        match state.vals.get(&local) {
            Some(v) => v.clone(),
            None => Some(Alts::one(self.default_of(local))),
        }
    }

    fn sets_of(&mut self, lp: Loop) -> BTreeSet<u32> {
        if let Some(s) = self.sets.get(&lp) {
            return s.clone();
        }
        let s: BTreeSet<u32> = self.info.local_sets(lp).into_keys().collect();
        self.sets.insert(lp, s.clone());
        s
    }

    fn merge(&self, a: &State, b: &State) -> State {
        let mut out = State::default();
        let keys: BTreeSet<u32> = a.vals.keys().chain(b.vals.keys()).copied().collect();
        for k in keys {
            let (x, y) = (self.get(a, k), self.get(b, k));
            let v = match (x, y) {
                (Some(x), Some(y)) => x.union(&y),
                _ => None,
            };
            out.vals.insert(k, v);
        }
        out
    }

    /// Evaluates `lp` from `entry`; returns the states on its exit edges.
    fn eval_loop(&mut self, lp: Loop, entry: State, outer: &[Loop]) -> Vec<Outgoing> {
        let written = self.sets_of(lp);
        let mut inside: Vec<Loop> = outer.to_vec();
        inside.push(lp);
        // Pass 1: find the update rule of every local the loop writes.
        let mut head = entry.clone();
        for &l in &written {
            head.vals
                .insert(l, Some(Alts::one(Poly::sym(Sym::Head(lp, l)))));
        }
        let (latch, _) = self.walk_region(lp, head, &inside);
        let mut ivs = BTreeMap::new();
        if let Some(latch) = latch {
            for &l in &written {
                let Some(v) = self.get(&latch, l) else {
                    continue;
                };
                let Some(v) = v.single() else { continue };
                let Some(d) = v.sub(&Poly::sym(Sym::Head(lp, l))) else {
                    continue;
                };
                let own = |s: Sym| matches!(s, Sym::Head(x, _) | Sym::Iter(x) if x == lp);
                if !d.mentions(own) && d.as_constant() != Some(0) {
                    ivs.insert(l, d);
                }
            }
        }
        // Pass 2: the real values.
        let k = Poly::sym(Sym::Iter(lp));
        let mut head = entry.clone();
        let mut entry_vals = BTreeMap::new();
        for &l in &written {
            let v = match ivs.get(&l) {
                Some(d) => {
                    let e = self.get(&entry, l);
                    entry_vals.insert(l, e.clone());
                    let step = d.mul(&k);
                    e.and_then(|e| e.map(|e| e.add(step.as_ref()?)))
                }
                None => None,
            };
            head.vals.insert(l, v);
        }
        let (_, exits) = self.walk_region(lp, head, &inside);
        let (trip, bottom) = match self.symbolic_trip(lp) {
            Some((t, b)) => (Some(t), b),
            None => (self.trip_form(lp, &entry), self.bottom_tested(lp)),
        };
        // Every value on the exit edge, with `Iter(lp)` replaced by the last iteration.
        let exit_value = |p: &Poly| -> Option<Poly> {
            if !p.mentions(|s| s == Sym::Iter(lp)) {
                return Some(p.clone());
            }
            substitute_last(p, lp, trip.as_ref()?, bottom)
        };
        let exits = exits
            .into_iter()
            .map(|(from, to, mut state, args)| {
                for v in state.vals.values_mut() {
                    *v = v.as_ref().and_then(|a| a.map(exit_value));
                }
                let args = args
                    .into_iter()
                    .map(|a| a.and_then(|a| a.map(exit_value)))
                    .collect();
                (from, to, state, args)
            })
            .collect();
        self.loops.insert(
            lp,
            LoopEval {
                ivs,
                trip,
                entry: entry_vals,
                bottom,
            },
        );
        exits
    }

    fn bottom_tested(&self, lp: Loop) -> bool {
        matches!(
            self.facts.get(lp.index()).map(|f| &f.trip_count),
            Some(TripCount::Known {
                at_least_once: true,
                ..
            })
        )
    }

    /// The trip count from the exit test's operands as evaluated in the last pass: the test
    /// compares two values that move linearly with the iteration number.
    fn symbolic_trip(&self, lp: Loop) -> Option<(TripForm, bool)> {
        let facts = self.facts.get(lp.index())?;
        let (cond, continue_when_true, bottom) =
            exit_test(self.info, lp, &facts.latches, &facts.exits).ok()?;
        let cond = self.through_local(cond);
        let inst = self.info.def(cond);
        let compare = |v: Value| -> Option<Compare> {
            let i = self.info.def(v)?;
            let [a, b] = i.args[..] else { return None };
            Some((
                pred_of(i.op)?,
                self.value_single(a)?,
                self.value_single(b)?,
                ordered_domain(i.op),
            ))
        };
        let (mut pred, x, y, domain) = match inst {
            Some(i) if pred_of(i.op).is_some() => compare(cond)?,
            Some(i) if matches!(i.op, Opcode::Scalar(S::I32Eqz | S::I64Eqz)) => {
                let [a] = i.args[..] else { return None };
                let a = self.through_local(a);
                match compare(a) {
                    // eqz(x < y) continues while !(x < y)
                    Some((p, x, y, d)) => (p.negate(), x, y, d),
                    None => (Pred::Eq, self.value_single(a)?, Poly::default(), None),
                }
            }
            _ => (Pred::Ne, self.value_single(cond)?, Poly::default(), None),
        };
        let wrap: Vec<WrapCheck> = match domain {
            Some((signed, bits)) => [&x, &y]
                .into_iter()
                .map(|v| WrapCheck {
                    value: v.clone(),
                    signed,
                    bits,
                    top: !bottom,
                })
                .collect(),
            None => Vec::new(),
        };
        if !continue_when_true {
            pred = pred.negate();
        }
        // d(k) = x - y = d0 + ds * k, with d0 fixed in the loop and ds a non-zero constant.
        let d = x.sub(&y)?;
        let (d0, ds) = d.split_linear(Sym::Iter(lp))?;
        let ds = ds.as_constant().filter(|&c| c != 0)?;
        let own = |s: Sym| matches!(s, Sym::Head(x, _) | Sym::Iter(x) if x == lp);
        if d0.mentions(own) {
            return None;
        }
        // k* = the first iteration whose test ends the loop.
        let (num, div, exact) = match pred {
            // continue while d != 0: ends when d0 + ds*k = 0
            Pred::Ne => {
                if ds > 0 {
                    (d0.scale(-1)?, ds, true)
                } else {
                    (d0, ds.checked_neg()?, true)
                }
            }
            // continue while d < 0: ends at the first k with d >= 0
            Pred::Lt if ds > 0 => (d0.scale(-1)?, ds, false),
            // continue while d <= 0: ends when d >= 1
            Pred::Le if ds > 0 => (Poly::constant(1).sub(&d0)?, ds, false),
            // continue while d > 0: ends when d <= 0
            Pred::Gt if ds < 0 => (d0, ds.checked_neg()?, false),
            // continue while d >= 0: ends when d <= -1
            Pred::Ge if ds < 0 => (d0.add(&Poly::constant(1))?, ds.checked_neg()?, false),
            _ => return None,
        };
        Some((
            TripForm {
                num,
                div,
                exact,
                add: i64::from(bottom),
                wrap,
                unguarded: false,
            },
            bottom,
        ))
    }

    /// The trip count of `lp` over the state on its entry.
    fn trip_form(&self, lp: Loop, entry: &State) -> Option<TripForm> {
        let TripCount::Known { expr, test, .. } = &self.facts.get(lp.index())?.trip_count else {
            return None;
        };
        // The operands of an ordered compare are not known on this path.
        let unguarded = ["lt_", "le_", "gt_", "ge_"]
            .iter()
            .any(|p| test.contains(&format!(".{p}")));
        let (num, div, exact, add) = match expr {
            Expr::Add(a, b) => match (&**a, &**b) {
                (inner, Expr::Const(c)) => split_div(inner).map(|(n, d, e)| (n, d, e, *c))?,
                _ => split_div(expr).map(|(n, d, e)| (n, d, e, 0))?,
            },
            _ => split_div(expr).map(|(n, d, e)| (n, d, e, 0))?,
        };
        let num = self.expr_poly(num, entry)?;
        Some(TripForm {
            num,
            div,
            exact,
            add,
            wrap: Vec::new(),
            unguarded,
        })
    }

    fn expr_poly(&self, e: &Expr, entry: &State) -> Option<Poly> {
        match e {
            Expr::Const(c) => Some(Poly::constant(*c)),
            Expr::Local(l) => self.get(entry, *l)?.single().cloned(),
            Expr::Global(g) => Some(Poly::sym(Sym::Global(*g))),
            Expr::Add(a, b) => self.expr_poly(a, entry)?.add(&self.expr_poly(b, entry)?),
            Expr::Sub(a, b) => self.expr_poly(a, entry)?.sub(&self.expr_poly(b, entry)?),
            Expr::DivCeil(..) | Expr::DivExact(..) => None,
        }
    }

    /// Walks the blocks of `lp` (nested loops as units) from the head state. Returns the merged
    /// state on the back edges and the edges that leave `lp`.
    fn walk_region(
        &mut self,
        lp: Loop,
        head: State,
        inside: &[Loop],
    ) -> (Option<State>, Vec<Outgoing>) {
        let func = self.info.func;
        let Some(data) = func.loop_data(lp) else {
            return (None, Vec::new());
        };
        let order = region_order(self.info, lp);
        let mut incoming: HashMap<Block, Vec<(State, Vec<Val>)>> = HashMap::new();
        let mut latch: Option<State> = None;
        let mut exits: Vec<Outgoing> = Vec::new();
        for node in order {
            let (state, args) = if node == data.header {
                let params = func.block(node).map_or(0, |b| b.params.len());
                (head.clone(), vec![None; params])
            } else {
                match incoming.remove(&node) {
                    Some(ins) => self.merge_incoming(ins),
                    None => continue, // not reached in this region
                }
            };
            let outgoing = match func.block(node).and_then(|b| b.innermost_loop) {
                Some(child) if child != lp && self.header_of(child) == Some(node) => {
                    self.eval_loop(child, state, inside)
                }
                _ => self.walk_block(node, state, args, inside),
            };
            for (from, to, st, a) in outgoing {
                if to == data.header {
                    latch = Some(match latch {
                        Some(prev) => self.merge(&prev, &st),
                        None => st,
                    });
                } else if self.info.in_loop(lp, to) {
                    incoming.entry(to).or_default().push((st, a));
                } else {
                    exits.push((from, to, st, a));
                }
            }
        }
        (latch, exits)
    }

    fn header_of(&self, lp: Loop) -> Option<Block> {
        self.info.func.loop_data(lp).map(|d| d.header)
    }

    fn merge_incoming(&self, ins: Vec<(State, Vec<Val>)>) -> (State, Vec<Val>) {
        let mut it = ins.into_iter();
        let Some((mut state, mut args)) = it.next() else {
            return (State::default(), Vec::new());
        };
        for (s, a) in it {
            state = self.merge(&state, &s);
            for (x, y) in args.iter_mut().zip(a) {
                *x = match (x.take(), y) {
                    (Some(x), Some(y)) => x.union(&y),
                    _ => None,
                };
            }
        }
        (state, args)
    }

    /// Evaluates one block; returns its outgoing edges.
    fn walk_block(
        &mut self,
        b: Block,
        mut state: State,
        args: Vec<Val>,
        inside: &[Loop],
    ) -> Vec<Outgoing> {
        let Some(bd) = self.info.func.block(b) else {
            return Vec::new();
        };
        for (p, a) in bd.params.iter().zip(args) {
            self.values.insert(*p, a);
        }
        for (i, inst) in bd.insts.iter().enumerate() {
            let result = self.eval_inst(inst, &mut state);
            if let Some(&r) = inst.results.first() {
                self.values.insert(r, result);
            }
            let class = inst.op.class();
            if matches!(class, OpClass::Load | OpClass::Store)
                && let (Opcode::Scalar(op), Imm::Mem(m)) = (inst.op, &inst.imm)
                && let Some(width) = access_width(op)
            {
                let addr = inst
                    .args
                    .first()
                    .and_then(|a| self.value(*a))
                    .and_then(|p| {
                        let off = Poly::constant(i64::try_from(m.offset).ok()?);
                        p.map(|p| p.add(&off))
                    });
                self.accesses.insert(
                    (b, i),
                    Access {
                        block: b,
                        index: i,
                        offset: inst.offset,
                        op: inst.op.name(),
                        store: class == OpClass::Store,
                        width,
                        addr,
                        loops: inside.to_vec(),
                        when: Vec::new(),
                    },
                );
            }
        }
        bd.term
            .successors()
            .map(|call| {
                let a = call.args.iter().map(|v| self.value(*v)).collect();
                (b, call.block, state.clone(), a)
            })
            .collect()
    }

    /// The branches deciding whether block `b` of the nest rooted at `root` runs (see
    /// [`Guard`]): each conditional branch of the nest whose one target has that branch as its
    /// only way in and dominates `b`, when the condition is fixed for the whole nest.
    fn guards(&self, root: Loop, b: Block) -> Vec<Guard> {
        let dom = &self.info.dom;
        let mut out = Vec::new();
        let mut cur = b;
        for _ in 0..self.info.func.blocks.len() {
            let Some(d) = dom.idom(cur) else { break };
            if d == cur || !self.info.in_loop(root, d) {
                break;
            }
            if let Some(bd) = self.info.func.block(d)
                && let Terminator::BrIf {
                    cond,
                    then,
                    otherwise,
                } = &bd.term
                && then.block != otherwise.block
            {
                for (s, nonzero) in [(then.block, true), (otherwise.block, false)] {
                    if dom.preds(s) == [d]
                        && dom.dominates(s, b)
                        && let Some(g) = self.guard_of(*cond, nonzero)
                    {
                        out.push(g);
                    }
                }
            }
            cur = d;
        }
        out
    }

    /// The guard "`cond` is non-zero" (or zero), looking through `eqz`, when `cond` is fixed
    /// for the whole nest.
    fn guard_of(&self, cond: Value, mut nonzero: bool) -> Option<Guard> {
        let mut v = self.through_local(cond);
        let mut bits = 32;
        for _ in 0..8 {
            match self.info.def(v).map(|i| (i.op, i.args.first())) {
                Some((Opcode::Scalar(op @ (S::I32Eqz | S::I64Eqz)), Some(&a))) => {
                    v = self.through_local(a);
                    nonzero = !nonzero;
                    bits = if op == S::I64Eqz { 64 } else { 32 };
                }
                _ => break,
            }
        }
        let value = self.value_single(v)?;
        if !value.symbols().all(Sym::is_invariant) {
            return None;
        }
        Some(Guard {
            value,
            bits,
            nonzero,
        })
    }

    /// `v`, or, when `v` reads a local that the same block set earlier, the value stored (a
    /// compare kept in a local until the branch).
    fn through_local(&self, v: Value) -> Value {
        let v = self.info.strip(v);
        let Some((b, i)) = self.info.def_site(v) else {
            return v;
        };
        let Some(l) = self.info.local_of(v) else {
            return v;
        };
        let Some(bd) = self.info.func.block(b) else {
            return v;
        };
        for inst in bd.insts[..i].iter().rev() {
            if let (Opcode::Scalar(S::LocalSet | S::LocalTee), Imm::Local(x)) = (inst.op, &inst.imm)
                && *x == l
            {
                return inst.args.first().map_or(v, |&a| self.info.strip(a));
            }
        }
        v
    }

    fn value(&self, v: Value) -> Val {
        self.values.get(&v).cloned().flatten()
    }

    fn value_single(&self, v: Value) -> Option<Poly> {
        self.value(v)?.single().cloned()
    }

    fn eval_inst(&mut self, inst: &Inst, state: &mut State) -> Val {
        let Opcode::Scalar(op) = inst.op else {
            return None;
        };
        let arg = |i: usize| inst.args.get(i).and_then(|v| self.value(*v));
        match (op, &inst.imm) {
            (S::I32Const | S::I64Const, Imm::Int(c)) => Some(Alts::one(Poly::constant(*c))),
            (S::LocalGet, Imm::Local(l)) => self.get(state, *l),
            (S::LocalSet | S::LocalTee, Imm::Local(l)) => {
                let v = arg(0);
                state.vals.insert(*l, v.clone());
                v
            }
            (S::GlobalGet, Imm::Global(g)) => Some(Alts::one(Poly::sym(Sym::Global(*g)))),
            (S::I32Add | S::I64Add, _) => arg(0)?.zip(&arg(1)?, Poly::add),
            (S::I32Sub | S::I64Sub, _) => arg(0)?.zip(&arg(1)?, Poly::sub),
            (S::I32Mul | S::I64Mul, _) => arg(0)?.zip(&arg(1)?, Poly::mul),
            (S::I32Shl | S::I64Shl, _) => {
                let bits = if op == S::I32Shl { 31 } else { 63 };
                let sh = arg(1)?.single()?.as_constant()? & bits;
                let k = 1i64.checked_shl(u32::try_from(sh).ok()?)?;
                arg(0)?.map(|p| p.scale(k))
            }
            (S::I32Or | S::I64Or, _) => {
                // `x | c` is `x + c` when the low bits `c` sets are known clear in `x`.
                let (a, b) = (arg(0)?, arg(1)?);
                let (x, c) = match (
                    a.single().and_then(Poly::as_constant),
                    b.single().and_then(Poly::as_constant),
                ) {
                    (_, Some(c)) => (a, c),
                    (Some(c), _) => (b, c),
                    _ => return None,
                };
                let room = 1i64.checked_shl(64 - (c as u64).leading_zeros())?;
                if c < 0 {
                    return None;
                }
                x.map(|x| x.divisible_by(room).then(|| x.add(&Poly::constant(c)))?)
            }
            (S::I32WrapI64, _) => arg(0),
            (S::Select | S::TypedSelect, _) => arg(0)?.union(&arg(1)?),
            _ => None,
        }
    }
}

/// `p` with `Iter(lp)` replaced by the number of the loop's last iteration as seen on its exit
/// edge: `T - 1` for a bottom-tested loop (the exit follows the last body), `T` for a top-tested
/// one. When the trip count is an exact division and the coefficient of `Iter(lp)` is a multiple
/// of the divisor, the division cancels (`i + 2 * ((n - i) /exact 2)` is `n`).
fn substitute_last(p: &Poly, lp: Loop, trip: &TripForm, bottom: bool) -> Option<Poly> {
    let k = Sym::Iter(lp);
    let (rest, coeff) = p.split_linear(k)?;
    let shift = trip.add.checked_sub(i64::from(bottom))?;
    if let Some(t) = trip.as_poly() {
        return rest.add(&coeff.mul(&t.sub(&Poly::constant(i64::from(bottom)))?)?);
    }
    if trip.exact && coeff.divisible_by(trip.div) {
        let mut per = Poly::default();
        for (m, c) in coeff.terms() {
            let mut t = Poly::constant(c / trip.div);
            for &s in m {
                t = t.mul(&Poly::sym(s))?;
            }
            per = per.add(&t)?;
        }
        return rest.add(&per.mul(&trip.num)?)?.add(&coeff.scale(shift)?);
    }
    let t = Poly::sym(Sym::Trip(lp)).sub(&Poly::constant(i64::from(bottom)))?;
    rest.add(&coeff.mul(&t)?)
}

/// Bytes a load or store touches.
pub fn access_width(op: S) -> Option<u32> {
    Some(match op {
        S::I32Load8S | S::I32Load8U | S::I64Load8S | S::I64Load8U | S::I32Store8 | S::I64Store8 => {
            1
        }
        S::I32Load16S
        | S::I32Load16U
        | S::I64Load16S
        | S::I64Load16U
        | S::I32Store16
        | S::I64Store16 => 2,
        S::I32Load | S::F32Load | S::I64Load32S | S::I64Load32U | S::I32Store | S::F32Store => 4,
        S::I64Store32 => 4,
        S::I64Load | S::F64Load | S::I64Store | S::F64Store => 8,
        _ => return None,
    })
}

/// `expr` as `(numerator, divisor, exact)`.
fn split_div(expr: &Expr) -> Option<(&Expr, i64, bool)> {
    match expr {
        Expr::DivExact(a, k) => Some((a, *k, true)),
        Expr::DivCeil(a, k) => Some((a, *k, false)),
        Expr::Const(_) | Expr::Local(_) | Expr::Global(_) | Expr::Add(..) | Expr::Sub(..) => {
            Some((expr, 1, true))
        }
    }
}

/// The nodes of `lp`'s body in topological order: its own blocks, and one node per directly
/// nested loop (its header), back edges to `lp`'s header ignored.
pub fn region_order(info: &FuncInfo<'_>, lp: Loop) -> Vec<Block> {
    let func = info.func;
    let Some(data) = func.loop_data(lp) else {
        return Vec::new();
    };
    // Map every block of `lp` to its node: itself, or the header of the child loop holding it.
    let node_of = |b: Block| -> Option<Block> {
        let mut l = func.block(b)?.innermost_loop?;
        if l == lp {
            return Some(b);
        }
        for _ in 0..=func.loops.len() {
            let d = func.loop_data(l)?;
            if d.parent == Some(lp) {
                return Some(d.header);
            }
            l = d.parent?;
        }
        None
    };
    let mut succ: BTreeMap<Block, BTreeSet<Block>> = BTreeMap::new();
    for &b in &data.blocks {
        let Some(from) = node_of(b) else { continue };
        let entry = succ.entry(from).or_default();
        let Some(bd) = func.block(b) else { continue };
        for s in bd.term.successors() {
            if s.block == data.header || !info.in_loop(lp, s.block) {
                continue;
            }
            if let Some(to) = node_of(s.block)
                && to != from
            {
                entry.insert(to);
            }
        }
    }
    // Iterative DFS post-order from the header, reversed.
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec![(data.header, false)];
    while let Some((n, done)) = stack.pop() {
        if done {
            order.push(n);
            continue;
        }
        if !seen.insert(n) {
            continue;
        }
        stack.push((n, true));
        if let Some(ss) = succ.get(&n) {
            for &s in ss.iter().rev() {
                if !seen.contains(&s) {
                    stack.push((s, false));
                }
            }
        }
    }
    order.reverse();
    order
}
