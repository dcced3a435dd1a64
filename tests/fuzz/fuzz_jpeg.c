/* fuzz_jpeg.c: fuzz target for the JPEG descriptor (common/mms_descriptor.h).
 * Decodes the input from memory; any outcome but a crash, a leak or a vector
 * that is not finite with unit norm is acceptable. Writes no files. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "mms_descriptor.h"
#include "mms_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mms_log_set_level(MMS_LOG_QUIET);
    float v[MMS_DESCRIPTOR_DIM];
    if (mms_descriptor_from_jpeg_mem(data, size, "fuzz.jpg", v) != MMS_OK) return 0;
    double ss = 0.0;
    for (int i = 0; i < MMS_DESCRIPTOR_DIM; i++) {
        if (!isfinite(v[i])) __builtin_trap();
        ss += (double)v[i] * v[i];
    }
    if (fabs(ss - 1.0) > 1e-4) __builtin_trap();
    return 0;
}
