/* src/core/metrics_param.c — metrics with a parameter: top-k accuracy and the
 * recall of one class. Each is an ordinary fm_metric (unfinalized sums that
 * are exact in double, a finalizer), so it flows through the same exact
 * federated sums as the built-ins. Deliberately no multi-output metrics: a
 * per-class report is one metric per class ("recall/<c>"). */
#include <stdio.h>
#include <string.h>

#include "fedmpi/metrics.h"
#include "internal.h"

typedef struct fm__param_metric {
  fm_metric m;   /* first: the object handed out */
  size_t param;  /* k, or the class */
  char name[48];
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
  *out = &pm->m;
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
