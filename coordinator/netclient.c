/* netclient.c: see netclient.h. The socket is non-blocking; every wait is a
 * poll(2) bounded by a deadline. A failure is first recorded in the client
 * (set_fail: status, message, transient or not) without logging; it becomes
 * the error (logged once, REPORT) only when it is final, so a failure that is
 * retried prints just its retry line.
 *
 * The handshake (docs/protocol.md, "Handshake"): dial() sends our hello right
 * after connecting; the server's hello is taken from the input before the
 * first frame (take_hello), so the hello costs no round trip (the first
 * request follows ours without waiting). A peer whose first bytes are not a
 * hello is "not an mmsage server", one with another version says which: both
 * final, never retried. A peer that closes before sending anything is
 * transient like any closed connection (a server restarting does that). */
#define _GNU_SOURCE
#include "netclient.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mms_addr.h"
#include "mms_array.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_rng.h"

struct mms_netclient {
    int fd;         /* -1 between connections (after a transient failure) */
    char addr[300]; /* the address of the current or last connection */
    unsigned char *in; /* [in_off, in_len) unread */
    size_t in_off, in_len, in_cap;
    size_t max_frame;
    int hello;        /* the server's hello has been read on this connection */
    double timeout_s; /* of a (re)connection */
    /* the retry policy (netclient.h) and the current outage */
    double retry_for_s, first_delay_s, max_delay_s;
    char *hostport, *addr_file, *who;
    uint64_t seed;    /* of the jitter */
    int attempt;      /* retries in the current outage */
    double outage_t0; /* its first failure; 0 = none */
    long retries;     /* over the client's life */
    /* the last failure */
    mms_status fail_st;
    int transient;
    char why[640];
};

static void set_fail(mms_netclient_t *c, mms_status st, int transient, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_fail(mms_netclient_t *c, mms_status st, int transient, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    c->fail_st = st;
    c->transient = transient;
}

/* The recorded failure becomes the error (logged once); returns its status. */
#define REPORT(c) report_fail((c), __FILE__, __LINE__, __func__)
static mms_status report_fail(mms_netclient_t *c, const char *file, int line, const char *func) {
    mms_error_set(c->fail_st, file, line, func, "%s", c->why);
    return c->fail_st;
}

/* The socket errors that a server going away or coming back produces (0 = EOF). */
static int transient_errno(int e) {
    return e == 0 || e == ECONNREFUSED || e == ECONNRESET || e == ECONNABORTED || e == EPIPE ||
           e == ETIMEDOUT;
}

static int ms_until(double deadline) {
    double d = deadline - mms_now();
    if (d <= 0) return 0;
    return d > 86400.0 ? 86400000 : (int)(d * 1000.0) + 1;
}

/* Close the connection (if any) and forget unread input. */
static void drop(mms_netclient_t *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->in_off = c->in_len = 0;
    c->hello = 0;
}

/* The first line of the address file, blanks trimmed, into out. A missing or
 * empty file is transient (the server is starting and has not written it). */
static mms_status read_addr_file(mms_netclient_t *c, char *out, size_t cap) {
    FILE *f = fopen(c->addr_file, "r");
    if (!f) {
        int e = errno;
        set_fail(c, MMS_ERR_IO, e == ENOENT, "cannot read the server address file %s: %s",
                 c->addr_file, strerror(e));
        return MMS_ERR_IO;
    }
    char line[300] = "";
    if (!fgets(line, sizeof line, f)) line[0] = '\0';
    fclose(f);
    char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    size_t n = strcspn(p, "\r\n");
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    p[n] = '\0';
    if (n == 0) {
        set_fail(c, MMS_ERR_IO, 1, "the server address file %s is empty (server not ready?)",
                 c->addr_file);
        return MMS_ERR_IO;
    }
    snprintf(out, cap, "%s", p);
    return MMS_OK;
}

/* (Re)connect within timeout_s, to the address file's address when there is
 * one. The failure is recorded, not logged. */
static mms_status dial(mms_netclient_t *c, double timeout_s) {
    drop(c);
    char fromfile[300];
    const char *hostport = c->hostport;
    if (c->addr_file) {
        if (read_addr_file(c, fromfile, sizeof fromfile) != MMS_OK) return c->fail_st;
        hostport = fromfile;
    }
    snprintf(c->addr, sizeof c->addr, "%s", hostport);
    mms_addr_t a;
    if (mms_addr_parse_ex(hostport, "server address", 1, MMS_DEFAULT_PORT, MMS_ADDR_QUIET, &a) !=
        MMS_OK) {
        set_fail(c, MMS_ERR_ARG, 0, "bad server address '%s'%s%s (expected HOST:PORT)", hostport,
                 c->addr_file ? " in " : "", c->addr_file ? c->addr_file : "");
        return MMS_ERR_ARG;
    }
    const char *host = a.host[0] ? a.host : MMS_DEFAULT_HOST;
    char port[16];
    snprintf(port, sizeof port, "%d", a.port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0) {
        set_fail(c, MMS_ERR_IO, 0, "cannot resolve server '%s': %s", host, gai_strerror(gai));
        return MMS_ERR_IO;
    }
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
    if (fd < 0) {
        set_fail(c, MMS_ERR_IO, transient_errno(err), "cannot connect to %s: %s", hostport,
                 err == ETIMEDOUT ? "timed out" : strerror(err));
        return MMS_ERR_IO;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->hello = 0;
    /* our hello: 8 bytes into an empty socket buffer, sent at once */
    unsigned char hello[MMS_HELLO_LEN];
    mms_hello_encode(hello, MMS_PROTO_VERSION);
    ssize_t w;
    do w = send(fd, hello, sizeof hello, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)sizeof hello) {
        int e = w < 0 ? errno : EAGAIN;
        set_fail(c, MMS_ERR_IO, transient_errno(e), "sending to %s: %s", hostport, strerror(e));
        drop(c);
        return MMS_ERR_IO;
    }
    return MMS_OK;
}

/* After a failure recorded by set_fail: 1 when the policy allows another
 * attempt (the connection is then dropped, the wait logged and slept), 0 when
 * the failure is final. */
static int retry_wait(mms_netclient_t *c) {
    if (!c->transient || c->retry_for_s <= 0) return 0;
    double now = mms_now();
    if (c->outage_t0 == 0) {
        c->outage_t0 = now;
        c->attempt = 0;
    }
    double d = c->first_delay_s;
    for (int i = 0; i < c->attempt && d < c->max_delay_s; i++) d *= 2;
    if (d > c->max_delay_s) d = c->max_delay_s;
    double u = mms_rng_unit(mms_rng_hash(c->seed, 0, (uint64_t)c->retries, 0));
    double wait = d * (0.5 + 0.5 * u);
    double left = c->outage_t0 + c->retry_for_s - now;
    if (left <= 0) {
        mms_log_warn("%s: giving up after %d retries in %.1f s", c->who, c->attempt,
                     now - c->outage_t0);
        c->outage_t0 = 0;
        return 0;
    }
    if (wait > left) wait = left; /* one last attempt at the end of the window */
    c->attempt++;
    c->retries++;
    mms_log_warn("%s: %s; retry %d in %.2f s", c->who, c->why, c->attempt, wait);
    drop(c);
    struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 1;
}

void mms_netclient_retry_default(mms_netclient_retry_t *r) {
    *r = (mms_netclient_retry_t){.retry_for_s = 0,
                                 .first_delay_s = 0.1,
                                 .max_delay_s = 5,
                                 .addr_file = NULL,
                                 .who = "client"};
}

mms_status mms_netclient_open(const char *hostport, double timeout_s,
                              const mms_netclient_retry_t *r, mms_netclient_t **out) {
    *out = NULL;
    mms_netclient_retry_t def;
    if (!r) {
        mms_netclient_retry_default(&def);
        r = &def;
    }
    if (!r->addr_file) {
        MMS_CHECK(hostport && hostport[0], MMS_ERR_ARG, "no server address given");
        mms_addr_t a;
        MMS_CALL(mms_addr_parse(hostport, "server address", 1, &a));
    }
    MMS_CHECK(r->retry_for_s >= 0 && r->first_delay_s > 0 && r->max_delay_s >= r->first_delay_s,
              MMS_ERR_ARG, "netclient: bad retry policy (%g s, delays %g..%g s)", r->retry_for_s,
              r->first_delay_s, r->max_delay_s);
    mms_netclient_t *c;
    MMS_CALL(mms_calloc(1, sizeof *c, &c));
    c->fd = -1;
    c->max_frame = MMS_PROTO_MAX_RESPONSE_DEFAULT;
    c->timeout_s = timeout_s;
    c->retry_for_s = r->retry_for_s;
    c->first_delay_s = r->first_delay_s;
    c->max_delay_s = r->max_delay_s;
    c->hostport = hostport ? strdup(hostport) : NULL;
    c->addr_file = r->addr_file ? strdup(r->addr_file) : NULL;
    c->who = strdup(r->who ? r->who : "client");
    if ((hostport && !c->hostport) || (r->addr_file && !c->addr_file) || !c->who) {
        mms_netclient_close(&c);
        MMS_CHECK(0, MMS_ERR_NOMEM, "out of memory");
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    c->seed = ((uint64_t)getpid() << 32) ^ (uint64_t)now.tv_nsec ^ (uint64_t)now.tv_sec;
    snprintf(c->addr, sizeof c->addr, "%s", c->addr_file ? c->addr_file : hostport);
    for (;;) {
        if (dial(c, timeout_s) == MMS_OK) break;
        if (!retry_wait(c)) {
            mms_status st = REPORT(c);
            mms_netclient_close(&c);
            return st;
        }
    }
    c->outage_t0 = 0;
    *out = c;
    return MMS_OK;
}

mms_status mms_netclient_connect(const char *hostport, double timeout_s, mms_netclient_t **out) {
    return mms_netclient_open(hostport, timeout_s, NULL, out);
}

void mms_netclient_set_max_frame(mms_netclient_t *c, size_t max_frame) { c->max_frame = max_frame; }

long mms_netclient_retries(const mms_netclient_t *c) { return c->retries; }

const char *mms_netclient_address(const mms_netclient_t *c) { return c->addr; }

mms_status mms_netclient_read_token(const char *path, const char *what, char **tok) {
    *tok = NULL;
    struct stat sb;
    MMS_CHECK(stat(path, &sb) == 0, MMS_ERR_ARG, "%s %s: %s", what, path, strerror(errno));
    MMS_CHECK(S_ISREG(sb.st_mode), MMS_ERR_ARG, "%s %s is not a regular file", what, path);
    char *t = NULL;
    size_t n = 0;
    MMS_CALL(mms_read_file(path, &t, &n));
    if (n > 0 && t[n - 1] == '\n') t[--n] = '\0';
    int bad = n == 0 || n > MMS_PROTO_MAX_STR || memchr(t, 0, n) != NULL;
    if (bad) {
        explicit_bzero(t, n);
        free(t);
        MMS_CHECK(n > 0, MMS_ERR_ARG, "%s %s is empty", what, path);
        MMS_CHECK(0, MMS_ERR_ARG,
                  "%s %s: the token must be 1..%d bytes without a NUL byte (it has %zu bytes)",
                  what, path, MMS_PROTO_MAX_STR, n);
    }
    if (sb.st_mode & (S_IRWXG | S_IRWXO))
        mms_log_warn("%s %s can be read by its group or by others (mode %03o): chmod 600 it", what,
                     path, (unsigned)(sb.st_mode & 0777));
    *tok = t;
    return MMS_OK;
}

void mms_netclient_token_free(char **tok) {
    if (!tok || !*tok) return;
    explicit_bzero(*tok, strlen(*tok));
    free(*tok);
    *tok = NULL;
}

void mms_netclient_close(mms_netclient_t **cp) {
    if (!cp || !*cp) return;
    mms_netclient_t *c = *cp;
    drop(c);
    free(c->in);
    free(c->hostport);
    free(c->addr_file);
    free(c->who);
    free(c);
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
        if (w < 0) {
            int e = errno;
            set_fail(c, MMS_ERR_IO, transient_errno(e), "sending to %s: %s", c->addr, strerror(e));
            return MMS_ERR_IO;
        }
        p += w;
        len -= (size_t)w;
        if (len == 0) break;
        struct pollfd pf = {c->fd, POLLOUT, 0};
        int pr = poll(&pf, 1, ms_until(deadline));
        if (pr == 0) {
            set_fail(c, MMS_ERR_IO, 1, "sending to %s: timed out", c->addr);
            return MMS_ERR_IO;
        }
        if (pr < 0 && errno != EINTR) {
            set_fail(c, MMS_ERR_IO, 0, "poll: %s", strerror(errno));
            return MMS_ERR_IO;
        }
    }
    return MMS_OK;
}

mms_status mms_netclient_send_raw(mms_netclient_t *c, const void *buf, size_t len,
                                  double timeout_s) {
    if (write_all(c, buf, len, mms_now() + timeout_s) != MMS_OK) return REPORT(c);
    return MMS_OK;
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

/* The server's hello at the head of the input (before its first frame).
 * 1 = taken (frames may follow), 0 = not all here yet, -1 = a failure
 * (recorded, final; *st its status). A peer that is not an mmsage server is
 * told at its first byte that cannot start a hello, whatever it sends next. */
static int take_hello(mms_netclient_t *c, mms_status *st) {
    size_t n = c->in_len - c->in_off;
    if (n == 0) return 0;
    const unsigned char *b = c->in + c->in_off;
    unsigned v = 0;
    int h = mms_hello_parse(b, n, &v);
    if (h == 0) return 0;
    if (h < 0) {
        char said[200];
        set_fail(c, MMS_ERR_FORMAT, 0, "%s is not an mmsage server (it answered '%s')", c->addr,
                 mms_hello_describe(b, n, said, sizeof said));
        *st = MMS_ERR_FORMAT;
        return -1;
    }
    if (v != MMS_PROTO_VERSION) {
        set_fail(c, MMS_ERR_FORMAT, 0,
                 "%s: the server speaks protocol %u, this client %d (use an mmsage of the "
                 "server's version)",
                 c->addr, v, MMS_PROTO_VERSION);
        *st = MMS_ERR_FORMAT;
        return -1;
    }
    c->in_off += MMS_HELLO_LEN;
    c->hello = 1;
    return 1;
}

/* read_some's -1, recorded. Bytes that began a hello and stopped: not an
 * mmsage server. */
static void read_failed(mms_netclient_t *c, int e) {
    size_t n = c->in_len - c->in_off;
    if (!c->hello && n > 0) {
        char said[200];
        set_fail(c, MMS_ERR_FORMAT, 0, "%s is not an mmsage server (it answered '%s' and closed)",
                 c->addr, mms_hello_describe(c->in + c->in_off, n, said, sizeof said));
        return;
    }
    set_fail(c, MMS_ERR_IO, transient_errno(e), "reading from %s: %s", c->addr,
             e ? strerror(e) : "the server closed the connection");
}

/* A complete frame at the head of the input buffer: decode it. 1 = decoded
 * into *resp, 0 = not complete yet, -1 = a failure (recorded; *st its status). */
static int take_frame(mms_netclient_t *c, mms_response_t *resp, mms_status *st) {
    size_t plen = 0;
    if (c->in_len == c->in_off) return 0; /* (the buffer may not be allocated yet) */
    if (!c->hello) {
        int h = take_hello(c, st);
        if (h <= 0) return h;
        if (c->in_len == c->in_off) return 0;
    }
    int f = mms_frame_peek(c->in + c->in_off, c->in_len - c->in_off, c->max_frame, &plen);
    if (f == 0) return 0;
    if (f < 0) {
        set_fail(c, MMS_ERR_FORMAT, 0,
                 "%s sent a frame of %zu bytes, above the client's limit of %zu", c->addr, plen,
                 c->max_frame);
        *st = MMS_ERR_FORMAT;
        return -1;
    }
    char err[512];
    int code = mms_response_decode(c->in + c->in_off + 4, plen, resp, err, sizeof err);
    c->in_off += 4 + plen;
    if (code != MMS_PERR_OK) {
        set_fail(c, MMS_ERR_FORMAT, 0, "%s sent a response that does not decode (%s): %s",
                 c->addr, mms_proto_error_name(code), err);
        *st = MMS_ERR_FORMAT;
        return -1;
    }
    return 1;
}

/* The next response frame before the deadline (timeout_s names it in the
 * message); failures recorded, not logged. */
static mms_status recv_frame(mms_netclient_t *c, mms_response_t *resp, double deadline,
                             double timeout_s) {
    mms_response_init(resp, NULL);
    for (;;) {
        mms_status st = MMS_OK;
        int t = take_frame(c, resp, &st);
        if (t > 0) return MMS_OK;
        if (t < 0) return st;
        int r = read_some(c);
        if (r < 0) {
            read_failed(c, errno);
            return MMS_ERR_IO;
        }
        if (r > 0) continue;
        struct pollfd pf = {c->fd, POLLIN, 0};
        int pr = poll(&pf, 1, ms_until(deadline));
        if (pr == 0) {
            set_fail(c, MMS_ERR_IO, 1, "no response from %s within %.3g s%s", c->addr, timeout_s,
                     c->hello ? "" : " (not even a hello: is it an mmsage server?)");
            return MMS_ERR_IO;
        }
        if (pr < 0 && errno != EINTR) {
            set_fail(c, MMS_ERR_IO, 0, "poll: %s", strerror(errno));
            return MMS_ERR_IO;
        }
    }
}

mms_status mms_netclient_recv(mms_netclient_t *c, mms_response_t *resp, double timeout_s) {
    if (recv_frame(c, resp, mms_now() + timeout_s, timeout_s) != MMS_OK) return REPORT(c);
    return MMS_OK;
}

/* A connection-level error (the server refused or timed out the connection,
 * not one request): id 0 and not ok. */
static int connection_error(const mms_response_t *r) { return !r->ok && r->id == 0; }

static int unavailable(const mms_response_t *r) {
    return !r->ok && r->error_code == MMS_PERR_UNAVAILABLE;
}

/* One attempt of mms_netclient_call on the open connection: the encoded
 * request out, its answer in. Failures recorded, not logged. */
static mms_status call_once(mms_netclient_t *c, const msgpack_sbuffer *sb,
                            const mms_request_t *req, mms_response_t *resp, double timeout_s) {
    double deadline = mms_now() + timeout_s;
    mms_status st = write_all(c, sb->data, sb->size, deadline);
    if (st != MMS_OK) {
        /* the server may have said why before closing (e.g. unavailable) */
        char why[sizeof c->why];
        int transient = c->transient;
        memcpy(why, c->why, sizeof why);
        mms_response_t r;
        mms_status rs = recv_frame(c, &r, mms_now() + 1.0, 1.0);
        if (rs == MMS_OK && connection_error(&r)) {
            *resp = r;
            return MMS_OK;
        }
        mms_response_free(&r);
        if (rs != MMS_OK && !c->hello && c->fail_st == MMS_ERR_FORMAT)
            return MMS_ERR_FORMAT; /* it said something that is not a hello: that is why */
        set_fail(c, st, transient, "%s", why);
        return st;
    }
    double left = deadline - mms_now();
    st = recv_frame(c, resp, deadline, left > 0 ? left : 0);
    if (st != MMS_OK) return st;
    if (resp->id != req->id && !connection_error(resp)) {
        uint64_t got = resp->id;
        mms_response_free(resp);
        set_fail(c, MMS_ERR_FORMAT, 0, "%s answered request %llu with id %llu", c->addr,
                 (unsigned long long)req->id, (unsigned long long)got);
        return MMS_ERR_FORMAT;
    }
    return MMS_OK;
}

mms_status mms_netclient_call(mms_netclient_t *c, const mms_request_t *req, mms_response_t *resp,
                              double timeout_s) {
    mms_response_init(resp, NULL);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    mms_status st = mms_request_encode(req, &sb);
    for (int first = 1; st == MMS_OK; first = 0) {
        if (!first) mms_response_free(resp);
        st = c->fd >= 0 ? MMS_OK : dial(c, c->timeout_s);
        if (st == MMS_OK) st = call_once(c, &sb, req, resp, timeout_s);
        if (st == MMS_OK && !unavailable(resp)) {
            c->outage_t0 = 0;
            break;
        }
        if (st == MMS_OK) { /* unavailable: the server closes the connection after it */
            set_fail(c, MMS_ERR_IO, 1, "%s is unavailable: %s", c->addr, resp->error_message);
            if (!retry_wait(c)) break; /* the answer is the unavailable response */
            continue;
        }
        if (!retry_wait(c)) {
            st = REPORT(c);
            break;
        }
        st = MMS_OK;
    }
    msgpack_sbuffer_destroy(&sb);
    return st;
}

typedef struct {
    mms_request_t req;
    size_t end;    /* stream offset just past the request's last byte */
    double t_sent; /* when that byte went to the kernel; 0 while queued */
} inflight_t;

/* Encode the n requests in flight from ring[head] into sb (emptied), for a
 * new connection; their stream offsets restart at 0. */
static mms_status requeue_inflight(inflight_t *ring, int depth, int head, int n,
                                   msgpack_sbuffer *sb, size_t *queued_total) {
    sb->size = 0;
    *queued_total = 0;
    for (int i = 0; i < n; i++) {
        inflight_t *f = &ring[(head + i) % depth];
        size_t before = sb->size;
        MMS_CALL(mms_request_encode(&f->req, sb));
        *queued_total += sb->size - before;
        f->end = *queued_total;
        f->t_sent = 0;
    }
    return MMS_OK;
}

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
    size_t queued_total = 0; /* stream bytes queued so far (on this connection) */
    size_t sent_total = 0;   /* stream bytes sent so far (on this connection) */
    int head = 0, n = 0, more = 1, aborted = 0;
    uint64_t seq = 1;
    double last_progress = mms_now();
    mms_status st = MMS_OK;
    int net_fail = 0; /* st is a failure recorded in c (set_fail), not yet reported */
    while ((more || n > 0) && st == MMS_OK) {
        if (c->fd < 0) { /* after a transient failure: connect again, send what is in flight */
            st = dial(c, c->timeout_s);
            if (st != MMS_OK) {
                net_fail = 1;
                goto check;
            }
            st = requeue_inflight(ring, depth, head, n, &sb, &queued_total);
            if (st != MMS_OK) break;
            out_off = sent_total = 0;
            last_progress = mms_now();
        }
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
                int e = errno;
                set_fail(c, MMS_ERR_IO, transient_errno(e), "sending to %s: %s", c->addr,
                         strerror(e));
                st = MMS_ERR_IO;
                net_fail = 1;
                goto check;
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
                if (out_off == sb.size) {
                    /* sb restarts empty; the stream offsets keep counting */
                    out_off = sb.size = 0;
                }
            }
        }
        /* read and hand over every complete response */
        int r = read_some(c);
        if (r < 0) {
            read_failed(c, errno);
            st = MMS_ERR_IO;
            net_fail = 1;
            goto check;
        }
        if (r > 0) last_progress = mms_now();
        for (;;) {
            mms_response_t resp;
            int t = take_frame(c, &resp, &st);
            if (t < 0) net_fail = 1;
            if (t <= 0) break;
            double now = mms_now();
            int expected = n > 0 && resp.id == ring[head].req.id;
            if (!expected || (unavailable(&resp) && c->retry_for_s > 0)) {
                if (connection_error(&resp) || (expected && unavailable(&resp)))
                    set_fail(c, MMS_ERR_IO, unavailable(&resp), "%s: %s: %s", c->addr,
                             mms_proto_error_name(resp.error_code), resp.error_message);
                else
                    set_fail(c, MMS_ERR_FORMAT, 0, "%s sent response id %llu, expected %llu",
                             c->addr, (unsigned long long)resp.id,
                             (unsigned long long)(n ? ring[head].req.id : 0));
                st = c->fail_st;
                net_fail = 1;
                mms_response_free(&resp);
                break;
            }
            inflight_t *f = &ring[head];
            double lat = now - (f->t_sent > 0 ? f->t_sent : now);
            c->outage_t0 = 0; /* an answer ends an outage */
            st = done(ctx, &f->req, &resp, lat);
            mms_response_free(&resp);
            head = (head + 1) % depth;
            n--;
            if (st != MMS_OK) break;
        }
        if (st != MMS_OK) goto check;
        if (r > 0) continue; /* maybe more to read right away */
        if (!(more && n < depth) && (n > 0 || sb.size > out_off)) {
            struct pollfd pf = {c->fd, (short)(POLLIN | (sb.size > out_off ? POLLOUT : 0)), 0};
            int pr = poll(&pf, 1, ms_until(last_progress + timeout_s));
            if (pr == 0) {
                set_fail(c, MMS_ERR_IO, 1,
                         "no progress from %s for %.3g s (%d requests in flight)%s", c->addr,
                         timeout_s, n,
                         c->hello ? "" : "; not even a hello: is it an mmsage server?");
                st = MMS_ERR_IO;
                net_fail = 1;
            } else if (pr < 0 && errno != EINTR) {
                set_fail(c, MMS_ERR_IO, 0, "poll: %s", strerror(errno));
                st = MMS_ERR_IO;
                net_fail = 1;
            }
        }
    check:
        if (st != MMS_OK && net_fail && retry_wait(c)) { /* the socket is closed: reconnect */
            st = MMS_OK;
            net_fail = 0;
        }
    }
    msgpack_sbuffer_destroy(&sb);
    free(ring);
    if (st != MMS_OK) {
        if (net_fail) return REPORT(c);
        mms_error_trace(st, __FILE__, __LINE__, __func__);
        return st;
    }
    MMS_CHECK(!aborted, MMS_ERR_ARG, "the request source stopped the pipeline");
    return MMS_OK;
}
