/* mms_mpi.h: the one adapter between mms_status and MPI.
 *
 * This is the only file under common/ that includes mpi.h: everything else in
 * common/ takes (rank, nranks) as integers. It turns MPI error codes into
 * mms_status and lets ranks agree on failure before a collective phase, so that
 * all ranks fail together with one clear message instead of hanging. It also
 * holds the MPI patterns more than one stage repeats: a broadcast of any
 * size, the exchange plan (ids to their owners, rows back) and the polite
 * wait (poll, yield, sleep) of a rank waiting for the others. No math here.
 */
#ifndef MMS_MPI_H
#define MMS_MPI_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"

/* Collective. Every rank passes its local status; returns MMS_OK on every rank
 * if all were ok, otherwise the same failure code on every rank (the largest
 * of the ranks' codes), so the process exit status is the failure's own at any
 * rank count. Ranks that did not fail note "stopping: another rank failed"
 * (debug). Without MPI initialised (a command's --help) returns local. */
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

/* ---- polite waits: a waiting rank leaves its core to others ----
 * Open MPI's blocking calls busy-poll: a rank that waits in a collective for a
 * slower or descheduled rank holds a whole core (mpi_yield_when_idle only adds
 * sched_yield between polls, still 100 % CPU). On a shared node that core is
 * taken from the very rank being waited for. mms_mpi_wait_polite completes a
 * request by polling MPI_Test in two stages:
 *   1. spin: MPI_Test in a loop, sched_yield between polls after the first
 *      MMS_MPI_PURE_SPIN seconds (free on an idle core; on a shared one the
 *      core goes to a runnable process), for `spin` seconds in all;
 *   2. sleep: nanosleep between polls, doubling from 10 us up to `sleep_max`
 *      (0: never sleep, stay in stage 1).
 * A sleeping rank notices completion at most one nap late, and a nap never
 * exceeds the time already waited, so the added latency is at most
 * min(time waited, sleep_max) plus the kernel's timer slack (50 us). */
#define MMS_MPI_PURE_SPIN 50e-6
typedef struct {
    double spin;      /* seconds of polling before the first sleep */
    double sleep_max; /* seconds, the longest nap between polls; 0 = never sleep */
} mms_mpi_wait_t;

/* Training sync points: waits are the ranks' imbalance (< 1 ms on a quiet
 * node) or a descheduled peer (a scheduler slice, several ms). */
#define MMS_MPI_WAIT_STEP ((mms_mpi_wait_t){.spin = 200e-6, .sleep_max = 200e-6})

/* Complete *rq (MPI_Wait's contract, MPI_STATUS_IGNORE) politely, see above. */
mms_status mms_mpi_wait_polite(MPI_Request *rq, mms_mpi_wait_t how);

/* Collective. Wait politely until every rank of comm has arrived here
 * (MPI_Ibarrier + mms_mpi_wait_polite). Called right before a blocking
 * collective that follows uneven work, the early ranks wait here instead of
 * spinning inside the collective, which then runs with every rank present:
 * the same algorithm, reduction order and bits as without the call. */
mms_status mms_mpi_arrive(MPI_Comm comm, mms_mpi_wait_t how);

/* ---- exchange plan: "send these ids to their owners, get their rows back" ----
 * Every rank asks the owner ranks for the rows of some ids and answers what
 * the others ask of it:
 *   1. mms_mpi_plan_make: counts (MPI_Alltoall), then the ids (MPI_Alltoallv);
 *      plan->asked then holds the ids the other ranks ask of this one;
 *   2. mms_mpi_plan_rows: the owners' answers (one row of `width` elements per
 *      asked id, in plan->asked order) travel back (MPI_Alltoallv) and arrive
 *      in the order of the caller's ids;
 *   3. mms_mpi_plan_rows_back (optional): rows for the caller's ids go to the
 *      owners the other way (e.g. gradients of the rows received in 2).
 * A plan is zeroed by the caller ({0}), reused across calls (its buffers only
 * grow) and freed with mms_mpi_plan_free. Message sizes travel as int: a plan
 * whose rows do not fit one MPI message fails on every rank together. */
typedef struct {
    int nranks;
    int width;                      /* elements per row */
    int64_t n_ask;                  /* ids this rank asks for (the caller's array) */
    int64_t n_ans;                  /* ids the other ranks ask of this rank */
    int *ask_count, *ask_displ;     /* nranks: ids asked of rank r, and where they start */
    int *ans_count, *ans_displ;     /* nranks: ids rank r asks of this rank */
    int *ask_rows, *ask_rdispl;     /* the same in row elements (x width) */
    int *ans_rows, *ans_rdispl;
    int64_t *asked;                 /* n_ans ids asked of this rank, grouped by asking rank */
    size_t asked_cap;
    int *counts_block;              /* private: the one allocation behind the count arrays */
} mms_mpi_plan_t;

/* Collective. ids[0..sum(count)) grouped by owner rank, count[r] of them
 * owned by rank r (comm's size entries); rows will have width elements. Fills
 * the plan's counts and plan->asked. MMS_ERR_ARG on every rank when some
 * rank's rows would exceed one MPI message (INT_MAX elements); MMS_ERR_NOMEM
 * likewise; the ranks agree on failure before exchanging ids. */
mms_status mms_mpi_plan_make(mms_mpi_plan_t *plan, const int64_t *ids, const int *count, int width,
                             MPI_Comm comm);
/* Collective. answers: n_ans rows (plan->asked order) of plan->width elements
 * of type; rows: receives n_ask rows, in the order of the ids given to make. */
mms_status mms_mpi_plan_rows(const mms_mpi_plan_t *plan, const void *answers, void *rows,
                             MPI_Datatype type, MPI_Comm comm);
/* Collective. The reverse of mms_mpi_plan_rows: rows (n_ask, the ids' order)
 * go to their owners, answers receives n_ans rows (plan->asked order). */
mms_status mms_mpi_plan_rows_back(const mms_mpi_plan_t *plan, const void *rows, void *answers,
                                  MPI_Datatype type, MPI_Comm comm);
void mms_mpi_plan_free(mms_mpi_plan_t *plan);

#endif
