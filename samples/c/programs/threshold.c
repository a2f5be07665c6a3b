/* WASI program around kernels/threshold.c: a w x h byte image (default 64 x
 * 4096, so the row loop reaches the dispatch threshold), threshold 160.
 * Usage: threshold [w [h]]. */
#define KERNEL static inline
#include "../kernels/threshold.c"
#include "common.h"

int main(int argc, char **argv) {
    int w = arg_size(argc, argv, 1, 64);
    int h = arg_size(argc, argv, 2, 4096);
    size_t n = (size_t)w * (size_t)h;
    unsigned char *in = xmalloc(n);
    unsigned char *out = xmalloc(n);
    uint32_t s = 3;
    for (size_t i = 0; i < n; i++)
        in[i] = (unsigned char)(lcg_next(&s) >> 24);
    threshold(out, in, w, h, 160);
    uint32_t hash = 2166136261u;
    unsigned long long sum = 0;
    for (size_t i = 0; i < n; i++) {
        hash ^= out[i];
        hash *= 16777619u;
        sum += out[i];
    }
    printf("threshold: w=%d h=%d fnv1a=%08x sum=%llu first=%u last=%u\n", w, h, hash, sum,
           out[0], out[n - 1]);
    free(in);
    free(out);
    return 0;
}
