/* model_io.h: the model directory written by `mmsage train`: the one owner of
 * its format (the writer, the readers and the names).
 *
 *   M/manifest.msgpack  kind "model", format MMS_MODEL_FORMAT: the
 *                       configuration (dim, hidden, s1, s2, max_degree,
 *                       dropout, train_tags, seed), n_params, tags, and where
 *                       the model came from (graph and its checksum, images,
 *                       lr, batch, neg, walks, walk_len, hide_tags, tag_init,
 *                       temperature, steps_per_epoch, step, loss)
 *   M/params.npy        <f4 n_params: the parameter block (sage.h layout)
 *   M/tags.npy          <f4 tags x dim: the tag input table
 * The same manifest fields head a training checkpoint (kind "checkpoint",
 * checkpoint.h) and an index (kind "index", index.h), which also copies
 * params.npy and tags.npy; mms_model_read builds the model from either.
 * What it does not do: MPI (callers choose the rank that writes or reads),
 * training state (checkpoint.h), the loss log.
 */
#ifndef MMS_MODEL_IO_H
#define MMS_MODEL_IO_H

#include <stdint.h>

#include "mms_manifest.h"
#include "mms_status.h"
#include "sage.h"

#define MMS_MODEL_FORMAT 1
#define MMS_MODEL_PARAMS_FILE "params.npy"
#define MMS_MODEL_TAGS_FILE "tags.npy"

/* Where a model came from: train's record in the manifest. Strings borrowed. */
typedef struct {
    uint64_t graph_checksum;
    const char *graph;    /* graph directory */
    int64_t images;       /* image nodes of the graph */
    double lr;
    int batch, neg, walks, walk_len;
    double hide_tags;
    const char *tag_init; /* "mean" or "random" */
    double temperature;
    int64_t steps_per_epoch;
    int64_t step;         /* steps done */
    double loss;          /* smoothed loss at step */
} mms_model_origin_t;

/* The manifest (kind "model") of m trained as o describes (caller destroys). */
mms_status mms_model_manifest(const mms_sage_model_t *m, const mms_model_origin_t *o,
                              mms_manifest_t **out);

/* Write params.npy, tags.npy and the manifest man into the existing directory
 * dir, each file atomically; man gets the payload checksums of the directory
 * (all but loss.tsv, a log, and checkpoint.bin, which carries its own). */
mms_status mms_model_write(const char *dir, const mms_sage_model_t *m, mms_manifest_t *man);

/* Build the model described by man (a model's or an index's manifest) with
 * the arrays dir/params.npy and dir/tags.npy, verified against the checksums
 * man records (mms_manifest_verify_file). Checks the configuration, the
 * parameter count and the arrays' shapes; messages name man->kind and dir.
 * *out: free with mms_sage_model_destroy. */
mms_status mms_model_read(const char *dir, const mms_manifest_t *man, mms_sage_model_t **out);

/* Open a model directory; refuses a model trained on another graph than the
 * one with checksum graph_checksum (0: no check). */
mms_status mms_model_load(const char *dir, uint64_t graph_checksum, mms_sage_model_t **out);

/* Copy a model directory's arrays (params.npy, tags.npy) into to_dir. */
mms_status mms_model_copy_arrays(const char *model_dir, const char *to_dir);

#endif
