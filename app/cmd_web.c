/* cmd_web.c: `mmsage web --server HOST:PORT --catalog C [--listen 127.0.0.1:8080]`:
 * the live search page (docs/web.md). Parses the options, reads the auth
 * token files (the page's own, and the query server's that every forwarded
 * request carries), starts the HTTP server of coordinator/webserver.h and waits for
 * SIGTERM or SIGINT, then stops it (requests in flight finish) and exits 0.
 * Prints "ready: http://HOST:PORT/ ..." on stderr once it accepts requests.
 *
 * Not an MPI command: the model runs in `mmsage serve`; this process only
 * forwards searches to it over the query protocol and serves the page, the
 * catalog's images and thumbnails.
 *
 * The page's files (index.html, app.js, style.css, favicon.svg) are read from
 * --static, by default the source tree's web/ (fixed at build time) when it
 * exists, else the install prefix's share/mmsage/web.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "mms_addr.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_opts.h"
#include "netclient.h"
#include "webserver.h"

#ifndef MMS_WEB_SOURCE_DIR
#define MMS_WEB_SOURCE_DIR ""
#endif
#ifndef MMS_WEB_INSTALL_DIR
#define MMS_WEB_INSTALL_DIR ""
#endif

static mms_webserver_t *volatile g_web; /* for the signal handler */

static void on_signal(int sig) {
    (void)sig;
    if (g_web) mms_webserver_stop(g_web); /* async-signal-safe */
}

/* The default static directory: the source tree's web/, else the installed one. */
static const char *default_static(void) {
    static const char *const dirs[] = {MMS_WEB_SOURCE_DIR, MMS_WEB_INSTALL_DIR};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char p[MMS_PATH_MAX];
        if (dirs[i][0] && mms_path_join(p, sizeof p, dirs[i], "index.html") == MMS_OK &&
            mms_path_exists(p))
            return dirs[i];
    }
    return MMS_WEB_SOURCE_DIR[0] ? MMS_WEB_SOURCE_DIR : "web";
}

/* The token in file f (surrounding whitespace removed) into *out (malloc'd). */
static mms_status read_token(const char *f, char **out) {
    char *buf = NULL;
    size_t len = 0;
    MMS_CALL(mms_read_file(f, &buf, &len));
    char *s = buf;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    s[n] = '\0';
    *out = strdup(s);
    memset(buf, 0, len);
    free(buf);
    MMS_CHECK(*out, MMS_ERR_NOMEM, "out of memory");
    struct stat sb;
    if (stat(f, &sb) == 0 && (sb.st_mode & 077))
        mms_log_warn("web: %s is readable by other users (chmod 600 it)", f);
    return MMS_OK;
}

static const char k_summary[] =
    "Serve the live search page and its JSON API (docs/web.md): pick or upload a query image,\n"
    "type keywords, drag the slider between visual (1) and conceptual (0). Searches go to a\n"
    "running query server (mmsage serve) over the query protocol; images come from the catalog.\n"
    "Loopback only unless --auth-token-file is given; then every request needs the token.";

mms_status mms_cmd_web(int argc, char **argv) {
    const char *server = MMS_DEFAULT_ADDR, *catalog = NULL, *listen = "127.0.0.1:8080",
               *static_dir = NULL, *token_file = NULL, *server_token_file = NULL, *pid_file = NULL;
    mms_webserver_config_t cfg;
    mms_webserver_config_default(&cfg);
    double max_upload_mb = (double)cfg.max_upload / (1 << 20),
           thumb_cache_mb = (double)cfg.thumb_cache / (1 << 20);
    mms_opt_t opts[] = {
        {"server", MMS_OPT_STR, &server, "query server address HOST:PORT (mmsage serve)", 0, 0, 0, 0},
        {"catalog", MMS_OPT_STR, &catalog, "the catalog the served index was built from", 1, 0, 0, 0},
        {"listen", MMS_OPT_STR, &listen,
         "HOST:PORT to serve HTTP on (port 0 = any free port); non-loopback needs --auth-token-file",
         0, 0, 0, 0},
        {"static", MMS_OPT_STR, &static_dir,
         "folder of the page's files (default: the source tree's web/, else share/mmsage/web)", 0,
         0, 0, 0},
        {"auth-token-file", MMS_OPT_STR, &token_file,
         "file holding a token (>= 16 printable bytes) every request must carry", 0, 0, 0, 0},
        {"server-auth-token-file", MMS_OPT_STR, &server_token_file,
         "file holding the query server's token (serve --auth-token-file), sent with every "
         "request to it; default $MMS_AUTH_TOKEN_FILE",
         0, 0, 0, 0},
        {"connections", MMS_OPT_INT, &cfg.connections, "query-server connections kept open", 0, 1,
         1, 256},
        {"timeout", MMS_OPT_DOUBLE, &cfg.timeout_s, "seconds to wait for the query server", 0, 1,
         0.01, 3600},
        {"max-upload-mb", MMS_OPT_DOUBLE, &max_upload_mb, "largest JPEG upload in MiB", 0, 1, 0.01,
         256},
        {"max-uploads", MMS_OPT_INT, &cfg.max_uploads,
         "uploads kept in memory (least recently used dropped)", 0, 1, 1, 4096},
        {"upload-ttl", MMS_OPT_DOUBLE, &cfg.upload_ttl_s, "seconds an unused upload is kept", 0, 1,
         1, 86400 * 7},
        {"thumb-size", MMS_OPT_INT, &cfg.thumb_side,
         "thumbnails keep their longest side at least this many pixels (JPEG scaling 1/2..1/8)", 0,
         1, 16, 4096},
        {"thumb-cache-mb", MMS_OPT_DOUBLE, &thumb_cache_mb, "MiB of thumbnails kept in memory", 0,
         1, 0, 65536},
        {"max-clients", MMS_OPT_INT, &cfg.max_clients, "concurrent HTTP connections", 0, 1, 1,
         4096},
        {"pid-file", MMS_OPT_STR, &pid_file, "write the process id here once ready", 0, 0, 0, 0},
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]), help;
    MMS_CALL(mms_opts_parse("web", k_summary, opts, nopts, argc, argv, &help));
    if (help) return MMS_OK;
    mms_opts_echo("web", opts, nopts);
    cfg.server = server;
    cfg.catalog_dir = catalog;
    cfg.listen = listen;
    cfg.static_dir = static_dir ? static_dir : default_static();
    cfg.max_upload = (size_t)(max_upload_mb * (1 << 20));
    cfg.thumb_cache = (size_t)(thumb_cache_mb * (1 << 20));
    char *token = NULL, *server_token = NULL;
    if (token_file) MMS_CALL(read_token(token_file, &token));
    cfg.token = token;
    const char *env = getenv("MMS_AUTH_TOKEN_FILE");
    const char *stf = server_token_file ? server_token_file : (env && env[0] ? env : NULL);
    mms_status s = MMS_OK;
    if (stf)
        s = mms_netclient_read_token(stf,
                                     server_token_file ? "web: --server-auth-token-file"
                                                       : "web: MMS_AUTH_TOKEN_FILE",
                                     &server_token);
    cfg.server_token = server_token;

    signal(SIGPIPE, SIG_IGN);
    mms_webserver_t *w = NULL;
    if (s == MMS_OK) s = mms_webserver_create(&cfg, &w);
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    mms_netclient_token_free(&server_token); /* the server keeps its own copy */
    MMS_CALL(s);
    g_web = w;
    mms_cmd_on_stop_signals(on_signal);
    if (pid_file) {
        char pb[32];
        int len = snprintf(pb, sizeof pb, "%ld\n", (long)getpid());
        MMS_CALL_GOTO(s, done, mms_write_file_atomic(pid_file, pb, (size_t)len));
    }
    {
        mms_addr_t la = {"", 0}; /* the server accepted it: the same strict parse cannot fail */
        (void)mms_addr_parse_ex(listen, "web: --listen", 0, 8080, MMS_ADDR_STRICT | MMS_ADDR_QUIET,
                                &la);
        const char *lb = listen[0] == '[' ? "[" : "", *rb = listen[0] == '[' ? "]" : "";
        fprintf(stderr, "ready: http://%s%s%s:%d/ (catalog %s, query server %s, page from %s%s)\n",
                lb, la.host, rb, mms_webserver_port(w), catalog, server, cfg.static_dir,
                cfg.token ? ", token required" : "");
        fflush(stderr);
    }
    s = mms_webserver_run(w);
done:
    g_web = NULL;
    mms_webserver_destroy(&w);
    if (pid_file) unlink(pid_file);
    if (s == MMS_OK) mms_log_info("web: stopped");
    return s;
}
