/* bench_sage.c: throughput of one GraphSAGE training step in one process
 * (sample + plan, forward, loss, backward, Adam on the parameter block and the
 * touched tag rows), on synthetic graphs shaped like
 *   corel  4,500 images, 499-d binary sparse features (~8 ones), 374 tags,
 *          ~5 image neighbours and ~3.5 tags per image
 *   100k   100,000 images, 512-d dense features, 1,000 tags, same degrees
 * with batches of 512 pairs + 20 negatives, dropout 0.2, H 128, s1 25, s2 10.
 * Prints pairs/s, the time per phase, GFLOP/s of the step's GEMM + sparse work,
 * and the cblas_sgemm rate on the step's typical shape and on a square matrix.
 * Results to stdout; nothing is asserted.
 *
 * usage: bench_sage [corel|100k|all] [steps] [auto|transform|average|img-average|tag-average] [dropout]
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include <cblas.h>

#include "mms_blas.h"
#include "adam.h"
#include "mms_log.h"
#include "mms_rng.h"
#include "sage.h"

typedef struct {
    const char *name;
    int64_t n_img, n_tag;
    int32_t dim;
    int sparse;
    int64_t *indptr, *indices;
    mms_csr_t adj;
    float *x;               /* dense features (100k) */
    mms_sage_sparse_t *sp;  /* sparse features (corel) */
    int64_t *ends;          /* edge endpoints (for degree-proportional draws) */
    int64_t n_ends;
} bgraph_t;

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Undirected graph: each image links to ~2.5 random images (mean image degree
 * ~5) and 1..6 tags (mean 3.5) drawn from a skewed (Zipf-like) popularity; then
 * lists are de-duplicated and capped at 100 (a deterministic subset, as the
 * graph builder's capped adjacency). */
static int make_graph(bgraph_t *g, const char *name, int64_t n_img, int64_t n_tag, int32_t dim,
                      int sparse) {
    memset(g, 0, sizeof *g);
    g->name = name;
    g->n_img = n_img;
    g->n_tag = n_tag;
    g->dim = dim;
    g->sparse = sparse;
    int64_t n = n_img + n_tag, cap_e = n_img * 16;
    int64_t *eu = malloc(cap_e * sizeof(int64_t)), *ev = malloc(cap_e * sizeof(int64_t)), ne = 0;
    mms_rng_t r;
    mms_rng_init(&r, 2024, MMS_STREAM_SYNTH, (uint64_t)n_img);
    for (int64_t i = 0; i < n_img; i++) {
        int ki = 2 + (mms_rng_uniform(&r) < 0.5);
        for (int e = 0; e < ki; e++) {
            int64_t j = (int64_t)mms_rng_below64(&r, (uint64_t)n_img);
            if (j == i) continue;
            eu[ne] = i, ev[ne++] = j;
        }
        int kt = 1 + (int)mms_rng_below(&r, 6);
        for (int e = 0; e < kt; e++) {
            double u = mms_rng_uniform(&r);
            int64_t t = (int64_t)(pow(u, 2.0) * (double)n_tag); /* skewed popularity */
            if (t >= n_tag) t = n_tag - 1;
            eu[ne] = i, ev[ne++] = n_img + t;
        }
    }
    int64_t *deg = calloc((size_t)n + 1, sizeof(int64_t));
    for (int64_t e = 0; e < ne; e++) deg[eu[e]]++, deg[ev[e]]++;
    int64_t *ptr = malloc(((size_t)n + 1) * sizeof(int64_t)), *fill = calloc((size_t)n, sizeof(int64_t));
    ptr[0] = 0;
    for (int64_t v = 0; v < n; v++) ptr[v + 1] = ptr[v] + deg[v];
    int64_t *all = malloc((size_t)ptr[n] * sizeof(int64_t));
    for (int64_t e = 0; e < ne; e++) {
        all[ptr[eu[e]] + fill[eu[e]]++] = ev[e];
        all[ptr[ev[e]] + fill[ev[e]]++] = eu[e];
    }
    g->indptr = malloc(((size_t)n + 1) * sizeof(int64_t));
    g->indices = malloc((size_t)ptr[n] * sizeof(int64_t));
    g->ends = malloc((size_t)ptr[n] * sizeof(int64_t));
    int64_t p = 0;
    for (int64_t v = 0; v < n; v++) {
        g->indptr[v] = p;
        int64_t *l = all + ptr[v], d = ptr[v + 1] - ptr[v], k = 0;
        qsort(l, (size_t)d, sizeof(int64_t), cmp64);
        for (int64_t i = 0; i < d; i++)
            if (i == 0 || l[i] != l[i - 1]) l[k++] = l[i];
        for (int64_t i = k - 1; i > 0 && k > 100; i--) { /* shuffle before capping */
            int64_t j = (int64_t)mms_rng_below64(&r, (uint64_t)(i + 1)), t = l[i];
            l[i] = l[j], l[j] = t;
        }
        if (k > 100) k = 100;
        for (int64_t i = 0; i < k; i++) g->indices[p] = l[i], g->ends[p++] = v;
    }
    g->indptr[n] = p;
    g->n_ends = p;
    g->adj = (mms_csr_t){n, g->indptr, g->indices, NULL};
    free(eu), free(ev), free(deg), free(ptr), free(fill), free(all);

    if (sparse) { /* ~8 ones per row out of dim, built directly as CSR */
        mms_sage_sparse_t *s = calloc(1, sizeof *s);
        s->n = n_img, s->dim = dim;
        s->indptr = malloc(((size_t)n_img + 1) * sizeof(int64_t));
        s->indices = malloc((size_t)n_img * 16 * sizeof(int32_t));
        int64_t q = 0;
        for (int64_t i = 0; i < n_img; i++) {
            s->indptr[i] = q;
            int k = 6 + (int)mms_rng_below(&r, 5); /* 6..10 */
            int32_t cols[16];
            for (int e = 0; e < k; e++) cols[e] = (int32_t)mms_rng_below(&r, (uint32_t)dim);
            for (int a = 1; a < k; a++) /* insertion sort + dedupe */
                for (int b = a; b > 0 && cols[b - 1] > cols[b]; b--) {
                    int32_t t = cols[b];
                    cols[b] = cols[b - 1], cols[b - 1] = t;
                }
            for (int e = 0; e < k; e++)
                if (e == 0 || cols[e] != cols[e - 1]) s->indices[q++] = cols[e];
        }
        s->indptr[n_img] = q;
        s->nnz = q;
        s->values = NULL;
        g->sp = s;
    } else {
        g->x = malloc((size_t)n_img * dim * sizeof(float));
        for (size_t i = 0; i < (size_t)n_img * dim; i++) /* uniform: cheap to draw */
            g->x[i] = (mms_rng_uniformf(&r) - 0.5f) * 0.2f;
    }
    return 0;
}

static void free_graph(bgraph_t *g) {
    free(g->indptr), free(g->indices), free(g->ends), free(g->x);
    if (g->sp) {
        free(g->sp->indptr), free(g->sp->indices), free(g->sp);
    }
}

static double sgemm_rate(int M, int N, int K, int reps) {
    float *A = calloc((size_t)M * K, sizeof(float)), *B = calloc((size_t)K * N, sizeof(float));
    float *C = calloc((size_t)M * N, sizeof(float));
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)K * N; i++) B[i] = (float)(i % 5) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, B, N, 0, C, N);
    double t0 = mms_now();
    for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, B, N, 0, C, N);
    double dt = mms_now() - t0;
    free(A), free(B), free(C);
    return 2.0 * M * N * K * reps / dt / 1e9;
}

/* CPU seconds of this process: on a shared, loaded machine the wall-clock rate
 * understates what one dedicated core does; both are printed. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void loadavg(char *buf, size_t n) {
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = 0;
    if (f) {
        if (!fgets(buf, (int)n, f)) buf[0] = 0;
        fclose(f);
        char *nl = strchr(buf, '\n');
        if (nl) *nl = 0;
    }
}

static float g_dropout = 0.2f;

static int run(bgraph_t *g, int steps, int h2_mode) {
    const int B = 512, Q = 20;
    mms_sage_config_t cfg;
    mms_sage_config_default(&cfg);
    cfg.dim = g->dim;
    cfg.h2_mode = h2_mode;
    cfg.dropout = g_dropout;
    int64_t n = g->n_img + g->n_tag;
    mms_sage_model_t *m = NULL;
    mms_sage_batch_t *b = NULL;
    mms_sage_grad_t *gr = NULL;
    mms_adam_t *opt = NULL, *topt = NULL;
    mms_adam_config_t ac;
    mms_adam_config_default(&ac);
    if (mms_sage_model_create(&cfg, g->n_tag, &m) || mms_sage_batch_create(&cfg, n, g->n_tag, &b) ||
        mms_sage_grad_create(&cfg, g->n_tag, &gr) || mms_adam_create(&ac, m->n_params, &opt) ||
        mms_adam_create(&ac, (size_t)g->n_tag * g->dim, &topt))
        return 1;
    mms_sage_nodes_t nodes = {n, NULL, g->n_img, g->dim, g->x, NULL, NULL, NULL};
    if (g->sp) mms_sage_nodes_use_sparse(&nodes, g->sp);
    int32_t *tg = malloc((2 * B + Q) * sizeof(int32_t));
    float *z = malloc((size_t)(2 * B + Q) * 2 * cfg.hidden * sizeof(float));
    float *dz = malloc((size_t)(2 * B + Q) * 2 * cfg.hidden * sizeof(float));
    float *work = malloc(mms_sage_loss_work(B, Q, 2 * cfg.hidden) * sizeof(float));
    int32_t ia[512], ib[512], in[20];
    mms_rng_t r;
    mms_rng_init(&r, 77, MMS_STREAM_WALK, 0);
    double tp[6] = {0}, flops = 0, loss = 0, t_all = 0, cpu_all = 0;
    int warm = 2;
    int64_t sum_nT = 0, sum_n1 = 0, sum_n2 = 0, sum_l2 = 0, sum_touch = 0;
    int strat_a[2] = {0, 0};
    for (int s = 0; s < steps + warm; s++) {
        /* pairs: a node and a neighbour (as a walk of length 1 would give);
         * negatives proportional to degree */
        for (int i = 0; i < B; i++) {
            int64_t e = (int64_t)mms_rng_below64(&r, (uint64_t)g->n_ends);
            tg[i] = (int32_t)g->ends[e];
            tg[B + i] = (int32_t)g->indices[e];
        }
        for (int j = 0; j < Q; j++)
            tg[2 * B + j] = (int32_t)g->ends[mms_rng_below64(&r, (uint64_t)g->n_ends)];
        double c0 = cpu_now(), t0 = mms_now();
        if (mms_sage_batch_build(b, &g->adj, &nodes, (uint64_t)s, tg, 2 * B + Q)) return 1;
        double t1 = mms_now();
        if (mms_sage_forward(b, m, &nodes, 1, z)) return 1;
        double t2 = mms_now();
        for (int i = 0; i < B; i++) ia[i] = b->in_row[i], ib[i] = b->in_row[B + i];
        for (int j = 0; j < Q; j++) in[j] = b->in_row[2 * B + j];
        if (mms_sage_loss(z, b->nT, 2 * cfg.hidden, B, ia, ib, Q, in, work, &loss, dz)) return 1;
        double t3 = mms_now();
        if (mms_sage_backward(b, m, &nodes, dz, gr)) return 1;
        double t4 = mms_now();
        if (mms_adam_step(opt, m->params, gr->dparams)) return 1;
        if (mms_adam_step_rows(topt, m->tags, g->dim, gr->rows, gr->n_rows, gr->drows)) return 1;
        double t5 = mms_now(), c5 = cpu_now();
        if (s < warm) continue;
        cpu_all += c5 - c0;
        tp[0] += t1 - t0, tp[1] += t2 - t1, tp[2] += t3 - t2, tp[3] += t4 - t3, tp[4] += t5 - t4;
        t_all += t5 - t0;
        flops += b->flops_fwd + b->flops_bwd;
        sum_nT += b->nT, sum_n1 += b->n1, sum_n2 += b->n2, sum_l2 += b->l2_ptr[b->n1];
        sum_touch += b->n_touch;
        strat_a[0] += b->h2_img_a, strat_a[1] += b->h2_tag_a;
    }
    char la[128];
    loadavg(la, sizeof la);
    const char *mode_name[] = {"auto", "transform", "average", "img-average", "tag-average"};
    printf("%s  mode %-11s  %.0f pairs/s wall, %.0f pairs/s per CPU-second  step %.1f ms"
           "  [plan %.1f fwd %.1f loss %.1f bwd %.1f adam %.1f ms]"
           "  %.2f GFLOP/step %.1f GFLOP/s (fwd+bwd, wall)  loss %.3f\n",
           g->name, mode_name[h2_mode], B * steps / t_all, B * steps / cpu_all, 1e3 * t_all / steps,
           1e3 * tp[0] / steps, 1e3 * tp[1] / steps, 1e3 * tp[2] / steps, 1e3 * tp[3] / steps,
           1e3 * tp[4] / steps, flops / steps / 1e9, flops / (tp[1] + tp[3]) / 1e9, loss);
    printf("    per step: %lld distinct targets, %lld hop-1, %lld hop-2 (%lld list entries), %lld tags touched;"
           " strategy (a) images %d/%d tags %d/%d; loadavg %s\n",
           (long long)(sum_nT / steps), (long long)(sum_n1 / steps), (long long)(sum_n2 / steps),
           (long long)(sum_l2 / steps), (long long)(sum_touch / steps), strat_a[0], steps,
           strat_a[1], steps, la);
    fflush(stdout);
    free(tg), free(z), free(dz), free(work);
    mms_adam_destroy(&opt);
    mms_adam_destroy(&topt);
    mms_sage_grad_destroy(&gr);
    mms_sage_batch_destroy(&b);
    mms_sage_model_destroy(&m);
    return 0;
}

int main(int argc, char **argv) {
    mms_blas_fix_kernel(argv);
    mms_log_init(0, 1, MMS_LOG_WARN);
    {
        char blas_[256];
        printf("# BLAS core %s\n", mms_blas_describe(blas_, sizeof blas_));
        fflush(stdout);
    }
    openblas_set_num_threads(1);
    const char *which = argc > 1 ? argv[1] : "all";
    int steps = argc > 2 ? atoi(argv[2]) : 0;
    int mode = -1;
    if (argc > 3) {
        const char *names[] = {"auto", "transform", "average", "img-average", "tag-average"};
        for (int i = 0; i < 5; i++)
            if (!strcmp(argv[3], names[i])) mode = i;
        if (mode < 0) {
            fprintf(stderr, "usage: bench_sage [corel|100k|all] [steps] "
                            "[auto|transform|average|img-average|tag-average] [dropout]\n");
            return 2;
        }
    }
    if (argc > 4) g_dropout = (float)atof(argv[4]);
    char la[128];
    loadavg(la, sizeof la);
    printf("cblas_sgemm 1 thread: step shape 8192x128x512 %.1f GFLOP/s, 1024^3 %.1f GFLOP/s (loadavg %s)\n",
           sgemm_rate(8192, 128, 512, 10), sgemm_rate(1024, 1024, 1024, 3), la);
    fflush(stdout);
    int rc = 0;
    if (!strcmp(which, "corel") || !strcmp(which, "all")) {
        bgraph_t g;
        make_graph(&g, "corel5k-like", 4500, 374, 499, 1);
        int s = steps ? steps : 40;
        if (mode >= 0)
            rc |= run(&g, s, mode);
        else
            for (int md = 0; md <= 2; md++) rc |= run(&g, s, md);
        free_graph(&g);
    }
    if (!strcmp(which, "100k") || !strcmp(which, "all")) {
        bgraph_t g;
        make_graph(&g, "100k-dense  ", 100000, 1000, 512, 0);
        int s = steps ? steps : 8;
        if (mode >= 0)
            rc |= run(&g, s, mode);
        else {
            rc |= run(&g, s, MMS_SAGE_H2_AUTO);
            rc |= run(&g, s, MMS_SAGE_H2_TRANSFORM);
            rc |= run(&g, s, MMS_SAGE_H2_AVERAGE);
        }
        free_graph(&g);
    }
    return rc;
}
