/* mms_test_ref.c: see mms_test_ref.h. */
#include "mms_test_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t l1,
             size_t l2);

typedef struct {
    double s;
    int64_t id;
} ref_cand_t;

static int cmp_ref_cand(const void *a, const void *b) {
    const ref_cand_t *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

void mms_test_knn_naive(const float *x, int64_t n, int32_t d, int32_t k, int64_t *nbr, double *sim) {
    double *nrm = calloc((size_t)n, sizeof(double));
    ref_cand_t *c = malloc(sizeof(ref_cand_t) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++) {
        double ss = 0;
        for (int32_t j = 0; j < d; j++) ss += (double)x[i * d + j] * x[i * d + j];
        nrm[i] = sqrt(ss);
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t m = 0;
        if (nrm[i] > 0)
            for (int64_t o = 0; o < n; o++) {
                if (o == i || nrm[o] == 0) continue;
                double dot = 0;
                for (int32_t j = 0; j < d; j++) dot += (double)x[i * d + j] * x[o * d + j];
                c[m++] = (ref_cand_t){dot / (nrm[i] * nrm[o]), o};
            }
        qsort(c, (size_t)m, sizeof(ref_cand_t), cmp_ref_cand);
        for (int32_t j = 0; j < k; j++) {
            nbr[i * k + j] = j < m ? c[j].id : -1;
            sim[i * k + j] = j < m ? c[j].s : -INFINITY;
        }
    }
    free(nrm);
    free(c);
}

int mms_test_knn_compare(const int64_t *nbr, const float *sim, const int64_t *rn, const double *rs,
                       int64_t n, int32_t k, const char *what) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        for (int32_t j = 0; j < k; j++) {
            size_t o = (size_t)i * k + j, r = (size_t)i * (k + 1) + j;
            int ok;
            if (rn[r] < 0) {
                ok = nbr[o] == -1 && isinf(sim[o]) && sim[o] < 0;
            } else {
                ok = fabs((double)sim[o] - rs[r]) <= 1e-5;
                if (ok && nbr[o] != rn[r]) {
                    int tie = (j > 0 && fabs(rs[r] - rs[r - 1]) <= 1e-6) ||
                              (rn[r + 1] >= 0 && fabs(rs[r] - rs[r + 1]) <= 1e-6);
                    ok = tie;
                }
            }
            if (!ok && bad++ == 0)
                fprintf(stderr, "%s: row %lld pos %d: got (%lld, %.8f) want (%lld, %.8f)\n", what,
                        (long long)i, (int)j, (long long)nbr[o], sim[o], (long long)rn[r], rs[r]);
        }
    return bad;
}

int mms_test_lapack_eig(const double *cov, int d, double *w, double *v) {
    memcpy(v, cov, (size_t)d * d * sizeof *v);
    int lwork = -1, liwork = -1, info = 0, iwq = 0;
    double wq = 0;
    dsyevd_("V", "U", &d, v, &d, w, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
    if (info) return info;
    lwork = (int)wq;
    liwork = iwq;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    dsyevd_("V", "U", &d, v, &d, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    return info;
}
