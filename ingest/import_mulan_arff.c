/* import_mulan_arff.c: the streaming Weka ARFF reader of import_mulan.h
 * (mms_arff_*): the header (@relation, @attribute, @data) on open, then one
 * dense or sparse data row per call, every error naming "file:line".
 *
 * It works on lines from a FILE (a real file, or fmemopen over bytes for tests
 * and fuzzing), so the same code runs in both cases and only one line is held
 * at a time. Tokens are unquoted in place inside the line buffer (unescaped
 * text is never longer than its escaped form). It does not build Weka's full
 * data model: every value becomes a double. Does not: know which attributes
 * are labels (import_mulan.c) or read the label XML (import_mulan_xml.c).
 */
#define _GNU_SOURCE
#include "import_mulan.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "import_mulan_internal.h"
#include "mms_array.h"
#include "mms_fs.h"
#include "mms_strmap.h"

/* Upper bound on attributes: far above any Mulan data set, keeps a hostile
 * header from asking for a giant row buffer. */
#define ARFF_MAX_ATTR (1 << 24)

struct mms_arff {
    FILE *f;
    int own_f;
    char *name;
    char *relation;
    mms_arff_attr_t *attr;
    int32_t nattr;
    size_t cap; /* of attr */
    mms_strmap_t *byname; /* attribute name -> index */
    char *buf;            /* current line, NUL-terminated */
    size_t bufcap;
    int64_t line;
    int64_t rows;
};

/* ------------------------------------------------------------ utilities */

static char *skip_ws(char *p) {
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

/* Read the next line into a->buf. *got = 0 at end of file. */
static mms_status read_line(mms_arff_t *a, int *got) {
    errno = 0;
    ssize_t n = getline(&a->buf, &a->bufcap, a->f);
    if (n < 0) {
        MMS_CHECK(!ferror(a->f), MMS_ERR_IO, "%s:%lld: read error: %s", a->name,
                  (long long)a->line + 1, strerror(errno));
        *got = 0;
        return MMS_OK;
    }
    a->line++;
    MMS_CHECK(memchr(a->buf, '\0', (size_t)n) == NULL, MMS_ERR_FORMAT,
              "%s:%lld: line contains a NUL byte (not a text ARFF file?)", a->name,
              (long long)a->line);
    while (n > 0 && (a->buf[n - 1] == '\n' || a->buf[n - 1] == '\r')) a->buf[--n] = '\0';
    if (a->line == 1 && n >= 3 && !memcmp(a->buf, "\xEF\xBB\xBF", 3)) /* UTF-8 BOM */
        memmove(a->buf, a->buf + 3, (size_t)n - 2);
    *got = 1;
    return MMS_OK;
}

/* Value of 4 hex digits at s, or -1 (stops at a NUL, never reads past it). */
static long hex4(const char *s) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Read one token at *pp. Quoted ('...' or "..."): unescaped in place, *quoted = 1.
 * Bare: runs up to a character of stops (or the end), trailing blanks trimmed.
 * The token is (*tok, *len), not NUL-terminated; *pp moves past it. */
static mms_status read_token(const mms_arff_t *a, char **pp, const char *stops, const char *what,
                             char **tok, size_t *len, int *quoted) {
    char *p = *pp;
    if (*p == '\'' || *p == '"') {
        char q = *p, *w = p, *r = p + 1;
        for (;;) {
            MMS_CHECK(*r, MMS_ERR_FORMAT, "%s:%lld: unterminated quoted %s (missing closing %c)",
                      a->name, (long long)a->line, what, q);
            if (*r == q) {
                r++;
                break;
            }
            if (*r == '\\' && r[1]) {
                r++;
                char c = *r++;
                if (c == 'n')
                    *w++ = '\n';
                else if (c == 't')
                    *w++ = '\t';
                else if (c == 'r')
                    *w++ = '\r';
                else if (c == 'u' && hex4(r) >= 0) {
                    long cp = hex4(r);
                    r += 4;
                    if (cp >= 0xD800 && cp <= 0xDBFF && r[0] == '\\' && r[1] == 'u' &&
                        hex4(r + 2) >= 0xDC00 && hex4(r + 2) <= 0xDFFF) { /* UTF-16 pair */
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(r + 2) - 0xDC00);
                        r += 6;
                    }
                    MMS_CHECK(cp != 0 && (cp < 0xD800 || cp > 0xDFFF), MMS_ERR_FORMAT,
                              "%s:%lld: quoted %s contains \\u%04lx (NUL or an unpaired "
                              "surrogate)",
                              a->name, (long long)a->line, what, cp);
                    w += put_utf8(w, (unsigned)cp);
                } else {
                    *w++ = c; /* \\ \' \" \% and any other escaped character */
                }
                continue;
            }
            *w++ = *r++;
        }
        *tok = p;
        *len = (size_t)(w - p);
        *quoted = 1;
        *pp = r;
        return MMS_OK;
    }
    char *s = p;
    while (*p && !strchr(stops, *p)) p++;
    char *e = p;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    *tok = s;
    *len = (size_t)(e - s);
    *quoted = 0;
    *pp = p;
    return MMS_OK;
}

/* Strict decimal number in s[0..len): 1 = ok, 0 = not a number, -1 = out of range. */
static int parse_num(const char *s, size_t len, double *out) {
    char tmp[72];
    if (len == 0 || len >= sizeof tmp) return 0;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    const char *p = tmp;
    if (*p == '+' || *p == '-') p++;
    int digits = 0;
    while (isdigit((unsigned char)*p)) p++, digits++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) p++, digits++;
    }
    if (!digits) return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return 0;
        while (isdigit((unsigned char)*p)) p++;
    }
    if (*p) return 0;
    double v = strtod(tmp, NULL);
    if (!isfinite(v)) return -1;
    *out = v;
    return 1;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Match "@keyword" at p (case-insensitive, then a blank or the end). */
static int is_keyword(const char *p, const char *kw) {
    size_t n = strlen(kw);
    return p[0] == '@' && !strncasecmp(p + 1, kw, n) &&
           (p[1 + n] == '\0' || p[1 + n] == ' ' || p[1 + n] == '\t' || p[1 + n] == '%');
}

static int at_line_end(const char *p) { return *p == '\0' || *p == '%'; }

/* ---------------------------------------------------------------- header */

static mms_status add_attribute(mms_arff_t *a, char *p) {
    p = skip_ws(p);
    MMS_CHECK(!at_line_end(p), MMS_ERR_FORMAT, "%s:%lld: @attribute without a name", a->name,
              (long long)a->line);
    char *tok;
    size_t len;
    int quoted;
    MMS_CALL(read_token(a, &p, " \t{%", "attribute name", &tok, &len, &quoted));
    MMS_CHECK(len > 0, MMS_ERR_FORMAT, "%s:%lld: empty attribute name", a->name,
              (long long)a->line);
    MMS_CHECK(a->nattr < ARFF_MAX_ATTR, MMS_ERR_FORMAT, "%s:%lld: more than %d attributes", a->name,
              (long long)a->line, ARFF_MAX_ATTR);
    MMS_CALL(mms_grow(&a->attr, sizeof *a->attr, (size_t)a->nattr + 1, &a->cap));
    int inserted;
    int64_t first;
    MMS_CALL(mms_strmap_put(a->byname, tok, len, a->nattr, &inserted, &first));
    MMS_CHECK(inserted, MMS_ERR_FORMAT,
              "%s:%lld: duplicate attribute name '%.*s' (first declared on line %lld)", a->name,
              (long long)a->line, show_len(len), tok, (long long)a->attr[first].line);
    mms_arff_attr_t *at = &a->attr[a->nattr];
    memset(at, 0, sizeof *at);
    at->line = a->line;
    at->name = strndup(tok, len);
    MMS_CHECK(at->name, MMS_ERR_NOMEM, "out of memory");
    a->nattr++; /* counted now so close() frees the name even if the type is bad */
    if (quoted) {
        MMS_CHECK(*p == ' ' || *p == '\t' || *p == '{' || at_line_end(p), MMS_ERR_FORMAT,
                  "%s:%lld: expected a blank after the quoted attribute name", a->name,
                  (long long)a->line);
    }
    p = skip_ws(p);
    MMS_CHECK(!at_line_end(p), MMS_ERR_FORMAT, "%s:%lld: attribute '%s' has no type", a->name,
              (long long)a->line, at->name);
    if (*p == '{') {
        at->kind = MMS_ARFF_NOMINAL;
        size_t tt = 0;
        at->type_text[tt++] = '{';
        size_t cap = 0; /* of at->values */
        p++;
        for (;;) {
            p = skip_ws(p);
            MMS_CHECK(!at_line_end(p), MMS_ERR_FORMAT,
                      "%s:%lld: nominal values of attribute '%s' are not closed by '}'", a->name,
                      (long long)a->line, at->name);
            MMS_CALL(read_token(a, &p, ",}%", "nominal value", &tok, &len, &quoted));
            MMS_CHECK(len > 0 || quoted, MMS_ERR_FORMAT,
                      "%s:%lld: empty nominal value in the declaration of '%s'", a->name,
                      (long long)a->line, at->name);
            double v;
            int r = parse_num(tok, len, &v);
            MMS_CHECK(r == 1, MMS_ERR_FORMAT,
                      "%s:%lld: attribute '%s': nominal value '%.*s' is %s; mmsage imports only "
                      "numeric attributes and nominal ones with numeric values such as {0,1}",
                      a->name, (long long)a->line, at->name, show_len(len), tok,
                      r == 0 ? "not a number" : "out of range");
            MMS_CALL(mms_grow(&at->values, sizeof *at->values, (size_t)at->nvalues + 1, &cap));
            if (at->nvalues == 0) at->sparse_zero = v; /* Weka: index 0 = first declared value */
            at->values[at->nvalues++] = v;
            /* short type text for messages */
            for (size_t k = 0; k < len && tt < sizeof at->type_text - 5; k++)
                at->type_text[tt++] = tok[k];
            p = skip_ws(p);
            if (*p == ',') {
                if (tt < sizeof at->type_text - 5) at->type_text[tt++] = ',';
                p++;
                continue;
            }
            MMS_CHECK(!at_line_end(p), MMS_ERR_FORMAT,
                      "%s:%lld: nominal values of attribute '%s' are not closed by '}'", a->name,
                      (long long)a->line, at->name);
            MMS_CHECK(*p == '}', MMS_ERR_FORMAT,
                      "%s:%lld: expected ',' or '}' in the nominal values of '%s', found '%.20s'",
                      a->name, (long long)a->line, at->name, p);
            p++;
            break;
        }
        if (tt >= sizeof at->type_text - 5) memcpy(at->type_text + tt, "...", 3), tt += 3;
        at->type_text[tt++] = '}';
        at->type_text[tt] = '\0';
        qsort(at->values, (size_t)at->nvalues, sizeof *at->values, cmp_double);
    } else {
        char *w = p;
        while (isalpha((unsigned char)*p)) p++;
        size_t wl = (size_t)(p - w);
        if ((wl == 7 && !strncasecmp(w, "numeric", 7)) || (wl == 4 && !strncasecmp(w, "real", 4)) ||
            (wl == 7 && !strncasecmp(w, "integer", 7))) {
            at->kind = MMS_ARFF_NUMERIC;
            at->sparse_zero = 0.0;
            snprintf(at->type_text, sizeof at->type_text, "numeric");
        } else if ((wl == 6 && !strncasecmp(w, "string", 6)) ||
                   (wl == 4 && !strncasecmp(w, "date", 4)) ||
                   (wl == 10 && !strncasecmp(w, "relational", 10))) {
            MMS_CHECK(0, MMS_ERR_FORMAT,
                      "%s:%lld: attribute '%s' has type %.*s; mmsage imports only numeric "
                      "attributes and nominal ones with numeric values such as {0,1}",
                      a->name, (long long)a->line, at->name, (int)wl, w);
        } else {
            MMS_CHECK(0, MMS_ERR_FORMAT,
                      "%s:%lld: attribute '%s' has unknown type '%.20s' (want numeric, real, "
                      "integer or {v1,v2,...})",
                      a->name, (long long)a->line, at->name, w);
        }
    }
    p = skip_ws(p);
    MMS_CHECK(at_line_end(p), MMS_ERR_FORMAT,
              "%s:%lld: unexpected text '%.20s' after the type of attribute '%s'", a->name,
              (long long)a->line, p, at->name);
    return MMS_OK;
}

static mms_status parse_header(mms_arff_t *a) {
    int saw_relation = 0;
    for (;;) {
        int got;
        MMS_CALL(read_line(a, &got));
        MMS_CHECK(got, MMS_ERR_FORMAT,
                  "%s:%lld: end of file before @data (%d attributes declared; the header must end "
                  "with a line '@data' followed by the rows)",
                  a->name, (long long)a->line, a->nattr);
        char *p = skip_ws(a->buf);
        if (at_line_end(p)) continue;
        if (is_keyword(p, "relation")) {
            MMS_CHECK(!saw_relation && a->nattr == 0, MMS_ERR_FORMAT,
                      "%s:%lld: @relation must come once, before the attributes", a->name,
                      (long long)a->line);
            saw_relation = 1;
            p = skip_ws(p + 9);
            char *tok;
            size_t len;
            int quoted;
            MMS_CALL(read_token(a, &p, "%", "relation name", &tok, &len, &quoted));
            a->relation = strndup(tok, len);
            MMS_CHECK(a->relation, MMS_ERR_NOMEM, "out of memory");
        } else if (is_keyword(p, "attribute")) {
            MMS_CALL(add_attribute(a, p + 10));
        } else if (is_keyword(p, "data")) {
            MMS_CHECK(a->nattr > 0, MMS_ERR_FORMAT, "%s:%lld: @data before any @attribute", a->name,
                      (long long)a->line);
            p = skip_ws(p + 5);
            MMS_CHECK(at_line_end(p), MMS_ERR_FORMAT,
                      "%s:%lld: unexpected text after @data (rows start on the next line)", a->name,
                      (long long)a->line);
            return MMS_OK;
        } else {
            MMS_CHECK(0, MMS_ERR_FORMAT,
                      "%s:%lld: expected @relation, @attribute or @data in the ARFF header, found "
                      "'%.30s'",
                      a->name, (long long)a->line, p);
        }
    }
}

mms_status mms_arff_open(FILE *f, const char *name, int own_f, mms_arff_t **out) {
    *out = NULL;
    mms_arff_t *a;
    mms_status s = mms_calloc(1, sizeof *a, &a);
    if (s != MMS_OK) {
        if (own_f) fclose(f);
        return s;
    }
    a->f = f;
    a->own_f = own_f;
    a->name = strdup(name ? name : "(arff)");
    MMS_CHECK_GOTO(s, fail, a->name, MMS_ERR_NOMEM, "out of memory");
    MMS_CALL_GOTO(s, fail, mms_strmap_create(1024, &a->byname));
    MMS_CALL_GOTO(s, fail, parse_header(a));
    *out = a;
    return MMS_OK;
fail:
    mms_arff_close(&a);
    return s;
}

mms_status mms_arff_open_path(const char *path, mms_arff_t **out) {
    *out = NULL;
    FILE *f;
    MMS_CALL(mms_fopen(path, "rb", &f));
    MMS_CALL(mms_arff_open(f, path, 1, out));
    return MMS_OK;
}

mms_status mms_arff_open_mem(const char *name, const void *data, size_t len, mms_arff_t **out) {
    *out = NULL;
    static char empty[1];
    /* "r" never writes to the buffer; fmemopen takes a non-const pointer. */
    FILE *f = fmemopen(len ? (void *)(uintptr_t)data : empty, len, "r");
    MMS_CHECK(f, MMS_ERR_IO, "%s: cannot read from memory: %s", name, strerror(errno));
    MMS_CALL(mms_arff_open(f, name, 1, out));
    return MMS_OK;
}

void mms_arff_close(mms_arff_t **ap) {
    if (!ap || !*ap) return;
    mms_arff_t *a = *ap;
    if (a->own_f && a->f) fclose(a->f);
    for (int32_t i = 0; i < a->nattr; i++) {
        free(a->attr[i].name);
        free(a->attr[i].values);
    }
    free(a->attr);
    mms_strmap_destroy(&a->byname);
    free(a->buf);
    free(a->relation);
    free(a->name);
    free(a);
    *ap = NULL;
}

int32_t mms_arff_nattr(const mms_arff_t *a) { return a->nattr; }
const mms_arff_attr_t *mms_arff_attr(const mms_arff_t *a, int32_t i) {
    return i >= 0 && i < a->nattr ? &a->attr[i] : NULL;
}
const char *mms_arff_name(const mms_arff_t *a) { return a->name; }
const char *mms_arff_relation(const mms_arff_t *a) { return a->relation ? a->relation : ""; }
int64_t mms_arff_line(const mms_arff_t *a) { return a->line; }
int64_t mms_arff_rows(const mms_arff_t *a) { return a->rows; }

int32_t mms_arff_find(const mms_arff_t *a, const char *name) {
    int64_t v;
    return mms_strmap_get(a->byname, name, strlen(name), &v) ? (int32_t)v : -1;
}

/* ------------------------------------------------------------------ rows */

/* Convert the token of attribute i to a number, checking nominal membership. */
static mms_status convert(const mms_arff_t *a, int32_t i, const char *tok, size_t len, int quoted,
                          double *out) {
    const mms_arff_attr_t *at = &a->attr[i];
    MMS_CHECK(quoted || !(len == 1 && tok[0] == '?'), MMS_ERR_FORMAT,
              "%s:%lld: missing value '?' for attribute %d ('%s'); mmsage needs every value "
              "(impute or drop the row first)",
              a->name, (long long)a->line, i, at->name);
    MMS_CHECK(quoted || len > 0, MMS_ERR_FORMAT, "%s:%lld: empty value for attribute %d ('%s')",
              a->name, (long long)a->line, i, at->name);
    double v = 0;
    int r = parse_num(tok, len, &v);
    MMS_CHECK(r == 1, MMS_ERR_FORMAT, "%s:%lld: value '%.*s' of attribute %d ('%s') is %s", a->name,
              (long long)a->line, show_len(len), tok, i, at->name,
              r == 0 ? "not a number" : "out of range");
    if (at->kind == MMS_ARFF_NOMINAL)
        MMS_CHECK(bsearch(&v, at->values, (size_t)at->nvalues, sizeof v, cmp_double),
                  MMS_ERR_FORMAT,
                  "%s:%lld: value '%.*s' of attribute %d ('%s') is not one of its declared values "
                  "%s",
                  a->name, (long long)a->line, show_len(len), tok, i, at->name, at->type_text);
    *out = v;
    return MMS_OK;
}

static mms_status parse_dense(mms_arff_t *a, char *p, double *values) {
    int64_t i = 0;
    for (;;) {
        p = skip_ws(p);
        MMS_CHECK(!(*p == '{' && i > 0), MMS_ERR_FORMAT,
                  "%s:%lld: instance weights ('{w}' after the values) are not supported", a->name,
                  (long long)a->line);
        char *tok;
        size_t len;
        int quoted;
        MMS_CALL(read_token(a, &p, ",%", "value", &tok, &len, &quoted));
        p = skip_ws(p);
        MMS_CHECK(*p == ',' || at_line_end(p), MMS_ERR_FORMAT,
                  "%s:%lld: unexpected text '%.20s' after value %lld", a->name, (long long)a->line,
                  p, (long long)i);
        if (i < a->nattr) MMS_CALL(convert(a, (int32_t)i, tok, len, quoted, &values[i]));
        i++;
        if (*p != ',') break;
        p++;
    }
    MMS_CHECK(i == a->nattr, MMS_ERR_FORMAT,
              "%s:%lld: row has %lld values, expected %d (one per attribute)%s", a->name,
              (long long)a->line, (long long)i, a->nattr,
              i < a->nattr ? "; is the file truncated?" : "");
    return MMS_OK;
}

static mms_status parse_sparse(mms_arff_t *a, char *p, double *values) {
    for (int32_t i = 0; i < a->nattr; i++) values[i] = a->attr[i].sparse_zero;
    p++; /* '{' */
    int64_t prev = -1;
    int first = 1;
    for (;;) {
        p = skip_ws(p);
        if (*p == '}') {
            MMS_CHECK(first, MMS_ERR_FORMAT, "%s:%lld: sparse row ends with ',' before '}'",
                      a->name, (long long)a->line);
            p++;
            break;
        }
        MMS_CHECK(!at_line_end(p), MMS_ERR_FORMAT,
                  "%s:%lld: unterminated sparse row (missing '}'); is the file truncated?", a->name,
                  (long long)a->line);
        MMS_CHECK(isdigit((unsigned char)*p), MMS_ERR_FORMAT,
                  "%s:%lld: expected an attribute index in the sparse row, found '%.20s'", a->name,
                  (long long)a->line, p);
        int64_t idx = 0;
        while (isdigit((unsigned char)*p)) {
            if (idx < ((int64_t)1 << 40)) idx = idx * 10 + (*p - '0');
            p++;
        }
        MMS_CHECK(idx < a->nattr, MMS_ERR_FORMAT,
                  "%s:%lld: sparse index %lld is out of range (the header declares %d attributes, "
                  "indices 0..%d)",
                  a->name, (long long)a->line, (long long)idx, a->nattr, a->nattr - 1);
        MMS_CHECK(idx > prev, MMS_ERR_FORMAT,
                  "%s:%lld: sparse indices must increase: index %lld follows %lld", a->name,
                  (long long)a->line, (long long)idx, (long long)prev);
        MMS_CHECK(!at_line_end(skip_ws(p)), MMS_ERR_FORMAT,
                  "%s:%lld: unterminated sparse row (missing '}'); is the file truncated?", a->name,
                  (long long)a->line);
        MMS_CHECK(*p == ' ' || *p == '\t', MMS_ERR_FORMAT,
                  "%s:%lld: expected a blank and a value after sparse index %lld", a->name,
                  (long long)a->line, (long long)idx);
        p = skip_ws(p);
        char *tok;
        size_t len;
        int quoted;
        MMS_CALL(read_token(a, &p, ",}%", "value", &tok, &len, &quoted));
        MMS_CALL(convert(a, (int32_t)idx, tok, len, quoted, &values[idx]));
        prev = idx;
        first = 0;
        p = skip_ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}') {
            p++;
            break;
        }
        MMS_CHECK(!at_line_end(p), MMS_ERR_FORMAT,
                  "%s:%lld: unterminated sparse row (missing '}'); is the file truncated?", a->name,
                  (long long)a->line);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: unexpected text '%.20s' after sparse index %lld",
                  a->name, (long long)a->line, p, (long long)idx);
    }
    p = skip_ws(p);
    if (*p == ',') {
        MMS_CHECK(*skip_ws(p + 1) != '{', MMS_ERR_FORMAT,
                  "%s:%lld: instance weights ('{w}' after the row) are not supported", a->name,
                  (long long)a->line);
    }
    MMS_CHECK(at_line_end(p), MMS_ERR_FORMAT,
              "%s:%lld: unexpected text '%.20s' after the sparse row", a->name, (long long)a->line,
              p);
    return MMS_OK;
}

mms_status mms_arff_next(mms_arff_t *a, double *values, int *got) {
    *got = 0;
    for (;;) {
        int more;
        MMS_CALL(read_line(a, &more));
        if (!more) return MMS_OK;
        char *p = skip_ws(a->buf);
        if (at_line_end(p)) continue;
        MMS_CHECK(*p != '@', MMS_ERR_FORMAT,
                  "%s:%lld: unexpected '%.20s' in the data section (after @data only rows may "
                  "follow)",
                  a->name, (long long)a->line, p);
        if (*p == '{')
            MMS_CALL(parse_sparse(a, p, values));
        else
            MMS_CALL(parse_dense(a, p, values));
        a->rows++;
        *got = 1;
        return MMS_OK;
    }
}

mms_status mms_arff_same_header(const mms_arff_t *a, const mms_arff_t *b) {
    MMS_CHECK(a->nattr == b->nattr, MMS_ERR_MISMATCH,
              "%s declares %d attributes but %s declares %d: the two ARFF headers must be the "
              "same",
              b->name, b->nattr, a->name, a->nattr);
    for (int32_t i = 0; i < a->nattr; i++) {
        const mms_arff_attr_t *x = &a->attr[i], *y = &b->attr[i];
        int same = !strcmp(x->name, y->name) && x->kind == y->kind && x->nvalues == y->nvalues &&
                   x->sparse_zero == y->sparse_zero;
        for (int32_t k = 0; same && k < x->nvalues; k++) same = x->values[k] == y->values[k];
        MMS_CHECK(same, MMS_ERR_MISMATCH,
                  "%s:%lld: attribute %d is '%.60s' %s but %s:%lld declares '%.60s' %s: the two "
                  "ARFF headers must be the same",
                  b->name, (long long)y->line, i, y->name, y->type_text, a->name,
                  (long long)x->line, x->name, x->type_text);
    }
    return MMS_OK;
}
