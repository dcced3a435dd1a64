/* test_ivf_mpi.c: approximate shard search (docs/query.md "Approximate search
 * (IVF)") at 1, 2 and 4 ranks.
 *
 * Builds a small index with the real pipeline (synth with a separate kNN
 * space, build, partition into P parts and into 1 part, a short training),
 * embeds it twice with 32 lists per space: at P ranks (P shards) and on rank 0
 * alone (1 shard). Then checks:
 *   - the centroids are the same bytes whichever the rank count, and every
 *     image is in the same vis and emb list in both indexes;
 *   - with nprobe = nlist and the int8 list scan the engine's answers
 *     (results and visual neighbours: ids, order, scores) equal the exact
 *     path's, bit for bit; with the 4-bit list scan (the default) their
 *     recall@10 against exact is >= 0.99;
 *   - with nprobe 4 the answers on the P-shard index equal those on the
 *     1-shard index (the coordinator chooses the lists, the shards scan
 *     them), so the approximate results do not depend on the rank count;
 *     their recall@10 against exact is printed, not asserted;
 *   - a request's `exact` wins over the engine's nprobe, and `nprobe` over
 *     the engine's exact default.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "engine.h"
#include "graph_build.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_npy.h"
#include "mms_test.h"
#include "mpi_fixture.h"
#include "part_dir.h"
#include "synth.h"
#include "train.h"

#define NLIST 32
#define NQ 40
#define KRES 10
#define MAXN 5

static int g_rank, g_size;

static mms_status make_graph_model(const char *dir) {
    char cat[1024], g[1024], mod[1024];
    snprintf(cat, sizeof cat, "%s/cat", dir);
    snprintf(g, sizeof g, "%s/graph", dir);
    snprintf(mod, sizeof mod, "%s/model", dir);
    mms_status s = MMS_OK;
    mms_synth_params_t sp;
    mms_synth_params_default(&sp);
    sp.images = 1400;
    sp.dim = 24;
    sp.knn_dim = 20;
    sp.tags = 40;
    sp.clusters = 16;
    sp.topics = 6;
    sp.seed = 11;
    MMS_CALL(mms_fixture_catalog_graph(&sp, -1, 1, cat, g, MPI_COMM_WORLD));
    if (g_rank == 0) {
        for (int parts = g_size; s == MMS_OK; parts = 1) {
            mms_part_opts_t po;
            mms_part_opts_default(&po);
            po.parts = parts;
            mms_part_stats_t chosen;
            s = mms_partition_write(g, &po, &chosen, NULL);
            if (s == MMS_OK) mms_part_stats_free(&chosen);
            if (parts == 1) break;
        }
    }
    MMS_CALL(mms_mpi_agree(s, MPI_COMM_WORLD));
    return mms_fixture_train(g, mod, 10, 3, 0, MPI_COMM_WORLD);
}

typedef struct {
    int ok;
    int n;
    char ids[KRES][64];
    float sc[KRES];
    int64_t nbrs[MAXN];
} ans_t;

/* NQ fused queries (image + tags, visual 0.5) of the catalog's test images. */
static int make_requests(const mms_catalog_t *c, mms_request_t *req, const char **tagbuf) {
    int n = 0;
    for (int64_t r = 0; r < c->n && n < NQ; r++) {
        if (c->split[r] != MMS_SPLIT_TEST) continue;
        mms_request_t *q = &req[n];
        mms_request_init(q);
        q->id = (uint64_t)n + 1;
        q->k = KRES;
        q->neighbors = MAXN;
        q->image = c->x + (size_t)r * c->dim;
        q->image_dim = c->dim;
        q->image_knn = c->knn_x + (size_t)r * c->knn_dim;
        q->image_knn_dim = c->knn_dim;
        int nt = 0;
        for (int64_t e = c->tag_ptr[r]; e < c->tag_ptr[r + 1] && nt < 4; e++)
            tagbuf[n * 4 + nt++] = c->tag_names[c->tag_idx[e]];
        q->tags = tagbuf + n * 4;
        q->ntags = nt;
        q->visual = nt ? 0.5f : 1.0f;
        q->visual_given = 1;
        n++;
    }
    return n;
}

/* Open an engine on idx (search layout) with the given defaults, answer the
 * requests (rank 0; the others serve), close it. Collective. */
static int g_list_scan = MMS_LIST_SCAN_CODES4; /* the engine's list scan */

static void run_engine(const char *idx, int32_t nprobe, int exact, const mms_request_t *req, int n,
                       ans_t *out) {
    mms_engine_params_t ep;
    mms_engine_params_default(&ep);
    ep.list_scan = g_list_scan;
    ep.index = idx;
    ep.mode = MMS_ENGINE_SEARCH;
    ep.nprobe = nprobe;
    ep.exact = exact;
    mms_engine_t *e = NULL;
    mms_log_set_level(MMS_LOG_ERROR); /* an idle rank's warning on the 1-shard index */
    T_OK(mms_engine_open(&ep, MPI_COMM_WORLD, &e));
    mms_log_set_level(MMS_LOG_WARN);
    if (!e) MPI_Abort(MPI_COMM_WORLD, 1);
    if (g_rank != 0) {
        T_OK(mms_engine_worker_loop(e));
        mms_engine_close(&e);
        return;
    }
    mms_response_t *rs = calloc((size_t)n, sizeof *rs);
    int64_t *nb = calloc((size_t)n * MAXN, sizeof *nb);
    for (int i = 0; i < n; i++) {
        mms_response_init(&rs[i], &req[i]);
        T_OK(mms_response_reserve(&rs[i], KRES, 5));
    }
    mms_engine_trace_t tr = {.nbrs = nb, .max_nbrs = MAXN};
    T_OK(mms_engine_answer(e, req, NULL, n, rs, &tr));
    mms_engine_stats_t st;
    mms_engine_stats(e, &st); /* rank 0's own shard rounds: which list scan ran */
    if (g_list_scan == MMS_LIST_SCAN_CODES4) T_EQ_INT(st.local.codes4_scans, st.local.list_scans);
    else T_EQ_INT(st.local.codes4_scans, 0); /* int8, or auto on these small shards */
    if (nprobe > 0 && !exact && n > 0 && !req[0].exact) T_CHECK(st.local.list_scans > 0);
    for (int i = 0; i < n; i++) {
        ans_t *a = &out[i];
        memset(a, 0, sizeof *a);
        a->ok = rs[i].ok;
        a->n = rs[i].nresults;
        if (!rs[i].ok) fprintf(stderr, "query %d failed: %s\n", i, rs[i].error_message);
        for (int j = 0; j < a->n && j < KRES; j++) {
            snprintf(a->ids[j], sizeof a->ids[j], "%s", rs[i].results[j].id);
            a->sc[j] = rs[i].results[j].score;
        }
        memcpy(a->nbrs, nb + (size_t)i * MAXN, sizeof a->nbrs);
        mms_response_free(&rs[i]);
    }
    free(rs);
    free(nb);
    T_OK(mms_engine_stop(e));
    mms_engine_close(&e);
}

static int same(const char *what, const ans_t *a, const ans_t *b, int n) {
    int diff = 0;
    for (int i = 0; i < n; i++) {
        int d = a[i].ok != b[i].ok || a[i].n != b[i].n ||
                memcmp(a[i].nbrs, b[i].nbrs, sizeof a[i].nbrs) != 0;
        for (int j = 0; !d && j < a[i].n; j++)
            d = strcmp(a[i].ids[j], b[i].ids[j]) || a[i].sc[j] != b[i].sc[j];
        if (d && diff++ < 3)
            fprintf(stderr, "%s: query %d differs (first result %s %.7g vs %s %.7g)\n", what, i,
                    a[i].ids[0], a[i].sc[0], b[i].ids[0], b[i].sc[0]);
    }
    T_EQ_INT(diff, 0);
    return diff;
}

static double recall(const ans_t *ref, const ans_t *got, int n) {
    int64_t hit = 0, tot = 0;
    for (int i = 0; i < n; i++)
        for (int a = 0; a < ref[i].n; a++) {
            tot++;
            for (int b = 0; b < got[i].n; b++)
                if (!strcmp(ref[i].ids[a], got[i].ids[b])) {
                    hit++;
                    break;
                }
        }
    return tot ? (double)hit / tot : 1.0;
}

/* node -> (vis list, emb list) of every image of an index opened whole (rank 0). */
static void node_lists(const mms_index_t *ix, int32_t *lv, int32_t *le) {
    for (int s = 0; s < ix->nshard; s++) {
        const mms_index_shard_t *sh = &ix->sh[s];
        for (int c = 0; c < 2; c++) {
            const mms_qmat_t *m = c ? sh->qemb : sh->qvis;
            int32_t *out = c ? le : lv;
            for (int32_t l = 0; m && l < m->nlist; l++)
                for (int64_t v = m->lptr[l]; v < m->lptr[l + 1]; v++) out[sh->ids[m->perm[v]]] = l;
        }
    }
}

static int same_file(const char *a, const char *b) {
    mms_npy_t x, y;
    if (mms_npy_open(a, MMS_DT_F32, &x) != MMS_OK) return 0;
    if (mms_npy_open(b, MMS_DT_F32, &y) != MMS_OK) {
        mms_npy_close(&x);
        return 0;
    }
    int ok = x.rows == y.rows && x.cols == y.cols &&
             !memcmp(x.data, y.data, x.rows * x.cols * sizeof(float));
    mms_npy_close(&x);
    mms_npy_close(&y);
    return ok;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    mms_log_init(g_rank, g_size, MMS_LOG_WARN);
    char dir[1024] = "", g[1100], mod[1100], ip[1100], i1[1100];
    if (g_rank == 0) snprintf(dir, sizeof dir, "%s", mms_test_tmpdir("ivf_mpi"));
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    snprintf(g, sizeof g, "%s/graph", dir);
    snprintf(mod, sizeof mod, "%s/model", dir);
    snprintf(ip, sizeof ip, "%s/index-p", dir);
    snprintf(i1, sizeof i1, "%s/index-1", dir);
    if (make_graph_model(dir) != MMS_OK) {
        fprintf(stderr, "rank %d: could not build the test graph and model\n", g_rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    mms_embed_params_t epp = {.graph = g, .model = mod, .out = ip, .nlist = NLIST};
    mms_embed_summary_t es;
    T_OK(mms_embed(&epp, MPI_COMM_WORLD, &es));
    mms_status s = MMS_OK;
    if (g_rank == 0) {
        mms_embed_params_t e1 = {.graph = g, .model = mod, .out = i1, .nlist = NLIST};
        s = mms_embed(&e1, MPI_COMM_SELF, &es);
        T_OK(s);
    }
    if (mms_mpi_agree(s, MPI_COMM_WORLD) != MMS_OK) MPI_Abort(MPI_COMM_WORLD, 1);

    mms_request_t req[NQ];
    const char *tagbuf[NQ * 4];
    int n = 0;
    mms_index_t *full = NULL;
    if (g_rank == 0) {
        /* centroids and lists: the same at P ranks as on one */
        const char *files[2] = {MMS_IVF_VIS_CENTROIDS_FILE, MMS_IVF_EMB_CENTROIDS_FILE};
        for (int f = 0; f < 2; f++) {
            char a[1200], b[1200];
            snprintf(a, sizeof a, "%s/%s", ip, files[f]);
            snprintf(b, sizeof b, "%s/%s", i1, files[f]);
            T_CHECK(same_file(a, b));
        }
        mms_index_open_t o;
        mms_index_open_default(&o);
        o.coordinator = 1;
        o.worker = 0;
        o.nworkers = 1;
        mms_index_t *one = NULL;
        T_OK(mms_index_open(ip, &o, &full));
        T_OK(mms_index_open(i1, &o, &one));
        if (!full || !one) MPI_Abort(MPI_COMM_WORLD, 1);
        T_EQ_INT(full->ivf_nlist, NLIST);
        T_EQ_INT(full->shards, g_size);
        int64_t ni = full->n_images;
        int32_t *a = malloc((size_t)ni * 4 * sizeof(int32_t));
        for (int64_t i = 0; i < 4 * ni; i++) a[i] = -1;
        node_lists(full, a, a + ni);
        node_lists(one, a + 2 * ni, a + 3 * ni);
        int bad = 0;
        for (int64_t v = 0; v < ni; v++)
            bad += a[v] < 0 || a[ni + v] < 0 || a[v] != a[2 * ni + v] || a[ni + v] != a[3 * ni + v];
        T_EQ_INT(bad, 0);
        free(a);
        mms_index_close(&one);
        n = make_requests(full->cat, req, tagbuf);
        T_EQ_INT(n, NQ);
    }
    MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    ans_t *ex = calloc(NQ, sizeof *ex), *all = calloc(NQ, sizeof *all);
    ans_t *ap = calloc(NQ, sizeof *ap), *a1 = calloc(NQ, sizeof *a1), *tmp = calloc(NQ, sizeof *tmp);
    run_engine(ip, 0, 1, req, n, ex);      /* exact */
    /* 4 of 32 lists hold far fewer rows per query than the codes need to
     * pay for their re-rank (MMS_QSCAN4_MIN_ROWS): auto takes the int8 scan */
    g_list_scan = MMS_LIST_SCAN_AUTO;
    run_engine(ip, 4, 0, req, n, ap);
    g_list_scan = MMS_LIST_SCAN_INT8;
    run_engine(ip, 4, 0, req, n, a1);
    if (g_rank == 0) same("auto list scan at nprobe 4 vs int8", a1, ap, n);
    run_engine(ip, NLIST, 0, req, n, all); /* every list probed, int8 list scan */
    g_list_scan = MMS_LIST_SCAN_CODES4;
    run_engine(ip, NLIST, 0, req, n, tmp); /* every list probed, 4-bit codes */
    if (g_rank == 0) {
        double r = recall(ex, tmp, n);
        printf("recall@10 of every list from the 4-bit codes against exact: %.3f\n", r);
        T_CHECK(r >= 0.99);
    }
    run_engine(ip, 4, 0, req, n, ap);      /* 4 of 32 lists, P shards */
    run_engine(i1, 4, 0, req, n, a1);      /* the same on one shard */
    if (g_rank == 0) {
        same("nprobe = nlist vs exact", ex, all, n);
        same("nprobe 4: P shards vs 1 shard", ap, a1, n);
        printf("recall@10 of nprobe 4 of %d lists against exact: %.3f (%d ranks)\n", NLIST,
               recall(ex, ap, n), g_size);
        /* a request's exact wins over the engine's nprobe; its nprobe over the engine's exact */
        for (int i = 0; i < n; i++) req[i].exact = 1;
    }
    run_engine(ip, 4, 0, req, n, tmp);
    if (g_rank == 0) {
        same("request exact over engine nprobe 4", ex, tmp, n);
        for (int i = 0; i < n; i++) req[i].exact = 0, req[i].nprobe = 4;
    }
    run_engine(ip, 0, 1, req, n, tmp);
    if (g_rank == 0) same("request nprobe 4 over engine exact", ap, tmp, n);
    mms_index_close(&full);
    free(ex), free(all), free(ap), free(a1), free(tmp);
    int fails = mms_test_failures, any = 0;
    MPI_Allreduce(&fails, &any, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (g_rank == 0 && any == 0) mms_rm_rf(dir);
    int rc = g_rank == 0 ? mms_test_finish("test_ivf_mpi") : (fails != 0);
    MPI_Finalize();
    return any ? 1 : rc;
}
