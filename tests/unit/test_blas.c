/* test_blas.c: the kernel-class table and the CPU's best family (mms_blas.c).
 * The re-run itself is tested end to end by tests/cli/blas_kernel.sh. */
#include <cblas.h>
#include <string.h>

#include "mms_blas.h"
#include "mms_log.h"
#include "mms_test.h"

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET);
    /* SSE-only families are class 1, whatever their name */
    T_EQ_INT(mms_blas_core_class("Prescott"), 1);
    T_EQ_INT(mms_blas_core_class("Nehalem"), 1);
    T_EQ_INT(mms_blas_core_class("Sandybridge"), 2);
    T_EQ_INT(mms_blas_core_class("Haswell"), 3);
    T_EQ_INT(mms_blas_core_class("Zen"), 3);
    T_EQ_INT(mms_blas_core_class("SkylakeX"), 4);
    T_EQ_INT(mms_blas_core_class("Cooperlake"), 4);
    T_EQ_INT(mms_blas_core_class(NULL), 0);
    int cls = -1;
    const char *best = mms_blas_cpu_best(&cls);
    if (best) {
        /* the best family's own class is the class reported */
        T_EQ_INT(mms_blas_core_class(best), cls);
        T_CHECK(cls >= 2);
    } else {
        T_EQ_INT(cls, 0);
    }
    /* the description always starts with the core OpenBLAS runs */
    char buf[256];
    const char *core = openblas_get_corename();
    T_CHECK(!strncmp(mms_blas_describe(buf, sizeof buf), core, strlen(core)));
    return mms_test_finish("test_blas");
}
