/* WASI program around kernels/batched_matmul.c.
 * Usage: batched_matmul [batch m n k] (default 8 24 32 16). */
#define KERNEL static inline
#include "../kernels/batched_matmul.c"
#include "common.h"

int main(int argc, char **argv) {
    int batch = arg_size(argc, argv, 1, 8);
    int m = arg_size(argc, argv, 2, 24);
    int n = arg_size(argc, argv, 3, 32);
    int k = arg_size(argc, argv, 4, 16);
    float *A = xmalloc(sizeof(float) * (size_t)batch * (size_t)m * (size_t)k);
    float *B = xmalloc(sizeof(float) * (size_t)batch * (size_t)k * (size_t)n);
    float *C = xmalloc(sizeof(float) * (size_t)batch * (size_t)m * (size_t)n);
    fill_f32(A, batch * m * k, 12);
    fill_f32(B, batch * k * n, 13);
    batched_matmul(C, A, B, batch, m, n, k);
    report_f32("batched_matmul", C, batch * m * n);
    free(A);
    free(B);
    free(C);
    return 0;
}
