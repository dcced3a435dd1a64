/* webapi.c: see webapi.h. Pure functions only: no I/O, no globals, no logging. */
#define _GNU_SOURCE
#include "webapi.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_addr.h"

int mms_web_err(mms_web_err_t *e, int status, const char *code, const char *fmt, ...) {
    if (e) {
        e->status = status;
        e->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

json_t *mms_web_error_json(int status, const char *code, const char *message) {
    json_t *err = json_object();
    json_object_set_new(err, "status", json_integer(status));
    json_object_set_new(err, "code", json_string(code ? code : "error"));
    /* a message may quote bytes from the request: keep it valid UTF-8 for jansson */
    json_t *m = json_string(message ? message : "");
    if (!m) m = json_string("(the message quoted bytes that are not UTF-8)");
    json_object_set_new(err, "message", m);
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_false());
    json_object_set_new(o, "error", err);
    return o;
}

/* Printable excerpt of untrusted bytes for a message: at most 40 bytes, every
 * byte outside printable ASCII as '?'. */
static const char *excerpt(const char *s, size_t len, char *buf, size_t cap) {
    size_t n = len < 40 ? len : 40, j = 0;
    for (size_t i = 0; i < n && j + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[j++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (len > n && j + 4 < cap) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = '\0';
    return buf;
}

/* ---- percent decoding and ids ------------------------------------------------ */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

long mms_web_unescape(const char *s, size_t len, int plus_space, char *out, size_t cap) {
    size_t j = 0;
    if (cap == 0) return -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\0') return -1;
        if (c == '%') {
            if (i + 2 >= len) return -1; /* truncated escape */
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            c = (char)(hi * 16 + lo);
            if (c == '\0') return -1;
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (j + 1 >= cap) return -1;
        out[j++] = c;
    }
    out[j] = '\0';
    return (long)j;
}

/* 1 when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned min, cp;
        if ((c & 0xe0) == 0xc0) { n = 1; min = 0x80; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { n = 2; min = 0x800; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { n = 3; min = 0x10000; cp = c & 0x07; }
        else return 0;
        if (i + n >= len) return 0; /* truncated sequence */
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += n + 1;
    }
    return 1;
}

int mms_web_id_valid(const char *id, size_t len) {
    if (len == 0 || len > MMS_WEB_MAX_ID || id[0] == '.') return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\') return 0;
    }
    return utf8_valid((const unsigned char *)id, len);
}

/* ---- routing ------------------------------------------------------------------ */

typedef struct {
    const char *path, *name, *type;
} static_file_t;

static const static_file_t k_static[] = {
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/index.html", "index.html", "text/html; charset=utf-8"},
    {"/app.js", "app.js", "text/javascript; charset=utf-8"},
    {"/style.css", "style.css", "text/css; charset=utf-8"},
    {"/favicon.svg", "favicon.svg", "image/svg+xml"},
};

typedef struct {
    const char *path;
    int kind, post;
} api_route_t;

static const api_route_t k_api[] = {
    {"/api/info", MMS_WEB_R_INFO, 0},     {"/api/random", MMS_WEB_R_RANDOM, 0},
    {"/api/tags", MMS_WEB_R_TAGS, 0},     {"/api/search", MMS_WEB_R_SEARCH, 1},
    {"/api/upload", MMS_WEB_R_UPLOAD, 1},
};

static int streq_n(const char *a, size_t alen, const char *b) {
    return strlen(b) == alen && memcmp(a, b, alen) == 0;
}

static int method_ok(const char *method, int post, mms_web_route_t *out, mms_web_err_t *e) {
    int ok = post ? !strcmp(method, "POST") : (!strcmp(method, "GET") || !strcmp(method, "HEAD"));
    if (ok) return 0;
    out->allow = post ? "POST" : "GET, HEAD";
    return mms_web_err(e, 405, "method_not_allowed", "%s is not allowed here; use %s",
                       strlen(method) < 16 ? method : "this method", out->allow);
}

int mms_web_route(const char *method, const char *path, size_t len, mms_web_route_t *out,
                  mms_web_err_t *e) {
    memset(out, 0, sizeof *out);
    char ex[64];
    if (!method) method = "";
    if (len > 4096) return mms_web_err(e, 414, "uri_too_long", "the path is over 4096 bytes");
    for (size_t i = 0; i < sizeof k_static / sizeof k_static[0]; i++)
        if (streq_n(path, len, k_static[i].path)) {
            out->kind = MMS_WEB_R_STATIC;
            out->static_name = k_static[i].name;
            out->content_type = k_static[i].type;
            return method_ok(method, 0, out, e);
        }
    for (size_t i = 0; i < sizeof k_api / sizeof k_api[0]; i++)
        if (streq_n(path, len, k_api[i].path)) {
            out->kind = k_api[i].kind;
            out->is_post = k_api[i].post;
            return method_ok(method, k_api[i].post, out, e);
        }
    size_t plen = 0;
    int kind = 0;
    if (len > 5 && !memcmp(path, "/img/", 5)) { plen = 5; kind = MMS_WEB_R_IMG; }
    else if (len > 7 && !memcmp(path, "/thumb/", 7)) { plen = 7; kind = MMS_WEB_R_THUMB; }
    if (kind) {
        const char *raw = path + plen;
        size_t rlen = len - plen;
        if (memchr(raw, '/', rlen))
            return mms_web_err(e, 400, "bad_id",
                               "'%s' is not an image id (ids contain no '/'; images are "
                               "served by catalog id only)",
                               excerpt(raw, rlen, ex, sizeof ex));
        long n = mms_web_unescape(raw, rlen, 0, out->id, sizeof out->id);
        if (n < 0)
            return mms_web_err(e, 400, "bad_id",
                               "'%s' is not an image id (a bad %%-escape, %%00, or over %d bytes)",
                               excerpt(raw, rlen, ex, sizeof ex), MMS_WEB_MAX_ID);
        if (!mms_web_id_valid(out->id, (size_t)n))
            return mms_web_err(e, 400, "bad_id",
                               "'%s' is not an image id (empty, a leading '.', '/', '\\', a "
                               "control byte or invalid UTF-8)",
                               excerpt(out->id, (size_t)n, ex, sizeof ex));
        out->kind = kind;
        return method_ok(method, 0, out, e);
    }
    return mms_web_err(e, 404, "not_found", "no such page or API route: '%s'",
                       excerpt(path, len, ex, sizeof ex));
}

/* ---- query strings ------------------------------------------------------------ */

int mms_web_args_parse(const char *qs, size_t len, mms_web_args_t *out, mms_web_err_t *e) {
    out->n = 0;
    char ex[64];
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && qs[j] != '&') j++;
        if (j > i) {
            const char *eq = memchr(qs + i, '=', j - i);
            size_t klen = eq ? (size_t)(eq - (qs + i)) : j - i;
            if (out->n == MMS_WEB_MAX_ARGS)
                return mms_web_err(e, 400, "bad_query", "more than %d query parameters",
                                   MMS_WEB_MAX_ARGS);
            int a = out->n;
            long kn = mms_web_unescape(qs + i, klen, 1, out->key[a], sizeof out->key[a]);
            if (kn < 0)
                return mms_web_err(e, 400, "bad_query",
                                   "query parameter name '%s': a bad %%-escape or over 63 bytes",
                                   excerpt(qs + i, klen, ex, sizeof ex));
            const char *v = eq ? eq + 1 : qs + j;
            size_t vlen = eq ? (size_t)(qs + j - v) : 0;
            if (mms_web_unescape(v, vlen, 1, out->val[a], sizeof out->val[a]) < 0)
                return mms_web_err(e, 400, "bad_query",
                                   "query parameter '%s': a bad %%-escape or over %d bytes",
                                   excerpt(out->key[a], (size_t)kn, ex, sizeof ex), MMS_WEB_MAX_ARG);
            for (int b = 0; b < a; b++)
                if (!strcmp(out->key[b], out->key[a]))
                    return mms_web_err(e, 400, "bad_query", "query parameter '%s' given twice",
                                       excerpt(out->key[a], (size_t)kn, ex, sizeof ex));
            out->n++;
        }
        i = j + 1;
    }
    return 0;
}

const char *mms_web_args_get(const mms_web_args_t *a, const char *key) {
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->key[i], key)) return a->val[i];
    return NULL;
}

int mms_web_args_int(const mms_web_args_t *a, const char *key, long lo, long hi, long def,
                     long *v, mms_web_err_t *e) {
    const char *s = mms_web_args_get(a, key);
    char ex[64];
    *v = def;
    if (!s) return 0;
    char *end;
    long x = strtol(s, &end, 10);
    if (end == s || *end || x < lo || x > hi || s[0] == ' ' || s[0] == '+')
        return mms_web_err(e, 400, "bad_query", "%s must be an integer in %ld..%ld, got '%s'", key,
                           lo, hi, excerpt(s, strlen(s), ex, sizeof ex));
    *v = x;
    return 0;
}

int mms_web_args_only(const mms_web_args_t *a, const char *const *keys, mms_web_err_t *e) {
    char ex[64];
    for (int i = 0; i < a->n; i++) {
        int known = 0;
        for (int k = 0; keys[k] && !known; k++) known = !strcmp(a->key[i], keys[k]);
        if (!known)
            return mms_web_err(e, 400, "bad_query", "unknown query parameter '%s'",
                               excerpt(a->key[i], strlen(a->key[i]), ex, sizeof ex));
    }
    return 0;
}

int mms_web_random_parse(const mms_web_args_t *a, mms_web_random_t *out, mms_web_err_t *e) {
    static const char *const keys[] = {"n", "split", "seed", "token", NULL};
    memset(out, 0, sizeof *out);
    int s = mms_web_args_only(a, keys, e);
    if (s) return s;
    long n;
    if ((s = mms_web_args_int(a, "n", 1, MMS_WEB_RANDOM_MAX, 24, &n, e))) return s;
    out->n = (int)n;
    const char *sp = mms_web_args_get(a, "split");
    char ex[64];
    out->split = 2; /* MMS_SPLIT_TEST */
    if (sp) {
        if (!strcmp(sp, "train")) out->split = 0;
        else if (!strcmp(sp, "val")) out->split = 1;
        else if (!strcmp(sp, "test")) out->split = 2;
        else if (!strcmp(sp, "all")) out->split = -1;
        else
            return mms_web_err(e, 400, "bad_query", "split must be train, val, test or all, got '%s'",
                               excerpt(sp, strlen(sp), ex, sizeof ex));
    }
    const char *sd = mms_web_args_get(a, "seed");
    if (sd) {
        char *end;
        if (!sd[0] || sd[0] == '-' || sd[0] == ' ' || sd[0] == '+')
            return mms_web_err(e, 400, "bad_query", "seed must be an unsigned integer");
        unsigned long long x = strtoull(sd, &end, 10);
        if (*end) return mms_web_err(e, 400, "bad_query", "seed must be an unsigned integer");
        out->seed = x;
        out->has_seed = 1;
    }
    return 0;
}

int mms_web_tags_parse(const mms_web_args_t *a, mms_web_tags_t *out, mms_web_err_t *e) {
    static const char *const keys[] = {"prefix", "limit", "token", NULL};
    memset(out, 0, sizeof *out);
    int s = mms_web_args_only(a, keys, e);
    if (s) return s;
    long lim;
    if ((s = mms_web_args_int(a, "limit", 1, MMS_WEB_TAGS_LIMIT_MAX, 20, &lim, e))) return s;
    out->limit = (int)lim;
    const char *p = mms_web_args_get(a, "prefix");
    if (p) snprintf(out->prefix, sizeof out->prefix, "%s", p);
    return 0;
}

int mms_web_prefix_match(const char *tag, const char *prefix) {
    for (; *prefix; prefix++, tag++) {
        unsigned char a = (unsigned char)*tag, b = (unsigned char)*prefix;
        if (!a) return 0;
        if (a >= 'A' && a <= 'Z') a = (unsigned char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z') b = (unsigned char)(b - 'A' + 'a');
        if (a != b) return 0;
    }
    return 1;
}

/* ---- POST /api/search ----------------------------------------------------------- */

void mms_web_search_free(mms_web_search_t *s) {
    if (!s) return;
    json_decref(s->json_);
    memset(s, 0, sizeof *s);
}

/* A list of keywords: an array of non-empty strings (<= MMS_WEB_MAX_TAG bytes),
 * at most MMS_WEB_MAX_KEYWORDS, exact duplicates dropped. */
static int parse_tag_list(json_t *v, const char *field, const char **dst, int *n, mms_web_err_t *e) {
    *n = 0;
    if (json_is_null(v)) return 0;
    if (!json_is_array(v))
        return mms_web_err(e, 400, "bad_field", "%s must be an array of strings", field);
    if (json_array_size(v) > MMS_WEB_MAX_KEYWORDS)
        return mms_web_err(e, 400, "bad_field", "%s has %zu entries; at most %d", field,
                           json_array_size(v), MMS_WEB_MAX_KEYWORDS);
    size_t i;
    json_t *t;
    json_array_foreach(v, i, t) {
        if (!json_is_string(t))
            return mms_web_err(e, 400, "bad_field", "%s[%zu] must be a string", field, i);
        const char *s = json_string_value(t);
        size_t len = json_string_length(t);
        if (len == 0 || len > MMS_WEB_MAX_TAG || strlen(s) != len)
            return mms_web_err(e, 400, "bad_field", "%s[%zu] must be 1..%d bytes without NUL",
                               field, i, MMS_WEB_MAX_TAG);
        int dup = 0;
        for (int j = 0; j < *n && !dup; j++) dup = !strcmp(dst[j], s);
        if (!dup) dst[(*n)++] = s;
    }
    return 0;
}

static int json_int_in(json_t *v, const char *field, long lo, long hi, int *out, mms_web_err_t *e) {
    if (json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return mms_web_err(e, 400, "bad_field", "%s must be an integer in %ld..%ld", field, lo, hi);
    *out = (int)json_integer_value(v);
    return 0;
}

static int json_name_in(json_t *v, const char *field, const char *const *names, int nn, int *out,
                        mms_web_err_t *e) {
    if (json_is_null(v)) return 0;
    for (int i = 0; json_is_string(v) && i < nn; i++)
        if (!strcmp(json_string_value(v), names[i])) {
            *out = i;
            return 0;
        }
    return mms_web_err(e, 400, "bad_field", "%s must be one of %s%s%s%s%s", field, names[0],
                       nn > 1 ? ", " : "", nn > 1 ? names[1] : "", nn > 2 ? ", " : "",
                       nn > 2 ? names[2] : "");
}

static int search_parse(json_t *root, mms_web_search_t *out, mms_web_err_t *e) {
    static const char *const concept_names[] = {"tags", "node"};
    static const char *const connect_names[] = {"image", "tags", "both"};
    if (!json_is_object(root))
        return mms_web_err(e, 400, "bad_json", "the body must be a JSON object");
    const char *key;
    json_t *v;
    char ex[64];
    int s;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "id")) {
            if (json_is_null(v)) continue;
            if (!json_is_string(v) ||
                !mms_web_id_valid(json_string_value(v), json_string_length(v)) ||
                strlen(json_string_value(v)) != json_string_length(v))
                return mms_web_err(e, 400, "bad_id", "id must be a catalog image id (1..%d bytes, "
                                                    "no '/', no control bytes, no leading '.')",
                                   MMS_WEB_MAX_ID);
            snprintf(out->id, sizeof out->id, "%s", json_string_value(v));
        } else if (!strcmp(key, "upload")) {
            if (json_is_null(v)) continue;
            const char *h = json_is_string(v) ? json_string_value(v) : NULL;
            int ok = h && json_string_length(v) == MMS_WEB_HANDLE_LEN;
            for (int i = 0; ok && i < MMS_WEB_HANDLE_LEN; i++)
                ok = (h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f');
            if (!ok)
                return mms_web_err(e, 400, "bad_field",
                                   "upload must be the %d-hex-digit handle /api/upload returned",
                                   MMS_WEB_HANDLE_LEN);
            memcpy(out->upload, h, MMS_WEB_HANDLE_LEN);
            out->upload[MMS_WEB_HANDLE_LEN] = '\0';
        } else if (!strcmp(key, "tags")) {
            if ((s = parse_tag_list(v, "tags", out->tags, &out->ntags, e))) return s;
        } else if (!strcmp(key, "negative_tags")) {
            if ((s = parse_tag_list(v, "negative_tags", out->negative_tags, &out->nnegative, e)))
                return s;
        } else if (!strcmp(key, "visual")) {
            if (json_is_null(v)) continue;
            double x = json_is_number(v) ? json_number_value(v) : NAN;
            if (!(x >= 0.0 && x <= 1.0))
                return mms_web_err(e, 400, "bad_field", "visual must be a number in [0, 1]");
            out->visual = x;
            out->visual_given = 1;
        } else if (!strcmp(key, "k")) {
            if ((s = json_int_in(v, "k", 1, MMS_WEB_K_MAX, &out->k, e))) return s;
        } else if (!strcmp(key, "tag_k")) {
            if ((s = json_int_in(v, "tag_k", 1, MMS_WEB_TAG_K_MAX, &out->tag_k, e))) return s;
        } else if (!strcmp(key, "predict_tags")) {
            if (json_is_null(v)) continue;
            if (!json_is_boolean(v))
                return mms_web_err(e, 400, "bad_field", "predict_tags must be true or false");
            out->predict_tags = json_is_true(v);
        } else if (!strcmp(key, "concept")) {
            if ((s = json_name_in(v, "concept", concept_names, 2, &out->concept, e))) return s;
        } else if (!strcmp(key, "connect")) {
            if ((s = json_name_in(v, "connect", connect_names, 3, &out->connect, e))) return s;
        } else if (!strcmp(key, "seq")) {
            if (json_is_null(v)) continue;
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > ((json_int_t)1 << 53))
                return mms_web_err(e, 400, "bad_field", "seq must be an integer in 0..2^53");
            out->seq = (int64_t)json_integer_value(v);
        } else {
            return mms_web_err(e, 400, "unknown_field",
                               "unknown field '%s' (known: id, upload, tags, negative_tags, visual, "
                               "k, tag_k, predict_tags, concept, connect, seq)",
                               excerpt(key, strlen(key), ex, sizeof ex));
        }
    }
    if (out->id[0] && out->upload[0])
        return mms_web_err(e, 400, "bad_field", "give id or upload, not both");
    if (!out->id[0] && !out->upload[0] && out->ntags == 0)
        return mms_web_err(e, 400, "no_input",
                           "nothing to search with: give a query image (id or upload) or a "
                           "keyword (negative keywords alone cannot rank)");
    if (out->predict_tags < 0) out->predict_tags = out->id[0] || out->upload[0];
    return 0;
}

int mms_web_search_parse(const char *body, size_t len, mms_web_search_t *out, mms_web_err_t *e) {
    memset(out, 0, sizeof *out);
    if (len > MMS_WEB_MAX_JSON_BODY)
        return mms_web_err(e, 413, "too_large", "the JSON body is %zu bytes; at most %d", len,
                           MMS_WEB_MAX_JSON_BODY);
    json_error_t je;
    json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return mms_web_err(e, 400, "bad_json", "the body is not valid JSON: %s (line %d, column %d)",
                           je.text, je.line, je.column);
    out->json_ = root;
    out->k = MMS_WEB_K_DEFAULT;
    out->tag_k = MMS_WEB_TAG_K_DEFAULT;
    out->predict_tags = -1;
    out->concept = 0;
    out->connect = 0;
    int s = search_parse(root, out, e);
    if (s) mms_web_search_free(out);
    return s;
}

/* ---- credentials and addresses ----------------------------------------------------- */

int mms_web_token_equal(const char *a, size_t alen, const char *b, size_t blen) {
    /* every byte of the secret b is compared whatever a holds; a's length only
     * decides which bytes are read, never how many iterations run */
    volatile unsigned char d = (unsigned char)(alen != blen);
    for (size_t i = 0; i < blen; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : (unsigned char)~(unsigned char)b[i];
        d |= (unsigned char)(x ^ (unsigned char)b[i]);
    }
    return blen > 0 && d == 0;
}

const char *mms_web_bearer(const char *hdr, size_t *len) {
    if (!hdr) return NULL;
    while (*hdr == ' ') hdr++;
    if (strncasecmp(hdr, "Bearer ", 7)) return NULL;
    const char *t = hdr + 7;
    while (*t == ' ') t++;
    size_t n = strlen(t);
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t')) n--;
    if (n == 0) return NULL;
    *len = n;
    return t;
}

const char *mms_web_cookie(const char *hdr, const char *name, size_t *len) {
    if (!hdr) return NULL;
    size_t nl = strlen(name);
    const char *p = hdr;
    while (*p) {
        while (*p == ' ' || *p == ';' || *p == '\t') p++;
        const char *end = strchr(p, ';');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        if (plen > nl && !memcmp(p, name, nl) && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t vl = plen - nl - 1;
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
            if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                v++;
                vl -= 2;
            }
            *len = vl;
            return v;
        }
        p += plen;
    }
    return NULL;
}

int mms_web_is_loopback(const char *host) {
    if (!host) return 0;
    if (!strcasecmp(host, "localhost")) return 1;
    char h[64];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof h) return 0;
    memcpy(h, host, n);
    h[n] = '\0';
    unsigned char a4[4];
    if (inet_pton(AF_INET, h, a4) == 1) return a4[0] == 127;
    unsigned char a6[16];
    if (inet_pton(AF_INET6, h, a6) == 1) {
        static const unsigned char lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return !memcmp(a6, lo, 16) || (!memcmp(a6, mapped, 12) && a6[12] == 127);
    }
    return 0;
}

int mms_web_host_header_ok(const char *host_header) {
    mms_addr_t a; /* untrusted: the strict form, and quiet */
    if (!host_header || mms_addr_parse_ex(host_header, "Host header", 0, 80,
                                          MMS_ADDR_STRICT | MMS_ADDR_QUIET, &a) != MMS_OK)
        return 0;
    return mms_web_is_loopback(a.host);
}

/* ---- why this result ------------------------------------------------------------------- */

double mms_web_cosine(const float *a, const float *b, int d) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < d; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (!(aa > 0) || !(bb > 0) || !isfinite(ab) || !isfinite(aa) || !isfinite(bb)) return NAN;
    double c = ab / (sqrt(aa) * sqrt(bb));
    return c > 1 ? 1 : c < -1 ? -1 : c;
}

json_t *mms_web_shared(const char *const *have, int nhave, const char *const *want, int nwant) {
    json_t *a = json_array();
    for (int i = 0; i < nhave; i++)
        for (int j = 0; j < nwant; j++)
            if (!strcmp(have[i], want[j])) {
                json_array_append_new(a, json_string(have[i]));
                break;
            }
    return a;
}

json_t *mms_web_unknown_keyword(const char *w) {
    static const char pre[] = "unknown keyword '";
    size_t pl = sizeof pre - 1, n = w ? strlen(w) : 0;
    if (n < pl + 2 || memcmp(w, pre, pl) || w[n - 1] != '\'') return NULL;
    return json_stringn(w + pl, n - pl - 1);
}
