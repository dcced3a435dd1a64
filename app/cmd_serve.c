/* cmd_serve.c: `mpirun -np P+1 mmsage serve --index I [--listen HOST:PORT]`:
 * the query server. Rank 0 runs the network loop (coordinator/netserver.h)
 * and answers each poll round's requests with one batched pass of the query
 * engine (coordinator/engine.h); ranks 1..P hold the index shards (shard s on
 * worker s mod P) and serve the engine's rounds. Loopback by default
 * (MMS_DEFAULT_ADDR, common/mms_addr.h). Prints
 * "ready: listening on HOST:PORT (N shards on P ranks)" on stderr once it
 * accepts queries. SIGTERM or SIGINT to the coordinator (its pid is in
 * --pid-file): stop accepting, answer what was received, stop the workers,
 * exit 0. (SIGTERM to Open MPI's mpirun reaches every rank too and the ranks
 * drain the same way, but mpirun itself then reports the job as killed.)
 *
 * Reload (docs/query.md, "Reload"): SIGHUP to the coordinator, or a `reload`
 * request on the wire (authenticated like any request), switches every rank
 * to the version --index names now (a `current` symlink is re-resolved),
 * between batches: the batch in progress finishes on the old version, a
 * version that does not open on every rank is refused and the old one serves
 * on. Workers ignore SIGHUP (mpirun may forward it to every rank).
 *
 * Access (docs/protocol.md, "Authentication"): --auth-token-file makes every
 * request carry the file's token in 'auth'; listening on anything but a
 * loopback address without one is refused before the index is opened (exit
 * 1, a usage error). Connections per address, the first-frame deadline and
 * the round's cost budget are the network loop's (netserver.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <mpi.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "engine.h"
#include "mms_addr.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_opts.h"
#include "netserver.h"

static mms_netserver_t *volatile g_server; /* for the signal handler (rank 0) */
static volatile sig_atomic_t g_signalled;
static volatile sig_atomic_t g_hup; /* rank 0: a SIGHUP asks for a reload between batches */

static void on_signal(int sig) {
    (void)sig;
    g_signalled = 1;
    if (g_server) mms_netserver_stop(g_server); /* async-signal-safe */
}

static void on_hup(int sig) {
    (void)sig;
    int saved = errno;
    g_hup = 1;
    if (g_server) mms_netserver_wake(g_server); /* async-signal-safe */
    errno = saved;
}

/* SIGHUP: the coordinator reloads; every other rank ignores it (mpirun may
 * forward a SIGHUP it gets to every rank, and its default would kill them). */
static void hup_signals(int rank) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = rank == 0 ? on_hup : SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
}

/* --listen: mms_addr_parse's forms; a host is required unless bracketed
 * ("[]:P" binds MMS_DEFAULT_HOST); port 0 = any free port. */
static mms_status parse_listen(const char *s, mms_addr_t *a) {
    MMS_CALL(mms_addr_parse(s, "serve: --listen", 0, a));
    MMS_CHECK(a->host[0] || s[0] == '[', MMS_ERR_ARG, "serve: --listen '%s': no host", s);
    return MMS_OK;
}

/* --auth-token-file: the whole file, one trailing newline stripped; 1..1024
 * bytes without NUL. Warns (rank 0) when group or others may read it. *tok is
 * malloc'd (the caller wipes and frees it). */
static mms_status load_token(const char *path, char **tok, size_t *len) {
    *tok = NULL;
    *len = 0;
    struct stat sb;
    MMS_CHECK(stat(path, &sb) == 0, MMS_ERR_ARG, "serve: --auth-token-file %s: %s", path,
              strerror(errno));
    MMS_CHECK(S_ISREG(sb.st_mode), MMS_ERR_ARG, "serve: --auth-token-file %s is not a regular file",
              path);
    char *t = NULL;
    size_t n = 0;
    MMS_CALL(mms_read_file(path, &t, &n));
    if (n > 0 && t[n - 1] == '\n') t[--n] = '\0';
    mms_status s = MMS_OK;
    if (n == 0)
        s = MMS_ERR_ARG, mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                                       "serve: --auth-token-file %s is empty", path);
    else if (n > MMS_PROTO_MAX_STR || memchr(t, 0, n))
        s = MMS_ERR_ARG,
        mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                      "serve: --auth-token-file %s: the token must be 1..%d bytes without a NUL "
                      "byte (it has %zu bytes)",
                      path, MMS_PROTO_MAX_STR, n);
    if (s != MMS_OK) {
        explicit_bzero(t, n);
        free(t);
        return s;
    }
    if ((sb.st_mode & (S_IRWXG | S_IRWXO)) && mms_log_rank() == 0)
        mms_log_warn("serve: --auth-token-file %s can be read by its group or by others (mode "
                     "%03o): anyone on this machine could learn the token; chmod 600 it",
                     path, (unsigned)(sb.st_mode & 0777));
    *tok = t;
    *len = n;
    return MMS_OK;
}

typedef struct {
    mms_engine_t *engine;
    mms_status fatal; /* an MPI failure: the engine cannot go on */
    uint8_t *connect;
    int cap;
    uint64_t reloads, refused; /* reloads done / refused */
} serve_ctx_t;

/* Between batches: every rank switches to the version --index names now, or
 * keeps the old one (the engine logs the outcome in one line). why: what
 * asked for it. Returns the engine's status (MMS_ERR_MPI is fatal). */
static mms_status serve_reload(serve_ctx_t *c, const char *why, mms_engine_reload_t *info) {
    const mms_index_t *ix = mms_engine_index(c->engine);
    mms_log_info("serve: %s: reloading (serving version %lld, %s)", why, (long long)ix->version,
                 ix->dir);
    mms_status s = mms_engine_reload(c->engine, NULL, info);
    if (s == MMS_OK) c->reloads++;
    else c->refused++;
    if (s == MMS_ERR_MPI) {
        c->fatal = s;
        if (g_server) mms_netserver_stop(g_server);
    }
    return s;
}

/* The reply to a `reload` request: info {index, version, old_index,
 * old_version, seconds}, or reload_refused with the reason. */
static void reload_reply(mms_response_t *r, mms_status s, const mms_engine_reload_t *info,
                         const char *reason) {
    if (!r->ok) return; /* the loop could not prepare it */
    if (s != MMS_OK) {
        mms_response_set_error(r, s == MMS_ERR_MPI ? MMS_PERR_INTERNAL : MMS_PERR_RELOAD_REFUSED,
                               "%s", reason);
        return;
    }
    mms_status a = mms_response_add_info_str(r, "index", info->new_dir);
    if (a == MMS_OK) a = mms_response_add_info_int(r, "version", info->new_version);
    if (a == MMS_OK) a = mms_response_add_info_str(r, "old_index", info->old_dir);
    if (a == MMS_OK) a = mms_response_add_info_int(r, "old_version", info->old_version);
    if (a == MMS_OK) a = mms_response_add_info_real(r, "seconds", info->seconds);
    if (a != MMS_OK)
        mms_response_set_error(r, MMS_PERR_INTERNAL, "the reload was done, but its reply ran out "
                               "of memory");
}

static mms_status handle(void *ctx, const mms_request_t *reqs, int n, mms_response_t *resps) {
    serve_ctx_t *c = ctx;
    if (c->fatal != MMS_OK) {
        mms_error_set(MMS_ERR_INTERNAL, __FILE__, __LINE__, __func__,
                      "the server lost its workers and is shutting down");
        return MMS_ERR_INTERNAL;
    }
    const uint8_t *connect = NULL;
#ifdef MMS_PROTO_HAS_CONNECT
    if (n > c->cap) {
        uint8_t *p = realloc(c->connect, (size_t)n);
        MMS_CHECK(p, MMS_ERR_NOMEM, "serve: out of memory");
        c->connect = p;
        c->cap = n;
    }
    for (int i = 0; i < n; i++) c->connect[i] = (uint8_t)reqs[i].connect;
    connect = c->connect;
#endif
    mms_status s = mms_engine_answer(c->engine, reqs, connect, n, resps, NULL);
    if (s != MMS_OK) {
        c->fatal = s;
        if (g_server) mms_netserver_stop(g_server);
        return s;
    }
    /* reload requests: once for the batch, after its queries were answered on
     * the version they came to */
    int nreload = 0;
    for (int i = 0; i < n; i++) nreload += reqs[i].op == MMS_OP_RELOAD;
    if (nreload == 0) return MMS_OK;
    if (g_signalled) { /* draining after SIGTERM: no new version for a server that stops */
        for (int i = 0; i < n; i++)
            if (reqs[i].op == MMS_OP_RELOAD && resps[i].ok)
                mms_response_set_error(&resps[i], MMS_PERR_UNAVAILABLE,
                                       "the server is stopping: no reload");
        return MMS_OK;
    }
    mms_engine_reload_t info;
    mms_status rs = serve_reload(c, "reload request", &info);
    char reason[sizeof resps[0].error_message];
    snprintf(reason, sizeof reason, "%s", mms_error_message());
    for (int i = 0; i < n; i++)
        if (reqs[i].op == MMS_OP_RELOAD) reload_reply(&resps[i], rs, &info, reason);
    return rs == MMS_ERR_MPI ? rs : MMS_OK;
}

mms_status mms_cmd_serve(int argc, char **argv) {
    const char *index = NULL, *listen = MMS_DEFAULT_ADDR, *catalog = NULL, *pid_file = NULL;
    const char *token_file = NULL;
    int float_scan = 0, nprobe = 0, exact = 0, approx = 0, int8_lists = 0, list_scan = 0;
    const char *list_scan_s = NULL;
    int64_t round_cost = MMS_NETSERVER_ROUND_COST_DEFAULT;
    mms_netserver_config_t nc;
    mms_netserver_config_default(&nc);
    mms_opt_t opts[] = {
        {"index", MMS_OPT_STR, &index, "index directory written by mmsage embed", 1, 0, 0, 0},
        {"listen", MMS_OPT_STR, &listen, "address to listen on, HOST:PORT (port 0 = any free port)", 0, 0, 0, 0},
        {"index-catalog", MMS_OPT_STR, &catalog,
         "the index's catalog, if it moved since embed (ids, tags and paths of results)", 0, 0, 0, 0},
        {"max-clients", MMS_OPT_INT, &nc.max_clients, "concurrent connections", 0, 1, 1, 1e6},
        {"max-batch", MMS_OPT_INT, &nc.max_batch, "most requests answered together (one MPI round)", 0, 1, 1, 65536},
        {"request-timeout", MMS_OPT_DOUBLE, &nc.request_timeout,
         "seconds from a request's first byte to its last", 0, 1, 0.001, 86400},
        {"idle-timeout", MMS_OPT_DOUBLE, &nc.idle_timeout,
         "seconds an idle connection stays open (0 = no limit)", 0, 1, 0, 1e9},
        {"first-frame-timeout", MMS_OPT_DOUBLE, &nc.first_frame_timeout,
         "seconds a new connection has to send its first whole request (0 = no limit)", 0, 1, 0, 1e9},
        {"max-clients-per-address", MMS_OPT_INT, &nc.max_clients_per_address,
         "concurrent connections from one IP address (0 = no limit)", 0, 1, 0, 1e6},
        {"round-cost", MMS_OPT_INT64, &round_cost,
         "work per batch: each request costs 64 + k (+ tag_k); one client's pipelined batch is cut "
         "into rounds of this cost, interleaved with other clients' requests",
         0, 1, 1, 1e12},
        {"auth-token-file", MMS_OPT_STR, &token_file,
         "file holding a shared secret every request must carry ('auth'); required to listen "
         "beyond loopback",
         0, 0, 0, 0},
        {"float-scan", MMS_OPT_FLAG, &float_scan,
         "scan the float rows instead of the int8 filter + exact re-rank (same results, slower)", 0, 0, 0, 0},
        {"nprobe", MMS_OPT_INT, &nprobe, "inverted lists probed per query (approximate search on an index with lists; 0: exact below 200,000 images, the default nprobe above; docs/query.md)", 0, 1, 0, 65536},
        {"approx", MMS_OPT_FLAG, &approx, "approximate search with the default nprobe whatever the index size (below 200,000 images the default is exact)", 0, 0, 0, 0},
        {"exact", MMS_OPT_FLAG, &exact, "exact search whatever the index size (requests may still ask for nprobe)", 0, 0, 0, 0},
        {"int8-lists", MMS_OPT_FLAG, &int8_lists, "the same as --list-scan int8", 0, 0, 0, 0},
        {"list-scan", MMS_OPT_STR, &list_scan_s, MMS_ENGINE_LIST_SCAN_HELP, 0, 0, 0, 0},
        {"pid-file", MMS_OPT_STR, &pid_file,
         "write the coordinator's pid here once ready (send it SIGTERM to stop the server)", 0, 0, 0, 0},
    };
    const int nopt = (int)(sizeof opts / sizeof opts[0]);
    int help = 0;
    mms_status s = mms_opts_parse("serve",
                                  "Serve queries over TCP: rank 0 coordinates, ranks 1.. hold the "
                                  "index shards (collective; needs >= 2 ranks).",
                                  opts, nopt, argc, argv, &help);
    mms_addr_t la = {"", 0};
    if (s == MMS_OK && !help) s = mms_engine_list_scan_parse("list-scan", list_scan_s, int8_lists, &list_scan);
    if (s == MMS_OK && !help) s = parse_listen(listen, &la);
    /* every rank checks (same arguments, same file): the same exit code everywhere */
    char *token = NULL;
    size_t token_len = 0;
    if (s == MMS_OK && !help && token_file) s = load_token(token_file, &token, &token_len);
    if (s == MMS_OK && !help && !token && !mms_netserver_is_loopback(la.host)) {
        s = MMS_ERR_ARG;
        mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                      "serve: --listen %s is not a loopback address: anyone who can reach it "
                      "could query the index. Give --auth-token-file FILE (clients send the "
                      "token with `mmsage query --auth-token-file FILE`), or listen on "
                      "127.0.0.1",
                      listen);
    }
    s = mms_mpi_agree(s, MPI_COMM_WORLD);
    if (s != MMS_OK || help) {
        if (token) explicit_bzero(token, token_len);
        free(token);
        return s;
    }
    mms_opts_echo("serve", opts, nopt);
    int rank = mms_log_rank(), nranks = mms_log_nranks();
    /* Workers ignore SIGTERM/SIGINT (mpirun forwards them to every rank; their
     * g_server is NULL): they leave their loop when the coordinator, which
     * drains first, stops them. */
    mms_cmd_on_stop_signals(on_signal);
    hup_signals(rank);

    mms_engine_params_t ep;
    mms_engine_params_default(&ep);
    ep.index = index;
    ep.catalog = catalog;
    ep.mode = MMS_ENGINE_SERVE;
    ep.filter = !float_scan;
    ep.list_scan = list_scan;
    ep.nprobe = nprobe;
    ep.exact = exact ? 1 : approx ? -1 : 0;
    double t0 = mms_now();
    mms_engine_t *e = NULL;
    MMS_CALL(mms_engine_open(&ep, MPI_COMM_WORLD, &e));

    /* bind before anyone waits for queries, so a taken port fails every rank */
    serve_ctx_t ctx = {.engine = e, .fatal = MMS_OK};
    mms_netserver_t *srv = NULL;
    s = MMS_OK;
    if (rank == 0) {
        nc.host = la.host;
        nc.port = la.port;
        nc.max_round_cost = (uint64_t)round_cost;
        nc.auth_token = token;
        nc.auth_token_len = token_len;
        s = mms_netserver_create(&nc, handle, &ctx, &srv); /* copies the token */
    }
    if (token) explicit_bzero(token, token_len);
    free(token);
    token = NULL;
    s = mms_mpi_agree(s, MPI_COMM_WORLD);
    if (s != MMS_OK) {
        mms_engine_close(&e);
        return s;
    }
    if (rank == 0) {
        const mms_index_t *ix = mms_engine_index(e);
        char addr[300];
        mms_netserver_address(srv, addr, sizeof addr);
        mms_log_info("serve: index %s: %lld images, %lld tags, embeddings %d-d, opened in %.2f s",
                     ix->dir, (long long)ix->n_images, (long long)ix->n_tags, ix->emb_dim,
                     mms_now() - t0);
        if (token_len)
            mms_log_info("serve: requests must carry the token of %s (%zu bytes)%s", token_file,
                         token_len,
                         mms_netserver_is_loopback(la.host)
                             ? ""
                             : "; it travels in the clear: beyond a trusted network, put TLS "
                               "in front (a tunnel or a proxy)");
        g_server = srv;
        if (g_signalled) mms_netserver_stop(srv); /* a signal during start-up */
        if (pid_file) {
            char pb[32];
            int len = snprintf(pb, sizeof pb, "%ld\n", (long)getpid());
            if (mms_write_file_atomic(pid_file, pb, (size_t)len) != MMS_OK) mms_netserver_stop(srv);
        }
        fprintf(stderr, "ready: listening on %s (%d shards on %d ranks)\n", addr, ix->shards,
                nranks - 1);
        fflush(stderr);
        /* the loop, with SIGHUP's reload between its rounds */
        int stopped = 0;
        while (!stopped && s == MMS_OK) {
            s = mms_netserver_step(srv, -1, &stopped);
            /* the round's responses are encoded: a version a reload request
             * replaced in it is not borrowed any more */
            mms_engine_release_previous(e);
            if (s == MMS_OK && !stopped && g_hup && !g_signalled && ctx.fatal == MMS_OK) {
                g_hup = 0;
                (void)serve_reload(&ctx, "SIGHUP", NULL);
                mms_engine_release_previous(e);
            }
        }
        g_server = NULL;
        mms_netserver_stats_t st;
        mms_netserver_stats(srv, &st);
        mms_status stop = mms_engine_stop(e);
        if (s == MMS_OK) s = stop;
        if (s == MMS_OK) s = ctx.fatal;
        mms_log_info("serve: stopped: %llu requests in %llu rounds (largest %d, cost %llu), "
                     "%llu decode errors, %llu unauthorized, %llu connections (%llu refused, %llu "
                     "of them for the per-address cap and %llu for lack of descriptors; %llu not "
                     "mmsage clients, %llu of another protocol version), %llu timeouts; %llu "
                     "reloads (%llu refused)",
                     (unsigned long long)st.requests, (unsigned long long)st.rounds,
                     st.max_batch_seen, (unsigned long long)st.max_round_cost_seen,
                     (unsigned long long)st.decode_errors, (unsigned long long)st.unauthorized,
                     (unsigned long long)st.accepted, (unsigned long long)st.refused,
                     (unsigned long long)st.refused_address, (unsigned long long)st.refused_fd,
                     (unsigned long long)st.not_mmsage, (unsigned long long)st.version_mismatch,
                     (unsigned long long)st.timeouts,
                     (unsigned long long)(ctx.reloads + ctx.refused),
                     (unsigned long long)ctx.refused);
        mms_netserver_destroy(&srv);
        free(ctx.connect);
        if (pid_file) unlink(pid_file);
    } else {
        s = mms_engine_worker_loop(e);
    }
    mms_engine_close(&e);
    return mms_mpi_agree(s, MPI_COMM_WORLD);
}
