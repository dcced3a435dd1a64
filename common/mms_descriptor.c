/* descriptor.c: JPEG decoding (libjpeg, no printing, no exit) and the
 * colour + gradient pyramid descriptor (see descriptor.h, docs/descriptor.md).
 *
 * Does: decode to RGB, reduce to the working size, histogram, normalise.
 * Does not: read image formats other than JPEG, or cache anything.
 */
#include "mms_descriptor.h"

#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "mms_fs.h"

/* No fused multiply-add: the same floats whatever the compiler and CPU (GCC
 * does not contract in -std=c11 mode and does not know this pragma). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define GRID 4 /* finest pyramid level: GRID x GRID cells */
#define NCELL (GRID * GRID)
#define NHUE 12
/* A cell whose mean gradient magnitude is well below this (luminance in [0,1],
 * central differences) has its orientation histogram shrunk towards zero, so
 * flat areas (sky, walls, JPEG noise) do not look like strong texture. */
#define GRAD_EPS 0.01
/* Cap on libjpeg's working memory (progressive files buffer all coefficients). */
#define JPEG_MAX_MEMORY (512L * 1024 * 1024)

int mms_descriptor_dim(void) { return MMS_DESCRIPTOR_DIM; }

/* ------------------------------------------------------------ histograms */

/* Raw sums per finest cell, combined into coarser cells before normalising. */
typedef struct {
    double col[NCELL][MMS_DESC_COLOR_BINS];  /* pixel weights per colour bin */
    double npix[NCELL];                      /* pixels in the cell */
    double ori[NCELL][MMS_DESC_ORIENT_BINS]; /* gradient magnitude per orientation */
    double mag[NCELL];                       /* total gradient magnitude */
} acc_t;

/* atan(t) for t in [0, 1]: odd polynomial fitted by least squares on Chebyshev
 * nodes (max error 1.3e-5 rad). Plain arithmetic, so identical everywhere,
 * unlike libm's atan2f whose last bits vary between versions and CPUs. */
static float atan01(float t) {
    float t2 = t * t;
    return t * (0.99987874f +
                t2 * (-0.33040557f + t2 * (0.18041268f + t2 * (-0.08540831f + t2 * 0.02093181f))));
}

#define PI_F 3.14159265f

/* Unsigned orientation of a non-zero gradient, in [0, pi], image axes (x right,
 * y down). pi may come out for angles just below it: the caller wraps. */
static float orientation(float gx, float gy) {
    if (gy < 0.0f || (gy == 0.0f && gx < 0.0f)) {
        gx = -gx;
        gy = -gy;
    }
    float ax = fabsf(gx);
    float a = ax >= gy ? atan01(gy / ax) : 0.5f * PI_F - atan01(ax / gy);
    return gx < 0.0f ? PI_F - a : a;
}

/* Colour bin(s) of one pixel: achromatic pixels (value < 0.2 or saturation <
 * 0.2) go to one of 4 grey bins by value; others to hue (12 bins of 30 degrees,
 * linear between the two nearest bin centres) x saturation (< 0.6, >= 0.6) x
 * value (< 0.6, >= 0.6). Integer tests on 0..255 avoid rounding at the edges. */
static void add_colour(double *col, int r, int g, int b) {
    int mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
    int mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
    int d = mx - mn;
    if (mx * 5 < 255 || d * 5 < mx) {
        col[MMS_DESC_GREY_BIN0 + (mx >> 6)] += 1.0;
        return;
    }
    float h6; /* hue in sixths of the circle, [0, 6) */
    if (mx == r) {
        h6 = (float)(g - b) / (float)d;
        if (h6 < 0.0f) h6 += 6.0f;
    } else if (mx == g) {
        h6 = 2.0f + (float)(b - r) / (float)d;
    } else {
        h6 = 4.0f + (float)(r - g) / (float)d;
    }
    float p = h6 * (NHUE / 6.0f);
    int b0 = (int)p;
    float f = p - (float)b0;
    if (b0 >= NHUE) b0 -= NHUE;
    int b1 = b0 + 1 == NHUE ? 0 : b0 + 1;
    int sv = (d * 5 >= mx * 3) * 2 + (mx >= 153);
    col[b0 * 4 + sv] += (double)(1.0f - f);
    col[b1 * 4 + sv] += (double)f;
}

/* Box-filter rgb down by an integer factor k (partial blocks at the right and
 * bottom edges average the pixels they have). */
static mms_status shrink(const uint8_t *rgb, int w, int h, int k, uint8_t **out, int *ow, int *oh) {
    int nw = (w + k - 1) / k, nh = (h + k - 1) / k;
    uint8_t *o;
    MMS_CALL(mms_malloc((size_t)nw * (size_t)nh * 3, &o));
    for (int y = 0; y < nh; y++)
        for (int x = 0; x < nw; x++) {
            int y1 = (y + 1) * k < h ? (y + 1) * k : h, x1 = (x + 1) * k < w ? (x + 1) * k : w;
            unsigned s[3] = {0, 0, 0}, n = 0;
            for (int yy = y * k; yy < y1; yy++)
                for (int xx = x * k; xx < x1; xx++) {
                    const uint8_t *p = rgb + 3 * ((size_t)yy * (size_t)w + (size_t)xx);
                    s[0] += p[0];
                    s[1] += p[1];
                    s[2] += p[2];
                    n++;
                }
            uint8_t *q = o + 3 * ((size_t)y * (size_t)nw + (size_t)x);
            for (int c = 0; c < 3; c++)
                q[c] = (uint8_t)((s[c] + n / 2) / n);
        }
    *out = o;
    *ow = nw;
    *oh = nh;
    return MMS_OK;
}

/* Accumulate colour and gradient sums of a working-size image. */
static mms_status accumulate(const uint8_t *rgb, int w, int h, acc_t *a) {
    float *lum;
    int *cxs;
    MMS_CALL(mms_malloc((size_t)w * (size_t)h * sizeof *lum, &lum));
    mms_status s = mms_malloc((size_t)w * sizeof *cxs, &cxs);
    if (s != MMS_OK) {
        free(lum);
        return s;
    }
    for (int x = 0; x < w; x++)
        cxs[x] = (int)((int64_t)x * GRID / w);
    for (int y = 0; y < h; y++) {
        int rowcell = (int)((int64_t)y * GRID / h) * GRID;
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * (size_t)w + (size_t)x;
            const uint8_t *p = rgb + 3 * i;
            int c = rowcell + cxs[x];
            /* ITU-R BT.601 luma in 1/256 steps, scaled to [0, 1] */
            lum[i] = (float)(77 * p[0] + 150 * p[1] + 29 * p[2]) / 65280.0f;
            a->npix[c] += 1.0;
            add_colour(a->col[c], p[0], p[1], p[2]);
        }
    }
    const float bins_per_rad = (float)MMS_DESC_ORIENT_BINS / PI_F;
    for (int y = 0; y < h; y++) {
        int rowcell = (int)((int64_t)y * GRID / h) * GRID;
        const float *up = lum + (size_t)(y > 0 ? y - 1 : 0) * (size_t)w;
        const float *dn = lum + (size_t)(y < h - 1 ? y + 1 : h - 1) * (size_t)w;
        const float *row = lum + (size_t)y * (size_t)w;
        for (int x = 0; x < w; x++) {
            float gx = 0.5f * (row[x < w - 1 ? x + 1 : w - 1] - row[x > 0 ? x - 1 : 0]);
            float gy = 0.5f * (dn[x] - up[x]);
            float m2 = gx * gx + gy * gy;
            if (!(m2 > 0.0f)) continue;
            float m = sqrtf(m2);
            float pbin = orientation(gx, gy) * bins_per_rad;
            int b0 = (int)pbin;
            float f = pbin - (float)b0;
            if (b0 >= MMS_DESC_ORIENT_BINS) b0 -= MMS_DESC_ORIENT_BINS;
            int b1 = b0 + 1 == MMS_DESC_ORIENT_BINS ? 0 : b0 + 1;
            int c = rowcell + cxs[x];
            a->ori[c][b0] += (double)(m * (1.0f - f));
            a->ori[c][b1] += (double)(m * f);
            a->mag[c] += (double)m;
        }
    }
    free(cxs);
    free(lum);
    return MMS_OK;
}

/* Sum of the finest cells [x0,x1) x [y0,y1) into one cell's totals. */
static void sum_cells(const acc_t *a, int x0, int x1, int y0, int y1, double *col, double *npix,
                      double *ori, double *mag) {
    memset(col, 0, MMS_DESC_COLOR_BINS * sizeof *col);
    memset(ori, 0, MMS_DESC_ORIENT_BINS * sizeof *ori);
    *npix = 0.0;
    *mag = 0.0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            int c = y * GRID + x;
            for (int k = 0; k < MMS_DESC_COLOR_BINS; k++)
                col[k] += a->col[c][k];
            for (int k = 0; k < MMS_DESC_ORIENT_BINS; k++)
                ori[k] += a->ori[c][k];
            *npix += a->npix[c];
            *mag += a->mag[c];
        }
}

/* Colour block: fractions of the cell's pixels, square-rooted (unit L2 norm). */
static void put_colour(const double *col, double npix, double weight, float *out) {
    for (int k = 0; k < MMS_DESC_COLOR_BINS; k++)
        out[k] = npix > 0.0 ? (float)(weight * sqrt(col[k] / npix)) : 0.0f;
}

/* Gradient block: magnitude shares, shrunk for flat cells, square-rooted
 * (L2 norm < 1, near 0 when the cell is flat). */
static void put_grad(const double *ori, double mag, double npix, double weight, float *out) {
    double den = mag + GRAD_EPS * npix;
    for (int k = 0; k < MMS_DESC_ORIENT_BINS; k++)
        out[k] = den > 0.0 ? (float)(weight * sqrt(ori[k] / den)) : 0.0f;
}

mms_status mms_descriptor_from_rgb(const uint8_t *rgb, int w, int h, float *out) {
    MMS_CHECK(rgb && out, MMS_ERR_ARG, "descriptor: NULL image or output");
    MMS_CHECK(w > 0 && h > 0 && (int64_t)w * h <= MMS_DESCRIPTOR_MAX_PIXELS, MMS_ERR_ARG,
              "descriptor: image size %d x %d is empty or larger than %lld pixels", w, h,
              (long long)MMS_DESCRIPTOR_MAX_PIXELS);
    uint8_t *small = NULL;
    int side = w > h ? w : h;
    if (side > MMS_DESCRIPTOR_MAX_SIDE) {
        int k = (side + MMS_DESCRIPTOR_MAX_SIDE - 1) / MMS_DESCRIPTOR_MAX_SIDE;
        MMS_CALL(shrink(rgb, w, h, k, &small, &w, &h));
        rgb = small;
    }
    acc_t *a;
    mms_status s = mms_calloc(1, sizeof *a, &a);
    if (s == MMS_OK) s = accumulate(rgb, w, h, a);
    free(small);
    if (s != MMS_OK) {
        free(a);
        return s;
    }
    /* Each pyramid level of each modality carries the same energy (colour
     * blocks have unit norm, gradient blocks at most unit norm): level weights
     * 1/sqrt(levels) for the whole image, halved per finer level. */
    const double wc0 = 1.0 / sqrt(2.0), wc1 = wc0 / 2.0;
    const double wg0 = 1.0 / sqrt(3.0), wg1 = wg0 / 2.0, wg2 = wg0 / 4.0;
    double col[MMS_DESC_COLOR_BINS], ori[MMS_DESC_ORIENT_BINS], npix, mag;
    sum_cells(a, 0, GRID, 0, GRID, col, &npix, ori, &mag);
    put_colour(col, npix, wc0, out + MMS_DESC_COLOR_L0);
    put_grad(ori, mag, npix, wg0, out + MMS_DESC_GRAD_L0);
    for (int cy = 0; cy < 2; cy++)
        for (int cx = 0; cx < 2; cx++) {
            int c = cy * 2 + cx, hg = GRID / 2;
            sum_cells(a, cx * hg, cx * hg + hg, cy * hg, cy * hg + hg, col, &npix, ori, &mag);
            put_colour(col, npix, wc1, out + MMS_DESC_COLOR_L1 + c * MMS_DESC_COLOR_BINS);
            put_grad(ori, mag, npix, wg1, out + MMS_DESC_GRAD_L1 + c * MMS_DESC_ORIENT_BINS);
        }
    for (int c = 0; c < NCELL; c++)
        put_grad(a->ori[c], a->mag[c], a->npix[c], wg2,
                 out + MMS_DESC_GRAD_L2 + c * MMS_DESC_ORIENT_BINS);
    free(a);
    double ss = 0.0;
    for (int k = 0; k < MMS_DESCRIPTOR_DIM; k++)
        ss += (double)out[k] * (double)out[k];
    MMS_CHECK(ss > 0.0 && isfinite(ss), MMS_ERR_INTERNAL, "descriptor: zero or non-finite vector");
    double inv = 1.0 / sqrt(ss);
    for (int k = 0; k < MMS_DESCRIPTOR_DIM; k++)
        out[k] = (float)((double)out[k] * inv);
    return MMS_OK;
}

/* ------------------------------------------------------------ JPEG decoding */

/* libjpeg reports errors through these callbacks; we record the message and
 * jump back instead of printing and exiting. */
typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg casts cinfo->err to this */
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jerr_t;

/* Everything a decode owns lives here, outside the function that calls setjmp,
 * so its values are well defined after a longjmp. */
typedef struct {
    struct jpeg_decompress_struct ci;
    jerr_t err;
    uint8_t *rgb; /* the result, malloc'd */
    uint8_t *row; /* CMYK scanline */
    int fail;     /* 0 ok, else a status code */
    int ours;     /* msg is our own reason, not libjpeg's complaint */
} decode_t;

static void jerr_exit(j_common_ptr ci) {
    jerr_t *e = (jerr_t *)ci->err;
    (*ci->err->format_message)(ci, e->msg);
    longjmp(e->jb, 1);
}

static void jerr_output(j_common_ptr ci) {
    jerr_t *e = (jerr_t *)ci->err;
    (*ci->err->format_message)(ci, e->msg);
}

/* Warnings (level -1) about corrupt or missing data would otherwise give a
 * silently grey-filled image: they are fatal, including a missing end-of-image
 * marker (the decoder cannot tell it from a cut file). A few are harmless (junk
 * between markers, odd metadata) and are ignored. Trace messages (level >= 0)
 * too. */
static void jerr_emit(j_common_ptr ci, int level) {
    if (level >= 0) return;
    int code = ci->err->msg_code;
    if (code == JWRN_EXTRANEOUS_DATA || code == JWRN_ADOBE_XFORM || code == JWRN_JFIF_MAJOR ||
        code == JWRN_BOGUS_ICC) {
        ci->err->num_warnings++;
        return;
    }
    jerr_exit(ci);
}

/* The libjpeg part of a decode; returns with d->fail set. */
static void decode_run(decode_t *d, const void *buf, size_t len, int min_side) {
    if (setjmp(d->err.jb)) {
        d->fail = MMS_ERR_FORMAT;
        return;
    }
    jpeg_create_decompress(&d->ci);
    d->ci.mem->max_memory_to_use = JPEG_MAX_MEMORY;
    jpeg_mem_src(&d->ci, (const unsigned char *)buf, (unsigned long)len);
    jpeg_read_header(&d->ci, TRUE);
    if ((int64_t)d->ci.image_width * d->ci.image_height > MMS_DESCRIPTOR_MAX_PIXELS) {
        snprintf(d->err.msg, sizeof d->err.msg,
                 "image is %u x %u pixels, more than the %lld allowed", d->ci.image_width,
                 d->ci.image_height, (long long)MMS_DESCRIPTOR_MAX_PIXELS);
        d->fail = MMS_ERR_FORMAT;
        d->ours = 1;
        return;
    }
    int cmyk = 0;
    switch (d->ci.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB: d->ci.out_color_space = JCS_RGB; break;
    case JCS_CMYK:
    case JCS_YCCK:
        d->ci.out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default:
        snprintf(d->err.msg, sizeof d->err.msg,
                 "unsupported colour space (%d components); want greyscale, RGB/YCbCr or CMYK",
                 d->ci.num_components);
        d->fail = MMS_ERR_FORMAT;
        d->ours = 1;
        return;
    }
    unsigned side = d->ci.image_width > d->ci.image_height ? d->ci.image_width : d->ci.image_height;
    unsigned denom = 1;
    while (min_side > 0 && denom < 8 && side / (denom * 2) >= (unsigned)min_side)
        denom *= 2;
    d->ci.scale_num = 1;
    d->ci.scale_denom = denom;
    jpeg_start_decompress(&d->ci);
    size_t ow = d->ci.output_width, oh = d->ci.output_height;
    d->rgb = malloc(ow * oh * 3 + 1); /* libjpeg guarantees non-zero sizes */
    if (cmyk) d->row = malloc(ow * 4 + 1);
    if (!d->rgb || (cmyk && !d->row)) {
        snprintf(d->err.msg, sizeof d->err.msg, "out of memory for a %zu x %zu image", ow, oh);
        d->fail = MMS_ERR_NOMEM;
        d->ours = 1;
        return;
    }
    while (d->ci.output_scanline < d->ci.output_height) {
        size_t y = d->ci.output_scanline;
        uint8_t *dst = d->rgb + y * ow * 3;
        JSAMPROW rows[1] = {cmyk ? d->row : dst};
        if (jpeg_read_scanlines(&d->ci, rows, 1) != 1) {
            snprintf(d->err.msg, sizeof d->err.msg, "decoder stopped at line %zu of %zu", y, oh);
            d->fail = MMS_ERR_FORMAT;
            return;
        }
        if (cmyk) {
            /* Adobe CMYK is stored inverted (0 = full ink): R = C * K / 255. */
            int inv = d->ci.saw_Adobe_marker;
            for (size_t x = 0; x < ow; x++) {
                const uint8_t *q = d->row + 4 * x;
                unsigned k = inv ? q[3] : 255u - q[3];
                for (int c = 0; c < 3; c++) {
                    unsigned v = inv ? q[c] : 255u - q[c];
                    dst[3 * x + (size_t)c] = (uint8_t)((v * k + 127) / 255);
                }
            }
        }
    }
    jpeg_finish_decompress(&d->ci);
    d->fail = MMS_OK;
}

mms_status mms_descriptor_decode_jpeg(const void *buf, size_t len, const char *name, int min_side,
                                      uint8_t **rgb, int *w, int *h) {
    *rgb = NULL;
    name = name ? name : "JPEG";
    MMS_CHECK(buf && len > 0, MMS_ERR_FORMAT, "%s: empty file (0 bytes), not a JPEG", name);
    MMS_CHECK(len <= ULONG_MAX, MMS_ERR_FORMAT, "%s: too large (%zu bytes)", name, len);
    decode_t *d;
    MMS_CALL(mms_calloc(1, sizeof *d, &d));
    d->ci.err = jpeg_std_error(&d->err.pub);
    d->err.pub.error_exit = jerr_exit;
    d->err.pub.emit_message = jerr_emit;
    d->err.pub.output_message = jerr_output;
    decode_run(d, buf, len, min_side);
    mms_status s = d->fail;
    if (s == MMS_OK) {
        *rgb = d->rgb;
        *w = (int)d->ci.output_width;
        *h = (int)d->ci.output_height;
        d->rgb = NULL;
    } else {
        mms_error_set(s, __FILE__, __LINE__, __func__, "%s: %s%s", name,
                      d->ours ? "cannot use this JPEG: " : "not a valid JPEG: ", d->err.msg);
    }
    jpeg_destroy_decompress(&d->ci);
    free(d->rgb);
    free(d->row);
    free(d);
    return s;
}

mms_status mms_descriptor_from_jpeg_mem(const void *buf, size_t len, const char *name, float *out) {
    uint8_t *rgb;
    int w, h;
    MMS_CALL(mms_descriptor_decode_jpeg(buf, len, name, MMS_DESCRIPTOR_DECODE_SIDE, &rgb, &w, &h));
    mms_status s = mms_descriptor_from_rgb(rgb, w, h, out);
    free(rgb);
    return s;
}

mms_status mms_descriptor_from_jpeg_file(const char *path, float *out) {
    char *buf;
    size_t len;
    MMS_CALL(mms_read_file(path, &buf, &len));
    mms_status s = mms_descriptor_from_jpeg_mem(buf, len, path, out);
    free(buf);
    return s;
}
