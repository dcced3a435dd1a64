/* cmd_build.c: `mpirun -np P mmsage build --catalog C --out G`: the multi-modal
 * graph (kNN image edges, image-tag edges, optional PCA) across P ranks; prints
 * the summary on rank 0. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "graph_build.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_opts.h"

static void print_summary(const mms_build_params_t *p, const mms_build_summary_t *s) {
    static const char *bins[9] = {"0", "1", "2-5", "6-10", "11-25", "26-50", "51-100", "101-1000", ">1000"};
    printf("graph        %s\n", p->out);
    printf("nodes        %lld (%lld images, %lld tags)\n", (long long)s->nodes, (long long)s->images,
           (long long)s->tags);
    printf("edges        %lld image-image (undirected, threshold %g, from %lld top-%d candidates), "
           "%lld image-tag\n",
           (long long)s->ii_edges, p->threshold, (long long)s->ii_candidates, p->k,
           (long long)s->it_edges);
    printf("isolated     %lld images without an image-image edge (they keep their tag edges), "
           "%lld images with no edge at all, %lld tags without a training image\n",
           (long long)s->isolated_images, (long long)s->unconnected_images,
           (long long)s->isolated_tags);
    printf("degree cap   %d: %lld nodes above it (sampling adjacency keeps %d of their neighbours)\n",
           p->degree_cap, (long long)s->capped_nodes, p->degree_cap);
    printf("degrees     ");
    for (int b = 0; b < 9; b++) printf(" %s:%lld", bins[b], (long long)s->deg_hist[b]);
    printf("\n");
    if (p->approx)
        printf("knn          approximate (IVF), %.2f s, recall@%d %.4f\n", s->knn_seconds, p->k, s->recall);
    else
        printf("knn          exact, %.2f s, %.1f GFLOP/s\n", s->knn_seconds, s->knn_gflops);
    printf("time         %.2f s\n", s->total_seconds);
}

/* The settings a build starts from (see train's presets): "measured" (the
 * default) keeps every top-k visual neighbour (--threshold -1) and L2-normalises
 * the node inputs, the best measured on Corel5k (docs/results.md); "paper" is
 * the paper's cosine threshold 0.65 on raw inputs. Options override either. */
static mms_status apply_preset(const char *name, mms_build_params_t *p) {
    if (!strcmp(name, "measured")) {
        p->threshold = -1;
        p->normalize = 1;
    } else if (!strcmp(name, "paper")) {
        p->threshold = 0.65;
        p->normalize = 0;
    } else {
        MMS_CHECK(0, MMS_ERR_ARG, "build: --preset must be 'measured' or 'paper', got '%s'", name);
    }
    return MMS_OK;
}

mms_status mms_cmd_build(int argc, char **argv) {
    mms_build_params_t p;
    mms_build_params_default(&p);
    const char *preset = mms_opts_peek("preset", argc, argv);
    if (!preset) preset = "measured";
    mms_status ps = apply_preset(preset, &p);
    int no_normalize = 0;
    int seed = (int)p.seed, recall = (int)p.recall_sample;
    mms_opt_t opts[] = {
        {"catalog", MMS_OPT_STR, &p.catalog, "catalog directory (mmsage import/synth output)", 1, 0, 0, 0},
        {"preset", MMS_OPT_STR, &preset,
         "starting settings: measured (the default: --threshold -1, --normalize) or paper "
         "(--threshold 0.65, raw inputs); other options override it", 0, 0, 0, 0},
        {"out", MMS_OPT_STR, &p.out, "output graph directory", 1, 0, 0, 0},
        {"force", MMS_OPT_FLAG, &p.force, "replace an existing output directory", 0, 0, 0, 0},
        {"neighbors", MMS_OPT_INT, &p.k, "visual neighbours per image (paper: 5; the same idea as query's --neighbors)", 0, 0, 0, 0},
        {"k", MMS_OPT_INT, &p.k, NULL, 0, 0, 0, 0}, /* the old name */
        {"threshold", MMS_OPT_DOUBLE, &p.threshold,
         "cosine threshold for image-image edges (paper: 0.65; -1 keeps all top-k)", 0, 0, 0, 0},
        {"pca-dim", MMS_OPT_INT, &p.pca_dim,
         "project node features to this many dimensions with PCA (0: no PCA)", 0, 0, 0, 0},
        {"normalize", MMS_OPT_FLAG, &p.normalize,
         "L2-normalise the node features (queries are normalised the same way; on by default)", 0, 0, 0, 0},
        {"no-normalize", MMS_OPT_FLAG, &no_normalize, "keep the node features as they are", 0, 0, 0, 0},
        {"approx", MMS_OPT_FLAG, &p.approx, "approximate kNN (IVF) for 1M+ images", 0, 0, 0, 0},
        {"nlist", MMS_OPT_INT, &p.nlist, "IVF lists (0: automatic)", 0, 1, 0, 1 << 24},
        {"nprobe", MMS_OPT_INT, &p.nprobe, "IVF lists probed per query (0: automatic)", 0, 1, 0, 1 << 24},
        {"recall-sample", MMS_OPT_INT, &recall,
         "rows sampled to measure approximate recall against exact (0: skip)", 0, 1, 0, 1 << 24},
        {"tile", MMS_OPT_INT, &p.tile, "kNN tile rows (0: automatic)", 0, 1, 0, 1 << 20},
        {"degree-cap", MMS_OPT_INT, &p.degree_cap, "neighbours kept per node for sampling (paper: 100)", 0, 0, 0, 0},
        {"seed", MMS_OPT_INT, &seed, "seed for IVF training and the degree cap", 0, 0, 0, 0},
    };
    const int n = (int)(sizeof opts / sizeof opts[0]);
    int help = 0;
    mms_status s = mms_opts_parse("build", "Build the multi-modal graph (collective: run under mpirun).",
                                  opts, n, argc, argv, &help);
    if (s == MMS_OK) s = ps;
    MMS_CALL(mms_mpi_agree(s, MPI_COMM_WORLD));
    if (help) return MMS_OK;
    if (no_normalize) p.normalize = 0;
    p.seed = (uint64_t)seed;
    p.recall_sample = recall;
    mms_opts_echo("build", opts, n);
    mms_build_summary_t sum;
    MMS_CALL(mms_graph_build(&p, MPI_COMM_WORLD, &sum));
    if (mms_log_rank() == 0) print_summary(&p, &sum);
    return MMS_OK;
}
