/* test_ivf.c: the pieces of approximate shard search (docs/query.md
 * "Approximate search (IVF)"): spherical k-means is deterministic and its
 * assignments are argmaxes; the default nlist / nprobe; the list-order int8
 * rows (a permutation, lists contiguous, rows ascending inside a list); a
 * list scan with every list probed equals the exact scan (ids, order, scores),
 * with dead rows, excluded rows and ties; a partial probe equals brute force
 * over the probed lists' rows; a zero query (the filter's float fallback);
 * the 4-bit list scan (mms_qmat_topk_lists4): exact when it re-ranks every
 * row, high recall at its shard rounds' refine and at refine = k (a wrong
 * kernel or code layout would fall to about k / n), at widths that are and
 * are not multiples of 8. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ivf_build.h"
#include "kmeans.h"
#include "mms_log.h"
#include "mms_rng.h"
#include "mms_test.h"
#include "mms_topk.h"
#include "shard_scan.h"

typedef struct {
    float s;
    int64_t id, row;
} cand_t;

static int cmp_cand(const void *a, const void *b) {
    const cand_t *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void unit_rows(float *X, int64_t n, int32_t d) {
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int32_t j = 0; j < d; j++) s += (double)X[i * d + j] * X[i * d + j];
        if (s > 0)
            for (int32_t j = 0; j < d; j++) X[i * d + j] = (float)(X[i * d + j] / sqrt(s));
    }
}

/* Brute force over rows with in[row] (float dot as the scan computes it). */
static void brute(const float *X, const int64_t *ids, int64_t n, int32_t d, const float *u,
                  const uint8_t *in, const uint8_t *dead, int64_t ex, int32_t k, int64_t *rows,
                  float *sc) {
    cand_t *c = malloc((size_t)n * sizeof *c);
    int64_t m = 0;
    for (int64_t v = 0; v < n; v++) {
        if ((in && !in[v]) || (dead && dead[v]) || v == ex) continue;
        double s = 0;
        for (int32_t j = 0; j < d; j++) s += (double)u[j] * X[v * d + j];
        c[m++] = (cand_t){(float)s, ids[v], v};
    }
    qsort(c, (size_t)m, sizeof *c, cmp_cand);
    for (int32_t j = 0; j < k; j++) {
        rows[j] = j < m ? c[j].row : -1;
        sc[j] = j < m ? c[j].s : -INFINITY;
    }
    free(c);
}

/* Mismatches of rc / sc (nq x k) against brute force over the rows of each
 * query's probed lists some[q * np ..] (entries -1 skipped). */
static int diff_probed(const float *X, const int64_t *ids, int64_t n, int32_t d, const float *Q,
                       int32_t nq, int32_t k, const int32_t *list, const int32_t *some, int32_t np,
                       const uint8_t *dead, const int64_t *exr, const int64_t *rc, const float *sc) {
    uint8_t *in = malloc((size_t)n);
    int64_t br[64];
    float bs[64];
    int diff = 0;
    for (int32_t q = 0; q < nq; q++) {
        memset(in, 0, (size_t)n);
        for (int32_t j = 0; j < np; j++)
            for (int64_t i = 0; some[q * np + j] >= 0 && i < n; i++) in[i] |= list[i] == some[q * np + j];
        brute(X, ids, n, d, Q + q * d, in, dead, exr[q], k, br, bs);
        for (int32_t j = 0; j < k; j++)
            diff += br[j] != rc[q * k + j] || fabsf(bs[j] - sc[q * k + j]) > 1e-5f ||
                    (br[j] < 0) != (rc[q * k + j] < 0);
    }
    free(in);
    return diff;
}

/* Recall of rows[nq x k] against ref[nq x k] (queries 0..nq-1), ignoring
 * padding in ref. */
static double recall_of(const int64_t *ref, const int64_t *rows, int32_t nq, int32_t k) {
    int64_t hit = 0, tot = 0;
    for (int32_t q = 0; q < nq; q++)
        for (int32_t j = 0; j < k; j++) {
            if (ref[q * k + j] < 0) continue;
            tot++;
            for (int32_t t = 0; t < k; t++) hit += rows[q * k + t] == ref[q * k + j];
        }
    return tot ? (double)hit / (double)tot : 1.0;
}

/* The 4-bit scan on rows X (n x d, lists list[n] of nl) with every list
 * probed: refine = n gives the exact scan's answer (ids, order, scores);
 * refine 8k + 64 and refine k keep the recall; results are exact float
 * scores in the top-k order and never a dead or excluded row. */
static void check_lists4(const float *X, const int64_t *ids, int64_t n, int32_t d,
                         const int32_t *list, int32_t nl, const uint8_t *dead, int64_t ndead,
                         const float *Q, int32_t nq, const int64_t *exr, int32_t k) {
    mms_qmat_t *lm = NULL;
    T_OK(mms_qmat_create_lists(X, n, d, list, nl, &lm));
    T_CHECK(lm->q4 == NULL);
    T_OK(mms_qmat_add_codes4(lm, X));
    T_OK(mms_qmat_add_codes4(lm, X)); /* a second call keeps them */
    T_CHECK(lm->q4 && lm->dp8 % 8 == 0 && lm->dp8 >= d);
    lm->dead = dead;
    lm->ndead = ndead;
    int32_t *all = malloc((size_t)nq * nl * sizeof(int32_t));
    for (int32_t q = 0; q < nq; q++)
        for (int32_t j = 0; j < nl; j++) all[q * nl + j] = (j * 5 + q) % nl;
    /* the rows a list scan reads, and the auto rule built on them */
    T_EQ_INT(mms_qmat_lists_rows(lm, all, nq, nl), (int64_t)nq * n);
    const int32_t odd[3] = {-1, nl, 0}; /* out of range: nothing; list 0: its rows */
    T_EQ_INT(mms_qmat_lists_rows(lm, odd, 1, 3), lm->lptr[1] - lm->lptr[0]);
    T_EQ_INT(mms_qmat_lists_rows(NULL, all, nq, nl), 0);
    T_EQ_INT(mms_qmat_lists4_pays(lm, all, nq, nl, k), n >= MMS_QSCAN4_MIN_ROWS(k));
    T_EQ_INT(mms_qmat_lists4_pays(lm, all, nq, nl, 1), n >= MMS_QSCAN4_MIN_ROWS(1));
    T_EQ_INT(mms_qmat_lists4_pays(lm, odd, 1, 3, k), 0);
    int64_t *ra = malloc((size_t)nq * k * 8), *rb = malloc((size_t)nq * k * 8);
    float *sa = malloc((size_t)nq * k * 4), *sb = malloc((size_t)nq * k * 4);
    T_OK(mms_qmat_topk(lm, X, ids, Q, nq, k, exr, ra, sa, NULL));
    mms_qscan_stats_t st = {0};
    T_OK(mms_qmat_topk_lists4(lm, X, ids, Q, nq, k, (int32_t)n, exr, all, nl, rb, sb, &st));
    int diff = 0;
    for (int32_t i = 0; i < nq * k; i++) diff += ra[i] != rb[i] || sa[i] != sb[i];
    T_EQ_INT(diff, 0); /* every row re-ranked = the exact scan */
    const int32_t refines[2] = {MMS_QSCAN4_REFINE(k), k};
    const double floors[2] = {0.98, 0.5}; /* refine k: about 0.6-0.8 here, a wrong kernel k / n */
    for (int t = 0; t < 2; t++) {
        T_OK(mms_qmat_topk_lists4(lm, X, ids, Q, nq, k, refines[t], exr, all, nl, rb, sb, NULL));
        double rec = recall_of(ra, rb, nq, k);
        if (rec < floors[t])
            fprintf(stderr, "lists4 d %d refine %d: recall %.4f < %.2f\n", d, refines[t], rec, floors[t]);
        T_CHECK(rec >= floors[t]);
        int bad = 0;
        for (int32_t q = 0; q < nq; q++)
            for (int32_t j = 0; j < k; j++) {
                int64_t v = rb[q * k + j];
                if (v < 0) continue;
                bad += (dead && dead[v]) || v == exr[q];
                float f = cblas_sdot(d, Q + (size_t)q * d, 1, X + (size_t)v * d, 1);
                bad += f != sb[q * k + j]; /* the float score, not the code's */
                if (j > 0 && rb[q * k + j - 1] >= 0)
                    bad += !mms_topk_before(sb[q * k + j - 1], ids[rb[q * k + j - 1]], sb[q * k + j],
                                            ids[v]);
            }
        T_EQ_INT(bad, 0);
    }
    T_FAILS(mms_qmat_topk_lists4(lm, X, ids, Q, nq, k, k - 1, exr, all, nl, rb, sb, NULL), MMS_ERR_ARG);
    mms_qmat_destroy(&lm);
    free(all), free(ra), free(rb), free(sa), free(sb);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET);

    /* ---- defaults */
    T_EQ_INT(mms_ivf_default_nlist(100), 0);
    T_EQ_INT(mms_ivf_default_nlist(4500), 256);
    T_EQ_INT(mms_ivf_default_nlist(100015), 1024);
    T_EQ_INT(mms_ivf_default_nlist(1000000), 4096);
    T_EQ_INT(mms_ivf_default_nlist(300), 16); /* at least 16 rows a list */
    T_EQ_INT(mms_ivf_default_nprobe(1024, 100015), 128);
    T_EQ_INT(mms_ivf_default_nprobe(4096, 1000000), 512);
    T_EQ_INT(mms_ivf_default_nprobe(256, 4500), 117); /* 2,048 rows of 17.6 a list */
    T_EQ_INT(mms_ivf_default_nprobe(16, 300), 16);
    T_EQ_INT(mms_ivf_default_nprobe(0, 300), 0);

    /* ---- clustered unit rows, coarse values (ties) */
    const int64_t n = 3000;
    const int32_t d = 40, nl = 24, C = 12;
    float *X = malloc((size_t)n * d * sizeof(float)), *cent = malloc((size_t)C * d * sizeof(float));
    mms_rng_t r;
    mms_rng_init(&r, 7, MMS_STREAM_SYNTH, 0);
    for (int32_t c = 0; c < C * d; c++) cent[c] = (float)mms_rng_normal(&r);
    for (int64_t i = 0; i < n; i++) {
        int32_t c = (int32_t)(i % C);
        for (int32_t j = 0; j < d; j++)
            X[i * d + j] = roundf(4.0f * (cent[c * d + j] + 0.7f * (float)mms_rng_normal(&r))) / 4.0f;
    }
    for (int32_t j = 0; j < d; j++) X[5 * d + j] = X[9 * d + j]; /* an exact duplicate: a tie */
    unit_rows(X, n, d);
    for (int32_t j = 0; j < d; j++) X[17 * d + j] = 0.0f; /* a zero row */

    /* ---- k-means: deterministic, unit centroids, assignments are argmaxes */
    float *c1 = malloc((size_t)nl * d * sizeof(float)), *c2 = malloc((size_t)nl * d * sizeof(float));
    mms_kmeans_params_t kp = {.nlist = nl, .iters = 8, .tile = 256, .seed = 3, .who = "test"};
    float *xs = malloc((size_t)n * d * sizeof(float));
    int64_t ns = 0;
    for (int64_t i = 0; i < n; i++)
        if (i != 17) memcpy(xs + (size_t)ns++ * d, X + i * d, (size_t)d * sizeof(float));
    T_OK(mms_kmeans_spherical(xs, ns, d, &kp, MPI_COMM_NULL, c1));
    T_OK(mms_kmeans_spherical(xs, ns, d, &kp, MPI_COMM_NULL, c2));
    T_CHECK(memcmp(c1, c2, (size_t)nl * d * sizeof(float)) == 0);
    for (int32_t c = 0; c < nl; c++) {
        double s = 0;
        for (int32_t j = 0; j < d; j++) s += (double)c1[c * d + j] * c1[c * d + j];
        T_NEAR(s, 1.0, 1e-5);
    }
    int32_t *list = malloc((size_t)n * sizeof(int32_t)), *lv2 = malloc((size_t)n * sizeof(int32_t));
    T_OK(mms_ivf_assign(c1, nl, X, n, d, list));
    int bad_arg = 0;
    for (int64_t i = 0; i < n; i++) {
        double best = -1e30;
        int32_t a = -1;
        for (int32_t c = 0; c < nl; c++) {
            double s = 0;
            for (int32_t j = 0; j < d; j++) s += (double)X[i * d + j] * c1[c * d + j];
            if (s > best + 1e-5) {
                best = s;
                a = c;
            }
        }
        double sa = 0;
        for (int32_t j = 0; j < d; j++) sa += (double)X[i * d + j] * c1[list[i] * d + j];
        bad_arg += sa < best - 1e-5 || a < 0;
    }
    T_EQ_INT(bad_arg, 0);
    kp.tile = 97; /* another tile: same assignments up to float rounding, still a valid result */
    T_OK(mms_kmeans_spherical(xs, ns, d, &kp, MPI_COMM_NULL, c2));
    T_OK(mms_ivf_assign(c2, nl, X, n, d, lv2));

    /* ---- the list-order layout */
    mms_qmat_t *plain = NULL, *lm = NULL;
    T_OK(mms_qmat_create(X, n, d, &plain));
    T_OK(mms_qmat_create_lists(X, n, d, list, nl, &lm));
    T_CHECK(lm->perm && lm->lptr && lm->nlist == nl);
    T_EQ_INT(lm->lptr[0], 0);
    T_EQ_INT(lm->lptr[nl], n);
    uint8_t *seen = calloc((size_t)n, 1);
    int bad_perm = 0;
    for (int32_t l = 0; l < nl; l++)
        for (int64_t v = lm->lptr[l]; v < lm->lptr[l + 1]; v++) {
            int32_t o = lm->perm[v];
            bad_perm += o < 0 || o >= n || seen[o] || list[o] != l ||
                        (v > lm->lptr[l] && lm->perm[v - 1] >= o);
            if (o >= 0 && o < n) seen[o] = 1;
        }
    T_EQ_INT(bad_perm, 0);
    int32_t keep = list[3];
    list[3] = nl; /* out of range */
    mms_qmat_t *junk = NULL;
    T_FAILS(mms_qmat_create_lists(X, n, d, list, nl, &junk), MMS_ERR_ARG);
    T_CHECK(junk == NULL);
    list[3] = keep;

    /* ids ascending with gaps; dead rows; exclusions */
    int64_t *ids = malloc((size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) ids[i] = 3 * i + 11;
    uint8_t *dead = calloc((size_t)n, 1);
    int64_t ndead = 0;
    for (int64_t i = 0; i < n; i += 37) dead[i] = 1, ndead++;
    dead[9] = 1, ndead++; /* one of the tied pair */
    plain->dead = lm->dead = dead;
    plain->ndead = lm->ndead = ndead;

    const int32_t nq = 9, k = 15;
    float *Q = malloc((size_t)nq * d * sizeof(float));
    int64_t exr[9];
    for (int32_t q = 0; q < nq; q++) {
        memcpy(Q + q * d, X + (size_t)(q * 311 + 5) * d, (size_t)d * sizeof(float));
        exr[q] = q % 3 == 0 ? q * 311 + 5 : -1;
    }
    memset(Q + 8 * d, 0, (size_t)d * sizeof(float)); /* a zero query: float fallback */
    int32_t *all = malloc((size_t)nq * nl * sizeof(int32_t));
    for (int32_t q = 0; q < nq; q++)
        for (int32_t j = 0; j < nl; j++) all[q * nl + j] = (j * 7 + q) % nl; /* every list, shuffled */
    int64_t *ra = malloc((size_t)nq * k * 8), *rb = malloc((size_t)nq * k * 8), *rc = malloc((size_t)nq * k * 8);
    float *sa = malloc((size_t)nq * k * 4), *sb = malloc((size_t)nq * k * 4), *sc = malloc((size_t)nq * k * 4);
    T_OK(mms_qmat_topk(plain, X, ids, Q, nq, k, exr, ra, sa, NULL));
    T_OK(mms_qmat_topk(lm, X, ids, Q, nq, k, exr, rb, sb, NULL));
    mms_qscan_stats_t st = {0};
    T_OK(mms_qmat_topk_lists(lm, X, ids, Q, nq, k, exr, all, nl, rc, sc, &st));
    int diff_perm = 0, diff_lists = 0;
    for (int32_t i = 0; i < nq * k; i++) {
        diff_perm += ra[i] != rb[i] || sa[i] != sb[i];
        diff_lists += ra[i] != rc[i] || sa[i] != sc[i];
    }
    T_EQ_INT(diff_perm, 0);  /* the exact scan on list-order rows = on the plain rows */
    T_EQ_INT(diff_lists, 0); /* every list probed = exact */
    T_EQ_INT(st.rows_scanned, (int64_t)nq * n);
    int bad_dead = 0;
    for (int32_t q = 0; q < nq; q++)
        for (int32_t j = 0; j < k; j++) {
            int64_t v = rc[q * k + j];
            bad_dead += v >= 0 && (dead[v] || v == exr[q]);
        }
    T_EQ_INT(bad_dead, 0);
    /* against brute force too (the tie: row 5 kept, its duplicate 9 dead) */
    int64_t br[15];
    float bs[15];
    int diff_brute = 0;
    for (int32_t q = 0; q < nq - 1; q++) {
        brute(X, ids, n, d, Q + q * d, NULL, dead, exr[q], k, br, bs);
        for (int32_t j = 0; j < k; j++)
            diff_brute += br[j] != rc[q * k + j] || fabsf(bs[j] - sc[q * k + j]) > 1e-5f;
    }
    T_EQ_INT(diff_brute, 0);

    /* ---- a partial probe = brute force over the probed lists' rows */
    const int32_t np = 3;
    int32_t *some = malloc((size_t)nq * np * sizeof(int32_t));
    for (int32_t q = 0; q < nq; q++)
        for (int32_t j = 0; j < np; j++) some[q * np + j] = j == 1 && q == 2 ? -1 : (q * 5 + j * 3) % nl;
    T_OK(mms_qmat_topk_lists(lm, X, ids, Q, nq, k, exr, some, np, rc, sc, NULL));
    T_EQ_INT(diff_probed(X, ids, n, d, Q, nq, k, list, some, np, dead, exr, rc, sc), 0);
    /* no lists at all: empty results; a qmat without lists is refused */
    T_OK(mms_qmat_topk_lists(lm, X, ids, Q, nq, k, exr, some, 0, rc, sc, NULL));
    T_EQ_INT(rc[0], -1);
    T_FAILS(mms_qmat_topk_lists(plain, X, ids, Q, nq, k, exr, some, np, rc, sc, NULL), MMS_ERR_ARG);

    /* the 4-bit scan: a partial probe re-ranking every row = brute force
     * over the probed lists; a qmat without lists has no codes */
    T_CHECK(plain->q4 == NULL);
    T_FAILS(mms_qmat_add_codes4(plain, X), MMS_ERR_ARG);
    T_FAILS(mms_qmat_topk_lists4(plain, X, ids, Q, nq, k, 100, exr, some, np, rc, sc, NULL), MMS_ERR_ARG);
    T_FAILS(mms_qmat_topk_lists4(lm, X, ids, Q, nq, k, 100, exr, some, np, rc, sc, NULL), MMS_ERR_ARG);
    T_OK(mms_qmat_add_codes4(lm, X));
    T_OK(mms_qmat_topk_lists4(lm, X, ids, Q, nq, k, (int32_t)n, exr, some, np, rc, sc, NULL));
    T_EQ_INT(diff_probed(X, ids, n, d, Q, nq, k, list, some, np, dead, exr, rc, sc), 0);
    check_lists4(X, ids, n, d, list, nl, dead, ndead, Q, nq, exr, k);
    /* a width that is not a multiple of 8 (the codes' padding), more queries */
    {
        const int32_t d2 = 37, nq2 = 40;
        float *X2 = malloc((size_t)n * d2 * sizeof(float)), *Q2 = malloc((size_t)nq2 * d2 * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            for (int32_t j = 0; j < d2; j++)
                X2[i * d2 + j] = cent[(i % C) * d + j] + 0.5f * (float)mms_rng_normal(&r);
        unit_rows(X2, n, d2);
        int64_t ex2[40];
        for (int32_t q = 0; q < nq2; q++) {
            memcpy(Q2 + q * d2, X2 + (size_t)(q * 71 + 3) * d2, (size_t)d2 * sizeof(float));
            ex2[q] = q % 2 ? q * 71 + 3 : -1;
        }
        check_lists4(X2, ids, n, d2, list, nl, dead, ndead, Q2, nq2, ex2, k);
        free(X2), free(Q2);
    }

    mms_qmat_destroy(&plain);
    mms_qmat_destroy(&lm);
    free(X), free(cent), free(c1), free(c2), free(xs), free(list), free(lv2), free(seen);
    free(ids), free(dead), free(Q), free(all), free(ra), free(rb), free(rc), free(sa), free(sb);
    free(sc), free(some);
    return mms_test_finish("test_ivf");
}
