//! The dependence test: can two different threads of a launch touch the same byte, one of them
//! writing? Used at build time by [`crate::candidate::build`] (through `pair_test`, to choose
//! the grid and the guard's run-time conditions) and at run time by the dispatch host
//! ([`threads_disjoint`], [`groups_disjoint`], on the values of one launch). It sees an access
//! only through [`Strided`]: its strides, width and constant, never how it was found.
//!
//! **Dependence test.** Each address is split into `base + Σ c_g·k_g + Σ c_s·k_s + constant`
//! (grid and sequential loops). Accesses with the same base form a *group*. For a group that
//! writes, every access must move with the same per-thread strides `c_g`; then two threads can
//! touch the same byte only if their *footprints* (the bytes one thread touches, from the
//! sequential loops and the constants) overlap at the distance their strides put them. Proved
//! statically when the numbers are constants or the strides pack exactly
//! (`c_{d+1} = c_d · T_d`), refuted statically when constant and overlapping (a carried
//! dependence: prefix sums, in-place stencils), otherwise left to the guard as a runtime
//! condition. Groups with different bases may be the same memory (two pointer arguments), so a
//! writing group and any other group get a runtime no-overlap condition — the alias check of
//! the guard.

use crate::candidate::MIN_THREADS;
use crate::ir::Loop;
use crate::poly::Poly;

/// An access as the dependence test sees it: its address relative to its group's base is
/// `Σ grid_strides[d]·k_d + Σ seq_strides[s]·k_s + constant` over the iteration numbers `k` of
/// the grid and sequential loops, and it touches `width` bytes from there. Implemented by the
/// build-time [`crate::candidate::AccessPlan`] and by whatever the run-time caller keeps.
pub trait Strided {
    /// Whether it writes.
    fn store(&self) -> bool;
    /// Bytes touched.
    fn width(&self) -> u32;
    /// Stride per grid dimension (bytes per iteration), outermost first.
    fn grid_strides(&self) -> &[Poly];
    /// Stride per enclosing sequential loop.
    fn seq_strides(&self) -> &[(Loop, Poly)];
    /// The constant part of the address.
    fn constant(&self) -> i64;
}

/// An access with nothing but what the dependence test sees: the form a run-time caller builds
/// from one launch's values (all strides and the constant known).
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    /// Whether it writes.
    pub store: bool,
    /// Bytes touched.
    pub width: u32,
    /// Stride per grid dimension, outermost first.
    pub grid: Vec<Poly>,
    /// Stride per enclosing sequential loop.
    pub seq: Vec<(Loop, Poly)>,
    /// The constant part of the address.
    pub constant: i64,
}

/// Implements [`Strided`] for a struct with the fields `store`, `width`, `grid`, `seq` and
/// `constant` of [`Access`].
macro_rules! strided_by_fields {
    ($t:ty) => {
        impl $crate::dependence::Strided for $t {
            fn store(&self) -> bool {
                self.store
            }
            fn width(&self) -> u32 {
                self.width
            }
            fn grid_strides(&self) -> &[$crate::poly::Poly] {
                &self.grid
            }
            fn seq_strides(&self) -> &[($crate::ir::Loop, $crate::poly::Poly)] {
                &self.seq
            }
            fn constant(&self) -> i64 {
                self.constant
            }
        }
    };
}
pub(crate) use strided_by_fields;

strided_by_fields!(Access);

/// The run-time form of [`Condition::DisjointThreads`]: with every stride and trip count a
/// constant (the values of one launch), whether no two different threads touch a common byte
/// of the group, between any write of `accesses` and any access. `accesses` are one group's
/// accesses; `grid` and `trip` as for the dependence test. `false` also when the question is
/// too large to decide exactly.
///
/// [`Condition::DisjointThreads`]: crate::candidate::Condition::DisjointThreads
pub fn threads_disjoint<A: Strided>(
    accesses: &[A],
    grid: &[Loop],
    trip: &dyn Fn(Loop) -> Poly,
) -> bool {
    accesses.iter().enumerate().all(|(i, p)| {
        accesses
            .iter()
            .skip(i)
            .all(|q| pair_disjoint(p, q, grid, trip))
    })
}

/// The run-time form of [`Condition::NoOverlap`] when the two groups' ranges do overlap:
/// with every stride, trip count and base a constant (`constant` is each access's address at
/// the first iteration, relative to any one origin shared by both groups), whether no two
/// different threads touch a common byte between an access of `a` and one of `b`, one of
/// them writing. A thread's own accesses run in their CPU order on the device too (the
/// kernel neither reorders nor caches memory operations), so only other threads matter.
/// `false` also when the question is too large to decide exactly.
///
/// [`Condition::NoOverlap`]: crate::candidate::Condition::NoOverlap
pub fn groups_disjoint<A: Strided, B: Strided>(
    a: &[A],
    b: &[B],
    grid: &[Loop],
    trip: &dyn Fn(Loop) -> Poly,
) -> bool {
    a.iter()
        .all(|p| b.iter().all(|q| pair_disjoint(p, q, grid, trip)))
}

/// Whether two accesses, constants throughout, never touch a common byte from two different
/// threads with one of them writing (two reads always pass).
fn pair_disjoint(
    p: &dyn Strided,
    q: &dyn Strided,
    grid: &[Loop],
    trip: &dyn Fn(Loop) -> Poly,
) -> bool {
    let (w, o) = match (p.store(), q.store()) {
        (false, false) => return true,
        (true, _) => (p, q),
        (false, true) => (q, p),
    };
    matches!(pair_test(w, o, grid, trip, &Poly::default()), Proof::Proved)
}

/// The outcome of [`pair_test`].
pub(crate) enum Proof {
    /// No two different threads touch a common byte, for every launch.
    Proved,
    /// Not decided statically: left to the guard as a run-time condition.
    Runtime,
    /// Two different threads do touch a common byte (a carried dependence), with why.
    Refuted(String),
}

/// Can two different threads touch the same byte, `w` writing and `o` reading or writing?
/// `base` is the accesses' common base, named in the reasons only.
pub(crate) fn pair_test(
    w: &dyn Strided,
    o: &dyn Strided,
    grid: &[Loop],
    trip: &dyn Fn(Loop) -> Poly,
    base: &Poly,
) -> Proof {
    let grid_dims = |p: &dyn Strided| -> Vec<(Loop, Poly)> {
        grid.iter()
            .copied()
            .zip(p.grid_strides().iter().cloned())
            .collect()
    };
    if w.grid_strides() != o.grid_strides() {
        // One access the same in every thread (a column every thread reads): a byte the other
        // touches in any thread is a conflict with another thread, so decide exactly, with
        // constants, whether any thread's access of the other meets it.
        let invariant =
            |p: &dyn Strided| p.grid_strides().iter().all(|c| c.as_constant() == Some(0));
        let (w_invariant, o_invariant) = (invariant(w), invariant(o));
        if w_invariant != o_invariant
            && let Some(windows) = seq_windows(w, o, trip)
        {
            let hit = if o_invariant {
                any_point_in(w.grid_strides(), grid, trip, &windows)
            } else {
                // S_o(t') must fall in the negated windows.
                let flipped: Vec<(i128, i128)> = windows.iter().map(|&(a, b)| (-b, -a)).collect();
                any_point_in(o.grid_strides(), grid, trip, &flipped)
            };
            match hit {
                Some(false) => return Proof::Proved,
                Some(true) => {
                    return Proof::Refuted(format!(
                        "an access the same in every iteration of the grid meets another \
                         access of base {base}"
                    ));
                }
                None => {}
            }
        }
        // Different strides: only whole ranges that do not meet are safe.
        let all = |p: &dyn Strided| {
            let mut d = grid_dims(p);
            d.extend(p.seq_strides().iter().cloned());
            span(p, &d, trip)
        };
        return match (all(w), all(o)) {
            (Some((wl, wh)), Some((ol, oh))) if wh <= ol || oh <= wl => Proof::Proved,
            (Some(_), Some(_)) => Proof::Refuted(format!(
                "the accesses of base {base} move with different strides across iterations \
                 and their ranges overlap"
            )),
            _ => Proof::Runtime,
        };
    }
    // Same strides: thread t touches S(t) + [lo, hi) for each access.
    for (d, c) in w.grid_strides().iter().enumerate() {
        if *c == Poly::default() {
            let lp = grid.get(d).copied().unwrap_or(Loop(0));
            return Proof::Refuted(format!(
                "every iteration of {lp} touches the same bytes of base {base}"
            ));
        }
    }
    // Offsets of `o` relative to `w` that the sequential loops can produce, each an open
    // interval of `S(t) - S(t')` values that make the two accesses overlap: every value of
    // `so·k' - sw·k` over the sequential iterations when they are few, else one interval
    // around the two accesses' whole spans.
    let windows = match seq_windows(w, o, trip) {
        Some(windows) => windows,
        None => {
            let (Some((wl, wh)), Some((ol, oh))) = (
                span(w, w.seq_strides(), trip),
                span(o, o.seq_strides(), trip),
            ) else {
                return Proof::Runtime;
            };
            vec![(ol - wh, oh - wl)]
        }
    };
    // All constant: decide exactly, enumerating the outer grid digits.
    if let Some(found) = exact_conflict(w.grid_strides(), grid, trip, &windows) {
        return match found {
            None => Proof::Proved,
            Some(apart) => Proof::Refuted(format!(
                "iterations {apart} apart touch the same bytes of base {base}"
            )),
        };
    }
    let Some((c, n)) = lattice(w.grid_strides(), grid, trip) else {
        return Proof::Runtime;
    };
    let c = i128::from(c.unsigned_abs());
    // The smallest |m| != 0 with m*c inside some window.
    let mut nearest: Option<i128> = None;
    for (a, b) in windows {
        for m in [1i128, -1] {
            let (lo, hi) = if m > 0 { (a, b) } else { (-b, -a) };
            let k = (lo.div_euclid(c) + 1).max(1);
            if k * c < hi {
                nearest = Some(nearest.map_or(k, |n: i128| n.min(k)));
            }
        }
    }
    let Some(m) = nearest else {
        return Proof::Proved;
    };
    match n {
        Some(n) if n <= m => Proof::Proved,
        // A conflict for every grid of more than m threads; the guard dispatches only grids of
        // at least MIN_THREADS, so a small distance is a dependence for every launch.
        _ if m < i128::from(MIN_THREADS) => Proof::Refuted(format!(
            "iterations {m} apart touch the same bytes of base {base} (stride {c} bytes)"
        )),
        _ => Proof::Runtime,
    }
}

/// The open windows of `x = S(t) - S(t')` that make `w` (in thread `t`) and `o` (in thread
/// `t'`) overlap, one per value of their sequential offsets over every pair of iterations,
/// when every sequential stride and trip count is a constant and the pairs are few enough to
/// enumerate (see [`pair_test`]).
fn seq_windows(
    w: &dyn Strided,
    o: &dyn Strided,
    trip: &dyn Fn(Loop) -> Poly,
) -> Option<Vec<(i128, i128)>> {
    let (ww, wo) = (i128::from(w.width()), i128::from(o.width()));
    let d0 = i128::from(o.constant()) - i128::from(w.constant());
    let mut loops: Vec<Loop> = w.seq_strides().iter().map(|(l, _)| *l).collect();
    for (l, _) in o.seq_strides() {
        if !loops.contains(l) {
            loops.push(*l);
        }
    }
    let stride_in = |p: &dyn Strided, l: Loop| -> Option<i128> {
        match p.seq_strides().iter().find(|(m, _)| *m == l) {
            Some((_, s)) => Some(i128::from(s.as_constant()?)),
            None => Some(0),
        }
    };
    let mut sums = vec![0i128];
    for l in loops {
        let (sw, so) = (stride_in(w, l)?, stride_in(o, l)?);
        let t = i128::from(trip(l).as_constant()?.max(1));
        // How many values the loop contributes (the differences of one stride, or every
        // pair), checked before any is made: trip counts come from the guest.
        let count = if sw == so {
            t.checked_mul(2)? - 1
        } else {
            t.checked_mul(t)?
        };
        if i128::try_from(sums.len()).ok()?.checked_mul(count)? > 65_536 {
            return None;
        }
        let values: Vec<i128> = if sw == so {
            (-(t - 1)..=(t - 1)).map(|u| sw * u).collect()
        } else {
            (0..t)
                .flat_map(|k| (0..t).map(move |k2| so * k2 - sw * k))
                .collect()
        };
        let mut next = Vec::with_capacity(sums.len() * values.len());
        for b in &sums {
            for v in &values {
                next.push(b + v);
            }
        }
        next.sort_unstable();
        next.dedup();
        sums = next;
    }
    Some(
        sums.into_iter()
            .map(|sum| (d0 + sum - ww, d0 + sum + wo))
            .collect(),
    )
}

/// With constant strides and trip counts: whether some grid point `t` (any, the first
/// included) has `S(t)` inside one of the open `windows`. `None`: not all constant, or too many
/// points to enumerate.
fn any_point_in(
    strides: &[Poly],
    grid: &[Loop],
    trip: &dyn Fn(Loop) -> Poly,
    windows: &[(i128, i128)],
) -> Option<bool> {
    let mut dims: Vec<(i128, i128)> = strides
        .iter()
        .zip(grid)
        .map(|(c, l)| {
            Some((
                i128::from(c.as_constant()?),
                i128::from(trip(*l).as_constant()?.max(1)),
            ))
        })
        .collect::<Option<_>>()?;
    dims.sort_by_key(|&(c, _)| c.unsigned_abs());
    let (c, t) = *dims.first()?;
    // The outer dimensions' values, enumerated; the innermost one by division.
    let mut outer: Vec<i128> = vec![0];
    for &(s, tt) in &dims[1..] {
        if outer.len().checked_mul(usize::try_from(tt).ok()?)? > 65_536 {
            return None;
        }
        outer = outer
            .iter()
            .flat_map(|&o| (0..tt).map(move |u| o + s * u))
            .collect();
    }
    if windows.len().checked_mul(outer.len())? > 1_000_000 {
        return None;
    }
    for &(lo, hi) in windows {
        for &o in &outer {
            // Some m in [0, t) with m*c in (lo - o, hi - o).
            let (a, b) = (lo - o, hi - o);
            let hit = if c == 0 {
                a < 0 && 0 < b
            } else {
                let (a, b, c) = if c > 0 { (a, b, c) } else { (-b, -a, -c) };
                let first = (a.div_euclid(c) + 1).max(0);
                let last = (b - 1).div_euclid(c).min(t - 1);
                first <= last
            };
            if hit {
                return Some(true);
            }
        }
    }
    Some(false)
}

/// The bytes one access touches relative to the group base, over the loops in `dims`:
/// `[lo, hi)`, when every stride and trip count is a constant.
fn span(
    p: &dyn Strided,
    dims: &[(Loop, Poly)],
    trip: &dyn Fn(Loop) -> Poly,
) -> Option<(i128, i128)> {
    let mut lo = i128::from(p.constant());
    let mut hi = lo;
    for (l, c) in dims {
        let c = i128::from(c.as_constant()?);
        let t = i128::from(trip(*l).as_constant()?.max(1) - 1);
        lo += (c * t).min(0);
        hi += (c * t).max(0);
    }
    Some((lo, hi + i128::from(p.width())))
}

/// With constant strides and trip counts: whether two different grid points `t != t'` have
/// `S(t) - S(t')` inside a window. `None`: not all constant, or too many to enumerate;
/// `Some(None)`: no conflict; `Some(Some(d))`: a conflict `d` iterations of the innermost
/// stride apart (or in another dimension).
fn exact_conflict(
    strides: &[Poly],
    grid: &[Loop],
    trip: &dyn Fn(Loop) -> Poly,
    windows: &[(i128, i128)],
) -> Option<Option<i128>> {
    let mut dims: Vec<(i128, i128)> = strides
        .iter()
        .zip(grid)
        .map(|(c, l)| {
            Some((
                i128::from(c.as_constant()?.unsigned_abs()),
                i128::from(trip(*l).as_constant()?.max(1)),
            ))
        })
        .collect::<Option<_>>()?;
    dims.sort();
    let (c, t) = *dims.first()?;
    if c == 0 {
        return None;
    }
    // Outer digit differences, each with whether it is non-zero.
    let mut outer: Vec<(i128, bool)> = vec![(0, false)];
    for &(s, tt) in &dims[1..] {
        let mut next = Vec::new();
        for &(o, nz) in &outer {
            for u in -(tt - 1)..=(tt - 1) {
                next.push((o + s * u, nz || u != 0));
                if next.len() > 65_536 {
                    return None;
                }
            }
        }
        outer = next;
    }
    let mut best: Option<i128> = None;
    for &(lo, hi) in windows {
        if windows.len().saturating_mul(outer.len()) > 1_000_000 {
            return None;
        }
        for &(o, nz) in &outer {
            // m*c in (lo - o, hi - o), |m| <= t - 1, and (m != 0 or nz).
            let (a, b) = (lo - o, hi - o);
            let first = a.div_euclid(c) + 1; // smallest m with m*c > a
            let last = (b - 1).div_euclid(c); // largest m with m*c < b
            let (first, last) = (first.max(-(t - 1)), last.min(t - 1));
            if first > last {
                continue;
            }
            let m = if first > 0 {
                first
            } else if last < 0 {
                last
            } else if nz {
                0
            } else if last >= 1 {
                1.min(last).max(first)
            } else if first <= -1 {
                -1
            } else {
                continue; // only m = 0 on the same grid point
            };
            if m == 0 && !nz {
                continue;
            }
            let d = m.abs().max(1);
            best = Some(best.map_or(d, |b: i128| b.min(d)));
        }
    }
    Some(best)
}

/// The grid strides as one linear index: `(smallest stride, thread count if constant)`, when
/// every next stride is the previous one times its trip count, or all are constants that do not
/// interleave.
fn lattice(
    strides: &[Poly],
    grid: &[Loop],
    trip: &dyn Fn(Loop) -> Poly,
) -> Option<(i64, Option<i128>)> {
    let mut dims: Vec<(Poly, Loop)> = strides.iter().cloned().zip(grid.iter().copied()).collect();
    dims.sort_by_key(|(c, _)| c.as_constant().map_or(u64::MAX, |c| c.unsigned_abs()));
    let c0 = dims.first()?.0.as_constant()?;
    let mut count: Option<i128> = Some(1);
    let mut cur = dims.first()?.clone();
    let mut rest: Vec<(Poly, Loop)> = dims.split_off(1);
    loop {
        count = match (count, trip(cur.1).as_constant()) {
            (Some(n), Some(t)) => n.checked_mul(i128::from(t.max(0))),
            _ => None,
        };
        if rest.is_empty() {
            return Some((c0, count));
        }
        let next = cur.0.mul(&trip(cur.1))?;
        let neg = next.scale(-1)?;
        let pos = rest.iter().position(|(c, _)| *c == next || *c == neg)?;
        cur = rest.swap_remove(pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poly::Sym;

    fn acc(store: bool, grid: &[i64], constant: i64) -> Access {
        Access {
            store,
            width: 4,
            grid: grid.iter().map(|&c| Poly::constant(c)).collect(),
            seq: Vec::new(),
            constant,
        }
    }

    const X: Loop = Loop(0);
    const Y: Loop = Loop(1);
    const K: Loop = Loop(2);

    /// Trip counts: 8 rows (x), 16 columns (y), 3 sequential iterations (k).
    fn trip(l: Loop) -> Poly {
        Poly::constant(match l.0 {
            0 => 8,
            1 => 16,
            _ => 3,
        })
    }

    #[test]
    fn a_packed_2d_write_grid_is_disjoint() {
        // a[x][y] = a[x][y] + 1, row-major: 64 bytes per row, 4 per column.
        let packed = [acc(true, &[64, 4], 0), acc(false, &[64, 4], 0)];
        assert!(threads_disjoint(&packed, &[X, Y], &trip));
        // Rows 32 bytes apart but 64 bytes long: row x+1 overwrites half of row x.
        let overlapping = [acc(true, &[32, 4], 0)];
        assert!(!threads_disjoint(&overlapping, &[X, Y], &trip));
    }

    #[test]
    fn a_packed_2d_grid_with_a_symbolic_row_length_is_disjoint() {
        // Row stride 4·n with T(y) = n: the strides pack for every n.
        let n = Poly::sym(Sym::Local(0));
        let trip_n = |l: Loop| if l == Y { n.clone() } else { trip(l) };
        let row = |stride: i64| Access {
            store: true,
            width: 4,
            grid: vec![n.scale(stride).unwrap_or_default(), Poly::constant(4)],
            seq: Vec::new(),
            constant: 0,
        };
        assert!(threads_disjoint(&[row(4)], &[X, Y], &trip_n));
        // Row stride 2·n: rows overlap for every n > 1, and nothing packs.
        assert!(!threads_disjoint(&[row(2)], &[X, Y], &trip_n));
    }

    #[test]
    fn a_write_with_a_stride_smaller_than_its_width_is_refuted() {
        let mut narrow = acc(true, &[2], 0);
        assert!(!threads_disjoint(
            std::slice::from_ref(&narrow),
            &[X],
            &trip
        ));
        narrow.grid = vec![Poly::constant(4)];
        assert!(threads_disjoint(&[narrow], &[X], &trip));
    }

    #[test]
    fn every_thread_writing_the_same_bytes_is_refuted() {
        assert!(!threads_disjoint(&[acc(true, &[0], 0)], &[X], &trip));
    }

    #[test]
    fn a_sequential_footprint_is_counted() {
        // Thread x writes 3 consecutive words from 12·x: disjoint; from 4·x: they overlap.
        let run = |stride: i64| Access {
            seq: vec![(K, Poly::constant(4))],
            ..acc(true, &[stride], 0)
        };
        assert!(threads_disjoint(&[run(12)], &[X], &trip));
        assert!(!threads_disjoint(&[run(4)], &[X], &trip));
    }

    #[test]
    fn two_groups_overlapping_by_one_element_are_caught() {
        // `a` writes bytes [0, 32) over 8 threads; `b` reads from 28 or from 32.
        let a = [acc(true, &[4], 0)];
        let touching = [acc(false, &[4], 32)];
        let overlapping = [acc(false, &[4], 28)];
        assert!(groups_disjoint(&a, &touching, &[X], &trip));
        assert!(!groups_disjoint(&a, &overlapping, &[X], &trip));
        // Either order.
        assert!(!groups_disjoint(&overlapping, &a, &[X], &trip));
    }

    #[test]
    fn a_thread_may_reread_what_it_wrote() {
        // Same thread, same bytes: no other thread involved.
        let a = [acc(true, &[4], 0)];
        let b = [acc(false, &[4], 0)];
        assert!(groups_disjoint(&a, &b, &[X], &trip));
    }

    #[test]
    fn two_reads_always_pass() {
        // Every thread reads the same word: fine for reads, not once one of them writes.
        let reads = [acc(false, &[0], 0), acc(false, &[0], 0)];
        assert!(threads_disjoint(&reads, &[X], &trip));
        assert!(groups_disjoint(&reads[..1], &reads[1..], &[X], &trip));
        let write = [acc(true, &[0], 0)];
        assert!(!groups_disjoint(&reads[..1], &write, &[X], &trip));
    }

    #[test]
    fn different_strides_pass_only_when_the_ranges_do_not_meet() {
        // a[x] written (bytes [0, 32)), b[2x] read from 32 (bytes [32, 92)) or from 0.
        let a = [acc(true, &[4], 0)];
        assert!(groups_disjoint(&a, &[acc(false, &[8], 32)], &[X], &trip));
        assert!(!groups_disjoint(&a, &[acc(false, &[8], 0)], &[X], &trip));
    }
}
