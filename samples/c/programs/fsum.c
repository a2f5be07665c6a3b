/* WASI program around kernels/fsum.c. Usage: fsum [n] (default 4096). */
#define KERNEL static inline
#include "../kernels/fsum.c"
#include "common.h"

int main(int argc, char **argv) {
    int n = arg_size(argc, argv, 1, 4096);
    float *a = xmalloc(sizeof(float) * (size_t)n);
    fill_f32(a, n, 16);
    float s = fsum(a, n);
    printf("fsum: n=%d sum=%.6f bits=%08x\n", n, (double)s, f32_bits(s));
    free(a);
    return 0;
}
