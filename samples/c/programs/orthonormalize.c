/* WASI program around kernels/orthonormalize.c: a 64 x 48 matrix (48 columns:
 * 48 dispatches of the scaling nest, 47 of the update nest, each under the
 * default launch threshold, so run with --min-threads 1 to see them on the
 * device). Usage: orthonormalize [m [n]]. */
#define KERNEL static inline
#include "../kernels/orthonormalize.c"
#include "common.h"

int main(int argc, char **argv) {
    int m = arg_size(argc, argv, 1, 64);
    int n = arg_size(argc, argv, 2, 48);
    float *a = xmalloc(sizeof(float) * (size_t)m * (size_t)n);
    float *r = xmalloc(sizeof(float) * (size_t)n * (size_t)n);
    fill_f32(a, m * n, 31);
    fill_f32(r, n * n, 32);
    orthonormalize(a, r, m, n);
    report_f32("orthonormalize q", a, m * n);
    report_f32("orthonormalize r", r, n * n);
    free(a);
    free(r);
    return 0;
}
