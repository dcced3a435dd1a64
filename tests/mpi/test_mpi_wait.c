/* test_mpi_wait.c: the polite waits of mms_mpi.h. A request waited with
 * mms_mpi_wait_polite completes with the right data (broadcast, reduction)
 * whichever rank is late; mms_mpi_arrive returns on no rank before the last
 * one arrived; a rank waiting 0.3 s for a late one sleeps (its CPU time
 * stays far below the wait, where a spinning wait would use all of its
 * share); sleep_max 0 never sleeps and still completes. */
#define _GNU_SOURCE
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_test.h"

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, P;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    const mms_mpi_wait_t idle = {.spin = 1e-3, .sleep_max = 1e-3};
    const mms_mpi_wait_t spin_only = {.spin = 0, .sleep_max = 0};

    /* a completed or null request returns at once */
    MPI_Request rq = MPI_REQUEST_NULL;
    T_OK(mms_mpi_wait_polite(&rq, MMS_MPI_WAIT_STEP));

    /* broadcast from a late root (the last rank), under each policy */
    const mms_mpi_wait_t pol[3] = {MMS_MPI_WAIT_STEP, idle, spin_only};
    for (int k = 0; k < 3; k++) {
        int64_t v[16];
        for (int i = 0; i < 16; i++) v[i] = rank == P - 1 ? 1000 * k + i : -1;
        if (rank == P - 1) sleep_s(0.02);
        T_EQ_INT(MPI_Ibcast(v, 16, MPI_INT64_T, P - 1, MPI_COMM_WORLD, &rq), MPI_SUCCESS);
        T_OK(mms_mpi_wait_polite(&rq, pol[k]));
        for (int i = 0; i < 16; i++) T_EQ_INT(v[i], 1000 * k + i);
    }

    /* a reduction with rank 0 late: the exact integer sum everywhere */
    {
        int64_t x = rank + 1, sum = 0;
        if (rank == 0) sleep_s(0.02);
        T_EQ_INT(MPI_Iallreduce(&x, &sum, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD, &rq), MPI_SUCCESS);
        T_OK(mms_mpi_wait_polite(&rq, MMS_MPI_WAIT_STEP));
        T_EQ_INT(sum, (int64_t)P * (P + 1) / 2);
    }

    /* arrival: ranks come in one after another; none leaves before the last
     * one came (one clock for all ranks of a node: CLOCK_MONOTONIC) */
    {
        sleep_s(0.01 * rank);
        double in = mms_now();
        T_OK(mms_mpi_arrive(MPI_COMM_WORLD, MMS_MPI_WAIT_STEP));
        double out = mms_now(), last_in = 0;
        MPI_Allreduce(&in, &last_in, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        T_CHECK(out >= last_in);
        /* then a float reduction gives the bits of the plain call */
        float a[257], b[257], c[257];
        for (int i = 0; i < 257; i++) a[i] = (float)(rank + 1) / (float)(i + 3);
        MPI_Allreduce(a, b, 257, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        sleep_s(0.005 * (P - 1 - rank));
        T_OK(mms_mpi_arrive(MPI_COMM_WORLD, MMS_MPI_WAIT_STEP));
        MPI_Allreduce(a, c, 257, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        T_CHECK(memcmp(b, c, sizeof b) == 0);
    }

    /* a long wait sleeps: every rank but the last waits 0.3 s for it under
     * the idle policy. CPU time, not wall time: a sleeping wait uses a few
     * percent of the wait; spinning would use all the core it is given. */
    if (P > 1) {
        MPI_Barrier(MPI_COMM_WORLD);
        double c0 = cpu_now(), w0 = mms_now();
        int token = rank == P - 1 ? 7 : 0;
        if (rank == P - 1) sleep_s(0.3);
        T_EQ_INT(MPI_Ibcast(&token, 1, MPI_INT, P - 1, MPI_COMM_WORLD, &rq), MPI_SUCCESS);
        T_OK(mms_mpi_wait_polite(&rq, idle));
        double cpu = cpu_now() - c0, wall = mms_now() - w0;
        T_EQ_INT(token, 7);
        if (rank < P - 1) {
            /* (the wait is about 0.3 s; a rank descheduled after the barrier
             * waits less, and then also spends less) */
            T_CHECK(cpu < 0.5 * wall + 0.01);
            if (rank == 0)
                fprintf(stderr, "rank 0 waited %.3f s for rank %d using %.4f s of CPU (%.1f %%)\n",
                        wall, P - 1, cpu, 100.0 * cpu / wall);
        }
    }

    int fails = mms_test_failures, total = 0;
    MPI_Allreduce(&fails, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    mms_test_failures = total;
    int rc = mms_test_finish("test_mpi_wait");
    MPI_Finalize();
    return rc;
}
