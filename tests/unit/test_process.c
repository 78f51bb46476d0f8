/* tests/unit/test_process.c — FedAvg semantics of the composed learning
 * process in one process (fm_comm_serial): equivalence with centralized
 * gradient descent, client weighting, non-finite clients and aggregates,
 * composition errors, hparams, sampling and shard ownership. */
#include <stdlib.h>
#include <string.h>

#include "fm_test.h"

enum { D = 5, C = 3 };

/* Clients with counts[i] examples of D features, labels mod C; deterministic. */
static fm_client_data *make_data(size_t k, const size_t *counts, int nan_client) {
  size_t total = 0;
  for (size_t i = 0; i < k; i++) total += counts[i];
  float *x = malloc((total ? total : 1) * D * sizeof *x);
  int32_t *y = malloc((total ? total : 1) * sizeof *y);
  fm_rng r;
  fm_rng_init(&r, 5, 0, 0, FM_RNG_USER);
  size_t row = 0;
  for (size_t c = 0; c < k; c++)
    for (size_t i = 0; i < counts[c]; i++, row++) {
      for (int j = 0; j < D; j++) x[row * D + j] = (float)fm_rng_normal(&r) + (float)c * 0.1f;
      y[row] = (int32_t)((row + c) % C);
      if ((int)c == nan_client) x[row * D] = NAN;
    }
  size_t shape[1] = {D};
  fm_client_data *cd = NULL;
  FM_ASSERT_OK(fm_client_data_from_memory(k, NULL, counts, x, y, 1, shape, &cd));
  free(x);
  free(y);
  return cd;
}

static fm_model *make_model(void) {
  fm_input_spec spec;
  size_t shape[1] = {D};
  FM_ASSERT_OK(fm_input_spec_set(&spec, 1, shape, C));
  fm_model *m = NULL;
  FM_ASSERT_OK(fm_model_create_softmax(&spec, &m));
  return m;
}

static fm_process *make_fedavg(const fm_model *m, double clr, double slr, double smom, fm_weighting wt) {
  fm_optimizer *c = NULL, *s = NULL;
  FM_ASSERT_OK(fm_optimizer_create_sgdm(clr, 0.0, &c));
  FM_ASSERT_OK(fm_optimizer_create_sgdm(slr, smom, &s));
  fm_process *p = NULL;
  FM_ASSERT_OK(fm_process_create_weighted_fed_avg(m, c, s, wt, NULL, &p));
  return p;
}

static void run_round(const fm_process *p, fm_state *s, const fm_client_data *cd, const uint64_t *cohort, size_t k,
                      int epochs, size_t batch, fm_metrics *m) {
  fm_round_input in = {.data = cd, .batching = {.epochs = epochs, .batch_size = batch, .shuffle = 1}, .cohort = cohort, .cohort_size = k, .num_threads = 1};
  FM_ASSERT_OK(fm_process_next(p, s, &in, fm_comm_serial(), m));
}

/* One client, one epoch, one full batch, server lr 1 == one GD step. */
static void test_fedavg_one_client_is_gradient_descent(void **st) {
  (void)st;
  size_t counts[1] = {24};
  fm_client_data *cd = make_data(1, counts, -1);
  fm_model *m = make_model();
  fm_process *p = make_fedavg(m, 0.3, 1.0, 0.0, FM_WEIGHTING_NUM_EXAMPLES);
  fm_state *s;
  FM_ASSERT_OK(fm_process_initialize(p, 11, &s));
  size_t P = fm_layout_numel(fm_model_layout(m));
  float *w0 = malloc(P * sizeof *w0), *g = calloc(P, sizeof *g), *expect = malloc(P * sizeof *expect);
  FM_ASSERT_OK(fm_process_get_model_weights(p, s, w0));

  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_load(cd, 0, &ex));
  void *ws = malloc(fm_model_workspace_size(m, ex.n));
  float loss;
  FM_ASSERT_OK(fm_model_forward(m, ws, w0, ex.x, ex.y, ex.n, 1, &loss, NULL));
  FM_ASSERT_OK(fm_model_backward(m, ws, w0, ex.x, ex.y, ex.n, g));
  for (size_t i = 0; i < P; i++) expect[i] = w0[i] - 0.3f * g[i];

  uint64_t cohort[1] = {0};
  fm_metrics met;
  fm_metrics_init(&met);
  run_round(p, s, cd, cohort, 1, 1, 24, &met);
  fm_assert_close(fm_state_weights(s), expect, P, 1e-6, "FedAvg vs gradient step");
  double v;
  FM_ASSERT_OK(fm_metrics_get(&met, "client_work/train/loss", &v));
  assert_float_equal(v, loss, 1e-6);
  FM_ASSERT_OK(fm_metrics_get(&met, "client_work/train/num_examples", &v));
  assert_true(v == 24);
  FM_ASSERT_OK(fm_metrics_get(&met, "client_work/train/num_batches", &v));
  assert_true(v == 1);
  FM_ASSERT_OK(fm_metrics_get(&met, "finalizer/update_non_finite", &v));
  assert_true(v == 0);
  assert_int_equal(fm_state_round(s), 1);

  fm_metrics_free(&met);
  fm_examples_free(&ex);
  free(ws), free(w0), free(g), free(expect);
  fm_state_destroy(&s);
  fm_process_destroy(&p);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

/* Trained weights of one client alone (server lr 1 => the new global weights). */
static void train_alone(const fm_process *p, const fm_client_data *cd, uint64_t c, float *out) {
  fm_state *s;
  FM_ASSERT_OK(fm_process_initialize(p, 3, &s));
  uint64_t cohort[1] = {c};
  run_round(p, s, cd, cohort, 1, 2, 4, NULL);
  FM_ASSERT_OK(fm_process_get_model_weights(p, s, out));
  fm_state_destroy(&s);
}

static void check_weighting(fm_weighting wt) {
  size_t counts[2] = {6, 18};
  fm_client_data *cd = make_data(2, counts, -1);
  fm_model *m = make_model();
  fm_process *p = make_fedavg(m, 0.1, 1.0, 0.0, wt);
  size_t P = fm_layout_numel(fm_model_layout(m));
  float *a = malloc(P * sizeof *a), *b = malloc(P * sizeof *b), *expect = malloc(P * sizeof *expect);
  train_alone(p, cd, 0, a);
  train_alone(p, cd, 1, b);
  /* weight = examples iterated = epochs * n, or 1 */
  double wa = wt == FM_WEIGHTING_NUM_EXAMPLES ? 12 : 1, wb = wt == FM_WEIGHTING_NUM_EXAMPLES ? 36 : 1;
  for (size_t i = 0; i < P; i++) expect[i] = (float)((wa * a[i] + wb * b[i]) / (wa + wb));
  fm_state *s;
  FM_ASSERT_OK(fm_process_initialize(p, 3, &s));
  uint64_t cohort[2] = {0, 1};
  fm_metrics met;
  fm_metrics_init(&met);
  run_round(p, s, cd, cohort, 2, 2, 4, &met);
  fm_assert_close(fm_state_weights(s), expect, P, 2e-6, "weighted mean of client models");
  double v;
  FM_ASSERT_OK(fm_metrics_get(&met, "client_work/train/num_examples", &v));
  assert_true(v == 48);
  FM_ASSERT_OK(fm_metrics_get(&met, "client_work/train/num_batches", &v));
  assert_true(v == 3 + 9);
  fm_metrics_free(&met);
  fm_state_destroy(&s);
  free(a), free(b), free(expect);
  fm_process_destroy(&p);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

static void test_weighting_num_examples(void **st) {
  (void)st;
  check_weighting(FM_WEIGHTING_NUM_EXAMPLES);
}
static void test_weighting_uniform(void **st) {
  (void)st;
  check_weighting(FM_WEIGHTING_UNIFORM);
}

/* A client whose update is not finite sends zeros with weight 0 and no metrics. */
static void test_non_finite_client_is_dropped(void **st) {
  (void)st;
  size_t counts[2] = {10, 10};
  fm_client_data *cd = make_data(2, counts, 1); /* client 1 has NaN features */
  fm_model *m = make_model();
  fm_process *p = make_fedavg(m, 0.1, 1.0, 0.0, FM_WEIGHTING_NUM_EXAMPLES);
  size_t P = fm_layout_numel(fm_model_layout(m));
  float *a = malloc(P * sizeof *a);
  train_alone(p, cd, 0, a);
  fm_state *s;
  FM_ASSERT_OK(fm_process_initialize(p, 3, &s));
  uint64_t cohort[2] = {0, 1};
  fm_metrics met;
  fm_metrics_init(&met);
  run_round(p, s, cd, cohort, 2, 2, 4, &met);
  fm_assert_close(fm_state_weights(s), a, P, 1e-6, "non-finite client ignored");
  double v;
  FM_ASSERT_OK(fm_metrics_get(&met, "client_work/train/num_examples", &v));
  assert_true(v == 20); /* only client 0's 2 x 10 */
  FM_ASSERT_OK(fm_metrics_get(&met, "client_work/train/loss", &v));
  assert_true(isfinite(v));
  FM_ASSERT_OK(fm_metrics_get(&met, "finalizer/update_non_finite", &v));
  assert_true(v == 0);
  fm_metrics_free(&met);
  fm_state_destroy(&s);
  free(a);
  fm_process_destroy(&p);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

/* Every client non-finite: mean is 0/0 = NaN, the finalizer rejects it and
 * weights and server optimizer state stay as they were. */
static void test_non_finite_aggregate_is_rejected(void **st) {
  (void)st;
  size_t counts[1] = {8};
  fm_client_data *bad = make_data(1, counts, 0);
  fm_client_data *good = make_data(1, counts, -1);
  fm_model *m = make_model();
  fm_process *p = make_fedavg(m, 0.1, 1.0, 0.9, FM_WEIGHTING_NUM_EXAMPLES);
  size_t P = fm_layout_numel(fm_model_layout(m));
  fm_state *s, *ref;
  FM_ASSERT_OK(fm_process_initialize(p, 3, &s));
  FM_ASSERT_OK(fm_process_initialize(p, 3, &ref));
  float *w0 = malloc(P * sizeof *w0);
  FM_ASSERT_OK(fm_process_get_model_weights(p, s, w0));
  uint64_t cohort[1] = {0};
  fm_metrics met;
  fm_metrics_init(&met);
  run_round(p, s, bad, cohort, 1, 1, 4, &met);
  double v;
  FM_ASSERT_OK(fm_metrics_get(&met, "finalizer/update_non_finite", &v));
  assert_true(v == 1);
  assert_memory_equal(fm_state_weights(s), w0, P * sizeof(float));
  /* Momentum state untouched: a following good round matches a state that
   * never saw the bad round (apart from the round counter used for shuffling,
   * so compare with shuffling off). */
  fm_round_input in = {.data = good, .batching = {.epochs = 1, .batch_size = 4, .shuffle = 0}, .cohort = cohort, .cohort_size = 1, .num_threads = 1};
  FM_ASSERT_OK(fm_process_next(p, s, &in, fm_comm_serial(), NULL));
  FM_ASSERT_OK(fm_process_next(p, ref, &in, fm_comm_serial(), NULL));
  assert_memory_equal(fm_state_weights(s), fm_state_weights(ref), P * sizeof(float));
  fm_metrics_free(&met);
  free(w0);
  fm_state_destroy(&s);
  fm_state_destroy(&ref);
  fm_process_destroy(&p);
  fm_model_destroy(&m);
  fm_client_data_close(&bad);
  fm_client_data_close(&good);
}

static void test_composition_errors(void **st) {
  (void)st;
  fm_model *m = make_model();
  fm_input_spec spec2;
  size_t shape[1] = {D + 1};
  FM_ASSERT_OK(fm_input_spec_set(&spec2, 1, shape, C));
  fm_model *other = NULL;
  FM_ASSERT_OK(fm_model_create_softmax(&spec2, &other));
  fm_optimizer *o1, *o2;
  fm_client_work *cw;
  fm_aggregator *agg;
  fm_finalizer *fin;
  fm_process *p = NULL;

  /* finalizer built for another weights layout */
  FM_ASSERT_OK(fm_optimizer_create_sgdm(0.1, 0, &o1));
  FM_ASSERT_OK(fm_optimizer_create_sgdm(1.0, 0, &o2));
  FM_ASSERT_OK(fm_client_work_create_model_delta(m, o1, FM_WEIGHTING_NUM_EXAMPLES, &cw));
  FM_ASSERT_OK(fm_aggregator_create_mean(&agg));
  FM_ASSERT_OK(fm_finalizer_create_apply_optimizer(o2, fm_model_layout(other), &fin));
  FM_ASSERT_ERR(FM_ERR_LAYOUT_MISMATCH, fm_process_compose(m, cw, agg, fin, &p));
  FM_ASSERT_MSG_HAS("layout");
  assert_null(p);

  /* unweighted aggregator with NUM_EXAMPLES weighting */
  FM_ASSERT_OK(fm_optimizer_create_sgdm(0.1, 0, &o1));
  FM_ASSERT_OK(fm_optimizer_create_sgdm(1.0, 0, &o2));
  FM_ASSERT_OK(fm_aggregator_create_unweighted_mean(&agg));
  FM_ASSERT_ERR(FM_ERR_NOT_WEIGHTED, fm_process_create_weighted_fed_avg(m, o1, o2, FM_WEIGHTING_NUM_EXAMPLES, agg, &p));
  FM_ASSERT_MSG_HAS("unweighted");

  /* a missing stage */
  FM_ASSERT_OK(fm_optimizer_create_sgdm(0.1, 0, &o1));
  FM_ASSERT_OK(fm_client_work_create_model_delta(m, o1, FM_WEIGHTING_UNIFORM, &cw));
  FM_ASSERT_OK(fm_aggregator_create_mean(&agg));
  FM_ASSERT_ERR(FM_ERR_MISSING_STAGE, fm_process_compose(m, cw, agg, NULL, &p));
  FM_ASSERT_MSG_HAS("finalizer");

  /* client work for another model */
  FM_ASSERT_OK(fm_optimizer_create_sgdm(0.1, 0, &o1));
  FM_ASSERT_OK(fm_optimizer_create_sgdm(1.0, 0, &o2));
  FM_ASSERT_OK(fm_client_work_create_model_delta(other, o1, FM_WEIGHTING_UNIFORM, &cw));
  FM_ASSERT_OK(fm_aggregator_create_mean(&agg));
  FM_ASSERT_OK(fm_finalizer_create_apply_optimizer(o2, fm_model_layout(m), &fin));
  FM_ASSERT_ERR(FM_ERR_LAYOUT_MISMATCH, fm_process_compose(m, cw, agg, fin, &p));

  /* unknown weighting */
  FM_ASSERT_OK(fm_optimizer_create_sgdm(0.1, 0, &o1));
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_client_work_create_model_delta(m, o1, (fm_weighting)7, &cw));

  /* the unweighted builder composes fine (UNIFORM + unweighted mean) */
  FM_ASSERT_OK(fm_optimizer_create_sgdm(0.1, 0, &o1));
  FM_ASSERT_OK(fm_optimizer_create_sgdm(1.0, 0, &o2));
  FM_ASSERT_OK(fm_process_create_unweighted_fed_avg(m, o1, o2, NULL, &p));

  /* a state from another process is refused */
  fm_process *q = make_fedavg(m, 0.1, 1.0, 0.0, FM_WEIGHTING_UNIFORM);
  fm_state *s;
  FM_ASSERT_OK(fm_process_initialize(q, 1, &s));
  fm_hparams h;
  FM_ASSERT_ERR(FM_ERR_STATE_MISMATCH, fm_process_get_hparams(p, s, &h, NULL));
  fm_state_destroy(&s);
  fm_process_destroy(&q);
  fm_process_destroy(&p);
  fm_model_destroy(&other);
  fm_model_destroy(&m);
}

static void test_hparams_get_set(void **st) {
  (void)st;
  fm_model *m = make_model();
  fm_process *p = make_fedavg(m, 0.1, 0.5, 0.9, FM_WEIGHTING_NUM_EXAMPLES);
  fm_state *s;
  FM_ASSERT_OK(fm_process_initialize(p, 1, &s));
  fm_hparams cw, fin;
  FM_ASSERT_OK(fm_process_get_hparams(p, s, &cw, &fin));
  double v;
  assert_int_equal(cw.n, 1);
  FM_ASSERT_OK(fm_hparams_get(&cw, "learning_rate", &v));
  assert_true(v == 0.1);
  FM_ASSERT_OK(fm_hparams_get(&fin, "momentum", &v));
  assert_true(v == 0.9);
  fm_hparams nc = {0}, nf = {0};
  fm_hparams_put(&nc, "learning_rate", 0.2);
  fm_hparams_put(&nf, "learning_rate", -3);
  FM_ASSERT_ERR(FM_ERR_HPARAM_VALUE, fm_process_set_hparams(p, s, &nc, &nf));
  FM_ASSERT_OK(fm_process_get_hparams(p, s, &cw, NULL));
  FM_ASSERT_OK(fm_hparams_get(&cw, "learning_rate", &v));
  assert_true(v == 0.1); /* nothing changed on failure */
  fm_hparams_put(&nf, "learning_rate", 0.7);
  FM_ASSERT_OK(fm_process_set_hparams(p, s, &nc, &nf));
  FM_ASSERT_OK(fm_process_get_hparams(p, s, &cw, &fin));
  FM_ASSERT_OK(fm_hparams_get(&cw, "learning_rate", &v));
  assert_true(v == 0.2);
  FM_ASSERT_OK(fm_hparams_get(&fin, "learning_rate", &v));
  assert_true(v == 0.7);
  fm_hparams unk = {0};
  fm_hparams_put(&unk, "beta_2", 0.99);
  FM_ASSERT_ERR(FM_ERR_HPARAM_UNKNOWN, fm_process_set_hparams(p, s, &unk, NULL));
  /* set/get model weights */
  size_t P = fm_layout_numel(fm_model_layout(m));
  float *w = calloc(P, sizeof *w);
  w[0] = 1.5f;
  FM_ASSERT_OK(fm_process_set_model_weights(p, s, w));
  assert_true(fm_state_weights(s)[0] == 1.5f);
  w[1] = NAN;
  FM_ASSERT_ERR(FM_ERR_NON_FINITE, fm_process_set_model_weights(p, s, w));
  free(w);
  fm_state_destroy(&s);
  fm_process_destroy(&p);
  fm_model_destroy(&m);
}

static void test_sampling(void **st) {
  (void)st;
  uint64_t a[50], b[50];
  FM_ASSERT_OK(fm_sample_cohort(7, 3, 1000, 50, a));
  FM_ASSERT_OK(fm_sample_cohort(7, 3, 1000, 50, b));
  assert_memory_equal(a, b, sizeof a);
  for (int i = 1; i < 50; i++) assert_true(a[i - 1] < a[i]); /* sorted, distinct */
  assert_true(a[49] < 1000);
  FM_ASSERT_OK(fm_sample_cohort(7, 4, 1000, 50, b));
  assert_true(memcmp(a, b, sizeof a) != 0);
  FM_ASSERT_OK(fm_sample_cohort(7, 0, 50, 50, b)); /* k = N: everyone */
  for (uint64_t i = 0; i < 50; i++) assert_true(b[i] == i);
  FM_ASSERT_ERR(FM_ERR_COHORT, fm_sample_cohort(7, 0, 10, 11, b));
  FM_ASSERT_MSG_HAS("10 clients");
  FM_ASSERT_ERR(FM_ERR_COHORT, fm_sample_cohort(7, 0, 10, 0, b));
  /* uniform: each of 20 clients picked about 5/20 of 4000 rounds */
  int hits[20] = {0};
  for (uint64_t r = 0; r < 4000; r++) {
    uint64_t c[5];
    FM_ASSERT_OK(fm_sample_cohort(1, r, 20, 5, c));
    for (int i = 0; i < 5; i++) hits[c[i]]++;
  }
  for (int i = 0; i < 20; i++) assert_true(hits[i] > 850 && hits[i] < 1150);
}

static void test_owner_shards(void **st) {
  (void)st;
  for (int size = 1; size <= 7; size++)
    for (uint64_t n = 1; n <= 40; n++) {
      int prev = 0;
      int count[8] = {0};
      for (uint64_t c = 0; c < n; c++) {
        int o = fm_client_owner(c, n, size);
        assert_true(o >= prev && o < size); /* contiguous, monotone */
        prev = o;
        count[o]++;
        /* o's shard is [floor(o n/size), floor((o+1) n/size)) */
        assert_true(c >= (uint64_t)o * n / (uint64_t)size && c < (uint64_t)(o + 1) * n / (uint64_t)size);
      }
      for (int r = 0; r < size; r++) assert_true(count[r] == (int)((r + 1) * n / size - r * n / size));
    }
}

/* Threads do not change the result: 1 vs 3 threads give identical bits. */
static void test_threads_identical(void **st) {
  (void)st;
  size_t counts[7] = {3, 9, 14, 5, 20, 1, 8};
  fm_client_data *cd = make_data(7, counts, -1);
  fm_model *m = make_model();
  fm_process *p = make_fedavg(m, 0.2, 1.0, 0.5, FM_WEIGHTING_NUM_EXAMPLES);
  size_t P = fm_layout_numel(fm_model_layout(m));
  float *w[2];
  for (int t = 0; t < 2; t++) {
    fm_state *s;
    FM_ASSERT_OK(fm_process_initialize(p, 9, &s));
    uint64_t cohort[5];
    for (int r = 0; r < 4; r++) {
      FM_ASSERT_OK(fm_sample_cohort(9, fm_state_round(s), 7, 5, cohort));
      fm_round_input in = {.data = cd, .batching = {.epochs = 2, .batch_size = 4, .shuffle = 1}, .cohort = cohort, .cohort_size = 5,
                           .num_threads = t ? 3 : 1};
      FM_ASSERT_OK(fm_process_next(p, s, &in, fm_comm_serial(), NULL));
    }
    w[t] = malloc(P * sizeof(float));
    FM_ASSERT_OK(fm_process_get_model_weights(p, s, w[t]));
    fm_state_destroy(&s);
  }
  assert_memory_equal(w[0], w[1], P * sizeof(float));
  free(w[0]), free(w[1]);
  fm_process_destroy(&p);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

static void test_round_input_errors(void **st) {
  (void)st;
  size_t counts[2] = {4, 4};
  fm_client_data *cd = make_data(2, counts, -1);
  fm_model *m = make_model();
  fm_process *p = make_fedavg(m, 0.1, 1.0, 0.0, FM_WEIGHTING_NUM_EXAMPLES);
  fm_state *s;
  FM_ASSERT_OK(fm_process_initialize(p, 1, &s));
  uint64_t cohort[1] = {5};
  fm_round_input in = {.data = cd, .batching = {.epochs = 1, .batch_size = 4, .shuffle = 1}, .cohort = cohort, .cohort_size = 1, .num_threads = 1};
  FM_ASSERT_ERR(FM_ERR_COHORT, fm_process_next(p, s, &in, fm_comm_serial(), NULL));
  cohort[0] = 0;
  in.batching.epochs = 0;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_process_next(p, s, &in, fm_comm_serial(), NULL));
  /* data with the wrong number of features */
  fm_input_spec spec;
  size_t shape[1] = {D + 2};
  FM_ASSERT_OK(fm_input_spec_set(&spec, 1, shape, C));
  fm_model *wide = NULL;
  FM_ASSERT_OK(fm_model_create_softmax(&spec, &wide));
  fm_process *pw = make_fedavg(wide, 0.1, 1.0, 0.0, FM_WEIGHTING_NUM_EXAMPLES);
  fm_state *sw;
  FM_ASSERT_OK(fm_process_initialize(pw, 1, &sw));
  in.batching.epochs = 1;
  FM_ASSERT_ERR(FM_ERR_SPEC_MISMATCH, fm_process_next(pw, sw, &in, fm_comm_serial(), NULL));
  FM_ASSERT_MSG_HAS("features");
  /* labels outside the model's classes */
  fm_input_spec spec2;
  size_t shape2[1] = {D};
  FM_ASSERT_OK(fm_input_spec_set(&spec2, 1, shape2, 2));
  fm_model *two = NULL;
  FM_ASSERT_OK(fm_model_create_softmax(&spec2, &two));
  fm_process *p2 = make_fedavg(two, 0.1, 1.0, 0.0, FM_WEIGHTING_NUM_EXAMPLES);
  fm_state *s2;
  FM_ASSERT_OK(fm_process_initialize(p2, 1, &s2));
  FM_ASSERT_ERR(FM_ERR_SPEC_MISMATCH, fm_process_next(p2, s2, &in, fm_comm_serial(), NULL));
  FM_ASSERT_MSG_HAS("label");
  fm_state_destroy(&s2);
  fm_process_destroy(&p2);
  fm_model_destroy(&two);
  fm_state_destroy(&sw);
  fm_process_destroy(&pw);
  fm_model_destroy(&wide);
  fm_state_destroy(&s);
  fm_process_destroy(&p);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

static void test_evaluate(void **st) {
  (void)st;
  size_t counts[3] = {5, 0, 7};
  fm_client_data *cd = make_data(3, counts, -1);
  fm_model *m = make_model();
  size_t P = fm_layout_numel(fm_model_layout(m));
  float *w = malloc(P * sizeof *w);
  FM_ASSERT_OK(fm_model_init_weights(m, w, 4));
  fm_metrics met;
  fm_metrics_init(&met);
  FM_ASSERT_OK(fm_evaluate(m, w, cd, NULL, 0, 4, 2, fm_comm_serial(), &met));
  double v, loss;
  FM_ASSERT_OK(fm_metrics_get(&met, "num_examples", &v));
  assert_true(v == 12);
  FM_ASSERT_OK(fm_metrics_get(&met, "num_batches", &v));
  assert_true(v == 2 + 2);
  FM_ASSERT_OK(fm_metrics_get(&met, "loss", &loss));
  /* reference: mean per-example loss over all 12 examples */
  double ref = 0;
  for (size_t c = 0; c < 3; c++) {
    fm_examples ex;
    FM_ASSERT_OK(fm_client_data_load(cd, c, &ex));
    void *ws = malloc(fm_model_workspace_size(m, 1));
    for (size_t i = 0; i < ex.n; i++) {
      float l;
      FM_ASSERT_OK(fm_model_forward(m, ws, w, ex.x + i * D, ex.y + i, 1, 0, &l, NULL));
      ref += l;
    }
    free(ws);
    fm_examples_free(&ex);
  }
  assert_float_equal(loss, ref / 12, 1e-5);
  fm_metrics_free(&met);
  free(w);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fedavg_one_client_is_gradient_descent),
      cmocka_unit_test(test_weighting_num_examples),
      cmocka_unit_test(test_weighting_uniform),
      cmocka_unit_test(test_non_finite_client_is_dropped),
      cmocka_unit_test(test_non_finite_aggregate_is_rejected),
      cmocka_unit_test(test_composition_errors),
      cmocka_unit_test(test_hparams_get_set),
      cmocka_unit_test(test_sampling),
      cmocka_unit_test(test_owner_shards),
      cmocka_unit_test(test_threads_identical),
      cmocka_unit_test(test_round_input_errors),
      cmocka_unit_test(test_evaluate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
