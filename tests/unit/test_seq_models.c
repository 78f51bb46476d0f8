/* tests/unit/test_seq_models.c — stacks with embeddings and LSTMs, a label per
 * time step, the MSE autoencoder, and TFF's named text baselines:
 * parameter counts, Keras's initialisers, finite-difference gradients
 * (LSTM through time, the embedding with its mask, time-distributed dense,
 * MSE against the input), the masked loss and metrics, and bad specs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fedmpi/error.h"
#include "fedmpi/metrics.h"
#include "fedmpi/model.h"
#include "fedmpi/rng.h"

static fm_input_spec flat_spec(size_t d, size_t classes) {
  fm_input_spec s;
  size_t shape[1] = {d};
  assert_int_equal(fm_input_spec_set(&s, 1, shape, classes), FM_OK);
  return s;
}

static fm_model *by_name(const char *name, const fm_input_spec *s) {
  fm_model *m = NULL;
  int rc = fm_model_create_by_name(name, s, &m);
  if (rc != FM_OK) fail_msg("%s: %s", name, fm_last_error());
  return m;
}

/* A batch of token rows: N rows of T + 1 ids in [1, C), the last `pads` of
 * odd rows 0 (padding); x the first T of a row, y the last T (the next
 * token), so x ends in pads - 1 zeros. */
typedef struct seqb {
  size_t N, T, C, P, W;
  float *x, *w;
  int32_t *y;
  void *ws;
} seqb;

static seqb make_seq(const fm_model *m, size_t N, size_t pads, uint64_t key) {
  seqb b;
  const fm_input_spec *s = fm_model_input_spec(m);
  b.N = N;
  b.T = s->num_features;
  b.C = s->num_classes;
  b.P = fm_layout_numel(fm_model_layout(m));
  b.W = fm_layout_trainable_numel(fm_model_layout(m));
  b.x = malloc(N * b.T * sizeof *b.x);
  b.y = malloc(N * b.T * sizeof *b.y);
  b.w = malloc(b.P * sizeof *b.w);
  b.ws = malloc(fm_model_workspace_size(m, N));
  assert_true(b.x && b.y && b.w && b.ws);
  fm_rng r;
  fm_rng_init(&r, key, 0, 0, FM_RNG_USER);
  int32_t *row = malloc((b.T + 1) * sizeof *row);
  for (size_t i = 0; i < N; i++) {
    size_t len = (i % 2) ? b.T + 1 - pads : b.T + 1;
    for (size_t t = 0; t <= b.T; t++) row[t] = t < len ? (int32_t)(1 + fm_rng_below(&r, b.C - 1)) : 0;
    for (size_t t = 0; t < b.T; t++) {
      b.x[i * b.T + t] = (float)row[t];
      b.y[i * b.T + t] = row[t + 1];
    }
  }
  free(row);
  assert_int_equal(fm_model_init_weights(m, b.w, key), FM_OK);
  return b;
}

static void free_seq(seqb *b) {
  free(b->x);
  free(b->y);
  free(b->w);
  free(b->ws);
}

static double loss_at(const fm_model *m, seqb *b) {
  float loss;
  assert_int_equal(fm_model_forward(m, b->ws, b->w, b->x, b->y, b->N, 0, &loss, NULL), FM_OK);
  return loss;
}

/* backward's gradient (W) of the training loss at b->w (free it). */
static float *analytic_grad(const fm_model *m, seqb *b) {
  float loss, *g = calloc(b->W, sizeof *g);
  assert_non_null(g);
  assert_int_equal(fm_model_forward(m, b->ws, b->w, b->x, b->y, b->N, 1, &loss, NULL), FM_OK);
  assert_int_equal(fm_model_backward(m, b->ws, b->w, b->x, b->y, b->N, g), FM_OK);
  return g;
}

/* Relative error of g[i] against the central difference at weight i. */
static double fd_rel_err(const fm_model *m, seqb *b, const float *g, size_t i) {
  float keep = b->w[i], h = 1e-2f;
  b->w[i] = keep + h;
  double up = loss_at(m, b);
  b->w[i] = keep - h;
  double down = loss_at(m, b);
  b->w[i] = keep;
  double fd = (up - down) / (2.0 * h);
  return fabs(fd - g[i]) / fmax(1e-2, fabs(fd) + fabs(g[i]));
}

/* Central differences against backward: at every weight (per == 0), or at
 * `per` weights of every trainable tensor, spread evenly over it with its
 * first and last included (every tensor of a large model checked at a cost
 * that stays small under valgrind). The fraction off by more than 5e-2
 * relative, and the largest error. */
static double fd_bad(const fm_model *m, seqb *b, size_t per, double *maxerr) {
  const fm_layout *l = fm_model_layout(m);
  float *g = analytic_grad(m, b);
  size_t bad = 0, checked = 0;
  *maxerr = 0;
  for (size_t t = 0; t < fm_layout_num_tensors(l); t++) {
    const fm_tensor_info *ti = fm_layout_tensor(l, t);
    if (!ti->trainable) continue;
    size_t count = per ? per : ti->numel;
    for (size_t j = 0; j < count; j++, checked++) {
      size_t i = ti->offset + (!per ? j : per > 1 ? j * (ti->numel - 1) / (per - 1) : 0);
      double err = fd_rel_err(m, b, g, i);
      bad += err > 5e-2;
      if (err > *maxerr) *maxerr = err;
    }
  }
  free(g);
  return (double)bad / (double)checked;
}

/* TFF's baselines have TFF's parameter counts and Keras's tensor names. */
static void test_named_parameter_counts(void **state) {
  (void)state;
  fm_input_spec sh = flat_spec(80, 90), so = flat_spec(20, 10004);
  fm_model *m = by_name("shakespeare_lstm", &sh);
  assert_int_equal(fm_layout_numel(fm_model_layout(m)), 820522);
  assert_int_equal(fm_model_num_targets(m), 80);
  assert_int_equal(fm_model_prediction_size(m), 80 * 90);
  const char *names[] = {"embedding_0/embeddings", "lstm_0/kernel", "lstm_0/recurrent_kernel", "lstm_0/bias",
                         "lstm_1/kernel", "lstm_1/recurrent_kernel", "lstm_1/bias", "dense_0/kernel", "dense_0/bias"};
  assert_int_equal(fm_layout_num_tensors(fm_model_layout(m)), 9);
  for (size_t i = 0; i < 9; i++) assert_string_equal(fm_layout_tensor(fm_model_layout(m), i)->name, names[i]);
  assert_string_equal(fm_model_metric(m, 0)->name, "num_tokens");
  assert_string_equal(fm_model_metric(m, 1)->name, "accuracy");
  assert_string_equal(fm_model_metric(m, 2)->name, "loss");
  fm_model_destroy(&m);

  m = by_name("stackoverflow_nwp", &so);
  assert_int_equal(fm_layout_numel(fm_model_layout(m)), 4050748);
  assert_int_equal(fm_model_num_metrics(m), 7);
  assert_string_equal(fm_model_metric(m, 2)->name, "accuracy_without_out_of_vocab");
  assert_string_equal(fm_model_metric(m, 3)->name, "accuracy_without_out_of_vocab_or_end_of_sentence");
  fm_model_destroy(&m);

  fm_input_spec img;
  size_t shape[2] = {28, 28};
  assert_int_equal(fm_input_spec_set(&img, 2, shape, 62), FM_OK);
  m = by_name("emnist_autoencoder", &img);
  assert_int_equal(fm_layout_numel(fm_model_layout(m)), 2837314);
  assert_int_equal(fm_model_num_targets(m), 0);
  assert_string_equal(fm_model_metric(m, 0)->name, "mean_squared_error");
  assert_string_equal(fm_model_metric(m, 1)->name, "mean_absolute_error");
  fm_model_destroy(&m);

  /* the classifier keeps its single label and accuracy */
  fm_input_spec fl = flat_spec(12, 3);
  m = by_name("softmax", &fl);
  assert_int_equal(fm_model_num_targets(m), 1);
  assert_int_equal(fm_model_prediction_size(m), 3);
  assert_string_equal(fm_model_metric(m, 0)->name, "accuracy");
  fm_model_destroy(&m);
}

/* Keras's initialisers: the embedding U(-0.05, 0.05), the recurrent kernel
 * with orthonormal rows, the forget gate's bias 1, the others 0. */
static void test_lstm_initialisers(void **state) {
  (void)state;
  fm_input_spec s = flat_spec(7, 11);
  fm_model *m = by_name("stack:embedding(5,mask_zero),lstm(6,sequences),dense", &s);
  const fm_layout *l = fm_model_layout(m);
  float *w = malloc(fm_layout_numel(l) * sizeof *w);
  assert_int_equal(fm_model_init_weights(m, w, 42), FM_OK);
  const fm_tensor_info *E = fm_layout_tensor(l, 0), *Wh = fm_layout_tensor(l, 2), *b = fm_layout_tensor(l, 3);
  assert_int_equal(E->shape[0], 11);
  for (size_t i = 0; i < E->numel; i++) assert_true(fabsf(w[E->offset + i]) <= 0.05f);
  const size_t U = 6;
  for (size_t r = 0; r < U; r++)
    for (size_t q = 0; q < U; q++) {
      double dot = 0;
      for (size_t c = 0; c < 4 * U; c++) dot += (double)w[Wh->offset + r * 4 * U + c] * w[Wh->offset + q * 4 * U + c];
      assert_true(fabs(dot - (r == q)) < 1e-5);
    }
  for (size_t i = 0; i < 4 * U; i++) assert_true(w[b->offset + i] == ((i >= U && i < 2 * U) ? 1.0f : 0.0f));
  free(w);
  fm_model_destroy(&m);
}

/* Gradients through time: every weight against central differences. */
static void test_seq_gradients(void **state) {
  (void)state;
  const struct {
    const char *name;
    size_t T, C, pads;
  } cases[] = {
      {"stack:embedding(4,mask_zero),lstm(5,sequences),dense", 6, 7, 2},
      {"stack:embedding(4,mask_zero),lstm(3,sequences),lstm(4,sequences),dense(5),tanh,dense", 5, 6, 2},
      {"stack:embedding(7,3),lstm(4,sequences),dense", 5, 7, 0}, /* no mask: pads are tokens */
      {"stack:embedding(3,mask_zero),dense(4),sigmoid,lstm(5,sequences),dense", 4, 5, 1},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    fm_input_spec s = flat_spec(cases[c].T, cases[c].C);
    fm_model *m = by_name(cases[c].name, &s);
    assert_int_equal(fm_model_num_targets(m), cases[c].T);
    seqb b = make_seq(m, 3, cases[c].pads, 5 + c);
    double maxerr, bad = fd_bad(m, &b, 0, &maxerr);
    if (bad > 0) fail_msg("%s: %.1f %% of the weights off (max relative error %g)", cases[c].name, 100 * bad, maxerr);
    free_seq(&b);
    fm_model_destroy(&m);
  }
}

/* An LSTM's last state as a classifier (one label per example), the mask
 * carrying the state over padded steps: right-padding leaves the last state
 * of the unpadded prefix. */
static void test_lstm_last_state(void **state) {
  (void)state;
  fm_input_spec s = flat_spec(6, 5);
  fm_model *m = by_name("stack:embedding(3,mask_zero),lstm(4),dense", &s);
  assert_int_equal(fm_model_num_targets(m), 1);
  seqb b = make_seq(m, 4, 3, 9); /* odd rows: 3 pads in the T + 1 tokens, so x ends in 2 */
  for (size_t i = 0; i < b.N; i++) b.y[i] = (int32_t)(i % b.C); /* y (N): one label each */
  double maxerr, bad = fd_bad(m, &b, 0, &maxerr);
  if (bad > 0) fail_msg("last state: %.1f %% off (max %g)", 100 * bad, maxerr);
  /* row 1 ends in 2 pads: its last state is the state after its 4 tokens,
   * what the same weights give on the row cut to 4 steps */
  assert_true(b.x[1 * 6 + 4] == 0 && b.x[1 * 6 + 5] == 0 && b.x[1 * 6 + 3] != 0);
  fm_input_spec s4 = flat_spec(4, 5);
  fm_model *m4 = by_name("stack:embedding(3,mask_zero),lstm(4),dense", &s4);
  assert_true(fm_layout_equal(fm_model_layout(m), fm_model_layout(m4)));
  void *ws4 = malloc(fm_model_workspace_size(m4, 1));
  float loss, probs[4 * 5], p4[5];
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, b.N, 0, &loss, probs), FM_OK);
  assert_int_equal(fm_model_forward(m4, ws4, b.w, b.x + 6, b.y + 1, 1, 0, &loss, p4), FM_OK);
  for (size_t c = 0; c < 5; c++) assert_true(fabsf(probs[5 + c] - p4[c]) < 1e-6f);
  free(ws4);
  fm_model_destroy(&m4);
  free_seq(&b);
  fm_model_destroy(&m);
}

/* The loss is the mean over the unmasked positions (Keras's mask from the
 * embedding), and the pad token's labels are not counted by the metrics. */
static void test_masked_loss_and_metrics(void **state) {
  (void)state;
  fm_input_spec s = flat_spec(5, 6);
  fm_model *m = by_name("stack:embedding(3,mask_zero),lstm(4,sequences),dense", &s);
  seqb b = make_seq(m, 2, 3, 3);
  float loss, *probs = malloc(b.N * b.T * b.C * sizeof *probs);
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, b.N, 0, &loss, probs), FM_OK);
  double sum = 0;
  size_t valid = 0;
  for (size_t i = 0; i < b.N * b.T; i++) {
    if (b.x[i] == 0) continue;
    sum += -log((double)probs[i * b.C + (size_t)b.y[i]]);
    valid++;
  }
  assert_int_equal(valid, 5 + 3); /* row 0 unpadded; row 1's 6-token row ends in 3 pads, x = its first 5 */
  assert_true(fabs(sum / (double)valid - loss) < 1e-5);
  /* a padded input's logits do not change the loss */
  float loss2;
  b.y[1 * 5 + 4] = (b.y[1 * 5 + 4] + 1) % 6;
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, b.N, 0, &loss2, NULL), FM_OK);
  assert_true(loss2 == loss);
  /* num_tokens and accuracy skip label 0 */
  const fm_metric *nt = fm_model_metric(m, 0), *acc = fm_model_metric(m, 1);
  assert_true(nt->per_position && acc->per_position);
  double v[2] = {0, 0};
  nt->update(nt, probs, b.y, b.N * b.T, b.C, loss, v);
  size_t labels = 0;
  for (size_t i = 0; i < b.N * b.T; i++) labels += b.y[i] != 0;
  assert_true(v[0] == (double)labels);
  double a[2] = {0, 0};
  acc->update(acc, probs, b.y, b.N * b.T, b.C, loss, a);
  assert_true(a[1] == (double)labels);
  free(probs);
  free_seq(&b);
  fm_model_destroy(&m);
}

/* MSE against the input (an autoencoder): gradients, the loss as Keras's
 * mean, and the per-example errors the metrics read. */
static void test_autoencoder(void **state) {
  (void)state;
  fm_input_spec s = flat_spec(6, 2);
  fm_model *m = by_name("stack:dense(4),sigmoid,dense(3),dense(6),sigmoid,mse", &s);
  assert_int_equal(fm_model_num_targets(m), 0);
  seqb b = make_seq(m, 3, 0, 4);
  for (size_t i = 0; i < b.N * b.T; i++) b.x[i] = (float)(i % 7) / 7.0f;
  double maxerr, bad = fd_bad(m, &b, 0, &maxerr);
  if (bad > 0) fail_msg("autoencoder: %.1f %% off (max %g)", 100 * bad, maxerr);
  float loss, errs[6];
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, NULL, b.N, 0, &loss, errs), FM_OK);
  double mean = (errs[0] + errs[2] + errs[4]) / 3.0;
  assert_true(fabs(mean - loss) < 1e-6);
  for (size_t i = 0; i < 3; i++) assert_true(errs[2 * i + 1] >= 0 && errs[2 * i + 1] * errs[2 * i + 1] <= errs[2 * i] + 1e-7);
  /* the metrics read their own column: [sum of per-example errors, examples] */
  const fm_metric *mse = fm_model_metric(m, 0), *mae = fm_model_metric(m, 1);
  double vs[2] = {0, 0}, va[2] = {0, 0};
  mse->update(mse, errs, NULL, 3, 2, loss, vs);
  mae->update(mae, errs, NULL, 3, 2, loss, va);
  assert_true(vs[1] == 3 && va[1] == 3);
  assert_true(fabs(vs[0] - ((double)errs[0] + errs[2] + errs[4])) < 1e-9);
  assert_true(fabs(va[0] - ((double)errs[1] + errs[3] + errs[5])) < 1e-9);
  assert_true(mse->finalize(mse, vs) == vs[0] / 3);
  free_seq(&b);
  fm_model_destroy(&m);
}

/* Each named baseline's backward against finite differences on a sample of
 * the weights of every tensor. */
static void test_named_gradients(void **state) {
  (void)state;
  fm_input_spec sh = flat_spec(80, 90);
  fm_model *m = by_name("shakespeare_lstm", &sh);
  seqb b = make_seq(m, 2, 30, 11);
  double maxerr, bad = fd_bad(m, &b, 7, &maxerr);
  if (bad > 0) fail_msg("shakespeare_lstm: %.1f %% off (max %g)", 100 * bad, maxerr);
  free_seq(&b);
  fm_model_destroy(&m);

  fm_input_spec so = flat_spec(20, 54); /* 50 words */
  m = by_name("stackoverflow_nwp", &so);
  b = make_seq(m, 2, 6, 12);
  bad = fd_bad(m, &b, 7, &maxerr);
  if (bad > 0) fail_msg("stackoverflow_nwp: %.1f %% off (max %g)", 100 * bad, maxerr);
  free_seq(&b);
  fm_model_destroy(&m);

  fm_input_spec img;
  size_t shape[2] = {28, 28};
  assert_int_equal(fm_input_spec_set(&img, 2, shape, 10), FM_OK);
  m = by_name("emnist_autoencoder", &img);
  b = make_seq(m, 2, 0, 13);
  for (size_t i = 0; i < b.N * b.T; i++) b.x[i] = (float)((i * 37) % 101) / 101.0f;
  bad = fd_bad(m, &b, 4, &maxerr);
  if (bad > 0) fail_msg("emnist_autoencoder: %.1f %% off (max %g)", 100 * bad, maxerr);
  free_seq(&b);
  fm_model_destroy(&m);
}

/* Inputs that are not token ids, and stacks that cannot be built. */
static void test_bad_seq_specs(void **state) {
  (void)state;
  fm_input_spec s = flat_spec(5, 6), img;
  size_t shape[2] = {4, 4};
  assert_int_equal(fm_input_spec_set(&img, 2, shape, 3), FM_OK);
  const struct {
    const char *name;
    const fm_input_spec *spec;
    int rc;
    const char *msg;
  } cases[] = {
      {"stack:dense(3),embedding(4),lstm(2,sequences),dense", &s, FM_ERR_INVALID_ARG, "must be the first layer"},
      {"stack:embedding(4),lstm(2,sequences),dense", &img, FM_ERR_SPEC_MISMATCH, "needs token ids"},
      {"stack:dense(4),lstm(2,sequences),dense", &s, FM_ERR_SPEC_MISMATCH, "needs a sequence (T, F)"},
      {"stack:embedding(4,mask_zero,3),lstm(2),dense", &s, FM_ERR_INVALID_ARG, "an argument after 'mask_zero'"},
      {"stack:embedding(4,zero),lstm(2),dense", &s, FM_ERR_INVALID_ARG, "bad option 'zero'"},
      {"stack:embedding(4),lstm(2,all),dense", &s, FM_ERR_INVALID_ARG, "bad return mode 'all'"},
      {"stack:embedding(1,2,3),lstm(2),dense", &s, FM_ERR_INVALID_ARG, "too many numbers"},
      {"stack:embedding(4),lstm(2,sequences),dense(3)", &s, FM_ERR_SPEC_MISMATCH, "at every step"},
      {"stack:dense(4),sigmoid,dense(3),mse", &s, FM_ERR_SPEC_MISMATCH, "compares the output with the input"},
      {"stack:embedding(4),lsmt(2),dense", &s, FM_ERR_INVALID_ARG, "unknown layer 'lsmt'"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    fm_model *m = NULL;
    int rc = fm_model_create_by_name(cases[c].name, cases[c].spec, &m);
    if (rc != cases[c].rc || !strstr(fm_last_error(), cases[c].msg))
      fail_msg("%s: rc %d, message '%s' (expected %d, '%s')", cases[c].name, rc, fm_last_error(), cases[c].rc,
               cases[c].msg);
    assert_null(m);
  }
  /* image data given to the text baselines; text to the autoencoder */
  fm_model *m = NULL;
  assert_int_equal(fm_model_create_by_name("shakespeare_lstm", &img, &m), FM_ERR_SPEC_MISMATCH);
  assert_non_null(strstr(fm_last_error(), "image data?"));
  assert_int_equal(fm_model_create_by_name("emnist_autoencoder", &s, &m), FM_ERR_SPEC_MISMATCH);
  /* a float that is not a token id reaches forward: a clear error, not a read out of bounds */
  m = by_name("stack:embedding(4,mask_zero),lstm(2,sequences),dense", &s);
  seqb b = make_seq(m, 2, 0, 1);
  float loss;
  b.x[3] = 0.5f;
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, b.N, 0, &loss, NULL), FM_ERR_SPEC_MISMATCH);
  assert_non_null(strstr(fm_last_error(), "not a token id in [0, 6)"));
  b.x[3] = 6.0f;
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, b.N, 0, &loss, NULL), FM_ERR_SPEC_MISMATCH);
  b.x[3] = 2.0f;
  b.y[7] = 6; /* a label per step outside the classes */
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, b.N, 0, &loss, NULL), FM_ERR_SPEC_MISMATCH);
  assert_non_null(strstr(fm_last_error(), "at a time step"));
  free_seq(&b);
  fm_model_destroy(&m);
}

/* The type name spells the layers back, words included. */
static void test_seq_type_name(void **state) {
  (void)state;
  fm_input_spec s = flat_spec(5, 6);
  fm_model *m = by_name("stack: embedding(6, 4, mask_zero), lstm(3, sequences), lstm(2,last), dense", &s);
  assert_string_equal(fm_model_type(m), "stack:embedding(6,4,mask_zero),lstm(3,sequences),lstm(2,last),dense");
  assert_int_equal(fm_model_num_targets(m), 1);
  fm_model *again = by_name(fm_model_type(m), &s);
  assert_true(fm_layout_equal(fm_model_layout(m), fm_model_layout(again)));
  fm_model_destroy(&again);
  fm_model_destroy(&m);
  /* the mse loss is part of the name (a weights file's model attribute rebuilds the autoencoder) */
  fm_input_spec s6 = flat_spec(6, 2);
  m = by_name("stack:dense(3),sigmoid,dense(6),mse", &s6);
  assert_string_equal(fm_model_type(m), "stack:dense(3),sigmoid,dense(6),mse");
  again = by_name(fm_model_type(m), &s6);
  assert_int_equal(fm_model_num_targets(again), 0);
  fm_model_destroy(&again);
  fm_model_destroy(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_named_parameter_counts), cmocka_unit_test(test_lstm_initialisers),
      cmocka_unit_test(test_seq_gradients),          cmocka_unit_test(test_lstm_last_state),
      cmocka_unit_test(test_masked_loss_and_metrics), cmocka_unit_test(test_autoencoder),
      cmocka_unit_test(test_named_gradients),        cmocka_unit_test(test_bad_seq_specs),
      cmocka_unit_test(test_seq_type_name),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
