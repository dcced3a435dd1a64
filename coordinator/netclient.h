/* netclient.h: a client of the query protocol (docs/protocol.md).
 *
 * One TCP connection to a server. Two ways to use it:
 *   - one request at a time: mms_netclient_call (send, then wait for the answer);
 *   - pipelined: mms_netclient_pipeline keeps up to `depth` requests in flight
 *     on the one connection, pulling requests from a callback and handing each
 *     response (with its round-trip latency) to another, for batch throughput.
 * The server answers a connection's requests in order; the client checks that
 * every response's id is the one it expects and fails with MMS_ERR_FORMAT if
 * not. Every wait is bounded by a timeout. A server-side error (ok = false) is
 * a response like any other, not a failure of these functions.
 */
#ifndef MMS_NETCLIENT_H
#define MMS_NETCLIENT_H

#include <stddef.h>

#include "mms_status.h"
#include "protocol.h"

typedef struct mms_netclient mms_netclient_t;

/* Connect to "host:port" ("[v6addr]:port" for IPv6; a bare host means port
 * MMS_DEFAULT_PORT, an empty one MMS_DEFAULT_HOST: common/mms_addr.h) within
 * timeout_s seconds. MMS_ERR_ARG for an address mms_addr_parse refuses (or
 * port 0); MMS_ERR_IO names the address and the reason it cannot connect.
 * No retries: mms_netclient_open with a retry policy for those. */
mms_status mms_netclient_connect(const char *hostport, double timeout_s, mms_netclient_t **out);

/* Retries (docs/query.md, "When the server goes away"). A failure is
 * TRANSIENT when the server may answer if asked again: connection refused,
 * reset or closed (EOF) by the server, no answer within the timeout, an
 * `unavailable` answer, or an address file that does not exist or is empty
 * yet (a server starting). Everything else (a refused request such as
 * k_range, a response that does not decode, an unknown host, a bad address)
 * is final at once. On a transient failure the client closes the connection,
 * waits, connects again (re-reading the address file) and sends again every
 * request not yet answered. That is safe only because every op of the
 * protocol (search, predict_tags, info, ping) is read-only: sending one twice
 * changes nothing on the server.
 *
 * Waits: delay n (n = 0, 1, ...) of an outage is drawn uniformly from
 * [d/2, d], d = min(max_delay_s, first_delay_s * 2^n) ("equal jitter", so
 * clients cut off together do not come back together). No new attempt
 * starts later than retry_for_s seconds after the outage's first failure (an
 * attempt already started keeps its own timeout); an answer ends the outage.
 * Each retry is logged once (warning level) as "<who>: <what failed>;
 * retry N in S s". */
typedef struct {
    double retry_for_s;    /* 0 = no retries (the default) */
    double first_delay_s;  /* default 0.1 */
    double max_delay_s;    /* default 5 */
    const char *addr_file; /* NULL, or a file holding "HOST:PORT" (first line), read before
                              every connection instead of hostport (borrowed; copied by open) */
    const char *who;       /* prefix of the log lines, e.g. "query" (copied) */
} mms_netclient_retry_t;

/* The defaults above (no retries, no address file, who "client"). */
void mms_netclient_retry_default(mms_netclient_retry_t *r);

/* mms_netclient_connect with a retry policy (NULL = none) that the client
 * keeps for mms_netclient_call and mms_netclient_pipeline. hostport is
 * ignored when r->addr_file is set. */
mms_status mms_netclient_open(const char *hostport, double timeout_s,
                              const mms_netclient_retry_t *r, mms_netclient_t **out);

/* Retries made so far (all outages). */
long mms_netclient_retries(const mms_netclient_t *c);

/* The address of the current (or last) connection. */
const char *mms_netclient_address(const mms_netclient_t *c);

/* Largest response payload accepted (default MMS_PROTO_MAX_RESPONSE_DEFAULT). */
void mms_netclient_set_max_frame(mms_netclient_t *c, size_t max_frame);

/* Send req and wait (at most timeout_s seconds) for its response, decoded into
 * *resp (free with mms_response_free). The request's id is sent as given.
 * With a retry policy, transient failures are retried as described above; an
 * `unavailable` answer still there when the retries end is returned as the
 * response (MMS_OK). */
mms_status mms_netclient_call(mms_netclient_t *c, const mms_request_t *req, mms_response_t *resp,
                              double timeout_s);

/* Write raw bytes (tests: hand-made or broken frames). Blocks up to timeout_s. */
mms_status mms_netclient_send_raw(mms_netclient_t *c, const void *buf, size_t len,
                                  double timeout_s);
/* Read and decode the next response frame (at most timeout_s seconds).
 * MMS_ERR_IO when the server closed the connection first. */
mms_status mms_netclient_recv(mms_netclient_t *c, mms_response_t *resp, double timeout_s);

/* The pipelined mode. next() fills *req (it may point at the caller's memory,
 * which must stay valid until the same request is passed to done()) and
 * returns 1, or returns 0 when there are no more requests, or a negative
 * value to abort (the pipeline then fails with MMS_ERR_ARG after the
 * responses in flight). The pipeline sets req->id itself (1, 2, 3, ... in the
 * order next() produced them; 0 is left to connection-level errors). done() gets each request back with its
 * response and the seconds from the request's last byte sent to its
 * response's last byte read; a non-OK return stops the pipeline with that
 * status. timeout_s bounds the time without any progress. With a retry
 * policy a transient failure reconnects and sends the requests in flight
 * again, in order and with their ids (answers already handed to done() are
 * not asked again), so done() still sees every request once, in order. */
typedef int (*mms_netclient_next_fn)(void *ctx, mms_request_t *req);
typedef mms_status (*mms_netclient_done_fn)(void *ctx, mms_request_t *req,
                                            const mms_response_t *resp, double latency_s);
mms_status mms_netclient_pipeline(mms_netclient_t *c, int depth, double timeout_s,
                                  mms_netclient_next_fn next, mms_netclient_done_fn done,
                                  void *ctx);

/* The shared-secret token of `serve --auth-token-file`, for a client to send
 * in every request's 'auth' (docs/protocol.md, "Authentication"). Read the
 * way the server reads its own (app/cmd_serve.c): the whole file with one
 * trailing newline stripped, 1..MMS_PROTO_MAX_STR bytes without a NUL byte.
 * A missing, non-regular or empty file is refused (MMS_ERR_ARG) with what
 * (e.g. "query: --auth-token-file") and the path in the message; a file that
 * its group or others may read gets a warning. *tok is malloc'd: release it
 * with mms_netclient_token_free (which wipes it). */
mms_status mms_netclient_read_token(const char *path, const char *what, char **tok);
void mms_netclient_token_free(char **tok);

/* Close the connection and free c; *cp = NULL. NULL is a no-op. */
void mms_netclient_close(mms_netclient_t **cp);

#endif
