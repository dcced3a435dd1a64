/* protocol_request.c: requests (protocol.h, "requests"): defaults, the decoder
 * that runs on bytes from the network (every field checked for type, range and
 * length, in a fixed order, with a message naming the field; never a
 * half-valid request), and the encoder the client uses.
 *
 * Does not: check what needs the index (vector widths, known tags, whether a
 * JPEG decodes: the engine's job), or frame and unpack bytes itself (protocol.c).
 */
#include "protocol.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol_internal.h"

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
    proto_arena_destroy(&r->arena_);
    mms_request_init(r);
}

enum {
    F_ID, F_OP, F_IMAGE, F_IMAGE_KNN, F_JPEG, F_TAGS, F_VISUAL, F_K, F_NEIGHBORS, F_EXCLUDE,
    F_TAG_K, F_PREDICT_TAGS, F_CONNECT, F_CONCEPT, F_NEGATIVE_TAGS, F_AUTH, F_NPROBE, F_EXACT,
    F_COUNT
};
static const char *const k_req_fields[F_COUNT] = {
    "id", "op", "image", "image_knn", "jpeg", "tags", "visual", "k", "neighbors", "exclude",
    "tag_k", "predict_tags", "connect", "concept", "negative_tags", "auth", "nprobe", "exact"};

/* An integer field in [lo, hi]; range failures give range_code. */
static int get_int_field(const msgpack_object *o, const char *name, int64_t lo, int64_t hi,
                         int range_code, int *out, char *err, size_t errlen) {
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)hi)
            return proto_seterr(err, errlen, range_code, "'%s' is %llu, must be in [%lld, %lld]",
                                name, (unsigned long long)o->via.u64, (long long)lo, (long long)hi);
        if ((int64_t)o->via.u64 < lo)
            return proto_seterr(err, errlen, range_code, "'%s' is %llu, must be in [%lld, %lld]",
                                name, (unsigned long long)o->via.u64, (long long)lo, (long long)hi);
        *out = (int)o->via.u64;
        return MMS_PERR_OK;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return proto_seterr(err, errlen, range_code, "'%s' is %lld, must be in [%lld, %lld]", name,
                            (long long)o->via.i64, (long long)lo, (long long)hi);
    return proto_seterr(err, errlen, MMS_PERR_FIELD_TYPE, "'%s' must be an integer, got %s", name,
                        proto_obj_type_name(o));
}

/* A bounded string without NUL bytes, copied into the arena. */
static int get_str_field(const msgpack_object *o, const char *what, mms_arena_t **ap,
                         const char **out, char *err, size_t errlen) {
    if (o->type != MSGPACK_OBJECT_STR)
        return proto_seterr(err, errlen, MMS_PERR_FIELD_TYPE, "%s must be a string, got %s", what,
                            proto_obj_type_name(o));
    size_t n = o->via.str.size;
    if (n == 0) return proto_seterr(err, errlen, MMS_PERR_INVALID, "%s is an empty string", what);
    if (n > MMS_PROTO_MAX_STR)
        return proto_seterr(err, errlen, MMS_PERR_INVALID, "%s is %zu bytes long (limit %d)", what,
                            n, MMS_PROTO_MAX_STR);
    if (memchr(o->via.str.ptr, 0, n))
        return proto_seterr(err, errlen, MMS_PERR_INVALID, "%s contains a NUL byte", what);
    char *s = proto_arena_strndup(ap, o->via.str.ptr, n);
    if (!s) return proto_seterr(err, errlen, MMS_PERR_INTERNAL, "out of memory decoding %s", what);
    *out = s;
    return MMS_PERR_OK;
}

/* A little-endian float32 vector from a bin, copied to a 64-byte aligned buffer. */
static int get_vec_field(const msgpack_object *o, const char *name, mms_arena_t **ap,
                         const float **out, int *dim, char *err, size_t errlen) {
    if (o->type != MSGPACK_OBJECT_BIN)
        return proto_seterr(err, errlen, MMS_PERR_FIELD_TYPE,
                            "'%s' must be bin (little-endian float32 bytes), got %s", name,
                            proto_obj_type_name(o));
    size_t n = o->via.bin.size;
    if (n == 0 || n % 4 != 0)
        return proto_seterr(err, errlen, MMS_PERR_VECTOR_LENGTH,
                            "'%s' has %zu bytes, not a positive multiple of 4 (float32)", name, n);
    if (n / 4 > (size_t)INT_MAX)
        return proto_seterr(err, errlen, MMS_PERR_VECTOR_LENGTH, "'%s' is too long", name);
    float *v = proto_arena_alloc(ap, n, 64, 0);
    if (!v)
        return proto_seterr(err, errlen, MMS_PERR_INTERNAL, "out of memory decoding '%s'", name);
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
            return proto_seterr(err, errlen, MMS_PERR_NON_FINITE, "'%s'[%zu] is %s", name, i,
                                isnan(v[i]) ? "NaN" : "Inf");
    *out = v;
    *dim = (int)(n / 4);
    return MMS_PERR_OK;
}

/* The value of each known key into f (NULL when absent or nil); *dup gets the
 * first known key given twice (-1: none), refused by the caller once the id is
 * known. Fails on a key that is not a string. */
static int collect_fields(const msgpack_object_map *mp, const msgpack_object **f, int *dup,
                          char *err, size_t errlen) {
    for (uint32_t i = 0; i < mp->size; i++) {
        const msgpack_object *k = &mp->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            return proto_seterr(err, errlen, MMS_PERR_MALFORMED, "map key %u is a %s, not a string",
                                i, proto_obj_type_name(k));
        for (int j = 0; j < F_COUNT; j++) {
            if (!proto_obj_str_eq(k, k_req_fields[j])) continue;
            if (f[j] && *dup < 0) *dup = j;
            f[j] = &mp->ptr[i].val;
        }
    }
    /* nil is the same as absent */
    for (int j = 0; j < F_COUNT; j++)
        if (f[j] && f[j]->type == MSGPACK_OBJECT_NIL) f[j] = NULL;
    return MMS_PERR_OK;
}

/* op, and the counts: k, neighbors, tag_k, predict_tags. */
static int decode_op_and_counts(const msgpack_object *const *f, mms_request_t *r, char *err,
                                size_t errlen) {
    char pb[64];
    int c;
    if (f[F_OP]) {
        const msgpack_object *o = f[F_OP];
        if (o->type != MSGPACK_OBJECT_STR)
            return proto_seterr(err, errlen, MMS_PERR_FIELD_TYPE, "'op' must be a string, got %s",
                                proto_obj_type_name(o));
        int found = -1;
        for (int j = 0; j < MMS_OP_COUNT; j++)
            if (proto_obj_str_eq(o, mms_op_name((mms_op)j))) found = j;
        if (found < 0)
            return proto_seterr(err, errlen, MMS_PERR_UNSUPPORTED,
                                "unknown op '%s' (search, predict_tags, info, ping, reload)",
                                proto_printable(o->via.str.ptr, o->via.str.size, pb, sizeof pb));
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
    if (f[F_NPROBE] && (c = get_int_field(f[F_NPROBE], "nprobe", 1, MMS_PROTO_NPROBE_MAX,
                                          MMS_PERR_K_RANGE, &r->nprobe, err, errlen)))
        return c;
    if (f[F_EXACT]) {
        if (f[F_EXACT]->type != MSGPACK_OBJECT_BOOLEAN)
            return proto_seterr(err, errlen, MMS_PERR_FIELD_TYPE, "'exact' must be a bool, got %s",
                                proto_obj_type_name(f[F_EXACT]));
        r->exact = f[F_EXACT]->via.boolean ? 1 : -1;
    }
    if (f[F_PREDICT_TAGS]) {
        if (f[F_PREDICT_TAGS]->type != MSGPACK_OBJECT_BOOLEAN)
            return proto_seterr(err, errlen, MMS_PERR_FIELD_TYPE,
                                "'predict_tags' must be a bool, got %s",
                                proto_obj_type_name(f[F_PREDICT_TAGS]));
        r->predict_tags = f[F_PREDICT_TAGS]->via.boolean ? 1 : 0;
    }
    return MMS_PERR_OK;
}

/* How the query is fused and connected: visual, connect, concept. */
static int decode_modes(const msgpack_object *const *f, mms_request_t *r, char *err,
                        size_t errlen) {
    char pb[64];
    if (f[F_VISUAL]) {
        if (!proto_obj_is_number(f[F_VISUAL]))
            return proto_seterr(err, errlen, MMS_PERR_FIELD_TYPE,
                                "'visual' must be a number, got %s",
                                proto_obj_type_name(f[F_VISUAL]));
        double v = proto_obj_number(f[F_VISUAL]);
        if (!(v >= 0.0 && v <= 1.0))
            return proto_seterr(err, errlen, MMS_PERR_VISUAL_RANGE,
                                "'visual' is %g, must be in [0, 1]", v);
        r->visual = (float)v;
        r->visual_given = 1;
    }
    if (f[F_CONNECT]) {
        const msgpack_object *o = f[F_CONNECT];
        if (o->type != MSGPACK_OBJECT_STR)
            return proto_seterr(err, errlen, MMS_PERR_FIELD_TYPE,
                                "'connect' must be a string, got %s", proto_obj_type_name(o));
        int found = -1;
        for (int j = 0; j < 3; j++)
            if (proto_obj_str_eq(o, mms_connect_name(j))) found = j;
        if (found < 0)
            return proto_seterr(err, errlen, MMS_PERR_INVALID,
                                "'connect' is '%s' (image, tags or both)",
                                proto_printable(o->via.str.ptr, o->via.str.size, pb, sizeof pb));
        r->connect = found;
    }
    if (f[F_CONCEPT]) {
        const msgpack_object *o = f[F_CONCEPT];
        if (o->type != MSGPACK_OBJECT_STR)
            return proto_seterr(err, errlen, MMS_PERR_FIELD_TYPE,
                                "'concept' must be a string, got %s", proto_obj_type_name(o));
        int found = -1;
        for (int j = 0; j < 2; j++)
            if (proto_obj_str_eq(o, mms_concept_name(j))) found = j;
        if (found < 0)
            return proto_seterr(err, errlen, MMS_PERR_INVALID, "'concept' is '%s' (tags or node)",
                                proto_printable(o->via.str.ptr, o->via.str.size, pb, sizeof pb));
        r->concept = found;
    }
    return MMS_PERR_OK;
}

/* An array of at most MMS_PROTO_MAX_TAGS strings (tags, negative_tags), copied
 * into the arena; an empty array leaves *out NULL and *n 0. */
static int get_str_array(const msgpack_object *o, const char *name, mms_arena_t **arena,
                         const char *const **out, int *n_out, char *err, size_t errlen) {
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return proto_seterr(err, errlen, MMS_PERR_FIELD_TYPE, "'%s' must be an array of strings, got %s",
                            name, proto_obj_type_name(o));
    uint32_t n = o->via.array.size;
    if (n > MMS_PROTO_MAX_TAGS)
        return proto_seterr(err, errlen, MMS_PERR_INVALID, "'%s' has %u entries (limit %d)", name, n,
                            MMS_PROTO_MAX_TAGS);
    if (n == 0) return MMS_PERR_OK;
    const char **t = proto_arena_alloc(arena, n * sizeof *t, sizeof(void *), 0);
    if (!t) return proto_seterr(err, errlen, MMS_PERR_INTERNAL, "out of memory decoding '%s'", name);
    for (uint32_t i = 0; i < n; i++) {
        char what[48];
        snprintf(what, sizeof what, "'%s'[%u]", name, i);
        int c = get_str_field(&o->via.array.ptr[i], what, arena, &t[i], err, errlen);
        if (c) return c;
    }
    *out = t;
    *n_out = (int)n;
    return MMS_PERR_OK;
}

/* The strings, copied into the arena: auth, exclude, tags, negative_tags. The
 * token's value never appears in a message. */
static int decode_strings(const msgpack_object *const *f, mms_request_t *r, char *err,
                          size_t errlen) {
    int c;
    if (f[F_AUTH] &&
        (c = get_str_field(f[F_AUTH], "'auth'", &r->arena_, &r->auth, err, errlen)))
        return c;
    if (f[F_EXCLUDE] && (c = get_str_field(f[F_EXCLUDE], "'exclude'", &r->arena_, &r->exclude,
                                           err, errlen)))
        return c;
    if (f[F_TAGS] && (c = get_str_array(f[F_TAGS], "tags", &r->arena_, &r->tags, &r->ntags,
                                        err, errlen)))
        return c;
    if (f[F_NEGATIVE_TAGS] &&
        (c = get_str_array(f[F_NEGATIVE_TAGS], "negative_tags", &r->arena_, &r->negative_tags,
                           &r->nnegative_tags, err, errlen)))
        return c;
    return MMS_PERR_OK;
}

/* The query's inputs, copied into the arena: image, image_knn, jpeg. */
static int decode_inputs(const msgpack_object *const *f, mms_request_t *r, char *err,
                         size_t errlen) {
    int c;
    if (f[F_IMAGE] && (c = get_vec_field(f[F_IMAGE], "image", &r->arena_, &r->image,
                                         &r->image_dim, err, errlen)))
        return c;
    if (f[F_IMAGE_KNN] && (c = get_vec_field(f[F_IMAGE_KNN], "image_knn", &r->arena_,
                                             &r->image_knn, &r->image_knn_dim, err, errlen)))
        return c;
    if (f[F_JPEG]) {
        const msgpack_object *o = f[F_JPEG];
        if (o->type != MSGPACK_OBJECT_BIN)
            return proto_seterr(err, errlen, MMS_PERR_FIELD_TYPE, "'jpeg' must be bin, got %s",
                                proto_obj_type_name(o));
        const unsigned char *b = (const unsigned char *)o->via.bin.ptr;
        size_t n = o->via.bin.size;
        if (n < 3 || b[0] != 0xFF || b[1] != 0xD8 || b[2] != 0xFF)
            return proto_seterr(err, errlen, MMS_PERR_JPEG,
                                "'jpeg' is not a JPEG file (%zu bytes, no SOI marker)", n);
        uint8_t *d = proto_arena_alloc(&r->arena_, n, 1, 0);
        if (!d)
            return proto_seterr(err, errlen, MMS_PERR_INTERNAL, "out of memory decoding 'jpeg'");
        memcpy(d, b, n);
        r->jpeg = d;
        r->jpeg_len = n;
    }
    return MMS_PERR_OK;
}

/* Rules across fields, and the defaults that depend on which inputs came. */
static int check_request(mms_request_t *r, char *err, size_t errlen) {
    if (r->image && r->jpeg)
        return proto_seterr(err, errlen, MMS_PERR_INVALID, "give 'image' or 'jpeg', not both");
    if (r->image_knn && !r->image)
        return proto_seterr(err, errlen, MMS_PERR_INVALID, "'image_knn' is only used with 'image'");
    int has_image = r->image || r->jpeg;
    if (r->op == MMS_OP_SEARCH && !has_image && r->ntags == 0)
        return proto_seterr(err, errlen, MMS_PERR_NO_INPUT,
                            r->nnegative_tags ? "'negative_tags' alone is no query: give 'image', 'jpeg' or 'tags'"
                                              : "a search needs 'image', 'jpeg' or 'tags' (none given)");
    if (r->op == MMS_OP_PREDICT_TAGS) {
        if (!has_image)
            return proto_seterr(err, errlen, MMS_PERR_NO_INPUT,
                                "predict_tags needs 'image' or 'jpeg'");
        r->predict_tags = 1;
    }
    int concept = r->ntags > 0 || r->nnegative_tags > 0;
    if (!r->visual_given) r->visual = has_image && concept ? 0.5f : has_image ? 1.0f : 0.0f;
    return MMS_PERR_OK;
}

/* One request map into r: the fields in a fixed order (the first wrong field
 * of that order is the one reported), then the cross-field rules. */
static int decode_request_map(const msgpack_object_map *mp, size_t len, mms_request_t *r,
                              uint64_t *id_out, char *err, size_t errlen) {
    const msgpack_object *f[F_COUNT] = {0};
    int dup = -1, c;
    if ((c = collect_fields(mp, f, &dup, err, errlen))) return c;
    if (f[F_ID]) {
        if (f[F_ID]->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return proto_seterr(
                err, errlen, MMS_PERR_FIELD_TYPE, "'id' must be an unsigned integer, got %s%s",
                proto_obj_type_name(f[F_ID]),
                f[F_ID]->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? " (negative)" : "");
        r->id = f[F_ID]->via.u64;
        if (id_out) *id_out = r->id;
    }
    if (dup >= 0)
        return proto_seterr(err, errlen, MMS_PERR_INVALID, "duplicate key '%s'", k_req_fields[dup]);
    /* the first chunk holds the whole request in the common case */
    if (!proto_arena_alloc(&r->arena_, 0, 1, len + 512))
        return proto_seterr(err, errlen, MMS_PERR_INTERNAL, "out of memory decoding a request");
    if ((c = decode_op_and_counts(f, r, err, errlen))) return c;
    if ((c = decode_modes(f, r, err, errlen))) return c;
    if ((c = decode_strings(f, r, err, errlen))) return c;
    if ((c = decode_inputs(f, r, err, errlen))) return c;
    return check_request(r, err, errlen);
}

int mms_request_decode(const void *buf, size_t len, mms_request_t *out, uint64_t *id_out,
                       char *err, size_t errlen) {
    mms_request_init(out);
    if (id_out) *id_out = 0;
    if (err && errlen) err[0] = '\0';
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    int c = proto_unpack_one(buf, len, MMS_PROTO_MAX_VALUES, &res, err, errlen);
    if (c == MMS_PERR_OK) c = decode_request_map(&res.data.via.map, len, out, id_out, err, errlen);
    msgpack_unpacked_destroy(&res);
    if (c != MMS_PERR_OK) {
        uint64_t id = out->id;
        mms_request_free(out);
        if (id_out) *id_out = id;
    }
    return c;
}


mms_status mms_request_encode(const mms_request_t *r, msgpack_sbuffer *sb) {
    MMS_CHECK(mms_connect_name(r->connect), MMS_ERR_ARG,
              "request: connect %d is not image, tags or both", r->connect);
    MMS_CHECK(mms_concept_name(r->concept), MMS_ERR_ARG, "request: concept %d is not tags or node",
              r->concept);
    size_t start;
    MMS_CHECK(proto_frame_begin(sb, &start) == 0, MMS_ERR_NOMEM,
              "out of memory encoding a request");
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int has_image = r->image && r->image_dim > 0, has_knn = r->image_knn && r->image_knn_dim > 0;
    int has_jpeg = r->jpeg && r->jpeg_len > 0, has_tags = r->tags && r->ntags > 0;
    int has_neg = r->negative_tags && r->nnegative_tags > 0;
    uint32_t n = 6 + (uint32_t)has_image + (uint32_t)has_knn + (uint32_t)has_jpeg +
                 (uint32_t)has_tags + (uint32_t)(r->visual_given != 0) +
                 (uint32_t)(r->exclude != NULL) + (uint32_t)(r->predict_tags != 0) +
                 (uint32_t)(r->connect != MMS_CONNECT_IMAGE) +
                 (uint32_t)(r->concept != MMS_CONCEPT_TAGS) + (uint32_t)has_neg +
                 (uint32_t)(r->auth != NULL) + (uint32_t)(r->nprobe > 0) + (uint32_t)(r->exact != 0);
    int rc = msgpack_pack_map(&pk, n);
    rc |= proto_pack_cstr(&pk, "id") | msgpack_pack_uint64(&pk, r->id);
    rc |= proto_pack_cstr(&pk, "op") | proto_pack_cstr(&pk, mms_op_name(r->op));
    rc |= proto_pack_cstr(&pk, "k") | msgpack_pack_int(&pk, r->k);
    rc |= proto_pack_cstr(&pk, "neighbors") | msgpack_pack_int(&pk, r->neighbors);
    rc |= proto_pack_cstr(&pk, "tag_k") | msgpack_pack_int(&pk, r->tag_k);
    rc |= proto_pack_cstr(&pk, "v") | msgpack_pack_int(&pk, MMS_PROTO_VERSION);
    if (has_image)
        rc |= proto_pack_cstr(&pk, "image") | proto_pack_vec(&pk, r->image, r->image_dim);
    if (has_knn)
        rc |=
            proto_pack_cstr(&pk, "image_knn") | proto_pack_vec(&pk, r->image_knn, r->image_knn_dim);
    if (has_jpeg)
        rc |= proto_pack_cstr(&pk, "jpeg") | msgpack_pack_bin(&pk, r->jpeg_len) |
              msgpack_pack_bin_body(&pk, r->jpeg, r->jpeg_len);
    if (has_tags) {
        rc |= proto_pack_cstr(&pk, "tags") | msgpack_pack_array(&pk, (size_t)r->ntags);
        for (int i = 0; i < r->ntags; i++) rc |= proto_pack_cstr(&pk, r->tags[i]);
    }
    if (has_neg) {
        rc |= proto_pack_cstr(&pk, "negative_tags") | msgpack_pack_array(&pk, (size_t)r->nnegative_tags);
        for (int i = 0; i < r->nnegative_tags; i++) rc |= proto_pack_cstr(&pk, r->negative_tags[i]);
    }
    if (r->visual_given) rc |= proto_pack_cstr(&pk, "visual") | msgpack_pack_double(&pk, r->visual);
    if (r->exclude) rc |= proto_pack_cstr(&pk, "exclude") | proto_pack_cstr(&pk, r->exclude);
    if (r->predict_tags) rc |= proto_pack_cstr(&pk, "predict_tags") | msgpack_pack_true(&pk);
    if (r->connect != MMS_CONNECT_IMAGE)
        rc |= proto_pack_cstr(&pk, "connect") | proto_pack_cstr(&pk, mms_connect_name(r->connect));
    if (r->concept != MMS_CONCEPT_TAGS)
        rc |= proto_pack_cstr(&pk, "concept") | proto_pack_cstr(&pk, mms_concept_name(r->concept));
    if (r->nprobe > 0) rc |= proto_pack_cstr(&pk, "nprobe") | msgpack_pack_int(&pk, r->nprobe);
    if (r->exact == 1) rc |= proto_pack_cstr(&pk, "exact") | msgpack_pack_true(&pk);
    if (r->exact == -1) rc |= proto_pack_cstr(&pk, "exact") | msgpack_pack_false(&pk);
    if (r->auth) rc |= proto_pack_cstr(&pk, "auth") | proto_pack_cstr(&pk, r->auth);
    return proto_frame_end(sb, start, rc, "request");
}
