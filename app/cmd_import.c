/* cmd_import.c: `mmsage import <format> ...` dispatches to one importer. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "mms_log.h"

mms_status mms_cmd_import(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        printf("usage: mmsage import <format> [options]   (mmsage import <format> --help)\n\n"
               "formats:\n"
               "  mulan   Mulan/MEKA ARFF (sparse or dense rows) + label XML, e.g. Corel5k\n"
               "  coco    COCO instances/captions JSON + JPEG folders; features from the pixels\n"
               "  npy     a features .npy (+ optional kNN features .npy) and a tags TSV\n"
               "  catalog some rows of an existing catalog, chosen by id (a nightly delta)\n");
        return argc < 1 ? MMS_ERR_ARG : MMS_OK;
    }
    if (!strcmp(argv[0], "mulan")) return mms_cmd_import_mulan(argc - 1, argv + 1);
    if (!strcmp(argv[0], "coco")) return mms_cmd_import_coco(argc - 1, argv + 1);
    if (!strcmp(argv[0], "npy")) return mms_cmd_import_npy(argc - 1, argv + 1);
    if (!strcmp(argv[0], "catalog")) return mms_cmd_import_catalog(argc - 1, argv + 1);
    MMS_CHECK(0, MMS_ERR_ARG, "import: unknown format '%s' (want mulan, coco, npy or catalog)", argv[0]);
}
