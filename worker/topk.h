/* topk.h: exact top-k by inner product over a shard's rows, and the merge of
 * per-shard lists into the global top-k.
 *
 * Order everywhere: score descending, then id ascending, so a merge of shard
 * lists equals a scan of all rows however they are split. Results go to caller
 * buffers of nq * k entries, padded with id -1 and score -INFINITY (faiss style).
 * Scoring is blocked: Q (nq x d) times a block of rows (cblas_sgemm), then a
 * per-query bounded selection with a running threshold, so most candidates cost
 * one compare.
 */
#ifndef MMS_TOPK_H
#define MMS_TOPK_H

#include <stdint.h>

#include "mms_status.h"

/* Rows E (n x d, row-major) carry global ids ids[n] (NULL: ids are 0..n-1 plus
 * id0). Rows whose id equals exclude[q] (if exclude != NULL and >= 0) are skipped
 * for query q. */
mms_status mms_topk_scan(const float *E, int64_t n, int32_t d, const int64_t *ids, int64_t id0,
                         const float *Q, int32_t nq, int32_t k, const int64_t *exclude,
                         int64_t *out_ids, float *out_scores);

/* Merge nl lists of k entries each (lists[l] laid out like mms_topk_scan's
 * output for one query) into the best k. */
void mms_topk_merge(const int64_t *const *ids, const float *const *scores, int nl, int32_t k,
                    int64_t *out_ids, float *out_scores);

#endif
