//! Hand-written PTX kernels used by the tests; every one must also assemble with
//! `ptxas -arch=sm_80` (tests/ptxas.rs).

pub const HEADER: &str = ".version 8.0\n.target sm_80\n.address_size 64\n";

/// out[i] = a[i] + b[i] for i < n.
pub const VECADD: &str = r#"
.version 8.0
.target sm_80
.address_size 64

// Vector add with a bounds check.
.visible .entry vecadd(
    .param .u64 a,
    .param .u64 b,
    .param .u64 out,
    .param .u32 n
)
{
    .reg .pred %p<2>;
    .reg .b32 %r<6>;
    .reg .f32 %f<4>;
    .reg .b64 %rd<11>;

    ld.param.u64 %rd1, [a];
    ld.param.u64 %rd2, [b];
    ld.param.u64 %rd3, [out];
    ld.param.u32 %r1, [n];
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mov.u32 %r4, %tid.x;
    mad.lo.s32 %r5, %r2, %r3, %r4;
    setp.ge.u32 %p1, %r5, %r1;
    @%p1 bra DONE;
    cvta.to.global.u64 %rd4, %rd1;
    cvta.to.global.u64 %rd5, %rd2;
    cvta.to.global.u64 %rd6, %rd3;
    mul.wide.u32 %rd7, %r5, 4;
    add.s64 %rd8, %rd4, %rd7;
    add.s64 %rd9, %rd5, %rd7;
    add.s64 %rd10, %rd6, %rd7;
    ld.global.f32 %f1, [%rd8];
    ld.global.f32 %f2, [%rd9];
    add.rn.f32 %f3, %f1, %f2;
    st.global.f32 [%rd10], %f3;
DONE:
    ret;
}
"#;

/// out[i] = a*x[i] + y[i], once as mul.rn + add.rn (two roundings) and once as fma.rn.
pub const SAXPY: &str = r#"
.version 8.0
.target sm_80
.address_size 64

.visible .entry saxpy_two_roundings(.param .f32 alpha, .param .u64 x, .param .u64 y, .param .u64 out)
{
    .reg .b32 %r<2>;
    .reg .f32 %f<6>;
    .reg .b64 %rd<8>;
    ld.param.f32 %f1, [alpha];
    ld.param.u64 %rd1, [x];
    ld.param.u64 %rd2, [y];
    ld.param.u64 %rd3, [out];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd4, %r1, 4;
    add.s64 %rd5, %rd1, %rd4;
    add.s64 %rd6, %rd2, %rd4;
    add.s64 %rd7, %rd3, %rd4;
    ld.global.f32 %f2, [%rd5];
    ld.global.f32 %f3, [%rd6];
    mul.rn.f32 %f4, %f1, %f2;
    add.rn.f32 %f5, %f4, %f3;
    st.global.f32 [%rd7], %f5;
    ret;
}

.visible .entry saxpy_fma(.param .f32 alpha, .param .u64 x, .param .u64 y, .param .u64 out)
{
    .reg .b32 %r<2>;
    .reg .f32 %f<5>;
    .reg .b64 %rd<8>;
    ld.param.f32 %f1, [alpha];
    ld.param.u64 %rd1, [x];
    ld.param.u64 %rd2, [y];
    ld.param.u64 %rd3, [out];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd4, %r1, 4;
    add.s64 %rd5, %rd1, %rd4;
    add.s64 %rd6, %rd2, %rd4;
    add.s64 %rd7, %rd3, %rd4;
    ld.global.f32 %f2, [%rd5];
    ld.global.f32 %f3, [%rd6];
    fma.rn.f32 %f4, %f1, %f2, %f3;
    st.global.f32 [%rd7], %f4;
    ret;
}
"#;

/// out[i] = x[i] > 0 ? x[i] : 0, with a branch (NaN goes to the zero path: setp.gt is ordered).
pub const RELU: &str = r#"
.version 8.0
.target sm_80
.address_size 64

.visible .entry relu(.param .u64 x, .param .u64 out)
{
    .reg .pred %p1;
    .reg .b32 %r1;
    .reg .f32 %f<3>;
    .reg .b64 %rd<5>;
    ld.param.u64 %rd1, [x];
    ld.param.u64 %rd2, [out];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd3, %r1, 4;
    add.s64 %rd1, %rd1, %rd3;
    add.s64 %rd4, %rd2, %rd3;
    ld.global.f32 %f1, [%rd1];
    setp.gt.f32 %p1, %f1, 0f00000000;
    @%p1 bra POSITIVE;
    mov.f32 %f2, 0f00000000;
    bra.uni STORE;
POSITIVE:
    mov.f32 %f2, %f1;
STORE:
    st.global.f32 [%rd4], %f2;
    ret;
}
"#;

/// C[row][col] = sum over k in order of A[row][k] * B[k][col] (mul.rn then add.rn), n x n,
/// one thread per output, 2D block.
pub const MATMUL: &str = r#"
.version 8.0
.target sm_80
.address_size 64

.visible .entry matmul(.param .u64 A, .param .u64 B, .param .u64 C, .param .u32 n)
{
    .reg .pred %p<2>;
    .reg .b32 %r<10>;
    .reg .f32 %f<5>;
    .reg .b64 %rd<12>;
    ld.param.u64 %rd1, [A];
    ld.param.u64 %rd2, [B];
    ld.param.u64 %rd3, [C];
    ld.param.u32 %r1, [n];
    mov.u32 %r2, %tid.x;            // col
    mov.u32 %r3, %tid.y;            // row
    mov.f32 %f1, 0f00000000;        // acc
    mov.u32 %r4, 0;                 // k
LOOP:
    setp.ge.u32 %p1, %r4, %r1;
    @%p1 bra END;
    mad.lo.s32 %r5, %r3, %r1, %r4;  // row*n + k
    mul.wide.u32 %rd4, %r5, 4;
    add.s64 %rd5, %rd1, %rd4;
    ld.global.f32 %f2, [%rd5];
    mad.lo.s32 %r6, %r4, %r1, %r2;  // k*n + col
    mul.wide.u32 %rd6, %r6, 4;
    add.s64 %rd7, %rd2, %rd6;
    ld.global.f32 %f3, [%rd7];
    mul.rn.f32 %f4, %f2, %f3;
    add.rn.f32 %f1, %f1, %f4;
    add.s32 %r4, %r4, 1;
    bra.uni LOOP;
END:
    mad.lo.s32 %r7, %r3, %r1, %r2;
    mul.wide.u32 %rd8, %r7, 4;
    add.s64 %rd9, %rd3, %rd8;
    st.global.f32 [%rd9], %f1;
    ret;
}
"#;

/// Each block reverses its 64-element slice through shared memory, with a barrier between the
/// shared store and the shared load.
pub const REVERSE_SHARED: &str = r#"
.version 8.0
.target sm_80
.address_size 64

.visible .entry reverse(.param .u64 in, .param .u64 out)
{
    .shared .align 4 .f32 tile[64];
    .reg .b32 %r<8>;
    .reg .f32 %f<2>;
    .reg .b64 %rd<8>;
    ld.param.u64 %rd1, [in];
    ld.param.u64 %rd2, [out];
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mad.lo.s32 %r4, %r2, %r3, %r1;       // global index
    mul.wide.u32 %rd3, %r4, 4;
    add.s64 %rd4, %rd1, %rd3;
    ld.global.f32 %f1, [%rd4];
    mov.u32 %r5, tile;
    shl.b32 %r6, %r1, 2;
    add.s32 %r6, %r5, %r6;
    st.shared.f32 [%r6], %f1;
    bar.sync 0;
    sub.s32 %r7, %r3, %r1;
    sub.s32 %r7, %r7, 1;                 // ntid - 1 - tid
    shl.b32 %r7, %r7, 2;
    add.s32 %r7, %r5, %r7;
    ld.shared.f32 %f1, [%r7];
    add.s64 %rd5, %rd2, %rd3;
    st.global.f32 [%rd5], %f1;
    ret;
}
"#;

/// Tiled sum: each block sums its 32 inputs by a shared-memory tree with a barrier per level;
/// out[block] = sum (tree order).
pub const TREE_SUM: &str = r#"
.version 8.0
.target sm_80
.address_size 64

.visible .entry tree_sum(.param .u64 in, .param .u64 out)
{
    .shared .align 4 .f32 buf[32];
    .reg .pred %p<3>;
    .reg .b32 %r<10>;
    .reg .f32 %f<3>;
    .reg .b64 %rd<6>;
    ld.param.u64 %rd1, [in];
    ld.param.u64 %rd2, [out];
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, %ctaid.x;
    mad.lo.s32 %r3, %r2, 32, %r1;
    mul.wide.u32 %rd3, %r3, 4;
    add.s64 %rd3, %rd1, %rd3;
    ld.global.f32 %f1, [%rd3];
    mov.u32 %r4, buf;
    shl.b32 %r5, %r1, 2;
    add.s32 %r5, %r4, %r5;               // &buf[tid]
    st.shared.f32 [%r5], %f1;
    bar.sync 0;
    mov.u32 %r6, 16;                     // stride
LEVEL:
    setp.lt.u32 %p1, %r1, %r6;
    @!%p1 bra SKIP;
    shl.b32 %r7, %r6, 2;
    add.s32 %r7, %r5, %r7;               // &buf[tid + stride]
    ld.shared.f32 %f1, [%r5];
    ld.shared.f32 %f2, [%r7];
    add.rn.f32 %f1, %f1, %f2;
    st.shared.f32 [%r5], %f1;
SKIP:
    bar.sync 0;
    shr.u32 %r6, %r6, 1;
    setp.ne.u32 %p2, %r6, 0;
    @%p2 bra LEVEL;
    setp.ne.u32 %p1, %r1, 0;
    @%p1 bra DONE;
    ld.shared.f32 %f1, [buf];
    mul.wide.u32 %rd4, %r2, 4;
    add.s64 %rd5, %rd2, %rd4;
    st.global.f32 [%rd5], %f1;
DONE:
    ret;
}
"#;

/// 2D grid of 2D blocks: out[y * width + x] = x * 1000 + y.
pub const GRID2D: &str = r#"
.version 8.0
.target sm_80
.address_size 64

.visible .entry grid2d(.param .u64 out, .param .u32 width)
{
    .reg .b32 %r<12>;
    .reg .b64 %rd<4>;
    ld.param.u64 %rd1, [out];
    ld.param.u32 %r1, [width];
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mov.u32 %r4, %tid.x;
    mad.lo.s32 %r5, %r2, %r3, %r4;       // x
    mov.u32 %r6, %ctaid.y;
    mov.u32 %r7, %ntid.y;
    mov.u32 %r8, %tid.y;
    mad.lo.s32 %r9, %r6, %r7, %r8;       // y
    mad.lo.s32 %r10, %r9, %r1, %r5;      // y * width + x
    mad.lo.s32 %r11, %r5, 1000, %r9;     // x * 1000 + y
    mul.wide.u32 %rd2, %r10, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.u32 [%rd3], %r11;
    ret;
}
"#;

/// Sets a trap flag with atom.global.or when an input is negative; counts with atom.add.
pub const TRAP_FLAG: &str = r#"
.version 8.0
.target sm_80
.address_size 64

.visible .entry trap_flag(.param .u64 x, .param .u64 flags)
{
    .reg .pred %p1;
    .reg .b32 %r<4>;
    .reg .b64 %rd<4>;
    ld.param.u64 %rd1, [x];
    ld.param.u64 %rd2, [flags];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd3, %r1, 4;
    add.s64 %rd3, %rd1, %rd3;
    ld.global.s32 %r2, [%rd3];
    atom.global.add.u32 %r3, [%rd2+4], 1;
    setp.ge.s32 %p1, %r2, 0;
    @%p1 bra OK;
    atom.global.or.b32 %r3, [%rd2], 1;
OK:
    ret;
}
"#;

/// All kernels, for the ptxas test.
pub const ALL: [(&str, &str); 8] = [
    ("vecadd", VECADD),
    ("saxpy", SAXPY),
    ("relu", RELU),
    ("matmul", MATMUL),
    ("reverse", REVERSE_SHARED),
    ("tree_sum", TREE_SUM),
    ("grid2d", GRID2D),
    ("trap_flag", TRAP_FLAG),
];
