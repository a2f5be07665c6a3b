//! Guard overhead on the CPU path: each bare C sample with a kernel, its export at a larger
//! size (DRAM-bound where the sample streams) and a cache-resident one, in the original module
//! and in the rewritten one with every dispatch declined (backend `none`), on the production
//! engine configuration and on the same with epoch interruption off (which isolates the guard
//! from Wasmtime's epoch checks): medians over interleaved pairs of calls on warm instances,
//! and the median per-pair ratio. Prints a Markdown table; the target is at most 2%.
//!
//! `cargo bench -p tensorwasm-tests --bench guard`
//!
//! With `GUARD_DUMP=<dir>`, also writes each sample's original and rewritten module compiled
//! for both configurations (`<sample>.<original|rewritten>.<epochs|no-epochs>.cwasm`, ELF files
//! that `objdump -d` disassembles), to see where the loops' register allocation differs.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tensorwasm_guard::OffloadTable;
use tensorwasmd::offload::{HasOffload, Host, Kernels, OffloadState, define};
use wasmtime::{Engine, Linker, Module, Store, Val};

struct State(OffloadState);

impl HasOffload for State {
    fn offload(&mut self) -> &mut OffloadState {
        &mut self.0
    }
}

/// Buffers start here, 64 KiB apart from the samples' stack and data.
const HEAP: i32 = 1 << 20;

struct Case {
    name: &'static str,
    size: String,
    args: Vec<Val>,
    /// Bytes of memory the call touches, from `HEAP`.
    bytes: u64,
}

/// Each sample at a size that streams from DRAM and at one that stays in the caches, where the
/// loop's code, not memory bandwidth, sets the time.
fn cases() -> Vec<Case> {
    let i = Val::I32;
    let f = |v: f32| Val::F32(v.to_bits());
    let mut out = Vec::new();
    for (n, label) in [(1i32 << 22, "4M"), (1 << 14, "16K")] {
        let buf = |k: i32| HEAP + k * 4 * n;
        out.push(Case {
            name: "vadd",
            size: format!("n = {label}"),
            args: vec![i(buf(0)), i(buf(1)), i(buf(2)), i(n)],
            bytes: 3 * 4 * n as u64,
        });
        out.push(Case {
            name: "saxpy",
            size: format!("n = {label}"),
            args: vec![i(buf(0)), i(buf(1)), f(2.5), i(n)],
            bytes: 2 * 4 * n as u64,
        });
        out.push(Case {
            name: "relu_clamp",
            size: format!("n = {label}"),
            args: vec![i(buf(0)), f(-0.25), f(0.5), i(n)],
            bytes: 4 * n as u64,
        });
    }
    for m in [192i32, 64] {
        let mbuf = |k: i32| HEAP + k * 4 * m * m;
        out.push(Case {
            name: "matmul",
            size: format!("{m} x {m} x {m}"),
            args: vec![i(mbuf(0)), i(mbuf(1)), i(mbuf(2)), i(m), i(m), i(m)],
            bytes: 3 * 4 * (m * m) as u64,
        });
    }
    for n in [2048i32, 128] {
        let buf = |k: i32| HEAP + k * 4 * n * n;
        // Both take (out, in, rows, cols).
        for name in ["transpose", "jacobi2d"] {
            out.push(Case {
                name,
                size: format!("{n} x {n}"),
                args: vec![i(buf(0)), i(buf(1)), i(n), i(n)],
                bytes: 2 * 4 * (n * n) as u64,
            });
        }
    }
    for n in [1024i32, 128] {
        let buf = |k: i32| HEAP + k * 4 * n * n;
        out.push(Case {
            name: "conv2d",
            size: format!("{n} x {n}, 5 x 5 filter"),
            args: vec![i(buf(0)), i(buf(1)), i(buf(2)), i(n), i(n), i(5), i(5)],
            bytes: 3 * 4 * (n * n) as u64,
        });
    }
    for (b, m) in [(4i32, 128i32), (4, 32)] {
        let buf = |k: i32| HEAP + k * 4 * b * m * m;
        out.push(Case {
            name: "batched_matmul",
            size: format!("{b} x {m} x {m} x {m}"),
            args: vec![i(buf(0)), i(buf(1)), i(buf(2)), i(b), i(m), i(m), i(m)],
            bytes: 3 * 4 * (b * m * m) as u64,
        });
    }
    out
}

/// An instance of `module` with memory grown for `case`, ready to call.
fn instance(
    engine: &Engine,
    module: &Module,
    table: Option<&OffloadTable>,
    case: &Case,
) -> Result<(Store<State>, wasmtime::Func), String> {
    let mut linker: Linker<State> = Linker::new(engine);
    if let Some(t) = table {
        define(
            &mut linker,
            module,
            Arc::new(Kernels::new(t.clone())),
            Arc::new(Host::none()),
        )
        .map_err(|e| e.to_string())?;
    }
    let mut store = Store::new(engine, State(OffloadState::default()));
    store.set_epoch_deadline(u64::MAX);
    let inst = linker
        .instantiate(&mut store, module)
        .map_err(|e| format!("{e:#}"))?;
    let mem = inst
        .get_memory(&mut store, "memory")
        .ok_or("no memory export")?;
    let need = (HEAP as u64 + case.bytes).div_ceil(65536);
    let have = mem.size(&store);
    if need > have {
        mem.grow(&mut store, need - have)
            .map_err(|e| format!("cannot grow memory to {need} pages: {e:#}"))?;
    }
    let func = inst
        .get_func(&mut store, case.name)
        .ok_or("no such export")?;
    Ok((store, func))
}

/// Seconds of one call.
fn call(store: &mut Store<State>, func: &wasmtime::Func, case: &Case) -> Result<f64, String> {
    let t = Instant::now();
    func.call(&mut *store, &case.args, &mut [])
        .map_err(|e| format!("{e:#}"))?;
    Ok(t.elapsed().as_secs_f64())
}

/// Median times of the original and the rewritten module and the median of the per-pair
/// ratios, over interleaved pairs of calls, each module on its own warm instance (memory
/// already touched by a first call): at least 21 pairs, more until half a second has passed.
fn compare(
    engine: &Engine,
    original: &Module,
    guarded: &Module,
    table: &OffloadTable,
    case: &Case,
) -> Result<(f64, f64, f64), String> {
    let (mut sa, fa) = instance(engine, original, None, case)?;
    let (mut sb, fb) = instance(engine, guarded, Some(table), case)?;
    call(&mut sa, &fa, case)?;
    call(&mut sb, &fb, case)?;
    let (mut a, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    while a.len() < 21 || (start.elapsed().as_secs_f64() < 0.5 && a.len() < 100_000) {
        // Alternate which module goes first, so neither always runs on a cache the other
        // warmed.
        let (x, y) = if a.len() % 2 == 0 {
            let x = call(&mut sa, &fa, case)?;
            (x, call(&mut sb, &fb, case)?)
        } else {
            let y = call(&mut sb, &fb, case)?;
            (call(&mut sa, &fa, case)?, y)
        };
        a.push(x);
        b.push(y);
        r.push(y / x);
    }
    Ok((median(&mut a), median(&mut b), median(&mut r)))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let production = tensorwasmd::engine::base_config();
    let mut no_epoch = tensorwasmd::engine::base_config();
    no_epoch.epoch_interruption(false);
    let engines = [
        Engine::new(&production).expect("engine"),
        Engine::new(&no_epoch).expect("engine"),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/wasm/bare");
    println!(
        "| sample | size | original ms | rewritten, backend none ms | overhead | \
         original ms, no epochs | rewritten ms, no epochs | overhead, no epochs |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for case in cases() {
        let wasm = std::fs::read(root.join(format!("{}.wasm", case.name))).expect("sample");
        let kernels = tensorwasm_offload::plan_module(&wasm, Default::default())
            .expect("plan")
            .kernels;
        let rewritten = tensorwasm_offload::rewrite(&wasm, &kernels).expect("rewrite");
        let table = OffloadTable { kernels };
        let mut row = format!("| {} | {} |", case.name, case.size);
        if let Some(dir) = std::env::var_os("GUARD_DUMP") {
            for (engine, config) in engines.iter().zip(["epochs", "no-epochs"]) {
                for (module, label) in [(&wasm, "original"), (&rewritten, "rewritten")] {
                    let path =
                        Path::new(&dir).join(format!("{}.{label}.{config}.cwasm", case.name));
                    let code = engine.precompile_module(module).expect("compiles");
                    std::fs::write(&path, code).expect("writes the dump");
                }
            }
        }
        for engine in &engines {
            let original = Module::new(engine, &wasm).expect("original compiles");
            let guarded = Module::new(engine, &rewritten).expect("rewritten compiles");
            match compare(engine, &original, &guarded, &table, &case) {
                Ok((a, b, r)) => row.push_str(&format!(
                    " {:.3} | {:.3} | {:+.1}% |",
                    a * 1e3,
                    b * 1e3,
                    (r - 1.0) * 100.0
                )),
                Err(e) => row.push_str(&format!(" - | - | failed: {e} |")),
            }
        }
        println!("{row}");
    }
}
