//! The benchmark kernels shared by `throughput.rs` (interpreter) and `gpu_bench.rs` (GPU).
#![allow(dead_code)]

use tensorwasm_blueprints::{EmitOptions, samples};
use tensorwasm_oracle::{DeviceMemory, Launch, ParamValue};

/// A kernel parameter: a buffer by index, or a scalar.
#[derive(Clone, Copy)]
pub enum Param {
    Buf(usize),
    U32(u32),
    F32(f32),
}

/// The direct lowering (one output per thread, no blueprint).
pub const GENERIC: EmitOptions = EmitOptions {
    target: tensorwasm_blueprints::Target::SM_75,
    ptx_version: None,
    generic_only: true,
};

/// One reference kernel at one problem size.
pub struct Bench {
    pub name: &'static str,
    pub sizes: String,
    pub kernel: tensorwasm_blueprints::Kernel,
    /// Buffer lengths in 4-byte elements.
    pub buffers: Vec<usize>,
    pub params: Vec<Param>,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    /// How the kernel is emitted: the direct lowering, or the blueprint the emitter picks.
    pub opts: EmitOptions,
    /// Bytes the kernel must move at least, and floating-point operations it does.
    pub bytes: f64,
    pub flops: f64,
}

/// The blueprints' five reference kernels: vectors of `n`, `m`×`m` matrices, `w`×`w` grids.
pub fn benches(n: u32, m: u32, w: u32) -> Result<Vec<Bench>, Box<dyn std::error::Error>> {
    Ok(vec![
        Bench {
            name: "vadd",
            sizes: format!("n={n}"),
            kernel: samples::vadd()?,
            buffers: vec![n as usize; 3],
            params: vec![Param::Buf(0), Param::Buf(1), Param::Buf(2), Param::U32(n)],
            grid: [n.div_ceil(256), 1, 1],
            block: [256, 1, 1],
            opts: GENERIC,
            bytes: 12.0 * f64::from(n),
            flops: f64::from(n),
        },
        Bench {
            name: "saxpy",
            sizes: format!("n={n}"),
            kernel: samples::saxpy()?,
            buffers: vec![n as usize; 2],
            params: vec![Param::Buf(0), Param::Buf(1), Param::F32(1.5), Param::U32(n)],
            grid: [n.div_ceil(256), 1, 1],
            block: [256, 1, 1],
            opts: GENERIC,
            bytes: 12.0 * f64::from(n),
            flops: 2.0 * f64::from(n),
        },
        matmul(m, "matmul", 32, 8, GENERIC)?,
        matmul(m, "matmul-tiled", 16, 16, EmitOptions::default())?,
        stencil(w, "stencil2d", 32, 8, GENERIC)?,
        stencil(w, "stencil2d-tiled", 16, 16, EmitOptions::default())?,
        conv2d(w / 2, 5, "conv2d", 32, 8, GENERIC)?,
        conv2d(w / 2, 5, "conv2d-tiled", 16, 16, EmitOptions::default())?,
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
            grid: [n.div_ceil(256), 1, 1],
            block: [256, 1, 1],
            opts: GENERIC,
            bytes: 12.0 * f64::from(n),
            flops: 0.0,
        },
    ])
}

/// The 5-point stencil over a `w`×`w` grid with `bx`×`by` blocks (16×16 for the tiled-stencil
/// blueprint, which requires it).
fn stencil(
    w: u32,
    name: &'static str,
    bx: u32,
    by: u32,
    opts: EmitOptions,
) -> Result<Bench, Box<dyn std::error::Error>> {
    Ok(Bench {
        name,
        sizes: format!("{w}x{w}"),
        kernel: samples::stencil2d()?,
        buffers: vec![(w * w) as usize; 2],
        params: vec![
            Param::Buf(0),
            Param::Buf(1),
            Param::U32(w),
            Param::U32(w - 2),
            Param::U32(w - 2),
        ],
        grid: [(w - 2).div_ceil(bx), (w - 2).div_ceil(by), 1],
        block: [bx, by, 1],
        opts,
        bytes: 8.0 * f64::from(w) * f64::from(w),
        flops: 5.0 * f64::from(w) * f64::from(w),
    })
}

/// The convolution of a `(o + f − 1)`-square input with an `f`×`f` filter into an
/// `o`×`o` output, with `bx`×`by` blocks (16×16 for the tiled-conv2d blueprint, which requires
/// it).
fn conv2d(
    o: u32,
    f: u32,
    name: &'static str,
    bx: u32,
    by: u32,
    opts: EmitOptions,
) -> Result<Bench, Box<dyn std::error::Error>> {
    let w = o + f - 1;
    Ok(Bench {
        name,
        sizes: format!("{o}x{o} f{f}"),
        kernel: samples::conv2d()?,
        buffers: vec![(w * w) as usize, (f * f) as usize, (o * o) as usize],
        params: vec![
            Param::Buf(0),
            Param::Buf(1),
            Param::Buf(2),
            Param::U32(w),
            Param::U32(o),
            Param::U32(o),
            Param::U32(f),
            Param::U32(f),
        ],
        grid: [o.div_ceil(bx), o.div_ceil(by), 1],
        block: [bx, by, 1],
        opts,
        bytes: 4.0 * f64::from(w) * f64::from(w) + 4.0 * f64::from(o) * f64::from(o),
        flops: 2.0 * f64::from(o * o) * f64::from(f * f),
    })
}

/// Memory with small integers as inputs (no fault or NaN path is taken), and the launch.
pub fn setup(b: &Bench) -> (DeviceMemory, Launch) {
    let mut mem = DeviceMemory::new();
    let ids: Vec<_> = b
        .buffers
        .iter()
        .enumerate()
        .map(|(i, len)| {
            // Small integers as f32 (i32 for idiv: 1 + k % 7 never divides by zero).
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
    (mem, launch)
}

/// The matmul sample on `m`×`m` matrices in `bx`×`by` blocks, emitted with `opts`.
fn matmul(
    m: u32,
    name: &'static str,
    bx: u32,
    by: u32,
    opts: EmitOptions,
) -> Result<Bench, Box<dyn std::error::Error>> {
    Ok(Bench {
        name,
        sizes: format!("m=n=k={m}"),
        kernel: samples::matmul()?,
        buffers: vec![(m * m) as usize; 3],
        params: vec![
            Param::Buf(0),
            Param::Buf(1),
            Param::Buf(2),
            Param::U32(m),
            Param::U32(m),
            Param::U32(m),
        ],
        grid: [m.div_ceil(bx), m.div_ceil(by), 1],
        block: [bx, by, 1],
        opts,
        bytes: 12.0 * f64::from(m) * f64::from(m),
        flops: 2.0 * f64::from(m).powi(3),
    })
}
