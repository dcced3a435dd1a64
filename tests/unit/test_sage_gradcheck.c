/* test_sage_gradcheck.c: the analytic gradient of the full GraphSAGE loss
 * (both layers, the aggregators, ReLU, dropout with fixed masks, the
 * normalisation, the positives and the shared negatives) against central finite
 * differences, for every parameter block and every tag-table row, in double.
 *
 * The double kernels come from compiling worker/sage_kern.c a second time in
 * this unit with MMS_SAGE_KERN_DOUBLE (names suffixed _d); the plan is built by
 * the library's float API, so the same plan drives both. The float kernels are
 * then compared with the double ones, and the inference path, the query path
 * and a two-"rank" split of a batch are checked against the batch forward.
 *
 * Graph: 32 images + 8 tags in a permuted local index space (so gid mapping is
 * exercised), an isolated image (dummy samples), hubs above the degree cap
 * (6), D = 7, H = 4, s1 = 3, s2 = 2, 4 pairs + 3 negatives with repeats.
 */
#define MMS_SAGE_KERN_DOUBLE 1
#include "sage_kern.c"

#include <stdio.h>
#include <stdlib.h>

#include "mms_log.h"
#include "mms_test.h"
#include "sample.h"

enum { NI = 32, NT = 8, NL = NI + NT, D = 7, HID = 4, CAP = 6, S1 = 3, S2 = 2, NB = 4, NQ = 3 };

typedef struct {
    int64_t gid[NL];     /* local -> global */
    int32_t inv[NL];     /* global -> local */
    int64_t indptr[NL + 1];
    int64_t indices[NL * NL];
    mms_csr_t adj;
    float xdense[NL * D];  /* dense features by local id (tag rows zero) */
    float xsparse[NL * D]; /* mostly-zero binary features */
    float xsval[NL * D];   /* mostly-zero real-valued features */
} graph_t;

static void make_graph(graph_t *g) {
    mms_rng_t r;
    mms_rng_init(&r, 42, MMS_STREAM_FUZZ, 0);
    /* local id v holds global id perm[v] */
    int64_t perm[NL];
    for (int i = 0; i < NL; i++) perm[i] = i;
    for (int i = NL - 1; i > 0; i--) {
        int j = (int)mms_rng_below(&r, (uint32_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int v = 0; v < NL; v++) {
        g->gid[v] = perm[v];
        g->inv[perm[v]] = v;
    }
    static unsigned char A[NL][NL];
    memset(A, 0, sizeof A);
    for (int i = 1; i < NI; i++) { /* global image 0 stays isolated */
        int ki = (int)mms_rng_below(&r, 4), kt = 1 + (int)mms_rng_below(&r, 3);
        for (int e = 0; e < ki; e++) {
            int j = 1 + (int)mms_rng_below(&r, NI - 1);
            if (j != i) A[i][j] = A[j][i] = 1;
        }
        for (int e = 0; e < kt; e++) {
            int t = NI + (int)mms_rng_below(&r, NT);
            A[i][t] = A[t][i] = 1;
        }
    }
    for (int i = 1; i < 12; i++) A[i][NI] = A[NI][i] = 1; /* tag 0: a hub above the cap */
    /* Directed rows that force repeats in hop-2 lists (the sampler takes any CSR):
     * target 30 -> {31}, 31 -> {tag 3}: 31's hop-2 list is tag 3 drawn s1 times;
     * target 27 -> {29}, 29 -> {28}: 29's hop-2 list is image 28 drawn s1 times. */
    const int rows[4] = {30, 31, 27, 29}, only[4] = {31, NI + 3, 29, 28};
    for (int k = 0; k < 4; k++) {
        memset(A[rows[k]], 0, sizeof A[rows[k]]);
        A[rows[k]][only[k]] = 1;
    }
    int64_t p = 0;
    for (int v = 0; v < NL; v++) {
        g->indptr[v] = p;
        int64_t gv = g->gid[v];
        for (int h = 0; h < NL; h++)
            if (A[gv][h]) g->indices[p++] = g->inv[h];
    }
    g->indptr[NL] = p;
    g->adj = (mms_csr_t){NL, g->indptr, g->indices, NULL};
    memset(g->xdense, 0, sizeof g->xdense);
    memset(g->xsparse, 0, sizeof g->xsparse);
    memset(g->xsval, 0, sizeof g->xsval);
    for (int v = 0; v < NL; v++) {
        if (g->gid[v] >= NI) continue;
        for (int c = 0; c < D; c++) g->xdense[v * D + c] = (float)mms_rng_normal(&r);
        int nnz = (int)mms_rng_below(&r, 4); /* 0..3 non-zeros, some rows empty */
        for (int e = 0; e < nnz; e++) {
            int c = (int)mms_rng_below(&r, D);
            g->xsparse[v * D + c] = 1.0f;
            g->xsval[v * D + c] = 0.5f + (float)mms_rng_uniform(&r);
        }
    }
}

static int32_t L(const graph_t *g, int64_t global) { return g->inv[global]; }

typedef struct {
    const char *name;
    int feat; /* 0 dense, 1 sparse binary, 2 sparse valued */
    int h2_mode;
    float p;
    int train_tags;
    int train;
} case_t;

/* per-block error: max |a - n| / max(max |n|, 1e-8) */
static double block_err(const double *a, const double *n, size_t len, double *scale) {
    double mx = 0, e = 0;
    for (size_t i = 0; i < len; i++) mx = fmax(mx, fabs(n[i]));
    for (size_t i = 0; i < len; i++) e = fmax(e, fabs(a[i] - n[i]));
    if (scale) *scale = mx;
    return e / fmax(mx, 1e-8);
}

/* ---- a literal forward, occurrence by occurrence, in double: the model's
 * equations and mask rule (docs/model.md) written independently of the plan,
 * the strategies and the lane-parallel Philox of the kernels. */
typedef struct {
    const graph_t *g;
    const mms_sage_config_t *cfg;
    const double *P, *TG, *X, *XV; /* X: dense rows (NULL when sparse) */
    const mms_sage_sparse_t *sp;
    uint64_t step;
    int train;
} naive_t;

static double mask_mult(const naive_t *nv, int site, uint64_t key, int col) {
    int thr = (int)lrint(nv->cfg->dropout * 256.0);
    if (!nv->train || thr == 0) return 1.0;
    uint64_t seed = nv->cfg->seed;
    uint64_t rk = mms_rng_hash(seed, MMS_STREAM_DROPOUT, key, (nv->step << 4) | (uint64_t)site);
    uint32_t c[4] = {(uint32_t)col >> 4, (uint32_t)MMS_STREAM_DROPOUT << 16, (uint32_t)rk,
                     (uint32_t)(rk >> 32)},
             k[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, o[4];
    mms_philox4x32(c, k, o);
    int j = col & 15;
    uint32_t byte = (o[j >> 2] >> (8 * (j & 3))) & 255u;
    return byte >= (uint32_t)thr ? 256.0 / (256 - thr) : 0.0;
}

static void naive_input(const naive_t *nv, int32_t v, double *x) {
    memset(x, 0, D * sizeof(double));
    if (v < 0) return; /* dummy */
    int64_t gv = nv->g->gid[v];
    if (gv >= NI) {
        for (int c = 0; c < D; c++) x[c] = nv->TG[(gv - NI) * D + c];
    } else if (nv->X) {
        for (int c = 0; c < D; c++) x[c] = nv->X[v * D + c];
    } else {
        for (int64_t q = nv->sp->indptr[v]; q < nv->sp->indptr[v + 1]; q++)
            x[nv->sp->indices[q]] = nv->XV ? nv->XV[q] : 1.0;
    }
}

/* h1 = ReLU([drop(x_self) W1s || (1/k) sum_i drop(x_nbr[i]) W1n]) */
static void naive_h1(const naive_t *nv, int32_t self, int site_s, uint64_t key_s, const int32_t *nbr,
                     const uint64_t *keys, int k, int site_n, double *h1) {
    const double *W1s = nv->P, *W1n = nv->P + D * HID;
    double x[D], xs[D], mean[D] = {0};
    naive_input(nv, self, x);
    for (int c = 0; c < D; c++) xs[c] = x[c] * mask_mult(nv, site_s, key_s, c);
    for (int i = 0; i < k; i++) {
        naive_input(nv, nbr[i], x);
        for (int c = 0; c < D; c++) mean[c] += x[c] * mask_mult(nv, site_n, keys[i], c) / k;
    }
    for (int o = 0; o < HID; o++) {
        double a = 0, bn = 0;
        for (int c = 0; c < D; c++) a += xs[c] * W1s[c * HID + o], bn += mean[c] * W1n[c * HID + o];
        h1[o] = a > 0 ? a : 0;
        h1[HID + o] = bn > 0 ? bn : 0;
    }
}

/* z of local target t at the batch's step */
static void naive_z(const naive_t *nv, int32_t t, double *z) {
    const mms_sage_config_t *cf = nv->cfg;
    const double *W2s = nv->P + 2 * D * HID, *W2n = W2s + 2 * HID * HID;
    int32_t c1[S2], c2[S1], u[S2], w[S1];
    uint64_t ku[S2], kw[S1];
    mms_sample_columns(cf->seed, nv->step, 1, cf->max_degree, S2, c1);
    mms_sample_columns(cf->seed, nv->step, 2, cf->max_degree, S1, c2);
    int64_t gt = nv->g->gid[t];
    for (int j = 0; j < S2; j++) {
        u[j] = mms_sample_padded(&nv->g->adj, nv->g->gid, cf->seed, cf->max_degree, t, c1[j]);
        ku[j] = ((uint64_t)gt << 8) | (uint64_t)j;
    }
    double hT[2 * HID], m2[2 * HID] = {0};
    naive_h1(nv, t, 1, (uint64_t)gt, u, ku, S2, 2, hT);
    for (int j = 0; j < S2; j++) {
        if (u[j] < 0) continue; /* dummy: h1 = 0 */
        for (int k = 0; k < S1; k++) {
            w[k] = mms_sample_padded(&nv->g->adj, nv->g->gid, cf->seed, cf->max_degree, u[j], c2[k]);
            kw[k] = w[k] < 0 ? 0 : (uint64_t)nv->g->gid[w[k]];
        }
        double hH[2 * HID];
        naive_h1(nv, u[j], 3, (uint64_t)nv->g->gid[u[j]], w, kw, S1, 4, hH);
        for (int c = 0; c < 2 * HID; c++) m2[c] += hH[c] * mask_mult(nv, 6, ku[j], c) / S2;
    }
    double nrm = 0;
    for (int o = 0; o < HID; o++) {
        double a = 0, bn = 0;
        for (int c = 0; c < 2 * HID; c++) {
            a += hT[c] * mask_mult(nv, 5, (uint64_t)gt, c) * W2s[c * HID + o];
            bn += m2[c] * W2n[c * HID + o];
        }
        z[o] = a, z[HID + o] = bn;
        nrm += a * a + bn * bn;
    }
    nrm = fmax(sqrt(nrm), 1e-12);
    for (int c = 0; c < 2 * HID; c++) z[c] /= nrm;
}

typedef struct {
    const mms_sage_batch_t *b;
    const double *x, *xv;
    const int64_t *xp;
    const int32_t *xi;
    int train;
    int32_t ia[NB], ib[NB], in[NQ];
    double *arena, *z, *dz, *work;
    uint8_t *masks;
} eval_t;

static double loss_at(eval_t *e, const double *P, const double *TG, double *dz) {
    double loss = 0;
    mms_status st = mms_sagek_forward_d(e->b, P, TG, e->x, e->xp, e->xi, e->xv, e->train, e->arena,
                                        e->masks, e->z, NULL);
    T_OK(st);
    st = mms_sagek_loss_d(e->z, e->b->nT, 2 * HID, NB, e->ia, e->ib, NQ, e->in, e->work, &loss, dz);
    T_OK(st);
    return loss;
}

static void run_case(const graph_t *g, const case_t *cs) {
    mms_sage_config_t cfg;
    mms_sage_config_default(&cfg);
    cfg.dim = D;
    cfg.hidden = HID;
    cfg.s1 = S1;
    cfg.s2 = S2;
    cfg.max_degree = CAP;
    cfg.n_neg = NQ;
    cfg.dropout = cs->p;
    cfg.train_tags = cs->train_tags;
    cfg.h2_mode = cs->h2_mode;
    cfg.seed = 7;
    mms_sage_model_t *m = NULL;
    mms_sage_batch_t *b = NULL;
    mms_sage_grad_t *gr = NULL;
    mms_sage_sparse_t *sp = NULL;
    T_OK(mms_sage_model_create(&cfg, NT, &m));
    T_OK(mms_sage_batch_create(&cfg, NL, NT, &b));
    T_OK(mms_sage_grad_create(&cfg, NT, &gr));
    mms_sage_nodes_t nodes = {NL, g->gid, NI, D, g->xdense, NULL, NULL, NULL};
    if (cs->feat) {
        T_OK(mms_sage_sparsify(cs->feat == 1 ? g->xsparse : g->xsval, NL, D, 1.0, &sp));
        T_CHECK(sp != NULL);
        T_CHECK((sp->values == NULL) == (cs->feat == 1));
        mms_sage_nodes_use_sparse(&nodes, sp);
    }
    /* pairs (a_i, b_i) and negatives, as global ids; repeats on purpose */
    int64_t ga[NB] = {5, NI + 2, 0, 9}, gb[NB] = {6, 30, 3, 5}, gn[NQ] = {NI, 27, 9};
    int32_t targets[2 * NB + NQ];
    for (int i = 0; i < NB; i++) targets[i] = L(g, ga[i]), targets[NB + i] = L(g, gb[i]);
    for (int j = 0; j < NQ; j++) targets[2 * NB + j] = L(g, gn[j]);
    T_OK(mms_sage_batch_build(b, &g->adj, &nodes, 3, targets, 2 * NB + NQ));
    T_CHECK(b->nT == 2 * NB + NQ - 2);
    int rows_ok = 1;
    for (int i = 0; i < 2 * NB + NQ; i++) rows_ok &= b->T_loc[b->in_row[i]] == targets[i];
    T_CHECK(rows_ok);
    T_CHECK(b->n_touch > 0);

    /* double copies of everything */
    size_t np = m->n_params;
    double *P = calloc(np, sizeof(double)), *TG = calloc(NT * D, sizeof(double));
    double *X = calloc(NL * D, sizeof(double)), *XV = NULL;
    for (size_t i = 0; i < np; i++) P[i] = m->params[i];
    for (int i = 0; i < NT * D; i++) TG[i] = m->tags[i];
    for (int i = 0; i < NL * D; i++) X[i] = g->xdense[i];
    if (sp && sp->values) {
        XV = calloc((size_t)sp->nnz + 1, sizeof(double));
        for (int64_t i = 0; i < sp->nnz; i++) XV[i] = sp->values[i];
    }
    eval_t e = {b, cs->feat ? NULL : X, XV, sp ? sp->indptr : NULL, sp ? sp->indices : NULL,
                cs->train, {0}, {0}, {0}, NULL, NULL, NULL, NULL, NULL};
    for (int i = 0; i < NB; i++) e.ia[i] = b->in_row[i], e.ib[i] = b->in_row[NB + i];
    for (int j = 0; j < NQ; j++) e.in[j] = b->in_row[2 * NB + j];
    size_t H2 = 2 * HID;
    e.arena = calloc(b->arena_len + 1, sizeof(double));
    e.masks = calloc(b->mask_len + 1, 1);
    e.z = calloc((size_t)b->nT * H2, sizeof(double));
    e.dz = calloc((size_t)b->nT * H2, sizeof(double));
    e.work = calloc(mms_sage_loss_work(NB, NQ, (int32_t)H2), sizeof(double));

    /* analytic */
    double L0 = loss_at(&e, P, TG, e.dz);
    double *dP = calloc(np, sizeof(double)), *dTr = calloc((size_t)b->n_touch * D + 1, sizeof(double));
    T_OK(mms_sagek_backward_d(b, P, TG, e.x, e.xp, e.xi, e.xv, cs->train, e.arena, e.masks, e.dz,
                              dP, cs->train_tags ? dTr : NULL, NULL));
    double *dTa = calloc(NT * D, sizeof(double)); /* dense analytic tag gradient */
    if (cs->train_tags)
        for (int32_t s = 0; s < b->n_touch; s++)
            memcpy(dTa + b->touch[s] * D, dTr + (size_t)s * D, D * sizeof(double));

    /* the forward against the literal one, row by row */
    naive_t nv = {g, &cfg, P, TG, cs->feat ? NULL : X, XV, sp, 3, cs->train};
    double nerr = 0;
    for (int32_t r = 0; r < b->nT; r++) {
        double zn[2 * HID];
        naive_z(&nv, b->T_loc[r], zn);
        for (size_t c = 0; c < H2; c++) nerr = fmax(nerr, fabs(zn[c] - e.z[(size_t)r * H2 + c]));
    }
    T_CHECK(nerr < 1e-12);

    /* numeric, central differences */
    const double h = 1e-6;
    double *nP = calloc(np, sizeof(double)), *nT = calloc(NT * D, sizeof(double));
    for (size_t i = 0; i < np; i++) {
        double keep = P[i];
        P[i] = keep + h;
        double fp = loss_at(&e, P, TG, NULL);
        P[i] = keep - h;
        double fm = loss_at(&e, P, TG, NULL);
        P[i] = keep;
        nP[i] = (fp - fm) / (2 * h);
    }
    for (int i = 0; i < NT * D; i++) {
        double keep = TG[i];
        TG[i] = keep + h;
        double fp = loss_at(&e, P, TG, NULL);
        TG[i] = keep - h;
        double fm = loss_at(&e, P, TG, NULL);
        TG[i] = keep;
        nT[i] = (fp - fm) / (2 * h);
    }
    size_t DH = (size_t)D * HID, HH = H2 * HID;
    const char *names[5] = {"W1s", "W1n", "W2s", "W2n", "tags"};
    const double *ab[5] = {dP, dP + DH, dP + 2 * DH, dP + 2 * DH + HH, dTa};
    const double *nb[5] = {nP, nP + DH, nP + 2 * DH, nP + 2 * DH + HH, nT};
    size_t lens[5] = {DH, DH, HH, HH, NT * D};
    int rep_img = 0, rep_tag = 0; /* hop-2 entries drawn more than once */
    for (int32_t q = 0; q < b->l2_ptr[b->n1]; q++)
        if (b->l2_cnt[q] > 1) *(b->l2_idx[q] >= b->n2_img ? &rep_tag : &rep_img) += 1;
    T_CHECK(rep_img > 0 && rep_tag > 0);
    printf("%-22s loss %.6f  nT %d n1 %d (img %d) n2 %d (img %d) touched %d  h2 img %c tag %c"
           "  repeats img %d tag %d\n",
           cs->name, L0, b->nT, b->n1, b->n1_img, b->n2, b->n2_img, b->n_touch,
           b->h2_img_a ? 'a' : 'b', b->h2_tag_a ? 'a' : 'b', rep_img, rep_tag);
    printf("    forward vs literal per-occurrence forward: max |dz| %.1e\n", nerr);
    for (int k = 0; k < 5; k++) {
        if (k == 4 && !cs->train_tags) {
            /* frozen: no analytic tag gradient; the numeric one is not zero */
            printf("    %-5s frozen (no gradient)\n", names[k]);
            continue;
        }
        double scale, err = block_err(ab[k], nb[k], lens[k], &scale);
        printf("    %-5s max|g| %.3e  max rel err %.2e\n", names[k], scale, err);
        T_CHECK(scale > 1e-6); /* the block really receives gradient */
        T_CHECK(err < 1e-6);
        if (err >= 1e-6) fprintf(stderr, "  case %s block %s: rel err %.3e\n", cs->name, names[k], err);
    }

    /* float kernels through the public API vs double */
    float *zf = calloc((size_t)b->nT * H2, sizeof(float)), *dzf = calloc((size_t)b->nT * H2, sizeof(float));
    double Lf = 0;
    T_OK(mms_sage_forward(b, m, &nodes, cs->train, zf));
    T_OK(mms_sage_loss(zf, b->nT, (int32_t)H2, NB, e.ia, e.ib, NQ, e.in, NULL, &Lf, dzf));
    T_OK(mms_sage_backward(b, m, &nodes, dzf, gr));
    T_NEAR(Lf, L0, 1e-5 * fmax(1, fabs(L0)));
    double zerr = 0;
    for (size_t i = 0; i < (size_t)b->nT * H2; i++) zerr = fmax(zerr, fabs(zf[i] - e.z[i]));
    T_CHECK(zerr < 1e-5);
    double *gf = calloc(np, sizeof(double)), *tf = calloc(NT * D, sizeof(double));
    for (size_t i = 0; i < np; i++) gf[i] = gr->dparams[i];
    T_EQ_INT(gr->n_rows, cs->train_tags ? b->n_touch : 0);
    for (int64_t s = 0; s < gr->n_rows; s++)
        for (int c = 0; c < D; c++) tf[gr->rows[s] * D + c] = gr->drows[s * D + c];
    double fe = 0;
    for (int k = 0; k < 4; k++) fe = fmax(fe, block_err(gf + (ab[k] - dP), ab[k], lens[k], NULL));
    if (cs->train_tags) fe = fmax(fe, block_err(tf, dTa, NT * D, NULL));
    printf("    float vs double: |dz| %.1e  grads rel %.1e\n", zerr, fe);
    T_CHECK(fe < 1e-3);

    free(gf), free(tf), free(zf), free(dzf);
    free(P), free(TG), free(X), free(XV), free(dP), free(dTr), free(dTa), free(nP), free(nT);
    free(e.arena), free(e.z), free(e.dz), free(e.work), free(e.masks);
    mms_sage_sparse_destroy(&sp);
    mms_sage_grad_destroy(&gr);
    mms_sage_batch_destroy(&b);
    mms_sage_model_destroy(&m);
    T_CHECK(m == NULL && b == NULL && gr == NULL);
}

/* Inference: forward(train = 0) == layer2(layer1(targets), embed_h1(hop-1));
 * the query path on an existing node with its sampled list == its embedding. */
static void check_inference(const graph_t *g, int sparse) {
    mms_sage_config_t cfg;
    mms_sage_config_default(&cfg);
    cfg.dim = D, cfg.hidden = HID, cfg.s1 = S1, cfg.s2 = S2, cfg.max_degree = CAP, cfg.seed = 11;
    mms_sage_model_t *m = NULL;
    mms_sage_batch_t *b = NULL;
    mms_sage_sparse_t *sp = NULL;
    T_OK(mms_sage_model_create(&cfg, NT, &m));
    T_OK(mms_sage_batch_create(&cfg, NL, NT, &b));
    mms_sage_nodes_t nodes = {NL, g->gid, NI, D, g->xdense, NULL, NULL, NULL};
    if (sparse) {
        T_OK(mms_sage_sparsify(g->xsval, NL, D, 1.0, &sp));
        mms_sage_nodes_use_sparse(&nodes, sp);
    }
    int32_t all[NL];
    for (int i = 0; i < NL; i++) all[i] = i;
    uint64_t key = MMS_SAGE_EVAL_STEP;
    T_OK(mms_sage_batch_build(b, &g->adj, &nodes, key, all, NL));
    const int H2 = 2 * HID;
    float *z = calloc(NL * H2, sizeof(float)), *h1T = calloc(NL * H2, sizeof(float));
    float *h1H = calloc(NL * H2, sizeof(float)), *z2 = calloc(NL * H2, sizeof(float));
    T_OK(mms_sage_forward(b, m, &nodes, 0, z));
    int32_t cols[S2], raw[NL * S2];
    T_OK(mms_sample_columns(cfg.seed, key, 1, CAP, S2, cols));
    T_OK(mms_sample_neighbours(&g->adj, g->gid, cfg.seed, CAP, cols, S2, b->T_loc, b->nT, raw));
    T_OK(mms_sage_layer1(m, &nodes, b->nT, b->T_loc, NULL, NULL, raw, S2, h1T));
    T_OK(mms_sage_embed_h1(m, &nodes, &g->adj, key, all, NL, h1H));
    T_OK(mms_sage_layer2(m, b->nT, h1T, h1H, NULL, raw, S2, z2));
    double err = 0;
    for (int i = 0; i < b->nT * H2; i++) err = fmax(err, fabs(z[i] - z2[i]));
    printf("inference (%s): batch forward vs layer1/embed_h1/layer2: max |dz| %.2e\n",
           sparse ? "sparse" : "dense", err);
    T_CHECK(err < 1e-5);
    /* query path: an image node re-embedded from its features and its sampled list */
    int checked = 0;
    for (int32_t r = 0; r < b->nT_img && checked < 3; r++) {
        int32_t v = b->T_loc[r];
        float xq[D] = {0}, zq[2 * HID], hq[2 * HID], hn[S2 * 2 * HID];
        if (sparse) {
            for (int64_t q = sp->indptr[v]; q < sp->indptr[v + 1]; q++)
                xq[sp->indices[q]] = sp->values ? sp->values[q] : 1.0f;
        } else {
            memcpy(xq, g->xdense + v * D, sizeof xq);
        }
        const int32_t *list = raw + r * S2;
        for (int l = 0; l < S2; l++)
            for (int c = 0; c < H2; c++) hn[l * H2 + c] = list[l] >= 0 ? h1H[list[l] * H2 + c] : 0;
        T_OK(mms_sage_query(m, &nodes, xq, list, S2, hn, zq, hq));
        double qe = 0, he = 0;
        for (int c = 0; c < H2; c++) {
            qe = fmax(qe, fabs(zq[c] - z[r * H2 + c]));
            he = fmax(he, fabs(hq[c] - h1T[r * H2 + c]));
        }
        T_CHECK(qe < 1e-5 && he < 1e-5);
        checked++;
    }
    T_EQ_INT(checked, 3);
    /* a query with an empty list, and bad input */
    float xq[D] = {1, 0, 0, 0, 0, 0, 0}, zq[2 * HID];
    T_OK(mms_sage_query(m, &nodes, xq, NULL, 0, NULL, zq, NULL));
    int32_t bad = NL + 3;
    float hn[2 * HID] = {0};
    T_FAILS(mms_sage_query(m, &nodes, xq, &bad, 1, hn, zq, NULL), MMS_ERR_ARG);
    T_MSG_HAS("not a local id");
    free(z), free(h1T), free(h1H), free(z2);
    mms_sage_sparse_destroy(&sp);
    mms_sage_batch_destroy(&b);
    mms_sage_model_destroy(&m);
}

/* A batch split over two "ranks": same z per target, and the gradients of the
 * halves (each with its targets' dL/dz) sum to the gradient of the whole. */
static void check_split(const graph_t *g) {
    mms_sage_config_t cfg;
    mms_sage_config_default(&cfg);
    cfg.dim = D, cfg.hidden = HID, cfg.s1 = S1, cfg.s2 = S2, cfg.max_degree = CAP, cfg.seed = 5;
    cfg.dropout = 0.3f;
    mms_sage_model_t *m = NULL;
    T_OK(mms_sage_model_create(&cfg, NT, &m));
    mms_sage_nodes_t nodes = {NL, g->gid, NI, D, g->xdense, NULL, NULL, NULL};
    const int H2 = 2 * HID, n = 12;
    int32_t tg[12];
    for (int i = 0; i < n; i++) tg[i] = (int32_t)((i * 7 + 3) % NL);
    float zall[12 * 2 * HID], dzall[12 * 2 * HID];
    mms_rng_t r;
    mms_rng_init(&r, 9, MMS_STREAM_FUZZ, 1);
    for (int i = 0; i < n * H2; i++) dzall[i] = (float)mms_rng_normal(&r);
    size_t np = m->n_params;
    double *gsum = calloc(np, sizeof(double)), *tsum = calloc(NT * D, sizeof(double));
    double *gful = calloc(np, sizeof(double)), *tful = calloc(NT * D, sizeof(double));
    double zerr = 0;
    for (int part = -1; part < 2; part++) { /* -1: whole batch; 0, 1: halves */
        int32_t sel[12];
        int k = 0;
        for (int i = 0; i < n; i++)
            if (part < 0 || (i % 2) == part) sel[k++] = (part < 0) ? tg[i] : tg[n - 1 - i];
        mms_sage_batch_t *b = NULL;
        mms_sage_grad_t *gr = NULL;
        T_OK(mms_sage_batch_create(&cfg, NL, NT, &b));
        T_OK(mms_sage_grad_create(&cfg, NT, &gr));
        T_OK(mms_sage_batch_build(b, &g->adj, &nodes, 17, sel, k));
        float z[12 * 2 * HID], dz[12 * 2 * HID];
        T_OK(mms_sage_forward(b, m, &nodes, 1, z));
        for (int32_t t = 0; t < b->nT; t++) {
            int i = 0;
            while (tg[i] != b->T_loc[t]) i++;
            if (part < 0)
                memcpy(zall + i * H2, z + t * H2, H2 * sizeof(float));
            else
                for (int c = 0; c < H2; c++) zerr = fmax(zerr, fabs(z[t * H2 + c] - zall[i * H2 + c]));
            memcpy(dz + t * H2, dzall + i * H2, H2 * sizeof(float));
        }
        T_OK(mms_sage_backward(b, m, &nodes, dz, gr));
        double *G = part < 0 ? gful : gsum, *TT = part < 0 ? tful : tsum;
        for (size_t i = 0; i < np; i++) G[i] += gr->dparams[i];
        for (int64_t s = 0; s < gr->n_rows; s++)
            for (int c = 0; c < D; c++) TT[gr->rows[s] * D + c] += gr->drows[s * D + c];
        mms_sage_grad_destroy(&gr);
        mms_sage_batch_destroy(&b);
    }
    double ge = block_err(gsum, gful, np, NULL), te = block_err(tsum, tful, NT * D, NULL);
    printf("split over 2 ranks: max |dz| %.1e, grad rel %.1e, tag grad rel %.1e\n", zerr, ge, te);
    T_CHECK(zerr < 1e-6);
    T_CHECK(ge < 1e-5);
    T_CHECK(te < 1e-5);
    free(gsum), free(tsum), free(gful), free(tful);
    mms_sage_model_destroy(&m);
}

/* Glorot limits, determinism by seed, unit-norm tag rows. */
static void check_init(void) {
    mms_sage_config_t cfg;
    mms_sage_config_default(&cfg);
    cfg.dim = 50;
    cfg.hidden = 16;
    mms_sage_model_t *a = NULL, *b = NULL, *c = NULL;
    T_OK(mms_sage_model_create(&cfg, 5, &a));
    T_OK(mms_sage_model_create(&cfg, 5, &b));
    cfg.seed = 2;
    T_OK(mms_sage_model_create(&cfg, 5, &c));
    T_EQ_INT(a->n_params, 2 * 50 * 16 + 2 * 32 * 16);
    T_CHECK(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
    T_CHECK(memcmp(a->tags, b->tags, 5 * 50 * sizeof(float)) == 0);
    T_CHECK(memcmp(a->params, c->params, a->n_params * sizeof(float)) != 0);
    T_CHECK(a->W1n == a->params + 50 * 16 && a->W2s == a->W1n + 50 * 16 && a->W2n == a->W2s + 32 * 16);
    const float *w[4] = {a->W1s, a->W1n, a->W2s, a->W2n};
    int fin[4] = {50, 50, 32, 32};
    for (int k = 0; k < 4; k++) {
        double lim = sqrt(6.0 / (fin[k] + 16)), mx = 0, var = 0;
        for (int i = 0; i < fin[k] * 16; i++) mx = fmax(mx, fabs(w[k][i])), var += (double)w[k][i] * w[k][i];
        var /= fin[k] * 16;
        T_CHECK(mx <= lim && mx > 0.9 * lim);
        T_NEAR(var, lim * lim / 3, 0.25 * lim * lim / 3); /* uniform(-lim, lim) */
    }
    for (int t = 0; t < 5; t++) {
        double s = 0;
        for (int i = 0; i < 50; i++) s += (double)a->tags[t * 50 + i] * a->tags[t * 50 + i];
        T_NEAR(s, 1.0, 1e-5);
    }
    mms_sage_model_destroy(&a);
    mms_sage_model_destroy(&b);
    mms_sage_model_destroy(&c);
}

static void check_errors(const graph_t *g) {
    mms_sage_config_t cfg;
    mms_sage_config_default(&cfg);
    T_FAILS(mms_sage_config_check(&cfg), MMS_ERR_ARG); /* dim unset */
    T_MSG_HAS("dim");
    cfg.dim = D, cfg.hidden = HID, cfg.s1 = S1, cfg.s2 = S2, cfg.max_degree = CAP;
    cfg.dropout = 1.0f;
    T_FAILS(mms_sage_config_check(&cfg), MMS_ERR_ARG);
    T_MSG_HAS("dropout");
    cfg.dropout = 0.2f;
    mms_sage_batch_t *b = NULL;
    mms_sage_model_t *m = NULL;
    T_OK(mms_sage_batch_create(&cfg, NL, NT, &b));
    T_OK(mms_sage_model_create(&cfg, NT, &m));
    mms_sage_nodes_t nodes = {NL, g->gid, NI, D, g->xdense, NULL, NULL, NULL};
    float z[2 * HID];
    T_FAILS(mms_sage_forward(b, m, &nodes, 1, z), MMS_ERR_ARG);
    T_MSG_HAS("build the batch first");
    int32_t t = NL;
    T_FAILS(mms_sage_batch_build(b, &g->adj, &nodes, 0, &t, 1), MMS_ERR_ARG);
    T_MSG_HAS("not a local id");
    nodes.n_images = NI - 2; /* two images now look like tags 8, 9 >= n_tags */
    int32_t all[NL];
    for (int i = 0; i < NL; i++) all[i] = i;
    T_FAILS(mms_sage_batch_build(b, &g->adj, &nodes, 0, all, NL), MMS_ERR_ARG);
    T_MSG_HAS("n_tags");
    mms_sage_batch_destroy(&b);
    mms_sage_model_destroy(&m);
    mms_sage_batch_destroy(&b); /* NULL: no-op */
}

/* The kernels' lane-parallel Philox is bit-for-bit common/mms_rng's. */
static void check_philox(void) {
    uint32_t key[2] = {0x12345678u, 0x9abcdef0u}, blks[PB], out[4 * PB];
    uint64_t rk = 0x0123456789abcdefull;
    for (int i = 0; i < PB; i++) blks[i] = (uint32_t)(i * 977 + 3);
    int same = 1;
    for (int n = 1; n <= PB; n += 5) {
        philox_lanes(key, rk, blks, n, out);
        for (int i = 0; i < n; i++) {
            uint32_t c[4] = {blks[i], (uint32_t)MMS_STREAM_DROPOUT << 16, (uint32_t)rk,
                             (uint32_t)(rk >> 32)},
                     o[4];
            mms_philox4x32(c, key, o);
            same &= memcmp(o, out + 4 * i, sizeof o) == 0;
        }
    }
    /* and it is the documented (seed, DROPOUT, index, block) draw of mms_rng */
    uint64_t seed = ((uint64_t)key[1] << 32) | key[0];
    philox_lanes(key, rk, blks, 1, out);
    same &= mms_rng_hash(seed, MMS_STREAM_DROPOUT, rk, blks[0]) == (((uint64_t)out[0] << 32) | out[1]);
    T_CHECK(same);
}

/* The link term and "train the way queries arrive" (docs/model.md, "The link
 * term"): anchors embedded in a second batch built on the adjacency without
 * the images' tag edges (mms_sage_batch_build_tadj + mms_sage_adj_without_tags);
 * one matrix [zA | zB]; the walk loss with some image starts on their anchor
 * rows, plus lambda x the link loss (anchor -> its tags, shared negative tags);
 * the gradient = backward(A) + backward(B), summed with mms_sage_grad_add. All
 * of it against central differences of the total loss, in double, then the
 * float path against the double one. */
enum { LB = 5, LQ = 3, LNA = 3 };
typedef struct {
    const mms_sage_batch_t *A, *B;
    const double *x;
    int32_t wa[NB], wb[NB], wn[NQ]; /* walk rows in [zA | zB] */
    int32_t la[LB], lb[LB], ln[LQ]; /* link rows */
    double lambda;
    double *arenaA, *arenaB, *zc, *dzc, *dzl, *work;
    uint8_t *masksA, *masksB;
} link_eval_t;

static double link_loss_at(link_eval_t *e, const double *P, const double *TG, double *dzc) {
    const int H2 = 2 * HID;
    int32_t nA = e->A->nT, nB = e->B->nT;
    T_OK(mms_sagek_forward_d(e->A, P, TG, e->x, NULL, NULL, NULL, 1, e->arenaA, e->masksA, e->zc, NULL));
    T_OK(mms_sagek_forward_d(e->B, P, TG, e->x, NULL, NULL, NULL, 1, e->arenaB, e->masksB,
                             e->zc + (size_t)nA * H2, NULL));
    double lw = 0, ll = 0;
    T_OK(mms_sagek_loss_d(e->zc, nA + nB, H2, NB, e->wa, e->wb, NQ, e->wn, e->work, &lw, dzc));
    T_OK(mms_sagek_loss_d(e->zc, nA + nB, H2, LB, e->la, e->lb, LQ, e->ln, e->work, &ll,
                          dzc ? e->dzl : NULL));
    if (dzc)
        for (size_t i = 0; i < (size_t)(nA + nB) * H2; i++) dzc[i] += e->lambda * e->dzl[i];
    return lw + e->lambda * ll;
}

static void check_link_term(const graph_t *g) {
    mms_sage_config_t cfg;
    mms_sage_config_default(&cfg);
    cfg.dim = D, cfg.hidden = HID, cfg.s1 = S1, cfg.s2 = S2, cfg.max_degree = CAP, cfg.seed = 5;
    cfg.dropout = 0.2f, cfg.h2_mode = MMS_SAGE_H2_TRANSFORM;
    mms_sage_model_t *m = NULL;
    mms_sage_batch_t *A = NULL, *B = NULL;
    mms_sage_grad_t *gA = NULL, *gB = NULL;
    T_OK(mms_sage_model_create(&cfg, NT, &m));
    T_OK(mms_sage_batch_create(&cfg, NL, NT, &A));
    T_OK(mms_sage_batch_create(&cfg, NL, NT, &B));
    T_OK(mms_sage_grad_create(&cfg, NT, &gA));
    T_OK(mms_sage_grad_create(&cfg, NT, &gB));
    mms_sage_nodes_t nodes = {NL, g->gid, NI, D, g->xdense, NULL, NULL, NULL};
    /* the adjacency without the images' tag edges: image rows lose exactly
     * their tag entries, tag rows are unchanged */
    mms_csr_t tadj;
    T_OK(mms_sage_adj_without_tags(&g->adj, g->gid, NI, &tadj));
    int adj_ok = 1;
    for (int v = 0; v < NL; v++) {
        int64_t keep = 0;
        for (int64_t e = g->adj.indptr[v]; e < g->adj.indptr[v + 1]; e++)
            keep += g->gid[v] >= NI || g->gid[g->adj.indices[e]] < NI;
        adj_ok &= tadj.indptr[v + 1] - tadj.indptr[v] == keep;
        for (int64_t e = tadj.indptr[v]; e < tadj.indptr[v + 1]; e++)
            adj_ok &= g->gid[v] >= NI || g->gid[tadj.indices[e]] < NI;
    }
    T_CHECK(adj_ok);
    /* walk pairs and negatives in A (as run_case); anchors 5, 9, 12 in B */
    int64_t ga[NB] = {5, NI + 2, 12, 9}, gb[NB] = {6, 30, 3, 5}, gn[NQ] = {NI, 27, 9};
    int64_t anc_g[LNA] = {5, 9, 12};
    /* link pairs (anchor index, tag) and negative tags */
    int lk_a[LB] = {0, 0, 1, 2, 2};
    int64_t lk_t[LB] = {NI + 1, NI + 4, NI, NI + 1, NI + 6}, lk_n[LQ] = {NI + 2, NI + 5, NI};
    int32_t tA[2 * NB + NQ + LB + LQ];
    int nA_in = 0;
    for (int i = 0; i < NB; i++) tA[nA_in++] = L(g, ga[i]);
    for (int i = 0; i < NB; i++) tA[nA_in++] = L(g, gb[i]);
    for (int j = 0; j < NQ; j++) tA[nA_in++] = L(g, gn[j]);
    for (int i = 0; i < LB; i++) tA[nA_in++] = L(g, lk_t[i]);
    for (int j = 0; j < LQ; j++) tA[nA_in++] = L(g, lk_n[j]);
    int32_t tB[LNA];
    for (int i = 0; i < LNA; i++) tB[i] = L(g, anc_g[i]);
    T_OK(mms_sage_batch_build(A, &g->adj, &nodes, 4, tA, nA_in));
    T_OK(mms_sage_batch_build_tadj(B, &g->adj, &tadj, &nodes, 4, tB, LNA));
    /* the anchors' hop-1 samples are images only; A's see tags */
    int tagsB = 0, tagsA = 0;
    for (int32_t r = 0; r < B->nT; r++)
        for (int j = 0; j < S2; j++) tagsB += B->occ1[r * S2 + j] >= B->n1_img;
    for (int32_t q = 0; q < A->nT * S2; q++) tagsA += A->occ1[q] >= A->n1_img;
    T_CHECK(tagsB == 0 && tagsA > 0);
    const int H2 = 2 * HID;
    int32_t nA = A->nT, nB = B->nT;
    size_t nc = (size_t)(nA + nB);
    link_eval_t e;
    memset(&e, 0, sizeof e);
    e.A = A, e.B = B, e.lambda = 0.7;
    /* walk: starts 5 and 12 on their anchor rows (queries), the others in A */
    for (int i = 0; i < NB; i++) e.wa[i] = A->in_row[i], e.wb[i] = A->in_row[NB + i];
    e.wa[0] = nA + B->in_row[0];
    e.wa[2] = nA + B->in_row[2];
    for (int j = 0; j < NQ; j++) e.wn[j] = A->in_row[2 * NB + j];
    for (int i = 0; i < LB; i++) e.la[i] = nA + B->in_row[lk_a[i]], e.lb[i] = A->in_row[2 * NB + NQ + i];
    for (int j = 0; j < LQ; j++) e.ln[j] = A->in_row[2 * NB + NQ + LB + j];
    size_t np = m->n_params;
    double *P = calloc(np, sizeof(double)), *TG = calloc(NT * D, sizeof(double));
    double *X = calloc(NL * D, sizeof(double));
    for (size_t i = 0; i < np; i++) P[i] = m->params[i];
    for (int i = 0; i < NT * D; i++) TG[i] = m->tags[i];
    for (int i = 0; i < NL * D; i++) X[i] = g->xdense[i];
    e.x = X;
    e.arenaA = calloc(A->arena_len + 1, sizeof(double));
    e.arenaB = calloc(B->arena_len + 1, sizeof(double));
    e.masksA = calloc(A->mask_len + 1, 1);
    e.masksB = calloc(B->mask_len + 1, 1);
    e.zc = calloc(nc * H2, sizeof(double));
    e.dzc = calloc(nc * H2, sizeof(double));
    e.dzl = calloc(nc * H2, sizeof(double));
    size_t wk = mms_sage_loss_work(NB, NQ, H2), wk2 = mms_sage_loss_work(LB, LQ, H2);
    e.work = calloc(wk > wk2 ? wk : wk2, sizeof(double));
    /* analytic: backward of each batch with its rows of dL/dz */
    double L0 = link_loss_at(&e, P, TG, e.dzc);
    double *dPA = calloc(np, sizeof(double)), *dPB = calloc(np, sizeof(double));
    double *dTA = calloc((size_t)A->n_touch * D + 1, sizeof(double));
    double *dTB = calloc((size_t)B->n_touch * D + 1, sizeof(double));
    T_OK(mms_sagek_backward_d(A, P, TG, X, NULL, NULL, NULL, 1, e.arenaA, e.masksA, e.dzc, dPA, dTA, NULL));
    T_OK(mms_sagek_backward_d(B, P, TG, X, NULL, NULL, NULL, 1, e.arenaB, e.masksB,
                              e.dzc + (size_t)nA * H2, dPB, dTB, NULL));
    double *dP = calloc(np, sizeof(double)), *dT = calloc(NT * D, sizeof(double));
    for (size_t i = 0; i < np; i++) dP[i] = dPA[i] + dPB[i];
    for (int32_t s = 0; s < A->n_touch; s++)
        for (int c = 0; c < D; c++) dT[A->touch[s] * D + c] += dTA[(size_t)s * D + c];
    for (int32_t s = 0; s < B->n_touch; s++)
        for (int c = 0; c < D; c++) dT[B->touch[s] * D + c] += dTB[(size_t)s * D + c];
    /* numeric */
    const double h = 1e-6;
    double *nP = calloc(np, sizeof(double)), *nTg = calloc(NT * D, sizeof(double));
    for (size_t i = 0; i < np; i++) {
        double keep = P[i];
        P[i] = keep + h;
        double fp = link_loss_at(&e, P, TG, NULL);
        P[i] = keep - h;
        double fm = link_loss_at(&e, P, TG, NULL);
        P[i] = keep;
        nP[i] = (fp - fm) / (2 * h);
    }
    for (int i = 0; i < NT * D; i++) {
        double keep = TG[i];
        TG[i] = keep + h;
        double fp = link_loss_at(&e, P, TG, NULL);
        TG[i] = keep - h;
        double fm = link_loss_at(&e, P, TG, NULL);
        TG[i] = keep;
        nTg[i] = (fp - fm) / (2 * h);
    }
    size_t DH = (size_t)D * HID, HH = (size_t)H2 * HID;
    const char *names[5] = {"W1s", "W1n", "W2s", "W2n", "tags"};
    const double *ab[5] = {dP, dP + DH, dP + 2 * DH, dP + 2 * DH + HH, dT};
    const double *nb[5] = {nP, nP + DH, nP + 2 * DH, nP + 2 * DH + HH, nTg};
    size_t lens[5] = {DH, DH, HH, HH, NT * D};
    printf("link term (walk with 2 query-mode starts + 0.7 x link) loss %.6f  nA %d nB %d\n", L0, nA, nB);
    for (int k = 0; k < 5; k++) {
        double scale, err = block_err(ab[k], nb[k], lens[k], &scale);
        printf("    %-5s max|g| %.3e  max rel err %.2e\n", names[k], scale, err);
        T_CHECK(scale > 1e-6);
        T_CHECK(err < 1e-6);
    }
    /* the B half alone really contributes (the term is not a no-op) */
    double bmax = 0;
    for (size_t i = 0; i < np; i++) bmax = fmax(bmax, fabs(dPB[i]));
    T_CHECK(bmax > 1e-6);
    /* float path: forward both, the same losses, backward both, grad_add */
    float *zf = calloc(nc * H2, sizeof(float)), *dzf = calloc(nc * H2, sizeof(float)),
          *dzl = calloc(nc * H2, sizeof(float));
    T_OK(mms_sage_forward(A, m, &nodes, 1, zf));
    T_OK(mms_sage_forward(B, m, &nodes, 1, zf + (size_t)nA * H2));
    double lw = 0, ll = 0;
    T_OK(mms_sage_loss(zf, (int64_t)nc, H2, NB, e.wa, e.wb, NQ, e.wn, NULL, &lw, dzf));
    T_OK(mms_sage_loss(zf, (int64_t)nc, H2, LB, e.la, e.lb, LQ, e.ln, NULL, &ll, dzl));
    for (size_t i = 0; i < nc * H2; i++) dzf[i] += (float)e.lambda * dzl[i];
    T_NEAR(lw + e.lambda * ll, L0, 1e-5 * fmax(1, fabs(L0)));
    T_OK(mms_sage_backward(A, m, &nodes, dzf, gA));
    T_OK(mms_sage_backward(B, m, &nodes, dzf + (size_t)nA * H2, gB));
    T_OK(mms_sage_grad_add(gA, gB));
    int rows_sorted = 1;
    for (int64_t s2 = 1; s2 < gA->n_rows; s2++) rows_sorted &= gA->rows[s2 - 1] < gA->rows[s2];
    T_CHECK(rows_sorted);
    double *gf = calloc(np, sizeof(double)), *tf = calloc(NT * D, sizeof(double));
    for (size_t i = 0; i < np; i++) gf[i] = gA->dparams[i];
    for (int64_t s2 = 0; s2 < gA->n_rows; s2++)
        for (int c = 0; c < D; c++) tf[gA->rows[s2] * D + c] = gA->drows[s2 * D + c];
    double fe = 0;
    for (int k = 0; k < 4; k++) fe = fmax(fe, block_err(gf + (ab[k] - dP), ab[k], lens[k], NULL));
    fe = fmax(fe, block_err(tf, dT, NT * D, NULL));
    printf("    float (two batches, grad_add) vs double: grads rel %.1e, %lld tag rows\n", fe,
           (long long)gA->n_rows);
    T_CHECK(fe < 1e-3);
    /* grad_add of shapes that differ is refused */
    mms_sage_grad_t *gX = NULL;
    T_OK(mms_sage_grad_create(&cfg, NT - 1, &gX));
    T_FAILS(mms_sage_grad_add(gA, gX), MMS_ERR_ARG);
    mms_sage_grad_destroy(&gX);
    free(zf), free(dzf), free(dzl), free(gf), free(tf);
    free(P), free(TG), free(X), free(dPA), free(dPB), free(dTA), free(dTB), free(dP), free(dT);
    free(nP), free(nTg);
    free(e.arenaA), free(e.arenaB), free(e.masksA), free(e.masksB), free(e.zc), free(e.dzc), free(e.dzl),
        free(e.work);
    mms_csr_free(&tadj);
    mms_sage_grad_destroy(&gA);
    mms_sage_grad_destroy(&gB);
    mms_sage_batch_destroy(&A);
    mms_sage_batch_destroy(&B);
    mms_sage_model_destroy(&m);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET);
    check_philox();
    static graph_t g;
    make_graph(&g);
    /* the graph covers the degree cases */
    int deg0 = 0, over = 0;
    for (int v = 0; v < NL; v++) {
        int64_t d = g.indptr[v + 1] - g.indptr[v];
        deg0 += d == 0;
        over += d > CAP;
    }
    T_CHECK(deg0 >= 1 && over >= 1);
    const case_t cases[] = {
        {"sparse-bin/transform", 1, MMS_SAGE_H2_TRANSFORM, 0.2f, 1, 1},
        {"sparse-val/average", 2, MMS_SAGE_H2_AVERAGE, 0.2f, 1, 1},
        {"dense/img-average", 0, MMS_SAGE_H2_IMG_AVERAGE, 0.2f, 1, 1},
        {"dense/tag-average", 0, MMS_SAGE_H2_TAG_AVERAGE, 0.3f, 1, 1},
        {"dense/auto/frozen", 0, MMS_SAGE_H2_AUTO, 0.2f, 0, 1},
        {"sparse-val/auto/eval", 2, MMS_SAGE_H2_AUTO, 0.2f, 1, 0},
        {"dense/transform/p0", 0, MMS_SAGE_H2_TRANSFORM, 0.0f, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&g, &cases[i]);
    check_inference(&g, 0);
    check_inference(&g, 1);
    check_split(&g);
    check_link_term(&g);
    check_errors(&g);
    check_init();
    return mms_test_finish("test_sage_gradcheck");
}
