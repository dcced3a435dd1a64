/* knn.c: parameters, the row split, normalisation, the thin MPI edge, brute
 * force for chosen rows, recall and the threshold count (see knn.h).
 *
 * The exact ring is in knn_exact.c, the IVF index in knn_ivf.c, the tile scans
 * in knn_topk.c; the per-row heaps they fill are common/mms_topk.h.
 */
#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"
#include "knn_topk.h"
#include "mms_array.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_rng.h"

void mms_knn_params_default(mms_knn_params_t *p) {
    memset(p, 0, sizeof *p);
    p->k = 10;
    p->tile = MMS_KNN_DEFAULT_TILE;
    p->mode = MMS_KNN_EXACT;
    p->nlist = 0;
    p->nprobe = 0;
    p->train_sample = 0;
    p->kmeans_iters = 10;
    p->seed = 1;
}

mms_status mms_knn_params_check(const mms_knn_params_t *p, int64_t n_total, int32_t d, int ivf) {
    MMS_CHECK(p, MMS_ERR_ARG, "knn: no parameters given");
    MMS_CHECK(p->k >= 1 && p->k <= MMS_KNN_MAX_K, MMS_ERR_ARG,
              "knn: k = %d neighbours per row is out of range (1..%d)", (int)p->k,
              MMS_KNN_MAX_K);
    MMS_CHECK(p->tile >= MMS_KNN_MIN_TILE && p->tile <= MMS_KNN_MAX_TILE, MMS_ERR_ARG,
              "knn: tile = %d rows is out of range (%d..%d)", (int)p->tile, MMS_KNN_MIN_TILE,
              MMS_KNN_MAX_TILE);
    MMS_CHECK(n_total >= 0, MMS_ERR_ARG, "knn: negative row count %lld", (long long)n_total);
    MMS_CHECK(d >= 1, MMS_ERR_ARG, "knn: feature width d = %d must be >= 1", (int)d);
    if (ivf) {
        MMS_CHECK(p->nlist >= 0 && p->nlist <= MMS_KNN_MAX_NLIST, MMS_ERR_ARG,
                  "knn ivf: nlist = %d lists is out of range (1..%d, or 0 = auto)",
                  (int)p->nlist, MMS_KNN_MAX_NLIST);
        MMS_CHECK(p->nprobe >= 0 && (p->nlist == 0 || p->nprobe <= p->nlist), MMS_ERR_ARG,
                  "knn ivf: nprobe = %d must be in 1..nlist (%d), or 0 = auto", (int)p->nprobe,
                  (int)p->nlist);
        MMS_CHECK(p->train_sample >= 0, MMS_ERR_ARG, "knn ivf: train_sample must be >= 0");
        MMS_CHECK(p->kmeans_iters >= 0 && p->kmeans_iters <= 1000, MMS_ERR_ARG,
                  "knn ivf: kmeans_iters = %d is out of range (0..1000)", (int)p->kmeans_iters);
    }
    return MMS_OK;
}

void mms_knn_rows_for_rank(int64_t n, int32_t tile, int nranks, int rank, int64_t *row0,
                           int64_t *nrows) {
    if (tile <= 0) tile = MMS_KNN_DEFAULT_TILE;
    if (nranks < 1) nranks = 1;
    int64_t nt = (n + tile - 1) / tile;
    int64_t t0 = nt * rank / nranks, t1 = nt * (rank + 1) / nranks;
    int64_t r0 = t0 * tile, r1 = t1 * tile;
    if (r0 > n) r0 = n;
    if (r1 > n) r1 = n;
    *row0 = r0;
    *nrows = r1 - r0;
}

int64_t mms_knn_count_above(const float *sim, int64_t n_rows, int32_t k, float threshold,
                            int32_t *count_out) {
    int64_t total = 0;
    for (int64_t i = 0; i < n_rows; i++) {
        const float *s = sim + (size_t)i * (size_t)k;
        int32_t c = 0;
        while (c < k && s[c] >= threshold) c++; /* -INFINITY padding stops it */
        if (count_out) count_out[i] = c;
        total += c;
    }
    return total;
}

/* ---- rows ---- */

double knn_inv_norm(const float *x, int32_t d) {
    /* eight partial sums in a fixed pattern, added in a fixed order: the same
     * bits for a row anywhere, and the compiler may vectorise it */
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int32_t j = 0;
    for (; j + 8 <= d; j += 8)
        for (int u = 0; u < 8; u++) acc[u] += (double)x[j + u] * (double)x[j + u];
    for (int u = 0; j < d; j++, u++) acc[u] += (double)x[j] * (double)x[j];
    double ss = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    if (!isfinite(ss)) return -1.0;
    return ss > 0.0 ? 1.0 / sqrt(ss) : 0.0;
}

void knn_scale_row(const float *x, int32_t d, double inv, float *y) {
    for (int32_t j = 0; j < d; j++) y[j] = (float)((double)x[j] * inv);
}

void knn_gemm_nt(int32_t m, int32_t n, int32_t d, const float *a, const float *b, float *c) {
    if (m <= 0 || n <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, d, 1.0f, a, d, b, d, 0.0f, c, n);
}

/* ---- MPI edge ---- */

void knn_comm_info(MPI_Comm comm, int *rank, int *nranks) {
    *rank = 0;
    *nranks = 1;
    if (comm == MPI_COMM_NULL) return;
    MPI_Comm_rank(comm, rank);
    MPI_Comm_size(comm, nranks);
}

mms_status knn_agree(mms_status local, MPI_Comm comm) {
    if (comm == MPI_COMM_NULL) return local;
    return mms_mpi_agree(local, comm);
}

#define KNN_CHUNK_BYTES ((size_t)1 << 30)

mms_status knn_isend_bytes(const void *buf, size_t bytes, int dest, int tag, MPI_Comm comm,
                           MPI_Request *reqs, int *nreq, int maxreq) {
    size_t off = 0;
    do { /* at least one message, even when empty, so sizes never need agreeing */
        size_t len = bytes - off < KNN_CHUNK_BYTES ? bytes - off : KNN_CHUNK_BYTES;
        MMS_CHECK(*nreq < maxreq, MMS_ERR_INTERNAL, "knn: message of %zu bytes needs too many chunks", bytes);
        MMS_MPI_CALL(MPI_Isend((const char *)buf + off, (int)len, MPI_BYTE, dest, tag, comm,
                               &reqs[(*nreq)++]));
        off += len;
    } while (off < bytes);
    return MMS_OK;
}

mms_status knn_irecv_bytes(void *buf, size_t bytes, int src, int tag, MPI_Comm comm,
                           MPI_Request *reqs, int *nreq, int maxreq) {
    size_t off = 0;
    do {
        size_t len = bytes - off < KNN_CHUNK_BYTES ? bytes - off : KNN_CHUNK_BYTES;
        MMS_CHECK(*nreq < maxreq, MMS_ERR_INTERNAL, "knn: message of %zu bytes needs too many chunks", bytes);
        MMS_MPI_CALL(MPI_Irecv((char *)buf + off, (int)len, MPI_BYTE, src, tag, comm,
                               &reqs[(*nreq)++]));
        off += len;
    } while (off < bytes);
    return MMS_OK;
}

mms_status knn_sendrecv_bytes(const void *sbuf, size_t sbytes, int dest, void *rbuf,
                              size_t rbytes, int src, int tag, MPI_Comm comm) {
    MPI_Request reqs[2 * KNN_MAX_CHUNKS];
    int nreq = 0;
    MMS_CALL(knn_irecv_bytes(rbuf, rbytes, src, tag, comm, reqs, &nreq, 2 * KNN_MAX_CHUNKS));
    MMS_CALL(knn_isend_bytes(sbuf, sbytes, dest, tag, comm, reqs, &nreq, 2 * KNN_MAX_CHUNKS));
    MMS_MPI_CALL(MPI_Waitall(nreq, reqs, MPI_STATUSES_IGNORE));
    return MMS_OK;
}

mms_status knn_allgatherv(const void *mine, void *all, const int64_t *counts, size_t elem,
                          MPI_Comm comm) {
    int rank, nranks;
    knn_comm_info(comm, &rank, &nranks);
    if (nranks == 1) {
        if (counts[0] > 0 && all != mine) memmove(all, mine, (size_t)counts[0] * elem);
        return MMS_OK;
    }
    int *rc = NULL, *rd = NULL;
    mms_status s = MMS_OK;
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int) * (size_t)nranks * 2, &rc));
    rd = rc + nranks;
    int64_t off = 0;
    for (int r = 0; r < nranks; r++) {
        int64_t b = counts[r] * (int64_t)elem;
        MMS_CHECK_GOTO(s, out, b <= INT_MAX && off <= INT_MAX, MMS_ERR_ARG,
                       "knn: allgather of %lld bytes is too large for one MPI call",
                       (long long)(off + b));
        rc[r] = (int)b;
        rd[r] = (int)off;
        off += b;
    }
    {
        int rcode = MPI_Allgatherv(mine, rc[rank], MPI_BYTE, all, rc, rd, MPI_BYTE, comm);
        if (rcode != MPI_SUCCESS) {
            mms_mpi_error(rcode, "MPI_Allgatherv", __FILE__, __LINE__, __func__);
            s = MMS_ERR_MPI;
        }
    }
out:
    mms_free(&rc);
    return s;
}

/* ---- brute force and recall ---- */

#define KNN_BF_QCHUNK 1024
#define KNN_BF_CTILE 4096

mms_status mms_knn_bruteforce(const float *x_full, int64_t n_total, int32_t d,
                              const int64_t *rows, int64_t nq, int32_t k, int64_t *nbr_out,
                              float *sim_out) {
    MMS_CHECK(k >= 1 && k <= MMS_KNN_MAX_K, MMS_ERR_ARG,
              "knn: k = %d neighbours per row is out of range (1..%d)", (int)k, MMS_KNN_MAX_K);
    MMS_CHECK(d >= 1 && n_total >= 0 && nq >= 0, MMS_ERR_ARG, "knn bruteforce: bad sizes");
    for (int64_t q = 0; q < nq; q++)
        MMS_CHECK(rows[q] >= 0 && rows[q] < n_total, MMS_ERR_ARG,
                  "knn bruteforce: query row %lld outside 0..%lld", (long long)rows[q],
                  (long long)n_total - 1);
    mms_status s = MMS_OK;
    float *qx = NULL, *cx = NULL, *S = NULL, *thr = NULL;
    int64_t *cid = NULL, *qid = NULL, *hrow = NULL;
    int32_t *cnt = NULL;
    uint8_t *closed = NULL;
    const size_t ud = (size_t)d;
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * KNN_BF_QCHUNK * ud, &qx));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * KNN_BF_CTILE * ud, &cx));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * KNN_BF_QCHUNK * KNN_BF_CTILE, &S));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * KNN_BF_CTILE, &cid));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int64_t) * KNN_BF_QCHUNK * 2, &qid));
    hrow = qid + KNN_BF_QCHUNK;
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(int32_t) * (size_t)(nq + 1), &cnt));
    MMS_CALL_GOTO(s, out, mms_malloc(sizeof(float) * (size_t)(nq + 1), &thr));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)nq + 1, 1, &closed));
    MMS_CHECK_GOTO(s, out, n_total - 1 <= MMS_TOPK_KEY_MAX_ID, MMS_ERR_ARG,
                   "knn: %lld rows is more than the 2^32 this implementation handles",
                   (long long)n_total);
    mms_topk_rows_t h = {k, (uint64_t *)nbr_out, cnt, thr};
    for (int64_t q0 = 0; q0 < nq; q0 += KNN_BF_QCHUNK) {
        int32_t mq = (int32_t)(nq - q0 < KNN_BF_QCHUNK ? nq - q0 : KNN_BF_QCHUNK);
        for (int32_t q = 0; q < mq; q++) {
            const float *xr = x_full + (size_t)rows[q0 + q] * ud;
            double inv = knn_inv_norm(xr, d);
            MMS_CHECK_GOTO(s, out, inv >= 0, MMS_ERR_NUMERIC,
                           "knn: row %lld holds NaN or Inf", (long long)rows[q0 + q]);
            closed[q0 + q] = inv == 0.0;
            knn_scale_row(xr, d, inv, qx + (size_t)q * ud);
            qid[q] = rows[q0 + q];
            hrow[q] = closed[q0 + q] ? -1 : q0 + q;
        }
        for (int32_t q = 0; q < mq; q++) {
            cnt[q0 + q] = 0;
            thr[q0 + q] = closed[q0 + q] ? INFINITY : -FLT_MAX;
        }
        for (int64_t c0 = 0; c0 < n_total; c0 += KNN_BF_CTILE) {
            int32_t mc = (int32_t)(n_total - c0 < KNN_BF_CTILE ? n_total - c0 : KNN_BF_CTILE);
            for (int32_t c = 0; c < mc; c++) {
                const float *xr = x_full + (size_t)(c0 + c) * ud;
                double inv = knn_inv_norm(xr, d);
                MMS_CHECK_GOTO(s, out, inv >= 0, MMS_ERR_NUMERIC,
                               "knn: row %lld holds NaN or Inf", (long long)(c0 + c));
                knn_scale_row(xr, d, inv, cx + (size_t)c * ud);
                cid[c] = inv > 0.0 ? c0 + c : -1;
            }
            knn_gemm_nt(mq, mc, d, qx, cx, S);
            knn_scan_rows(S, mq, mc, hrow, qid, cid, &h);
        }
    }
    mms_topk_rows_finish(&h, nq, nbr_out, sim_out);
out:
    mms_free(&qx);
    mms_free(&cx);
    mms_free(&S);
    mms_free(&cid);
    mms_free(&qid);
    mms_free(&cnt);
    mms_free(&thr);
    mms_free(&closed);
    return s;
}

/* The recall sample: `sample` draws with replacement from [0, n), sorted,
 * duplicates removed; the same list on every rank at any P. */
static mms_status recall_rows(int64_t n, int64_t sample, uint64_t seed, int64_t **rows,
                              int64_t *nrows) {
    MMS_CALL(mms_malloc(sizeof(int64_t) * (size_t)(sample > 0 ? sample : 1), rows));
    int64_t *v = *rows;
    mms_rng_t r;
    mms_rng_init(&r, seed, MMS_STREAM_SAMPLE, 0x6b6e6e72ull /* "knnr" */);
    for (int64_t i = 0; i < sample; i++) v[i] = (int64_t)mms_rng_below64(&r, (uint64_t)n);
    qsort(v, (size_t)sample, sizeof(int64_t), mms_cmp_i64);
    int64_t m = 0;
    for (int64_t i = 0; i < sample; i++)
        if (m == 0 || v[m - 1] != v[i]) v[m++] = v[i];
    *nrows = m;
    return MMS_OK;
}

mms_status mms_knn_recall(const float *x_full, int64_t n_total, int32_t d, int64_t row0,
                          int64_t n_local, const int64_t *nbr_local, int32_t k, int32_t k_eval,
                          int64_t sample, uint64_t seed, MPI_Comm comm, double *recall_out) {
    mms_status s = MMS_OK;
    int64_t *rows = NULL, *ex_nbr = NULL, nrows = 0, nmine = 0, first = 0;
    float *ex_sim = NULL;
    int64_t sums[2] = {0, 0}; /* hits, exact neighbours */
    *recall_out = 1.0;
    MMS_CHECK_GOTO(s, agree, k >= 1 && k <= MMS_KNN_MAX_K && k_eval >= 1 && k_eval <= k,
                   MMS_ERR_ARG, "knn recall: need 1 <= k_eval (%d) <= k (%d) <= %d", (int)k_eval,
                   (int)k, MMS_KNN_MAX_K);
    MMS_CHECK_GOTO(s, agree, sample >= 0 && n_total >= 0 && row0 >= 0 && n_local >= 0 &&
                                 row0 + n_local <= n_total,
                   MMS_ERR_ARG, "knn recall: rows [%lld, %lld) are not inside 0..%lld",
                   (long long)row0, (long long)(row0 + n_local), (long long)n_total);
    if (n_total > 0 && sample > 0) {
        MMS_CALL_GOTO(s, agree, recall_rows(n_total, sample, seed, &rows, &nrows));
        while (first < nrows && rows[first] < row0) first++;
        while (first + nmine < nrows && rows[first + nmine] < row0 + n_local) nmine++;
        MMS_CALL_GOTO(s, agree, mms_malloc(sizeof(int64_t) * (size_t)(nmine * k_eval + 1), &ex_nbr));
        MMS_CALL_GOTO(s, agree, mms_malloc(sizeof(float) * (size_t)(nmine * k_eval + 1), &ex_sim));
        MMS_CALL_GOTO(s, agree, mms_knn_bruteforce(x_full, n_total, d, rows + first, nmine,
                                                   k_eval, ex_nbr, ex_sim));
        for (int64_t q = 0; q < nmine; q++) {
            const int64_t *ex = ex_nbr + (size_t)q * (size_t)k_eval;
            const int64_t *ap = nbr_local + (size_t)(rows[first + q] - row0) * (size_t)k;
            for (int32_t a = 0; a < k_eval && ex[a] >= 0; a++) {
                sums[1]++;
                for (int32_t b = 0; b < k_eval; b++)
                    if (ap[b] == ex[a]) {
                        sums[0]++;
                        break;
                    }
            }
        }
    }
agree:
    s = knn_agree(s, comm);
    if (s == MMS_OK && comm != MPI_COMM_NULL) {
        int rc = MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_INT64_T, MPI_SUM, comm);
        if (rc != MPI_SUCCESS) {
            mms_mpi_error(rc, "MPI_Allreduce", __FILE__, __LINE__, __func__);
            s = MMS_ERR_MPI;
        }
    }
    if (s == MMS_OK && sums[1] > 0) *recall_out = (double)sums[0] / (double)sums[1];
    mms_free(&rows);
    mms_free(&ex_nbr);
    mms_free(&ex_sim);
    return s;
}
