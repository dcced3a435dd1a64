/* mms_blas.h: the OpenBLAS kernel family in use, and the guard against a
 * family slower than the CPU supports (mms_blas.c says why). */
#ifndef MMS_BLAS_H
#define MMS_BLAS_H

#include <stddef.h>

/* Call first in main(), before MPI_Init and any BLAS call. If OpenBLAS picked
 * kernels of a narrower vector unit than the CPU has (Prescott on an AVX-512
 * CPU), the program is executed again with OPENBLAS_CORETYPE naming the
 * matching family (SkylakeX, Haswell or Sandybridge); otherwise it returns and
 * changes nothing. MMS_BLAS_FIX=0 turns this off; a user's OPENBLAS_CORETYPE
 * is kept unless MMS_BLAS_FIX=force. */
void mms_blas_fix_kernel(char **argv);

/* One line for the logs: the core name and, where it applies, what was
 * corrected or what would be faster. Writes into buf (len bytes); returns buf. */
const char *mms_blas_describe(char *buf, size_t len);

/* The widest kernel class of a core name (1 SSE, 2 AVX, 3 AVX2, 4 AVX-512), and
 * the best OPENBLAS_CORETYPE for this CPU with its class (NULL, 0 if unknown). */
int mms_blas_core_class(const char *core);
const char *mms_blas_cpu_best(int *cls);

#endif
