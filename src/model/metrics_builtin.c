/* src/model/metrics_builtin.c — the four metrics every model reports by
 * default, as tff.learning.models.from_keras_model does: accuracy, loss,
 * num_examples and num_batches, in TFF's unfinalized [total, count] form.
 *
 * What it does: per-batch update() functions that produce sums which are
 * exact in double (counts, and loss * n for a float-valued loss), and
 * finalize() functions that divide with "divide_no_nan" semantics (0 when
 * the count is 0).
 *
 * What it deliberately does not do: accumulate anything itself (the caller
 * owns the running sums and their exact federated reduction), check its
 * arguments (the model dispatch already did), or allocate: the metric objects
 * are static and never freed. */
#include <stddef.h>
#include <stdint.h>

#include "fedmpi/metrics.h"

/* ---- accuracy: [number correct, number of examples] ---------------------- */

/* probs (n, C), y (n). Prediction = argmax over C, ties -> lowest index
 * (NaN entries never win a comparison). */
static void fm__accuracy_update(const fm_metric *m, const float *probs, const int32_t *y, size_t n, size_t num_classes,
                                double loss, double *out) {
  (void)m;
  (void)loss;
  size_t correct = 0;
  for (size_t i = 0; i < n; i++) {
    const float *p = probs + i * num_classes;
    size_t best = 0;
    for (size_t c = 1; c < num_classes; c++)
      if (p[c] > p[best]) best = c;
    if (y[i] >= 0 && (size_t)y[i] == best) correct++;
  }
  out[0] = (double)correct;
  out[1] = (double)n;
}

static double fm__ratio_finalize(const fm_metric *m, const double *sums) {
  (void)m;
  return sums[1] != 0.0 ? sums[0] / sums[1] : 0.0;
}

/* ---- loss: [sum of loss * n, sum of n] (example-weighted mean) ------------ */

static void fm__loss_update(const fm_metric *m, const float *probs, const int32_t *y, size_t n, size_t num_classes,
                            double loss, double *out) {
  (void)m;
  (void)probs;
  (void)y;
  (void)num_classes;
  out[0] = loss * (double)n;
  out[1] = (double)n;
}

/* ---- num_examples: [n] ----------------------------------------------------- */

static void fm__num_examples_update(const fm_metric *m, const float *probs, const int32_t *y, size_t n,
                                    size_t num_classes, double loss, double *out) {
  (void)m;
  (void)probs;
  (void)y;
  (void)num_classes;
  (void)loss;
  out[0] = (double)n;
}

/* ---- num_batches: [1] ------------------------------------------------------ */

static void fm__num_batches_update(const fm_metric *m, const float *probs, const int32_t *y, size_t n,
                                   size_t num_classes, double loss, double *out) {
  (void)m;
  (void)probs;
  (void)y;
  (void)n;
  (void)num_classes;
  (void)loss;
  out[0] = 1.0;
}

static double fm__identity_finalize(const fm_metric *m, const double *sums) {
  (void)m;
  return sums[0];
}

static const fm_metric fm__metric_accuracy = {
    .name = "accuracy", .num_values = 2, .update = fm__accuracy_update, .finalize = fm__ratio_finalize,
    .per_position = 1};
static const fm_metric fm__metric_loss = {
    .name = "loss", .num_values = 2, .update = fm__loss_update, .finalize = fm__ratio_finalize};
static const fm_metric fm__metric_num_examples = {.name = "num_examples",
                                                  .num_values = 1,
                                                  .is_integer = 1,
                                                  .update = fm__num_examples_update,
                                                  .finalize = fm__identity_finalize};
static const fm_metric fm__metric_num_batches = {.name = "num_batches",
                                                 .num_values = 1,
                                                 .is_integer = 1,
                                                 .update = fm__num_batches_update,
                                                 .finalize = fm__identity_finalize};

const fm_metric *fm_metric_accuracy(void) { return &fm__metric_accuracy; }
const fm_metric *fm_metric_loss(void) { return &fm__metric_loss; }
const fm_metric *fm_metric_num_examples(void) { return &fm__metric_num_examples; }
const fm_metric *fm_metric_num_batches(void) { return &fm__metric_num_batches; }
