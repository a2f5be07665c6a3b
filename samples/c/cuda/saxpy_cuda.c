/* A guest that brings its own kernel: y = a*x + y over wasi:cuda, with a CPU path.
 *
 * Usage: saxpy_cuda [n] (default 8192). Prints the same checksum line on stdout whichever path
 * ran, and on stderr where it ran. When the device ran the kernel, the program also computes the
 * result on the CPU and exits 1 if any bit differs. Built by samples/build.sh into
 * wasm/cuda/saxpy_cuda.wasm; run it with `tensorwasm run --backend emulated` (or cuda, none). */
#include "../programs/common.h"
#include "wasi_cuda.h"

/* mul.rn then add.rn, not fma: the same two roundings as the C expression below, so both paths
 * agree to the bit. */
static const char PTX[] =
    ".version 8.0\n"
    ".target sm_75\n"
    ".address_size 64\n"
    ".visible .entry saxpy(.param .u64 px, .param .u64 py, .param .f32 pa, .param .u32 pn)\n"
    "{\n"
    "  .reg .pred %p<1>;\n"
    "  .reg .b32 %r<5>;\n"
    "  .reg .b64 %rd<7>;\n"
    "  .reg .f32 %f<5>;\n"
    "  ld.param.u64 %rd0, [px];\n"
    "  ld.param.u64 %rd1, [py];\n"
    "  ld.param.f32 %f0, [pa];\n"
    "  ld.param.u32 %r0, [pn];\n"
    "  mov.u32 %r1, %ctaid.x;\n"
    "  mov.u32 %r2, %ntid.x;\n"
    "  mov.u32 %r3, %tid.x;\n"
    "  mad.lo.u32 %r4, %r1, %r2, %r3;\n"
    "  setp.ge.u32 %p0, %r4, %r0;\n"
    "  @%p0 bra DONE;\n"
    "  mul.wide.u32 %rd2, %r4, 4;\n"
    "  add.s64 %rd3, %rd0, %rd2;\n"
    "  add.s64 %rd4, %rd1, %rd2;\n"
    "  ld.global.f32 %f1, [%rd3];\n"
    "  ld.global.f32 %f2, [%rd4];\n"
    "  mul.rn.f32 %f3, %f0, %f1;\n"
    "  add.rn.f32 %f4, %f3, %f2;\n"
    "  st.global.f32 [%rd4], %f4;\n"
    "DONE:\n"
    "  ret;\n"
    "}\n";

static void saxpy_cpu(float *y, const float *x, float a, int n) {
    for (int i = 0; i < n; i++)
        y[i] = a * x[i] + y[i];
}

/* Prints why the device path stopped and returns 0, so the caller takes the CPU path. */
static int device_failed(const char *what, int32_t code) {
    char msg[256];
    int32_t len = wasi_cuda_last_error(msg, sizeof msg - 1);
    if (len < 0)
        len = 0;
    if (len > (int32_t)sizeof msg - 1)
        len = sizeof msg - 1;
    msg[len] = 0;
    fprintf(stderr, "saxpy_cuda: %s failed (%d: %s); running on the CPU\n", what, (int)code, msg);
    return 0;
}

/* Runs the kernel through wasi:cuda; returns 1 when y holds the result. */
static int saxpy_device(float *y, const float *x, float a, int n) {
    if (wasi_cuda_device_count() < 1) {
        fprintf(stderr, "saxpy_cuda: no device; running on the CPU\n");
        return 0;
    }
    uint32_t bytes = (uint32_t)n * 4u;
    int32_t m = wasi_cuda_module_load(PTX, sizeof PTX - 1);
    if (m < 0)
        return device_failed("module_load", m);
    int32_t dx = wasi_cuda_mem_alloc(bytes);
    if (dx < 0)
        return device_failed("mem_alloc", dx);
    int32_t dy = wasi_cuda_mem_alloc(bytes);
    if (dy < 0)
        return device_failed("mem_alloc", dy);
    int32_t rc = wasi_cuda_memcpy_htod(dx, 0, x, bytes);
    if (rc == 0)
        rc = wasi_cuda_memcpy_htod(dy, 0, y, bytes);
    if (rc < 0)
        return device_failed("memcpy_htod", rc);
    wasi_cuda_dims dims = {{((uint32_t)n + 255u) / 256u, 1, 1}, {256, 1, 1}};
    wasi_cuda_arg args[4] = {wasi_cuda_buffer(dx), wasi_cuda_buffer(dy), wasi_cuda_f32(a),
                             wasi_cuda_u32((uint32_t)n)};
    rc = wasi_cuda_launch(m, "saxpy", 5, &dims, args, 4);
    if (rc < 0)
        return device_failed("launch", rc);
    rc = wasi_cuda_synchronize();
    if (rc < 0)
        return device_failed("synchronize", rc);
    rc = wasi_cuda_memcpy_dtoh(y, dy, 0, bytes);
    if (rc < 0)
        return device_failed("memcpy_dtoh", rc);
    wasi_cuda_mem_free(dx);
    wasi_cuda_mem_free(dy);
    return 1;
}

int main(int argc, char **argv) {
    int n = arg_size(argc, argv, 1, 8192);
    float a = 1.75f;
    float *x = xmalloc(sizeof(float) * (size_t)n);
    float *y = xmalloc(sizeof(float) * (size_t)n);
    fill_f32(x, n, 7);
    fill_f32(y, n, 8);
    if (saxpy_device(y, x, a, n)) {
        float *check = xmalloc(sizeof(float) * (size_t)n);
        fill_f32(check, n, 8);
        saxpy_cpu(check, x, a, n);
        if (memcmp(check, y, sizeof(float) * (size_t)n) != 0) {
            fprintf(stderr, "saxpy_cuda: the device result differs from the CPU's\n");
            return 1;
        }
        free(check);
        fprintf(stderr, "saxpy_cuda: ran on the device (wasi:cuda); matches the CPU bit for bit\n");
    } else {
        saxpy_cpu(y, x, a, n);
    }
    report_f32("saxpy_cuda", y, n);
    free(x);
    free(y);
    return 0;
}
