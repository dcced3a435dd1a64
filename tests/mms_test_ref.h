/* mms_test_ref.h: naive references shared by the unit and MPI tests (double
 * precision, no tricks), so a test compares an optimised kernel with one
 * obviously-correct implementation written once. */
#ifndef MMS_TEST_REF_H
#define MMS_TEST_REF_H

#include <stdint.h>

/* Cosine kNN of the n rows of x (n x d): for each row its k best other rows by
 * (similarity desc, id asc) in double; padding -1 / -inf; zero rows have and
 * are no neighbours. nbr, sim: n x k. */
void mms_test_knn_naive(const float *x, int64_t n, int32_t d, int32_t k, int64_t *nbr, double *sim);

/* Output (k per row) against the reference (k + 1 per row, so that a tie just
 * past the k-th place is seen): ids equal except where the reference has a
 * near-tie (1e-6) at that place; sims within 1e-5; padding identical. Returns
 * the mismatches (and prints the first, labelled what). */
int mms_test_knn_compare(const int64_t *nbr, const float *sim, const int64_t *rn, const double *rs,
                         int64_t n, int32_t k, const char *what);

/* LAPACK dsyevd eigenpairs of the symmetric cov (d x d): w ascending, v
 * column-major (eigenvector i is v[i*d .. i*d+d)). Returns LAPACK's info. */
int mms_test_lapack_eig(const double *cov, int d, double *w, double *v);

#endif
