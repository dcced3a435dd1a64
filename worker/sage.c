/* sage.c: GraphSAGE model, step plan and inference path (see sage.h).
 *
 * The per-step arithmetic lives in sage_kern.c (written once for a real type);
 * this file owns the objects, the sampling/de-duplication plan with its cost
 * model, argument checks, and the inference helpers (dropout off).
 */
#include "sage.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "mms_rng.h"
#include "sample.h"

/* ---------------------------------------------------------------- config */
void mms_sage_config_default(mms_sage_config_t *c) {
    memset(c, 0, sizeof *c);
    c->dim = 0;
    c->hidden = 128;
    c->s1 = 25;
    c->s2 = 10;
    c->max_degree = MMS_GRAPH_DEGREE_CAP;
    c->n_neg = 20;
    c->dropout = 0.2f;
    c->train_tags = 1;
    c->h2_mode = MMS_SAGE_H2_AUTO;
    c->seed = 1;
}

mms_status mms_sage_config_check(const mms_sage_config_t *c) {
    MMS_CHECK(c != NULL, MMS_ERR_ARG, "sage: no configuration");
    MMS_CHECK(c->dim > 0, MMS_ERR_ARG, "sage: input width dim must be > 0 (got %d)", c->dim);
    MMS_CHECK(c->hidden > 0, MMS_ERR_ARG, "sage: hidden must be > 0 (got %d)", c->hidden);
    MMS_CHECK(c->max_degree > 0 && c->max_degree <= 4096, MMS_ERR_ARG,
              "sage: max_degree must be in [1, 4096] (got %d)", c->max_degree);
    MMS_CHECK(c->s1 > 0 && c->s1 <= c->max_degree, MMS_ERR_ARG,
              "sage: s1 (%d) must be in [1, max_degree = %d]", c->s1, c->max_degree);
    MMS_CHECK(c->s2 > 0 && c->s2 <= c->max_degree && c->s2 <= 255, MMS_ERR_ARG,
              "sage: s2 (%d) must be in [1, min(max_degree = %d, 255)]", c->s2, c->max_degree);
    MMS_CHECK(c->dropout >= 0 && lrint(c->dropout * 256.0) <= 255, MMS_ERR_ARG,
              "sage: dropout must be in [0, 1) (got %g)", (double)c->dropout);
    MMS_CHECK(c->n_neg >= 0, MMS_ERR_ARG, "sage: n_neg must be >= 0 (got %d)", c->n_neg);
    MMS_CHECK(c->h2_mode >= MMS_SAGE_H2_AUTO && c->h2_mode <= MMS_SAGE_H2_TAG_AVERAGE, MMS_ERR_ARG,
              "sage: unknown h2_mode %d", c->h2_mode);
    return MMS_OK;
}

size_t mms_sage_n_params(const mms_sage_config_t *c) {
    size_t D = (size_t)c->dim, H = (size_t)c->hidden;
    return 2 * D * H + 2 * (2 * H) * H;
}

/* ---------------------------------------------------------------- model */
static void glorot(float *w, int64_t fan_in, int64_t fan_out, uint64_t seed, uint64_t index) {
    mms_rng_t r;
    mms_rng_init(&r, seed, MMS_STREAM_INIT, index);
    double lim = sqrt(6.0 / (double)(fan_in + fan_out));
    for (int64_t i = 0; i < fan_in * fan_out; i++)
        w[i] = (float)((2.0 * mms_rng_uniform(&r) - 1.0) * lim);
}

void mms_sage_tag_row_random(uint64_t seed, int64_t t, int32_t dim, float *row) {
    mms_rng_t r;
    mms_rng_init(&r, seed, MMS_STREAM_INIT, (1ull << 40) + (uint64_t)t);
    double s = 0;
    for (int32_t i = 0; i < dim; i++) {
        double v = mms_rng_normal(&r);
        row[i] = (float)v;
        s += v * v;
    }
    float inv = (float)(1.0 / (s > 0 ? sqrt(s) : 1.0));
    for (int32_t i = 0; i < dim; i++) row[i] *= inv;
}

mms_status mms_sage_model_create(const mms_sage_config_t *c, int64_t n_tags,
                                 mms_sage_model_t **out) {
    MMS_CHECK(out != NULL, MMS_ERR_ARG, "sage model: out is NULL");
    *out = NULL;
    MMS_CALL(mms_sage_config_check(c));
    MMS_CHECK(n_tags >= 0, MMS_ERR_ARG, "sage model: n_tags = %lld", (long long)n_tags);
    mms_sage_model_t *m = NULL;
    MMS_CALL(mms_calloc(1, sizeof *m, &m));
    m->cfg = *c;
    m->n_params = mms_sage_n_params(c);
    m->n_tags = n_tags;
    mms_status st = mms_malloc(m->n_params * sizeof(float), &m->params);
    if (st == MMS_OK) st = mms_malloc((size_t)(n_tags ? n_tags : 1) * c->dim * sizeof(float), &m->tags);
    if (st != MMS_OK) {
        mms_sage_model_destroy(&m);
        return st;
    }
    size_t D = (size_t)c->dim, H = (size_t)c->hidden;
    m->W1s = m->params;
    m->W1n = m->W1s + D * H;
    m->W2s = m->W1n + D * H;
    m->W2n = m->W2s + 2 * H * H;
    glorot(m->W1s, (int64_t)D, (int64_t)H, c->seed, 0);
    glorot(m->W1n, (int64_t)D, (int64_t)H, c->seed, 1);
    glorot(m->W2s, 2 * (int64_t)H, (int64_t)H, c->seed, 2);
    glorot(m->W2n, 2 * (int64_t)H, (int64_t)H, c->seed, 3);
    for (int64_t t = 0; t < n_tags; t++)
        mms_sage_tag_row_random(c->seed, t, c->dim, m->tags + (size_t)t * D);
    *out = m;
    return MMS_OK;
}

void mms_sage_model_destroy(mms_sage_model_t **pm) {
    if (!pm || !*pm) return;
    mms_free(&(*pm)->params);
    mms_free(&(*pm)->tags);
    mms_free(pm);
}

/* ---------------------------------------------------------------- sparse inputs */
mms_status mms_sage_sparsify(const float *x, int64_t n, int32_t dim, double max_density,
                             mms_sage_sparse_t **out) {
    MMS_CHECK(out && (x || n == 0) && n >= 0 && dim > 0, MMS_ERR_ARG, "sparsify: bad arguments");
    *out = NULL;
    int64_t nnz = 0;
    int binary = 1;
    for (size_t i = 0; i < (size_t)n * dim; i++)
        if (x[i] != 0) {
            nnz++;
            if (x[i] != 1) binary = 0;
        }
    if (n > 0 && (double)nnz > max_density * (double)n * dim) return MMS_OK;
    mms_sage_sparse_t *s = NULL;
    MMS_CALL(mms_calloc(1, sizeof *s, &s));
    s->n = n;
    s->dim = dim;
    s->nnz = nnz;
    mms_status st = mms_malloc((size_t)(n + 1) * sizeof(int64_t), &s->indptr);
    if (st == MMS_OK) st = mms_malloc((size_t)nnz * sizeof(int32_t), &s->indices);
    if (st == MMS_OK && !binary) st = mms_malloc((size_t)nnz * sizeof(float), &s->values);
    if (st != MMS_OK) {
        mms_sage_sparse_destroy(&s);
        return st;
    }
    int64_t p = 0;
    for (int64_t r = 0; r < n; r++) {
        s->indptr[r] = p;
        for (int32_t c = 0; c < dim; c++) {
            float v = x[(size_t)r * dim + c];
            if (v == 0) continue;
            s->indices[p] = c;
            if (s->values) s->values[p] = v;
            p++;
        }
    }
    s->indptr[n] = p;
    *out = s;
    return MMS_OK;
}

void mms_sage_sparse_destroy(mms_sage_sparse_t **ps) {
    if (!ps || !*ps) return;
    mms_free(&(*ps)->indptr);
    mms_free(&(*ps)->indices);
    mms_free(&(*ps)->values);
    mms_free(ps);
}

void mms_sage_nodes_use_sparse(mms_sage_nodes_t *nodes, const mms_sage_sparse_t *s) {
    nodes->x = NULL;
    nodes->xp = s->indptr;
    nodes->xi = s->indices;
    nodes->xv = s->values;
}

/* ---------------------------------------------------------------- gradients */
mms_status mms_sage_grad_create(const mms_sage_config_t *c, int64_t n_tags, mms_sage_grad_t **out) {
    MMS_CHECK(out != NULL, MMS_ERR_ARG, "sage grad: out is NULL");
    *out = NULL;
    MMS_CALL(mms_sage_config_check(c));
    mms_sage_grad_t *g = NULL;
    MMS_CALL(mms_calloc(1, sizeof *g, &g));
    g->n_params = mms_sage_n_params(c);
    g->dim = c->dim;
    MMS_CHECK(n_tags >= 0, MMS_ERR_ARG, "sage grad: n_tags = %lld", (long long)n_tags);
    g->cap_rows = n_tags;
    mms_status st = mms_calloc(g->n_params, sizeof(float), &g->dparams);
    if (st == MMS_OK) st = mms_calloc((size_t)(n_tags ? n_tags : 1), sizeof(int64_t), &g->rows);
    if (st == MMS_OK)
        st = mms_calloc((size_t)(n_tags ? n_tags : 1) * (size_t)c->dim, sizeof(float), &g->drows);
    if (st != MMS_OK) {
        mms_sage_grad_destroy(&g);
        return st;
    }
    *out = g;
    return MMS_OK;
}

void mms_sage_grad_destroy(mms_sage_grad_t **pg) {
    if (!pg || !*pg) return;
    mms_free(&(*pg)->dparams);
    mms_free(&(*pg)->rows);
    mms_free(&(*pg)->drows);
    mms_free(pg);
}

mms_status mms_sage_grad_add(mms_sage_grad_t *g, const mms_sage_grad_t *h) {
    MMS_CHECK(g && h && g->n_params == h->n_params && g->dim == h->dim && g->cap_rows == h->cap_rows,
              MMS_ERR_ARG, "sage grad add: gradients of different shapes");
    for (size_t i = 0; i < g->n_params; i++) g->dparams[i] += h->dparams[i];
    if (h->n_rows == 0) return MMS_OK;
    /* merge the two ascending row lists from the back, in place in g (its
     * capacity is n_tags rows, and the union has at most that many) */
    const size_t D = (size_t)g->dim;
    int64_t nu = 0;
    for (int64_t i = 0, j = 0; i < g->n_rows || j < h->n_rows; nu++) {
        if (j >= h->n_rows || (i < g->n_rows && g->rows[i] < h->rows[j]))
            i++;
        else if (i >= g->n_rows || h->rows[j] < g->rows[i])
            j++;
        else
            i++, j++;
    }
    MMS_CHECK(nu <= g->cap_rows, MMS_ERR_INTERNAL, "sage grad add: %lld rows above the capacity %lld",
              (long long)nu, (long long)g->cap_rows);
    int64_t i = g->n_rows - 1, j = h->n_rows - 1, k = nu - 1;
    while (j >= 0) {
        if (i >= 0 && g->rows[i] > h->rows[j]) {
            g->rows[k] = g->rows[i];
            memmove(g->drows + (size_t)k * D, g->drows + (size_t)i * D, D * sizeof(float));
            i--;
        } else if (i >= 0 && g->rows[i] == h->rows[j]) {
            g->rows[k] = g->rows[i];
            float *d = g->drows + (size_t)k * D;
            const float *a = g->drows + (size_t)i * D, *c = h->drows + (size_t)j * D;
            for (size_t e = 0; e < D; e++) d[e] = a[e] + c[e];
            i--, j--;
        } else {
            g->rows[k] = h->rows[j];
            memcpy(g->drows + (size_t)k * D, h->drows + (size_t)j * D, D * sizeof(float));
            j--;
        }
        k--;
    }
    g->n_rows = nu;
    return MMS_OK;
}

mms_status mms_sage_adj_without_tags(const mms_csr_t *adj, const int64_t *gid, int64_t n_images,
                                     mms_csr_t *out) {
    MMS_CHECK(adj && out, MMS_ERR_ARG, "sage adj without tags: missing argument");
    memset(out, 0, sizeof *out);
    int64_t nnz = adj->indptr[adj->n];
    MMS_CALL(mms_malloc((size_t)(adj->n + 1) * sizeof(int64_t), &out->indptr));
    mms_status st = mms_malloc((size_t)(nnz ? nnz : 1) * sizeof(int64_t), &out->indices);
    if (st != MMS_OK) {
        mms_csr_free(out);
        return st;
    }
    out->n = adj->n;
    int64_t w = 0;
    for (int64_t v = 0; v < adj->n; v++) {
        out->indptr[v] = w;
        int image = (gid ? gid[v] : v) < n_images;
        for (int64_t e = adj->indptr[v]; e < adj->indptr[v + 1]; e++) {
            int64_t u = adj->indices[e];
            if (!image || (gid ? gid[u] : u) < n_images) out->indices[w++] = u;
        }
    }
    out->indptr[adj->n] = w;
    return MMS_OK;
}

/* ---------------------------------------------------------------- batch */
typedef struct {
    int32_t *mark;  /* n_local: -1, or a set position while a set is built */
    int32_t *tmark; /* n_tags: -1, or touched slot */
    int32_t *list, *raw1, *raw2, *stamp, *spos;
    size_t cap_T, cap_in, cap_occ, cap_1, cap_raw2, cap_2, cap_touch, cap_list, cap_stamp, cap_l2p,
        cap_r2, cap_r2p;
} batch_priv_t;

mms_status mms_sage_batch_create(const mms_sage_config_t *c, int64_t n_local, int64_t n_tags,
                                 mms_sage_batch_t **out) {
    MMS_CHECK(out != NULL, MMS_ERR_ARG, "sage batch: out is NULL");
    *out = NULL;
    MMS_CALL(mms_sage_config_check(c));
    MMS_CHECK(n_local > 0 && n_local < INT32_MAX, MMS_ERR_ARG,
              "sage batch: n_local = %lld must be in [1, 2^31)", (long long)n_local);
    MMS_CHECK(n_tags >= 0 && n_tags < INT32_MAX, MMS_ERR_ARG, "sage batch: n_tags = %lld",
              (long long)n_tags);
    mms_sage_batch_t *b = NULL;
    MMS_CALL(mms_calloc(1, sizeof *b, &b));
    batch_priv_t *p = NULL;
    mms_status st = mms_calloc(1, sizeof *p, &p);
    if (st != MMS_OK) {
        mms_free(&b);
        return st;
    }
    b->priv = p;
    b->cfg = *c;
    b->n_local = n_local;
    b->n_tags = n_tags;
    if (st == MMS_OK) st = mms_malloc((size_t)n_local * sizeof(int32_t), &p->mark);
    if (st == MMS_OK) st = mms_malloc((size_t)(n_tags ? n_tags : 1) * sizeof(int32_t), &p->tmark);
    if (st == MMS_OK) st = mms_malloc((size_t)c->s2 * sizeof(int32_t), &b->cols1);
    if (st == MMS_OK) st = mms_malloc((size_t)c->s1 * sizeof(int32_t), &b->cols2);
    if (st != MMS_OK) {
        mms_sage_batch_destroy(&b);
        return st;
    }
    for (int64_t i = 0; i < n_local; i++) p->mark[i] = -1;
    for (int64_t i = 0; i < n_tags; i++) p->tmark[i] = -1;
    *out = b;
    return MMS_OK;
}

void mms_sage_batch_destroy(mms_sage_batch_t **pb) {
    if (!pb || !*pb) return;
    mms_sage_batch_t *b = *pb;
    batch_priv_t *p = b->priv;
    if (p) {
        mms_free(&p->mark);
        mms_free(&p->tmark);
        mms_free(&p->list);
        mms_free(&p->raw1);
        mms_free(&p->raw2);
        mms_free(&p->stamp);
        mms_free(&p->spos);
        mms_free(&b->priv);
    }
    void **arrays[] = {(void **)&b->cols1,  (void **)&b->cols2,  (void **)&b->in_row,
                       (void **)&b->T_loc,  (void **)&b->N1_loc, (void **)&b->N2_loc,
                       (void **)&b->T_gid,  (void **)&b->N1_gid, (void **)&b->N2_gid,
                       (void **)&b->T_tch,  (void **)&b->N1_tch, (void **)&b->N2_tch,
                       (void **)&b->occ1,   (void **)&b->l2_ptr, (void **)&b->l2_idx,
                       (void **)&b->l2_cnt, (void **)&b->touch,  (void **)&b->arena,
                       (void **)&b->masks,  (void **)&b->r2_ptr, (void **)&b->r2_idx,
                       (void **)&b->r2_cnt};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mms_free(arrays[i]);
    mms_free(pb);
}

/* Grow *ptr to hold need elements of size es (content not kept). */
static mms_status grow(void *ptr, size_t *cap, size_t need, size_t es) {
    if (need <= *cap && *(void **)ptr) return MMS_OK;
    size_t n = need + need / 2 + 16;
    mms_free(ptr);
    MMS_CALL(mms_malloc(n * es, ptr));
    *cap = n;
    return MMS_OK;
}

/* Several arrays sharing one capacity counter. */
static mms_status grow3(void *a, size_t ea, void *b2, size_t eb, void *c, size_t ec, size_t *cap,
                        size_t need) {
    if (need <= *cap && *(void **)a) return MMS_OK;
    size_t n = need + need / 2 + 16, dummy;
    dummy = 0;
    MMS_CALL(grow(a, &dummy, n, ea));
    dummy = 0;
    if (b2) MMS_CALL(grow(b2, &dummy, n, eb));
    dummy = 0;
    if (c) MMS_CALL(grow(c, &dummy, n, ec));
    *cap = n;
    return MMS_OK;
}

static inline int64_t gid_of(const mms_sage_nodes_t *nd, int32_t v) {
    return nd->gid ? nd->gid[v] : (int64_t)v;
}

/* Distinct non-negative entries of src[0..m) in order of first appearance into
 * list; marks them 0 (the caller resets). Returns the count. */
static int32_t collect(int32_t *mark, const int32_t *src, size_t m, int32_t *list) {
    int32_t n = 0;
    for (size_t i = 0; i < m; i++) {
        int32_t v = src[i];
        if (v < 0 || mark[v] >= 0) continue;
        mark[v] = 0;
        list[n++] = v;
    }
    return n;
}

/* In-place heapsorts (glibc's qsort may allocate; the step path must not). */
#define HEAPSORT(name, T)                                                   \
    static void name(T *a, size_t n) {                                      \
        for (size_t k = n / 2; k-- > 0;) {                                  \
            for (size_t i = k;;) {                                          \
                size_t c = 2 * i + 1;                                       \
                if (c >= n) break;                                          \
                if (c + 1 < n && a[c + 1] > a[c]) c++;                      \
                if (a[i] >= a[c]) break;                                    \
                T t = a[i];                                                 \
                a[i] = a[c], a[c] = t, i = c;                               \
            }                                                               \
        }                                                                   \
        for (size_t m = n; m-- > 1;) {                                      \
            T t = a[0];                                                     \
            a[0] = a[m], a[m] = t;                                          \
            for (size_t i = 0;;) {                                          \
                size_t c = 2 * i + 1;                                       \
                if (c >= m) break;                                          \
                if (c + 1 < m && a[c + 1] > a[c]) c++;                      \
                if (a[i] >= a[c]) break;                                    \
                t = a[i];                                                   \
                a[i] = a[c], a[c] = t, i = c;                               \
            }                                                               \
        }                                                                   \
    }
HEAPSORT(sort_i32, int32_t)
HEAPSORT(sort_i64, int64_t)
#undef HEAPSORT

/* Sorts a collected set by local id, so that the kernels read input rows in
 * address order (far fewer cache and TLB misses than discovery order). Large
 * sets are read back from the marks in one pass, small ones are sorted. */
static void sort_set(int32_t *list, int32_t n, const int32_t *mark, int64_t n_local) {
    if ((int64_t)n * 16 < n_local) {
        sort_i32(list, (size_t)n);
        return;
    }
    int32_t k = 0;
    for (int64_t v = 0; v < n_local && k < n; v++)
        if (mark[v] >= 0) list[k++] = (int32_t)v;
}

/* Orders a set images first (each part by local id), fills loc/gid, marks
 * mark[v] = position and tmark-flags its tags. Returns the image count in *n_img. */
static mms_status order_set(const mms_sage_batch_t *b, const mms_sage_nodes_t *nd,
                            int32_t *list, int32_t n, int32_t *loc, int64_t *gid,
                            int32_t *mark, int32_t *tmark, int32_t *n_img) {
    sort_set(list, n, mark, b->n_local);
    int32_t k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int32_t i = 0; i < n; i++) {
            int32_t v = list[i];
            int64_t g = gid_of(nd, v);
            int tag = g >= nd->n_images;
            if (tag != pass) continue;
            if (tag) {
                int64_t t = g - nd->n_images;
                MMS_CHECK(t < b->n_tags, MMS_ERR_ARG,
                          "sage batch: node %d has global id %lld, tag %lld >= n_tags %lld", v,
                          (long long)g, (long long)t, (long long)b->n_tags);
                tmark[t] = 0;
            }
            mark[v] = k;
            loc[k] = v;
            gid[k] = g;
            k++;
        }
    for (int32_t i = 0; i < n; i++)
        if (gid[i] >= nd->n_images) {
            *n_img = i;
            return MMS_OK;
        }
    *n_img = n;
    return MMS_OK;
}

static void unmark(int32_t *mark, const int32_t *loc, int32_t n) {
    for (int32_t i = 0; i < n; i++) mark[loc[i]] = -1;
}

static void fill_tch(const mms_sage_nodes_t *nd, const int32_t *tmark, const int64_t *gid,
                     int32_t n, int32_t n_img, int32_t *tch) {
    for (int32_t i = 0; i < n; i++) tch[i] = i < n_img ? -1 : tmark[gid[i] - nd->n_images];
}

/* Row length of an input (non-zeros for a sparse image row, D otherwise). */
static inline double row_len(const mms_sage_batch_t *b, const mms_sage_nodes_t *nd, int32_t loc,
                             int is_tag) {
    if (is_tag || !b->sparse) return b->cfg.dim;
    return (double)(nd->xp[loc + 1] - nd->xp[loc]);
}

/* Cost model for the hop-2 -> hop-1 path (forward + backward), in "GEMM flop"
 * units. Weights measured roughly on AVX-512: a mask byte ~1.5 cycles, a
 * per-non-zero Philox block ~20 cycles, a scattered row add ~4x a GEMM flop. */
#define W_SPARSE 4.0   /* sparse x dense flop */
#define W_ACC 8.0      /* element of a gathered/averaged row */
#define W_MASKD 48.0   /* mask element of a dense row */
#define W_MASKS 640.0  /* mask of one sparse non-zero */
static void choose_strategy(mms_sage_batch_t *b, const mms_sage_nodes_t *nd) {
    const double D = b->cfg.dim, H = b->cfg.hidden;
    double ca[2] = {0, 0}, cb[2] = {0, 0}; /* [0] images, [1] tags */
    for (int32_t w = 0; w < b->n2; w++) {
        int tag = w >= b->n2_img;
        double len = row_len(b, nd, b->N2_loc[w], tag);
        int dense = tag || !b->sparse;
        ca[tag] += dense ? 4.0 * D * H + W_MASKD * D : 4.0 * len * H * W_SPARSE + W_MASKS * len;
        if (tag && b->cfg.train_tags) ca[tag] += 2.0 * D * H + W_MASKD * D;
    }
    for (int32_t e = 0; e < b->l2_ptr[b->n1]; e++) {
        int32_t w = b->l2_idx[e];
        int tag = w >= b->n2_img;
        double len = row_len(b, nd, b->N2_loc[w], tag);
        int dense = tag || !b->sparse;
        ca[tag] += 4.0 * H * W_ACC;
        cb[tag] += len * (W_ACC + (dense ? W_MASKD : W_MASKS));
        if (tag && b->cfg.train_tags) cb[tag] += D * (W_ACC + W_MASKD);
    }
    double shared = 4.0 * b->n1 * D * H, tag_b_extra = b->cfg.train_tags ? 2.0 * b->n1 * D * H : 0;
    double best = -1;
    for (int ia = 0; ia < 2; ia++)
        for (int ta = 0; ta < 2; ta++) {
            double cost = (ia ? ca[0] : cb[0]) + (ta ? ca[1] : cb[1]);
            if (!ia || !ta) cost += shared;
            if (!ta && b->n2 > b->n2_img) cost += tag_b_extra;
            if (best < 0 || cost < best) {
                best = cost;
                b->h2_img_a = ia;
                b->h2_tag_a = ta;
            }
        }
    if (b->cfg.h2_mode == MMS_SAGE_H2_TRANSFORM) b->h2_img_a = b->h2_tag_a = 1;
    if (b->cfg.h2_mode == MMS_SAGE_H2_AVERAGE) b->h2_img_a = b->h2_tag_a = 0;
    if (b->cfg.h2_mode == MMS_SAGE_H2_IMG_AVERAGE) b->h2_img_a = 0, b->h2_tag_a = 1;
    if (b->cfg.h2_mode == MMS_SAGE_H2_TAG_AVERAGE) b->h2_img_a = 1, b->h2_tag_a = 0;
}

static void layout(mms_sage_batch_t *b) {
    const size_t D = (size_t)b->cfg.dim, H = (size_t)b->cfg.hidden, H2 = 2 * H;
    const size_t nT = (size_t)b->nT, n1 = (size_t)b->n1;
    const int sp = b->sparse;
    b->x2_lo = (b->h2_img_a && !sp) ? 0 : b->n2_img;
    b->x2_hi = b->h2_tag_a ? b->n2 : b->n2_img;
    b->p2_lo = b->h2_img_a ? 0 : b->n2_img;
    b->p2_hi = b->h2_tag_a ? b->n2 : b->n2_img;
    int any_b = !b->h2_img_a || !b->h2_tag_a;
    size_t dT = nT - (sp ? (size_t)b->nT_img : 0), d1 = n1 - (sp ? (size_t)b->n1_img : 0);
    size_t p2 = (size_t)(b->p2_hi - b->p2_lo), x2 = (size_t)(b->x2_hi - b->x2_lo);
    size_t tmp = 0;
    if (b->cfg.train_tags && b->n_touch > 0) {
        tmp = nT;
        if (n1 - (size_t)b->n1_img > tmp) tmp = n1 - (size_t)b->n1_img;
        size_t t2 = (size_t)(b->n2 - b->n2_img);
        if (b->n2 > b->n2_img && !b->h2_tag_a) t2 = n1;
        if (t2 > tmp) tmp = t2;
    }
    b->tmp_rows = (int32_t)tmp;
    size_t o = 0;
#define SLOT(field, count) \
    do {                   \
        b->field = o;      \
        o += (count);      \
        o = (o + 15) & ~(size_t)15; \
    } while (0)
    SLOT(off_XT, dT * D);
    SLOT(off_MT, b->has_mt ? nT * D : 0);
    SLOT(off_HT, nT * H2);
    SLOT(off_X1, d1 * D);
    SLOT(off_H1, n1 * H2);
    SLOT(off_X2, x2 * D);
    SLOT(off_P2, p2 * H);
    SLOT(off_M1, any_b ? n1 * D : 0);
    SLOT(off_E, nT * H2);
    SLOT(off_M2, nT * H2);
    SLOT(off_Z, nT * H2);
    SLOT(off_NRM, nT);
    SLOT(off_DZ, nT * H2);
    SLOT(off_DHT, nT * H2);
    SLOT(off_DM2, nT * H2);
    SLOT(off_DH1, n1 * H2);
    SLOT(off_DP2, p2 * H);
    SLOT(off_TMP, tmp * D);
    SLOT(off_ROW, D);
    b->arena_len = o;
    o = 0;
    int drop = lrint(b->cfg.dropout * 256.0) > 0;
    SLOT(moff_B, drop && b->has_mt ? nT * (size_t)b->cfg.s2 * D : 0);
    SLOT(moff_F, drop ? nT * (size_t)b->cfg.s2 * H2 : 0);
    SLOT(moff_E, drop ? nT * H2 : 0);
    b->mask_len = o;
#undef SLOT
}

static mms_status check_nodes(const mms_sage_nodes_t *nd, int64_t n_local, int32_t dim) {
    MMS_CHECK(nd != NULL, MMS_ERR_ARG, "sage: nodes not given");
    MMS_CHECK(nd->n == n_local, MMS_ERR_ARG,
              "sage: nodes describe %lld local nodes, the batch was made for %lld",
              (long long)nd->n, (long long)n_local);
    MMS_CHECK(nd->dim == dim, MMS_ERR_ARG, "sage: nodes have width %d, the model %d", nd->dim, dim);
    MMS_CHECK((nd->x != NULL) != (nd->xp != NULL && nd->xi != NULL), MMS_ERR_ARG,
              "sage: give image rows either dense (x) or CSR (xp, xi), exactly one");
    MMS_CHECK(nd->n_images >= 0, MMS_ERR_ARG, "sage: n_images < 0");
    return MMS_OK;
}

mms_status mms_sage_batch_build(mms_sage_batch_t *b, const mms_csr_t *adj,
                                const mms_sage_nodes_t *nodes, uint64_t step,
                                const int32_t *targets, int64_t n) {
    return mms_sage_batch_build_tadj(b, adj, NULL, nodes, step, targets, n);
}

mms_status mms_sage_batch_build_tadj(mms_sage_batch_t *b, const mms_csr_t *adj,
                                     const mms_csr_t *tadj, const mms_sage_nodes_t *nodes,
                                     uint64_t step, const int32_t *targets, int64_t n) {
    MMS_CHECK(b && adj && targets, MMS_ERR_ARG, "sage batch build: missing argument");
    if (!tadj) tadj = adj;
    MMS_CHECK(tadj->n == adj->n, MMS_ERR_ARG,
              "sage batch build: target adjacency has %lld nodes, the adjacency %lld",
              (long long)tadj->n, (long long)adj->n);
    MMS_CHECK(n > 0 && n < INT32_MAX / b->cfg.s2, MMS_ERR_ARG,
              "sage batch build: %lld targets (need 1 .. %d)", (long long)n, INT32_MAX / b->cfg.s2);
    MMS_CHECK(adj->n == b->n_local, MMS_ERR_ARG,
              "sage batch build: adjacency has %lld nodes, the batch was made for %lld",
              (long long)adj->n, (long long)b->n_local);
    MMS_CALL(check_nodes(nodes, b->n_local, b->cfg.dim));
    batch_priv_t *p = b->priv;
    const mms_sage_config_t *c = &b->cfg;
    const int32_t s1 = c->s1, s2 = c->s2;
    b->nT = b->n1 = b->n2 = 0;
    b->fwd_done = 0;
    b->step = step;
    b->sparse = nodes->xp != NULL;
    MMS_CALL(mms_sample_columns(c->seed, step, 1, c->max_degree, s2, b->cols1));
    MMS_CALL(mms_sample_columns(c->seed, step, 2, c->max_degree, s1, b->cols2));

    /* targets */
    for (int64_t i = 0; i < n; i++)
        MMS_CHECK(targets[i] >= 0 && targets[i] < b->n_local, MMS_ERR_ARG,
                  "sage batch build: target %lld = %d is not a local id in [0, %lld)",
                  (long long)i, targets[i], (long long)b->n_local);
    MMS_CALL(grow(&b->in_row, &p->cap_in, (size_t)n, sizeof(int32_t)));
    b->n_in = n;
    MMS_CALL(grow3(&b->T_loc, sizeof(int32_t), &b->T_gid, sizeof(int64_t), &b->T_tch,
                   sizeof(int32_t), &p->cap_T, (size_t)n));
    MMS_CALL(grow(&p->list, &p->cap_list, (size_t)n, sizeof(int32_t)));
    int32_t nT = collect(p->mark, targets, (size_t)n, p->list);
    MMS_CALL(order_set(b, nodes, p->list, nT, b->T_loc, b->T_gid, p->mark, p->tmark, &b->nT_img));
    b->nT = nT;
    for (int64_t i = 0; i < n; i++) b->in_row[i] = p->mark[targets[i]];
    unmark(p->mark, b->T_loc, nT);

    /* hop 1: s2 samples per distinct target */
    size_t m1 = (size_t)nT * s2;
    MMS_CALL(grow3(&b->occ1, sizeof(int32_t), &p->raw1, sizeof(int32_t), NULL, 0, &p->cap_occ, m1));
    MMS_CALL(mms_sample_neighbours(tadj, nodes->gid, c->seed, c->max_degree, b->cols1, s2, b->T_loc,
                                   nT, p->raw1));
    MMS_CALL(grow3(&b->N1_loc, sizeof(int32_t), &b->N1_gid, sizeof(int64_t), &b->N1_tch,
                   sizeof(int32_t), &p->cap_1, m1 + 1));
    MMS_CALL(grow(&b->l2_ptr, &p->cap_l2p, m1 + 1, sizeof(int32_t)));
    MMS_CALL(grow(&p->list, &p->cap_list, m1 + 1, sizeof(int32_t)));
    int32_t n1 = collect(p->mark, p->raw1, m1, p->list);
    MMS_CALL(order_set(b, nodes, p->list, n1, b->N1_loc, b->N1_gid, p->mark, p->tmark, &b->n1_img));
    b->n1 = n1;
    for (size_t i = 0; i < m1; i++) b->occ1[i] = p->raw1[i] < 0 ? -1 : p->mark[p->raw1[i]];
    unmark(p->mark, b->N1_loc, n1);
    MMS_CHECK((int64_t)n1 * s1 < INT32_MAX, MMS_ERR_ARG,
              "sage batch build: %d hop-1 nodes x %d samples overflow int32", n1, s1);

    /* hop 2: s1 samples per distinct hop-1 node */
    size_t m2 = (size_t)n1 * s1;
    MMS_CALL(grow3(&p->raw2, sizeof(int32_t), &b->l2_idx, sizeof(int32_t), &b->l2_cnt,
                   sizeof(int32_t), &p->cap_raw2, m2 + 1));
    if (n1 > 0)
        MMS_CALL(mms_sample_neighbours(adj, nodes->gid, c->seed, c->max_degree, b->cols2, s1,
                                       b->N1_loc, n1, p->raw2));
    MMS_CALL(grow3(&b->N2_loc, sizeof(int32_t), &b->N2_gid, sizeof(int64_t), &b->N2_tch,
                   sizeof(int32_t), &p->cap_2, m2 + 1));
    MMS_CALL(grow3(&p->stamp, sizeof(int32_t), &p->spos, sizeof(int32_t), NULL, 0, &p->cap_stamp,
                   m2 + 1));
    MMS_CALL(grow(&p->list, &p->cap_list, m2 + 1, sizeof(int32_t)));
    int32_t n2 = collect(p->mark, p->raw2, m2, p->list);
    MMS_CALL(order_set(b, nodes, p->list, n2, b->N2_loc, b->N2_gid, p->mark, p->tmark, &b->n2_img));
    b->n2 = n2;
    for (size_t i = 0; i < m2; i++) p->raw2[i] = p->raw2[i] < 0 ? -1 : p->mark[p->raw2[i]];
    unmark(p->mark, b->N2_loc, n2);

    /* compress each hop-2 list into (distinct node, multiplicity) */
    for (int32_t w = 0; w < n2; w++) p->stamp[w] = -1;
    int32_t len = 0;
    for (int32_t u = 0; u < n1; u++) {
        b->l2_ptr[u] = len;
        for (int32_t k = 0; k < s1; k++) {
            int32_t w = p->raw2[(size_t)u * s1 + k];
            if (w < 0) continue;
            if (p->stamp[w] != u) {
                p->stamp[w] = u;
                p->spos[w] = len;
                b->l2_idx[len] = w;
                b->l2_cnt[len] = 1;
                len++;
            } else {
                b->l2_cnt[p->spos[w]]++;
            }
        }
    }
    b->l2_ptr[n1] = len;

    /* transpose: the hop-1 users of each hop-2 node, in N1 order */
    MMS_CALL(grow3(&b->r2_idx, sizeof(int32_t), &b->r2_cnt, sizeof(int32_t), NULL, 0, &p->cap_r2,
                   (size_t)len + 1));
    MMS_CALL(grow(&b->r2_ptr, &p->cap_r2p, (size_t)n2 + 1, sizeof(int32_t)));
    memset(b->r2_ptr, 0, ((size_t)n2 + 1) * sizeof(int32_t));
    for (int32_t e = 0; e < len; e++) b->r2_ptr[b->l2_idx[e] + 1]++;
    for (int32_t w = 0; w < n2; w++) b->r2_ptr[w + 1] += b->r2_ptr[w];
    for (int32_t w = 0; w < n2; w++) p->spos[w] = b->r2_ptr[w];
    for (int32_t u = 0; u < n1; u++)
        for (int32_t e = b->l2_ptr[u]; e < b->l2_ptr[u + 1]; e++) {
            int32_t w = b->l2_idx[e], at = p->spos[w]++;
            b->r2_idx[at] = u;
            b->r2_cnt[at] = b->l2_cnt[e];
        }

    /* touched tags, ascending */
    int32_t nt = 0;
    MMS_CALL(grow(&b->touch, &p->cap_touch,
                  (size_t)(nT - b->nT_img) + (size_t)(n1 - b->n1_img) + (size_t)(n2 - b->n2_img) + 1,
                  sizeof(int64_t)));
    const int64_t *gsets[3] = {b->T_gid, b->N1_gid, b->N2_gid};
    int32_t lo[3] = {b->nT_img, b->n1_img, b->n2_img}, hi[3] = {nT, n1, n2};
    for (int s = 0; s < 3; s++)
        for (int32_t i = lo[s]; i < hi[s]; i++) {
            int64_t t = gsets[s][i] - nodes->n_images;
            if (p->tmark[t] == 0) {
                p->tmark[t] = 1;
                b->touch[nt++] = t;
            }
        }
    sort_i64(b->touch, (size_t)nt);
    for (int32_t i = 0; i < nt; i++) p->tmark[b->touch[i]] = i;
    b->n_touch = nt;
    fill_tch(nodes, p->tmark, b->T_gid, nT, b->nT_img, b->T_tch);
    fill_tch(nodes, p->tmark, b->N1_gid, n1, b->n1_img, b->N1_tch);
    fill_tch(nodes, p->tmark, b->N2_gid, n2, b->n2_img, b->N2_tch);
    for (int32_t i = 0; i < nt; i++) p->tmark[b->touch[i]] = -1;

    b->has_mt = b->sparse ? n1 > b->n1_img : n1 > 0;
    choose_strategy(b, nodes);
    layout(b);
    if (b->arena_len > b->arena_cap || !b->arena) {
        mms_free(&b->arena);
        size_t cap = b->arena_len + b->arena_len / 4 + 64;
        MMS_CALL(mms_malloc(cap * sizeof(float), &b->arena));
        b->arena_cap = cap;
    }
    if (b->mask_len > b->masks_cap || !b->masks) {
        mms_free(&b->masks);
        size_t cap = b->mask_len + b->mask_len / 4 + 64;
        MMS_CALL(mms_malloc(cap, &b->masks));
        b->masks_cap = cap;
    }
    return MMS_OK;
}

static mms_status check_model(const mms_sage_batch_t *b, const mms_sage_model_t *m) {
    MMS_CHECK(m != NULL, MMS_ERR_ARG, "sage: no model");
    MMS_CHECK(m->cfg.dim == b->cfg.dim && m->cfg.hidden == b->cfg.hidden, MMS_ERR_MISMATCH,
              "sage: model is %d -> %d, the batch %d -> %d", m->cfg.dim, m->cfg.hidden,
              b->cfg.dim, b->cfg.hidden);
    MMS_CHECK(b->n_touch == 0 || b->touch[b->n_touch - 1] < m->n_tags, MMS_ERR_MISMATCH,
              "sage: batch uses tag %lld but the model has %lld tags",
              (long long)(b->n_touch ? b->touch[b->n_touch - 1] : 0), (long long)m->n_tags);
    return MMS_OK;
}

mms_status mms_sage_forward(mms_sage_batch_t *b, const mms_sage_model_t *m,
                            const mms_sage_nodes_t *nodes, int train, float *z) {
    MMS_CHECK(b != NULL && z != NULL, MMS_ERR_ARG, "sage forward: batch and z are required");
    MMS_CHECK(b->nT > 0, MMS_ERR_ARG, "sage forward: build the batch first");
    MMS_CALL(check_model(b, m));
    MMS_CALL(check_nodes(nodes, b->n_local, b->cfg.dim));
    MMS_CHECK((nodes->xp != NULL) == (b->sparse != 0), MMS_ERR_ARG,
              "sage forward: nodes are %s but the batch was built for %s rows",
              nodes->xp ? "CSR" : "dense", b->sparse ? "CSR" : "dense");
    b->flops_fwd = 0;
    MMS_CALL(mms_sagek_forward(b, m->params, m->tags, nodes->x, nodes->xp, nodes->xi, nodes->xv,
                               train, b->arena, b->masks, z, &b->flops_fwd));
    b->fwd_done = 1;
    b->fwd_train = train;
    return MMS_OK;
}

mms_status mms_sage_backward(mms_sage_batch_t *b, const mms_sage_model_t *m,
                             const mms_sage_nodes_t *nodes, const float *dz, mms_sage_grad_t *g) {
    MMS_CHECK(b && dz && g, MMS_ERR_ARG, "sage backward: batch, dz and grad are required");
    MMS_CHECK(b->fwd_done, MMS_ERR_ARG, "sage backward: run mms_sage_forward on this batch first");
    MMS_CALL(check_model(b, m));
    MMS_CALL(check_nodes(nodes, b->n_local, b->cfg.dim));
    MMS_CHECK(g->n_params == m->n_params && g->dim == m->cfg.dim, MMS_ERR_MISMATCH,
              "sage backward: gradient made for another configuration");
    float *dtags = NULL;
    g->n_rows = 0;
    if (b->cfg.train_tags && b->n_touch > 0) {
        MMS_CHECK((int64_t)b->n_touch <= g->cap_rows, MMS_ERR_MISMATCH,
                  "sage backward: %d touched tags but the gradient holds %lld rows", b->n_touch,
                  (long long)g->cap_rows);
        memcpy(g->rows, b->touch, (size_t)b->n_touch * sizeof(int64_t));
        g->n_rows = b->n_touch;
        dtags = g->drows;
    }
    b->flops_bwd = 0;
    MMS_CALL(mms_sagek_backward(b, m->params, m->tags, nodes->x, nodes->xp, nodes->xi, nodes->xv,
                                b->fwd_train, b->arena, b->masks, dz, g->dparams, dtags,
                                &b->flops_bwd));
    return MMS_OK;
}

size_t mms_sage_loss_work(int64_t B, int32_t Q, int32_t dim) {
    return (size_t)(2 * B + 2 * (int64_t)Q) * (size_t)dim + (size_t)B * (size_t)Q;
}

mms_status mms_sage_loss(const float *z, int64_t nz, int32_t dim, int64_t B, const int32_t *a,
                         const int32_t *bb, int32_t Q, const int32_t *neg, float *work,
                         double *loss, float *dz) {
    float *own = NULL;
    if (!work) {
        MMS_CALL(mms_malloc(mms_sage_loss_work(B, Q, dim) * sizeof(float), &own));
        work = own;
    }
    mms_status st = mms_sagek_loss(z, nz, dim, B, a, bb, Q, neg, work, loss, dz);
    mms_free(&own);
    if (st != MMS_OK) mms_error_trace(st, __FILE__, __LINE__, __func__);
    return st;
}

/* ---------------------------------------------------------------- inference */
/* y[0..D) += a x_v (image row dense or CSR, or tag row). */
static mms_status add_input(const mms_sage_model_t *m, const mms_sage_nodes_t *nd, int32_t v,
                            float a, float *y) {
    MMS_CHECK(v >= 0 && v < nd->n, MMS_ERR_ARG, "sage: node %d is not a local id in [0, %lld)", v,
              (long long)nd->n);
    const int D = m->cfg.dim;
    int64_t g = gid_of(nd, v);
    if (g >= nd->n_images) {
        int64_t t = g - nd->n_images;
        MMS_CHECK(t < m->n_tags, MMS_ERR_ARG, "sage: node %d is tag %lld, the model has %lld", v,
                  (long long)t, (long long)m->n_tags);
        const float *r = m->tags + (size_t)t * D;
        for (int i = 0; i < D; i++) y[i] += a * r[i];
    } else if (nd->x) {
        const float *r = nd->x + (size_t)v * D;
        for (int i = 0; i < D; i++) y[i] += a * r[i];
    } else {
        for (int64_t p = nd->xp[v]; p < nd->xp[v + 1]; p++)
            y[nd->xi[p]] += a * (nd->xv ? nd->xv[p] : 1.0f);
    }
    return MMS_OK;
}

#define INFER_CHUNK 256

mms_status mms_sage_layer1(const mms_sage_model_t *m, const mms_sage_nodes_t *nodes, int64_t n,
                           const int32_t *self, const float *xself, const int64_t *nbr_ptr,
                           const int32_t *nbr, int32_t k, float *h1) {
    MMS_CHECK(m && h1 && n >= 0 && (self || xself), MMS_ERR_ARG, "sage layer1: missing argument");
    MMS_CHECK(nbr || (nbr_ptr ? nbr_ptr[n] == nbr_ptr[0] : k == 0), MMS_ERR_ARG,
              "sage layer1: neighbour lists are not given");
    MMS_CHECK(nbr_ptr || k >= 0, MMS_ERR_ARG, "sage layer1: k = %d", k);
    MMS_CHECK(nodes != NULL, MMS_ERR_ARG, "sage layer1: nodes not given");
    MMS_CALL(check_nodes(nodes, nodes->n, m->cfg.dim));
    const int D = m->cfg.dim, H = m->cfg.hidden, H2 = 2 * H;
    float *buf = NULL;
    MMS_CALL(mms_malloc((size_t)2 * INFER_CHUNK * D * sizeof(float), &buf));
    float *Xs = buf, *Mn = buf + (size_t)INFER_CHUNK * D;
    mms_status st = MMS_OK;
    for (int64_t c0 = 0; c0 < n && st == MMS_OK; c0 += INFER_CHUNK) {
        int rows = (int)(n - c0 < INFER_CHUNK ? n - c0 : INFER_CHUNK);
        memset(Xs, 0, (size_t)rows * D * sizeof(float));
        memset(Mn, 0, (size_t)rows * D * sizeof(float));
        for (int r = 0; r < rows && st == MMS_OK; r++) {
            int64_t i = c0 + r;
            if (xself)
                memcpy(Xs + (size_t)r * D, xself + (size_t)i * D, (size_t)D * sizeof(float));
            else
                st = add_input(m, nodes, self[i], 1.0f, Xs + (size_t)r * D);
            int64_t p0 = nbr_ptr ? nbr_ptr[i] : i * k, p1 = nbr_ptr ? nbr_ptr[i + 1] : (i + 1) * k;
            for (int64_t p = p0; p < p1 && st == MMS_OK; p++)
                if (nbr[p] >= 0)
                    st = add_input(m, nodes, nbr[p], 1.0f / (float)(p1 - p0), Mn + (size_t)r * D);
        }
        if (st != MMS_OK) break;
        float *out = h1 + (size_t)c0 * H2;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, H, D, 1.0f, Xs, D, m->W1s, H,
                    0.0f, out, H2); /* (rows x D)(D x H) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, H, D, 1.0f, Mn, D, m->W1n, H,
                    0.0f, out + H, H2);
        for (size_t e = 0; e < (size_t)rows * H2; e++)
            if (out[e] < 0) out[e] = 0;
    }
    mms_free(&buf);
    if (st != MMS_OK) mms_error_trace(st, __FILE__, __LINE__, __func__);
    return st;
}

mms_status mms_sage_layer2(const mms_sage_model_t *m, int64_t n, const float *h1_self,
                           const float *h1_nbr, const int64_t *nbr_ptr, const int32_t *nbr,
                           int32_t k, float *z) {
    MMS_CHECK(m && h1_self && z && n >= 0, MMS_ERR_ARG, "sage layer2: missing argument");
    const int H = m->cfg.hidden, H2 = 2 * H;
    float *Mn = NULL;
    MMS_CALL(mms_malloc((size_t)INFER_CHUNK * H2 * sizeof(float), &Mn));
    for (int64_t c0 = 0; c0 < n; c0 += INFER_CHUNK) {
        int rows = (int)(n - c0 < INFER_CHUNK ? n - c0 : INFER_CHUNK);
        memset(Mn, 0, (size_t)rows * H2 * sizeof(float));
        for (int r = 0; r < rows; r++) {
            int64_t i = c0 + r;
            int64_t p0 = nbr_ptr ? nbr_ptr[i] : i * k, p1 = nbr_ptr ? nbr_ptr[i + 1] : (i + 1) * k;
            for (int64_t p = p0; p < p1; p++) {
                if (nbr[p] < 0) continue;
                const float *h = h1_nbr + (size_t)nbr[p] * H2;
                float a = 1.0f / (float)(p1 - p0);
                for (int e = 0; e < H2; e++) Mn[(size_t)r * H2 + e] += a * h[e];
            }
        }
        float *out = z + (size_t)c0 * H2;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, H, H2, 1.0f,
                    h1_self + (size_t)c0 * H2, H2, m->W2s, H, 0.0f, out, H2); /* (rows x 2H)(2H x H) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, H, H2, 1.0f, Mn, H2, m->W2n, H,
                    0.0f, out + H, H2);
        for (int r = 0; r < rows; r++) {
            float *o = out + (size_t)r * H2;
            double s = 0;
            for (int e = 0; e < H2; e++) s += (double)o[e] * o[e];
            float inv = (float)(1.0 / fmax(sqrt(s), 1e-12));
            for (int e = 0; e < H2; e++) o[e] *= inv;
        }
    }
    mms_free(&Mn);
    return MMS_OK;
}

mms_status mms_sage_embed_h1(const mms_sage_model_t *m, const mms_sage_nodes_t *nodes,
                             const mms_csr_t *adj, uint64_t key, const int32_t *v, int64_t n,
                             float *h1) {
    MMS_CHECK(m && adj && (v || n == 0) && h1, MMS_ERR_ARG, "sage embed_h1: missing argument");
    if (n == 0) return MMS_OK;
    const mms_sage_config_t *c = &m->cfg;
    int32_t *cols = NULL, *raw = NULL;
    MMS_CALL(mms_malloc((size_t)c->s1 * sizeof(int32_t), &cols));
    mms_status st = mms_malloc((size_t)n * c->s1 * sizeof(int32_t), &raw);
    if (st == MMS_OK) st = mms_sample_columns(c->seed, key, 2, c->max_degree, c->s1, cols);
    if (st == MMS_OK)
        st = mms_sample_neighbours(adj, nodes ? nodes->gid : NULL, c->seed, c->max_degree, cols,
                                   c->s1, v, n, raw);
    if (st == MMS_OK) st = mms_sage_layer1(m, nodes, n, v, NULL, NULL, raw, c->s1, h1);
    mms_free(&cols);
    mms_free(&raw);
    if (st != MMS_OK) mms_error_trace(st, __FILE__, __LINE__, __func__);
    return st;
}

mms_status mms_sage_query(const mms_sage_model_t *m, const mms_sage_nodes_t *nodes,
                          const float *x_q, const int32_t *list, int32_t len,
                          const float *h1_nbr, float *z, float *h1_q) {
    MMS_CHECK(m && x_q && z && len >= 0 && (len == 0 || (list && h1_nbr)), MMS_ERR_ARG,
              "sage query: missing argument");
    const int H2 = 2 * m->cfg.hidden;
    float *h = NULL;
    int32_t *idx = NULL;
    MMS_CALL(mms_malloc((size_t)H2 * sizeof(float), &h));
    mms_status st = mms_malloc((size_t)(len ? len : 1) * sizeof(int32_t), &idx);
    int64_t ptr[2] = {0, len};
    if (st == MMS_OK) st = mms_sage_layer1(m, nodes, 1, NULL, x_q, ptr, list, 0, h);
    if (st == MMS_OK) {
        for (int32_t l = 0; l < len; l++) idx[l] = list[l] < 0 ? -1 : l;
        st = mms_sage_layer2(m, 1, h, h1_nbr, ptr, idx, 0, z);
    }
    if (st == MMS_OK && h1_q) memcpy(h1_q, h, (size_t)H2 * sizeof(float));
    mms_free(&h);
    mms_free(&idx);
    if (st != MMS_OK) mms_error_trace(st, __FILE__, __LINE__, __func__);
    return st;
}
