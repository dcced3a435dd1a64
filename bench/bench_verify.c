/* bench_verify.c: what verifying a directory's payload checksums costs at open
 * (docs/formats.md, "Payload checksums"; docs/reliability.md).
 * usage: bench_verify DIR [DIR ...]
 * For each mmsage directory: records its files into a copy of its manifest in
 * memory (mms_manifest_record_files, the writer's pass), then verifies them
 * (mms_manifest_verify_files over the top level and every shard-N/ or part-N/
 * subdirectory, the readers' pass) three times: the first from wherever the
 * data is (the page cache if the directory was just written), the others warm.
 * Prints bytes, seconds and GB/s per pass. Serial, no MPI: one rank's share of
 * a sharded index is its shard directory. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "mms_fs.h"
#include "mms_log.h"
#include "mms_manifest.h"

static double verify_all(const mms_manifest_t *m, const char *dir, uint64_t *bytes) {
    double t0 = mms_now();
    *bytes = 0;
    if (mms_manifest_verify_files(m, dir, NULL, bytes) != MMS_OK) return -1;
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "shard-", 6) && strncmp(de->d_name, "part-", 5)) continue;
        if (mms_manifest_verify_files(m, dir, de->d_name, bytes) != MMS_OK) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    return mms_now() - t0;
}

int main(int argc, char **argv) {
    mms_log_init(0, 1, MMS_LOG_INFO);
    if (argc < 2) {
        fprintf(stderr, "usage: bench_verify DIR [DIR ...]\n");
        return 2;
    }
    printf("dir\tfiles\tbytes\trecord_s\tverify1_s\tverify2_s\tverify3_s\tverify_GB_s\n");
    for (int a = 1; a < argc; a++) {
        mms_manifest_t *m = NULL;
        if (mms_manifest_read_dir(argv[a], NULL, 1 << 30, &m) != MMS_OK) {
            fprintf(stderr, "bench_verify: %s: %s\n", argv[a], mms_error_message());
            return 1;
        }
        double t0 = mms_now();
        if (mms_manifest_record_files(m, argv[a], NULL) != MMS_OK) {
            fprintf(stderr, "bench_verify: %s: %s\n", argv[a], mms_error_message());
            return 1;
        }
        double rec = mms_now() - t0, v[3];
        uint64_t bytes = 0;
        for (int i = 0; i < 3; i++) {
            v[i] = verify_all(m, argv[a], &bytes);
            if (v[i] < 0) {
                fprintf(stderr, "bench_verify: %s: %s\n", argv[a], mms_error_message());
                return 1;
            }
        }
        double best = v[1] < v[2] ? v[1] : v[2];
        printf("%s\t%zu\t%llu\t%.3f\t%.3f\t%.3f\t%.3f\t%.2f\n", argv[a], mms_manifest_recorded_files(m),
               (unsigned long long)bytes, rec, v[0], v[1], v[2], best > 0 ? bytes / best / 1e9 : 0);
        mms_manifest_destroy(&m);
    }
    return 0;
}
