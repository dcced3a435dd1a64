/* mms_opts.c: see mms_opts.h. */
#include "mms_opts.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_log.h"

static void fmt_value(const mms_opt_t *o, char *buf, size_t n) {
    switch (o->type) {
    case MMS_OPT_FLAG: snprintf(buf, n, "%s", *(int *)o->dest ? "on" : "off"); break;
    case MMS_OPT_INT: snprintf(buf, n, "%d", *(int *)o->dest); break;
    case MMS_OPT_INT64: snprintf(buf, n, "%lld", (long long)*(int64_t *)o->dest); break;
    case MMS_OPT_DOUBLE: snprintf(buf, n, "%g", *(double *)o->dest); break;
    case MMS_OPT_STR: {
        const char *s = *(const char **)o->dest;
        snprintf(buf, n, "%s", s ? s : "");
        break;
    }
    case MMS_OPT_STRLIST: {
        const mms_strlist_t *l = o->dest;
        size_t used = 0;
        buf[0] = '\0';
        for (int i = 0; i < l->n && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? "," : "", l->v[i]);
        break;
    }
    }
}

void mms_opts_usage(const char *command, const char *summary, const mms_opt_t *opts, int nopts) {
    printf("usage: mmsage %s [options]\n\n%s\n\noptions:\n", command, summary);
    for (int i = 0; i < nopts; i++) {
        const mms_opt_t *o = &opts[i];
        if (!o->help) continue; /* an old name */
        char arg[64] = "";
        if (o->type != MMS_OPT_FLAG)
            snprintf(arg, sizeof arg, " %s",
                     o->type == MMS_OPT_STR || o->type == MMS_OPT_STRLIST ? "VALUE" : "N");
        char def[256];
        fmt_value(o, def, sizeof def);
        printf("  --%s%s\n      %s", o->name, arg, o->help);
        if (o->required)
            printf(" (required)");
        else if (o->type != MMS_OPT_FLAG && def[0])
            printf(" [default: %s]", def);
        if (o->type == MMS_OPT_STRLIST) printf(" (repeatable)");
        printf("\n");
    }
    printf("  --help\n      show this help\n");
}

static mms_status set_value(const char *command, const mms_opt_t *o, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case MMS_OPT_FLAG: *(int *)o->dest = 1; return MMS_OK;
    case MMS_OPT_INT: {
        long x = strtol(v, &end, 10);
        MMS_CHECK(errno == 0 && end != v && *end == '\0' && x >= -2147483647L && x <= 2147483647L,
                  MMS_ERR_ARG, "%s: --%s expects an integer, got '%s'", command, o->name, v);
        MMS_CHECK(!o->has_range || (x >= o->min && x <= o->max), MMS_ERR_ARG,
                  "%s: --%s must be in [%g, %g], got %ld", command, o->name, o->min, o->max, x);
        *(int *)o->dest = (int)x;
        return MMS_OK;
    }
    case MMS_OPT_INT64: {
        long long x = strtoll(v, &end, 10);
        MMS_CHECK(errno == 0 && end != v && *end == '\0', MMS_ERR_ARG,
                  "%s: --%s expects an integer, got '%s'", command, o->name, v);
        MMS_CHECK(!o->has_range || ((double)x >= o->min && (double)x <= o->max), MMS_ERR_ARG,
                  "%s: --%s must be in [%g, %g], got %lld", command, o->name, o->min, o->max, x);
        *(int64_t *)o->dest = x;
        return MMS_OK;
    }
    case MMS_OPT_DOUBLE: {
        double x = strtod(v, &end);
        MMS_CHECK(errno == 0 && end != v && *end == '\0' && isfinite(x), MMS_ERR_ARG,
                  "%s: --%s expects a number, got '%s'", command, o->name, v);
        MMS_CHECK(!o->has_range || (x >= o->min && x <= o->max), MMS_ERR_ARG,
                  "%s: --%s must be in [%g, %g], got %g", command, o->name, o->min, o->max, x);
        *(double *)o->dest = x;
        return MMS_OK;
    }
    case MMS_OPT_STR: *(const char **)o->dest = v; return MMS_OK;
    case MMS_OPT_STRLIST: {
        mms_strlist_t *l = o->dest;
        MMS_CHECK(l->n < MMS_STRLIST_MAX, MMS_ERR_ARG, "%s: --%s given more than %d times", command,
                  o->name, MMS_STRLIST_MAX);
        l->v[l->n++] = v;
        return MMS_OK;
    }
    }
    return MMS_ERR_INTERNAL;
}

mms_status mms_opts_parse(const char *command, const char *summary, const mms_opt_t *opts,
                          int nopts, int argc, char **argv, int *help_shown) {
    *help_shown = 0;
    int seen[256] = {0};
    MMS_CHECK(nopts <= 256, MMS_ERR_INTERNAL, "too many options");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            mms_opts_usage(command, summary, opts, nopts);
            *help_shown = 1;
            return MMS_OK;
        }
        MMS_CHECK(a[0] == '-' && a[1] == '-' && a[2], MMS_ERR_ARG,
                  "%s: unexpected argument '%s' (see mmsage %s --help)", command, a, command);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        int found = -1;
        for (int j = 0; j < nopts; j++)
            if (strlen(opts[j].name) == nl && !strncmp(opts[j].name, name, nl)) found = j;
        MMS_CHECK(found >= 0, MMS_ERR_ARG, "%s: unknown option '--%.*s' (see mmsage %s --help)",
                  command, (int)nl, name, command);
        const mms_opt_t *o = &opts[found];
        const char *val = NULL;
        if (o->type == MMS_OPT_FLAG) {
            MMS_CHECK(!eq, MMS_ERR_ARG, "%s: --%s takes no value", command, o->name);
        } else if (eq) {
            val = eq + 1;
        } else {
            MMS_CHECK(i + 1 < argc, MMS_ERR_ARG, "%s: --%s needs a value", command, o->name);
            val = argv[++i];
        }
        MMS_CALL(set_value(command, o, val));
        seen[found] = 1;
        if (!o->help) { /* an old name: say the new one, and count it as given */
            for (int j = 0; j < nopts; j++)
                if (j != found && opts[j].dest == o->dest && opts[j].help) {
                    mms_log_warn("%s: --%s is an old name of --%s (it still works)", command,
                                 o->name, opts[j].name);
                    seen[j] = 1;
                }
        }
    }
    for (int j = 0; j < nopts; j++) {
        int given = seen[j];
        if (opts[j].type == MMS_OPT_STRLIST) given = ((mms_strlist_t *)opts[j].dest)->n > 0;
        MMS_CHECK(!opts[j].required || given, MMS_ERR_ARG,
                  "%s: missing required option --%s (%s)", command, opts[j].name, opts[j].help);
    }
    return MMS_OK;
}

void mms_opts_echo(const char *command, const mms_opt_t *opts, int nopts) {
    char line[4096];
    size_t used = (size_t)snprintf(line, sizeof line, "mmsage %s", command);
    for (int i = 0; i < nopts && used < sizeof line; i++) {
        if (!opts[i].help) continue; /* an old name: its value shows under the new one */
        char v[512];
        fmt_value(&opts[i], v, sizeof v);
        if (opts[i].type == MMS_OPT_FLAG && !*(int *)opts[i].dest) continue;
        if (opts[i].type == MMS_OPT_STR && !*(const char **)opts[i].dest) continue;
        if (opts[i].type == MMS_OPT_STRLIST && ((mms_strlist_t *)opts[i].dest)->n == 0) continue;
        used += (size_t)snprintf(line + used, sizeof line - used, " --%s%s%s", opts[i].name,
                                 opts[i].type == MMS_OPT_FLAG ? "" : " ",
                                 opts[i].type == MMS_OPT_FLAG ? "" : v);
    }
    mms_log_info("%s", line);
}

const char *mms_opts_peek(const char *name, int argc, char **argv) {
    size_t nl = strlen(name);
    const char *v = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) || strncmp(a + 2, name, nl)) continue;
        if (a[2 + nl] == '=')
            v = a + 3 + nl;
        else if (a[2 + nl] == '\0' && i + 1 < argc)
            v = argv[++i];
    }
    return v; /* the last one wins, as for any option */
}
