//! The kernel table's JSON and the guard's decisions on hand-written kernels: each decline
//! label, and tables that are malformed but signed decline instead of panicking.

use tensorwasm_guard::*;

#[test]
fn kernel_tables_round_trip_and_bad_ones_are_errors() {
    let table = OffloadTable {
        kernels: vec![OffloadKernel {
            name: "k".into(),
            function: 3,
            offset: 0x40,
            ptx: ".version 8.0".into(),
            block: [256, 1, 1],
            min_threads: 4096,
            args: vadd().args,
            trips: vadd().trips,
            grid: vec![0],
            cubins: vec![Cubin {
                arch: "sm_90".into(),
                image: b"\x7fELF\x02".to_vec(),
            }],
            ..Default::default()
        }],
    };
    let json = table.to_json();
    assert_eq!(OffloadTable::from_json(&json).expect("parses"), table);
    assert_eq!(table.kernels[0].import_name(), "dispatch_k");
    assert!(
        String::from_utf8_lossy(&json).contains("\"image\":\"7f454c4602\""),
        "cubins are hex in the table"
    );
    let mut no_cubins = table.clone();
    no_cubins.kernels[0].cubins.clear();
    assert!(
        !String::from_utf8_lossy(&no_cubins.to_json()).contains("cubins"),
        "a table without cubins reads as before"
    );
    let bad_hex = String::from_utf8_lossy(&json).replace("7f454c4602", "7g");
    assert!(OffloadTable::from_json(bad_hex.as_bytes()).is_err());
    for bad in [&b"{"[..], b"[]", b"{\"kernels\": [{\"name\": 1}]}", b"\xff"] {
        let e = OffloadTable::from_json(bad).expect_err("refused");
        assert!(e.to_string().contains("offload section"), "{e}");
    }
}

/// A real kernel (vadd) with one field broken at a time: each is refused when the table is
/// read, with the kernel and the field named.
#[test]
fn malformed_tables_are_refused_when_read() {
    let good = OffloadTable {
        kernels: vec![vadd()],
    };
    assert_eq!(OffloadTable::from_json(&good.to_json()), Ok(good.clone()));
    type Mutation = Box<dyn Fn(&mut OffloadKernel)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("a grid of 0 dimensions", Box::new(|k| k.grid.clear())),
        ("grid loops [0, 0]", Box::new(|k| k.grid = vec![0, 0])),
        ("grid loops [1]", Box::new(|k| k.grid = vec![1])),
        ("block [0, 1, 1]", Box::new(|k| k.block = [0, 1, 1])),
        ("block [64, 64, 1]", Box::new(|k| k.block = [64, 64, 1])),
        ("the name must be", Box::new(|k| k.name = "a-b".into())),
        ("the name must be", Box::new(|k| k.name = "9k".into())),
        ("the name must be", Box::new(|k| k.name = "x".repeat(300))),
        (
            "trip count 0: names trip count 0",
            Box::new(|k| k.trips[0].num = var(Var::Trip(0))),
        ),
        ("trip count 0: divisor 0", Box::new(|k| k.trips[0].div = 0)),
        (
            "argument 9 of 4",
            Box::new(|k| k.accesses[0].base = var(Var::Arg(9))),
        ),
        (
            "access 1: moves with loop 3",
            Box::new(|k| k.accesses[1].strides = vec![(3, konst(4))]),
        ),
        (
            "access 0: 3 bytes wide",
            Box::new(|k| k.accesses[0].width = 3),
        ),
        (
            "access 2: 16 bits",
            Box::new(|k| {
                k.accesses[2].when.push(AccessGuard {
                    expr: konst(1),
                    bits: 16,
                    nonzero: true,
                })
            }),
        ),
        (
            "names no loop or access group",
            Box::new(|k| k.checks.push(Check::NoOverlap(0, 7))),
        ),
        (
            "names no loop or access group",
            Box::new(|k| k.checks.push(Check::AtLeastOnce(2))),
        ),
        (
            "parameter 0: argument 12",
            Box::new(|k| k.params = vec![ParamValue::Arg(12)]),
        ),
        (
            "more than one memory window",
            Box::new(|k| k.params = vec![ParamValue::Memory, ParamValue::Memory]),
        ),
        (
            "live-out 0: a float",
            Box::new(|k| k.live_outs[0].ty = ArgType::F32),
        ),
        (
            "PTX of 4194305 bytes",
            Box::new(|k| k.ptx = " ".repeat(4 * 1024 * 1024 + 1)),
        ),
        (
            "more than 4096 terms",
            Box::new(|k| k.accesses[0].base.terms = vec![(1, vec![]); 4097]),
        ),
        (
            "a term of more than 16 variables",
            Box::new(|k| k.live_outs[0].value.terms = vec![(1, vec![Var::Arg(0); 17])]),
        ),
        (
            "cubin architecture",
            Box::new(|k| {
                k.cubins.push(Cubin {
                    arch: "sm_90\n".into(),
                    image: vec![],
                })
            }),
        ),
    ];
    for (says, mutate) in cases {
        let mut bad = good.clone();
        mutate(&mut bad.kernels[0]);
        let e = OffloadTable::from_json(&bad.to_json()).expect_err(says);
        assert!(e.to_string().contains(says), "{says}: {e}");
        assert!(e.to_string().contains("kernel 0 ("), "{says}: {e}");
    }
    let mut twice = good.clone();
    twice.kernels.push(vadd());
    let e = OffloadTable::from_json(&twice.to_json()).expect_err("two of one name");
    assert!(
        e.to_string().contains("a second kernel of this name"),
        "{e}"
    );
    // A float argument in an expression.
    let mut float_arg = good.clone();
    float_arg.kernels[0].args[0].ty = ArgType::F32;
    let e = OffloadTable::from_json(&float_arg.to_json()).expect_err("float");
    assert!(e.to_string().contains("argument 0 is a float"), "{e}");
    // Too large to read at all.
    let huge = vec![b' '; tensorwasm_guard::validate::MAX_TABLE_BYTES + 1];
    let e = OffloadTable::from_json(&huge).expect_err("too large");
    assert!(e.to_string().contains("more than the"), "{e}");
}

fn var(v: Var) -> Expr {
    Expr {
        terms: vec![(1, vec![v])],
    }
}

fn scaled(c: i64, v: Var) -> Expr {
    Expr {
        terms: vec![(c, vec![v])],
    }
}

fn konst(c: i64) -> Expr {
    Expr {
        terms: vec![(c, vec![])],
    }
}

/// `for k in 0..n { c[k] = a[k] + b[k] }` over i32 elements: arguments `n, a, b, c`.
fn vadd() -> OffloadKernel {
    let int = |i| Arg {
        source: ArgSource::Local(i),
        ty: ArgType::I32,
    };
    let access = |base: u32, group: u32, store: bool| AccessRange {
        base: var(Var::Arg(base)),
        strides: vec![(0, konst(4))],
        width: 4,
        imm: 0,
        group,
        constant: 0,
        store,
        float: false,
        when: vec![],
    };
    OffloadKernel {
        name: "vadd".into(),
        function: 0,
        offset: 0,
        ptx: String::new(),
        block: [256, 1, 1],
        args: vec![int(0), int(1), int(2), int(3)],
        trips: vec![Trip {
            lp: 0,
            num: var(Var::Arg(0)),
            div: 1,
            exact: false,
            add: 0,
            wrap: vec![],
        }],
        grid: vec![0],
        params: vec![
            ParamValue::Memory,
            ParamValue::Int {
                expr: scaled(4, Var::Trip(0)),
                bits: 32,
            },
        ],
        accesses: vec![access(1, 0, false), access(2, 1, false), access(3, 2, true)],
        checks: vec![
            Check::NoOverlap(2, 0),
            Check::NoOverlap(2, 1),
            Check::DisjointThreads(2),
        ],
        min_threads: 4096,
        live_outs: vec![LiveOut {
            local: 4,
            ty: ArgType::I32,
            value: var(Var::Trip(0)),
        }],
        oracle: None,
        entry_constants: None,
        cubins: vec![],
    }
}

fn args(n: i32, a: i32, b: i32, c: i32) -> Vec<Value> {
    [n, a, b, c].into_iter().map(Value::I32).collect()
}

const MEMORY: usize = 1 << 20;

#[test]
fn a_call_that_meets_every_condition_gets_its_launch_values() {
    let k = vadd();
    let c = check(&k, &args(8192, 0, 32768, 65536), MEMORY, None).expect("dispatches");
    assert_eq!(c.window, (0, 65536 + 4 * 8192));
    assert_eq!(c.iterations(), 8192);
    assert_eq!(c.grid(&k).expect("grid"), [32, 1, 1]);
    assert_eq!(
        c.int_param(&scaled(4, Var::Trip(0)), 32).expect("param"),
        32768
    );
    assert_eq!(c.live_outs(&k).expect("live-outs"), vec![8192]);
    // The window starts on a 16-byte boundary below the lowest access.
    let c = check(&k, &args(4096, 100, 32768, 65536), MEMORY, None).expect("dispatches");
    assert_eq!(c.window, (96, 65536 + 4 * 4096));
}

#[test]
fn each_failed_condition_declines_with_its_label() {
    let k = vadd();
    let reason =
        |k: &OffloadKernel, a: Vec<Value>, min: Option<u64>| match check(k, &a, MEMORY, min) {
            Ok(c) => panic!("dispatched with window {:?}", c.window),
            Err(d) => d.reason,
        };
    assert_eq!(
        reason(&k, args(4095, 0, 32768, 65536), None),
        "below-threshold"
    );
    assert_eq!(
        reason(&k, args(0, 0, 32768, 65536), Some(1)),
        "below-threshold"
    );
    // c's last element ends one byte past memory.
    let c = (MEMORY - 4 * 4096 + 1) as i32;
    assert_eq!(reason(&k, args(4096, 0, 32768, c), None), "out-of-bounds");
    assert_eq!(reason(&k, args(4096, 0, 32768, 65538), None), "misaligned");
    // c overlaps a by one element.
    assert_eq!(reason(&k, args(4096, 0, 32768, 4 * 4095), None), "alias");
    // A negative i32 reads as a large unsigned count: out of memory, not a wrapped range.
    assert_eq!(reason(&k, args(-1, 0, 32768, 65536), None), "out-of-bounds");
    assert_eq!(reason(&k, vec![Value::I32(4096)], None), "bad-call");
    // c == a: each thread reads the element it writes, and no other thread touches it.
    assert!(check(&k, &args(4096, 0, 32768, 0), MEMORY, None).is_ok());
}

#[test]
fn a_malformed_signed_table_declines_instead_of_panicking() {
    let mut k = vadd();
    k.grid = vec![7];
    let d = check(&k, &args(4096, 0, 32768, 65536), MEMORY, None).expect_err("declined");
    assert_eq!(d.reason, "bad-table");

    let mut k = vadd();
    k.checks.push(Check::AtLeastOnce(9));
    let d = check(&k, &args(4096, 0, 32768, 65536), MEMORY, None).expect_err("declined");
    assert_eq!(d.reason, "condition");

    for bits in [0, 65, u32::MAX] {
        let mut k = vadd();
        k.trips[0].wrap.push(WrapCheck {
            base: konst(0),
            strides: vec![(0, konst(1))],
            signed: true,
            bits,
            top: true,
        });
        let d = check(&k, &args(4096, 0, 32768, 65536), MEMORY, None).expect_err("declined");
        assert_eq!(d.reason, "bad-table", "bits {bits}");
    }
}
