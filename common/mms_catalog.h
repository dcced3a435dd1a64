/* mms_catalog.h: the catalog directory (docs/formats.md), written and read.
 *
 * A catalog is what importers and the synthetic generator produce and what
 * `build` consumes:
 *   features.npy      float32 N x D, C order: node features
 *   images.tsv        id<TAB>split<TAB>tag1|tag2|...   (one line per feature row)
 *   knn_features.npy  optional float32 N x D2: a second visual space for kNN only
 *   objects.tsv       optional id<TAB>category:count,...
 *   captions.tsv      optional id<TAB>caption (several lines per id allowed)
 *   paths.tsv         optional id<TAB>image file (for display)
 *   manifest.msgpack  kind "catalog": counts, dims, source, checksum
 *
 * The writer validates every row as it comes (width, NaN/Inf, duplicate ids,
 * split, tag syntax), streams features to disk, and publishes the directory by
 * rename only when finish() succeeds; abort() leaves nothing behind.
 * The reader validates a catalog once (the same checks, plus row counts and at
 * least one training image) and maps the feature matrices read-only.
 */
#ifndef MMS_CATALOG_H
#define MMS_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"

#define MMS_CATALOG_FORMAT 1

typedef enum { MMS_SPLIT_TRAIN = 0, MMS_SPLIT_VAL = 1, MMS_SPLIT_TEST = 2 } mms_split;

const char *mms_split_name(int split);
/* "train"/"val"/"test" -> code; -1 if unknown. */
int mms_split_parse(const char *s, size_t len);

/* One catalog row as an importer hands it to the writer (all borrowed). */
typedef struct {
    const char *where; /* e.g. "file.arff:123", prefixed to error messages; may be NULL */
    const char *id;
    int split;
    const char *const *tags;
    int ntags;
    const float *features;     /* dim floats */
    const float *knn_features; /* knn_dim floats, or NULL when the catalog has none */
    const char *const *obj_names; /* object categories with instance counts (optional) */
    const int *obj_counts;
    int nobj;
    const char *const *captions; /* optional */
    int ncaptions;
    const char *path; /* optional image file for display */
} mms_catalog_row_t;

typedef struct mms_catalog_writer mms_catalog_writer_t;

/* Start a catalog at out_dir (refused if it exists unless force). knn_dim 0 =
 * no knn_features.npy. source is a free-text description stored in the manifest. */
mms_status mms_catalog_writer_open(const char *out_dir, int force, int32_t dim, int32_t knn_dim,
                                   const char *source, mms_catalog_writer_t **out);
mms_status mms_catalog_writer_add(mms_catalog_writer_t *w, const mms_catalog_row_t *row);
/* Extra manifest fields (e.g. synth parameters); call before finish. */
mms_status mms_catalog_writer_set_int(mms_catalog_writer_t *w, const char *key, int64_t v);
mms_status mms_catalog_writer_set_str(mms_catalog_writer_t *w, const char *key, const char *v);
/* Checks non-empty and >= 1 train image, writes the manifest, renames into place,
 * frees w. On failure the temporary directory is removed. */
mms_status mms_catalog_writer_finish(mms_catalog_writer_t **w);
void mms_catalog_writer_abort(mms_catalog_writer_t **w);

/* A catalog opened for reading. Arrays are owned by the catalog. */
typedef struct {
    char dir[4096];
    int64_t n;
    int32_t dim;
    const float *x; /* n x dim, memory-mapped */
    int32_t knn_dim; /* 0 if no knn_features.npy */
    const float *knn_x;
    char **ids;     /* n */
    uint8_t *split; /* n, mms_split */
    int64_t n_split[3];
    /* tags: CSR over images; vocabulary sorted bytewise */
    int64_t *tag_ptr; /* n + 1 */
    int32_t *tag_idx; /* tag_ptr[n] */
    int32_t ntags;
    char **tag_names;   /* ntags */
    int64_t *tag_count; /* ntags: images carrying the tag */
    /* objects (NULL when no objects.tsv); category vocabulary sorted bytewise */
    int64_t *obj_ptr;
    int32_t *obj_cat;
    int32_t *obj_count;
    int32_t ncats;
    char **cat_names;
    /* captions (NULL when none): CSR of strings */
    int64_t *cap_ptr;
    char **captions;
    /* paths (NULL when none); entries may be NULL */
    char **paths;
    uint64_t checksum; /* of features.npy, knn_features.npy and images.tsv */
    void *priv;
} mms_catalog_t;

/* Open and validate. Errors name the file and line or field. */
mms_status mms_catalog_open(const char *dir, mms_catalog_t **out);
void mms_catalog_close(mms_catalog_t **c);
/* Index of a tag name (-1 if unknown). */
int32_t mms_catalog_tag_lookup(const mms_catalog_t *c, const char *name);
/* Row of an id (-1 if unknown). */
int64_t mms_catalog_id_lookup(const mms_catalog_t *c, const char *id);
/* Checksum of the catalog content without opening it fully (features, knn
 * features, images.tsv), as recorded by later steps. */
mms_status mms_catalog_checksum(const char *dir, uint64_t *out);

#endif
