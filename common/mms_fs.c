/* mms_fs.c: see mms_fs.h. */
#define _GNU_SOURCE
#include "mms_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "mms_array.h"

mms_status mms_path_join(char *out, size_t cap, const char *a, const char *b) {
    int n = snprintf(out, cap, "%s/%s", a, b);
    MMS_CHECK(n >= 0 && (size_t)n < cap, MMS_ERR_ARG, "path too long: %s/%s", a, b);
    return MMS_OK;
}

int mms_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int mms_path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

mms_status mms_mkdir_p(const char *path) {
    char buf[MMS_PATH_MAX];
    size_t n = strlen(path);
    MMS_CHECK(n > 0 && n < sizeof buf, MMS_ERR_ARG, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                MMS_CHECK(0, MMS_ERR_IO, "cannot create directory '%s': %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    MMS_CHECK(mms_path_is_dir(path), MMS_ERR_IO, "'%s' exists and is not a directory", path);
    return MMS_OK;
}

mms_status mms_rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return MMS_OK;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        MMS_CHECK(d != NULL, MMS_ERR_IO, "cannot open directory '%s': %s", path, strerror(errno));
        struct dirent *e;
        mms_status s = MMS_OK;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[MMS_PATH_MAX];
            s = mms_path_join(sub, sizeof sub, path, e->d_name);
            if (s == MMS_OK) s = mms_rm_rf(sub);
            if (s != MMS_OK) break;
        }
        closedir(d);
        if (s != MMS_OK) return s;
        MMS_CHECK(rmdir(path) == 0, MMS_ERR_IO, "cannot remove '%s': %s", path, strerror(errno));
    } else {
        MMS_CHECK(unlink(path) == 0, MMS_ERR_IO, "cannot remove '%s': %s", path, strerror(errno));
    }
    return MMS_OK;
}

mms_status mms_outdir_begin(const char *final_dir, int force, char *tmp_out, size_t cap) {
    MMS_CHECK(final_dir && final_dir[0], MMS_ERR_ARG, "no output directory given");
    MMS_CHECK(force || !mms_path_exists(final_dir), MMS_ERR_EXISTS,
              "output '%s' already exists (pass --force to replace it)", final_dir);
    int n = snprintf(tmp_out, cap, "%s.tmp.%ld", final_dir, (long)getpid());
    MMS_CHECK(n > 0 && (size_t)n < cap, MMS_ERR_ARG, "path too long: %s", final_dir);
    MMS_CALL(mms_rm_rf(tmp_out));
    MMS_CALL(mms_mkdir_p(tmp_out));
    return MMS_OK;
}

mms_status mms_outdir_commit(const char *tmp_dir, const char *final_dir, int force) {
    if (mms_path_exists(final_dir)) {
        MMS_CHECK(force, MMS_ERR_EXISTS, "output '%s' appeared while writing (pass --force)",
                  final_dir);
        char old[MMS_PATH_MAX];
        int n = snprintf(old, sizeof old, "%s.old.%ld", final_dir, (long)getpid());
        MMS_CHECK(n > 0 && (size_t)n < sizeof old, MMS_ERR_ARG, "path too long");
        MMS_CHECK(rename(final_dir, old) == 0, MMS_ERR_IO, "cannot move '%s' aside: %s",
                  final_dir, strerror(errno));
        MMS_CHECK(rename(tmp_dir, final_dir) == 0, MMS_ERR_IO, "cannot rename '%s' to '%s': %s",
                  tmp_dir, final_dir, strerror(errno));
        MMS_CALL(mms_rm_rf(old));
        return MMS_OK;
    }
    MMS_CHECK(rename(tmp_dir, final_dir) == 0, MMS_ERR_IO, "cannot rename '%s' to '%s': %s",
              tmp_dir, final_dir, strerror(errno));
    return MMS_OK;
}

void mms_outdir_abort(const char *tmp_dir) {
    if (tmp_dir && tmp_dir[0]) (void)mms_rm_rf(tmp_dir);
}

mms_status mms_file_tmpname(const char *path, char *out, size_t cap) {
    int n = snprintf(out, cap, "%s.tmp.%ld", path, (long)getpid());
    MMS_CHECK(n > 0 && (size_t)n < cap, MMS_ERR_ARG, "path too long: %s", path);
    return MMS_OK;
}

mms_status mms_file_commit(const char *tmp_path, const char *final_path) {
    MMS_CHECK(rename(tmp_path, final_path) == 0, MMS_ERR_IO, "cannot rename '%s' to '%s': %s",
              tmp_path, final_path, strerror(errno));
    return MMS_OK;
}

mms_status mms_fopen(const char *path, const char *mode, FILE **out) {
    *out = fopen(path, mode);
    MMS_CHECK(*out != NULL, MMS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    return MMS_OK;
}

mms_status mms_fclose(FILE **f, const char *path) {
    if (!f || !*f) return MMS_OK;
    int bad = ferror(*f);
    int rc = fclose(*f);
    *f = NULL;
    MMS_CHECK(!bad && rc == 0, MMS_ERR_IO, "error writing '%s': %s", path, strerror(errno));
    return MMS_OK;
}

mms_status mms_read_file(const char *path, char **out, size_t *len) {
    FILE *f;
    MMS_CALL(mms_fopen(path, "rb", &f));
    size_t cap = 0, n = 0;
    char *buf = NULL;
    mms_status s = mms_grow(&buf, 1, 1 << 16, &cap);
    while (s == MMS_OK) {
        s = mms_grow(&buf, 1, n + 2, &cap); /* room to read a byte, and the NUL */
        if (s != MMS_OK) break;
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "error reading '%s'", path);
                s = MMS_ERR_IO;
            }
            break;
        }
    }
    fclose(f);
    if (s != MMS_OK) {
        free(buf);
        return s;
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return MMS_OK;
}

mms_status mms_write_file_atomic(const char *path, const void *data, size_t len) {
    char tmp[MMS_PATH_MAX];
    MMS_CALL(mms_file_tmpname(path, tmp, sizeof tmp));
    FILE *f;
    MMS_CALL(mms_fopen(tmp, "wb", &f));
    size_t w = fwrite(data, 1, len, f);
    mms_status s = mms_fclose(&f, tmp);
    if (s == MMS_OK && w != len) {
        mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "short write to '%s'", tmp);
        s = MMS_ERR_IO;
    }
    if (s != MMS_OK) {
        unlink(tmp);
        return s;
    }
    return mms_file_commit(tmp, path);
}

mms_status mms_file_copy(const char *from_dir, const char *to_dir, const char *name) {
    char a[MMS_PATH_MAX], b[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(a, sizeof a, from_dir, name));
    MMS_CALL(mms_path_join(b, sizeof b, to_dir, name));
    char *buf;
    size_t len;
    MMS_CALL(mms_read_file(a, &buf, &len));
    mms_status s = mms_write_file_atomic(b, buf, len);
    free(buf);
    return s;
}

mms_status mms_file_checksum(const char *path, uint64_t *out) {
    FILE *f;
    MMS_CALL(mms_fopen(path, "rb", &f));
    XXH3_state_t *st = XXH3_createState();
    MMS_CHECK(st != NULL, MMS_ERR_NOMEM, "out of memory");
    XXH3_64bits_reset(st);
    static const size_t chunk = 1 << 20;
    char *buf = malloc(chunk);
    if (!buf) {
        XXH3_freeState(st);
        fclose(f);
        MMS_CHECK(0, MMS_ERR_NOMEM, "out of memory");
    }
    size_t r;
    while ((r = fread(buf, 1, chunk, f)) > 0) XXH3_64bits_update(st, buf, r);
    int bad = ferror(f);
    fclose(f);
    free(buf);
    *out = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    MMS_CHECK(!bad, MMS_ERR_IO, "error reading '%s'", path);
    return MMS_OK;
}

uint64_t mms_checksum(const void *data, size_t len, uint64_t seed) {
    return XXH3_64bits_withSeed(data, len, seed);
}

mms_status mms_map_file(const char *path, mms_map_t *m) {
    m->data = NULL;
    m->len = 0;
    int fd = open(path, O_RDONLY);
    MMS_CHECK(fd >= 0, MMS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        MMS_CHECK(0, MMS_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
    }
    m->len = (size_t)st.st_size;
    if (m->len == 0) {
        close(fd);
        return MMS_OK;
    }
    void *p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    MMS_CHECK(p != MAP_FAILED, MMS_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
    m->data = p;
    return MMS_OK;
}

void mms_unmap(mms_map_t *m) {
    if (m && m->data) munmap(m->data, m->len);
    if (m) {
        m->data = NULL;
        m->len = 0;
    }
}

int mms_getline(char **buf, size_t *cap, FILE *f) {
    ssize_t n = getline(buf, cap, f);
    if (n < 0) return ferror(f) ? -1 : 0;
    while (n > 0 && ((*buf)[n - 1] == '\n' || (*buf)[n - 1] == '\r')) (*buf)[--n] = '\0';
    return 1;
}
