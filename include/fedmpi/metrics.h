/* fedmpi/metrics.h — unfinalized metrics (TFF's [total, count] protocol) and
 * the nested metrics report a round produces.
 *
 * A metric is a pair of functions: update() turns one batch into unfinalized
 * values (sums such as [correct, count]); finalize() turns the sums over all
 * clients into the reported number (sum_then_finalize). Unfinalized values of
 * one batch must be exact in double (counts, loss * batch size of a float
 * loss), so that the federated sum can be exact.
 *
 * A report (fm_metrics) is a flat list of entries whose names are slash
 * paths, "client_work/train/loss", mirroring TFF's nested OrderedDicts. */
#ifndef FEDMPI_METRICS_H
#define FEDMPI_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FM_METRIC_MAX_VALUES 1024

typedef struct fm_metric fm_metric;

/* One batch's unfinalized contribution.
 *   probs  (n, C) predicted class probabilities; y (n) labels; loss = mean batch loss.
 *   out    (m->num_values) values to add to the running sums. */
typedef void (*fm_metric_update_fn)(const fm_metric *m, const float *probs, const int32_t *y, size_t n,
                                    size_t num_classes, double loss, double *out);
/* Final value from the summed unfinalized values. */
typedef double (*fm_metric_finalize_fn)(const fm_metric *m, const double *sums);

struct fm_metric {
  const char *name;         /* key in the report, e.g. "accuracy" */
  size_t num_values;        /* unfinalized slots, <= FM_METRIC_MAX_VALUES */
  int is_integer;           /* the finalized value is a count */
  fm_metric_update_fn update;
  fm_metric_finalize_fn finalize;
  const void *data;         /* for the implementation */
  /* 1: update() sees every prediction position of the batch. For a model with a
   * label per time step (fm_model_num_targets T > 1) that is probs (n * T, C),
   * y (n * T) and n * T positions; for a classifier it is the same as 0. Metrics
   * that read probs and y set it (accuracy, top-k, recall and the masked ones
   * do); metrics that count examples (loss, num_examples, num_batches) leave it
   * 0 and see the batch's n sequences. */
  int per_position;
};

/* Built-ins, as tff.learning.models.from_keras_model reports them. Static
 * objects; never freed. */
FM_EXTERN const fm_metric *fm_metric_accuracy(void);     /* "accuracy": [correct, count] */
FM_EXTERN const fm_metric *fm_metric_loss(void);         /* "loss": [sum loss*n, sum n] */
FM_EXTERN const fm_metric *fm_metric_num_examples(void); /* "num_examples": [sum n] */
FM_EXTERN const fm_metric *fm_metric_num_batches(void);  /* "num_batches": [number of batches] */

/* Parameterised built-ins, allocated (free with fm_metric_destroy after the
 * model that uses them):
 *   top_k accuracy "top_<k>_accuracy": [label among the k most probable classes, count]
 *   recall of one class "recall/<c>":   [predicted c and label c, label c];
 *                                       finalized 0 when the class never occurs.
 * FM_ERR_INVALID_ARG for k == 0 or a class >= num_classes (when checked by the model). */
FM_EXTERN int fm_metric_create_top_k(size_t k, fm_metric **out);
FM_EXTERN int fm_metric_create_recall(size_t class_index, fm_metric **out);
/* Metrics of models with a label per time step, as TFF's
 * simulation/baselines/keras_metrics.py:
 *   MaskedCategoricalAccuracy "<name>": [positions whose argmax is the label,
 *     positions counted]; a position whose label is one of masked[] is not
 *     counted (per_position);
 *   NumTokensCounter "num_tokens": [labels that are not masked], an integer.
 * masked: up to 8 token ids (copied). FM_ERR_INVALID_ARG for a NULL or
 * empty name (masked accuracy), a name longer than 63 characters, or more
 * than 8 masked tokens. Free with fm_metric_destroy. */
FM_EXTERN int fm_metric_create_masked_accuracy(const char *name, const int32_t *masked, size_t num_masked,
                                               fm_metric **out);
FM_EXTERN int fm_metric_create_num_tokens(const int32_t *masked, size_t num_masked, fm_metric **out);
FM_EXTERN void fm_metric_destroy(fm_metric **m);

/* ---- reports -------------------------------------------------------------- */

#define FM_METRIC_PATH_MAX 128

typedef enum fm_metric_kind {
  FM_METRIC_FLOAT = 0,
  FM_METRIC_INT = 1,
  FM_METRIC_GROUP = 2 /* an (possibly empty) group, e.g. "distributor" */
} fm_metric_kind;

typedef struct fm_metric_entry {
  char path[FM_METRIC_PATH_MAX];
  double value;
  fm_metric_kind kind;
} fm_metric_entry;

typedef struct fm_metrics {
  size_t n, cap;
  fm_metric_entry *entry;
} fm_metrics;

FM_EXTERN void fm_metrics_init(fm_metrics *m);
FM_EXTERN void fm_metrics_clear(fm_metrics *m);
FM_EXTERN void fm_metrics_free(fm_metrics *m);
/* Append (or overwrite) path = value. FM_ERR_NOMEM / FM_ERR_INVALID_ARG (path too long). */
FM_EXTERN int fm_metrics_put(fm_metrics *m, const char *path, double value, fm_metric_kind kind);
/* FM_OK and *value, or FM_ERR_INVALID_ARG if path is absent. */
FM_EXTERN int fm_metrics_get(const fm_metrics *m, const char *path, double *value);
/* Append every entry of src with prefix "prefix/" (prefix may be ""). */
FM_EXTERN int fm_metrics_merge(fm_metrics *dst, const char *prefix, const fm_metrics *src);

#ifdef __cplusplus
}
#endif
#endif
