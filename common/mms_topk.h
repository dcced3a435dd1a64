/* mms_topk.h: the one top-k order of mmsage and the structures that keep it.
 *
 * Order everywhere (query results, shard lists, kNN lists, filter bounds):
 * score descending, then id ascending; padding entries (id -1, score
 * -INFINITY) come last. Because ties go to the smaller id, the order is a
 * strict total order on distinct ids, so a merge of partial lists equals one
 * pass over all candidates however they were split (any rank count).
 *
 * What is here:
 *   ordering      mms_topk_before / mms_topk_cmp
 *   sorted lists  k entries best first, padded (faiss style): mms_topk_pad,
 *                 mms_topk_insert (bounded insertion), mms_topk_merge (k-way
 *                 merge of sorted lists, with where each entry came from);
 *                 the same order and insertion on double scores for callers
 *                 that decide in double (the eval baselines): *_f64
 *   keyed heaps   a candidate as one 64-bit key (score bits, then the
 *                 complement of a 32-bit id), so one unsigned compare ranks
 *                 two candidates: mms_topk_heap_* (one bounded heap, worst at
 *                 the root) and mms_topk_rows_* (one heap per row with a
 *                 one-compare admission threshold, for the kNN tile scans)
 *   float scan    mms_topk_scan: exact top-k by inner product over float rows
 *                 (blocked cblas_sgemm plus bounded insertion)
 * What is not: MPI (the callers gather lists), the int8 filter
 * (worker/shard_scan.h), the SIMD tile scans of kNN (partition/knn_topk.h).
 * The hot helpers are static inline so the scans that call them per
 * candidate inline them.
 */
#ifndef MMS_TOPK_H
#define MMS_TOPK_H

#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"

/* ---------------------------------------------------------------- order */

/* 1 if (sa, ia) comes before (sb, ib): higher score, or the same score and a
 * smaller id; an id < 0 (padding) never comes before anything of equal score. */
static inline int mms_topk_before(float sa, int64_t ia, float sb, int64_t ib) {
    return sa > sb || (sa == sb && ia >= 0 && (ib < 0 || ia < ib));
}

/* -1, 0, 1 as (sa, ia) comes before, ties with, or after (sb, ib): a qsort
 * comparator's answer in the top-k order. */
static inline int mms_topk_cmp(float sa, int64_t ia, float sb, int64_t ib) {
    return mms_topk_before(sa, ia, sb, ib) ? -1 : mms_topk_before(sb, ib, sa, ia) ? 1 : 0;
}

/* ---------------------------------------------------------------- sorted lists */

/* n entries of padding: id -1, score -INFINITY. */
void mms_topk_pad(int64_t *ids, float *scores, size_t n);

/* Insert (s, id) into the sorted list ids/sc of k entries (best first, worst
 * last) if it comes before the last entry; the last entry drops out. */
static inline void mms_topk_insert(int64_t *ids, float *sc, int32_t k, float s, int64_t id) {
    if (!mms_topk_before(s, id, sc[k - 1], ids[k - 1])) return;
    int32_t j = k - 1;
    while (j > 0 && mms_topk_before(s, id, sc[j - 1], ids[j - 1])) {
        sc[j] = sc[j - 1];
        ids[j] = ids[j - 1];
        j--;
    }
    sc[j] = s;
    ids[j] = id;
}

/* The same on double scores: the order of mms_topk_before, a padded list of
 * doubles (padding: id -1, score -INFINITY). For callers whose scores are
 * decided in double, where rounding them to float would turn some distinct
 * scores into ties and reorder them by id. */
static inline int mms_topk_before_f64(double sa, int64_t ia, double sb, int64_t ib) {
    return sa > sb || (sa == sb && ia >= 0 && (ib < 0 || ia < ib));
}

void mms_topk_pad_f64(int64_t *ids, double *scores, size_t n);

static inline void mms_topk_insert_f64(int64_t *ids, double *sc, int32_t k, double s, int64_t id) {
    if (!mms_topk_before_f64(s, id, sc[k - 1], ids[k - 1])) return;
    int32_t j = k - 1;
    while (j > 0 && mms_topk_before_f64(s, id, sc[j - 1], ids[j - 1])) {
        sc[j] = sc[j - 1];
        ids[j] = ids[j - 1];
        j--;
    }
    sc[j] = s;
    ids[j] = id;
}

/* Merge nl sorted lists (ids[l], scores[l]: kin entries each, padded with id
 * -1; lists hold distinct ids) into the best k, written to out_ids /
 * out_scores (k entries, padded). from_list / from_pos (each may be NULL; k
 * entries) receive the list and the position in it of every output entry (-1
 * for padding). MMS_ERR_NOMEM only for more than 64 lists when memory runs
 * out (the output is then all padding). */
mms_status mms_topk_merge(const int64_t *const *ids, const float *const *scores, int nl,
                          int32_t kin, int32_t k, int64_t *out_ids, float *out_scores,
                          int *from_list, int32_t *from_pos);

/* ---------------------------------------------------------------- keyed heaps */

/* Ids a key can carry: below 2^32. */
#define MMS_TOPK_KEY_MAX_ID 0xffffffffll

/* The key of (s, id): s mapped to an order-preserving unsigned in the high
 * half (-0 taken as +0), the complement of the 32-bit id in the low half. So
 * key order is the top-k order reversed: a larger key is a better candidate. */
static inline uint64_t mms_topk_key(float s, int64_t id) {
    union {
        float f;
        uint32_t u;
    } v = {s};
    uint32_t b = v.u == 0x80000000u ? 0u : v.u; /* -0 == +0 */
    b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    return ((uint64_t)b << 32) | (uint32_t)~(uint32_t)id;
}

static inline float mms_topk_key_score(uint64_t key) {
    uint32_t b = (uint32_t)(key >> 32);
    b = (b & 0x80000000u) ? (b & 0x7fffffffu) : ~b;
    union {
        uint32_t u;
        float f;
    } v = {b};
    return v.f;
}

static inline int64_t mms_topk_key_id(uint64_t key) { return (int64_t)(uint32_t)~(uint32_t)key; }

/* One bounded heap a[0..*n) of capacity k keeping the k largest keys, the
 * WORST kept at the root a[0]. */

/* Sift key down from the root of a[0..n) (root slot free). The smaller child
 * is picked without a branch; only the stop test branches. */
static inline void mms_topk_heap_sift_down(uint64_t *a, int32_t n, uint64_t key) {
    int32_t pos = 0;
    for (;;) {
        int32_t l = 2 * pos + 1;
        if (l >= n) break;
        int32_t w = l + (l + 1 < n && a[l + 1] < a[l]);
        if (a[w] >= key) break;
        a[pos] = a[w];
        pos = w;
    }
    a[pos] = key;
}

/* Offer key: kept while the heap has room, or when it beats the root (the
 * worst kept, which then drops out). Returns 1 if key was kept. */
static inline int mms_topk_heap_offer(uint64_t *a, int32_t *n, int32_t k, uint64_t key) {
    int32_t c = *n;
    if (c < k) { /* room left: sift up while smaller (worse) than the parent */
        int32_t pos = c;
        while (pos > 0) {
            int32_t par = (pos - 1) / 2;
            if (a[par] <= key) break;
            a[pos] = a[par];
            pos = par;
        }
        a[pos] = key;
        *n = c + 1;
        return 1;
    }
    if (key <= a[0]) return 0; /* not better than the worst kept */
    mms_topk_heap_sift_down(a, k, key);
    return 1;
}

/* Sort a heap a[0..n) in place, best (largest key) first. */
void mms_topk_heap_sort(uint64_t *a, int32_t n);

/* One heap per row, with the admission threshold of each row: a candidate
 * with score < thr[row] cannot enter (thr = -FLT_MAX while the heap has room,
 * the root's score when full, +INFINITY for a row that accepts nothing such as
 * a zero row), so most candidates cost one float compare. Arrays are borrowed;
 * key may alias the caller's int64 id output (see mms_topk_rows_finish). */
typedef struct {
    int32_t k;
    uint64_t *key; /* rows x k */
    int32_t *cnt;  /* rows: entries held */
    float *thr;    /* rows */
} mms_topk_rows_t;

/* Empty every row; rows with closed[i] != 0 (closed may be NULL) accept nothing. */
void mms_topk_rows_reset(mms_topk_rows_t *h, int64_t rows, const uint8_t *closed);

/* Offer key (mms_topk_key) to row; kept iff it beats the row's worst. */
static inline void mms_topk_rows_offer(mms_topk_rows_t *h, int64_t row, uint64_t key) {
    const int32_t k = h->k;
    uint64_t *a = h->key + (size_t)row * (size_t)k;
    if (mms_topk_heap_offer(a, &h->cnt[row], k, key) && h->cnt[row] == k)
        h->thr[row] = mms_topk_key_score(a[0]);
}

/* Offer every entry held by row src_row of src to row `row` of h. */
void mms_topk_rows_merge_row(mms_topk_rows_t *h, int64_t row, const mms_topk_rows_t *src,
                             int64_t src_row);

/* Sort each of rows best first and write it out as ids / scores (rows x k),
 * padded with -1 / -INFINITY. ids may be the very memory of h->key (decoded
 * row by row, in place). */
void mms_topk_rows_finish(mms_topk_rows_t *h, int64_t rows, int64_t *ids, float *scores);

/* ---------------------------------------------------------------- float scan */

/* Exact top-k by inner product: rows E (n x d, row-major) carry global ids
 * ids[n] (NULL: ids are id0 + row number). For each query q of Q (nq x d) the
 * k best rows by (E_row . Q_q, id), written to out_ids / out_scores (nq x k,
 * padded). A row whose id equals exclude[q] (exclude may be NULL; -1 = none)
 * is skipped for query q. Blocked: Q times a block of rows (cblas_sgemm, or
 * sgemv for one query), then a bounded insertion behind a running threshold,
 * so most rows cost one compare. MMS_ERR_ARG for k < 1 or bad sizes. */
mms_status mms_topk_scan(const float *E, int64_t n, int32_t d, const int64_t *ids, int64_t id0,
                         const float *Q, int32_t nq, int32_t k, const int64_t *exclude,
                         int64_t *out_ids, float *out_scores);

#endif
