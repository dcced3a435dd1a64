// ranks: 1 2 3 4
/* test_knn_mpi.c: distributed exact and IVF kNN. Every rank makes its own rows
 * from mms_rng by global row id; the gathered output must be byte-identical to
 * a one-process run on rank 0 (MPI_COMM_NULL), and match a naive reference;
 * IVF with nprobe = nlist matches the exact result; IVF recall on clustered
 * data is high; a bad split on one rank fails on every rank. */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"
#include "mms_log.h"
#include "mms_rng.h"
#include "mms_test.h"
#include "mms_test_ref.h"

static int g_rank, g_nranks;

/* Row i of the test matrix: Gaussian, except planted zero rows and copies. */
static void make_row(int64_t i, int32_t d, int clusters, float *y) {
    mms_rng_t r;
    int64_t src = (i % 97 == 5 && i > 5) ? 5 : i; /* copies of row 5 */
    if (i % 211 == 17) {                          /* zero rows */
        memset(y, 0, sizeof(float) * (size_t)d);
        return;
    }
    mms_rng_init(&r, 42, MMS_STREAM_FUZZ, (uint64_t)src);
    int c = clusters > 0 ? (int)mms_rng_below(&r, (uint32_t)clusters) : 0;
    for (int32_t j = 0; j < d; j++) y[j] = (float)((clusters > 0 ? 1.1 : 1.0) * mms_rng_normal(&r));
    if (clusters > 0) {
        mms_rng_t rc;
        mms_rng_init(&rc, 43, MMS_STREAM_FUZZ, (uint64_t)c);
        for (int32_t j = 0; j < d; j++) y[j] += (float)mms_rng_normal(&rc);
    }
}

static float *make_rows(int64_t row0, int64_t n, int32_t d, int clusters) {
    float *x = malloc(sizeof(float) * (size_t)(n * d + 1));
    for (int64_t i = 0; i < n; i++) make_row(row0 + i, d, clusters, x + (size_t)i * d);
    return x;
}

/* Gather every rank's n_local x k outputs to rank 0 (in rank order). */
static void gather(const int64_t *nbr, const float *sim, int64_t n_local, int32_t k,
                   int64_t *nbr_all, float *sim_all) {
    int cnt = (int)(n_local * k), *counts = NULL, *displs = NULL;
    if (g_rank == 0) {
        counts = malloc(sizeof(int) * (size_t)g_nranks);
        displs = malloc(sizeof(int) * (size_t)g_nranks);
    }
    MPI_Gather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (g_rank == 0) {
        int at = 0;
        for (int r = 0; r < g_nranks; r++) {
            displs[r] = at;
            at += counts[r];
        }
    }
    MPI_Gatherv(nbr, cnt, MPI_INT64_T, nbr_all, counts, displs, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Gatherv(sim, cnt, MPI_FLOAT, sim_all, counts, displs, MPI_FLOAT, 0, MPI_COMM_WORLD);
    free(counts);
    free(displs);
}

/* Naive double reference on rank 0, k + 1 columns (see test_knn.c). */


/* Exact at this P: identical bytes to one process, and equal to the reference. */
static void check_exact(int64_t n, int32_t d, int32_t k, int32_t tile, int clusters) {
    mms_knn_params_t p;
    mms_knn_params_default(&p);
    p.k = k;
    p.tile = tile;
    int64_t row0, nl;
    mms_knn_rows_for_rank(n, tile, g_nranks, g_rank, &row0, &nl);
    float *x = make_rows(row0, nl, d, clusters);
    int64_t *nbr = malloc(sizeof(int64_t) * (size_t)(nl * k + 1));
    float *sim = malloc(sizeof(float) * (size_t)(nl * k + 1));
    T_OK(mms_knn_exact(x, nl, row0, n, d, &p, MPI_COMM_WORLD, nbr, sim));
    int64_t *nbr_all = NULL, *ref_nbr = NULL, *rn = NULL;
    float *sim_all = NULL, *ref_sim = NULL, *xall = NULL;
    double *rs = NULL;
    if (g_rank == 0) {
        nbr_all = malloc(sizeof(int64_t) * (size_t)(n * k));
        sim_all = malloc(sizeof(float) * (size_t)(n * k));
    }
    gather(nbr, sim, nl, k, nbr_all, sim_all);
    if (g_rank == 0) {
        char what[128];
        snprintf(what, sizeof what, "exact n %lld d %d k %d tile %d at P=%d", (long long)n, d, k,
                 tile, g_nranks);
        xall = make_rows(0, n, d, clusters);
        ref_nbr = malloc(sizeof(int64_t) * (size_t)(n * k));
        ref_sim = malloc(sizeof(float) * (size_t)(n * k));
        T_OK(mms_knn_exact(xall, n, 0, n, d, &p, MPI_COMM_NULL, ref_nbr, ref_sim));
        int same_nbr = !memcmp(nbr_all, ref_nbr, sizeof(int64_t) * (size_t)(n * k));
        int same_sim = !memcmp(sim_all, ref_sim, sizeof(float) * (size_t)(n * k));
        if (!same_nbr || !same_sim) fprintf(stderr, "%s: not byte-identical to one process\n", what);
        T_CHECK(same_nbr);
        T_CHECK(same_sim);
        rn = malloc(sizeof(int64_t) * (size_t)(n * (k + 1)));
        rs = malloc(sizeof(double) * (size_t)(n * (k + 1)));
        mms_test_knn_naive(xall, n, d, k + 1, rn, rs);
        T_EQ_INT(mms_test_knn_compare(nbr_all, sim_all, rn, rs, n, k, what), 0);
    }
    free(x);
    free(nbr);
    free(sim);
    free(nbr_all);
    free(sim_all);
    free(ref_nbr);
    free(ref_sim);
    free(xall);
    free(rn);
    free(rs);
}

/* IVF: any contiguous split of queries; identical bytes to one process. */
static void check_ivf(int64_t n, int32_t d, int32_t k, int32_t nlist, int32_t nprobe,
                      double min_recall) {
    mms_knn_params_t p;
    mms_knn_params_default(&p);
    p.k = k;
    p.tile = 64;
    p.nlist = nlist;
    p.nprobe = nprobe;
    p.seed = 7;
    float *x = make_rows(0, n, d, 40); /* every rank holds the whole matrix */
    int64_t row0 = n * g_rank / g_nranks, nl = n * (g_rank + 1) / g_nranks - row0;
    int64_t *nbr = malloc(sizeof(int64_t) * (size_t)(nl * k + 1));
    float *sim = malloc(sizeof(float) * (size_t)(nl * k + 1));
    T_OK(mms_knn_ivf(x, n, d, row0, nl, &p, MPI_COMM_WORLD, nbr, sim));
    double rec = -1;
    T_OK(mms_knn_recall(x, n, d, row0, nl, nbr, k, 5, 400, 9, MPI_COMM_WORLD, &rec));
    if (g_rank == 0)
        fprintf(stderr, "ivf n %lld nlist %d nprobe %d at P=%d: recall@5 %.4f\n", (long long)n,
                nlist, nprobe, g_nranks, rec);
    T_CHECK(rec >= min_recall);
    int64_t *nbr_all = NULL, *ref_nbr = NULL, *rn = NULL;
    float *sim_all = NULL, *ref_sim = NULL;
    double *rs = NULL;
    if (g_rank == 0) {
        nbr_all = malloc(sizeof(int64_t) * (size_t)(n * k));
        sim_all = malloc(sizeof(float) * (size_t)(n * k));
    }
    gather(nbr, sim, nl, k, nbr_all, sim_all);
    if (g_rank == 0) {
        ref_nbr = malloc(sizeof(int64_t) * (size_t)(n * k));
        ref_sim = malloc(sizeof(float) * (size_t)(n * k));
        T_OK(mms_knn_ivf(x, n, d, 0, n, &p, MPI_COMM_NULL, ref_nbr, ref_sim));
        int same = !memcmp(nbr_all, ref_nbr, sizeof(int64_t) * (size_t)(n * k)) &&
                   !memcmp(sim_all, ref_sim, sizeof(float) * (size_t)(n * k));
        if (!same)
            fprintf(stderr, "ivf nprobe %d at P=%d: not byte-identical to one process\n", nprobe,
                    g_nranks);
        T_CHECK(same);
        if (nprobe == nlist) { /* every list scanned: the exact answer */
            rn = malloc(sizeof(int64_t) * (size_t)(n * (k + 1)));
            rs = malloc(sizeof(double) * (size_t)(n * (k + 1)));
            mms_test_knn_naive(x, n, d, k + 1, rn, rs);
            T_EQ_INT(mms_test_knn_compare(nbr_all, sim_all, rn, rs, n, k, "ivf nprobe = nlist"), 0);
        }
    }
    free(x);
    free(nbr);
    free(sim);
    free(nbr_all);
    free(sim_all);
    free(ref_nbr);
    free(ref_sim);
    free(rn);
    free(rs);
}

/* A wrong split on one rank must fail everywhere, not hang. */
static void check_bad_split(void) {
    mms_knn_params_t p;
    mms_knn_params_default(&p);
    p.tile = 16;
    int64_t n = 200, row0, nl;
    mms_knn_rows_for_rank(n, p.tile, g_nranks, g_rank, &row0, &nl);
    float *x = make_rows(row0, nl, 8, 0);
    int64_t *nbr = malloc(sizeof(int64_t) * (size_t)(nl * p.k + 1));
    float *sim = malloc(sizeof(float) * (size_t)(nl * p.k + 1));
    int liar = g_nranks - 1;
    mms_log_set_level(MMS_LOG_QUIET);
    mms_status s = mms_knn_exact(x, g_rank == liar ? nl - 1 : nl, row0, n, 8, &p, MPI_COMM_WORLD,
                                 nbr, sim);
    mms_log_set_level(MMS_LOG_WARN);
    T_CHECK(s != MMS_OK);
    if (g_rank == liar) T_MSG_HAS("mms_knn_rows_for_rank");
    free(x);
    free(nbr);
    free(sim);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_nranks);
    mms_log_init(g_rank, g_nranks, MMS_LOG_WARN);

    check_exact(1337, 40, 15, 64, 0);  /* 21 tiles, short last tile */
    check_exact(1500, 24, 12, 32, 25); /* clustered: many near neighbours */
    check_exact(150, 16, 200, 64, 0);  /* k > n - 1; ranks without rows at P = 4 */
    check_exact(600, 20, 1000, 16, 0); /* the largest k */
    check_ivf(3000, 32, 10, 24, 24, 0.999);
    check_ivf(3000, 32, 10, 24, 4, 0.9);
    check_bad_split();

    int fails = mms_test_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    mms_test_failures = fails;
    int rc = g_rank == 0 ? mms_test_finish("test_knn_mpi") : (fails ? 1 : 0);
    MPI_Finalize();
    return rc;
}
