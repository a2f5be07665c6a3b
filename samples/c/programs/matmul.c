/* WASI program around kernels/matmul.c: C (m x n) = A (m x k) * B (k x n).
 * Usage: matmul [m n k] (default 64 48 32). */
#define KERNEL static inline
#include "../kernels/matmul.c"
#include "common.h"

int main(int argc, char **argv) {
    int m = arg_size(argc, argv, 1, 64);
    int n = arg_size(argc, argv, 2, 48);
    int k = arg_size(argc, argv, 3, 32);
    float *A = xmalloc(sizeof(float) * (size_t)m * (size_t)k);
    float *B = xmalloc(sizeof(float) * (size_t)k * (size_t)n);
    float *C = xmalloc(sizeof(float) * (size_t)m * (size_t)n);
    fill_f32(A, m * k, 6);
    fill_f32(B, k * n, 7);
    matmul(C, A, B, m, n, k);
    report_f32("matmul", C, m * n);
    free(A);
    free(B);
    free(C);
    return 0;
}
