/* embed.c: the embedding pass and index writer (see embed.h). */
#define _GNU_SOURCE
#include "embed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metis_part.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_graph.h"
#include "mms_log.h"
#include "mms_manifest.h"
#include "mms_mpi.h"
#include "mms_npy.h"
#include "shard.h"
#include "train.h"

mms_status mms_model_load(const char *dir, uint64_t graph_checksum, mms_sage_model_t **out) {
    *out = NULL;
    mms_manifest_t *m;
    MMS_CALL(mms_manifest_read_dir(dir, "model", MMS_MODEL_FORMAT, &m));
    mms_sage_config_t c;
    mms_sage_config_default(&c);
    int64_t v, tags = 0, np = 0;
    uint64_t gsum = 0;
    double r;
    mms_status s = mms_manifest_get_uint(m, "graph_checksum", &gsum);
    if (s == MMS_OK && graph_checksum && gsum != graph_checksum) {
        mms_error_set(MMS_ERR_MISMATCH, __FILE__, __LINE__, __func__,
                      "model '%s' was trained on another graph (checksum %016llx, expected %016llx)",
                      dir, (unsigned long long)gsum, (unsigned long long)graph_checksum);
        s = MMS_ERR_MISMATCH;
    }
    if (s == MMS_OK && (s = mms_manifest_get_int(m, "dim", &v)) == MMS_OK) c.dim = (int32_t)v;
    if (s == MMS_OK && (s = mms_manifest_get_int(m, "hidden", &v)) == MMS_OK) c.hidden = (int32_t)v;
    if (s == MMS_OK && (s = mms_manifest_get_int(m, "s1", &v)) == MMS_OK) c.s1 = (int32_t)v;
    if (s == MMS_OK && (s = mms_manifest_get_int(m, "s2", &v)) == MMS_OK) c.s2 = (int32_t)v;
    if (s == MMS_OK && (s = mms_manifest_get_int(m, "max_degree", &v)) == MMS_OK) c.max_degree = (int32_t)v;
    if (s == MMS_OK && (s = mms_manifest_get_real(m, "dropout", &r)) == MMS_OK) c.dropout = (float)r;
    if (s == MMS_OK && (s = mms_manifest_get_int(m, "train_tags", &v)) == MMS_OK) c.train_tags = (int)v;
    if (s == MMS_OK && (s = mms_manifest_get_int(m, "seed", &v)) == MMS_OK) c.seed = (uint64_t)v;
    if (s == MMS_OK) s = mms_manifest_get_int(m, "tags", &tags);
    if (s == MMS_OK) s = mms_manifest_get_int(m, "n_params", &np);
    mms_manifest_destroy(&m);
    if (s != MMS_OK) return s;
    MMS_CALL(mms_sage_config_check(&c));
    mms_sage_model_t *mod;
    MMS_CALL(mms_sage_model_create(&c, tags, &mod));
    MMS_CHECK(np == (int64_t)mod->n_params, MMS_ERR_FORMAT,
              "model '%s': manifest says %lld parameters, the configuration has %zu", dir,
              (long long)np, mod->n_params);
    char p[MMS_PATH_MAX];
    mms_npy_t a;
    s = mms_path_join(p, sizeof p, dir, "params.npy");
    if (s == MMS_OK) s = mms_npy_open(p, MMS_DT_F32, &a);
    if (s == MMS_OK) {
        if (a.rows * a.cols != mod->n_params) {
            mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                          "%s: has %zu values, expected %zu", p, a.rows * a.cols, mod->n_params);
            s = MMS_ERR_FORMAT;
        } else {
            memcpy(mod->params, a.data, mod->n_params * sizeof(float));
        }
        mms_npy_close(&a);
    }
    if (s == MMS_OK) s = mms_path_join(p, sizeof p, dir, "tags.npy");
    if (s == MMS_OK) s = mms_npy_open(p, MMS_DT_F32, &a);
    if (s == MMS_OK) {
        if ((int64_t)a.rows != tags || (tags > 0 && (int32_t)a.cols != c.dim)) {
            mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                          "%s: shape %zu x %zu, expected %lld x %d", p, a.rows, a.cols,
                          (long long)tags, c.dim);
            s = MMS_ERR_FORMAT;
        } else {
            memcpy(mod->tags, a.data, (size_t)tags * (size_t)c.dim * sizeof(float));
        }
        mms_npy_close(&a);
    }
    if (s != MMS_OK) {
        mms_sage_model_destroy(&mod);
        return s;
    }
    *out = mod;
    return MMS_OK;
}

/* Rows of a CSR (int64 local indices) as an int32 neighbour list for rows [0, n). */
static mms_status adj_lists(const mms_csr_t *adj, int64_t n, int32_t **nbr) {
    int64_t nnz = adj->indptr[n];
    MMS_CALL(mms_malloc((size_t)(nnz + 1) * sizeof(int32_t), nbr));
    for (int64_t e = 0; e < nnz; e++) (*nbr)[e] = (int32_t)adj->indices[e];
    return MMS_OK;
}

static mms_status write_rows(const char *dir, const char *name, const float *x, int64_t n, int32_t d) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, dir, name));
    return mms_npy_write(p, MMS_DT_F32, x, (size_t)n, (size_t)d);
}

static mms_status copy_file(const char *from_dir, const char *to_dir, const char *name) {
    char a[MMS_PATH_MAX], b[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(a, sizeof a, from_dir, name));
    MMS_CALL(mms_path_join(b, sizeof b, to_dir, name));
    char *buf;
    size_t len;
    MMS_CALL(mms_read_file(a, &buf, &len));
    mms_status s = mms_write_file_atomic(b, buf, len);
    free(buf);
    return s;
}

mms_status mms_embed(const mms_embed_params_t *p, MPI_Comm comm, mms_embed_summary_t *sum) {
    int rank, P;
    MMS_MPI_CALL(MPI_Comm_rank(comm, &rank));
    MMS_MPI_CALL(MPI_Comm_size(comm, &P));
    memset(sum, 0, sizeof *sum);
    double t0 = mms_now();
    mms_graph_t *g = NULL;
    mms_partition_t *pt = NULL;
    mms_sage_model_t *m = NULL;
    mms_catalog_t *cat = NULL;
    mms_shard_t sh;
    memset(&sh, 0, sizeof sh);
    int32_t *nbr = NULL, *self = NULL;
    float *h1 = NULL, *z = NULL, *rows = NULL, *vis = NULL;
    int64_t *ids = NULL, *tag_ids = NULL, *all_tag_ids = NULL;
    float *tag_emb = NULL, *tag_h1 = NULL, *all_emb = NULL, *all_h1 = NULL;
    char tmp[MMS_PATH_MAX] = "";
    char knn_space[32] = "features";
    int normalize = 0;
    mms_status s = mms_graph_open(p->graph, &g);
    if (s == MMS_OK) s = mms_partition_open(p->graph, P, &pt);
    if (s == MMS_OK) s = mms_model_load(p->model, g->checksum, &m);
    if (s == MMS_OK && m->cfg.dim != g->dim) {
        mms_error_set(MMS_ERR_MISMATCH, __FILE__, __LINE__, __func__,
                      "model '%s' has input width %d, graph '%s' %d", p->model, m->cfg.dim, p->graph, g->dim);
        s = MMS_ERR_MISMATCH;
    }
    /* the catalog, for the kNN-space vectors of the owned images */
    if (s == MMS_OK) {
        mms_manifest_t *gm = NULL;
        const char *cdir = NULL, *ks = NULL;
        int64_t nz = 0;
        s = mms_manifest_read_dir(p->graph, "graph", MMS_GRAPH_FORMAT, &gm);
        if (s == MMS_OK) s = mms_manifest_get_str(gm, "catalog", &cdir);
        if (s == MMS_OK) s = mms_manifest_get_str(gm, "knn_space", &ks);
        if (s == MMS_OK) snprintf(knn_space, sizeof knn_space, "%s", ks);
        if (s == MMS_OK && mms_manifest_has(gm, "normalize")) s = mms_manifest_get_int(gm, "normalize", &nz);
        normalize = (int)nz;
        if (s == MMS_OK) s = mms_catalog_open(cdir, &cat);
        if (s == MMS_OK && cat->checksum != g->catalog_checksum) {
            mms_error_set(MMS_ERR_MISMATCH, __FILE__, __LINE__, __func__,
                          "catalog '%s' changed since graph '%s' was built from it: rebuild the graph",
                          cdir, p->graph);
            s = MMS_ERR_MISMATCH;
        }
        mms_manifest_destroy(&gm);
    }
    if (s == MMS_OK && rank == 0) s = mms_outdir_begin(p->out, p->force, tmp, sizeof tmp);
    MMS_CALL_GOTO(s, done, mms_mpi_agree(s, comm));
    MMS_CALL_GOTO(s, done, mms_mpi_bcast_big(tmp, sizeof tmp, 0, comm));
    MMS_CALL_GOTO(s, done, mms_shard_load(g, pt, comm, &sh));

    const int32_t H2 = 2 * m->cfg.hidden, D = g->dim;
    mms_sage_nodes_t nodes = {.n = sh.n_local, .gid = sh.gid, .n_images = g->n_images, .dim = D, .x = sh.x};
    /* layer 1 for owned + halo1 nodes (everything layer 2 of an owned node reads) */
    int64_t n1 = sh.n_owned + sh.n_halo1;
    s = adj_lists(&sh.adj, n1, &nbr);
    if (s == MMS_OK) s = mms_malloc((size_t)(n1 + 1) * sizeof(int32_t), &self);
    if (s == MMS_OK) s = mms_malloc((size_t)(n1 + 1) * (size_t)H2 * sizeof(float), &h1);
    if (s == MMS_OK) s = mms_malloc((size_t)(sh.n_owned + 1) * (size_t)H2 * sizeof(float), &z);
    if (s == MMS_OK) {
        for (int64_t i = 0; i < n1; i++) self[i] = (int32_t)i;
        s = mms_sage_layer1(m, &nodes, n1, self, NULL, sh.adj.indptr, nbr, 0, h1);
    }
    if (s == MMS_OK) s = mms_sage_layer2(m, sh.n_owned, h1, h1, sh.adj.indptr, nbr, 0, z);
    MMS_CALL_GOTO(s, done, mms_mpi_agree(s, comm));

    /* this shard's files: image nodes */
    int64_t n_img = 0;
    for (int64_t i = 0; i < sh.n_owned; i++) n_img += sh.gid[i] < g->n_images;
    int32_t dk = cat->knn_x ? cat->knn_dim : cat->dim;
    const float *ksrc = cat->knn_x ? cat->knn_x : cat->x;
    char sdir[MMS_PATH_MAX], name[64];
    snprintf(name, sizeof name, "shard-%d", rank);
    s = mms_path_join(sdir, sizeof sdir, tmp, name);
    if (s == MMS_OK) s = mms_mkdir_p(sdir);
    if (s == MMS_OK) s = mms_malloc((size_t)(n_img + 1) * sizeof(int64_t), &ids);
    if (s == MMS_OK) s = mms_malloc((size_t)(n_img + 1) * (size_t)(H2 > D ? H2 : D) * sizeof(float), &rows);
    if (s == MMS_OK) s = mms_malloc((size_t)(n_img + 1) * (size_t)dk * sizeof(float), &vis);
    if (s == MMS_OK) {
        int64_t k = 0;
        for (int64_t i = 0; i < sh.n_owned; i++) {
            int64_t v = sh.gid[i];
            if (v >= g->n_images) continue;
            ids[k] = v;
            const float *src = ksrc + (size_t)g->image_rows[v] * (size_t)dk;
            double nn = 0;
            for (int32_t j = 0; j < dk; j++) nn += (double)src[j] * src[j];
            float inv = nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
            for (int32_t j = 0; j < dk; j++) vis[(size_t)k * dk + j] = src[j] * inv;
            k++;
        }
        char ip[MMS_PATH_MAX];
        s = mms_path_join(ip, sizeof ip, sdir, "ids.npy");
        if (s == MMS_OK) s = mms_npy_write(ip, MMS_DT_I64, ids, (size_t)n_img, 0);
    }
    /* emb, h1, x of the owned images, in ids order (owned images come first: ids < n_images) */
    if (s == MMS_OK) s = write_rows(sdir, "emb.npy", z, n_img, H2);
    if (s == MMS_OK) s = write_rows(sdir, "h1.npy", h1, n_img, H2);
    if (s == MMS_OK) s = write_rows(sdir, "x.npy", sh.x, n_img, D);
    if (s == MMS_OK) s = write_rows(sdir, "vis.npy", vis, n_img, dk);
    MMS_CALL_GOTO(s, done, mms_mpi_agree(s, comm));

    /* tag nodes owned here -> rank 0 */
    int64_t n_tag_loc = sh.n_owned - n_img;
    int cnt = (int)n_tag_loc, *counts = NULL, *displs = NULL, *fcounts = NULL, *fdispls = NULL;
    if (rank == 0) {
        s = mms_calloc((size_t)P * 4, sizeof(int), &counts);
        if (s == MMS_OK) {
            displs = counts + P;
            fcounts = counts + 2 * P;
            fdispls = counts + 3 * P;
        }
        if (s == MMS_OK) s = mms_malloc((size_t)(g->n_tags + 1) * sizeof(int64_t), &all_tag_ids);
        if (s == MMS_OK) s = mms_malloc((size_t)(g->n_tags + 1) * (size_t)H2 * sizeof(float), &all_emb);
        if (s == MMS_OK) s = mms_malloc((size_t)(g->n_tags + 1) * (size_t)H2 * sizeof(float), &all_h1);
    }
    MMS_CALL_GOTO(s, done, mms_mpi_agree(s, comm));
    MMS_MPI_CALL(MPI_Gather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, 0, comm));
    if (rank == 0)
        for (int r = 0, at = 0; r < P; r++) {
            displs[r] = at;
            fcounts[r] = counts[r] * H2;
            fdispls[r] = at * H2;
            at += counts[r];
        }
    MMS_MPI_CALL(MPI_Gatherv(sh.gid + n_img, cnt, MPI_INT64_T, all_tag_ids, counts, displs,
                             MPI_INT64_T, 0, comm));
    MMS_MPI_CALL(MPI_Gatherv(z + (size_t)n_img * H2, cnt * H2, MPI_FLOAT, all_emb, fcounts, fdispls,
                             MPI_FLOAT, 0, comm));
    MMS_MPI_CALL(MPI_Gatherv(h1 + (size_t)n_img * H2, cnt * H2, MPI_FLOAT, all_h1, fcounts, fdispls,
                             MPI_FLOAT, 0, comm));
    if (rank == 0) {
        /* order by tag number */
        s = mms_calloc((size_t)(g->n_tags + 1) * (size_t)H2, sizeof(float), &tag_emb);
        if (s == MMS_OK) s = mms_calloc((size_t)(g->n_tags + 1) * (size_t)H2, sizeof(float), &tag_h1);
        for (int64_t i = 0; s == MMS_OK && i < g->n_tags; i++) {
            int64_t t = all_tag_ids[i] - g->n_images;
            memcpy(tag_emb + t * H2, all_emb + i * H2, (size_t)H2 * sizeof(float));
            memcpy(tag_h1 + t * H2, all_h1 + i * H2, (size_t)H2 * sizeof(float));
        }
        if (s == MMS_OK) s = write_rows(tmp, "tags_emb.npy", tag_emb, g->n_tags, H2);
        if (s == MMS_OK) s = write_rows(tmp, "tags_h1.npy", tag_h1, g->n_tags, H2);
        if (s == MMS_OK) s = copy_file(p->model, tmp, "params.npy");
        if (s == MMS_OK) s = copy_file(p->model, tmp, "tags.npy");
        if (s == MMS_OK) s = copy_file(p->graph, tmp, "tags.tsv");
        const char *pca[] = {"pca_mean.npy", "pca_components.npy", "pca_eigvals.npy"};
        for (int i = 0; i < 3 && s == MMS_OK; i++) {
            char gp[MMS_PATH_MAX];
            s = mms_path_join(gp, sizeof gp, p->graph, pca[i]);
            if (s == MMS_OK && mms_path_exists(gp)) s = copy_file(p->graph, tmp, pca[i]);
        }
        /* the index manifest: the model's configuration plus provenance */
        mms_manifest_t *mm = NULL;
        if (s == MMS_OK) s = mms_manifest_read_dir(p->model, "model", MMS_MODEL_FORMAT, &mm);
        if (s == MMS_OK) {
            strcpy(mm->kind, "index");
            mm->format = MMS_INDEX_FORMAT;
            mms_manifest_set_int(mm, "shards", P);
            mms_manifest_set_int(mm, "knn_dim", dk);
            mms_manifest_set_str(mm, "knn_space", knn_space);
            mms_manifest_set_str(mm, "catalog", cat->dir);
            mms_manifest_set_uint(mm, "catalog_checksum", cat->checksum);
            mms_manifest_set_str(mm, "model", p->model);
            mms_manifest_set_int(mm, "embedding_dim", H2);
            mms_manifest_set_int(mm, "normalize", normalize);
            s = mms_manifest_write_dir(mm, tmp);
        }
        mms_manifest_destroy(&mm);
    }
    MMS_CALL_GOTO(s, done, mms_mpi_agree(s, comm));
    if (rank == 0) {
        s = mms_outdir_commit(tmp, p->out, p->force);
        if (s == MMS_OK) tmp[0] = '\0';
    }
    MMS_CALL_GOTO(s, done, mms_mpi_agree(s, comm));
    {
        int64_t ni = n_img, tot = 0;
        MMS_MPI_CALL(MPI_Allreduce(&ni, &tot, 1, MPI_INT64_T, MPI_SUM, comm));
        sum->images = tot;
        sum->tags = g->n_tags;
        sum->seconds = mms_now() - t0;
    }
    free(counts);
done:
    if (rank == 0 && tmp[0]) mms_outdir_abort(tmp);
    free(nbr);
    free(self);
    free(h1);
    free(z);
    free(rows);
    free(vis);
    free(ids);
    free(tag_ids);
    free(all_tag_ids);
    free(tag_emb);
    free(tag_h1);
    free(all_emb);
    free(all_h1);
    mms_shard_free(&sh);
    mms_catalog_close(&cat);
    mms_sage_model_destroy(&m);
    mms_partition_close(&pt);
    mms_graph_close(&g);
    return s;
}
