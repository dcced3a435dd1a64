/* test_descriptor.c: the JPEG visual descriptor (common/mms_descriptor.h).
 * Synthetic images with known colours and edge orientations must peak in the
 * expected bins; vectors have unit norm and are bit-for-bit repeatable; JPEGs
 * written here with libjpeg (colour, grey, progressive, CMYK) decode; empty,
 * truncated, garbage and oversized inputs fail cleanly with a message naming
 * the input. With $MMS_SHARED_DATA, real COCO JPEGs are described and the rate
 * is printed (never asserted). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <jpeglib.h>

#include "mms_descriptor.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_test.h"

/* Encode w x h pixels of ncomp components (1 grey, 3 RGB, 4 CMYK) to a JPEG in
 * memory (malloc'd, caller frees). */
static unsigned char *encode(const uint8_t *px, int w, int h, int ncomp, int quality,
                             int progressive, unsigned long *len) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    unsigned char *buf = NULL;
    *len = 0;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &buf, len);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = ncomp;
    ci.in_color_space = ncomp == 1 ? JCS_GRAYSCALE : ncomp == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    if (progressive) jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)ci.next_scanline * (size_t)w * (size_t)ncomp);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    return buf;
}

static uint8_t *solid(int w, int h, int r, int g, int b) {
    uint8_t *p = malloc((size_t)w * (size_t)h * 3);
    for (int i = 0; i < w * h; i++) {
        p[3 * i] = (uint8_t)r;
        p[3 * i + 1] = (uint8_t)g;
        p[3 * i + 2] = (uint8_t)b;
    }
    return p;
}

/* Black/white stripes 4 pixels wide; kind 0: vertical (vary along x),
 * 1: horizontal, 2: along x+y (edges at 135 degrees, gradient at 45),
 * 3: along x-y (gradient at 135 degrees). */
static uint8_t *stripes(int w, int h, int kind) {
    uint8_t *p = malloc((size_t)w * (size_t)h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int t = kind == 0 ? x : kind == 1 ? y : kind == 2 ? x + y : x - y + 4 * h;
            uint8_t v = (t / 4) % 2 ? 230 : 20;
            memset(p + 3 * ((size_t)y * (size_t)w + (size_t)x), v, 3);
        }
    return p;
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

static double norm2(const float *v) {
    double s = 0;
    for (int i = 0; i < MMS_DESCRIPTOR_DIM; i++)
        s += (double)v[i] * v[i];
    return sqrt(s);
}

static int all_finite(const float *v) {
    for (int i = 0; i < MMS_DESCRIPTOR_DIM; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

static void check_solid(int r, int g, int b, int want_bin) {
    float v[MMS_DESCRIPTOR_DIM];
    uint8_t *p = solid(40, 30, r, g, b);
    T_OK(mms_descriptor_from_rgb(p, 40, 30, v));
    int got = argmax(v + MMS_DESC_COLOR_L0, MMS_DESC_COLOR_BINS);
    if (got != want_bin)
        fprintf(stderr, "colour (%d,%d,%d): bin %d, want %d\n", r, g, b, got, want_bin);
    T_EQ_INT(got, want_bin);
    /* one bin holds all the colour mass; flat image: no gradient at all */
    T_NEAR(v[MMS_DESC_COLOR_L0 + want_bin], 1.0 / sqrt(2.0), 1e-5);
    for (int c = 0; c < 4; c++)
        T_EQ_INT(argmax(v + MMS_DESC_COLOR_L1 + c * MMS_DESC_COLOR_BINS, MMS_DESC_COLOR_BINS),
                 want_bin);
    double g2 = 0;
    for (int i = MMS_DESC_GRAD_L0; i < MMS_DESCRIPTOR_DIM; i++)
        g2 += fabs(v[i]);
    T_NEAR(g2, 0.0, 0.0);
    T_NEAR(norm2(v), 1.0, 1e-5);
    free(p);
}

static void test_colours(void) {
    T_EQ_INT(mms_descriptor_dim(), MMS_DESCRIPTOR_DIM);
    T_EQ_INT(MMS_DESC_GRAD_L2 + 16 * MMS_DESC_ORIENT_BINS, MMS_DESCRIPTOR_DIM);
    /* bin = hue * 4 + (saturation >= 0.6) * 2 + (value >= 0.6); greys 48..51 */
    check_solid(255, 0, 0, 3);     /* red, hue 0 */
    check_solid(255, 255, 0, 11);  /* yellow, hue 60 -> bin 2 */
    check_solid(0, 255, 0, 19);    /* green, hue 120 -> bin 4 */
    check_solid(0, 0, 255, 35);    /* blue, hue 240 -> bin 8 */
    check_solid(100, 0, 0, 2);     /* dark red: value < 0.6 */
    check_solid(255, 180, 180, 1); /* pink: saturation < 0.6 */
    check_solid(0, 0, 0, 48);      /* black */
    check_solid(128, 128, 128, 50);
    check_solid(255, 255, 255, 51);

    /* hue between two bin centres is shared between them */
    float v[MMS_DESCRIPTOR_DIM];
    uint8_t *p = solid(8, 8, 255, 128, 0); /* hue ~30.1 degrees: bin 1, a little bin 2 */
    T_OK(mms_descriptor_from_rgb(p, 8, 8, v));
    T_EQ_INT(argmax(v, MMS_DESC_COLOR_BINS), 1 * 4 + 3);
    T_CHECK(v[2 * 4 + 3] > 0.0f && v[2 * 4 + 3] < v[1 * 4 + 3]);
    free(p);

    /* left half red, right half blue: the 2x2 cells see their own colour */
    int w = 64, h = 32;
    p = solid(w, h, 255, 0, 0);
    for (int y = 0; y < h; y++)
        for (int x = w / 2; x < w; x++) {
            uint8_t *q = p + 3 * (y * w + x);
            q[0] = 0;
            q[2] = 255;
        }
    T_OK(mms_descriptor_from_rgb(p, w, h, v));
    T_EQ_INT(argmax(v + MMS_DESC_COLOR_L1 + 0 * 52, 52), 3);  /* top-left */
    T_EQ_INT(argmax(v + MMS_DESC_COLOR_L1 + 1 * 52, 52), 35); /* top-right */
    T_EQ_INT(argmax(v + MMS_DESC_COLOR_L1 + 2 * 52, 52), 3);  /* bottom-left */
    T_EQ_INT(argmax(v + MMS_DESC_COLOR_L1 + 3 * 52, 52), 35);
    T_NEAR(v[MMS_DESC_COLOR_L0 + 3], v[MMS_DESC_COLOR_L0 + 35], 1e-6);
    free(p);
}

static void test_orientations(void) {
    const int want[4] = {0, 4, 2, 6}; /* bins of 22.5 degrees centred on 0 */
    const char *what[4] = {"vertical", "horizontal", "diagonal", "anti-diagonal"};
    for (int k = 0; k < 4; k++) {
        float v[MMS_DESCRIPTOR_DIM];
        uint8_t *p = stripes(96, 64, k);
        T_OK(mms_descriptor_from_rgb(p, 96, 64, v));
        int got = argmax(v + MMS_DESC_GRAD_L0, MMS_DESC_ORIENT_BINS);
        if (got != want[k]) fprintf(stderr, "%s stripes: bin %d, want %d\n", what[k], got, want[k]);
        T_EQ_INT(got, want[k]);
        /* the perpendicular orientation gets (almost) nothing */
        T_CHECK(v[MMS_DESC_GRAD_L0 + (want[k] + 4) % 8] < 0.05f * v[MMS_DESC_GRAD_L0 + want[k]]);
        for (int c = 0; c < 16; c++)
            T_EQ_INT(argmax(v + MMS_DESC_GRAD_L2 + c * 8, 8), want[k]);
        T_NEAR(norm2(v), 1.0, 1e-5);
        free(p);
    }
    /* stripes only in the top-left quarter: only those cells see gradients */
    int w = 64, h = 64;
    uint8_t *p = solid(w, h, 128, 128, 128), *s = stripes(w, h, 0);
    for (int y = 0; y < h / 2; y++)
        memcpy(p + 3 * y * w, s + 3 * y * w, (size_t)(w / 2) * 3);
    float v[MMS_DESCRIPTOR_DIM];
    T_OK(mms_descriptor_from_rgb(p, w, h, v));
    T_CHECK(v[MMS_DESC_GRAD_L1 + 0 * 8 + 0] > 0.1f);
    T_NEAR(v[MMS_DESC_GRAD_L1 + 3 * 8 + 0], 0.0, 0.0);  /* bottom-right 2x2 cell */
    T_CHECK(v[MMS_DESC_GRAD_L2 + 0 * 8 + 0] > 0.05f);   /* 4x4 cell (0,0) */
    T_NEAR(v[MMS_DESC_GRAD_L2 + 15 * 8 + 0], 0.0, 0.0); /* 4x4 cell (3,3) */
    free(p);
    free(s);
}

static void test_repeatable_and_sizes(void) {
    float a[MMS_DESCRIPTOR_DIM], b[MMS_DESCRIPTOR_DIM];
    int w = 300, h = 200;
    uint8_t *p = malloc((size_t)w * h * 3);
    uint32_t x = 12345;
    for (int i = 0; i < w * h * 3; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (uint8_t)(x >> 24);
    }
    T_OK(mms_descriptor_from_rgb(p, w, h, a));
    T_OK(mms_descriptor_from_rgb(p, w, h, b));
    T_CHECK(memcmp(a, b, sizeof a) == 0);
    T_CHECK(all_finite(a));
    T_NEAR(norm2(a), 1.0, 1e-5);
    free(p);
    /* tiny and very wide images (the latter box-filtered to <= 512) */
    p = solid(1, 1, 10, 200, 30);
    T_OK(mms_descriptor_from_rgb(p, 1, 1, a));
    T_NEAR(norm2(a), 1.0, 1e-5);
    free(p);
    p = stripes(1500, 90, 0);
    T_OK(mms_descriptor_from_rgb(p, 1500, 90, a));
    T_NEAR(norm2(a), 1.0, 1e-5);
    T_EQ_INT(argmax(a + MMS_DESC_GRAD_L0, 8), 0);
    free(p);
    T_FAILS(mms_descriptor_from_rgb((const uint8_t *)a, 0, 5, b), MMS_ERR_ARG);
    T_MSG_HAS("0 x 5");
}

static void test_jpeg_roundtrip(void) {
    float v[MMS_DESCRIPTOR_DIM], v2[MMS_DESCRIPTOR_DIM];
    unsigned long len;
    /* colour, baseline and progressive */
    uint8_t *p = solid(64, 48, 255, 0, 0);
    for (int prog = 0; prog < 2; prog++) {
        unsigned char *j = encode(p, 64, 48, 3, 95, prog, &len);
        T_OK(mms_descriptor_from_jpeg_mem(j, len, "red.jpg", v));
        T_EQ_INT(argmax(v, MMS_DESC_COLOR_BINS), 3);
        T_NEAR(norm2(v), 1.0, 1e-5);
        T_OK(mms_descriptor_from_jpeg_mem(j, len, "red.jpg", v2));
        T_CHECK(memcmp(v, v2, sizeof v) == 0);
        free(j);
    }
    free(p);
    /* greyscale JPEG (1 component) of horizontal stripes */
    int w = 80, h = 60;
    uint8_t *s = stripes(w, h, 1), *g = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++)
        g[i] = s[3 * i];
    unsigned char *j = encode(g, w, h, 1, 95, 0, &len);
    uint8_t *rgb;
    int ow, oh;
    T_OK(mms_descriptor_decode_jpeg(j, len, "grey.jpg", 0, &rgb, &ow, &oh));
    T_EQ_INT(ow, w);
    T_EQ_INT(oh, h);
    if (rgb) T_CHECK(rgb[0] == rgb[1] && rgb[1] == rgb[2]);
    free(rgb);
    T_OK(mms_descriptor_from_jpeg_mem(j, len, "grey.jpg", v));
    T_EQ_INT(argmax(v + MMS_DESC_GRAD_L0, 8), 4);
    free(j);
    free(s);
    free(g);
    /* Adobe CMYK (stored inverted: 255 = no ink): pure red = no cyan, no black */
    uint8_t *k = malloc(32 * 32 * 4);
    for (int i = 0; i < 32 * 32; i++) {
        k[4 * i] = 255;
        k[4 * i + 1] = 0;
        k[4 * i + 2] = 0;
        k[4 * i + 3] = 255;
    }
    j = encode(k, 32, 32, 4, 95, 0, &len);
    T_OK(mms_descriptor_from_jpeg_mem(j, len, "cmyk.jpg", v));
    T_EQ_INT(argmax(v, MMS_DESC_COLOR_BINS), 3);
    free(j);
    free(k);
    /* DCT scaling: a 1024 x 768 JPEG decodes at 1/4 for a 256 minimum side */
    p = stripes(1024, 768, 2);
    j = encode(p, 1024, 768, 3, 80, 0, &len);
    T_OK(mms_descriptor_decode_jpeg(j, len, "big.jpg", 256, &rgb, &ow, &oh));
    T_EQ_INT(ow, 256);
    T_EQ_INT(oh, 192);
    free(rgb);
    T_OK(mms_descriptor_decode_jpeg(j, len, "big.jpg", 0, &rgb, &ow, &oh));
    T_EQ_INT(ow, 1024);
    free(rgb);
    T_OK(mms_descriptor_from_jpeg_mem(j, len, "big.jpg", v));
    T_NEAR(norm2(v), 1.0, 1e-5);
    free(j);
    free(p);
}

/* Offset of the first SOFn marker's height field, or 0. */
static size_t sof_dims(const unsigned char *j, size_t len) {
    for (size_t i = 2; i + 9 < len; i++)
        if (j[i] == 0xFF && (j[i + 1] == 0xC0 || j[i + 1] == 0xC2)) return i + 5;
    return 0;
}

static void test_bad_jpegs(void) {
    float v[MMS_DESCRIPTOR_DIM];
    T_FAILS(mms_descriptor_from_jpeg_mem("", 0, "empty.jpg", v), MMS_ERR_FORMAT);
    T_MSG_HAS("empty.jpg");
    T_MSG_HAS("empty");
    const char *txt = "this is not a JPEG at all, just some text";
    T_FAILS(mms_descriptor_from_jpeg_mem(txt, strlen(txt), "text.jpg", v), MMS_ERR_FORMAT);
    T_MSG_HAS("text.jpg: not a valid JPEG: Not a JPEG file");

    unsigned long len;
    uint8_t *p = stripes(64, 64, 0);
    unsigned char *j = encode(p, 64, 64, 3, 90, 0, &len);
    /* truncated: half the bytes, and just the header */
    T_FAILS(mms_descriptor_from_jpeg_mem(j, len / 2, "half.jpg", v), MMS_ERR_FORMAT);
    T_MSG_HAS("half.jpg: not a valid JPEG: Premature end of JPEG file");
    T_FAILS(mms_descriptor_from_jpeg_mem(j, 4, "four.jpg", v), MMS_ERR_FORMAT);
    T_MSG_HAS("four.jpg");
    /* garbage in the entropy-coded data */
    unsigned char *bad = malloc(len);
    memcpy(bad, j, len);
    for (size_t i = len / 2; i < len - 2; i += 3)
        bad[i] = 0xFF;
    T_FAILS(mms_descriptor_from_jpeg_mem(bad, len, "garbled.jpg", v), MMS_ERR_FORMAT);
    T_MSG_HAS("garbled.jpg: not a valid JPEG");
    /* a header claiming 65000 x 65000 pixels is refused before any allocation */
    memcpy(bad, j, len);
    size_t at = sof_dims(bad, len);
    T_CHECK(at > 0);
    if (at) {
        bad[at] = bad[at + 2] = 0xFD;
        bad[at + 1] = bad[at + 3] = 0xE8;
        T_FAILS(mms_descriptor_from_jpeg_mem(bad, len, "huge.jpg", v), MMS_ERR_FORMAT);
        T_MSG_HAS("huge.jpg: cannot use this JPEG: image is 65000 x 65000 pixels");
    }
    free(bad);

    /* files: missing and empty */
    const char *dir = mms_test_tmpdir("descriptor");
    char path[MMS_PATH_MAX];
    T_OK(mms_path_join(path, sizeof path, dir, "missing.jpg"));
    T_FAILS(mms_descriptor_from_jpeg_file(path, v), MMS_ERR_IO);
    T_MSG_HAS("missing.jpg");
    T_OK(mms_path_join(path, sizeof path, dir, "empty.jpg"));
    T_OK(mms_write_file_atomic(path, "", 0));
    T_FAILS(mms_descriptor_from_jpeg_file(path, v), MMS_ERR_FORMAT);
    T_MSG_HAS(path);
    T_OK(mms_path_join(path, sizeof path, dir, "ok.jpg"));
    T_OK(mms_write_file_atomic(path, j, len));
    T_OK(mms_descriptor_from_jpeg_file(path, v));
    T_EQ_INT(argmax(v + MMS_DESC_GRAD_L0, 8), 0);
    mms_rm_rf(dir);
    free(j);
    free(p);
}

static void test_real_coco(void) {
    const char *dir = mms_test_shared("coco-subset/coco-tiny/val2017");
    if (!dir) {
        fprintf(stderr,
                "test_descriptor: no $MMS_SHARED_DATA/coco-subset: real JPEG checks skipped\n");
        return;
    }
    char d[MMS_PATH_MAX];
    strcpy(d, dir); /* both MMS_PATH_MAX */
    DIR *dd = opendir(d);
    T_CHECK(dd != NULL);
    if (!dd) return;
    struct dirent *e;
    int n = 0, ok = 0;
    double t0 = mms_now();
    float v[MMS_DESCRIPTOR_DIM];
    while ((e = readdir(dd)) != NULL && n < 40) {
        if (!strstr(e->d_name, ".jpg")) continue;
        char p[MMS_PATH_MAX];
        T_OK(mms_path_join(p, sizeof p, d, e->d_name));
        n++;
        if (mms_descriptor_from_jpeg_file(p, v) == MMS_OK && all_finite(v) &&
            fabs(norm2(v) - 1.0) < 1e-5)
            ok++;
        else
            fprintf(stderr, "real JPEG %s: %s\n", p, mms_error_message());
    }
    closedir(dd);
    double t = mms_now() - t0;
    T_CHECK(n > 0);
    T_EQ_INT(ok, n);
    fprintf(stderr, "test_descriptor: %d COCO JPEGs in %.3f s (%.0f images/s)\n", n, t, n / t);
    /* the one greyscale JPEG of the subset */
    const char *grey = mms_test_shared("coco-subset/coco-mini/val2017/000000431848.jpg");
    if (grey) {
        T_OK(mms_descriptor_from_jpeg_file(grey, v));
        T_CHECK(all_finite(v));
    }
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET); /* expected errors are checked, not shown */
    test_colours();
    test_orientations();
    test_repeatable_and_sizes();
    test_jpeg_roundtrip();
    test_bad_jpegs();
    test_real_coco();
    return mms_test_finish("test_descriptor");
}
