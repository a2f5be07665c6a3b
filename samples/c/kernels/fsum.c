/* Must be rejected: a sequential f32 sum; a parallel reduction would change
 * the rounding, so float reductions are not offloaded. */
#include "kernel.h"

KERNEL float fsum(const float *a, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += a[i];
    return s;
}
