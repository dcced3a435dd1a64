/* mms_msgpack.c: the walk that bounds msgpack-c's allocations (mms_msgpack.h).
 * Written here because msgpack-c has no size limit on its C unpacker and no
 * other maintained library checks a MessagePack buffer's declared sizes
 * without decoding it; the walk reads only type bytes and lengths.
 */
#include "mms_msgpack.h"

#include <stdarg.h>
#include <stdio.h>

static int seterr(char *why, size_t whylen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int seterr(char *why, size_t whylen, int code, const char *fmt, ...) {
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return code;
}

int mms_msgpack_bound(const void *buf, size_t len, size_t max_values, char *why, size_t whylen) {
    const unsigned char *p = buf;
    size_t off = 0, owed = 1, seen = 0;
    while (owed > 0) {
        if (off >= len) break;
        unsigned b = p[off++];
        owed--;
        if (++seen > max_values)
            return seterr(why, whylen, MMS_MSGPACK_TOO_MANY, "more than %zu MessagePack values",
                          max_values);
        size_t skip = 0, count = 0, lenbytes = 0;
        if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3)) {
            if (b == 0xc1) return seterr(why, whylen, MMS_MSGPACK_MALFORMED, "malformed MessagePack");
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
            default: return seterr(why, whylen, MMS_MSGPACK_MALFORMED, "malformed MessagePack");
            }
        if (lenbytes) {
            if (len - off < lenbytes) return seterr(why, whylen, MMS_MSGPACK_TRUNCATED,
                                                    "truncated MessagePack (it ends inside a value)");
            size_t n = 0;
            for (size_t i = 0; i < lenbytes; i++) n = n << 8 | p[off + i];
            off += lenbytes;
            if (b == 0xdc || b == 0xdd) count = n;
            else if (b == 0xde || b == 0xdf) count = 2 * n;
            else skip += n;
        }
        if (skip > len - off)
            return seterr(why, whylen, MMS_MSGPACK_TRUNCATED,
                          "truncated MessagePack (it ends inside a value)");
        off += skip;
        owed += count;
        if (owed > len - off)
            return seterr(why, whylen, MMS_MSGPACK_TOO_LARGE,
                          "truncated or corrupt MessagePack: %zu more values declared, %zu bytes "
                          "left",
                          owed, len - off);
    }
    if (owed > 0)
        return seterr(why, whylen, MMS_MSGPACK_TRUNCATED,
                      "truncated MessagePack (it ends inside a value)");
    return MMS_MSGPACK_OK;
}
