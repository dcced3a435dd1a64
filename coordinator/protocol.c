/* protocol.c: what requests and responses share (protocol_internal.h): the
 * arena of a decoded message, the names of error codes, ops, connect and
 * concept modes, the bounded unpack of one frame (a prescan before msgpack-c
 * allocates), msgpack reading and writing helpers, and the frame's length
 * prefix (mms_frame_peek, proto_frame_begin/end) and the hello (mms_hello_*).
 *
 * Does not: know any request or response field (protocol_request.c,
 * protocol_response.c), touch sockets (netserver.c, netclient.c), or log.
 * MessagePack goes through msgpack-c; docs/protocol.md is the wire format.
 */
#include "protocol.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_msgpack.h"
#include "protocol_internal.h"

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

void proto_arena_destroy(mms_arena_t **ap) {
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

/* See protocol_internal.h. */
void *proto_arena_alloc(mms_arena_t **ap, size_t n, size_t align, size_t hint) {
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

char *proto_arena_strndup(mms_arena_t **ap, const char *s, size_t n) {
    char *d = proto_arena_alloc(ap, n + 1, 1, 0);
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
    "no_input", "unsupported", "internal", "unavailable", "invalid",
    "unauthorized", "reload_refused"};

const char *mms_proto_error_name(int code) {
    return code >= 0 && code < MMS_PERR_COUNT ? k_err_names[code] : "unknown";
}

static const char *const k_op_names[MMS_OP_COUNT] = {"search", "predict_tags", "info", "ping",
                                                     "reload"};

const char *mms_op_name(mms_op op) {
    return (int)op >= 0 && (int)op < MMS_OP_COUNT ? k_op_names[op] : "unknown";
}

static const char *const k_connect_names[] = {"image", "tags", "both"};

const char *mms_connect_name(int c) { return c >= 0 && c < 3 ? k_connect_names[c] : NULL; }

static const char *const k_concept_names[] = {"tags", "node"};

const char *mms_concept_name(int c) { return c >= 0 && c < 2 ? k_concept_names[c] : NULL; }

/* ---- small helpers ----------------------------------------------------- */

int proto_seterr(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Printable copy of untrusted bytes for a message (at most 48, '?' for the rest). */
const char *proto_printable(const char *p, size_t n, char *buf, size_t cap) {
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

const char *proto_obj_type_name(const msgpack_object *o) {
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

/* Bound what msgpack-c will allocate before it runs (mms_msgpack_bound), in
 * the protocol's own words and codes. */
static int prescan(const unsigned char *p, size_t len, size_t max_values, char *err,
                   size_t errlen) {
    char why[160];
    switch (mms_msgpack_bound(p, len, max_values, why, sizeof why)) {
    case MMS_MSGPACK_OK: return MMS_PERR_OK;
    case MMS_MSGPACK_TRUNCATED:
        return proto_seterr(err, errlen, MMS_PERR_MALFORMED,
                            "truncated MessagePack (the frame ends inside a value)");
    case MMS_MSGPACK_TOO_MANY:
        return proto_seterr(err, errlen, MMS_PERR_MALFORMED,
                            "the frame holds more than %zu MessagePack values", max_values);
    default: return proto_seterr(err, errlen, MMS_PERR_MALFORMED, "%s", why);
    }
}

/* Parse the whole payload as one MessagePack object; code != 0 on failure. */
int proto_unpack_one(const void *buf, size_t len, size_t max_values, msgpack_unpacked *res,
                     char *err, size_t errlen) {
    if (!buf || len == 0) return proto_seterr(err, errlen, MMS_PERR_MALFORMED, "empty frame");
    int c = prescan(buf, len, max_values, err, errlen);
    if (c) return c;
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(res, (const char *)buf, len, &off);
    if (r == MSGPACK_UNPACK_CONTINUE)
        return proto_seterr(err, errlen, MMS_PERR_MALFORMED,
                            "truncated MessagePack (the frame ends "
                            "inside a value)");
    if (r == MSGPACK_UNPACK_NOMEM_ERROR)
        return proto_seterr(err, errlen, MMS_PERR_MALFORMED,
                            "MessagePack declares containers larger than the frame can hold");
    if (r != MSGPACK_UNPACK_SUCCESS)
        return proto_seterr(err, errlen, MMS_PERR_MALFORMED, "malformed MessagePack");
    if (off != len)
        return proto_seterr(err, errlen, MMS_PERR_MALFORMED,
                            "%zu trailing bytes after the MessagePack map (one map per frame)",
                            len - off);
    if (res->data.type != MSGPACK_OBJECT_MAP)
        return proto_seterr(err, errlen, MMS_PERR_MALFORMED, "the frame holds a %s, not a map",
                            proto_obj_type_name(&res->data));
    return MMS_PERR_OK;
}

/* ---- encoding helpers -------------------------------------------------- */

int proto_pack_cstr(msgpack_packer *pk, const char *s) {
    if (!s) s = "";
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

int proto_pack_vec(msgpack_packer *pk, const float *v, int dim) {
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
int proto_frame_begin(msgpack_sbuffer *sb, size_t *start) {
    static const char zero[4] = {0, 0, 0, 0};
    *start = sb->size;
    return msgpack_sbuffer_write(sb, zero, 4);
}

mms_status proto_frame_end(msgpack_sbuffer *sb, size_t start, int rc, const char *what) {
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

/* ---- framing ----------------------------------------------------------- */

int mms_frame_peek(const void *buf, size_t len, size_t max_payload, size_t *payload_len) {
    if (len < 4) return 0;
    const unsigned char *b = buf;
    size_t n = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | (size_t)b[3];
    *payload_len = n;
    if (n > max_payload) return -1;
    return len - 4 >= n ? 1 : 0;
}

/* ---- handshake ---------------------------------------------------------- */

void mms_hello_encode(unsigned char out[MMS_HELLO_LEN], unsigned version) {
    memcpy(out, MMS_HELLO_MAGIC, 4);
    out[4] = (unsigned char)(version >> 8);
    out[5] = (unsigned char)version;
    out[6] = '\r';
    out[7] = '\n';
}

int mms_hello_parse(const void *buf, size_t len, unsigned *version) {
    const unsigned char *b = buf;
    static const unsigned char fixed[MMS_HELLO_LEN] = {'M', 'M', 'S', 'G', 0, 0, '\r', '\n'};
    for (size_t i = 0; i < len && i < MMS_HELLO_LEN; i++)
        if ((i < 4 || i > 5) && b[i] != fixed[i]) return -1;
    if (len < MMS_HELLO_LEN) return 0;
    *version = (unsigned)b[4] << 8 | b[5];
    return 1;
}

int mms_hello_looks_http(const void *buf, size_t len) {
    const unsigned char *b = buf;
    size_t i = 0;
    while (i < len && i < 7 && b[i] >= 'A' && b[i] <= 'Z') i++;
    return i >= 3 && i < len && b[i] == ' ';
}

char *mms_hello_describe(const void *buf, size_t len, char *out, size_t cap) {
    const unsigned char *b = buf;
    size_t o = 0, i = 0;
    out[0] = '\0';
    for (; i < len && i < 48; i++) {
        unsigned char ch = b[i];
        if (ch == '\r' || ch == '\n') break;
        char tmp[8];
        int n = ch >= 0x20 && ch < 0x7f ? snprintf(tmp, sizeof tmp, "%c", ch)
                                        : snprintf(tmp, sizeof tmp, "\\x%02x", ch);
        if (o + (size_t)n + 4 > cap) break; /* room for "..." and the NUL */
        memcpy(out + o, tmp, (size_t)n);
        o += (size_t)n;
        out[o] = '\0';
    }
    int cut = i < len && !(b[i] == '\r' || b[i] == '\n');
    if (cut && o + 4 <= cap) memcpy(out + o, "...", 4);
    return out;
}
