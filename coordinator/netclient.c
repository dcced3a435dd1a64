/* netclient.c: see netclient.h. The socket is non-blocking; every wait is a
 * poll(2) bounded by a deadline. */
#define _GNU_SOURCE
#include "netclient.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mms_addr.h"
#include "mms_array.h"
#include "mms_log.h"

struct mms_netclient {
    int fd;
    char addr[300];
    unsigned char *in; /* [in_off, in_len) unread */
    size_t in_off, in_len, in_cap;
    size_t max_frame;
};

static int ms_until(double deadline) {
    double d = deadline - mms_now();
    if (d <= 0) return 0;
    return d > 86400.0 ? 86400000 : (int)(d * 1000.0) + 1;
}

mms_status mms_netclient_connect(const char *hostport, double timeout_s, mms_netclient_t **out) {
    *out = NULL;
    MMS_CHECK(hostport && hostport[0], MMS_ERR_ARG, "no server address given");
    mms_addr_t a;
    MMS_CALL(mms_addr_parse(hostport, "server address", 1, &a));
    const char *host = a.host[0] ? a.host : MMS_DEFAULT_HOST;
    char port[16];
    snprintf(port, sizeof port, "%d", a.port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &hints, &ai);
    MMS_CHECK(gai == 0, MMS_ERR_IO, "cannot resolve server '%s': %s", host, gai_strerror(gai));
    double deadline = mms_now() + timeout_s;
    int fd = -1, err = ETIMEDOUT;
    for (struct addrinfo *p = ai; p && fd < 0; p = p->ai_next) {
        int s = socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, p->ai_protocol);
        if (s < 0) {
            err = errno;
            continue;
        }
        int rc = connect(s, p->ai_addr, p->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pf = {s, POLLOUT, 0};
            int pr;
            do pr = poll(&pf, 1, ms_until(deadline));
            while (pr < 0 && errno == EINTR);
            if (pr == 0) {
                err = ETIMEDOUT;
                close(s);
                continue;
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            rc = soerr ? -1 : 0;
            errno = soerr;
        }
        if (rc != 0) {
            err = errno;
            close(s);
            continue;
        }
        fd = s;
    }
    freeaddrinfo(ai);
    MMS_CHECK(fd >= 0, MMS_ERR_IO, "cannot connect to %s: %s", hostport,
              err == ETIMEDOUT ? "timed out" : strerror(err));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    mms_netclient_t *c = calloc(1, sizeof *c);
    if (!c) close(fd);
    MMS_CHECK(c, MMS_ERR_NOMEM, "out of memory");
    c->fd = fd;
    c->max_frame = MMS_PROTO_MAX_RESPONSE_DEFAULT;
    snprintf(c->addr, sizeof c->addr, "%s", hostport);
    *out = c;
    return MMS_OK;
}

void mms_netclient_set_max_frame(mms_netclient_t *c, size_t max_frame) { c->max_frame = max_frame; }

void mms_netclient_close(mms_netclient_t **cp) {
    if (!cp || !*cp) return;
    if ((*cp)->fd >= 0) close((*cp)->fd);
    free((*cp)->in);
    free(*cp);
    *cp = NULL;
}

/* Non-blocking send of as much as the socket takes; -1 on a dead connection. */
static ssize_t send_some(mms_netclient_t *c, const void *buf, size_t len) {
    for (;;) {
        ssize_t w = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (w >= 0) return w;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -1;
    }
}

static mms_status write_all(mms_netclient_t *c, const void *buf, size_t len, double deadline) {
    const char *p = buf;
    while (len > 0) {
        ssize_t w = send_some(c, p, len);
        MMS_CHECK(w >= 0, MMS_ERR_IO, "sending to %s: %s", c->addr, strerror(errno));
        p += w;
        len -= (size_t)w;
        if (len == 0) break;
        struct pollfd pf = {c->fd, POLLOUT, 0};
        int pr = poll(&pf, 1, ms_until(deadline));
        MMS_CHECK(pr != 0, MMS_ERR_IO, "sending to %s: timed out", c->addr);
        MMS_CHECK(pr > 0 || errno == EINTR, MMS_ERR_IO, "poll: %s", strerror(errno));
    }
    return MMS_OK;
}

mms_status mms_netclient_send_raw(mms_netclient_t *c, const void *buf, size_t len,
                                  double timeout_s) {
    return write_all(c, buf, len, mms_now() + timeout_s);
}

/* Read what the socket has into the input buffer. 1 = got bytes, 0 = nothing
 * yet, -1 = closed by the server (errno 0) or an error. */
static int read_some(mms_netclient_t *c) {
    if (c->in_off > 0 && c->in_off == c->in_len) c->in_off = c->in_len = 0;
    if (c->in_cap - c->in_len < 65536) {
        if (c->in_off > 0) {
            memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
            c->in_len -= c->in_off;
            c->in_off = 0;
        }
        if (mms_grow(&c->in, 1, c->in_len + 65536, &c->in_cap) != MMS_OK) {
            errno = ENOMEM;
            return -1;
        }
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r > 0) {
            c->in_len += (size_t)r;
            return 1;
        }
        if (r == 0) {
            errno = 0;
            return -1;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -1;
    }
}

/* A complete frame at the head of the input buffer: decode it. 1 = decoded
 * into *resp, 0 = not complete yet, else an error status (negated). */
static int take_frame(mms_netclient_t *c, mms_response_t *resp, mms_status *st) {
    size_t plen = 0;
    if (c->in_len == c->in_off) return 0; /* (the buffer may not be allocated yet) */
    int f = mms_frame_peek(c->in + c->in_off, c->in_len - c->in_off, c->max_frame, &plen);
    if (f == 0) return 0;
    if (f < 0) {
        mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                      "%s sent a frame of %zu bytes, above the client's limit of %zu", c->addr,
                      plen, c->max_frame);
        *st = MMS_ERR_FORMAT;
        return -1;
    }
    char err[512];
    int code = mms_response_decode(c->in + c->in_off + 4, plen, resp, err, sizeof err);
    c->in_off += 4 + plen;
    if (code != MMS_PERR_OK) {
        mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                      "%s sent a response that does not decode (%s): %s", c->addr,
                      mms_proto_error_name(code), err);
        *st = MMS_ERR_FORMAT;
        return -1;
    }
    return 1;
}

mms_status mms_netclient_recv(mms_netclient_t *c, mms_response_t *resp, double timeout_s) {
    double deadline = mms_now() + timeout_s;
    mms_response_init(resp, NULL);
    for (;;) {
        mms_status st = MMS_OK;
        int t = take_frame(c, resp, &st);
        if (t > 0) return MMS_OK;
        if (t < 0) return st;
        int r = read_some(c);
        MMS_CHECK(r >= 0, MMS_ERR_IO, "reading from %s: %s", c->addr,
                  errno ? strerror(errno) : "the server closed the connection");
        if (r > 0) continue;
        struct pollfd pf = {c->fd, POLLIN, 0};
        int pr = poll(&pf, 1, ms_until(deadline));
        MMS_CHECK(pr != 0, MMS_ERR_IO, "no response from %s within %.3g s", c->addr, timeout_s);
        MMS_CHECK(pr > 0 || errno == EINTR, MMS_ERR_IO, "poll: %s", strerror(errno));
    }
}

/* A connection-level error (the server refused or timed out the connection,
 * not one request): id 0 and not ok. */
static int connection_error(const mms_response_t *r) { return !r->ok && r->id == 0; }

mms_status mms_netclient_call(mms_netclient_t *c, const mms_request_t *req, mms_response_t *resp,
                              double timeout_s) {
    double deadline = mms_now() + timeout_s;
    mms_response_init(resp, NULL);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    mms_status st = mms_request_encode(req, &sb);
    if (st == MMS_OK) {
        st = write_all(c, sb.data, sb.size, deadline);
        if (st != MMS_OK) {
            /* the server may have said why before closing (e.g. unavailable) */
            mms_response_t r;
            if (mms_netclient_recv(c, &r, 1.0) == MMS_OK && connection_error(&r)) {
                *resp = r;
                st = MMS_OK;
            } else {
                mms_response_free(&r);
            }
            msgpack_sbuffer_destroy(&sb);
            return st;
        }
    }
    msgpack_sbuffer_destroy(&sb);
    MMS_CALL(st);
    double left = deadline - mms_now();
    MMS_CALL(mms_netclient_recv(c, resp, left > 0 ? left : 0));
    if (resp->id != req->id && !connection_error(resp)) {
        uint64_t got = resp->id;
        mms_response_free(resp);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s answered request %llu with id %llu", c->addr,
                  (unsigned long long)req->id, (unsigned long long)got);
    }
    return MMS_OK;
}

typedef struct {
    mms_request_t req;
    size_t end;    /* stream offset just past the request's last byte */
    double t_sent; /* when that byte went to the kernel; 0 while queued */
} inflight_t;

mms_status mms_netclient_pipeline(mms_netclient_t *c, int depth, double timeout_s,
                                  mms_netclient_next_fn next, mms_netclient_done_fn done,
                                  void *ctx) {
    MMS_CHECK(depth >= 1 && depth <= 1 << 16, MMS_ERR_ARG, "pipeline depth %d out of range",
              depth);
    inflight_t *ring;
    MMS_CALL(mms_calloc((size_t)depth, sizeof *ring, &ring));
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    size_t out_off = 0;      /* unsent bytes are sb.data[out_off..size) */
    size_t queued_total = 0; /* stream bytes queued so far */
    size_t sent_total = 0;   /* stream bytes sent so far */
    int head = 0, n = 0, more = 1, aborted = 0;
    uint64_t seq = 1;
    double last_progress = mms_now();
    mms_status st = MMS_OK;
    while ((more || n > 0) && st == MMS_OK) {
        /* fill the window */
        while (more && n < depth) {
            inflight_t *f = &ring[(head + n) % depth];
            mms_request_init(&f->req);
            int r = next(ctx, &f->req);
            if (r <= 0) {
                more = 0;
                aborted = r < 0;
                break;
            }
            f->req.id = seq++;
            size_t before = sb.size;
            st = mms_request_encode(&f->req, &sb);
            if (st != MMS_OK) break;
            queued_total += sb.size - before;
            f->end = queued_total;
            f->t_sent = 0;
            n++;
        }
        if (st != MMS_OK) break;
        /* write what the socket takes */
        if (sb.size > out_off) {
            ssize_t w = send_some(c, sb.data + out_off, sb.size - out_off);
            if (w < 0) {
                mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "sending to %s: %s",
                              c->addr, strerror(errno));
                st = MMS_ERR_IO;
                break;
            }
            if (w > 0) {
                double now = mms_now();
                out_off += (size_t)w;
                sent_total += (size_t)w;
                last_progress = now;
                for (int i = 0; i < n; i++) {
                    inflight_t *f = &ring[(head + i) % depth];
                    if (f->t_sent == 0 && f->end <= sent_total) f->t_sent = now;
                }
                if (out_off == sb.size) out_off = sb.size = 0;
            }
        }
        /* read and hand over every complete response */
        int r = read_some(c);
        if (r < 0) {
            mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "reading from %s: %s",
                          c->addr, errno ? strerror(errno) : "the server closed the connection");
            st = MMS_ERR_IO;
            break;
        }
        if (r > 0) last_progress = mms_now();
        for (;;) {
            mms_response_t resp;
            int t = take_frame(c, &resp, &st);
            if (t <= 0) break;
            double now = mms_now();
            if (n == 0 || resp.id != ring[head].req.id) {
                if (connection_error(&resp))
                    mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "%s: %s: %s", c->addr,
                                  mms_proto_error_name(resp.error_code), resp.error_message);
                else
                    mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                                  "%s sent response id %llu, expected %llu", c->addr,
                                  (unsigned long long)resp.id,
                                  (unsigned long long)(n ? ring[head].req.id : 0));
                st = connection_error(&resp) ? MMS_ERR_IO : MMS_ERR_FORMAT;
                mms_response_free(&resp);
                break;
            }
            inflight_t *f = &ring[head];
            double lat = now - (f->t_sent > 0 ? f->t_sent : now);
            st = done(ctx, &f->req, &resp, lat);
            mms_response_free(&resp);
            head = (head + 1) % depth;
            n--;
            if (st != MMS_OK) break;
        }
        if (st != MMS_OK) break;
        if (r > 0) continue; /* maybe more to read right away */
        if (!(more && n < depth) && (n > 0 || sb.size > out_off)) {
            struct pollfd pf = {c->fd, (short)(POLLIN | (sb.size > out_off ? POLLOUT : 0)), 0};
            int pr = poll(&pf, 1, ms_until(last_progress + timeout_s));
            if (pr == 0) {
                mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__,
                              "no progress from %s for %.3g s (%d requests in flight)", c->addr,
                              timeout_s, n);
                st = MMS_ERR_IO;
            } else if (pr < 0 && errno != EINTR) {
                mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "poll: %s",
                              strerror(errno));
                st = MMS_ERR_IO;
            }
        }
    }
    msgpack_sbuffer_destroy(&sb);
    free(ring);
    if (st != MMS_OK) {
        mms_error_trace(st, __FILE__, __LINE__, __func__);
        return st;
    }
    MMS_CHECK(!aborted, MMS_ERR_ARG, "the request source stopped the pipeline");
    return MMS_OK;
}
