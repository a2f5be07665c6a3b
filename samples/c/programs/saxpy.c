/* WASI program around kernels/saxpy.c: y = 2.5*x + y over static arrays of a
 * fixed size (constant trip count, constant base addresses). */
#define KERNEL static inline
#include "../kernels/saxpy.c"
#include "common.h"

#define N 4096
static float x[N], y[N];

int main(void) {
    fill_f32(x, N, 3);
    fill_f32(y, N, 4);
    saxpy(y, x, 2.5f, N);
    report_f32("saxpy", y, N);
    return 0;
}
