/* tests/unit/test_stages.c — the registered types behind a process: the
 * algorithm registry and fm_process_create by name, aggregators wrapping an
 * inner one (clipping_factory), the executor kept across rounds, and the
 * checked fm_comm_* dispatch. One process, fm_comm_serial. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fm_test.h"

enum { D = 4, C = 3 };

/* k clients of counts[i] examples; client c's features are scaled by
 * scale[c], so that their updates have very different norms. */
static fm_client_data *make_data(size_t k, const size_t *counts, const float *scale) {
  size_t total = 0;
  for (size_t i = 0; i < k; i++) total += counts[i];
  float *x = malloc(total * D * sizeof *x);
  int32_t *y = malloc(total * sizeof *y);
  fm_rng r;
  fm_rng_init(&r, 9, 0, 0, FM_RNG_USER);
  size_t row = 0;
  for (size_t c = 0; c < k; c++)
    for (size_t i = 0; i < counts[c]; i++, row++) {
      for (int j = 0; j < D; j++) x[row * D + j] = (float)fm_rng_normal(&r) * scale[c];
      y[row] = (int32_t)((row * 7 + c) % C);
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

static fm_optimizer *sgd(double lr) {
  fm_optimizer *o = NULL;
  FM_ASSERT_OK(fm_optimizer_create_sgdm(lr, 0.0, &o));
  return o;
}

static void round_of(const fm_process *p, fm_state *s, const fm_client_data *cd, const uint64_t *cohort, size_t k,
                     fm_executor *exec, fm_metrics *m) {
  fm_round_input in = {.data = cd, .batching = {.epochs = 2, .batch_size = 5, .shuffle = 1}, .cohort = cohort,
                       .cohort_size = k, .num_threads = 1, .executor = exec};
  FM_ASSERT_OK(fm_process_next(p, s, &in, fm_comm_serial(), m));
}

/* Every algorithm is listed once, and each builds by name. */
static void test_registry_lists_every_algorithm(void **st) {
  (void)st;
  const char *want[] = {"fedavg", "fedprox", "fedsgd", "mime_lite", "scaffold", "fednova"};
  assert_int_equal(fm_algorithm_count(), 6);
  fm_model *m = make_model();
  for (size_t i = 0; i < fm_algorithm_count(); i++) {
    fm_algorithm_desc d;
    FM_ASSERT_OK(fm_algorithm_info(i, &d));
    assert_string_equal(d.name, want[i]);
    assert_non_null(d.help);
    assert_int_equal(d.needs_client_optimizer, strcmp(d.name, "fedsgd") != 0);
    assert_int_equal(d.needs_shard_assignment, strcmp(d.name, "scaffold") == 0);
    fm_process *p = NULL;
    FM_ASSERT_OK(fm_process_create(m, d.name, NULL, d.needs_client_optimizer ? sgd(0.1) : NULL, sgd(1.0),
                                   FM_WEIGHTING_NUM_EXAMPLES, NULL, &p));
    fm_process_destroy(&p);
  }
  fm_algorithm_desc d;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_algorithm_info(6, &d));
  fm_model_destroy(&m);
}

static void test_process_create_errors(void **st) {
  (void)st;
  fm_model *m = make_model();
  fm_process *p = NULL;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_process_create(m, "fedfoo", NULL, sgd(0.1), sgd(1.0),
                                                      FM_WEIGHTING_NUM_EXAMPLES, NULL, &p));
  FM_ASSERT_MSG_HAS("unknown algorithm 'fedfoo'");
  fm_hparams hp = {0};
  FM_ASSERT_OK(fm_hparams_put(&hp, "proximal_strength", 0.1));
  FM_ASSERT_ERR(FM_ERR_HPARAM_UNKNOWN,
                fm_process_create(m, "fedavg", &hp, sgd(0.1), sgd(1.0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &p));
  FM_ASSERT_MSG_HAS("algorithm 'fedavg' has no hyperparameter 'proximal_strength'");
  fm_hparams_clear(&hp);
  FM_ASSERT_OK(fm_hparams_put(&hp, "proximal_strength", -1));
  FM_ASSERT_ERR(FM_ERR_HPARAM_VALUE,
                fm_process_create(m, "fedprox", &hp, sgd(0.1), sgd(1.0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &p));
  FM_ASSERT_MSG_HAS("fedprox: proximal_strength must be a finite number >= 0");
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG,
                fm_process_create(m, "fednova", NULL, NULL, sgd(1.0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &p));
  FM_ASSERT_MSG_HAS("fednova client work needs a client optimizer");
  assert_null(p);
  /* the client work by name, composed by hand */
  fm_client_work *cw = NULL;
  fm_optimizer *adam = NULL;
  FM_ASSERT_OK(fm_optimizer_create("adam", NULL, &adam));
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_client_work_create(m, "scaffold", NULL, adam, FM_WEIGHTING_UNIFORM, &cw));
  FM_ASSERT_MSG_HAS("scaffold needs an SGD client optimizer (sgdm), not 'adam'");
  FM_ASSERT_OK(fm_client_work_create(m, "fednova", NULL, sgd(0.1), FM_WEIGHTING_UNIFORM, &cw));
  fm_aggregator *agg = NULL;
  fm_finalizer *fin = NULL;
  FM_ASSERT_OK(fm_aggregator_create_unweighted_mean(&agg));
  FM_ASSERT_OK(fm_finalizer_create_apply_optimizer(sgd(1.0), fm_model_layout(m), &fin));
  FM_ASSERT_OK(fm_process_compose(m, cw, agg, fin, &p));
  fm_state *s = NULL;
  FM_ASSERT_OK(fm_process_initialize(p, 77, &s));
  assert_int_equal(fm_state_seed(s), 77);
  assert_int_equal(fm_state_round(s), 0);
  fm_state_destroy(&s);
  fm_process_destroy(&p);
  fm_model_destroy(&m);
}

/* By name with its hparam, FedProx is bit-identical to its builder. */
static void test_process_create_matches_builder(void **st) {
  (void)st;
  size_t counts[3] = {12, 7, 20};
  float scale[3] = {1, 1, 1};
  fm_client_data *cd = make_data(3, counts, scale);
  fm_model *m = make_model();
  fm_process *a = NULL, *b = NULL;
  FM_ASSERT_OK(fm_process_create_fed_prox(m, 0.3, sgd(0.1), sgd(1.0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &a));
  fm_hparams hp = {0};
  FM_ASSERT_OK(fm_hparams_put(&hp, "proximal_strength", 0.3));
  FM_ASSERT_OK(fm_process_create(m, "fedprox", &hp, sgd(0.1), sgd(1.0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &b));
  fm_state *sa, *sb;
  FM_ASSERT_OK(fm_process_initialize(a, 3, &sa));
  FM_ASSERT_OK(fm_process_initialize(b, 3, &sb));
  uint64_t cohort[3] = {0, 1, 2};
  for (int r = 0; r < 2; r++) {
    round_of(a, sa, cd, cohort, 3, NULL, NULL);
    round_of(b, sb, cd, cohort, 3, NULL, NULL);
  }
  size_t P = fm_layout_numel(fm_model_layout(m));
  assert_memory_equal(fm_state_weights(sa), fm_state_weights(sb), P * sizeof(float));
  fm_state_destroy(&sa);
  fm_state_destroy(&sb);
  fm_process_destroy(&a);
  fm_process_destroy(&b);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

static int has_group(const fm_metrics *m, const char *path) {
  for (size_t i = 0; i < m->n; i++)
    if (m->entry[i].kind == FM_METRIC_GROUP && strcmp(m->entry[i].path, path) == 0) return 1;
  return 0;
}

static double l2(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return sqrt(s);
}

/* clipping_factory(C, mean): with one client per round and server SGD at lr
 * 1, the server step is the clipped update, so ||w1 - w0|| = min(||u||, C);
 * the clipped count says whether it was clipped; measurements nest the
 * inner mean's under aggregator/clipping. */
static void test_clipping_bounds_every_client(void **st) {
  (void)st;
  size_t counts[2] = {15, 15};
  float scale[2] = {0.01f, 30.0f}; /* a small update and a large one */
  fm_client_data *cd = make_data(2, counts, scale);
  fm_model *m = make_model();
  size_t P = fm_layout_numel(fm_model_layout(m));
  /* the clip sits between the two clients' update norms */
  double norms[2];
  for (uint64_t c = 0; c < 2; c++) {
    fm_process *plain = NULL;
    FM_ASSERT_OK(fm_process_create(m, "fedavg", NULL, sgd(0.5), sgd(1.0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &plain));
    fm_state *sp;
    FM_ASSERT_OK(fm_process_initialize(plain, 4, &sp));
    float *w0 = malloc(P * sizeof *w0);
    memcpy(w0, fm_state_weights(sp), P * sizeof *w0);
    round_of(plain, sp, cd, &c, 1, NULL, NULL);
    norms[c] = l2(fm_state_weights(sp), w0, P);
    free(w0);
    fm_state_destroy(&sp);
    fm_process_destroy(&plain);
  }
  assert_true(norms[1] > 2 * norms[0]);
  const double clip = sqrt(norms[0] * norms[1]);
  for (uint64_t c = 0; c < 2; c++) {
    fm_aggregator *mean = NULL, *agg = NULL;
    FM_ASSERT_OK(fm_aggregator_create_mean(&mean));
    FM_ASSERT_OK(fm_aggregator_create_clipping(clip, mean, &agg));
    assert_string_equal(fm_aggregator_name(agg), "clipping(mean)");
    assert_true(fm_aggregator_is_weighted(agg));
    assert_string_equal(fm_aggregator_name(fm_aggregator_inner(agg)), "mean");
    fm_process *p = NULL, *plain = NULL;
    FM_ASSERT_OK(fm_process_create(m, "fedavg", NULL, sgd(0.5), sgd(1.0), FM_WEIGHTING_NUM_EXAMPLES, agg, &p));
    FM_ASSERT_OK(fm_process_create(m, "fedavg", NULL, sgd(0.5), sgd(1.0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &plain));
    fm_state *s, *sp;
    FM_ASSERT_OK(fm_process_initialize(p, 4, &s));
    FM_ASSERT_OK(fm_process_initialize(plain, 4, &sp));
    float *w0 = malloc(P * sizeof *w0);
    memcpy(w0, fm_state_weights(s), P * sizeof *w0);
    fm_metrics met;
    fm_metrics_init(&met);
    round_of(p, s, cd, &c, 1, NULL, &met);
    round_of(plain, sp, cd, &c, 1, NULL, NULL);
    double unclipped = l2(fm_state_weights(sp), w0, P), got = l2(fm_state_weights(s), w0, P), n, cnorm;
    FM_ASSERT_OK(fm_metrics_get(&met, "aggregator/clipped_count", &n));
    FM_ASSERT_OK(fm_metrics_get(&met, "aggregator/clipping_norm", &cnorm));
    assert_true(cnorm == clip);
    assert_true(has_group(&met, "aggregator/clipping/mean_value"));
    assert_true(has_group(&met, "aggregator/clipping/mean_weight"));
    if (unclipped > clip) {
      assert_true(n == 1);
      assert_true(fabs(got - clip) < 1e-5 * clip + 1e-7);
    } else {
      assert_true(n == 0);
      assert_memory_equal(fm_state_weights(s), fm_state_weights(sp), P * sizeof(float));
    }
    if (c == 0) assert_true(unclipped < clip); /* both cases are exercised */
    if (c == 1) assert_true(unclipped > clip);
    fm_metrics_free(&met);
    free(w0);
    fm_state_destroy(&s);
    fm_state_destroy(&sp);
    fm_process_destroy(&p);
    fm_process_destroy(&plain);
  }
  fm_aggregator *mean = NULL, *agg = NULL;
  FM_ASSERT_OK(fm_aggregator_create_mean(&mean));
  FM_ASSERT_ERR(FM_ERR_HPARAM_VALUE, fm_aggregator_create_clipping(-1.0, mean, &agg));
  FM_ASSERT_MSG_HAS("clipping_norm must be a finite number > 0");
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_aggregator_create_clipping(1.0, NULL, &agg));
  /* an unweighted inner keeps the composition check */
  FM_ASSERT_OK(fm_aggregator_create_unweighted_mean(&mean));
  FM_ASSERT_OK(fm_aggregator_create_clipping(1.0, mean, &agg));
  assert_false(fm_aggregator_is_weighted(agg));
  fm_process *p = NULL;
  FM_ASSERT_ERR(FM_ERR_NOT_WEIGHTED,
                fm_process_create(m, "fedavg", NULL, sgd(0.5), sgd(1.0), FM_WEIGHTING_NUM_EXAMPLES, agg, &p));
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

/* An executor kept across rounds (and shared by two processes in turn)
 * changes nothing but the time. */
static void test_executor_reuse_is_identical(void **st) {
  (void)st;
  size_t counts[4] = {9, 14, 5, 11};
  float scale[4] = {1, 2, 1, 0.5f};
  fm_client_data *cd = make_data(4, counts, scale);
  fm_model *m = make_model();
  fm_process *a = NULL, *b = NULL;
  FM_ASSERT_OK(fm_process_create(m, "mime_lite", NULL, sgd(0.1), sgd(1.0), FM_WEIGHTING_NUM_EXAMPLES, NULL, &a));
  FM_ASSERT_OK(fm_process_create(m, "fedsgd", NULL, NULL, sgd(0.5), FM_WEIGHTING_NUM_EXAMPLES, NULL, &b));
  fm_executor *exec = NULL;
  FM_ASSERT_OK(fm_executor_create(&exec));
  fm_state *sa, *sa2, *sb, *sb2;
  FM_ASSERT_OK(fm_process_initialize(a, 8, &sa));
  FM_ASSERT_OK(fm_process_initialize(a, 8, &sa2));
  FM_ASSERT_OK(fm_process_initialize(b, 8, &sb));
  FM_ASSERT_OK(fm_process_initialize(b, 8, &sb2));
  uint64_t cohort[3] = {0, 1, 3};
  for (int r = 0; r < 3; r++) {
    round_of(a, sa, cd, cohort, 3, exec, NULL);
    round_of(b, sb, cd, cohort, 3, exec, NULL); /* other workers: the executor remakes them */
    round_of(a, sa2, cd, cohort, 3, NULL, NULL);
    round_of(b, sb2, cd, cohort, 3, NULL, NULL);
  }
  size_t P = fm_layout_numel(fm_model_layout(m));
  assert_memory_equal(fm_state_weights(sa), fm_state_weights(sa2), P * sizeof(float));
  assert_memory_equal(fm_state_weights(sb), fm_state_weights(sb2), P * sizeof(float));
  fm_executor_destroy(&exec);
  assert_null(exec);
  fm_executor_destroy(NULL);
  fm_state_destroy(&sa);
  fm_state_destroy(&sa2);
  fm_state_destroy(&sb);
  fm_state_destroy(&sb2);
  fm_process_destroy(&a);
  fm_process_destroy(&b);
  fm_model_destroy(&m);
  fm_client_data_close(&cd);
}

static int only_agree(fm_comm *c, int status) {
  (void)c;
  return status;
}

/* The fm_comm_* calls check before they dispatch. */
static void test_comm_checked_dispatch(void **st) {
  (void)st;
  char buf[8] = {0};
  double d[2] = {1, 2};
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_comm_bcast(NULL, buf, sizeof buf));
  FM_ASSERT_MSG_HAS("NULL communicator");
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_comm_bcast(fm_comm_serial(), NULL, 4));
  FM_ASSERT_OK(fm_comm_bcast(fm_comm_serial(), buf, sizeof buf));
  FM_ASSERT_OK(fm_comm_allreduce_max(fm_comm_serial(), d, 2));
  void *recv = NULL;
  size_t bytes = 0;
  FM_ASSERT_OK(fm_comm_gather(fm_comm_serial(), buf, 3, &recv, &bytes));
  assert_int_equal(bytes, 3);
  free(recv);
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_comm_gather(fm_comm_serial(), buf, 3, NULL, &bytes));
  /* a transport that implements only agree */
  static const fm_comm_ops ops = {.agree = only_agree};
  fm_comm partial = {.ops = &ops, .rank = 0, .size = 1};
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_comm_reduce_exact(&partial, NULL, 0));
  FM_ASSERT_MSG_HAS("does not implement reduce_exact");
  assert_int_equal(fm_comm_agree(&partial, FM_ERR_IO), FM_ERR_IO);
  assert_int_equal(fm_comm_rank(&partial), 0);
  assert_int_equal(fm_comm_size(&partial), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registry_lists_every_algorithm),
      cmocka_unit_test(test_process_create_errors),
      cmocka_unit_test(test_process_create_matches_builder),
      cmocka_unit_test(test_clipping_bounds_every_client),
      cmocka_unit_test(test_executor_reuse_is_identical),
      cmocka_unit_test(test_comm_checked_dispatch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
