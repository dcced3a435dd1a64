/* part_halo.c: owned nodes and 1-hop / 2-hop halos of each part in the sampling
 * adjacency, and the figures of a whole partition (metis_part.h). Halos follow
 * adj's out-lists (what a target samples), so adj need not be symmetric. */
#include "metis_part.h"

#include <stdlib.h>
#include <string.h>

#include "mms_array.h"
#include "mms_log.h"

struct mms_halo_builder {
    const mms_csr_t *adj; /* borrowed */
    const int32_t *part;  /* borrowed */
    int parts;
    int64_t *start; /* parts + 1: part p owns order[start[p] .. start[p+1]) */
    int64_t *order; /* n: node ids by part, ascending within a part */
    int64_t *mark;  /* n: 2*gen+1 = halo1 of the current call, 2*gen+2 = halo2 */
    int64_t gen;    /* one per call, so stale marks never need clearing */
    int64_t *buf1, *buf2;
    size_t cap1, cap2;
};

void mms_part_nodes_free(mms_part_nodes_t *pn) {
    if (!pn) return;
    free(pn->owned);
    free(pn->halo1);
    free(pn->halo2);
    memset(pn, 0, sizeof *pn);
}

mms_status mms_halo_builder_create(const mms_csr_t *adj, const int32_t *part, int parts,
                                   mms_halo_builder_t **out) {
    *out = NULL;
    MMS_CHECK(parts >= 1, MMS_ERR_ARG, "number of parts must be at least 1 (got %d)", parts);
    int64_t n = adj->n;
    mms_halo_builder_t *hb;
    MMS_CALL(mms_calloc(1, sizeof *hb, &hb));
    hb->adj = adj;
    hb->part = part;
    hb->parts = parts;
    mms_status s;
    MMS_CALL_GOTO(s, fail, mms_calloc((size_t)parts + 1, sizeof *hb->start, &hb->start));
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)(n + 1) * sizeof *hb->order, &hb->order));
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)(n + 1) * sizeof *hb->mark, &hb->mark));
    for (int64_t v = 0; v < n; v++) {
        MMS_CHECK_GOTO(s, fail, part[v] >= 0 && part[v] < parts, MMS_ERR_ARG,
                       "node %lld is in part %d, outside [0, %d)", (long long)v, (int)part[v],
                       parts);
        hb->start[part[v] + 1]++;
        hb->mark[v] = -1;
    }
    for (int p = 0; p < parts; p++) hb->start[p + 1] += hb->start[p];
    /* counting sort, stable: ascending ids within each part */
    int64_t *fill;
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)parts * sizeof *fill, &fill));
    memcpy(fill, hb->start, (size_t)parts * sizeof *fill);
    for (int64_t v = 0; v < n; v++) hb->order[fill[part[v]]++] = v;
    free(fill);
    *out = hb;
    return MMS_OK;
fail:
    mms_halo_builder_destroy(&hb);
    return s;
}

void mms_halo_builder_destroy(mms_halo_builder_t **hbp) {
    if (!hbp || !*hbp) return;
    mms_halo_builder_t *hb = *hbp;
    free(hb->start);
    free(hb->order);
    free(hb->mark);
    free(hb->buf1);
    free(hb->buf2);
    free(hb);
    *hbp = NULL;
}

static mms_status push(int64_t **buf, size_t *cap, int64_t len, int64_t v) {
    MMS_CALL(mms_grow(buf, sizeof **buf, (size_t)len + 1, cap));
    (*buf)[len] = v;
    return MMS_OK;
}

/* A malloc'd sorted copy of src[0..n) (at least one element allocated). */
static mms_status sorted_copy(const int64_t *src, int64_t n, int do_sort, int64_t **out) {
    MMS_CALL(mms_malloc((size_t)(n + 1) * sizeof **out, out));
    if (n) memcpy(*out, src, (size_t)n * sizeof **out);
    if (do_sort) qsort(*out, (size_t)n, sizeof **out, mms_cmp_i64);
    return MMS_OK;
}

mms_status mms_halo_builder_part(mms_halo_builder_t *hb, int p, mms_part_nodes_t *out) {
    memset(out, 0, sizeof *out);
    MMS_CHECK(p >= 0 && p < hb->parts, MMS_ERR_ARG, "part %d outside [0, %d)", p, hb->parts);
    const mms_csr_t *adj = hb->adj;
    const int32_t *part = hb->part;
    int64_t *mark = hb->mark;
    hb->gen++;
    const int64_t m1 = 2 * hb->gen + 1, m2 = 2 * hb->gen + 2;
    const int64_t *owned = hb->order + hb->start[p];
    int64_t n_owned = hb->start[p + 1] - hb->start[p], n1 = 0, n2 = 0;
    for (int64_t i = 0; i < n_owned; i++) {
        int64_t v = owned[i];
        for (int64_t e = adj->indptr[v]; e < adj->indptr[v + 1]; e++) {
            int64_t u = adj->indices[e];
            if (part[u] == p || mark[u] >= m1) continue;
            mark[u] = m1;
            MMS_CALL(push(&hb->buf1, &hb->cap1, n1++, u));
        }
    }
    for (int64_t i = 0; i < n1; i++) {
        int64_t u = hb->buf1[i];
        for (int64_t e = adj->indptr[u]; e < adj->indptr[u + 1]; e++) {
            int64_t w = adj->indices[e];
            if (part[w] == p || mark[w] >= m1) continue;
            mark[w] = m2;
            MMS_CALL(push(&hb->buf2, &hb->cap2, n2++, w));
        }
    }
    mms_status s;
    MMS_CALL_GOTO(s, fail, sorted_copy(owned, n_owned, 0, &out->owned));
    MMS_CALL_GOTO(s, fail, sorted_copy(hb->buf1, n1, 1, &out->halo1));
    MMS_CALL_GOTO(s, fail, sorted_copy(hb->buf2, n2, 1, &out->halo2));
    out->n_owned = n_owned;
    out->n_halo1 = n1;
    out->n_halo2 = n2;
    return MMS_OK;
fail:
    mms_part_nodes_free(out);
    return s;
}

void mms_part_stats_free(mms_part_stats_t *st) {
    if (!st) return;
    free(st->weight);
    free(st->owned);
    free(st->halo1);
    free(st->halo2);
    memset(st, 0, sizeof *st);
}

void mms_part_minmeanmax(const int64_t *v, int n, int64_t *mn, double *mean, int64_t *mx) {
    int64_t lo = n ? v[0] : 0, hi = lo;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
        sum += (double)v[i];
    }
    *mn = lo;
    *mx = hi;
    *mean = n ? sum / n : 0.0;
}

mms_status mms_part_stats_compute(const mms_csr_t *clean, const mms_csr_t *adj,
                                  const int32_t *vwgt, const int32_t *part, int parts,
                                  mms_part_each_fn each, void *ctx, mms_part_stats_t *st) {
    memset(st, 0, sizeof *st);
    st->parts = parts;
    mms_status s;
    size_t np = (size_t)parts;
    mms_halo_builder_t *hb = NULL;
    mms_part_nodes_t pn = {0};
    MMS_CALL_GOTO(s, fail, mms_calloc(np, sizeof *st->weight, &st->weight));
    MMS_CALL_GOTO(s, fail, mms_calloc(np, sizeof *st->owned, &st->owned));
    MMS_CALL_GOTO(s, fail, mms_calloc(np, sizeof *st->halo1, &st->halo1));
    MMS_CALL_GOTO(s, fail, mms_calloc(np, sizeof *st->halo2, &st->halo2));
    MMS_CALL_GOTO(s, fail,
                  mms_part_weights(clean->n, part, parts, vwgt, st->weight, &st->balance));
    st->edges = clean->indptr[clean->n] / 2;
    st->edge_cut = mms_part_edge_cut(clean, part);
    MMS_CALL_GOTO(s, fail, mms_halo_builder_create(adj, part, parts, &hb));
    mms_progress_t prog;
    mms_progress_begin(&prog, "halos", parts, "parts");
    for (int p = 0; p < parts; p++) {
        MMS_CALL_GOTO(s, fail, mms_halo_builder_part(hb, p, &pn));
        st->owned[p] = pn.n_owned;
        st->halo1[p] = pn.n_halo1;
        st->halo2[p] = pn.n_halo2;
        if (each) MMS_CALL_GOTO(s, fail, each(ctx, p, &pn));
        mms_part_nodes_free(&pn);
        mms_progress_update(&prog, p + 1);
    }
    mms_progress_end(&prog);
    mms_halo_builder_destroy(&hb);
    return MMS_OK;
fail:
    mms_part_nodes_free(&pn);
    mms_halo_builder_destroy(&hb);
    mms_part_stats_free(st);
    return s;
}
