/* mms_addr.c: see mms_addr.h. */
#include "mms_addr.h"

#include <stdlib.h>
#include <string.h>

mms_status mms_addr_parse(const char *s, const char *what, int port_min, mms_addr_t *out) {
    const char *colon = NULL, *host = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        MMS_CHECK(close, MMS_ERR_ARG, "%s '%s': missing ']' (expected [v6addr]:port)", what, s);
        host = s + 1;
        hl = (size_t)(close - host);
        colon = close[1] == ':' ? close + 1 : NULL;
        MMS_CHECK(close[1] == '\0' || colon, MMS_ERR_ARG, "%s '%s': expected [v6addr]:port", what,
                  s);
    } else {
        colon = strrchr(s, ':');
        hl = colon ? (size_t)(colon - s) : strlen(s);
    }
    MMS_CHECK(hl < sizeof out->host, MMS_ERR_ARG, "%s '%s' is too long", what, s);
    memcpy(out->host, host, hl);
    out->host[hl] = '\0';
    out->port = MMS_DEFAULT_PORT;
    if (colon) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        MMS_CHECK(*end == '\0' && end != colon + 1 && p >= port_min && p <= 65535, MMS_ERR_ARG,
                  "%s '%s': the port must be a number in %d..65535", what, s, port_min);
        out->port = (int)p;
    }
    return MMS_OK;
}
