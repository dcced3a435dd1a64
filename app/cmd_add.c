/* cmd_add.c: `mpirun -np P mmsage add --index I --catalog NEW --out I2`: the
 * images of NEW embedded inductively with the trained model and written as a
 * new version of I (coordinator/index_add.h; docs/versions.md). */
#include <mpi.h>
#include <stdio.h>

#include "commands.h"
#include "index_add.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_opts.h"

mms_status mms_cmd_add(int argc, char **argv) {
    mms_index_add_params_t p;
    mms_index_add_params_default(&p);
    int float_scan = 0;
    mms_opt_t opts[] = {
        {"index", MMS_OPT_STR, &p.index, "the index version to add to (from embed, add or remove)", 1, 0, 0, 0},
        {"catalog", MMS_OPT_STR, &p.catalog,
         "catalog of the new images (mmsage import or synth): every row is added", 1, 0, 0, 0},
        {"out", MMS_OPT_STR, &p.out, "the new version's directory (its unchanged files are hard links to --index's)", 1, 0, 0, 0},
        {"neighbors", MMS_OPT_INT, &p.neighbors,
         "visual neighbours per new image (0: a query's default)", 0, 1, 0, 1000},
        {"balance", MMS_OPT_DOUBLE, &p.balance,
         "a shard holds at most this times the mean rows of all shards", 0, 1, 1.0, 100.0},
        {"batch", MMS_OPT_INT, &p.batch, "images embedded per engine call", 0, 1, 1, 65536},
        {"float-scan", MMS_OPT_FLAG, &float_scan, "neighbour scans in float (no int8 filter)", 0, 0, 0, 0},
        {"force", MMS_OPT_FLAG, &p.force, "replace an existing --out", 0, 0, 0, 0},
    };
    const int n = (int)(sizeof opts / sizeof opts[0]);
    int help = 0;
    mms_status s = mms_opts_parse("add",
                                  "Add the images of a catalog to a new version of an index "
                                  "without retraining (collective).",
                                  opts, n, argc, argv, &help);
    MMS_CALL(mms_mpi_agree(s, MPI_COMM_WORLD));
    if (help) return MMS_OK;
    p.filter = !float_scan;
    mms_opts_echo("add", opts, n);
    mms_index_add_report_t r;
    MMS_CALL(mms_index_add(&p, MPI_COMM_WORLD, &r));
    if (mms_log_rank() == 0) {
        char lb[32], wb[32];
        mms_fmt_bytes((double)r.linked, lb, sizeof lb);
        mms_fmt_bytes((double)r.written, wb, sizeof wb);
        printf("version      %s: version %lld, %lld images added (nodes %lld..%lld), %lld with "
               "known tags, %lld new tag words\n", p.out, (long long)r.version, (long long)r.added,
               (long long)r.first_node, (long long)(r.first_node + r.added - 1),
               (long long)r.with_tags, (long long)r.new_tag_words);
        printf("shards       ");
        for (int i = 0; i < r.shards && i < 64; i++)
            printf("%s%d: +%lld", i ? ", " : "", i, (long long)r.per_shard[i]);
        printf(" (%lld placed off their best shard by --balance)\n", (long long)r.moved_by_cap);
        printf("bytes        %s written, %s shared with the parent by hard links\n", wb, lb);
        printf("time         %.2f s embedding, %.2f s writing\n", r.embed_seconds, r.write_seconds);
    }
    return MMS_OK;
}
