//! The guard: whether one call of a kernel's dispatch import may run the kernel, decided
//! exactly from the kernel table and the call's arguments, without touching memory.
//!
//! [`check`] evaluates, with checked `i128` arithmetic (never wrapping), the kernel's trip
//! counts, the wrap checks of its exit compares, the launch threshold, the loops that must run
//! at least once, the bytes every access may touch (in linear memory and aligned to its width),
//! and the run-time dependence test ([`tensorwasm_analysis::dependence`]) for groups that may
//! overlap or whose threads may meet. Any failure is a [`Decline`] with a stable label; the
//! caller then runs the original loop. What passes is a [`Checked`]: the values a launch uses
//! (grid, kernel parameters, memory window, live-outs).
//!
//! The dispatch host (`tensorwasmd::offload`) and the build's oracle (`tensorwasm`'s
//! `oracle::nest`) both call this one function.

use std::borrow::Cow;
use std::collections::BTreeMap;

use tensorwasm_analysis::dependence::{self, Access};
use tensorwasm_analysis::ir::Loop;
use tensorwasm_analysis::poly::Poly;

use crate::table::{ArgType, Check, Expr, OffloadKernel, Var};

/// A dispatch argument as the guest passed it; floats by their bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// An `i32`.
    I32(i32),
    /// An `i64`.
    I64(i64),
    /// An `f32`'s bits.
    F32(u32),
    /// An `f64`'s bits.
    F64(u64),
}

/// Why a dispatch declined (a stable label for statistics and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline {
    /// Stable label.
    pub reason: &'static str,
    /// Details for logs.
    pub detail: Cow<'static, str>,
}

/// A [`Decline`] with `reason` and `detail`.
pub fn decline(reason: &'static str, detail: impl Into<Cow<'static, str>>) -> Decline {
    Decline {
        reason,
        detail: detail.into(),
    }
}

/// Evaluates `e` exactly over the argument and trip values.
fn eval(e: &Expr, args: &[Option<i128>], trips: &[i128]) -> Option<i128> {
    let mut sum: i128 = 0;
    for (c, vars) in &e.terms {
        let mut t = i128::from(*c);
        for v in vars {
            let x = match *v {
                Var::Arg(i) => (*args.get(i as usize)?)?,
                Var::Trip(i) => *trips.get(i as usize)?,
            };
            t = t.checked_mul(x)?;
        }
        sum = sum.checked_add(t)?;
    }
    Some(sum)
}

const U32_END: i128 = 1 << 32;

/// Alignment of the memory window's start (at least every access width).
const WINDOW_ALIGN: i128 = 16;

/// Group `g`'s accesses that run in this launch, for the dependence test.
fn group_accesses(
    kern: &OffloadKernel,
    runs: &[bool],
    g: u32,
    ints: &[Option<i128>],
    trips: &[i128],
) -> Option<Vec<Access>> {
    let mut out = Vec::new();
    for (a, _) in kern
        .accesses
        .iter()
        .zip(runs)
        .filter(|(a, runs)| a.group == g && **runs)
    {
        let stride = |j: u32| -> Option<Poly> {
            match a.strides.iter().find(|(t, _)| *t == j) {
                Some((_, e)) => konst(eval(e, ints, trips)?),
                None => Some(Poly::default()),
            }
        };
        let grid = kern
            .grid
            .iter()
            .map(|&j| stride(j))
            .collect::<Option<Vec<_>>>()?;
        let mut seq = Vec::new();
        for (j, _) in a.strides.iter().filter(|(j, _)| !kern.grid.contains(j)) {
            seq.push((Loop(*j), stride(*j)?));
        }
        out.push(Access {
            store: a.store,
            width: a.width,
            grid,
            seq,
            constant: i64::try_from(eval(&a.base, ints, trips)?).ok()?,
        });
    }
    Some(out)
}

/// `v` as a constant polynomial, when it fits.
fn konst(v: i128) -> Option<Poly> {
    i64::try_from(v).ok().map(Poly::constant)
}

/// The launch's grid loops and trip counts in the analysis's terms.
fn launch_loops<'a>(
    kern: &OffloadKernel,
    trips: &'a [i128],
) -> (Vec<Loop>, impl Fn(Loop) -> Poly + 'a) {
    let grid: Vec<Loop> = kern.grid.iter().map(|&j| Loop(j)).collect();
    let trip = |l: Loop| {
        trips
            .get(l.0 as usize)
            .and_then(|t| konst(*t))
            .unwrap_or_default()
    };
    (grid, trip)
}

/// The analysis's dependence test on group `g` with this launch's values as constants:
/// whether no two threads touch a common byte where one writes.
fn threads_disjoint(
    kern: &OffloadKernel,
    runs: &[bool],
    g: u32,
    ints: &[Option<i128>],
    trips: &[i128],
) -> bool {
    let Some(accesses) = group_accesses(kern, runs, g, ints, trips) else {
        return false;
    };
    let (grid, trip) = launch_loops(kern, trips);
    dependence::threads_disjoint(&accesses, &grid, &trip)
}

/// For two groups whose ranges overlap in this launch (one base reaching into the other's
/// array, like the two row pointers of an unrolled transpose): whether still no two threads
/// touch a common byte between them where one writes.
fn groups_disjoint(
    kern: &OffloadKernel,
    runs: &[bool],
    a: u32,
    b: u32,
    ints: &[Option<i128>],
    trips: &[i128],
) -> bool {
    let (Some(pa), Some(pb)) = (
        group_accesses(kern, runs, a, ints, trips),
        group_accesses(kern, runs, b, ints, trips),
    ) else {
        return false;
    };
    let (grid, trip) = launch_loops(kern, trips);
    dependence::groups_disjoint(&pa, &pb, &grid, &trip)
}

/// The least and greatest value of `base + Σ stride·k` with each `k` in `0..trip`, and the
/// `own` loop's `k` also at `trip` when `top` (its test runs once more).
fn extremes(
    base: &Expr,
    strides: &[(u32, Expr)],
    ints: &[Option<i128>],
    trips: &[i128],
    own: u32,
    top: bool,
) -> Option<(i128, i128)> {
    let b = eval(base, ints, trips)?;
    let (mut lo, mut hi) = (b, b);
    for (j, s) in strides {
        let s = eval(s, ints, trips)?;
        let last = trips.get(*j as usize)? - 1 + i128::from(top && *j == own);
        let span = s.checked_mul(last.max(0))?;
        lo = lo.checked_add(span.min(0))?;
        hi = hi.checked_add(span.max(0))?;
    }
    Some((lo, hi))
}

/// A dispatch that passed every check: the values it launches with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    ints: Vec<Option<i128>>,
    trips: Vec<i128>,
    /// The memory window: every byte the kernel may touch is in `lo..hi`.
    pub window: (usize, usize),
}

impl Checked {
    /// The product of every loop's trip count (at least 1 each): the iterations a launch
    /// runs in all.
    pub fn iterations(&self) -> i128 {
        self.trips
            .iter()
            .fold(1i128, |acc, t| acc.saturating_mul((*t).max(1)))
    }
}

/// A call's arguments read as integers, and its trip counts.
struct Evaluated {
    ints: Vec<Option<i128>>,
    trips: Vec<i128>,
}

/// Reads a call's arguments and evaluates its trip counts and their wrap checks.
fn evaluate(kern: &OffloadKernel, params: &[Value]) -> Result<Evaluated, Decline> {
    if params.len() != kern.args.len() {
        return Err(decline("bad-call", "wrong number of arguments"));
    }
    // Integer arguments read as unsigned; floats are passed by their bits only.
    let ints: Vec<Option<i128>> = params
        .iter()
        .map(|v| match v {
            Value::I32(x) => Some(i128::from(*x as u32)),
            Value::I64(x) => Some(i128::from(*x as u64)),
            Value::F32(_) | Value::F64(_) => None,
        })
        .collect();
    let mut trips = Vec::with_capacity(kern.trips.len());
    for t in &kern.trips {
        let n = eval(&t.num, &ints, &[]).ok_or_else(|| decline("overflow", "trip count"))?;
        // A conservative pre-check: the formulas are derived for a non-negative numerator. The
        // exact guard against a wrapping exit test is the wrap check below.
        if n < 0 {
            return Err(decline(
                "condition",
                format!("loop{} trip formula numerator {n} is negative", t.lp),
            ));
        }
        let d = i128::from(t.div.max(1));
        let q = if t.exact {
            if n % d != 0 {
                return Err(decline(
                    "condition",
                    format!("loop{} does not divide", t.lp),
                ));
            }
            n / d
        } else {
            n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0)
        };
        let q = q
            .checked_add(i128::from(t.add))
            .ok_or_else(|| decline("overflow", "trip count"))?;
        if !(0..U32_END).contains(&q) {
            return Err(decline(
                "condition",
                format!("loop{} trip count {q} out of range", t.lp),
            ));
        }
        trips.push(q);
    }
    // The exit compares' operands stay in their domains over every test that runs.
    for (own, t) in kern.trips.iter().enumerate() {
        for w in &t.wrap {
            let (lo, hi) = extremes(&w.base, &w.strides, &ints, &trips, own as u32, w.top)
                .ok_or_else(|| decline("overflow", "exit compare operand"))?;
            if !(1..=64).contains(&w.bits) {
                return Err(decline("bad-table", "an exit compare of no Wasm width"));
            }
            let (min, end) = if w.signed {
                (-(1i128 << (w.bits - 1)), 1i128 << (w.bits - 1))
            } else {
                (0, 1i128 << w.bits)
            };
            if lo < min || hi >= end {
                return Err(decline(
                    "condition",
                    format!(
                        "loop{}'s exit compare would see {} outside its domain: the loop wraps",
                        t.lp,
                        if lo < min { lo } else { hi }
                    ),
                ));
            }
        }
    }
    Ok(Evaluated { ints, trips })
}

impl Evaluated {
    /// Which accesses can run at all with these arguments (a guard that cannot be evaluated
    /// counts as passed).
    fn runs(&self, kern: &OffloadKernel) -> Vec<bool> {
        kern.accesses
            .iter()
            .map(|a| {
                a.when
                    .iter()
                    .all(|g| match eval(&g.expr, &self.ints, &self.trips) {
                        Some(v) => (v.rem_euclid(1i128 << g.bits.clamp(1, 64)) != 0) == g.nonzero,
                        None => true,
                    })
            })
            .collect()
    }

    /// The bytes access `a` may touch, `[lo, hi)`, offset immediate included.
    fn range(&self, a: &crate::table::AccessRange) -> Result<(i128, i128), Decline> {
        extremes(
            &a.base,
            &a.strides,
            &self.ints,
            &self.trips,
            u32::MAX,
            false,
        )
        .and_then(|(lo, hi)| Some((lo, hi.checked_add(i128::from(a.width))?)))
        .ok_or_else(|| decline("overflow", "access range"))
    }
}

/// The product of the grid loops' trip counts (saturating); `None` when a grid loop has none.
fn grid_threads(kern: &OffloadKernel, trips: &[i128]) -> Option<i128> {
    kern.grid.iter().try_fold(1i128, |acc, g| {
        Some(acc.saturating_mul(*trips.get(*g as usize)?))
    })
}

/// Per access group, the bytes `[lo, hi)` its accesses may touch with these arguments (only
/// accesses that can run), with no memory bound and none of the other checks: for input
/// generators, which move a group's pointer to place the group in memory. Declines as
/// [`check`] does when a trip count cannot be evaluated or an exit compare would wrap.
pub fn spans(
    kern: &OffloadKernel,
    params: &[Value],
) -> Result<BTreeMap<u32, (i128, i128)>, Decline> {
    let ev = evaluate(kern, params)?;
    let mut groups: BTreeMap<u32, (i128, i128)> = BTreeMap::new();
    for (a, _) in kern.accesses.iter().zip(ev.runs(kern)).filter(|(_, r)| *r) {
        let (lo, hi) = ev.range(a)?;
        let g = groups.entry(a.group).or_insert((lo, hi));
        g.0 = g.0.min(lo);
        g.1 = g.1.max(hi);
    }
    Ok(groups)
}

/// Evaluates a call's trip counts, checks, threshold (`min_threads`, else the kernel's) and
/// access ranges against a memory of `memory_len` bytes, without touching memory.
pub fn check(
    kern: &OffloadKernel,
    params: &[Value],
    memory_len: usize,
    min_threads: Option<u64>,
) -> Result<Checked, Decline> {
    let ev = evaluate(kern, params)?;
    let threads = grid_threads(kern, &ev.trips)
        .ok_or_else(|| decline("bad-table", "grid loop without a trip count"))?;
    let min = min_threads.unwrap_or(kern.min_threads);
    if threads == 0 || threads < i128::from(min) {
        return Err(decline(
            "below-threshold",
            format!("{threads} threads, fewer than {min}"),
        ));
    }
    for c in &kern.checks {
        if let Check::AtLeastOnce(j) = c
            && ev.trips.get(*j as usize).is_none_or(|t| *t < 1)
        {
            return Err(decline("condition", "a loop would not run"));
        }
    }
    let runs = ev.runs(kern);
    // The bytes each access may touch, exactly; per group their union.
    let mut groups: BTreeMap<u32, (i128, i128)> = BTreeMap::new();
    let (mut lo, mut hi) = (i128::MAX, i128::MIN);
    let Evaluated { ints, trips } = &ev;
    for (a, _) in kern.accesses.iter().zip(&runs).filter(|(_, r)| **r) {
        let (alo, ahi) = ev.range(a)?;
        let imm = i128::from(a.imm);
        if alo - imm < 0 || ahi - imm > U32_END || ahi > memory_len as i128 {
            return Err(decline(
                "out-of-bounds",
                format!(
                    "bytes [{alo}, {ahi}) of the access leave memory of {} bytes",
                    memory_len
                ),
            ));
        }
        // PTX accesses must be naturally aligned (on a GPU a misaligned one ends the whole
        // context); Wasm's need not be. Every address an access takes is its first one plus
        // multiples of the strides of the loops that run more than once.
        let width = i128::from(a.width.max(1));
        let first =
            eval(&a.base, ints, trips).ok_or_else(|| decline("overflow", "access address"))?;
        let mut aligned = first % width == 0;
        for (j, s) in &a.strides {
            if trips.get(*j as usize).is_some_and(|t| *t > 1) {
                let s = eval(s, ints, trips).ok_or_else(|| decline("overflow", "access stride"))?;
                aligned &= s % width == 0;
            }
        }
        if !aligned {
            return Err(decline(
                "misaligned",
                format!("an access of {width} bytes at {first} is not aligned to its width"),
            ));
        }
        let g = groups.entry(a.group).or_insert((alo, ahi));
        g.0 = g.0.min(alo);
        g.1 = g.1.max(ahi);
        lo = lo.min(alo);
        hi = hi.max(ahi);
    }
    for c in &kern.checks {
        if let Check::NoOverlap(a, b) = c
            && let (Some(&(al, ah)), Some(&(bl, bh))) = (groups.get(a), groups.get(b))
            && al < bh
            && bl < ah
            && !groups_disjoint(kern, &runs, *a, *b, ints, trips)
        {
            return Err(decline(
                "alias",
                format!("groups G{a} and G{b} overlap, and two threads would touch a common byte"),
            ));
        }
    }
    for c in &kern.checks {
        if let Check::DisjointThreads(g) = c
            && !threads_disjoint(kern, &runs, *g, ints, trips)
        {
            return Err(decline(
                "alias",
                format!("two threads would touch the same bytes of G{g}"),
            ));
        }
    }
    if lo > hi {
        (lo, hi) = (0, 0);
    }
    // The window starts on a 16-byte boundary, so that the device copy (at an aligned address)
    // keeps every access's alignment.
    lo -= lo % WINDOW_ALIGN;
    let Evaluated { ints, trips } = ev;
    Ok(Checked {
        ints,
        trips,
        window: (lo as usize, hi as usize),
    })
}

impl Checked {
    /// The launch grid: per grid dimension, its trip count over the kernel's block size,
    /// rounded up (unused dimensions 1).
    pub fn grid(&self, kern: &OffloadKernel) -> Result<[u32; 3], Decline> {
        let mut grid = [1u32; 3];
        for (d, &g) in kern.grid.iter().enumerate().take(3) {
            let b = i128::from(kern.block[d].max(1));
            let t = self
                .trips
                .get(g as usize)
                .ok_or_else(|| decline("bad-table", "grid loop without a trip count"))?;
            let n = (t + b - 1) / b;
            grid[d] = u32::try_from(n).map_err(|_| decline("too-large", "grid"))?;
        }
        Ok(grid)
    }

    /// Every address access `index` of the kernel may take in this launch: its first one plus
    /// each combination of iteration numbers of the loops it moves with (`0..trip` each), in
    /// no particular order. `None` when the access does not exist, its values overflow, or
    /// there would be more than `cap` addresses.
    pub fn addresses(&self, kern: &OffloadKernel, index: usize, cap: usize) -> Option<Vec<i128>> {
        let a = kern.accesses.get(index)?;
        let first = eval(&a.base, &self.ints, &self.trips)?;
        let mut out = vec![first];
        for (j, s) in &a.strides {
            let s = eval(s, &self.ints, &self.trips)?;
            let t = usize::try_from((*self.trips.get(*j as usize)?).max(0)).ok()?;
            if t == 0 {
                return Some(Vec::new());
            }
            if out.len().checked_mul(t)? > cap {
                return None;
            }
            let before = out.len();
            for k in 1..t {
                let step = s.checked_mul(k as i128)?;
                for i in 0..before {
                    out.push(out[i].checked_add(step)?);
                }
            }
        }
        Some(out)
    }

    /// The launch's grid threads: the product of its grid loops' trip counts.
    pub fn grid_threads(&self, kern: &OffloadKernel) -> i128 {
        grid_threads(kern, &self.trips).unwrap_or(0)
    }

    /// An integer kernel parameter, `expr` evaluated and truncated to `bits` (32 or 64).
    pub fn int_param(&self, expr: &Expr, bits: u32) -> Result<u64, Decline> {
        let v = eval(expr, &self.ints, &self.trips)
            .ok_or_else(|| decline("overflow", "kernel parameter"))?;
        Ok(if bits == 64 {
            v as u64
        } else {
            u64::from(v as u32)
        })
    }

    /// The nest's live-outs after a launch ran, each as its Wasm type's bits (an `i32`
    /// zero-extended).
    pub fn live_outs(&self, kern: &OffloadKernel) -> Result<Vec<i64>, Decline> {
        let mut live = Vec::with_capacity(kern.live_outs.len());
        for l in &kern.live_outs {
            let v = eval(&l.value, &self.ints, &self.trips)
                .ok_or_else(|| decline("overflow", "live-out"))?;
            live.push(match l.ty {
                ArgType::I32 => i64::from(v as u32),
                _ => v as i64,
            });
        }
        Ok(live)
    }
}
