/* WASI program around kernels/prefix_sum.c. Usage: prefix_sum [n] (default 4096). */
#define KERNEL static inline
#include "../kernels/prefix_sum.c"
#include "common.h"

int main(int argc, char **argv) {
    int n = arg_size(argc, argv, 1, 4096);
    float *in = xmalloc(sizeof(float) * (size_t)n);
    float *out = xmalloc(sizeof(float) * (size_t)n);
    fill_f32(in, n, 15);
    prefix_sum(out, in, n);
    report_f32("prefix_sum", out, n);
    free(in);
    free(out);
    return 0;
}
