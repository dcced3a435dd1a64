/* pca.h: distributed principal component analysis of feature rows (ScaLAPACK).
 *
 * Reduces catalog features (e.g. 2048-d ResNet descriptors) to the node feature
 * width (e.g. 512) before training. Rows are spread over the ranks of a
 * communicator; the mean and covariance are summed exactly in fixed point, so the
 * covariance is bit-identical at any rank count and any split of the rows; the
 * covariance is then decomposed with ScaLAPACK's pdsyevd over a BLACS grid made
 * from the same communicator, and the leading components are replicated on every
 * rank. See docs/pca.md for the algorithm, precision and measured times.
 *
 * Not here: reading or writing catalogs, choosing d_out (the caller's option), or
 * whitening.
 */
#ifndef MMS_PCA_H
#define MMS_PCA_H

#include <mpi.h>
#include <stdint.h>

#include "mms_status.h"

/* Block size of the block-cyclic distribution (rows and columns). Smaller blocks
 * are used when the matrix is too narrow to give every grid row/column a block. */
#define MMS_PCA_BLOCK 64
/* Widest accepted input (the d_in x d_in covariance is held on every rank). */
#define MMS_PCA_MAX_DIM 16384

/* A fitted PCA. The arrays point into one allocation owned by the struct; release
 * it with mms_pca_free(). */
typedef struct {
    int32_t d_in;      /* input feature width */
    int32_t d_out;     /* number of components */
    float *mean;       /* d_in */
    float *components; /* d_in x d_out, row-major: y = (x - mean) @ components */
    double *eigvals;   /* d_out, descending: variance along each component */
    double *explained; /* d_out: eigvals / total variance (trace of the covariance) */
    void *mem_;        /* the single block the arrays point into (private) */
} mms_pca_t;

/* Collective over comm. Fits a PCA to rows spread over the ranks: this rank holds
 * x_local (n_local x d_in, row-major, borrowed); the ranks' n_local sum to
 * n_total. Any split of the rows gives the same mean and covariance, bit for bit.
 * Components are sorted by decreasing eigenvalue; each has its largest-magnitude
 * entry positive (first such entry on ties). On success *out is filled on every
 * rank with identical contents (free with mms_pca_free); on failure *out is
 * zeroed and every rank returns non-zero: the rank that met the problem logs it
 * and returns its code (MMS_ERR_ARG for bad sizes, which rank 0 checks and
 * reports once; MMS_ERR_NUMERIC for NaN/Inf input, naming the global row;
 * MMS_ERR_LIB for a BLACS/ScaLAPACK failure, ...), the others MMS_ERR_MPI.
 * Memory per rank besides x_local: about max(3.5, 1 + 4/P) d_in^2 doubles at P
 * ranks (160 MiB at d_in = 2048 and P = 1).
 * Requires 1 <= d_out <= d_in <= MMS_PCA_MAX_DIM and n_total >= 2, with the same
 * n_total, d_in and d_out on every rank. */
mms_status mms_pca_fit(const float *x_local, int64_t n_local, int64_t n_total, int32_t d_in,
                       int32_t d_out, MPI_Comm comm, mms_pca_t *out);

/* Collective over comm. The mean (d_in doubles) and covariance (d_in x d_in
 * doubles, full symmetric, divided by n_total - 1) exactly as mms_pca_fit computes
 * them, written into caller buffers on every rank. Same requirements and failure
 * behaviour as mms_pca_fit (d_out is not involved). For tests and diagnostics. */
mms_status mms_pca_covariance(const float *x_local, int64_t n_local, int64_t n_total,
                              int32_t d_in, MPI_Comm comm, double *mean, double *cov);

/* y (n x d_out, caller buffer) = (x - mean) @ components for x (n x d_in). Local:
 * no communication; cblas_sgemm on chunks of rows. */
mms_status mms_pca_project(const mms_pca_t *p, const float *x, int64_t n, float *y);

/* The files of a saved PCA (a graph directory holds them when build used PCA;
 * an index copies the first three). */
#define MMS_PCA_MEAN_FILE "pca_mean.npy"
#define MMS_PCA_COMPONENTS_FILE "pca_components.npy"
#define MMS_PCA_EIGVALS_FILE "pca_eigvals.npy"
#define MMS_PCA_EXPLAINED_FILE "pca_explained.npy"

/* Writes pca_mean.npy (f4, d_in), pca_components.npy (f4, d_in x d_out),
 * pca_eigvals.npy (f8, d_out) and pca_explained.npy (f8, d_out) into dir (made if
 * missing), each atomically. Local: call it on one rank. */
mms_status mms_pca_save(const mms_pca_t *p, const char *dir);

/* Reads the files mms_pca_save writes, checking that their shapes agree, into
 * *out (free with mms_pca_free). On failure *out is zeroed. */
mms_status mms_pca_load(const char *dir, mms_pca_t *out);

/* Releases the arrays and zeroes *p. A zeroed or NULL p is a no-op. */
void mms_pca_free(mms_pca_t *p);

#endif
