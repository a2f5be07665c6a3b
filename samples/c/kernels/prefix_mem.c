/* Must be rejected: iteration i reads a[i-2], which iteration i-2 wrote — a loop-carried
 * dependence through memory (distance 2, so clang -O2 keeps the load and the store). */
#include "kernel.h"

KERNEL void prefix_mem(float *restrict a, const float *b, int n) {
    for (int i = 2; i < n; i++)
        a[i] = a[i - 2] + b[i];
}
