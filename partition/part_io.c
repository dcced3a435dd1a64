/* part_io.c: the partition directory G/parts-P (part_dir.h): written once,
 * atomically, by mms_partition_write; opened and checked against its graph by
 * mms_partition_open for the steps that use it (train, embed). */
#define _GNU_SOURCE
#include "part_dir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_fs.h"
#include "mms_log.h"
#include "mms_manifest.h"
#include "mms_npy.h"

void mms_part_opts_default(mms_part_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->method = MMS_PART_METIS;
    o->seed = 1;
    o->imbalance = 1.05;
    o->compare = 1;
}

mms_status mms_partition_path(const char *graph_dir, int parts, char *out, size_t cap) {
    int n = snprintf(out, cap, "%s/parts-%d", graph_dir, parts);
    MMS_CHECK(n > 0 && (size_t)n < cap, MMS_ERR_ARG, "path too long: %s/parts-%d", graph_dir,
              parts);
    return MMS_OK;
}

/* ------------------------------------------------------------------ writing */

typedef struct {
    const char *tmp; /* the partition directory being written */
} write_ctx_t;

static mms_status write_list(const char *dir, const char *name, const int64_t *v, int64_t n) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, dir, name));
    MMS_CALL(mms_npy_write(p, MMS_DT_I64, v, (size_t)n, 0));
    return MMS_OK;
}

static mms_status write_part(void *ctx, int p, const mms_part_nodes_t *pn) {
    const write_ctx_t *w = ctx;
    char sub[32], dir[MMS_PATH_MAX];
    snprintf(sub, sizeof sub, "part-%d", p);
    MMS_CALL(mms_path_join(dir, sizeof dir, w->tmp, sub));
    MMS_CALL(mms_mkdir_p(dir));
    MMS_CALL(write_list(dir, "owned.npy", pn->owned, pn->n_owned));
    MMS_CALL(write_list(dir, "halo1.npy", pn->halo1, pn->n_halo1));
    MMS_CALL(write_list(dir, "halo2.npy", pn->halo2, pn->n_halo2));
    return MMS_OK;
}

/* part[] by method; for METIS, checks its reported cut against a recount. */
static mms_status compute_part(const mms_csr_t *clean, const int32_t *vwgt,
                               const mms_part_opts_t *o, mms_part_method method, int32_t *part) {
    double t0 = mms_now();
    if (method == MMS_PART_HASH) {
        mms_part_hash(clean->n, o->parts, o->seed, part);
        mms_log_info("partition: hash into %d parts in %.2f s", o->parts, mms_now() - t0);
        return MMS_OK;
    }
    mms_log_info("partition: METIS k-way on %lld nodes, %lld edges into %d parts (ufactor %ld, "
                 "seed %llu)",
                 (long long)clean->n, (long long)(clean->indptr[clean->n] / 2), o->parts,
                 (long)((o->imbalance - 1.0) * 1000.0 + 0.5), (unsigned long long)o->seed);
    int64_t cut;
    MMS_CALL(mms_part_metis(clean, vwgt, o->parts, o->imbalance, o->seed, part, &cut));
    int64_t recount = mms_part_edge_cut(clean, part);
    if (recount != cut)
        mms_log_warn("partition: METIS reported an edge cut of %lld, recounted %lld",
                     (long long)cut, (long long)recount);
    mms_log_info("partition: METIS done in %.2f s, edge cut %lld", mms_now() - t0,
                 (long long)recount);
    return MMS_OK;
}

static mms_status set_sizes(mms_manifest_t *m, const char *prefix, const mms_part_stats_t *st) {
    char key[64];
    snprintf(key, sizeof key, "%sedge_cut", prefix);
    MMS_CALL(mms_manifest_set_int(m, key, st->edge_cut));
    snprintf(key, sizeof key, "%sbalance", prefix);
    MMS_CALL(mms_manifest_set_real(m, key, st->balance));
    snprintf(key, sizeof key, "%sweight", prefix);
    MMS_CALL(mms_manifest_set_intarr(m, key, st->weight, (size_t)st->parts));
    snprintf(key, sizeof key, "%sowned", prefix);
    MMS_CALL(mms_manifest_set_intarr(m, key, st->owned, (size_t)st->parts));
    snprintf(key, sizeof key, "%shalo1", prefix);
    MMS_CALL(mms_manifest_set_intarr(m, key, st->halo1, (size_t)st->parts));
    snprintf(key, sizeof key, "%shalo2", prefix);
    MMS_CALL(mms_manifest_set_intarr(m, key, st->halo2, (size_t)st->parts));
    return MMS_OK;
}

static mms_status write_manifest(const char *dir, const mms_graph_t *g, const mms_part_opts_t *o,
                                 const mms_part_stats_t *chosen, const mms_part_stats_t *other) {
    mms_manifest_t *m;
    MMS_CALL(mms_manifest_create("partition", MMS_PARTITION_FORMAT, &m));
    mms_status s;
    MMS_CALL_GOTO(s, out, mms_manifest_set_int(m, "parts", o->parts));
    MMS_CALL_GOTO(s, out, mms_manifest_set_uint(m, "graph_checksum", g->checksum));
    MMS_CALL_GOTO(s, out, mms_manifest_set_int(m, "nodes", g->n_nodes));
    MMS_CALL_GOTO(s, out, mms_manifest_set_int(m, "images", g->n_images));
    MMS_CALL_GOTO(s, out, mms_manifest_set_int(m, "tags", g->n_tags));
    MMS_CALL_GOTO(s, out, mms_manifest_set_int(m, "dim", g->dim));
    MMS_CALL_GOTO(s, out, mms_manifest_set_str(m, "method", mms_part_method_name(o->method)));
    MMS_CALL_GOTO(s, out, mms_manifest_set_int(m, "seed", (int64_t)o->seed));
    MMS_CALL_GOTO(s, out, mms_manifest_set_real(m, "imbalance", o->imbalance));
    MMS_CALL_GOTO(s, out, mms_manifest_set_str(m, "node_weight", "1+min(adj_degree,100)"));
    MMS_CALL_GOTO(s, out, mms_manifest_set_int(m, "edges", chosen->edges));
    MMS_CALL_GOTO(s, out, set_sizes(m, "", chosen));
    if (other && other->parts) {
        MMS_CALL_GOTO(s, out, mms_manifest_set_str(m, "compare.method",
                                                   mms_part_method_name(other->method)));
        MMS_CALL_GOTO(s, out, set_sizes(m, "compare.", other));
    }
    MMS_CALL_GOTO(s, out, mms_manifest_seal_dir(m, dir, NULL));
out:
    mms_manifest_destroy(&m);
    return s;
}

mms_status mms_partition_write(const char *graph_dir, const mms_part_opts_t *o,
                               mms_part_stats_t *chosen, mms_part_stats_t *other) {
    memset(chosen, 0, sizeof *chosen);
    if (other) memset(other, 0, sizeof *other);
    MMS_CHECK(o->parts >= 1, MMS_ERR_ARG, "--parts must be at least 1 (got %d)", o->parts);
    MMS_CHECK(mms_part_method_name(o->method) != NULL, MMS_ERR_ARG, "unknown partition method %d",
              (int)o->method);
    MMS_CHECK(o->imbalance >= 1.0 && o->imbalance <= 10.0, MMS_ERR_ARG,
              "--imbalance must be in [1, 10] (got %g)", o->imbalance);
    MMS_CHECK(o->seed < ((uint64_t)1 << 31), MMS_ERR_ARG, "--seed must be below 2^31 (got %llu)",
              (unsigned long long)o->seed);
    mms_graph_t *g;
    MMS_CALL(mms_graph_open(graph_dir, &g));
    char final_dir[MMS_PATH_MAX], tmp[MMS_PATH_MAX] = "";
    int32_t *vwgt = NULL, *part = NULL, *part_other = NULL;
    mms_csr_t clean = {0};
    mms_status s;
    MMS_CHECK_GOTO(s, out, o->parts <= g->n_images, MMS_ERR_ARG,
                   "cannot cut graph '%s' into %d parts: it has %lld image nodes (training "
                   "images) and every part needs at least one; use --parts %lld or fewer",
                   graph_dir, o->parts, (long long)g->n_images, (long long)g->n_images);
    MMS_CALL_GOTO(s, out, mms_partition_path(graph_dir, o->parts, final_dir, sizeof final_dir));
    MMS_CALL_GOTO(s, out, mms_outdir_begin(final_dir, o->force, tmp, sizeof tmp));

    int64_t n = g->n_nodes, total, loops, dups;
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)(n + 1) * sizeof *vwgt, &vwgt));
    mms_part_node_weights(&g->adj, MMS_PART_WEIGHT_CAP, vwgt, &total);
    MMS_CALL_GOTO(s, fail, mms_part_clean(&g->full, &clean, &loops, &dups));
    if (loops) mms_log_info("partition: dropped %lld self loops for METIS", (long long)loops);
    if (dups) mms_log_warn("partition: dropped %lld duplicate adjacency entries", (long long)dups);

    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)(n + 1) * sizeof *part, &part));
    MMS_CALL_GOTO(s, fail, compute_part(&clean, vwgt, o, o->method, part));
    write_ctx_t w = {tmp};
    MMS_CALL_GOTO(s, fail,
                  mms_part_stats_compute(&clean, &g->adj, vwgt, part, o->parts, write_part, &w,
                                         chosen));
    chosen->method = o->method;
    for (int p = 0; p < o->parts; p++)
        if (chosen->owned[p] == 0)
            mms_log_warn("partition: part %d is empty (the graph is small for %d parts)", p,
                         o->parts);
    if (other && o->compare) {
        mms_part_method om = o->method == MMS_PART_METIS ? MMS_PART_HASH : MMS_PART_METIS;
        MMS_CALL_GOTO(s, fail, mms_malloc((size_t)(n + 1) * sizeof *part_other, &part_other));
        MMS_CALL_GOTO(s, fail, compute_part(&clean, vwgt, o, om, part_other));
        MMS_CALL_GOTO(s, fail,
                      mms_part_stats_compute(&clean, &g->adj, vwgt, part_other, o->parts, NULL,
                                             NULL, other));
        other->method = om;
    }
    char p_npy[MMS_PATH_MAX];
    MMS_CALL_GOTO(s, fail, mms_path_join(p_npy, sizeof p_npy, tmp, "part.npy"));
    MMS_CALL_GOTO(s, fail, mms_npy_write(p_npy, MMS_DT_I32, part, (size_t)n, 0));
    MMS_CALL_GOTO(s, fail, write_manifest(tmp, g, o, chosen, other));
    MMS_CALL_GOTO(s, fail, mms_outdir_commit(tmp, final_dir, o->force));
    mms_log_info("partition: wrote %s", final_dir);
    goto out;
fail:
    mms_outdir_abort(tmp);
    mms_part_stats_free(chosen);
    if (other) mms_part_stats_free(other);
out:
    free(vwgt);
    free(part);
    free(part_other);
    mms_csr_free(&clean);
    mms_graph_close(&g);
    return s;
}

/* ------------------------------------------------------------------ reading */

typedef struct {
    mms_npy_t part;
    mms_manifest_t *m;
} ppriv_t;

/* ": it has parts 2, 4" (the parts-P directories of graph_dir), or ": it has none". */
static void existing_parts(const char *graph_dir, char *out, size_t cap) {
    int found[64], n = 0;
    DIR *d = opendir(graph_dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL && n < 64) {
        int p = 0, len = 0;
        if (sscanf(de->d_name, "parts-%d%n", &p, &len) == 1 && de->d_name[len] == '\0' && p > 0)
            found[n++] = p;
    }
    if (d) closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort: a handful of entries */
        for (int j = i; j > 0 && found[j] < found[j - 1]; j--) {
            int t = found[j];
            found[j] = found[j - 1];
            found[j - 1] = t;
        }
    size_t w = (size_t)snprintf(out, cap, n ? ": it has parts" : ": it has none");
    for (int i = 0; i < n && w < cap; i++)
        w += (size_t)snprintf(out + w, cap - w, "%s %d", i ? "," : "", found[i]);
}

mms_status mms_partition_open(const char *graph_dir, int parts, mms_partition_t **out) {
    *out = NULL;
    MMS_CHECK(parts >= 1, MMS_ERR_ARG, "number of parts must be at least 1 (got %d)", parts);
    uint64_t gsum;
    MMS_CALL(mms_graph_checksum(graph_dir, &gsum));
    char dir[MMS_PATH_MAX];
    MMS_CALL(mms_partition_path(graph_dir, parts, dir, sizeof dir));
    if (!mms_path_is_dir(dir)) {
        char have[256];
        existing_parts(graph_dir, have, sizeof have);
        MMS_CHECK_ALL(0, MMS_ERR_MISMATCH,
                      "graph %s has no partition into %d parts (one per rank)%s; run under "
                      "mpirun -np N with N one of those, or first: mmsage partition --graph %s "
                      "--parts %d",
                      graph_dir, parts, have, graph_dir, parts);
    }
    MMS_CHECK(strlen(dir) < sizeof((*out)->dir), MMS_ERR_ARG, "path too long: %s", dir);
    mms_partition_t *pt;
    MMS_CALL(mms_calloc(1, sizeof *pt, &pt));
    ppriv_t *pv = NULL;
    mms_status s;
    strcpy(pt->dir, dir);
    MMS_CALL_GOTO(s, fail, mms_calloc(1, sizeof *pv, &pv));
    pt->priv = pv;
    MMS_CALL_GOTO(s, fail, mms_manifest_read_dir(dir, "partition", MMS_PARTITION_FORMAT, &pv->m));
    const mms_manifest_t *m = pv->m;
    int64_t mparts, seed;
    const char *method;
    MMS_CALL_GOTO(s, fail, mms_manifest_get_int(m, "parts", &mparts));
    MMS_CHECK_GOTO(s, fail, mparts == parts, MMS_ERR_MISMATCH,
                   "%s: manifest says %lld parts, expected %d (a renamed directory?); run "
                   "mmsage partition --graph %s --parts %d --force",
                   dir, (long long)mparts, parts, graph_dir, parts);
    MMS_CALL_GOTO(s, fail, mms_manifest_get_uint(m, "graph_checksum", &pt->graph_checksum));
    MMS_CHECK_GOTO(s, fail, pt->graph_checksum == gsum, MMS_ERR_MISMATCH,
                   "partition %s was made for another graph (graph checksum %016llx, %s has "
                   "%016llx); run mmsage partition --graph %s --parts %d --force",
                   dir, (unsigned long long)pt->graph_checksum, graph_dir,
                   (unsigned long long)gsum, graph_dir, parts);
    MMS_CALL_GOTO(s, fail, mms_manifest_get_int(m, "nodes", &pt->n_nodes));
    MMS_CALL_GOTO(s, fail, mms_manifest_get_int(m, "images", &pt->n_images));
    int64_t dim;
    MMS_CALL_GOTO(s, fail, mms_manifest_get_int(m, "dim", &dim));
    pt->dim = (int32_t)dim;
    MMS_CALL_GOTO(s, fail, mms_manifest_get_str(m, "method", &method));
    MMS_CALL_GOTO(s, fail, mms_part_method_parse(method, &pt->method));
    MMS_CALL_GOTO(s, fail, mms_manifest_get_int(m, "seed", &seed));
    pt->seed = (uint64_t)seed;
    MMS_CALL_GOTO(s, fail, mms_manifest_get_int(m, "edge_cut", &pt->edge_cut));
    MMS_CALL_GOTO(s, fail, mms_manifest_get_real(m, "balance", &pt->balance));
    pt->parts = parts;
    MMS_CALL_GOTO(s, fail, mms_manifest_verify_files(m, dir, NULL, NULL));
    char p[MMS_PATH_MAX];
    MMS_CALL_GOTO(s, fail, mms_path_join(p, sizeof p, dir, "part.npy"));
    MMS_CALL_GOTO(s, fail, mms_npy_open(p, MMS_DT_I32, &pv->part));
    MMS_CHECK_GOTO(s, fail, (int64_t)(pv->part.rows * pv->part.cols) == pt->n_nodes,
                   MMS_ERR_FORMAT, "%s: has %zu entries, expected %lld (one per node)", p,
                   pv->part.rows * pv->part.cols, (long long)pt->n_nodes);
    pt->part = pv->part.data;
    for (int64_t v = 0; v < pt->n_nodes; v++)
        MMS_CHECK_GOTO(s, fail, pt->part[v] >= 0 && pt->part[v] < parts, MMS_ERR_FORMAT,
                       "%s: node %lld is in part %d, outside [0, %d)", p, (long long)v,
                       (int)pt->part[v], parts);
    /* the check read every entry: keep resident only the entries this rank looks up */
    mms_npy_release(&pv->part);
    *out = pt;
    return MMS_OK;
fail:
    mms_partition_close(&pt);
    return s;
}

void mms_partition_close(mms_partition_t **ptp) {
    if (!ptp || !*ptp) return;
    mms_partition_t *pt = *ptp;
    ppriv_t *pv = pt->priv;
    if (pv) {
        mms_npy_close(&pv->part);
        mms_manifest_destroy(&pv->m);
        free(pv);
    }
    free(pt);
    *ptp = NULL;
}

/* A 1-D <i8 file into a malloc'd array; its length must be want (from the manifest). */
static mms_status read_list(const char *dir, const char *name, int64_t want, int64_t n_nodes,
                            int64_t **out) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, dir, name));
    mms_npy_t a;
    MMS_CALL(mms_npy_open(p, MMS_DT_I64, &a));
    int64_t len = (int64_t)(a.rows * a.cols);
    mms_status s = MMS_OK;
    const int64_t *v = a.data;
    MMS_CHECK_GOTO(s, out, len == want, MMS_ERR_FORMAT, "%s: has %lld entries, manifest says %lld",
                   p, (long long)len, (long long)want);
    for (int64_t i = 0; i < len; i++)
        MMS_CHECK_GOTO(s, out, v[i] >= 0 && v[i] < n_nodes && (i == 0 || v[i] > v[i - 1]),
                       MMS_ERR_FORMAT, "%s: entry %lld = %lld is not a node id in ascending order",
                       p, (long long)i, (long long)v[i]);
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)(len + 1) * sizeof **out, out));
    if (len) memcpy(*out, v, (size_t)len * sizeof **out);
out:
    mms_npy_close(&a);
    return s;
}

mms_status mms_partition_load_part(const mms_partition_t *pt, int p, mms_part_nodes_t *out) {
    memset(out, 0, sizeof *out);
    MMS_CHECK(p >= 0 && p < pt->parts, MMS_ERR_ARG, "part %d outside [0, %d) of %s", p, pt->parts,
              pt->dir);
    const ppriv_t *pv = pt->priv;
    const int64_t *n_owned, *n_h1, *n_h2;
    size_t len1, len2, len3;
    MMS_CALL(mms_manifest_get_intarr(pv->m, "owned", &n_owned, &len1));
    MMS_CALL(mms_manifest_get_intarr(pv->m, "halo1", &n_h1, &len2));
    MMS_CALL(mms_manifest_get_intarr(pv->m, "halo2", &n_h2, &len3));
    MMS_CHECK(len1 == (size_t)pt->parts && len2 == len1 && len3 == len1, MMS_ERR_FORMAT,
              "%s: manifest part sizes do not have %d entries", pt->dir, pt->parts);
    char sub[32], dir[MMS_PATH_MAX];
    snprintf(sub, sizeof sub, "part-%d", p);
    MMS_CALL(mms_path_join(dir, sizeof dir, pt->dir, sub));
    MMS_CALL(mms_manifest_verify_files(pv->m, pt->dir, sub, NULL));
    mms_status s;
    MMS_CALL_GOTO(s, fail, read_list(dir, "owned.npy", n_owned[p], pt->n_nodes, &out->owned));
    out->n_owned = n_owned[p];
    MMS_CALL_GOTO(s, fail, read_list(dir, "halo1.npy", n_h1[p], pt->n_nodes, &out->halo1));
    out->n_halo1 = n_h1[p];
    MMS_CALL_GOTO(s, fail, read_list(dir, "halo2.npy", n_h2[p], pt->n_nodes, &out->halo2));
    out->n_halo2 = n_h2[p];
    for (int64_t i = 0; i < out->n_owned; i++)
        MMS_CHECK_GOTO(s, fail, pt->part[out->owned[i]] == p, MMS_ERR_FORMAT,
                       "%s/owned.npy: node %lld belongs to part %d in part.npy", dir,
                       (long long)out->owned[i], (int)pt->part[out->owned[i]]);
    for (int64_t i = 0; i < out->n_halo1; i++)
        MMS_CHECK_GOTO(s, fail, pt->part[out->halo1[i]] != p, MMS_ERR_FORMAT,
                       "%s/halo1.npy: node %lld is owned by part %d", dir,
                       (long long)out->halo1[i], p);
    for (int64_t i = 0; i < out->n_halo2; i++)
        MMS_CHECK_GOTO(s, fail, pt->part[out->halo2[i]] != p, MMS_ERR_FORMAT,
                       "%s/halo2.npy: node %lld is owned by part %d", dir,
                       (long long)out->halo2[i], p);
    return MMS_OK;
fail:
    mms_part_nodes_free(out);
    return s;
}
