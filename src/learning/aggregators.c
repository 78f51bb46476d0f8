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

static size_t fm__own_state(const fm_aggregator *a) { return a->ops->state_size ? a->ops->state_size(a) : 0; }

size_t fm__aggregator_state_size(const fm_aggregator *a) {
  return a ? fm__own_state(a) + fm__aggregator_state_size(a->inner) : 0;
}

void fm__aggregator_state_init(const fm_aggregator *a, double *st) {
  for (; a; a = a->inner) {
    if (a->ops->state_init) a->ops->state_init(a, st);
    st += fm__own_state(a);
  }
}

size_t fm__aggregator_prepare(const fm_aggregator *a, const double *st, const fm__agg_value *v, float w,
                              fm_exact *slots, double limit, float *scratch) {
  return a->ops->prepare(a, st, v, w, slots, limit, scratch);
}

int fm__aggregator_finalize(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                            const fm__agg_round *r, double *out) {
  return a->ops->finalize(a, st, slots, n, r, out);
}

int fm__aggregator_measurements(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                                const char *prefix, fm_metrics *out) {
  return a->ops->measurements ? a->ops->measurements(a, st, slots, n, prefix, out) : FM_OK;
}

/* Every aggregator of the chain advances its own state from its own slots. */
int fm__aggregator_next_state(const fm_aggregator *a, double *st, const fm_exact *slots, size_t n,
                              const fm__agg_round *r) {
  for (; a; a = a->inner) {
    if (a->ops->next_state) FM_CALL(a->ops->next_state(a, st, slots, n, r));
    st += fm__own_state(a);
    slots += a->inner ? a->ops->num_slots(a, n) - a->inner->ops->num_slots(a->inner, n) : 0;
  }
  return FM_OK;
}

int fm__aggregator_check_round(const fm_aggregator *a, size_t cohort_size) {
  for (; a; a = a->inner)
    if (a->ops->check_round) FM_CALL(a->ops->check_round(a, cohort_size));
  return FM_OK;
}

/* Only a leaf has server state (fm__aggregator_new refuses a second one),
 * and the wrappers' own state comes before it. */
static const fm_aggregator *fm__server_owner(const fm_aggregator *a, size_t *st_off) {
  size_t off = 0;
  for (; a; a = a->inner) {
    if (a->ops->server_size) break;
    off += fm__own_state(a);
  }
  if (st_off) *st_off = off;
  return a;
}

size_t fm__aggregator_server_size(const fm_aggregator *a, size_t n) {
  const fm_aggregator *o = fm__server_owner(a, NULL);
  return o ? o->ops->server_size(o, n) : 0;
}

size_t fm__aggregator_server_used(const fm_aggregator *a, const double *st, size_t n) {
  size_t off;
  const fm_aggregator *o = fm__server_owner(a, &off);
  return o ? o->ops->server_used(o, st + off, n) : 0;
}

void fm__aggregator_server_init(const fm_aggregator *a, double *st, float *sv, size_t n, uint64_t seed) {
  size_t off;
  const fm_aggregator *o = fm__server_owner(a, &off);
  if (o && o->ops->server_init) o->ops->server_init(o, st + off, sv, n, seed);
}

int fm_aggregator_check_cohort_size(const fm_aggregator *a, size_t cohort_size) {
  FM_CHECK(a, FM_ERR_INVALID_ARG, "aggregator is NULL");
  return fm__aggregator_check_round(a, cohort_size);
}

int fm__aggregator_new(const fm__aggregator_ops *ops, const char *name, int weighted, fm_aggregator *inner,
                              fm_aggregator **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  fm_aggregator *a = fm__calloc(1, sizeof *a);
  if (!a) {
    fm_aggregator_destroy(&inner);
    return FM_ERR_NOMEM;
  }
  if (ops->server_size && inner) {
    fm__free(a);
    fm_aggregator_destroy(&inner);
    return FM_ERR(FM_ERR_INVALID_ARG, "%s keeps server state and so must be the innermost aggregator", name);
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
size_t fm__agg_add_value(const fm__agg_value *v, float w, fm_exact *slots, double limit) {
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

static size_t mean_prepare(const fm_aggregator *a, const double *st, const fm__agg_value *v, float weight,
                           fm_exact *slots, double limit, float *scratch) {
  (void)st, (void)scratch;
  /* MeanFactory: sum(w * v) and sum(w); UnweightedMeanFactory: sum(v) and
   * the number of clients (TFF counts every client, zeroed ones included). */
  float w = a->weighted ? weight : 1.0f;
  size_t bad = fm__agg_add_value(v, w, slots, limit);
  bad += (size_t)fm_exact_add(&slots[v->n], (double)w, limit);
  return bad;
}

static int mean_finalize(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                         const fm__agg_round *r, double *out) {
  (void)a, (void)st, (void)r;
  /* A zero denominator gives NaN (0/0), as MeanFactory without no_nan_division. */
  double denom = fm_exact_to_double(&slots[n]);
  fm_exact_to_double_n(out, slots, n);
  for (size_t i = 0; i < n; i++) out[i] /= denom;
  return FM_OK;
}

int fm__put(fm_metrics *out, const char *prefix, const char *name, double v, fm_metric_kind kind) {
  char path[FM_METRIC_PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", prefix, name) >= (int)sizeof path)
    return FM_ERR(FM_ERR_INVALID_ARG, "metric name %s/%s is too long", prefix, name);
  return fm_metrics_put(out, path, v, kind);
}

static int mean_measurements(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                             const char *prefix, fm_metrics *out) {
  (void)st, (void)slots, (void)n;
  /* MeanFactory reports OrderedDict(mean_value=(), mean_weight=()). */
  FM_CALL(fm__put(out, prefix, "mean_value", 0, FM_METRIC_GROUP));
  return fm__put(out, prefix, a->weighted ? "mean_weight" : "mean_count", 0, FM_METRIC_GROUP);
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

static size_t sum_prepare(const fm_aggregator *a, const double *st, const fm__agg_value *v, float weight,
                          fm_exact *slots, double limit, float *scratch) {
  (void)a, (void)st, (void)weight, (void)scratch;
  return fm__agg_add_value(v, 1.0f, slots, limit);
}

static int sum_finalize(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                        const fm__agg_round *r, double *out) {
  (void)a, (void)st, (void)r;
  fm_exact_to_double_n(out, slots, n);
  return FM_OK;
}

static const fm__aggregator_ops fm__sum_ops = {
    .type = "sum", .num_slots = sum_num_slots, .prepare = sum_prepare, .finalize = sum_finalize};

int fm__aggregator_create_sum(fm_aggregator **out) { return fm__aggregator_new(&fm__sum_ops, "sum", 0, NULL, out); }
int fm_aggregator_create_sum(fm_aggregator **out) { return fm__aggregator_create_sum(out); }

/* ---- norms and the quantile estimate (PrivateQuantileEstimationProcess.no_noise) -- */

/* The global norm of a value: order 1, 2 or inf (any other value means inf). */
double fm__agg_norm(const fm__agg_value *v, double order) {
  double acc = 0;
  for (size_t i = 0; i < v->n; i++) {
    double x = v->f ? (double)v->f[i] : v->d[i];
    if (order == 1) acc += fabs(x);
    else if (order == 2) acc += x * x;
    else if (!(fabs(x) <= acc)) acc = fabs(x); /* NaN propagates */
  }
  return order == 2 ? sqrt(acc) : acc;
}

/* A quantile estimate's parameters in params[0..4]: initial_estimate,
 * target_quantile, learning_rate, multiplier, increment. Its state is the
 * current estimate C; the norm it gives is multiplier * C + increment. The
 * clients send (norm <= C) and a count of 1 into two slots; on rank 0
 * C <- C * exp(-learning_rate * (fraction below - target_quantile)), the
 * geometric update of tfp.NoPrivacyQuantileEstimatorQuery. */

double fm__estimate_norm(const fm_aggregator *a, const double *st) {
  return a->adaptive ? a->params[Q_MULT] * st[0] + a->params[Q_INCR] : a->param;
}

void fm__quantile_init(const fm_aggregator *a, double *st) { st[0] = a->params[Q_INIT]; }
size_t fm__quantile_state_size(const fm_aggregator *a) { return a->adaptive ? 1 : 0; }

double fm__quantile_step(const fm_aggregator *a, double estimate, double below_fraction) {
  double b = below_fraction < 0 ? 0 : below_fraction > 1 ? 1 : below_fraction;
  return estimate * exp(-a->params[Q_LR] * (b - a->params[Q_TARGET]));
}

int fm__check_quantile(const char *who, const fm_quantile_estimate *q) {
  FM_CHECK(q, FM_ERR_INVALID_ARG, "%s: NULL quantile estimate", who);
  FM_CHECK(isfinite(q->initial_estimate) && q->initial_estimate > 0, FM_ERR_HPARAM_VALUE,
           "%s: initial_estimate must be a finite number > 0, got %g", who, q->initial_estimate);
  FM_CHECK(isfinite(q->target_quantile) && q->target_quantile >= 0 && q->target_quantile <= 1, FM_ERR_HPARAM_VALUE,
           "%s: target_quantile must be in [0, 1], got %g", who, q->target_quantile);
  FM_CHECK(isfinite(q->learning_rate) && q->learning_rate >= 0, FM_ERR_HPARAM_VALUE,
           "%s: learning_rate must be a finite number >= 0, got %g", who, q->learning_rate);
  FM_CHECK(isfinite(q->multiplier) && q->multiplier > 0, FM_ERR_HPARAM_VALUE,
           "%s: multiplier must be a finite number > 0, got %g", who, q->multiplier);
  FM_CHECK(isfinite(q->increment) && q->increment >= 0, FM_ERR_HPARAM_VALUE,
           "%s: increment must be a finite number >= 0, got %g", who, q->increment);
  return FM_OK;
}

void fm__set_quantile(fm_aggregator *a, const fm_quantile_estimate *q) {
  a->adaptive = 1;
  a->params[Q_INIT] = q->initial_estimate;
  a->params[Q_TARGET] = q->target_quantile;
  a->params[Q_LR] = q->learning_rate;
  a->params[Q_MULT] = q->multiplier;
  a->params[Q_INCR] = q->increment;
}

fm_quantile_estimate fm_quantile_estimate_no_noise(double initial_estimate, double target_quantile,
                                                   double learning_rate) {
  fm_quantile_estimate q = {initial_estimate, target_quantile, learning_rate, 1.0, 0.0};
  return q;
}

/* Slots of a norm-bounding wrapper (clipping, zeroing):
 * [bounded count | below estimate | clients (adaptive only) | inner's]. */
static size_t bound_own_slots(const fm_aggregator *a) { return a->adaptive ? 3 : 1; }
static size_t bound_num_slots(const fm_aggregator *a, size_t n) {
  return bound_own_slots(a) + fm__aggregator_num_slots(a->inner, n);
}

static size_t bound_record(const fm_aggregator *a, const double *st, double norm, fm_exact *slots, double limit) {
  if (!a->adaptive) return 0;
  /* The estimate tracks the norms themselves (not multiplier * C + increment). */
  size_t bad = (size_t)fm_exact_add(&slots[1], norm <= st[0] ? 1.0 : 0.0, limit);
  return bad + (size_t)fm_exact_add(&slots[2], 1.0, limit);
}

static int bound_finalize(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                          const fm__agg_round *r, double *out) {
  return fm__aggregator_finalize(a->inner, st + fm__own_state(a), slots + bound_own_slots(a), n, r, out);
}

static int bound_next_state(const fm_aggregator *a, double *st, const fm_exact *slots, size_t n,
                            const fm__agg_round *r) {
  (void)n, (void)r;
  if (!a->adaptive) return FM_OK;
  double clients = fm_exact_to_double(&slots[2]);
  if (clients > 0) st[0] = fm__quantile_step(a, st[0], fm_exact_to_double(&slots[1]) / clients);
  return FM_OK;
}

/* ---- clipping_factory (fixed or adaptive L2 norm) ------------------------------------ */

static size_t clip_prepare(const fm_aggregator *a, const double *st, const fm__agg_value *v, float weight,
                           fm_exact *slots, double limit, float *scratch) {
  const double *ist = st + fm__own_state(a);
  fm_exact *islots = slots + bound_own_slots(a);
  if (!v->f) return fm__aggregator_prepare(a->inner, ist, v, weight, islots, limit, scratch);
  /* The client's global L2 norm over the whole value; above the clip it is
   * scaled by clip / norm in float32 (as TFF clips before aggregating). */
  double norm = fm__agg_norm(v, 2), clip = fm__estimate_norm(a, st);
  size_t bad = bound_record(a, st, norm, slots, limit);
  if (!(norm > clip)) return bad + fm__aggregator_prepare(a->inner, ist, v, weight, islots, limit, scratch);
  float scale = (float)(clip / norm);
  for (size_t i = 0; i < v->n; i++) scratch[i] = v->f[i] * scale;
  fm__agg_value clipped = *v;
  clipped.f = scratch;
  bad += (size_t)fm_exact_add(&slots[0], 1.0, limit);
  return bad + fm__aggregator_prepare(a->inner, ist, &clipped, weight, islots, limit, scratch);
}

/* clipping_factory: OrderedDict(clipping=inner's, clipping_norm, clipped_count);
 * zeroing_factory: OrderedDict(zeroing=inner's, zeroing_norm, zeroed_count). */
static int bound_measurements(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                              const char *prefix, fm_metrics *out) {
  const char *type = a->ops->type, *count = strcmp(type, "zeroing") ? "clipped_count" : "zeroed_count";
  char path[FM_METRIC_PATH_MAX], norm[32];
  snprintf(path, sizeof path, "%s/%s", prefix, type);
  snprintf(norm, sizeof norm, "%s_norm", type);
  FM_CALL(fm_metrics_put(out, path, 0, FM_METRIC_GROUP));
  FM_CALL(fm__aggregator_measurements(a->inner, st + fm__own_state(a), slots + bound_own_slots(a), n, path, out));
  FM_CALL(fm__put(out, prefix, norm, fm__estimate_norm(a, st), FM_METRIC_FLOAT));
  return fm__put(out, prefix, count, fm_exact_to_double(&slots[0]), FM_METRIC_INT);
}

static const fm__aggregator_ops fm__clip_ops = {.type = "clipping",
                                                .num_slots = bound_num_slots,
                                                .state_size = fm__quantile_state_size,
                                                .state_init = fm__quantile_init,
                                                .prepare = clip_prepare,
                                                .finalize = bound_finalize,
                                                .measurements = bound_measurements,
                                                .next_state = bound_next_state};

static int fm__wrap(const fm__aggregator_ops *ops, const char *type, fm_aggregator *inner, fm_aggregator **out) {
  char name[160];
  snprintf(name, sizeof name, "%s(%.140s)", type, inner->name);
  return fm__aggregator_new(ops, name, inner->weighted, inner, out);
}

int fm_aggregator_create_clipping(double clipping_norm, fm_aggregator *inner, fm_aggregator **out) {
  if (!inner) return FM_ERR(FM_ERR_INVALID_ARG, "clipping needs an inner aggregator");
  if (!(isfinite(clipping_norm) && clipping_norm > 0)) {
    fm_aggregator_destroy(&inner);
    return FM_ERR(FM_ERR_HPARAM_VALUE, "clipping: clipping_norm must be a finite number > 0, got %g", clipping_norm);
  }
  FM_CALL(fm__wrap(&fm__clip_ops, "clipping", inner, out));
  (*out)->param = clipping_norm;
  return FM_OK;
}

int fm_aggregator_create_clipping_adaptive(const fm_quantile_estimate *q, fm_aggregator *inner, fm_aggregator **out) {
  if (!inner) return FM_ERR(FM_ERR_INVALID_ARG, "clipping needs an inner aggregator");
  int rc = fm__check_quantile("clipping", q);
  if (rc != FM_OK) {
    fm_aggregator_destroy(&inner);
    return rc;
  }
  FM_CALL(fm__wrap(&fm__clip_ops, "clipping", inner, out));
  fm__set_quantile(*out, q);
  return FM_OK;
}

/* ---- zeroing_factory (fixed or adaptive; norm order inf, 1 or 2) ------------------------ */

static size_t zero_prepare(const fm_aggregator *a, const double *st, const fm__agg_value *v, float weight,
                           fm_exact *slots, double limit, float *scratch) {
  const double *ist = st + fm__own_state(a);
  fm_exact *islots = slots + bound_own_slots(a);
  if (!v->f) return fm__aggregator_prepare(a->inner, ist, v, weight, islots, limit, scratch);
  double norm = fm__agg_norm(v, a->params[5]), threshold = fm__estimate_norm(a, st);
  size_t bad = bound_record(a, st, norm, slots, limit);
  if (!(norm > threshold)) return bad + fm__aggregator_prepare(a->inner, ist, v, weight, islots, limit, scratch);
  /* Above the threshold the whole value is replaced by zeros; the weight stays. */
  bad += (size_t)fm_exact_add(&slots[0], 1.0, limit);
  memset(scratch, 0, v->n * sizeof *scratch);
  fm__agg_value zero = *v;
  zero.f = scratch;
  return bad + fm__aggregator_prepare(a->inner, ist, &zero, weight, islots, limit, scratch);
}

static const fm__aggregator_ops fm__zero_ops = {.type = "zeroing",
                                                .num_slots = bound_num_slots,
                                                .state_size = fm__quantile_state_size,
                                                .state_init = fm__quantile_init,
                                                .prepare = zero_prepare,
                                                .finalize = bound_finalize,
                                                .measurements = bound_measurements,
                                                .next_state = bound_next_state};

static int fm__check_order(double order) {
  FM_CHECK(order == 1 || order == 2 || isinf(order), FM_ERR_HPARAM_VALUE,
           "zeroing: norm_order must be 1, 2 or inf, got %g", order);
  return FM_OK;
}

int fm_aggregator_create_zeroing(double zeroing_norm, double norm_order, fm_aggregator *inner, fm_aggregator **out) {
  if (!inner) return FM_ERR(FM_ERR_INVALID_ARG, "zeroing needs an inner aggregator");
  int rc = fm__check_order(norm_order);
  if (rc == FM_OK && !(isfinite(zeroing_norm) && zeroing_norm > 0))
    rc = FM_ERR(FM_ERR_HPARAM_VALUE, "zeroing: zeroing_norm must be a finite number > 0, got %g", zeroing_norm);
  if (rc != FM_OK) {
    fm_aggregator_destroy(&inner);
    return rc;
  }
  FM_CALL(fm__wrap(&fm__zero_ops, "zeroing", inner, out));
  (*out)->param = zeroing_norm;
  (*out)->params[5] = norm_order;
  return FM_OK;
}

int fm_aggregator_create_zeroing_adaptive(const fm_quantile_estimate *q, double norm_order, fm_aggregator *inner,
                                          fm_aggregator **out) {
  if (!inner) return FM_ERR(FM_ERR_INVALID_ARG, "zeroing needs an inner aggregator");
  int rc = fm__check_order(norm_order);
  if (rc == FM_OK) rc = fm__check_quantile("zeroing", q);
  if (rc != FM_OK) {
    fm_aggregator_destroy(&inner);
    return rc;
  }
  FM_CALL(fm__wrap(&fm__zero_ops, "zeroing", inner, out));
  fm__set_quantile(*out, q);
  (*out)->params[5] = norm_order;
  return FM_OK;
}

/* ---- DifferentiallyPrivateFactory.gaussian_fixed / gaussian_adaptive ------------------ */

/* params: Q_* of the clip's quantile estimate (adaptive), then: */
enum { D_Z = 5, D_K, D_SIGMA_B, D_ZV, D_CLIP };

/* Slots: [sum of clipped values (n) | sum of (below - 1/2) (adaptive only)]. */
static size_t dp_num_slots(const fm_aggregator *a, size_t n) { return n + (a->adaptive ? 1 : 0); }
static double dp_clip(const fm_aggregator *a, const double *st) { return a->adaptive ? st[0] : a->params[D_CLIP]; }

static size_t dp_prepare(const fm_aggregator *a, const double *st, const fm__agg_value *v, float weight,
                         fm_exact *slots, double limit, float *scratch) {
  (void)weight; /* unweighted: every client counts 1 */
  if (!v->f) return fm__agg_add_value(v, 1.0f, slots, limit);
  double norm = fm__agg_norm(v, 2), clip = dp_clip(a, st);
  size_t bad = 0;
  if (a->adaptive) bad += (size_t)fm_exact_add(&slots[v->n], norm <= clip ? 0.5 : -0.5, limit);
  if (!(norm > clip)) return bad + fm__agg_add_value(v, 1.0f, slots, limit);
  float scale = (float)(clip / norm);
  for (size_t i = 0; i < v->n; i++) scratch[i] = v->f[i] * scale;
  fm__agg_value clipped = *v;
  clipped.f = scratch;
  return bad + fm__agg_add_value(&clipped, 1.0f, slots, limit);
}

/* Noise of this aggregator's stream j (0: values, 1: the clipped count). */
static void dp_rng(const fm_aggregator *a, const fm__agg_round *r, unsigned j, fm_rng *g) {
  fm_rng_init(g, r->seed, r->round, (uint64_t)a->id * 2 + j, FM_RNG_DP_NOISE);
}

static int dp_finalize(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                       const fm__agg_round *r, double *out) {
  /* GaussianSumQuery: sum + N(0, (clip * z)^2) per coordinate, then
   * NormalizedQuery's division by clients_per_round. */
  fm_rng g;
  dp_rng(a, r, 0, &g);
  const double sd = dp_clip(a, st) * a->params[D_ZV], k = a->params[D_K];
  for (size_t i = 0; i < n; i++) {
    double noise = sd > 0 ? sd * fm_rng_normal(&g) : 0.0;
    out[i] = (fm_exact_to_double(&slots[i]) + noise) / k;
  }
  return FM_OK;
}

static int dp_measurements(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                           const char *prefix, fm_metrics *out) {
  (void)slots, (void)n;
  /* DifferentiallyPrivateFactory: OrderedDict(dp_query_metrics=..., dp=inner sum's ()). */
  char path[FM_METRIC_PATH_MAX];
  snprintf(path, sizeof path, "%s/dp_query_metrics", prefix);
  FM_CALL(fm_metrics_put(out, path, 0, FM_METRIC_GROUP));
  FM_CALL(fm__put(out, path, "clip", dp_clip(a, st), FM_METRIC_FLOAT));
  FM_CALL(fm__put(out, path, "noise_stddev", dp_clip(a, st) * a->params[D_ZV], FM_METRIC_FLOAT));
  return fm__put(out, prefix, "dp", 0, FM_METRIC_GROUP);
}

static int dp_next_state(const fm_aggregator *a, double *st, const fm_exact *slots, size_t n,
                         const fm__agg_round *r) {
  if (!a->adaptive) return FM_OK;
  /* QuantileEstimatorQuery: the noised sum of (below - 1/2) over
   * clients_per_round, shifted back by 1/2, drives the geometric update. */
  fm_rng g;
  dp_rng(a, r, 1, &g);
  double noise = a->params[D_SIGMA_B] > 0 ? a->params[D_SIGMA_B] * fm_rng_normal(&g) : 0.0;
  double below = (fm_exact_to_double(&slots[n]) + noise) / a->params[D_K] + 0.5;
  st[0] = fm__quantile_step(a, st[0], below);
  return FM_OK;
}

static int dp_check_round(const fm_aggregator *a, size_t cohort_size) {
  FM_CHECK((double)cohort_size == a->params[D_K], FM_ERR_HPARAM_VALUE,
           "%s: clients_per_round is %.0f but the round has %zu clients (it must match: it divides the noisy sum "
           "and sets the noise's scale)",
           a->ops->type, a->params[D_K], cohort_size);
  return FM_OK;
}

static const fm__aggregator_ops fm__dp_fixed_ops = {.type = "gaussian_fixed",
                                                    .num_slots = dp_num_slots,
                                                    .prepare = dp_prepare,
                                                    .finalize = dp_finalize,
                                                    .measurements = dp_measurements,
                                                    .check_round = dp_check_round};
static const fm__aggregator_ops fm__dp_adaptive_ops = {.type = "gaussian_adaptive",
                                                       .num_slots = dp_num_slots,
                                                       .state_size = fm__quantile_state_size,
                                                       .state_init = fm__quantile_init,
                                                       .prepare = dp_prepare,
                                                       .finalize = dp_finalize,
                                                       .measurements = dp_measurements,
                                                       .next_state = dp_next_state,
                                                       .check_round = dp_check_round};

static int fm__check_dp(const char *who, double z, uint64_t k) {
  FM_CHECK(isfinite(z) && z >= 0, FM_ERR_HPARAM_VALUE, "%s: noise_multiplier must be a finite number >= 0, got %g",
           who, z);
  FM_CHECK(k >= 1, FM_ERR_HPARAM_VALUE, "%s: clients_per_round must be >= 1", who);
  return FM_OK;
}

int fm_aggregator_create_dp_gaussian_fixed(double noise_multiplier, uint64_t clients_per_round, double clip,
                                           fm_aggregator **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  FM_CALL(fm__check_dp("gaussian_fixed", noise_multiplier, clients_per_round));
  FM_CHECK(isfinite(clip) && clip > 0, FM_ERR_HPARAM_VALUE, "gaussian_fixed: clip must be a finite number > 0, got %g",
           clip);
  char name[160];
  snprintf(name, sizeof name, "gaussian_fixed(noise_multiplier=%g,clients_per_round=%llu,clip=%g)", noise_multiplier,
           (unsigned long long)clients_per_round, clip);
  FM_CALL(fm__aggregator_new(&fm__dp_fixed_ops, name, 0, NULL, out));
  (*out)->params[D_Z] = (*out)->params[D_ZV] = noise_multiplier;
  (*out)->params[D_K] = (double)clients_per_round;
  (*out)->params[D_CLIP] = clip;
  return FM_OK;
}

fm_dp_adaptive fm_dp_adaptive_defaults(uint64_t clients_per_round) {
  fm_dp_adaptive d = {.initial_l2_norm_clip = 0.1,
                      .target_unclipped_quantile = 0.5,
                      .learning_rate = 0.2,
                      .clipped_count_stddev = 0.05 * (double)clients_per_round};
  return d;
}

int fm_aggregator_create_dp_gaussian_adaptive(double noise_multiplier, uint64_t clients_per_round,
                                              const fm_dp_adaptive *opt, fm_aggregator **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  FM_CALL(fm__check_dp("gaussian_adaptive", noise_multiplier, clients_per_round));
  fm_dp_adaptive d = opt ? *opt : fm_dp_adaptive_defaults(clients_per_round);
  fm_quantile_estimate q = fm_quantile_estimate_no_noise(d.initial_l2_norm_clip, d.target_unclipped_quantile,
                                                         d.learning_rate);
  FM_CALL(fm__check_quantile("gaussian_adaptive", &q));
  FM_CHECK(isfinite(d.clipped_count_stddev) && d.clipped_count_stddev > 0, FM_ERR_HPARAM_VALUE,
           "gaussian_adaptive: clipped_count_stddev must be a finite number > 0, got %g", d.clipped_count_stddev);
  /* The effective noise multiplier z splits between the values (z_v) and
   * the clipped-count query (2 sigma_b): z^-2 = z_v^-2 + (2 sigma_b)^-2. */
  const double z = noise_multiplier, sb2 = 2 * d.clipped_count_stddev;
  FM_CHECK(z < sb2, FM_ERR_HPARAM_VALUE,
           "gaussian_adaptive: noise_multiplier %g must be < 2 * clipped_count_stddev = %g: the clipped-count query "
           "alone would spend more than the whole privacy budget (raise clipped_count_stddev or clients_per_round)",
           z, sb2);
  double zv = z > 0 ? 1.0 / sqrt(1.0 / (z * z) - 1.0 / (sb2 * sb2)) : 0.0;
  char name[160];
  snprintf(name, sizeof name, "gaussian_adaptive(noise_multiplier=%g,clients_per_round=%llu)", z,
           (unsigned long long)clients_per_round);
  FM_CALL(fm__aggregator_new(&fm__dp_adaptive_ops, name, 0, NULL, out));
  fm__set_quantile(*out, &q);
  (*out)->params[D_Z] = z;
  (*out)->params[D_ZV] = zv;
  (*out)->params[D_K] = (double)clients_per_round;
  (*out)->params[D_SIGMA_B] = z > 0 ? d.clipped_count_stddev : 0.0;
  return FM_OK;
}

double fm_aggregator_value_noise_multiplier(const fm_aggregator *a) {
  double zv;
  if (fm__aggregator_tree(a, NULL, NULL, &zv)) return zv;
  for (; a; a = a->inner)
    if (a->ops == &fm__dp_fixed_ops || a->ops == &fm__dp_adaptive_ops) return a->params[D_ZV];
  return 0.0;
}

/* The effective noise multiplier of the chain's DP aggregator (what the
 * accountant uses), and its clients_per_round; 0 when there is none. */
int fm_aggregator_dp_params(const fm_aggregator *a, double *noise_multiplier, uint64_t *clients_per_round) {
  if (fm__aggregator_tree(a, noise_multiplier, clients_per_round, NULL)) return 1;
  for (; a; a = a->inner)
    if (a->ops == &fm__dp_fixed_ops || a->ops == &fm__dp_adaptive_ops) {
      if (noise_multiplier) *noise_multiplier = a->params[D_Z];
      if (clients_per_round) *clients_per_round = (uint64_t)a->params[D_K];
      return 1;
    }
  return 0;
}

/* ---- robust_aggregator, dp_aggregator (tff.learning's model_update_aggregator) --------- */

int fm__default_zeroing(fm_aggregator *inner, fm_aggregator **out) {
  fm_quantile_estimate q = {10.0, 0.98, log(10.0), 2.0, 1.0};
  return fm_aggregator_create_zeroing_adaptive(&q, INFINITY, inner, out);
}

int fm_aggregator_create_robust(int zeroing, int clipping, int weighted, fm_aggregator **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  fm_aggregator *a = NULL;
  FM_CALL(fm__aggregator_create_plain_mean(weighted, &a));
  if (clipping) {
    fm_quantile_estimate q = fm_quantile_estimate_no_noise(1.0, 0.8, 0.2);
    FM_CALL(fm_aggregator_create_clipping_adaptive(&q, a, &a));
  }
  if (zeroing) FM_CALL(fm__default_zeroing(a, &a));
  *out = a;
  return FM_OK;
}

int fm_aggregator_create_dp(double noise_multiplier, uint64_t clients_per_round, int zeroing, fm_aggregator **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  fm_aggregator *a = NULL;
  FM_CALL(fm_aggregator_create_dp_gaussian_adaptive(noise_multiplier, clients_per_round, NULL, &a));
  if (zeroing) FM_CALL(fm__default_zeroing(a, &a));
  *out = a;
  return FM_OK;
}
