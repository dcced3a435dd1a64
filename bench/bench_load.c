/* bench_load.c: the query server under load, over TCP, bounded in time.
 *
 *   mpirun -np P+1 bench_load --index I [--duration 30] [--clients 8,32]
 *                             [--big-batch 256] [--big-k 10000] [--k 10]
 *                             [--round-cost C] [--max-batch B]
 *
 * Rank 0 runs the network loop of `mmsage serve` (coordinator/netserver.h)
 * over the engine in the serve layout (ranks 1..P hold the shards) on an
 * ephemeral loopback port, in its main thread (the only one that calls MPI);
 * client threads of the same process talk to it through real sockets with
 * coordinator/netclient.h. For each client count N it runs two phases of
 * --duration seconds each:
 *   steady  N clients, each one request in flight (send, wait, send the next):
 *           fused image + tags searches (visual 0.5, k --k) from the catalog's
 *           test images; p50 / p99 / max latency, QPS, errors;
 *   + big   the same N clients while one more client sends --big-batch
 *           pipelined searches of k = --big-k, reads the answers, and starts
 *           again (issue 12 item 6): the N clients' latencies show what one
 *           large batch costs everyone else; the big client's batches and
 *           errors are reported too.
 * Every request must be answered without error (an error or a timeout counts;
 * the count is printed, and the exit status is 1 when it is not 0). The
 * clients share the machine with the server: on a small machine the numbers
 * include that contention. Numbers go to stdout; nothing else is asserted.
 */
#define _GNU_SOURCE
#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "mms_blas.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_opts.h"
#include "netclient.h"
#include "netserver.h"

#define CLIENT_TIMEOUT 120.0 /* seconds without an answer before a request counts as an error */

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- the server side (rank 0's main thread) -------------------------------- */

typedef struct {
    mms_engine_t *engine;
    uint8_t *connect;
    int cap;
} srv_ctx_t;

/* cmd_serve.c's handler: one engine pass per poll round. */
static mms_status handle(void *ctx, const mms_request_t *reqs, int n, mms_response_t *resps) {
    srv_ctx_t *c = ctx;
    if (n > c->cap) {
        uint8_t *p = realloc(c->connect, (size_t)n);
        MMS_CHECK(p, MMS_ERR_NOMEM, "bench_load: out of memory");
        c->connect = p;
        c->cap = n;
    }
    for (int i = 0; i < n; i++) c->connect[i] = (uint8_t)reqs[i].connect;
    return mms_engine_answer(c->engine, reqs, c->connect, n, resps, NULL);
}

/* ---- the queries ------------------------------------------------------------ */

typedef struct {
    mms_request_t *req; /* n fused queries (image + up to 8 tags) */
    const char **tags;
    int n;
} qset_t;

static void make_queries(const mms_index_t *ix, int n, int k, qset_t *qs) {
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
        int64_t r = rows[(i * 7919) % nr];
        mms_request_t *q = &qs->req[i];
        mms_request_init(q);
        q->image = c->x + (size_t)r * c->dim;
        q->image_dim = c->dim;
        if (c->knn_x && ix->knn_separate) {
            q->image_knn = c->knn_x + (size_t)r * c->knn_dim;
            q->image_knn_dim = c->knn_dim;
        }
        int nt = 0;
        for (int64_t e = c->tag_ptr[r]; e < c->tag_ptr[r + 1] && nt < 8; e++)
            qs->tags[(size_t)i * 8 + nt++] = c->tag_names[c->tag_idx[e]];
        q->tags = qs->tags + (size_t)i * 8;
        q->ntags = nt;
        q->visual = 0.5f;
        q->visual_given = 1;
        q->k = k;
    }
    free(rows);
}

/* ---- the clients (threads without MPI) -------------------------------------- */

typedef struct {
    const char *addr;
    const qset_t *qs;
    int first;             /* index of its first query */
    _Atomic int *stop;
    double *lat;           /* latencies, seconds */
    size_t nlat, cap;
    long errors;
    char first_error[256];
} small_t;

static void note_error(char *dst, size_t cap, const char *what) {
    if (!dst[0]) snprintf(dst, cap, "%s", what);
}

/* One request in flight at a time until *stop. */
static void *small_main(void *arg) {
    small_t *s = arg;
    mms_netclient_t *c = NULL;
    if (mms_netclient_connect(s->addr, 10.0, &c) != MMS_OK) {
        s->errors++;
        note_error(s->first_error, sizeof s->first_error, mms_error_message());
        return NULL;
    }
    for (int i = s->first; !*s->stop; i++) {
        mms_request_t q = s->qs->req[i % s->qs->n];
        q.id = (uint64_t)i + 1;
        mms_response_t r;
        double t = mms_now();
        mms_status st = mms_netclient_call(c, &q, &r, CLIENT_TIMEOUT);
        t = mms_now() - t;
        if (st != MMS_OK) {
            s->errors++;
            note_error(s->first_error, sizeof s->first_error, mms_error_message());
            break; /* the connection is in an unknown state */
        }
        if (!r.ok || r.id != q.id) {
            s->errors++;
            note_error(s->first_error, sizeof s->first_error, r.error_message);
        }
        mms_response_free(&r);
        if (s->nlat == s->cap) {
            size_t nc = s->cap ? 2 * s->cap : 4096;
            double *p = realloc(s->lat, nc * sizeof *p);
            if (!p) break;
            s->lat = p;
            s->cap = nc;
        }
        s->lat[s->nlat++] = t;
    }
    mms_netclient_close(&c);
    return NULL;
}

typedef struct {
    const char *addr;
    const qset_t *qs; /* k = --big-k */
    int batch;
    _Atomic int *stop;
    long batches, answers, errors;
    double batch_time_max, batch_time_sum;
    char first_error[256];
} big_t;

/* --batch pipelined requests sent at once, every answer read, again. */
static void *big_main(void *arg) {
    big_t *b = arg;
    mms_netclient_t *c = NULL;
    if (mms_netclient_connect(b->addr, 10.0, &c) != MMS_OK) {
        b->errors++;
        note_error(b->first_error, sizeof b->first_error, mms_error_message());
        return NULL;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    uint64_t id = 0;
    while (!*b->stop) {
        sb.size = 0;
        for (int i = 0; i < b->batch; i++) {
            mms_request_t q = b->qs->req[i % b->qs->n];
            q.id = id + (uint64_t)i + 1;
            if (mms_request_encode(&q, &sb) != MMS_OK) b->errors++;
        }
        double t = mms_now();
        if (mms_netclient_send_raw(c, sb.data, sb.size, CLIENT_TIMEOUT) != MMS_OK) {
            b->errors++;
            note_error(b->first_error, sizeof b->first_error, mms_error_message());
            break;
        }
        int broken = 0;
        for (int i = 0; i < b->batch; i++) {
            mms_response_t r;
            if (mms_netclient_recv(c, &r, CLIENT_TIMEOUT) != MMS_OK) {
                b->errors += b->batch - i;
                note_error(b->first_error, sizeof b->first_error, mms_error_message());
                broken = 1;
                break;
            }
            if (!r.ok || r.id != id + (uint64_t)i + 1) {
                b->errors++;
                note_error(b->first_error, sizeof b->first_error, r.error_message);
            }
            b->answers++;
            mms_response_free(&r);
        }
        if (broken) break;
        t = mms_now() - t;
        id += (uint64_t)b->batch;
        b->batches++;
        b->batch_time_sum += t;
        if (t > b->batch_time_max) b->batch_time_max = t;
    }
    msgpack_sbuffer_destroy(&sb);
    mms_netclient_close(&c);
    return NULL;
}

/* ---- the driver (a thread; stops the server when done) ---------------------- */

typedef struct {
    mms_netserver_t *srv;
    char addr[64];
    const qset_t *small, *big;
    int nclients_list[8], nlist;
    double duration;
    int big_batch;
    long total_errors;
} driver_t;

static void run_phase(driver_t *d, int n, int with_big) {
    _Atomic int stop = 0;
    small_t *s = calloc((size_t)n, sizeof *s);
    pthread_t *th = calloc((size_t)n, sizeof *th), bth;
    big_t b;
    memset(&b, 0, sizeof b);
    b.addr = d->addr;
    b.qs = d->big;
    b.batch = d->big_batch;
    b.stop = &stop;
    double t0 = mms_now();
    if (with_big) pthread_create(&bth, NULL, big_main, &b);
    for (int i = 0; i < n; i++) {
        s[i].addr = d->addr;
        s[i].qs = d->small;
        s[i].first = i * 1000;
        s[i].stop = &stop;
        pthread_create(&th[i], NULL, small_main, &s[i]);
    }
    while (mms_now() - t0 < d->duration) usleep(50000);
    stop = 1;
    size_t nall = 0;
    long errors = 0;
    const char *why = "";
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        nall += s[i].nlat;
        errors += s[i].errors;
        if (!why[0] && s[i].first_error[0]) why = s[i].first_error;
    }
    double elapsed = mms_now() - t0;
    if (with_big) pthread_join(bth, NULL);
    double *all = malloc((nall ? nall : 1) * sizeof *all);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(all + at, s[i].lat, s[i].nlat * sizeof *all);
        at += s[i].nlat;
    }
    qsort(all, nall, sizeof *all, cmp_d);
    double p50 = nall ? all[nall / 2] : 0, p99 = nall ? all[(size_t)(0.99 * (double)(nall - 1))] : 0;
    double mx = nall ? all[nall - 1] : 0;
    printf("%-6d %-5s %8zu %9.1f %9.2f %9.2f %9.2f %7ld", n, with_big ? "+big" : "-", nall,
           (double)nall / elapsed, p50 * 1e3, p99 * 1e3, mx * 1e3, errors);
    if (with_big)
        printf("   big: %ld batches of %d (%ld answers), batch %.2f s mean / %.2f s max, %ld errors",
               b.batches, d->big_batch, b.answers, b.batches ? b.batch_time_sum / (double)b.batches : 0,
               b.batch_time_max, b.errors);
    printf("\n");
    if (why[0]) printf("   first error of the small clients: %s\n", why);
    if (b.first_error[0]) printf("   first error of the big client: %s\n", b.first_error);
    fflush(stdout);
    d->total_errors += errors + b.errors;
    for (int i = 0; i < n; i++) free(s[i].lat);
    free(all);
    free(s);
    free(th);
}

static void *driver_main(void *arg) {
    driver_t *d = arg;
    /* warm: every page of the index touched once by the engine */
    mms_netclient_t *c = NULL;
    if (mms_netclient_connect(d->addr, 10.0, &c) == MMS_OK) {
        for (int i = 0; i < 32; i++) {
            mms_response_t r;
            if (mms_netclient_call(c, &d->small->req[i % d->small->n], &r, CLIENT_TIMEOUT) ==
                MMS_OK)
                mms_response_free(&r);
        }
        mms_netclient_close(&c);
    }
    printf("%-6s %-5s %8s %9s %9s %9s %9s %7s\n", "clients", "big", "answers", "QPS", "p50_ms",
           "p99_ms", "max_ms", "errors");
    for (int i = 0; i < d->nlist; i++) {
        run_phase(d, d->nclients_list[i], 0);
        run_phase(d, d->nclients_list[i], 1);
    }
    mms_netserver_stop(d->srv);
    return NULL;
}

int main(int argc, char **argv) {
    mms_blas_fix_kernel(argv); /* before MPI and BLAS: the CPU's own kernels */
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    mms_log_init(rank, size, MMS_LOG_WARN);
    if (rank == 0) {
        char blas_[256];
        printf("# BLAS core %s\n", mms_blas_describe(blas_, sizeof blas_));
        fflush(stdout);
    }
    const char *index = NULL, *clients_s = "8,32";
    double duration = 30;
    int big_batch = 256, big_k = MMS_PROTO_K_MAX, k = 10, max_batch = 256;
    int64_t round_cost = MMS_NETSERVER_ROUND_COST_DEFAULT;
    mms_opt_t opts[] = {
        {"index", MMS_OPT_STR, &index, "index directory", 1, 0, 0, 0},
        {"duration", MMS_OPT_DOUBLE, &duration, "seconds per phase", 0, 1, 0.1, 86400},
        {"clients", MMS_OPT_STR, &clients_s, "comma-separated client counts, one pair of phases each", 0, 0, 0, 0},
        {"k", MMS_OPT_INT, &k, "results per query of the steady clients", 0, 1, 1, MMS_PROTO_K_MAX},
        {"big-batch", MMS_OPT_INT, &big_batch, "pipelined requests of the big client", 0, 1, 1, 65536},
        {"big-k", MMS_OPT_INT, &big_k, "results per request of the big client", 0, 1, 1, MMS_PROTO_K_MAX},
        {"round-cost", MMS_OPT_INT64, &round_cost, "the server's cost budget per round (serve --round-cost)", 0, 1, 1, 1e12},
        {"max-batch", MMS_OPT_INT, &max_batch, "the server's requests per round (serve --max-batch)", 0, 1, 1, 65536},
    };
    int help = 0;
    mms_status s = mms_opts_parse("bench_load", "The query server under load over TCP.", opts,
                                  (int)(sizeof opts / sizeof opts[0]), argc - 1, argv + 1, &help);
    driver_t d;
    memset(&d, 0, sizeof d);
    d.duration = duration;
    d.big_batch = big_batch;
    if (s == MMS_OK && !help) {
        char *dup = strdup(clients_s), *save = NULL;
        for (char *t = strtok_r(dup, ",", &save); t && d.nlist < 8; t = strtok_r(NULL, ",", &save))
            if (atoi(t) > 0) d.nclients_list[d.nlist++] = atoi(t);
        free(dup);
        if (d.nlist == 0) {
            fprintf(stderr, "bench_load: --clients '%s' names no client count\n", clients_s);
            s = MMS_ERR_ARG;
        }
    }
    if (s == MMS_OK && !help && size < 2) {
        fprintf(stderr, "bench_load: needs at least 2 ranks (rank 0 serves, ranks 1.. hold shards)\n");
        s = MMS_ERR_ARG;
    }
    if (mms_mpi_agree(s, MPI_COMM_WORLD) != MMS_OK || help) {
        MPI_Finalize();
        return s == MMS_OK ? 0 : 1;
    }
    mms_engine_params_t ep;
    mms_engine_params_default(&ep);
    ep.index = index;
    ep.mode = MMS_ENGINE_SERVE;
    ep.filter = 1;
    double t0 = MPI_Wtime();
    mms_engine_t *e = NULL;
    if (mms_engine_open(&ep, MPI_COMM_WORLD, &e) != MMS_OK) {
        MPI_Finalize();
        return 1;
    }
    if (rank != 0) {
        mms_engine_worker_loop(e);
        mms_engine_close(&e);
        MPI_Finalize();
        return 0;
    }
    const mms_index_t *ix = mms_engine_index(e);
    qset_t small, big;
    make_queries(ix, 4096, k, &small);
    make_queries(ix, big_batch, big_k, &big);
    srv_ctx_t ctx = {.engine = e};
    mms_netserver_config_t nc;
    mms_netserver_config_default(&nc);
    nc.port = 0;
    nc.max_round_cost = (uint64_t)round_cost;
    nc.max_batch = max_batch;
    mms_netserver_t *srv = NULL;
    mms_status st = mms_netserver_create(&nc, handle, &ctx, &srv);
    if (st == MMS_OK) {
        d.srv = srv;
        d.small = &small;
        d.big = &big;
        mms_netserver_address(srv, d.addr, sizeof d.addr);
        char load[128] = "?";
        FILE *f = fopen("/proc/loadavg", "r");
        if (f) {
            if (!fgets(load, sizeof load, f)) snprintf(load, sizeof load, "?");
            load[strcspn(load, "\n")] = '\0';
            fclose(f);
        }
        printf("bench_load: index %s: %lld images x %d-d, %lld tags, %d shards on %d worker "
               "rank(s), opened in %.2f s; server %s, max_batch %d, round cost %lld; steady "
               "clients k=%d (image + tags, visual 0.5), big client %d x k=%d pipelined; %.0f s "
               "per phase; load average at start %s\n",
               ix->dir, (long long)ix->n_images, ix->emb_dim, (long long)ix->n_tags, ix->shards,
               mms_engine_workers(e), MPI_Wtime() - t0, d.addr, max_batch, (long long)round_cost,
               k, big_batch, big_k, duration, load);
        fflush(stdout);
        pthread_t dth;
        pthread_create(&dth, NULL, driver_main, &d);
        st = mms_netserver_run(srv); /* MPI from this thread only */
        pthread_join(dth, NULL);
        mms_netserver_stats_t ss;
        mms_netserver_stats(srv, &ss);
        printf("server: %llu requests in %llu rounds (largest %d requests, largest cost %llu), "
               "%llu frames deferred to a later round, %llu timeouts, %llu refused\n",
               (unsigned long long)ss.requests, (unsigned long long)ss.rounds, ss.max_batch_seen,
               (unsigned long long)ss.max_round_cost_seen, (unsigned long long)ss.deferred,
               (unsigned long long)ss.timeouts, (unsigned long long)ss.refused);
        printf("errors: %ld\n", d.total_errors);
        mms_netserver_destroy(&srv);
    }
    mms_status stop = mms_engine_stop(e);
    mms_engine_close(&e);
    free(ctx.connect);
    free(small.req);
    free(small.tags);
    free(big.req);
    free(big.tags);
    MPI_Finalize();
    return st == MMS_OK && stop == MMS_OK && d.total_errors == 0 ? 0 : 1;
}
