/* commands.h: the mmsage subcommands. Each takes the arguments after its name,
 * parses its own options (common/mms_opts.h), and returns an mms_status that
 * main() turns into the exit code. MPI commands are entered with MPI initialised
 * and must agree on failure across ranks before returning. */
#ifndef MMS_COMMANDS_H
#define MMS_COMMANDS_H

#include "mms_status.h"

typedef mms_status (*mms_cmd_fn)(int argc, char **argv);

typedef struct {
    const char *name;
    mms_cmd_fn fn;
    int uses_mpi; /* 1: MPI_Init before, MPI_Finalize after */
    const char *summary;
} mms_command_t;

mms_status mms_cmd_import(int argc, char **argv);
mms_status mms_cmd_import_mulan(int argc, char **argv);
mms_status mms_cmd_import_coco(int argc, char **argv);
mms_status mms_cmd_import_npy(int argc, char **argv);
mms_status mms_cmd_import_catalog(int argc, char **argv);
mms_status mms_cmd_synth(int argc, char **argv);
mms_status mms_cmd_info(int argc, char **argv);
mms_status mms_cmd_partition(int argc, char **argv);
mms_status mms_cmd_build(int argc, char **argv);
mms_status mms_cmd_train(int argc, char **argv);
mms_status mms_cmd_embed(int argc, char **argv);
mms_status mms_cmd_query(int argc, char **argv);
mms_status mms_cmd_eval(int argc, char **argv);
mms_status mms_cmd_serve(int argc, char **argv);
mms_status mms_cmd_search(int argc, char **argv);
mms_status mms_cmd_web(int argc, char **argv);
mms_status mms_cmd_add(int argc, char **argv);
mms_status mms_cmd_remove(int argc, char **argv);

/* Split s (modified in place) at commas into trimmed (blanks), non-empty
 * tags: tags[0..*n) point into s. MMS_ERR_ARG "<where>: more than <cap>
 * tags" past cap. The --tags of query and search and their batch files. In
 * main.c. */
mms_status mms_cmd_split_tags(char *s, const char **tags, int cap, int *n, const char *where);

/* SIGTERM and SIGINT call handler (SA_RESTART, nothing blocked): how the
 * long-running commands (serve, web) learn to drain and stop. In main.c. */
void mms_cmd_on_stop_signals(void (*handler)(int));

#endif
