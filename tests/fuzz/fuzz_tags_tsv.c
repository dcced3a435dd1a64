/* fuzz_tags_tsv.c: the tags TSV reader of `import npy` on in-memory bytes, and
 * the id-hash split of every id it returns (nothing touches the file system). */
#include <stdint.h>
#include <string.h>

#include "import_npy.h"

#define MAX_ROWS 100000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mms_tagstsv_t *t = NULL;
    if (mms_tagstsv_open_mem("fuzz.tsv", data, size, &t) != MMS_OK) return 0;
    for (int r = 0; r < MAX_ROWS; r++) {
        mms_tagstsv_row_t row;
        int got = 0;
        if (mms_tagstsv_next(t, &row, &got) != MMS_OK || !got) break;
        size_t total = strlen(row.id);
        for (int k = 0; k < row.ntags; k++) total += strlen(row.tags[k]);
        (void)total;
        (void)mms_import_npy_split(row.id, strlen(row.id), 1, 0.1);
    }
    (void)mms_tagstsv_has_split(t);
    mms_tagstsv_close(&t);
    return 0;
}
