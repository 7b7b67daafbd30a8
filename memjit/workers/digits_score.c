/* digits_score: the scorer of the digits task: 1000000 for the right class, 0 otherwise.
 *
 * Exports score(predicted, label) -> i32 in 0..1000000; deterministic, integer-only.
 */

__attribute__((export_name("score")))
int score(int predicted, int label) {
    return predicted == label ? 1000000 : 0;
}
