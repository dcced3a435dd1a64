/* metis_part.c: the CSR level of metis_part.h: node weights, a clean METIS
 * input, the METIS k-way call, the hash partition, edge cut and balance.
 * No file I/O and no printing here (part_io.c and app/cmd_partition.c). */
#include "metis_part.h"

#include <math.h>
#include <metis.h>
#include <stdlib.h>
#include <string.h>

#include "mms_array.h"
#include "mms_log.h"
#include "mms_rng.h"

const char *mms_part_method_name(mms_part_method m) {
    switch (m) {
    case MMS_PART_METIS: return "metis";
    case MMS_PART_HASH: return "hash";
    }
    return NULL;
}

mms_status mms_part_method_parse(const char *s, mms_part_method *out) {
    MMS_CHECK(s != NULL, MMS_ERR_ARG, "no partition method given (want metis or hash)");
    if (!strcmp(s, "metis")) {
        *out = MMS_PART_METIS;
        return MMS_OK;
    }
    if (!strcmp(s, "hash")) {
        *out = MMS_PART_HASH;
        return MMS_OK;
    }
    MMS_CHECK(0, MMS_ERR_ARG, "unknown partition method '%s' (want metis or hash)", s);
}

void mms_part_node_weights(const mms_csr_t *adj, int64_t cap, int32_t *vwgt, int64_t *total) {
    int64_t sum = 0;
    for (int64_t v = 0; v < adj->n; v++) {
        int64_t d = mms_csr_degree(adj, v);
        vwgt[v] = (int32_t)(1 + (d < cap ? d : cap));
        sum += vwgt[v];
    }
    if (total) *total = sum;
}

mms_status mms_part_clean(const mms_csr_t *g, mms_csr_t *out, int64_t *self_loops,
                          int64_t *duplicates) {
    memset(out, 0, sizeof *out);
    int64_t n = g->n, nnz = g->indptr[n], loops = 0, dups = 0;
    mms_status s;
    MMS_CALL(mms_malloc((size_t)(n + 1) * sizeof *out->indptr, &out->indptr));
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)(nnz + 1) * sizeof *out->indices, &out->indices));
    out->n = n;
    int64_t pos = 0;
    out->indptr[0] = 0;
    for (int64_t v = 0; v < n; v++) {
        int64_t start = pos;
        for (int64_t e = g->indptr[v]; e < g->indptr[v + 1]; e++) {
            if (g->indices[e] == v)
                loops++;
            else
                out->indices[pos++] = g->indices[e];
        }
        qsort(out->indices + start, (size_t)(pos - start), sizeof *out->indices, mms_cmp_i64);
        int64_t w = start;
        for (int64_t e = start; e < pos; e++) {
            if (w > start && out->indices[w - 1] == out->indices[e]) {
                dups++;
                continue;
            }
            out->indices[w++] = out->indices[e];
        }
        pos = w;
        out->indptr[v + 1] = pos;
    }
    /* Shrinking cannot fail in practice; keep the larger block if it does. */
    (void)mms_realloc((size_t)(pos + 1) * sizeof *out->indices, &out->indices);
    /* METIS reads an undirected graph as both directions of every edge; a one-way
     * entry would corrupt its gain computations silently, so refuse it here. */
    for (int64_t v = 0; v < n; v++)
        for (int64_t e = out->indptr[v]; e < out->indptr[v + 1]; e++) {
            int64_t u = out->indices[e];
            MMS_CHECK_GOTO(s, fail,
                           mms_find_i64(out->indices + out->indptr[u],
                                        out->indptr[u + 1] - out->indptr[u], v) >= 0,
                           MMS_ERR_FORMAT,
                           "graph is not symmetric: edge %lld -> %lld has no reverse edge "
                           "(METIS needs an undirected graph; rebuild the graph)",
                           (long long)v, (long long)u);
        }
    if (self_loops) *self_loops = loops;
    if (duplicates) *duplicates = dups;
    return MMS_OK;
fail:
    mms_csr_free(out);
    return s;
}

static mms_status metis_status(int rc) {
    switch (rc) {
    case METIS_OK: return MMS_OK;
    case METIS_ERROR_INPUT:
        MMS_CHECK(0, MMS_ERR_LIB,
                  "METIS_PartGraphKway: erroneous input or options (METIS_ERROR_INPUT)");
    case METIS_ERROR_MEMORY:
        MMS_CHECK(0, MMS_ERR_NOMEM, "METIS_PartGraphKway: out of memory (METIS_ERROR_MEMORY)");
    default:
        MMS_CHECK(0, MMS_ERR_LIB, "METIS_PartGraphKway failed (code %d)", rc);
    }
}

mms_status mms_part_metis(const mms_csr_t *g, const int32_t *vwgt, int parts, double imbalance,
                          uint64_t seed, int32_t *part, int64_t *edge_cut) {
    int64_t n = g->n, nnz = g->indptr[n];
    MMS_CHECK(parts >= 1, MMS_ERR_ARG, "number of parts must be at least 1 (got %d)", parts);
    MMS_CHECK(parts <= n, MMS_ERR_ARG, "cannot cut %lld nodes into %d parts", (long long)n, parts);
    MMS_CHECK(imbalance >= 1.0 && imbalance <= 10.0, MMS_ERR_ARG,
              "imbalance must be in [1, 10] (got %g)", imbalance);
    MMS_CHECK(seed <= (uint64_t)IDX_MAX, MMS_ERR_ARG, "METIS seed must be below 2^31 (got %llu)",
              (unsigned long long)seed);
    *edge_cut = 0;
    if (parts == 1) {
        memset(part, 0, (size_t)n * sizeof *part);
        return MMS_OK;
    }
    MMS_CHECK(n < (int64_t)IDX_MAX && nnz < (int64_t)IDX_MAX, MMS_ERR_ARG,
              "graph too large for METIS with %d-bit idx_t: %lld nodes, %lld adjacency entries",
              IDXTYPEWIDTH, (long long)n, (long long)nnz);
    idx_t *xadj = NULL, *adjncy = NULL, *vw = NULL, *where = NULL;
    mms_status s;
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(n + 1) * sizeof *xadj, &xadj));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(nnz + 1) * sizeof *adjncy, &adjncy));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(n + 1) * sizeof *where, &where));
    for (int64_t v = 0; v <= n; v++) xadj[v] = (idx_t)g->indptr[v];
    for (int64_t e = 0; e < nnz; e++) adjncy[e] = (idx_t)g->indices[e];
    if (vwgt) {
        /* METIS sums weights in idx_t (and scales sums internally): keep the total
         * well below IDX_MAX by compressing the degree part of the weight. */
        int64_t total = 0, limit = (int64_t)IDX_MAX / 4, div = 1;
        for (int64_t v = 0; v < n; v++) total += vwgt[v];
        if (total > limit) {
            div = (total + limit - 1) / limit;
            mms_log_info("partition: node weights divided by %lld to fit METIS's %d-bit sums",
                         (long long)div, IDXTYPEWIDTH);
        }
        MMS_CALL_GOTO(s, out, mms_malloc((size_t)(n + 1) * sizeof *vw, &vw));
        for (int64_t v = 0; v < n; v++) vw[v] = (idx_t)(1 + (vwgt[v] - 1) / div);
    }
    idx_t options[METIS_NOPTIONS];
    METIS_SetDefaultOptions(options);
    options[METIS_OPTION_OBJTYPE] = METIS_OBJTYPE_CUT;
    options[METIS_OPTION_NUMBERING] = 0;
    options[METIS_OPTION_CONTIG] = 0;
    options[METIS_OPTION_SEED] = (idx_t)seed;
    options[METIS_OPTION_UFACTOR] = (idx_t)lround((imbalance - 1.0) * 1000.0);
    idx_t nvtxs = (idx_t)n, ncon = 1, nparts = (idx_t)parts, objval = 0;
    int rc = METIS_PartGraphKway(&nvtxs, &ncon, xadj, adjncy, vw, NULL, NULL, &nparts, NULL,
                                 NULL, options, &objval, where);
    MMS_CALL_GOTO(s, out, metis_status(rc));
    for (int64_t v = 0; v < n; v++) {
        MMS_CHECK_GOTO(s, out, where[v] >= 0 && where[v] < nparts, MMS_ERR_LIB,
                       "METIS put node %lld in part %lld of %d", (long long)v,
                       (long long)where[v], parts);
        part[v] = (int32_t)where[v];
    }
    *edge_cut = objval;
out:
    free(xadj);
    free(adjncy);
    free(vw);
    free(where);
    return s;
}

void mms_part_hash(int64_t n, int parts, uint64_t seed, int32_t *part) {
    for (int64_t v = 0; v < n; v++)
        part[v] = (int32_t)(mms_rng_hash(seed, MMS_PART_HASH_STREAM, (uint64_t)v, 0) %
                            (uint64_t)parts);
}

int64_t mms_part_edge_cut(const mms_csr_t *g, const int32_t *part) {
    int64_t cut = 0;
    for (int64_t v = 0; v < g->n; v++)
        for (int64_t e = g->indptr[v]; e < g->indptr[v + 1]; e++)
            cut += part[g->indices[e]] != part[v];
    return cut / 2;
}

mms_status mms_part_weights(int64_t n, const int32_t *part, int parts, const int32_t *vwgt,
                            int64_t *weight, double *balance) {
    memset(weight, 0, (size_t)parts * sizeof *weight);
    int64_t total = 0;
    for (int64_t v = 0; v < n; v++) {
        MMS_CHECK(part[v] >= 0 && part[v] < parts, MMS_ERR_ARG,
                  "node %lld is in part %d, outside [0, %d)", (long long)v, (int)part[v], parts);
        int64_t w = vwgt ? vwgt[v] : 1;
        weight[part[v]] += w;
        total += w;
    }
    int64_t mx = 0;
    for (int p = 0; p < parts; p++) mx = weight[p] > mx ? weight[p] : mx;
    *balance = total > 0 ? (double)mx * parts / (double)total : 1.0;
    return MMS_OK;
}
