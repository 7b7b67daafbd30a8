/* digits_mlp_dot.h: the int8 MLP digit classifier of digits_mlp.h on memjit's precompiles.
 *
 * Include after a generated digits_*_weights.h. Same model and the same answers as
 * digits_mlp.h (the plain-C version, kept for comparison), with each layer a matrix-vector
 * product on memjit.h's dot_i8u8: the hidden activations are stored as uint8 (0..127), so the
 * second layer is a dot_i8u8 too.
 *
 * Exports:
 *   memjit_input   global: address of the 64-byte input buffer (an 8x8 image, pixels 0..16)
 *   classify()     argmax class (0..9) of the image in the buffer; ties go to the lowest class
 */
#include "memjit.h"

/* Every call below meets the table's preconditions (memjit.h): the weight rows are 64 or
 * DIGITS_HIDDEN bytes (multiples of 4, at most MEMJIT_CHUNK) of 16-byte aligned arrays, and
 * the activations live in buffers of their own; so the imports are called directly, one call
 * per output, with the bias, the requantization and the argmax fused around them. */
unsigned char memjit_input[64] __attribute__((aligned(16)));
static unsigned char hidden[DIGITS_HIDDEN] __attribute__((aligned(16)));

__attribute__((export_name("classify")))
int classify(void) {
    for (int j = 0; j < DIGITS_HIDDEN; j++) {
        int acc = (B1[j] + memjit_import_dot_i8u8(W1[j], memjit_input, 64)) >> DIGITS_SHIFT1;
        hidden[j] = (unsigned char)(acc < 0 ? 0 : (acc > 127 ? 127 : acc));
    }
    int best = 0, best_score = 0;
    for (int k = 0; k < 10; k++) {
        int acc = B2[k] + memjit_import_dot_i8u8(W2[k], hidden, DIGITS_HIDDEN);
        if (k == 0 || acc > best_score) {
            best = k;
            best_score = acc;
        }
    }
    return best;
}
