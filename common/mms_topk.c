/* mms_topk.c: sorted lists, their merge, keyed heaps and the float scan (see
 * mms_topk.h). No MPI. */
#include "mms_topk.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void mms_topk_pad(int64_t *ids, float *scores, size_t n) {
    for (size_t i = 0; i < n; i++) {
        ids[i] = -1;
        scores[i] = -INFINITY;
    }
}

void mms_topk_pad_f64(int64_t *ids, double *scores, size_t n) {
    for (size_t i = 0; i < n; i++) {
        ids[i] = -1;
        scores[i] = -INFINITY;
    }
}

/* ---------------------------------------------------------------- merge */

mms_status mms_topk_merge(const int64_t *const *ids, const float *const *scores, int nl,
                          int32_t kin, int32_t k, int64_t *out_ids, float *out_scores,
                          int *from_list, int32_t *from_pos) {
    int32_t head[64];
    int32_t *hd = nl <= 64 ? head : calloc((size_t)nl, sizeof(int32_t));
    if (!hd) {
        mms_topk_pad(out_ids, out_scores, (size_t)k);
        for (int32_t i = 0; i < k; i++) {
            if (from_list) from_list[i] = -1;
            if (from_pos) from_pos[i] = -1;
        }
        MMS_CHECK(0, MMS_ERR_NOMEM, "top-k merge: out of memory for %d list heads", nl);
    }
    memset(hd, 0, (size_t)(nl > 0 ? nl : 0) * sizeof(int32_t));
    for (int32_t i = 0; i < k; i++) {
        int best = -1;
        for (int l = 0; l < nl; l++) {
            if (hd[l] >= kin || ids[l][hd[l]] < 0) continue;
            if (best < 0 || mms_topk_before(scores[l][hd[l]], ids[l][hd[l]],
                                            scores[best][hd[best]], ids[best][hd[best]]))
                best = l;
        }
        if (best < 0) {
            out_ids[i] = -1;
            out_scores[i] = -INFINITY;
            if (from_list) from_list[i] = -1;
            if (from_pos) from_pos[i] = -1;
            continue;
        }
        out_ids[i] = ids[best][hd[best]];
        out_scores[i] = scores[best][hd[best]];
        if (from_list) from_list[i] = best;
        if (from_pos) from_pos[i] = hd[best];
        hd[best]++;
    }
    if (hd != head) free(hd);
    return MMS_OK;
}

/* ---------------------------------------------------------------- keyed heaps */

void mms_topk_heap_sort(uint64_t *a, int32_t n) {
    /* the worst goes to the end of the shrinking heap */
    for (int32_t m = n; m > 1; m--) {
        uint64_t last = a[m - 1];
        a[m - 1] = a[0];
        mms_topk_heap_sift_down(a, m - 1, last);
    }
}

void mms_topk_rows_reset(mms_topk_rows_t *h, int64_t rows, const uint8_t *closed) {
    for (int64_t i = 0; i < rows; i++) {
        h->cnt[i] = 0;
        h->thr[i] = closed && closed[i] ? INFINITY : -FLT_MAX;
    }
}

void mms_topk_rows_merge_row(mms_topk_rows_t *h, int64_t row, const mms_topk_rows_t *src,
                             int64_t src_row) {
    const uint64_t *a = src->key + (size_t)src_row * (size_t)src->k;
    for (int32_t j = 0; j < src->cnt[src_row]; j++)
        if (mms_topk_key_score(a[j]) >= h->thr[row]) mms_topk_rows_offer(h, row, a[j]);
}

void mms_topk_rows_finish(mms_topk_rows_t *h, int64_t rows, int64_t *ids, float *scores) {
    const int32_t k = h->k;
    for (int64_t r = 0; r < rows; r++) {
        uint64_t *a = h->key + (size_t)r * (size_t)k;
        int64_t *io = ids + (size_t)r * (size_t)k;
        float *so = scores + (size_t)r * (size_t)k;
        int32_t c = h->cnt[r];
        mms_topk_heap_sort(a, c);
        /* decode in place (io may alias a: slot j is read before written) */
        for (int32_t j = 0; j < c; j++) {
            uint64_t key = a[j];
            so[j] = mms_topk_key_score(key);
            io[j] = mms_topk_key_id(key);
        }
        for (int32_t j = c; j < k; j++) {
            io[j] = -1;
            so[j] = -INFINITY;
        }
    }
}

/* ---------------------------------------------------------------- float scan */

#define TOPK_BLOCK 4096

mms_status mms_topk_scan(const float *E, int64_t n, int32_t d, const int64_t *ids, int64_t id0,
                         const float *Q, int32_t nq, int32_t k, const int64_t *exclude,
                         int64_t *out_ids, float *out_scores) {
    MMS_CHECK(k >= 1 && nq >= 0 && d >= 1 && n >= 0, MMS_ERR_ARG, "topk: bad arguments (k %d)", k);
    mms_topk_pad(out_ids, out_scores, (size_t)nq * (size_t)k);
    if (n == 0 || nq == 0) return MMS_OK;
    int64_t bs = TOPK_BLOCK;
    float *S;
    MMS_CALL(mms_malloc((size_t)nq * (size_t)bs * sizeof(float), &S));
    for (int64_t b0 = 0; b0 < n; b0 += bs) {
        int64_t nb = n - b0 < bs ? n - b0 : bs;
        /* S (nq x nb) = Q (nq x d) . E[b0 : b0 + nb]^T */
        if (nq == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)nb, d, 1.0f, E + (size_t)b0 * d, d, Q, 1,
                        0.0f, S, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, (int)nb, d, 1.0f, Q, d,
                        E + (size_t)b0 * d, d, 0.0f, S, (int)nb);
        for (int32_t q = 0; q < nq; q++) {
            int64_t *oi = out_ids + (size_t)q * k;
            float *os = out_scores + (size_t)q * k;
            const float *row = S + (size_t)q * nb;
            int64_t ex = exclude ? exclude[q] : -1;
            float thr = os[k - 1];
            for (int64_t j = 0; j < nb; j++) {
                float s = row[j];
                if (s < thr) continue;
                int64_t id = ids ? ids[b0 + j] : id0 + b0 + j;
                if (id == ex) continue;
                mms_topk_insert(oi, os, k, s, id);
                thr = os[k - 1];
            }
        }
    }
    free(S);
    return MMS_OK;
}
