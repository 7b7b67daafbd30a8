/* digits_loop: a worker that never answers; the sandbox must stop it (fuel or deadline).
 *
 * Exports memjit_input (64-byte image buffer) and classify(), which sums the image forever.
 * The volatile accumulator keeps the compiler from removing the loop.
 */

unsigned char memjit_input[64];
volatile int memjit_sink;

__attribute__((export_name("classify")))
int classify(void) {
    for (unsigned i = 0;; i++) memjit_sink += memjit_input[i & 63u];
}
