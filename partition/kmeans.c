/* kmeans.c: spherical k-means (kmeans.h), factored out of the IVF kNN build so
 * that the query index's inverted lists (worker/ivf_build.c) train the same way. */
#include "kmeans.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_rng.h"

void mms_kmeans_assign(const float *x, int64_t n, int32_t d, const float *cent, int32_t nlist,
                       int32_t tile, float *S, int32_t *arg, float *best) {
    for (int64_t t = 0; t < n; t += tile) {
        int32_t m = (int32_t)(n - t < tile ? n - t : tile);
        knn_gemm_nt(m, nlist, d, x + (size_t)t * (size_t)d, cent, S);
        for (int32_t i = 0; i < m; i++) {
            const float *s = S + (size_t)i * (size_t)nlist;
            int32_t a = 0;
            for (int32_t c = 1; c < nlist; c++)
                if (s[c] > s[a]) a = c;
            arg[t + i] = a;
            if (best) best[t + i] = s[a];
        }
    }
}

/* Per-rank element counts of a global split by tiles of T (for allgatherv). */
static mms_status tile_counts(int64_t n, int32_t T, int nranks, int64_t **counts) {
    MMS_CALL(mms_malloc(sizeof(int64_t) * (size_t)nranks, counts));
    for (int r = 0; r < nranks; r++) {
        int64_t r0;
        mms_knn_rows_for_rank(n, T, nranks, r, &r0, &(*counts)[r]);
    }
    return MMS_OK;
}

typedef struct {
    float best;
    int64_t i;
} worst_t;

static int cmp_worst(const void *a, const void *b) {
    const worst_t *x = a, *y = b;
    if (x->best != y->best) return x->best < y->best ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

mms_status mms_kmeans_spherical(const float *xs, int64_t ns, int32_t d,
                                const mms_kmeans_params_t *p, MPI_Comm comm, float *cent) {
    const int32_t nlist = p->nlist, T = p->tile > 0 ? p->tile : MMS_KNN_DEFAULT_TILE;
    const char *who = p->who ? p->who : "kmeans";
    MMS_CHECK(nlist >= 1 && ns >= nlist && d >= 1, MMS_ERR_ARG,
              "%s: %d lists need at least as many sample rows (have %lld)", who, (int)nlist,
              (long long)ns);
    mms_status s = MMS_OK;
    const size_t ud = (size_t)d;
    int rank, nranks;
    knn_comm_info(comm, &rank, &nranks);
    int64_t *counts = NULL, *cnt = NULL;
    float *S = NULL, *best = NULL, *best_all = NULL;
    int32_t *arg = NULL, *arg_all = NULL, *prev = NULL, *perm = NULL;
    double *sum = NULL;
    worst_t *order = NULL;

    /* init: nlist distinct sample rows (partial Fisher-Yates) */
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int32_t) * (size_t)ns, &perm));
    for (int64_t i = 0; i < ns; i++) perm[i] = (int32_t)i;
    {
        mms_rng_t r;
        mms_rng_init(&r, p->seed, MMS_STREAM_KMEANS, 0xc3e7ull /* init */);
        for (int32_t c = 0; c < nlist; c++) {
            int64_t j = c + (int64_t)mms_rng_below64(&r, (uint64_t)(ns - c));
            int32_t t = perm[c];
            perm[c] = perm[j];
            perm[j] = t;
            memcpy(cent + (size_t)c * ud, xs + (size_t)perm[c] * ud, ud * sizeof(float));
        }
    }

    int64_t r0, nr;
    mms_knn_rows_for_rank(ns, T, nranks, rank, &r0, &nr);
    MMS_CALL_GOTO(s, out, tile_counts(ns, T, nranks, &counts));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * (size_t)T * (size_t)nlist, &S));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int32_t) * (size_t)(nr + 1), &arg));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * (size_t)(nr + 1), &best));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int32_t) * (size_t)ns, &arg_all));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int32_t) * (size_t)ns, &prev));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * (size_t)ns, &best_all));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(double) * (size_t)nlist * ud, &sum));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * (size_t)nlist, &cnt));
    for (int64_t i = 0; i < ns; i++) prev[i] = -1;

    double t0 = mms_now();
    for (int it = 0; it < p->iters; it++) {
        mms_kmeans_assign(xs + (size_t)r0 * ud, nr, d, cent, nlist, T, S, arg, best);
        MMS_CALL_GOTO(s, out, knn_allgatherv(arg, arg_all, counts, sizeof(int32_t), comm));
        MMS_CALL_GOTO(s, out, knn_allgatherv(best, best_all, counts, sizeof(float), comm));
        int64_t changed = 0;
        double obj = 0.0;
        for (int64_t i = 0; i < ns; i++) {
            changed += arg_all[i] != prev[i];
            prev[i] = arg_all[i];
            obj += best_all[i];
        }
        /* update on every rank alike: sums in sample order */
        memset(sum, 0, sizeof(double) * (size_t)nlist * ud);
        memset(cnt, 0, sizeof(int64_t) * (size_t)nlist);
        for (int64_t i = 0; i < ns; i++) {
            double *sc = sum + (size_t)arg_all[i] * ud;
            const float *xi = xs + (size_t)i * ud;
            for (size_t j = 0; j < ud; j++) sc[j] += xi[j];
            cnt[arg_all[i]]++;
        }
        int32_t empty = 0;
        int64_t next_worst = 0;
        for (int32_t c = 0; c < nlist; c++) {
            float *cc = cent + (size_t)c * ud;
            const double *sc = sum + (size_t)c * ud;
            double ss = 0.0;
            for (size_t j = 0; j < ud; j++) ss += sc[j] * sc[j];
            if (cnt[c] > 0 && ss > 0.0) {
                double inv = 1.0 / sqrt(ss);
                for (size_t j = 0; j < ud; j++) cc[j] = (float)(sc[j] * inv);
                continue;
            }
            /* empty: restart it at the sample row its centroid fits worst */
            if (!order) {
                MMS_CALL_GOTO(s, out, mms_malloc(sizeof(worst_t) * (size_t)ns, &order));
                for (int64_t i = 0; i < ns; i++) order[i] = (worst_t){best_all[i], i};
                qsort(order, (size_t)ns, sizeof(worst_t), cmp_worst);
            }
            memcpy(cc, xs + (size_t)order[next_worst % ns].i * ud, ud * sizeof(float));
            next_worst++;
            empty++;
        }
        mms_free(&order);
        mms_log_debug("%s: k-means iteration %d: mean cosine %.5f, %lld reassigned, "
                      "%d empty lists restarted",
                      who, it + 1, obj / (double)ns, (long long)changed, (int)empty);
        if (changed == 0 && empty == 0) break;
    }
    mms_log_info("%s: trained %d lists on %lld sample rows in %.2f s", who, (int)nlist,
                 (long long)ns, mms_now() - t0);
out:
    mms_free(&counts);
    mms_free(&cnt);
    mms_free(&S);
    mms_free(&best);
    mms_free(&best_all);
    mms_free(&arg);
    mms_free(&arg_all);
    mms_free(&prev);
    mms_free(&perm);
    mms_free(&sum);
    mms_free(&order);
    return s;
}
