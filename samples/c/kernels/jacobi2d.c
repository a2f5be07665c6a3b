/* Offloadable: one Jacobi sweep of a 5-point stencil, f32, h x w row-major.
 * Reads `in`, writes the interior points 1..h-2 x 1..w-2 of `out`. */
#include "kernel.h"

KERNEL void jacobi2d(float *restrict out, const float *in, int h, int w) {
    for (int i = 1; i < h - 1; i++)
        for (int j = 1; j < w - 1; j++)
            out[i * w + j] = 0.2f * (in[i * w + j] + in[(i - 1) * w + j] + in[(i + 1) * w + j] +
                                     in[i * w + (j - 1)] + in[i * w + (j + 1)]);
}
