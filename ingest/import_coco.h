/* import_coco.h: MS-COCO instances/captions JSON + JPEG folders -> catalog.
 *
 * Two layers:
 *   - mms_coco_t collects any number of instances files (each paired with the
 *     folder of its JPEGs) and captions files, parsed from memory with jansson,
 *     merging images by COCO image id; mms_coco_finish() derives each image's
 *     tags, object counts and captions. No file system access: unit tests and
 *     the fuzzer drive it from buffers.
 *   - mms_coco_import() is the whole `mmsage import coco`: read the files,
 *     locate every JPEG, compute its descriptor (descriptor.h) and write the
 *     catalog atomically (nothing is left behind on any error).
 *
 * Rules (docs/descriptor.md has the user-facing version):
 *   - An image enters the catalog when an instances file lists it in `images`
 *     and at least one annotation (crowd or not, from any source) refers to it.
 *     Listed images without annotations are skipped and counted.
 *   - The same image id in several sources is one image; its file names must
 *     agree (else MMS_ERR_MISMATCH). Annotations and captions carrying an `id`
 *     are de-duplicated by (image id, annotation id), so a source given twice,
 *     or the mini and full captions of the same split, never double a count.
 *   - Tags: the category names of its annotations (a multi-word name such as
 *     "traffic light" is one tag); with caption tags also the caption words
 *     (lower-cased ASCII letters, length >= 2, not a stopword) found in at least
 *     MMS_TEXT_CAPTION_VOTES of the image's captions.
 *   - Objects: per category, the number of non-crowd instances (categories seen
 *     only in crowd annotations are tags without an object count).
 *   - Catalog rows are sorted by numeric image id; the id is its decimal form.
 * Errors name the file and the field ("x.json: annotations[12].category_id is
 * not an integer"), or the line and column of malformed JSON.
 */
#ifndef MMS_IMPORT_COCO_H
#define MMS_IMPORT_COCO_H

#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"
#include "mms_strmap.h"
#include "mms_text.h"

#define MMS_COCO_MAX_SOURCES 64 /* instances files per import */

typedef struct mms_coco mms_coco_t;

mms_status mms_coco_create(mms_coco_t **out);
/* Frees everything; NULL or *c == NULL is a no-op; sets *c = NULL. */
void mms_coco_destroy(mms_coco_t **c);

/* Parse an instances JSON held in json[0..len) (borrowed; need not be NUL-
 * terminated). name (usually the path) starts error messages; image_dir is the
 * folder of this file's JPEGs (copied). After an error the collection must
 * only be destroyed. */
mms_status mms_coco_add_instances(mms_coco_t *c, const char *json, size_t len, const char *name,
                                  const char *image_dir);

/* Parse a captions JSON; captions are pooled by image id over all captions
 * files, in any order relative to the instances files. Captions of images that
 * never enter the catalog are dropped by finish. */
mms_status mms_coco_add_captions(mms_coco_t *c, const char *json, size_t len, const char *name);

/* Close the collection: select and sort the catalog images, attach captions,
 * derive tags (caption words too when caption_tags). Call once, after all adds. */
mms_status mms_coco_finish(mms_coco_t *c, int caption_tags);

/* One catalog image, valid until mms_coco_destroy (all pointers borrowed). */
typedef struct {
    int64_t id;
    const char *file_name; /* as in the JSON */
    const char *where;     /* "<instances name>: images[k]" of its first listing */
    int nsources;          /* instances files that list it */
    const char *const *tags;
    int ntags;
    const char *const *obj_names; /* sorted by name */
    const int *obj_counts;
    int nobj;
    const char *const *captions;
    int ncaptions;
} mms_coco_image_t;

/* Counts after finish. */
typedef struct {
    int64_t images;          /* catalog images */
    int64_t listed;          /* distinct image ids listed in instances files */
    int64_t unannotated;     /* listed but without annotations: skipped */
    int64_t annotations;     /* distinct annotations used */
    int64_t dup_annotations; /* annotations seen again (same image and id) */
    int64_t captions;        /* captions attached to catalog images */
    int64_t dup_captions;
    int64_t categories; /* distinct category names used as tags */
} mms_coco_counts_t;

int64_t mms_coco_count(const mms_coco_t *c);
/* i in [0, mms_coco_count) after finish. */
void mms_coco_image(const mms_coco_t *c, int64_t i, mms_coco_image_t *out);
void mms_coco_get_counts(const mms_coco_t *c, mms_coco_counts_t *out);
/* Candidate JPEG folders of image i, in source order (up to MMS_COCO_MAX_SOURCES):
 * returns how many were written to dirs (borrowed strings). */
int mms_coco_image_dirs(const mms_coco_t *c, int64_t i, const char **dirs, int cap);

/* `mmsage import coco`: all strings borrowed. */
typedef struct {
    const char *const *image_dirs; /* nsources folders ... */
    const char *const *instances;  /* ... paired with nsources instances files */
    int nsources;
    const char *const *captions; /* ncaptions captions files */
    int ncaptions;
    const char *out_dir;
    int force;
    int caption_tags;
    double test_fraction; /* [0, 1): share of images in the test split */
    uint64_t seed;
    double val_fraction; /* [0, 1): share of the training images set aside as "val" by the
                            fixed-seed draw of import_split.h on the decimal id */
} mms_coco_import_opts_t;

/* Split of an image: test when the uniform draw from
 * mms_rng_hash(seed, MMS_STREAM_SPLIT, image_id, 0) falls below test_fraction. */
int mms_coco_split(uint64_t seed, double test_fraction, int64_t image_id);

/* Run the whole import; counts (may be NULL) receives the merge statistics. */
mms_status mms_coco_import(const mms_coco_import_opts_t *o, mms_coco_counts_t *counts);

#endif
