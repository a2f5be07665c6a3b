/* Offloadable: elementwise f32 vector add. */
#include "kernel.h"

KERNEL void vadd(float *restrict c, const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++)
        c[i] = a[i] + b[i];
}
