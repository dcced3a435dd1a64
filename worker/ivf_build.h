/* ivf_build.h: the inverted lists of an index (approximate shard search,
 * docs/query.md "Approximate search (IVF)"): coarse centroids per space (the
 * kNN space `vis` and the embeddings `emb`), trained at the end of `mmsage
 * embed` by spherical k-means (partition/kmeans.h) on a sample chosen by a
 * hash of the global node id (so the centroids are the same at any rank
 * count), and every row's list in each space. index.h owns the files:
 *   I/ivf_vis_centroids.npy, I/ivf_emb_centroids.npy   <f4 nlist x width
 *   I/shard-p/ivf_lists.npy   <i4 n x 2: row i's vis list and emb list
 * Segments that `mmsage add` writes carry no lists: their rows are assigned
 * when the index is opened (mms_ivf_assign), and compaction writes the lists
 * of the merged rows (index_version.c).
 * No query logic here: the scans are worker/shard_scan.h, the probe choice the
 * coordinator's (coordinator/engine.c).
 */
#ifndef MMS_IVF_BUILD_H
#define MMS_IVF_BUILD_H

#include <mpi.h>
#include <stdint.h>

#include "mms_status.h"

#define MMS_IVF_VIS_CENTROIDS_FILE "ivf_vis_centroids.npy"
#define MMS_IVF_EMB_CENTROIDS_FILE "ivf_emb_centroids.npy"
#define MMS_IVF_LISTS_FILE "ivf_lists.npy" /* per shard; a segment: add-V.ivf_lists.npy */
#define MMS_IVF_MAX_NLIST 65536
#define MMS_IVF_SEED 0x1f5eedull       /* the sample hash and the k-means init */
#define MMS_IVF_KMEANS_ITERS 10
#define MMS_IVF_SAMPLE_PER_LIST 32     /* k-means sample rows per list (capped at n) */
#define MMS_IVF_MIN_IMAGES 256         /* default: no lists below this many images */
/* Below this many live images the engine searches exactly unless a request or
 * the server asks for nprobe (docs/query.md: the exact int8 scan at 2 ranks
 * is about 2 ms there). */
#define MMS_IVF_EXACT_BELOW 200000

/* Default nlist for n images: 4 sqrt(n) rounded to the nearest power of two,
 * at most n / 16 (16 rows a list on average) and MMS_IVF_MAX_NLIST; 0 (no
 * lists) below MMS_IVF_MIN_IMAGES. */
int32_t mms_ivf_default_nlist(int64_t n_images);
/* Default lists probed per query for nlist lists over n images (docs/query.md,
 * measured: recall@10 of fused queries against exact 0.97 on the 100k
 * synthetic index at nlist / 8, 0.98 on Corel5k at about 2,000 rows): the
 * larger of nlist / 8 and the lists that hold MMS_IVF_MIN_PROBE_ROWS rows on
 * average, at least 1, at most nlist. */
#define MMS_IVF_MIN_PROBE_ROWS 2048
int32_t mms_ivf_default_nprobe(int32_t nlist, int64_t n_images);

/* list[i] = the centroid (of nlist, nlist x d, unit rows) with the largest
 * inner product with row i of X (n x d); ties to the smaller centroid. Local
 * (sgemm in tiles). */
mms_status mms_ivf_assign(const float *cent, int32_t nlist, const float *X, int64_t n, int32_t d,
                          int32_t *list);

/* Collective over comm, at the end of embed: rank r has written dir/shard-r/
 * (ids, emb, vis). nlist_req < 0: the default for the global image count; 0:
 * no lists (nothing written). Trains both spaces' centroids (rank 0 writes
 * them to dir), and every rank writes its shard's ivf_lists.npy. *nlist_out:
 * the lists made (0: none), the same on every rank. */
mms_status mms_ivf_build(const char *dir, int32_t nlist_req, MPI_Comm comm, int32_t *nlist_out);

#endif
