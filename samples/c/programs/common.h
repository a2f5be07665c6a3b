/* Helpers shared by the WASI sample programs: deterministic inputs and an
 * exact checksum of the outputs. Everything here is static and gets inlined
 * into main by clang -O2, so main also holds these (non-offloadable) loops:
 * the LCG and the hash carry a value from one iteration to the next. */
#ifndef TENSORWASM_SAMPLES_COMMON_H
#define TENSORWASM_SAMPLES_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The problem size: argv[1] if given, otherwise the default. Reading it at run
 * time keeps clang from folding the computation; the recorded .stdout files
 * are for a run with no arguments. */
static inline int arg_size(int argc, char **argv, int index, int dflt) {
    if (argc > index) {
        int v = atoi(argv[index]);
        if (v > 0)
            return v;
    }
    return dflt;
}

static inline void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* A 32-bit LCG (Numerical Recipes constants). */
static inline uint32_t lcg_next(uint32_t *state) {
    *state = *state * 1664525u + 1013904223u;
    return *state;
}

/* Fill with exactly representable floats in [-1, 1): multiples of 2^-12. */
static inline void fill_f32(float *p, int n, uint32_t seed) {
    uint32_t s = seed;
    for (int i = 0; i < n; i++)
        p[i] = (float)((int32_t)(lcg_next(&s) >> 20) - 2048) * (1.0f / 2048.0f);
}

/* FNV-1a over the bit patterns: exact, so any change in any bit shows.
 * (memcpy reads the bits without breaking strict aliasing; it is one load.) */
static inline uint32_t hash_bits(const void *p, int n) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, (const char *)p + 4 * (size_t)i, 4);
        h ^= v;
        h *= 16777619u;
    }
    return h;
}

static inline uint32_t f32_bits(float f) {
    uint32_t v;
    memcpy(&v, &f, 4);
    return v;
}

static inline void report_f32(const char *name, const float *p, int n) {
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += p[i];
    printf("%s: n=%d fnv1a=%08x sum=%.6f first=%08x last=%08x\n", name, n, hash_bits(p, n),
           sum, f32_bits(p[0]), f32_bits(p[n - 1]));
}

static inline void report_i32(const char *name, const int32_t *p, int n) {
    int64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += p[i];
    printf("%s: n=%d fnv1a=%08x sum=%lld first=%d last=%d\n", name, n,
           hash_bits(p, n), (long long)sum, (int)p[0], (int)p[n - 1]);
}

#endif
