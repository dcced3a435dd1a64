/* shard.c: loading one rank's shard and the halo feature exchange (see shard.h). */
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

/* Halo exchange: every rank asks the owners for the image rows it lacks. */
static mms_status exchange_halo(const mms_graph_t *g, mms_shard_t *sh, MPI_Comm comm) {
    int P = sh->nranks;
    int *qcount = NULL, *qdispl = NULL, *rcount = NULL, *rdispl = NULL;
    int64_t *want = NULL, *asked = NULL, *fill = NULL;
    float *sendrows = NULL, *recvrows = NULL;
    mms_status s = MMS_OK;
    const int64_t D = sh->dim;
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)P, sizeof(int), &qcount));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)P, sizeof(int), &qdispl));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)P, sizeof(int), &rcount));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)P, sizeof(int), &rdispl));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)P, sizeof(int64_t), &fill));
    int64_t nh = sh->n_halo1 + sh->n_halo2, nwant = 0;
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(nh + 1) * sizeof *want, &want));
    /* halo image nodes grouped by owner; local order within a group is kept */
    for (int64_t i = sh->n_owned; i < sh->n_local; i++)
        if (sh->gid[i] < sh->n_images) qcount[sh->part[sh->gid[i]]]++;
    for (int r = 1; r < P; r++) qdispl[r] = qdispl[r - 1] + qcount[r - 1];
    int64_t *wl = NULL; /* local index of each wanted row, same order */
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(nh + 1) * sizeof *wl, &wl));
    for (int64_t i = sh->n_owned; i < sh->n_local; i++) {
        int64_t v = sh->gid[i];
        if (v >= sh->n_images) continue;
        int r = sh->part[v];
        want[qdispl[r] + fill[r]] = v;
        wl[qdispl[r] + fill[r]] = i;
        fill[r]++;
        nwant++;
    }
    if (MPI_Alltoall(qcount, 1, MPI_INT, rcount, 1, MPI_INT, comm) != MPI_SUCCESS) {
        s = MMS_ERR_MPI;
        free(wl);
        goto out;
    }
    int64_t nasked = 0;
    for (int r = 0; r < P; r++) {
        rdispl[r] = (int)nasked;
        nasked += rcount[r];
    }
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(nasked + 1) * sizeof *asked, &asked));
    if (MPI_Alltoallv(want, qcount, qdispl, MPI_INT64_T, asked, rcount, rdispl, MPI_INT64_T, comm) !=
        MPI_SUCCESS) {
        s = MMS_ERR_MPI;
        free(wl);
        goto out;
    }
    /* answer with the rows (each is an owned image node here) */
    MMS_CHECK_GOTO(s, out, nasked * D < 2147483647LL && nwant * D < 2147483647LL, MMS_ERR_ARG,
                   "halo exchange of %lld rows x %lld floats exceeds one MPI message; use more ranks",
                   (long long)(nasked > nwant ? nasked : nwant), (long long)D);
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(nasked * D + 1) * sizeof(float), &sendrows));
    for (int64_t i = 0; i < nasked; i++) {
        int64_t v = asked[i];
        MMS_CHECK_GOTO(s, out, v >= 0 && v < sh->n_images && sh->part[v] == sh->rank,
                       MMS_ERR_INTERNAL, "halo request for node %lld not owned by rank %d",
                       (long long)v, sh->rank);
        memcpy(sendrows + i * D, g->x + v * D, (size_t)D * sizeof(float));
    }
    int *scnt = NULL, *sdsp = NULL, *rcnt = NULL, *rdsp = NULL;
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)P * 4 * sizeof(int), &scnt));
    sdsp = scnt + P;
    rcnt = scnt + 2 * P;
    rdsp = scnt + 3 * P;
    for (int r = 0; r < P; r++) {
        scnt[r] = rcount[r] * (int)D;
        sdsp[r] = rdispl[r] * (int)D;
        rcnt[r] = qcount[r] * (int)D;
        rdsp[r] = qdispl[r] * (int)D;
    }
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(nwant * D + 1) * sizeof(float), &recvrows));
    if (MPI_Alltoallv(sendrows, scnt, sdsp, MPI_FLOAT, recvrows, rcnt, rdsp, MPI_FLOAT, comm) !=
        MPI_SUCCESS)
        s = MMS_ERR_MPI;
    free(scnt);
    if (s == MMS_OK)
        for (int64_t i = 0; i < nwant; i++)
            memcpy(sh->x + wl[i] * D, recvrows + i * D, (size_t)D * sizeof(float));
    sh->halo_bytes_in = nwant * D * (int64_t)sizeof(float);
    sh->halo_bytes_out = nasked * D * (int64_t)sizeof(float);
    free(wl);
out:
    free(qcount);
    free(qdispl);
    free(rcount);
    free(rdispl);
    free(fill);
    free(want);
    free(asked);
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
