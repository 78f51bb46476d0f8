/* src/learning/aggregators.c — aggregator types (tff.aggregators):
 * MeanFactory, UnweightedMeanFactory, SumFactory and clipping_factory with a
 * fixed L2 norm, which wraps an inner aggregator through the same table.
 *
 * Each type adds one client's value into exact slots (prepare, on a worker
 * thread) and turns the summed slots into the aggregate and its measurements
 * on rank 0 (finalize, measurements). A wrapper keeps its own slots first and
 * its inner's after them, so a chain is one contiguous run of the round's
 * packed buffer and still costs one reduction. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "learning_impl.h"

/* ---- dispatch ---------------------------------------------------------- */

size_t fm__aggregator_num_slots(const fm_aggregator *a, size_t n) { return a->ops->num_slots(a, n); }

size_t fm__aggregator_prepare(const fm_aggregator *a, const fm__agg_value *v, float w, fm_exact *slots, double limit,
                              float *scratch) {
  return a->ops->prepare(a, v, w, slots, limit, scratch);
}

int fm__aggregator_finalize(const fm_aggregator *a, const fm_exact *slots, size_t n, double *out) {
  return a->ops->finalize(a, slots, n, out);
}

int fm__aggregator_measurements(const fm_aggregator *a, const fm_exact *slots, size_t n, const char *prefix,
                                fm_metrics *out) {
  return a->ops->measurements ? a->ops->measurements(a, slots, n, prefix, out) : FM_OK;
}

static int fm__aggregator_new(const fm__aggregator_ops *ops, const char *name, int weighted, fm_aggregator *inner,
                              fm_aggregator **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  fm_aggregator *a = fm__calloc(1, sizeof *a);
  if (!a) {
    fm_aggregator_destroy(&inner);
    return FM_ERR_NOMEM;
  }
  a->ops = ops;
  snprintf(a->name, sizeof a->name, "%s", name);
  a->weighted = weighted;
  a->inner = inner;
  *out = a;
  return FM_OK;
}

void fm_aggregator_destroy(fm_aggregator **a) {
  if (!a || !*a) return;
  if ((*a)->ops->destroy) (*a)->ops->destroy(*a);
  fm_aggregator_destroy(&(*a)->inner);
  fm__free(*a);
  *a = NULL;
}

int fm_aggregator_is_weighted(const fm_aggregator *a) { return a->weighted; }
const char *fm_aggregator_name(const fm_aggregator *a) { return a->name; }
const fm_aggregator *fm_aggregator_inner(const fm_aggregator *a) { return a ? a->inner : NULL; }

/* Add w * v into slots[0..n): floats as fm_exact_add_scaled, doubles one by one. */
static size_t fm__add_value(const fm__agg_value *v, float w, fm_exact *slots, double limit) {
  if (v->f) return fm_exact_add_scaled(slots, v->f, w, v->n, limit);
  size_t bad = 0;
  for (size_t i = 0; i < v->n; i++) bad += (size_t)fm_exact_add(&slots[i], (double)w * v->d[i], limit);
  return bad;
}

/* ---- mean (MeanFactory, UnweightedMeanFactory) ------------------------------------ */

static size_t mean_num_slots(const fm_aggregator *a, size_t n) {
  (void)a;
  return n + 1; /* sum(w * v) | sum(w) */
}

static size_t mean_prepare(const fm_aggregator *a, const fm__agg_value *v, float weight, fm_exact *slots,
                           double limit, float *scratch) {
  (void)scratch;
  /* MeanFactory: sum(w * v) and sum(w); UnweightedMeanFactory: sum(v) and
   * the number of clients (TFF counts every client, zeroed ones included). */
  float w = a->weighted ? weight : 1.0f;
  size_t bad = fm__add_value(v, w, slots, limit);
  bad += (size_t)fm_exact_add(&slots[v->n], (double)w, limit);
  return bad;
}

static int mean_finalize(const fm_aggregator *a, const fm_exact *slots, size_t n, double *out) {
  (void)a;
  /* A zero denominator gives NaN (0/0), as MeanFactory without no_nan_division. */
  double denom = fm_exact_to_double(&slots[n]);
  for (size_t i = 0; i < n; i++) out[i] = fm_exact_to_double(&slots[i]) / denom;
  return FM_OK;
}

static int mean_measurements(const fm_aggregator *a, const fm_exact *slots, size_t n, const char *prefix,
                             fm_metrics *out) {
  (void)slots, (void)n;
  /* MeanFactory reports OrderedDict(mean_value=(), mean_weight=()). */
  char path[FM_METRIC_PATH_MAX];
  snprintf(path, sizeof path, "%s/mean_value", prefix);
  FM_CALL(fm_metrics_put(out, path, 0, FM_METRIC_GROUP));
  snprintf(path, sizeof path, "%s/%s", prefix, a->weighted ? "mean_weight" : "mean_count");
  return fm_metrics_put(out, path, 0, FM_METRIC_GROUP);
}

static const fm__aggregator_ops fm__mean_ops = {.type = "mean",
                                                .num_slots = mean_num_slots,
                                                .prepare = mean_prepare,
                                                .finalize = mean_finalize,
                                                .measurements = mean_measurements};

int fm_aggregator_create_mean(fm_aggregator **out) { return fm__aggregator_new(&fm__mean_ops, "mean", 1, NULL, out); }
int fm_aggregator_create_unweighted_mean(fm_aggregator **out) {
  return fm__aggregator_new(&fm__mean_ops, "unweighted_mean", 0, NULL, out);
}
int fm__aggregator_create_plain_mean(int weighted, fm_aggregator **out) {
  return weighted ? fm_aggregator_create_mean(out) : fm_aggregator_create_unweighted_mean(out);
}

/* ---- sum (SumFactory) ------------------------------------------------------------- */

static size_t sum_num_slots(const fm_aggregator *a, size_t n) {
  (void)a;
  return n;
}

static size_t sum_prepare(const fm_aggregator *a, const fm__agg_value *v, float weight, fm_exact *slots, double limit,
                          float *scratch) {
  (void)a, (void)weight, (void)scratch;
  return fm__add_value(v, 1.0f, slots, limit);
}

static int sum_finalize(const fm_aggregator *a, const fm_exact *slots, size_t n, double *out) {
  (void)a;
  for (size_t i = 0; i < n; i++) out[i] = fm_exact_to_double(&slots[i]);
  return FM_OK;
}

static const fm__aggregator_ops fm__sum_ops = {
    .type = "sum", .num_slots = sum_num_slots, .prepare = sum_prepare, .finalize = sum_finalize};

int fm__aggregator_create_sum(fm_aggregator **out) { return fm__aggregator_new(&fm__sum_ops, "sum", 0, NULL, out); }

/* ---- clipping_factory (fixed L2 norm) ---------------------------------------------- */

/* Slots: [clipped count | inner's]. */
static size_t clip_num_slots(const fm_aggregator *a, size_t n) { return 1 + fm__aggregator_num_slots(a->inner, n); }

static size_t clip_prepare(const fm_aggregator *a, const fm__agg_value *v, float weight, fm_exact *slots,
                           double limit, float *scratch) {
  if (!v->f) return fm__aggregator_prepare(a->inner, v, weight, slots + 1, limit, scratch);
  /* The client's global L2 norm over the whole value; above the clip it is
   * scaled by clip / norm in float32 (as TFF clips before aggregating). */
  double ss = 0;
  for (size_t i = 0; i < v->n; i++) ss += (double)v->f[i] * (double)v->f[i];
  double norm = sqrt(ss);
  if (!(norm > a->param)) return fm__aggregator_prepare(a->inner, v, weight, slots + 1, limit, scratch);
  float scale = (float)(a->param / norm);
  for (size_t i = 0; i < v->n; i++) scratch[i] = v->f[i] * scale;
  fm__agg_value clipped = {.f = scratch, .n = v->n};
  size_t bad = (size_t)fm_exact_add(&slots[0], 1.0, limit);
  return bad + fm__aggregator_prepare(a->inner, &clipped, weight, slots + 1, limit, scratch);
}

static int clip_finalize(const fm_aggregator *a, const fm_exact *slots, size_t n, double *out) {
  return fm__aggregator_finalize(a->inner, slots + 1, n, out);
}

static int clip_measurements(const fm_aggregator *a, const fm_exact *slots, size_t n, const char *prefix,
                             fm_metrics *out) {
  /* clipping_factory: OrderedDict(clipping=inner's, clipping_norm, clipped_count). */
  char path[FM_METRIC_PATH_MAX];
  snprintf(path, sizeof path, "%s/clipping", prefix);
  FM_CALL(fm_metrics_put(out, path, 0, FM_METRIC_GROUP));
  FM_CALL(fm__aggregator_measurements(a->inner, slots + 1, n, path, out));
  snprintf(path, sizeof path, "%s/clipping_norm", prefix);
  FM_CALL(fm_metrics_put(out, path, a->param, FM_METRIC_FLOAT));
  snprintf(path, sizeof path, "%s/clipped_count", prefix);
  return fm_metrics_put(out, path, fm_exact_to_double(&slots[0]), FM_METRIC_INT);
}

static const fm__aggregator_ops fm__clip_ops = {.type = "clipping",
                                                .num_slots = clip_num_slots,
                                                .prepare = clip_prepare,
                                                .finalize = clip_finalize,
                                                .measurements = clip_measurements};

int fm_aggregator_create_clipping(double clipping_norm, fm_aggregator *inner, fm_aggregator **out) {
  if (!inner) return FM_ERR(FM_ERR_INVALID_ARG, "clipping needs an inner aggregator");
  if (!(isfinite(clipping_norm) && clipping_norm > 0)) {
    fm_aggregator_destroy(&inner);
    return FM_ERR(FM_ERR_HPARAM_VALUE, "clipping: clipping_norm must be a finite number > 0, got %g", clipping_norm);
  }
  char name[64];
  snprintf(name, sizeof name, "clipping(%.50s)", inner->name);
  int weighted = inner->weighted;
  FM_CALL(fm__aggregator_new(&fm__clip_ops, name, weighted, inner, out));
  (*out)->param = clipping_norm;
  return FM_OK;
}
