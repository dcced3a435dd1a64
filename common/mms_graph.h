/* mms_graph.h: the multi-modal graph (CSR) and the graph directory.
 *
 * Node ids are global int64: images first (0 .. n_images-1, in catalog order of
 * the training images), then tags (n_images .. n_images+n_tags-1, in the
 * catalog's sorted vocabulary order). Two adjacencies are kept:
 *   full  symmetric image-image (kNN, thresholded) + image-tag edges: for
 *         random walks, METIS and statistics
 *   adj   the sampling adjacency: each node's full list capped at
 *         MMS_GRAPH_DEGREE_CAP neighbours chosen deterministically
 * Graph directory (docs/formats.md):
 *   manifest.msgpack   kind "graph": counts, parameters, catalog checksum
 *   indptr.npy <i8 (N+1), indices.npy <i8, weights.npy <f4     full CSR
 *   adj_indptr.npy <i8 (N+1), adj_indices.npy <i8               capped CSR
 *   x.npy <f4 n_images x D      image node features (PCA-projected if asked)
 *   image_rows.npy <i8 n_images catalog row of each image node
 *   tags.tsv                    name<TAB>images, one line per tag node
 *   pca_mean.npy, pca_components.npy (D0 x D), pca_eigvals.npy  when PCA was used
 * This module opens a graph directory and owns the tag list file (tags.tsv:
 * its one writer and one reader); building the graph is partition/graph_build.c.
 */
#ifndef MMS_GRAPH_H
#define MMS_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"

#define MMS_GRAPH_FORMAT 1
#define MMS_GRAPH_DEGREE_CAP 100

typedef struct {
    int64_t n;       /* nodes */
    int64_t *indptr; /* n + 1 */
    int64_t *indices;
    float *weights; /* may be NULL */
} mms_csr_t;

void mms_csr_free(mms_csr_t *g);
static inline int64_t mms_csr_degree(const mms_csr_t *g, int64_t v) {
    return g->indptr[v + 1] - g->indptr[v];
}

typedef struct {
    char dir[4096];
    int64_t n_images, n_tags, n_nodes;
    int32_t dim;
    mms_csr_t full, adj;
    const float *x;        /* n_images x dim (memory-mapped) */
    const int64_t *image_rows; /* n_images (memory-mapped) */
    char **tag_names;      /* n_tags */
    int64_t *tag_count;    /* n_tags */
    uint64_t catalog_checksum;
    uint64_t checksum;     /* of the CSR files: identifies this graph */
    void *priv;
} mms_graph_t;

static inline int mms_graph_is_tag(const mms_graph_t *g, int64_t v) { return v >= g->n_images; }

/* Open a graph directory: checks the manifest kind/version, the files'
 * checksums, array shapes and that the CSR indices are node ids. Every array
 * (full and capped CSR, x, image_rows) is memory-mapped read-only, never
 * copied: a rank's resident memory holds only the pages of the rows it reads
 * (the pages the checks scanned are released). The arrays are owned by g and
 * must not be written or freed (no mms_csr_free on g->full or g->adj). */
mms_status mms_graph_open(const char *dir, mms_graph_t **out);
void mms_graph_close(mms_graph_t **g);
/* Checksum that a partition and a model record to refuse a mismatched graph. */
mms_status mms_graph_checksum(const char *dir, uint64_t *out);

/* The tag list file (a graph's tags.tsv, copied into an index): one line
 * "name<TAB>images" per tag node, in tag node order. The one writer and the
 * one reader of the format. */
#define MMS_GRAPH_TAGS_FILE "tags.tsv"
/* Write n lines (names[i], counts[i]) to path. */
mms_status mms_graph_tags_write(const char *path, char *const *names, const int64_t *counts,
                                int64_t n);
/* Read exactly n_tags lines of path: *names (n_tags strdup'd names) and, when
 * counts is not NULL, *counts (n_tags). On failure nothing is returned (a
 * message names the file and line). Free with mms_graph_tags_free. */
mms_status mms_graph_tags_read(const char *path, int64_t n_tags, char ***names, int64_t **counts);
void mms_graph_tags_free(char ***names, int64_t n_tags);

#endif
