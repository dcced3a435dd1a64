/* train.c: the distributed trainer (see train.h): one training step (this
 * rank's pairs, the z requests, the z / dz exchange through one exchange plan
 * of common/mms_mpi.h, forward, loss, backward, the gradient reductions) and
 * the driver as named steps (open inputs, shard, model, pairs, run, finish).
 * Not here: the GraphSAGE math (sage.h), the walks (walks.h), the shard and
 * halo (shard.h), the model directory's format (model_io.h), the checkpoint
 * file's (checkpoint.h).
 */
#define _GNU_SOURCE
#include "train.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adam.h"
#include "checkpoint.h"
#include "mms_array.h"
#include "mms_fs.h"
#include "mms_graph.h"
#include "mms_log.h"
#include "mms_manifest.h"
#include "mms_mpi.h"
#include "mms_rng.h"
#include "model_io.h"
#include "part_dir.h"
#include "sage.h"
#include "shard.h"
#include "walks.h"

void mms_train_params_default(mms_train_params_t *p) {
    memset(p, 0, sizeof *p);
    p->epochs = 1;
    p->max_steps = 0;
    p->time_limit = 0;
    p->seed = 1;
    p->lr = 1e-5; /* the paper's learning rate */
    p->batch = 512;
    p->neg = 20;
    p->dropout = 0.2;
    p->hidden = 128;
    p->s1 = 25;
    p->s2 = 10;
    p->walks = 50;
    p->walk_len = 5;
    p->ckpt_every = 1000;
    p->log_every = 50;
    p->temperature = 1.0;
    p->link_weight = 0;
    p->link_neg = 20;
    p->link_temperature = 1.0;
}

/* ---------------------------------------------------------------- negatives */

/* Cumulative degree^0.75 over all nodes (every rank holds the same table). */
typedef struct {
    int64_t n;
    double *cdf; /* n, last = 1 */
} negdist_t;

static mms_status negdist_build(const mms_csr_t *full, negdist_t *nd) {
    nd->n = full->n;
    MMS_CALL(mms_malloc((size_t)(nd->n ? nd->n : 1) * sizeof(double), &nd->cdf));
    double acc = 0;
    for (int64_t v = 0; v < nd->n; v++) {
        acc += pow((double)mms_csr_degree(full, v), 0.75);
        nd->cdf[v] = acc;
    }
    MMS_CHECK(acc > 0, MMS_ERR_ARG, "train: the graph has no edges");
    for (int64_t v = 0; v < nd->n; v++) nd->cdf[v] /= acc;
    return MMS_OK;
}

static int64_t negdist_draw(const negdist_t *nd, double u) {
    int64_t lo = 0, hi = nd->n - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (nd->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---------------------------------------------------------------- trainer */

typedef struct {
    const mms_train_params_t *p;
    MPI_Comm comm;
    int rank, nranks;
    mms_graph_t *g;
    mms_partition_t *pt;
    mms_shard_t sh;
    mms_sage_config_t cfg;
    mms_sage_model_t *model;
    mms_sage_grad_t *grad;
    mms_sage_batch_t *batch;
    mms_sage_nodes_t nodes;
    mms_sage_sparse_t *sparse;
    mms_adam_t *adam, *adam_tags; /* parameter block; tag table (lazy rows) */
    mms_walk_pairs_t pairs;
    negdist_t nd;
    negdist_t ndtag; /* degree^0.75 over tags only (link term negatives), tag numbers */
    /* the link term (docs/model.md): anchors = this step's image pair starts,
     * embedded from the target adjacency without their tag edges */
    mms_csr_t tadj;
    mms_sage_batch_t *batch2;
    mms_sage_grad_t *grad2;
    int32_t *anc;             /* anchors' local ids */
    int64_t *lk_tag;          /* per link pair: the tag's global id */
    int32_t *lk_anc;          /* per link pair: index into anc */
    size_t cap_anc, cap_lk;
    int64_t *lk_extra;        /* distinct tag ids the link term needs in zall */
    int32_t *lk_xrow;         /* their rows in zall */
    size_t cap_extra, cap_xrow;
    int64_t n_extra;
    float *z2, *zc, *dzc, *zw, *dzw, *dz2;
    size_t cap_z2, cap_zc, cap_dzc, cap_zw, cap_dzw, cap_dz2;
    int32_t *la, *lb, *ln;
    size_t cap_l;
    float *link_work;
    size_t cap_link_work;
    double link_loss;         /* this step's (global mean, unweighted) */
    int64_t *negt;            /* the link term's negative tags (n_tags or link_neg) */
    int64_t slots_total;      /* global pair-slot space */
    int64_t slots_per_step;
    int64_t steps_per_epoch;
    /* per-step scratch (grows, never shrinks) */
    int64_t *loc_u, *loc_v;   /* this rank's pairs (global ids) */
    size_t cap_pairs;
    int32_t *targets;
    size_t cap_targets;
    float *z, *zall, *dzall, *dz;
    size_t cap_z, cap_zall, cap_dz;
    int *scount;              /* nranks: z rows this rank asks of each owner */
    int64_t *req_out;         /* the ids asked, grouped by owner (build_requests) */
    size_t cap_req_out;
    mms_mpi_plan_t plan;      /* the z / dz exchange of the step */
    float *zsend, *zrecv;
    size_t cap_zsend, cap_zrecv;
    int32_t *ra, *rb, *rn; /* rb, rn point into ra's allocation */
    size_t cap_rows;
    float *loss_work;
    size_t cap_loss_work;
    /* sparse tag-gradient exchange */
    int64_t *tag_union;
    float *tag_block;
    size_t cap_tag_block;
    int *tcount, *tdispl;
    int64_t exch_bytes;
    double flops;
    double phase[8]; /* seconds per step phase, summed (see k_phase) */
    /* rank 0: where this run writes. --resume: the model directory itself; a
     * fresh run: "<out>.tmp.<pid>", renamed over --out only when the run
     * ends well, so a failed run never touches an existing model */
    char dir[MMS_PATH_MAX];
    int staging;
} trainer_t;

/* Named stages of a step, for the profile printed at the end. */
static const char *k_phase[8] = {"pairs+requests", "plan", "forward", "z exchange", "loss",
                                 "backward", "allreduce", "adam"};
#define PHASE(t, i, t0)                                                            \
    do {                                                                           \
        double now_ = mms_now();                                                   \
        (t)->phase[i] += now_ - (t0);                                              \
        (t0) = now_;                                                               \
    } while (0)

static int owner_of(const trainer_t *t, int64_t v) { return t->sh.part[v]; }

/* Hide the tag edges of a fraction of the training images from the sampling
 * adjacency: those images are embedded from their visual neighbours alone, the
 * way an untagged query arrives, while the walks (on the full graph) still pair
 * them with their tags. The choice is a hash of (seed, image id): the same on
 * every rank, so halo rows agree with their owners. */
static void hide_tag_edges(trainer_t *t, double fraction) {
    mms_csr_t *a = &t->sh.adj;
    int64_t rows = t->sh.n_owned + t->sh.n_halo1, w = 0, hidden = 0;
    uint64_t cut = (uint64_t)(fraction * 18446744073709551615.0);
    for (int64_t i = 0; i < a->n; i++) {
        int64_t b = a->indptr[i], e = a->indptr[i + 1];
        a->indptr[i] = w;
        int64_t v = t->sh.gid[i];
        int hide = i < rows && v < t->sh.n_images &&
                   mms_rng_hash(t->p->seed, MMS_STREAM_MASK, (uint64_t)v, 0) < cut;
        hidden += hide && i < t->sh.n_owned;
        for (int64_t k = b; k < e; k++)
            if (!hide || t->sh.gid[a->indices[k]] < t->sh.n_images) a->indices[w++] = a->indices[k];
    }
    a->indptr[a->n] = w;
    mms_log_rankinfo("train: tag edges hidden from %lld owned images (%.0f%%) for sampling", (long long)hidden,
                     100.0 * fraction);
}

/* Tag inputs from their images (--tag-init mean): tag t's input row is the mean
 * of the input rows of its images, so a tag starts where its images are in
 * input space and W1s maps both alike (an untagged query's own features then
 * land near the tags it looks like). Tag t is summed by rank t mod P over its
 * images in CSR order and the rows are combined with an allreduce in which
 * every row has one non-zero contributor: the same bits at any rank count. */
static mms_status tag_inputs_from_images(trainer_t *t) {
    const mms_graph_t *g = t->g;
    size_t D = (size_t)t->cfg.dim;
    int64_t nt = g->n_tags;
    if (nt == 0) return MMS_OK;
    double *acc = NULL;
    MMS_CALL(mms_calloc(D, sizeof(double), &acc));
    float *tab = t->model->tags;
    memset(tab, 0, (size_t)nt * D * sizeof(float));
    int64_t empty = 0;
    for (int64_t k = t->rank; k < nt; k += t->nranks) {
        int64_t v = g->n_images + k, n = 0;
        memset(acc, 0, D * sizeof(double));
        for (int64_t e = g->full.indptr[v]; e < g->full.indptr[v + 1]; e++) {
            int64_t u = g->full.indices[e];
            if (u >= g->n_images) continue;
            const float *xu = g->x + (size_t)u * D;
            for (size_t i = 0; i < D; i++) acc[i] += xu[i];
            n++;
        }
        float *row = tab + (size_t)k * D;
        if (n == 0) { /* a tag without training images keeps its random vector */
            empty++;
            mms_sage_tag_row_random(t->cfg.seed, k, t->cfg.dim, row);
        } else {
            for (size_t i = 0; i < D; i++) row[i] = (float)(acc[i] / (double)n);
        }
    }
    free(acc);
    int64_t n_el = nt * (int64_t)D, off = 0;
    while (off < n_el) { /* in blocks below INT_MAX elements */
        int cnt = (int)(n_el - off < (1 << 30) ? n_el - off : (1 << 30));
        MMS_MPI_CALL(MPI_Allreduce(MPI_IN_PLACE, tab + off, cnt, MPI_FLOAT, MPI_SUM, t->comm));
        off += cnt;
    }
    int64_t empty_all = 0;
    MMS_MPI_CALL(MPI_Allreduce(&empty, &empty_all, 1, MPI_INT64_T, MPI_SUM, t->comm));
    mms_log_info("train: tag inputs = mean of their images' inputs (%lld tags without images keep random ones)",
                 (long long)empty_all);
    return MMS_OK;
}

/* Local id of v when owned here, else -1. */
static int64_t owned_local(const trainer_t *t, int64_t v) {
    if (owner_of(t, v) != t->rank) return -1;
    return mms_shard_local(&t->sh, v);
}

/* The global batch of step `step` (epoch-relative position): this rank's pairs. */
static mms_status collect_pairs(trainer_t *t, int64_t step, int64_t *n_out) {
    int64_t epoch = step / t->steps_per_epoch, s_in = step % t->steps_per_epoch;
    mms_perm_t pm;
    mms_perm_init(&pm, (uint64_t)t->slots_total, t->p->seed, (uint64_t)epoch);
    int64_t lo = s_in * t->slots_per_step, hi = lo + t->slots_per_step;
    if (hi > t->slots_total) hi = t->slots_total;
    int64_t n = 0;
    size_t cap = t->cap_pairs;
    MMS_CALL(mms_grow(&t->loc_u, sizeof(int64_t), (size_t)(hi - lo + 1), &t->cap_pairs));
    if (t->cap_pairs != cap || !t->loc_v) MMS_CALL(mms_realloc(t->cap_pairs * sizeof(int64_t), &t->loc_v));
    for (int64_t pos = lo; pos < hi; pos++) {
        uint64_t slot = mms_perm_apply(&pm, (uint64_t)pos);
        int64_t start, partner = mms_walk_pairs_lookup(&t->pairs, slot, &start);
        if (partner < 0) continue; /* not ours, or an empty slot */
        t->loc_u[n] = start;
        t->loc_v[n] = partner;
        n++;
    }
    *n_out = n;
    return MMS_OK;
}


static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The link term of step `step` (docs/model.md, "The link term"): anchors = the
 * distinct images among this rank's pair starts (owned here), each paired with
 * every one of its tags (full graph); negt: the step's shared negative tags
 * (global ids, the same on every rank). The distinct tag ids whose z the term
 * needs go to t->lk_extra (ascending). */
static mms_status link_plan(trainer_t *t, int64_t npairs, const int64_t *negt, int nnegt,
                            int64_t *nanc_out, int64_t *nlk_out) {
    const mms_graph_t *g = t->g;
    MMS_CALL(mms_grow(&t->anc, sizeof(int32_t), (size_t)npairs + 1, &t->cap_anc));
    int64_t na = 0;
    for (int64_t i = 0; i < npairs; i++)
        if (t->loc_u[i] < g->n_images) t->anc[na++] = (int32_t)owned_local(t, t->loc_u[i]);
    qsort(t->anc, (size_t)na, sizeof(int32_t), cmp_i32);
    int64_t k = 0;
    for (int64_t i = 0; i < na; i++)
        if (k == 0 || t->anc[k - 1] != t->anc[i]) t->anc[k++] = t->anc[i];
    na = k;
    int64_t nl = 0;
    for (int64_t i = 0; i < na; i++) {
        int64_t v = t->sh.gid[t->anc[i]];
        for (int64_t e = g->full.indptr[v]; e < g->full.indptr[v + 1]; e++) {
            if (g->full.indices[e] < g->n_images) continue;
            size_t cap = t->cap_lk;
            MMS_CALL(mms_grow(&t->lk_tag, sizeof(int64_t), (size_t)nl + 1, &t->cap_lk));
            if (cap != t->cap_lk || !t->lk_anc) MMS_CALL(mms_realloc(t->cap_lk * sizeof(int32_t), &t->lk_anc));
            t->lk_tag[nl] = g->full.indices[e];
            t->lk_anc[nl] = (int32_t)i;
            nl++;
        }
    }
    MMS_CALL(mms_grow(&t->lk_extra, sizeof(int64_t), (size_t)(nl + nnegt) + 1, &t->cap_extra));
    int64_t m = 0;
    for (int64_t i = 0; i < nl; i++) t->lk_extra[m++] = t->lk_tag[i];
    for (int j = 0; j < nnegt; j++) t->lk_extra[m++] = negt[j];
    qsort(t->lk_extra, (size_t)m, sizeof(int64_t), mms_cmp_i64);
    k = 0;
    for (int64_t i = 0; i < m; i++)
        if (k == 0 || t->lk_extra[k - 1] != t->lk_extra[i]) t->lk_extra[k++] = t->lk_extra[i];
    t->n_extra = k;
    MMS_CALL(mms_grow(&t->lk_xrow, sizeof(int32_t), (size_t)k + 1, &t->cap_xrow));
    *nanc_out = na;
    *nlk_out = nl;
    return MMS_OK;
}

/* Nodes whose z this rank needs from other ranks (partners and negatives owned
 * elsewhere), sorted by (owner, id) without repeats, into t->req_out; counts per
 * owner in t->scount. Node ids are below 2^40 (checked at start-up). */
static mms_status build_requests(trainer_t *t, int64_t npairs, const int64_t *negs, int nneg,
                                 int64_t *nreq_out) {
    int P = t->nranks;
    memset(t->scount, 0, (size_t)P * sizeof(int));
    MMS_CALL(mms_grow(&t->req_out, sizeof(int64_t), (size_t)(npairs + nneg + t->n_extra + 1),
                      &t->cap_req_out));
    int64_t m = 0;
    for (int64_t i = 0; i < t->n_extra; i++)
        if (owner_of(t, t->lk_extra[i]) != t->rank)
            t->req_out[m++] = ((int64_t)owner_of(t, t->lk_extra[i]) << 40) | t->lk_extra[i];
    for (int64_t i = 0; i < npairs; i++)
        if (owner_of(t, t->loc_v[i]) != t->rank)
            t->req_out[m++] = ((int64_t)owner_of(t, t->loc_v[i]) << 40) | t->loc_v[i];
    for (int j = 0; j < nneg; j++)
        if (owner_of(t, negs[j]) != t->rank)
            t->req_out[m++] = ((int64_t)owner_of(t, negs[j]) << 40) | negs[j];
    qsort(t->req_out, (size_t)m, sizeof(int64_t), mms_cmp_i64);
    int64_t k = 0;
    for (int64_t i = 0; i < m; i++)
        if (k == 0 || t->req_out[k - 1] != t->req_out[i]) t->req_out[k++] = t->req_out[i];
    for (int64_t i = 0; i < k; i++) {
        t->scount[t->req_out[i] >> 40]++;
        t->req_out[i] &= ((int64_t)1 << 40) - 1;
    }
    *nreq_out = k;
    return MMS_OK;
}

/* Sum the touched tag rows of every rank: union of row ids (allgatherv), one
 * allreduce of the compact block, then scatter back into g->rows/g->drows. */
static mms_status reduce_tag_rows(trainer_t *t, int64_t *bytes) {
    mms_sage_grad_t *g = t->grad;
    int P = t->nranks;
    int mine = (int)g->n_rows;
    MMS_MPI_CALL(MPI_Allgather(&mine, 1, MPI_INT, t->tcount, 1, MPI_INT, t->comm));
    int64_t total = 0;
    for (int r = 0; r < P; r++) {
        t->tdispl[r] = (int)total;
        total += t->tcount[r];
    }
    int64_t *all = NULL;
    MMS_CALL(mms_malloc((size_t)(total + 1) * sizeof(int64_t), &all));
    if (MPI_Allgatherv(g->rows, mine, MPI_INT64_T, all, t->tcount, t->tdispl, MPI_INT64_T,
                       t->comm) != MPI_SUCCESS) {
        free(all);
        MMS_CHECK(0, MMS_ERR_MPI, "MPI_Allgatherv of tag rows failed");
    }
    qsort(all, (size_t)total, sizeof(int64_t), mms_cmp_i64);
    int64_t u = 0;
    for (int64_t i = 0; i < total; i++)
        if (u == 0 || all[u - 1] != all[i]) all[u++] = all[i];
    size_t D = (size_t)t->cfg.dim;
    mms_status s = mms_grow(&t->tag_block, sizeof(float), (size_t)u * D + 1, &t->cap_tag_block);
    if (s != MMS_OK) {
        free(all);
        return s;
    }
    memset(t->tag_block, 0, (size_t)u * D * sizeof(float));
    for (int64_t i = 0; i < g->n_rows; i++) {
        int64_t at = mms_find_i64(all, u, g->rows[i]);
        memcpy(t->tag_block + (size_t)at * D, g->drows + (size_t)i * D, D * sizeof(float));
    }
    if (u > 0 && MPI_Allreduce(MPI_IN_PLACE, t->tag_block, (int)((size_t)u * D), MPI_FLOAT, MPI_SUM,
                               t->comm) != MPI_SUCCESS) {
        free(all);
        MMS_CHECK(0, MMS_ERR_MPI, "MPI_Allreduce of tag rows failed");
    }
    /* the summed rows replace this rank's list (capacity: n_tags rows) */
    g->n_rows = u;
    memcpy(g->rows, all, (size_t)u * sizeof(int64_t));
    memcpy(g->drows, t->tag_block, (size_t)u * D * sizeof(float));
    *bytes = u * (int64_t)(D * sizeof(float) + sizeof(int64_t));
    free(all);
    return MMS_OK;
}

/* Row of remote node v among the received z rows: requests are sorted by
 * (owner, id), so search v's owner's segment. */
static int64_t req_row(const trainer_t *t, int64_t v) {
    int o = owner_of(t, v);
    int64_t at = mms_find_i64(t->req_out + t->plan.ask_displ[o], t->scount[o], v);
    return at < 0 ? -1 : t->plan.ask_displ[o] + at;
}

/* One training step. Collective. *loss gets the global mean loss, *npairs the
 * global number of pairs. */
static mms_status train_step(trainer_t *t, int64_t step, double *loss, int64_t *npairs_out) {
    const mms_train_params_t *p = t->p;
    const int32_t H2 = 2 * t->cfg.hidden;
    int64_t npairs = 0, nreq = 0;
    double tp = mms_now();
    MMS_CALL(collect_pairs(t, step, &npairs));
    /* shared negatives: the same on every rank */
    int64_t negs[256];
    int nneg = p->neg < 256 ? p->neg : 256;
    for (int j = 0; j < nneg; j++) {
        uint64_t h = mms_rng_hash(p->seed, MMS_STREAM_NEG, (uint64_t)step, (uint64_t)j);
        negs[j] = negdist_draw(&t->nd, mms_rng_unit(h));
    }
    /* the link term's anchors, pairs and negative tags */
    int64_t nanc = 0, nlk = 0;
    int64_t *negt = t->negt;
    int nnegt = 0;
    t->n_extra = 0;
    const int link = (p->link_weight > 0 || p->query_train > 0) && t->g->n_tags > 0;
    if (link) {
        if (p->link_neg == 0) { /* every tag: a one-vs-all classifier over the tags */
            nnegt = (int)t->g->n_tags;
            for (int j = 0; j < nnegt; j++) negt[j] = t->g->n_images + j;
        } else {
            nnegt = p->link_neg;
            for (int j = 0; j < nnegt; j++) {
                uint64_t h = mms_rng_hash(p->seed, MMS_STREAM_NEG, (uint64_t)step, (uint64_t)(1024 + j));
                negt[j] = t->g->n_images + negdist_draw(&t->ndtag, mms_rng_unit(h));
            }
        }
        MMS_CALL(link_plan(t, npairs, negt, nnegt, &nanc, &nlk));
    }
    MMS_CALL(build_requests(t, npairs, negs, nneg, &nreq));
    /* exchange request lists: t->plan.asked are the nodes others need from here
     * (each sync point after uneven work starts with a polite arrival: a rank
     * waiting for the others sleeps instead of spinning, mms_mpi.h) */
    MMS_CALL(mms_mpi_arrive(t->comm, MMS_MPI_WAIT_STEP));
    MMS_CALL(mms_mpi_plan_make(&t->plan, t->req_out, t->scount, H2, t->comm));
    const int64_t nin = t->plan.n_ans;
    const int64_t *req_in = t->plan.asked;
    /* targets computed here: my pairs' u, my own partners and negatives, and
     * whatever others asked for; a node listed twice gets one row of z */
    size_t nt_max = (size_t)(2 * npairs + nneg + t->n_extra + nin + 1);
    MMS_CALL(mms_grow(&t->targets, sizeof(int32_t), nt_max, &t->cap_targets));
    int64_t nt = 0;
    for (int64_t i = 0; i < npairs; i++) t->targets[nt++] = (int32_t)owned_local(t, t->loc_u[i]);
    for (int64_t i = 0; i < npairs; i++)
        if (owner_of(t, t->loc_v[i]) == t->rank) t->targets[nt++] = (int32_t)owned_local(t, t->loc_v[i]);
    for (int j = 0; j < nneg; j++)
        if (owner_of(t, negs[j]) == t->rank) t->targets[nt++] = (int32_t)owned_local(t, negs[j]);
    int64_t first_extra = nt;
    for (int64_t i = 0; i < t->n_extra; i++)
        if (owner_of(t, t->lk_extra[i]) == t->rank) t->targets[nt++] = (int32_t)owned_local(t, t->lk_extra[i]);
    int64_t first_req = nt;
    for (int64_t i = 0; i < nin; i++) {
        int64_t l = owned_local(t, req_in[i]);
        MMS_CHECK(l >= 0, MMS_ERR_INTERNAL, "rank %d was asked for node %lld it does not own",
                  t->rank, (long long)req_in[i]);
        t->targets[nt++] = (int32_t)l;
    }
    PHASE(t, 0, tp);
    /* forward over distinct targets */
    MMS_CALL(mms_sage_batch_build(t->batch, &t->sh.adj, &t->nodes, (uint64_t)step, t->targets, nt));
    PHASE(t, 1, tp);
    int32_t nT = t->batch->nT;
    MMS_CALL(mms_grow(&t->z, sizeof(float), (size_t)nT * (size_t)H2 + 1, &t->cap_z));
    MMS_CALL(mms_sage_forward(t->batch, t->model, &t->nodes, 1, t->z));
    int32_t nT2 = 0;
    if (link && nanc > 0) { /* anchors embedded without their own tag edges */
        MMS_CALL(mms_sage_batch_build_tadj(t->batch2, &t->sh.adj, &t->tadj, &t->nodes, (uint64_t)step,
                                           t->anc, nanc));
        nT2 = t->batch2->nT;
        MMS_CALL(mms_grow(&t->z2, sizeof(float), (size_t)nT2 * (size_t)H2 + 1, &t->cap_z2));
        MMS_CALL(mms_sage_forward(t->batch2, t->model, &t->nodes, 1, t->z2));
    }
    PHASE(t, 2, tp);
    /* answer requests: z rows of the asked nodes, in request order */
    MMS_CALL(mms_grow(&t->zsend, sizeof(float), (size_t)nin * (size_t)H2 + 1, &t->cap_zsend));
    for (int64_t i = 0; i < nin; i++)
        memcpy(t->zsend + i * H2, t->z + (size_t)t->batch->in_row[first_req + i] * H2,
               (size_t)H2 * sizeof(float));
    MMS_CALL(mms_grow(&t->zrecv, sizeof(float), (size_t)nreq * (size_t)H2 + 1, &t->cap_zrecv));
    MMS_CALL(mms_mpi_arrive(t->comm, MMS_MPI_WAIT_STEP));
    MMS_CALL(mms_mpi_plan_rows(&t->plan, t->zsend, t->zrecv, MPI_FLOAT, t->comm));
    PHASE(t, 3, tp);
    /* the loss over [local z rows | received rows] */
    int64_t nz = nT + nreq;
    MMS_CALL(mms_grow(&t->zall, sizeof(float), (size_t)nz * (size_t)H2 + 1, &t->cap_zall));
    MMS_CALL(mms_grow(&t->dzall, sizeof(float), (size_t)nz * (size_t)H2 + 1, &t->cap_dz));
    memcpy(t->zall, t->z, (size_t)nT * H2 * sizeof(float));
    memcpy(t->zall + (size_t)nT * H2, t->zrecv, (size_t)nreq * H2 * sizeof(float));
    int64_t nc = nz + nT2;
    if (link) { /* [zall | z2] before any temperature scaling of zall */
        MMS_CALL(mms_grow(&t->zc, sizeof(float), (size_t)nc * (size_t)H2 + 1, &t->cap_zc));
        MMS_CALL(mms_grow(&t->dzc, sizeof(float), (size_t)nc * (size_t)H2 + 1, &t->cap_dzc));
        memcpy(t->zc, t->zall, (size_t)nz * H2 * sizeof(float));
        if (nT2 > 0) memcpy(t->zc + (size_t)nz * H2, t->z2, (size_t)nT2 * H2 * sizeof(float));
        int64_t at = first_extra;
        for (int64_t i = 0; i < t->n_extra; i++)
            t->lk_xrow[i] = owner_of(t, t->lk_extra[i]) == t->rank
                                ? t->batch->in_row[at++]
                                : (int32_t)(nT + req_row(t, t->lk_extra[i]));
        size_t lstride = (size_t)nlk + (size_t)nnegt + 1;
        MMS_CALL(mms_grow(&t->la, sizeof(int32_t), 3 * lstride, &t->cap_l));
        t->lb = t->la + lstride;
        t->ln = t->lb + lstride;
        for (int64_t i = 0; i < nlk; i++) {
            t->la[i] = (int32_t)(nz + t->batch2->in_row[t->lk_anc[i]]);
            t->lb[i] = t->lk_xrow[mms_find_i64(t->lk_extra, t->n_extra, t->lk_tag[i])];
        }
        for (int j = 0; j < nnegt; j++) t->ln[j] = t->lk_xrow[mms_find_i64(t->lk_extra, t->n_extra, negt[j])];
    }
    size_t nrows_max = (size_t)npairs + (size_t)nneg + 1;
    MMS_CALL(mms_grow(&t->ra, sizeof(int32_t), 3 * nrows_max, &t->cap_rows));
    t->rb = t->ra + nrows_max;
    t->rn = t->rb + nrows_max;
    /* row of a node in zall: local targets via in_row, remote via req_out position */
    for (int64_t i = 0; i < npairs; i++) {
        t->ra[i] = t->batch->in_row[i];
        int64_t v = t->loc_v[i];
        if (owner_of(t, v) == t->rank) {
            /* partners owned here were listed right after the u's, in order */
            t->rb[i] = -1;
        } else {
            t->rb[i] = (int32_t)(nT + req_row(t, v));
        }
    }
    {
        int64_t at = npairs;
        for (int64_t i = 0; i < npairs; i++)
            if (t->rb[i] < 0) t->rb[i] = t->batch->in_row[at++];
        for (int j = 0; j < nneg; j++)
            t->rn[j] = owner_of(t, negs[j]) == t->rank ? t->batch->in_row[at++]
                                                        : (int32_t)(nT + req_row(t, negs[j]));
    }
    int64_t gpairs = 0;
    MMS_MPI_CALL(MPI_Allreduce(&npairs, &gpairs, 1, MPI_INT64_T, MPI_SUM, t->comm));
    double lloc = 0;
    memset(t->dzall, 0, (size_t)nz * H2 * sizeof(float));
    if (link) {
        MMS_CALL(mms_grow(&t->dz2, sizeof(float), (size_t)nT2 * (size_t)H2 + 1, &t->cap_dz2));
        memset(t->dz2, 0, (size_t)nT2 * H2 * sizeof(float));
    }
    if (npairs > 0 && link && p->query_train > 0 && nT2 > 0) {
        /* train the way queries arrive: a chosen image start's side of the
         * walk loss is its embedding without its own tag edges (rows of z2 in
         * [zall | z2]); the choice is a hash of (seed, image, step) */
        uint64_t cut = p->query_train >= 1 ? UINT64_MAX : (uint64_t)(p->query_train * 18446744073709551615.0);
        for (int64_t i = 0; i < npairs; i++) {
            int64_t u = t->loc_u[i];
            if (u >= t->g->n_images ||
                mms_rng_hash(p->seed, MMS_STREAM_MASK, (uint64_t)u, (uint64_t)step | ((uint64_t)1 << 62)) > cut)
                continue;
            int32_t lu = (int32_t)owned_local(t, u);
            int32_t *at = bsearch(&lu, t->anc, (size_t)nanc, sizeof(int32_t), cmp_i32);
            if (at) t->ra[i] = (int32_t)(nz + t->batch2->in_row[at - t->anc]);
        }
        size_t lw = mms_sage_loss_work(npairs, nneg, H2);
        MMS_CALL(mms_grow(&t->loss_work, sizeof(float), lw + 1, &t->cap_loss_work));
        MMS_CALL(mms_grow(&t->zw, sizeof(float), (size_t)nc * (size_t)H2 + 1, &t->cap_zw));
        MMS_CALL(mms_grow(&t->dzw, sizeof(float), (size_t)nc * (size_t)H2 + 1, &t->cap_dzw));
        float zs = p->temperature > 0 && p->temperature != 1.0 ? (float)(1.0 / sqrt(p->temperature)) : 1.0f;
        for (int64_t i = 0; i < nc * H2; i++) t->zw[i] = zs * t->zc[i];
        MMS_CALL(mms_sage_loss(t->zw, nc, H2, npairs, t->ra, t->rb, nneg, t->rn, t->loss_work, &lloc,
                               t->dzw));
        float sc = zs * (float)((double)npairs / (double)(gpairs ? gpairs : 1));
        for (int64_t i = 0; i < nz * H2; i++) t->dzall[i] = sc * t->dzw[i];
        for (int64_t i = nz * H2; i < nc * H2; i++) t->dz2[i - nz * H2] = sc * t->dzw[i];
        lloc *= (double)npairs;
    } else if (npairs > 0) {
        size_t lw = mms_sage_loss_work(npairs, nneg, H2);
        MMS_CALL(mms_grow(&t->loss_work, sizeof(float), lw + 1, &t->cap_loss_work));
        /* a temperature tau divides every affinity: scaling the rows by
         * 1/sqrt(tau) does it without touching the loss (chain rule below) */
        float zs = p->temperature > 0 && p->temperature != 1.0 ? (float)(1.0 / sqrt(p->temperature)) : 1.0f;
        if (zs != 1.0f)
            for (int64_t i = 0; i < nz * H2; i++) t->zall[i] *= zs;
        MMS_CALL(mms_sage_loss(t->zall, nz, H2, npairs, t->ra, t->rb, nneg, t->rn, t->loss_work,
                               &lloc, t->dzall));
        /* mms_sage_loss averages over local pairs; the batch mean is over all */
        float sc = zs * (float)((double)npairs / (double)(gpairs ? gpairs : 1));
        for (int64_t i = 0; i < nz * H2; i++) t->dzall[i] *= sc;
        lloc *= (double)npairs;
    }
    if (link && p->link_weight > 0) { /* lambda x the link loss, its mean over every rank's link pairs */
        double ll[2] = {0, (double)nlk}, lg[2] = {0, 0};
        if (nlk > 0) {
            size_t lw = mms_sage_loss_work(nlk, nnegt, H2);
            MMS_CALL(mms_grow(&t->link_work, sizeof(float), lw + 1, &t->cap_link_work));
            /* a link temperature divides the link affinities (rows scaled by
             * 1/sqrt(tau), as for the walk loss) */
            float ls = p->link_temperature > 0 && p->link_temperature != 1.0
                           ? (float)(1.0 / sqrt(p->link_temperature))
                           : 1.0f;
            if (ls != 1.0f)
                for (int64_t i = 0; i < nc * H2; i++) t->zc[i] *= ls;
            MMS_CALL(mms_sage_loss(t->zc, nc, H2, nlk, t->la, t->lb, nnegt, t->ln, t->link_work, &ll[0],
                                   t->dzc));
            if (ls != 1.0f)
                for (int64_t i = 0; i < nc * H2; i++) t->dzc[i] *= ls;
            ll[0] *= (double)nlk;
        }
        MMS_MPI_CALL(MPI_Allreduce(ll, lg, 2, MPI_DOUBLE, MPI_SUM, t->comm));
        t->link_loss = lg[1] > 0 ? lg[0] / lg[1] : 0.0;
        if (nlk > 0) {
            float sc = (float)(p->link_weight * (double)nlk / lg[1]);
            for (int64_t i = 0; i < nz * H2; i++) t->dzall[i] += sc * t->dzc[i];
            for (int64_t i = nz * H2; i < nc * H2; i++) t->dz2[i - nz * H2] += sc * t->dzc[i];
        }
    }
    double lsum = 0;
    MMS_CALL(mms_mpi_arrive(t->comm, MMS_MPI_WAIT_STEP));
    MMS_MPI_CALL(MPI_Allreduce(&lloc, &lsum, 1, MPI_DOUBLE, MPI_SUM, t->comm));
    *loss = gpairs ? lsum / (double)gpairs : 0.0;
    *npairs_out = gpairs;
    PHASE(t, 4, tp);
    /* dL/dz of received rows go back to their owners */
    MMS_CALL(mms_mpi_plan_rows_back(&t->plan, t->dzall + (size_t)nT * H2, t->zsend, MPI_FLOAT,
                                    t->comm));
    for (int64_t i = 0; i < nin; i++) {
        float *d = t->dzall + (size_t)t->batch->in_row[first_req + i] * H2;
        const float *src = t->zsend + i * H2;
        for (int32_t k = 0; k < H2; k++) d[k] += src[k];
    }
    t->exch_bytes = (nin + nreq) * (int64_t)(2 * H2 * sizeof(float) + sizeof(int64_t));
    /* backward and the gradient reduction */
    PHASE(t, 3, tp);
    MMS_CALL(mms_sage_backward(t->batch, t->model, &t->nodes, t->dzall, t->grad));
    if (link && nT2 > 0) {
        MMS_CALL(mms_sage_backward(t->batch2, t->model, &t->nodes, t->dz2, t->grad2));
        MMS_CALL(mms_sage_grad_add(t->grad, t->grad2));
        t->flops += t->batch2->flops_fwd + t->batch2->flops_bwd;
    }
    PHASE(t, 5, tp);
    t->flops += t->batch->flops_fwd + t->batch->flops_bwd;
    MMS_CALL(mms_mpi_arrive(t->comm, MMS_MPI_WAIT_STEP));
    MMS_MPI_CALL(MPI_Allreduce(MPI_IN_PLACE, t->grad->dparams, (int)t->grad->n_params, MPI_FLOAT,
                               MPI_SUM, t->comm));
    int64_t tag_bytes = 0;
    if (!p->freeze_tags) MMS_CALL(reduce_tag_rows(t, &tag_bytes));
    t->exch_bytes += tag_bytes;
    PHASE(t, 6, tp);
    return MMS_OK;
}

/* ---------------------------------------------------------------- files */

/* The model's manifest at step (smoothed loss) with train's record of it. */
static mms_status model_manifest(const trainer_t *t, int64_t step, double loss, mms_manifest_t **out) {
    const mms_train_params_t *p = t->p;
    mms_model_origin_t o = {.graph_checksum = t->g->checksum,
                            .graph = t->g->dir,
                            .images = t->g->n_images,
                            .lr = p->lr,
                            .batch = p->batch,
                            .neg = p->neg,
                            .walks = p->walks,
                            .walk_len = p->walk_len,
                            .hide_tags = p->hide_tags,
                            .tag_init = p->tag_init_mean ? "mean" : "random",
                            .temperature = p->temperature,
                            .steps_per_epoch = t->steps_per_epoch,
                            .step = step,
                            .loss = loss};
    return mms_model_manifest(t->model, &o, out);
}

/* Sections of a checkpoint: parameters, tag table, optimiser moments. */
static int ckpt_sections(trainer_t *t, mms_ckpt_section_t sec[4]) {
    size_t nf;
    sec[0].data = t->model->params;
    sec[0].len = t->model->n_params * sizeof(float);
    sec[0].name = "params";
    sec[1].data = t->model->tags;
    sec[1].len = (size_t)t->model->n_tags * (size_t)t->cfg.dim * sizeof(float);
    sec[1].name = "tags";
    sec[2].data = mms_adam_state(t->adam, &nf);
    sec[2].len = nf * sizeof(float);
    sec[2].name = "adam";
    sec[3].data = mms_adam_state(t->adam_tags, &nf);
    sec[3].len = nf * sizeof(float);
    sec[3].name = "adam_tags";
    return 4;
}

static mms_status write_checkpoint(trainer_t *t, int64_t step, double smooth) {
    if (t->rank != 0) return MMS_OK;
    char path[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(path, sizeof path, t->dir, "checkpoint.bin"));
    mms_manifest_t *m;
    MMS_CALL(model_manifest(t, step, smooth, &m));
    /* the header is a manifest of kind "checkpoint" with the same fields */
    strcpy(m->kind, "checkpoint");
    mms_manifest_set_int(m, "adam_steps", mms_adam_steps(t->adam));
    mms_manifest_set_int(m, "adam_tag_steps", mms_adam_steps(t->adam_tags));
    mms_ckpt_section_t sec[4];
    int n = ckpt_sections(t, sec);
    mms_status s = mms_ckpt_save(path, m, sec, n);
    mms_manifest_destroy(&m);
    return s;
}

/* Rank 0 reads the checkpoint, checks it belongs to this graph and model
 * shape, and every rank receives the state. Collective. */
static mms_status load_checkpoint(trainer_t *t, int64_t *step, double *smooth) {
    mms_status s = MMS_OK;
    int64_t st[3] = {0, 0, 0};
    double sm = NAN;
    if (t->rank == 0) {
        char path[MMS_PATH_MAX];
        mms_manifest_t *m = NULL;
        mms_ckpt_section_t sec[4];
        int n = ckpt_sections(t, sec);
        s = mms_path_join(path, sizeof path, t->dir, "checkpoint.bin");
        if (s == MMS_OK) s = mms_ckpt_load(path, &m, sec, n);
        uint64_t gsum = 0;
        if (s == MMS_OK) s = mms_manifest_get_uint(m, "graph_checksum", &gsum);
        if (s == MMS_OK && gsum != t->g->checksum) {
            mms_error_set(MMS_ERR_MISMATCH, __FILE__, __LINE__, __func__,
                          "checkpoint in '%s' was trained on another graph (checksum %016llx, this "
                          "graph %016llx)",
                          t->p->out, (unsigned long long)gsum, (unsigned long long)t->g->checksum);
            s = MMS_ERR_MISMATCH;
        }
        if (s == MMS_OK) s = mms_manifest_get_int(m, "step", &st[0]);
        if (s == MMS_OK) s = mms_manifest_get_int(m, "adam_steps", &st[1]);
        if (s == MMS_OK) s = mms_manifest_get_int(m, "adam_tag_steps", &st[2]);
        if (s == MMS_OK) s = mms_manifest_get_real(m, "loss", &sm);
        mms_manifest_destroy(&m);
    }
    MMS_CALL(mms_mpi_agree(s, t->comm));
    MMS_MPI_CALL(MPI_Bcast(st, 3, MPI_INT64_T, 0, t->comm));
    mms_adam_set_steps(t->adam, st[1]);
    mms_adam_set_steps(t->adam_tags, st[2]);
    MMS_MPI_CALL(MPI_Bcast(&sm, 1, MPI_DOUBLE, 0, t->comm));
    mms_ckpt_section_t sec[4];
    int n = ckpt_sections(t, sec);
    for (int i = 0; i < n; i++) MMS_CALL(mms_mpi_bcast_big(sec[i].data, sec[i].len, 0, t->comm));
    *step = st[0];
    *smooth = sm;
    return MMS_OK;
}

static mms_status export_model(trainer_t *t, int64_t step, double smooth) {
    if (t->rank != 0) return MMS_OK;
    mms_manifest_t *m;
    MMS_CALL(model_manifest(t, step, smooth, &m));
    mms_status s = mms_model_write(t->dir, t->model, m);
    mms_manifest_destroy(&m);
    return s;
}

/* loss.tsv: keep the lines of the steps already done (<= from, on resume), then append. */
static mms_status open_loss_log(const trainer_t *t, int64_t from, FILE **out) {
    *out = NULL;
    if (t->rank != 0) return MMS_OK;
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, t->dir, "loss.tsv"));
    char *old = NULL;
    size_t len = 0;
    if (from > 0 && mms_path_exists(p)) MMS_CALL(mms_read_file(p, &old, &len));
    char tmp[MMS_PATH_MAX];
    MMS_CALL(mms_file_tmpname(p, tmp, sizeof tmp));
    FILE *f;
    mms_status s = mms_fopen(tmp, "w", &f);
    if (s != MMS_OK) {
        free(old);
        return s;
    }
    fprintf(f, "step\tepoch\tloss\tsmoothed\tpairs_per_s\telapsed_s\n");
    if (old) {
        char *line = strtok(old, "\n");
        while (line) {
            if (line[0] >= '0' && line[0] <= '9' && atoll(line) <= from) fprintf(f, "%s\n", line);
            line = strtok(NULL, "\n");
        }
        free(old);
    }
    fflush(f);
    s = mms_file_commit(tmp, p);
    *out = f; /* the renamed file stays open for appending */
    return s;
}

/* ---------------------------------------------------------------- driver */

static volatile sig_atomic_t g_stop_signal = 0;
static void on_stop(int sig) { g_stop_signal = sig; }

static mms_status validate(const mms_train_params_t *p) {
    MMS_CHECK(p->graph && p->out, MMS_ERR_ARG, "train: --graph and --out are required");
    MMS_CHECK(p->lr > 0 && isfinite(p->lr), MMS_ERR_ARG, "train: --lr must be > 0, got %g", p->lr);
    MMS_CHECK(p->batch >= 1, MMS_ERR_ARG, "train: --batch must be >= 1, got %d", p->batch);
    MMS_CHECK(p->neg >= 1 && p->neg <= 256, MMS_ERR_ARG, "train: --neg must be in [1, 256], got %d", p->neg);
    MMS_CHECK(p->hidden >= 1, MMS_ERR_ARG, "train: --hidden must be >= 1, got %d", p->hidden);
    MMS_CHECK(p->s1 >= 1 && p->s2 >= 1, MMS_ERR_ARG, "train: --samples-1 and --samples-2 must be >= 1");
    MMS_CHECK(p->dropout >= 0 && p->dropout < 1, MMS_ERR_ARG, "train: --dropout must be in [0, 1)");
    MMS_CHECK(p->hide_tags >= 0 && p->hide_tags <= 1, MMS_ERR_ARG, "train: --hide-tags must be in [0, 1]");
    MMS_CHECK(p->link_weight >= 0 && isfinite(p->link_weight), MMS_ERR_ARG,
              "train: --link-weight must be >= 0, got %g", p->link_weight);
    MMS_CHECK(p->query_train >= 0 && p->query_train <= 1, MMS_ERR_ARG,
              "train: --query-train must be in [0, 1], got %g", p->query_train);
    MMS_CHECK(p->link_neg >= 0 && p->link_neg <= 256, MMS_ERR_ARG,
              "train: --link-neg must be in [0, 256] (0: every tag), got %d", p->link_neg);
    MMS_CHECK(p->link_temperature > 0 && isfinite(p->link_temperature), MMS_ERR_ARG,
              "train: --link-temperature must be > 0, got %g", p->link_temperature);
    MMS_CHECK(p->temperature > 0 && isfinite(p->temperature), MMS_ERR_ARG,
              "train: --temperature must be > 0, got %g", p->temperature);
    MMS_CHECK(p->walks >= 1 && p->walk_len >= 2, MMS_ERR_ARG, "train: --walks >= 1 and --walk-len >= 2");
    MMS_CHECK(p->epochs >= 0 && p->max_steps >= 0 && p->time_limit >= 0, MMS_ERR_ARG,
              "train: --epochs, --max-steps and --time-limit must be >= 0");
    MMS_CHECK(p->epochs > 0 || p->max_steps > 0 || p->time_limit > 0, MMS_ERR_ARG,
              "train: give at least one of --epochs, --max-steps, --time-limit");
    return MMS_OK;
}

static void trainer_free(trainer_t *t) {
    mms_walk_pairs_free(&t->pairs);
    free(t->nd.cdf);
    free(t->ndtag.cdf);
    mms_csr_free(&t->tadj);
    mms_sage_batch_destroy(&t->batch2);
    mms_sage_grad_destroy(&t->grad2);
    free(t->anc);
    free(t->lk_tag);
    free(t->lk_anc);
    free(t->lk_extra);
    free(t->lk_xrow);
    free(t->z2);
    free(t->zc);
    free(t->dzc);
    free(t->zw);
    free(t->dzw);
    free(t->dz2);
    free(t->la);
    free(t->link_work);
    free(t->negt);
    mms_sage_batch_destroy(&t->batch);
    mms_sage_grad_destroy(&t->grad);
    mms_sage_model_destroy(&t->model);
    mms_sage_sparse_destroy(&t->sparse);
    mms_adam_destroy(&t->adam);
    mms_adam_destroy(&t->adam_tags);
    mms_shard_free(&t->sh);
    mms_partition_close(&t->pt);
    mms_graph_close(&t->g);
    free(t->loc_u);
    free(t->loc_v);
    free(t->targets);
    free(t->z);
    free(t->zall);
    free(t->dzall);
    free(t->scount);
    free(t->req_out);
    mms_mpi_plan_free(&t->plan);
    free(t->zsend);
    free(t->zrecv);
    free(t->ra);
    free(t->loss_work);
    free(t->tag_block);
    free(t->tcount);
}

/* Step 1: check the options, open the graph and its partition, and (rank 0)
 * claim the model directory: fresh (refused if present unless --force) or
 * resumed. Collective: the ranks agree on the outcome. */
static mms_status open_inputs(trainer_t *t) {
    const mms_train_params_t *p = t->p;
    mms_status s = validate(p);
    if (s == MMS_OK) s = mms_graph_open(p->graph, &t->g);
    if (s == MMS_OK && t->g->n_nodes >= ((int64_t)1 << 40)) {
        mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__, "train: graphs above 2^40 nodes are not supported");
        s = MMS_ERR_ARG;
    }
    if (s == MMS_OK) s = mms_partition_open(p->graph, t->nranks, &t->pt);
    if (s == MMS_OK && t->rank == 0) {
        char ck[MMS_PATH_MAX];
        s = mms_path_join(ck, sizeof ck, p->out, "checkpoint.bin");
        if (s == MMS_OK && p->resume && !mms_path_exists(ck)) {
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "train: --resume but '%s' has no checkpoint.bin", p->out);
            s = MMS_ERR_ARG;
        }
        if (s == MMS_OK && !p->resume && mms_path_exists(p->out) && !p->force) {
            mms_error_set(MMS_ERR_EXISTS, __FILE__, __LINE__, __func__,
                          "train: output '%s' already exists (pass --force to replace it, or "
                          "--resume to continue it)",
                          p->out);
            s = MMS_ERR_EXISTS;
        }
        if (s == MMS_OK && p->resume) {
            int n = snprintf(t->dir, sizeof t->dir, "%s", p->out);
            if (n < 0 || (size_t)n >= sizeof t->dir) {
                mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__, "train: path too long: %s", p->out);
                s = MMS_ERR_ARG;
            }
        } else if (s == MMS_OK) {
            /* an existing model (--force) is replaced only when this run ends well */
            s = mms_outdir_begin(p->out, p->force, t->dir, sizeof t->dir);
            t->staging = s == MMS_OK;
        }
    }
    return mms_mpi_agree(s, t->comm);
}

/* Step 2: this rank's shard (halo features arrive in one exchange), with the
 * tag edges of some images hidden if asked. Collective. */
static mms_status load_shard(trainer_t *t) {
    MMS_CALL(mms_shard_load(t->g, t->pt, t->comm, &t->sh));
    /* non-finite inputs would only show as a NaN loss steps later: name them */
    mms_status s = MMS_OK;
    const size_t D = (size_t)t->sh.dim;
    for (int64_t i = 0; i < t->sh.n_local && s == MMS_OK; i++)
        for (size_t j = 0; j < D; j++)
            if (!isfinite(t->sh.x[(size_t)i * D + j])) {
                mms_error_set(MMS_ERR_NUMERIC, __FILE__, __LINE__, __func__,
                              "train: '%s/x.npy' has a non-finite value (%g) at node %lld, column %zu",
                              t->p->graph, (double)t->sh.x[(size_t)i * D + j], (long long)t->sh.gid[i], j);
                s = MMS_ERR_NUMERIC;
                break;
            }
    MMS_CALL(mms_mpi_agree(s, t->comm));
    if (t->p->hide_tags > 0) hide_tag_edges(t, t->p->hide_tags);
    char b1[32], b2[32];
    mms_log_rankinfo("shard %d: %lld owned, %lld + %lld halo nodes; halo features in %s, out %s",
                     t->rank, (long long)t->sh.n_owned, (long long)t->sh.n_halo1,
                     (long long)t->sh.n_halo2, mms_fmt_bytes((double)t->sh.halo_bytes_in, b1, 32),
                     mms_fmt_bytes((double)t->sh.halo_bytes_out, b2, 32));
    return MMS_OK;
}

/* Step 3: the model and everything a step uses (gradients, batch plan, the
 * two Adam states, the negative distribution, the node view of the shard,
 * the count arrays). Collective. */
static mms_status build_model(trainer_t *t) {
    const mms_train_params_t *p = t->p;
    const int P = t->nranks;
    mms_sage_config_default(&t->cfg);
    t->cfg.dim = t->g->dim;
    t->cfg.hidden = p->hidden;
    t->cfg.s1 = p->s1;
    t->cfg.s2 = p->s2;
    t->cfg.n_neg = p->neg;
    t->cfg.dropout = (float)p->dropout;
    t->cfg.train_tags = !p->freeze_tags;
    t->cfg.seed = p->seed;
    mms_status s = mms_sage_config_check(&t->cfg);
    if (s == MMS_OK) s = mms_sage_model_create(&t->cfg, t->g->n_tags, &t->model);
    if (s == MMS_OK && p->tag_init_mean) s = tag_inputs_from_images(t);
    if (s == MMS_OK) s = mms_sage_grad_create(&t->cfg, t->g->n_tags, &t->grad);
    if (s == MMS_OK) s = mms_sage_batch_create(&t->cfg, t->sh.n_local, t->g->n_tags, &t->batch);
    if (s == MMS_OK) {
        mms_adam_config_t ac;
        mms_adam_config_default(&ac);
        ac.lr = (float)p->lr;
        s = mms_adam_create(&ac, t->model->n_params, &t->adam);
        if (s == MMS_OK)
            s = mms_adam_create(&ac, (size_t)(t->g->n_tags > 0 ? t->g->n_tags : 1) * (size_t)t->cfg.dim, &t->adam_tags);
    }
    if (s == MMS_OK) s = negdist_build(&t->g->full, &t->nd);
    if (s == MMS_OK && (p->link_weight > 0 || p->query_train > 0) && t->g->n_tags > 0) {
        /* the link term: tags' degree^0.75, and the targets' adjacency without
         * the images' tag edges (an anchor sees only its visual neighbours) */
        t->ndtag.n = t->g->n_tags;
        s = mms_malloc((size_t)t->g->n_tags * sizeof(double), &t->ndtag.cdf);
        double acc = 0;
        for (int64_t k = 0; s == MMS_OK && k < t->g->n_tags; k++) {
            acc += pow((double)mms_csr_degree(&t->g->full, t->g->n_images + k), 0.75);
            t->ndtag.cdf[k] = acc;
        }
        for (int64_t k = 0; s == MMS_OK && k < t->g->n_tags; k++) t->ndtag.cdf[k] /= acc > 0 ? acc : 1;
        if (s == MMS_OK) s = mms_sage_adj_without_tags(&t->sh.adj, t->sh.gid, t->g->n_images, &t->tadj);
        if (s == MMS_OK) s = mms_sage_batch_create(&t->cfg, t->sh.n_local, t->g->n_tags, &t->batch2);
        if (s == MMS_OK) s = mms_sage_grad_create(&t->cfg, t->g->n_tags, &t->grad2);
        if (s == MMS_OK)
            s = mms_malloc((size_t)(t->g->n_tags > 256 ? t->g->n_tags : 256) * sizeof(int64_t), &t->negt);
    }
    if (s == MMS_OK) {
        t->nodes.n = t->sh.n_local;
        t->nodes.gid = t->sh.gid;
        t->nodes.n_images = t->g->n_images;
        t->nodes.dim = t->cfg.dim;
        t->nodes.x = t->sh.x;
        s = mms_sage_sparsify(t->sh.x, t->sh.n_local, t->cfg.dim, MMS_SAGE_SPARSE_DENSITY, &t->sparse);
        if (s == MMS_OK && t->sparse) mms_sage_nodes_use_sparse(&t->nodes, t->sparse);
    }
    if (s == MMS_OK) s = mms_calloc((size_t)P, sizeof(int), &t->scount);
    if (s == MMS_OK) s = mms_calloc((size_t)P * 2, sizeof(int), &t->tcount);
    if (s == MMS_OK) t->tdispl = t->tcount + P;
    MMS_CALL(mms_mpi_agree(s, t->comm));
    int sparse_any = t->sparse != NULL, sparse_all = 0;
    MMS_MPI_CALL(MPI_Allreduce(&sparse_any, &sparse_all, 1, MPI_INT, MPI_MIN, t->comm));
    mms_log_info("train: %lld nodes (%lld images, %lld tags), %d-d inputs%s, model %zu parameters "
                 "+ %lld x %d tag table%s",
                 (long long)t->g->n_nodes, (long long)t->g->n_images, (long long)t->g->n_tags,
                 t->cfg.dim, sparse_all ? " (sparse path)" : "", t->model->n_params,
                 (long long)t->g->n_tags, t->cfg.dim, p->freeze_tags ? " (frozen)" : "");
    return MMS_OK;
}

/* Step 4: the positive pairs (random walks) and the epoch's slot geometry.
 * Collective. */
static mms_status make_pairs(trainer_t *t) {
    const mms_train_params_t *p = t->p;
    mms_walk_params_t wp = {.walks = p->walks, .length = p->walk_len, .seed = p->seed};
    MMS_CALL(mms_walks_generate(&wp, t->g->n_nodes, t->sh.part, t->sh.gid, t->sh.n_owned,
                                &t->sh.full, t->comm, &t->pairs));
    t->slots_total = t->g->n_nodes * (int64_t)t->pairs.per_node;
    MMS_CHECK(t->pairs.valid_total > 0, MMS_ERR_ARG,
              "train: the random walks produced no pairs (a graph without edges?)");
    t->slots_per_step = (int64_t)ceil((double)p->batch * (double)t->slots_total /
                                      (double)t->pairs.valid_total);
    if (t->slots_per_step < 1) t->slots_per_step = 1;
    t->steps_per_epoch = (t->slots_total + t->slots_per_step - 1) / t->slots_per_step;
    mms_log_info("train: %lld positive pairs from %d walks x %d steps (%.1f s, %lld walker moves "
                 "crossed ranks); %lld steps per epoch of ~%d pairs",
                 (long long)t->pairs.valid_total, p->walks, p->walk_len - 1, t->pairs.seconds,
                 (long long)t->pairs.moved, (long long)t->steps_per_epoch, p->batch);
    return MMS_OK;
}

/* Where the step loop stands. */
typedef struct {
    int64_t step, step0, total; /* next step, first step of this run, last step (exclusive) */
    double smooth, first;       /* smoothed loss now and after the first step */
    double link_smooth;         /* smoothed link-term loss (NAN: off) */
    double t0, tlast;           /* run start, last progress line */
    int64_t pairs_done, pairs_last, exch_total;
    FILE *losslog;              /* rank 0: loss.tsv, open for appending */
} run_t;

/* Step 5: resume from the checkpoint if asked, the step bound, loss.tsv, the
 * stop signals and the figures known before the first step. Collective. */
static mms_status start_run(trainer_t *t, run_t *r, mms_train_summary_t *sum) {
    const mms_train_params_t *p = t->p;
    r->step = 0;
    r->smooth = NAN;
    r->link_smooth = NAN;
    if (p->resume) {
        MMS_CALL(load_checkpoint(t, &r->step, &r->smooth));
        mms_log_info("train: resumed from step %lld (smoothed loss %.4f)", (long long)r->step, r->smooth);
    }
    r->total = p->epochs > 0 ? (int64_t)p->epochs * t->steps_per_epoch : INT64_MAX;
    if (p->max_steps > 0 && p->max_steps < r->total) r->total = p->max_steps;
    MMS_CALL(mms_mpi_agree(open_loss_log(t, r->step, &r->losslog), t->comm));
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    r->t0 = r->tlast = mms_now();
    r->pairs_done = r->pairs_last = 0;
    r->step0 = r->step;
    r->first = NAN;
    int64_t halo = t->sh.halo_bytes_in;
    MMS_MPI_CALL(MPI_Allreduce(&halo, &sum->halo_bytes, 1, MPI_INT64_T, MPI_SUM, t->comm));
    sum->allreduce_bytes_per_step = (int64_t)(t->model->n_params * sizeof(float));
    r->exch_total = 0;
    return MMS_OK;
}

/* Rank 0: a line of loss.tsv and a progress line with the rate and ETA. */
static void log_progress(const trainer_t *t, run_t *r, double loss, double now) {
    const mms_train_params_t *p = t->p;
    double rate = (double)(r->pairs_done - r->pairs_last) / (now - r->tlast + 1e-9);
    int64_t epoch = (r->step - 1) / t->steps_per_epoch;
    if (r->losslog) {
        fprintf(r->losslog, "%lld\t%.4f\t%.6f\t%.6f\t%.1f\t%.2f\n", (long long)r->step,
                (double)r->step / (double)t->steps_per_epoch, loss, r->smooth, rate, now - r->t0);
        fflush(r->losslog);
    }
    char eta[32] = "--";
    double per = (now - r->t0) / (double)(r->step - r->step0);
    int64_t left = r->total == INT64_MAX ? -1 : r->total - r->step;
    if (p->time_limit > 0) {
        double tl = p->time_limit - (now - r->t0);
        if (left < 0 || tl < per * (double)left) left = (int64_t)(tl / per);
    }
    if (left >= 0) snprintf(eta, sizeof eta, "%.0fs", per * (double)left);
    char tot[32] = "-";
    if (r->total != INT64_MAX) snprintf(tot, sizeof tot, "%lld", (long long)r->total);
    char lk[48] = "";
    if (!isnan(r->link_smooth)) snprintf(lk, sizeof lk, ", link %.4f", r->link_smooth);
    mms_log_info("epoch %lld step %lld/%s loss %.4f (smoothed %.4f%s) %.0f pairs/s ETA %s",
                 (long long)epoch + 1, (long long)r->step, tot, loss, r->smooth, lk, rate, eta);
    r->tlast = now;
    r->pairs_last = r->pairs_done;
}

/* Step 6: steps until the bound, the time limit or a signal (decided on rank
 * 0 and shared), with checkpoints every ckpt_every steps. Collective. */
static mms_status run_steps(trainer_t *t, run_t *r, mms_train_summary_t *sum) {
    const mms_train_params_t *p = t->p;
    while (r->step < r->total) {
        double loss = 0;
        int64_t gp = 0;
        MMS_CALL(train_step(t, r->step, &loss, &gp));
        if (!isfinite(loss)) {
            if (p->resume)
                mms_error_set(MMS_ERR_NUMERIC, __FILE__, __LINE__, __func__,
                              "train: loss is %g at step %lld; stopping. The last good checkpoint "
                              "is kept in '%s' (lower --lr?)",
                              loss, (long long)r->step, p->out);
            else
                mms_error_set(MMS_ERR_NUMERIC, __FILE__, __LINE__, __func__,
                              "train: loss is %g at step %lld; stopping. No model is written "
                              "(%s '%s' is left as it was; lower --lr?)",
                              loss, (long long)r->step, mms_path_exists(p->out) ? "the existing" : "no",
                              p->out);
            return MMS_ERR_NUMERIC;
        }
        double ta = mms_now();
        MMS_CALL(mms_adam_step(t->adam, t->model->params, t->grad->dparams));
        if (!p->freeze_tags)
            MMS_CALL(mms_adam_step_rows(t->adam_tags, t->model->tags, t->cfg.dim, t->grad->rows,
                                        t->grad->n_rows, t->grad->drows));
        PHASE(t, 7, ta);
        r->step++;
        r->pairs_done += gp;
        r->exch_total += t->exch_bytes;
        r->smooth = isnan(r->smooth) ? loss : 0.98 * r->smooth + 0.02 * loss;
        if (p->link_weight > 0 && t->g->n_tags > 0)
            r->link_smooth = isnan(r->link_smooth) ? t->link_loss : 0.98 * r->link_smooth + 0.02 * t->link_loss;
        if (isnan(r->first)) r->first = r->smooth;
        double now = mms_now();
        int stop = 0;
        if (t->rank == 0) {
            if (p->time_limit > 0 && now - r->t0 >= p->time_limit) stop = 2;
            if (g_stop_signal) stop = 3;
        }
        MMS_CALL(mms_mpi_arrive(t->comm, MMS_MPI_WAIT_STEP));
        MMS_MPI_CALL(MPI_Bcast(&stop, 1, MPI_INT, 0, t->comm));
        int log_now = (r->step % p->log_every == 0) || stop || r->step == r->total;
        if (t->rank == 0 && log_now) log_progress(t, r, loss, now);
        if (p->ckpt_every > 0 && r->step % p->ckpt_every == 0 && r->step < r->total && !stop)
            MMS_CALL(mms_mpi_agree(write_checkpoint(t, r->step, r->smooth), t->comm));
        if (stop) {
            sum->stopped_by = stop == 2 ? 2 : 3;
            break;
        }
    }
    if (r->step >= r->total) sum->stopped_by = (p->max_steps > 0 && r->total == p->max_steps) ? 1 : 0;
    return MMS_OK;
}

/* Step 7: the last checkpoint, the model directory and the summary with the
 * per-phase profile. Collective. */
static mms_status finish(trainer_t *t, const run_t *r, mms_train_summary_t *sum) {
    MMS_CALL(mms_mpi_agree(write_checkpoint(t, r->step, r->smooth), t->comm));
    MMS_CALL(mms_mpi_agree(export_model(t, r->step, r->smooth), t->comm));
    if (t->rank == 0 && t->staging) {
        if (r->losslog) fflush(r->losslog);
        mms_status cs = mms_outdir_commit(t->dir, t->p->out, t->p->force);
        if (cs == MMS_OK) t->staging = 0;
        MMS_CALL(mms_mpi_agree(cs, t->comm));
    } else {
        MMS_CALL(mms_mpi_agree(MMS_OK, t->comm));
    }
    double fl = t->flops, fsum = 0;
    MMS_MPI_CALL(MPI_Allreduce(&fl, &fsum, 1, MPI_DOUBLE, MPI_SUM, t->comm));
    const int64_t done = r->step - r->step0;
    sum->steps = done;
    sum->steps_per_epoch = t->steps_per_epoch;
    sum->pairs = r->pairs_done;
    sum->first_loss = r->first;
    sum->last_loss = r->smooth;
    sum->link_loss = r->link_smooth;
    sum->seconds = mms_now() - r->t0;
    sum->pairs_per_sec = (double)r->pairs_done / (sum->seconds + 1e-9);
    sum->gflops = fsum / (sum->seconds + 1e-9) / 1e9;
    sum->exchange_bytes_per_step = done > 0 ? r->exch_total / done : 0;
    char prof[512];
    size_t used = 0;
    for (int i = 0; i < 8; i++)
        used += (size_t)snprintf(prof + used, sizeof prof - used, "%s%s %.2f", i ? ", " : "", k_phase[i],
                                 1e3 * t->phase[i] / (double)(done > 0 ? done : 1));
    mms_log_rankinfo("train: ms per step on rank %d: %s", t->rank, prof);
    return MMS_OK;
}

mms_status mms_train(const mms_train_params_t *p, MPI_Comm comm, mms_train_summary_t *sum) {
    trainer_t T;
    trainer_t *t = &T;
    memset(t, 0, sizeof *t);
    memset(sum, 0, sizeof *sum);
    t->p = p;
    t->comm = comm;
    MMS_MPI_CALL(MPI_Comm_rank(comm, &t->rank));
    MMS_MPI_CALL(MPI_Comm_size(comm, &t->nranks));
    run_t r;
    memset(&r, 0, sizeof r);
    mms_status s;
    MMS_CALL_GOTO(s, done, open_inputs(t));
    MMS_CALL_GOTO(s, done, load_shard(t));
    MMS_CALL_GOTO(s, done, build_model(t));
    MMS_CALL_GOTO(s, done, make_pairs(t));
    MMS_CALL_GOTO(s, done, start_run(t, &r, sum));
    MMS_CALL_GOTO(s, done, run_steps(t, &r, sum));
    MMS_CALL_GOTO(s, done, finish(t, &r, sum));
done:
    if (r.losslog) fclose(r.losslog);
    if (t->staging) mms_outdir_abort(t->dir); /* a failed fresh run leaves nothing */
    trainer_free(t);
    return s;
}
