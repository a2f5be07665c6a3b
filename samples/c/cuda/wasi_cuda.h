/* wasi_cuda.h: explicit GPU access for wasm32 guests run by `tensorwasm run` or `tensorwasmd`.
 *
 * The contract is wit/wasi-cuda.wit. Every function returns a non-negative value on success and
 * a negative WASI_CUDA_E* code on failure; wasi_cuda_last_error() then gives the message. On a
 * host without a device (backend `none`) every call fails with WASI_CUDA_ENOTAVAILABLE, so a
 * guest keeps a CPU path and takes it then. Launches are synchronous. Pointers are checked by
 * the host: a bad one gives WASI_CUDA_EBADPOINTER, never a trap, and nothing is written.
 *
 * Header-only; nothing to link. Compile with clang --target=wasm32-wasi.
 */
#ifndef WASI_CUDA_H
#define WASI_CUDA_H

#include <stdint.h>

#define WASI_CUDA_ENOTAVAILABLE (-1) /* no device */
#define WASI_CUDA_EBADPOINTER (-2)   /* guest or device range out of bounds */
#define WASI_CUDA_EMALFORMEDPTX (-3) /* PTX not UTF-8 or does not parse */
#define WASI_CUDA_ELAUNCH (-4)       /* launch failed; buffer contents unspecified */
#define WASI_CUDA_EQUOTA (-5)        /* a per-invocation limit */
#define WASI_CUDA_EBADHANDLE (-6)    /* unknown or freed handle */
#define WASI_CUDA_EBADARG (-7)       /* malformed argument record or entry name */

/* Argument kinds of a launch record. */
#define WASI_CUDA_ARG_U32 1u
#define WASI_CUDA_ARG_U64 2u
#define WASI_CUDA_ARG_F32 3u
#define WASI_CUDA_ARG_F64 4u
#define WASI_CUDA_ARG_BUFFER 5u /* value: a buffer handle; the kernel gets its device address */

/* One kernel argument: 16 bytes, little-endian. */
typedef struct {
    uint32_t kind;
    uint32_t reserved; /* must be 0 */
    uint64_t value;
} wasi_cuda_arg;

/* Grid and block dimensions of a launch. */
typedef struct {
    uint32_t grid[3];
    uint32_t block[3];
} wasi_cuda_dims;

#define WASI_CUDA_IMPORT(name) __attribute__((import_module("wasi:cuda"), import_name(name)))

WASI_CUDA_IMPORT("device_count") int32_t wasi_cuda_device_count(void);
WASI_CUDA_IMPORT("module_load") int32_t wasi_cuda_module_load(const char *ptx, uint32_t len);
WASI_CUDA_IMPORT("mem_alloc") int32_t wasi_cuda_mem_alloc(uint32_t size);
WASI_CUDA_IMPORT("mem_free") int32_t wasi_cuda_mem_free(int32_t buffer);
WASI_CUDA_IMPORT("memcpy_htod")
int32_t wasi_cuda_memcpy_htod(int32_t buffer, uint32_t offset, const void *src, uint32_t len);
WASI_CUDA_IMPORT("memcpy_dtoh")
int32_t wasi_cuda_memcpy_dtoh(void *dst, int32_t buffer, uint32_t offset, uint32_t len);
WASI_CUDA_IMPORT("launch")
int32_t wasi_cuda_launch(int32_t module, const char *name, uint32_t name_len,
                         const wasi_cuda_dims *dims, const wasi_cuda_arg *args, uint32_t nargs);
WASI_CUDA_IMPORT("synchronize") int32_t wasi_cuda_synchronize(void);
WASI_CUDA_IMPORT("last_error") int32_t wasi_cuda_last_error(char *buf, uint32_t len);

static inline wasi_cuda_arg wasi_cuda_u32(uint32_t v) {
    wasi_cuda_arg a = {WASI_CUDA_ARG_U32, 0, v};
    return a;
}

static inline wasi_cuda_arg wasi_cuda_u64(uint64_t v) {
    wasi_cuda_arg a = {WASI_CUDA_ARG_U64, 0, v};
    return a;
}

static inline wasi_cuda_arg wasi_cuda_f32(float v) {
    union {
        float f;
        uint32_t u;
    } bits = {v};
    wasi_cuda_arg a = {WASI_CUDA_ARG_F32, 0, bits.u};
    return a;
}

static inline wasi_cuda_arg wasi_cuda_f64(double v) {
    union {
        double f;
        uint64_t u;
    } bits = {v};
    wasi_cuda_arg a = {WASI_CUDA_ARG_F64, 0, bits.u};
    return a;
}

static inline wasi_cuda_arg wasi_cuda_buffer(int32_t handle) {
    wasi_cuda_arg a = {WASI_CUDA_ARG_BUFFER, 0, (uint64_t)(uint32_t)handle};
    return a;
}

#endif /* WASI_CUDA_H */
