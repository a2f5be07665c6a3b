//! Interpreter throughput: thread-instructions per second on the blueprints' reference kernels.
//!
//! ```sh
//! cargo run --release -p tensorwasm-oracle --example throughput
//! ```
//!
//! Each kernel is emitted by `tensorwasm-blueprints` (sm_75), launched on the PTX interpreter
//! with the sizes in the table until at least half a second has passed, and reported as
//! thread-instructions per second (every instruction each thread executes, guarded-off ones
//! included, as `LaunchStats::instructions` counts them). Inputs are small integers as floats,
//! so no fault or NaN path is taken.

use std::time::{Duration, Instant};

mod common;

use common::{benches, setup};
use tensorwasm_blueprints::emit_ptx;
use tensorwasm_oracle::{Interpreter, parse_module};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let benches = benches(1 << 16, 64, 256)?;
    println!(
        "{:<16} {:<12} {:>9} {:>14} {:>9} {:>16} {:>9}",
        "kernel", "sizes", "threads", "instr/launch", "launches", "thread-instr/s", "ns/instr"
    );
    for b in &benches {
        let ptx = emit_ptx(&b.kernel, &b.opts)?;
        let module = parse_module(&ptx)?;
        let interp = Interpreter::new();
        let (mut mem, launch) = setup(b);
        let start = Instant::now();
        let (mut launches, mut instructions, mut threads) = (0u64, 0u64, 0u64);
        while launches == 0 || start.elapsed() < Duration::from_millis(500) {
            let stats = interp.launch_module(&module, b.kernel.name.as_str(), &launch, &mut mem)?;
            launches += 1;
            instructions += stats.instructions;
            threads = stats.threads;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:<16} {:<12} {:>9} {:>14} {:>9} {:>16.3e} {:>9.1}",
            b.name,
            b.sizes,
            threads,
            instructions / launches,
            launches,
            instructions as f64 / secs,
            secs * 1e9 / instructions as f64
        );
    }
    Ok(())
}
