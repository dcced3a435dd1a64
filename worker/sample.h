/* sample.h: GraphSAGE neighbour sampling with the reference's semantics, made
 * deterministic and independent of how targets are split across ranks.
 *
 * The williamleif reference builds a padded adjacency table of `cap` (100)
 * columns per node once, then per sampler call draws ONE random permutation of
 * the columns, shared by all rows, and keeps its first k columns. We emulate that
 * without materialising the table:
 *
 *   padded(v, c), 0 <= c < cap, for a node v with d = deg(v) in the capped CSR:
 *     d == 0    -> MMS_SAMPLE_DUMMY (the zero-feature dummy node)
 *     d >= cap  -> entry c of v's list (the CSR is expected to be capped already,
 *                  as mms_graph's `adj` is; entries beyond cap are never used)
 *     0 < d < cap -> entry  hash(seed, SAMPLE, gid(v), c) mod d
 *                  (resampling with replacement, fixed for the whole run)
 *   columns of a step: the first k entries of a permutation of 0..cap-1 keyed by
 *     (seed, SAMPLE, step, hop); hop 1 = the target's hop (k = s2 = 10), hop 2 =
 *     the outer hop (k = s1 = 25).
 *
 * So the samples of a node in a step are a pure function of (seed, step, hop,
 * global id): every rank and every split of a batch gets the same ones, and a
 * node appearing twice in a batch has the same neighbours both times (as in the
 * reference, whose permutation is shared by all rows).
 *
 * Node indices passed in and returned are LOCAL (the caller's index space, int32);
 * `gid` maps them to global ids for the hash (NULL = identity). No MPI, no I/O,
 * no allocation.
 */
#ifndef MMS_SAMPLE_H
#define MMS_SAMPLE_H

#include <stdint.h>

#include "mms_graph.h"
#include "mms_status.h"

#define MMS_SAMPLE_DUMMY (-1)

/* Column c (0 <= c < cap) of node v's padded row. v must be a valid local id.
 * Returns a local id or MMS_SAMPLE_DUMMY. */
int32_t mms_sample_padded(const mms_csr_t *adj, const int64_t *gid, uint64_t seed, int32_t cap,
                          int32_t v, int32_t c);

/* cols[0..k): the first k columns of the permutation of 0..cap-1 keyed by
 * (seed, step, hop). Requires 0 < k <= cap, hop >= 0, step < 2^60. */
mms_status mms_sample_columns(uint64_t seed, uint64_t step, int hop, int32_t cap, int32_t k,
                              int32_t *cols);

/* out[i*k + j] = padded(nodes[i], cols[j]) for i < n, j < k.
 * adj: capped CSR in local ids (borrowed); gid: n_local global ids or NULL.
 * nodes: n local ids (each 0 <= v < adj->n); out: caller buffer of n*k. */
mms_status mms_sample_neighbours(const mms_csr_t *adj, const int64_t *gid, uint64_t seed,
                                 int32_t cap, const int32_t *cols, int32_t k,
                                 const int32_t *nodes, int64_t n, int32_t *out);

/* The same padding rule applied to an explicit list (an inductive query's
 * neighbour list, which is not in the CSR): out[j] = list entry
 *   j' = cols[j]              if len >= cap
 *   hash(seed, SAMPLE, key, cols[j]) mod len   if 0 < len < cap
 *   MMS_SAMPLE_DUMMY          if len == 0
 * key identifies the query (e.g. a query id; it plays the role of gid).
 * Use it to emulate the reference's query sampling; the query path can also
 * use the list as it is (see mms_sage_query). */
mms_status mms_sample_list(const int32_t *list, int32_t len, uint64_t seed, uint64_t key,
                           int32_t cap, const int32_t *cols, int32_t k, int32_t *out);

#endif
