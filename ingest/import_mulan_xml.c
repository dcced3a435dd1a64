/* import_mulan_xml.c: the label names of a Mulan XML header
 * (mms_mulan_labels_parse): <label name="..."> elements at any depth, names
 * unescaped (the five XML entities and character references), duplicates
 * refused, every error naming "file:line".
 *
 * A scanner for this one shape of file, not an XML parser: comments, CDATA,
 * processing instructions, declarations and closing tags are skipped whole;
 * namespaces are ignored (a prefixed <x:label> is a label). Does not: read
 * the ARFF (import_mulan_arff.c) or match labels to attributes (import_mulan.c).
 */
#define _GNU_SOURCE
#include "import_mulan.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "import_mulan_internal.h"
#include "mms_array.h"
#include "mms_strmap.h"

/* ------------------------------------------------------------------- XML */

typedef struct {
    const char *name;
    const char *s;
    size_t n;
    size_t lpos; /* line counted up to here */
    int64_t line;
} xml_t;

/* Line number of position pos (pos never decreases between calls). */
static int64_t xml_line(xml_t *x, size_t pos) {
    for (; x->lpos < pos && x->lpos < x->n; x->lpos++)
        if (x->s[x->lpos] == '\n') x->line++;
    return x->line;
}

static int xml_starts(const xml_t *x, size_t p, const char *lit) {
    size_t l = strlen(lit);
    return p + l <= x->n && !memcmp(x->s + p, lit, l);
}

/* Position of lit at or after p, or (size_t)-1. */
static size_t xml_find(const xml_t *x, size_t p, const char *lit) {
    if (p > x->n) return (size_t)-1;
    const char *h = memmem(x->s + p, x->n - p, lit, strlen(lit));
    return h ? (size_t)(h - x->s) : (size_t)-1;
}

static int xml_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int xml_namechar(char c) {
    return isalnum((unsigned char)c) || c == '_' || c == ':' || c == '.' || c == '-' ||
           (unsigned char)c >= 0x80;
}

/* Decode an attribute value v[0..len) with entities into a new string. */
static mms_status xml_decode(xml_t *x, size_t at, const char *v, size_t len, char **out) {
    char *d;
    MMS_CALL(mms_malloc(len + 1, &d));
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        if (v[i] != '&') {
            d[w++] = v[i++];
            continue;
        }
        const char *semi = memchr(v + i, ';', len - i < 12 ? len - i : 12);
        size_t el = semi ? (size_t)(semi - (v + i)) - 1 : 0; /* entity name length */
        const char *e = v + i + 1;
        unsigned cp = 0;
        int ok = semi != NULL;
        if (ok && el == 3 && !memcmp(e, "amp", 3))
            cp = '&';
        else if (ok && el == 2 && !memcmp(e, "lt", 2))
            cp = '<';
        else if (ok && el == 2 && !memcmp(e, "gt", 2))
            cp = '>';
        else if (ok && el == 4 && !memcmp(e, "quot", 4))
            cp = '"';
        else if (ok && el == 4 && !memcmp(e, "apos", 4))
            cp = '\'';
        else if (ok && el >= 2 && e[0] == '#') {
            int hex = e[1] == 'x' || e[1] == 'X';
            size_t k = hex ? 2 : 1;
            ok = k < el;
            for (; ok && k < el; k++) {
                int dv = hex ? hexval(e[k]) : (isdigit((unsigned char)e[k]) ? e[k] - '0' : -1);
                ok = dv >= 0 && cp < 0x110000;
                cp = cp * (hex ? 16u : 10u) + (unsigned)(dv < 0 ? 0 : dv);
            }
            ok = ok && cp > 0 && cp < 0x110000 && (cp < 0xD800 || cp > 0xDFFF);
        } else {
            ok = 0;
        }
        if (!ok) {
            free(d);
            MMS_CHECK(0, MMS_ERR_FORMAT,
                      "%s:%lld: unknown or malformed entity '%.*s' in a label name", x->name,
                      (long long)xml_line(x, at), (int)(len - i < 12 ? len - i : 12), v + i);
        }
        w += (size_t)put_utf8(d + w, cp); /* an entity is never shorter than its encoding */
        i = (size_t)(semi - v) + 1;
    }
    d[w] = '\0';
    *out = d;
    return MMS_OK;
}

/* Append (name, line) to l (takes name, freed on failure). *cap is the
 * capacity of both l->names and l->lines: they grow together. */
static mms_status labels_push(mms_mulan_labels_t *l, size_t *cap, char *name, int64_t line) {
    size_t cn = *cap, cl = *cap;
    mms_status s = mms_grow(&l->names, sizeof *l->names, (size_t)l->n + 1, &cn);
    if (s == MMS_OK) s = mms_grow(&l->lines, sizeof *l->lines, (size_t)l->n + 1, &cl);
    if (s != MMS_OK) {
        free(name);
        return s;
    }
    *cap = cn; /* == cl: the same growth from the same capacity */
    l->names[l->n] = name;
    l->lines[l->n] = line;
    l->n++;
    return MMS_OK;
}

/* Parse the element starting at p (just after '<'); a <label> adds its name.
 * *end gets the position after the tag's '>'. */
static mms_status xml_element(xml_t *x, size_t p, mms_mulan_labels_t *l, size_t *cap,
                              mms_strmap_t *seen, size_t *end) {
    size_t tag = p - 1, q = p;
    while (q < x->n && xml_namechar(x->s[q])) q++;
    MMS_CHECK(q > p, MMS_ERR_FORMAT, "%s:%lld: stray '<' (not a tag)", x->name,
              (long long)xml_line(x, tag));
    const char *nm = x->s + p;
    size_t nl = q - p;
    const char *colon = memrchr(nm, ':', nl);
    if (colon) { /* namespace prefix */
        nl -= (size_t)(colon + 1 - nm);
        nm = colon + 1;
    }
    int is_label = nl == 5 && !memcmp(nm, "label", 5);
    char *name = NULL;
    int closed = 0;
    for (;;) {
        while (q < x->n && xml_space(x->s[q])) q++;
        if (q >= x->n) break;
        if (x->s[q] == '>') {
            q++;
            closed = 1;
            break;
        }
        if (x->s[q] == '/' && q + 1 < x->n && x->s[q + 1] == '>') {
            q += 2;
            closed = 1;
            break;
        }
        size_t an = q;
        while (q < x->n && xml_namechar(x->s[q])) q++;
        size_t anl = q - an;
        while (q < x->n && xml_space(x->s[q])) q++;
        if (anl == 0 || q >= x->n || x->s[q] != '=') {
            free(name);
            MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: malformed attribute in <%.*s> tag", x->name,
                      (long long)xml_line(x, tag), show_len(nl), nm);
        }
        q++;
        while (q < x->n && xml_space(x->s[q])) q++;
        if (q >= x->n || (x->s[q] != '"' && x->s[q] != '\'')) {
            free(name);
            MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: attribute value in <%.*s> tag is not quoted",
                      x->name, (long long)xml_line(x, tag), show_len(nl), nm);
        }
        char quote = x->s[q++];
        const char *close = memchr(x->s + q, quote, x->n - q);
        if (!close) {
            free(name);
            MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: unterminated attribute value in <%.*s> tag",
                      x->name, (long long)xml_line(x, tag), show_len(nl), nm);
        }
        size_t vlen = (size_t)(close - (x->s + q));
        if (is_label && anl == 4 && !memcmp(x->s + an, "name", 4)) {
            if (name) {
                free(name);
                MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: <label> has two name attributes", x->name,
                          (long long)xml_line(x, tag));
            }
            MMS_CALL(xml_decode(x, tag, x->s + q, vlen, &name));
        }
        q += vlen + 1;
    }
    if (!closed) {
        free(name);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: unterminated <%.*s> tag (missing '>')", x->name,
                  (long long)xml_line(x, tag), show_len(nl), nm);
    }
    *end = q;
    if (!is_label) return MMS_OK;
    int64_t line = xml_line(x, tag);
    MMS_CHECK(name, MMS_ERR_FORMAT, "%s:%lld: <label> element without a name attribute", x->name,
              (long long)line);
    if (!name[0]) {
        free(name);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: <label> with an empty name", x->name,
                  (long long)line);
    }
    int inserted;
    int64_t first;
    mms_status s = mms_strmap_put(seen, name, strlen(name), l->n, &inserted, &first);
    if (s == MMS_OK && !inserted) {
        mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                      "%s:%lld: duplicate label '%.60s' (first on line %lld)", x->name,
                      (long long)line, name, (long long)l->lines[first]);
        s = MMS_ERR_FORMAT;
    }
    if (s != MMS_OK) {
        free(name);
        return s;
    }
    return labels_push(l, cap, name, line);
}

mms_status mms_mulan_labels_parse(const char *name, const char *xml, size_t len,
                                  mms_mulan_labels_t *out) {
    memset(out, 0, sizeof *out);
    xml_t x = {name, xml, len, 0, 1};
    mms_strmap_t *seen;
    MMS_CALL(mms_strmap_create(512, &seen));
    size_t cap = 0;
    mms_status s = MMS_OK;
    size_t p = 0;
    while (p < len) {
        const char *lt = memchr(xml + p, '<', len - p);
        if (!lt) break;
        p = (size_t)(lt - xml);
        const char *close_lit = NULL;
        size_t skip = 0;
        if (xml_starts(&x, p, "<!--"))
            close_lit = "-->", skip = 4;
        else if (xml_starts(&x, p, "<![CDATA["))
            close_lit = "]]>", skip = 9;
        else if (xml_starts(&x, p, "<?"))
            close_lit = "?>", skip = 2;
        else if (xml_starts(&x, p, "<!") || xml_starts(&x, p, "</"))
            close_lit = ">", skip = 2;
        if (close_lit) {
            size_t e = xml_find(&x, p + skip, close_lit);
            MMS_CHECK_GOTO(s, fail, e != (size_t)-1, MMS_ERR_FORMAT,
                           "%s:%lld: unterminated %.*s... (no closing '%s')", name,
                           (long long)xml_line(&x, p), (int)skip, xml + p, close_lit);
            p = e + strlen(close_lit);
            continue;
        }
        MMS_CALL_GOTO(s, fail, xml_element(&x, p + 1, out, &cap, seen, &p));
    }
    MMS_CHECK_GOTO(s, fail, out->n > 0, MMS_ERR_FORMAT,
                   "%s: no <label name=\"...\"> elements found (is this a Mulan label XML?)", name);
    mms_strmap_destroy(&seen);
    return MMS_OK;
fail:
    mms_strmap_destroy(&seen);
    mms_mulan_labels_free(out);
    return s;
}

void mms_mulan_labels_free(mms_mulan_labels_t *l) {
    if (!l) return;
    for (int32_t i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    free(l->lines);
    memset(l, 0, sizeof *l);
}
