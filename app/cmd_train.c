/* cmd_train.c: `mpirun -np P mmsage train --graph G --out M ...`: distributed
 * unsupervised GraphSAGE on a P-part partition of G (worker/train.h). */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_opts.h"
#include "train.h"

/* The settings a run starts from (docs/model.md, "Presets"): "measured" (the
 * default) is the best measured on Corel5k's validation split (docs/results.md):
 * Adam 1e-3 (the paper's 1e-5 barely moves in hours), 8 epochs, tag inputs
 * starting at their images' mean input, dropout 0.5; "paper" is the paper's
 * (Adam 1e-5, 50 epochs, random unit tag inputs, dropout 0.2). Options given
 * on the command line override either. */
static mms_status apply_preset(const char *name, mms_train_params_t *p, const char **tag_init) {
    if (!strcmp(name, "measured")) {
        p->lr = 1e-3;
        p->epochs = 8;
        p->dropout = 0.5;
        *tag_init = "mean";
    } else if (!strcmp(name, "paper")) {
        p->lr = 1e-5;
        p->epochs = 50;
        p->dropout = 0.2;
        *tag_init = "random";
    } else {
        MMS_CHECK(0, MMS_ERR_ARG, "train: --preset must be 'measured' or 'paper', got '%s'", name);
    }
    return MMS_OK;
}

mms_status mms_cmd_train(int argc, char **argv) {
    mms_train_params_t p;
    mms_train_params_default(&p);
    int seed = (int)p.seed, ckpt = (int)p.ckpt_every;
    int64_t max_steps = 0;
    const char *tag_init = "random";
    const char *preset = mms_opts_peek("preset", argc, argv);
    if (!preset) preset = "measured";
    mms_status ps = apply_preset(preset, &p, &tag_init);
    mms_opt_t opts[] = {
        {"preset", MMS_OPT_STR, &preset,
         "starting settings: measured (the default: lr 1e-3, 8 epochs, tag-init mean, dropout 0.5) "
         "or paper (lr 1e-5, 50 epochs, tag-init random, dropout 0.2); other options override it",
         0, 0, 0, 0},
        {"graph", MMS_OPT_STR, &p.graph, "graph directory, partitioned into as many parts as ranks", 1, 0, 0, 0},
        {"out", MMS_OPT_STR, &p.out, "model directory (checkpoints, parameters, loss.tsv)", 1, 0, 0, 0},
        {"force", MMS_OPT_FLAG, &p.force, "replace an existing model directory", 0, 0, 0, 0},
        {"resume", MMS_OPT_FLAG, &p.resume, "continue from the model directory's checkpoint", 0, 0, 0, 0},
        {"epochs", MMS_OPT_INT, &p.epochs, "passes over the random-walk pairs (paper: 50)", 0, 1, 0, 1e6},
        {"max-steps", MMS_OPT_INT64, &max_steps, "stop after this many steps (0: no bound)", 0, 1, 0, 1e15},
        {"time-limit", MMS_OPT_DOUBLE, &p.time_limit, "stop after this many seconds (0: no bound)", 0, 1, 0, 1e9},
        {"seed", MMS_OPT_INT, &seed, "seed of every random draw", 0, 0, 0, 0},
        {"lr", MMS_OPT_DOUBLE, &p.lr, "Adam learning rate (paper: 1e-5)", 0, 0, 0, 0},
        {"batch", MMS_OPT_INT, &p.batch, "positive pairs per step, over all ranks (paper: 512)", 0, 0, 0, 0},
        {"neg", MMS_OPT_INT, &p.neg, "negatives per step, from degree^0.75 (paper: 20)", 0, 0, 0, 0},
        {"dropout", MMS_OPT_DOUBLE, &p.dropout, "dropout on aggregator inputs (paper: 0.2)", 0, 0, 0, 0},
        {"hidden", MMS_OPT_INT, &p.hidden, "width of each half of a layer (paper: 128 -> 256 output)", 0, 0, 0, 0},
        {"samples-1", MMS_OPT_INT, &p.s1, "neighbours sampled per hop-1 node (paper: 25)", 0, 0, 0, 0},
        {"samples-2", MMS_OPT_INT, &p.s2, "neighbours sampled per target (paper: 10)", 0, 0, 0, 0},
        {"walks", MMS_OPT_INT, &p.walks, "random walks per node (reference: 50)", 0, 0, 0, 0},
        {"walk-len", MMS_OPT_INT, &p.walk_len, "random walk length (reference: 5)", 0, 0, 0, 0},
        {"freeze-tags", MMS_OPT_FLAG, &p.freeze_tags, "keep the random tag input vectors fixed", 0, 0, 0, 0},
        {"tag-init", MMS_OPT_STR, &tag_init,
         "tag node inputs at the start: random (paper: unit random vectors) or mean (the mean of "
         "the inputs of the tag's images)", 0, 0, 0, 0},
        {"temperature", MMS_OPT_DOUBLE, &p.temperature,
         "divide the affinities z_u . z_v of the loss by this (reference: 1)", 0, 0, 0, 0},
        {"hide-tags", MMS_OPT_DOUBLE, &p.hide_tags,
         "fraction of images whose tag edges are hidden from sampling, so the model learns to embed "
         "untagged queries from their visual neighbours (0: paper)", 0, 1, 0, 1},
        {"link-weight", MMS_OPT_DOUBLE, &p.link_weight,
         "weight of the image->tag link term: each step's images, embedded without their own tag "
         "edges (as an untagged query is), scored against their tags and --link-neg sampled "
         "tags (0: off, the paper's loss alone)", 0, 1, 0, 1e6},
        {"query-train", MMS_OPT_DOUBLE, &p.query_train,
         "fraction of image pair starts embedded without their own tag edges in the random-walk "
         "loss, the way an untagged query is embedded (0: paper)", 0, 1, 0, 1},
        {"link-neg", MMS_OPT_INT, &p.link_neg,
         "negative tags per step of the link term, from tag degree^0.75 (0: every tag, a "
         "one-vs-all classifier)", 0, 1, 0, 256},
        {"link-temperature", MMS_OPT_DOUBLE, &p.link_temperature,
         "divide the link term's affinities by this", 0, 0, 0, 0},
        {"checkpoint-every", MMS_OPT_INT, &ckpt, "steps between checkpoints (0: only at the end)", 0, 1, 0, 2e9},
        {"log-every", MMS_OPT_INT, &p.log_every, "steps between progress lines", 0, 1, 1, 1e9},
    };
    const int n = (int)(sizeof opts / sizeof opts[0]);
    int help = 0;
    mms_status s = mms_opts_parse("train", "Train GraphSAGE on a partitioned graph (collective: run under mpirun with one rank per part).",
                                  opts, n, argc, argv, &help);
    if (s == MMS_OK) s = ps;
    MMS_CALL(mms_mpi_agree(s, MPI_COMM_WORLD));
    if (help) return MMS_OK;
    if (s == MMS_OK && strcmp(tag_init, "random") != 0 && strcmp(tag_init, "mean") != 0) {
        mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                      "train: --tag-init must be 'random' or 'mean', got '%s'", tag_init);
        s = MMS_ERR_ARG;
    }
    MMS_CALL(mms_mpi_agree(s, MPI_COMM_WORLD));
    p.tag_init_mean = strcmp(tag_init, "mean") == 0;
    p.seed = (uint64_t)seed;
    p.ckpt_every = ckpt;
    p.max_steps = max_steps;
    mms_opts_echo("train", opts, n);
    mms_train_summary_t sum;
    MMS_CALL(mms_train(&p, MPI_COMM_WORLD, &sum));
    if (mms_log_rank() == 0) {
        static const char *why[] = {"epochs done", "max steps", "time limit", "signal"};
        printf("model        %s\n", p.out);
        printf("steps        %lld in this run (%s), %lld per epoch\n", (long long)sum.steps, why[sum.stopped_by & 3], (long long)sum.steps_per_epoch);
        printf("loss         %.4f -> %.4f (smoothed)\n", sum.first_loss, sum.last_loss);
        if (p.link_weight > 0) printf("link loss    %.4f (smoothed, unweighted)\n", sum.link_loss);
        printf("throughput   %.0f pairs/s, %.2f GFLOP/s, %.1f s\n", sum.pairs_per_sec, sum.gflops, sum.seconds);
        printf("traffic      halo %lld bytes once; per step %lld bytes allreduce + %lld bytes exchange\n",
               (long long)sum.halo_bytes, (long long)sum.allreduce_bytes_per_step,
               (long long)sum.exchange_bytes_per_step);
    }
    return MMS_OK;
}
