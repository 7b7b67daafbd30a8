/* memjit.h: memjit's precompiles for worker authors (see docs/precompiles.md).
 *
 * A worker may import these functions, and only these, from the wasm module "memjit"; the
 * sandbox runs them natively (fuel: one per 4 bytes of operand) and the proof checks each call
 * in the AIR's tensor table, four multiply-accumulates per row, reading the operands from the
 * memory the program wrote. Include it and call the memjit_* functions: they split long
 * products into calls the table proves (4-byte aligned, disjoint operands, a multiple of 4
 * bytes, at most MEMJIT_CHUNK) and compute any remainder in plain C.
 *
 *   int memjit_dot_i8i8(const signed char *a, const signed char *b, int n)
 *       sum of a[i] * b[i], i < n, int8 x int8, int32 accumulation (wrapping)
 *   int memjit_dot_i8u8(const signed char *a, const unsigned char *b, int n)
 *       the same with b unsigned (uint8: activations, pixels)
 *   void memjit_matvec_i8u8(const signed char *w, const unsigned char *x, const int *bias,
 *                           int *out, int rows, int cols)
 *       out[r] = bias[r] + dot(w + r * cols, x, cols) (bias may be 0)
 *   void memjit_requantize(const int *acc, unsigned char *out, int n, int shift, int max)
 *       out[i] = clamp(acc[i] >> shift, 0, max): a ReLU layer's int8 activations
 *
 * A module that imports a precompile must export its memory (clang does by default).
 */
#ifndef MEMJIT_H
#define MEMJIT_H

#define MEMJIT_CHUNK 2048

__attribute__((import_module("memjit"), import_name("dot_i8i8")))
int memjit_import_dot_i8i8(const signed char *a, const signed char *b, int n);
__attribute__((import_module("memjit"), import_name("dot_i8u8")))
int memjit_import_dot_i8u8(const signed char *a, const unsigned char *b, int n);

/* Whether the table proves a call on these operands (alignment, disjointness). */
static inline int memjit_provable(const void *a, const void *b, int n) {
    unsigned long x = (unsigned long)a, y = (unsigned long)b;
    return ((x | y) & 3) == 0 && (x + (unsigned long)n <= y || y + (unsigned long)n <= x);
}

static inline int memjit_dot_i8i8(const signed char *a, const signed char *b, int n) {
    int acc = 0;
    if (memjit_provable(a, b, n))
        for (; n >= 4; ) {
            int k = n < MEMJIT_CHUNK ? n & ~3 : MEMJIT_CHUNK;
            acc += memjit_import_dot_i8i8(a, b, k);
            a += k, b += k, n -= k;
        }
    for (int i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

static inline int memjit_dot_i8u8(const signed char *a, const unsigned char *b, int n) {
    int acc = 0;
    if (memjit_provable(a, b, n))
        for (; n >= 4; ) {
            int k = n < MEMJIT_CHUNK ? n & ~3 : MEMJIT_CHUNK;
            acc += memjit_import_dot_i8u8(a, b, k);
            a += k, b += k, n -= k;
        }
    for (int i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

static inline void memjit_matvec_i8u8(const signed char *w, const unsigned char *x,
                                      const int *bias, int *out, int rows, int cols) {
    /* checked once for the whole matrix: then one precompile call per row */
    const unsigned char *end = (const unsigned char *)(w + rows * cols);
    int direct = cols >= 4 && (cols & 3) == 0 && cols <= MEMJIT_CHUNK
                 && memjit_provable(w, x, 0)
                 && (x >= end || x + cols <= (const unsigned char *)w);
    for (int r = 0; r < rows; r++)
        out[r] = (bias ? bias[r] : 0)
                 + (direct ? memjit_import_dot_i8u8(w + r * cols, x, cols)
                           : memjit_dot_i8u8(w + r * cols, x, cols));
}

static inline void memjit_requantize(const int *acc, unsigned char *out, int n, int shift,
                                     int max) {
    for (int i = 0; i < n; i++) {
        int v = acc[i] >> shift;
        out[i] = (unsigned char)(v < 0 ? 0 : (v > max ? max : v));
    }
}

#endif
