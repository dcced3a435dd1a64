/* embed.c: the embedding pass (see embed.h). Computes the rows; the index
 * directory's files are written by index.c (mms_index_write_shard / _top).
 *
 * Steps of mms_embed, every rank unless noted:
 *   1. open the graph, its partition, the model and the catalog; check they
 *      belong together; rank 0 claims the output directory
 *   2. load this rank's shard (halo features arrive in one exchange)
 *   3. layer 1 for owned + halo1 nodes, layer 2 for owned nodes
 *   4. write this shard: the owned images' rows and their kNN-space vectors
 *   5. gather the owned tag nodes' rows on rank 0, which writes the top level
 *   6. rank 0 renames the directory into place
 */
#define _GNU_SOURCE
#include "embed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "ivf_build.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_graph.h"
#include "mms_log.h"
#include "mms_manifest.h"
#include "mms_mpi.h"
#include "model_io.h"
#include "part_dir.h"
#include "sage.h"
#include "shard.h"

/* Everything one rank holds during the pass (freed by embed_free). */
typedef struct {
    const mms_embed_params_t *p;
    MPI_Comm comm;
    int rank, nranks;
    mms_graph_t *g;
    mms_partition_t *pt;
    mms_sage_model_t *m;
    mms_catalog_t *cat;
    mms_shard_t sh;
    char knn_space[32];  /* the graph's kNN space: "features" or "knn_features" */
    int normalize;       /* the graph's build --normalize */
    char tmp[MMS_PATH_MAX]; /* the output under its temporary name ("" once committed) */
    int32_t H2, D;       /* embedding width 2H, input width D */
    int32_t *nbr, *self; /* int32 adjacency and identity of owned + halo1 rows */
    float *h1, *z;       /* (owned + halo1) x 2H, owned x 2H */
    int64_t n_img;       /* owned image nodes (the first n_img owned rows) */
    int32_t nlist;       /* inverted lists written (ivf_build.h), 0: none */
} embed_t;

static void embed_free(embed_t *e) {
    free(e->nbr);
    free(e->self);
    free(e->h1);
    free(e->z);
    mms_shard_free(&e->sh);
    mms_catalog_close(&e->cat);
    mms_sage_model_destroy(&e->m);
    mms_partition_close(&e->pt);
    mms_graph_close(&e->g);
}

/* The catalog the graph was built from (for the kNN-space vectors of the
 * owned images), unchanged since, and the graph's kNN space and --normalize. */
static mms_status open_catalog(embed_t *e) {
    mms_manifest_t *gm = NULL;
    const char *ks = NULL;
    char cdir[MMS_PATH_MAX] = "";
    int64_t nz = 0;
    mms_status s = mms_manifest_read_dir(e->p->graph, "graph", MMS_GRAPH_FORMAT, &gm);
    if (s == MMS_OK) s = mms_manifest_get_path(gm, "catalog", e->p->graph, cdir, sizeof cdir);
    if (s == MMS_OK) s = mms_manifest_get_str(gm, "knn_space", &ks);
    if (s == MMS_OK) snprintf(e->knn_space, sizeof e->knn_space, "%s", ks);
    if (s == MMS_OK && mms_manifest_has(gm, "normalize")) s = mms_manifest_get_int(gm, "normalize", &nz);
    e->normalize = (int)nz;
    if (s == MMS_OK) s = mms_catalog_open(cdir, &e->cat);
    if (s == MMS_OK && e->cat->checksum != e->g->catalog_checksum) {
        mms_error_set(MMS_ERR_MISMATCH, __FILE__, __LINE__, __func__,
                      "catalog '%s' changed since graph '%s' was built from it: rebuild the graph",
                      cdir, e->p->graph);
        s = MMS_ERR_MISMATCH;
    }
    mms_manifest_destroy(&gm);
    return s;
}

/* Step 1: the inputs, checked against each other; rank 0 claims the output.
 * Collective (the ranks agree on the outcome). */
static mms_status open_inputs(embed_t *e) {
    const mms_embed_params_t *p = e->p;
    mms_status s = mms_graph_open(p->graph, &e->g);
    if (s == MMS_OK) s = mms_partition_open(p->graph, e->nranks, &e->pt);
    if (s == MMS_OK) s = mms_model_load(p->model, e->g->checksum, &e->m);
    if (s == MMS_OK && e->m->cfg.dim != e->g->dim) {
        mms_error_set(MMS_ERR_MISMATCH, __FILE__, __LINE__, __func__,
                      "model '%s' has input width %d, graph '%s' %d", p->model, e->m->cfg.dim,
                      p->graph, e->g->dim);
        s = MMS_ERR_MISMATCH;
    }
    if (s == MMS_OK) s = open_catalog(e);
    if (s == MMS_OK && e->rank == 0) s = mms_outdir_begin(p->out, p->force, e->tmp, sizeof e->tmp);
    MMS_CALL(mms_mpi_agree(s, e->comm));
    return mms_mpi_bcast_big(e->tmp, sizeof e->tmp, 0, e->comm);
}

/* Step 3: h1 of owned + halo1 nodes (everything layer 2 of an owned node
 * reads), then z of owned nodes. Local. */
static mms_status embed_owned(embed_t *e) {
    const mms_shard_t *sh = &e->sh;
    e->H2 = 2 * e->m->cfg.hidden;
    e->D = e->g->dim;
    mms_sage_nodes_t nodes = {
        .n = sh->n_local, .gid = sh->gid, .n_images = e->g->n_images, .dim = e->D, .x = sh->x};
    int64_t n1 = sh->n_owned + sh->n_halo1, nnz = sh->adj.indptr[n1];
    MMS_CALL(mms_malloc((size_t)(nnz + 1) * sizeof(int32_t), &e->nbr));
    for (int64_t k = 0; k < nnz; k++) e->nbr[k] = (int32_t)sh->adj.indices[k];
    MMS_CALL(mms_malloc((size_t)(n1 + 1) * sizeof(int32_t), &e->self));
    MMS_CALL(mms_malloc((size_t)(n1 + 1) * (size_t)e->H2 * sizeof(float), &e->h1));
    MMS_CALL(mms_malloc((size_t)(sh->n_owned + 1) * (size_t)e->H2 * sizeof(float), &e->z));
    for (int64_t i = 0; i < n1; i++) e->self[i] = (int32_t)i;
    MMS_CALL(mms_sage_layer1(e->m, &nodes, n1, e->self, NULL, sh->adj.indptr, e->nbr, 0, e->h1));
    return mms_sage_layer2(e->m, sh->n_owned, e->h1, e->h1, sh->adj.indptr, e->nbr, 0, e->z);
}

/* Step 4: this rank's shard of the index. Owned images come first among the
 * owned nodes (ids < n_images), so their emb, h1 and x rows are the first
 * n_img rows; vis holds their L2-normalised kNN-space vectors. Local. */
static mms_status write_shard(embed_t *e) {
    const mms_shard_t *sh = &e->sh;
    const mms_catalog_t *cat = e->cat;
    e->n_img = 0;
    for (int64_t i = 0; i < sh->n_owned; i++) e->n_img += sh->gid[i] < e->g->n_images;
    int32_t dk = cat->knn_x ? cat->knn_dim : cat->dim;
    const float *ksrc = cat->knn_x ? cat->knn_x : cat->x;
    float *vis;
    MMS_CALL(mms_malloc((size_t)(e->n_img + 1) * (size_t)dk * sizeof(float), &vis));
    for (int64_t k = 0; k < e->n_img; k++) {
        const float *src = ksrc + (size_t)e->g->image_rows[sh->gid[k]] * (size_t)dk;
        double nn = 0;
        for (int32_t j = 0; j < dk; j++) nn += (double)src[j] * src[j];
        float inv = nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
        for (int32_t j = 0; j < dk; j++) vis[(size_t)k * dk + j] = src[j] * inv;
    }
    mms_index_rows_t r = {.n = e->n_img, .ids = sh->gid, .emb = e->z, .h1 = e->h1, .x = sh->x,
                          .vis = vis, .emb_dim = e->H2, .dim = e->D, .knn_dim = dk};
    mms_status s = mms_index_write_shard(e->tmp, e->rank, &r);
    free(vis);
    return s;
}

/* Step 5a: the rows (ids, emb, h1) of every rank's owned tag nodes on rank 0,
 * ordered by tag number into tag_emb / tag_h1 (rank 0 allocates them).
 * Collective. */
static mms_status gather_tags(embed_t *e, float **tag_emb, float **tag_h1) {
    const int P = e->nranks, H2 = e->H2;
    const int64_t n_tags = e->g->n_tags;
    int cnt = (int)(e->sh.n_owned - e->n_img), *counts = NULL;
    int64_t *all_ids = NULL;
    float *all_emb = NULL, *all_h1 = NULL;
    mms_status s = MMS_OK;
    if (e->rank == 0) {
        s = mms_calloc((size_t)P * 4, sizeof(int), &counts);
        if (s == MMS_OK) s = mms_malloc((size_t)(n_tags + 1) * sizeof(int64_t), &all_ids);
        if (s == MMS_OK) s = mms_malloc((size_t)(n_tags + 1) * (size_t)H2 * sizeof(float), &all_emb);
        if (s == MMS_OK) s = mms_malloc((size_t)(n_tags + 1) * (size_t)H2 * sizeof(float), &all_h1);
    }
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, e->comm));
    int *displs = counts ? counts + P : NULL, *fcounts = counts ? counts + 2 * P : NULL,
        *fdispls = counts ? counts + 3 * P : NULL;
    MMS_MPI_CALL(MPI_Gather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, 0, e->comm));
    if (e->rank == 0)
        for (int r = 0, at = 0; r < P; r++) {
            displs[r] = at;
            fcounts[r] = counts[r] * H2;
            fdispls[r] = at * H2;
            at += counts[r];
        }
    MMS_MPI_CALL(MPI_Gatherv(e->sh.gid + e->n_img, cnt, MPI_INT64_T, all_ids, counts, displs,
                             MPI_INT64_T, 0, e->comm));
    MMS_MPI_CALL(MPI_Gatherv(e->z + (size_t)e->n_img * H2, cnt * H2, MPI_FLOAT, all_emb, fcounts,
                             fdispls, MPI_FLOAT, 0, e->comm));
    MMS_MPI_CALL(MPI_Gatherv(e->h1 + (size_t)e->n_img * H2, cnt * H2, MPI_FLOAT, all_h1, fcounts,
                             fdispls, MPI_FLOAT, 0, e->comm));
    if (e->rank == 0) {
        s = mms_calloc((size_t)(n_tags + 1) * (size_t)H2, sizeof(float), tag_emb);
        if (s == MMS_OK) s = mms_calloc((size_t)(n_tags + 1) * (size_t)H2, sizeof(float), tag_h1);
        for (int64_t i = 0; s == MMS_OK && i < n_tags; i++) {
            int64_t t = all_ids[i] - e->g->n_images;
            memcpy(*tag_emb + t * H2, all_emb + i * H2, (size_t)H2 * sizeof(float));
            memcpy(*tag_h1 + t * H2, all_h1 + i * H2, (size_t)H2 * sizeof(float));
        }
    }
out:
    free(counts);
    free(all_ids);
    free(all_emb);
    free(all_h1);
    return s;
}

/* Step 5b (rank 0): the index's top level. */
static mms_status write_top(const embed_t *e, const float *tag_emb, const float *tag_h1) {
    const mms_catalog_t *cat = e->cat;
    mms_index_top_t t = {.model = e->p->model,
                         .graph = e->p->graph,
                         .shards = e->nranks,
                         .knn_dim = cat->knn_x ? cat->knn_dim : cat->dim,
                         .knn_space = e->knn_space,
                         .catalog = cat->dir,
                         .out = e->p->out,
                         .catalog_checksum = cat->checksum,
                         .emb_dim = e->H2,
                         .normalize = e->normalize,
                         .n_tags = e->g->n_tags,
                         .tag_emb = tag_emb,
                         .tag_h1 = tag_h1,
                         .ivf_nlist = e->nlist};
    return mms_index_write_top(e->tmp, &t);
}

/* The images embedded over all ranks. Collective. */
static mms_status count_images(const embed_t *e, int64_t *total) {
    int64_t ni = e->n_img;
    MMS_MPI_CALL(MPI_Allreduce(&ni, total, 1, MPI_INT64_T, MPI_SUM, e->comm));
    return MMS_OK;
}

mms_status mms_embed(const mms_embed_params_t *p, MPI_Comm comm, mms_embed_summary_t *sum) {
    embed_t E;
    embed_t *e = &E;
    memset(e, 0, sizeof *e);
    memset(sum, 0, sizeof *sum);
    e->p = p;
    e->comm = comm;
    snprintf(e->knn_space, sizeof e->knn_space, "features");
    MMS_MPI_CALL(MPI_Comm_rank(comm, &e->rank));
    MMS_MPI_CALL(MPI_Comm_size(comm, &e->nranks));
    double t0 = mms_now();
    float *tag_emb = NULL, *tag_h1 = NULL;
    mms_status s;
    MMS_CALL_GOTO(s, done, open_inputs(e));
    MMS_CALL_GOTO(s, done, mms_shard_load(e->g, e->pt, comm, &e->sh));
    MMS_CALL_GOTO(s, done, mms_mpi_agree(embed_owned(e), comm));
    MMS_CALL_GOTO(s, done, mms_mpi_agree(write_shard(e), comm));
    MMS_CALL_GOTO(s, done, mms_ivf_build(e->tmp, p->nlist, comm, &e->nlist));
    MMS_CALL_GOTO(s, done, gather_tags(e, &tag_emb, &tag_h1));
    s = e->rank == 0 ? write_top(e, tag_emb, tag_h1) : MMS_OK;
    MMS_CALL_GOTO(s, done, mms_mpi_agree(s, comm));
    if (e->rank == 0) {
        s = mms_outdir_commit(e->tmp, p->out, p->force);
        if (s == MMS_OK) e->tmp[0] = '\0';
    }
    MMS_CALL_GOTO(s, done, mms_mpi_agree(s, comm));
    MMS_CALL_GOTO(s, done, count_images(e, &sum->images));
    sum->tags = e->g->n_tags;
    sum->seconds = mms_now() - t0;
done:
    if (e->rank == 0 && e->tmp[0]) mms_outdir_abort(e->tmp);
    free(tag_emb);
    free(tag_h1);
    embed_free(e);
    return s;
}
