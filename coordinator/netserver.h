/* netserver.h: the query server's network loop (docs/protocol.md).
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
 * What the loop enforces: a frame length limit (frame_too_large, then the
 * connection is closed because the stream cannot be resynchronised), a
 * per-request timeout from the first byte of a frame to its last (timeout,
 * then close), an idle timeout, a cap on clients (beyond it a new connection
 * gets one unavailable error and is closed) and a cap on unsent output per
 * client (beyond it the loop stops reading that client until it drains).
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
} mms_netserver_config_t;

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
    int max_batch_seen;     /* largest n passed to the handler */
    int clients;            /* connections open now */
} mms_netserver_stats_t;

/* Bind and listen on cfg->host:cfg->port (SO_REUSEADDR), then return: the
 * caller can print "listening on ..." (mms_netserver_address) before calling
 * mms_netserver_run. handler and ctx are borrowed for the server's lifetime.
 * Fails with MMS_ERR_IO naming the address when the port is taken. */
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

/* From the loop's thread (e.g. inside the handler) or after run() returned. */
void mms_netserver_stats(const mms_netserver_t *s, mms_netserver_stats_t *out);

/* Close every socket and free the server; *sp = NULL. NULL is a no-op. */
void mms_netserver_destroy(mms_netserver_t **sp);

#endif
