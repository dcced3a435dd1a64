/* embed.h: the embedding pass (`mmsage embed`) and the index it writes.
 *
 * Inference uses every neighbour of the sampling adjacency (up to the degree
 * cap), no sampling and no dropout:
 *   h1(v) = ReLU([x_v W1s || mean_{u in adj(v)} x_u W1n])
 *   z(v)  = normalise([h1(v) W2s || mean_{u in adj(v)} h1(u) W2n])
 * so an inductive query connected exactly as a training node is gets exactly
 * that node's embedding (the query path uses the same two functions).
 * Each rank embeds the nodes it owns from its shard and halo (no exchange:
 * the halo already holds every neighbour's input), then writes
 *   I/shard-p/ids.npy   <i8 image node ids owned by part p (ascending)
 *   I/shard-p/emb.npy   <f4 n x 2H  embeddings
 *   I/shard-p/h1.npy    <f4 n x 2H  layer-1 states (for queries' layer 2)
 *   I/shard-p/x.npy     <f4 n x D   node inputs (for queries' layer 1)
 *   I/shard-p/vis.npy   <f4 n x Dk  L2-normalised vectors of the kNN space (the
 *                                   space `build` searched), for a query's
 *                                   visual neighbours
 * and rank 0 gathers the tag nodes into I/tags_emb.npy and I/tags_h1.npy, copies
 * the model (params.npy, tags.npy) and the graph's PCA, and writes the manifest
 * (kind "index": graph, model and catalog checksums, shards, dims). The
 * directory is written under a temporary name and renamed at the end.
 */
#ifndef MMS_EMBED_H
#define MMS_EMBED_H

#include <mpi.h>

#include "mms_status.h"
#include "sage.h"

#define MMS_INDEX_FORMAT 1

typedef struct {
    const char *graph;
    const char *model;
    const char *out;
    int force;
} mms_embed_params_t;

typedef struct {
    int64_t images, tags;
    double seconds;
} mms_embed_summary_t;

/* Collective; the rank count must equal the partition's part count. */
mms_status mms_embed(const mms_embed_params_t *p, MPI_Comm comm, mms_embed_summary_t *sum);

/* Load a model directory (manifest kind "model") into a sage model; checks it
 * was trained on the graph with checksum graph_checksum (0: no check). */
mms_status mms_model_load(const char *dir, uint64_t graph_checksum, mms_sage_model_t **out);

#endif
