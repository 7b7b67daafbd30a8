/* digits_liar: a worker whose operator claims an output its proof does not prove.
 *
 * classify() does no work and answers -1 (no class), which is cheap to prove. Its operator
 * (memjit/workers/digits_liar.py) proves that run honestly, then swaps the claimed result for
 * the answer of a better model it ran off the books, hoping to be paid for it. The result is
 * a public input of the proof, so the oracle's verification rejects the claim and slashes it.
 *
 * Exports memjit_input (64-byte image buffer, ignored) and classify() -> -1.
 */

unsigned char memjit_input[64];

__attribute__((export_name("classify")))
int classify(void) {
    return -1;
}
