/* Offloadable: a batch of matmuls, f32, row-major.
 * A is batch x m x k, B is batch x k x n, C is batch x m x n:
 * C[b][i][j] = sum over p (in order) of A[b][i][p] * B[b][p][j]. */
#include "kernel.h"

KERNEL void batched_matmul(float *restrict C, const float *A, const float *B,
                           int batch, int m, int n, int k) {
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float s = 0.0f;
                for (int p = 0; p < k; p++)
                    s += A[(b * m + i) * k + p] * B[(b * k + p) * n + j];
                C[(b * m + i) * n + j] = s;
            }
}
