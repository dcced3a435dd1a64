/* mms_test.c: see mms_test.h. */
#define _GNU_SOURCE
#include "mms_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mms_fs.h"

int mms_test_failures = 0;
int mms_test_checks = 0;

int mms_test_finish(const char *name) {
    if (mms_test_failures) {
        fprintf(stderr, "%s: %d of %d checks FAILED\n", name, mms_test_failures, mms_test_checks);
        return 1;
    }
    fprintf(stderr, "%s: all %d checks passed\n", name, mms_test_checks);
    return 0;
}

const char *mms_test_tmpdir(const char *name) {
    static char buf[MMS_PATH_MAX];
    const char *base = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/mms-test-%s-%ld", base && base[0] ? base : "/tmp", name,
             (long)getpid());
    mms_rm_rf(buf);
    mms_mkdir_p(buf);
    return buf;
}

const char *mms_test_shared(const char *sub) {
    static char buf[MMS_PATH_MAX];
    const char *base = getenv("MMS_SHARED_DATA");
    if (!base) return NULL;
    snprintf(buf, sizeof buf, "%s/%s", base, sub);
    return mms_path_exists(buf) ? buf : NULL;
}
