/* mix64: a hash mixer in 64-bit integer arithmetic: i64 division and remainder (signed and
 * unsigned, by run-time divisors of every size), rotations, bit counts, sign extensions and
 * 64-bit loads and stores through a small table in memory.
 *
 * xorshift64 drives everything, so clang -O2 keeps real i64.div/rem instructions (by
 * divisors of 12 bits up to 64 bits, which take different paths of memjit's i64 division); the
 * builtins become i64.rotl, i64.rotr, i64.clz, i64.ctz and i64.popcnt. Integer-only, no
 * imports.
 */

typedef unsigned long long u64;
typedef long long i64;

static u64 table[16];
static signed char bytes[64];

__attribute__((export_name("mix")))
long long mix(int n, long long seed) {
    u64 x = (u64)seed | 1ull;
    u64 acc = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        u64 small = (x & 0xFFF) + 3;                 /* divisors of every size */
        u64 d = x >> (x & 63) | 1ull;
        i64 sd = (i64)(x * 0xD6E8FEB86659FD93ull) >> (x >> 58);
        if (sd == 0) sd = -7;
        acc += (x / small) ^ ((x >> 3) % (d + 2));
        acc ^= (u64)((i64)acc / sd) + (u64)((i64)x % (i64)(small + 5));
        acc = __builtin_rotateleft64(acc, (unsigned)(x & 63)) ^ __builtin_rotateright64(x, 11);
        acc += (u64)__builtin_clzll(x | 1) * 3 + (u64)__builtin_ctzll(acc | (1ull << 63))
               + (u64)__builtin_popcountll(x ^ acc);
        table[i & 15] ^= acc;
        bytes[(i * 7) & 63] = (signed char)x;
        acc += (u64)(i64)bytes[(i * 5) & 63] + (u64)(i64)(short)(x >> 40)
               + (u64)(i64)(int)(acc >> 32) + table[(i + 3) & 15];
    }
    return (i64)acc;
}
