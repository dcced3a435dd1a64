/* fuzz_response.c: the client's response decoder (coordinator/protocol_response.c) on
 * arbitrary bytes (a server may be broken or hostile). It must never crash or
 * read out of bounds; a response it accepts must re-encode and decode to the
 * same content. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

static int same(const mms_response_t *a, const mms_response_t *b) {
    if (a->id != b->id || a->ok != b->ok || a->nwarnings != b->nwarnings ||
        a->ntiming != b->ntiming)
        return 0;
    if (!a->ok) {
        int ca = a->error_code < MMS_PERR_COUNT ? a->error_code : MMS_PERR_INTERNAL;
        return ca == b->error_code && !strcmp(a->error_message, b->error_message);
    }
    if (a->nresults != b->nresults || a->ntags != b->ntags || a->ninfo != b->ninfo) return 0;
    for (int i = 0; i < a->nresults; i++) {
        const mms_result_t *x = &a->results[i], *y = &b->results[i];
        if (strcmp(x->id, y->id) || memcmp(&x->score, &y->score, sizeof x->score) ||
            x->ntags != y->ntags || !x->path != !y->path || (x->path && strcmp(x->path, y->path)))
            return 0;
        for (int j = 0; j < x->ntags; j++)
            if (strcmp(x->tags[j], y->tags[j])) return 0;
    }
    for (int i = 0; i < a->ntags; i++)
        if (strcmp(a->tags[i].tag, b->tags[i].tag)) return 0;
    for (int i = 0; i < a->nwarnings; i++)
        if (strcmp(a->warnings[i], b->warnings[i])) return 0;
    for (int i = 0; i < a->ntiming; i++)
        if (strcmp(a->timing[i].stage, b->timing[i].stage) || a->timing[i].us != b->timing[i].us)
            return 0;
    for (int i = 0; i < a->ninfo; i++)
        if (strcmp(a->info[i].key, b->info[i].key) || a->info[i].type != b->info[i].type)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mms_response_t r;
    char err[256];
    int c = mms_response_decode(data, size, &r, err, sizeof err);
    if (c < 0 || c >= MMS_PERR_COUNT) __builtin_trap();
    if (c != MMS_PERR_OK) {
        if (r.results || r.arena_ || r.warnings) __builtin_trap();
        return 0;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (mms_response_encode(&r, &sb) == MMS_OK) {
        mms_response_t r2;
        size_t plen = 0;
        if (mms_frame_peek(sb.data, sb.size, (size_t)-1, &plen) != 1 ||
            mms_response_decode(sb.data + 4, plen, &r2, err, sizeof err) != MMS_PERR_OK ||
            !same(&r, &r2))
            __builtin_trap();
        mms_response_free(&r2);
    }
    msgpack_sbuffer_destroy(&sb);
    mms_response_free(&r);
    return 0;
}
