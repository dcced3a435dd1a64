/* mpi_fixture.c: see mpi_fixture.h. */
#include "mpi_fixture.h"

#include "graph_build.h"
#include "mms_mpi.h"
#include "train.h"

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

mms_status mms_fixture_train(const char *graph, const char *model, int64_t max_steps, int seed,
                             int hidden, MPI_Comm comm) {
    mms_train_params_t tp;
    mms_train_params_default(&tp);
    tp.graph = graph;
    tp.out = model;
    tp.max_steps = max_steps;
    tp.lr = 1e-3;
    tp.batch = 128;
    tp.walks = 5;
    tp.seed = (uint64_t)seed;
    if (hidden > 0) tp.hidden = hidden;
    tp.log_every = 1000;
    mms_train_summary_t ts;
    return mms_train(&tp, comm, &ts);
}
