/* engine_query.c: the coordinator's share of a query on one process (engine.h,
 * layer 2): validation against the index, the query node's inputs, inductive
 * embedding, slider fusion, tag prediction, result decoration. No MPI: the
 * neighbours' rows come from the caller (engine.c gathers them from the shards).
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_descriptor.h"
#include "engine.h"
#include "mms_log.h"
#include "mms_topk.h"

static const char *const k_connect[] = {"image", "tags", "both"};

const char *mms_engine_connect_name(int c) { return c >= 0 && c <= 2 ? k_connect[c] : "?"; }

int mms_engine_connect_parse(const char *s) {
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, k_connect[i])) return i;
    return -1;
}

void mms_query_free(mms_query_t *q) {
    if (!q) return;
    free(q->tag);
    free(q->neg);
    free(q->xq);
    free(q->kq);
    free(q->nb_id);
    free(q->nb_score);
    free(q->nb_x);
    free(q->nb_h1);
    free(q->z);
    free(q->h1);
    free(q->E);
    free(q->zc);
    memset(q, 0, sizeof *q);
}

/* Request-level failure: the response carries it, the query stops. */
#define REFUSE(q, code, ...)                                  \
    do {                                                      \
        mms_response_set_error((q)->resp, (code), __VA_ARGS__); \
        (q)->active = 0;                                      \
        return MMS_OK;                                        \
    } while (0)

static int first_non_finite(const float *v, int n) {
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i])) return i;
    return -1;
}

/* v / |v| into out (zeros for a zero vector, as the index's vis rows). */
static void normalise(const float *v, int32_t n, float *out) {
    double s = 0;
    for (int32_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    for (int32_t i = 0; i < n; i++) out[i] = v[i] * inv;
}

/* The loop's range checks again, for a caller-built request (search, bench):
 * a bad value refuses q (q->resp->ok becomes 0). */
static mms_status check_ranges(const mms_request_t *req, int connect, mms_query_t *q) {
    if (req->k < 1 || req->k > MMS_PROTO_K_MAX)
        REFUSE(q, MMS_PERR_K_RANGE, "'k' is %d, must be in [1, %d]", req->k, MMS_PROTO_K_MAX);
    if (req->neighbors < 1 || req->neighbors > MMS_PROTO_NEIGHBORS_MAX)
        REFUSE(q, MMS_PERR_K_RANGE, "'neighbors' is %d, must be in [1, %d]", req->neighbors,
               MMS_PROTO_NEIGHBORS_MAX);
    if (req->tag_k < 1 || req->tag_k > MMS_PROTO_TAG_K_MAX)
        REFUSE(q, MMS_PERR_K_RANGE, "'tag_k' is %d, must be in [1, %d]", req->tag_k,
               MMS_PROTO_TAG_K_MAX);
    if (!(req->visual >= 0.0f && req->visual <= 1.0f))
        REFUSE(q, MMS_PERR_VISUAL_RANGE, "'visual' is %g, must be in [0, 1]", (double)req->visual);
    if (req->ntags < 0 || req->ntags > MMS_PROTO_MAX_TAGS || (req->ntags > 0 && !req->tags))
        REFUSE(q, MMS_PERR_INVALID, "'tags' has %d entries (limit %d)", req->ntags,
               MMS_PROTO_MAX_TAGS);
    if (req->nnegative_tags < 0 || req->nnegative_tags > MMS_PROTO_MAX_TAGS ||
        (req->nnegative_tags > 0 && !req->negative_tags))
        REFUSE(q, MMS_PERR_INVALID, "'negative_tags' has %d entries (limit %d)", req->nnegative_tags,
               MMS_PROTO_MAX_TAGS);
    if (req->image && req->jpeg) REFUSE(q, MMS_PERR_INVALID, "give 'image' or 'jpeg', not both");
    if (req->image_knn && !req->image)
        REFUSE(q, MMS_PERR_INVALID, "'image_knn' is only used with 'image'");
    if (connect < 0 || connect > 2) REFUSE(q, MMS_PERR_INVALID, "'connect' is %d", connect);
    if (!mms_concept_name(req->concept)) REFUSE(q, MMS_PERR_INVALID, "'concept' is %d", req->concept);
    return MMS_OK;
}

/* The query image: widths and values against the index; a JPEG is decoded
 * into *desc (owned by the caller). *img: the catalog-space vector (or NULL
 * without an image). A bad image refuses q (q->resp->ok becomes 0). */
static mms_status check_image(const mms_index_t *ix, const mms_request_t *req, mms_query_t *q,
                              const float **img, float **desc) {
    *img = NULL;
    *desc = NULL;
    if (req->image) {
        if (req->image_dim != ix->in_dim)
            REFUSE(q, MMS_PERR_VECTOR_LENGTH,
                   "'image' has %d floats, this index expects %d (its catalog's feature width)",
                   req->image_dim, ix->in_dim);
        int j = first_non_finite(req->image, req->image_dim);
        if (j >= 0) REFUSE(q, MMS_PERR_NON_FINITE, "'image'[%d] is not finite", j);
        *img = req->image;
    }
    if (req->image_knn) {
        if (!ix->knn_separate)
            REFUSE(q, MMS_PERR_UNSUPPORTED,
                   "'image_knn' given, but this index finds neighbours in its feature space "
                   "(send 'image' only)");
        if (req->image_knn_dim != ix->knn_dim)
            REFUSE(q, MMS_PERR_VECTOR_LENGTH, "'image_knn' has %d floats, this index expects %d",
                   req->image_knn_dim, ix->knn_dim);
        int j = first_non_finite(req->image_knn, req->image_knn_dim);
        if (j >= 0) REFUSE(q, MMS_PERR_NON_FINITE, "'image_knn'[%d] is not finite", j);
    }
    if (req->jpeg) {
        if (!ix->jpeg)
            REFUSE(q, MMS_PERR_UNSUPPORTED,
                   "'jpeg' needs an index built from JPEG descriptors (catalog importer '%s' "
                   "does not compute %s)", ix->importer[0] ? ix->importer : "?",
                   MMS_DESCRIPTOR_NAME);
        float *d;
        MMS_CALL(mms_malloc((size_t)ix->in_dim * sizeof(float), &d));
        mms_status ds = mms_descriptor_from_jpeg_mem(req->jpeg, req->jpeg_len, "'jpeg'", d);
        if (ds != MMS_OK) {
            free(d);
            REFUSE(q, MMS_PERR_JPEG, "%s", mms_error_message());
        }
        *img = *desc = d;
    }
    return MMS_OK;
}

/* Known tags (distinct, in request order) into q->tag, then the known negative
 * tags into q->neg (distinct, and not among q->tag: a word both wanted and
 * subtracted is kept as wanted); the rest warn. */
static mms_status take_tags(const mms_index_t *ix, const mms_request_t *req, mms_query_t *q) {
    if (req->ntags > 0) MMS_CALL(mms_malloc((size_t)req->ntags * sizeof(int32_t), &q->tag));
    for (int i = 0; i < req->ntags; i++) {
        int32_t t = mms_index_tag_lookup(ix, req->tags[i]);
        if (t < 0) {
            mms_response_add_warning(q->resp, "unknown keyword '%s'", req->tags[i]);
            continue;
        }
        int dup = 0;
        for (int32_t j = 0; j < q->ntag && !dup; j++) dup = q->tag[j] == t;
        if (!dup) q->tag[q->ntag++] = t;
    }
    if (req->nnegative_tags > 0)
        MMS_CALL(mms_malloc((size_t)req->nnegative_tags * sizeof(int32_t), &q->neg));
    for (int i = 0; i < req->nnegative_tags; i++) {
        int32_t t = mms_index_tag_lookup(ix, req->negative_tags[i]);
        if (t < 0) {
            mms_response_add_warning(q->resp, "unknown negative keyword '%s'", req->negative_tags[i]);
            continue;
        }
        int dup = 0;
        for (int32_t j = 0; j < q->ntag && !dup; j++) dup = q->tag[j] == t;
        if (dup) {
            mms_response_add_warning(q->resp, "keyword '%s' is both wanted and subtracted: kept as wanted",
                                     req->negative_tags[i]);
            continue;
        }
        for (int32_t j = 0; j < q->nneg && !dup; j++) dup = q->neg[j] == t;
        if (!dup) q->neg[q->nneg++] = t;
    }
    return MMS_OK;
}

mms_status mms_query_prepare(const mms_index_t *ix, const mms_request_t *req, int connect,
                             mms_response_t *resp, mms_query_t *q) {
    memset(q, 0, sizeof *q);
    q->req = req;
    q->resp = resp;
    q->exclude = -1;
    q->op = req->op;
    if (!resp->ok) return MMS_OK; /* the loop could not prepare it */
    if (req->op == MMS_OP_PING) return MMS_OK;
    if (req->op == MMS_OP_INFO) return MMS_OK; /* answered by the engine (it knows the workers) */
    if (req->op != MMS_OP_SEARCH && req->op != MMS_OP_PREDICT_TAGS)
        REFUSE(q, MMS_PERR_UNSUPPORTED, "unknown op %d", (int)req->op);
    MMS_CALL(check_ranges(req, connect, q));
    if (!resp->ok) return MMS_OK;
    q->has_image = req->image || req->jpeg;
    q->k = req->k;
    q->neighbors = req->neighbors;
    q->tag_k = req->tag_k;
    q->w = req->visual;
    q->search = req->op == MMS_OP_SEARCH;
    q->predict = req->op == MMS_OP_PREDICT_TAGS || req->predict_tags;

    /* the image, then the tags (known ones connect and average) */
    const float *img = NULL;
    float *desc = NULL;
    MMS_CALL(check_image(ix, req, q, &img, &desc));
    if (!resp->ok) return MMS_OK;
    mms_status ts = take_tags(ix, req, q);
    if (ts != MMS_OK) {
        free(desc);
        return ts;
    }
    if (req->op == MMS_OP_PREDICT_TAGS && !q->has_image) {
        free(desc);
        REFUSE(q, MMS_PERR_NO_INPUT, "predict_tags needs 'image' or 'jpeg'");
    }
    if (!q->has_image && q->ntag == 0) {
        free(desc);
        REFUSE(q, MMS_PERR_NO_INPUT, "no image and none of the %d tag%s is known to this index",
               req->ntags, req->ntags == 1 ? "" : "s");
    }

    /* connection: "tags" with no known tag falls back to the image neighbours */
    q->connect = q->has_image ? connect : MMS_ENGINE_CONNECT_TAGS;
    if (q->has_image && connect == MMS_ENGINE_CONNECT_TAGS && q->ntag == 0) {
        mms_response_add_warning(resp, "connect 'tags' without a known tag: connected to the "
                                       "image's visual neighbours instead");
        q->connect = MMS_ENGINE_CONNECT_IMAGE;
    }
    /* z(q) is needed unless the slider gives it weight 0 and no tags are predicted */
    q->embed = q->has_image && (q->w > 0.0f || (q->ntag == 0 && q->nneg == 0) || q->predict);
    q->need_nbrs = q->embed && q->connect != MMS_ENGINE_CONNECT_TAGS;
    mms_status s = mms_calloc((size_t)ix->emb_dim, sizeof(float), &q->z);
    if (s == MMS_OK) s = mms_calloc((size_t)ix->emb_dim, sizeof(float), &q->E);
    if (s == MMS_OK) s = mms_calloc((size_t)ix->emb_dim, sizeof(float), &q->h1);
    /* E_t as a new node connected to the tags, unless the slider gives it weight 0 */
    q->concept_node = req->concept == MMS_CONCEPT_NODE && q->ntag > 0 && !(q->has_image && q->w >= 1.0f);
    if (s == MMS_OK && q->concept_node) s = mms_calloc((size_t)ix->emb_dim, sizeof(float), &q->zc);
    if (s == MMS_OK && q->has_image) s = mms_malloc((size_t)ix->dim * sizeof(float), &q->xq);
    if (s == MMS_OK && q->has_image) s = mms_index_project(ix, img, q->xq);
    if (s == MMS_OK && q->need_nbrs) {
        const float *kv = img;
        if (ix->knn_separate) {
            kv = req->image_knn;
            if (!kv) {
                free(desc);
                if (req->jpeg)
                    REFUSE(q, MMS_PERR_UNSUPPORTED,
                           "this index finds neighbours in a separate kNN space (%d floats) that a "
                           "JPEG does not give; use connect 'tags' or send 'image' + 'image_knn'",
                           ix->knn_dim);
                REFUSE(q, MMS_PERR_INVALID,
                       "this index finds neighbours in its kNN space (the catalog's knn_features, "
                       "%d floats): send 'image_knn' with 'image'", ix->knn_dim);
            }
        }
        s = mms_malloc((size_t)ix->knn_dim * sizeof(float), &q->kq);
        if (s == MMS_OK) normalise(kv, ix->knn_dim, q->kq);
    }
    free(desc);
    MMS_CALL(s);
    if (req->exclude) {
        q->exclude = mms_index_node_of(ix, req->exclude);
        if (q->exclude < 0)
            mms_response_add_warning(resp, "exclude: '%s' is not an image of this index",
                                     req->exclude);
    }
    q->active = 1;
    return MMS_OK;
}

mms_status mms_query_embed(const mms_index_t *ix, int64_t nq, const float *xq, const int64_t *ptr,
                           const int64_t *gid, const float *nb_x, const float *nb_h1, float *z) {
    return mms_query_embed_h1(ix, nq, xq, ptr, gid, nb_x, nb_h1, z, NULL);
}

mms_status mms_query_embed_h1(const mms_index_t *ix, int64_t nq, const float *xq,
                              const int64_t *ptr, const int64_t *gid, const float *nb_x,
                              const float *nb_h1, float *z, float *h1_out) {
    MMS_CHECK(ix->model, MMS_ERR_ARG, "query embed: the index was opened without its model");
    if (nq == 0) return MMS_OK;
    const int32_t D = ix->dim, H2 = ix->emb_dim;
    int64_t ne = ptr[nq];
    MMS_CHECK(ne >= 0 && ne < INT32_MAX, MMS_ERR_ARG, "query embed: %lld neighbour entries",
              (long long)ne);
    int32_t *nbr = NULL;
    float *h1tab = NULL, *h1q = NULL;
    mms_status s = mms_malloc((size_t)(ne + 1) * sizeof(int32_t), &nbr);
    if (s == MMS_OK) s = mms_malloc((size_t)(ne + 1) * (size_t)H2 * sizeof(float), &h1tab);
    if (s == MMS_OK) s = mms_malloc((size_t)nq * (size_t)H2 * sizeof(float), &h1q);
    for (int64_t e = 0; s == MMS_OK && e < ne; e++) {
        int64_t g = gid[e];
        nbr[e] = (int32_t)e;
        if (g >= 0 && g < ix->n_images) {
            if (!nb_x || !nb_h1) {
                mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                              "query embed: image neighbour %lld without its rows", (long long)g);
                s = MMS_ERR_ARG;
                break;
            }
            memcpy(h1tab + (size_t)e * H2, nb_h1 + (size_t)e * H2, (size_t)H2 * sizeof(float));
        } else if (g >= ix->n_images && g < ix->n_images + ix->n_tags) {
            memcpy(h1tab + (size_t)e * H2, ix->tag_h1 + (size_t)(g - ix->n_images) * H2,
                   (size_t)H2 * sizeof(float));
        } else {
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "query embed: node %lld is neither an image nor a tag of the index",
                          (long long)g);
            s = MMS_ERR_ARG;
        }
    }
    /* a local node table: entry e is node e (images read nb_x row e, tags the model) */
    mms_sage_nodes_t nodes = {.n = ne, .gid = gid, .n_images = ix->n_images, .dim = D,
                              .x = nb_x ? nb_x : xq};
    if (s == MMS_OK) s = mms_sage_layer1(ix->model, &nodes, nq, NULL, xq, ptr, nbr, 0, h1q);
    if (s == MMS_OK) s = mms_sage_layer2(ix->model, nq, h1q, h1tab, ptr, nbr, 0, z);
    if (s == MMS_OK && h1_out) memcpy(h1_out, h1q, (size_t)nq * (size_t)H2 * sizeof(float));
    free(nbr);
    free(h1tab);
    free(h1q);
    if (s != MMS_OK) mms_error_trace(s, __FILE__, __LINE__, __func__);
    return s;
}

void mms_query_fuse(int32_t n, const float *z, const float *t, float w, float *E) {
    if (z && t) {
        const float wc = 1.0f - w;
        for (int32_t i = 0; i < n; i++) E[i] = (w * z[i] + wc * t[i]) * 0.5f;
    } else if (z) {
        memcpy(E, z, (size_t)n * sizeof(float));
    } else if (t) {
        memcpy(E, t, (size_t)n * sizeof(float));
    } else {
        memset(E, 0, (size_t)n * sizeof(float));
    }
}

void mms_query_tag_mean(const mms_index_t *ix, const int32_t *tags, int32_t n, float *out) {
    const int32_t H2 = ix->emb_dim;
    memset(out, 0, (size_t)H2 * sizeof(float));
    for (int32_t i = 0; i < n; i++) {
        const float *r = ix->tag_emb + (size_t)tags[i] * H2;
        for (int32_t j = 0; j < H2; j++) out[j] += r[j];
    }
    const float inv = 1.0f / (float)n;
    for (int32_t j = 0; j < H2; j++) out[j] *= inv;
}

static mms_status predict_tags(const mms_index_t *ix, mms_query_t *q, const float *v) {
    int32_t k = q->tag_k;
    if (ix->n_tags == 0) return MMS_OK;
    int64_t *ids = NULL;
    float *sc = NULL;
    mms_status s = mms_malloc((size_t)k * sizeof *ids, &ids);
    if (s == MMS_OK) s = mms_malloc((size_t)k * sizeof *sc, &sc);
    if (s == MMS_OK)
        s = mms_topk_scan(ix->tag_emb, ix->n_tags, ix->emb_dim, NULL, 0, v, 1, k, NULL, ids, sc);
    mms_response_t *r = q->resp;
    for (int32_t i = 0; s == MMS_OK && i < k && ids[i] >= 0; i++) {
        if (r->ntags < r->tags_cap) { /* reserved by the loop: borrow the index's name */
            r->tags[r->ntags].tag = ix->tag_names[ids[i]];
            r->tags[r->ntags].score = sc[i];
            r->ntags++;
        } else {
            s = mms_response_add_tag(r, ix->tag_names[ids[i]], sc[i]);
        }
    }
    free(ids);
    free(sc);
    return s;
}

mms_status mms_query_finish_embedding(const mms_index_t *ix, mms_query_t *qs, int n) {
    const int32_t D = ix->dim, H2 = ix->emb_dim;
    int64_t nq = 0, ne = 0;
    for (int i = 0; i < n; i++) {
        mms_query_t *q = &qs[i];
        if (!q->active) continue;
        if (q->concept_node) { /* a second row: the tags-only node */
            nq++;
            ne += q->ntag;
        }
        if (!q->embed) continue;
        nq++;
        if (q->connect != MMS_ENGINE_CONNECT_TAGS) ne += q->nnb;
        if (q->connect != MMS_ENGINE_CONNECT_IMAGE) ne += q->ntag;
    }
    float *xq = NULL, *nbx = NULL, *nbh = NULL, *z = NULL, *h1 = NULL, *tm = NULL, *tn = NULL;
    int64_t *ptr = NULL, *gid = NULL;
    mms_status s = mms_malloc((size_t)(nq + 1) * (size_t)D * sizeof(float), &xq);
    if (s == MMS_OK) s = mms_malloc((size_t)(nq + 1) * (size_t)H2 * sizeof(float), &z);
    if (s == MMS_OK) s = mms_malloc((size_t)(nq + 1) * (size_t)H2 * sizeof(float), &h1);
    if (s == MMS_OK) s = mms_malloc((size_t)(nq + 1) * sizeof(int64_t), &ptr);
    if (s == MMS_OK) s = mms_malloc((size_t)(ne + 1) * sizeof(int64_t), &gid);
    if (s == MMS_OK) s = mms_malloc((size_t)(ne + 1) * (size_t)D * sizeof(float), &nbx);
    if (s == MMS_OK) s = mms_malloc((size_t)(ne + 1) * (size_t)H2 * sizeof(float), &nbh);
    if (s == MMS_OK) s = mms_malloc((size_t)H2 * sizeof(float), &tm);
    if (s == MMS_OK) s = mms_malloc((size_t)H2 * sizeof(float), &tn);
    if (s != MMS_OK) goto done;
    /* one batched embedding: image neighbours first (best first), then tags */
    int64_t iq = 0, e = 0;
    ptr[0] = 0;
    for (int i = 0; i < n; i++) {
        mms_query_t *q = &qs[i];
        if (!q->active) continue;
        if (q->concept_node) { /* no own features, the tags as neighbours */
            memset(xq + (size_t)iq * D, 0, (size_t)D * sizeof(float));
            for (int32_t j = 0; j < q->ntag; j++, e++) gid[e] = ix->n_images + q->tag[j];
            ptr[++iq] = e;
        }
        if (!q->embed) continue;
        memcpy(xq + (size_t)iq * D, q->xq, (size_t)D * sizeof(float));
        if (q->connect != MMS_ENGINE_CONNECT_TAGS)
            for (int32_t j = 0; j < q->nnb; j++, e++) {
                gid[e] = q->nb_id[j];
                memcpy(nbx + (size_t)e * D, q->nb_x + (size_t)j * D, (size_t)D * sizeof(float));
                memcpy(nbh + (size_t)e * H2, q->nb_h1 + (size_t)j * H2, (size_t)H2 * sizeof(float));
            }
        if (q->connect != MMS_ENGINE_CONNECT_IMAGE)
            for (int32_t j = 0; j < q->ntag; j++, e++) gid[e] = ix->n_images + q->tag[j];
        ptr[++iq] = e;
    }
    s = mms_query_embed_h1(ix, nq, xq, ptr, gid, nbx, nbh, z, h1);
    if (s != MMS_OK) goto done;
    iq = 0;
    for (int i = 0; i < n; i++) {
        mms_query_t *q = &qs[i];
        if (!q->active) continue;
        if (q->concept_node) memcpy(q->zc, z + (size_t)(iq++) * H2, (size_t)H2 * sizeof(float));
        if (q->embed) {
            memcpy(q->h1, h1 + (size_t)iq * H2, (size_t)H2 * sizeof(float));
            memcpy(q->z, z + (size_t)(iq++) * H2, (size_t)H2 * sizeof(float));
        }
        /* z stays zero when the slider gives it weight 0: E = (0 z + 1 t) / 2 */
        const float *et = NULL;
        if (q->concept_node) {
            et = q->zc;
        } else if (q->ntag > 0) {
            mms_query_tag_mean(ix, q->tag, q->ntag, tm);
            et = tm;
        }
        if (q->nneg > 0) { /* E_t - mean(E_neg): the stored tag embeddings, in either mode */
            mms_query_tag_mean(ix, q->neg, q->nneg, tn);
            if (et && et != tm) memcpy(tm, et, (size_t)H2 * sizeof(float));
            if (!et) memset(tm, 0, (size_t)H2 * sizeof(float));
            for (int32_t j = 0; j < H2; j++) tm[j] -= tn[j];
            et = tm;
        }
        mms_query_fuse(H2, q->has_image ? q->z : NULL, et, q->w, q->E);
        if (q->predict) {
            s = predict_tags(ix, q, q->has_image ? q->z : q->E);
            if (s != MMS_OK) goto done;
        }
    }
done:
    free(xq);
    free(nbx);
    free(nbh);
    free(z);
    free(h1);
    free(tm);
    free(tn);
    free(ptr);
    free(gid);
    return s;
}

mms_status mms_query_fill_results(const mms_index_t *ix, mms_query_t *q, const int64_t *ids,
                                  const float *scores, int32_t k) {
    mms_response_t *r = q->resp;
    int32_t m = 0;
    while (m < k && ids[m] >= 0) m++;
    if (r->results_cap < m) MMS_CALL(mms_response_reserve(r, m, 0));
    /* strings and tag arrays are borrowed from the index's catalog (they outlive the call) */
    for (int32_t i = 0; i < m; i++) {
        mms_result_t *x = &r->results[r->nresults++];
        x->id = mms_index_image_id(ix, ids[i]);
        x->score = scores[i];
        x->tags = mms_index_image_tags(ix, ids[i], &x->ntags);
        x->path = mms_index_image_path(ix, ids[i]);
    }
    return MMS_OK;
}

mms_status mms_query_info(const mms_index_t *ix, int nworkers, mms_response_t *r) {
    mms_status s = mms_response_add_info_str(r, "kind", "index");
    if (s == MMS_OK) s = mms_response_add_info_str(r, "index", ix->dir);
    if (s == MMS_OK) s = mms_response_add_info_int(r, "version", ix->version);
    if (s == MMS_OK) s = mms_response_add_info_str(r, "catalog", ix->cat ? ix->cat->dir : ix->catalog_dir);
    if (s == MMS_OK) s = mms_response_add_info_int(r, "images", ix->n_images);
    if (s == MMS_OK) s = mms_response_add_info_int(r, "tags", ix->n_tags);
    if (s == MMS_OK) s = mms_response_add_info_int(r, "shards", ix->shards);
    if (s == MMS_OK) s = mms_response_add_info_int(r, "workers", nworkers);
    if (s == MMS_OK) s = mms_response_add_info_int(r, "image_dim", ix->in_dim);
    if (s == MMS_OK) s = mms_response_add_info_int(r, "node_dim", ix->dim);
    if (s == MMS_OK) s = mms_response_add_info_int(r, "embedding_dim", ix->emb_dim);
    if (s == MMS_OK)
        s = mms_response_add_info_str(r, "knn_space", ix->knn_separate ? "knn_features" : "features");
    if (s == MMS_OK) s = mms_response_add_info_int(r, "knn_dim", ix->knn_dim);
    if (s == MMS_OK) s = mms_response_add_info_int(r, "pca", ix->pca_comp != NULL);
    if (s == MMS_OK) s = mms_response_add_info_int(r, "normalize", ix->normalize);
    if (s == MMS_OK) s = mms_response_add_info_int(r, "jpeg", ix->jpeg);
    if (s == MMS_OK && ix->model)
        s = mms_response_add_info_int(r, "hidden", ix->model->cfg.hidden);
    return s;
}
