/* bench_knn.c: time the cosine kNN graph (exact ring or IVF) and compare it
 * with the practical limit, one plain cblas_sgemm per rank.
 *
 *   mpirun -np 2 bench_knn --n 100000 --d 512 --k 10
 *   bench_knn --mode ivf --n 1000000 --save /tmp/f.npy      (generate, keep, run)
 *   mpirun -np 2 bench_knn --mode ivf --features /tmp/f.npy
 *
 * Data: --features F.npy (float32 N x D, memory-mapped; --n takes its first
 * rows), or a synthetic catalog made here from mms_rng by global row id: a
 * mixture of Gaussian clusters (popularity skewed), grouped under
 * super-clusters, each with its own low-dimensional spread, plus isotropic
 * noise and a shared offset (so cosines are mostly positive, as with CNN
 * features). Exact mode: each rank makes only its rows. IVF: every rank needs
 * every row (generated, or mapped from --features).
 *
 * Printed (stdout, rank 0): seconds (slowest rank) and its CPU seconds (other
 * jobs on a shared machine inflate wall time, not CPU time), GFLOP/s counted
 * as 2 N^2 D (the convention of the target), the sgemm work really executed
 * (the ring multiplies each tile pair once, about half of 2 N^2 D), and the
 * limit: per rank one cblas_sgemm (N/P) x Nc x D, with Nc = N or less so that
 * C fits in --ref-mem GiB (the full N^2 output does not fit in memory), all
 * ranks at once, best of two calls, C touched beforehand. IVF: seconds and
 * recall@--recall-k on a sample against brute force. A benchmark prints
 * numbers; it asserts nothing.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime(CLOCK_PROCESS_CPUTIME_ID) */
#include <cblas.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_blas.h"
#include "knn.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_npy.h"
#include "mms_opts.h"
#include "mms_rng.h"
#include <time.h>

/* CPU seconds of this process: with other jobs on the machine, wall time
 * overstates our cost; both are printed. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    int32_t d, clusters, sub;
    double spread, noise, offset;
    uint64_t seed;
    float *centre; /* clusters x d */
    float *basis;  /* clusters x sub x d */
    float *shared; /* d: offset direction */
} synth_t;

static void unit_gauss(mms_rng_t *r, int32_t d, float *y, double scale) {
    double ss = 0;
    for (int32_t j = 0; j < d; j++) {
        y[j] = (float)mms_rng_normal(r);
        ss += (double)y[j] * y[j];
    }
    double f = scale / sqrt(ss > 0 ? ss : 1);
    for (int32_t j = 0; j < d; j++) y[j] = (float)(y[j] * f);
}

static mms_status synth_init(synth_t *sy) {
    const size_t d = (size_t)sy->d, C = (size_t)sy->clusters;
    int32_t nsuper = sy->clusters / 20 > 1 ? sy->clusters / 20 : 1;
    float *sup = NULL, *g = NULL;
    MMS_CALL(mms_malloc(sizeof(float) * C * d, &sy->centre));
    MMS_CALL(mms_malloc(sizeof(float) * C * (size_t)sy->sub * d, &sy->basis));
    MMS_CALL(mms_malloc(sizeof(float) * d, &sy->shared));
    MMS_CALL(mms_malloc(sizeof(float) * (size_t)nsuper * d, &sup));
    MMS_CALL(mms_malloc(sizeof(float) * d, &g));
    mms_rng_t r;
    mms_rng_init(&r, sy->seed, MMS_STREAM_SYNTH, 0xffffffffull);
    unit_gauss(&r, sy->d, sy->shared, 1.0);
    for (int32_t s = 0; s < nsuper; s++) {
        mms_rng_init(&r, sy->seed, MMS_STREAM_SYNTH, 0x100000000ull + (uint64_t)s);
        unit_gauss(&r, sy->d, sup + (size_t)s * d, 1.0);
    }
    for (int32_t c = 0; c < sy->clusters; c++) {
        mms_rng_init(&r, sy->seed, MMS_STREAM_SYNTH, 0x200000000ull + (uint64_t)c);
        unit_gauss(&r, sy->d, g, 1.0);
        float *mu = sy->centre + (size_t)c * d;
        const float *sp = sup + (size_t)(c % nsuper) * d;
        for (size_t j = 0; j < d; j++) mu[j] = 0.6f * sp[j] + 0.8f * g[j];
        for (int32_t b = 0; b < sy->sub; b++)
            unit_gauss(&r, sy->d, sy->basis + ((size_t)c * (size_t)sy->sub + (size_t)b) * d, 1.0);
    }
    mms_free(&sup);
    mms_free(&g);
    return MMS_OK;
}

/* Row i: centre of a skewed-popularity cluster + spread in the cluster's own
 * sub-space + isotropic noise (triangular, unit variance per 1/sqrt(d)) + offset. */
static void synth_row(const synth_t *sy, int64_t i, float *y) {
    mms_rng_t r;
    mms_rng_init(&r, sy->seed, MMS_STREAM_SYNTH, (uint64_t)i);
    double u = mms_rng_uniform(&r);
    int32_t c = (int32_t)(sy->clusters * u * u);
    if (c >= sy->clusters) c = sy->clusters - 1;
    const size_t d = (size_t)sy->d;
    const float *mu = sy->centre + (size_t)c * d;
    const float nscale = (float)(sy->noise * sqrt(6.0 / (double)sy->d) / 65536.0);
    for (size_t j = 0; j < d; j++) { /* difference of two 16-bit uniforms: triangular */
        uint32_t w = mms_rng_u32(&r);
        float a = (float)(w & 0xffffu) - (float)(w >> 16);
        y[j] = mu[j] + (float)sy->offset * sy->shared[j] + a * nscale;
    }
    for (int32_t b = 0; b < sy->sub; b++) {
        float z = (float)(sy->spread / sqrt((double)sy->sub) * mms_rng_normal(&r));
        const float *v = sy->basis + ((size_t)c * (size_t)sy->sub + (size_t)b) * d;
        for (size_t j = 0; j < d; j++) y[j] += z * v[j];
    }
}

/* xxHash of the whole output (gathered to rank 0 in row order), so runs at
 * different P can be compared: exact and IVF outputs should not depend on P. */
static uint64_t output_checksum(const int64_t *nbr, const float *sim, int64_t nl, int32_t k,
                                int64_t n, int rank, int P) {
    int64_t *all_n = NULL;
    float *all_s = NULL;
    int *cn = NULL, *dn = NULL;
    uint64_t h = 0;
    int mine = (int)(nl * k);
    if (rank == 0) {
        all_n = malloc(sizeof(int64_t) * (size_t)(n * k + 1));
        all_s = malloc(sizeof(float) * (size_t)(n * k + 1));
        cn = malloc(sizeof(int) * 2 * (size_t)P);
        dn = cn + P;
    }
    MPI_Gather(&mine, 1, MPI_INT, cn, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0)
        for (int r = 0, at = 0; r < P; at += cn[r], r++) dn[r] = at;
    MPI_Gatherv(nbr, mine, MPI_INT64_T, all_n, cn, dn, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Gatherv(sim, mine, MPI_FLOAT, all_s, cn, dn, MPI_FLOAT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        h = mms_checksum(all_n, sizeof(int64_t) * (size_t)(n * k), 0);
        h = mms_checksum(all_s, sizeof(float) * (size_t)(n * k), h);
    }
    free(all_n);
    free(all_s);
    free(cn);
    return h;
}

static double max_over_ranks(double v) {
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return v;
}

/* One plain sgemm per rank, all ranks at once: (N/P) x Nc x D. Returns the
 * aggregate GFLOP/s (sum over ranks of flops / slowest time); *per_cpu gets
 * GFLOP per CPU second of the slowest rank (the per-core rate, which other
 * jobs on the machine disturb much less than wall time). */
static double sgemm_limit(const float *a, int64_t m, int64_t n, int32_t d, double ref_gib,
                          int64_t *nc_out, double *per_cpu) {
    int64_t nc = n;
    double cap = ref_gib * 1073741824.0 / 4.0 / (double)(m > 0 ? m : 1);
    if ((double)nc > cap) nc = (int64_t)cap;
    if (nc < 1) nc = 1;
    int64_t mm = m, nn = nc;
    MPI_Allreduce(MPI_IN_PLACE, &mm, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &nn, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
    *nc_out = nn;
    float *b = malloc(sizeof(float) * (size_t)nn * (size_t)d);
    float *c = malloc(sizeof(float) * (size_t)mm * (size_t)nn);
    float *aa = malloc(sizeof(float) * (size_t)mm * (size_t)d);
    if (!b || !c || !aa) {
        free(b);
        free(c);
        free(aa);
        return 0.0;
    }
    for (int64_t i = 0; i < mm * d; i++) aa[i] = a ? a[i % ((m > 0 ? m : 1) * d)] : 0.5f;
    for (int64_t i = 0; i < nn * d; i++) b[i] = aa[i % (mm * d)];
    memset(c, 0, sizeof(float) * (size_t)mm * (size_t)nn); /* page faults not timed */
    double el = 1e300, cpu = 1e300;
    for (int rep = 0; rep < 2; rep++) { /* best of two */
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = mms_now(), c0 = cpu_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mm, (int)nn, d, 1.0f, aa, d, b,
                    d, 0.0f, c, (int)nn);
        double e = max_over_ranks(mms_now() - t0), cp = max_over_ranks(cpu_now() - c0);
        if (e < el) el = e;
        if (cp < cpu) cpu = cp;
    }
    *per_cpu = 2.0 * (double)mm * (double)nn * d / cpu / 1e9;
    int P;
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    free(b);
    free(c);
    free(aa);
    return 2.0 * (double)mm * (double)nn * d * P / el / 1e9;
}

int main(int argc, char **argv) {
    mms_blas_fix_kernel(argv); /* before MPI and BLAS: the CPU's own kernels */
    MPI_Init(&argc, &argv);
    int rank, P;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    const char *bt = getenv("MMS_BLAS_THREADS");
    openblas_set_num_threads(bt ? atoi(bt) : 1);
    mms_log_init(rank, P, getenv("MMS_LOG") && !strcmp(getenv("MMS_LOG"), "debug")
                              ? MMS_LOG_DEBUG
                              : MMS_LOG_INFO);
    if (rank == 0) {
        char blas_[256];
        printf("# BLAS core %s\n", mms_blas_describe(blas_, sizeof blas_));
        fflush(stdout);
    }

    mms_knn_params_t p;
    mms_knn_params_default(&p);
    int64_t n = 0, seed = 1, recall_sample = 1000, train_sample = 0;
    int d = 512, k = p.k, tile = p.tile, nlist = p.nlist, nprobe = p.nprobe, iters = p.kmeans_iters;
    int clusters = 0, sub = 16, recall_k = 5, ref = -1, help = 0;
    double spread = 1.0, noise = 0.4, offset = 0.5, ref_gib = 1.0;
    const char *mode = "exact", *features = NULL, *save = NULL;
    mms_opt_t opts[] = {
        {"mode", MMS_OPT_STR, &mode, "exact (ring of tiles) or ivf (approximate)", 0, 0, 0, 0},
        {"n", MMS_OPT_INT64, &n,
         "rows N (0 = 100000 synthetic rows, or all rows of --features; else its first N)", 0, 1,
         0, 1e12},
        {"d", MMS_OPT_INT, &d, "width D of synthetic rows", 0, 1, 1, 65536},
        {"k", MMS_OPT_INT, &k, "neighbours per row", 0, 1, 1, MMS_KNN_MAX_K},
        {"tile", MMS_OPT_INT, &tile, "rows per global tile", 0, 1, MMS_KNN_MIN_TILE,
         MMS_KNN_MAX_TILE},
        {"nlist", MMS_OPT_INT, &nlist, "IVF lists (0 = auto, about sqrt(N))", 0, 1, 0, 65536},
        {"nprobe", MMS_OPT_INT, &nprobe, "IVF lists probed per query (0 = auto, max(4, nlist/128))", 0,
         1, 0, 65536},
        {"train-sample", MMS_OPT_INT64, &train_sample, "IVF k-means sample (0 = 64 nlist)", 0, 1,
         0, 1e12},
        {"iters", MMS_OPT_INT, &iters, "IVF k-means iterations", 0, 1, 0, 1000},
        {"seed", MMS_OPT_INT64, &seed, "seed of the data, the IVF and the recall sample", 0, 1, 0,
         9e18},
        {"features", MMS_OPT_STR, &features, "float32 .npy N x D to use instead of synthetic data",
         0, 0, 0, 0},
        {"save", MMS_OPT_STR, &save, "write the synthetic matrix here (.npy) before running", 0, 0,
         0, 0},
        {"clusters", MMS_OPT_INT, &clusters, "synthetic clusters (0 = clamp(N/1000, 16, 4096))",
         0, 1, 0, 1e6},
        {"sub", MMS_OPT_INT, &sub, "synthetic: dimensions of a cluster's own spread", 0, 1, 0,
         1024},
        {"spread", MMS_OPT_DOUBLE, &spread, "synthetic: norm of the in-cluster spread", 0, 1, 0,
         100},
        {"noise", MMS_OPT_DOUBLE, &noise, "synthetic: norm of the isotropic noise", 0, 1, 0, 100},
        {"offset", MMS_OPT_DOUBLE, &offset, "synthetic: norm of the offset all rows share", 0, 1,
         0, 100},
        {"recall-sample", MMS_OPT_INT64, &recall_sample, "rows sampled for recall (0 = none)", 0,
         1, 0, 1e9},
        {"recall-k", MMS_OPT_INT, &recall_k, "recall@this many", 0, 1, 1, MMS_KNN_MAX_K},
        {"ref", MMS_OPT_INT, &ref,
         "1 = also time the plain sgemm limit (-1 = only in exact mode)", 0, 1, -1, 1},
        {"ref-mem", MMS_OPT_DOUBLE, &ref_gib, "GiB per rank for the reference sgemm's output", 0,
         1, 0.01, 1024},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    mms_status s = mms_opts_parse("bench_knn", "time the cosine kNN graph", opts, nopts, argc - 1,
                                  argv + 1, &help);
    if (s != MMS_OK || help) {
        MPI_Finalize();
        return s == MMS_OK ? 0 : 2;
    }
    int ivf = !strcmp(mode, "ivf");
    if (ref < 0) ref = !ivf;
    if (!ivf && strcmp(mode, "exact")) {
        if (rank == 0) fprintf(stderr, "bench_knn: --mode must be exact or ivf, not '%s'\n", mode);
        MPI_Finalize();
        return 2;
    }
    mms_opts_echo("bench_knn", opts, nopts);

    /* data */
    mms_npy_t npy;
    memset(&npy, 0, sizeof npy);
    synth_t sy = {0};
    const float *xfull = NULL;
    float *xown = NULL;
    if (features) {
        s = mms_npy_open(features, MMS_DT_F32, &npy);
        if (s != MMS_OK || npy.hdr.ndim != 2) {
            if (rank == 0) fprintf(stderr, "bench_knn: cannot use %s as an N x D float32 matrix\n", features);
            MPI_Finalize();
            return 2;
        }
        if (n <= 0 || n > (int64_t)npy.rows) n = (int64_t)npy.rows;
        d = (int)npy.cols;
        xfull = npy.data;
    } else {
        if (n <= 0) n = 100000;
        sy.d = d;
        sy.clusters = clusters > 0 ? clusters : (int)(n / 1000 < 16 ? 16 : n / 1000 > 4096 ? 4096 : n / 1000);
        sy.sub = sub;
        sy.spread = spread;
        sy.noise = noise;
        sy.offset = offset;
        sy.seed = (uint64_t)seed;
        if (synth_init(&sy) != MMS_OK) MPI_Abort(MPI_COMM_WORLD, 1);
    }
    p.k = k;
    p.tile = tile;
    p.nlist = nlist;
    p.nprobe = nprobe;
    p.train_sample = train_sample;
    p.kmeans_iters = iters;
    p.seed = (uint64_t)seed;
    p.mode = ivf ? MMS_KNN_IVF : MMS_KNN_EXACT;

    int64_t row0, nl;
    if (ivf) {
        row0 = n * rank / P;
        nl = n * (rank + 1) / P - row0;
    } else {
        mms_knn_rows_for_rank(n, tile, P, rank, &row0, &nl);
    }
    double tg = mms_now();
    if (!features) {
        int64_t g0 = ivf || save ? 0 : row0, gn = ivf || save ? n : nl;
        xown = malloc(sizeof(float) * (size_t)gn * (size_t)d + 4);
        if (!xown) MPI_Abort(MPI_COMM_WORLD, 1);
        mms_progress_t pr;
        mms_progress_begin(&pr, "generating", gn, "rows");
        for (int64_t i = 0; i < gn; i++) {
            synth_row(&sy, g0 + i, xown + (size_t)i * (size_t)d);
            if ((i & 4095) == 0) mms_progress_update(&pr, i);
        }
        mms_progress_end(&pr);
        xfull = g0 == 0 && gn == n ? xown : NULL;
        if (save && rank == 0) {
            if (mms_npy_write(save, MMS_DT_F32, xown, (size_t)n, (size_t)d) != MMS_OK)
                MPI_Abort(MPI_COMM_WORLD, 1);
            mms_log_info("wrote %s", save);
        }
    }
    mms_log_info("data ready in %.1f s", mms_now() - tg);
    const float *xloc = xfull ? xfull + (size_t)row0 * (size_t)d : xown;

    int64_t *nbr = malloc(sizeof(int64_t) * (size_t)(nl * k + 1));
    float *sim = malloc(sizeof(float) * (size_t)(nl * k + 1));
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = mms_now(), c0 = cpu_now();
    if (ivf)
        s = mms_knn_ivf(xfull, n, d, row0, nl, &p, MPI_COMM_WORLD, nbr, sim);
    else
        s = mms_knn_exact(xloc, nl, row0, n, d, &p, MPI_COMM_WORLD, nbr, sim);
    double el = max_over_ranks(mms_now() - t0), cpu = max_over_ranks(cpu_now() - c0);
    if (s != MMS_OK) {
        MPI_Finalize();
        return 1;
    }
    int32_t *cnt = malloc(sizeof(int32_t) * (size_t)(nl + 1));
    int64_t above[2] = {mms_knn_count_above(sim, nl, k, 0.5f, cnt), 0};
    double simsum[2] = {0, 0}; /* mean sim of the first and the k-th neighbour */
    for (int64_t i = 0; i < nl; i++)
        if (sim[(size_t)i * k + (size_t)k - 1] > -INFINITY) {
            above[1]++;
            simsum[0] += sim[(size_t)i * k];
            simsum[1] += sim[(size_t)i * k + (size_t)k - 1];
        }
    MPI_Allreduce(MPI_IN_PLACE, above, 2, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, simsum, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    uint64_t csum = n * k < INT32_MAX ? output_checksum(nbr, sim, nl, k, n, rank, P) : 0;
    double recall = -1;
    if (recall_sample > 0 && xfull) {
        double tr = mms_now();
        if (mms_knn_recall(xfull, n, d, row0, nl, nbr, k, recall_k < k ? recall_k : k,
                           recall_sample, (uint64_t)seed + 17, MPI_COMM_WORLD, &recall) != MMS_OK)
            recall = -1;
        mms_log_info("recall on %lld sampled rows in %.1f s", (long long)recall_sample,
                     mms_now() - tr);
    }
    double lim = 0, lim_cpu = 0;
    int64_t nc = 0;
    if (ref) lim = sgemm_limit(xloc, nl, n, d, ref_gib, &nc, &lim_cpu);

    if (rank == 0) {
        double fl = 2.0 * (double)n * (double)n * d, gf = fl / el / 1e9;
        printf("bench_knn mode=%s N=%lld D=%d K=%d P=%d tile=%d", mode, (long long)n, d, k, P,
               tile);
        if (ivf) {
            int32_t rl, rp;
            mms_knn_ivf_resolve(&p, n, &rl, &rp);
            printf(" nlist=%d nprobe=%d", rl, rp);
        }
        printf(" data=%s\n", features ? features : "synthetic");
        printf("  seconds                 %.2f (slowest rank; its CPU seconds: %.2f)\n", el, cpu);
        printf("  GFLOP/s (2 N^2 D / s)   %.1f\n", gf);
        /* the ring multiplies tile pairs a <= b once: D (N^2 + sum rows(a)^2) */
        double sq = 0;
        for (int64_t t = 0; t * tile < n; t++) {
            double r = (double)(n - t * tile < tile ? n - t * tile : tile);
            sq += r * r;
        }
        double ex = (double)d * ((double)n * n + sq);
        if (!ivf)
            printf("  sgemm executed          %.3f of 2 N^2 D (symmetry), %.1f GFLOP/s; "
                   "%.1f GFLOP per CPU-second per rank\n",
                   ex / fl, ex / el / 1e9, ex / P / cpu / 1e9);
        if (ref) {
            printf("  sgemm limit             %.1f GFLOP/s (%d rank(s) x one %lld x %lld x %d "
                   "cblas_sgemm at once); %.1f GFLOP per CPU-second per rank\n",
                   lim, P, (long long)((n + P - 1) / P), (long long)nc, d, lim_cpu);
            if (!ivf)
                printf("  percent of limit        %.1f%% (2 N^2 D count, wall); executed sgemm "
                       "flops: %.1f%% (wall), %.1f%% (per CPU-second)\n",
                       100.0 * gf / lim, 100.0 * ex / el / 1e9 / lim,
                       100.0 * ex / P / cpu / 1e9 / lim_cpu);
        }
        printf("  rows with k neighbours  %lld of %lld; mean sim of 1st %.4f, of k-th %.4f; "
               "edges with sim >= 0.5: %.2f per row\n",
               (long long)above[1], (long long)n, simsum[0] / (double)(above[1] ? above[1] : 1),
               simsum[1] / (double)(above[1] ? above[1] : 1),
               (double)above[0] / (double)(n > 0 ? n : 1));
        printf("  output checksum         %016llx (xxh64 of all ids then all sims)\n",
               (unsigned long long)csum);
        if (recall >= 0)
            printf("  recall@%d               %.4f (%lld sampled rows vs brute force)\n",
                   recall_k < k ? recall_k : k, recall, (long long)recall_sample);
        fflush(stdout);
    }
    free(nbr);
    free(sim);
    free(cnt);
    free(xown);
    mms_free(&sy.centre);
    mms_free(&sy.basis);
    mms_free(&sy.shared);
    if (features) mms_npy_close(&npy);
    MPI_Finalize();
    return 0;
}
