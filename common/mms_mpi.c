/* mms_mpi.c: see mms_mpi.h. */
#define _GNU_SOURCE
#include "mms_mpi.h"

#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mms_array.h"
#include "mms_log.h"

void mms_mpi_error(int rc, const char *what, const char *file, int line, const char *func) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len] = '\0';
    mms_error_set(MMS_ERR_MPI, file, line, func, "MPI call %s failed: %s", what, msg);
}

mms_status mms_mpi_agree(mms_status local, MPI_Comm comm) {
    int up = 0;
    MPI_Initialized(&up);
    if (!up) return local; /* `mmsage <command> --help` runs without MPI */
    int in = local, out = 0;
    int rc = MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, comm);
    if (rc != MPI_SUCCESS) {
        mms_mpi_error(rc, "MPI_Allreduce(status)", __FILE__, __LINE__, __func__);
        return MMS_ERR_MPI;
    }
    if (out == MMS_OK) return MMS_OK;
    /* every rank returns the agreed (largest) code, so the job's exit status is
     * the failure's own (mmsage help exit-codes) whichever rank mpirun sees
     * exit first; the rank that failed has logged why */
    if (local == MMS_OK) mms_log_debug("stopping: another rank failed (%s)", mms_status_name(out));
    return (mms_status)out;
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

/* ---------------------------------------------------------------- polite waits */

mms_status mms_mpi_wait_polite(MPI_Request *rq, mms_mpi_wait_t how) {
    int done = 0;
    MMS_MPI_CALL(MPI_Test(rq, &done, MPI_STATUS_IGNORE));
    if (done) return MMS_OK;
    const double t0 = mms_now();
    double waited = 0;
    /* 1. spin: pure at first, then yielding the core between polls */
    while (waited < how.spin || how.sleep_max <= 0) {
        if (waited >= MMS_MPI_PURE_SPIN) sched_yield();
        MMS_MPI_CALL(MPI_Test(rq, &done, MPI_STATUS_IGNORE));
        if (done) return MMS_OK;
        waited = mms_now() - t0;
    }
    /* 2. sleep: a nap never longer than the time waited so far nor sleep_max */
    double nap = 10e-6;
    for (;;) {
        double n = nap < how.sleep_max ? nap : how.sleep_max;
        if (n > waited) n = waited;
        struct timespec ts = {(time_t)n, (long)((n - (double)(time_t)n) * 1e9)};
        nanosleep(&ts, NULL);
        MMS_MPI_CALL(MPI_Test(rq, &done, MPI_STATUS_IGNORE));
        if (done) return MMS_OK;
        nap *= 2;
        waited = mms_now() - t0;
    }
}

mms_status mms_mpi_arrive(MPI_Comm comm, mms_mpi_wait_t how) {
    MPI_Request rq;
    MMS_MPI_CALL(MPI_Ibarrier(comm, &rq));
    return mms_mpi_wait_polite(&rq, how);
}

/* ---------------------------------------------------------------- exchange plan */

static mms_status plan_counts(mms_mpi_plan_t *pl, int P) {
    if (pl->counts_block && pl->nranks == P) return MMS_OK;
    free(pl->counts_block);
    pl->counts_block = NULL;
    MMS_CALL(mms_calloc((size_t)P * 8, sizeof(int), &pl->counts_block));
    int *c = pl->counts_block;
    pl->nranks = P;
    pl->ask_count = c;
    pl->ask_displ = c + P;
    pl->ans_count = c + 2 * P;
    pl->ans_displ = c + 3 * P;
    pl->ask_rows = c + 4 * P;
    pl->ask_rdispl = c + 5 * P;
    pl->ans_rows = c + 6 * P;
    pl->ans_rdispl = c + 7 * P;
    return MMS_OK;
}

mms_status mms_mpi_plan_make(mms_mpi_plan_t *pl, const int64_t *ids, const int *count, int width,
                             MPI_Comm comm) {
    int P;
    MMS_MPI_CALL(MPI_Comm_size(comm, &P));
    /* the same on every rank: allocated on the first call (or a new size) only */
    if (!pl->counts_block || pl->nranks != P) MMS_CALL(mms_mpi_agree(plan_counts(pl, P), comm));
    pl->width = width;
    memcpy(pl->ask_count, count, (size_t)P * sizeof(int));
    MMS_MPI_CALL(MPI_Alltoall(pl->ask_count, 1, MPI_INT, pl->ans_count, 1, MPI_INT, comm));
    int64_t na = 0, nb = 0;
    for (int r = 0; r < P; r++) {
        pl->ask_displ[r] = (int)na;
        pl->ans_displ[r] = (int)nb;
        na += pl->ask_count[r];
        nb += pl->ans_count[r];
    }
    pl->n_ask = na;
    pl->n_ans = nb;
    mms_status s = MMS_OK;
    int64_t most = na > nb ? na : nb;
    if (most * (int64_t)width >= INT_MAX) {
        mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                      "an exchange of %lld rows x %d elements exceeds one MPI message; use more ranks",
                      (long long)most, width);
        s = MMS_ERR_ARG;
    }
    if (s == MMS_OK) s = mms_grow(&pl->asked, sizeof *pl->asked, (size_t)nb + 1, &pl->asked_cap);
    MMS_CALL(mms_mpi_agree(s, comm));
    MMS_MPI_CALL(MPI_Alltoallv(ids, pl->ask_count, pl->ask_displ, MPI_INT64_T, pl->asked,
                               pl->ans_count, pl->ans_displ, MPI_INT64_T, comm));
    for (int r = 0; r < P; r++) {
        pl->ask_rows[r] = pl->ask_count[r] * width;
        pl->ask_rdispl[r] = pl->ask_displ[r] * width;
        pl->ans_rows[r] = pl->ans_count[r] * width;
        pl->ans_rdispl[r] = pl->ans_displ[r] * width;
    }
    return MMS_OK;
}

mms_status mms_mpi_plan_rows(const mms_mpi_plan_t *pl, const void *answers, void *rows,
                             MPI_Datatype type, MPI_Comm comm) {
    MMS_MPI_CALL(MPI_Alltoallv(answers, pl->ans_rows, pl->ans_rdispl, type, rows, pl->ask_rows,
                               pl->ask_rdispl, type, comm));
    return MMS_OK;
}

mms_status mms_mpi_plan_rows_back(const mms_mpi_plan_t *pl, const void *rows, void *answers,
                                  MPI_Datatype type, MPI_Comm comm) {
    MMS_MPI_CALL(MPI_Alltoallv(rows, pl->ask_rows, pl->ask_rdispl, type, answers, pl->ans_rows,
                               pl->ans_rdispl, type, comm));
    return MMS_OK;
}

void mms_mpi_plan_free(mms_mpi_plan_t *pl) {
    if (!pl) return;
    free(pl->counts_block);
    free(pl->asked);
    memset(pl, 0, sizeof *pl);
}
