/* judge.c: the three relevance judges of judge.h (coco, planted, tags): the
 * per-row sorted sets and postings built once at create time, the grade of a
 * (query, result) pair, the grade counts of a query's gallery, and the
 * concepts a judge sees.
 *
 * Does not: accumulate or summarise results (metrics.c), run baselines
 * (baseline.c), write or print anything.
 */
#define _GNU_SOURCE
#include "judge.h"

#include <stdlib.h>
#include <string.h>

#include "judge_internal.h"
#include "mms_array.h"
#include "mms_strmap.h"
#include "mms_text.h"

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

mms_judge_kind mms_judge_kind_of(const mms_judge_t *j) {
    return j->kind;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sort and de-duplicate v[0..n); returns the new length. */
static int64_t sort_unique_i32(int32_t *v, int64_t n) {
    if (n <= 1) return n;
    qsort(v, (size_t)n, sizeof *v, judge_cmp_i32);
    int64_t m = 1;
    for (int64_t i = 1; i < n; i++)
        if (v[i] != v[m - 1]) v[m++] = v[i];
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
    int64_t n;
    size_t cap;
} word_sink_t;

static mms_status sink_word(void *arg, const char *w) {
    word_sink_t *k = arg;
    int64_t id;
    MMS_CALL(mms_strmap_put(k->vocab, w, strlen(w), (int64_t)mms_strmap_size(k->vocab), NULL, &id));
    MMS_CALL(mms_grow(&k->ids, sizeof *k->ids, (size_t)k->n + 1, &k->cap));
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
    int64_t at = 0;
    size_t cap = 0; /* of j->concepts.idx */
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(n + 1) * sizeof *j->concepts.ptr, &j->concepts.ptr));
    MMS_CALL_GOTO(s, out,
                  mms_grow(&j->concepts.idx, sizeof *j->concepts.idx, (size_t)ne + 1, &cap));
    sink.vocab = j->cvocab;
    j->concepts.ptr[0] = 0;
    for (int64_t r = 0; r < n; r++) {
        MMS_CALL_GOTO(s, out, caption_concepts(c, r, &sink));
        int64_t len = (j->optr[r + 1] - j->optr[r]) + sink.n;
        MMS_CALL_GOTO(s, out,
                      mms_grow(&j->concepts.idx, sizeof *j->concepts.idx, (size_t)(at + len), &cap));
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
    int concept = judge_inter_count(cs->idx + cs->ptr[q], cs->ptr[q + 1] - cs->ptr[q],
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
        return tag_grade(judge_inter_count(t->idx + t->ptr[q], nq, t->idx + t->ptr[r],
                                           t->ptr[r + 1] - t->ptr[r]),
                         nq);
    }
    }
}

/* See judge_internal.h. */
mms_status judge_gather_postings(const int64_t *sptr, const int32_t *sidx, int64_t q,
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
    qsort(*rows, (size_t)at, sizeof **rows, mms_cmp_i64);
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
            MMS_CALL(judge_gather_postings(j->optr, j->ocat, q, j->cpost_ptr, j->cpost_row, &rows,
                                           &nrows));
        else
            MMS_CALL(judge_gather_postings(j->tags.ptr, j->tags.idx, q, j->tpost_ptr, j->tpost_row,
                                           &rows, &nrows));
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
