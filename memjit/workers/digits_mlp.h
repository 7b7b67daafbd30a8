/* digits_mlp.h: the int8 MLP digit classifier shared by digits_{small,large,random}.c.
 *
 * Include after a generated digits_*_weights.h (train_digits.py). 64 pixels (0..16) ->
 * DIGITS_HIDDEN ReLU units -> 10 classes; int32 accumulators, the hidden layer requantized by
 * an arithmetic right shift and clamped to [0, 127]; integer-only, no imports.
 *
 * Exports:
 *   memjit_input   global: address of the 64-byte input buffer (an 8x8 image, pixels 0..16)
 *   classify()     argmax class (0..9) of the image in the buffer; ties go to the lowest class
 */

unsigned char memjit_input[64];

__attribute__((export_name("classify")))
int classify(void) {
    int hidden[DIGITS_HIDDEN];
    for (int j = 0; j < DIGITS_HIDDEN; j++) {
        int acc = B1[j];
        for (int i = 0; i < 64; i++) acc += W1[j][i] * memjit_input[i];
        acc >>= DIGITS_SHIFT1;
        hidden[j] = acc < 0 ? 0 : (acc > 127 ? 127 : acc);
    }
    int best = 0, best_score = 0;
    for (int k = 0; k < 10; k++) {
        int acc = B2[k];
        for (int j = 0; j < DIGITS_HIDDEN; j++) acc += W2[k][j] * hidden[j];
        if (k == 0 || acc > best_score) {
            best = k;
            best_score = acc;
        }
    }
    return best;
}
