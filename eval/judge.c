/* judge.c: see judge.h. Three judges over per-row sorted sets built once at
 * create time, the evaluation accumulator, and the catalog-only baselines. */
#define _GNU_SOURCE
#include "judge.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_text.h"
#include "mms_log.h"
#include "mms_rng.h"
#include "mms_strmap.h"

/* Random baseline stream. */
#define JUDGE_STREAM_RANDOM ((uint32_t)MMS_STREAM_EVAL)

const char *mms_grade_name(int grade) {
    static const char *const names[4] = {"Unacceptable", "Acceptable", "Good", "Excellent"};
    return grade >= 0 && grade <= 3 ? names[grade] : "?";
}

const char *mms_judge_kind_name(int kind) {
    switch (kind) {
    case MMS_JUDGE_TAGS:
        return "tags";
    case MMS_JUDGE_COCO:
        return "coco";
    case MMS_JUDGE_PLANTED:
        return "planted";
    default:
        return "?";
    }
}

/* ================================================================ judge */

/* A CSR of sorted, distinct int32 sets, one per catalog row. */
typedef struct {
    int64_t *ptr; /* n + 1 */
    int32_t *idx;
} sets_t;

struct mms_judge {
    const mms_catalog_t *c;
    mms_judge_kind kind;
    int64_t ntrain;
    sets_t tags;        /* every kind: the catalog tags (tag overlap, tag oracle) */
    int64_t *tpost_ptr; /* tags: postings of each tag over training rows (ntags + 1) */
    int64_t *tpost_row;
    /* coco */
    sets_t concepts; /* concept ids: categories are 0..ncats-1, caption words follow */
    mms_strmap_t *cvocab;
    int64_t *optr; /* objects per row, sorted by category */
    int32_t *ocat, *ocnt;
    int64_t *cpost_ptr; /* postings of each category over training rows (ncats + 1) */
    int64_t *cpost_row;
    /* planted: category ids of a row's cluster_ and topic_ entries (-1: none) */
    int32_t *cluster, *topic;
    int64_t *cat_train; /* training rows per category (ncats) */
    uint64_t *pair_key; /* sorted (cluster, topic) keys of the training rows that have both */
    int64_t npair;
};

mms_judge_kind mms_judge_kind_of(const mms_judge_t *j) {
    return j->kind;
}

int64_t mms_judge_gallery_size(const mms_judge_t *j) {
    return j->ntrain;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sort and de-duplicate v[0..n); returns the new length. */
static int64_t sort_unique_i32(int32_t *v, int64_t n) {
    if (n <= 1) return n;
    qsort(v, (size_t)n, sizeof *v, cmp_i32);
    int64_t m = 1;
    for (int64_t i = 1; i < n; i++)
        if (v[i] != v[m - 1]) v[m++] = v[i];
    return m;
}

/* |a ∩ b| of two sorted sets. */
static int64_t inter_count(const int32_t *a, int64_t na, const int32_t *b, int64_t nb) {
    int64_t i = 0, k = 0, m = 0;
    while (i < na && k < nb) {
        if (a[i] < b[k])
            i++;
        else if (a[i] > b[k])
            k++;
        else {
            m++;
            i++;
            k++;
        }
    }
    return m;
}

/* Tag sets from the catalog CSR (sorted and de-duplicated per row). */
static mms_status build_tag_sets(const mms_catalog_t *c, sets_t *s) {
    int64_t nnz = c->tag_ptr[c->n];
    MMS_CALL(mms_malloc((size_t)(c->n + 1) * sizeof *s->ptr, &s->ptr));
    MMS_CALL(mms_malloc((size_t)(nnz ? nnz : 1) * sizeof *s->idx, &s->idx));
    int64_t at = 0;
    s->ptr[0] = 0;
    for (int64_t r = 0; r < c->n; r++) {
        int64_t b = c->tag_ptr[r], len = c->tag_ptr[r + 1] - b;
        memcpy(s->idx + at, c->tag_idx + b, (size_t)len * sizeof *s->idx);
        at += sort_unique_i32(s->idx + at, len);
        s->ptr[r + 1] = at;
    }
    return MMS_OK;
}

/* Postings of set members over the training rows: ptr (nvals + 1), rows. */
static mms_status build_postings(const mms_catalog_t *c, const int64_t *sptr, const int32_t *sidx,
                                 int32_t nvals, int64_t **ptr_out, int64_t **rows_out) {
    int64_t *ptr = NULL, *rows = NULL, *fill = NULL;
    mms_status s;
    MMS_CALL_GOTO(s, fail, mms_calloc((size_t)nvals + 1, sizeof *ptr, &ptr));
    for (int64_t r = 0; r < c->n; r++)
        if (c->split[r] == MMS_SPLIT_TRAIN)
            for (int64_t e = sptr[r]; e < sptr[r + 1]; e++)
                ptr[sidx[e] + 1]++;
    for (int32_t v = 0; v < nvals; v++)
        ptr[v + 1] += ptr[v];
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)(ptr[nvals] ? ptr[nvals] : 1) * sizeof *rows, &rows));
    MMS_CALL_GOTO(s, fail, mms_calloc((size_t)nvals + 1, sizeof *fill, &fill));
    for (int64_t r = 0; r < c->n; r++)
        if (c->split[r] == MMS_SPLIT_TRAIN)
            for (int64_t e = sptr[r]; e < sptr[r + 1]; e++)
                rows[ptr[sidx[e]] + fill[sidx[e]]++] = r;
    free(fill);
    *ptr_out = ptr;
    *rows_out = rows;
    return MMS_OK;
fail:
    free(ptr);
    free(rows);
    free(fill);
    return s;
}

/* Collects the caption concept words of one row as concept ids. */
typedef struct {
    mms_strmap_t *vocab;
    mms_strmap_t *stop;
    int32_t *ids;
    int64_t n, cap;
} word_sink_t;

static mms_status sink_word(void *arg, const char *w) {
    word_sink_t *k = arg;
    int64_t id;
    MMS_CALL(mms_strmap_put(k->vocab, w, strlen(w), (int64_t)mms_strmap_size(k->vocab), NULL, &id));
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 32;
        MMS_CALL(mms_realloc((size_t)k->cap * sizeof *k->ids, &k->ids));
    }
    k->ids[k->n++] = (int32_t)id;
    return MMS_OK;
}

/* The caption concept words of row r into k->ids (k->n of them): the rule of
 * the importer's --caption-tags, through the shared tokenizer (mms_text.h). */
static mms_status caption_concepts(const mms_catalog_t *c, int64_t r, word_sink_t *k) {
    k->n = 0;
    if (!c->cap_ptr || c->cap_ptr[r + 1] == c->cap_ptr[r]) return MMS_OK;
    if (!k->stop) MMS_CALL(mms_text_stopwords(&k->stop));
    MMS_CALL(mms_text_caption_words((const char *const *)c->captions + c->cap_ptr[r],
                                    (int)(c->cap_ptr[r + 1] - c->cap_ptr[r]),
                                    MMS_TEXT_CAPTION_VOTES, k->stop, sink_word, k));
    return MMS_OK;
}

static mms_status build_coco(mms_judge_t *j) {
    const mms_catalog_t *c = j->c;
    int64_t n = c->n;
    mms_status s = MMS_OK;
    word_sink_t sink = {0};
    /* objects sorted by category per row */
    int64_t ne = c->obj_ptr[n];
    MMS_CALL(mms_malloc((size_t)(n + 1) * sizeof *j->optr, &j->optr));
    MMS_CALL(mms_malloc((size_t)(ne ? ne : 1) * sizeof *j->ocat, &j->ocat));
    MMS_CALL(mms_malloc((size_t)(ne ? ne : 1) * sizeof *j->ocnt, &j->ocnt));
    memcpy(j->optr, c->obj_ptr, (size_t)(n + 1) * sizeof *j->optr);
    for (int64_t r = 0; r < n; r++) {
        int64_t b = c->obj_ptr[r], e = c->obj_ptr[r + 1];
        for (int64_t i = b; i < e; i++) { /* insertion sort: a handful per image */
            int32_t cat = c->obj_cat[i], cnt = c->obj_count[i];
            int64_t k = i;
            for (; k > b && j->ocat[k - 1] > cat; k--) {
                j->ocat[k] = j->ocat[k - 1];
                j->ocnt[k] = j->ocnt[k - 1];
            }
            j->ocat[k] = cat;
            j->ocnt[k] = cnt;
        }
    }
    MMS_CALL(build_postings(c, j->optr, j->ocat, c->ncats, &j->cpost_ptr, &j->cpost_row));
    /* concepts: categories (ids 0..ncats-1), then caption words */
    MMS_CALL(mms_strmap_create((size_t)c->ncats + 1024, &j->cvocab));
    for (int32_t k = 0; k < c->ncats; k++)
        MMS_CALL(
            mms_strmap_put(j->cvocab, c->cat_names[k], strlen(c->cat_names[k]), k, NULL, NULL));
    MMS_CHECK(mms_strmap_size(j->cvocab) == (size_t)c->ncats, MMS_ERR_INTERNAL,
              "judge: duplicate category names");
    int64_t cap = ne + 1, at = 0;
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(n + 1) * sizeof *j->concepts.ptr, &j->concepts.ptr));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)cap * sizeof *j->concepts.idx, &j->concepts.idx));
    sink.vocab = j->cvocab;
    j->concepts.ptr[0] = 0;
    for (int64_t r = 0; r < n; r++) {
        MMS_CALL_GOTO(s, out, caption_concepts(c, r, &sink));
        int64_t len = (j->optr[r + 1] - j->optr[r]) + sink.n;
        if (at + len > cap) {
            cap = 2 * cap + len;
            MMS_CALL_GOTO(s, out,
                          mms_realloc((size_t)cap * sizeof *j->concepts.idx, &j->concepts.idx));
        }
        int32_t *dst = j->concepts.idx + at;
        int64_t m = 0;
        for (int64_t e = j->optr[r]; e < j->optr[r + 1]; e++)
            dst[m++] = j->ocat[e];
        for (int64_t w = 0; w < sink.n; w++)
            dst[m++] = sink.ids[w];
        at += sort_unique_i32(dst, m);
        j->concepts.ptr[r + 1] = at;
    }
out:
    free(sink.ids);
    mms_strmap_destroy(&sink.stop);
    return s;
}

/* "cluster_12" -> 'c', "topic_3" -> 't', "blend_5" -> 'b', anything else 0. */
static int planted_class(const char *name) {
    static const char *const pre[3] = {"cluster_", "topic_", "blend_"};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(pre[k]);
        if (strncmp(name, pre[k], l)) continue;
        const char *d = name + l;
        if (!*d) return 0;
        for (; *d; d++)
            if (*d < '0' || *d > '9') return 0;
        return pre[k][0];
    }
    return 0;
}

/* 1 if the catalog's categories are all planted truth with clusters and topics. */
static int is_planted(const mms_catalog_t *c) {
    if (!c->obj_ptr || c->ncats == 0) return 0;
    int clusters = 0, topics = 0;
    for (int32_t k = 0; k < c->ncats; k++) {
        int cl = planted_class(c->cat_names[k]);
        if (!cl) return 0;
        clusters += cl == 'c';
        topics += cl == 't';
    }
    return clusters > 0 && topics > 0;
}

static mms_status build_planted(mms_judge_t *j) {
    const mms_catalog_t *c = j->c;
    MMS_CALL(mms_malloc((size_t)c->n * sizeof *j->cluster, &j->cluster));
    MMS_CALL(mms_malloc((size_t)c->n * sizeof *j->topic, &j->topic));
    MMS_CALL(mms_calloc((size_t)c->ncats + 1, sizeof *j->cat_train, &j->cat_train));
    MMS_CALL(mms_malloc((size_t)(j->ntrain ? j->ntrain : 1) * sizeof *j->pair_key, &j->pair_key));
    for (int64_t r = 0; r < c->n; r++) {
        j->cluster[r] = j->topic[r] = -1;
        for (int64_t e = c->obj_ptr[r]; e < c->obj_ptr[r + 1]; e++) {
            int cl = planted_class(c->cat_names[c->obj_cat[e]]);
            if (cl == 'c' && j->cluster[r] < 0) j->cluster[r] = c->obj_cat[e];
            if (cl == 't' && j->topic[r] < 0) j->topic[r] = c->obj_cat[e];
        }
        if (c->split[r] != MMS_SPLIT_TRAIN) continue;
        if (j->cluster[r] >= 0) j->cat_train[j->cluster[r]]++;
        if (j->topic[r] >= 0) j->cat_train[j->topic[r]]++;
        if (j->cluster[r] >= 0 && j->topic[r] >= 0)
            j->pair_key[j->npair++] =
                (uint64_t)j->cluster[r] * (uint64_t)c->ncats + (uint64_t)j->topic[r];
    }
    qsort(j->pair_key, (size_t)j->npair, sizeof *j->pair_key, cmp_u64);
    return MMS_OK;
}

mms_status mms_judge_create_kind(const mms_catalog_t *c, mms_judge_kind kind, mms_judge_t **out) {
    *out = NULL;
    MMS_CHECK(c && c->n > 0, MMS_ERR_ARG, "judge: empty catalog");
    MMS_CHECK(kind == MMS_JUDGE_TAGS || kind == MMS_JUDGE_COCO || kind == MMS_JUDGE_PLANTED,
              MMS_ERR_ARG, "judge: unknown kind %d", (int)kind);
    MMS_CHECK(kind == MMS_JUDGE_TAGS || c->obj_ptr, MMS_ERR_ARG,
              "judge: the %s judge needs objects.tsv in catalog %s", mms_judge_kind_name(kind),
              c->dir);
    MMS_CHECK(kind != MMS_JUDGE_PLANTED || is_planted(c), MMS_ERR_ARG,
              "judge: catalog %s has no planted cluster_/topic_ objects", c->dir);
    mms_judge_t *j;
    MMS_CALL(mms_calloc(1, sizeof *j, &j));
    j->c = c;
    j->kind = kind;
    j->ntrain = c->n_split[MMS_SPLIT_TRAIN];
    mms_status s;
    MMS_CALL_GOTO(s, fail, build_tag_sets(c, &j->tags));
    if (kind == MMS_JUDGE_TAGS)
        MMS_CALL_GOTO(
            s, fail,
            build_postings(c, j->tags.ptr, j->tags.idx, c->ntags, &j->tpost_ptr, &j->tpost_row));
    if (kind == MMS_JUDGE_COCO) MMS_CALL_GOTO(s, fail, build_coco(j));
    if (kind == MMS_JUDGE_PLANTED) MMS_CALL_GOTO(s, fail, build_planted(j));
    *out = j;
    return MMS_OK;
fail:
    mms_judge_destroy(&j);
    return s;
}

mms_status mms_judge_create(const mms_catalog_t *c, mms_judge_t **out) {
    *out = NULL;
    MMS_CHECK(c, MMS_ERR_ARG, "judge: no catalog");
    mms_judge_kind kind = MMS_JUDGE_TAGS;
    if (is_planted(c))
        kind = MMS_JUDGE_PLANTED;
    else if (c->obj_ptr && c->ncats > 0)
        kind = MMS_JUDGE_COCO;
    MMS_CALL(mms_judge_create_kind(c, kind, out));
    return MMS_OK;
}

void mms_judge_destroy(mms_judge_t **jp) {
    if (!jp || !*jp) return;
    mms_judge_t *j = *jp;
    free(j->tags.ptr);
    free(j->tags.idx);
    free(j->tpost_ptr);
    free(j->tpost_row);
    free(j->concepts.ptr);
    free(j->concepts.idx);
    mms_strmap_destroy(&j->cvocab);
    free(j->optr);
    free(j->ocat);
    free(j->ocnt);
    free(j->cpost_ptr);
    free(j->cpost_row);
    free(j->cluster);
    free(j->topic);
    free(j->cat_train);
    free(j->pair_key);
    free(j);
    *jp = NULL;
}

/* Tag judge from the overlap count: all / at least half / at least one / none. */
static int tag_grade(int64_t inter, int64_t nq) {
    if (inter <= 0) return MMS_GRADE_UNACCEPTABLE;
    if (inter >= nq) return MMS_GRADE_EXCELLENT;
    if (2 * inter >= nq) return MMS_GRADE_GOOD;
    return MMS_GRADE_ACCEPTABLE;
}

static int coco_grade(const mms_judge_t *j, int64_t q, int64_t r) {
    int64_t a = j->optr[q], ae = j->optr[q + 1], b = j->optr[r], be = j->optr[r + 1];
    int64_t shared = 0;
    int all_in = 1, counts_match = 1;
    while (a < ae) {
        while (b < be && j->ocat[b] < j->ocat[a])
            b++;
        if (b < be && j->ocat[b] == j->ocat[a]) {
            shared++;
            if ((j->ocnt[a] > 1) != (j->ocnt[b] > 1)) counts_match = 0;
        } else {
            all_in = 0;
        }
        a++;
    }
    if (shared == 0) return MMS_GRADE_UNACCEPTABLE; /* "no objects in common" */
    const sets_t *cs = &j->concepts;
    int concept = inter_count(cs->idx + cs->ptr[q], cs->ptr[q + 1] - cs->ptr[q],
                              cs->idx + cs->ptr[r], cs->ptr[r + 1] - cs->ptr[r]) > 0;
    return concept + all_in + counts_match;
}

int mms_judge_grade(const mms_judge_t *j, int64_t q, int64_t r) {
    switch (j->kind) {
    case MMS_JUDGE_COCO:
        return coco_grade(j, q, r);
    case MMS_JUDGE_PLANTED: {
        int same_topic = j->topic[q] >= 0 && j->topic[q] == j->topic[r];
        int same_cluster = j->cluster[q] >= 0 && j->cluster[q] == j->cluster[r];
        return same_topic ? (same_cluster ? MMS_GRADE_EXCELLENT : MMS_GRADE_GOOD)
                          : (same_cluster ? MMS_GRADE_ACCEPTABLE : MMS_GRADE_UNACCEPTABLE);
    }
    default: {
        const sets_t *t = &j->tags;
        int64_t nq = t->ptr[q + 1] - t->ptr[q];
        return tag_grade(
            inter_count(t->idx + t->ptr[q], nq, t->idx + t->ptr[r], t->ptr[r + 1] - t->ptr[r]), nq);
    }
    }
}

/* The training rows listed in the postings of q's set members, sorted with
 * repeats (a row appears once per shared member). Caller frees *rows. */
static mms_status gather_postings(const int64_t *sptr, const int32_t *sidx, int64_t q,
                                  const int64_t *pptr, const int64_t *prow, int64_t **rows,
                                  int64_t *nrows) {
    int64_t total = 0;
    for (int64_t e = sptr[q]; e < sptr[q + 1]; e++)
        total += pptr[sidx[e] + 1] - pptr[sidx[e]];
    MMS_CALL(mms_malloc((size_t)(total ? total : 1) * sizeof **rows, rows));
    int64_t at = 0;
    for (int64_t e = sptr[q]; e < sptr[q + 1]; e++) {
        int64_t b = pptr[sidx[e]], len = pptr[sidx[e] + 1] - b;
        memcpy(*rows + at, prow + b, (size_t)len * sizeof **rows);
        at += len;
    }
    qsort(*rows, (size_t)at, sizeof **rows, cmp_i64);
    *nrows = at;
    return MMS_OK;
}

static int64_t count_key(const uint64_t *keys, int64_t n, uint64_t key) {
    int64_t lo = 0, hi = n; /* first >= key */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (keys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    int64_t first = lo;
    hi = n; /* first > key */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (keys[mid] <= key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - first;
}

mms_status mms_judge_gallery_counts(const mms_judge_t *j, int64_t q, int64_t counts[4]) {
    const mms_catalog_t *c = j->c;
    MMS_CHECK(q >= 0 && q < c->n, MMS_ERR_ARG, "judge: query row %lld out of range", (long long)q);
    for (int g = 0; g < 4; g++)
        counts[g] = 0;
    int64_t matched = 0; /* training rows graded > 0 (q itself included) */
    if (j->kind == MMS_JUDGE_PLANTED) {
        int32_t cl = j->cluster[q], tp = j->topic[q];
        int64_t both = 0;
        if (cl >= 0 && tp >= 0)
            both =
                count_key(j->pair_key, j->npair, (uint64_t)cl * (uint64_t)c->ncats + (uint64_t)tp);
        counts[3] = both;
        counts[2] = tp >= 0 ? j->cat_train[tp] - both : 0;
        counts[1] = cl >= 0 ? j->cat_train[cl] - both : 0;
        matched = counts[1] + counts[2] + counts[3];
    } else {
        int64_t *rows = NULL, nrows = 0;
        if (j->kind == MMS_JUDGE_COCO)
            MMS_CALL(
                gather_postings(j->optr, j->ocat, q, j->cpost_ptr, j->cpost_row, &rows, &nrows));
        else
            MMS_CALL(gather_postings(j->tags.ptr, j->tags.idx, q, j->tpost_ptr, j->tpost_row, &rows,
                                     &nrows));
        int64_t nq = j->tags.ptr[q + 1] - j->tags.ptr[q];
        for (int64_t i = 0; i < nrows;) {
            int64_t k = i;
            while (k < nrows && rows[k] == rows[i])
                k++;
            int g = j->kind == MMS_JUDGE_COCO ? coco_grade(j, q, rows[i]) : tag_grade(k - i, nq);
            counts[g]++;
            matched += g > 0;
            i = k;
        }
        free(rows);
    }
    counts[0] += j->ntrain - matched;
    if (c->split[q] == MMS_SPLIT_TRAIN) counts[mms_judge_grade(j, q, q)]--;
    return MMS_OK;
}

int mms_judge_concepts(const mms_judge_t *j, int64_t row, const char **names, int cap) {
    const mms_catalog_t *c = j->c;
    int n = 0;
    if (row < 0 || row >= c->n) return 0;
    if (j->kind == MMS_JUDGE_COCO) {
        for (int64_t e = j->concepts.ptr[row]; e < j->concepts.ptr[row + 1]; e++, n++)
            if (n < cap) names[n] = mms_strmap_key(j->cvocab, (size_t)j->concepts.idx[e]);
    } else if (j->kind == MMS_JUDGE_PLANTED) {
        int32_t v[2] = {j->cluster[row], j->topic[row]};
        for (int k = 0; k < 2; k++)
            if (v[k] >= 0) {
                if (n < cap) names[n] = c->cat_names[v[k]];
                n++;
            }
    } else {
        for (int64_t e = j->tags.ptr[row]; e < j->tags.ptr[row + 1]; e++, n++)
            if (n < cap) names[n] = c->tag_names[j->tags.idx[e]];
    }
    return n;
}

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
    int64_t nq, capq;
    mms_strmap_t *qmap; /* query row (8 bytes) -> record */
    int64_t *rows;
    float *scores;
    int8_t *grades;
    int64_t nres, capres;
    int any_scores;
    int32_t *tags;
    int64_t ntag, captag;
} method_t;

struct mms_eval {
    const mms_catalog_t *c;
    const mms_judge_t *j;
    char dataset[MMS_EVAL_NAME_MAX + 1];
    method_t *m;
    int nm, capm;
    mms_strmap_t *ideal_map; /* query row -> index into ideal */
    double (*ideal)[2];      /* gallery ideal DCG@3, @5 */
    int64_t nideal, capideal;
    double *norm; /* |x_r| of the features, NAN until computed */
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
    if (e->nm == e->capm) {
        int cap = e->capm ? 2 * e->capm : 8;
        MMS_CALL(mms_realloc((size_t)cap * sizeof *e->m, &e->m));
        e->capm = cap;
    }
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
    if (m->nq == m->capq) {
        int64_t cap = m->capq ? 2 * m->capq : 256;
        MMS_CALL(mms_realloc((size_t)cap * sizeof *m->q, &m->q));
        m->capq = cap;
    }
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
        if (e->nideal == e->capideal) {
            int64_t cap = e->capideal ? 2 * e->capideal : 256;
            MMS_CALL(mms_realloc((size_t)cap * sizeof *e->ideal, &e->ideal));
            e->capideal = cap;
        }
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
    if (m->nres + keep > m->capres) {
        int64_t cap = 2 * m->capres + keep + 1024;
        MMS_CALL(mms_realloc((size_t)cap * sizeof *m->rows, &m->rows));
        MMS_CALL(mms_realloc((size_t)cap * sizeof *m->scores, &m->scores));
        MMS_CALL(mms_realloc((size_t)cap * sizeof *m->grades, &m->grades));
        m->capres = cap;
    }
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
            int64_t in = inter_count(t->idx + t->ptr[query], nqt, t->idx + t->ptr[row],
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
    if (m->ntag + keep + 1 > m->captag) {
        int64_t cap = 2 * m->captag + keep + 1024;
        MMS_CALL(mms_realloc((size_t)cap * sizeof *m->tags, &m->tags));
        m->captag = cap;
    }
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
            if (bsearch(&p, truth, (size_t)ntr, sizeof *truth, cmp_i32)) correct[p]++;
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
const char *mms_eval_dataset(const mms_eval_t *e) {
    return e->dataset;
}
const mms_catalog_t *mms_eval_catalog(const mms_eval_t *e) {
    return e->c;
}
const mms_judge_t *mms_eval_judge(const mms_eval_t *e) {
    return e->j;
}
int mms_eval_k_overlap(const mms_eval_t *e, int method) {
    return method >= 0 && method < e->nm ? e->m[method].k_overlap : 0;
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

/* ================================================================ baselines */

/* A query's running top-k, best first: (score descending, row ascending). */
typedef struct {
    double *s;
    int64_t *r;
    int n, k;
} best_t;

static int better(double s1, int64_t r1, double s2, int64_t r2) {
    return s1 > s2 || (s1 == s2 && r1 < r2);
}

static void best_offer(best_t *b, double s, int64_t r) {
    if (b->n == b->k && !better(s, r, b->s[b->k - 1], b->r[b->k - 1])) return;
    int i = b->n < b->k ? b->n++ : b->k - 1;
    for (; i > 0 && better(s, r, b->s[i - 1], b->r[i - 1]); i--) {
        b->s[i] = b->s[i - 1];
        b->r[i] = b->r[i - 1];
    }
    b->s[i] = s;
    b->r[i] = r;
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
            int64_t q = qrows[q0 + i];
            const float *x = X + (size_t)q * (size_t)d;
            float inv = norm[q] > 0 ? (float)(1.0 / norm[q]) : 0.0f;
            for (int32_t t = 0; t < d; t++)
                Q[(size_t)i * d + t] = x[t] * inv;
            best[i] = (best_t){bs + (size_t)i * k, br + (size_t)i * k, 0, k};
        }
        for (int64_t g0 = 0; g0 < nt; g0 += VIS_GBLOCK) {
            int gn = (int)(nt - g0 < VIS_GBLOCK ? nt - g0 : VIS_GBLOCK);
            for (int i = 0; i < gn; i++) {
                int64_t r = train[g0 + i];
                const float *x = X + (size_t)r * (size_t)d;
                float inv = norm[r] > 0 ? (float)(1.0 / norm[r]) : 0.0f;
                for (int32_t t = 0; t < d; t++)
                    G[(size_t)i * d + t] = x[t] * inv;
            }
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
                    if (b->n == b->k && (double)S[(size_t)i * gn + t] < b->s[b->k - 1] - margin)
                        continue;
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
            for (int t = 0; t < k; t++) {
                ro[t] = t < best[i].n ? best[i].r[t] : -1;
                so[t] = t < best[i].n ? (float)best[i].s[t] : -INFINITY;
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
    int cap = 0, nv;
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
                    if (nv == cap) {
                        cap = cap ? 2 * cap : 64;
                        MMS_CALL_GOTO(s, out, mms_realloc((size_t)cap * sizeof *v, &v));
                    }
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
        mms_rng_init(&rng, seed, JUDGE_STREAM_RANDOM, (uint64_t)q);
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
        best_t b = {bs, br, 0, k};
        MMS_CALL_GOTO(s, out,
                      gather_postings(j->tags.ptr, j->tags.idx, q, j->tpost_ptr, j->tpost_row,
                                      &rows, &nrows));
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
        for (int64_t r = 0; r < c->n && b.n < k; r++) {
            if (c->split[r] != MMS_SPLIT_TRAIN || r == q) continue;
            int taken = 0;
            for (int t = 0; t < b.n && !taken; t++)
                taken = b.r[t] == r;
            if (!taken) best_offer(&b, 0.0, r);
        }
        for (int t = 0; t < k; t++) {
            rows_out[(size_t)i * k + t] = t < b.n ? b.r[t] : -1;
            if (scores_out)
                scores_out[(size_t)i * k + t] = t < b.n ? (float)floor(b.s[t]) : -INFINITY;
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
    const mms_catalog_t *c = e->c;
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
        MMS_CALL_GOTO(
            s, out, mms_baseline_tag_vote(c, rows, sc, nq, k, MMS_EVAL_K, 1, 0.0, MMS_EVAL_NTAGS, tags));
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
