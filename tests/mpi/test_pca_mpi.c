/* test_pca_mpi.c: distributed PCA at 1, 2 and 4 ranks.
 *
 * Every rank generates its rows of one data set from mms_rng keyed by the global
 * row id. Checks: the mean and covariance are bit-identical to rank 0's
 * single-process computation of all rows (so identical at every rank count) and
 * for two different splits of the rows; every rank gets the same fit; the
 * eigenpairs match LAPACK dsyevd up to sign; the projection equals
 * (x - mean) @ components computed naively; bad sizes, sizes that differ between
 * ranks and a NaN on one rank fail on every rank without a hang. */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mms_fs.h"
#include "mms_log.h"
#include "mms_rng.h"
#include "mms_test.h"
#include "mms_test_ref.h"
#include "pca.h"

#define SEED 77u
#define NROWS 3001 /* not a multiple of any internal block size */

static int g_rank, g_nranks;

/* Row i of the data set (d columns): planted rank-5 structure plus noise. */
static void make_row(int64_t i, int d, float *out) {
    static const double sig[5] = {9.0, 6.0, 4.0, 2.5, 1.5};
    mms_rng_t r;
    mms_rng_init(&r, SEED, MMS_STREAM_SYNTH, (uint64_t)i);
    double z[5];
    for (int k = 0; k < 5; k++) z[k] = sig[k] * mms_rng_normal(&r);
    for (int j = 0; j < d; j++) {
        double v = -3.0 + 0.25 * j + 0.2 * mms_rng_normal(&r);
        for (int k = 0; k < 5; k++) {
            /* fixed loading pattern: a function of (k, j) only */
            v += z[k] * sin(0.37 * (double)(k + 1) * (double)(j + 1)) / sqrt((double)d);
        }
        out[j] = (float)v;
    }
}

/* Rows [lo, hi) of this rank: an even split (skew 0) or a quadratic one. */
static void my_range(int skew, int64_t *lo, int64_t *hi) {
    int64_t p = g_nranks, r = g_rank;
    if (!skew) {
        *lo = NROWS * r / p;
        *hi = NROWS * (r + 1) / p;
    } else {
        *lo = NROWS * r * r / (p * p);
        *hi = NROWS * (r + 1) * (r + 1) / (p * p);
    }
}

static float *make_rows(int64_t lo, int64_t hi, int d) {
    float *x = malloc((size_t)(hi - lo > 0 ? hi - lo : 1) * d * sizeof *x);
    for (int64_t i = lo; i < hi; i++) make_row(i, d, x + (size_t)(i - lo) * d);
    return x;
}


/* Covariance: bit-identical to rank 0's single-process result, for two splits. */
static void test_covariance(int d) {
    double *m_even = malloc(d * sizeof(double)), *c_even = malloc((size_t)d * d * sizeof(double));
    double *m_skew = malloc(d * sizeof(double)), *c_skew = malloc((size_t)d * d * sizeof(double));
    double *m_ref = malloc(d * sizeof(double)), *c_ref = malloc((size_t)d * d * sizeof(double));
    int64_t lo, hi;
    my_range(0, &lo, &hi);
    float *x = make_rows(lo, hi, d);
    T_OK(mms_pca_covariance(x, hi - lo, NROWS, d, MPI_COMM_WORLD, m_even, c_even));
    free(x);
    my_range(1, &lo, &hi);
    x = make_rows(lo, hi, d);
    T_OK(mms_pca_covariance(x, hi - lo, NROWS, d, MPI_COMM_WORLD, m_skew, c_skew));
    free(x);
    if (g_rank == 0) {
        float *all = make_rows(0, NROWS, d);
        T_OK(mms_pca_covariance(all, NROWS, NROWS, d, MPI_COMM_SELF, m_ref, c_ref));
        free(all);
        fprintf(stderr, "np %d: d %d covariance checksum %016llx mean checksum %016llx\n",
                g_nranks, d,
                (unsigned long long)mms_checksum(c_ref, (size_t)d * d * sizeof(double), 0),
                (unsigned long long)mms_checksum(m_ref, d * sizeof(double), 0));
    }
    MPI_Bcast(m_ref, d, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    MPI_Bcast(c_ref, d * d, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    T_CHECK(memcmp(m_even, m_ref, d * sizeof(double)) == 0);
    T_CHECK(memcmp(c_even, c_ref, (size_t)d * d * sizeof(double)) == 0);
    T_CHECK(memcmp(m_skew, m_ref, d * sizeof(double)) == 0);
    T_CHECK(memcmp(c_skew, c_ref, (size_t)d * d * sizeof(double)) == 0);
    free(m_even), free(c_even), free(m_skew), free(c_skew), free(m_ref), free(c_ref);
}

/* Fit on the skewed split: same result on every rank, LAPACK eigenpairs,
 * projection. */
static void test_fit(int d, int k) {
    int64_t lo, hi;
    my_range(1, &lo, &hi);
    float *x = make_rows(lo, hi, d);
    mms_pca_t p;
    T_OK(mms_pca_fit(x, hi - lo, NROWS, d, k, MPI_COMM_WORLD, &p));
    if (!p.mem_) {
        free(x);
        return;
    }
    /* identical on every rank */
    uint64_t h = mms_checksum(p.components, (size_t)d * k * sizeof(float), 0);
    h = mms_checksum(p.mean, d * sizeof(float), h);
    h = mms_checksum(p.eigvals, k * sizeof(double), h);
    uint64_t hmin = 0, hmax = 0;
    MPI_Allreduce(&h, &hmin, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&h, &hmax, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    T_CHECK(hmin == hmax);
    if (g_rank == 0)
        fprintf(stderr, "np %d: d %d k %d fit checksum %016llx (may differ between rank counts)\n",
                g_nranks, d, k, (unsigned long long)h);

    /* against LAPACK on the same covariance (rank 0) */
    double *mean = malloc(d * sizeof *mean), *cov = malloc((size_t)d * d * sizeof *cov);
    T_OK(mms_pca_covariance(x, hi - lo, NROWS, d, MPI_COMM_WORLD, mean, cov));
    if (g_rank == 0) {
        double *w = malloc(d * sizeof *w), *v = malloc((size_t)d * d * sizeof *v);
        T_EQ_INT(mms_test_lapack_eig(cov, d, w, v), 0);
        double worst_val = 0, worst_dot = 1;
        for (int c = 0; c < k; c++) {
            double ref = w[d - 1 - c];
            const double *vr = v + (size_t)(d - 1 - c) * d;
            T_NEAR(p.eigvals[c], ref, 1e-4 * fabs(ref) + 1e-12 * fabs(w[d - 1]));
            worst_val = fmax(worst_val, fabs(p.eigvals[c] - ref) / fabs(w[d - 1]));
            double dot = 0, big = 0;
            for (int j = 0; j < d; j++) {
                dot += p.components[j * k + c] * vr[j];
                if (fabs(p.components[j * k + c]) > fabs(big)) big = p.components[j * k + c];
            }
            T_CHECK(fabs(dot) > 0.9999);
            T_CHECK(big > 0);
            worst_dot = fmin(worst_dot, fabs(dot));
        }
        fprintf(stderr, "np %d: d %d k %d: max eigenvalue diff %.2g of the largest, min |dot| %.9f\n",
                g_nranks, d, k, worst_val, worst_dot);
        free(w), free(v);
    }

    /* projection of the local rows */
    float *y = malloc((size_t)(hi - lo > 0 ? hi - lo : 1) * k * sizeof *y);
    T_OK(mms_pca_project(&p, x, hi - lo, y));
    double err = 0, ymax = 1e-30;
    for (int64_t i = 0; i < hi - lo; i++)
        for (int c = 0; c < k; c++) {
            double s = 0;
            for (int j = 0; j < d; j++)
                s += ((double)x[i * d + j] - p.mean[j]) * p.components[j * k + c];
            err = fmax(err, fabs(s - y[i * k + c]));
            ymax = fmax(ymax, fabs(s));
        }
    T_CHECK(err <= 1e-5 * ymax);
    mms_pca_free(&p);
    free(x), free(y), free(mean), free(cov);
}

/* Two sub-communicators (even and odd ranks) fit the whole data set at the same
 * time on their own BLACS grids: same covariance bit for bit, same fit. */
static void test_subcomm(int d, int k) {
    MPI_Comm sub;
    MPI_Comm_split(MPI_COMM_WORLD, g_rank % 2, g_rank, &sub);
    int srank, sn;
    MPI_Comm_rank(sub, &srank);
    MPI_Comm_size(sub, &sn);
    int64_t lo = (int64_t)NROWS * srank / sn, hi = (int64_t)NROWS * (srank + 1) / sn;
    float *x = make_rows(lo, hi, d);
    double *mean = malloc(d * sizeof *mean), *cov = malloc((size_t)d * d * sizeof *cov);
    T_OK(mms_pca_covariance(x, hi - lo, NROWS, d, sub, mean, cov));
    uint64_t h = mms_checksum(cov, (size_t)d * d * sizeof *cov, 0), hmin = 0, hmax = 0;
    MPI_Allreduce(&h, &hmin, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&h, &hmax, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    T_CHECK(hmin == hmax);
    mms_pca_t p;
    T_OK(mms_pca_fit(x, hi - lo, NROWS, d, k, sub, &p));
    if (p.mem_) {
        double *emin = malloc(k * sizeof *emin), *emax = malloc(k * sizeof *emax);
        MPI_Allreduce(p.eigvals, emin, k, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(p.eigvals, emax, k, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        for (int c = 0; c < k; c++) T_NEAR(emin[c], emax[c], 1e-12 * emax[0]);
        free(emin), free(emax);
    }
    mms_pca_free(&p);
    free(x), free(mean), free(cov);
    MPI_Comm_free(&sub);
}

/* Bad input fails on every rank (and returns: a hang would time the test out). */
static void test_failures(void) {
    const int d = 16;
    int64_t lo, hi;
    my_range(0, &lo, &hi);
    float *x = make_rows(lo, hi, d);
    mms_pca_t p;
    mms_log_set_level(MMS_LOG_QUIET);

    mms_status s = mms_pca_fit(x, hi - lo, NROWS, d, d + 1, MPI_COMM_WORLD, &p);
    T_CHECK(s != MMS_OK);
    T_CHECK(p.mem_ == NULL);
    if (g_rank == 0) {
        T_EQ_INT(s, MMS_ERR_ARG);
        T_MSG_HAS("--pca-dim 17 is above the feature width 16");
    }

    /* one rank asks for a different width */
    s = mms_pca_fit(x, hi - lo, NROWS, d, g_rank == g_nranks - 1 ? 3 : 2, MPI_COMM_WORLD, &p);
    T_CHECK(g_nranks == 1 ? s == MMS_OK : s != MMS_OK);
    if (g_nranks > 1 && g_rank == 0) T_MSG_HAS("ranks disagree");
    mms_pca_free(&p);

    /* the rows do not add up to n_total */
    s = mms_pca_fit(x, hi - lo, NROWS + 1, d, 2, MPI_COMM_WORLD, &p);
    T_CHECK(s != MMS_OK);

    /* a NaN in the last rank's last row */
    if (g_rank == g_nranks - 1 && hi > lo) x[(size_t)(hi - lo - 1) * d + 5] = NAN;
    s = mms_pca_fit(x, hi - lo, NROWS, d, 2, MPI_COMM_WORLD, &p);
    T_CHECK(s != MMS_OK);
    if (g_rank == g_nranks - 1) {
        T_EQ_INT(s, MMS_ERR_NUMERIC);
        T_MSG_HAS("row 3000 column 5 is NaN");
    }
    T_CHECK(p.mem_ == NULL);

    mms_log_set_level(MMS_LOG_WARN);
    free(x);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_nranks);
    mms_log_init(g_rank, g_nranks, MMS_LOG_WARN);

    test_covariance(72);
    test_fit(72, 6);
    test_fit(20, 20); /* every component; blocks of 8 on a 2 x 2 grid */
    test_fit(3, 2);  /* blocks of 1 on a 2 x 2 grid */
    test_fit(1, 1);  /* narrower than the grid: most ranks own no block */
    test_subcomm(40, 5);
    test_failures();

    int mine = mms_test_failures, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (mine) fprintf(stderr, "rank %d: %d failed checks\n", g_rank, mine);
    mms_test_failures = all;
    int rc = g_rank == 0 ? mms_test_finish("test_pca_mpi") : (all ? 1 : 0);
    MPI_Finalize();
    return rc;
}
