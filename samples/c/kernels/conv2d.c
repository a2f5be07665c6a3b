/* Offloadable: single-channel "valid" 2-D convolution (cross-correlation), f32.
 * in is h x w, ker is kh x kw (sizes known only at run time),
 * out is (h - kh + 1) x (w - kw + 1), all row-major. */
#include "kernel.h"

KERNEL void conv2d(float *restrict out, const float *in, const float *ker,
                   int h, int w, int kh, int kw) {
    int oh = h - kh + 1, ow = w - kw + 1;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            float s = 0.0f;
            for (int ky = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++)
                    s += in[(y + ky) * w + (x + kx)] * ker[ky * kw + kx];
            out[y * ow + x] = s;
        }
}
