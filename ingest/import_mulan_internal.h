/* import_mulan_internal.h: small text helpers that the ARFF reader
 * (import_mulan_arff.c) and the Mulan XML reader (import_mulan_xml.c) share:
 * hex digits, UTF-8 encoding of an escaped code point, and how much of a bad
 * value an error message shows.
 *
 * Not a public API: callers use import_mulan.h. Nothing here allocates.
 */
#ifndef MMS_IMPORT_MULAN_INTERNAL_H
#define MMS_IMPORT_MULAN_INTERNAL_H

#include <stddef.h>

/* Longest value text shown in an error message. */
#define MULAN_SHOW 40

static inline int show_len(size_t len) {
    return (int)(len < MULAN_SHOW ? len : MULAN_SHOW);
}

static inline int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* UTF-8 encoding of cp (< 0x110000) into w; returns bytes written. */
static inline int put_utf8(char *w, unsigned cp) {
    if (cp < 0x80) {
        w[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        w[0] = (char)(0xC0 | (cp >> 6));
        w[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        w[0] = (char)(0xE0 | (cp >> 12));
        w[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        w[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    w[0] = (char)(0xF0 | (cp >> 18));
    w[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    w[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    w[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

#endif
