/* WASI program around kernels/conv2d.c: a valid convolution of an h x w image
 * with a kh x kw kernel. Usage: conv2d [h w kh kw] (default 128 96 5 3). */
#define KERNEL static inline
#include "../kernels/conv2d.c"
#include "common.h"

int main(int argc, char **argv) {
    int h = arg_size(argc, argv, 1, 128);
    int w = arg_size(argc, argv, 2, 96);
    int kh = arg_size(argc, argv, 3, 5);
    int kw = arg_size(argc, argv, 4, 3);
    if (kh > h || kw > w) {
        fprintf(stderr, "kernel larger than image\n");
        return 2;
    }
    int oh = h - kh + 1, ow = w - kw + 1;
    float *in = xmalloc(sizeof(float) * (size_t)h * (size_t)w);
    float *ker = xmalloc(sizeof(float) * (size_t)kh * (size_t)kw);
    float *out = xmalloc(sizeof(float) * (size_t)oh * (size_t)ow);
    fill_f32(in, h * w, 8);
    fill_f32(ker, kh * kw, 9);
    conv2d(out, in, ker, h, w, kh, kw);
    report_f32("conv2d", out, oh * ow);
    free(in);
    free(ker);
    free(out);
    return 0;
}
