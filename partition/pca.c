/* pca.c: distributed PCA (see pca.h and docs/pca.md).
 *
 * Four passes over the local rows, then one eigendecomposition:
 *   A. per-column max |x| (and a NaN/Inf check)           -> allreduce MAX
 *   B. column sums of x quantised to 40-bit fixed point    -> allreduce of int64 limbs
 *   C. per-column max |x - mean|                           -> allreduce MAX
 *   D. (x - mean) quantised to 22-bit integers, Q^T Q by cblas_dsyrk on blocks of
 *      512 rows (exact: every partial sum is an integer below 2^53), summed in
 *      int64                                               -> allreduce of int64 limbs
 * Integer sums are exact and order-free, and every quantisation is a function of
 * one element and of globally agreed scales, so the mean and covariance do not
 * depend on the rank count or on where the rows are split. The covariance is
 * then spread block-cyclically over a BLACS grid built from the communicator and
 * decomposed by pdsyevd; the leading eigenvectors are summed into a replicated
 * buffer (each entry has one owner, so the sum is a copy).
 *
 * Not here: file formats of catalogs, options, the choice of d_out.
 */
#include "pca.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mms_fs.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_npy.h"
#include "scalapack_decl.h"

/* 128-bit integers (GCC/Clang on every 64-bit target) hold exact grand totals. */
__extension__ typedef __int128 pca_i128;

/* Fixed point of the mean: |q| <= 2^40 per element; the int64 accumulator is
 * folded into limbs every 2^20 rows, before it could reach 2^63. */
#define PCA_MEAN_BITS 40
#define PCA_MEAN_FOLD_ROWS (1 << 20)
/* Fixed point of the centred values: |q| <= 2^22, so q_i q_j <= 2^44 and a block
 * of 512 rows sums to at most 2^53, which double arithmetic (and hence dsyrk, in
 * any order, with or without FMA) holds exactly. */
#define PCA_COV_BITS 22
#define PCA_COV_ROWS 512
/* dsyrk blocks added into the int64 accumulator between folds (2^9 * 2^53 = 2^62). */
#define PCA_COV_FOLD_BLOCKS 512
#define PCA_PROJ_ROWS 1024
/* Rows in n_total at most: keeps every limb sum far from int64 overflow. */
#define PCA_MAX_ROWS ((int64_t)1 << 40)

#define LIMB ((int64_t)1 << 32)
#define LIMB_MASK (LIMB - 1)

/* Like MMS_MPI_CALL, but for functions with a cleanup label. */
#define PCA_MPI_GOTO(st, label, expr)                                               \
    do {                                                                            \
        int pca_rc_ = (expr);                                                       \
        if (pca_rc_ != MPI_SUCCESS) {                                               \
            mms_mpi_error(pca_rc_, #expr, __FILE__, __LINE__, __func__);            \
            (st) = MMS_ERR_MPI;                                                     \
            goto label;                                                             \
        }                                                                           \
    } while (0)

/* ---------------------------------------------------------------- fixed point */

/* Adds v into the two-limb number hi * 2^32 + lo, keeping 0 <= lo < 2^32. Exact:
 * v - (v & mask) is a multiple of 2^32. */
static inline void limb_add(int64_t *hi, int64_t *lo, int64_t v) {
    int64_t l = v & LIMB_MASK;
    *hi += (v - l) / LIMB;
    l += *lo;
    int64_t l2 = l & LIMB_MASK;
    *hi += (l - l2) / LIMB;
    *lo = l2;
}

/* The exact value of summed limbs (lo may exceed 2^32 after an MPI sum). */
static inline pca_i128 limb_value(int64_t hi, int64_t lo) { return (pca_i128)hi * LIMB + lo; }

/* Exponent e such that |v| * 2^e < 2^bits for every |v| <= mx (0 when mx == 0). */
static int scale_exp(double mx, int bits) {
    if (!(mx > 0.0)) return 0;
    int e = 0;
    frexp(mx, &e); /* mx = f * 2^e, 0.5 <= f < 1, so mx < 2^e */
    /* keep 2^(bits - e) finite; only ranges below 2^-900 (never from float data)
     * would be clamped, and they then quantise to 0 */
    return bits - e < 960 ? bits - e : 960;
}

/* --------------------------------------------------------------- validation */

/* Collective. Checks that the sizes are valid and the same on every rank; the
 * global checks run on rank 0 only, so a bad value is reported once. */
static mms_status check_args(const float *x_local, int64_t n_local, int64_t n_total,
                             int32_t d_in, int32_t d_out, int check_dout, const void *out,
                             MPI_Comm comm) {
    mms_status st = MMS_OK;
    int rank = 0;
    MMS_MPI_CALL(MPI_Comm_rank(comm, &rank));
    if (out == NULL) {
        st = MMS_ERR_ARG;
        mms_error_set(st, __FILE__, __LINE__, __func__, "PCA output pointer is NULL");
    } else if (n_local < 0 || (n_local > 0 && x_local == NULL)) {
        st = MMS_ERR_ARG;
        mms_error_set(st, __FILE__, __LINE__, __func__,
                      "PCA: this rank has %lld rows but %s", (long long)n_local,
                      n_local < 0 ? "a row count cannot be negative" : "no data pointer");
    }
    /* max of (v, -v) gives max and -min in one reduction */
    int64_t v[7] = {n_total, -n_total, d_in, -(int64_t)d_in, d_out, -(int64_t)d_out,
                    n_local > 0 ? n_local : 0};
    int64_t m[6], sum = 0;
    MMS_MPI_CALL(MPI_Allreduce(v, m, 6, MPI_INT64_T, MPI_MAX, comm));
    MMS_MPI_CALL(MPI_Allreduce(&v[6], &sum, 1, MPI_INT64_T, MPI_SUM, comm));
    if (st == MMS_OK && rank == 0) {
        if (m[0] != -m[1] || m[2] != -m[3] || (check_dout && m[4] != -m[5])) {
            st = MMS_ERR_ARG;
            mms_error_set(st, __FILE__, __LINE__, __func__,
                          "PCA: ranks disagree on the sizes (rows %lld..%lld, width "
                          "%lld..%lld, components %lld..%lld)",
                          (long long)-m[1], (long long)m[0], (long long)-m[3],
                          (long long)m[2], (long long)-m[5], (long long)m[4]);
        } else if (d_in < 1 || d_in > MMS_PCA_MAX_DIM) {
            st = MMS_ERR_ARG;
            mms_error_set(st, __FILE__, __LINE__, __func__,
                          "PCA: feature width %d is outside 1..%d", (int)d_in, MMS_PCA_MAX_DIM);
        } else if (check_dout && (d_out < 1 || d_out > d_in)) {
            st = MMS_ERR_ARG;
            if (d_out > d_in)
                mms_error_set(st, __FILE__, __LINE__, __func__,
                              "--pca-dim %d is above the feature width %d", (int)d_out,
                              (int)d_in);
            else
                mms_error_set(st, __FILE__, __LINE__, __func__,
                              "--pca-dim %d must be at least 1", (int)d_out);
        } else if (n_total < 2 || n_total > PCA_MAX_ROWS) {
            st = MMS_ERR_ARG;
            mms_error_set(st, __FILE__, __LINE__, __func__,
                          "PCA needs 2 to 2^40 rows, got %lld", (long long)n_total);
        } else if (sum != n_total) {
            st = MMS_ERR_ARG;
            mms_error_set(st, __FILE__, __LINE__, __func__,
                          "PCA: the ranks hold %lld rows in all, not n_total = %lld",
                          (long long)sum, (long long)n_total);
        }
    }
    return mms_mpi_agree(st, comm);
}

/* ------------------------------------------------------------------ moments */

/* Local. mx[j] = max |x_ij - shift_j| over the rows (shift NULL = 0). Fails on a
 * NaN or infinite element, naming its global row (row0 = first local row id). */
static mms_status col_absmax(const float *x, int64_t n, int32_t d, const double *shift,
                             int64_t row0, double *mx) {
    for (int32_t j = 0; j < d; j++) mx[j] = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *xr = x + (size_t)i * (size_t)d;
        int bad = 0;
        for (int32_t j = 0; j < d; j++) {
            double a = fabs((double)xr[j] - (shift ? shift[j] : 0.0));
            bad |= !(a <= DBL_MAX);
            mx[j] = a > mx[j] ? a : mx[j];
        }
        if (bad) {
            int32_t j = 0;
            while (j < d && isfinite(xr[j])) j++;
            MMS_CHECK(0, MMS_ERR_NUMERIC, "PCA input row %lld column %d is %s",
                      (long long)(row0 + i), (int)j,
                      j < d && isnan(xr[j]) ? "NaN" : "infinite");
        }
    }
    return MMS_OK;
}

/* Collective. Allreduce MAX of per-column maxima (exact, order-free) and the
 * scale exponents derived from them. */
static mms_status agree_scales(double *mx, int32_t d, int bits, int *e, MPI_Comm comm) {
    MMS_MPI_CALL(MPI_Allreduce(MPI_IN_PLACE, mx, d, MPI_DOUBLE, MPI_MAX, comm));
    for (int32_t j = 0; j < d; j++) e[j] = scale_exp(mx[j], bits);
    return MMS_OK;
}

/* Local. Column sums of round(x_ij * sc_j) (sc_j = 2^e_j, so the product is exact)
 * into limbs hi[0..d), lo[0..d). acc: d int64 of scratch. */
static void sum_fixed(const float *x, int64_t n, int32_t d, const double *sc, int64_t *acc,
                      int64_t *hi, int64_t *lo) {
    for (int32_t j = 0; j < d; j++) acc[j] = 0;
    for (int64_t i0 = 0; i0 < n; i0 += PCA_MEAN_FOLD_ROWS) {
        int64_t i1 = i0 + PCA_MEAN_FOLD_ROWS < n ? i0 + PCA_MEAN_FOLD_ROWS : n;
        for (int64_t i = i0; i < i1; i++) {
            const float *xr = x + (size_t)i * (size_t)d;
            for (int32_t j = 0; j < d; j++) acc[j] += (int64_t)nearbyint((double)xr[j] * sc[j]);
        }
        for (int32_t j = 0; j < d; j++) {
            limb_add(&hi[j], &lo[j], acc[j]);
            acc[j] = 0;
        }
    }
}

/* Collective. Exact mean and covariance of the rows (see the file comment). mean:
 * d doubles, cov: d x d doubles (full), both written on every rank. All ranks
 * return together: a local failure is agreed on before the next collective. */
static mms_status pca_moments(const float *x, int64_t n_local, int64_t n_total, int32_t d,
                              MPI_Comm comm, double *mean, double *cov) {
    mms_status st = MMS_OK;
    const size_t du = (size_t)d, m = du * (du + 1) / 2;
    double *mx = NULL, *sc = NULL, *qbuf = NULL, *cbuf = NULL;
    int *e = NULL;
    int64_t *acc = NULL, *limbs = NULL, row0 = 0;
    int rank = 0;
    MMS_MPI_CALL(MPI_Comm_rank(comm, &rank));
    MMS_MPI_CALL(MPI_Exscan(&n_local, &row0, 1, MPI_INT64_T, MPI_SUM, comm));
    if (rank == 0) row0 = 0; /* MPI_Exscan leaves rank 0's result undefined */

    /* Everything up front, so one agreement covers every allocation. */
    st = mms_malloc(du * sizeof *mx, &mx);
    if (st == MMS_OK) st = mms_malloc(du * sizeof *sc, &sc);
    if (st == MMS_OK) st = mms_malloc(du * sizeof *e, &e);
    if (st == MMS_OK) st = mms_calloc(m, sizeof *acc, &acc); /* m >= d */
    if (st == MMS_OK) st = mms_calloc(2 * m, sizeof *limbs, &limbs);
    if (st == MMS_OK) st = mms_calloc((size_t)PCA_COV_ROWS * du, sizeof *qbuf, &qbuf);
    if (st == MMS_OK) st = mms_calloc(du * du, sizeof *cbuf, &cbuf);
    st = mms_mpi_agree(st, comm);
    if (st != MMS_OK) goto done;

    /* A: column ranges of x, and no NaN/Inf anywhere */
    st = mms_mpi_agree(col_absmax(x, n_local, d, NULL, row0, mx), comm);
    if (st != MMS_OK) goto done;
    MMS_CALL_GOTO(st, done, agree_scales(mx, d, PCA_MEAN_BITS, e, comm));
    for (size_t j = 0; j < du; j++) sc[j] = ldexp(1.0, e[j]);

    /* B: exact column sums in fixed point, then the mean */
    sum_fixed(x, n_local, d, sc, acc, limbs, limbs + du);
    PCA_MPI_GOTO(st, done,
                 MPI_Allreduce(MPI_IN_PLACE, limbs, (int)(2 * du), MPI_INT64_T, MPI_SUM, comm));
    for (size_t j = 0; j < du; j++) {
        pca_i128 t = limb_value(limbs[j], limbs[du + j]);
        pca_i128 q = t / n_total, r = t % n_total; /* |q| <= 2^40: exact as a double */
        mean[j] = ldexp((double)q + (double)r / (double)n_total, -e[j]);
    }

    /* C: column ranges of the centred values */
    st = mms_mpi_agree(col_absmax(x, n_local, d, mean, row0, mx), comm);
    if (st != MMS_OK) goto done;
    MMS_CALL_GOTO(st, done, agree_scales(mx, d, PCA_COV_BITS, e, comm));
    for (size_t j = 0; j < du; j++) sc[j] = ldexp(1.0, e[j]);

    /* D: Q^T Q on blocks of rows, exact in double, summed in int64 */
    memset(limbs, 0, 2 * m * sizeof *limbs);
    memset(acc, 0, m * sizeof *acc);
    mms_progress_t pg;
    mms_progress_begin(&pg, "PCA covariance", n_local, "rows");
    int blocks = 0;
    for (int64_t i0 = 0; i0 < n_local; i0 += PCA_COV_ROWS) {
        int rows = (int)(n_local - i0 < PCA_COV_ROWS ? n_local - i0 : PCA_COV_ROWS);
        for (int r = 0; r < rows; r++) {
            const float *xr = x + (size_t)(i0 + r) * du;
            double *qr = qbuf + (size_t)r * du;
            for (size_t j = 0; j < du; j++) qr[j] = nearbyint(((double)xr[j] - mean[j]) * sc[j]);
        }
        /* cbuf (upper) = qbuf^T qbuf, qbuf is rows x d row-major */
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, rows, 1.0, qbuf, d, 0.0, cbuf, d);
        size_t p = 0;
        for (size_t j = 0; j < du; j++) {
            const double *cr = cbuf + j * du;
            int64_t *ar = acc + p - j; /* ar[k] for k >= j */
            for (size_t k = j; k < du; k++) ar[k] += (int64_t)cr[k];
            p += du - j;
        }
        if (++blocks == PCA_COV_FOLD_BLOCKS || i0 + rows >= n_local) {
            for (size_t q = 0; q < m; q++) {
                limb_add(&limbs[q], &limbs[m + q], acc[q]);
                acc[q] = 0;
            }
            blocks = 0;
        }
        mms_progress_update(&pg, i0 + rows);
    }
    mms_progress_end(&pg);
    PCA_MPI_GOTO(st, done, MPI_Allreduce(MPI_IN_PLACE, limbs, (int)(2 * m), MPI_INT64_T, MPI_SUM,
                                         comm));
    {
        const double denom = (double)(n_total - 1);
        size_t p = 0;
        for (size_t j = 0; j < du; j++) {
            for (size_t k = j; k < du; k++, p++) {
                pca_i128 t = limb_value(limbs[p], limbs[m + p]);
                double c = ldexp((double)t, -(e[j] + e[k])) / denom;
                cov[j * du + k] = c;
                cov[k * du + j] = c;
            }
        }
    }

done:
    mms_free(&mx);
    mms_free(&sc);
    mms_free(&e);
    mms_free(&acc);
    mms_free(&limbs);
    mms_free(&qbuf);
    mms_free(&cbuf);
    return st;
}

/* ------------------------------------------------------------- eigensolver */

/* Grid as square as possible: nprow the largest divisor of p not above sqrt(p). */
static void grid_shape(int p, int *nprow, int *npcol) {
    int r = (int)sqrt((double)p);
    while (r > 1 && p % r) r--;
    if (r < 1) r = 1;
    *nprow = r;
    *npcol = p / r;
}

/* Global index of local index l in a block-cyclic dimension (source process 0). */
static inline int l2g(int l, int nb, int me, int np) { return (l / nb * np + me) * nb + l % nb; }

/* Collective. Top d_out eigenpairs of the symmetric d x d matrix cov (full,
 * replicated) with pdsyevd on a BLACS grid over comm. eig: d_out descending; comp:
 * d x d_out row-major, column k the eigenvector of eig[k]; both on every rank. */
static mms_status pca_eig(const double *cov, int d, int d_out, MPI_Comm comm, double *eig,
                          double *comp, int *grid_out) {
    mms_status st = MMS_OK;
    int rank = 0, nranks = 1, nprow = 1, npcol = 1, myrow = -1, mycol = -1;
    int handle = -1, ctxt = -1, info = 0, mloc = 0, nloc = 0, lld = 1;
    int izero = 0, ione = 1, lwork = -1, liwork = 1, iwq = 0, bl_me = 0, bl_np = 0;
    int desc[MMS_SL_DLEN] = {0};
    double *a = NULL, *z = NULL, *w = NULL, *work = NULL, wq = 0.0;
    int *iwork = NULL;
    MMS_MPI_CALL(MPI_Comm_rank(comm, &rank));
    MMS_MPI_CALL(MPI_Comm_size(comm, &nranks));
    grid_shape(nranks, &nprow, &npcol);
    /* Narrow matrices get smaller blocks so that every grid row and column owns
     * one when d allows it (pdsyevd returns wrong eigenvalues on ranks that own
     * none: see the broadcast of w below). */
    int nb = MMS_PCA_BLOCK, pmax = nprow > npcol ? nprow : npcol;
    if (nb * pmax > d) nb = d / pmax > 1 ? d / pmax : 1;
    grid_out[0] = nprow;
    grid_out[1] = npcol;
    grid_out[2] = nb;

    /* A BLACS system handle for this communicator (not necessarily MPI_COMM_WORLD);
     * gridinit replaces the handle in ctxt by the new grid's context. */
    Cblacs_pinfo(&bl_me, &bl_np);
    handle = Csys2blacs_handle(comm);
    ctxt = handle;
    Cblacs_gridinit(&ctxt, "R", nprow, npcol);
    Cblacs_gridinfo(ctxt, &nprow, &npcol, &myrow, &mycol);
    MMS_CHECK_GOTO(st, agree, myrow >= 0 && mycol >= 0, MMS_ERR_LIB,
                   "BLACS: rank %d is not in the %d x %d process grid", rank, nprow, npcol);
    MMS_CHECK_GOTO(st, agree, rank != 0 || (myrow == 0 && mycol == 0), MMS_ERR_INTERNAL,
                   "BLACS placed rank 0 at (%d, %d) of the grid, not (0, 0)", myrow, mycol);

    mloc = numroc_(&d, &nb, &myrow, &izero, &nprow);
    nloc = numroc_(&d, &nb, &mycol, &izero, &npcol);
    lld = mloc > 1 ? mloc : 1;
    descinit_(desc, &d, &d, &nb, &nb, &izero, &izero, &ctxt, &lld, &info);
    MMS_CHECK_GOTO(st, agree, info == 0, MMS_ERR_LIB,
                   "ScaLAPACK descinit failed (info %d) for a %d x %d matrix, block %d on a "
                   "%d x %d grid", info, d, d, nb, nprow, npcol);
    const size_t nlocal = (size_t)lld * (size_t)(nloc > 1 ? nloc : 1);
    MMS_CALL_GOTO(st, agree, mms_malloc(nlocal * sizeof *a, &a));
    MMS_CALL_GOTO(st, agree, mms_calloc(nlocal, sizeof *z, &z));
    MMS_CALL_GOTO(st, agree, mms_malloc((size_t)d * sizeof *w, &w));
    for (int jl = 0; jl < nloc; jl++) {
        const size_t gj = (size_t)l2g(jl, nb, mycol, npcol);
        double *acol = a + (size_t)jl * (size_t)lld;
        for (int il = 0; il < mloc; il++)
            acol[il] = cov[(size_t)l2g(il, nb, myrow, nprow) * (size_t)d + gj];
    }

    /* workspace query: lwork = -1 returns the sizes in work[0] and iwork[0] */
    pdsyevd_("V", "U", &d, a, &ione, &ione, desc, w, z, &ione, &ione, desc, &wq, &lwork, &iwq,
             &liwork, &info, 1, 1);
    MMS_CHECK_GOTO(st, agree, info == 0, MMS_ERR_LIB,
                   "ScaLAPACK pdsyevd workspace query failed (info %d)", info);
    /* Some ScaLAPACK releases under-report what pdormtr needs: add one block panel. */
    double lw = wq + (double)nb * (double)(mloc + nloc + 2 * nb) + 4.0 * d;
    MMS_CHECK_GOTO(st, agree, lw < 2147483647.0 && iwq > 0, MMS_ERR_LIB,
                   "ScaLAPACK pdsyevd wants %.0f doubles and %d ints of workspace", lw, iwq);
    lwork = (int)lw;
    liwork = iwq;
    MMS_CALL_GOTO(st, agree, mms_malloc((size_t)lwork * sizeof *work, &work));
    MMS_CALL_GOTO(st, agree, mms_malloc((size_t)liwork * sizeof *iwork, &iwork));
agree:
    st = mms_mpi_agree(st, comm);
    if (st != MMS_OK) goto done;
    mms_log_info("PCA: eigendecomposition of the %d x %d covariance on a %d x %d grid, block %d",
                 d, d, nprow, npcol, nb);

    pdsyevd_("V", "U", &d, a, &ione, &ione, desc, w, z, &ione, &ione, desc, work, &lwork, iwork,
             &liwork, &info, 1, 1);
    if (info < 0)
        MMS_CHECK_GOTO(st, agreed, 0, MMS_ERR_LIB,
                       "ScaLAPACK pdsyevd rejected argument %d (info %d)", -info, info);
    MMS_CHECK_GOTO(st, agreed, info == 0, MMS_ERR_NUMERIC,
                   "ScaLAPACK pdsyevd did not converge (info %d) on the %d x %d covariance",
                   info, d, d);
agreed:
    st = mms_mpi_agree(st, comm);
    if (st != MMS_OK) goto done;

    /* Eigenvalues ascend; component k is global column d - 1 - k. Every entry of
     * comp has exactly one owner, so the SUM below only copies. */
    memset(comp, 0, (size_t)d * (size_t)d_out * sizeof *comp);
    for (int jl = 0; jl < nloc; jl++) {
        int k = d - 1 - l2g(jl, nb, mycol, npcol);
        if (k >= d_out) continue;
        for (int il = 0; il < mloc; il++)
            comp[(size_t)l2g(il, nb, myrow, nprow) * (size_t)d_out + (size_t)k] =
                z[(size_t)il + (size_t)jl * (size_t)lld];
    }
    PCA_MPI_GOTO(st, done, MPI_Allreduce(MPI_IN_PLACE, comp, d * d_out, MPI_DOUBLE, MPI_SUM, comm));
    /* w is documented as replicated, but a rank that owns no block of the matrix
     * (d smaller than a grid side) gets wrong values: take grid process (0, 0)'s,
     * which owns the first block, so every rank has the same eigenvalues. */
    PCA_MPI_GOTO(st, done, MPI_Bcast(w, d, MPI_DOUBLE, 0, comm));
    for (int k = 0; k < d_out; k++) eig[k] = w[d - 1 - k];

done:
    if (ctxt >= 0 && myrow >= 0) Cblacs_gridexit(ctxt);
    if (handle >= 0) Cfree_blacs_system_handle(handle);
    mms_free(&a);
    mms_free(&z);
    mms_free(&w);
    mms_free(&work);
    mms_free(&iwork);
    return st;
}

/* ------------------------------------------------------------------- public */

static mms_status pca_alloc(int32_t d_in, int32_t d_out, mms_pca_t *p) {
    size_t dd = (size_t)d_in * (size_t)d_out;
    size_t bytes = 2 * (size_t)d_out * sizeof(double) + ((size_t)d_in + dd) * sizeof(float);
    memset(p, 0, sizeof *p);
    MMS_CALL(mms_malloc(bytes, &p->mem_));
    p->d_in = d_in;
    p->d_out = d_out;
    p->eigvals = (double *)p->mem_;
    p->explained = p->eigvals + d_out;
    p->mean = (float *)(p->explained + d_out);
    p->components = p->mean + d_in;
    return MMS_OK;
}

void mms_pca_free(mms_pca_t *p) {
    if (!p) return;
    mms_free(&p->mem_);
    memset(p, 0, sizeof *p);
}

mms_status mms_pca_covariance(const float *x_local, int64_t n_local, int64_t n_total,
                              int32_t d_in, MPI_Comm comm, double *mean, double *cov) {
    const void *outs = (mean && cov) ? (const void *)mean : NULL;
    MMS_CALL(check_args(x_local, n_local, n_total, d_in, 1, 0, outs, comm));
    MMS_CALL(pca_moments(x_local, n_local, n_total, d_in, comm, mean, cov));
    return MMS_OK;
}

mms_status mms_pca_fit(const float *x_local, int64_t n_local, int64_t n_total, int32_t d_in,
                       int32_t d_out, MPI_Comm comm, mms_pca_t *out) {
    mms_status st = MMS_OK;
    double *mean = NULL, *cov = NULL, *eig = NULL, *comp = NULL;
    int nranks = 1, grid[3] = {1, 1, MMS_PCA_BLOCK};
    if (out) memset(out, 0, sizeof *out);
    MMS_CALL(check_args(x_local, n_local, n_total, d_in, d_out, 1, out, comm));
    MMS_MPI_CALL(MPI_Comm_size(comm, &nranks));
    const size_t du = (size_t)d_in, ko = (size_t)d_out;

    st = mms_malloc(du * sizeof *mean, &mean);
    if (st == MMS_OK) st = mms_malloc(du * du * sizeof *cov, &cov);
    if (st == MMS_OK) st = mms_malloc(ko * sizeof *eig, &eig);
    if (st == MMS_OK) st = mms_malloc(du * ko * sizeof *comp, &comp);
    if (st == MMS_OK) st = pca_alloc(d_in, d_out, out);
    st = mms_mpi_agree(st, comm);
    if (st != MMS_OK) goto done;

    double t0 = mms_now();
    MMS_CALL_GOTO(st, done, pca_moments(x_local, n_local, n_total, d_in, comm, mean, cov));
    double t1 = mms_now();
    MMS_CALL_GOTO(st, done, pca_eig(cov, d_in, d_out, comm, eig, comp, grid));
    double t2 = mms_now();

    /* Sign: the largest-magnitude entry of each component is positive (first on
     * ties), so the output does not depend on the solver's arbitrary sign. */
    for (size_t k = 0; k < ko; k++) {
        size_t best = 0;
        for (size_t i = 1; i < du; i++)
            if (fabs(comp[i * ko + k]) > fabs(comp[best * ko + k])) best = i;
        double sgn = comp[best * ko + k] < 0.0 ? -1.0 : 1.0;
        for (size_t i = 0; i < du; i++) out->components[i * ko + k] = (float)(sgn * comp[i * ko + k]);
    }
    double trace = 0.0;
    for (size_t j = 0; j < du; j++) trace += cov[j * du + j];
    double kept = 0.0;
    for (size_t k = 0; k < ko; k++) {
        out->eigvals[k] = eig[k];
        out->explained[k] = trace > 0.0 ? eig[k] / trace : 0.0;
        kept += out->explained[k];
    }
    for (size_t j = 0; j < du; j++) out->mean[j] = (float)mean[j];
    if (!(trace > 0.0)) mms_log_warn("PCA: every feature is constant; the components are arbitrary");
    mms_log_info("PCA %lld x %d -> %d on %d ranks (grid %d x %d, block %d): moments %.2f s, "
                 "eigensolver %.2f s; the components keep %.1f%% of the variance",
                 (long long)n_total, (int)d_in, (int)d_out, nranks, grid[0], grid[1], grid[2],
                 t1 - t0, t2 - t1, 100.0 * kept);

done:
    if (st != MMS_OK) mms_pca_free(out);
    mms_free(&mean);
    mms_free(&cov);
    mms_free(&eig);
    mms_free(&comp);
    return st;
}

mms_status mms_pca_project(const mms_pca_t *p, const float *x, int64_t n, float *y) {
    MMS_CHECK(p && p->mem_ && p->d_in > 0 && p->d_out > 0, MMS_ERR_ARG,
              "PCA projection needs a fitted or loaded PCA");
    MMS_CHECK(n >= 0 && (n == 0 || (x && y)), MMS_ERR_ARG,
              "PCA projection of %lld rows needs input and output buffers", (long long)n);
    const size_t di = (size_t)p->d_in, ko = (size_t)p->d_out;
    float *buf = NULL;
    MMS_CALL(mms_malloc((size_t)PCA_PROJ_ROWS * di * sizeof *buf, &buf));
    for (int64_t i0 = 0; i0 < n; i0 += PCA_PROJ_ROWS) {
        int rows = (int)(n - i0 < PCA_PROJ_ROWS ? n - i0 : PCA_PROJ_ROWS);
        /* centre first: x @ W - mean @ W would cancel badly for large offsets */
        for (int r = 0; r < rows; r++) {
            const float *xr = x + (size_t)(i0 + r) * di;
            float *br = buf + (size_t)r * di;
            for (size_t j = 0; j < di; j++) br[j] = xr[j] - p->mean[j];
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, p->d_out, p->d_in, 1.0f,
                    buf, p->d_in, p->components, p->d_out, 0.0f, y + (size_t)i0 * ko, p->d_out);
    }
    mms_free(&buf);
    return MMS_OK;
}

mms_status mms_pca_save(const mms_pca_t *p, const char *dir) {
    MMS_CHECK(p && p->mem_ && dir, MMS_ERR_ARG, "PCA save needs a fitted PCA and a directory");
    char path[MMS_PATH_MAX];
    MMS_CALL(mms_mkdir_p(dir));
    MMS_CALL(mms_path_join(path, sizeof path, dir, MMS_PCA_MEAN_FILE));
    MMS_CALL(mms_npy_write(path, MMS_DT_F32, p->mean, (size_t)p->d_in, 0));
    MMS_CALL(mms_path_join(path, sizeof path, dir, MMS_PCA_COMPONENTS_FILE));
    MMS_CALL(mms_npy_write(path, MMS_DT_F32, p->components, (size_t)p->d_in, (size_t)p->d_out));
    MMS_CALL(mms_path_join(path, sizeof path, dir, MMS_PCA_EIGVALS_FILE));
    MMS_CALL(mms_npy_write(path, MMS_DT_F64, p->eigvals, (size_t)p->d_out, 0));
    MMS_CALL(mms_path_join(path, sizeof path, dir, MMS_PCA_EXPLAINED_FILE));
    MMS_CALL(mms_npy_write(path, MMS_DT_F64, p->explained, (size_t)p->d_out, 0));
    return MMS_OK;
}

/* Opens dir/name as a dtype array of shape (rows,) (cols == 0) or (rows, cols). */
static mms_status open_shaped(const char *dir, const char *name, mms_dtype t, size_t rows,
                              size_t cols, mms_npy_t *a) {
    char path[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(path, sizeof path, dir, name));
    MMS_CALL(mms_npy_open(path, (int)t, a));
    int ok = cols ? (a->hdr.ndim == 2 && a->rows == rows && a->cols == cols)
                  : (a->hdr.ndim == 1 && a->rows == rows);
    if (!ok) {
        size_t r = a->rows, c = a->cols;
        int nd = a->hdr.ndim;
        mms_npy_close(a);
        if (cols)
            MMS_CHECK(0, MMS_ERR_MISMATCH, "'%s' has shape %s(%zu, %zu), expected (%zu, %zu)",
                      path, nd == 2 ? "" : "1-D ", r, c, rows, cols);
        MMS_CHECK(0, MMS_ERR_MISMATCH, "'%s' has %zu x %zu entries, expected a 1-D array of %zu",
                  path, r, c, rows);
    }
    return MMS_OK;
}

mms_status mms_pca_load(const char *dir, mms_pca_t *out) {
    MMS_CHECK(dir && out, MMS_ERR_ARG, "PCA load needs a directory and an output");
    memset(out, 0, sizeof *out);
    mms_status st = MMS_OK;
    mms_npy_t mean, comp, eig, expl;
    memset(&mean, 0, sizeof mean);
    memset(&comp, 0, sizeof comp);
    memset(&eig, 0, sizeof eig);
    memset(&expl, 0, sizeof expl);
    char path[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(path, sizeof path, dir, MMS_PCA_COMPONENTS_FILE));
    MMS_CALL(mms_npy_open(path, MMS_DT_F32, &comp));
    size_t di = comp.rows, ko = comp.cols;
    int shape_ok = comp.hdr.ndim == 2 && di >= 1 && di <= MMS_PCA_MAX_DIM && ko >= 1 && ko <= di;
    mms_npy_close(&comp);
    MMS_CHECK(shape_ok, MMS_ERR_FORMAT,
              "'%s' has shape (%zu, %zu): expected (d_in, d_out) with 1 <= d_out <= d_in <= %d",
              path, di, ko, MMS_PCA_MAX_DIM);
    MMS_CALL_GOTO(st, done, open_shaped(dir, MMS_PCA_COMPONENTS_FILE, MMS_DT_F32, di, ko, &comp));
    MMS_CALL_GOTO(st, done, open_shaped(dir, MMS_PCA_MEAN_FILE, MMS_DT_F32, di, 0, &mean));
    MMS_CALL_GOTO(st, done, open_shaped(dir, MMS_PCA_EIGVALS_FILE, MMS_DT_F64, ko, 0, &eig));
    MMS_CALL_GOTO(st, done, open_shaped(dir, MMS_PCA_EXPLAINED_FILE, MMS_DT_F64, ko, 0, &expl));
    MMS_CALL_GOTO(st, done, pca_alloc((int32_t)di, (int32_t)ko, out));
    memcpy(out->mean, mean.data, di * sizeof(float));
    memcpy(out->components, comp.data, di * ko * sizeof(float));
    memcpy(out->eigvals, eig.data, ko * sizeof(double));
    memcpy(out->explained, expl.data, ko * sizeof(double));
done:
    mms_npy_close(&mean);
    mms_npy_close(&comp);
    mms_npy_close(&eig);
    mms_npy_close(&expl);
    return st;
}
