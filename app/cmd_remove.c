/* cmd_remove.c: `mmsage remove --index I --ids FILE --out I2`: a new version
 * of I without the listed images (worker/index_version.h; docs/versions.md).
 * Not an MPI command: it writes the removed list and rewrites only the shards
 * whose removed share passes --compact-at. */
#include <stdio.h>

#include "commands.h"
#include "index_version.h"
#include "mms_log.h"
#include "mms_opts.h"

mms_status mms_cmd_remove(int argc, char **argv) {
    mms_index_remove_opts_t o;
    mms_index_remove_opts_default(&o);
    const char *index = NULL, *ids = NULL, *out = NULL;
    mms_opt_t opts[] = {
        {"index", MMS_OPT_STR, &index, "the index version to remove from", 1, 0, 0, 0},
        {"ids", MMS_OPT_STR, &ids, "file of image ids to remove, one per line ('#' comments)", 1, 0, 0, 0},
        {"out", MMS_OPT_STR, &out, "the new version's directory (its unchanged files are hard links to --index's)", 1, 0, 0, 0},
        {"compact-at", MMS_OPT_DOUBLE, &o.compact_at,
         "rewrite a shard without its removed rows once they pass this share of it", 0, 1, 0.0, 2.0},
        {"ignore-missing", MMS_OPT_FLAG, &o.ignore_missing,
         "count ids that are no live image of the index instead of refusing them", 0, 0, 0, 0},
        {"force", MMS_OPT_FLAG, &o.force, "replace an existing --out", 0, 0, 0, 0},
    };
    const int n = (int)(sizeof opts / sizeof opts[0]);
    int help = 0;
    MMS_CALL(mms_opts_parse("remove", "Withdraw images from a new version of an index.", opts, n,
                            argc, argv, &help));
    if (help) return MMS_OK;
    mms_opts_echo("remove", opts, n);
    mms_index_remove_report_t r;
    MMS_CALL(mms_index_remove(index, ids, out, &o, &r));
    char lb[32], wb[32];
    mms_fmt_bytes((double)r.linked, lb, sizeof lb);
    mms_fmt_bytes((double)r.written, wb, sizeof wb);
    printf("version      %s: version %lld, %lld images removed now (%lld listed, %lld missing), "
           "%lld removed in all, %lld live\n", out, (long long)r.version, (long long)r.removed_now,
           (long long)r.requested, (long long)r.missing, (long long)r.removed_total,
           (long long)r.live);
    printf("bytes        %s written, %s shared with the parent by hard links, %d shard(s) "
           "compacted\n", wb, lb, r.compacted);
    return mms_stdout_flush("remove");
}
