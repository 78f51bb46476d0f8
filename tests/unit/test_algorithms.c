/* tests/unit/test_algorithms.c — the defining property of each algorithm:
 * FedProx with mu = 0 is FedAvg bit for bit and its proximal step matches a
 * hand computation; FedSGD with one client is one gradient step; FedAvgM with
 * momentum 0 is FedAvg; FedNova with equal local steps is FedAvg and with
 * unequal steps matches its formula; SCAFFOLD on identical clients is FedAvg;
 * Mime Lite with plain SGD is FedAvg and with momentum matches a hand
 * computation of its frozen-state steps. */
#include <stdlib.h>
#include <string.h>

#include "fm_test.h"

enum { D = 6, C = 3 };

/* k clients; identical = 1 gives every client the same examples. */
static fm_client_data *make_data(size_t k, const size_t *counts, int identical) {
  size_t total = 0;
  for (size_t i = 0; i < k; i++) total += counts[i];
  float *x = malloc(total * D * sizeof *x);
  int32_t *y = malloc(total * sizeof *y);
  size_t row = 0;
  for (size_t c = 0; c < k; c++) {
    fm_rng r;
    fm_rng_init(&r, 21, 0, identical ? 0 : c, FM_RNG_USER);
    for (size_t i = 0; i < counts[c]; i++, row++) {
      for (int j = 0; j < D; j++) x[row * D + j] = (float)fm_rng_normal(&r);
      y[row] = (int32_t)(fm_rng_below(&r, C));
    }
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
  size_t shape[1] = {D}, hidden[1] = {5};
  FM_ASSERT_OK(fm_input_spec_set(&spec, 1, shape, C));
  fm_model *m = NULL;
  FM_ASSERT_OK(fm_model_create_mlp(&spec, hidden, 1, &m));
  return m;
}

static fm_optimizer *sgd(double lr, double m) {
  fm_optimizer *o = NULL;
  FM_ASSERT_OK(fm_optimizer_create_sgdm(lr, m, &o));
  return o;
}

/* Train R rounds over the given cohort schedule; weights out. */
static void train(const fm_process *p, const fm_client_data *cd, int rounds, const uint64_t *cohort, size_t k,
                  fm_batching b, float *out) {
  fm_state *s;
  FM_ASSERT_OK(fm_process_initialize(p, 5, &s));
  for (int r = 0; r < rounds; r++) {
    fm_round_input in = {.data = cd, .batching = b, .cohort = cohort, .cohort_size = k, .num_threads = 2};
    FM_ASSERT_OK(fm_process_next(p, s, &in, fm_comm_serial(), NULL));
  }
  FM_ASSERT_OK(fm_process_get_model_weights(p, s, out));
  fm_state_destroy(&s);
}

static size_t numel(const fm_model *m) { return fm_layout_numel(fm_model_layout(m)); }

static void test_fedprox_zero_is_fedavg(void **st) {
  (void)st;
  size_t counts[3] = {7, 12, 9};
  fm_client_data *cd = make_data(3, counts, 0);
  fm_model *m = make_model();
  fm_process *avg, *prox;
  FM_ASSERT_OK(fm_process_create_weighted_fed_avg(m, sgd(0.1, 0), sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &avg));
  FM_ASSERT_OK(fm_process_create_fed_prox(m, 0.0, sgd(0.1, 0), sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &prox));
  float *a = malloc(numel(m) * sizeof *a), *b = malloc(numel(m) * sizeof *b);
  uint64_t cohort[3] = {0, 1, 2};
  fm_batching bt = {.epochs = 2, .batch_size = 4, .shuffle = 1};
  train(avg, cd, 3, cohort, 3, bt, a);
  train(prox, cd, 3, cohort, 3, bt, b);
  assert_memory_equal(a, b, numel(m) * sizeof *a);
  /* and mu > 0 changes the result */
  fm_process *prox1;
  FM_ASSERT_OK(fm_process_create_fed_prox(m, 1.0, sgd(0.1, 0), sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &prox1));
  train(prox1, cd, 3, cohort, 3, bt, b);
  assert_true(memcmp(a, b, numel(m) * sizeof *a) != 0);
  free(a), free(b);
  fm_process_destroy(&avg);
  fm_process_destroy(&prox);
  fm_process_destroy(&prox1);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

/* Two full-batch steps by hand: the second gradient gets mu (w1 - w0) (the paper's sign). */
static void test_fedprox_step_by_hand(void **st) {
  (void)st;
  size_t counts[1] = {10};
  fm_client_data *cd = make_data(1, counts, 0);
  fm_model *m = make_model();
  const float lr = 0.2f, mu = 0.5f;
  fm_process *p;
  FM_ASSERT_OK(fm_process_create_fed_prox(m, mu, sgd(lr, 0), sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &p));
  size_t P = numel(m), T = fm_layout_trainable_numel(fm_model_layout(m));
  float *got = malloc(P * sizeof *got), *w = malloc(P * sizeof *w), *w0 = malloc(P * sizeof *w0);
  float *g = malloc(T * sizeof *g);
  uint64_t cohort[1] = {0};
  train(p, cd, 1, cohort, 1, (fm_batching){.epochs = 2, .batch_size = 10, .shuffle = 0}, got);
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_load(cd, 0, &ex));
  FM_ASSERT_OK(fm_model_init_weights(m, w0, 5));
  memcpy(w, w0, P * sizeof *w);
  void *ws = malloc(fm_model_workspace_size(m, 10));
  for (int step = 0; step < 2; step++) {
    float loss;
    memset(g, 0, T * sizeof *g);
    FM_ASSERT_OK(fm_model_forward(m, ws, w, ex.x, ex.y, 10, 1, &loss, NULL));
    FM_ASSERT_OK(fm_model_backward(m, ws, w, ex.x, ex.y, 10, g));
    for (size_t i = 0; i < T; i++) w[i] -= lr * (g[i] + mu * (w[i] - w0[i]));
  }
  fm_assert_close(got, w, P, 2e-6, "FedProx vs hand steps");
  free(ws), free(got), free(w), free(w0), free(g);
  fm_examples_free(&ex);
  fm_process_destroy(&p);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

static void test_fedprox_validation(void **st) {
  (void)st;
  fm_model *m = make_model();
  fm_process *p = NULL;
  FM_ASSERT_ERR(FM_ERR_HPARAM_VALUE,
                fm_process_create_fed_prox(m, -0.1, sgd(0.1, 0), sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &p));
  FM_ASSERT_MSG_HAS("proximal_strength");
  FM_ASSERT_ERR(FM_ERR_HPARAM_VALUE,
                fm_process_create_fed_prox(m, NAN, sgd(0.1, 0), sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &p));
  assert_null(p);
  fm_model_destroy(&m);
}

/* FedSGD, one client: w1 = w0 - lr * (example-weighted mean gradient) = one GD step. */
static void test_fedsgd_one_client_is_gradient_step(void **st) {
  (void)st;
  size_t counts[1] = {23};
  fm_client_data *cd = make_data(1, counts, 0);
  fm_model *m = make_model();
  fm_process *p;
  FM_ASSERT_OK(fm_process_create_fed_sgd(m, sgd(0.3, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &p));
  size_t P = numel(m), T = fm_layout_trainable_numel(fm_model_layout(m));
  float *got = malloc(P * sizeof *got), *w = malloc(P * sizeof *w), *g = calloc(T, sizeof *g);
  uint64_t cohort[1] = {0};
  train(p, cd, 1, cohort, 1, (fm_batching){.epochs = 1, .batch_size = 5, .shuffle = 1}, got); /* 5 batches, the last short */
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_load(cd, 0, &ex));
  FM_ASSERT_OK(fm_model_init_weights(m, w, 5));
  void *ws = malloc(fm_model_workspace_size(m, 23));
  float loss;
  FM_ASSERT_OK(fm_model_forward(m, ws, w, ex.x, ex.y, 23, 1, &loss, NULL));
  FM_ASSERT_OK(fm_model_backward(m, ws, w, ex.x, ex.y, 23, g));
  for (size_t i = 0; i < T; i++) w[i] -= 0.3f * g[i];
  fm_assert_close(got, w, P, 1e-5, "FedSGD vs full-batch gradient step");
  fm_state *s;
  FM_ASSERT_OK(fm_process_initialize(p, 5, &s));
  fm_hparams cw;
  FM_ASSERT_OK(fm_process_get_hparams(p, s, &cw, NULL));
  assert_int_equal(cw.n, 0); /* no client optimizer */
  fm_state_destroy(&s);
  free(ws), free(got), free(w), free(g);
  fm_examples_free(&ex);
  fm_process_destroy(&p);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

static void test_fedavgm_zero_momentum_is_fedavg(void **st) {
  (void)st;
  size_t counts[4] = {5, 8, 13, 3};
  fm_client_data *cd = make_data(4, counts, 0);
  fm_model *m = make_model();
  fm_process *a, *b;
  fm_optimizer *plain = NULL;
  FM_ASSERT_OK(fm_optimizer_create("sgdm", NULL, &plain)); /* TFF default hparams, then lr 1 */
  fm_hparams h = {0};
  fm_hparams_put(&h, "learning_rate", 1.0);
  FM_ASSERT_OK(fm_optimizer_set_hparams(plain, &h));
  FM_ASSERT_OK(fm_process_create_weighted_fed_avg(m, sgd(0.1, 0), plain, FM_WEIGHTING_NUM_EXAMPLES, NULL, &a));
  FM_ASSERT_OK(fm_process_create_weighted_fed_avg(m, sgd(0.1, 0), sgd(1.0, 0.0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &b));
  float *x = malloc(numel(m) * sizeof *x), *y = malloc(numel(m) * sizeof *y);
  uint64_t cohort[2] = {1, 2};
  train(a, cd, 4, cohort, 2, (fm_batching){.epochs = 1, .batch_size = 4, .shuffle = 1}, x);
  train(b, cd, 4, cohort, 2, (fm_batching){.epochs = 1, .batch_size = 4, .shuffle = 1}, y);
  assert_memory_equal(x, y, numel(m) * sizeof *x);
  free(x), free(y);
  fm_process_destroy(&a);
  fm_process_destroy(&b);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

static void test_fednova_equal_steps_is_fedavg(void **st) {
  (void)st;
  size_t counts[3] = {12, 12, 12};
  fm_client_data *cd = make_data(3, counts, 0);
  fm_model *m = make_model();
  fm_process *avg, *nova;
  FM_ASSERT_OK(fm_process_create_weighted_fed_avg(m, sgd(0.1, 0.5), sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &avg));
  FM_ASSERT_OK(fm_process_create_fed_nova(m, sgd(0.1, 0.5), sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &nova));
  float *a = malloc(numel(m) * sizeof *a), *b = malloc(numel(m) * sizeof *b);
  uint64_t cohort[3] = {0, 1, 2};
  train(avg, cd, 3, cohort, 3, (fm_batching){.epochs = 2, .batch_size = 5, .shuffle = 1}, a);
  train(nova, cd, 3, cohort, 3, (fm_batching){.epochs = 2, .batch_size = 5, .shuffle = 1}, b);
  fm_assert_close(a, b, numel(m), 1e-6, "FedNova with equal steps vs FedAvg");
  free(a), free(b);
  fm_process_destroy(&avg);
  fm_process_destroy(&nova);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

/* Unequal steps: w1 = w0 - tau_eff * sum p_i (delta_i / tau_i), p_i = n_i / n. */
static void test_fednova_formula(void **st) {
  (void)st;
  size_t counts[2] = {4, 12};
  fm_client_data *cd = make_data(2, counts, 0);
  fm_model *m = make_model();
  fm_process *avg, *nova;
  FM_ASSERT_OK(fm_process_create_weighted_fed_avg(m, sgd(0.1, 0), sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &avg));
  FM_ASSERT_OK(fm_process_create_fed_nova(m, sgd(0.1, 0), sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &nova));
  size_t P = numel(m);
  float *d0 = malloc(P * sizeof *d0), *d1 = malloc(P * sizeof *d1), *w0 = malloc(P * sizeof *w0);
  float *got = malloc(P * sizeof *got), *expect = malloc(P * sizeof *expect);
  fm_batching bt = {.epochs = 1, .batch_size = 2, .shuffle = 1};
  uint64_t c0[1] = {0}, c1[1] = {1}, both[2] = {0, 1};
  train(avg, cd, 1, c0, 1, bt, d0); /* trained weights of each client alone */
  train(avg, cd, 1, c1, 1, bt, d1);
  FM_ASSERT_OK(fm_model_init_weights(m, w0, 5));
  train(nova, cd, 1, both, 2, bt, got);
  double tau0 = 2, tau1 = 6, p0 = 4.0 / 16, p1 = 12.0 / 16, tau_eff = p0 * tau0 + p1 * tau1;
  for (size_t i = 0; i < P; i++)
    expect[i] = (float)(w0[i] - tau_eff * (p0 * (w0[i] - d0[i]) / tau0 + p1 * (w0[i] - d1[i]) / tau1));
  fm_assert_close(got, expect, P, 2e-6, "FedNova formula");
  free(d0), free(d1), free(w0), free(got), free(expect);
  fm_process_destroy(&avg);
  fm_process_destroy(&nova);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

static void test_scaffold_identical_clients_is_fedavg(void **st) {
  (void)st;
  size_t counts[4] = {10, 10, 10, 10};
  fm_client_data *cd = make_data(4, counts, 1);
  fm_model *m = make_model();
  fm_process *avg, *sc;
  FM_ASSERT_OK(fm_process_create_weighted_fed_avg(m, sgd(0.1, 0), sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &avg));
  FM_ASSERT_OK(fm_process_create_scaffold(m, sgd(0.1, 0), sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &sc));
  float *a = malloc(numel(m) * sizeof *a), *b = malloc(numel(m) * sizeof *b);
  uint64_t cohort[4] = {0, 1, 2, 3};
  fm_batching bt = {.epochs = 2, .batch_size = 5, .shuffle = 0}; /* identical data and order on every client */
  train(avg, cd, 4, cohort, 4, bt, a);
  train(sc, cd, 4, cohort, 4, bt, b);
  fm_assert_close(a, b, numel(m), 1e-5, "SCAFFOLD on identical clients vs FedAvg");
  /* on heterogeneous clients with partial participation it differs */
  fm_client_data *het = make_data(4, counts, 0);
  uint64_t part[2] = {0, 3};
  train(avg, het, 4, part, 2, bt, a);
  train(sc, het, 4, part, 2, bt, b);
  assert_true(memcmp(a, b, numel(m) * sizeof *a) != 0);
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_process_create_scaffold(m, NULL, sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &sc));
  free(a), free(b);
  fm_process_destroy(&avg);
  fm_process_destroy(&sc);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
  fm_client_data_close(&het);
}

static void test_mime_lite_plain_sgd_is_fedavg(void **st) {
  (void)st;
  size_t counts[3] = {7, 11, 5};
  fm_client_data *cd = make_data(3, counts, 0);
  fm_model *m = make_model();
  fm_process *avg, *mime;
  FM_ASSERT_OK(fm_process_create_weighted_fed_avg(m, sgd(0.1, 0), sgd(1.0, 0.9), FM_WEIGHTING_NUM_EXAMPLES, NULL, &avg));
  FM_ASSERT_OK(fm_process_create_mime_lite(m, sgd(0.1, 0), sgd(1.0, 0.9), FM_WEIGHTING_NUM_EXAMPLES, NULL, &mime));
  float *a = malloc(numel(m) * sizeof *a), *b = malloc(numel(m) * sizeof *b);
  uint64_t cohort[3] = {0, 1, 2};
  train(avg, cd, 3, cohort, 3, (fm_batching){.epochs = 2, .batch_size = 4, .shuffle = 1}, a);
  train(mime, cd, 3, cohort, 3, (fm_batching){.epochs = 2, .batch_size = 4, .shuffle = 1}, b);
  assert_memory_equal(a, b, numel(m) * sizeof *a);
  free(a), free(b);
  fm_process_destroy(&avg);
  fm_process_destroy(&mime);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

/* One client, one full-batch step per round, base SGD with momentum beta:
 * round 1: w1 = w0 - lr g(w0)            (state v = 0 is frozen); v = g(w0)
 * round 2: w2 = w1 - lr (beta v + g(w1)) (frozen v);             v = beta v + g(w1) */
static void test_mime_lite_momentum_by_hand(void **st) {
  (void)st;
  size_t counts[1] = {9};
  fm_client_data *cd = make_data(1, counts, 0);
  fm_model *m = make_model();
  const float lr = 0.3f, beta = 0.9f;
  fm_process *p;
  FM_ASSERT_OK(fm_process_create_mime_lite(m, sgd(lr, beta), sgd(1.0, 0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &p));
  size_t P = numel(m), T = fm_layout_trainable_numel(fm_model_layout(m));
  float *got = malloc(P * sizeof *got), *w = malloc(P * sizeof *w), *g = malloc(T * sizeof *g);
  float *v = calloc(T, sizeof *v);
  uint64_t cohort[1] = {0};
  train(p, cd, 3, cohort, 1, (fm_batching){.epochs = 1, .batch_size = 9, .shuffle = 0}, got);
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_load(cd, 0, &ex));
  FM_ASSERT_OK(fm_model_init_weights(m, w, 5));
  void *ws = malloc(fm_model_workspace_size(m, 9));
  for (int r = 0; r < 3; r++) {
    float loss;
    memset(g, 0, T * sizeof *g);
    FM_ASSERT_OK(fm_model_forward(m, ws, w, ex.x, ex.y, 9, 1, &loss, NULL));
    FM_ASSERT_OK(fm_model_backward(m, ws, w, ex.x, ex.y, 9, g));
    for (size_t i = 0; i < T; i++) {
      w[i] -= lr * (beta * v[i] + g[i]);
      v[i] = beta * v[i] + g[i];
    }
  }
  fm_assert_close(got, w, P, 1e-5, "Mime Lite vs hand computation");
  free(ws), free(got), free(w), free(g), free(v);
  fm_examples_free(&ex);
  fm_process_destroy(&p);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fedprox_zero_is_fedavg),
      cmocka_unit_test(test_fedprox_step_by_hand),
      cmocka_unit_test(test_fedprox_validation),
      cmocka_unit_test(test_fedsgd_one_client_is_gradient_step),
      cmocka_unit_test(test_fedavgm_zero_momentum_is_fedavg),
      cmocka_unit_test(test_fednova_equal_steps_is_fedavg),
      cmocka_unit_test(test_fednova_formula),
      cmocka_unit_test(test_scaffold_identical_clients_is_fedavg),
      cmocka_unit_test(test_mime_lite_plain_sgd_is_fedavg),
      cmocka_unit_test(test_mime_lite_momentum_by_hand),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
