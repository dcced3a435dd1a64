/* knn_topk.h: the kNN tile scans: one similarity tile in, candidates offered
 * to per-row top-k heaps (common/mms_topk.h, mms_topk_rows_t) behind their
 * admission thresholds. Shared by the exact ring (knn_exact.c), the IVF
 * search (knn_ivf.c) and brute force (knn.c); the unit test checks them alone.
 *
 * The heaps keep (score desc, id asc), a strict total order on a row's
 * candidates (ids are distinct), so the kept set is the exact top-k whatever
 * order candidates arrive in, and partial sets merge exactly. Ids must be
 * below 2^32 (MMS_TOPK_KEY_MAX_ID). Arrays only: no MPI, no allocation.
 */
#ifndef MMS_KNN_TOPK_H
#define MMS_KNN_TOPK_H

#include <stdint.h>

#include "mms_topk.h"

/* Scan one similarity tile S (ma x mb, row-major, ld mb) where S[i][j] is the
 * cosine of row-side row i (global id ida0 + i) and column-side row j (global
 * id idb0 + j). Offers j to i's heap (ha, row oa + i) and i to j's heap (hb,
 * row ob + j), skipping zero rows (za, zb flags). diag != 0: both sides are the
 * same tile (ha == hb, oa == ob) and only j > i is used, so each unordered pair
 * is seen once and a row never meets itself. Most entries are rejected by one
 * vector compare against the thresholds. */
void knn_scan_pair(const float *S, int32_t ma, int32_t mb, int64_t ida0, int64_t idb0, int diag,
                   const uint8_t *za, const uint8_t *zb, mms_topk_rows_t *ha, int64_t oa,
                   mms_topk_rows_t *hb, int64_t ob);

/* Scan S (mq x mc, ld mc) row by row: query q (global id qid[q]) goes to heap
 * row hrow[q] (skipped when < 0); candidate j has global id cid[j] (skipped when
 * < 0 or equal to qid[q]). */
void knn_scan_rows(const float *S, int32_t mq, int32_t mc, const int64_t *hrow,
                   const int64_t *qid, const int64_t *cid, mms_topk_rows_t *h);

#endif
