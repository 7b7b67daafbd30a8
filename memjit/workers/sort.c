/* sort: fill an array of n i32 from xorshift32(seed), heap-sort it in place, return a checksum.
 *
 * Heap sort is non-recursive and O(n log n), so n = 4096 stays around a million steps.
 * The checksum sum(a[i] * (i + 1)) mod 2^32 depends on the sorted order, so a wrong sort
 * is observable from the result alone. n < 0 counts as 0; n > SORT_MAX traps (unreachable).
 */

#define SORT_MAX 4096

static int a[SORT_MAX];

static unsigned xorshift32(unsigned x) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}

static void sift_down(int *v, int root, int end) {
    int x = v[root];
    for (;;) {
        int child = 2 * root + 1;
        if (child >= end) break;
        if (child + 1 < end && v[child + 1] > v[child]) child++;
        if (v[child] <= x) break;
        v[root] = v[child];
        root = child;
    }
    v[root] = x;
}

__attribute__((export_name("sort")))
int sort(int n, int seed) {
    if (n > SORT_MAX) __builtin_trap();
    if (n < 0) n = 0;
    unsigned x = seed ? (unsigned)seed : 0x9E3779B9u;
    for (int i = 0; i < n; i++) {
        x = xorshift32(x);
        a[i] = (int)x;
    }
    for (int i = n / 2 - 1; i >= 0; i--) sift_down(a, i, n);
    for (int end = n - 1; end > 0; end--) {
        int t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
    unsigned sum = 0;
    for (int i = 0; i < n; i++) sum += (unsigned)a[i] * (unsigned)(i + 1);
    return (int)sum;
}
