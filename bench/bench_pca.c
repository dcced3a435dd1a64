/* bench_pca.c: time mms_pca_fit on synthetic rows (n x d -> k).
 * usage: mpirun -np P bench_pca [n] [d] [k]
 * Rows: 64 latent factors with decaying scales through a fixed loading matrix,
 * plus noise; row i depends only on (seed, i). Prints one result line (rank 0). */
#include <cblas.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "mms_blas.h"
#include "mms_log.h"
#include "mms_rng.h"
#include "pca.h"

int main(int argc, char **argv) {
    mms_blas_fix_kernel(argv); /* before MPI and BLAS: the CPU's own kernels */
    MPI_Init(&argc, &argv);
    int rank, np;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &np);
    mms_log_init(rank, np, MMS_LOG_INFO);
    if (rank == 0) {
        char blas_[256];
        printf("# BLAS core %s\n", mms_blas_describe(blas_, sizeof blas_));
        fflush(stdout);
    }
    long long n = argc > 1 ? atoll(argv[1]) : 100000;
    int d = argc > 2 ? atoi(argv[2]) : 2048, k = argc > 3 ? atoi(argv[3]) : 512, L = 64;
    long long lo = n * rank / np, hi = n * (rank + 1) / np, nl = hi - lo;
    float *x = malloc((size_t)nl * d * sizeof *x), *z = malloc((size_t)nl * L * sizeof *z);
    float *load = malloc((size_t)L * d * sizeof *load);
    for (int l = 0; l < L; l++) {
        mms_rng_t r;
        mms_rng_init(&r, 5, MMS_STREAM_INIT, (uint64_t)l);
        for (int j = 0; j < d; j++) load[l * d + j] = (float)(mms_rng_normal(&r) / sqrt((double)d));
    }
    for (long long i = 0; i < nl; i++) {
        mms_rng_t r;
        mms_rng_init(&r, 5, MMS_STREAM_SYNTH, (uint64_t)(lo + i));
        for (int l = 0; l < L; l++) z[i * L + l] = (float)(20.0 / (1.0 + l) * mms_rng_normal(&r));
        for (int j = 0; j < d; j++) x[i * d + j] = (float)(0.5 * mms_rng_uniform(&r)) + 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nl, d, L, 1.0f, z, L, load, d,
                1.0f, x, d);
    free(z);
    free(load);
    mms_pca_t p;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    mms_status s = mms_pca_fit(x, nl, n, d, k, MPI_COMM_WORLD, &p);
    double t = MPI_Wtime() - t0, tmax = 0;
    MPI_Reduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    double kept = 0;
    for (int c = 0; !s && c < k; c++) kept += p.explained[c];
    if (rank == 0)
        printf("bench_pca n %lld d %d k %d ranks %d: status %d, fit %.2f s, explained(top k) %.4f\n", n, d,
               k, np, s, tmax, s ? 0.0 : kept);
    if (!s && rank == 0 && argc > 4) mms_pca_save(&p, argv[4]);
    if (!s) mms_pca_free(&p);
    free(x);
    MPI_Finalize();
    return s ? 1 : 0;
}
