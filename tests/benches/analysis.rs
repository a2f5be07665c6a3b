//! Front end + analysis against Cranelift on one large module.
//!
//! Times `tensorwasm_analysis::translate` (validation + BlockIR) and `tensorwasm_analysis::analyze`
//! (loop facts + detector) against `Engine::precompile_module` with the engine `tensorwasm build`
//! uses (`tensorwasm::aot::engine_for` on the host triple: `base_config` plus the target, parallel
//! compilation as the CLI has it), and also against the same configuration with one compilation
//! thread, the analysis being timed on all cores and on one thread too. Prints medians as a
//! Markdown table, then the coverage.
//!
//! Run: `cargo bench -p tensorwasm-tests --bench analysis [-- [--quick] [MODULE.wasm]]`.
//! The module is the argument, else `$TENSORWASM_BENCH_MODULE`, else `target/bench/large.wasm`
//! (SQLite, zstd, QuickJS, libwebp and other C libraries compiled with clang; build it with
//! `benches/large-module.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tensorwasm_analysis::Verdict;
use wasmtime::Engine;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Median of `rounds` timed calls; with `warm_up`, one untimed call first.
fn time<T>(rounds: usize, warm_up: bool, mut f: impl FnMut() -> T) -> Duration {
    if warm_up {
        std::hint::black_box(f());
    }
    median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn pct(a: Duration, b: Duration) -> String {
    format!("{:.1}%", 100.0 * a.as_secs_f64() / b.as_secs_f64())
}

/// Size of the code section, in bytes.
fn code_section_size(wasm: &[u8]) -> usize {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let Ok(wasmparser::Payload::CodeSectionStart { size, .. }) = payload {
            return size as usize;
        }
    }
    0
}

fn main() {
    let mut quick = false;
    let mut path = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            "--bench" => {} // added by `cargo bench`
            a if a.starts_with("--") => {}
            a => path = Some(PathBuf::from(a)),
        }
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = path
        .or_else(|| std::env::var_os("TENSORWASM_BENCH_MODULE").map(PathBuf::from))
        .unwrap_or_else(|| workspace.join("target/bench/large.wasm"));
    let Ok(wasm) = std::fs::read(&path) else {
        println!(
            "analysis bench: no module at {}; skipped.\n\
             Build one with `benches/large-module.sh` (C libraries with clang, into \
             target/bench/large.wasm), or pass a module: \
             `cargo bench -p tensorwasm-tests --bench analysis -- PATH.wasm` \
             (or set TENSORWASM_BENCH_MODULE).",
            path.display()
        );
        return;
    };
    let (rounds_analysis, rounds_cranelift) = if quick { (3, 1) } else { (5, 3) };

    let ir = tensorwasm_analysis::translate(&wasm).expect("module translates");
    let functions = ir.functions.len();
    let loops: usize = ir.functions.iter().map(|f| f.loops.len()).sum();

    let translate = time(rounds_analysis, true, || {
        tensorwasm_analysis::translate(&wasm).expect("translate")
    });
    let analyze = time(rounds_analysis, true, || tensorwasm_analysis::analyze(&ir));
    let analyze_serial = time(rounds_analysis, true, || {
        tensorwasm_analysis::analyze_with_threads(&ir, 1)
    });
    let translate_serial = time(rounds_analysis, true, || {
        tensorwasm_analysis::translate_with_threads(&wasm, 1).expect("translate")
    });
    let front_and_analysis = translate + analyze;
    let front_and_analysis_serial = translate_serial + analyze_serial;

    let triple = tensorwasmd::engine::host_triple();
    let engine = tensorwasm::aot::engine_for(&triple).expect("engine");
    let cranelift = time(rounds_cranelift, false, || {
        engine.precompile_module(&wasm).expect("precompile")
    });
    let mut serial_config = tensorwasmd::engine::base_config();
    serial_config.target(&triple).expect("target");
    serial_config.parallel_compilation(false);
    let serial_engine = Engine::new(&serial_config).expect("engine");
    let cranelift_serial = time(rounds_cranelift, false, || {
        serial_engine.precompile_module(&wasm).expect("precompile")
    });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    println!("module: {}", path.display());
    println!(
        "medians of {rounds_analysis} (front end, analysis; after a warm-up) and \
         {rounds_cranelift} (Cranelift) runs; {threads} hardware threads\n"
    );
    println!("| | |");
    println!("|:---|---:|");
    println!(
        "| module size | {} B ({:.2} MB) |",
        wasm.len(),
        wasm.len() as f64 / 1e6
    );
    let code = code_section_size(&wasm);
    println!("| code section | {code} B ({:.2} MB) |", code as f64 / 1e6);
    println!("| defined functions | {functions} |");
    println!("| loops | {loops} |");
    println!(
        "| front end (`translate`: validation + BlockIR, {threads} threads) | {} |",
        ms(translate)
    );
    println!("| front end, one thread | {} |", ms(translate_serial));
    println!(
        "| analysis + detector (`analyze`, {threads} threads) | {} |",
        ms(analyze)
    );
    println!(
        "| analysis + detector, one thread | {} |",
        ms(analyze_serial)
    );
    println!(
        "| **front end + analysis** | **{}** |",
        ms(front_and_analysis)
    );
    println!(
        "| front end + analysis, one thread | {} |",
        ms(front_and_analysis_serial)
    );
    println!(
        "| Cranelift, `precompile_module`, `tensorwasm build`'s engine (parallel) | {} |",
        ms(cranelift)
    );
    println!(
        "| Cranelift, same engine, one thread | {} |",
        ms(cranelift_serial)
    );
    println!(
        "| **(front end + analysis) / Cranelift (parallel)** | **{}** |",
        pct(front_and_analysis, cranelift)
    );
    println!(
        "| (front end + analysis, one thread) / Cranelift (one thread) | {} |",
        pct(front_and_analysis_serial, cranelift_serial)
    );

    let (plan, _diags) = tensorwasm_analysis::analyze(&ir);
    let mut candidates = 0;
    let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
    for nest in &plan.nests {
        match &nest.verdict {
            Verdict::Candidate(_) => candidates += 1,
            Verdict::Rejected { reasons: rs } => {
                let kinds: BTreeSet<&'static str> = rs.iter().map(|r| r.kind()).collect();
                for kind in kinds {
                    *reasons.entry(kind).or_insert(0) += 1;
                }
            }
        }
    }
    println!(
        "\ncoverage: {loops} loops in {} nests: {candidates} offloadable, {} rejected",
        plan.nests.len(),
        plan.nests.len() - candidates
    );
    println!("rejected nests by reason kind (a nest may have several):");
    let mut by_count: Vec<_> = reasons.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (kind, n) in by_count {
        println!("  {n:>6}  {kind}");
    }
}
