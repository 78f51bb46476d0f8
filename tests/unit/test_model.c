/* tests/unit/test_model.c — the built-in models (softmax, mlp) through the
 * public API: layouts, deterministic initialisation, forward against a naive
 * double-precision reference, gradients against central finite differences
 * (in double on the reference, and in float on the model itself), backward
 * accumulation, the checked dispatch errors, fm_model_create validation,
 * metric lists and the built-in metric values.
 *
 * Robust to the BLAS kernel: every check compares with tolerances against
 * loops written here, never against hard-coded float outputs.
 *
 * Deliberately not covered here: the registry and user models (see
 * test_model_registry.c), layer kernels in isolation (test_model_layers.c). */
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
#include "fedmpi/model.h"
#include "fedmpi/rng.h"
#include "model_batch.h"

/* ---- helpers ----------------------------------------------------------------- */

static fm_input_spec make_spec(size_t D, size_t C) {
  fm_input_spec s;
  size_t shape[1] = {D};
  assert_int_equal(fm_input_spec_set(&s, 1, shape, C), FM_OK);
  return s;
}

/* A batch and weights for model m (model_batch.h): x (N, D) in [-1, 1]. */
static batch make_batch(const fm_model *m, size_t N, uint64_t seed) { return make_batch_keyed(m, N, N, -1, 99, seed); }

/* Naive double-precision forward of a dense_<i> / ReLU stack (softmax is the
 * stack with one layer), read from the model's layout. Returns the mean loss;
 * fills probs (N, C) and the ReLU on/off pattern when non-NULL. */
static double ref_forward(const fm_model *m, const double *w, const float *x, const int32_t *y, size_t N, double *probs,
                          unsigned char *pattern, size_t *pattern_len) {
  const fm_layout *l = fm_model_layout(m);
  size_t L = 0;
  char name[64];
  for (;; L++) {
    snprintf(name, sizeof name, "dense_%zu/kernel", L);
    if (fm_layout_find(l, name) < 0) break;
  }
  size_t npat = 0, width = fm_model_input_spec(m)->num_features;
  double *cur = malloc(N * width * sizeof *cur);
  for (size_t i = 0; i < N * width; i++) cur[i] = x[i];
  for (size_t k = 0; k < L; k++) {
    snprintf(name, sizeof name, "dense_%zu/kernel", k);
    const fm_tensor_info *kt = fm_layout_tensor(l, (size_t)fm_layout_find(l, name));
    snprintf(name, sizeof name, "dense_%zu/bias", k);
    const fm_tensor_info *bt = fm_layout_tensor(l, (size_t)fm_layout_find(l, name));
    size_t IC = kt->shape[0], OC = kt->shape[1];
    assert_int_equal(IC, width);
    double *next = malloc(N * OC * sizeof *next);
    for (size_t n = 0; n < N; n++)
      for (size_t o = 0; o < OC; o++) {
        double s = w[bt->offset + o];
        for (size_t i = 0; i < IC; i++) s += cur[n * IC + i] * w[kt->offset + i * OC + o];
        if (k + 1 < L) {
          if (pattern) pattern[npat] = s > 0;
          npat++;
          s = s > 0 ? s : 0;
        }
        next[n * OC + o] = s;
      }
    free(cur);
    cur = next;
    width = OC;
  }
  double total = 0;
  size_t C = width;
  for (size_t n = 0; n < N; n++) {
    double mx = -INFINITY, sum = 0;
    for (size_t c = 0; c < C; c++) mx = fmax(mx, cur[n * C + c]);
    for (size_t c = 0; c < C; c++) sum += exp(cur[n * C + c] - mx);
    if (probs)
      for (size_t c = 0; c < C; c++) probs[n * C + c] = exp(cur[n * C + c] - mx) / sum;
    total += log(sum) - (cur[n * C + y[n]] - mx);
  }
  free(cur);
  if (pattern_len) *pattern_len = npat;
  return total / (double)N;
}

static double *to_double(const float *a, size_t n) {
  double *d = malloc(n * sizeof *d);
  for (size_t i = 0; i < n; i++) d[i] = a[i];
  return d;
}

/* Forward (loss and probs) against the double reference. */
static void check_forward(const fm_model *m, size_t N, uint64_t seed) {
  batch b = make_batch(m, N, seed);
  double *wd = to_double(b.w, b.P), *pref = malloc(N * b.C * sizeof *pref);
  float *probs = malloc(N * b.C * sizeof *probs), loss = NAN, loss2 = NAN;
  double lref = ref_forward(m, wd, b.x, b.y, N, pref, NULL, NULL);
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, N, 0, &loss, probs), FM_OK);
  assert_true(fabs(loss - lref) <= 1e-5 * fmax(1.0, fabs(lref)));
  for (size_t i = 0; i < N * b.C; i++) assert_true(fabs(probs[i] - pref[i]) <= 1e-5);
  /* probs is optional and training does not change the result */
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, N, 1, &loss2, NULL), FM_OK);
  assert_true(loss2 == loss);
  free(wd), free(pref), free(probs);
  free_batch(&b);
}

/* Analytic gradient vs central differences:
 *  (1) in double on the reference forward (h = 1e-6): tight tolerance;
 *  (2) in float on the model's own forward (h = 1e-2): loose tolerance.
 * Parameters whose float-step perturbation flips a ReLU are skipped in (2)
 * (at most 10% of them), since the loss is not differentiable across a kink. */
static void check_gradient(const fm_model *m, size_t N, uint64_t seed) {
  batch b = make_batch(m, N, seed);
  float loss;
  float *g = model_grad(m, &b, &loss);
  double *wd = to_double(b.w, b.P);
  size_t plen = 0;
  ref_forward(m, wd, b.x, b.y, N, NULL, NULL, &plen);
  unsigned char *pat0 = malloc(plen + 1), *pat = malloc(plen + 1);
  ref_forward(m, wd, b.x, b.y, N, NULL, pat0, NULL);

  double gnorm = 0;
  for (size_t j = 0; j < b.T; j++) gnorm = fmax(gnorm, fabs(g[j]));
  assert_true(gnorm > 1e-3); /* a non-trivial gradient */

  /* (1) double reference */
  const double h = 1e-6;
  for (size_t j = 0; j < b.T; j++) {
    double w0 = wd[j];
    wd[j] = w0 + h;
    double lp = ref_forward(m, wd, b.x, b.y, N, NULL, NULL, NULL);
    wd[j] = w0 - h;
    double lm = ref_forward(m, wd, b.x, b.y, N, NULL, NULL, NULL);
    wd[j] = w0;
    double fd = (lp - lm) / (2 * h);
    if (!(fabs(g[j] - fd) <= 1e-3 * fabs(fd) + 2e-5))
      fail_msg("%s: param %zu: analytic %.8g vs double FD %.8g", fm_model_type(m), j, g[j], fd);
  }

  /* (2) float finite differences through fm_model_forward */
  const float eps = 1e-2f;
  float *wf = malloc(b.P * sizeof *wf);
  memcpy(wf, b.w, b.P * sizeof *wf);
  size_t skipped = 0;
  for (size_t j = 0; j < b.T; j++) {
    int kink = 0;
    for (int sgn = -1; sgn <= 1; sgn += 2) {
      wd[j] = (double)(b.w[j] + (float)sgn * eps);
      ref_forward(m, wd, b.x, b.y, N, NULL, pat, NULL);
      if (memcmp(pat, pat0, plen) != 0) kink = 1;
    }
    wd[j] = b.w[j];
    if (kink) {
      skipped++;
      continue;
    }
    wf[j] = b.w[j] + eps;
    float lp = model_loss(m, &b, wf);
    wf[j] = b.w[j] - eps;
    float lm = model_loss(m, &b, wf);
    wf[j] = b.w[j];
    double step = ((double)(b.w[j] + eps) - (double)(b.w[j] - eps));
    double fd = ((double)lp - (double)lm) / step;
    if (!(fabs(g[j] - fd) <= 1e-2 * fmax(fabs(fd), fabs(g[j])) + 5e-4))
      fail_msg("%s: param %zu: analytic %.8g vs float FD %.8g", fm_model_type(m), j, g[j], fd);
  }
  assert_true(skipped * 10 <= b.T);
  free(wf), free(wd), free(g), free(pat0), free(pat);
  free_batch(&b);
}

static fm_model *new_softmax(size_t D, size_t C) {
  fm_input_spec s = make_spec(D, C);
  fm_model *m = NULL;
  assert_int_equal(fm_model_create_softmax(&s, &m), FM_OK);
  assert_non_null(m);
  return m;
}

static fm_model *new_mlp(size_t D, size_t C, const size_t *hidden, size_t nh) {
  fm_input_spec s = make_spec(D, C);
  fm_model *m = NULL;
  assert_int_equal(fm_model_create_mlp(&s, hidden, nh, &m), FM_OK);
  assert_non_null(m);
  return m;
}

/* ---- input spec ----------------------------------------------------------------- */

static void test_input_spec(void **state) {
  (void)state;
  fm_input_spec s;
  size_t img[3] = {28, 28, 1};
  assert_int_equal(fm_input_spec_set(&s, 3, img, 62), FM_OK);
  assert_int_equal(s.ndim, 3);
  assert_int_equal(s.num_features, 784);
  assert_int_equal(s.num_classes, 62);
  assert_int_equal(s.shape[2], 1);
  size_t zero[2] = {3, 0};
  assert_int_equal(fm_input_spec_set(&s, 2, zero, 10), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_input_spec_set(&s, 0, img, 10), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_input_spec_set(&s, FM_MAX_DIMS + 1, img, 10), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_input_spec_set(&s, 3, img, 0), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_input_spec_set(&s, 3, NULL, 10), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_input_spec_set(NULL, 3, img, 10), FM_ERR_INVALID_ARG);
  /* a failed set leaves the spec untouched */
  assert_int_equal(s.num_features, 784);

  /* models reject specs whose num_features is not the product of the shape */
  fm_input_spec bad = make_spec(6, 3);
  bad.num_features = 7;
  fm_model *m = NULL;
  assert_int_equal(fm_model_create_softmax(&bad, &m), FM_ERR_INVALID_ARG);
  assert_null(m);
  assert_int_equal(fm_model_create_softmax(NULL, &m), FM_ERR_INVALID_ARG);
}

/* ---- layouts and types ------------------------------------------------------------- */

static void test_softmax_layout(void **state) {
  (void)state;
  fm_model *m = new_softmax(6, 4);
  assert_string_equal(fm_model_type(m), "softmax");
  assert_non_null(fm_model_data(m)); /* the stack "flatten,dense" that softmax is (src/model/named.c) */
  const fm_layout *l = fm_model_layout(m);
  assert_int_equal(fm_layout_num_tensors(l), 2);
  const fm_tensor_info *k = fm_layout_tensor(l, 0), *b = fm_layout_tensor(l, 1);
  assert_string_equal(k->name, "dense_0/kernel");
  assert_int_equal(k->ndim, 2);
  assert_int_equal(k->shape[0], 6);
  assert_int_equal(k->shape[1], 4);
  assert_true(k->trainable);
  assert_string_equal(b->name, "dense_0/bias");
  assert_int_equal(b->ndim, 1);
  assert_int_equal(b->shape[0], 4);
  assert_true(b->trainable);
  assert_int_equal(fm_layout_numel(l), 28);
  assert_int_equal(fm_layout_trainable_numel(l), 28);
  assert_int_equal(fm_model_input_spec(m)->num_features, 6);
  assert_true(fm_model_workspace_size(m, 10) >= 10 * 4 * sizeof(float));
  fm_model_destroy(&m);
  assert_null(m);
  fm_model_destroy(&m);
  fm_model_destroy(NULL);
}

static void test_mlp_layout(void **state) {
  (void)state;
  const size_t hidden[2] = {5, 4};
  fm_model *m = new_mlp(6, 3, hidden, 2);
  assert_string_equal(fm_model_type(m), "mlp:5,4");
  const fm_layout *l = fm_model_layout(m);
  assert_int_equal(fm_layout_num_tensors(l), 6);
  const char *names[6] = {"dense_0/kernel", "dense_0/bias",   "dense_1/kernel",
                          "dense_1/bias",   "dense_2/kernel", "dense_2/bias"};
  const size_t s0[6] = {6, 5, 5, 4, 4, 3}, s1[6] = {5, 0, 4, 0, 3, 0};
  size_t off = 0;
  for (size_t i = 0; i < 6; i++) {
    const fm_tensor_info *t = fm_layout_tensor(l, i);
    assert_string_equal(t->name, names[i]);
    assert_int_equal(t->ndim, i % 2 ? 1 : 2);
    assert_int_equal(t->shape[0], s0[i]);
    if (t->ndim == 2) assert_int_equal(t->shape[1], s1[i]);
    assert_int_equal(t->offset, off);
    assert_true(t->trainable);
    off += t->numel;
  }
  assert_int_equal(fm_layout_numel(l), 30 + 5 + 20 + 4 + 12 + 3);
  assert_int_equal(fm_layout_trainable_numel(l), fm_layout_numel(l));
  fm_model_destroy(&m);

  /* McMahan's 2NN on MNIST: 199,210 parameters */
  const size_t h2[2] = {200, 200};
  size_t img[3] = {28, 28, 1};
  fm_input_spec s;
  assert_int_equal(fm_input_spec_set(&s, 3, img, 10), FM_OK);
  assert_int_equal(fm_model_create_mlp(&s, h2, 2, &m), FM_OK);
  assert_int_equal(fm_layout_numel(fm_model_layout(m)), 199210);
  fm_model_destroy(&m);

  /* bad hidden sizes */
  fm_input_spec s6 = make_spec(6, 3);
  const size_t bad[2] = {5, 0};
  assert_int_equal(fm_model_create_mlp(&s6, bad, 2, &m), FM_ERR_INVALID_ARG);
  assert_null(m);
  assert_int_equal(fm_model_create_mlp(&s6, NULL, 2, &m), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_create_mlp(&s6, hidden, 2, NULL), FM_ERR_INVALID_ARG);
}

/* ---- initialisation ------------------------------------------------------------------- */

static void check_init(const fm_model *m) {
  const fm_layout *l = fm_model_layout(m);
  size_t P = fm_layout_numel(l);
  float *a = malloc(P * sizeof *a), *b = malloc(P * sizeof *b), *c = malloc(P * sizeof *c);
  for (size_t i = 0; i < P; i++) a[i] = b[i] = c[i] = NAN; /* every float must be written */
  assert_int_equal(fm_model_init_weights(m, a, 2024), FM_OK);
  assert_int_equal(fm_model_init_weights(m, b, 2024), FM_OK);
  assert_int_equal(fm_model_init_weights(m, c, 2025), FM_OK);
  assert_memory_equal(a, b, P * sizeof *a);
  assert_memory_not_equal(a, c, P * sizeof *a);
  for (size_t t = 0; t < fm_layout_num_tensors(l); t++) {
    const fm_tensor_info *ti = fm_layout_tensor(l, t);
    if (ti->ndim == 1) { /* bias: zeros */
      for (size_t i = 0; i < ti->numel; i++) assert_true(a[ti->offset + i] == 0.0f);
      continue;
    }
    /* kernel: Glorot-uniform from the stream (seed, 0, tensor index, FM_RNG_INIT) */
    double limit = sqrt(6.0 / (double)(ti->shape[0] + ti->shape[1]));
    fm_rng r;
    fm_rng_init(&r, 2024, 0, t, FM_RNG_INIT);
    for (size_t i = 0; i < ti->numel; i++) {
      float want = (float)((2.0 * fm_rng_uniform(&r) - 1.0) * limit);
      assert_true(a[ti->offset + i] == want);
      assert_true(fabs(a[ti->offset + i]) <= limit);
    }
  }
  free(a), free(b), free(c);
}

static void test_init_deterministic(void **state) {
  (void)state;
  fm_model *m = new_softmax(6, 4);
  check_init(m);
  fm_model_destroy(&m);
  const size_t hidden[2] = {5, 4};
  m = new_mlp(6, 3, hidden, 2);
  check_init(m);
  /* different layers draw from different streams */
  size_t P = fm_layout_numel(fm_model_layout(m));
  float *w = malloc(P * sizeof *w);
  assert_int_equal(fm_model_init_weights(m, w, 1), FM_OK);
  double l0 = sqrt(6.0 / 11.0), l1 = sqrt(6.0 / 9.0);
  assert_true(fabs(w[0] / l0 - w[fm_layout_tensor(fm_model_layout(m), 2)->offset] / l1) > 1e-6);
  free(w);
  fm_model_destroy(&m);
}

/* ---- forward and gradients ------------------------------------------------------------- */

static void test_softmax_forward(void **state) {
  (void)state;
  fm_model *m = new_softmax(6, 4);
  check_forward(m, 7, 1);
  check_forward(m, 1, 2);
  fm_model_destroy(&m);
  m = new_softmax(40, 10); /* wider: another BLAS path */
  check_forward(m, 33, 3);
  fm_model_destroy(&m);
}

static void test_mlp_forward(void **state) {
  (void)state;
  const size_t hidden[2] = {5, 4};
  fm_model *m = new_mlp(6, 3, hidden, 2);
  check_forward(m, 7, 4);
  check_forward(m, 1, 5);
  fm_model_destroy(&m);
  const size_t wide[3] = {37, 64, 9};
  m = new_mlp(50, 10, wide, 3);
  check_forward(m, 20, 6);
  fm_model_destroy(&m);
}

static void test_softmax_gradient(void **state) {
  (void)state;
  fm_model *m = new_softmax(6, 4);
  check_gradient(m, 7, 11);
  check_gradient(m, 1, 12);
  fm_model_destroy(&m);
}

static void test_mlp_gradient(void **state) {
  (void)state;
  const size_t hidden[2] = {5, 4};
  fm_model *m = new_mlp(6, 3, hidden, 2);
  check_gradient(m, 7, 13);
  check_gradient(m, 2, 14);
  fm_model_destroy(&m);
  const size_t one[1] = {8};
  m = new_mlp(5, 4, one, 1);
  check_gradient(m, 6, 15);
  fm_model_destroy(&m);
}

static void test_backward_accumulates(void **state) {
  (void)state;
  const size_t hidden[2] = {5, 4};
  fm_model *models[2] = {new_softmax(6, 4), new_mlp(6, 3, hidden, 2)};
  for (int i = 0; i < 2; i++) {
    batch b = make_batch(models[i], 5, 21);
    check_accumulates(models[i], &b); /* backward adds into dw; the workspace cache survives it */
    free_batch(&b);
    fm_model_destroy(&models[i]);
  }
}

/* a smaller batch in a workspace sized for a larger one, and back */
static void test_workspace_reuse(void **state) {
  (void)state;
  const size_t hidden[2] = {5, 4};
  fm_model *m = new_mlp(6, 3, hidden, 2);
  batch big = make_batch(m, 9, 31);
  float lbig, lsmall, ref;
  float *gbig = model_grad(m, &big, &lbig);
  /* first 3 examples through the same (big) workspace */
  size_t N0 = big.N;
  big.N = 3;
  float *gsmall = model_grad(m, &big, &lsmall);
  double *wd = to_double(big.w, big.P);
  ref = (float)ref_forward(m, wd, big.x, big.y, 3, NULL, NULL, NULL);
  assert_true(fabsf(lsmall - ref) <= 1e-5f);
  big.N = N0;
  float *gbig2 = model_grad(m, &big, &lbig);
  assert_memory_equal(gbig, gbig2, big.T * sizeof *gbig);
  free(gbig), free(gsmall), free(gbig2), free(wd);
  free_batch(&big);
  fm_model_destroy(&m);
}

static void test_mlp_without_hidden_is_softmax(void **state) {
  (void)state;
  fm_model *s = new_softmax(6, 4), *m = new_mlp(6, 4, NULL, 0);
  assert_string_equal(fm_model_type(m), "softmax");
  assert_true(fm_layout_equal(fm_model_layout(s), fm_model_layout(m)));
  batch bs = make_batch(s, 7, 41), bm = make_batch(m, 7, 41);
  assert_memory_equal(bs.w, bm.w, bs.P * sizeof *bs.w);
  float ls, lm;
  float *gs = model_grad(s, &bs, &ls), *gm = model_grad(m, &bm, &lm);
  assert_true(ls == lm);
  assert_memory_equal(gs, gm, bs.T * sizeof *gs);
  free(gs), free(gm);
  free_batch(&bs);
  free_batch(&bm);
  fm_model_destroy(&s);
  fm_model_destroy(&m);
}

/* ---- checked dispatch -------------------------------------------------------------------- */

static void test_dispatch_errors(void **state) {
  (void)state;
  fm_model *m = new_softmax(6, 4);
  batch b = make_batch(m, 4, 51);
  float loss, g[28] = {0};
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, 0, 1, &loss, NULL), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "empty batch"));
  assert_int_equal(fm_model_forward(NULL, b.ws, b.w, b.x, b.y, 4, 1, &loss, NULL), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_forward(m, NULL, b.w, b.x, b.y, 4, 1, &loss, NULL), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "workspace"));
  assert_int_equal(fm_model_forward(m, b.ws, NULL, b.x, b.y, 4, 1, &loss, NULL), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "weights"));
  assert_int_equal(fm_model_forward(m, b.ws, b.w, NULL, b.y, 4, 1, &loss, NULL), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, NULL, 4, 1, &loss, NULL), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, 4, 1, NULL, NULL), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "loss"));

  /* labels outside [0, C) */
  b.y[2] = 4;
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, 4, 1, &loss, NULL), FM_ERR_SPEC_MISMATCH);
  assert_non_null(strstr(fm_last_error(), "label 4"));
  assert_non_null(strstr(fm_last_error(), "example 2"));
  b.y[2] = -1;
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, 4, 1, &loss, NULL), FM_ERR_SPEC_MISMATCH);
  assert_int_equal(fm_model_backward(m, b.ws, b.w, b.x, b.y, 4, g), FM_ERR_SPEC_MISMATCH);
  b.y[2] = 3;

  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, 4, 1, &loss, NULL), FM_OK);
  assert_int_equal(fm_model_backward(m, b.ws, b.w, b.x, b.y, 4, NULL), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "dw"));
  assert_int_equal(fm_model_backward(m, b.ws, b.w, b.x, b.y, 0, g), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_backward(NULL, b.ws, b.w, b.x, b.y, 4, g), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_backward(m, NULL, b.w, b.x, b.y, 4, g), FM_ERR_INVALID_ARG);
  for (size_t j = 0; j < 28; j++) assert_true(g[j] == 0.0f); /* nothing ran */
  assert_int_equal(fm_model_backward(m, b.ws, b.w, b.x, b.y, 4, g), FM_OK);

  assert_int_equal(fm_model_init_weights(m, NULL, 1), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_init_weights(NULL, b.w, 1), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_workspace_size(NULL, 4), 0);
  assert_null(fm_model_type(NULL));
  assert_null(fm_model_layout(NULL));
  assert_null(fm_model_input_spec(NULL));
  assert_int_equal(fm_model_num_metrics(NULL), 0);
  assert_null(fm_model_metric(NULL, 0));
  free_batch(&b);
  fm_model_destroy(&m);
}

/* ---- fm_model_create validation -------------------------------------------------------------- */

static size_t dummy_ws(const fm_model *m, size_t n) {
  (void)m;
  return n;
}
static int dummy_init(const fm_model *m, float *w, uint64_t seed) {
  (void)m, (void)w, (void)seed;
  return FM_OK;
}
static int dummy_forward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                         int training, float *loss, float *probs) {
  (void)m, (void)ws, (void)w, (void)x, (void)y, (void)n, (void)training, (void)probs;
  *loss = 0;
  return FM_OK;
}
static int dummy_backward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                          float *dw) {
  (void)m, (void)ws, (void)w, (void)x, (void)y, (void)n, (void)dw;
  return FM_OK;
}
static int destroyed;
static void dummy_destroy(fm_model *m) {
  destroyed++;
  free(fm_model_data(m));
}

static fm_layout *small_layout(void) {
  fm_layout *l = NULL;
  size_t s[1] = {3};
  assert_int_equal(fm_layout_create(&l), FM_OK);
  assert_int_equal(fm_layout_add(l, "w", 1, s, 1), FM_OK);
  return l;
}

static void test_model_create_validation(void **state) {
  (void)state;
  const fm_model_ops good = {dummy_ws, dummy_init, dummy_forward, dummy_backward, dummy_destroy, NULL};
  fm_input_spec spec = make_spec(3, 2);
  fm_model *m = NULL;

  /* each required slot; the layout is taken over even on failure (ASan/LSan checks the leak) */
  const char *slots[4] = {"workspace_size", "init_weights", "forward", "backward"};
  for (int k = 0; k < 4; k++) {
    fm_model_ops ops = good;
    if (k == 0) ops.workspace_size = NULL;
    if (k == 1) ops.init_weights = NULL;
    if (k == 2) ops.forward = NULL;
    if (k == 3) ops.backward = NULL;
    assert_int_equal(fm_model_create("dummy", &ops, &spec, small_layout(), NULL, &m), FM_ERR_INVALID_ARG);
    assert_null(m);
    assert_non_null(strstr(fm_last_error(), slots[k]));
  }
  assert_int_equal(fm_model_create("dummy", NULL, &spec, small_layout(), NULL, &m), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_create("", &good, &spec, small_layout(), NULL, &m), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_create(NULL, &good, &spec, small_layout(), NULL, &m), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_create("dummy", &good, NULL, small_layout(), NULL, &m), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_create("dummy", &good, &spec, NULL, NULL, &m), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_create("dummy", &good, &spec, small_layout(), NULL, NULL), FM_ERR_INVALID_ARG);
  fm_input_spec bad = spec;
  bad.num_classes = 0;
  assert_int_equal(fm_model_create("dummy", &good, &bad, small_layout(), NULL, &m), FM_ERR_INVALID_ARG);
  bad = spec;
  bad.ndim = 0;
  assert_int_equal(fm_model_create("dummy", &good, &bad, small_layout(), NULL, &m), FM_ERR_INVALID_ARG);
  assert_int_equal(destroyed, 0);

  /* success: accessors, the vtable is copied, destroy runs once */
  fm_model_ops ops = good;
  int *data = malloc(sizeof *data);
  *data = 7;
  char type[16] = "dummy";
  assert_int_equal(fm_model_create(type, &ops, &spec, small_layout(), data, &m), FM_OK);
  memset(&ops, 0, sizeof ops);
  type[0] = 'X';
  assert_string_equal(fm_model_type(m), "dummy");
  assert_ptr_equal(fm_model_data(m), data);
  assert_int_equal(fm_layout_numel(fm_model_layout(m)), 3);
  assert_int_equal(fm_model_input_spec(m)->num_classes, 2);
  assert_int_equal(fm_model_workspace_size(m, 5), 5);
  float w[3], x[3] = {0}, loss = 1;
  int32_t y[1] = {1};
  assert_int_equal(fm_model_init_weights(m, w, 1), FM_OK);
  assert_int_equal(fm_model_forward(m, w, w, x, y, 1, 0, &loss, NULL), FM_OK);
  assert_true(loss == 0.0f);
  fm_model_destroy(&m);
  assert_int_equal(destroyed, 1);
}

/* ---- metrics ------------------------------------------------------------------------------------ */

static void top2_update(const fm_metric *mt, const float *probs, const int32_t *y, size_t n, size_t C, double loss,
                        double *out) {
  (void)mt, (void)probs, (void)y, (void)C, (void)loss;
  out[0] = 0;
  out[1] = (double)n;
}
static double top2_finalize(const fm_metric *mt, const double *sums) {
  (void)mt;
  return sums[1] ? sums[0] / sums[1] : 0;
}

static void test_model_metrics_list(void **state) {
  (void)state;
  fm_model *m = new_softmax(6, 4);
  const char *names[4] = {"accuracy", "loss", "num_examples", "num_batches"};
  assert_int_equal(fm_model_num_metrics(m), 4);
  for (size_t i = 0; i < 4; i++) assert_string_equal(fm_model_metric(m, i)->name, names[i]);
  assert_null(fm_model_metric(m, 4));
  assert_ptr_equal(fm_model_metric(m, 0), fm_metric_accuracy());
  assert_ptr_equal(fm_model_metric(m, 1), fm_metric_loss());
  assert_int_equal(fm_model_num_metric_values(m), 2 + 2 + 1 + 1);

  /* duplicates of user or built-in metrics are rejected */
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(fm_model_add_metric(m, fm_model_metric(m, i)), FM_ERR_INVALID_ARG);
    assert_non_null(strstr(fm_last_error(), names[i]));
  }
  fm_metric bad = {"", 1, 0, top2_update, top2_finalize, NULL, 0};
  assert_int_equal(fm_model_add_metric(m, &bad), FM_ERR_INVALID_ARG);
  bad.name = "nofinal";
  bad.finalize = NULL;
  assert_int_equal(fm_model_add_metric(m, &bad), FM_ERR_INVALID_ARG);
  bad.finalize = top2_finalize;
  bad.num_values = FM_METRIC_MAX_VALUES + 1;
  assert_int_equal(fm_model_add_metric(m, &bad), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_add_metric(m, NULL), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_add_metric(NULL, fm_metric_loss()), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_num_metrics(m), 4);

  /* user metrics go after accuracy, before the built-ins; the list grows */
  static fm_metric extra[6];
  char *extra_names[6] = {"top2", "m1", "m2", "m3", "m4", "m5"};
  for (size_t i = 0; i < 6; i++) {
    extra[i] = (fm_metric){extra_names[i], 2, 0, top2_update, top2_finalize, NULL, 0};
    assert_int_equal(fm_model_add_metric(m, &extra[i]), FM_OK);
  }
  assert_int_equal(fm_model_num_metrics(m), 10);
  assert_string_equal(fm_model_metric(m, 0)->name, "accuracy");
  for (size_t i = 0; i < 6; i++) assert_ptr_equal(fm_model_metric(m, 1 + i), &extra[i]);
  assert_string_equal(fm_model_metric(m, 7)->name, "loss");
  assert_string_equal(fm_model_metric(m, 8)->name, "num_examples");
  assert_string_equal(fm_model_metric(m, 9)->name, "num_batches");
  assert_int_equal(fm_model_num_metric_values(m), 6 + 12);
  assert_int_equal(fm_model_add_metric(m, &extra[3]), FM_ERR_INVALID_ARG);
  fm_model_destroy(&m);
}

static void test_builtin_metric_values(void **state) {
  (void)state;
  /* 4 examples, 3 classes; example 2 is a tie between classes 0 and 2 -> 0 */
  const float probs[4 * 3] = {0.1f, 0.7f, 0.2f, 0.5f, 0.3f, 0.2f, 0.4f, 0.2f, 0.4f, 0.2f, 0.2f, 0.6f};
  const int32_t y[4] = {1, 2, 0, 2};
  double out[2] = {-1, -1};
  const fm_metric *acc = fm_metric_accuracy(), *loss = fm_metric_loss();
  const fm_metric *ne = fm_metric_num_examples(), *nb = fm_metric_num_batches();
  assert_string_equal(acc->name, "accuracy");
  assert_int_equal(acc->num_values, 2);
  assert_false(acc->is_integer);
  acc->update(acc, probs, y, 4, 3, 0.25, out);
  assert_true(out[0] == 3.0 && out[1] == 4.0);
  assert_true(acc->finalize(acc, out) == 0.75);
  const int32_t y2[4] = {1, 2, 2, 2}; /* tie resolved to class 0, so example 2 is now wrong */
  acc->update(acc, probs, y2, 4, 3, 0.25, out);
  assert_true(out[0] == 2.0);
  double zero[2] = {0, 0};
  assert_true(acc->finalize(acc, zero) == 0.0);
  /* sums over batches: [3 + 2, 4 + 4] */
  double sums[2] = {5, 8};
  assert_true(acc->finalize(acc, sums) == 0.625);

  assert_string_equal(loss->name, "loss");
  assert_int_equal(loss->num_values, 2);
  assert_false(loss->is_integer);
  loss->update(loss, probs, y, 4, 3, 0.25, out);
  assert_true(out[0] == 1.0 && out[1] == 4.0);
  double ls[2] = {1.0 + 0.5 * 2, 4 + 2}; /* plus a batch of 2 with loss 0.5 */
  assert_true(fabs(loss->finalize(loss, ls) - 2.0 / 6.0) < 1e-15);
  assert_true(loss->finalize(loss, zero) == 0.0);

  assert_string_equal(ne->name, "num_examples");
  assert_int_equal(ne->num_values, 1);
  assert_true(ne->is_integer);
  ne->update(ne, probs, y, 4, 3, 0.25, out);
  assert_true(out[0] == 4.0);
  assert_true(ne->finalize(ne, out) == 4.0);

  assert_string_equal(nb->name, "num_batches");
  assert_int_equal(nb->num_values, 1);
  assert_true(nb->is_integer);
  nb->update(nb, probs, y, 4, 3, 0.25, out);
  assert_true(out[0] == 1.0);
  double nbs[1] = {17};
  assert_true(nb->finalize(nb, nbs) == 17.0);
}

/* The metrics see the model's probs: accuracy from a real forward pass. */
static void test_metrics_on_model_output(void **state) {
  (void)state;
  fm_model *m = new_softmax(6, 4);
  batch b = make_batch(m, 10, 61);
  float loss, *probs = malloc(10 * 4 * sizeof *probs);
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, 10, 0, &loss, probs), FM_OK);
  double *wd = to_double(b.w, b.P), pref[40];
  ref_forward(m, wd, b.x, b.y, 10, pref, NULL, NULL);
  size_t correct = 0;
  for (size_t n = 0; n < 10; n++) {
    size_t best = 0;
    for (size_t c = 1; c < 4; c++)
      if (pref[n * 4 + c] > pref[n * 4 + best]) best = c;
    correct += best == (size_t)b.y[n];
  }
  double out[2];
  fm_metric_accuracy()->update(fm_metric_accuracy(), probs, b.y, 10, 4, loss, out);
  assert_true(out[0] == (double)correct);
  fm_metric_loss()->update(fm_metric_loss(), probs, b.y, 10, 4, loss, out);
  assert_true(out[0] == 10.0 * (double)loss); /* exact in double */
  free(probs), free(wd);
  free_batch(&b);
  fm_model_destroy(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_input_spec),
      cmocka_unit_test(test_softmax_layout),
      cmocka_unit_test(test_mlp_layout),
      cmocka_unit_test(test_init_deterministic),
      cmocka_unit_test(test_softmax_forward),
      cmocka_unit_test(test_mlp_forward),
      cmocka_unit_test(test_softmax_gradient),
      cmocka_unit_test(test_mlp_gradient),
      cmocka_unit_test(test_backward_accumulates),
      cmocka_unit_test(test_workspace_reuse),
      cmocka_unit_test(test_mlp_without_hidden_is_softmax),
      cmocka_unit_test(test_dispatch_errors),
      cmocka_unit_test(test_model_create_validation),
      cmocka_unit_test(test_model_metrics_list),
      cmocka_unit_test(test_builtin_metric_values),
      cmocka_unit_test(test_metrics_on_model_output),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
