/* knn_ivf.c: approximate cosine kNN with an inverted-file (IVF) index.
 *
 *   train   spherical k-means (nlist centroids, kmeans.h, shared with the query
 *           index's lists) on a sample of rows chosen by a hash of (seed, row);
 *   probe   each row's nprobe most similar centroids (sgemm in global row
 *           tiles); the best one is the row's list;
 *   lists   assignments of all rows are allgathered; lists hold row ids in
 *           ascending order;
 *   search  rank r answers its rows. For each list, the queries that probe it
 *           are multiplied against the list's rows by sgemm, in batches cut at
 *           fixed global positions: rows are taken in groups of G rows (a whole
 *           number of tiles; G depends on tile, nlist and nprobe only), ordered
 *           inside a group by (best list, row), and a batch is at most IVF_QC
 *           queries of one group counted from the group's start. A rank whose
 *           rows begin or end inside a group computes the probes of the whole
 *           group, so each batch has the same queries, order, shape and
 *           operands at any rank count; batches with no query of this rank are
 *           skipped.
 * Hence the index and the output are bit-identical at any P for a fixed seed.
 * Every rank reads the whole matrix (memory-mapped by the caller).
 * Not here: adding rows to a trained index, or queries from outside the matrix.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"
#include "kmeans.h"
#include "knn_topk.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_rng.h"

#define IVF_QC 1024  /* most queries per sgemm batch */
#define IVF_QG 256   /* queries per list and group aimed at: sets the group size */
#define IVF_MC 2048  /* most list rows per sgemm batch */

typedef struct {
    int64_t n;
    int32_t d, nlist, T;
    const float *x;  /* n x d, borrowed */
    double *inv;     /* n: 1/|x_i|, 0 for a zero row */
    float *cent;     /* nlist x d, unit rows */
    int64_t *lptr;   /* nlist + 1 */
    int64_t *lids;   /* list members, ascending within a list */
    int rank, nranks;
    MPI_Comm comm;
} ivf_t;

static void row_normed(const ivf_t *iv, int64_t row, float *y) {
    knn_scale_row(iv->x + (size_t)row * (size_t)iv->d, iv->d, iv->inv[row], y);
}

static mms_status ivf_train(ivf_t *iv, const mms_knn_params_t *p) {
    mms_status s = MMS_OK;
    const size_t ud = (size_t)iv->d;
    int64_t nvalid = 0, ns = 0;
    int64_t *srow = NULL;
    float *xs = NULL;
    for (int64_t i = 0; i < iv->n; i++) nvalid += iv->inv[i] > 0.0;
    MMS_CHECK(nvalid >= iv->nlist, MMS_ERR_ARG,
              "knn ivf: nlist = %d lists need at least as many non-zero rows (have %lld); "
              "lower nlist",
              (int)iv->nlist, (long long)nvalid);
    int64_t target = p->train_sample > 0 ? p->train_sample : 64 * (int64_t)iv->nlist;
    if (target < iv->nlist) target = iv->nlist;
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * (size_t)nvalid, &srow));
    if (target >= nvalid) {
        for (int64_t i = 0; i < iv->n; i++)
            if (iv->inv[i] > 0.0) srow[ns++] = i;
    } else { /* Bernoulli sample by a hash of the row: the same at any P */
        uint64_t cut = (uint64_t)((double)target / (double)nvalid * 9007199254740992.0);
        for (int64_t i = 0; i < iv->n; i++)
            if (iv->inv[i] > 0.0 &&
                (mms_rng_hash(p->seed, MMS_STREAM_KMEANS, (uint64_t)i, 0) >> 11) < cut)
                srow[ns++] = i;
        if (ns < iv->nlist) { /* unlucky draw on a tiny catalog: take every row */
            ns = 0;
            for (int64_t i = 0; i < iv->n; i++)
                if (iv->inv[i] > 0.0) srow[ns++] = i;
        }
    }
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * (size_t)ns * ud, &xs));
    for (int64_t i = 0; i < ns; i++) row_normed(iv, srow[i], xs + (size_t)i * ud);
    mms_kmeans_params_t kp = {.nlist = iv->nlist, .iters = p->kmeans_iters, .tile = iv->T,
                              .seed = p->seed, .who = "knn ivf"};
    s = mms_kmeans_spherical(xs, ns, iv->d, &kp, iv->comm, iv->cent);
out:
    mms_free(&srow);
    mms_free(&xs);
    return s;
}

/* Probe lists of rows [c0, c1) (c0 a tile start): probes[(i - c0) * np + j] is
 * the j-th best centroid of row i (best first), or -1 for a zero row. */
static mms_status ivf_probe(const ivf_t *iv, int64_t c0, int64_t c1, int32_t np,
                            int32_t *probes) {
    mms_status s = MMS_OK;
    const size_t ud = (size_t)iv->d, T = (size_t)iv->T;
    float *q = NULL, *S = NULL, *sims = NULL, *thr = NULL;
    int64_t *ids = NULL, *hrow = NULL, *qid = NULL, *cid = NULL;
    int32_t *cnt = NULL;
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * T * ud, &q));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * T * (size_t)iv->nlist, &S));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * T * (size_t)np, &sims));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * T * (size_t)np, &ids));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * T, &thr));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int32_t) * T, &cnt));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * T * 2, &hrow));
    qid = hrow + T;
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * (size_t)iv->nlist, &cid));
    for (int32_t c = 0; c < iv->nlist; c++) cid[c] = c;
    mms_topk_rows_t h = {np, (uint64_t *)ids, cnt, thr};
    for (int64_t t = c0; t < c1; t += iv->T) {
        int32_t m = (int32_t)(c1 - t < iv->T ? c1 - t : iv->T);
        for (int32_t i = 0; i < m; i++) {
            row_normed(iv, t + i, q + (size_t)i * ud);
            hrow[i] = iv->inv[t + i] > 0.0 ? i : -1;
            qid[i] = -1;
            cnt[i] = 0;
            thr[i] = -FLT_MAX;
        }
        knn_gemm_nt(m, iv->nlist, iv->d, q, iv->cent, S);
        knn_scan_rows(S, m, iv->nlist, hrow, qid, cid, &h);
        mms_topk_rows_finish(&h, m, ids, sims);
        for (int32_t i = 0; i < m; i++)
            for (int32_t j = 0; j < np; j++)
                probes[(size_t)(t - c0 + i) * (size_t)np + (size_t)j] =
                    hrow[i] < 0 ? -1 : (int32_t)ids[(size_t)i * (size_t)np + (size_t)j];
    }
out:
    mms_free(&q);
    mms_free(&S);
    mms_free(&sims);
    mms_free(&ids);
    mms_free(&thr);
    mms_free(&cnt);
    mms_free(&hrow);
    mms_free(&cid);
    return s;
}

void mms_knn_ivf_resolve(const mms_knn_params_t *p, int64_t n_total, int32_t *nlist,
                         int32_t *nprobe) {
    int64_t nl = p->nlist;
    if (nl <= 0) nl = (int64_t)floor(sqrt((double)n_total) + 0.5);
    if (nl < 1) nl = 1;
    if (nl > MMS_KNN_MAX_NLIST) nl = MMS_KNN_MAX_NLIST;
    int64_t np = p->nprobe > 0 ? p->nprobe : (nl + 127) / 128;
    if (p->nprobe <= 0 && np < 4) np = 4;
    if (np > nl) np = nl;
    *nlist = (int32_t)nl;
    *nprobe = (int32_t)np;
}

/* Rows per search group: whole tiles, about IVF_QG queries per list and group
 * on average (popular lists get more, up to IVF_QC per batch). Larger groups
 * give larger batches; smaller ones less redundant probing at rank edges. */
static int64_t group_rows(int32_t T, int32_t nlist, int32_t nprobe) {
    int64_t want = (int64_t)IVF_QG * nlist / nprobe;
    int64_t tiles = (want + T - 1) / T;
    return (tiles < 1 ? 1 : tiles) * T;
}

/* One call of mms_knn_ivf on one rank: the index and the search state
 * (freed by run_free). */
typedef struct {
    ivf_t iv;
    const mms_knn_params_t *p;
    int64_t row0, n_local;  /* this rank's rows */
    int32_t np;             /* lists probed per row */
    int64_t G;              /* rows per search group */
    int64_t cov0, cov1;     /* covered rows: whole groups around this rank's rows */
    int64_t *counts;        /* nranks: rows of each rank */
    int32_t *probes;        /* (cov1 - cov0) x np: probed lists of the covered rows */
    int32_t *perm;          /* covered rows (offsets from cov0) in search order */
    int64_t npos;           /* entries of perm (covered rows that are not zero rows) */
    float *qn;              /* npos x d: those rows normalised, in search order */
    int64_t *qptr;          /* nlist + 1: each list's queries in qoff */
    int32_t *qoff;          /* positions in perm of the queries of each list, ascending */
    double t_start;
} ivf_run_t;

static void run_free(ivf_run_t *r) {
    mms_free(&r->iv.inv);
    mms_free(&r->iv.cent);
    mms_free(&r->iv.lptr);
    mms_free(&r->iv.lids);
    mms_free(&r->counts);
    mms_free(&r->probes);
    mms_free(&r->perm);
    mms_free(&r->qn);
    mms_free(&r->qptr);
    mms_free(&r->qoff);
}

/* Check the arguments, resolve nlist / nprobe, compute the row norms. Local
 * (the caller agrees). */
static mms_status run_setup(ivf_run_t *r, const float *x_full, int64_t n_total, int32_t d,
                            int64_t *nbr_out, float *sim_out) {
    ivf_t *iv = &r->iv;
    MMS_CALL(mms_knn_params_check(r->p, n_total, d, 1));
    MMS_CHECK(n_total - 1 <= MMS_TOPK_KEY_MAX_ID, MMS_ERR_ARG,
              "knn: %lld rows is more than the 2^32 this implementation handles",
              (long long)n_total);
    MMS_CHECK(x_full && r->row0 >= 0 && r->n_local >= 0 && r->row0 + r->n_local <= n_total &&
                  (r->n_local == 0 || (nbr_out && sim_out)),
              MMS_ERR_ARG, "knn ivf: rows [%lld, %lld) are not inside 0..%lld or an array "
              "is missing", (long long)r->row0, (long long)(r->row0 + r->n_local),
              (long long)n_total);
    iv->n = n_total;
    iv->d = d;
    mms_knn_ivf_resolve(r->p, n_total, &iv->nlist, &r->np);
    iv->T = r->p->tile;
    iv->x = x_full;
    MMS_CALL(mms_malloc(sizeof(double) * (size_t)(n_total + 1), &iv->inv));
    for (int64_t i = 0; i < n_total; i++) {
        iv->inv[i] = knn_inv_norm(x_full + (size_t)i * (size_t)d, d);
        MMS_CHECK(iv->inv[i] >= 0, MMS_ERR_NUMERIC, "knn: row %lld holds NaN or Inf", (long long)i);
    }
    MMS_CALL(mms_malloc(sizeof(float) * (size_t)iv->nlist * (size_t)d, &iv->cent));
    return MMS_OK;
}

/* The callers' rows must tile [0, n) in rank order; counts[r] = rows of rank
 * r. Collective. */
static mms_status run_split(ivf_run_t *r) {
    ivf_t *iv = &r->iv;
    int64_t *split = NULL;
    mms_status s = MMS_OK;
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * 2 * (size_t)iv->nranks, &split));
    split[2 * iv->rank] = r->row0;
    split[2 * iv->rank + 1] = r->n_local;
    if (iv->comm != MPI_COMM_NULL) {
        int rc = MPI_Allgather(MPI_IN_PLACE, 2, MPI_INT64_T, split, 2, MPI_INT64_T, iv->comm);
        MMS_CHECK_GOTO(s, out, rc == MPI_SUCCESS, MMS_ERR_MPI, "knn ivf: MPI_Allgather failed");
    }
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * (size_t)iv->nranks, &r->counts));
    int64_t at = 0;
    for (int q = 0; q < iv->nranks; q++) {
        MMS_CHECK_GOTO(s, out, split[2 * q] == at, MMS_ERR_ARG,
                       "knn ivf: rank %d starts at row %lld, expected %lld: ranks must "
                       "hold consecutive rows in rank order",
                       q, (long long)split[2 * q], (long long)at);
        r->counts[q] = split[2 * q + 1];
        at += r->counts[q];
    }
    MMS_CHECK_GOTO(s, out, at == iv->n, MMS_ERR_ARG, "knn ivf: ranks hold %lld rows in all, not %lld",
                   (long long)at, (long long)iv->n);
out:
    mms_free(&split);
    return s;
}

/* The probes of the covered rows: whole groups around this rank's rows. Local. */
static mms_status run_probes(ivf_run_t *r) {
    r->G = group_rows(r->iv.T, r->iv.nlist, r->np);
    if (r->n_local > 0) {
        r->cov0 = r->row0 / r->G * r->G;
        r->cov1 = (r->row0 + r->n_local + r->G - 1) / r->G * r->G;
        if (r->cov1 > r->iv.n) r->cov1 = r->iv.n;
    }
    const int64_t ncov = r->cov1 - r->cov0;
    MMS_CALL(mms_malloc(sizeof(int32_t) * (size_t)(ncov * r->np + 1), &r->probes));
    double t_probe = mms_now();
    MMS_CALL(ivf_probe(&r->iv, r->cov0, r->cov1, r->np, r->probes));
    mms_log_info("knn ivf: probes of %lld rows (rank 0) in %.2f s", (long long)ncov,
                 mms_now() - t_probe);
    return MMS_OK;
}

/* The inverted lists: every row's best probe (allgathered), lists holding row
 * ids in ascending order. Collective. */
static mms_status run_lists(ivf_run_t *r) {
    ivf_t *iv = &r->iv;
    int32_t *assign_local = NULL, *assign = NULL;
    int64_t *lfill = NULL;
    mms_status s = MMS_OK;
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int32_t) * (size_t)(r->n_local + 1), &assign_local));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int32_t) * (size_t)(iv->n + 1), &assign));
    for (int64_t i = 0; i < r->n_local; i++)
        assign_local[i] = r->probes[(size_t)(r->row0 - r->cov0 + i) * (size_t)r->np];
    MMS_CALL_GOTO(s, out, knn_allgatherv(assign_local, assign, r->counts, sizeof(int32_t), iv->comm));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)iv->nlist + 1, sizeof(int64_t), &iv->lptr));
    for (int64_t i = 0; i < iv->n; i++)
        if (assign[i] >= 0) iv->lptr[assign[i] + 1]++;
    for (int32_t l = 0; l < iv->nlist; l++) iv->lptr[l + 1] += iv->lptr[l];
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * (size_t)(iv->lptr[iv->nlist] + 1), &iv->lids));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * ((size_t)iv->nlist + 1), &lfill));
    memcpy(lfill, iv->lptr, sizeof(int64_t) * (size_t)iv->nlist);
    for (int64_t i = 0; i < iv->n; i++)
        if (assign[i] >= 0) iv->lids[lfill[assign[i]]++] = i;
    int64_t lmax = 0;
    for (int32_t l = 0; l < iv->nlist; l++)
        if (iv->lptr[l + 1] - iv->lptr[l] > lmax) lmax = iv->lptr[l + 1] - iv->lptr[l];
    mms_log_info("knn ivf: lists hold %lld rows, largest %lld (mean %.0f)",
                 (long long)iv->lptr[iv->nlist], (long long)lmax,
                 (double)iv->lptr[iv->nlist] / iv->nlist);
out:
    mms_free(&assign_local);
    mms_free(&assign);
    mms_free(&lfill);
    return s;
}

/* Covered rows in search order: by group, then best list, then row. The
 * order is a global one (P-independent), and the queries of one batch (the
 * rows of a group probing a list) then lie in a few runs of qn: their best
 * lists are neighbours of the probed list. qn holds them normalised. Then the
 * queries of each list, as ascending positions in that order (qptr, qoff).
 * Local. */
static mms_status run_order(ivf_run_t *r) {
    const ivf_t *iv = &r->iv;
    const int64_t ncov = r->cov1 - r->cov0, G = r->G;
    const int32_t np = r->np;
    const size_t ud = (size_t)iv->d;
    int64_t *bucket = NULL, *lfill = NULL;
    mms_status s = MMS_OK;
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int32_t) * (size_t)(ncov + 1), &r->perm));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * ((size_t)iv->nlist + 1), &bucket));
    int64_t npos = 0;
    for (int64_t g0 = 0; g0 < ncov; g0 += G) {
        int64_t g1 = g0 + G < ncov ? g0 + G : ncov;
        memset(bucket, 0, sizeof(int64_t) * ((size_t)iv->nlist + 1));
        for (int64_t i = g0; i < g1; i++)
            if (r->probes[(size_t)i * (size_t)np] >= 0) bucket[r->probes[(size_t)i * (size_t)np] + 1]++;
        bucket[0] = npos;
        for (int32_t l = 0; l < iv->nlist; l++) bucket[l + 1] += bucket[l];
        for (int64_t i = g0; i < g1; i++) {
            int32_t l = r->probes[(size_t)i * (size_t)np];
            if (l >= 0) r->perm[bucket[l]++] = (int32_t)i;
        }
        npos = bucket[iv->nlist];
    }
    r->npos = npos;
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * (size_t)(npos + 1) * ud, &r->qn));
    for (int64_t q = 0; q < npos; q++) row_normed(iv, r->cov0 + r->perm[q], r->qn + (size_t)q * ud);
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)iv->nlist + 1, sizeof(int64_t), &r->qptr));
    for (int64_t i = 0; i < ncov * np; i++)
        if (r->probes[i] >= 0) r->qptr[r->probes[i] + 1]++;
    for (int32_t l = 0; l < iv->nlist; l++) r->qptr[l + 1] += r->qptr[l];
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int32_t) * (size_t)(r->qptr[iv->nlist] + 1), &r->qoff));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * ((size_t)iv->nlist + 1), &lfill));
    memcpy(lfill, r->qptr, sizeof(int64_t) * (size_t)iv->nlist);
    for (int64_t q = 0; q < npos; q++)
        for (int32_t j = 0; j < np; j++) {
            int32_t l = r->probes[(size_t)r->perm[q] * (size_t)np + (size_t)j];
            r->qoff[lfill[l]++] = (int32_t)q;
        }
    mms_free(&r->probes);
out:
    mms_free(&bucket);
    mms_free(&lfill);
    return s;
}

/* The search: for each list, the queries probing it against its rows, in
 * batches of one group each (at most IVF_QC queries from the group's start);
 * batches with no query of this rank are skipped. Results build in place in
 * nbr_out (the heaps' keys) and are decoded at the end. Local. */
static mms_status run_search(ivf_run_t *r, int64_t *nbr_out, float *sim_out) {
    const ivf_t *iv = &r->iv;
    const int32_t d = iv->d;
    const size_t ud = (size_t)d;
    const int64_t row0 = r->row0, n_local = r->n_local, cov0 = r->cov0, G = r->G;
    float *thr = NULL, *qx = NULL, *cx = NULL, *S = NULL;
    int64_t *hrow = NULL, *qid = NULL;
    int32_t *cnt = NULL;
    mms_status s = MMS_OK;
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * IVF_QC * ud, &qx));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * IVF_MC * ud, &cx));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * IVF_QC * IVF_MC, &S));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * IVF_QC * 2, &hrow));
    qid = hrow + IVF_QC;
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int32_t) * (size_t)(n_local + 1), &cnt));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * (size_t)(n_local + 1), &thr));
    mms_topk_rows_t h = {r->p->k, (uint64_t *)nbr_out, cnt, thr}; /* results build in place */
    for (int64_t i = 0; i < n_local; i++) {
        cnt[i] = 0;
        thr[i] = iv->inv[row0 + i] > 0.0 ? -FLT_MAX : INFINITY;
    }
    double t_search = mms_now(), flops = 0.0;
    mms_progress_t prog;
    mms_progress_begin(&prog, "knn ivf search (rank 0)", iv->nlist, "lists");
    for (int32_t l = 0; l < iv->nlist; l++) {
        const int64_t m = iv->lptr[l + 1] - iv->lptr[l];
        const int32_t *ql = r->qoff + r->qptr[l];
        const int64_t nq = r->qptr[l + 1] - r->qptr[l];
        for (int64_t c0 = 0; c0 < m && nq > 0; c0 += IVF_MC) {
            int32_t mc = (int32_t)(m - c0 < IVF_MC ? m - c0 : IVF_MC);
            const int64_t *cid = iv->lids + iv->lptr[l] + c0;
            for (int32_t c = 0; c < mc; c++) row_normed(iv, cid[c], cx + (size_t)c * ud);
            int64_t a = 0;
            while (a < nq) { /* batch: same group, at most IVF_QC from the group's start */
                int64_t g = (cov0 + r->perm[ql[a]]) / G, b = a;
                while (b < nq && b - a < IVF_QC && (cov0 + r->perm[ql[b]]) / G == g) b++;
                int any = 0;
                for (int64_t q = a; q < b && !any; q++) {
                    int64_t row = cov0 + r->perm[ql[q]];
                    any = row >= row0 && row < row0 + n_local;
                }
                if (any) {
                    int32_t mq = (int32_t)(b - a);
                    for (int32_t q = 0; q < mq; q++) {
                        int64_t row = cov0 + r->perm[ql[a + q]];
                        memcpy(qx + (size_t)q * ud, r->qn + (size_t)ql[a + q] * ud,
                               ud * sizeof(float));
                        qid[q] = row;
                        hrow[q] = row >= row0 && row < row0 + n_local ? row - row0 : -1;
                    }
                    knn_gemm_nt(mq, mc, d, qx, cx, S);
                    knn_scan_rows(S, mq, mc, hrow, qid, cid, &h);
                    flops += 2.0 * mq * mc * d;
                }
                a = b;
            }
        }
        mms_progress_update(&prog, l + 1);
    }
    mms_progress_end(&prog);
    mms_topk_rows_finish(&h, n_local, nbr_out, sim_out);
    double el = mms_now() - t_search;
    mms_log_info("knn ivf: search on rank 0 in %.2f s (%.1f GFLOP/s in sgemm batches); "
                 "total %.2f s",
                 el, el > 0 ? flops / el / 1e9 : 0.0, mms_now() - r->t_start);
out:
    mms_free(&hrow);
    mms_free(&cnt);
    mms_free(&thr);
    mms_free(&qx);
    mms_free(&cx);
    mms_free(&S);
    return s;
}

mms_status mms_knn_ivf(const float *x_full, int64_t n_total, int32_t d, int64_t row0,
                       int64_t n_local, const mms_knn_params_t *p, MPI_Comm comm,
                       int64_t *nbr_out, float *sim_out) {
    ivf_run_t R;
    ivf_run_t *r = &R;
    memset(r, 0, sizeof *r);
    r->p = p;
    r->row0 = row0;
    r->n_local = n_local;
    r->iv.comm = comm;
    knn_comm_info(comm, &r->iv.rank, &r->iv.nranks);
    mms_status s;
    MMS_CALL_GOTO(s, out, knn_agree(run_setup(r, x_full, n_total, d, nbr_out, sim_out), comm));
    MMS_CALL_GOTO(s, out, run_split(r));
    r->t_start = mms_now();
    mms_log_info("knn ivf: %lld rows x %d, k %d, nlist %d, nprobe %d, %d rank(s)",
                 (long long)n_total, (int)d, (int)p->k, (int)r->iv.nlist, (int)r->np, r->iv.nranks);
    MMS_CALL_GOTO(s, out, ivf_train(&r->iv, p));
    MMS_CALL_GOTO(s, out, run_probes(r));
    MMS_CALL_GOTO(s, out, run_lists(r));
    MMS_CALL_GOTO(s, out, run_order(r));
    MMS_CALL_GOTO(s, out, run_search(r, nbr_out, sim_out));
out:
    run_free(r);
    return s;
}
