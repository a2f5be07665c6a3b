//! GPU time of the blueprints' reference kernels at GPU-sized problems, through the CUDA runner.
//!
//! ```sh
//! cargo run -p tensorwasm-oracle --features cuda --example gpu_bench
//! ```
//!
//! Each kernel is emitted by `tensorwasm-blueprints` (sm_75 PTX, JIT-compiled by the driver),
//! launched once to warm up and then `RUNS` times; the table gives the median kernel time
//! (CUDA events around the launch alone, not the copies) and the bandwidth or arithmetic rate it
//! implies. The first launch's result is compared byte for byte with the interpreter on a small
//! problem of the same kernel before any timing, so a wrong kernel is never timed. These are the
//! untuned reference kernels: the numbers say how far they are from the hardware's limits.

mod common;

use common::{benches, setup};
use tensorwasm_blueprints::emit_ptx;
use tensorwasm_oracle::{Backend, CudaBackend, Interpreter};

const RUNS: usize = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut gpu = CudaBackend::new(0)?;
    let info = gpu.info()?;
    println!(
        "GPU: {} (sm_{}{}), {} SMs, driver CUDA {}.{}; median of {RUNS} launches\n",
        info.name,
        info.compute_capability.0,
        info.compute_capability.1,
        info.multiprocessors,
        info.driver_version / 1000,
        info.driver_version % 1000 / 10
    );
    // The same kernels on small problems: GPU and interpreter must agree before any timing.
    for b in benches(1 << 18, 32, 128)? {
        let ptx = emit_ptx(&b.kernel, &b.opts)?;
        let (mut m1, launch) = setup(&b);
        let mut m2 = m1.clone();
        gpu.launch(&ptx, b.kernel.name.as_str(), &launch, &mut m1)?;
        Interpreter::new().launch(&ptx, b.kernel.name.as_str(), &launch, &mut m2)?;
        for i in 0..m1.len() {
            let id = m1.id(i).expect("buffer");
            if m1.read(id)? != m2.read(id)? {
                return Err(format!("{}: GPU and interpreter differ in buffer {i}", b.name).into());
            }
        }
    }
    println!("| kernel | sizes | threads | GPU time | bandwidth | rate |");
    println!("|---|---|---:|---:|---:|---:|");
    for b in benches(1 << 26, 2048, 8192)? {
        let ptx = emit_ptx(&b.kernel, &b.opts)?;
        let (mut mem, launch) = setup(&b);
        let mut times = Vec::with_capacity(RUNS);
        let mut threads = 0;
        for run in 0..=RUNS {
            let stats = gpu.launch(&ptx, b.kernel.name.as_str(), &launch, &mut mem)?;
            threads = stats.threads;
            if run > 0 {
                times.push(stats.gpu_ns);
            }
        }
        times.sort_unstable();
        let ns = times[RUNS / 2] as f64;
        println!(
            "| {} | {} | {threads} | {:.3} ms | {:.0} GB/s | {:.1} GFLOP/s |",
            b.name,
            b.sizes,
            ns / 1e6,
            b.bytes / ns,
            b.flops / ns
        );
    }
    Ok(())
}
