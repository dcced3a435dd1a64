/* walks.h: random-walk co-occurrence pairs (the positives of unsupervised
 * GraphSAGE), generated across ranks, and the epoch schedule over them.
 *
 * Semantics of the GraphSAGE reference: from every node with at least one
 * neighbour, W walks (50) of length L (5) on the full graph; the walk records
 * the pair (start, node) for the node it stands on after 1 .. L-1 steps, except
 * when that node is the start itself. A pair slot is identified by
 *   slot = (start * W + walk) * (L - 1) + (step - 1)
 * and every step's choice is mms_rng_hash(seed, MMS_STREAM_WALK, start * W + walk,
 * step) mod degree, so the pairs are the same at any rank count.
 *
 * Distribution: a walker lives on the rank that owns the node it stands on and
 * moves between ranks with one MPI_Alltoallv per step; the finished pairs go to
 * the owner of the start node. Each rank ends with, for its owned start nodes,
 * the partner of every slot (-1 for an empty slot).
 *
 * Schedule: epoch e visits the global slot space in the order of a keyed
 * bijection (a Feistel permutation with cycle walking); step s takes positions
 * [s * slots_per_step, (s + 1) * slots_per_step), so every rank knows the whole
 * batch without communication and picks the slots whose start node it owns.
 */
#ifndef MMS_WALKS_H
#define MMS_WALKS_H

#include <mpi.h>
#include <stdint.h>

#include "mms_graph.h"
#include "mms_status.h"

typedef struct {
    int walks;   /* per start node (reference: 50) */
    int length;  /* reference: 5 -> up to 4 pairs per walk */
    uint64_t seed;
} mms_walk_params_t;

typedef struct {
    int64_t n_nodes;
    int walks, length, per_node; /* per_node = walks * (length - 1) */
    /* owned start nodes of this rank, sorted, and their slot partners */
    int64_t n_owned;
    const int64_t *owned;  /* borrowed from the caller */
    int64_t *partner;      /* n_owned * per_node, -1 = empty slot */
    int64_t valid_local, valid_total; /* non-empty slots here / over all ranks */
    double seconds;
    int64_t moved; /* walker moves that crossed ranks (all ranks) */
} mms_walk_pairs_t;

/* Collective. part[v] is the rank owning node v (n_nodes entries, all ranks);
 * owned (sorted) are this rank's nodes; full_local is the full CSR restricted to
 * owned rows: row i of it belongs to owned[i] (indices are global ids). */
mms_status mms_walks_generate(const mms_walk_params_t *wp, int64_t n_nodes, const int32_t *part,
                              const int64_t *owned, int64_t n_owned, const mms_csr_t *full_local,
                              MPI_Comm comm, mms_walk_pairs_t *out);
void mms_walk_pairs_free(mms_walk_pairs_t *wp);

/* The epoch permutation: a bijection of [0, n) keyed by (seed, epoch). */
typedef struct {
    uint64_t n, mask;
    uint32_t half_bits;
    uint64_t keys[4];
} mms_perm_t;

void mms_perm_init(mms_perm_t *p, uint64_t n, uint64_t seed, uint64_t epoch);
uint64_t mms_perm_apply(const mms_perm_t *p, uint64_t x);

/* Slot partner if the slot's start node is owned here (binary search in owned),
 * else -2; -1 for an owned but empty slot. *start gets the start node. */
int64_t mms_walk_pairs_lookup(const mms_walk_pairs_t *wp, uint64_t slot, int64_t *start);

#endif
