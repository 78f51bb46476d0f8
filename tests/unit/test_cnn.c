/* tests/unit/test_cnn.c — the "cnn" model (McMahan et al. 2017 / TFF's
 * create_original_fedavg_cnn_model) through the public API: the layout of
 * the default model (tensor names, shapes, trainability, Keras's parameter
 * counts), odd image sizes, deterministic Glorot initialisation with Keras's
 * conv fans, forward against a naive double-precision CNN written here,
 * gradients of every parameter against central finite differences (in double
 * on the reference, and in float on the model itself), backward accumulation,
 * workspace reuse with a smaller batch, creation errors, and the registry
 * names "cnn" / "cnn:F1,F2,U[,K]" with their argument errors.
 *
 * Robust to the BLAS kernel (OPENBLAS_CORETYPE): every check compares with
 * tolerances against loops written here, never against hard-coded floats.
 *
 * Deliberately not covered here: the conv/pool kernels in isolation and
 * chunked im2col (see test_conv_layers.c). */
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

/* ---- helpers ------------------------------------------------------------------------- */

static fm_input_spec image_spec(size_t H, size_t W, size_t C, size_t classes) {
  fm_input_spec s;
  size_t shape[3] = {H, W, C};
  assert_int_equal(fm_input_spec_set(&s, C ? 3 : 2, shape, classes), FM_OK);
  return s;
}

static fm_model *new_cnn(size_t H, size_t W, size_t C, size_t classes, size_t f1, size_t f2, size_t u, size_t k) {
  fm_input_spec s = image_spec(H, W, C, classes);
  fm_cnn_config cfg = {{f1, f2}, u, k};
  fm_model *m = NULL;
  if (fm_model_create_cnn(&s, &cfg, &m) != FM_OK) fail_msg("create_cnn: %s", fm_last_error());
  assert_non_null(m);
  return m;
}

/* A batch of m (model_batch.h): x in [0, 1] like pixels; the workspace is
 * sized for ws_batch >= N examples. */
static batch make_batch_ws(const fm_model *m, size_t N, size_t ws_batch, uint64_t seed) {
  return make_batch_keyed(m, N, ws_batch, 0, 77, seed);
}

static batch make_batch(const fm_model *m, size_t N, uint64_t seed) { return make_batch_ws(m, N, N, seed); }

static double *to_double(const float *a, size_t n) {
  double *d = malloc(n * sizeof *d);
  for (size_t i = 0; i < n; i++) d[i] = a[i];
  return d;
}

/* ---- naive double-precision CNN -------------------------------------------------------- */

static const fm_tensor_info *tensor(const fm_model *m, const char *name) {
  long i = fm_layout_find(fm_model_layout(m), name);
  if (i < 0) fail_msg("no tensor %s", name);
  return fm_layout_tensor(fm_model_layout(m), (size_t)i);
}

/* The non-differentiable decisions of a forward pass: the sign of every ReLU
 * input and the winner of every pooling window. */
typedef struct pattern {
  unsigned char *bits;
  size_t n, cap;
} pattern;

static void pat_push(pattern *p, unsigned v) {
  if (!p) return;
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 1024;
    p->bits = realloc(p->bits, p->cap);
  }
  p->bits[p->n++] = (unsigned char)v;
}

/* out (H, W, OC) = relu(conv_same(in (H, W, IC), K (k, k, IC, OC)) + b) */
static void ref_conv_relu(double *out, const double *in, const double *K, const double *b, size_t H, size_t W,
                          size_t IC, size_t k, size_t OC, pattern *pat) {
  long pad = (long)(k - 1) / 2;
  for (size_t h = 0; h < H; h++)
    for (size_t w = 0; w < W; w++)
      for (size_t o = 0; o < OC; o++) {
        double s = b[o];
        for (size_t kh = 0; kh < k; kh++)
          for (size_t kw = 0; kw < k; kw++) {
            long y = (long)h + (long)kh - pad, x = (long)w + (long)kw - pad;
            if (y < 0 || x < 0 || y >= (long)H || x >= (long)W) continue;
            for (size_t i = 0; i < IC; i++)
              s += in[((size_t)y * W + (size_t)x) * IC + i] * K[((kh * k + kw) * IC + i) * OC + o];
          }
        pat_push(pat, s > 0);
        out[(h * W + w) * OC + o] = s > 0 ? s : 0;
      }
}

/* out (ceil(H/2), ceil(W/2), C) = 2x2 max, padding after the image */
static void ref_pool(double *out, const double *in, size_t H, size_t W, size_t C, pattern *pat) {
  size_t HO = (H + 1) / 2, WO = (W + 1) / 2;
  for (size_t ho = 0; ho < HO; ho++)
    for (size_t wo = 0; wo < WO; wo++)
      for (size_t c = 0; c < C; c++) {
        double best = -INFINITY;
        unsigned arg = 0, k = 0;
        for (size_t h = 2 * ho; h < 2 * ho + 2; h++)
          for (size_t w = 2 * wo; w < 2 * wo + 2; w++, k++)
            if (h < H && w < W && in[(h * W + w) * C + c] > best) best = in[(h * W + w) * C + c], arg = k;
        pat_push(pat, arg);
        out[(ho * WO + wo) * C + c] = best;
      }
}

/* Mean loss over N examples; probs (N, C) if non-NULL; the pattern if non-NULL. */
static double ref_forward(const fm_model *m, const double *w, const float *x, const int32_t *y, size_t N, double *probs,
                          pattern *pat) {
  const fm_input_spec *s = fm_model_input_spec(m);
  const fm_tensor_info *k0 = tensor(m, "conv2d_0/kernel"), *b0 = tensor(m, "conv2d_0/bias");
  const fm_tensor_info *k1 = tensor(m, "conv2d_1/kernel"), *b1 = tensor(m, "conv2d_1/bias");
  const fm_tensor_info *d0 = tensor(m, "dense_0/kernel"), *c0 = tensor(m, "dense_0/bias");
  const fm_tensor_info *d1 = tensor(m, "dense_1/kernel"), *c1 = tensor(m, "dense_1/bias");
  size_t H = s->shape[0], W = s->shape[1], C0 = s->ndim == 3 ? s->shape[2] : 1, k = k0->shape[0];
  size_t F1 = k0->shape[3], F2 = k1->shape[3], U = d0->shape[1], C = s->num_classes;
  size_t H1 = (H + 1) / 2, W1 = (W + 1) / 2, H2 = (H1 + 1) / 2, W2 = (W1 + 1) / 2, D2 = H2 * W2 * F2;
  assert_int_equal(d0->shape[0], D2);
  double *in = malloc(H * W * C0 * sizeof *in), *a1 = malloc(H * W * F1 * sizeof *a1);
  double *p1 = malloc(H1 * W1 * F1 * sizeof *p1), *a2 = malloc(H1 * W1 * F2 * sizeof *a2);
  double *p2 = malloc(D2 * sizeof *p2), *a3 = malloc(U * sizeof *a3), *z = malloc(C * sizeof *z);
  double total = 0;
  for (size_t n = 0; n < N; n++) {
    for (size_t i = 0; i < H * W * C0; i++) in[i] = x[n * H * W * C0 + i];
    ref_conv_relu(a1, in, w + k0->offset, w + b0->offset, H, W, C0, k, F1, pat);
    ref_pool(p1, a1, H, W, F1, pat);
    ref_conv_relu(a2, p1, w + k1->offset, w + b1->offset, H1, W1, F1, k, F2, pat);
    ref_pool(p2, a2, H1, W1, F2, pat);
    for (size_t u = 0; u < U; u++) {
      double v = w[c0->offset + u];
      for (size_t i = 0; i < D2; i++) v += p2[i] * w[d0->offset + i * U + u];
      pat_push(pat, v > 0);
      a3[u] = v > 0 ? v : 0;
    }
    double mx = -INFINITY, sum = 0;
    for (size_t c = 0; c < C; c++) {
      double v = w[c1->offset + c];
      for (size_t u = 0; u < U; u++) v += a3[u] * w[d1->offset + u * C + c];
      z[c] = v;
      mx = fmax(mx, v);
    }
    for (size_t c = 0; c < C; c++) sum += exp(z[c] - mx);
    if (probs)
      for (size_t c = 0; c < C; c++) probs[n * C + c] = exp(z[c] - mx) / sum;
    total += log(sum) - (z[y[n]] - mx);
  }
  free(in), free(a1), free(p1), free(a2), free(p2), free(a3), free(z);
  return total / (double)N;
}

/* ---- layouts ------------------------------------------------------------------------------- */

static void check_layout(const fm_model *m, const char *const names[8], const size_t shapes[8][4],
                         const size_t numel[8]) {
  const fm_layout *l = fm_model_layout(m);
  assert_int_equal(fm_layout_num_tensors(l), 8);
  size_t off = 0;
  for (size_t i = 0; i < 8; i++) {
    const fm_tensor_info *t = fm_layout_tensor(l, i);
    assert_string_equal(t->name, names[i]);
    int ndim = shapes[i][1] == 0 ? 1 : shapes[i][2] == 0 ? 2 : 4;
    assert_int_equal(t->ndim, ndim);
    for (int d = 0; d < ndim; d++) assert_int_equal(t->shape[d], shapes[i][d]);
    assert_int_equal(t->numel, numel[i]);
    assert_int_equal(t->offset, off);
    assert_true(t->trainable);
    off += t->numel;
  }
  assert_int_equal(fm_layout_numel(l), off);
  assert_int_equal(fm_layout_trainable_numel(l), off);
}

static const char *const cnn_names[8] = {"conv2d_0/kernel", "conv2d_0/bias", "conv2d_1/kernel", "conv2d_1/bias",
                                         "dense_0/kernel",  "dense_0/bias",  "dense_1/kernel",  "dense_1/bias"};

/* Keras: create_original_fedavg_cnn_model(only_digits=True).summary() */
static void test_cnn_default_layout(void **state) {
  (void)state;
  const size_t shapes[8][4] = {{5, 5, 1, 32},     {32, 0, 0, 0},  {5, 5, 32, 64},  {64, 0, 0, 0},
                               {3136, 512, 0, 0}, {512, 0, 0, 0}, {512, 10, 0, 0}, {10, 0, 0, 0}};
  const size_t numel[8] = {800, 32, 51200, 64, 1605632, 512, 5120, 10};
  fm_input_spec s2, s3 = image_spec(28, 28, 1, 10);
  size_t hw[2] = {28, 28};
  assert_int_equal(fm_input_spec_set(&s2, 2, hw, 10), FM_OK);
  fm_model *m = NULL, *m3 = NULL, *byname = NULL;
  assert_int_equal(fm_model_create_cnn(&s2, NULL, &m), FM_OK); /* (28, 28): one channel */
  assert_string_equal(fm_model_type(m), "cnn:32,64,512");
  check_layout(m, cnn_names, shapes, numel);
  const fm_layout *l = fm_model_layout(m);
  assert_int_equal(fm_layout_tensor(l, 0)->numel + fm_layout_tensor(l, 1)->numel, 832);
  assert_int_equal(fm_layout_tensor(l, 2)->numel + fm_layout_tensor(l, 3)->numel, 51264);
  assert_int_equal(fm_layout_tensor(l, 4)->numel + fm_layout_tensor(l, 5)->numel, 1606144);
  assert_int_equal(fm_layout_tensor(l, 6)->numel + fm_layout_tensor(l, 7)->numel, 5130);
  assert_int_equal(fm_layout_numel(l), 1663370);
  /* (28, 28, 1), explicit defaults and the registry give the same model */
  fm_cnn_config def = fm_cnn_config_default();
  assert_int_equal(def.conv_filters[0], 32);
  assert_int_equal(def.conv_filters[1], 64);
  assert_int_equal(def.dense_units, 512);
  assert_int_equal(def.kernel_size, 5);
  assert_int_equal(fm_model_create_cnn(&s3, &def, &m3), FM_OK);
  assert_true(fm_layout_equal(fm_model_layout(m), fm_model_layout(m3)));
  assert_string_equal(fm_model_type(m3), "cnn:32,64,512");
  assert_int_equal(fm_model_create_by_name("cnn", &s3, &byname), FM_OK);
  assert_true(fm_layout_equal(fm_model_layout(m), fm_model_layout(byname)));
  assert_string_equal(fm_model_type(byname), "cnn:32,64,512");
  fm_model_destroy(&byname);
  /* EMNIST-62 changes only the last layer */
  fm_input_spec s62 = image_spec(28, 28, 1, 62);
  assert_int_equal(fm_model_create_by_name("cnn", &s62, &byname), FM_OK);
  assert_int_equal(fm_layout_numel(fm_model_layout(byname)), 1663370 - 5130 + 512 * 62 + 62);
  fm_model_destroy(&byname);
  /* the workspace of a batch of 32 stays moderate (see docs/models.md) */
  size_t ws = fm_model_workspace_size(m, 32);
  assert_true(ws > 32 * (28 * 28 * 32 + 14 * 14 * 64) * sizeof(float));
  assert_true(ws < 32 * 400000 + 1000000);
  assert_true(fm_model_workspace_size(m, 1) < ws);
  assert_int_equal(fm_model_workspace_size(m, SIZE_MAX / 2), SIZE_MAX); /* overflow saturates */
  fm_model_destroy(&m);
  fm_model_destroy(&m3);
}

/* odd sizes: 'same' pooling rounds up (7 -> 4 -> 2, 9 -> 5 -> 3), 3 channels,
 * a 3x3 kernel and the canonical name with the kernel size */
static void test_cnn_odd_layout(void **state) {
  (void)state;
  fm_model *m = new_cnn(7, 9, 3, 4, 2, 5, 6, 3);
  assert_string_equal(fm_model_type(m), "cnn:2,5,6,3");
  const size_t shapes[8][4] = {{3, 3, 3, 2},  {2, 0, 0, 0}, {3, 3, 2, 5}, {5, 0, 0, 0},
                               {30, 6, 0, 0}, {6, 0, 0, 0}, {6, 4, 0, 0}, {4, 0, 0, 0}};
  const size_t numel[8] = {54, 2, 90, 5, 180, 6, 24, 4};
  check_layout(m, cnn_names, shapes, numel);
  fm_input_spec s = image_spec(7, 9, 3, 4);
  fm_model *again = NULL;
  assert_int_equal(fm_model_create_by_name(fm_model_type(m), &s, &again), FM_OK);
  assert_true(fm_layout_equal(fm_model_layout(m), fm_model_layout(again)));
  fm_model_destroy(&again);
  fm_model_destroy(&m);
  /* a 1 x 1 image pools to 1 x 1 twice */
  m = new_cnn(1, 1, 0, 2, 3, 4, 5, 5);
  assert_int_equal(fm_layout_tensor(fm_model_layout(m), 4)->shape[0], 4);
  fm_model_destroy(&m);
}

/* ---- init --------------------------------------------------------------------------------- */

static void test_cnn_init_deterministic(void **state) {
  (void)state;
  fm_model *m = new_cnn(8, 6, 2, 3, 4, 6, 16, 5);
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
    if (ti->ndim == 1) {
      for (size_t i = 0; i < ti->numel; i++) assert_true(a[ti->offset + i] == 0.0f);
      continue;
    }
    /* Keras's fans: conv (k, k, in, out) -> k*k*in and k*k*out */
    double fan_in = ti->ndim == 4 ? (double)(ti->shape[0] * ti->shape[1] * ti->shape[2]) : (double)ti->shape[0];
    double fan_out = ti->ndim == 4 ? (double)(ti->shape[0] * ti->shape[1] * ti->shape[3]) : (double)ti->shape[1];
    double limit = sqrt(6.0 / (fan_in + fan_out));
    fm_rng r;
    fm_rng_init(&r, 2024, 0, t, FM_RNG_INIT);
    double var = 0;
    for (size_t i = 0; i < ti->numel; i++) {
      assert_true(a[ti->offset + i] == (float)((2.0 * fm_rng_uniform(&r) - 1.0) * limit));
      var += (double)a[ti->offset + i] * a[ti->offset + i];
    }
    if (ti->numel >= 100) assert_true(fabs(var / (double)ti->numel - limit * limit / 3) < 0.3 * limit * limit / 3);
  }
  free(a), free(b), free(c);
  fm_model_destroy(&m);
}

/* ---- forward and gradients ------------------------------------------------------------------ */

static void check_forward(const fm_model *m, size_t N, uint64_t seed) {
  batch b = make_batch(m, N, seed);
  double *wd = to_double(b.w, b.P), *pref = malloc(N * b.C * sizeof *pref);
  float *probs = malloc(N * b.C * sizeof *probs), loss = NAN, loss2 = NAN;
  double lref = ref_forward(m, wd, b.x, b.y, N, pref, NULL);
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, N, 0, &loss, probs), FM_OK);
  if (!(fabs(loss - lref) <= 1e-5 * fmax(1.0, fabs(lref)))) fail_msg("loss %.9g vs ref %.9g", loss, lref);
  for (size_t i = 0; i < N * b.C; i++)
    if (!(fabs(probs[i] - pref[i]) <= 1e-5)) fail_msg("probs[%zu] %.9g vs ref %.9g", i, probs[i], pref[i]);
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, N, 1, &loss2, NULL), FM_OK);
  assert_true(loss2 == loss);
  free(wd), free(pref), free(probs);
  free_batch(&b);
}

static void test_cnn_forward(void **state) {
  (void)state;
  fm_model *m = new_cnn(8, 8, 1, 3, 4, 6, 16, 5);
  check_forward(m, 5, 1);
  check_forward(m, 1, 2);
  fm_model_destroy(&m);
  m = new_cnn(7, 9, 3, 4, 2, 5, 6, 3); /* odd sizes */
  check_forward(m, 3, 3);
  fm_model_destroy(&m);
  m = new_cnn(6, 10, 2, 5, 3, 4, 7, 4); /* even kernel: asymmetric 'same' padding */
  check_forward(m, 4, 4);
  fm_model_destroy(&m);
  m = new_cnn(28, 28, 0, 10, 8, 8, 32, 5); /* EMNIST-sized, narrow */
  check_forward(m, 2, 5);
  fm_model_destroy(&m);
}

static int pattern_equal(const pattern *a, const pattern *b) {
  return a->n == b->n && memcmp(a->bits, b->bits, a->n) == 0;
}

/* Analytic gradient of every trainable parameter vs central differences:
 *  (1) in double on the reference forward (h = 1e-6): tight tolerance;
 *  (2) in float on the model's own forward (h = 2e-3): loose tolerance; the
 *      float loss's rounding (~1e-7) over the step stays ~20x below it.
 * A parameter whose perturbation changes a ReLU sign or a pooling winner is
 * skipped (in (1) with h = 1e-6 as well); at most max_skip of them. The
 * many small ReLU and pooling decisions of a CNN make a larger float step
 * cross kinks for a third of the parameters. */
static void check_gradient(const fm_model *m, size_t N, uint64_t seed, double max_skip) {
  batch b = make_batch(m, N, seed);
  float loss;
  float *g = model_grad(m, &b, &loss);
  double *wd = to_double(b.w, b.P);
  pattern pat0 = {0}, pat = {0};
  ref_forward(m, wd, b.x, b.y, N, NULL, &pat0);

  double gnorm = 0;
  for (size_t j = 0; j < b.T; j++) gnorm = fmax(gnorm, fabs(g[j]));
  assert_true(gnorm > 1e-3);

  /* (1) double reference */
  const double h = 1e-6;
  size_t skipped1 = 0, nonzero = 0;
  for (size_t j = 0; j < b.T; j++) {
    double w0 = wd[j];
    wd[j] = w0 + h;
    pat.n = 0;
    double lp = ref_forward(m, wd, b.x, b.y, N, NULL, &pat);
    int kink = !pattern_equal(&pat, &pat0);
    wd[j] = w0 - h;
    pat.n = 0;
    double lm = ref_forward(m, wd, b.x, b.y, N, NULL, &pat);
    kink |= !pattern_equal(&pat, &pat0);
    wd[j] = w0;
    if (kink) {
      skipped1++;
      continue;
    }
    double fd = (lp - lm) / (2 * h);
    nonzero += fd != 0;
    if (!(fabs(g[j] - fd) <= 1e-3 * fabs(fd) + 2e-5))
      fail_msg("%s: param %zu: analytic %.8g vs double FD %.8g", fm_model_type(m), j, g[j], fd);
  }
  assert_true(skipped1 * 100 <= b.T); /* kinks within 1e-6 are rare */
  assert_true(nonzero * 2 >= b.T);    /* most parameters matter */

  /* (2) float finite differences through fm_model_forward */
  const float eps = 2e-3f;
  double worst = 0;
  float *wf = malloc(b.P * sizeof *wf);
  memcpy(wf, b.w, b.P * sizeof *wf);
  size_t skipped = 0;
  for (size_t j = 0; j < b.T; j++) {
    int kink = 0;
    for (int sgn = -1; sgn <= 1; sgn += 2) {
      wd[j] = (double)(b.w[j] + (float)sgn * eps);
      pat.n = 0;
      ref_forward(m, wd, b.x, b.y, N, NULL, &pat);
      if (!pattern_equal(&pat, &pat0)) kink = 1;
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
    double tol = 1e-2 * fmax(fabs(fd), fabs(g[j])) + 5e-4;
    worst = fmax(worst, fabs(g[j] - fd) / tol);
    if (!(fabs(g[j] - fd) <= tol))
      fail_msg("%s: param %zu: analytic %.8g vs float FD %.8g", fm_model_type(m), j, g[j], fd);
  }
  if (getenv("FM_TEST_VERBOSE"))
    fprintf(stderr, "%s: %zu params, %zu skipped (float step), worst error/tol %.3f\n", fm_model_type(m), b.T, skipped,
            worst);
  if (!((double)skipped <= max_skip * (double)b.T))
    fail_msg("%s: %zu of %zu parameters cross a kink at step %g", fm_model_type(m), skipped, b.T, eps);
  free(wf), free(wd), free(g), free(pat0.bits), free(pat.bits);
  free_batch(&b);
}

static void test_cnn_gradient(void **state) {
  (void)state;
  fm_model *m = new_cnn(8, 8, 1, 3, 4, 6, 16, 5); /* "cnn:4,6,16" on 8x8x1, 3 classes */
  check_gradient(m, 3, 11, 0.25);
  fm_model_destroy(&m);
  m = new_cnn(7, 5, 2, 4, 3, 4, 8, 3); /* odd sizes, 2 channels, 3x3 kernels */
  check_gradient(m, 2, 12, 0.25);
  fm_model_destroy(&m);
  m = new_cnn(6, 4, 1, 2, 2, 3, 5, 2); /* even kernel */
  check_gradient(m, 1, 13, 0.25);
  fm_model_destroy(&m);
}

/* backward adds into dw; the workspace cache survives a backward call */
static void test_cnn_backward_accumulates(void **state) {
  (void)state;
  fm_model *m = new_cnn(8, 8, 1, 3, 4, 6, 16, 5);
  batch b = make_batch(m, 5, 21);
  check_accumulates(m, &b);
  free_batch(&b);
  fm_model_destroy(&m);
}

/* a smaller batch in a workspace sized for a larger one, and back; results do
 * not depend on the batch size the workspace was sized for */
static void test_cnn_workspace_reuse(void **state) {
  (void)state;
  fm_model *m = new_cnn(8, 8, 1, 3, 4, 6, 16, 5);
  batch big = make_batch_ws(m, 9, 40, 31); /* workspace for 40 examples */
  float lbig, lsmall, lbig2;
  float *gbig = model_grad(m, &big, &lbig);
  size_t N0 = big.N;
  big.N = 3;
  float *gsmall = model_grad(m, &big, &lsmall);
  double *wd = to_double(big.w, big.P);
  double ref = ref_forward(m, wd, big.x, big.y, 3, NULL, NULL);
  assert_true(fabs(lsmall - ref) <= 1e-5);
  big.N = N0;
  float *gbig2 = model_grad(m, &big, &lbig2);
  assert_true(lbig2 == lbig);
  assert_memory_equal(gbig, gbig2, big.T * sizeof *gbig);
  /* the same batch in an exactly sized workspace: bit-identical */
  batch exact = make_batch(m, 9, 31);
  float lexact;
  float *gexact = model_grad(m, &exact, &lexact);
  assert_true(lexact == lbig);
  assert_memory_equal(gbig, gexact, big.T * sizeof *gbig);
  /* a batch of 3 in its own workspace gives what the big one gave */
  exact.N = 3;
  float l3;
  float *g3 = model_grad(m, &exact, &l3);
  assert_true(l3 == lsmall);
  assert_memory_equal(g3, gsmall, big.T * sizeof *g3);
  free(gbig), free(gsmall), free(gbig2), free(wd), free(gexact), free(g3);
  free_batch(&big);
  free_batch(&exact);
  fm_model_destroy(&m);
}

/* ---- errors ----------------------------------------------------------------------------------- */

static void test_cnn_create_errors(void **state) {
  (void)state;
  fm_model *m = (fm_model *)&m;
  size_t flat[1] = {784}, four[4] = {2, 28, 28, 1};
  fm_input_spec s;
  assert_int_equal(fm_input_spec_set(&s, 1, flat, 10), FM_OK);
  assert_int_equal(fm_model_create_cnn(&s, NULL, &m), FM_ERR_SPEC_MISMATCH);
  assert_null(m);
  assert_non_null(strstr(fm_last_error(), "(H, W)"));
  assert_non_null(strstr(fm_last_error(), "784"));
  assert_int_equal(fm_model_create_by_name("cnn", &s, &m), FM_ERR_SPEC_MISMATCH);
  assert_int_equal(fm_input_spec_set(&s, 4, four, 10), FM_OK);
  assert_int_equal(fm_model_create_cnn(&s, NULL, &m), FM_ERR_SPEC_MISMATCH);

  s = image_spec(8, 8, 1, 3);
  fm_cnn_config cfg = fm_cnn_config_default();
  cfg.conv_filters[1] = 0;
  assert_int_equal(fm_model_create_cnn(&s, &cfg, &m), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "filters"));
  cfg = fm_cnn_config_default();
  cfg.dense_units = 0;
  assert_int_equal(fm_model_create_cnn(&s, &cfg, &m), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "dense units"));
  cfg = fm_cnn_config_default();
  cfg.kernel_size = 0;
  assert_int_equal(fm_model_create_cnn(&s, &cfg, &m), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "kernel"));
  assert_int_equal(fm_model_create_cnn(NULL, NULL, &m), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_create_cnn(&s, NULL, NULL), FM_ERR_INVALID_ARG);
  fm_input_spec bad = s;
  bad.num_features = 63;
  assert_int_equal(fm_model_create_cnn(&bad, NULL, &m), FM_ERR_INVALID_ARG);
  assert_null(m);

  /* activations beyond the int dimensions: 40000 x 40000 x 32 (nothing is allocated) */
  s = image_spec(40000, 40000, 0, 10);
  assert_int_equal(fm_model_create_cnn(&s, NULL, &m), FM_ERR_OVERFLOW);
  assert_non_null(strstr(fm_last_error(), "40000x40000x1"));
  cfg = fm_cnn_config_default();
  cfg.kernel_size = 50000; /* 50000^2 taps */
  s = image_spec(8, 8, 1, 3);
  assert_int_equal(fm_model_create_cnn(&s, &cfg, &m), FM_ERR_OVERFLOW);
  assert_null(m);
}

/* ---- the registry ------------------------------------------------------------------------------ */

static void test_cnn_registry(void **state) {
  (void)state;
  /* "cnn" is listed with help; so is "2nn" */
  int found_cnn = 0, found_2nn = 0;
  const char *help = NULL, *name;
  for (size_t i = 0; (name = fm_model_registry_name(i, &help)) != NULL; i++) {
    if (strcmp(name, "cnn") == 0) {
      found_cnn = 1;
      assert_non_null(strstr(help, "cnn:F1,F2,UNITS"));
    }
    if (strcmp(name, "2nn") == 0) found_2nn = 1;
  }
  assert_true(found_cnn && found_2nn);

  fm_input_spec s = image_spec(8, 8, 1, 3), mnist = image_spec(28, 28, 0, 10);
  fm_model *m = NULL;
  assert_int_equal(fm_model_create_by_name("2nn", &mnist, &m), FM_OK);
  assert_int_equal(fm_layout_numel(fm_model_layout(m)), 199210);
  fm_model_destroy(&m);

  const char *good[][2] = {
      {"cnn:4,6,16", "cnn:4,6,16"},   {"cnn:4,6,16,5", "cnn:4,6,16"},     {"cnn:4,6,16,3", "cnn:4,6,16,3"},
      {"cnn:004,6,16", "cnn:4,6,16"}, {"cnn:32,64,512", "cnn:32,64,512"},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    if (fm_model_create_by_name(good[i][0], &s, &m) != FM_OK) fail_msg("%s: %s", good[i][0], fm_last_error());
    assert_string_equal(fm_model_type(m), good[i][1]);
    fm_model *again = NULL;
    assert_int_equal(fm_model_create_by_name(fm_model_type(m), &s, &again), FM_OK);
    assert_true(fm_layout_equal(fm_model_layout(m), fm_model_layout(again)));
    fm_model_destroy(&again);
    fm_model_destroy(&m);
  }
  assert_int_equal(fm_model_create_by_name("cnn:4,6,16,3", &s, &m), FM_OK);
  assert_int_equal(fm_layout_tensor(fm_model_layout(m), 0)->shape[0], 3);
  assert_int_equal(fm_layout_tensor(fm_model_layout(m), 2)->shape[2], 4);
  assert_int_equal(fm_layout_tensor(fm_model_layout(m), 2)->shape[3], 6);
  assert_int_equal(fm_layout_tensor(fm_model_layout(m), 4)->shape[1], 16);
  fm_model_destroy(&m);

  /* name, text the message must contain */
  const char *bad[][2] = {
      {"cnn:", "conv1 filters ''"},
      {"cnn:4", "got 1 value"},
      {"cnn:4,6", "got 2 values"},
      {"cnn:4,6,16,5,1", "too many values"},
      {"cnn:a,6,16", "conv1 filters 'a'"},
      {"cnn:4,0,16", "conv2 filters '0'"},
      {"cnn:4,6,-1", "dense units '-1'"},
      {"cnn:4,6,16,x", "kernel size 'x'"},
      {"cnn:4,,16", "conv2 filters ''"},
      {"cnn:4,6,16,", "kernel size ''"},
      {"cnn: 4,6,16", "' 4'"},
      {"cnn:4,6,99999999999999999999", "'99999999999999999999'"},
      {"cnn:4,6,3000000000", "'3000000000'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    m = (fm_model *)&s;
    int rc = fm_model_create_by_name(bad[i][0], &s, &m);
    if (rc != FM_ERR_INVALID_ARG) fail_msg("%s: got %s", bad[i][0], fm_err_name(rc));
    assert_null(m);
    if (!strstr(fm_last_error(), bad[i][1]))
      fail_msg("%s: message '%s' does not contain %s", bad[i][0], fm_last_error(), bad[i][1]);
    if (!strstr(fm_last_error(), bad[i][0]))
      fail_msg("%s: message '%s' does not quote the name", bad[i][0], fm_last_error());
  }
  assert_int_equal(fm_model_create_by_name("CNN", &s, &m), FM_ERR_UNKNOWN_TYPE);
  assert_int_equal(fm_model_create_by_name("cnnx:4,6,16", &s, &m), FM_ERR_UNKNOWN_TYPE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cnn_default_layout),     cmocka_unit_test(test_cnn_odd_layout),
      cmocka_unit_test(test_cnn_init_deterministic), cmocka_unit_test(test_cnn_forward),
      cmocka_unit_test(test_cnn_gradient),           cmocka_unit_test(test_cnn_backward_accumulates),
      cmocka_unit_test(test_cnn_workspace_reuse),    cmocka_unit_test(test_cnn_create_errors),
      cmocka_unit_test(test_cnn_registry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
