/* mms_mpi.c: see mms_mpi.h. */
#include "mms_mpi.h"

#include <limits.h>
#include <stdint.h>

#include "mms_log.h"

void mms_mpi_error(int rc, const char *what, const char *file, int line, const char *func) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len] = '\0';
    mms_error_set(MMS_ERR_MPI, file, line, func, "MPI call %s failed: %s", what, msg);
}

mms_status mms_mpi_agree(mms_status local, MPI_Comm comm) {
    int in = local, out = 0;
    int rc = MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, comm);
    if (rc != MPI_SUCCESS) {
        mms_mpi_error(rc, "MPI_Allreduce(status)", __FILE__, __LINE__, __func__);
        return MMS_ERR_MPI;
    }
    if (out == MMS_OK) return MMS_OK;
    if (local != MMS_OK) return local;
    mms_log_debug("stopping: another rank failed (%s)", mms_status_name(out));
    return MMS_ERR_MPI;
}

mms_status mms_mpi_bcast_big(void *buf, size_t bytes, int root, MPI_Comm comm) {
    char *p = buf;
    const size_t chunk = (size_t)1 << 30;
    while (bytes > 0) {
        size_t n = bytes < chunk ? bytes : chunk;
        MMS_MPI_CALL(MPI_Bcast(p, (int)n, MPI_BYTE, root, comm));
        p += n;
        bytes -= n;
    }
    return MMS_OK;
}
