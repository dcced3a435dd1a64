/* mms_addr.c: see mms_addr.h. */
#include "mms_addr.h"

#include <stdlib.h>
#include <string.h>

/* What is wrong with an address, or ADDR_OK. */
typedef enum {
    ADDR_OK,
    ADDR_NO_CLOSE,    /* '[' without ']' */
    ADDR_AFTER_CLOSE, /* anything but ":port" after ']' */
    ADDR_TOO_LONG,    /* the host does not fit out->host */
    ADDR_NO_HOST,     /* strict: an empty host */
    ADDR_BARE_V6,     /* strict: an unbracketed host with a ':' */
    ADDR_BAD_PORT     /* not a number in port_min..65535 (strict: digits only) */
} addr_fault;

/* The parse proper: fills *out (its host may be partly written on a fault). */
static addr_fault addr_split(const char *s, int port_min, int def_port, unsigned flags,
                             mms_addr_t *out) {
    const int strict = (flags & MMS_ADDR_STRICT) != 0;
    const char *colon = NULL, *ps = NULL, *host = s; /* ps: the port's digits, if any */
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close) return ADDR_NO_CLOSE;
        host = s + 1;
        hl = (size_t)(close - host);
        colon = close[1] == ':' ? close + 1 : NULL;
        if (close[1] != '\0' && !colon) return ADDR_AFTER_CLOSE;
        ps = colon ? colon + 1 : NULL;
    } else if (!strict && s[0] && strspn(s, "0123456789") == strlen(s)) {
        /* a port alone ("41017"): the default host; a number is never a host
         * name here (inet_aton would read "41017" as the IPv4 address 0.0.160.57) */
        hl = 0;
        ps = s;
    } else {
        colon = strrchr(s, ':');
        if (strict && colon && strchr(s, ':') != colon) return ADDR_BARE_V6;
        hl = colon ? (size_t)(colon - s) : strlen(s);
        ps = colon ? colon + 1 : NULL;
    }
    if (hl >= sizeof out->host) return ADDR_TOO_LONG;
    if (strict && hl == 0) return ADDR_NO_HOST;
    memcpy(out->host, host, hl);
    out->host[hl] = '\0';
    out->port = def_port;
    if (ps) {
        if (strict && (ps[0] < '0' || ps[0] > '9')) return ADDR_BAD_PORT;
        char *end;
        long p = strtol(ps, &end, 10);
        if (*end != '\0' || end == ps || p < port_min || p > 65535) return ADDR_BAD_PORT;
        out->port = (int)p;
    }
    return ADDR_OK;
}

mms_status mms_addr_parse_ex(const char *s, const char *what, int port_min, int def_port,
                             unsigned flags, mms_addr_t *out) {
    if (!s) s = "";
    addr_fault f = addr_split(s, port_min, def_port, flags, out);
    if (f == ADDR_OK) return MMS_OK;
    if (flags & MMS_ADDR_QUIET) return MMS_ERR_ARG;
    switch (f) {
    case ADDR_NO_CLOSE:
        MMS_CHECK(0, MMS_ERR_ARG, "%s '%s': missing ']' (expected [v6addr]:port)", what, s);
        break;
    case ADDR_AFTER_CLOSE:
        MMS_CHECK(0, MMS_ERR_ARG, "%s '%s': expected [v6addr]:port", what, s);
        break;
    case ADDR_TOO_LONG: MMS_CHECK(0, MMS_ERR_ARG, "%s '%s' is too long", what, s); break;
    case ADDR_NO_HOST: MMS_CHECK(0, MMS_ERR_ARG, "%s '%s': no host", what, s); break;
    case ADDR_BARE_V6:
        MMS_CHECK(0, MMS_ERR_ARG, "%s '%s': an IPv6 address needs brackets ([v6addr]:port)", what,
                  s);
        break;
    default:
        MMS_CHECK(0, MMS_ERR_ARG, "%s '%s': the port must be a number in %d..65535", what, s,
                  port_min);
    }
    return MMS_ERR_ARG;
}

mms_status mms_addr_parse(const char *s, const char *what, int port_min, mms_addr_t *out) {
    return mms_addr_parse_ex(s, what, port_min, MMS_DEFAULT_PORT, 0, out);
}
