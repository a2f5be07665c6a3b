/* Offloadable inside a sequential loop: modified Gram-Schmidt on the n columns
 * of a (m x n, f32, row-major), in place, with r (n x n) the upper triangle of
 * dot products. Column k depends on every column before it, so the column loop
 * stays on the host. Inside it, the norm is a float sum (kept on the CPU, in
 * order); scaling column k is a parallel nest; updating the columns j > k is a
 * parallel nest over j whose bound k + 1 the column loop sets, each thread
 * summing its own dot product over i in the CPU's order. */
#include "kernel.h"

KERNEL void orthonormalize(float *a, float *r, int m, int n) {
    for (int k = 0; k < n; k++) {
        float s = 0.0f;
        for (int i = 0; i < m; i++)
            s += a[i * n + k] * a[i * n + k];
        float norm = __builtin_sqrtf(s);
        r[k * n + k] = norm;
        for (int i = 0; i < m; i++)
            a[i * n + k] = a[i * n + k] / norm;
        for (int j = k + 1; j < n; j++) {
            float d = 0.0f;
            for (int i = 0; i < m; i++)
                d += a[i * n + k] * a[i * n + j];
            r[k * n + j] = d;
            for (int i = 0; i < m; i++)
                a[i * n + j] = a[i * n + j] - a[i * n + k] * d;
        }
    }
}
