/* netserver.c: see netserver.h. One poll(2) round:
 *   1. accept new connections (or refuse them beyond max_clients, beyond
 *      max_clients_per_address, or when out of descriptors);
 *   2. read what every readable client has (bounded per client and round);
 *      a new connection's first 8 bytes are read alone and must be its hello
 *      (take_hello): a good one is answered with ours; another version gets
 *      ours and the close; bytes that are no hello get a plain HTTP 400 when
 *      they look like an HTTP request, nothing otherwise, and the close;
 *   3. cut complete frames, one per client per pass, round-robin, up to
 *      max_batch and the round's cost budget: decode each; valid requests with
 *      the right token go to the batch, the others get their error response;
 *      frames that do not fit the budget stay queued for the next round;
 *   4. call the handler once with the batch;
 *   5. encode the responses into each client's output buffer in request order
 *      and write as much as the sockets take;
 *   6. time out stalled frames, silent new connections, readers that take no
 *      output and idle connections; close finished ones.
 * Time stamps: reads are stamped with the round's poll time, writes with the
 * time they happen (never a time from before the handler ran), so a slow round
 * is not mistaken for a client that stopped reading or sending.
 */
#define _GNU_SOURCE
#include "netserver.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mms_addr.h"
#include "mms_array.h"
#include "mms_log.h"

#define READ_CHUNK (64u << 10)          /* bytes asked of recv at a time */
#define READ_PER_ROUND (4u << 20)       /* bytes read from one client per round */
#define IN_SOFT_LIMIT (1u << 20)        /* buffered input beyond a whole frame */
#define SHRINK_ABOVE (1u << 20)         /* free idle buffers larger than this */
#define ACCEPT_PER_ROUND 64
#define ACCEPT_BACKOFF 0.25             /* seconds the listening socket rests after a failure */
#define LOG_INTERVAL 10.0               /* seconds between two accept-failure log lines */

typedef struct {
    int fd;
    unsigned char *in; /* bytes [in_off, in_len) are unconsumed */
    size_t in_off, in_len, in_cap;
    msgpack_sbuffer out; /* bytes [out_off, out.size) are unsent */
    size_t out_off;
    double frame_start;  /* first byte of the incomplete frame at the head of in, or 0 */
    double last_active;  /* last byte read or written */
    double last_written; /* last time the socket took output (or output was queued) */
    double accepted_at;  /* when the connection was accepted */
    unsigned char addr[16]; /* the peer's IP address (IPv4: 4 bytes, also when v4-mapped) */
    int addr_len;
    int hello;           /* the client's hello has been read and ours queued: frames may follow */
    int got_frame;       /* a complete frame has arrived on this connection */
    int skip;            /* this round: its next frame did not fit the budget */
    int closing;         /* send what is queued, then close; read no more */
    int dead;            /* close now, discard everything */
    int eof;             /* the peer closed its sending side */
} client_t;

typedef struct {
    client_t *c;
    int hidx;           /* index into the handler's arrays, or -1: err is the response */
    mms_response_t err; /* the loop's own response (decode error) */
    double t_complete;
} slot_t;

struct mms_netserver {
    mms_netserver_config_t cfg;
    char host[128];
    int port;
    int lfd;
    int pipe_r, pipe_w;
    volatile sig_atomic_t stop_flag;
    int draining, drain_reads_done, drained;
    double drain_deadline;
    mms_netserver_handler_fn handler;
    void *ctx;
    client_t **clients;
    int nclients;
    size_t clients_cap;
    struct pollfd *pfds;
    size_t pfds_cap;
    slot_t *slots;
    mms_request_t *reqs;
    mms_response_t *resps;
    int rr; /* round-robin start for frame extraction */
    unsigned char *token; /* cfg.auth_token's copy (token_len bytes), or NULL */
    size_t token_len;
    int spare_fd;         /* /dev/null, given up at EMFILE to accept and refuse one client */
    double accept_pause_until; /* the listening socket is not polled before this */
    double accept_logged_at;   /* last accept-failure log line (0: none yet) */
    uint64_t accept_unlogged;  /* refusals and failures since that line */
    mms_netserver_stats_t st;
};

void mms_netserver_config_default(mms_netserver_config_t *c) {
    memset(c, 0, sizeof *c);
    c->host = MMS_DEFAULT_HOST;
    c->port = MMS_DEFAULT_PORT;
    c->max_frame = MMS_PROTO_MAX_FRAME_DEFAULT;
    c->request_timeout = 10.0;
    c->idle_timeout = 600.0;
    c->drain_timeout = 5.0;
    c->max_clients = 1024;
    c->max_batch = 256;
    c->max_output = (size_t)64 << 20;
    c->max_clients_per_address = 64;
    c->first_frame_timeout = 10.0;
    c->max_round_cost = MMS_NETSERVER_ROUND_COST_DEFAULT;
}

uint64_t mms_netserver_request_cost(const mms_request_t *q) {
    uint64_t c = MMS_NETSERVER_COST_BASE;
    if (q->op == MMS_OP_SEARCH && q->k > 0) c += (uint64_t)q->k;
    if (q->predict_tags && q->tag_k > 0) c += (uint64_t)q->tag_k;
    return c;
}

/* Is this resolved address a loopback one? */
static int sockaddr_is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

int mms_netserver_is_loopback(const char *host) {
    if (!host || !host[0]) return 1; /* MMS_DEFAULT_HOST */
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0) return 0;
    int loop = ai != NULL;
    for (struct addrinfo *p = ai; p; p = p->ai_next)
        if (!sockaddr_is_loopback(p->ai_addr)) loop = 0;
    freeaddrinfo(ai);
    return loop;
}

/* The peer's IP address as a comparable key (IPv4-mapped IPv6 as IPv4). */
static int addr_key(const struct sockaddr_storage *sa, unsigned char key[16]) {
    if (sa->ss_family == AF_INET) {
        memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 4;
    }
    if (sa->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(key, &a->s6_addr[12], 4);
            return 4;
        }
        memcpy(key, a, 16);
        return 16;
    }
    return 0; /* unknown family: not capped */
}

/* 1 when the request carries exactly the token. Constant time in the token's
 * bytes: every byte is compared whatever differs first, and the lengths are
 * folded into the same accumulator (the length of what the client sent is the
 * client's own knowledge). */
static int token_ok(const mms_netserver_t *s, const char *auth) {
    if (!auth) return 0;
    size_t n = strlen(auth);
    volatile unsigned char acc = (unsigned char)(n != s->token_len);
    for (size_t i = 0; i < s->token_len; i++)
        acc |= (unsigned char)(s->token[i] ^ (unsigned char)(i < n ? auth[i] : 0));
    return acc == 0;
}

static int set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

mms_status mms_netserver_create(const mms_netserver_config_t *cfg, mms_netserver_handler_fn handler,
                                void *ctx, mms_netserver_t **out) {
    *out = NULL;
    MMS_CHECK(cfg && handler, MMS_ERR_ARG, "netserver: a config and a handler are required");
    MMS_CHECK(cfg->port >= 0 && cfg->port <= 65535, MMS_ERR_ARG, "netserver: port %d out of range",
              cfg->port);
    MMS_CHECK(cfg->max_frame >= 16 && cfg->max_frame <= UINT32_MAX, MMS_ERR_ARG,
              "netserver: max_frame %zu must be in [16, 4 GiB)", cfg->max_frame);
    MMS_CHECK(cfg->request_timeout > 0 && cfg->idle_timeout >= 0 && cfg->drain_timeout >= 0,
              MMS_ERR_ARG, "netserver: timeouts must be positive");
    MMS_CHECK(cfg->max_clients >= 1 && cfg->max_batch >= 1 && cfg->max_batch <= 1 << 20,
              MMS_ERR_ARG, "netserver: max_clients and max_batch must be positive");
    MMS_CHECK(cfg->max_clients_per_address >= 0 && cfg->first_frame_timeout >= 0, MMS_ERR_ARG,
              "netserver: max_clients_per_address and first_frame_timeout must not be negative");
    const char *host = cfg->host && cfg->host[0] ? cfg->host : MMS_DEFAULT_HOST;
    MMS_CHECK(strlen(host) < 128, MMS_ERR_ARG, "netserver: host name too long");
    if (cfg->auth_token) {
        MMS_CHECK(cfg->auth_token_len >= 1 && cfg->auth_token_len <= MMS_PROTO_MAX_STR &&
                      !memchr(cfg->auth_token, 0, cfg->auth_token_len),
                  MMS_ERR_ARG,
                  "netserver: the auth token must be 1..%d bytes without a NUL byte (it has %zu)",
                  MMS_PROTO_MAX_STR, cfg->auth_token_len);
    }
    MMS_CHECK(cfg->auth_token || mms_netserver_is_loopback(host), MMS_ERR_ARG,
              "netserver: refusing to listen on '%s' without an auth token: it is not a loopback "
              "address, so anyone who can reach the port could query the index; give a token "
              "(mmsage serve --auth-token-file FILE) or listen on 127.0.0.1",
              host);
    mms_netserver_t *s;
    MMS_CALL(mms_calloc(1, sizeof *s, &s));
    s->cfg = *cfg;
    snprintf(s->host, sizeof s->host, "%s", host);
    s->cfg.host = s->host;
    if (s->cfg.max_output < (1u << 16)) s->cfg.max_output = 1u << 16;
    s->lfd = s->pipe_r = s->pipe_w = s->spare_fd = -1;
    s->handler = handler;
    s->ctx = ctx;
    s->cfg.auth_token = NULL;
    mms_status st = MMS_OK;
    if (cfg->auth_token) {
        MMS_CALL_GOTO(st, fail, mms_calloc(cfg->auth_token_len, 1, &s->token));
        memcpy(s->token, cfg->auth_token, cfg->auth_token_len);
        s->token_len = cfg->auth_token_len;
    }
    if (s->cfg.max_round_cost == 0) s->cfg.max_round_cost = MMS_NETSERVER_ROUND_COST_DEFAULT;
    /* the spare descriptor that lets the loop refuse a client at EMFILE */
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    MMS_CALL_GOTO(st, fail, mms_calloc((size_t)s->cfg.max_batch, sizeof *s->slots, &s->slots));
    MMS_CALL_GOTO(st, fail, mms_calloc((size_t)s->cfg.max_batch, sizeof *s->reqs, &s->reqs));
    MMS_CALL_GOTO(st, fail, mms_calloc((size_t)s->cfg.max_batch, sizeof *s->resps, &s->resps));

    int pfd[2];
    MMS_CHECK_GOTO(st, fail, pipe(pfd) == 0, MMS_ERR_IO, "netserver: pipe: %s", strerror(errno));
    s->pipe_r = pfd[0];
    s->pipe_w = pfd[1];
    set_nonblock(s->pipe_r);
    set_nonblock(s->pipe_w);
    fcntl(s->pipe_r, F_SETFD, FD_CLOEXEC);
    fcntl(s->pipe_w, F_SETFD, FD_CLOEXEC);

    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", s->cfg.port);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    MMS_CHECK_GOTO(st, fail, gai == 0, MMS_ERR_ARG, "netserver: cannot resolve '%s': %s", host,
                   gai_strerror(gai));
    int err = 0;
    for (struct addrinfo *p = ai; p && s->lfd < 0; p = p->ai_next) {
        int fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, p->ai_addr, p->ai_addrlen) != 0 || listen(fd, 511) != 0 ||
            set_nonblock(fd) != 0) {
            err = errno;
            close(fd);
            continue;
        }
        s->lfd = fd;
    }
    freeaddrinfo(ai);
    MMS_CHECK_GOTO(st, fail, s->lfd >= 0, MMS_ERR_IO, "netserver: cannot listen on %s:%d: %s",
                   host, s->cfg.port, strerror(err));
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    MMS_CHECK_GOTO(st, fail, getsockname(s->lfd, (struct sockaddr *)&sa, &sl) == 0, MMS_ERR_IO,
                   "netserver: getsockname: %s", strerror(errno));
    s->port = sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&sa)->sin_port);
    /* room for max_clients descriptors: raise the soft limit toward the hard
     * one when needed (the usual soft default, 1024, is max_clients' default) */
    struct rlimit rl;
    rlim_t want = (rlim_t)s->cfg.max_clients + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        struct rlimit up = rl;
        up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (up.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &up) == 0) rl = up;
        if (rl.rlim_cur < want)
            mms_log_warn("netserver: max_clients %d is above what the descriptor limit allows "
                         "(ulimit -n %llu, hard limit %llu): connections beyond it will be told "
                         "'unavailable'",
                         s->cfg.max_clients, (unsigned long long)rl.rlim_cur,
                         (unsigned long long)rl.rlim_max);
    }
    *out = s;
    return MMS_OK;
fail:
    mms_netserver_destroy(&s);
    return st;
}

int mms_netserver_port(const mms_netserver_t *s) { return s->port; }

const char *mms_netserver_address(const mms_netserver_t *s, char *buf, size_t cap) {
    snprintf(buf, cap, strchr(s->host, ':') ? "[%s]:%d" : "%s:%d", s->host, s->port);
    return buf;
}

void mms_netserver_stop(mms_netserver_t *s) {
    if (!s) return;
    s->stop_flag = 1;
    if (s->pipe_w >= 0) {
        ssize_t w = write(s->pipe_w, "x", 1);
        (void)w; /* a full pipe already wakes the loop */
    }
}

void mms_netserver_wake(mms_netserver_t *s) {
    if (!s || s->pipe_w < 0) return;
    ssize_t w = write(s->pipe_w, "w", 1);
    (void)w; /* a full pipe already wakes the loop */
}

void mms_netserver_stats(const mms_netserver_t *s, mms_netserver_stats_t *out) {
    *out = s->st;
    out->clients = s->nclients;
}

static void client_free(client_t *c) {
    if (c->fd >= 0) close(c->fd);
    free(c->in);
    msgpack_sbuffer_destroy(&c->out);
    free(c);
}

void mms_netserver_destroy(mms_netserver_t **sp) {
    if (!sp || !*sp) return;
    mms_netserver_t *s = *sp;
    for (int i = 0; i < s->nclients; i++) client_free(s->clients[i]);
    free(s->clients);
    free(s->pfds);
    free(s->slots);
    free(s->reqs);
    free(s->resps);
    if (s->lfd >= 0) close(s->lfd);
    if (s->pipe_r >= 0) close(s->pipe_r);
    if (s->pipe_w >= 0) close(s->pipe_w);
    if (s->spare_fd >= 0) close(s->spare_fd);
    if (s->token) {
        explicit_bzero(s->token, s->token_len);
        free(s->token);
    }
    free(s);
    *sp = NULL;
}

/* ---- per-client I/O ------------------------------------------------------ */

static size_t out_pending(const client_t *c) { return c->out.size - c->out_off; }
static size_t in_pending(const client_t *c) { return c->in_len - c->in_off; }

/* mms_frame_peek on the client's unconsumed input (which may not be allocated). */
static int head_frame(const mms_netserver_t *s, const client_t *c, size_t *plen) {
    static const unsigned char none[4];
    if (!c->hello) { /* the hello's bytes are no frame */
        *plen = 0;
        return 0;
    }
    return mms_frame_peek(c->in ? c->in + c->in_off : none, in_pending(c), s->cfg.max_frame, plen);
}

/* Queue one response frame; on failure (out of memory) the client is dropped. */
static void queue_response(mms_netserver_t *s, client_t *c, const mms_response_t *r) {
    if (c->dead) return;
    if (out_pending(c) == 0) c->last_written = mms_now(); /* the write-stall clock starts */
    if (mms_response_encode(r, &c->out) != MMS_OK) {
        /* try a small internal error instead of the response that did not fit */
        mms_response_t e;
        mms_response_init(&e, NULL);
        e.id = r->id;
        mms_response_set_error(&e, MMS_PERR_INTERNAL, "the response could not be encoded: %s",
                               mms_error_message());
        if (mms_response_encode(&e, &c->out) != MMS_OK) c->dead = 1;
    }
    (void)s;
}

static void queue_error(mms_netserver_t *s, client_t *c, uint64_t id, int code, const char *msg) {
    mms_response_t e;
    mms_response_init(&e, NULL);
    e.id = id;
    mms_response_set_error(&e, code, "%s", msg);
    queue_response(s, c, &e);
}

/* Write what the socket takes. Progress is stamped with the time of the write
 * (not the round's start: the handler may have run for a while since), which
 * is what the write-stall timeout compares against. */
static void flush_client(client_t *c) {
    int wrote = 0;
    while (!c->dead && out_pending(c) > 0) {
        ssize_t w = send(c->fd, c->out.data + c->out_off, out_pending(c), MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            wrote = 1;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        c->dead = 1; /* EPIPE, ECONNRESET: the client is gone */
    }
    if (wrote) c->last_active = c->last_written = mms_now();
    if (out_pending(c) == 0) {
        c->out.size = 0;
        c->out_off = 0;
        if (c->out.alloc > SHRINK_ABOVE) {
            msgpack_sbuffer_destroy(&c->out);
            msgpack_sbuffer_init(&c->out);
        }
    } else if (c->out_off > (1u << 20) && c->out_off > c->out.size / 2) {
        memmove(c->out.data, c->out.data + c->out_off, out_pending(c));
        c->out.size -= c->out_off;
        c->out_off = 0;
    }
}

/* Bytes the client may still buffer: the whole current frame, or a soft limit. */
static size_t in_room(const mms_netserver_t *s, const client_t *c) {
    size_t have = in_pending(c), want = IN_SOFT_LIMIT, plen;
    if (!c->hello) /* the hello alone first */
        return have < MMS_HELLO_LEN ? MMS_HELLO_LEN - have : 0;
    if (head_frame(s, c, &plen) == 0 && have >= 4 &&
        4 + plen > want)
        want = 4 + plen;
    return have < want ? want - have : 0;
}

static int wants_read(const mms_netserver_t *s, const client_t *c) {
    return !c->dead && !c->closing && !c->eof && !(s->draining && s->drain_reads_done) &&
           out_pending(c) < s->cfg.max_output && in_room(s, c) > 0;
}

/* Close a connection that will not be served, after what is queued (a hello,
 * a short HTTP answer: a few hundred bytes that the socket takes at once).
 * What the client sent is read away first so that the close sends FIN, not
 * RST (which could destroy the answer before the client reads it). */
static void hang_up(client_t *c) {
    flush_client(c);
    shutdown(c->fd, SHUT_WR);
    char junk[4096];
    for (int i = 0; i < 16 && recv(c->fd, junk, sizeof junk, MSG_DONTWAIT) > 0; i++) {
    }
    c->dead = 1;
}

/* What a plain HTTP client (a browser, curl) gets from the query port. */
static const char HTTP_BODY[] =
    "This port is an mmsage query server: it speaks the mmsage query protocol "
    "(docs/protocol.md), not HTTP.\nQuery it with: mmsage query --server HOST:PORT ...\n"
    "For a search page in a browser, run mmsage web --server HOST:PORT and open the "
    "address it prints.\n";

/* The client's first bytes, before any frame (in_room lets in only the
 * hello's 8 bytes until it is taken). */
static void take_hello(mms_netserver_t *s, client_t *c) {
    const unsigned char *b = c->in + c->in_off;
    size_t n = in_pending(c);
    unsigned v = 0;
    int h = mms_hello_parse(b, n, &v);
    if (h == 0 && !c->eof) return; /* a prefix of a hello: more to come (first-frame timeout) */
    if (h > 0) {
        unsigned char mine[MMS_HELLO_LEN];
        mms_hello_encode(mine, MMS_PROTO_VERSION);
        if (out_pending(c) == 0) c->last_written = mms_now();
        if (msgpack_sbuffer_write(&c->out, (const char *)mine, MMS_HELLO_LEN) != 0) {
            c->dead = 1;
            return;
        }
        c->in_off += MMS_HELLO_LEN;
        c->frame_start = 0; /* in_room let in nothing beyond the hello */
        if (v != MMS_PROTO_VERSION) { /* ours tells the client which version we speak */
            s->st.version_mismatch++;
            hang_up(c);
            return;
        }
        c->hello = 1;
        return;
    }
    /* not an mmsage client; decide on the whole 8 bytes unless it stopped sending */
    if (h < 0 && n < MMS_HELLO_LEN && !c->eof) return;
    s->st.not_mmsage++;
    if (h < 0 && mms_hello_looks_http(b, n)) {
        char head[160];
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                          "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                          sizeof HTTP_BODY - 1);
        if (out_pending(c) == 0) c->last_written = mms_now();
        if (msgpack_sbuffer_write(&c->out, head, (size_t)hl) != 0 ||
            msgpack_sbuffer_write(&c->out, HTTP_BODY, sizeof HTTP_BODY - 1) != 0) {
            c->dead = 1;
            return;
        }
    }
    c->in_off = c->in_len = 0;
    c->frame_start = 0;
    hang_up(c);
}

static void read_client(mms_netserver_t *s, client_t *c, double now) {
    size_t budget = READ_PER_ROUND;
    while (budget > 0 && wants_read(s, c)) {
        size_t room = in_room(s, c);
        size_t ask = room < READ_CHUNK ? room : READ_CHUNK;
        if (ask > budget) ask = budget;
        if (c->in_off > 0 && c->in_len + ask > c->in_cap) { /* compact */
            memmove(c->in, c->in + c->in_off, in_pending(c));
            c->in_len -= c->in_off;
            c->in_off = 0;
        }
        if (mms_grow(&c->in, 1, c->in_len + ask, &c->in_cap) != MMS_OK) {
            c->dead = 1;
            return;
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, ask, 0);
        if (r > 0) {
            if (in_pending(c) == 0) c->frame_start = now;
            c->in_len += (size_t)r;
            c->last_active = now;
            budget -= (size_t)r;
            if (!c->hello) {
                take_hello(s, c);
                if (!c->hello) break; /* more of it to come, or the connection is done */
            }
            if ((size_t)r < ask) break; /* the socket is empty for now */
            continue;
        }
        if (r == 0) {
            c->eof = 1;
            if (!c->hello && in_pending(c) > 0) take_hello(s, c); /* a short non-hello */
            break;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) c->dead = 1;
        break;
    }
}

/* ---- the round ----------------------------------------------------------- */

/* Our hello and one best-effort unavailable frame to a connection the loop
 * will not serve (its hello is not read: the refusal is the answer whatever
 * the client is), then close. What the client already sent is read away
 * first, so the close sends FIN, not RST (which could destroy the frame
 * before it is read). */
static void refuse_fd(int fd, const char *msg) {
    mms_response_t e;
    mms_response_init(&e, NULL);
    mms_response_set_error(&e, MMS_PERR_UNAVAILABLE, "%s", msg);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    unsigned char hello[MMS_HELLO_LEN];
    mms_hello_encode(hello, MMS_PROTO_VERSION);
    if (msgpack_sbuffer_write(&sb, (const char *)hello, MMS_HELLO_LEN) == 0 &&
        mms_response_encode(&e, &sb) == MMS_OK) {
        ssize_t w = send(fd, sb.data, sb.size, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
    }
    msgpack_sbuffer_destroy(&sb);
    shutdown(fd, SHUT_WR);
    char junk[4096];
    for (int i = 0; i < 16 && recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0; i++) {
    }
    close(fd);
}

/* Accept failures and refusals for lack of descriptors: one log line per
 * LOG_INTERVAL, counting what happened since the last one. */
static void log_accept_trouble(mms_netserver_t *s, double now, int err) {
    s->accept_unlogged++;
    if (s->accept_logged_at > 0 && now - s->accept_logged_at < LOG_INTERVAL) return;
    struct rlimit rl;
    unsigned long long lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (unsigned long long)rl.rlim_cur : 0;
    if (err == EMFILE || err == ENFILE)
        mms_log_warn("netserver: accept: %s: %llu connection(s) refused or delayed since the last "
                     "message (%d clients open, ulimit -n %llu); raise ulimit -n or lower "
                     "--max-clients (next message in %.0f s at the earliest)",
                     strerror(err), (unsigned long long)s->accept_unlogged, s->nclients, lim,
                     LOG_INTERVAL);
    else
        mms_log_warn("netserver: accept: %s (%llu failure(s) since the last message; accepting "
                     "pauses %.2f s after each)",
                     strerror(err), (unsigned long long)s->accept_unlogged, ACCEPT_BACKOFF);
    s->accept_logged_at = now;
    s->accept_unlogged = 0;
}

/* Out of descriptors with connections waiting: give up the spare, accept one,
 * tell it "unavailable", close it, take the spare back. 1: one refused (try
 * again), 0: nothing was waiting, -1: not possible (back off). */
static int refuse_with_spare(mms_netserver_t *s, double now, int err) {
    if (s->spare_fd < 0) s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (s->spare_fd < 0) return -1;
    close(s->spare_fd);
    s->spare_fd = -1;
    int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int e = errno;
    if (fd >= 0) {
        refuse_fd(fd, "the server is out of file descriptors; retry later");
        s->st.refused_fd++;
        s->st.refused++;
        log_accept_trouble(s, now, err);
    }
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) return 1;
    return e == EAGAIN || e == EWOULDBLOCK ? 0 : -1;
}

static void accept_clients(mms_netserver_t *s, double now) {
    for (int i = 0; i < ACCEPT_PER_ROUND; i++) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(s->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EINTR || e == ECONNABORTED) continue;
            if (e == EAGAIN || e == EWOULDBLOCK) return;
            if (e == EMFILE || e == ENFILE) {
                int r = refuse_with_spare(s, now, e);
                if (r > 0) continue;
                if (r == 0) return;
            }
            /* the listening socket stays readable while the failure lasts:
             * rest it instead of spinning on it */
            s->accept_pause_until = now + ACCEPT_BACKOFF;
            s->st.accept_errors++;
            log_accept_trouble(s, now, e);
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char msg[160];
        if (s->nclients >= s->cfg.max_clients) {
            snprintf(msg, sizeof msg, "the server has %d clients, its limit; retry later",
                     s->cfg.max_clients);
            refuse_fd(fd, msg);
            s->st.refused++;
            continue;
        }
        unsigned char key[16];
        int klen = addr_key(&sa, key);
        if (s->cfg.max_clients_per_address > 0 && klen > 0) {
            int same = 0;
            for (int j = 0; j < s->nclients; j++) {
                const client_t *o = s->clients[j];
                same += !o->dead && o->addr_len == klen && !memcmp(o->addr, key, (size_t)klen);
            }
            if (same >= s->cfg.max_clients_per_address) {
                snprintf(msg, sizeof msg,
                         "your address already has %d connections, the server's per-address "
                         "limit; retry later",
                         same);
                refuse_fd(fd, msg);
                s->st.refused++;
                s->st.refused_address++;
                continue;
            }
        }
        client_t *c = calloc(1, sizeof *c);
        if (!c || mms_grow(&s->clients, sizeof *s->clients, (size_t)s->nclients + 1,
                           &s->clients_cap) != MMS_OK) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        msgpack_sbuffer_init(&c->out);
        c->last_active = c->last_written = c->accepted_at = now;
        memcpy(c->addr, key, sizeof key);
        c->addr_len = klen;
        s->clients[s->nclients++] = c;
        s->st.accepted++;
    }
}

/* The cost of a round (the handler's requests so far). The engine answers a
 * round's searches with the round's largest k for every one of them
 * (engine.c, chunk_end: top-kmax per shard, kmax per query on the wire), so
 * the round costs n * (base + kmax), not the sum of the k: one k=10000 search
 * makes every search of its round a k=10000 one. */
typedef struct {
    uint64_t n, nsearch, kmax, tag_k;
} round_cost_t;

static uint64_t round_cost_with(const round_cost_t *rc, const mms_request_t *q) {
    uint64_t n = rc->n, ns = rc->nsearch, kmax = rc->kmax, tk = rc->tag_k;
    if (q) {
        n++;
        if (q->op == MMS_OP_SEARCH) {
            ns++;
            if ((uint64_t)q->k > kmax) kmax = (uint64_t)q->k;
        }
        if (q->predict_tags && q->tag_k > 0) tk += (uint64_t)q->tag_k;
    }
    return n * MMS_NETSERVER_COST_BASE + ns * kmax + tk;
}

static void round_cost_add(round_cost_t *rc, const mms_request_t *q) {
    rc->n++;
    if (q->op == MMS_OP_SEARCH) {
        rc->nsearch++;
        if ((uint64_t)q->k > rc->kmax) rc->kmax = (uint64_t)q->k;
    }
    if (q->predict_tags && q->tag_k > 0) rc->tag_k += (uint64_t)q->tag_k;
}

/* Cut complete frames into slots: one per client per pass, round-robin from
 * s->rr, until max_batch, until nothing is left, or until the next request
 * does not fit the round's cost budget (that client is skipped for the rest of
 * the round, its frame stays queued, and it goes first next round). The first
 * request of a round always goes, whatever its cost. Returns the slot count. */
static int collect_frames(mms_netserver_t *s, double now, int *nvalid) {
    int nslots = 0, nv = 0, progress = 1, n = s->nclients, first_skipped = -1;
    round_cost_t rc = {0, 0, 0, 0};
    char err[512];
    for (int j = 0; j < n; j++) s->clients[j]->skip = 0;
    while (progress && nslots < s->cfg.max_batch) {
        progress = 0;
        for (int j = 0; j < n && nslots < s->cfg.max_batch; j++) {
            int ci = (s->rr + j) % n;
            client_t *c = s->clients[ci];
            if (c->dead || c->closing || c->skip) continue;
            if (out_pending(c) >= s->cfg.max_output) continue; /* it reads its answers first */
            size_t plen = 0;
            int f = head_frame(s, c, &plen);
            if (f == 0) continue;
            slot_t *sl = &s->slots[nslots];
            memset(sl, 0, sizeof *sl);
            sl->c = c;
            sl->t_complete = now;
            sl->hidx = -1;
            if (f < 0) {
                nslots++;
                progress = 1;
                mms_response_init(&sl->err, NULL);
                mms_response_set_error(&sl->err, MMS_PERR_FRAME_TOO_LARGE,
                                       "frame of %zu bytes exceeds the server's limit of %zu bytes",
                                       plen, s->cfg.max_frame);
                c->closing = 1; /* the stream cannot be resynchronised */
                c->in_off = c->in_len = 0;
                c->frame_start = 0;
                s->st.oversized++;
                continue;
            }
            const unsigned char *payload = c->in + c->in_off + 4;
            mms_request_t *rq = &s->reqs[nv];
            uint64_t id = 0;
            int code = mms_request_decode(payload, plen, rq, &id, err, sizeof err);
            int authorized = code == MMS_PERR_OK && (!s->token || token_ok(s, rq->auth));
            if (authorized) {
                if (nv > 0 && round_cost_with(&rc, rq) > s->cfg.max_round_cost) {
                    /* not this round: the frame stays where it is */
                    mms_request_free(rq);
                    c->skip = 1;
                    if (first_skipped < 0) first_skipped = ci;
                    s->st.deferred++;
                    continue;
                }
                round_cost_add(&rc, rq);
            }
            nslots++;
            progress = 1;
            c->in_off += 4 + plen;
            c->frame_start = in_pending(c) > 0 ? now : 0;
            c->got_frame = 1;
            if (code != MMS_PERR_OK) {
                mms_response_init(&sl->err, NULL);
                sl->err.id = id;
                mms_response_set_error(&sl->err, code, "%s", err);
                s->st.decode_errors++;
                continue;
            }
            if (!authorized) {
                mms_response_init(&sl->err, NULL);
                sl->err.id = rq->id;
                if (rq->auth)
                    mms_response_set_error(&sl->err, MMS_PERR_UNAUTHORIZED,
                                           "'auth' does not match the server's token");
                else
                    mms_response_set_error(&sl->err, MMS_PERR_UNAUTHORIZED,
                                           "this server requires a token: send it in 'auth' "
                                           "(mmsage query --auth-token-file FILE)");
                mms_request_free(rq);
                s->st.unauthorized++;
                continue;
            }
            sl->hidx = nv++;
        }
    }
    /* the client that had to wait goes first next round; otherwise rotate */
    if (first_skipped >= 0) s->rr = first_skipped;
    else if (n > 0) s->rr = (s->rr + 1) % n;
    uint64_t cost = round_cost_with(&rc, NULL);
    if (cost > s->st.max_round_cost_seen) s->st.max_round_cost_seen = cost;
    *nvalid = nv;
    return nslots;
}

static void run_handler(mms_netserver_t *s, int nv) {
    for (int i = 0; i < nv; i++) {
        mms_response_t *r = &s->resps[i];
        const mms_request_t *q = &s->reqs[i];
        mms_response_init(r, q);
        if (mms_response_reserve(r, q->op == MMS_OP_SEARCH ? q->k : 0,
                                 q->predict_tags ? q->tag_k : 0) != MMS_OK)
            mms_response_set_error(r, MMS_PERR_INTERNAL, "out of memory");
    }
    mms_error_clear();
    mms_status st = s->handler(s->ctx, s->reqs, nv, s->resps);
    if (st != MMS_OK) {
        const char *m = mms_error_message();
        for (int i = 0; i < nv; i++)
            if (s->resps[i].ok)
                mms_response_set_error(&s->resps[i], MMS_PERR_INTERNAL, "%s (%s)",
                                       m[0] ? m : "the handler failed", mms_status_name(st));
    }
    s->st.rounds++;
    s->st.requests += (uint64_t)nv;
    if (nv > s->st.max_batch_seen) s->st.max_batch_seen = nv;
}

static void remove_closed(mms_netserver_t *s) {
    int w = 0;
    for (int i = 0; i < s->nclients; i++) {
        client_t *c = s->clients[i];
        int done = c->dead || ((c->closing || c->eof) && out_pending(c) == 0 &&
                               (c->closing || head_frame(s, c, &(size_t){0}) == 0));
        if (done) client_free(c);
        else s->clients[w++] = c;
    }
    s->nclients = w;
}

/* now: the round's poll time (the last time every client was read), for the
 * deadlines of what clients send; tw: the time after the last flush, for the
 * write-stall deadline (a client that took output since has a fresher stamp). */
static void check_timeouts(mms_netserver_t *s, double now, double tw) {
    for (int i = 0; i < s->nclients; i++) {
        client_t *c = s->clients[i];
        if (c->dead) continue;
        size_t hplen = 0;
        /* a new connection that has not completed a frame within first_frame_timeout */
        if (!c->got_frame && !c->closing && s->cfg.first_frame_timeout > 0 &&
            now - c->accepted_at >= s->cfg.first_frame_timeout &&
            head_frame(s, c, &hplen) == 0) {
            s->st.timeouts++;
            /* never said a word, or not even a whole hello: close quietly (there
             * is no framed answer to a client that has not said hello) */
            if (in_pending(c) == 0 || !c->hello) {
                c->dead = 1;
                continue;
            }
            char msg[160];
            snprintf(msg, sizeof msg, "the first request was not completed within %.3g s of "
                     "connecting (%zu bytes received)", s->cfg.first_frame_timeout, in_pending(c));
            queue_error(s, c, 0, MMS_PERR_TIMEOUT, msg);
            c->closing = 1;
            c->in_off = c->in_len = 0;
            c->frame_start = 0;
            flush_client(c);
            continue;
        }
        /* a frame started and not finished in time (unless we stopped reading it) */
        if (!c->closing && c->frame_start > 0 && out_pending(c) < s->cfg.max_output &&
            now - c->frame_start >= s->cfg.request_timeout) {
            size_t plen = 0;
            if (!c->hello) { /* part of a hello (no first-frame timeout): quietly */
                c->dead = 1;
                s->st.timeouts++;
                continue;
            }
            if (head_frame(s, c, &plen) == 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "the frame was not completed within %.3g s (%zu bytes "
                         "received)", s->cfg.request_timeout, in_pending(c));
                queue_error(s, c, 0, MMS_PERR_TIMEOUT, msg);
                c->closing = 1;
                c->in_off = c->in_len = 0;
                c->frame_start = 0;
                s->st.timeouts++;
                flush_client(c);
                continue;
            }
        }
        /* output nobody reads: drop after the request timeout without progress */
        if (out_pending(c) > 0 && tw - c->last_written >= s->cfg.request_timeout) {
            c->dead = 1;
            s->st.timeouts++;
            continue;
        }
        if (s->cfg.idle_timeout > 0 && in_pending(c) == 0 && out_pending(c) == 0 &&
            now - c->last_active >= s->cfg.idle_timeout) {
            c->dead = 1;
            s->st.timeouts++;
        }
    }
}

/* Milliseconds until the nearest deadline, capped at cap_ms (-1 = no cap). */
static int next_timeout_ms(const mms_netserver_t *s, double now, int cap_ms) {
    double t = cap_ms < 0 ? 3600.0 : cap_ms / 1000.0;
    for (int i = 0; i < s->nclients; i++) {
        const client_t *c = s->clients[i];
        size_t plen;
        if (!c->closing && out_pending(c) < s->cfg.max_output && head_frame(s, c, &plen) != 0)
            return 0; /* a complete frame is waiting (the last round was full) */
        if (!c->got_frame && !c->closing && s->cfg.first_frame_timeout > 0) {
            double d = c->accepted_at + s->cfg.first_frame_timeout - now;
            if (d < t) t = d;
        }
        if (c->frame_start > 0 && !c->closing) {
            double d = c->frame_start + s->cfg.request_timeout - now;
            if (d < t) t = d;
        }
        if (out_pending(c) > 0) {
            double d = c->last_written + s->cfg.request_timeout - now;
            if (d < t) t = d;
        }
        if (s->cfg.idle_timeout > 0) {
            double d = c->last_active + s->cfg.idle_timeout - now;
            if (d < t) t = d;
        }
    }
    if (s->draining) {
        double d = s->drain_deadline - now;
        if (d < t) t = d;
    }
    if (s->lfd >= 0 && s->accept_pause_until > now) {
        double d = s->accept_pause_until - now;
        if (d < t) t = d;
    }
    if (t <= 0) return 0;
    int ms = (int)(t * 1000.0) + 1;
    return cap_ms >= 0 && ms > cap_ms ? cap_ms : ms;
}

static void begin_drain(mms_netserver_t *s, double now) {
    if (s->draining) return;
    s->draining = 1;
    s->drain_deadline = now + s->cfg.drain_timeout;
    if (s->lfd >= 0) {
        close(s->lfd);
        s->lfd = -1;
    }
}

mms_status mms_netserver_step(mms_netserver_t *s, int timeout_ms, int *stopped) {
    if (stopped) *stopped = s->drained;
    if (s->drained) return MMS_OK;
    double now = mms_now();
    if (s->stop_flag) begin_drain(s, now);

    /* 1. poll */
    int need = s->nclients + 2;
    MMS_CALL(mms_grow(&s->pfds, sizeof *s->pfds, (size_t)need, &s->pfds_cap));
    struct pollfd *p = s->pfds;
    p[0].fd = s->pipe_r;
    p[0].events = POLLIN;
    /* -1 while draining or resting after an accept failure: poll ignores it */
    p[1].fd = now >= s->accept_pause_until ? s->lfd : -1;
    p[1].events = POLLIN;
    p[1].revents = 0;
    for (int i = 0; i < s->nclients; i++) {
        client_t *c = s->clients[i];
        p[i + 2].fd = c->fd;
        p[i + 2].events = (short)((wants_read(s, c) ? POLLIN : 0) | (out_pending(c) ? POLLOUT : 0));
        p[i + 2].revents = 0;
    }
    int tmo = next_timeout_ms(s, now, timeout_ms);
    int pr = poll(p, (nfds_t)need, tmo);
    MMS_CHECK(pr >= 0 || errno == EINTR, MMS_ERR_IO, "netserver: poll: %s", strerror(errno));
    s->st.polls++;
    now = mms_now();
    if (pr > 0 && (p[0].revents & POLLIN)) {
        char buf[64];
        while (read(s->pipe_r, buf, sizeof buf) > 0) {
        }
    }
    if (s->stop_flag) begin_drain(s, now);

    /* 2. read (the clients polled are the first nclients; accepted ones come after) */
    int npolled = s->nclients;
    for (int i = 0; i < npolled && pr > 0; i++) {
        client_t *c = s->clients[i];
        short re = p[i + 2].revents;
        if (re & (POLLNVAL | POLLERR)) {
            c->dead = 1; /* reset or invalid: nothing more can be sent either */
            continue;
        }
        if (re & (POLLIN | POLLHUP)) read_client(s, c, now);
        if ((re & POLLHUP) && !(re & POLLIN)) c->eof = 1; /* both directions are gone */
        if (re & POLLOUT) flush_client(c);
    }
    if (s->draining) s->drain_reads_done = 1;
    if (pr > 0 && s->lfd >= 0 && p[1].fd >= 0 && (p[1].revents & POLLIN)) accept_clients(s, now);

    /* 3-5. frames -> handler -> responses */
    int nv = 0;
    int nslots = collect_frames(s, now, &nv);
    if (nv > 0) run_handler(s, nv);
    double tenc = mms_now();
    for (int i = 0; i < nslots; i++) {
        slot_t *sl = &s->slots[i];
        mms_response_t *r = sl->hidx >= 0 ? &s->resps[sl->hidx] : &sl->err;
        uint64_t us = (uint64_t)((tenc - sl->t_complete) * 1e6);
        if (sl->hidx >= 0) mms_response_add_timing(r, "server", us);
        queue_response(s, sl->c, r);
        mms_response_free(r);
        if (sl->hidx >= 0) mms_request_free(&s->reqs[sl->hidx]);
    }
    for (int i = 0; i < s->nclients; i++) {
        client_t *c = s->clients[i];
        if (out_pending(c) > 0) flush_client(c);
        if (in_pending(c) == 0 && c->in_cap > SHRINK_ABOVE) {
            free(c->in);
            c->in = NULL;
            c->in_cap = c->in_len = c->in_off = 0;
        }
    }

    /* 6. timeouts, closes, drain completion */
    check_timeouts(s, now, mms_now());
    remove_closed(s);
    if (s->draining) {
        int busy = 0;
        size_t plen;
        for (int i = 0; i < s->nclients; i++) {
            client_t *c = s->clients[i];
            if (out_pending(c) > 0 ||
                (!c->closing && head_frame(s, c, &plen) != 0))
                busy = 1;
        }
        if (!busy || mms_now() >= s->drain_deadline) {
            for (int i = 0; i < s->nclients; i++) client_free(s->clients[i]);
            s->nclients = 0;
            s->drained = 1;
        }
    }
    if (stopped) *stopped = s->drained;
    return MMS_OK;
}

mms_status mms_netserver_run(mms_netserver_t *s) {
    int stopped = 0;
    while (!stopped) MMS_CALL(mms_netserver_step(s, -1, &stopped));
    return MMS_OK;
}
