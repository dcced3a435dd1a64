/* mms_test.h: a minimal test harness. Every failed check prints what differed
 * (file:line, expression, values) and makes the test exit non-zero. */
#ifndef MMS_TEST_H
#define MMS_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_status.h"

extern int mms_test_failures;
extern int mms_test_checks;

#define T_CHECK(cond)                                                               \
    do {                                                                            \
        mms_test_checks++;                                                          \
        if (!(cond)) {                                                              \
            mms_test_failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
        }                                                                           \
    } while (0)

#define T_EQ_INT(a, b)                                                              \
    do {                                                                            \
        long long ta_ = (long long)(a), tb_ = (long long)(b);                       \
        mms_test_checks++;                                                          \
        if (ta_ != tb_) {                                                           \
            mms_test_failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s == %s: %lld != %lld\n", __FILE__, __LINE__, \
                    #a, #b, ta_, tb_);                                              \
        }                                                                           \
    } while (0)

#define T_NEAR(a, b, tol)                                                           \
    do {                                                                            \
        double ta_ = (double)(a), tb_ = (double)(b);                                \
        mms_test_checks++;                                                          \
        if (!(fabs(ta_ - tb_) <= (tol))) {                                          \
            mms_test_failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s ~ %s: %.9g vs %.9g (tol %g)\n", __FILE__,  \
                    __LINE__, #a, #b, ta_, tb_, (double)(tol));                     \
        }                                                                           \
    } while (0)

#define T_STREQ(a, b)                                                               \
    do {                                                                            \
        const char *ta_ = (a), *tb_ = (b);                                          \
        mms_test_checks++;                                                          \
        if (!ta_ || !tb_ || strcmp(ta_, tb_)) {                                     \
            mms_test_failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s == %s: '%s' != '%s'\n", __FILE__, __LINE__,  \
                    #a, #b, ta_ ? ta_ : "(null)", tb_ ? tb_ : "(null)");            \
        }                                                                           \
    } while (0)

/* A call that must succeed / fail with a given status. */
#define T_OK(expr) T_EQ_INT((expr), MMS_OK)
#define T_FAILS(expr, code) T_EQ_INT((expr), (code))

/* Message of the last error must contain substring s. */
#define T_MSG_HAS(s)                                                                \
    do {                                                                            \
        mms_test_checks++;                                                          \
        if (!strstr(mms_error_message(), (s))) {                                    \
            mms_test_failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: last error '%s' lacks '%s'\n", __FILE__, __LINE__, \
                    mms_error_message(), (s));                                      \
        }                                                                           \
    } while (0)

/* Print a summary and return the exit code for main(). */
int mms_test_finish(const char *name);
/* A fresh scratch directory under $TMPDIR (removed by the caller if wanted). */
const char *mms_test_tmpdir(const char *name);
/* $MMS_SHARED_DATA/<sub> if it exists, else NULL (caller skips with exit 77). */
const char *mms_test_shared(const char *sub);

#endif
