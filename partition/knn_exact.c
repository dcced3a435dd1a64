/* knn_exact.c: exact cosine kNN among N rows split over a ring of ranks.
 *
 * Rows are cut into global tiles of T rows (the last may be short); a rank owns
 * whole tiles (mms_knn_rows_for_rank). Each unordered tile pair {a, b}, a <= b,
 * is multiplied exactly once, always as one cblas_sgemm(X_a, X_b^T) of shape
 * rows(a) x rows(b) x d on the same normalised operands, whichever rank does
 * it; the tile of similarities then feeds both a's rows and b's rows. So every
 * similarity has the same bits at any rank count, and the per-row top-k (a
 * strict total order, common/mms_topk.h) is the same set: the output is bit-identical
 * for P = 1, 2, 4, ... (docs/knn.md).
 *
 * Schedule, with P ranks and S = floor(P/2) ring steps:
 *   step 0    pairs inside the own block (a <= b);
 *   step s    the block of rank r+s visits rank r, which multiplies its own
 *             tiles against it; the visitor carries the partial top-k of its
 *             rows (the "accumulator") from rank to rank;
 *   even P    at step P/2 ranks r and r+P/2 see each other: each tile pair is
 *             done by one of them, chosen by the parity of a + b;
 *   end       each accumulator goes home and is merged into the owner's top-k.
 * The next visiting block is received while the current one is multiplied
 * (Isend/Irecv, progressed between tiles); accumulators, being written during
 * a step, move after it.
 * Not here: thresholding (the caller's), approximate search (knn_ivf.c).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"
#include "knn_topk.h"
#include "mms_log.h"
#include "mms_mpi.h"

enum { TAG_FEAT = 7101, TAG_ACC = 7102 };

typedef struct {
    int64_t n;
    int32_t d, T, k;
    size_t stride; /* floats per tile in a block buffer (64-byte multiple) */
    int rank, nranks;
    float *S; /* T x T similarities */
    MPI_Comm comm;
    MPI_Request reqs[4 * KNN_MAX_CHUNKS];
    int nreq;
    mms_progress_t prog;
    int64_t done;
    double t_mpi; /* seconds spent waiting in MPI (not hidden behind sgemm) */
} ctx_t;

/* A view of a block buffer: nt tiles of `stride` floats, then nrows zero flags. */
typedef struct {
    int64_t row0, nrows, t0, nt;
    float *x;
    uint8_t *zero;
} block_t;

static void block_of_rank(const ctx_t *c, int r, void *buf, block_t *b) {
    mms_knn_rows_for_rank(c->n, c->T, c->nranks, r, &b->row0, &b->nrows);
    b->t0 = b->row0 / c->T;
    b->nt = (b->nrows + c->T - 1) / c->T;
    b->x = buf;
    b->zero = buf ? (uint8_t *)(b->x + (size_t)b->nt * c->stride) : NULL;
}

static size_t block_bytes(const ctx_t *c, const block_t *b) {
    return (size_t)b->nt * c->stride * sizeof(float) + (size_t)b->nrows;
}

/* Accumulator packet of a block of nrows rows: keys | cnt | thr. */
static size_t acc_bytes(const ctx_t *c, int64_t nrows) {
    return (size_t)nrows * ((size_t)c->k * sizeof(uint64_t) + 8);
}

static void acc_view(const ctx_t *c, void *buf, int64_t nrows, mms_topk_rows_t *h) {
    char *p = buf;
    size_t nk = (size_t)nrows * (size_t)c->k;
    h->k = c->k;
    h->key = (uint64_t *)p;
    h->cnt = (int32_t *)(p + nk * sizeof(uint64_t));
    h->thr = (float *)(p + nk * sizeof(uint64_t) + (size_t)nrows * 4);
}

static mms_status alloc_aligned(size_t bytes, void *out) {
    bytes = (bytes + 63) / 64 * 64; /* aligned_alloc wants a multiple of the alignment */
    if (bytes == 0) bytes = 64;
    void *p = aligned_alloc(64, bytes);
    if (!p) {
        char b[32];
        mms_error_set(MMS_ERR_NOMEM, __FILE__, __LINE__, __func__,
                      "knn: out of memory allocating %s", mms_fmt_bytes((double)bytes, b, 32));
        return MMS_ERR_NOMEM;
    }
    *(void **)out = p;
    return MMS_OK;
}

static int32_t tile_rows(const ctx_t *c, int64_t t) {
    int64_t r = c->n - t * c->T;
    return (int32_t)(r < c->T ? r : c->T);
}

/* Drive pending transfers while computing (no progress thread is assumed). */
static mms_status poke(ctx_t *c) {
    if (c->nreq == 0) return MMS_OK;
    int flag = 0;
    MMS_MPI_CALL(MPI_Testall(c->nreq, c->reqs, &flag, MPI_STATUSES_IGNORE));
    if (flag) c->nreq = 0;
    return MMS_OK;
}

static mms_status wait_all(ctx_t *c) {
    double t0 = mms_now();
    if (c->nreq) MMS_MPI_CALL(MPI_Waitall(c->nreq, c->reqs, MPI_STATUSES_IGNORE));
    c->nreq = 0;
    c->t_mpi += mms_now() - t0;
    return MMS_OK;
}

/* Accumulator exchange, timed. */
static mms_status acc_exchange(ctx_t *c, const void *sbuf, size_t sbytes, int dest, void *rbuf,
                               size_t rbytes, int src) {
    double t0 = mms_now();
    MMS_CALL(knn_sendrecv_bytes(sbuf, sbytes, dest, rbuf, rbytes, src, TAG_ACC, c->comm));
    c->t_mpi += mms_now() - t0;
    return MMS_OK;
}

/* Tile pair: S = X_ta X_tb^T (ta <= tb), rows of ta go to ha, rows of tb to hb
 * (heap rows counted from the start of each block). */
static mms_status do_pair(ctx_t *c, const block_t *A, int64_t ta, mms_topk_rows_t *ha,
                          const block_t *B, int64_t tb, mms_topk_rows_t *hb) {
    int32_t ma = tile_rows(c, ta), mb = tile_rows(c, tb);
    int64_t ra = (ta - A->t0) * c->T, rb = (tb - B->t0) * c->T;
    knn_gemm_nt(ma, mb, c->d, A->x + (size_t)(ta - A->t0) * c->stride,
                B->x + (size_t)(tb - B->t0) * c->stride, c->S);
    knn_scan_pair(c->S, ma, mb, ta * c->T, tb * c->T, ta == tb, A->zero + ra, B->zero + rb, ha,
                  ra, hb, rb);
    mms_progress_update(&c->prog, ++c->done);
    return poke(c);
}

/* At the shared half step of an even ring, which rank does pair {ta, tb}. */
static int half_mine(int64_t own_t, int64_t vis_t) {
    int64_t lo = own_t < vis_t ? own_t : vis_t, hi = own_t < vis_t ? vis_t : own_t;
    int lo_owner_does = ((lo + hi) & 1) == 0;
    return (own_t == lo) == lo_owner_does;
}

static int64_t count_pairs(const ctx_t *c, const block_t *own) {
    int64_t total = own->nt * (own->nt + 1) / 2;
    for (int s = 1; s <= c->nranks / 2; s++) {
        block_t v;
        block_of_rank(c, (c->rank + s) % c->nranks, NULL, &v);
        if (c->nranks % 2 == 0 && s == c->nranks / 2) {
            for (int64_t a = own->t0; a < own->t0 + own->nt; a++)
                for (int64_t b = v.t0; b < v.t0 + v.nt; b++) total += half_mine(a, b);
        } else {
            total += own->nt * v.nt;
        }
    }
    return total;
}

/* Normalise the caller's rows into the tile-padded block layout. */
static mms_status fill_block(const ctx_t *c, const float *x, block_t *b) {
    memset(b->x, 0, (size_t)b->nt * c->stride * sizeof(float)); /* padding, for valgrind */
    for (int64_t i = 0; i < b->nrows; i++) {
        const float *xr = x + (size_t)i * (size_t)c->d;
        double inv = knn_inv_norm(xr, c->d);
        MMS_CHECK(inv >= 0, MMS_ERR_NUMERIC, "knn: row %lld holds NaN or Inf",
                  (long long)(b->row0 + i));
        b->zero[i] = inv == 0.0;
        float *y = b->x + (size_t)(i / c->T) * c->stride + (size_t)(i % c->T) * (size_t)c->d;
        knn_scale_row(xr, c->d, inv, y);
    }
    return MMS_OK;
}

mms_status mms_knn_exact(const float *x_local, int64_t n_local, int64_t row0, int64_t n_total,
                         int32_t d, const mms_knn_params_t *p, MPI_Comm comm, int64_t *nbr_out,
                         float *sim_out) {
    mms_status s = MMS_OK;
    ctx_t c;
    memset(&c, 0, sizeof c);
    void *own_buf = NULL, *vis_buf[2] = {NULL, NULL}, *acc_buf[2] = {NULL, NULL};
    int32_t *cnt = NULL;
    float *thr = NULL;
    block_t own, vis[2];
    mms_topk_rows_t h;
    c.comm = comm;
    knn_comm_info(comm, &c.rank, &c.nranks);

    MMS_CALL_GOTO(s, agree, mms_knn_params_check(p, n_total, d, 0));
    c.n = n_total;
    c.d = d;
    c.T = p->tile;
    c.k = p->k;
    c.stride = ((size_t)c.T * (size_t)d + 15) / 16 * 16;
    {
        int64_t e0, en;
        mms_knn_rows_for_rank(n_total, c.T, c.nranks, c.rank, &e0, &en);
        MMS_CHECK_GOTO(s, agree, e0 == row0 && en == n_local, MMS_ERR_ARG,
                       "knn: rank %d holds rows [%lld, %lld) but the tile split (tile %d, %d "
                       "ranks) gives it [%lld, %lld); split rows with mms_knn_rows_for_rank",
                       c.rank, (long long)row0, (long long)(row0 + n_local), (int)c.T, c.nranks,
                       (long long)e0, (long long)(e0 + en));
    }
    MMS_CHECK_GOTO(s, agree, n_local == 0 || (x_local && nbr_out && sim_out), MMS_ERR_ARG,
                   "knn: missing input or output arrays");
    MMS_CHECK_GOTO(s, agree, n_total - 1 <= MMS_TOPK_KEY_MAX_ID, MMS_ERR_ARG,
                   "knn: %lld rows is more than the 2^32 this implementation handles",
                   (long long)n_total);

    /* every buffer before the collective phase, so a failure is agreed on */
    block_of_rank(&c, c.rank, NULL, &own);
    int64_t nmax = 0, ntmax = 0;
    for (int r = 0; r < c.nranks; r++) {
        block_t b;
        block_of_rank(&c, r, NULL, &b);
        if (b.nrows > nmax) nmax = b.nrows;
        if (b.nt > ntmax) ntmax = b.nt;
    }
    size_t cap = (size_t)ntmax * c.stride * sizeof(float) + (size_t)nmax;
    MMS_CALL_GOTO(s, agree, alloc_aligned(block_bytes(&c, &own), &own_buf));
    block_of_rank(&c, c.rank, own_buf, &own);
    MMS_CALL_GOTO(s, agree, alloc_aligned(sizeof(float) * (size_t)c.T * (size_t)c.T, &c.S));
    MMS_CALL_GOTO(s, agree, mms_malloc(sizeof(int32_t) * (size_t)(n_local + 1), &cnt));
    MMS_CALL_GOTO(s, agree, mms_malloc(sizeof(float) * (size_t)(n_local + 1), &thr));
    if (c.nranks > 1) {
        for (int i = 0; i < 2; i++) {
            MMS_CALL_GOTO(s, agree, alloc_aligned(cap, &vis_buf[i]));
            MMS_CALL_GOTO(s, agree, alloc_aligned(acc_bytes(&c, nmax), &acc_buf[i]));
        }
    }
    MMS_CALL_GOTO(s, agree, fill_block(&c, x_local, &own));
agree:
    MMS_CALL_GOTO(s, out, knn_agree(s, comm));

    {
        const int P = c.nranks, r = c.rank, steps = P / 2;
        const int left = (r - 1 + P) % P, right = (r + 1) % P;
        double t0 = mms_now();
        h = (mms_topk_rows_t){c.k, (uint64_t *)nbr_out, cnt, thr}; /* results build in place */
        mms_topk_rows_reset(&h, own.nrows, own.zero);
        int64_t ntiles = (n_total + c.T - 1) / c.T;
        mms_log_info("knn exact: %lld rows x %d, k %d, %lld tiles of %d, %d rank(s)",
                     (long long)n_total, (int)d, (int)c.k, (long long)ntiles, (int)c.T, P);
        mms_progress_begin(&c.prog, "knn exact (rank 0)", count_pairs(&c, &own), "tile pairs");

        if (steps >= 1) { /* first visitor travels while the own block is done */
            block_t nb;
            block_of_rank(&c, right, NULL, &nb);
            MMS_CALL_GOTO(s, out, knn_irecv_bytes(vis_buf[0], block_bytes(&c, &nb), right,
                                                  TAG_FEAT, comm, c.reqs, &c.nreq,
                                                  4 * KNN_MAX_CHUNKS));
            MMS_CALL_GOTO(s, out, knn_isend_bytes(own_buf, block_bytes(&c, &own), left, TAG_FEAT,
                                                  comm, c.reqs, &c.nreq, 4 * KNN_MAX_CHUNKS));
        }
        for (int64_t a = own.t0; a < own.t0 + own.nt; a++)
            for (int64_t b = a; b < own.t0 + own.nt; b++)
                MMS_CALL_GOTO(s, out, do_pair(&c, &own, a, &h, &own, b, &h));

        mms_topk_rows_t acc, acc2;
        for (int st = 1; st <= steps; st++) {
            MMS_CALL_GOTO(s, out, wait_all(&c));
            int v = (r + st) % P;
            block_t *cur = &vis[(st - 1) & 1];
            block_of_rank(&c, v, vis_buf[(st - 1) & 1], cur);
            if (st < steps) { /* prefetch the next visitor, pass this one on */
                block_t nb;
                block_of_rank(&c, (r + st + 1) % P, NULL, &nb);
                MMS_CALL_GOTO(s, out, knn_irecv_bytes(vis_buf[st & 1], block_bytes(&c, &nb),
                                                      right, TAG_FEAT, comm, c.reqs, &c.nreq,
                                                      4 * KNN_MAX_CHUNKS));
                MMS_CALL_GOTO(s, out, knn_isend_bytes(vis_buf[(st - 1) & 1],
                                                      block_bytes(&c, cur), left, TAG_FEAT, comm,
                                                      c.reqs, &c.nreq, 4 * KNN_MAX_CHUNKS));
            }
            acc_view(&c, acc_buf[(st - 1) & 1], cur->nrows, &acc);
            if (st == 1) mms_topk_rows_reset(&acc, cur->nrows, cur->zero);
            int half = P % 2 == 0 && st == steps;
            for (int64_t a = own.t0; a < own.t0 + own.nt; a++)
                for (int64_t b = cur->t0; b < cur->t0 + cur->nt; b++) {
                    if (half && !half_mine(a, b)) continue;
                    if (a < b)
                        MMS_CALL_GOTO(s, out, do_pair(&c, &own, a, &h, cur, b, &acc));
                    else
                        MMS_CALL_GOTO(s, out, do_pair(&c, cur, b, &acc, &own, a, &h));
                }
            void *next = acc_buf[st & 1];
            if (st < steps) {
                block_t nb;
                block_of_rank(&c, (r + st + 1) % P, NULL, &nb);
                MMS_CALL_GOTO(s, out, acc_exchange(&c, acc_buf[(st - 1) & 1],
                                                   acc_bytes(&c, cur->nrows), left, next,
                                                   acc_bytes(&c, nb.nrows), right));
            } else { /* last step: the accumulator goes home, ours comes back */
                MMS_CALL_GOTO(s, out, acc_exchange(&c, acc_buf[(st - 1) & 1],
                                                   acc_bytes(&c, cur->nrows), v, next,
                                                   acc_bytes(&c, own.nrows), (r - steps + P) % P));
                acc_view(&c, next, own.nrows, &acc2);
                for (int64_t i = 0; i < own.nrows; i++) mms_topk_rows_merge_row(&h, i, &acc2, i);
            }
        }
        MMS_CALL_GOTO(s, out, wait_all(&c));
        mms_topk_rows_finish(&h, own.nrows, nbr_out, sim_out);
        mms_progress_end(&c.prog);
        double el = mms_now() - t0;
        mms_log_info("knn exact: rank 0 done in %.2f s (%.1f GFLOP/s by the 2 N^2 d count over "
                     "%d rank(s)), %.2f s of it waiting in MPI",
                     el, el > 0 ? 2.0 * (double)n_total * (double)n_total * d / el / 1e9 : 0.0, P,
                     c.t_mpi);
    }
out:
    free(own_buf);
    free(c.S);
    for (int i = 0; i < 2; i++) {
        free(vis_buf[i]);
        free(acc_buf[i]);
    }
    mms_free(&cnt);
    mms_free(&thr);
    return s;
}
