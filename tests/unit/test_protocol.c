/* test_protocol.c: the query wire protocol (coordinator/protocol.h): request
 * and response encode/decode round trips, defaults, every error code the
 * decoder produces (with the field named in the message and the id echoed),
 * unaligned payloads, framing, the hello. */
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mms_log.h"
#include "mms_test.h"
#include "protocol.h"

/* ---- helpers: hand-made request maps ------------------------------------ */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mp_t;

static void mp_begin(mp_t *m, uint32_t nfields) {
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&m->pk, nfields);
}
static void mp_str(mp_t *m, const char *s) {
    msgpack_pack_str(&m->pk, strlen(s));
    msgpack_pack_str_body(&m->pk, s, strlen(s));
}
static void mp_key(mp_t *m, const char *k) { mp_str(m, k); }
static void mp_bin(mp_t *m, const void *p, size_t n) {
    msgpack_pack_bin(&m->pk, n);
    msgpack_pack_bin_body(&m->pk, p, n);
}

/* Decode m's payload; returns the code, message in g_err, id in g_id. */
static char g_err[512];
static uint64_t g_id;
static int decode_mp(mp_t *m, mms_request_t *r) {
    int c = mms_request_decode(m->sb.data, m->sb.size, r, &g_id, g_err, sizeof g_err);
    msgpack_sbuffer_destroy(&m->sb);
    return c;
}

/* A request map with one field under test plus "tags": ["x"] (so it has input). */
#define ONE_FIELD(code_expected, msg_part, ...)                                       \
    do {                                                                              \
        mp_t m_;                                                                      \
        mp_begin(&m_, 3);                                                             \
        mp_key(&m_, "id");                                                            \
        msgpack_pack_uint64(&m_.pk, 77);                                              \
        mp_key(&m_, "tags");                                                          \
        msgpack_pack_array(&m_.pk, 1);                                                \
        mp_str(&m_, "x");                                                             \
        { __VA_ARGS__; }                                                              \
        mms_request_t r_;                                                             \
        int c_ = decode_mp(&m_, &r_);                                                 \
        T_EQ_INT(c_, (code_expected));                                                \
        if (c_ != MMS_PERR_OK) {                                                      \
            T_EQ_INT(g_id, 77);                                                       \
            if (!strstr(g_err, (msg_part)))                                           \
                fprintf(stderr, "  message '%s' lacks '%s'\n", g_err, (msg_part));    \
            T_CHECK(strstr(g_err, (msg_part)) != NULL);                               \
            T_CHECK(r_.arena_ == NULL && r_.tags == NULL);                            \
        }                                                                             \
        mms_request_free(&r_);                                                        \
    } while (0)

/* Round trip through a frame: encode, peek, decode. */
static int roundtrip(const mms_request_t *in, mms_request_t *out) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    T_OK(mms_request_encode(in, &sb));
    size_t plen = 0;
    T_EQ_INT(mms_frame_peek(sb.data, sb.size, MMS_PROTO_MAX_FRAME_DEFAULT, &plen), 1);
    T_EQ_INT(plen + 4, sb.size);
    T_EQ_INT(mms_frame_peek(sb.data, sb.size - 1, MMS_PROTO_MAX_FRAME_DEFAULT, &plen), 0);
    int c = mms_request_decode(sb.data + 4, plen, out, NULL, g_err, sizeof g_err);
    if (c) fprintf(stderr, "  decode: %s\n", g_err);
    msgpack_sbuffer_destroy(&sb);
    return c;
}

static void test_request_roundtrip(void) {
    float img[8], knn[4];
    for (int i = 0; i < 8; i++) img[i] = 0.25f * (float)i - 1.0f;
    for (int i = 0; i < 4; i++) knn[i] = 1e-30f * (float)(i + 1);
    const char *tags[] = {"white background", "studio", "caf\xc3\xa9"};
    mms_request_t q, d;
    mms_request_init(&q);
    q.id = 0xFFFFFFFFFFFFull;
    q.op = MMS_OP_SEARCH;
    q.image = img;
    q.image_dim = 8;
    q.image_knn = knn;
    q.image_knn_dim = 4;
    q.tags = tags;
    q.ntags = 3;
    q.visual = 0.3f;
    q.visual_given = 1;
    q.k = 7;
    q.neighbors = 3;
    q.exclude = "img00042";
    q.tag_k = 4;
    q.predict_tags = 1;
    q.connect = MMS_CONNECT_BOTH;
    q.concept = MMS_CONCEPT_NODE;
    const char *neg[] = {"computer", "night sky"};
    q.negative_tags = neg;
    q.nnegative_tags = 2;
    q.auth = "s3cret token";
    T_EQ_INT(roundtrip(&q, &d), MMS_PERR_OK);
    T_STREQ(d.auth, "s3cret token");
    T_EQ_INT(d.nnegative_tags, 2);
    if (d.nnegative_tags == 2)
        for (int i = 0; i < 2; i++) T_STREQ(d.negative_tags[i], neg[i]);
    T_CHECK(d.id == q.id);
    T_EQ_INT(d.op, MMS_OP_SEARCH);
    T_EQ_INT(d.image_dim, 8);
    T_CHECK(d.image && ((uintptr_t)d.image % 64) == 0);
    T_CHECK(d.image && !memcmp(d.image, img, sizeof img));
    T_EQ_INT(d.image_knn_dim, 4);
    T_CHECK(d.image_knn && ((uintptr_t)d.image_knn % 64) == 0);
    T_CHECK(d.image_knn && !memcmp(d.image_knn, knn, sizeof knn));
    T_EQ_INT(d.ntags, 3);
    if (d.ntags == 3)
        for (int i = 0; i < 3; i++) T_STREQ(d.tags[i], tags[i]);
    T_NEAR(d.visual, 0.3, 1e-7);
    T_EQ_INT(d.visual_given, 1);
    T_EQ_INT(d.k, 7);
    T_EQ_INT(d.neighbors, 3);
    T_STREQ(d.exclude, "img00042");
    T_EQ_INT(d.tag_k, 4);
    T_EQ_INT(d.predict_tags, 1);
    T_EQ_INT(d.connect, MMS_CONNECT_BOTH);
    T_EQ_INT(d.concept, MMS_CONCEPT_NODE);
    T_CHECK(d.jpeg == NULL);
    mms_request_free(&d);
    T_CHECK(d.arena_ == NULL && d.image == NULL && d.k == MMS_PROTO_K_DEFAULT);
    mms_request_free(&d); /* twice is fine */

    /* jpeg + predict_tags op */
    static const uint8_t jpg[] = {0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9};
    mms_request_init(&q);
    q.op = MMS_OP_PREDICT_TAGS;
    q.jpeg = jpg;
    q.jpeg_len = sizeof jpg;
    q.tag_k = 9;
    T_EQ_INT(roundtrip(&q, &d), MMS_PERR_OK);
    T_EQ_INT(d.op, MMS_OP_PREDICT_TAGS);
    T_EQ_INT(d.jpeg_len, sizeof jpg);
    T_CHECK(d.jpeg && !memcmp(d.jpeg, jpg, sizeof jpg));
    T_EQ_INT(d.predict_tags, 1); /* implied by the op */
    T_EQ_INT(d.tag_k, 9);
    T_NEAR(d.visual, 1.0, 0);
    T_EQ_INT(d.visual_given, 0);
    T_EQ_INT(d.concept, MMS_CONCEPT_TAGS); /* absent: the paper's mean of tag embeddings */
    mms_request_free(&d);
    q.concept = 2; /* the encoder refuses what the wire cannot say */
    msgpack_sbuffer sbx;
    msgpack_sbuffer_init(&sbx);
    mms_log_set_level(MMS_LOG_QUIET);
    T_FAILS(mms_request_encode(&q, &sbx), MMS_ERR_ARG);
    mms_log_set_level(MMS_LOG_WARN);
    msgpack_sbuffer_destroy(&sbx);

    /* info and ping need no input */
    mms_request_init(&q);
    q.op = MMS_OP_INFO;
    T_EQ_INT(roundtrip(&q, &d), MMS_PERR_OK);
    T_EQ_INT(d.op, MMS_OP_INFO);
    mms_request_free(&d);
    q.op = MMS_OP_PING;
    q.id = 5;
    T_EQ_INT(roundtrip(&q, &d), MMS_PERR_OK);
    T_EQ_INT(d.op, MMS_OP_PING);
    T_EQ_INT(d.id, 5);
    mms_request_free(&d);
    /* reload: no input, no path (the server re-resolves its own --index), and
     * the token travels as with any op */
    mms_request_init(&q);
    q.op = MMS_OP_RELOAD;
    q.id = 6;
    q.auth = "s3cret";
    T_EQ_INT(roundtrip(&q, &d), MMS_PERR_OK);
    T_EQ_INT(d.op, MMS_OP_RELOAD);
    T_EQ_INT(d.id, 6);
    T_STREQ(d.auth, "s3cret");
    T_CHECK(d.image == NULL && d.ntags == 0 && d.jpeg == NULL);
    mms_request_free(&d);
    T_STREQ(mms_op_name(MMS_OP_RELOAD), "reload");
    T_STREQ(mms_op_name((mms_op)MMS_OP_COUNT), "unknown");

    /* a large vector survives */
    int big = 100000;
    float *v = malloc((size_t)big * sizeof *v);
    for (int i = 0; i < big; i++) v[i] = (float)i * 0.5f;
    mms_request_init(&q);
    q.image = v;
    q.image_dim = big;
    T_EQ_INT(roundtrip(&q, &d), MMS_PERR_OK);
    T_EQ_INT(d.image_dim, big);
    T_CHECK(d.image && !memcmp(d.image, v, (size_t)big * sizeof *v));
    mms_request_free(&d);
    free(v);
}

static void test_request_defaults(void) {
    float img[3] = {1, 2, 3};
    const char *tags[] = {"a"};
    mms_request_t q, d;
    /* image only: visual 1 */
    mms_request_init(&q);
    q.image = img;
    q.image_dim = 3;
    T_EQ_INT(roundtrip(&q, &d), MMS_PERR_OK);
    T_NEAR(d.visual, 1.0, 0);
    T_EQ_INT(d.k, 10);
    T_EQ_INT(d.neighbors, 5);
    T_EQ_INT(d.tag_k, 5);
    T_EQ_INT(d.predict_tags, 0);
    T_CHECK(d.exclude == NULL && d.tags == NULL && d.ntags == 0 && d.image_knn == NULL);
    T_CHECK(d.auth == NULL);
    mms_request_free(&d);
    /* tags only: visual 0 */
    mms_request_init(&q);
    q.tags = tags;
    q.ntags = 1;
    T_EQ_INT(roundtrip(&q, &d), MMS_PERR_OK);
    T_NEAR(d.visual, 0.0, 0);
    T_CHECK(d.image == NULL);
    mms_request_free(&d);
    /* both: 0.5 */
    q.image = img;
    q.image_dim = 3;
    T_EQ_INT(roundtrip(&q, &d), MMS_PERR_OK);
    T_NEAR(d.visual, 0.5, 0);
    T_EQ_INT(d.visual_given, 0);
    mms_request_free(&d);
    /* an image and negative keywords only: a conceptual side, so 0.5 too */
    const char *negs[] = {"b"};
    q.tags = NULL;
    q.ntags = 0;
    q.negative_tags = negs;
    q.nnegative_tags = 1;
    T_EQ_INT(roundtrip(&q, &d), MMS_PERR_OK);
    T_NEAR(d.visual, 0.5, 0);
    T_EQ_INT(d.nnegative_tags, 1);
    mms_request_free(&d);
    /* negative keywords alone are no query */
    q.image = NULL;
    q.image_dim = 0;
    T_EQ_INT(roundtrip(&q, &d), MMS_PERR_NO_INPUT);
    T_CHECK(strstr(g_err, "'negative_tags' alone") != NULL);
    mms_request_free(&d);

    /* minimal hand-made map: only tags; op absent = search; id absent = 0;
     * unknown fields ignored, nil = absent, ints accepted for visual */
    mp_t m;
    mp_begin(&m, 6);
    mp_key(&m, "tags");
    msgpack_pack_array(&m.pk, 1);
    mp_str(&m, "sky");
    mp_key(&m, "future_field");
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "x");
    msgpack_pack_array(&m.pk, 0);
    mp_key(&m, "k");
    msgpack_pack_nil(&m.pk);
    mp_key(&m, "visual");
    msgpack_pack_int(&m.pk, 1);
    msgpack_pack_int(&m.pk, 12345); /* an integer key that is not a field name */
    msgpack_pack_int(&m.pk, 1);
    mp_key(&m, "exclude");
    msgpack_pack_nil(&m.pk);
    T_EQ_INT(decode_mp(&m, &d), MMS_PERR_MALFORMED); /* non-string key is refused */
    T_CHECK(strstr(g_err, "key 4") != NULL);
    mms_request_free(&d);

    mp_begin(&m, 5);
    mp_key(&m, "tags");
    msgpack_pack_array(&m.pk, 1);
    mp_str(&m, "sky");
    mp_key(&m, "future_field");
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "x");
    msgpack_pack_array(&m.pk, 0);
    mp_key(&m, "k");
    msgpack_pack_nil(&m.pk);
    mp_key(&m, "visual");
    msgpack_pack_int(&m.pk, 1);
    mp_key(&m, "exclude");
    msgpack_pack_nil(&m.pk);
    T_EQ_INT(decode_mp(&m, &d), MMS_PERR_OK);
    T_EQ_INT(d.id, 0);
    T_EQ_INT(d.op, MMS_OP_SEARCH);
    T_EQ_INT(d.k, 10);
    T_NEAR(d.visual, 1.0, 0);
    T_EQ_INT(d.visual_given, 1);
    T_CHECK(d.exclude == NULL);
    T_EQ_INT(d.ntags, 1);
    mms_request_free(&d);
}

static void test_request_errors(void) {
    float nanv[2] = {1.0f, NAN}, infv[2] = {INFINITY, 0}, ok2[2] = {1, 2};
    /* field_type */
    ONE_FIELD(MMS_PERR_FIELD_TYPE, "'k' must be an integer", mp_key(&m_, "k"); mp_str(&m_, "10"));
    ONE_FIELD(MMS_PERR_FIELD_TYPE, "'k' must be an integer", mp_key(&m_, "k");
              msgpack_pack_double(&m_.pk, 10.0));
    ONE_FIELD(MMS_PERR_FIELD_TYPE, "'image' must be bin", mp_key(&m_, "image");
              mp_str(&m_, "abcd"));
    ONE_FIELD(MMS_PERR_FIELD_TYPE, "'visual' must be a number", mp_key(&m_, "visual");
              mp_str(&m_, "0.5"));
    ONE_FIELD(MMS_PERR_FIELD_TYPE, "'predict_tags' must be a bool", mp_key(&m_, "predict_tags");
              msgpack_pack_int(&m_.pk, 1));
    ONE_FIELD(MMS_PERR_FIELD_TYPE, "'op' must be a string", mp_key(&m_, "op");
              msgpack_pack_int(&m_.pk, 0));
    ONE_FIELD(MMS_PERR_FIELD_TYPE, "'exclude' must be a string", mp_key(&m_, "exclude");
              msgpack_pack_int(&m_.pk, 3));
    ONE_FIELD(MMS_PERR_FIELD_TYPE, "'jpeg' must be bin", mp_key(&m_, "jpeg");
              msgpack_pack_array(&m_.pk, 0));
    ONE_FIELD(MMS_PERR_FIELD_TYPE, "'concept' must be a string", mp_key(&m_, "concept");
              msgpack_pack_int(&m_.pk, 1));
    ONE_FIELD(MMS_PERR_INVALID, "'concept' is 'nodes' (tags or node)", mp_key(&m_, "concept");
              mp_str(&m_, "nodes"));
    /* vector_length */
    ONE_FIELD(MMS_PERR_VECTOR_LENGTH, "'image' has 7 bytes", mp_key(&m_, "image");
              mp_bin(&m_, ok2, 7));
    ONE_FIELD(MMS_PERR_VECTOR_LENGTH, "'image_knn' has 0 bytes", mp_key(&m_, "image_knn");
              mp_bin(&m_, ok2, 0));
    /* non_finite */
    ONE_FIELD(MMS_PERR_NON_FINITE, "'image'[1] is NaN", mp_key(&m_, "image");
              mp_bin(&m_, nanv, sizeof nanv));
    ONE_FIELD(MMS_PERR_NON_FINITE, "'image'[0] is Inf", mp_key(&m_, "image");
              mp_bin(&m_, infv, sizeof infv));
    /* approximate search: nprobe, exact */
    ONE_FIELD(MMS_PERR_K_RANGE, "'nprobe' is 0", mp_key(&m_, "nprobe"); msgpack_pack_int(&m_.pk, 0));
    ONE_FIELD(MMS_PERR_K_RANGE, "'nprobe' is -3", mp_key(&m_, "nprobe"); msgpack_pack_int(&m_.pk, -3));
    ONE_FIELD(MMS_PERR_K_RANGE, "'nprobe' is 65537", mp_key(&m_, "nprobe");
              msgpack_pack_int(&m_.pk, 65537));
    ONE_FIELD(MMS_PERR_FIELD_TYPE, "'nprobe' must be an integer", mp_key(&m_, "nprobe");
              mp_str(&m_, "8"));
    ONE_FIELD(MMS_PERR_FIELD_TYPE, "'exact' must be a bool", mp_key(&m_, "exact");
              msgpack_pack_int(&m_.pk, 1));
    ONE_FIELD(MMS_PERR_OK, "", mp_key(&m_, "nprobe"); msgpack_pack_int(&m_.pk, 65536));
    {
        mms_request_t in, out;
        mms_request_init(&in);
        const char *tg[1] = {"x"};
        in.tags = tg;
        in.ntags = 1;
        in.nprobe = 24;
        in.exact = -1;
        T_EQ_INT(roundtrip(&in, &out), MMS_PERR_OK);
        T_EQ_INT(out.nprobe, 24);
        T_EQ_INT(out.exact, -1);
        mms_request_free(&out);
        in.nprobe = 0;
        in.exact = 1;
        T_EQ_INT(roundtrip(&in, &out), MMS_PERR_OK);
        T_EQ_INT(out.nprobe, 0);
        T_EQ_INT(out.exact, 1);
        mms_request_free(&out);
        in.exact = 0;
        T_EQ_INT(roundtrip(&in, &out), MMS_PERR_OK);
        T_EQ_INT(out.exact, 0);
        mms_request_free(&out);
    }
    /* k_range */
    ONE_FIELD(MMS_PERR_K_RANGE, "'k' is 0", mp_key(&m_, "k"); msgpack_pack_int(&m_.pk, 0));
    ONE_FIELD(MMS_PERR_K_RANGE, "'k' is 10001", mp_key(&m_, "k"); msgpack_pack_int(&m_.pk, 10001));
    ONE_FIELD(MMS_PERR_K_RANGE, "'k' is -3", mp_key(&m_, "k"); msgpack_pack_int(&m_.pk, -3));
    ONE_FIELD(MMS_PERR_K_RANGE, "'k' is 18446744073709551615", mp_key(&m_, "k");
              msgpack_pack_uint64(&m_.pk, UINT64_MAX));
    ONE_FIELD(MMS_PERR_K_RANGE, "'neighbors' is 1001", mp_key(&m_, "neighbors");
              msgpack_pack_int(&m_.pk, 1001));
    ONE_FIELD(MMS_PERR_K_RANGE, "'tag_k' is 0", mp_key(&m_, "tag_k"); msgpack_pack_int(&m_.pk, 0));
    /* visual_range */
    ONE_FIELD(MMS_PERR_VISUAL_RANGE, "'visual' is 1.5", mp_key(&m_, "visual");
              msgpack_pack_double(&m_.pk, 1.5));
    ONE_FIELD(MMS_PERR_VISUAL_RANGE, "'visual' is -0.1", mp_key(&m_, "visual");
              msgpack_pack_float(&m_.pk, -0.1f));
    ONE_FIELD(MMS_PERR_VISUAL_RANGE, "'visual' is nan", mp_key(&m_, "visual");
              msgpack_pack_double(&m_.pk, NAN));
    ONE_FIELD(MMS_PERR_VISUAL_RANGE, "'visual' is 2", mp_key(&m_, "visual");
              msgpack_pack_int(&m_.pk, 2));
    /* jpeg */
    ONE_FIELD(MMS_PERR_JPEG, "not a JPEG", mp_key(&m_, "jpeg"); mp_bin(&m_, "\x89PNG", 4));
    /* unsupported */
    ONE_FIELD(MMS_PERR_UNSUPPORTED, "unknown op 'zebra?'", mp_key(&m_, "op");
              mp_str(&m_, "zebra\x01"));
    /* invalid */
    ONE_FIELD(MMS_PERR_INVALID, "duplicate key 'tags'", mp_key(&m_, "tags");
              msgpack_pack_array(&m_.pk, 0));
    ONE_FIELD(MMS_PERR_INVALID, "'image_knn' is only used with 'image'", mp_key(&m_, "image_knn");
              mp_bin(&m_, ok2, sizeof ok2));
    ONE_FIELD(MMS_PERR_INVALID, "'exclude' is an empty string", mp_key(&m_, "exclude");
              mp_str(&m_, ""));
    ONE_FIELD(MMS_PERR_INVALID, "'auth' is an empty string", mp_key(&m_, "auth"); mp_str(&m_, ""));
    ONE_FIELD(MMS_PERR_FIELD_TYPE, "'auth' must be a string", mp_key(&m_, "auth");
              mp_bin(&m_, "tok", 3));
    ONE_FIELD(MMS_PERR_INVALID, "'auth' contains a NUL byte", mp_key(&m_, "auth");
              msgpack_pack_str(&m_.pk, 3); msgpack_pack_str_body(&m_.pk, "a\0b", 3));
    ONE_FIELD(MMS_PERR_INVALID, "'exclude' contains a NUL byte", mp_key(&m_, "exclude");
              msgpack_pack_str(&m_.pk, 3); msgpack_pack_str_body(&m_.pk, "a\0b", 3));
    {
        char longs[MMS_PROTO_MAX_STR + 2];
        memset(longs, 'a', sizeof longs - 1);
        longs[sizeof longs - 1] = '\0';
        ONE_FIELD(MMS_PERR_INVALID, "is 1025 bytes long", mp_key(&m_, "exclude");
                  mp_str(&m_, longs));
    }

    /* errors that need a map of their own */
    mms_request_t d;
    mp_t m;
    /* image and jpeg together */
    mp_begin(&m, 2);
    mp_key(&m, "image");
    mp_bin(&m, ok2, sizeof ok2);
    mp_key(&m, "jpeg");
    mp_bin(&m, "\xFF\xD8\xFF\xE0", 4);
    T_EQ_INT(decode_mp(&m, &d), MMS_PERR_INVALID);
    T_CHECK(strstr(g_err, "not both") != NULL);
    /* too many tags, an empty tag, a non-string tag */
    mp_begin(&m, 1);
    mp_key(&m, "tags");
    msgpack_pack_array(&m.pk, MMS_PROTO_MAX_TAGS + 1);
    for (int i = 0; i <= MMS_PROTO_MAX_TAGS; i++) mp_str(&m, "t");
    T_EQ_INT(decode_mp(&m, &d), MMS_PERR_INVALID);
    T_CHECK(strstr(g_err, "1025 entries") != NULL);
    mp_begin(&m, 1);
    mp_key(&m, "tags");
    msgpack_pack_array(&m.pk, 2);
    mp_str(&m, "ok");
    mp_str(&m, "");
    T_EQ_INT(decode_mp(&m, &d), MMS_PERR_INVALID);
    T_CHECK(strstr(g_err, "'tags'[1] is an empty string") != NULL);
    mp_begin(&m, 1);
    mp_key(&m, "tags");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_int(&m.pk, 4);
    T_EQ_INT(decode_mp(&m, &d), MMS_PERR_FIELD_TYPE);
    T_CHECK(strstr(g_err, "'tags'[0] must be a string") != NULL);
    mp_begin(&m, 1);
    mp_key(&m, "tags");
    mp_str(&m, "a,b");
    T_EQ_INT(decode_mp(&m, &d), MMS_PERR_FIELD_TYPE);
    /* negative_tags: the same rules, named as such */
    ONE_FIELD(MMS_PERR_FIELD_TYPE, "'negative_tags' must be an array of strings",
              mp_key(&m_, "negative_tags"); mp_str(&m_, "computer"));
    ONE_FIELD(MMS_PERR_INVALID, "'negative_tags'[1] is an empty string", mp_key(&m_, "negative_tags");
              msgpack_pack_array(&m_.pk, 2); mp_str(&m_, "ok"); mp_str(&m_, ""));
    /* negative id: field_type, id not echoed */
    mp_begin(&m, 2);
    mp_key(&m, "id");
    msgpack_pack_int(&m.pk, -1);
    mp_key(&m, "op");
    mp_str(&m, "ping");
    T_EQ_INT(decode_mp(&m, &d), MMS_PERR_FIELD_TYPE);
    T_EQ_INT(g_id, 0);
    /* no input */
    mp_begin(&m, 2);
    mp_key(&m, "id");
    msgpack_pack_int(&m.pk, 9);
    mp_key(&m, "k");
    msgpack_pack_int(&m.pk, 3);
    T_EQ_INT(decode_mp(&m, &d), MMS_PERR_NO_INPUT);
    T_EQ_INT(g_id, 9);
    mp_begin(&m, 3);
    mp_key(&m, "op");
    mp_str(&m, "predict_tags");
    mp_key(&m, "tags");
    msgpack_pack_array(&m.pk, 1);
    mp_str(&m, "sky");
    mp_key(&m, "tags_extra");
    msgpack_pack_nil(&m.pk);
    T_EQ_INT(decode_mp(&m, &d), MMS_PERR_NO_INPUT);
    T_CHECK(strstr(g_err, "predict_tags needs") != NULL);
    /* an empty tags array is no input either */
    mp_begin(&m, 1);
    mp_key(&m, "tags");
    msgpack_pack_array(&m.pk, 0);
    T_EQ_INT(decode_mp(&m, &d), MMS_PERR_NO_INPUT);

    /* malformed: empty, garbage, not a map, truncated, trailing bytes */
    T_EQ_INT(mms_request_decode("", 0, &d, &g_id, g_err, sizeof g_err), MMS_PERR_MALFORMED);
    T_CHECK(strstr(g_err, "empty frame") != NULL);
    T_EQ_INT(mms_request_decode("\xc1", 1, &d, &g_id, g_err, sizeof g_err), MMS_PERR_MALFORMED);
    T_EQ_INT(mms_request_decode("\x93\x01\x02\x03", 4, &d, &g_id, g_err, sizeof g_err),
             MMS_PERR_MALFORMED);
    T_CHECK(strstr(g_err, "array, not a map") != NULL);
    T_EQ_INT(mms_request_decode("{\"k\": 1}", 8, &d, &g_id, g_err, sizeof g_err),
             MMS_PERR_MALFORMED);
    T_EQ_INT(mms_request_decode("\x81\xa1k", 3, &d, &g_id, g_err, sizeof g_err), MMS_PERR_MALFORMED);
    T_CHECK(strstr(g_err, "truncated") != NULL);
    T_EQ_INT(mms_request_decode("\x81\xa1k\xd9\x09", 5, &d, &g_id, g_err, sizeof g_err),
             MMS_PERR_MALFORMED);
    T_CHECK(strstr(g_err, "truncated") != NULL);
    T_EQ_INT(mms_request_decode("\x82\xa1k", 3, &d, &g_id, g_err, sizeof g_err), MMS_PERR_MALFORMED);
    T_CHECK(strstr(g_err, "4 more values declared, 2 bytes left") != NULL);
    T_EQ_INT(mms_request_decode("\x80\x80", 2, &d, &g_id, g_err, sizeof g_err), MMS_PERR_MALFORMED);
    T_CHECK(strstr(g_err, "1 trailing bytes") != NULL);
    /* a container that claims 4 billion entries in 5 bytes: refused before msgpack-c
     * would allocate for them */
    T_EQ_INT(mms_request_decode("\xdf\xff\xff\xff\xff", 5, &d, &g_id, g_err, sizeof g_err),
             MMS_PERR_MALFORMED);
    T_CHECK(strstr(g_err, "8589934590 more values declared, 0 bytes") != NULL);
    /* more values than a request may hold */
    {
        mp_t m2;
        mp_begin(&m2, 2);
        mp_key(&m2, "tags");
        msgpack_pack_array(&m2.pk, 1);
        mp_str(&m2, "sky");
        mp_key(&m2, "padding");
        msgpack_pack_array(&m2.pk, MMS_PROTO_MAX_VALUES);
        for (int i = 0; i < MMS_PROTO_MAX_VALUES; i++) msgpack_pack_nil(&m2.pk);
        T_EQ_INT(decode_mp(&m2, &d), MMS_PERR_MALFORMED);
        T_CHECK(strstr(g_err, "more than 65536 MessagePack values") != NULL);
    }
    /* NULL err buffer is allowed */
    T_EQ_INT(mms_request_decode("\xc1", 1, &d, NULL, NULL, 0), MMS_PERR_MALFORMED);
    mms_request_free(&d);

    /* every code has a stable name */
    static const char *names[] = {"ok", "malformed", "field_type", "vector_length", "non_finite",
                                  "k_range", "visual_range", "frame_too_large", "timeout", "jpeg",
                                  "no_input", "unsupported", "internal", "unavailable", "invalid",
                                  "unauthorized", "reload_refused"};
    T_EQ_INT(sizeof names / sizeof names[0], MMS_PERR_COUNT);
    for (int i = 0; i < MMS_PERR_COUNT && i < (int)(sizeof names / sizeof names[0]); i++)
        T_STREQ(mms_proto_error_name(i), names[i]);
    T_STREQ(mms_proto_error_name(99), "unknown");
    T_STREQ(mms_proto_error_name(-1), "unknown");
    T_EQ_INT(MMS_PERR_UNAUTHORIZED, 15);
    T_EQ_INT(MMS_PERR_RELOAD_REFUSED, 16);
    T_EQ_INT(MMS_PERR_COUNT, 17);
}

/* The payload at an odd address: the decoder must copy, not cast. */
static void test_unaligned(void) {
    float img[5] = {0.5f, -1.5f, 3.25f, 1e10f, -0.0f};
    mms_request_t q, d;
    mms_request_init(&q);
    q.image = img;
    q.image_dim = 5;
    q.id = 3;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    T_OK(mms_request_encode(&q, &sb));
    for (int shift = 1; shift < 4; shift++) {
        char *buf = malloc(sb.size + 8);
        memcpy(buf + shift, sb.data + 4, sb.size - 4);
        T_EQ_INT(mms_request_decode(buf + shift, sb.size - 4, &d, NULL, g_err, sizeof g_err),
                 MMS_PERR_OK);
        T_CHECK(d.image && ((uintptr_t)d.image % 64) == 0 && !memcmp(d.image, img, sizeof img));
        mms_request_free(&d);
        free(buf);
    }
    /* encode appends: two frames in one buffer */
    size_t first = sb.size;
    q.id = 4;
    T_OK(mms_request_encode(&q, &sb));
    size_t plen;
    T_EQ_INT(mms_frame_peek(sb.data + first, sb.size - first, 1 << 20, &plen), 1);
    T_EQ_INT(mms_request_decode(sb.data + first + 4, plen, &d, NULL, g_err, sizeof g_err),
             MMS_PERR_OK);
    T_EQ_INT(d.id, 4);
    mms_request_free(&d);
    msgpack_sbuffer_destroy(&sb);
}

static void test_frame_peek(void) {
    unsigned char b[8] = {0, 0, 0, 3, 'a', 'b', 'c', 'd'};
    size_t plen = 99;
    T_EQ_INT(mms_frame_peek(b, 0, 100, &plen), 0);
    T_EQ_INT(mms_frame_peek(b, 3, 100, &plen), 0);
    T_EQ_INT(mms_frame_peek(b, 4, 100, &plen), 0);
    T_EQ_INT(plen, 3);
    T_EQ_INT(mms_frame_peek(b, 6, 100, &plen), 0);
    T_EQ_INT(mms_frame_peek(b, 7, 100, &plen), 1);
    T_EQ_INT(mms_frame_peek(b, 8, 100, &plen), 1);
    T_EQ_INT(mms_frame_peek(b, 8, 2, &plen), -1);
    unsigned char big[4] = {0xff, 0xff, 0xff, 0xff};
    T_EQ_INT(mms_frame_peek(big, 4, MMS_PROTO_MAX_FRAME_DEFAULT, &plen), -1);
    T_EQ_INT(plen, 0xffffffffu);
}

static int resp_roundtrip(const mms_response_t *in, mms_response_t *out) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    T_OK(mms_response_encode(in, &sb));
    size_t plen = 0;
    T_EQ_INT(mms_frame_peek(sb.data, sb.size, MMS_PROTO_MAX_RESPONSE_DEFAULT, &plen), 1);
    int c = mms_response_decode(sb.data + 4, plen, out, g_err, sizeof g_err);
    if (c) fprintf(stderr, "  response decode: %s\n", g_err);
    msgpack_sbuffer_destroy(&sb);
    return c;
}

static void test_response_roundtrip(void) {
    mms_request_t q;
    mms_request_init(&q);
    q.id = 1234;
    mms_response_t r, d;
    mms_response_init(&r, &q);
    T_EQ_INT(r.id, 1234);
    T_EQ_INT(r.ok, 1);
    T_OK(mms_response_reserve(&r, 3, 2));
    T_CHECK(r.results_cap >= 3 && r.tags_cap >= 2);
    const char *t1[] = {"beach", "sunset"};
    T_OK(mms_response_add_result(&r, "img001", 0.875f, t1, 2, "/photos/001.jpg"));
    T_OK(mms_response_add_result(&r, "img002", -0.25f, NULL, 0, NULL));
    /* a handler may write into the reserved room with borrowed strings */
    static const char *const t3[] = {"sea"};
    r.results[2] = (mms_result_t){"img003", 0.5f, t3, 1, NULL};
    r.nresults = 3;
    T_OK(mms_response_add_tag(&r, "beach", 0.9f));
    T_OK(mms_response_add_tag(&r, "sand", 0.1f));
    T_OK(mms_response_add_warning(&r, "unknown keyword '%s'", "zebra"));
    T_OK(mms_response_add_timing(&r, "embed", 120));
    T_OK(mms_response_add_timing(&r, "a_very_long_stage_name_that_is_truncated_somewhere", 7));
    T_OK(mms_response_add_info_str(&r, "kind", "index"));
    T_OK(mms_response_add_info_int(&r, "images", -5));
    T_OK(mms_response_add_info_real(&r, "alpha", 0.125));
    T_EQ_INT(resp_roundtrip(&r, &d), MMS_PERR_OK);
    T_EQ_INT(d.id, 1234);
    T_EQ_INT(d.ok, 1);
    T_EQ_INT(d.nresults, 3);
    if (d.nresults == 3) {
        T_STREQ(d.results[0].id, "img001");
        T_NEAR(d.results[0].score, 0.875, 0);
        T_EQ_INT(d.results[0].ntags, 2);
        if (d.results[0].ntags == 2) T_STREQ(d.results[0].tags[1], "sunset");
        T_STREQ(d.results[0].path, "/photos/001.jpg");
        T_STREQ(d.results[1].id, "img002");
        T_NEAR(d.results[1].score, -0.25, 0);
        T_EQ_INT(d.results[1].ntags, 0);
        T_CHECK(d.results[1].path == NULL);
        T_STREQ(d.results[2].id, "img003");
        T_EQ_INT(d.results[2].ntags, 1);
    }
    T_EQ_INT(d.ntags, 2);
    if (d.ntags == 2) {
        T_STREQ(d.tags[0].tag, "beach");
        T_NEAR(d.tags[1].score, 0.1, 1e-7);
    }
    T_EQ_INT(d.nwarnings, 1);
    if (d.nwarnings == 1) T_STREQ(d.warnings[0], "unknown keyword 'zebra'");
    T_EQ_INT(d.ntiming, 2);
    if (d.ntiming == 2) {
        T_STREQ(d.timing[0].stage, "embed");
        T_EQ_INT(d.timing[0].us, 120);
        T_EQ_INT(strlen(d.timing[1].stage), 31);
    }
    T_EQ_INT(d.ninfo, 3);
    if (d.ninfo == 3) {
        T_STREQ(d.info[0].key, "kind");
        T_EQ_INT(d.info[0].type, MMS_INFO_STR);
        T_STREQ(d.info[0].s, "index");
        T_EQ_INT(d.info[1].type, MMS_INFO_INT);
        T_EQ_INT(d.info[1].i, -5);
        T_EQ_INT(d.info[2].type, MMS_INFO_REAL);
        T_NEAR(d.info[2].r, 0.125, 0);
    }
    mms_response_free(&d);

    /* an error: results are not sent, warnings and timings are */
    mms_response_set_error(&r, MMS_PERR_NO_INPUT, "no known tag among %d", 2);
    T_EQ_INT(resp_roundtrip(&r, &d), MMS_PERR_OK);
    T_EQ_INT(d.ok, 0);
    T_EQ_INT(d.error_code, MMS_PERR_NO_INPUT);
    T_STREQ(d.error_message, "no known tag among 2");
    T_EQ_INT(d.nresults, 0);
    T_EQ_INT(d.ntags, 0);
    T_EQ_INT(d.nwarnings, 1);
    T_EQ_INT(d.ntiming, 2);
    mms_response_free(&d);
    mms_response_free(&r);
    T_CHECK(r.results == NULL && r.arena_ == NULL);
    mms_response_free(&r);

    /* ping: only id and ok; a search with no results still sends results [] */
    q.op = MMS_OP_PING;
    mms_response_init(&r, &q);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    T_OK(mms_response_encode(&r, &sb));
    T_EQ_INT(sb.size, 4 + 1 + 3 + 3 + 3 + 1); /* map2 "id" 1234(uint16) "ok" true */
    msgpack_sbuffer_destroy(&sb);
    q.op = MMS_OP_SEARCH;
    mms_response_init(&r, &q);
    T_EQ_INT(resp_roundtrip(&r, &d), MMS_PERR_OK);
    T_EQ_INT(d.nresults, 0);
    mms_response_free(&d);
    mms_response_free(&r);

    /* reload: its reply carries info (old and new version), or reload_refused */
    q.op = MMS_OP_RELOAD;
    mms_response_init(&r, &q);
    T_OK(mms_response_add_info_str(&r, "index", "/data/versions/v3/index"));
    T_OK(mms_response_add_info_int(&r, "version", 3));
    T_OK(mms_response_add_info_int(&r, "old_version", 2));
    T_EQ_INT(resp_roundtrip(&r, &d), MMS_PERR_OK);
    T_EQ_INT(d.ok, 1);
    T_EQ_INT(d.ninfo, 3);
    if (d.ninfo == 3) {
        T_STREQ(d.info[0].s, "/data/versions/v3/index");
        T_EQ_INT(d.info[1].i, 3);
    }
    mms_response_free(&d);
    mms_response_set_error(&r, MMS_PERR_RELOAD_REFUSED, "reload refused: on rank 1: '%s' is corrupt",
                           "/v4/shard-0/emb.npy");
    T_EQ_INT(resp_roundtrip(&r, &d), MMS_PERR_OK);
    T_EQ_INT(d.ok, 0);
    T_EQ_INT(d.error_code, MMS_PERR_RELOAD_REFUSED);
    T_STREQ(d.error_message, "reload refused: on rank 1: '/v4/shard-0/emb.npy' is corrupt");
    T_EQ_INT(d.ninfo, 0);
    mms_response_free(&d);
    mms_response_free(&r);

    /* an error code outside the table is sent as internal */
    mms_response_init(&r, NULL);
    mms_response_set_error(&r, 0, "zero is not an error code");
    T_EQ_INT(r.error_code, MMS_PERR_INTERNAL);
    r.error_code = 999;
    T_EQ_INT(resp_roundtrip(&r, &d), MMS_PERR_OK);
    T_EQ_INT(d.error_code, MMS_PERR_INTERNAL);
    mms_response_free(&d);
    mms_response_free(&r);
}

static void test_response_decode_errors(void) {
    mms_response_t d;
    mp_t m;
    mp_begin(&m, 1);
    mp_key(&m, "id");
    msgpack_pack_int(&m.pk, 1);
    T_EQ_INT(mms_response_decode(m.sb.data, m.sb.size, &d, g_err, sizeof g_err), MMS_PERR_MALFORMED);
    T_CHECK(strstr(g_err, "no 'ok'") != NULL);
    msgpack_sbuffer_destroy(&m.sb);
    mp_begin(&m, 2);
    mp_key(&m, "ok");
    msgpack_pack_true(&m.pk);
    mp_key(&m, "results");
    mp_str(&m, "nope");
    T_EQ_INT(mms_response_decode(m.sb.data, m.sb.size, &d, g_err, sizeof g_err),
             MMS_PERR_FIELD_TYPE);
    T_CHECK(d.results == NULL && d.arena_ == NULL);
    msgpack_sbuffer_destroy(&m.sb);
    mp_begin(&m, 2);
    mp_key(&m, "ok");
    msgpack_pack_int(&m.pk, 1);
    mp_key(&m, "id");
    msgpack_pack_int(&m.pk, 1);
    T_EQ_INT(mms_response_decode(m.sb.data, m.sb.size, &d, g_err, sizeof g_err),
             MMS_PERR_FIELD_TYPE);
    msgpack_sbuffer_destroy(&m.sb);
    /* a result without an id */
    mp_begin(&m, 2);
    mp_key(&m, "ok");
    msgpack_pack_true(&m.pk);
    mp_key(&m, "results");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_map(&m.pk, 1);
    mp_key(&m, "score");
    msgpack_pack_float(&m.pk, 1.0f);
    T_EQ_INT(mms_response_decode(m.sb.data, m.sb.size, &d, g_err, sizeof g_err),
             MMS_PERR_MALFORMED);
    msgpack_sbuffer_destroy(&m.sb);
    /* ok false without error details still decodes */
    mp_begin(&m, 2);
    mp_key(&m, "ok");
    msgpack_pack_false(&m.pk);
    mp_key(&m, "something_new");
    msgpack_pack_array(&m.pk, 0);
    T_EQ_INT(mms_response_decode(m.sb.data, m.sb.size, &d, g_err, sizeof g_err), MMS_PERR_OK);
    T_EQ_INT(d.ok, 0);
    T_EQ_INT(d.error_code, MMS_PERR_INTERNAL);
    mms_response_free(&d);
    msgpack_sbuffer_destroy(&m.sb);
    T_EQ_INT(mms_response_decode("\x91\x01", 2, &d, g_err, sizeof g_err), MMS_PERR_MALFORMED);
}

/* The hello (docs/protocol.md, "Handshake"): its bytes, every prefix, a wrong
 * byte anywhere but in the version, HTTP detection, the printable prefix. */
static void test_hello(void) {
    unsigned char h[MMS_HELLO_LEN];
    unsigned v = 0;
    mms_hello_encode(h, MMS_PROTO_VERSION);
    T_CHECK(memcmp(h, "MMSG\x00\x02\r\n", MMS_HELLO_LEN) == 0);
    T_EQ_INT(MMS_PROTO_VERSION, 2);
    T_EQ_INT(mms_hello_parse(h, MMS_HELLO_LEN, &v), 1);
    T_EQ_INT((int)v, MMS_PROTO_VERSION);
    for (size_t n = 0; n < MMS_HELLO_LEN; n++) T_EQ_INT(mms_hello_parse(h, n, &v), 0);
    /* a frame may follow in the same read */
    unsigned char more[12];
    memcpy(more, h, 8);
    memcpy(more + 8, "\0\0\0\1", 4);
    T_EQ_INT(mms_hello_parse(more, sizeof more, &v), 1);
    mms_hello_encode(h, 0x1234);
    T_EQ_INT(mms_hello_parse(h, MMS_HELLO_LEN, &v), 1);
    T_EQ_INT((int)v, 0x1234);
    for (int i = 0; i < MMS_HELLO_LEN; i++) {
        if (i == 4 || i == 5) continue; /* the version: any value parses */
        mms_hello_encode(h, MMS_PROTO_VERSION);
        h[i] ^= 0x20;
        T_EQ_INT(mms_hello_parse(h, MMS_HELLO_LEN, &v), -1);
        T_EQ_INT(mms_hello_parse(h, (size_t)i + 1, &v), -1); /* told at the first wrong byte */
    }
    /* what other servers and clients send first */
    const char *other[] = {"HTTP/1.1 400 Bad Request\r\n", "SSH-2.0-OpenSSH_9.2\r\n",
                           "GET / HTTP/1.1\r\n", "\0\0\0\x10\x81", "220 smtp ESMTP\r\n", "M"};
    for (int i = 0; i < 5; i++)
        T_EQ_INT(mms_hello_parse(other[i], strlen(other[i]) + (i == 3), &v), -1);
    T_EQ_INT(mms_hello_parse(other[5], 1, &v), 0);
    T_EQ_INT(mms_hello_looks_http("GET / HTTP/1.1\r\n", 16), 1);
    T_EQ_INT(mms_hello_looks_http("OPTIONS * HTTP/1.1", 8), 1);
    T_EQ_INT(mms_hello_looks_http("GE", 2), 0);
    T_EQ_INT(mms_hello_looks_http("MMSG\0\2\r\n", 8), 0);
    T_EQ_INT(mms_hello_looks_http("get / ", 6), 0);
    T_EQ_INT(mms_hello_looks_http("CONNECTX ", 9), 0);
    char d[64];
    T_STREQ(mms_hello_describe("HTTP/1.1 400 Bad Request\r\nServer: x\r\n", 37, d, sizeof d),
             "HTTP/1.1 400 Bad Request");
    T_STREQ(mms_hello_describe("\x01\xff" "A\0", 4, d, sizeof d), "\\x01\\xffA\\x00");
    T_STREQ(mms_hello_describe("", 0, d, sizeof d), "");
    char longer[100];
    memset(longer, 'a', sizeof longer);
    mms_hello_describe(longer, sizeof longer, d, sizeof d);
    T_EQ_INT((int)strlen(d), 51);
    T_CHECK(strcmp(d + 48, "...") == 0);
    mms_hello_describe(longer, sizeof longer, d, 8); /* a small buffer: cut, terminated */
    T_STREQ(d, "aaaa...");
    mms_hello_describe("\xff\xff\xff", 3, d, 6);
    T_CHECK(strlen(d) < 6);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_WARN);
    test_request_roundtrip();
    test_request_defaults();
    test_request_errors();
    test_unaligned();
    test_frame_peek();
    test_response_roundtrip();
    test_response_decode_errors();
    test_hello();
    return mms_test_finish("test_protocol");
}
