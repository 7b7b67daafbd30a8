/* dense: one int8 dense layer with ReLU, the smallest tensor worker.
 *
 * The caller writes an int8 vector of up to IN values into `memjit_input` and passes its length;
 * the worker writes OUT int32 activations relu(W x + b) to `memjit_output` and returns the
 * number of output bytes. Weights are a fixed pseudo-random pattern, so the answer is easy to
 * recompute in numpy (tests/test_tensor_io.py does).
 */

#define IN 32
#define OUT 8

signed char memjit_input[IN];
int memjit_output[OUT];

__attribute__((export_name("dense")))
int dense(int n) {
    if (n > IN) n = IN;
    for (int o = 0; o < OUT; o++) {
        int acc = o - 4;
        for (int i = 0; i < n; i++) {
            int w = ((o * 7 + i * 13) & 15) - 8;
            acc += w * memjit_input[i];
        }
        memjit_output[o] = acc > 0 ? acc : 0;
    }
    return OUT * (int)sizeof(int);
}
