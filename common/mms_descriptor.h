/* descriptor.h: the visual descriptor of an image, computed from its pixels.
 *
 * A fixed-length float vector (MMS_DESCRIPTOR_DIM = 428) made of
 *   - HSV colour histograms (52 bins) over a 1x1 + 2x2 spatial pyramid, and
 *   - magnitude-weighted, unsigned gradient-orientation histograms (8 bins,
 *     HOG-like) over a 1x1 + 2x2 + 4x4 pyramid,
 * each block power-normalised (square root) and the whole vector L2-normalised.
 * docs/descriptor.md gives the exact layout, bins and weights.
 *
 * The importers call it on every catalog JPEG and the query path on a query
 * JPEG, so both must see the same function: images are first brought to a
 * working size (longest side at most MMS_DESCRIPTOR_MAX_SIDE) and the maths uses
 * only IEEE +, -, *, / and sqrt, so the same bytes give the same floats.
 *
 * JPEG decoding uses libjpeg with an error manager that never prints or exits:
 * a missing, empty, truncated or corrupt file returns MMS_ERR_IO or
 * MMS_ERR_FORMAT with a message naming the file and libjpeg's reason.
 * Greyscale, YCbCr/RGB and (Adobe) CMYK/YCCK JPEGs are accepted.
 * Thread-safe: no global state.
 */
#ifndef MMS_DESCRIPTOR_H
#define MMS_DESCRIPTOR_H

#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"

/* Name and version of the descriptor, stored in catalog manifests so a query
 * descriptor can be checked against the catalog's. Change it with the maths. */
#define MMS_DESCRIPTOR_NAME "mms-hsv52-hog8-pyr-v1"

/* Layout (offsets into the vector). */
enum {
    MMS_DESC_COLOR_BINS = 52, /* 12 hues x 2 saturations x 2 values + 4 greys */
    MMS_DESC_GREY_BIN0 = 48,  /* first of the 4 achromatic bins (dark -> light) */
    MMS_DESC_ORIENT_BINS = 8, /* unsigned orientation, centred on k * 22.5 degrees */
    MMS_DESC_COLOR_L0 = 0,    /* colour, whole image: 52 */
    MMS_DESC_COLOR_L1 = 52,   /* colour, 2x2 cells row-major: 4 x 52 */
    MMS_DESC_GRAD_L0 = 260,   /* gradients, whole image: 8 */
    MMS_DESC_GRAD_L1 = 268,   /* gradients, 2x2 cells: 4 x 8 */
    MMS_DESC_GRAD_L2 = 300,   /* gradients, 4x4 cells: 16 x 8 */
    MMS_DESCRIPTOR_DIM = 428
};

/* Working size: larger images are box-filtered down to a longest side of at
 * most this; JPEGs are first reduced in the decoder (DCT scaling 1/2, 1/4,
 * 1/8) while the longest side stays >= MMS_DESCRIPTOR_DECODE_SIDE. */
#define MMS_DESCRIPTOR_MAX_SIDE 512
#define MMS_DESCRIPTOR_DECODE_SIDE 256
/* Largest JPEG accepted (width x height before scaling), as a guard against
 * hostile headers; 134 megapixels. */
#define MMS_DESCRIPTOR_MAX_PIXELS ((int64_t)1 << 27)

/* Length of the vector (MMS_DESCRIPTOR_DIM). */
int mms_descriptor_dim(void);

/* Descriptor of an 8-bit RGB image (rgb: h rows of w pixels, 3 bytes each,
 * borrowed). out: mms_descriptor_dim() floats, written by the call. */
mms_status mms_descriptor_from_rgb(const uint8_t *rgb, int w, int h, float *out);

/* Descriptor of a JPEG held in buf[0..len) (borrowed). name (e.g. the file
 * name) starts every error message. */
mms_status mms_descriptor_from_jpeg_mem(const void *buf, size_t len, const char *name, float *out);

/* Descriptor of the JPEG file at path (read whole; errors name the path). */
mms_status mms_descriptor_from_jpeg_file(const char *path, float *out);

/* Decode a JPEG to 8-bit RGB. When min_side > 0 the decoder reduces the image
 * by 1/2, 1/4 or 1/8 as long as its longest side stays >= min_side (0 = full
 * size). On success *rgb is a malloc'd buffer of (*w) x (*h) x 3 bytes that
 * the caller frees; on failure *rgb is NULL. */
mms_status mms_descriptor_decode_jpeg(const void *buf, size_t len, const char *name, int min_side,
                                      uint8_t **rgb, int *w, int *h);

#endif
