/* fedmpi/io.h — model weights files, metrics files, checkpoints and the
 * output-directory lock.
 *
 * Weights file (HDF5, format "fedmpi-weights", version 1):
 *   root attributes: fedmpi_format = "fedmpi-weights" (string),
 *                    format_version = 1 (int), model = "<model name>" (string)
 *   /weights/<tensor name>: float32 dataset of the tensor's shape; tensor names
 *                    with '/' become nested groups ("dense_0/kernel");
 *                    attributes trainable (int) and index (int, position in the layout).
 * The file is written to "<path>.tmp", flushed and renamed, so an existing
 * file is never left half-written.
 *
 * Metrics files: one JSON object per round (metrics.jsonl) with TFF's nesting,
 * and a CSV (metrics.csv) whose columns are the slash paths. */
#ifndef FEDMPI_IO_H
#define FEDMPI_IO_H

#include <stdint.h>
#include <stdio.h>

#include "fedmpi/exact.h"
#include "fedmpi/export.h"
#include "fedmpi/hparams.h"
#include "fedmpi/metrics.h"
#include "fedmpi/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FM_WEIGHTS_FORMAT "fedmpi-weights"
#define FM_WEIGHTS_FORMAT_VERSION 1

/* Save all P floats of w under layout l. Not collective (call on one rank). */
FM_EXTERN int fm_weights_save(const char *path, const fm_layout *l, const float *w, const char *model_name);
/* Load into w (P floats) every tensor of l from path. Errors name the file and
 * tensor: FM_ERR_IO, FM_ERR_FORMAT (not a weights file, wrong version),
 * FM_ERR_LAYOUT_MISMATCH (a tensor missing, a shape differs, extra tensors). */
FM_EXTERN int fm_weights_load(const char *path, const fm_layout *l, float *w);

/* Metrics writer: appends one record per round to dir/metrics.jsonl and
 * dir/metrics.csv. The CSV header is fixed by the first record; later keys
 * not in the header are kept in the JSON lines only. */
typedef struct fm_metrics_writer fm_metrics_writer;
FM_EXTERN int fm_metrics_writer_open(const char *dir, fm_metrics_writer **out);
/* Continue the files of a resumed run: records of rounds after `round` (done
 * after the checkpoint, so about to be redone) are dropped, the rest kept,
 * and new records are appended under the existing CSV header. Missing files
 * are created. */
FM_EXTERN int fm_metrics_writer_resume(const char *dir, long round, fm_metrics_writer **out);
FM_EXTERN int fm_metrics_writer_write(fm_metrics_writer *w, long round, const fm_metrics *m);
FM_EXTERN void fm_metrics_writer_close(fm_metrics_writer **w);
/* Nested JSON text of a report (caller frees with fm_free). */
FM_EXTERN char *fm_metrics_to_json(const fm_metrics *m, long round);

/* ---- checkpoints -------------------------------------------------------------
 *
 * Checkpoint file (HDF5, format "fedmpi-checkpoint", version 1), one per saved
 * round, named DIR/ckpt_<round, 8 digits>.h5:
 *   root attributes: fedmpi_format, format_version, round, seed (uint64),
 *                    model, config (the run's effective INI text), config_hash
 *                    (FNV-1a 64 of config, hex), fedmpi_version, blas_kernel (optional)
 *   /state/weights                 float32 [P]   global model weights
 *   /state/client_work             attributes: the client optimizer hparams
 *   /state/finalizer               attributes: the server optimizer hparams;
 *                                  step (int64), num_slots (int64), n (int64)
 *   /state/finalizer/slots         float32 [num_slots, n] (absent if num_slots = 0)
 *   /state/aggregator              attribute kind (stateless aggregators)
 *   /state/client_work/base_slots  float32 [k, T]  Mime Lite's base optimizer state
 *                                  (attributes base_step, base_num_slots)
 *   /state/control                 float32 [T]     SCAFFOLD's server control variate
 *   /state/clients/ids, /values    uint64 [K], float32 [K, T]  per-client state
 *                                  (SCAFFOLD's c_i), sorted by client index
 *   /state/evaluation_sums         uint64 [M, 2]  build_fed_eval's total_rounds
 *                                  accumulators (128-bit exact sums: lo, hi)
 * Datasets are chunked with HDF5's Fletcher-32 checksum, so a corrupted file
 * fails to load instead of loading wrong numbers. Cohort sampling and
 * shuffling are functions of (seed, round, client), so seed and round are the
 * complete sampler and generator state. Writes go to "<name>.tmp", are
 * fsync'ed and renamed; the directory is fsync'ed too. */

#define FM_CHECKPOINT_FORMAT "fedmpi-checkpoint"
#define FM_CHECKPOINT_FORMAT_VERSION 1

typedef struct fm_state_view fm_state_view;

/* A loaded checkpoint; view points into the owned buffers. */
typedef struct fm_checkpoint {
  char *path;
  char *config;
  char *model;
  char *fedmpi_version;
  char *blas_kernel;     /* the OpenBLAS kernel that wrote it; NULL in checkpoints older than the attribute */
  float *weights;
  float *slots;
  float *base_slots;     /* Mime Lite */
  float *control;        /* SCAFFOLD */
  uint64_t *client_ids;  /* per-client state */
  float *client_values;
  fm_exact *eval_sums;   /* federated evaluation's total_rounds accumulators */
  double *agg_state;     /* the aggregators' state (adaptive norms), or NULL */
  float *agg_server;     /* their server-only state (tree aggregation's noise), or NULL */
  struct {
    uint64_t round, seed;
    size_t numel;
    int64_t opt_step;
    size_t opt_num_slots, opt_n;
    fm_hparams client_hparams, server_hparams;
    size_t base_num_slots;
    int64_t base_step;
    size_t num_clients, client_floats;
    size_t eval_num_values;
    size_t agg_state_n;
    size_t agg_server_n;
  } info;
} fm_checkpoint;

/* Save state (view) to dir/ckpt_<round>.h5 and then delete older checkpoints
 * except the first one and the newest keep_last (>= 1). Not collective.
 * Stale "*.tmp" files left by an interrupted save are removed. */
FM_EXTERN int fm_checkpoint_save(const char *dir, const fm_state_view *v, const char *model_name,
                                 const char *config_text, int keep_last);
/* Load and fully validate one checkpoint file (every dataset read, checksums
 * checked). FM_ERR_IO, FM_ERR_FORMAT naming the file and the part. */
FM_EXTERN int fm_checkpoint_load(const char *path, fm_checkpoint *out);
FM_EXTERN void fm_checkpoint_free(fm_checkpoint *c);
/* Fill a state view from a loaded checkpoint (pointers into c). */
FM_EXTERN void fm_checkpoint_view(const fm_checkpoint *c, fm_state_view *v);
/* Load the newest checkpoint in dir that is valid. Each newer one that is not
 * is reported through warn (may be NULL) and skipped. FM_ERR_IO if dir has
 * no valid checkpoint. */
typedef void (*fm_warn_fn)(void *ctx, const char *message);
FM_EXTERN int fm_checkpoint_load_latest(const char *dir, fm_checkpoint *out, fm_warn_fn warn, void *ctx);
/* FNV-1a 64-bit hash of text as 16 hex digits (buf >= 17 bytes). */
FM_EXTERN void fm_config_hash(const char *text, char *buf);

/* ---- output-directory lock ---------------------------------------------------
 *
 * A run holds an advisory lock on its output directory: flock(LOCK_EX |
 * LOCK_NB) on DIR/.fedmpi.lock, a file that holds "host <name> pid <pid>" of
 * the holder. The kernel releases the lock when the holder exits or is
 * killed, so no stale lock survives a crash; the file stays. flock locks
 * belong to an open file description: a second fm_dir_lock_open in the same
 * process conflicts with the first, as another process would. */

#define FM_DIR_LOCK_FILE ".fedmpi.lock"

typedef struct fm_dir_lock fm_dir_lock;

/* Lock the existing directory dir (in) and write this host and pid into the
 * lock file; *out (out) is the held lock, owned by the caller, released by
 * fm_dir_lock_close. Not collective (call on one rank). Returns FM_ERR_IO if
 * another holder has the lock, with a message naming its host and pid, and
 * leaves the directory unchanged; FM_ERR_UNSUPPORTED if the file system does
 * not support flock (ENOSYS, EOPNOTSUPP, ENOLCK: e.g. Lustre mounted with
 * noflock, NFS without a lock manager); FM_ERR_IO if the file cannot be
 * opened, locked or written; FM_ERR_INVALID_ARG, FM_ERR_NOMEM. Test seam: a
 * positive FEDMPI_TEST_FLOCK_ERRNO in the environment makes flock fail with
 * that errno. */
FM_EXTERN int fm_dir_lock_open(const char *dir, fm_dir_lock **out);
/* Release the lock (NULL and *lock NULL accepted; sets *lock to NULL). The
 * lock file is left in place. Not collective. */
FM_EXTERN void fm_dir_lock_close(fm_dir_lock **lock);

#ifdef __cplusplus
}
#endif
#endif
