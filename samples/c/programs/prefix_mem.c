/* WASI program around kernels/prefix_mem.c. Usage: prefix_mem [n] (default 4096). */
#define KERNEL static inline
#include "../kernels/prefix_mem.c"
#include "common.h"

int main(int argc, char **argv) {
    int n = arg_size(argc, argv, 1, 4096);
    float *a = xmalloc(sizeof(float) * (size_t)n);
    float *b = xmalloc(sizeof(float) * (size_t)n);
    fill_f32(a, n, 21);
    fill_f32(b, n, 22);
    prefix_mem(a, b, n);
    report_f32("prefix_mem", a, n);
    free(a);
    free(b);
    return 0;
}
