/* webserver.c: see webserver.h. The HTTP shell (libmicrohttpd callbacks), the
 * query-server connection pool, the upload store and the thumbnail cache.
 * Request parsing lives in webapi.c (pure functions, fuzzed). */
#define _GNU_SOURCE
#include "webserver.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
/* after stdio.h: libjpeg's header needs FILE and size_t */
#include <jpeglib.h>

#include "mms_addr.h"
#include "mms_array.h"
#include "mms_catalog.h"
#include "mms_descriptor.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_manifest.h"
#include "mms_rng.h"
#include "netclient.h"
#include "protocol.h"
#include "response_json.h"
#include "webapi.h"

#define MMS_WEB_MAX_IMAGE_FILE ((size_t)64 << 20) /* a catalog image larger than this is refused */

/* ---- state ------------------------------------------------------------------- */

typedef struct {
    mms_netclient_t *c; /* NULL until first used, and after a failure */
    int busy;
} slot_t;

/* An uploaded JPEG. Shared by reference: the store holds one reference, each
 * search using it holds one while it runs. */
typedef struct {
    char handle[MMS_WEB_HANDLE_LEN + 1];
    unsigned char *data;
    size_t len;
    float *desc; /* the JPEG descriptor, when the catalog's features are that descriptor */
    double last_used;
    int refs;
} upload_t;

/* Thumbnail cache: entries in an LRU list, indexed by catalog row. */
typedef struct {
    int64_t row; /* -1 when the entry is free */
    unsigned char *data;
    size_t len;
    const char *type;
    int prev, next; /* LRU list (head = most recent); free list through next */
} thumb_t;

struct mms_webserver {
    mms_webserver_config_t cfg;
    char *server, *catalog_dir, *listen, *static_dir, *token;
    size_t token_len;
    char *server_token; /* the query server's token, sent in 'auth'; NULL = none */
    mms_catalog_t *cat;
    char dataset[256], source[1024], descriptor[64];
    int features_are_descriptor; /* cosine of an upload can use its descriptor */
    int has_paths;
    int64_t *split_rows[3];
    int64_t split_n[3];
    struct MHD_Daemon *d;
    int port;
    int stop_pipe[2];
    atomic_uint_fast64_t next_id; /* request ids to the query server; random seeds */

    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    slot_t *slots;

    pthread_mutex_t info_mu;
    int jpeg_supported; /* -1 unknown, 0, 1 (from the server's info) */
    double info_time;
    json_t *server_info; /* the last info answer, or NULL */

    pthread_mutex_t up_mu;
    upload_t **uploads; /* max_uploads slots, NULL = free */

    pthread_mutex_t th_mu;
    thumb_t *th;
    size_t th_cap;
    int th_head, th_tail, th_free;
    int32_t *th_of_row; /* cat->n entries: thumbnail entry or -1 */
    size_t th_bytes;
};

/* Per-request state, created by the URI callback (so it holds the raw URI) and
 * freed when libmicrohttpd reports the request complete. */
typedef struct {
    mms_webserver_t *w;
    char *path; /* raw, still %-encoded, without the query */
    size_t path_len;
    char *query; /* raw query string, "" when none */
    size_t query_len;
    int started;
    int refused_status; /* a POST refused before its body: answered at the end */
    mms_web_err_t refused;
    mms_web_route_t route;
    unsigned char *body;
    size_t len, cap, limit;
    int too_large;
    double t0;
} req_t;

void mms_webserver_config_default(mms_webserver_config_t *c) {
    memset(c, 0, sizeof *c);
    c->listen = "127.0.0.1:8080";
    c->connections = 4;
    c->timeout_s = 10;
    c->connect_timeout_s = 2;
    c->max_upload = (size_t)8 << 20;
    c->max_uploads = 32;
    c->upload_ttl_s = 1800;
    c->thumb_side = 320;
    c->thumb_cache = (size_t)64 << 20;
    c->max_clients = 64;
}

/* ---- responses ------------------------------------------------------------------- */

static void common_headers(struct MHD_Response *r) {
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; "
                            "style-src 'self'; connect-src 'self'; object-src 'none'; "
                            "base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
}

static enum MHD_Result send_bytes(struct MHD_Connection *con, int status, const char *type,
                                  const void *data, size_t len, const char *cache) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    common_headers(r);
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", cache ? cache : "no-store");
    enum MHD_Result q = MHD_queue_response(con, (unsigned)status, r);
    MHD_destroy_response(r);
    return q;
}

/* Send o (consumed) as JSON with status; extra header (name, value) optional. */
static enum MHD_Result send_json_h(struct MHD_Connection *con, int status, json_t *o,
                                   const char *hname, const char *hval) {
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    if (!s) {
        static const char fallback[] =
            "{\"ok\":false,\"error\":{\"status\":500,\"code\":\"internal\",\"message\":\"cannot "
            "format the answer as JSON\"}}";
        status = 500;
        s = strdup(fallback);
        if (!s) return MHD_NO;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(s);
        return MHD_NO;
    }
    common_headers(r);
    MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (hname) MHD_add_response_header(r, hname, hval);
    enum MHD_Result q = MHD_queue_response(con, (unsigned)status, r);
    MHD_destroy_response(r);
    return q;
}

static enum MHD_Result send_json(struct MHD_Connection *con, int status, json_t *o) {
    return send_json_h(con, status, o, NULL, NULL);
}

static enum MHD_Result send_err(struct MHD_Connection *con, const mms_web_err_t *e) {
    return send_json(con, e->status, mms_web_error_json(e->status, e->code, e->message));
}

static enum MHD_Result send_errf(struct MHD_Connection *con, int status, const char *code,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_errf(struct MHD_Connection *con, int status, const char *code,
                                 const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return send_json(con, status, mms_web_error_json(status, code, msg));
}

/* ---- the query server ---------------------------------------------------------------- */

/* Take a free connection slot (waits up to timeout_s); -1 when none came free. */
static int slot_acquire(mms_webserver_t *w) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double t = (double)until.tv_nsec * 1e-9 + w->cfg.timeout_s;
    until.tv_sec += (time_t)t;
    until.tv_nsec = (long)((t - floor(t)) * 1e9);
    pthread_mutex_lock(&w->pool_mu);
    int got = -1;
    for (;;) {
        for (int i = 0; i < w->cfg.connections && got < 0; i++)
            if (!w->slots[i].busy) got = i;
        if (got >= 0) break;
        if (pthread_cond_timedwait(&w->pool_cv, &w->pool_mu, &until) == ETIMEDOUT) break;
    }
    if (got >= 0) w->slots[got].busy = 1;
    pthread_mutex_unlock(&w->pool_mu);
    return got;
}

static void slot_release(mms_webserver_t *w, int i) {
    pthread_mutex_lock(&w->pool_mu);
    w->slots[i].busy = 0;
    pthread_cond_signal(&w->pool_cv);
    pthread_mutex_unlock(&w->pool_mu);
}

/* Send req and read its answer into *resp (initialised here; the caller frees
 * it). Returns 0, or an HTTP status (503 unreachable or busy, 502 a broken
 * answer) with why[] set. A failed connection is dropped and the call retried
 * once on a new one (the server may have restarted since it was opened). */
static int query(mms_webserver_t *w, mms_request_t *req, mms_response_t *resp, char *why,
                 size_t cap) {
    mms_response_init(resp, NULL);
    int i = slot_acquire(w);
    if (i < 0) {
        snprintf(why, cap, "all %d connections to the query server %s are busy for more than %g s",
                 w->cfg.connections, w->server, w->cfg.timeout_s);
        return 503;
    }
    slot_t *s = &w->slots[i];
    int status = 503;
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh = 0;
        if (!s->c) {
            mms_error_clear();
            if (mms_netclient_connect(w->server, w->cfg.connect_timeout_s, &s->c) != MMS_OK) {
                snprintf(why, cap, "cannot reach the query server at %s: %s (is `mmsage serve` "
                                   "running?)",
                         w->server, mms_error_message());
                s->c = NULL;
                status = 503;
                break;
            }
            fresh = 1;
        }
        req->id = atomic_fetch_add(&w->next_id, 1) + 1;
        req->auth = w->server_token;
        mms_response_free(resp);
        mms_error_clear();
        mms_status st = mms_netclient_call(s->c, req, resp, w->cfg.timeout_s);
        if (st == MMS_OK) {
            int conn_err = !resp->ok && (resp->error_code == MMS_PERR_UNAVAILABLE ||
                                         resp->error_code == MMS_PERR_TIMEOUT ||
                                         resp->error_code == MMS_PERR_FRAME_TOO_LARGE);
            if (conn_err) mms_netclient_close(&s->c); /* the server closed it */
            status = 0;
            break;
        }
        snprintf(why, cap, "the query server at %s did not answer: %s", w->server,
                 mms_error_message());
        status = st == MMS_ERR_FORMAT ? 502 : 503;
        mms_netclient_close(&s->c);
        if (fresh) break; /* a new connection failed too: do not hammer */
    }
    slot_release(w, i);
    return status;
}

/* The HTTP status for a query-server error code. */
static int http_status_of(int code) {
    switch (code) {
    case MMS_PERR_K_RANGE:
    case MMS_PERR_VISUAL_RANGE:
    case MMS_PERR_INVALID: return 400;
    case MMS_PERR_JPEG:
    case MMS_PERR_NO_INPUT:
    case MMS_PERR_UNSUPPORTED: return 422;
    case MMS_PERR_VECTOR_LENGTH:
    case MMS_PERR_NON_FINITE: return 409; /* the catalog does not match the index */
    case MMS_PERR_UNAVAILABLE:
    case MMS_PERR_TIMEOUT: return 503;
    default: return 502; /* internal, malformed, field_type: a server or protocol fault */
    }
}

/* Refresh the cached server info when older than max_age seconds. Returns 0
 * or an HTTP status with why[] set (the cache then says unknown). */
static int refresh_info(mms_webserver_t *w, double max_age, char *why, size_t cap) {
    pthread_mutex_lock(&w->info_mu);
    int fresh = w->server_info && mms_now() - w->info_time < max_age;
    pthread_mutex_unlock(&w->info_mu);
    if (fresh) return 0;
    mms_request_t q;
    mms_request_init(&q);
    q.op = MMS_OP_INFO;
    mms_response_t r;
    int st = query(w, &q, &r, why, cap);
    if (st == 0 && !r.ok) {
        snprintf(why, cap, "the query server answered info with %s: %s",
                 mms_proto_error_name(r.error_code), r.error_message);
        st = http_status_of(r.error_code);
    }
    json_t *info = NULL;
    int jpeg = -1;
    if (st == 0) {
        json_t *all = mms_response_json(&r);
        info = json_incref(json_object_get(all, "info"));
        json_decref(all);
        if (!info) info = json_object();
        json_t *j = json_object_get(info, "jpeg");
        jpeg = json_is_integer(j) ? json_integer_value(j) != 0 : 0;
    }
    mms_response_free(&r);
    pthread_mutex_lock(&w->info_mu);
    json_decref(w->server_info);
    w->server_info = info;
    w->jpeg_supported = jpeg;
    w->info_time = mms_now();
    pthread_mutex_unlock(&w->info_mu);
    return st;
}

/* ---- GET /api/info ---------------------------------------------------------------------- */

static enum MHD_Result api_info(mms_webserver_t *w, struct MHD_Connection *con) {
    char why[600] = "";
    int st = refresh_info(w, 5.0, why, sizeof why);
    const mms_catalog_t *c = w->cat;
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_true());
    json_object_set_new(o, "dataset", json_string(w->dataset));
    json_t *src = json_string(w->source);
    json_object_set_new(o, "source", src ? src : json_string(""));
    json_object_set_new(o, "images", json_integer(c->n));
    json_t *sp = json_object();
    for (int s = 0; s < 3; s++) json_object_set_new(sp, mms_split_name(s), json_integer(c->n_split[s]));
    json_object_set_new(o, "splits", sp);
    json_object_set_new(o, "tags", json_integer(c->ntags));
    json_object_set_new(o, "has_images", json_boolean(w->has_paths));
    json_object_set_new(o, "feature_dim", json_integer(c->dim));
    json_object_set_new(o, "knn_dim", json_integer(c->knn_dim));
    json_object_set_new(o, "descriptor", json_string(w->descriptor));
    json_object_set_new(o, "max_upload_bytes", json_integer((json_int_t)w->cfg.max_upload));
    json_object_set_new(o, "k_max", json_integer(MMS_WEB_K_MAX));
    json_object_set_new(o, "auth", json_boolean(w->token != NULL));
    json_object_set_new(o, "negative_tags", json_true());
    json_t *srv = json_object();
    json_object_set_new(srv, "address", json_string(w->server));
    json_object_set_new(srv, "reachable", json_boolean(st == 0));
    pthread_mutex_lock(&w->info_mu);
    int jpeg = w->jpeg_supported;
    if (st == 0 && w->server_info) json_object_set(srv, "info", w->server_info);
    pthread_mutex_unlock(&w->info_mu);
    if (st != 0) json_object_set_new(srv, "error", json_string(why));
    json_object_set_new(o, "server", srv);
    json_object_set_new(o, "jpeg_upload", json_boolean(jpeg == 1));
    return send_json(con, 200, o);
}

/* ---- GET /api/random and /api/tags -------------------------------------------------------- */

static json_t *tags_json(const mms_catalog_t *c, int64_t row) {
    json_t *a = json_array();
    for (int64_t j = c->tag_ptr[row]; j < c->tag_ptr[row + 1]; j++)
        json_array_append_new(a, json_string(c->tag_names[c->tag_idx[j]]));
    return a;
}

static int row_has_image(const mms_webserver_t *w, int64_t row) {
    return w->cat->paths && w->cat->paths[row] && w->cat->paths[row][0];
}

static enum MHD_Result api_random(mms_webserver_t *w, struct MHD_Connection *con,
                                  const mms_web_args_t *args) {
    mms_web_random_t p;
    mms_web_err_t e;
    if (mms_web_random_parse(args, &p, &e)) return send_err(con, &e);
    const mms_catalog_t *c = w->cat;
    int64_t total = p.split < 0 ? c->n : w->split_n[p.split];
    uint64_t seed = p.has_seed ? p.seed
                               : (uint64_t)time(NULL) * 1000003u + atomic_fetch_add(&w->next_id, 1);
    mms_rng_t r;
    mms_rng_init(&r, seed, MMS_STREAM_SHUFFLE, 0);
    int n = (int64_t)p.n < total ? p.n : (int)total;
    /* n distinct positions by rejection (n <= 200, so a short scan is cheap) */
    int64_t pick[MMS_WEB_RANDOM_MAX];
    for (int i = 0; i < n; i++) {
        int64_t x;
        int dup;
        do {
            x = (int64_t)mms_rng_below64(&r, (uint64_t)total);
            dup = 0;
            for (int j = 0; j < i && !dup; j++) dup = pick[j] == x;
        } while (dup);
        pick[i] = x;
    }
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        int64_t row = p.split < 0 ? pick[i] : w->split_rows[p.split][pick[i]];
        json_t *it = json_object();
        json_object_set_new(it, "id", json_string(c->ids[row]));
        json_object_set_new(it, "tags", tags_json(c, row));
        json_object_set_new(it, "image", json_boolean(row_has_image(w, row)));
        json_array_append_new(a, it);
    }
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_true());
    json_object_set_new(o, "split", json_string(p.split < 0 ? "all" : mms_split_name(p.split)));
    json_object_set_new(o, "available", json_integer(total));
    json_object_set_new(o, "seed", json_integer((json_int_t)(seed & ((1ull << 53) - 1))));
    json_object_set_new(o, "images", a);
    return send_json(con, 200, o);
}

static enum MHD_Result api_tags(mms_webserver_t *w, struct MHD_Connection *con,
                                const mms_web_args_t *args) {
    mms_web_tags_t p;
    mms_web_err_t e;
    if (mms_web_tags_parse(args, &p, &e)) return send_err(con, &e);
    const mms_catalog_t *c = w->cat;
    /* the `limit` most frequent tags with the prefix (ties by name) */
    int32_t best[MMS_WEB_TAGS_LIMIT_MAX];
    int nb = 0, matched = 0;
    for (int32_t t = 0; t < c->ntags; t++) {
        if (!mms_web_prefix_match(c->tag_names[t], p.prefix)) continue;
        matched++;
        int pos = nb;
        while (pos > 0 && c->tag_count[best[pos - 1]] < c->tag_count[t]) pos--;
        if (pos >= p.limit) continue;
        if (nb < p.limit) nb++;
        memmove(best + pos + 1, best + pos, (size_t)(nb - 1 - pos) * sizeof *best);
        best[pos] = t;
    }
    json_t *a = json_array();
    for (int i = 0; i < nb; i++) {
        json_t *it = json_object();
        json_object_set_new(it, "tag", json_string(c->tag_names[best[i]]));
        json_object_set_new(it, "count", json_integer(c->tag_count[best[i]]));
        json_array_append_new(a, it);
    }
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_true());
    json_object_set_new(o, "prefix", json_string(p.prefix));
    json_object_set_new(o, "matched", json_integer(matched));
    json_object_set_new(o, "tags", a);
    return send_json(con, 200, o);
}

/* ---- uploads ------------------------------------------------------------------------------- */

static void upload_unref(mms_webserver_t *w, upload_t *u) {
    if (!u) return;
    pthread_mutex_lock(&w->up_mu);
    int last = --u->refs == 0;
    pthread_mutex_unlock(&w->up_mu);
    if (last) {
        free(u->data);
        free(u->desc);
        free(u);
    }
}

/* Drop uploads unused for longer than the TTL (caller holds up_mu); returns
 * the ones whose last reference went, for freeing outside the lock. */
static void uploads_expire_locked(mms_webserver_t *w, double now) {
    for (int i = 0; i < w->cfg.max_uploads; i++) {
        upload_t *u = w->uploads[i];
        if (u && now - u->last_used > w->cfg.upload_ttl_s) {
            w->uploads[i] = NULL;
            if (--u->refs == 0) {
                free(u->data);
                free(u->desc);
                free(u);
            }
        }
    }
}

/* The upload with this handle, with a reference taken, or NULL. */
static upload_t *upload_get(mms_webserver_t *w, const char *handle) {
    upload_t *found = NULL;
    double now = mms_now();
    pthread_mutex_lock(&w->up_mu);
    uploads_expire_locked(w, now);
    for (int i = 0; i < w->cfg.max_uploads && !found; i++) {
        upload_t *u = w->uploads[i];
        /* handles are random and not secret beyond this server; memcmp is enough */
        if (u && !memcmp(u->handle, handle, MMS_WEB_HANDLE_LEN)) found = u;
    }
    if (found) {
        found->refs++;
        found->last_used = now;
    }
    pthread_mutex_unlock(&w->up_mu);
    return found;
}

static enum MHD_Result api_upload(mms_webserver_t *w, struct MHD_Connection *con, req_t *q) {
    static const unsigned char soi[3] = {0xff, 0xd8, 0xff};
    if (q->len < 3 || memcmp(q->body, soi, 3))
        return send_errf(con, 415, "not_jpeg",
                         "the upload is not a JPEG (%zu bytes; a JPEG starts with FF D8 FF)", q->len);
    char why[600];
    int st = refresh_info(w, 30.0, why, sizeof why);
    if (st) return send_errf(con, st, "query_server_unavailable", "%s", why);
    pthread_mutex_lock(&w->info_mu);
    int jpeg = w->jpeg_supported;
    pthread_mutex_unlock(&w->info_mu);
    if (jpeg != 1)
        return send_errf(con, 422, "unsupported",
                         "this index was not built from pixels (its catalog has no JPEG "
                         "descriptor), so an uploaded image cannot be searched with; pick a "
                         "catalog image instead");
    /* decode now, so a broken file is refused here and not at every search */
    float *desc = NULL;
    mms_status s;
    mms_error_clear();
    if (w->features_are_descriptor) {
        s = mms_calloc(MMS_DESCRIPTOR_DIM, sizeof *desc, &desc);
        if (s == MMS_OK) s = mms_descriptor_from_jpeg_mem(q->body, q->len, "upload", desc);
    } else {
        uint8_t *rgb = NULL;
        int iw, ih;
        s = mms_descriptor_decode_jpeg(q->body, q->len, "upload", 64, &rgb, &iw, &ih);
        free(rgb);
    }
    if (s != MMS_OK) {
        free(desc);
        return send_errf(con, s == MMS_ERR_NOMEM ? 500 : 422, "bad_jpeg", "%s",
                         mms_error_message());
    }
    upload_t *u = calloc(1, sizeof *u);
    unsigned char rnd[MMS_WEB_HANDLE_LEN / 2];
    if (!u || getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        free(u);
        free(desc);
        return send_errf(con, 500, "internal", "cannot allocate an upload handle");
    }
    for (size_t i = 0; i < sizeof rnd; i++) snprintf(u->handle + 2 * i, 3, "%02x", rnd[i]);
    u->data = q->body; /* takes the body */
    u->len = q->len;
    q->body = NULL;
    q->len = q->cap = 0;
    u->desc = desc;
    u->refs = 1;
    double now = mms_now();
    u->last_used = now;
    upload_t *evict = NULL;
    pthread_mutex_lock(&w->up_mu);
    uploads_expire_locked(w, now);
    int slot = -1, oldest = 0;
    for (int i = 0; i < w->cfg.max_uploads && slot < 0; i++) {
        if (!w->uploads[i]) slot = i;
        else if (w->uploads[i]->last_used < w->uploads[oldest]->last_used) oldest = i;
    }
    if (slot < 0) {
        slot = oldest;
        evict = w->uploads[oldest];
    }
    w->uploads[slot] = u;
    pthread_mutex_unlock(&w->up_mu);
    upload_unref(w, evict);
    mms_log_debug("web: upload %s: %zu bytes", u->handle, u->len);
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_true());
    json_object_set_new(o, "upload", json_string(u->handle));
    json_object_set_new(o, "bytes", json_integer((json_int_t)u->len));
    json_object_set_new(o, "expires_after_idle_s", json_real(w->cfg.upload_ttl_s));
    return send_json(con, 201, o);
}

/* ---- POST /api/search ------------------------------------------------------------------------ */

static const float *row_features(const mms_catalog_t *c, int64_t row) {
    return c->x + (size_t)row * (size_t)c->dim;
}

static enum MHD_Result api_search(mms_webserver_t *w, struct MHD_Connection *con, req_t *q) {
    mms_web_search_t p;
    mms_web_err_t e;
    if (mms_web_search_parse((const char *)q->body, q->len, &p, &e)) return send_err(con, &e);
    const mms_catalog_t *c = w->cat;
    mms_request_t req;
    mms_request_init(&req);
    req.op = MMS_OP_SEARCH;
    req.k = p.k;
    req.tag_k = p.tag_k;
    req.predict_tags = p.predict_tags;
    req.concept = p.concept;
    req.connect = p.connect;
    req.tags = p.tags;
    req.ntags = p.ntags;
    if (p.visual_given) {
        req.visual = (float)p.visual;
        req.visual_given = 1;
    }
    json_t *warnings = json_array();
    req.negative_tags = p.negative_tags;
    req.nnegative_tags = p.nnegative;
    int64_t qrow = -1;
    upload_t *up = NULL;
    const float *qvec = NULL; /* the query image in the catalog's feature space, for "why" */
    enum MHD_Result ret;
    if (p.id[0]) {
        qrow = mms_catalog_id_lookup(c, p.id);
        if (qrow < 0) {
            ret = send_errf(con, 404, "unknown_id", "no image with id '%.*s' in the catalog", 200,
                            p.id);
            json_decref(warnings);
            mms_web_search_free(&p);
            return ret;
        }
        qvec = row_features(c, qrow);
        req.image = qvec;
        req.image_dim = c->dim;
        if (c->knn_x) {
            req.image_knn = c->knn_x + (size_t)qrow * (size_t)c->knn_dim;
            req.image_knn_dim = c->knn_dim;
        }
        /* only training images are in the graph: excluding another id would
         * only earn a warning ("not an image of this index") */
        if (c->split[qrow] == MMS_SPLIT_TRAIN) req.exclude = c->ids[qrow];
    } else if (p.upload[0]) {
        up = upload_get(w, p.upload);
        if (!up) {
            json_decref(warnings);
            mms_web_search_free(&p); /* the message below uses none of p */
            return send_errf(con, 404, "unknown_upload",
                             "no upload with this handle (unused uploads are dropped after %g s, "
                             "or when %d newer ones arrive): upload the image again",
                             w->cfg.upload_ttl_s, w->cfg.max_uploads);
        }
        req.jpeg = up->data;
        req.jpeg_len = up->len;
        qvec = up->desc;
    }
    double t0 = mms_now();
    mms_response_t r;
    char why[600];
    int st = query(w, &req, &r, why, sizeof why);
    double rtt = mms_now() - t0;
    if (st) {
        json_t *o = mms_web_error_json(st, "query_server_unavailable", why);
        json_object_set_new(o, "seq", json_integer(p.seq));
        ret = send_json(con, st, o);
        goto done_free;
    }
    json_t *unknown = json_array();
    for (int i = 0; i < r.nwarnings; i++) {
        json_array_append_new(warnings, json_string(r.warnings[i]));
        json_t *u = mms_web_unknown_keyword(r.warnings[i]);
        if (u) json_array_append_new(unknown, u);
    }
    if (!r.ok) {
        int hs = http_status_of(r.error_code);
        json_t *o = mms_web_error_json(hs, mms_proto_error_name(r.error_code), r.error_message);
        json_object_set_new(o, "seq", json_integer(p.seq));
        json_object_set_new(o, "warnings", warnings);
        json_object_set_new(o, "unknown_tags", unknown);
        warnings = NULL;
        ret = send_json(con, hs, o);
        goto done_free;
    }
    /* predicted tags as a list of names for the "why" intersection */
    const char *pred[MMS_WEB_TAG_K_MAX];
    int npred = 0;
    json_t *pj = json_array();
    for (int i = 0; i < r.ntags && npred < MMS_WEB_TAG_K_MAX; i++) {
        pred[npred++] = r.tags[i].tag;
        json_t *it = json_object();
        json_object_set_new(it, "tag", json_string(r.tags[i].tag));
        json_object_set_new(it, "score", mms_json_number(r.tags[i].score));
        json_array_append_new(pj, it);
    }
    json_t *res = json_array();
    for (int i = 0; i < r.nresults; i++) {
        const mms_result_t *x = &r.results[i];
        int64_t row = x->id ? mms_catalog_id_lookup(c, x->id) : -1;
        json_t *it = json_object();
        json_object_set_new(it, "id", json_string(x->id ? x->id : ""));
        json_object_set_new(it, "score", mms_json_number(x->score));
        json_t *tg = json_array();
        for (int j = 0; j < x->ntags; j++) json_array_append_new(tg, json_string(x->tags[j]));
        json_object_set_new(it, "tags", tg);
        json_object_set_new(it, "image", json_boolean(row >= 0 && row_has_image(w, row)));
        json_t *wy = json_object();
        json_object_set_new(wy, "keywords", mms_web_shared(x->tags, x->ntags, p.tags, p.ntags));
        json_object_set_new(wy, "predicted", mms_web_shared(x->tags, x->ntags, pred, npred));
        json_object_set_new(wy, "visual_cosine",
                            qvec && row >= 0 ? mms_json_number(mms_web_cosine(
                                                   qvec, row_features(c, row), c->dim))
                                             : json_null());
        json_object_set_new(it, "why", wy);
        json_array_append_new(res, it);
    }
    json_t *qj = json_object();
    if (qrow >= 0) {
        json_object_set_new(qj, "id", json_string(c->ids[qrow]));
        json_object_set_new(qj, "tags", tags_json(c, qrow));
        json_object_set_new(qj, "image", json_boolean(row_has_image(w, qrow)));
    }
    if (up) json_object_set_new(qj, "upload", json_string(up->handle));
    json_t *kw = json_array(), *neg = json_array();
    for (int i = 0; i < p.ntags; i++) json_array_append_new(kw, json_string(p.tags[i]));
    for (int i = 0; i < p.nnegative; i++) json_array_append_new(neg, json_string(p.negative_tags[i]));
    json_object_set_new(qj, "keywords", kw);
    json_object_set_new(qj, "negative_tags", neg);
    json_object_set_new(qj, "visual", p.visual_given ? json_real(p.visual) : json_null());
    json_object_set_new(qj, "concept", json_string(mms_concept_name(p.concept)));
    json_t *tm = json_object();
    for (int i = 0; i < r.ntiming; i++)
        json_object_set_new(tm, r.timing[i].stage, json_integer((json_int_t)r.timing[i].us));
    json_object_set_new(tm, "query_round_trip", json_integer((json_int_t)(rtt * 1e6)));
    json_object_set_new(tm, "web", json_integer((json_int_t)((mms_now() - q->t0) * 1e6)));
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_true());
    json_object_set_new(o, "seq", json_integer(p.seq));
    json_object_set_new(o, "query", qj);
    json_object_set_new(o, "results", res);
    json_object_set_new(o, "predicted_tags", pj);
    json_object_set_new(o, "unknown_tags", unknown);
    json_object_set_new(o, "warnings", warnings);
    warnings = NULL;
    json_object_set_new(o, "timing_us", tm);
    ret = send_json(con, 200, o);
done_free:
    json_decref(warnings);
    mms_response_free(&r);
    upload_unref(w, up);
    mms_web_search_free(&p);
    return ret;
}

/* ---- images and thumbnails ------------------------------------------------------------------ */

static const char *sniff_type(const unsigned char *b, size_t n) {
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return "image/jpeg";
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return "image/png";
    if (n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) return "image/gif";
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return "image/webp";
    return NULL;
}

/* The catalog row of an id with an image file, or an HTTP error sent. */
static int64_t image_row(mms_webserver_t *w, const char *id, struct MHD_Connection *con,
                         enum MHD_Result *sent) {
    int64_t row = mms_catalog_id_lookup(w->cat, id);
    if (row < 0) {
        *sent = send_errf(con, 404, "unknown_id", "no image with id '%.*s' in the catalog", 200, id);
        return -1;
    }
    if (!row_has_image(w, row)) {
        *sent = send_errf(con, 404, "no_image",
                          "image '%.*s' has no file in the catalog (no paths.tsv entry: this data "
                          "set has features only)",
                          200, id);
        return -1;
    }
    return row;
}

static enum MHD_Result serve_img(mms_webserver_t *w, struct MHD_Connection *con, const char *id) {
    enum MHD_Result sent = MHD_NO;
    int64_t row = image_row(w, id, con, &sent);
    if (row < 0) return sent;
    const char *path = w->cat->paths[row];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0) close(fd);
        mms_log_warn("web: image %s: cannot open %s: %s", id, path, strerror(errno));
        return send_errf(con, 404, "image_missing", "the file of image '%.*s' cannot be read", 200,
                         id);
    }
    if ((size_t)sb.st_size > MMS_WEB_MAX_IMAGE_FILE) {
        close(fd);
        return send_errf(con, 500, "image_too_large", "the file of image '%.*s' is over %zu MiB",
                         200, id, MMS_WEB_MAX_IMAGE_FILE >> 20);
    }
    unsigned char head[16];
    ssize_t hn = pread(fd, head, sizeof head, 0);
    const char *type = sniff_type(head, hn > 0 ? (size_t)hn : 0);
    struct MHD_Response *r = MHD_create_response_from_fd((size_t)sb.st_size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    common_headers(r);
    MHD_add_response_header(r, "Content-Type", type ? type : "application/octet-stream");
    MHD_add_response_header(r, "Cache-Control", "private, max-age=3600");
    enum MHD_Result q = MHD_queue_response(con, 200, r);
    MHD_destroy_response(r);
    return q;
}

/* libjpeg errors: jump back instead of exit(). */
typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jerr_t;

static void jerr_exit(j_common_ptr ci) {
    jerr_t *e = (jerr_t *)ci->err;
    (*ci->err->format_message)(ci, e->msg);
    longjmp(e->jb, 1);
}
static void jerr_output(j_common_ptr ci) { (void)ci; }

/* rgb (w x h x 3) as a JPEG in a malloc'd buffer. */
static mms_status encode_jpeg(const uint8_t *rgb, int iw, int ih, int quality, unsigned char **out,
                              size_t *outlen) {
    struct jpeg_compress_struct ci;
    jerr_t je;
    unsigned char *volatile buf = NULL;
    unsigned long len = 0;
    memset(&ci, 0, sizeof ci);
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jerr_exit;
    je.pub.output_message = jerr_output;
    if (setjmp(je.jb)) {
        jpeg_destroy_compress(&ci);
        free(buf);
        MMS_CHECK(0, MMS_ERR_LIB, "thumbnail: libjpeg: %s", je.msg);
    }
    jpeg_create_compress(&ci);
    unsigned char *b = NULL;
    jpeg_mem_dest(&ci, &b, &len);
    ci.image_width = (JDIMENSION)iw;
    ci.image_height = (JDIMENSION)ih;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW rowp = (JSAMPROW)(rgb + (size_t)ci.next_scanline * (size_t)iw * 3);
        jpeg_write_scanlines(&ci, &rowp, 1);
    }
    jpeg_finish_compress(&ci);
    buf = b;
    jpeg_destroy_compress(&ci);
    *out = buf;
    *outlen = len;
    return MMS_OK;
}

/* Move entry i to the head of the LRU list (caller holds th_mu). */
static void lru_unlink(mms_webserver_t *w, int i) {
    thumb_t *t = &w->th[i];
    if (t->prev >= 0) w->th[t->prev].next = t->next;
    else w->th_head = t->next;
    if (t->next >= 0) w->th[t->next].prev = t->prev;
    else w->th_tail = t->prev;
    t->prev = t->next = -1;
}
static void lru_push(mms_webserver_t *w, int i) {
    thumb_t *t = &w->th[i];
    t->prev = -1;
    t->next = w->th_head;
    if (w->th_head >= 0) w->th[w->th_head].prev = i;
    w->th_head = i;
    if (w->th_tail < 0) w->th_tail = i;
}

/* Insert a thumbnail (takes data), evicting the least recently used ones
 * beyond the cache size (caller holds th_mu). Silently skipped when out of memory. */
static void thumb_insert_locked(mms_webserver_t *w, int64_t row, unsigned char *data, size_t len,
                                const char *type) {
    if (w->th_of_row[row] >= 0 || len > w->cfg.thumb_cache) {
        free(data);
        return;
    }
    while (w->th_bytes + len > w->cfg.thumb_cache && w->th_tail >= 0) {
        int v = w->th_tail;
        lru_unlink(w, v);
        w->th_of_row[w->th[v].row] = -1;
        w->th_bytes -= w->th[v].len;
        free(w->th[v].data);
        w->th[v].data = NULL;
        w->th[v].row = -1;
        w->th[v].next = w->th_free;
        w->th_free = v;
    }
    if (w->th_free < 0) { /* every entry in use: grow, the new ones become free */
        size_t old = w->th_cap;
        if (mms_grow(&w->th, sizeof *w->th, old + 1, &w->th_cap) != MMS_OK) {
            free(data);
            return;
        }
        for (size_t i = w->th_cap; i-- > old;) {
            w->th[i].row = -1;
            w->th[i].data = NULL;
            w->th[i].next = w->th_free;
            w->th_free = (int)i;
        }
    }
    int i = w->th_free;
    w->th_free = w->th[i].next;
    w->th[i].row = row;
    w->th[i].data = data;
    w->th[i].len = len;
    w->th[i].type = type;
    lru_push(w, i);
    w->th_of_row[row] = i;
    w->th_bytes += len;
}

static enum MHD_Result serve_thumb(mms_webserver_t *w, struct MHD_Connection *con, const char *id) {
    enum MHD_Result sent = MHD_NO;
    int64_t row = image_row(w, id, con, &sent);
    if (row < 0) return sent;
    static const char *const cache = "private, max-age=3600";
    pthread_mutex_lock(&w->th_mu);
    int i = w->th_of_row[row];
    if (i >= 0) {
        lru_unlink(w, i);
        lru_push(w, i);
        /* copied by send_bytes while the lock is held, so eviction cannot free it */
        enum MHD_Result q = send_bytes(con, 200, w->th[i].type, w->th[i].data, w->th[i].len, cache);
        pthread_mutex_unlock(&w->th_mu);
        return q;
    }
    pthread_mutex_unlock(&w->th_mu);
    /* a miss: made outside the lock (two threads may both make one; the second is dropped) */
    char *file = NULL;
    size_t flen = 0;
    mms_error_clear();
    if (mms_read_file(w->cat->paths[row], &file, &flen) != MMS_OK)
        return send_errf(con, 404, "image_missing", "the file of image '%.*s' cannot be read", 200,
                         id);
    const char *type = sniff_type((const unsigned char *)file, flen);
    unsigned char *out = NULL;
    size_t olen = 0;
    if (type && !strcmp(type, "image/jpeg")) {
        uint8_t *rgb = NULL;
        int iw = 0, ih = 0;
        mms_status s = mms_descriptor_decode_jpeg(file, flen, id, w->cfg.thumb_side, &rgb, &iw, &ih);
        if (s == MMS_OK) s = encode_jpeg(rgb, iw, ih, 80, &out, &olen);
        free(rgb);
        if (s != MMS_OK) {
            free(file);
            return send_errf(con, 500, "bad_image", "cannot make a thumbnail of image '%.*s': %s",
                             200, id, mms_error_message());
        }
        free(file);
    } else {
        out = (unsigned char *)file; /* not a JPEG: the file itself */
        olen = flen;
        if (!type) type = "application/octet-stream";
    }
    enum MHD_Result q = send_bytes(con, 200, type, out, olen, cache);
    pthread_mutex_lock(&w->th_mu);
    thumb_insert_locked(w, row, out, olen, type);
    pthread_mutex_unlock(&w->th_mu);
    return q;
}

/* ---- static files ------------------------------------------------------------------------------- */

static enum MHD_Result serve_static(mms_webserver_t *w, struct MHD_Connection *con,
                                    const mms_web_route_t *rt) {
    char path[MMS_PATH_MAX];
    char *data = NULL;
    size_t len = 0;
    mms_error_clear();
    if (mms_path_join(path, sizeof path, w->static_dir, rt->static_name) != MMS_OK ||
        mms_read_file(path, &data, &len) != MMS_OK)
        return send_errf(con, 404, "not_found", "the page file %s is missing from %s",
                         rt->static_name, w->static_dir);
    enum MHD_Result q = send_bytes(con, 200, rt->content_type, data, len, "no-cache");
    free(data);
    return q;
}

/* ---- authentication ------------------------------------------------------------------------------ */

/* 0 when the request may go on; else a response was queued (*sent). */
static int check_auth(mms_webserver_t *w, struct MHD_Connection *con, req_t *q,
                      const mms_web_args_t *args, enum MHD_Result *sent) {
    if (!w->token) {
        /* loopback without a token: refuse other Host names (DNS rebinding) */
        const char *host = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Host");
        if (!mms_web_host_header_ok(host)) {
            *sent = send_errf(con, 403, "bad_host",
                              "this server answers only requests addressed to a loopback host "
                              "(127.0.0.1, localhost, [::1])");
            return 1;
        }
        return 0;
    }
    const char *t = mms_web_args_get(args, "token");
    if (t && !q->route.is_post) {
        if (!mms_web_token_equal(t, strlen(t), w->token, w->token_len)) {
            *sent = send_errf(con, 401, "unauthorized", "wrong token");
            return 1;
        }
        /* log in: keep the token in a cookie and drop it from the address bar */
        char loc[4200], cookie[256];
        snprintf(loc, sizeof loc, "%.*s", (int)q->path_len, q->path);
        snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Strict", MMS_WEB_COOKIE,
                 w->token);
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!r) {
            *sent = MHD_NO;
            return 1;
        }
        common_headers(r);
        MHD_add_response_header(r, "Location", loc);
        MHD_add_response_header(r, "Set-Cookie", cookie);
        MHD_add_response_header(r, "Cache-Control", "no-store");
        *sent = MHD_queue_response(con, 303, r);
        MHD_destroy_response(r);
        return 1;
    }
    size_t n = 0;
    const char *given = mms_web_bearer(
        MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization"), &n);
    if (!given) given = mms_web_cookie(MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Cookie"),
                                       MMS_WEB_COOKIE, &n);
    if (given && mms_web_token_equal(given, n, w->token, w->token_len)) return 0;
    *sent = send_errf(con, 401, "unauthorized",
                      "this server needs its token: open /?token=TOKEN once (it sets a cookie), or "
                      "send 'Authorization: Bearer TOKEN'");
    return 1;
}

/* ---- libmicrohttpd callbacks ---------------------------------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con) {
    (void)con;
    req_t *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->w = cls;
    q->t0 = mms_now();
    const char *qm = strchr(uri, '?');
    size_t plen = qm ? (size_t)(qm - uri) : strlen(uri);
    q->path = strndup(uri, plen);
    q->path_len = plen;
    q->query = strdup(qm ? qm + 1 : "");
    q->query_len = qm ? strlen(qm + 1) : 0;
    if (!q->path || !q->query) {
        free(q->path);
        free(q->query);
        free(q);
        return NULL;
    }
    return q;
}

static void on_done(void *cls, struct MHD_Connection *con, void **req_cls,
                    enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)con;
    (void)toe;
    req_t *q = *req_cls;
    if (!q) return;
    free(q->path);
    free(q->query);
    free(q->body);
    free(q);
    *req_cls = NULL;
}

static int content_type_is(struct MHD_Connection *con, const char *want) {
    const char *ct = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Type");
    size_t n = strlen(want);
    return ct && !strncasecmp(ct, want, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* First call of a request: route, authenticate, and for a POST decide whether
 * its body will be read. Returns 1 when a response was queued (*sent). */
static int begin(mms_webserver_t *w, struct MHD_Connection *con, req_t *q, const char *method,
                 enum MHD_Result *sent) {
    mms_web_err_t e;
    mms_web_args_t *args = malloc(sizeof *args);
    if (!args) {
        *sent = MHD_NO;
        return 1;
    }
    int st = mms_web_route(method, q->path, q->path_len, &q->route, &e);
    if (!st) st = mms_web_args_parse(q->query, q->query_len, args, &e);
    if (st) {
        free(args);
        *sent = q->route.allow && st == 405
                    ? send_json_h(con, 405, mms_web_error_json(e.status, e.code, e.message), "Allow",
                                  q->route.allow)
                    : send_err(con, &e);
        return 1;
    }
    if (check_auth(w, con, q, args, sent)) {
        free(args);
        return 1;
    }
    free(args);
    if (!q->route.is_post) return 0;
    /* a POST: refuse early what cannot be right; the answer goes out once the
     * body has been read (and dropped), so the client sees it */
    const char *origin = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Host");
    int upload = q->route.kind == MMS_WEB_R_UPLOAD;
    q->limit = upload ? w->cfg.max_upload : MMS_WEB_MAX_JSON_BODY;
    const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
    if (origin && host) {
        const char *o = strstr(origin, "://");
        if (!o || strcmp(o + 3, host)) {
            q->refused_status = mms_web_err(&q->refused, 403, "cross_origin",
                                            "cross-origin requests are refused");
            return 0;
        }
    }
    if (upload && !content_type_is(con, "image/jpeg")) {
        q->refused_status = mms_web_err(&q->refused, 415, "not_jpeg",
                                        "upload a JPEG as the raw body with Content-Type: image/jpeg");
    } else if (!upload && !content_type_is(con, "application/json")) {
        q->refused_status = mms_web_err(&q->refused, 415, "bad_content_type",
                                        "send the search as a JSON body with Content-Type: "
                                        "application/json");
    } else if (cl && strtoull(cl, NULL, 10) > q->limit) {
        /* answer now: reading megabytes only to refuse them helps nobody */
        mms_web_err(&q->refused, 413, "too_large", "the body is %s bytes; at most %zu", cl, q->limit);
        *sent = send_err(con, &q->refused);
        return 1;
    }
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    mms_webserver_t *w = cls;
    (void)url;
    (void)version;
    req_t *q = *req_cls;
    if (!q) return MHD_NO; /* out of memory in on_uri: drop the connection */
    enum MHD_Result sent = MHD_NO;
    if (!q->started) {
        q->started = 1;
        if (begin(w, con, q, method, &sent)) return sent;
        if (q->route.is_post) return MHD_YES; /* the body follows */
    } else if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (q->refused_status || q->too_large) return MHD_YES; /* drop it */
        if (n > q->limit - q->len) {
            q->too_large = 1;
            free(q->body);
            q->body = NULL;
            q->len = q->cap = 0;
            return MHD_YES;
        }
        /* never more than the limit: an upload keeps this buffer */
        if (mms_grow_max(&q->body, 1, q->len + n, q->limit, &q->cap) != MMS_OK) return MHD_NO;
        memcpy(q->body + q->len, upload_data, n);
        q->len += n;
        return MHD_YES;
    }
    /* the request is complete */
    if (q->refused_status) return send_err(con, &q->refused);
    if (q->too_large)
        return send_errf(con, 413, "too_large", "the body is over %zu bytes", q->limit);
    switch (q->route.kind) {
    case MMS_WEB_R_STATIC: sent = serve_static(w, con, &q->route); break;
    case MMS_WEB_R_INFO: sent = api_info(w, con); break;
    case MMS_WEB_R_RANDOM:
    case MMS_WEB_R_TAGS: {
        mms_web_args_t *args = malloc(sizeof *args);
        mms_web_err_t e;
        if (!args) return MHD_NO;
        if (mms_web_args_parse(q->query, q->query_len, args, &e)) sent = send_err(con, &e);
        else if (q->route.kind == MMS_WEB_R_RANDOM) sent = api_random(w, con, args);
        else sent = api_tags(w, con, args);
        free(args);
        break;
    }
    case MMS_WEB_R_SEARCH: sent = api_search(w, con, q); break;
    case MMS_WEB_R_UPLOAD: sent = api_upload(w, con, q); break;
    case MMS_WEB_R_IMG: sent = serve_img(w, con, q->route.id); break;
    case MMS_WEB_R_THUMB: sent = serve_thumb(w, con, q->route.id); break;
    default: sent = send_errf(con, 500, "internal", "unrouted request"); break;
    }
    mms_log_debug("web: %s %.*s %.1f ms", method, (int)(q->path_len < 200 ? q->path_len : 200),
                  q->path, (mms_now() - q->t0) * 1e3);
    return sent;
}

/* ---- life cycle ----------------------------------------------------------------------------------- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* The catalog's dataset description and descriptor (manifest), best effort. */
static void read_manifest(mms_webserver_t *w) {
    /* the name: the catalog folder's, or its parent's for ".../NAME/catalog"
     * (the jobs' layout) */
    char dir[MMS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", w->catalog_dir);
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dir[--dl] = '\0';
    char *base = strrchr(dir, '/');
    if (base && !strcmp(base + 1, "catalog") && base != dir) {
        *base = '\0';
        base = strrchr(dir, '/');
    }
    snprintf(w->dataset, sizeof w->dataset, "%s", base ? base + 1 : dir);
    mms_manifest_t *m = NULL;
    mms_log_level lv = mms_log_get_level();
    mms_log_set_level(MMS_LOG_QUIET); /* the catalog opened fine; a manifest oddity is not an error here */
    if (mms_manifest_read_dir(w->catalog_dir, "catalog", MMS_CATALOG_FORMAT, &m) == MMS_OK) {
        const char *s = NULL;
        if (mms_manifest_get_str(m, "source", &s) == MMS_OK && s)
            snprintf(w->source, sizeof w->source, "%s", s);
        if (mms_manifest_get_str(m, "descriptor", &s) == MMS_OK && s)
            snprintf(w->descriptor, sizeof w->descriptor, "%s", s);
        mms_manifest_destroy(&m);
    }
    mms_error_clear();
    mms_log_set_level(lv);
    w->features_are_descriptor =
        !strcmp(w->descriptor, MMS_DESCRIPTOR_NAME) && w->cat->dim == MMS_DESCRIPTOR_DIM;
}

/* --listen (the strict form of mms_addr.h, port 8080 when none) as a socket
 * address; *la gets the host and port. */
static mms_status make_sockaddr(const char *listen, struct sockaddr_storage *ss, int *v6,
                                mms_addr_t *la) {
    MMS_CHECK(mms_addr_parse_ex(listen, "web: --listen", 0, 8080, MMS_ADDR_STRICT | MMS_ADDR_QUIET,
                                la) == MMS_OK,
              MMS_ERR_ARG,
              "web: --listen '%s': expected HOST:PORT (IPv6 as [ADDR]:PORT), port 0..65535", listen);
    memset(ss, 0, sizeof *ss);
    const char *h = !strcasecmp(la->host, "localhost") ? "127.0.0.1" : la->host;
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)la->port);
        *v6 = 0;
    } else if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)la->port);
        *v6 = 1;
    } else {
        MMS_CHECK(0, MMS_ERR_ARG, "web: --listen '%s': the host must be a numeric address or "
                                  "localhost",
                  listen);
    }
    return MMS_OK;
}

mms_status mms_webserver_create(const mms_webserver_config_t *cfg, mms_webserver_t **out) {
    *out = NULL;
    MMS_CHECK(cfg->server && cfg->catalog_dir && cfg->static_dir && cfg->listen, MMS_ERR_ARG,
              "web: the query server, the catalog, the listen address and the static directory "
              "are required");
    MMS_CHECK(cfg->connections >= 1 && cfg->connections <= 256, MMS_ERR_ARG,
              "web: connections must be 1..256, got %d", cfg->connections);
    MMS_CHECK(cfg->max_uploads >= 1 && cfg->max_uploads <= 4096, MMS_ERR_ARG,
              "web: max_uploads must be 1..4096");
    MMS_CHECK(cfg->thumb_side >= 16 && cfg->thumb_side <= 4096, MMS_ERR_ARG,
              "web: thumb_side must be 16..4096");
    MMS_CHECK(cfg->max_upload >= 1024, MMS_ERR_ARG, "web: max_upload must be at least 1 KiB");
    MMS_CHECK(!cfg->token || strlen(cfg->token) >= MMS_WEB_MIN_TOKEN, MMS_ERR_ARG,
              "web: the auth token must be at least %d bytes", MMS_WEB_MIN_TOKEN);
    for (const char *t = cfg->token; t && *t; t++)
        MMS_CHECK((unsigned char)*t > 0x20 && (unsigned char)*t < 0x7f && *t != ';' && *t != ',' &&
                      *t != '"' && *t != '\\',
                  MMS_ERR_ARG,
                  "web: the auth token must be printable ASCII without spaces, ';', ',', '\"' or "
                  "'\\' (it travels in a cookie)");
    struct sockaddr_storage ss;
    int v6 = 0;
    mms_addr_t la;
    MMS_CALL(make_sockaddr(cfg->listen, &ss, &v6, &la));
    MMS_CHECK(cfg->token || mms_web_is_loopback(la.host), MMS_ERR_ARG,
              "web: refusing to listen on %s without --auth-token-file: the page and the API "
              "would be open to anyone who can reach this address (loopback addresses need no "
              "token)",
              cfg->listen);
    char index[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(index, sizeof index, cfg->static_dir, "index.html"));
    MMS_CHECK(mms_path_exists(index), MMS_ERR_IO,
              "web: %s not found: --static must name the folder of the page (web/ in the source "
              "tree, share/mmsage/web when installed)",
              index);

    mms_webserver_t *w;
    MMS_CALL(mms_calloc(1, sizeof *w, &w));
    w->cfg = *cfg;
    w->stop_pipe[0] = w->stop_pipe[1] = -1;
    w->jpeg_supported = -1;
    w->th_head = w->th_tail = w->th_free = -1;
    pthread_mutex_init(&w->pool_mu, NULL);
    pthread_cond_init(&w->pool_cv, NULL);
    pthread_mutex_init(&w->info_mu, NULL);
    pthread_mutex_init(&w->up_mu, NULL);
    pthread_mutex_init(&w->th_mu, NULL);
    mms_status s = MMS_OK;
    w->server = dup_or_null(cfg->server);
    w->catalog_dir = dup_or_null(cfg->catalog_dir);
    w->listen = dup_or_null(cfg->listen);
    w->static_dir = dup_or_null(cfg->static_dir);
    w->token = dup_or_null(cfg->token);
    w->token_len = w->token ? strlen(w->token) : 0;
    w->server_token = dup_or_null(cfg->server_token);
    MMS_CHECK_GOTO(s, fail, w->server && w->catalog_dir && w->listen && w->static_dir &&
                                (!cfg->token || w->token) &&
                                (!cfg->server_token || w->server_token),
                   MMS_ERR_NOMEM, "web: out of memory");
    MMS_CALL_GOTO(s, fail, mms_catalog_open(w->catalog_dir, &w->cat));
    read_manifest(w);
    for (int64_t i = 0; i < w->cat->n; i++)
        if (row_has_image(w, i)) w->has_paths = 1;
    for (int sp = 0; sp < 3; sp++) {
        MMS_CALL_GOTO(s, fail, mms_calloc((size_t)(w->cat->n_split[sp] + 1), sizeof(int64_t),
                                          &w->split_rows[sp]));
        for (int64_t i = 0; i < w->cat->n; i++)
            if (w->cat->split[i] == sp) w->split_rows[sp][w->split_n[sp]++] = i;
    }
    MMS_CALL_GOTO(s, fail, mms_calloc((size_t)w->cat->n, sizeof *w->th_of_row, &w->th_of_row));
    for (int64_t i = 0; i < w->cat->n; i++) w->th_of_row[i] = -1;
    MMS_CALL_GOTO(s, fail, mms_calloc((size_t)cfg->connections, sizeof *w->slots, &w->slots));
    MMS_CALL_GOTO(s, fail, mms_calloc((size_t)cfg->max_uploads, sizeof *w->uploads, &w->uploads));
    MMS_CHECK_GOTO(s, fail, pipe2(w->stop_pipe, O_CLOEXEC | O_NONBLOCK) == 0, MMS_ERR_IO,
                   "web: pipe: %s", strerror(errno));

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    w->d = MHD_start_daemon(flags, (uint16_t)la.port, NULL, NULL, on_request, w,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_clients,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, w,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, w, MHD_OPTION_END);
    MMS_CHECK_GOTO(s, fail, w->d, MMS_ERR_IO,
                   "web: cannot listen on %s (address in use, or not an address of this machine)",
                   cfg->listen);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_BIND_PORT);
    w->port = di ? di->port : la.port;
    *out = w;
    return MMS_OK;
fail:
    mms_webserver_destroy(&w);
    return s;
}

int mms_webserver_port(const mms_webserver_t *w) { return w->port; }

mms_status mms_webserver_run(mms_webserver_t *w) {
    for (;;) {
        struct pollfd p = {.fd = w->stop_pipe[0], .events = POLLIN};
        int r = poll(&p, 1, -1);
        if (r > 0) break;
        MMS_CHECK(r == 0 || errno == EINTR, MMS_ERR_IO, "web: poll: %s", strerror(errno));
    }
    return MMS_OK;
}

void mms_webserver_stop(mms_webserver_t *w) {
    if (w && w->stop_pipe[1] >= 0) {
        ssize_t r = write(w->stop_pipe[1], "x", 1);
        (void)r;
    }
}

void mms_webserver_destroy(mms_webserver_t **wp) {
    if (!wp || !*wp) return;
    mms_webserver_t *w = *wp;
    if (w->d) MHD_stop_daemon(w->d); /* waits for the connection threads */
    for (int i = 0; w->slots && i < w->cfg.connections; i++) mms_netclient_close(&w->slots[i].c);
    free(w->slots);
    for (int i = 0; w->uploads && i < w->cfg.max_uploads; i++) {
        upload_t *u = w->uploads[i];
        if (u) {
            free(u->data);
            free(u->desc);
            free(u);
        }
    }
    free(w->uploads);
    for (size_t i = 0; i < w->th_cap; i++) free(w->th[i].data);
    free(w->th);
    free(w->th_of_row);
    for (int sp = 0; sp < 3; sp++) free(w->split_rows[sp]);
    json_decref(w->server_info);
    mms_catalog_close(&w->cat);
    if (w->stop_pipe[0] >= 0) close(w->stop_pipe[0]);
    if (w->stop_pipe[1] >= 0) close(w->stop_pipe[1]);
    pthread_mutex_destroy(&w->pool_mu);
    pthread_cond_destroy(&w->pool_cv);
    pthread_mutex_destroy(&w->info_mu);
    pthread_mutex_destroy(&w->up_mu);
    pthread_mutex_destroy(&w->th_mu);
    if (w->token) {
        volatile char *t = w->token;
        for (size_t i = 0; i < w->token_len; i++) t[i] = 0;
    }
    if (w->server_token) explicit_bzero(w->server_token, strlen(w->server_token));
    free(w->server_token);
    free(w->server);
    free(w->catalog_dir);
    free(w->listen);
    free(w->static_dir);
    free(w->token);
    free(w);
    *wp = NULL;
}
