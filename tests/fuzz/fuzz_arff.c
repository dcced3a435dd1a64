/* fuzz_arff.c: the Mulan ARFF reader, label XML reader, schema and row
 * conversion on in-memory bytes (nothing touches the file system). An input is
 * an ARFF, optionally followed by a line "%%XML" (a comment to the ARFF reader)
 * and a Mulan label XML; with the XML, every row is also converted to features
 * and tags as the importer does. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "import_mulan.h"

#define MARK "\n%%XML"
#define MAX_ROWS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *d = (const char *)data;
    const char *m = memmem(d, size, MARK, strlen(MARK));
    size_t alen = m ? (size_t)(m - d) : size;
    mms_mulan_labels_t l;
    int have_l = 0;
    if (m) {
        const char *x = m + strlen(MARK), *end = d + size;
        while (x < end && (*x == '\r' || *x == '\n')) x++;
        have_l = mms_mulan_labels_parse("fuzz.xml", x, size - (size_t)(x - d), &l) == MMS_OK;
    }
    mms_arff_t *a = NULL;
    if (mms_arff_open_mem("fuzz.arff", d, alen, &a) != MMS_OK) {
        if (have_l) mms_mulan_labels_free(&l);
        return 0;
    }
    (void)mms_arff_same_header(a, a);
    mms_mulan_schema_t s;
    int have_s = have_l && mms_mulan_schema_build(a, &l, "fuzz.xml", &s) == MMS_OK;
    int32_t n = mms_arff_nattr(a);
    double *v = malloc((size_t)n * sizeof *v);
    float *feat = have_s ? malloc((size_t)s.nfeat * sizeof *feat + 1) : NULL;
    const char **tags = have_s ? malloc((size_t)s.nlabels * sizeof *tags + 1) : NULL;
    for (int r = 0; v && r < MAX_ROWS; r++) {
        int got = 0;
        if (mms_arff_next(a, v, &got) != MMS_OK || !got) break;
        int nt;
        if (have_s && feat && tags) (void)mms_mulan_row(&s, a, v, feat, tags, &nt);
    }
    free(v);
    free(feat);
    free(tags);
    if (have_s) mms_mulan_schema_free(&s);
    if (have_l) mms_mulan_labels_free(&l);
    mms_arff_close(&a);
    return 0;
}
