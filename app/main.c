/* main.c: `mmsage <command> [options]`. Dispatches to the subcommands of
 * commands.h, initialising MPI only for the commands that use it, and turns the
 * returned status into the exit code (0 = success; a command whose results
 * could not be written to stdout fails). Also the helpers several
 * commands share (mms_cmd_split_tags, mms_cmd_on_stop_signals). */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mms_blas.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_version.h"

static const mms_command_t k_commands[] = {
    {"import", mms_cmd_import, 0, "import a real data set into a catalog (mulan, coco, npy)"},
    {"synth", mms_cmd_synth, 0, "generate a synthetic stock-photo catalog of any size"},
    {"build", mms_cmd_build, 1, "build the multi-modal graph: kNN image edges, tag edges, optional PCA"},
    {"train", mms_cmd_train, 1, "train GraphSAGE on a partitioned graph (one rank per part)"},
    {"embed", mms_cmd_embed, 1, "embed every node and write the sharded index"},
    {"add", mms_cmd_add, 1, "add new images to a new version of an index, without retraining"},
    {"remove", mms_cmd_remove, 0, "withdraw images: a new version of an index without them"},
    {"serve", mms_cmd_serve, 1, "serve queries over TCP: rank 0 coordinates, the other ranks hold the shards"},
    {"search", mms_cmd_search, 1, "answer a batch of queries offline, through the same engine as serve"},
    {"eval", mms_cmd_eval, 1, "evaluate retrieval and tag prediction on the test images; write the report"},
    {"query", mms_cmd_query, 0, "send queries to a query server (one, or a pipelined batch) and print the answers"},
    {"info", mms_cmd_info, 0, "validate a catalog (or other mmsage directory) and summarise it"},
    {"partition", mms_cmd_partition, 0, "cut a graph into P parts (METIS) with 1-/2-hop halos per part"},
    {"web", mms_cmd_web, 0, "serve the live search page (slider, keywords, uploads) in front of a query server"},
};
static const int k_ncommands = (int)(sizeof k_commands / sizeof k_commands[0]);

static void usage(void) {
    printf("usage: mmsage <command> [options]   (mmsage <command> --help for its options)\n\n"
           "Multi-modal image retrieval with GraphSAGE, sharded over MPI.\n\ncommands:\n");
    for (int i = 0; i < k_ncommands; i++)
        printf("  %-10s %s%s\n", k_commands[i].name, k_commands[i].summary,
               k_commands[i].uses_mpi ? " [MPI]" : "");
    printf("\nother:\n"
           "  --version            version, git commit and build type\n"
           "  help exit-codes      what each exit status means\n"
           "\nEnvironment: MMS_LOG=debug|info|warn|error|quiet (quiet: errors only; default info).\n"
           "See README.md and docs/ for the pipeline and file formats.\n");
}

/* The exit statuses: 0, 1 and 2 for the command line itself, then one per
 * mms_status (common/mms_status.h), the same on every rank of an MPI run. */
static void exit_codes(void) {
    static const struct {
        int code;
        const char *what;
    } k[] = {
        {0, "success"},
        {MMS_ERR_ARG, "usage or argument: no or an unknown command, a bad option or value"},
        {MMS_ERR_IO, "io: a file could not be opened, read, written or renamed (disk full included)"},
        {MMS_ERR_FORMAT, "format: a malformed or corrupt input (file, line or field named)"},
        {MMS_ERR_NOMEM, "memory: an allocation failed"},
        {MMS_ERR_NUMERIC, "numeric: NaN/Inf in an input or a diverging computation"},
        {MMS_ERR_EXISTS, "exists: the output exists and --force was not given"},
        {MMS_ERR_MISMATCH, "mismatch: inputs made from different sources (another graph, catalog, rank count)"},
        {MMS_ERR_MPI, "mpi: an MPI call failed"},
        {MMS_ERR_LIB, "library: METIS, LAPACK, msgpack or another library failed"},
        {MMS_ERR_INTERNAL, "internal: a broken invariant (a bug: please report it)"},
    };
    printf("mmsage exit status (under mpirun, every rank exits with the code of the first\n"
           "failure the ranks agreed on; mpirun passes it on):\n\n");
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) printf("  %3d  %s\n", k[i].code, k[i].what);
    printf("  124  (from timeout(1) or SLURM, not mmsage) the time limit was reached\n");
}

mms_status mms_cmd_split_tags(char *s, const char **tags, int cap, int *n, const char *where) {
    *n = 0;
    for (char *p = s; p;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        while (*p == ' ') p++;
        size_t len = strlen(p);
        while (len > 0 && p[len - 1] == ' ') p[--len] = '\0';
        if (len > 0) {
            MMS_CHECK(*n < cap, MMS_ERR_ARG, "%s: more than %d tags", where, cap);
            tags[(*n)++] = p;
        }
        p = comma ? comma + 1 : NULL;
    }
    return MMS_OK;
}

void mms_cmd_on_stop_signals(void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* MMS_LOG: "quiet" keeps errors (a run that fails always says why); an unknown
 * value is refused rather than silently read as "info". Returns -1 for it. */
static int env_level(void) {
    const char *v = getenv("MMS_LOG");
    if (!v || !*v || !strcmp(v, "info")) return MMS_LOG_INFO;
    if (!strcmp(v, "debug")) return MMS_LOG_DEBUG;
    if (!strcmp(v, "warn")) return MMS_LOG_WARN;
    if (!strcmp(v, "error") || !strcmp(v, "quiet")) return MMS_LOG_ERROR;
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        (!strcmp(argv[1], "help") && argc == 2)) {
        usage();
        return argc < 2 ? 1 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("mmsage %s (commit %s, %s build)\n", MMS_VERSION, MMS_GIT_COMMIT, MMS_BUILD_TYPE);
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "help")) {
        if (!strcmp(argv[2], "exit-codes")) {
            exit_codes();
            return 0;
        }
        fprintf(stderr, "mmsage help: unknown topic '%s' (topics: exit-codes; for a command's "
                        "options: mmsage %s --help)\n", argv[2], argv[2]);
        return 1;
    }
    int level = env_level();
    if (level < 0) {
        fprintf(stderr, "mmsage: MMS_LOG='%s' is not one of debug, info, warn, error, quiet\n",
                getenv("MMS_LOG"));
        return MMS_ERR_ARG;
    }
    const mms_command_t *cmd = NULL;
    for (int i = 0; i < k_ncommands; i++)
        if (!strcmp(argv[1], k_commands[i].name)) cmd = &k_commands[i];
    /* a command's --help needs no MPI (the man page and the completion are
     * generated from it at build time, where there may be no mpirun) */
    int help_only = 0;
    for (int i = 2; i < argc; i++) help_only |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
    if (!cmd) {
        fprintf(stderr, "mmsage: unknown command '%s' (run 'mmsage --help')\n", argv[1]);
        return 1;
    }
    /* Before MPI and any BLAS call: never run the SSE kernels on an AVX-512 CPU. */
    if (cmd->uses_mpi && !help_only) mms_blas_fix_kernel(argv);
    /* One rank per core: OpenBLAS threads only when asked (MMS_BLAS_THREADS). */
    const char *bt = getenv("MMS_BLAS_THREADS");
    openblas_set_num_threads(bt ? atoi(bt) : 1);
    int rank = 0, nranks = 1;
    const int use_mpi = cmd->uses_mpi && !help_only;
    if (use_mpi) {
        MPI_Init(&argc, &argv);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    }
    mms_log_init(rank, nranks, (mms_log_level)level);
    /* Which kernels the dense math runs on: Debian's dynamic OpenBLAS picks them
     * from cpuid, and results and speed depend on the choice (docs/results.md). */
    if (use_mpi) {
        char blas[256];
        mms_log_info("BLAS core %s", mms_blas_describe(blas, sizeof blas));
    }
    mms_status s = cmd->fn(argc - 2, argv + 2);
    /* Results written to stdout must have arrived: a full disk or a closed
     * device is an error, not exit 0 with the output lost. */
    if (s == MMS_OK) s = mms_stdout_flush("standard output");
    if (use_mpi) MPI_Finalize();
    return s == MMS_OK ? 0 : (int)s;
}
