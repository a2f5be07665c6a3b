//! Whole kernels run through the public `Backend` API and compared byte for byte with what the
//! CPU computes in the same order.

mod common;

use common::kernels::*;
use common::*;

#[test]
fn vector_add_two_blocks_with_bounds_check() {
    let n = 200usize;
    let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
    let b: Vec<f32> = (0..n).map(|i| 1.0 / (i as f32 + 1.0)).collect();
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    // out has 256 slots; the 56 threads past n must not write.
    let mut expect = want.clone();
    expect.resize(256, -1.0);
    check(
        VECADD,
        "vecadd",
        [2, 1, 1],
        [128, 1, 1],
        &[f32s(&a), f32s(&b), f32s(&vec![-1.0; 256])],
        &[Arg::Buf(0), Arg::Buf(1), Arg::Buf(2), Arg::U32(n as u32)],
        &[(2, f32s(&expect))],
    );
}

#[test]
fn saxpy_two_roundings_differs_from_fma() {
    // a*x = 1 + 2^-22 + 2^-46 exactly; rounded to f32 it is 1 + 2^-22, so adding
    // y = -(1 + 2^-22) gives 0 with two roundings and 2^-46 with one.
    let alpha = f32::from_bits(0x3f80_0001);
    let x = [f32::from_bits(0x3f80_0001), 2.0];
    let y = [-f32::from_bits(0x3f80_0002), 1.0];
    let two = [0.0f32, alpha * 2.0 + 1.0];
    let one = [2f32.powi(-46), alpha.mul_add(2.0, 1.0)];
    let args = [Arg::F32(alpha), Arg::Buf(0), Arg::Buf(1), Arg::Buf(2)];
    let inputs = [f32s(&x), f32s(&y), f32s(&[9.0, 9.0])];
    check(
        SAXPY,
        "saxpy_two_roundings",
        [1, 1, 1],
        [2, 1, 1],
        &inputs,
        &args,
        &[(2, f32s(&two))],
    );
    check(
        SAXPY,
        "saxpy_fma",
        [1, 1, 1],
        [2, 1, 1],
        &inputs,
        &args,
        &[(2, f32s(&one))],
    );
    assert_ne!(two[0].to_bits(), one[0].to_bits());
}

#[test]
fn relu_with_branch() {
    let x = [
        -2.0f32,
        -0.0,
        0.0,
        3.5,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-40,
    ];
    let want: Vec<f32> = x.iter().map(|&v| if v > 0.0 { v } else { 0.0 }).collect();
    check(
        RELU,
        "relu",
        [1, 1, 1],
        [8, 1, 1],
        &[f32s(&x), f32s(&[7.0; 8])],
        &[Arg::Buf(0), Arg::Buf(1)],
        &[(1, f32s(&want))],
    );
}

#[test]
fn matmul_sequential_inner_loop_is_bit_exact() {
    let n = 6usize;
    let a: Vec<f32> = (0..n * n)
        .map(|i| ((i * 7919) % 97) as f32 / 13.0 - 3.0)
        .collect();
    let b: Vec<f32> = (0..n * n)
        .map(|i| ((i * 104729) % 89) as f32 / 7.0 - 5.0)
        .collect();
    let mut c = vec![0f32; n * n];
    for row in 0..n {
        for col in 0..n {
            let mut acc = 0f32;
            for k in 0..n {
                acc += a[row * n + k] * b[k * n + col];
            }
            c[row * n + col] = acc;
        }
    }
    check(
        MATMUL,
        "matmul",
        [1, 1, 1],
        [n as u32, n as u32, 1],
        &[f32s(&a), f32s(&b), vec![0; n * n * 4]],
        &[Arg::Buf(0), Arg::Buf(1), Arg::Buf(2), Arg::U32(n as u32)],
        &[(2, f32s(&c))],
    );
}

#[test]
fn shared_memory_reverse_with_barrier() {
    let x: Vec<f32> = (0..128).map(|i| i as f32).collect();
    let mut want = Vec::new();
    for blk in 0..2 {
        for t in 0..64 {
            want.push(x[blk * 64 + 63 - t]);
        }
    }
    check(
        REVERSE_SHARED,
        "reverse",
        [2, 1, 1],
        [64, 1, 1],
        &[f32s(&x), vec![0; 512]],
        &[Arg::Buf(0), Arg::Buf(1)],
        &[(1, f32s(&want))],
    );
}

#[test]
fn shared_memory_tree_sum_with_barrier_per_level() {
    let x: Vec<f32> = (0..96).map(|i| 1.0 / (i as f32 + 3.0)).collect();
    let mut want = Vec::new();
    for blk in 0..3 {
        let mut buf: Vec<f32> = x[blk * 32..blk * 32 + 32].to_vec();
        let mut stride = 16;
        while stride > 0 {
            for t in 0..stride {
                buf[t] += buf[t + stride];
            }
            stride /= 2;
        }
        want.push(buf[0]);
    }
    check(
        TREE_SUM,
        "tree_sum",
        [3, 1, 1],
        [32, 1, 1],
        &[f32s(&x), vec![0; 12]],
        &[Arg::Buf(0), Arg::Buf(1)],
        &[(1, f32s(&want))],
    );
}

#[test]
fn two_dimensional_grid() {
    let (w, h) = (8u32, 6u32);
    let mut want = vec![0u32; (w * h) as usize];
    for y in 0..h {
        for x in 0..w {
            want[(y * w + x) as usize] = x * 1000 + y;
        }
    }
    check(
        GRID2D,
        "grid2d",
        [2, 3, 1],
        [4, 2, 1],
        &[vec![0; (w * h * 4) as usize]],
        &[Arg::Buf(0), Arg::U32(w)],
        &[(0, u32s(&want))],
    );
}

#[test]
fn trap_flag_with_atomics() {
    let x = [1u32, 2, (-5i32) as u32, 4];
    check(
        TRAP_FLAG,
        "trap_flag",
        [1, 1, 1],
        [4, 1, 1],
        &[u32s(&x), vec![0; 8]],
        &[Arg::Buf(0), Arg::Buf(1)],
        &[(1, u32s(&[1, 4]))],
    );
    check(
        TRAP_FLAG,
        "trap_flag",
        [1, 1, 1],
        [4, 1, 1],
        &[u32s(&[1, 2, 3, 4]), vec![0; 8]],
        &[Arg::Buf(0), Arg::Buf(1)],
        &[(1, u32s(&[0, 4]))],
    );
}

#[test]
fn stats_count_blocks_threads_and_barriers() {
    use tensorwasm_oracle::{Backend, DeviceMemory, Interpreter, Launch, ParamValue};
    let mut mem = DeviceMemory::new();
    let a = mem.alloc(f32s(&[1.0; 96]));
    let o = mem.alloc(vec![0; 12]);
    let launch = Launch {
        grid: [3, 1, 1],
        block: [32, 1, 1],
        params: vec![ParamValue::Ptr(a), ParamValue::Ptr(o)],
    };
    let stats = Interpreter::new()
        .launch(TREE_SUM, "tree_sum", &launch, &mut mem)
        .unwrap();
    assert_eq!((stats.blocks, stats.threads), (3, 96));
    assert_eq!(stats.barriers, 3 * 6);
    assert!(stats.instructions > 96 * 20);
    assert_eq!(to_f32s(mem.read(o).unwrap()), vec![32.0; 3]);
}

#[test]
fn parse_module_exposes_signature() {
    let m = tensorwasm_oracle::parse_module(VECADD).unwrap();
    assert_eq!(m.version.as_deref(), Some("8.0"));
    assert_eq!(m.target, vec!["sm_80".to_string()]);
    assert_eq!(m.address_size, Some(64));
    let e = m.entry("vecadd").unwrap();
    let sig: Vec<String> = e
        .params
        .iter()
        .map(|p| format!("{} {}", p.ty, p.name))
        .collect();
    assert_eq!(sig, [".u64 a", ".u64 b", ".u64 out", ".u32 n"]);
    assert!(e.visible);
}

#[test]
fn buffers_get_distinct_aligned_nonzero_addresses() {
    use tensorwasm_oracle::{ALIGNMENT, DeviceMemory};
    let mut mem = DeviceMemory::new();
    let ids: Vec<_> = [0usize, 1, 255, 256, 1000]
        .iter()
        .map(|&n| mem.alloc(vec![0; n]))
        .collect();
    let mut prev_end = 0u64;
    for (id, n) in ids.iter().zip([0u64, 1, 255, 256, 1000]) {
        let addr = mem.address(*id).unwrap();
        assert!(addr != 0 && addr.is_multiple_of(ALIGNMENT));
        assert!(
            addr > prev_end,
            "buffers must not touch: {addr:#x} <= {prev_end:#x}"
        );
        prev_end = addr + n;
    }
}
