/* driver.c: replays a libFuzzer-style target (LLVMFuzzerTestOneInput) on every
 * file of a seed corpus, then on a fixed number of deterministic mutations of
 * them (bit flips, byte edits, truncation, insertion, splicing). A crash, a
 * sanitizer report or a hang fails the test. Real coverage-guided fuzzing uses
 * the same targets built with -DMMS_LIBFUZZER=ON (scripts/fuzz_long.sh;
 * docs/reliability.md, "Fuzzing").
 *   usage: fuzz_x CORPUS_DIR [ITERATIONS] */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_fs.h"
#include "mms_log.h"
#include "mms_rng.h"

#include <signal.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input under test, saved by the crash handler so a failure can be replayed. */
static const uint8_t *g_cur;
static size_t g_cur_len;
static char g_crash_path[512];

static void on_crash(int sig) {
    int fd = open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        ssize_t w = write(fd, g_cur, g_cur_len);
        (void)w;
        close(fd);
    }
    static const char msg[] = "fuzz: crashing input saved to ";
    ssize_t w = write(2, msg, sizeof msg - 1);
    w = write(2, g_crash_path, strlen(g_crash_path));
    w = write(2, "\n", 1);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void run_one(const uint8_t *d, size_t n) {
    g_cur = d;
    g_cur_len = n;
    LLVMFuzzerTestOneInput(d, n);
}

typedef struct {
    uint8_t *d;
    size_t n;
} blob_t;

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR [ITERATIONS]\n", argv[0]);
        return 2;
    }
    long iters = argc > 2 ? atol(argv[2]) : 10000;
    mms_log_init(0, 1, MMS_LOG_QUIET);
    const char *tmp = getenv("TMPDIR");
    const char *base = strrchr(argv[0], '/');
    snprintf(g_crash_path, sizeof g_crash_path, "%s/crash-%s", tmp && tmp[0] ? tmp : "/tmp",
             base ? base + 1 : argv[0]);
    signal(SIGSEGV, on_crash);
    signal(SIGILL, on_crash);
    signal(SIGABRT, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGFPE, on_crash);
    blob_t *seeds = NULL;
    size_t ns = 0;
    DIR *dir = opendir(argv[1]);
    if (!dir) {
        fprintf(stderr, "%s: cannot open corpus '%s'\n", argv[0], argv[1]);
        return 1;
    }
    struct dirent *e;
    char **names = NULL;
    size_t nn = 0;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (nn + 1) * sizeof *names);
        names[nn++] = strdup(e->d_name);
    }
    closedir(dir);
    /* sort for a deterministic run */
    for (size_t i = 1; i < nn; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (size_t i = 0; i < nn; i++) {
        char p[MMS_PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", argv[1], names[i]);
        char *buf;
        size_t len;
        if (mms_read_file(p, &buf, &len) != MMS_OK) continue;
        seeds = realloc(seeds, (ns + 1) * sizeof *seeds);
        seeds[ns].d = (uint8_t *)buf;
        seeds[ns].n = len;
        ns++;
        run_one((const uint8_t *)buf, len);
        free(names[i]);
    }
    free(names);
    if (ns == 0) {
        fprintf(stderr, "%s: corpus '%s' is empty\n", argv[0], argv[1]);
        return 1;
    }
    mms_rng_t r;
    mms_rng_init(&r, 12345, MMS_STREAM_FUZZ, 0);
    size_t cap = 1 << 16;
    uint8_t *m = malloc(cap);
    for (long it = 0; it < iters; it++) {
        blob_t *s = &seeds[mms_rng_below(&r, (uint32_t)ns)];
        size_t n = s->n < cap / 2 ? s->n : cap / 2;
        memcpy(m, s->d, n);
        int edits = 1 + (int)mms_rng_below(&r, 8);
        for (int k = 0; k < edits; k++) {
            uint32_t op = mms_rng_below(&r, 7);
            size_t pos = n ? mms_rng_below(&r, (uint32_t)n) : 0;
            if (op == 0 && n) m[pos] ^= (uint8_t)(1u << mms_rng_below(&r, 8));
            else if (op == 1 && n) m[pos] = (uint8_t)mms_rng_u32(&r);
            else if (op == 2 && n) n = pos; /* truncate */
            else if (op == 3 && n + 1 < cap) { /* insert a byte */
                memmove(m + pos + 1, m + pos, n - pos);
                m[pos] = (uint8_t)"\0\xff\t\n|,:{}[]\"0-9"[mms_rng_below(&r, 16)];
                n++;
            } else if (op == 4 && n) { /* delete a run */
                size_t len = 1 + mms_rng_below(&r, 16);
                if (pos + len > n) len = n - pos;
                memmove(m + pos, m + pos + len, n - pos - len);
                n -= len;
            } else if (op == 5) { /* splice another seed */
                blob_t *o = &seeds[mms_rng_below(&r, (uint32_t)ns)];
                size_t from = o->n ? mms_rng_below(&r, (uint32_t)o->n) : 0;
                size_t len = o->n - from;
                if (pos + len > cap) len = cap - pos;
                memcpy(m + pos, o->d + from, len);
                n = pos + len;
            } else if (op == 6 && n) { /* interesting integer bytes */
                static const uint8_t vals[] = {0x00, 0x7f, 0x80, 0xff, 0xc0, 0xc1, 0xdd, 0xdf, 0xcf};
                m[pos] = vals[mms_rng_below(&r, sizeof vals)];
            }
        }
        run_one(m, n);
    }
    free(m);
    for (size_t i = 0; i < ns; i++) free(seeds[i].d);
    free(seeds);
    printf("%s: %zu seeds + %ld mutations ran without a crash\n", argv[0], ns, iters);
    return 0;
}
