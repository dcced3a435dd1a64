/* cmd_embed.c: `mpirun -np P mmsage embed --graph G --model M --out I`: the
 * embedding pass over a P-part partition; writes the index the query path
 * serves (worker/embed.h). */
#include <mpi.h>
#include <stdio.h>

#include "commands.h"
#include "embed.h"
#include "mms_log.h"
#include "mms_mpi.h"
#include "mms_opts.h"

mms_status mms_cmd_embed(int argc, char **argv) {
    mms_embed_params_t p = {0};
    p.nlist = -1;
    mms_opt_t opts[] = {
        {"graph", MMS_OPT_STR, &p.graph, "graph directory, partitioned into as many parts as ranks", 1, 0, 0, 0},
        {"model", MMS_OPT_STR, &p.model, "model directory written by mmsage train", 1, 0, 0, 0},
        {"out", MMS_OPT_STR, &p.out, "index directory to write", 1, 0, 0, 0},
        {"force", MMS_OPT_FLAG, &p.force, "replace an existing index directory", 0, 0, 0, 0},
        {"nlist", MMS_OPT_INT, &p.nlist, "inverted lists per space for approximate search (-1: about 4 sqrt(images), a power of two; 0: none; docs/query.md)", 0, 1, -1, 65536},
    };
    const int n = (int)(sizeof opts / sizeof opts[0]);
    int help = 0;
    mms_status s = mms_opts_parse("embed", "Embed every node with a trained model and write the sharded index (collective).",
                                  opts, n, argc, argv, &help);
    MMS_CALL(mms_mpi_agree(s, MPI_COMM_WORLD));
    if (help) return MMS_OK;
    mms_opts_echo("embed", opts, n);
    mms_embed_summary_t sum;
    MMS_CALL(mms_embed(&p, MPI_COMM_WORLD, &sum));
    if (mms_log_rank() == 0)
        printf("index        %s: %lld image and %lld tag embeddings in %d shards, %.2f s\n", p.out,
               (long long)sum.images, (long long)sum.tags, mms_log_nranks(), sum.seconds);
    return MMS_OK;
}
