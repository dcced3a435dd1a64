/* scalapack_decl.h: private prototypes of the BLACS and ScaLAPACK routines mmsage calls.
 *
 * Debian's libscalapack-openmpi ships no C header, so the prototypes are written
 * here from the reference interfaces. Only partition/ includes this file; nothing
 * in it is part of the mmsage API.
 *
 * Conventions:
 *  - Fortran routines (trailing underscore) take every argument by pointer, use
 *    1-based global indices and column-major local storage, and report errors
 *    through an INTEGER info argument (0 = ok, < 0 = bad argument, > 0 =
 *    numerical failure). CHARACTER arguments carry a hidden length, passed by
 *    value after the last ordinary argument (size_t with gfortran >= 8); we pass
 *    it explicitly (always 1).
 *  - The C BLACS entry points (Cblacs_*) take integers by value; a context is an
 *    int handle. Csys2blacs_handle turns an MPI communicator into a BLACS system
 *    handle that Cblacs_gridinit accepts in place of a system context.
 *  - Array descriptors are int[9] (DLEN_ = 9): dtype, ctxt, m, n, mb, nb, rsrc,
 *    csrc, lld.
 */
#ifndef MMS_SCALAPACK_DECL_H
#define MMS_SCALAPACK_DECL_H

#include <mpi.h>
#include <stddef.h>

#define MMS_SL_DLEN 9

/* --- BLACS (C interface) --- */
void Cblacs_pinfo(int *mypnum, int *nprocs);
void Cblacs_get(int icontxt, int what, int *val);
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
/* *icontxt: system handle on input, the new grid context on output. order "R"
 * numbers the processes row-major over the grid. */
void Cblacs_gridinit(int *icontxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int icontxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int icontxt);

/* --- ScaLAPACK tools (Fortran) --- */
/* Number of rows (or columns) of an n-long dimension cut in nb-blocks that process
 * iproc of nprocs owns when the first block is on isrcproc. */
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
            const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld,
               int *info);

/* --- ScaLAPACK drivers (Fortran) --- */
/* All eigenvalues (ascending, replicated in w) and eigenvectors (distributed like
 * z) of a symmetric matrix by divide and conquer. a is destroyed. lwork = -1 is a
 * workspace query (work[0], iwork[0] return the sizes). */
void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia,
              const int *ja, const int *desca, double *w, double *z, const int *iz,
              const int *jz, const int *descz, double *work, const int *lwork, int *iwork,
              const int *liwork, int *info, size_t jobz_len, size_t uplo_len);

#endif
