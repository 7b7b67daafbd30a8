/* crc32: CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) of n pseudo-random bytes.
 *
 * The bytes come from xorshift32 seeded by `seed` (a zero seed is replaced by a fixed constant,
 * since xorshift32 would stay at 0). The CRC is computed bitwise, without a table, so the
 * hot loop is only i32 and/xor/shift/sub: the first instructions the VM AIR proves.
 */

static unsigned xorshift32(unsigned x) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}

__attribute__((export_name("crc32")))
int crc32(int n, int seed) {
    unsigned x = seed ? (unsigned)seed : 0x9E3779B9u;
    unsigned crc = 0xFFFFFFFFu;
    for (int i = 0; i < n; i++) {
        x = xorshift32(x);
        crc ^= x & 0xFFu;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return (int)~crc;
}
