/* mms_strmap.h: string -> int64 hash map (open addressing, xxHash keys).
 *
 * Keys are copied into an arena owned by the map; lookups never allocate. Used
 * for id de-duplication, tag vocabularies and keyword lookup. Not thread-safe
 * for writers; concurrent readers are fine.
 */
#ifndef MMS_STRMAP_H
#define MMS_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"

typedef struct mms_strmap mms_strmap_t;

mms_status mms_strmap_create(size_t expected, mms_strmap_t **out);
void mms_strmap_destroy(mms_strmap_t **m);
size_t mms_strmap_size(const mms_strmap_t *m);

/* Look up key[0..len). Returns 1 and sets *val if present, else 0. */
int mms_strmap_get(const mms_strmap_t *m, const char *key, size_t len, int64_t *val);
/* Insert key -> val if absent. *inserted = 1 if new; *existing gets the stored
 * value either way (so a caller can tell a duplicate). Either pointer may be NULL. */
mms_status mms_strmap_put(mms_strmap_t *m, const char *key, size_t len, int64_t val,
                          int *inserted, int64_t *existing);
/* The stored copy of the key of entry i in insertion order (0 <= i < size). */
const char *mms_strmap_key(const mms_strmap_t *m, size_t i);

#endif
