/* src/learning/metrics_secure.c — TFF's secure_sum_then_finalize for the
 * round's metrics (tff.learning.metrics.secure_sum_then_finalize with its
 * SecureSumFactory over metrics, sum_aggregation_factory.py).
 *
 * Every unfinalized metric value gets a range [lower, upper] (default
 * [0, 2^20 - 1], as secure_sum_then_finalize's fixed defaults; a metric may
 * have its own). Values of float metrics (TFF's float32 Keras variables:
 * loss, accuracy, ...) are clipped to the range and quantised onto
 * [0, 2^32 - 1] as SecureSumFactory does for floats; values of integer
 * metrics (num_examples, num_batches: int64 in TFF) use the range
 * [ceil(lower), floor(upper)] and are shifted by the lower bound. Each
 * client's integers go into exact slots of the round's packed sum; on rank 0
 * the sum is taken mod 2^B with the bitwidth TFF computes (so it never wraps,
 * as in TFF's simulation) and mapped back, then the finalizers run.
 *
 * Values sharing (lower, upper, dtype) form one group, TFF's factory key
 * "<lower>/<upper>/<dtype>", and the group's measurements are reported as
 * secure_sum_measurements/<key>/secure_{upper,lower}_{threshold,clipped_count}:
 * the clipped counts count clients with any value of the group above / below
 * the range.
 *
 * Slots: [value 0 .. value M-1 | group 0 upper, lower clipped | ... | clients]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "learning_impl.h"
#include "../privacy/secure.h"

#define SM_KEY_MAX 80

typedef struct sm_group {
  double lo, hi;   /* float: the range; integer: ceil(lower), floor(upper) */
  double lo0, hi0; /* the range as given */
  int is_int;
  char key[SM_KEY_MAX];
} sm_group;

struct fm__secure_metrics {
  size_t m;          /* unfinalized metric values */
  size_t ngroups;
  sm_group *group;   /* (ngroups) */
  size_t *group_of;  /* (m) */
};

/* Python's str() of a float: the shortest repr that reads back, with ".0"
 * when it has no fraction or exponent (TFF's factory keys are built with it). */
static void sm_pyfloat(char *buf, size_t cap, double v) {
  int prec = 1;
  for (; prec < 17; prec++) {
    snprintf(buf, cap, "%.*e", prec - 1, v);
    if (strtod(buf, NULL) == v) break;
  }
  double a = fabs(v);
  if (v != 0 && (a < 1e-4 || a >= 1e16)) { /* repr's exponent form, e.g. 1e+16, 1e-05 */
    snprintf(buf, cap, "%.*e", prec - 1, v); /* two exponent digits at least, as Python's */
    return;
  }
  int exp10 = v == 0 ? 0 : (int)floor(log10(a));
  int decimals = prec - 1 - exp10;
  snprintf(buf, cap, "%.*f", decimals > 0 ? decimals : 0, v);
  if (!strchr(buf, '.')) strncat(buf, ".0", cap - strlen(buf) - 1);
}

static void sm_key(sm_group *g) {
  if (g->is_int) {
    snprintf(g->key, sizeof g->key, "%.0f/%.0f/int64", g->lo, g->hi);
  } else {
    char lo[32], hi[32];
    sm_pyfloat(lo, sizeof lo, g->lo);
    sm_pyfloat(hi, sizeof hi, g->hi);
    snprintf(g->key, sizeof g->key, "%s/%s/float32", lo, hi);
  }
}

/* The range of metric mt: its own entry, else the default entry (metric NULL
 * or ""), else TFF's [0, 2^20 - 1]. Checked as TFF checks it. */
static int sm_range(const fm_metric *mt, const fm_metric_value_range *r, size_t nr, sm_group *g) {
  double lo = FM_SECURE_METRICS_LOWER, hi = FM_SECURE_METRICS_UPPER;
  for (size_t i = 0; i < nr; i++)
    if (!r[i].metric || !r[i].metric[0]) lo = r[i].lower, hi = r[i].upper;
  for (size_t i = 0; i < nr; i++)
    if (r[i].metric && r[i].metric[0] && !strcmp(r[i].metric, mt->name)) lo = r[i].lower, hi = r[i].upper;
  FM_CHECK(isfinite(lo) && isfinite(hi) && lo < hi && fabs(lo) < 9e15 && fabs(hi) < 9e15, FM_ERR_HPARAM_VALUE,
           "secure_sum_then_finalize: the range of metric '%s' must be finite numbers with lower < upper, got "
           "[%g, %g]",
           mt->name, lo, hi);
  g->is_int = mt->is_integer != 0;
  g->lo0 = lo;
  g->hi0 = hi;
  if (g->is_int) {
    lo = ceil(lo);
    hi = floor(hi);
    FM_CHECK(hi - lo >= 1, FM_ERR_HPARAM_VALUE,
             "secure_sum_then_finalize: metric '%s' holds integers, but its range [%g, %g] is not wide enough to "
             "quantize any integers (becomes [%.0f, %.0f])",
             mt->name, g->lo0, g->hi0, lo, hi);
  }
  g->lo = lo;
  g->hi = hi;
  sm_key(g);
  return FM_OK;
}

void fm__secure_metrics_destroy(fm__secure_metrics **s) {
  if (!s || !*s) return;
  fm__free((*s)->group);
  fm__free((*s)->group_of);
  fm__free(*s);
  *s = NULL;
}

/* Every named metric must be one of the model's. */
static int sm_check_names(const fm_model *model, const fm_metric_value_range *r, size_t nr) {
  for (size_t i = 0; i < nr; i++) {
    if (!r[i].metric || !r[i].metric[0]) continue;
    size_t k = 0;
    while (k < fm_model_num_metrics(model) && strcmp(fm_model_metric(model, k)->name, r[i].metric) != 0) k++;
    if (k < fm_model_num_metrics(model)) continue;
    char known[512] = "";
    for (size_t j = 0; j < fm_model_num_metrics(model); j++)
      snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", j ? ", " : "",
               fm_model_metric(model, j)->name);
    return FM_ERR(FM_ERR_HPARAM_UNKNOWN,
                  "secure_sum_then_finalize: the model has no metric '%s' to give a range (its metrics: %s)",
                  r[i].metric, known);
  }
  return FM_OK;
}

int fm__secure_metrics_create(const fm_model *model, const fm_metric_value_range *r, size_t nr,
                              fm__secure_metrics **out) {
  *out = NULL;
  FM_CHECK(r || nr == 0, FM_ERR_INVALID_ARG, "NULL metric value ranges");
  FM_CALL(sm_check_names(model, r, nr));
  fm__secure_metrics *s = fm__calloc(1, sizeof *s);
  if (!s) return FM_ERR_NOMEM;
  s->m = fm_model_num_metric_values(model);
  s->group = fm__calloc(fm_model_num_metrics(model) + 1, sizeof *s->group);
  s->group_of = fm__calloc(s->m + 1, sizeof *s->group_of);
  int rc = s->group && s->group_of ? FM_OK : FM_ERR_NOMEM;
  size_t off = 0;
  for (size_t i = 0; rc == FM_OK && i < fm_model_num_metrics(model); i++) {
    const fm_metric *mt = fm_model_metric(model, i);
    sm_group g;
    rc = sm_range(mt, r, nr, &g);
    size_t k = 0;
    while (rc == FM_OK && k < s->ngroups && strcmp(s->group[k].key, g.key) != 0) k++;
    if (rc == FM_OK && k == s->ngroups) s->group[s->ngroups++] = g;
    for (size_t j = 0; rc == FM_OK && j < mt->num_values; j++) s->group_of[off + j] = k;
    off += mt->num_values;
  }
  if (rc != FM_OK) {
    fm__secure_metrics_destroy(&s);
    return rc;
  }
  *out = s;
  return FM_OK;
}

size_t fm__secure_metrics_num_slots(const fm__secure_metrics *s) { return s->m + 2 * s->ngroups + 1; }

/* One value onto its group's integers: q and whether it was clipped above / below. */
static int sm_encode(const sm_group *g, double x, uint64_t *q, uint64_t *up, uint64_t *down) {
  if (g->is_int) {
    FM_CHECK(!isnan(x), FM_ERR_NON_FINITE, "secure_sum_then_finalize: a metric value is NaN");
    int64_t v = x > 9e18 ? INT64_MAX : x < -9e18 ? INT64_MIN : (int64_t)nearbyint(x);
    return fm__secure_shift_i64(&v, 1, (int64_t)g->lo, (int64_t)g->hi, q, up, down);
  }
  float f = (float)x; /* TFF's metric variables are float32 */
  uint32_t q32 = 0;
  FM_CALL(fm__secure_quantize_f32(&f, 1, g->lo, g->hi, &q32, up, down));
  *q = q32;
  return FM_OK;
}

size_t fm__secure_metrics_prepare(const fm__secure_metrics *s, const double *msum, fm_exact *slots, double limit) {
  size_t bad = 0;
  fm_exact *o = slots + s->m;
  for (size_t g = 0; g < s->ngroups; g++) {
    int any_up = 0, any_down = 0;
    for (size_t j = 0; j < s->m; j++) {
      if (s->group_of[j] != g) continue;
      uint64_t q = 0, up = 0, down = 0;
      if (sm_encode(&s->group[g], msum[j], &q, &up, &down) != FM_OK) {
        bad++;
        continue;
      }
      bad += (size_t)fm_exact_add(&slots[j], (double)q, limit);
      any_up |= up > 0;
      any_down |= down > 0;
    }
    bad += (size_t)fm_exact_add(&o[2 * g], any_up ? 1.0 : 0.0, limit);
    bad += (size_t)fm_exact_add(&o[2 * g + 1], any_down ? 1.0 : 0.0, limit);
  }
  bad += (size_t)fm_exact_add(&o[2 * s->ngroups], 1.0, limit);
  return bad;
}

/* The summed values back from the integers: mod 2^B, B the bitwidth TFF's
 * SecureSumFactory gives the sum of `clients` summands, then the server shift. */
static int sm_decode(const fm__secure_metrics *s, const fm_exact *slots, uint64_t clients, double *vals) {
  for (size_t j = 0; j < s->m; j++) {
    const sm_group *g = &s->group[s->group_of[j]];
    if (clients == 0) {
      vals[j] = 0;
      continue;
    }
    int b = 32, sb;
    if (g->is_int) FM_CALL(fm__secure_bitwidth_int((int64_t)g->lo, (int64_t)g->hi, &b));
    FM_CALL(fm__secure_sum_bitwidth(b, clients, &sb));
    const uint64_t mask = sb >= 64 ? UINT64_MAX : (UINT64_C(1) << sb) - 1;
    uint64_t sum = (uint64_t)fm_exact_to_double(&slots[j]) & mask;
    if (g->is_int) {
      int64_t v;
      FM_CALL(fm__secure_unshift_sum(&sum, 1, clients, (int64_t)g->lo, sb, &v));
      vals[j] = (double)v;
    } else {
      double v;
      FM_CALL(fm__secure_dequantize_sum(&sum, 1, clients, g->lo, g->hi, sb, &v));
      vals[j] = (double)(float)v; /* TFF casts back to the value's dtype */
    }
  }
  return FM_OK;
}

int fm__secure_metrics_report(const fm__secure_metrics *s, const fm_model *model, const fm_exact *slots,
                              const char *prefix, fm_metrics *out) {
  const fm_exact *o = slots + s->m;
  const uint64_t clients = (uint64_t)fm_exact_to_double(&o[2 * s->ngroups]);
  double *vals = fm__malloc((s->m + 1) * sizeof *vals);
  if (!vals) return FM_ERR_NOMEM;
  int rc = sm_decode(s, slots, clients, vals);
  char base[FM_METRIC_PATH_MAX], path[FM_METRIC_PATH_MAX];
  if (snprintf(base, sizeof base, "%s/secure_sum_measurements", prefix) >= (int)sizeof base)
    rc = rc == FM_OK ? FM_ERR(FM_ERR_INVALID_ARG, "metric prefix %s is too long", prefix) : rc;
  if (rc == FM_OK) rc = fm_metrics_put(out, base, 0, FM_METRIC_GROUP);
  for (size_t g = 0; rc == FM_OK && g < s->ngroups; g++) {
    const sm_group *gr = &s->group[g];
    if (snprintf(path, sizeof path, "%s/%s", base, gr->key) >= (int)sizeof path) {
      rc = FM_ERR(FM_ERR_INVALID_ARG, "metric name %s/%s is too long", base, gr->key);
      break;
    }
    rc = fm__put(out, path, "secure_upper_clipped_count", fm_exact_to_double(&o[2 * g]), FM_METRIC_INT);
    if (rc == FM_OK)
      rc = fm__put(out, path, "secure_lower_clipped_count", fm_exact_to_double(&o[2 * g + 1]), FM_METRIC_INT);
    if (rc == FM_OK) rc = fm__put(out, path, "secure_upper_threshold", gr->hi, FM_METRIC_FLOAT);
    if (rc == FM_OK) rc = fm__put(out, path, "secure_lower_threshold", gr->lo, FM_METRIC_FLOAT);
  }
  if (rc == FM_OK) rc = fm__metrics_finalize_values(model, vals, prefix, out);
  fm__free(vals);
  return rc;
}

/* ---- the process's metrics aggregator ------------------------------------------- */

/* The metrics section of the packed sum changes size: shift what follows it. */
static void sm_relayout(fm_process *p, size_t new_size) {
  size_t old_size = p->secure_metrics_slots ? p->secure_metrics_slots : p->num_metric_values;
  for (size_t j = 0; j < p->algo->num_extras; j++) p->slot_extra[j] = p->slot_extra[j] - old_size + new_size;
  p->num_slots = p->num_slots - old_size + new_size;
}

int fm_process_set_secure_metrics(fm_process *p, const fm_metric_value_range *ranges, size_t num_ranges) {
  FM_CHECK(p, FM_ERR_INVALID_ARG, "NULL process");
  fm__secure_metrics *s = NULL;
  FM_CALL(fm__secure_metrics_create(p->model, ranges, num_ranges, &s));
  size_t n = fm__secure_metrics_num_slots(s);
  sm_relayout(p, n);
  fm__secure_metrics_destroy(&p->secure_metrics);
  p->secure_metrics = s;
  p->secure_metrics_slots = n;
  return FM_OK;
}

int fm_process_set_sum_then_finalize(fm_process *p) {
  FM_CHECK(p, FM_ERR_INVALID_ARG, "NULL process");
  if (!p->secure_metrics) return FM_OK;
  sm_relayout(p, p->num_metric_values);
  fm__secure_metrics_destroy(&p->secure_metrics);
  p->secure_metrics_slots = 0;
  return FM_OK;
}

const char *fm_process_metrics_aggregator(const fm_process *p) {
  return p && p->secure_metrics ? "secure_sum_then_finalize" : "sum_then_finalize";
}
