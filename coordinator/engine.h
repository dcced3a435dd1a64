/* engine.h: the query engine over an index opened on every rank (index.h):
 * the public API of `serve`, `search` and `eval` (app/), the tests and the
 * benchmarks. docs/query.md gives the semantics.
 *
 * Three layers, each usable on its own:
 *
 *  1. mms_qmat_*: exact top-k by inner product with an int8 filter, the scan
 *     a shard rank runs (worker/shard_scan.h; no MPI, no index).
 *
 *  2. mms_query_* (engine_query.c): one process's share of a query: validate
 *     a request against the index, build the query node's inputs (PCA, JPEG
 *     descriptor, kNN vector, tag lookup), embed it with the trained model
 *     over an explicit neighbour list, fuse with the slider, predict tags,
 *     decorate results. No MPI: the neighbour rows it needs are handed in by
 *     the caller.
 *
 *  3. mms_engine_* (engine.c): the thin MPI layer. Rank 0 coordinates; the
 *     ranks that hold shards are workers. Per batch of requests: one
 *     NEIGHBORS round (the coordinator broadcasts the normalised kNN vectors,
 *     each worker returns its local top-k with those images' x and h1 rows,
 *     the coordinator merges) and one SEARCH round (broadcast of the fused
 *     embeddings and exclusions, local exact top-k, merge), each chunked to
 *     bounded messages. Every round gathers a status from every rank first, so
 *     a failing worker fails the round (an "internal" error response) instead
 *     of hanging anyone. A round's wire layout and the shard side of it are
 *     worker/shard_round.h. Layouts: serve (rank 0 coordinates only; ranks
 *     1..P-1 hold the shards) and search (every rank holds shards; rank 0 also
 *     coordinates).
 */
#ifndef MMS_ENGINE_H
#define MMS_ENGINE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "shard_scan.h"
#include "mms_status.h"
#include "protocol.h"

/* ================================================================ 2. query */

/* How the query node connects to the graph (request field "connect"). */
typedef enum {
    MMS_ENGINE_CONNECT_IMAGE = 0, /* its `neighbors` nearest training images (default) */
    MMS_ENGINE_CONNECT_TAGS = 1,  /* its known tags only */
    MMS_ENGINE_CONNECT_BOTH = 2   /* both */
} mms_engine_connect;

const char *mms_engine_connect_name(int c);
/* "image" / "tags" / "both" -> code; -1 if unknown. */
int mms_engine_connect_parse(const char *s);

/* Largest k / neighbors / tag_k / tags per request the engine accepts (the
 * protocol's limits; the engine re-checks caller-built requests). */
#define MMS_ENGINE_K_MAX MMS_PROTO_K_MAX

/* One request on its way through a batch (coordinator side). Buffers are
 * owned (mms_query_free). */
typedef struct {
    const mms_request_t *req; /* borrowed */
    mms_response_t *resp;     /* borrowed: errors, warnings, results go here */
    int active;     /* 1 while there is work left; 0 once failed or answered */
    int op;         /* the request's op */
    int has_image;  /* image or jpeg */
    int connect;    /* effective connection mode */
    int embed;      /* z(q) is computed (an image whose embedding is used) */
    int need_nbrs;  /* needs the NEIGHBORS round (image neighbours) */
    int search;     /* needs the SEARCH round */
    int predict;    /* predict tags */
    int k, neighbors, tag_k;
    float w;        /* w_visual */
    int concept_node; /* E_t is z of a node connected to the tags (MMS_CONCEPT_NODE, ntag > 0) */
    int64_t exclude; /* node id to drop from the results, or -1 */
    int32_t ntag;   /* distinct known tags, in request order */
    int32_t *tag;
    int32_t nneg;   /* distinct known negative tags (not also among tag) */
    int32_t *neg;
    float *xq;      /* dim: the query node's input */
    float *kq;      /* knn_dim: L2-normalised kNN vector (need_nbrs) */
    int32_t nnb;    /* image neighbours found (<= neighbors) */
    int64_t *nb_id;
    float *nb_score, *nb_x, *nb_h1; /* nnb; nnb x dim; nnb x emb_dim */
    float *z;       /* emb_dim: E_img = z(q) (has_image) */
    float *h1;      /* emb_dim: the query node's layer-1 state h1(q) (zeros unless embedded) */
    float *E;       /* emb_dim: the fused query embedding */
    float *zc;      /* emb_dim: E_t as a tags-only node (concept_node) */
    int32_t nprobe; /* inverted lists probed per round (engine.c; 0: exact, every row) */
} mms_query_t;

/* Validate req against ix (coordinator part) and fill q. Request errors (wrong
 * vector width, a JPEG that does not decode, no usable input, a value out of
 * range in a caller-built request, ...) are written to resp with a protocol
 * code and leave q->active = 0; unknown keywords become warnings. connect is
 * an MMS_ENGINE_CONNECT_* value. Returns non-OK only for internal failures
 * (out of memory). */
mms_status mms_query_prepare(const mms_index_t *ix, const mms_request_t *req, int connect,
                             mms_response_t *resp, mms_query_t *q);
void mms_query_free(mms_query_t *q);

/* Inductive embedding of nq query nodes (no sampling, every neighbour counts
 * once, the embedding pass's definition, worker/embed.h):
 *   h1(q) = ReLU([xq W1s || mean_e x_e W1n]),  z(q) = normalise([h1(q) W2s || mean_e h1_e W2n])
 * over entries e in [ptr[q], ptr[q+1]) with global node ids gid[e]: an image
 * node (gid < n_images) uses nb_x row e (dim) and nb_h1 row e (emb_dim); a tag
 * node uses the model's tag vector and the index's stored tag h1 (its rows in
 * nb_x / nb_h1 are not read; nb_x / nb_h1 may be NULL when there is no image
 * entry). xq: nq x dim; z: nq x emb_dim. Coordinator part of ix. */
mms_status mms_query_embed(const mms_index_t *ix, int64_t nq, const float *xq, const int64_t *ptr,
                           const int64_t *gid, const float *nb_x, const float *nb_h1, float *z);
/* The same, also writing the layer-1 states h1(q) (nq x emb_dim) when h1_out
 * is not NULL: what `mmsage add` stores so that an added image can serve as
 * a later query's neighbour. */
mms_status mms_query_embed_h1(const mms_index_t *ix, int64_t nq, const float *xq,
                              const int64_t *ptr, const int64_t *gid, const float *nb_x,
                              const float *nb_h1, float *z, float *h1_out);

/* E = (w z + (1 - w) t) / 2 with both; E = z without t; E = t without z. n floats. */
void mms_query_fuse(int32_t n, const float *z, const float *t, float w, float *E);

/* The mean of the stored embeddings of tags[0..n) (n >= 1) into out (emb_dim). */
void mms_query_tag_mean(const mms_index_t *ix, const int32_t *tags, int32_t n, float *out);

/* For the active queries of qs[0..n) (after their neighbours are in): build the
 * neighbour lists per connection mode, embed (one batched call), fuse E, and
 * predict tags where asked. */
mms_status mms_query_finish_embedding(const mms_index_t *ix, mms_query_t *qs, int n);

/* Fill q->resp with the results (ids/scores: k entries, -1 padding, as merged). */
mms_status mms_query_fill_results(const mms_index_t *ix, mms_query_t *q, const int64_t *ids,
                                  const float *scores, int32_t k);

/* Answer op "info" from the index's description. */
mms_status mms_query_info(const mms_index_t *ix, int nworkers, mms_response_t *resp);

/* ================================================================ 3. engine */

typedef enum {
    MMS_ENGINE_SERVE = 0, /* rank 0 coordinates only; ranks 1..P-1 hold the shards (P >= 2) */
    MMS_ENGINE_SEARCH = 1 /* every rank holds shards; rank 0 also coordinates */
} mms_engine_mode;

typedef struct {
    const char *index;   /* index directory */
    const char *catalog; /* overrides the index manifest's catalog (NULL: the manifest's) */
    mms_engine_mode mode;
    int filter;          /* 1 (default): int8 filter + exact re-rank; 0: float scans (mms_topk_scan) */
    int list_scan;       /* mms_list_scan (worker/index.h): AUTO (default) scans a round's
                            probed lists from their 4-bit codes with a float re-rank when
                            that pays, else with the int8 filter (exact within the lists);
                            CODES4, INT8 force one (docs/query.md "Which list scan") */
    /* Approximate search (docs/query.md "Approximate search (IVF)"), on an index
     * with inverted lists; a request's own `nprobe` / `exact` wins: */
    int32_t nprobe;      /* > 0: lists probed per query by default (capped at nlist);
                            0 (default): the index's default nprobe from MMS_IVF_EXACT_BELOW
                            live images up, exact below */
    int exact;           /* 1: exact by default whatever the size (requests may still ask for
                            nprobe); -1: approximate by default whatever the size (nprobe, or
                            the index's default nprobe); 0: by size */
} mms_engine_params_t;

/* The list scan named by s ("auto", "codes4", "int8") into *out; MMS_ERR_ARG
 * naming the option opt otherwise. int8_flag (the older `--int8-lists`)
 * selects "int8" and conflicts with any other explicit choice. */
mms_status mms_engine_list_scan_parse(const char *opt, const char *s, int int8_flag, int *out);
#define MMS_ENGINE_LIST_SCAN_HELP                                                                  \
    "how probed lists are scanned: auto (the 4-bit codes + float re-rank when the probed lists "   \
    "hold enough rows per query to pay for it, else the int8 filter, exact within the lists), "    \
    "codes4, int8 (docs/query.md)"

void mms_engine_params_default(mms_engine_params_t *p);

typedef struct mms_engine mms_engine_t;

/* Collective over comm (duplicated inside): every rank opens its part of the
 * index and all agree on the outcome. On failure every rank returns non-OK. */
mms_status mms_engine_open(const mms_engine_params_t *p, MPI_Comm comm, mms_engine_t **out);
/* Collective (MPI_Comm_free of the duplicate): every rank, after the
 * coordinator's mms_engine_stop (workers return from mms_engine_worker_loop
 * only then). NULL is a no-op. */
void mms_engine_close(mms_engine_t **e);

int mms_engine_is_coordinator(const mms_engine_t *e);
int mms_engine_workers(const mms_engine_t *e);
const mms_index_t *mms_engine_index(const mms_engine_t *e);

/* Optional per-request outputs for tests, benchmarks and `add` (arrays of n
 * rows, each may be NULL): the fused embedding E, z(q) and h1(q) (emb_dim
 * floats; zeros when absent), the query node's input x (dim floats), the
 * unit kNN-space vector of the NEIGHBORS round kq (knn_dim floats; zeros
 * when the query had no neighbour round), and the merged visual neighbours
 * (max_nbrs node ids, -1 padding). E and kq are the payloads of the two
 * rounds: what bench_query --dump-queries writes for the peers. */
typedef struct {
    float *E, *z, *h1, *x, *kq;
    int64_t *nbrs;
    int32_t max_nbrs;
} mms_engine_trace_t;

/* The lists a request is searched with (0: exact): the request's `exact` /
 * `nprobe`, else the engine's defaults (mms_engine_params_t), else the size
 * rule; 0 on an index without lists or with float scans. Coordinator. */
int32_t mms_engine_nprobe(const mms_engine_t *e, const mms_request_t *req);

/* Stage times of the last mms_engine_answer (seconds). */
typedef struct {
    double prepare, neighbors, embed, search, decorate;
    int rounds;              /* MPI rounds since open (cumulative) */
    mms_qscan_stats_t local; /* the coordinator's own shard scans, cumulative */
} mms_engine_stats_t;

/* Coordinator only; collective with the workers' loops. Answers reqs[0..n)
 * into resps (prepared as netserver.h describes: mms_response_init, reserved
 * results/tags; a response already failed is skipped). connect: n modes
 * (MMS_ENGINE_CONNECT_*), or NULL for "image". A request-level problem becomes
 * that response's error; a failed round (a worker out of memory, ...) fails
 * the requests in it with "internal". A request of op reload is left
 * untouched (the server answers it with mms_engine_reload after the batch).
 * Returns non-OK only when the engine cannot go on (an MPI failure). */
mms_status mms_engine_answer(mms_engine_t *e, const mms_request_t *reqs, const uint8_t *connect,
                             int n, mms_response_t *resps, mms_engine_trace_t *trace);

/* Workers (every rank but the coordinator): serve rounds until the
 * coordinator's mms_engine_stop (mms_round_next of worker/shard_round.h), and
 * take part in the coordinator's mms_engine_reload between rounds.
 * Idle waiting sleeps (no busy loop after a short spin), so an idle server
 * costs no CPU. MMS_ERR_ARG on the coordinator. */
mms_status mms_engine_worker_loop(mms_engine_t *e);
/* Coordinator: end the workers' loops. Idempotent. */
mms_status mms_engine_stop(mms_engine_t *e);

void mms_engine_stats(const mms_engine_t *e, mms_engine_stats_t *out);

/* ---------------------------------------------------------------- reload */

/* What a reload did (coordinator). dirs are the resolved directories. */
typedef struct {
    int64_t old_version, new_version;
    char old_dir[MMS_PATH_MAX], new_dir[MMS_PATH_MAX];
    double seconds; /* from the decision to the switch (or the refusal) */
} mms_engine_reload_t;

/* Coordinator only; collective with the workers' loops (mms_engine_worker_loop
 * acts on it), called between batches (never inside mms_engine_answer).
 * Switches every rank to the index version at dir, or, when dir is NULL, at
 * the path the engine was opened with (re-resolved now: a `current` symlink
 * the nightly job moved names the new version). The coordinator resolves the
 * path with realpath(3) and broadcasts the result, so every rank opens the
 * same directory even if the link moves meanwhile. Every rank opens the new
 * version beside the old one with the engine's options (so two versions are
 * in memory until the switch), the ranks agree, and then either every rank
 * switches (the old index and round state are freed; widths may differ) or
 * every rank keeps the old version: a missing or corrupt file on any rank, or
 * a rank out of memory, refuses the reload with that rank's message (naming
 * the file), logged once by the coordinator and left in mms_error_message().
 * Returns MMS_OK on a switch; MMS_ERR_MPI when MPI failed (the engine cannot
 * go on); any other code when the reload was refused and the old version
 * serves on. out (may be NULL) is filled either way. docs/query.md, "Reload".
 * The workers free the old version at once; the coordinator keeps its part
 * (whose ids, tags and paths the responses of the last mms_engine_answer
 * borrow) until mms_engine_release_previous, the next mms_engine_answer or
 * mms_engine_reload, or mms_engine_close. */
mms_status mms_engine_reload(mms_engine_t *e, const char *dir, mms_engine_reload_t *out);

/* Coordinator: free the version a reload replaced, once no response borrows
 * its strings any more (the server calls it after each poll round). NULL and
 * nothing to free are no-ops. */
void mms_engine_release_previous(mms_engine_t *e);

#endif
