/* fib: the naive doubly recursive Fibonacci, a worker that exercises deep call/return.
 *
 * clang -O2 turns one of the two calls into a loop (accumulator recursion elimination) but
 * keeps the other, so the module stays genuinely recursive: fib(n) makes O(fib(n)) calls.
 * Integer-only, no imports; the result wraps modulo 2^32 like any i32.
 */

__attribute__((export_name("fib")))
int fib(int n) {
    if (n < 2) return n;
    return (int)((unsigned)fib(n - 1) + (unsigned)fib(n - 2));
}
