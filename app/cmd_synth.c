/* cmd_synth.c: `mmsage synth --images N --out C [...]` parses and echoes the
 * options of the synthetic catalog generator and runs it (ingest/synth.h;
 * the generative model and every default are described in docs/synth.md). */
#include <stdint.h>

#include "commands.h"
#include "mms_log.h"
#include "mms_opts.h"
#include "synth.h"

mms_status mms_cmd_synth(int argc, char **argv) {
    mms_synth_params_t p;
    mms_synth_params_default(&p);
    const char *out = NULL;
    int force = 0;
    int64_t seed = (int64_t)p.seed;
    const double maxdim = MMS_SYNTH_MAX_DIM, maxtags = MMS_SYNTH_MAX_TAGS;
    mms_opt_t opts[] = {
        {"images", MMS_OPT_INT64, &p.images, "number of images N", 1, 1, 1, 1099511627776.0},
        {"out", MMS_OPT_STR, &out, "catalog directory to create", 1, 0, 0, 0},
        {"force", MMS_OPT_FLAG, &force, "replace an existing output directory", 0, 0, 0, 0},
        {"seed", MMS_OPT_INT64, &seed, "random seed: same seed and options, same bytes", 0, 1, 0,
         9.2e18},
        {"dim", MMS_OPT_INT, &p.dim, "width D of features.npy (the GNN's image features)", 0, 1, 1,
         maxdim},
        {"knn-dim", MMS_OPT_INT, &p.knn_dim,
         "width of knn_features.npy, a second, less noisy view of the same images used only for "
         "the kNN graph (0 = none)",
         0, 1, 0, maxdim},
        {"tags", MMS_OPT_INT, &p.tags, "tag vocabulary size T (0 = min(20000, max(200, N/50)))", 0,
         1, 0, 10000000},
        {"clusters", MMS_OPT_INT, &p.clusters,
         "planted visual clusters C (0 = clamp(N/100, 8, 5000))", 0, 1, 0, 1000000},
        {"topics", MMS_OPT_INT, &p.topics, "planted concepts K (0 = clamp(C/4, 2, 1000))", 0, 1, 0,
         1000000},
        {"latent-dim", MMS_OPT_INT, &p.latent_dim, "width L of the shared latent space", 0, 1, 1,
         4096},
        {"min-tags", MMS_OPT_INT, &p.min_tags, "fewest tags per image", 0, 1, 1, maxtags},
        {"max-tags", MMS_OPT_INT, &p.max_tags, "most tags per image", 0, 1, 1, maxtags},
        {"test-fraction", MMS_OPT_DOUBLE, &p.test_fraction, "fraction of images in the test split",
         0, 1, 0, 0.999},
        {"val-fraction", MMS_OPT_DOUBLE, &p.val_fraction,
         "fraction of images in the validation split", 0, 1, 0, 0.999},
        {"p-primary", MMS_OPT_DOUBLE, &p.p_primary,
         "probability that an image's topic is its cluster's primary topic", 0, 1, 0, 1},
        {"p-blend", MMS_OPT_DOUBLE, &p.p_blend,
         "probability that an image blends a second visual cluster", 0, 1, 0, 1},
        {"p-topic-tag", MMS_OPT_DOUBLE, &p.p_topic_tag,
         "probability that a tag comes from the image's topic rather than global noise", 0, 1, 0,
         1},
        {"spread", MMS_OPT_DOUBLE, &p.spread,
         "norm of an image's own latent variation (cluster centres have norm 1)", 0, 1, 0, 100},
        {"topic-weight", MMS_OPT_DOUBLE, &p.topic_weight,
         "how visible the topic is: norm of its latent direction", 0, 1, 0, 100},
        {"noise", MMS_OPT_DOUBLE, &p.noise, "features: per-dimension noise std / signal std", 0, 1,
         0, 100},
        {"knn-noise", MMS_OPT_DOUBLE, &p.knn_noise,
         "kNN features: per-dimension noise std / signal std", 0, 1, 0, 100},
        {"chunk-rows", MMS_OPT_INT, &p.chunk_rows,
         "rows generated per chunk (memory; the output does not depend on it)", 0, 1, 1, 1048576},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    int help;
    MMS_CALL(mms_opts_parse("synth",
                            "Generate a synthetic stock-photo catalog with planted visual clusters "
                            "and concepts (see docs/synth.md).",
                            opts, nopts, argc, argv, &help));
    if (help) return MMS_OK;
    p.seed = (uint64_t)seed;
    MMS_CALL(mms_synth_params_resolve(&p));
    mms_opts_echo("synth", opts, nopts);
    MMS_CALL(mms_synth_generate(&p, out, force));
    mms_log_info("synth: wrote %s", out);
    return MMS_OK;
}
