/* Must be rejected: the loop bound n changes inside the loop, depending on
 * data, so the trip count is not known at loop entry.
 * Reads a[0..n] (one element past the last one it writes). */
#include "kernel.h"

KERNEL void bound_changes(int *a, int n) {
    int i = 0;
    while (i < n) {
        a[i] = 0;
        if (a[i + 1] > 0)
            n--;
        i++;
    }
}
