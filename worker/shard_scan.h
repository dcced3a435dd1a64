/* shard_scan.h: exact top-k by inner product with an int8 filter, the scan a
 * shard rank runs over its rows (shard_scan.c), and the approximate list
 * scan from 4-bit codes (mms_qmat_topk_lists4). Rows are kept as int8 plus
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


/* Bytes of one 16-row group of 4-bit codes (struct mms_qmat, q4). */
#define MMS_Q4_GROUP(dp8) (8 * (size_t)(dp8) + 64)

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
    /* 4-bit codes of the same rows in the same order, for the approximate list
     * scan (mms_qmat_topk_lists4; NULL until mms_qmat_add_codes4) */
    int32_t dp8;    /* d rounded up to a multiple of 8 */
    uint8_t *q4;    /* nb * 4 16-row groups of MMS_Q4_GROUP(dp8) bytes each: the
                     * codes (two a byte, 8 dp8 bytes), then the 16 rows' code
                     * steps s = max_j |v_j| / 7 (floats), one stream per list */
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
/* Add the 4-bit codes of m's rows (X: the float rows m was made from) for
 * mms_qmat_topk_lists4: half a byte a dimension plus 4 bytes a row. m must
 * have lists. A no-op when m has them already. */
mms_status mms_qmat_add_codes4(mms_qmat_t *m, const float *X);
void mms_qmat_destroy(mms_qmat_t **m);
/* Bytes held by m. */
size_t mms_qmat_bytes(const mms_qmat_t *m);

typedef struct {
    int64_t rows_scanned; /* rows x queries through the int8 kernel */
    int64_t reranked;     /* candidates re-scored with the float rows */
    int64_t list_scans;   /* shard rounds that scanned probed lists (shard_round.c) */
    int64_t codes4_scans; /* ... of which from the 4-bit codes */
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

/* The k rows (k <= n) with the highest int8 estimate of the inner product,
 * per query (u.v ~ s t (254 p1.q + p2.q), the filter's estimate, off by at
 * most its bound: |w| s|q| + |u| |r|, about 0.4 % of |u| max_j |v_j| per
 * unit of sqrt(d)), in estimate order (ties to the smaller row), no float
 * re-rank: out_rows nq x k. The coordinator's choice of the lists to probe,
 * where a near-tie between the last probed list and the next is immaterial
 * and the float re-rank of hundreds of centroids cost more than the scan. */
mms_status mms_qmat_approx_topk(const mms_qmat_t *m, const float *Q, int32_t nq, int32_t k,
                                int32_t *out_rows);

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

/* The approximate list scan (docs/query.md, "Approximate search"): the rows
 * of query i's lists (as mms_qmat_topk_lists) are scored from their 4-bit
 * codes, v ~ s (c - 8) with c in [1, 15], against the query quantised to
 * int8; the refine best approximate scores per query (refine >= k; dead and
 * excluded rows never enter) are re-scored exactly with the float rows and
 * the best k of those are returned in the top-k order. Half the bytes of the
 * int8 list scan per row, so about half its time on a machine whose scans
 * are bound by memory bandwidth; the price is that a row of the true top-k
 * of the probed lists can miss the refine cut (refine trades that off: the
 * recall against mms_qmat_topk_lists is measured in test_ivf and
 * docs/query.md). A zero query is answered by mms_qmat_topk_lists.
 * MMS_ERR_ARG when m has no codes (mms_qmat_add_codes4). */
/* The refine of the shard rounds for k results: 8k + 64 candidates per
 * shard re-scored in float. Measured at a million images (docs/query.md):
 * 8k + 64 gives the end-to-end recall of the int8 list scan (0.9546 for
 * both at nprobe 192, 1,000 queries); 4k lost 0.016; the re-rank reads
 * (8k + 64) float rows per shard, a few percent of the bytes of the codes. */
#define MMS_QSCAN4_REFINE(k) (8 * (k) + 64)
mms_status mms_qmat_topk_lists4(const mms_qmat_t *m, const float *X, const int64_t *ids,
                                const float *Q, int32_t nq, int32_t k, int32_t refine,
                                const int64_t *exclude_rows, const int32_t *lists, int32_t nprobe,
                                int64_t *out_rows, float *out_scores, mms_qscan_stats_t *stats);

/* Rows in the lists of nq queries (nq x nprobe list numbers; out-of-range
 * entries count nothing), summed over the queries: the rows a list scan
 * reads. 0 when m has no lists. */
int64_t mms_qmat_lists_rows(const mms_qmat_t *m, const int32_t *lists, int32_t nq, int32_t nprobe);

/* Whether the 4-bit list scan pays for a batch (docs/query.md, "Which list
 * scan"): m has codes and the probed lists hold at least
 * MMS_QSCAN4_MIN_ROWS(k) rows per query. Each scanned row costs the codes
 * half the bytes of the int8 filter, and each query pays for
 * MMS_QSCAN4_REFINE(k) float rows of re-rank, read from scattered places,
 * which the int8 filter mostly skips. Measured side by side on 50k, 200k
 * and 1M images (2 workers; docs/query.md), single fused queries break even
 * at about 3,000 rows per query and shard at every size, in cache or not:
 * 20 x the refine of k 10 (2,880). The choice depends on the index and the
 * request only, never on timing or the machine. */
#define MMS_QSCAN4_MIN_ROWS(k) (20 * MMS_QSCAN4_REFINE(k))
int mms_qmat_lists4_pays(const mms_qmat_t *m, const int32_t *lists, int32_t nq, int32_t nprobe,
                         int32_t k);

/* Exact top-k by float inner product over X (n x d) like mms_topk_scan with
 * row numbers as ids, skipping the rows flagged in dead (NULL: none; ndead of
 * them): the float path of a shard that has removed rows (mms_qmat_topk's
 * fallback, and the scans without the int8 filter). */
mms_status mms_scan_float_live(const float *X, int64_t n, int32_t d, const uint8_t *dead,
                               int64_t ndead, const float *Q, int32_t nq, int32_t k,
                               const int64_t *exclude_rows, int64_t *out_rows, float *out_scores);

#endif
