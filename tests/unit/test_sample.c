/* test_sample.c: the deterministic padded-adjacency sampler (worker/sample.h).
 *  - columns: a permutation prefix, a pure function of (seed, step, hop),
 *    uniform over steps;
 *  - samples: independent of the order and of the rank split of the targets,
 *    and of the local numbering (keyed by global id);
 *  - 0 < deg < cap: resampling with replacement, uniform over the neighbours;
 *  - deg 0: the dummy; deg >= cap: column c is entry c (no replacement, only
 *    the first cap entries);
 *  - explicit lists (the query path) and argument errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_log.h"
#include "mms_rng.h"
#include "mms_test.h"
#include "sample.h"

/* chi-square statistic of counts against a uniform expectation */
static double chi2(const int64_t *cnt, int k) {
    double tot = 0, s = 0;
    for (int i = 0; i < k; i++) tot += (double)cnt[i];
    double e = tot / k;
    for (int i = 0; i < k; i++) s += ((double)cnt[i] - e) * ((double)cnt[i] - e) / e;
    return s;
}

static void test_columns(void) {
    int32_t a[25], b[25], c[25];
    T_OK(mms_sample_columns(1, 7, 2, 100, 25, a));
    T_OK(mms_sample_columns(1, 7, 2, 100, 25, b));
    T_CHECK(memcmp(a, b, sizeof a) == 0); /* deterministic */
    int seen[100] = {0}, dup = 0, range = 1;
    for (int j = 0; j < 25; j++) {
        if (a[j] < 0 || a[j] >= 100) range = 0;
        else dup += seen[a[j]]++;
    }
    T_CHECK(range && dup == 0); /* distinct columns of 0..99 */
    T_OK(mms_sample_columns(1, 8, 2, 100, 25, c));
    T_CHECK(memcmp(a, c, sizeof a) != 0); /* another step */
    T_OK(mms_sample_columns(1, 7, 1, 100, 25, c));
    T_CHECK(memcmp(a, c, sizeof a) != 0); /* another hop */
    T_OK(mms_sample_columns(2, 7, 2, 100, 25, c));
    T_CHECK(memcmp(a, c, sizeof a) != 0); /* another seed */
    /* the prefix of a longer draw is the shorter draw (one permutation per key) */
    int32_t full[100];
    T_OK(mms_sample_columns(1, 7, 2, 100, 100, full));
    T_CHECK(memcmp(a, full, sizeof a) == 0);
    memset(seen, 0, sizeof seen);
    dup = 0;
    for (int j = 0; j < 100; j++) dup += seen[full[j]]++;
    T_EQ_INT(dup, 0);
    /* uniformity over steps: first column and 5th column, cap 10 */
    int64_t first[10] = {0}, fifth[10] = {0};
    for (uint64_t s = 0; s < 20000; s++) {
        int32_t k5[5];
        T_CHECK(mms_sample_columns(3, s, 1, 10, 5, k5) == MMS_OK);
        first[k5[0]]++;
        fifth[k5[4]]++;
    }
    double x1 = chi2(first, 10), x5 = chi2(fifth, 10);
    printf("columns over 20000 steps: chi2(9 dof) first %.1f, fifth %.1f (p=0.001 bound 27.9)\n",
           x1, x5);
    T_CHECK(x1 < 27.9 && x5 < 27.9);
}

/* A graph of n nodes: node v has degree deg[v], neighbour list base + 0..deg-1
 * scrambled (mod n); degrees cover 0, 1, 7, 99, 100 and 130 for cap 100. */
typedef struct {
    int64_t n;
    int64_t *indptr, *indices, *gid;
    mms_csr_t adj;
} g_t;

static void make(g_t *g, int64_t n, const int *degs, int ndeg) {
    g->n = n;
    g->indptr = calloc((size_t)n + 1, sizeof(int64_t));
    int64_t tot = 0;
    for (int64_t v = 0; v < n; v++) tot += degs[v % ndeg];
    g->indices = calloc((size_t)tot + 1, sizeof(int64_t));
    g->gid = calloc((size_t)n, sizeof(int64_t));
    int64_t p = 0;
    for (int64_t v = 0; v < n; v++) {
        g->indptr[v] = p;
        for (int e = 0; e < degs[v % ndeg]; e++) g->indices[p++] = (v * 31 + e * 17 + 1) % n;
        g->gid[v] = v;
    }
    g->indptr[n] = p;
    g->adj = (mms_csr_t){n, g->indptr, g->indices, NULL};
}

static void drop(g_t *g) {
    free(g->indptr), free(g->indices), free(g->gid);
}

static void test_degrees(void) {
    const int degs[] = {0, 1, 7, 99, 100, 130};
    g_t g;
    make(&g, 600, degs, 6);
    int32_t cols[10];
    T_OK(mms_sample_columns(5, 0, 1, 100, 10, cols));
    int dummy_ok = 1, one_ok = 1, cap_ok = 1, over_ok = 1, member_ok = 1;
    for (int32_t v = 0; v < 600; v++) {
        int32_t out[10];
        T_CHECK(mms_sample_neighbours(&g.adj, g.gid, 5, 100, cols, 10, &v, 1, out) == MMS_OK);
        int d = degs[v % 6];
        const int64_t *nb = g.indices + g.indptr[v];
        for (int j = 0; j < 10; j++) {
            if (d == 0) dummy_ok &= out[j] == MMS_SAMPLE_DUMMY;
            if (d == 1) one_ok &= out[j] == nb[0];
            if (d == 100) cap_ok &= out[j] == nb[cols[j]]; /* distinct columns: no replacement */
            if (d == 130) over_ok &= out[j] == nb[cols[j]]; /* only the first cap entries */
            if (d > 0) {
                int in = 0;
                for (int e = 0; e < d; e++) in |= nb[e] == out[j];
                member_ok &= in;
            }
        }
    }
    T_CHECK(dummy_ok);
    T_CHECK(one_ok);
    T_CHECK(cap_ok);
    T_CHECK(over_ok);
    T_CHECK(member_ok);
    /* the padded row is fixed for the run: a node's column c does not depend on the step */
    T_EQ_INT(mms_sample_padded(&g.adj, g.gid, 5, 100, 2, 37), mms_sample_padded(&g.adj, g.gid, 5, 100, 2, 37));
    drop(&g);
}

/* deg 7 < cap: over all 100 columns of many nodes, each neighbour slot is
 * chosen with probability 1/7 */
static void test_resampling(void) {
    const int degs[] = {7};
    g_t g;
    make(&g, 3000, degs, 1);
    int64_t cnt[7] = {0};
    for (int32_t v = 0; v < 3000; v++)
        for (int32_t c = 0; c < 100; c++) {
            int32_t u = mms_sample_padded(&g.adj, g.gid, 9, 100, v, c);
            for (int e = 0; e < 7; e++)
                if (g.indices[g.indptr[v] + e] == u) {
                    cnt[e]++;
                    break;
                }
        }
    double x = chi2(cnt, 7);
    printf("resampling deg 7 < cap 100, 300000 draws: chi2(6 dof) %.1f (p=0.001 bound 22.5)\n", x);
    T_CHECK(x < 22.5);
    int64_t tot = 0;
    for (int e = 0; e < 7; e++) tot += cnt[e];
    T_EQ_INT(tot, 300000);
    /* with replacement: some node has a repeated neighbour among its 10 samples */
    int32_t cols[10];
    T_OK(mms_sample_columns(9, 4, 1, 100, 10, cols));
    int rep = 0;
    for (int32_t v = 0; v < 50; v++) {
        int32_t out[10];
        T_CHECK(mms_sample_neighbours(&g.adj, g.gid, 9, 100, cols, 10, &v, 1, out) == MMS_OK);
        for (int i = 0; i < 10; i++)
            for (int j = 0; j < i; j++) rep |= out[i] == out[j];
    }
    T_CHECK(rep);
    drop(&g);
}

/* Same samples whatever the order or split of the targets, and the same global
 * neighbours when the local numbering is permuted (keys are global ids). */
static void test_split_and_relabel(void) {
    const int degs[] = {3, 12, 0, 40, 100, 5};
    g_t g;
    make(&g, 500, degs, 6);
    int32_t cols[25];
    T_OK(mms_sample_columns(11, 123, 2, 100, 25, cols));
    int32_t tg[200], rev[200];
    for (int i = 0; i < 200; i++) tg[i] = (int32_t)((i * 37) % 500), rev[199 - i] = tg[i];
    int32_t *all = calloc(200 * 25, sizeof(int32_t)), *r1 = calloc(200 * 25, sizeof(int32_t));
    T_OK(mms_sample_neighbours(&g.adj, g.gid, 11, 100, cols, 25, tg, 200, all));
    /* "rank 1" takes the odd half in reverse order, "rank 0" the even half */
    int same = 1;
    T_OK(mms_sample_neighbours(&g.adj, g.gid, 11, 100, cols, 25, rev, 200, r1));
    for (int i = 0; i < 200; i++) same &= memcmp(all + i * 25, r1 + (199 - i) * 25, 25 * sizeof(int32_t)) == 0;
    for (int part = 0; part < 2; part++) {
        int32_t sub[100];
        int k = 0;
        for (int i = part; i < 200; i += 2) sub[k++] = tg[i];
        T_OK(mms_sample_neighbours(&g.adj, g.gid, 11, 100, cols, 25, sub, k, r1));
        for (int i = 0; i < k; i++)
            same &= memcmp(all + (part + 2 * i) * 25, r1 + i * 25, 25 * sizeof(int32_t)) == 0;
    }
    T_CHECK(same);
    /* relabel: local v' = perm[v]; CSR rebuilt in the new numbering, gid'[v'] = v */
    int64_t n = g.n, *perm = calloc((size_t)n, sizeof(int64_t));
    for (int64_t v = 0; v < n; v++) perm[v] = (v * 7 + 3) % n; /* 7 is prime to 500 */
    int64_t *ip = calloc((size_t)n + 1, sizeof(int64_t)), *ix = calloc((size_t)g.indptr[n] + 1, sizeof(int64_t));
    int64_t *gd = calloc((size_t)n, sizeof(int64_t)), *inv = calloc((size_t)n, sizeof(int64_t));
    for (int64_t v = 0; v < n; v++) inv[perm[v]] = v;
    int64_t p = 0;
    for (int64_t w = 0; w < n; w++) { /* new local w is old v = inv[w] */
        int64_t v = inv[w];
        ip[w] = p;
        gd[w] = g.gid[v];
        for (int64_t e = g.indptr[v]; e < g.indptr[v + 1]; e++) ix[p++] = perm[g.indices[e]];
    }
    ip[n] = p;
    mms_csr_t adj2 = {n, ip, ix, NULL};
    int32_t tg2[200];
    for (int i = 0; i < 200; i++) tg2[i] = (int32_t)perm[tg[i]];
    T_OK(mms_sample_neighbours(&adj2, gd, 11, 100, cols, 25, tg2, 200, r1));
    int relabel = 1;
    for (int i = 0; i < 200 * 25; i++)
        relabel &= (all[i] < 0 && r1[i] < 0) || (all[i] >= 0 && r1[i] >= 0 && gd[r1[i]] == g.gid[all[i]]);
    T_CHECK(relabel);
    free(perm), free(ip), free(ix), free(gd), free(inv), free(all), free(r1);
    drop(&g);
}

static void test_list_and_errors(void) {
    int32_t cols[10], out[10], list[3] = {40, 41, 42};
    T_OK(mms_sample_columns(1, 2, 1, 100, 10, cols));
    T_OK(mms_sample_list(list, 3, 1, (1ull << 62) | 5, 100, cols, 10, out));
    int ok = 1;
    for (int j = 0; j < 10; j++) ok &= out[j] >= 40 && out[j] <= 42;
    T_CHECK(ok);
    T_OK(mms_sample_list(NULL, 0, 1, 5, 100, cols, 10, out));
    T_EQ_INT(out[3], MMS_SAMPLE_DUMMY);
    int32_t big[100];
    for (int i = 0; i < 100; i++) big[i] = 1000 + i;
    T_OK(mms_sample_list(big, 100, 1, 5, 100, cols, 10, out));
    T_EQ_INT(out[4], 1000 + cols[4]);

    T_FAILS(mms_sample_columns(1, 2, 1, 10, 11, cols), MMS_ERR_ARG);
    T_MSG_HAS("k (11) <= cap (10)");
    const int degs[] = {2};
    g_t g;
    make(&g, 10, degs, 1);
    int32_t bad = 10;
    T_FAILS(mms_sample_neighbours(&g.adj, NULL, 1, 100, cols, 10, &bad, 1, out), MMS_ERR_ARG);
    T_MSG_HAS("not a local id");
    int32_t badcol[1] = {100};
    int32_t v = 0;
    T_FAILS(mms_sample_neighbours(&g.adj, NULL, 1, 100, badcol, 1, &v, 1, out), MMS_ERR_ARG);
    T_MSG_HAS("column 100 out of range");
    drop(&g);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET);
    test_columns();
    test_degrees();
    test_resampling();
    test_split_and_relabel();
    test_list_and_errors();
    return mms_test_finish("test_sample");
}
