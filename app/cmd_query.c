/* cmd_query.c: `mmsage query --server HOST:PORT ...` sends queries to a running
 * query server (docs/protocol.md) and prints the answers on stdout.
 *
 *   one query   --image-features F.npy [--row I] | --jpeg X.jpg, and/or --tags
 *               "a,b" (comma-separated, so a tag may contain spaces); a table
 *               (rank, score, id, tags), then predicted tags, warnings, timings;
 *               --json prints the response as one JSON line instead.
 *   many        --queries Q.tsv streams one query per line with up to --pipeline
 *               requests in flight; one JSON line per response on stdout and a
 *               throughput summary (queries, seconds, QPS, p50/p99 latency) on
 *               stderr. Line format (tab-separated, '#' comments):
 *                 ROW [TAGS [VISUAL [EXCLUDE]]]
 *               ROW is a row of --image-features or "-" for a tags-only query;
 *               TAGS comma-separated or "-"; VISUAL in [0,1] or "-" (server
 *               default); EXCLUDE an image id or "-".
 *   --op info / --op ping   the server's description / a round trip.
 *   --reload    (= --op reload) the server switches to the index version its
 *               --index names now (docs/query.md, "Reload"); prints the old and
 *               new version and directory, or why the server refused (exit 1).
 *
 * Retries (--retry-for, default 30 s; docs/query.md): a connection refused,
 * reset or closed, no answer within --timeout, or an `unavailable` answer is
 * retried with exponential back-off and jitter (coordinator/netclient.h),
 * re-sending the requests not yet answered, which is safe because every op is
 * read-only but reload, and a reload sent twice ends where one does (on the
 * version --index names); a refused request (k_range, ...) is never retried.
 * --server-file reads the address from a file (jobs/serve.sbatch writes one)
 * before every connection, so a server restarted on another port or node is
 * found again.
 *
 * Authentication: --auth-token-file FILE (default: $MMS_AUTH_TOKEN_FILE) sends
 * the file's token in every request ('auth'), read as `serve --auth-token-file`
 * reads it (mms_netclient_read_token); `unauthorized` is never retried.
 *
 * Output: stdout, or --out FILE written under a temporary name and renamed
 * only when the command succeeds. Every write is checked through the final
 * flush: a full disk is an error ("writing to standard output: No space left
 * on device"), never a silent exit 0.
 *
 * Not an MPI command: a plain TCP client (coordinator/netclient.h).
 */
#define _GNU_SOURCE /* strdup */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "mms_addr.h"
#include "mms_array.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_npy.h"
#include "mms_opts.h"
#include "netclient.h"
#include "protocol.h"
#include "response_json.h"

/* A server-side error code as the exit status of mmsage. */
static mms_status status_of(int code) {
    switch (code) {
    case MMS_PERR_OK: return MMS_OK;
    case MMS_PERR_NON_FINITE: return MMS_ERR_NUMERIC;
    case MMS_PERR_UNSUPPORTED: return MMS_ERR_MISMATCH;
    case MMS_PERR_TIMEOUT:
    case MMS_PERR_UNAVAILABLE: return MMS_ERR_IO;
    case MMS_PERR_INTERNAL: return MMS_ERR_INTERNAL;
    default: return MMS_ERR_ARG; /* the query itself was refused */
    }
}

/* ---- the output ------------------------------------------------------------ */

/* Where the answers go: stdout, or --out FILE through a temporary name. */
typedef struct {
    FILE *f;
    const char *path; /* NULL = standard output */
    char tmp[MMS_PATH_MAX];
    int err; /* errno of the first failed write; 0 = none seen */
} query_out_t;

static const char *out_name(const query_out_t *w) { return w->path ? w->path : "standard output"; }

/* --out FILE (refused when it exists unless force) or stdout ("-" or NULL). */
static mms_status out_open(query_out_t *w, const char *path, int force) {
    memset(w, 0, sizeof *w);
    w->f = stdout;
    if (!path || !strcmp(path, "-")) return MMS_OK;
    w->path = path;
    w->f = NULL;
    MMS_CALL(mms_file_begin(path, force, w->tmp, sizeof w->tmp));
    MMS_CALL(mms_fopen(w->tmp, "w", &w->f));
    return MMS_OK;
}

/* After writes: MMS_ERR_IO naming the output and the reason once a write has
 * failed (e_now: errno right after the writes), so a batch stops at the first
 * lost answer. */
static mms_status out_check(query_out_t *w, int e_now) {
    if (!ferror(w->f)) return MMS_OK;
    if (!w->err) w->err = e_now ? e_now : EIO;
    MMS_CHECK(0, MMS_ERR_IO, "query: writing to %s: %s", out_name(w), strerror(w->err));
}

/* The end of the output: stdout flushed and checked; a file closed through
 * mms_fclose (every write, flush, fsync) and renamed into place only when
 * everything succeeded (st), else removed. Returns st, or the output's failure
 * when st was OK. */
static mms_status out_close(query_out_t *w, mms_status st) {
    if (!w->f) return st;
    if (!w->path) {
        w->f = NULL;
        errno = 0;
        int bad = fflush(stdout) != 0 ? (errno ? errno : EIO) : 0;
        if (!bad && ferror(stdout)) bad = w->err ? w->err : EIO;
        if (bad && st == MMS_OK) {
            mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__,
                          "query: writing to standard output: %s", strerror(bad));
            st = MMS_ERR_IO;
        }
        return st;
    }
    if (st == MMS_OK) st = mms_fclose(&w->f, w->path);
    if (w->f) fclose(w->f); /* already failed: the output is dropped, no second message */
    w->f = NULL;
    if (st == MMS_OK) st = mms_file_commit(w->tmp, w->path);
    if (st != MMS_OK) {
        mms_file_abort(w->tmp);
        mms_log_warn("query: nothing written to %s", w->path);
    }
    return st;
}

/* ---- JSON ---------------------------------------------------------------- */

/* One JSON line (extra keys may be added by the caller first). */
static mms_status print_json(query_out_t *w, json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(7));
    json_decref(o);
    MMS_CHECK(s, MMS_ERR_INTERNAL, "query: cannot format a response as JSON (invalid UTF-8?)");
    int e = 0;
    if (fputs(s, w->f) == EOF || fputc('\n', w->f) == EOF) e = errno;
    free(s);
    return out_check(w, e);
}

/* ---- human-readable output ------------------------------------------------- */

static void print_human(FILE *out, const mms_response_t *r, mms_op op, double seconds,
                        const char *server) {
    if (op == MMS_OP_PING) {
        fprintf(out, "pong from %s in %.3f ms\n", server, seconds * 1e3);
    } else if (op == MMS_OP_INFO || op == MMS_OP_RELOAD) {
        for (int i = 0; i < r->ninfo; i++) {
            const mms_info_t *e = &r->info[i];
            if (e->type == MMS_INFO_INT) fprintf(out, "%-20s %lld\n", e->key, (long long)e->i);
            else if (e->type == MMS_INFO_REAL) fprintf(out, "%-20s %g\n", e->key, e->r);
            else fprintf(out, "%-20s %s\n", e->key, e->s ? e->s : "");
        }
    }
    if (r->nresults > 0) {
        int w = 2;
        int any_path = 0;
        for (int i = 0; i < r->nresults; i++) {
            int l = (int)strlen(r->results[i].id ? r->results[i].id : "");
            if (l > w) w = l;
            any_path |= r->results[i].path != NULL;
        }
        fprintf(out, "%4s  %-9s  %-*s  %s\n", "rank", "score", w, "id",
                any_path ? "tags | path" : "tags");
        for (int i = 0; i < r->nresults; i++) {
            const mms_result_t *x = &r->results[i];
            fprintf(out, "%4d  %-9.5f  %-*s  ", i + 1, (double)x->score, w,
                    x->id ? x->id : "");
            for (int j = 0; j < x->ntags; j++) fprintf(out, "%s%s", j ? ", " : "", x->tags[j]);
            if (x->path) fprintf(out, " | %s", x->path);
            fprintf(out, "\n");
        }
    } else if (op == MMS_OP_SEARCH) {
        fprintf(out, "no results\n");
    }
    if (r->ntags > 0) {
        fprintf(out, "%spredicted tags:\n", r->nresults ? "\n" : "");
        for (int i = 0; i < r->ntags; i++)
            fprintf(out, "%4d  %-9.5f  %s\n", i + 1, (double)r->tags[i].score,
                    r->tags[i].tag);
    }
    if (r->nwarnings > 0) {
        fprintf(out, "\nwarnings:\n");
        for (int i = 0; i < r->nwarnings; i++) fprintf(out, "  %s\n", r->warnings[i]);
    }
    if (op != MMS_OP_PING) {
        fprintf(out, "\nround trip %.3f ms", seconds * 1e3);
        for (int i = 0; i < r->ntiming; i++)
            fprintf(out, "%s%s %llu", i ? ", " : " (timing_us: ", r->timing[i].stage,
                   (unsigned long long)r->timing[i].us);
        fprintf(out, "%s\n", r->ntiming ? ")" : "");
    }
}

/* ---- batch mode -------------------------------------------------------------- */

typedef struct {
    char *line; /* owns the strings tags/exclude point into */
    const char *tags[MMS_PROTO_MAX_TAGS];
    int ntags;
    long lineno;
} bquery_t;

typedef struct {
    FILE *in;
    const char *path;
    const mms_npy_t *feat, *knn;
    const mms_request_t *tmpl; /* op, k, neighbors, tag_k, predict_tags, connect, concept */
    query_out_t *out;
    bquery_t **fifo;           /* queries in flight, in order (responses come in order) */
    int depth, head, n;
    long lineno;
    char *buf;
    size_t cap;
    double *lat;
    size_t nlat, lat_cap;
    long errors;
    char why[512]; /* a parse error that stopped the batch */
} batch_t;

/* Record (and log now, before the pipeline reports that it was stopped) why
 * the batch file cannot go on. */
static int batch_fail(batch_t *b, const char *fmt, const char *what) {
    snprintf(b->why, sizeof b->why, fmt, b->path, b->lineno, what);
    mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__, "query --queries %s", b->why);
    return -1;
}

static int batch_next(void *ctx, mms_request_t *q) {
    batch_t *b = ctx;
    for (;;) {
        int g = mms_getline(&b->buf, &b->cap, b->in);
        if (g < 0) return batch_fail(b, "%s:%ld: read error%s", "");
        if (g == 0) return 0;
        b->lineno++;
        const char *p = b->buf;
        while (*p == ' ') p++;
        if (*p == '\0' || *p == '#') continue;
        break;
    }
    bquery_t *bq = calloc(1, sizeof *bq);
    char *line = bq ? strdup(b->buf) : NULL;
    if (!line) {
        free(bq);
        return batch_fail(b, "%s:%ld: out of memory%s", "");
    }
    bq->line = line;
    bq->lineno = b->lineno;
    char *col[4] = {NULL, NULL, NULL, NULL};
    int nc = 0;
    for (char *p = line; p && nc < 4; nc++) {
        col[nc] = p;
        char *t = strchr(p, '\t');
        if (t) *t = '\0';
        p = t ? t + 1 : NULL;
    }
    *q = *b->tmpl;
    int bad = 0;
    if (strcmp(col[0], "-")) {
        char *end;
        long long row = strtoll(col[0], &end, 10);
        if (!b->feat) bad = batch_fail(b, "%s:%ld: a row number needs --image-features%s", "");
        else if (*end || end == col[0] || row < 0 || (size_t)row >= b->feat->rows)
            bad = batch_fail(b, "%s:%ld: bad row '%s' (a row of --image-features or '-')", col[0]);
        else {
            q->image = (const float *)b->feat->data + (size_t)row * b->feat->cols;
            q->image_dim = (int)b->feat->cols;
            if (b->knn && (size_t)row < b->knn->rows) {
                q->image_knn = (const float *)b->knn->data + (size_t)row * b->knn->cols;
                q->image_knn_dim = (int)b->knn->cols;
            }
        }
    }
    if (!bad && col[1] && strcmp(col[1], "-") &&
        mms_cmd_split_tags(col[1], bq->tags, MMS_PROTO_MAX_TAGS, &bq->ntags, "query") != MMS_OK)
        bad = batch_fail(b, "%s:%ld: %s", "too many tags");
    q->tags = bq->tags;
    q->ntags = bq->ntags;
    if (!bad && col[2] && col[2][0] && strcmp(col[2], "-")) {
        char *end;
        double v = strtod(col[2], &end);
        if (*end || end == col[2] || !(v >= 0 && v <= 1))
            bad = batch_fail(b, "%s:%ld: bad visual weight '%s' (a number in [0, 1] or '-')",
                             col[2]);
        q->visual = (float)v;
        q->visual_given = 1;
    }
    if (!bad && col[3] && col[3][0] && strcmp(col[3], "-")) q->exclude = col[3];
    if (bad) {
        free(bq->line);
        free(bq);
        return -1;
    }
    b->fifo[(b->head + b->n) % b->depth] = bq;
    b->n++;
    return 1;
}

static mms_status batch_done(void *ctx, mms_request_t *q, const mms_response_t *r, double lat) {
    batch_t *b = ctx;
    bquery_t *bq = b->fifo[b->head];
    b->head = (b->head + 1) % b->depth;
    b->n--;
    mms_status st = mms_grow(&b->lat, sizeof *b->lat, b->nlat + 1, &b->lat_cap);
    if (st != MMS_OK) {
        free(bq->line);
        free(bq);
        return st;
    }
    b->lat[b->nlat++] = lat;
    if (!r->ok) b->errors++;
    json_t *o = mms_response_json(r);
    json_object_set_new(o, "line", json_integer(bq->lineno));
    json_object_set_new(o, "latency_us", json_integer((json_int_t)(lat * 1e6)));
    free(bq->line);
    free(bq);
    (void)q;
    return print_json(b->out, o); /* a failed write stops the batch */
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static mms_status run_batch(mms_netclient_t *c, query_out_t *out, const char *path, int depth,
                            double timeout, const mms_npy_t *feat, const mms_npy_t *knn,
                            const mms_request_t *tmpl) {
    batch_t b;
    memset(&b, 0, sizeof b);
    b.out = out;
    b.path = path;
    b.feat = feat;
    b.knn = knn;
    b.tmpl = tmpl;
    b.depth = depth;
    MMS_CALL(mms_fopen(path, "r", &b.in));
    mms_status st = mms_calloc((size_t)depth, sizeof *b.fifo, &b.fifo);
    double t0 = mms_now();
    if (st == MMS_OK) st = mms_netclient_pipeline(c, depth, timeout, batch_next, batch_done, &b);
    double secs = mms_now() - t0;
    for (int i = 0; i < b.n; i++) { /* in flight when the pipeline failed */
        bquery_t *bq = b.fifo[(b.head + i) % b.depth];
        free(bq->line);
        free(bq);
    }
    if (b.why[0] && st == MMS_OK) st = MMS_ERR_ARG;
    if (b.nlat > 0) {
        qsort(b.lat, b.nlat, sizeof *b.lat, cmp_double);
        double p50 = b.lat[(b.nlat - 1) / 2], p99 = b.lat[(size_t)((double)(b.nlat - 1) * 0.99)];
        fprintf(stderr,
                "query: %zu queries in %.3f s, %.1f QPS (pipeline %d), latency p50 %.3f ms, "
                "p99 %.3f ms, max %.3f ms; %ld answered with an error%s\n",
                b.nlat, secs, secs > 0 ? (double)b.nlat / secs : 0.0, depth, p50 * 1e3, p99 * 1e3,
                b.lat[b.nlat - 1] * 1e3, b.errors, out->err ? " (output lost)" : "");
    } else {
        fprintf(stderr, "query: no queries answered\n");
    }
    free(b.lat);
    free(b.fifo);
    free(b.buf);
    fclose(b.in);
    return st;
}

/* ---- the command ------------------------------------------------------------- */

static const char k_summary[] =
    "Send queries to a query server and print the answers.\n"
    "One query: --image-features F.npy [--row I] (or --jpeg X.jpg) and/or --tags \"a,b\".\n"
    "Many: --queries Q.tsv, lines 'ROW<TAB>TAGS<TAB>VISUAL<TAB>EXCLUDE' (trailing columns optional,\n"
    "'-' = none; ROW is a row of --image-features), one JSON line per answer, a summary on stderr.\n"
    "Tags are comma-separated, so a tag may contain spaces. See docs/protocol.md.";

/* The command line of `query`. */
typedef struct {
    const char *server, *server_file, *op_s, *features, *knn_path, *jpeg_path, *tags_s, *neg_s,
        *exclude, *batch, *connect_s, *concept_s, *out, *token_file;
    int64_t row;
    double visual, timeout, retry_for;
    int k, neighbors, tag_k, predict, json, depth, force, reload, nprobe, exact, approx;
} query_opts_t;

static mms_status parse_options(int argc, char **argv, query_opts_t *o, int *help) {
    *o = (query_opts_t){.server = MMS_DEFAULT_ADDR,
                        .op_s = "search",
                        .connect_s = "image",
                        .concept_s = "tags",
                        .visual = -1,
                        .timeout = 30,
                        .retry_for = 30,
                        .k = MMS_PROTO_K_DEFAULT,
                        .neighbors = MMS_PROTO_NEIGHBORS_DEFAULT,
                        .tag_k = MMS_PROTO_TAG_K_DEFAULT,
                        .depth = 32};
    mms_opt_t opts[] = {
        {"server", MMS_OPT_STR, &o->server, "query server address HOST:PORT", 0, 0, 0, 0},
        {"server-file", MMS_OPT_STR, &o->server_file,
         "read HOST:PORT from this file before every connection (jobs/serve.sbatch writes one); "
         "overrides --server", 0, 0, 0, 0},
        {"op", MMS_OPT_STR, &o->op_s, "search, predict_tags, info, ping or reload", 0, 0, 0, 0},
        {"reload", MMS_OPT_FLAG, &o->reload,
         "ask the server to switch to the index version its --index names now (= --op reload); "
         "prints the old and new versions", 0, 0, 0, 0},
        {"image-features", MMS_OPT_STR, &o->features,
         "float32 .npy whose row --row is the query image (node-feature space)", 0, 0, 0, 0},
        {"row", MMS_OPT_INT64, &o->row, "row of --image-features (and --knn-features)", 0, 1, 0, 1e15},
        {"knn-features", MMS_OPT_STR, &o->knn_path,
         "float32 .npy in the index's kNN space (same row), when it has one", 0, 0, 0, 0},
        {"jpeg", MMS_OPT_STR, &o->jpeg_path, "a JPEG file as the query image (pixel indexes)", 0, 0,
         0, 0},
        {"tags", MMS_OPT_STR, &o->tags_s, "comma-separated keywords / tags of the query", 0, 0, 0, 0},
        {"negative-tags", MMS_OPT_STR, &o->neg_s,
         "comma-separated keywords to subtract from the concept (\"apple\" minus \"computer\")", 0, 0, 0,
         0},
        {"visual", MMS_OPT_DOUBLE, &o->visual,
         "w_visual in [0,1]; -1 = the server's default (1 image only, 0 tags only, 0.5 both)", 0,
         1, -1, 1},
        {"k", MMS_OPT_INT, &o->k, "results to return", 0, 1, 1, MMS_PROTO_K_MAX},
        {"nprobe", MMS_OPT_INT, &o->nprobe, "approximate search: inverted lists per shard round (request field nprobe; 0: the server's default)", 0, 1, 0, MMS_PROTO_NPROBE_MAX},
        {"exact", MMS_OPT_FLAG, &o->exact, "exact search whatever the server's default (request field exact: true)", 0, 0, 0, 0},
        {"approx", MMS_OPT_FLAG, &o->approx, "approximate search with the server's nprobe (request field exact: false)", 0, 0, 0, 0},
        {"neighbors", MMS_OPT_INT, &o->neighbors, "visual neighbours the query image connects to",
         0, 1, 1, MMS_PROTO_NEIGHBORS_MAX},
        {"exclude", MMS_OPT_STR, &o->exclude, "an image id to drop from the results", 0, 0, 0, 0},
        {"connect", MMS_OPT_STR, &o->connect_s,
         "the query image's connections: image (visual neighbours), tags or both", 0, 0, 0, 0},
        {"concept", MMS_OPT_STR, &o->concept_s,
         "the slider's conceptual side: tags (mean of the tags' embeddings, the paper's) or node "
         "(the tags as one new node)", 0, 0, 0, 0},
        {"predict-tags", MMS_OPT_FLAG, &o->predict, "also predict tags (search)", 0, 0, 0, 0},
        {"tag-k", MMS_OPT_INT, &o->tag_k, "tags to predict", 0, 1, 1, MMS_PROTO_TAG_K_MAX},
        {"json", MMS_OPT_FLAG, &o->json, "print the response as one JSON line", 0, 0, 0, 0},
        {"queries", MMS_OPT_STR, &o->batch, "TSV file of queries to stream (see above; the same format as search --queries)", 0, 0, 0, 0},
        {"batch", MMS_OPT_STR, &o->batch, NULL, 0, 0, 0, 0}, /* the old name */
        {"pipeline", MMS_OPT_INT, &o->depth, "requests in flight in --queries mode", 0, 1, 1, 65536},
        {"timeout", MMS_OPT_DOUBLE, &o->timeout, "seconds to wait for the server (no progress)", 0,
         1, 0.001, 86400},
        {"retry-for", MMS_OPT_DOUBLE, &o->retry_for,
         "seconds to keep retrying after a connection refused/reset/closed, a timeout or an "
         "'unavailable' answer (back-off with jitter; re-sending is safe: the ops are read-only, "
         "and a reload sent twice ends on the same version); 0 = no retries", 0, 1, 0, 86400},
        {"out", MMS_OPT_STR, &o->out,
         "write the answers to this file (renamed into place only on success; '-' = stdout)", 0, 0,
         0, 0},
        {"force", MMS_OPT_FLAG, &o->force, "replace an existing --out file", 0, 0, 0, 0},
        {"auth-token-file", MMS_OPT_STR, &o->token_file,
         "file holding the server's token (serve --auth-token-file), sent with every request; "
         "default $MMS_AUTH_TOKEN_FILE", 0, 0, 0, 0},
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]);
    return mms_opts_parse("query", k_summary, opts, nopts, argc, argv, help);
}

/* The options checked against each other, as the request's fields (refused
 * before connecting). */
static mms_status make_request(const query_opts_t *o, mms_request_t *q) {
    int op = -1;
    for (int i = 0; i < MMS_OP_COUNT; i++)
        if (!strcmp(o->op_s, mms_op_name((mms_op)i))) op = i;
    MMS_CHECK(!o->reload || op == MMS_OP_SEARCH || op == MMS_OP_RELOAD, MMS_ERR_ARG,
              "query: --reload is an op of its own: not with --op %s", o->op_s);
    if (o->reload) op = MMS_OP_RELOAD;
    MMS_CHECK(op != MMS_OP_RELOAD || !o->batch, MMS_ERR_ARG,
              "query: --reload sends no queries: not with --queries");
    MMS_CHECK(o->visual == -1 || o->visual >= 0, MMS_ERR_ARG,
              "query: --visual must be in [0, 1] (or -1 for the server's default), got %g", o->visual);
    MMS_CHECK(op >= 0, MMS_ERR_ARG,
              "query: --op must be search, predict_tags, info, ping or reload, got '%s'", o->op_s);
    int connect = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(o->connect_s, mms_connect_name(i))) connect = i;
    MMS_CHECK(connect >= 0, MMS_ERR_ARG, "query: --connect must be image, tags or both, got '%s'",
              o->connect_s);
    int concept = -1;
    for (int i = 0; i < 2; i++)
        if (!strcmp(o->concept_s, mms_concept_name(i))) concept = i;
    MMS_CHECK(concept >= 0, MMS_ERR_ARG, "query: --concept must be tags or node, got '%s'",
              o->concept_s);
    MMS_CHECK(!(o->features && o->jpeg_path), MMS_ERR_ARG,
              "query: give --image-features or --jpeg, not both");
    MMS_CHECK(!o->knn_path || o->features, MMS_ERR_ARG, "query: --knn-features needs --image-features");
    MMS_CHECK(!o->batch || !o->jpeg_path, MMS_ERR_ARG, "query: --queries reads images from "
                                                       "--image-features only");
    MMS_CHECK(o->batch || op >= MMS_OP_INFO || o->features || o->jpeg_path || o->tags_s, MMS_ERR_ARG,
              "query: give --image-features, --jpeg or --tags (or --queries)");
    mms_request_init(q);
    q->op = (mms_op)op;
    q->id = 1;
    q->k = o->k;
    q->neighbors = o->neighbors;
    q->tag_k = o->tag_k;
    q->predict_tags = o->predict || op == MMS_OP_PREDICT_TAGS;
    q->exclude = o->exclude;
    q->connect = connect;
    q->concept = concept;
    q->nprobe = o->nprobe;
    q->exact = o->exact ? 1 : o->approx ? -1 : 0;
    if (o->visual >= 0) {
        q->visual = (float)o->visual;
        q->visual_given = 1;
    }
    return MMS_OK;
}

/* What the request borrows: the mapped feature files, the JPEG bytes, the
 * split tags (freed by inputs_free). */
typedef struct {
    mms_npy_t feat, knn;
    int have_feat, have_knn;
    char *jpeg, *tagbuf, *negbuf;
    const char **tags, **neg;
} query_inputs_t;

static void inputs_free(query_inputs_t *in) {
    if (in->have_feat) mms_npy_close(&in->feat);
    if (in->have_knn) mms_npy_close(&in->knn);
    free(in->jpeg);
    free(in->tagbuf);
    free(in->tags);
    free(in->negbuf);
    free(in->neg);
}

/* The query image (a feature row, its kNN row, or a JPEG file) and the tags
 * into q. */
static mms_status load_inputs(const query_opts_t *o, query_inputs_t *in, mms_request_t *q) {
    if (o->features) {
        MMS_CALL(mms_npy_open(o->features, MMS_DT_F32, &in->feat));
        in->have_feat = 1;
        MMS_CHECK(in->feat.cols > 0 && in->feat.cols <= (1u << 24), MMS_ERR_ARG,
                  "query: %s has %zu columns", o->features, in->feat.cols);
        MMS_CHECK(o->batch || (size_t)o->row < in->feat.rows, MMS_ERR_ARG,
                  "query: --row %lld is past the end of %s (%zu rows)", (long long)o->row,
                  o->features, in->feat.rows);
        q->image = (const float *)in->feat.data + (size_t)o->row * in->feat.cols;
        q->image_dim = (int)in->feat.cols;
    }
    if (o->knn_path) {
        MMS_CALL(mms_npy_open(o->knn_path, MMS_DT_F32, &in->knn));
        in->have_knn = 1;
        MMS_CHECK(in->knn.rows == in->feat.rows && in->knn.cols > 0, MMS_ERR_ARG,
                  "query: %s has %zu rows, %s has %zu", o->knn_path, in->knn.rows, o->features,
                  in->feat.rows);
        q->image_knn = (const float *)in->knn.data + (size_t)o->row * in->knn.cols;
        q->image_knn_dim = (int)in->knn.cols;
    }
    if (o->jpeg_path) {
        size_t len;
        MMS_CALL(mms_read_file(o->jpeg_path, &in->jpeg, &len));
        q->jpeg = (const uint8_t *)in->jpeg;
        q->jpeg_len = len;
    }
    if (o->tags_s) {
        MMS_CALL(mms_calloc(MMS_PROTO_MAX_TAGS, sizeof *in->tags, &in->tags));
        in->tagbuf = strdup(o->tags_s);
        MMS_CHECK(in->tagbuf, MMS_ERR_NOMEM, "out of memory");
        MMS_CALL(mms_cmd_split_tags(in->tagbuf, in->tags, MMS_PROTO_MAX_TAGS, &q->ntags, "query"));
        q->tags = in->tags;
    }
    if (o->neg_s) {
        MMS_CALL(mms_calloc(MMS_PROTO_MAX_TAGS, sizeof *in->neg, &in->neg));
        in->negbuf = strdup(o->neg_s);
        MMS_CHECK(in->negbuf, MMS_ERR_NOMEM, "out of memory");
        MMS_CALL(mms_cmd_split_tags(in->negbuf, in->neg, MMS_PROTO_MAX_TAGS, &q->nnegative_tags,
                                    "query"));
        q->negative_tags = in->neg;
    }
    return MMS_OK;
}

/* One request, its answer printed (JSON or human); a server-side error
 * becomes the exit status. */
static mms_status ask_once(mms_netclient_t *c, query_out_t *out, const query_opts_t *o,
                           const mms_request_t *q) {
    mms_response_t r;
    mms_response_init(&r, NULL);
    double t0 = mms_now();
    mms_status st = mms_netclient_call(c, q, &r, o->timeout);
    double secs = mms_now() - t0;
    if (st == MMS_OK && o->json) st = print_json(out, mms_response_json(&r));
    if (st == MMS_OK && !r.ok) {
        fprintf(stderr, "query: the server answered with error %s (%d): %s\n",
                mms_proto_error_name(r.error_code), r.error_code, r.error_message);
        for (int i = 0; i < r.nwarnings && !o->json; i++)
            fprintf(stderr, "query: warning: %s\n", r.warnings[i]);
        st = status_of(r.error_code);
    } else if (st == MMS_OK && !o->json) {
        print_human(out->f, &r, q->op, secs, mms_netclient_address(c));
        st = out_check(out, errno);
    }
    mms_response_free(&r);
    return st;
}

mms_status mms_cmd_query(int argc, char **argv) {
    query_opts_t o;
    int help = 0;
    MMS_CALL(parse_options(argc, argv, &o, &help));
    if (help) return MMS_OK;
    mms_request_t q;
    MMS_CALL(make_request(&o, &q));
    query_inputs_t in;
    memset(&in, 0, sizeof in);
    mms_netclient_t *c = NULL;
    char *token = NULL;
    query_out_t out = {.f = NULL};
    mms_netclient_retry_t rp;
    mms_netclient_retry_default(&rp);
    rp.retry_for_s = o.retry_for;
    rp.addr_file = o.server_file;
    rp.who = "query";
    mms_status st;
    MMS_CALL_GOTO(st, done, load_inputs(&o, &in, &q));
    {
        const char *env = getenv("MMS_AUTH_TOKEN_FILE");
        const char *tf = o.token_file ? o.token_file : (env && env[0] ? env : NULL);
        if (tf)
            MMS_CALL_GOTO(st, done,
                          mms_netclient_read_token(tf,
                                                   o.token_file ? "query: --auth-token-file"
                                                                : "query: MMS_AUTH_TOKEN_FILE",
                                                   &token));
        q.auth = token; /* the batch's requests copy q */
    }
    MMS_CALL_GOTO(st, done, out_open(&out, o.out, o.force));
    MMS_CALL_GOTO(st, done, mms_netclient_open(o.server, o.timeout, &rp, &c));
    if (o.batch) {
        q.image = NULL;
        q.image_dim = 0;
        q.image_knn = NULL;
        q.image_knn_dim = 0;
        q.tags = NULL;
        q.ntags = 0;
        st = run_batch(c, &out, o.batch, o.depth, o.timeout, in.have_feat ? &in.feat : NULL,
                       in.have_knn ? &in.knn : NULL, &q);
    } else {
        st = ask_once(c, &out, &o, &q);
    }
done:
    st = out_close(&out, st);
    mms_netclient_close(&c);
    mms_netclient_token_free(&token);
    inputs_free(&in);
    return st;
}
