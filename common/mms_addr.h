/* mms_addr.h: the query server's address: the default port and the one parser
 * of "host:port" strings (`serve --listen`, `query --server`, the client; with
 * the strict flag `web --listen` and the Host header the web page checks).
 *
 * Accepted forms: "host:port", "[v6addr]:port", "host" and "[v6addr]" (port
 * MMS_DEFAULT_PORT), and (not strict) "port" alone, all digits, which comes
 * back with an empty host. The host is not resolved here and may come back
 * empty (":7700", "[]", "7700"): each caller decides what an empty host means
 * (a client: MMS_DEFAULT_HOST, loopback). No sockets.
 */
#ifndef MMS_ADDR_H
#define MMS_ADDR_H

#include "mms_status.h"

/* The query server's port when none is given. */
#define MMS_DEFAULT_PORT 7700
/* The host it listens on (and a client calls) when none is given: loopback. */
#define MMS_DEFAULT_HOST "127.0.0.1"
#define MMS_ADDR_STR_(x) #x
#define MMS_ADDR_STR(x) MMS_ADDR_STR_(x)
/* "127.0.0.1:7700" */
#define MMS_DEFAULT_ADDR MMS_DEFAULT_HOST ":" MMS_ADDR_STR(MMS_DEFAULT_PORT)

typedef struct {
    char host[256]; /* without the brackets of an IPv6 literal; may be "" */
    int port;       /* 0..65535; MMS_DEFAULT_PORT when s names none */
} mms_addr_t;

/* Parse s into *out. what names s in error messages (e.g. "server address",
 * "serve: --listen"). MMS_ERR_ARG for a '[' without ']', anything but ":port"
 * after ']', a host longer than out->host holds, or a port that is not a
 * number in port_min..65535 (a server may take 0, "any free port"; a client
 * needs 1 or more). */
mms_status mms_addr_parse(const char *s, const char *what, int port_min, mms_addr_t *out);

/* Flags of mms_addr_parse_ex. */
enum {
    /* The web server's form: a host is required (not "", ":80" or "[]"), an
     * IPv6 address needs its brackets ("::1" is refused, not read as host
     * "::" and port 1), and the port is decimal digits only (no sign or blank). */
    MMS_ADDR_STRICT = 1u,
    /* On failure return MMS_ERR_ARG without logging or setting the error
     * message: for untrusted input (an HTTP Host header) or a caller that
     * words its own message. */
    MMS_ADDR_QUIET = 2u
};

/* mms_addr_parse with def_port for a string that names no port, and flags
 * (MMS_ADDR_*; 0 = mms_addr_parse's rules). s NULL is taken as "". */
mms_status mms_addr_parse_ex(const char *s, const char *what, int port_min, int def_port,
                             unsigned flags, mms_addr_t *out);

#endif
