/* Offloadable inside a sequential loop: `steps` explicit diffusion steps on an
 * h x w grid of f32, ping-ponging u -> v -> u (the border is kept as it is).
 * Each step reads what the previous one wrote, so the time loop carries a
 * dependence and stays on the host; its two sweeps are parallel nests, each
 * offloaded on its own and dispatched once per step, in program order. */
#include "kernel.h"

KERNEL void diffuse_steps(float *u, float *v, int h, int w, int steps, float k) {
    for (int t = 0; t < steps; t++) {
        for (int y = 1; y < h - 1; y++)
            for (int x = 1; x < w - 1; x++) {
                float c = u[y * w + x];
                v[y * w + x] = c + k * (u[(y - 1) * w + x] + u[(y + 1) * w + x] +
                                        u[y * w + x - 1] + u[y * w + x + 1] - 4.0f * c);
            }
        for (int y = 1; y < h - 1; y++)
            for (int x = 1; x < w - 1; x++) {
                float c = v[y * w + x];
                u[y * w + x] = c + k * (v[(y - 1) * w + x] + v[(y + 1) * w + x] +
                                        v[y * w + x - 1] + v[y * w + x + 1] - 4.0f * c);
            }
    }
}
