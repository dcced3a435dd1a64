/* report_thumbs.c: thumbnails for examples.html (report_thumbs.h). A catalog
 * JPEG is decoded with the descriptor's decoder (common/mms_descriptor.h),
 * which already reduces it by 1/2, 1/4 or 1/8 in the DCT while the longest
 * side stays >= MMS_REPORT_THUMB_SIDE; an area average brings it down to that
 * side, and libjpeg encodes it (quality 82) into memory, written through the
 * report's temporary-then-rename files.
 *
 * Does not: read anything but JPEG, or print except one warning per dataset.
 */
#define _GNU_SOURCE
#include "report_thumbs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "mms_descriptor.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "report_internal.h"

mms_status report_thumbs_init(report_thumbs_t *t, const char *dir, const mms_catalog_t *c,
                              const char *dataset, int dsidx, int *total) {
    memset(t, 0, sizeof *t);
    t->dir = dir;
    t->c = c;
    t->dataset = dataset;
    t->dsidx = dsidx;
    t->total = total;
    MMS_CALL(mms_calloc((size_t)(c->n > 0 ? c->n : 1), sizeof *t->state, &t->state));
    return MMS_OK;
}

void report_thumbs_finish(report_thumbs_t *t) {
    if (t->failed > 0)
        mms_log_warn("report: %s: %d image%s of examples.html could not be made into thumbnails "
                     "(placeholders shown); the first: %s",
                     t->dataset, t->failed, t->failed == 1 ? "" : "s", t->first_err);
    if (t->capped > 0)
        mms_log_warn("report: %s: %d image%s of examples.html over the limit of %d thumbnails "
                     "per report (placeholders shown)",
                     t->dataset, t->capped, t->capped == 1 ? "" : "s", MMS_REPORT_THUMBS_MAX);
    free(t->state);
    t->state = NULL;
}

/* Area average of rgb (w x h) into out (ow x oh), ow <= w, oh <= h. */
static void shrink(const uint8_t *rgb, int w, int h, uint8_t *out, int ow, int oh) {
    for (int y = 0; y < oh; y++) {
        int y0 = (int)((int64_t)y * h / oh), y1 = (int)((int64_t)(y + 1) * h / oh);
        if (y1 <= y0) y1 = y0 + 1;
        for (int x = 0; x < ow; x++) {
            int x0 = (int)((int64_t)x * w / ow), x1 = (int)((int64_t)(x + 1) * w / ow);
            if (x1 <= x0) x1 = x0 + 1;
            uint32_t sum[3] = {0, 0, 0}, n = (uint32_t)((y1 - y0) * (x1 - x0));
            for (int yy = y0; yy < y1; yy++)
                for (int xx = x0; xx < x1; xx++)
                    for (int k = 0; k < 3; k++)
                        sum[k] += rgb[((size_t)yy * (size_t)w + (size_t)xx) * 3 + (size_t)k];
            for (int k = 0; k < 3; k++)
                out[((size_t)y * (size_t)ow + (size_t)x) * 3 + (size_t)k] =
                    (uint8_t)((sum[k] + n / 2) / n);
        }
    }
}

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} enc_err_t;

static void enc_error_exit(j_common_ptr ci) {
    enc_err_t *e = (enc_err_t *)ci->err;
    ci->err->format_message(ci, e->msg);
    longjmp(e->jb, 1);
}

static void enc_output_message(j_common_ptr ci) { (void)ci; /* never print */ }

/* The libjpeg part of an encode (kept apart so that nothing the caller needs
 * after a longjmp lives in this frame). 0 on success. */
static int encode_run(struct jpeg_compress_struct *ci, enc_err_t *err, const uint8_t *rgb, int w,
                      int h, unsigned char **out, unsigned long *len) {
    if (setjmp(err->jb)) return -1;
    jpeg_create_compress(ci);
    jpeg_mem_dest(ci, out, len);
    ci->image_width = (JDIMENSION)w;
    ci->image_height = (JDIMENSION)h;
    ci->input_components = 3;
    ci->in_color_space = JCS_RGB;
    jpeg_set_defaults(ci);
    jpeg_set_quality(ci, 82, TRUE);
    jpeg_start_compress(ci, TRUE);
    while (ci->next_scanline < ci->image_height) {
        JSAMPROW row[1] = {(JSAMPROW)(rgb + (size_t)ci->next_scanline * (size_t)w * 3)};
        jpeg_write_scanlines(ci, row, 1);
    }
    jpeg_finish_compress(ci);
    return 0;
}

/* JPEG bytes of rgb (w x h) in *out (malloc'd by libjpeg, the caller frees). */
static mms_status encode_jpeg(const uint8_t *rgb, int w, int h, unsigned char **out,
                              unsigned long *len) {
    struct jpeg_compress_struct ci;
    enc_err_t err;
    memset(&ci, 0, sizeof ci);
    memset(&err, 0, sizeof err);
    ci.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = enc_error_exit;
    err.pub.output_message = enc_output_message;
    *out = NULL;
    *len = 0;
    int rc = encode_run(&ci, &err, rgb, w, h, out, len);
    jpeg_destroy_compress(&ci);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        MMS_CHECK(0, MMS_ERR_FORMAT, "thumbnail encoding failed: %s", err.msg);
    }
    return MMS_OK;
}

/* Decode the catalog image of row and scale it: *rgb (malloc'd) of *w x *h.
 * A failure here means "no thumbnail", with the reason in why (cap bytes).
 * The expected misses (no file, not a JPEG) are found here without logging;
 * only a JPEG the decoder rejects part-way logs its own error line. */
static mms_status load_scaled(const mms_catalog_t *c, int64_t row, uint8_t **rgb, int *w, int *h,
                              char *why, size_t cap) {
    *rgb = NULL;
    const char *p = c->paths[row];
    char path[MMS_PATH_MAX];
    if (p[0] == '/')
        snprintf(path, sizeof path, "%s", p);
    else if (mms_path_join(path, sizeof path, c->dir, p) != MMS_OK) {
        snprintf(why, cap, "%s/%s: path too long", c->dir, p);
        return MMS_ERR_IO;
    }
    FILE *f = fopen(path, "rb");
    unsigned char magic[3] = {0, 0, 0};
    size_t got = f ? fread(magic, 1, 3, f) : 0;
    if (f) fclose(f);
    if (!f || got != 3 || magic[0] != 0xFF || magic[1] != 0xD8 || magic[2] != 0xFF) {
        snprintf(why, cap, "%s: %s", path, f ? "not a JPEG" : "cannot open");
        return MMS_ERR_FORMAT;
    }
    char *buf = NULL;
    size_t len = 0;
    uint8_t *full = NULL;
    int fw = 0, fh = 0;
    mms_status s = mms_read_file(path, &buf, &len);
    if (s == MMS_OK)
        s = mms_descriptor_decode_jpeg(buf, len, path, MMS_REPORT_THUMB_SIDE, &full, &fw, &fh);
    free(buf);
    if (s != MMS_OK) {
        snprintf(why, cap, "%s", mms_error_message());
        mms_error_clear();
        return s;
    }
    int side = fw > fh ? fw : fh;
    if (side <= MMS_REPORT_THUMB_SIDE) {
        *rgb = full;
        *w = fw;
        *h = fh;
        return MMS_OK;
    }
    int ow = (int)(((int64_t)fw * MMS_REPORT_THUMB_SIDE + side / 2) / side);
    int oh = (int)(((int64_t)fh * MMS_REPORT_THUMB_SIDE + side / 2) / side);
    ow = ow < 1 ? 1 : ow;
    oh = oh < 1 ? 1 : oh;
    s = mms_malloc((size_t)ow * (size_t)oh * 3, rgb);
    if (s == MMS_OK) {
        shrink(full, fw, fh, *rgb, ow, oh);
        *w = ow;
        *h = oh;
    } else {
        snprintf(why, cap, "%s", mms_error_message());
        mms_error_clear();
    }
    free(full);
    return s;
}

/* File name of row's thumbnail: thumbs/<dsidx>-<row>-<id, unsafe bytes as '_'>.jpg */
static void thumb_name(const report_thumbs_t *t, int64_t row, char *rel, size_t cap) {
    char safe[41];
    size_t k = 0;
    for (const char *p = t->c->ids[row]; *p && k < sizeof safe - 1; p++) {
        char ch = *p;
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        safe[k++] = ok ? ch : '_';
    }
    safe[k] = '\0';
    snprintf(rel, cap, "thumbs/%d-%lld-%s.jpg", t->dsidx, (long long)row, safe);
}

mms_status report_thumb(report_thumbs_t *t, int64_t row, int *ok, char *rel, size_t cap) {
    *ok = 0;
    if (row < 0 || row >= t->c->n || !t->c->paths || !t->c->paths[row]) return MMS_OK;
    thumb_name(t, row, rel, cap);
    if (t->state[row]) {
        *ok = t->state[row] > 0;
        return MMS_OK;
    }
    if (*t->total >= MMS_REPORT_THUMBS_MAX) {
        t->state[row] = -1;
        t->capped++;
        return MMS_OK;
    }
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    unsigned char *jpg = NULL;
    unsigned long len = 0;
    char why[sizeof t->first_err] = "";
    mms_status s = load_scaled(t->c, row, &rgb, &w, &h, why, sizeof why);
    if (s == MMS_OK) {
        s = encode_jpeg(rgb, w, h, &jpg, &len);
        if (s != MMS_OK) {
            snprintf(why, sizeof why, "%s", mms_error_message());
            mms_error_clear();
        }
    }
    free(rgb);
    if (s != MMS_OK) { /* not the report's failure: a placeholder */
        if (t->failed++ == 0) snprintf(t->first_err, sizeof t->first_err, "%s", why);
        t->state[row] = -1;
        return MMS_OK;
    }
    char dir[MMS_PATH_MAX];
    outfile_t o;
    s = mms_path_join(dir, sizeof dir, t->dir, "thumbs");
    if (s == MMS_OK && *t->total == 0 && !mms_path_exists(dir)) s = mms_mkdir_p(dir);
    if (s == MMS_OK) s = report_out_open(&o, t->dir, rel);
    if (s == MMS_OK) {
        fwrite(jpg, 1, (size_t)len, o.f); /* mms_fclose checks the stream's error flag */
        s = report_out_commit(&o);
    }
    free(jpg);
    MMS_CALL(s);
    t->state[row] = 1;
    t->made++;
    ++*t->total;
    *ok = 1;
    return MMS_OK;
}
