/* fuzz_request.c: the request decoder (coordinator/protocol_request.c) on arbitrary
 * bytes, as one frame payload and as a stream of length-prefixed frames. It
 * must never crash or read out of bounds; a request it accepts must satisfy
 * the documented invariants and survive encode + decode unchanged. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

static int same(const mms_request_t *a, const mms_request_t *b) {
    if (a->id != b->id || a->op != b->op || a->k != b->k || a->neighbors != b->neighbors ||
        a->tag_k != b->tag_k || a->predict_tags != b->predict_tags ||
        memcmp(&a->visual, &b->visual, sizeof a->visual) || a->image_dim != b->image_dim ||
        a->image_knn_dim != b->image_knn_dim || a->jpeg_len != b->jpeg_len || a->ntags != b->ntags ||
        a->connect != b->connect || a->concept != b->concept ||
        a->nnegative_tags != b->nnegative_tags || a->nprobe != b->nprobe || a->exact != b->exact)
        return 0;
    if (a->image_dim && memcmp(a->image, b->image, (size_t)a->image_dim * 4)) return 0;
    if (a->image_knn_dim && memcmp(a->image_knn, b->image_knn, (size_t)a->image_knn_dim * 4)) return 0;
    if (a->jpeg_len && memcmp(a->jpeg, b->jpeg, a->jpeg_len)) return 0;
    for (int i = 0; i < a->ntags; i++)
        if (strcmp(a->tags[i], b->tags[i])) return 0;
    for (int i = 0; i < a->nnegative_tags; i++)
        if (strcmp(a->negative_tags[i], b->negative_tags[i])) return 0;
    if (!a->exclude != !b->exclude || (a->exclude && strcmp(a->exclude, b->exclude))) return 0;
    if (!a->auth != !b->auth || (a->auth && strcmp(a->auth, b->auth))) return 0;
    return 1;
}

static void check_invariants(const mms_request_t *r) {
    int bad = r->k < 1 || r->k > MMS_PROTO_K_MAX || r->neighbors < 1 ||
              r->neighbors > MMS_PROTO_NEIGHBORS_MAX || r->tag_k < 1 ||
              r->tag_k > MMS_PROTO_TAG_K_MAX || !(r->visual >= 0.0f && r->visual <= 1.0f) ||
              (r->image && r->jpeg) || (r->image_knn && !r->image) || r->ntags > MMS_PROTO_MAX_TAGS ||
              !mms_connect_name(r->connect) || !mms_concept_name(r->concept) ||
              r->nprobe < 0 || r->nprobe > MMS_PROTO_NPROBE_MAX || r->exact < -1 || r->exact > 1 ||
              (r->image && ((uintptr_t)r->image % 64) != 0) || !r->arena_ ||
              (int)r->op < 0 || (int)r->op >= MMS_OP_COUNT;
    for (int i = 0; i < r->image_dim && !bad; i++) bad = !isfinite(r->image[i]);
    for (int i = 0; i < r->ntags && !bad; i++) bad = !r->tags[i][0];
    bad |= r->nnegative_tags > MMS_PROTO_MAX_TAGS || (r->op == MMS_OP_SEARCH && !r->image && !r->jpeg && !r->ntags);
    for (int i = 0; i < r->nnegative_tags && !bad; i++) bad = !r->negative_tags[i][0];
    if (r->auth && !bad) bad = !r->auth[0] || strlen(r->auth) > MMS_PROTO_MAX_STR;
    if (bad) __builtin_trap();
}

static void one(const uint8_t *data, size_t size) {
    mms_request_t r;
    char err[256];
    uint64_t id;
    int c = mms_request_decode(data, size, &r, &id, err, sizeof err);
    if (c < 0 || c >= MMS_PERR_COUNT || !memchr(err, 0, sizeof err)) __builtin_trap();
    if (c != MMS_PERR_OK) {
        if (r.arena_ || r.image || r.tags) __builtin_trap(); /* failure leaves nothing behind */
        return;
    }
    check_invariants(&r);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (mms_request_encode(&r, &sb) == MMS_OK) {
        mms_request_t r2;
        size_t plen = 0;
        if (mms_frame_peek(sb.data, sb.size, (size_t)-1, &plen) != 1 ||
            mms_request_decode(sb.data + 4, plen, &r2, NULL, err, sizeof err) != MMS_PERR_OK ||
            !same(&r, &r2))
            __builtin_trap();
        mms_request_free(&r2);
    }
    msgpack_sbuffer_destroy(&sb);
    mms_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    one(data, size);
    /* the same bytes as a stream of frames */
    size_t off = 0, plen = 0;
    while (mms_frame_peek(data + off, size - off, 1u << 16, &plen) == 1) {
        one(data + off + 4, plen);
        off += 4 + plen;
    }
    return 0;
}
