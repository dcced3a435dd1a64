/* graph_build.c: catalog -> graph directory (see graph_build.h).
 *
 * Phases (all ranks unless noted):
 *   1. open and validate the catalog; agree on option errors
 *   2. split the training images in whole kNN tiles; gather this rank's rows of
 *      the kNN space and of the node features
 *   3. kNN lists for the local rows (ring exact or IVF)
 *   4. optional PCA of the node features; each rank writes its rows of x.npy
 *      in place (pwrite into a file rank 0 sized)
 *   5. gather the thresholded kNN edges to rank 0, which assembles the
 *      symmetric CSR with the image-tag edges, caps the sampling adjacency and
 *      writes the remaining files and the manifest; rename into place.
 */
#define _GNU_SOURCE
#include "graph_build.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "knn.h"
#include "mms_array.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_graph.h"
#include "mms_log.h"
#include "mms_manifest.h"
#include "mms_mpi.h"
#include "mms_npy.h"
#include "mms_rng.h"
#include "pca.h"

void mms_build_params_default(mms_build_params_t *p) {
    memset(p, 0, sizeof *p);
    p->k = 5;
    p->threshold = 0.65;
    p->pca_dim = 0;
    p->approx = 0;
    p->nlist = 0;
    p->nprobe = 0;
    p->recall_sample = 1000;
    p->tile = 0;
    p->seed = 1;
    p->degree_cap = MMS_GRAPH_DEGREE_CAP;
}

typedef struct {
    int64_t a, b; /* a < b: undirected edge between image nodes */
    float w;
} iedge_t;

static int cmp_iedge(const void *x, const void *y) {
    const iedge_t *p = x, *q = y;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    if (p->b != q->b) return p->b < q->b ? -1 : 1;
    return 0;
}

/* Order of capped neighbours: by a hash of (seed, node, neighbour), ties by id. */
typedef struct {
    uint64_t h;
    int64_t v;
} hnbr_t;

static int cmp_hnbr(const void *x, const void *y) {
    const hnbr_t *p = x, *q = y;
    if (p->h != q->h) return p->h < q->h ? -1 : 1;
    return p->v < q->v ? -1 : p->v > q->v;
}

typedef struct {
    int64_t v;
    float w;
} wnbr_t;

static int cmp_wnbr(const void *x, const void *y) {
    int64_t a = ((const wnbr_t *)x)->v, b = ((const wnbr_t *)y)->v;
    return a < b ? -1 : a > b;
}

static int deg_bin(int64_t d) {
    if (d == 0) return 0;
    if (d == 1) return 1;
    if (d <= 5) return 2;
    if (d <= 10) return 3;
    if (d <= 25) return 4;
    if (d <= 50) return 5;
    if (d <= 100) return 6;
    if (d <= 1000) return 7;
    return 8;
}

/* Rank 0: symmetric CSR (images then tags), capped adjacency, statistics. */
static mms_status assemble_csr(const mms_catalog_t *c, const int64_t *train_rows, int64_t n_img,
                               iedge_t *ie, int64_t n_ie, const mms_build_params_t *p,
                               mms_csr_t *full, mms_csr_t *adj, mms_build_summary_t *sum) {
    int64_t n_tag = c->ntags, n = n_img + n_tag;
    /* dedupe undirected image-image edges (keep the larger similarity: both
     * directions carry the same cosine, up to the kNN's exact recomputation) */
    qsort(ie, (size_t)n_ie, sizeof *ie, cmp_iedge);
    int64_t m = 0;
    for (int64_t e = 0; e < n_ie; e++) {
        if (m > 0 && ie[m - 1].a == ie[e].a && ie[m - 1].b == ie[e].b) {
            if (ie[e].w > ie[m - 1].w) ie[m - 1].w = ie[e].w;
            continue;
        }
        ie[m++] = ie[e];
    }
    sum->ii_edges = m;
    int64_t n_it = 0;
    for (int64_t i = 0; i < n_img; i++) {
        int64_t r = train_rows[i];
        n_it += c->tag_ptr[r + 1] - c->tag_ptr[r];
    }
    sum->it_edges = n_it;
    int64_t nnz = 2 * (m + n_it);
    full->n = n;
    MMS_CALL(mms_calloc((size_t)n + 1, sizeof(int64_t), &full->indptr));
    MMS_CALL(mms_malloc((size_t)(nnz ? nnz : 1) * sizeof(int64_t), &full->indices));
    MMS_CALL(mms_malloc((size_t)(nnz ? nnz : 1) * sizeof(float), &full->weights));
    int64_t *deg = full->indptr + 1; /* count first, prefix-sum after */
    for (int64_t e = 0; e < m; e++) {
        deg[ie[e].a]++;
        deg[ie[e].b]++;
    }
    for (int64_t i = 0; i < n_img; i++) {
        int64_t r = train_rows[i];
        for (int64_t q = c->tag_ptr[r]; q < c->tag_ptr[r + 1]; q++) {
            deg[i]++;
            deg[n_img + c->tag_idx[q]]++;
        }
    }
    for (int64_t v = 0; v < n; v++) full->indptr[v + 1] += full->indptr[v];
    int64_t *fill;
    MMS_CALL(mms_calloc((size_t)n, sizeof *fill, &fill));
#define PUT(u, v, w)                                                                \
    do {                                                                            \
        int64_t at_ = full->indptr[u] + fill[u]++;                                  \
        full->indices[at_] = (v);                                                   \
        full->weights[at_] = (w);                                                   \
    } while (0)
    for (int64_t e = 0; e < m; e++) {
        PUT(ie[e].a, ie[e].b, ie[e].w);
        PUT(ie[e].b, ie[e].a, ie[e].w);
    }
    for (int64_t i = 0; i < n_img; i++) {
        int64_t r = train_rows[i];
        for (int64_t q = c->tag_ptr[r]; q < c->tag_ptr[r + 1]; q++) {
            int64_t t = n_img + c->tag_idx[q];
            PUT(i, t, 1.0f);
            PUT(t, i, 1.0f);
        }
    }
#undef PUT
    free(fill);
    /* sort each list by neighbour id (weights follow) */
    int64_t maxdeg = 0;
    for (int64_t v = 0; v < n; v++) {
        int64_t d = mms_csr_degree(full, v);
        if (d > maxdeg) maxdeg = d;
    }
    hnbr_t *tmp;
    wnbr_t *wt;
    MMS_CALL(mms_malloc((size_t)(maxdeg ? maxdeg : 1) * sizeof *tmp, &tmp));
    MMS_CALL(mms_malloc((size_t)(maxdeg ? maxdeg : 1) * sizeof *wt, &wt));
    for (int64_t v = 0; v < n; v++) {
        int64_t b = full->indptr[v], d = mms_csr_degree(full, v);
        for (int64_t j = 0; j < d; j++) {
            wt[j].v = full->indices[b + j];
            wt[j].w = full->weights[b + j];
        }
        qsort(wt, (size_t)d, sizeof *wt, cmp_wnbr);
        for (int64_t j = 0; j < d; j++) {
            full->indices[b + j] = wt[j].v;
            full->weights[b + j] = wt[j].w;
        }
    }
    free(wt);
    /* statistics */
    memset(sum->deg_hist, 0, sizeof sum->deg_hist);
    sum->isolated_images = sum->unconnected_images = sum->isolated_tags = sum->capped_nodes = 0;
    for (int64_t v = 0; v < n; v++) {
        int64_t d = mms_csr_degree(full, v);
        sum->deg_hist[deg_bin(d)]++;
        if (d > p->degree_cap) sum->capped_nodes++;
        if (v < n_img) {
            int64_t ii = 0;
            for (int64_t e = full->indptr[v]; e < full->indptr[v + 1]; e++) ii += full->indices[e] < n_img;
            if (ii == 0) sum->isolated_images++;
            if (d == 0) sum->unconnected_images++;
        } else if (d == 0) {
            sum->isolated_tags++;
        }
    }
    /* capped sampling adjacency: the first `cap` neighbours by hash order, then
     * re-sorted by id so the file is easy to read */
    adj->n = n;
    MMS_CALL(mms_calloc((size_t)n + 1, sizeof(int64_t), &adj->indptr));
    for (int64_t v = 0; v < n; v++) {
        int64_t d = mms_csr_degree(full, v);
        adj->indptr[v + 1] = adj->indptr[v] + (d < p->degree_cap ? d : p->degree_cap);
    }
    MMS_CALL(mms_malloc((size_t)(adj->indptr[n] ? adj->indptr[n] : 1) * sizeof(int64_t),
                        &adj->indices));
    for (int64_t v = 0; v < n; v++) {
        int64_t b = full->indptr[v], d = mms_csr_degree(full, v), ab = adj->indptr[v];
        if (d <= p->degree_cap) {
            memcpy(adj->indices + ab, full->indices + b, (size_t)d * sizeof(int64_t));
            continue;
        }
        for (int64_t j = 0; j < d; j++) {
            tmp[j].v = full->indices[b + j];
            tmp[j].h = mms_rng_hash(p->seed, MMS_STREAM_DEGCAP, (uint64_t)v, (uint64_t)tmp[j].v);
        }
        qsort(tmp, (size_t)d, sizeof *tmp, cmp_hnbr);
        for (int64_t j = 0; j < p->degree_cap; j++) adj->indices[ab + j] = tmp[j].v;
        qsort(adj->indices + ab, (size_t)p->degree_cap, sizeof(int64_t), mms_cmp_i64);
    }
    free(tmp);
    return MMS_OK;
}

static mms_status write_tags_tsv(const char *dir, const mms_catalog_t *c, const int64_t *train_rows,
                                 int64_t n_img) {
    int64_t *cnt;
    MMS_CALL(mms_calloc((size_t)(c->ntags ? c->ntags : 1), sizeof *cnt, &cnt));
    for (int64_t i = 0; i < n_img; i++)
        for (int64_t q = c->tag_ptr[train_rows[i]]; q < c->tag_ptr[train_rows[i] + 1]; q++)
            cnt[c->tag_idx[q]]++;
    char p[MMS_PATH_MAX];
    mms_status s = mms_path_join(p, sizeof p, dir, MMS_GRAPH_TAGS_FILE);
    if (s == MMS_OK) s = mms_graph_tags_write(p, c->tag_names, cnt, c->ntags);
    free(cnt);
    return s;
}

static mms_status write_vec(const char *dir, const char *name, mms_dtype t, const void *data,
                            size_t n) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, dir, name));
    return mms_npy_write(p, t, data, n, 0);
}

/* Checksum of the files that define the graph's structure and features. */
static mms_status structure_checksum(const char *dir, uint64_t *out) {
    const char *files[] = {"indptr.npy", "indices.npy", "weights.npy", "adj_indptr.npy",
                           "adj_indices.npy", "x.npy", MMS_GRAPH_TAGS_FILE};
    uint64_t h[7];
    for (int i = 0; i < 7; i++) {
        char p[MMS_PATH_MAX];
        MMS_CALL(mms_path_join(p, sizeof p, dir, files[i]));
        MMS_CALL(mms_file_checksum(p, &h[i]));
    }
    *out = mms_checksum(h, sizeof h, 0);
    return MMS_OK;
}

static mms_status validate(const mms_build_params_t *p, const mms_catalog_t *c, int nranks) {
    MMS_CHECK(p->k >= 1 && p->k <= 1000, MMS_ERR_ARG, "build: --k must be in [1, 1000], got %d", p->k);
    MMS_CHECK(p->threshold >= -1.0 && p->threshold <= 1.0, MMS_ERR_ARG,
              "build: --threshold must be in [-1, 1], got %g", p->threshold);
    MMS_CHECK(p->pca_dim >= 0, MMS_ERR_ARG, "build: --pca-dim must be >= 0");
    MMS_CHECK(p->pca_dim <= c->dim, MMS_ERR_ARG,
              "build: --pca-dim %d is above the feature width %d of %s/features.npy", p->pca_dim,
              c->dim, c->dir);
    MMS_CHECK(p->degree_cap >= 1, MMS_ERR_ARG, "build: --degree-cap must be >= 1");
    MMS_CHECK(nranks <= c->n_split[MMS_SPLIT_TRAIN], MMS_ERR_ARG,
              "build: %d ranks but the catalog has only %lld training images", nranks,
              (long long)c->n_split[MMS_SPLIT_TRAIN]);
    return MMS_OK;
}

/* What one rank holds while building (freed by build_free). */
typedef struct {
    const mms_build_params_t *p;
    MPI_Comm comm;
    int rank, nranks;
    mms_build_summary_t *sum;
    mms_catalog_t *c;
    char tmp[MMS_PATH_MAX];  /* the output under its temporary name ("" once committed) */
    int64_t n_img;           /* training images = image nodes */
    int64_t *train_rows;     /* n_img: catalog row of each image node */
    mms_knn_params_t kp;
    int64_t row0, nrows;     /* this rank's image nodes [row0, row0 + nrows) */
    const float *ksrc;       /* the catalog's kNN space (knn_features or features) */
    int32_t kd;              /* its width */
    int64_t *nbr;            /* nrows x k: kNN lists of the local rows */
    float *sim;
    int32_t dim;             /* node feature width (after PCA) */
    iedge_t *all;            /* rank 0: every rank's thresholded edges */
    int64_t n_all;
} build_t;

static void build_free(build_t *b) {
    if (b->rank == 0 && b->tmp[0]) mms_outdir_abort(b->tmp);
    free(b->all);
    free(b->nbr);
    free(b->sim);
    free(b->train_rows);
    mms_catalog_close(&b->c);
}

/* Phase 1: the catalog and the options; rank 0 claims the output (refusing an
 * existing one) before any work. Collective. */
static mms_status open_catalog(build_t *b) {
    const mms_build_params_t *p = b->p;
    mms_status s = mms_catalog_open(p->catalog, &b->c);
    if (s == MMS_OK) s = validate(p, b->c, b->nranks);
    if (s == MMS_OK && b->rank == 0) s = mms_outdir_begin(p->out, p->force, b->tmp, sizeof b->tmp);
    MMS_CALL(mms_mpi_agree(s, b->comm));
    return mms_mpi_bcast_big(b->tmp, sizeof b->tmp, 0, b->comm);
}

/* Phase 2: image nodes = training images in catalog order, split in whole
 * kNN tiles; the kNN parameters. Local. */
static mms_status split_rows(build_t *b) {
    const mms_build_params_t *p = b->p;
    const mms_catalog_t *c = b->c;
    b->n_img = c->n_split[MMS_SPLIT_TRAIN];
    MMS_CALL(mms_malloc((size_t)b->n_img * sizeof *b->train_rows, &b->train_rows));
    for (int64_t r = 0, i = 0; r < c->n; r++)
        if (c->split[r] == MMS_SPLIT_TRAIN) b->train_rows[i++] = r;
    mms_knn_params_default(&b->kp);
    b->kp.k = p->k;
    if (p->tile > 0) b->kp.tile = p->tile;
    if (p->nlist > 0) b->kp.nlist = p->nlist;
    if (p->nprobe > 0) b->kp.nprobe = p->nprobe;
    b->kp.seed = p->seed;
    mms_knn_rows_for_rank(b->n_img, b->kp.tile, b->nranks, b->rank, &b->row0, &b->nrows);
    b->ksrc = c->knn_x ? c->knn_x : c->x;
    b->kd = c->knn_x ? c->knn_dim : c->dim;
    mms_log_info("build: %lld training images (of %lld), %d tags; kNN in %d-d %s space, k=%d, "
                 "threshold %g, %s",
                 (long long)b->n_img, (long long)c->n, c->ntags, b->kd,
                 c->knn_x ? "knn_features" : "feature", p->k, p->threshold,
                 p->approx ? "approximate (IVF)" : "exact");
    return MMS_OK;
}

/* Rows [from, from + n) of the image nodes in the kNN space into a new array. */
static mms_status knn_rows(const build_t *b, int64_t from, int64_t n, float **out) {
    MMS_CALL(mms_malloc((size_t)(n ? n : 1) * (size_t)b->kd * sizeof(float), out));
    for (int64_t i = 0; i < n; i++)
        memcpy(*out + (size_t)i * (size_t)b->kd,
               b->ksrc + (size_t)b->train_rows[from + i] * (size_t)b->kd,
               (size_t)b->kd * sizeof(float));
    return MMS_OK;
}

/* The kNN-space rows of every image node for IVF, which scans lists holding
 * any row: each rank writes its block kx into one scratch file in the output's
 * temporary directory and every rank maps it, so a node holds one copy in its
 * page cache instead of one malloc'd copy of all rows per rank (0.9 N x D x 4
 * bytes each: 1.8 GB at 1M images, 18 GB at 10M; docs/scaling.md). The caller
 * closes map and calls knn_shared_done. Collective. */
#define KNN_SHARED_FILE ".knn_rows.npy"
static mms_status knn_rows_shared(const build_t *b, const float *kx, mms_npy_t *map) {
    char path[MMS_PATH_MAX];
    size_t off = 0;
    mms_status s = mms_path_join(path, sizeof path, b->tmp, KNN_SHARED_FILE);
    if (s == MMS_OK && b->rank == 0)
        s = mms_npy_create_sized(path, MMS_DT_F32, (size_t)b->n_img, (size_t)b->kd, &off);
    MMS_CALL(mms_mpi_agree(s, b->comm));
    MMS_CALL(mms_mpi_bcast_big(&off, sizeof off, 0, b->comm));
    if (b->nrows > 0)
        s = mms_npy_pwrite_rows(path, off, MMS_DT_F32, (size_t)b->kd, (size_t)b->row0, kx,
                                (size_t)b->nrows);
    MMS_CALL(mms_mpi_agree(s, b->comm));
    s = mms_npy_open(path, MMS_DT_F32, map);
    if (s == MMS_OK && (map->rows != (size_t)b->n_img || map->cols != (size_t)b->kd)) {
        mms_npy_close(map);
        mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                      "build: scratch file '%s' is %zu x %zu, expected %lld x %d", path, map->rows,
                      map->cols, (long long)b->n_img, b->kd);
        s = MMS_ERR_FORMAT;
    }
    return mms_mpi_agree(s, b->comm);
}

/* After every rank closed its map: rank 0 removes the scratch file (it must
 * not reach the graph's manifest). Collective. */
static mms_status knn_shared_done(const build_t *b) {
    mms_status s = MMS_OK;
    MMS_MPI_CALL(MPI_Barrier(b->comm));
    if (b->rank == 0) {
        char path[MMS_PATH_MAX];
        s = mms_path_join(path, sizeof path, b->tmp, KNN_SHARED_FILE);
        if (s == MMS_OK && unlink(path) != 0 && errno != ENOENT) {
            mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "cannot remove '%s': %s", path,
                          strerror(errno));
            s = MMS_ERR_IO;
        }
    }
    return mms_mpi_agree(s, b->comm);
}

/* Phase 3: the kNN lists of the local rows: the exact ring, or IVF over all
 * rows (then recall on a sample). Collective. */
static mms_status knn_lists(build_t *b) {
    const mms_build_params_t *p = b->p;
    mms_build_summary_t *sum = b->sum;
    float *kx = NULL;
    mms_status s = knn_rows(b, b->row0, b->nrows, &kx);
    if (s == MMS_OK)
        s = mms_malloc((size_t)(b->nrows ? b->nrows : 1) * (size_t)p->k * sizeof(int64_t), &b->nbr);
    if (s == MMS_OK)
        s = mms_malloc((size_t)(b->nrows ? b->nrows : 1) * (size_t)p->k * sizeof(float), &b->sim);
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, b->comm));
    MMS_CALL_GOTO(s, out, mms_mpi_agree(mms_knn_params_check(&b->kp, b->n_img, b->kd, p->approx), b->comm));
    double tk = mms_now();
    if (p->approx) {
        /* IVF scans lists over all rows: every rank maps the training rows of the
         * kNN space (n_img x kd floats, in node order) from one shared file */
        mms_npy_t map = {0};
        const float *xf = NULL;
        s = knn_rows_shared(b, kx, &map);
        if (s == MMS_OK) xf = map.data;
        if (s == MMS_OK)
            s = mms_knn_ivf(xf, b->n_img, b->kd, b->row0, b->nrows, &b->kp, b->comm, b->nbr, b->sim);
        sum->knn_seconds = mms_now() - tk;
        if (mms_mpi_agree(s, b->comm) == MMS_OK && p->recall_sample > 0) {
            s = mms_knn_recall(xf, b->n_img, b->kd, b->row0, b->nrows, b->nbr, p->k, p->k,
                               p->recall_sample, p->seed, b->comm, &sum->recall);
            if (s == MMS_OK)
                mms_log_info("build: approximate kNN recall@%d on %lld sampled rows: %.4f", p->k,
                             (long long)p->recall_sample, sum->recall);
        }
        mms_npy_close(&map);
        mms_status sd = knn_shared_done(b);
        if (s == MMS_OK) s = sd;
    } else {
        s = mms_knn_exact(kx, b->nrows, b->row0, b->n_img, b->kd, &b->kp, b->comm, b->nbr, b->sim);
        sum->knn_seconds = mms_now() - tk;
    }
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, b->comm));
    sum->knn_gflops = p->approx ? 0 : 2.0 * (double)b->n_img * (double)b->n_img * b->kd / sum->knn_seconds / 1e9;
    mms_log_info("build: kNN done in %.1f s", sum->knn_seconds);
out:
    free(kx);
    return s;
}

/* Phase 4: node features (catalog rows, L2-normalised if asked, PCA-projected
 * if asked; rank 0 saves the PCA); each rank writes its block of x.npy in
 * place. Collective. */
static mms_status node_features(build_t *b) {
    const mms_build_params_t *p = b->p;
    const mms_catalog_t *c = b->c;
    const int64_t nrows = b->nrows;
    float *nx = NULL, *proj = NULL;
    mms_pca_t pca;
    int have_pca = 0;
    b->dim = p->pca_dim > 0 ? p->pca_dim : c->dim;
    mms_status s = mms_malloc((size_t)(nrows ? nrows : 1) * (size_t)c->dim * sizeof(float), &nx);
    for (int64_t i = 0; s == MMS_OK && i < nrows; i++)
        memcpy(nx + (size_t)i * (size_t)c->dim, c->x + (size_t)b->train_rows[b->row0 + i] * (size_t)c->dim,
               (size_t)c->dim * sizeof(float));
    if (s == MMS_OK && p->normalize)
        for (int64_t i = 0; i < nrows; i++) {
            float *r = nx + (size_t)i * (size_t)c->dim;
            double ss = 0;
            for (int32_t j = 0; j < c->dim; j++) ss += (double)r[j] * r[j];
            float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
            for (int32_t j = 0; j < c->dim; j++) r[j] *= inv;
        }
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, b->comm));
    if (p->pca_dim > 0) {
        MMS_CALL_GOTO(s, out, mms_pca_fit(nx, nrows, b->n_img, c->dim, p->pca_dim, b->comm, &pca));
        have_pca = 1;
        s = mms_malloc((size_t)(nrows ? nrows : 1) * (size_t)b->dim * sizeof(float), &proj);
        if (s == MMS_OK) s = mms_pca_project(&pca, nx, nrows, proj);
        if (s == MMS_OK && b->rank == 0) s = mms_pca_save(&pca, b->tmp);
        MMS_CALL_GOTO(s, out, mms_mpi_agree(s, b->comm));
        double kept = 0;
        for (int32_t j = 0; j < b->dim; j++) kept += pca.explained[j];
        mms_log_info("build: PCA %d -> %d keeps %.1f%% of the variance", c->dim, b->dim, 100.0 * kept);
    }
    char xpath[MMS_PATH_MAX];
    size_t xoff = 0;
    s = mms_path_join(xpath, sizeof xpath, b->tmp, "x.npy");
    if (s == MMS_OK && b->rank == 0) s = mms_npy_create_sized(xpath, MMS_DT_F32, (size_t)b->n_img, (size_t)b->dim, &xoff);
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, b->comm));
    MMS_CALL_GOTO(s, out, mms_mpi_bcast_big(&xoff, sizeof xoff, 0, b->comm));
    if (nrows > 0)
        s = mms_npy_pwrite_rows(xpath, xoff, MMS_DT_F32, (size_t)b->dim, (size_t)b->row0,
                                proj ? proj : nx, (size_t)nrows);
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, b->comm));
out:
    if (have_pca) mms_pca_free(&pca);
    free(nx);
    free(proj);
    return s;
}

/* Phase 5: this rank's kNN edges above the threshold (u < v), gathered on
 * rank 0 into b->all. Collective. */
static mms_status gather_edges(build_t *b) {
    const mms_build_params_t *p = b->p;
    mms_build_summary_t *sum = b->sum;
    iedge_t *edges = NULL;
    int *counts = NULL, *displs = NULL;
    int64_t nloc = 0;
    mms_status s = mms_malloc((size_t)(b->nrows * p->k + 1) * sizeof *edges, &edges);
    for (int64_t i = 0; s == MMS_OK && i < b->nrows; i++)
        for (int j = 0; j < p->k; j++) {
            int64_t v = b->nbr[i * p->k + j];
            float w = b->sim[i * p->k + j];
            if (v < 0) continue;
            sum->ii_candidates++;
            if (p->threshold > -1.0 && w < (float)p->threshold) continue;
            int64_t u = b->row0 + i;
            edges[nloc].a = u < v ? u : v;
            edges[nloc].b = u < v ? v : u;
            edges[nloc].w = w;
            nloc++;
        }
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, b->comm));
    int64_t cand = sum->ii_candidates;
    MMS_MPI_CALL(MPI_Reduce(&cand, &sum->ii_candidates, 1, MPI_INT64_T, MPI_SUM, 0, b->comm));
    /* counts travel as int: refuse (on every rank together) what does not fit */
    int64_t nb = nloc * (int64_t)sizeof(iedge_t), total = 0;
    MMS_MPI_CALL(MPI_Allreduce(&nb, &total, 1, MPI_INT64_T, MPI_SUM, b->comm));
    MMS_CHECK_GOTO(s, out, total < 2147483647LL, MMS_ERR_ARG,
                   "build: %lld bytes of kNN edges exceed one gather (2 GiB); lower --k",
                   (long long)total);
    int mine = (int)nb;
    if (b->rank == 0) {
        s = mms_calloc((size_t)b->nranks, sizeof(int), &counts);
        if (s == MMS_OK) s = mms_calloc((size_t)b->nranks, sizeof(int), &displs);
        if (s == MMS_OK) s = mms_malloc((size_t)total + 1, &b->all);
    }
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, b->comm));
    MMS_MPI_CALL(MPI_Gather(&mine, 1, MPI_INT, counts, 1, MPI_INT, 0, b->comm));
    if (b->rank == 0)
        for (int r = 0, at = 0; r < b->nranks; r++) {
            displs[r] = at;
            at += counts[r];
        }
    MMS_MPI_CALL(MPI_Gatherv(edges, mine, MPI_BYTE, b->all, counts, displs, MPI_BYTE, 0, b->comm));
    b->n_all = total / (int64_t)sizeof(iedge_t);
out:
    free(counts);
    free(displs);
    free(edges);
    return s;
}

/* The graph manifest (kind "graph"). */
static mms_status write_manifest(const build_t *b, uint64_t gsum) {
    const mms_build_params_t *p = b->p;
    const mms_catalog_t *c = b->c;
    const mms_build_summary_t *sum = b->sum;
    mms_manifest_t *m = NULL;
    MMS_CALL(mms_manifest_create("graph", MMS_GRAPH_FORMAT, &m));
    mms_manifest_set_int(m, "images", b->n_img);
    mms_manifest_set_int(m, "tags", c->ntags);
    mms_manifest_set_int(m, "dim", b->dim);
    mms_manifest_set_int(m, "input_dim", c->dim);
    mms_manifest_set_int(m, "knn_dim", b->kd);
    mms_manifest_set_str(m, "knn_space", c->knn_x ? "knn_features" : "features");
    mms_manifest_set_int(m, "k", p->k);
    mms_manifest_set_real(m, "threshold", p->threshold);
    mms_manifest_set_str(m, "knn_mode", p->approx ? "ivf" : "exact");
    mms_manifest_set_int(m, "pca_dim", p->pca_dim);
    mms_manifest_set_int(m, "normalize", p->normalize);
    mms_manifest_set_int(m, "degree_cap", p->degree_cap);
    mms_manifest_set_int(m, "seed", (int64_t)p->seed);
    mms_manifest_set_int(m, "ii_edges", sum->ii_edges);
    mms_manifest_set_int(m, "it_edges", sum->it_edges);
    mms_manifest_set_int(m, "isolated_images", sum->isolated_images);
    mms_manifest_set_path(m, "catalog", c->dir, b->p->out);
    mms_manifest_set_uint(m, "catalog_checksum", c->checksum);
    mms_status s = mms_manifest_set_uint(m, "checksum", gsum);
    if (s == MMS_OK) s = mms_manifest_seal_dir(m, b->tmp, NULL);
    mms_manifest_destroy(&m);
    return s;
}

/* Phase 6 (rank 0): the CSR from the edges and the tags, every remaining
 * file, the manifest, and the rename into place. */
static mms_status write_graph(build_t *b) {
    mms_csr_t full = {0}, adj = {0};
    const char *dir = b->tmp;
    mms_status s = assemble_csr(b->c, b->train_rows, b->n_img, b->all, b->n_all, b->p, &full, &adj, b->sum);
    if (s == MMS_OK) s = write_vec(dir, "indptr.npy", MMS_DT_I64, full.indptr, (size_t)full.n + 1);
    if (s == MMS_OK) s = write_vec(dir, "indices.npy", MMS_DT_I64, full.indices, (size_t)full.indptr[full.n]);
    if (s == MMS_OK) s = write_vec(dir, "weights.npy", MMS_DT_F32, full.weights, (size_t)full.indptr[full.n]);
    if (s == MMS_OK) s = write_vec(dir, "adj_indptr.npy", MMS_DT_I64, adj.indptr, (size_t)adj.n + 1);
    if (s == MMS_OK) s = write_vec(dir, "adj_indices.npy", MMS_DT_I64, adj.indices, (size_t)adj.indptr[adj.n]);
    if (s == MMS_OK) s = write_vec(dir, "image_rows.npy", MMS_DT_I64, b->train_rows, (size_t)b->n_img);
    if (s == MMS_OK) s = write_tags_tsv(dir, b->c, b->train_rows, b->n_img);
    uint64_t gsum = 0;
    if (s == MMS_OK) s = structure_checksum(dir, &gsum);
    if (s == MMS_OK) s = write_manifest(b, gsum);
    if (s == MMS_OK) s = mms_outdir_commit(b->tmp, b->p->out, b->p->force);
    if (s == MMS_OK) b->tmp[0] = '\0';
    mms_csr_free(&full);
    mms_csr_free(&adj);
    return s;
}

mms_status mms_graph_build(const mms_build_params_t *p, MPI_Comm comm, mms_build_summary_t *sum) {
    build_t B;
    build_t *b = &B;
    memset(b, 0, sizeof *b);
    memset(sum, 0, sizeof *sum);
    sum->recall = -1;
    b->p = p;
    b->comm = comm;
    b->sum = sum;
    MMS_MPI_CALL(MPI_Comm_rank(comm, &b->rank));
    MMS_MPI_CALL(MPI_Comm_size(comm, &b->nranks));
    double t0 = mms_now();
    mms_status s;
    MMS_CALL_GOTO(s, done, open_catalog(b));
    MMS_CALL_GOTO(s, done, split_rows(b));
    MMS_CALL_GOTO(s, done, knn_lists(b));
    MMS_CALL_GOTO(s, done, node_features(b));
    MMS_CALL_GOTO(s, done, gather_edges(b));
    s = b->rank == 0 ? write_graph(b) : MMS_OK;
    MMS_CALL_GOTO(s, done, mms_mpi_agree(s, comm));
    sum->images = b->n_img;
    sum->tags = b->c->ntags;
    sum->nodes = b->n_img + b->c->ntags;
    sum->total_seconds = mms_now() - t0;
done:
    build_free(b);
    return s;
}
