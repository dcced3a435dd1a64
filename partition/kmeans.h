/* kmeans.h: spherical k-means (inner product on unit rows), the one coarse
 * quantiser of mmsage: the IVF kNN graph build (knn_ivf.c) and the query
 * index's inverted lists (worker/ivf_build.c) both train with it.
 *
 * Deterministic and the same at any rank count: the init draws nlist distinct
 * sample rows with mms_rng (seed, MMS_STREAM_KMEANS); each Lloyd step assigns
 * the sample by sgemm in global tiles of `tile` rows (split over the ranks of
 * comm as mms_knn_rows_for_rank splits them), the assignments are allgathered
 * and every rank updates the centroids alone, in sample order (double sums);
 * an empty list restarts at the sample row its centroid fits worst. Ties go to
 * the smaller centroid. Collective over comm (MPI_COMM_NULL: this process
 * alone, no MPI call).
 */
#ifndef MMS_KMEANS_H
#define MMS_KMEANS_H

#include <mpi.h>
#include <stdint.h>

#include "mms_status.h"

typedef struct {
    int32_t nlist;  /* centroids, 1..ns */
    int32_t iters;  /* Lloyd iterations (stops early when nothing moves) */
    int32_t tile;   /* sample rows per sgemm tile (e.g. MMS_KNN_DEFAULT_TILE) */
    uint64_t seed;  /* init draw */
    const char *who; /* log prefix ("knn ivf", "ivf") */
} mms_kmeans_params_t;

/* Train nlist centroids on xs (ns x d unit rows, the same on every rank,
 * borrowed) into cent (nlist x d, caller's, unit rows). */
mms_status mms_kmeans_spherical(const float *xs, int64_t ns, int32_t d,
                                const mms_kmeans_params_t *p, MPI_Comm comm, float *cent);

/* arg[i] = the centroid with the largest inner product with row i of x (n x d;
 * ties to the smaller centroid), best[i] its value (best may be NULL), by
 * sgemm in tiles of `tile` rows. scratch: tile x nlist floats. Local. */
void mms_kmeans_assign(const float *x, int64_t n, int32_t d, const float *cent, int32_t nlist,
                       int32_t tile, float *scratch, int32_t *arg, float *best);

#endif
