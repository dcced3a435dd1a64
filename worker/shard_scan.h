/* shard_scan.h: exact top-k by inner product with an int8 filter, the scan a
 * shard rank runs over its rows (shard_scan.c). Rows are kept as int8 plus
 * per-row bounds; a scan computes an approximate score and a PROVEN error
 * bound for every row, keeps the rows whose upper bound reaches the k-th best
 * lower bound, and re-ranks only those with the float rows. The result is the
 * top-k of the float scores, the same set and order a float scan gives
 * (docs/query.md, "Exactness"). No MPI, no index, no protocol.
 */
#ifndef MMS_SHARD_SCAN_H
#define MMS_SHARD_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"

typedef struct mms_qmat mms_qmat_t;


/* Widest row the int8 kernels accept (int32 accumulators stay exact). */
#define MMS_QMAT_MAX_DIM 65536

/* An int8 copy of a float matrix X (n x d) with per-row bounds. Rows are
 * packed for the kernels in blocks of 64 (shard_scan.c); padding rows are
 * zero and never reported. */
struct mms_qmat {
    int64_t n;      /* rows */
    int32_t d;      /* width of the float rows */
    int32_t dp;     /* d rounded up to a multiple of 4 */
    int64_t nb;     /* 64-row blocks */
    int8_t *q;      /* nb * 64 * dp bytes: q_v = round(v / s_v), |q| <= 127 */
    float *scale;   /* nb * 64: s_v = max_j |v_j| / 127 */
    int32_t *qsum;  /* nb * 64: sum_j q_vj */
    float *qnorm;   /* nb * 64: s_v |q_v|, rounded up */
    float *rbound;  /* nb * 64: |v - s_v q_v| + gamma_d |v|, rounded up */
    const uint8_t *dead; /* n flags, 1 = a removed row never reported (borrowed; NULL: none) */
    int64_t ndead;       /* rows flagged in dead */
    /* inverted lists (mms_qmat_create_lists; docs/query.md "Approximate search"):
     * the int8 rows are stored list after list, so a list is contiguous */
    int32_t *perm;  /* n: int8 row r is float row perm[r] (owned; NULL: identity) */
    int32_t nlist;  /* lists (0: none) */
    int64_t *lptr;  /* nlist + 1: list l is int8 rows [lptr[l], lptr[l + 1]) (owned) */
};

/* Quantise X (n x d, row-major, borrowed for the call only). Fails with
 * MMS_ERR_NUMERIC naming the row if a value is NaN/Inf, MMS_ERR_ARG for d
 * outside [1, MMS_QMAT_MAX_DIM]. */
mms_status mms_qmat_create(const float *X, int64_t n, int32_t d, mms_qmat_t **out);
/* The same with the rows stored in list order: list[i] in [0, nlist) is float
 * row i's list (borrowed for the call); rows keep their ascending order inside
 * a list. Lists are not padded: a list starts anywhere in a 64-row block, and
 * a list scan reads the 16-row groups of the layout that its list touches
 * and ignores the rows outside the list (about 15 rows of waste per list,
 * where padding lists to whole blocks would cost 32 rows a list on average,
 * in memory and in the exact scan too). Every scan below
 * works on either layout and reports float row numbers. MMS_ERR_ARG for a list
 * number out of range. */
mms_status mms_qmat_create_lists(const float *X, int64_t n, int32_t d, const int32_t *list,
                                 int32_t nlist, mms_qmat_t **out);
void mms_qmat_destroy(mms_qmat_t **m);
/* Bytes held by m. */
size_t mms_qmat_bytes(const mms_qmat_t *m);

typedef struct {
    int64_t rows_scanned; /* rows x queries through the int8 kernel */
    int64_t reranked;     /* candidates re-scored with the float rows */
} mms_qscan_stats_t;

/* Exact top-k of Q (nq x d) against the float rows X (n x d; the matrix m was
 * made from) carrying ascending ids[n] (NULL: the row number): for each query, the k rows
 * with the highest float dot product, ordered by score descending then id
 * ascending, written to out_rows (row numbers, -1 padding) and out_scores
 * (-INFINITY padding), nq x k each. exclude_rows (NULL or nq entries, -1 =
 * none) names one row per query to skip. Scores are computed as float dot
 * products of the float rows (cblas_sdot). A query whose rows the filter cannot
 * separate (more than 4k + 16384 candidates, e.g. a zero vector) is answered by a
 * float scan of all rows instead. stats (optional) is incremented. */
mms_status mms_qmat_topk(const mms_qmat_t *m, const float *X, const int64_t *ids, const float *Q,
                         int32_t nq, int32_t k, const int64_t *exclude_rows, int64_t *out_rows,
                         float *out_scores, mms_qscan_stats_t *stats);

/* mms_qmat_topk restricted to some inverted lists of m (made by
 * mms_qmat_create_lists): query i scans only lists[i * nprobe + j], j < nprobe
 * (entries -1 or >= m->nlist are skipped; each list at most once per query is
 * the caller's promise), with the same int8 filter and exact float re-rank,
 * dead rows and exclude_rows honoured, ties by id ascending. The result is the
 * exact top-k of the rows of those lists; with every list probed it equals
 * mms_qmat_topk's. A query the filter cannot separate is re-scored in float
 * over its lists' rows. MMS_ERR_ARG when m has no lists. */
mms_status mms_qmat_topk_lists(const mms_qmat_t *m, const float *X, const int64_t *ids,
                               const float *Q, int32_t nq, int32_t k, const int64_t *exclude_rows,
                               const int32_t *lists, int32_t nprobe, int64_t *out_rows,
                               float *out_scores, mms_qscan_stats_t *stats);

/* Exact top-k by float inner product over X (n x d) like mms_topk_scan with
 * row numbers as ids, skipping the rows flagged in dead (NULL: none; ndead of
 * them): the float path of a shard that has removed rows (mms_qmat_topk's
 * fallback, and the scans without the int8 filter). */
mms_status mms_scan_float_live(const float *X, int64_t n, int32_t d, const uint8_t *dead,
                               int64_t ndead, const float *Q, int32_t nq, int32_t k,
                               const int64_t *exclude_rows, int64_t *out_rows, float *out_scores);

#endif
