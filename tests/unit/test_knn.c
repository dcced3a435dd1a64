/* test_knn.c: exact and IVF cosine kNN in one process (MPI_COMM_NULL, no MPI
 * calls): against a naive double-precision reference, on edge cases (k > N-1,
 * duplicate rows, zero rows, bad k, NaN), the row split, the heap kernel, the
 * threshold count, IVF with nprobe = nlist, and recall. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"
#include "knn_topk.h"
#include "mms_log.h"
#include "mms_rng.h"
#include "mms_test.h"
#include "mms_test_ref.h"

/* Naive reference: double cosines, full sort by (sim desc, id asc). */
typedef struct {
    double s;
    int64_t id;
} cand_t;

static int cmp_cand(const void *a, const void *b) {
    const cand_t *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}



static float *random_data(int64_t n, int32_t d, uint64_t seed) {
    float *x = malloc(sizeof(float) * (size_t)(n * d));
    for (int64_t i = 0; i < n; i++) {
        mms_rng_t r;
        mms_rng_init(&r, seed, MMS_STREAM_FUZZ, (uint64_t)i);
        for (int32_t j = 0; j < d; j++) x[i * d + j] = (float)mms_rng_normal(&r);
    }
    return x;
}

static void run_exact_vs_ref(int64_t n, int32_t d, int32_t k, int32_t tile, float *x,
                             const char *what) {
    mms_knn_params_t p;
    mms_knn_params_default(&p);
    p.k = k;
    p.tile = tile;
    int64_t *nbr = malloc(sizeof(int64_t) * (size_t)(n * k));
    int64_t *rn = malloc(sizeof(int64_t) * (size_t)(n * (k + 1)));
    float *sim = malloc(sizeof(float) * (size_t)(n * k));
    double *rs = malloc(sizeof(double) * (size_t)(n * (k + 1)));
    T_OK(mms_knn_exact(x, n, 0, n, d, &p, MPI_COMM_NULL, nbr, sim));
    mms_test_knn_naive(x, n, d, k + 1, rn, rs);
    T_EQ_INT(mms_test_knn_compare(nbr, sim, rn, rs, n, k, what), 0);
    free(nbr);
    free(rn);
    free(sim);
    free(rs);
}

static void test_heap(void) {
    /* the key order is (sim, then smaller id), -0 == +0 */
    T_CHECK(mms_topk_key(0.5f, 3) > mms_topk_key(0.25f, 1));
    T_CHECK(mms_topk_key(0.5f, 3) > mms_topk_key(0.5f, 4));
    T_CHECK(mms_topk_key(-0.5f, 3) < mms_topk_key(-0.25f, 9));
    T_CHECK(mms_topk_key(-0.0f, 7) == mms_topk_key(0.0f, 7));
    T_CHECK(mms_topk_key(-1.0f, 0) > mms_topk_key(-FLT_MAX, 0));
    const float probe[] = {1.0f, -1.0f, 0.0f, 0.3f, -0.7f, FLT_MIN, -FLT_MIN, 1e-30f};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        T_CHECK(mms_topk_key_score(mms_topk_key(probe[i], 123456)) == probe[i]);
        T_EQ_INT(mms_topk_key_id(mms_topk_key(probe[i], 4000000000ll)), 4000000000ll);
    }
    /* random offers, with repeated sims, against a sort */
    enum { K = 7, M = 300 };
    int64_t ids[K];
    float sims[K], thr[1];
    int32_t cnt[1];
    mms_topk_rows_t h = {K, (uint64_t *)ids, cnt, thr};
    mms_topk_rows_reset(&h, 1, NULL);
    cand_t all[M];
    mms_rng_t r;
    mms_rng_init(&r, 5, MMS_STREAM_FUZZ, 99);
    for (int i = 0; i < M; i++) {
        float s = (float)mms_rng_below(&r, 20) / 20.0f - 0.5f; /* many ties, both signs */
        int64_t id = (int64_t)((i * 7919) % M);
        all[i] = (cand_t){s, id};
        if (s >= thr[0]) mms_topk_rows_offer(&h, 0, mms_topk_key(s, id));
    }
    mms_topk_rows_finish(&h, 1, ids, sims);
    qsort(all, M, sizeof(cand_t), cmp_cand);
    for (int j = 0; j < K; j++) {
        T_EQ_INT(ids[j], all[j].id);
        T_NEAR(sims[j], all[j].s, 0);
    }
    /* a closed row accepts nothing and finishes as padding */
    uint8_t closed = 1;
    mms_topk_rows_reset(&h, 1, &closed);
    T_CHECK(isinf(thr[0]) && thr[0] > 0);
    mms_topk_rows_finish(&h, 1, ids, sims);
    T_EQ_INT(ids[0], -1);
    T_CHECK(isinf(sims[K - 1]) && sims[K - 1] < 0);
}

static void test_rows_for_rank(void) {
    const int64_t ns[] = {0, 1, 100, 1000, 4097, 100000};
    const int32_t ts[] = {8, 64, 1024};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof ts / sizeof ts[0]; b++)
            for (int P = 1; P <= 7; P++) {
                int64_t at = 0, mn = INT64_MAX, mx = 0;
                for (int r = 0; r < P; r++) {
                    int64_t r0, nr;
                    mms_knn_rows_for_rank(ns[a], ts[b], P, r, &r0, &nr);
                    T_EQ_INT(r0, at);
                    T_CHECK(r0 % ts[b] == 0 || r0 == ns[a]);
                    at += nr;
                    if (nr < mn) mn = nr;
                    if (nr > mx) mx = nr;
                }
                T_EQ_INT(at, ns[a]);
                T_CHECK(mx - mn <= ts[b]); /* balanced to one tile */
            }
}

static void test_exact_random(void) {
    float *x = random_data(300, 37, 11);
    run_exact_vs_ref(300, 37, 10, 64, x, "random 300x37 k10 tile64");
    run_exact_vs_ref(300, 37, 25, 8, x, "random 300x37 k25 tile8");
    run_exact_vs_ref(300, 37, 5, 1024, x, "random 300x37 k5 one tile");
    free(x);
    x = random_data(1100, 64, 12);
    run_exact_vs_ref(1100, 64, 30, 128, x, "random 1100x64 k30 tile128");
    free(x);
}

static void test_k_above_n(void) {
    float *x = random_data(20, 5, 13);
    run_exact_vs_ref(20, 5, 50, 8, x, "k 50 > n-1 19");
    mms_knn_params_t p;
    mms_knn_params_default(&p);
    p.k = 50;
    p.tile = 8;
    int64_t nbr[20 * 50];
    float sim[20 * 50];
    T_OK(mms_knn_exact(x, 20, 0, 20, 5, &p, MPI_COMM_NULL, nbr, sim));
    T_CHECK(nbr[18] >= 0 && nbr[19] == -1 && nbr[49] == -1);
    T_EQ_INT(mms_knn_count_above(sim, 20, 50, -2.0f, NULL), 20 * 19);
    /* one row: nobody to be near */
    T_OK(mms_knn_exact(x, 1, 0, 1, 5, &p, MPI_COMM_NULL, nbr, sim));
    T_EQ_INT(nbr[0], -1);
    /* no rows at all is fine */
    T_OK(mms_knn_exact(x, 0, 0, 0, 5, &p, MPI_COMM_NULL, nbr, sim));
    free(x);
}

static void test_duplicates(void) {
    /* rows 3, 10, 17, 40, 41 identical; 5 and 6 the same direction, scaled */
    int64_t n = 60;
    int32_t d = 9;
    float *x = random_data(n, d, 14);
    const int dup[] = {10, 17, 40, 41};
    for (int i = 0; i < 4; i++) memcpy(x + dup[i] * d, x + 3 * d, sizeof(float) * d);
    for (int j = 0; j < d; j++) x[6 * d + j] = 3.0f * x[5 * d + j];
    run_exact_vs_ref(n, d, 6, 16, x, "duplicates");
    mms_knn_params_t p;
    mms_knn_params_default(&p);
    p.k = 6;
    p.tile = 16;
    int64_t nbr[60 * 6];
    float sim[60 * 6];
    T_OK(mms_knn_exact(x, n, 0, n, d, &p, MPI_COMM_NULL, nbr, sim));
    /* row 17's first four: the other copies, by id */
    T_EQ_INT(nbr[17 * 6 + 0], 3);
    T_EQ_INT(nbr[17 * 6 + 1], 10);
    T_EQ_INT(nbr[17 * 6 + 2], 40);
    T_EQ_INT(nbr[17 * 6 + 3], 41);
    T_NEAR(sim[17 * 6 + 0], 1.0, 1e-6);
    T_CHECK(sim[17 * 6 + 0] == sim[17 * 6 + 3]); /* same bits: same operands */
    T_EQ_INT(nbr[5 * 6], 6);
    T_EQ_INT(nbr[6 * 6], 5);
    /* symmetry of the pair computation: sim(i,j) has the same bits from both ends */
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < 6; j++) {
            int64_t o = nbr[i * 6 + j];
            for (int jj = 0; jj < 6; jj++)
                if (nbr[o * 6 + jj] == i) T_CHECK(sim[o * 6 + jj] == sim[i * 6 + j]);
        }
    free(x);
}

static void test_zero_rows(void) {
    int64_t n = 50;
    int32_t d = 7;
    float *x = random_data(n, d, 15);
    const int zero[] = {0, 8, 9, 31, 49};
    for (int i = 0; i < 5; i++) memset(x + zero[i] * d, 0, sizeof(float) * d);
    run_exact_vs_ref(n, d, 8, 8, x, "zero rows");
    mms_knn_params_t p;
    mms_knn_params_default(&p);
    p.k = 8;
    p.tile = 8;
    int64_t nbr[50 * 8];
    float sim[50 * 8];
    T_OK(mms_knn_exact(x, n, 0, n, d, &p, MPI_COMM_NULL, nbr, sim));
    for (int i = 0; i < 5; i++) T_EQ_INT(nbr[zero[i] * 8], -1);
    for (int64_t i = 0; i < n * 8; i++)
        for (int z = 0; z < 5; z++) T_CHECK(nbr[i] != zero[z]);
    /* all rows zero */
    memset(x, 0, sizeof(float) * (size_t)(n * d));
    T_OK(mms_knn_exact(x, n, 0, n, d, &p, MPI_COMM_NULL, nbr, sim));
    T_EQ_INT(mms_knn_count_above(sim, n, 8, -2.0f, NULL), 0);
    free(x);
}

static void test_refusals(void) {
    float *x = random_data(10, 4, 16);
    int64_t nbr[10 * 1001];
    float sim[10 * 1001];
    mms_knn_params_t p;
    mms_knn_params_default(&p);
    mms_log_set_level(MMS_LOG_QUIET);
    p.k = 0;
    T_FAILS(mms_knn_exact(x, 10, 0, 10, 4, &p, MPI_COMM_NULL, nbr, sim), MMS_ERR_ARG);
    T_MSG_HAS("k = 0 neighbours per row is out of range (1..1000)");
    p.k = 1001;
    T_FAILS(mms_knn_exact(x, 10, 0, 10, 4, &p, MPI_COMM_NULL, nbr, sim), MMS_ERR_ARG);
    T_MSG_HAS("k = 1001");
    p.k = 1000; /* the largest k is fine */
    T_OK(mms_knn_exact(x, 10, 0, 10, 4, &p, MPI_COMM_NULL, nbr, sim));
    p.k = 3;
    p.tile = 3;
    T_FAILS(mms_knn_exact(x, 10, 0, 10, 4, &p, MPI_COMM_NULL, nbr, sim), MMS_ERR_ARG);
    T_MSG_HAS("tile");
    p.tile = 8;
    /* a split that is not the tile split */
    T_FAILS(mms_knn_exact(x, 5, 5, 10, 4, &p, MPI_COMM_NULL, nbr, sim), MMS_ERR_ARG);
    T_MSG_HAS("mms_knn_rows_for_rank");
    x[13] = NAN;
    T_FAILS(mms_knn_exact(x, 10, 0, 10, 4, &p, MPI_COMM_NULL, nbr, sim), MMS_ERR_NUMERIC);
    T_MSG_HAS("row 3 holds NaN");
    x[13] = INFINITY;
    p.nlist = 4;
    p.nprobe = 5;
    T_FAILS(mms_knn_ivf(x, 10, 4, 0, 10, &p, MPI_COMM_NULL, nbr, sim), MMS_ERR_ARG);
    T_MSG_HAS("nprobe = 5 must be in 1..nlist (4)");
    p.nprobe = 2;
    T_FAILS(mms_knn_ivf(x, 10, 4, 0, 10, &p, MPI_COMM_NULL, nbr, sim), MMS_ERR_NUMERIC);
    T_MSG_HAS("row 3 holds NaN or Inf");
    x[13] = 1.0f;
    p.nlist = 11;
    p.nprobe = 2;
    T_FAILS(mms_knn_ivf(x, 10, 4, 0, 10, &p, MPI_COMM_NULL, nbr, sim), MMS_ERR_ARG);
    T_MSG_HAS("lower nlist");
    mms_log_set_level(MMS_LOG_WARN);
    free(x);
}

/* Clustered data: c centres, each row = centre + noise. */
static float *clustered(int64_t n, int32_t d, int c, double noise, uint64_t seed) {
    float *ctr = random_data(c, d, seed + 1000);
    float *x = malloc(sizeof(float) * (size_t)(n * d));
    for (int64_t i = 0; i < n; i++) {
        mms_rng_t r;
        mms_rng_init(&r, seed, MMS_STREAM_SYNTH, (uint64_t)i);
        int cc = (int)mms_rng_below(&r, (uint32_t)c);
        for (int32_t j = 0; j < d; j++)
            x[i * d + j] = ctr[cc * d + j] + (float)(noise * mms_rng_normal(&r));
    }
    free(ctr);
    return x;
}

static void test_ivf(void) {
    int64_t n = 1500;
    int32_t d = 24, k = 8;
    float *x = clustered(n, d, 30, 0.6, 21);
    memset(x + 77 * d, 0, sizeof(float) * d); /* a zero row */
    mms_knn_params_t p;
    mms_knn_params_default(&p);
    p.k = k;
    p.tile = 64;
    p.nlist = 16;
    p.nprobe = 16;
    int64_t *nbr = malloc(sizeof(int64_t) * (size_t)(n * k));
    int64_t *rn = malloc(sizeof(int64_t) * (size_t)(n * (k + 1)));
    float *sim = malloc(sizeof(float) * (size_t)(n * k));
    double *rs = malloc(sizeof(double) * (size_t)(n * (k + 1)));
    mms_test_knn_naive(x, n, d, k + 1, rn, rs);
    /* nprobe = nlist: every list is scanned, so the result is exact */
    T_OK(mms_knn_ivf(x, n, d, 0, n, &p, MPI_COMM_NULL, nbr, sim));
    T_EQ_INT(mms_test_knn_compare(nbr, sim, rn, rs, n, k, "ivf nprobe=nlist"), 0);
    T_EQ_INT(nbr[77 * k], -1);
    double rec = 0;
    T_OK(mms_knn_recall(x, n, d, 0, n, nbr, k, 5, 200, 3, MPI_COMM_NULL, &rec));
    T_NEAR(rec, 1.0, 1e-9);
    /* few probes: approximate, still good on clustered data */
    p.nprobe = 3;
    T_OK(mms_knn_ivf(x, n, d, 0, n, &p, MPI_COMM_NULL, nbr, sim));
    T_OK(mms_knn_recall(x, n, d, 0, n, nbr, k, 5, 300, 3, MPI_COMM_NULL, &rec));
    fprintf(stderr, "ivf nlist 16 nprobe 3: recall@5 %.4f\n", rec);
    T_CHECK(rec >= 0.9);
    /* the same seed gives the same bytes */
    int64_t *nbr2 = malloc(sizeof(int64_t) * (size_t)(n * k));
    float *sim2 = malloc(sizeof(float) * (size_t)(n * k));
    T_OK(mms_knn_ivf(x, n, d, 0, n, &p, MPI_COMM_NULL, nbr2, sim2));
    T_CHECK(!memcmp(nbr, nbr2, sizeof(int64_t) * (size_t)(n * k)));
    T_CHECK(!memcmp(sim, sim2, sizeof(float) * (size_t)(n * k)));
    /* exact mode reaches recall 1 against brute force */
    T_OK(mms_knn_exact(x, n, 0, n, d, &p, MPI_COMM_NULL, nbr, sim));
    T_OK(mms_knn_recall(x, n, d, 0, n, nbr, k, k, 100, 4, MPI_COMM_NULL, &rec));
    T_NEAR(rec, 1.0, 1e-9);
    /* brute force equals the reference */
    int64_t rows[3] = {0, 77, 1499};
    int64_t bn[3 * 8];
    float bs[3 * 8];
    T_OK(mms_knn_bruteforce(x, n, d, rows, 3, k, bn, bs));
    for (int j = 0; j < k; j++) {
        T_EQ_INT(bn[j], rn[j]);
        T_EQ_INT(bn[16 + j], rn[1499 * (k + 1) + j]);
    }
    T_EQ_INT(bn[8], -1);
    free(nbr);
    free(nbr2);
    free(rn);
    free(sim);
    free(sim2);
    free(rs);
    free(x);
}

static void test_count_above(void) {
    float sim[2 * 4] = {0.9f, 0.5f, 0.2f, -INFINITY, 0.4f, 0.3f, 0.3f, 0.1f};
    int32_t c[2];
    T_EQ_INT(mms_knn_count_above(sim, 2, 4, 0.3f, c), 5);
    T_EQ_INT(c[0], 2);
    T_EQ_INT(c[1], 3);
    T_EQ_INT(mms_knn_count_above(sim, 2, 4, -1.0f, NULL), 7);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_WARN);
    test_heap();
    test_rows_for_rank();
    test_exact_random();
    test_k_above_n();
    test_duplicates();
    test_zero_rows();
    test_refusals();
    test_ivf();
    test_count_above();
    return mms_test_finish("test_knn");
}
