/* test_import_mulan.c: the ARFF reader, the Mulan label XML reader, the schema
 * and row conversion (all on in-memory bytes), the whole import on small files
 * in a scratch directory (including all-or-nothing output), and, when
 * $MMS_SHARED_DATA has Corel5k, that the dense and sparse test files give the
 * same 500 rows. */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_mulan.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_test.h"

static mms_status open_str(const char *name, const char *text, mms_arff_t **a) {
    return mms_arff_open_mem(name, text, strlen(text), a);
}

/* Open text and read every row; returns the first failure. */
static mms_status parse_all(const char *text, int64_t *rows) {
    mms_arff_t *a;
    mms_status s = open_str("t.arff", text, &a);
    if (s != MMS_OK) return s;
    double *v = calloc((size_t)mms_arff_nattr(a), sizeof *v);
    int got = 1;
    while (s == MMS_OK && got) s = mms_arff_next(a, v, &got);
    if (rows) *rows = mms_arff_rows(a);
    free(v);
    mms_arff_close(&a);
    return s;
}

static void test_dense(void) {
    const char *text = "\xEF\xBB\xBF% a comment\r\n"
                       "@RELATION 'my data'\r\n"
                       "\r\n"
                       "@Attribute f1 NUMERIC\r\n"
                       "@attribute f2 real   % trailing comment\r\n"
                       "@attribute f3 integer\r\n"
                       "@attribute lab {0,1}\r\n"
                       "@DATA\r\n"
                       "1.5, -2e-3 ,7,1\r\n"
                       "% comment between rows\r\n"
                       "\r\n"
                       "'3',\"4\",+5.,0 % inline comment\r\n";
    mms_arff_t *a;
    T_OK(open_str("d.arff", text, &a));
    if (!a) return;
    T_EQ_INT(mms_arff_nattr(a), 4);
    T_STREQ(mms_arff_relation(a), "my data");
    T_STREQ(mms_arff_attr(a, 1)->name, "f2");
    T_EQ_INT(mms_arff_attr(a, 2)->kind, MMS_ARFF_NUMERIC);
    T_EQ_INT(mms_arff_attr(a, 3)->kind, MMS_ARFF_NOMINAL);
    T_EQ_INT(mms_arff_attr(a, 3)->line, 7);
    T_STREQ(mms_arff_attr(a, 3)->type_text, "{0,1}");
    T_EQ_INT(mms_arff_find(a, "lab"), 3);
    T_EQ_INT(mms_arff_find(a, "nope"), -1);
    double v[4];
    int got;
    T_OK(mms_arff_next(a, v, &got));
    T_EQ_INT(got, 1);
    T_EQ_INT(mms_arff_line(a), 9);
    T_NEAR(v[0], 1.5, 0);
    T_NEAR(v[1], -2e-3, 1e-18);
    T_NEAR(v[2], 7, 0);
    T_NEAR(v[3], 1, 0);
    T_OK(mms_arff_next(a, v, &got));
    T_EQ_INT(got, 1);
    T_EQ_INT(mms_arff_line(a), 12);
    T_NEAR(v[0], 3, 0);
    T_NEAR(v[1], 4, 0);
    T_NEAR(v[2], 5, 0);
    T_NEAR(v[3], 0, 0);
    T_OK(mms_arff_next(a, v, &got));
    T_EQ_INT(got, 0);
    T_EQ_INT(mms_arff_rows(a), 2);
    mms_arff_close(&a);
    T_CHECK(a == NULL);
    mms_arff_close(&a); /* NULL is a no-op */
}

static void test_sparse(void) {
    const char *text = "@relation s\n"
                       "@attribute a numeric\n"
                       "@attribute b {1,0}\n" /* omitted = first declared value, as in Weka */
                       "@attribute c {0,1}\n"
                       "@attribute d numeric\n"
                       "@data\n"
                       "{0 2.5,2 1}\n"
                       "{}\n"
                       "  { 1 0 , 3 -1 }  % comment\n"
                       "{3 '4'}\n";
    mms_arff_t *a;
    T_OK(open_str("s.arff", text, &a));
    if (!a) return;
    double v[4];
    int got;
    T_OK(mms_arff_next(a, v, &got));
    T_NEAR(v[0], 2.5, 0);
    T_NEAR(v[1], 1, 0);
    T_NEAR(v[2], 1, 0);
    T_NEAR(v[3], 0, 0);
    T_OK(mms_arff_next(a, v, &got));
    T_EQ_INT(got, 1);
    T_NEAR(v[0], 0, 0);
    T_NEAR(v[1], 1, 0);
    T_NEAR(v[2], 0, 0);
    T_OK(mms_arff_next(a, v, &got));
    T_NEAR(v[1], 0, 0);
    T_NEAR(v[3], -1, 0);
    T_OK(mms_arff_next(a, v, &got));
    T_NEAR(v[3], 4, 0);
    T_OK(mms_arff_next(a, v, &got));
    T_EQ_INT(got, 0);
    T_EQ_INT(mms_arff_rows(a), 4);
    mms_arff_close(&a);
}

static void test_quoting(void) {
    const char *text = "@relation q\n"
                       "@attribute 'my attr\\'s' numeric\n"
                       "@attribute \"x y\"{0,1}\n"
                       "@attribute 'tab\\there' numeric\n"
                       "@attribute 'caf\\u00e9 100\\%' numeric\n"
                       "@attribute 'a,b' {'0', \"1\"}\n"
                       "@attribute '\\ud83d\\ude00' numeric\n"
                       "@data\n"
                       "1,0,2,3,'1',0\n";
    mms_arff_t *a;
    T_OK(open_str("q.arff", text, &a));
    if (!a) return;
    T_STREQ(mms_arff_attr(a, 0)->name, "my attr's");
    T_STREQ(mms_arff_attr(a, 1)->name, "x y");
    T_STREQ(mms_arff_attr(a, 2)->name, "tab\there");
    T_STREQ(mms_arff_attr(a, 3)->name, "caf\xc3\xa9 100%");
    T_STREQ(mms_arff_attr(a, 4)->name, "a,b");
    T_STREQ(mms_arff_attr(a, 5)->name, "\xf0\x9f\x98\x80"); /* U+1F600 from a UTF-16 pair */
    T_EQ_INT(mms_arff_find(a, "x y"), 1);
    double v[6];
    int got;
    T_OK(mms_arff_next(a, v, &got));
    T_NEAR(v[4], 1, 0);
    mms_arff_close(&a);
}

#define HDR "@relation e\n@attribute a numeric\n@attribute b {0,1}\n@attribute c numeric\n@data\n"

static void test_arff_errors(void) {
    int64_t rows;
    /* row errors: line 6 is the first data line */
    T_FAILS(parse_all(HDR "1,0\n", &rows), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:6: row has 2 values, expected 3");
    T_FAILS(parse_all(HDR "1,0,1\n1,0,1,1\n", &rows), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:7: row has 4 values, expected 3");
    T_EQ_INT(rows, 1);
    T_FAILS(parse_all(HDR "1,0,\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:6: empty value for attribute 2 ('c')");
    T_OK(parse_all(HDR "1,0,1\n0,0,0.", NULL)); /* "0." is a number; no final newline */
    T_FAILS(parse_all(HDR "{0 1,3 1}\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:6: sparse index 3 is out of range (the header declares 3 attributes");
    T_FAILS(parse_all(HDR "{0 1,2 1,1 1}\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:6: sparse indices must increase: index 1 follows 2");
    T_FAILS(parse_all(HDR "{0 1,0 1}\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("index 0 follows 0");
    T_FAILS(parse_all(HDR "{0 1,2 1\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:6: unterminated sparse row (missing '}')");
    T_FAILS(parse_all(HDR "{0 1,}\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:6: sparse row ends with ','");
    T_FAILS(parse_all(HDR "{0 1,x 1}\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("expected an attribute index");
    T_FAILS(parse_all(HDR "{0,1}\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("expected a blank and a value after sparse index 0");
    T_FAILS(parse_all(HDR "1,0,abc\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:6: value 'abc' of attribute 2 ('c') is not a number");
    T_FAILS(parse_all(HDR "1,0,0x10\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("is not a number");
    T_FAILS(parse_all(HDR "1,0,nan\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("'nan' of attribute 2 ('c') is not a number");
    T_FAILS(parse_all(HDR "1,0,1e999\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("is out of range");
    T_FAILS(parse_all(HDR "1,?,1\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:6: missing value '?' for attribute 1 ('b')");
    T_FAILS(parse_all(HDR "1,2,1\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:6: value '2' of attribute 1 ('b') is not one of its declared values {0,1}");
    T_FAILS(parse_all(HDR "{1 2}\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("not one of its declared values");
    T_FAILS(parse_all(HDR "1,0,'1\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:6: unterminated quoted value");
    T_FAILS(parse_all(HDR "1,0,'1'x\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("unexpected text 'x' after value 2");
    T_FAILS(parse_all(HDR "1,0,1,{2}\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:6: instance weights");
    T_FAILS(parse_all(HDR "{0 1}, {2}\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("instance weights");
    T_FAILS(parse_all(HDR "{0 1} x\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("unexpected text 'x' after the sparse row");
    T_FAILS(parse_all(HDR "1,0,1\n@attribute z numeric\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:7: unexpected '@attribute z numeric' in the data section");
    const char nul[] = HDR "1,0\0,1\n";
    mms_arff_t *a = NULL;
    T_OK(mms_arff_open_mem("n.arff", nul, sizeof nul - 1, &a));
    if (a) {
        double v[3];
        int got;
        T_FAILS(mms_arff_next(a, v, &got), MMS_ERR_FORMAT);
        T_MSG_HAS("n.arff:6: line contains a NUL byte");
        mms_arff_close(&a);
    }

    /* header errors */
    T_FAILS(parse_all("", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:0: end of file before @data (0 attributes declared");
    T_FAILS(parse_all("@relation x\n@attribute a numeric\n@attribute b numeric\n", NULL),
            MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:3: end of file before @data (2 attributes declared");
    T_FAILS(parse_all("@relation x\n@data\n1\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:2: @data before any @attribute");
    T_FAILS(parse_all("@relation x\n@attribute a numeric\n@attribute a {0,1}\n@data\n", NULL),
            MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:3: duplicate attribute name 'a' (first declared on line 2)");
    T_FAILS(parse_all("@relation x\n@attribute s string\n@data\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:2: attribute 's' has type string");
    T_FAILS(parse_all("@relation x\n@attribute d date 'yyyy'\n@data\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("has type date");
    T_FAILS(parse_all("@relation x\n@attribute q numerik\n@data\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:2: attribute 'q' has unknown type 'numerik'");
    T_FAILS(parse_all("@relation x\n@attribute c {red,green}\n@data\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:2: attribute 'c': nominal value 'red' is not a number");
    T_FAILS(parse_all("@relation x\n@attribute c {0,1\n@data\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:2: nominal values of attribute 'c' are not closed");
    T_FAILS(parse_all("@relation x\n@attribute c {0,,1}\n@data\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("empty nominal value");
    T_FAILS(parse_all("@relation x\n@attribute 'c numeric\n@data\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:2: unterminated quoted attribute name");
    T_FAILS(parse_all("@relation x\n@attribute 'a\\ud800' numeric\n@data\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:2: quoted attribute name contains \\ud800 (NUL or an unpaired surrogate)");
    T_FAILS(parse_all("@relation x\n@attribute 'a\\u0000' numeric\n@data\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("contains \\u0000");
    T_FAILS(parse_all("@relation x\n@attribute c\n@data\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:2: attribute 'c' has no type");
    T_FAILS(parse_all("@relation x\n@attribute c numeric junk\n@data\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("unexpected text 'junk'");
    T_FAILS(parse_all("@relation x\nhello\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:2: expected @relation, @attribute or @data");
    T_FAILS(parse_all("@relation x\n@attribute a numeric\n@relation y\n@data\n", NULL),
            MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:3: @relation must come once");
    T_FAILS(parse_all("@relation x\n@attribute a numeric\n@data 1\n", NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("t.arff:3: unexpected text after @data");
    /* a header with no rows parses; the importer refuses it later */
    T_OK(parse_all("@relation x\n@attribute a numeric\n@data\n", &rows));
    T_EQ_INT(rows, 0);
}

static const char *k_xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                           "<!-- a comment with <label name=\"ignored\"> inside -->\n"
                           "<labels xmlns=\"http://mulan.sourceforge.net/labels\">\n"
                           "<label name=\"b\"></label>\n"
                           "  <label  name = 'd&amp;e' >\n"
                           "    <label name=\"caf&#xe9;&#33;\"/>\n"
                           "  </label>\n"
                           "<ml:label xmlns:ml=\"x\" name=\"last\"></ml:label>\n"
                           "</labels>\n";

static void test_xml(void) {
    mms_mulan_labels_t l;
    T_OK(mms_mulan_labels_parse("l.xml", k_xml, strlen(k_xml), &l));
    T_EQ_INT(l.n, 4);
    if (l.n == 4) {
        T_STREQ(l.names[0], "b");
        T_STREQ(l.names[1], "d&e");
        T_STREQ(l.names[2], "caf\xc3\xa9!");
        T_STREQ(l.names[3], "last");
        T_EQ_INT(l.lines[0], 4);
        T_EQ_INT(l.lines[2], 6);
        T_EQ_INT(l.lines[3], 8);
    }
    mms_mulan_labels_free(&l);
    mms_mulan_labels_free(&l); /* twice is harmless */
    const char *skipped = "\xEF\xBB\xBF<!DOCTYPE labels>\n<labels>\n"
                          "<![CDATA[ <label name=\"not1\"/> ]]>\n"
                          "<!-- <label name=\"not2\"/> -->\n"
                          "<?pi <label name=\"not3\"/> ?>\n"
                          "<labelset name=\"not4\"/>\n"
                          "<label\n name=\"yes\"\n other='&lt;'></label>\n</labels>";
    T_OK(mms_mulan_labels_parse("l.xml", skipped, strlen(skipped), &l));
    T_EQ_INT(l.n, 1);
    if (l.n == 1) {
        T_STREQ(l.names[0], "yes");
        T_EQ_INT(l.lines[0], 7);
    }
    mms_mulan_labels_free(&l);
    struct {
        const char *xml, *msg;
    } bad[] = {
        {"<labels>\n<label></label>\n</labels>", "l.xml:2: <label> element without a name"},
        {"<labels>\n<label name=\"\"/>\n</labels>", "l.xml:2: <label> with an empty name"},
        {"<labels>\n<label name=\"a\"/>\n\n<label name=\"a\"/>\n</labels>",
         "l.xml:4: duplicate label 'a' (first on line 2)"},
        {"<labels>\n</labels>\n", "l.xml: no <label name=\"...\"> elements found"},
        {"", "no <label name="},
        {"<labels>\n<label name=\"a&foo;\"/>", "l.xml:2: unknown or malformed entity '&foo;'"},
        {"<labels>\n<label name=\"a&#0;\"/>", "unknown or malformed entity"},
        {"<labels>\n<!-- open", "l.xml:2: unterminated <!--"},
        {"<labels>\n<label name=\"a\"", "l.xml:2: unterminated <label> tag"},
        {"<labels>\n<label name=\"a", "l.xml:2: unterminated attribute value"},
        {"<labels>\n<label name=a>", "l.xml:2: attribute value in <label> tag is not quoted"},
        {"<labels>\n<label name=\"a\" name=\"b\">", "l.xml:2: <label> has two name attributes"},
        {"<labels>\n< label>", "l.xml:2: stray '<'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        T_FAILS(mms_mulan_labels_parse("l.xml", bad[i].xml, strlen(bad[i].xml), &l),
                MMS_ERR_FORMAT);
        T_MSG_HAS(bad[i].msg);
        T_EQ_INT(l.n, 0);
    }
}

static void test_schema_rows(void) {
    const char *text = "@relation m\n"
                       "@attribute f0 numeric\n"
                       "@attribute b {0,1}\n"
                       "@attribute f1 numeric\n"
                       "@attribute 'd&e' numeric\n"
                       "@attribute f2 {0,1}\n"
                       "@data\n"
                       "0.5,1,2,1,1\n"
                       "{0 3,4 1}\n"
                       "1,0,1,2,0\n"
                       "1e39,0,0,0,0\n";
    const char *xml = "<labels><label name=\"d&amp;e\"/>\n<label name=\"b\"/></labels>";
    mms_arff_t *a;
    T_OK(open_str("m.arff", text, &a));
    mms_mulan_labels_t l;
    T_OK(mms_mulan_labels_parse("m.xml", xml, strlen(xml), &l));
    mms_mulan_schema_t s;
    T_OK(mms_mulan_schema_build(a, &l, "m.xml", &s));
    T_EQ_INT(s.nfeat, 3);
    T_EQ_INT(s.nlabels, 2);
    T_EQ_INT(s.feat_attr[0], 0);
    T_EQ_INT(s.feat_attr[1], 2);
    T_EQ_INT(s.feat_attr[2], 4);
    T_EQ_INT(s.label_attr[0], 1); /* attribute order, not XML order */
    T_STREQ(s.label_name[0], "b");
    T_STREQ(s.label_name[1], "d&e");
    double v[5];
    float f[3];
    const char *tags[2];
    int got, nt;
    T_OK(mms_arff_next(a, v, &got));
    T_OK(mms_mulan_row(&s, a, v, f, tags, &nt));
    T_NEAR(f[0], 0.5, 0);
    T_NEAR(f[1], 2, 0);
    T_NEAR(f[2], 1, 0);
    T_EQ_INT(nt, 2);
    T_STREQ(tags[0], "b");
    T_STREQ(tags[1], "d&e");
    T_OK(mms_arff_next(a, v, &got));
    T_OK(mms_mulan_row(&s, a, v, f, tags, &nt));
    T_NEAR(f[0], 3, 0);
    T_NEAR(f[2], 1, 0);
    T_EQ_INT(nt, 0);
    T_OK(mms_arff_next(a, v, &got));
    T_FAILS(mms_mulan_row(&s, a, v, f, tags, &nt), MMS_ERR_FORMAT);
    T_MSG_HAS("m.arff:10: label 'd&e' (attribute 3) has value 2; a label must be 0 or 1");
    T_OK(mms_arff_next(a, v, &got));
    T_FAILS(mms_mulan_row(&s, a, v, f, tags, &nt), MMS_ERR_NUMERIC);
    T_MSG_HAS("m.arff:11: value 1e+39 of attribute 0 ('f0') does not fit float32");
    mms_mulan_schema_free(&s);
    mms_mulan_labels_free(&l);

    /* the XML names a label the ARFF lacks */
    xml = "<labels>\n<label name=\"b\"/>\n<label name=\"zz\"/>\n</labels>";
    T_OK(mms_mulan_labels_parse("m.xml", xml, strlen(xml), &l));
    T_FAILS(mms_mulan_schema_build(a, &l, "m.xml", &s), MMS_ERR_MISMATCH);
    T_MSG_HAS("m.xml:3: label 'zz' is not an attribute of m.arff");
    mms_mulan_labels_free(&l);
    mms_arff_close(&a);

    /* every attribute a label; a label that cannot be a tag */
    T_OK(
        open_str("m.arff", "@relation m\n@attribute 'a|b' {0,1}\n@attribute c {0,1}\n@data\n", &a));
    xml = "<labels><label name=\"c\"/></labels>";
    T_OK(mms_mulan_labels_parse("m.xml", xml, strlen(xml), &l));
    T_OK(mms_mulan_schema_build(a, &l, "m.xml", &s));
    mms_mulan_schema_free(&s);
    mms_mulan_labels_free(&l);
    xml = "<labels><label name=\"c\"/><label name=\"a|b\"/></labels>";
    T_OK(mms_mulan_labels_parse("m.xml", xml, strlen(xml), &l));
    T_FAILS(mms_mulan_schema_build(a, &l, "m.xml", &s), MMS_ERR_FORMAT);
    T_MSG_HAS("m.arff:2: label attribute 'a|b' cannot be a catalog tag");
    mms_mulan_labels_free(&l);
    mms_arff_close(&a);
    T_OK(open_str("m.arff", "@relation m\n@attribute a {0,1}\n@attribute c {0,1}\n@data\n", &a));
    xml = "<labels><label name=\"c\"/><label name=\"a\"/></labels>";
    T_OK(mms_mulan_labels_parse("m.xml", xml, strlen(xml), &l));
    T_FAILS(mms_mulan_schema_build(a, &l, "m.xml", &s), MMS_ERR_FORMAT);
    T_MSG_HAS("all 2 attributes of m.arff are labels");
    mms_mulan_labels_free(&l);
    mms_arff_close(&a);
}

static void test_same_header(void) {
    mms_arff_t *a, *b;
    T_OK(open_str("a.arff", "@relation a\n@attribute x numeric\n@attribute y {0,1}\n@data\n", &a));
    T_OK(
        open_str("b.arff", "@relation b\n\n@attribute x numeric\n@attribute y {0,1}\n@data\n", &b));
    T_OK(mms_arff_same_header(a, b)); /* relation names and line numbers may differ */
    mms_arff_close(&b);
    T_OK(open_str("b.arff", "@relation b\n@attribute x numeric\n@attribute z {0,1}\n@data\n", &b));
    T_FAILS(mms_arff_same_header(a, b), MMS_ERR_MISMATCH);
    T_MSG_HAS("b.arff:3: attribute 1 is 'z' {0,1} but a.arff:3 declares 'y' {0,1}");
    mms_arff_close(&b);
    T_OK(
        open_str("b.arff", "@relation b\n@attribute x numeric\n@attribute y numeric\n@data\n", &b));
    T_FAILS(mms_arff_same_header(a, b), MMS_ERR_MISMATCH);
    T_MSG_HAS("'y' numeric but a.arff:3 declares 'y' {0,1}");
    mms_arff_close(&b);
    T_OK(open_str("b.arff", "@relation b\n@attribute x numeric\n@attribute y {1,0}\n@data\n", &b));
    T_FAILS(mms_arff_same_header(a, b), MMS_ERR_MISMATCH); /* sparse default differs */
    mms_arff_close(&b);
    T_OK(open_str("b.arff", "@relation b\n@attribute x numeric\n@data\n", &b));
    T_FAILS(mms_arff_same_header(a, b), MMS_ERR_MISMATCH);
    T_MSG_HAS("b.arff declares 1 attributes but a.arff declares 2");
    mms_arff_close(&b);
    mms_arff_close(&a);
}

static void write_text(const char *dir, const char *name, const char *text, char *path) {
    snprintf(path, MMS_PATH_MAX, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* 1 if dir holds an entry whose name contains ".tmp." */
static int has_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL) found |= strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return found;
}

static void test_import(const char *dir) {
    char train[MMS_PATH_MAX], test[MMS_PATH_MAX], bad[MMS_PATH_MAX], xml[MMS_PATH_MAX],
        out[MMS_PATH_MAX];
    write_text(dir, "tr.arff",
               "@relation tr\n@attribute f0 numeric\n@attribute f1 {0,1}\n@attribute sky {0,1}\n"
               "@attribute 'sea water' {0,1}\n@attribute unused {0,1}\n@data\n"
               "{0 0.25,2 1,3 1}\n{1 1}\n0.5,0,0,1,0\n",
               train);
    write_text(dir, "te.arff",
               "@relation te\n@attribute f0 numeric\n@attribute f1 {0,1}\n@attribute sky {0,1}\n"
               "@attribute 'sea water' {0,1}\n@attribute unused {0,1}\n@data\n1,1,1,0,0\n",
               test);
    write_text(dir, "bad.arff",
               "@relation te\n@attribute f0 numeric\n@attribute f1 {0,1}\n@attribute sky {0,1}\n"
               "@attribute 'sea water' {0,1}\n@attribute unused {0,1}\n@data\n1,1,1,0,0\n{9 1}\n",
               bad);
    write_text(dir, "l.xml",
               "<labels><label name=\"sky\"/><label name=\"sea water\"/><label name=\"unused\"/>"
               "</labels>",
               xml);
    snprintf(out, sizeof out, "%s/cat", dir);
    mms_mulan_import_opts_t o = {train, test, xml, out, 0, 0};
    mms_mulan_import_stats_t st;
    T_OK(mms_import_mulan_run(&o, &st));
    T_EQ_INT(st.train, 3);
    T_EQ_INT(st.test, 1);
    T_EQ_INT(st.dim, 2);
    T_EQ_INT(st.nlabels, 3);
    T_EQ_INT(st.labels_used, 2);
    T_EQ_INT(st.assignments, 4);
    mms_catalog_t *c = NULL;
    T_OK(mms_catalog_open(out, &c));
    if (c) {
        T_EQ_INT(c->n, 4);
        T_EQ_INT(c->dim, 2);
        T_EQ_INT(c->n_split[MMS_SPLIT_TRAIN], 3);
        T_EQ_INT(c->n_split[MMS_SPLIT_TEST], 1);
        T_EQ_INT(c->ntags, 2);
        T_STREQ(c->ids[0], "train-000001");
        T_STREQ(c->ids[3], "test-000001");
        T_NEAR(c->x[0], 0.25, 0);
        T_NEAR(c->x[1], 0, 0);
        T_NEAR(c->x[3], 1, 0);
        T_NEAR(c->x[4], 0.5, 0);
        T_EQ_INT(c->tag_ptr[1] - c->tag_ptr[0], 2);
        T_EQ_INT(c->tag_ptr[2] - c->tag_ptr[1], 0);
        int32_t sea = mms_catalog_tag_lookup(c, "sea water");
        T_CHECK(sea >= 0);
        if (sea >= 0) T_EQ_INT(c->tag_count[sea], 2);
        mms_catalog_close(&c);
    }
    /* an existing output is refused without force, replaced with it */
    T_FAILS(mms_import_mulan_run(&o, NULL), MMS_ERR_EXISTS);
    T_MSG_HAS("already exists");
    T_CHECK(mms_path_exists(out));
    o.force = 1;
    o.test = NULL;
    T_OK(mms_import_mulan_run(&o, &st));
    T_EQ_INT(st.test, 0);
    T_OK(mms_catalog_open(out, &c));
    if (c) T_EQ_INT(c->n, 4 - 1);
    mms_catalog_close(&c);
    /* a bad row in the test file: nothing is left behind, even with force */
    T_OK(mms_rm_rf(out));
    o.test = bad;
    T_FAILS(mms_import_mulan_run(&o, NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("bad.arff:9: sparse index 9 is out of range");
    T_CHECK(!mms_path_exists(out));
    T_CHECK(!has_tmp(dir));
    /* test header differs from train */
    write_text(dir, "te2.arff",
               "@relation te\n@attribute f0 numeric\n@attribute f1 {0,1}\n@attribute sky {0,1}\n"
               "@attribute 'sea water' {0,1}\n@data\n1,1,1,0\n",
               bad);
    T_FAILS(mms_import_mulan_run(&o, NULL), MMS_ERR_MISMATCH);
    T_MSG_HAS("te2.arff declares 4 attributes but");
    T_CHECK(!mms_path_exists(out));
    /* no rows in the train file */
    write_text(dir, "empty.arff",
               "@relation tr\n@attribute f0 numeric\n@attribute f1 {0,1}\n@attribute sky {0,1}\n"
               "@attribute 'sea water' {0,1}\n@attribute unused {0,1}\n@data\n% nothing\n",
               train);
    o.test = test;
    T_FAILS(mms_import_mulan_run(&o, NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("empty.arff:8: no data rows after @data");
    T_CHECK(!mms_path_exists(out));
    T_CHECK(!has_tmp(dir));
    /* missing files are named */
    snprintf(train, sizeof train, "%s/missing.arff", dir);
    T_FAILS(mms_import_mulan_run(&o, NULL), MMS_ERR_IO);
    T_MSG_HAS("missing.arff");
}

/* The dense and sparse Corel5k test files must give the same rows. */
static void test_corel5k_dense_vs_sparse(void) {
    const char *d = mms_test_shared("corel5k/Corel5k-test.arff");
    if (!d) {
        fprintf(stderr, "test_import_mulan: $MMS_SHARED_DATA/corel5k absent, dense-vs-sparse "
                        "comparison skipped\n");
        return;
    }
    char dense[MMS_PATH_MAX], sparse[MMS_PATH_MAX];
    snprintf(dense, sizeof dense, "%s", d);
    snprintf(sparse, sizeof sparse, "%s", mms_test_shared("corel5k/Corel5k-test-sparse.arff"));
    mms_arff_t *a = NULL, *b = NULL;
    T_OK(mms_arff_open_path(dense, &a));
    T_OK(mms_arff_open_path(sparse, &b));
    if (!a || !b) {
        mms_arff_close(&a);
        mms_arff_close(&b);
        return;
    }
    T_EQ_INT(mms_arff_nattr(a), 873);
    T_OK(mms_arff_same_header(a, b));
    int32_t n = mms_arff_nattr(a);
    double *va = calloc((size_t)n, sizeof *va), *vb = calloc((size_t)n, sizeof *vb);
    int64_t differ = 0, ones = 0;
    for (;;) {
        int ga = 0, gb = 0;
        T_OK(mms_arff_next(a, va, &ga));
        T_OK(mms_arff_next(b, vb, &gb));
        T_EQ_INT(ga, gb);
        if (!ga || !gb) break;
        for (int32_t i = 0; i < n; i++) {
            differ += va[i] != vb[i];
            ones += va[i] == 1.0;
        }
    }
    T_EQ_INT(mms_arff_rows(a), 500);
    T_EQ_INT(mms_arff_rows(b), 500);
    T_EQ_INT(differ, 0);
    T_CHECK(ones > 500 * 4); /* features and labels are not all zero */
    free(va);
    free(vb);
    mms_arff_close(&a);
    mms_arff_close(&b);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET);
    const char *tmp = mms_test_tmpdir("import_mulan");
    char dir[MMS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", tmp);
    test_dense();
    test_sparse();
    test_quoting();
    test_arff_errors();
    test_xml();
    test_schema_rows();
    test_same_header();
    test_import(dir);
    test_corel5k_dense_vs_sparse();
    mms_rm_rf(dir);
    return mms_test_finish("test_import_mulan");
}
