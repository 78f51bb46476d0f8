/* tests/unit/test_metrics.c — built-in and parameterised metrics on
 * hand-made predictions, and a user metric flowing through a learning round. */
#include <stdlib.h>
#include <string.h>

#include "fm_test.h"

/* 4 examples, 3 classes. Labels 0, 1, 2, 2. */
static const float probs[12] = {0.6f, 0.3f, 0.1f,  /* y=0: top-1 hit */
                                0.5f, 0.2f, 0.3f,  /* y=1: rank 3 */
                                0.2f, 0.3f, 0.5f,  /* y=2: top-1 hit */
                                0.4f, 0.35f, 0.25f /* y=2: rank 3 */};
static const int32_t labels[4] = {0, 1, 2, 2};

static double run_metric(const fm_metric *m) {
  double sums[8] = {0};
  m->update(m, probs, labels, 4, 3, 0.0, sums);
  return m->finalize(m, sums);
}

static void test_top_k(void **st) {
  (void)st;
  fm_metric *t1, *t2, *t3;
  FM_ASSERT_OK(fm_metric_create_top_k(1, &t1));
  FM_ASSERT_OK(fm_metric_create_top_k(2, &t2));
  FM_ASSERT_OK(fm_metric_create_top_k(3, &t3));
  assert_string_equal(t2->name, "top_2_accuracy");
  assert_true(run_metric(t1) == 0.5);
  assert_true(run_metric(t2) == 0.5); /* the misses are ranked third */
  assert_true(run_metric(t3) == 1.0);
  assert_true(run_metric(t1) == run_metric(fm_metric_accuracy()));
  fm_metric *bad = NULL;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_metric_create_top_k(0, &bad));
  fm_metric_destroy(&t1);
  fm_metric_destroy(&t2);
  fm_metric_destroy(&t3);
  assert_null(t3);
}

static void test_recall(void **st) {
  (void)st;
  fm_metric *r[3];
  for (int c = 0; c < 3; c++) FM_ASSERT_OK(fm_metric_create_recall((size_t)c, &r[c]));
  assert_string_equal(r[2]->name, "recall/2");
  assert_true(run_metric(r[0]) == 1.0);
  assert_true(run_metric(r[1]) == 0.0);
  assert_true(run_metric(r[2]) == 0.5);
  /* a class that never occurs reports 0, not NaN */
  fm_metric *r7;
  FM_ASSERT_OK(fm_metric_create_recall(7, &r7));
  double s[2] = {0};
  r7->update(r7, probs, labels, 4, 3, 0.0, s);
  assert_true(r7->finalize(r7, s) == 0.0);
  for (int c = 0; c < 3; c++) fm_metric_destroy(&r[c]);
  fm_metric_destroy(&r7);
}

/* A user metric through a round: sums over clients, then finalized. */
static void test_metric_through_round(void **st) {
  (void)st;
  enum { D = 4, C = 3 };
  size_t counts[3] = {5, 9, 6};
  float x[20 * D];
  int32_t y[20];
  fm_rng r;
  fm_rng_init(&r, 3, 0, 0, FM_RNG_USER);
  for (int i = 0; i < 20 * D; i++) x[i] = (float)fm_rng_normal(&r);
  for (int i = 0; i < 20; i++) y[i] = i % C;
  size_t shape[1] = {D};
  fm_client_data *cd;
  FM_ASSERT_OK(fm_client_data_from_memory(3, NULL, counts, x, y, 1, shape, &cd));
  fm_input_spec spec;
  FM_ASSERT_OK(fm_input_spec_set(&spec, 1, shape, C));
  fm_model *m;
  FM_ASSERT_OK(fm_model_create_softmax(&spec, &m));
  fm_metric *top2;
  FM_ASSERT_OK(fm_metric_create_top_k(2, &top2));
  FM_ASSERT_OK(fm_model_add_metric(m, top2));
  size_t P = fm_layout_numel(fm_model_layout(m));
  float *w = malloc(P * sizeof *w);
  FM_ASSERT_OK(fm_model_init_weights(m, w, 1));
  fm_metrics out;
  fm_metrics_init(&out);
  FM_ASSERT_OK(fm_evaluate(m, w, cd, NULL, 0, 4, 1, fm_comm_serial(), &out));
  double v, acc;
  FM_ASSERT_OK(fm_metrics_get(&out, "top_2_accuracy", &v));
  FM_ASSERT_OK(fm_metrics_get(&out, "accuracy", &acc));
  assert_true(v >= acc && v <= 1.0);
  /* and through build_fed_eval: total_rounds accumulates */
  fm_eval_process *e;
  FM_ASSERT_OK(fm_eval_process_create(m, &e));
  for (int round = 0; round < 3; round++) {
    fm_metrics_clear(&out);
    FM_ASSERT_OK(fm_eval_process_next(e, w, cd, NULL, 0, 4, 1, fm_comm_serial(), &out));
  }
  FM_ASSERT_OK(fm_metrics_get(&out, "client_work/eval/total_rounds_metrics/num_examples", &v));
  assert_true(v == 60);
  FM_ASSERT_OK(fm_metrics_get(&out, "client_work/eval/current_round_metrics/num_examples", &v));
  assert_true(v == 20);
  FM_ASSERT_OK(fm_metrics_get(&out, "client_work/eval/total_rounds_metrics/top_2_accuracy", &v));
  double cur;
  FM_ASSERT_OK(fm_metrics_get(&out, "client_work/eval/current_round_metrics/top_2_accuracy", &cur));
  assert_true(v == cur); /* same weights each round */
  fm_eval_process_destroy(&e);
  fm_metrics_free(&out);
  free(w);
  fm_model_destroy(&m);
  fm_metric_destroy(&top2);
  fm_client_data_close(&cd);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  static char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

/* Columns that appear after round 1 (evaluation every K rounds) extend the
 * CSV header and pad earlier rows; resuming keeps rows up to the checkpoint. */
static void test_metrics_writer_columns(void **st) {
  (void)st;
  fm_metrics m;
  fm_metrics_init(&m);
  fm_metrics_writer *w;
  FM_ASSERT_OK(fm_metrics_writer_open(".", &w));
  FM_ASSERT_OK(fm_metrics_put(&m, "client_work/train/loss", 0.5, FM_METRIC_FLOAT));
  FM_ASSERT_OK(fm_metrics_writer_write(w, 1, &m));
  FM_ASSERT_OK(fm_metrics_put(&m, "evaluation/accuracy", 0.25, FM_METRIC_FLOAT));
  FM_ASSERT_OK(fm_metrics_put(&m, "client_work/train/loss", 0.4, FM_METRIC_FLOAT));
  FM_ASSERT_OK(fm_metrics_writer_write(w, 2, &m));
  fm_metrics_clear(&m);
  FM_ASSERT_OK(fm_metrics_put(&m, "client_work/train/loss", 0.3, FM_METRIC_FLOAT));
  FM_ASSERT_OK(fm_metrics_writer_write(w, 3, &m));
  fm_metrics_writer_close(&w);
  assert_string_equal(slurp("metrics.csv"), "round,client_work/train/loss,evaluation/accuracy\n"
                                            "1,0.5,\n2,0.4,0.25\n3,0.3,\n");
  /* resume after round 2: round 3 is dropped, new rows follow the header */
  FM_ASSERT_OK(fm_metrics_writer_resume(".", 2, &w));
  FM_ASSERT_OK(fm_metrics_put(&m, "evaluation/accuracy", 0.5, FM_METRIC_FLOAT));
  FM_ASSERT_OK(fm_metrics_writer_write(w, 3, &m));
  FM_ASSERT_OK(fm_metrics_put(&m, "time/x", 1, FM_METRIC_INT));
  FM_ASSERT_OK(fm_metrics_writer_write(w, 4, &m));
  fm_metrics_writer_close(&w);
  assert_string_equal(slurp("metrics.csv"), "round,client_work/train/loss,evaluation/accuracy,time/x\n"
                                            "1,0.5,,\n2,0.4,0.25,\n3,0.3,0.5,\n4,0.3,0.5,1\n");
  fm_metrics_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_top_k),
      cmocka_unit_test(test_recall),
      cmocka_unit_test(test_metric_through_round),
      cmocka_unit_test(test_metrics_writer_columns),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
