/* checkpoint.c: see checkpoint.h. */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "mms_fs.h"

static const char k_magic[8] = {'M', 'M', 'S', 'C', 'K', 'P', 'T', 0};

static mms_status put(FILE *f, XXH3_state_t *st, const void *p, size_t n, const char *path) {
    MMS_CHECK(fwrite(p, 1, n, f) == n, MMS_ERR_IO, "error writing '%s': %s", path, strerror(errno));
    XXH3_64bits_update(st, p, n);
    return MMS_OK;
}

mms_status mms_ckpt_save(const char *path, const mms_manifest_t *header,
                         const mms_ckpt_section_t *sec, int nsec) {
    char tmp[MMS_PATH_MAX];
    MMS_CALL(mms_file_tmpname(path, tmp, sizeof tmp));
    char *hbuf = NULL;
    size_t hlen = 0;
    MMS_CALL(mms_manifest_encode(header, &hbuf, &hlen));
    FILE *f = NULL;
    mms_status s = mms_fopen(tmp, "wb", &f);
    XXH3_state_t *st = XXH3_createState();
    if (s == MMS_OK && !st) {
        mms_error_set(MMS_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
        s = MMS_ERR_NOMEM;
    }
    if (s == MMS_OK) {
        XXH3_64bits_reset(st);
        uint32_t ver = MMS_CKPT_FORMAT, n = (uint32_t)nsec;
        uint64_t hl = hlen;
        s = put(f, st, k_magic, 8, tmp);
        if (s == MMS_OK) s = put(f, st, &ver, 4, tmp);
        if (s == MMS_OK) s = put(f, st, &n, 4, tmp);
        if (s == MMS_OK) s = put(f, st, &hl, 8, tmp);
        if (s == MMS_OK) s = put(f, st, hbuf, hlen, tmp);
        for (int i = 0; i < nsec && s == MMS_OK; i++) {
            uint64_t l = sec[i].len;
            s = put(f, st, &l, 8, tmp);
            if (s == MMS_OK && l) s = put(f, st, sec[i].data, sec[i].len, tmp);
        }
        if (s == MMS_OK) {
            uint64_t h = XXH3_64bits_digest(st);
            if (fwrite(&h, 1, 8, f) != 8) {
                mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "error writing '%s'", tmp);
                s = MMS_ERR_IO;
            }
        }
        if (s == MMS_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0)) {
            mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "cannot flush '%s': %s", tmp,
                          strerror(errno));
            s = MMS_ERR_IO;
        }
    }
    if (f) {
        mms_status s2 = mms_fclose(&f, tmp);
        if (s == MMS_OK) s = s2;
    }
    if (st) XXH3_freeState(st);
    free(hbuf);
    if (s == MMS_OK) s = mms_file_commit(tmp, path);
    if (s != MMS_OK) unlink(tmp);
    return s;
}

static mms_status read_all(const char *path, char **buf, size_t *len) {
    MMS_CHECK(mms_path_exists(path), MMS_ERR_IO, "checkpoint '%s' does not exist", path);
    return mms_read_file(path, buf, len);
}

/* Parse the fixed part and header; *off is set past the header. */
static mms_status parse(const char *path, const char *b, size_t len, mms_manifest_t **header,
                        uint32_t *nsec, size_t *off) {
    MMS_CHECK(len >= 32 && !memcmp(b, k_magic, 8), MMS_ERR_FORMAT,
              "'%s' is not an mmsage checkpoint (bad magic)", path);
    uint64_t want;
    memcpy(&want, b + len - 8, 8);
    MMS_CHECK(XXH3_64bits(b, len - 8) == want, MMS_ERR_FORMAT,
              "checkpoint '%s' is corrupt or truncated (checksum mismatch); remove it or restore "
              "a good copy",
              path);
    uint32_t ver;
    uint64_t hl;
    memcpy(&ver, b + 8, 4);
    memcpy(nsec, b + 12, 4);
    memcpy(&hl, b + 16, 8);
    MMS_CHECK(ver <= MMS_CKPT_FORMAT, MMS_ERR_MISMATCH,
              "checkpoint '%s' has format %u, newer than this mmsage (%d)", path, ver,
              MMS_CKPT_FORMAT);
    MMS_CHECK(hl <= len - 32, MMS_ERR_FORMAT, "checkpoint '%s': bad header length", path);
    MMS_CALL(mms_manifest_decode(b + 24, hl, path, "checkpoint", 0, header));
    *off = 24 + hl;
    return MMS_OK;
}

mms_status mms_ckpt_load(const char *path, mms_manifest_t **header, mms_ckpt_section_t *sec,
                         int nsec) {
    char *b;
    size_t len, off;
    uint32_t n;
    *header = NULL;
    MMS_CALL(read_all(path, &b, &len));
    mms_status s = parse(path, b, len, header, &n, &off);
    if (s == MMS_OK && (int)n != nsec) {
        mms_error_set(MMS_ERR_MISMATCH, __FILE__, __LINE__, __func__,
                      "checkpoint '%s' has %u sections, expected %d", path, n, nsec);
        s = MMS_ERR_MISMATCH;
    }
    for (int i = 0; i < nsec && s == MMS_OK; i++) {
        uint64_t l;
        if (off + 8 > len - 8) {
            mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                          "checkpoint '%s' is truncated in section %s", path, sec[i].name);
            s = MMS_ERR_FORMAT;
            break;
        }
        memcpy(&l, b + off, 8);
        off += 8;
        if (l != sec[i].len || off + l > len - 8) {
            mms_error_set(MMS_ERR_MISMATCH, __FILE__, __LINE__, __func__,
                          "checkpoint '%s': section %s has %llu bytes, expected %zu (another model "
                          "shape?)",
                          path, sec[i].name, (unsigned long long)l, sec[i].len);
            s = MMS_ERR_MISMATCH;
            break;
        }
        if (l) memcpy(sec[i].data, b + off, l);
        off += l;
    }
    free(b);
    if (s != MMS_OK) mms_manifest_destroy(header);
    return s;
}
