// ranks: 2 4
/* test_engine_reload.c: mms_engine_reload (coordinator/engine.h) at 2 and 4
 * ranks, in the serve layout (rank 0 coordinates, ranks 1.. hold the shards)
 * and the search layout (every rank holds shards).
 *
 * Builds, with the real pipeline, one catalog and graph and two indexes of it:
 * A (hidden 16, seed 3: 32-d embeddings) and B (hidden 24, seed 4: 48-d), so
 * their answers differ and a switch changes the round buffers' widths. Then:
 *   - the answers of a fresh engine on A and on B (the references; they differ);
 *   - serve layout, opened through a symlink cur -> A: answers equal A's; the
 *     link moves to B and mms_engine_reload(e, NULL) re-resolves it: the reply
 *     names A and B, info reports B's directory and version, and the answers
 *     equal the fresh engine's on B bit for bit;
 *   - a reload to C, a copy of A with 16 bytes flipped in shard-0/emb.npy (held
 *     by rank 1 only, so at 4 ranks the other workers open C fine): refused
 *     with MMS_ERR_FORMAT and a message naming the file, and the answers are
 *     still exactly B's (had the ranks that opened C switched, the 32-d rows of
 *     A would answer 48-d queries); a reload to a directory that does not
 *     exist is refused the same way;
 *   - after the worker loops end, every rank checks the directory it holds:
 *     B on every rank (the refusals switched nobody);
 *   - search layout: opened on B, reloaded to A (the widths shrink), answers
 *     equal a fresh search-layout engine on A; every rank then holds A.
 * A request of op reload given to mms_engine_answer is left untouched.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed.h"
#include "engine.h"
#include "graph_build.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_test.h"
#include "mpi_fixture.h"
#include "part_dir.h"
#include "synth.h"
#include "train.h"

static int g_rank, g_size;

/* ------------------------------------------------------------------ the indexes */

static mms_status make_model_index(const char *g, const char *mod, const char *idx, int hidden,
                                   uint64_t seed) {
    MMS_CALL(mms_fixture_train(g, mod, 10, (int)seed, hidden, MPI_COMM_WORLD));
    mms_embed_params_t epp = {.graph = g, .model = mod, .out = idx, .force = 0};
    mms_embed_summary_t es;
    MMS_CALL(mms_embed(&epp, MPI_COMM_WORLD, &es));
    return MMS_OK;
}

static mms_status make_indexes(const char *dir) {
    char cat[1100], g[1100], ma[1100], mb[1100], ia[1100], ib[1100];
    snprintf(cat, sizeof cat, "%s/cat", dir);
    snprintf(g, sizeof g, "%s/graph", dir);
    snprintf(ma, sizeof ma, "%s/model-a", dir);
    snprintf(mb, sizeof mb, "%s/model-b", dir);
    snprintf(ia, sizeof ia, "%s/A", dir);
    snprintf(ib, sizeof ib, "%s/B", dir);
    mms_status s = MMS_OK;
    mms_synth_params_t sp;
    mms_synth_params_default(&sp);
    sp.images = 800;
    sp.dim = 24;
    sp.tags = 40;
    sp.clusters = 10;
    sp.topics = 5;
    sp.seed = 5;
    MMS_CALL(mms_fixture_catalog_graph(&sp, -1, -1, cat, g, MPI_COMM_WORLD));
    if (g_rank == 0) {
        mms_part_opts_t po;
        mms_part_opts_default(&po);
        po.parts = g_size;
        mms_part_stats_t chosen;
        s = mms_partition_write(g, &po, &chosen, NULL);
        if (s == MMS_OK) mms_part_stats_free(&chosen);
    }
    MMS_CALL(mms_mpi_agree(s, MPI_COMM_WORLD));
    MMS_CALL(make_model_index(g, ma, ia, 16, 3));
    MMS_CALL(make_model_index(g, mb, ib, 24, 4));
    return MMS_OK;
}

/* C: a copy of A with 16 bytes of shard-0/emb.npy flipped (rank 0). */
static int make_corrupt_copy(const char *dir) {
    char cmd[4096], f[1200];
    snprintf(cmd, sizeof cmd, "cp -r '%s/A' '%s/C'", dir, dir);
    if (system(cmd) != 0) return -1;
    snprintf(f, sizeof f, "%s/C/shard-0/emb.npy", dir);
    FILE *fp = fopen(f, "r+b");
    if (!fp) return -1;
    unsigned char b[16];
    if (fseek(fp, 256, SEEK_SET) || fread(b, 1, sizeof b, fp) != sizeof b) {
        fclose(fp);
        return -1;
    }
    for (int i = 0; i < 16; i++) b[i] ^= 0x5a;
    int bad = fseek(fp, 256, SEEK_SET) || fwrite(b, 1, sizeof b, fp) != sizeof b;
    return fclose(fp) || bad ? -1 : 0;
}

/* ------------------------------------------------------------------ requests */

#define NREQ 14
#define KRES 10

typedef struct {
    mms_request_t req[NREQ];
    uint8_t connect[NREQ];
    const char *tagbuf[NREQ][4];
    int n;
} reqset_t;

/* Queries from the catalog's first test images: image only, tags only, fused
 * (connect both), tag prediction; then info and a reload (left untouched). */
static void build_requests(reqset_t *rs, const mms_catalog_t *c) {
    memset(rs, 0, sizeof *rs);
    int nt = 0;
    for (int64_t r = 0; r < c->n && nt < 3; r++) {
        if (c->split[r] != MMS_SPLIT_TEST) continue;
        nt++;
        for (int kind = 0; kind < 4; kind++) {
            int i = rs->n++;
            mms_request_t *q = &rs->req[i];
            mms_request_init(q);
            q->id = (uint64_t)i + 1;
            q->k = KRES;
            int ntag = 0;
            for (int64_t e = c->tag_ptr[r]; e < c->tag_ptr[r + 1] && ntag < 4; e++)
                rs->tagbuf[i][ntag++] = c->tag_names[c->tag_idx[e]];
            if (kind != 1) {
                q->image = c->x + (size_t)r * c->dim;
                q->image_dim = c->dim;
            }
            if (kind == 1 || kind == 2) {
                q->tags = rs->tagbuf[i];
                q->ntags = ntag;
            }
            q->visual = kind == 0 ? 1.0f : kind == 1 ? 0.0f : 0.5f;
            if (ntag == 0 && kind == 1) { /* an image without tags: image only again */
                q->image = c->x + (size_t)r * c->dim;
                q->image_dim = c->dim;
                q->visual = 1.0f;
            }
            q->visual_given = 1;
            rs->connect[i] = kind == 2 ? MMS_ENGINE_CONNECT_BOTH : MMS_ENGINE_CONNECT_IMAGE;
            if (kind == 3) {
                q->op = MMS_OP_PREDICT_TAGS;
                q->predict_tags = 1;
                q->tag_k = 5;
            }
        }
    }
    mms_request_t *q = &rs->req[rs->n++];
    mms_request_init(q);
    q->id = (uint64_t)rs->n;
    q->op = MMS_OP_INFO;
    q = &rs->req[rs->n++];
    mms_request_init(q);
    q->id = (uint64_t)rs->n;
    q->op = MMS_OP_RELOAD;
}

typedef struct {
    int ok, code, n, ntags;
    char ids[KRES][32];
    float scores[KRES];
    char tags[5][64];
    float tag_scores[5];
    char index[1200];
    int64_t version;
    int ninfo;
} answer_t;

/* Coordinator: answer the set, keep what is compared. */
static void answer(mms_engine_t *e, reqset_t *rs, answer_t *out) {
    mms_response_t *resps = calloc((size_t)rs->n, sizeof *resps);
    for (int i = 0; i < rs->n; i++) {
        mms_response_init(&resps[i], &rs->req[i]);
        T_OK(mms_response_reserve(&resps[i], KRES, 5));
    }
    T_OK(mms_engine_answer(e, rs->req, rs->connect, rs->n, resps, NULL));
    for (int i = 0; i < rs->n; i++) {
        answer_t *a = &out[i];
        const mms_response_t *r = &resps[i];
        memset(a, 0, sizeof *a);
        a->ok = r->ok;
        a->code = r->error_code;
        a->n = r->nresults < KRES ? r->nresults : KRES;
        a->ntags = r->ntags < 5 ? r->ntags : 5;
        for (int j = 0; j < a->n; j++) {
            snprintf(a->ids[j], sizeof a->ids[j], "%s", r->results[j].id);
            a->scores[j] = r->results[j].score;
        }
        for (int j = 0; j < a->ntags; j++) {
            snprintf(a->tags[j], sizeof a->tags[j], "%s", r->tags[j].tag);
            a->tag_scores[j] = r->tags[j].score;
        }
        a->ninfo = r->ninfo;
        a->version = -1;
        for (int j = 0; j < r->ninfo; j++) {
            if (!strcmp(r->info[j].key, "index")) snprintf(a->index, sizeof a->index, "%s", r->info[j].s);
            if (!strcmp(r->info[j].key, "version")) a->version = r->info[j].i;
        }
        mms_response_free(&resps[i]);
    }
    free(resps);
}

/* Differences between two answer sets (ids, bitwise scores, tags). */
static int differences(const reqset_t *rs, const answer_t *a, const answer_t *b) {
    int d = 0;
    for (int i = 0; i < rs->n; i++) {
        if (rs->req[i].op == MMS_OP_INFO || rs->req[i].op == MMS_OP_RELOAD) continue;
        if (a[i].ok != b[i].ok || a[i].n != b[i].n || a[i].ntags != b[i].ntags) {
            d++;
            continue;
        }
        for (int j = 0; j < a[i].n; j++)
            d += strcmp(a[i].ids[j], b[i].ids[j]) != 0 ||
                 memcmp(&a[i].scores[j], &b[i].scores[j], sizeof(float)) != 0;
        for (int j = 0; j < a[i].ntags; j++)
            d += strcmp(a[i].tags[j], b[i].tags[j]) != 0 ||
                 memcmp(&a[i].tag_scores[j], &b[i].tag_scores[j], sizeof(float)) != 0;
    }
    return d;
}

static void expect_same(const char *what, const reqset_t *rs, const answer_t *a, const answer_t *b) {
    int d = differences(rs, a, b);
    if (d) fprintf(stderr, "FAIL %s: %d differences\n", what, d);
    T_EQ_INT(d, 0);
}

/* The info and reload requests of a set: info names dir and version; the
 * reload request was left untouched (ok, nothing in it). */
static void check_info(const reqset_t *rs, const answer_t *a, const char *dir, int64_t version) {
    for (int i = 0; i < rs->n; i++) {
        if (rs->req[i].op == MMS_OP_INFO) {
            T_CHECK(a[i].ok);
            T_STREQ(a[i].index, dir);
            T_EQ_INT(a[i].version, version);
        }
        if (rs->req[i].op == MMS_OP_RELOAD) {
            T_CHECK(a[i].ok);
            T_EQ_INT(a[i].n, 0);
            T_EQ_INT(a[i].ninfo, 0);
        }
    }
}

/* ------------------------------------------------------------------ sessions */

static mms_engine_t *open_engine(const char *index, mms_engine_mode mode) {
    mms_engine_params_t ep;
    mms_engine_params_default(&ep);
    ep.index = index;
    ep.mode = mode;
    mms_engine_t *e = NULL;
    T_OK(mms_engine_open(&ep, MPI_COMM_WORLD, &e));
    if (!e) MPI_Abort(MPI_COMM_WORLD, 1);
    return e;
}

/* A fresh engine's answers (coordinator), then stop and close on every rank. */
static void reference(const char *index, mms_engine_mode mode, reqset_t *rs, answer_t *out) {
    mms_engine_t *e = open_engine(index, mode);
    if (g_rank == 0) {
        answer(e, rs, out);
        T_OK(mms_engine_stop(e));
    } else {
        T_OK(mms_engine_worker_loop(e));
    }
    mms_engine_close(&e);
}

/* Every rank: the directory it serves must be `dir`; reported by rank 0. */
static void check_every_rank(mms_engine_t *e, const char *dir, const char *when) {
    int bad = strcmp(mms_engine_index(e)->dir, dir) != 0, all = 0;
    if (bad)
        fprintf(stderr, "FAIL rank %d %s: serves %s, expected %s\n", g_rank, when,
                mms_engine_index(e)->dir, dir);
    MPI_Allreduce(&bad, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (g_rank == 0 && all) fprintf(stderr, "FAIL %s: %d rank(s) serve another directory\n", when, all);
    T_EQ_INT(all, 0);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    mms_log_init(g_rank, g_size, MMS_LOG_WARN);
    if (g_size < 2) {
        if (g_rank == 0) fprintf(stderr, "test_engine_reload: needs 2 or more ranks\n");
        MPI_Finalize();
        return 77;
    }
    char dir[1024] = "";
    if (g_rank == 0) snprintf(dir, sizeof dir, "%s", mms_test_tmpdir("engine_reload"));
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    mms_log_set_level(MMS_LOG_ERROR);
    if (make_indexes(dir) != MMS_OK) {
        fprintf(stderr, "rank %d: could not build the test indexes\n", g_rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    mms_log_set_level(MMS_LOG_WARN);
    /* real paths (what the engine reports), the link, the corrupt copy */
    char ra[PATH_MAX], rb[PATH_MAX], rc_[PATH_MAX], link[1200], tmp[1200];
    snprintf(tmp, sizeof tmp, "%s/A", dir);
    if (!realpath(tmp, ra)) MPI_Abort(MPI_COMM_WORLD, 1);
    snprintf(tmp, sizeof tmp, "%s/B", dir);
    if (!realpath(tmp, rb)) MPI_Abort(MPI_COMM_WORLD, 1);
    snprintf(link, sizeof link, "%s/current", dir);
    int ok = 1;
    if (g_rank == 0) ok = make_corrupt_copy(dir) == 0 && symlink("A", link) == 0;
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (!ok) {
        if (g_rank == 0) fprintf(stderr, "could not make the corrupt copy or the link\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    snprintf(tmp, sizeof tmp, "%s/C", dir);
    if (!realpath(tmp, rc_)) MPI_Abort(MPI_COMM_WORLD, 1);

    reqset_t *rs = calloc(1, sizeof *rs);
    mms_catalog_t *cat = NULL; /* rank 0; the requests borrow its rows */
    answer_t *refA = calloc(NREQ, sizeof *refA), *refB = calloc(NREQ, sizeof *refB);
    answer_t *refAs = calloc(NREQ, sizeof *refAs), *got = calloc(NREQ, sizeof *got);
    if (g_rank == 0) {
        char cdir[1200];
        snprintf(cdir, sizeof cdir, "%s/cat", dir);
        T_OK(mms_catalog_open(cdir, &cat));
        if (!cat) MPI_Abort(MPI_COMM_WORLD, 1);
        build_requests(rs, cat);
    }

    /* the references: fresh engines on A and on B */
    reference(ra, MMS_ENGINE_SERVE, rs, refA);
    reference(rb, MMS_ENGINE_SERVE, rs, refB);
    reference(ra, MMS_ENGINE_SEARCH, rs, refAs);
    if (g_rank == 0) {
        int d = differences(rs, refA, refB);
        T_CHECK(d > 0); /* A and B answer differently: the comparisons below can fail */
        check_info(rs, refA, ra, 1);
        check_info(rs, refB, rb, 1);
    }

    /* serve layout through the link: A, then B, then two refusals */
    mms_engine_t *e = open_engine(link, MMS_ENGINE_SERVE);
    check_every_rank(e, ra, "opened through the link");
    if (g_rank == 0) {
        T_STREQ(mms_engine_index(e)->dir, ra); /* the link resolved at open */
        answer(e, rs, got);
        expect_same("through the link = fresh A", rs, got, refA);
        check_info(rs, got, ra, 1);

        /* the nightly job moves the link; reload(NULL) re-resolves it */
        T_CHECK(unlink(link) == 0 && symlink("B", link) == 0);
        mms_engine_reload_t info;
        T_OK(mms_engine_reload(e, NULL, &info));
        T_STREQ(info.old_dir, ra);
        T_STREQ(info.new_dir, rb);
        T_EQ_INT(info.old_version, 1);
        T_EQ_INT(info.new_version, 1);
        T_EQ_INT(mms_engine_index(e)->emb_dim, 48);
        answer(e, rs, got);
        expect_same("reloaded to B = fresh B", rs, got, refB);
        check_info(rs, got, rb, 1);

        /* C is corrupt on rank 1 only (shard 0): refused everywhere */
        mms_log_set_level(MMS_LOG_QUIET);
        mms_status s = mms_engine_reload(e, rc_, &info);
        mms_log_set_level(MMS_LOG_WARN);
        T_FAILS(s, MMS_ERR_FORMAT);
        T_MSG_HAS("shard-0/emb.npy");
        T_MSG_HAS("on rank 1");
        T_MSG_HAS("still serving version 1");
        T_STREQ(info.old_dir, rb);
        T_EQ_INT(info.new_version, -1);
        T_STREQ(mms_engine_index(e)->dir, rb);
        answer(e, rs, got);
        expect_same("after the refused corrupt version = fresh B", rs, got, refB);
        check_info(rs, got, rb, 1);

        /* a directory that does not exist */
        mms_log_set_level(MMS_LOG_QUIET);
        s = mms_engine_reload(e, "/nonexistent-mmsage-reload/index", &info);
        mms_log_set_level(MMS_LOG_WARN);
        T_CHECK(s != MMS_OK && s != MMS_ERR_MPI);
        T_MSG_HAS("/nonexistent-mmsage-reload/index");
        answer(e, rs, got);
        expect_same("after the refused missing version = fresh B", rs, got, refB);
        T_OK(mms_engine_stop(e));
        /* after stop: refused without a collective */
        mms_log_set_level(MMS_LOG_QUIET);
        T_FAILS(mms_engine_reload(e, NULL, NULL), MMS_ERR_ARG);
        mms_log_set_level(MMS_LOG_WARN);
    } else {
        T_OK(mms_engine_worker_loop(e));
        mms_log_set_level(MMS_LOG_QUIET);
        T_FAILS(mms_engine_reload(e, NULL, NULL), MMS_ERR_ARG); /* workers never lead one */
        mms_log_set_level(MMS_LOG_WARN);
    }
    check_every_rank(e, rb, "after the switch to B and two refusals");
    mms_engine_close(&e);

    /* search layout: B, then A (the widths shrink), equal to a fresh A */
    e = open_engine(rb, MMS_ENGINE_SEARCH);
    if (g_rank == 0) {
        mms_engine_reload_t info;
        T_OK(mms_engine_reload(e, ra, &info));
        T_EQ_INT(mms_engine_index(e)->emb_dim, 32);
        answer(e, rs, got);
        expect_same("search layout: reloaded to A = fresh A", rs, got, refAs);
        check_info(rs, got, ra, 1);
        T_OK(mms_engine_stop(e));
    } else {
        T_OK(mms_engine_worker_loop(e));
    }
    check_every_rank(e, ra, "search layout after the switch to A");
    mms_engine_close(&e);

    mms_catalog_close(&cat);
    free(rs);
    free(refA);
    free(refB);
    free(refAs);
    free(got);
    int fails = mms_test_failures, all = 0;
    MPI_Allreduce(&fails, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (g_rank == 0 && all == 0) mms_rm_rf(dir);
    int rc = g_rank == 0 ? mms_test_finish("test_engine_reload") : (fails != 0);
    MPI_Finalize();
    return all ? 1 : rc;
}
