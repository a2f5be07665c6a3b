//! The tiled blueprints against the direct lowering of the same kernel, both on the
//! interpreter: for random sizes (several blocks, several tiles, partial ones) and random float
//! bits (NaNs, infinities, subnormals), the output buffer must be byte-identical. Covers the
//! 2-D matmul sample, a 3-D batched form (z a batch, one value per block), and the 5-point
//! stencil sample (a tile with a one-element halo, partial blocks at the grid's edges).

use proptest::prelude::*;
use tensorwasm_blueprints::kernel_ir::{Kernel, ParamKind, ValType};
use tensorwasm_blueprints::{Blueprint, EmitOptions, LaunchPlan, choose, emit_ptx, samples};
use tensorwasm_oracle::{Backend, DeviceMemory, Interpreter, Launch, ParamValue};

/// Emits `kernel` as the direct lowering (`generic_only`) or with its blueprint and runs it on
/// the interpreter over `trips` (one per grid dimension) with `params`, in `mem`.
fn emit_and_launch(
    kernel: &Kernel,
    generic_only: bool,
    trips: &[u64],
    params: Vec<ParamValue>,
    mem: &mut DeviceMemory,
) {
    let opts = EmitOptions {
        generic_only,
        ..EmitOptions::default()
    };
    let ptx = emit_ptx(kernel, &opts).expect("emit");
    let block = generic_only.then(|| LaunchPlan::default_block(kernel.grid.len()));
    let plan = LaunchPlan::for_kernel(kernel, block).expect("plan");
    let launch = Launch {
        grid: plan.grid_dims(trips).expect("grid"),
        block: plan.block,
        params,
    };
    Interpreter::new()
        .launch(&ptx, &kernel.name, &launch, mem)
        .expect("launch");
}

/// Runs `kernel` as the direct lowering (`generic_only`) or with its blueprint; returns `c`.
fn run(
    kernel: &Kernel,
    generic_only: bool,
    sizes: (u32, u32, u32, u32),
    a: &[u8],
    b: &[u8],
) -> Vec<u8> {
    let (m, n, k, batch) = sizes;
    let trips: Vec<u64> = [n, m, batch][..kernel.grid.len()]
        .iter()
        .map(|&t| u64::from(t))
        .collect();
    let mut mem = DeviceMemory::new();
    let ids = [
        mem.alloc(a.to_vec()),
        mem.alloc(b.to_vec()),
        mem.alloc(vec![0xAB; (batch * m * n * 4).max(4) as usize]),
    ];
    let mut params = vec![
        ParamValue::Ptr(ids[0]),
        ParamValue::Ptr(ids[1]),
        ParamValue::Ptr(ids[2]),
        ParamValue::U32(m),
        ParamValue::U32(n),
        ParamValue::U32(k),
    ];
    if kernel.grid.len() == 3 {
        params.extend([batch, m * k, k * n, m * n].map(ParamValue::U32));
    }
    emit_and_launch(kernel, generic_only, &trips, params, &mut mem);
    mem.read(ids[2]).expect("c").to_vec()
}

/// Float bits biased to the values where rounding and NaN handling show.
fn float_bits() -> impl Strategy<Value = u32> {
    prop_oneof![
        // Full mantissas of similar magnitude (2^-7 to 2^8, either sign): sums of these round,
        // so a kernel that adds in another order than the CPU shows.
        12 => (any::<u32>(), 120u32..136).prop_map(|(bits, e)| (bits & 0x807f_ffff) | (e << 23)),
        1 => any::<u32>(),
        1 => prop::sample::select(vec![
            0x7fc0_0000, 0xffc0_0001, 0x7f80_0000, 0xff80_0000, 0x0000_0001, 0x8000_0000,
            0x7f7f_ffff, 0x3f80_0001,
        ]),
    ]
}

fn buffer(len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(float_bits(), len.max(1))
        .prop_map(|v| v.into_iter().flat_map(u32::to_le_bytes).collect())
}

fn case(batched: bool) -> impl Strategy<Value = ((u32, u32, u32, u32), Vec<u8>, Vec<u8>)> {
    let batch = if batched { 1u32..4 } else { 1u32..2 };
    (0u32..40, 0u32..40, 0u32..40, batch).prop_flat_map(|(m, n, k, batch)| {
        (
            Just((m, n, k, batch)),
            buffer((batch * m * k) as usize),
            buffer((batch * k * n) as usize),
        )
    })
}

#[test]
fn both_kernels_are_tiled() {
    assert_eq!(
        choose(&samples::matmul().expect("matmul")),
        Blueprint::TiledMatmul([16, 16, 1])
    );
    assert_eq!(
        choose(&samples::batched_matmul().expect("batched")),
        Blueprint::TiledMatmul([16, 16, 1])
    );
    assert_eq!(
        choose(&samples::stencil2d().expect("stencil2d")),
        Blueprint::TiledStencil([16, 16, 1])
    );
    assert_eq!(
        choose(&samples::batched_stencil2d(ValType::I32).expect("batched stencil")),
        Blueprint::TiledStencil([16, 16, 1])
    );
    let k64 = samples::batched_stencil2d(ValType::I64).expect("i64 stencil");
    assert_eq!(choose(&k64), Blueprint::TiledStencil([16, 16, 1]));
    for k in [
        samples::conv2d().expect("conv2d"),
        samples::batched_conv2d(ValType::I32).expect("batched conv2d"),
        samples::batched_conv2d(ValType::I64).expect("i64 conv2d"),
    ] {
        assert_eq!(
            choose(&k),
            Blueprint::TiledConv2d([16, 16, 1]),
            "{}",
            k.name
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn tiled_matmul_equals_the_direct_lowering((sizes, a, b) in case(false)) {
        let k = samples::matmul().expect("matmul");
        prop_assert_eq!(run(&k, true, sizes, &a, &b), run(&k, false, sizes, &a, &b));
    }

    #[test]
    fn tiled_batched_matmul_equals_the_direct_lowering((sizes, a, b) in case(true)) {
        let k = samples::batched_matmul().expect("batched");
        prop_assert_eq!(run(&k, true, sizes, &a, &b), run(&k, false, sizes, &a, &b));
    }
}

/// Runs the stencil sample (or, with `nb`, its batched form over `nb` planes) over `h × w`
/// grids `input` (direct lowering or blueprint); returns `out`.
fn run_stencil(generic_only: bool, (h, w): (u32, u32), input: &[u8]) -> Vec<u8> {
    run_stencil_kernel(
        &samples::stencil2d().expect("stencil2d"),
        None,
        generic_only,
        (h, w),
        input,
    )
}

fn run_stencil_kernel(
    kernel: &Kernel,
    nb: Option<u32>,
    generic_only: bool,
    (h, w): (u32, u32),
    input: &[u8],
) -> Vec<u8> {
    let (tw, th) = (w.saturating_sub(2), h.saturating_sub(2));
    let mut mem = DeviceMemory::new();
    let ids = [
        mem.alloc(input.to_vec()),
        mem.alloc(vec![0xAB; (nb.unwrap_or(1) * h * w * 4).max(4) as usize]),
    ];
    let mut values = vec![w, tw, th];
    let mut trips = vec![u64::from(tw), u64::from(th)];
    if let Some(nb) = nb {
        values.extend([nb, w * h]);
        trips.push(u64::from(nb));
    }
    // Each scalar as wide as the kernel's param (`i64` trip counts in the 64-bit form).
    let scalars = values
        .iter()
        .zip(&kernel.params[2..])
        .map(|(&v, p)| match p.kind {
            ParamKind::Scalar(ValType::I64) => ParamValue::U64(u64::from(v)),
            _ => ParamValue::U32(v),
        });
    let params = [ParamValue::Ptr(ids[0]), ParamValue::Ptr(ids[1])]
        .into_iter()
        .chain(scalars)
        .collect();
    emit_and_launch(kernel, generic_only, &trips, params, &mut mem);
    mem.read(ids[1]).expect("out").to_vec()
}

fn batched_stencil_case() -> impl Strategy<Value = ((u32, u32, u32), Vec<u8>)> {
    (3u32..24, 3u32..24, 1u32..4)
        .prop_flat_map(|(h, w, nb)| (Just((h, w, nb)), buffer((nb * h * w) as usize)))
}

fn stencil_case() -> impl Strategy<Value = ((u32, u32), Vec<u8>)> {
    (3u32..45, 3u32..45).prop_flat_map(|(h, w)| (Just((h, w)), buffer((h * w) as usize)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn tiled_stencil_equals_the_direct_lowering((size, input) in stencil_case()) {
        prop_assert_eq!(run_stencil(true, size, &input), run_stencil(false, size, &input));
    }

    #[test]
    fn tiled_batched_stencil_equals_the_direct_lowering(
        ((h, w, nb), input) in batched_stencil_case()
    ) {
        let k = samples::batched_stencil2d(ValType::I32).expect("batched stencil");
        prop_assert_eq!(
            run_stencil_kernel(&k, Some(nb), true, (h, w), &input),
            run_stencil_kernel(&k, Some(nb), false, (h, w), &input)
        );
        let k64 = samples::batched_stencil2d(ValType::I64).expect("i64 stencil");
        prop_assert_eq!(
            run_stencil_kernel(&k64, Some(nb), true, (h, w), &input),
            run_stencil_kernel(&k64, Some(nb), false, (h, w), &input)
        );
    }
}

/// A convolution case: output `oh × ow` over `nb` planes, a `kh × kw` filter (signed, so a
/// size of 0 or below runs no filter loop; up to 20, past the window's largest filter), and
/// `w = ow + max(kw, 1) − 1`, `h = oh + max(kh, 1) − 1` for the input.
type ConvSize = (u32, u32, i32, i32, u32);

/// Runs `kernel` (the conv2d sample, or its batched form when the kernel has a z dimension)
/// over `input` and `filter`; returns `out`.
fn run_conv(
    kernel: &Kernel,
    generic_only: bool,
    (oh, ow, kh, kw, nb): ConvSize,
    input: &[u8],
    filter: &[u8],
) -> Vec<u8> {
    let (h, w) = (oh + kh.max(1) as u32 - 1, ow + kw.max(1) as u32 - 1);
    let mut mem = DeviceMemory::new();
    let ids = [
        mem.alloc(input.to_vec()),
        mem.alloc(filter.to_vec()),
        mem.alloc(vec![0xAB; (nb * oh * ow * 4).max(4) as usize]),
    ];
    let batched = kernel.grid.len() == 3;
    let mut values: Vec<i64> = vec![
        i64::from(w),
        i64::from(ow),
        i64::from(oh),
        i64::from(kh),
        i64::from(kw),
    ];
    let mut trips = vec![u64::from(ow), u64::from(oh)];
    if batched {
        values.extend([i64::from(nb), i64::from(h * w), i64::from(oh * ow)]);
        trips.push(u64::from(nb));
    }
    let scalars = values
        .iter()
        .zip(&kernel.params[3..])
        .map(|(&v, p)| match p.kind {
            ParamKind::Scalar(ValType::I64) => ParamValue::U64(v as u64),
            _ => ParamValue::U32(v as u32),
        });
    let params = ids
        .iter()
        .map(|&id| ParamValue::Ptr(id))
        .chain(scalars)
        .collect();
    emit_and_launch(kernel, generic_only, &trips, params, &mut mem);
    mem.read(ids[2]).expect("out").to_vec()
}

fn conv_case(batched: bool) -> impl Strategy<Value = (ConvSize, Vec<u8>, Vec<u8>)> {
    let nb = if batched { 1u32..4 } else { 1u32..2 };
    let filter = prop_oneof![4 => 1i32..8, 1 => -1i32..21];
    (0u32..36, 0u32..36, filter.clone(), filter, nb).prop_flat_map(|(oh, ow, kh, kw, nb)| {
        let (h, w) = (oh + kh.max(1) as u32 - 1, ow + kw.max(1) as u32 - 1);
        (
            Just((oh, ow, kh, kw, nb)),
            buffer((nb * h * w) as usize),
            buffer((kh.max(1) * kw.max(1)) as usize),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn tiled_conv2d_equals_the_direct_lowering((size, input, filter) in conv_case(false)) {
        let k = samples::conv2d().expect("conv2d");
        prop_assert_eq!(
            run_conv(&k, true, size, &input, &filter),
            run_conv(&k, false, size, &input, &filter)
        );
    }

    #[test]
    fn tiled_batched_conv2d_equals_the_direct_lowering((size, input, filter) in conv_case(true)) {
        for ty in [ValType::I32, ValType::I64] {
            let k = samples::batched_conv2d(ty).expect("batched conv2d");
            prop_assert_eq!(
                run_conv(&k, true, size, &input, &filter),
                run_conv(&k, false, size, &input, &filter)
            );
        }
    }
}
