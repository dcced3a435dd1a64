/* knn_topk.c: the kNN tile scans that feed the per-row top-k heaps (see
 * knn_topk.h; the heaps themselves are common/mms_topk.h).
 *
 * The scans are the only per-candidate work besides the sgemm, so they must
 * cost about one compare per similarity: 16 similarities are compared at once
 * against the thresholds (AVX-512 when compiled for it, otherwise a plain loop
 * the compiler vectorises), and only a chunk with a hit goes to the heap code.
 * No MPI.
 */
#include <math.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "knn_topk.h"

/* One similarity that passed a threshold: offer it to whichever side(s) it may
 * enter. Returns the row-side threshold, which an offer may have raised. */
static inline float pair_hit(float v, int32_t i, int32_t j, float tr, int64_t ida0, int64_t idb0,
                             const uint8_t *zb, mms_topk_rows_t *ha, int64_t oa,
                             mms_topk_rows_t *hb, int64_t ob) {
    if (v >= tr && !zb[j]) {
        mms_topk_rows_offer(ha, oa + i, mms_topk_key(v, idb0 + j));
        tr = ha->thr[oa + i];
    }
    if (v >= hb->thr[ob + j]) mms_topk_rows_offer(hb, ob + j, mms_topk_key(v, ida0 + i));
    return tr;
}

void knn_scan_pair(const float *S, int32_t ma, int32_t mb, int64_t ida0, int64_t idb0, int diag,
                   const uint8_t *za, const uint8_t *zb, mms_topk_rows_t *ha, int64_t oa,
                   mms_topk_rows_t *hb, int64_t ob) {
    const float *tc = hb->thr + ob; /* column thresholds; offers update them in place */
    for (int32_t i = 0; i < ma; i++) {
        if (za[i]) continue; /* a zero row is neither a query nor a candidate */
        const float *s = S + (size_t)i * (size_t)mb;
        float tr = ha->thr[oa + i];
        int32_t j = diag ? i + 1 : 0;
#if defined(__AVX512F__)
        for (; j + 16 <= mb; j += 16) {
            __m512 v = _mm512_loadu_ps(s + j);
            __mmask16 m = _mm512_cmp_ps_mask(v, _mm512_set1_ps(tr), _CMP_GE_OQ) |
                          _mm512_cmp_ps_mask(v, _mm512_loadu_ps(tc + j), _CMP_GE_OQ);
            while (m) {
                int u = __builtin_ctz((unsigned)m);
                m &= (__mmask16)(m - 1);
                tr = pair_hit(s[j + u], i, j + u, tr, ida0, idb0, zb, ha, oa, hb, ob);
            }
        }
#else
        for (; j + 16 <= mb; j += 16) {
            int any = 0;
            for (int u = 0; u < 16; u++) any |= (s[j + u] >= tr) | (s[j + u] >= tc[j + u]);
            if (!any) continue;
            for (int u = 0; u < 16; u++)
                if (s[j + u] >= tr || s[j + u] >= tc[j + u])
                    tr = pair_hit(s[j + u], i, j + u, tr, ida0, idb0, zb, ha, oa, hb, ob);
        }
#endif
        for (; j < mb; j++)
            if (s[j] >= tr || s[j] >= tc[j])
                tr = pair_hit(s[j], i, j, tr, ida0, idb0, zb, ha, oa, hb, ob);
    }
}

void knn_scan_rows(const float *S, int32_t mq, int32_t mc, const int64_t *hrow,
                   const int64_t *qid, const int64_t *cid, mms_topk_rows_t *h) {
    for (int32_t q = 0; q < mq; q++) {
        const int64_t row = hrow[q];
        if (row < 0) continue;
        const float *s = S + (size_t)q * (size_t)mc;
        const int64_t self = qid[q];
        float tr = h->thr[row];
        int32_t j = 0;
#if defined(__AVX512F__)
        for (; j + 16 <= mc; j += 16) {
            __mmask16 m =
                _mm512_cmp_ps_mask(_mm512_loadu_ps(s + j), _mm512_set1_ps(tr), _CMP_GE_OQ);
            while (m) {
                int u = __builtin_ctz((unsigned)m);
                m &= (__mmask16)(m - 1);
                int64_t c = cid[j + u];
                if (c < 0 || c == self || s[j + u] < tr) continue;
                mms_topk_rows_offer(h, row, mms_topk_key(s[j + u], c));
                tr = h->thr[row];
            }
        }
#endif
        for (; j < mc; j++) {
            if (s[j] < tr) continue;
            int64_t c = cid[j];
            if (c < 0 || c == self) continue;
            mms_topk_rows_offer(h, row, mms_topk_key(s[j], c));
            tr = h->thr[row];
        }
    }
}
