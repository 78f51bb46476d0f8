/* src/learning/aggregator_tree.c — DP-FTRL's tree aggregation as aggregator
 * types: DifferentiallyPrivateFactory.tree_aggregation (a fixed clip) and
 * tree_adaptive (an adaptive clip adopted at each restart of the tree).
 *
 * TFF's semantics (TreeResidualSumQuery in a NormalizedQuery): every client's
 * value is clipped to L2 norm clip and summed; the tree keeps Gaussian noise
 * per node of a binary tree over the rounds (stddev clip * z per node), its
 * cumulative noise N_t estimates the noise of the sum of rounds 0..t, and the
 * round's result is (sum_t + N_t - N_{t-1}) / clients_per_round: added over
 * the rounds (the server's SGD in DP-FTRL), the noise telescopes to N_t, which
 * grows as log t instead of sqrt t.
 *
 *   the tree after m leaves holds one node per set bit of m (level l covers
 *   2^l rounds); a new leaf merges the trailing full levels into one node:
 *     plain (TreeAggregator):       the new node is a fresh draw, N = sum of nodes;
 *     efficient (Honaker 2015, EfficientTreeAggregator, TFF's default): the
 *       new value starts as a fresh leaf draw and each merged level l gives
 *       v <- (buf_l + v) / 2 + fresh draw; N = sum_l buf_l / (2 - 2^-l).
 *
 * tree_adaptive (QAdaClipTreeResSumQuery inside RestartQuery with
 * PeriodicRoundRestartIndicator(period=restart_frequency,
 * warmup=restart_warmup)): the clients also send (norm <= estimate) - 1/2,
 * summed through a scalar tree of its own (TreeQuantileEstimatorQuery, stddev
 * clipped_count_stddev per node); the estimate follows the geometric update
 * every round, but the clip the values use changes only when the tree
 * restarts: after call c with c mod restart_frequency == restart_warmup the
 * clip becomes the estimate and both trees start again (N_{t-1} = 0).
 *
 * Where the state lives: the counters, the clip, the estimate and the scalar
 * tree are doubles in the aggregator state (broadcast: the clients need the
 * clip and the estimate); the value tree's buffers are server-only floats
 * (fm__agg_round.server), [N_{t-1} (n) | level 0 (n) | level 1 (n) | ...],
 * never broadcast, saved in checkpoints up to the highest level in use. The
 * noise is Philox keyed by (seed, node counter, 2 * the aggregator's place in
 * its chain + tree) with purpose FM_RNG_DP_TREE, drawn on rank 0, so any
 * ranks x threads layout gives the same bits and a resumed run continues the
 * same streams. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "learning_impl.h"

/* params: Q_* of the estimate (adaptive), then: */
enum { T_Z = 5, T_K, T_SIGMA_B, T_ZV, T_CLIP, T_EFFICIENT, T_LEVELS, T_WARMUP, T_PERIOD };

/* State (doubles): m (leaves in the value tree), its node counter, the calls
 * so far (restarts), the clip; adaptive only: the estimate, the scalar tree's
 * m, node counter, N_{t-1}, then its levels. */
enum { S_M, S_CTR, S_CALLS, S_CLIP, S_EST, S_MB, S_CTRB, S_PREVB, S_BUFB };

/* The most levels a tree without restarts keeps: 2^20 - 1 rounds. */
#define FM__TREE_MAX_LEVELS 20

static size_t tree_levels(const fm_aggregator *a) { return (size_t)a->params[T_LEVELS]; }

static size_t tree_state_size(const fm_aggregator *a) { return a->adaptive ? S_BUFB + tree_levels(a) : S_EST; }

/* Levels in use for m leaves: its bit length. */
static size_t tree_bits(uint64_t m) {
  size_t b = 0;
  for (; m; m >>= 1) b++;
  return b;
}

static size_t tree_server_size(const fm_aggregator *a, size_t n) { return n * (1 + tree_levels(a)); }
static size_t tree_server_used(const fm_aggregator *a, const double *st, size_t n) {
  (void)a;
  return n * (1 + tree_bits((uint64_t)st[S_M]));
}

/* Honaker's weight of a level-l node in the cumulative estimate (1 for the plain tree). */
static double tree_weight(const fm_aggregator *a, size_t l) {
  return a->params[T_EFFICIENT] != 0 ? 1.0 / (2.0 - ldexp(1.0, -(int)l)) : 1.0;
}

/* One node's draw: dst[i] = x[i] (or 0 without x) * half + stddev * N(0, 1),
 * the stream of node counter ctr of tree j. */
static void tree_draw(const fm_aggregator *a, uint64_t seed, uint64_t ctr, unsigned j, double sd, const float *x,
                      float *dst, size_t n) {
  fm_rng g;
  fm_rng_init(&g, seed, ctr, (uint64_t)a->id * 2 + j, FM_RNG_DP_TREE);
  for (size_t i = 0; i < n; i++) {
    double v = x ? 0.5 * ((double)x[i] + (double)dst[i]) : 0.0;
    dst[i] = (float)(v + (sd > 0 ? sd * fm_rng_normal(&g) : 0.0));
  }
}

/* Add a leaf to a tree of m leaves over buffers buf[l] (level l at
 * buf + l * n); *ctr counts its draws. FM_ERR_OVERFLOW past its levels. */
static int tree_advance(const fm_aggregator *a, uint64_t seed, unsigned j, double sd, double *m, double *ctr,
                        float *buf, size_t n, size_t levels) {
  uint64_t mm = (uint64_t)*m, c = (uint64_t)*ctr;
  size_t L = 0;
  while ((mm >> L) & 1u) L++;
  FM_CHECK(L < levels, FM_ERR_OVERFLOW,
           "%s: its tree holds at most %llu rounds without a restart (%zu levels)", a->ops->type,
           (unsigned long long)((1ull << levels) - 1), levels);
  float *dst = buf + L * n;
  tree_draw(a, seed, c++, j, sd, NULL, dst, n); /* the new leaf */
  if (a->params[T_EFFICIENT] != 0)
    for (size_t l = 0; l < L; l++) tree_draw(a, seed, c++, j, sd, buf + l * n, dst, n);
  else if (L > 0)
    tree_draw(a, seed, c++, j, sd, NULL, dst, n); /* the plain tree's new node: a fresh draw */
  *m = (double)(mm + 1);
  *ctr = (double)c;
  return FM_OK;
}

/* The cumulative noise estimate of coordinate i of a tree of m leaves. */
static double tree_cumsum(const fm_aggregator *a, uint64_t m, const float *buf, size_t n, size_t i) {
  double s = 0;
  for (size_t l = 0; m >> l; l++)
    if ((m >> l) & 1u) s += tree_weight(a, l) * (double)buf[l * n + i];
  return s;
}

/* A fresh tree: one leaf drawn, N_{t-1} = 0. */
static void tree_start(const fm_aggregator *a, uint64_t seed, unsigned j, double sd, double *m, double *ctr,
                       float *prev, float *buf, size_t n) {
  memset(prev, 0, n * sizeof *prev);
  *m = 0;
  (void)tree_advance(a, seed, j, sd, m, ctr, buf, n, tree_levels(a)); /* level 0 of an empty tree: cannot fail */
}

static double tree_value_sd(const fm_aggregator *a, const double *st) { return st[S_CLIP] * a->params[T_ZV]; }

static void tree_state_init(const fm_aggregator *a, double *st) {
  memset(st, 0, tree_state_size(a) * sizeof *st);
  st[S_CLIP] = a->params[T_CLIP];
  if (a->adaptive) st[S_EST] = a->params[Q_INIT];
}

/* Both trees get their first leaf, as TFF's initial_global_state draws it. */
static void tree_server_init(const fm_aggregator *a, double *st, float *sv, size_t n, uint64_t seed) {
  tree_start(a, seed, 0, tree_value_sd(a, st), &st[S_M], &st[S_CTR], sv, sv + n, n);
  if (a->adaptive) { /* the scalar tree's levels are doubles of the state, holding floats */
    float prevb, bufb[FM__TREE_MAX_LEVELS] = {0};
    tree_start(a, seed, 1, a->params[T_SIGMA_B], &st[S_MB], &st[S_CTRB], &prevb, bufb, 1);
    st[S_PREVB] = prevb;
    for (size_t l = 0; l < tree_levels(a); l++) st[S_BUFB + l] = bufb[l];
  }
}

/* Slots: [sum of clipped values (n) | sum of (below - 1/2) (adaptive only)]. */
static size_t tree_num_slots(const fm_aggregator *a, size_t n) { return n + (a->adaptive ? 1 : 0); }

static size_t tree_prepare(const fm_aggregator *a, const double *st, const fm__agg_value *v, float weight,
                           fm_exact *slots, double limit, float *scratch) {
  (void)weight; /* unweighted: every client counts 1 */
  if (!v->f) return fm__agg_add_value(v, 1.0f, slots, limit);
  double norm = fm__agg_norm(v, 2), clip = st[S_CLIP];
  size_t bad = 0;
  /* the quantile query compares with its own estimate, not the clip in use */
  if (a->adaptive) bad += (size_t)fm_exact_add(&slots[v->n], norm <= st[S_EST] ? 0.5 : -0.5, limit);
  if (!(norm > clip)) return bad + fm__agg_add_value(v, 1.0f, slots, limit);
  float scale = (float)(clip / norm);
  for (size_t i = 0; i < v->n; i++) scratch[i] = v->f[i] * scale;
  fm__agg_value clipped = *v;
  clipped.f = scratch;
  return bad + fm__agg_add_value(&clipped, 1.0f, slots, limit);
}

static int tree_finalize(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                         const fm__agg_round *r, double *out) {
  FM_CHECK(r && r->server, FM_ERR_INVALID_ARG, "%s: finalize without its server state", a->ops->type);
  const float *prev = r->server, *buf = r->server + n;
  const uint64_t m = (uint64_t)st[S_M];
  const double k = a->params[T_K];
  for (size_t i = 0; i < n; i++)
    out[i] = (fm_exact_to_double(&slots[i]) + (tree_cumsum(a, m, buf, n, i) - (double)prev[i])) / k;
  return FM_OK;
}

static int tree_measurements(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                             const char *prefix, fm_metrics *out) {
  (void)slots, (void)n;
  char path[FM_METRIC_PATH_MAX];
  snprintf(path, sizeof path, "%s/dp_query_metrics", prefix);
  FM_CALL(fm_metrics_put(out, path, 0, FM_METRIC_GROUP));
  if (a->adaptive) { /* QAdaClipTreeResSumQuery.derive_metrics */
    FM_CALL(fm__put(out, path, "current_clip", st[S_CLIP], FM_METRIC_FLOAT));
    FM_CALL(fm__put(out, path, "estimate_clip", st[S_EST], FM_METRIC_FLOAT));
  } else { /* TreeResidualSumQuery.derive_metrics */
    FM_CALL(fm__put(out, path, "tree_agg_dpftrl_clip", st[S_CLIP], FM_METRIC_FLOAT));
  }
  FM_CALL(fm__put(out, path, "noise_stddev", tree_value_sd(a, st), FM_METRIC_FLOAT));
  return fm__put(out, prefix, "dp", 0, FM_METRIC_GROUP);
}

static int tree_next_state(const fm_aggregator *a, double *st, const fm_exact *slots, size_t n,
                           const fm__agg_round *r) {
  FM_CHECK(r && r->server, FM_ERR_INVALID_ARG, "%s: next state without its server state", a->ops->type);
  float *prev = r->server, *buf = r->server + n;
  /* TreeResidualSumQuery.get_noised_result: N_t becomes the previous noise,
   * and the tree takes the next leaf */
  const uint64_t m = (uint64_t)st[S_M];
  for (size_t i = 0; i < n; i++) prev[i] = (float)tree_cumsum(a, m, buf, n, i);
  FM_CALL(tree_advance(a, r->seed, 0, tree_value_sd(a, st), &st[S_M], &st[S_CTR], buf, n, tree_levels(a)));
  if (!a->adaptive) return FM_OK;
  /* TreeQuantileEstimatorQuery: the scalar tree's residual noise on the
   * summed (below - 1/2), over clients_per_round, shifted back by 1/2 */
  const size_t L = tree_levels(a);
  float bufb[FM__TREE_MAX_LEVELS], prevb = (float)st[S_PREVB];
  for (size_t l = 0; l < L; l++) bufb[l] = (float)st[S_BUFB + l];
  const uint64_t mb = (uint64_t)st[S_MB];
  const double cum = tree_cumsum(a, mb, bufb, 1, 0);
  const double below = (fm_exact_to_double(&slots[n]) + (cum - (double)prevb)) / a->params[T_K] + 0.5;
  st[S_EST] = fm__quantile_step(a, st[S_EST], below);
  prevb = (float)cum;
  FM_CALL(tree_advance(a, r->seed, 1, a->params[T_SIGMA_B], &st[S_MB], &st[S_CTRB], bufb, 1, L));
  /* RestartQuery with PeriodicRoundRestartIndicator(period, warmup) */
  st[S_CALLS] += 1;
  const uint64_t calls = (uint64_t)st[S_CALLS], period = (uint64_t)a->params[T_PERIOD];
  if (calls % period == (uint64_t)a->params[T_WARMUP]) {
    st[S_CLIP] = st[S_EST] > 0 ? st[S_EST] : 0.0; /* the clip and its noise follow the estimate */
    tree_start(a, r->seed, 0, tree_value_sd(a, st), &st[S_M], &st[S_CTR], prev, buf, n);
    tree_start(a, r->seed, 1, a->params[T_SIGMA_B], &st[S_MB], &st[S_CTRB], &prevb, bufb, 1);
  }
  st[S_PREVB] = prevb;
  for (size_t l = 0; l < L; l++) st[S_BUFB + l] = bufb[l];
  return FM_OK;
}

static int tree_check_round(const fm_aggregator *a, size_t cohort_size) {
  FM_CHECK((double)cohort_size == a->params[T_K], FM_ERR_HPARAM_VALUE,
           "%s: clients_per_round is %.0f but the round has %zu clients (it must match: it divides the noisy sum "
           "and sets the noise's scale)",
           a->ops->type, a->params[T_K], cohort_size);
  return FM_OK;
}

static const fm__aggregator_ops fm__tree_fixed_ops = {.type = "tree_aggregation",
                                                      .num_slots = tree_num_slots,
                                                      .state_size = tree_state_size,
                                                      .state_init = tree_state_init,
                                                      .prepare = tree_prepare,
                                                      .finalize = tree_finalize,
                                                      .measurements = tree_measurements,
                                                      .next_state = tree_next_state,
                                                      .check_round = tree_check_round,
                                                      .server_size = tree_server_size,
                                                      .server_used = tree_server_used,
                                                      .server_init = tree_server_init};
static const fm__aggregator_ops fm__tree_adaptive_ops = {.type = "tree_adaptive",
                                                         .num_slots = tree_num_slots,
                                                         .state_size = tree_state_size,
                                                         .state_init = tree_state_init,
                                                         .prepare = tree_prepare,
                                                         .finalize = tree_finalize,
                                                         .measurements = tree_measurements,
                                                         .next_state = tree_next_state,
                                                         .check_round = tree_check_round,
                                                         .server_size = tree_server_size,
                                                         .server_used = tree_server_used,
                                                         .server_init = tree_server_init};

const fm_aggregator *fm__aggregator_tree(const fm_aggregator *a, double *z, uint64_t *k, double *zv) {
  for (; a; a = a->inner)
    if (a->ops == &fm__tree_fixed_ops || a->ops == &fm__tree_adaptive_ops) {
      if (z) *z = a->params[T_Z];
      if (k) *k = (uint64_t)a->params[T_K];
      if (zv) *zv = a->params[T_ZV];
      return a;
    }
  return NULL;
}

int fm_aggregator_dp_tree(const fm_aggregator *a, uint64_t *restart_warmup, uint64_t *restart_frequency) {
  const fm_aggregator *t = fm__aggregator_tree(a, NULL, NULL, NULL);
  if (restart_warmup) *restart_warmup = t && t->adaptive ? (uint64_t)t->params[T_WARMUP] : 0;
  if (restart_frequency) *restart_frequency = t && t->adaptive ? (uint64_t)t->params[T_PERIOD] : 0;
  return t != NULL;
}

static int fm__check_tree(const char *who, double z, uint64_t k) {
  FM_CHECK(isfinite(z) && z >= 0, FM_ERR_HPARAM_VALUE, "%s: noise_multiplier must be a finite number >= 0, got %g",
           who, z);
  FM_CHECK(k >= 1, FM_ERR_HPARAM_VALUE, "%s: clients_per_round must be >= 1", who);
  return FM_OK;
}

int fm_aggregator_create_dp_tree_aggregation(double noise_multiplier, uint64_t clients_per_round, double l2_norm_clip,
                                             int use_efficient, fm_aggregator **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  FM_CALL(fm__check_tree("tree_aggregation", noise_multiplier, clients_per_round));
  FM_CHECK(isfinite(l2_norm_clip) && l2_norm_clip > 0, FM_ERR_HPARAM_VALUE,
           "tree_aggregation: l2_norm_clip must be a finite number > 0, got %g", l2_norm_clip);
  char name[160];
  snprintf(name, sizeof name, "tree_aggregation(noise_multiplier=%g,clients_per_round=%llu,l2_norm_clip=%g%s)",
           noise_multiplier, (unsigned long long)clients_per_round, l2_norm_clip, use_efficient ? "" : ",use_efficient=0");
  FM_CALL(fm__aggregator_new(&fm__tree_fixed_ops, name, 0, NULL, out));
  fm_aggregator *a = *out;
  a->params[T_Z] = a->params[T_ZV] = noise_multiplier;
  a->params[T_K] = (double)clients_per_round;
  a->params[T_CLIP] = l2_norm_clip;
  a->params[T_EFFICIENT] = use_efficient ? 1 : 0;
  a->params[T_LEVELS] = FM__TREE_MAX_LEVELS;
  return FM_OK;
}

fm_dp_tree_adaptive fm_dp_tree_adaptive_defaults(uint64_t clients_per_round) {
  fm_dp_tree_adaptive d = {.initial_l2_norm_clip = 0.1,
                           .restart_warmup = 128,
                           .restart_frequency = 1024,
                           .target_unclipped_quantile = 0.5,
                           .clip_learning_rate = 0.2,
                           .clipped_count_stddev = (double)clients_per_round / 20.0};
  return d;
}

int fm_aggregator_create_dp_tree_adaptive(double noise_multiplier, uint64_t clients_per_round,
                                          const fm_dp_tree_adaptive *opt, fm_aggregator **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  FM_CALL(fm__check_tree("tree_adaptive", noise_multiplier, clients_per_round));
  fm_dp_tree_adaptive d = opt ? *opt : fm_dp_tree_adaptive_defaults(clients_per_round);
  FM_CHECK(isfinite(d.initial_l2_norm_clip) && d.initial_l2_norm_clip > 0, FM_ERR_HPARAM_VALUE,
           "tree_adaptive: initial_l2_norm_clip must be a finite number > 0, got %g", d.initial_l2_norm_clip);
  fm_quantile_estimate q = fm_quantile_estimate_no_noise(d.initial_l2_norm_clip, d.target_unclipped_quantile,
                                                         d.clip_learning_rate);
  FM_CALL(fm__check_quantile("tree_adaptive", &q));
  FM_CHECK(isfinite(d.clipped_count_stddev) && d.clipped_count_stddev >= 0, FM_ERR_HPARAM_VALUE,
           "tree_adaptive: clipped_count_stddev must be a finite number >= 0, got %g", d.clipped_count_stddev);
  /* PeriodicRoundRestartIndicator's checks */
  FM_CHECK(d.restart_frequency >= 1, FM_ERR_HPARAM_VALUE, "tree_adaptive: restart_frequency must be >= 1, got %llu",
           (unsigned long long)d.restart_frequency);
  FM_CHECK(d.restart_warmup >= 1 && d.restart_warmup < d.restart_frequency, FM_ERR_HPARAM_VALUE,
           "tree_adaptive: restart_warmup must be between 1 and restart_frequency - 1 = %llu, got %llu",
           (unsigned long long)(d.restart_frequency - 1), (unsigned long long)d.restart_warmup);
  /* adaptive_clip_noise_params: z^-2 = z_v^-2 + (2 sigma_b)^-2 */
  const double z = noise_multiplier, sb2 = 2 * d.clipped_count_stddev;
  FM_CHECK(z == 0 || z < sb2, FM_ERR_HPARAM_VALUE,
           "tree_adaptive: noise_multiplier %g must be < 2 * clipped_count_stddev = %g: the clipped-count query "
           "alone would spend more than the whole privacy budget (raise clipped_count_stddev or clients_per_round)",
           z, sb2);
  /* levels: a tree grows to restart_frequency (+1 before the restart replaces it) leaves */
  size_t levels = tree_bits(d.restart_frequency + 1);
  FM_CHECK(levels <= FM__TREE_MAX_LEVELS, FM_ERR_HPARAM_VALUE,
           "tree_adaptive: restart_frequency %llu is above the %llu rounds a tree holds",
           (unsigned long long)d.restart_frequency, (unsigned long long)((1ull << FM__TREE_MAX_LEVELS) - 2));
  char name[160];
  snprintf(name, sizeof name, "tree_adaptive(noise_multiplier=%g,clients_per_round=%llu)", z,
           (unsigned long long)clients_per_round);
  FM_CALL(fm__aggregator_new(&fm__tree_adaptive_ops, name, 0, NULL, out));
  fm_aggregator *a = *out;
  fm__set_quantile(a, &q);
  a->params[T_Z] = z;
  a->params[T_ZV] = z > 0 ? 1.0 / sqrt(1.0 / (z * z) - 1.0 / (sb2 * sb2)) : 0.0;
  a->params[T_K] = (double)clients_per_round;
  /* TFF keeps the given (or default) clipped_count_stddev even when z = 0 */
  a->params[T_SIGMA_B] = d.clipped_count_stddev;
  a->params[T_CLIP] = d.initial_l2_norm_clip;
  a->params[T_EFFICIENT] = 1; /* QAdaClipTreeResSumQuery always uses the efficient tree */
  a->params[T_LEVELS] = (double)levels;
  a->params[T_WARMUP] = (double)d.restart_warmup;
  a->params[T_PERIOD] = (double)d.restart_frequency;
  return FM_OK;
}
