/* bench_train.c: training throughput of mmsage on a partitioned graph.
 *   mpirun -np P bench_train --graph G [--steps 300] [--warmup 30] [--lr 1e-3]
 * Runs the real trainer (worker/train.h) for warmup + steps steps into a
 * temporary model directory and prints pairs/s, seconds per epoch, achieved
 * GFLOP/s (forward + backward, all ranks), halo bytes, allreduce and exchange
 * bytes per step, next to the single-thread cblas_sgemm peak of this machine
 * (times P ranks). Numbers only; nothing is asserted. */
#include <cblas.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mms_blas.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_opts.h"
#include "train.h"

static double sgemm_peak(void) {
    const int n = 1024;
    float *a = calloc((size_t)n * n, sizeof(float)), *b = calloc((size_t)n * n, sizeof(float)),
          *c = calloc((size_t)n * n, sizeof(float));
    for (int i = 0; i < n * n; i++) a[i] = b[i] = 1e-3f * (float)(i % 97);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double t0 = mms_now();
    int reps = 5;
    for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double dt = mms_now() - t0;
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n * reps / dt / 1e9;
}

int main(int argc, char **argv) {
    mms_blas_fix_kernel(argv); /* before MPI and BLAS: the CPU's own kernels */
    MPI_Init(&argc, &argv);
    int rank, P;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    mms_log_init(rank, P, MMS_LOG_WARN);
    if (rank == 0) {
        char blas_[256];
        printf("# BLAS core %s\n", mms_blas_describe(blas_, sizeof blas_));
        fflush(stdout);
    }
    openblas_set_num_threads(1);
    const char *graph = NULL;
    int steps = 300, warmup = 30;
    double lr = 1e-3;
    mms_opt_t opts[] = {
        {"graph", MMS_OPT_STR, &graph, "partitioned graph (P parts)", 1, 0, 0, 0},
        {"steps", MMS_OPT_INT, &steps, "timed steps", 0, 1, 1, 1e9},
        {"warmup", MMS_OPT_INT, &warmup, "untimed steps first", 0, 1, 0, 1e9},
        {"lr", MMS_OPT_DOUBLE, &lr, "learning rate", 0, 0, 0, 0},
    };
    int help = 0;
    if (mms_opts_parse("bench_train", "Training throughput.", opts, 4, argc - 1, argv + 1, &help) != MMS_OK ||
        help) {
        MPI_Finalize();
        return help ? 0 : 2;
    }
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/bench_train.%d", (int)getpid());
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    mms_train_params_t p;
    mms_train_params_default(&p);
    p.graph = graph;
    p.out = dir;
    p.force = 1;
    p.lr = lr;
    p.log_every = 1 << 30;
    p.ckpt_every = 0;
    p.epochs = 0;
    mms_train_summary_t w, s;
    /* warm-up run, then the timed run (each builds its walks; only steps are timed) */
    p.max_steps = warmup;
    if (warmup > 0 && mms_train(&p, MPI_COMM_WORLD, &w) != MMS_OK) {
        MPI_Finalize();
        return 1;
    }
    p.max_steps = steps;
    if (mms_train(&p, MPI_COMM_WORLD, &s) != MMS_OK) {
        MPI_Finalize();
        return 1;
    }
    double peak = sgemm_peak(), peak_all = 0;
    MPI_Reduce(&peak, &peak_all, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        mms_rm_rf(dir);
        double epoch_pairs = (double)s.pairs / (double)s.steps * (double)s.steps_per_epoch;
        printf("graph              %s\n", graph);
        printf("ranks              %d\n", P);
        printf("steps              %lld timed (+%d warm-up), %lld per epoch\n", (long long)s.steps, warmup,
               (long long)s.steps_per_epoch);
        printf("pairs/s            %.0f\n", s.pairs_per_sec);
        printf("seconds/epoch      %.1f\n", epoch_pairs / s.pairs_per_sec);
        printf("GFLOP/s achieved   %.2f (forward + backward, all ranks)\n", s.gflops);
        printf("sgemm peak         %.1f GFLOP/s (1024^3, one thread per rank, summed over %d ranks)\n",
               peak_all, P);
        printf("halo bytes         %lld (once, all ranks)\n", (long long)s.halo_bytes);
        printf("allreduce/step     %lld bytes (parameter gradient block)\n", (long long)s.allreduce_bytes_per_step);
        printf("exchange/step      %lld bytes (z and dL/dz of remote targets, tag rows; per rank)\n",
               (long long)s.exchange_bytes_per_step);
    }
    MPI_Finalize();
    return 0;
}
