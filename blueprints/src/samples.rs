//! Reference kernels written directly in KernelIR: vector add, saxpy, relu with a branch,
//! a matmul with a sequential inner loop, a 2D convolution with two, a 2D stencil and an integer division that can trap.
//!
//! They are what a front end would produce for the matching Wasm loops, and they are used by
//! tests here (ptxas, golden PTX) and by other crates (the oracle's interpreter). They are not
//! tuned templates and must never be used as such.

use crate::error::Result;
use crate::kernel_ir::{
    Addr, Affine, BinOp, Expr, ForLoop, Kernel, KernelBuilder, LoadOp, ParamId, Start, Stmt,
    StoreOp, ValType,
};

/// `for i in 0..n { c[i] = a[i] + b[i] }` over `f32`.
pub fn vadd() -> Result<Kernel> {
    let mut k = KernelBuilder::new("vadd");
    let (a, b, c) = (k.ptr("a"), k.ptr("b"), k.ptr("c"));
    let n = k.scalar("n", ValType::I32);
    let i = k.grid(ValType::I32, Start::Const(0), 1, n);
    let at = |p| Addr::new(p, Affine::constant(0).plus(4, i));
    let sum = Expr::binary(
        BinOp::F32Add,
        Expr::load(LoadOp::F32Load, at(a)),
        Expr::load(LoadOp::F32Load, at(b)),
    );
    k.push(Stmt::Store(StoreOp::F32Store, at(c), sum));
    k.build()
}

/// `for i in 0..n { y[i] = alpha * x[i] + y[i] }` over `f32` (a multiply then an add, never
/// fused).
pub fn saxpy() -> Result<Kernel> {
    let mut k = KernelBuilder::new("saxpy");
    let (x, y) = (k.ptr("x"), k.ptr("y"));
    let alpha = k.scalar("alpha", ValType::F32);
    let n = k.scalar("n", ValType::I32);
    let i = k.grid(ValType::I32, Start::Const(0), 1, n);
    let at = |p| Addr::new(p, Affine::constant(0).plus(4, i));
    let ax = Expr::binary(
        BinOp::F32Mul,
        Expr::param(alpha),
        Expr::load(LoadOp::F32Load, at(x)),
    );
    let v = Expr::binary(BinOp::F32Add, ax, Expr::load(LoadOp::F32Load, at(y)));
    k.push(Stmt::Store(StoreOp::F32Store, at(y), v));
    k.build()
}

/// `for i in 0..n { let v = x[i]; if v > 0 { y[i] = v } else { y[i] = 0 } }` over `f32`.
pub fn relu() -> Result<Kernel> {
    let mut k = KernelBuilder::new("relu");
    let (x, y) = (k.ptr("x"), k.ptr("y"));
    let n = k.scalar("n", ValType::I32);
    let i = k.grid(ValType::I32, Start::Const(0), 1, n);
    let v = k.local(ValType::F32);
    let at = |p| Addr::new(p, Affine::constant(0).plus(4, i));
    k.push(Stmt::Set(v, Expr::load(LoadOp::F32Load, at(x))));
    k.push(Stmt::If {
        cond: Expr::binary(BinOp::F32Gt, Expr::local(v), Expr::f32(0.0)),
        then: vec![Stmt::Store(StoreOp::F32Store, at(y), Expr::local(v))],
        els: vec![Stmt::Store(StoreOp::F32Store, at(y), Expr::f32(0.0))],
    });
    k.build()
}

/// `c[i][j] = Σ_k a[i][k] * b[k][j]` over `f32`, row-major, `i` on y and `j` on x, with the
/// `k` loop sequential inside each thread (the CPU's summation order).
pub fn matmul() -> Result<Kernel> {
    matmul_kernel("matmul", false)
}

/// `batch` matmuls at once: [`matmul`] with a third grid dimension `z < batch` and each matrix
/// at `z` times its batch stride (`sa`, `sb`, `sc` elements), params `a, b, c, m, n, k, batch,
/// sa, sb, sc`. The tiled-matmul blueprint tiles x and y and takes z as the batch.
pub fn batched_matmul() -> Result<Kernel> {
    matmul_kernel("batched_matmul", true)
}

fn matmul_kernel(name: &str, batched: bool) -> Result<Kernel> {
    let mut k = KernelBuilder::new(name);
    let (a, b, c) = (k.ptr("a"), k.ptr("b"), k.ptr("c"));
    let m = k.scalar("m", ValType::I32);
    let n = k.scalar("n", ValType::I32);
    let kk = k.scalar("k", ValType::I32);
    let batch = batched.then(|| {
        let batch = k.scalar("batch", ValType::I32);
        let strides = [
            k.scalar("sa", ValType::I32),
            k.scalar("sb", ValType::I32),
            k.scalar("sc", ValType::I32),
        ];
        (batch, strides)
    });
    let j = k.grid(ValType::I32, Start::Const(0), 1, n);
    let i = k.grid(ValType::I32, Start::Const(0), 1, m);
    let z = batch.map(|(batch, _)| k.grid(ValType::I32, Start::Const(0), 1, batch));
    let acc = k.local(ValType::F32);
    let l = k.loop_id();
    // `p + 4·(z·stride) + 4·row·row_stride + 4·col`, the batch term only when batched.
    let at = |p, which: usize, row, row_stride, col| {
        let mut off = Affine::constant(0);
        if let (Some(z), Some((_, strides))) = (z, batch) {
            off = off.plus_strided(4, z, strides[which]);
        }
        Addr::new(p, off.plus_strided(4, row, row_stride).plus(4, col))
    };
    let prod = Expr::binary(
        BinOp::F32Mul,
        Expr::load(LoadOp::F32Load, at(a, 0, i, kk, l)),
        Expr::load(LoadOp::F32Load, at(b, 1, l, n, j)),
    );
    k.push(Stmt::Set(acc, Expr::f32(0.0)));
    k.push(Stmt::For(ForLoop {
        counter: l,
        ty: ValType::I32,
        start: Expr::i32(0),
        bound: Expr::param(kk),
        step: 1,
        signed: true,
        body: vec![Stmt::Set(
            acc,
            Expr::binary(BinOp::F32Add, Expr::local(acc), prod),
        )],
    }));
    k.push(Stmt::Store(
        StoreOp::F32Store,
        at(c, 2, i, n, j),
        Expr::local(acc),
    ));
    k.build()
}

/// A valid single-channel 2D convolution (cross-correlation) over `f32`, row-major:
/// `out[y][x] = Σ_ky Σ_kx in[y+ky][x+kx] * k[ky][kx]` for `x < ow`, `y < oh`, with `in`
/// `w` wide, a `kh`×`kw` filter, `x` on x and `y` on y, and the `ky` then `kx` loops
/// sequential inside each thread: the C loop `acc += in[(y+ky)*w + (x+kx)] * k[ky*kw + kx]`
/// from `acc = 0`.
pub fn conv2d() -> Result<Kernel> {
    conv2d_with("conv2d", ValType::I32, false)
}

/// The convolution over `nb` planes (`plane` elements apart in `in`, `oplane` in `out`), the
/// plane on grid z (a batch), with counters, trip counts and filter sizes of type `ty` (`i32`
/// or `i64`): params `in`, `k`, `out`, `w`, `ow`, `oh`, `kh`, `kw`, `nb`, `plane`, `oplane`.
/// Not in [`all`]: the property tests of the tiled-conv2d blueprint use it for its batched and
/// 64-bit paths, and `ptxas` checks it.
pub fn batched_conv2d(ty: ValType) -> Result<Kernel> {
    let name = match ty {
        ValType::I64 => "batched_conv2d_i64",
        _ => "batched_conv2d",
    };
    conv2d_with(name, ty, true)
}

fn conv2d_with(name: &str, ty: ValType, batched: bool) -> Result<Kernel> {
    let mut k = KernelBuilder::new(name);
    let (input, filter, out) = (k.ptr("in"), k.ptr("k"), k.ptr("out"));
    let w = k.scalar("w", ValType::I32);
    let ow = k.scalar("ow", ty);
    let oh = k.scalar("oh", ty);
    let kh = k.scalar("kh", ty);
    let kw = k.scalar("kw", ty);
    let x = k.grid(ty, Start::Const(0), 1, ow);
    let y = k.grid(ty, Start::Const(0), 1, oh);
    let mut in_base = Affine::constant(0);
    let mut out_base = Affine::constant(0);
    if batched {
        let nb = k.scalar("nb", ty);
        let plane = k.scalar("plane", ValType::I32);
        let oplane = k.scalar("oplane", ValType::I32);
        let b = k.grid(ty, Start::Const(0), 1, nb);
        in_base = in_base.plus_strided(4, b, plane);
        out_base = out_base.plus_strided(4, b, oplane);
    }
    let acc = k.local(ValType::F32);
    let (ky, kx) = (k.loop_id(), k.loop_id());
    let in_at = Addr::new(
        input,
        in_base
            .plus_strided(4, y, w)
            .plus_strided(4, ky, w)
            .plus(4, x)
            .plus(4, kx),
    );
    let k_at = Addr::new(
        filter,
        Affine::constant(0).plus_strided(4, ky, kw).plus(4, kx),
    );
    let out_at = Addr::new(out, out_base.plus_strided(4, y, ow).plus(4, x));
    let prod = Expr::binary(
        BinOp::F32Mul,
        Expr::load(LoadOp::F32Load, in_at),
        Expr::load(LoadOp::F32Load, k_at),
    );
    let zero = match ty {
        ValType::I64 => Expr::i64(0),
        _ => Expr::i32(0),
    };
    let inner = Stmt::For(ForLoop {
        counter: kx,
        ty,
        start: zero.clone(),
        bound: Expr::param(kw),
        step: 1,
        signed: true,
        body: vec![Stmt::Set(
            acc,
            Expr::binary(BinOp::F32Add, Expr::local(acc), prod),
        )],
    });
    k.push(Stmt::Set(acc, Expr::f32(0.0)));
    k.push(Stmt::For(ForLoop {
        counter: ky,
        ty,
        start: zero,
        bound: Expr::param(kh),
        step: 1,
        signed: true,
        body: vec![inner],
    }));
    k.push(Stmt::Store(StoreOp::F32Store, out_at, Expr::local(acc)));
    k.build()
}

/// A 5-point stencil over the interior of a `w`-wide row-major `f32` grid:
/// `out[i][j] = 0.25 * (in[i-1][j] + in[i+1][j] + in[i][j-1] + in[i][j+1])` for
/// `1 <= i < h-1`, `1 <= j < w-1` (the trip counts `tw = w-2`, `th = h-2` are live-ins).
pub fn stencil2d() -> Result<Kernel> {
    let mut k = KernelBuilder::new("stencil2d");
    let (input, out) = (k.ptr("in"), k.ptr("out"));
    let w = k.scalar("w", ValType::I32);
    let tw = k.scalar("tw", ValType::I32);
    let th = k.scalar("th", ValType::I32);
    let j = k.grid(ValType::I32, Start::Const(1), 1, tw);
    let i = k.grid(ValType::I32, Start::Const(1), 1, th);
    let at = |p, di: i64, dj: i64| {
        Addr::new(
            p,
            Affine::constant(4 * dj)
                .plus_strided(4, i, w)
                .plus(4, j)
                .plus(4 * di, w),
        )
    };
    five_point(&mut k, input, out, at);
    k.build()
}

/// `out(0, 0) = 0.25 * (((in(-1, 0) + in(1, 0)) + in(0, -1)) + in(0, 1))`, where `at(p, di,
/// dj)` addresses element `(i + di, j + dj)` of `p`.
fn five_point(
    k: &mut KernelBuilder,
    input: ParamId,
    out: ParamId,
    at: impl Fn(ParamId, i64, i64) -> Addr,
) {
    let ld = |di, dj| Expr::load(LoadOp::F32Load, at(input, di, dj));
    let add = |x, y| Expr::binary(BinOp::F32Add, x, y);
    let sum = add(add(add(ld(-1, 0), ld(1, 0)), ld(0, -1)), ld(0, 1));
    let v = Expr::binary(BinOp::F32Mul, Expr::f32(0.25), sum);
    k.push(Stmt::Store(StoreOp::F32Store, at(out, 0, 0), v));
}

/// The stencil over `nb` planes of a `w`-wide grid, `plane` elements apart, the plane on grid z
/// (a batch), with counters and trip counts of type `ty` (`i32` or `i64`): params `in`, `out`,
/// `w`, `tw`, `th`, `nb`, `plane`. Not in [`all`]: the property tests of the tiled-stencil
/// blueprint use it for its batched and 64-bit paths, and `ptxas` checks it.
pub fn batched_stencil2d(ty: ValType) -> Result<Kernel> {
    let name = match ty {
        ValType::I64 => "batched_stencil2d_i64",
        _ => "batched_stencil2d",
    };
    let mut k = KernelBuilder::new(name);
    let (input, out) = (k.ptr("in"), k.ptr("out"));
    let w = k.scalar("w", ValType::I32);
    let tw = k.scalar("tw", ty);
    let th = k.scalar("th", ty);
    let nb = k.scalar("nb", ty);
    let plane = k.scalar("plane", ValType::I32);
    let j = k.grid(ty, Start::Const(1), 1, tw);
    let i = k.grid(ty, Start::Const(1), 1, th);
    let b = k.grid(ty, Start::Const(0), 1, nb);
    let at = |p, di: i64, dj: i64| {
        Addr::new(
            p,
            Affine::constant(4 * dj)
                .plus_strided(4, b, plane)
                .plus_strided(4, i, w)
                .plus(4, j)
                .plus(4 * di, w),
        )
    };
    five_point(&mut k, input, out, at);
    k.build()
}

/// `for i in 0..n { q[i] = a[i] / b[i] }` over `i32` (`div_s`, which traps on zero and on
/// `i32::MIN / -1`: the kernel has a trap flag).
pub fn idiv() -> Result<Kernel> {
    let mut k = KernelBuilder::new("idiv");
    let (a, b, q) = (k.ptr("a"), k.ptr("b"), k.ptr("q"));
    let n = k.scalar("n", ValType::I32);
    k.trap_flag();
    let i = k.grid(ValType::I32, Start::Const(0), 1, n);
    let at = |p| Addr::new(p, Affine::constant(0).plus(4, i));
    let v = Expr::binary(
        BinOp::I32DivS,
        Expr::load(LoadOp::I32Load, at(a)),
        Expr::load(LoadOp::I32Load, at(b)),
    );
    k.push(Stmt::Store(StoreOp::I32Store, at(q), v));
    k.build()
}

/// Every sample, by name.
pub fn all() -> Result<Vec<Kernel>> {
    Ok(vec![
        vadd()?,
        saxpy()?,
        relu()?,
        matmul()?,
        batched_matmul()?,
        conv2d()?,
        stencil2d()?,
        idiv()?,
    ])
}
