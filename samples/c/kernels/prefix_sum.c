/* Must be rejected: iteration i reads what iteration i-1 wrote (a carried
 * dependence). clang -O2 may keep out[i-1] in a register, turning it into a
 * carried f32 value instead of a carried memory dependence. */
#include "kernel.h"

KERNEL void prefix_sum(float *restrict out, const float *in, int n) {
    if (n <= 0)
        return;
    out[0] = in[0];
    for (int i = 1; i < n; i++)
        out[i] = out[i - 1] + in[i];
}
