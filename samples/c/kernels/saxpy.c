/* Offloadable: y = a*x + y (f32). y is read and written at the same index. */
#include "kernel.h"

KERNEL void saxpy(float *restrict y, const float *x, float a, int n) {
    for (int i = 0; i < n; i++)
        y[i] = a * x[i] + y[i];
}
