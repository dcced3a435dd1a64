/* shard_round.h: a query round as every rank runs it, and the shard side of
 * it: the round's wire layout, what a shard rank computes for a NEIGHBORS or
 * SEARCH round, and the worker loop that serves rounds until told to stop.
 *
 * A round, seen from every rank (the coordinator is rank 0 of comm):
 *   1. header    MPI_Ibcast of MMS_ROUND_HDR_N int64 {op, nq, k, seq, 0...};
 *                workers wait for it politely (mms_round_serve: MPI_Test
 *                with a sleeping back-off, so an idle server costs no CPU)
 *   2. payload   MPI_Ibcast of the queries (NEIGHBORS: nq normalised kNN
 *                vectors; SEARCH: nq fused embeddings, then nq excluded node ids)
 *   3. local     each rank holding rows scans its shards (int8 filter + exact
 *                re-rank, or float scans) and merges its shards' lists
 *   4. status    MPI_Igather of a fixed MMS_ROUND_STATUS_BYTES block {status,
 *                message} from every rank, so the coordinator knows who failed
 *   5. data      MPI_Igatherv of the replies of the ranks that succeeded and
 *                hold rows (the others send 0 bytes, which the root expects).
 * Steps 2-5 are mms_round_body on every rank; the coordinator's side (sending
 * headers, chunking requests into rounds, the global merge, answering) is
 * coordinator/engine.c. A rank that fails (out of memory) fails only that
 * round; the ranks stay in step because every rank always enters steps 2, 4
 * and 5. Every wait polls the non-blocking collective (mms_round_wait,
 * mms_mpi_wait_polite): 5 ms of polls that yield the core, then naps of up to
 * 0.1 ms; the idle worker's wait for the next header naps up to 1 ms. So
 * waiting ranks leave the CPU to working ones on a shared or oversubscribed
 * node (docs/reliability.md, "Idle cost").
 * A RELOAD header (the coordinator switching every rank to another index
 * version between batches) is not a round: mms_round_next hands it back to
 * the caller (coordinator/engine.c, which owns the index), which runs the
 * reload's own steps (the path's broadcast, the open, the agreement) and then
 * serves rounds again with a new mms_round_t.
 * No protocol, no request parsing: rounds carry vectors and ids only.
 */
#ifndef MMS_SHARD_ROUND_H
#define MMS_SHARD_ROUND_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "mms_status.h"
#include "shard_scan.h"

/* ---------------------------------------------------------------- wire layout */

#define MMS_ROUND_HDR_N 8 /* header: int64 fields */
enum {
    MMS_ROUND_HDR_OP = 0,
    MMS_ROUND_HDR_NQ = 1,
    MMS_ROUND_HDR_K = 2,
    MMS_ROUND_HDR_SEQ = 3,
    MMS_ROUND_HDR_NPROBE = 4 /* lists per query after the payload (0: exact, every row) */
};
/* Header ops. RELOAD: {op, path bytes (with its NUL), 0, seq}; the path follows in a
 * second broadcast (engine.c). */
enum { MMS_ROUND_STOP = 0, MMS_ROUND_NEIGHBORS = 1, MMS_ROUND_SEARCH = 2, MMS_ROUND_RELOAD = 3 };
#define MMS_ROUND_MAX_Q 256                 /* most queries in one round */
#define MMS_ROUND_BUDGET ((size_t)32 << 20) /* reply bytes per rank a round aims at */
#define MMS_ROUND_STATUS_BYTES 256          /* {int64 status, message} per rank */
#define MMS_ROUND_LISTS_BYTES ((size_t)1 << 20) /* most bytes of probed lists in one round */

/* Bytes of a round's payload: NEIGHBORS nq x knn_dim floats; SEARCH nq x
 * emb_dim floats, then nq int64 excluded node ids (-1 = none). A round with
 * header nprobe > 0 (approximate search, docs/query.md "Approximate search")
 * carries nq x nprobe int32 list numbers after these bytes (-1 = none): the
 * lists of the space (vis for NEIGHBORS, emb for SEARCH) each query scans,
 * chosen by the coordinator; the workers scan only those lists' rows. */
size_t mms_round_payload_bytes(const mms_index_t *ix, int op, int64_t nq);

/* Bytes of one rank's reply (rounded up to 8 so replies sit 8-aligned side by
 * side): per query k entries of an id (int64) and a score (float), and for
 * NEIGHBORS also the entry's x (dim floats) and h1 (emb_dim floats). */
size_t mms_round_reply_bytes(const mms_index_t *ix, int op, int64_t nq, int64_t k);

/* A reply's arrays: ids, scores nq x k; NEIGHBORS only: x nq x k x dim, h1
 * nq x k x emb_dim (NULL for SEARCH). Entry j of query q is at q * k + j. */
typedef struct {
    int64_t *ids;
    float *scores, *x, *h1;
} mms_round_reply_t;

void mms_round_reply_view(const mms_index_t *ix, void *reply, int op, int32_t nq, int32_t k,
                          mms_round_reply_t *out);

/* ---------------------------------------------------------------- a rank's rounds */

/* One rank's round state. Buffers are owned (mms_round_close); comm and ix
 * are borrowed. Fields marked "root" exist on rank 0 only. */
typedef struct {
    MPI_Comm comm;
    int rank, size;
    const mms_index_t *ix;
    unsigned char *payload; /* preallocated for the largest round's payload */
    size_t payload_cap;
    unsigned char *reply;
    size_t reply_cap;
    int *rows_on;            /* root: 1 if rank r holds rows */
    char *status_all;        /* root: size x MMS_ROUND_STATUS_BYTES */
    int *counts, *displs;    /* root: reply bytes of rank r in gathered, and where */
    unsigned char *gathered; /* root: the replies of the last round (grown by the caller) */
    size_t gathered_cap;
    double last_round;       /* mms_now() at the end of the last round */
    mms_qscan_stats_t scans; /* this rank's own int8 scans, cumulative (root only counts) */
} mms_round_t;

/* Collective over comm: allocate r for index ix (its shard part opened on
 * this rank), agree on the outcome, and tell the root which ranks hold rows.
 * On failure every rank returns non-OK and r holds nothing. */
mms_status mms_round_open(mms_round_t *r, MPI_Comm comm, const mms_index_t *ix);
void mms_round_close(mms_round_t *r);

/* Complete a non-blocking collective politely: poll, yielding the core, for
 * 5 ms, then nap up to 0.1 ms between polls (blocking MPI calls spin). */
mms_status mms_round_wait(MPI_Request *rq);

/* Steps 2-5 of a round with header hdr, on every rank. The root fills the
 * payload before; after, r->gathered holds the replies of the ranks with
 * counts[r] > 0 at displs[r]. Returns MMS_ERR_INTERNAL (on the root, naming
 * the rank) when some rank failed its local part, MMS_ERR_MPI when MPI failed. */
mms_status mms_round_body(mms_round_t *r, const int64_t *hdr);

/* Workers (every rank but the root): serve rounds until a STOP header. Idle
 * waiting sleeps (no busy loop after a short spin). Returns non-OK only when
 * MPI fails, or (MMS_ERR_INTERNAL) at a header that is neither a round nor
 * STOP (a RELOAD needs mms_round_next's caller). */
mms_status mms_round_serve(mms_round_t *r);

/* Workers: serve NEIGHBORS and SEARCH rounds until any other header (STOP,
 * RELOAD), which is returned in hdr (MMS_ROUND_HDR_N int64) for the caller to
 * act on. Returns non-OK only when MPI fails. */
mms_status mms_round_next(mms_round_t *r, int64_t *hdr);

#endif
