/* import_split.h: the validation share every importer can set aside
 * (`--val-fraction F` of `mmsage import mulan|coco|npy`).
 *
 * Rule: a row that would be a training image becomes split "val" when the
 * uniform draw mms_rng_unit(mms_rng_hash(MMS_IMPORT_VAL_SEED, MMS_STREAM_SPLIT,
 * mms_checksum(id bytes, 0), 1)) falls below F. The draw is a pure function of
 * the image id under a fixed seed: the same id is val in every import, on any
 * machine, whatever the row order or the importer's --seed, and a catalog
 * imported again with a larger F keeps every val image of the smaller F. Test
 * rows are never touched. The draw is independent of the importers' test
 * draws (another seed and counter), so val is an unbiased share of train.
 *
 * Not here: the test split (each importer's own rule), writing the catalog.
 */
#ifndef MMS_IMPORT_SPLIT_H
#define MMS_IMPORT_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "mms_catalog.h"
#include "mms_status.h"

/* Fixed seed of the validation draw ("val" in ASCII); never change it: it
 * would move images between train and val in every catalog re-imported. */
#define MMS_IMPORT_VAL_SEED UINT64_C(0x76616c)

/* The uniform draw in [0, 1) of id[0..len) (the rule above). */
double mms_import_val_draw(const char *id, size_t len);

/* The split of a row after the validation draw: MMS_SPLIT_VAL when split is
 * MMS_SPLIT_TRAIN and the draw of id is below val_fraction; split otherwise. */
int mms_import_val_split(int split, const char *id, double val_fraction);

/* MMS_ERR_ARG unless val_fraction is in [0, 1); who starts the message
 * ("import mulan"). */
mms_status mms_import_val_check(const char *who, double val_fraction);

/* Record the rule in the catalog manifest: import.val_fraction (text, %.17g),
 * import.val_seed and import.val_rule. */
mms_status mms_import_val_record(mms_catalog_writer_t *w, double val_fraction);

#endif
