/* protocol_internal.h: the pieces of the wire protocol that requests and
 * responses share, all in protocol.c: the arena that owns a decoded message's
 * strings and vectors, error messages into the caller's buffer, reading
 * msgpack objects, the bounded unpack of one frame's map, writing strings and
 * float vectors, and the length prefix of a frame.
 *
 * Not a public API: callers use protocol.h. protocol_request.c and
 * protocol_response.c are the only users. Nothing here logs.
 */
#ifndef MMS_PROTOCOL_INTERNAL_H
#define MMS_PROTOCOL_INTERNAL_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "protocol.h"

/* ---- arena (one per decoded request or response) ---- */

/* n bytes aligned to align (a power of two <= 64) from *ap (created on first
 * use), or NULL when out of memory. hint: the size of a new chunk, when larger. */
void *proto_arena_alloc(mms_arena_t **ap, size_t n, size_t align, size_t hint);
/* A NUL-terminated copy of s[0..n) in the arena, or NULL. */
char *proto_arena_strndup(mms_arena_t **ap, const char *s, size_t n);
/* Free every chunk and the arena; *ap = NULL. NULL *ap is a no-op. */
void proto_arena_destroy(mms_arena_t **ap);

/* ---- decoding ---- */

/* Format a message into err[0..errlen) (err may be NULL) and return code. */
int proto_seterr(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Printable copy of untrusted bytes for a message (at most 48, '?' for the rest). */
const char *proto_printable(const char *p, size_t n, char *buf, size_t cap);
/* "nil", "int", "str", ... for messages. */
const char *proto_obj_type_name(const msgpack_object *o);
/* Parse the whole payload buf[0..len) as one MessagePack map, refusing more
 * than max_values values before msgpack-c allocates; MMS_PERR_OK or a code. */
int proto_unpack_one(const void *buf, size_t len, size_t max_values, msgpack_unpacked *res,
                     char *err, size_t errlen);

static inline int proto_obj_str_eq(const msgpack_object *o, const char *s) {
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n && !memcmp(o->via.str.ptr, s, n);
}

static inline int proto_obj_is_number(const msgpack_object *o) {
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
           o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64;
}

static inline double proto_obj_number(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return (double)o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return (double)o->via.i64;
    default: return o->via.f64;
    }
}

/* ---- encoding ---- */

/* A string (NULL as ""); msgpack's nonzero on failure. */
int proto_pack_cstr(msgpack_packer *pk, const char *s);
/* dim float32 as a bin of little-endian bytes. */
int proto_pack_vec(msgpack_packer *pk, const float *v, int dim);
/* Reserve the 4-byte length prefix at *start; nonzero when out of memory. */
int proto_frame_begin(msgpack_sbuffer *sb, size_t *start);
/* Fill the prefix of the frame at start, or (rc != 0, or too large) cut sb
 * back to start and fail; what names the message in the error. */
mms_status proto_frame_end(msgpack_sbuffer *sb, size_t start, int rc, const char *what);

#endif
