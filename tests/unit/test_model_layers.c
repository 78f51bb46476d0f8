/* tests/unit/test_model_layers.c — the private layer kernels of src/model
 * (dense, ReLU, softmax cross-entropy, Glorot init) against naive loops in
 * double precision.
 *
 * The kernels are hidden inside libfedmpi, so this file compiles
 * src/model/layers.c into the test itself. Sizes include odd shapes and ones
 * large enough to reach OpenBLAS's blocked kernels; every comparison uses a
 * tolerance, so the result does not depend on which BLAS kernel runs.
 *
 * Deliberately not covered here: whole models and their gradients (see
 * test_model.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/model/layers.c"
#include "fedmpi/rng.h"

static void fill_uniform(float *a, size_t n, float lo, float hi, uint64_t stream) {
  fm_rng r;
  fm_rng_init(&r, 1234, 0, stream, FM_RNG_USER);
  for (size_t i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)fm_rng_uniform(&r);
}

static void assert_close(double got, double want, double rtol, double atol) {
  double err = fabs(got - want), tol = atol + rtol * fabs(want);
  if (!(err <= tol)) fail_msg("got %.9g, want %.9g (|err| %.3g > tol %.3g)", got, want, err, tol);
}

/* (N, IC, OC) cases: tiny, odd, and large enough for blocked sgemm paths. */
static const size_t dense_cases[][3] = {{1, 1, 1}, {5, 7, 3}, {4, 3, 10}, {33, 17, 9}, {64, 100, 40}, {3, 200, 200}};

static void test_dense_forward_matches_naive(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof dense_cases / sizeof dense_cases[0]; k++) {
    size_t N = dense_cases[k][0], IC = dense_cases[k][1], OC = dense_cases[k][2];
    float *in = malloc(N * IC * sizeof *in), *W = malloc(IC * OC * sizeof *W), *b = malloc(OC * sizeof *b);
    float *out = malloc(N * OC * sizeof *out);
    fill_uniform(in, N * IC, -1, 1, 1);
    fill_uniform(W, IC * OC, -1, 1, 2);
    fill_uniform(b, OC, -1, 1, 3);
    for (size_t i = 0; i < N * OC; i++) out[i] = NAN; /* must be overwritten, not accumulated */
    fm__dense_forward(out, in, W, b, N, IC, OC);
    for (size_t n = 0; n < N; n++)
      for (size_t o = 0; o < OC; o++) {
        double s = b[o], mag = fabs(b[o]);
        for (size_t i = 0; i < IC; i++) {
          s += (double)in[n * IC + i] * W[i * OC + o];
          mag += fabs((double)in[n * IC + i] * W[i * OC + o]);
        }
        assert_close(out[n * OC + o], s, 0, 1e-6 * (mag + 1));
      }
    free(in), free(W), free(b), free(out);
  }
}

static void test_dense_backward_matches_naive(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof dense_cases / sizeof dense_cases[0]; k++) {
    size_t N = dense_cases[k][0], IC = dense_cases[k][1], OC = dense_cases[k][2];
    float *in = malloc(N * IC * sizeof *in), *W = malloc(IC * OC * sizeof *W), *dout = malloc(N * OC * sizeof *dout);
    float *dW = malloc(IC * OC * sizeof *dW), *db = malloc(OC * sizeof *db), *din = malloc(N * IC * sizeof *din);
    float *dW0 = malloc(IC * OC * sizeof *dW0), *db0 = malloc(OC * sizeof *db0);
    fill_uniform(in, N * IC, -1, 1, 4);
    fill_uniform(W, IC * OC, -1, 1, 5);
    fill_uniform(dout, N * OC, -1, 1, 6);
    fill_uniform(dW0, IC * OC, -1, 1, 7); /* non-zero start: backward accumulates */
    fill_uniform(db0, OC, -1, 1, 8);
    memcpy(dW, dW0, IC * OC * sizeof *dW);
    memcpy(db, db0, OC * sizeof *db);
    for (size_t i = 0; i < N * IC; i++) din[i] = NAN; /* din is overwritten */
    fm__dense_backward(din, dW, db, dout, in, W, N, IC, OC);
    for (size_t i = 0; i < IC; i++)
      for (size_t o = 0; o < OC; o++) {
        double s = dW0[i * OC + o], mag = fabs(s);
        for (size_t n = 0; n < N; n++) {
          s += (double)in[n * IC + i] * dout[n * OC + o];
          mag += fabs((double)in[n * IC + i] * dout[n * OC + o]);
        }
        assert_close(dW[i * OC + o], s, 0, 1e-6 * (mag + 1));
      }
    for (size_t o = 0; o < OC; o++) {
      double s = db0[o];
      for (size_t n = 0; n < N; n++) s += dout[n * OC + o];
      assert_close(db[o], s, 0, 1e-6 * (N + 1));
    }
    for (size_t n = 0; n < N; n++)
      for (size_t i = 0; i < IC; i++) {
        double s = 0, mag = 0;
        for (size_t o = 0; o < OC; o++) {
          s += (double)dout[n * OC + o] * W[i * OC + o];
          mag += fabs((double)dout[n * OC + o] * W[i * OC + o]);
        }
        assert_close(din[n * IC + i], s, 0, 1e-6 * (mag + 1));
      }
    /* din == NULL: parameter gradients only, same values */
    float *dW2 = malloc(IC * OC * sizeof *dW2), *db2 = malloc(OC * sizeof *db2);
    memcpy(dW2, dW0, IC * OC * sizeof *dW2);
    memcpy(db2, db0, OC * sizeof *db2);
    fm__dense_backward(NULL, dW2, db2, dout, in, W, N, IC, OC);
    for (size_t i = 0; i < IC * OC; i++) assert_close(dW2[i], dW[i], 1e-6, 1e-6);
    for (size_t o = 0; o < OC; o++) assert_close(db2[o], db[o], 0, 0);
    free(in), free(W), free(dout), free(dW), free(db), free(din), free(dW0), free(db0), free(dW2), free(db2);
  }
}

static void test_relu(void **state) {
  (void)state;
  float x[6] = {-2.0f, -0.0f, 0.0f, 1e-30f, 3.5f, -1e-30f};
  fm__relu_forward(x, 6);
  const float want[6] = {0, 0, 0, 1e-30f, 3.5f, 0};
  for (int i = 0; i < 6; i++) assert_true(x[i] == want[i]);
  float dout[6] = {1, 2, 3, 4, 5, 6}, din[6];
  fm__relu_backward(din, dout, x, 6);
  const float wantd[6] = {0, 0, 0, 4, 5, 0};
  for (int i = 0; i < 6; i++) assert_true(din[i] == wantd[i]);
  fm__relu_backward(dout, dout, x, 6); /* in place */
  for (int i = 0; i < 6; i++) assert_true(dout[i] == wantd[i]);
}

/* naive double reference: returns mean loss, fills probs */
static double ref_softmax_xent(double *probs, const float *logits, const int32_t *y, size_t N, size_t C) {
  double total = 0;
  for (size_t n = 0; n < N; n++) {
    double mx = -INFINITY, sum = 0;
    for (size_t c = 0; c < C; c++) mx = fmax(mx, logits[n * C + c]);
    for (size_t c = 0; c < C; c++) sum += exp(logits[n * C + c] - mx);
    for (size_t c = 0; c < C; c++) probs[n * C + c] = exp(logits[n * C + c] - mx) / sum;
    total += -(logits[n * C + y[n]] - mx - log(sum));
  }
  return total / (double)N;
}

static void test_softmax_xent_matches_naive(void **state) {
  (void)state;
  const size_t N = 9, C = 7;
  float logits[9 * 7], probs[9 * 7], dl[9 * 7];
  double ref[9 * 7];
  int32_t y[9];
  fill_uniform(logits, N * C, -4, 4, 9);
  for (size_t n = 0; n < N; n++) y[n] = (int32_t)((n * 5) % C);
  double want = ref_softmax_xent(ref, logits, y, N, C);
  float loss = fm__softmax_xent_forward(probs, logits, y, N, C);
  assert_close(loss, want, 1e-6, 1e-7);
  for (size_t n = 0; n < N; n++) {
    double s = 0;
    for (size_t c = 0; c < C; c++) {
      assert_close(probs[n * C + c], ref[n * C + c], 1e-5, 1e-7);
      s += probs[n * C + c];
    }
    assert_close(s, 1.0, 0, 1e-5);
  }
  /* in place (probs aliasing logits) gives the same */
  float inplace[9 * 7];
  memcpy(inplace, logits, sizeof inplace);
  float loss2 = fm__softmax_xent_forward(inplace, inplace, y, N, C);
  assert_true(loss2 == loss);
  assert_memory_equal(inplace, probs, sizeof inplace);

  /* backward: (p - onehot) / N, overwriting */
  for (size_t i = 0; i < N * C; i++) dl[i] = NAN;
  fm__softmax_xent_backward(dl, probs, y, N, C);
  for (size_t n = 0; n < N; n++)
    for (size_t c = 0; c < C; c++)
      assert_close(dl[n * C + c], (ref[n * C + c] - (c == (size_t)y[n])) / (double)N, 1e-5, 1e-7);
}

static void test_softmax_xent_extreme_logits(void **state) {
  (void)state;
  /* probabilities underflow to exactly 0: the loss must stay finite (and right) */
  float logits[2 * 3] = {1000.0f, -1000.0f, 0.0f, -50.0f, 50.0f, 50.0f}, probs[6];
  int32_t y[2] = {1, 0};
  float loss = fm__softmax_xent_forward(probs, logits, y, 2, 3);
  assert_true(isfinite(loss));
  assert_true(probs[1] == 0.0f);
  /* example 0: 2000; example 1: 100 + log 2 */
  assert_close(loss, (2000.0 + 100.0 + log(2.0)) / 2.0, 1e-6, 0);
  assert_close(probs[4], 0.5, 1e-6, 0);
  /* single class: p = 1, loss 0 */
  float one[1] = {3.0f};
  int32_t y0[1] = {0};
  assert_true(fm__softmax_xent_forward(one, one, y0, 1, 1) == 0.0f);
  assert_true(one[0] == 1.0f);
}

static void test_glorot_uniform(void **state) {
  (void)state;
  const size_t fi = 30, fo = 20, n = fi * fo;
  float a[600], b[600], c[600], d[600];
  fm__glorot_uniform(a, fi, fo, 7, 0);
  fm__glorot_uniform(b, fi, fo, 7, 0);
  fm__glorot_uniform(c, fi, fo, 8, 0);
  fm__glorot_uniform(d, fi, fo, 7, 2);
  assert_memory_equal(a, b, sizeof a);
  assert_memory_not_equal(a, c, sizeof a);
  assert_memory_not_equal(a, d, sizeof a);
  double limit = sqrt(6.0 / (double)(fi + fo)), mean = 0, var = 0;
  for (size_t i = 0; i < n; i++) {
    assert_true(fabs(a[i]) <= limit);
    mean += a[i];
    var += (double)a[i] * a[i];
  }
  mean /= (double)n;
  var /= (double)n;
  assert_true(fabs(mean) < 0.1 * limit);
  assert_close(var, limit * limit / 3.0, 0.2, 0); /* U(-l, l) has variance l^2 / 3 */
  /* pinned stream: (seed, round 0, client = tensor index, FM_RNG_INIT) */
  fm_rng r;
  fm_rng_init(&r, 7, 0, 2, FM_RNG_INIT);
  for (size_t i = 0; i < 5; i++) assert_true(d[i] == (float)((2.0 * fm_rng_uniform(&r) - 1.0) * limit));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dense_forward_matches_naive),
      cmocka_unit_test(test_dense_backward_matches_naive),
      cmocka_unit_test(test_relu),
      cmocka_unit_test(test_softmax_xent_matches_naive),
      cmocka_unit_test(test_softmax_xent_extreme_logits),
      cmocka_unit_test(test_glorot_uniform),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
