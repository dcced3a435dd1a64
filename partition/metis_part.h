/* metis_part.h: k-way partition of the multi-modal graph (METIS or hash) and
 * the halos a training rank needs. The partition directory (writing it,
 * opening it for train, embed and serve) is part_dir.h.
 *
 * Two layers, each usable alone:
 *   CSR level (metis_part.c)   node weights, a clean METIS input (symmetric, no
 *                              self loops, no duplicates), METIS k-way, hash
 *                              partition, edge cut and balance; pure arrays
 *   halos     (part_halo.c)    per part: owned nodes, 1-hop and 2-hop halo in
 *                              the sampling adjacency; statistics over all parts
 * Not MPI: METIS runs in one process on the whole graph. No file I/O.
 */
#ifndef MMS_METIS_PART_H
#define MMS_METIS_PART_H

#include <stddef.h>
#include <stdint.h>

#include "mms_graph.h"
#include "mms_rng.h"
#include "mms_status.h"

/* Node weight = 1 + min(degree in adj, MMS_PART_WEIGHT_CAP). */
#define MMS_PART_WEIGHT_CAP MMS_GRAPH_DEGREE_CAP
/* RNG stream of the hash partition. */
#define MMS_PART_HASH_STREAM ((uint32_t)MMS_STREAM_PARTITION)

typedef enum { MMS_PART_METIS = 0, MMS_PART_HASH = 1 } mms_part_method;

/* "metis" / "hash"; NULL for another value. */
const char *mms_part_method_name(mms_part_method m);
/* Parse "metis" / "hash" (MMS_ERR_ARG naming the bad value otherwise). */
mms_status mms_part_method_parse(const char *s, mms_part_method *out);

/* ---------------------------------------------------------------- CSR level */

/* vwgt[v] = 1 + min(deg_adj(v), cap) for v < adj->n (the training work of v:
 * a walk start plus walk visits, which grow with degree, capped so that no hub
 * outweighs a part). vwgt has adj->n entries. Returns the total in *total. */
void mms_part_node_weights(const mms_csr_t *adj, int64_t cap, int32_t *vwgt, int64_t *total);

/* Clean copy of g for METIS: rows sorted, self loops and duplicate entries
 * dropped (counts in *self_loops / *duplicates, either may be NULL), weights
 * NULL. Fails with MMS_ERR_FORMAT naming an edge if g is not symmetric.
 * out owns its arrays (mms_csr_free). */
mms_status mms_part_clean(const mms_csr_t *g, mms_csr_t *out, int64_t *self_loops,
                          int64_t *duplicates);

/* METIS_PartGraphKway on a clean graph (mms_part_clean) with node weights vwgt
 * (NULL = unit), unit edge weights, UFACTOR = 1000 * (imbalance - 1) and a fixed
 * seed: the same input gives the same part[] (a caller's buffer of g->n
 * entries). parts = 1 needs no METIS (all 0, cut 0). *edge_cut is METIS's value.
 * seed must be in [0, 2^31). Fails with MMS_ERR_ARG for bad parts/imbalance/seed
 * or a graph too large for METIS's 32-bit idx_t, MMS_ERR_NOMEM or MMS_ERR_LIB
 * (with METIS's code) when METIS fails. */
mms_status mms_part_metis(const mms_csr_t *g, const int32_t *vwgt, int parts, double imbalance,
                          uint64_t seed, int32_t *part, int64_t *edge_cut);

/* part[v] = mms_rng_hash(seed, MMS_PART_HASH_STREAM, v, 0) mod parts, v < n. */
void mms_part_hash(int64_t n, int parts, uint64_t seed, int32_t *part);

/* Undirected edges {u, v}, u != v, with part[u] != part[v], on a clean graph
 * (each edge is stored twice; counted once). */
int64_t mms_part_edge_cut(const mms_csr_t *g, const int32_t *part);

/* Sum of vwgt (NULL = unit) per part into weight[parts]; returns the balance
 * max(weight) / mean(weight). Fails with MMS_ERR_ARG on a part id outside
 * [0, parts). */
mms_status mms_part_weights(int64_t n, const int32_t *part, int parts, const int32_t *vwgt,
                            int64_t *weight, double *balance);

/* ---------------------------------------------------------------- halos */

/* The nodes one part needs: owned, 1-hop and 2-hop halo; all sorted ascending. */
typedef struct {
    int64_t *owned, *halo1, *halo2;
    int64_t n_owned, n_halo1, n_halo2;
} mms_part_nodes_t;

void mms_part_nodes_free(mms_part_nodes_t *pn);

/* Computes mms_part_nodes_t for part after part with O(n) scratch reused:
 * owned lists by one counting sort, halos by marking out-neighbours in adj
 * (the capped sampling adjacency, which need not be symmetric). */
typedef struct mms_halo_builder mms_halo_builder_t;

/* Borrows adj and part (they must outlive the builder). */
mms_status mms_halo_builder_create(const mms_csr_t *adj, const int32_t *part, int parts,
                                   mms_halo_builder_t **out);
/* Fills *out (caller frees with mms_part_nodes_free) for part p. */
mms_status mms_halo_builder_part(mms_halo_builder_t *hb, int p, mms_part_nodes_t *out);
void mms_halo_builder_destroy(mms_halo_builder_t **hb);

/* Figures of one partition (arrays have parts entries, owned by the struct). */
typedef struct {
    mms_part_method method;
    int parts;
    int64_t edges;    /* undirected edges of the clean full graph */
    int64_t edge_cut; /* recomputed by mms_part_edge_cut */
    double balance;   /* max part weight / mean part weight */
    int64_t *weight, *owned, *halo1, *halo2;
} mms_part_stats_t;

void mms_part_stats_free(mms_part_stats_t *st);
/* Min, mean and max of v[0..n). */
void mms_part_minmeanmax(const int64_t *v, int n, int64_t *mn, double *mean, int64_t *mx);

/* Called once per part, in order, with that part's lists (borrowed for the call). */
typedef mms_status (*mms_part_each_fn)(void *ctx, int p, const mms_part_nodes_t *pn);

/* Edge cut and balance on clean (vwgt: node weights, NULL = unit), halo sizes on
 * adj, for a given part[]; st->method is set by the caller. If each is not NULL
 * it sees every part's lists (to write them) and a failure it returns stops the
 * computation. Fills *st (free with mms_part_stats_free). */
mms_status mms_part_stats_compute(const mms_csr_t *clean, const mms_csr_t *adj,
                                  const int32_t *vwgt, const int32_t *part, int parts,
                                  mms_part_each_fn each, void *ctx, mms_part_stats_t *st);

#endif
