/* engine.c: the coordinator side of the query engine's MPI layer (engine.h,
 * layer 3): opening the engine on every rank, sending round headers,
 * chunking a batch of queries into rounds of bounded size, the global merge
 * of the ranks' lists (ties by id) and answering the requests.
 *
 * A round's steps on every rank, its wire layout and what a shard rank
 * computes are worker/shard_round.h; the worker loop is mms_round_serve there
 * (mms_engine_worker_loop only hands the engine's round state to it).
 * Rounds are chunked: at most MMS_ROUND_MAX_Q queries and about
 * MMS_ROUND_BUDGET reply bytes per rank (a single query may exceed it).
 *
 * Reload (mms_engine_reload): a RELOAD header between batches, the resolved
 * path in a second broadcast, every rank opens the new version beside the old
 * one, the statuses (with their messages) are gathered on the coordinator and
 * agreed on, and every rank switches or keeps the old version together.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "mms_array.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_topk.h"
#include "shard_round.h"

#define RELOAD_STATUS_BYTES 1024 /* {int64 status, message} per rank: room for two paths */

struct mms_engine {
    MPI_Comm comm;           /* a duplicate of the caller's: our rounds never mix with theirs */
    int have_comm;
    int rank, size;
    mms_engine_mode mode;
    int filter;
    int list_scan;
    int32_t nprobe;          /* default lists probed (0: by size), engine params */
    int exact;               /* 1: exact by default; -1: approximate by default at any size */
    mms_index_t *ix;
    mms_index_t *prev_ix;    /* coordinator: the version before the last reload, kept until the
                                responses that borrow its strings were encoded */
    int nworkers, worker;
    int stopped;
    mms_round_t round;       /* this rank's round state (payload, replies, gathers) */
    char *index_arg;         /* the index path as given to open (a reload re-resolves it) */
    char *catalog;           /* the catalog override, or NULL */
    char *reload_status;     /* root: size x RELOAD_STATUS_BYTES, the ranks' reload outcomes */
    int64_t seq;
    mms_engine_stats_t stats;
};

void mms_engine_params_default(mms_engine_params_t *p) {
    memset(p, 0, sizeof *p);
    p->mode = MMS_ENGINE_SERVE;
    p->filter = 1;
    p->list_scan = MMS_LIST_SCAN_AUTO;
}

mms_status mms_engine_list_scan_parse(const char *opt, const char *s, int int8_flag, int *out) {
    static const char *const names[] = {"auto", "codes4", "int8"};
    int v = -1;
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, names[i]) == 0) v = i;
    MMS_CHECK(!s || v >= 0, MMS_ERR_ARG, "--%s: '%s' is not one of auto, codes4, int8", opt, s);
    MMS_CHECK(!int8_flag || !s || v == MMS_LIST_SCAN_INT8, MMS_ERR_ARG,
              "--int8-lists contradicts --%s %s", opt, s);
    *out = int8_flag ? MMS_LIST_SCAN_INT8 : v >= 0 ? v : MMS_LIST_SCAN_AUTO;
    return MMS_OK;
}

int mms_engine_is_coordinator(const mms_engine_t *e) { return e->rank == 0; }
int mms_engine_workers(const mms_engine_t *e) { return e->nworkers; }
const mms_index_t *mms_engine_index(const mms_engine_t *e) { return e->ix; }
void mms_engine_stats(const mms_engine_t *e, mms_engine_stats_t *out) {
    *out = e->stats;
    out->local = e->round.scans;
}

/* This rank's part of the index at dir, with the engine's options. Local. */
static mms_status open_index(const mms_engine_t *e, const char *dir, mms_index_t **out) {
    mms_index_open_t o;
    mms_index_open_default(&o);
    o.coordinator = e->rank == 0;
    o.worker = e->worker;
    o.nworkers = e->nworkers;
    o.filter = e->filter;
    o.list_scan = e->list_scan;
    o.catalog = e->catalog;
    return mms_index_open(dir, &o, out);
}

/* The directory `path` names now: realpath(3) when it resolves, else path
 * itself (the open then says what is missing). dir: MMS_PATH_MAX bytes. */
static void resolve_dir(const char *path, char *dir) {
    char rp[PATH_MAX > MMS_PATH_MAX ? PATH_MAX : MMS_PATH_MAX];
    if (realpath(path, rp) && strlen(rp) < MMS_PATH_MAX) snprintf(dir, MMS_PATH_MAX, "%s", rp);
    else snprintf(dir, MMS_PATH_MAX, "%s", path);
}

/* Collective: the coordinator's dir[0..len) (len bytes with the NUL, known on
 * every rank, at most MMS_PATH_MAX) into every rank's dir. */
static mms_status share_dir(mms_engine_t *e, char *dir, int64_t len) {
    MMS_CHECK(len >= 1 && len <= MMS_PATH_MAX, MMS_ERR_INTERNAL, "engine: path of %lld bytes",
              (long long)len);
    MPI_Request rq;
    MMS_MPI_CALL(MPI_Ibcast(dir, (int)len, MPI_CHAR, 0, e->comm, &rq));
    MMS_CALL(mms_round_wait(&rq));
    dir[len - 1] = '\0';
    return MMS_OK;
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
    e->list_scan = p->list_scan;
    e->nprobe = p->nprobe > 0 ? p->nprobe : 0;
    e->exact = p->exact > 0 ? 1 : p->exact < 0 ? -1 : 0;
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
        e->index_arg = strdup(p->index);
        e->catalog = p->catalog ? strdup(p->catalog) : NULL;
        if (e->rank == 0) e->reload_status = calloc((size_t)e->size, RELOAD_STATUS_BYTES);
        if (!e->index_arg || (p->catalog && !e->catalog) || (e->rank == 0 && !e->reload_status)) {
            mms_error_set(MMS_ERR_NOMEM, __FILE__, __LINE__, __func__, "engine: out of memory");
            s = MMS_ERR_NOMEM;
        }
    }
    /* every rank opens what the coordinator resolved: a link moved meanwhile
     * cannot give the ranks different versions */
    s = mms_mpi_agree(s, e->comm);
    if (s == MMS_OK) {
        char dir[MMS_PATH_MAX];
        int64_t len = 0;
        if (e->rank == 0) {
            resolve_dir(p->index, dir);
            len = (int64_t)strlen(dir) + 1;
        }
        int rc = MPI_Bcast(&len, 1, MPI_INT64_T, 0, e->comm);
        if (rc != MPI_SUCCESS) {
            mms_mpi_error(rc, "MPI_Bcast(path length)", __FILE__, __LINE__, __func__);
            s = MMS_ERR_MPI;
        }
        if (s == MMS_OK) s = share_dir(e, dir, len);
        if (s == MMS_OK) s = open_index(e, dir, &e->ix);
    }
    s = mms_mpi_agree(s, e->comm);
    if (s == MMS_OK) s = mms_round_open(&e->round, e->comm, e->ix);
    if (s == MMS_OK && e->rank == 0 && e->nworkers > e->ix->shards)
        mms_log_warn("engine: %d worker ranks for %d index shards: %d rank(s) hold nothing",
                     e->nworkers, e->ix->shards, e->nworkers - e->ix->shards);
    if (s != MMS_OK) {
        e->stopped = 1;
        mms_engine_close(&e);
        return s;
    }
    *out = e;
    return MMS_OK;
}

void mms_engine_close(mms_engine_t **ep) {
    if (!ep || !*ep) return;
    mms_engine_t *e = *ep;
    mms_round_close(&e->round);
    mms_index_close(&e->ix);
    mms_index_close(&e->prev_ix);
    if (e->have_comm) MPI_Comm_free(&e->comm);
    free(e->index_arg);
    free(e->catalog);
    free(e->reload_status);
    free(e);
    *ep = NULL;
}

/* ---------------------------------------------------------------- reload */

/* Every rank, after the RELOAD header: the coordinator's dir (len bytes with
 * its NUL) arrives, this rank opens its part of that version beside the one
 * it serves, the outcomes (with messages) are gathered on the coordinator,
 * and the ranks agree. All switch (a new round state for the new widths; the
 * old index and round freed) or all keep the old version. On the root, a
 * refusal leaves "on rank r: <that rank's message>" in *why (cap bytes).
 * Returns MMS_OK on a switch, MMS_ERR_MPI when MPI failed, else the agreed
 * failure code. */
static mms_status reload_all(mms_engine_t *e, char *dir, int64_t len, char *why, size_t cap) {
    MMS_CALL(share_dir(e, dir, len));
    mms_index_t *nix = NULL;
    mms_status local = open_index(e, dir, &nix);
    char st[RELOAD_STATUS_BYTES];
    memset(st, 0, sizeof st);
    int64_t code = local;
    memcpy(st, &code, sizeof code);
    if (local != MMS_OK) snprintf(st + 8, sizeof st - 8, "%s", mms_error_message());
    MPI_Request rq;
    int rc = MPI_Igather(st, RELOAD_STATUS_BYTES, MPI_BYTE, e->reload_status, RELOAD_STATUS_BYTES,
                         MPI_BYTE, 0, e->comm, &rq);
    mms_status s = rc == MPI_SUCCESS ? mms_round_wait(&rq) : MMS_ERR_MPI;
    if (rc != MPI_SUCCESS) mms_mpi_error(rc, "MPI_Igather(reload status)", __FILE__, __LINE__, __func__);
    if (s == MMS_OK && e->rank == 0) {
        for (int r = 0; r < e->size; r++) {
            const char *b = e->reload_status + (size_t)r * RELOAD_STATUS_BYTES;
            memcpy(&code, b, sizeof code);
            if (code == MMS_OK) continue;
            char msg[RELOAD_STATUS_BYTES];
            memcpy(msg, b + 8, RELOAD_STATUS_BYTES - 8);
            msg[RELOAD_STATUS_BYTES - 9] = '\0';
            snprintf(why, cap, "on rank %d: %s", r, msg);
            break;
        }
    }
    if (s == MMS_OK) s = mms_mpi_agree(local, e->comm);
    if (s == MMS_OK) {
        mms_round_t nr;
        s = mms_round_open(&nr, e->comm, nix); /* collective, agreed; nr empty on failure */
        if (s == MMS_OK) {
            nr.scans = e->round.scans; /* cumulative */
            mms_round_close(&e->round);
            e->round = nr;
            /* the coordinator's responses of the last batch may still borrow
             * the old version's strings (ids, tags, paths): it goes when they
             * are encoded (mms_engine_release_previous) */
            mms_index_close(&e->prev_ix);
            if (e->rank == 0) e->prev_ix = e->ix;
            else mms_index_close(&e->ix);
            e->ix = nix;
            return MMS_OK;
        }
        if (e->rank == 0 && s != MMS_ERR_MPI)
            snprintf(why, cap, "round buffers for the new version: %s",
                     local == MMS_OK && mms_error_message()[0] ? mms_error_message()
                                                              : "another rank failed");
    }
    mms_index_close(&nix);
    return s;
}

mms_status mms_engine_reload(mms_engine_t *e, const char *dir, mms_engine_reload_t *out) {
    mms_engine_reload_t info;
    memset(&info, 0, sizeof info);
    if (out) *out = info;
    MMS_CHECK(e && e->rank == 0, MMS_ERR_ARG, "engine: only the coordinator reloads");
    MMS_CHECK(!e->stopped, MMS_ERR_ARG, "engine: reload after stop");
    mms_engine_release_previous(e);
    double t0 = mms_now();
    const char *want = dir ? dir : e->index_arg;
    info.old_version = e->ix->version;
    snprintf(info.old_dir, sizeof info.old_dir, "%s", e->ix->dir);
    char path[MMS_PATH_MAX];
    resolve_dir(want, path);
    snprintf(info.new_dir, sizeof info.new_dir, "%s", path);
    int64_t len = (int64_t)strlen(path) + 1;
    int64_t hdr[MMS_ROUND_HDR_N] = {MMS_ROUND_RELOAD, len, 0, ++e->seq, 0, 0, 0, 0};
    MPI_Request rq;
    MMS_MPI_CALL(MPI_Ibcast(hdr, MMS_ROUND_HDR_N, MPI_INT64_T, 0, e->comm, &rq));
    MMS_CALL(mms_round_wait(&rq));
    char why[RELOAD_STATUS_BYTES + 64] = "";
    mms_status s = reload_all(e, path, len, why, sizeof why);
    info.seconds = mms_now() - t0;
    if (s == MMS_OK) {
        info.new_version = e->ix->version;
        snprintf(info.new_dir, sizeof info.new_dir, "%s", e->ix->dir);
        if (out) *out = info;
        mms_log_info("engine: reloaded %s: version %lld (%s) -> version %lld (%s) in %.2f s",
                     want, (long long)info.old_version, info.old_dir, (long long)info.new_version,
                     info.new_dir, info.seconds);
        if (e->nworkers > e->ix->shards)
            mms_log_warn("engine: %d worker ranks for %d index shards: %d rank(s) hold nothing",
                         e->nworkers, e->ix->shards, e->nworkers - e->ix->shards);
        return MMS_OK;
    }
    info.new_version = -1;
    if (out) *out = info;
    if (s == MMS_ERR_MPI) return s;
    /* the one line of the refusal, naming the file; the caller gets the same
     * text from mms_error_message() (set quietly: already logged) */
    const char *reason = why[0] ? why : "a rank failed";
    mms_log_warn("engine: reload of %s (%s) refused, still serving version %lld (%s): %s", want,
                 path, (long long)info.old_version, info.old_dir, reason);
    mms_log_level lv = mms_log_get_level();
    mms_log_set_level(MMS_LOG_QUIET);
    mms_error_set(s, __FILE__, __LINE__, __func__,
                  "reload refused: %s (new version %s; still serving version %lld, %s)", reason,
                  path, (long long)info.old_version, info.old_dir);
    mms_log_set_level(lv);
    return s;
}

void mms_engine_release_previous(mms_engine_t *e) {
    if (e) mms_index_close(&e->prev_ix);
}

mms_status mms_engine_worker_loop(mms_engine_t *e) {
    MMS_CHECK(e->rank != 0, MMS_ERR_ARG, "engine: the coordinator does not run the worker loop");
    char dir[MMS_PATH_MAX];
    for (;;) {
        int64_t hdr[MMS_ROUND_HDR_N];
        MMS_CALL(mms_round_next(&e->round, hdr));
        int64_t op = hdr[MMS_ROUND_HDR_OP];
        if (op == MMS_ROUND_STOP) return MMS_OK;
        MMS_CHECK(op == MMS_ROUND_RELOAD, MMS_ERR_INTERNAL, "engine: unknown round header op %lld",
                  (long long)op);
        mms_status s = reload_all(e, dir, hdr[MMS_ROUND_HDR_NQ], NULL, 0);
        if (s == MMS_ERR_MPI) return s;
    }
}

/* ---------------------------------------------------------------- coordinator side */

/* Step 1 of a round (the header), then its steps 2-5 (mms_round_body). */
static mms_status send_header(mms_engine_t *e, int op, int32_t nq, int32_t k, int32_t nprobe) {
    int64_t hdr[MMS_ROUND_HDR_N] = {op, nq, k, ++e->seq, nprobe, 0, 0, 0};
    MPI_Request rq;
    MMS_MPI_CALL(MPI_Ibcast(hdr, MMS_ROUND_HDR_N, MPI_INT64_T, 0, e->comm, &rq));
    MMS_CALL(mms_round_wait(&rq));
    if (op == MMS_ROUND_STOP) return MMS_OK;
    e->stats.rounds++;
    return mms_round_body(&e->round, hdr);
}

mms_status mms_engine_stop(mms_engine_t *e) {
    if (!e || e->rank != 0 || e->stopped) return MMS_OK;
    e->stopped = 1;
    return send_header(e, MMS_ROUND_STOP, 0, 0, 0);
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
        /* one nprobe per round, and its lists within the payload's room */
        if (end > from && (qs[end]->nprobe != qs[from]->nprobe ||
                           (size_t)(end - from + 1) * (size_t)qs[from]->nprobe * sizeof(int32_t) >
                               MMS_ROUND_LISTS_BYTES))
            break;
        int32_t kq = op == MMS_ROUND_NEIGHBORS ? qs[end]->neighbors : qs[end]->k;
        int32_t kn = kq > k ? kq : k;
        if (end > from && mms_round_reply_bytes(ix, op, end - from + 1, kn) > MMS_ROUND_BUDGET) break;
        k = kn;
        end++;
    }
    *kmax = k;
    return end;
}

/* The payload of a round (shard_round.h's layout) from the queries cq[0..nq). */
static void fill_payload(mms_engine_t *e, int op, mms_query_t **cq, int32_t nq) {
    const int32_t H2 = e->ix->emb_dim, kd = e->ix->knn_dim;
    unsigned char *pl = e->round.payload;
    for (int32_t q = 0; q < nq; q++) {
        if (op == MMS_ROUND_NEIGHBORS) {
            memcpy(pl + (size_t)q * kd * sizeof(float), cq[q]->kq, (size_t)kd * sizeof(float));
        } else {
            memcpy(pl + (size_t)q * H2 * sizeof(float), cq[q]->E, (size_t)H2 * sizeof(float));
            memcpy(pl + (size_t)nq * H2 * sizeof(float) + (size_t)q * sizeof(int64_t),
                   &cq[q]->exclude, sizeof(int64_t));
        }
    }
}

int32_t mms_engine_nprobe(const mms_engine_t *e, const mms_request_t *req) {
    const int32_t nl = e->ix->ivf_nlist;
    if (nl <= 0 || !e->filter) return 0;
    int32_t np;
    if (req && req->exact == 1) return 0;
    if (req && req->nprobe > 0) np = req->nprobe;
    else if (e->exact == 1 && !(req && req->exact == -1)) return 0;
    else if (e->nprobe > 0) np = e->nprobe;
    else if (mms_index_live_images(e->ix) < MMS_IVF_EXACT_BELOW && e->exact != -1 &&
             !(req && req->exact == -1))
        return 0;
    else np = mms_ivf_default_nprobe(nl, e->ix->n_images);
    return np < nl ? np : nl;
}

/* The coordinator's probe choice for a round of nq queries already in the
 * payload: each query's nprobe best lists by the int8 estimate of the inner
 * product with the space's centroids (mms_qmat_approx_topk: estimate
 * descending, ties to the smaller list), written after the payload
 * (shard_round.h). Workers never recompute it. One pass over the int8
 * centroids (3 MB per single fused query at nlist 4096) and no float
 * re-rank: the exact top-nprobe of the float scores cost 0.42 ms of a 2 ms
 * query at nprobe 192 (docs/query.md), and which of two near-tied lists is
 * probed last does not matter. The same lists whether a query comes alone or
 * in a batch. */
static mms_status choose_lists(mms_engine_t *e, int op, int32_t nq, int32_t nprobe) {
    const mms_index_t *ix = e->ix;
    const int32_t nl = ix->ivf_nlist;
    const mms_qmat_t *qc = op == MMS_ROUND_NEIGHBORS ? ix->ivf_qvis : ix->ivf_qemb;
    MMS_CHECK(nl > 0 && qc && nprobe <= nl, MMS_ERR_INTERNAL, "engine: no lists to probe");
    const float *Q = (const float *)e->round.payload;
    int32_t *out = (int32_t *)(e->round.payload + mms_round_payload_bytes(ix, op, nq));
    return mms_qmat_approx_topk(qc, Q, nq, nprobe, out);
}

/* Query q's merged visual neighbours (m of them, from the replies rep at the
 * positions ol / op_) into Q's nb_* arrays. */
static mms_status keep_neighbors(const mms_index_t *ix, mms_query_t *Q, int32_t q, int32_t k,
                                 const mms_round_reply_t *rep, const int64_t *oid,
                                 const float *osc, const int *ol, const int32_t *op_, int32_t kq) {
    const int32_t D = ix->dim, H2 = ix->emb_dim;
    int32_t m = 0;
    while (m < kq && oid[m] >= 0) m++;
    Q->nnb = m;
    MMS_CALL(mms_malloc((size_t)(m + 1) * sizeof(int64_t), &Q->nb_id));
    MMS_CALL(mms_malloc((size_t)(m + 1) * sizeof(float), &Q->nb_score));
    MMS_CALL(mms_malloc((size_t)(m + 1) * (size_t)D * sizeof(float), &Q->nb_x));
    MMS_CALL(mms_malloc((size_t)(m + 1) * (size_t)H2 * sizeof(float), &Q->nb_h1));
    for (int32_t i = 0; i < m; i++) {
        const mms_round_reply_t *r = &rep[ol[i]];
        size_t at = (size_t)q * k + (size_t)op_[i];
        Q->nb_id[i] = oid[i];
        Q->nb_score[i] = osc[i];
        memcpy(Q->nb_x + (size_t)i * D, r->x + at * D, (size_t)D * sizeof(float));
        memcpy(Q->nb_h1 + (size_t)i * H2, r->h1 + at * H2, (size_t)H2 * sizeof(float));
    }
    return MMS_OK;
}

/* The global merge of a round's replies (gathered on this rank): per query,
 * the best kq of the ranks' lists; SEARCH fills the results, NEIGHBORS keeps
 * the neighbours with their x and h1 rows. */
static mms_status merge_round(mms_engine_t *e, int op, mms_query_t **cq, int32_t nq, int32_t k) {
    const mms_index_t *ix = e->ix;
    const mms_round_t *rd = &e->round;
    int nl = 0;
    const int64_t **li = NULL;
    const float **ls = NULL;
    mms_round_reply_t *rep = NULL;
    int64_t *oid = NULL;
    float *osc = NULL;
    int *ol = NULL;
    int32_t *op_ = NULL;
    mms_status s = mms_malloc((size_t)e->size * sizeof *li, &li);
    if (s == MMS_OK) s = mms_malloc((size_t)e->size * sizeof *ls, &ls);
    if (s == MMS_OK) s = mms_malloc((size_t)e->size * sizeof *rep, &rep);
    for (int r = 0; s == MMS_OK && r < e->size; r++)
        if (rd->counts[r] > 0)
            mms_round_reply_view(ix, rd->gathered + rd->displs[r], op, nq, k, &rep[nl++]);
    if (s == MMS_OK) s = mms_malloc((size_t)k * sizeof(int64_t), &oid);
    if (s == MMS_OK) s = mms_malloc((size_t)k * sizeof(float), &osc);
    if (s == MMS_OK) s = mms_malloc((size_t)k * sizeof(int), &ol);
    if (s == MMS_OK) s = mms_malloc((size_t)k * sizeof(int32_t), &op_);
    for (int32_t q = 0; s == MMS_OK && q < nq; q++) {
        mms_query_t *Q = cq[q];
        int32_t kq = op == MMS_ROUND_NEIGHBORS ? Q->neighbors : Q->k;
        for (int l = 0; l < nl; l++) {
            li[l] = rep[l].ids + (size_t)q * k;
            ls[l] = rep[l].scores + (size_t)q * k;
        }
        if (op == MMS_ROUND_SEARCH) {
            s = mms_topk_merge(li, ls, nl, k, kq, oid, osc, NULL, NULL);
            if (s == MMS_OK) s = mms_query_fill_results(ix, Q, oid, osc, kq);
            continue;
        }
        s = mms_topk_merge(li, ls, nl, k, kq, oid, osc, ol, op_);
        if (s == MMS_OK) s = keep_neighbors(ix, Q, q, k, rep, oid, osc, ol, op_, kq);
    }
    free(oid);
    free(osc);
    free(ol);
    free(op_);
    free(li);
    free(ls);
    free(rep);
    return s;
}

/* One op over the queries qs[0..n) (all active), chunked into rounds. A
 * failed round fails its queries only; non-OK only for an MPI failure. */
static mms_status run_op(mms_engine_t *e, int op, mms_query_t **qs, int n) {
    const mms_index_t *ix = e->ix;
    for (int from = 0; from < n;) {
        int32_t k;
        int to = chunk_end(ix, op, qs, n, from, &k);
        int32_t nq = to - from;
        mms_query_t **cq = qs + from;
        from = to;
        size_t rb = mms_round_reply_bytes(ix, op, nq, k);
        mms_status s = mms_grow(&e->round.gathered, 1, rb * (size_t)e->size, &e->round.gathered_cap);
        if (s != MMS_OK) { /* nothing was sent: the workers never knew */
            fail_queries(cq, nq, "coordinator out of memory");
            continue;
        }
        fill_payload(e, op, cq, nq);
        int32_t nprobe = cq[0]->nprobe;
        if (nprobe > 0 && choose_lists(e, op, nq, nprobe) != MMS_OK) {
            fail_queries(cq, nq, "choosing the lists failed");
            continue;
        }
        s = send_header(e, op, nq, k, nprobe);
        if (s == MMS_ERR_MPI) return s;
        if (s != MMS_OK) {
            fail_queries(cq, nq, "round failed");
            continue;
        }
        if (merge_round(e, op, cq, nq, k) != MMS_OK) fail_queries(cq, nq, "merge failed");
    }
    return MMS_OK;
}

static void add_timing(mms_response_t *r, const char *stage, double sec) {
    mms_response_add_timing(r, stage, (uint64_t)(sec * 1e6 + 0.5));
}

/* info's approximate-search entries: nlist (0: none), the nprobe a request
 * without its own gets (0: exact), and the lists probed when approximate. */
static mms_status info_ivf(const mms_engine_t *e, mms_response_t *r) {
    const int32_t nl = e->ix->ivf_nlist;
    MMS_CALL(mms_response_add_info_int(r, "nlist", nl));
    MMS_CALL(mms_response_add_info_int(r, "nprobe", mms_engine_nprobe(e, NULL)));
    int32_t np = e->nprobe > 0 ? e->nprobe : mms_ivf_default_nprobe(nl, e->ix->n_images);
    return mms_response_add_info_int(r, "nprobe_approx", nl > 0 ? (np < nl ? np : nl) : 0);
}

mms_status mms_engine_answer(mms_engine_t *e, const mms_request_t *reqs, const uint8_t *connect,
                             int n, mms_response_t *resps, mms_engine_trace_t *trace) {
    MMS_CHECK(e->rank == 0, MMS_ERR_ARG, "engine: only the coordinator answers requests");
    MMS_CHECK(!e->stopped, MMS_ERR_ARG, "engine: answer after stop");
    mms_engine_release_previous(e); /* the last batch's responses are out by now */
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
        if (reqs[i].op == MMS_OP_RELOAD) continue; /* the server's, after the batch */
        int c = connect ? connect[i] : MMS_ENGINE_CONNECT_IMAGE;
        mms_status ps = mms_query_prepare(ix, &reqs[i], c, &resps[i], &qs[i]);
        qs[i].nprobe = mms_engine_nprobe(e, &reqs[i]);
        if (ps != MMS_OK) {
            mms_response_set_error(&resps[i], MMS_PERR_INTERNAL, "%s", mms_error_message());
            qs[i].active = 0;
        }
        if (resps[i].ok && reqs[i].op == MMS_OP_INFO) {
            if (mms_query_info(ix, e->nworkers, &resps[i]) != MMS_OK ||
                info_ivf(e, &resps[i]) != MMS_OK)
                mms_response_set_error(&resps[i], MMS_PERR_INTERNAL, "%s", mms_error_message());
        }
    }
    double t1 = mms_now();
    st->prepare = t1 - t0;
    /* visual neighbours of every query image, one round (or a few) for the batch */
    int m = 0;
    for (int i = 0; s == MMS_OK && i < n; i++)
        if (qs[i].active && qs[i].need_nbrs) list[m++] = &qs[i];
    if (s == MMS_OK && m > 0) s = run_op(e, MMS_ROUND_NEIGHBORS, list, m);
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
    if (s == MMS_OK && m > 0) s = run_op(e, MMS_ROUND_SEARCH, list, m);
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
            if (trace->h1) {
                float *o = trace->h1 + (size_t)i * H2;
                if (q->h1) memcpy(o, q->h1, (size_t)H2 * sizeof(float));
                else memset(o, 0, (size_t)H2 * sizeof(float));
            }
            if (trace->x) {
                const int32_t D = ix->dim;
                float *o = trace->x + (size_t)i * D;
                if (q->xq) memcpy(o, q->xq, (size_t)D * sizeof(float));
                else memset(o, 0, (size_t)D * sizeof(float));
            }
            if (trace->kq) {
                const int32_t kd = ix->knn_dim;
                float *o = trace->kq + (size_t)i * kd;
                if (q->kq && q->need_nbrs) memcpy(o, q->kq, (size_t)kd * sizeof(float));
                else memset(o, 0, (size_t)kd * sizeof(float));
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
