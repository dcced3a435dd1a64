/* mms_graph.c: loading a graph directory (see mms_graph.h). */
#define _GNU_SOURCE
#include "mms_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_fs.h"
#include "mms_manifest.h"
#include "mms_npy.h"

/* The CSR arrays of an opened graph point into these maps (never malloc'd):
 * a training or embedding rank reads the rows of its own and halo nodes, so
 * only those pages become resident, instead of a copy of every node's
 * adjacency on every rank (docs/scaling.md, "what breaks first"). */
enum { CSR_INDPTR, CSR_INDICES, CSR_WEIGHTS, CSR_NFILES };
typedef struct {
    mms_npy_t x, rows;
    mms_npy_t full[CSR_NFILES], adj[CSR_NFILES];
} gpriv_t;

void mms_csr_free(mms_csr_t *g) {
    if (!g) return;
    free(g->indptr);
    free(g->indices);
    free(g->weights);
    memset(g, 0, sizeof *g);
}

/* Map a 1-D npy of dtype t and expected length (want_len < 0: any). */
static mms_status map_vec(const char *dir, const char *name, mms_dtype t, int64_t want_len,
                          mms_npy_t *a, void **out, int64_t *len_out) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, dir, name));
    MMS_CALL(mms_npy_open(p, (int)t, a));
    size_t len = a->rows * a->cols;
    if (want_len >= 0 && (int64_t)len != want_len) {
        mms_npy_close(a);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s: has %zu entries, expected %lld", p, len,
                  (long long)want_len);
    }
    *out = (void *)a->data; /* mapped read-only: the graph's arrays are never written */
    if (len_out) *len_out = (int64_t)len;
    return MMS_OK;
}

/* Map one CSR (prefix "" or "adj_") into g, checking that indptr starts at 0
 * and never decreases and that every index is a node id. maps[] keeps the
 * mappings (closed by mms_graph_close). */
static mms_status load_csr(const char *dir, const char *prefix, int64_t n, int with_w,
                           mms_npy_t *maps, mms_csr_t *g) {
    char name[64];
    int64_t nnz;
    g->n = n;
    snprintf(name, sizeof name, "%sindptr.npy", prefix);
    MMS_CALL(map_vec(dir, name, MMS_DT_I64, n + 1, &maps[CSR_INDPTR], (void **)&g->indptr, NULL));
    snprintf(name, sizeof name, "%sindices.npy", prefix);
    MMS_CALL(map_vec(dir, name, MMS_DT_I64, g->indptr[n], &maps[CSR_INDICES], (void **)&g->indices,
                     &nnz));
    MMS_CHECK(g->indptr[0] == 0, MMS_ERR_FORMAT, "%s/%sindptr.npy: does not start at 0", dir,
              prefix);
    for (int64_t v = 0; v < n; v++)
        MMS_CHECK(g->indptr[v + 1] >= g->indptr[v], MMS_ERR_FORMAT,
                  "%s/%sindptr.npy: decreases at node %lld", dir, prefix, (long long)v);
    for (int64_t e = 0; e < nnz; e++)
        MMS_CHECK(g->indices[e] >= 0 && g->indices[e] < n, MMS_ERR_FORMAT,
                  "%s/%sindices.npy: entry %lld = %lld is not a node id", dir, prefix,
                  (long long)e, (long long)g->indices[e]);
    /* the checks read every entry: release those pages (mms_npy_release) */
    mms_npy_release(&maps[CSR_INDPTR]);
    mms_npy_release(&maps[CSR_INDICES]);
    if (with_w) {
        snprintf(name, sizeof name, "%sweights.npy", prefix);
        MMS_CALL(map_vec(dir, name, MMS_DT_F32, nnz, &maps[CSR_WEIGHTS], (void **)&g->weights,
                         NULL));
    }
    return MMS_OK;
}

mms_status mms_graph_tags_write(const char *path, char *const *names, const int64_t *counts,
                                int64_t n) {
    FILE *f;
    MMS_CALL(mms_fopen(path, "w", &f));
    for (int64_t t = 0; t < n; t++) fprintf(f, "%s\t%lld\n", names[t], (long long)counts[t]);
    return mms_fclose(&f, path);
}

void mms_graph_tags_free(char ***names, int64_t n_tags) {
    if (!names || !*names) return;
    for (int64_t i = 0; i < n_tags; i++) free((*names)[i]);
    free(*names);
    *names = NULL;
}

mms_status mms_graph_tags_read(const char *path, int64_t n_tags, char ***names_out,
                               int64_t **counts_out) {
    *names_out = NULL;
    if (counts_out) *counts_out = NULL;
    char **names = NULL;
    int64_t *counts = NULL;
    MMS_CALL(mms_calloc((size_t)(n_tags ? n_tags : 1), sizeof *names, &names));
    mms_status s = mms_calloc((size_t)(n_tags ? n_tags : 1), sizeof *counts, &counts);
    FILE *f = NULL;
    if (s == MMS_OK) s = mms_fopen(path, "r", &f);
    char *line = NULL;
    size_t cap = 0;
    int64_t i = 0;
    int rc;
    while (s == MMS_OK && (rc = mms_getline(&line, &cap, f)) == 1) {
        char *t = strchr(line, '\t');
        MMS_CHECK_GOTO(s, out, t && i < n_tags, MMS_ERR_FORMAT,
                       "%s:%lld: expected 'name<TAB>count' (and %lld lines)", path, (long long)i + 1,
                       (long long)n_tags);
        *t = '\0';
        names[i] = strdup(line);
        MMS_CHECK_GOTO(s, out, names[i], MMS_ERR_NOMEM, "out of memory");
        counts[i] = atoll(t + 1);
        i++;
    }
    if (s == MMS_OK)
        MMS_CHECK_GOTO(s, out, i == n_tags, MMS_ERR_FORMAT, "%s: has %lld lines, expected %lld", path,
                       (long long)i, (long long)n_tags);
out:
    free(line);
    if (f) fclose(f);
    if (s != MMS_OK) {
        mms_graph_tags_free(&names, n_tags);
        free(counts);
        return s;
    }
    *names_out = names;
    if (counts_out)
        *counts_out = counts;
    else
        free(counts);
    return MMS_OK;
}

mms_status mms_graph_open(const char *dir, mms_graph_t **out) {
    *out = NULL;
    MMS_CHECK(strlen(dir) < 4000, MMS_ERR_ARG, "path too long: %s", dir);
    mms_manifest_t *m;
    MMS_CALL(mms_manifest_read_dir(dir, "graph", MMS_GRAPH_FORMAT, &m));
    mms_graph_t *g;
    mms_status s = mms_calloc(1, sizeof *g, &g);
    if (s != MMS_OK) {
        mms_manifest_destroy(&m);
        return s;
    }
    gpriv_t *pv = NULL;
    strcpy(g->dir, dir);
    int64_t dim;
    MMS_CALL_GOTO(s, fail, mms_manifest_get_int(m, "images", &g->n_images));
    MMS_CALL_GOTO(s, fail, mms_manifest_get_int(m, "tags", &g->n_tags));
    MMS_CALL_GOTO(s, fail, mms_manifest_get_int(m, "dim", &dim));
    MMS_CALL_GOTO(s, fail, mms_manifest_get_uint(m, "catalog_checksum", &g->catalog_checksum));
    MMS_CALL_GOTO(s, fail, mms_manifest_get_uint(m, "checksum", &g->checksum));
    g->dim = (int32_t)dim;
    g->n_nodes = g->n_images + g->n_tags;
    MMS_CALL_GOTO(s, fail, mms_calloc(1, sizeof *pv, &pv));
    g->priv = pv;
    MMS_CALL_GOTO(s, fail, mms_manifest_verify_files(m, dir, NULL, NULL));
    MMS_CALL_GOTO(s, fail, load_csr(dir, "", g->n_nodes, 1, pv->full, &g->full));
    MMS_CALL_GOTO(s, fail, load_csr(dir, "adj_", g->n_nodes, 0, pv->adj, &g->adj));
    char p[MMS_PATH_MAX];
    MMS_CALL_GOTO(s, fail, mms_path_join(p, sizeof p, dir, "x.npy"));
    MMS_CALL_GOTO(s, fail, mms_npy_open(p, MMS_DT_F32, &pv->x));
    MMS_CHECK_GOTO(s, fail, (int64_t)pv->x.rows == g->n_images && (int64_t)pv->x.cols == dim,
                   MMS_ERR_FORMAT, "%s: shape %zu x %zu, expected %lld x %lld", p, pv->x.rows,
                   pv->x.cols, (long long)g->n_images, (long long)dim);
    g->x = pv->x.data;
    MMS_CALL_GOTO(s, fail, mms_path_join(p, sizeof p, dir, "image_rows.npy"));
    MMS_CALL_GOTO(s, fail, mms_npy_open(p, MMS_DT_I64, &pv->rows));
    MMS_CHECK_GOTO(s, fail, (int64_t)(pv->rows.rows * pv->rows.cols) == g->n_images,
                   MMS_ERR_FORMAT, "%s: has %zu entries, expected %lld", p, pv->rows.rows,
                   (long long)g->n_images);
    g->image_rows = pv->rows.data;
    MMS_CALL_GOTO(s, fail, mms_path_join(p, sizeof p, dir, MMS_GRAPH_TAGS_FILE));
    MMS_CALL_GOTO(s, fail, mms_graph_tags_read(p, g->n_tags, &g->tag_names, &g->tag_count));
    mms_manifest_destroy(&m);
    *out = g;
    return MMS_OK;
fail:
    mms_manifest_destroy(&m);
    mms_graph_close(&g);
    return s;
}

void mms_graph_close(mms_graph_t **gp) {
    if (!gp || !*gp) return;
    mms_graph_t *g = *gp;
    gpriv_t *pv = g->priv;
    if (pv) {
        mms_npy_close(&pv->x);
        mms_npy_close(&pv->rows);
        for (int i = 0; i < CSR_NFILES; i++) {
            mms_npy_close(&pv->full[i]);
            mms_npy_close(&pv->adj[i]);
        }
        free(pv);
    }
    /* full and adj point into the maps just closed: nothing to free */
    memset(&g->full, 0, sizeof g->full);
    memset(&g->adj, 0, sizeof g->adj);
    mms_graph_tags_free(&g->tag_names, g->n_tags);
    free(g->tag_count);
    free(g);
    *gp = NULL;
}

mms_status mms_graph_checksum(const char *dir, uint64_t *out) {
    mms_manifest_t *m;
    MMS_CALL(mms_manifest_read_dir(dir, "graph", MMS_GRAPH_FORMAT, &m));
    mms_status s = mms_manifest_get_uint(m, "checksum", out);
    mms_manifest_destroy(&m);
    return s;
}
