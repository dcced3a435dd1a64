/* catalog_subset.h: `mmsage import catalog`: a new catalog from rows of
 * existing ones: some rows of one catalog chosen by id (the night's delta of a
 * full export, a hold-out set), or the union of several (the catalog of every
 * image of an index version, base and additions, to judge its results). Rows
 * keep their order, features, kNN features, tags, objects, captions, path
 * and (unless told otherwise) split. */
#ifndef MMS_CATALOG_SUBSET_H
#define MMS_CATALOG_SUBSET_H

#include <stdint.h>

#include "mms_catalog.h"
#include "mms_status.h"

typedef struct {
    const char *ids;    /* file of ids, one per line ('#' comments, blank lines skipped); NULL: all rows */
    const char *out;
    int exclude;        /* 1: every row but the listed ones */
    int split;          /* -1: keep each row's split; else the mms_split every row gets */
    int force;
} mms_subset_opts_t;

void mms_subset_opts_default(mms_subset_opts_t *o);

/* Write o->out from the rows of cats[0..n) in order (keep[i]: NULL, or one
 * flag per row of cats[i], 0 = left out), then, when o->ids is given, only
 * the rows it lists (or, with exclude, all but those). The catalogs must have
 * the same feature and kNN widths; an id that appears twice among the rows
 * taken, or an id listed that no catalog has, is an error naming the file and
 * line. *rows gets the rows written. */
mms_status mms_catalog_subset(const mms_catalog_t *const *cats, const uint8_t *const *keep, int n,
                              const mms_subset_opts_t *o, int64_t *rows);
/* The same with a split per catalog (split_of[i] >= 0: every row of cats[i]
 * gets it; -1: o->split decides); split_of may be NULL. */
mms_status mms_catalog_subset_split(const mms_catalog_t *const *cats, const uint8_t *const *keep,
                                    const int *split_of, int n, const mms_subset_opts_t *o,
                                    int64_t *rows);

#endif
