/* test_engine_mpi.c: the query engine (coordinator/engine.h) at 1, 2 and 4 ranks.
 *
 * Builds a small index in a temporary directory with the real pipeline (synth
 * with a separate kNN space, build with --normalize and PCA, partition into P
 * parts, a short training, embed), then checks:
 *   - the int8 filter's top-k equals a float scan, with exact ties, exclusion,
 *     k above the row count, zero rows and a zero query (rank 0, no MPI);
 *   - search-layout answers: results equal a brute-force scan over all
 *     embeddings in double (ids, order, scores within 1e-5), visual neighbours
 *     equal a brute-force scan of the kNN space, exclusion works;
 *   - consistency: a training image embedded from its own adjacency list (the
 *     graph's capped adj), its x and its neighbours' stored rows gives its
 *     stored embedding within 1e-5, and its catalog features projected by the
 *     query path (L2 normalisation, PCA) give its stored x within 1e-5;
 *   - slider ends: visual 1 equals the image-only query, visual 0 the
 *     tags-only query (same ids, scores exactly half: E carries the paper's / 2);
 *   - warnings and errors: unknown keyword, no usable input, bad k / neighbors /
 *     tag_k / visual / vector length / NaN, image_knn missing, jpeg refused;
 *   - the float-scan engine and (P >= 2) the serve layout, where rank 0 holds no
 *     shard and shard s sits on worker s mod (P - 1), give the same answers.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "engine.h"
#include "graph_build.h"
#include "part_dir.h"
#include "mms_graph.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_test.h"
#include "mpi_fixture.h"
#include "synth.h"
#include "mms_topk.h"
#include "train.h"

static int g_rank, g_size;

/* ------------------------------------------------------------------ qmat (local) */

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xFFFFFF) / 16777216.0f - 0.5f;
}

static void check_qmat(void) {
    uint64_t seed = 42;
    const int64_t n = 700;
    const int32_t d = 37, nq = 6, k = 9;
    float *X = malloc((size_t)n * d * sizeof(float)), *Q = malloc((size_t)nq * d * sizeof(float));
    int64_t *ids = malloc((size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) {
        ids[i] = 1000 + 3 * i;
        for (int32_t j = 0; j < d; j++) X[i * d + j] = frand(&seed);
    }
    /* exact ties: rows 10..19 copy row 5; a zero row */
    for (int64_t i = 10; i < 20; i++) memcpy(X + i * d, X + 5 * d, (size_t)d * sizeof(float));
    memset(X + 30 * d, 0, (size_t)d * sizeof(float));
    for (int32_t q = 0; q < nq; q++)
        for (int32_t j = 0; j < d; j++) Q[q * d + j] = q == 0 ? X[5 * d + j] : frand(&seed);
    memset(Q + 5 * d, 0, (size_t)d * sizeof(float)); /* a zero query: every score ties at 0 */
    int64_t ex[6] = {-1, 12, -1, 7, -1, -1};
    mms_qmat_t *m = NULL;
    T_OK(mms_qmat_create(X, n, d, &m));
    int64_t rows[6 * 9], frows[6 * 9], fids[6 * 9], exid[6];
    float sc[6 * 9], fsc[6 * 9];
    for (int q = 0; q < nq; q++) exid[q] = ex[q] >= 0 ? ids[ex[q]] : -1;
    mms_qscan_stats_t st = {0, 0, 0, 0};
    T_OK(mms_qmat_topk(m, X, ids, Q, nq, k, ex, rows, sc, &st));
    T_OK(mms_topk_scan(X, n, d, ids, 0, Q, nq, k, exid, fids, fsc));
    for (int i = 0; i < nq * k; i++) {
        frows[i] = fids[i] >= 0 ? (fids[i] - 1000) / 3 : -1;
        T_EQ_INT(rows[i], frows[i]);
        T_NEAR(sc[i], fsc[i], 1e-6);
    }
    T_CHECK(st.reranked < (int64_t)nq * n); /* the filter did filter */
    /* k above the row count pads with -1 */
    int64_t r2[40];
    float s2[40];
    T_OK(mms_qmat_topk(m, X, ids, Q, 1, 40, NULL, r2, s2, NULL));
    mms_qmat_t *small = NULL;
    T_OK(mms_qmat_create(X, 5, d, &small));
    T_OK(mms_qmat_topk(small, X, ids, Q + d, 1, 8, NULL, r2, s2, NULL));
    for (int i = 0; i < 8; i++) T_CHECK(i < 5 ? r2[i] >= 0 : r2[i] == -1);
    /* a zero query over more rows than the candidate limit: the float-scan fallback */
    {
        const int64_t n2 = 20000;
        const int32_t d2 = 8;
        float *X2 = malloc((size_t)n2 * d2 * sizeof(float)), Q2[2 * 8];
        for (int64_t i = 0; i < n2 * d2; i++) X2[i] = frand(&seed);
        for (int j = 0; j < d2; j++) Q2[j] = 0.0f, Q2[d2 + j] = frand(&seed);
        mms_qmat_t *m2 = NULL;
        T_OK(mms_qmat_create(X2, n2, d2, &m2));
        int64_t r2a[2 * 5], r2b[2 * 5], ex2[2] = {3, -1};
        float s2a[2 * 5], s2b[2 * 5];
        T_OK(mms_qmat_topk(m2, X2, NULL, Q2, 2, 5, ex2, r2a, s2a, NULL));
        T_OK(mms_topk_scan(X2, n2, d2, NULL, 0, Q2, 2, 5, ex2, r2b, s2b));
        for (int i = 0; i < 10; i++) {
            T_EQ_INT(r2a[i], r2b[i]);
            T_NEAR(s2a[i], s2b[i], 1e-6);
        }
        T_EQ_INT(r2a[0], 0); /* all scores 0: ids 0, 1, 2, 4 (3 excluded), 5 */
        T_EQ_INT(r2a[3], 4);
        mms_qmat_destroy(&m2);
        free(X2);
    }
    /* NaN refused */
    X[3] = NAN;
    mms_qmat_t *bad = NULL;
    mms_log_set_level(MMS_LOG_QUIET);
    T_FAILS(mms_qmat_create(X, n, d, &bad), MMS_ERR_NUMERIC);
    mms_log_set_level(MMS_LOG_WARN);
    T_CHECK(bad == NULL);
    mms_qmat_destroy(&m);
    mms_qmat_destroy(&small);
    free(X);
    free(Q);
    free(ids);
}

/* ------------------------------------------------------------------ the index */

static mms_status make_index(const char *dir, char *idx, size_t cap) {
    char cat[1024], g[1024], mod[1024];
    snprintf(cat, sizeof cat, "%s/cat", dir);
    snprintf(g, sizeof g, "%s/graph", dir);
    snprintf(mod, sizeof mod, "%s/model", dir);
    snprintf(idx, cap, "%s/index", dir);
    mms_status s = MMS_OK;
    mms_synth_params_t sp;
    mms_synth_params_default(&sp);
    sp.images = 900;
    sp.dim = 24;
    sp.knn_dim = 16;
    sp.tags = 40;
    sp.clusters = 12;
    sp.topics = 6;
    sp.seed = 7;
    MMS_CALL(mms_fixture_catalog_graph(&sp, 16, 1, cat, g, MPI_COMM_WORLD));
    if (g_rank == 0) {
        mms_part_opts_t po;
        mms_part_opts_default(&po);
        po.parts = g_size;
        mms_part_stats_t chosen;
        s = mms_partition_write(g, &po, &chosen, NULL);
        if (s == MMS_OK) mms_part_stats_free(&chosen);
    }
    MMS_CALL(mms_mpi_agree(s, MPI_COMM_WORLD));
    MMS_CALL(mms_fixture_train(g, mod, 15, 3, 0, MPI_COMM_WORLD));
    mms_embed_params_t epp = {.graph = g, .model = mod, .out = idx, .force = 0};
    mms_embed_summary_t es;
    MMS_CALL(mms_embed(&epp, MPI_COMM_WORLD, &es));
    return MMS_OK;
}

/* ------------------------------------------------------------------ requests */

#define NREQ 32
#define KRES 12

typedef struct {
    mms_request_t req[NREQ];
    uint8_t connect[NREQ];
    const char *tagbuf[NREQ][8];
    const char *negbuf[NREQ][2];
    const char *negword; /* a tag not among the first 4 of the first test image */
    char what[NREQ][64];
    float bad_image[NREQ][64];
    int expect_error[NREQ]; /* protocol code, 0 = ok */
    int n;
} reqset_t;

/* Catalog rows of the first test and training images. */
static int64_t nth_row(const mms_catalog_t *c, int split, int nth) {
    for (int64_t r = 0; r < c->n; r++)
        if (c->split[r] == split && nth-- == 0) return r;
    return -1;
}

static mms_request_t *add(reqset_t *rs, const mms_catalog_t *c, int64_t row, int ntags, float visual,
                          int connect, const char *what) {
    int i = rs->n++;
    mms_request_t *q = &rs->req[i];
    mms_request_init(q);
    q->id = (uint64_t)i + 1;
    q->k = KRES;
    snprintf(rs->what[i], sizeof rs->what[i], "%s", what);
    rs->connect[i] = (uint8_t)connect;
    if (row >= 0) {
        q->image = c->x + (size_t)row * c->dim;
        q->image_dim = c->dim;
        q->image_knn = c->knn_x + (size_t)row * c->knn_dim;
        q->image_knn_dim = c->knn_dim;
    }
    int nt = 0;
    for (int64_t e = c->tag_ptr[row >= 0 ? row : 0];
         e < c->tag_ptr[(row >= 0 ? row : 0) + 1] && nt < ntags; e++)
        rs->tagbuf[i][nt++] = c->tag_names[c->tag_idx[e]];
    q->tags = rs->tagbuf[i];
    q->ntags = nt;
    q->visual = visual;
    q->visual_given = visual >= 0;
    if (visual < 0) q->visual = row >= 0 && nt ? 0.5f : row >= 0 ? 1.0f : 0.0f;
    return q;
}

static void build_requests(reqset_t *rs, const mms_catalog_t *c) {
    memset(rs, 0, sizeof *rs);
    int64_t t0 = nth_row(c, MMS_SPLIT_TEST, 0), t1 = nth_row(c, MMS_SPLIT_TEST, 1);
    int64_t t2 = nth_row(c, MMS_SPLIT_TEST, 2), tr = nth_row(c, MMS_SPLIT_TRAIN, 17);
    add(rs, c, t0, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "image only");                     /* 0 */
    add(rs, c, t0, 8, 1.0f, MMS_ENGINE_CONNECT_IMAGE, "image+tags visual 1");          /* 1 */
    mms_request_t *q = add(rs, c, t0, 8, -1, MMS_ENGINE_CONNECT_IMAGE, "tags only");   /* 2 */
    q->image = NULL, q->image_knn = NULL, q->visual = 0.0f;
    add(rs, c, t0, 8, 0.0f, MMS_ENGINE_CONNECT_IMAGE, "image+tags visual 0");          /* 3 */
    add(rs, c, t1, 8, 0.5f, MMS_ENGINE_CONNECT_BOTH, "both, slider 0.5");              /* 4 */
    add(rs, c, t1, 8, 0.3f, MMS_ENGINE_CONNECT_TAGS, "connect tags, slider 0.3");      /* 5 */
    q = add(rs, c, t2, 8, 0.7f, MMS_ENGINE_CONNECT_BOTH, "predict + unknown keyword"); /* 6 */
    rs->tagbuf[6][q->ntags++] = "zebra-unknown";
    q->predict_tags = 1;
    q->tag_k = 4;
    q->neighbors = 9;
    q = add(rs, c, tr, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "training image, exclude self"); /* 7 */
    q->exclude = c->ids[tr];
    q = add(rs, c, t2, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "predict_tags op");           /* 8 */
    q->op = MMS_OP_PREDICT_TAGS;
    q->predict_tags = 1;
    /* errors */
    q = add(rs, c, -1, 0, 0.0f, MMS_ENGINE_CONNECT_IMAGE, "no usable input");         /* 9 */
    rs->tagbuf[9][0] = "nope-1", rs->tagbuf[9][1] = "nope-2", q->ntags = 2;
    rs->expect_error[9] = MMS_PERR_NO_INPUT;
    q = add(rs, c, t0, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "k 0");                       /* 10 */
    q->k = 0, rs->expect_error[10] = MMS_PERR_K_RANGE;
    q = add(rs, c, t0, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "k 10001");                   /* 11 */
    q->k = 10001, rs->expect_error[11] = MMS_PERR_K_RANGE;
    q = add(rs, c, t0, 0, 1.5f, MMS_ENGINE_CONNECT_IMAGE, "visual 1.5");              /* 12 */
    rs->expect_error[12] = MMS_PERR_VISUAL_RANGE;
    q = add(rs, c, t0, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "visual NaN");                /* 13 */
    q->visual = NAN, rs->expect_error[13] = MMS_PERR_VISUAL_RANGE;
    q = add(rs, c, t0, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "vector length");             /* 14 */
    q->image_dim = c->dim - 1, rs->expect_error[14] = MMS_PERR_VECTOR_LENGTH;
    q = add(rs, c, t0, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "NaN in image");              /* 15 */
    memcpy(rs->bad_image[15], q->image, (size_t)c->dim * sizeof(float));
    rs->bad_image[15][3] = NAN;
    q->image = rs->bad_image[15], rs->expect_error[15] = MMS_PERR_NON_FINITE;
    q = add(rs, c, t0, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "image_knn missing");         /* 16 */
    q->image_knn = NULL, rs->expect_error[16] = MMS_PERR_INVALID;
    q = add(rs, c, t0, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "image_knn length");          /* 17 */
    q->image_knn_dim = 3, rs->expect_error[17] = MMS_PERR_VECTOR_LENGTH;
    q = add(rs, c, -1, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "jpeg on a feature index");   /* 18 */
    static const uint8_t jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F'};
    q->jpeg = jpeg, q->jpeg_len = sizeof jpeg, rs->expect_error[18] = MMS_PERR_UNSUPPORTED;
    q = add(rs, c, t0, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "neighbors 0");               /* 19 */
    q->neighbors = 0, rs->expect_error[19] = MMS_PERR_K_RANGE;
    q = add(rs, c, t1, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "k 1000 (all images)");       /* 20 */
    q->k = 1000;
    q = add(rs, c, -1, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "info");                       /* 21 */
    q->op = MMS_OP_INFO;
    /* concept "node": E_t is z of a new node connected to the tags */
    q = add(rs, c, t0, 8, -1, MMS_ENGINE_CONNECT_IMAGE, "node: tags only");           /* 22 */
    q->image = NULL, q->image_knn = NULL, q->visual = 0.0f, q->concept = MMS_CONCEPT_NODE;
    q = add(rs, c, t0, 8, 0.0f, MMS_ENGINE_CONNECT_IMAGE, "node: image+tags visual 0"); /* 23 */
    q->concept = MMS_CONCEPT_NODE;
    q = add(rs, c, t0, 8, 1.0f, MMS_ENGINE_CONNECT_IMAGE, "node: image+tags visual 1"); /* 24 */
    q->concept = MMS_CONCEPT_NODE;
    q = add(rs, c, t0, 8, 0.4f, MMS_ENGINE_CONNECT_IMAGE, "node: slider 0.4");        /* 25 */
    q->concept = MMS_CONCEPT_NODE;
    q = add(rs, c, t0, 0, -1, MMS_ENGINE_CONNECT_IMAGE, "concept 7");                 /* 26 */
    q->concept = 7, rs->expect_error[26] = MMS_PERR_INVALID;
    /* negative keywords: E_t = mean(E_tags) - mean(E_negative) */
    q = add(rs, c, t0, 4, 0.0f, MMS_ENGINE_CONNECT_IMAGE, "negative: tags minus a tag"); /* 27 */
    for (int32_t t = 0; t < c->ntags && !rs->negword; t++) {
        int in = 0;
        for (int j = 0; j < q->ntags; j++) in |= !strcmp(q->tags[j], c->tag_names[t]);
        if (!in) rs->negword = c->tag_names[t];
    }
    q->image = NULL, q->image_knn = NULL;
    rs->negbuf[27][0] = rs->negword, q->negative_tags = rs->negbuf[27], q->nnegative_tags = 1;
    q = add(rs, c, t0, 4, 0.0f, MMS_ENGINE_CONNECT_IMAGE, "negative: the same tags alone"); /* 28 */
    q->image = NULL, q->image_knn = NULL;
    q = add(rs, c, t0, 0, 0.5f, MMS_ENGINE_CONNECT_IMAGE, "negative: image minus a tag"); /* 29 */
    rs->negbuf[29][0] = rs->negword, q->negative_tags = rs->negbuf[29], q->nnegative_tags = 1;
    q = add(rs, c, -1, 0, 0.0f, MMS_ENGINE_CONNECT_IMAGE, "negative alone");            /* 30 */
    rs->negbuf[30][0] = rs->negword, q->negative_tags = rs->negbuf[30], q->nnegative_tags = 1;
    rs->expect_error[30] = MMS_PERR_NO_INPUT;
    q = add(rs, c, t0, 4, 0.0f, MMS_ENGINE_CONNECT_IMAGE, "negative: a wanted tag");  /* 31 */
    q->image = NULL, q->image_knn = NULL;
    rs->negbuf[31][0] = q->tags[0], rs->negbuf[31][1] = rs->negword;
    q->negative_tags = rs->negbuf[31], q->nnegative_tags = 2;
}

typedef struct {
    int ok, code, n;
    int64_t ids[1000];
    float scores[1000];
    int nwarn, ntags;
    char tag0[64];
} answer_t;

static void answer(mms_engine_t *e, const mms_index_t *full, reqset_t *rs, answer_t *out,
                   float *E, float *Z, int64_t *nbrs, int32_t maxn) {
    mms_response_t *resps = calloc((size_t)rs->n, sizeof *resps);
    for (int i = 0; i < rs->n; i++) {
        mms_response_init(&resps[i], &rs->req[i]);
        int k = rs->req[i].k > 0 && rs->req[i].k <= 10000 ? rs->req[i].k : 1;
        int tk = rs->req[i].tag_k > 0 && rs->req[i].tag_k <= 1000 ? rs->req[i].tag_k : 1;
        T_OK(mms_response_reserve(&resps[i], k, tk));
    }
    mms_engine_trace_t tr = {.E = E, .z = Z, .nbrs = nbrs, .max_nbrs = maxn};
    mms_log_set_level(MMS_LOG_QUIET);
    T_OK(mms_engine_answer(e, rs->req, rs->connect, rs->n, resps, E ? &tr : NULL));
    mms_log_set_level(MMS_LOG_WARN);
    for (int i = 0; i < rs->n; i++) {
        answer_t *a = &out[i];
        memset(a, 0, sizeof *a);
        a->ok = resps[i].ok;
        a->code = resps[i].error_code;
        a->n = resps[i].nresults;
        a->nwarn = resps[i].nwarnings;
        a->ntags = resps[i].ntags;
        if (a->ntags) snprintf(a->tag0, sizeof a->tag0, "%s", resps[i].tags[0].tag);
        for (int j = 0; j < a->n && j < 1000; j++) {
            a->ids[j] = mms_index_node_of(full, resps[i].results[j].id);
            a->scores[j] = resps[i].results[j].score;
        }
        if (resps[i].id != rs->req[i].id) T_EQ_INT(resps[i].id, rs->req[i].id);
        mms_response_free(&resps[i]);
    }
    free(resps);
}

/* ------------------------------------------------------------------ brute force */

typedef struct {
    double s;
    int64_t id;
} bf_t;

static int cmp_bf(const void *pa, const void *pb) {
    const bf_t *a = pa, *b = pb;
    if (a->s != b->s) return a->s > b->s ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Top k of v . rows over every shard of full (emb or vis), in double. */
static int brute(const mms_index_t *full, int vis, const float *v, int k, int64_t exclude,
                 bf_t *out) {
    int32_t d = vis ? full->knn_dim : full->emb_dim;
    bf_t *all = malloc((size_t)full->n_images * sizeof *all);
    int64_t n = 0;
    for (int s = 0; s < full->nshard; s++) {
        const mms_index_shard_t *sh = &full->sh[s];
        const float *X = vis ? sh->vis : sh->emb;
        for (int64_t r = 0; r < sh->n; r++) {
            if (sh->ids[r] == exclude) continue;
            double acc = 0;
            for (int32_t j = 0; j < d; j++) acc += (double)v[j] * X[(size_t)r * d + j];
            all[n].s = acc;
            all[n].id = sh->ids[r];
            n++;
        }
    }
    qsort(all, (size_t)n, sizeof *all, cmp_bf);
    int m = n < k ? (int)n : k;
    memcpy(out, all, (size_t)m * sizeof *all);
    free(all);
    return m;
}

/* Same ids in the same order, scores within tol; a swap is accepted only
 * between two entries whose exact scores are within 2e-6 (float rounding). */
static void check_topk(const char *what, const int64_t *ids, const float *sc, int n,
                       const bf_t *bf, int m, double tol) {
    T_EQ_INT(n, m);
    int bad = 0;
    for (int i = 0; i < n && i < m; i++) {
        if (fabs((double)sc[i] - bf[i].s) > tol) bad++;
        if (ids[i] == bf[i].id) continue;
        int near = 0;
        for (int j = 0; j < m; j++)
            if (bf[j].id == ids[i] && fabs(bf[j].s - bf[i].s) <= 2e-6) near = 1;
        if (!near) bad++;
    }
    if (bad) {
        fprintf(stderr, "FAIL %s: %d differences from brute force\n", what, bad);
        for (int i = 0; i < n && i < 5; i++)
            fprintf(stderr, "   %d: engine %lld %.7f  brute %lld %.7f\n", i, (long long)ids[i],
                    sc[i], (long long)bf[i].id, bf[i].s);
    }
    T_EQ_INT(bad, 0);
}

/* ------------------------------------------------------------------ consistency */

/* A training node's own adjacency (capped CSR of the graph), x and its
 * neighbours' stored rows through mms_query_embed give its stored embedding. */
static void check_consistency(const mms_index_t *full, const char *graph_dir) {
    mms_graph_t *g = NULL;
    T_OK(mms_graph_open(graph_dir, &g));
    if (!g) return;
    const int32_t D = full->dim, H2 = full->emb_dim;
    double worst = 0;
    int tested = 0;
    for (int s = 0; s < full->nshard; s++) {
        const mms_index_shard_t *sh = &full->sh[s];
        for (int64_t r = 0; r < sh->n && r < 40; r += 7) {
            int64_t v = sh->ids[r];
            int64_t p0 = g->adj.indptr[v], p1 = g->adj.indptr[v + 1];
            int64_t ne = p1 - p0, ptr[2] = {0, ne};
            int64_t *gid = malloc((size_t)(ne + 1) * sizeof(int64_t));
            float *nx = calloc((size_t)(ne + 1) * D, sizeof(float));
            float *nh = calloc((size_t)(ne + 1) * H2, sizeof(float));
            float *z = malloc((size_t)H2 * sizeof(float));
            float *h1 = malloc((size_t)H2 * sizeof(float));
            for (int64_t e = 0; e < ne; e++) {
                int64_t u = g->adj.indices[p0 + e];
                gid[e] = u;
                if (u >= full->n_images) continue;
                for (int t = 0; t < full->nshard; t++) {
                    int64_t ur = mms_index_shard_row(&full->sh[t], u);
                    if (ur < 0) continue;
                    memcpy(nx + e * D, full->sh[t].x + (size_t)ur * D, (size_t)D * sizeof(float));
                    memcpy(nh + e * H2, full->sh[t].h1 + (size_t)ur * H2, (size_t)H2 * sizeof(float));
                }
            }
            T_OK(mms_query_embed_h1(full, 1, sh->x + (size_t)r * D, ptr, gid, nx, nh, z, h1));
            for (int32_t j = 0; j < H2; j++) {
                double dd = fabs((double)z[j] - sh->emb[(size_t)r * H2 + j]);
                /* h1 is what add stores: the stored layer-1 state, relative to its size */
                double dh = fabs((double)h1[j] - sh->h1[(size_t)r * H2 + j]) /
                            (1.0 + fabs((double)sh->h1[(size_t)r * H2 + j]));
                if (dd > worst) worst = dd;
                if (dh > worst) worst = dh;
            }
            tested++;
            free(gid);
            free(nx);
            free(nh);
            free(z);
            free(h1);
        }
    }
    T_CHECK(tested >= 4);
    /* a training image's catalog features through the query path (L2, PCA) give its x */
    double xworst = 0;
    float *xq = malloc((size_t)D * sizeof(float));
    for (int s = 0; s < full->nshard; s++)
        for (int64_t r = 0; r < full->sh[s].n; r += 50) {
            int64_t row = full->node_row[full->sh[s].ids[r]];
            T_OK(mms_index_project(full, full->cat->x + (size_t)row * full->cat->dim, xq));
            for (int32_t j = 0; j < D; j++) {
                double dd = fabs((double)xq[j] - full->sh[s].x[(size_t)r * D + j]);
                if (dd > xworst) xworst = dd;
            }
        }
    free(xq);
    if (xworst > 1e-5) fprintf(stderr, "FAIL projection: max |x_q - stored x| = %g\n", xworst);
    T_CHECK(xworst <= 1e-5);
    if (getenv("MMS_TEST_VERBOSE"))
        fprintf(stderr, "projection: max |x_q - stored x| = %.3g\n", xworst);
    if (getenv("MMS_TEST_VERBOSE"))
        fprintf(stderr, "consistency: %d training images, max |z - stored| = %.3g\n", tested, worst);
    if (worst > 1e-5) fprintf(stderr, "FAIL consistency: max |z - stored| = %g\n", worst);
    T_CHECK(worst <= 1e-5);
    mms_graph_close(&g);
}

/* ------------------------------------------------------------------ main */

static void check_answers(const mms_index_t *full, reqset_t *rs, answer_t *a, const float *E,
                          const int64_t *nbrs, int32_t maxn, const mms_catalog_t *c) {
    const int32_t H2 = full->emb_dim;
    for (int i = 0; i < rs->n; i++) {
        const mms_request_t *q = &rs->req[i];
        if (rs->expect_error[i]) {
            if (a[i].ok || a[i].code != rs->expect_error[i])
                fprintf(stderr, "FAIL request %d (%s): ok %d code %d, expected code %d\n", i,
                        rs->what[i], a[i].ok, a[i].code, rs->expect_error[i]);
            T_CHECK(!a[i].ok && a[i].code == rs->expect_error[i]);
            continue;
        }
        if (!a[i].ok) fprintf(stderr, "FAIL request %d (%s) failed: code %d\n", i, rs->what[i], a[i].code);
        T_CHECK(a[i].ok);
        if (q->op != MMS_OP_SEARCH) continue;
        int64_t ex = q->exclude ? mms_index_node_of(full, q->exclude) : -1;
        bf_t *bf = malloc(1000 * sizeof *bf);
        int m = brute(full, 0, E + (size_t)i * H2, q->k, ex, bf);
        check_topk(rs->what[i], a[i].ids, a[i].scores, a[i].n, bf, m, 1e-5);
        if (ex >= 0)
            for (int j = 0; j < a[i].n; j++) T_CHECK(a[i].ids[j] != ex);
        /* the visual neighbours are the exact nearest images of the kNN space */
        /* (visual 0 with known tags never computes z(q): no neighbour round) */
        int zero_w = q->visual == 0.0f && q->ntags > 0 && !q->predict_tags;
        if (q->image && rs->connect[i] != MMS_ENGINE_CONNECT_TAGS && nbrs && !zero_w) {
            float kq[256];
            double ss = 0;
            for (int32_t j = 0; j < c->knn_dim; j++) ss += (double)q->image_knn[j] * q->image_knn[j];
            for (int32_t j = 0; j < c->knn_dim; j++) kq[j] = (float)(q->image_knn[j] / sqrt(ss));
            int mm = brute(full, 1, kq, q->neighbors, -1, bf);
            int64_t got[1000];
            float gs[1000];
            int ng = 0;
            while (ng < mm && nbrs[(size_t)i * maxn + ng] >= 0) {
                got[ng] = nbrs[(size_t)i * maxn + ng];
                gs[ng] = (float)bf[ng].s; /* scores are not traced: compare ids */
                ng++;
            }
            char w[96];
            snprintf(w, sizeof w, "%s (neighbours)", rs->what[i]);
            check_topk(w, got, gs, ng, bf, mm, 1e-5);
        }
        free(bf);
    }
    /* slider ends: same ids, scores exactly half (E = (1 z + 0 t) / 2 = z / 2) */
    T_EQ_INT(a[1].n, a[0].n);
    T_EQ_INT(a[3].n, a[2].n);
    for (int j = 0; j < a[0].n && j < a[1].n; j++) {
        T_EQ_INT(a[1].ids[j], a[0].ids[j]);
        T_NEAR(a[1].scores[j], a[0].scores[j] * 0.5f, 1e-7);
    }
    for (int j = 0; j < a[2].n && j < a[3].n; j++) {
        T_EQ_INT(a[3].ids[j], a[2].ids[j]);
        T_NEAR(a[3].scores[j], a[2].scores[j] * 0.5f, 1e-7);
    }
    /* concept node: the ends as above; between them E = (w z + (1 - w) z_node) / 2 */
    T_EQ_INT(a[23].n, a[22].n);
    for (int j = 0; j < a[22].n && j < a[23].n; j++) {
        T_EQ_INT(a[23].ids[j], a[22].ids[j]);
        T_NEAR(a[23].scores[j], a[22].scores[j] * 0.5f, 1e-7);
    }
    T_EQ_INT(a[24].n, a[0].n);
    for (int j = 0; j < a[0].n && j < a[24].n; j++) T_EQ_INT(a[24].ids[j], a[0].ids[j]);
    if (E) {
        double worst = 0, dn = 0;
        for (int32_t d = 0; d < H2; d++) {
            double want = 0.5 * (0.4 * E[(size_t)0 * H2 + d] + 0.6 * E[(size_t)22 * H2 + d]);
            double got = E[(size_t)25 * H2 + d];
            worst = fmax(worst, fabs(got - want));
            dn += fabs(E[(size_t)22 * H2 + d] - E[(size_t)2 * H2 + d]);
        }
        T_CHECK(worst < 1e-6);
        T_CHECK(dn > 1e-3); /* the node differs from the mean of the tag embeddings */
    }
    if (E) { /* negative keywords subtract the stored embedding of the tag */
        int32_t nt = mms_index_tag_lookup(full, rs->negword);
        T_CHECK(nt >= 0);
        double w27 = 0, w29 = 0;
        for (int32_t d = 0; d < H2 && nt >= 0; d++) {
            double neg = full->tag_emb[(size_t)nt * H2 + d];
            w27 = fmax(w27, fabs(E[(size_t)27 * H2 + d] - (E[(size_t)28 * H2 + d] - neg)));
            w29 = fmax(w29, fabs(E[(size_t)29 * H2 + d] - (0.25 * E[(size_t)0 * H2 + d] - 0.25 * neg)));
        }
        if (w27 > 1e-6 || w29 > 1e-6) fprintf(stderr, "FAIL negative: %g %g\n", w27, w29);
        T_CHECK(w27 <= 1e-6);
        T_CHECK(w29 <= 1e-6);
        /* a word both wanted and subtracted is kept as wanted (and warned) */
        T_CHECK(!memcmp(E + (size_t)31 * H2, E + (size_t)27 * H2, (size_t)H2 * sizeof(float)));
    }
    T_EQ_INT(a[31].nwarn, 1);
    T_CHECK(a[6].nwarn == 1);   /* unknown keyword */
    T_EQ_INT(a[6].ntags, 4);    /* tag_k 4 */
    T_CHECK(a[8].ntags == 5 && a[8].n == 0);
    T_EQ_INT(a[20].n, full->n_images < 1000 ? full->n_images : 1000);
}

static void compare_answers(const char *what, reqset_t *rs, const answer_t *a, const answer_t *b) {
    int bad = 0;
    for (int i = 0; i < rs->n; i++) {
        if (a[i].ok != b[i].ok || a[i].code != b[i].code || a[i].n != b[i].n) {
            bad++;
            continue;
        }
        /* float rounding may swap two near-tied results, nothing more */
        for (int j = 0; j < a[i].n; j++) {
            float dd = fabsf(a[i].scores[j] - b[i].scores[j]);
            if (dd > 1e-5f || (a[i].ids[j] != b[i].ids[j] && dd > 2e-6f)) bad++;
        }
        if (strcmp(a[i].tag0, b[i].tag0)) bad++;
    }
    if (bad) fprintf(stderr, "FAIL %s: %d differences\n", what, bad);
    T_EQ_INT(bad, 0);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    mms_log_init(g_rank, g_size, MMS_LOG_WARN);
    if (g_rank == 0) check_qmat();

    char dir[1024] = "", idx[1100], graph[1100];
    if (g_rank == 0) snprintf(dir, sizeof dir, "%s", mms_test_tmpdir("engine_mpi"));
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    snprintf(graph, sizeof graph, "%s/graph", dir);
    mms_status s = make_index(dir, idx, sizeof idx);
    if (s != MMS_OK) {
        fprintf(stderr, "rank %d: could not build the test index\n", g_rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    /* rank 0 holds the whole index too, for the brute-force references */
    mms_index_t *full = NULL;
    reqset_t *rs = calloc(1, sizeof *rs);
    answer_t *A = calloc(NREQ, sizeof *A), *B = calloc(NREQ, sizeof *B);
    float *E = NULL;
    int64_t *nbrs = NULL;
    const int32_t maxn = 16;
    if (g_rank == 0) {
        mms_index_open_t o;
        mms_index_open_default(&o);
        o.coordinator = 1;
        o.worker = 0;
        o.nworkers = 1;
        o.filter = 0;
        T_OK(mms_index_open(idx, &o, &full));
        if (!full) MPI_Abort(MPI_COMM_WORLD, 1);
        T_EQ_INT(full->shards, g_size);
        T_CHECK(full->knn_separate && full->pca_comp != NULL && full->normalize);
        build_requests(rs, full->cat);
        E = calloc((size_t)NREQ * full->emb_dim, sizeof(float));
        nbrs = calloc((size_t)NREQ * maxn, sizeof(int64_t));
        check_consistency(full, graph);
    }

    /* 1. search layout, int8 filter */
    mms_engine_params_t ep;
    mms_engine_params_default(&ep);
    ep.index = idx;
    ep.mode = MMS_ENGINE_SEARCH;
    mms_engine_t *e = NULL;
    T_OK(mms_engine_open(&ep, MPI_COMM_WORLD, &e));
    if (g_rank == 0) {
        answer(e, full, rs, A, E, NULL, nbrs, maxn);
        check_answers(full, rs, A, E, nbrs, maxn, full->cat);
        /* each request alone gives the same answer as in the batch */
        for (int i = 0; i < rs->n; i++) {
            reqset_t one = *rs;
            one.n = 1;
            one.req[0] = rs->req[i];
            one.connect[0] = rs->connect[i];
            one.expect_error[0] = rs->expect_error[i];
            memcpy(one.tagbuf[0], rs->tagbuf[i], sizeof one.tagbuf[0]);
            one.req[0].tags = one.tagbuf[0];
            memcpy(one.negbuf[0], rs->negbuf[i], sizeof one.negbuf[0]);
            if (one.req[0].negative_tags) one.req[0].negative_tags = one.negbuf[0];
            answer(e, full, &one, &B[i], NULL, NULL, NULL, 0);
        }
        compare_answers("one by one vs batched", rs, A, B);
        T_OK(mms_engine_stop(e));
    } else {
        T_OK(mms_engine_worker_loop(e));
    }
    mms_engine_close(&e);

    /* 2. search layout, float scans */
    ep.filter = 0;
    T_OK(mms_engine_open(&ep, MPI_COMM_WORLD, &e));
    if (g_rank == 0) {
        answer(e, full, rs, B, NULL, NULL, NULL, 0);
        compare_answers("float scans vs int8 filter", rs, A, B);
        T_OK(mms_engine_stop(e));
    } else {
        T_OK(mms_engine_worker_loop(e));
    }
    mms_engine_close(&e);

    /* 3. serve layout: rank 0 holds nothing, shard s on worker s mod (P - 1) */
    ep.filter = 1;
    ep.mode = MMS_ENGINE_SERVE;
    if (g_size >= 2) {
        T_OK(mms_engine_open(&ep, MPI_COMM_WORLD, &e));
        if (g_rank == 0) {
            T_EQ_INT(mms_engine_index(e)->nshard, 0);
            answer(e, full, rs, B, NULL, NULL, NULL, 0);
            compare_answers("serve layout vs search layout", rs, A, B);
            T_OK(mms_engine_stop(e));
        } else {
            int expect = 0;
            for (int sh = g_rank - 1; sh < g_size; sh += g_size - 1) expect++;
            T_EQ_INT(mms_engine_index(e)->nshard, expect);
            T_OK(mms_engine_worker_loop(e));
        }
        mms_engine_close(&e);
    } else {
        /* one rank cannot serve: a clear error, no hang */
        mms_log_set_level(MMS_LOG_QUIET);
        T_FAILS(mms_engine_open(&ep, MPI_COMM_WORLD, &e), MMS_ERR_ARG);
        mms_log_set_level(MMS_LOG_WARN);
        T_CHECK(e == NULL);
    }

    /* a missing index fails every rank together */
    ep.mode = MMS_ENGINE_SEARCH;
    ep.index = "/nonexistent/index";
    mms_log_set_level(MMS_LOG_QUIET);
    T_CHECK(mms_engine_open(&ep, MPI_COMM_WORLD, &e) != MMS_OK);
    mms_log_set_level(MMS_LOG_WARN);

    mms_index_close(&full);
    free(rs);
    free(A);
    free(B);
    free(E);
    free(nbrs);
    int fails = mms_test_failures, all = 0;
    MPI_Allreduce(&fails, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (g_rank == 0 && all == 0) mms_rm_rf(dir);
    int rc = g_rank == 0 ? mms_test_finish("test_engine_mpi") : (fails != 0);
    MPI_Finalize();
    return all ? 1 : rc;
}
