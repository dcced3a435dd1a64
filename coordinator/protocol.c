/* protocol.c: see protocol.h and docs/protocol.md. MessagePack goes through
 * msgpack-c; this file only maps fields to structs and validates them. */
#include "protocol.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena: every string and vector of one request or response --------- */

typedef struct mms_arena_chunk {
    struct mms_arena_chunk *next;
    size_t cap;  /* bytes of data after the 64-byte header */
    size_t used;
} mms_arena_chunk_t;

struct mms_arena {
    mms_arena_chunk_t *head;
};

#define ARENA_HDR 64 /* chunk header rounded up so data starts 64-byte aligned */

static size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

static mms_arena_t *arena_new(void) { return calloc(1, sizeof(mms_arena_t)); }

static void arena_destroy(mms_arena_t **ap) {
    if (!*ap) return;
    mms_arena_chunk_t *c = (*ap)->head;
    while (c) {
        mms_arena_chunk_t *n = c->next;
        free(c);
        c = n;
    }
    free(*ap);
    *ap = NULL;
}

/* n bytes aligned to align (a power of two <= 64), or NULL when out of memory. */
static void *arena_alloc(mms_arena_t **ap, size_t n, size_t align, size_t hint) {
    if (!*ap && !(*ap = arena_new())) return NULL;
    mms_arena_t *a = *ap;
    mms_arena_chunk_t *c = a->head;
    if (c) {
        size_t off = round_up(c->used, align);
        if (off <= c->cap && n <= c->cap - off) {
            c->used = off + n;
            return (char *)c + ARENA_HDR + off;
        }
    }
    size_t cap = hint > n ? hint : n;
    if (c && cap < 2 * c->cap) cap = 2 * c->cap < (1u << 20) ? 2 * c->cap : cap;
    if (cap < 1024) cap = 1024;
    if (cap > SIZE_MAX - 2 * ARENA_HDR) return NULL;
    mms_arena_chunk_t *nc = aligned_alloc(ARENA_HDR, round_up(ARENA_HDR + cap, ARENA_HDR));
    if (!nc) return NULL;
    nc->next = c;
    nc->cap = cap;
    nc->used = n;
    a->head = nc;
    return (char *)nc + ARENA_HDR;
}

static char *arena_strndup(mms_arena_t **ap, const char *s, size_t n) {
    char *d = arena_alloc(ap, n + 1, 1, 0);
    if (d) {
        if (n) memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ---- names ------------------------------------------------------------- */

static const char *const k_err_names[MMS_PERR_COUNT] = {
    "ok",       "malformed", "field_type", "vector_length", "non_finite",
    "k_range",  "visual_range", "frame_too_large", "timeout", "jpeg",
    "no_input", "unsupported", "internal", "unavailable", "invalid"};

const char *mms_proto_error_name(int code) {
    return code >= 0 && code < MMS_PERR_COUNT ? k_err_names[code] : "unknown";
}

static const char *const k_op_names[] = {"search", "predict_tags", "info", "ping"};

const char *mms_op_name(mms_op op) {
    return (int)op >= 0 && (int)op < 4 ? k_op_names[op] : "unknown";
}

/* ---- small helpers ----------------------------------------------------- */

static int seterr(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int seterr(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Printable copy of untrusted bytes for a message (at most 48, '?' for the rest). */
static const char *printable(const char *p, size_t n, char *buf, size_t cap) {
    size_t j = 0;
    for (size_t i = 0; i < n && j + 4 < cap && i < 48; i++)
        buf[j++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
    if (n > 48 && j + 4 < cap) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = '\0';
    return buf;
}

static int obj_str_eq(const msgpack_object *o, const char *s) {
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n && !memcmp(o->via.str.ptr, s, n);
}

static const char *obj_type_name(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "float";
    case MSGPACK_OBJECT_STR: return "str";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_BIN: return "bin";
    case MSGPACK_OBJECT_EXT: return "ext";
    }
    return "unknown";
}

static int obj_is_number(const msgpack_object *o) {
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
           o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64;
}

static double obj_number(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return (double)o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return (double)o->via.i64;
    default: return o->via.f64;
    }
}

/* Bound what msgpack-c will allocate before it runs. Its C API allocates a
 * container's declared size when it meets the header, before any element
 * (a 5-byte array32 header asks for 100 GB), and has no limit option. This
 * walk reads only type bytes and lengths: every value still owed by an open
 * container needs at least one byte, so the values owed may never exceed the
 * bytes left, and the values in all may not exceed max_values. Full
 * validation is left to msgpack-c. */
static int prescan(const unsigned char *p, size_t len, size_t max_values, char *err,
                   size_t errlen) {
    size_t off = 0, owed = 1, seen = 0;
    while (owed > 0) {
        if (off >= len) return seterr(err, errlen, MMS_PERR_MALFORMED, "truncated MessagePack "
                                                                        "(the frame ends inside a value)");
        unsigned b = p[off++];
        owed--;
        if (++seen > max_values)
            return seterr(err, errlen, MMS_PERR_MALFORMED,
                          "the frame holds more than %zu MessagePack values", max_values);
        size_t skip = 0, count = 0, lenbytes = 0;
        if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3)) {
            if (b == 0xc1) return seterr(err, errlen, MMS_PERR_MALFORMED, "malformed MessagePack");
        } else if (b <= 0x8f) count = 2 * (b & 0x0f);
        else if (b <= 0x9f) count = b & 0x0f;
        else if (b <= 0xbf) skip = b & 0x1f;
        else switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; break; /* bin8, str8 */
            case 0xc5: case 0xda: lenbytes = 2; break;
            case 0xc6: case 0xdb: lenbytes = 4; break;
            case 0xc7: lenbytes = 1; skip = 1; break; /* ext: length, then a type byte */
            case 0xc8: lenbytes = 2; skip = 1; break;
            case 0xc9: lenbytes = 4; skip = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break; /* fixext: type byte + 1..16 */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: case 0xde: lenbytes = 2; break; /* array16, map16 */
            case 0xdd: case 0xdf: lenbytes = 4; break;
            default: return seterr(err, errlen, MMS_PERR_MALFORMED, "malformed MessagePack");
            }
        if (lenbytes) {
            if (len - off < lenbytes) {
                owed = 1; /* truncated inside the header */
                break;
            }
            size_t n = 0;
            for (size_t i = 0; i < lenbytes; i++) n = n << 8 | p[off + i];
            off += lenbytes;
            if (b == 0xdc || b == 0xdd) count = n;
            else if (b == 0xde || b == 0xdf) count = 2 * n;
            else skip += n;
        }
        if (skip > len - off) {
            owed = 1; /* truncated inside the value */
            break;
        }
        off += skip;
        owed += count;
        if (owed > len - off)
            return seterr(err, errlen, MMS_PERR_MALFORMED,
                          "truncated or corrupt MessagePack: %zu more values declared, %zu bytes "
                          "left", owed, len - off);
    }
    if (owed > 0)
        return seterr(err, errlen, MMS_PERR_MALFORMED,
                      "truncated MessagePack (the frame ends inside a value)");
    return MMS_PERR_OK;
}

/* Parse the whole payload as one MessagePack object; code != 0 on failure. */
static int unpack_one(const void *buf, size_t len, size_t max_values, msgpack_unpacked *res,
                      char *err, size_t errlen) {
    if (!buf || len == 0) return seterr(err, errlen, MMS_PERR_MALFORMED, "empty frame");
    int c = prescan(buf, len, max_values, err, errlen);
    if (c) return c;
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(res, (const char *)buf, len, &off);
    if (r == MSGPACK_UNPACK_CONTINUE)
        return seterr(err, errlen, MMS_PERR_MALFORMED, "truncated MessagePack (the frame ends "
                                                       "inside a value)");
    if (r == MSGPACK_UNPACK_NOMEM_ERROR)
        return seterr(err, errlen, MMS_PERR_MALFORMED,
                      "MessagePack declares containers larger than the frame can hold");
    if (r != MSGPACK_UNPACK_SUCCESS)
        return seterr(err, errlen, MMS_PERR_MALFORMED, "malformed MessagePack");
    if (off != len)
        return seterr(err, errlen, MMS_PERR_MALFORMED,
                      "%zu trailing bytes after the MessagePack map (one map per frame)", len - off);
    if (res->data.type != MSGPACK_OBJECT_MAP)
        return seterr(err, errlen, MMS_PERR_MALFORMED, "the frame holds a %s, not a map",
                      obj_type_name(&res->data));
    return MMS_PERR_OK;
}

/* ---- requests ---------------------------------------------------------- */

void mms_request_init(mms_request_t *r) {
    memset(r, 0, sizeof *r);
    r->op = MMS_OP_SEARCH;
    r->k = MMS_PROTO_K_DEFAULT;
    r->neighbors = MMS_PROTO_NEIGHBORS_DEFAULT;
    r->tag_k = MMS_PROTO_TAG_K_DEFAULT;
    r->visual = 1.0f;
}

void mms_request_free(mms_request_t *r) {
    if (!r) return;
    arena_destroy(&r->arena_);
    mms_request_init(r);
}

enum {
    F_ID, F_OP, F_IMAGE, F_IMAGE_KNN, F_JPEG, F_TAGS, F_VISUAL, F_K, F_NEIGHBORS, F_EXCLUDE,
    F_TAG_K, F_PREDICT_TAGS, F_CONNECT, F_CONCEPT, F_COUNT
};
static const char *const k_req_fields[F_COUNT] = {
    "id", "op", "image", "image_knn", "jpeg", "tags", "visual", "k", "neighbors", "exclude",
    "tag_k", "predict_tags", "connect", "concept"};

static const char *const k_connect_names[] = {"image", "tags", "both"};

const char *mms_connect_name(int c) { return c >= 0 && c < 3 ? k_connect_names[c] : NULL; }

static const char *const k_concept_names[] = {"tags", "node"};

const char *mms_concept_name(int c) { return c >= 0 && c < 2 ? k_concept_names[c] : NULL; }

/* An integer field in [lo, hi]; range failures give range_code. */
static int get_int_field(const msgpack_object *o, const char *name, int64_t lo, int64_t hi,
                         int range_code, int *out, char *err, size_t errlen) {
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)hi)
            return seterr(err, errlen, range_code, "'%s' is %llu, must be in [%lld, %lld]", name,
                          (unsigned long long)o->via.u64, (long long)lo, (long long)hi);
        if ((int64_t)o->via.u64 < lo)
            return seterr(err, errlen, range_code, "'%s' is %llu, must be in [%lld, %lld]", name,
                          (unsigned long long)o->via.u64, (long long)lo, (long long)hi);
        *out = (int)o->via.u64;
        return MMS_PERR_OK;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return seterr(err, errlen, range_code, "'%s' is %lld, must be in [%lld, %lld]", name,
                      (long long)o->via.i64, (long long)lo, (long long)hi);
    return seterr(err, errlen, MMS_PERR_FIELD_TYPE, "'%s' must be an integer, got %s", name,
                  obj_type_name(o));
}

/* A bounded string without NUL bytes, copied into the arena. */
static int get_str_field(const msgpack_object *o, const char *what, mms_arena_t **ap,
                         const char **out, char *err, size_t errlen) {
    if (o->type != MSGPACK_OBJECT_STR)
        return seterr(err, errlen, MMS_PERR_FIELD_TYPE, "%s must be a string, got %s", what,
                      obj_type_name(o));
    size_t n = o->via.str.size;
    if (n == 0) return seterr(err, errlen, MMS_PERR_INVALID, "%s is an empty string", what);
    if (n > MMS_PROTO_MAX_STR)
        return seterr(err, errlen, MMS_PERR_INVALID, "%s is %zu bytes long (limit %d)", what, n,
                      MMS_PROTO_MAX_STR);
    if (memchr(o->via.str.ptr, 0, n))
        return seterr(err, errlen, MMS_PERR_INVALID, "%s contains a NUL byte", what);
    char *s = arena_strndup(ap, o->via.str.ptr, n);
    if (!s) return seterr(err, errlen, MMS_PERR_INTERNAL, "out of memory decoding %s", what);
    *out = s;
    return MMS_PERR_OK;
}

/* A little-endian float32 vector from a bin, copied to a 64-byte aligned buffer. */
static int get_vec_field(const msgpack_object *o, const char *name, mms_arena_t **ap,
                         const float **out, int *dim, char *err, size_t errlen) {
    if (o->type != MSGPACK_OBJECT_BIN)
        return seterr(err, errlen, MMS_PERR_FIELD_TYPE,
                      "'%s' must be bin (little-endian float32 bytes), got %s", name,
                      obj_type_name(o));
    size_t n = o->via.bin.size;
    if (n == 0 || n % 4 != 0)
        return seterr(err, errlen, MMS_PERR_VECTOR_LENGTH,
                      "'%s' has %zu bytes, not a positive multiple of 4 (float32)", name, n);
    if (n / 4 > (size_t)INT_MAX)
        return seterr(err, errlen, MMS_PERR_VECTOR_LENGTH, "'%s' is too long", name);
    float *v = arena_alloc(ap, n, 64, 0);
    if (!v) return seterr(err, errlen, MMS_PERR_INTERNAL, "out of memory decoding '%s'", name);
    const unsigned char *b = (const unsigned char *)o->via.bin.ptr;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < n / 4; i++) {
        uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
                     (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
        memcpy(&v[i], &u, 4);
    }
#else
    memcpy(v, b, n); /* the payload may be unaligned: copy, never cast */
#endif
    for (size_t i = 0; i < n / 4; i++)
        if (!isfinite(v[i]))
            return seterr(err, errlen, MMS_PERR_NON_FINITE, "'%s'[%zu] is %s", name, i,
                          isnan(v[i]) ? "NaN" : "Inf");
    *out = v;
    *dim = (int)(n / 4);
    return MMS_PERR_OK;
}

static int decode_request_map(const msgpack_object_map *mp, size_t len, mms_request_t *r,
                              uint64_t *id_out, char *err, size_t errlen) {
    const msgpack_object *f[F_COUNT] = {0};
    char pb[64];
    int dup = -1; /* first known key seen twice (refused once the id is known) */
    for (uint32_t i = 0; i < mp->size; i++) {
        const msgpack_object *k = &mp->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            return seterr(err, errlen, MMS_PERR_MALFORMED, "map key %u is a %s, not a string", i,
                          obj_type_name(k));
        for (int j = 0; j < F_COUNT; j++) {
            if (!obj_str_eq(k, k_req_fields[j])) continue;
            if (f[j] && dup < 0) dup = j;
            f[j] = &mp->ptr[i].val;
        }
    }
    /* nil is the same as absent */
    for (int j = 0; j < F_COUNT; j++)
        if (f[j] && f[j]->type == MSGPACK_OBJECT_NIL) f[j] = NULL;
    if (f[F_ID]) {
        if (f[F_ID]->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return seterr(err, errlen, MMS_PERR_FIELD_TYPE,
                          "'id' must be an unsigned integer, got %s%s", obj_type_name(f[F_ID]),
                          f[F_ID]->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? " (negative)" : "");
        r->id = f[F_ID]->via.u64;
        if (id_out) *id_out = r->id;
    }
    if (dup >= 0) return seterr(err, errlen, MMS_PERR_INVALID, "duplicate key '%s'", k_req_fields[dup]);
    int c;
    /* the first chunk holds the whole request in the common case */
    if (!arena_alloc(&r->arena_, 0, 1, len + 512))
        return seterr(err, errlen, MMS_PERR_INTERNAL, "out of memory decoding a request");
    if (f[F_OP]) {
        const msgpack_object *o = f[F_OP];
        if (o->type != MSGPACK_OBJECT_STR)
            return seterr(err, errlen, MMS_PERR_FIELD_TYPE, "'op' must be a string, got %s",
                          obj_type_name(o));
        int found = -1;
        for (int j = 0; j < 4; j++)
            if (obj_str_eq(o, k_op_names[j])) found = j;
        if (found < 0)
            return seterr(err, errlen, MMS_PERR_UNSUPPORTED,
                          "unknown op '%s' (search, predict_tags, info, ping)",
                          printable(o->via.str.ptr, o->via.str.size, pb, sizeof pb));
        r->op = (mms_op)found;
    }
    if (f[F_K] && (c = get_int_field(f[F_K], "k", 1, MMS_PROTO_K_MAX, MMS_PERR_K_RANGE, &r->k, err,
                                     errlen)))
        return c;
    if (f[F_NEIGHBORS] &&
        (c = get_int_field(f[F_NEIGHBORS], "neighbors", 1, MMS_PROTO_NEIGHBORS_MAX,
                           MMS_PERR_K_RANGE, &r->neighbors, err, errlen)))
        return c;
    if (f[F_TAG_K] && (c = get_int_field(f[F_TAG_K], "tag_k", 1, MMS_PROTO_TAG_K_MAX,
                                         MMS_PERR_K_RANGE, &r->tag_k, err, errlen)))
        return c;
    if (f[F_PREDICT_TAGS]) {
        if (f[F_PREDICT_TAGS]->type != MSGPACK_OBJECT_BOOLEAN)
            return seterr(err, errlen, MMS_PERR_FIELD_TYPE, "'predict_tags' must be a bool, got %s",
                          obj_type_name(f[F_PREDICT_TAGS]));
        r->predict_tags = f[F_PREDICT_TAGS]->via.boolean ? 1 : 0;
    }
    if (f[F_VISUAL]) {
        if (!obj_is_number(f[F_VISUAL]))
            return seterr(err, errlen, MMS_PERR_FIELD_TYPE, "'visual' must be a number, got %s",
                          obj_type_name(f[F_VISUAL]));
        double v = obj_number(f[F_VISUAL]);
        if (!(v >= 0.0 && v <= 1.0))
            return seterr(err, errlen, MMS_PERR_VISUAL_RANGE, "'visual' is %g, must be in [0, 1]",
                          v);
        r->visual = (float)v;
        r->visual_given = 1;
    }
    if (f[F_CONNECT]) {
        const msgpack_object *o = f[F_CONNECT];
        if (o->type != MSGPACK_OBJECT_STR)
            return seterr(err, errlen, MMS_PERR_FIELD_TYPE, "'connect' must be a string, got %s",
                          obj_type_name(o));
        int found = -1;
        for (int j = 0; j < 3; j++)
            if (obj_str_eq(o, k_connect_names[j])) found = j;
        if (found < 0)
            return seterr(err, errlen, MMS_PERR_INVALID, "'connect' is '%s' (image, tags or both)",
                          printable(o->via.str.ptr, o->via.str.size, pb, sizeof pb));
        r->connect = found;
    }
    if (f[F_CONCEPT]) {
        const msgpack_object *o = f[F_CONCEPT];
        if (o->type != MSGPACK_OBJECT_STR)
            return seterr(err, errlen, MMS_PERR_FIELD_TYPE, "'concept' must be a string, got %s",
                          obj_type_name(o));
        int found = -1;
        for (int j = 0; j < 2; j++)
            if (obj_str_eq(o, k_concept_names[j])) found = j;
        if (found < 0)
            return seterr(err, errlen, MMS_PERR_INVALID, "'concept' is '%s' (tags or node)",
                          printable(o->via.str.ptr, o->via.str.size, pb, sizeof pb));
        r->concept = found;
    }
    if (f[F_EXCLUDE] && (c = get_str_field(f[F_EXCLUDE], "'exclude'", &r->arena_, &r->exclude,
                                           err, errlen)))
        return c;
    if (f[F_TAGS]) {
        const msgpack_object *o = f[F_TAGS];
        if (o->type != MSGPACK_OBJECT_ARRAY)
            return seterr(err, errlen, MMS_PERR_FIELD_TYPE,
                          "'tags' must be an array of strings, got %s", obj_type_name(o));
        uint32_t n = o->via.array.size;
        if (n > MMS_PROTO_MAX_TAGS)
            return seterr(err, errlen, MMS_PERR_INVALID, "'tags' has %u entries (limit %d)", n,
                          MMS_PROTO_MAX_TAGS);
        if (n > 0) {
            const char **t = arena_alloc(&r->arena_, n * sizeof *t, sizeof(void *), 0);
            if (!t) return seterr(err, errlen, MMS_PERR_INTERNAL, "out of memory decoding 'tags'");
            for (uint32_t i = 0; i < n; i++) {
                char what[32];
                snprintf(what, sizeof what, "'tags'[%u]", i);
                if ((c = get_str_field(&o->via.array.ptr[i], what, &r->arena_, &t[i], err, errlen)))
                    return c;
            }
            r->tags = t;
            r->ntags = (int)n;
        }
    }
    if (f[F_IMAGE] && (c = get_vec_field(f[F_IMAGE], "image", &r->arena_, &r->image,
                                         &r->image_dim, err, errlen)))
        return c;
    if (f[F_IMAGE_KNN] && (c = get_vec_field(f[F_IMAGE_KNN], "image_knn", &r->arena_,
                                             &r->image_knn, &r->image_knn_dim, err, errlen)))
        return c;
    if (f[F_JPEG]) {
        const msgpack_object *o = f[F_JPEG];
        if (o->type != MSGPACK_OBJECT_BIN)
            return seterr(err, errlen, MMS_PERR_FIELD_TYPE, "'jpeg' must be bin, got %s",
                          obj_type_name(o));
        const unsigned char *b = (const unsigned char *)o->via.bin.ptr;
        size_t n = o->via.bin.size;
        if (n < 3 || b[0] != 0xFF || b[1] != 0xD8 || b[2] != 0xFF)
            return seterr(err, errlen, MMS_PERR_JPEG,
                          "'jpeg' is not a JPEG file (%zu bytes, no SOI marker)", n);
        uint8_t *d = arena_alloc(&r->arena_, n, 1, 0);
        if (!d) return seterr(err, errlen, MMS_PERR_INTERNAL, "out of memory decoding 'jpeg'");
        memcpy(d, b, n);
        r->jpeg = d;
        r->jpeg_len = n;
    }
    /* cross-field rules */
    if (r->image && r->jpeg)
        return seterr(err, errlen, MMS_PERR_INVALID, "give 'image' or 'jpeg', not both");
    if (r->image_knn && !r->image)
        return seterr(err, errlen, MMS_PERR_INVALID, "'image_knn' is only used with 'image'");
    int has_image = r->image || r->jpeg;
    if (r->op == MMS_OP_SEARCH && !has_image && r->ntags == 0)
        return seterr(err, errlen, MMS_PERR_NO_INPUT,
                      "a search needs 'image', 'jpeg' or 'tags' (none given)");
    if (r->op == MMS_OP_PREDICT_TAGS) {
        if (!has_image)
            return seterr(err, errlen, MMS_PERR_NO_INPUT, "predict_tags needs 'image' or 'jpeg'");
        r->predict_tags = 1;
    }
    if (!r->visual_given) r->visual = has_image && r->ntags ? 0.5f : has_image ? 1.0f : 0.0f;
    return MMS_PERR_OK;
}

int mms_request_decode(const void *buf, size_t len, mms_request_t *out, uint64_t *id_out,
                       char *err, size_t errlen) {
    mms_request_init(out);
    if (id_out) *id_out = 0;
    if (err && errlen) err[0] = '\0';
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    int c = unpack_one(buf, len, MMS_PROTO_MAX_VALUES, &res, err, errlen);
    if (c == MMS_PERR_OK) c = decode_request_map(&res.data.via.map, len, out, id_out, err, errlen);
    msgpack_unpacked_destroy(&res);
    if (c != MMS_PERR_OK) {
        uint64_t id = out->id;
        mms_request_free(out);
        if (id_out) *id_out = id;
    }
    return c;
}

/* ---- encoding ---------------------------------------------------------- */

static int pack_cstr(msgpack_packer *pk, const char *s) {
    if (!s) s = "";
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

static int pack_vec(msgpack_packer *pk, const float *v, int dim) {
    size_t n = (size_t)dim * 4;
    int rc = msgpack_pack_bin(pk, n);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (int i = 0; i < dim; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                              (unsigned char)(u >> 24)};
        rc |= msgpack_pack_bin_body(pk, b, 4);
    }
#else
    rc |= msgpack_pack_bin_body(pk, v, n);
#endif
    return rc;
}

/* Reserve the 4-byte length prefix; returns the frame's start offset or -1. */
static int frame_begin(msgpack_sbuffer *sb, size_t *start) {
    static const char zero[4] = {0, 0, 0, 0};
    *start = sb->size;
    return msgpack_sbuffer_write(sb, zero, 4);
}

static mms_status frame_end(msgpack_sbuffer *sb, size_t start, int rc, const char *what) {
    size_t payload = sb->size - start - 4;
    if (rc != 0 || payload > UINT32_MAX) {
        sb->size = start;
        MMS_CHECK(rc == 0, MMS_ERR_NOMEM, "out of memory encoding a %s", what);
        MMS_CHECK(0, MMS_ERR_ARG, "%s of %zu bytes does not fit a frame", what, payload);
    }
    unsigned char *h = (unsigned char *)sb->data + start;
    h[0] = (unsigned char)(payload >> 24);
    h[1] = (unsigned char)(payload >> 16);
    h[2] = (unsigned char)(payload >> 8);
    h[3] = (unsigned char)payload;
    return MMS_OK;
}

mms_status mms_request_encode(const mms_request_t *r, msgpack_sbuffer *sb) {
    MMS_CHECK(mms_connect_name(r->connect), MMS_ERR_ARG,
              "request: connect %d is not image, tags or both", r->connect);
    MMS_CHECK(mms_concept_name(r->concept), MMS_ERR_ARG, "request: concept %d is not tags or node",
              r->concept);
    size_t start;
    MMS_CHECK(frame_begin(sb, &start) == 0, MMS_ERR_NOMEM, "out of memory encoding a request");
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int has_image = r->image && r->image_dim > 0, has_knn = r->image_knn && r->image_knn_dim > 0;
    int has_jpeg = r->jpeg && r->jpeg_len > 0, has_tags = r->tags && r->ntags > 0;
    uint32_t n = 6 + (uint32_t)has_image + (uint32_t)has_knn + (uint32_t)has_jpeg +
                 (uint32_t)has_tags + (uint32_t)(r->visual_given != 0) +
                 (uint32_t)(r->exclude != NULL) + (uint32_t)(r->predict_tags != 0) +
                 (uint32_t)(r->connect != MMS_CONNECT_IMAGE) + (uint32_t)(r->concept != MMS_CONCEPT_TAGS);
    int rc = msgpack_pack_map(&pk, n);
    rc |= pack_cstr(&pk, "id") | msgpack_pack_uint64(&pk, r->id);
    rc |= pack_cstr(&pk, "op") | pack_cstr(&pk, mms_op_name(r->op));
    rc |= pack_cstr(&pk, "k") | msgpack_pack_int(&pk, r->k);
    rc |= pack_cstr(&pk, "neighbors") | msgpack_pack_int(&pk, r->neighbors);
    rc |= pack_cstr(&pk, "tag_k") | msgpack_pack_int(&pk, r->tag_k);
    rc |= pack_cstr(&pk, "v") | msgpack_pack_int(&pk, MMS_PROTO_VERSION);
    if (has_image) rc |= pack_cstr(&pk, "image") | pack_vec(&pk, r->image, r->image_dim);
    if (has_knn) rc |= pack_cstr(&pk, "image_knn") | pack_vec(&pk, r->image_knn, r->image_knn_dim);
    if (has_jpeg)
        rc |= pack_cstr(&pk, "jpeg") | msgpack_pack_bin(&pk, r->jpeg_len) |
              msgpack_pack_bin_body(&pk, r->jpeg, r->jpeg_len);
    if (has_tags) {
        rc |= pack_cstr(&pk, "tags") | msgpack_pack_array(&pk, (size_t)r->ntags);
        for (int i = 0; i < r->ntags; i++) rc |= pack_cstr(&pk, r->tags[i]);
    }
    if (r->visual_given) rc |= pack_cstr(&pk, "visual") | msgpack_pack_double(&pk, r->visual);
    if (r->exclude) rc |= pack_cstr(&pk, "exclude") | pack_cstr(&pk, r->exclude);
    if (r->predict_tags) rc |= pack_cstr(&pk, "predict_tags") | msgpack_pack_true(&pk);
    if (r->connect != MMS_CONNECT_IMAGE)
        rc |= pack_cstr(&pk, "connect") | pack_cstr(&pk, mms_connect_name(r->connect));
    if (r->concept != MMS_CONCEPT_TAGS)
        rc |= pack_cstr(&pk, "concept") | pack_cstr(&pk, mms_concept_name(r->concept));
    return frame_end(sb, start, rc, "request");
}

/* ---- responses --------------------------------------------------------- */

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
    arena_destroy(&r->arena_);
    memset(r, 0, sizeof *r);
}

/* Grow a malloc'd array *arr of *cap items of size sz to hold need items. */
static mms_status grow(void *arr, int *cap, int need, size_t sz) {
    if (need <= *cap) return MMS_OK;
    MMS_CHECK(need > 0 && need <= INT_MAX / 2, MMS_ERR_ARG, "response array of %d items", need);
    int nc = *cap ? *cap : 8;
    while (nc < need) nc *= 2;
    MMS_CALL(mms_realloc((size_t)nc * sz, arr));
    *cap = nc;
    return MMS_OK;
}

mms_status mms_response_reserve(mms_response_t *r, int nresults, int ntags) {
    if (nresults > 0) MMS_CALL(grow(&r->results, &r->results_cap, nresults, sizeof *r->results));
    if (ntags > 0) MMS_CALL(grow(&r->tags, &r->tags_cap, ntags, sizeof *r->tags));
    return MMS_OK;
}

const char *mms_response_strdup(mms_response_t *r, const char *s) {
    return arena_strndup(&r->arena_, s ? s : "", s ? strlen(s) : 0);
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
        const char **t = arena_alloc(&r->arena_, (size_t)ntags * sizeof *t, sizeof(void *), 0);
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

mms_status mms_response_encode(const mms_response_t *r, msgpack_sbuffer *sb) {
    size_t start;
    MMS_CHECK(frame_begin(sb, &start) == 0, MMS_ERR_NOMEM, "out of memory encoding a response");
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int ok = r->ok != 0;
    int send_results = ok && (r->op == MMS_OP_SEARCH || r->nresults > 0);
    int send_tags = ok && (r->op == MMS_OP_PREDICT_TAGS || r->ntags > 0);
    int send_info = ok && (r->op == MMS_OP_INFO || r->ninfo > 0);
    uint32_t n = 2 + (uint32_t)!ok + (uint32_t)send_results + (uint32_t)send_tags +
                 (uint32_t)(r->nwarnings > 0) + (uint32_t)(r->ntiming > 0) + (uint32_t)send_info;
    int rc = msgpack_pack_map(&pk, n);
    rc |= pack_cstr(&pk, "id") | msgpack_pack_uint64(&pk, r->id);
    rc |= pack_cstr(&pk, "ok") | (ok ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
    if (!ok) {
        int code = r->error_code > 0 && r->error_code < MMS_PERR_COUNT ? r->error_code
                                                                      : MMS_PERR_INTERNAL;
        rc |= pack_cstr(&pk, "error") | msgpack_pack_map(&pk, 3);
        rc |= pack_cstr(&pk, "code") | msgpack_pack_int(&pk, code);
        rc |= pack_cstr(&pk, "name") | pack_cstr(&pk, mms_proto_error_name(code));
        rc |= pack_cstr(&pk, "message") | pack_cstr(&pk, r->error_message);
    }
    if (send_results) {
        rc |= pack_cstr(&pk, "results") | msgpack_pack_array(&pk, (size_t)r->nresults);
        for (int i = 0; i < r->nresults; i++) {
            const mms_result_t *x = &r->results[i];
            rc |= msgpack_pack_map(&pk, x->path ? 4 : 3);
            rc |= pack_cstr(&pk, "id") | pack_cstr(&pk, x->id);
            rc |= pack_cstr(&pk, "score") | msgpack_pack_float(&pk, x->score);
            int nt = x->tags ? x->ntags : 0;
            rc |= pack_cstr(&pk, "tags") | msgpack_pack_array(&pk, (size_t)(nt > 0 ? nt : 0));
            for (int j = 0; j < nt; j++) rc |= pack_cstr(&pk, x->tags[j]);
            if (x->path) rc |= pack_cstr(&pk, "path") | pack_cstr(&pk, x->path);
        }
    }
    if (send_tags) {
        rc |= pack_cstr(&pk, "tags") | msgpack_pack_array(&pk, (size_t)r->ntags);
        for (int i = 0; i < r->ntags; i++)
            rc |= msgpack_pack_map(&pk, 2) | pack_cstr(&pk, "tag") | pack_cstr(&pk, r->tags[i].tag) |
                  pack_cstr(&pk, "score") | msgpack_pack_float(&pk, r->tags[i].score);
    }
    if (r->nwarnings > 0) {
        rc |= pack_cstr(&pk, "warnings") | msgpack_pack_array(&pk, (size_t)r->nwarnings);
        for (int i = 0; i < r->nwarnings; i++) rc |= pack_cstr(&pk, r->warnings[i]);
    }
    if (r->ntiming > 0) {
        rc |= pack_cstr(&pk, "timing_us") | msgpack_pack_map(&pk, (size_t)r->ntiming);
        for (int i = 0; i < r->ntiming; i++)
            rc |= pack_cstr(&pk, r->timing[i].stage) | msgpack_pack_uint64(&pk, r->timing[i].us);
    }
    if (send_info) {
        rc |= pack_cstr(&pk, "info") | msgpack_pack_map(&pk, (size_t)r->ninfo);
        for (int i = 0; i < r->ninfo; i++) {
            const mms_info_t *e = &r->info[i];
            rc |= pack_cstr(&pk, e->key);
            if (e->type == MMS_INFO_INT) rc |= msgpack_pack_int64(&pk, e->i);
            else if (e->type == MMS_INFO_REAL) rc |= msgpack_pack_double(&pk, e->r);
            else rc |= pack_cstr(&pk, e->s);
        }
    }
    return frame_end(sb, start, rc, "response");
}

/* -- response decoding (client side; the bytes come from the network too) -- */

typedef struct {
    mms_response_t *r;
    char *err;
    size_t errlen;
} rdec_t;

static int rstr(rdec_t *d, const msgpack_object *o, const char *what, const char **out) {
    if (o->type != MSGPACK_OBJECT_STR)
        return seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE, "response %s must be a string, got %s",
                      what, obj_type_name(o));
    *out = arena_strndup(&d->r->arena_, o->via.str.ptr, o->via.str.size);
    if (!*out) return seterr(d->err, d->errlen, MMS_PERR_INTERNAL, "out of memory");
    return MMS_PERR_OK;
}

static int rnum(rdec_t *d, const msgpack_object *o, const char *what, float *out) {
    if (!obj_is_number(o))
        return seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE, "response %s must be a number, got %s",
                      what, obj_type_name(o));
    *out = (float)obj_number(o);
    return MMS_PERR_OK;
}

static int rarray(rdec_t *d, const msgpack_object *o, const char *what) {
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE, "response '%s' must be an array, got %s",
                      what, obj_type_name(o));
    if (o->via.array.size > (uint32_t)(INT_MAX / 2))
        return seterr(d->err, d->errlen, MMS_PERR_INVALID, "response '%s' is too long", what);
    return MMS_PERR_OK;
}

static int rmap(rdec_t *d, const msgpack_object *o, const char *what) {
    if (o->type != MSGPACK_OBJECT_MAP)
        return seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE, "response '%s' must be a map, got %s",
                      what, obj_type_name(o));
    if (o->via.map.size > (uint32_t)(INT_MAX / 2))
        return seterr(d->err, d->errlen, MMS_PERR_INVALID, "response '%s' is too long", what);
    return MMS_PERR_OK;
}

static int rgrow(rdec_t *d, void *arr, int *cap, uint32_t n, size_t sz) {
    if (n == 0) return MMS_PERR_OK;
    void **p = (void **)arr;
    void *q = realloc(*p, (size_t)n * sz);
    if (!q) return seterr(d->err, d->errlen, MMS_PERR_INTERNAL, "out of memory");
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
        if (obj_str_eq(k, "code")) {
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 == 0 ||
                v->via.u64 > INT_MAX)
                return seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE,
                              "response error code must be a positive integer");
            r->error_code = (int)v->via.u64;
        } else if (obj_str_eq(k, "message")) {
            if (v->type != MSGPACK_OBJECT_STR)
                return seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE,
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
            if (obj_str_eq(k, "id")) {
                if ((c = rstr(d, v, "result id", &x->id))) return c;
            } else if (obj_str_eq(k, "score")) {
                if ((c = rnum(d, v, "result score", &x->score))) return c;
            } else if (obj_str_eq(k, "path")) {
                if (v->type != MSGPACK_OBJECT_NIL && (c = rstr(d, v, "result path", &x->path)))
                    return c;
            } else if (obj_str_eq(k, "tags")) {
                if ((c = rarray(d, v, "result tags"))) return c;
                uint32_t nt = v->via.array.size;
                if (nt == 0) continue;
                const char **t =
                    arena_alloc(&r->arena_, (size_t)nt * sizeof *t, sizeof(void *), 0);
                if (!t) return seterr(d->err, d->errlen, MMS_PERR_INTERNAL, "out of memory");
                for (uint32_t m = 0; m < nt; m++)
                    if ((c = rstr(d, &v->via.array.ptr[m], "result tag", &t[m]))) return c;
                x->tags = t;
                x->ntags = (int)nt;
            }
        }
        if (!x->id) return seterr(d->err, d->errlen, MMS_PERR_MALFORMED, "result %u has no id", i);
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
            if (obj_str_eq(k, "tag")) {
                if ((c = rstr(d, v, "tag", &x->tag))) return c;
            } else if (obj_str_eq(k, "score")) {
                if ((c = rnum(d, v, "tag score", &x->score))) return c;
            }
        }
        if (!x->tag) return seterr(d->err, d->errlen, MMS_PERR_MALFORMED, "tag %u has no name", i);
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
            return seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE,
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
            return seterr(d->err, d->errlen, MMS_PERR_MALFORMED, "response key %u is not a string",
                          i);
        if (v->type == MSGPACK_OBJECT_NIL) continue;
        if (obj_str_eq(k, "id")) {
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE,
                              "response id must be an unsigned integer");
            r->id = v->via.u64;
        } else if (obj_str_eq(k, "ok")) {
            if (v->type != MSGPACK_OBJECT_BOOLEAN)
                return seterr(d->err, d->errlen, MMS_PERR_FIELD_TYPE, "response ok must be a bool");
            r->ok = v->via.boolean ? 1 : 0;
            have_ok = 1;
        } else if (obj_str_eq(k, "error")) {
            if ((c = rdec_error(d, v))) return c;
            have_error = 1;
        } else if (obj_str_eq(k, "results")) {
            if (r->nresults) return seterr(d->err, d->errlen, MMS_PERR_INVALID, "duplicate key 'results'");
            if ((c = rdec_results(d, v))) return c;
        } else if (obj_str_eq(k, "tags")) {
            if (r->ntags) return seterr(d->err, d->errlen, MMS_PERR_INVALID, "duplicate key 'tags'");
            if ((c = rdec_tags(d, v))) return c;
        } else if (obj_str_eq(k, "warnings")) {
            if (r->nwarnings)
                return seterr(d->err, d->errlen, MMS_PERR_INVALID, "duplicate key 'warnings'");
            if ((c = rdec_warnings(d, v))) return c;
        } else if (obj_str_eq(k, "timing_us")) {
            if (r->ntiming)
                return seterr(d->err, d->errlen, MMS_PERR_INVALID, "duplicate key 'timing_us'");
            if ((c = rdec_timing(d, v))) return c;
        } else if (obj_str_eq(k, "info")) {
            if (r->ninfo) return seterr(d->err, d->errlen, MMS_PERR_INVALID, "duplicate key 'info'");
            if ((c = rdec_info(d, v))) return c;
        }
    }
    if (!have_ok) return seterr(d->err, d->errlen, MMS_PERR_MALFORMED, "response has no 'ok' field");
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
    int c = unpack_one(buf, len, len, &res, err, errlen);
    if (c == MMS_PERR_OK) {
        rdec_t d = {out, err, errlen};
        c = decode_response_map(&res.data.via.map, &d);
    }
    msgpack_unpacked_destroy(&res);
    if (c != MMS_PERR_OK) mms_response_free(out);
    return c;
}

/* ---- framing ----------------------------------------------------------- */

int mms_frame_peek(const void *buf, size_t len, size_t max_payload, size_t *payload_len) {
    if (len < 4) return 0;
    const unsigned char *b = buf;
    size_t n = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | (size_t)b[3];
    *payload_len = n;
    if (n > max_payload) return -1;
    return len - 4 >= n ? 1 : 0;
}
