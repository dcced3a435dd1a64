/* baseline.c: the baselines of judge.h that need only the catalog: exact
 * raw-visual cosine top-k (a float sgemm filters, a double dot product
 * decides), visual kNN tag voting, random results, the tag oracle, the tag
 * prior, and mms_eval_add_baselines, which runs the chosen ones and records
 * them in an accumulator.
 *
 * Does not: grade (judge.c) or summarise (metrics.c); print anything but the
 * progress of a long raw-visual scan.
 */
#define _GNU_SOURCE
#include "judge.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "judge_internal.h"
#include "mms_array.h"
#include "mms_log.h"
#include "mms_rng.h"
#include "mms_topk.h"

/* Random baseline stream. */
#define BASELINE_STREAM_RANDOM ((uint32_t)MMS_STREAM_EVAL)

/* A query's running top-k in the order of mms_topk.h (score descending, row
 * ascending), kept in double: the scores are decided in double, and rounding
 * them to float would turn some distinct scores into ties broken by row. k
 * entries best first, padded with row -1 and score -INFINITY (never offered:
 * cosines and oracle keys are finite). */
typedef struct {
    double *s;
    int64_t *r;
    int k;
} best_t;

static best_t best_empty(double *s, int64_t *r, int k) {
    mms_topk_pad_f64(r, s, (size_t)k);
    return (best_t){s, r, k};
}

static void best_offer(best_t *b, double s, int64_t r) {
    mms_topk_insert_f64(b->r, b->s, b->k, s, r);
}

/* Entries held (those before the padding). */
static int best_count(const best_t *b) {
    int n = 0;
    while (n < b->k && b->r[n] >= 0) n++;
    return n;
}

/* out[0..d) = row r of X (n x d) scaled to unit length by its norm (a zero
 * row stays zero): one row of an sgemm panel. */
static void unit_row(const float *X, int32_t d, const double *norm, int64_t r, float *out) {
    const float *x = X + (size_t)r * (size_t)d;
    float inv = norm[r] > 0 ? (float)(1.0 / norm[r]) : 0.0f;
    for (int32_t t = 0; t < d; t++)
        out[t] = x[t] * inv;
}

#define VIS_QCHUNK 256  /* queries per sgemm panel */
#define VIS_GBLOCK 2048 /* training rows per sgemm panel */
/* Float scores of unit vectors are within ~d * 2^-24 of the true cosine; this
 * margin keeps every row that could reach the top k for the double check. */
#define VIS_MARGIN(d) (1e-4 + 4.0 * (double)(d)*0x1p-24)

mms_status mms_baseline_visual(const mms_catalog_t *c, int use_knn, const int64_t *qrows,
                               int64_t nq, int k, int64_t *rows_out, float *sims_out) {
    MMS_CHECK(k >= 1 && k <= MMS_EVAL_MAX_K, MMS_ERR_ARG, "baseline: k must be in [1, %d], got %d",
              MMS_EVAL_MAX_K, k);
    for (int64_t i = 0; i < nq; i++)
        MMS_CHECK(qrows[i] >= 0 && qrows[i] < c->n, MMS_ERR_ARG,
                  "baseline: query row %lld out of range", (long long)qrows[i]);
    const float *X = use_knn && c->knn_x ? c->knn_x : c->x;
    int32_t d = use_knn && c->knn_x ? c->knn_dim : c->dim;
    int64_t ntrain = c->n_split[MMS_SPLIT_TRAIN];
    double margin = VIS_MARGIN(d);
    mms_status s = MMS_OK;
    int64_t *train = NULL;
    double *norm = NULL, *bs = NULL;
    float *Q = NULL, *G = NULL, *S = NULL;
    int64_t *br = NULL;
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(ntrain ? ntrain : 1) * sizeof *train, &train));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)c->n * sizeof *norm, &norm));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)VIS_QCHUNK * (size_t)d * sizeof *Q, &Q));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)VIS_GBLOCK * (size_t)d * sizeof *G, &G));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)VIS_QCHUNK * VIS_GBLOCK * sizeof *S, &S));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)VIS_QCHUNK * (size_t)k * sizeof *bs, &bs));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)VIS_QCHUNK * (size_t)k * sizeof *br, &br));
    int64_t nt = 0;
    for (int64_t r = 0; r < c->n; r++) {
        const float *x = X + (size_t)r * (size_t)d;
        double a = 0;
        for (int32_t t = 0; t < d; t++)
            a += (double)x[t] * x[t];
        norm[r] = sqrt(a);
        if (c->split[r] == MMS_SPLIT_TRAIN) train[nt++] = r;
    }
    /* progress only for scans that take a while (~2e10 multiply-adds) */
    int show = (double)nq * (double)ntrain * (double)d > 2e10;
    mms_progress_t prog;
    if (show) mms_progress_begin(&prog, "raw-visual baseline", nq, "queries");
    for (int64_t q0 = 0; q0 < nq; q0 += VIS_QCHUNK) {
        int qn = (int)(nq - q0 < VIS_QCHUNK ? nq - q0 : VIS_QCHUNK);
        best_t best[VIS_QCHUNK];
        for (int i = 0; i < qn; i++) {
            unit_row(X, d, norm, qrows[q0 + i], Q + (size_t)i * d);
            best[i] = best_empty(bs + (size_t)i * k, br + (size_t)i * k, k);
        }
        for (int64_t g0 = 0; g0 < nt; g0 += VIS_GBLOCK) {
            int gn = (int)(nt - g0 < VIS_GBLOCK ? nt - g0 : VIS_GBLOCK);
            for (int i = 0; i < gn; i++)
                unit_row(X, d, norm, train[g0 + i], G + (size_t)i * d);
            /* S (qn x gn) = Q (qn x d) G^T (d x gn) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qn, gn, d, 1.0f, Q, d, G, d, 0.0f,
                        S, gn);
            for (int i = 0; i < qn; i++) {
                int64_t q = qrows[q0 + i];
                const float *xq = X + (size_t)q * (size_t)d;
                best_t *b = &best[i];
                for (int t = 0; t < gn; t++) {
                    int64_t r = train[g0 + t];
                    if (r == q) continue;
                    /* below the k-th by more than the margin (never while padded) */
                    if ((double)S[(size_t)i * gn + t] < b->s[b->k - 1] - margin) continue;
                    double cs = 0;
                    if (norm[q] > 0 && norm[r] > 0) {
                        const float *xr = X + (size_t)r * (size_t)d;
                        double dot = 0;
                        for (int32_t u = 0; u < d; u++)
                            dot += (double)xq[u] * xr[u];
                        cs = dot / (norm[q] * norm[r]);
                    }
                    best_offer(b, cs, r);
                }
            }
        }
        for (int i = 0; i < qn; i++) {
            int64_t *ro = rows_out + (size_t)(q0 + i) * k;
            float *so = sims_out + (size_t)(q0 + i) * k;
            for (int t = 0; t < k; t++) { /* padding: -1, -INFINITY */
                ro[t] = best[i].r[t];
                so[t] = (float)best[i].s[t];
            }
        }
        if (show) mms_progress_update(&prog, q0 + qn);
    }
    if (show) mms_progress_end(&prog);
out:
    free(train);
    free(norm);
    free(Q);
    free(G);
    free(S);
    free(bs);
    free(br);
    return s;
}

/* Training-set frequency of every tag (c->ntags). */
static mms_status train_tag_freq(const mms_catalog_t *c, int64_t **freq) {
    MMS_CALL(mms_calloc((size_t)c->ntags + 1, sizeof **freq, freq));
    for (int64_t r = 0; r < c->n; r++) {
        if (c->split[r] != MMS_SPLIT_TRAIN) continue;
        for (int64_t e = c->tag_ptr[r]; e < c->tag_ptr[r + 1]; e++) {
            int dup = 0; /* a tag repeated on one image counts once */
            for (int64_t f = c->tag_ptr[r]; f < e && !dup; f++)
                dup = c->tag_idx[f] == c->tag_idx[e];
            if (!dup) (*freq)[c->tag_idx[e]]++;
        }
    }
    return MMS_OK;
}

typedef struct {
    int32_t tag;
    double votes;
} vote_t;

typedef struct {
    const int64_t *freq;
} vote_ctx_t;

static int cmp_vote_r(const void *a, const void *b, void *arg) {
    const vote_t *x = a, *y = b;
    const vote_ctx_t *ctx = arg;
    if (x->votes != y->votes) return x->votes > y->votes ? -1 : 1;
    if (ctx->freq[x->tag] != ctx->freq[y->tag])
        return ctx->freq[x->tag] > ctx->freq[y->tag] ? -1 : 1;
    return (x->tag > y->tag) - (x->tag < y->tag);
}

static int cmp_prior_r(const void *a, const void *b, void *arg) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    const int64_t *freq = arg;
    if (freq[x] != freq[y]) return freq[x] > freq[y] ? -1 : 1;
    return (x > y) - (x < y);
}

/* Tags by training frequency, most frequent first, ties by lower index. */
static mms_status prior_order(const mms_catalog_t *c, const int64_t *freq, int32_t **order) {
    MMS_CALL(mms_malloc((size_t)(c->ntags ? c->ntags : 1) * sizeof **order, order));
    for (int32_t t = 0; t < c->ntags; t++)
        (*order)[t] = t;
    qsort_r(*order, (size_t)c->ntags, sizeof **order, cmp_prior_r, (void *)freq);
    return MMS_OK;
}

mms_status mms_baseline_tag_vote(const mms_catalog_t *c, const int64_t *nbr, const float *sims,
                                 int64_t nq, int stride, int k, int weighted, double prior_power,
                                 int nout, int32_t *tags_out) {
    MMS_CHECK(k >= 1 && k <= stride && nout >= 1, MMS_ERR_ARG,
              "baseline: tag vote needs 1 <= k (%d) <= stride (%d) and nout >= 1", k, stride);
    MMS_CHECK(prior_power >= 0 && prior_power <= 4, MMS_ERR_ARG,
              "baseline: tag vote prior power must be in [0, 4], got %g", prior_power);
    int64_t *freq = NULL;
    int32_t *order = NULL;
    vote_t *v = NULL;
    mms_status s;
    size_t cap = 0; /* of v */
    int nv;
    MMS_CALL_GOTO(s, out, train_tag_freq(c, &freq));
    MMS_CALL_GOTO(s, out, prior_order(c, freq, &order));
    vote_ctx_t ctx = {freq};
    for (int64_t q = 0; q < nq; q++) {
        nv = 0;
        for (int i = 0; i < k; i++) {
            int64_t r = nbr[(size_t)q * stride + i];
            if (r < 0) continue;
            MMS_CHECK_GOTO(s, out, r < c->n, MMS_ERR_ARG,
                           "baseline: neighbour row %lld out of range", (long long)r);
            double w = weighted ? (double)sims[(size_t)q * stride + i] : 1.0;
            for (int64_t e = c->tag_ptr[r]; e < c->tag_ptr[r + 1]; e++) {
                int32_t t = c->tag_idx[e];
                int at = 0;
                while (at < nv && v[at].tag != t)
                    at++;
                if (at == nv) {
                    MMS_CALL_GOTO(s, out, mms_grow(&v, sizeof *v, (size_t)nv + 1, &cap));
                    v[nv++] = (vote_t){t, 0.0};
                }
                /* a tag repeated on one image votes once */
                int dup = 0;
                for (int64_t f = c->tag_ptr[r]; f < e && !dup; f++)
                    dup = c->tag_idx[f] == t;
                if (!dup) v[at].votes += w;
            }
        }
        if (prior_power > 0) /* voted tags come from training rows: frequency >= 1 */
            for (int i = 0; i < nv; i++)
                v[i].votes /= pow((double)(freq[v[i].tag] > 0 ? freq[v[i].tag] : 1), prior_power);
        qsort_r(v, (size_t)nv, sizeof *v, cmp_vote_r, &ctx);
        int32_t *o = tags_out + (size_t)q * nout;
        int n = 0;
        for (int i = 0; i < nv && n < nout && v[i].votes > 0; i++)
            o[n++] = v[i].tag;
        /* then tags at zero votes, by frequency: those never voted and those voted 0 */
        for (int32_t i = 0; i < c->ntags && n < nout; i++) {
            int32_t t = order[i];
            int at = 0;
            while (at < nv && v[at].tag != t)
                at++;
            if (at < nv && v[at].votes != 0) continue;
            o[n++] = t;
        }
        for (int i = 0; i < nv && n < nout; i++) /* negative votes last */
            if (v[i].votes < 0) o[n++] = v[i].tag;
        for (; n < nout; n++)
            o[n] = -1;
    }
    s = MMS_OK;
out:
    free(freq);
    free(order);
    free(v);
    return s;
}

mms_status mms_baseline_random(const mms_catalog_t *c, const int64_t *qrows, int64_t nq, int k,
                               uint64_t seed, int64_t *rows_out) {
    MMS_CHECK(k >= 1 && k <= MMS_EVAL_MAX_K, MMS_ERR_ARG, "baseline: k must be in [1, %d], got %d",
              MMS_EVAL_MAX_K, k);
    int64_t ntrain = c->n_split[MMS_SPLIT_TRAIN];
    int64_t *train = NULL;
    MMS_CALL(mms_malloc((size_t)(ntrain ? ntrain : 1) * sizeof *train, &train));
    int64_t nt = 0;
    for (int64_t r = 0; r < c->n; r++)
        if (c->split[r] == MMS_SPLIT_TRAIN) train[nt++] = r;
    for (int64_t i = 0; i < nq; i++) {
        int64_t q = qrows[i], *o = rows_out + (size_t)i * k;
        int64_t avail = nt - (c->split[q] == MMS_SPLIT_TRAIN);
        int want = avail < k ? (int)avail : k;
        mms_rng_t rng;
        mms_rng_init(&rng, seed, BASELINE_STREAM_RANDOM, (uint64_t)q);
        int n = 0;
        while (n < want) {
            int64_t r = train[mms_rng_below64(&rng, (uint64_t)nt)];
            int dup = r == q;
            for (int t = 0; t < n && !dup; t++)
                dup = o[t] == r;
            if (!dup) o[n++] = r;
        }
        for (; n < k; n++)
            o[n] = -1;
    }
    free(train);
    return MMS_OK;
}

mms_status mms_baseline_tag_oracle(const mms_catalog_t *c, const int64_t *qrows, int64_t nq, int k,
                                   int64_t *rows_out, float *scores_out) {
    MMS_CHECK(k >= 1 && k <= MMS_EVAL_MAX_K, MMS_ERR_ARG, "baseline: k must be in [1, %d], got %d",
              MMS_EVAL_MAX_K, k);
    mms_judge_t *j = NULL; /* a tag judge holds the sorted sets and postings */
    MMS_CALL(mms_judge_create_kind(c, MMS_JUDGE_TAGS, &j));
    mms_status s = MMS_OK;
    double *bs = NULL;
    int64_t *br = NULL, *rows = NULL;
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)k * sizeof *bs, &bs));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)k * sizeof *br, &br));
    for (int64_t i = 0; i < nq; i++) {
        int64_t q = qrows[i], nrows;
        MMS_CHECK_GOTO(s, out, q >= 0 && q < c->n, MMS_ERR_ARG,
                       "baseline: query row %lld out of range", (long long)q);
        best_t b = best_empty(bs, br, k);
        MMS_CALL_GOTO(s, out,
                      judge_gather_postings(j->tags.ptr, j->tags.idx, q, j->tpost_ptr,
                                            j->tpost_row, &rows, &nrows));
        int64_t nqt = j->tags.ptr[q + 1] - j->tags.ptr[q];
        /* rank key: shared + Jaccard / 2 (Jaccard <= 1 < the step between counts) */
        for (int64_t a = 0; a < nrows;) {
            int64_t z = a;
            while (z < nrows && rows[z] == rows[a])
                z++;
            int64_t r = rows[a], in = z - a;
            if (r != q) {
                int64_t nr = j->tags.ptr[r + 1] - j->tags.ptr[r];
                best_offer(&b, (double)in + 0.5 * (double)in / (double)(nqt + nr - in), r);
            }
            a = z;
        }
        free(rows);
        rows = NULL;
        /* fewer than k rows share a tag: the lowest other training rows follow at 0 */
        for (int64_t r = 0, n = best_count(&b); r < c->n && n < k; r++) {
            if (c->split[r] != MMS_SPLIT_TRAIN || r == q) continue;
            int taken = 0;
            for (int t = 0; t < n && !taken; t++)
                taken = b.r[t] == r;
            if (!taken) {
                best_offer(&b, 0.0, r);
                n = best_count(&b);
            }
        }
        for (int t = 0; t < k; t++) { /* padding: -1, floor(-INFINITY) = -INFINITY */
            rows_out[(size_t)i * k + t] = b.r[t];
            if (scores_out) scores_out[(size_t)i * k + t] = (float)floor(b.s[t]);
        }
    }
out:
    free(rows);
    free(bs);
    free(br);
    mms_judge_destroy(&j);
    return s;
}

mms_status mms_eval_add_baselines(mms_eval_t *e, const int64_t *qrows, int64_t nq, unsigned which,
                                  int k_overlap, uint64_t seed) {
    const mms_catalog_t *c = mms_eval_catalog(e);
    MMS_CHECK(k_overlap >= 1 && k_overlap <= MMS_EVAL_MAX_K, MMS_ERR_ARG,
              "eval: k_overlap must be in [1, %d], got %d", MMS_EVAL_MAX_K, k_overlap);
    int k = k_overlap > MMS_EVAL_K ? k_overlap : MMS_EVAL_K;
    int64_t *rows = NULL;
    float *sc = NULL;
    int32_t *tags = NULL;
    int64_t *freq = NULL;
    int32_t *order = NULL;
    mms_status s = MMS_OK;
    int m;
    size_t nn = (size_t)(nq ? nq : 1) * (size_t)k;
    MMS_CALL_GOTO(s, out, mms_malloc(nn * sizeof *rows, &rows));
    MMS_CALL_GOTO(s, out, mms_malloc(nn * sizeof *sc, &sc));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(nq ? nq : 1) * MMS_EVAL_NTAGS * sizeof *tags, &tags));
    if (which & MMS_BASELINE_VISUAL) {
        MMS_CALL_GOTO(s, out, mms_eval_method(e, "raw-visual", k_overlap, &m));
        MMS_CALL_GOTO(s, out, mms_baseline_visual(c, 1, qrows, nq, k, rows, sc));
        MMS_CALL_GOTO(s, out,
                      mms_baseline_tag_vote(c, rows, sc, nq, k, MMS_EVAL_K, 1, 0.0,
                                            MMS_EVAL_NTAGS, tags));
        for (int64_t i = 0; i < nq; i++) {
            MMS_CALL_GOTO(
                s, out,
                mms_eval_add_results(e, m, qrows[i], rows + (size_t)i * k, sc + (size_t)i * k, k));
            MMS_CALL_GOTO(s, out,
                          mms_eval_add_tags(e, m, qrows[i], tags + (size_t)i * MMS_EVAL_NTAGS,
                                            MMS_EVAL_NTAGS));
        }
        /* the same votes divided by sqrt(frequency): a fair partner for the
         * GNN's debiased vote */
        MMS_CALL_GOTO(s, out, mms_eval_method(e, "raw-visual-vote-debiased", 5, &m));
        MMS_CALL_GOTO(s, out,
                      mms_baseline_tag_vote(c, rows, sc, nq, k, MMS_EVAL_K, 1, MMS_VOTE_PRIOR_POWER,
                                            MMS_EVAL_NTAGS, tags));
        for (int64_t i = 0; i < nq; i++)
            MMS_CALL_GOTO(s, out,
                          mms_eval_add_tags(e, m, qrows[i], tags + (size_t)i * MMS_EVAL_NTAGS,
                                            MMS_EVAL_NTAGS));
    }
    if (which & MMS_BASELINE_RANDOM) {
        MMS_CALL_GOTO(s, out, mms_eval_method(e, "random", k_overlap, &m));
        MMS_CALL_GOTO(s, out, mms_baseline_random(c, qrows, nq, k, seed, rows));
        for (int64_t i = 0; i < nq; i++)
            MMS_CALL_GOTO(s, out,
                          mms_eval_add_results(e, m, qrows[i], rows + (size_t)i * k, NULL, k));
    }
    if (which & MMS_BASELINE_ORACLE) {
        MMS_CALL_GOTO(s, out, mms_eval_method(e, "tag-oracle", k_overlap, &m));
        MMS_CALL_GOTO(s, out, mms_baseline_tag_oracle(c, qrows, nq, k, rows, sc));
        for (int64_t i = 0; i < nq; i++)
            MMS_CALL_GOTO(
                s, out,
                mms_eval_add_results(e, m, qrows[i], rows + (size_t)i * k, sc + (size_t)i * k, k));
    }
    if (which & MMS_BASELINE_PRIOR) {
        MMS_CALL_GOTO(s, out, mms_eval_method(e, "tag-prior", k_overlap, &m));
        MMS_CALL_GOTO(s, out, train_tag_freq(c, &freq));
        MMS_CALL_GOTO(s, out, prior_order(c, freq, &order));
        int32_t top[MMS_EVAL_NTAGS];
        for (int t = 0; t < MMS_EVAL_NTAGS; t++)
            top[t] = t < c->ntags ? order[t] : -1;
        for (int64_t i = 0; i < nq; i++)
            MMS_CALL_GOTO(s, out, mms_eval_add_tags(e, m, qrows[i], top, MMS_EVAL_NTAGS));
    }
out:
    free(rows);
    free(sc);
    free(tags);
    free(freq);
    free(order);
    return s;
}
