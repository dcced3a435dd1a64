/* test_pca.c: PCA in one process (MPI_COMM_SELF): exact moments against a plain
 * double computation, order independence, eigenpairs against LAPACK dsyevd,
 * sign convention, projection, save/load and argument checks. The rank-count
 * properties are in tests/mpi/test_pca_mpi.c. */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mms_fs.h"
#include "mms_log.h"
#include "mms_npy.h"
#include "mms_rng.h"
#include "mms_test.h"
#include "mms_test_ref.h"
#include "pca.h"

#define SEED 20240611u

/* Rows with a planted rank-4 structure, per-column offsets and noise; row i is a
 * function of (SEED, i) only. */
static void make_rows(float *x, int64_t n, int d) {
    static const double sig[4] = {8.0, 5.0, 3.0, 2.0};
    double *u = malloc(4 * (size_t)d * sizeof *u);
    for (int k = 0; k < 4; k++) {
        mms_rng_t r;
        mms_rng_init(&r, SEED, MMS_STREAM_INIT, (uint64_t)k);
        for (int j = 0; j < d; j++) u[k * d + j] = mms_rng_normal(&r) / sqrt((double)d);
    }
    for (int64_t i = 0; i < n; i++) {
        mms_rng_t r;
        mms_rng_init(&r, SEED, MMS_STREAM_SYNTH, (uint64_t)i);
        double z[4];
        for (int k = 0; k < 4; k++) z[k] = sig[k] * mms_rng_normal(&r);
        for (int j = 0; j < d; j++) {
            double v = 10.0 + 0.5 * j + 0.3 * mms_rng_normal(&r);
            for (int k = 0; k < 4; k++) v += z[k] * u[k * d + j];
            x[i * d + j] = (float)v;
        }
    }
    free(u);
}

/* Plain two-pass mean and covariance in double. */
static void naive_cov(const float *x, int64_t n, int d, double *mean, double *cov) {
    for (int j = 0; j < d; j++) {
        double s = 0.0;
        for (int64_t i = 0; i < n; i++) s += x[i * d + j];
        mean[j] = s / (double)n;
    }
    for (int j = 0; j < d; j++)
        for (int k = 0; k < d; k++) {
            double s = 0.0;
            for (int64_t i = 0; i < n; i++) s += (x[i * d + j] - mean[j]) * (x[i * d + k] - mean[k]);
            cov[j * d + k] = s / (double)(n - 1);
        }
}


static void test_moments(void) {
    const int64_t n = 1500;
    const int d = 48;
    float *x = malloc((size_t)n * d * sizeof *x), *xp = malloc((size_t)n * d * sizeof *xp);
    double *mean = malloc(d * sizeof *mean), *cov = malloc((size_t)d * d * sizeof *cov);
    double *mref = malloc(d * sizeof *mref), *cref = malloc((size_t)d * d * sizeof *cref);
    double *mean2 = malloc(d * sizeof *mean2), *cov2 = malloc((size_t)d * d * sizeof *cov2);
    make_rows(x, n, d);
    T_OK(mms_pca_covariance(x, n, n, d, MPI_COMM_SELF, mean, cov));
    naive_cov(x, n, d, mref, cref);
    double dm = 0, dc = 0, cmax = 0;
    for (int j = 0; j < d; j++) dm = fmax(dm, fabs(mean[j] - mref[j]) / fabs(mref[j]));
    for (int q = 0; q < d * d; q++) {
        dc = fmax(dc, fabs(cov[q] - cref[q]));
        cmax = fmax(cmax, fabs(cref[q]));
    }
    fprintf(stderr, "fixed point vs double: mean rel %.3g, covariance %.3g of max %.3g\n", dm, dc / cmax,
            cmax);
    T_CHECK(dm < 1e-12);
    T_CHECK(dc / cmax < 1e-6);
    for (int j = 0; j < d; j++)
        for (int k = 0; k < d; k++) T_CHECK(cov[j * d + k] == cov[k * d + j]);

    /* rows in another order: the exact sums make the result bit-identical */
    for (int64_t i = 0; i < n; i++)
        memcpy(xp + i * d, x + ((i * 7919) % n) * d, (size_t)d * sizeof *x);
    T_OK(mms_pca_covariance(xp, n, n, d, MPI_COMM_SELF, mean2, cov2));
    T_CHECK(memcmp(mean, mean2, d * sizeof *mean) == 0);
    T_CHECK(memcmp(cov, cov2, (size_t)d * d * sizeof *cov) == 0);

    /* a constant column keeps its exact mean and zero variance */
    for (int64_t i = 0; i < n; i++) xp[i * d + 3] = 0.1f;
    T_OK(mms_pca_covariance(xp, n, n, d, MPI_COMM_SELF, mean2, cov2));
    T_CHECK(mean2[3] == (double)0.1f);
    for (int k = 0; k < d; k++) T_CHECK(cov2[3 * d + k] == 0.0);
    free(x), free(xp), free(mean), free(cov), free(mref), free(cref), free(mean2), free(cov2);
}

static void test_fit_vs_lapack(void) {
    const int64_t n = 2000;
    const int d = 64, k = 8;
    float *x = malloc((size_t)n * d * sizeof *x), *y = malloc((size_t)n * k * sizeof *y);
    double *mean = malloc(d * sizeof *mean), *cov = malloc((size_t)d * d * sizeof *cov);
    double *w = malloc(d * sizeof *w), *v = malloc((size_t)d * d * sizeof *v);
    make_rows(x, n, d);
    mms_pca_t p;
    T_OK(mms_pca_fit(x, n, n, d, k, MPI_COMM_SELF, &p));
    T_OK(mms_pca_covariance(x, n, n, d, MPI_COMM_SELF, mean, cov));
    T_EQ_INT(mms_test_lapack_eig(cov, d, w, v), 0);
    T_EQ_INT(p.d_in, d);
    T_EQ_INT(p.d_out, k);
    double trace = 0;
    for (int j = 0; j < d; j++) trace += cov[j * d + j];
    double kept = 0;
    for (int c = 0; c < k; c++) {
        double ref = w[d - 1 - c];
        const double *vr = v + (size_t)(d - 1 - c) * d;
        T_NEAR(p.eigvals[c], ref, 1e-4 * fabs(ref));
        if (c > 0) T_CHECK(p.eigvals[c] <= p.eigvals[c - 1]);
        double dot = 0, nrm = 0, big = 0;
        for (int j = 0; j < d; j++) {
            double cj = p.components[j * k + c];
            dot += cj * vr[j];
            nrm += cj * cj;
            if (fabs(cj) > fabs(big)) big = cj;
        }
        T_CHECK(fabs(dot) > 0.9999);
        T_NEAR(nrm, 1.0, 1e-5);
        T_CHECK(big > 0); /* sign convention */
        T_NEAR(p.explained[c], ref / trace, 1e-6);
        kept += p.explained[c];
    }
    fprintf(stderr, "top %d components keep %.4f of the variance; eigenvalues %.4g %.4g %.4g %.4g\n",
            k, kept, p.eigvals[0], p.eigvals[1], p.eigvals[2], p.eigvals[3]);
    T_CHECK(kept > 0.9 && kept <= 1.0);
    for (int j = 0; j < d; j++) T_CHECK(p.mean[j] == (float)mean[j]);

    /* projection = (x - mean) @ components, computed naively */
    T_OK(mms_pca_project(&p, x, n, y));
    double err = 0, ymax = 0;
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < k; c++) {
            double s = 0;
            for (int j = 0; j < d; j++)
                s += ((double)x[i * d + j] - p.mean[j]) * p.components[j * k + c];
            err = fmax(err, fabs(s - y[i * k + c]));
            ymax = fmax(ymax, fabs(s));
        }
    T_CHECK(err <= 1e-5 * ymax);
    T_OK(mms_pca_project(&p, x, 0, NULL));

    /* save / load round trip */
    const char *dir = mms_test_tmpdir("pca");
    char sub[MMS_PATH_MAX], path[MMS_PATH_MAX];
    T_OK(mms_path_join(sub, sizeof sub, dir, "out"));
    T_OK(mms_pca_save(&p, sub));
    mms_pca_t q;
    T_OK(mms_pca_load(sub, &q));
    T_EQ_INT(q.d_in, d);
    T_EQ_INT(q.d_out, k);
    T_CHECK(memcmp(q.mean, p.mean, d * sizeof(float)) == 0);
    T_CHECK(memcmp(q.components, p.components, (size_t)d * k * sizeof(float)) == 0);
    T_CHECK(memcmp(q.eigvals, p.eigvals, k * sizeof(double)) == 0);
    T_CHECK(memcmp(q.explained, p.explained, k * sizeof(double)) == 0);
    mms_pca_free(&q);
    T_CHECK(q.mem_ == NULL && q.mean == NULL);
    mms_pca_free(&q); /* no-op */
    mms_pca_free(NULL);
    /* a mismatched file is refused with its name (expected errors: quiet) */
    mms_log_set_level(MMS_LOG_QUIET);
    T_OK(mms_path_join(path, sizeof path, sub, "pca_eigvals.npy"));
    T_OK(mms_npy_write(path, MMS_DT_F64, p.eigvals, (size_t)k - 1, 0));
    T_FAILS(mms_pca_load(sub, &q), MMS_ERR_MISMATCH);
    T_MSG_HAS("pca_eigvals.npy");
    T_CHECK(q.mem_ == NULL);
    T_OK(mms_path_join(path, sizeof path, dir, "missing"));
    T_FAILS(mms_pca_load(path, &q), MMS_ERR_IO);
    mms_log_set_level(MMS_LOG_WARN);
    mms_rm_rf(dir);

    mms_pca_free(&p);
    T_CHECK(p.mem_ == NULL);
    T_FAILS(mms_pca_project(&p, x, n, y), MMS_ERR_ARG);
    free(x), free(y), free(mean), free(cov), free(w), free(v);
}

static void test_small_and_bad(void) {
    /* two rows: a rank-1 covariance, every component still orthonormal */
    float x2[2 * 3] = {1.0f, 2.0f, 3.0f, 3.0f, 2.0f, -1.0f};
    mms_pca_t p;
    T_OK(mms_pca_fit(x2, 2, 2, 3, 3, MPI_COMM_SELF, &p));
    T_NEAR(p.eigvals[0], (4.0 + 0.0 + 16.0) / 2.0, 1e-9);
    T_NEAR(p.eigvals[1], 0.0, 1e-9);
    T_NEAR(p.explained[0], 1.0, 1e-12);
    T_NEAR(p.components[0 * 3 + 0], -1.0 / sqrt(5.0), 1e-6);
    T_NEAR(p.components[2 * 3 + 0], 2.0 / sqrt(5.0), 1e-6); /* largest entry positive */
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            double s = 0;
            for (int j = 0; j < 3; j++) s += p.components[j * 3 + a] * p.components[j * 3 + b];
            T_NEAR(s, a == b ? 1.0 : 0.0, 1e-6);
        }
    mms_pca_free(&p);

    /* one column: the component is 1, the eigenvalue the variance */
    float x1[3] = {1.0f, 2.0f, 6.0f};
    T_OK(mms_pca_fit(x1, 3, 3, 1, 1, MPI_COMM_SELF, &p));
    T_NEAR(p.eigvals[0], 7.0, 1e-12);
    T_EQ_INT(p.components[0] == 1.0f, 1);
    T_NEAR(p.mean[0], 3.0, 0);
    mms_pca_free(&p);

    float x[8 * 4];
    for (int i = 0; i < 32; i++) x[i] = (float)((i * 37) % 11);
    T_FAILS(mms_pca_fit(x, 8, 8, 4, 5, MPI_COMM_SELF, &p), MMS_ERR_ARG);
    T_MSG_HAS("--pca-dim 5 is above the feature width 4");
    T_CHECK(p.mem_ == NULL);
    T_FAILS(mms_pca_fit(x, 8, 8, 4, 0, MPI_COMM_SELF, &p), MMS_ERR_ARG);
    T_MSG_HAS("at least 1");
    T_FAILS(mms_pca_fit(x, 1, 1, 4, 2, MPI_COMM_SELF, &p), MMS_ERR_ARG);
    T_MSG_HAS("2 to 2^40 rows");
    T_FAILS(mms_pca_fit(x, 8, 9, 4, 2, MPI_COMM_SELF, &p), MMS_ERR_ARG);
    T_MSG_HAS("not n_total = 9");
    T_FAILS(mms_pca_fit(x, 8, 8, 0, 1, MPI_COMM_SELF, &p), MMS_ERR_ARG);
    T_FAILS(mms_pca_fit(NULL, 8, 8, 4, 2, MPI_COMM_SELF, &p), MMS_ERR_ARG);
    T_FAILS(mms_pca_fit(x, 8, 8, 4, 2, MPI_COMM_SELF, NULL), MMS_ERR_ARG);
    x[2 * 4 + 1] = NAN;
    T_FAILS(mms_pca_fit(x, 8, 8, 4, 2, MPI_COMM_SELF, &p), MMS_ERR_NUMERIC);
    T_MSG_HAS("row 2 column 1 is NaN");
    x[2 * 4 + 1] = INFINITY;
    T_FAILS(mms_pca_fit(x, 8, 8, 4, 2, MPI_COMM_SELF, &p), MMS_ERR_NUMERIC);
    T_MSG_HAS("infinite");
    T_CHECK(p.mem_ == NULL);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    mms_log_init(0, 1, MMS_LOG_WARN);
    /* expected failures below log errors: keep the output to what differs */
    test_moments();
    test_fit_vs_lapack();
    mms_log_set_level(MMS_LOG_QUIET);
    test_small_and_bad();
    mms_log_set_level(MMS_LOG_WARN);
    int rc = mms_test_finish("test_pca");
    MPI_Finalize();
    return rc;
}
