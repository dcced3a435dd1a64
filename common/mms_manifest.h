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

/* ---- payload checksums ------------------------------------------------------
 * Every payload file of an mmsage directory is recorded in its manifest as two
 * keys, "bytes.<relpath>" (size) and "xxh3.<relpath>" (xxHash3-64 of the bytes),
 * relpath relative to the directory ("emb.npy" style names, "shard-0/emb.npy"
 * for files one level down). Readers verify what they open, so a flipped byte,
 * a truncation or a swapped file is refused with a message naming the file
 * instead of being served. */
#define MMS_MANIFEST_SUM_PREFIX "xxh3."
#define MMS_MANIFEST_SIZE_PREFIX "bytes."

/* Record size and checksum of every regular file under dir (two levels deep),
 * replacing earlier records. Not recorded: the manifest itself, names listed in
 * skip (NULL-terminated relative paths, or NULL; for logs such as loss.tsv and
 * files that carry their own checksum), temporary names (containing ".tmp."),
 * and subdirectories with their own manifest (nested mmsage directories, e.g. a
 * graph's parts-P/). Reads every byte: cost is one pass over the directory. */
mms_status mms_manifest_record_files(mms_manifest_t *m, const char *dir, const char *const *skip);

/* Number of files recorded (0 for a manifest written before checksums). */
size_t mms_manifest_recorded_files(const mms_manifest_t *m);

/* Verify the recorded files that lie directly in dir/sub (sub NULL or "" = dir
 * itself, e.g. "shard-3" for one shard): each must exist with the recorded size
 * and checksum. Fails with MMS_ERR_FORMAT naming the file and what differs.
 * *verified (may be NULL) gets the bytes checked. A manifest with no records
 * passes (a directory written before checksums; the caller may warn). */
mms_status mms_manifest_verify_files(const mms_manifest_t *m, const char *dir, const char *sub,
                                     uint64_t *verified);

/* Verify one recorded file (relpath). A manifest that has records but not this
 * file fails (the file was added behind mmsage's back or the manifest is old). */
mms_status mms_manifest_verify_file(const mms_manifest_t *m, const char *dir, const char *relpath);

/* The recorded checksum of relpath into *sum; 0 if it is not recorded. */
int mms_manifest_file_sum(const mms_manifest_t *m, const char *relpath, uint64_t *sum);

/* ---- paths to other directories -------------------------------------------
 * A directory that refers to another (an index to its catalog and model, a
 * graph to its catalog) records the path relative to itself under key, and the
 * absolute path under "<key>.abs", so that moving both together, moving only
 * the referring one, or running from any working directory all work. */

/* Record target for a directory that will live at final_dir (it may not exist
 * yet; its parent must). Relative: from final_dir to target's real path. */
mms_status mms_manifest_set_path(mms_manifest_t *m, const char *key, const char *target,
                                 const char *final_dir);

/* The recorded path under key of the directory dir, as a usable path into
 * out[0..cap): the relative path resolved against dir if it exists there, else
 * the absolute one, else (a manifest of an older mmsage, which stored the path
 * as typed) the value itself. Fails naming every candidate when none exists. */
mms_status mms_manifest_get_path(const mms_manifest_t *m, const char *key, const char *dir,
                                 char *out, size_t cap);
/* The same without an error: 1 with the path in out, 0 when none exists. */
int mms_manifest_find_path(const mms_manifest_t *m, const char *key, const char *dir, char *out,
                           size_t cap);

/* <dir>/manifest.msgpack, written atomically / read and checked. */
mms_status mms_manifest_write_dir(const mms_manifest_t *m, const char *dir);
/* The last step of writing an mmsage directory: record its payload files
 * (mms_manifest_record_files with skip) and write the manifest. */
mms_status mms_manifest_seal_dir(mms_manifest_t *m, const char *dir, const char *const *skip);
/* The same for a new version of a directory whose unchanged files are hard
 * links to parent_dir's (mms_dir_link_tree): a file that is the same inode as
 * parent_dir's file of that name, with the size parent records, takes over
 * parent's checksum instead of being read, so sealing costs the new bytes
 * only. parent is parent_dir's manifest (its records are trusted: verify the
 * parent when it is opened). */
mms_status mms_manifest_seal_dir_from(mms_manifest_t *m, const char *dir, const char *const *skip,
                                      const mms_manifest_t *parent, const char *parent_dir);
mms_status mms_manifest_read_dir(const char *dir, const char *want_kind, int64_t max_format,
                                 mms_manifest_t **out);

#endif
