/* Offloadable: out (cols x rows) = transpose of in (rows x cols), f32, row-major. */
#include "kernel.h"

KERNEL void transpose(float *restrict out, const float *in, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            out[j * rows + i] = in[i * cols + j];
}
