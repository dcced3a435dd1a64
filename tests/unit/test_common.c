/* test_common.c: status/log/fs/rng/strmap/opts/manifest units of common/. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mms_addr.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_manifest.h"
#include "mms_opts.h"
#include "mms_rng.h"
#include "mms_strmap.h"
#include "mms_test.h"

static void test_rng(void) {
    /* Philox4x32-10 known-answer test (Random123 kat_vectors: ctr 0, key 0). */
    uint32_t c[4] = {0, 0, 0, 0}, k[2] = {0, 0}, o[4];
    mms_philox4x32(c, k, o);
    T_EQ_INT(o[0], 0x6627e8d5u);
    T_EQ_INT(o[1], 0xe169c58du);
    T_EQ_INT(o[2], 0xbc57ac4cu);
    T_EQ_INT(o[3], 0x9b00dbd8u);
    uint32_t c2[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    uint32_t k2[2] = {0xffffffffu, 0xffffffffu};
    mms_philox4x32(c2, k2, o);
    T_EQ_INT(o[0], 0x408f276du);
    T_EQ_INT(o[1], 0x41c83b0eu);
    T_EQ_INT(o[2], 0xa20bc7c6u);
    T_EQ_INT(o[3], 0x6d5451fdu);
    /* a cursor is a pure function of (seed, stream, index) and its position */
    mms_rng_t a, b;
    mms_rng_init(&a, 42, MMS_STREAM_WALK, 7);
    mms_rng_init(&b, 42, MMS_STREAM_WALK, 7);
    for (int i = 0; i < 100; i++) T_EQ_INT(mms_rng_u32(&a), mms_rng_u32(&b));
    uint64_t pos = a.ctr;
    uint32_t next = mms_rng_u32(&a);
    mms_rng_seek(&b, pos);
    T_EQ_INT(mms_rng_u32(&b), next);
    mms_rng_init(&b, 42, MMS_STREAM_WALK, 8);
    mms_rng_init(&a, 42, MMS_STREAM_WALK, 7);
    int same = 0;
    for (int i = 0; i < 64; i++) same += mms_rng_u32(&a) == mms_rng_u32(&b);
    T_CHECK(same < 3);
    /* bounded draws are in range and roughly uniform; uniform/normal moments */
    mms_rng_init(&a, 1, MMS_STREAM_SYNTH, 0);
    int hist[10] = {0};
    double s1 = 0, s2 = 0, n1 = 0, n2 = 0;
    const int N = 200000;
    for (int i = 0; i < N; i++) {
        uint32_t v = mms_rng_below(&a, 10);
        T_CHECK(v < 10);
        if (v < 10) hist[v]++;
        double u = mms_rng_uniform(&a);
        s1 += u;
        s2 += u * u;
        double z = mms_rng_normal(&a);
        n1 += z;
        n2 += z * z;
    }
    for (int i = 0; i < 10; i++) T_NEAR(hist[i], N / 10, N / 100);
    T_NEAR(s1 / N, 0.5, 0.01);
    T_NEAR(s2 / N, 1.0 / 3.0, 0.01);
    T_NEAR(n1 / N, 0.0, 0.01);
    T_NEAR(n2 / N, 1.0, 0.02);
    T_CHECK(mms_rng_below64(&a, 5000000000ull) < 5000000000ull);
    float f = mms_rng_uniformf(&a);
    T_CHECK(f >= 0.0f && f < 1.0f);
    T_EQ_INT(mms_rng_hash(9, 1, 2, 3), mms_rng_hash(9, 1, 2, 3));
    T_CHECK(mms_rng_hash(9, 1, 2, 3) != mms_rng_hash(9, 1, 2, 4));
}

static void test_strmap(void) {
    mms_strmap_t *m;
    T_OK(mms_strmap_create(4, &m));
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "key%d", i);
        int ins;
        T_OK(mms_strmap_put(m, key, strlen(key), i * 3, &ins, NULL));
        T_EQ_INT(ins, 1);
    }
    T_EQ_INT(mms_strmap_size(m), 5000);
    int64_t v = -1, ex = -1;
    int ins = -1;
    T_CHECK(mms_strmap_get(m, "key4321", 7, &v));
    T_EQ_INT(v, 4321 * 3);
    T_CHECK(!mms_strmap_get(m, "key5000", 7, &v));
    T_OK(mms_strmap_put(m, "key17", 5, 999, &ins, &ex));
    T_EQ_INT(ins, 0);
    T_EQ_INT(ex, 51);
    T_STREQ(mms_strmap_key(m, 17), "key17");
    /* keys with embedded bytes compare by length */
    T_CHECK(!mms_strmap_get(m, "key1", 3, &v));
    mms_strmap_destroy(&m);
    T_CHECK(m == NULL);
    mms_strmap_destroy(&m); /* no-op */
}

static void test_opts(void) {
    int flag = 0, n = 5;
    int64_t big = 1;
    double x = 0.5;
    const char *s = NULL;
    mms_strlist_t l = {{0}, 0};
    mms_opt_t o[] = {
        {"flag", MMS_OPT_FLAG, &flag, "a flag", 0, 0, 0, 0},
        {"n", MMS_OPT_INT, &n, "an int", 0, 1, 1, 10},
        {"big", MMS_OPT_INT64, &big, "a long", 0, 0, 0, 0},
        {"x", MMS_OPT_DOUBLE, &x, "a real", 0, 1, 0, 1},
        {"s", MMS_OPT_STR, &s, "a string", 1, 0, 0, 0},
        {"l", MMS_OPT_STRLIST, &l, "a list", 0, 0, 0, 0},
    };
    int help;
    char *ok[] = {"--flag", "--n", "7", "--big=12345678901", "--x", "0.25", "--s", "hi", "--l", "a",
                  "--l=b"};
    T_OK(mms_opts_parse("t", "test", o, 6, 11, ok, &help));
    T_EQ_INT(help, 0);
    T_EQ_INT(flag, 1);
    T_EQ_INT(n, 7);
    T_EQ_INT(big, 12345678901LL);
    T_NEAR(x, 0.25, 0);
    T_STREQ(s, "hi");
    T_EQ_INT(l.n, 2);
    T_STREQ(l.v[1], "b");
    char *bad1[] = {"--n", "11", "--s", "a"};
    T_FAILS(mms_opts_parse("t", "test", o, 6, 4, bad1, &help), MMS_ERR_ARG);
    T_MSG_HAS("--n must be in [1, 10]");
    char *bad2[] = {"--n", "x7", "--s", "a"};
    T_FAILS(mms_opts_parse("t", "test", o, 6, 4, bad2, &help), MMS_ERR_ARG);
    T_MSG_HAS("expects an integer");
    char *bad3[] = {"--nope", "--s", "a"};
    T_FAILS(mms_opts_parse("t", "test", o, 6, 3, bad3, &help), MMS_ERR_ARG);
    T_MSG_HAS("unknown option '--nope'");
    l.n = 0;
    char *bad4[] = {"--n", "3"};
    T_FAILS(mms_opts_parse("t", "test", o, 6, 2, bad4, &help), MMS_ERR_ARG);
    T_MSG_HAS("missing required option --s");
    char *bad5[] = {"--s"};
    T_FAILS(mms_opts_parse("t", "test", o, 6, 1, bad5, &help), MMS_ERR_ARG);
    T_MSG_HAS("needs a value");
    char *bad6[] = {"--x", "nan", "--s", "a"};
    T_FAILS(mms_opts_parse("t", "test", o, 6, 4, bad6, &help), MMS_ERR_ARG);
    char *bad7[] = {"positional"};
    T_FAILS(mms_opts_parse("t", "test", o, 6, 1, bad7, &help), MMS_ERR_ARG);
    T_MSG_HAS("unexpected argument");
}

static void test_manifest(const char *dir) {
    mms_manifest_t *m;
    T_OK(mms_manifest_create("graph", 1, &m));
    T_OK(mms_manifest_set_int(m, "images", 4500));
    T_OK(mms_manifest_set_int(m, "neg", -3));
    T_OK(mms_manifest_set_uint(m, "checksum", 0xfedcba9876543210ull));
    T_OK(mms_manifest_set_real(m, "threshold", 0.65));
    T_OK(mms_manifest_set_str(m, "source", "corel5k"));
    int64_t arr[3] = {1, -2, 3000000000LL};
    T_OK(mms_manifest_set_intarr(m, "parts", arr, 3));
    T_OK(mms_manifest_set_int(m, "images", 4501)); /* replace */
    T_OK(mms_manifest_write_dir(m, dir));
    mms_manifest_t *r;
    T_OK(mms_manifest_read_dir(dir, "graph", 1, &r));
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
    const int64_t *a;
    size_t na;
    T_OK(mms_manifest_get_int(r, "images", &i));
    T_EQ_INT(i, 4501);
    T_OK(mms_manifest_get_int(r, "neg", &i));
    T_EQ_INT(i, -3);
    T_OK(mms_manifest_get_uint(r, "checksum", &u));
    T_CHECK(u == 0xfedcba9876543210ull);
    T_OK(mms_manifest_get_real(r, "threshold", &d));
    T_NEAR(d, 0.65, 0);
    T_OK(mms_manifest_get_str(r, "source", &s));
    T_STREQ(s, "corel5k");
    T_OK(mms_manifest_get_intarr(r, "parts", &a, &na));
    T_EQ_INT(na, 3);
    T_EQ_INT(a[2], 3000000000LL);
    T_FAILS(mms_manifest_get_int(r, "missing", &i), MMS_ERR_FORMAT);
    T_MSG_HAS("missing field 'missing'");
    T_FAILS(mms_manifest_get_str(r, "images", &s), MMS_ERR_FORMAT);
    T_MSG_HAS("wrong type");
    mms_manifest_destroy(&r);
    /* wrong kind, newer format, corrupt bytes */
    T_FAILS(mms_manifest_read_dir(dir, "model", 1, &r), MMS_ERR_MISMATCH);
    T_MSG_HAS("expected a 'model'");
    mms_manifest_t *m2;
    T_OK(mms_manifest_create("graph", 9, &m2));
    char *buf;
    size_t len;
    T_OK(mms_manifest_encode(m2, &buf, &len));
    T_FAILS(mms_manifest_decode(buf, len, "x", "graph", 1, &r), MMS_ERR_MISMATCH);
    T_MSG_HAS("newer than this mmsage");
    T_FAILS(mms_manifest_decode(buf, len - 1, "x", "graph", 1, &r), MMS_ERR_FORMAT);
    T_MSG_HAS("truncated");
    free(buf);
    T_FAILS(mms_manifest_decode("\x93\x01\x02\x03", 4, "x", NULL, 0, &r), MMS_ERR_FORMAT);
    T_MSG_HAS("not an mmsage manifest");
    /* An array32 header declaring 295 million values in a 62-byte manifest
     * (found by fuzz_manifest): refused before msgpack-c allocates 8 GB. */
    static const unsigned char big[] = {
        0x88, 0x85, 'm', 'a', 'g', 'i', 'c', 0xa6, 'm', 'm', 's', 'a', 'g', 'e', 0xa4, 0x00,
        'k', 'i', 'n', 'd', 0xa5, '!', 'r', 'a', 'p', 'h', 0xa6, 'f', 'o', 'r', 0x83, 0x83,
        0x83, 0x83, 0x83, 'i', 'm', 'a', 'g', 'e', 's', 0xdd, 0x11, 0x94, 0xa8, 0x63, 'h', 'e',
        'c', 'k', 's', 'u', 0xa5, 'p', 'a', 'r', 't', 's', 0x93, 0x01, 0xfe, 0x03};
    T_FAILS(mms_manifest_decode(big, sizeof big, "x", NULL, 0, &r), MMS_ERR_FORMAT);
    T_MSG_HAS("values declared");
    T_FAILS(mms_manifest_decode("\xdd\xff\xff\xff\xff", 5, "x", NULL, 0, &r), MMS_ERR_FORMAT);
    T_MSG_HAS("values declared");
    /* a format of 2^64 - 1 (found by fuzz_manifest: it was accepted as -1, so
     * it passed every max_format and did not survive a round trip) */
    static const unsigned char huge[] = {0x83, 0xa5, 'm', 'a', 'g', 'i', 'c', 0xa6, 'm', 'm', 's', 'a',
                                         'g', 'e', 0xa4, 'k', 'i', 'n', 'd', 0xa5, 'g', 'r', 'a', 'p',
                                         'h', 0xa6, 'f', 'o', 'r', 'm', 'a', 't', 0xcf, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    T_FAILS(mms_manifest_decode(huge, sizeof huge, "x", "graph", 1, &r), MMS_ERR_FORMAT);
    T_MSG_HAS("'format' missing or invalid");
    mms_manifest_destroy(&m2);
    mms_manifest_destroy(&m);
    T_FAILS(mms_manifest_read_dir("/nonexistent-dir", "graph", 1, &r), MMS_ERR_IO);
}

static void test_fs(const char *dir) {
    char out[MMS_PATH_MAX], tmp[MMS_PATH_MAX], p[MMS_PATH_MAX];
    snprintf(out, sizeof out, "%s/outdir", dir);
    T_OK(mms_outdir_begin(out, 0, tmp, sizeof tmp));
    T_CHECK(mms_path_is_dir(tmp));
    T_CHECK(!mms_path_exists(out));
    T_OK(mms_path_join(p, sizeof p, tmp, "a.txt"));
    T_OK(mms_write_file_atomic(p, "hello", 5));
    T_OK(mms_outdir_commit(tmp, out, 0));
    T_CHECK(mms_path_is_dir(out));
    T_CHECK(!mms_path_exists(tmp));
    T_FAILS(mms_outdir_begin(out, 0, tmp, sizeof tmp), MMS_ERR_EXISTS);
    T_MSG_HAS("--force");
    T_OK(mms_outdir_begin(out, 1, tmp, sizeof tmp));
    T_OK(mms_outdir_commit(tmp, out, 1));
    T_OK(mms_path_join(p, sizeof p, out, "a.txt"));
    T_CHECK(!mms_path_exists(p)); /* replaced wholesale */
    T_OK(mms_outdir_begin(out, 1, tmp, sizeof tmp));
    mms_outdir_abort(tmp);
    T_CHECK(!mms_path_exists(tmp));
    char *buf;
    size_t len;
    T_OK(mms_path_join(p, sizeof p, dir, "b.txt"));
    T_OK(mms_write_file_atomic(p, "abc\ndef", 7));
    T_OK(mms_read_file(p, &buf, &len));
    T_EQ_INT(len, 7);
    T_STREQ(buf, "abc\ndef");
    free(buf);
    uint64_t c1, c2;
    T_OK(mms_file_checksum(p, &c1));
    T_EQ_INT(c1, mms_checksum("abc\ndef", 7, 0));
    T_OK(mms_write_file_atomic(p, "abc\ndeg", 7));
    T_OK(mms_file_checksum(p, &c2));
    T_CHECK(c1 != c2);
    T_FAILS(mms_read_file("/nonexistent/file", &buf, &len), MMS_ERR_IO);
    T_MSG_HAS("/nonexistent/file");
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    T_FAILS(mms_path_join(p, sizeof p, big, "x"), MMS_ERR_ARG);
    char fmt[64];
    T_STREQ(mms_fmt_bytes(1536.0, fmt, sizeof fmt), "1.5 KiB");
}

/* A pid that is gone: a child that exited and was waited for. */
static long dead_pid(void) {
    pid_t c = fork();
    if (c == 0) _exit(0);
    waitpid(c, NULL, 0);
    return (long)c;
}

static void mkdir_at(const char *dir, const char *name) {
    char p[MMS_PATH_MAX];
    T_OK(mms_path_join(p, sizeof p, dir, name));
    T_OK(mms_mkdir_p(p));
    char f[MMS_PATH_MAX];
    T_OK(mms_path_join(f, sizeof f, p, "x.npy"));
    T_OK(mms_write_file_atomic(f, "x", 1));
}

static int exists_at(const char *dir, const char *name) {
    char p[MMS_PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return mms_path_exists(p);
}

/* Issue 12 item 10: stale "<name>.tmp.*" of dead runs of this host (and legacy
 * "<name>.tmp.<pid>") are removed by the next run; live pids, other hosts and
 * other names are kept. */
static void test_fs_reap(const char *dir) {
    char d[MMS_PATH_MAX], out[MMS_PATH_MAX], tmp[MMS_PATH_MAX], host[72], n[512];
    snprintf(d, sizeof d, "%s/reap", dir);
    T_OK(mms_mkdir_p(d));
    snprintf(out, sizeof out, "%s/model", d);
    mms_tmp_host(host, sizeof host);
    T_CHECK(host[0] && !strchr(host, '.') && !strchr(host, '/'));
    long dead = dead_pid(), dead2 = dead_pid();
    T_CHECK(kill((pid_t)dead, 0) == -1 && errno == ESRCH);
    pid_t live = fork(); /* a live pid that is not ours */
    if (live == 0) {
        pause();
        _exit(0);
    }
    const char *keep[16], *gone[8];
    int nk = 0, ng = 0;
    static char names[24][512];
    int ni = 0;
#define NAME(...) (snprintf(names[ni], sizeof names[ni], __VA_ARGS__), names[ni++])
    gone[ng++] = NAME("model.tmp.%ld", dead);                  /* legacy */
    gone[ng++] = NAME("model.tmp.%s.%ld", host, dead2);         /* this host */
    keep[nk++] = NAME("model.tmp.%ld", (long)live);             /* alive */
    keep[nk++] = NAME("model.tmp.%s.%ld", host, (long)live);    /* alive */
    keep[nk++] = NAME("model.tmp.otherhost-%s.%ld", host, dead); /* another host */
    keep[nk++] = NAME("model.tmp.%ldx", dead);                  /* not digits */
    keep[nk++] = NAME("model.tmp.%s.%ld.old", host, dead);
    keep[nk++] = NAME("model.tmp.");
    keep[nk++] = NAME("model.tmp.0");
    keep[nk++] = NAME("model2.tmp.%ld", dead);                  /* another output */
    keep[nk++] = NAME("xmodel.tmp.%ld", dead);
    keep[nk++] = NAME("model.old.%ld", dead);
#undef NAME
    for (int i = 0; i < ng; i++) mkdir_at(d, gone[i]);
    for (int i = 0; i < nk; i++) mkdir_at(d, keep[i]);
    T_OK(mms_outdir_begin(out, 0, tmp, sizeof tmp));
    snprintf(n, sizeof n, "%s.tmp.%s.%ld", out, host, (long)getpid());
    T_STREQ(tmp, n); /* "<final>.tmp.<host>.<pid>" */
    for (int i = 0; i < ng; i++) {
        if (exists_at(d, gone[i])) fprintf(stderr, "not reaped: %s\n", gone[i]);
        T_CHECK(!exists_at(d, gone[i]));
    }
    for (int i = 0; i < nk; i++) {
        if (!exists_at(d, keep[i])) fprintf(stderr, "wrongly reaped: %s\n", keep[i]);
        T_CHECK(exists_at(d, keep[i]));
    }
    T_OK(mms_outdir_commit(tmp, out, 0));
    /* a trailing slash names the same output */
    snprintf(n, sizeof n, "%s/", out);
    T_FAILS(mms_outdir_begin(n, 0, tmp, sizeof tmp), MMS_ERR_EXISTS);
    T_OK(mms_outdir_begin(n, 1, tmp, sizeof tmp));
    T_CHECK(strstr(tmp, "/model.tmp.") != NULL);
    T_OK(mms_outdir_commit(tmp, n, 1));
    T_CHECK(mms_path_is_dir(out) && !mms_path_exists(tmp));
    /* files: the same for "<file>.tmp.*" */
    char f[MMS_PATH_MAX], ft[MMS_PATH_MAX];
    snprintf(f, sizeof f, "%s/results.jsonl", d);
    snprintf(n, sizeof n, "%s.tmp.%s.%ld", f, host, dead);
    T_OK(mms_write_file_atomic(n, "half", 4));
    snprintf(ft, sizeof ft, "%s.tmp.%s.%ld", f, host, (long)live);
    T_OK(mms_write_file_atomic(ft, "busy", 4));
    T_OK(mms_file_begin(f, 0, tmp, sizeof tmp));
    T_CHECK(!mms_path_exists(n));
    T_CHECK(mms_path_exists(ft));
    kill(live, SIGKILL);
    waitpid(live, NULL, 0);
    T_OK(mms_rm_rf(d));
}

/* Issue 12 items 8 and 9: every write checked to the end, with its real cause;
 * single files refused when they exist unless force. */
static void test_fs_write_errors(const char *dir) {
    FILE *f = fopen("/dev/full", "w");
    if (!f) {
        fprintf(stderr, "test_common: no /dev/full here: write errors not checked\n");
    } else {
        for (int i = 0; i < 100; i++) fputs("a line that will not fit\n", f);
        T_FAILS(mms_fclose(&f, "/dev/full"), MMS_ERR_IO);
        T_CHECK(f == NULL);
        T_MSG_HAS("No space left on device");
        /* a write that failed long before the close, then a successful flush */
        f = fopen("/dev/full", "w");
        setvbuf(f, NULL, _IONBF, 0);
        fputs("x", f);
        T_CHECK(ferror(f));
        T_FAILS(mms_fclose(&f, "/dev/full"), MMS_ERR_IO);
        T_CHECK(!strstr(mms_error_message(), "Inappropriate ioctl"));
    }
    char p[MMS_PATH_MAX], tmp[MMS_PATH_MAX];
    snprintf(p, sizeof p, "%s/out.jsonl", dir);
    T_OK(mms_file_begin(p, 0, tmp, sizeof tmp));
    T_CHECK(strstr(tmp, "/out.jsonl.tmp.") != NULL);
    T_OK(mms_fopen(tmp, "w", &f));
    fputs("new\n", f);
    T_OK(mms_fclose(&f, tmp));
    T_OK(mms_file_commit(tmp, p));
    T_FAILS(mms_file_begin(p, 0, tmp, sizeof tmp), MMS_ERR_EXISTS);
    T_MSG_HAS("--force");
    T_OK(mms_file_begin(p, 1, tmp, sizeof tmp));
    mms_file_abort(tmp);
    T_CHECK(!mms_path_exists(tmp));
    T_FAILS(mms_file_begin(dir, 1, tmp, sizeof tmp), MMS_ERR_EXISTS); /* a directory */
    T_OK(mms_rm_rf(p));
}

static void test_addr(void) {
    mms_addr_t a;
    T_OK(mms_addr_parse("41017", "t", 1, &a)); /* a port alone: the default (loopback) host */
    T_CHECK(a.host[0] == '\0' && a.port == 41017);
    T_OK(mms_addr_parse("example:80", "t", 1, &a));
    T_CHECK(!strcmp(a.host, "example") && a.port == 80);
    T_OK(mms_addr_parse("[::1]:9", "t", 1, &a));
    T_CHECK(!strcmp(a.host, "::1") && a.port == 9);
    T_OK(mms_addr_parse("example", "t", 1, &a));
    T_CHECK(a.port == MMS_DEFAULT_PORT);
    T_FAILS(mms_addr_parse("70000", "t", 1, &a), MMS_ERR_ARG);
    T_FAILS(mms_addr_parse("0", "t", 1, &a), MMS_ERR_ARG);
    T_OK(mms_addr_parse_ex("8080", "t", 0, 80, MMS_ADDR_STRICT, &a)); /* strict: always a host */
    T_CHECK(!strcmp(a.host, "8080") && a.port == 80);
}

static void put(const char *dir, const char *name, const char *text) {
    char p[MMS_PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    T_CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_manifest_files(const char *dir) {
    char d[MMS_PATH_MAX], p[MMS_PATH_MAX];
    snprintf(d, sizeof d, "%s/sums", dir);
    snprintf(p, sizeof p, "%s/shard-0", d);
    T_OK(mms_mkdir_p(p));
    snprintf(p, sizeof p, "%s/nested", d);
    T_OK(mms_mkdir_p(p));
    put(d, "a.npy", "alpha");
    put(d, "loss.tsv", "log");
    put(d, "x.tmp.7", "temporary");
    put(d, "shard-0/emb.npy", "beta");
    put(d, "nested/manifest.msgpack", "its own");
    put(d, "nested/c.npy", "gamma");
    mms_manifest_t *m;
    T_OK(mms_manifest_create("index", 1, &m));
    static const char *const skip[] = {"loss.tsv", NULL};
    T_OK(mms_manifest_seal_dir(m, d, skip));
    T_EQ_INT(mms_manifest_recorded_files(m), 2); /* a.npy, shard-0/emb.npy */
    mms_manifest_destroy(&m);
    T_OK(mms_manifest_read_dir(d, "index", 1, &m));
    T_EQ_INT(mms_manifest_recorded_files(m), 2);
    uint64_t bytes = 0, sum;
    T_OK(mms_manifest_verify_files(m, d, NULL, &bytes));
    T_EQ_INT(bytes, 5);
    T_OK(mms_manifest_verify_files(m, d, "shard-0", &bytes));
    T_EQ_INT(bytes, 9);
    T_CHECK(mms_manifest_file_sum(m, "shard-0/emb.npy", &sum) && sum == mms_checksum("beta", 4, 0));
    T_OK(mms_manifest_verify_file(m, d, "a.npy"));
    T_FAILS(mms_manifest_verify_file(m, d, "loss.tsv"), MMS_ERR_FORMAT);
    T_MSG_HAS("is not recorded");
    put(d, "a.npy", "alphA"); /* same size, one byte changed */
    T_FAILS(mms_manifest_verify_files(m, d, NULL, NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("a.npy' is corrupt: its checksum is");
    put(d, "shard-0/emb.npy", "bet");
    T_FAILS(mms_manifest_verify_files(m, d, "shard-0", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("emb.npy' is 3 bytes, but");
    snprintf(p, sizeof p, "%s/a.npy", d);
    T_CHECK(remove(p) == 0);
    T_FAILS(mms_manifest_verify_files(m, d, NULL, NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("a.npy' is missing");
    T_OK(mms_manifest_verify_files(m, d, "nested", NULL)); /* nothing recorded there */
    mms_manifest_destroy(&m);
    /* an old manifest (no records) verifies nothing and fails nothing */
    T_OK(mms_manifest_create("index", 1, &m));
    T_OK(mms_manifest_verify_files(m, d, NULL, NULL));
    T_OK(mms_manifest_verify_file(m, d, "gone.npy"));
    mms_manifest_destroy(&m);
}

static void test_manifest_paths(const char *dir) {
    char cat[MMS_PATH_MAX], run[MMS_PATH_MAX], idx[MMS_PATH_MAX], out[MMS_PATH_MAX];
    snprintf(cat, sizeof cat, "%s/data/cat", dir);
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(idx, sizeof idx, "%s/run/idx", dir);
    T_OK(mms_mkdir_p(cat));
    T_OK(mms_mkdir_p(run));
    mms_manifest_t *m;
    T_OK(mms_manifest_create("index", 1, &m));
    T_OK(mms_manifest_set_path(m, "catalog", cat, idx)); /* idx does not exist yet */
    const char *rel, *abs;
    T_OK(mms_manifest_get_str(m, "catalog", &rel));
    T_CHECK(!strcmp(rel, "../../data/cat"));
    T_OK(mms_manifest_get_str(m, "catalog.abs", &abs));
    T_CHECK(abs[0] == '/' && strstr(abs, "/data/cat") != NULL);
    T_OK(mms_manifest_set_path(m, "self", idx, idx));
    T_OK(mms_manifest_get_str(m, "self", &rel));
    T_CHECK(!strcmp(rel, "."));
    T_OK(mms_mkdir_p(idx));
    T_OK(mms_manifest_get_path(m, "catalog", idx, out, sizeof out));
    T_CHECK(mms_path_is_dir(out));
    T_OK(mms_rm_rf(cat));
    T_FAILS(mms_manifest_get_path(m, "catalog", idx, out, sizeof out), MMS_ERR_ARG);
    T_MSG_HAS("is not found");
    T_CHECK(!mms_manifest_find_path(m, "catalog", idx, out, sizeof out));
    mms_manifest_destroy(&m);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET);
    const char *dir = mms_test_tmpdir("common");
    test_rng();
    test_strmap();
    test_opts();
    test_manifest(dir);
    test_fs(dir);
    test_fs_reap(dir);
    test_fs_write_errors(dir);
    test_addr();
    test_manifest_files(dir);
    test_manifest_paths(dir);
    mms_rm_rf(dir);
    return mms_test_finish("test_common");
}
