/* libfuzzer_init.c: linked into every real libFuzzer target (tests/CMakeLists.txt).
 * The targets feed their parsers malformed input by design, and the parsers
 * report each rejection through mms_log; at tens of thousands of inputs per
 * second that filled a 30-minute run's log with 27 GB of rejections. The
 * replay driver (driver.c) silences the log the same way. */
#include <stdint.h>

#include "mms_log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    mms_log_init(0, 1, MMS_LOG_QUIET);
    return 0;
}
