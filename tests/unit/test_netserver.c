/* test_netserver.c: the server loop (coordinator/netserver.h) and the client
 * (coordinator/netclient.h) on 127.0.0.1 with a FAKE handler, the server in a
 * thread on an ephemeral port. Checks: single calls of every op; 20 concurrent
 * pipelined clients; one poll round batches several requests; a client that
 * stalls half-way through a frame does not delay the others and gets a timeout;
 * clients that vanish mid-request or never read do not hurt the server; an
 * oversized frame gets frame_too_large and is closed; malformed MessagePack and
 * bad fields get their codes on a connection that stays usable; max_clients
 * gives unavailable; a handler failure gives internal; stop() drains. Issue 12:
 * a pipelined batch of k=10000 requests is served in slices and another
 * client's query goes in within a few slices; a client reading a large answer
 * slowly but steadily is never dropped, one that does not read is; out of
 * descriptors (RLIMIT_NOFILE lowered) extra clients get unavailable or a close,
 * the loop does not spin and logs at most a line or two; a second server checks
 * the token (unauthorized), the per-address cap and the first-frame timeout,
 * and a non-loopback address without a token is refused. Issue 16: the hello
 * (answered; another version gets the server's hello and the close; a
 * protocol 1 frame, HTTP (a plain 400) and a short stranger are closed and
 * counted), and the client against an HTTP server, an SSH banner, a v1 frame
 * and a v9 hello ("not an mmsage server", "speaks protocol 9", never
 * retried) and one that closes at once (retried). Every wait is bounded
 * (a few seconds at most); nothing asserts on speed beyond generous bounds
 * (orders of slices, CPU time a fraction of wall time).
 *
 * `test_netserver --serve [--port P] [--dim D]` runs the same fake server until
 * SIGTERM/SIGINT, printing "listening on 127.0.0.1:PORT" once ready (used by
 * tests/cli/query_client.sh). `test_netserver --call HOST:PORT [--auth TOKEN]`
 * sends one ping (with that token) and prints "ok" or "error NAME: message"
 * (exit 0 / 1; 2 when there is no answer), for tests/cli/serve_access.sh. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "mms_log.h"
#include "mms_test.h"
#include "netclient.h"
#include "netserver.h"
#include "protocol.h"

/* ---- the fake handler ----------------------------------------------------- */

#define FAKE_IDS 10000
static char g_ids[FAKE_IDS][12];
static const char *const g_rtags[] = {"tag_a", "tag_b"};

typedef struct {
    int dim; /* the fake index's feature width */
} fake_t;

/* search: k results "img%05d" (the first one echoes `exclude` when given),
 * scores 1 - j/k, result 0's score = visual; warnings for the keyword "zebra";
 * the tag "fail" makes the whole round fail; "jpeg" is unsupported. */
static mms_status fake_handler(void *ctx, const mms_request_t *reqs, int n, mms_response_t *resps) {
    fake_t *f = ctx;
    for (int i = 0; i < n; i++) {
        const mms_request_t *q = &reqs[i];
        mms_response_t *r = &resps[i];
        for (int t = 0; t < q->ntags; t++) {
            MMS_CHECK(strcmp(q->tags[t], "fail"), MMS_ERR_INTERNAL, "fake handler: asked to fail");
            if (!strcmp(q->tags[t], "zebra"))
                MMS_CALL(mms_response_add_warning(r, "unknown keyword '%s'", q->tags[t]));
        }
        if (q->op == MMS_OP_PING) continue;
        if (q->op == MMS_OP_INFO) {
            MMS_CALL(mms_response_add_info_str(r, "kind", "fake"));
            MMS_CALL(mms_response_add_info_int(r, "dim", f->dim));
            MMS_CALL(mms_response_add_info_int(r, "batch", n));
            continue;
        }
        if (q->jpeg) {
            mms_response_set_error(r, MMS_PERR_UNSUPPORTED, "this index has no pixel descriptor");
            continue;
        }
        if (q->image && q->image_dim != f->dim) {
            mms_response_set_error(r, MMS_PERR_VECTOR_LENGTH,
                                   "'image' has %d floats, the index's features have %d",
                                   q->image_dim, f->dim);
            continue;
        }
        if (q->op == MMS_OP_SEARCH) {
            /* the loop reserved room for k results: write them in place, borrowed strings */
            if (r->results_cap < q->k) {
                mms_response_set_error(r, MMS_PERR_INTERNAL, "no room reserved");
                continue;
            }
            for (int j = 0; j < q->k; j++) {
                r->results[j] = (mms_result_t){g_ids[j % FAKE_IDS], 1.0f - (float)j / (float)q->k,
                                               g_rtags, 2, NULL};
            }
            if (q->exclude) r->results[0].id = mms_response_strdup(r, q->exclude);
            r->results[0].score = q->visual;
            r->nresults = q->k;
            MMS_CALL(mms_response_add_timing(r, "fake", (uint64_t)q->neighbors));
        }
        if (q->predict_tags)
            for (int j = 0; j < q->tag_k; j++) {
                char tg[32];
                snprintf(tg, sizeof tg, "tag%d", j);
                MMS_CALL(mms_response_add_tag(r, tg, 1.0f / (float)(j + 1)));
            }
    }
    return MMS_OK;
}

/* ---- the server in a thread ----------------------------------------------- */

/* Every wait of this test is W(seconds): MMS_TEST_TIME_SCALE (e.g. 30 under
 * valgrind) stretches them, and the server's timeouts, without changing what
 * is checked. */
static double g_scale = 1.0;
#define W(seconds) ((seconds) * g_scale)

static mms_netserver_t *g_srv;
static fake_t g_fake = {8};
static char g_addr[64];
static mms_status g_run_status = -1;

static void *server_main(void *arg) {
    (void)arg;
    g_run_status = mms_netserver_run(g_srv);
    return NULL;
}

static mms_netclient_t *connect_or_die(void) {
    mms_netclient_t *c = NULL;
    T_OK(mms_netclient_connect(g_addr, W(2.0), &c));
    if (!c) {
        fprintf(stderr, "cannot connect to the test server at %s\n", g_addr);
        exit(1);
    }
    return c;
}

static float g_img[8] = {1, 0, 0, 0, 0, 0, 0, 0.5f};

static void search_req(mms_request_t *q, uint64_t id, int k) {
    mms_request_init(q);
    q->id = id;
    q->image = g_img;
    q->image_dim = 8;
    q->k = k;
}

/* Append one framed request to sb. */
static void frame_into(msgpack_sbuffer *sb, const mms_request_t *q) { T_OK(mms_request_encode(q, sb)); }

/* A hand-made frame with payload p[0..n). */
static void raw_frame(msgpack_sbuffer *sb, const void *p, uint32_t n) {
    unsigned char h[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                          (unsigned char)n};
    msgpack_sbuffer_write(sb, (const char *)h, 4);
    msgpack_sbuffer_write(sb, p, n);
}

/* Is the server's connection closed (EOF within timeout_s)? */
static int closed_by_server(mms_netclient_t *c, double timeout_s) {
    mms_response_t r;
    mms_log_level lv = mms_log_get_level();
    mms_log_set_level(MMS_LOG_QUIET);
    mms_status st = mms_netclient_recv(c, &r, timeout_s);
    mms_log_set_level(lv);
    if (st == MMS_OK) mms_response_free(&r);
    return st == MMS_ERR_IO && strstr(mms_error_message(), "closed the connection");
}

static void test_single_calls(void) {
    mms_netclient_t *c = connect_or_die();
    mms_request_t q;
    mms_response_t r;
    /* ping */
    mms_request_init(&q);
    q.op = MMS_OP_PING;
    q.id = 11;
    T_OK(mms_netclient_call(c, &q, &r, W(3.0)));
    T_EQ_INT(r.ok, 1);
    T_EQ_INT(r.id, 11);
    T_EQ_INT(r.nresults, 0);
    T_EQ_INT(r.ntiming, 1); /* the loop's "server" stage */
    if (r.ntiming) T_STREQ(r.timing[0].stage, "server");
    mms_response_free(&r);
    /* info */
    q.op = MMS_OP_INFO;
    q.id = 12;
    T_OK(mms_netclient_call(c, &q, &r, W(3.0)));
    T_EQ_INT(r.ok, 1);
    T_EQ_INT(r.ninfo, 3);
    if (r.ninfo >= 2) {
        T_STREQ(r.info[0].s, "fake");
        T_EQ_INT(r.info[1].i, 8);
    }
    mms_response_free(&r);
    /* search: k echoed, visual default 0.5 (image + tags), warning, exclude, predicted tags */
    const char *tags[] = {"sky", "zebra"};
    search_req(&q, 13, 7);
    q.tags = tags;
    q.ntags = 2;
    q.exclude = "img_self";
    q.predict_tags = 1;
    q.tag_k = 3;
    q.neighbors = 4;
    T_OK(mms_netclient_call(c, &q, &r, W(3.0)));
    T_EQ_INT(r.ok, 1);
    T_EQ_INT(r.id, 13);
    T_EQ_INT(r.nresults, 7);
    if (r.nresults == 7) {
        T_STREQ(r.results[0].id, "img_self");
        T_NEAR(r.results[0].score, 0.5, 0);
        T_STREQ(r.results[6].id, "img00006");
        T_EQ_INT(r.results[6].ntags, 2);
        if (r.results[6].ntags == 2) T_STREQ(r.results[6].tags[1], "tag_b");
    }
    T_EQ_INT(r.ntags, 3);
    T_EQ_INT(r.nwarnings, 1);
    if (r.nwarnings) T_STREQ(r.warnings[0], "unknown keyword 'zebra'");
    T_EQ_INT(r.ntiming, 2);
    if (r.ntiming == 2) T_EQ_INT(r.timing[0].us, 4); /* neighbors echoed by the fake */
    mms_response_free(&r);
    /* handler-side errors: vector width, jpeg unsupported */
    float wide[9] = {0};
    search_req(&q, 14, 3);
    q.image = wide;
    q.image_dim = 9;
    T_OK(mms_netclient_call(c, &q, &r, W(3.0)));
    T_EQ_INT(r.ok, 0);
    T_EQ_INT(r.error_code, MMS_PERR_VECTOR_LENGTH);
    T_CHECK(strstr(r.error_message, "have 8") != NULL);
    mms_response_free(&r);
    static const uint8_t jpg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 0};
    mms_request_init(&q);
    q.id = 15;
    q.jpeg = jpg;
    q.jpeg_len = sizeof jpg;
    T_OK(mms_netclient_call(c, &q, &r, W(3.0)));
    T_EQ_INT(r.error_code, MMS_PERR_UNSUPPORTED);
    mms_response_free(&r);
    /* the whole round fails: internal, with the handler's message; server lives on */
    const char *bad[] = {"fail"};
    mms_request_init(&q);
    q.id = 16;
    q.tags = bad;
    q.ntags = 1;
    mms_log_set_level(MMS_LOG_QUIET);
    T_OK(mms_netclient_call(c, &q, &r, W(3.0)));
    mms_log_set_level(MMS_LOG_WARN);
    T_EQ_INT(r.ok, 0);
    T_EQ_INT(r.error_code, MMS_PERR_INTERNAL);
    T_CHECK(strstr(r.error_message, "asked to fail") != NULL);
    mms_response_free(&r);
    /* a large request frame (400 KB vector) assembles; the fake refuses its width */
    int big = 100000;
    float *v = calloc((size_t)big, sizeof *v);
    search_req(&q, 17, 1);
    q.image = v;
    q.image_dim = big;
    T_OK(mms_netclient_call(c, &q, &r, W(5.0)));
    T_EQ_INT(r.error_code, MMS_PERR_VECTOR_LENGTH);
    T_EQ_INT(r.id, 17);
    mms_response_free(&r);
    free(v);
    mms_netclient_close(&c);
    T_CHECK(c == NULL);
}

/* ---- 20 concurrent pipelined clients --------------------------------------- */

typedef struct {
    int client;
    int nreq, sent, got, bad;
    double max_latency;
    mms_status st;
} pipe_ctx_t;

static int pipe_next(void *ctx, mms_request_t *q) {
    pipe_ctx_t *p = ctx;
    if (p->sent == p->nreq) return 0;
    int k = 1 + (p->client * 7 + p->sent) % 50;
    search_req(q, 0, k);
    p->sent++;
    return 1;
}

static mms_status pipe_done(void *ctx, mms_request_t *q, const mms_response_t *r, double lat) {
    pipe_ctx_t *p = ctx;
    int want_k = 1 + (p->client * 7 + p->got) % 50;
    if (!r->ok || r->nresults != want_k || q->k != want_k || r->id != q->id) p->bad++;
    if (lat > p->max_latency) p->max_latency = lat;
    p->got++;
    return MMS_OK;
}

static void *pipe_client(void *arg) {
    pipe_ctx_t *p = arg;
    mms_netclient_t *c = NULL;
    p->st = mms_netclient_connect(g_addr, W(2.0), &c);
    if (p->st == MMS_OK) p->st = mms_netclient_pipeline(c, 8, W(5.0), pipe_next, pipe_done, p);
    mms_netclient_close(&c);
    return NULL;
}

static void test_concurrent(void) {
    enum { NC = 20, NR = 60 };
    pthread_t th[NC];
    pipe_ctx_t ctx[NC];
    for (int i = 0; i < NC; i++) {
        memset(&ctx[i], 0, sizeof ctx[i]);
        ctx[i].client = i;
        ctx[i].nreq = NR;
        pthread_create(&th[i], NULL, pipe_client, &ctx[i]);
    }
    int total = 0, bad = 0;
    double worst = 0;
    for (int i = 0; i < NC; i++) {
        pthread_join(th[i], NULL);
        T_OK(ctx[i].st);
        total += ctx[i].got;
        bad += ctx[i].bad;
        if (ctx[i].max_latency > worst) worst = ctx[i].max_latency;
    }
    T_EQ_INT(total, NC * NR);
    T_EQ_INT(bad, 0);
    fprintf(stderr, "  concurrent: %d clients x %d pipelined requests, worst latency %.1f ms\n", NC,
            NR, worst * 1e3);
}

/* Ten frames in one write arrive in one read: one handler call sees them all. */
static void test_batching(void) {
    mms_netclient_t *c = connect_or_die();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    mms_request_t q;
    for (int i = 0; i < 10; i++) {
        mms_request_init(&q);
        q.op = MMS_OP_INFO;
        q.id = 100 + (uint64_t)i;
        frame_into(&sb, &q);
    }
    T_OK(mms_netclient_send_raw(c, sb.data, sb.size, W(2.0)));
    msgpack_sbuffer_destroy(&sb);
    int64_t maxbatch = 0;
    for (int i = 0; i < 10; i++) {
        mms_response_t r;
        T_OK(mms_netclient_recv(c, &r, W(3.0)));
        T_EQ_INT(r.id, 100 + i); /* in request order */
        if (r.ninfo == 3 && r.info[2].i > maxbatch) maxbatch = r.info[2].i;
        mms_response_free(&r);
    }
    T_CHECK(maxbatch >= 2);
    fprintf(stderr, "  batching: 10 requests in one write reached the handler in batches of up to %lld\n",
            (long long)maxbatch);
    mms_netclient_close(&c);
}

/* Nothing readable on c right now? */
static int nothing_yet(mms_netclient_t *c, int fd_probe_ms) {
    mms_response_t r;
    mms_log_level lv = mms_log_get_level();
    mms_log_set_level(MMS_LOG_QUIET);
    mms_status st = mms_netclient_recv(c, &r, fd_probe_ms / 1000.0);
    mms_log_set_level(lv);
    if (st == MMS_OK) {
        mms_response_free(&r);
        return 0;
    }
    return strstr(mms_error_message(), "no response") != NULL;
}

static void test_staller(double request_timeout) {
    mms_netclient_t *s = connect_or_die();
    /* half a ping frame: the prefix says 20 bytes, 6 are sent */
    static const unsigned char half[] = {0, 0, 0, 20, 0x82, 0xa2, 'o', 'p', 0xa4, 'p'};
    double t0 = mms_now();
    T_OK(mms_netclient_send_raw(s, half, sizeof half, W(1.0)));
    /* others are served while s stalls */
    for (int i = 0; i < 5; i++) {
        mms_netclient_t *c = connect_or_die();
        for (int j = 0; j < 3; j++) {
            mms_request_t q;
            mms_response_t r;
            search_req(&q, (uint64_t)(j + 1), 5);
            T_OK(mms_netclient_call(c, &q, &r, W(3.0)));
            T_EQ_INT(r.nresults, 5);
            mms_response_free(&r);
        }
        mms_netclient_close(&c);
    }
    double others = mms_now() - t0;
    /* their answers came before the staller's timeout fired */
    T_CHECK(nothing_yet(s, 0));
    mms_response_t r;
    T_OK(mms_netclient_recv(s, &r, request_timeout + W(3.0)));
    double waited = mms_now() - t0;
    T_EQ_INT(r.ok, 0);
    T_EQ_INT(r.error_code, MMS_PERR_TIMEOUT);
    T_EQ_INT(r.id, 0);
    T_CHECK(strstr(r.error_message, "not completed within") != NULL);
    mms_response_free(&r);
    T_CHECK(closed_by_server(s, W(2.0)));
    fprintf(stderr, "  staller: 15 other requests served in %.1f ms; the staller got its timeout "
                    "after %.2f s (limit %.2f s)\n",
            others * 1e3, waited, request_timeout);
    mms_netclient_close(&s);
}

static void test_vanishing_clients(void) {
    /* half a frame, then gone */
    mms_netclient_t *c = connect_or_die();
    static const unsigned char half[] = {0, 0, 0, 50, 0x85, 0xa2};
    T_OK(mms_netclient_send_raw(c, half, sizeof half, W(1.0)));
    mms_netclient_close(&c);
    /* whole requests with big answers, then gone before reading them */
    for (int i = 0; i < 3; i++) {
        c = connect_or_die();
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        mms_request_t q;
        for (int j = 0; j < 20; j++) {
            search_req(&q, (uint64_t)j + 1, 10000);
            frame_into(&sb, &q);
        }
        T_OK(mms_netclient_send_raw(c, sb.data, sb.size, W(2.0)));
        msgpack_sbuffer_destroy(&sb);
        if (i == 2) usleep(50000); /* let the server start writing */
        mms_netclient_close(&c);
    }
    /* the server is fine */
    c = connect_or_die();
    mms_request_t q;
    mms_response_t r;
    mms_request_init(&q);
    q.op = MMS_OP_PING;
    q.id = 1;
    T_OK(mms_netclient_call(c, &q, &r, W(3.0)));
    T_EQ_INT(r.ok, 1);
    mms_response_free(&r);
    mms_netclient_close(&c);
}

/* A reader that does not read does not block anyone; it gets everything later. */
static void test_slow_reader(void) {
    mms_netclient_t *slow = connect_or_die();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    mms_request_t q;
    enum { NS = 30 };
    for (int j = 0; j < NS; j++) {
        search_req(&q, (uint64_t)j + 1, 10000);
        frame_into(&sb, &q);
    }
    T_OK(mms_netclient_send_raw(slow, sb.data, sb.size, W(2.0)));
    msgpack_sbuffer_destroy(&sb);
    usleep((useconds_t)(W(0.1) * 1e6)); /* the server has ~9 MB of answers queued for it now */
    mms_netclient_t *c = connect_or_die();
    mms_response_t r;
    mms_request_init(&q);
    q.op = MMS_OP_PING;
    q.id = 1;
    double t0 = mms_now();
    T_OK(mms_netclient_call(c, &q, &r, W(3.0)));
    double ping = mms_now() - t0;
    T_EQ_INT(r.ok, 1);
    mms_response_free(&r);
    mms_netclient_close(&c);
    int got = 0;
    for (int j = 0; j < NS; j++) {
        if (mms_netclient_recv(slow, &r, W(3.0)) != MMS_OK) break;
        got += r.ok && r.nresults == 10000 && r.id == (uint64_t)j + 1;
        mms_response_free(&r);
    }
    T_EQ_INT(got, NS);
    fprintf(stderr, "  slow reader: a ping took %.1f ms while %d x 10000-result answers waited\n",
            ping * 1e3, NS);
    mms_netclient_close(&slow);
}

static void test_oversized(size_t max_frame) {
    mms_netclient_t *c = connect_or_die();
    uint32_t n = (uint32_t)max_frame + 1;
    unsigned char h[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                          (unsigned char)n};
    T_OK(mms_netclient_send_raw(c, h, 4, W(1.0)));
    mms_response_t r;
    T_OK(mms_netclient_recv(c, &r, W(3.0)));
    T_EQ_INT(r.ok, 0);
    T_EQ_INT(r.error_code, MMS_PERR_FRAME_TOO_LARGE);
    T_CHECK(strstr(r.error_message, "exceeds the server's limit") != NULL);
    mms_response_free(&r);
    T_CHECK(closed_by_server(c, W(2.0)));
    mms_netclient_close(&c);
    /* the prefix alone with 4 GiB: same */
    c = connect_or_die();
    static const unsigned char huge[4] = {0xff, 0xff, 0xff, 0xff};
    T_OK(mms_netclient_send_raw(c, huge, 4, W(1.0)));
    T_OK(mms_netclient_recv(c, &r, W(3.0)));
    T_EQ_INT(r.error_code, MMS_PERR_FRAME_TOO_LARGE);
    mms_response_free(&r);
    mms_netclient_close(&c);
}

/* Decode errors are answered by the loop; the connection stays usable. */
static void test_malformed(void) {
    mms_netclient_t *c = connect_or_die();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    raw_frame(&sb, "\xc1", 1);                 /* never-used MessagePack byte */
    raw_frame(&sb, "{\"op\": \"ping\"}", 14); /* JSON is not MessagePack */
    raw_frame(&sb, "", 0);                    /* empty frame */
    /* k out of range with an id: the error echoes the id */
    msgpack_packer pk;
    msgpack_sbuffer tmp;
    msgpack_sbuffer_init(&tmp);
    msgpack_packer_init(&pk, &tmp, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_uint64(&pk, 4242);
    msgpack_pack_str_with_body(&pk, "k", 1);
    msgpack_pack_int(&pk, 0);
    msgpack_pack_str_with_body(&pk, "tags", 4);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_str_with_body(&pk, "sky", 3);
    raw_frame(&sb, tmp.data, (uint32_t)tmp.size);
    msgpack_sbuffer_destroy(&tmp);
    mms_request_t q;
    mms_request_init(&q);
    q.op = MMS_OP_PING;
    q.id = 5;
    frame_into(&sb, &q);
    T_OK(mms_netclient_send_raw(c, sb.data, sb.size, W(1.0)));
    msgpack_sbuffer_destroy(&sb);
    static const int want[] = {MMS_PERR_MALFORMED, MMS_PERR_MALFORMED, MMS_PERR_MALFORMED,
                               MMS_PERR_K_RANGE, MMS_PERR_OK};
    static const uint64_t want_id[] = {0, 0, 0, 4242, 5};
    for (int i = 0; i < 5; i++) {
        mms_response_t r;
        T_OK(mms_netclient_recv(c, &r, W(3.0)));
        T_EQ_INT(r.error_code, want[i]);
        T_EQ_INT(r.id, want_id[i]);
        T_EQ_INT(r.ok, want[i] == MMS_PERR_OK);
        mms_response_free(&r);
    }
    mms_netclient_close(&c);
}

static void test_max_clients(int max_clients) {
    enum { N = 40 };
    mms_netclient_t *cs[N];
    int ok = 0, unavailable = 0, other = 0;
    for (int i = 0; i < N; i++) cs[i] = connect_or_die();
    mms_log_set_level(MMS_LOG_QUIET);
    for (int i = 0; i < N; i++) {
        mms_request_t q;
        mms_response_t r;
        mms_request_init(&q);
        q.op = MMS_OP_PING;
        q.id = 1;
        if (mms_netclient_call(cs[i], &q, &r, W(3.0)) != MMS_OK) {
            other++;
            continue;
        }
        if (r.ok) ok++;
        else if (r.error_code == MMS_PERR_UNAVAILABLE) unavailable++;
        else other++;
        mms_response_free(&r);
    }
    mms_log_set_level(MMS_LOG_WARN);
    for (int i = 0; i < N; i++) mms_netclient_close(&cs[i]);
    T_EQ_INT(other, 0);
    T_EQ_INT(ok + unavailable, N);
    T_CHECK(ok <= max_clients);
    T_CHECK(unavailable >= N - max_clients);
    fprintf(stderr, "  max_clients %d: %d of %d connections served, %d told unavailable\n",
            max_clients, ok, N, unavailable);
}

/* A connection the server serves: right after many clients closed, the server
 * may not have seen all their EOFs yet and still be at max_clients. */
static mms_netclient_t *connect_served(void) {
    for (int attempt = 0; attempt < 100; attempt++) {
        mms_netclient_t *c = connect_or_die();
        mms_request_t q;
        mms_response_t r;
        mms_request_init(&q);
        q.op = MMS_OP_PING;
        q.id = 1;
        mms_log_set_level(MMS_LOG_QUIET);
        mms_status st = mms_netclient_call(c, &q, &r, W(3.0));
        mms_log_set_level(MMS_LOG_WARN);
        int ok = st == MMS_OK && r.ok;
        if (st == MMS_OK) mms_response_free(&r);
        if (ok) return c;
        mms_netclient_close(&c);
        usleep(20000);
    }
    T_CHECK(!"the server did not accept a connection again after max_clients");
    return connect_or_die();
}

static void test_drain(pthread_t th) {
    mms_netclient_t *c = connect_served();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    mms_request_t q;
    for (int i = 0; i < 5; i++) {
        search_req(&q, (uint64_t)i + 1, 100);
        frame_into(&sb, &q);
    }
    T_OK(mms_netclient_send_raw(c, sb.data, sb.size, W(1.0)));
    msgpack_sbuffer_destroy(&sb);
    mms_response_t r;
    T_OK(mms_netclient_recv(c, &r, W(3.0))); /* the server has the requests */
    mms_response_free(&r);
    mms_netserver_stop(g_srv);
    int got = 1;
    for (int i = 1; i < 5; i++) {
        if (mms_netclient_recv(c, &r, W(3.0)) != MMS_OK) break;
        got += r.ok && r.nresults == 100;
        mms_response_free(&r);
    }
    T_EQ_INT(got, 5);
    T_CHECK(closed_by_server(c, W(3.0)));
    mms_netclient_close(&c);
    pthread_join(th, NULL);
    T_OK(g_run_status);
    /* nobody listens any more */
    mms_log_set_level(MMS_LOG_QUIET);
    T_CHECK(mms_netclient_connect(g_addr, W(1.0), &c) == MMS_ERR_IO);
    mms_log_set_level(MMS_LOG_WARN);
}

/* ---- fairness: a pipelined batch is served in slices (issue 12 item 6) ------ */

/* Requests tagged "cost" make the fake handler sleep g_cost_us microseconds per
 * result asked for (k) and answer with one result; "costbig" sleeps the same
 * and answers all k. "probe" records how many cost requests were done before
 * it. Counters are atomics: the test's threads read them. */
static _Atomic int g_cost_done;
static _Atomic int g_probe_saw = -1;
static int g_cost_us = 1;

static mms_status cost_handler(void *ctx, const mms_request_t *reqs, int n, mms_response_t *resps) {
    int special = 0;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < reqs[i].ntags; t++)
            special |= !strncmp(reqs[i].tags[t], "cost", 4) || !strcmp(reqs[i].tags[t], "probe");
    if (!special) return fake_handler(ctx, reqs, n, resps); /* one call: it reports n */
    for (int i = 0; i < n; i++) {
        const mms_request_t *q = &reqs[i];
        for (int t = 0; t < q->ntags; t++) {
            if (!strcmp(q->tags[t], "probe")) g_probe_saw = g_cost_done;
            if (strncmp(q->tags[t], "cost", 4)) continue;
            usleep((useconds_t)(q->k * g_cost_us));
            g_cost_done++;
            if (strcmp(q->tags[t], "costbig")) {
                resps[i].results[0] = (mms_result_t){g_ids[0], 1.0f, g_rtags, 2, NULL};
                resps[i].nresults = 1;
                goto next;
            }
        }
        MMS_CALL(fake_handler(ctx, q, 1, &resps[i]));
    next:;
    }
    return MMS_OK;
}

static void cost_req(mms_request_t *q, uint64_t id, int k, const char *const *tag) {
    mms_request_init(q);
    q->id = id;
    q->tags = tag;
    q->ntags = 1;
    q->k = k;
}

/* Client A pipelines NB requests of k=10000 (10 ms of handler time each); once
 * its first answer is back, client B sends one small query. B must be answered
 * while A's batch is still being served (before: the whole batch was one
 * handler round, and B waited for all of it). */
static void test_fair_batch(void) {
    enum { NB = 128 };
    static const char *cost[] = {"cost"}, *probe[] = {"probe"};
    g_cost_done = 0;
    g_probe_saw = -1;
    mms_netclient_t *a = connect_served();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    mms_request_t q;
    for (int j = 0; j < NB; j++) {
        cost_req(&q, (uint64_t)j + 1, 10000, cost);
        frame_into(&sb, &q);
    }
    T_OK(mms_netclient_send_raw(a, sb.data, sb.size, W(2.0)));
    msgpack_sbuffer_destroy(&sb);
    mms_response_t r;
    T_OK(mms_netclient_recv(a, &r, W(10.0)));
    T_EQ_INT(r.id, 1);
    mms_response_free(&r);
    int done_at_first = g_cost_done;
    mms_netclient_t *b = connect_served();
    cost_req(&q, 7, 5, probe);
    double t0 = mms_now();
    T_OK(mms_netclient_call(b, &q, &r, W(10.0)));
    double wait = mms_now() - t0;
    T_EQ_INT(r.ok, 1);
    mms_response_free(&r);
    int saw = g_probe_saw;
    int got = 1;
    for (int j = 1; j < NB; j++) {
        if (mms_netclient_recv(a, &r, W(10.0)) != MMS_OK) break;
        got += r.ok && r.id == (uint64_t)j + 1;
        mms_response_free(&r);
    }
    T_EQ_INT(got, NB);
    /* the batch's answers started before it was all done, and B went in
     * within a few slices (one k=10000 request per slice by default) */
    T_CHECK(done_at_first < NB / 2);
    T_CHECK(saw >= 0 && saw <= done_at_first + 16 && saw < NB / 2);
    fprintf(stderr, "  fair batch: %d x k=10000 pipelined (10 ms each, one per round); A's first "
                    "answer after %d of them, B's small query answered in %.1f ms, after %d\n",
            NB, done_at_first, wait * 1e3, saw);
    mms_netclient_close(&a);
    mms_netclient_close(&b);
}

/* A client reading a large answer slowly but steadily is never timed out, even
 * when the work behind it takes longer than request_timeout in all (before: a
 * long handler round stamped its writes with the time from before the round,
 * and the client was dropped as one that does not read). One that does not
 * read at all is still dropped. */
static void test_steady_reader(double request_timeout) {
    enum { NS = 64 };
    static const char *costbig[] = {"costbig"};
    g_cost_us = 2; /* 20 ms per request: 1.3 s in all, more than request_timeout */
    mms_netclient_t *c = connect_served();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    mms_request_t q;
    for (int j = 0; j < NS; j++) {
        cost_req(&q, (uint64_t)j + 1, 10000, costbig);
        frame_into(&sb, &q);
    }
    T_OK(mms_netclient_send_raw(c, sb.data, sb.size, W(2.0)));
    msgpack_sbuffer_destroy(&sb);
    int got = 0;
    double t0 = mms_now();
    mms_log_set_level(MMS_LOG_QUIET);
    for (int j = 0; j < NS; j++) {
        mms_response_t r;
        if (mms_netclient_recv(c, &r, W(10.0)) != MMS_OK) break;
        got += r.ok && r.nresults == 10000 && r.id == (uint64_t)j + 1;
        mms_response_free(&r);
        usleep(15000); /* ~450 KB per 15 ms: slow, but steady */
    }
    mms_log_set_level(MMS_LOG_WARN);
    g_cost_us = 1;
    T_EQ_INT(got, NS);
    fprintf(stderr, "  steady reader: %d of %d answers of 10000 results (29 MB) read at ~30 MB/s "
                    "in %.2f s with request_timeout %.2f s\n",
            got, NS, mms_now() - t0, request_timeout);
    mms_netclient_close(&c);

    /* the one that never reads: its 14 MB of answers do not fit the socket
     * buffers, it makes no progress and is dropped after request_timeout */
    mms_netclient_t *n = connect_served();
    msgpack_sbuffer_init(&sb);
    for (int j = 0; j < 32; j++) {
        search_req(&q, (uint64_t)j + 1, 10000);
        frame_into(&sb, &q);
    }
    T_OK(mms_netclient_send_raw(n, sb.data, sb.size, W(2.0)));
    msgpack_sbuffer_destroy(&sb);
    usleep((useconds_t)((request_timeout + W(1.5)) * 1e6));
    int read_back = 0;
    mms_log_set_level(MMS_LOG_QUIET);
    for (int j = 0; j < 32; j++) {
        mms_response_t r;
        if (mms_netclient_recv(n, &r, W(2.0)) != MMS_OK) break;
        read_back++;
        mms_response_free(&r);
    }
    mms_log_set_level(MMS_LOG_WARN);
    T_CHECK(read_back < 32);
    fprintf(stderr, "  non-reader: dropped; %d of 32 answers were already in the kernel's "
                    "buffers\n", read_back);
    mms_netclient_close(&n);
}

/* ---- out of descriptors (issue 12 item 7) ---------------------------------- */

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e-6;
}

/* With RLIMIT_NOFILE lowered so that the server can accept only a few more
 * connections, NX clients connect and ping: every one is answered (pong or
 * unavailable) or closed, none hangs, the loop does not spin (CPU time) and
 * the log has at most a couple of lines (before: ~80,000 lines per second
 * of "accept: Too many open files", 100 % CPU, and the extra clients hung). */
static void test_emfile(void) {
    enum { NX = 16, FREE = 3 };
    mms_netclient_t *warm = connect_served(); /* the earlier clients are gone */
    mms_netclient_close(&warm);
    usleep(50000);
    int fds[NX];
    for (int i = 0; i < NX; i++) fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    char logpath[] = "/tmp/test_netserver_log.XXXXXX";
    int logfd = mkstemp(logpath);
    int saved_err = dup(2);
    T_CHECK(fds[NX - 1] >= 0 && logfd >= 0 && saved_err >= 0);
    int fill[4096], nfill = 0, top = saved_err;
    for (int i = 0; i < NX; i++)
        if (fds[i] > top) top = fds[i];
    if (logfd > top) top = logfd;
    /* take every free number below top, so that exactly FREE are left */
    for (;;) {
        int f = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (f < 0) break;
        if (f > top || nfill == 4096) {
            close(f);
            break;
        }
        fill[nfill++] = f;
    }
    struct rlimit old, lim;
    getrlimit(RLIMIT_NOFILE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)top + 1 + FREE;
    fflush(stderr);
    dup2(logfd, 2);
    T_CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)mms_netserver_port(g_srv));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    mms_request_t q;
    mms_request_init(&q);
    q.op = MMS_OP_PING;
    q.id = 3;
    unsigned char hello[MMS_HELLO_LEN];
    mms_hello_encode(hello, MMS_PROTO_VERSION);
    msgpack_sbuffer_write(&sb, (const char *)hello, sizeof hello);
    mms_request_encode(&q, &sb);
    double cpu0 = cpu_seconds(), t0 = mms_now();
    int connected = 0;
    for (int i = 0; i < NX; i++) {
        if (connect(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0) continue;
        connected++;
        ssize_t w = send(fds[i], sb.data, sb.size, MSG_NOSIGNAL);
        (void)w;
    }
    msgpack_sbuffer_destroy(&sb);
    /* collect one answer (or EOF) per client within a bounded time */
    enum { PENDING, PONG, UNAVAILABLE, CLOSED, OTHER };
    int state[NX], nstate[5] = {0};
    unsigned char buf[NX][512];
    size_t have[NX];
    for (int i = 0; i < NX; i++) state[i] = PENDING, have[i] = 0;
    int left = NX;
    while (left > 0 && mms_now() - t0 < W(4.0)) {
        struct pollfd p[NX];
        for (int i = 0; i < NX; i++) {
            p[i].fd = state[i] == PENDING ? fds[i] : -1;
            p[i].events = POLLIN;
            p[i].revents = 0;
        }
        if (poll(p, NX, 50) <= 0) continue;
        for (int i = 0; i < NX; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t r = recv(fds[i], buf[i] + have[i], sizeof buf[i] - have[i], 0);
            if (r <= 0) {
                state[i] = CLOSED;
                left--;
                continue;
            }
            have[i] += (size_t)r;
            size_t plen = 0;
            unsigned v = 0;
            if (have[i] < MMS_HELLO_LEN) continue;
            if (mms_hello_parse(buf[i], have[i], &v) != 1 || v != MMS_PROTO_VERSION) {
                state[i] = OTHER; /* the server's hello comes first, refusals too */
                left--;
                continue;
            }
            const unsigned char *fr = buf[i] + MMS_HELLO_LEN;
            if (mms_frame_peek(fr, have[i] - MMS_HELLO_LEN, sizeof buf[i], &plen) != 1) continue;
            mms_response_t resp;
            char err[128];
            if (mms_response_decode(fr + 4, plen, &resp, err, sizeof err) != MMS_PERR_OK)
                state[i] = OTHER;
            else
                state[i] = resp.ok ? PONG : resp.error_code == MMS_PERR_UNAVAILABLE ? UNAVAILABLE
                                                                                    : OTHER;
            mms_response_free(&resp);
            left--;
        }
    }
    double answer_s = mms_now() - t0;
    /* then a quiet second with the served clients still connected */
    usleep((useconds_t)(W(1.0) * 1e6));
    double cpu = cpu_seconds() - cpu0, wall = mms_now() - t0;

    setrlimit(RLIMIT_NOFILE, &old);
    fflush(stderr);
    dup2(saved_err, 2);
    close(saved_err);
    for (int i = 0; i < NX; i++) nstate[state[i]]++;
    for (int i = 0; i < NX; i++) close(fds[i]);
    for (int i = 0; i < nfill; i++) close(fill[i]);
    /* the log: count the accept lines */
    int lines = 0;
    FILE *lf = fdopen(logfd, "r");
    char line[1024];
    rewind(lf);
    while (fgets(line, sizeof line, lf))
        if (strstr(line, "accept")) {
            if (lines < 3) fprintf(stderr, "  (log) %s", line);
            lines++;
        }
    fclose(lf);
    unlink(logpath);
    T_EQ_INT(connected, NX);
    T_EQ_INT(nstate[PENDING], 0);
    T_EQ_INT(nstate[OTHER], 0);
    T_CHECK(nstate[PONG] >= 1 && nstate[PONG] <= FREE + 2);
    T_CHECK(nstate[UNAVAILABLE] + nstate[CLOSED] >= NX - FREE - 2);
    T_CHECK(lines <= 2);
    T_CHECK(cpu < 0.3 * wall);
    fprintf(stderr, "  EMFILE: %d clients with %d descriptors free: %d served, %d told "
                    "unavailable, %d closed, %d hung; all answered in %.0f ms; %.3f s CPU in "
                    "%.2f s; %d log line(s)\n",
            NX, FREE, nstate[PONG], nstate[UNAVAILABLE], nstate[CLOSED], nstate[PENDING],
            answer_s * 1e3, cpu, wall, lines);
    /* and the server serves again */
    warm = connect_served();
    mms_netclient_close(&warm);
}

/* ---- the handshake (issue 16 item 5) ---------------------------------------- */

/* A raw connection to the test server (blocking, 3 s receive timeout). */
static int raw_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {(time_t)W(3.0), 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    T_CHECK(fd >= 0);
    return fd;
}

/* Send what, then read until EOF (or want bytes, or the receive timeout) into
 * buf; returns the bytes read; *eof = 1 when the server closed. */
static size_t raw_exchange(int fd, const void *what, size_t n, char *buf, size_t cap,
                           size_t want, int *eof) {
    if (n > 0) {
        ssize_t w = send(fd, what, n, MSG_NOSIGNAL);
        T_EQ_INT((int)w, (int)n);
    }
    size_t have = 0;
    *eof = 0;
    while (have < cap - 1 && (want == 0 || have < want)) {
        ssize_t r = recv(fd, buf + have, cap - 1 - have, 0);
        if (r == 0) *eof = 1;
        if (r <= 0) break;
        have += (size_t)r;
    }
    buf[have] = '\0';
    return have;
}

/* A stranger's server for the client side: accepts `n` connections, reads
 * what the client sends, answers `answer` (len bytes, 0 = close at once). */
typedef struct {
    int lfd, n;
    const char *answer;
    size_t len;
} stranger_t;

static void *stranger_main(void *arg) {
    stranger_t *st = arg;
    for (int i = 0; i < st->n; i++) {
        int fd = accept(st->lfd, NULL, NULL);
        if (fd < 0) break;
        if (st->len > 0) {
            char junk[256];
            ssize_t r = recv(fd, junk, sizeof junk, 0);
            ssize_t w = send(fd, st->answer, st->len, MSG_NOSIGNAL);
            (void)r;
            (void)w;
            usleep(50000); /* the client reads before the close */
        }
        close(fd);
    }
    return NULL;
}

/* mms_netclient_call against a stranger answering `answer`, with a retry
 * policy (1 s): returns the status, the message in msg, retries in *retries. */
static mms_status call_stranger(const char *answer, size_t len, int nconn, char *msg, size_t cap,
                                long *retries, double *secs) {
    stranger_t st = {socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), nconn, answer, len};
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    T_CHECK(bind(st.lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(st.lfd, 8) == 0 &&
            getsockname(st.lfd, (struct sockaddr *)&sa, &sl) == 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    pthread_t th;
    pthread_create(&th, NULL, stranger_main, &st);
    mms_netclient_retry_t rp;
    mms_netclient_retry_default(&rp);
    rp.retry_for_s = W(1.0);
    rp.max_delay_s = 0.2;
    mms_netclient_t *c = NULL;
    mms_request_t q;
    mms_request_init(&q);
    q.op = MMS_OP_PING;
    q.id = 1;
    mms_response_t r;
    mms_log_level lv = mms_log_get_level();
    mms_log_set_level(MMS_LOG_QUIET);
    double t0 = mms_now();
    mms_status s = mms_netclient_open(addr, W(2.0), &rp, &c);
    if (s == MMS_OK) {
        s = mms_netclient_call(c, &q, &r, W(3.0));
        if (s == MMS_OK) mms_response_free(&r);
        *retries = mms_netclient_retries(c);
    }
    *secs = mms_now() - t0;
    mms_log_set_level(lv);
    snprintf(msg, cap, "%s", mms_error_message());
    mms_netclient_close(&c);
    shutdown(st.lfd, SHUT_RDWR); /* the stranger stops accepting */
    pthread_join(th, NULL);
    close(st.lfd);
    return s;
}

static void test_handshake(void) {
    int port = mms_netserver_port(g_srv), eof = 0;
    mms_netserver_stats_t st0, st1;
    mms_netserver_stats(g_srv, &st0);
    char buf[1024];
    unsigned v = 0;
    /* a good hello is answered with the server's, then frames as usual */
    int fd = raw_connect(port);
    unsigned char hello[MMS_HELLO_LEN];
    mms_hello_encode(hello, MMS_PROTO_VERSION);
    size_t n = raw_exchange(fd, hello, sizeof hello, buf, sizeof buf, MMS_HELLO_LEN, &eof);
    T_EQ_INT((int)n, MMS_HELLO_LEN);
    T_EQ_INT(mms_hello_parse(buf, n, &v), 1);
    T_EQ_INT((int)v, MMS_PROTO_VERSION);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    mms_request_t q;
    mms_request_init(&q);
    q.op = MMS_OP_PING;
    q.id = 5;
    T_OK(mms_request_encode(&q, &sb));
    size_t plen = 0;
    n = raw_exchange(fd, sb.data, sb.size, buf, sizeof buf, 4, &eof);
    while (n >= 4 && mms_frame_peek(buf, n, sizeof buf, &plen) == 0) {
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r <= 0) break;
        n += (size_t)r;
    }
    T_EQ_INT(mms_frame_peek(buf, n, sizeof buf, &plen), 1);
    mms_response_t resp;
    char err[128];
    T_EQ_INT(mms_response_decode(buf + 4, plen, &resp, err, sizeof err), MMS_PERR_OK);
    T_EQ_INT(resp.ok, 1);
    T_EQ_INT(resp.id, 5);
    mms_response_free(&resp);
    close(fd);

    /* another version: the server's hello (so the client can say which), then the close */
    fd = raw_connect(port);
    unsigned char v9[MMS_HELLO_LEN];
    mms_hello_encode(v9, 9);
    msgpack_sbuffer both; /* the hello and a request right after it, as a client sends */
    msgpack_sbuffer_init(&both);
    msgpack_sbuffer_write(&both, (const char *)v9, sizeof v9);
    msgpack_sbuffer_write(&both, sb.data, sb.size);
    n = raw_exchange(fd, both.data, both.size, buf, sizeof buf, 0, &eof);
    msgpack_sbuffer_destroy(&both);
    T_EQ_INT((int)n, MMS_HELLO_LEN);
    T_EQ_INT(mms_hello_parse(buf, n, &v), 1);
    T_EQ_INT((int)v, MMS_PROTO_VERSION);
    T_EQ_INT(eof, 1);
    close(fd);

    /* a protocol 1 client (a frame right away): closed without a word */
    fd = raw_connect(port);
    n = raw_exchange(fd, sb.data, sb.size, buf, sizeof buf, 0, &eof);
    T_EQ_INT((int)n, 0);
    T_EQ_INT(eof, 1);
    close(fd);
    msgpack_sbuffer_destroy(&sb);

    /* HTTP on the query port: a plain 400 that says what the port is, then the close */
    fd = raw_connect(port);
    static const char get[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/7.88.1\r\n"
                              "Accept: */*\r\n\r\n";
    n = raw_exchange(fd, get, sizeof get - 1, buf, sizeof buf, 0, &eof);
    T_CHECK(!strncmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26));
    T_CHECK(strstr(buf, "\r\n\r\nThis port is an mmsage query server") != NULL);
    T_CHECK(strstr(buf, "Connection: close") != NULL);
    T_EQ_INT(eof, 1);
    close(fd);

    /* a short stranger that stops sending: closed at its EOF */
    fd = raw_connect(port);
    ssize_t w = send(fd, "MM", 2, MSG_NOSIGNAL);
    T_EQ_INT((int)w, 2);
    shutdown(fd, SHUT_WR);
    n = raw_exchange(fd, "", 0, buf, sizeof buf, 0, &eof);
    T_EQ_INT((int)n, 0);
    T_EQ_INT(eof, 1);
    close(fd);

    usleep(50000);
    mms_netserver_stats(g_srv, &st1);
    T_EQ_INT((int)(st1.version_mismatch - st0.version_mismatch), 1);
    T_EQ_INT((int)(st1.not_mmsage - st0.not_mmsage), 3);
    T_CHECK(st1.requests > st0.requests); /* the good one's ping */

    /* the client against strangers: told at once, never retried */
    char msg[512];
    long retries = -1;
    double secs = 0;
    static const char http[] = "HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n";
    T_EQ_INT(call_stranger(http, sizeof http - 1, 4, msg, sizeof msg, &retries, &secs),
             MMS_ERR_FORMAT);
    T_CHECK(strstr(msg, "is not an mmsage server (it answered 'HTTP/1.1 400 Bad Request')") !=
            NULL);
    T_EQ_INT((int)retries, 0);
    T_CHECK(secs < W(2.0));
    fprintf(stderr, "  handshake: against an HTTP server in %.0f ms: %s\n", secs * 1e3, msg);
    static const char ssh[] = "SSH-2.0-OpenSSH_9.2p1\r\n";
    T_EQ_INT(call_stranger(ssh, sizeof ssh - 1, 4, msg, sizeof msg, &retries, &secs),
             MMS_ERR_FORMAT);
    T_CHECK(strstr(msg, "not an mmsage server (it answered 'SSH-2.0-OpenSSH_9.2p1')") != NULL);
    T_EQ_INT((int)retries, 0);
    /* a v1 server's frame (a length prefix) */
    static const char frame[] = "\0\0\0\x03\x81\xa2ok";
    T_EQ_INT(call_stranger(frame, sizeof frame - 1, 4, msg, sizeof msg, &retries, &secs),
             MMS_ERR_FORMAT);
    T_CHECK(strstr(msg, "not an mmsage server (it answered '\\x00\\x00\\x00\\x03") != NULL);
    mms_hello_encode(v9, 9);
    T_EQ_INT(call_stranger((const char *)v9, sizeof v9, 4, msg, sizeof msg, &retries, &secs),
             MMS_ERR_FORMAT);
    T_CHECK(strstr(msg, "the server speaks protocol 9, this client 2") != NULL);
    T_EQ_INT((int)retries, 0);
    /* a close before any byte stays transient (a server restarting does that):
     * retried until the policy gives up */
    T_EQ_INT(call_stranger("", 0, 1000, msg, sizeof msg, &retries, &secs), MMS_ERR_IO);
    if (!strstr(msg, "closed the connection") && !strstr(msg, "reset") && !strstr(msg, "pipe"))
        T_CHECK(!"a close before any byte: not the usual closed-connection message");
    fprintf(stderr, "  handshake: a server that closes at once: %s (%ld retries)\n", msg, retries);
    T_CHECK(retries >= 1);
}

/* ---- access: per-address cap, first-frame timeout, token (issue 12 item 12) - */

static mms_netserver_t *g_srv2;
static void *server2_main(void *arg) {
    *(mms_status *)arg = mms_netserver_run(g_srv2);
    return NULL;
}

static int ping_with(mms_netclient_t *c, const char *auth, uint64_t id, mms_response_t *r) {
    mms_request_t q;
    mms_request_init(&q);
    q.op = MMS_OP_PING;
    q.id = id;
    q.auth = auth;
    mms_log_level lv = mms_log_get_level();
    mms_log_set_level(MMS_LOG_QUIET);
    mms_status st = mms_netclient_call(c, &q, r, W(3.0));
    mms_log_set_level(lv);
    return st == MMS_OK;
}

static void test_access(void) {
    static const char token[] = "s3cret-Token_42";
    /* where a token is needed */
    T_EQ_INT(mms_netserver_is_loopback("127.0.0.1"), 1);
    T_EQ_INT(mms_netserver_is_loopback("127.3.2.1"), 1);
    T_EQ_INT(mms_netserver_is_loopback("::1"), 1);
    T_EQ_INT(mms_netserver_is_loopback("localhost"), 1);
    T_EQ_INT(mms_netserver_is_loopback(""), 1);
    T_EQ_INT(mms_netserver_is_loopback("0.0.0.0"), 0);
    T_EQ_INT(mms_netserver_is_loopback("::"), 0);
    T_EQ_INT(mms_netserver_is_loopback("10.1.2.3"), 0);
    T_EQ_INT(mms_netserver_is_loopback("::ffff:127.0.0.1"), 1);
    mms_netserver_config_t cfg;
    mms_netserver_config_default(&cfg);
    cfg.port = 0;
    cfg.host = "0.0.0.0";
    mms_netserver_t *open_srv = NULL;
    mms_log_set_level(MMS_LOG_QUIET);
    T_FAILS(mms_netserver_create(&cfg, fake_handler, &g_fake, &open_srv), MMS_ERR_ARG);
    mms_log_set_level(MMS_LOG_WARN);
    T_MSG_HAS("without an auth token");
    cfg.auth_token = token;
    cfg.auth_token_len = strlen(token);
    T_OK(mms_netserver_create(&cfg, fake_handler, &g_fake, &open_srv));
    mms_netserver_destroy(&open_srv);
    cfg.auth_token_len = 0;
    mms_log_set_level(MMS_LOG_QUIET);
    T_FAILS(mms_netserver_create(&cfg, fake_handler, &g_fake, &open_srv), MMS_ERR_ARG);
    mms_log_set_level(MMS_LOG_WARN);

    /* a loopback server with a token, 3 connections per address, 0.5 s to send a first frame */
    cfg.host = "127.0.0.1";
    cfg.auth_token_len = strlen(token);
    cfg.max_clients_per_address = 3;
    cfg.first_frame_timeout = W(0.5);
    cfg.request_timeout = W(5.0);
    T_OK(mms_netserver_create(&cfg, fake_handler, &g_fake, &g_srv2));
    if (!g_srv2) return;
    char addr[64];
    mms_netserver_address(g_srv2, addr, sizeof addr);
    mms_status run_st = -1;
    pthread_t th;
    pthread_create(&th, NULL, server2_main, &run_st);

    /* auth: missing, wrong, a prefix, longer, right; a malformed frame is still answered */
    mms_netclient_t *c = NULL;
    T_OK(mms_netclient_connect(addr, W(2.0), &c));
    static const char *const tries[] = {NULL, "s3cret-Token_43", "s3cret-Token_4",
                                        "s3cret-Token_42x", "x"};
    mms_response_t r;
    for (int i = 0; i < 5; i++) {
        T_CHECK(ping_with(c, tries[i], 20 + (uint64_t)i, &r));
        T_EQ_INT(r.ok, 0);
        T_EQ_INT(r.error_code, MMS_PERR_UNAUTHORIZED);
        T_EQ_INT(r.id, 20 + i);
        T_CHECK(strstr(r.error_message, i == 0 ? "requires a token" : "does not match") != NULL);
        T_CHECK(strstr(r.error_message, token) == NULL);
        mms_response_free(&r);
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    raw_frame(&sb, "\xc1", 1);
    T_OK(mms_netclient_send_raw(c, sb.data, sb.size, W(1.0)));
    msgpack_sbuffer_destroy(&sb);
    T_OK(mms_netclient_recv(c, &r, W(3.0)));
    T_EQ_INT(r.error_code, MMS_PERR_MALFORMED);
    mms_response_free(&r);
    T_CHECK(ping_with(c, token, 30, &r)); /* the connection is still usable */
    T_EQ_INT(r.ok, 1);
    T_EQ_INT(r.id, 30);
    mms_response_free(&r);

    /* per-address cap: c and two more are served, the next two are not */
    mms_netclient_t *more[4] = {NULL};
    int ok = 0, unavailable = 0;
    for (int i = 0; i < 4; i++) {
        T_OK(mms_netclient_connect(addr, W(2.0), &more[i]));
        if (!more[i]) continue;
        if (!ping_with(more[i], token, 40 + (uint64_t)i, &r)) continue;
        if (r.ok) ok++;
        else if (r.error_code == MMS_PERR_UNAVAILABLE && strstr(r.error_message, "per-address"))
            unavailable++;
        mms_response_free(&r);
    }
    T_EQ_INT(ok, 2);
    T_EQ_INT(unavailable, 2);
    for (int i = 0; i < 4; i++) mms_netclient_close(&more[i]);

    /* first-frame timeout: a silent connection is closed quietly after 0.5 s, one
     * with half a frame gets timeout; c, which completed frames, stays */
    mms_netclient_t *silent = NULL, *half = NULL;
    usleep(100000); /* the server sees the closes above (per-address count) */
    T_OK(mms_netclient_connect(addr, W(2.0), &silent));
    T_OK(mms_netclient_connect(addr, W(2.0), &half));
    double t0 = mms_now();
    static const unsigned char halfp[] = {0, 0, 0, 20, 0x82, 0xa2, 'o', 'p'};
    if (half) T_OK(mms_netclient_send_raw(half, halfp, sizeof halfp, W(1.0)));
    if (silent) T_CHECK(closed_by_server(silent, W(3.0)));
    double silent_s = mms_now() - t0;
    if (half) {
        T_OK(mms_netclient_recv(half, &r, W(3.0)));
        T_EQ_INT(r.error_code, MMS_PERR_TIMEOUT);
        T_CHECK(strstr(r.error_message, "first request") != NULL);
        mms_response_free(&r);
        T_CHECK(closed_by_server(half, W(2.0)));
    }
    T_CHECK(silent_s >= W(0.4)); /* not before its deadline */
    T_CHECK(ping_with(c, token, 50, &r));
    T_EQ_INT(r.ok, 1);
    mms_response_free(&r);
    fprintf(stderr, "  access: 5 requests without the right token refused; %d of 4 extra "
                    "connections refused by the per-address cap of 3; a silent connection closed "
                    "after %.2f s (first_frame_timeout %.2f s)\n",
            unavailable, silent_s, W(0.5));
    mms_netclient_close(&silent);
    mms_netclient_close(&half);
    mms_netclient_close(&c);
    mms_netserver_stop(g_srv2);
    pthread_join(th, NULL);
    T_OK(run_st);
    mms_netserver_stats_t st;
    mms_netserver_stats(g_srv2, &st);
    T_EQ_INT(st.unauthorized, 5);
    T_EQ_INT(st.refused_address, 2);
    T_CHECK(st.timeouts >= 2);
    mms_netserver_destroy(&g_srv2);
}

/* ---- --serve mode ------------------------------------------------------------ */

static volatile sig_atomic_t g_sig;
static void on_signal(int sig) {
    g_sig = sig;
    mms_netserver_stop(g_srv);
}

static int serve(int argc, char **argv) {
    mms_netserver_config_t cfg;
    mms_netserver_config_default(&cfg);
    cfg.port = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) cfg.port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim")) g_fake.dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--request-timeout")) cfg.request_timeout = atof(argv[i + 1]);
    }
    if (mms_netserver_create(&cfg, fake_handler, &g_fake, &g_srv) != MMS_OK) return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    char addr[64];
    printf("listening on %s\n", mms_netserver_address(g_srv, addr, sizeof addr));
    fflush(stdout);
    mms_status st = mms_netserver_run(g_srv);
    mms_netserver_stats_t s;
    mms_netserver_stats(g_srv, &s);
    fprintf(stderr, "test server: stopped by signal %d; %llu requests in %llu rounds (largest "
                    "batch %d), %llu decode errors\n",
            (int)g_sig, (unsigned long long)s.requests, (unsigned long long)s.rounds,
            s.max_batch_seen, (unsigned long long)s.decode_errors);
    mms_netserver_destroy(&g_srv);
    return st == MMS_OK ? 0 : 1;
}

/* --call HOST:PORT [--auth TOKEN]: one ping. */
static int call(int argc, char **argv) {
    const char *auth = NULL;
    for (int i = 3; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--auth")) auth = argv[i + 1];
    mms_netclient_t *c = NULL;
    if (argc < 3 || mms_netclient_connect(argv[2], 5.0, &c) != MMS_OK) return 2;
    mms_request_t q;
    mms_request_init(&q);
    q.op = MMS_OP_PING;
    q.id = 1;
    q.auth = auth;
    mms_response_t r;
    mms_status st = mms_netclient_call(c, &q, &r, 10.0);
    mms_netclient_close(&c);
    if (st != MMS_OK) {
        printf("no answer: %s\n", mms_error_message());
        return 2;
    }
    if (r.ok) printf("ok\n");
    else printf("error %s: %s\n", mms_proto_error_name(r.error_code), r.error_message);
    int rc = r.ok ? 0 : 1;
    mms_response_free(&r);
    return rc;
}

int main(int argc, char **argv) {
    for (int i = 0; i < FAKE_IDS; i++) snprintf(g_ids[i], sizeof g_ids[i], "img%05d", i);
    mms_log_init(0, 1, MMS_LOG_WARN);
    if (argc > 1 && !strcmp(argv[1], "--serve")) return serve(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "--call")) return call(argc, argv);

    const char *sc = getenv("MMS_TEST_TIME_SCALE");
    if (sc && atof(sc) >= 1.0) g_scale = atof(sc);
    const double request_timeout = W(1.0);
    const size_t max_frame = 1u << 20;
    const int max_clients = 30;
    mms_netserver_config_t cfg;
    mms_netserver_config_default(&cfg);
    cfg.port = 0;
    cfg.request_timeout = request_timeout;
    cfg.max_frame = max_frame;
    cfg.max_clients = max_clients;
    cfg.drain_timeout = W(3.0);
    T_OK(mms_netserver_create(&cfg, cost_handler, &g_fake, &g_srv));
    if (!g_srv) return mms_test_finish("test_netserver");
    T_CHECK(mms_netserver_port(g_srv) > 0);
    mms_netserver_address(g_srv, g_addr, sizeof g_addr);
    T_CHECK(!strncmp(g_addr, "127.0.0.1:", 10));
    /* the same port twice: refused with a message naming the address */
    mms_netserver_config_t cfg2 = cfg;
    cfg2.port = mms_netserver_port(g_srv);
    mms_netserver_t *dup = NULL;
    mms_log_set_level(MMS_LOG_QUIET);
    T_FAILS(mms_netserver_create(&cfg2, fake_handler, &g_fake, &dup), MMS_ERR_IO);
    mms_log_set_level(MMS_LOG_WARN);
    T_MSG_HAS("cannot listen on 127.0.0.1:");

    pthread_t th;
    pthread_create(&th, NULL, server_main, NULL);
    double t0 = mms_now();
    test_single_calls();
    test_concurrent();
    test_batching();
    test_staller(request_timeout);
    test_vanishing_clients();
    test_slow_reader();
    test_oversized(max_frame);
    test_malformed();
    test_max_clients(max_clients);
    test_fair_batch();
    test_steady_reader(request_timeout);
    test_emfile();
    test_handshake();
    test_access();
    test_drain(th);
    mms_netserver_stats_t st;
    mms_netserver_stats(g_srv, &st);
    fprintf(stderr, "  server: %llu accepted, %llu refused, %llu requests in %llu rounds, %llu "
                    "decode errors, %llu oversized, %llu timeouts; %.2f s in all\n",
            (unsigned long long)st.accepted, (unsigned long long)st.refused,
            (unsigned long long)st.requests, (unsigned long long)st.rounds,
            (unsigned long long)st.decode_errors, (unsigned long long)st.oversized,
            (unsigned long long)st.timeouts, mms_now() - t0);
    T_EQ_INT(st.clients, 0);
    T_CHECK(st.decode_errors >= 4);
    T_CHECK(st.oversized == 2);
    T_CHECK(st.refused >= 10);
    mms_netserver_destroy(&g_srv);
    T_CHECK(g_srv == NULL);
    return mms_test_finish("test_netserver");
}
