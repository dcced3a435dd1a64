/* synth.h: synthetic stock-photo catalogs of any size (model: docs/synth.md).
 *
 * A generative model with planted ground truth. C visual clusters ("styles,
 * scenes") and K concepts ("topics") live in a small latent space; an image is
 * a latent point (its cluster centre, possibly blended with a second cluster,
 * plus a little of its topic's direction and its own variation) seen through
 * one or two random "networks" (projection + anisotropic noise + ReLU): these
 * give features.npy and, optionally, knn_features.npy. Its tags come mostly
 * from its topic's Zipf tag list, plus global Zipf noise tags; the topic agrees
 * with the cluster's primary topic only with probability p_primary, so tags
 * carry information the pixels do not. objects.tsv records the truth
 * (cluster_<c>, topic_<k>, blend_<c2>) so retrieval quality can be scored.
 *
 * Every value of image i is a pure function of (parameters, seed, i), drawn
 * from mms_rng (stream MMS_STREAM_SYNTH; the split from MMS_STREAM_SPLIT): the
 * output does not depend on chunking, and with explicit sizes (tags, clusters,
 * topics) a catalog of N images is a prefix of one of N' > N. The generator
 * uses no libm (normals from a polynomial Box-Muller), so files are
 * bit-identical on any IEEE-754 host. It does not hold N x D in memory: rows
 * are made in chunks and streamed through the catalog writer.
 *
 * This module does not parse options or print: app/cmd_synth.c does that.
 */
#ifndef MMS_SYNTH_H
#define MMS_SYNTH_H

#include <stdint.h>

#include "mms_status.h"

#define MMS_SYNTH_MAX_TAGS 64   /* per image */
#define MMS_SYNTH_MAX_DIM 65536 /* features and kNN features */
#define MMS_SYNTH_FORMAT 1      /* generative model version, in the manifest */

typedef struct {
    int64_t images;     /* N >= 1 */
    int32_t tags;       /* vocabulary size T; 0 = auto min(20000, max(200, N/50)) */
    int32_t dim;        /* width D of features.npy */
    int32_t knn_dim;    /* width D2 of knn_features.npy; 0 = no such file */
    int32_t clusters;   /* C visual clusters; 0 = auto clamp(N/100, 8, 5000) */
    int32_t topics;     /* K concepts; 0 = auto clamp(C/4, 2, 1000) */
    int32_t latent_dim; /* L, width of the shared latent space */
    int32_t min_tags;   /* tags per image, uniform in [min_tags, max_tags] (capped at T) */
    int32_t max_tags;
    double test_fraction; /* split by a hash of the index; row 0 is always train */
    double val_fraction;
    double p_primary;    /* P(topic = the cluster's primary topic) */
    double p_blend;      /* P(an image blends a second cluster into its centre) */
    double p_topic_tag;  /* P(a tag comes from the topic's list, not global noise) */
    double spread;       /* mean norm of an image's own latent variation (centres: 1) */
    double topic_weight; /* norm of the topic direction added to the latent */
    double noise;        /* features: per-dimension noise std / signal std */
    double knn_noise;    /* kNN features: the same, lower (a "better network") */
    uint64_t seed;
    int32_t chunk_rows; /* rows generated per chunk (memory, progress) */
} mms_synth_params_t;

/* Fill p with the documented defaults (images = 0: the caller must set it). */
void mms_synth_params_default(mms_synth_params_t *p);

/* Validate p and replace the "auto" zeros by their values. Errors name the
 * option (--dim, ...) and the allowed range. */
mms_status mms_synth_params_resolve(mms_synth_params_t *p);

/* Ground truth and tags of one image. */
typedef struct {
    int32_t cluster; /* planted visual cluster */
    int32_t blend;   /* second cluster blended into the centre, or -1 */
    int32_t topic;   /* planted concept */
    int32_t split;   /* mms_split */
    int32_t ntags;
    int32_t tags[MMS_SYNTH_MAX_TAGS]; /* distinct tag indices, in draw order */
} mms_synth_image_t;

/* The model's tables (centres, projections, tag lists, tag names): small, about
 * 4 * (C + K + D + D2) * L bytes plus ~20 bytes per tag. Read-only after
 * create, so rows may be generated from several threads. */
typedef struct mms_synth_model mms_synth_model_t;

/* Resolve a copy of p and build the tables. */
mms_status mms_synth_model_create(const mms_synth_params_t *p, mms_synth_model_t **out);
void mms_synth_model_destroy(mms_synth_model_t **m);
/* Name of tag t in [0, T) (borrowed); word-like and unique. Tags are numbered
 * by expected frequency (t = 0 is the most frequent in expectation); the name
 * of index t does not depend on the seed. */
const char *mms_synth_model_tag_name(const mms_synth_model_t *m, int32_t t);

/* Rows first .. first+count-1 (0 <= first, first + count <= images). x gets
 * count x dim floats, knn_x count x knn_dim (ignored when knn_dim is 0), info
 * count entries; each may be NULL when not wanted. */
mms_status mms_synth_model_rows(const mms_synth_model_t *m, int64_t first, int64_t count, float *x,
                                float *knn_x, mms_synth_image_t *info);

/* Generate the whole catalog into out_dir through the catalog writer (refused
 * if out_dir exists unless force), with progress on the log. Nothing is left
 * at out_dir on failure. */
mms_status mms_synth_generate(const mms_synth_params_t *p, const char *out_dir, int force);

#endif
