/* mms_manifest.h: MessagePack manifests for every directory mmsage writes.
 *
 * A manifest is one MessagePack map: {"magic": "mmsage", "kind": <kind>,
 * "format": <version>, key: value, ...} with flat keys (dots for structure) and
 * values that are integers, unsigned integers (checksums), reals, strings or
 * integer arrays. A later step reads it to refuse a mismatched input with a clear
 * message (another kind, another version, a changed source checksum).
 */
#ifndef MMS_MANIFEST_H
#define MMS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"

#define MMS_MANIFEST_MAGIC "mmsage"
#define MMS_MANIFEST_FILE "manifest.msgpack"

typedef enum { MMS_MV_INT, MMS_MV_UINT, MMS_MV_REAL, MMS_MV_STR, MMS_MV_INTARR } mms_mvtype;

typedef struct {
    char *key;
    mms_mvtype type;
    int64_t i;
    uint64_t u;
    double r;
    char *s;
    int64_t *arr;
    size_t arr_len;
} mms_mentry_t;

typedef struct {
    char kind[32];
    int64_t format;
    mms_mentry_t *e;
    size_t n, cap;
} mms_manifest_t;

mms_status mms_manifest_create(const char *kind, int64_t format, mms_manifest_t **out);
void mms_manifest_destroy(mms_manifest_t **m);

/* Setters replace an existing key. Strings and arrays are copied. */
mms_status mms_manifest_set_int(mms_manifest_t *m, const char *key, int64_t v);
mms_status mms_manifest_set_uint(mms_manifest_t *m, const char *key, uint64_t v);
mms_status mms_manifest_set_real(mms_manifest_t *m, const char *key, double v);
mms_status mms_manifest_set_str(mms_manifest_t *m, const char *key, const char *v);
mms_status mms_manifest_set_intarr(mms_manifest_t *m, const char *key, const int64_t *v, size_t n);

/* Getters fail with MMS_ERR_FORMAT naming the file (m->kind) and key when the key
 * is missing or has another type. Strings and arrays are borrowed. */
mms_status mms_manifest_get_int(const mms_manifest_t *m, const char *key, int64_t *v);
mms_status mms_manifest_get_uint(const mms_manifest_t *m, const char *key, uint64_t *v);
mms_status mms_manifest_get_real(const mms_manifest_t *m, const char *key, double *v);
mms_status mms_manifest_get_str(const mms_manifest_t *m, const char *key, const char **v);
mms_status mms_manifest_get_intarr(const mms_manifest_t *m, const char *key, const int64_t **v,
                                   size_t *n);
int mms_manifest_has(const mms_manifest_t *m, const char *key);

/* Serialise to a malloc'd buffer (caller frees) / decode from bytes. name is used
 * in messages. Decoding checks magic, kind (if want_kind) and format <= max_format. */
mms_status mms_manifest_encode(const mms_manifest_t *m, char **buf, size_t *len);
mms_status mms_manifest_decode(const void *buf, size_t len, const char *name, const char *want_kind,
                               int64_t max_format, mms_manifest_t **out);

/* <dir>/manifest.msgpack, written atomically / read and checked. */
mms_status mms_manifest_write_dir(const mms_manifest_t *m, const char *dir);
mms_status mms_manifest_read_dir(const char *dir, const char *want_kind, int64_t max_format,
                                 mms_manifest_t **out);

#endif
