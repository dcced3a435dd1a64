/* import_npy.h: a user's own features (.npy) and tags (TSV) into a catalog.
 *
 * Input: features.npy (float32, C order, N x D), optionally a second float32
 * matrix N x D2 used only for the kNN graph, and a tags TSV with one line per
 * feature row, in row order, in one of two forms (fixed by the first line):
 *   id<TAB>split<TAB>tag1|tag2|...   split is train, val or test
 *   id<TAB>tag1|tag2|...             the split is drawn from a hash of the id
 *                                    (mms_import_npy_split), so it does not
 *                                    depend on row order or machine
 * The features are memory-mapped (mms_npy_open) and streamed row by row with
 * the TSV into the catalog writer; nothing is written unless every row passes.
 * Not done here: other dtypes (convert with numpy first), images or captions.
 *
 * The TSV reader (mms_tagstsv_*) is separate so the tests and the fuzz target
 * can drive it on in-memory bytes.
 */
#ifndef MMS_IMPORT_NPY_H
#define MMS_IMPORT_NPY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mms_status.h"

/* -------------------------------------------------------------- tags TSV */

typedef struct mms_tagstsv mms_tagstsv_t;

/* One line, borrowed from the reader until the next call. */
typedef struct {
    const char *id;
    int split;               /* MMS_SPLIT_*, or -1 when the file has no split column */
    const char *const *tags; /* ntags tag names, as written (a repeat is kept) */
    int ntags;
    int64_t line;
} mms_tagstsv_row_t;

/* Read lines from f (own_f = 1: the reader closes it). name is used in messages. */
mms_status mms_tagstsv_open(FILE *f, const char *name, int own_f, mms_tagstsv_t **out);
mms_status mms_tagstsv_open_path(const char *path, mms_tagstsv_t **out);
/* Bytes data[0..len) (borrowed: they must outlive the reader). */
mms_status mms_tagstsv_open_mem(const char *name, const void *data, size_t len,
                                mms_tagstsv_t **out);
void mms_tagstsv_close(mms_tagstsv_t **t);

/* Next line into *row; *got = 0 at end of file. Fails naming file:line on: an
 * empty file, an empty line, a line without a tab, a line whose form differs
 * from line 1, an empty id, an unknown split, an empty or too long tag, a
 * duplicate id (naming both lines), a NUL byte. */
mms_status mms_tagstsv_next(mms_tagstsv_t *t, mms_tagstsv_row_t *row, int *got);
/* 1 if the file has a split column, 0 if not, -1 before the first line. */
int mms_tagstsv_has_split(const mms_tagstsv_t *t);

/* ---------------------------------------------------------------- import */

/* Split of an id when the TSV has none: test with probability test_fraction,
 * else train; a pure function of (id, seed). */
int mms_import_npy_split(const char *id, size_t len, uint64_t seed, double test_fraction);

typedef struct {
    const char *features;     /* required */
    const char *knn_features; /* optional */
    const char *tags;         /* required */
    const char *out;          /* catalog directory */
    int force;
    double test_fraction; /* used only without a split column */
    uint64_t seed;
    double val_fraction; /* [0, 1): share of the train rows (from the TSV or the hash) set
                            aside as "val" by the fixed-seed id draw of import_split.h */
} mms_npy_import_opts_t;

typedef struct {
    int64_t rows, n_split[3];
    int32_t dim, knn_dim;
    int split_from_tsv; /* 1: the TSV had a split column */
    double seconds;
} mms_npy_import_stats_t;

/* The whole import; all-or-nothing (no output directory on error). stats may be NULL. */
mms_status mms_import_npy_run(const mms_npy_import_opts_t *o, mms_npy_import_stats_t *stats);

#endif
