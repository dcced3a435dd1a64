/* bench_query.c: query latency and throughput of the engine, in process (no TCP).
 *
 *   mpirun -np P bench_query --index I [--queries 300] [--batch-queries 1024]
 *                            [--batch 64] [--float-scan] [--serve-layout] [--concept tags|node]
 *                            [--nprobe N | --approx | --exact] [--int8-lists]
 *                            [--dump-queries DIR]
 *
 * The search layout of `mmsage search` by default: every rank holds shards
 * (shard s on rank s mod P) and rank 0 also coordinates, so -np 1 and -np 2
 * are 1 and 2 worker ranks on two cores; --serve-layout puts the coordinator
 * on a rank of its own as `mmsage serve` does.
 * Queries are the index catalog's test images (their features and tags):
 *   single   one fused image + tags request at a time (visual 0.5, connect
 *            image, 5 neighbours, k 10): the NEIGHBORS round, the inductive
 *            embedding, the SEARCH round; p50 / p99 / mean latency
 *   batched  --batch-queries requests answered --batch at a time: QPS of the
 *            same fused queries, and of tags-only queries (one SEARCH round
 *            each: the number to hold against a flat index's search)
 * With --nprobe N (an index with inverted lists, docs/query.md "Approximate
 * search (IVF)") every timed query probes N lists per round; without it the
 * engine's default applies (exact below 200,000 images), --exact forces the
 * exact scan. recall@10 of the timed path's end-to-end results (both rounds)
 * against the exact path's on the same queries is printed for the single
 * fused queries and for the tags-only queries (the search round alone).
 * --dump-queries DIR also writes the vectors the timed fused queries send in
 * their two rounds, DIR/neighbors.npy (queries x knn_dim, the unit kNN-space
 * vectors) and DIR/search.npy (queries x emb_dim, the fused embeddings E),
 * for bench/peers_ann.py to ask faiss and hnswlib the same questions.
 * and the floor: one pass over the float embedding matrix (and over the int8
 * filter copies that a query actually scans) at the copy bandwidth measured
 * with memcpy on this machine. Numbers go to stdout; nothing is asserted.
 */
#define _GNU_SOURCE
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "mms_blas.h"
#include "engine.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_fs.h"
#include "mms_npy.h"
#include "mms_opts.h"
#include "shard_scan.h"

/* CPU seconds (user + system) of this process so far. */
static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec +
           (double)u.ru_stime.tv_sec + 1e-6 * (double)u.ru_stime.tv_usec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Copy bandwidth in bytes/s (read + write counted once, as a "pass"), best of reps. */
static double copy_bandwidth(size_t bytes, int reps) {
    char *a = malloc(bytes), *b = malloc(bytes);
    if (!a || !b) {
        free(a);
        free(b);
        return 0;
    }
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = mms_now();
        memcpy(b, a, bytes);
        t = mms_now() - t;
        if (t < best) best = t;
    }
    volatile char sink = b[bytes / 2];
    (void)sink;
    free(a);
    free(b);
    return (double)bytes / best;
}

typedef struct {
    mms_request_t *req;
    const char **tags; /* MMS_PROTO_MAX_TAGS per query */
    int n;
} qset_t;

/* n fused queries from the catalog's test images (wrapping around). */
static int make_queries(const mms_index_t *ix, int n, int with_image, int concept, qset_t *qs) {
    const mms_catalog_t *c = ix->cat;
    qs->req = calloc((size_t)n, sizeof *qs->req);
    qs->tags = calloc((size_t)n * 8, sizeof *qs->tags);
    qs->n = n;
    int64_t *rows = malloc((size_t)c->n * sizeof(int64_t)), nr = 0;
    for (int64_t r = 0; r < c->n; r++)
        if (c->split[r] == MMS_SPLIT_TEST) rows[nr++] = r;
    if (nr == 0)
        for (int64_t r = 0; r < c->n; r++) rows[nr++] = r;
    for (int i = 0; i < n; i++) {
        int64_t r = rows[i % nr];
        mms_request_t *q = &qs->req[i];
        mms_request_init(q);
        q->id = (uint64_t)i + 1;
        if (with_image) {
            q->image = c->x + (size_t)r * c->dim;
            q->image_dim = c->dim;
            if (c->knn_x && ix->knn_separate) {
                q->image_knn = c->knn_x + (size_t)r * c->knn_dim;
                q->image_knn_dim = c->knn_dim;
            }
        }
        int nt = 0;
        for (int64_t e = c->tag_ptr[r]; e < c->tag_ptr[r + 1] && nt < 8; e++)
            qs->tags[(size_t)i * 8 + nt++] = c->tag_names[c->tag_idx[e]];
        q->tags = qs->tags + (size_t)i * 8;
        q->ntags = nt;
        q->visual = with_image ? (nt ? 0.5f : 1.0f) : 0.0f;
        q->visual_given = 1;
        q->concept = concept;
    }
    free(rows);
    return nr > 0;
}

/* Answer reqs[0..n) in one engine call; returns failures. */
static int run(mms_engine_t *e, const mms_request_t *reqs, int n, mms_response_t *resps) {
    for (int i = 0; i < n; i++) {
        mms_response_init(&resps[i], &reqs[i]);
        mms_response_reserve(&resps[i], reqs[i].k, reqs[i].tag_k);
    }
    mms_engine_answer(e, reqs, NULL, n, resps, NULL);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        bad += !resps[i].ok;
        if (!resps[i].ok && bad == 1) fprintf(stderr, "query failed: %s\n", resps[i].error_message);
        mms_response_free(&resps[i]);
    }
    return bad;
}

#define RK 10 /* recall@RK */

/* The first RK result ids (borrowed from the index) of reqs[0..n), answered
 * `per` at a time, with `exact` forced on (1), or the requests' own (0). */
static int collect(mms_engine_t *e, const mms_request_t *reqs, int n, int per, int exact,
                   const char **ids) {
    mms_request_t *rq = calloc((size_t)per, sizeof *rq);
    mms_response_t *rs = calloc((size_t)per, sizeof *rs);
    int bad = 0;
    for (int i = 0; i < n; i += per) {
        int m = n - i < per ? n - i : per;
        for (int j = 0; j < m; j++) {
            rq[j] = reqs[i + j];
            if (exact) rq[j].exact = 1;
            mms_response_init(&rs[j], &rq[j]);
            mms_response_reserve(&rs[j], rq[j].k, rq[j].tag_k);
        }
        mms_engine_answer(e, rq, NULL, m, rs, NULL);
        for (int j = 0; j < m; j++) {
            bad += !rs[j].ok;
            for (int r = 0; r < RK; r++)
                ids[(size_t)(i + j) * RK + r] = rs[j].ok && r < rs[j].nresults ? rs[j].results[r].id : NULL;
            mms_response_free(&rs[j]);
        }
    }
    free(rq);
    free(rs);
    return bad;
}

/* --dump-queries: the two round vectors of the first n fused queries (their
 * unit kNN-space vectors and fused embeddings E, taken from the engine's
 * trace while it answers them) into dir/neighbors.npy and dir/search.npy. */
static mms_status dump_queries(mms_engine_t *e, const mms_index_t *ix, const mms_request_t *reqs,
                               int n, const char *dir) {
    const int per = 64, kd = ix->knn_dim, h2 = ix->emb_dim;
    float *kq = calloc((size_t)n * kd, sizeof *kq), *E = calloc((size_t)n * h2, sizeof *E);
    mms_request_t *rq = calloc((size_t)per, sizeof *rq);
    mms_response_t *rs = calloc((size_t)per, sizeof *rs);
    mms_status s = kq && E && rq && rs ? mms_mkdir_p(dir) : MMS_ERR_NOMEM;
    for (int i = 0; s == MMS_OK && i < n; i += per) {
        int m = n - i < per ? n - i : per;
        for (int j = 0; j < m; j++) {
            rq[j] = reqs[i + j];
            mms_response_init(&rs[j], &rq[j]);
            mms_response_reserve(&rs[j], rq[j].k, rq[j].tag_k);
        }
        mms_engine_trace_t tr = {.E = E + (size_t)i * h2, .kq = kq + (size_t)i * kd};
        s = mms_engine_answer(e, rq, NULL, m, rs, &tr);
        for (int j = 0; j < m; j++) mms_response_free(&rs[j]);
    }
    char path[4096];
    if (s == MMS_OK) {
        snprintf(path, sizeof path, "%s/neighbors.npy", dir);
        s = mms_npy_write(path, MMS_DT_F32, kq, (size_t)n, (size_t)kd);
    }
    if (s == MMS_OK) {
        snprintf(path, sizeof path, "%s/search.npy", dir);
        s = mms_npy_write(path, MMS_DT_F32, E, (size_t)n, (size_t)h2);
    }
    if (s == MMS_OK) printf("dumped %d queries' round vectors to %s (neighbors.npy, search.npy)\n", n, dir);
    free(kq), free(E), free(rq), free(rs);
    return s;
}

/* recall@RK of approx against ref (n queries): shared ids / ref ids. */
static double recall_at(const char **ref, const char **approx, int n) {
    int64_t hit = 0, tot = 0;
    for (int i = 0; i < n; i++)
        for (int a = 0; a < RK; a++) {
            const char *x = ref[(size_t)i * RK + a];
            if (!x) continue;
            tot++;
            for (int b = 0; b < RK; b++) {
                const char *y = approx[(size_t)i * RK + b];
                if (y && (y == x || !strcmp(x, y))) {
                    hit++;
                    break;
                }
            }
        }
    return tot ? (double)hit / (double)tot : 1.0;
}

static double batched_qps(mms_engine_t *e, const qset_t *qs, int batch, int *bad) {
    mms_response_t *resps = calloc((size_t)batch, sizeof *resps);
    run(e, qs->req, batch < qs->n ? batch : qs->n, resps); /* warm */
    double t = mms_now();
    for (int i = 0; i < qs->n; i += batch)
        *bad += run(e, qs->req + i, qs->n - i < batch ? qs->n - i : batch, resps);
    t = mms_now() - t;
    free(resps);
    return qs->n / t;
}

int main(int argc, char **argv) {
    mms_blas_fix_kernel(argv); /* before MPI and BLAS: the CPU's own kernels */
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    mms_log_init(rank, size, MMS_LOG_WARN);
    if (rank == 0) {
        char blas_[256];
        printf("# BLAS core %s\n", mms_blas_describe(blas_, sizeof blas_));
        FILE *la = fopen("/proc/loadavg", "r");
        char lbuf[128] = "";
        if (la && fgets(lbuf, sizeof lbuf, la)) printf("# load average %s", lbuf);
        if (la) fclose(la);
        fflush(stdout);
    }
    const char *index = NULL;
    int nsingle = 300, nbatch = 1024, batch = 64, float_scan = 0, serve_layout = 0;
    int nprobe = 0, exact = 0, approx = 0, int8_lists = 0, list_scan = 0;
    const char *list_scan_s = NULL;
    const char *dump_dir = NULL;
    const char *concept_s = "tags";
    mms_opt_t opts[] = {
        {"index", MMS_OPT_STR, &index, "index directory", 1, 0, 0, 0},
        {"queries", MMS_OPT_INT, &nsingle, "single queries timed", 0, 1, 1, 1e7},
        {"batch-queries", MMS_OPT_INT, &nbatch, "queries in the batched runs", 0, 1, 1, 1e7},
        {"batch", MMS_OPT_INT, &batch, "queries per engine call in the batched runs", 0, 1, 1, 65536},
        {"float-scan", MMS_OPT_FLAG, &float_scan, "float scans instead of the int8 filter", 0, 0, 0, 0},
        {"serve-layout", MMS_OPT_FLAG, &serve_layout, "rank 0 coordinates only (as mmsage serve)", 0, 0, 0, 0},
        {"concept", MMS_OPT_STR, &concept_s, "E_tags of the queries: tags (the paper's mean) or node", 0, 0, 0, 0},
        {"nprobe", MMS_OPT_INT, &nprobe, "inverted lists probed per query and round (0: the engine's default for the index size)", 0, 1, 0, 65536},
        {"exact", MMS_OPT_FLAG, &exact, "exact scans whatever the index size", 0, 0, 0, 0},
        {"int8-lists", MMS_OPT_FLAG, &int8_lists, "the same as --list-scan int8", 0, 0, 0, 0},
        {"list-scan", MMS_OPT_STR, &list_scan_s, MMS_ENGINE_LIST_SCAN_HELP, 0, 0, 0, 0},
        {"dump-queries", MMS_OPT_STR, &dump_dir, "write the timed fused queries' round vectors here (neighbors.npy, search.npy) for bench/peers_ann.py", 0, 0, 0, 0},
        {"approx", MMS_OPT_FLAG, &approx, "approximate search with the index's default nprobe whatever its size", 0, 0, 0, 0},
    };
    int help = 0;
    mms_status s = mms_opts_parse("bench_query", "Query latency and throughput of the engine.", opts,
                                  (int)(sizeof opts / sizeof opts[0]), argc - 1, argv + 1, &help);
    int concept = strcmp(concept_s, "node") == 0 ? MMS_CONCEPT_NODE : MMS_CONCEPT_TAGS;
    if (s == MMS_OK && !help && strcmp(concept_s, "node") && strcmp(concept_s, "tags")) {
        fprintf(stderr, "bench_query: --concept must be tags or node, got '%s'\n", concept_s);
        s = MMS_ERR_ARG;
    }
    if (s == MMS_OK && !help && mms_engine_list_scan_parse("list-scan", list_scan_s, int8_lists, &list_scan) != MMS_OK) {
        fprintf(stderr, "bench_query: %s\n", mms_error_message());
        s = MMS_ERR_ARG;
    }
    if (mms_mpi_agree(s, MPI_COMM_WORLD) != MMS_OK || help) {
        MPI_Finalize();
        return s == MMS_OK ? 0 : 1;
    }
    mms_engine_params_t ep;
    mms_engine_params_default(&ep);
    ep.index = index;
    ep.mode = serve_layout ? MMS_ENGINE_SERVE : MMS_ENGINE_SEARCH;
    ep.filter = !float_scan;
    ep.list_scan = list_scan;
    ep.nprobe = nprobe;
    ep.exact = exact ? 1 : approx ? -1 : 0;
    double t0 = MPI_Wtime();
    mms_engine_t *e = NULL;
    if (mms_engine_open(&ep, MPI_COMM_WORLD, &e) != MMS_OK) {
        MPI_Finalize();
        return 1;
    }
    double t_open = MPI_Wtime() - t0;
    if (rank != 0) {
        mms_engine_worker_loop(e);
        mms_engine_close(&e);
        MPI_Finalize();
        return 0;
    }
    const mms_index_t *ix = mms_engine_index(e);
    printf("bench_query: index %s: %lld images x %d-d embeddings, kNN space %d-d, %lld tags, %d "
           "shards on %d worker rank(s) (%s layout), %s, opened in %.2f s\n",
           ix->dir, (long long)ix->n_images, ix->emb_dim, ix->knn_dim, (long long)ix->n_tags,
           ix->shards, mms_engine_workers(e), serve_layout ? "serve" : "search",
           float_scan ? "float scans" : "int8 filter + exact re-rank", t_open);

    /* the floor: one pass over the float embeddings at the memcpy bandwidth */
    double bw = copy_bandwidth((size_t)256 << 20, 5);
    double emb_bytes = (double)ix->n_images * ix->emb_dim * 4;
    double vis_bytes = (double)ix->n_images * ix->knn_dim * 4;
    double q_bytes = float_scan ? emb_bytes + vis_bytes
                                : (double)ix->n_images * (ix->emb_dim + ix->knn_dim + 32);
    printf("memcpy bandwidth %.1f GB/s (256 MiB, best of 5)\n", bw / 1e9);
    printf("floor: one pass over the float embeddings (%.1f MB) %.2f ms; a fused query scans "
           "%.1f MB (%s) = %.2f ms at that bandwidth, over %d worker rank(s)\n",
           emb_bytes / 1e6, emb_bytes / bw * 1e3, q_bytes / 1e6,
           float_scan ? "float emb + vis" : "int8 emb + vis + per-row bounds", q_bytes / bw * 1e3,
           mms_engine_workers(e));

    qset_t fused, tags_only;
    int dump_failed = 0;
    make_queries(ix, nsingle > nbatch ? nsingle : nbatch, 1, concept, &fused);
    make_queries(ix, nbatch, 0, concept, &tags_only);
    if (dump_dir && dump_queries(e, ix, fused.req, nsingle, dump_dir) != MMS_OK) {
        fprintf(stderr, "bench_query: --dump-queries %s: %s\n", dump_dir, mms_error_message());
        dump_failed = 1;
    }
    printf("queries: E_tags = %s\n", concept == MMS_CONCEPT_NODE ? "a new node connected to the tags (concept node)"
                                                                  : "mean of the tags' stored embeddings (the paper's)");
    mms_response_t resp;
    int bad = 0;
    {
        int32_t np = mms_engine_nprobe(e, NULL);
        printf("search path: %s (index nlist %d)\n",
               np > 0 ? (list_scan == MMS_LIST_SCAN_INT8 ? "approximate (IVF; lists scanned with the int8 filter)"
                         : list_scan == MMS_LIST_SCAN_CODES4
                             ? "approximate (IVF; lists scanned from 4-bit codes, float re-rank)"
                             : "approximate (IVF; lists scanned from the 4-bit codes with a float re-rank when they pay, else with the int8 filter)")
                      : "exact",
               ix->ivf_nlist);
        /* what a row costs in memory on rank 0 (its shards' int8 copies, bounds,
         * lists and codes; the float rows are mapped, read only to re-rank) */
        size_t qb = 0;
        int64_t rows0 = 0;
        for (int si = 0; si < ix->nshard; si++) {
            qb += mms_qmat_bytes(ix->sh[si].qemb) + mms_qmat_bytes(ix->sh[si].qvis);
            rows0 += ix->sh[si].n;
        }
        if (rows0 > 0)
            printf("resident scan structures on rank 0: %.1f MB for %lld rows, %.0f bytes per image\n",
                   (double)qb / 1e6, (long long)rows0, (double)qb / (double)rows0);
        if (np > 0) printf("nprobe %d of %d lists per round\n", np, ix->ivf_nlist);
        /* recall of the timed path against the exact path, end to end */
        const char **ref = calloc((size_t)nbatch * RK, sizeof *ref);
        const char **got = calloc((size_t)nbatch * RK, sizeof *got);
        int nr = nsingle > nbatch ? nbatch : nsingle;
        bad += collect(e, fused.req, nr, 64, 1, ref);
        bad += collect(e, fused.req, nr, 64, 0, got);
        double rf = recall_at(ref, got, nr);
        bad += collect(e, tags_only.req, nbatch, 64, 1, ref);
        bad += collect(e, tags_only.req, nbatch, 64, 0, got);
        double rt = recall_at(ref, got, nbatch);
        printf("recall@%d against the exact path: fused image+tags %.4f (%d queries, both rounds), "
               "tags-only %.4f (%d queries, search round)\n", RK, rf, nr, rt, nbatch);
        free(ref);
        free(got);
    }
    for (int i = 0; i < 20; i++) bad += run(e, &fused.req[i % fused.n], 1, &resp); /* warm up */
    double *lat = malloc((size_t)nsingle * sizeof(double));
    double stage[4] = {0, 0, 0, 0};
    mms_qscan_stats_t q0, q1;
    mms_engine_stats_t st;
    mms_engine_stats(e, &st);
    q0 = st.local;
    double cpu0 = cpu_seconds();
    for (int i = 0; i < nsingle; i++) {
        double t = mms_now();
        bad += run(e, &fused.req[i], 1, &resp);
        lat[i] = mms_now() - t;
        mms_engine_stats(e, &st);
        stage[0] += st.prepare;
        stage[1] += st.neighbors;
        stage[2] += st.embed;
        stage[3] += st.search;
    }
    double cpu1 = cpu_seconds();
    mms_engine_stats(e, &st);
    q1 = st.local;
    double mean = 0;
    for (int i = 0; i < nsingle; i++) mean += lat[i];
    mean /= nsingle;
    qsort(lat, (size_t)nsingle, sizeof *lat, cmp_d);
    printf("single fused image+tags query (%d queries, neighbors 5, k 10): p50 %.3f ms, p99 %.3f "
           "ms, mean %.3f ms; stages (mean) prepare %.3f, neighbors %.3f, embed %.3f, search %.3f ms\n",
           nsingle, lat[nsingle / 2] * 1e3, lat[(int)(nsingle * 0.99)] * 1e3, mean * 1e3,
           stage[0] / nsingle * 1e3, stage[1] / nsingle * 1e3, stage[2] / nsingle * 1e3,
           stage[3] / nsingle * 1e3);
    printf("rank 0 CPU per single query: %.3f ms (user + system; it coordinates and scans its "
           "shards; less sensitive to a loaded machine than the wall-clock latency)\n",
           (cpu1 - cpu0) / nsingle * 1e3);
    if (q1.rows_scanned > q0.rows_scanned && !float_scan)
        printf("rank 0's shard scans: %.0f candidates re-ranked per 100k rows scanned\n",
               1e5 * (double)(q1.reranked - q0.reranked) / (double)(q1.rows_scanned - q0.rows_scanned));
    if (q1.list_scans > q0.list_scans)
        printf("rank 0's list scans in the single queries: %lld of %lld from the 4-bit codes\n",
               (long long)(q1.codes4_scans - q0.codes4_scans), (long long)(q1.list_scans - q0.list_scans));
    fused.n = nbatch;
    int bsizes[3] = {1, batch, nbatch};
    for (int b = 0; b < 3; b++) {
        if (b > 0 && bsizes[b] == bsizes[b - 1]) continue;
        double qps = batched_qps(e, &fused, bsizes[b], &bad);
        double qps_t = batched_qps(e, &tags_only, bsizes[b], &bad);
        printf("batched, %d per call (%d queries): fused image+tags %.0f queries/s; tags-only "
               "(search round only) %.0f queries/s\n", bsizes[b], nbatch, qps, qps_t);
    }
    if (bad) printf("WARNING: %d queries failed\n", bad);
    mms_engine_stop(e);
    mms_engine_close(&e);
    free(lat);
    free(fused.req);
    free(fused.tags);
    free(tags_only.req);
    free(tags_only.tags);
    MPI_Finalize();
    return dump_failed ? 1 : 0;
}
