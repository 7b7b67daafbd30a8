/* fnv64: FNV-1a-64 over a stream of xorshift64* bytes, a worker in 64-bit integer arithmetic.
 *
 * The state and the hash are uint64_t, so clang -O2 emits i64 mul, xor, shifts, extends and
 * wraps; the result is the hash folded to 32 bits. Integer-only, no imports.
 */

typedef unsigned long long u64;

__attribute__((export_name("fnv")))
int fnv(int n, int seed) {
    u64 x = (u64)(unsigned)seed * 0x9E3779B97F4A7C15ull | 1ull;
    u64 h = 0xCBF29CE484222325ull;
    for (int i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        u64 r = x * 0x2545F4914F6CDD1Dull;
        h = (h ^ (r >> 56)) * 0x100000001B3ull;
    }
    return (int)(h ^ (h >> 32));
}
