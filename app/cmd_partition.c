/* cmd_partition.c: `mmsage partition --graph G --parts P` cuts the graph into P
 * parts (METIS k-way, or a hash of the node id), writes G/parts-P/ with the
 * owned nodes and 1-/2-hop halos of every part (partition/metis_part.h), and
 * prints METIS and hash figures side by side on stdout. Not an MPI command:
 * METIS runs in this one process on the whole graph. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "metis_part.h"
#include "part_dir.h"
#include "mms_log.h"
#include "mms_opts.h"

/* "min / mean / max" of per-part sizes. */
static void fmt_mmm(const int64_t *v, int n, char *buf, size_t cap) {
    int64_t mn, mx;
    double mean;
    mms_part_minmeanmax(v, n, &mn, &mean, &mx);
    snprintf(buf, cap, "%lld / %.1f / %lld", (long long)mn, mean, (long long)mx);
}

static int64_t sum_of(const int64_t *v, int n) {
    int64_t s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return s;
}

/* One column of the table: the figures of st as strings. */
typedef struct {
    char name[32], cut[48], cutfrac[32], balance[32], owned[64], halo1[64], halo2[64],
        halo_nodes[32], halo_bytes[32];
} column_t;

static void fill_column(const mms_part_stats_t *st, int dim, int written, column_t *c) {
    snprintf(c->name, sizeof c->name, "%s%s", mms_part_method_name(st->method),
             written ? " (written)" : "");
    snprintf(c->cut, sizeof c->cut, "%lld", (long long)st->edge_cut);
    snprintf(c->cutfrac, sizeof c->cutfrac, "%.2f %%",
             st->edges ? 100.0 * (double)st->edge_cut / (double)st->edges : 0.0);
    snprintf(c->balance, sizeof c->balance, "%.3f", st->balance);
    fmt_mmm(st->owned, st->parts, c->owned, sizeof c->owned);
    fmt_mmm(st->halo1, st->parts, c->halo1, sizeof c->halo1);
    fmt_mmm(st->halo2, st->parts, c->halo2, sizeof c->halo2);
    int64_t h = sum_of(st->halo1, st->parts) + sum_of(st->halo2, st->parts);
    snprintf(c->halo_nodes, sizeof c->halo_nodes, "%lld", (long long)h);
    mms_fmt_bytes((double)h * dim * (double)sizeof(float), c->halo_bytes, sizeof c->halo_bytes);
}

static void print_table(const char *graph, int dim, const mms_part_stats_t *a,
                        const mms_part_stats_t *b) {
    column_t ca, cb;
    memset(&cb, 0, sizeof cb);
    fill_column(a, dim, 1, &ca);
    if (b->parts) fill_column(b, dim, 0, &cb);
    printf("partition of %s into %d parts (%lld edges)\n", graph, a->parts, (long long)a->edges);
    const char *rows[][3] = {
        {"", ca.name, cb.name},
        {"edge cut", ca.cut, cb.cut},
        {"edge cut / edges", ca.cutfrac, cb.cutfrac},
        {"balance (max/mean weight)", ca.balance, cb.balance},
        {"owned min/mean/max", ca.owned, cb.owned},
        {"halo1 min/mean/max", ca.halo1, cb.halo1},
        {"halo2 min/mean/max", ca.halo2, cb.halo2},
        {"halo nodes (all parts)", ca.halo_nodes, cb.halo_nodes},
        {"halo bytes (f32 x dim)", ca.halo_bytes, cb.halo_bytes},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        printf("  %-27s %-26s %s\n", rows[i][0], rows[i][1], b->parts ? rows[i][2] : "");
}

mms_status mms_cmd_partition(int argc, char **argv) {
    mms_part_opts_t o;
    mms_part_opts_default(&o);
    const char *graph = NULL, *method = "metis";
    int64_t seed = (int64_t)o.seed;
    mms_opt_t opts[] = {
        {"graph", MMS_OPT_STR, &graph,
         "graph directory (from mmsage build); output goes to GRAPH/parts-P", 1, 0, 0, 0},
        {"parts", MMS_OPT_INT, &o.parts,
         "number of parts P (training ranks), 1 .. number of image nodes", 1, 0, 0, 0},
        {"method", MMS_OPT_STR, &method, "partition written: metis (k-way, min edge cut) or hash",
         0, 0, 0, 0},
        {"seed", MMS_OPT_INT64, &seed, "METIS seed and hash seed (same seed, same partition)", 0, 1,
         0, 2147483647.0},
        {"imbalance", MMS_OPT_DOUBLE, &o.imbalance,
         "allowed max part weight / mean part weight (METIS ufactor = 1000*(x-1))", 0, 1, 1.0,
         10.0},
        {"force", MMS_OPT_FLAG, &o.force, "replace an existing GRAPH/parts-P", 0, 0, 0, 0},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    int help;
    MMS_CALL(mms_opts_parse("partition",
                            "Cut a graph into P parts (METIS k-way) and write each part's nodes "
                            "and 1-/2-hop halos.",
                            opts, nopts, argc, argv, &help));
    if (help) return MMS_OK;
    MMS_CALL(mms_part_method_parse(method, &o.method));
    o.seed = (uint64_t)seed;
    mms_opts_echo("partition", opts, nopts);
    mms_part_stats_t chosen, other;
    MMS_CALL(mms_partition_write(graph, &o, &chosen, &other));
    /* Read the result back through the reader later steps use (a self-check),
     * which also gives the feature width for the halo bytes. */
    mms_partition_t *pt = NULL;
    mms_status s = mms_partition_open(graph, o.parts, &pt);
    if (s == MMS_OK) print_table(graph, pt->dim, &chosen, &other);
    mms_partition_close(&pt);
    mms_part_stats_free(&chosen);
    mms_part_stats_free(&other);
    return s;
}
