/* Must be rejected: the loop body calls a function (kept out of line with
 * noinline, so the call survives -O2 in both builds). */
#include "kernel.h"

__attribute__((noinline)) static float smooth(float x) {
    return x * x / (1.0f + x * x);
}

KERNEL void calls_fn(float *restrict out, const float *in, int n) {
    for (int i = 0; i < n; i++)
        out[i] = smooth(in[i]);
}
