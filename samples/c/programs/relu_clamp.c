/* WASI program around kernels/relu_clamp.c: clamp to [0, 0.5] in place.
 * Usage: relu_clamp [n] (default 4096). */
#define KERNEL static inline
#include "../kernels/relu_clamp.c"
#include "common.h"

int main(int argc, char **argv) {
    int n = arg_size(argc, argv, 1, 4096);
    float *x = xmalloc(sizeof(float) * (size_t)n);
    fill_f32(x, n, 5);
    relu_clamp(x, 0.0f, 0.5f, n);
    report_f32("relu_clamp", x, n);
    free(x);
    return 0;
}
