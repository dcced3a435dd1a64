/* test_walks_mpi.c: random-walk pairs are identical at any rank count, follow
 * the reference semantics (partners are reachable in <= L-1 steps, never the
 * start), and the epoch permutation is a bijection. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "mms_log.h"
#include "mms_rng.h"
#include "mms_test.h"
#include "walks.h"

/* A random symmetric graph with a few isolated nodes. */
static void make_graph(int64_t n, mms_csr_t *g) {
    int64_t cap = n * 8, m = 0;
    int64_t *eu = malloc(cap * sizeof *eu), *ev = malloc(cap * sizeof *ev);
    for (int64_t u = 0; u < n; u++) {
        if (u % 17 == 5) continue; /* isolated */
        int d = 1 + (int)(mms_rng_hash(3, 1, (uint64_t)u, 0) % 3);
        for (int j = 0; j < d; j++) {
            int64_t v = (int64_t)(mms_rng_hash(3, 2, (uint64_t)u, (uint64_t)j) % (uint64_t)n);
            if (v == u || v % 17 == 5) continue;
            eu[m] = u; ev[m] = v; m++;
            eu[m] = v; ev[m] = u; m++;
        }
    }
    g->n = n;
    g->indptr = calloc((size_t)n + 1, sizeof(int64_t));
    g->indices = malloc((size_t)(m + 1) * sizeof(int64_t));
    g->weights = NULL;
    for (int64_t e = 0; e < m; e++) g->indptr[eu[e] + 1]++;
    for (int64_t v = 0; v < n; v++) g->indptr[v + 1] += g->indptr[v];
    int64_t *fill = calloc((size_t)n, sizeof *fill);
    for (int64_t e = 0; e < m; e++) g->indices[g->indptr[eu[e]] + fill[eu[e]]++] = ev[e];
    free(fill);
    free(eu);
    free(ev);
}

/* Rows of g for the given owned nodes. */
static void restrict_rows(const mms_csr_t *g, const int64_t *owned, int64_t no, mms_csr_t *out) {
    out->n = no;
    out->indptr = calloc((size_t)no + 1, sizeof(int64_t));
    for (int64_t i = 0; i < no; i++) out->indptr[i + 1] = out->indptr[i] + mms_csr_degree(g, owned[i]);
    out->indices = malloc((size_t)(out->indptr[no] + 1) * sizeof(int64_t));
    out->weights = NULL;
    for (int64_t i = 0; i < no; i++)
        memcpy(out->indices + out->indptr[i], g->indices + g->indptr[owned[i]],
               (size_t)mms_csr_degree(g, owned[i]) * sizeof(int64_t));
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, nranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    mms_log_init(rank, nranks, MMS_LOG_WARN);
    const int64_t n = 600;
    mms_csr_t g;
    make_graph(n, &g);
    mms_walk_params_t wp = {.walks = 7, .length = 5, .seed = 11};
    int per = wp.walks * (wp.length - 1);

    /* distributed: a deliberately scattered partition */
    int32_t *part = malloc(n * sizeof *part);
    for (int64_t v = 0; v < n; v++) part[v] = (int32_t)(mms_rng_hash(5, 9, (uint64_t)v, 0) % (uint64_t)nranks);
    int64_t *owned = malloc(n * sizeof *owned), no = 0;
    for (int64_t v = 0; v < n; v++)
        if (part[v] == rank) owned[no++] = v;
    mms_csr_t loc;
    restrict_rows(&g, owned, no, &loc);
    mms_walk_pairs_t wpairs;
    T_OK(mms_walks_generate(&wp, n, part, owned, no, &loc, MPI_COMM_WORLD, &wpairs));

    /* scatter into global order and collect on rank 0 */
    int64_t *mine = malloc((size_t)n * per * sizeof(int64_t)), *all = malloc((size_t)n * per * sizeof(int64_t));
    for (int64_t i = 0; i < n * per; i++) mine[i] = -3; /* "not mine" */
    for (int64_t i = 0; i < no; i++)
        memcpy(mine + owned[i] * per, wpairs.partner + i * per, (size_t)per * sizeof(int64_t));
    MPI_Reduce(mine, all, (int)(n * per), MPI_INT64_T, MPI_MAX, 0, MPI_COMM_WORLD);

    if (rank == 0) {
        /* reference: one rank owning everything */
        int32_t *p0 = calloc((size_t)n, sizeof *p0);
        int64_t *own0 = malloc(n * sizeof *own0);
        for (int64_t v = 0; v < n; v++) own0[v] = v;
        mms_walk_pairs_t ref;
        T_OK(mms_walks_generate(&wp, n, p0, own0, n, &g, MPI_COMM_SELF, &ref));
        int diff = 0;
        for (int64_t i = 0; i < n * per; i++) diff += all[i] != ref.partner[i];
        T_EQ_INT(diff, 0);
        T_EQ_INT(ref.valid_total, wpairs.valid_total);
        /* semantics: isolated nodes have no pairs; partners are never the start
         * and lie within 4 hops (checked by BFS); valid count is plausible */
        int bad = 0;
        int64_t *dist = malloc(n * sizeof *dist), *queue = malloc(n * sizeof *queue);
        for (int64_t s = 0; s < n; s++) {
            for (int64_t v = 0; v < n; v++) dist[v] = -1;
            int64_t qh = 0, qt = 0;
            dist[s] = 0;
            queue[qt++] = s;
            while (qh < qt) {
                int64_t u = queue[qh++];
                if (dist[u] >= 4) continue;
                for (int64_t e = g.indptr[u]; e < g.indptr[u + 1]; e++)
                    if (dist[g.indices[e]] < 0) {
                        dist[g.indices[e]] = dist[u] + 1;
                        queue[qt++] = g.indices[e];
                    }
            }
            for (int j = 0; j < per; j++) {
                int64_t v = ref.partner[s * per + j];
                if (v < 0) continue;
                if (v == s || dist[v] < 1 || dist[v] > 4) bad++;
                /* the first step of each walk is a direct neighbour */
                if (j % (wp.length - 1) == 0 && dist[v] != 1) bad++;
            }
            if (s % 17 == 5)
                for (int j = 0; j < per; j++) bad += ref.partner[s * per + j] != -1;
        }
        T_EQ_INT(bad, 0);
        T_CHECK(ref.valid_total > n * per / 3);
        mms_walk_pairs_free(&ref);
        free(dist);
        free(queue);
        free(p0);
        free(own0);
        /* permutation: bijection for several sizes, and epoch changes the order */
        uint64_t sizes[] = {1, 2, 3, 1000, 4097};
        for (int k = 0; k < 5; k++) {
            mms_perm_t pm;
            mms_perm_init(&pm, sizes[k], 9, 0);
            char *seen = calloc(sizes[k], 1);
            int dup = 0;
            for (uint64_t x = 0; x < sizes[k]; x++) {
                uint64_t y = mms_perm_apply(&pm, x);
                if (y >= sizes[k] || seen[y]) dup++;
                else seen[y] = 1;
            }
            T_EQ_INT(dup, 0);
            free(seen);
        }
        mms_perm_t a, b;
        mms_perm_init(&a, 1000, 9, 0);
        mms_perm_init(&b, 1000, 9, 1);
        int same = 0;
        for (uint64_t x = 0; x < 1000; x++) same += mms_perm_apply(&a, x) == mms_perm_apply(&b, x);
        T_CHECK(same < 20);
    }
    mms_walk_pairs_free(&wpairs);
    int fails = mms_test_failures, total = 0;
    MPI_Allreduce(&fails, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    mms_test_failures = total;
    int rc = mms_test_finish("test_walks_mpi");
    mms_csr_free(&g);
    mms_csr_free(&loc);
    free(part); free(owned); free(mine); free(all);
    MPI_Finalize();
    return rc;
}
