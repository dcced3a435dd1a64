/* cmd_import_npy.c: `mmsage import npy --features F.npy [--knn-features K.npy]
 * --tags T.tsv --out C [--force] [--test-fraction 0.1] [--seed 1] [--val-fraction F]`: options and
 * the result line; the work is in ingest/import_npy.c. */
#include <stdio.h>

#include "commands.h"
#include "import_npy.h"
#include "mms_log.h"
#include "mms_opts.h"


mms_status mms_cmd_import_npy(int argc, char **argv) {
    mms_npy_import_opts_t o = {0};
    o.test_fraction = 0.1;
    int64_t seed = 1;
    mms_opt_t opts[] = {
        {"features", MMS_OPT_STR, &o.features, "float32 N x D .npy (C order): the node features", 1,
         0, 0, 0},
        {"knn-features", MMS_OPT_STR, &o.knn_features,
         "float32 N x D2 .npy used only to build the kNN graph (optional)", 0, 0, 0, 0},
        {"tags", MMS_OPT_STR, &o.tags,
         "TSV, one line per feature row: id<TAB>split<TAB>tag1|tag2 or id<TAB>tag1|tag2", 1, 0, 0,
         0},
        {"out", MMS_OPT_STR, &o.out, "catalog directory to create", 1, 0, 0, 0},
        {"force", MMS_OPT_FLAG, &o.force, "replace --out if it already exists", 0, 0, 0, 0},
        {"test-fraction", MMS_OPT_DOUBLE, &o.test_fraction,
         "share of images put in the test split when the TSV has no split column", 0, 1, 0, 1},
        {"seed", MMS_OPT_INT64, &seed, "seed of the id hash that assigns splits", 0, 1, 0,
         9007199254740992.0},
        {"val-fraction", MMS_OPT_DOUBLE, &o.val_fraction,
         "share of the training rows (from the TSV or the hash) set aside as the val split, "
         "chosen by a hash of the id with a fixed seed, not --seed (test rows never)",
         0, 1, 0, 1},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    int help;
    MMS_CALL(mms_opts_parse("import npy",
                            "Import features (.npy) and tags (TSV) from your own pipeline into a "
                            "catalog.",
                            opts, nopts, argc, argv, &help));
    if (help) return MMS_OK;
    o.seed = (uint64_t)seed;
    mms_opts_echo("import npy", opts, nopts);
    mms_npy_import_stats_t st;
    MMS_CALL(mms_import_npy_run(&o, &st));
    printf("imported %lld images (train %lld, val %lld, test %lld; split from %s), %d-d features",
           (long long)st.rows, (long long)st.n_split[0], (long long)st.n_split[1],
           (long long)st.n_split[2], st.split_from_tsv ? "the TSV" : "id hashes", st.dim);
    if (st.knn_dim) printf(", %d-d kNN features", st.knn_dim);
    printf(" into %s in %.2fs\n", o.out, st.seconds);
    return MMS_OK;
}
