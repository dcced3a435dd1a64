/* cmd_import_mulan.c: `mmsage import mulan --train A.arff [--test B.arff] --xml L.xml
 * --out C [--force] [--val-fraction F]`: options and the result line; the work is in
 * ingest/import_mulan.c. */
#include <stdio.h>

#include "commands.h"
#include "import_mulan.h"
#include "mms_log.h"
#include "mms_opts.h"


mms_status mms_cmd_import_mulan(int argc, char **argv) {
    mms_mulan_import_opts_t o = {0};
    mms_opt_t opts[] = {
        {"train", MMS_OPT_STR, &o.train,
         "Mulan/MEKA ARFF (dense or sparse rows) whose rows become the train split", 1, 0, 0, 0},
        {"test", MMS_OPT_STR, &o.test,
         "ARFF with the same header whose rows become the test split (optional)", 0, 0, 0, 0},
        {"xml", MMS_OPT_STR, &o.xml,
         "Mulan label XML (<label name=...>): these attributes are the tags, all others features",
         1, 0, 0, 0},
        {"out", MMS_OPT_STR, &o.out, "catalog directory to create", 1, 0, 0, 0},
        {"force", MMS_OPT_FLAG, &o.force, "replace --out if it already exists", 0, 0, 0, 0},
        {"val-fraction", MMS_OPT_DOUBLE, &o.val_fraction,
         "share of the --train rows set aside as the val split, chosen by a hash of the id with "
         "a fixed seed (the same rows in every import; test rows never)",
         0, 1, 0, 1},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    int help;
    MMS_CALL(
        mms_opts_parse("import mulan",
                       "Import a Mulan multi-label data set (ARFF + label XML) into a catalog.\n"
                       "Ids are train-000001, test-000001, ...; tags are the labels with value 1.\n"
                       "--val-fraction F sets about F of the training rows aside as split val "
                       "(eval --split val).",
                       opts, nopts, argc, argv, &help));
    if (help) return MMS_OK;
    mms_opts_echo("import mulan", opts, nopts);
    mms_mulan_import_stats_t st;
    MMS_CALL(mms_import_mulan_run(&o, &st));
    printf("imported %lld images (train %lld, val %lld, test %lld), %d-d features, %d labels (%d "
           "used, %lld assignments) into %s in %.2fs\n",
           (long long)(st.train + st.val + st.test), (long long)st.train, (long long)st.val,
           (long long)st.test, st.dim,
           st.nlabels, st.labels_used, (long long)st.assignments, o.out, st.seconds);
    return MMS_OK;
}
