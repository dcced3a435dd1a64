/* webapi.h: the pure parts of `mmsage web` (docs/web.md): routing, percent
 * decoding, query strings, image-id validation, the JSON body of a search,
 * credentials, loopback checks and the "why this result" arithmetic.
 *
 * Nothing here touches a socket, a file or libmicrohttpd: every function takes
 * bytes and returns a value, so the fuzz target tests/fuzz/fuzz_web_request.c
 * can call them on arbitrary input and the HTTP layer (webserver.c) stays a
 * thin shell around them. Parsers never read outside the bytes they are given
 * (lengths are explicit, NUL is not trusted), never log, and report a refusal
 * as an HTTP status (4xx) with a stable short code and a message a person can
 * act on, in an mms_web_err_t.
 *
 * Not here: anything that needs the catalog, the query server or the clock.
 */
#ifndef MMS_WEBAPI_H
#define MMS_WEBAPI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Limits of the web API (docs/web.md, "Limits"). */
#define MMS_WEB_MAX_ID 256           /* bytes of a catalog image id in a URL or body */
#define MMS_WEB_MAX_KEYWORDS 64      /* keywords (and separately negative keywords) per search */
#define MMS_WEB_MAX_TAG 1024         /* bytes of one keyword (the protocol's MMS_PROTO_MAX_STR) */
#define MMS_WEB_K_MAX 200            /* results per search */
#define MMS_WEB_K_DEFAULT 24
#define MMS_WEB_TAG_K_MAX 50         /* predicted tags per search */
#define MMS_WEB_TAG_K_DEFAULT 8
#define MMS_WEB_RANDOM_MAX 200       /* ids per /api/random */
#define MMS_WEB_TAGS_LIMIT_MAX 100   /* completions per /api/tags */
#define MMS_WEB_MAX_JSON_BODY 65536  /* bytes of a JSON request body */
#define MMS_WEB_MAX_ARGS 16          /* query-string parameters */
#define MMS_WEB_MAX_ARG 1024         /* bytes of one decoded query-string key or value */
#define MMS_WEB_HANDLE_LEN 32        /* hex digits of an upload handle */
#define MMS_WEB_MIN_TOKEN 16         /* bytes of an auth token */
#define MMS_WEB_COOKIE "mms_token"   /* the cookie a ?token= login sets */

/* A refusal: HTTP status (400..499), a stable code ("bad_json", "bad_id", ...)
 * that clients match on, and a message naming the field and value at fault. */
typedef struct {
    int status;
    const char *code; /* static string */
    char message[256];
} mms_web_err_t;

/* Set e (status, code, printf-style message) and return status. */
int mms_web_err(mms_web_err_t *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The error body every refusal carries:
 * {"ok": false, "error": {"status": S, "code": C, "message": M}}. New reference. */
json_t *mms_web_error_json(int status, const char *code, const char *message);

/* ---- routing --------------------------------------------------------------- */

typedef enum {
    MMS_WEB_R_STATIC = 1, /* a file of the page (static_name, content_type) */
    MMS_WEB_R_INFO,       /* GET  /api/info */
    MMS_WEB_R_RANDOM,     /* GET  /api/random */
    MMS_WEB_R_TAGS,       /* GET  /api/tags */
    MMS_WEB_R_SEARCH,     /* POST /api/search */
    MMS_WEB_R_UPLOAD,     /* POST /api/upload */
    MMS_WEB_R_IMG,        /* GET  /img/ID */
    MMS_WEB_R_THUMB       /* GET  /thumb/ID */
} mms_web_route_kind;

typedef struct {
    int kind;                      /* mms_web_route_kind */
    int is_post;                   /* the route takes POST (else GET/HEAD) */
    const char *static_name;       /* MMS_WEB_R_STATIC: a file name of the whitelist */
    const char *content_type;      /* MMS_WEB_R_STATIC */
    char id[MMS_WEB_MAX_ID + 1];   /* IMG/THUMB: the decoded, validated id */
    const char *allow;             /* 405: the Allow header value */
} mms_web_route_t;

/* Route method + raw path (path[0..len), still percent-encoded, without the
 * query string). Returns 0 and fills *out, or an HTTP status with *e set:
 * 404 unknown route, 405 wrong method (out->allow set), 400 a bad id
 * (traversal, control bytes, bad escapes) or a path over 4096 bytes. Static
 * files come from a fixed whitelist (index.html, app.js, style.css, favicon.svg),
 * so no path from a request ever reaches the file system. */
int mms_web_route(const char *method, const char *path, size_t len, mms_web_route_t *out,
                  mms_web_err_t *e);

/* Percent-decode s[0..len) into out (cap bytes, NUL-terminated); '+' becomes a
 * space when plus_space. Refused (returns -1): a bad or truncated escape, %00
 * or a raw NUL, a result that does not fit. Returns the decoded length. */
long mms_web_unescape(const char *s, size_t len, int plus_space, char *out, size_t cap);

/* 1 when id[0..len) may name a catalog image in a URL or a body: 1..MMS_WEB_MAX_ID
 * bytes, valid UTF-8, no control bytes, no '/' or '\\', not "." or ".." and
 * not starting with '.'. (An id that passes is then looked up in the catalog;
 * it is never used as a path.) */
int mms_web_id_valid(const char *id, size_t len);

/* ---- query strings --------------------------------------------------------- */

typedef struct {
    int n;
    char key[MMS_WEB_MAX_ARGS][64];
    char val[MMS_WEB_MAX_ARGS][MMS_WEB_MAX_ARG + 1];
} mms_web_args_t;

/* Parse a raw query string qs[0..len) ("a=1&b=x%20y", no leading '?'). Empty
 * pairs are skipped; a key without '=' has the value "". Refused (400): more
 * than MMS_WEB_MAX_ARGS pairs, a key over 63 bytes, a value over
 * MMS_WEB_MAX_ARG bytes, a bad escape, a key given twice. */
int mms_web_args_parse(const char *qs, size_t len, mms_web_args_t *out, mms_web_err_t *e);

/* The value of key, or NULL. */
const char *mms_web_args_get(const mms_web_args_t *a, const char *key);

/* Parse args[key] as an integer in [lo, hi] (absent: *v = def). 400 otherwise. */
int mms_web_args_int(const mms_web_args_t *a, const char *key, long lo, long hi, long def,
                     long *v, mms_web_err_t *e);

/* Only these keys may appear (a NULL-terminated list); 400 names the first other. */
int mms_web_args_only(const mms_web_args_t *a, const char *const *keys, mms_web_err_t *e);

/* GET /api/random: n (1..MMS_WEB_RANDOM_MAX, default 24), split (train, val,
 * test or all; default test) as an mms_split code or -1 for all, seed (an
 * unsigned integer; has_seed 0 when absent). */
typedef struct {
    int n;
    int split;
    int has_seed;
    uint64_t seed;
} mms_web_random_t;
int mms_web_random_parse(const mms_web_args_t *a, mms_web_random_t *out, mms_web_err_t *e);

/* GET /api/tags: prefix (case-insensitive, may be empty), limit (1..100, default 20). */
typedef struct {
    char prefix[MMS_WEB_MAX_ARG + 1];
    int limit;
} mms_web_tags_t;
int mms_web_tags_parse(const mms_web_args_t *a, mms_web_tags_t *out, mms_web_err_t *e);

/* 1 when tag starts with prefix, ASCII case-insensitively. */
int mms_web_prefix_match(const char *tag, const char *prefix);

/* ---- POST /api/search -------------------------------------------------------- */

/* A search as the page asks for it (docs/web.md): a query image by catalog id
 * or by upload handle (at most one), keywords, negative keywords, the slider. */
typedef struct {
    char id[MMS_WEB_MAX_ID + 1]; /* "" = no catalog image */
    char upload[MMS_WEB_HANDLE_LEN + 1]; /* "" = no uploaded image */
    const char *tags[MMS_WEB_MAX_KEYWORDS]; /* keywords, duplicates removed, request order */
    int ntags;
    const char *negative_tags[MMS_WEB_MAX_KEYWORDS];
    int nnegative;
    double visual;      /* w_visual in [0, 1] when visual_given */
    int visual_given;
    int k;              /* 1..MMS_WEB_K_MAX */
    int tag_k;          /* 1..MMS_WEB_TAG_K_MAX */
    int predict_tags;   /* 1 = ask for predicted tags (default: when there is an image) */
    int concept;        /* mms_concept numbering: 0 tags, 1 node */
    int connect;        /* mms_connect numbering: 0 image, 1 tags, 2 both */
    int64_t seq;        /* the client's request number, echoed (0 when absent) */
    json_t *json_;      /* owns the strings tags/negative_tags point into */
} mms_web_search_t;

/* Parse a JSON body body[0..len) (not NUL-terminated). Returns 0 and fills
 * *out (free with mms_web_search_free), or a 4xx with *e set and *out empty:
 * 413 a body over MMS_WEB_MAX_JSON_BODY, 400 anything else (not JSON, not an
 * object, an unknown field, a wrong type, out of range, both id and upload,
 * nothing to search with). Keys: id, upload, tags, negative_tags, visual, k,
 * tag_k, predict_tags, concept ("tags"|"node"), connect ("image"|"tags"|
 * "both"), seq. */
int mms_web_search_parse(const char *body, size_t len, mms_web_search_t *out, mms_web_err_t *e);
void mms_web_search_free(mms_web_search_t *s);

/* ---- credentials and addresses ---------------------------------------------------- */

/* 1 when a[0..alen) equals b[0..blen). Runs in time that depends on blen (the
 * secret's length) only, not on where the first difference is. */
int mms_web_token_equal(const char *a, size_t alen, const char *b, size_t blen);

/* The token of "Bearer <tok>" (scheme case-insensitive) as a pointer into hdr
 * and its length, or NULL. */
const char *mms_web_bearer(const char *hdr, size_t *len);

/* The value of cookie name in a Cookie header ("a=1; b=2") as a pointer into
 * hdr and its length, or NULL. */
const char *mms_web_cookie(const char *hdr, const char *name, size_t *len);

/* 1 for a loopback host: "localhost", 127.0.0.0/8 in dotted decimal, "::1" or
 * "[::1]". Anything else (0.0.0.0, a name, another address) is 0. */
int mms_web_is_loopback(const char *host);

/* 1 when a Host header names a loopback host (with or without a port; parsed
 * by mms_addr_parse_ex, strict and quiet): the page's defence against DNS
 * rebinding when it runs without a token. */
int mms_web_host_header_ok(const char *host_header);

/* ---- why this result ------------------------------------------------------------------ */

/* Cosine of a[0..d) and b[0..d) (accumulated in double); NaN when either is
 * zero or not finite (reported as JSON null). */
double mms_web_cosine(const float *a, const float *b, int d);

/* A JSON array of the strings of have[0..nhave) that are in want[0..nwant),
 * in have's order (exact, case-sensitive comparison like the engine's). */
json_t *mms_web_shared(const char *const *have, int nhave, const char *const *want, int nwant);

/* The keyword of a server warning "unknown keyword 'X'" as a new JSON string,
 * or NULL when w is another warning. */
json_t *mms_web_unknown_keyword(const char *w);

#endif
