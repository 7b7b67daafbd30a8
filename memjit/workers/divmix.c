/* divmix: a hash mixer built from i32 division, remainder, rotations and bit counting.
 *
 * xorshift32 drives signed and unsigned division and remainder by run-time (never constant,
 * never zero) divisors, so clang -O2 keeps real i32.div/rem instructions; the builtins
 * become i32.rotl, i32.rotr, i32.clz, i32.ctz and i32.popcnt. Integer-only, no imports.
 */

__attribute__((export_name("mix")))
int mix(int n, int seed) {
    unsigned x = (unsigned)seed | 1u;
    unsigned acc = 0x9E3779B9u;
    int s = seed;
    for (int i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        unsigned d = (x & 0xFFFFu) | 1u;
        int sd = (int)(x >> 16) - 30000;
        if (sd == 0) sd = -7;
        acc += (x / d) ^ ((x >> 5) % (d + 2u));
        acc = __builtin_rotateleft32(acc, x) ^ __builtin_rotateright32(acc, x >> 27);
        acc += (unsigned)(__builtin_popcount(x) + __builtin_clz(x | 1u) + __builtin_ctz(x | 0x80000000u));
        s = s * 31 + s / sd + (int)x % (sd | 3);
    }
    return (int)(acc ^ (unsigned)s);
}
