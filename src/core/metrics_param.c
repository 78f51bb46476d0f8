/* src/core/metrics_param.c — metrics with a parameter: top-k accuracy and the
 * recall of one class. Each is an ordinary fm_metric (unfinalized sums that
 * are exact in double, a finalizer), so it flows through the same exact
 * federated sums as the built-ins. Deliberately no multi-output metrics: a
 * per-class report is one metric per class ("recall/<c>"). */
#include <stdio.h>
#include <string.h>

#include "fedmpi/metrics.h"
#include "internal.h"

#define FM__MAX_MASKED 8

typedef struct fm__param_metric {
  fm_metric m;   /* first: the object handed out */
  size_t param;  /* k, or the class, or the number of masked tokens */
  char name[64];
  int32_t masked[FM__MAX_MASKED];
} fm__param_metric;

static double fm__ratio(const fm_metric *m, const double *sums) {
  (void)m;
  return sums[1] > 0 ? sums[0] / sums[1] : 0.0;
}

static void fm__top_k_update(const fm_metric *m, const float *probs, const int32_t *y, size_t n, size_t num_classes,
                             double loss, double *out) {
  (void)loss;
  size_t k = ((const fm__param_metric *)m)->param;
  for (size_t i = 0; i < n; i++) {
    const float *p = probs + i * num_classes;
    float py = p[y[i]];
    size_t above = 0; /* classes strictly more probable than the label (ties favour the label) */
    for (size_t c = 0; c < num_classes; c++) above += p[c] > py;
    out[0] += above < k;
  }
  out[1] += (double)n;
}

static void fm__recall_update(const fm_metric *m, const float *probs, const int32_t *y, size_t n, size_t num_classes,
                              double loss, double *out) {
  (void)loss;
  size_t cls = ((const fm__param_metric *)m)->param;
  for (size_t i = 0; i < n; i++) {
    if ((size_t)y[i] != cls) continue;
    const float *p = probs + i * num_classes;
    size_t best = 0; /* argmax, ties to the lowest index as accuracy does */
    for (size_t c = 1; c < num_classes; c++)
      if (p[c] > p[best]) best = c;
    out[0] += best == cls;
    out[1] += 1.0;
  }
}

static int fm__param_metric_new(size_t param, fm_metric_update_fn update, fm_metric **out) {
  fm__param_metric *pm = fm__calloc(1, sizeof *pm);
  if (!pm) return FM_ERR_NOMEM;
  pm->param = param;
  pm->m.name = pm->name;
  pm->m.num_values = 2;
  pm->m.is_integer = 0;
  pm->m.update = update;
  pm->m.finalize = fm__ratio;
  pm->m.data = pm;
  pm->m.per_position = 1; /* every one reads probs and y position by position */
  *out = &pm->m;
  return FM_OK;
}

/* ---- masked accuracy and the token count (TFF's keras_metrics.py) ------------------ */

static int fm__is_masked(const fm__param_metric *pm, int32_t y) {
  for (size_t j = 0; j < pm->param; j++)
    if (pm->masked[j] == y) return 1;
  return 0;
}

static void fm__masked_accuracy_update(const fm_metric *m, const float *probs, const int32_t *y, size_t n,
                                       size_t num_classes, double loss, double *out) {
  (void)loss;
  const fm__param_metric *pm = (const fm__param_metric *)m;
  for (size_t i = 0; i < n; i++) {
    if (fm__is_masked(pm, y[i])) continue;
    const float *p = probs + i * num_classes;
    size_t best = 0; /* argmax, ties to the lowest index (tf.argmax) */
    for (size_t c = 1; c < num_classes; c++)
      if (p[c] > p[best]) best = c;
    out[0] += y[i] >= 0 && (size_t)y[i] == best;
    out[1] += 1.0;
  }
}

static void fm__num_tokens_update(const fm_metric *m, const float *probs, const int32_t *y, size_t n,
                                  size_t num_classes, double loss, double *out) {
  (void)probs;
  (void)num_classes;
  (void)loss;
  const fm__param_metric *pm = (const fm__param_metric *)m;
  for (size_t i = 0; i < n; i++) out[0] += !fm__is_masked(pm, y[i]);
}

static double fm__sum_finalize(const fm_metric *m, const double *sums) {
  (void)m;
  return sums[0];
}

static int fm__masked_new(const int32_t *masked, size_t num_masked, fm_metric_update_fn update, fm_metric **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  FM_CHECK(num_masked <= FM__MAX_MASKED, FM_ERR_INVALID_ARG, "a masked metric takes at most %d masked tokens (got %zu)",
           FM__MAX_MASKED, num_masked);
  FM_CHECK(masked || num_masked == 0, FM_ERR_INVALID_ARG, "masked tokens are NULL");
  FM_CALL(fm__param_metric_new(num_masked, update, out));
  fm__param_metric *pm = (fm__param_metric *)*out;
  if (num_masked) memcpy(pm->masked, masked, num_masked * sizeof *masked);
  return FM_OK;
}

int fm_metric_create_masked_accuracy(const char *name, const int32_t *masked, size_t num_masked, fm_metric **out) {
  FM_CHECK(name && *name, FM_ERR_INVALID_ARG, "a masked accuracy needs a name");
  FM_CHECK(strlen(name) < sizeof((fm__param_metric *)0)->name, FM_ERR_INVALID_ARG,
           "metric name '%s' is longer than %zu characters", name, sizeof((fm__param_metric *)0)->name - 1);
  FM_CALL(fm__masked_new(masked, num_masked, fm__masked_accuracy_update, out));
  snprintf(((fm__param_metric *)*out)->name, sizeof((fm__param_metric *)0)->name, "%s", name);
  return FM_OK;
}

int fm_metric_create_num_tokens(const int32_t *masked, size_t num_masked, fm_metric **out) {
  FM_CALL(fm__masked_new(masked, num_masked, fm__num_tokens_update, out));
  fm__param_metric *pm = (fm__param_metric *)*out;
  snprintf(pm->name, sizeof pm->name, "num_tokens");
  pm->m.num_values = 1;
  pm->m.is_integer = 1;
  pm->m.finalize = fm__sum_finalize;
  return FM_OK;
}

int fm_metric_create_top_k(size_t k, fm_metric **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  FM_CHECK(k >= 1, FM_ERR_INVALID_ARG, "top-k accuracy needs k >= 1");
  FM_CALL(fm__param_metric_new(k, fm__top_k_update, out));
  snprintf(((fm__param_metric *)*out)->name, sizeof((fm__param_metric *)0)->name, "top_%zu_accuracy", k);
  return FM_OK;
}

int fm_metric_create_recall(size_t class_index, fm_metric **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  FM_CALL(fm__param_metric_new(class_index, fm__recall_update, out));
  snprintf(((fm__param_metric *)*out)->name, sizeof((fm__param_metric *)0)->name, "recall/%zu", class_index);
  return FM_OK;
}

void fm_metric_destroy(fm_metric **m) {
  if (!m || !*m) return;
  fm__free((fm__param_metric *)*m);
  *m = NULL;
}
