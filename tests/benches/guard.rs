//! Guard overhead on the CPU path: each bare C sample's export at a realistic size, in the
//! original module and in the rewritten one with every dispatch declined (backend `none`), on
//! the production engine configuration: medians of 21 calls each, interleaved, on warm
//! instances. Prints a Markdown table; the target is at most 2%.
//!
//! `cargo bench -p tensorwasm-tests --bench guard`

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tensorwasm_bundle::offload::OffloadTable;
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
    size: &'static str,
    args: Vec<Val>,
    /// Bytes of memory the call touches, from `HEAP`.
    bytes: u64,
}

fn cases() -> Vec<Case> {
    let i = Val::I32;
    let f = |v: f32| Val::F32(v.to_bits());
    let n: i32 = 1 << 22;
    let buf = |k: i32| HEAP + k * 4 * n;
    let m: i32 = 192;
    let mbuf = |k: i32| HEAP + k * 4 * m * m;
    vec![
        Case {
            name: "vadd",
            size: "n = 4M",
            args: vec![i(buf(0)), i(buf(1)), i(buf(2)), i(n)],
            bytes: 3 * 4 * n as u64,
        },
        Case {
            name: "saxpy",
            size: "n = 4M",
            args: vec![i(buf(0)), i(buf(1)), f(2.5), i(n)],
            bytes: 2 * 4 * n as u64,
        },
        Case {
            name: "relu_clamp",
            size: "n = 4M",
            args: vec![i(buf(0)), f(-0.25), f(0.5), i(n)],
            bytes: 4 * n as u64,
        },
        Case {
            name: "matmul",
            size: "192 x 192 x 192",
            args: vec![i(mbuf(0)), i(mbuf(1)), i(mbuf(2)), i(m), i(m), i(m)],
            bytes: 3 * 4 * (m * m) as u64,
        },
    ]
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

/// The fastest of `runs` calls of the original and the rewritten module, interleaved, each on
/// its own warm instance (memory already touched by a first call).
fn compare(
    engine: &Engine,
    original: &Module,
    guarded: &Module,
    table: &OffloadTable,
    case: &Case,
    runs: usize,
) -> Result<(f64, f64), String> {
    let (mut sa, fa) = instance(engine, original, None, case)?;
    let (mut sb, fb) = instance(engine, guarded, Some(table), case)?;
    call(&mut sa, &fa, case)?;
    call(&mut sb, &fb, case)?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(call(&mut sa, &fa, case)?);
        b.push(call(&mut sb, &fb, case)?);
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    Ok((a[0], b[0]))
}

fn main() {
    let engine = Engine::new(&tensorwasmd::engine::base_config()).expect("engine");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/wasm/bare");
    println!("| sample | size | original ms | rewritten, backend none ms | overhead |");
    println!("|---|---|---:|---:|---:|");
    for case in cases() {
        let wasm = std::fs::read(root.join(format!("{}.wasm", case.name))).expect("sample");
        let kernels = tensorwasm::offload::plan_module(&wasm, Default::default())
            .expect("plan")
            .kernels;
        let rewritten = tensorwasm::offload::rewrite(&wasm, &kernels).expect("rewrite");
        let table = OffloadTable { kernels };
        let original = Module::new(&engine, &wasm).expect("original compiles");
        let guarded = Module::new(&engine, &rewritten).expect("rewritten compiles");
        let (result, failed) = match compare(&engine, &original, &guarded, &table, &case, 41) {
            Ok(r) => (r, None),
            Err(e) => ((0.0, 0.0), Some(e)),
        };
        let (a, b) = result;
        match failed {
            Some(e) => println!("| {} | {} | - | - | failed: {e} |", case.name, case.size),
            None => println!(
                "| {} | {} | {:.2} | {:.2} | {:+.1}% |",
                case.name,
                case.size,
                a * 1e3,
                b * 1e3,
                (b / a - 1.0) * 100.0
            ),
        }
    }
}
