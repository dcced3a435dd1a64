/* cmd_search.c: `mpirun -np P mmsage search --index I ... --out R.jsonl`: batch
 * search without a server, for offline evaluation. Every rank holds shards
 * (shard s on rank s mod P) and rank 0 also coordinates; queries go through the
 * same engine code as `serve` (coordinator/engine.h), in batches, so the
 * results are the server's.
 *
 * Queries come from
 *   --catalog C [--split test]       every image of that split: its features
 *                                    (and kNN features), its tags, its id
 *   --queries Q.tsv --features F.npy the line format of `mmsage query --batch`:
 *                                    ROW [TAGS [VISUAL [EXCLUDE]]], ROW a row of
 *                                    F (and --knn-features) or "-", TAGS
 *                                    comma-separated or "-"
 * and each answer is one JSON line (the server's response fields: id, ok,
 * error, results [{id, score, tags, path}], tags, warnings, timing_us) plus
 * "query" (catalog mode: the image id) or "line" (Q.tsv line). With
 * --summary S.json (catalog mode) it also writes the mean tag overlap and
 * mean visual cosine of the results with their queries.
 *
 * Outputs: --out and --summary are written under "<name>.tmp.<host>.<pid>",
 * checked to the last byte (fclose and fsync), and renamed into place only
 * when the search ends well; an existing file is refused unless --force. A
 * failed run leaves nothing under either name. --out - writes to stdout and
 * fails if stdout cannot take it (a full disk, /dev/full).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "engine.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_npy.h"
#include "mms_opts.h"
#include "response_json.h"

typedef struct {
    const char *index, *index_catalog, *catalog, *split, *queries, *features, *knn_features;
    const char *connect, *concept, *out, *summary, *list_scan_s;
    double visual;
    int concept_code;
    int k, neighbors, tag_k, predict, exclude_self, batch, float_scan, force, nprobe, exact, approx, int8_lists;
    int list_scan;
    int64_t limit;
} search_opts_t;

/* One query's own storage (strings the request points into). */
typedef struct {
    char *line;                       /* Q.tsv: owns the tag strings */
    const char *tags[MMS_PROTO_MAX_TAGS];
    int ntags;
    long lineno;                      /* Q.tsv line, or 0 */
    int64_t row;                      /* catalog mode: the query's catalog row */
} squery_t;

/* ---- JSON (the fields of docs/protocol.md's response map) ------------------ */


static mms_status write_json(FILE *f, json_t *o, const char *path) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(o);
    MMS_CHECK(s, MMS_ERR_INTERNAL, "search: cannot format a response as JSON (invalid UTF-8?)");
    errno = 0;
    int bad = fputs(s, f) < 0 || fputc('\n', f) == EOF;
    int err = errno;
    free(s);
    MMS_CHECK(!bad, MMS_ERR_IO, "search: cannot write '%s': %s", path,
              err ? strerror(err) : "write error");
    return MMS_OK;
}

/* ---- query sources ----------------------------------------------------------- */

typedef struct {
    const search_opts_t *o;
    const mms_index_t *ix;
    /* catalog mode */
    mms_catalog_t *cat;
    int split;
    int64_t next_row;
    /* Q.tsv mode */
    FILE *in;
    long lineno;
    char *buf;
    size_t cap;
    mms_npy_t feat, knn;
    int has_feat, has_knn;
    int64_t produced;
} source_t;

/* The next query into req/sq. Returns 1 with a query, 0 at the end. */
static mms_status source_next(source_t *src, mms_request_t *req, squery_t *sq, int *got) {
    const search_opts_t *o = src->o;
    *got = 0;
    memset(sq, 0, sizeof *sq);
    mms_request_init(req);
    req->k = o->k;
    req->neighbors = o->neighbors;
    req->tag_k = o->tag_k;
    req->predict_tags = o->predict;
    if (o->limit > 0 && src->produced >= o->limit) return MMS_OK;
    if (src->cat) {
        const mms_catalog_t *c = src->cat;
        while (src->next_row < c->n && c->split[src->next_row] != src->split) src->next_row++;
        if (src->next_row >= c->n) return MMS_OK;
        int64_t r = src->next_row++;
        sq->row = r;
        req->image = c->x + (size_t)r * c->dim;
        req->image_dim = c->dim;
        if (c->knn_x && src->ix->knn_separate) {
            req->image_knn = c->knn_x + (size_t)r * c->knn_dim;
            req->image_knn_dim = c->knn_dim;
        }
        for (int64_t e = c->tag_ptr[r]; e < c->tag_ptr[r + 1] && sq->ntags < MMS_PROTO_MAX_TAGS; e++)
            sq->tags[sq->ntags++] = c->tag_names[c->tag_idx[e]];
        if (o->exclude_self) req->exclude = c->ids[r];
    } else {
        for (;;) {
            int g = mms_getline(&src->buf, &src->cap, src->in);
            MMS_CHECK(g >= 0, MMS_ERR_IO, "search: read error in %s", o->queries);
            if (g == 0) return MMS_OK;
            src->lineno++;
            const char *p = src->buf;
            while (*p == ' ') p++;
            if (*p && *p != '#') break;
        }
        char where[64 + MMS_PATH_MAX];
        snprintf(where, sizeof where, "%s:%ld", o->queries, src->lineno);
        sq->lineno = src->lineno;
        sq->line = strdup(src->buf);
        MMS_CHECK(sq->line, MMS_ERR_NOMEM, "search: out of memory");
        char *col[4] = {NULL, NULL, NULL, NULL};
        int nc = 0;
        for (char *p = sq->line; p && nc < 4; nc++) {
            col[nc] = p;
            char *t = strchr(p, '\t');
            if (t) *t = '\0';
            p = t ? t + 1 : NULL;
        }
        if (strcmp(col[0], "-")) {
            char *end;
            long long row = strtoll(col[0], &end, 10);
            MMS_CHECK(src->has_feat, MMS_ERR_ARG, "%s: a row number needs --features", where);
            MMS_CHECK(*end == '\0' && end != col[0] && row >= 0 && (size_t)row < src->feat.rows,
                      MMS_ERR_ARG, "%s: bad row '%s' (a row of --features, 0..%zu, or '-')", where,
                      col[0], src->feat.rows - 1);
            req->image = (const float *)src->feat.data + (size_t)row * src->feat.cols;
            req->image_dim = (int)src->feat.cols;
            if (src->has_knn) {
                MMS_CHECK((size_t)row < src->knn.rows, MMS_ERR_ARG,
                          "%s: row %lld is beyond --knn-features", where, row);
                req->image_knn = (const float *)src->knn.data + (size_t)row * src->knn.cols;
                req->image_knn_dim = (int)src->knn.cols;
            }
        }
        if (col[1] && strcmp(col[1], "-"))
            MMS_CALL(mms_cmd_split_tags(col[1], sq->tags, MMS_PROTO_MAX_TAGS, &sq->ntags, where));
        if (col[2] && col[2][0] && strcmp(col[2], "-")) {
            char *end;
            double v = strtod(col[2], &end);
            MMS_CHECK(*end == '\0' && end != col[2] && v >= 0 && v <= 1, MMS_ERR_ARG,
                      "%s: bad visual weight '%s' (a number in [0, 1] or '-')", where, col[2]);
            req->visual = (float)v;
            req->visual_given = 1;
        }
        if (col[3] && col[3][0] && strcmp(col[3], "-")) req->exclude = col[3];
    }
    req->tags = sq->tags;
    req->ntags = sq->ntags;
    req->concept = o->concept_code;
    if (!req->visual_given && o->visual >= 0) {
        req->visual = (float)o->visual;
        req->visual_given = 1;
    }
    /* the protocol's default weights (docs/protocol.md) */
    int has_image = req->image != NULL;
    if (!req->visual_given) req->visual = has_image && req->ntags ? 0.5f : has_image ? 1.0f : 0.0f;
    src->produced++;
    *got = 1;
    return MMS_OK;
}

/* ---- evaluation summary (catalog mode) --------------------------------------- */

typedef struct {
    double overlap, cosine;
    int64_t n_overlap, n_cosine, queries, failed;
} summary_t;

static double cosine(const float *a, const float *b, int32_t d) {
    double ab = 0, aa = 0, bb = 0;
    for (int32_t j = 0; j < d; j++) {
        ab += (double)a[j] * b[j];
        aa += (double)a[j] * a[j];
        bb += (double)b[j] * b[j];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
}

static void summarise(summary_t *sm, const mms_index_t *ix, const mms_request_t *req,
                      const mms_response_t *r) {
    sm->queries++;
    if (!r->ok) {
        sm->failed++;
        return;
    }
    const mms_catalog_t *c = ix->cat;
    for (int i = 0; i < r->nresults; i++) {
        const mms_result_t *x = &r->results[i];
        if (req->ntags > 0) {
            int hit = 0;
            for (int a = 0; a < req->ntags; a++)
                for (int b = 0; b < x->ntags; b++)
                    if (!strcmp(req->tags[a], x->tags[b])) {
                        hit++;
                        break;
                    }
            sm->overlap += (double)hit / req->ntags;
            sm->n_overlap++;
        }
        int64_t row = mms_catalog_id_lookup(c, x->id);
        if (req->image && row >= 0 && req->image_dim == c->dim) {
            sm->cosine += cosine(req->image, c->x + (size_t)row * c->dim, c->dim);
            sm->n_cosine++;
        }
    }
}

/* ---- driver -------------------------------------------------------------------- */

/* An output file that exists is refused unless force; a directory always. */
static mms_status check_output(const char *opt, const char *path, int force) {
    if (!path) return MMS_OK;
    MMS_CHECK(path[0], MMS_ERR_ARG, "search: %s is empty", opt);
    MMS_CHECK(!mms_path_is_dir(path), MMS_ERR_ARG, "search: %s '%s' is a directory", opt, path);
    MMS_CHECK(force || !mms_path_exists(path), MMS_ERR_EXISTS,
              "search: %s '%s' already exists (pass --force to replace it)", opt, path);
    return MMS_OK;
}

static mms_status open_source(source_t *src, const search_opts_t *o) {
    if (o->catalog) {
        MMS_CALL(mms_catalog_open(o->catalog, &src->cat));
        src->split = mms_split_parse(o->split, strlen(o->split));
        MMS_CHECK(src->split >= 0, MMS_ERR_ARG, "search: --split '%s' (train, val or test)", o->split);
        MMS_CHECK(src->cat->n_split[src->split] > 0 || src->split != MMS_SPLIT_VAL, MMS_ERR_ARG,
                  "search: catalog '%s' has no val images to query with: import it with "
                  "--val-fraction F (e.g. mmsage import mulan ... --val-fraction 0.1; synth, coco and "
                  "npy take it too), then build, train and embed from that catalog",
                  o->catalog);
        MMS_CHECK(src->cat->n_split[src->split] > 0, MMS_ERR_ARG,
                  "search: catalog '%s' has no %s images to query with", o->catalog, o->split);
        return MMS_OK;
    }
    MMS_CALL(mms_fopen(o->queries, "r", &src->in));
    if (o->features) {
        MMS_CALL(mms_npy_open(o->features, MMS_DT_F32, &src->feat));
        src->has_feat = 1;
    }
    if (o->knn_features) {
        MMS_CALL(mms_npy_open(o->knn_features, MMS_DT_F32, &src->knn));
        src->has_knn = 1;
    }
    return MMS_OK;
}

static void close_source(source_t *src) {
    mms_catalog_close(&src->cat);
    if (src->in) fclose(src->in);
    if (src->has_feat) mms_npy_close(&src->feat);
    if (src->has_knn) mms_npy_close(&src->knn);
    free(src->buf);
}

static mms_status coordinate(mms_engine_t *e, const search_opts_t *o, int connect) {
    const mms_index_t *ix = mms_engine_index(e);
    source_t src;
    memset(&src, 0, sizeof src);
    src.o = o;
    src.ix = ix;
    FILE *out = NULL;
    const int to_stdout = !strcmp(o->out, "-");
    char out_tmp[MMS_PATH_MAX] = "", sum_tmp[MMS_PATH_MAX] = "";
    const char *out_name = to_stdout ? "standard output" : out_tmp;
    const int B = o->batch;
    mms_request_t *reqs = calloc((size_t)B, sizeof *reqs);
    mms_response_t *resps = calloc((size_t)B, sizeof *resps);
    squery_t *sqs = calloc((size_t)B, sizeof *sqs);
    uint8_t *conn = calloc((size_t)B, 1);
    summary_t sm;
    memset(&sm, 0, sizeof sm);
    mms_status s = reqs && resps && sqs && conn ? MMS_OK : MMS_ERR_NOMEM;
    if (s == MMS_OK) s = open_source(&src, o);
    if (s == MMS_OK && !to_stdout) s = mms_file_begin(o->out, o->force, out_tmp, sizeof out_tmp);
    if (s == MMS_OK && !to_stdout) s = mms_fopen(out_tmp, "w", &out);
    if (s == MMS_OK && to_stdout) out = stdout;
    mms_progress_t pr;
    mms_progress_begin(&pr, "search", src.cat ? src.cat->n_split[src.split] : 0, "queries");
    double t0 = mms_now(), engine_s = 0;
    int64_t total = 0, errors = 0;
    for (int more = 1; s == MMS_OK && more;) {
        int n = 0;
        while (s == MMS_OK && n < B) {
            int got = 0;
            s = source_next(&src, &reqs[n], &sqs[n], &got);
            if (s != MMS_OK || !got) {
                more = 0;
                break;
            }
            reqs[n].id = (uint64_t)(total + n + 1);
            conn[n] = (uint8_t)connect;
            n++;
        }
        for (int i = 0; s == MMS_OK && i < n; i++) {
            mms_response_init(&resps[i], &reqs[i]);
            s = mms_response_reserve(&resps[i], reqs[i].k, reqs[i].tag_k);
        }
        double t1 = mms_now();
        if (s == MMS_OK && n > 0) s = mms_engine_answer(e, reqs, conn, n, resps, NULL);
        engine_s += mms_now() - t1;
        for (int i = 0; s == MMS_OK && i < n; i++) {
            json_t *j = mms_response_json(&resps[i]);
            if (src.cat) {
                json_object_set_new(j, "query", json_string(src.cat->ids[sqs[i].row]));
                summarise(&sm, ix, &reqs[i], &resps[i]);
            } else {
                json_object_set_new(j, "line", json_integer(sqs[i].lineno));
            }
            errors += !resps[i].ok;
            s = write_json(out, j, out_name);
        }
        for (int i = 0; i < n; i++) {
            mms_response_free(&resps[i]);
            free(sqs[i].line);
        }
        total += n;
        mms_progress_update(&pr, total);
    }
    mms_progress_end(&pr);
    double secs = mms_now() - t0;
    if (out && out != stdout) {
        mms_status cs = mms_fclose(&out, out_tmp); /* closed whatever happens */
        if (s == MMS_OK) s = cs;
    } else if (out && s == MMS_OK) {
        s = mms_stdout_flush(out_name);
    }
    if (s == MMS_OK)
        mms_log_info("search: %lld queries in %.2f s (engine %.2f s, %.1f queries/s), %lld "
                     "answered with an error", (long long)total, secs, engine_s,
                     engine_s > 0 ? (double)total / engine_s : 0.0, (long long)errors);
    if (s == MMS_OK && o->summary) {
        json_t *j = json_object();
        json_object_set_new(j, "queries", json_integer(sm.queries));
        json_object_set_new(j, "failed", json_integer(sm.failed));
        json_object_set_new(j, "k", json_integer(o->k));
        json_object_set_new(j, "visual", mms_json_number(o->visual));
        json_object_set_new(j, "connect", json_string(mms_engine_connect_name(connect)));
        json_object_set_new(j, "concept", json_string(mms_concept_name(o->concept_code)));
        json_object_set_new(j, "mean_tag_overlap",
                            mms_json_number(sm.n_overlap ? sm.overlap / (double)sm.n_overlap : NAN));
        json_object_set_new(j, "mean_visual_cosine",
                            mms_json_number(sm.n_cosine ? sm.cosine / (double)sm.n_cosine : NAN));
        char *txt = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
        json_decref(j);
        FILE *sf = NULL;
        s = txt ? mms_file_begin(o->summary, o->force, sum_tmp, sizeof sum_tmp) : MMS_ERR_NOMEM;
        if (s == MMS_OK) s = mms_fopen(sum_tmp, "w", &sf);
        if (s == MMS_OK && fputs(txt, sf) < 0) {
            mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "search: cannot write '%s': %s",
                          sum_tmp, strerror(errno));
            s = MMS_ERR_IO;
        }
        mms_status cs = mms_fclose(&sf, sum_tmp);
        if (s == MMS_OK) s = cs;
        if (s == MMS_OK) mms_log_info("search: summary: %s", txt);
        free(txt);
    }
    /* publish both only now that both are complete */
    if (s == MMS_OK && out_tmp[0]) s = mms_file_commit(out_tmp, o->out);
    if (s == MMS_OK && sum_tmp[0]) s = mms_file_commit(sum_tmp, o->summary);
    if (s != MMS_OK) {
        mms_file_abort(out_tmp);
        mms_file_abort(sum_tmp);
    }
    close_source(&src);
    free(reqs);
    free(resps);
    free(sqs);
    free(conn);
    return s;
}

mms_status mms_cmd_search(int argc, char **argv) {
    search_opts_t o;
    memset(&o, 0, sizeof o);
    o.split = "test";
    o.connect = "image";
    o.concept = "tags";
    o.visual = -1;
    o.k = MMS_PROTO_K_DEFAULT;
    o.neighbors = MMS_PROTO_NEIGHBORS_DEFAULT;
    o.tag_k = MMS_PROTO_TAG_K_DEFAULT;
    o.batch = 256;
    mms_opt_t opts[] = {
        {"index", MMS_OPT_STR, &o.index, "index directory written by mmsage embed", 1, 0, 0, 0},
        {"index-catalog", MMS_OPT_STR, &o.index_catalog,
         "the index's catalog, if it moved since embed (ids, tags and paths of results)", 0, 0, 0, 0},
        {"catalog", MMS_OPT_STR, &o.catalog, "query every image of --split of this catalog", 0, 0, 0, 0},
        {"split", MMS_OPT_STR, &o.split, "split of --catalog to query: train, val or test", 0, 0, 0, 0},
        {"queries", MMS_OPT_STR, &o.queries,
         "TSV of queries, the format of 'mmsage query --batch': ROW [TAGS [VISUAL [EXCLUDE]]]", 0, 0, 0, 0},
        {"features", MMS_OPT_STR, &o.features, "feature rows for --queries' ROW column (.npy)", 0, 0, 0, 0},
        {"knn-features", MMS_OPT_STR, &o.knn_features,
         "kNN-space rows for --queries (indexes with a separate kNN space)", 0, 0, 0, 0},
        {"visual", MMS_OPT_DOUBLE, &o.visual,
         "w_visual in [0, 1] for every query (default: 1 image only, 0 tags only, 0.5 both)", 0, 1, -1, 1},
        {"connect", MMS_OPT_STR, &o.connect, "the query image's connections: image, tags or both", 0, 0, 0, 0},
        {"concept", MMS_OPT_STR, &o.concept,
         "the slider's conceptual side: tags (mean of the tags' embeddings, the paper's) or node "
         "(the tags as one new node)", 0, 0, 0, 0},
        {"k", MMS_OPT_INT, &o.k, "results per query", 0, 1, 1, MMS_PROTO_K_MAX},
        {"neighbors", MMS_OPT_INT, &o.neighbors, "visual neighbours a query image connects to", 0,
         1, 1, MMS_PROTO_NEIGHBORS_MAX},
        {"exclude-self", MMS_OPT_FLAG, &o.exclude_self, "drop the query's own id from its results (catalog mode)", 0, 0, 0, 0},
        {"predict-tags", MMS_OPT_FLAG, &o.predict, "also predict tags for every query", 0, 0, 0, 0},
        {"tag-k", MMS_OPT_INT, &o.tag_k, "tags to predict", 0, 1, 1, MMS_PROTO_TAG_K_MAX},
        {"out", MMS_OPT_STR, &o.out, "JSON lines output, one per query ('-' = stdout)", 1, 0, 0, 0},
        {"force", MMS_OPT_FLAG, &o.force, "replace an existing --out or --summary (once the new one is complete)", 0, 0, 0, 0},
        {"summary", MMS_OPT_STR, &o.summary,
         "catalog mode: write mean tag overlap and visual cosine of the results to this JSON file", 0, 0, 0, 0},
        {"per-round", MMS_OPT_INT, &o.batch, "queries answered together (one MPI round each)", 0, 1, 1, 65536},
        {"batch", MMS_OPT_INT, &o.batch, NULL, 0, 1, 1, 65536}, /* the old name */
        {"limit", MMS_OPT_INT64, &o.limit, "stop after this many queries (0 = all)", 0, 1, 0, 1e15},
        {"float-scan", MMS_OPT_FLAG, &o.float_scan,
         "scan the float rows instead of the int8 filter + exact re-rank (same results, slower)", 0, 0, 0, 0},
        {"nprobe", MMS_OPT_INT, &o.nprobe, "inverted lists probed per query (approximate search on an index with lists; 0: exact below 200,000 images, the default nprobe above; docs/query.md)", 0, 1, 0, 65536},
        {"approx", MMS_OPT_FLAG, &o.approx, "approximate search with the default nprobe whatever the index size (below 200,000 images the default is exact)", 0, 0, 0, 0},
        {"exact", MMS_OPT_FLAG, &o.exact, "exact search whatever the index size (requests may still ask for nprobe)", 0, 0, 0, 0},
        {"int8-lists", MMS_OPT_FLAG, &o.int8_lists, "the same as --list-scan int8", 0, 0, 0, 0},
        {"list-scan", MMS_OPT_STR, &o.list_scan_s, MMS_ENGINE_LIST_SCAN_HELP, 0, 0, 0, 0},
    };
    const int nopt = (int)(sizeof opts / sizeof opts[0]);
    int help = 0;
    mms_status s = mms_opts_parse("search",
                                  "Answer a batch of queries with the sharded index, no server "
                                  "(collective; every rank holds shards).",
                                  opts, nopt, argc, argv, &help);
    int connect = s == MMS_OK && !help ? mms_engine_connect_parse(o.connect) : 0;
    if (s == MMS_OK && !help)
        s = mms_engine_list_scan_parse("list-scan", o.list_scan_s, o.int8_lists, &o.list_scan);
    if (s == MMS_OK && !help) {
        o.concept_code = !strcmp(o.concept, "node") ? MMS_CONCEPT_NODE : MMS_CONCEPT_TAGS;
        if (connect < 0) {
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "search: --connect '%s' (image, tags or both)", o.connect);
            s = MMS_ERR_ARG;
        } else if (strcmp(o.concept, "tags") && strcmp(o.concept, "node")) {
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "search: --concept '%s' (tags or node)", o.concept);
            s = MMS_ERR_ARG;
        } else if (!o.catalog == !o.queries) {
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "search: give --catalog (with --split) or --queries (with --features), "
                          "exactly one");
            s = MMS_ERR_ARG;
        } else if (o.summary && !o.catalog) {
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "search: --summary needs --catalog (the queries' tags and features)");
            s = MMS_ERR_ARG;
        } else if (o.summary && !strcmp(o.summary, o.out)) {
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "search: --summary and --out are the same file '%s'", o.out);
            s = MMS_ERR_ARG;
        } else if (mms_log_rank() == 0) {
            /* refuse an existing output now, not after loading the index */
            s = check_output("--out", strcmp(o.out, "-") ? o.out : NULL, o.force);
            if (s == MMS_OK) s = check_output("--summary", o.summary, o.force);
        }
    }
    MMS_CALL(mms_mpi_agree(s, MPI_COMM_WORLD));
    if (help) return MMS_OK;
    mms_opts_echo("search", opts, nopt);
    mms_engine_params_t ep;
    mms_engine_params_default(&ep);
    ep.index = o.index;
    ep.catalog = o.index_catalog;
    ep.mode = MMS_ENGINE_SEARCH;
    ep.filter = !o.float_scan;
    ep.list_scan = o.list_scan;
    ep.nprobe = o.nprobe;
    ep.exact = o.exact ? 1 : o.approx ? -1 : 0;
    mms_engine_t *e = NULL;
    MMS_CALL(mms_engine_open(&ep, MPI_COMM_WORLD, &e));
    if (mms_engine_is_coordinator(e)) {
        s = coordinate(e, &o, connect);
        mms_status st = mms_engine_stop(e); /* always: the workers wait for it */
        if (s == MMS_OK) s = st;
    } else {
        s = mms_engine_worker_loop(e);
    }
    mms_engine_close(&e);
    return mms_mpi_agree(s, MPI_COMM_WORLD);
}
