/* topk.c: see topk.h. */
#include "topk.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* a before b in result order? */
static inline int better(float sa, int64_t ia, float sb, int64_t ib) {
    return sa > sb || (sa == sb && ia >= 0 && (ib < 0 || ia < ib));
}

/* Insert (s, id) into the sorted list of length k (worst last) if it beats the last. */
static inline void insert(int64_t *ids, float *sc, int32_t k, float s, int64_t id) {
    if (!better(s, id, sc[k - 1], ids[k - 1])) return;
    int32_t j = k - 1;
    while (j > 0 && better(s, id, sc[j - 1], ids[j - 1])) {
        sc[j] = sc[j - 1];
        ids[j] = ids[j - 1];
        j--;
    }
    sc[j] = s;
    ids[j] = id;
}

#define TOPK_BLOCK 4096

mms_status mms_topk_scan(const float *E, int64_t n, int32_t d, const int64_t *ids, int64_t id0,
                         const float *Q, int32_t nq, int32_t k, const int64_t *exclude,
                         int64_t *out_ids, float *out_scores) {
    MMS_CHECK(k >= 1 && nq >= 0 && d >= 1 && n >= 0, MMS_ERR_ARG, "topk: bad arguments (k %d)", k);
    for (int64_t i = 0; i < (int64_t)nq * k; i++) {
        out_ids[i] = -1;
        out_scores[i] = -INFINITY;
    }
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
                insert(oi, os, k, s, id);
                thr = os[k - 1];
            }
        }
    }
    free(S);
    return MMS_OK;
}

void mms_topk_merge(const int64_t *const *ids, const float *const *scores, int nl, int32_t k,
                    int64_t *out_ids, float *out_scores) {
    for (int32_t i = 0; i < k; i++) {
        out_ids[i] = -1;
        out_scores[i] = -INFINITY;
    }
    for (int l = 0; l < nl; l++)
        for (int32_t i = 0; i < k; i++) {
            if (ids[l][i] < 0) break;
            insert(out_ids, out_scores, k, scores[l][i], ids[l][i]);
        }
}
