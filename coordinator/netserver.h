/* netserver.h: the query server's network loop (docs/protocol.md).
 *
 * Every connection starts with the 8-byte hello each way (protocol.h,
 * mms_hello_*): the loop reads the client's before any frame and answers with
 * its own; a connection that does not start with one (an HTTP client, a port
 * scanner) is closed (an HTTP one gets a plain "400: this is an mmsage query
 * server" first) and counted, one with another version gets our hello (so it
 * can say which version we speak) and the close.
 *
 * Single-threaded and non-blocking: one poll(2) over a listening TCP socket and
 * every client. Each client has an input buffer that assembles frames and an
 * output buffer written as the socket allows, so a slow reader never blocks
 * the loop. Per poll round the loop collects every complete request available
 * across all clients (up to max_batch) and calls the handler ONCE with all of
 * them, so the coordinator can answer a round with one MPI exchange and one
 * sgemm; then it encodes and queues the responses (per connection in request
 * order). Frames that do not decode are answered by the loop itself with the
 * protocol error code (the handler never sees them).
 *
 * Fairness: a round's work is bounded. A round of n requests costs
 * n * (MMS_NETSERVER_COST_BASE + kmax) + the tags predicted, kmax being the
 * largest k among its searches (the engine answers every search of a round
 * with the round's largest k); frames are cut one per client per pass,
 * round-robin, until max_batch or the round's cost budget (max_round_cost) is
 * reached, and what does not fit stays queued in its client's input for the
 * next rounds (the client skipped first goes first next round). With the
 * default budget a k=10000 search has a round to itself and 256 k=10 searches
 * share one. So a client pipelining 256 k=10000 queries is served one slice at
 * a time, and another client's query waits at most for the round in progress
 * plus one. A client whose unsent output is above max_output gets no new
 * frames cut until it reads (its answers are not computed ahead).
 *
 * What the loop enforces: a frame length limit (frame_too_large, then the
 * connection is closed because the stream cannot be resynchronised), a
 * per-request timeout from the first byte of a frame to its last (timeout,
 * then close), a shorter deadline for a new connection to complete its first
 * frame (first_frame_timeout), an idle timeout, a cap on clients and on
 * clients per address (beyond either a new connection gets one unavailable
 * error and is closed), a cap on unsent output per client (beyond it the loop
 * stops reading that client until it drains; a client that takes no output for
 * request_timeout is dropped, one that keeps taking some never is), and, when
 * configured, a shared-secret token every request must carry in 'auth'
 * (constant-time compare; unauthorized otherwise, the handler never sees it;
 * required to listen beyond loopback). Out of file descriptors (EMFILE) it
 * keeps one spare descriptor to accept, answer unavailable and close the
 * waiting connection, backs off the listening socket when even that fails,
 * and logs at most one line per 10 s.
 *
 * It knows nothing of indexes, MPI or embeddings: that is the handler's.
 * Not thread-safe except mms_netserver_stop(), which may be called from a
 * signal handler or another thread.
 */
#ifndef MMS_NETSERVER_H
#define MMS_NETSERVER_H

#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"
#include "protocol.h"

typedef struct {
    const char *host;       /* address to bind (IPv4/IPv6 literal or name); default
                               MMS_DEFAULT_HOST, loopback only (copied) */
    int port;               /* default MMS_DEFAULT_PORT (mms_addr.h); 0 = an ephemeral
                               port (see mms_netserver_port) */
    size_t max_frame;       /* largest request payload in bytes; default 16 MiB */
    double request_timeout; /* seconds from a frame's first byte to its last; default 10 */
    double idle_timeout;    /* seconds a connection may sit with nothing in flight; 0 = no
                               limit; default 600 */
    double drain_timeout;   /* seconds stop() waits for unsent responses; default 5 */
    int max_clients;        /* concurrent connections; default 1024 */
    int max_batch;          /* most requests per handler call; default 256 */
    size_t max_output;      /* unsent bytes per client above which the loop stops reading
                               that client; default 64 MiB */
    int max_clients_per_address; /* concurrent connections from one IP address; 0 = no
                               cap; default 64 */
    double first_frame_timeout; /* seconds a new connection has to complete its first
                               frame (one that sent nothing is closed quietly, one that
                               sent part of a frame gets timeout); 0 = no such limit;
                               default 10 */
    uint64_t max_round_cost; /* cost budget of one handler call (n * (COST_BASE + kmax)
                               + tag_k summed, see above); the first request of a round
                               always goes, so a budget below one request's cost means one
                               per round; default MMS_NETSERVER_ROUND_COST_DEFAULT */
    const void *auth_token; /* the shared secret every request's 'auth' must equal, or NULL
                               for none (copied at create); required when host is not
                               loopback (mms_netserver_is_loopback) */
    size_t auth_token_len;  /* its bytes: 1..MMS_PROTO_MAX_STR, no NUL byte */
} mms_netserver_config_t;

/* A request's cost alone in a round: MMS_NETSERVER_COST_BASE, plus k for a
 * search, plus tag_k when tags are predicted (the engine's work and the
 * response's size grow with the results asked for). */
#define MMS_NETSERVER_COST_BASE 64
/* A full batch of 256 k=10 searches costs 18,944 and fits; a k=10000 search
 * (10,064) shares its round with nothing, since two requests at k=10000 cost
 * 20,128 (measured on a 100k index: a round of one k=10000 search takes ~45 ms
 * and mixing small queries into it makes each of them as slow as it). */
#define MMS_NETSERVER_ROUND_COST_DEFAULT 20000
uint64_t mms_netserver_request_cost(const mms_request_t *q);

/* 1 when every address host resolves to is a loopback address (127.0.0.0/8,
 * ::1, or IPv4-mapped 127.x), or host is NULL/"" (the default host); 0 for
 * anything else ("0.0.0.0", "::", a LAN address) and for names that do not
 * resolve. */
int mms_netserver_is_loopback(const char *host);

/* Fill c with the defaults above. */
void mms_netserver_config_default(mms_netserver_config_t *c);

/* The application's request handler, called once per poll round with the n >= 1
 * requests collected in it (from one or many clients, in arrival order).
 *   reqs[0..n)   decoded and validated (protocol.h); borrowed for the call.
 *   resps[0..n)  prepared by the loop: mms_response_init(&resps[i], &reqs[i]),
 *                with room for reqs[i].k results and reqs[i].tag_k tags already
 *                reserved (results_cap, tags_cap). The handler fills them with
 *                the mms_response_* helpers or by writing into the reserved
 *                arrays, and marks failures with mms_response_set_error().
 *                A response the loop could not prepare (out of memory) arrives
 *                already failed (ok == 0): the handler may skip it.
 *                Strings may be borrowed if they outlive the call (the loop
 *                encodes right after the handler returns, then frees resps).
 * Return MMS_OK normally. A non-OK status is taken as a failure of the whole
 * round: every response not already marked failed gets an "internal" error
 * carrying mms_error_message(), and the server keeps running. The loop adds a
 * "server" timing stage (microseconds from frame complete to encoding). */
typedef mms_status (*mms_netserver_handler_fn)(void *ctx, const mms_request_t *reqs, int n,
                                               mms_response_t *resps);

typedef struct mms_netserver mms_netserver_t;

/* Counters since create (for logs and tests). */
typedef struct {
    uint64_t accepted;      /* connections accepted */
    uint64_t refused;       /* connections answered "unavailable" (max_clients) */
    uint64_t requests;      /* requests passed to the handler */
    uint64_t decode_errors; /* frames answered by the loop with a decode error */
    uint64_t timeouts;      /* connections closed by the request or idle timeout */
    uint64_t oversized;     /* frames refused as too large */
    uint64_t rounds;        /* handler calls */
    uint64_t refused_address; /* connections answered "unavailable" (max_clients_per_address) */
    uint64_t refused_fd;    /* connections answered "unavailable" for lack of descriptors */
    uint64_t accept_errors; /* accept(2) failures that paused accepting (EMFILE, ENOBUFS, ...) */
    uint64_t unauthorized;  /* requests answered "unauthorized" */
    uint64_t deferred;      /* times a complete frame was left for a later round (budget) */
    uint64_t polls;         /* poll rounds (mms_netserver_step calls that polled) */
    uint64_t max_round_cost_seen; /* largest cost of one handler call */
    int max_batch_seen;     /* largest n passed to the handler */
    uint64_t not_mmsage;    /* connections whose first bytes were not an mmsage hello (closed;
                               one that looked like HTTP got a plain 400 first) */
    uint64_t version_mismatch; /* connections whose hello had another protocol version
                               (answered with our hello, then closed) */
    int clients;            /* connections open now */
} mms_netserver_stats_t;

/* Bind and listen on cfg->host:cfg->port (SO_REUSEADDR), then return: the
 * caller can print "listening on ..." (mms_netserver_address) before calling
 * mms_netserver_run. handler and ctx are borrowed for the server's lifetime.
 * Fails with MMS_ERR_IO naming the address when the port is taken, and with
 * MMS_ERR_ARG when host is not loopback and there is no auth_token. */
mms_status mms_netserver_create(const mms_netserver_config_t *cfg, mms_netserver_handler_fn handler,
                                void *ctx, mms_netserver_t **out);

/* The bound port (the real one when cfg->port was 0). */
int mms_netserver_port(const mms_netserver_t *s);
/* "host:port" into buf[0..cap). Returns buf. */
const char *mms_netserver_address(const mms_netserver_t *s, char *buf, size_t cap);

/* Serve until mms_netserver_stop(), then drain: stop accepting, answer the
 * complete requests already received, flush responses (at most drain_timeout
 * seconds), close every connection and return MMS_OK. Returns an error only
 * when poll(2) itself fails. */
mms_status mms_netserver_run(mms_netserver_t *s);

/* One poll round of at most timeout_ms milliseconds (for callers that
 * interleave other work). Returns MMS_OK; *stopped (may be NULL) is set to 1
 * once stop was requested and the drain is complete. */
mms_status mms_netserver_step(mms_netserver_t *s, int timeout_ms, int *stopped);

/* Ask the loop to drain and return. Async-signal-safe (sets a flag and writes
 * one byte to a self-pipe); callable from any thread. */
void mms_netserver_stop(mms_netserver_t *s);

/* Make a blocked mms_netserver_step return soon (after at most one round),
 * without stopping: a signal handler that wants the caller to act between
 * rounds (SIGHUP: reload) sets its flag, then calls this. Async-signal-safe. */
void mms_netserver_wake(mms_netserver_t *s);

/* From the loop's thread (e.g. inside the handler) or after run() returned. */
void mms_netserver_stats(const mms_netserver_t *s, mms_netserver_stats_t *out);

/* Close every socket and free the server; *sp = NULL. NULL is a no-op. */
void mms_netserver_destroy(mms_netserver_t **sp);

#endif
