/* embed.h: the embedding pass (`mmsage embed`): a trained model over the
 * whole graph, written as an index directory (index.h owns its format).
 *
 * Inference uses every neighbour of the sampling adjacency (up to the degree
 * cap), no sampling and no dropout:
 *   h1(v) = ReLU([x_v W1s || mean_{u in adj(v)} x_u W1n])
 *   z(v)  = normalise([h1(v) W2s || mean_{u in adj(v)} h1(u) W2n])
 * so an inductive query connected exactly as a training node is gets exactly
 * that node's embedding (the query path uses the same two functions).
 * Each rank embeds the nodes it owns from its shard and halo (no exchange:
 * the halo already holds every neighbour's input) and writes its shard of the
 * index (ids, emb, h1, x and the L2-normalised kNN-space vectors of its
 * images); rank 0 gathers the tag nodes' rows and writes the index's top
 * level (the model, the graph's tag list and PCA, the manifest). The
 * directory is written under a temporary name and renamed at the end.
 */
#ifndef MMS_EMBED_H
#define MMS_EMBED_H

#include <mpi.h>
#include <stdint.h>

#include "mms_status.h"

typedef struct {
    const char *graph;
    const char *model;
    const char *out;
    int force;
    int32_t nlist; /* inverted lists per space for approximate search (ivf_build.h):
                      -1 the default for the image count, 0 none */
} mms_embed_params_t;

typedef struct {
    int64_t images, tags;
    double seconds;
} mms_embed_summary_t;

/* Collective; the rank count must equal the partition's part count. */
mms_status mms_embed(const mms_embed_params_t *p, MPI_Comm comm, mms_embed_summary_t *sum);

#endif
