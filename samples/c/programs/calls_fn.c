/* WASI program around kernels/calls_fn.c: the helper stays a call in main's loop.
 * Usage: calls_fn [n] (default 4096). */
#define KERNEL static inline
#include "../kernels/calls_fn.c"
#include "common.h"

int main(int argc, char **argv) {
    int n = arg_size(argc, argv, 1, 4096);
    float *in = xmalloc(sizeof(float) * (size_t)n);
    float *out = xmalloc(sizeof(float) * (size_t)n);
    fill_f32(in, n, 17);
    calls_fn(out, in, n);
    report_f32("calls_fn", out, n);
    free(in);
    free(out);
    return 0;
}
