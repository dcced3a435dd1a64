/* mms_msgpack.h: the bound on what msgpack-c may allocate, checked before it
 * runs. msgpack-c's C unpacker allocates a container's declared size when it
 * meets the header, before any element, and has no limit option: five bytes
 * (an array32 header) ask for gigabytes. Every decoder of untrusted
 * MessagePack (the wire protocol, the manifests) calls mms_msgpack_bound
 * first and hands the buffer to msgpack_unpack_next only when it passes.
 *
 * Does not: decode values (msgpack-c does), allocate, or log.
 */
#ifndef MMS_MSGPACK_H
#define MMS_MSGPACK_H

#include <stddef.h>

enum {
    MMS_MSGPACK_OK = 0,
    MMS_MSGPACK_TRUNCATED = 1, /* the buffer ends inside a value */
    MMS_MSGPACK_MALFORMED = 2, /* a byte that is no MessagePack type */
    MMS_MSGPACK_TOO_LARGE = 3, /* containers declare more values than bytes remain */
    MMS_MSGPACK_TOO_MANY = 4   /* more than max_values values in all */
};

/* Walk the type bytes and lengths of the one MessagePack value at
 * p[0..len): every value still owed by an open container needs at least one
 * byte, so the values owed may never exceed the bytes left, and the values in
 * all may not exceed max_values. Trailing bytes after the value are allowed
 * (the caller checks them). Returns MMS_MSGPACK_OK or a code above, with a
 * message for people in why[0..whylen) (why may be NULL). Full validation is
 * left to msgpack-c; a buffer that passes makes it allocate at most a small
 * multiple of len. */
int mms_msgpack_bound(const void *p, size_t len, size_t max_values, char *why, size_t whylen);

#endif
