/* cmd_eval.c: `mpirun -np P mmsage eval --catalog C --index I --report DIR`:
 * every image of --split (test, or val) of the catalog queries the training images through the
 * query engine (the same code as `serve` and `search`), for each method side by
 * side, graded by the automatic judge (eval/judge.h); writes the report
 * (eval/report.h). Methods:
 *   raw-visual          cosine kNN in the catalog's visual space (baseline)
 *   gnn-image           the query connected to its visual neighbours only
 *   gnn-image+tags      connected to its visual neighbours and its tags
 *   slider-W            E = (W E_img + (1 - W) mean E_tags) / 2, W in {1, .75, .5, .25, 0}
 *   slider-node-W       the same with E_t = z of a new node connected to the tags only
 *   gnn-knn-vote        tag prediction by voting over gnn-image's top-10 results
 *   gnn-knn-vote-debiased  the same votes divided by sqrt(tag frequency)
 * and the catalog's baselines (eval/judge.h): random, tag-oracle, tag-prior and
 * the expansion baselines vote-expansion, ppr and fused, whose settings are
 * --baseline-k, --ppr-alpha (--ppr-iters) and --fuse-weight. --baselines-only
 * runs only those (no index, no GNN): rank 0 works, the others wait.
 * Tag prediction of gnn-image ranks tag embeddings against z(q) (the paper's).
 * The report directory is written whole and renamed into place (eval/report.h):
 * an existing one is refused unless --force, checked before any work. The
 * default --dataset is the catalog directory's name made valid
 * (mms_report_dataset_name: "my photos" -> "my-photos"), logged at start. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "engine.h"
#include "judge.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_manifest.h"
#include "mms_mpi.h"
#include "mms_opts.h"
#include "report.h"

typedef struct {
    const char *name;
    int connect;    /* MMS_ENGINE_CONNECT_* */
    int with_tags;  /* send the query's tags */
    double visual;  /* w_visual */
    int k_overlap;
    int concept;    /* MMS_CONCEPT_* */
} method_t;

#define BATCH 128

/* Query rows [0, nq) through the engine for one method; results into ev. */
/* A SEARCH request for catalog row r's image (its features, and its kNN-space
 * vector when the index has a separate kNN space); the caller sets the rest. */
static void image_request(mms_request_t *q, const mms_catalog_t *c, int64_t r, int knn_separate) {
    mms_request_init(q);
    q->id = (uint64_t)r;
    q->op = MMS_OP_SEARCH;
    q->image = c->x + (size_t)r * (size_t)c->dim;
    q->image_dim = c->dim;
    if (knn_separate) {
        q->image_knn = c->knn_x + (size_t)r * (size_t)c->knn_dim;
        q->image_knn_dim = c->knn_dim;
    }
}

static mms_status run_method(mms_engine_t *e, const mms_index_t *ix, mms_eval_t *ev,
                             const method_t *m, const int64_t *qrows, int64_t nq, int k, int neighbors,
                             int vote_method, int vote_debiased) {
    /* the queries and the judge of results: the index's catalog, or --judge-catalog */
    const mms_catalog_t *c = mms_eval_catalog(ev), *cj = c;
    const char **qtags = NULL; /* BATCH x qcap tag names of the queries */
    int32_t qcap = c->ntags < MMS_PROTO_MAX_TAGS ? c->ntags : MMS_PROTO_MAX_TAGS;
    MMS_CALL(mms_malloc((size_t)BATCH * (size_t)(qcap + 1) * sizeof *qtags, &qtags));
    int mid;
    MMS_CALL(mms_eval_method(ev, m->name, m->k_overlap, &mid));
    mms_request_t req[BATCH];
    mms_response_t resp[BATCH];
    uint8_t conn[BATCH];
    int64_t rows[64];
    float scores[64];
    int32_t tags[16];
    mms_status s = MMS_OK;
    mms_progress_t prog;
    mms_progress_begin(&prog, m->name, nq, "queries");
    for (int64_t b0 = 0; b0 < nq && s == MMS_OK; b0 += BATCH) {
        int n = (int)(nq - b0 < BATCH ? nq - b0 : BATCH);
        for (int i = 0; i < n; i++) {
            int64_t r = qrows[b0 + i];
            image_request(&req[i], c, r, ix->knn_separate);
            if (m->with_tags) {
                const char **qt = qtags + (size_t)i * (size_t)(qcap + 1);
                int nt = 0;
                for (int64_t t = c->tag_ptr[r]; t < c->tag_ptr[r + 1] && nt < qcap; t++)
                    qt[nt++] = c->tag_names[c->tag_idx[t]];
                req[i].tags = qt;
                req[i].ntags = nt;
            }
            req[i].visual = (float)m->visual;
            req[i].concept = m->concept;
            req[i].visual_given = 1;
            req[i].k = k;
            req[i].neighbors = neighbors;
            req[i].predict_tags = 1;
            req[i].tag_k = MMS_EVAL_NTAGS;
            conn[i] = (uint8_t)m->connect;
            mms_response_init(&resp[i], &req[i]);
            s = mms_response_reserve(&resp[i], k, MMS_EVAL_NTAGS);
            if (s != MMS_OK) break;
        }
        if (s == MMS_OK) s = mms_engine_answer(e, req, conn, n, resp, NULL);
        for (int i = 0; i < n && s == MMS_OK; i++) {
            int64_t q = qrows[b0 + i];
            if (!resp[i].ok) {
                /* a query without any usable input (no tags for a tags-only
                 * method) is reported and skipped, not fatal */
                mms_log_warn("eval %s: query %s: %s", m->name, c->ids[q], resp[i].error_message);
                continue;
            }
            int nr = resp[i].nresults < 64 ? resp[i].nresults : 64;
            for (int j = 0; j < nr; j++) {
                rows[j] = mms_catalog_id_lookup(cj, resp[i].results[j].id);
                scores[j] = resp[i].results[j].score;
            }
            s = mms_eval_add_results(ev, mid, q, rows, scores, nr);
            int nt = 0;
            for (int j = 0; j < resp[i].ntags && nt < 16; j++) {
                int32_t t = mms_catalog_tag_lookup(cj, resp[i].tags[j].tag);
                if (t >= 0) tags[nt++] = t;
            }
            if (s == MMS_OK && nt > 0) s = mms_eval_add_tags(ev, mid, q, tags, nt);
            if (s == MMS_OK && vote_method >= 0 && nr > 0) {
                /* tag voting over the retrieved images, weighted by score:
                 * plain, then divided by sqrt(tag frequency) */
                int32_t vt[MMS_EVAL_NTAGS];
                for (int j = nr; j < 64; j++)
                    rows[j] = -1;
                s = mms_baseline_tag_vote(cj, rows, scores, 1, 64, nr, 1, 0.0, MMS_EVAL_NTAGS, vt);
                if (s == MMS_OK) s = mms_eval_add_tags(ev, vote_method, q, vt, MMS_EVAL_NTAGS);
                if (s == MMS_OK)
                    s = mms_baseline_tag_vote(cj, rows, scores, 1, 64, nr, 1, MMS_VOTE_PRIOR_POWER,
                                              MMS_EVAL_NTAGS, vt);
                if (s == MMS_OK) s = mms_eval_add_tags(ev, vote_debiased, q, vt, MMS_EVAL_NTAGS);
            }
        }
        for (int i = 0; i < n; i++) {
            mms_response_free(&resp[i]);
            mms_request_free(&req[i]);
        }
        mms_progress_update(&prog, b0 + n);
    }
    mms_progress_end(&prog);
    free(qtags);
    return s;
}

/* "- training: ..." from the index's manifest (the model's configuration as
 * trained), appended to the report's Settings section; nothing if unreadable. */
static void training_settings(const char *index, char *out, size_t cap) {
    static const char *const keys[] = {"lr", "dropout", "tag_init", "batch", "neg", "walks",
                                       "walk_len", "hide_tags", "temperature", "hidden", "s1",
                                       "s2", "max_degree", "train_tags", "seed", "normalize"};
    out[0] = '\0';
    mms_manifest_t *m = NULL;
    if (mms_manifest_read_dir(index, "index", 0, &m) != MMS_OK) {
        mms_error_clear();
        return;
    }
    size_t w = (size_t)snprintf(out, cap, "- training:");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && w < cap; i++) {
        const mms_mentry_t *e = NULL;
        for (size_t j = 0; j < m->n; j++)
            if (!strcmp(m->e[j].key, keys[i])) e = &m->e[j];
        if (!e) continue;
        if (e->type == MMS_MV_STR)
            w += (size_t)snprintf(out + w, cap - w, " %s `%s`,", keys[i], e->s);
        else if (e->type == MMS_MV_REAL)
            w += (size_t)snprintf(out + w, cap - w, " %s %g,", keys[i], e->r);
        else if (e->type == MMS_MV_INT)
            w += (size_t)snprintf(out + w, cap - w, " %s %lld,", keys[i], (long long)e->i);
    }
    int64_t step = 0, spe = 0;
    double loss = 0;
    if (w < cap && mms_manifest_get_int(m, "step", &step) == MMS_OK &&
        mms_manifest_get_int(m, "steps_per_epoch", &spe) == MMS_OK && spe > 0 &&
        mms_manifest_get_real(m, "loss", &loss) == MMS_OK)
        snprintf(out + w, cap - w, " %lld steps (%.2f epochs of %lld steps), final smoothed loss %.4f\n",
                 (long long)step, (double)step / (double)spe, (long long)spe, loss);
    else if (w < cap)
        snprintf(out + w, cap - w, "\n");
    mms_manifest_destroy(&m);
    mms_error_clear();
}

/* The catalog of the queries and the judge of results: the index's own, or
 * --judge-catalog for a version with additions or removals (it must hold
 * every live image of the index; its val or test rows are the queries). */
static mms_status judge_of(const mms_index_t *ix, const char *path, mms_catalog_t **out) {
    *out = NULL;
    if (!path) {
        MMS_CHECK(ix->n_additions == 0 && ix->n_removed == 0, MMS_ERR_ARG,
                  "eval: index '%s' (version %lld) added or removed images since it was built, "
                  "so its catalog cannot judge its results: give --judge-catalog J, made with "
                  "mmsage import catalog --from-index %s --out J", ix->dir,
                  (long long)ix->version, ix->dir);
        return MMS_OK;
    }
    mms_catalog_t *j;
    MMS_CALL(mms_catalog_open(path, &j));
    const mms_catalog_t *c = ix->cat;
    mms_status s = MMS_OK;
    if (j->dim != c->dim || j->knn_dim != c->knn_dim) s = MMS_ERR_MISMATCH;
    int64_t missing = 0;
    for (int64_t v = 0; s == MMS_OK && v < ix->n_images; v++)
        if (!mms_index_is_removed(ix, v) && mms_catalog_id_lookup(j, mms_index_image_id(ix, v)) < 0)
            missing++;
    if (s != MMS_OK || missing) {
        mms_error_set(MMS_ERR_MISMATCH, __FILE__, __LINE__, __func__,
                      "eval: --judge-catalog '%s' %s index '%s' (make it with mmsage import catalog "
                      "--from-index %s --out J)", path,
                      missing ? "lacks images of" : "has other feature widths than", ix->dir,
                      ix->dir);
        mms_catalog_close(&j);
        return MMS_ERR_MISMATCH;
    }
    *out = j;
    return MMS_OK;
}

/* "gnn-vote-expansion": vote-expansion (eval/baseline.c) over the GNN's
 * neighbourhood instead of the raw visual one. Each query image (image only,
 * `neighbors` visual neighbours, as gnn-image) retrieves its top xp->k
 * training images by the GNN; they vote for their tags with their GNN score
 * (negative scores count 0), debiased by sqrt(tag frequency), and the gallery
 * is ranked by the vote vector's cosine with each image's tags. The same k as
 * vote-expansion, so the paired difference between the two is what the GNN's
 * neighbourhood adds. Its tags: the top 5 of the same debiased vote. */
static mms_status run_gnn_expand(mms_engine_t *e, mms_eval_t *ev, const int64_t *qrows, int64_t nq,
                                 int k, int neighbors, const mms_expand_params_t *xp, int knn_separate) {
    const mms_catalog_t *c = mms_eval_catalog(ev);
    const int K = xp->k;
    int mid, mt;
    MMS_CALL(mms_eval_method(ev, "gnn-vote-expansion", 5, &mid));
    MMS_CALL(mms_eval_method(ev, "gnn-vote-expansion-tags", 5, &mt));
    int64_t *nbr = NULL, *rows = NULL;
    float *sims = NULL, *sc = NULL;
    int32_t *tags = NULL;
    mms_status s = mms_malloc((size_t)nq * (size_t)K * sizeof *nbr, &nbr);
    if (s == MMS_OK) s = mms_malloc((size_t)nq * (size_t)K * sizeof *sims, &sims);
    if (s == MMS_OK) s = mms_malloc((size_t)nq * (size_t)k * sizeof *rows, &rows);
    if (s == MMS_OK) s = mms_malloc((size_t)nq * (size_t)k * sizeof *sc, &sc);
    if (s == MMS_OK) s = mms_malloc((size_t)nq * MMS_EVAL_NTAGS * sizeof *tags, &tags);
    mms_request_t req[BATCH];
    mms_response_t resp[BATCH];
    uint8_t conn[BATCH];
    for (int64_t b0 = 0; b0 < nq && s == MMS_OK; b0 += BATCH) {
        int n = (int)(nq - b0 < BATCH ? nq - b0 : BATCH), ready = 0;
        for (int i = 0; i < n; i++) {
            int64_t r = qrows[b0 + i];
            image_request(&req[i], c, r, knn_separate);
            req[i].visual = 1.0f;
            req[i].visual_given = 1;
            req[i].k = K;
            req[i].neighbors = neighbors;
            conn[i] = (uint8_t)MMS_ENGINE_CONNECT_IMAGE;
            mms_response_init(&resp[i], &req[i]);
            ready = i + 1;
            s = mms_response_reserve(&resp[i], K, 0);
            if (s != MMS_OK) break;
        }
        if (s == MMS_OK) s = mms_engine_answer(e, req, conn, n, resp, NULL);
        for (int i = 0; i < n && s == MMS_OK; i++) {
            int64_t *nb = nbr + (size_t)(b0 + i) * K;
            float *sm = sims + (size_t)(b0 + i) * K;
            int nr = resp[i].ok ? (resp[i].nresults < K ? resp[i].nresults : K) : 0;
            for (int j = 0; j < K; j++) {
                nb[j] = j < nr ? mms_catalog_id_lookup(c, resp[i].results[j].id) : -1;
                sm[j] = j < nr && resp[i].results[j].score > 0 ? resp[i].results[j].score : 0.0f;
            }
        }
        for (int i = 0; i < ready; i++) {
            mms_response_free(&resp[i]);
            mms_request_free(&req[i]);
        }
    }
    if (s == MMS_OK)
        s = mms_baseline_expand_from(c, qrows, nq, MMS_EXPAND_VOTE, xp, nbr, sims, K, k, rows, sc);
    if (s == MMS_OK)
        s = mms_baseline_tag_vote(c, nbr, sims, nq, K, K, 1, MMS_VOTE_PRIOR_POWER, MMS_EVAL_NTAGS, tags);
    for (int64_t i = 0; i < nq && s == MMS_OK; i++) {
        s = mms_eval_add_results(ev, mid, qrows[i], rows + (size_t)i * k, sc + (size_t)i * k, k);
        if (s == MMS_OK)
            s = mms_eval_add_tags(ev, mt, qrows[i], tags + (size_t)i * MMS_EVAL_NTAGS, MMS_EVAL_NTAGS);
    }
    free(nbr), free(sims), free(rows), free(sc), free(tags);
    return s;
}

mms_status mms_cmd_eval(int argc, char **argv) {
    const char *judge_catalog = NULL;
    const char *catalog = NULL, *index = NULL, *report = "report", *dataset = NULL, *loss = NULL,
               *split_name = "test";
    int k = 10, neighbors = 5, max_q = 0, plots = 1, force = 0, baselines_only = 0;
    int nprobe = 0, exact = 0, approx = 0;
    mms_expand_params_t xp;
    mms_expand_params_default(&xp);
    mms_opt_t opts[] = {
        {"catalog", MMS_OPT_STR, &catalog, "catalog whose --split images are the queries", 1, 0, 0, 0},
        {"split", MMS_OPT_STR, &split_name, "queries: val (choose settings on it) or test (read once, for the final table); the gallery is the training images either way", 0, 0, 0, 0},
        {"index", MMS_OPT_STR, &index, "index written by mmsage embed from that catalog (required unless --baselines-only)", 0, 0, 0, 0},
        {"report", MMS_OPT_STR, &report, "report directory (report.md, metrics.tsv, plots, examples.html)", 0, 0, 0, 0},
        {"dataset", MMS_OPT_STR, &dataset, "data set name in the report: letters, digits, ._+- (default: the catalog directory's name, other bytes as '-')", 0, 0, 0, 0},
        {"loss", MMS_OPT_STR, &loss, "training loss log to plot (default: the index's model/loss.tsv)", 0, 0, 0, 0},
        {"k", MMS_OPT_INT, &k, "results per query (grades use the top 5, overlap the slider's top 10)", 0, 1, 5, 64},
        {"neighbors", MMS_OPT_INT, &neighbors, "visual neighbours a query image connects to", 0, 1, 1, 1000},
        {"max-queries", MMS_OPT_INT, &max_q, "evaluate only the first N images of --split (0: all)", 0, 1, 0, 1e9},
        {"baseline-k", MMS_OPT_INT, &xp.k, "visual neighbours of the query whose tags the expansion baselines (vote-expansion, ppr, fused) use; default chosen on Corel5k's val split", 0, 1, 1, MMS_EVAL_MAX_K},
        {"ppr-alpha", MMS_OPT_DOUBLE, &xp.alpha, "restart probability of the ppr baseline (personalised PageRank over the gallery's image-tag graph)", 0, 1, 1e-6, 1},
        {"ppr-iters", MMS_OPT_INT, &xp.iters, "power iterations of the ppr baseline", 0, 1, 1, 1000},
        {"fuse-weight", MMS_OPT_DOUBLE, &xp.w, "weight of the raw-visual cosine in the fused baseline (1 - w: vote-expansion's score)", 0, 1, 0, 1},
        {"judge-catalog", MMS_OPT_STR, &judge_catalog, "catalog of every live image of an index version that added or removed images (mmsage import catalog --from-index I): its val or test rows are the queries and it judges the results", 0, 0, 0, 0},
        {"baselines-only", MMS_OPT_FLAG, &baselines_only, "only the catalog's baselines (no --index, no GNN methods): for choosing their settings on --split val", 0, 0, 0, 0},
        {"plots", MMS_OPT_INT, &plots, "1: draw plots with gnuplot, 0: data only", 0, 1, 0, 1},
        {"force", MMS_OPT_FLAG, &force, "replace an existing --report directory (once the new one is complete)", 0, 0, 0, 0},
        {"nprobe", MMS_OPT_INT, &nprobe, "inverted lists probed per query (approximate search on an index with lists; 0: exact below 200,000 images, the default nprobe above; docs/query.md)", 0, 1, 0, 65536},
        {"approx", MMS_OPT_FLAG, &approx, "approximate search with the default nprobe whatever the index size (below 200,000 images the default is exact)", 0, 0, 0, 0},
        {"exact", MMS_OPT_FLAG, &exact, "exact search whatever the index size", 0, 0, 0, 0},
    };
    const int nopt = (int)(sizeof opts / sizeof opts[0]);
    int help = 0;
    mms_status s = mms_opts_parse("eval", "Evaluate retrieval and tag prediction on a catalog's val or test images (collective).",
                                  opts, nopt, argc, argv, &help);
    int split = mms_split_parse(split_name, strlen(split_name));
    /* refuse an existing report now, not after every query has run */
    if (s == MMS_OK && !help && mms_log_rank() == 0) {
        if (split != MMS_SPLIT_VAL && split != MMS_SPLIT_TEST) {
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "eval: --split '%s': want val or test (training images are the "
                          "gallery, not queries)", split_name);
            s = MMS_ERR_ARG;
        } else if (!index && !baselines_only) {
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "eval: --index is required (or --baselines-only for the catalog's "
                          "baselines alone)");
            s = MMS_ERR_ARG;
        } else if (!report[0]) {
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__, "eval: --report is empty");
            s = MMS_ERR_ARG;
        } else if (!force && mms_path_exists(report)) {
            mms_error_set(MMS_ERR_EXISTS, __FILE__, __LINE__, __func__,
                          "eval: report '%s' already exists (pass --force to replace it)", report);
            s = MMS_ERR_EXISTS;
        }
    }
    MMS_CALL(mms_mpi_agree(s, MPI_COMM_WORLD));
    if (help) return MMS_OK;
    mms_opts_echo("eval", opts, nopt);
    mms_engine_t *e = NULL;
    mms_catalog_t *own_cat = NULL; /* --baselines-only: the catalog, opened by rank 0 */
    const mms_index_t *ix = NULL;
    const mms_catalog_t *c = NULL;
    if (baselines_only) {
        if (mms_log_rank() != 0) /* the other ranks only wait for rank 0's outcome */
            return mms_mpi_agree(MMS_OK, MPI_COMM_WORLD);
        if (index) mms_log_warn("eval: --baselines-only: --index '%s' is not used", index);
        index = NULL;
        s = mms_catalog_open(catalog, &own_cat);
        if (s != MMS_OK) return mms_mpi_agree(s, MPI_COMM_WORLD);
        c = own_cat;
    } else {
        mms_engine_params_t ep;
        mms_engine_params_default(&ep);
        ep.index = index;
        ep.catalog = catalog;
        ep.mode = MMS_ENGINE_SEARCH;
        ep.nprobe = nprobe;
        ep.exact = exact ? 1 : approx ? -1 : 0;
        MMS_CALL(mms_engine_open(&ep, MPI_COMM_WORLD, &e));
        if (!mms_engine_is_coordinator(e)) {
            s = mms_engine_worker_loop(e);
            mms_engine_close(&e);
            return s;
        }
        ix = mms_engine_index(e);
        c = ix->cat;
        s = judge_of(ix, judge_catalog, &own_cat);
        if (s != MMS_OK) { /* as the end below: stop the workers' loops, no agree */
            mms_engine_stop(e);
            mms_engine_close(&e);
            return s;
        }
        if (own_cat) c = own_cat;
    }
    mms_judge_t *j = NULL;
    mms_eval_t *ev = NULL;
    int64_t *qrows = NULL, nq = 0;
    char lossbuf[MMS_PATH_MAX] = "";
    char name[256];
    if (!dataset) {
        dataset = mms_report_dataset_name(c->dir, name, sizeof name);
        mms_log_info("eval: dataset name '%s' (from the catalog directory '%s'; --dataset sets "
                     "another)", dataset, c->dir);
    }
    s = mms_judge_create(c, &j);
    if (s == MMS_OK) s = mms_eval_create(c, j, dataset, &ev);
    if (s == MMS_OK) s = mms_eval_set_split(ev, split);
    if (s == MMS_OK) s = mms_malloc((size_t)(c->n + 1) * sizeof *qrows, &qrows);
    if (s == MMS_OK)
        for (int64_t r = 0; r < c->n; r++)
            if (c->split[r] == split && (max_q == 0 || nq < max_q)) qrows[nq++] = r;
    if (s == MMS_OK && nq == 0) {
        if (split == MMS_SPLIT_VAL)
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "eval: catalog '%s' has no val images to query with: import it with "
                          "--val-fraction F (e.g. mmsage import mulan ... --val-fraction 0.1; synth, "
                          "coco and npy take it too), then build, train and embed from that "
                          "catalog",
                          c->dir);
        else
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "eval: catalog '%s' has no test images to query with", c->dir);
        s = MMS_ERR_ARG;
    }
    if (s == MMS_OK) {
        mms_log_info("eval: %lld %s queries against %lld training images, judge '%s'",
                     (long long)nq, mms_split_name(split), (long long)c->n_split[MMS_SPLIT_TRAIN],
                     mms_judge_kind_name(mms_judge_kind_of(j)));
        s = mms_eval_add_baselines_ex(ev, qrows, nq, MMS_BASELINE_ALL, 10, 1, &xp);
    }
    const method_t methods[] = {
        {"gnn-image", MMS_ENGINE_CONNECT_IMAGE, 0, 1.0, 5, MMS_CONCEPT_TAGS},
        {"gnn-image+tags", MMS_ENGINE_CONNECT_BOTH, 1, 1.0, 5, MMS_CONCEPT_TAGS},
        {"slider-1", MMS_ENGINE_CONNECT_IMAGE, 1, 1.0, 10, MMS_CONCEPT_TAGS},
        {"slider-0.75", MMS_ENGINE_CONNECT_IMAGE, 1, 0.75, 10, MMS_CONCEPT_TAGS},
        {"slider-0.5", MMS_ENGINE_CONNECT_IMAGE, 1, 0.5, 10, MMS_CONCEPT_TAGS},
        {"slider-0.25", MMS_ENGINE_CONNECT_IMAGE, 1, 0.25, 10, MMS_CONCEPT_TAGS},
        {"slider-0", MMS_ENGINE_CONNECT_IMAGE, 1, 0.0, 10, MMS_CONCEPT_TAGS},
        /* the same positions with E_t = the tags as one new node (concept "node") */
        {"slider-node-0.75", MMS_ENGINE_CONNECT_IMAGE, 1, 0.75, 10, MMS_CONCEPT_NODE},
        {"slider-node-0.5", MMS_ENGINE_CONNECT_IMAGE, 1, 0.5, 10, MMS_CONCEPT_NODE},
        {"slider-node-0.25", MMS_ENGINE_CONNECT_IMAGE, 1, 0.25, 10, MMS_CONCEPT_NODE},
        {"slider-node-0", MMS_ENGINE_CONNECT_IMAGE, 1, 0.0, 10, MMS_CONCEPT_NODE},
    };
    int vote = -1;
    int vote2 = -1;
    if (e) {
        if (s == MMS_OK) s = mms_eval_method(ev, "gnn-knn-vote", 5, &vote);
        if (s == MMS_OK) s = mms_eval_method(ev, "gnn-knn-vote-debiased", 5, &vote2);
        for (size_t m = 0; m < sizeof methods / sizeof methods[0] && s == MMS_OK; m++)
            s = run_method(e, ix, ev, &methods[m], qrows, nq, k, neighbors, m == 0 ? vote : -1,
                           vote2);
        if (s == MMS_OK) s = run_gnn_expand(e, ev, qrows, nq, k, neighbors, &xp, ix->knn_separate);
    }
    if (s == MMS_OK) {
        if (!loss && index) {
            mms_manifest_t *mm = NULL;
            char mdir[MMS_PATH_MAX];
            if (mms_manifest_read_dir(index, "index", 0, &mm) == MMS_OK &&
                mms_manifest_find_path(mm, "model", index, mdir, sizeof mdir) &&
                mms_path_join(lossbuf, sizeof lossbuf, mdir, "loss.tsv") == MMS_OK)
                loss = lossbuf;
            mms_manifest_destroy(&mm);
            mms_error_clear();
        }
        mms_report_dataset_t ds = {.eval = ev, .loss_tsv = loss};
        mms_report_opts_t ro;
        mms_report_opts_default(&ro);
        ro.out_dir = report;
        ro.force = force;
        ro.datasets = &ds;
        ro.ndatasets = 1;
        ro.title = baselines_only ? "mmsage evaluation (baselines only)" : "mmsage evaluation";
        if (!plots) ro.gnuplot = "";
        char settings[4096];
        int w = snprintf(settings, sizeof settings,
                         "- catalog: `%s`\n- index: `%s`\n- queries: %lld %s images, %d results "
                         "each, %d visual neighbours per query image\n- expansion baselines: "
                         "%d visual neighbours (`--baseline-k`), ppr restart %g "
                         "(`--ppr-alpha`) over %d iterations, fused visual weight %g "
                         "(`--fuse-weight`)\n",
                         c->dir, index ? index : "(none: --baselines-only)", (long long)nq,
                         mms_split_name(split), k, neighbors, xp.k, xp.alpha, xp.iters, xp.w);
        if (w > 0 && (size_t)w < sizeof settings && index)
            training_settings(index, settings + w, sizeof settings - (size_t)w);
        ro.settings = settings;
        mms_report_info_t info;
        s = mms_report_write(&ro, &info);
        if (s == MMS_OK) {
            mms_eval_summary_t sm;
            printf("report       %s/report.md (%d plots%s; %s split)\n", report, info.plots,
                   info.examples ? ", examples.html" : "", mms_split_name(split));
            const char *show[] = {"raw-visual", "vote-expansion", "ppr", "fused", "gnn-image",
                                  "gnn-image+tags", "slider-0.5", "slider-0"};
            for (int i = 0; i < 8; i++) {
                int mid = mms_eval_find_method(ev, show[i]);
                if (mid >= 0 && mms_eval_summarize(ev, mid, &sm) == MMS_OK && sm.queries > 0)
                    printf("%-16s nDCG@5 %.3f (ideal excellent) %.3f (gallery), tag overlap %.3f, "
                           "visual sim %.3f\n",
                           show[i], sm.ndcg_excellent[1], sm.ndcg_gallery[1], sm.tag_overlap, sm.visual_sim);
            }
            const char *tshow[] = {"gnn-image", "gnn-knn-vote", "gnn-knn-vote-debiased", "raw-visual",
                                   "raw-visual-vote-debiased"};
            for (int i = 0; i < 5; i++) {
                int mid = mms_eval_find_method(ev, tshow[i]);
                if (mid >= 0 && mms_eval_summarize(ev, mid, &sm) == MMS_OK && sm.tag_queries > 0)
                    printf("tags %-24s P %.3f R %.3f N+ %lld (%lld words)\n", tshow[i], sm.tag_p, sm.tag_r,
                           (long long)sm.tag_nplus, (long long)sm.tag_words);
            }
        }
    }
    if (e) {
        mms_status s2 = mms_engine_stop(e);
        if (s == MMS_OK) s = s2;
    }
    mms_eval_destroy(&ev);
    mms_judge_destroy(&j);
    free(qrows);
    mms_engine_close(&e);
    mms_catalog_close(&own_cat);
    if (baselines_only) return mms_mpi_agree(s, MPI_COMM_WORLD);
    return s;
}
