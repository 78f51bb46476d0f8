/* src/learning/aggregator_secure.c — TFF's secure mean: MeanFactory(
 * value_sum_factory=SecureSumFactory(upper, lower), weight_sum_factory=
 * SecureSumFactory(2**20 - 1, 0)) when weighted, UnweightedMeanFactory(
 * value_sum_factory=SecureSumFactory(...), count_sum_factory=
 * SecureSumFactory(1, 0)) when not, and tff.learning.secure_aggregator.
 *
 * Per client (prepare): w·v in float32 (MeanFactory multiplies before the
 * value sum), quantised onto [0, 2^32 - 1] by fm__secure_quantize_f32 and
 * added as integers into exact slots; the weight rounded to an integer and
 * clipped to [0, 2^20 - 1]; indicators of clients clipped on either side.
 * With masks=true the quantised words are masked over the round's SecAgg+
 * graph mod 2^B and sent as a low 24-bit and a high part (two slots each) so
 * that every contribution stays below the exact sum's limit. On rank 0 the
 * integer sums are taken mod 2^B, B = fm__secure_sum_bitwidth(32, clients)
 * (so, as TFF's simulation, the value sum never wraps), dequantised and
 * divided by the weight sum. See docs/secure-aggregation.md. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "learning_impl.h"
#include "../privacy/secure.h"

/* params: Q_* of the adaptive upper bound, then: */
enum { S_UPPER = 5, S_LOWER, S_MASKS };
#define S_WMAX 1048575.0 /* 2^20 - 1 */
#define S_LO_BITS 24

/* Own slots after the values (n, or 2n masked: low parts then high parts):
 * weight sum | value upper / lower clipped clients | weight upper / lower
 * clipped clients | clients with max |w·v| <= C | clients. */
enum { O_W, O_VUP, O_VLO, O_WUP, O_WLO, O_BELOW, O_CLIENTS, O_NUM };

static size_t sec_value_slots(const fm_aggregator *a, size_t n) { return a->params[S_MASKS] != 0 ? 2 * n : n; }
static size_t sec_num_slots(const fm_aggregator *a, size_t n) { return sec_value_slots(a, n) + O_NUM; }

/* The value bounds this round uses: adaptive [-t, t] with t = multiplier·C + increment. */
static void sec_bounds(const fm_aggregator *a, const double *st, double *lo, double *hi) {
  if (a->adaptive) {
    *hi = fm__estimate_norm(a, st);
    *lo = -*hi;
  } else {
    *hi = a->params[S_UPPER];
    *lo = a->params[S_LOWER];
  }
}

static int sec_bitwidth(uint64_t clients, int *b) { return fm__secure_sum_bitwidth(32, clients ? clients : 1, b); }

/* Mask q (as words mod 2^B) over the cohort's graph and add low/high parts. */
static size_t sec_add_masked(const fm__agg_value *v, const uint32_t *q, uint64_t *y, fm_exact *slots, double limit) {
  int b;
  fm__secagg_graph *g = NULL;
  if (v->cohort == 0 || v->pos >= v->cohort || sec_bitwidth(v->cohort, &b) != FM_OK ||
      fm__secagg_graph_create(v->seed, v->round, v->cohort, &g) != FM_OK)
    return v->n;
  for (size_t j = 0; j < v->n; j++) y[j] = q[j];
  int rc = fm__secagg_mask(g, v->pos, y, v->n, b);
  fm__secagg_graph_destroy(g);
  if (rc != FM_OK) return v->n;
  size_t bad = 0;
  const uint64_t lo_mask = (UINT64_C(1) << S_LO_BITS) - 1;
  for (size_t j = 0; j < v->n; j++) {
    bad += (size_t)fm_exact_add(&slots[j], (double)(y[j] & lo_mask), limit);
    bad += (size_t)fm_exact_add(&slots[v->n + j], (double)(y[j] >> S_LO_BITS), limit);
  }
  return bad;
}

/* The client's max |w·v|: TFF's SecureSumFactory with a single estimation
 * process (secure.py, _create_update_state_single_process) feeds the process
 * max(|_reduce_nest_min(value)|, |_reduce_nest_max(value)|), computed before
 * clipping, of the value the sum factory receives, i.e. after MeanFactory's
 * weighting. */
static double sec_max_abs(const float *x, size_t n) {
  double m = 0;
  for (size_t j = 0; j < n; j++)
    if (!(fabs((double)x[j]) <= m)) m = fabs((double)x[j]);
  return m;
}

static size_t sec_prepare(const fm_aggregator *a, const double *st, const fm__agg_value *v, float weight,
                          fm_exact *slots, double limit, float *scratch) {
  const size_t n = v->n, nv = sec_value_slots(a, n);
  const int masks = a->params[S_MASKS] != 0;
  float w = a->weighted ? weight : 1.0f;
  for (size_t j = 0; j < n; j++) scratch[j] = v->f ? v->f[j] * w : (float)(v->d[j] * w);
  double lo, hi;
  sec_bounds(a, st, &lo, &hi);
  uint32_t *q = fm__malloc((n ? n : 1) * sizeof *q);
  uint64_t *y = masks ? fm__malloc((n ? n : 1) * sizeof *y) : NULL;
  uint64_t up = 0, down = 0;
  size_t bad = 0;
  if (!q || (masks && !y) || fm__secure_quantize_f32(scratch, n, lo, hi, q, &up, &down) != FM_OK) {
    bad = n + 1;
  } else if (masks) {
    bad = sec_add_masked(v, q, y, slots, limit);
  } else {
    for (size_t j = 0; j < n; j++) bad += (size_t)fm_exact_add(&slots[j], (double)q[j], limit);
  }
  fm__free(q);
  fm__free(y);
  fm_exact *o = slots + nv;
  /* The weight: SecureSumFactory(2^20 - 1, 0) on the rounded weight;
   * unweighted, the count of SecureSumFactory(1, 0) (always 1, never clipped). */
  double wi = a->weighted ? nearbyint((double)weight) : 1.0;
  int wup = wi > S_WMAX, wlo = wi < 0;
  wi = wup ? S_WMAX : wlo ? 0.0 : wi;
  bad += (size_t)fm_exact_add(&o[O_W], wi, limit);
  bad += (size_t)fm_exact_add(&o[O_VUP], up ? 1.0 : 0.0, limit);
  bad += (size_t)fm_exact_add(&o[O_VLO], down ? 1.0 : 0.0, limit);
  bad += (size_t)fm_exact_add(&o[O_WUP], wup ? 1.0 : 0.0, limit);
  bad += (size_t)fm_exact_add(&o[O_WLO], wlo ? 1.0 : 0.0, limit);
  if (a->adaptive) bad += (size_t)fm_exact_add(&o[O_BELOW], sec_max_abs(scratch, n) <= st[0] ? 1.0 : 0.0, limit);
  bad += (size_t)fm_exact_add(&o[O_CLIENTS], 1.0, limit);
  return bad;
}

static uint64_t sec_u64(const fm_exact *e) { return (uint64_t)fm_exact_to_double(e); }

static int sec_finalize(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                        const fm__agg_round *r, double *out) {
  (void)r;
  const size_t nv = sec_value_slots(a, n);
  const fm_exact *o = slots + nv;
  const uint64_t clients = sec_u64(&o[O_CLIENTS]);
  int b;
  FM_CALL(sec_bitwidth(clients, &b));
  const uint64_t mod = b >= 64 ? UINT64_MAX : (UINT64_C(1) << b) - 1;
  uint64_t *s = fm__malloc((n ? n : 1) * sizeof *s);
  if (!s) return FM_ERR_NOMEM;
  for (size_t j = 0; j < n; j++) {
    uint64_t x = sec_u64(&slots[j]);
    if (a->params[S_MASKS] != 0) x += sec_u64(&slots[n + j]) << S_LO_BITS; /* wraps mod 2^64: fine mod 2^B */
    s[j] = x & mod;
  }
  double lo, hi;
  sec_bounds(a, st, &lo, &hi);
  int rc = clients ? fm__secure_dequantize_sum(s, n, clients, lo, hi, b, out) : FM_OK;
  fm__free(s);
  FM_CALL(rc);
  /* A zero weight sum gives NaN (0/0), as MeanFactory without no_nan_division. */
  double denom = fm_exact_to_double(&o[O_W]);
  for (size_t j = 0; j < n; j++) out[j] = (clients ? (double)(float)out[j] : 0.0) / denom;
  return FM_OK;
}

static int sec_put_group(fm_metrics *out, const char *prefix, const char *group, double up, double lo,
                         const fm_exact *cu, const fm_exact *cl, char *path) {
  snprintf(path, FM_METRIC_PATH_MAX, "%s/%s", prefix, group);
  FM_CALL(fm_metrics_put(out, path, 0, FM_METRIC_GROUP));
  FM_CALL(fm__put(out, path, "secure_upper_threshold", up, FM_METRIC_FLOAT));
  FM_CALL(fm__put(out, path, "secure_lower_threshold", lo, FM_METRIC_FLOAT));
  FM_CALL(fm__put(out, path, "secure_upper_clipped_count", fm_exact_to_double(cu), FM_METRIC_INT));
  return fm__put(out, path, "secure_lower_clipped_count", fm_exact_to_double(cl), FM_METRIC_INT);
}

static int sec_measurements(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                            const char *prefix, fm_metrics *out) {
  const fm_exact *o = slots + sec_value_slots(a, n);
  double lo, hi;
  sec_bounds(a, st, &lo, &hi);
  char path[FM_METRIC_PATH_MAX];
  FM_CALL(sec_put_group(out, prefix, "mean_value", hi, lo, &o[O_VUP], &o[O_VLO], path));
  if (a->params[S_MASKS] != 0) {
    /* SecAgg+'s cost: the largest number of bits a client of this cohort sends. */
    uint64_t clients = sec_u64(&o[O_CLIENTS]), best = 0, bits;
    int b;
    fm__secagg_graph *g = NULL;
    if (clients > 0) {
      FM_CALL(sec_bitwidth(clients, &b));
      FM_CALL(fm__secagg_graph_create(0, 0, clients, &g)); /* every client's degree is the same for any ring */
      for (size_t i = 0; i < clients; i++)
        if (fm__secagg_bits_per_client(g, i, n, b, &bits) == FM_OK && bits > best) best = bits;
      fm__secagg_graph_destroy(g);
    }
    FM_CALL(fm__put(out, path, "secagg_bits_per_client", (double)best, FM_METRIC_INT));
  }
  return sec_put_group(out, prefix, a->weighted ? "mean_weight" : "mean_count", a->weighted ? S_WMAX : 1.0, 0.0,
                       &o[O_WUP], &o[O_WLO], path);
}

static int sec_next_state(const fm_aggregator *a, double *st, const fm_exact *slots, size_t n,
                          const fm__agg_round *r) {
  (void)r;
  if (!a->adaptive) return FM_OK;
  const fm_exact *o = slots + sec_value_slots(a, n);
  double clients = fm_exact_to_double(&o[O_CLIENTS]);
  if (clients > 0) st[0] = fm__quantile_step(a, st[0], fm_exact_to_double(&o[O_BELOW]) / clients);
  return FM_OK;
}

static const fm__aggregator_ops fm__secure_mean_ops = {.type = "secure_mean",
                                                       .num_slots = sec_num_slots,
                                                       .state_size = fm__quantile_state_size,
                                                       .state_init = fm__quantile_init,
                                                       .prepare = sec_prepare,
                                                       .finalize = sec_finalize,
                                                       .measurements = sec_measurements,
                                                       .next_state = sec_next_state};

int fm_aggregator_create_secure_mean(double upper_bound_threshold, double lower_bound_threshold,
                                     const fm_quantile_estimate *upper_estimate, int weighted, int masks,
                                     fm_aggregator **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  if (upper_estimate) {
    FM_CALL(fm__check_quantile("secure_mean: upper_bound_threshold", upper_estimate));
  } else {
    FM_CHECK(isfinite(upper_bound_threshold), FM_ERR_HPARAM_VALUE,
             "secure_mean: upper_bound_threshold must be a finite number, got %g", upper_bound_threshold);
    FM_CHECK(isfinite(lower_bound_threshold), FM_ERR_HPARAM_VALUE,
             "secure_mean: lower_bound_threshold must be a finite number, got %g", lower_bound_threshold);
    FM_CHECK(upper_bound_threshold > lower_bound_threshold, FM_ERR_HPARAM_VALUE,
             "secure_mean: upper_bound_threshold (%g) must be > lower_bound_threshold (%g)", upper_bound_threshold,
             lower_bound_threshold);
  }
  char name[160];
  if (upper_estimate)
    snprintf(name, sizeof name, "secure_mean(upper_bound_threshold=no_noise(...),weighted=%d%s)", weighted != 0,
             masks ? ",masks=true" : "");
  else
    snprintf(name, sizeof name, "secure_mean(upper_bound_threshold=%g,lower_bound_threshold=%g,weighted=%d%s)",
             upper_bound_threshold, lower_bound_threshold, weighted != 0, masks ? ",masks=true" : "");
  FM_CALL(fm__aggregator_new(&fm__secure_mean_ops, name, weighted != 0, NULL, out));
  if (upper_estimate) fm__set_quantile(*out, upper_estimate);
  (*out)->params[S_UPPER] = upper_bound_threshold;
  (*out)->params[S_LOWER] = lower_bound_threshold;
  (*out)->params[S_MASKS] = masks != 0;
  return FM_OK;
}

int fm_aggregator_create_secure(int zeroing, int clipping, int weighted, fm_aggregator **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  /* secure_aggregator's upper bound: no_noise(50, 0.95, 1, multiplier=2,
   * secure_estimation=True); bounds [-t, t]. */
  fm_quantile_estimate q = {50.0, 0.95, 1.0, 2.0, 0.0};
  fm_aggregator *a = NULL;
  FM_CALL(fm_aggregator_create_secure_mean(0, 0, &q, weighted, 0, &a));
  if (clipping) {
    fm_quantile_estimate c = fm_quantile_estimate_no_noise(1.0, 0.8, 0.2);
    FM_CALL(fm_aggregator_create_clipping_adaptive(&c, a, &a));
  }
  if (zeroing) FM_CALL(fm__default_zeroing(a, &a));
  *out = a;
  return FM_OK;
}
