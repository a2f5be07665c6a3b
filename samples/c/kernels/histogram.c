/* Must be rejected: the store address comes from a load (hist[data[i]]),
 * so two iterations may hit the same bin. */
#include "kernel.h"

KERNEL void histogram(int *restrict hist, const unsigned char *data, int n) {
    for (int i = 0; i < n; i++)
        hist[data[i]]++;
}
