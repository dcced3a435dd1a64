/* import_split.c: the validation draw of import_split.h, shared by the three
 * importers so that they cannot drift apart. */
#include "import_split.h"

#include <stdio.h>
#include <string.h>

#include "mms_fs.h"
#include "mms_rng.h"

double mms_import_val_draw(const char *id, size_t len) {
    /* counter 1: the test draws of import npy use counter 0 of the same stream */
    return mms_rng_unit(
        mms_rng_hash(MMS_IMPORT_VAL_SEED, MMS_STREAM_SPLIT, mms_checksum(id, len, 0), 1));
}

int mms_import_val_split(int split, const char *id, double val_fraction) {
    if (split != MMS_SPLIT_TRAIN || !(val_fraction > 0)) return split;
    return mms_import_val_draw(id, strlen(id)) < val_fraction ? MMS_SPLIT_VAL : split;
}

mms_status mms_import_val_check(const char *who, double val_fraction) {
    MMS_CHECK(val_fraction >= 0 && val_fraction < 1, MMS_ERR_ARG,
              "%s: --val-fraction must be in [0, 1) (the share of training images set aside "
              "for validation), got %g",
              who, val_fraction);
    return MMS_OK;
}

mms_status mms_import_val_record(mms_catalog_writer_t *w, double val_fraction) {
    char fr[32];
    snprintf(fr, sizeof fr, "%.17g", val_fraction);
    MMS_CALL(mms_catalog_writer_set_str(w, "import.val_fraction", fr));
    MMS_CALL(mms_catalog_writer_set_int(w, "import.val_seed", (int64_t)MMS_IMPORT_VAL_SEED));
    MMS_CALL(mms_catalog_writer_set_str(
        w, "import.val_rule",
        "train rows whose id hash (seed import.val_seed) draws below import.val_fraction"));
    return MMS_OK;
}
