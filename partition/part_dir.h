/* part_dir.h: the partition directory G/parts-P, the one owner of its
 * format: written once, atomically, by `mmsage partition`
 * (mms_partition_write), opened and checked against its graph by the steps
 * that use it (train, embed: mms_partition_open, mms_partition_load_part).
 *
 * Directory (docs/partition.md):
 *   G/parts-P/manifest.msgpack     kind "partition": parts, graph_checksum, method,
 *                                  seed, imbalance, edge_cut, balance, per-part sizes
 *   G/parts-P/part.npy    <i4 N    part of every node (images, then tags)
 *   G/parts-P/part-p/owned.npy <i8 global ids owned by p, sorted
 *   G/parts-P/part-p/halo1.npy <i8 not owned, out-neighbour (adj) of an owned node, sorted
 *   G/parts-P/part-p/halo2.npy <i8 not owned nor halo1, out-neighbour of a halo1 node, sorted
 * The partitioning itself (METIS, hash, halos, figures) is metis_part.h. No MPI:
 * each rank opens the directory and reads its own part.
 */
#ifndef MMS_PART_DIR_H
#define MMS_PART_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "metis_part.h"
#include "mms_status.h"

#define MMS_PARTITION_FORMAT 1

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
