/* sage_kern.c: forward, backward and loss of GraphSAGE on raw arrays, for one
 * real type (see sage.h "kernels" and docs/model.md).
 *
 * Compiled as float into the worker library. A test may compile a double copy
 * in its own translation unit:
 *     #define MMS_SAGE_KERN_DOUBLE 1
 *     #include "sage_kern.c"
 * which defines mms_sagek_forward_d / _backward_d / _loss_d taking double
 * arrays (everything static here is private to that unit). The plan
 * (mms_sage_batch_t) is integer-only, so one plan serves both types.
 *
 * Dense products go through cblas_?gemm (row-major, shapes in comments);
 * sparse image rows (CSR) use the hand-written sparse x dense loops below.
 * Nothing here allocates: all buffers are slices of the caller's arena.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cblas.h>

#include "mms_rng.h"
#include "mms_status.h"
#include "sage.h"

#ifdef MMS_SAGE_KERN_DOUBLE
typedef double sk_real;
#define SK(name) mms_sagek_##name##_d
#define SK_GEMM cblas_dgemm
#else
typedef float sk_real;
#define SK(name) mms_sagek_##name
#define SK_GEMM cblas_sgemm
#endif

/* Dropout sites (docs/model.md): which inputs a mask multiplies and whether a
 * mask is drawn per distinct node or per sampled occurrence (t, slot j). */
enum {
    SITE_T_SELF = 1,   /* x_t into W1s, per distinct target                 */
    SITE_T_NEIGH = 2,  /* x_u into the target's W1n mean, per occurrence    */
    SITE_H1_SELF = 3,  /* x_u into W1s for a hop-1 node, per distinct node  */
    SITE_H2 = 4,       /* x_w into the hop-1 node's W1n mean, per distinct  */
    SITE_L2_SELF = 5,  /* h1_T(t) into W2s, per distinct target             */
    SITE_L2_NEIGH = 6  /* h1_H(u) into the target's W2n mean, per occurrence */
};

/* ------------------------------------------------------------ dropout masks */
/* Mask bytes of one row: byte c = byte (c mod 16) of Philox(seed; stream
 * DROPOUT, index rk, block c/16), where rk = hash(seed, DROPOUT, key,
 * step*16 + site) and key = global id (per node) or gid*256 + slot (per
 * occurrence). Keep iff byte >= thr; kept values are scaled by 256/(256-thr). */
typedef struct {
    uint64_t seed, step;
    uint32_t key[2];
    int on;        /* dropout active */
    uint32_t thr;  /* round(256 p) */
    sk_real scale; /* 256 / (256 - thr) */
} sk_drop_t;

static void drop_init(sk_drop_t *d, const mms_sage_batch_t *b, int train) {
    d->seed = b->cfg.seed;
    d->step = b->step;
    d->key[0] = (uint32_t)b->cfg.seed;
    d->key[1] = (uint32_t)(b->cfg.seed >> 32);
    d->thr = (uint32_t)lrint(b->cfg.dropout * 256.0);
    d->on = train && d->thr > 0;
    d->scale = d->on ? (sk_real)256.0 / (sk_real)(256 - d->thr) : (sk_real)1;
}

static inline uint64_t drop_rowkey(const sk_drop_t *d, int site, uint64_t key) {
    return mms_rng_hash(d->seed, MMS_STREAM_DROPOUT, key, (d->step << 4) | (uint64_t)site);
}

static inline uint64_t occ_key(int64_t gid, int j) { return ((uint64_t)gid << 8) | (uint64_t)j; }

/* Philox4x32-10 on PB counters at once, laid out lane by lane so the compiler
 * vectorises the rounds (vpmuludq); bit-for-bit mms_philox4x32 with counter
 * {blks[i], DROPOUT << 16, rk lo, rk hi}, i.e. mms_rng's (seed, DROPOUT, rk,
 * block) draw. out[4 i + w] = word w of block i, for i < n <= PB. */
#define PB 16
static inline __attribute__((always_inline)) void philox_L(const int L, const uint32_t key[2],
                                                           uint64_t rk, const uint32_t *blks,
                                                           int n, uint32_t *out) {
    /* 64-bit lanes holding 32-bit values: the widening products vectorise */
    uint64_t a0[PB], a1[PB], a2[PB], a3[PB];
    for (int i = 0; i < L; i++) {
        a0[i] = i < n ? blks[i] : 0;
        a1[i] = (uint32_t)MMS_STREAM_DROPOUT << 16;
        a2[i] = (uint32_t)rk;
        a3[i] = (uint32_t)(rk >> 32);
    }
    uint64_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        for (int i = 0; i < L; i++) {
            uint64_t p0 = 0xD2511F53ull * a0[i], p1 = 0xCD9E8D57ull * a2[i];
            uint64_t n0 = (p1 >> 32) ^ a1[i] ^ k0;
            uint64_t n2 = (p0 >> 32) ^ a3[i] ^ k1;
            a1[i] = p1 & 0xFFFFFFFFull;
            a3[i] = p0 & 0xFFFFFFFFull;
            a0[i] = n0;
            a2[i] = n2;
        }
        k0 = (k0 + 0x9E3779B9u) & 0xFFFFFFFFull;
        k1 = (k1 + 0xBB67AE85u) & 0xFFFFFFFFull;
    }
    for (int i = 0; i < n; i++) {
        out[4 * i] = (uint32_t)a0[i];
        out[4 * i + 1] = (uint32_t)a1[i];
        out[4 * i + 2] = (uint32_t)a2[i];
        out[4 * i + 3] = (uint32_t)a3[i];
    }
}

/* n <= PB blocks; 4, 8 or 16 lanes are computed, whichever covers n. */
static void philox_lanes(const uint32_t key[2], uint64_t rk, const uint32_t *blks, int n,
                         uint32_t *out) {
    if (n <= 4)
        philox_L(4, key, rk, blks, n, out);
    else if (n <= 8)
        philox_L(8, key, rk, blks, n, out);
    else
        philox_L(PB, key, rk, blks, n, out);
}

/* Byte j (0..15) of a block: byte j%4 of word j/4 (little-endian order). */
static inline uint32_t mask_byte(const uint32_t *blk_words, int j) {
    return (blk_words[j >> 2] >> (8 * (j & 3))) & 255u;
}

/* bytes[0..16 nb) of blocks c0/16 .. c0/16 + nb - 1 of row rk (c0 a multiple of 16). */
static inline void mask_bytes(const sk_drop_t *d, uint64_t rk, int c0, int nb, uint8_t *bytes) {
    uint32_t blks[PB], out[4 * PB];
    for (int i = 0; i < nb; i++) blks[i] = (uint32_t)(c0 >> 4) + (uint32_t)i;
    philox_lanes(d->key, rk, blks, nb, out);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(bytes, out, (size_t)nb * 16); /* same order as mask_byte() */
#else
    for (int i = 0; i < 16 * nb; i++) bytes[i] = (uint8_t)mask_byte(out + 4 * (i >> 4), i & 15);
#endif
}

/* y[0..n) = a * mask (.) x with mask bytes m[0..n) kept by the forward (m is
 * not read when dropout is off). */
static void kept_set(const sk_drop_t *d, const uint8_t *m, int n, sk_real a, const sk_real *x,
                     sk_real *y) {
    if (!d->on) {
        for (int i = 0; i < n; i++) y[i] = a * x[i];
        return;
    }
    const uint8_t thr = (uint8_t)d->thr;
    for (int i = 0; i < n; i++) y[i] = m[i] >= thr ? a * x[i] : (sk_real)0;
}

/* The same, y[0..n) += a * mask (.) x. */
static void kept_axpy(const sk_drop_t *d, const uint8_t *m, int n, sk_real a, const sk_real *x,
                      sk_real *y) {
    if (!d->on) {
        for (int i = 0; i < n; i++) y[i] += a * x[i];
        return;
    }
    const uint8_t thr = (uint8_t)d->thr;
    for (int i = 0; i < n; i++) y[i] += m[i] >= thr ? a * x[i] : (sk_real)0;
}

/* y[0..n) = a * mask(rk) (.) x (acc 0) or y += it (acc 1): the mask drawn in
 * blocks of 16 PB bytes, each block applied as kept_set / kept_axpy; the mask
 * bytes are also stored when store != NULL. */
static void drop_apply(const sk_drop_t *d, uint64_t rk, int n, sk_real a, const sk_real *x,
                       sk_real *y, uint8_t *store, int acc) {
    if (!d->on) {
        if (acc)
            kept_axpy(d, NULL, n, a, x, y);
        else
            kept_set(d, NULL, n, a, x, y);
        return;
    }
    uint8_t m[16 * PB];
    for (int c0 = 0; c0 < n; c0 += 16 * PB) {
        int w = n - c0 < 16 * PB ? n - c0 : 16 * PB;
        mask_bytes(d, rk, c0, (w + 15) >> 4, m);
        if (store) memcpy(store + c0, m, (size_t)w);
        if (acc)
            kept_axpy(d, m, w, a, x + c0, y + c0);
        else
            kept_set(d, m, w, a, x + c0, y + c0);
    }
}

static inline void drop_set_s(const sk_drop_t *d, uint64_t rk, int n, sk_real a,
                              const sk_real *x, sk_real *y, uint8_t *store) {
    drop_apply(d, rk, n, a, x, y, store, 0);
}

static inline void drop_axpy_s(const sk_drop_t *d, uint64_t rk, int n, sk_real a,
                               const sk_real *x, sk_real *y, uint8_t *store) {
    drop_apply(d, rk, n, a, x, y, store, 1);
}

static inline void drop_set(const sk_drop_t *d, uint64_t rk, int n, sk_real a, const sk_real *x,
                            sk_real *y) {
    drop_apply(d, rk, n, a, x, y, NULL, 0);
}

static inline void drop_axpy(const sk_drop_t *d, uint64_t rk, int n, sk_real a,
                             const sk_real *x, sk_real *y) {
    drop_apply(d, rk, n, a, x, y, NULL, 1);
}

/* Multipliers of the non-zeros of one sparse row: mult[e] = a v_e keep(cols[e])
 * for e < nnz <= 16 PB (v_e = 1 when vals is NULL). Only the blocks holding
 * non-zeros are drawn. */
static void sparse_mult(const sk_drop_t *d, uint64_t rk, const int32_t *cols, const sk_real *vals,
                        int nnz, sk_real a, sk_real *mult) {
    if (!d->on) {
        for (int e = 0; e < nnz; e++) mult[e] = a * (vals ? vals[e] : (sk_real)1);
        return;
    }
    int e = 0;
    while (e < nnz) {
        uint32_t blks[PB], out[4 * PB];
        int nb = 0, e1 = e;
        for (; e1 < nnz; e1++) { /* up to PB distinct consecutive blocks */
            uint32_t bk = (uint32_t)cols[e1] >> 4;
            if (nb > 0 && blks[nb - 1] == bk) continue;
            if (nb == PB) break;
            blks[nb++] = bk;
        }
        philox_lanes(d->key, rk, blks, nb, out);
        for (int bi = 0; e < e1; e++) {
            uint32_t bk = (uint32_t)cols[e] >> 4;
            while (blks[bi] != bk) bi++;
            sk_real v = vals ? vals[e] : (sk_real)1;
            mult[e] = mask_byte(out + 4 * bi, cols[e] & 15) >= d->thr ? a * v : (sk_real)0;
        }
    }
}

/* ------------------------------------------------------------ dense products */
/* C (M x N, ldc) = alpha op(A) op(B) + beta C, with op(A) M x K, op(B) K x N. */
static void gemm(int ta, int tb, int M, int N, int K, sk_real alpha, const sk_real *A, int lda,
                 const sk_real *B, int ldb, sk_real beta, sk_real *C, int ldc, double *flops) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
        return;
    }
    SK_GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
            alpha, A, lda, B, ldb, beta, C, ldc);
    if (flops) *flops += 2.0 * M * N * K;
}

static void zero_rows(sk_real *Y, int n, int w, int ld) {
    if (w == ld) {
        if (n > 0) memset(Y, 0, (size_t)n * w * sizeof(sk_real));
        return;
    }
    for (int r = 0; r < n; r++) memset(Y + (size_t)r * ld, 0, (size_t)w * sizeof(sk_real));
}

static inline void axpy(int n, sk_real a, const sk_real *x, sk_real *y) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* ------------------------------------------------------------ node sets */
typedef struct {
    int32_t n, n_img;
    const int32_t *loc, *tch;
    const int64_t *gid;
} sk_set_t;

typedef struct {
    const sk_real *x, *xv, *tags;
    const int64_t *xp;
    const int32_t *xi;
    const int64_t *touch;
    int D, sparse;
} sk_in_t;

/* Dense input row of set element r (tag row, or dense image row). */
static inline const sk_real *in_row(const sk_in_t *in, const sk_set_t *s, int32_t r) {
    if (r >= s->n_img) return in->tags + (size_t)in->touch[s->tch[r]] * in->D;
    return in->x + (size_t)s->loc[r] * in->D;
}

/* Image rows are read in plan order, i.e. scattered over a large table: ask
 * for row r + PF_AHEAD while row r is processed. */
#define PF_AHEAD 3
static inline void prefetch_row(const sk_in_t *in, const sk_set_t *s, int32_t r) {
    if (r >= s->n_img || in->sparse) return;
    const char *p = (const char *)(in->x + (size_t)s->loc[r] * in->D);
    for (size_t o = 0; o < (size_t)in->D * sizeof(sk_real); o += 64) __builtin_prefetch(p + o);
}

/* X[(r-lo)] = a * mask(site, gid r) (.) x_r for dense rows r in [lo, hi). */
static void gather_rows(const sk_in_t *in, const sk_set_t *s, int32_t lo, int32_t hi,
                        const sk_drop_t *d, int site, sk_real *X) {
    for (int32_t r = lo; r < hi; r++) {
        if (r + PF_AHEAD < hi) prefetch_row(in, s, r + PF_AHEAD);
        uint64_t rk = d->on ? drop_rowkey(d, site, (uint64_t)s->gid[r]) : 0;
        drop_set(d, rk, in->D, d->scale, in_row(in, s, r), X + (size_t)(r - lo) * in->D);
    }
}

/* Calls body(e, col, mult) for the non-zeros of image row loc with multiplier
 * a v mask (chunks of 16 PB non-zeros). */
#define FOR_SPARSE_NZ(in, d, rk, loc, a, body)                                                  \
    do {                                                                                      \
        sk_real mult_[16 * PB];                                                               \
        int64_t p0_ = (in)->xp[loc], p1_ = (in)->xp[(loc) + 1];                               \
        for (int64_t q_ = p0_; q_ < p1_; q_ += 16 * PB) {                                     \
            int n_ = (int)(p1_ - q_ < 16 * PB ? p1_ - q_ : 16 * PB);                          \
            sparse_mult(d, rk, (in)->xi + q_, (in)->xv ? (in)->xv + q_ : NULL, n_, a, mult_); \
            for (int e_ = 0; e_ < n_; e_++) {                                                 \
                sk_real mult = mult_[e_];                                                     \
                int32_t col = (in)->xi[q_ + e_];                                              \
                if (mult != 0) { body; }                                                      \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* Y[r - yoff] (+)= sum_nz v mask W[col] for sparse image rows r in [lo, hi) of
 * set s: (rows x D, CSR) @ W (D x H) -> Y (rows x H, ldy). Overwrites when zero. */
static void sparse_rows_mm(const sk_in_t *in, const sk_set_t *s, int32_t lo, int32_t hi,
                           const sk_drop_t *d, int site, const sk_real *W, int H, sk_real *Y,
                           int32_t yoff, int ldy, int zero, double *flops) {
    double nnz = 0;
    for (int32_t r = lo; r < hi; r++) {
        sk_real *y = Y + (size_t)(r - yoff) * ldy;
        if (zero) memset(y, 0, (size_t)H * sizeof(sk_real));
        uint64_t rk = d->on ? drop_rowkey(d, site, (uint64_t)s->gid[r]) : 0;
        int32_t loc = s->loc[r];
        FOR_SPARSE_NZ(in, d, rk, loc, d->scale, axpy(H, mult, W + (size_t)col * H, y));
        nnz += (double)(in->xp[loc + 1] - in->xp[loc]);
    }
    if (flops) *flops += 2.0 * nnz * H;
}

/* dW[col] += sum_r v mask dY[r - yoff] over sparse image rows r in [lo, hi): X^T @ dY. */
static void sparse_rows_tmm(const sk_in_t *in, const sk_set_t *s, int32_t lo, int32_t hi,
                            const sk_drop_t *d, int site, const sk_real *dY, int32_t yoff,
                            int ldy, int H, sk_real *dW, double *flops) {
    double nnz = 0;
    for (int32_t r = lo; r < hi; r++) {
        uint64_t rk = d->on ? drop_rowkey(d, site, (uint64_t)s->gid[r]) : 0;
        int32_t loc = s->loc[r];
        const sk_real *dy = dY + (size_t)(r - yoff) * ldy;
        FOR_SPARSE_NZ(in, d, rk, loc, d->scale, axpy(H, mult, dy, dW + (size_t)col * H));
        nnz += (double)(in->xp[loc + 1] - in->xp[loc]);
    }
    if (flops) *flops += 2.0 * nnz * H;
}

/* y (H wide) += a mask(rk) x W for one sparse image row x (loc). */
static void sparse_row_axpy(const sk_in_t *in, int32_t loc, const sk_drop_t *d, uint64_t rk,
                            sk_real a, const sk_real *W, int H, sk_real *y) {
    FOR_SPARSE_NZ(in, d, rk, loc, a, axpy(H, mult, W + (size_t)col * H, y));
}

/* dW[col] += a mask(rk) v dy for the non-zeros of a sparse image row. */
static void sparse_row_outer(const sk_in_t *in, int32_t loc, const sk_drop_t *d, uint64_t rk,
                             sk_real a, const sk_real *dy, int H, sk_real *dW) {
    FOR_SPARSE_NZ(in, d, rk, loc, a, axpy(H, mult, dy, dW + (size_t)col * H));
}

/* ------------------------------------------------------------ shared setup */
typedef struct {
    int D, H, H2, s1, s2, sp;
    sk_set_t T, N1, N2;
    sk_in_t in;
    sk_drop_t dr;
    const sk_real *W1s, *W1n, *W2s, *W2n;
    sk_real *XT, *MT, *HT, *X1, *H1, *X2, *P2, *M1, *E, *M2, *Z, *NRM;
    sk_real *DZ, *DHT, *DM2, *DH1, *DP2, *TMP, *ROW;
} sk_ctx_t;

static mms_status ctx_init(sk_ctx_t *c, const mms_sage_batch_t *b, const sk_real *params,
                           const sk_real *tags, const sk_real *x, const int64_t *xp,
                           const int32_t *xi, const sk_real *xv, int train, sk_real *A) {
    MMS_CHECK(b && params && A, MMS_ERR_ARG, "sage kernel: batch, params and arena are required");
    MMS_CHECK(b->nT > 0, MMS_ERR_ARG, "sage kernel: the batch has no targets (build it first)");
    MMS_CHECK(b->sparse ? (xp && xi) != 0 : (x != NULL || b->nT_img + b->n1_img + b->n2_img == 0),
              MMS_ERR_ARG, "sage kernel: image rows missing (%s expected)",
              b->sparse ? "CSR" : "dense");
    MMS_CHECK(tags || b->n_touch == 0, MMS_ERR_ARG, "sage kernel: the batch uses tags but no tag table");
    MMS_CHECK(!train || b->step < (1ull << 44), MMS_ERR_ARG,
              "sage kernel: training step %llu >= 2^44", (unsigned long long)b->step);
    memset(c, 0, sizeof *c);
    c->D = b->cfg.dim;
    c->H = b->cfg.hidden;
    c->H2 = 2 * c->H;
    c->s1 = b->cfg.s1;
    c->s2 = b->cfg.s2;
    c->sp = b->sparse;
    c->T = (sk_set_t){b->nT, b->nT_img, b->T_loc, b->T_tch, b->T_gid};
    c->N1 = (sk_set_t){b->n1, b->n1_img, b->N1_loc, b->N1_tch, b->N1_gid};
    c->N2 = (sk_set_t){b->n2, b->n2_img, b->N2_loc, b->N2_tch, b->N2_gid};
    c->in = (sk_in_t){x, xv, tags, xp, xi, b->touch, c->D, b->sparse};
    drop_init(&c->dr, b, train);
    size_t DH = (size_t)c->D * c->H;
    c->W1s = params;
    c->W1n = params + DH;
    c->W2s = params + 2 * DH;
    c->W2n = params + 2 * DH + (size_t)c->H2 * c->H;
    c->XT = A + b->off_XT;
    c->MT = A + b->off_MT;
    c->HT = A + b->off_HT;
    c->X1 = A + b->off_X1;
    c->H1 = A + b->off_H1;
    c->X2 = A + b->off_X2;
    c->P2 = A + b->off_P2;
    c->M1 = A + b->off_M1;
    c->E = A + b->off_E;
    c->M2 = A + b->off_M2;
    c->Z = A + b->off_Z;
    c->NRM = A + b->off_NRM;
    c->DZ = A + b->off_DZ;
    c->DHT = A + b->off_DHT;
    c->DM2 = A + b->off_DM2;
    c->DH1 = A + b->off_DH1;
    c->DP2 = A + b->off_DP2;
    c->TMP = A + b->off_TMP;
    c->ROW = A + b->off_ROW;
    return MMS_OK;
}

static inline int is_dense_row(const sk_ctx_t *c, const sk_set_t *s, int32_t r) {
    return r >= s->n_img || !c->sp;
}

/* ------------------------------------------------------------ forward */
mms_status SK(forward)(const mms_sage_batch_t *b, const sk_real *params, const sk_real *tags,
                       const sk_real *x, const int64_t *xp, const int32_t *xi, const sk_real *xv,
                       int train, sk_real *A, uint8_t *masks, sk_real *z, double *flops) {
    sk_ctx_t c;
    MMS_CALL(ctx_init(&c, b, params, tags, x, xp, xi, xv, train, A));
    MMS_CHECK(z != NULL, MMS_ERR_ARG, "sage forward: z output is required");
    MMS_CHECK(!c.dr.on || (masks && b->mask_len > 0), MMS_ERR_ARG,
              "sage forward: dropout needs the batch's mask buffer");
    uint8_t *mB = c.dr.on ? masks + b->moff_B : NULL, *mF = c.dr.on ? masks + b->moff_F : NULL,
            *mE = c.dr.on ? masks + b->moff_E : NULL;
    const int D = c.D, H = c.H, H2 = c.H2, s1 = c.s1, s2 = c.s2;
    const sk_drop_t *dr = &c.dr;
    const int32_t nT = b->nT, n1 = b->n1;
    const int32_t dT0 = c.sp ? b->nT_img : 0, d10 = c.sp ? b->n1_img : 0;

    /* --- layer 1 on targets, self half: HT[:, :H] = drop(X_T) W1s   (nT x D)(D x H) */
    gather_rows(&c.in, &c.T, dT0, nT, dr, SITE_T_SELF, c.XT); /* XT: (nT - dT0) x D */
    gemm(0, 0, nT - dT0, H, D, 1, c.XT, D, c.W1s, H, 0, c.HT + (size_t)dT0 * H2, H2, flops);
    if (c.sp) sparse_rows_mm(&c.in, &c.T, 0, dT0, dr, SITE_T_SELF, c.W1s, H, c.HT, 0, H2, 1, flops);

    /* --- targets, neighbour half: HT[:, H:] = mean_j drop(x_{u_j}) W1n, masks per
     * occurrence. Dense rows are averaged first into MT (nT x D), then one GEMM;
     * sparse image rows go straight through W1n. */
    sk_real *BT = c.HT + H;
    if (b->has_mt) {
        zero_rows(c.MT, nT, D, D);
        for (int32_t t = 0; t < nT; t++)
            for (int j = 0; j < s2; j++) {
                int32_t u = b->occ1[(size_t)t * s2 + j];
                if (u < 0 || !is_dense_row(&c, &c.N1, u)) continue;
                uint64_t rk = dr->on ? drop_rowkey(dr, SITE_T_NEIGH, occ_key(c.T.gid[t], j)) : 0;
                drop_axpy_s(dr, rk, D, dr->scale / s2, in_row(&c.in, &c.N1, u),
                            c.MT + (size_t)t * D, mB ? mB + ((size_t)t * s2 + j) * D : NULL);
            }
        gemm(0, 0, nT, H, D, 1, c.MT, D, c.W1n, H, 0, BT, H2, flops); /* (nT x D)(D x H) */
    } else {
        zero_rows(BT, nT, H, H2);
    }
    if (c.sp) {
        double nnz = 0;
        for (int32_t t = 0; t < nT; t++)
            for (int j = 0; j < s2; j++) {
                int32_t u = b->occ1[(size_t)t * s2 + j];
                if (u < 0 || u >= b->n1_img) continue;
                uint64_t rk = dr->on ? drop_rowkey(dr, SITE_T_NEIGH, occ_key(c.T.gid[t], j)) : 0;
                sparse_row_axpy(&c.in, c.N1.loc[u], dr, rk, dr->scale / s2, c.W1n, H,
                                BT + (size_t)t * H2);
                nnz += (double)(xp[c.N1.loc[u] + 1] - xp[c.N1.loc[u]]);
            }
        if (flops) *flops += 2.0 * nnz * H;
    }

    /* --- layer 1 on hop-1 nodes, self half: H1[:, :H] = drop(X_1) W1s  (n1 x D)(D x H) */
    gather_rows(&c.in, &c.N1, d10, n1, dr, SITE_H1_SELF, c.X1);
    gemm(0, 0, n1 - d10, H, D, 1, c.X1, D, c.W1s, H, 0, c.H1 + (size_t)d10 * H2, H2, flops);
    if (c.sp) sparse_rows_mm(&c.in, &c.N1, 0, d10, dr, SITE_H1_SELF, c.W1s, H, c.H1, 0, H2, 1, flops);

    /* --- hop-2 -> hop-1 mean, neighbour half H1[:, H:].
     * (a) rows [p2_lo, p2_hi) of N2: P2 = drop(X_2) W1n once per distinct node,
     *     then averaged per list;  (b) other rows: M1 = mean of drop(x_w) (n1 x D),
     *     then M1 W1n. Masks per distinct hop-2 node in both. */
    const int32_t plo = b->p2_lo, phi = b->p2_hi;
    gather_rows(&c.in, &c.N2, b->x2_lo, b->x2_hi, dr, SITE_H2, c.X2); /* (x2_hi-x2_lo) x D */
    gemm(0, 0, b->x2_hi - b->x2_lo, H, D, 1, c.X2, D, c.W1n, H, 0,
         c.P2 + (size_t)(b->x2_lo - plo) * H, H, flops);
    if (c.sp && plo < b->n2_img) {
        int32_t hi = phi < b->n2_img ? phi : b->n2_img;
        sparse_rows_mm(&c.in, &c.N2, plo, hi, dr, SITE_H2, c.W1n, H, c.P2, plo, H, 1, flops);
    }
    sk_real *B1 = c.H1 + H;
    int any_b = !b->h2_img_a || !b->h2_tag_a;
    if (any_b) { /* by hop-2 node, so each mask is drawn once and spread to its users */
        zero_rows(c.M1, n1, D, D);
        for (int32_t w = 0; w < c.N2.n; w++) {
            if (w >= plo && w < phi) continue;
            if (w + PF_AHEAD < c.N2.n) prefetch_row(&c.in, &c.N2, w + PF_AHEAD);
            uint64_t rk = dr->on ? drop_rowkey(dr, SITE_H2, (uint64_t)c.N2.gid[w]) : 0;
            const int32_t e0 = b->r2_ptr[w], e1 = b->r2_ptr[w + 1];
            if (is_dense_row(&c, &c.N2, w)) {
                drop_set(dr, rk, D, dr->scale / s1, in_row(&c.in, &c.N2, w), c.ROW);
                for (int32_t e = e0; e < e1; e++)
                    axpy(D, (sk_real)b->r2_cnt[e], c.ROW, c.M1 + (size_t)b->r2_idx[e] * D);
            } else {
                FOR_SPARSE_NZ(&c.in, dr, rk, c.N2.loc[w], dr->scale / s1, {
                    for (int32_t e = e0; e < e1; e++)
                        c.M1[(size_t)b->r2_idx[e] * D + col] += mult * (sk_real)b->r2_cnt[e];
                });
            }
        }
        gemm(0, 0, n1, H, D, 1, c.M1, D, c.W1n, H, 0, B1, H2, flops); /* (n1 x D)(D x H) */
    } else {
        zero_rows(B1, n1, H, H2);
    }
    if (phi > plo)
        for (int32_t u = 0; u < n1; u++)
            for (int32_t e = b->l2_ptr[u]; e < b->l2_ptr[u + 1]; e++) {
                int32_t w = b->l2_idx[e];
                if (w < plo || w >= phi) continue;
                axpy(H, (sk_real)b->l2_cnt[e] / s1, c.P2 + (size_t)(w - plo) * H,
                     B1 + (size_t)u * H2);
            }

    /* --- ReLU (in place: the backward reads h1 > 0 as the ReLU mask) */
    for (size_t i = 0; i < (size_t)nT * H2; i++)
        if (c.HT[i] < 0) c.HT[i] = 0;
    for (size_t i = 0; i < (size_t)n1 * H2; i++)
        if (c.H1[i] < 0) c.H1[i] = 0;

    /* --- layer 2: Z = [drop(HT) W2s || mean_j drop(H1[u_j]) W2n]   (nT x 2H) */
    for (int32_t t = 0; t < nT; t++) {
        uint64_t rk = dr->on ? drop_rowkey(dr, SITE_L2_SELF, (uint64_t)c.T.gid[t]) : 0;
        drop_set_s(dr, rk, H2, dr->scale, c.HT + (size_t)t * H2, c.E + (size_t)t * H2,
                   mE ? mE + (size_t)t * H2 : NULL);
    }
    zero_rows(c.M2, nT, H2, H2);
    for (int32_t t = 0; t < nT; t++)
        for (int j = 0; j < s2; j++) {
            int32_t u = b->occ1[(size_t)t * s2 + j];
            if (u < 0) continue;
            uint64_t rk = dr->on ? drop_rowkey(dr, SITE_L2_NEIGH, occ_key(c.T.gid[t], j)) : 0;
            drop_axpy_s(dr, rk, H2, dr->scale / s2, c.H1 + (size_t)u * H2, c.M2 + (size_t)t * H2,
                        mF ? mF + ((size_t)t * s2 + j) * H2 : NULL);
        }
    gemm(0, 0, nT, H, H2, 1, c.E, H2, c.W2s, H, 0, c.Z, H2, flops);      /* (nT x 2H)(2H x H) */
    gemm(0, 0, nT, H, H2, 1, c.M2, H2, c.W2n, H, 0, c.Z + H, H2, flops); /* (nT x 2H)(2H x H) */

    /* --- zhat = z / max(|z|, 1e-12) */
    for (int32_t t = 0; t < nT; t++) {
        const sk_real *zr = c.Z + (size_t)t * H2;
        double s = 0;
        for (int i = 0; i < H2; i++) s += (double)zr[i] * zr[i];
        double nrm = sqrt(s);
        c.NRM[t] = (sk_real)nrm;
        sk_real inv = (sk_real)(1.0 / (nrm > 1e-12 ? nrm : 1e-12));
        for (int i = 0; i < H2; i++) z[(size_t)t * H2 + i] = zr[i] * inv;
    }
    return MMS_OK;
}

/* ------------------------------------------------------------ backward */
/* Backward into the tag rows: d x_tag, summed over every place the tag's
 * input entered (as a target, a target's hop-1 sample, a hop-1 node, a hop-2
 * node). dtags has b->n_touch rows of D. */
static void tag_grads(const sk_ctx_t *c, const mms_sage_batch_t *b, const uint8_t *mB,
                      const sk_real *dAT, const sk_real *dBT, const sk_real *dA1,
                      const sk_real *dB1, sk_real *dtags, double *flops) {
    const int D = c->D, H = c->H, H2 = c->H2, s1 = c->s1, s2 = c->s2;
    const sk_drop_t *dr = &c->dr;
    const int32_t nT = b->nT, n1 = b->n1, n2 = b->n2;
    const int32_t plo = b->p2_lo;
    memset(dtags, 0, (size_t)b->n_touch * D * sizeof(sk_real));
    /* targets that are tags: TMP = dA_T[tags] W1s^T   (k x H)(H x D) */
    int32_t k = nT - b->nT_img;
    if (k > 0) {
        gemm(0, 1, k, D, H, 1, dAT + (size_t)b->nT_img * H2, H2, c->W1s, H, 0, c->TMP, D, flops);
        for (int32_t r = b->nT_img; r < nT; r++) {
            uint64_t rk = dr->on ? drop_rowkey(dr, SITE_T_SELF, (uint64_t)c->T.gid[r]) : 0;
            drop_axpy(dr, rk, D, dr->scale, c->TMP + (size_t)(r - b->nT_img) * D,
                      dtags + (size_t)c->T.tch[r] * D);
        }
    }
    /* tags among the targets' hop-1 samples: TMP = dB_T W1n^T  (nT x H)(H x D) */
    if (n1 > b->n1_img) {
        gemm(0, 1, nT, D, H, 1, dBT, H2, c->W1n, H, 0, c->TMP, D, flops);
        for (int32_t t = 0; t < nT; t++)
            for (int j = 0; j < s2; j++) {
                int32_t u = b->occ1[(size_t)t * s2 + j];
                if (u < b->n1_img) continue; /* dummy or image */
                kept_axpy(dr, mB ? mB + ((size_t)t * s2 + j) * D : NULL, D, dr->scale / s2,
                          c->TMP + (size_t)t * D, dtags + (size_t)c->N1.tch[u] * D);
            }
        /* hop-1 nodes that are tags, self half: TMP = dA_1[tags] W1s^T */
        k = n1 - b->n1_img;
        gemm(0, 1, k, D, H, 1, dA1 + (size_t)b->n1_img * H2, H2, c->W1s, H, 0, c->TMP, D, flops);
        for (int32_t r = b->n1_img; r < n1; r++) {
            uint64_t rk = dr->on ? drop_rowkey(dr, SITE_H1_SELF, (uint64_t)c->N1.gid[r]) : 0;
            drop_axpy(dr, rk, D, dr->scale, c->TMP + (size_t)(r - b->n1_img) * D,
                      dtags + (size_t)c->N1.tch[r] * D);
        }
    }
    /* hop-2 nodes that are tags */
    k = n2 - b->n2_img;
    if (k > 0 && b->h2_tag_a) { /* TMP = dP2[tags] W1n^T   (k x H)(H x D) */
        gemm(0, 1, k, D, H, 1, c->DP2 + (size_t)(b->n2_img - plo) * H, H, c->W1n, H, 0, c->TMP, D,
             flops);
        for (int32_t r = b->n2_img; r < n2; r++) {
            uint64_t rk = dr->on ? drop_rowkey(dr, SITE_H2, (uint64_t)c->N2.gid[r]) : 0;
            drop_axpy(dr, rk, D, dr->scale, c->TMP + (size_t)(r - b->n2_img) * D,
                      dtags + (size_t)c->N2.tch[r] * D);
        }
    } else if (k > 0) { /* TMP = dB_1 W1n^T (n1 x H)(H x D); each tag w gets
                         * mask_w (.) sum over its users u of cnt/s1 TMP[u] */
        gemm(0, 1, n1, D, H, 1, dB1, H2, c->W1n, H, 0, c->TMP, D, flops);
        for (int32_t w = b->n2_img; w < n2; w++) {
            memset(c->ROW, 0, (size_t)D * sizeof(sk_real));
            for (int32_t e = b->r2_ptr[w]; e < b->r2_ptr[w + 1]; e++)
                axpy(D, (sk_real)b->r2_cnt[e], c->TMP + (size_t)b->r2_idx[e] * D, c->ROW);
            uint64_t rk = dr->on ? drop_rowkey(dr, SITE_H2, (uint64_t)c->N2.gid[w]) : 0;
            drop_axpy(dr, rk, D, dr->scale / s1, c->ROW, dtags + (size_t)c->N2.tch[w] * D);
        }
    }
}

mms_status SK(backward)(const mms_sage_batch_t *b, const sk_real *params, const sk_real *tags,
                        const sk_real *x, const int64_t *xp, const int32_t *xi, const sk_real *xv,
                        int train, sk_real *A, const uint8_t *masks, const sk_real *dz,
                        sk_real *dparams, sk_real *dtags, double *flops) {
    sk_ctx_t c;
    MMS_CALL(ctx_init(&c, b, params, tags, x, xp, xi, xv, train, A));
    MMS_CHECK(dz && dparams, MMS_ERR_ARG, "sage backward: dz and dparams are required");
    MMS_CHECK(!c.dr.on || (masks && b->mask_len > 0), MMS_ERR_ARG,
              "sage backward: dropout needs the batch's mask buffer");
    const uint8_t *mB = c.dr.on ? masks + b->moff_B : NULL, *mF = c.dr.on ? masks + b->moff_F : NULL,
                  *mE = c.dr.on ? masks + b->moff_E : NULL;
    const int D = c.D, H = c.H, H2 = c.H2, s1 = c.s1, s2 = c.s2;
    const sk_drop_t *dr = &c.dr;
    const int32_t nT = b->nT, n1 = b->n1;
    const int32_t dT0 = c.sp ? b->nT_img : 0, d10 = c.sp ? b->n1_img : 0;
    const int32_t plo = b->p2_lo, phi = b->p2_hi;
    size_t DH = (size_t)D * H;
    sk_real *dW1s = dparams, *dW1n = dparams + DH, *dW2s = dparams + 2 * DH,
            *dW2n = dparams + 2 * DH + (size_t)H2 * H;
    memset(dparams, 0, (2 * DH + 2 * (size_t)H2 * H) * sizeof(sk_real));

    /* --- through the normalisation: dz_raw = (dzhat - zhat (zhat . dzhat)) / |z| */
    for (int32_t t = 0; t < nT; t++) {
        const sk_real *zr = c.Z + (size_t)t * H2, *g = dz + (size_t)t * H2;
        sk_real *o = c.DZ + (size_t)t * H2;
        double nrm = c.NRM[t];
        if (nrm <= 1e-12) { /* clamped branch: zhat = z / 1e-12 is linear */
            for (int i = 0; i < H2; i++) o[i] = (sk_real)(g[i] / 1e-12);
            continue;
        }
        double dot = 0;
        for (int i = 0; i < H2; i++) dot += (double)zr[i] * g[i];
        dot /= nrm * nrm;
        for (int i = 0; i < H2; i++) o[i] = (sk_real)((g[i] - zr[i] * dot) / nrm);
    }

    /* --- layer 2 */
    gemm(1, 0, H2, H, nT, 1, c.E, H2, c.DZ, H2, 0, dW2s, H, flops);      /* (2H x nT)(nT x H) */
    gemm(1, 0, H2, H, nT, 1, c.M2, H2, c.DZ + H, H2, 0, dW2n, H, flops); /* (2H x nT)(nT x H) */
    gemm(0, 1, nT, H2, H, 1, c.DZ, H2, c.W2s, H, 0, c.DHT, H2, flops);   /* (nT x H)(H x 2H) */
    gemm(0, 1, nT, H2, H, 1, c.DZ + H, H2, c.W2n, H, 0, c.DM2, H2, flops);
    for (int32_t t = 0; t < nT; t++) { /* dHT = mask_e (.) dE (.) [HT > 0] */
        sk_real *g = c.DHT + (size_t)t * H2;
        const sk_real *h = c.HT + (size_t)t * H2;
        kept_set(dr, mE ? mE + (size_t)t * H2 : NULL, H2, dr->scale, g, g);
        for (int i = 0; i < H2; i++)
            if (!(h[i] > 0)) g[i] = 0;
    }
    zero_rows(c.DH1, n1, H2, H2);
    for (int32_t t = 0; t < nT; t++)
        for (int j = 0; j < s2; j++) {
            int32_t u = b->occ1[(size_t)t * s2 + j];
            if (u < 0) continue;
            kept_axpy(dr, mF ? mF + ((size_t)t * s2 + j) * H2 : NULL, H2, dr->scale / s2,
                      c.DM2 + (size_t)t * H2, c.DH1 + (size_t)u * H2);
        }
    for (size_t i = 0; i < (size_t)n1 * H2; i++)
        if (!(c.H1[i] > 0)) c.DH1[i] = 0;
    const sk_real *dAT = c.DHT, *dBT = c.DHT + H, *dA1 = c.DH1, *dB1 = c.DH1 + H;

    /* --- dW1s = X_T^T dA_T + X_1^T dA_1     (D x rows)(rows x H) */
    gemm(1, 0, D, H, nT - dT0, 1, c.XT, D, dAT + (size_t)dT0 * H2, H2, 1, dW1s, H, flops);
    gemm(1, 0, D, H, n1 - d10, 1, c.X1, D, dA1 + (size_t)d10 * H2, H2, 1, dW1s, H, flops);
    if (c.sp) {
        sparse_rows_tmm(&c.in, &c.T, 0, dT0, dr, SITE_T_SELF, dAT, 0, H2, H, dW1s, flops);
        sparse_rows_tmm(&c.in, &c.N1, 0, d10, dr, SITE_H1_SELF, dA1, 0, H2, H, dW1s, flops);
    }

    /* --- dW1n, target neighbour means: MT^T dB_T + sparse occurrences */
    if (b->has_mt) gemm(1, 0, D, H, nT, 1, c.MT, D, dBT, H2, 1, dW1n, H, flops);
    if (c.sp) {
        for (int32_t t = 0; t < nT; t++)
            for (int j = 0; j < s2; j++) {
                int32_t u = b->occ1[(size_t)t * s2 + j];
                if (u < 0 || u >= b->n1_img) continue;
                uint64_t rk = dr->on ? drop_rowkey(dr, SITE_T_NEIGH, occ_key(c.T.gid[t], j)) : 0;
                sparse_row_outer(&c.in, c.N1.loc[u], dr, rk, dr->scale / s2, dBT + (size_t)t * H2, H,
                                 dW1n);
            }
    }

    /* --- dW1n, hop-2 means: (b) M1^T dB_1; (a) X_2^T dP2 with dP2[w] = sum c/s1 dB_1[u] */
    int any_b = !b->h2_img_a || !b->h2_tag_a;
    if (any_b) gemm(1, 0, D, H, n1, 1, c.M1, D, dB1, H2, 1, dW1n, H, flops); /* (D x n1)(n1 x H) */
    if (phi > plo) {
        zero_rows(c.DP2, phi - plo, H, H);
        for (int32_t u = 0; u < n1; u++)
            for (int32_t e = b->l2_ptr[u]; e < b->l2_ptr[u + 1]; e++) {
                int32_t w = b->l2_idx[e];
                if (w < plo || w >= phi) continue;
                axpy(H, (sk_real)b->l2_cnt[e] / s1, dB1 + (size_t)u * H2, c.DP2 + (size_t)(w - plo) * H);
            }
        gemm(1, 0, D, H, b->x2_hi - b->x2_lo, 1, c.X2, D, c.DP2 + (size_t)(b->x2_lo - plo) * H, H, 1,
             dW1n, H, flops);
        if (c.sp && plo < b->n2_img) {
            int32_t hi = phi < b->n2_img ? phi : b->n2_img;
            sparse_rows_tmm(&c.in, &c.N2, plo, hi, dr, SITE_H2, c.DP2, plo, H, H, dW1n, flops);
        }
    }

    /* --- tag rows */
    if (dtags && b->n_touch > 0) tag_grads(&c, b, mB, dAT, dBT, dA1, dB1, dtags, flops);
    return MMS_OK;
}

/* ------------------------------------------------------------ loss */
static inline double softplus(double v) { return v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)); }
static inline double sigmoid(double v) {
    if (v >= 0) return 1.0 / (1.0 + exp(-v));
    double e = exp(v);
    return e / (1.0 + e);
}

mms_status SK(loss)(const sk_real *z, int64_t nz, int32_t dim, int64_t B, const int32_t *a,
                    const int32_t *bb, int32_t Q, const int32_t *neg, sk_real *work, double *loss,
                    sk_real *dz) {
    MMS_CHECK(z && a && bb && (neg || Q == 0) && work && loss, MMS_ERR_ARG,
              "sage loss: missing argument");
    MMS_CHECK(B > 0 && Q >= 0 && dim > 0, MMS_ERR_ARG, "sage loss: B = %lld, Q = %d, dim = %d",
              (long long)B, Q, dim);
    for (int64_t i = 0; i < B; i++)
        MMS_CHECK(a[i] >= 0 && a[i] < nz && bb[i] >= 0 && bb[i] < nz, MMS_ERR_ARG,
                  "sage loss: pair %lld (%d, %d) outside the %lld rows of z", (long long)i, a[i],
                  bb[i], (long long)nz);
    for (int32_t j = 0; j < Q; j++)
        MMS_CHECK(neg[j] >= 0 && neg[j] < nz, MMS_ERR_ARG,
                  "sage loss: negative %d (row %d) outside the %lld rows of z", j, neg[j],
                  (long long)nz);
    /* work: Za (B x dim) | Zn (Q x dim) | S (B x Q) | dZa (B x dim) | dZn (Q x dim) */
    sk_real *Za = work, *Zn = Za + (size_t)B * dim, *S = Zn + (size_t)Q * dim;
    sk_real *dZa = S + (size_t)B * Q, *dZn = dZa + (size_t)B * dim;
    for (int64_t i = 0; i < B; i++) memcpy(Za + i * dim, z + (size_t)a[i] * dim, dim * sizeof(sk_real));
    for (int32_t j = 0; j < Q; j++) memcpy(Zn + (size_t)j * dim, z + (size_t)neg[j] * dim, dim * sizeof(sk_real));
    gemm(0, 1, (int)B, Q, dim, 1, Za, dim, Zn, dim, 0, S, Q, NULL); /* (B x dim)(dim x Q) */
    if (dz) memset(dz, 0, (size_t)nz * dim * sizeof(sk_real));
    double L = 0, invB = 1.0 / (double)B;
    for (int64_t i = 0; i < B; i++) {
        const sk_real *za = z + (size_t)a[i] * dim, *zb = z + (size_t)bb[i] * dim;
        double pos = 0;
        for (int k = 0; k < dim; k++) pos += (double)za[k] * zb[k];
        L += softplus(-pos);
        if (dz) {
            sk_real g = (sk_real)(-sigmoid(-pos) * invB);
            axpy(dim, g, zb, dz + (size_t)a[i] * dim);
            axpy(dim, g, za, dz + (size_t)bb[i] * dim);
        }
    }
    for (size_t e = 0; e < (size_t)B * Q; e++) {
        L += softplus(S[e]);
        S[e] = (sk_real)(sigmoid(S[e]) * invB);
    }
    *loss = L * invB;
    if (!dz || Q == 0) return MMS_OK;
    gemm(0, 0, (int)B, dim, Q, 1, S, Q, Zn, dim, 0, dZa, dim, NULL); /* (B x Q)(Q x dim) */
    gemm(1, 0, Q, dim, (int)B, 1, S, Q, Za, dim, 0, dZn, dim, NULL); /* (Q x B)(B x dim) */
    for (int64_t i = 0; i < B; i++) axpy(dim, 1, dZa + i * dim, dz + (size_t)a[i] * dim);
    for (int32_t j = 0; j < Q; j++) axpy(dim, 1, dZn + (size_t)j * dim, dz + (size_t)neg[j] * dim);
    return MMS_OK;
}
