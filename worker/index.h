/* index.h: the index directory, the one owner of its format: the writer
 * `mmsage embed` calls (worker/embed.c computes the rows) and the reader that
 * opens an index for queries on one process.
 *
 * Directory (written under a temporary name and renamed by embed):
 *   I/manifest.msgpack    kind "index", format MMS_INDEX_FORMAT: the model's
 *                         manifest (model_io.h) plus shards, knn_dim,
 *                         knn_space, catalog, catalog_checksum, model,
 *                         embedding_dim, normalize
 *   I/shard-p/ids.npy     <i8 image node ids of shard p (ascending)
 *   I/shard-p/emb.npy     <f4 n x 2H  embeddings
 *   I/shard-p/h1.npy      <f4 n x 2H  layer-1 states (for queries' layer 2)
 *   I/shard-p/x.npy       <f4 n x D   node inputs (for queries' layer 1)
 *   I/shard-p/vis.npy     <f4 n x Dk  L2-normalised vectors of the kNN space
 *   I/tags_emb.npy, I/tags_h1.npy   <f4 tags x 2H, by tag number
 *   I/params.npy, I/tags.npy        the model's arrays (model_io.h)
 *   I/tags.tsv                      the graph's tag list (mms_graph.h)
 *   I/pca_mean.npy, pca_components.npy, pca_eigvals.npy  the graph's PCA, if any
 *   I/ivf_vis_centroids.npy, I/ivf_emb_centroids.npy  <f4 nlist x knn_dim / 2H:
 *                         coarse centroids of the inverted lists (ivf_build.h;
 *                         manifest ivf_nlist = nlist; absent: exact search only)
 *   I/shard-p/ivf_lists.npy  <i4 n x 2: row i's vis list and emb list
 *
 * Versions (format 2, written by `mmsage add` and `mmsage remove`,
 * index_version.h): a new version is a new directory whose unchanged files
 * are hard links to its parent's, plus
 *   I/shard-p/add-V.{ids,emb,h1,x,vis}.npy  a segment: the rows version V
 *                         added to shard p (node ids above every earlier one);
 *                         its rows' lists are assigned when the index opens
 *                         (an add-V.ivf_lists.npy, if present, is used instead),
 *                         and compaction writes ivf_lists.npy for the merged rows
 *   I/added-V/            the catalog of the images version V added (ids, tags,
 *                         paths: what decorates their results), nodes
 *                         first .. first + count - 1 in its row order
 *   I/removed.npy         <i8 the removed image nodes so far (ascending):
 *                         never reported, never a query's neighbour
 * and in the manifest: version, parent (path), base_images (the graph's image
 * nodes), images (every node id given out), segments (shard, V, rows
 * triples), additions (V, first node, count triples), removed (count),
 * added_now / removed_now (this version's change).
 *
 * The reader opens two parts, independently so that each rank holds only what
 * it uses:
 *   coordinator part  the model (weights, tag input table), the tag nodes'
 *                     stored embeddings and layer-1 states, tag names and their
 *                     lookup, the PCA that maps a catalog feature vector to the
 *                     node input, and the catalog (image ids, tags, paths) that
 *                     decorates results and maps an image id to its node.
 *   shard part        the image shards given to this worker: index shard s goes
 *                     to worker s mod W of W, so any worker count serves any
 *                     index. Each shard keeps its .npy files memory-mapped
 *                     (ids, emb, h1, x, vis) and, unless disabled, an int8 copy
 *                     of emb and vis used as an exact filter (shard_scan.h, mms_qmat),
 *                     its rows stored list after list when the index has lists.
 * What it does not do: MPI (the embedding pass and the query rounds), computing
 * rows (embed.c), answering requests (coordinator/). An opened index is
 * read-only, so several threads may read it.
 */
#ifndef MMS_INDEX_H
#define MMS_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_npy.h"
#include "mms_status.h"
#include "mms_strmap.h"
#include "sage.h"
#include "ivf_build.h"
#include "shard_scan.h"

#define MMS_INDEX_FORMAT 2 /* 1: embed's output; 2: a version with segments, additions, removals */
#define MMS_INDEX_SHARD_DIR "shard-%d" /* printf pattern of shard p's directory */
#define MMS_INDEX_IDS_FILE "ids.npy"
#define MMS_INDEX_EMB_FILE "emb.npy"
#define MMS_INDEX_H1_FILE "h1.npy"
#define MMS_INDEX_X_FILE "x.npy"
#define MMS_INDEX_VIS_FILE "vis.npy"
#define MMS_INDEX_TAGS_EMB_FILE "tags_emb.npy"
#define MMS_INDEX_TAGS_H1_FILE "tags_h1.npy"
#define MMS_INDEX_REMOVED_FILE "removed.npy"
#define MMS_INDEX_ADDED_DIR "added-%lld" /* printf pattern of version V's added catalog */

/* The images one version added (coordinator part): nodes first .. first +
 * count - 1 are the rows of cat, which decorates them. */
struct mms_index_added {
    int64_t version, first, count;
    mms_catalog_t *cat;
    const char **row_tags; /* cat->tag_ptr[cat->n]: tag names of every row's tags */
};

/* One segment of a shard's image nodes (rows in ascending node id): the base
 * rows embed wrote (version 0) or the rows a version added. Arrays are mapped. */
typedef struct {
    int shard;          /* index shard number (shard-<shard>/) */
    int64_t version;    /* 0: the base files; V: the add-V.* segment */
    uint8_t *dead;      /* n flags: 1 = removed (NULL when none is) */
    int64_t n_dead;
    int64_t n;          /* images */
    const int64_t *ids; /* n global node ids, ascending */
    const float *emb;   /* n x emb_dim: stored embeddings z (unit length) */
    const float *h1;    /* n x emb_dim: stored layer-1 states */
    const float *x;     /* n x dim: node inputs */
    const float *vis;   /* n x knn_dim: L2-normalised vectors of the kNN space */
    mms_qmat_t *qemb;   /* int8 filter copies (NULL when disabled) */
    mms_qmat_t *qvis;
    mms_npy_t f_ids, f_emb, f_h1, f_x, f_vis; /* private: the maps */
} mms_index_shard_t;

typedef struct {
    char dir[MMS_PATH_MAX];
    /* from the manifest (every rank) */
    int64_t version;     /* version number: 1 for embed's output, +1 per add/remove */
    int shards;          /* index shards (embed's rank count) */
    int64_t n_images;    /* image node ids given out: base_images + every added image */
    int64_t base_images; /* the graph's image nodes (the catalog's training images) */
    int64_t n_removed;   /* removed image nodes (every rank) */
    int64_t *removed;    /* n_removed node ids, ascending */
    int64_t n_segments;  /* segments of all shards (manifest) */
    int64_t *segments;   /* n_segments x {shard, version, rows} */
    int64_t n_additions; /* versions that added images */
    int64_t *additions;  /* n_additions x {version, first node, count} */
    struct mms_index_added *added; /* coordinator: n_additions catalogs, same order */
    int64_t n_tags;      /* tag nodes */
    int32_t dim;         /* D: node input width (after PCA) */
    int32_t emb_dim;     /* 2H: embedding width */
    int32_t knn_dim;     /* width of the kNN space (vis rows) */
    int32_t in_dim;      /* width of a query's `image` (catalog features, before PCA; coordinator part) */
    int knn_separate;    /* 1: kNN space is the catalog's knn_features (a query needs image_knn) */
    int normalize;       /* 1: node inputs were L2-normalised before PCA (build --normalize) */
    int32_t ivf_nlist;   /* inverted lists per space (manifest ivf_nlist; 0: none, exact only) */
    float *ivf_vis;      /* ivf_nlist x knn_dim centroids (coordinator, and workers with the filter) */
    float *ivf_emb;      /* ivf_nlist x emb_dim */
    mms_qmat_t *ivf_qvis, *ivf_qemb; /* coordinator with the filter: int8 copies of the
                            centroids, for the probe choice (coordinator/engine.c) */
    char catalog_dir[MMS_PATH_MAX];
    uint64_t catalog_checksum;

    /* coordinator part (NULL / 0 unless opened with coordinator = 1) */
    mms_sage_model_t *model;
    float *tag_emb;      /* n_tags x emb_dim */
    float *tag_h1;       /* n_tags x emb_dim */
    char **tag_names;    /* n_tags (index order = tag node order) */
    mms_strmap_t *tag_map;  /* name -> tag number */
    float *pca_mean;     /* in_dim, or NULL without PCA */
    float *pca_comp;     /* in_dim x dim: x = (image - mean) @ comp */
    mms_catalog_t *cat;
    int64_t *node_row;   /* n_images: catalog row of image node v */
    int64_t *row_node;   /* cat->n: node of catalog row r, -1 if not an indexed image */
    const char **row_tags; /* cat->tag_ptr[cat->n]: tag names of every catalog row's tags */
    int jpeg;            /* 1: the catalog's features are this build's JPEG descriptor */
    char importer[64];   /* the catalog's "importer" manifest field ("" if none) */

    /* shard part */
    int nshard;
    mms_index_shard_t *sh; /* nshard */
    int list_scan;         /* mms_list_scan: how the shard rounds scan probed lists */
    int64_t n_local;       /* images over this worker's shards */
} mms_index_t;

/* How a shard round scans the probed inverted lists (docs/query.md, "Which
 * list scan"): AUTO picks, per round and shard, the 4-bit codes when the
 * probed lists hold enough rows per query for the bytes they save to pay
 * for their float re-rank (mms_qmat_lists4_pays), else the int8 filter;
 * CODES4 always the codes; INT8 always the int8 filter (the codes are not
 * built). */
typedef enum { MMS_LIST_SCAN_AUTO = 0, MMS_LIST_SCAN_CODES4 = 1, MMS_LIST_SCAN_INT8 = 2 } mms_list_scan;

typedef struct {
    int coordinator;     /* load the coordinator part */
    int worker;          /* this worker's number in [0, nworkers), or -1: no shards */
    int nworkers;        /* W >= 1 when worker >= 0 */
    int filter;          /* 1: build the int8 filter copies (default), 0: float scans only */
    int list_scan;       /* mms_list_scan (default MMS_LIST_SCAN_AUTO): with the filter and
                            lists, AUTO and CODES4 also build the 4-bit codes of the
                            approximate list scan (docs/query.md); INT8 does not */
    const char *catalog; /* catalog directory overriding the manifest's (NULL: the manifest's) */
} mms_index_open_t;

void mms_index_open_default(mms_index_open_t *o);

/* Open dir as described by o. Checks the manifest (kind "index"), every array's
 * shape, the catalog's checksum against the one the index was built from, and
 * that the catalog's training images are the index's image nodes. Errors name
 * the file and what differs. *out: free with mms_index_close. Local. */
mms_status mms_index_open(const char *dir, const mms_index_open_t *o, mms_index_t **out);
void mms_index_close(mms_index_t **ix);

/* 1 if node was removed (binary search in ix->removed). */
int mms_index_is_removed(const mms_index_t *ix, int64_t node);
/* Live image nodes: n_images - n_removed. */
int64_t mms_index_live_images(const mms_index_t *ix);
/* The segment file name of base_name ("emb.npy") for version V (0: the name
 * itself; else "add-V.emb.npy") into out. */
void mms_index_segment_file(char *out, size_t cap, int64_t version, const char *base_name);

/* Tag number of a name, -1 if the index does not know it (exact, case-sensitive). */
int32_t mms_index_tag_lookup(const mms_index_t *ix, const char *name);
/* Node of an image id (catalog id), -1 if not an indexed image. Coordinator part. */
int64_t mms_index_node_of(const mms_index_t *ix, const char *id);
/* Decoration of an image node (coordinator part): its id, its tag names
 * (*ntags of them, borrowed) and its path (NULL if the catalog has none). */
const char *mms_index_image_id(const mms_index_t *ix, int64_t node);
const char *const *mms_index_image_tags(const mms_index_t *ix, int64_t node, int *ntags);
const char *mms_index_image_path(const mms_index_t *ix, int64_t node);
/* Row of node in shard sh (binary search), -1 if the shard does not hold it. */
int64_t mms_index_shard_row(const mms_index_shard_t *sh, int64_t node);
/* x (dim floats) from a catalog-space image vector (in_dim floats), as build
 * made the node inputs: L2-normalised if the index says so, then the index's
 * PCA projection (or a copy without PCA). Coordinator part. */
mms_status mms_index_project(const mms_index_t *ix, const float *image, float *x);

/* ================================================================ writing */

/* One shard's rows (n image nodes, ascending ids), borrowed. */
typedef struct {
    int64_t n;
    const int64_t *ids;
    const float *emb, *h1; /* n x emb_dim */
    const float *x;        /* n x dim */
    const float *vis;      /* n x knn_dim */
    int32_t emb_dim, dim, knn_dim;
} mms_index_rows_t;

/* Write dir/shard-<shard>/ (made if missing) with r's five arrays. */
mms_status mms_index_write_shard(const char *dir, int shard, const mms_index_rows_t *r);

/* The top level of an index, borrowed. */
typedef struct {
    const char *model;   /* model directory: its manifest and arrays are copied */
    const char *graph;   /* graph directory: tags.tsv and its PCA files (if any) are copied */
    int shards;
    int32_t knn_dim;
    const char *knn_space; /* "features" or "knn_features" (the graph's) */
    const char *catalog;
    const char *out;     /* the index's final directory (paths are recorded relative to it) */
    uint64_t catalog_checksum;
    int32_t emb_dim;
    int normalize;
    int64_t n_tags;
    const float *tag_emb, *tag_h1; /* n_tags x emb_dim, by tag number */
    int32_t ivf_nlist;   /* inverted lists written (ivf_build.h), recorded as ivf_nlist; 0: none */
} mms_index_top_t;

/* Write the top level of dir (everything but the shards, manifest last). */
mms_status mms_index_write_top(const char *dir, const mms_index_top_t *t);

#endif
