/* digits_mlp_dot.h: the int8 MLP digit classifier of digits_mlp.h on memjit's precompiles.
 *
 * Include after a generated digits_*_weights.h. Same model and the same answers as
 * digits_mlp.h (the plain-C version, kept for comparison), with each layer a matrix-vector
 * product of memjit.h: the hidden activations are stored as uint8 (0..127), so the second
 * layer is a dot_i8u8 too.
 *
 * Exports:
 *   memjit_input   global: address of the 64-byte input buffer (an 8x8 image, pixels 0..16)
 *   classify()     argmax class (0..9) of the image in the buffer; ties go to the lowest class
 */
#include "memjit.h"

unsigned char memjit_input[64] __attribute__((aligned(16)));
static unsigned char hidden[DIGITS_HIDDEN] __attribute__((aligned(16)));

__attribute__((export_name("classify")))
int classify(void) {
    int acc[DIGITS_HIDDEN > 10 ? DIGITS_HIDDEN : 10];
    memjit_matvec_i8u8(&W1[0][0], memjit_input, B1, acc, DIGITS_HIDDEN, 64);
    memjit_requantize(acc, hidden, DIGITS_HIDDEN, DIGITS_SHIFT1, 127);
    memjit_matvec_i8u8(&W2[0][0], hidden, B2, acc, 10, DIGITS_HIDDEN);
    int best = 0;
    for (int k = 1; k < 10; k++)
        if (acc[k] > acc[best]) best = k;
    return best;
}
