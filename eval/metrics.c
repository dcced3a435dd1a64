/* metrics.c: the retrieval and annotation metrics of judge.h: DCG and its two
 * ideals (all-Excellent, the gallery's best ranking), and the evaluation
 * accumulator (mms_eval_*), which grades each recorded result list through the
 * judge as it goes and summarises a method: grade distribution, nDCG@3/@5,
 * tag overlap and visual similarity over the top k_overlap, and the Corel5k
 * annotation protocol (per-word P and R over the ground truth's words, N+).
 *
 * Does not: decide a grade (judge.c), produce results (the engine, or
 * baseline.c), write or print anything (report.c).
 */
#define _GNU_SOURCE
#include "judge.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "judge_internal.h"
#include "mms_array.h"
#include "mms_strmap.h"

/* ================================================================ nDCG */

double mms_dcg(const int *grades, int k) {
    double d = 0;
    for (int i = 0; i < k; i++)
        if (grades[i] > 0) d += (double)((1 << grades[i]) - 1) / log2((double)i + 2.0);
    return d;
}

double mms_dcg_ideal_excellent(int k) {
    double d = 0;
    for (int i = 0; i < k; i++)
        d += 7.0 / log2((double)i + 2.0);
    return d;
}

double mms_dcg_ideal_gallery(const int64_t counts[4], int k) {
    int best[MMS_EVAL_MAX_K];
    int n = 0;
    if (k > MMS_EVAL_MAX_K) k = MMS_EVAL_MAX_K;
    for (int g = 3; g >= 0 && n < k; g--)
        for (int64_t i = 0; i < counts[g] && n < k; i++)
            best[n++] = g;
    return mms_dcg(best, n);
}
/* ================================================================ accumulator */

typedef struct {
    int64_t query;
    int64_t off; /* into rows / scores / grades */
    int n;       /* results kept */
    int ntags;
    int64_t toff; /* into tags */
    int has_results;
    double dcg[2];
    double overlap, vis; /* means over the present results of the top k_overlap */
    int nk;              /* those results */
} qrec_t;

typedef struct {
    char name[MMS_EVAL_NAME_MAX + 1];
    int k_overlap, keep;
    qrec_t *q;
    int64_t nq;
    size_t capq;
    mms_strmap_t *qmap; /* query row (8 bytes) -> record */
    int64_t *rows;
    float *scores;
    int8_t *grades;
    int64_t nres;
    size_t cap_rows, cap_scores, cap_grades;
    int any_scores;
    int32_t *tags;
    int64_t ntag;
    size_t captag;
} method_t;

struct mms_eval {
    const mms_catalog_t *c;
    const mms_judge_t *j;
    char dataset[MMS_EVAL_NAME_MAX + 1];
    method_t *m;
    int nm;
    size_t capm;
    mms_strmap_t *ideal_map; /* query row -> index into ideal */
    double (*ideal)[2];      /* gallery ideal DCG@3, @5 */
    int64_t nideal;
    size_t capideal;
    double *norm; /* |x_r| of the features, NAN until computed */
    int split;    /* the queries' split, for the report (mms_eval_set_split) */
};

static int name_ok(const char *s, const char *extra) {
    if (!s || !s[0] || strlen(s) > MMS_EVAL_NAME_MAX) return 0;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr(extra, ch)))
            return 0;
    }
    return 1;
}

mms_status mms_eval_create(const mms_catalog_t *c, const mms_judge_t *j, const char *dataset,
                           mms_eval_t **out) {
    *out = NULL;
    MMS_CHECK(c && j && j->c == c, MMS_ERR_ARG, "eval: the judge must be made from the catalog");
    MMS_CHECK(name_ok(dataset, "._+-"), MMS_ERR_ARG,
              "eval: dataset name '%s' must be 1-%d letters, digits or ._+-",
              dataset ? dataset : "", MMS_EVAL_NAME_MAX);
    mms_eval_t *e;
    MMS_CALL(mms_calloc(1, sizeof *e, &e));
    e->c = c;
    e->j = j;
    e->split = MMS_SPLIT_TEST;
    snprintf(e->dataset, sizeof e->dataset, "%s", dataset);
    mms_status s;
    MMS_CALL_GOTO(s, fail, mms_strmap_create(1024, &e->ideal_map));
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)c->n * sizeof *e->norm, &e->norm));
    for (int64_t r = 0; r < c->n; r++)
        e->norm[r] = NAN;
    *out = e;
    return MMS_OK;
fail:
    mms_eval_destroy(&e);
    return s;
}

void mms_eval_destroy(mms_eval_t **ep) {
    if (!ep || !*ep) return;
    mms_eval_t *e = *ep;
    for (int i = 0; i < e->nm; i++) {
        method_t *m = &e->m[i];
        free(m->q);
        mms_strmap_destroy(&m->qmap);
        free(m->rows);
        free(m->scores);
        free(m->grades);
        free(m->tags);
    }
    free(e->m);
    mms_strmap_destroy(&e->ideal_map);
    free(e->ideal);
    free(e->norm);
    free(e);
    *ep = NULL;
}

int mms_eval_find_method(const mms_eval_t *e, const char *name) {
    for (int i = 0; i < e->nm; i++)
        if (!strcmp(e->m[i].name, name)) return i;
    return -1;
}

mms_status mms_eval_method(mms_eval_t *e, const char *name, int k_overlap, int *method) {
    MMS_CHECK(name_ok(name, "._+-@"), MMS_ERR_ARG,
              "eval: method name '%s' must be 1-%d letters, digits or ._+-@", name ? name : "",
              MMS_EVAL_NAME_MAX);
    MMS_CHECK(mms_eval_find_method(e, name) < 0, MMS_ERR_ARG, "eval: method '%s' declared twice",
              name);
    MMS_CHECK(k_overlap >= 1 && k_overlap <= MMS_EVAL_MAX_K, MMS_ERR_ARG,
              "eval: k_overlap must be in [1, %d], got %d", MMS_EVAL_MAX_K, k_overlap);
    MMS_CALL(mms_grow(&e->m, sizeof *e->m, (size_t)e->nm + 1, &e->capm));
    method_t *m = &e->m[e->nm];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->k_overlap = k_overlap;
    m->keep = k_overlap > MMS_EVAL_K ? k_overlap : MMS_EVAL_K;
    MMS_CALL(mms_strmap_create(1024, &m->qmap));
    *method = e->nm++;
    return MMS_OK;
}

/* The record of query q in method m, created if absent. */
static mms_status get_record(method_t *m, int64_t q, qrec_t **out) {
    int64_t at;
    if (mms_strmap_get(m->qmap, (const char *)&q, sizeof q, &at)) {
        *out = &m->q[at];
        return MMS_OK;
    }
    MMS_CALL(mms_grow(&m->q, sizeof *m->q, (size_t)m->nq + 1, &m->capq));
    MMS_CALL(mms_strmap_put(m->qmap, (const char *)&q, sizeof q, m->nq, NULL, NULL));
    qrec_t *r = &m->q[m->nq++];
    memset(r, 0, sizeof *r);
    r->query = q;
    *out = r;
    return MMS_OK;
}

static double row_norm(mms_eval_t *e, int64_t r) {
    if (isnan(e->norm[r])) {
        const float *x = e->c->x + (size_t)r * (size_t)e->c->dim;
        double s = 0;
        for (int32_t d = 0; d < e->c->dim; d++)
            s += (double)x[d] * x[d];
        e->norm[r] = sqrt(s);
    }
    return e->norm[r];
}

/* Cosine of two feature rows in double; 0 when either is all zero. */
static double feature_cosine(mms_eval_t *e, int64_t a, int64_t b) {
    double na = row_norm(e, a), nb = row_norm(e, b);
    if (na == 0 || nb == 0) return 0;
    const float *x = e->c->x + (size_t)a * (size_t)e->c->dim,
                *y = e->c->x + (size_t)b * (size_t)e->c->dim;
    double s = 0;
    for (int32_t d = 0; d < e->c->dim; d++)
        s += (double)x[d] * y[d];
    return s / (na * nb);
}

/* Gallery ideal DCG@3 and @5 of query q, computed once per query row. */
static mms_status gallery_ideal(mms_eval_t *e, int64_t q, double out[2]) {
    int64_t at;
    if (!mms_strmap_get(e->ideal_map, (const char *)&q, sizeof q, &at)) {
        int64_t counts[4];
        MMS_CALL(mms_judge_gallery_counts(e->j, q, counts));
        MMS_CALL(mms_grow(&e->ideal, sizeof *e->ideal, (size_t)e->nideal + 1, &e->capideal));
        at = e->nideal++;
        e->ideal[at][0] = mms_dcg_ideal_gallery(counts, 3);
        e->ideal[at][1] = mms_dcg_ideal_gallery(counts, 5);
        MMS_CALL(mms_strmap_put(e->ideal_map, (const char *)&q, sizeof q, at, NULL, NULL));
    }
    out[0] = e->ideal[at][0];
    out[1] = e->ideal[at][1];
    return MMS_OK;
}

mms_status mms_eval_add_results(mms_eval_t *e, int method, int64_t query, const int64_t *rows,
                                const float *scores, int n) {
    const mms_catalog_t *c = e->c;
    MMS_CHECK(method >= 0 && method < e->nm, MMS_ERR_ARG, "eval: no method %d", method);
    method_t *m = &e->m[method];
    MMS_CHECK(query >= 0 && query < c->n, MMS_ERR_ARG, "eval %s: query row %lld out of range",
              m->name, (long long)query);
    MMS_CHECK(n >= 0 && n <= MMS_EVAL_MAX_K && (n == 0 || rows), MMS_ERR_ARG,
              "eval %s: %d results (at most %d)", m->name, n, MMS_EVAL_MAX_K);
    int keep = 0;
    for (int i = 0; i < n && rows[i] >= 0; i++)
        keep++;
    for (int i = keep; i < n; i++)
        MMS_CHECK(rows[i] == -1, MMS_ERR_ARG, "eval %s: query %s: result %d follows -1 padding",
                  m->name, c->ids[query], i);
    for (int i = 0; i < keep; i++) {
        MMS_CHECK(rows[i] < c->n && c->split[rows[i]] == MMS_SPLIT_TRAIN, MMS_ERR_ARG,
                  "eval %s: query %s: result %d (row %lld) is not a training image", m->name,
                  c->ids[query], i, (long long)rows[i]);
        for (int k = 0; k < i; k++)
            MMS_CHECK(rows[k] != rows[i], MMS_ERR_ARG, "eval %s: query %s: result %s listed twice",
                      m->name, c->ids[query], c->ids[rows[i]]);
    }
    if (keep > m->keep) keep = m->keep;
    qrec_t *r;
    MMS_CALL(get_record(m, query, &r));
    MMS_CHECK(!r->has_results, MMS_ERR_ARG, "eval %s: query %s recorded twice", m->name,
              c->ids[query]);
    size_t need = (size_t)(m->nres + keep);
    MMS_CALL(mms_grow(&m->rows, sizeof *m->rows, need, &m->cap_rows));
    MMS_CALL(mms_grow(&m->scores, sizeof *m->scores, need, &m->cap_scores));
    MMS_CALL(mms_grow(&m->grades, sizeof *m->grades, need, &m->cap_grades));
    int g5[MMS_EVAL_K] = {0};
    const sets_t *t = &e->j->tags;
    int64_t nqt = t->ptr[query + 1] - t->ptr[query];
    double ovl = 0, vis = 0;
    int nk = 0;
    for (int i = 0; i < keep; i++) {
        int64_t row = rows[i];
        int g = mms_judge_grade(e->j, query, row);
        m->rows[m->nres + i] = row;
        m->scores[m->nres + i] = scores ? scores[i] : NAN;
        m->grades[m->nres + i] = (int8_t)g;
        if (i < MMS_EVAL_K) g5[i] = g;
        if (i < m->k_overlap) {
            int64_t in = judge_inter_count(t->idx + t->ptr[query], nqt, t->idx + t->ptr[row],
                                           t->ptr[row + 1] - t->ptr[row]);
            ovl += nqt ? (double)in / (double)nqt : 0.0;
            vis += feature_cosine(e, query, row);
            nk++;
        }
    }
    if (scores) m->any_scores = 1;
    r->off = m->nres;
    r->n = keep;
    r->has_results = 1;
    m->nres += keep;
    r->dcg[0] = mms_dcg(g5, keep < 3 ? keep : 3);
    r->dcg[1] = mms_dcg(g5, keep < MMS_EVAL_K ? keep : MMS_EVAL_K);
    r->overlap = nk ? ovl / nk : 0;
    r->vis = nk ? vis / nk : 0;
    r->nk = nk;
    double ideal[2];
    MMS_CALL(gallery_ideal(e, query, ideal));
    return MMS_OK;
}

mms_status mms_eval_add_tags(mms_eval_t *e, int method, int64_t query, const int32_t *tags, int n) {
    const mms_catalog_t *c = e->c;
    MMS_CHECK(method >= 0 && method < e->nm, MMS_ERR_ARG, "eval: no method %d", method);
    method_t *m = &e->m[method];
    MMS_CHECK(query >= 0 && query < c->n, MMS_ERR_ARG, "eval %s: query row %lld out of range",
              m->name, (long long)query);
    MMS_CHECK(n >= 0 && n <= MMS_EVAL_NTAGS && (n == 0 || tags), MMS_ERR_ARG,
              "eval %s: %d predicted tags (at most %d)", m->name, n, MMS_EVAL_NTAGS);
    int keep = 0;
    for (int i = 0; i < n && tags[i] >= 0; i++) {
        MMS_CHECK(tags[i] < c->ntags, MMS_ERR_ARG, "eval %s: query %s: tag index %d out of range",
                  m->name, c->ids[query], (int)tags[i]);
        for (int k = 0; k < i; k++)
            MMS_CHECK(tags[k] != tags[i], MMS_ERR_ARG,
                      "eval %s: query %s: tag '%s' predicted twice", m->name, c->ids[query],
                      c->tag_names[tags[i]]);
        keep++;
    }
    for (int i = keep; i < n; i++)
        MMS_CHECK(tags[i] == -1, MMS_ERR_ARG, "eval %s: query %s: tag %d follows -1 padding",
                  m->name, c->ids[query], i);
    qrec_t *r;
    MMS_CALL(get_record(m, query, &r));
    MMS_CHECK(r->ntags == 0 && r->toff == 0, MMS_ERR_ARG,
              "eval %s: tags of query %s recorded twice", m->name, c->ids[query]);
    MMS_CALL(mms_grow(&m->tags, sizeof *m->tags, (size_t)(m->ntag + keep + 1), &m->captag));
    /* slot 0 of a query's run is a marker so "recorded with zero tags" is seen */
    m->tags[m->ntag] = -1;
    r->toff = m->ntag + 1;
    memcpy(m->tags + r->toff, tags, (size_t)keep * sizeof *tags);
    r->ntags = keep;
    m->ntag += keep + 1;
    return MMS_OK;
}

mms_status mms_eval_summarize(const mms_eval_t *e, int method, mms_eval_summary_t *out) {
    memset(out, 0, sizeof *out);
    MMS_CHECK(method >= 0 && method < e->nm, MMS_ERR_ARG, "eval: no method %d", method);
    const method_t *m = &e->m[method];
    const mms_catalog_t *c = e->c;
    out->k_overlap = m->k_overlap;
    int64_t per_grade[4] = {0}, nk_queries = 0;
    double ex3 = mms_dcg_ideal_excellent(3), ex5 = mms_dcg_ideal_excellent(5);
    for (int64_t i = 0; i < m->nq; i++) {
        const qrec_t *r = &m->q[i];
        if (r->has_results) {
            out->queries++;
            if (r->n < MMS_EVAL_K) out->short_lists++;
            for (int k = 0; k < r->n && k < MMS_EVAL_K; k++)
                per_grade[m->grades[r->off + k]]++;
            out->ndcg_excellent[0] += r->dcg[0] / ex3;
            out->ndcg_excellent[1] += r->dcg[1] / ex5;
            int64_t at;
            if (mms_strmap_get(e->ideal_map, (const char *)&r->query, sizeof r->query, &at)) {
                if (e->ideal[at][0] > 0) out->ndcg_gallery[0] += r->dcg[0] / e->ideal[at][0];
                if (e->ideal[at][1] > 0) out->ndcg_gallery[1] += r->dcg[1] / e->ideal[at][1];
            }
            if (r->nk) {
                out->tag_overlap += r->overlap;
                out->visual_sim += r->vis;
                nk_queries++;
            }
        }
        if (r->toff > 0) out->tag_queries++;
    }
    for (int g = 0; g < 4; g++)
        out->results += per_grade[g];
    for (int g = 0; g < 4; g++)
        out->grade_pct[g] = out->results ? 100.0 * (double)per_grade[g] / (double)out->results : 0;
    if (out->queries) {
        for (int k = 0; k < 2; k++) {
            out->ndcg_excellent[k] /= (double)out->queries;
            out->ndcg_gallery[k] /= (double)out->queries;
        }
    }
    if (nk_queries) {
        out->tag_overlap /= (double)nk_queries;
        out->visual_sim /= (double)nk_queries;
    }
    if (out->tag_queries == 0) return MMS_OK;
    /* annotation protocol over the words of the predicted queries' ground truth */
    int64_t *ntrue = NULL, *npred = NULL, *correct = NULL;
    mms_status s;
    size_t nt = (size_t)c->ntags + 1;
    MMS_CALL_GOTO(s, out_free, mms_calloc(nt, sizeof *ntrue, &ntrue));
    MMS_CALL_GOTO(s, out_free, mms_calloc(nt, sizeof *npred, &npred));
    MMS_CALL_GOTO(s, out_free, mms_calloc(nt, sizeof *correct, &correct));
    const sets_t *t = &e->j->tags;
    for (int64_t i = 0; i < m->nq; i++) {
        const qrec_t *r = &m->q[i];
        if (r->toff == 0) continue;
        const int32_t *truth = t->idx + t->ptr[r->query];
        int64_t ntr = t->ptr[r->query + 1] - t->ptr[r->query];
        for (int64_t k = 0; k < ntr; k++)
            ntrue[truth[k]]++;
        for (int k = 0; k < r->ntags; k++) {
            int32_t p = m->tags[r->toff + k];
            npred[p]++;
            if (bsearch(&p, truth, (size_t)ntr, sizeof *truth, judge_cmp_i32)) correct[p]++;
        }
    }
    for (int32_t w = 0; w < c->ntags; w++) {
        if (!ntrue[w]) continue;
        out->tag_words++;
        double rec = (double)correct[w] / (double)ntrue[w];
        out->tag_p += npred[w] ? (double)correct[w] / (double)npred[w] : 0.0;
        out->tag_r += rec;
        out->tag_nplus += rec > 0;
    }
    if (out->tag_words) {
        out->tag_p /= (double)out->tag_words;
        out->tag_r /= (double)out->tag_words;
    }
    s = MMS_OK;
out_free:
    free(ntrue);
    free(npred);
    free(correct);
    return s;
}

int mms_eval_methods(const mms_eval_t *e) {
    return e->nm;
}
const char *mms_eval_method_name(const mms_eval_t *e, int method) {
    return method >= 0 && method < e->nm ? e->m[method].name : NULL;
}
mms_status mms_eval_set_split(mms_eval_t *e, int split) {
    MMS_CHECK(split == MMS_SPLIT_VAL || split == MMS_SPLIT_TEST, MMS_ERR_ARG,
              "eval: queries come from the val or the test split, not '%s'",
              mms_split_name(split));
    e->split = split;
    return MMS_OK;
}

int mms_eval_split(const mms_eval_t *e) { return e->split; }

const char *mms_eval_dataset(const mms_eval_t *e) {
    return e->dataset;
}
const mms_catalog_t *mms_eval_catalog(const mms_eval_t *e) {
    return e->c;
}
const mms_judge_t *mms_eval_judge(const mms_eval_t *e) {
    return e->j;
}

int64_t mms_eval_queries(const mms_eval_t *e, int method) {
    return method >= 0 && method < e->nm ? e->m[method].nq : 0;
}

int64_t mms_eval_find_query(const mms_eval_t *e, int method, int64_t query) {
    int64_t at;
    if (method < 0 || method >= e->nm) return -1;
    return mms_strmap_get(e->m[method].qmap, (const char *)&query, sizeof query, &at) ? at : -1;
}

void mms_eval_query(const mms_eval_t *e, int method, int64_t i, mms_eval_query_t *out) {
    const method_t *m = &e->m[method];
    const qrec_t *r = &m->q[i];
    out->query = r->query;
    out->n = r->n;
    out->rows = m->rows ? m->rows + r->off : NULL;
    out->scores = m->any_scores && m->scores ? m->scores + r->off : NULL;
    out->grades = m->grades ? m->grades + r->off : NULL;
    out->ntags = r->ntags;
    out->tags = r->toff > 0 ? m->tags + r->toff : NULL;
    out->nk = r->nk;
    out->overlap = r->overlap;
    out->visual = r->vis;
    out->ndcg5 = r->has_results ? r->dcg[1] / mms_dcg_ideal_excellent(5) : 0.0;
}
