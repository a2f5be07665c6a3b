//! Replays launch records (see `tensorwasm_oracle::record`) on the interpreter, the GPU, or both,
//! and prints one row per record. Exits 1 if any backend differs from a record's reference or
//! fails, 2 on bad usage.
//!
//! ```text
//! cargo run -p tensorwasm-oracle --features cuda --release --example replay -- \
//!     --backend both target/launch-records
//! ```
//!
//! The records come from `compiler/tests/differential.rs` run with
//! `TENSORWASM_RECORD_LAUNCHES=DIR`: each is a kernel lowered from a sample, its memory at the
//! loop nest's entry, and the memory Wasmtime left at the nest's exit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tensorwasm_oracle::record::LaunchRecord;
use tensorwasm_oracle::{Backend, Interpreter};

const USAGE: &str = "usage: replay [--backend interpreter|cuda|both] RECORD.json|DIR...";

fn main() -> ExitCode {
    let mut backend = "interpreter".to_string();
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--backend" => match args.next() {
                Some(b) if ["interpreter", "cuda", "both"].contains(&b.as_str()) => backend = b,
                other => {
                    eprintln!("--backend {other:?}: expected interpreter, cuda or both\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => paths.push(a.into()),
        }
    }
    let files = match collect(&paths) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("no records given\n{USAGE}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut backends: Vec<Box<dyn Backend>> = Vec::new();
    if backend != "cuda" {
        backends.push(Box::new(Interpreter::new()));
    }
    if backend != "interpreter" {
        match gpu() {
            Ok(b) => backends.push(b),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }

    let mut failed = 0;
    print!("| record | threads |");
    for b in &backends {
        print!(" {} |", b.name());
    }
    println!();
    println!("|---|---:|{}", "---|".repeat(backends.len()));
    for f in &files {
        let rec = match std::fs::read_to_string(f)
            .map_err(|e| e.to_string())
            .and_then(|t| LaunchRecord::from_json(&t).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => {
                println!("| {} | — | cannot read: {e} |", f.display());
                failed += 1;
                continue;
            }
        };
        let threads: u64 = rec
            .grid
            .iter()
            .chain(&rec.block)
            .map(|&d| u64::from(d))
            .product();
        print!("| {} | {threads} |", rec.name);
        for b in backends.iter_mut() {
            match rec.replay(b.as_mut()) {
                Ok(r) if r.mismatches.is_empty() => {
                    if r.stats.gpu_ns > 0 {
                        print!(
                            " = {} ({:.1} µs) |",
                            rec.reference,
                            r.stats.gpu_ns as f64 / 1e3
                        );
                    } else {
                        print!(" = {} |", rec.reference);
                    }
                }
                Ok(r) => {
                    failed += 1;
                    let m = &r.mismatches[0];
                    print!(
                        " DIFFERS: buffer {} byte {:#x}: {:02x?} vs {} {:02x?} |",
                        m.buffer, m.offset, m.got, rec.reference, m.want
                    );
                }
                Err(e) => {
                    failed += 1;
                    print!(" ERROR: {e} |");
                }
            }
        }
        println!();
    }
    println!(
        "\n{} records, {} backends, {failed} failures",
        files.len(),
        backends.len()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            v.sort();
            out.extend(v);
        } else if Path::new(p).exists() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    Ok(out)
}

#[cfg(feature = "cuda")]
fn gpu() -> Result<Box<dyn Backend>, String> {
    let b = tensorwasm_oracle::CudaBackend::new(0).map_err(|e| e.to_string())?;
    if let Ok(info) = b.info() {
        eprintln!(
            "GPU: {} (sm_{}{}), {} SMs, {:.0} GiB, driver CUDA {}.{}",
            info.name,
            info.compute_capability.0,
            info.compute_capability.1,
            info.multiprocessors,
            info.memory_bytes as f64 / (1u64 << 30) as f64,
            info.driver_version / 1000,
            info.driver_version % 1000 / 10
        );
    }
    Ok(Box::new(b))
}

#[cfg(not(feature = "cuda"))]
fn gpu() -> Result<Box<dyn Backend>, String> {
    Err("this build has no CUDA runner: rebuild with --features cuda".into())
}
