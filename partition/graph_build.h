/* graph_build.h: `mmsage build`: catalog -> multi-modal graph directory.
 *
 * Collective over a communicator. Rows (training images) are split across ranks
 * in whole kNN tiles; each rank computes the kNN lists of its rows (exact ring
 * or IVF, partition/knn.h), optionally PCA-projects its node features
 * (partition/pca.h), and writes its block of x.npy in place; rank 0 assembles
 * the CSR from the gathered kNN edges and the catalog's tags and writes the
 * graph files (common/mms_graph.h). The output is byte-identical at any rank
 * count (PCA output excepted: see docs/pca.md). Nothing here parses options.
 */
#ifndef MMS_GRAPH_BUILD_H
#define MMS_GRAPH_BUILD_H

#include <mpi.h>
#include <stdint.h>

#include "mms_status.h"

typedef struct {
    const char *catalog;
    const char *out;
    int force;
    int k;            /* image neighbours per image (paper: 5) */
    double threshold; /* cosine threshold (paper: 0.65); -1 keeps every top-k edge */
    int pca_dim;      /* 0 = no PCA */
    int normalize;    /* L2-normalise node features (before PCA); queries get the same */
    int approx;       /* 0 exact, 1 IVF */
    int nlist, nprobe;
    int64_t recall_sample;
    int tile;
    uint64_t seed;
    int degree_cap; /* sampling adjacency cap (paper: 100) */
} mms_build_params_t;

void mms_build_params_default(mms_build_params_t *p);

/* Summary figures (filled on rank 0). */
typedef struct {
    int64_t images, tags, nodes;
    int64_t ii_edges;       /* undirected image-image edges after threshold */
    int64_t ii_candidates;  /* directed top-k candidates before threshold */
    int64_t it_edges;       /* image-tag edges */
    int64_t isolated_images; /* no image-image edge (they keep their tags) */
    int64_t unconnected_images; /* no edge at all */
    int64_t isolated_tags;  /* tag nodes with no training image */
    int64_t capped_nodes;   /* nodes whose degree exceeds the cap */
    int64_t deg_hist[9];    /* 0,1,2-5,6-10,11-25,26-50,51-100,101-1000,>1000 */
    double knn_seconds, total_seconds, knn_gflops;
    double recall; /* approximate mode: recall@k on a sample; -1 otherwise */
} mms_build_summary_t;

/* Collective. */
mms_status mms_graph_build(const mms_build_params_t *p, MPI_Comm comm, mms_build_summary_t *sum);

#endif
