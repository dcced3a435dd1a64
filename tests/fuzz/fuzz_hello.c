/* fuzz_hello.c: the handshake helpers (coordinator/protocol.c, mms_hello_*)
 * on arbitrary bytes, as the server and the client see a peer's first bytes.
 * They must never crash or read outside the input; parse must agree with
 * itself on every prefix (a prefix of a hello is "need more", anything that
 * failed stays failed), accept exactly what mms_hello_encode writes, and
 * describe must always write a terminated string within its buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned v = 0;
    int h = mms_hello_parse(data, size, &v);
    if (h < -1 || h > 1) __builtin_trap();
    if (h == 1) {
        unsigned char enc[MMS_HELLO_LEN];
        mms_hello_encode(enc, v);
        if (size < MMS_HELLO_LEN || memcmp(enc, data, MMS_HELLO_LEN) != 0) __builtin_trap();
    }
    if (h == 0 && size >= MMS_HELLO_LEN) __builtin_trap();
    /* monotone in the prefix: once -1, always -1; 1 once the 8 bytes are in */
    int prev = 0;
    for (size_t n = 0; n <= size && n <= MMS_HELLO_LEN + 1; n++) {
        unsigned w = 0;
        int p = mms_hello_parse(data, n, &w);
        if (prev == -1 && p != -1) __builtin_trap();
        if (prev == 1 && (p != 1 || w != v)) __builtin_trap();
        prev = p;
    }
    /* (a hello whose version's high byte is ' ' also "looks like HTTP": the server
     * asks parse first, so only the bytes that are no hello go on to this) */
    int http = mms_hello_looks_http(data, size);
    if (http && (size < 4 || data[0] < 'A' || data[0] > 'Z')) __builtin_trap();
    /* describe into buffers of every small size and one large: terminated, in bounds */
    static const size_t caps[] = {1, 2, 3, 4, 5, 7, 8, 16, 200};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        char *out = malloc(caps[i]);
        if (!out) return 0;
        char *r = mms_hello_describe(data, size, out, caps[i]);
        if (r != out || strlen(out) >= caps[i]) __builtin_trap();
        for (const char *p = out; *p; p++)
            if (*p < 0x20 || *p > 0x7e) __builtin_trap(); /* printable only */
        free(out);
    }
    return 0;
}
