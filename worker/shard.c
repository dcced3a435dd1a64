/* shard.c: loading one rank's shard and the halo feature exchange (see
 * shard.h); the exchange is one exchange plan of common/mms_mpi.h. */
#include "shard.h"

#include <stdlib.h>
#include <string.h>

#include "mms_array.h"
#include "mms_log.h"
#include "mms_mpi.h"

int64_t mms_shard_local(const mms_shard_t *sh, int64_t v) {
    int64_t i = mms_find_i64(sh->gid, sh->n_owned, v);
    if (i >= 0) return i;
    i = mms_find_i64(sh->gid + sh->n_owned, sh->n_halo1, v);
    if (i >= 0) return sh->n_owned + i;
    i = mms_find_i64(sh->gid + sh->n_owned + sh->n_halo1, sh->n_halo2, v);
    if (i >= 0) return sh->n_owned + sh->n_halo1 + i;
    return -1;
}

void mms_shard_free(mms_shard_t *sh) {
    if (!sh) return;
    free(sh->gid);
    mms_csr_free(&sh->adj);
    mms_csr_free(&sh->full);
    free(sh->x);
    memset(sh, 0, sizeof *sh);
}

/* Halo exchange: every rank asks the owners for the image rows it lacks
 * (one exchange plan, common/mms_mpi.h). Collective. */
static mms_status exchange_halo(const mms_graph_t *g, mms_shard_t *sh, MPI_Comm comm) {
    const int P = sh->nranks;
    const int64_t D = sh->dim, nh = sh->n_halo1 + sh->n_halo2;
    mms_mpi_plan_t plan = {0};
    int *count = NULL;
    int64_t *want = NULL, *wl = NULL, *fill = NULL;
    float *sendrows = NULL, *recvrows = NULL;
    /* halo image nodes grouped by owner, local order kept within a group; wl:
     * the local index of each wanted row, in the same order */
    mms_status s = mms_calloc((size_t)P * 2, sizeof(int), &count);
    if (s == MMS_OK) s = mms_calloc((size_t)P, sizeof(int64_t), &fill);
    if (s == MMS_OK) s = mms_malloc((size_t)(nh + 1) * sizeof *want, &want);
    if (s == MMS_OK) s = mms_malloc((size_t)(nh + 1) * sizeof *wl, &wl);
    int64_t nwant = 0;
    if (s == MMS_OK) {
        int *displ = count + P;
        for (int64_t i = sh->n_owned; i < sh->n_local; i++)
            if (sh->gid[i] < sh->n_images) count[sh->part[sh->gid[i]]]++;
        for (int r = 1; r < P; r++) displ[r] = displ[r - 1] + count[r - 1];
        for (int64_t i = sh->n_owned; i < sh->n_local; i++) {
            int64_t v = sh->gid[i];
            if (v >= sh->n_images) continue;
            int r = sh->part[v];
            want[displ[r] + fill[r]] = v;
            wl[displ[r] + fill[r]] = i;
            fill[r]++;
            nwant++;
        }
    }
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, comm));
    MMS_CALL_GOTO(s, out, mms_mpi_plan_make(&plan, want, count, (int)D, comm));
    /* answer with the rows (each is an owned image node here) */
    const int64_t nasked = plan.n_ans;
    s = mms_malloc((size_t)(nasked * D + 1) * sizeof(float), &sendrows);
    if (s == MMS_OK) s = mms_malloc((size_t)(nwant * D + 1) * sizeof(float), &recvrows);
    for (int64_t i = 0; s == MMS_OK && i < nasked; i++) {
        int64_t v = plan.asked[i];
        if (!(v >= 0 && v < sh->n_images && sh->part[v] == sh->rank)) {
            mms_error_set(MMS_ERR_INTERNAL, __FILE__, __LINE__, __func__,
                          "halo request for node %lld not owned by rank %d", (long long)v, sh->rank);
            s = MMS_ERR_INTERNAL;
            break;
        }
        memcpy(sendrows + i * D, g->x + v * D, (size_t)D * sizeof(float));
    }
    MMS_CALL_GOTO(s, out, mms_mpi_agree(s, comm));
    MMS_CALL_GOTO(s, out, mms_mpi_plan_rows(&plan, sendrows, recvrows, MPI_FLOAT, comm));
    for (int64_t i = 0; i < nwant; i++)
        memcpy(sh->x + wl[i] * D, recvrows + i * D, (size_t)D * sizeof(float));
    sh->halo_bytes_in = nwant * D * (int64_t)sizeof(float);
    sh->halo_bytes_out = nasked * D * (int64_t)sizeof(float);
out:
    mms_mpi_plan_free(&plan);
    free(count);
    free(fill);
    free(want);
    free(wl);
    free(sendrows);
    free(recvrows);
    return s;
}

mms_status mms_shard_load(const mms_graph_t *g, const mms_partition_t *pt, MPI_Comm comm,
                          mms_shard_t *sh) {
    memset(sh, 0, sizeof *sh);
    double t0 = mms_now();
    MMS_MPI_CALL(MPI_Comm_rank(comm, &sh->rank));
    MMS_MPI_CALL(MPI_Comm_size(comm, &sh->nranks));
    mms_status s = MMS_OK;
    mms_part_nodes_t pn = {0};
    if (pt->parts != sh->nranks) {
        mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                      "the partition has %d parts but %d ranks are running: run with mpirun -np %d "
                      "or partition again with --parts %d",
                      pt->parts, sh->nranks, pt->parts, sh->nranks);
        s = MMS_ERR_ARG;
    }
    if (s == MMS_OK) s = mms_partition_load_part(pt, sh->rank, &pn);
    MMS_CALL_GOTO(s, fail, mms_mpi_agree(s, comm));
    sh->n_nodes = g->n_nodes;
    sh->n_images = g->n_images;
    sh->n_tags = g->n_tags;
    sh->dim = g->dim;
    sh->part = pt->part;
    sh->n_owned = pn.n_owned;
    sh->n_halo1 = pn.n_halo1;
    sh->n_halo2 = pn.n_halo2;
    sh->n_local = pn.n_owned + pn.n_halo1 + pn.n_halo2;
    MMS_CALL_GOTO(s, agree, mms_malloc((size_t)(sh->n_local + 1) * sizeof *sh->gid, &sh->gid));
    memcpy(sh->gid, pn.owned, (size_t)pn.n_owned * sizeof(int64_t));
    memcpy(sh->gid + pn.n_owned, pn.halo1, (size_t)pn.n_halo1 * sizeof(int64_t));
    memcpy(sh->gid + pn.n_owned + pn.n_halo1, pn.halo2, (size_t)pn.n_halo2 * sizeof(int64_t));
    /* sampling adjacency in local indices for owned + halo1 rows */
    int64_t nrows = sh->n_owned + sh->n_halo1, nnz = 0;
    for (int64_t i = 0; i < nrows; i++) nnz += mms_csr_degree(&g->adj, sh->gid[i]);
    sh->adj.n = sh->n_local;
    MMS_CALL_GOTO(s, agree, mms_calloc((size_t)sh->n_local + 1, sizeof(int64_t), &sh->adj.indptr));
    MMS_CALL_GOTO(s, agree, mms_malloc((size_t)(nnz + 1) * sizeof(int64_t), &sh->adj.indices));
    for (int64_t i = 0; i < sh->n_local; i++) {
        int64_t b = sh->adj.indptr[i];
        if (i < nrows) {
            int64_t v = sh->gid[i];
            for (int64_t e = g->adj.indptr[v]; e < g->adj.indptr[v + 1]; e++) {
                int64_t l = mms_shard_local(sh, g->adj.indices[e]);
                MMS_CHECK_GOTO(s, agree, l >= 0, MMS_ERR_MISMATCH,
                               "partition halo is missing node %lld (neighbour of %lld): the "
                               "partition does not match the graph",
                               (long long)g->adj.indices[e], (long long)v);
                sh->adj.indices[b++] = l;
            }
        }
        sh->adj.indptr[i + 1] = b;
    }
    /* full rows of owned nodes (global ids) for the walks */
    nnz = 0;
    for (int64_t i = 0; i < sh->n_owned; i++) nnz += mms_csr_degree(&g->full, sh->gid[i]);
    sh->full.n = sh->n_owned;
    MMS_CALL_GOTO(s, agree, mms_calloc((size_t)sh->n_owned + 1, sizeof(int64_t), &sh->full.indptr));
    MMS_CALL_GOTO(s, agree, mms_malloc((size_t)(nnz + 1) * sizeof(int64_t), &sh->full.indices));
    for (int64_t i = 0; i < sh->n_owned; i++) {
        int64_t v = sh->gid[i], d = mms_csr_degree(&g->full, v);
        memcpy(sh->full.indices + sh->full.indptr[i], g->full.indices + g->full.indptr[v],
               (size_t)d * sizeof(int64_t));
        sh->full.indptr[i + 1] = sh->full.indptr[i] + d;
    }
    /* owned image rows from the graph's x.npy; halo rows from their owners */
    MMS_CALL_GOTO(s, agree, mms_calloc((size_t)sh->n_local * (size_t)sh->dim + 1, sizeof(float), &sh->x));
    for (int64_t i = 0; i < sh->n_owned; i++)
        if (sh->gid[i] < sh->n_images)
            memcpy(sh->x + i * sh->dim, g->x + sh->gid[i] * sh->dim, (size_t)sh->dim * sizeof(float));
agree:
    MMS_CALL_GOTO(s, fail, mms_mpi_agree(s, comm));
    MMS_CALL_GOTO(s, fail, mms_mpi_agree(exchange_halo(g, sh, comm), comm));
    mms_part_nodes_free(&pn);
    sh->load_seconds = mms_now() - t0;
    return MMS_OK;
fail:
    mms_part_nodes_free(&pn);
    mms_shard_free(sh);
    return s;
}
