/* baseline.c: the baselines of judge.h that need only the catalog: exact
 * raw-visual cosine top-k (a float sgemm filters, a double dot product
 * decides), visual kNN tag voting, random results, the tag oracle, the tag
 * prior, the expansion baselines through the tags of the query's visual
 * neighbours (vote expansion, personalised PageRank, fused), and
 * mms_eval_add_baselines, which runs the chosen ones and records them in an
 * accumulator.
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

/* ------------------------------------------------------------ expansion */

#define EXPAND_QCHUNK 256 /* queries whose neighbour lists are held at once */

void mms_expand_params_default(mms_expand_params_t *p) {
    p->k = MMS_EXPAND_K;
    p->alpha = MMS_EXPAND_ALPHA;
    p->iters = MMS_EXPAND_ITERS;
    p->w = MMS_EXPAND_W;
}

/* The gallery (training rows) as a bipartite image-tag graph: each training
 * row's distinct tags (CSR over gallery positions) and each tag's training
 * rows (postings), plus the visual norms the fused score needs. */
typedef struct {
    int64_t nt;     /* training rows */
    int64_t *row;   /* nt: catalog row of gallery position i */
    int64_t *pos;   /* c->n: gallery position of a catalog row, -1 if not training */
    int64_t *ptr;   /* nt + 1 */
    int32_t *tag;   /* ptr[nt]: distinct tags of each position */
    int64_t *tptr;  /* ntags + 1 */
    int64_t *timg;  /* tptr[ntags]: gallery positions carrying each tag */
    double *norm;   /* c->n: norms of the rows in the raw-visual space */
    const float *X; /* that space: knn_features when the catalog has them (as raw-visual) */
    int32_t d;
} gallery_t;

static void gallery_free(gallery_t *g) {
    free(g->row);
    free(g->pos);
    free(g->ptr);
    free(g->tag);
    free(g->tptr);
    free(g->timg);
    free(g->norm);
    memset(g, 0, sizeof *g);
}

static mms_status gallery_build(const mms_catalog_t *c, gallery_t *g) {
    memset(g, 0, sizeof *g);
    mms_status s = MMS_OK;
    int64_t nt = c->n_split[MMS_SPLIT_TRAIN], nnz = 0;
    int32_t nT = c->ntags;
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)(nt ? nt : 1) * sizeof *g->row, &g->row));
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)c->n * sizeof *g->pos, &g->pos));
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)(nt + 1) * sizeof *g->ptr, &g->ptr));
    MMS_CALL_GOTO(s, fail, mms_calloc((size_t)nT + 1, sizeof *g->tptr, &g->tptr));
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)c->n * sizeof *g->norm, &g->norm));
    for (int64_t r = 0; r < c->n; r++)
        if (c->split[r] == MMS_SPLIT_TRAIN) nnz += c->tag_ptr[r + 1] - c->tag_ptr[r];
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)(nnz ? nnz : 1) * sizeof *g->tag, &g->tag));
    int64_t i = 0, e = 0;
    g->ptr[0] = 0;
    for (int64_t r = 0; r < c->n; r++) {
        g->pos[r] = -1;
        if (c->split[r] != MMS_SPLIT_TRAIN) continue;
        g->pos[r] = i;
        g->row[i] = r;
        for (int64_t a = c->tag_ptr[r]; a < c->tag_ptr[r + 1]; a++) {
            int dup = 0; /* a tag repeated on one image counts once */
            for (int64_t b = g->ptr[i]; b < e && !dup; b++)
                dup = g->tag[b] == c->tag_idx[a];
            if (dup) continue;
            g->tag[e++] = c->tag_idx[a];
            g->tptr[c->tag_idx[a] + 1]++;
        }
        g->ptr[++i] = e;
    }
    g->nt = nt;
    for (int32_t t = 0; t < nT; t++)
        g->tptr[t + 1] += g->tptr[t];
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)(e ? e : 1) * sizeof *g->timg, &g->timg));
    {
        int64_t *fill = NULL;
        MMS_CALL_GOTO(s, fail, mms_malloc(((size_t)nT + 1) * sizeof *fill, &fill));
        memcpy(fill, g->tptr, ((size_t)nT + 1) * sizeof *fill);
        for (int64_t p = 0; p < nt; p++) /* positions ascending within each tag */
            for (int64_t b = g->ptr[p]; b < g->ptr[p + 1]; b++)
                g->timg[fill[g->tag[b]]++] = p;
        free(fill);
    }
    g->X = c->knn_x ? c->knn_x : c->x;
    g->d = c->knn_x ? c->knn_dim : c->dim;
    for (int64_t r = 0; r < c->n; r++) {
        const float *x = g->X + (size_t)r * (size_t)g->d;
        double a = 0;
        for (int32_t t = 0; t < g->d; t++)
            a += (double)x[t] * x[t];
        g->norm[r] = sqrt(a);
    }
    return MMS_OK;
fail:
    gallery_free(g);
    return s;
}

/* Per-query work space. */
typedef struct {
    double *v;     /* ntags: the debiased vote vector */
    double *score; /* nt */
    double *pimg, *nimg, *rst; /* nt: PPR image mass, next, restart */
    double *ptag, *ntag;       /* ntags */
} expand_ws_t;

/* VOTE scores of every gallery position into ws->score. nbr/sims: k entries. */
static void expand_vote(const gallery_t *g, int32_t ntags, const int64_t *nbr, const float *sims,
                        int k, expand_ws_t *ws) {
    double *v = ws->v;
    memset(v, 0, (size_t)ntags * sizeof *v);
    for (int i = 0; i < k; i++) {
        if (nbr[i] < 0) continue;
        int64_t p = g->pos[nbr[i]];
        for (int64_t b = g->ptr[p]; b < g->ptr[p + 1]; b++)
            v[g->tag[b]] += (double)sims[i];
    }
    double nv = 0;
    for (int32_t t = 0; t < ntags; t++) {
        int64_t f = g->tptr[t + 1] - g->tptr[t];
        if (v[t] != 0) v[t] /= pow((double)(f > 0 ? f : 1), MMS_VOTE_PRIOR_POWER);
        nv += v[t] * v[t];
    }
    nv = sqrt(nv);
    for (int64_t p = 0; p < g->nt; p++) {
        int64_t deg = g->ptr[p + 1] - g->ptr[p];
        double a = 0;
        for (int64_t b = g->ptr[p]; b < g->ptr[p + 1]; b++)
            a += v[g->tag[b]];
        ws->score[p] = deg > 0 && nv > 0 ? a / (nv * sqrt((double)deg)) : 0.0;
    }
}

/* PPR image mass of every gallery position into ws->score. */
static void expand_ppr(const gallery_t *g, int32_t ntags, const int64_t *nbr, const float *sims,
                       int k, const mms_expand_params_t *p, expand_ws_t *ws) {
    int64_t nt = g->nt;
    double *r = ws->rst, *pi = ws->pimg, *ni = ws->nimg, *pt = ws->ptag, *nx = ws->ntag;
    memset(r, 0, (size_t)nt * sizeof *r);
    double tot = 0;
    int present = 0;
    for (int i = 0; i < k; i++)
        if (nbr[i] >= 0) {
            tot += sims[i] > 0 ? (double)sims[i] : 0.0;
            present++;
        }
    for (int i = 0; i < k; i++) /* rows are distinct; all cosines 0: equal shares */
        if (nbr[i] >= 0)
            r[g->pos[nbr[i]]] = tot > 0 ? (sims[i] > 0 ? (double)sims[i] : 0.0) / tot
                                        : 1.0 / (double)present;
    memcpy(pi, r, (size_t)nt * sizeof *pi);
    memset(pt, 0, (size_t)ntags * sizeof *pt);
    for (int it = 0; it < p->iters; it++) {
        double dangling = 0;
        memset(nx, 0, (size_t)ntags * sizeof *nx);
        memset(ni, 0, (size_t)nt * sizeof *ni);
        for (int64_t q = 0; q < nt; q++) { /* image -> one of its tags */
            int64_t deg = g->ptr[q + 1] - g->ptr[q];
            if (pi[q] == 0) continue;
            if (deg == 0) {
                dangling += pi[q];
                continue;
            }
            double share = pi[q] / (double)deg;
            for (int64_t b = g->ptr[q]; b < g->ptr[q + 1]; b++)
                nx[g->tag[b]] += share;
        }
        for (int32_t t = 0; t < ntags; t++) { /* tag -> one of its images */
            int64_t deg = g->tptr[t + 1] - g->tptr[t];
            if (pt[t] == 0) continue;
            if (deg == 0) {
                dangling += pt[t];
                continue;
            }
            double share = pt[t] / (double)deg;
            for (int64_t b = g->tptr[t]; b < g->tptr[t + 1]; b++)
                ni[g->timg[b]] += share;
        }
        for (int64_t q = 0; q < nt; q++)
            pi[q] = p->alpha * r[q] + (1 - p->alpha) * (ni[q] + dangling * r[q]);
        for (int32_t t = 0; t < ntags; t++)
            pt[t] = (1 - p->alpha) * nx[t];
    }
    memcpy(ws->score, pi, (size_t)nt * sizeof *pi);
}

/* The three kinds for precomputed neighbours (nq x stride, first p->k used). */
static mms_status expand_run(const mms_catalog_t *c, const gallery_t *g, const int64_t *qrows,
                             int64_t nq, mms_expand_kind kind, const mms_expand_params_t *p,
                             const int64_t *nbr, const float *sims, int stride, int kout,
                             int64_t *rows_out, float *scores_out) {
    mms_status s = MMS_OK;
    expand_ws_t ws = {0};
    double *bs = NULL;
    int64_t *br = NULL;
    size_t nT = (size_t)(c->ntags ? c->ntags : 1), nt = (size_t)(g->nt ? g->nt : 1);
    MMS_CALL_GOTO(s, out, mms_malloc(nT * sizeof *ws.v, &ws.v));
    MMS_CALL_GOTO(s, out, mms_malloc(nt * sizeof *ws.score, &ws.score));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)kout * sizeof *bs, &bs));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)kout * sizeof *br, &br));
    if (kind == MMS_EXPAND_PPR) {
        MMS_CALL_GOTO(s, out, mms_malloc(nt * sizeof *ws.pimg, &ws.pimg));
        MMS_CALL_GOTO(s, out, mms_malloc(nt * sizeof *ws.nimg, &ws.nimg));
        MMS_CALL_GOTO(s, out, mms_malloc(nt * sizeof *ws.rst, &ws.rst));
        MMS_CALL_GOTO(s, out, mms_malloc(nT * sizeof *ws.ptag, &ws.ptag));
        MMS_CALL_GOTO(s, out, mms_malloc(nT * sizeof *ws.ntag, &ws.ntag));
    }
    for (int64_t i = 0; i < nq; i++) {
        int64_t q = qrows[i];
        const int64_t *nb = nbr + (size_t)i * stride;
        const float *sm = sims + (size_t)i * stride;
        if (kind == MMS_EXPAND_PPR)
            expand_ppr(g, c->ntags, nb, sm, p->k, p, &ws);
        else
            expand_vote(g, c->ntags, nb, sm, p->k, &ws);
        if (kind == MMS_EXPAND_FUSED) {
            /* the cosine of the query with every gallery image, each dot summed
             * in double in column order as before, 8 rows at a time: 8
             * independent chains instead of one (a row's sum is the same
             * bits; a million-image gallery went from 0.5 s a query to a tenth) */
            const float *xq = g->X + (size_t)q * (size_t)g->d;
            for (int64_t a0 = 0; a0 < g->nt; a0 += 8) {
                const int m = g->nt - a0 < 8 ? (int)(g->nt - a0) : 8;
                const float *xr[8];
                double dot[8] = {0};
                for (int j = 0; j < 8; j++)
                    xr[j] = g->X + (size_t)g->row[a0 + (j < m ? j : 0)] * (size_t)g->d;
                for (int32_t u = 0; u < g->d; u++) {
                    const double x = (double)xq[u];
                    for (int j = 0; j < 8; j++) dot[j] += x * xr[j][u];
                }
                for (int j = 0; j < m; j++) {
                    int64_t r = g->row[a0 + j];
                    double cs = g->norm[q] > 0 && g->norm[r] > 0 ? dot[j] / (g->norm[q] * g->norm[r]) : 0;
                    ws.score[a0 + j] = p->w * cs + (1 - p->w) * ws.score[a0 + j];
                }
            }
        }
        best_t b = best_empty(bs, br, kout);
        for (int64_t a = 0; a < g->nt; a++)
            if (g->row[a] != q) best_offer(&b, ws.score[a], g->row[a]);
        for (int t = 0; t < kout; t++) {
            rows_out[(size_t)i * kout + t] = b.r[t];
            scores_out[(size_t)i * kout + t] = (float)b.s[t];
        }
    }
out:
    free(ws.v);
    free(ws.score);
    free(ws.pimg);
    free(ws.nimg);
    free(ws.rst);
    free(ws.ptag);
    free(ws.ntag);
    free(bs);
    free(br);
    return s;
}

static mms_status expand_check(const mms_expand_params_t *p, int kout) {
    MMS_CHECK(p->k >= 1 && p->k <= MMS_EVAL_MAX_K, MMS_ERR_ARG,
              "baseline: expansion k (--baseline-k) must be in [1, %d], got %d", MMS_EVAL_MAX_K,
              p->k);
    MMS_CHECK(p->alpha > 0 && p->alpha <= 1, MMS_ERR_ARG,
              "baseline: PPR restart probability (--ppr-alpha) must be in (0, 1], got %g",
              p->alpha);
    MMS_CHECK(p->iters >= 1 && p->iters <= 1000, MMS_ERR_ARG,
              "baseline: PPR iterations must be in [1, 1000], got %d", p->iters);
    MMS_CHECK(p->w >= 0 && p->w <= 1, MMS_ERR_ARG,
              "baseline: fused visual weight (--fuse-weight) must be in [0, 1], got %g", p->w);
    MMS_CHECK(kout >= 1 && kout <= MMS_EVAL_MAX_K, MMS_ERR_ARG,
              "baseline: k must be in [1, %d], got %d", MMS_EVAL_MAX_K, kout);
    return MMS_OK;
}

mms_status mms_baseline_expand(const mms_catalog_t *c, const int64_t *qrows, int64_t nq,
                               mms_expand_kind kind, const mms_expand_params_t *p, int kout,
                               int64_t *rows_out, float *scores_out) {
    MMS_CALL(expand_check(p, kout));
    for (int64_t i = 0; i < nq; i++)
        MMS_CHECK(qrows[i] >= 0 && qrows[i] < c->n, MMS_ERR_ARG,
                  "baseline: query row %lld out of range", (long long)qrows[i]);
    gallery_t g;
    int64_t *nbr = NULL;
    float *sims = NULL;
    mms_status s = MMS_OK;
    MMS_CALL(gallery_build(c, &g));
    size_t nn = (size_t)EXPAND_QCHUNK * (size_t)p->k;
    MMS_CALL_GOTO(s, out, mms_malloc(nn * sizeof *nbr, &nbr));
    MMS_CALL_GOTO(s, out, mms_malloc(nn * sizeof *sims, &sims));
    for (int64_t q0 = 0; q0 < nq; q0 += EXPAND_QCHUNK) {
        int64_t qn = nq - q0 < EXPAND_QCHUNK ? nq - q0 : EXPAND_QCHUNK;
        MMS_CALL_GOTO(s, out, mms_baseline_visual(c, 1, qrows + q0, qn, p->k, nbr, sims));
        MMS_CALL_GOTO(s, out,
                      expand_run(c, &g, qrows + q0, qn, kind, p, nbr, sims, p->k, kout,
                                 rows_out + (size_t)q0 * kout, scores_out + (size_t)q0 * kout));
    }
out:
    free(nbr);
    free(sims);
    gallery_free(&g);
    return s;
}

mms_status mms_baseline_expand_from(const mms_catalog_t *c, const int64_t *qrows, int64_t nq,
                                    mms_expand_kind kind, const mms_expand_params_t *p,
                                    const int64_t *nbr, const float *sims, int stride, int kout,
                                    int64_t *rows_out, float *scores_out) {
    MMS_CALL(expand_check(p, kout));
    MMS_CHECK(p->k <= stride && nbr && sims, MMS_ERR_ARG,
              "baseline: expansion from given neighbours needs k (%d) <= stride (%d)", p->k, stride);
    for (int64_t i = 0; i < nq; i++) {
        MMS_CHECK(qrows[i] >= 0 && qrows[i] < c->n, MMS_ERR_ARG,
                  "baseline: query row %lld out of range", (long long)qrows[i]);
        for (int j = 0; j < p->k; j++) {
            int64_t r = nbr[(size_t)i * stride + j];
            MMS_CHECK(r < c->n && (r < 0 || c->split[r] == MMS_SPLIT_TRAIN), MMS_ERR_ARG,
                      "baseline: neighbour %lld of query %lld is not a training row", (long long)r,
                      (long long)qrows[i]);
        }
    }
    gallery_t g;
    MMS_CALL(gallery_build(c, &g));
    mms_status s = expand_run(c, &g, qrows, nq, kind, p, nbr, sims, stride, kout, rows_out, scores_out);
    gallery_free(&g);
    return s;
}

mms_status mms_eval_add_baselines(mms_eval_t *e, const int64_t *qrows, int64_t nq, unsigned which,
                                  int k_overlap, uint64_t seed) {
    return mms_eval_add_baselines_ex(e, qrows, nq, which, k_overlap, seed, NULL);
}

/* The expansion baselines of which, recorded in e (neighbours found once). */
static mms_status add_expansions(mms_eval_t *e, const int64_t *qrows, int64_t nq, unsigned which,
                                 int k_overlap, int k, const mms_expand_params_t *p) {
    static const struct {
        unsigned flag;
        mms_expand_kind kind;
        const char *name;
    } kinds[3] = {{MMS_BASELINE_EXPAND, MMS_EXPAND_VOTE, "vote-expansion"},
                  {MMS_BASELINE_PPR, MMS_EXPAND_PPR, "ppr"},
                  {MMS_BASELINE_FUSED, MMS_EXPAND_FUSED, "fused"}};
    if (!(which & (MMS_BASELINE_EXPAND | MMS_BASELINE_PPR | MMS_BASELINE_FUSED))) return MMS_OK;
    const mms_catalog_t *c = mms_eval_catalog(e);
    MMS_CALL(expand_check(p, k));
    int m[3] = {-1, -1, -1};
    for (int t = 0; t < 3; t++)
        if (which & kinds[t].flag) MMS_CALL(mms_eval_method(e, kinds[t].name, k_overlap, &m[t]));
    gallery_t g;
    int64_t *nbr = NULL, *rows = NULL;
    float *sims = NULL, *sc = NULL;
    mms_status s = MMS_OK;
    MMS_CALL(gallery_build(c, &g));
    /* in chunks of queries: the neighbour lists (k up to 1000) of every query at once
     * could be large */
    size_t nn = (size_t)EXPAND_QCHUNK * (size_t)p->k, nk = (size_t)EXPAND_QCHUNK * (size_t)k;
    MMS_CALL_GOTO(s, out, mms_malloc(nn * sizeof *nbr, &nbr));
    MMS_CALL_GOTO(s, out, mms_malloc(nn * sizeof *sims, &sims));
    MMS_CALL_GOTO(s, out, mms_malloc(nk * sizeof *rows, &rows));
    MMS_CALL_GOTO(s, out, mms_malloc(nk * sizeof *sc, &sc));
    for (int64_t q0 = 0; q0 < nq; q0 += EXPAND_QCHUNK) {
        int64_t qn = nq - q0 < EXPAND_QCHUNK ? nq - q0 : EXPAND_QCHUNK;
        MMS_CALL_GOTO(s, out, mms_baseline_visual(c, 1, qrows + q0, qn, p->k, nbr, sims));
        for (int t = 0; t < 3; t++) {
            if (m[t] < 0) continue;
            MMS_CALL_GOTO(s, out,
                          expand_run(c, &g, qrows + q0, qn, kinds[t].kind, p, nbr, sims, p->k, k,
                                     rows, sc));
            for (int64_t i = 0; i < qn; i++)
                MMS_CALL_GOTO(s, out,
                              mms_eval_add_results(e, m[t], qrows[q0 + i], rows + (size_t)i * k,
                                                   sc + (size_t)i * k, k));
        }
    }
out:
    free(nbr);
    free(sims);
    free(rows);
    free(sc);
    gallery_free(&g);
    return s;
}

mms_status mms_eval_add_baselines_ex(mms_eval_t *e, const int64_t *qrows, int64_t nq,
                                     unsigned which, int k_overlap, uint64_t seed,
                                     const mms_expand_params_t *pin) {
    mms_expand_params_t p;
    if (pin)
        p = *pin;
    else
        mms_expand_params_default(&p);
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
    MMS_CALL_GOTO(s, out, add_expansions(e, qrows, nq, which, k_overlap, k, &p));
out:
    free(rows);
    free(sc);
    free(tags);
    free(freq);
    free(order);
    return s;
}
