/* Offloadable: C = A * B, f32, row-major. A is m x k, B is k x n, C is m x n.
 * The sum over p runs in k-order inside one (i, j) pair. */
#include "kernel.h"

KERNEL void matmul(float *restrict C, const float *A, const float *B, int m, int n, int k) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float s = 0.0f;
            for (int p = 0; p < k; p++)
                s += A[i * k + p] * B[p * n + j];
            C[i * n + j] = s;
        }
}
