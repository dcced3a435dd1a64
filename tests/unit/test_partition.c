/* test_partition.c: METIS k-way partition and halos (partition/metis_part.h).
 *
 * Invariants, not golden partitions (as METIS's own tests): every node in one
 * part, the edge cut recounted by brute force equals the reported one, balance
 * within the tolerance, halos equal a brute-force 1-/2-hop closure on a small
 * random graph, METIS cuts less than hash on a clustered graph, P = 1, bad P,
 * a mismatched or missing partition, and determinism for a fixed seed. Also
 * that mms_graph_open maps the CSR arrays read-only instead of copying them,
 * and leaves none of their pages resident after its checks (docs/scaling.md).
 *
 * With "--write-graph DIR [IMAGES CLUSTERS DIM]" it only writes a clustered
 * graph directory (330 nodes by default) for tests/cli/partition.sh and for the
 * figures of docs/partition.md, while `mmsage build` does not exist yet.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metis_part.h"
#include "part_dir.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_manifest.h"
#include "mms_npy.h"
#include "mms_rng.h"
#include "mms_test.h"

/* ------------------------------------------------------------ test graphs */

/* A directed edge list grown on the fly. */
typedef struct {
    int64_t *u, *v;
    int64_t n, cap;
} edges_t;

static void add_edge(edges_t *e, int64_t u, int64_t v) {
    if (e->n == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 1024;
        e->u = realloc(e->u, (size_t)e->cap * sizeof *e->u);
        e->v = realloc(e->v, (size_t)e->cap * sizeof *e->v);
        if (!e->u || !e->v) abort(); /* test code: out of memory is fatal */
    }
    e->u[e->n] = u;
    e->v[e->n] = v;
    e->n++;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* CSR of the edge list (rows sorted; duplicates kept when keep_dups). */
static void csr_from_edges(int64_t n, const edges_t *e, int keep_dups, mms_csr_t *g) {
    memset(g, 0, sizeof *g);
    g->n = n;
    g->indptr = calloc((size_t)n + 1, sizeof *g->indptr);
    g->indices = malloc((size_t)(e->n + 1) * sizeof *g->indices);
    for (int64_t i = 0; i < e->n; i++) g->indptr[e->u[i] + 1]++;
    for (int64_t v = 0; v < n; v++) g->indptr[v + 1] += g->indptr[v];
    int64_t *fill = malloc((size_t)(n + 1) * sizeof *fill);
    memcpy(fill, g->indptr, (size_t)n * sizeof *fill);
    for (int64_t i = 0; i < e->n; i++) g->indices[fill[e->u[i]]++] = e->v[i];
    free(fill);
    int64_t w = 0;
    for (int64_t v = 0; v < n; v++) {
        int64_t a = g->indptr[v], b = g->indptr[v + 1];
        qsort(g->indices + a, (size_t)(b - a), sizeof *g->indices, cmp_i64);
        g->indptr[v] = w;
        for (int64_t i = a; i < b; i++)
            if (keep_dups || i == a || g->indices[i] != g->indices[i - 1])
                g->indices[w++] = g->indices[i];
    }
    g->indptr[n] = w;
}

/* Clustered multi-modal graph: n_img images in C clusters (image i in cluster
 * i % C), n_tag tags (tag t in cluster t % C). Each image links to 5 images, 90 %
 * in its own cluster, and to 1-2 tags, 85 % of its cluster; a few self loops.
 * full is symmetric; adj keeps the first `cap` of each row (not symmetric). */
static void make_graph(int64_t n_img, int64_t n_tag, int C, uint64_t seed, int cap,
                       mms_csr_t *full, mms_csr_t *adj) {
    mms_rng_t r;
    mms_rng_init(&r, seed, MMS_STREAM_SYNTH, 0);
    edges_t e = {0};
    int64_t per_c = n_img / C, tags_c = n_tag / C;
    for (int64_t i = 0; i < n_img; i++) {
        int64_t c = i % C;
        for (int k = 0; k < 5; k++) {
            int64_t j = mms_rng_uniform(&r) < 0.9
                            ? c + C * (int64_t)mms_rng_below64(&r, (uint64_t)per_c)
                            : (int64_t)mms_rng_below64(&r, (uint64_t)n_img);
            if (j == i) continue;
            add_edge(&e, i, j);
            add_edge(&e, j, i);
        }
        int nt = 1 + (int)mms_rng_below(&r, 2);
        for (int k = 0; k < nt; k++) {
            int64_t t = mms_rng_uniform(&r) < 0.85
                            ? c + C * (int64_t)mms_rng_below64(&r, (uint64_t)tags_c)
                            : (int64_t)mms_rng_below64(&r, (uint64_t)n_tag);
            add_edge(&e, i, n_img + t);
            add_edge(&e, n_img + t, i);
        }
        if (i % 97 == 3) add_edge(&e, i, i); /* self loop: METIS must not see it */
    }
    int64_t n = n_img + n_tag;
    csr_from_edges(n, &e, 0, full);
    full->weights = malloc((size_t)(full->indptr[n] + 1) * sizeof *full->weights);
    for (int64_t k = 0; k < full->indptr[n]; k++) full->weights[k] = 1.0f;
    edges_t a = {0};
    for (int64_t v = 0; v < n; v++) {
        int kept = 0;
        for (int64_t k = full->indptr[v]; k < full->indptr[v + 1] && kept < cap; k++) {
            if (full->indices[k] == v) continue;
            add_edge(&a, v, full->indices[k]);
            kept++;
        }
    }
    csr_from_edges(n, &a, 1, adj);
    free(e.u);
    free(e.v);
    free(a.u);
    free(a.v);
}

static mms_status write_graph_dir(const char *dir, int64_t n_img, int64_t n_tag, int dim,
                                  const mms_csr_t *full, const mms_csr_t *adj, uint64_t checksum) {
    char p[MMS_PATH_MAX];
    int64_t n = n_img + n_tag;
    MMS_CALL(mms_mkdir_p(dir));
    mms_manifest_t *m;
    MMS_CALL(mms_manifest_create("graph", MMS_GRAPH_FORMAT, &m));
    mms_manifest_set_int(m, "images", n_img);
    mms_manifest_set_int(m, "tags", n_tag);
    mms_manifest_set_int(m, "dim", dim);
    mms_manifest_set_uint(m, "catalog_checksum", 0x1234u);
    mms_manifest_set_uint(m, "checksum", checksum);
    mms_status s = mms_manifest_write_dir(m, dir);
    mms_manifest_destroy(&m);
    MMS_CALL(s);
#define W(name, t, data, rows, cols)                                                   \
    do {                                                                               \
        MMS_CALL(mms_path_join(p, sizeof p, dir, name));                               \
        MMS_CALL(mms_npy_write(p, t, data, (size_t)(rows), (size_t)(cols)));           \
    } while (0)
    W("indptr.npy", MMS_DT_I64, full->indptr, n + 1, 0);
    W("indices.npy", MMS_DT_I64, full->indices, full->indptr[n], 0);
    W("weights.npy", MMS_DT_F32, full->weights, full->indptr[n], 0);
    W("adj_indptr.npy", MMS_DT_I64, adj->indptr, n + 1, 0);
    W("adj_indices.npy", MMS_DT_I64, adj->indices, adj->indptr[n], 0);
    float *x = calloc((size_t)(n_img * dim + 1), sizeof *x);
    int64_t *rows = malloc((size_t)(n_img + 1) * sizeof *rows);
    for (int64_t i = 0; i < n_img; i++) rows[i] = i;
    for (int64_t i = 0; i < n_img * dim; i++) x[i] = (float)(i % 7) * 0.25f;
    mms_status s2 = MMS_OK;
    if (mms_path_join(p, sizeof p, dir, "x.npy") == MMS_OK)
        s2 = mms_npy_write(p, MMS_DT_F32, x, (size_t)n_img, (size_t)dim);
    if (s2 == MMS_OK && mms_path_join(p, sizeof p, dir, "image_rows.npy") == MMS_OK)
        s2 = mms_npy_write(p, MMS_DT_I64, rows, (size_t)n_img, 0);
    free(x);
    free(rows);
    MMS_CALL(s2);
#undef W
    MMS_CALL(mms_path_join(p, sizeof p, dir, "tags.tsv"));
    FILE *f;
    MMS_CALL(mms_fopen(p, "w", &f));
    for (int64_t t = 0; t < n_tag; t++)
        fprintf(f, "tag%lld\t%lld\n", (long long)t, (long long)mms_csr_degree(full, n_img + t));
    MMS_CALL(mms_fclose(&f, p));
    return MMS_OK;
}

/* ------------------------------------------------------------ brute force */

/* Undirected edges {u, v}, u != v, across parts, counted once: from a dense
 * matrix so duplicates and self loops cannot matter. */
static int64_t brute_cut(const mms_csr_t *g, const int32_t *part) {
    int64_t n = g->n, cut = 0;
    unsigned char *m = calloc((size_t)(n * n), 1);
    for (int64_t v = 0; v < n; v++)
        for (int64_t k = g->indptr[v]; k < g->indptr[v + 1]; k++) m[v * n + g->indices[k]] = 1;
    for (int64_t u = 0; u < n; u++)
        for (int64_t v = u + 1; v < n; v++)
            if ((m[u * n + v] || m[v * n + u]) && part[u] != part[v]) cut++;
    free(m);
    return cut;
}

/* Halos of part p by definition, from a dense directed adjacency matrix: level[v]
 * 0 owned, 1 halo1, 2 halo2, -1 other. */
static void brute_halo(const mms_csr_t *adj, const int32_t *part, int p, int *level) {
    int64_t n = adj->n;
    unsigned char *m = calloc((size_t)(n * n), 1);
    for (int64_t v = 0; v < n; v++)
        for (int64_t k = adj->indptr[v]; k < adj->indptr[v + 1]; k++)
            m[v * n + adj->indices[k]] = 1;
    for (int64_t v = 0; v < n; v++) level[v] = part[v] == p ? 0 : -1;
    for (int lev = 1; lev <= 2; lev++)
        for (int64_t w = 0; w < n; w++) {
            if (level[w] != -1) continue;
            for (int64_t u = 0; u < n; u++)
                if (level[u] == lev - 1 && (lev == 1 || part[u] != p) && m[u * n + w]) {
                    level[w] = lev;
                    break;
                }
        }
    free(m);
}

/* The list [a, na) equals { v : level[v] == lev } in ascending order. */
static int same_set(const int64_t *a, int64_t na, const int *level, int64_t n, int lev) {
    int64_t k = 0;
    for (int64_t v = 0; v < n; v++) {
        if (level[v] != lev) continue;
        if (k >= na || a[k] != v) return 0;
        k++;
    }
    return k == na;
}

static double max_balance_slack(const int32_t *vwgt, int64_t n, int parts) {
    int64_t total = 0, mx = 0;
    for (int64_t v = 0; v < n; v++) {
        total += vwgt[v];
        mx = vwgt[v] > mx ? vwgt[v] : mx;
    }
    /* one node more than the tolerance allows, as METIS cannot split a node */
    return (double)mx * parts / (double)total;
}

/* ------------------------------------------------------------ tests */

static void test_clean(void) {
    /* 0-1 (twice), 1-2, self loop on 2 */
    edges_t e = {0};
    add_edge(&e, 0, 1), add_edge(&e, 1, 0), add_edge(&e, 0, 1), add_edge(&e, 1, 0);
    add_edge(&e, 1, 2), add_edge(&e, 2, 1), add_edge(&e, 2, 2);
    mms_csr_t g, c;
    csr_from_edges(3, &e, 1, &g);
    int64_t loops = -1, dups = -1;
    T_OK(mms_part_clean(&g, &c, &loops, &dups));
    T_EQ_INT(loops, 1);
    T_EQ_INT(dups, 2);
    T_EQ_INT(c.indptr[3], 4);
    T_EQ_INT(c.indices[0], 1);
    T_EQ_INT(c.indices[1], 0);
    T_EQ_INT(c.indices[2], 2);
    T_EQ_INT(c.indices[3], 1);
    mms_csr_free(&c);
    mms_csr_free(&g);
    /* one-way edge 2 -> 0 */
    add_edge(&e, 2, 0);
    csr_from_edges(3, &e, 1, &g);
    T_FAILS(mms_part_clean(&g, &c, NULL, NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("not symmetric");
    T_MSG_HAS("2 -> 0");
    mms_csr_free(&g);
    free(e.u);
    free(e.v);
}

static void test_metis_invariants(void) {
    mms_csr_t full, adj, clean;
    const int64_t ni = 400, nt = 40;
    make_graph(ni, nt, 4, 7, 5, &full, &adj);
    int64_t n = ni + nt, total;
    T_OK(mms_part_clean(&full, &clean, NULL, NULL));
    int32_t *vwgt = malloc((size_t)n * sizeof *vwgt), *part = malloc((size_t)n * sizeof *part),
            *hpart = malloc((size_t)n * sizeof *hpart), *again = malloc((size_t)n * sizeof *again);
    mms_part_node_weights(&adj, MMS_PART_WEIGHT_CAP, vwgt, &total);
    T_EQ_INT(vwgt[0], 1 + mms_csr_degree(&adj, 0));
    const int ps[] = {2, 3, 4, 7};
    const double imb = 1.05;
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        int P = ps[i];
        int64_t cut = -1, wt[16];
        double bal;
        T_OK(mms_part_metis(&clean, vwgt, P, imb, 42, part, &cut));
        int in_range = 1;
        for (int64_t v = 0; v < n; v++) in_range &= part[v] >= 0 && part[v] < P;
        T_CHECK(in_range);
        T_EQ_INT(brute_cut(&full, part), cut);
        T_EQ_INT(mms_part_edge_cut(&clean, part), cut);
        T_OK(mms_part_weights(n, part, P, vwgt, wt, &bal));
        double slack = max_balance_slack(vwgt, n, P);
        if (bal > imb + slack) fprintf(stderr, "P=%d balance %.3f > %.3f\n", P, bal, imb + slack);
        T_CHECK(bal <= imb + slack);
        mms_part_hash(n, P, 42, hpart);
        int64_t hcut = brute_cut(&full, hpart);
        fprintf(stderr, "P=%d: metis cut %lld balance %.3f, hash cut %lld\n", P, (long long)cut,
                bal, (long long)hcut);
        T_CHECK(cut <= hcut);
        /* determinism: same seed, same options, same part[] */
        int64_t cut2;
        T_OK(mms_part_metis(&clean, vwgt, P, imb, 42, again, &cut2));
        T_CHECK(!memcmp(part, again, (size_t)n * sizeof *part));
        T_EQ_INT(cut2, cut);
    }
    /* P = 1: no METIS, everything in part 0 */
    int64_t cut = -1;
    T_OK(mms_part_metis(&clean, vwgt, 1, imb, 1, part, &cut));
    T_EQ_INT(cut, 0);
    int zero = 1;
    for (int64_t v = 0; v < n; v++) zero &= part[v] == 0;
    T_CHECK(zero);
    /* no edges at all, and as many parts as nodes: METIS must still answer */
    mms_csr_t empty = {0};
    empty.n = 10;
    empty.indptr = calloc(11, sizeof *empty.indptr);
    empty.indices = calloc(1, sizeof *empty.indices);
    for (int P = 3; P <= 10; P += 7) {
        T_OK(mms_part_metis(&empty, NULL, P, imb, 1, part, &cut));
        T_EQ_INT(cut, 0);
        int ok = 1;
        for (int64_t v = 0; v < 10; v++) ok &= part[v] >= 0 && part[v] < P;
        T_CHECK(ok);
    }
    mms_csr_free(&empty);
    /* bad arguments */
    T_FAILS(mms_part_metis(&clean, vwgt, 0, imb, 1, part, &cut), MMS_ERR_ARG);
    T_FAILS(mms_part_metis(&clean, vwgt, 2, 0.5, 1, part, &cut), MMS_ERR_ARG);
    T_FAILS(mms_part_metis(&clean, vwgt, 2, imb, (uint64_t)1 << 40, part, &cut), MMS_ERR_ARG);
    int64_t wt[2];
    double bal;
    part[5] = 9;
    T_FAILS(mms_part_weights(n, part, 2, vwgt, wt, &bal), MMS_ERR_ARG);
    free(vwgt);
    free(part);
    free(hpart);
    free(again);
    mms_csr_free(&clean);
    mms_csr_free(&full);
    mms_csr_free(&adj);
}

static void test_halos(void) {
    mms_csr_t full, adj, clean;
    const int64_t ni = 120, nt = 12;
    make_graph(ni, nt, 3, 11, 3, &full, &adj);
    int64_t n = ni + nt;
    T_OK(mms_part_clean(&full, &clean, NULL, NULL));
    int32_t *part = malloc((size_t)n * sizeof *part);
    int *level = malloc((size_t)n * sizeof *level);
    for (int method = 0; method < 2; method++)
        for (int P = 1; P <= 4; P += 3) {
            if (method == 0) {
                int64_t cut;
                T_OK(mms_part_metis(&clean, NULL, P, 1.05, 3, part, &cut));
            } else {
                mms_part_hash(n, P, 3, part);
            }
            mms_halo_builder_t *hb;
            T_OK(mms_halo_builder_create(&adj, part, P, &hb));
            /* out of order on purpose: the marks must not leak between calls */
            for (int k = P - 1; k >= 0; k--) {
                mms_part_nodes_t pn;
                T_OK(mms_halo_builder_part(hb, k, &pn));
                brute_halo(&adj, part, k, level);
                T_CHECK(same_set(pn.owned, pn.n_owned, level, n, 0));
                T_CHECK(same_set(pn.halo1, pn.n_halo1, level, n, 1));
                T_CHECK(same_set(pn.halo2, pn.n_halo2, level, n, 2));
                if (P == 1) T_EQ_INT(pn.n_halo1 + pn.n_halo2, 0);
                mms_part_nodes_free(&pn);
            }
            mms_part_nodes_t pn;
            T_FAILS(mms_halo_builder_part(hb, P, &pn), MMS_ERR_ARG);
            mms_halo_builder_destroy(&hb);
            T_CHECK(hb == NULL);
        }
    part[0] = -1;
    mms_halo_builder_t *hb;
    T_FAILS(mms_halo_builder_create(&adj, part, 4, &hb), MMS_ERR_ARG);
    free(part);
    free(level);
    mms_csr_free(&clean);
    mms_csr_free(&full);
    mms_csr_free(&adj);
}

/* n_img images, n_img / 10 tags, C clusters, adj capped at 4 (unit tests) or
 * MMS_GRAPH_DEGREE_CAP (larger graphs from --write-graph). */
static mms_status write_sized_graph(const char *dir, int64_t n_img, int C, int dim,
                                    uint64_t checksum) {
    mms_csr_t full, adj;
    int64_t n_tag = n_img / 10 > C ? n_img / 10 : C;
    make_graph(n_img, n_tag, C, 5, n_img > 1000 ? MMS_GRAPH_DEGREE_CAP : 4, &full, &adj);
    mms_status s = write_graph_dir(dir, n_img, n_tag, dim, &full, &adj, checksum);
    mms_csr_free(&full);
    mms_csr_free(&adj);
    return s;
}

static mms_status write_test_graph(const char *dir, uint64_t checksum) {
    return write_sized_graph(dir, 300, 3, 8, checksum);
}

static void test_directory(void) {
    const char *tmp = mms_test_tmpdir("partition");
    char g[MMS_PATH_MAX], pdir[MMS_PATH_MAX], p[MMS_PATH_MAX];
    snprintf(g, sizeof g, "%s/graph", tmp);
    T_OK(write_test_graph(g, 0xabcdefu));
    mms_graph_t *graph;
    T_OK(mms_graph_open(g, &graph));
    if (!graph) return;

    mms_part_opts_t o;
    mms_part_opts_default(&o);
    o.parts = 4;
    mms_part_stats_t st, other;
    T_OK(mms_partition_write(g, &o, &st, &other));
    T_EQ_INT(st.method, MMS_PART_METIS);
    T_EQ_INT(other.method, MMS_PART_HASH);
    T_EQ_INT(other.parts, 4);
    T_CHECK(st.edge_cut <= other.edge_cut);
    T_OK(mms_partition_path(g, 4, pdir, sizeof pdir));
    T_CHECK(mms_path_is_dir(pdir));

    mms_partition_t *pt = NULL;
    T_OK(mms_partition_open(g, 4, &pt));
    if (pt) {
        int64_t n = graph->n_nodes;
        T_EQ_INT(pt->n_nodes, n);
        T_EQ_INT(pt->dim, 8);
        T_EQ_INT(pt->edge_cut, st.edge_cut);
        T_EQ_INT(brute_cut(&graph->full, pt->part), pt->edge_cut);
        int *seen = calloc((size_t)n, sizeof *seen), *level = malloc((size_t)n * sizeof *level);
        for (int k = 0; k < 4; k++) {
            mms_part_nodes_t pn;
            T_OK(mms_partition_load_part(pt, k, &pn));
            T_EQ_INT(pn.n_owned, st.owned[k]);
            T_EQ_INT(pn.n_halo1, st.halo1[k]);
            T_EQ_INT(pn.n_halo2, st.halo2[k]);
            for (int64_t i = 0; i < pn.n_owned; i++) seen[pn.owned[i]]++;
            brute_halo(&graph->adj, pt->part, k, level);
            T_CHECK(same_set(pn.owned, pn.n_owned, level, n, 0));
            T_CHECK(same_set(pn.halo1, pn.n_halo1, level, n, 1));
            T_CHECK(same_set(pn.halo2, pn.n_halo2, level, n, 2));
            mms_part_nodes_free(&pn);
        }
        int once = 1;
        for (int64_t v = 0; v < n; v++) once &= seen[v] == 1;
        T_CHECK(once); /* every node owned by exactly one part */
        /* balance within tolerance, from the files */
        int32_t *vwgt = malloc((size_t)n * sizeof *vwgt);
        int64_t wt[4];
        double bal;
        mms_part_node_weights(&graph->adj, MMS_PART_WEIGHT_CAP, vwgt, NULL);
        T_OK(mms_part_weights(n, pt->part, 4, vwgt, wt, &bal));
        T_NEAR(bal, pt->balance, 1e-12);
        T_CHECK(bal <= o.imbalance + max_balance_slack(vwgt, n, 4));
        mms_part_nodes_t pn;
        T_FAILS(mms_partition_load_part(pt, 4, &pn), MMS_ERR_ARG);
        free(vwgt);
        free(seen);
        free(level);
    }
    mms_partition_close(&pt);
    T_CHECK(pt == NULL);

    /* same seed again (with --force): the same part.npy, byte for byte */
    char *first = NULL, *second = NULL;
    size_t len1 = 0, len2 = 0;
    T_OK(mms_path_join(p, sizeof p, pdir, "part.npy"));
    T_OK(mms_read_file(p, &first, &len1));
    mms_part_stats_free(&st);
    mms_part_stats_free(&other);
    T_FAILS(mms_partition_write(g, &o, &st, &other), MMS_ERR_EXISTS);
    T_MSG_HAS("--force");
    o.force = 1;
    T_OK(mms_partition_write(g, &o, &st, &other));
    T_OK(mms_read_file(p, &second, &len2));
    T_CHECK(first && second && len1 == len2 && !memcmp(first, second, len1));
    free(first);
    free(second);
    mms_part_stats_free(&st);
    mms_part_stats_free(&other);

    /* bad P */
    o.parts = 0;
    T_FAILS(mms_partition_write(g, &o, &st, &other), MMS_ERR_ARG);
    T_MSG_HAS("at least 1");
    o.parts = 301;
    T_FAILS(mms_partition_write(g, &o, &st, &other), MMS_ERR_ARG);
    T_MSG_HAS("300 image nodes");
    char p301[MMS_PATH_MAX];
    T_OK(mms_partition_path(g, 301, p301, sizeof p301));
    T_CHECK(!mms_path_exists(p301));

    /* P = 1 and the hash method; no comparison asked */
    o.parts = 1;
    o.method = MMS_PART_HASH;
    o.compare = 0;
    T_OK(mms_partition_write(g, &o, &st, &other));
    T_EQ_INT(other.parts, 0);
    T_EQ_INT(st.edge_cut, 0);
    T_EQ_INT(st.halo1[0] + st.halo2[0], 0);
    T_NEAR(st.balance, 1.0, 1e-12);
    mms_part_stats_free(&st);
    T_OK(mms_partition_open(g, 1, &pt));
    if (pt) {
        T_EQ_INT(pt->method, MMS_PART_HASH);
        mms_part_nodes_t pn;
        T_OK(mms_partition_load_part(pt, 0, &pn));
        T_EQ_INT(pn.n_owned, graph->n_nodes);
        T_EQ_INT(pn.n_halo1 + pn.n_halo2, 0);
        mms_part_nodes_free(&pn);
    }
    mms_partition_close(&pt);

    /* a partition that does not exist */
    T_FAILS(mms_partition_open(g, 5, &pt), MMS_ERR_MISMATCH);
    T_MSG_HAS("has no partition into 5 parts (one per rank): it has parts 1, 4; run under mpirun -np N");
    /* not a graph directory */
    o.parts = 2;
    T_FAILS(mms_partition_write(tmp, &o, &st, &other), MMS_ERR_FORMAT);
    T_MSG_HAS("not an mmsage graph directory");
    char nowhere[MMS_PATH_MAX];
    snprintf(nowhere, sizeof nowhere, "%s/missing", tmp);
    T_CHECK(mms_partition_write(nowhere, &o, &st, &other) != MMS_OK);
    /* the graph was rebuilt: the partition belongs to another graph */
    mms_graph_close(&graph);
    T_OK(write_test_graph(g, 0x999u));
    T_FAILS(mms_partition_open(g, 4, &pt), MMS_ERR_MISMATCH);
    T_MSG_HAS("was made for another graph");
    mms_rm_rf(tmp);
}

/* ----------------------------------------------- the graph's CSR is mapped */

/* The /proc/self/smaps entry holding address a: its path (into path) and its
 * resident kB; -1 if a is in no file mapping. */
static long mapping_of(const void *a, char *path, size_t cap) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[4096];
    int in = 0;
    long rss = -1;
    path[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char file[4096] = "";
        /* a mapping's header line ("lo-hi perms offset dev inode [path]"); the
         * field lines ("Rss:   12 kB") never parse as two hex numbers and a dash */
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %4095s", &lo, &hi, file) >= 2) {
            in = (uintptr_t)a >= lo && (uintptr_t)a < hi;
            if (in) snprintf(path, cap, "%s", file);
            continue;
        }
        if (in && sscanf(line, "Rss: %ld kB", &rss) == 1) break;
    }
    fclose(f);
    return path[0] ? rss : -1;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static void test_graph_mapped(void) {
    const char *tmp = mms_test_tmpdir("graph_mapped");
    char g[MMS_PATH_MAX], p[MMS_PATH_MAX], path[4096];
    snprintf(g, sizeof g, "%s/graph", tmp);
    T_OK(write_sized_graph(g, 8000, 8, 8, 0x3a9u));
    mms_graph_t *graph = NULL;
    T_OK(mms_graph_open(g, &graph));
    if (!graph) return;
    const struct {
        const void *ptr;
        const char *file;
    } arrays[] = {
        {graph->full.indptr, "/indptr.npy"},   {graph->full.indices, "/indices.npy"},
        {graph->full.weights, "/weights.npy"}, {graph->adj.indptr, "/adj_indptr.npy"},
        {graph->adj.indices, "/adj_indices.npy"},
    };
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        long rss = mapping_of(arrays[i].ptr, path, sizeof path);
        if (!ends_with(path, arrays[i].file)) {
            fprintf(stderr, "graph_mapped: the array of %s is not a mapping of that file (%s)\n",
                    arrays[i].file + 1, path[0] ? path : "anonymous memory: a copy");
            T_CHECK(0);
        }
        /* the checks read every entry; their pages must not stay in this rank's
         * RSS (64 kB: the kernel's fault-around when the header is read) */
        if (rss > 64) {
            fprintf(stderr, "graph_mapped: %ld kB of %s resident after open\n", rss, arrays[i].file + 1);
            T_CHECK(0);
        }
    }
    /* the mapped arrays hold the files' values */
    mms_npy_t a;
    snprintf(p, sizeof p, "%s/indices.npy", g);
    T_OK(mms_npy_open(p, MMS_DT_I64, &a));
    T_EQ_INT((int64_t)a.rows, graph->full.indptr[graph->n_nodes]);
    T_CHECK(a.rows > 40000); /* 320 kB and more: the RSS bound means something */
    T_CHECK(!memcmp(a.data, graph->full.indices, a.rows * sizeof(int64_t)));
    mms_npy_close(&a);
    int64_t deg = 0;
    for (int64_t v = 0; v < graph->n_nodes; v++) deg += mms_csr_degree(&graph->adj, v);
    T_EQ_INT(deg, graph->adj.indptr[graph->n_nodes]);
    const void *was = graph->full.indices;
    mms_graph_close(&graph);
    T_CHECK(graph == NULL);
    T_EQ_INT(mapping_of(was, path, sizeof path), -1); /* unmapped by close */
    mms_graph_close(&graph); /* NULL: no-op */
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "--write-graph")) {
        /* --write-graph DIR [IMAGES CLUSTERS DIM]: only write a graph directory */
        mms_log_init(0, 1, MMS_LOG_WARN);
        int64_t ni = argc > 3 ? atoll(argv[3]) : 300;
        int C = argc > 4 ? atoi(argv[4]) : 3, dim = argc > 5 ? atoi(argv[5]) : 8;
        if (ni < 10 || C < 1 || C > ni / 2 || dim < 1) {
            fprintf(stderr, "usage: test_partition --write-graph DIR [IMAGES CLUSTERS DIM]\n");
            return 2;
        }
        mms_status s = write_sized_graph(argv[2], ni, C, dim, 0x5eedu);
        return s == MMS_OK ? 0 : 1;
    }
    mms_log_init(0, 1, MMS_LOG_WARN);
    test_clean();
    test_metis_invariants();
    test_halos();
    test_directory();
    test_graph_mapped();
    return mms_test_finish("test_partition");
}
