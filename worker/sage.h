/* sage.h: the GraphSAGE math core (graphsage_mean, 2 layers, concat, no bias).
 *
 * What it does: parameters and their initialisation, the per-step computation
 * plan over DISTINCT nodes (sampling + de-duplication), forward, the unsupervised
 * loss and its gradient w.r.t. the embeddings, backward into one contiguous
 * parameter-gradient block plus sparse tag-table rows, and the inference path
 * (embedding pass, inductive query). What it does not do: MPI, file I/O,
 * optimisation (adam.h), choosing pairs or negatives (the trainer does).
 * The math, the dropout sites and the deviations from the reference are
 * written out in docs/model.md.
 *
 * Model (row-vector convention, x is 1 x D):
 *   h1(v) = ReLU([drop(x_v) W1s || mean_{u in S(v)} drop(x_u) W1n])     2H
 *   z(t)  = [drop(h1_T(t)) W2s || mean_{u in S10(t)} drop(h1_H(u)) W2n]  2H
 *   zhat  = z / max(|z|, 1e-12)
 * where a target t's layer-1 neighbours are its s2 hop-1 samples (h1_T) and a
 * hop-1 node u's layer-1 neighbours are its s1 hop-2 samples (h1_H).
 * Parameter block (ONE allocation, llm.c style, the layout of the gradient too):
 *   W1s (D x H) | W1n (D x H) | W2s (2H x H) | W2n (2H x H)
 * Tag nodes' inputs are a separate trainable table (n_tags x D).
 *
 * Index spaces: node ids given to this module are LOCAL int32 ids of the
 * caller (a shard plus its halo, or the whole graph); mms_sage_nodes_t maps them
 * to global ids (the RNG key), tells tags from images, and points at the image
 * input rows. Every random draw (samples, dropout) is keyed by (seed, step, site,
 * global id [, slot]) so a batch split over ranks gets the same samples and
 * masks as on one rank.
 *
 * Threads: no global state; a batch (and a grad) is used by one thread at a
 * time, a model may be read by several. BLAS threading is the caller's choice
 * (one thread per rank in the trainer).
 */
#ifndef MMS_SAGE_H
#define MMS_SAGE_H

#include <stddef.h>
#include <stdint.h>

#include "mms_graph.h"
#include "mms_status.h"

/* Strategy for the hop-2 -> hop-1 mean through W1n (see docs/model.md). */
enum {
    MMS_SAGE_H2_AUTO = 0,      /* cheaper of the two by a cost model, per node kind */
    MMS_SAGE_H2_TRANSFORM = 1, /* (a) transform each distinct hop-2 node, average outputs */
    MMS_SAGE_H2_AVERAGE = 2,   /* (b) average inputs per hop-1 node, then transform */
    MMS_SAGE_H2_IMG_AVERAGE = 3, /* images (b), tags (a) */
    MMS_SAGE_H2_TAG_AVERAGE = 4  /* images (a), tags (b) */
};

/* Inference key: the "step" used by the embedding pass and the query path so
 * their samples agree (any fixed value works; this is the default). */
#define MMS_SAGE_EVAL_STEP ((uint64_t)1 << 50)

typedef struct {
    int32_t dim;        /* D: width of image features and tag vectors */
    int32_t hidden;     /* H: width of each half (128); layer outputs are 2H */
    int32_t s1;         /* samples per hop-1 node (outer hop, 25) */
    int32_t s2;         /* samples per target (inner hop, 10) */
    int32_t max_degree; /* padded adjacency width (100) */
    int32_t n_neg;      /* negatives per batch (20); used by callers and the bench */
    float dropout;      /* p in [0, 1); masks use 8 bits: drop iff byte < round(256 p) */
    int train_tags;     /* 1: tag vectors are trained; 0: frozen (no tag gradient) */
    int h2_mode;        /* MMS_SAGE_H2_* */
    uint64_t seed;
} mms_sage_config_t;

/* Paper / reference defaults: H 128, s1 25, s2 10, cap 100, 20 negatives,
 * dropout 0.2, tags trained, auto strategy, seed 1. dim is left 0 (set it). */
void mms_sage_config_default(mms_sage_config_t *c);
mms_status mms_sage_config_check(const mms_sage_config_t *c);
/* Floats in the parameter block: 2 D H + 2 (2H) H. */
size_t mms_sage_n_params(const mms_sage_config_t *c);

/* ---------------------------------------------------------------- model */
typedef struct {
    mms_sage_config_t cfg;
    size_t n_params;
    float *params;                /* owned: n_params floats */
    float *W1s, *W1n, *W2s, *W2n; /* views into params: D x H, D x H, 2H x H, 2H x H */
    int64_t n_tags;
    float *tags; /* owned: n_tags x D (row-major) */
} mms_sage_model_t;

/* Allocates and initialises: W* Glorot/Xavier uniform, limit sqrt(6/(fan_in+fan_out)),
 * drawn from mms_rng(seed, MMS_STREAM_INIT, index = tensor number 0..3); tag row i
 * standard normal from mms_rng(seed, INIT, 2^40 + i), then L2-normalised (as sage.py). */
/* Tag t's random input row (D floats): standard normals from
 * mms_rng(seed, INIT, 2^40 + t), L2-normalised (as sage.py). */
void mms_sage_tag_row_random(uint64_t seed, int64_t t, int32_t dim, float *row);

mms_status mms_sage_model_create(const mms_sage_config_t *c, int64_t n_tags,
                                 mms_sage_model_t **out);
void mms_sage_model_destroy(mms_sage_model_t **m);

/* ---------------------------------------------------------------- inputs */
/* The caller's local index space. Borrowed by every call that takes it. */
typedef struct {
    int64_t n;          /* local nodes */
    const int64_t *gid; /* n global ids, or NULL for gid = local id */
    int64_t n_images;   /* global: gid >= n_images is tag number gid - n_images */
    int32_t dim;        /* D */
    /* Image input rows indexed by LOCAL id (rows of tag nodes are never read,
     * so the table may stop after the last image). Exactly one of: */
    const float *x;     /* dense, row-major, dim floats per row */
    const int64_t *xp;  /* CSR row pointers ... */
    const int32_t *xi;  /* ... column indices (ascending within a row) ... */
    const float *xv;    /* ... values, or NULL when every stored value is 1 */
} mms_sage_nodes_t;

/* A CSR copy of a dense feature table, made when it is sparse enough. */
typedef struct {
    int64_t n;
    int32_t dim;
    int64_t nnz;
    int64_t *indptr;  /* n + 1 */
    int32_t *indices; /* nnz */
    float *values;    /* nnz, or NULL when all are 1 (binary features) */
} mms_sage_sparse_t;

/* Density (non-zeros / n / dim) under which mms_sage_sparsify converts. */
#define MMS_SAGE_SPARSE_DENSITY 0.05

/* If x (n x dim) has density <= max_density, *out = a CSR copy (owned by the
 * caller, free with mms_sage_sparse_destroy); otherwise *out = NULL. */
mms_status mms_sage_sparsify(const float *x, int64_t n, int32_t dim, double max_density,
                             mms_sage_sparse_t **out);
void mms_sage_sparse_destroy(mms_sage_sparse_t **s);
/* Point nodes at s (xp/xi/xv set, x cleared). */
void mms_sage_nodes_use_sparse(mms_sage_nodes_t *nodes, const mms_sage_sparse_t *s);

/* ---------------------------------------------------------------- gradients */
typedef struct {
    size_t n_params;
    float *dparams;   /* owned, n_params: same layout as the parameter block */
    int32_t dim;
    int64_t cap_rows; /* = n_tags: rows and drows hold that many rows */
    int64_t n_rows;   /* tag rows the step touched (0 when tags are frozen) */
    int64_t *rows;    /* owned, ascending tag numbers, n_rows valid */
    float *drows;     /* owned, n_rows x dim: d loss / d tag row */
} mms_sage_grad_t;

mms_status mms_sage_grad_create(const mms_sage_config_t *c, int64_t n_tags, mms_sage_grad_t **out);
void mms_sage_grad_destroy(mms_sage_grad_t **g);
/* g += h: the parameter block, and the sparse tag rows as the union of both
 * ascending lists (rows in both are summed). Same shapes required. */
mms_status mms_sage_grad_add(mms_sage_grad_t *g, const mms_sage_grad_t *h);

/* ---------------------------------------------------------------- one step */
/* The computation plan of one step over distinct nodes plus its workspace.
 * Created once, rebuilt every step; buffers only grow, so after the first
 * steps there is no allocation. Fields are read-only for callers.
 *
 * Sets (each ordered images first, then tags, each part by local id):
 *   T  distinct targets (rows of z)              nT,  first nT_img are images
 *   N1 distinct non-dummy hop-1 samples          n1,  n1_img
 *   N2 distinct non-dummy hop-2 samples          n2,  n2_img
 * occ1[t*s2 + j]: N1 index of target t's j-th hop-1 sample, -1 = dummy.
 * Hop-2 lists, compressed: node u of N1 has entries l2_ptr[u] .. l2_ptr[u+1]-1,
 *   each an N2 index l2_idx[] drawn l2_cnt[] times out of s1 (dummies omitted;
 *   the mean still divides by s1); r2_* is the transpose (users of each N2 node). */
typedef struct {
    mms_sage_config_t cfg;
    int64_t n_local, n_tags;
    uint64_t step;
    int sparse;      /* image rows are CSR */
    int32_t *cols1;  /* s2 columns for hop 1 */
    int32_t *cols2;  /* s1 columns for hop 2 */

    int64_t n_in;    /* targets as given to build */
    int32_t *in_row; /* n_in: row of z for each given target */

    int32_t nT, nT_img, n1, n1_img, n2, n2_img;
    int32_t *T_loc, *N1_loc, *N2_loc;  /* local ids */
    int64_t *T_gid, *N1_gid, *N2_gid;  /* global ids (RNG keys) */
    int32_t *T_tch, *N1_tch, *N2_tch;  /* tag rows: slot in touch[]; images: -1 */
    int32_t *occ1;                     /* nT * s2 */
    int32_t *l2_ptr, *l2_idx, *l2_cnt; /* n1 + 1, l2_ptr[n1], l2_ptr[n1] */
    int32_t *r2_ptr, *r2_idx, *r2_cnt; /* the same lists by hop-2 node: n2 + 1, N1 index, count */
    int32_t n_touch;                   /* distinct tags in T u N1 u N2 */
    int64_t *touch;                    /* ascending tag numbers */
    int h2_img_a, h2_tag_a;            /* 1: strategy (a) for that kind, 0: (b) */
    int has_mt;                        /* some hop-1 occurrence has a dense input row */

    /* arena layout, in elements of the kernel's real type */
    size_t off_XT, off_MT, off_HT, off_X1, off_H1, off_X2, off_P2, off_M1, off_E, off_M2,
        off_Z, off_NRM, off_DZ, off_DHT, off_DM2, off_DH1, off_DP2, off_TMP, off_ROW, arena_len;
    int32_t x2_lo, x2_hi; /* N2 rows gathered densely for (a): [x2_lo, x2_hi) */
    int32_t p2_lo, p2_hi; /* N2 rows transformed first (a):  [p2_lo, p2_hi) */
    int32_t tmp_rows;     /* rows of the D-wide scratch used for tag gradients */
    float *arena;         /* owned float arena (arena_len), grown as needed */
    size_t arena_cap;
    /* dropout masks kept from forward for backward (bytes): per occurrence of
     * site T_NEIGH (nT*s2 rows of D), L2_NEIGH (nT*s2 rows of 2H), per target of
     * L2_SELF (nT rows of 2H); 0 when dropout is 0 */
    size_t moff_B, moff_F, moff_E, mask_len;
    uint8_t *masks; /* owned, mask_len bytes */
    size_t masks_cap;
    double flops_fwd, flops_bwd; /* last forward / backward: GEMM + sparse flops */
    int fwd_done, fwd_train;     /* a forward ran on this plan, with that train flag */

    void *priv; /* scratch owned by the batch */
} mms_sage_batch_t;

/* n_local: size of the caller's local index space; n_tags: global tag count. */
mms_status mms_sage_batch_create(const mms_sage_config_t *c, int64_t n_local, int64_t n_tags,
                                 mms_sage_batch_t **out);
void mms_sage_batch_destroy(mms_sage_batch_t **b);

/* Sample and plan one step for targets[0..n) (local ids; repeats allowed: a
 * repeated target gets one row of z, see in_row). adj: capped CSR in local ids
 * (borrowed). step keys the sampling columns and the dropout masks. */
mms_status mms_sage_batch_build(mms_sage_batch_t *b, const mms_csr_t *adj,
                                const mms_sage_nodes_t *nodes, uint64_t step,
                                const int32_t *targets, int64_t n);

/* As mms_sage_batch_build, but the targets' hop-1 samples are drawn from tadj
 * and the hop-1 nodes' hop-2 samples from adj (tadj NULL = adj). With tadj =
 * mms_sage_adj_without_tags(adj) an image target is embedded from its visual
 * neighbours alone, the way an untagged query is (docs/model.md, "the link
 * term"), while its neighbours keep their tags, as stored states do. */
mms_status mms_sage_batch_build_tadj(mms_sage_batch_t *b, const mms_csr_t *adj,
                                     const mms_csr_t *tadj, const mms_sage_nodes_t *nodes,
                                     uint64_t step, const int32_t *targets, int64_t n);

/* *out = a copy of adj (n local nodes; gid maps them to global ids, NULL =
 * identity) in which image rows (gid < n_images) keep only their image
 * entries; tag rows are unchanged. The caller frees it with mms_csr_free. */
mms_status mms_sage_adj_without_tags(const mms_csr_t *adj, const int64_t *gid, int64_t n_images,
                                     mms_csr_t *out);

/* z (nT x 2H, caller buffer): L2-normalised embeddings of the distinct targets.
 * train = 1: dropout on (masks keyed by the build's step); 0: inference. The
 * batch keeps the activations for mms_sage_backward. */
mms_status mms_sage_forward(mms_sage_batch_t *b, const mms_sage_model_t *m,
                            const mms_sage_nodes_t *nodes, int train, float *z);

/* Given dz = d loss / d zhat (nT x 2H), writes g->dparams (overwritten) and,
 * when tags are trained, the touched tag rows (g->rows, g->drows). Must follow
 * mms_sage_forward(train = 1 or 0) on the same batch, model and nodes. */
mms_status mms_sage_backward(mms_sage_batch_t *b, const mms_sage_model_t *m,
                             const mms_sage_nodes_t *nodes, const float *dz, mms_sage_grad_t *g);

/* Unsupervised loss over rows of z (nz x dim, normalised embeddings):
 *   L = (1/B) sum_i [ softplus(-z_a(i) . z_b(i)) + sum_j softplus(z_a(i) . z_n(j)) ]
 * a, b: B row numbers (positive pairs), neg: Q row numbers (shared negatives).
 * dz (nz x dim, optional) is overwritten with dL/dz (rows used several times
 * accumulate). work: mms_sage_loss_work(B, Q, dim) floats, or NULL to allocate. */
size_t mms_sage_loss_work(int64_t B, int32_t Q, int32_t dim);
mms_status mms_sage_loss(const float *z, int64_t nz, int32_t dim, int64_t B, const int32_t *a,
                         const int32_t *bb, int32_t Q, const int32_t *neg, float *work,
                         double *loss, float *dz);

/* ---------------------------------------------------------------- inference */
/* Layer 1 without dropout for n nodes:
 *   h1[i] = ReLU([x_i W1s || mean_{u in list i} x_u W1n])        (n x 2H, caller buffer)
 * self: n local ids, or NULL with xself (n x D dense rows, e.g. query images).
 * Lists: nbr_ptr (n + 1) and nbr, or nbr_ptr NULL and fixed length k (list i =
 * nbr[i*k .. i*k+k)). Entries are local ids or -1 (dummy: zero input, still
 * counted in the mean); an empty list gives a zero mean. */
mms_status mms_sage_layer1(const mms_sage_model_t *m, const mms_sage_nodes_t *nodes, int64_t n,
                           const int32_t *self, const float *xself, const int64_t *nbr_ptr,
                           const int32_t *nbr, int32_t k, float *h1);

/* Layer 2 without dropout and the normalisation:
 *   z[i] = normalise([h1_self[i] W2s || mean_{r in list i} h1_nbr[r] W2n])   (n x 2H)
 * h1_self: n x 2H; h1_nbr: rows referenced by the lists (row numbers, -1 = dummy
 * zero row); list layout as in mms_sage_layer1. */
mms_status mms_sage_layer2(const mms_sage_model_t *m, int64_t n, const float *h1_self,
                           const float *h1_nbr, const int64_t *nbr_ptr, const int32_t *nbr,
                           int32_t k, float *z);

/* Stored layer-1 states for the embedding pass: h1_H(v) of nodes v[0..n) as a
 * hop-1 node of step `key` (s1 samples at the key's hop-2 columns). These are
 * exactly the h1 the forward uses for a hop-1 node at that step. h1: n x 2H. */
mms_status mms_sage_embed_h1(const mms_sage_model_t *m, const mms_sage_nodes_t *nodes,
                             const mms_csr_t *adj, uint64_t key, const int32_t *v, int64_t n,
                             float *h1);

/* The embedding of nodes (targets) at step `key` is mms_sage_batch_build(key) +
 * mms_sage_forward(train = 0); it equals
 *   layer2(layer1(t, hop-1 samples of t), embed_h1(hop-1 samples)).
 *
 * An inductive query q (not in the graph): x_q (D) and an explicit neighbour
 * list (local ids of its k nearest images and/or its tags; no sampling: every
 * listed neighbour counts once; to emulate the reference's query sampling pass
 * the output of mms_sample_list instead), with h1_nbr (len x 2H) the neighbours'
 * stored h1_H states from the embedding pass (same order as the list):
 *   h1(q) = ReLU([x_q W1s || mean_l x_l W1n]),  z(q) = normalise([h1(q) W2s || mean_l h1_nbr[l] W2n])
 * z: 2H; h1_q (2H) optional. */
mms_status mms_sage_query(const mms_sage_model_t *m, const mms_sage_nodes_t *nodes,
                          const float *x_q, const int32_t *list, int32_t len,
                          const float *h1_nbr, float *z, float *h1_q);

/* ---------------------------------------------------------------- kernels
 * The math behind forward/backward/loss on raw arrays, written once in
 * sage_kern.c for a real type: float here; tests compile a double copy
 * (names suffixed _d) by including sage_kern.c with MMS_SAGE_KERN_DOUBLE
 * defined. x/xp/xi/xv as in mms_sage_nodes_t (xv NULL = ones); tags: the tag
 * table; arena: b->arena_len elements; masks: b->mask_len bytes, written by
 * forward(train) and read by backward; dtags: b->n_touch x D rows for
 * b->touch (NULL = frozen tags). flops (optional) is incremented. */
mms_status mms_sagek_forward(const mms_sage_batch_t *b, const float *params, const float *tags,
                             const float *x, const int64_t *xp, const int32_t *xi,
                             const float *xv, int train, float *arena, uint8_t *masks, float *z,
                             double *flops);
mms_status mms_sagek_backward(const mms_sage_batch_t *b, const float *params, const float *tags,
                              const float *x, const int64_t *xp, const int32_t *xi,
                              const float *xv, int train, float *arena, const uint8_t *masks,
                              const float *dz, float *dparams, float *dtags, double *flops);
mms_status mms_sagek_loss(const float *z, int64_t nz, int32_t dim, int64_t B, const int32_t *a,
                          const int32_t *bb, int32_t Q, const int32_t *neg, float *work,
                          double *loss, float *dz);

#endif
