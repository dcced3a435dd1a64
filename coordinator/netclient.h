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
 * port 0); MMS_ERR_IO names the address and the reason it cannot connect. */
mms_status mms_netclient_connect(const char *hostport, double timeout_s, mms_netclient_t **out);

/* Largest response payload accepted (default MMS_PROTO_MAX_RESPONSE_DEFAULT). */
void mms_netclient_set_max_frame(mms_netclient_t *c, size_t max_frame);

/* Send req and wait (at most timeout_s seconds) for its response, decoded into
 * *resp (free with mms_response_free). The request's id is sent as given. */
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
 * status. timeout_s bounds the time without any progress. */
typedef int (*mms_netclient_next_fn)(void *ctx, mms_request_t *req);
typedef mms_status (*mms_netclient_done_fn)(void *ctx, mms_request_t *req,
                                            const mms_response_t *resp, double latency_s);
mms_status mms_netclient_pipeline(mms_netclient_t *c, int depth, double timeout_s,
                                  mms_netclient_next_fn next, mms_netclient_done_fn done,
                                  void *ctx);

/* Close the connection and free c; *cp = NULL. NULL is a no-op. */
void mms_netclient_close(mms_netclient_t **cp);

#endif
