/* judge_internal.h: the judge's sorted sets, shared by judge.c (which builds
 * them), metrics.c (tag overlap and the annotation protocol read the tag sets)
 * and baseline.c (the tag oracle walks the tag postings).
 *
 * Not a public API: callers outside eval/ use judge.h. Nothing here allocates
 * except judge_gather_postings; everything else only reads.
 */
#ifndef MMS_JUDGE_INTERNAL_H
#define MMS_JUDGE_INTERNAL_H

#include <stdint.h>

#include "judge.h"
#include "mms_strmap.h"

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

/* qsort / bsearch order of int32 values. */
static inline int judge_cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* |a ∩ b| of two sorted sets. */
static inline int64_t judge_inter_count(const int32_t *a, int64_t na, const int32_t *b,
                                        int64_t nb) {
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

/* The training rows listed in the postings (pptr, prow) of the members of row
 * q's set (sptr, sidx), sorted with repeats (a row appears once per shared
 * member). Caller frees *rows. */
mms_status judge_gather_postings(const int64_t *sptr, const int32_t *sidx, int64_t q,
                                 const int64_t *pptr, const int64_t *prow, int64_t **rows,
                                 int64_t *nrows);

#endif
