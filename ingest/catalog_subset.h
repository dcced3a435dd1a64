/* catalog_subset.h: `mmsage import catalog`: a new catalog of some rows of an
 * existing one, chosen by id (the night's delta of a full export, the images
 * of one index version, a hold-out set). Rows keep their order, features,
 * kNN features, tags, path and (unless told otherwise) split. */
#ifndef MMS_CATALOG_SUBSET_H
#define MMS_CATALOG_SUBSET_H

#include <stdint.h>

#include "mms_status.h"

typedef struct {
    const char *from;   /* the catalog to take rows from */
    const char *ids;    /* file of ids, one per line ('#' comments, blank lines skipped) */
    const char *out;
    int exclude;        /* 1: every row but the listed ones */
    int split;          /* -1: keep each row's split; else the mms_split every row gets */
    int force;
} mms_subset_opts_t;

void mms_subset_opts_default(mms_subset_opts_t *o);

/* Write o->out. An id listed that from has not is an error naming the file
 * and line; *rows gets the rows written. */
mms_status mms_catalog_subset(const mms_subset_opts_t *o, int64_t *rows);

#endif
