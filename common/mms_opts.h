/* mms_opts.h: command-line options declared in one table per command.
 *
 * Each command fills its option struct with defaults in one function, then
 * describes each option once (name, type, destination, help, optional range).
 * mms_opts_parse() handles "--name value" and "--name=value", --help (printed
 * with every default), required options, numeric ranges and repeated options
 * (MMS_OPT_STRLIST). It is called from main-level code only; it never exits.
 */
#ifndef MMS_OPTS_H
#define MMS_OPTS_H

#include <stdint.h>

#include "mms_status.h"

typedef enum {
    MMS_OPT_FLAG,   /* int, set to 1 when present */
    MMS_OPT_INT,    /* int */
    MMS_OPT_INT64,  /* int64_t */
    MMS_OPT_DOUBLE, /* double */
    MMS_OPT_STR,    /* const char * (borrowed from argv) */
    MMS_OPT_STRLIST /* mms_strlist_t, repeated option */
} mms_opttype;

#define MMS_STRLIST_MAX 64
typedef struct {
    const char *v[MMS_STRLIST_MAX];
    int n;
} mms_strlist_t;

/* An option whose help is NULL is an old name kept for scripts: it sets the
 * same destination as the option of the same dest in the table, is accepted
 * with a one-line warning naming the new name, and is hidden from the usage,
 * the echo and so from the man page. */
typedef struct {
    const char *name; /* without the leading "--" */
    mms_opttype type;
    void *dest;
    const char *help;
    int required;
    int has_range; /* check min <= value <= max for numeric types */
    double min, max;
} mms_opt_t;

/* Parse argv[0..argc) (argv[0] is the first option, not the program name).
 * On --help prints usage to stdout and sets *help_shown = 1 (returns MMS_OK).
 * Positional arguments are refused. */
mms_status mms_opts_parse(const char *command, const char *summary, const mms_opt_t *opts,
                          int nopts, int argc, char **argv, int *help_shown);

/* Print usage (command, summary, each option with its help and default). */
/* The value of `--name V` or `--name=V` in argv[0..argc), or NULL: for an
 * option (such as --preset) that sets the defaults the other options then
 * override, whatever their order. The option must also be in the table. */
const char *mms_opts_peek(const char *name, int argc, char **argv);

void mms_opts_usage(const char *command, const char *summary, const mms_opt_t *opts, int nopts);

/* Log the effective options once (rank 0). */
void mms_opts_echo(const char *command, const mms_opt_t *opts, int nopts);

#endif
