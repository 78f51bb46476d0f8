/* tests/unit/test_seq_layers.c — the private sequence and autoencoder
 * kernels (src/model/seq.c, src/model/lstm.c) and the 'valid' conv2d
 * (src/model/conv.c): forward passes against naive loops, every backward
 * against central finite differences, dropout's statistics and keying, the
 * orthogonal initialiser, and Keras's LSTM gate order on a hand-computed
 * two-step sequence.
 *
 * The kernels are hidden inside libfedmpi, so this file compiles their
 * sources into the test itself (as test_conv_layers.c does).
 *
 * Finite differences: layers with float parameters are perturbed in float
 * (eps around 1e-2, the loss summed in double), with tolerances that cover
 * float rounding; the LSTM, being deeper, is checked against a double
 * precision reference implementation written here with per-gate loops
 * (eps 1e-6 in double), which also checks its forward pass. Each loss is
 * L = sum of R * out for a fixed random R, so dout = R.
 *
 * Deliberately not covered here: models built from these layers (the
 * layer-stack model has its own tests) and the 'same' conv (test_conv_layers.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static size_t test_budget = (size_t)1 << 15; /* the library's default */
#define FM__CONV_COL_BUDGET test_budget
#include "../../src/model/conv.c"
#include "../../src/model/layers.c"
#include "../../src/model/lstm.c"
#include "../../src/model/seq.c"
#include "conv_backend.h"
#include "fedmpi/rng.h"

static void fill_uniform(float *a, size_t n, float lo, float hi, uint64_t stream) {
  fm_rng r;
  fm_rng_init(&r, 2468, 0, stream, FM_RNG_USER);
  for (size_t i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)fm_rng_uniform(&r);
}

static float *alloc_f(size_t n) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  assert_non_null(p);
  return p;
}

static float *calloc_f(size_t n) {
  float *p = calloc(n ? n : 1, sizeof *p);
  assert_non_null(p);
  return p;
}

static void assert_close(double got, double want, double rtol, double atol, const char *what, size_t i) {
  double err = fabs(got - want), tol = atol + rtol * fabs(want);
  if (!(err <= tol)) fail_msg("%s[%zu]: got %.9g, want %.9g (|err| %.3g > tol %.3g)", what, i, got, want, err, tol);
}

static double dot_fd(const float *a, const float *r, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * r[i];
  return s;
}

typedef double (*loss_fn)(void *ctx);

/* Central differences on float parameters p (n) against grad, at up to 48
 * evenly spread indices. The actual float step is used, not eps. */
static void fd_check_f(float *p, size_t n, const float *grad, loss_fn f, void *ctx, float eps, double rtol,
                       double atol, const char *what) {
  size_t stride = n > 48 ? n / 48 : 1;
  for (size_t i = 0; i < n; i += stride) {
    float orig = p[i], up = orig + eps, dn = orig - eps;
    p[i] = up;
    double lp = f(ctx);
    p[i] = dn;
    double lm = f(ctx);
    p[i] = orig;
    assert_close(grad[i], (lp - lm) / ((double)up - (double)dn), rtol, atol, what, i);
  }
}

/* The same on double parameters (a double-precision reference model). */
static void fd_check_d(double *p, size_t n, const float *grad, loss_fn f, void *ctx, double eps, double rtol,
                       double atol, const char *what) {
  for (size_t i = 0; i < n; i++) {
    double orig = p[i];
    p[i] = orig + eps;
    double lp = f(ctx);
    p[i] = orig - eps;
    double lm = f(ctx);
    p[i] = orig;
    assert_close(grad[i], (lp - lm) / (2 * eps), rtol, atol, what, i);
  }
}

/* ---- conv2d 'valid' ----------------------------------------------------------------- */

typedef struct conv_ctx {
  size_t N, H, W, IC, KH, KW, OC;
  float *in, *K, *b, *R, *out, *col;
} conv_ctx;

static double conv_loss(void *p) {
  conv_ctx *c = p;
  fm__conv2d_valid_forward(c->out, c->col, c->in, c->K, c->b, c->N, c->H, c->W, c->IC, c->KH, c->KW, c->OC);
  return dot_fd(c->out, c->R, c->N * (c->H - c->KH + 1) * (c->W - c->KW + 1) * c->OC);
}

static void test_conv2d_valid(void **state) {
  (void)state;
  static const size_t cases[][7] = {
      {1, 1, 1, 1, 1, 1, 1}, {2, 5, 7, 3, 3, 3, 4}, {3, 8, 8, 1, 5, 5, 2}, {2, 6, 5, 2, 4, 2, 3},
      {2, 4, 4, 2, 4, 4, 3}, /* kernel = image: one output pixel */
      {2, 28, 28, 1, 3, 3, 4}, /* TFF cnn_dropout's first conv, fewer filters */
  };
  int before = dnnl_calls();
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
    for (int bud = 0; bud < 1 + FM_TEST_BACKENDS; bud++) {
      use_dnnl(bud == 2); /* im2col with one example per chunk, with the default budget, then oneDNN */
      conv_ctx c = {cases[k][0], cases[k][1], cases[k][2], cases[k][3], cases[k][4], cases[k][5], cases[k][6],
                    NULL, NULL, NULL, NULL, NULL, NULL};
      test_budget = bud == 0 ? 1 : (size_t)1 << 15;
      size_t HO = c.H - c.KH + 1, WO = c.W - c.KW + 1, nin = c.N * c.H * c.W * c.IC, nout = c.N * HO * WO * c.OC;
      size_t nk = c.KH * c.KW * c.IC * c.OC;
      c.in = alloc_f(nin), c.K = alloc_f(nk), c.b = alloc_f(c.OC), c.R = alloc_f(nout), c.out = alloc_f(nout);
      c.col = alloc_f(fm__conv2d_valid_col_floats(c.N, c.H, c.W, c.IC, c.KH, c.KW));
      fill_uniform(c.in, nin, -1, 1, 1), fill_uniform(c.K, nk, -1, 1, 2), fill_uniform(c.b, c.OC, -1, 1, 3);
      fill_uniform(c.R, nout, -1, 1, 4);
      conv_loss(&c);
      for (size_t n = 0; n < c.N; n++) /* naive, double */
        for (size_t h = 0; h < HO; h++)
          for (size_t w = 0; w < WO; w++)
            for (size_t o = 0; o < c.OC; o++) {
              double s = c.b[o], mag = fabs(s);
              for (size_t kh = 0; kh < c.KH; kh++)
                for (size_t kw = 0; kw < c.KW; kw++)
                  for (size_t i = 0; i < c.IC; i++) {
                    double t = (double)c.in[((n * c.H + h + kh) * c.W + w + kw) * c.IC + i] *
                               c.K[((kh * c.KW + kw) * c.IC + i) * c.OC + o];
                    s += t, mag += fabs(t);
                  }
              size_t at = ((n * HO + h) * WO + w) * c.OC + o;
              assert_close(c.out[at], s, 0, 1e-6 * (mag + 1), "valid conv out", at);
            }
      float *dK = calloc_f(nk), *db = calloc_f(c.OC), *din = alloc_f(nin);
      for (size_t i = 0; i < nin; i++) din[i] = NAN; /* overwritten, not accumulated */
      fm__conv2d_valid_backward(din, dK, db, c.col, c.R, c.in, c.K, c.N, c.H, c.W, c.IC, c.KH, c.KW, c.OC);
      fd_check_f(c.K, nk, dK, conv_loss, &c, 1e-2f, 1e-3, 2e-3, "dK");
      fd_check_f(c.b, c.OC, db, conv_loss, &c, 1e-2f, 1e-3, 2e-3, "db");
      fd_check_f(c.in, nin, din, conv_loss, &c, 1e-2f, 1e-3, 2e-3, "din");
      free(c.in), free(c.K), free(c.b), free(c.R), free(c.out), free(c.col), free(dK), free(db), free(din);
    }
  test_budget = (size_t)1 << 15;
  use_dnnl(1);
  if (dnnl_expected()) assert_true(dnnl_calls() > before); /* oneDNN's 'valid' convs really ran */
}

/* A 1 x 1 kernel has no padding either way: 'valid' and 'same' agree to the bit. */
static void test_conv2d_valid_equals_same_for_1x1(void **state) {
  (void)state;
  size_t N = 3, H = 5, W = 4, IC = 3, OC = 6, nin = N * H * W * IC, nout = N * H * W * OC;
  float *in = alloc_f(nin), *K = alloc_f(IC * OC), *b = alloc_f(OC), *o1 = alloc_f(nout), *o2 = alloc_f(nout);
  float *col = alloc_f(fm__conv2d_col_floats(N, H, W, IC, 1, 1));
  fill_uniform(in, nin, -1, 1, 5), fill_uniform(K, IC * OC, -1, 1, 6), fill_uniform(b, OC, -1, 1, 7);
  fm__conv2d_forward(o1, col, in, K, b, N, H, W, IC, 1, 1, OC);
  fm__conv2d_valid_forward(o2, col, in, K, b, N, H, W, IC, 1, 1, OC);
  assert_memory_equal(o1, o2, nout * sizeof *o1);
  assert_int_equal(fm__conv2d_valid_col_floats(N, H, W, IC, 1, 1), fm__conv2d_col_floats(N, H, W, IC, 1, 1));
  free(in), free(K), free(b), free(o1), free(o2), free(col);
}

/* ---- activations and MSE -------------------------------------------------------------- */

typedef struct act_ctx {
  float *x, *out, *R;
  size_t n;
  int tanh_;
} act_ctx;

static double act_loss(void *p) {
  act_ctx *c = p;
  if (c->tanh_)
    fm__tanh_forward(c->out, c->x, c->n);
  else
    fm__sigmoid_forward(c->out, c->x, c->n);
  return dot_fd(c->out, c->R, c->n);
}

static void test_sigmoid_tanh(void **state) {
  (void)state;
  enum { n = 64 };
  float x[n], out[n], R[n], din[n];
  fill_uniform(x, n, -4, 4, 8), fill_uniform(R, n, -1, 1, 9);
  for (int t = 0; t < 2; t++) {
    act_ctx c = {x, out, R, n, t};
    act_loss(&c);
    for (size_t i = 0; i < n; i++)
      assert_close(out[i], t ? tanh((double)x[i]) : 1 / (1 + exp(-(double)x[i])), 0, 2e-7, "act out", i);
    if (t)
      fm__tanh_backward(din, R, out, n);
    else
      fm__sigmoid_backward(din, R, out, n);
    fd_check_f(x, n, din, act_loss, &c, 1e-3f, 2e-3, 2e-4, t ? "dtanh" : "dsigmoid");
  }
  /* saturation: finite and exact limits, no overflow in exp */
  float big[4] = {-100.0f, 100.0f, -1e30f, 1e30f}, sb[4];
  fm__sigmoid_forward(sb, big, 4);
  assert_true(sb[0] >= 0.0f && sb[0] < 1e-40f);
  assert_true(sb[1] == 1.0f && sb[3] == 1.0f && sb[2] == 0.0f);
  fm__sigmoid_forward(big, big, 4); /* in place */
  assert_memory_equal(big, sb, sizeof sb);
}

typedef struct mse_ctx {
  float *pred, *target;
  size_t n;
} mse_ctx;

static double mse_loss(void *p) {
  mse_ctx *c = p;
  return fm__mse_forward(c->pred, c->target, c->n);
}

static void test_mse(void **state) {
  (void)state;
  enum { n = 30 };
  float pred[n], target[n], d[n];
  fill_uniform(pred, n, -1, 1, 10), fill_uniform(target, n, 0, 1, 11);
  double want = 0;
  for (size_t i = 0; i < n; i++) want += ((double)pred[i] - target[i]) * ((double)pred[i] - target[i]);
  want /= n; /* Keras: mean over all elements */
  mse_ctx c = {pred, target, n};
  assert_close(mse_loss(&c), want, 1e-6, 0, "mse", 0);
  fm__mse_backward(d, pred, target, n);
  fd_check_f(pred, n, d, mse_loss, &c, 1e-2f, 2e-3, 1e-6, "dmse");
  float one[2] = {3.0f, 1.0f}, zero[2] = {1.0f, 1.0f};
  assert_true(fm__mse_forward(one, zero, 2) == 2.0f); /* (4 + 0) / 2 */
}

/* ---- dropout ------------------------------------------------------------------------------- */

typedef struct drop_ctx {
  float *x, *out, *R;
  const uint8_t *mask;
  size_t n;
  float rate;
} drop_ctx;

static double drop_loss(void *p) {
  drop_ctx *c = p;
  fm__dropout_backward(c->out, c->x, c->mask, c->n, c->rate); /* the forward pass with a fixed mask */
  return dot_fd(c->out, c->R, c->n);
}

static void test_dropout_fixed_mask_gradient(void **state) {
  (void)state;
  enum { n = 40 };
  float x[n], out[n], R[n], din[n];
  uint8_t mask[n];
  fill_uniform(x, n, -1, 1, 12), fill_uniform(R, n, -1, 1, 13);
  for (size_t i = 0; i < n; i++) mask[i] = (uint8_t)(i % 3 != 0);
  drop_ctx c = {x, out, R, mask, n, 0.25f};
  fm__dropout_backward(din, R, mask, n, 0.25f);
  fd_check_f(x, n, din, drop_loss, &c, 1e-2f, 1e-4, 1e-5, "ddropout");
  for (size_t i = 0; i < n; i++) assert_true(mask[i] ? din[i] != 0.0f : din[i] == 0.0f);
}

static size_t count_diff(const uint8_t *a, const uint8_t *b, size_t n) {
  size_t d = 0;
  for (size_t i = 0; i < n; i++) d += a[i] != b[i];
  return d;
}

static uint64_t ref_mix64(uint64_t z) { /* splitmix64's finaliser, as documented in seq.h */
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* The bulk mask is exactly the word-by-word stream of fm_rng_u32 (the
 * definition it replaced): every length, partial last blocks included. */
static void test_dropout_mask_is_the_rng_stream(void **state) {
  (void)state;
  const size_t lens[] = {0, 1, 3, 4, 5, 8, 1001, 4099};
  const float rates[] = {0.0f, 0.25f, 0.5f, 0.9f};
  for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
    for (size_t ri = 0; ri < sizeof rates / sizeof rates[0]; ri++) {
      size_t n = lens[li];
      fm__dropout_key key = {0x1234567890abcdefULL, 7, 3 + li, 11 + ri, (uint32_t)ri};
      uint8_t *m = malloc(n + 1), *want = malloc(n + 1);
      assert_non_null(m), assert_non_null(want);
      fm__dropout_mask(m, n, rates[ri], &key);
      fm_rng r;
      fm_rng_init(&r, key.seed ^ fm__mix64(key.step << 8 | key.layer), key.round, key.client, FM_RNG_DROPOUT);
      uint32_t threshold = (uint32_t)((double)rates[ri] * 4294967296.0);
      for (size_t i = 0; i < n; i++) want[i] = fm_rng_u32(&r) >= threshold;
      if (n) assert_memory_equal(m, want, n);
      free(m), free(want);
    }
}

static void test_dropout_statistics_and_keys(void **state) {
  (void)state;
  enum { n = 200000 };
  float *x = alloc_f(n), *out = alloc_f(n);
  uint8_t *m1 = malloc(n), *m2 = malloc(n);
  assert_non_null(m1), assert_non_null(m2);
  fill_uniform(x, n, -2, 2, 14);
  const float rates[] = {0.0f, 0.25f, 0.5f, 0.9f};
  for (size_t k = 0; k < 4; k++) {
    float rate = rates[k], s = (float)(1.0 / (1.0 - (double)rate));
    fm__dropout_key key = {42, 7, 123, 5, 1};
    fm__dropout_forward(out, m1, x, n, rate, &key);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
      kept += m1[i];
      if (m1[i] && out[i] != x[i] * s) fail_msg("rate %g: out[%zu] = %.9g, not x * s = %.9g", rate, i, out[i], x[i] * s);
      if (!m1[i] && out[i] != 0.0f) fail_msg("rate %g: dropped out[%zu] = %g", rate, i, out[i]);
    }
    double frac = (double)kept / n, p = 1.0 - rate, sd = sqrt(p * (1 - p) / n);
    if (fabs(frac - p) > 5 * sd + 1e-12) fail_msg("rate %g: kept %.5f, want %.5f +- %.5f", rate, frac, p, 5 * sd);
    if (rate == 0.0f) assert_memory_equal(out, x, n * sizeof *x);
    fm__dropout_mask(m2, n, rate, &key); /* same key, same mask */
    assert_memory_equal(m1, m2, n);
    if (rate == 0.0f) continue;
    double want_diff = 2 * p * (1 - p) * n; /* two independent masks */
    fm__dropout_key other[4] = {{42, 7, 124, 5, 1}, {42, 8, 123, 5, 1}, {42, 7, 123, 6, 1}, {42, 7, 123, 5, 2}};
    for (size_t o = 0; o < 4; o++) { /* another client, round, step, layer */
      fm__dropout_mask(m2, n, rate, &other[o]);
      double d = (double)count_diff(m1, m2, n);
      if (fabs(d - want_diff) > 6 * sqrt(want_diff) + 1) fail_msg("key %zu: %g differences, want ~%g", o, d, want_diff);
    }
  }
  /* the exact stream of the documentation */
  fm__dropout_key key = {99, 3, 17, 1000, 4};
  fm__dropout_mask(m1, 1000, 0.5f, &key);
  fm_rng r;
  fm_rng_init(&r, 99 ^ ref_mix64(1000u << 8 | 4u), 3, 17, FM_RNG_DROPOUT);
  for (size_t i = 0; i < 1000; i++) assert_int_equal(m1[i], fm_rng_u32(&r) >= 0x80000000u);
  assert_int_equal(FM_RNG_DROPOUT, 9);
  free(x), free(out), free(m1), free(m2);
}

/* ---- embedding ------------------------------------------------------------------------------ */

typedef struct emb_ctx {
  float *E, *out, *R;
  const int32_t *tok;
  const uint8_t *mask;
  size_t M, D;
} emb_ctx;

/* downstream ignores masked positions, as Keras's masked layers do */
static double emb_loss(void *p) {
  emb_ctx *c = p;
  fm__embedding_forward(c->out, c->tok, c->E, c->M, c->D);
  double s = 0;
  for (size_t m = 0; m < c->M; m++)
    if (c->mask[m]) s += dot_fd(c->out + m * c->D, c->R + m * c->D, c->D);
  return s;
}

static void test_embedding(void **state) {
  (void)state;
  enum { V = 6, D = 3, M = 10 };
  const int32_t tok[M] = {3, 0, 5, 3, 1, 0, 0, 3, 2, 5}; /* repeats and padding */
  float E[V * D], out[M * D], R[M * D], dE[V * D];
  uint8_t mask[M];
  fm__embedding_init(E, V, D, 11, 2);
  for (size_t i = 0; i < V * D; i++) assert_true(E[i] >= -0.05f && E[i] <= 0.05f);
  float E2[V * D];
  fm__embedding_init(E2, V, D, 11, 2);
  assert_memory_equal(E, E2, sizeof E);
  fm__token_mask(mask, tok, M);
  for (size_t m = 0; m < M; m++) assert_int_equal(mask[m], tok[m] != 0);
  fm__embedding_forward(out, tok, E, M, D);
  for (size_t m = 0; m < M; m++) assert_memory_equal(out + m * D, E + tok[m] * D, D * sizeof *E); /* E[0] too */
  fill_uniform(R, M * D, -1, 1, 15);
  for (size_t i = 0; i < V * D; i++) dE[i] = 0.5f; /* accumulates */
  fm__embedding_backward(dE, R, tok, M, D, 1);
  for (size_t i = 0; i < V * D; i++) dE[i] -= 0.5f;
  emb_ctx c = {E, out, R, tok, mask, M, D};
  fd_check_f(E, V * D, dE, emb_loss, &c, 1e-2f, 1e-4, 1e-5, "dE");
  for (size_t d = 0; d < D; d++) assert_true(dE[d] == 0.0f);        /* padding row: no gradient */
  for (size_t d = 0; d < D; d++) assert_true(dE[4 * D + d] == 0.0f); /* unused token */
  /* deterministic order: row 3 is R[0] + R[3] + R[7], summed in position order */
  float want = 0.0f;
  want += R[0 * D + 1], want += R[3 * D + 1], want += R[7 * D + 1];
  assert_true(dE[3 * D + 1] == want);
  memset(dE, 0, sizeof dE); /* without mask_zero the padding row sums its positions */
  fm__embedding_backward(dE, R, tok, M, D, 0);
  assert_close(dE[1], (double)R[1 * D + 1] + R[5 * D + 1] + R[6 * D + 1], 1e-6, 0, "dE[0] unmasked", 1);
}

/* ---- LSTM ------------------------------------------------------------------------------------ */

/* Double-precision reference: Keras's equations with one loop per gate. */
static void ref_lstm(double *out, const double *x, const uint8_t *mask, const double *Wx, const double *Wh,
                     const double *b, size_t N, size_t T, size_t IN, size_t U, int seq) {
  double h[16], c[16], z[64];
  assert_true(U <= 16);
  for (size_t n = 0; n < N; n++) {
    for (size_t u = 0; u < U; u++) h[u] = c[u] = 0;
    for (size_t t = 0; t < T; t++) {
      if (!mask || mask[n * T + t]) {
        for (size_t k = 0; k < 4 * U; k++) {
          z[k] = b[k];
          for (size_t i = 0; i < IN; i++) z[k] += x[(n * T + t) * IN + i] * Wx[i * 4 * U + k];
          for (size_t j = 0; j < U; j++) z[k] += h[j] * Wh[j * 4 * U + k];
        }
        for (size_t u = 0; u < U; u++) {
          double ig = 1 / (1 + exp(-z[u])), fg = 1 / (1 + exp(-z[U + u]));
          double gg = tanh(z[2 * U + u]), og = 1 / (1 + exp(-z[3 * U + u]));
          c[u] = fg * c[u] + ig * gg;
          h[u] = og * tanh(c[u]);
        }
      }
      if (seq)
        for (size_t u = 0; u < U; u++) out[(n * T + t) * U + u] = h[u];
    }
    if (!seq)
      for (size_t u = 0; u < U; u++) out[n * U + u] = h[u];
  }
}

typedef struct lstm_ctx {
  size_t N, T, IN, U;
  int seq;
  const uint8_t *mask;
  double *x, *Wx, *Wh, *b, *out;
  const float *R;
} lstm_ctx;

static double lstm_ref_loss(void *p) {
  lstm_ctx *c = p;
  ref_lstm(c->out, c->x, c->mask, c->Wx, c->Wh, c->b, c->N, c->T, c->IN, c->U, c->seq);
  size_t n = c->seq ? c->N * c->T * c->U : c->N * c->U;
  double s = 0;
  for (size_t i = 0; i < n; i++) s += c->out[i] * c->R[i];
  return s;
}

static double *to_double(const float *a, size_t n) {
  double *d = malloc((n ? n : 1) * sizeof *d);
  assert_non_null(d);
  for (size_t i = 0; i < n; i++) d[i] = a[i];
  return d;
}

static void lstm_case(size_t N, size_t T, size_t IN, size_t U, int seq, const uint8_t *mask) {
  size_t G = 4 * U, nx = N * T * IN, nout = seq ? N * T * U : N * U;
  float *x = alloc_f(nx), *Wx = alloc_f(IN * G), *Wh = alloc_f(U * G), *b = alloc_f(G), *out = alloc_f(nout);
  float *R = alloc_f(nout), *cache = alloc_f(fm__lstm_cache_floats(N, T, U));
  float *scratch = alloc_f(fm__lstm_scratch_floats(N, T, U));
  float *dx = alloc_f(nx), *dWx = calloc_f(IN * G), *dWh = calloc_f(U * G), *db = calloc_f(G);
  fill_uniform(x, nx, -1, 1, 20), fill_uniform(Wx, IN * G, -0.6f, 0.6f, 21), fill_uniform(Wh, U * G, -0.6f, 0.6f, 22);
  fill_uniform(b, G, -0.5f, 0.5f, 23), fill_uniform(R, nout, -1, 1, 24);
  for (size_t i = 0; i < nx; i++) dx[i] = NAN; /* overwritten */
  fm__lstm_forward(out, cache, x, mask, Wx, Wh, b, N, T, IN, U, seq);
  fm__lstm_backward(dx, dWx, dWh, db, scratch, R, cache, x, mask, Wx, Wh, N, T, IN, U, seq);
  lstm_ctx c = {N, T, IN, U, seq, mask, to_double(x, nx), to_double(Wx, IN * G), to_double(Wh, U * G),
                to_double(b, G), malloc(nout * sizeof(double)), R};
  assert_non_null(c.out);
  lstm_ref_loss(&c);
  for (size_t i = 0; i < nout; i++) assert_close(out[i], c.out[i], 0, 2e-6, "lstm out", i);
  fd_check_d(c.x, nx, dx, lstm_ref_loss, &c, 1e-6, 1e-4, 2e-5, "lstm dx");
  fd_check_d(c.Wx, IN * G, dWx, lstm_ref_loss, &c, 1e-6, 1e-4, 2e-5, "lstm dWx");
  fd_check_d(c.Wh, U * G, dWh, lstm_ref_loss, &c, 1e-6, 1e-4, 2e-5, "lstm dWh");
  fd_check_d(c.b, G, db, lstm_ref_loss, &c, 1e-6, 1e-4, 2e-5, "lstm db");
  if (mask) /* a masked step's input has no effect, so no gradient */
    for (size_t r = 0; r < N * T; r++)
      for (size_t i = 0; i < IN && !mask[r]; i++) assert_true(dx[r * IN + i] == 0.0f);
  /* a second backward ADDS to the parameter gradients and OVERWRITES dx */
  float *g1 = alloc_f(IN * G + U * G + G), *dx1 = alloc_f(nx);
  memcpy(g1, dWx, IN * G * sizeof *g1), memcpy(g1 + IN * G, dWh, U * G * sizeof *g1);
  memcpy(g1 + IN * G + U * G, db, G * sizeof *g1), memcpy(dx1, dx, nx * sizeof *dx1);
  fm__lstm_backward(dx, dWx, dWh, db, scratch, R, cache, x, mask, Wx, Wh, N, T, IN, U, seq);
  for (size_t i = 0; i < IN * G; i++) assert_close(dWx[i], 2.0 * g1[i], 1e-6, 1e-7, "2 dWx", i);
  for (size_t i = 0; i < U * G; i++) assert_close(dWh[i], 2.0 * g1[IN * G + i], 1e-6, 1e-7, "2 dWh", i);
  for (size_t i = 0; i < G; i++) assert_close(db[i], 2.0 * g1[IN * G + U * G + i], 1e-6, 1e-7, "2 db", i);
  assert_memory_equal(dx, dx1, nx * sizeof *dx);
  free(g1), free(dx1);
  free(x), free(Wx), free(Wh), free(b), free(out), free(R), free(cache), free(scratch), free(dx), free(dWx);
  free(dWh), free(db), free(c.x), free(c.Wx), free(c.Wh), free(c.b), free(c.out);
}

static void test_lstm_bptt(void **state) {
  (void)state;
  /* N = 3, T = 5: sample 0 unmasked, sample 1 padded at the end (and at the
   * start), sample 2 with a hole in the middle and a masked last step */
  const uint8_t mask[15] = {1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0};
  for (int seq = 0; seq < 2; seq++) {
    lstm_case(3, 5, 4, 3, seq, NULL);
    lstm_case(3, 5, 4, 3, seq, mask);
    lstm_case(1, 1, 2, 2, seq, NULL); /* one step */
    lstm_case(2, 7, 3, 5, seq, NULL);
  }
  /* the recurrent product's paths (lstm.c fm__rec_gemm): 4-row blocks and
   * single rows, 32-column vectors and a scalar tail (U = 9: 4U = 36), and
   * sgemm beyond 16 rows */
  uint8_t m6[6 * 4];
  for (size_t i = 0; i < sizeof m6; i++) m6[i] = (uint8_t)(i % 7 != 3);
  for (int seq = 0; seq < 2; seq++) {
    lstm_case(6, 4, 3, 9, seq, m6);
    lstm_case(4, 3, 2, 8, seq, NULL); /* 4U = 32 and U = 8: vectors only forward, scalars backward */
    lstm_case(17, 2, 2, 8, seq, NULL);
  }
}

/* Keras's gate order i, f, c, o: two steps of a one-unit LSTM, the expected
 * values computed by hand (Python's math module) from
 *   z = x Wx + h Wh + b, i = s(z0), f = s(z1), g = tanh(z2), o = s(z3),
 *   c = f c + i g, h = o tanh(c). */
static void test_lstm_gate_order(void **state) {
  (void)state;
  const float x[2] = {1.0f, -2.0f}, Wx[4] = {0.1f, 0.2f, 0.3f, 0.4f}, Wh[4] = {0.5f, 0.6f, 0.7f, 0.8f};
  float b[4], out[2], cache[16], last;
  assert_true(fm__lstm_cache_floats(1, 2, 1) <= 16);
  fm__lstm_bias_init(b, 1);
  assert_true(b[0] == 0.0f && b[1] == 1.0f && b[2] == 0.0f && b[3] == 0.0f); /* unit_forget_bias */
  fm__lstm_forward(out, cache, x, NULL, Wx, Wh, b, 1, 2, 1, 1, 1);
  assert_close(out[0], 0.09085193946699145, 1e-6, 0, "h0", 0);
  assert_close(out[1], -0.040700950510951, 1e-6, 0, "h1", 1);
  assert_close(fm__lstm_view(cache, 1, 2, 1).c_last[0], -0.12558867295650214, 1e-6, 0, "c1", 1);
  fm__lstm_forward(&last, cache, x, NULL, Wx, Wh, b, 1, 2, 1, 1, 0);
  assert_true(last == out[1]);
  const uint8_t mask[2] = {1, 0}; /* the masked second step carries h0 */
  fm__lstm_forward(out, cache, x, mask, Wx, Wh, b, 1, 2, 1, 1, 1);
  assert_true(out[1] == out[0]);
  assert_close(out[0], 0.09085193946699145, 1e-6, 0, "h0 masked", 0);
}

static void test_orthogonal_init(void **state) {
  (void)state;
  static const size_t shapes[][2] = {{16, 64}, {8, 8}, {20, 6}, {1, 4}};
  for (size_t k = 0; k < 4; k++) {
    size_t rows = shapes[k][0], cols = shapes[k][1], n = rows < cols ? rows : cols;
    float *W = alloc_f(rows * cols), *W2 = alloc_f(rows * cols);
    double *work = malloc(fm__orthogonal_work_doubles(rows, cols) * sizeof *work);
    assert_non_null(work);
    assert_int_equal(fm__orthogonal_init(W, work, rows, cols, 5, 3), 0);
    /* Gram matrix of the short side: W W^T (rows < cols) or W^T W */
    for (size_t a = 0; a < n; a++)
      for (size_t c = 0; c < n; c++) {
        double s = 0;
        for (size_t l = 0; l < (rows < cols ? cols : rows); l++)
          s += rows < cols ? (double)W[a * cols + l] * W[c * cols + l] : (double)W[l * cols + a] * W[l * cols + c];
        assert_close(s, a == c, 0, 1e-5, "gram", a * n + c);
      }
    assert_int_equal(fm__orthogonal_init(W2, work, rows, cols, 5, 3), 0);
    assert_memory_equal(W, W2, rows * cols * sizeof *W); /* a pure function of (seed, tensor) */
    assert_int_equal(fm__orthogonal_init(W2, work, rows, cols, 5, 4), 0);
    assert_memory_not_equal(W, W2, rows * cols * sizeof *W);
    free(W), free(W2), free(work);
  }
}

/* ---- masked per-step cross-entropy and accuracy ------------------------------------------------ */

typedef struct xent_ctx {
  float *logits, *probs;
  const int32_t *y;
  const uint8_t *mask;
  size_t M, C;
} xent_ctx;

static double xent_loss(void *p) {
  xent_ctx *c = p;
  size_t v;
  return fm__seq_xent_forward(c->probs, &v, c->logits, c->y, c->mask, c->M, c->C);
}

static void test_seq_xent(void **state) {
  (void)state;
  enum { M = 8, C = 5 };
  const int32_t y[M] = {1, 4, -7, 0, 2, 99, 3, 3}; /* masked labels may be anything */
  const uint8_t mask[M] = {1, 1, 0, 1, 1, 0, 1, 1};
  float logits[M * C], probs[M * C], d[M * C];
  fill_uniform(logits, M * C, -3, 3, 30);
  size_t valid = 0;
  float loss = fm__seq_xent_forward(probs, &valid, logits, y, mask, M, C);
  assert_int_equal(valid, 6);
  double want = 0;
  for (size_t m = 0; m < M; m++) {
    if (!mask[m]) continue;
    double s = 0;
    for (size_t c = 0; c < C; c++) s += exp((double)logits[m * C + c]);
    want += log(s) - logits[m * C + y[m]];
  }
  assert_close(loss, want / 6, 1e-6, 0, "masked mean", 0); /* divided by the valid count, not M */
  fm__seq_xent_backward(d, probs, y, mask, M, C);
  xent_ctx c = {logits, probs, y, mask, M, C};
  fd_check_f(logits, M * C, d, xent_loss, &c, 1e-2f, 2e-3, 2e-5, "dlogits");
  for (size_t k = 0; k < C; k++) assert_true(d[2 * C + k] == 0.0f && d[5 * C + k] == 0.0f);
  const uint8_t none[M] = {0};
  assert_true(fm__seq_xent_forward(probs, &valid, logits, y, none, M, C) == 0.0f && valid == 0);
  fm__seq_xent_backward(d, probs, y, none, M, C);
  for (size_t k = 0; k < M * C; k++) assert_true(d[k] == 0.0f);
  const int32_t y2[M] = {1, 4, 0, 0, 2, 1, 3, 3}; /* no mask: every label read */
  float l_all = fm__seq_xent_forward(probs, &valid, logits, y2, NULL, M, C);
  assert_int_equal(valid, M);
  assert_true(isfinite(l_all));
}

static void test_seq_accuracy(void **state) {
  (void)state;
  /* 5 positions, 3 classes: argmax 1, 0 (tie 0/2: the first), 2, 1 (masked), 0 (three-way tie) */
  const float s[15] = {0, 2, 1, 3, 1, 3, -1, -2, 5, 0, 9, 0, 7, 7, 7};
  const int32_t y[5] = {1, 0, 2, 2, 0};
  const uint8_t mask[5] = {1, 1, 1, 0, 1};
  size_t correct, valid;
  fm__seq_accuracy(&correct, &valid, s, y, mask, 5, 3);
  assert_int_equal(valid, 4);
  assert_int_equal(correct, 4); /* all valid ones: ties go to the first maximum, as tf.argmax */
  fm__seq_accuracy(&correct, &valid, s, y, NULL, 5, 3);
  assert_int_equal(valid, 5);
  assert_int_equal(correct, 4); /* position 3 (argmax 1, label 2) now counts, and is wrong */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv2d_valid),
      cmocka_unit_test(test_conv2d_valid_equals_same_for_1x1),
      cmocka_unit_test(test_sigmoid_tanh),
      cmocka_unit_test(test_mse),
      cmocka_unit_test(test_dropout_fixed_mask_gradient),
      cmocka_unit_test(test_dropout_mask_is_the_rng_stream),
      cmocka_unit_test(test_dropout_statistics_and_keys),
      cmocka_unit_test(test_embedding),
      cmocka_unit_test(test_lstm_bptt),
      cmocka_unit_test(test_lstm_gate_order),
      cmocka_unit_test(test_orthogonal_init),
      cmocka_unit_test(test_seq_xent),
      cmocka_unit_test(test_seq_accuracy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
