/* fuzz_manifest.c: the MessagePack manifest decoder on arbitrary bytes; a
 * decoded manifest must re-encode and decode to the same entries. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mms_manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mms_manifest_t *m = NULL;
    if (mms_manifest_decode(data, size, "fuzz", NULL, 0, &m) != MMS_OK) return 0;
    char *buf;
    size_t len;
    if (mms_manifest_encode(m, &buf, &len) == MMS_OK) {
        mms_manifest_t *m2 = NULL;
        if (mms_manifest_decode(buf, len, "fuzz", NULL, 0, &m2) != MMS_OK || m2->n != m->n)
            __builtin_trap();
        mms_manifest_destroy(&m2);
        free(buf);
    }
    mms_manifest_destroy(&m);
    return 0;
}
