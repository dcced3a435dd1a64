/* placeholder until the synthetic generator lands */
#include "commands.h"
mms_status mms_cmd_synth(int argc, char **argv) {
    (void)argc; (void)argv;
    MMS_CHECK(0, MMS_ERR_INTERNAL, "synth: not built yet");
}
