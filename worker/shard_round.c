/* shard_round.c: a query round on every rank and the shard side of it (see
 * shard_round.h): the wire layout, the local scan and merge of a shard rank,
 * the status and data gathers, the polite waits and the worker loop. */
#define _GNU_SOURCE
#include "shard_round.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_array.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_topk.h"

#define SPIN_SECONDS 0.002    /* worker: poll this long after a round before sleeping */
#define SLEEP_MAX 1e-3        /* worker: longest sleep between polls when idle */
#define ROUND_SPIN 5e-3       /* inside a round: poll (yielding) this long, */
#define ROUND_SLEEP_MAX 1e-4  /* then nap at most this long */

/* ---------------------------------------------------------------- wire layout */

size_t mms_round_payload_bytes(const mms_index_t *ix, int op, int64_t nq) {
    if (op == MMS_ROUND_NEIGHBORS) return (size_t)nq * (size_t)ix->knn_dim * sizeof(float);
    return (size_t)nq * ((size_t)ix->emb_dim * sizeof(float) + sizeof(int64_t));
}

size_t mms_round_reply_bytes(const mms_index_t *ix, int op, int64_t nq, int64_t k) {
    size_t per = sizeof(int64_t) + sizeof(float);
    if (op == MMS_ROUND_NEIGHBORS) per += ((size_t)ix->dim + (size_t)ix->emb_dim) * sizeof(float);
    return ((size_t)nq * (size_t)k * per + 7) / 8 * 8; /* replies sit 8-aligned side by side */
}

void mms_round_reply_view(const mms_index_t *ix, void *reply, int op, int32_t nq, int32_t k,
                          mms_round_reply_t *out) {
    const size_t nk = (size_t)nq * (size_t)k;
    out->ids = reply;
    out->scores = (float *)(out->ids + nk);
    out->x = out->h1 = NULL;
    if (op == MMS_ROUND_NEIGHBORS) {
        out->x = out->scores + nk;
        out->h1 = out->x + nk * (size_t)ix->dim;
    }
}

/* ---------------------------------------------------------------- open / close */

mms_status mms_round_open(mms_round_t *r, MPI_Comm comm, const mms_index_t *ix) {
    memset(r, 0, sizeof *r);
    r->comm = comm;
    r->ix = ix;
    MMS_MPI_CALL(MPI_Comm_rank(comm, &r->rank));
    MMS_MPI_CALL(MPI_Comm_size(comm, &r->size));
    size_t a = mms_round_payload_bytes(ix, MMS_ROUND_NEIGHBORS, MMS_ROUND_MAX_Q);
    size_t b = mms_round_payload_bytes(ix, MMS_ROUND_SEARCH, MMS_ROUND_MAX_Q);
    mms_status s = mms_grow(&r->payload, 1, (a > b ? a : b) + MMS_ROUND_LISTS_BYTES, &r->payload_cap);
    if (s == MMS_OK && r->rank == 0) {
        s = mms_calloc((size_t)r->size, sizeof(int), &r->rows_on);
        if (s == MMS_OK) s = mms_calloc((size_t)r->size, sizeof(int), &r->counts);
        if (s == MMS_OK) s = mms_calloc((size_t)r->size, sizeof(int), &r->displs);
        if (s == MMS_OK) s = mms_calloc((size_t)r->size, MMS_ROUND_STATUS_BYTES, &r->status_all);
    }
    s = mms_mpi_agree(s, comm);
    if (s == MMS_OK) {
        int has = ix->nshard > 0 && ix->n_local > 0;
        int rc = MPI_Gather(&has, 1, MPI_INT, r->rows_on, 1, MPI_INT, 0, comm);
        if (rc != MPI_SUCCESS) {
            mms_mpi_error(rc, "MPI_Gather(rows)", __FILE__, __LINE__, __func__);
            s = MMS_ERR_MPI;
        }
    }
    if (s != MMS_OK) {
        mms_round_close(r);
        return s;
    }
    r->last_round = mms_now();
    return MMS_OK;
}

void mms_round_close(mms_round_t *r) {
    if (!r) return;
    free(r->payload);
    free(r->reply);
    free(r->rows_on);
    free(r->status_all);
    free(r->counts);
    free(r->displs);
    free(r->gathered);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- local work */

/* This rank's answer to a round into r->reply (mms_round_reply_bytes of it):
 * each shard's top-k (int8 filter, or a float scan), the shards' lists merged,
 * and for NEIGHBORS the x and h1 rows of every entry. */
static mms_status local_round(mms_round_t *r, int op, int32_t nq, int32_t k, int32_t nprobe) {
    const mms_index_t *ix = r->ix;
    const int ns = ix->nshard;
    const int32_t D = ix->dim, H2 = ix->emb_dim;
    const int32_t w = op == MMS_ROUND_NEIGHBORS ? ix->knn_dim : H2;
    MMS_CALL(mms_grow(&r->reply, 1, mms_round_reply_bytes(ix, op, nq, k), &r->reply_cap));
    mms_round_reply_t out;
    mms_round_reply_view(ix, r->reply, op, nq, k, &out);
    const float *Q = (const float *)r->payload;
    const int32_t *lists = nprobe > 0 ? (const int32_t *)(r->payload + mms_round_payload_bytes(ix, op, nq)) : NULL;
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
    if (s == MMS_OK && op == MMS_ROUND_SEARCH) {
        exn = malloc((size_t)nq * sizeof(int64_t) + 1);
        exr = malloc((size_t)nq * sizeof(int64_t) + 1);
        if (!exn || !exr) s = MMS_ERR_NOMEM;
        else memcpy(exn, r->payload + (size_t)nq * H2 * sizeof(float), (size_t)nq * sizeof(int64_t));
    }
    for (int si = 0; s == MMS_OK && si < ns; si++) {
        const mms_index_shard_t *sh = &ix->sh[si];
        int64_t *rw = rows + per * si;
        float *c = ssc + per * si;
        const float *X = op == MMS_ROUND_NEIGHBORS ? sh->vis : sh->emb;
        const mms_qmat_t *qm = op == MMS_ROUND_NEIGHBORS ? sh->qvis : sh->qemb;
        if (op == MMS_ROUND_SEARCH)
            for (int32_t q = 0; q < nq; q++) exr[q] = exn[q] >= 0 ? mms_index_shard_row(sh, exn[q]) : -1;
        if (sh->n == 0) {
            mms_topk_pad(rw, c, per);
        } else if (qm && lists && qm->q4 &&
                   (ix->list_scan == MMS_LIST_SCAN_CODES4 ||
                    mms_qmat_lists4_pays(qm, lists, nq, nprobe, k))) {
            if (r->rank == 0) r->scans.list_scans++, r->scans.codes4_scans++;
            s = mms_qmat_topk_lists4(qm, X, sh->ids, Q, nq, k, MMS_QSCAN4_REFINE(k), exr, lists,
                                     nprobe, rw, c,
                                     r->rank == 0 ? &r->scans : NULL);
        } else if (qm && lists && qm->lptr) {
            if (r->rank == 0) r->scans.list_scans++;
            s = mms_qmat_topk_lists(qm, X, sh->ids, Q, nq, k, exr, lists, nprobe, rw, c,
                                    r->rank == 0 ? &r->scans : NULL);
        } else if (qm) {
            s = mms_qmat_topk(qm, X, sh->ids, Q, nq, k, exr, rw, c, r->rank == 0 ? &r->scans : NULL);
        } else {
            /* float scan: row numbers as ids (ascending like the node ids, so ties agree) */
            s = mms_scan_float_live(X, sh->n, w, sh->dead, sh->n_dead, Q, nq, k, exr, rw, c);
        }
        for (size_t i = 0; s == MMS_OK && i < per; i++) sids[per * si + i] = rw[i] >= 0 ? sh->ids[rw[i]] : -1;
    }
    for (int32_t q = 0; s == MMS_OK && q < nq; q++) {
        for (int si = 0; si < ns; si++) {
            li[si] = sids + per * si + (size_t)q * k;
            ls[si] = ssc + per * si + (size_t)q * k;
        }
        s = mms_topk_merge(li, ls, ns, k, k, out.ids + (size_t)q * k, out.scores + (size_t)q * k,
                           olist, opos);
        if (s != MMS_OK) break;
        if (op != MMS_ROUND_NEIGHBORS) continue;
        for (int32_t i = 0; i < k; i++) {
            float *xo = out.x + ((size_t)q * k + i) * D, *ho = out.h1 + ((size_t)q * k + i) * H2;
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

/* ---------------------------------------------------------------- the round */

/* Inside a round every rank is busy or about to be: poll for ROUND_SPIN
 * (yielding the core between polls after the first 50 us, which costs
 * nothing on an idle core), so a normal round never sleeps and keeps its
 * latency; a longer wait (a descheduled peer on a shared node) naps up to
 * ROUND_SLEEP_MAX, at most 2 % on top of a wait that already took 5 ms. */
mms_status mms_round_wait(MPI_Request *rq) {
    return mms_mpi_wait_polite(rq, (mms_mpi_wait_t){.spin = ROUND_SPIN, .sleep_max = ROUND_SLEEP_MAX});
}

/* Root: reply counts and offsets from the status blocks; the first failure
 * becomes the round's error (naming its rank). */
static mms_status read_statuses(mms_round_t *r, size_t rb) {
    mms_status result = MMS_OK;
    int at = 0;
    for (int q = 0; q < r->size; q++) {
        int64_t c;
        memcpy(&c, r->status_all + (size_t)q * MMS_ROUND_STATUS_BYTES, sizeof c);
        r->counts[q] = c == MMS_OK && r->rows_on[q] ? (int)rb : 0;
        r->displs[q] = at;
        at += r->counts[q];
        if (c != MMS_OK && result == MMS_OK) {
            char msg[MMS_ROUND_STATUS_BYTES];
            memcpy(msg, r->status_all + (size_t)q * MMS_ROUND_STATUS_BYTES + 8,
                   MMS_ROUND_STATUS_BYTES - 8);
            msg[MMS_ROUND_STATUS_BYTES - 9] = '\0';
            mms_error_set(MMS_ERR_INTERNAL, __FILE__, __LINE__, __func__,
                          "shard search failed on rank %d: %s", q, msg);
            result = MMS_ERR_INTERNAL;
        }
    }
    return result;
}

mms_status mms_round_body(mms_round_t *r, const int64_t *hdr) {
    const int op = (int)hdr[MMS_ROUND_HDR_OP];
    const int32_t nq = (int32_t)hdr[MMS_ROUND_HDR_NQ], k = (int32_t)hdr[MMS_ROUND_HDR_K];
    const int32_t nprobe = (int32_t)hdr[MMS_ROUND_HDR_NPROBE];
    size_t lb = (size_t)nq * (size_t)(nprobe > 0 ? nprobe : 0) * sizeof(int32_t);
    size_t pb = mms_round_payload_bytes(r->ix, op, nq) + lb;
    MMS_CHECK(pb <= r->payload_cap && nq <= MMS_ROUND_MAX_Q && lb <= MMS_ROUND_LISTS_BYTES,
              MMS_ERR_INTERNAL, "engine: round of %d queries does not fit the payload buffer", nq);
    MPI_Request rq;
    MMS_MPI_CALL(MPI_Ibcast(r->payload, (int)pb, MPI_BYTE, 0, r->comm, &rq));
    MMS_CALL(mms_round_wait(&rq));
    mms_status local = MMS_OK;
    int has = r->ix->nshard > 0 && r->ix->n_local > 0;
    if (has) local = local_round(r, op, nq, k, nprobe);
    size_t rb = mms_round_reply_bytes(r->ix, op, nq, k);
    char st[MMS_ROUND_STATUS_BYTES];
    memset(st, 0, sizeof st);
    int64_t code = local;
    memcpy(st, &code, sizeof code);
    if (local != MMS_OK) snprintf(st + 8, MMS_ROUND_STATUS_BYTES - 8, "%s", mms_error_message());
    MMS_MPI_CALL(MPI_Igather(st, MMS_ROUND_STATUS_BYTES, MPI_BYTE, r->status_all,
                             MMS_ROUND_STATUS_BYTES, MPI_BYTE, 0, r->comm, &rq));
    MMS_CALL(mms_round_wait(&rq));
    int send = has && local == MMS_OK ? (int)rb : 0;
    mms_status result = r->rank == 0 ? read_statuses(r, rb) : MMS_OK;
    MMS_MPI_CALL(MPI_Igatherv(r->reply, send, MPI_BYTE, r->gathered, r->counts, r->displs,
                              MPI_BYTE, 0, r->comm, &rq));
    MMS_CALL(mms_round_wait(&rq));
    r->last_round = mms_now();
    return result;
}

/* ---------------------------------------------------------------- worker loop */

/* The next header: poll for SPIN_SECONDS after the last round (a client's
 * next request often follows at once), then sleep with a doubling back-off
 * up to SLEEP_MAX, so an idle worker costs next to no CPU and the first
 * query after a pause waits at most one nap longer. */
static mms_status wait_header(mms_round_t *r, int64_t *hdr) {
    MPI_Request rq;
    MMS_MPI_CALL(MPI_Ibcast(hdr, MMS_ROUND_HDR_N, MPI_INT64_T, 0, r->comm, &rq));
    double spin = SPIN_SECONDS - (mms_now() - r->last_round);
    return mms_mpi_wait_polite(&rq, (mms_mpi_wait_t){.spin = spin > 0 ? spin : 0, .sleep_max = SLEEP_MAX});
}

mms_status mms_round_next(mms_round_t *r, int64_t *hdr) {
    MMS_CHECK(r->rank != 0, MMS_ERR_ARG, "engine: the coordinator does not run the worker loop");
    for (;;) {
        MMS_CALL(wait_header(r, hdr));
        int64_t op = hdr[MMS_ROUND_HDR_OP];
        if (op != MMS_ROUND_NEIGHBORS && op != MMS_ROUND_SEARCH) return MMS_OK;
        mms_status s = mms_round_body(r, hdr);
        if (s != MMS_OK && s != MMS_ERR_INTERNAL) return s; /* MPI failure */
    }
}

mms_status mms_round_serve(mms_round_t *r) {
    int64_t hdr[MMS_ROUND_HDR_N];
    MMS_CALL(mms_round_next(r, hdr));
    MMS_CHECK(hdr[MMS_ROUND_HDR_OP] == MMS_ROUND_STOP, MMS_ERR_INTERNAL,
              "engine: round header op %lld is not served by mms_round_serve",
              (long long)hdr[MMS_ROUND_HDR_OP]);
    return MMS_OK;
}
