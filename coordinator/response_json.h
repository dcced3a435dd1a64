/* response_json.h: a response (coordinator/protocol.h) as a jansson object,
 * with the fields of docs/protocol.md's response map; used by `mmsage query
 * --json` and `mmsage search`. */
#ifndef MMS_RESPONSE_JSON_H
#define MMS_RESPONSE_JSON_H

#include <jansson.h>

#include "protocol.h"

/* A number, or JSON null when it is not finite. New reference. */
json_t *mms_json_number(double v);
/* The response as a new JSON object (caller owns the reference). */
json_t *mms_response_json(const mms_response_t *r);

#endif
