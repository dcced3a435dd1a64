/* fuzz_web_request.c: the request parsing of `mmsage web` (coordinator/webapi.c)
 * on arbitrary bytes: routing and image ids (raw paths with %-escapes), query
 * strings and the /api/random and /api/tags parameters, the JSON body of
 * /api/search, credentials (Authorization, Cookie, Host) and the warning
 * parser. The first byte picks the parser, the rest is its input. Nothing may
 * crash or read out of bounds, every refusal is a 4xx with a code and a
 * message that formats as JSON, and what is accepted satisfies the documented
 * invariants (an accepted image id is never a path, limits hold). */
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mms_addr.h"
#include "webapi.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

static void check_refusal(int st, const mms_web_err_t *e) {
    CHECK(st >= 400 && st <= 499 && e->status == st && e->code && e->code[0]);
    CHECK(memchr(e->message, 0, sizeof e->message));
    json_t *o = mms_web_error_json(e->status, e->code, e->message);
    char *s = json_dumps(o, JSON_COMPACT);
    CHECK(s);
    free(s);
    json_decref(o);
}

static void fuzz_route(const char *d, size_t n) {
    /* "METHOD\nPATH" */
    const char *nl = memchr(d, '\n', n);
    char method[16] = "GET";
    const char *path = d;
    size_t plen = n;
    if (nl) {
        size_t ml = (size_t)(nl - d) < sizeof method - 1 ? (size_t)(nl - d) : sizeof method - 1;
        memcpy(method, d, ml);
        method[ml] = '\0';
        if (memchr(method, 0, ml)) method[0] = '\0';
        path = nl + 1;
        plen = n - (size_t)(nl + 1 - d);
    }
    mms_web_route_t r;
    mms_web_err_t e;
    int st = mms_web_route(method, path, plen, &r, &e);
    if (st) {
        check_refusal(st, &e);
        if (st == 405) CHECK(r.allow);
        return;
    }
    CHECK(r.kind >= MMS_WEB_R_STATIC && r.kind <= MMS_WEB_R_THUMB);
    if (r.kind == MMS_WEB_R_STATIC) CHECK(r.static_name && !strchr(r.static_name, '/'));
    if (r.kind == MMS_WEB_R_IMG || r.kind == MMS_WEB_R_THUMB) {
        size_t il = strlen(r.id);
        CHECK(il >= 1 && il <= MMS_WEB_MAX_ID && mms_web_id_valid(r.id, il));
        CHECK(!strchr(r.id, '/') && !strchr(r.id, '\\') && r.id[0] != '.');
    }
}

static void fuzz_args(const char *d, size_t n) {
    mms_web_args_t *a = malloc(sizeof *a);
    if (!a) return;
    mms_web_err_t e;
    int st = mms_web_args_parse(d, n, a, &e);
    if (st) {
        check_refusal(st, &e);
        free(a);
        return;
    }
    CHECK(a->n >= 0 && a->n <= MMS_WEB_MAX_ARGS);
    for (int i = 0; i < a->n; i++) {
        CHECK(memchr(a->key[i], 0, sizeof a->key[i]) && memchr(a->val[i], 0, sizeof a->val[i]));
        for (int j = 0; j < i; j++) CHECK(strcmp(a->key[i], a->key[j]));
        CHECK(mms_web_args_get(a, a->key[i]) == a->val[i]);
    }
    mms_web_random_t rp;
    st = mms_web_random_parse(a, &rp, &e);
    if (st) check_refusal(st, &e);
    else CHECK(rp.n >= 1 && rp.n <= MMS_WEB_RANDOM_MAX && rp.split >= -1 && rp.split <= 2);
    mms_web_tags_t tp;
    st = mms_web_tags_parse(a, &tp, &e);
    if (st) check_refusal(st, &e);
    else {
        CHECK(tp.limit >= 1 && tp.limit <= MMS_WEB_TAGS_LIMIT_MAX);
        CHECK(mms_web_prefix_match(tp.prefix, tp.prefix));
    }
    free(a);
}

static void fuzz_search(const char *d, size_t n) {
    mms_web_search_t s;
    mms_web_err_t e;
    int st = mms_web_search_parse(d, n, &s, &e);
    if (st) {
        check_refusal(st, &e);
        CHECK(!s.json_ && s.ntags == 0);
        return;
    }
    CHECK(s.id[0] || s.upload[0] || s.ntags > 0);
    CHECK(!(s.id[0] && s.upload[0]));
    if (s.id[0]) CHECK(mms_web_id_valid(s.id, strlen(s.id)));
    if (s.upload[0]) CHECK(strlen(s.upload) == MMS_WEB_HANDLE_LEN);
    CHECK(s.k >= 1 && s.k <= MMS_WEB_K_MAX && s.tag_k >= 1 && s.tag_k <= MMS_WEB_TAG_K_MAX);
    CHECK(!s.visual_given || (s.visual >= 0 && s.visual <= 1));
    CHECK(s.concept >= 0 && s.concept <= 1 && s.connect >= 0 && s.connect <= 2);
    CHECK(s.predict_tags == 0 || s.predict_tags == 1);
    CHECK(s.ntags <= MMS_WEB_MAX_KEYWORDS && s.nnegative <= MMS_WEB_MAX_KEYWORDS && s.seq >= 0);
    for (int i = 0; i < s.ntags; i++) {
        size_t l = strlen(s.tags[i]);
        CHECK(l >= 1 && l <= MMS_WEB_MAX_TAG);
        for (int j = 0; j < i; j++) CHECK(strcmp(s.tags[i], s.tags[j]));
    }
    for (int i = 0; i < s.nnegative; i++) CHECK(s.negative_tags[i][0]);
    /* the "why" helpers on what was parsed */
    json_t *sh = mms_web_shared(s.tags, s.ntags, s.tags, s.ntags);
    CHECK(json_array_size(sh) == (size_t)s.ntags);
    json_decref(sh);
    mms_web_search_free(&s);
    CHECK(!s.json_);
}

static void fuzz_auth(const char *d, size_t n) {
    char *z = malloc(n + 1);
    if (!z) return;
    memcpy(z, d, n);
    z[n] = '\0';
    size_t len = 0;
    const char *t = mms_web_bearer(z, &len);
    if (t) CHECK(t >= z && t + len <= z + strlen(z) && len > 0);
    t = mms_web_cookie(z, MMS_WEB_COOKIE, &len);
    if (t) CHECK(t >= z && t + len <= z + strlen(z));
    size_t zl = strlen(z);
    CHECK(zl == 0 || mms_web_token_equal(z, zl, z, zl));
    if (zl > 1) CHECK(!mms_web_token_equal(z, zl - 1, z, zl) && !mms_web_token_equal(z, zl, z, zl - 1));
    (void)mms_web_is_loopback(z);
    (void)mms_web_host_header_ok(z);
    for (unsigned f = 0; f < 2; f++) { /* the web's strict form, then serve's and query's */
        mms_addr_t a;
        unsigned flags = MMS_ADDR_QUIET | (f == 0 ? MMS_ADDR_STRICT : 0);
        if (mms_addr_parse_ex(z, "fuzz", 0, 80, flags, &a) == MMS_OK)
            CHECK(a.port >= 0 && a.port <= 65535 && memchr(a.host, 0, sizeof a.host) &&
                  (f == 1 || a.host[0]));
    }
    json_t *u = mms_web_unknown_keyword(z);
    json_decref(u);
    free(z);
}

static void fuzz_unescape(const char *d, size_t n) {
    char out[512];
    long l = mms_web_unescape(d, n, n & 1, out, sizeof out);
    if (l >= 0) {
        CHECK((size_t)l <= n && (size_t)l < sizeof out && out[l] == '\0' && strlen(out) == (size_t)l);
        (void)mms_web_id_valid(out, (size_t)l);
    }
    float a[8], b[8];
    for (int i = 0; i < 8; i++) {
        a[i] = i < (int)n ? (float)(signed char)d[i] : 0.0f;
        b[i] = i + 8 < (int)n ? (float)(signed char)d[i + 8] : 1.0f;
    }
    double c = mms_web_cosine(a, b, 8);
    CHECK(isnan(c) || (c >= -1 && c <= 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const char *d = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0: fuzz_route(d, n); break;
    case 1: fuzz_args(d, n); break;
    case 2: fuzz_search(d, n); break;
    case 3: fuzz_auth(d, n); break;
    default: fuzz_unescape(d, n); break;
    }
    return 0;
}
