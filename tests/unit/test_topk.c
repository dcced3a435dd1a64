/* test_topk.c: blocked top-k scan and shard merge equal a brute-force sort,
 * including ties (broken by id) and exclusions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mms_log.h"
#include "mms_rng.h"
#include "mms_test.h"
#include "mms_topk.h"

typedef struct {
    float s;
    int64_t id;
} cand_t;

static int cmp_cand(const void *a, const void *b) {
    const cand_t *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET);
    const int64_t n = 9000;
    const int32_t d = 16, nq = 3, k = 25;
    float *E = malloc(n * d * sizeof(float)), Q[3 * 16];
    mms_rng_t r;
    mms_rng_init(&r, 4, MMS_STREAM_SYNTH, 0);
    /* coarse values so many exact ties occur */
    for (int64_t i = 0; i < n * d; i++) E[i] = (float)((int)mms_rng_below(&r, 3) - 1);
    for (int i = 0; i < nq * d; i++) Q[i] = (float)((int)mms_rng_below(&r, 3) - 1);
    int64_t exclude[3] = {-1, 17, 4242};
    int64_t ids[3 * 25];
    float sc[3 * 25];
    T_OK(mms_topk_scan(E, n, d, NULL, 100, Q, nq, k, exclude, ids, sc));
    cand_t *c = malloc(n * sizeof *c);
    for (int q = 0; q < nq; q++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++) {
            if (100 + i == exclude[q]) continue;
            double s = 0;
            for (int j = 0; j < d; j++) s += (double)Q[q * d + j] * E[i * d + j];
            c[m].s = (float)s;
            c[m].id = 100 + i;
            m++;
        }
        qsort(c, (size_t)m, sizeof *c, cmp_cand);
        int diff = 0;
        for (int j = 0; j < k; j++) diff += ids[q * k + j] != c[j].id || sc[q * k + j] != c[j].s;
        T_EQ_INT(diff, 0);
    }
    /* split into 4 uneven shards with explicit ids, merge: same answer */
    int64_t cuts[5] = {0, 1000, 1001, 5000, n};
    int64_t sid[4][3 * 25];
    float ssc[4][3 * 25];
    int64_t *idv = malloc(n * sizeof *idv);
    for (int64_t i = 0; i < n; i++) idv[i] = 100 + i;
    for (int s = 0; s < 4; s++)
        T_OK(mms_topk_scan(E + cuts[s] * d, cuts[s + 1] - cuts[s], d, idv + cuts[s], 0, Q, nq, k,
                           exclude, sid[s], ssc[s]));
    for (int q = 0; q < nq; q++) {
        const int64_t *li[4];
        const float *ls[4];
        for (int s = 0; s < 4; s++) {
            li[s] = sid[s] + q * k;
            ls[s] = ssc[s] + q * k;
        }
        int64_t mi[25];
        float ms[25];
        T_OK(mms_topk_merge(li, ls, 4, k, k, mi, ms, NULL, NULL));
        int diff = 0;
        for (int j = 0; j < k; j++) diff += mi[j] != ids[q * k + j] || ms[j] != sc[q * k + j];
        T_EQ_INT(diff, 0);
    }
    /* fewer rows than k: padded with -1 / -inf */
    int64_t pi[25];
    float ps[25];
    T_OK(mms_topk_scan(E, 3, d, NULL, 0, Q, 1, k, NULL, pi, ps));
    T_CHECK(pi[2] >= 0 && pi[3] == -1 && isinf(ps[3]) && ps[3] < 0);
    T_FAILS(mms_topk_scan(E, 3, d, NULL, 0, Q, 1, 0, NULL, pi, ps), MMS_ERR_ARG);
    free(E);
    free(c);
    free(idv);
    return mms_test_finish("test_topk");
}
