/* import_mulan.h: Mulan/MEKA multi-label data sets (ARFF + label XML) into a catalog.
 *
 * Three layers, each usable on its own (the unit tests and the fuzz target drive
 * the first two on in-memory bytes, without touching the file system):
 *   mms_arff_*          a streaming Weka ARFF reader: the header (@relation,
 *                       @attribute, @data) is parsed on open, then one data row
 *                       (dense "v1,v2,..." or sparse "{idx val,...}") per call.
 *                       Every error names "file:line".
 *   mms_mulan_labels_*  the label names of a Mulan XML header
 *                       (<labels><label name="..."></label>...</labels>).
 *   mms_mulan_schema_*  which ARFF attributes are labels (named in the XML) and
 *                       which are features (all others, in attribute order), and
 *                       the conversion of one parsed row to features + tags.
 *   mms_import_mulan_run  the whole import: train (and optional test) ARFF
 *                       streamed row by row into the catalog writer.
 *
 * What the ARFF reader accepts: numeric/real/integer attributes and nominal
 * attributes whose declared values are all numbers (Mulan's {0,1}); names and
 * values may be quoted with '...' or "..." (backslash escapes \\ \' \" \t \n \r
 * \uXXXX); '%' starts a comment outside quotes; keywords are case-insensitive.
 * In a sparse row an omitted attribute takes the value of index 0, as in Weka:
 * 0 for a numeric attribute, the first declared value for a nominal one.
 * What it refuses (with file:line): string/date/relational attributes,
 * non-numeric nominal values, missing values '?', instance weights, duplicate
 * attribute names, rows with the wrong number of values, sparse indices out of
 * range or not increasing, a header without @data.
 * Not done here: ARFF files compressed with gzip, XRFF, MEKA's "-C n" relation
 * option (use the Mulan XML to say which attributes are labels).
 *
 * Files: import_mulan_arff.c (mms_arff_*), import_mulan_xml.c
 * (mms_mulan_labels_*), import_mulan.c (mms_mulan_schema_*, mms_mulan_row,
 * mms_import_mulan_run); import_mulan_internal.h holds the text helpers the two
 * readers share.
 */
#ifndef MMS_IMPORT_MULAN_H
#define MMS_IMPORT_MULAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mms_status.h"

/* ------------------------------------------------------------------ ARFF */

typedef enum { MMS_ARFF_NUMERIC = 0, MMS_ARFF_NOMINAL = 1 } mms_arff_kind;

typedef struct {
    char *name; /* unquoted, unescaped */
    mms_arff_kind kind;
    int32_t nvalues;    /* nominal: number of declared values */
    double *values;     /* nominal: declared values, sorted ascending (for lookups) */
    double sparse_zero; /* value of the attribute when a sparse row omits it */
    char type_text[48]; /* "numeric" or "{0,1}" (shortened), for messages */
    int64_t line;       /* line of the @attribute declaration */
} mms_arff_attr_t;

typedef struct mms_arff mms_arff_t;

/* Parse the header of an ARFF read from f up to and including @data. name is
 * used in messages ("name:line: ..."). own_f = 1: the reader closes f. */
mms_status mms_arff_open(FILE *f, const char *name, int own_f, mms_arff_t **out);
/* Open the file at path (read with stdio, streamed). */
mms_status mms_arff_open_path(const char *path, mms_arff_t **out);
/* Parse bytes data[0..len) (borrowed: they must outlive the reader). */
mms_status mms_arff_open_mem(const char *name, const void *data, size_t len, mms_arff_t **out);
void mms_arff_close(mms_arff_t **a);

/* Read the next data row into values[0..nattr) (caller's buffer). *got = 1 on a
 * row, 0 at end of file. Blank and comment lines are skipped. */
mms_status mms_arff_next(mms_arff_t *a, double *values, int *got);

int32_t mms_arff_nattr(const mms_arff_t *a);
const mms_arff_attr_t *mms_arff_attr(const mms_arff_t *a, int32_t i);
const char *mms_arff_name(const mms_arff_t *a);
const char *mms_arff_relation(const mms_arff_t *a); /* "" if none */
/* Line of the last line read (the row just returned by mms_arff_next). */
int64_t mms_arff_line(const mms_arff_t *a);
/* Data rows returned so far. */
int64_t mms_arff_rows(const mms_arff_t *a);
/* Attribute index by name (-1 if none). */
int32_t mms_arff_find(const mms_arff_t *a, const char *name);

/* MMS_OK if b declares the same attributes as a (names, kinds, nominal values,
 * in the same order); otherwise MMS_ERR_MISMATCH naming both files and lines. */
mms_status mms_arff_same_header(const mms_arff_t *a, const mms_arff_t *b);

/* ------------------------------------------------------------ Mulan XML */

typedef struct {
    int32_t n;
    char **names;   /* n label names, unescaped, in document order (owned) */
    int64_t *lines; /* n: line of each <label> element */
} mms_mulan_labels_t;

/* Parse a Mulan label XML held in xml[0..len). name is used in messages. Nested
 * (hierarchical) labels are all labels. Fails on a <label> without a name, a
 * duplicate name, an unknown entity, an unterminated tag or comment, and on a
 * file with no labels. */
mms_status mms_mulan_labels_parse(const char *name, const char *xml, size_t len,
                                  mms_mulan_labels_t *out);
void mms_mulan_labels_free(mms_mulan_labels_t *l);

/* ---------------------------------------------------------- schema, rows */

typedef struct {
    int32_t nfeat, nlabels;
    int32_t *feat_attr;      /* nfeat: attribute index of each feature, ascending */
    int32_t *label_attr;     /* nlabels: attribute index of each label, ascending */
    const char **label_name; /* nlabels: borrowed from the ARFF reader's attributes */
} mms_mulan_schema_t;

/* Split a's attributes into labels (named in l; xml_name is the XML's name for
 * messages) and features. Fails if the XML names a label a lacks, a label name
 * cannot be a catalog tag, or no attribute is left for features. The schema
 * borrows a's attribute names: free it before closing a. */
mms_status mms_mulan_schema_build(const mms_arff_t *a, const mms_mulan_labels_t *l,
                                  const char *xml_name, mms_mulan_schema_t *out);
void mms_mulan_schema_free(mms_mulan_schema_t *s);

/* One parsed row (values from mms_arff_next on a) to feat[0..nfeat) float32 and
 * tags[0..nlabels) = names of the labels with value 1 (borrowed), *ntags of them.
 * Fails naming file:line on a label value other than 0/1 or a feature value that
 * does not fit float32. */
mms_status mms_mulan_row(const mms_mulan_schema_t *s, const mms_arff_t *a, const double *values,
                         float *feat, const char **tags, int *ntags);

/* --------------------------------------------------------------- import */

typedef struct {
    const char *train; /* required: rows get split "train" (or "val", below) */
    const char *test;  /* optional: rows get split "test" */
    const char *xml;   /* required */
    const char *out;   /* catalog directory */
    int force;
    double val_fraction; /* [0, 1): share of --train rows set aside as "val" (import_split.h) */
} mms_mulan_import_opts_t;

typedef struct {
    int64_t train, val, test; /* rows imported per split (train + val = rows of --train) */
    int32_t dim;         /* features */
    int32_t nlabels;     /* labels in the XML */
    int32_t labels_used; /* labels carried by at least one row */
    int64_t assignments; /* label values equal to 1 */
    double seconds;
} mms_mulan_import_stats_t;

/* Import: ids are "train-000001", "test-000001", ... (1-based row number within
 * each file; a train row set aside as val keeps its "train-" id); tags are the
 * labels with value 1. All-or-nothing: on any error the
 * output directory is not created. stats may be NULL. */
mms_status mms_import_mulan_run(const mms_mulan_import_opts_t *o, mms_mulan_import_stats_t *stats);

#endif
