/* protocol_response.c: responses (protocol.h, "responses"): the helpers a
 * handler builds one with (results, predicted tags, warnings, timings, info,
 * an error), the encoder the server sends with, and the decoder the client
 * runs on bytes from the network (types checked, unknown keys ignored).
 *
 * Does not: decide what a response holds (the engine), or frame and unpack
 * bytes itself (protocol.c).
 */
#include "protocol.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_array.h"
#include "protocol_internal.h"

/* ---- building ---------------------------------------------------------- */

void mms_response_init(mms_response_t *r, const mms_request_t *req) {
    memset(r, 0, sizeof *r);
    r->ok = 1;
    if (req) {
        r->id = req->id;
        r->op = req->op;
    }
}

void mms_response_free(mms_response_t *r) {
    if (!r) return;
    free(r->results);
    free(r->tags);
    free(r->warnings);
    free(r->timing);
    free(r->info);
    proto_arena_destroy(&r->arena_);
    memset(r, 0, sizeof *r);
}

/* Grow a malloc'd array *arr of *cap items of size sz to hold need items
 * (mms_grow; the response keeps its counts and capacities as int). */
static mms_status grow(void *arr, int *cap, int need, size_t sz) {
    if (need <= *cap) return MMS_OK;
    MMS_CHECK(need > 0 && need <= INT_MAX / 2, MMS_ERR_ARG, "response array of %d items", need);
    size_t c = (size_t)*cap; /* < 2 * need <= INT_MAX after the growth */
    MMS_CALL(mms_grow(arr, sz, (size_t)need, &c));
    *cap = (int)c;
    return MMS_OK;
}

mms_status mms_response_reserve(mms_response_t *r, int nresults, int ntags) {
    if (nresults > 0) MMS_CALL(grow(&r->results, &r->results_cap, nresults, sizeof *r->results));
    if (ntags > 0) MMS_CALL(grow(&r->tags, &r->tags_cap, ntags, sizeof *r->tags));
    return MMS_OK;
}

const char *mms_response_strdup(mms_response_t *r, const char *s) {
    return proto_arena_strndup(&r->arena_, s ? s : "", s ? strlen(s) : 0);
}

static mms_status dup_into(mms_response_t *r, const char *s, const char **out) {
    *out = mms_response_strdup(r, s);
    MMS_CHECK(*out != NULL, MMS_ERR_NOMEM, "out of memory building a response");
    return MMS_OK;
}

mms_status mms_response_add_result(mms_response_t *r, const char *id, float score,
                                   const char *const *tags, int ntags, const char *path) {
    MMS_CALL(grow(&r->results, &r->results_cap, r->nresults + 1, sizeof *r->results));
    mms_result_t *x = &r->results[r->nresults];
    memset(x, 0, sizeof *x);
    MMS_CALL(dup_into(r, id, &x->id));
    x->score = score;
    if (path) MMS_CALL(dup_into(r, path, &x->path));
    if (ntags > 0) {
        const char **t =
            proto_arena_alloc(&r->arena_, (size_t)ntags * sizeof *t, sizeof(void *), 0);
        MMS_CHECK(t != NULL, MMS_ERR_NOMEM, "out of memory building a response");
        for (int i = 0; i < ntags; i++) MMS_CALL(dup_into(r, tags[i], &t[i]));
        x->tags = t;
        x->ntags = ntags;
    }
    r->nresults++;
    return MMS_OK;
}

mms_status mms_response_add_tag(mms_response_t *r, const char *tag, float score) {
    MMS_CALL(grow(&r->tags, &r->tags_cap, r->ntags + 1, sizeof *r->tags));
    MMS_CALL(dup_into(r, tag, &r->tags[r->ntags].tag));
    r->tags[r->ntags].score = score;
    r->ntags++;
    return MMS_OK;
}

mms_status mms_response_add_warning(mms_response_t *r, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    MMS_CALL(grow(&r->warnings, &r->warnings_cap, r->nwarnings + 1, sizeof *r->warnings));
    MMS_CALL(dup_into(r, buf, &r->warnings[r->nwarnings]));
    r->nwarnings++;
    return MMS_OK;
}

mms_status mms_response_add_timing(mms_response_t *r, const char *stage, uint64_t us) {
    MMS_CALL(grow(&r->timing, &r->timing_cap, r->ntiming + 1, sizeof *r->timing));
    mms_timing_t *t = &r->timing[r->ntiming++];
    snprintf(t->stage, sizeof t->stage, "%s", stage ? stage : "");
    t->us = us;
    return MMS_OK;
}

static mms_status add_info(mms_response_t *r, const char *key, mms_info_t **out) {
    MMS_CALL(grow(&r->info, &r->info_cap, r->ninfo + 1, sizeof *r->info));
    mms_info_t *e = &r->info[r->ninfo];
    memset(e, 0, sizeof *e);
    MMS_CALL(dup_into(r, key, &e->key));
    r->ninfo++;
    *out = e;
    return MMS_OK;
}

mms_status mms_response_add_info_str(mms_response_t *r, const char *key, const char *value) {
    mms_info_t *e;
    MMS_CALL(add_info(r, key, &e));
    e->type = MMS_INFO_STR;
    e->s = mms_response_strdup(r, value);
    if (!e->s) {
        r->ninfo--;
        MMS_CHECK(0, MMS_ERR_NOMEM, "out of memory building a response");
    }
    return MMS_OK;
}

mms_status mms_response_add_info_int(mms_response_t *r, const char *key, int64_t value) {
    mms_info_t *e;
    MMS_CALL(add_info(r, key, &e));
    e->type = MMS_INFO_INT;
    e->i = value;
    return MMS_OK;
}

mms_status mms_response_add_info_real(mms_response_t *r, const char *key, double value) {
    mms_info_t *e;
    MMS_CALL(add_info(r, key, &e));
    e->type = MMS_INFO_REAL;
    e->r = value;
    return MMS_OK;
}

void mms_response_set_error(mms_response_t *r, int code, const char *fmt, ...) {
    r->ok = 0;
    r->error_code = code > 0 ? code : MMS_PERR_INTERNAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error_message, sizeof r->error_message, fmt, ap);
    va_end(ap);
}

/* ---- encoding ---------------------------------------------------------- */

mms_status mms_response_encode(const mms_response_t *r, msgpack_sbuffer *sb) {
    size_t start;
    MMS_CHECK(proto_frame_begin(sb, &start) == 0, MMS_ERR_NOMEM,
              "out of memory encoding a response");
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int ok = r->ok != 0;
    int send_results = ok && (r->op == MMS_OP_SEARCH || r->nresults > 0);
    int send_tags = ok && (r->op == MMS_OP_PREDICT_TAGS || r->ntags > 0);
    int send_info = ok && (r->op == MMS_OP_INFO || r->op == MMS_OP_RELOAD || r->ninfo > 0);
    uint32_t n = 2 + (uint32_t)!ok + (uint32_t)send_results + (uint32_t)send_tags +
                 (uint32_t)(r->nwarnings > 0) + (uint32_t)(r->ntiming > 0) + (uint32_t)send_info;
    int rc = msgpack_pack_map(&pk, n);
    rc |= proto_pack_cstr(&pk, "id") | msgpack_pack_uint64(&pk, r->id);
    rc |= proto_pack_cstr(&pk, "ok") | (ok ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
    if (!ok) {
        int code = r->error_code > 0 && r->error_code < MMS_PERR_COUNT ? r->error_code
                                                                      : MMS_PERR_INTERNAL;
        rc |= proto_pack_cstr(&pk, "error") | msgpack_pack_map(&pk, 3);
        rc |= proto_pack_cstr(&pk, "code") | msgpack_pack_int(&pk, code);
        rc |= proto_pack_cstr(&pk, "name") | proto_pack_cstr(&pk, mms_proto_error_name(code));
        rc |= proto_pack_cstr(&pk, "message") | proto_pack_cstr(&pk, r->error_message);
    }
    if (send_results) {
        rc |= proto_pack_cstr(&pk, "results") | msgpack_pack_array(&pk, (size_t)r->nresults);
        for (int i = 0; i < r->nresults; i++) {
            const mms_result_t *x = &r->results[i];
            rc |= msgpack_pack_map(&pk, x->path ? 4 : 3);
            rc |= proto_pack_cstr(&pk, "id") | proto_pack_cstr(&pk, x->id);
            rc |= proto_pack_cstr(&pk, "score") | msgpack_pack_float(&pk, x->score);
            int nt = x->tags ? x->ntags : 0;
            rc |= proto_pack_cstr(&pk, "tags") | msgpack_pack_array(&pk, (size_t)(nt > 0 ? nt : 0));
            for (int j = 0; j < nt; j++) rc |= proto_pack_cstr(&pk, x->tags[j]);
            if (x->path) rc |= proto_pack_cstr(&pk, "path") | proto_pack_cstr(&pk, x->path);
        }
    }
    if (send_tags) {
        rc |= proto_pack_cstr(&pk, "tags") | msgpack_pack_array(&pk, (size_t)r->ntags);
        for (int i = 0; i < r->ntags; i++)
            rc |= msgpack_pack_map(&pk, 2) | proto_pack_cstr(&pk, "tag") |
                  proto_pack_cstr(&pk, r->tags[i].tag) | proto_pack_cstr(&pk, "score") |
                  msgpack_pack_float(&pk, r->tags[i].score);
    }
    if (r->nwarnings > 0) {
        rc |= proto_pack_cstr(&pk, "warnings") | msgpack_pack_array(&pk, (size_t)r->nwarnings);
        for (int i = 0; i < r->nwarnings; i++) rc |= proto_pack_cstr(&pk, r->warnings[i]);
    }
    if (r->ntiming > 0) {
        rc |= proto_pack_cstr(&pk, "timing_us") | msgpack_pack_map(&pk, (size_t)r->ntiming);
        for (int i = 0; i < r->ntiming; i++)
            rc |= proto_pack_cstr(&pk, r->timing[i].stage) |
                  msgpack_pack_uint64(&pk, r->timing[i].us);
    }
    if (send_info) {
        rc |= proto_pack_cstr(&pk, "info") | msgpack_pack_map(&pk, (size_t)r->ninfo);
        for (int i = 0; i < r->ninfo; i++) {
            const mms_info_t *e = &r->info[i];
            rc |= proto_pack_cstr(&pk, e->key);
            if (e->type == MMS_INFO_INT) rc |= msgpack_pack_int64(&pk, e->i);
            else if (e->type == MMS_INFO_REAL) rc |= msgpack_pack_double(&pk, e->r);
            else rc |= proto_pack_cstr(&pk, e->s);
        }
    }
    return proto_frame_end(sb, start, rc, "response");
}

/* ---- decoding (client side; the bytes come from the network too) ------ */

typedef struct {
    mms_response_t *r;
    char *err;
    size_t errlen;
} rdec_t;

static int rstr(rdec_t *d, const msgpack_object *o, const char *what, const char **out) {
    if (o->type != MSGPACK_OBJECT_STR)
        return proto_seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE,
                            "response %s must be a string, got %s", what, proto_obj_type_name(o));
    *out = proto_arena_strndup(&d->r->arena_, o->via.str.ptr, o->via.str.size);
    if (!*out) return proto_seterr(d->err, d->errlen, MMS_PERR_INTERNAL, "out of memory");
    return MMS_PERR_OK;
}

static int rnum(rdec_t *d, const msgpack_object *o, const char *what, float *out) {
    if (!proto_obj_is_number(o))
        return proto_seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE,
                            "response %s must be a number, got %s", what, proto_obj_type_name(o));
    *out = (float)proto_obj_number(o);
    return MMS_PERR_OK;
}

static int rarray(rdec_t *d, const msgpack_object *o, const char *what) {
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return proto_seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE,
                            "response '%s' must be an array, got %s", what, proto_obj_type_name(o));
    if (o->via.array.size > (uint32_t)(INT_MAX / 2))
        return proto_seterr(d->err, d->errlen, MMS_PERR_INVALID, "response '%s' is too long", what);
    return MMS_PERR_OK;
}

static int rmap(rdec_t *d, const msgpack_object *o, const char *what) {
    if (o->type != MSGPACK_OBJECT_MAP)
        return proto_seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE,
                            "response '%s' must be a map, got %s", what, proto_obj_type_name(o));
    if (o->via.map.size > (uint32_t)(INT_MAX / 2))
        return proto_seterr(d->err, d->errlen, MMS_PERR_INVALID, "response '%s' is too long", what);
    return MMS_PERR_OK;
}

static int rgrow(rdec_t *d, void *arr, int *cap, uint32_t n, size_t sz) {
    if (n == 0) return MMS_PERR_OK;
    void **p = (void **)arr;
    void *q = realloc(*p, (size_t)n * sz);
    if (!q) return proto_seterr(d->err, d->errlen, MMS_PERR_INTERNAL, "out of memory");
    *p = q;
    *cap = (int)n;
    return MMS_PERR_OK;
}

static int rdec_error(rdec_t *d, const msgpack_object *o) {
    mms_response_t *r = d->r;
    int c;
    if ((c = rmap(d, o, "error"))) return c;
    r->error_code = MMS_PERR_INTERNAL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (proto_obj_str_eq(k, "code")) {
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 == 0 ||
                v->via.u64 > INT_MAX)
                return proto_seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE,
                                    "response error code must be a positive integer");
            r->error_code = (int)v->via.u64;
        } else if (proto_obj_str_eq(k, "message")) {
            if (v->type != MSGPACK_OBJECT_STR)
                return proto_seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE,
                                    "response error message must be a string");
            size_t n = v->via.str.size < sizeof r->error_message - 1 ? v->via.str.size
                                                                     : sizeof r->error_message - 1;
            memcpy(r->error_message, v->via.str.ptr, n);
            r->error_message[n] = '\0';
        }
    }
    return MMS_PERR_OK;
}

static int rdec_results(rdec_t *d, const msgpack_object *o) {
    mms_response_t *r = d->r;
    int c;
    if ((c = rarray(d, o, "results"))) return c;
    uint32_t n = o->via.array.size;
    if ((c = rgrow(d, &r->results, &r->results_cap, n, sizeof *r->results))) return c;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *it = &o->via.array.ptr[i];
        if ((c = rmap(d, it, "results[]"))) return c;
        mms_result_t *x = &r->results[r->nresults];
        memset(x, 0, sizeof *x);
        for (uint32_t j = 0; j < it->via.map.size; j++) {
            const msgpack_object *k = &it->via.map.ptr[j].key, *v = &it->via.map.ptr[j].val;
            if (proto_obj_str_eq(k, "id")) {
                if ((c = rstr(d, v, "result id", &x->id))) return c;
            } else if (proto_obj_str_eq(k, "score")) {
                if ((c = rnum(d, v, "result score", &x->score))) return c;
            } else if (proto_obj_str_eq(k, "path")) {
                if (v->type != MSGPACK_OBJECT_NIL && (c = rstr(d, v, "result path", &x->path)))
                    return c;
            } else if (proto_obj_str_eq(k, "tags")) {
                if ((c = rarray(d, v, "result tags"))) return c;
                uint32_t nt = v->via.array.size;
                if (nt == 0) continue;
                const char **t =
                    proto_arena_alloc(&r->arena_, (size_t)nt * sizeof *t, sizeof(void *), 0);
                if (!t) return proto_seterr(d->err, d->errlen, MMS_PERR_INTERNAL, "out of memory");
                for (uint32_t m = 0; m < nt; m++)
                    if ((c = rstr(d, &v->via.array.ptr[m], "result tag", &t[m]))) return c;
                x->tags = t;
                x->ntags = (int)nt;
            }
        }
        if (!x->id)
            return proto_seterr(d->err, d->errlen, MMS_PERR_MALFORMED, "result %u has no id", i);
        r->nresults++;
    }
    return MMS_PERR_OK;
}

static int rdec_tags(rdec_t *d, const msgpack_object *o) {
    mms_response_t *r = d->r;
    int c;
    if ((c = rarray(d, o, "tags"))) return c;
    uint32_t n = o->via.array.size;
    if ((c = rgrow(d, &r->tags, &r->tags_cap, n, sizeof *r->tags))) return c;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *it = &o->via.array.ptr[i];
        if ((c = rmap(d, it, "tags[]"))) return c;
        mms_tag_score_t *x = &r->tags[r->ntags];
        memset(x, 0, sizeof *x);
        for (uint32_t j = 0; j < it->via.map.size; j++) {
            const msgpack_object *k = &it->via.map.ptr[j].key, *v = &it->via.map.ptr[j].val;
            if (proto_obj_str_eq(k, "tag")) {
                if ((c = rstr(d, v, "tag", &x->tag))) return c;
            } else if (proto_obj_str_eq(k, "score")) {
                if ((c = rnum(d, v, "tag score", &x->score))) return c;
            }
        }
        if (!x->tag)
            return proto_seterr(d->err, d->errlen, MMS_PERR_MALFORMED, "tag %u has no name", i);
        r->ntags++;
    }
    return MMS_PERR_OK;
}

static int rdec_warnings(rdec_t *d, const msgpack_object *o) {
    mms_response_t *r = d->r;
    int c;
    if ((c = rarray(d, o, "warnings"))) return c;
    uint32_t n = o->via.array.size;
    if ((c = rgrow(d, &r->warnings, &r->warnings_cap, n, sizeof *r->warnings))) return c;
    for (uint32_t i = 0; i < n; i++) {
        if ((c = rstr(d, &o->via.array.ptr[i], "warning", &r->warnings[r->nwarnings]))) return c;
        r->nwarnings++;
    }
    return MMS_PERR_OK;
}

static int rdec_timing(rdec_t *d, const msgpack_object *o) {
    mms_response_t *r = d->r;
    int c;
    if ((c = rmap(d, o, "timing_us"))) return c;
    uint32_t n = o->via.map.size;
    if ((c = rgrow(d, &r->timing, &r->timing_cap, n, sizeof *r->timing))) return c;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return proto_seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE,
                                "response timing_us must map strings to unsigned integers");
        mms_timing_t *t = &r->timing[r->ntiming++];
        size_t m = k->via.str.size < sizeof t->stage - 1 ? k->via.str.size : sizeof t->stage - 1;
        memcpy(t->stage, k->via.str.ptr, m);
        t->stage[m] = '\0';
        t->us = v->via.u64;
    }
    return MMS_PERR_OK;
}

static int rdec_info(rdec_t *d, const msgpack_object *o) {
    mms_response_t *r = d->r;
    int c;
    if ((c = rmap(d, o, "info"))) return c;
    uint32_t n = o->via.map.size;
    if ((c = rgrow(d, &r->info, &r->info_cap, n, sizeof *r->info))) return c;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR) continue;
        mms_info_t *e = &r->info[r->ninfo];
        memset(e, 0, sizeof *e);
        switch (v->type) {
        case MSGPACK_OBJECT_STR:
            e->type = MMS_INFO_STR;
            if ((c = rstr(d, v, "info value", &e->s))) return c;
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            e->type = v->via.u64 <= (uint64_t)INT64_MAX ? MMS_INFO_INT : MMS_INFO_REAL;
            e->i = (int64_t)v->via.u64;
            e->r = (double)v->via.u64;
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            e->type = MMS_INFO_INT;
            e->i = v->via.i64;
            break;
        case MSGPACK_OBJECT_BOOLEAN:
            e->type = MMS_INFO_INT;
            e->i = v->via.boolean ? 1 : 0;
            break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            e->type = MMS_INFO_REAL;
            e->r = v->via.f64;
            break;
        default: continue; /* free-form: values of other types are skipped */
        }
        if ((c = rstr(d, k, "info key", &e->key))) return c;
        r->ninfo++;
    }
    return MMS_PERR_OK;
}

static int decode_response_map(const msgpack_object_map *mp, rdec_t *d) {
    mms_response_t *r = d->r;
    int have_ok = 0, have_error = 0, c;
    for (uint32_t i = 0; i < mp->size; i++) {
        const msgpack_object *k = &mp->ptr[i].key, *v = &mp->ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            return proto_seterr(d->err, d->errlen, MMS_PERR_MALFORMED,
                                "response key %u is not a string", i);
        if (v->type == MSGPACK_OBJECT_NIL) continue;
        if (proto_obj_str_eq(k, "id")) {
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return proto_seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE,
                                    "response id must be an unsigned integer");
            r->id = v->via.u64;
        } else if (proto_obj_str_eq(k, "ok")) {
            if (v->type != MSGPACK_OBJECT_BOOLEAN)
                return proto_seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE,
                                    "response ok must be a bool");
            r->ok = v->via.boolean ? 1 : 0;
            have_ok = 1;
        } else if (proto_obj_str_eq(k, "error")) {
            if ((c = rdec_error(d, v))) return c;
            have_error = 1;
        } else if (proto_obj_str_eq(k, "results")) {
            if (r->nresults)
                return proto_seterr(d->err, d->errlen, MMS_PERR_INVALID, "duplicate key 'results'");
            if ((c = rdec_results(d, v))) return c;
        } else if (proto_obj_str_eq(k, "tags")) {
            if (r->ntags)
                return proto_seterr(d->err, d->errlen, MMS_PERR_INVALID, "duplicate key 'tags'");
            if ((c = rdec_tags(d, v))) return c;
        } else if (proto_obj_str_eq(k, "warnings")) {
            if (r->nwarnings)
                return proto_seterr(d->err, d->errlen, MMS_PERR_INVALID,
                                    "duplicate key 'warnings'");
            if ((c = rdec_warnings(d, v))) return c;
        } else if (proto_obj_str_eq(k, "timing_us")) {
            if (r->ntiming)
                return proto_seterr(d->err, d->errlen, MMS_PERR_INVALID,
                                    "duplicate key 'timing_us'");
            if ((c = rdec_timing(d, v))) return c;
        } else if (proto_obj_str_eq(k, "info")) {
            if (r->ninfo)
                return proto_seterr(d->err, d->errlen, MMS_PERR_INVALID, "duplicate key 'info'");
            if ((c = rdec_info(d, v))) return c;
        }
    }
    if (!have_ok)
        return proto_seterr(d->err, d->errlen, MMS_PERR_MALFORMED, "response has no 'ok' field");
    if (!r->ok && !have_error) {
        r->error_code = MMS_PERR_INTERNAL;
        snprintf(r->error_message, sizeof r->error_message, "(the server sent no error details)");
    }
    if (r->ok) {
        r->error_code = 0;
        r->error_message[0] = '\0';
    }
    return MMS_PERR_OK;
}

int mms_response_decode(const void *buf, size_t len, mms_response_t *out, char *err,
                        size_t errlen) {
    mms_response_init(out, NULL);
    if (err && errlen) err[0] = '\0';
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    int c = proto_unpack_one(buf, len, len, &res, err, errlen);
    if (c == MMS_PERR_OK) {
        rdec_t d = {out, err, errlen};
        c = decode_response_map(&res.data.via.map, &d);
    }
    msgpack_unpacked_destroy(&res);
    if (c != MMS_PERR_OK) mms_response_free(out);
    return c;
}
