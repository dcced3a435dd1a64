/* engine.c: the MPI layer of the query engine (engine.h, layer 3).
 *
 * A round, seen from every rank:
 *   1. header    MPI_Ibcast of 8 int64 {op, nq, k, seq}: workers wait for it
 *                with MPI_Test and a sleeping back-off, so an idle server
 *                costs no CPU;
 *   2. payload   MPI_Ibcast of the queries (NEIGHBORS: nq normalised kNN
 *                vectors; SEARCH: nq fused embeddings + nq excluded node ids);
 *   3. local     each rank with shards scans them (int8 filter + exact re-rank,
 *                or float scans) and merges its shards' lists;
 *   4. status    MPI_Igather of a fixed 256-byte block {status, message} from
 *                every rank, so the coordinator knows who failed;
 *   5. data      MPI_Igatherv of the replies of the ranks that succeeded and
 *                hold rows (the others send 0 bytes, which the root expects).
 * The coordinator merges the lists (ties by id) into the global top-k. A
 * worker that fails (out of memory) fails only that round; the ranks stay in
 * step because every rank always enters steps 2, 4 and 5.
 * Waits poll the non-blocking collectives and yield the core (sched_yield)
 * between polls, so that waiting ranks leave the CPU to working ones when the
 * node is shared or oversubscribed.
 * Rounds are chunked: at most MMS_ROUND_MAX_Q queries and about
 * MMS_ROUND_BUDGET reply bytes per rank (a single query may exceed it).
 */
#define _GNU_SOURCE
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "mms_array.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_topk.h"

#define HDR_N 8
enum { OP_STOP = 0, OP_NEIGHBORS = 1, OP_SEARCH = 2 };
#define MMS_ROUND_MAX_Q 256
#define MMS_ROUND_BUDGET ((size_t)32 << 20)
#define STATUS_BYTES 256
#define SPIN_SECONDS 0.002   /* busy-poll this long after a round before sleeping */
#define SLEEP_MAX_US 1000    /* longest sleep between polls when idle */

struct mms_engine {
    MPI_Comm comm;           /* a duplicate of the caller's: our rounds never mix with theirs */
    int have_comm;
    int rank, size;
    mms_engine_mode mode;
    int filter;
    mms_index_t *ix;
    int nworkers, worker;
    int *rows_on;            /* coordinator: 1 if rank r holds rows */
    int stopped;
    unsigned char *payload;  /* preallocated: the largest round's payload */
    size_t payload_cap;
    unsigned char *reply;
    size_t reply_cap;
    unsigned char *gathered; /* coordinator */
    size_t gathered_cap;
    char *status_all;        /* coordinator: size x STATUS_BYTES */
    int *counts, *displs;
    double last_round;
    int64_t seq;
    mms_engine_stats_t stats;
};

void mms_engine_params_default(mms_engine_params_t *p) {
    memset(p, 0, sizeof *p);
    p->mode = MMS_ENGINE_SERVE;
    p->filter = 1;
}

int mms_engine_is_coordinator(const mms_engine_t *e) { return e->rank == 0; }
int mms_engine_workers(const mms_engine_t *e) { return e->nworkers; }
const mms_index_t *mms_engine_index(const mms_engine_t *e) { return e->ix; }
void mms_engine_stats(const mms_engine_t *e, mms_engine_stats_t *out) { *out = e->stats; }

/* Bytes of a round's payload and of one rank's reply. */
static size_t payload_bytes(const mms_index_t *ix, int op, int64_t nq) {
    if (op == OP_NEIGHBORS) return (size_t)nq * (size_t)ix->knn_dim * sizeof(float);
    return (size_t)nq * ((size_t)ix->emb_dim * sizeof(float) + sizeof(int64_t));
}

static size_t reply_bytes(const mms_index_t *ix, int op, int64_t nq, int64_t k) {
    size_t per = sizeof(int64_t) + sizeof(float);
    if (op == OP_NEIGHBORS) per += ((size_t)ix->dim + (size_t)ix->emb_dim) * sizeof(float);
    return ((size_t)nq * (size_t)k * per + 7) / 8 * 8; /* replies sit 8-aligned side by side */
}

mms_status mms_engine_open(const mms_engine_params_t *p, MPI_Comm comm, mms_engine_t **out) {
    *out = NULL;
    mms_engine_t *e = calloc(1, sizeof *e);
    mms_status s = mms_mpi_agree(e ? MMS_OK : MMS_ERR_NOMEM, comm);
    if (s != MMS_OK) {
        free(e);
        return s;
    }
    if (MPI_Comm_dup(comm, &e->comm) != MPI_SUCCESS) {
        free(e);
        mms_error_set(MMS_ERR_MPI, __FILE__, __LINE__, __func__, "engine: MPI_Comm_dup failed");
        return MMS_ERR_MPI;
    }
    e->have_comm = 1;
    MPI_Comm_rank(e->comm, &e->rank);
    MPI_Comm_size(e->comm, &e->size);
    e->mode = p->mode;
    e->filter = p->filter;
    if (p->mode == MMS_ENGINE_SERVE) {
        e->nworkers = e->size - 1;
        e->worker = e->rank - 1;
    } else {
        e->nworkers = e->size;
        e->worker = e->rank;
    }
    if (p->mode == MMS_ENGINE_SERVE && e->size < 2) {
        if (e->rank == 0)
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "serving needs at least 2 ranks (rank 0 coordinates, ranks 1.. hold the "
                          "shards): run it with mpirun -np 2 or more");
        s = MMS_ERR_ARG;
    } else if (!p->index) {
        mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__, "engine: no index given");
        s = MMS_ERR_ARG;
    }
    if (s == MMS_OK) {
        mms_index_open_t o;
        mms_index_open_default(&o);
        o.coordinator = e->rank == 0;
        o.worker = e->worker;
        o.nworkers = e->nworkers;
        o.filter = p->filter;
        o.catalog = p->catalog;
        s = mms_index_open(p->index, &o, &e->ix);
    }
    if (s == MMS_OK) {
        const mms_index_t *ix = e->ix;
        size_t a = payload_bytes(ix, OP_NEIGHBORS, MMS_ROUND_MAX_Q);
        size_t b = payload_bytes(ix, OP_SEARCH, MMS_ROUND_MAX_Q);
        s = mms_grow(&e->payload, 1, a > b ? a : b, &e->payload_cap);
    }
    if (s == MMS_OK && e->rank == 0) {
        e->rows_on = calloc((size_t)e->size, sizeof(int));
        e->counts = calloc((size_t)e->size, sizeof(int));
        e->displs = calloc((size_t)e->size, sizeof(int));
        e->status_all = calloc((size_t)e->size, STATUS_BYTES);
        if (!e->rows_on || !e->counts || !e->displs || !e->status_all) s = MMS_ERR_NOMEM;
    }
    s = mms_mpi_agree(s, e->comm);
    if (s == MMS_OK) {
        int has = e->ix->nshard > 0 && e->ix->n_local > 0;
        MMS_MPI_CALL(MPI_Gather(&has, 1, MPI_INT, e->rows_on, 1, MPI_INT, 0, e->comm));
        if (e->rank == 0 && e->nworkers > e->ix->shards)
            mms_log_warn("engine: %d worker ranks for %d index shards: %d rank(s) hold nothing",
                         e->nworkers, e->ix->shards, e->nworkers - e->ix->shards);
    }
    if (s != MMS_OK) {
        e->stopped = 1;
        mms_engine_close(&e);
        return s;
    }
    e->last_round = mms_now();
    *out = e;
    return MMS_OK;
}

void mms_engine_close(mms_engine_t **ep) {
    if (!ep || !*ep) return;
    mms_engine_t *e = *ep;
    mms_index_close(&e->ix);
    free(e->rows_on);
    free(e->counts);
    free(e->displs);
    free(e->status_all);
    free(e->payload);
    free(e->reply);
    free(e->gathered);
    if (e->have_comm) MPI_Comm_free(&e->comm);
    free(e);
    *ep = NULL;
}

/* ---------------------------------------------------------------- local work */

/* This rank's answer to a round into e->reply (reply_bytes of it). */
static mms_status local_round(mms_engine_t *e, int op, int32_t nq, int32_t k) {
    const mms_index_t *ix = e->ix;
    const int ns = ix->nshard;
    const int32_t D = ix->dim, H2 = ix->emb_dim;
    const int32_t w = op == OP_NEIGHBORS ? ix->knn_dim : H2;
    MMS_CALL(mms_grow(&e->reply, 1, reply_bytes(ix, op, nq, k), &e->reply_cap));
    int64_t *rid = (int64_t *)e->reply;
    float *rsc = (float *)(rid + (size_t)nq * k);
    float *rx = rsc + (size_t)nq * k, *rh = rx + (size_t)nq * k * D;
    const float *Q = (const float *)e->payload;
    int64_t *exn = NULL;
    /* per shard lists: rows, ids, scores (nq x k each) */
    size_t per = (size_t)nq * k;
    int64_t *rows = NULL, *sids = NULL, *exr = NULL;
    float *ssc = NULL;
    int *olist = NULL;
    int32_t *opos = NULL;
    const int64_t **li = NULL;
    const float **ls = NULL;
    mms_status s = mms_malloc(per * ns * sizeof(int64_t) + 1, &rows);
    if (s == MMS_OK) s = mms_malloc(per * ns * sizeof(int64_t) + 1, &sids);
    if (s == MMS_OK) s = mms_malloc(per * ns * sizeof(float) + 1, &ssc);
    if (s == MMS_OK) s = mms_malloc((size_t)k * sizeof(int) + 1, &olist);
    if (s == MMS_OK) s = mms_malloc((size_t)k * sizeof(int32_t) + 1, &opos);
    if (s == MMS_OK) s = mms_malloc((size_t)(ns + 1) * sizeof *li, &li);
    if (s == MMS_OK) s = mms_malloc((size_t)(ns + 1) * sizeof *ls, &ls);
    if (s == MMS_OK && op == OP_SEARCH) {
        exn = malloc((size_t)nq * sizeof(int64_t) + 1);
        exr = malloc((size_t)nq * sizeof(int64_t) + 1);
        if (!exn || !exr) s = MMS_ERR_NOMEM;
        else memcpy(exn, e->payload + (size_t)nq * H2 * sizeof(float), (size_t)nq * sizeof(int64_t));
    }
    for (int si = 0; s == MMS_OK && si < ns; si++) {
        const mms_index_shard_t *sh = &ix->sh[si];
        int64_t *r = rows + per * si;
        float *c = ssc + per * si;
        const float *X = op == OP_NEIGHBORS ? sh->vis : sh->emb;
        const mms_qmat_t *qm = op == OP_NEIGHBORS ? sh->qvis : sh->qemb;
        if (op == OP_SEARCH)
            for (int32_t q = 0; q < nq; q++) exr[q] = exn[q] >= 0 ? mms_index_shard_row(sh, exn[q]) : -1;
        if (sh->n == 0) {
            for (size_t i = 0; i < per; i++) r[i] = -1, c[i] = -INFINITY;
        } else if (qm) {
            s = mms_qmat_topk(qm, X, sh->ids, Q, nq, k, exr, r, c,
                              e->rank == 0 ? &e->stats.local : NULL);
        } else {
            /* float scan: row numbers as ids (ascending like the node ids, so ties agree) */
            s = mms_topk_scan(X, sh->n, w, NULL, 0, Q, nq, k, exr, r, c);
        }
        for (size_t i = 0; s == MMS_OK && i < per; i++) sids[per * si + i] = r[i] >= 0 ? sh->ids[r[i]] : -1;
    }
    for (int32_t q = 0; s == MMS_OK && q < nq; q++) {
        for (int si = 0; si < ns; si++) {
            li[si] = sids + per * si + (size_t)q * k;
            ls[si] = ssc + per * si + (size_t)q * k;
        }
        s = mms_topk_merge(li, ls, ns, k, k, rid + (size_t)q * k, rsc + (size_t)q * k, olist, opos);
        if (s != MMS_OK) break;
        if (op != OP_NEIGHBORS) continue;
        for (int32_t i = 0; i < k; i++) {
            float *xo = rx + ((size_t)q * k + i) * D, *ho = rh + ((size_t)q * k + i) * H2;
            if (olist[i] < 0) {
                memset(xo, 0, (size_t)D * sizeof(float));
                memset(ho, 0, (size_t)H2 * sizeof(float));
                continue;
            }
            const mms_index_shard_t *sh = &ix->sh[olist[i]];
            int64_t row = rows[per * olist[i] + (size_t)q * k + opos[i]];
            memcpy(xo, sh->x + (size_t)row * D, (size_t)D * sizeof(float));
            memcpy(ho, sh->h1 + (size_t)row * H2, (size_t)H2 * sizeof(float));
        }
    }
    free(rows);
    free(sids);
    free(ssc);
    free(olist);
    free(opos);
    free(li);
    free(ls);
    free(exn);
    free(exr);
    return s;
}

/* Complete a non-blocking collective: poll, and after a short spin yield the
 * core at every poll, so that on a shared or oversubscribed machine a waiting
 * rank does not take the CPU from the rank it waits for (blocking MPI calls
 * spin). On an idle core sched_yield returns at once: no cost. */
static mms_status wait_yield(MPI_Request *rq) {
    int done = 0;
    for (int i = 0;; i++) {
        MMS_MPI_CALL(MPI_Test(rq, &done, MPI_STATUS_IGNORE));
        if (done) return MMS_OK;
        if (i > 64) sched_yield();
    }
}

/* Steps 2-5 of a round on every rank (the header is known). On the
 * coordinator, e->gathered then holds the replies of the ranks with
 * counts[r] > 0 at displs[r]; the return value says whether every rank
 * succeeded (a failure's message names the rank). */
static mms_status round_body(mms_engine_t *e, const int64_t *hdr) {
    const int op = (int)hdr[0];
    const int32_t nq = (int32_t)hdr[1], k = (int32_t)hdr[2];
    size_t pb = payload_bytes(e->ix, op, nq);
    MMS_CHECK(pb <= e->payload_cap && nq <= MMS_ROUND_MAX_Q, MMS_ERR_INTERNAL,
              "engine: round of %d queries does not fit the payload buffer", nq);
    MPI_Request rq;
    MMS_MPI_CALL(MPI_Ibcast(e->payload, (int)pb, MPI_BYTE, 0, e->comm, &rq));
    MMS_CALL(wait_yield(&rq));
    mms_status local = MMS_OK;
    int has = e->ix->nshard > 0 && e->ix->n_local > 0;
    if (has) local = local_round(e, op, nq, k);
    size_t rb = reply_bytes(e->ix, op, nq, k);
    char st[STATUS_BYTES];
    memset(st, 0, sizeof st);
    int64_t code = local;
    memcpy(st, &code, sizeof code);
    if (local != MMS_OK) snprintf(st + 8, STATUS_BYTES - 8, "%s", mms_error_message());
    MMS_MPI_CALL(MPI_Igather(st, STATUS_BYTES, MPI_BYTE, e->status_all, STATUS_BYTES, MPI_BYTE, 0,
                             e->comm, &rq));
    MMS_CALL(wait_yield(&rq));
    int send = has && local == MMS_OK ? (int)rb : 0;
    mms_status result = MMS_OK;
    if (e->rank == 0) {
        int at = 0;
        for (int r = 0; r < e->size; r++) {
            int64_t c;
            memcpy(&c, e->status_all + (size_t)r * STATUS_BYTES, sizeof c);
            e->counts[r] = c == MMS_OK && e->rows_on[r] ? (int)rb : 0;
            e->displs[r] = at;
            at += e->counts[r];
            if (c != MMS_OK && result == MMS_OK) {
                char msg[STATUS_BYTES];
                memcpy(msg, e->status_all + (size_t)r * STATUS_BYTES + 8, STATUS_BYTES - 8);
                msg[STATUS_BYTES - 9] = '\0';
                mms_error_set(MMS_ERR_INTERNAL, __FILE__, __LINE__, __func__,
                              "shard search failed on rank %d: %s", r, msg);
                result = MMS_ERR_INTERNAL;
            }
        }
    }
    MMS_MPI_CALL(MPI_Igatherv(e->reply, send, MPI_BYTE, e->gathered, e->counts, e->displs,
                              MPI_BYTE, 0, e->comm, &rq));
    MMS_CALL(wait_yield(&rq));
    e->last_round = mms_now();
    return result;
}

/* ---------------------------------------------------------------- worker side */

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

mms_status mms_engine_worker_loop(mms_engine_t *e) {
    MMS_CHECK(e->rank != 0, MMS_ERR_ARG, "engine: the coordinator does not run the worker loop");
    for (;;) {
        int64_t hdr[HDR_N];
        MPI_Request rq;
        MMS_MPI_CALL(MPI_Ibcast(hdr, HDR_N, MPI_INT64_T, 0, e->comm, &rq));
        int done = 0;
        long nap = 10;
        for (;;) {
            MMS_MPI_CALL(MPI_Test(&rq, &done, MPI_STATUS_IGNORE));
            if (done) break;
            if (mms_now() - e->last_round < SPIN_SECONDS) {
                sched_yield();
                continue;
            }
            sleep_us(nap);
            nap = nap * 2 > SLEEP_MAX_US ? SLEEP_MAX_US : nap * 2;
        }
        if (hdr[0] == OP_STOP) break;
        mms_status s = round_body(e, hdr);
        if (s != MMS_OK && s != MMS_ERR_INTERNAL) return s; /* MPI failure */
    }
    return MMS_OK;
}

/* ---------------------------------------------------------------- coordinator side */

static mms_status send_header(mms_engine_t *e, int op, int32_t nq, int32_t k) {
    int64_t hdr[HDR_N] = {op, nq, k, ++e->seq, 0, 0, 0, 0};
    MPI_Request rq;
    MMS_MPI_CALL(MPI_Ibcast(hdr, HDR_N, MPI_INT64_T, 0, e->comm, &rq));
    MMS_CALL(wait_yield(&rq));
    if (op == OP_STOP) return MMS_OK;
    e->stats.rounds++;
    return round_body(e, hdr);
}

mms_status mms_engine_stop(mms_engine_t *e) {
    if (!e || e->rank != 0 || e->stopped) return MMS_OK;
    e->stopped = 1;
    return send_header(e, OP_STOP, 0, 0);
}

static void fail_queries(mms_query_t **qs, int n, const char *what) {
    for (int i = 0; i < n; i++) {
        mms_response_set_error(qs[i]->resp, MMS_PERR_INTERNAL, "%s: %s", what, mms_error_message());
        qs[i]->active = 0;
    }
}

/* The largest prefix of qs (from `from`) that fits one round. */
static int chunk_end(const mms_index_t *ix, int op, mms_query_t **qs, int n, int from,
                     int32_t *kmax) {
    int end = from;
    int32_t k = 0;
    while (end < n && end - from < MMS_ROUND_MAX_Q) {
        int32_t kq = op == OP_NEIGHBORS ? qs[end]->neighbors : qs[end]->k;
        int32_t kn = kq > k ? kq : k;
        if (end > from && reply_bytes(ix, op, end - from + 1, kn) > MMS_ROUND_BUDGET) break;
        k = kn;
        end++;
    }
    *kmax = k;
    return end;
}

/* One op over the queries qs[0..n) (all active), chunked into rounds. */
static mms_status run_op(mms_engine_t *e, int op, mms_query_t **qs, int n) {
    const mms_index_t *ix = e->ix;
    const int32_t D = ix->dim, H2 = ix->emb_dim, kd = ix->knn_dim;
    for (int from = 0; from < n;) {
        int32_t k;
        int to = chunk_end(ix, op, qs, n, from, &k);
        int32_t nq = to - from;
        mms_query_t **cq = qs + from;
        from = to;
        size_t rb = reply_bytes(ix, op, nq, k);
        mms_status s = mms_grow(&e->gathered, 1, rb * (size_t)e->size, &e->gathered_cap);
        if (s != MMS_OK) { /* nothing was sent: the workers never knew */
            fail_queries(cq, nq, "coordinator out of memory");
            continue;
        }
        for (int32_t q = 0; q < nq; q++) {
            if (op == OP_NEIGHBORS) {
                memcpy(e->payload + (size_t)q * kd * sizeof(float), cq[q]->kq, (size_t)kd * sizeof(float));
            } else {
                memcpy(e->payload + (size_t)q * H2 * sizeof(float), cq[q]->E, (size_t)H2 * sizeof(float));
                memcpy(e->payload + (size_t)nq * H2 * sizeof(float) + (size_t)q * sizeof(int64_t),
                       &cq[q]->exclude, sizeof(int64_t));
            }
        }
        s = send_header(e, op, nq, k);
        if (s == MMS_ERR_MPI) return s;
        if (s != MMS_OK) {
            fail_queries(cq, nq, "round failed");
            continue;
        }
        /* merge the ranks' lists */
        int nl = 0;
        const int64_t **li = NULL;
        const float **ls = NULL;
        const unsigned char **base = NULL;
        int64_t *oid = NULL;
        float *osc = NULL;
        int *ol = NULL;
        int32_t *op_ = NULL;
        s = mms_malloc((size_t)e->size * sizeof *li, &li);
        if (s == MMS_OK) s = mms_malloc((size_t)e->size * sizeof *ls, &ls);
        if (s == MMS_OK) s = mms_malloc((size_t)e->size * sizeof *base, &base);
        for (int r = 0; s == MMS_OK && r < e->size; r++)
            if (e->counts[r] > 0) base[nl++] = e->gathered + e->displs[r];
        if (s == MMS_OK) s = mms_malloc((size_t)k * sizeof(int64_t), &oid);
        if (s == MMS_OK) s = mms_malloc((size_t)k * sizeof(float), &osc);
        if (s == MMS_OK) s = mms_malloc((size_t)k * sizeof(int), &ol);
        if (s == MMS_OK) s = mms_malloc((size_t)k * sizeof(int32_t), &op_);
        for (int32_t q = 0; s == MMS_OK && q < nq; q++) {
            mms_query_t *Q = cq[q];
            int32_t kq = op == OP_NEIGHBORS ? Q->neighbors : Q->k;
            for (int l = 0; l < nl; l++) {
                li[l] = (const int64_t *)base[l] + (size_t)q * k;
                ls[l] = (const float *)((const int64_t *)base[l] + (size_t)nq * k) + (size_t)q * k;
            }
            if (op == OP_SEARCH) {
                s = mms_topk_merge(li, ls, nl, k, kq, oid, osc, NULL, NULL);
                if (s == MMS_OK) s = mms_query_fill_results(ix, Q, oid, osc, kq);
                continue;
            }
            s = mms_topk_merge(li, ls, nl, k, kq, oid, osc, ol, op_);
            if (s != MMS_OK) break;
            int32_t m = 0;
            while (m < kq && oid[m] >= 0) m++;
            Q->nnb = m;
            s = mms_malloc((size_t)(m + 1) * sizeof(int64_t), &Q->nb_id);
            if (s == MMS_OK) s = mms_malloc((size_t)(m + 1) * sizeof(float), &Q->nb_score);
            if (s == MMS_OK) s = mms_malloc((size_t)(m + 1) * (size_t)D * sizeof(float), &Q->nb_x);
            if (s == MMS_OK) s = mms_malloc((size_t)(m + 1) * (size_t)H2 * sizeof(float), &Q->nb_h1);
            for (int32_t i = 0; s == MMS_OK && i < m; i++) {
                const float *sc0 = (const float *)((const int64_t *)base[ol[i]] + (size_t)nq * k);
                const float *xr = sc0 + (size_t)nq * k + ((size_t)q * k + op_[i]) * D;
                const float *hr = sc0 + (size_t)nq * k + (size_t)nq * k * D + ((size_t)q * k + op_[i]) * H2;
                Q->nb_id[i] = oid[i];
                Q->nb_score[i] = osc[i];
                memcpy(Q->nb_x + (size_t)i * D, xr, (size_t)D * sizeof(float));
                memcpy(Q->nb_h1 + (size_t)i * H2, hr, (size_t)H2 * sizeof(float));
            }
        }
        free(oid);
        free(osc);
        free(ol);
        free(op_);
        free(li);
        free(ls);
        free(base);
        if (s != MMS_OK) fail_queries(cq, nq, "merge failed");
    }
    return MMS_OK;
}

static void add_timing(mms_response_t *r, const char *stage, double sec) {
    mms_response_add_timing(r, stage, (uint64_t)(sec * 1e6 + 0.5));
}

mms_status mms_engine_answer(mms_engine_t *e, const mms_request_t *reqs, const uint8_t *connect,
                             int n, mms_response_t *resps, mms_engine_trace_t *trace) {
    MMS_CHECK(e->rank == 0, MMS_ERR_ARG, "engine: only the coordinator answers requests");
    MMS_CHECK(!e->stopped, MMS_ERR_ARG, "engine: answer after stop");
    const mms_index_t *ix = e->ix;
    const int32_t H2 = ix->emb_dim;
    mms_engine_stats_t *st = &e->stats;
    st->prepare = st->neighbors = st->embed = st->search = st->decorate = 0;
    if (n <= 0) return MMS_OK;
    double t0 = mms_now();
    mms_query_t *qs = NULL;
    mms_query_t **list = NULL;
    MMS_CALL(mms_calloc((size_t)n, sizeof *qs, &qs));
    mms_status s = mms_calloc((size_t)n, sizeof *list, &list);
    for (int i = 0; s == MMS_OK && i < n; i++) {
        int c = connect ? connect[i] : MMS_ENGINE_CONNECT_IMAGE;
        mms_status ps = mms_query_prepare(ix, &reqs[i], c, &resps[i], &qs[i]);
        if (ps != MMS_OK) {
            mms_response_set_error(&resps[i], MMS_PERR_INTERNAL, "%s", mms_error_message());
            qs[i].active = 0;
        }
        if (resps[i].ok && reqs[i].op == MMS_OP_INFO) {
            if (mms_query_info(ix, e->nworkers, &resps[i]) != MMS_OK)
                mms_response_set_error(&resps[i], MMS_PERR_INTERNAL, "%s", mms_error_message());
        }
    }
    double t1 = mms_now();
    st->prepare = t1 - t0;
    /* visual neighbours of every query image, one round (or a few) for the batch */
    int m = 0;
    for (int i = 0; s == MMS_OK && i < n; i++)
        if (qs[i].active && qs[i].need_nbrs) list[m++] = &qs[i];
    if (s == MMS_OK && m > 0) s = run_op(e, OP_NEIGHBORS, list, m);
    double t2 = mms_now();
    st->neighbors = t2 - t1;
    if (s == MMS_OK) {
        if (mms_query_finish_embedding(ix, qs, n) != MMS_OK) {
            m = 0;
            for (int i = 0; i < n; i++)
                if (qs[i].active) list[m++] = &qs[i];
            fail_queries(list, m, "embedding failed");
        }
    }
    double t3 = mms_now();
    st->embed = t3 - t2;
    m = 0;
    for (int i = 0; s == MMS_OK && i < n; i++)
        if (qs[i].active && qs[i].search) list[m++] = &qs[i];
    if (s == MMS_OK && m > 0) s = run_op(e, OP_SEARCH, list, m);
    double t4 = mms_now();
    st->search = t4 - t3;
    for (int i = 0; i < n; i++) {
        mms_query_t *q = &qs[i];
        if (trace) {
            if (trace->E) {
                float *o = trace->E + (size_t)i * H2;
                if (q->E) memcpy(o, q->E, (size_t)H2 * sizeof(float));
                else memset(o, 0, (size_t)H2 * sizeof(float));
            }
            if (trace->z) {
                float *o = trace->z + (size_t)i * H2;
                if (q->z) memcpy(o, q->z, (size_t)H2 * sizeof(float));
                else memset(o, 0, (size_t)H2 * sizeof(float));
            }
            if (trace->nbrs)
                for (int32_t j = 0; j < trace->max_nbrs; j++)
                    trace->nbrs[(size_t)i * trace->max_nbrs + j] = j < q->nnb ? q->nb_id[j] : -1;
        }
        if (resps[i].ok && (reqs[i].op == MMS_OP_SEARCH || reqs[i].op == MMS_OP_PREDICT_TAGS)) {
            if (q->need_nbrs) add_timing(&resps[i], "neighbors", st->neighbors);
            add_timing(&resps[i], "embed", st->embed);
            if (q->search) add_timing(&resps[i], "search", st->search);
        }
        mms_query_free(q);
    }
    st->decorate = mms_now() - t4;
    free(qs);
    free(list);
    return s;
}
