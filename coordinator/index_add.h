/* index_add.h: `mmsage add`: new images into a new version of an index
 * without retraining (docs/versions.md).
 *
 * Each new image is embedded inductively exactly as a query is (engine.h):
 * its visual neighbours among the index's live images (a NEIGHBORS round over
 * every shard), their stored layer-1 states, and its own tags where the index
 * knows them (connect "both"; "image" without a known tag). Its embedding
 * z, layer-1 state h1, node input x and kNN vector are stored as a segment of
 * the shard that holds most of its neighbours, unless that shard is full (a
 * shard may hold at most `balance` x the mean live rows of all shards after
 * the add); then the next best shard with room. Ties go to the shard with
 * fewer rows, then the lower number: the same index and catalog give the same
 * version at any rank count. Tag words the index has never seen are kept for
 * display (the image's catalog carries them) but do not connect it: the model
 * has no input for them. They are counted in the log and listed in the
 * version's new_tags.tsv.
 * Cost: one query round per batch of new images (a scan of the index per
 * batch), the new rows written, the parent's other files hard-linked.
 */
#ifndef MMS_INDEX_ADD_H
#define MMS_INDEX_ADD_H

#include <mpi.h>
#include <stdint.h>

#include "mms_status.h"

typedef struct {
    const char *index;   /* the parent version */
    const char *catalog; /* the new images (every row is added) */
    const char *out;     /* the new version */
    int force;           /* replace an existing out */
    int neighbors;       /* visual neighbours per image (0: a query's default) */
    double balance;      /* most rows of a shard / mean rows of all shards [1.05] */
    int batch;           /* images per query round [256] */
    int filter;          /* int8 filter in the neighbour scan [1] */
} mms_index_add_params_t;

typedef struct {
    int64_t added, version, first_node;
    int64_t with_tags;      /* images connected to at least one known tag */
    int64_t new_tag_words;  /* distinct tag words the index does not know */
    int64_t moved_by_cap;   /* images placed off their best shard by the balance cap */
    int shards;
    int64_t per_shard[64];  /* rows added to shards 0..min(shards, 64)-1 */
    uint64_t linked, written;
    double embed_seconds, write_seconds;
} mms_index_add_report_t;

void mms_index_add_params_default(mms_index_add_params_t *p);

/* Collective over comm: every rank opens its shards of p->index (rank 0 also
 * coordinates), rank 0 writes p->out. All ranks return the same status; rep
 * is filled on rank 0. */
mms_status mms_index_add(const mms_index_add_params_t *p, MPI_Comm comm, mms_index_add_report_t *rep);

#endif
