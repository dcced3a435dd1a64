/* placeholder until the mulan importer lands */
#include "commands.h"
mms_status mms_cmd_import_mulan(int argc, char **argv);
mms_status mms_cmd_import_mulan(int argc, char **argv) {
    (void)argc; (void)argv;
    MMS_CHECK(0, MMS_ERR_INTERNAL, "import mulan: not built yet");
}
