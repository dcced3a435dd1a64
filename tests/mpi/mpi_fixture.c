/* mpi_fixture.c: see mpi_fixture.h. */
#include "mpi_fixture.h"

#include "graph_build.h"
#include "mms_mpi.h"

mms_status mms_fixture_catalog_graph(const mms_synth_params_t *sp, int pca_dim, int normalize,
                                     const char *cat, const char *graph, MPI_Comm comm) {
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    mms_status s = rank == 0 ? mms_synth_generate(sp, cat, 0) : MMS_OK;
    MMS_CALL(mms_mpi_agree(s, comm));
    mms_build_params_t bp;
    mms_build_params_default(&bp);
    bp.catalog = cat;
    bp.out = graph;
    bp.threshold = -1;
    if (pca_dim >= 0) bp.pca_dim = pca_dim;
    if (normalize >= 0) bp.normalize = normalize;
    mms_build_summary_t bs;
    return mms_graph_build(&bp, comm, &bs);
}
