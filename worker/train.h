/* train.h: distributed unsupervised GraphSAGE training (`mmsage train`).
 *
 * One rank per part of a METIS partition. Per step:
 *   1. the global batch is the next slice of the epoch's permutation of
 *      random-walk pair slots (walks.h); each rank takes the pairs whose start
 *      node it owns; 20 negatives are drawn from degree^0.75, the same on every
 *      rank (keyed by the step)
 *   2. each node's embedding is computed by the rank that owns it, from its
 *      own shard and halo (shard.h), with samples and dropout keyed by (step,
 *      node), so the step is the same computation at any rank count; partners
 *      and negatives owned elsewhere are requested, their z arrive and their
 *      dL/dz go back (three MPI_Alltoallv)
 *   3. the parameter gradient block is summed with one MPI_Allreduce, the tag
 *      rows the step touched with one sparse exchange; every rank applies the
 *      same Adam update to its replica
 * Checkpoints (atomic: temporary name, then rename) hold the parameters, the tag
 * table, the Adam state and the step; the RNG needs no state (counter-based).
 */
#ifndef MMS_TRAIN_H
#define MMS_TRAIN_H

#include <mpi.h>
#include <stdint.h>

#include "mms_status.h"

typedef struct {
    const char *graph;
    const char *out;
    int force, resume;
    int epochs;          /* 0: bounded by max_steps / time_limit only */
    int64_t max_steps;   /* 0: no bound */
    double time_limit;   /* seconds, 0: no bound */
    uint64_t seed;
    double lr;
    int batch;           /* positive pairs per step (global) */
    int neg;             /* shared negatives per step */
    double dropout;
    int hidden;          /* per half */
    int s1, s2;          /* outer / inner samples */
    int walks, walk_len;
    int freeze_tags;
    int tag_init_mean;   /* tag inputs start as the mean of their images' inputs (else random) */
    double hide_tags;    /* fraction of images sampled without their tag edges */
    double temperature;  /* affinities are z_u . z_v / temperature (reference: 1) */
    double link_weight;  /* weight of the image->tag link term (0: off, the paper's loss alone) */
    int link_neg;        /* shared negative tags per step of the link term (0: every tag) */
    double link_temperature; /* the link term's affinities are divided by this */
    double query_train;  /* fraction of image pair starts whose walk-loss side is embedded
                            without their own tag edges, as a query is (0: paper) */
    int64_t ckpt_every;  /* steps between checkpoints (0: only at the end) */
    int log_every;       /* steps between progress lines */
} mms_train_params_t;

void mms_train_params_default(mms_train_params_t *p);

typedef struct {
    int64_t steps, pairs;
    int64_t steps_per_epoch;
    double first_loss, last_loss; /* smoothed */
    double seconds, pairs_per_sec;
    double gflops; /* achieved by forward + backward (all ranks) */
    int64_t halo_bytes, allreduce_bytes_per_step, exchange_bytes_per_step;
    int stopped_by; /* 0 epochs done, 1 max steps, 2 time limit */
    double link_loss; /* smoothed link-term loss (unweighted), NAN when off */
} mms_train_summary_t;

/* Collective. */
mms_status mms_train(const mms_train_params_t *p, MPI_Comm comm, mms_train_summary_t *sum);

#endif
