/* index.c: the index directory: its reader (open for queries) and its writer
 * (see index.h). No MPI. */
#define _GNU_SOURCE
#include "index.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_array.h"
#include "mms_descriptor.h"
#include "mms_graph.h"
#include "mms_log.h"
#include "mms_manifest.h"
#include "model_io.h"
#include "pca.h"

void mms_index_open_default(mms_index_open_t *o) {
    memset(o, 0, sizeof *o);
    o->worker = -1;
    o->nworkers = 1;
    o->filter = 1;
    o->list_scan = MMS_LIST_SCAN_AUTO;
}

/* Map dir/name, check its dtype and shape (rows, cols): -1 = any, cols 0 = 1-D. */
static mms_status open_shaped(const char *dir, const char *name, mms_dtype t, int64_t rows,
                              int64_t cols, mms_npy_t *a) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, dir, name));
    MMS_CHECK(mms_path_exists(p), MMS_ERR_IO, "index: '%s' is missing", p);
    MMS_CALL(mms_npy_open(p, (int)t, a));
    int ok = (rows < 0 || (int64_t)a->rows == rows) &&
             (cols < 0 || (cols == 0 ? a->hdr.ndim == 1 || a->cols == 1 : (int64_t)a->cols == cols));
    if (!ok) {
        mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                      "index: '%s' has shape (%zu, %zu), expected (%lld, %lld)", p, a->rows, a->cols,
                      (long long)rows, (long long)cols);
        mms_npy_close(a);
        return MMS_ERR_FORMAT;
    }
    return MMS_OK;
}

static mms_status get_int32(const mms_manifest_t *m, const char *key, int32_t *v) {
    int64_t x;
    MMS_CALL(mms_manifest_get_int(m, key, &x));
    MMS_CHECK(x >= 0 && x <= INT32_MAX, MMS_ERR_FORMAT, "index manifest: '%s' is %lld", key,
              (long long)x);
    *v = (int32_t)x;
    return MMS_OK;
}

void mms_index_segment_file(char *out, size_t cap, int64_t version, const char *base_name) {
    if (version == 0) snprintf(out, cap, "%s", base_name);
    else snprintf(out, cap, "add-%lld.%s", (long long)version, base_name);
}

int mms_index_is_removed(const mms_index_t *ix, int64_t node) {
    return ix->n_removed > 0 && mms_find_i64(ix->removed, ix->n_removed, node) >= 0;
}

int64_t mms_index_live_images(const mms_index_t *ix) { return ix->n_images - ix->n_removed; }

/* An intarr of triples under key (absent: none) into a copy *out, *n triples. */
static mms_status get_triples(const mms_manifest_t *m, const char *key, int64_t **out, int64_t *n) {
    *out = NULL;
    *n = 0;
    if (!mms_manifest_has(m, key)) return MMS_OK;
    const int64_t *a;
    size_t na;
    MMS_CALL(mms_manifest_get_intarr(m, key, &a, &na));
    MMS_CHECK(na % 3 == 0, MMS_ERR_FORMAT, "index manifest: '%s' has %zu values, not triples", key,
              na);
    MMS_CALL(mms_malloc((na + 1) * sizeof(int64_t), out));
    memcpy(*out, a, na * sizeof(int64_t));
    *n = (int64_t)(na / 3);
    return MMS_OK;
}

static mms_status load_removed(mms_index_t *ix, int64_t count) {
    if (count == 0) return MMS_OK;
    mms_npy_t a;
    MMS_CALL(open_shaped(ix->dir, MMS_INDEX_REMOVED_FILE, MMS_DT_I64, count, 0, &a));
    mms_status s = mms_malloc((size_t)count * sizeof(int64_t), &ix->removed);
    if (s == MMS_OK) memcpy(ix->removed, a.data, (size_t)count * sizeof(int64_t));
    mms_npy_close(&a);
    MMS_CALL(s);
    for (int64_t i = 0; i < count; i++)
        MMS_CHECK(ix->removed[i] >= 0 && ix->removed[i] < ix->n_images &&
                      (i == 0 || ix->removed[i] > ix->removed[i - 1]),
                  MMS_ERR_FORMAT, "index: %s/" MMS_INDEX_REMOVED_FILE
                  " row %lld: node %lld is not an ascending image node id", ix->dir,
                  (long long)i, (long long)ix->removed[i]);
    ix->n_removed = count;
    return MMS_OK;
}

static mms_status load_rows(const mms_index_t *ix, const char *name, int64_t rows, int32_t cols,
                            float **out) {
    MMS_CALL(mms_malloc((size_t)(rows > 0 ? rows : 1) * (size_t)cols * sizeof(float), out));
    if (rows == 0) return MMS_OK;
    mms_npy_t a;
    MMS_CALL(open_shaped(ix->dir, name, MMS_DT_F32, rows, cols, &a));
    memcpy(*out, a.data, (size_t)rows * (size_t)cols * sizeof(float));
    mms_npy_close(&a);
    return MMS_OK;
}

static mms_status load_tag_names(mms_index_t *ix) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, ix->dir, MMS_GRAPH_TAGS_FILE));
    MMS_CALL(mms_graph_tags_read(p, ix->n_tags, &ix->tag_names, NULL));
    MMS_CALL(mms_strmap_create((size_t)ix->n_tags + 16, &ix->tag_map));
    for (int64_t i = 0; i < ix->n_tags; i++) {
        int ins = 0;
        const char *name = ix->tag_names[i];
        MMS_CALL(mms_strmap_put(ix->tag_map, name, strlen(name), i, &ins, NULL));
    }
    return MMS_OK;
}

static mms_status load_pca(mms_index_t *ix) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, ix->dir, MMS_PCA_COMPONENTS_FILE));
    if (!mms_path_exists(p)) {
        ix->in_dim = ix->dim;
        return MMS_OK;
    }
    mms_npy_t c, m;
    MMS_CALL(open_shaped(ix->dir, MMS_PCA_COMPONENTS_FILE, MMS_DT_F32, -1, ix->dim, &c));
    int64_t din = (int64_t)c.rows;
    mms_status s = din >= 1 && din <= INT32_MAX ? MMS_OK : MMS_ERR_FORMAT;
    if (s == MMS_OK) s = mms_malloc((size_t)din * (size_t)ix->dim * sizeof(float), &ix->pca_comp);
    if (s == MMS_OK) memcpy(ix->pca_comp, c.data, (size_t)din * (size_t)ix->dim * sizeof(float));
    mms_npy_close(&c);
    MMS_CALL(s);
    MMS_CALL(open_shaped(ix->dir, MMS_PCA_MEAN_FILE, MMS_DT_F32, din, 0, &m));
    s = mms_malloc((size_t)din * sizeof(float), &ix->pca_mean);
    if (s == MMS_OK) memcpy(ix->pca_mean, m.data, (size_t)din * sizeof(float));
    mms_npy_close(&m);
    MMS_CALL(s);
    ix->in_dim = (int32_t)din;
    return MMS_OK;
}

mms_status mms_index_project(const mms_index_t *ix, const float *image, float *x) {
    /* build --normalize: the L2 normalisation of graph_build.c, before the PCA */
    float inv = 1.0f;
    if (ix->normalize) {
        double ss = 0;
        for (int32_t j = 0; j < ix->in_dim; j++) ss += (double)image[j] * image[j];
        inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    }
    if (!ix->pca_comp) {
        for (int32_t j = 0; j < ix->dim; j++) x[j] = ix->normalize ? image[j] * inv : image[j];
        return MMS_OK;
    }
    float *c;
    MMS_CALL(mms_malloc((size_t)ix->in_dim * sizeof(float), &c));
    /* centre first (as mms_pca_project): x @ W - mean @ W would cancel badly */
    for (int32_t j = 0; j < ix->in_dim; j++)
        c[j] = (ix->normalize ? image[j] * inv : image[j]) - ix->pca_mean[j];
    cblas_sgemv(CblasRowMajor, CblasTrans, ix->in_dim, ix->dim, 1.0f, ix->pca_comp, ix->dim, c, 1,
                0.0f, x, 1);
    free(c);
    return MMS_OK;
}

static mms_status load_catalog(mms_index_t *ix, const char *override) {
    const char *cdir = override ? override : ix->catalog_dir;
    mms_status s = mms_catalog_open(cdir, &ix->cat);
    if (s != MMS_OK) {
        mms_error_set(s, __FILE__, __LINE__, __func__,
                      "index '%s': cannot open its catalog '%s' (for result ids, tags and paths; "
                      "--index-catalog names another place)", ix->dir, cdir);
        return s;
    }
    mms_catalog_t *c = ix->cat;
    MMS_CHECK(c->checksum == ix->catalog_checksum, MMS_ERR_MISMATCH,
              "catalog '%s' changed since index '%s' was built from it (checksum %016llx, "
              "expected %016llx)", cdir, ix->dir, (unsigned long long)c->checksum,
              (unsigned long long)ix->catalog_checksum);
    MMS_CHECK(c->dim == ix->in_dim, MMS_ERR_MISMATCH,
              "catalog '%s' has feature width %d, index '%s' expects %d", cdir, c->dim, ix->dir,
              ix->in_dim);
    MMS_CHECK(!ix->knn_separate || c->knn_dim == ix->knn_dim, MMS_ERR_MISMATCH,
              "catalog '%s' has kNN width %d, index '%s' %d", cdir, c->knn_dim, ix->dir, ix->knn_dim);
    MMS_CHECK(c->ntags == ix->n_tags, MMS_ERR_MISMATCH,
              "catalog '%s' has %d tags, index '%s' %lld", cdir, c->ntags, ix->dir,
              (long long)ix->n_tags);
    MMS_CHECK(c->n_split[MMS_SPLIT_TRAIN] == ix->base_images, MMS_ERR_MISMATCH,
              "catalog '%s' has %lld training images, index '%s' %lld image nodes", cdir,
              (long long)c->n_split[MMS_SPLIT_TRAIN], ix->dir, (long long)ix->base_images);
    MMS_CALL(mms_malloc((size_t)(ix->base_images + 1) * sizeof(int64_t), &ix->node_row));
    MMS_CALL(mms_malloc((size_t)(c->n + 1) * sizeof(int64_t), &ix->row_node));
    MMS_CALL(mms_malloc((size_t)(c->tag_ptr[c->n] + 1) * sizeof(char *), &ix->row_tags));
    /* image nodes are the training images in catalog order (common/mms_graph.h) */
    int64_t v = 0;
    for (int64_t r = 0; r < c->n; r++) {
        ix->row_node[r] = c->split[r] == MMS_SPLIT_TRAIN ? v : -1;
        if (c->split[r] == MMS_SPLIT_TRAIN) ix->node_row[v++] = r;
    }
    for (int64_t e = 0; e < c->tag_ptr[c->n]; e++) ix->row_tags[e] = c->tag_names[c->tag_idx[e]];
    /* a JPEG query is usable when the catalog's features are this build's descriptor */
    mms_manifest_t *m = NULL;
    if (mms_manifest_read_dir(cdir, "catalog", MMS_CATALOG_FORMAT, &m) == MMS_OK) {
        const char *imp = NULL, *desc = NULL;
        if (mms_manifest_has(m, "importer") && mms_manifest_get_str(m, "importer", &imp) == MMS_OK)
            snprintf(ix->importer, sizeof ix->importer, "%s", imp);
        if (mms_manifest_has(m, "descriptor") &&
            mms_manifest_get_str(m, "descriptor", &desc) == MMS_OK)
            ix->jpeg = !strcmp(desc, MMS_DESCRIPTOR_NAME) && c->dim == mms_descriptor_dim();
        if (desc && !ix->jpeg)
            mms_log_warn("catalog '%s' was made with descriptor '%s', this build computes '%s': "
                         "JPEG queries are refused", cdir, desc, MMS_DESCRIPTOR_NAME);
    }
    mms_manifest_destroy(&m);
    mms_error_clear();
    return MMS_OK;
}

/* The catalogs of the images each version added (coordinator part). */
static mms_status load_added(mms_index_t *ix) {
    if (ix->n_additions == 0) return MMS_OK;
    MMS_CALL(mms_calloc((size_t)ix->n_additions, sizeof *ix->added, &ix->added));
    for (int64_t i = 0; i < ix->n_additions; i++) {
        struct mms_index_added *a = &ix->added[i];
        a->version = ix->additions[3 * i];
        a->first = ix->additions[3 * i + 1];
        a->count = ix->additions[3 * i + 2];
        char name[64], d[MMS_PATH_MAX];
        snprintf(name, sizeof name, MMS_INDEX_ADDED_DIR, (long long)a->version);
        MMS_CALL(mms_path_join(d, sizeof d, ix->dir, name));
        mms_status s = mms_catalog_open(d, &a->cat);
        if (s != MMS_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", mms_error_message());
            mms_error_set(s, __FILE__, __LINE__, __func__,
                          "index '%s': the catalog of version %lld's added images: %s", ix->dir,
                          (long long)a->version, why);
            return s;
        }
        const mms_catalog_t *c = a->cat;
        MMS_CHECK(c->n == a->count, MMS_ERR_FORMAT,
                  "index '%s': '%s' has %lld images, the manifest says version %lld added %lld",
                  ix->dir, d, (long long)c->n, (long long)a->version, (long long)a->count);
        MMS_CALL(mms_malloc((size_t)(c->tag_ptr[c->n] + 1) * sizeof(char *), &a->row_tags));
        for (int64_t e = 0; e < c->tag_ptr[c->n]; e++) a->row_tags[e] = c->tag_names[c->tag_idx[e]];
    }
    return MMS_OK;
}

/* The addition that holds node (>= base_images), or NULL. */
static const struct mms_index_added *added_of(const mms_index_t *ix, int64_t node) {
    int64_t lo = 0, hi = ix->n_additions - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        const struct mms_index_added *a = &ix->added[mid];
        if (node < a->first) hi = mid - 1;
        else if (node >= a->first + a->count) lo = mid + 1;
        else return a;
    }
    return NULL;
}

static void shard_close(mms_index_shard_t *sh) {
    mms_npy_close(&sh->f_ids);
    mms_npy_close(&sh->f_emb);
    mms_npy_close(&sh->f_h1);
    mms_npy_close(&sh->f_x);
    mms_npy_close(&sh->f_vis);
    mms_qmat_destroy(&sh->qemb);
    mms_qmat_destroy(&sh->qvis);
    free(sh->dead);
}

/* The int8 copy of dir/name's rows (in list order when list is not NULL); a
 * failure (a non-finite value) names the file. */
static mms_status qmat_named(const char *dir, const char *name, const float *x, int64_t n,
                             int32_t d, const int32_t *list, int32_t nlist, mms_qmat_t **out) {
    mms_status s = list ? mms_qmat_create_lists(x, n, d, list, nlist, out)
                        : mms_qmat_create(x, n, d, out);
    if (s != MMS_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", mms_error_message());
        mms_error_set(s, __FILE__, __LINE__, __func__, "index: %s/%s: %s", dir, name, why);
    }
    return s;
}

/* The vis and emb list of every row of a shard segment (n rows): from its
 * ivf_lists file when it has one (embed's base rows, compacted shards), else
 * assigned now from the centroids (the segments of `mmsage add`, small). */
static mms_status shard_lists(const mms_index_t *ix, const char *dir, int64_t version,
                              const mms_index_shard_t *sh, int32_t **lv, int32_t **le) {
    const int64_t n = sh->n;
    char f[64], p[MMS_PATH_MAX];
    mms_index_segment_file(f, sizeof f, version, MMS_IVF_LISTS_FILE);
    MMS_CALL(mms_path_join(p, sizeof p, dir, f));
    MMS_CALL(mms_malloc((size_t)n * sizeof **lv, lv));
    MMS_CALL(mms_malloc((size_t)n * sizeof **le, le));
    if (!mms_path_exists(p)) {
        MMS_CALL(mms_ivf_assign(ix->ivf_vis, ix->ivf_nlist, sh->vis, n, ix->knn_dim, *lv));
        return mms_ivf_assign(ix->ivf_emb, ix->ivf_nlist, sh->emb, n, ix->emb_dim, *le);
    }
    mms_npy_t a;
    MMS_CALL(open_shaped(dir, f, MMS_DT_I32, n, 2, &a));
    const int32_t *L = a.data;
    for (int64_t i = 0; i < n; i++) {
        if (L[2 * i] < 0 || L[2 * i] >= ix->ivf_nlist || L[2 * i + 1] < 0 ||
            L[2 * i + 1] >= ix->ivf_nlist) {
            mms_npy_close(&a);
            mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                          "index: %s row %lld names lists (%d, %d), outside [0, %d)", p,
                          (long long)i, L[2 * i], L[2 * i + 1], ix->ivf_nlist);
            return MMS_ERR_FORMAT;
        }
        (*lv)[i] = L[2 * i];
        (*le)[i] = L[2 * i + 1];
    }
    mms_npy_close(&a);
    return MMS_OK;
}

/* filter: 0 none, 1 the int8 copies, 2 also the 4-bit codes of the lists. */
static mms_status shard_open(const mms_index_t *ix, int s, int64_t version, int64_t rows,
                             int filter, mms_index_shard_t *sh) {
    char dir[MMS_PATH_MAX], name[32], f_ids[64], f_emb[64], f_h1[64], f_x[64], f_vis[64];
    snprintf(name, sizeof name, MMS_INDEX_SHARD_DIR, s);
    MMS_CALL(mms_path_join(dir, sizeof dir, ix->dir, name));
    mms_index_segment_file(f_ids, sizeof f_ids, version, MMS_INDEX_IDS_FILE);
    mms_index_segment_file(f_emb, sizeof f_emb, version, MMS_INDEX_EMB_FILE);
    mms_index_segment_file(f_h1, sizeof f_h1, version, MMS_INDEX_H1_FILE);
    mms_index_segment_file(f_x, sizeof f_x, version, MMS_INDEX_X_FILE);
    mms_index_segment_file(f_vis, sizeof f_vis, version, MMS_INDEX_VIS_FILE);
    sh->shard = s;
    sh->version = version;
    MMS_CALL(open_shaped(dir, f_ids, MMS_DT_I64, rows, 0, &sh->f_ids));
    int64_t n = (int64_t)sh->f_ids.rows;
    sh->n = n;
    sh->ids = sh->f_ids.data;
    MMS_CALL(open_shaped(dir, f_emb, MMS_DT_F32, n, ix->emb_dim, &sh->f_emb));
    MMS_CALL(open_shaped(dir, f_h1, MMS_DT_F32, n, ix->emb_dim, &sh->f_h1));
    MMS_CALL(open_shaped(dir, f_x, MMS_DT_F32, n, ix->dim, &sh->f_x));
    MMS_CALL(open_shaped(dir, f_vis, MMS_DT_F32, n, ix->knn_dim, &sh->f_vis));
    sh->emb = sh->f_emb.data;
    sh->h1 = sh->f_h1.data;
    sh->x = sh->f_x.data;
    sh->vis = sh->f_vis.data;
    for (int64_t i = 0; i < n; i++)
        MMS_CHECK(sh->ids[i] >= 0 && sh->ids[i] < ix->n_images && (i == 0 || sh->ids[i] > sh->ids[i - 1]),
                  MMS_ERR_FORMAT, "index: %s/%s row %lld: node %lld is not an ascending image node id",
                  dir, f_ids, (long long)i, (long long)sh->ids[i]);
    for (int64_t i = 0; ix->n_removed > 0 && i < n; i++) {
        if (!mms_index_is_removed(ix, sh->ids[i])) continue;
        if (!sh->dead) MMS_CALL(mms_calloc((size_t)n, 1, &sh->dead));
        sh->dead[i] = 1;
        sh->n_dead++;
    }
    int32_t *lv = NULL, *le = NULL; /* the rows' vis and emb lists (IVF) */
    if (filter && n > 0 && ix->ivf_nlist > 0) MMS_CALL(shard_lists(ix, dir, version, sh, &lv, &le));
    if (filter && n > 0) {
        mms_status qs = qmat_named(dir, f_emb, sh->emb, n, ix->emb_dim, le, ix->ivf_nlist, &sh->qemb);
        if (qs == MMS_OK)
            qs = qmat_named(dir, f_vis, sh->vis, n, ix->knn_dim, lv, ix->ivf_nlist, &sh->qvis);
        free(lv);
        free(le);
        MMS_CALL(qs);
        if (filter == 2 && sh->qemb->lptr) {
            MMS_CALL(mms_qmat_add_codes4(sh->qemb, sh->emb));
            MMS_CALL(mms_qmat_add_codes4(sh->qvis, sh->vis));
        }
        sh->qemb->dead = sh->qvis->dead = sh->dead;
        sh->qemb->ndead = sh->qvis->ndead = sh->n_dead;
    }
    return MMS_OK;
}

static mms_status open_all(mms_index_t *ix, const mms_index_open_t *o) {
    mms_manifest_t *m = NULL;
    MMS_CALL(mms_manifest_read_dir(ix->dir, "index", MMS_INDEX_FORMAT, &m));
    int64_t v;
    uint64_t u;
    const char *str;
    mms_status s = mms_manifest_get_int(m, "shards", &v);
    if (s == MMS_OK) {
        ix->shards = (int)v;
        if (v < 1 || v > 1 << 20) s = MMS_ERR_FORMAT;
    }
    if (s == MMS_OK) s = mms_manifest_get_int(m, "images", &ix->n_images);
    ix->base_images = ix->n_images;
    if (s == MMS_OK && mms_manifest_has(m, "base_images"))
        s = mms_manifest_get_int(m, "base_images", &ix->base_images);
    int64_t removed = 0;
    if (s == MMS_OK && mms_manifest_has(m, "removed")) s = mms_manifest_get_int(m, "removed", &removed);
    if (s == MMS_OK) s = get_triples(m, "segments", &ix->segments, &ix->n_segments);
    if (s == MMS_OK) s = get_triples(m, "additions", &ix->additions, &ix->n_additions);
    if (s == MMS_OK && (ix->base_images < 0 || ix->base_images > ix->n_images || removed < 0 ||
                        removed > ix->n_images)) {
        mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                      "index '%s': manifest has impossible image counts (images %lld, base_images "
                      "%lld, removed %lld)", ix->dir, (long long)ix->n_images,
                      (long long)ix->base_images, (long long)removed);
        s = MMS_ERR_FORMAT;
    }
    for (int64_t i = 0; s == MMS_OK && i < ix->n_segments; i++) {
        const int64_t *t = ix->segments + 3 * i;
        if (t[0] < 0 || t[0] >= ix->shards || t[1] < 1 || t[2] < 0) {
            mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                          "index '%s': manifest segment %lld is (shard %lld, version %lld, rows "
                          "%lld)", ix->dir, (long long)i, (long long)t[0], (long long)t[1],
                          (long long)t[2]);
            s = MMS_ERR_FORMAT;
        }
    }
    for (int64_t i = 0; s == MMS_OK && i < ix->n_additions; i++) {
        const int64_t *t = ix->additions + 3 * i;
        int64_t prev_end = i ? ix->additions[3 * i - 2] + ix->additions[3 * i - 1] : ix->base_images;
        if (t[0] < 1 || t[1] != prev_end || t[2] < 0 || t[1] + t[2] > ix->n_images) {
            mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                          "index '%s': manifest addition %lld is (version %lld, first node %lld, "
                          "count %lld)", ix->dir, (long long)i, (long long)t[0], (long long)t[1],
                          (long long)t[2]);
            s = MMS_ERR_FORMAT;
        }
    }
    if (s == MMS_OK) s = mms_manifest_get_int(m, "tags", &ix->n_tags);
    if (s == MMS_OK) s = get_int32(m, "dim", &ix->dim);
    if (s == MMS_OK) s = get_int32(m, "embedding_dim", &ix->emb_dim);
    if (s == MMS_OK) s = get_int32(m, "knn_dim", &ix->knn_dim);
    if (s == MMS_OK && (s = mms_manifest_get_str(m, "knn_space", &str)) == MMS_OK)
        ix->knn_separate = !strcmp(str, "knn_features");
    /* recorded relative to the index (and absolute): found from any working
     * directory, after moving both; needed only where --index-catalog is not given */
    if (s == MMS_OK && (s = mms_manifest_get_str(m, "catalog", &str)) == MMS_OK &&
        !mms_manifest_find_path(m, "catalog", ix->dir, ix->catalog_dir, sizeof ix->catalog_dir)) {
        snprintf(ix->catalog_dir, sizeof ix->catalog_dir, "%s", str);
        if (o->coordinator && !o->catalog) {
            char unused[MMS_PATH_MAX];
            s = mms_manifest_get_path(m, "catalog", ix->dir, unused, sizeof unused);
            if (s != MMS_OK)
                mms_log_error_at(__FILE__, __LINE__, __func__,
                                 "name the catalog with --index-catalog DIR (search, serve)");
        }
    }
    if (s == MMS_OK && (s = mms_manifest_get_uint(m, "catalog_checksum", &u)) == MMS_OK)
        ix->catalog_checksum = u;
    ix->version = 1;
    if (s == MMS_OK && mms_manifest_has(m, "version") &&
        (s = mms_manifest_get_int(m, "version", &ix->version)) == MMS_OK && ix->version < 1) {
        mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                      "index '%s': manifest version is %lld", ix->dir, (long long)ix->version);
        s = MMS_ERR_FORMAT;
    }
    if (s == MMS_OK && mms_manifest_has(m, "ivf_nlist") &&
        (s = get_int32(m, "ivf_nlist", &ix->ivf_nlist)) == MMS_OK && ix->ivf_nlist > MMS_IVF_MAX_NLIST) {
        mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                      "index '%s': manifest ivf_nlist is %d", ix->dir, (int)ix->ivf_nlist);
        s = MMS_ERR_FORMAT;
    }
    if (s == MMS_OK && mms_manifest_has(m, "normalize") &&
        (s = mms_manifest_get_int(m, "normalize", &v)) == MMS_OK)
        ix->normalize = v != 0;
    if (s == MMS_OK && (ix->n_images < 0 || ix->n_tags < 0 || ix->dim < 1 || ix->emb_dim < 1 ||
                        ix->knn_dim < 1)) {
        mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                      "index '%s': manifest has impossible sizes", ix->dir);
        s = MMS_ERR_FORMAT;
    }
    /* every file this rank reads is checked against the manifest first: the
     * coordinator the top-level files, a worker its shards' (docs/formats.md) */
    if (s == MMS_OK && mms_manifest_recorded_files(m) == 0)
        mms_log_warn("index '%s' records no checksums (written by an older mmsage): its files "
                     "are not verified", ix->dir);
    if (s == MMS_OK && o->coordinator) s = mms_manifest_verify_files(m, ix->dir, NULL, NULL);
    for (int sh = o->worker; s == MMS_OK && o->worker >= 0 && o->nworkers >= 1 && sh < ix->shards;
         sh += o->nworkers) {
        char name[32];
        snprintf(name, sizeof name, MMS_INDEX_SHARD_DIR, sh);
        s = mms_manifest_verify_files(m, ix->dir, name, NULL);
    }
    /* the removed list masks rows on every rank (the coordinator checked it above) */
    if (s == MMS_OK && removed > 0 && !o->coordinator && mms_manifest_recorded_files(m) > 0)
        s = mms_manifest_verify_file(m, ix->dir, MMS_INDEX_REMOVED_FILE);
    /* a worker with the filter reads the centroids too (segments' lists) */
    if (s == MMS_OK && ix->ivf_nlist > 0 && !o->coordinator && o->worker >= 0 && o->filter &&
        mms_manifest_recorded_files(m) > 0) {
        s = mms_manifest_verify_file(m, ix->dir, MMS_IVF_VIS_CENTROIDS_FILE);
        if (s == MMS_OK) s = mms_manifest_verify_file(m, ix->dir, MMS_IVF_EMB_CENTROIDS_FILE);
    }
    if (s == MMS_OK) s = load_removed(ix, removed);
    if (s == MMS_OK && o->coordinator) s = mms_model_read(ix->dir, m, &ix->model);
    mms_manifest_destroy(&m);
    MMS_CALL(s);
    MMS_CHECK(!o->filter || (ix->emb_dim <= MMS_QMAT_MAX_DIM && ix->knn_dim <= MMS_QMAT_MAX_DIM),
              MMS_ERR_ARG, "index '%s': rows wider than %d: run without the int8 filter", ix->dir,
              MMS_QMAT_MAX_DIM);
    ix->in_dim = ix->dim;
    if (ix->ivf_nlist > 0 && (o->coordinator || (o->worker >= 0 && o->filter))) {
        /* the coordinator probes with them; workers assign segments' rows */
        MMS_CALL(load_rows(ix, MMS_IVF_VIS_CENTROIDS_FILE, ix->ivf_nlist, ix->knn_dim, &ix->ivf_vis));
        MMS_CALL(load_rows(ix, MMS_IVF_EMB_CENTROIDS_FILE, ix->ivf_nlist, ix->emb_dim, &ix->ivf_emb));
        if (o->coordinator && o->filter) {
            MMS_CALL(qmat_named(ix->dir, MMS_IVF_VIS_CENTROIDS_FILE, ix->ivf_vis, ix->ivf_nlist,
                                ix->knn_dim, NULL, 0, &ix->ivf_qvis));
            MMS_CALL(qmat_named(ix->dir, MMS_IVF_EMB_CENTROIDS_FILE, ix->ivf_emb, ix->ivf_nlist,
                                ix->emb_dim, NULL, 0, &ix->ivf_qemb));
        }
    }
    if (o->coordinator) {
        MMS_CALL(load_pca(ix));
        MMS_CALL(load_rows(ix, MMS_INDEX_TAGS_EMB_FILE, ix->n_tags, ix->emb_dim, &ix->tag_emb));
        MMS_CALL(load_rows(ix, MMS_INDEX_TAGS_H1_FILE, ix->n_tags, ix->emb_dim, &ix->tag_h1));
        MMS_CALL(load_tag_names(ix));
        MMS_CALL(load_catalog(ix, o->catalog));
        MMS_CALL(load_added(ix));
    }
    if (o->worker >= 0) {
        MMS_CHECK(o->nworkers >= 1 && o->worker < o->nworkers, MMS_ERR_ARG,
                  "index: worker %d of %d", o->worker, o->nworkers);
        int cnt = 0;
        for (int sh = o->worker; sh < ix->shards; sh += o->nworkers) cnt++;
        for (int64_t i = 0; i < ix->n_segments; i++)
            cnt += (ix->segments[3 * i] - o->worker) % o->nworkers == 0;
        MMS_CALL(mms_calloc((size_t)(cnt + 1), sizeof *ix->sh, &ix->sh));
        MMS_CHECK(o->list_scan >= MMS_LIST_SCAN_AUTO && o->list_scan <= MMS_LIST_SCAN_INT8,
                  MMS_ERR_ARG, "index: list scan %d", o->list_scan);
        ix->list_scan = o->list_scan;
        const int filter = o->filter ? (o->list_scan != MMS_LIST_SCAN_INT8 ? 2 : 1) : 0;
        for (int sh = o->worker; sh < ix->shards; sh += o->nworkers) {
            /* the base rows, then the segments of the versions that added to it */
            MMS_CALL(shard_open(ix, sh, 0, -1, filter, &ix->sh[ix->nshard]));
            ix->n_local += ix->sh[ix->nshard].n;
            ix->nshard++;
            for (int64_t i = 0; i < ix->n_segments; i++) {
                const int64_t *t = ix->segments + 3 * i;
                if (t[0] != sh) continue;
                MMS_CALL(shard_open(ix, sh, t[1], t[2], filter, &ix->sh[ix->nshard]));
                ix->n_local += ix->sh[ix->nshard].n;
                ix->nshard++;
            }
        }
    }
    return MMS_OK;
}

mms_status mms_index_open(const char *dir, const mms_index_open_t *o, mms_index_t **out) {
    *out = NULL;
    MMS_CHECK(dir && o, MMS_ERR_ARG, "index open: no directory");
    MMS_CHECK(strlen(dir) < MMS_PATH_MAX, MMS_ERR_ARG, "path too long: %s", dir);
    MMS_CHECK(mms_path_is_dir(dir), MMS_ERR_IO, "index '%s' is not a directory", dir);
    mms_index_t *ix;
    MMS_CALL(mms_calloc(1, sizeof *ix, &ix));
    snprintf(ix->dir, sizeof ix->dir, "%s", dir);
    mms_status s = open_all(ix, o);
    if (s != MMS_OK) {
        mms_index_close(&ix);
        return s;
    }
    *out = ix;
    return MMS_OK;
}

void mms_index_close(mms_index_t **ixp) {
    if (!ixp || !*ixp) return;
    mms_index_t *ix = *ixp;
    mms_sage_model_destroy(&ix->model);
    free(ix->tag_emb);
    free(ix->tag_h1);
    mms_graph_tags_free(&ix->tag_names, ix->n_tags);
    mms_strmap_destroy(&ix->tag_map);
    free(ix->pca_mean);
    free(ix->pca_comp);
    free(ix->ivf_vis);
    free(ix->ivf_emb);
    mms_qmat_destroy(&ix->ivf_qvis);
    mms_qmat_destroy(&ix->ivf_qemb);
    mms_catalog_close(&ix->cat);
    free(ix->node_row);
    free(ix->row_node);
    free(ix->row_tags);
    for (int64_t i = 0; ix->added && i < ix->n_additions; i++) {
        mms_catalog_close(&ix->added[i].cat);
        free(ix->added[i].row_tags);
    }
    free(ix->added);
    free(ix->additions);
    free(ix->segments);
    free(ix->removed);
    for (int i = 0; i < ix->nshard; i++) shard_close(&ix->sh[i]);
    free(ix->sh);
    free(ix);
    *ixp = NULL;
}

int32_t mms_index_tag_lookup(const mms_index_t *ix, const char *name) {
    int64_t v;
    if (!ix->tag_map || !mms_strmap_get(ix->tag_map, name, strlen(name), &v)) return -1;
    return (int32_t)v;
}

int64_t mms_index_node_of(const mms_index_t *ix, const char *id) {
    if (!ix->cat) return -1;
    /* newest first: an id removed and added again is its newest node */
    for (int64_t i = ix->n_additions - 1; i >= 0; i--) {
        int64_t r = mms_catalog_id_lookup(ix->added[i].cat, id);
        if (r >= 0 && !mms_index_is_removed(ix, ix->added[i].first + r)) return ix->added[i].first + r;
    }
    int64_t r = mms_catalog_id_lookup(ix->cat, id), node = r < 0 ? -1 : ix->row_node[r];
    return node >= 0 && mms_index_is_removed(ix, node) ? -1 : node;
}

/* The catalog and row that decorate node. */
static const mms_catalog_t *node_source(const mms_index_t *ix, int64_t node, int64_t *row,
                                        const char ***row_tags) {
    if (node < ix->base_images) {
        *row = ix->node_row[node];
        *row_tags = ix->row_tags;
        return ix->cat;
    }
    const struct mms_index_added *a = added_of(ix, node);
    *row = node - a->first;
    *row_tags = a->row_tags;
    return a->cat;
}

const char *mms_index_image_id(const mms_index_t *ix, int64_t node) {
    int64_t r;
    const char **rt;
    const mms_catalog_t *c = node_source(ix, node, &r, &rt);
    return c->ids[r];
}

const char *const *mms_index_image_tags(const mms_index_t *ix, int64_t node, int *ntags) {
    int64_t r;
    const char **rt;
    const mms_catalog_t *c = node_source(ix, node, &r, &rt);
    *ntags = (int)(c->tag_ptr[r + 1] - c->tag_ptr[r]);
    return rt + c->tag_ptr[r];
}

const char *mms_index_image_path(const mms_index_t *ix, int64_t node) {
    int64_t r;
    const char **rt;
    const mms_catalog_t *c = node_source(ix, node, &r, &rt);
    return c->paths ? c->paths[r] : NULL;
}

int64_t mms_index_shard_row(const mms_index_shard_t *sh, int64_t node) {
    return mms_find_i64(sh->ids, sh->n, node);
}

/* ---------------------------------------------------------------- writing */

static mms_status write_rows(const char *dir, const char *name, const float *x, int64_t n,
                             int32_t d) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, dir, name));
    return mms_npy_write(p, MMS_DT_F32, x, (size_t)n, (size_t)d);
}

mms_status mms_index_write_shard(const char *dir, int shard, const mms_index_rows_t *r) {
    char sdir[MMS_PATH_MAX], name[64], ip[MMS_PATH_MAX];
    snprintf(name, sizeof name, MMS_INDEX_SHARD_DIR, shard);
    MMS_CALL(mms_path_join(sdir, sizeof sdir, dir, name));
    MMS_CALL(mms_mkdir_p(sdir));
    MMS_CALL(mms_path_join(ip, sizeof ip, sdir, MMS_INDEX_IDS_FILE));
    MMS_CALL(mms_npy_write(ip, MMS_DT_I64, r->ids, (size_t)r->n, 0));
    MMS_CALL(write_rows(sdir, MMS_INDEX_EMB_FILE, r->emb, r->n, r->emb_dim));
    MMS_CALL(write_rows(sdir, MMS_INDEX_H1_FILE, r->h1, r->n, r->emb_dim));
    MMS_CALL(write_rows(sdir, MMS_INDEX_X_FILE, r->x, r->n, r->dim));
    return write_rows(sdir, MMS_INDEX_VIS_FILE, r->vis, r->n, r->knn_dim);
}

/* The index manifest: the model's configuration plus provenance. */
static mms_status write_manifest(const char *dir, const mms_index_top_t *t) {
    mms_manifest_t *mm = NULL;
    MMS_CALL(mms_manifest_read_dir(t->model, "model", MMS_MODEL_FORMAT, &mm));
    strcpy(mm->kind, "index");
    mm->format = MMS_INDEX_FORMAT;
    mms_manifest_set_int(mm, "shards", t->shards);
    mms_manifest_set_int(mm, "knn_dim", t->knn_dim);
    mms_manifest_set_str(mm, "knn_space", t->knn_space);
    mms_manifest_set_path(mm, "catalog", t->catalog, t->out);
    mms_manifest_set_uint(mm, "catalog_checksum", t->catalog_checksum);
    mms_manifest_set_path(mm, "model", t->model, t->out);
    mms_manifest_set_int(mm, "embedding_dim", t->emb_dim);
    mms_manifest_set_int(mm, "normalize", t->normalize);
    if (t->ivf_nlist > 0) mms_manifest_set_int(mm, "ivf_nlist", t->ivf_nlist);
    mms_status s = mms_manifest_seal_dir(mm, dir, NULL);
    mms_manifest_destroy(&mm);
    return s;
}

mms_status mms_index_write_top(const char *dir, const mms_index_top_t *t) {
    MMS_CALL(write_rows(dir, MMS_INDEX_TAGS_EMB_FILE, t->tag_emb, t->n_tags, t->emb_dim));
    MMS_CALL(write_rows(dir, MMS_INDEX_TAGS_H1_FILE, t->tag_h1, t->n_tags, t->emb_dim));
    MMS_CALL(mms_model_copy_arrays(t->model, dir));
    MMS_CALL(mms_file_copy(t->graph, dir, MMS_GRAPH_TAGS_FILE));
    const char *pca[] = {MMS_PCA_MEAN_FILE, MMS_PCA_COMPONENTS_FILE, MMS_PCA_EIGVALS_FILE};
    for (int i = 0; i < 3; i++) {
        char gp[MMS_PATH_MAX];
        MMS_CALL(mms_path_join(gp, sizeof gp, t->graph, pca[i]));
        if (mms_path_exists(gp)) MMS_CALL(mms_file_copy(t->graph, dir, pca[i]));
    }
    return write_manifest(dir, t);
}
