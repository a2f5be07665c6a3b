//! The offload path end to end: plan, rewrite, and the dispatch host on the `emulated` and
//! `none` backends, against the original module under plain Wasmtime.
//!
//! Bare samples: the same memory image and arguments go to the original module and to the
//! rewritten one; memory afterwards must be byte-identical, with the kernels dispatched (on the
//! interpreter) or declined (backend none). Hand-written modules cover the host's declines: a
//! trap inside the loop, ranges past the end of memory, overlapping buffers, zero trips.

#[path = "../../offload/tests/common/bodies.rs"]
mod bodies;
use bodies::bodies;
use std::path::Path;
use std::sync::Arc;

#[path = "common/cases.rs"]
mod cases;
#[path = "common/resign.rs"]
mod resign;
use cases::{cases, fill};

use tensorwasm_guard::OffloadTable;
use tensorwasm_offload::{plan_module, rewrite};
use tensorwasmd::offload::{
    BackendKind, HasOffload, Host, KernelStats, Kernels, LaunchLimits, OffloadState, define,
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
    let host = Host::new(backend, Some(1)).expect("host");
    run_on(engine, wasm, table, Arc::new(host), export, args, setup)
}

/// [`run`] on a given host (its launch limits, say).
fn run_on(
    engine: &Engine,
    wasm: &[u8],
    table: Option<&OffloadTable>,
    host: Arc<Host>,
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
            host,
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
    bare_samples_match_the_original_on(&[BackendKind::Emulated, BackendKind::None]);
}

/// Whether the `cuda` backend can run here; prints why not (past the test harness's capture)
/// when it cannot. With `TENSORWASM_REQUIRE_GPU=1` (scripts/gpu-check.sh) a missing GPU fails.
fn cuda_or_skip(test: &str) -> bool {
    use std::io::Write as _;
    let required =
        std::env::var_os("TENSORWASM_REQUIRE_GPU").is_some_and(|v| !v.is_empty() && v != "0");
    match Host::new(BackendKind::Cuda, None) {
        Ok(_) => true,
        Err(e) if required => {
            panic!("{test}: TENSORWASM_REQUIRE_GPU=1 but {e}")
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{test}: skipped, no usable GPU: {e}");
            false
        }
    }
}

/// The GPU suite: the bare samples on the `cuda` backend, compared with the original module
/// on the CPU. Runs when libcuda loads and device 0 opens; skipped with the reason otherwise.
#[test]
fn bare_samples_match_the_original_on_cuda() {
    if cuda_or_skip("bare_samples_match_the_original_on_cuda") {
        bare_samples_match_the_original_on(&[BackendKind::Cuda]);
    }
}

fn bare_samples_match_the_original_on(backends: &[BackendKind]) {
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
        for &backend in backends {
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
            assert_eq!(table.kernels.len(), case.kernels, "{}", case.name);
            assert_eq!(calls, case.calls, "{}", case.name);
            match backend {
                BackendKind::None => assert_eq!(dispatched(&r.stats), 0),
                _ => assert_eq!(
                    dispatched(&r.stats),
                    case.calls,
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
    // batched_matmul, and conv2d, jacobi2d, transpose, threshold, diffuse_steps and
    // orthonormalize (whose guards decide "threads touch disjoint bytes" at run time).
    assert_eq!(with_kernels, 11);
}

#[test]
fn stats_count_the_bytes_each_launch_copies_each_way() {
    let engine = Engine::default();
    let wasm = bare("bare/vadd.wasm");
    let (rewritten, table) = offloaded(&wasm);
    let case = cases::case("vadd");
    let setup = |mem: &mut [u8]| case.fill_inputs(mem, 7);
    // vadd(c, a, b, 37) with c, a, b 8192 bytes apart: the window runs from c to the end of
    // b's first 36 elements (clang unrolls by 2; the 37th is the remainder, run on the CPU
    // after the nest).
    let window = 2 * 8192 + 36 * 4;
    let on = |backend| {
        run(
            &engine,
            &rewritten,
            Some(&table),
            backend,
            "vadd",
            &case.args,
            &setup,
        )
    };
    let r = on(BackendKind::Emulated);
    assert_eq!(dispatched(&r.stats), 1, "{:?}", r.stats);
    assert_eq!(r.stats[0].bytes_to_device, window);
    assert_eq!(r.stats[0].bytes_from_device, window);
    // Declined before any copy: nothing counted.
    let r = on(BackendKind::None);
    assert_eq!(r.stats[0].bytes_to_device + r.stats[0].bytes_from_device, 0);
    // Inside a sequential loop every entry copies its window in and out again (keeping data on
    // the device across the loop is not built yet): twice the steps, twice the bytes.
    let wasm = bare("bare/diffuse_steps.wasm");
    let (rewritten, table) = offloaded(&wasm);
    let case = cases::case("diffuse_steps");
    let bytes = |steps: i32| -> (u64, u64) {
        let mut args = case.args.clone();
        args[4] = Val::I32(steps);
        let r = run(
            &engine,
            &rewritten,
            Some(&table),
            BackendKind::Emulated,
            "diffuse_steps",
            &args,
            &|mem: &mut [u8]| case.fill_inputs(mem, 7),
        );
        assert_eq!(dispatched(&r.stats), 2 * steps as u64, "{:?}", r.stats);
        (
            r.stats.iter().map(|s| s.bytes_to_device).sum(),
            r.stats.iter().map(|s| s.bytes_from_device).sum(),
        )
    };
    let (three, six) = (bytes(3), bytes(6));
    assert!(three.0 > 0 && three.0 == three.1, "{three:?}");
    assert_eq!(six, (2 * three.0, 2 * three.1));
}

/// `run(p, n, d)`: fills `n` i32 at `p` with `7*i + 1`, divides each by `d` in place (the
/// offloaded loop), and returns their sum. `copy(dst, src, n)`: `dst[i] = src[i] + 1`.
/// `scatter(dst, src, n, s)`: `dst[i*s] = src[i]`, a stride only known at run time.
/// `maybe(dst, src, q, n, f)`: `dst[i] = src[i]`, plus `q[i+1]` when `f` is non-zero (a load
/// that runs only under a branch on a live-in).
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
                         (local.get $n))))))
  (func (export "maybe") (param $dst i32) (param $src i32) (param $q i32) (param $n i32)
        (param $f i32)
    (local $i i32) (local $v i32)
    (block
      (br_if 0 (i32.eqz (local.get $n)))
      (loop
        (local.set $v
          (i32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))
        (if (local.get $f)
          (then
            (local.set $v (i32.add (local.get $v)
              (i32.load offset=4 (i32.add (local.get $q) (i32.shl (local.get $i) (i32.const 2))))))))
        (i32.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
          (local.get $v))
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
        let pair = Pair::of(WAT);
        assert_eq!(
            pair.table.kernels.len(),
            4,
            "the divide, copy, scatter and maybe loops"
        );
        pair
    }

    /// The module `wat` in its original and rewritten forms.
    fn of(wat: &str) -> Pair {
        let original = wat::parse_str(wat).expect("wat");
        let (rewritten, table) = offloaded(&original);
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
        let host = Host::new(BackendKind::Emulated, Some(1)).expect("host");
        self.both_on(Arc::new(host), export, args, setup)
    }

    /// [`Pair::both`] with the rewritten module on `host`.
    fn both_on(
        &self,
        host: Arc<Host>,
        export: &str,
        args: &[Val],
        setup: &dyn Fn(&mut [u8]),
    ) -> Run {
        let a = run(
            &self.engine,
            &self.original,
            None,
            BackendKind::None,
            export,
            args,
            setup,
        );
        let b = run_on(
            &self.engine,
            &self.rewritten,
            Some(&self.table),
            host,
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

    // dst = src - 4: each iteration stores to the element the previous one read; also
    // declined.
    let r = h.both(
        "copy",
        &[i(2048 - 4), i(2048), i(200)],
        &ramp(2048 - 4, 201),
    );
    assert_eq!(declined(&r.stats, "alias"), 1, "{:?}", r.stats);

    // In place (dst = src): the ranges overlap, but every thread reads and writes only its
    // own element, which the exact test between the two groups shows: dispatched, and memory
    // matches the CPU loop's.
    let r = h.both("copy", &[i(2048), i(2048), i(200)], &ramp(2048, 200));
    assert_eq!(dispatched(&r.stats), 1, "{:?}", r.stats);

    // Wasm allows a misaligned i32.store; PTX does not (on a GPU it ends the context): the
    // host declines, and the CPU loop stores at the odd address.
    let r = h.both("copy", &[i(8192 + 2), i(2048), i(200)], &ramp(2048, 200));
    assert_eq!(declined(&r.stats, "misaligned"), 1, "{:?}", r.stats);

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
fn an_access_under_a_live_in_branch_counts_only_when_the_branch_runs_it() {
    let h = Pair::new();
    let i = Val::I32;
    let ramp = |p: usize, n: usize| move |m: &mut [u8]| fill_ramp(m, p, n);
    let kernel = h
        .table
        .kernels
        .iter()
        .find(|k| k.accesses.iter().any(|a| !a.when.is_empty()))
        .expect("the maybe loop's load of q carries its branch");
    assert_eq!(
        kernel
            .accesses
            .iter()
            .filter(|a| !a.when.is_empty())
            .count(),
        1,
        "only q[i+1] is guarded: {:?}",
        kernel.accesses
    );

    // q = dst: thread i would read dst[i+1], which thread i+1 writes. With f = 1 that load
    // runs: declined, and the CPU loop runs.
    let r = h.both(
        "maybe",
        &[i(2048), i(8192), i(2048), i(200), i(1)],
        &ramp(8192, 200),
    );
    assert_eq!(declined(&r.stats, "alias"), 1, "{:?}", r.stats);
    // With f = 0 no iteration runs it, so it does not count: dispatched, same memory.
    let r = h.both(
        "maybe",
        &[i(2048), i(8192), i(2048), i(200), i(0)],
        &ramp(8192, 200),
    );
    assert_eq!(dispatched(&r.stats), 1, "{:?}", r.stats);
    // The same holds for bounds: q far past the end of memory is fine while f = 0 ...
    let r = h.both(
        "maybe",
        &[i(2048), i(8192), i(-4096), i(200), i(0)],
        &ramp(8192, 200),
    );
    assert_eq!(dispatched(&r.stats), 1, "{:?}", r.stats);
    // ... and declined, with the CPU loop trapping, when f = 1.
    let r = h.both(
        "maybe",
        &[i(2048), i(8192), i(-4096), i(200), i(1)],
        &ramp(8192, 200),
    );
    assert!(r.result.is_err());
    assert_eq!(declined(&r.stats, "out-of-bounds"), 1, "{:?}", r.stats);
    // Disjoint q with f = 1: dispatched, and the loads of q count (same memory as the CPU).
    let r = h.both(
        "maybe",
        &[i(2048), i(8192), i(16384), i(200), i(1)],
        &|m: &mut [u8]| {
            fill_ramp(m, 8192, 200);
            fill_ramp(m, 16384, 201);
        },
    );
    assert_eq!(dispatched(&r.stats), 1, "{:?}", r.stats);
}

#[test]
fn a_launch_over_a_limit_declines_quota_and_the_cpu_loop_runs() {
    let h = Pair::new();
    let i = Val::I32;
    let ramp = |m: &mut [u8]| fill_ramp(m, 2048, 200);
    let args = [i(8192), i(2048), i(200)];
    let emulated = || Host::new(BackendKind::Emulated, Some(1)).expect("host");
    // Within the default limits: dispatched.
    let r = h.both_on(Arc::new(emulated()), "copy", &args, &ramp);
    assert_eq!(dispatched(&r.stats), 1, "{:?}", r.stats);
    // Over each limit in turn: declined `quota`, memory as the CPU loop leaves it.
    for (limits, why) in [
        (
            LaunchLimits {
                max_inflight: 0,
                ..LaunchLimits::default()
            },
            "in flight",
        ),
        (
            LaunchLimits {
                max_window_bytes: 1000,
                ..LaunchLimits::default()
            },
            "memory window of",
        ),
        (
            LaunchLimits {
                max_emulated_threads: 199,
                ..LaunchLimits::default()
            },
            "threads",
        ),
    ] {
        let r = h.both_on(
            Arc::new(emulated().with_limits(limits)),
            "copy",
            &args,
            &ramp,
        );
        assert_eq!(declined(&r.stats, "quota"), 1, "{why}: {:?}", r.stats);
        let detail = r
            .stats
            .iter()
            .find_map(|s| s.last_decline.clone())
            .unwrap_or_default();
        assert!(detail.contains(why), "{why}: {detail}");
    }
    // A slot is given back after each launch: with one, two calls in a row both dispatch.
    let one = LaunchLimits {
        max_inflight: 1,
        ..LaunchLimits::default()
    };
    let host = Arc::new(emulated().with_limits(one));
    for _ in 0..2 {
        let r = h.both_on(Arc::clone(&host), "copy", &args, &ramp);
        assert_eq!(dispatched(&r.stats), 1, "{:?}", r.stats);
    }
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

// ---------------------------------------------------------------------------------------------
// The build's oracle step.

use tensorwasm::oracle::nest::{NestFailure, NestReport, check_kernels};
use tensorwasm_guard::OffloadKernel;

/// Plans `wasm`'s kernels, applies `mutate` to each, and runs the oracle (1000 cases, seed 1).
fn oracle(wasm: &[u8], mutate: &dyn Fn(&mut OffloadKernel)) -> Vec<NestReport> {
    let mut planned = plan_module(wasm, Default::default()).expect("plan");
    planned.kernels.iter_mut().for_each(mutate);
    let outlined =
        tensorwasm_offload::outline(wasm, &planned.kernels, &planned.locals).expect("outline");
    let table = OffloadTable {
        kernels: planned.kernels.clone(),
    };
    check_kernels(
        &outlined,
        &table,
        &planned.locals,
        &planned.constants,
        tensorwasm::oracle::nest::Cases {
            count: 1000,
            seed: 1,
            budget: true,
        },
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
    for case in cases() {
        let name = case.name;
        let reports = oracle(&bare(&format!("bare/{name}.wasm")), &|_| {});
        assert_eq!(reports.len(), case.kernels, "{name}");
        for r in &reports {
            assert_eq!(r.failure, None, "{name}: {}", r.summary());
            // The tiled kernels' 16 x 16 blocks cost the interpreter more per case: the build's
            // instruction budget may stop them early (bare batched matmul after 320 cases).
            // 1000 cases plus up to 3 at launch size.
            assert!(
                (1000..=1003).contains(&r.cases) || (r.budget_exhausted && r.cases >= 300),
                "{name}: {}",
                r.summary()
            );
            // The inputs are built to meet the guard: at least half of the cases
            // run the kernel, for threshold's six access groups too.
            assert!(r.dispatched * 2 >= r.cases, "{name}: {}", r.summary());
            assert!(!r.weakly_checked(1000), "{name}: {}", r.summary());
            // And some run at the size the host launches, with the real block shape.
            assert!(r.largest_grid >= 4096, "{name}: {}", r.summary());
            assert!(
                !r.declined.is_empty(),
                "{name}: some cases exercise a decline: {}",
                r.summary()
            );
        }
    }
}

/// The WASI jacobi2d's main nest has constant trip counts (94 x 94 threads) and no live-ins,
/// so every case costs the same; the build stops it at its iteration budget (453 cases), and
/// this runs the 1000 cases `tensorwasm oracle` runs when asked.
#[test]
fn the_wasi_main_kernels_pass_1000_cases_without_a_budget() {
    // jacobi2d's 94 x 94 nest (every case runs it) and batched_matmul's tiled kernel.
    for (sample, kernel, ran) in [
        ("wasi/jacobi2d.wasm", "tw_f6_loop1", 1000),
        ("wasi/batched_matmul.wasm", "tw_f8_loop2", 400),
    ] {
        let wasm = bare(sample);
        let mut planned = plan_module(&wasm, Default::default()).expect("plan");
        let keep = planned
            .kernels
            .iter()
            .position(|k| k.name == kernel)
            .expect("the main nest is planned");
        let kernels = vec![planned.kernels.swap_remove(keep)];
        let locals = vec![planned.locals.swap_remove(keep)];
        let constants = vec![planned.constants.swap_remove(keep)];
        let outlined = tensorwasm_offload::outline(&wasm, &kernels, &locals).expect("outline");
        let table = OffloadTable { kernels };
        let reports = check_kernels(
            &outlined,
            &table,
            &locals,
            &constants,
            tensorwasm::oracle::nest::Cases {
                count: 1000,
                seed: 1,
                budget: false,
            },
            tensorwasmd::offload::BackendKind::Emulated,
        )
        .expect("the oracle runs");
        let r = &reports[0];
        assert_eq!(r.failure, None, "{sample}: {}", r.summary());
        // 1000 cases and 3 at launch size.
        assert_eq!(r.cases, 1003, "{sample}: {}", r.summary());
        assert!(r.dispatched >= ran, "{sample}: {}", r.summary());
        assert!(r.largest_grid >= 4096, "{sample}: {}", r.summary());
        assert!(!r.budget_exhausted);
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

/// A nest that stores `first` and `second` (`TY.const` operands) side by side in each 8 bytes:
/// its kernel passes the oracle, and with `from` replaced by `to` in its PTX it fails; the
/// failure.
fn side_by_side(ty: &str, first: &str, second: &str, from: &str, to: &str) -> NestFailure {
    let wasm = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1)
          (func (export "run") (param $p i32) (param $n i32) (local $i i32)
            (block (br_if 0 (i32.eqz (local.get $n)))
              (loop
                ({ty}.store (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 3)))
                           ({ty}.const {first}))
                ({ty}.store offset=4 (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 3)))
                           ({ty}.const {second}))
                (br_if 0 (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                                 (local.get $n)))))))"#
    ))
    .expect("wat");
    assert_eq!(
        oracle(&wasm, &|_| {})[0].failure,
        None,
        "{ty}: the kernel passes"
    );
    mutated(&wasm, from, to)
        .failure
        .unwrap_or_else(|| panic!("{ty}: `{to}` for `{from}` was not caught"))
}

/// 8 bytes as an f64: `lo` the low half.
fn f64_of(lo: u32, hi: u32) -> f64 {
    f64::from_bits(u64::from(hi) << 32 | u64::from(lo))
}

/// Memory is compared exactly by type: an i32 lane next to a -1 is no NaN. Each iteration
/// stores `5` and `-1` side by side; a kernel that stores `6` instead leaves the aligned 8 bytes
/// `[6, -1]`, which read as an f64 are a NaN just like the CPU's `[5, -1]`. A comparison that
/// matched NaN against NaN anywhere passed this kernel.
#[test]
fn the_oracle_compares_integer_lanes_exactly_beside_a_nan_pattern() {
    assert!(f64_of(5, u32::MAX).is_nan() && f64_of(6, u32::MAX).is_nan());
    let f = side_by_side("i32", "5", "-1", "mov.b32 \t%r13, 5;", "mov.b32 \t%r13, 6;");
    assert!(
        f.what.contains("a byte no float store writes") && f.what.contains("CPU [05]"),
        "{}",
        f.what
    );
}

/// A float lane is compared exactly next to a NaN: each iteration stores `1.0` and a NaN side
/// by side; a kernel that stores `1.0` plus one ulp leaves 8 bytes that read as a NaN f64 either
/// way (the NaN, with all its payload bits set, is the high half), so only a comparison by
/// lanes of the store's own width sees the difference.
#[test]
fn the_oracle_compares_a_float_lane_exactly_next_to_a_nan() {
    assert!(f64_of(0x3f80_0000, 0x7fff_ffff).is_nan());
    assert!(f64_of(0x3f80_0001, 0x7fff_ffff).is_nan());
    let f = side_by_side("f32", "1.0", "nan:0x7fffff", "0f3F800000;", "0f3F800001;");
    assert!(
        f.what.contains("an f32 lane") && f.what.contains("CPU [00 00 80 3f]"),
        "{}",
        f.what
    );
}

/// Registers named in `text` (`%r7`, `%rd12`, `%f3`, `%p1`; special registers too).
fn ptx_regs(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '%' || c == '_' || c == '.'))
        .filter(|t| t.starts_with('%'))
        .map(|t| t.split('.').next().unwrap_or(t).to_string())
        .collect()
}

/// An instruction line as `(opcode, destination, sources)`: a store or a branch has no
/// destination; a guard predicate (`@%p1`) is a source.
fn ptx_inst(line: &str) -> Option<(String, Option<String>, Vec<String>)> {
    let l = line.trim();
    if l.is_empty()
        || l.starts_with("//")
        || l.starts_with('.')
        || l.ends_with(':')
        || l == "{"
        || l == "}"
    {
        return None;
    }
    let (guard, rest) = match l.strip_prefix('@') {
        Some(g) => {
            let (p, r) = g.split_once(char::is_whitespace)?;
            (ptx_regs(p), r.trim())
        }
        None => (Vec::new(), l),
    };
    let (op, operands) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let mut regs = ptx_regs(operands);
    regs.extend(guard);
    if op.starts_with("st.") || op.starts_with("bra") || op == "ret" || op.starts_with("bar.") {
        return Some((op.to_string(), None, regs));
    }
    let dest = operands
        .split(',')
        .next()
        .map(ptx_regs)
        .and_then(|d| d.first().cloned());
    let srcs = match &dest {
        Some(_) => operands
            .split_once(',')
            .map(|(_, r)| ptx_regs(r))
            .unwrap_or_default(),
        None => regs,
    };
    Some((op.to_string(), dest, srcs))
}

/// The registers whose values may reach a store (its address or its value), through the data
/// flow of the text (control flow ignored): an instruction outside this slice is dead as far
/// as memory goes, and mutating it is an equivalent mutant.
fn ptx_store_slice(lines: &[&str]) -> std::collections::HashSet<String> {
    let insts: Vec<_> = lines.iter().filter_map(|l| ptx_inst(l)).collect();
    let mut live: std::collections::HashSet<String> = insts
        .iter()
        .filter(|(op, _, _)| op.starts_with("st."))
        .flat_map(|(_, _, srcs)| srcs.iter().cloned())
        .collect();
    loop {
        let before = live.len();
        for (_, dest, srcs) in &insts {
            if dest.as_ref().is_some_and(|d| live.contains(d)) {
                live.extend(srcs.iter().cloned());
            }
        }
        if live.len() == before {
            return live;
        }
    }
}

/// The mutants of one kernel's PTX: `(operator, PTX)`, one per operator that has a site (the
/// first site in the text; every `bar.sync` for the dropped barrier). Arithmetic sites are
/// taken only where the result can reach a store ([`ptx_store_slice`]), only non-commutative
/// operands are swapped, and a store's width always changes, so that no mutant is equivalent
/// by construction.
fn ptx_mutants(ptx: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = ptx.lines().collect();
    let slice = ptx_store_slice(&lines);
    let with = |i: usize, line: String| -> String {
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        out[i] = line;
        out.join("\n") + "\n"
    };
    let first = |pred: &dyn Fn(&str) -> bool, live_only: bool| {
        lines.iter().position(|l| {
            ptx_inst(l).is_some_and(|(op, dest, _)| {
                pred(&op) && (!live_only || dest.is_some_and(|d| slice.contains(&d)))
            })
        })
    };
    let mut out = Vec::new();
    // An off-by-one bound: the first `>=` compare (the grid guard) becomes `>`.
    if let Some(i) = first(&|o| o.starts_with("setp.ge."), false) {
        out.push((
            "bound >= to >".into(),
            with(i, lines[i].replacen("setp.ge.", "setp.gt.", 1)),
        ));
    }
    // add -> sub on the first live float add, else the first live integer add.
    if let Some(i) = first(&|o| o.starts_with("add.rn.f"), true)
        .or_else(|| first(&|o| o.starts_with("add.s") || o.starts_with("add.u"), true))
    {
        out.push((
            "add to sub".into(),
            with(i, lines[i].replacen("add.", "sub.", 1)),
        ));
    }
    // Swapped operands of the first live subtraction or division.
    if let Some(i) = first(&|o| o.starts_with("sub.") || o.starts_with("div."), true) {
        let l = lines[i];
        let (head, rest) = l.trim().split_once(char::is_whitespace).unwrap_or((l, ""));
        let ops: Vec<&str> = rest.trim().trim_end_matches(';').split(", ").collect();
        if let [d, a, b] = ops.as_slice()
            && a != b
        {
            out.push((
                "swapped operands".into(),
                with(i, format!("\t{head} \t{d}, {b}, {a};")),
            ));
        }
    }
    // Another rounding mode on the first live float operation.
    if let Some(i) = first(&|o| o.contains(".rn.f") && !o.starts_with("cvt"), true) {
        out.push((
            "rounding .rn to .rz".into(),
            with(i, lines[i].replacen(".rn.", ".rz.", 1)),
        ));
    }
    // A wrong store width: the first global store writes one byte (two, if it wrote one).
    if let Some(i) = first(&|o| o.starts_with("st.global."), false)
        && let Some((op, _, _)) = ptx_inst(lines[i])
    {
        let to = if op == "st.global.u8" {
            "st.global.u16"
        } else {
            "st.global.u8"
        };
        out.push(("store width".into(), with(i, lines[i].replacen(&op, to, 1))));
    }
    // Each barrier dropped.
    for (n, i) in lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim().starts_with("bar.sync"))
        .map(|(i, _)| i)
        .enumerate()
    {
        let mut kept = lines.clone();
        kept.remove(i);
        out.push((format!("barrier {n} dropped"), kept.join("\n") + "\n"));
    }
    out
}

/// The mutation score of the build's oracle over the bare samples' kernels (the generic and
/// the tiled blueprints): every mutant of [`ptx_mutants`], and each kernel's first live-out
/// off by one in the kernel table, must be caught within the build's 1000 cases. The `[5, -1]`
/// lane next to a NaN-looking neighbour is
/// `the_oracle_compares_integer_lanes_exactly_beside_a_nan_pattern`. docs/ORACLE.md records
/// the score.
#[test]
fn mutation_score_of_the_build_oracle() {
    let mut total = 0;
    let mut survivors = Vec::new();
    let mut by_operator: std::collections::BTreeMap<String, (u32, u32)> = Default::default();
    for case in cases() {
        let wasm = bare(&format!("bare/{}.wasm", case.name));
        let planned = plan_module(&wasm, Default::default()).expect("plan");
        for (k, kern) in planned.kernels.iter().enumerate() {
            type Mutation = Box<dyn Fn(&mut OffloadKernel)>;
            let mut mutants: Vec<(String, Mutation)> = Vec::new();
            for (name, ptx) in ptx_mutants(&kern.ptx) {
                mutants.push((
                    name,
                    Box::new(move |m: &mut OffloadKernel| m.ptx = ptx.clone()),
                ));
            }
            if !kern.live_outs.is_empty() {
                mutants.push((
                    "live-out off by one".into(),
                    Box::new(|m: &mut OffloadKernel| {
                        m.live_outs[0].value.terms.push((1, vec![]));
                    }),
                ));
            }
            for (name, apply) in mutants {
                let name_k = kern.name.clone();
                let reports = oracle(&wasm, &|m| {
                    if m.name == name_k {
                        apply(m);
                    }
                });
                total += 1;
                let entry = by_operator.entry(name.clone()).or_default();
                entry.0 += 1;
                if reports[k].failure.is_some() {
                    entry.1 += 1;
                } else {
                    survivors.push(format!(
                        "{} {}: {name}: {}",
                        case.name,
                        kern.name,
                        reports[k].summary()
                    ));
                }
            }
        }
    }
    for (op, (n, caught)) in &by_operator {
        eprintln!("{op}: {caught} of {n} caught");
    }
    eprintln!("mutation score: {} of {total}", total - survivors.len());
    assert!(total >= 60, "{total} mutants");
    assert!(
        survivors.is_empty(),
        "surviving mutants:\n{}",
        survivors.join("\n")
    );
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

// ---- wasi:cuda: a guest's own kernels, and the host's checks of every pointer it passes ----

/// Re-exports every `wasi:cuda` import, so a test can call them one by one on one instance
/// (device state lives as long as the instance).
const WASI_CUDA_WAT: &str = r#"(module
  (import "wasi:cuda" "device_count" (func $count (result i32)))
  (import "wasi:cuda" "module_load" (func $load (param i32 i32) (result i32)))
  (import "wasi:cuda" "mem_alloc" (func $alloc (param i32) (result i32)))
  (import "wasi:cuda" "mem_free" (func $free (param i32) (result i32)))
  (import "wasi:cuda" "memcpy_htod" (func $htod (param i32 i32 i32 i32) (result i32)))
  (import "wasi:cuda" "memcpy_dtoh" (func $dtoh (param i32 i32 i32 i32) (result i32)))
  (import "wasi:cuda" "launch" (func $launch (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi:cuda" "synchronize" (func $sync (result i32)))
  (import "wasi:cuda" "last_error" (func $err (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "count") (result i32) call $count)
  (func (export "load") (param i32 i32) (result i32) local.get 0 local.get 1 call $load)
  (func (export "alloc") (param i32) (result i32) local.get 0 call $alloc)
  (func (export "free") (param i32) (result i32) local.get 0 call $free)
  (func (export "htod") (param i32 i32 i32 i32) (result i32)
    local.get 0 local.get 1 local.get 2 local.get 3 call $htod)
  (func (export "dtoh") (param i32 i32 i32 i32) (result i32)
    local.get 0 local.get 1 local.get 2 local.get 3 call $dtoh)
  (func (export "launch") (param i32 i32 i32 i32 i32 i32) (result i32)
    local.get 0 local.get 1 local.get 2 local.get 3 local.get 4 local.get 5 call $launch)
  (func (export "sync") (result i32) call $sync)
  (func (export "err") (param i32 i32) (result i32) local.get 0 local.get 1 call $err))"#;

const SAXPY_PTX: &str = "\
.version 8.0
.target sm_75
.address_size 64
.visible .entry saxpy(.param .u64 px, .param .u64 py, .param .f32 pa, .param .u32 pn)
{
  .reg .pred %p<1>;
  .reg .b32 %r<5>;
  .reg .b64 %rd<5>;
  .reg .f32 %f<5>;
  ld.param.u64 %rd0, [px];
  ld.param.u64 %rd1, [py];
  ld.param.f32 %f0, [pa];
  ld.param.u32 %r0, [pn];
  mov.u32 %r1, %ctaid.x;
  mov.u32 %r2, %ntid.x;
  mov.u32 %r3, %tid.x;
  mad.lo.u32 %r4, %r1, %r2, %r3;
  setp.ge.u32 %p0, %r4, %r0;
  @%p0 bra DONE;
  mul.wide.u32 %rd2, %r4, 4;
  add.s64 %rd3, %rd0, %rd2;
  add.s64 %rd4, %rd1, %rd2;
  ld.global.f32 %f1, [%rd3];
  ld.global.f32 %f2, [%rd4];
  mul.rn.f32 %f3, %f0, %f1;
  add.rn.f32 %f4, %f3, %f2;
  st.global.f32 [%rd4], %f4;
DONE:
  ret;
}
";

/// One instance of [`WASI_CUDA_WAT`] on a backend.
struct Guest {
    store: Store<State>,
    instance: wasmtime::Instance,
    memory: wasmtime::Memory,
}

impl Guest {
    fn new(engine: &Engine, backend: BackendKind) -> Guest {
        let wasm = wat::parse_str(WASI_CUDA_WAT).expect("wat");
        let module = Module::new(engine, wasm).expect("module compiles");
        let mut linker: Linker<State> = Linker::new(engine);
        tensorwasmd::wasi_cuda::define(
            &mut linker,
            Arc::new(Host::new(backend, None).expect("host")),
        )
        .expect("wasi:cuda defined");
        let mut store = Store::new(
            engine,
            State {
                off: OffloadState::default(),
            },
        );
        let instance = linker.instantiate(&mut store, &module).expect("instance");
        let memory = instance.get_memory(&mut store, "memory").expect("memory");
        Guest {
            store,
            instance,
            memory,
        }
    }

    /// Calls export `name` with i32 arguments (given as u32, so that pointers past 2^31 read
    /// naturally) and returns its i32 result.
    fn call(&mut self, name: &str, args: &[u32]) -> i32 {
        let f = self.instance.get_func(&mut self.store, name).expect(name);
        let args: Vec<Val> = args.iter().map(|&a| Val::I32(a as i32)).collect();
        let mut out = [Val::I32(0)];
        f.call(&mut self.store, &args, &mut out).expect("no trap");
        out[0].unwrap_i32()
    }

    fn mem(&mut self) -> &mut [u8] {
        self.memory.data_mut(&mut self.store)
    }

    fn put(&mut self, at: usize, bytes: &[u8]) {
        self.mem()[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// The message `last_error` gives.
    fn last_error(&mut self) -> String {
        let n = self.call("err", &[60_000, 4096]);
        assert!(n >= 0, "last_error failed: {n}");
        String::from_utf8(self.mem()[60_000..60_000 + n as usize].to_vec()).expect("utf-8")
    }
}

use tensorwasmd::wasi_cuda::code;

const PAGE: u32 = 65536;

#[test]
fn wasi_cuda_checks_every_guest_pointer_before_device_work() {
    let engine = Engine::default();
    let mut g = Guest::new(&engine, BackendKind::Emulated);
    assert_eq!(g.call("count", &[]), 1);
    let b = g.call("alloc", &[64]);
    assert!(b >= 0, "alloc: {b}");
    let b = b as u32;
    // Copies in: a pointer at 0, ending exactly at the end of memory, and empty at the end.
    assert_eq!(g.call("htod", &[b, 0, 0, 16]), 0);
    assert_eq!(g.call("htod", &[b, 0, PAGE - 16, 16]), 0);
    assert_eq!(g.call("htod", &[b, 0, PAGE, 0]), 0);
    // One byte past the end, a pointer past it, and lengths whose sum wraps past 2^32.
    for (src, len) in [
        (PAGE, 1),
        (PAGE - 15, 16),
        (PAGE + 1, 0),
        (u32::MAX - 15, 32),
        (16, u32::MAX),
        (u32::MAX, u32::MAX),
    ] {
        assert_eq!(
            g.call("htod", &[b, 0, src, len]),
            code::BAD_POINTER,
            "htod from {src} len {len}"
        );
        let msg = g.last_error();
        assert!(msg.contains("leave linear memory"), "{msg}");
    }
    // Device ranges: past the buffer's 64 bytes, and an offset that wraps.
    assert_eq!(g.call("htod", &[b, 60, 0, 8]), code::BAD_POINTER);
    assert!(g.last_error().contains("leave the buffer of 64 bytes"));
    assert_eq!(g.call("htod", &[b, u32::MAX, 0, 2]), code::BAD_POINTER);
    assert_eq!(g.call("htod", &[b + 7, 0, 0, 4]), code::BAD_HANDLE);
    assert_eq!(g.call("htod", &[u32::MAX, 0, 0, 4]), code::BAD_HANDLE);

    // Copies out: a failing one writes nothing.
    let pattern: Vec<u8> = (0..64u8).collect();
    g.put(1000, &pattern);
    assert_eq!(g.call("htod", &[b, 0, 1000, 64]), 0);
    assert_eq!(g.call("dtoh", &[PAGE - 64, b, 0, 64]), 0);
    assert_eq!(&g.mem()[(PAGE - 64) as usize..], &pattern[..]);
    let before = g.mem().to_vec();
    for (dst, off, len) in [
        (PAGE - 8, 0, 16),
        (u32::MAX - 3, 0, 8),
        (0, 0, u32::MAX),
        (0, 32, 64),
    ] {
        assert_eq!(
            g.call("dtoh", &[dst, b, off, len]),
            code::BAD_POINTER,
            "dtoh to {dst} from {off} len {len}"
        );
    }
    assert!(g.mem() == &before[..], "a failing dtoh wrote to memory");

    // Modules: bad pointers, text that is not PTX, and the quota on PTX size.
    assert_eq!(g.call("load", &[PAGE, 1]), code::BAD_POINTER);
    assert_eq!(g.call("load", &[u32::MAX, 2]), code::BAD_POINTER);
    g.put(2000, b"this is not ptx");
    assert_eq!(g.call("load", &[2000, 15]), code::MALFORMED_PTX);
    assert!(g.last_error().contains("PTX does not parse"));
    g.put(2000, &[0xff, 0xfe]);
    assert_eq!(g.call("load", &[2000, 2]), code::MALFORMED_PTX);

    // Quotas and handles.
    assert_eq!(g.call("alloc", &[0x7fff_ffff]), code::QUOTA);
    assert!(g.last_error().contains("over the limit"));
    assert_eq!(g.call("free", &[b]), 0);
    assert_eq!(g.call("free", &[b]), code::BAD_HANDLE);
    assert_eq!(g.call("htod", &[b, 0, 0, 4]), code::BAD_HANDLE);

    // last_error itself: a short buffer gets a prefix and the full length; a bad pointer fails.
    let full = g.last_error();
    let n = g.call("err", &[50_000, 5]);
    assert_eq!(n as usize, full.len());
    assert_eq!(&g.mem()[50_000..50_005], &full.as_bytes()[..5]);
    assert_eq!(g.call("err", &[PAGE - 2, 5]), code::BAD_POINTER);
    assert_eq!(g.call("sync", &[]), 0);

    // Count quotas: 16 modules, 1024 buffers (freed ones included).
    g.put(10_000, SAXPY_PTX.as_bytes());
    let len = SAXPY_PTX.len() as u32;
    for m in 0..16 {
        assert_eq!(g.call("load", &[10_000, len]), m, "{}", g.last_error());
    }
    assert_eq!(g.call("load", &[10_000, len]), code::QUOTA);
    assert!(g.last_error().contains("more than 16 modules"));
    for _ in 1..1024 {
        assert!(g.call("alloc", &[0]) >= 0, "{}", g.last_error());
    }
    assert_eq!(g.call("alloc", &[0]), code::QUOTA);
    assert!(g.last_error().contains("more than 1024 buffers"));
}

#[test]
fn wasi_cuda_refuses_ptx_over_4_mib_before_reading_it() {
    let engine = Engine::default();
    let mut g = Guest::new(&engine, BackendKind::Emulated);
    let limit = tensorwasmd::wasi_cuda::limits::MAX_PTX_BYTES as u32;
    let pages = u64::from(limit / PAGE + 2);
    g.memory.grow(&mut g.store, pages).expect("memory grows");
    // One byte over the limit, inside memory: the quota, whatever the bytes are.
    assert_eq!(g.call("load", &[0, limit + 1]), code::QUOTA);
    let msg = g.last_error();
    assert!(msg.contains("exceeds the limit of 4194304 bytes"), "{msg}");
    // Exactly the limit passes the size check; the bytes (zeros) are not PTX.
    assert_eq!(g.call("load", &[0, limit]), code::MALFORMED_PTX);
    // Over the limit and past the end of memory: the pointer check comes first.
    assert_eq!(g.call("load", &[PAGE, u32::MAX - PAGE]), code::BAD_POINTER);
}

/// Writes `dims` and `args` for a saxpy launch at 3000 and 3100 and returns (dims, args).
fn saxpy_launch(g: &mut Guest, records: &[(u32, u32, u64)]) -> (u32, u32) {
    let dims: Vec<u8> = [4u32, 1, 1, 64, 1, 1]
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect();
    g.put(3000, &dims);
    let args: Vec<u8> = records
        .iter()
        .flat_map(|&(kind, reserved, value)| {
            let mut r = kind.to_le_bytes().to_vec();
            r.extend(reserved.to_le_bytes());
            r.extend(value.to_le_bytes());
            r
        })
        .collect();
    g.put(3100, &args);
    (3000, 3100)
}

/// Loads [`SAXPY_PTX`] as module 0, runs it on 250 floats (4 blocks of 64 threads: the last
/// block has threads past the end), and checks the result against the CPU's bit for bit.
/// Returns the guest and the launch's argument records.
fn guest_saxpy_matches_the_cpu(
    engine: &Engine,
    backend: BackendKind,
) -> (Guest, [(u32, u32, u64); 4]) {
    use tensorwasmd::wasi_cuda::arg_kind;
    let mut g = Guest::new(engine, backend);
    g.put(10_000, SAXPY_PTX.as_bytes());
    let m = g.call("load", &[10_000, SAXPY_PTX.len() as u32]);
    assert_eq!(m, 0, "load: {}", g.last_error());
    let n = 250u32; // 4 blocks of 64 threads: the last block has threads past n
    let x: Vec<f32> = (0..n).map(|i| i as f32 * 0.37 - 11.0).collect();
    let y: Vec<f32> = (0..n).map(|i| 3.0 - i as f32 * 0.125).collect();
    let a = 1.75f32;
    let bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|f| f.to_le_bytes()).collect() };
    g.put(20_000, &bytes(&x));
    g.put(30_000, &bytes(&y));
    let dx = g.call("alloc", &[n * 4]) as u32;
    let dy = g.call("alloc", &[n * 4]) as u32;
    assert_eq!(g.call("htod", &[dx, 0, 20_000, n * 4]), 0);
    assert_eq!(g.call("htod", &[dy, 0, 30_000, n * 4]), 0);
    g.put(12_000, b"saxpy");
    let good = [
        (arg_kind::BUFFER, 0, u64::from(dx)),
        (arg_kind::BUFFER, 0, u64::from(dy)),
        (arg_kind::F32, 0, u64::from(a.to_bits())),
        (arg_kind::U32, 0, u64::from(n)),
    ];
    let (dims, args) = saxpy_launch(&mut g, &good);
    assert_eq!(
        g.call("launch", &[m as u32, 12_000, 5, dims, args, 4]),
        0,
        "launch: {}",
        g.last_error()
    );
    assert_eq!(g.call("dtoh", &[40_000, dy, 0, n * 4]), 0);
    let got: Vec<u8> = g.mem()[40_000..40_000 + (n * 4) as usize].to_vec();
    let want: Vec<f32> = x.iter().zip(&y).map(|(x, y)| a * x + y).collect();
    assert_eq!(got, bytes(&want), "device result differs from the CPU's");
    let stats = g.store.data().off.guest_stats().to_vec();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].kernel, "wasi:cuda/saxpy");
    assert_eq!(stats[0].dispatched, 1);
    (g, good)
}

/// The GPU suite's wasi:cuda part: a guest's own kernel on the `cuda` backend.
#[test]
fn wasi_cuda_runs_a_guest_kernel_on_cuda() {
    if cuda_or_skip("wasi_cuda_runs_a_guest_kernel_on_cuda") {
        guest_saxpy_matches_the_cpu(&Engine::default(), BackendKind::Cuda);
    }
}

#[test]
fn wasi_cuda_runs_a_guest_kernel_like_the_cpu_and_refuses_bad_launches() {
    use tensorwasmd::wasi_cuda::arg_kind;
    let engine = Engine::default();
    let (mut g, good) = guest_saxpy_matches_the_cpu(&engine, BackendKind::Emulated);
    let n = good[3].2;
    let (dims, args) = (3000, 3100);

    // Bad launches: each refused with its code, the daemon-side state intact.
    let mut bad = |records: &[(u32, u32, u64)], nargs: u32, name_len: u32, module: u32| {
        let (dims, args) = saxpy_launch(&mut g, records);
        let rc = g.call("launch", &[module, 12_000, name_len, dims, args, nargs]);
        (rc, g.last_error())
    };
    let (rc, msg) = bad(&good, 4, 5, 9);
    assert_eq!(rc, code::BAD_HANDLE, "{msg}");
    let (rc, msg) = bad(&good, 4, 4, 0); // entry `saxp`
    assert_eq!(rc, code::LAUNCH_FAILED, "{msg}");
    assert!(msg.contains("no entry `saxp`"), "{msg}");
    let (rc, msg) = bad(&good, 4, 257, 0);
    assert_eq!(rc, code::BAD_ARGUMENT, "{msg}");
    let (rc, msg) = bad(&good[..3], 3, 5, 0);
    assert_eq!(rc, code::LAUNCH_FAILED, "{msg}");
    assert!(msg.contains("parameters"), "{msg}");
    let mut wrong = good;
    wrong[3] = (arg_kind::F64, 0, 0);
    let (rc, msg) = bad(&wrong, 4, 5, 0);
    assert_eq!(rc, code::LAUNCH_FAILED, "{msg}");
    wrong[3] = (9, 0, 0);
    let (rc, msg) = bad(&wrong, 4, 5, 0);
    assert_eq!(rc, code::BAD_ARGUMENT, "{msg}");
    wrong[3] = (arg_kind::U32, 1, n);
    let (rc, msg) = bad(&wrong, 4, 5, 0);
    assert_eq!(rc, code::BAD_ARGUMENT, "{msg}");
    wrong[3] = (arg_kind::U32, 0, 1 << 40);
    let (rc, msg) = bad(&wrong, 4, 5, 0);
    assert_eq!(rc, code::BAD_ARGUMENT, "{msg}");
    wrong[3] = (arg_kind::BUFFER, 0, 77);
    let (rc, msg) = bad(&wrong, 4, 5, 0);
    assert_eq!(rc, code::BAD_HANDLE, "{msg}");
    let (rc, msg) = bad(&good, 65, 5, 0);
    assert_eq!(rc, code::QUOTA, "{msg}");
    let (rc, _) = bad(&good, 0x1000_0000, 5, 0);
    assert_eq!(rc, code::QUOTA);
    // Dimensions at the end of memory, and zero or oversized blocks.
    assert_eq!(
        g.call("launch", &[0, 12_000, 5, PAGE - 20, args, 4]),
        code::BAD_POINTER
    );
    let zero: Vec<u8> = [4u32, 1, 1, 0, 1, 1]
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect();
    g.put(3200, &zero);
    assert_eq!(
        g.call("launch", &[0, 12_000, 5, 3200, args, 4]),
        code::LAUNCH_FAILED
    );
    let huge: Vec<u8> = [1u32 << 30, 1, 1, 1024, 1, 1]
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect();
    g.put(3200, &huge);
    assert_eq!(
        g.call("launch", &[0, 12_000, 5, 3200, args, 4]),
        code::QUOTA
    );
    // A kernel that runs out of its instruction budget fails instead of hanging the host.
    let spin = SAXPY_PTX.replace("DONE:\n  ret;", "DONE:\n  bra DONE;");
    g.put(14_000, spin.as_bytes());
    let s = g.call("load", &[14_000, spin.len() as u32]);
    assert_eq!(s, 1, "{}", g.last_error());
    assert_eq!(
        g.call("launch", &[1, 12_000, 5, dims, args, 4]),
        code::LAUNCH_FAILED
    );
    let stats = g.store.data().off.guest_stats().to_vec();
    // Launches that reached the backend and failed there: too few parameters, a mistyped one,
    // a zero block, the spin. (Records refused while decoding never reach the backend.)
    assert_eq!(stats[0].declined["launch-failed"], 4, "{stats:?}");
    assert_eq!(
        stats.len(),
        1,
        "no statistics for an entry the module lacks: {stats:?}"
    );
}

#[test]
fn wasi_cuda_without_a_device_answers_not_available() {
    let engine = Engine::default();
    let mut g = Guest::new(&engine, BackendKind::None);
    assert_eq!(g.call("count", &[]), 0);
    g.put(10_000, SAXPY_PTX.as_bytes());
    assert_eq!(
        g.call("load", &[10_000, SAXPY_PTX.len() as u32]),
        code::NOT_AVAILABLE
    );
    assert_eq!(g.call("alloc", &[16]), code::NOT_AVAILABLE);
    assert_eq!(g.call("sync", &[]), code::NOT_AVAILABLE);
    assert!(g.last_error().contains("backend none"));
}

/// A convolution written with top-tested loops (`br_if` out at the top of each loop, as a
/// compiler that does not rotate loops writes them): the lowering drops each loop's exit test
/// inside its counted iterations, so the filter loops are straight `for`s and the nest gets the
/// tiled-conv2d blueprint. On the interpreter it gives the CPU loop's memory, for a filter the
/// window holds and for one too large for it (the kernel's direct way).
#[test]
fn a_top_tested_conv2d_gets_the_tiled_conv2d_blueprint_and_matches_the_cpu() {
    let wat = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../samples/oracle/conv2d_tiled/conv2d_tiled.wat"),
    )
    .expect("read the conv2d reference");
    let original = wat::parse_str(&wat).expect("wat");
    let planned = plan_module(&original, Default::default()).expect("plan");
    let blueprints: Vec<_> = planned.reports.iter().map(|r| r.blueprint).collect();
    assert_eq!(blueprints, [Some("tiled-conv2d")]);
    assert_eq!(planned.kernels[0].block, [16, 16, 1]);
    let h = Pair::of(&wat);
    let i = Val::I32;
    // conv2d(in, k, out, oh, ow, kh, kw): in at 0, k at 32 KiB, out at 40 KiB.
    for (oh, ow, kh, kw) in [(37, 45, 3, 5), (20, 33, 19, 2), (70, 70, 1, 1)] {
        let (h_in, w_in) = (oh + kh - 1, ow + kw - 1);
        // Small integers as floats, so every product and sum shows.
        let floats = |m: &mut [u8], at: usize, n: usize| {
            for (k, dst) in m[at..at + 4 * n].chunks_exact_mut(4).enumerate() {
                dst.copy_from_slice(&(((7 * k + 1) % 13) as f32 - 6.0).to_le_bytes());
            }
        };
        let setup = move |m: &mut [u8]| {
            floats(m, 0, (h_in * w_in) as usize);
            floats(m, 32 << 10, (kh * kw) as usize);
        };
        let r = h.both(
            "conv2d",
            &[i(0), i(32 << 10), i(40 << 10), i(oh), i(ow), i(kh), i(kw)],
            &setup,
        );
        assert_eq!(
            dispatched(&r.stats),
            1,
            "{oh}x{ow} {kh}x{kw}: {:?}",
            r.stats
        );
    }
}

#[test]
fn a_declined_nest_runs_its_function_copy_which_traps_under_the_original_name() {
    // (The copy itself, operator for operator, is checked in offload/tests/rewrite.rs.)
    // The copy carries its function's name: a trap in the declined loop names the function as
    // the original module's trap does.
    let original = bare("bare/vadd.wasm");
    let (rewritten, table) = offloaded(&original);
    let engine = Engine::default();
    let past_end = [
        Val::I32(1 << 20),
        Val::I32(1 << 20),
        Val::I32(1 << 20),
        Val::I32(64),
    ];
    let a = run(
        &engine,
        &original,
        None,
        BackendKind::None,
        "vadd",
        &past_end,
        &|_| {},
    );
    let b = run(
        &engine,
        &rewritten,
        Some(&table),
        BackendKind::None,
        "vadd",
        &past_end,
        &|_| {},
    );
    let (a, b) = (a.result.unwrap_err(), b.result.unwrap_err());
    for trap in [&a, &b] {
        assert!(
            trap.contains("!vadd: memory fault at wasm address 0x100000"),
            "{trap}"
        );
    }
}

/// Nests with and without a copy of their function ([`Pair::both`] checks each export
/// against the original module).
const VERSIONS_WAT: &str = r#"
(module
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  ;; Pure code first, which overwrites a parameter: copied; the tail call passes the
  ;; parameter's value on entry.
  (func (export "first") (param $dst i32) (param $src i32) (param $n i32)
    (local $i i32) (local $m i32)
    (local.set $m (local.get $n))
    (local.set $n (i32.sub (i32.load (i32.const 0)) (i32.const 16)))
    (block
      (br_if 0 (i32.le_s (local.get $m) (i32.const 0)))
      (loop
        (i32.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
          (i32.add (local.get $n)
            (i32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))))
        (br_if 0 (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                         (local.get $m))))))
  ;; A store before the nest: guarded in place.
  (func (export "after_store") (param $dst i32) (param $src i32) (param $n i32)
    (local $i i32)
    (i32.store (i32.const 4) (i32.const 7))
    (block
      (br_if 0 (i32.le_s (local.get $n) (i32.const 0)))
      (loop
        (i32.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
          (i32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))
        (br_if 0 (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                         (local.get $n))))))
  ;; A global write before the nest: guarded in place.
  (func (export "after_global") (param $dst i32) (param $src i32) (param $n i32)
    (local $i i32)
    (global.set $g (i32.add (global.get $g) (i32.const 1)))
    (block
      (br_if 0 (i32.le_s (local.get $n) (i32.const 0)))
      (loop
        (i32.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
          (i32.add (global.get $g)
            (i32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))))
        (br_if 0 (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                         (local.get $n))))))
  ;; The nest inside a loop that writes a global after it: a second pass would re-run the
  ;; first pass's stores, so guarded in place.
  (func (export "inner") (param $dst i32) (param $src i32) (param $n i32) (param $reps i32)
    (local $i i32)
    (loop $rep
      (local.set $i (i32.const 0))
      (block
        (br_if 0 (i32.le_s (local.get $n) (i32.const 0)))
        (loop
          (i32.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
            (i32.add (i32.const 1)
              (i32.load (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2))))))
          (br_if 0 (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                           (local.get $n)))))
      (global.set $g (local.get $reps))
      (br_if $rep (local.tee $reps (i32.sub (local.get $reps) (i32.const 1))))))
  ;; Two nests: the first is copied; in the copy the second keeps its guard in place.
  (func (export "two") (param $a i32) (param $b i32) (param $c i32) (param $n i32)
    (local $i i32)
    (block
      (br_if 0 (i32.le_s (local.get $n) (i32.const 0)))
      (loop
        (i32.store (i32.add (local.get $b) (i32.shl (local.get $i) (i32.const 2)))
          (i32.add (i32.const 1)
            (i32.load (i32.add (local.get $a) (i32.shl (local.get $i) (i32.const 2))))))
        (br_if 0 (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                         (local.get $n)))))
    (local.set $i (i32.const 0))
    (block
      (br_if 0 (i32.le_s (local.get $n) (i32.const 0)))
      (loop
        (i32.store (i32.add (local.get $c) (i32.shl (local.get $i) (i32.const 2)))
          (i32.mul (i32.const 3)
            (i32.load (i32.add (local.get $b) (i32.shl (local.get $i) (i32.const 2))))))
        (br_if 0 (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                         (local.get $n)))))))
"#;

#[test]
fn only_nests_with_nothing_effectful_before_them_get_a_copy_and_all_match_the_original() {
    let pair = Pair::of(VERSIONS_WAT);
    // `inner`'s outer loop writes a global, so the detector rejects the whole nest and
    // offloads its inner loop on its own.
    assert_eq!(
        pair.table.kernels.len(),
        6,
        "first, after_store, after_global, inner's inner loop, and two in `two`"
    );
    let (before, after) = (bodies(&pair.original), bodies(&pair.rewritten));
    assert_eq!(
        after.len(),
        before.len() + 2,
        "only `first` and `two` are copied"
    );
    assert_eq!(after[5], before[0], "the copy is `first` as it was");
    let setup = |m: &mut [u8]| {
        m[0..4].copy_from_slice(&1000i32.to_le_bytes());
        fill_ramp(m, 1024, 64);
    };
    let args = |n: i32| [Val::I32(4096), Val::I32(1024), Val::I32(n)];
    // The rewritten module declining every nest (backend none), checked like `Pair::both`.
    let declining = |export: &str, args: &[Val]| {
        let host = Arc::new(Host::new(BackendKind::None, Some(1)).expect("host"));
        pair.both_on(host, export, args, &setup)
    };
    for n in [0, 1, 64] {
        for export in ["first", "after_store", "after_global"] {
            pair.both(export, &args(n), &setup);
            declining(export, &args(n));
        }
    }
    // On the interpreter the kernel runs, with the value the code before it computed.
    let r = pair.both("first", &args(64), &setup);
    assert_eq!(dispatched(&r.stats), 1, "{:?}", r.stats);
    // Declined, the copy runs the loop, and the kernel's decline is counted once.
    let r = declining("first", &args(64));
    assert_eq!(declined(&r.stats, "no-device"), 1, "{:?}", r.stats);

    // `two`'s first nest declines (its output overlaps its input one element on, `alias`):
    // the copy runs that loop, and its second nest, guarded in place, still dispatches.
    let two = [Val::I32(1024), Val::I32(1028), Val::I32(8192), Val::I32(64)];
    let r = pair.both("two", &two, &setup);
    assert_eq!(declined(&r.stats, "alias"), 1, "{:?}", r.stats);
    assert_eq!(dispatched(&r.stats), 1, "{:?}", r.stats);
    let r = declining("two", &two);
    assert_eq!(declined(&r.stats, "no-device"), 2, "{:?}", r.stats);
    let apart = [Val::I32(1024), Val::I32(4096), Val::I32(8192), Val::I32(64)];
    let r = pair.both("two", &apart, &setup);
    assert_eq!(dispatched(&r.stats), 2, "{:?}", r.stats);

    // A nest inside another loop is never copied (the count of copies above): a second pass
    // of the outer loop would run the copy after the first pass's stores. Guarded in place, it
    // dispatches on every pass of the outer loop, or declines on every pass to the loop.
    assert!(pair.table.kernels.iter().any(|k| k.function == 3));
    let passes = [Val::I32(1024), Val::I32(4096), Val::I32(64), Val::I32(3)];
    let r = pair.both("inner", &passes, &setup);
    assert_eq!(dispatched(&r.stats), 3, "{:?}", r.stats);
    let r = declining("inner", &passes);
    assert_eq!(declined(&r.stats, "no-device"), 3, "{:?}", r.stats);
}

// ---------------------------------------------------------------------------------------------
// `tensorwasm oracle BUNDLE` in-process: tensorwasm::oracle::bundle::check_bundle.

/// `samples/wasm/NAME.wasm` built (with offload when `offload`) into a bundle signed by `key`.
fn bundle_of(name: &str, key: &tensorwasm_bundle::SigningKey, offload: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_path = dir.path().join("build.key");
    std::fs::write(&key_path, key.to_file_text()).expect("key");
    let out = dir.path().join("out.twb");
    let opts = tensorwasm::pipeline::BuildOptions {
        input: Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../samples/wasm/{name}.wasm")),
        output: out.clone(),
        key: key_path,
        name: None,
        version: 1,
        expires: None,
        targets: vec![],
        offload,
        oracle_cases: 20,
        oracle_seed: Some(1),
        cubin_archs: vec![],
        emit_ptx: None,
    };
    tensorwasm::pipeline::build(&opts, &indicatif::ProgressBar::hidden()).expect("builds");
    std::fs::read(out).expect("bundle")
}

#[test]
fn check_bundle_rechecks_every_kernel_of_a_verified_bundle() {
    use tensorwasm::oracle::bundle::{BundleCheck, check_bundle};
    use tensorwasm_bundle::{SigningKey, TrustedKeys};
    let key = SigningKey::generate();
    let trusted = TrustedKeys::new(vec![key.public()]);
    let now = 1_800_000_000;
    let run = BundleCheck {
        cases: 30,
        seed: 7,
        backend: BackendKind::Emulated,
    };
    let bytes = bundle_of("bare/vadd", &key, true);
    let reports = check_bundle(&bytes, &trusted, now, &run)
        .expect("checks")
        .expect("has kernels");
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert!(r.failure.is_none(), "{}", r.summary());
    // 30 cases and up to 3 at launch size.
    assert!(
        (30..=33).contains(&r.cases) && r.seed == 7,
        "{}",
        r.summary()
    );
    assert!(r.dispatched > 0, "{}", r.summary());
    assert!(r.largest_grid >= 4096, "{}", r.summary());

    // The table carries what the check needs (the entry constants); a bundle made before it did
    // is analysed again for them, with the same verdict.
    let verified = tensorwasm_bundle::VerifiedBundle::open(&bytes, &trusted, now).expect("opens");
    let saw_constants = std::cell::Cell::new(false);
    let older = resign::with_table(&verified, &key, &|v| {
        for k in v["kernels"].as_array_mut().expect("kernels") {
            let removed = k
                .as_object_mut()
                .expect("kernel")
                .remove("entry_constants")
                .is_some();
            saw_constants.set(saw_constants.get() | removed);
        }
    });
    assert!(saw_constants.get(), "the table records entry constants");
    let again = check_bundle(&older, &trusted, now, &run)
        .expect("checks")
        .expect("has kernels");
    assert_eq!(again, reports, "the same cases and verdict either way");

    // A bundle without kernels has nothing to check.
    let plain = bundle_of("bare/vadd", &key, false);
    assert_eq!(check_bundle(&plain, &trusted, now, &run), Ok(None));

    // Another key, or one flipped byte, is refused before anything runs.
    let other = TrustedKeys::new(vec![SigningKey::generate().public()]);
    let err = check_bundle(&bytes, &other, now, &run).expect_err("untrusted");
    assert!(err.contains("trusted"), "{err}");
    // (A flip in a section it never reads, such as the native code, goes unseen: sections are
    // hash-checked when read. The signed part is always read.)
    let mut tampered = bytes.clone();
    tampered[40] ^= 1;
    assert!(check_bundle(&tampered, &trusted, now, &run).is_err());
}
