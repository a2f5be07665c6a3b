//! The run-time alias tests (`threads_disjoint`, `groups_disjoint`) against brute force: on
//! random small launches with constant strides, whenever a test says no two threads meet, no
//! two different threads may touch a common byte (one of them writing) in any iterations.

use proptest::prelude::*;
use tensorwasm_analysis::candidate::AccessPlan;
use tensorwasm_analysis::dependence::{groups_disjoint, threads_disjoint};
use tensorwasm_analysis::ir::Loop;
use tensorwasm_analysis::poly::Poly;

/// Grid loops 0 and 1 (when 2-D), sequential loops 2 and 3.
const GRID: [Loop; 2] = [Loop(0), Loop(1)];
const SEQ: [Loop; 2] = [Loop(2), Loop(3)];

#[derive(Debug, Clone)]
struct Access {
    store: bool,
    width: u32,
    grid: [i64; 2],
    /// Stride in each sequential loop, `None` when the access is outside it.
    seq: [Option<i64>; 2],
    constant: i64,
}

fn access() -> impl Strategy<Value = Access> {
    (
        any::<bool>(),
        prop_oneof![Just(4u32), Just(8)],
        [-3i64..=12, -3i64..=12],
        [prop::option::of(-8i64..=16), prop::option::of(-8i64..=16)],
        -16i64..=48,
    )
        .prop_map(|(store, width, g, seq, c)| Access {
            store,
            width,
            grid: [g[0] * 4, g[1] * 4],
            seq: [seq[0].map(|s| s * 4), seq[1].map(|s| s * 4)],
            constant: c * 4,
        })
}

fn plan(a: &Access, dims: usize, group: usize) -> AccessPlan {
    AccessPlan {
        offset: 0,
        op: String::new(),
        store: a.store,
        width: a.width,
        addr: Poly::default(),
        group,
        grid: a.grid[..dims].iter().map(|&s| Poly::constant(s)).collect(),
        seq: SEQ
            .iter()
            .zip(a.seq)
            .filter_map(|(l, s)| Some((*l, Poly::constant(s?))))
            .collect(),
        constant: a.constant,
        when: Vec::new(),
    }
}

/// Every (thread, address) an access touches.
fn touches(a: &Access, dims: usize, trips: &[i64; 4]) -> Vec<(Vec<i64>, i64)> {
    let mut out = Vec::new();
    let (gx, gy) = (trips[0], if dims == 2 { trips[1] } else { 1 });
    let k0 = if a.seq[0].is_some() { trips[2] } else { 1 };
    let k1 = if a.seq[1].is_some() { trips[3] } else { 1 };
    for x in 0..gx {
        for y in 0..gy {
            for i in 0..k0 {
                for j in 0..k1 {
                    let addr = a.grid[0] * x
                        + a.grid[1] * y * i64::from(dims == 2)
                        + a.seq[0].unwrap_or(0) * i
                        + a.seq[1].unwrap_or(0) * j
                        + a.constant;
                    out.push((vec![x, y], addr));
                }
            }
        }
    }
    out
}

/// Whether two different threads touch a common byte, one of them writing.
fn conflict(a: &[Access], b: &[Access], dims: usize, trips: &[i64; 4]) -> bool {
    for p in a {
        for q in b {
            if !p.store && !q.store {
                continue;
            }
            let tq = touches(q, dims, trips);
            for (t, x) in touches(p, dims, trips) {
                for (u, y) in &tq {
                    let overlap = x < y + i64::from(q.width) && *y < x + i64::from(p.width);
                    if overlap && t != *u {
                        return true;
                    }
                }
            }
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn a_proof_of_disjoint_threads_is_never_wrong(
        a in prop::collection::vec(access(), 1..3),
        b in prop::collection::vec(access(), 1..3),
        dims in 1usize..=2,
        trips in [1i64..=5, 1i64..=4, 1i64..=4, 1i64..=3],
    ) {
        let pa: Vec<AccessPlan> = a.iter().map(|x| plan(x, dims, 0)).collect();
        let pb: Vec<AccessPlan> = b.iter().map(|x| plan(x, dims, 1)).collect();
        let grid = &GRID[..dims];
        let trip = |l: Loop| Poly::constant(trips[l.0 as usize]);
        if groups_disjoint(&pa, &pb, grid, &trip) {
            prop_assert!(!conflict(&a, &b, dims, &trips), "groups_disjoint said disjoint");
        }
        if threads_disjoint(&pa, grid, &trip) {
            prop_assert!(!conflict(&a, &a, dims, &trips), "threads_disjoint said disjoint");
        }
    }
}

/// A launch's trip counts come from the guest: a huge one must not make the exact tests
/// enumerate (or allocate) per iteration; they answer "not proved" or decide by arithmetic.
#[test]
fn huge_trip_counts_are_decided_without_enumerating() {
    let column = Access {
        store: false,
        width: 4,
        grid: [0, 0],
        seq: [Some(4 * 48), None],
        constant: 0,
    };
    let rows = Access {
        store: true,
        width: 4,
        grid: [4, 0],
        seq: [Some(4 * 48), None],
        constant: 4,
    };
    let trip = |l: Loop| Poly::constant(if l == SEQ[0] { 1 << 31 } else { 47 });
    let a = [plan(&column, 1, 0)];
    let b = [plan(&rows, 1, 1)];
    // Not enumerable: not proved (the host declines), and quickly.
    assert!(!groups_disjoint(&a, &b, &GRID[..1], &trip));
    // Enumerable: the column every thread reads and the 47 columns right of it are disjoint.
    let small = |l: Loop| Poly::constant(if l == SEQ[0] { 64 } else { 47 });
    assert!(groups_disjoint(&a, &b, &GRID[..1], &small));
    let touching = [plan(
        &Access {
            constant: 0,
            ..rows
        },
        1,
        1,
    )];
    assert!(!groups_disjoint(&a, &touching, &GRID[..1], &small));
}
