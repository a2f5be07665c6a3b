/* Offloadable: a byte-image threshold, out = in > t ? 255 : in / 2, over a
 * w x h image of bytes. clang -O2 unrolls the row by 2 and reuses one local:
 * first the store address of the iteration, later a loaded byte. The analysis
 * must follow which value of a local reaches each use (a regression sample). */
#include "kernel.h"

KERNEL void threshold(unsigned char *out, const unsigned char *in, int w, int h,
                      unsigned t) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned v = in[y * w + x];
            out[y * w + x] = v > t ? 255 : v >> 1;
        }
}
