/* knn.h: cosine k-nearest-neighbour graph among N feature rows, exact or
 * approximate (IVF), distributed over MPI ranks.
 *
 * Similarity is the cosine: rows are normalised (a private copy; callers' data
 * is never modified) and compared by dot product. An all-zero row has no
 * cosine with anything: it gets no neighbours and is nobody's neighbour.
 * A row is never its own neighbour (a duplicate row is a neighbour, at 1.0).
 *
 * Output, per query row, in caller buffers of k entries:
 *   nbr[i*k + j]  global row id (int64) of the j-th neighbour
 *   sim[i*k + j]  its cosine similarity (float)
 * sorted by (sim descending, id ascending), padded with -1 / -INFINITY when the
 * row has fewer than k neighbours (fewer than k+1 non-zero rows, or a zero row).
 * Ties are broken by smaller id, so the output is a function of the input only.
 * Thresholding is left to the caller (mms_knn_count_above helps).
 *
 * Exact mode (mms_knn_exact) is bit-identical at any rank count: global tiles
 * of p->tile rows fix the shape and operands of every sgemm call, rank blocks
 * are whole tiles (mms_knn_rows_for_rank), and each unordered tile pair is
 * multiplied once (symmetry) by one fixed call; see docs/knn.md.
 * IVF mode (mms_knn_ivf) builds a k-means coarse quantiser and inverted lists;
 * its index and its output are likewise bit-identical at any rank count for a
 * fixed seed (docs/knn.md says why and what it costs).
 *
 * Communicators: every function taking an MPI_Comm is collective over it. Pass
 * MPI_COMM_NULL to run in this process alone: then no MPI function is called
 * (MPI need not be initialised) and the caller's rows are all the rows.
 * Logs and progress go through mms_log (rank 0); nothing is printed here.
 */
#ifndef MMS_KNN_H
#define MMS_KNN_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"

#define MMS_KNN_MAX_K 1000
#define MMS_KNN_DEFAULT_TILE 1024
#define MMS_KNN_MIN_TILE 8
#define MMS_KNN_MAX_TILE 16384
#define MMS_KNN_MAX_NLIST 65536

typedef enum { MMS_KNN_EXACT = 0, MMS_KNN_IVF = 1 } mms_knn_mode;

typedef struct {
    int32_t k;             /* neighbours per row, 1..MMS_KNN_MAX_K (default 10) */
    int32_t tile;          /* rows per global tile, MMS_KNN_MIN_TILE..MAX_TILE (default 1024).
                              Changing it may change the last bits of sims (not the P-invariance) */
    mms_knn_mode mode;     /* for callers that dispatch; the functions below ignore it */
    int32_t nlist;         /* IVF: inverted lists = k-means centroids, 1..65536;
                              0 (default) = sqrt(N) rounded, see mms_knn_ivf_resolve */
    int32_t nprobe;        /* IVF: lists scanned per query, 1..nlist; 0 (default) = auto */
    int64_t train_sample;  /* IVF: k-means sample rows (0 = 64 * nlist; capped at N) */
    int32_t kmeans_iters;  /* IVF: Lloyd iterations (default 10) */
    uint64_t seed;         /* IVF sample, k-means init; recall sample */
} mms_knn_params_t;

/* Defaults above. */
void mms_knn_params_default(mms_knn_params_t *p);
/* Validate p for n_total rows of width d (clear message on failure). ivf = 1
 * also checks the IVF fields (nlist <= non-zero rows is checked at build). */
mms_status mms_knn_params_check(const mms_knn_params_t *p, int64_t n_total, int32_t d, int ivf);

/* The rows a rank must pass to mms_knn_exact: whole global tiles, as evenly as
 * tiles allow (nt = ceil(n / tile) tiles; rank r gets tiles [nt r / P,
 * nt (r + 1) / P)). A rank may get no rows (nrows = 0) when there are fewer
 * tiles than ranks.
 * tile <= 0 means MMS_KNN_DEFAULT_TILE. Pure arithmetic. */
void mms_knn_rows_for_rank(int64_t n, int32_t tile, int nranks, int rank, int64_t *row0,
                           int64_t *nrows);

/* Exact cosine kNN. Collective over comm.
 * x_local: n_local x d float32 row-major (borrowed, read only), global rows
 *          [row0, row0 + n_local), which must be mms_knn_rows_for_rank(n_total,
 *          p->tile, P, rank); NaN/Inf are refused.
 * nbr_out: n_local x p->k, sim_out: n_local x p->k (caller-allocated; see top).
 * Memory per rank, B = largest block rows: 3 B d floats (own block and two
 * visiting blocks, one in flight), tile^2 floats of similarities, 8 bytes per
 * result entry while computing (kept in nbr_out; sim_out is written at the
 * end) and, when P > 1, 2 B (8 k + 8) bytes for the partial results of the
 * visiting block, which travel with it. N must be below 2^32. */
mms_status mms_knn_exact(const float *x_local, int64_t n_local, int64_t row0, int64_t n_total,
                         int32_t d, const mms_knn_params_t *p, MPI_Comm comm, int64_t *nbr_out,
                         float *sim_out);

/* Approximate cosine kNN with an IVF index. Collective over comm.
 * x_full: all n_total x d rows (borrowed, e.g. the catalog's memory-mapped
 *         features.npy; every rank reads all of it). This rank answers the
 *         queries [row0, row0 + n_local) (ranks must hold consecutive rows in
 *         rank order; any sizes) into nbr_out / sim_out (n_local x p->k).
 * Uses p->nlist, nprobe (mms_knn_ivf_resolve), train_sample, kmeans_iters,
 * seed, tile, k. With nprobe = nlist the result is the exact top-k (up to
 * float rounding). The output does not depend on P or on the split.
 * Memory per rank besides the mapped matrix, for q rows answered (plus at most
 * two search groups around them): about q (4 d + 8 nprobe) bytes of normalised
 * queries and probe lists, N (8 + 4 + 8) bytes of norms, assignments and list
 * members, the k-means sample (train_sample d floats) and ~16 MB of buffers. */
mms_status mms_knn_ivf(const float *x_full, int64_t n_total, int32_t d, int64_t row0,
                       int64_t n_local, const mms_knn_params_t *p, MPI_Comm comm,
                       int64_t *nbr_out, float *sim_out);

/* The IVF sizes mms_knn_ivf will use for n_total rows: p->nlist and p->nprobe,
 * or when 0: nlist = clamp(round(sqrt(N)), 1, 65536) and nprobe =
 * max(4, ceil(nlist / 128)), capped at nlist (recall@5 above 0.95 on the
 * synthetic 1M catalog of bench_knn; see docs/knn.md for the trade-off). */
void mms_knn_ivf_resolve(const mms_knn_params_t *p, int64_t n_total, int32_t *nlist,
                         int32_t *nprobe);

/* Exact neighbours of nq chosen rows by brute force against all n_total rows of
 * x_full (this process only; no MPI). rows[i] in [0, n_total). Output as above,
 * nq x k. Used for recall; O(nq n d). */
mms_status mms_knn_bruteforce(const float *x_full, int64_t n_total, int32_t d,
                              const int64_t *rows, int64_t nq, int32_t k, int64_t *nbr_out,
                              float *sim_out);

/* recall@k_eval of approximate neighbours against brute force, on a sample of
 * `sample` global rows drawn from seed (the same rows at any P). Collective.
 * nbr_local: this rank's n_local x k lists for rows [row0, row0 + n_local).
 * recall = sum over sampled non-zero rows of |approx[:k_eval] & exact[:k_eval]|
 * divided by the number of exact neighbours (k_eval, or fewer near a zero or a
 * tiny catalog). *recall_out is the same on every rank; 1.0 if no row counted. */
mms_status mms_knn_recall(const float *x_full, int64_t n_total, int32_t d, int64_t row0,
                          int64_t n_local, const int64_t *nbr_local, int32_t k, int32_t k_eval,
                          int64_t sample, uint64_t seed, MPI_Comm comm, double *recall_out);

/* Neighbours per row with sim >= threshold (a prefix of each sorted list):
 * count_out[i] for each of n_rows rows (may be NULL); returns the total. */
int64_t mms_knn_count_above(const float *sim, int64_t n_rows, int32_t k, float threshold,
                            int32_t *count_out);

/* ---- shared by the knn_*.c files (rows and the MPI edge); not for other callers ----
 * Rows are normalised and multiplied the same way in every mode and on every
 * rank, so one row gives the same bits everywhere. The MPI helpers accept
 * MPI_COMM_NULL as "this process alone" (they then copy or do nothing). */

/* 1 / |x| in double for one row; 0 for an all-zero row; -1 if x holds NaN/Inf. */
double knn_inv_norm(const float *x, int32_t d);
/* y = x * inv, rounded to float: the one normalisation used everywhere. */
void knn_scale_row(const float *x, int32_t d, double inv, float *y);
/* C (m x n, ld n) = A (m x d) B (n x d)^T through cblas_sgemm. */
void knn_gemm_nt(int32_t m, int32_t n, int32_t d, const float *a, const float *b, float *c);

void knn_comm_info(MPI_Comm comm, int *rank, int *nranks);
mms_status knn_agree(mms_status local, MPI_Comm comm);
/* Byte messages of any size (chunked below INT_MAX, at most KNN_MAX_CHUNKS). */
#define KNN_MAX_CHUNKS 64
mms_status knn_isend_bytes(const void *buf, size_t bytes, int dest, int tag, MPI_Comm comm,
                           MPI_Request *reqs, int *nreq, int maxreq);
mms_status knn_irecv_bytes(void *buf, size_t bytes, int src, int tag, MPI_Comm comm,
                           MPI_Request *reqs, int *nreq, int maxreq);
mms_status knn_sendrecv_bytes(const void *sbuf, size_t sbytes, int dest, void *rbuf,
                              size_t rbytes, int src, int tag, MPI_Comm comm);
/* Concatenate every rank's array in rank order (counts[r] elements of elem
 * bytes from rank r). One process: copies. */
mms_status knn_allgatherv(const void *mine, void *all, const int64_t *counts, size_t elem,
                          MPI_Comm comm);

#endif
