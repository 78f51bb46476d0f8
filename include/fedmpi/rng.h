/* fedmpi/rng.h — counter-based random numbers keyed by (seed, round, client, purpose).
 *
 * Every random draw in fedmpi (cohort sampling, shuffling, initialisation,
 * synthetic data) comes from a Philox4x32-10 stream (Random123) whose key is
 * the run seed and whose counter holds the round, the client index and a
 * purpose tag. A stream therefore never depends on which rank or thread
 * draws from it, which is what makes results independent of the layout. */
#ifndef FEDMPI_RNG_H
#define FEDMPI_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Purpose tags: distinct streams for distinct uses of the same (round, client). */
typedef enum fm_rng_purpose {
  FM_RNG_SAMPLE = 1,  /* cohort sampling (client = unused, 0) */
  FM_RNG_SHUFFLE = 2, /* per-client example shuffle */
  FM_RNG_INIT = 3,    /* model initialisation (round = 0, client = tensor index) */
  FM_RNG_SYNTH = 4,   /* synthetic data generation */
  FM_RNG_SPLIT = 5,   /* train/test splitting */
  FM_RNG_DP_NOISE = 6, /* DP noise on rank 0 (round = the round, client = the aggregator in its chain) */
  FM_RNG_SECAGG_MASK = 7,  /* SecAgg+ pairwise mask (client = pair id of the two clients) */
  FM_RNG_SECAGG_GRAPH = 8, /* SecAgg+ masking graph: the ring permutation (client = 0) */
  FM_RNG_DROPOUT = 9,      /* dropout masks during local training (round = the round, client = the client index;
                              the local step and the dropout layer are mixed into the key: docs/models.md) */
  FM_RNG_DP_TREE = 10,     /* tree aggregation node noise on rank 0 (round = the node counter, client = 2 * the aggregator + tree) */
  FM_RNG_USER = 100   /* first tag free for user code */
} fm_rng_purpose;

/* One stream. Plain struct: copy it, keep it on the stack. */
typedef struct fm_rng {
  uint32_t key[2];  /* seed */
  uint32_t ctr[4];  /* [round, client_lo, client_hi | purpose << 16, block] */
  uint32_t buf[4];  /* current output block */
  unsigned used;    /* words of buf consumed */
} fm_rng;

/* Start the stream (seed, round, client, purpose). client < 2^48, purpose < 2^16. Not collective. */
FM_EXTERN void fm_rng_init(fm_rng *r, uint64_t seed, uint64_t round, uint64_t client, uint32_t purpose);
/* Next uniform 32-bit word. */
FM_EXTERN uint32_t fm_rng_u32(fm_rng *r);
/* Next uniform 64-bit word. */
FM_EXTERN uint64_t fm_rng_u64(fm_rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
FM_EXTERN double fm_rng_uniform(fm_rng *r);
/* Uniform integer in [0, n), unbiased (rejection). n > 0. */
FM_EXTERN uint64_t fm_rng_below(fm_rng *r, uint64_t n);
/* Standard normal N(0, 1) (Box-Muller, one value per call). */
FM_EXTERN double fm_rng_normal(fm_rng *r);
/* In-place Fisher-Yates permutation of idx[0..n). */
FM_EXTERN void fm_rng_shuffle_u32(fm_rng *r, uint32_t *idx, size_t n);

#ifdef __cplusplus
}
#endif
#endif
