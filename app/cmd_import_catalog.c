/* cmd_import_catalog.c: `mmsage import catalog --from C --ids FILE --out D`:
 * a catalog of the listed rows of C (ingest/catalog_subset.h). */
#include <stdio.h>
#include <string.h>

#include "catalog_subset.h"
#include "commands.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_opts.h"

mms_status mms_cmd_import_catalog(int argc, char **argv) {
    mms_subset_opts_t o;
    mms_subset_opts_default(&o);
    const char *split = "keep";
    mms_opt_t opts[] = {
        {"from", MMS_OPT_STR, &o.from, "catalog to take rows from", 1, 0, 0, 0},
        {"ids", MMS_OPT_STR, &o.ids, "file of image ids, one per line ('#' comments)", 1, 0, 0, 0},
        {"out", MMS_OPT_STR, &o.out, "catalog directory to create", 1, 0, 0, 0},
        {"exclude", MMS_OPT_FLAG, &o.exclude, "take every row except the listed ones", 0, 0, 0, 0},
        {"split", MMS_OPT_STR, &split, "split of every row: keep (each row's own), train, val or test", 0, 0, 0, 0},
        {"force", MMS_OPT_FLAG, &o.force, "replace an existing output directory", 0, 0, 0, 0},
    };
    const int n = (int)(sizeof opts / sizeof opts[0]);
    int help = 0;
    MMS_CALL(mms_opts_parse("import catalog",
                            "Make a catalog of some rows of another, chosen by id (a nightly "
                            "delta, a hold-out set).",
                            opts, n, argc, argv, &help));
    if (help) return MMS_OK;
    if (strcmp(split, "keep") != 0) {
        o.split = mms_split_parse(split, strlen(split));
        MMS_CHECK(o.split >= 0, MMS_ERR_ARG, "import catalog: --split '%s' (want keep, train, val or test)", split);
    }
    mms_opts_echo("import catalog", opts, n);
    int64_t rows;
    MMS_CALL(mms_catalog_subset(&o, &rows));
    printf("catalog      %s: %lld images from %s\n", o.out, (long long)rows, o.from);
    return mms_stdout_flush("import catalog");
}
