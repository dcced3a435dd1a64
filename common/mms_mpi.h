/* mms_mpi.h: the one adapter between mms_status and MPI.
 *
 * This is the only file under common/ that includes mpi.h: everything else in
 * common/ takes (rank, nranks) as integers. It turns MPI error codes into
 * mms_status and lets ranks agree on failure before a collective phase, so that
 * all ranks fail together with one clear message instead of hanging.
 */
#ifndef MMS_MPI_H
#define MMS_MPI_H

#include <mpi.h>

#include "mms_status.h"

/* Collective. Every rank passes its local status; returns MMS_OK on every rank
 * if all were ok, otherwise the local status on failing ranks and MMS_ERR_MPI
 * (with a short "stopping: another rank failed" note) on the others. */
mms_status mms_mpi_agree(mms_status local, MPI_Comm comm);

/* Wrap an MPI return code. */
#define MMS_MPI_CALL(expr)                                                          \
    do {                                                                            \
        int mms_mpi_rc_ = (expr);                                                   \
        if (mms_mpi_rc_ != MPI_SUCCESS) {                                           \
            mms_mpi_error(mms_mpi_rc_, #expr, __FILE__, __LINE__, __func__);        \
            return MMS_ERR_MPI;                                                     \
        }                                                                           \
    } while (0)

void mms_mpi_error(int rc, const char *what, const char *file, int line, const char *func);

/* MPI datatype for int64_t / size_t counts. */
#define MMS_MPI_I64 MPI_INT64_T

/* Byte counts above INT_MAX split into chunks for MPI_Bcast. Collective. */
mms_status mms_mpi_bcast_big(void *buf, size_t bytes, int root, MPI_Comm comm);

#endif
