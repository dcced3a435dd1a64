/* mpi_fixture.h: the small synthetic catalog and graph the MPI tests of the
 * engine and the index build on (test_engine_mpi, test_engine_reload,
 * test_ivf_mpi), compiled into every MPI test. */
#ifndef MMS_MPI_FIXTURE_H
#define MMS_MPI_FIXTURE_H

#include <mpi.h>
#include <stdint.h>

#include "mms_status.h"
#include "synth.h"

/* Collective over comm: rank 0 writes the catalog sp describes to cat, every
 * rank agrees on the outcome, then all build its graph into graph with no
 * similarity threshold. pca_dim and normalize set the build's options of the
 * same names; -1 keeps the build's default. */
mms_status mms_fixture_catalog_graph(const mms_synth_params_t *sp, int pca_dim, int normalize,
                                     const char *cat, const char *graph, MPI_Comm comm);

/* Collective over comm: a short training run of graph into model (max_steps
 * steps of 128 pairs, 5 walks per node, lr 1e-3, seed; hidden > 0 sets the
 * width, 0 keeps the default). */
mms_status mms_fixture_train(const char *graph, const char *model, int64_t max_steps, int seed,
                             int hidden, MPI_Comm comm);

#endif
