//! The offload path end to end: plan, rewrite, and the dispatch host on the `emulated` and
//! `none` backends, against the original module under plain Wasmtime.
//!
//! Bare samples: the same memory image and arguments go to the original module and to the
//! rewritten one; memory afterwards must be byte-identical, with the kernels dispatched (on the
//! interpreter) or declined (backend none). Hand-written modules cover the host's declines: a
//! trap inside the loop, ranges past the end of memory, overlapping buffers, zero trips.

use std::path::Path;
use std::sync::Arc;

#[path = "common/cases.rs"]
mod cases;
use cases::{cases, fill};

use tensorwasm::offload::{plan_module, rewrite};
use tensorwasm_bundle::offload::OffloadTable;
use tensorwasmd::offload::{
    BackendKind, HasOffload, Host, KernelStats, Kernels, OffloadState, define,
};
use wasmtime::{Engine, Linker, Module, Store, Val};

struct State {
    off: OffloadState,
}

impl HasOffload for State {
    fn offload(&mut self) -> &mut OffloadState {
        &mut self.off
    }
}

/// What a run left: memory, results (or the trap message), and per-kernel statistics.
#[derive(Debug)]
struct Run {
    memory: Vec<u8>,
    result: Result<Vec<String>, String>,
    stats: Vec<KernelStats>,
}

fn run(
    engine: &Engine,
    wasm: &[u8],
    table: Option<&OffloadTable>,
    backend: BackendKind,
    export: &str,
    args: &[Val],
    setup: &dyn Fn(&mut [u8]),
) -> Run {
    let module = Module::new(engine, wasm).expect("module compiles");
    let mut linker: Linker<State> = Linker::new(engine);
    if let Some(t) = table {
        define(
            &mut linker,
            &module,
            Arc::new(Kernels::new(t.clone())),
            Arc::new(Host::new(backend, Some(1)).expect("host")),
        )
        .expect("imports defined");
    }
    let mut store = Store::new(
        engine,
        State {
            off: OffloadState::default(),
        },
    );
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("instantiates");
    let memory = instance
        .get_memory(&mut store, "memory")
        .expect("memory export");
    setup(memory.data_mut(&mut store));
    let func = instance.get_func(&mut store, export).expect("export");
    let mut results = vec![Val::I32(0); func.ty(&store).results().len()];
    let result = func
        .call(&mut store, args, &mut results)
        .map(|()| results.iter().map(|v| format!("{v:?}")).collect())
        .map_err(|e| format!("{e:#}"));
    Run {
        memory: memory.data(&store).to_vec(),
        result,
        stats: store.data().off.stats().to_vec(),
    }
}

fn dispatched(stats: &[KernelStats]) -> u64 {
    stats.iter().map(|s| s.dispatched).sum()
}

fn declined(stats: &[KernelStats], reason: &str) -> u64 {
    stats
        .iter()
        .map(|s| s.declined.get(reason).copied().unwrap_or(0))
        .sum()
}

fn offloaded(wasm: &[u8]) -> (Vec<u8>, OffloadTable) {
    let kernels = plan_module(wasm, Default::default()).expect("plan").kernels;
    let rewritten = rewrite(wasm, &kernels).expect("rewrite");
    (rewritten, OffloadTable { kernels })
}

#[test]
fn bare_samples_match_the_original_on_emulated_and_none() {
    let engine = Engine::default();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/wasm/bare");
    let mut with_kernels = 0;
    for case in cases() {
        let wasm = std::fs::read(root.join(format!("{}.wasm", case.name))).expect("sample");
        let (rewritten, table) = offloaded(&wasm);
        let setup = |mem: &mut [u8]| {
            for (k, &(at, n)) in case.inputs.iter().enumerate() {
                fill(mem, at, n, k as u32 + 7);
            }
        };
        let original = run(
            &engine,
            &wasm,
            None,
            BackendKind::None,
            case.name,
            &case.args,
            &setup,
        );
        assert!(
            original.result.is_ok(),
            "{}: {:?}",
            case.name,
            original.result
        );
        for backend in [BackendKind::Emulated, BackendKind::None] {
            let r = run(
                &engine,
                &rewritten,
                Some(&table),
                backend,
                case.name,
                &case.args,
                &setup,
            );
            assert_eq!(r.result, original.result, "{} on {backend:?}", case.name);
            assert!(
                r.memory == original.memory,
                "{} on {backend:?}: memory differs from the original module's",
                case.name
            );
            let calls: u64 = r
                .stats
                .iter()
                .map(|s| s.dispatched + s.declined.values().sum::<u64>())
                .sum();
            assert_eq!(calls as usize, table.kernels.len(), "{}", case.name);
            match backend {
                BackendKind::None => assert_eq!(dispatched(&r.stats), 0),
                // Bare transpose's clang-unrolled stores reach the output through two bases
                // (`out + j*n` and `out + (j+1)*n`), which the analysis groups apart and
                // requires disjoint; they interleave, so the guard declines every real input.
                _ if case.name == "transpose" => {
                    assert_eq!(declined(&r.stats, "alias"), 1, "{:?}", r.stats);
                }
                _ => assert_eq!(
                    dispatched(&r.stats) as usize,
                    table.kernels.len(),
                    "{}: every kernel dispatches on the interpreter: {:?}",
                    case.name,
                    r.stats
                ),
            }
        }
        if !table.kernels.is_empty() {
            with_kernels += 1;
        }
    }
    // Every bare sample with an offloadable nest: vadd, saxpy, relu_clamp, matmul,
    // batched_matmul, and conv2d, jacobi2d and transpose (whose guards decide "threads touch
    // disjoint bytes" at run time).
    assert_eq!(with_kernels, 8);
}

/// `run(p, n, d)`: fills `n` i32 at `p` with `7*i + 1`, divides each by `d` in place (the
/// offloaded loop), and returns their sum. `copy(dst, src, n)`: `dst[i] = src[i] + 1`.
/// `scatter(dst, src, n, s)`: `dst[i*s] = src[i]`, a stride only known at run time.
const WAT: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "run") (param $p i32) (param $n i32) (param $d i32) (result i32)
    (local $i i32) (local $s i32)
    (block
      (br_if 0 (i32.eqz (local.get $n)))
      (loop
        (i32.store (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))
          (i32.div_s
            (i32.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2))))
            (local.get $d)))
        (br_if 0 (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                         (local.get $n)))))
    (local.set $i (i32.const 0))
    (block
      (br_if 0 (i32.eqz (local.get $n)))
      (loop
        (local.set $s (i32.add (local.get $s)
          (i32.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2))))))
        (br_if 0 (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                         (local.get $n)))))
    (local.get $s))
  (func (export "copy") (param $dst i32) (param $src i32) (param $n i32)
    (local $i i32)
    (block
      (br_if 0 (i32.eqz (local.get $n)))
      (loop
        (i32.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
          (i32.add (i32.const 1)
            (i32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))))
        (br_if 0 (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                         (local.get $n))))))
  (func (export "scatter") (param $dst i32) (param $src i32) (param $n i32) (param $s i32)
    (local $i i32)
    (block
      (br_if 0 (i32.eqz (local.get $n)))
      (loop
        (i32.store
          (i32.add (local.get $dst) (i32.shl (i32.mul (local.get $i) (local.get $s)) (i32.const 2)))
          (i32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))
        (br_if 0 (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                         (local.get $n)))))))
"#;

fn fill_ramp(mem: &mut [u8], at: usize, n: usize) {
    for i in 0..n {
        let v = (7 * i as i32 + 1).to_le_bytes();
        if let Some(dst) = mem.get_mut(at + 4 * i..at + 4 * i + 4) {
            dst.copy_from_slice(&v);
        }
    }
}

/// The hand-written module in its original and rewritten forms, with its kernel table.
struct Pair {
    engine: Engine,
    original: Vec<u8>,
    rewritten: Vec<u8>,
    table: OffloadTable,
}

impl Pair {
    fn new() -> Pair {
        let original = wat::parse_str(WAT).expect("wat");
        let (rewritten, table) = offloaded(&original);
        assert_eq!(table.kernels.len(), 3, "the divide, copy and scatter loops");
        Pair {
            engine: Engine::default(),
            original,
            rewritten,
            table,
        }
    }

    /// Runs `export` on the original and on the rewritten module (emulated), checks they
    /// agree on results and memory, and returns the rewritten run.
    fn both(&self, export: &str, args: &[Val], setup: &dyn Fn(&mut [u8])) -> Run {
        let a = run(
            &self.engine,
            &self.original,
            None,
            BackendKind::None,
            export,
            args,
            setup,
        );
        let b = run(
            &self.engine,
            &self.rewritten,
            Some(&self.table),
            BackendKind::Emulated,
            export,
            args,
            setup,
        );
        assert_eq!(
            a.result.is_ok(),
            b.result.is_ok(),
            "{export}: {a:?} vs {b:?}"
        );
        if let (Ok(x), Ok(y)) = (&a.result, &b.result) {
            assert_eq!(x, y, "{export}");
        }
        if let (Err(x), Err(y)) = (&a.result, &b.result) {
            let first = |s: &str| s.lines().next().unwrap_or_default().to_string();
            assert!(
                first(y).contains(&first(x)) || y.contains("divide by zero"),
                "{export}: the CPU loop traps the same way: {x} vs {y}"
            );
        }
        assert!(a.memory == b.memory, "{export}: memory differs");
        b
    }
}

#[test]
fn the_host_dispatches_in_bounds_and_declines_the_rest() {
    let h = Pair::new();
    let i = Val::I32;
    let ramp = |p: usize, n: usize| move |m: &mut [u8]| fill_ramp(m, p, n);

    // In bounds: the divide runs on the interpreter.
    let r = h.both("run", &[i(1024), i(300), i(3)], &ramp(1024, 300));
    assert_eq!(dispatched(&r.stats), 1, "{:?}", r.stats);

    // A divisor of zero: the kernel raises its trap flag, the host declines with memory
    // untouched, and the CPU loop traps at the same place.
    let r = h.both("run", &[i(1024), i(300), i(0)], &ramp(1024, 300));
    assert!(r.result.is_err());
    assert_eq!(declined(&r.stats, "trap"), 1, "{:?}", r.stats);

    // The range runs past the end of memory: declined, and the CPU loop traps out of bounds.
    let p = 65536 - 4 * 100;
    let r = h.both("run", &[i(p), i(300), i(3)], &ramp(p as usize, 300));
    assert!(r.result.is_err());
    assert_eq!(declined(&r.stats, "out-of-bounds"), 1, "{:?}", r.stats);

    // A pointer at the very end of memory with one element: out of bounds by 4 bytes.
    let r = h.both("run", &[i(65536 - 2), i(1), i(3)], &|_: &mut [u8]| {});
    assert!(r.result.is_err());
    assert_eq!(declined(&r.stats, "out-of-bounds"), 1);

    // A base that wraps: the exact address is past 2^32, the Wasm one traps.
    let r = h.both("run", &[i(-8), i(4), i(3)], &|_: &mut [u8]| {});
    assert!(r.result.is_err());
    assert_eq!(declined(&r.stats, "out-of-bounds"), 1);

    // Zero trips: the loop is never entered, nothing dispatches.
    let r = h.both("run", &[i(1024), i(0), i(3)], &|_: &mut [u8]| {});
    assert_eq!(r.stats.iter().map(|s| s.dispatched).sum::<u64>(), 0);
    assert!(r.stats.iter().all(|s| s.declined.is_empty()));

    // Overlapping buffers: dst = src + 4 makes each iteration read the previous one's store.
    let r = h.both("copy", &[i(2048 + 4), i(2048), i(200)], &ramp(2048, 201));
    assert_eq!(declined(&r.stats, "alias"), 1, "{:?}", r.stats);

    // Disjoint buffers: dispatched.
    let r = h.both("copy", &[i(8192), i(2048), i(200)], &ramp(2048, 200));
    assert_eq!(dispatched(&r.stats), 1, "{:?}", r.stats);

    // "Threads touch disjoint bytes", decided with the launch's stride: 3 elements apart,
    // dispatched; 0 apart (every thread stores to dst[0]), declined.
    let r = h.both(
        "scatter",
        &[i(8192), i(2048), i(100), i(3)],
        &ramp(2048, 100),
    );
    assert_eq!(dispatched(&r.stats), 1, "{:?}", r.stats);
    let r = h.both(
        "scatter",
        &[i(8192), i(2048), i(100), i(0)],
        &ramp(2048, 100),
    );
    assert_eq!(declined(&r.stats, "alias"), 1, "{:?}", r.stats);
}

#[test]
fn below_the_threshold_the_host_declines() {
    let h = Pair::new();
    let engine = &h.engine;
    let module = Module::new(engine, &h.rewritten).expect("module");
    let mut linker: Linker<State> = Linker::new(engine);
    // The kernels' own threshold (4096 threads), not the tests' override.
    define(
        &mut linker,
        &module,
        Arc::new(Kernels::new(h.table.clone())),
        Arc::new(Host::new(BackendKind::Emulated, None).expect("host")),
    )
    .expect("define");
    let mut store = Store::new(
        engine,
        State {
            off: OffloadState::default(),
        },
    );
    let inst = linker.instantiate(&mut store, &module).expect("inst");
    let f = inst
        .get_typed_func::<(i32, i32, i32), i32>(&mut store, "run")
        .expect("run");
    f.call(&mut store, (1024, 100, 3)).expect("runs on the CPU");
    assert_eq!(declined(store.data().off.stats(), "below-threshold"), 1);
}

#[test]
fn a_module_whose_imports_the_table_does_not_describe_is_refused() {
    let h = Pair::new();
    let module = Module::new(&h.engine, &h.rewritten).expect("module");
    let mut linker: Linker<State> = Linker::new(&h.engine);
    let mut table = h.table.clone();
    table.kernels[0].name = "renamed".into();
    let err = define(
        &mut linker,
        &module,
        Arc::new(Kernels::new(table)),
        Arc::new(Host::none()),
    )
    .expect_err("an import without a kernel");
    assert!(err.to_string().contains("names no kernel"), "{err}");
}

#[test]
fn a_module_that_already_imports_the_offload_module_is_not_rewritten() {
    let wasm = wat::parse_str(
        r#"(module (import "tensorwasm:offload" "live_out" (func (param i32) (result i64))))"#,
    )
    .expect("wat");
    let err = rewrite(&wasm, &[]).expect_err("refused");
    assert!(err.contains("already imports"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The build's oracle step.

use tensorwasm::oracle::nest::{NestReport, check_kernels};
use tensorwasm_bundle::offload::OffloadKernel;

/// Plans `wasm`'s kernels, applies `mutate` to each, and runs the oracle (1000 cases, seed 1).
fn oracle(wasm: &[u8], mutate: &dyn Fn(&mut OffloadKernel)) -> Vec<NestReport> {
    let mut planned = plan_module(wasm, Default::default()).expect("plan");
    planned.kernels.iter_mut().for_each(mutate);
    let outlined =
        tensorwasm::offload::outline(wasm, &planned.kernels, &planned.locals).expect("outline");
    let table = OffloadTable {
        kernels: planned.kernels.clone(),
    };
    check_kernels(
        &outlined,
        &table,
        &planned.locals,
        &planned.constants,
        1000,
        1,
        tensorwasmd::offload::BackendKind::Emulated,
    )
    .expect("the oracle runs")
}

fn bare(name: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/wasm");
    std::fs::read(root.join(name)).expect("sample")
}

#[test]
fn every_bare_sample_kernel_passes_the_oracle() {
    for name in [
        "vadd",
        "saxpy",
        "relu_clamp",
        "matmul",
        "batched_matmul",
        "conv2d",
        "jacobi2d",
        "transpose",
    ] {
        let reports = oracle(&bare(&format!("bare/{name}.wasm")), &|_| {});
        assert_eq!(reports.len(), 1, "{name}");
        let r = &reports[0];
        assert_eq!(r.failure, None, "{name}: {}", r.summary());
        assert_eq!(r.cases, 1000, "{name}");
        assert!(r.dispatched >= 250, "{name}: {}", r.summary());
        assert!(
            !r.declined.is_empty(),
            "{name}: some cases exercise a decline: {}",
            r.summary()
        );
    }
}

fn mutated(wasm: &[u8], from: &str, to: &str) -> NestReport {
    let reports = oracle(wasm, &|k| {
        assert!(k.ptx.contains(from), "{from} is not in the kernel");
        k.ptx = k.ptx.replacen(from, to, 1);
    });
    reports.into_iter().next().expect("one kernel")
}

#[test]
fn the_oracle_catches_deliberate_miscompilations() {
    let saxpy = bare("bare/saxpy.wasm");
    for (from, to, what) in [
        ("add.rn.f32", "add.rn.ftz.f32", "flush to zero"),
        ("mul.rn.f32", "mul.rz.f32", "another rounding"),
        (
            "setp.ge.u64 \t%p0",
            "setp.gt.u64 \t%p0",
            "an off-by-one bound",
        ),
    ] {
        let r = mutated(&saxpy, from, to);
        let f = r.failure.unwrap_or_else(|| panic!("{what} was not caught"));
        assert!(!f.what.is_empty(), "{what}");
        assert!(
            !f.locals.is_empty(),
            "{what}: the counterexample names the locals"
        );
    }
    // The divide's trap checks: by zero, and INT_MIN / -1.
    let div = wat::parse_str(
        r#"(module (memory (export "memory") 1)
          (func (export "run") (param $p i32) (param $n i32) (param $d i32)
            (local $i i32)
            (block (br_if 0 (i32.eqz (local.get $n)))
              (loop
                (i32.store (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))
                  (i32.div_s (i32.load (i32.add (local.get $p)
                                 (i32.shl (local.get $i) (i32.const 2)))) (local.get $d)))
                (br_if 0 (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                                 (local.get $n)))))))"#,
    )
    .expect("wat");
    assert_eq!(oracle(&div, &|_| {})[0].failure, None);
    for (from, what) in [
        ("@%p1 bra \t$L__1;", "the divide-by-zero check"),
        ("@%p3 bra \t$L__1;", "the INT_MIN / -1 check"),
    ] {
        let r = mutated(&div, from, "");
        let f = r
            .failure
            .unwrap_or_else(|| panic!("dropping {what} was not caught"));
        assert!(
            f.what.contains("trap") || f.what.contains("interpreter"),
            "{what}: {}",
            f.what
        );
    }
}

#[test]
fn the_guard_declines_a_trip_count_that_would_wrap() {
    // WASI libc's memcpy (function 50 of the vadd sample) counts `n -= 32` while `n >u 15`;
    // its trip formula holds only while the compared value stays in [0, 2^32). With the
    // guard's wrap check the kernel passes (inputs like n = 48 are declined and the CPU loop
    // runs, wrapping and trapping as before); without it, the oracle finds the mismatch.
    let vadd = bare("wasi/vadd.wasm");
    let find = |reports: Vec<NestReport>| {
        reports
            .into_iter()
            .find(|r| r.kernel == "tw_f50_loop0")
            .expect("memcpy's kernel")
    };
    let guarded = find(oracle(&vadd, &|_| {}));
    assert_eq!(guarded.failure, None, "{}", guarded.summary());
    assert!(
        guarded.declined.get("condition").copied().unwrap_or(0) > 0,
        "{}",
        guarded.summary()
    );
    let unguarded = find(oracle(&vadd, &|k| {
        for t in &mut k.trips {
            t.wrap.clear();
        }
    }));
    let f = unguarded.failure.expect("caught without the wrap check");
    assert!(f.what.contains("did not raise its trap flag"), "{}", f.what);
}

#[test]
fn malformed_dispatch_imports_are_refused_and_a_stray_live_out_traps() {
    let engine = Engine::default();
    let table = OffloadTable { kernels: vec![] };
    let link = |wat: &str| -> Result<(Module, Linker<State>), String> {
        let module = Module::new(&engine, wat::parse_str(wat).expect("wat")).expect("module");
        let mut linker: Linker<State> = Linker::new(&engine);
        define(
            &mut linker,
            &module,
            Arc::new(Kernels::new(table.clone())),
            Arc::new(Host::none()),
        )
        .map_err(|e| e.to_string())?;
        Ok((module, linker))
    };
    let refused = |wat: &str| match link(wat) {
        Ok(_) => panic!("linked: {wat}"),
        Err(e) => e,
    };
    let err = refused(r#"(module (import "tensorwasm:offload" "live_out" (memory 1)))"#);
    assert!(err.contains("is not a function"), "{err}");
    let err = refused(r#"(module (import "tensorwasm:offload" "live_out" (func (param i64))))"#);
    assert!(err.contains("must have type (i32) -> i64"), "{err}");

    // A kernel's import with another signature than the table's.
    let h = Pair::new();
    let mut table = h.table.clone();
    table.kernels[0].args.pop();
    let module = Module::new(&h.engine, &h.rewritten).expect("module");
    let mut linker: Linker<State> = Linker::new(&h.engine);
    let err = define(
        &mut linker,
        &module,
        Arc::new(Kernels::new(table)),
        Arc::new(Host::none()),
    )
    .expect_err("refused");
    assert!(
        err.to_string().contains("does not have the kernel's type"),
        "{err}"
    );

    // live_out with no dispatch behind it traps with a message, it does not panic.
    let (module, linker) = link(
        r#"(module (import "tensorwasm:offload" "live_out" (func $lo (param i32) (result i64)))
             (func (export "f") (result i64) (call $lo (i32.const 5))))"#,
    )
    .expect("links");
    let mut store = Store::new(
        &engine,
        State {
            off: OffloadState::default(),
        },
    );
    let inst = linker.instantiate(&mut store, &module).expect("instance");
    let f = inst.get_typed_func::<(), i64>(&mut store, "f").expect("f");
    let err = f.call(&mut store, ()).expect_err("traps");
    assert!(format!("{err:#}").contains("no such live-out"), "{err:#}");
}
