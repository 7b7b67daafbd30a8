/* strops: everyday C that the VM could not prove before issue 19, as clang -O2 compiles it.
 *
 * - a 4-byte compare on a char* is one `i32.load align=1`, at unaligned addresses too;
 * - a bump allocator grows the memory with memory.grow, and wasm-ld declares no maximum, so
 *   the memory is bounded by the sandbox's cap alone (part of the verification key);
 * - the helpers return nothing.
 * count(n, seed): allocate n fresh heap bytes, fill their last min(n, 512) from a xorshift32
 * stream over "abcd" (seed | 1, one step per byte, the low two bits pick the letter), and count
 * the offsets where "abcd" starts there; -1 if the memory cannot grow that far.
 * Integer-only, no imports.
 */

extern unsigned char __heap_base;
static unsigned long top;

static unsigned char *alloc(unsigned long n) {
    if (!top) top = (unsigned long)&__heap_base;
    unsigned long end = top + n, have = __builtin_wasm_memory_size(0) << 16;
    if (end < top) return 0;
    unsigned long grow = (end - have + 65535) >> 16;
    if (end > have && __builtin_wasm_memory_grow(0, grow) == (unsigned long)-1)
        return 0;
    unsigned char *p = (unsigned char *)top;
    top = end;
    return p;
}

static void fill(unsigned char *p, unsigned long n, unsigned seed) {
    for (unsigned long i = 0; i < n; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        p[i] = "abcd"[seed & 3];
    }
}

static int same4(const unsigned char *a, const char *b) {
    unsigned x, y;
    __builtin_memcpy(&x, a, 4);
    __builtin_memcpy(&y, b, 4);
    return x == y;
}

__attribute__((export_name("count")))
int count(int n, int seed) {
    if (n < 0) return -1;
    unsigned char *p = alloc((unsigned long)n);
    if (!p) return -1;
    int m = n < 512 ? n : 512;
    p += n - m;
    fill(p, (unsigned long)m, (unsigned)seed | 1);
    int hits = 0;
    for (int i = 0; i + 4 <= m; i++) hits += same4(p + i, "abcd");
    return hits;
}
