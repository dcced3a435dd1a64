/* fuzz_npy_header.c: the .npy header parser on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "mms_npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mms_npy_header_t h;
    if (mms_npy_parse_header(data, size, "fuzz.npy", &h) == MMS_OK) {
        /* a parsed header must be self-consistent */
        if (h.ndim < 1 || h.ndim > 2 || h.data_offset > size || (unsigned)h.dtype >= MMS_DT_COUNT)
            __builtin_trap();
    }
    return 0;
}
