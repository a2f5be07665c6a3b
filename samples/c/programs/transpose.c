/* WASI program around kernels/transpose.c: transpose a fixed 64 x 96 matrix
 * in static arrays (constant trip counts and base addresses). */
#define KERNEL static inline
#include "../kernels/transpose.c"
#include "common.h"

#define ROWS 64
#define COLS 96
static float in[ROWS * COLS], out[COLS * ROWS];

int main(void) {
    fill_f32(in, ROWS * COLS, 11);
    transpose(out, in, ROWS, COLS);
    report_f32("transpose", out, ROWS * COLS);
    return 0;
}
