/* WASI program around kernels/histogram.c: 256 bins over n random bytes.
 * Usage: histogram [n] (default 8192). */
#define KERNEL static inline
#include "../kernels/histogram.c"
#include "common.h"

int main(int argc, char **argv) {
    int n = arg_size(argc, argv, 1, 8192);
    unsigned char *data = xmalloc((size_t)n);
    int *hist = calloc(256, sizeof(int));
    if (!hist)
        return 1;
    uint32_t s = 14;
    for (int i = 0; i < n; i++)
        data[i] = (unsigned char)(lcg_next(&s) >> 24);
    histogram(hist, data, n);
    report_i32("histogram", hist, 256);
    free(data);
    free(hist);
    return 0;
}
