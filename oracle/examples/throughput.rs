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

use tensorwasm_blueprints::{EmitOptions, emit_ptx, samples};
use tensorwasm_oracle::{DeviceMemory, Interpreter, Launch, ParamValue, parse_module};

struct Bench {
    name: &'static str,
    sizes: String,
    kernel: tensorwasm_blueprints::Kernel,
    /// Buffer lengths in 4-byte elements, in pointer-param order.
    buffers: Vec<usize>,
    /// Params, with `Ptr(i)` standing for buffer i.
    params: Vec<Param>,
    grid: [u32; 3],
    block: [u32; 3],
}

#[derive(Clone, Copy)]
enum Param {
    Buf(usize),
    U32(u32),
    F32(f32),
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = 1u32 << 16;
    let (m, mn, mk) = (64u32, 64u32, 64u32);
    let (w, h) = (256u32, 256u32);
    let benches = vec![
        Bench {
            name: "vadd",
            sizes: format!("n={n}"),
            kernel: samples::vadd()?,
            buffers: vec![n as usize; 3],
            params: vec![Param::Buf(0), Param::Buf(1), Param::Buf(2), Param::U32(n)],
            grid: [n / 256, 1, 1],
            block: [256, 1, 1],
        },
        Bench {
            name: "saxpy",
            sizes: format!("n={n}"),
            kernel: samples::saxpy()?,
            buffers: vec![n as usize; 2],
            params: vec![Param::Buf(0), Param::Buf(1), Param::F32(1.5), Param::U32(n)],
            grid: [n / 256, 1, 1],
            block: [256, 1, 1],
        },
        Bench {
            name: "matmul",
            sizes: format!("m=n=k={m}"),
            kernel: samples::matmul()?,
            buffers: vec![(m * mk) as usize, (mk * mn) as usize, (m * mn) as usize],
            params: vec![
                Param::Buf(0),
                Param::Buf(1),
                Param::Buf(2),
                Param::U32(m),
                Param::U32(mn),
                Param::U32(mk),
            ],
            grid: [mn / 32, m / 8, 1],
            block: [32, 8, 1],
        },
        Bench {
            name: "stencil2d",
            sizes: format!("{w}x{h}"),
            kernel: samples::stencil2d()?,
            buffers: vec![(w * h) as usize; 2],
            params: vec![
                Param::Buf(0),
                Param::Buf(1),
                Param::U32(w),
                Param::U32(w - 2),
                Param::U32(h - 2),
            ],
            grid: [(w - 2).div_ceil(32), (h - 2).div_ceil(8), 1],
            block: [32, 8, 1],
        },
        Bench {
            name: "idiv",
            sizes: format!("n={n}"),
            kernel: samples::idiv()?,
            buffers: vec![n as usize, n as usize, n as usize, 1],
            params: vec![
                Param::Buf(0),
                Param::Buf(1),
                Param::Buf(2),
                Param::U32(n),
                Param::Buf(3),
            ],
            grid: [n / 256, 1, 1],
            block: [256, 1, 1],
        },
    ];
    println!(
        "{:<10} {:<12} {:>9} {:>14} {:>9} {:>16} {:>9}",
        "kernel", "sizes", "threads", "instr/launch", "launches", "thread-instr/s", "ns/instr"
    );
    for b in &benches {
        let ptx = emit_ptx(&b.kernel, &EmitOptions::default())?;
        let module = parse_module(&ptx)?;
        let interp = Interpreter::new();
        let mut mem = DeviceMemory::new();
        let ids: Vec<_> = b
            .buffers
            .iter()
            .enumerate()
            .map(|(i, len)| {
                // Small integers as f32 (or i32 for idiv: 1 + i % 7 never divides by zero).
                let bytes = (0..*len)
                    .flat_map(|k| {
                        if b.name == "idiv" {
                            (1 + (k % 7) as i32).to_le_bytes()
                        } else {
                            (((k + i) % 13) as f32 - 6.0).to_le_bytes()
                        }
                    })
                    .collect();
                mem.alloc(bytes)
            })
            .collect();
        let params = b
            .params
            .iter()
            .map(|p| match *p {
                Param::Buf(i) => ParamValue::Ptr(ids[i]),
                Param::U32(v) => ParamValue::U32(v),
                Param::F32(v) => ParamValue::F32(v),
            })
            .collect();
        let launch = Launch {
            grid: b.grid,
            block: b.block,
            params,
        };
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
            "{:<10} {:<12} {:>9} {:>14} {:>9} {:>16.3e} {:>9.1}",
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
