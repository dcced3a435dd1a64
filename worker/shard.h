/* shard.h: what one training rank holds of the graph.
 *
 * A rank owns one part of a METIS partition (partition/part_dir.h). Its
 * local node space is [owned | halo1 | halo2], each group sorted by global id:
 * owned nodes are this rank's targets, halo1 their sampled neighbours, halo2
 * the neighbours of those (2-layer GraphSAGE reaches two hops). The rank keeps
 *   - the sampling adjacency rows of owned and halo1 nodes, in local indices
 *     (halo2 rows are empty: nothing samples from them),
 *   - the full-graph rows of owned nodes, in global ids (for random walks),
 *   - the input features of every local image node: owned rows are read from
 *     the graph's x.npy, halo rows arrive from their owners in one
 *     MPI_Alltoallv at start-up (the halo exchange),
 *   - part[] of every node (memory-mapped), to route walkers and requests.
 * Tag nodes have no rows here: their inputs are the trainable tag table that
 * every rank replicates.
 */
#ifndef MMS_SHARD_H
#define MMS_SHARD_H

#include <mpi.h>
#include <stdint.h>

#include "part_dir.h"
#include "mms_graph.h"
#include "mms_status.h"

typedef struct {
    int rank, nranks;
    int64_t n_nodes, n_images, n_tags;
    int32_t dim;
    int64_t n_owned, n_halo1, n_halo2, n_local;
    int64_t *gid;     /* n_local: global id of each local node */
    mms_csr_t adj;    /* n_local rows, local indices; halo2 rows empty */
    mms_csr_t full;   /* n_owned rows of the full graph, global ids */
    float *x;         /* n_local x dim; rows of tag nodes are zero */
    const int32_t *part; /* n_nodes, borrowed from the partition */
    int64_t halo_bytes_in, halo_bytes_out; /* feature bytes received / sent at start-up */
    double load_seconds;
} mms_shard_t;

/* Collective: load part `rank` of the partition pt of graph g (nranks must equal
 * pt->parts) and exchange halo features. */
mms_status mms_shard_load(const mms_graph_t *g, const mms_partition_t *pt, MPI_Comm comm,
                          mms_shard_t *out);
void mms_shard_free(mms_shard_t *sh);

/* Local index of global id v, or -1 if v is not local. */
int64_t mms_shard_local(const mms_shard_t *sh, int64_t v);

#endif
