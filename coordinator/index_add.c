/* index_add.c: `mmsage add` (index_add.h): the new images embedded through
 * the query engine, placed in shards, written as a new version
 * (worker/index_version.h). */
#define _GNU_SOURCE
#include "index_add.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "index_version.h"
#include "mms_array.h"
#include "mms_catalog.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_npy.h"
#include "mms_strmap.h"

#define ADD_BATCH_MAX 65536 /* images per engine call (it cuts them into rounds) */

void mms_index_add_params_default(mms_index_add_params_t *p) {
    memset(p, 0, sizeof *p);
    p->balance = 1.05;
    p->batch = 256;
    p->filter = 1;
}

/* The new images' rows, as they will be stored (n of each). */
typedef struct {
    int64_t n;
    float *z, *h1, *x, *vis;
    int64_t *nbrs; /* n x nn node ids, -1 padding */
    int32_t nn;
    int *shard;    /* n: where each goes */
} rows_t;

static void rows_free(rows_t *r) {
    free(r->z);
    free(r->h1);
    free(r->x);
    free(r->vis);
    free(r->nbrs);
    free(r->shard);
}

/* The catalog must fit the index and bring only new ids. */
static mms_status check_catalog(const mms_index_t *ix, const mms_catalog_t *c) {
    MMS_CHECK(c->n > 0, MMS_ERR_ARG, "add: catalog '%s' has no images", c->dir);
    MMS_CHECK(c->dim == ix->in_dim, MMS_ERR_MISMATCH,
              "add: catalog '%s' has feature width %d, index '%s' expects %d", c->dir, c->dim,
              ix->dir, ix->in_dim);
    MMS_CHECK(!ix->knn_separate || c->knn_dim == ix->knn_dim, MMS_ERR_MISMATCH,
              "add: index '%s' finds neighbours in a kNN space of %d floats; catalog '%s' has %s",
              ix->dir, ix->knn_dim, c->dir, c->knn_dim ? "another width" : "no knn_features.npy");
    for (int64_t r = 0; r < c->n; r++) {
        MMS_CHECK(mms_catalog_id_lookup(c, c->ids[r]) == r, MMS_ERR_ARG,
                  "add: catalog '%s': id '%s' (images.tsv line %lld) appears twice", c->dir,
                  c->ids[r], (long long)r + 1);
        MMS_CHECK(mms_index_node_of(ix, c->ids[r]) < 0, MMS_ERR_ARG,
                  "add: catalog '%s': id '%s' (images.tsv line %lld) is already an image of index "
                  "'%s' (remove it first to replace it)", c->dir, c->ids[r], (long long)r + 1,
                  ix->dir);
    }
    return MMS_OK;
}

/* Embed rows [0, c->n) through the engine, batch by batch (coordinator). */
static mms_status embed_all(mms_engine_t *e, const mms_index_add_params_t *p,
                            const mms_catalog_t *c, rows_t *R, mms_index_add_report_t *rep) {
    const mms_index_t *ix = mms_engine_index(e);
    const int32_t H2 = ix->emb_dim, D = ix->dim, KD = ix->knn_dim;
    const int B = p->batch;
    mms_request_t *reqs = NULL;
    mms_response_t *resps = NULL;
    uint8_t *connect = NULL;
    const char **tagv = NULL;
    mms_status s = mms_calloc((size_t)B, sizeof *reqs, &reqs);
    if (s == MMS_OK) s = mms_calloc((size_t)B, sizeof *resps, &resps);
    if (s == MMS_OK) s = mms_calloc((size_t)B, 1, &connect);
    if (s == MMS_OK) s = mms_malloc((size_t)B * MMS_PROTO_MAX_TAGS * sizeof *tagv + 1, &tagv);
    for (int64_t i0 = 0; s == MMS_OK && i0 < c->n; i0 += B) {
        int nb = (int)(c->n - i0 < B ? c->n - i0 : B);
        for (int j = 0; j < nb; j++) {
            int64_t r = i0 + j;
            mms_request_t *q = &reqs[j];
            mms_request_init(q);
            q->op = MMS_OP_PREDICT_TAGS;
            q->tag_k = 1;
            if (p->neighbors > 0) q->neighbors = p->neighbors;
            q->image = c->x + (size_t)r * c->dim;
            q->image_dim = c->dim;
            if (ix->knn_separate) {
                q->image_knn = c->knn_x + (size_t)r * c->knn_dim;
                q->image_knn_dim = c->knn_dim;
            }
            const char **tv = tagv + (size_t)j * MMS_PROTO_MAX_TAGS;
            int known = 0, nt = 0;
            for (int64_t t = c->tag_ptr[r]; t < c->tag_ptr[r + 1] && nt < MMS_PROTO_MAX_TAGS; t++) {
                const char *w = c->tag_names[c->tag_idx[t]];
                if (mms_index_tag_lookup(ix, w) < 0) continue; /* a word the model never saw */
                tv[nt++] = w;
                known++;
            }
            q->tags = tv;
            q->ntags = nt;
            connect[j] = known ? MMS_ENGINE_CONNECT_BOTH : MMS_ENGINE_CONNECT_IMAGE;
            rep->with_tags += known > 0;
            mms_response_init(&resps[j], q);
            s = mms_response_reserve(&resps[j], 0, 1);
            if (s != MMS_OK) break;
        }
        mms_engine_trace_t tr = {.z = R->z + (size_t)i0 * H2, .h1 = R->h1 + (size_t)i0 * H2,
                                 .x = R->x + (size_t)i0 * D, .nbrs = R->nbrs + (size_t)i0 * R->nn,
                                 .max_nbrs = R->nn};
        if (s == MMS_OK) s = mms_engine_answer(e, reqs, connect, nb, resps, &tr);
        for (int j = 0; s == MMS_OK && j < nb; j++)
            if (!resps[j].ok) {
                mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                              "add: catalog '%s': image '%s' (images.tsv line %lld): %s", c->dir,
                              c->ids[i0 + j], (long long)(i0 + j) + 1, resps[j].error_message);
                s = MMS_ERR_ARG;
            }
        for (int j = 0; j < nb; j++) mms_response_free(&resps[j]);
        if (s == MMS_OK && (i0 / B) % 16 == 15)
            mms_log_info("add: %lld of %lld images embedded", (long long)(i0 + nb),
                         (long long)c->n);
    }
    /* the kNN vector as the index stores it: L2-normalised (zeros stay zeros) */
    for (int64_t r = 0; s == MMS_OK && r < c->n; r++) {
        const float *src = ix->knn_separate ? c->knn_x + (size_t)r * c->knn_dim
                                            : c->x + (size_t)r * c->dim;
        double ss = 0;
        for (int32_t j = 0; j < KD; j++) ss += (double)src[j] * src[j];
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (int32_t j = 0; j < KD; j++) R->vis[(size_t)r * KD + j] = src[j] * inv;
    }
    free(reqs);
    free(resps);
    free(connect);
    free(tagv);
    return s;
}

/* shard_of[node] for every node id of the index (-1: removed), from the
 * shards' id files (base and segments). */
static mms_status node_shards(const mms_index_t *ix, int32_t **out) {
    int32_t *so;
    MMS_CALL(mms_malloc((size_t)(ix->n_images + 1) * sizeof *so, &so));
    for (int64_t i = 0; i < ix->n_images; i++) so[i] = -1;
    mms_status s = MMS_OK;
    for (int sh = 0; s == MMS_OK && sh < ix->shards; sh++) {
        for (int64_t i = -1; s == MMS_OK && i < ix->n_segments; i++) {
            if (i >= 0 && ix->segments[3 * i] != sh) continue;
            char d[MMS_PATH_MAX], name[32], f[64], p[MMS_PATH_MAX];
            snprintf(name, sizeof name, MMS_INDEX_SHARD_DIR, sh);
            mms_index_segment_file(f, sizeof f, i < 0 ? 0 : ix->segments[3 * i + 1],
                                   MMS_INDEX_IDS_FILE);
            s = mms_path_join(d, sizeof d, ix->dir, name);
            if (s == MMS_OK) s = mms_path_join(p, sizeof p, d, f);
            mms_npy_t a;
            if (s == MMS_OK) s = mms_npy_open(p, MMS_DT_I64, &a);
            if (s != MMS_OK) break;
            const int64_t *ids = a.data;
            for (size_t r = 0; r < a.rows; r++)
                if (ids[r] >= 0 && ids[r] < ix->n_images && !mms_index_is_removed(ix, ids[r]))
                    so[ids[r]] = sh;
            mms_npy_close(&a);
        }
    }
    if (s != MMS_OK) {
        free(so);
        return s;
    }
    *out = so;
    return MMS_OK;
}

/* Each new image to the shard holding most of its neighbours, under the cap. */
static mms_status place(const mms_index_t *ix, const mms_index_add_params_t *p, rows_t *R,
                        mms_index_add_report_t *rep) {
    const int S = ix->shards;
    int32_t *so = NULL;
    int64_t *size = NULL, *cnt = NULL;
    MMS_CALL(node_shards(ix, &so));
    mms_status s = mms_calloc((size_t)S, sizeof *size, &size);
    if (s == MMS_OK) s = mms_calloc((size_t)S, sizeof *cnt, &cnt);
    if (s == MMS_OK) s = mms_malloc((size_t)(R->n + 1) * sizeof *R->shard, &R->shard);
    if (s != MMS_OK) goto done;
    int64_t live = 0;
    for (int64_t v = 0; v < ix->n_images; v++)
        if (so[v] >= 0) {
            size[so[v]]++;
            live++;
        }
    double capd = ceil(p->balance * (double)(live + R->n) / S);
    int64_t cap = (int64_t)capd;
    for (int64_t i = 0; i < R->n; i++) {
        memset(cnt, 0, (size_t)S * sizeof *cnt);
        for (int32_t j = 0; j < R->nn; j++) {
            int64_t u = R->nbrs[(size_t)i * R->nn + j];
            if (u >= 0 && u < ix->n_images && so[u] >= 0) cnt[so[u]]++;
        }
        int best = -1, free_best = -1;
        for (int sh = 0; sh < S; sh++) {
            if (best < 0 || cnt[sh] > cnt[best] || (cnt[sh] == cnt[best] && size[sh] < size[best]))
                best = sh;
            if (size[sh] < cap &&
                (free_best < 0 || cnt[sh] > cnt[free_best] ||
                 (cnt[sh] == cnt[free_best] && size[sh] < size[free_best])))
                free_best = sh;
        }
        int pick = free_best >= 0 ? free_best : best;
        rep->moved_by_cap += pick != best;
        R->shard[i] = pick;
        size[pick]++;
        if (pick < 64) rep->per_shard[pick]++;
    }
done:
    free(so);
    free(size);
    free(cnt);
    return s;
}

/* Words of the new images that the index has no tag node for: new_tags.tsv
 * (word, images) in the version. */
static mms_status new_tags(const mms_index_t *ix, const mms_catalog_t *c, mms_index_version_t *v,
                           mms_index_add_report_t *rep) {
    int64_t *images = NULL;
    MMS_CALL(mms_calloc((size_t)c->ntags + 1, sizeof *images, &images));
    for (int64_t t = 0; t < c->tag_ptr[c->n]; t++)
        if (mms_index_tag_lookup(ix, c->tag_names[c->tag_idx[t]]) < 0) images[c->tag_idx[t]]++;
    char p[MMS_PATH_MAX], tmp[MMS_PATH_MAX];
    FILE *f = NULL;
    mms_status s = mms_path_join(p, sizeof p, v->stage, "new_tags.tsv");
    if (s == MMS_OK) s = mms_file_tmpname(p, tmp, sizeof tmp);
    if (s == MMS_OK) s = mms_fopen(tmp, "w", &f);
    if (s == MMS_OK) fprintf(f, "word\timages\n");
    for (int32_t t = 0; s == MMS_OK && t < c->ntags; t++)
        if (images[t] > 0) {
            fprintf(f, "%s\t%lld\n", c->tag_names[t], (long long)images[t]);
            rep->new_tag_words++;
        }
    if (f) {
        mms_status s2 = mms_fclose(&f, tmp);
        if (s == MMS_OK) s = s2;
    }
    if (s == MMS_OK) s = mms_file_commit(tmp, p);
    free(images);
    return s;
}

/* The new version: parent's files linked, the new rows as segments. */
static mms_status write_version(const mms_index_t *ix, const mms_index_add_params_t *p,
                                const mms_catalog_t *c, const rows_t *R,
                                mms_index_add_report_t *rep) {
    const int32_t H2 = ix->emb_dim, D = ix->dim, KD = ix->knn_dim;
    mms_index_version_t v;
    MMS_CALL(mms_index_version_begin(ix->dir, p->out, p->force, &v));
    rep->version = v.version;
    rep->first_node = ix->n_images;
    mms_status s = mms_index_version_add_catalog(&v, c->dir, ix->n_images, c->n);
    int64_t *ids = NULL;
    float *z = NULL, *h1 = NULL, *x = NULL, *vis = NULL;
    if (s == MMS_OK) s = mms_malloc((size_t)(R->n + 1) * sizeof *ids, &ids);
    if (s == MMS_OK) s = mms_malloc((size_t)(R->n + 1) * H2 * sizeof *z, &z);
    if (s == MMS_OK) s = mms_malloc((size_t)(R->n + 1) * H2 * sizeof *h1, &h1);
    if (s == MMS_OK) s = mms_malloc((size_t)(R->n + 1) * D * sizeof *x, &x);
    if (s == MMS_OK) s = mms_malloc((size_t)(R->n + 1) * KD * sizeof *vis, &vis);
    for (int sh = 0; s == MMS_OK && sh < ix->shards; sh++) {
        int64_t m = 0;
        for (int64_t i = 0; i < R->n; i++) {
            if (R->shard[i] != sh) continue;
            ids[m] = ix->n_images + i;
            memcpy(z + (size_t)m * H2, R->z + (size_t)i * H2, (size_t)H2 * sizeof(float));
            memcpy(h1 + (size_t)m * H2, R->h1 + (size_t)i * H2, (size_t)H2 * sizeof(float));
            memcpy(x + (size_t)m * D, R->x + (size_t)i * D, (size_t)D * sizeof(float));
            memcpy(vis + (size_t)m * KD, R->vis + (size_t)i * KD, (size_t)KD * sizeof(float));
            m++;
        }
        if (m == 0) continue;
        mms_index_rows_t rows = {.n = m, .ids = ids, .emb = z, .h1 = h1, .x = x, .vis = vis,
                                 .emb_dim = H2, .dim = D, .knn_dim = KD};
        s = mms_index_version_add_segment(&v, sh, &rows);
    }
    if (s == MMS_OK) s = new_tags(ix, c, &v, rep);
    rep->linked = v.linked;
    rep->written = v.written;
    free(ids);
    free(z);
    free(h1);
    free(x);
    free(vis);
    if (s == MMS_OK) return mms_index_version_commit(&v);
    mms_index_version_abort(&v);
    return s;
}

static mms_status coordinate(mms_engine_t *e, const mms_index_add_params_t *p,
                             mms_index_add_report_t *rep) {
    const mms_index_t *ix = mms_engine_index(e);
    mms_catalog_t *c = NULL;
    MMS_CALL(mms_catalog_open(p->catalog, &c));
    rows_t R;
    memset(&R, 0, sizeof R);
    R.n = c->n;
    R.nn = p->neighbors > 0 ? p->neighbors : 5;
    if (p->neighbors <= 0) {
        mms_request_t q;
        mms_request_init(&q);
        R.nn = q.neighbors;
    }
    const int32_t H2 = ix->emb_dim, D = ix->dim, KD = ix->knn_dim;
    mms_status s = check_catalog(ix, c);
    if (s == MMS_OK) s = mms_malloc((size_t)(R.n + 1) * H2 * sizeof(float), &R.z);
    if (s == MMS_OK) s = mms_malloc((size_t)(R.n + 1) * H2 * sizeof(float), &R.h1);
    if (s == MMS_OK) s = mms_malloc((size_t)(R.n + 1) * D * sizeof(float), &R.x);
    if (s == MMS_OK) s = mms_malloc((size_t)(R.n + 1) * KD * sizeof(float), &R.vis);
    if (s == MMS_OK) s = mms_malloc((size_t)(R.n + 1) * R.nn * sizeof(int64_t), &R.nbrs);
    double t0 = mms_now();
    if (s == MMS_OK) s = embed_all(e, p, c, &R, rep);
    rep->embed_seconds = mms_now() - t0;
    rep->shards = ix->shards;
    if (s == MMS_OK) s = place(ix, p, &R, rep);
    double t1 = mms_now();
    if (s == MMS_OK) s = write_version(ix, p, c, &R, rep);
    rep->write_seconds = mms_now() - t1;
    rep->added = s == MMS_OK ? R.n : 0;
    rows_free(&R);
    mms_catalog_close(&c);
    return s;
}

mms_status mms_index_add(const mms_index_add_params_t *p, MPI_Comm comm, mms_index_add_report_t *rep) {
    memset(rep, 0, sizeof *rep);
    mms_status s = p->index && p->catalog && p->out && p->batch >= 1 &&
                           p->batch <= ADD_BATCH_MAX && p->balance >= 1.0
                       ? MMS_OK
                       : MMS_ERR_ARG;
    if (s != MMS_OK)
        mms_error_set(s, __FILE__, __LINE__, __func__,
                      "add: index, catalog and out are needed, batch in [1, %d], balance >= 1",
                      ADD_BATCH_MAX);
    MMS_CALL(mms_mpi_agree(s, comm));
    mms_engine_params_t ep;
    mms_engine_params_default(&ep);
    ep.index = p->index;
    ep.mode = MMS_ENGINE_SEARCH;
    ep.filter = p->filter;
    ep.exact = 1; /* an added image's neighbours are its exact ones, at any index size */
    mms_engine_t *e = NULL;
    MMS_CALL(mms_engine_open(&ep, comm, &e));
    if (mms_engine_is_coordinator(e)) {
        s = coordinate(e, p, rep);
        mms_status st = mms_engine_stop(e); /* always: the workers wait for it */
        if (s == MMS_OK) s = st;
    } else {
        s = mms_engine_worker_loop(e);
    }
    mms_engine_close(&e);
    return mms_mpi_agree(s, comm);
}
