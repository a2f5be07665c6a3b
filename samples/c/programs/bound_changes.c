/* WASI program around kernels/bound_changes.c: the loop stops early, after
 * about n / (1 + fraction of positive elements) iterations.
 * Usage: bound_changes [n] (default 4096). */
#define KERNEL static inline
#include "../kernels/bound_changes.c"
#include "common.h"

int main(int argc, char **argv) {
    int n = arg_size(argc, argv, 1, 4096);
    int32_t *a = xmalloc(sizeof(int32_t) * ((size_t)n + 1)); /* the kernel reads a[n] */
    uint32_t s = 18;
    for (int i = 0; i <= n; i++)
        a[i] = (int32_t)(lcg_next(&s) >> 24) - 128;
    bound_changes(a, n);
    int zeros = 0;
    while (zeros <= n && a[zeros] == 0)
        zeros++;
    printf("bound_changes: leading zeros=%d\n", zeros);
    report_i32("bound_changes", a, n + 1);
    free(a);
    return 0;
}
