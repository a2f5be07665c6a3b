//! Fixed inputs for the bare C samples: each export's arguments and the buffers to fill.

#![allow(dead_code)]

use wasmtime::Val;

/// Where the samples' buffers start (above the stack and data of every bare sample).
pub const HEAP: u32 = 70_016;

pub fn fill(mem: &mut [u8], at: u32, n: u32, seed: u32) {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
    for i in 0..n {
        x = x.wrapping_mul(1664525).wrapping_add(1013904223);
        // Exact multiples of 2^-8 in [-4, 4): sums stay exact or round the same everywhere.
        let v = ((x >> 16) as i32 % 2048 - 1024) as f32 / 256.0;
        let p = (at + 4 * i) as usize;
        mem[p..p + 4].copy_from_slice(&v.to_le_bytes());
    }
}

pub struct Case {
    pub name: &'static str,
    pub args: Vec<Val>,
    /// (address, float count) of each input buffer to fill.
    pub inputs: Vec<(u32, u32)>,
    /// Kernels the sample's export holds.
    pub kernels: usize,
    /// How many times one call reaches a kernel's nest, all kernels together (one per kernel
    /// unless the nests sit inside a sequential loop).
    pub calls: u64,
}

impl Case {
    /// Fills each input buffer, the `k`th with seed `seed + k`.
    pub fn fill_inputs(&self, mem: &mut [u8], seed: u32) {
        for (k, &(at, n)) in self.inputs.iter().enumerate() {
            fill(mem, at, n, seed + k as u32);
        }
    }
}

/// The case of sample `name`.
pub fn case(name: &str) -> Case {
    cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case for sample {name}"))
}

pub fn cases() -> Vec<Case> {
    let i = Val::I32;
    let f = |v: f32| Val::F32(v.to_bits());
    let buf = |k: u32| HEAP + k * 8192;
    vec![
        Case {
            name: "vadd",
            args: vec![i(buf(0) as i32), i(buf(1) as i32), i(buf(2) as i32), i(37)],
            kernels: 1,
            calls: 1,
            inputs: vec![(buf(1), 37), (buf(2), 37)],
        },
        Case {
            name: "saxpy",
            args: vec![i(buf(0) as i32), i(buf(1) as i32), f(2.5), i(41)],
            kernels: 1,
            calls: 1,
            inputs: vec![(buf(0), 41), (buf(1), 41)],
        },
        Case {
            name: "relu_clamp",
            args: vec![i(buf(0) as i32), f(-0.25), f(0.5), i(33)],
            kernels: 1,
            calls: 1,
            inputs: vec![(buf(0), 33)],
        },
        Case {
            name: "matmul",
            args: vec![
                i(buf(0) as i32),
                i(buf(1) as i32),
                i(buf(2) as i32),
                i(5),
                i(6),
                i(7),
            ],
            kernels: 1,
            calls: 1,
            inputs: vec![(buf(1), 35), (buf(2), 42)],
        },
        Case {
            name: "conv2d",
            args: vec![
                i(buf(0) as i32),
                i(buf(1) as i32),
                i(buf(2) as i32),
                i(9),
                i(8),
                i(3),
                i(2),
            ],
            kernels: 1,
            calls: 1,
            inputs: vec![(buf(1), 72), (buf(2), 6)],
        },
        Case {
            name: "jacobi2d",
            args: vec![i(buf(0) as i32), i(buf(1) as i32), i(7), i(9)],
            kernels: 1,
            calls: 1,
            inputs: vec![(buf(1), 63)],
        },
        Case {
            name: "transpose",
            args: vec![i(buf(0) as i32), i(buf(1) as i32), i(5), i(7)],
            kernels: 1,
            calls: 1,
            inputs: vec![(buf(1), 35)],
        },
        Case {
            name: "batched_matmul",
            args: vec![
                i(buf(0) as i32),
                i(buf(1) as i32),
                i(buf(2) as i32),
                i(3),
                i(4),
                i(5),
                i(3),
            ],
            kernels: 1,
            calls: 1,
            inputs: vec![(buf(1), 36), (buf(2), 45)],
        },
        Case {
            // Bytes: a 13 x 11 image (odd width: the unrolled row's remainder runs), t = 100.
            name: "threshold",
            args: vec![i(buf(0) as i32), i(buf(1) as i32), i(13), i(11), i(100)],
            kernels: 1,
            calls: 1,
            inputs: vec![(buf(1), 36)],
        },
        Case {
            // 3 steps on a 7 x 9 grid: a time loop on the host around two offloaded sweeps.
            name: "diffuse_steps",
            args: vec![
                i(buf(0) as i32),
                i(buf(1) as i32),
                i(7),
                i(9),
                i(3),
                f(0.125),
            ],
            kernels: 2,
            calls: 6,
            inputs: vec![(buf(0), 63), (buf(1), 63)],
        },
        Case {
            // A 9 x 7 matrix: 7 columns, so 7 entries to the scaling nest and 6 to the update
            // nest (clang skips it when no column is right of k).
            name: "orthonormalize",
            args: vec![i(buf(0) as i32), i(buf(1) as i32), i(9), i(7)],
            kernels: 2,
            calls: 13,
            inputs: vec![(buf(0), 63), (buf(1), 49)],
        },
    ]
}
