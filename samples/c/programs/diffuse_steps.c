/* WASI program around kernels/diffuse_steps.c: h x w = 96 x 96 (94 x 94 = 8836
 * threads per sweep), 6 steps, k = 0.125. Usage: diffuse_steps [h [w [steps]]]. */
#define KERNEL static inline
#include "../kernels/diffuse_steps.c"
#include "common.h"

int main(int argc, char **argv) {
    int h = arg_size(argc, argv, 1, 96);
    int w = arg_size(argc, argv, 2, 96);
    int steps = arg_size(argc, argv, 3, 6);
    int n = h * w;
    float *u = xmalloc(sizeof(float) * (size_t)n);
    float *v = xmalloc(sizeof(float) * (size_t)n);
    fill_f32(u, n, 21);
    fill_f32(v, n, 22);
    diffuse_steps(u, v, h, w, steps, 0.125f);
    report_f32("diffuse_steps u", u, n);
    report_f32("diffuse_steps v", v, n);
    free(u);
    free(v);
    return 0;
}
