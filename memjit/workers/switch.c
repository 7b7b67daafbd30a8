/* switch: a tiny register machine whose dense switch clang -O2 lowers to a br_table.
 *
 * Each step decodes a pseudo-random opcode (xorshift32, 12 cases and a default over the low
 * four bits) and applies it to two registers. Integer-only, no imports.
 */

__attribute__((export_name("interp")))
int interp(int n, int seed) {
    unsigned x = (unsigned)seed | 1u;
    int acc = seed, reg = 1;
    for (int i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        switch (x & 15u) {
            case 0: acc += reg; break;
            case 1: acc -= reg; break;
            case 2: acc ^= (int)x; break;
            case 3: reg = reg * 3 + 1; break;
            case 4: acc <<= 1; break;
            case 5: reg ^= acc; break;
            case 6: acc = ~acc; break;
            case 7: reg += 7; break;
            case 8: acc += (int)(x >> 20); break;
            case 9: reg = acc - reg; break;
            case 10: acc |= reg; break;
            case 11: acc &= (int)(x >> 3); break;
            default: reg -= acc; break;
        }
    }
    return acc ^ reg;
}
