/* WASI program around kernels/vadd.c: c = a + b. Usage: vadd [n] (default 4096). */
#define KERNEL static inline
#include "../kernels/vadd.c"
#include "common.h"

int main(int argc, char **argv) {
    int n = arg_size(argc, argv, 1, 4096);
    float *a = xmalloc(sizeof(float) * (size_t)n);
    float *b = xmalloc(sizeof(float) * (size_t)n);
    float *c = xmalloc(sizeof(float) * (size_t)n);
    fill_f32(a, n, 1);
    fill_f32(b, n, 2);
    vadd(c, a, b, n);
    report_f32("vadd", c, n);
    free(a);
    free(b);
    free(c);
    return 0;
}
