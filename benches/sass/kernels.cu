// The code-quality benchmark's reference kernels: the same five kernels as TensorWasm's
// KernelIR samples (blueprints/src/samples.rs: vadd, saxpy, matmul, conv2d, stencil2d),
// written plainly in CUDA C. One output per thread, the same index mapping (x is the
// innermost array dimension), the same parameter order and types (32-bit int indices), and
// the same summation order as the KernelIR, so that with `-fmad=false` every kernel computes
// the same bits as ours. Compiled by benches/sass/compare.sh:
//   nvcc -arch=sm_80 -cubin -O3 -fmad=false -ftz=false -prec-div=true -prec-sqrt=true

// c[i] = a[i] + b[i]
extern "C" __global__ void vadd(const float *a, const float *b, float *c, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    c[i] = a[i] + b[i];
}

// y[i] = alpha * x[i] + y[i] (a multiply then an add: -fmad=false keeps them apart)
extern "C" __global__ void saxpy(const float *x, float *y, float alpha, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    y[i] = alpha * x[i] + y[i];
}

// c[i][j] = sum over l in 0..k, in order, of a[i][l] * b[l][j]; j on x, i on y.
extern "C" __global__ void matmul(const float *a, const float *b, float *c, int m, int n, int k) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) return;
    int i = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= m) return;
    float acc = 0.0f;
    for (int l = 0; l < k; l++) acc += a[i * k + l] * b[l * n + j];
    c[i * n + j] = acc;
}

// Valid single-channel 2D convolution (cross-correlation): out[y][x] = sum over ky in 0..kh,
// then kx in 0..kw, of in[y+ky][x+kx] * k[ky][kx]; x on x, y on y; in is w wide.
extern "C" __global__ void conv2d(const float *in, const float *k, float *out, int w, int ow,
                                  int oh, int kh, int kw) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    if (x >= ow) return;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (y >= oh) return;
    float acc = 0.0f;
    for (int ky = 0; ky < kh; ky++)
        for (int kx = 0; kx < kw; kx++) acc += in[(y + ky) * w + (x + kx)] * k[ky * kw + kx];
    out[y * ow + x] = acc;
}

// Jacobi (the stencil2d sample): out[i][j] = 0.25 * (((in[i-1][j] + in[i+1][j]) + in[i][j-1])
// + in[i][j+1]) over the interior, j = 1 + tid.x < 1 + tw, i = 1 + tid.y < 1 + th.
extern "C" __global__ void stencil2d(const float *in, float *out, int w, int tw, int th) {
    int tj = blockIdx.x * blockDim.x + threadIdx.x;
    if (tj >= tw) return;
    int ti = blockIdx.y * blockDim.y + threadIdx.y;
    if (ti >= th) return;
    int i = ti + 1, j = tj + 1;
    float s = ((in[(i - 1) * w + j] + in[(i + 1) * w + j]) + in[i * w + j - 1]) + in[i * w + j + 1];
    out[i * w + j] = 0.25f * s;
}
