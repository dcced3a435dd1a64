/* mms_manifest.c: see mms_manifest.h. Encoding and decoding go through msgpack-c. */
#define _XOPEN_SOURCE 700 /* lstat, realpath */
#include "mms_manifest.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mms_array.h"
#include "mms_fs.h"
#include "mms_msgpack.h"

static char *dupstr(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

mms_status mms_manifest_create(const char *kind, int64_t format, mms_manifest_t **out) {
    MMS_CHECK(kind && strlen(kind) < sizeof((*out)->kind), MMS_ERR_ARG, "bad manifest kind");
    mms_manifest_t *m;
    MMS_CALL(mms_calloc(1, sizeof *m, &m));
    strcpy(m->kind, kind);
    m->format = format;
    *out = m;
    return MMS_OK;
}

static void entry_clear(mms_mentry_t *e) {
    free(e->key);
    free(e->s);
    free(e->arr);
    memset(e, 0, sizeof *e);
}

void mms_manifest_destroy(mms_manifest_t **mp) {
    if (!mp || !*mp) return;
    mms_manifest_t *m = *mp;
    for (size_t i = 0; i < m->n; i++) entry_clear(&m->e[i]);
    free(m->e);
    free(m);
    *mp = NULL;
}

static mms_mentry_t *find(const mms_manifest_t *m, const char *key) {
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->e[i].key, key)) return &m->e[i];
    return NULL;
}

static mms_status slot(mms_manifest_t *m, const char *key, mms_mentry_t **out) {
    mms_mentry_t *e = find(m, key);
    if (e) {
        char *k = e->key;
        e->key = NULL;
        entry_clear(e);
        e->key = k;
        *out = e;
        return MMS_OK;
    }
    MMS_CALL(mms_grow(&m->e, sizeof *m->e, m->n + 1, &m->cap));
    e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    e->key = dupstr(key, strlen(key));
    MMS_CHECK(e->key, MMS_ERR_NOMEM, "out of memory");
    m->n++;
    *out = e;
    return MMS_OK;
}

mms_status mms_manifest_set_int(mms_manifest_t *m, const char *key, int64_t v) {
    mms_mentry_t *e;
    MMS_CALL(slot(m, key, &e));
    e->type = MMS_MV_INT;
    e->i = v;
    return MMS_OK;
}

mms_status mms_manifest_set_uint(mms_manifest_t *m, const char *key, uint64_t v) {
    mms_mentry_t *e;
    MMS_CALL(slot(m, key, &e));
    e->type = MMS_MV_UINT;
    e->u = v;
    return MMS_OK;
}

mms_status mms_manifest_set_real(mms_manifest_t *m, const char *key, double v) {
    mms_mentry_t *e;
    MMS_CALL(slot(m, key, &e));
    e->type = MMS_MV_REAL;
    e->r = v;
    return MMS_OK;
}

mms_status mms_manifest_set_str(mms_manifest_t *m, const char *key, const char *v) {
    mms_mentry_t *e;
    MMS_CALL(slot(m, key, &e));
    e->type = MMS_MV_STR;
    e->s = dupstr(v, strlen(v));
    MMS_CHECK(e->s, MMS_ERR_NOMEM, "out of memory");
    return MMS_OK;
}

mms_status mms_manifest_set_intarr(mms_manifest_t *m, const char *key, const int64_t *v, size_t n) {
    mms_mentry_t *e;
    MMS_CALL(slot(m, key, &e));
    e->type = MMS_MV_INTARR;
    MMS_CALL(mms_malloc((n ? n : 1) * sizeof(int64_t), &e->arr));
    if (n) memcpy(e->arr, v, n * sizeof(int64_t));
    e->arr_len = n;
    return MMS_OK;
}

int mms_manifest_has(const mms_manifest_t *m, const char *key) { return find(m, key) != NULL; }

static mms_status get(const mms_manifest_t *m, const char *key, mms_mvtype t,
                      const mms_mentry_t **out) {
    const mms_mentry_t *e = find(m, key);
    MMS_CHECK(e, MMS_ERR_FORMAT, "%s manifest: missing field '%s'", m->kind, key);
    /* a non-negative INT read as UINT and vice versa is fine: msgpack does not keep the sign type */
    int ok = e->type == t || (t == MMS_MV_UINT && e->type == MMS_MV_INT && e->i >= 0) ||
             (t == MMS_MV_INT && e->type == MMS_MV_UINT && e->u <= (uint64_t)INT64_MAX) ||
             (t == MMS_MV_REAL && (e->type == MMS_MV_INT || e->type == MMS_MV_UINT));
    MMS_CHECK(ok, MMS_ERR_FORMAT, "%s manifest: field '%s' has the wrong type", m->kind, key);
    *out = e;
    return MMS_OK;
}

mms_status mms_manifest_get_int(const mms_manifest_t *m, const char *key, int64_t *v) {
    const mms_mentry_t *e;
    MMS_CALL(get(m, key, MMS_MV_INT, &e));
    *v = e->type == MMS_MV_INT ? e->i : (int64_t)e->u;
    return MMS_OK;
}

mms_status mms_manifest_get_uint(const mms_manifest_t *m, const char *key, uint64_t *v) {
    const mms_mentry_t *e;
    MMS_CALL(get(m, key, MMS_MV_UINT, &e));
    *v = e->type == MMS_MV_UINT ? e->u : (uint64_t)e->i;
    return MMS_OK;
}

mms_status mms_manifest_get_real(const mms_manifest_t *m, const char *key, double *v) {
    const mms_mentry_t *e;
    MMS_CALL(get(m, key, MMS_MV_REAL, &e));
    *v = e->type == MMS_MV_REAL ? e->r : e->type == MMS_MV_INT ? (double)e->i : (double)e->u;
    return MMS_OK;
}

mms_status mms_manifest_get_str(const mms_manifest_t *m, const char *key, const char **v) {
    const mms_mentry_t *e;
    MMS_CALL(get(m, key, MMS_MV_STR, &e));
    *v = e->s;
    return MMS_OK;
}

mms_status mms_manifest_get_intarr(const mms_manifest_t *m, const char *key, const int64_t **v,
                                   size_t *n) {
    const mms_mentry_t *e;
    MMS_CALL(get(m, key, MMS_MV_INTARR, &e));
    *v = e->arr;
    *n = e->arr_len;
    return MMS_OK;
}

static void pack_str(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

mms_status mms_manifest_encode(const mms_manifest_t *m, char **buf, size_t *len) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (uint32_t)(m->n + 3));
    pack_str(&pk, "magic");
    pack_str(&pk, MMS_MANIFEST_MAGIC);
    pack_str(&pk, "kind");
    pack_str(&pk, m->kind);
    pack_str(&pk, "format");
    msgpack_pack_int64(&pk, m->format);
    for (size_t i = 0; i < m->n; i++) {
        const mms_mentry_t *e = &m->e[i];
        pack_str(&pk, e->key);
        switch (e->type) {
        case MMS_MV_INT: msgpack_pack_int64(&pk, e->i); break;
        case MMS_MV_UINT: msgpack_pack_uint64(&pk, e->u); break;
        case MMS_MV_REAL: msgpack_pack_double(&pk, e->r); break;
        case MMS_MV_STR: pack_str(&pk, e->s); break;
        case MMS_MV_INTARR:
            msgpack_pack_array(&pk, e->arr_len);
            for (size_t j = 0; j < e->arr_len; j++) msgpack_pack_int64(&pk, e->arr[j]);
            break;
        }
    }
    /* hand the sbuffer's storage to the caller */
    *buf = sb.data;
    *len = sb.size;
    MMS_CHECK(*buf != NULL, MMS_ERR_NOMEM, "out of memory encoding a manifest");
    return MMS_OK;
}

static int obj_is_str(const msgpack_object *o, const char *s) {
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n && !memcmp(o->via.str.ptr, s, n);
}

static mms_status decode_map(const msgpack_object *root, const char *name, const char *want_kind,
                             int64_t max_format, mms_manifest_t **out) {
    MMS_CHECK(root->type == MSGPACK_OBJECT_MAP, MMS_ERR_FORMAT,
              "%s: not an mmsage manifest (top level is not a map)", name);
    const msgpack_object_map *mp = &root->via.map;
    const msgpack_object *magic = NULL, *kind = NULL, *format = NULL;
    for (uint32_t i = 0; i < mp->size; i++) {
        const msgpack_object *k = &mp->ptr[i].key;
        if (obj_is_str(k, "magic")) magic = &mp->ptr[i].val;
        if (obj_is_str(k, "kind")) kind = &mp->ptr[i].val;
        if (obj_is_str(k, "format")) format = &mp->ptr[i].val;
    }
    MMS_CHECK(magic && obj_is_str(magic, MMS_MANIFEST_MAGIC), MMS_ERR_FORMAT,
              "%s: not an mmsage manifest (field 'magic' missing or wrong)", name);
    MMS_CHECK(kind && kind->type == MSGPACK_OBJECT_STR && kind->via.str.size < 32, MMS_ERR_FORMAT,
              "%s: manifest field 'kind' missing or invalid", name);
    char kbuf[32];
    memcpy(kbuf, kind->via.str.ptr, kind->via.str.size);
    kbuf[kind->via.str.size] = '\0';
    MMS_CHECK(!want_kind || !strcmp(kbuf, want_kind), MMS_ERR_MISMATCH,
              "%s: this is a '%s' directory, expected a '%s'", name, kbuf, want_kind);
    /* a format above INT64_MAX would turn negative in an int64 and pass any
     * max_format (found by fuzz_manifest): refused as invalid */
    MMS_CHECK(format && format->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                  format->via.u64 <= (uint64_t)INT64_MAX,
              MMS_ERR_FORMAT, "%s: manifest field 'format' missing or invalid", name);
    MMS_CHECK(max_format <= 0 || format->via.u64 <= (uint64_t)max_format, MMS_ERR_MISMATCH,
              "%s: format version %llu is newer than this mmsage supports (%lld)", name,
              (unsigned long long)format->via.u64, (long long)max_format);
    mms_manifest_t *m;
    MMS_CALL(mms_manifest_create(kbuf, (int64_t)format->via.u64, &m));
    mms_status s = MMS_OK;
    for (uint32_t i = 0; i < mp->size && s == MMS_OK; i++) {
        const msgpack_object *k = &mp->ptr[i].key, *v = &mp->ptr[i].val;
        if (obj_is_str(k, "magic") || obj_is_str(k, "kind") || obj_is_str(k, "format")) continue;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0 || k->via.str.size > 255 ||
            memchr(k->via.str.ptr, 0, k->via.str.size)) {
            mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                          "%s: manifest key %u is not a short string", name, i);
            s = MMS_ERR_FORMAT;
            break;
        }
        char key[256];
        memcpy(key, k->via.str.ptr, k->via.str.size);
        key[k->via.str.size] = '\0';
        switch (v->type) {
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            s = v->via.u64 <= (uint64_t)INT64_MAX ? mms_manifest_set_int(m, key, (int64_t)v->via.u64)
                                                 : mms_manifest_set_uint(m, key, v->via.u64);
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: s = mms_manifest_set_int(m, key, v->via.i64); break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: s = mms_manifest_set_real(m, key, v->via.f64); break;
        case MSGPACK_OBJECT_STR: {
            if (memchr(v->via.str.ptr, 0, v->via.str.size)) {
                mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                              "%s: manifest field '%s' contains a NUL byte", name, key);
                s = MMS_ERR_FORMAT;
                break;
            }
            char *tmp = dupstr(v->via.str.ptr, v->via.str.size);
            if (!tmp) {
                s = MMS_ERR_NOMEM;
                break;
            }
            s = mms_manifest_set_str(m, key, tmp);
            free(tmp);
            break;
        }
        case MSGPACK_OBJECT_ARRAY: {
            uint32_t n = v->via.array.size;
            int64_t *arr = malloc((n ? n : 1) * sizeof *arr);
            if (!arr) {
                s = MMS_ERR_NOMEM;
                break;
            }
            for (uint32_t j = 0; j < n && s == MMS_OK; j++) {
                const msgpack_object *x = &v->via.array.ptr[j];
                if (x->type == MSGPACK_OBJECT_POSITIVE_INTEGER && x->via.u64 <= (uint64_t)INT64_MAX)
                    arr[j] = (int64_t)x->via.u64;
                else if (x->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                    arr[j] = x->via.i64;
                else {
                    mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                                  "%s: manifest field '%s' item %u is not an integer", name, key, j);
                    s = MMS_ERR_FORMAT;
                }
            }
            if (s == MMS_OK) s = mms_manifest_set_intarr(m, key, arr, n);
            free(arr);
            break;
        }
        default:
            mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                          "%s: manifest field '%s' has an unsupported type", name, key);
            s = MMS_ERR_FORMAT;
        }
    }
    if (s != MMS_OK) {
        mms_manifest_destroy(&m);
        return s;
    }
    *out = m;
    return MMS_OK;
}

mms_status mms_manifest_decode(const void *buf, size_t len, const char *name, const char *want_kind,
                               int64_t max_format, mms_manifest_t **out) {
    *out = NULL;
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    size_t off = 0;
    char why[160];
    if (mms_msgpack_bound(buf, len, SIZE_MAX /* owed <= bytes left already bounds it */, why, sizeof why) != MMS_MSGPACK_OK) {
        msgpack_unpacked_destroy(&res);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s: %s", name, why);
    }
    msgpack_unpack_return r = msgpack_unpack_next(&res, buf, len, &off);
    if (r != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy(&res);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s: corrupt or truncated MessagePack (%s)", name,
                  r == MSGPACK_UNPACK_CONTINUE ? "truncated" : "malformed");
    }
    if (off != len) {
        msgpack_unpacked_destroy(&res);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s: trailing bytes after the manifest", name);
    }
    mms_status s = decode_map(&res.data, name, want_kind, max_format, out);
    msgpack_unpacked_destroy(&res);
    return s;
}

mms_status mms_manifest_write_dir(const mms_manifest_t *m, const char *dir) {
    char path[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(path, sizeof path, dir, MMS_MANIFEST_FILE));
    char *buf;
    size_t len;
    MMS_CALL(mms_manifest_encode(m, &buf, &len));
    mms_status s = mms_write_file_atomic(path, buf, len);
    free(buf);
    return s;
}

mms_status mms_manifest_seal_dir(mms_manifest_t *m, const char *dir, const char *const *skip) {
    MMS_CALL(mms_manifest_record_files(m, dir, skip));
    return mms_manifest_write_dir(m, dir);
}

mms_status mms_manifest_read_dir(const char *dir, const char *want_kind, int64_t max_format,
                                 mms_manifest_t **out) {
    char path[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(path, sizeof path, dir, MMS_MANIFEST_FILE));
    MMS_CHECK(mms_path_is_dir(dir), MMS_ERR_IO, "'%s' is not a directory", dir);
    MMS_CHECK(mms_path_exists(path), MMS_ERR_FORMAT,
              "'%s' has no %s: not an mmsage %s directory (or an unfinished one)", dir,
              MMS_MANIFEST_FILE, want_kind ? want_kind : "output");
    char *buf;
    size_t len;
    MMS_CALL(mms_read_file(path, &buf, &len));
    mms_status s = mms_manifest_decode(buf, len, path, want_kind, max_format, out);
    free(buf);
    return s;
}

/* ---------------------------------------------------------- payload checksums */

static int has_prefix(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

/* Drop every entry whose key starts with prefix (keeps the others' order). */
static void remove_prefix(mms_manifest_t *m, const char *prefix) {
    size_t w = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (has_prefix(m->e[i].key, prefix)) {
            entry_clear(&m->e[i]);
            continue;
        }
        if (w != i) m->e[w] = m->e[i];
        w++;
    }
    m->n = w;
}

static int skipped(const char *rel, const char *const *skip) {
    if (!strcmp(rel, MMS_MANIFEST_FILE) || strstr(rel, ".tmp.")) return 1;
    for (size_t i = 0; skip && skip[i]; i++)
        if (!strcmp(rel, skip[i])) return 1;
    return 0;
}

static mms_status record_one(mms_manifest_t *m, const char *path, const char *rel, off_t size) {
    char key[MMS_PATH_MAX + 16];
    uint64_t h;
    MMS_CALL(mms_file_checksum(path, &h));
    snprintf(key, sizeof key, MMS_MANIFEST_SUM_PREFIX "%s", rel);
    MMS_CALL(mms_manifest_set_uint(m, key, h));
    snprintf(key, sizeof key, MMS_MANIFEST_SIZE_PREFIX "%s", rel);
    return mms_manifest_set_int(m, key, (int64_t)size);
}

/* Where checksums may be taken over instead of read: files that are the same
 * inode as the parent directory's file of the same name (hard links of a new
 * version, mms_dir_link_tree) keep the parent's recorded sum and size. */
typedef struct {
    const mms_manifest_t *parent;
    const char *parent_dir;
} reuse_t;

static int reused(mms_manifest_t *m, const reuse_t *ru, const char *rel, const struct stat *st,
                  mms_status *s) {
    if (!ru || !ru->parent) return 0;
    char pp[MMS_PATH_MAX], key[MMS_PATH_MAX + 16];
    if (mms_path_join(pp, sizeof pp, ru->parent_dir, rel) != MMS_OK) {
        mms_error_clear();
        return 0;
    }
    struct stat ps;
    uint64_t sum;
    int64_t size;
    if (lstat(pp, &ps) != 0 || ps.st_dev != st->st_dev || ps.st_ino != st->st_ino) return 0;
    if (!mms_manifest_file_sum(ru->parent, rel, &sum)) return 0;
    snprintf(key, sizeof key, MMS_MANIFEST_SIZE_PREFIX "%s", rel);
    const mms_mentry_t *e = find(ru->parent, key);
    if (!e || (e->type != MMS_MV_INT && e->type != MMS_MV_UINT)) return 0;
    size = e->type == MMS_MV_INT ? e->i : (int64_t)e->u;
    if (size != (int64_t)st->st_size) return 0;
    snprintf(key, sizeof key, MMS_MANIFEST_SUM_PREFIX "%s", rel);
    *s = mms_manifest_set_uint(m, key, sum);
    snprintf(key, sizeof key, MMS_MANIFEST_SIZE_PREFIX "%s", rel);
    if (*s == MMS_OK) *s = mms_manifest_set_int(m, key, size);
    return 1;
}

/* Walk dir/rel (rel "" at the top), depth levels of subdirectories below it. */
static mms_status record_walk(mms_manifest_t *m, const char *dir, const char *rel, int depth,
                              const char *const *skip, const reuse_t *ru) {
    char here[MMS_PATH_MAX];
    MMS_CALL(rel[0] ? mms_path_join(here, sizeof here, dir, rel)
                    : mms_path_join(here, sizeof here, dir, "."));
    DIR *d = opendir(here);
    MMS_CHECK(d, MMS_ERR_IO, "cannot list '%s': %s", here, strerror(errno));
    mms_status s = MMS_OK;
    struct dirent *de;
    while (s == MMS_OK && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char sub[MMS_PATH_MAX], path[MMS_PATH_MAX];
        if (rel[0])
            s = mms_path_join(sub, sizeof sub, rel, de->d_name);
        else if (strlen(de->d_name) < sizeof sub)
            strcpy(sub, de->d_name);
        else
            s = MMS_ERR_ARG;
        if (s == MMS_OK) s = mms_path_join(path, sizeof path, dir, sub);
        if (s != MMS_OK) break;
        struct stat st;
        if (lstat(path, &st) != 0) {
            mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "cannot stat '%s': %s", path,
                          strerror(errno));
            s = MMS_ERR_IO;
        } else if (S_ISREG(st.st_mode)) {
            if (!skipped(sub, skip) && !reused(m, ru, sub, &st, &s))
                s = record_one(m, path, sub, st.st_size);
        } else if (S_ISDIR(st.st_mode) && depth > 0 && !strstr(sub, ".tmp.")) {
            char man[MMS_PATH_MAX];
            s = mms_path_join(man, sizeof man, path, MMS_MANIFEST_FILE);
            if (s == MMS_OK && !mms_path_exists(man))
                s = record_walk(m, dir, sub, depth - 1, skip, ru);
        }
    }
    closedir(d);
    return s;
}

mms_status mms_manifest_record_files(mms_manifest_t *m, const char *dir, const char *const *skip) {
    remove_prefix(m, MMS_MANIFEST_SUM_PREFIX);
    remove_prefix(m, MMS_MANIFEST_SIZE_PREFIX);
    return record_walk(m, dir, "", 1, skip, NULL);
}

mms_status mms_manifest_seal_dir_from(mms_manifest_t *m, const char *dir, const char *const *skip,
                                      const mms_manifest_t *parent, const char *parent_dir) {
    remove_prefix(m, MMS_MANIFEST_SUM_PREFIX);
    remove_prefix(m, MMS_MANIFEST_SIZE_PREFIX);
    reuse_t ru = {parent, parent_dir};
    MMS_CALL(record_walk(m, dir, "", 1, skip, &ru));
    return mms_manifest_write_dir(m, dir);
}

size_t mms_manifest_recorded_files(const mms_manifest_t *m) {
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++) n += has_prefix(m->e[i].key, MMS_MANIFEST_SUM_PREFIX);
    return n;
}

int mms_manifest_file_sum(const mms_manifest_t *m, const char *relpath, uint64_t *sum) {
    char key[MMS_PATH_MAX + 16];
    snprintf(key, sizeof key, MMS_MANIFEST_SUM_PREFIX "%s", relpath);
    const mms_mentry_t *e = find(m, key);
    if (!e || (e->type != MMS_MV_UINT && e->type != MMS_MV_INT)) return 0;
    *sum = e->type == MMS_MV_UINT ? e->u : (uint64_t)e->i;
    return 1;
}

/* Check one file against its record (want_sum, want_size >= 0 when recorded). */
static mms_status check_file(const char *dir, const char *rel, uint64_t want_sum,
                             int64_t want_size, uint64_t *verified) {
    char path[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(path, sizeof path, dir, rel));
    struct stat st;
    MMS_CHECK(stat(path, &st) == 0, MMS_ERR_FORMAT,
              "'%s' is missing (%s/%s records it): %s", path, dir, MMS_MANIFEST_FILE,
              strerror(errno));
    MMS_CHECK(want_size < 0 || (int64_t)st.st_size == want_size, MMS_ERR_FORMAT,
              "'%s' is %lld bytes, but %s/%s records %lld: the file was truncated, extended or "
              "replaced after it was written",
              path, (long long)st.st_size, dir, MMS_MANIFEST_FILE, (long long)want_size);
    uint64_t h;
    MMS_CALL(mms_file_checksum(path, &h));
    MMS_CHECK(h == want_sum, MMS_ERR_FORMAT,
              "'%s' is corrupt: its checksum is %016llx, %s/%s records %016llx (the bytes changed "
              "after it was written; rebuild it or restore it from a copy)",
              path, (unsigned long long)h, dir, MMS_MANIFEST_FILE, (unsigned long long)want_sum);
    if (verified) *verified += (uint64_t)st.st_size;
    return MMS_OK;
}

static int64_t recorded_size(const mms_manifest_t *m, const char *rel) {
    char key[MMS_PATH_MAX + 16];
    snprintf(key, sizeof key, MMS_MANIFEST_SIZE_PREFIX "%s", rel);
    const mms_mentry_t *e = find(m, key);
    if (e && e->type == MMS_MV_INT) return e->i;
    if (e && e->type == MMS_MV_UINT && e->u <= (uint64_t)INT64_MAX) return (int64_t)e->u;
    return -1;
}

mms_status mms_manifest_verify_files(const mms_manifest_t *m, const char *dir, const char *sub,
                                     uint64_t *verified) {
    const size_t pl = strlen(MMS_MANIFEST_SUM_PREFIX);
    const size_t sl = sub ? strlen(sub) : 0;
    for (size_t i = 0; i < m->n; i++) {
        const mms_mentry_t *e = &m->e[i];
        if (!has_prefix(e->key, MMS_MANIFEST_SUM_PREFIX)) continue;
        const char *rel = e->key + pl;
        const char *slash = strrchr(rel, '/');
        size_t dl = slash ? (size_t)(slash - rel) : 0;
        if (dl != sl || (sl && strncmp(rel, sub, sl))) continue;
        MMS_CHECK(e->type == MMS_MV_UINT || e->type == MMS_MV_INT, MMS_ERR_FORMAT,
                  "%s/%s: field '%s' is not a checksum", dir, MMS_MANIFEST_FILE, e->key);
        uint64_t want = e->type == MMS_MV_UINT ? e->u : (uint64_t)e->i;
        MMS_CALL(check_file(dir, rel, want, recorded_size(m, rel), verified));
    }
    return MMS_OK;
}

mms_status mms_manifest_verify_file(const mms_manifest_t *m, const char *dir, const char *relpath) {
    if (mms_manifest_recorded_files(m) == 0) return MMS_OK;
    uint64_t want;
    MMS_CHECK(mms_manifest_file_sum(m, relpath, &want), MMS_ERR_FORMAT,
              "'%s/%s' is not recorded in %s/%s (a file added after the directory was written, "
              "or a manifest from another version)",
              dir, relpath, dir, MMS_MANIFEST_FILE);
    return check_file(dir, relpath, want, recorded_size(m, relpath), NULL);
}

/* ------------------------------------------------------ paths to other dirs */

/* The real absolute path of a directory that may not exist yet (its parent must). */
static mms_status real_future(const char *dir, char *out, size_t cap) {
    char buf[PATH_MAX];
    if (realpath(dir, buf)) {
        MMS_CHECK(strlen(buf) < cap, MMS_ERR_ARG, "path too long: %s", buf);
        strcpy(out, buf);
        return MMS_OK;
    }
    char parent[MMS_PATH_MAX];
    MMS_CHECK(strlen(dir) < sizeof parent, MMS_ERR_ARG, "path too long: %s", dir);
    strcpy(parent, dir);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    const char *base = slash ? slash + 1 : parent;
    char pdir[MMS_PATH_MAX];
    if (!slash)
        strcpy(pdir, ".");
    else if (slash == parent)
        strcpy(pdir, "/");
    else {
        *slash = '\0';
        strcpy(pdir, parent);
    }
    MMS_CHECK(realpath(pdir, buf), MMS_ERR_IO, "cannot resolve '%s': %s", pdir, strerror(errno));
    int w = snprintf(out, cap, "%s/%s", strcmp(buf, "/") ? buf : "", base);
    MMS_CHECK(w > 0 && (size_t)w < cap, MMS_ERR_ARG, "path too long: %s/%s", buf, base);
    return MMS_OK;
}

/* rel from absolute normalised directory `from` to absolute path `to`. */
static mms_status relative(const char *from, const char *to, char *out, size_t cap) {
    size_t i = 0, common = 0;
    while (from[i] && from[i] == to[i]) {
        if (from[i] == '/') common = i;
        i++;
    }
    if (!from[i] && (to[i] == '/' || !to[i])) common = i; /* from is a prefix of to */
    else if (!to[i] && from[i] == '/') common = i;        /* to is a prefix of from */
    out[0] = '\0';
    size_t len = 0;
    for (const char *p = from + common; *p; p++)
        if (*p == '/' && p[1]) {
            MMS_CHECK(len + 3 < cap, MMS_ERR_ARG, "path too long");
            memcpy(out + len, "../", 3);
            len += 3;
            out[len] = '\0';
        }
    const char *rest = to + common + (to[common] == '/');
    MMS_CHECK(len + strlen(rest) + 2 < cap, MMS_ERR_ARG, "path too long");
    strcpy(out + len, rest);
    len += strlen(rest);
    if (len == 0) strcpy(out, ".");
    else if (out[len - 1] == '/') out[len - 1] = '\0';
    return MMS_OK;
}

mms_status mms_manifest_set_path(mms_manifest_t *m, const char *key, const char *target,
                                 const char *final_dir) {
    char t[MMS_PATH_MAX], f[MMS_PATH_MAX], rel[MMS_PATH_MAX], abskey[256];
    MMS_CHECK(strlen(key) + 5 < sizeof abskey, MMS_ERR_ARG, "manifest key too long: %s", key);
    MMS_CALL(real_future(target, t, sizeof t));
    MMS_CALL(real_future(final_dir, f, sizeof f));
    MMS_CALL(relative(f, t, rel, sizeof rel));
    snprintf(abskey, sizeof abskey, "%s.abs", key);
    MMS_CALL(mms_manifest_set_str(m, key, rel));
    return mms_manifest_set_str(m, abskey, t);
}

/* The candidates for key's path, best first (NULL where there is none). */
static void path_candidates(const mms_manifest_t *m, const char *key, const char *dir,
                            char joined[MMS_PATH_MAX], const char *cand[3]) {
    char abskey[256];
    snprintf(abskey, sizeof abskey, "%s.abs", key);
    const mms_mentry_t *e = find(m, key), *a = find(m, abskey);
    const char *v = e && e->type == MMS_MV_STR ? e->s : NULL;
    const char *abs = a && a->type == MMS_MV_STR ? a->s : NULL;
    joined[0] = '\0';
    if (v && v[0] != '/' && mms_path_join(joined, MMS_PATH_MAX, dir, v) != MMS_OK) joined[0] = '\0';
    cand[0] = v && v[0] == '/' ? v : joined;
    cand[1] = abs;
    cand[2] = abs ? NULL : v; /* an older manifest: the path as it was typed */
}

int mms_manifest_find_path(const mms_manifest_t *m, const char *key, const char *dir, char *out,
                           size_t cap) {
    char joined[MMS_PATH_MAX];
    const char *cand[3];
    path_candidates(m, key, dir, joined, cand);
    for (int i = 0; i < 3; i++) {
        if (!cand[i] || !cand[i][0] || !mms_path_exists(cand[i]) || strlen(cand[i]) >= cap) continue;
        strcpy(out, cand[i]);
        return 1;
    }
    return 0;
}

mms_status mms_manifest_get_path(const mms_manifest_t *m, const char *key, const char *dir,
                                 char *out, size_t cap) {
    const char *v;
    MMS_CALL(mms_manifest_get_str(m, key, &v));
    if (mms_manifest_find_path(m, key, dir, out, cap)) return MMS_OK;
    char joined[MMS_PATH_MAX];
    const char *cand[3];
    path_candidates(m, key, dir, joined, cand);
    MMS_CHECK(0, MMS_ERR_ARG,
              "%s: its %s '%s' is not found (looked for '%s'%s%s%s): it was moved or removed",
              dir, key, v, cand[0], cand[1] ? " and '" : "", cand[1] ? cand[1] : "",
              cand[1] ? "'" : "");
    return MMS_ERR_ARG; /* not reached (MMS_CHECK(0) returns); for -O0's flow analysis */
}
