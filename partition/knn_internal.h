/* knn_internal.h: pieces shared by knn.c, knn_topk.c, knn_exact.c, knn_ivf.c.
 *
 * Not a public API (the unit test uses it to check the kernels alone). The
 * kernels work on arrays only; the MPI helpers at the end accept
 * MPI_COMM_NULL as "this process alone" (they then copy or do nothing).
 */
#ifndef MMS_KNN_INTERNAL_H
#define MMS_KNN_INTERNAL_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "knn.h"
#include "mms_status.h"

/* ---- per-row top-k (knn_topk.c) ----
 * One binary heap per row with the WORST kept entry at the root. An entry is a
 * 64-bit key: the similarity's bits mapped to an order-preserving unsigned in
 * the high half (-0 taken as +0), the complement of the 32-bit id in the low
 * half. So key order is (sim, then smaller id) and one unsigned compare ranks
 * two candidates: a strict total order on a row's candidates (ids are
 * distinct), hence the kept set is the exact top-k whatever order candidates
 * arrive in, and partial top-k sets merge exactly. Ids must be < 2^32.
 * thr[row] is the one-compare filter: a candidate with sim < thr[row] cannot
 * enter (thr = -FLT_MAX while the heap has room, the root's sim when full,
 * +INFINITY for a row that accepts nothing such as a zero row).
 * Arrays are borrowed; key may alias the caller's int64 id output. */
typedef struct {
    int32_t k;
    uint64_t *key; /* rows x k */
    int32_t *cnt;  /* rows: entries held */
    float *thr;    /* rows */
} knn_topk_t;

#define KNN_MAX_ID 0xffffffffll

static inline uint64_t knn_key(float s, int64_t id) {
    union {
        float f;
        uint32_t u;
    } v = {s};
    uint32_t b = v.u == 0x80000000u ? 0u : v.u; /* -0 == +0 */
    b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    return ((uint64_t)b << 32) | (uint32_t)~(uint32_t)id;
}

static inline float knn_key_sim(uint64_t key) {
    uint32_t b = (uint32_t)(key >> 32);
    b = (b & 0x80000000u) ? (b & 0x7fffffffu) : ~b;
    union {
        uint32_t u;
        float f;
    } v = {b};
    return v.f;
}

static inline int64_t knn_key_id(uint64_t key) { return (int64_t)(uint32_t)~(uint32_t)key; }

/* Empty every row; rows with closed[i] != 0 (may be NULL) accept nothing. */
void knn_topk_reset(knn_topk_t *h, int64_t rows, const uint8_t *closed);
/* Offer a candidate key (knn_key) to row; kept iff it beats the current worst. */
void knn_topk_offer(knn_topk_t *h, int64_t row, uint64_t key);
/* Offer every entry held by row `src_row` of `src` to row `row` of h. */
void knn_topk_merge_row(knn_topk_t *h, int64_t row, const knn_topk_t *src, int64_t src_row);
/* Sort each row best-first and write it out as ids / sims, padded with -1 /
 * -INFINITY up to k. ids may be the very memory of h->key (row by row, in place). */
void knn_topk_finish(knn_topk_t *h, int64_t rows, int64_t *ids, float *sims);

/* Scan one similarity tile S (ma x mb, row-major, ld mb) where S[i][j] is the
 * cosine of row-side row i (global id ida0 + i) and column-side row j (global
 * id idb0 + j). Offers j to i's heap (ha, row oa + i) and i to j's heap (hb,
 * row ob + j), skipping zero rows (za, zb flags). diag != 0: both sides are the
 * same tile (ha == hb, oa == ob) and only j > i is used, so each unordered pair
 * is seen once and a row never meets itself. Most entries are rejected by one
 * vector compare against the thresholds. */
void knn_scan_pair(const float *S, int32_t ma, int32_t mb, int64_t ida0, int64_t idb0, int diag,
                   const uint8_t *za, const uint8_t *zb, knn_topk_t *ha, int64_t oa,
                   knn_topk_t *hb, int64_t ob);

/* Scan S (mq x mc, ld mc) row by row: query q (global id qid[q]) goes to heap
 * row hrow[q] (skipped when < 0); candidate j has global id cid[j] (skipped when
 * < 0 or equal to qid[q]). */
void knn_scan_rows(const float *S, int32_t mq, int32_t mc, const int64_t *hrow,
                   const int64_t *qid, const int64_t *cid, knn_topk_t *h);

/* ---- rows (knn.c) ---- */
/* 1 / |x| in double for one row; 0 for an all-zero row; -1 if x holds NaN/Inf. */
double knn_inv_norm(const float *x, int32_t d);
/* y = x * inv, rounded to float: the one normalisation used everywhere, so the
 * same row gives the same bits in every mode and on every rank. */
void knn_scale_row(const float *x, int32_t d, double inv, float *y);
/* C (m x n, ld n) = A (m x d) B (n x d)^T through cblas_sgemm. */
void knn_gemm_nt(int32_t m, int32_t n, int32_t d, const float *a, const float *b, float *c);

/* ---- MPI edge (knn.c); comm == MPI_COMM_NULL means one process ---- */
void knn_comm_info(MPI_Comm comm, int *rank, int *nranks);
mms_status knn_agree(mms_status local, MPI_Comm comm);
/* Byte messages of any size (chunked below INT_MAX). */
mms_status knn_isend_bytes(const void *buf, size_t bytes, int dest, int tag, MPI_Comm comm,
                           MPI_Request *reqs, int *nreq, int maxreq);
mms_status knn_irecv_bytes(void *buf, size_t bytes, int src, int tag, MPI_Comm comm,
                           MPI_Request *reqs, int *nreq, int maxreq);
mms_status knn_sendrecv_bytes(const void *sbuf, size_t sbytes, int dest, void *rbuf,
                              size_t rbytes, int src, int tag, MPI_Comm comm);
/* Concatenate every rank's int32/float array in rank order (counts[r] elements
 * from rank r; total = sum counts). One process: copies. */
mms_status knn_allgatherv(const void *mine, void *all, const int64_t *counts, size_t elem,
                          MPI_Comm comm);

#define KNN_MAX_CHUNKS 64

#endif
