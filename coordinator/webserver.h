/* webserver.h: the HTTP side of `mmsage web` (docs/web.md): a small web
 * server that serves the search page (web/), a JSON API that forwards each
 * search to a running query server over the msgpack protocol
 * (netclient.h), and the catalog's images and thumbnails by catalog id.
 *
 * Why libmicrohttpd: a maintained, embeddable HTTP/1.1 server in C with its
 * own threads, request parsing, keep-alive, HEAD and connection limits, in
 * Debian (libmicrohttpd-dev), so no HTTP parsing of our own reaches the
 * network; our code only sees a method, a raw path, headers and a body
 * (webapi.h turns those into parameters with pure functions).
 *
 * What it does not do: TLS (put it behind a TLS proxy to expose it), run the
 * model (the query server does), or read any file named by a request: images
 * are looked up by catalog id and read from the catalog's paths.tsv entry;
 * the page's files come from a fixed whitelist in the static directory.
 *
 * Threads: libmicrohttpd runs one thread per connection (bounded by
 * max_clients); the catalog is read-only, the query-server connections, the
 * upload store and the thumbnail cache are shared under mutexes. Loopback by
 * default: create() refuses any other address unless a token is configured,
 * and then every request must carry it.
 */
#ifndef MMS_WEBSERVER_H
#define MMS_WEBSERVER_H

#include <stddef.h>

#include "mms_status.h"

typedef struct {
    const char *server;      /* query server "HOST:PORT" (borrowed during create) */
    const char *catalog_dir; /* the catalog the index was built from */
    const char *listen;      /* "HOST:PORT" to listen on; default "127.0.0.1:8080"; port 0 = any */
    const char *static_dir;  /* directory holding index.html, app.js, style.css, favicon.svg */
    const char *token;       /* NULL = no authentication (loopback only); else >= 16 bytes */
    const char *server_token;/* sent in every request's 'auth' to the query server (serve
                                --auth-token-file), or NULL; copied, and wiped at destroy */
    int connections;         /* query-server connections kept open; default 4 */
    double timeout_s;        /* per query-server call; default 10 */
    double connect_timeout_s;/* per (re)connection attempt; default 2 */
    size_t max_upload;       /* bytes of one uploaded JPEG; default 8 MiB */
    int max_uploads;         /* uploads kept at once (least recently used dropped); default 32 */
    double upload_ttl_s;     /* an upload unused this long is dropped; default 1800 */
    int thumb_side;          /* thumbnails: decode scaled while the longest side stays >= this; 320 */
    size_t thumb_cache;      /* bytes of thumbnails kept in memory; default 64 MiB */
    int max_clients;         /* concurrent HTTP connections; default 64 */
} mms_webserver_config_t;

/* Fill c with the defaults above (server, catalog_dir, static_dir NULL). */
void mms_webserver_config_default(mms_webserver_config_t *c);

typedef struct mms_webserver mms_webserver_t;

/* Open the catalog, check the static directory, bind and start serving in the
 * background (libmicrohttpd's threads). Does not need the query server to be
 * up: the API answers 503 until it is. Refuses a non-loopback address without
 * a token (MMS_ERR_ARG). The config's strings are copied. */
mms_status mms_webserver_create(const mms_webserver_config_t *cfg, mms_webserver_t **out);

/* The port actually bound (useful with port 0). */
int mms_webserver_port(const mms_webserver_t *w);

/* Block until mms_webserver_stop is called. */
mms_status mms_webserver_run(mms_webserver_t *w);

/* Make run() return. Async-signal-safe (a write to a pipe). */
void mms_webserver_stop(mms_webserver_t *w);

/* Stop serving (in-flight requests finish), close everything, free w; *wp =
 * NULL. NULL is a no-op. */
void mms_webserver_destroy(mms_webserver_t **wp);

#endif
