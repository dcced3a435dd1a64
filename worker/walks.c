/* walks.c: distributed random walks and the epoch permutation (see walks.h). */
#include "walks.h"

#include <stdlib.h>
#include <string.h>

#include "mms_array.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_rng.h"

typedef struct {
    int64_t start;
    int64_t cur;
    int32_t walk;
    int32_t step; /* moves made so far */
} walker_t;

typedef struct {
    int64_t slot;
    int64_t partner;
} pairrec_t;

/* Route items (of size sz) to ranks dest[i]; returns the received items. Collective. */
static mms_status exchange(const void *items, const int *dest, int64_t n, size_t sz, int nranks,
                           MPI_Comm comm, void **recv_out, int64_t *nrecv_out) {
    int *scount = NULL, *sdispl = NULL, *rcount = NULL, *rdispl = NULL;
    char *sbuf = NULL, *rbuf = NULL;
    int64_t *fill = NULL;
    mms_status s = MMS_OK;
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)nranks, sizeof(int), &scount));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)nranks, sizeof(int), &sdispl));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)nranks, sizeof(int), &rcount));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)nranks, sizeof(int), &rdispl));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)nranks, sizeof(int64_t), &fill));
    for (int64_t i = 0; i < n; i++) scount[dest[i]] += (int)sz;
    for (int r = 1; r < nranks; r++) sdispl[r] = sdispl[r - 1] + scount[r - 1];
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)n * sz + 1, &sbuf));
    for (int64_t i = 0; i < n; i++) {
        int r = dest[i];
        memcpy(sbuf + sdispl[r] + fill[r], (const char *)items + (size_t)i * sz, sz);
        fill[r] += (int64_t)sz;
    }
    if (MPI_Alltoall(scount, 1, MPI_INT, rcount, 1, MPI_INT, comm) != MPI_SUCCESS) {
        s = MMS_ERR_MPI;
        goto out;
    }
    int64_t total = 0;
    for (int r = 0; r < nranks; r++) {
        rdispl[r] = (int)total;
        total += rcount[r];
    }
    MMS_CHECK_GOTO(s, out, total < 2147483647LL, MMS_ERR_INTERNAL, "walk exchange too large");
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)total + 1, &rbuf));
    if (MPI_Alltoallv(sbuf, scount, sdispl, MPI_BYTE, rbuf, rcount, rdispl, MPI_BYTE, comm) !=
        MPI_SUCCESS) {
        s = MMS_ERR_MPI;
        goto out;
    }
    *recv_out = rbuf;
    rbuf = NULL;
    *nrecv_out = total / (int64_t)sz;
out:
    free(scount);
    free(sdispl);
    free(rcount);
    free(rdispl);
    free(fill);
    free(sbuf);
    free(rbuf);
    return s;
}

mms_status mms_walks_generate(const mms_walk_params_t *wp, int64_t n_nodes, const int32_t *part,
                              const int64_t *owned, int64_t n_owned, const mms_csr_t *full_local,
                              MPI_Comm comm, mms_walk_pairs_t *out) {
    int rank, nranks;
    MMS_MPI_CALL(MPI_Comm_rank(comm, &rank));
    MMS_MPI_CALL(MPI_Comm_size(comm, &nranks));
    memset(out, 0, sizeof *out);
    MMS_CHECK(wp->walks >= 1 && wp->length >= 2, MMS_ERR_ARG,
              "walks: need at least 1 walk of length 2 (got %d of length %d)", wp->walks, wp->length);
    double t0 = mms_now();
    out->n_nodes = n_nodes;
    out->walks = wp->walks;
    out->length = wp->length;
    out->per_node = wp->walks * (wp->length - 1);
    out->owned = owned;
    out->n_owned = n_owned;
    const int per = out->per_node, moves = wp->length - 1;
    MMS_CALL(mms_malloc((size_t)(n_owned ? n_owned : 1) * (size_t)per * sizeof(int64_t), &out->partner));
    for (int64_t i = 0; i < n_owned * per; i++) out->partner[i] = -1;

    /* rounds of start nodes bound the walker memory; all ranks run the same count */
    const int64_t chunk = 1 << 16;
    int64_t my_rounds = (n_owned + chunk - 1) / chunk, rounds = 0;
    MMS_MPI_CALL(MPI_Allreduce(&my_rounds, &rounds, 1, MPI_INT64_T, MPI_MAX, comm));
    walker_t *wk = NULL;
    pairrec_t *recs = NULL;
    int *dest = NULL;
    mms_status s = MMS_OK;
    int64_t moved = 0;
    mms_progress_t prog;
    mms_progress_begin(&prog, "random walks", rounds * moves, "steps");
    for (int64_t round = 0; round < rounds; round++) {
        int64_t lo = round * chunk, hi = lo + chunk < n_owned ? lo + chunk : n_owned;
        if (lo > n_owned) lo = hi = n_owned;
        int64_t nw = 0;
        MMS_CALL_GOTO(s, fail, mms_malloc((size_t)((hi - lo) * wp->walks + 1) * sizeof *wk, &wk));
        for (int64_t i = lo; i < hi; i++) {
            if (mms_csr_degree(full_local, i) == 0) continue;
            for (int w = 0; w < wp->walks; w++) {
                wk[nw].start = owned[i];
                wk[nw].cur = owned[i];
                wk[nw].walk = w;
                wk[nw].step = 0;
                nw++;
            }
        }
        int64_t nrec = 0, rec_cap = nw * moves + 1;
        MMS_CALL_GOTO(s, fail, mms_malloc((size_t)rec_cap * sizeof *recs, &recs));
        int *rdest = NULL;
        MMS_CALL_GOTO(s, fail, mms_malloc((size_t)rec_cap * sizeof *rdest, &rdest));
        for (int m = 1; m <= moves; m++) {
            /* walkers here stand on nodes this rank owns: take one step */
            MMS_CALL_GOTO(s, fail, mms_realloc((size_t)(nw + 1) * sizeof *dest, &dest));
            if (nrec + nw >= rec_cap) {
                rec_cap = nrec + nw + 1;
                MMS_CALL_GOTO(s, fail, mms_realloc((size_t)rec_cap * sizeof *recs, &recs));
                MMS_CALL_GOTO(s, fail, mms_realloc((size_t)rec_cap * sizeof *rdest, &rdest));
            }
            for (int64_t i = 0; i < nw; i++) {
                walker_t *x = &wk[i];
                int64_t li = mms_find_i64(owned, n_owned, x->cur);
                MMS_CHECK_GOTO(s, fail, li >= 0, MMS_ERR_INTERNAL,
                               "walker at node %lld reached rank %d, which does not own it",
                               (long long)x->cur, rank);
                int64_t d = mms_csr_degree(full_local, li);
                uint64_t key = (uint64_t)x->start * (uint64_t)wp->walks + (uint64_t)x->walk;
                uint64_t h = mms_rng_hash(wp->seed, MMS_STREAM_WALK, key, (uint64_t)m);
                x->cur = full_local->indices[full_local->indptr[li] + (int64_t)(h % (uint64_t)d)];
                x->step = m;
                if (x->cur != x->start) {
                    recs[nrec].slot = (int64_t)key * moves + (m - 1);
                    recs[nrec].partner = x->cur;
                    rdest[nrec] = part[x->start];
                    nrec++;
                }
                dest[i] = part[x->cur];
                moved += dest[i] != rank;
            }
            if (m < moves) {
                int64_t nrecv;
                void *rb;
                MMS_CALL_GOTO(s, fail, exchange(wk, dest, nw, sizeof *wk, nranks, comm, &rb, &nrecv));
                free(wk);
                wk = rb;
                nw = nrecv;
            }
            mms_progress_update(&prog, round * moves + m);
        }
        /* pairs home to the owner of their start node */
        void *rb;
        int64_t nrecv;
        s = exchange(recs, rdest, nrec, sizeof *recs, nranks, comm, &rb, &nrecv);
        free(rdest);
        if (s != MMS_OK) goto fail;
        pairrec_t *got = rb;
        for (int64_t i = 0; i < nrecv; i++) {
            int64_t key = got[i].slot / moves;
            int64_t start = key / wp->walks;
            int64_t li = mms_find_i64(owned, n_owned, start);
            MMS_CHECK_GOTO(s, fail, li >= 0, MMS_ERR_INTERNAL, "pair for a start node not owned here");
            int64_t within = (key % wp->walks) * moves + got[i].slot % moves;
            out->partner[li * per + within] = got[i].partner;
            out->valid_local++;
        }
        free(got);
        free(wk);
        wk = NULL;
        free(recs);
        recs = NULL;
    }
    mms_progress_end(&prog);
    MMS_MPI_CALL(MPI_Allreduce(&out->valid_local, &out->valid_total, 1, MPI_INT64_T, MPI_SUM, comm));
    MMS_MPI_CALL(MPI_Allreduce(&moved, &out->moved, 1, MPI_INT64_T, MPI_SUM, comm));
    free(dest);
    out->seconds = mms_now() - t0;
    return MMS_OK;
fail:
    free(wk);
    free(recs);
    free(dest);
    mms_walk_pairs_free(out);
    return s;
}

void mms_walk_pairs_free(mms_walk_pairs_t *wp) {
    if (!wp) return;
    free(wp->partner);
    wp->partner = NULL;
}

int64_t mms_walk_pairs_lookup(const mms_walk_pairs_t *wp, uint64_t slot, int64_t *start) {
    int moves = wp->length - 1;
    uint64_t key = slot / (uint64_t)moves;
    int64_t st = (int64_t)(key / (uint64_t)wp->walks);
    *start = st;
    int64_t li = mms_find_i64(wp->owned, wp->n_owned, st);
    if (li < 0) return -2;
    int64_t within = (int64_t)(key % (uint64_t)wp->walks) * moves + (int64_t)(slot % (uint64_t)moves);
    return wp->partner[li * wp->per_node + within];
}

/* ---------------------------------------------------------------- permutation */

void mms_perm_init(mms_perm_t *p, uint64_t n, uint64_t seed, uint64_t epoch) {
    p->n = n;
    uint32_t bits = 2;
    while (bits < 64 && ((uint64_t)1 << bits) < n) bits++;
    if (bits & 1) bits++; /* balanced Feistel halves */
    p->half_bits = bits / 2;
    p->mask = bits >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
    for (int r = 0; r < 4; r++) p->keys[r] = mms_rng_hash(seed, MMS_STREAM_SHUFFLE, epoch, (uint64_t)r);
}

static uint64_t feistel(const mms_perm_t *p, uint64_t x) {
    uint64_t hmask = ((uint64_t)1 << p->half_bits) - 1;
    uint64_t l = x >> p->half_bits, r = x & hmask;
    for (int round = 0; round < 4; round++) {
        uint64_t f = (r * 0x9E3779B97F4A7C15ull) ^ p->keys[round];
        f ^= f >> 29;
        f *= 0xBF58476D1CE4E5B9ull;
        f ^= f >> 32;
        uint64_t nl = r;
        r = (l ^ f) & hmask;
        l = nl;
    }
    return (l << p->half_bits) | r;
}

uint64_t mms_perm_apply(const mms_perm_t *p, uint64_t x) {
    /* cycle walking: the Feistel network permutes [0, 2^bits); repeat until the
     * value falls in [0, n). Expected < 4 rounds since 2^bits < 4n. */
    uint64_t y = feistel(p, x);
    while (y >= p->n) y = feistel(p, y);
    return y;
}
