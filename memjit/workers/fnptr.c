/* fnptr: folds a pseudo-random sequence through a table of function pointers.
 *
 * The operator is picked at run time (xorshift32), so clang -O2 keeps the indirect call: a
 * call_indirect through the module's function table, with its type check. Integer-only, no
 * imports.
 */

typedef int (*binop)(int, int);

static int op_add(int a, int b) { return a + b; }
static int op_sub(int a, int b) { return a - b; }
static int op_mul(int a, int b) { return a * (b | 1); }
static int op_xor(int a, int b) { return a ^ b; }
static int op_max(int a, int b) { return a > b ? a : b; }
static int op_min(int a, int b) { return a < b ? a : b; }
static int op_shl(int a, int b) { return (int)((unsigned)a << (b & 7)); }
static int op_avg(int a, int b) { return (a >> 1) + (b >> 1); }

static binop const ops[8] = {op_add, op_sub, op_mul, op_xor, op_max, op_min, op_shl, op_avg};

__attribute__((export_name("apply")))
int apply(int n, int seed) {
    unsigned x = (unsigned)seed | 1u;
    int acc = seed;
    for (int i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        acc = ops[x & 7u](acc, (int)(x >> 8));
    }
    return acc;
}
