/* mms_fs.c: see mms_fs.h. */
#define _GNU_SOURCE
#include "mms_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "mms_array.h"
#include "mms_log.h"

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

/* ---- temporary names and stale ones ------------------------------------------ */

void mms_tmp_host(char *out, size_t cap) {
    char h[256];
    if (cap == 0) return;
    if (gethostname(h, sizeof h) != 0) h[0] = '\0';
    h[sizeof h - 1] = '\0';
    size_t n = 0;
    for (const char *p = h; *p && *p != '.' && n + 1 < cap; p++) {
        char c = *p;
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        out[n++] = ok ? c : '-';
    }
    out[n] = '\0';
    if (n == 0) snprintf(out, cap, "host");
}

/* path without its trailing slashes ("/" stays "/"), into out. */
static mms_status strip_slashes(const char *path, char *out, size_t cap) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    MMS_CHECK(n > 0 && n < cap, MMS_ERR_ARG, "bad or too long path '%s'", path);
    memcpy(out, path, n);
    out[n] = '\0';
    return MMS_OK;
}

/* "<path>.tmp.<host>.<pid>" without reaping. */
static mms_status tmp_name(const char *path, char *out, size_t cap) {
    char base[MMS_PATH_MAX], host[72];
    MMS_CALL(strip_slashes(path, base, sizeof base));
    mms_tmp_host(host, sizeof host);
    int n = snprintf(out, cap, "%s.tmp.%s.%ld", base, host, (long)getpid());
    MMS_CHECK(n > 0 && (size_t)n < cap, MMS_ERR_ARG, "path too long: %s", path);
    return MMS_OK;
}

/* A pid written as 1..9 digits and nothing else; 0 if not. */
static long parse_pid(const char *p) {
    size_t n = strlen(p);
    if (n == 0 || n > 9) return 0; /* pid_max is at most 2^22 */
    long pid = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        pid = pid * 10 + (*p - '0');
    }
    return pid;
}

/* The pid of a temporary's suffix (what follows "<base>.tmp."): legacy
 * "<digits>", or "<host>.<digits>" with host this host. 0 if neither. */
static long tmp_suffix_pid(const char *suf, const char *host) {
    long pid = parse_pid(suf);
    if (pid > 0) return pid;
    size_t hl = strlen(host);
    if (strncmp(suf, host, hl) || suf[hl] != '.') return 0;
    return parse_pid(suf + hl + 1);
}

int mms_tmp_reap(const char *final) {
    char path[MMS_PATH_MAX], dir[MMS_PATH_MAX], host[72];
    if (!final || !final[0] || strip_slashes(final, path, sizeof path) != MMS_OK) {
        mms_error_clear();
        return 0;
    }
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!base[0]) return 0; /* "/" */
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    mms_tmp_host(host, sizeof host);
    char prefix[MMS_PATH_MAX];
    int pn = snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    if (pn <= 0 || (size_t)pn >= sizeof prefix) return 0;
    DIR *d = opendir(dir);
    if (!d) return 0; /* no parent yet: nothing to reap */
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, (size_t)pn)) continue;
        long pid = tmp_suffix_pid(e->d_name + pn, host);
        if (pid <= 0 || pid == (long)getpid()) continue;
        errno = 0;
        if (!(kill((pid_t)pid, 0) == -1 && errno == ESRCH)) continue; /* alive, or not ours to judge */
        char victim[MMS_PATH_MAX];
        if (mms_path_join(victim, sizeof victim, dir, e->d_name) != MMS_OK) {
            mms_error_clear();
            continue;
        }
        if (mms_rm_rf(victim) == MMS_OK) {
            mms_log_rankinfo("removed '%s', left by an earlier run (pid %ld) that is gone", victim,
                             pid);
            removed++;
        } else {
            mms_log_warn("cannot remove the stale temporary '%s': %s", victim, mms_error_message());
            mms_error_clear();
        }
    }
    closedir(d);
    return removed;
}

/* ---- output directories and files -------------------------------------------- */

mms_status mms_outdir_begin(const char *final_dir, int force, char *tmp_out, size_t cap) {
    MMS_CHECK(final_dir && final_dir[0], MMS_ERR_ARG, "no output directory given");
    MMS_CHECK(force || !mms_path_exists(final_dir), MMS_ERR_EXISTS,
              "output '%s' already exists (pass --force to replace it)", final_dir);
    MMS_CALL(tmp_name(final_dir, tmp_out, cap));
    (void)mms_tmp_reap(final_dir);
    MMS_CALL(mms_rm_rf(tmp_out));
    MMS_CALL(mms_mkdir_p(tmp_out));
    return MMS_OK;
}

mms_status mms_outdir_commit(const char *tmp_dir, const char *final_dir, int force) {
    struct stat st;
    if (lstat(final_dir, &st) == 0) {
        MMS_CHECK(force, MMS_ERR_EXISTS, "output '%s' appeared while writing (pass --force)",
                  final_dir);
        /* Swap in one step, so the final name is never missing; the old output
         * is then under the temporary name (reaped later if we die now). */
        if (renameat2(AT_FDCWD, tmp_dir, AT_FDCWD, final_dir, RENAME_EXCHANGE) == 0) {
            if (mms_rm_rf(tmp_dir) != MMS_OK) {
                mms_log_warn("cannot remove the replaced output now at '%s': %s", tmp_dir,
                             mms_error_message());
                mms_error_clear();
            }
            return MMS_OK;
        }
        MMS_CHECK(errno == EINVAL || errno == ENOSYS || errno == ENOTSUP, MMS_ERR_IO,
                  "cannot replace '%s' by '%s': %s", final_dir, tmp_dir, strerror(errno));
        /* a filesystem without RENAME_EXCHANGE: move aside, rename, remove */
        char old[MMS_PATH_MAX];
        int n = snprintf(old, sizeof old, "%s.old.%ld", final_dir, (long)getpid());
        MMS_CHECK(n > 0 && (size_t)n < sizeof old, MMS_ERR_ARG, "path too long");
        MMS_CHECK(rename(final_dir, old) == 0, MMS_ERR_IO, "cannot move '%s' aside: %s",
                  final_dir, strerror(errno));
        if (rename(tmp_dir, final_dir) != 0) {
            int err = errno;
            (void)rename(old, final_dir); /* put the old output back */
            MMS_CHECK(0, MMS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp_dir, final_dir,
                      strerror(err));
        }
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
    MMS_CALL(tmp_name(path, out, cap));
    (void)mms_tmp_reap(path);
    return MMS_OK;
}

mms_status mms_file_begin(const char *path, int force, char *tmp_out, size_t cap) {
    MMS_CHECK(path && path[0], MMS_ERR_ARG, "no output file given");
    MMS_CHECK(!mms_path_is_dir(path), MMS_ERR_EXISTS,
              "output '%s' is a directory (give a file name)", path);
    MMS_CHECK(force || !mms_path_exists(path), MMS_ERR_EXISTS,
              "output '%s' already exists (pass --force to replace it)", path);
    MMS_CALL(mms_file_tmpname(path, tmp_out, cap));
    return MMS_OK;
}

mms_status mms_file_commit(const char *tmp_path, const char *final_path) {
    MMS_CHECK(rename(tmp_path, final_path) == 0, MMS_ERR_IO, "cannot rename '%s' to '%s': %s",
              tmp_path, final_path, strerror(errno));
    return MMS_OK;
}

void mms_file_abort(const char *tmp_path) {
    if (tmp_path && tmp_path[0]) (void)unlink(tmp_path);
}

mms_status mms_fopen(const char *path, const char *mode, FILE **out) {
    *out = fopen(path, mode);
    MMS_CHECK(*out != NULL, MMS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    return MMS_OK;
}

/* Flush, check and (regular files opened for writing) fsync f. Returns 0 or
 * the errno of the first failure; -1 if a write failed earlier and the retry
 * did not say why. */
static int flush_sync(FILE *f) {
    int bad = ferror(f);
    /* an earlier buffered write failed: its errno is long gone, so retry what
     * is still buffered for a fresh one (ENOSPC, EIO, ...) */
    if (bad) clearerr(f);
    errno = 0;
    if (fflush(f) != 0) return errno ? errno : EIO;
    if (bad) return -1;
    int fd = fileno(f);
    struct stat st;
    int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
    if (fd >= 0 && fl != -1 && (fl & O_ACCMODE) != O_RDONLY && fstat(fd, &st) == 0 &&
        S_ISREG(st.st_mode) && fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP)
        return errno;
    return 0;
}

static void write_error(const char *path, int err) {
    if (err == -1)
        mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__,
                      "error writing '%s': a write failed (disk full or an I/O error)", path);
    else
        mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "error writing '%s': %s", path,
                      strerror(err));
}

mms_status mms_fclose(FILE **f, const char *path) {
    if (!f || !*f) return MMS_OK;
    FILE *fp = *f;
    *f = NULL;
    int err = flush_sync(fp);
    errno = 0;
    if (fclose(fp) != 0 && err == 0) err = errno ? errno : EIO;
    if (err) {
        write_error(path, err);
        return MMS_ERR_IO;
    }
    return MMS_OK;
}

mms_status mms_stdout_flush(const char *what) {
    int err = flush_sync(stdout);
    if (err) {
        write_error(what ? what : "standard output", err);
        return MMS_ERR_IO;
    }
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

static int link_skipped(const char *rel, const char *const *skip) {
    if (strstr(rel, ".tmp.")) return 1;
    for (size_t i = 0; skip && skip[i]; i++)
        if (!strcmp(rel, skip[i])) return 1;
    return 0;
}

static mms_status link_walk(const char *from, const char *to, const char *rel,
                            const char *const *skip, uint64_t *linked, uint64_t *copied) {
    char here[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(here, sizeof here, from, rel[0] ? rel : "."));
    DIR *d = opendir(here);
    MMS_CHECK(d, MMS_ERR_IO, "cannot list '%s': %s", here, strerror(errno));
    mms_status s = MMS_OK;
    struct dirent *de;
    while (s == MMS_OK && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char sub[MMS_PATH_MAX], a[MMS_PATH_MAX], b[MMS_PATH_MAX];
        if (rel[0]) s = mms_path_join(sub, sizeof sub, rel, de->d_name);
        else if (strlen(de->d_name) < sizeof sub) strcpy(sub, de->d_name);
        else s = MMS_ERR_ARG;
        if (s == MMS_OK) s = mms_path_join(a, sizeof a, from, sub);
        if (s == MMS_OK) s = mms_path_join(b, sizeof b, to, sub);
        if (s != MMS_OK || link_skipped(sub, skip)) continue;
        struct stat st;
        if (lstat(a, &st) != 0) {
            mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "cannot stat '%s': %s", a,
                          strerror(errno));
            s = MMS_ERR_IO;
        } else if (S_ISDIR(st.st_mode)) {
            if (mkdir(b, 0777) != 0 && errno != EEXIST) {
                mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "cannot make '%s': %s", b,
                              strerror(errno));
                s = MMS_ERR_IO;
            } else {
                s = link_walk(from, to, sub, skip, linked, copied);
            }
        } else if (S_ISREG(st.st_mode)) {
            if (link(a, b) == 0) {
                if (linked) *linked += (uint64_t)st.st_size;
            } else if (errno == EXDEV || errno == EPERM || errno == EMLINK) {
                char dir_a[MMS_PATH_MAX], dir_b[MMS_PATH_MAX];
                s = mms_path_join(dir_a, sizeof dir_a, from, rel[0] ? rel : ".");
                if (s == MMS_OK) s = mms_path_join(dir_b, sizeof dir_b, to, rel[0] ? rel : ".");
                if (s == MMS_OK) s = mms_file_copy(dir_a, dir_b, de->d_name);
                if (s == MMS_OK && copied) *copied += (uint64_t)st.st_size;
            } else {
                mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__,
                              "cannot link '%s' to '%s': %s", a, b, strerror(errno));
                s = MMS_ERR_IO;
            }
        }
    }
    closedir(d);
    return s;
}

mms_status mms_dir_link_tree(const char *from_dir, const char *to_dir, const char *const *skip,
                             uint64_t *linked, uint64_t *copied) {
    if (linked) *linked = 0;
    if (copied) *copied = 0;
    MMS_CHECK(mms_path_is_dir(from_dir), MMS_ERR_IO, "'%s' is not a directory", from_dir);
    MMS_CHECK(mms_path_is_dir(to_dir), MMS_ERR_IO, "'%s' is not a directory", to_dir);
    return link_walk(from_dir, to_dir, "", skip, linked, copied);
}

mms_status mms_file_checksum(const char *path, uint64_t *out) {
    /* mapped and hashed in one call: no copy through a read buffer, so a warm
     * file hashes at XXH3's speed (bench/bench_verify) */
    mms_map_t m;
    MMS_CALL(mms_map_file(path, &m));
    if (m.len) madvise(m.data, m.len, MADV_SEQUENTIAL);
    *out = XXH3_64bits(m.data, m.len);
    mms_unmap(&m);
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

char *mms_id_line(char *line) {
    char *p = line, *e;
    while (*p == ' ' || *p == '\t') p++;
    e = p + strlen(p);
    while (e > p && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
    return *p && *p != '#' ? p : NULL;
}
