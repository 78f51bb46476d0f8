/* fedmpi/data.h — federated client data in TFF's HDF5 layout, batching, and
 * the Synthetic(alpha, beta) generator.
 *
 * File layout (TFF's HDF5ClientData): /examples/<client_id>/<feature>, one
 * dataset per feature, all features of a client sharing their first dimension
 * (the client's number of examples). Client ids are in sorted (name) order,
 * so client index i means the i-th id in that order, as TFF's client_ids.
 * A client's features are read only when it is loaded (streaming); opening a
 * file reads only the index (ids and example counts).
 *
 * Dimension legend: n examples of a client, D features per example. */
#ifndef FEDMPI_DATA_H
#define FEDMPI_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/export.h"
#include "fedmpi/model.h"
#include "fedmpi/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_client_data fm_client_data;

/* One client's examples in memory. */
typedef struct fm_examples {
  size_t n;             /* examples */
  size_t num_features;  /* D */
  float *x;             /* (n, D) features as float32 */
  int32_t *y;           /* (n) labels */
} fm_examples;

typedef struct fm_data_options {
  const char *x_feature; /* NULL: auto ("x", else "pixels", else "image") */
  const char *y_feature; /* NULL: auto ("y", else "label") */
} fm_data_options;

/* Open an HDF5 ClientData file; reads the client index (ids, counts) and the
 * feature shape of the first non-empty client. Errors name the file and the
 * client/feature: FM_ERR_IO (cannot open), FM_ERR_FORMAT (no /examples,
 * a feature missing, first dimensions differ, unsupported dtype, no clients).
 * Not collective (every rank opens the file itself). */
FM_EXTERN int fm_client_data_open(const char *path, const fm_data_options *opt, fm_client_data **out);
/* In-memory client data (tests, user code): client i has counts[i] examples,
 * rows of x (sum counts, D) and y in client order, ids in sorted order
 * (NULL ids: "client_<i>" zero padded). Copies everything. */
FM_EXTERN int fm_client_data_from_memory(size_t num_clients, const char *const *ids, const size_t *counts,
                                         const float *x, const int32_t *y, int ndim, const size_t *shape,
                                         fm_client_data **out);
FM_EXTERN void fm_client_data_close(fm_client_data **cd);

FM_EXTERN size_t fm_client_data_num_clients(const fm_client_data *cd);
FM_EXTERN const char *fm_client_data_client_id(const fm_client_data *cd, size_t i);
FM_EXTERN size_t fm_client_data_num_examples(const fm_client_data *cd, size_t i);
FM_EXTERN uint64_t fm_client_data_total_examples(const fm_client_data *cd);
/* Per-example feature shape of the x feature. */
FM_EXTERN void fm_client_data_feature_shape(const fm_client_data *cd, int *ndim, size_t shape[FM_MAX_DIMS]);
/* Number of classes recorded in the file's root attribute "num_classes", or 0. */
FM_EXTERN size_t fm_client_data_num_classes(const fm_client_data *cd);
/* The path it was opened from ("<memory>" for in-memory data). */
FM_EXTERN const char *fm_client_data_path(const fm_client_data *cd);

/* Load client i's examples into *out (allocated; free with fm_examples_free).
 * Safe to call from several threads at once (HDF5 access is serialised).
 * Errors name file, client id and feature. */
FM_EXTERN int fm_client_data_load(const fm_client_data *cd, size_t i, fm_examples *out);
FM_EXTERN void fm_examples_free(fm_examples *ex);
/* Largest label + 1 over all clients (reads every client; for files without
 * a num_classes attribute). */
FM_EXTERN int fm_client_data_scan_num_classes(const fm_client_data *cd, size_t *num_classes);

/* ---- batching: shuffle -> repeat(epochs) -> batch(batch_size) -------------- */

typedef struct fm_batching {
  int epochs;          /* >= 1 */
  size_t batch_size;   /* >= 1 */
  int shuffle;         /* 1: a fresh seeded permutation per epoch */
} fm_batching;

/* Examples iterated (epochs * n) and batches (ceil of that / batch_size). */
FM_EXTERN void fm_batching_counts(const fm_batching *b, size_t n, uint64_t *num_examples, uint64_t *num_batches);

/* Iterator over one client's batches. Batches may span epoch boundaries,
 * exactly as TFF's dataset.shuffle().repeat(E).batch(B). The permutation of
 * epoch e comes from fm_rng(seed, round, client, FM_RNG_SHUFFLE). */
typedef struct fm_batch_iter {
  fm_batching b;
  size_t n;          /* examples of the client */
  uint64_t total;    /* epochs * n */
  uint64_t pos;      /* examples emitted so far */
  uint32_t *order;   /* (n) scratch owned by the caller */
  uint64_t seed, round, client;
  fm_rng rng;       /* the shuffle stream */
  uint64_t epoch_end; /* stream position where the current permutation ends */
} fm_batch_iter;

/* order must hold n entries and stay valid while iterating. */
FM_EXTERN void fm_batch_iter_init(fm_batch_iter *it, const fm_batching *b, size_t n, uint32_t *order, uint64_t seed,
                                  uint64_t round, uint64_t client);
/* Gather the next batch into xb (batch_size, D) and yb (batch_size): returns
 * its size, 0 when the stream is exhausted. */
FM_EXTERN size_t fm_batch_iter_next(fm_batch_iter *it, const fm_examples *ex, float *xb, int32_t *yb);

/* ---- Synthetic(alpha, beta) (Li et al., FedProx, MLSys 2020) -------------- */

typedef struct fm_synth_options {
  double alpha;          /* model heterogeneity (std of u_k) */
  double beta;           /* data heterogeneity (std of B_k) */
  int iid;               /* 1: Synthetic-IID (one W, b; v_k = 0) */
  size_t num_clients;    /* K, default recipe 30 */
  size_t num_features;   /* d = 60 */
  size_t num_classes;    /* C = 10 */
  double test_fraction;  /* 0.1: last 10% of each client's shuffled examples */
  size_t max_examples;   /* cap on a client's examples before the split, 0 = none */
  uint64_t seed;
} fm_synth_options;

/* The recipe's defaults (K 30, d 60, C 10, test 0.1, seed 0, alpha = beta = 1). */
FM_EXTERN void fm_synth_defaults(fm_synth_options *o);
/* Write the train and test files (test_path may be NULL). Same client ids in
 * both. Root attributes record the generator and its parameters. Files are
 * written to a temporary name and renamed into place. */
FM_EXTERN int fm_synth_write(const fm_synth_options *o, const char *train_path, const char *test_path);

#ifdef __cplusplus
}
#endif
#endif
