/* metis_part.h: k-way partition of the multi-modal graph (METIS or hash) and
 * the halos a training rank needs, plus the reader of a partition directory.
 *
 * Three layers, each usable alone:
 *   CSR level (metis_part.c)   node weights, a clean METIS input (symmetric, no
 *                              self loops, no duplicates), METIS k-way, hash
 *                              partition, edge cut and balance; pure arrays
 *   halos     (part_halo.c)    per part: owned nodes, 1-hop and 2-hop halo in
 *                              the sampling adjacency; statistics over all parts
 *   directory (part_io.c)      G/parts-P/ written atomically, opened and checked
 *                              against the graph by later steps (train, serve)
 * Partition directory (docs/partition.md):
 *   G/parts-P/manifest.msgpack     kind "partition": parts, graph_checksum, method,
 *                                  seed, imbalance, edge_cut, balance, per-part sizes
 *   G/parts-P/part.npy    <i4 N    part of every node (images, then tags)
 *   G/parts-P/part-p/owned.npy <i8 global ids owned by p, sorted
 *   G/parts-P/part-p/halo1.npy <i8 not owned, out-neighbour (adj) of an owned node, sorted
 *   G/parts-P/part-p/halo2.npy <i8 not owned nor halo1, out-neighbour of a halo1 node, sorted
 * Not MPI: METIS runs in one process on the whole graph.
 */
#ifndef MMS_METIS_PART_H
#define MMS_METIS_PART_H

#include <stddef.h>
#include <stdint.h>

#include "mms_graph.h"
#include "mms_rng.h"
#include "mms_status.h"

#define MMS_PARTITION_FORMAT 1
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

/* ---------------------------------------------------------------- directory */

typedef struct {
    int parts;
    mms_part_method method;
    uint64_t seed;    /* METIS_OPTION_SEED and the hash seed; < 2^31 */
    double imbalance; /* allowed max part weight / mean, >= 1 */
    int force;        /* replace an existing G/parts-P */
    int compare;      /* also compute the other method's figures (for the table) */
} mms_part_opts_t;

/* parts 0 (must be set), metis, seed 1, imbalance 1.05, no force, compare. */
void mms_part_opts_default(mms_part_opts_t *o);

/* "<graph_dir>/parts-<parts>" into out. */
mms_status mms_partition_path(const char *graph_dir, int parts, char *out, size_t cap);

/* Partition the graph in graph_dir and write graph_dir/parts-P atomically.
 * chosen receives the figures of the written partition; other (may be NULL)
 * those of the other method when o->compare (other->parts = 0 otherwise). Both
 * are overwritten (zeroed first) and the caller frees them with
 * mms_part_stats_free; on an error they hold nothing.
 * Errors: MMS_ERR_ARG for parts < 1 or > the number of image nodes,
 * MMS_ERR_EXISTS for an existing output without force, the graph's open error. */
mms_status mms_partition_write(const char *graph_dir, const mms_part_opts_t *o,
                               mms_part_stats_t *chosen, mms_part_stats_t *other);

/* An opened partition directory. part is memory-mapped (n_nodes entries). */
typedef struct {
    char dir[4096]; /* graph_dir/parts-P */
    int parts;
    int64_t n_nodes, n_images;
    int32_t dim; /* feature width of the graph (for halo bytes) */
    mms_part_method method;
    uint64_t seed;
    uint64_t graph_checksum;
    int64_t edge_cut;
    double balance;
    const int32_t *part;
    void *priv;
} mms_partition_t;

/* Open graph_dir/parts-<parts> and check it against the graph in graph_dir:
 * MMS_ERR_ARG "graph G has no partition into P parts; run mmsage partition ..."
 * when it does not exist, MMS_ERR_MISMATCH when it was made for another graph
 * (checksum) or has another part count. */
mms_status mms_partition_open(const char *graph_dir, int parts, mms_partition_t **out);
void mms_partition_close(mms_partition_t **pt);
/* Read part p's owned/halo1/halo2 lists (caller frees with mms_part_nodes_free);
 * checks sizes against the manifest and that owned nodes belong to p. */
mms_status mms_partition_load_part(const mms_partition_t *pt, int p, mms_part_nodes_t *out);

#endif
