/* mms_blas.c: which OpenBLAS kernels run, and a guard against the wrong ones.
 *
 * Debian's OpenBLAS 0.3.21 is built with DYNAMIC_ARCH: at load time (a library
 * constructor, before main) it reads cpuid and picks a kernel family. On CPUs
 * newer than its tables (an AVX-512 Xeon of 2023, for one) it falls back to
 * `Prescott`, the SSE3 kernels, and SGEMM runs ~6x slower. The choice cannot be
 * changed once the library is loaded, so the only safe fix is to run the
 * program again with OPENBLAS_CORETYPE set before anything (BLAS, MPI) starts.
 *
 * Nothing here is done by hand that OpenBLAS offers: the core name comes from
 * openblas_get_corename(); the CPU's features from the compiler's cpuid
 * builtins. What OpenBLAS does not offer is the comparison of the two. */
#define _POSIX_C_SOURCE 200809L
#include "mms_blas.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MMS_BLAS_REEXEC_ENV "MMS_BLAS_CORRECTED_FROM"

/* Kernel classes by the widest vector unit their SGEMM uses. */
enum { K_SSE = 1, K_AVX = 2, K_AVX2 = 3, K_AVX512 = 4 };

static const struct {
    const char *name;
    int cls;
} k_cores[] = {
    {"SapphireRapids", K_AVX512}, {"Cooperlake", K_AVX512}, {"SkylakeX", K_AVX512},
    {"Haswell", K_AVX2},          {"Zen", K_AVX2},          {"Sandybridge", K_AVX},
    {"Bulldozer", K_AVX},         {"Piledriver", K_AVX},    {"Steamroller", K_AVX},
    {"Excavator", K_AVX},
};

int mms_blas_core_class(const char *core) {
    if (!core) return 0;
    for (size_t i = 0; i < sizeof k_cores / sizeof k_cores[0]; i++)
        if (!strcmp(core, k_cores[i].name)) return k_cores[i].cls;
    return K_SSE; /* Prescott, Core2, Penryn, Nehalem, Atom, Opteron, ...: SSE kernels */
}

/* The best kernel family this CPU can run, as an OPENBLAS_CORETYPE name. */
const char *mms_blas_cpu_best(int *cls) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512cd")) {
        *cls = K_AVX512;
        return "SkylakeX";
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *cls = K_AVX2;
        return "Haswell";
    }
    if (__builtin_cpu_supports("avx")) {
        *cls = K_AVX;
        return "Sandybridge";
    }
#endif
    *cls = 0;
    return NULL;
}

void mms_blas_fix_kernel(char **argv) {
    const char *forced = getenv("OPENBLAS_CORETYPE");
    const char *fix = getenv("MMS_BLAS_FIX");
    if (fix && !strcmp(fix, "0")) return;
    if (getenv(MMS_BLAS_REEXEC_ENV)) return; /* already corrected (or tried) */
    /* OPENBLAS_CORETYPE is the user's choice unless MMS_BLAS_FIX=force */
    if (forced && *forced && !(fix && !strcmp(fix, "force"))) return;
    int best_cls;
    const char *best = mms_blas_cpu_best(&best_cls);
    const char *core = openblas_get_corename();
    if (!best || mms_blas_core_class(core) >= best_cls) return;
    /* Run again with the matching kernels. The marker names what was corrected
     * (for the log line) and stops a second round if OpenBLAS ignored us. */
    if (setenv("OPENBLAS_CORETYPE", best, 1) || setenv(MMS_BLAS_REEXEC_ENV, core, 1)) return;
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the kernels we have, and say so later */
    unsetenv("OPENBLAS_CORETYPE");
    setenv(MMS_BLAS_REEXEC_ENV, "", 1);
}

const char *mms_blas_describe(char *buf, size_t len) {
    const char *core = openblas_get_corename();
    const char *from = getenv(MMS_BLAS_REEXEC_ENV);
    const char *forced = getenv("OPENBLAS_CORETYPE");
    int best_cls;
    const char *best = mms_blas_cpu_best(&best_cls);
    if (from && *from)
        snprintf(buf, len, "%s (corrected from %s, slower than this CPU allows; MMS_BLAS_FIX=0 keeps it)",
                 core, from);
    else if (from)
        snprintf(buf, len, "%s (slower than this CPU allows: the re-run with OPENBLAS_CORETYPE=%s failed)",
                 core, best ? best : "?");
    else if (forced && *forced)
        snprintf(buf, len, "%s (OPENBLAS_CORETYPE=%s)", core, forced);
    else if (best && mms_blas_core_class(core) < best_cls)
        snprintf(buf, len, "%s (slower than this CPU allows: MMS_BLAS_FIX=0; OPENBLAS_CORETYPE=%s would match it)",
                 core, best);
    else
        snprintf(buf, len, "%s", core);
    return buf;
}
