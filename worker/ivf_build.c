/* ivf_build.c: the inverted lists of an index (ivf_build.h).
 *
 * mms_ivf_build, per space (vis, then emb), on every rank:
 *   1. sample: this rank's rows whose hash(MMS_IVF_SEED, node id, space) falls
 *      under the cut (a Bernoulli sample of about SAMPLE_PER_LIST x nlist rows,
 *      the same rows at any rank count); zero rows are never sampled
 *   2. allgather the sample (ids and rows), sort it by node id, so every rank
 *      holds the same matrix in the same order whatever the rank count
 *   3. spherical k-means on it (partition/kmeans.h; sgemm tiles split over
 *      the ranks, bit-identical at any P)
 *   4. assign this rank's rows (sgemm) and write shard-r/ivf_lists.npy;
 *      rank 0 writes the centroids.
 */
#include "ivf_build.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "kmeans.h"
#include "knn.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_npy.h"
#include "mms_rng.h"

#define ASSIGN_TILE 1024

int32_t mms_ivf_default_nlist(int64_t n) {
    if (n < MMS_IVF_MIN_IMAGES) return 0;
    double want = 4.0 * sqrt((double)n);
    int32_t p = 1;
    while (p < MMS_IVF_MAX_NLIST && (double)p * 1.4142135623730951 < want) p *= 2;
    while (p > 1 && (int64_t)p * 16 > n) p /= 2;
    return p;
}

int32_t mms_ivf_default_nprobe(int32_t nlist, int64_t n) {
    if (nlist <= 0) return 0;
    int64_t np = nlist / 8;
    int64_t cover = n > 0 ? ((int64_t)MMS_IVF_MIN_PROBE_ROWS * nlist + n - 1) / n : nlist;
    if (cover > np) np = cover;
    if (np < 1) np = 1;
    return (int32_t)(np < nlist ? np : nlist);
}

mms_status mms_ivf_assign(const float *cent, int32_t nlist, const float *X, int64_t n, int32_t d,
                          int32_t *list) {
    if (n <= 0) return MMS_OK;
    float *S = NULL;
    MMS_CALL(mms_malloc((size_t)ASSIGN_TILE * (size_t)nlist * sizeof(float), &S));
    mms_kmeans_assign(X, n, d, cent, nlist, ASSIGN_TILE, S, list, NULL);
    free(S);
    return MMS_OK;
}

typedef struct {
    int64_t id;
    int64_t at;
} srow_t;

static int cmp_srow(const void *a, const void *b) {
    const srow_t *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Steps 1-3 for one space: X (n x d) with node ids; cent (nlist x d) out. */
static mms_status train_space(const float *X, const int64_t *ids, int64_t n, int32_t d,
                              int64_t n_all, int32_t nlist, uint64_t space, const char *who,
                              MPI_Comm comm, float *cent) {
    int rank, P;
    MMS_MPI_CALL(MPI_Comm_rank(comm, &rank));
    MMS_MPI_CALL(MPI_Comm_size(comm, &P));
    double frac = (double)MMS_IVF_SAMPLE_PER_LIST * nlist / (double)(n_all > 0 ? n_all : 1);
    uint64_t cut = frac >= 1.0 ? UINT64_MAX : (uint64_t)(frac * 9007199254740992.0);
    int64_t mine = 0, *pick = NULL, *all_ids = NULL;
    float *rows = NULL, *xs = NULL, *xs_sorted = NULL;
    int *cnt = NULL, *dsp = NULL, *fcnt = NULL, *fdsp = NULL;
    srow_t *ord = NULL;
    mms_status s = mms_malloc((size_t)(n + 1) * sizeof *pick, &pick);
    for (int64_t i = 0; s == MMS_OK && i < n; i++) {
        const float *x = X + (size_t)i * d;
        double nn = 0;
        for (int32_t j = 0; j < d; j++) nn += (double)x[j] * x[j];
        if (nn <= 0) continue;
        if (cut == UINT64_MAX || (mms_rng_hash(MMS_IVF_SEED, MMS_STREAM_KMEANS, (uint64_t)ids[i], space) >> 11) < cut)
            pick[mine++] = i;
    }
    if (s == MMS_OK) s = mms_malloc((size_t)(mine + 1) * (size_t)d * sizeof(float), &rows);
    for (int64_t i = 0; s == MMS_OK && i < mine; i++) {
        /* unit rows (vis and emb are stored normalised; renormalise against drift) */
        const float *x = X + (size_t)pick[i] * d;
        double nn = 0;
        for (int32_t j = 0; j < d; j++) nn += (double)x[j] * x[j];
        double inv = 1.0 / sqrt(nn);
        for (int32_t j = 0; j < d; j++) rows[(size_t)i * d + j] = (float)(x[j] * inv);
    }
    if (s == MMS_OK) s = mms_malloc((size_t)P * 4 * sizeof(int), &cnt);
    if (s == MMS_OK && mine >= (1 << 30) / d) {
        mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                      "%s: k-means sample of %lld rows x %d too large", who, (long long)mine, d);
        s = MMS_ERR_ARG;
    }
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, comm));
    dsp = cnt + P;
    fcnt = cnt + 2 * P;
    fdsp = cnt + 3 * P;
    int m32 = (int)mine;
    {
        int rc = MPI_Allgather(&m32, 1, MPI_INT, cnt, 1, MPI_INT, comm);
        if (rc != MPI_SUCCESS) {
            mms_mpi_error(rc, "MPI_Allgather(sample counts)", __FILE__, __LINE__, __func__);
            s = MMS_ERR_MPI;
            goto out;
        }
    }
    int64_t ns = 0;
    for (int r = 0; r < P; r++) {
        dsp[r] = (int)ns;
        fcnt[r] = cnt[r] * d;
        fdsp[r] = (int)ns * d;
        ns += cnt[r];
    }
    MMS_CHECK_GOTO(s, out, ns >= nlist && ns * (int64_t)d < INT32_MAX, MMS_ERR_ARG,
                   "%s: %d lists need at least as many non-zero sample rows (have %lld); lower "
                   "--nlist",
                   who, (int)nlist, (long long)ns);
    int64_t *mids = NULL;
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(mine + 1) * sizeof *mids, &mids));
    for (int64_t i = 0; i < mine; i++) mids[i] = ids[pick[i]];
    s = mms_malloc((size_t)ns * sizeof *all_ids, &all_ids);
    if (s == MMS_OK) s = mms_malloc((size_t)ns * (size_t)d * sizeof(float), &xs);
    if (s == MMS_OK) s = mms_malloc((size_t)ns * (size_t)d * sizeof(float), &xs_sorted);
    if (s == MMS_OK) s = mms_malloc((size_t)ns * sizeof *ord, &ord);
    s = mms_mpi_agree(s, comm);
    if (s == MMS_OK) {
        int rc = MPI_Allgatherv(mids, m32, MPI_INT64_T, all_ids, cnt, dsp, MPI_INT64_T, comm);
        if (rc == MPI_SUCCESS)
            rc = MPI_Allgatherv(rows, m32 * d, MPI_FLOAT, xs, fcnt, fdsp, MPI_FLOAT, comm);
        if (rc != MPI_SUCCESS) {
            mms_mpi_error(rc, "MPI_Allgatherv(sample)", __FILE__, __LINE__, __func__);
            s = MMS_ERR_MPI;
        }
    }
    free(mids);
    if (s != MMS_OK) goto out;
    /* node order: the same matrix at any rank count */
    for (int64_t i = 0; i < ns; i++) ord[i] = (srow_t){all_ids[i], i};
    qsort(ord, (size_t)ns, sizeof *ord, cmp_srow);
    for (int64_t i = 0; i < ns; i++)
        memcpy(xs_sorted + (size_t)i * d, xs + (size_t)ord[i].at * d, (size_t)d * sizeof(float));
    mms_free(&xs);
    mms_kmeans_params_t kp = {.nlist = nlist, .iters = MMS_IVF_KMEANS_ITERS,
                              .tile = MMS_KNN_DEFAULT_TILE, .seed = MMS_IVF_SEED ^ space, .who = who};
    s = mms_kmeans_spherical(xs_sorted, ns, d, &kp, comm, cent);
out:
    free(pick);
    free(rows);
    free(cnt);
    free(all_ids);
    free(xs);
    free(xs_sorted);
    free(ord);
    return s;
}

mms_status mms_ivf_build(const char *dir, int32_t nlist_req, MPI_Comm comm, int32_t *nlist_out) {
    *nlist_out = 0;
    int rank;
    MMS_MPI_CALL(MPI_Comm_rank(comm, &rank));
    char sdir[MMS_PATH_MAX], name[32], p[MMS_PATH_MAX];
    snprintf(name, sizeof name, MMS_INDEX_SHARD_DIR, rank);
    mms_npy_t f_ids = {0}, f_emb = {0}, f_vis = {0};
    float *cent = NULL;
    int32_t *lists = NULL, *col = NULL;
    mms_status s = mms_path_join(sdir, sizeof sdir, dir, name);
    if (s == MMS_OK) s = mms_path_join(p, sizeof p, sdir, MMS_INDEX_IDS_FILE);
    if (s == MMS_OK) s = mms_npy_open(p, MMS_DT_I64, &f_ids);
    if (s == MMS_OK) s = mms_path_join(p, sizeof p, sdir, MMS_INDEX_EMB_FILE);
    if (s == MMS_OK) s = mms_npy_open(p, MMS_DT_F32, &f_emb);
    if (s == MMS_OK) s = mms_path_join(p, sizeof p, sdir, MMS_INDEX_VIS_FILE);
    if (s == MMS_OK) s = mms_npy_open(p, MMS_DT_F32, &f_vis);
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, comm));
    int64_t n = (int64_t)f_ids.rows, n_all = 0;
    MMS_MPI_CALL(MPI_Allreduce(&n, &n_all, 1, MPI_INT64_T, MPI_SUM, comm));
    int32_t nlist = nlist_req < 0 ? mms_ivf_default_nlist(n_all) : nlist_req;
    if (nlist == 0) goto out;
    MMS_CHECK_GOTO(s, out, nlist <= MMS_IVF_MAX_NLIST && nlist <= n_all, MMS_ERR_ARG,
                   "ivf: --nlist %d: at most %d and at most the %lld indexed images", (int)nlist,
                   MMS_IVF_MAX_NLIST, (long long)n_all);
    double t0 = mms_now();
    const struct {
        const mms_npy_t *f;
        const char *file, *who;
    } sp[2] = {{&f_vis, MMS_IVF_VIS_CENTROIDS_FILE, "ivf vis"},
               {&f_emb, MMS_IVF_EMB_CENTROIDS_FILE, "ivf emb"}};
    s = mms_malloc((size_t)(n + 1) * 2 * sizeof *lists, &lists);
    if (s == MMS_OK) s = mms_malloc((size_t)(n + 1) * sizeof *col, &col);
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, comm));
    for (int c = 0; c < 2; c++) {
        int32_t d = (int32_t)sp[c].f->cols;
        s = mms_malloc((size_t)nlist * (size_t)d * sizeof(float), &cent);
        MMS_CALL_GOTO(s, out, mms_mpi_agree(s, comm));
        MMS_CALL_GOTO(s, out, train_space(sp[c].f->data, f_ids.data, n, d, n_all, nlist,
                                          (uint64_t)c, sp[c].who, comm, cent));
        s = mms_ivf_assign(cent, nlist, sp[c].f->data, n, d, col);
        for (int64_t i = 0; s == MMS_OK && i < n; i++) lists[2 * i + c] = col[i];
        if (s == MMS_OK && rank == 0) {
            s = mms_path_join(p, sizeof p, dir, sp[c].file);
            if (s == MMS_OK) s = mms_npy_write(p, MMS_DT_F32, cent, (size_t)nlist, (size_t)d);
        }
        mms_free(&cent);
        MMS_CALL_GOTO(s, out, mms_mpi_agree(s, comm));
    }
    s = mms_path_join(p, sizeof p, sdir, MMS_IVF_LISTS_FILE);
    if (s == MMS_OK) s = mms_npy_write(p, MMS_DT_I32, lists, (size_t)n, 2);
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, comm));
    *nlist_out = nlist;
    mms_log_info("ivf: %d lists per space over %lld images in %.2f s", (int)nlist,
                 (long long)n_all, mms_now() - t0);
out:
    mms_npy_close(&f_ids);
    mms_npy_close(&f_emb);
    mms_npy_close(&f_vis);
    free(cent);
    free(lists);
    free(col);
    return s;
}
