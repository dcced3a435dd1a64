/* netserver.c: see netserver.h. One poll(2) round:
 *   1. accept new connections (or refuse them beyond max_clients);
 *   2. read what every readable client has (bounded per client and round);
 *   3. cut complete frames, round-robin over clients, up to max_batch: decode
 *      each; valid requests go to the batch, decode errors get their response;
 *   4. call the handler once with the batch;
 *   5. encode the responses into each client's output buffer in request order
 *      and write as much as the sockets take;
 *   6. time out stalled frames and idle connections; close finished ones.
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

typedef struct {
    int fd;
    unsigned char *in; /* bytes [in_off, in_len) are unconsumed */
    size_t in_off, in_len, in_cap;
    msgpack_sbuffer out; /* bytes [out_off, out.size) are unsent */
    size_t out_off;
    double frame_start;  /* first byte of the incomplete frame at the head of in, or 0 */
    double last_active;  /* last byte read or written */
    double last_written; /* last time the socket took output (or output was queued) */
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
    const char *host = cfg->host && cfg->host[0] ? cfg->host : MMS_DEFAULT_HOST;
    MMS_CHECK(strlen(host) < 128, MMS_ERR_ARG, "netserver: host name too long");
    mms_netserver_t *s;
    MMS_CALL(mms_calloc(1, sizeof *s, &s));
    s->cfg = *cfg;
    snprintf(s->host, sizeof s->host, "%s", host);
    s->cfg.host = s->host;
    if (s->cfg.max_output < (1u << 16)) s->cfg.max_output = 1u << 16;
    s->lfd = s->pipe_r = s->pipe_w = -1;
    s->handler = handler;
    s->ctx = ctx;
    mms_status st = MMS_OK;
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
    free(s);
    *sp = NULL;
}

/* ---- per-client I/O ------------------------------------------------------ */

static size_t out_pending(const client_t *c) { return c->out.size - c->out_off; }
static size_t in_pending(const client_t *c) { return c->in_len - c->in_off; }

/* mms_frame_peek on the client's unconsumed input (which may not be allocated). */
static int head_frame(const mms_netserver_t *s, const client_t *c, size_t *plen) {
    static const unsigned char none[4];
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

static void flush_client(client_t *c, double now) {
    while (!c->dead && out_pending(c) > 0) {
        ssize_t w = send(c->fd, c->out.data + c->out_off, out_pending(c), MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            c->last_active = c->last_written = now;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        c->dead = 1; /* EPIPE, ECONNRESET: the client is gone */
    }
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
    if (head_frame(s, c, &plen) == 0 && have >= 4 &&
        4 + plen > want)
        want = 4 + plen;
    return have < want ? want - have : 0;
}

static int wants_read(const mms_netserver_t *s, const client_t *c) {
    return !c->dead && !c->closing && !c->eof && !(s->draining && s->drain_reads_done) &&
           out_pending(c) < s->cfg.max_output && in_room(s, c) > 0;
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
            if ((size_t)r < ask) break; /* the socket is empty for now */
            continue;
        }
        if (r == 0) {
            c->eof = 1;
            break;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) c->dead = 1;
        break;
    }
}

/* ---- the round ----------------------------------------------------------- */

static void accept_clients(mms_netserver_t *s, double now) {
    for (int i = 0; i < ACCEPT_PER_ROUND; i++) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
                mms_log_warn("netserver: accept: %s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (s->nclients >= s->cfg.max_clients) {
            /* one best-effort error frame so the client learns why, then close */
            mms_response_t e;
            mms_response_init(&e, NULL);
            mms_response_set_error(&e, MMS_PERR_UNAVAILABLE,
                                   "the server has %d clients, its limit; retry later",
                                   s->cfg.max_clients);
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            if (mms_response_encode(&e, &sb) == MMS_OK) {
                ssize_t w = send(fd, sb.data, sb.size, MSG_NOSIGNAL);
                (void)w;
            }
            msgpack_sbuffer_destroy(&sb);
            close(fd);
            s->st.refused++;
            continue;
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
        c->last_active = c->last_written = now;
        s->clients[s->nclients++] = c;
        s->st.accepted++;
    }
}

/* Cut complete frames round-robin over clients into slots; returns the count. */
static int collect_frames(mms_netserver_t *s, double now, int *nvalid) {
    int nslots = 0, nv = 0, progress = 1;
    char err[512];
    while (progress && nslots < s->cfg.max_batch) {
        progress = 0;
        for (int j = 0; j < s->nclients && nslots < s->cfg.max_batch; j++) {
            client_t *c = s->clients[(s->rr + j) % s->nclients];
            if (c->dead || c->closing) continue;
            size_t plen = 0;
            int f = head_frame(s, c, &plen);
            if (f == 0) continue;
            progress = 1;
            slot_t *sl = &s->slots[nslots++];
            memset(sl, 0, sizeof *sl);
            sl->c = c;
            sl->t_complete = now;
            sl->hidx = -1;
            if (f < 0) {
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
            c->in_off += 4 + plen;
            c->frame_start = in_pending(c) > 0 ? now : 0;
            mms_request_t *rq = &s->reqs[nv];
            uint64_t id = 0;
            int code = mms_request_decode(payload, plen, rq, &id, err, sizeof err);
            if (code != MMS_PERR_OK) {
                mms_response_init(&sl->err, NULL);
                sl->err.id = id;
                mms_response_set_error(&sl->err, code, "%s", err);
                s->st.decode_errors++;
                continue;
            }
            sl->hidx = nv++;
        }
    }
    if (s->nclients > 0) s->rr = (s->rr + 1) % s->nclients;
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

static void check_timeouts(mms_netserver_t *s, double now) {
    for (int i = 0; i < s->nclients; i++) {
        client_t *c = s->clients[i];
        if (c->dead) continue;
        /* a frame started and not finished in time (unless we stopped reading it) */
        if (!c->closing && c->frame_start > 0 && out_pending(c) < s->cfg.max_output &&
            now - c->frame_start >= s->cfg.request_timeout) {
            size_t plen = 0;
            if (head_frame(s, c, &plen) == 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "the frame was not completed within %.3g s (%zu bytes "
                         "received)", s->cfg.request_timeout, in_pending(c));
                queue_error(s, c, 0, MMS_PERR_TIMEOUT, msg);
                c->closing = 1;
                c->in_off = c->in_len = 0;
                c->frame_start = 0;
                s->st.timeouts++;
                flush_client(c, now);
                continue;
            }
        }
        /* output nobody reads: drop after the request timeout without progress */
        if (out_pending(c) > 0 && now - c->last_written >= s->cfg.request_timeout) {
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
        if (!c->closing && head_frame(s, c, &plen) != 0)
            return 0; /* a complete frame is waiting (the last round's batch was full) */
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
    p[1].fd = s->lfd; /* -1 while draining: poll ignores it */
    p[1].events = POLLIN;
    for (int i = 0; i < s->nclients; i++) {
        client_t *c = s->clients[i];
        p[i + 2].fd = c->fd;
        p[i + 2].events = (short)((wants_read(s, c) ? POLLIN : 0) | (out_pending(c) ? POLLOUT : 0));
        p[i + 2].revents = 0;
    }
    int tmo = next_timeout_ms(s, now, timeout_ms);
    int pr = poll(p, (nfds_t)need, tmo);
    MMS_CHECK(pr >= 0 || errno == EINTR, MMS_ERR_IO, "netserver: poll: %s", strerror(errno));
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
        if (re & POLLOUT) flush_client(c, now);
    }
    if (s->draining) s->drain_reads_done = 1;
    if (pr > 0 && s->lfd >= 0 && (p[1].revents & POLLIN)) accept_clients(s, now);

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
        if (out_pending(c) > 0) flush_client(c, now);
        if (in_pending(c) == 0 && c->in_cap > SHRINK_ABOVE) {
            free(c->in);
            c->in = NULL;
            c->in_cap = c->in_len = c->in_off = 0;
        }
    }

    /* 6. timeouts, closes, drain completion */
    check_timeouts(s, mms_now());
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
