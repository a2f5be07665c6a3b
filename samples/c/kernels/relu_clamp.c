/* Offloadable: in-place clamp of f32 to [lo, hi] (lo = 0 gives a clamped ReLU,
 * e.g. ReLU6). The stores are conditional, so the loop body keeps real
 * branches: an element inside [lo, hi] (or NaN) is not written at all. */
#include "kernel.h"

KERNEL void relu_clamp(float *x, float lo, float hi, int n) {
    for (int i = 0; i < n; i++) {
        float v = x[i];
        if (v < lo)
            x[i] = lo;
        else if (v > hi)
            x[i] = hi;
    }
}
