/* knn_topk.c: per-row top-k heaps and the tile scans that feed them.
 *
 * The scans are the only per-candidate work besides the sgemm, so they must
 * cost about one compare per similarity: 16 similarities are compared at once
 * against the thresholds (AVX-512 when compiled for it, otherwise a plain loop
 * the compiler vectorises), and only a chunk with a hit goes to the heap code.
 * Heaps never see MPI; see knn_internal.h for the order they keep.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "knn_internal.h"

void knn_topk_reset(knn_topk_t *h, int64_t rows, const uint8_t *closed) {
    for (int64_t i = 0; i < rows; i++) {
        h->cnt[i] = 0;
        h->thr[i] = closed && closed[i] ? INFINITY : -FLT_MAX;
    }
}

/* Sift key down from the root of heap a[0..n) (root slot free). The smaller
 * child is picked without a branch; only the stop test branches. */
static inline void sift_down(uint64_t *a, int32_t n, uint64_t key) {
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

void knn_topk_offer(knn_topk_t *h, int64_t row, uint64_t key) {
    const int32_t k = h->k;
    uint64_t *a = h->key + (size_t)row * (size_t)k;
    int32_t c = h->cnt[row];
    if (c < k) { /* room left: sift up while smaller (worse) than the parent */
        int32_t pos = c;
        while (pos > 0) {
            int32_t par = (pos - 1) / 2;
            if (a[par] <= key) break;
            a[pos] = a[par];
            pos = par;
        }
        a[pos] = key;
        h->cnt[row] = ++c;
        if (c == k) h->thr[row] = knn_key_sim(a[0]);
        return;
    }
    if (key <= a[0]) return; /* not better than the worst kept */
    sift_down(a, k, key);
    h->thr[row] = knn_key_sim(a[0]);
}

void knn_topk_merge_row(knn_topk_t *h, int64_t row, const knn_topk_t *src, int64_t src_row) {
    const uint64_t *a = src->key + (size_t)src_row * (size_t)src->k;
    for (int32_t j = 0; j < src->cnt[src_row]; j++)
        if (knn_key_sim(a[j]) >= h->thr[row]) knn_topk_offer(h, row, a[j]);
}

void knn_topk_finish(knn_topk_t *h, int64_t rows, int64_t *ids, float *sims) {
    const int32_t k = h->k;
    for (int64_t r = 0; r < rows; r++) {
        uint64_t *a = h->key + (size_t)r * (size_t)k;
        int64_t *io = ids + (size_t)r * (size_t)k;
        float *so = sims + (size_t)r * (size_t)k;
        int32_t c = h->cnt[r];
        /* heap sort: the worst goes to the end of the shrinking heap */
        for (int32_t n = c; n > 1; n--) {
            uint64_t last = a[n - 1];
            a[n - 1] = a[0];
            sift_down(a, n - 1, last);
        }
        /* decode in place (io may alias a: slot j is read before written) */
        for (int32_t j = 0; j < c; j++) {
            uint64_t key = a[j];
            so[j] = knn_key_sim(key);
            io[j] = knn_key_id(key);
        }
        for (int32_t j = c; j < k; j++) {
            io[j] = -1;
            so[j] = -INFINITY;
        }
    }
}

/* One similarity that passed a threshold: offer it to whichever side(s) it may
 * enter. Returns the row-side threshold, which an offer may have raised. */
static inline float pair_hit(float v, int32_t i, int32_t j, float tr, int64_t ida0, int64_t idb0,
                             const uint8_t *zb, knn_topk_t *ha, int64_t oa, knn_topk_t *hb,
                             int64_t ob) {
    if (v >= tr && !zb[j]) {
        knn_topk_offer(ha, oa + i, knn_key(v, idb0 + j));
        tr = ha->thr[oa + i];
    }
    if (v >= hb->thr[ob + j]) knn_topk_offer(hb, ob + j, knn_key(v, ida0 + i));
    return tr;
}

void knn_scan_pair(const float *S, int32_t ma, int32_t mb, int64_t ida0, int64_t idb0, int diag,
                   const uint8_t *za, const uint8_t *zb, knn_topk_t *ha, int64_t oa,
                   knn_topk_t *hb, int64_t ob) {
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
                   const int64_t *qid, const int64_t *cid, knn_topk_t *h) {
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
                knn_topk_offer(h, row, knn_key(s[j + u], c));
                tr = h->thr[row];
            }
        }
#endif
        for (; j < mc; j++) {
            if (s[j] < tr) continue;
            int64_t c = cid[j];
            if (c < 0 || c == self) continue;
            knn_topk_offer(h, row, knn_key(s[j], c));
            tr = h->thr[row];
        }
    }
}
