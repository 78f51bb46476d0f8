/* tests/unit/test_conv_layers.c — the private conv2d and 2x2 max-pool kernels
 * of src/model/conv.c (and Glorot init with explicit fans) against naive
 * loops in double precision and against central finite differences.
 *
 * The kernels are hidden inside libfedmpi, so this file compiles
 * src/model/layers.c and src/model/conv.c into the test itself. The im2col
 * budget is a variable here (FM__CONV_COL_BUDGET is defined before the
 * include), so the same shapes run as one chunk, one example per chunk, and
 * uneven chunks with a remainder. Shapes include non-square images, Cin > 1,
 * even kernels (TF's asymmetric 'same' padding), kernels larger than the
 * image and odd sizes for pooling. Every float comparison uses a tolerance
 * scaled by the magnitude of the terms, so the result does not depend on
 * which BLAS kernel runs (OPENBLAS_CORETYPE) or how it blocks.
 *
 * Deliberately not covered here: the CNN model (see test_cnn.c) and the
 * dense/ReLU/softmax kernels (test_model_layers.c). */
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
#include "conv_backend.h"
#include "fedmpi/rng.h"

static void fill_uniform(float *a, size_t n, float lo, float hi, uint64_t stream) {
  fm_rng r;
  fm_rng_init(&r, 4321, 0, stream, FM_RNG_USER);
  for (size_t i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)fm_rng_uniform(&r);
}

static float *alloc_f(size_t n) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  assert_non_null(p);
  return p;
}

static void assert_close(double got, double want, double rtol, double atol, const char *what, size_t i) {
  double err = fabs(got - want), tol = atol + rtol * fabs(want);
  if (!(err <= tol)) fail_msg("%s[%zu]: got %.9g, want %.9g (|err| %.3g > tol %.3g)", what, i, got, want, err, tol);
}

/* ---- conv2d --------------------------------------------------------------------------- */

typedef struct conv_case {
  size_t N, H, W, IC, KH, KW, OC;
} conv_case;

static const conv_case conv_cases[] = {
    {1, 1, 1, 1, 1, 1, 1},    /* degenerate */
    {2, 5, 7, 3, 3, 3, 4},    /* non-square, Cin > 1 */
    {3, 8, 8, 1, 5, 5, 4},    /* the test CNN's first layer */
    {2, 6, 5, 2, 4, 2, 3},    /* even kernels: padding 1 before, 2 after (rows) */
    {2, 3, 2, 2, 5, 5, 3},    /* kernel larger than the image */
    {3, 7, 4, 5, 1, 3, 2},    /* 1 x 3 kernel */
    {4, 14, 14, 8, 5, 5, 16}, /* blocked sgemm paths */
    {2, 28, 28, 1, 5, 5, 8},  /* EMNIST-sized first layer */
};

/* Budgets for the im2col scratch: library default (one chunk for these
 * shapes), one example per chunk, and two examples per chunk. */
static size_t budgets_for(const conv_case *c, size_t out[3]) {
  size_t per = c->H * c->W * c->KH * c->KW * c->IC;
  out[0] = (size_t)1 << 15;
  out[1] = 1;
  out[2] = 2 * per;
  return 3;
}

/* in-image source of output (h, w) and tap (kh, kw), TF 'same' padding */
static int tap(const conv_case *c, size_t h, size_t w, size_t kh, size_t kw, size_t *ih, size_t *iw) {
  long y = (long)h + (long)kh - (long)((c->KH - 1) / 2), x = (long)w + (long)kw - (long)((c->KW - 1) / 2);
  if (y < 0 || x < 0 || y >= (long)c->H || x >= (long)c->W) return 0;
  *ih = (size_t)y;
  *iw = (size_t)x;
  return 1;
}

/* naive double out and sum of |terms| per output */
static void ref_conv(const conv_case *c, const float *in, const float *K, const float *b, double *out, double *mag) {
  for (size_t n = 0; n < c->N; n++)
    for (size_t h = 0; h < c->H; h++)
      for (size_t w = 0; w < c->W; w++)
        for (size_t o = 0; o < c->OC; o++) {
          double s = b[o], m = fabs(b[o]);
          for (size_t kh = 0; kh < c->KH; kh++)
            for (size_t kw = 0; kw < c->KW; kw++) {
              size_t ih, iw;
              if (!tap(c, h, w, kh, kw, &ih, &iw)) continue;
              for (size_t i = 0; i < c->IC; i++) {
                double t = (double)in[((n * c->H + ih) * c->W + iw) * c->IC + i] *
                           K[((kh * c->KW + kw) * c->IC + i) * c->OC + o];
                s += t;
                m += fabs(t);
              }
            }
          size_t idx = ((n * c->H + h) * c->W + w) * c->OC + o;
          out[idx] = s;
          mag[idx] = m;
        }
}

/* naive double gradients: dK, db (starting from dK0, db0) and din */
static void ref_conv_backward(const conv_case *c, const float *in, const float *K, const float *dout, const float *dK0,
                              const float *db0, double *dK, double *db, double *din, double *dKmag, double *dinmag) {
  size_t nK = c->KH * c->KW * c->IC * c->OC, nin = c->N * c->H * c->W * c->IC;
  for (size_t i = 0; i < nK; i++) dK[i] = dK0[i], dKmag[i] = fabs(dK0[i]);
  for (size_t o = 0; o < c->OC; o++) db[o] = db0[o];
  for (size_t i = 0; i < nin; i++) din[i] = 0, dinmag[i] = 0;
  for (size_t n = 0; n < c->N; n++)
    for (size_t h = 0; h < c->H; h++)
      for (size_t w = 0; w < c->W; w++)
        for (size_t o = 0; o < c->OC; o++) {
          double g = dout[((n * c->H + h) * c->W + w) * c->OC + o];
          db[o] += g;
          for (size_t kh = 0; kh < c->KH; kh++)
            for (size_t kw = 0; kw < c->KW; kw++) {
              size_t ih, iw;
              if (!tap(c, h, w, kh, kw, &ih, &iw)) continue;
              for (size_t i = 0; i < c->IC; i++) {
                size_t xi = ((n * c->H + ih) * c->W + iw) * c->IC + i, ki = ((kh * c->KW + kw) * c->IC + i) * c->OC + o;
                dK[ki] += g * in[xi];
                dKmag[ki] += fabs(g * in[xi]);
                din[xi] += g * K[ki];
                dinmag[xi] += fabs(g * K[ki]);
              }
            }
        }
}

static void test_conv2d_forward_matches_naive(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof conv_cases / sizeof conv_cases[0]; k++) {
    const conv_case *c = &conv_cases[k];
    size_t nin = c->N * c->H * c->W * c->IC, nK = c->KH * c->KW * c->IC * c->OC, nout = c->N * c->H * c->W * c->OC;
    float *in = alloc_f(nin), *K = alloc_f(nK), *b = alloc_f(c->OC), *out = alloc_f(nout);
    double *ref = malloc(nout * sizeof *ref), *mag = malloc(nout * sizeof *mag);
    fill_uniform(in, nin, -1, 1, 10 * k + 1);
    fill_uniform(K, nK, -1, 1, 10 * k + 2);
    fill_uniform(b, c->OC, -1, 1, 10 * k + 3);
    ref_conv(c, in, K, b, ref, mag);
    size_t budgets[3], nb = budgets_for(c, budgets);
    for (size_t bi = 0; bi < nb + FM_TEST_BACKENDS - 1; bi++) {
      use_dnnl(bi == nb); /* the im2col budgets, then oneDNN */
      test_budget = budgets[bi < nb ? bi : 0];
      float *col = alloc_f(fm__conv2d_col_floats(c->N, c->H, c->W, c->IC, c->KH, c->KW));
      for (size_t i = 0; i < nout; i++) out[i] = NAN; /* overwritten, not accumulated */
      fm__conv2d_forward(out, col, in, K, b, c->N, c->H, c->W, c->IC, c->KH, c->KW, c->OC);
      for (size_t i = 0; i < nout; i++) assert_close(out[i], ref[i], 0, 1e-6 * (mag[i] + 1), "conv out", i);
      free(col);
    }
    use_dnnl(1);
    test_budget = (size_t)1 << 15;
    free(in), free(K), free(b), free(out), free(ref), free(mag);
  }
}

static void test_conv2d_backward_matches_naive(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof conv_cases / sizeof conv_cases[0]; k++) {
    const conv_case *c = &conv_cases[k];
    size_t nin = c->N * c->H * c->W * c->IC, nK = c->KH * c->KW * c->IC * c->OC, nout = c->N * c->H * c->W * c->OC;
    float *in = alloc_f(nin), *K = alloc_f(nK), *dout = alloc_f(nout), *dK0 = alloc_f(nK), *db0 = alloc_f(c->OC);
    float *dK = alloc_f(nK), *db = alloc_f(c->OC), *din = alloc_f(nin), *dK2 = alloc_f(nK), *db2 = alloc_f(c->OC);
    double *rdK = malloc(nK * sizeof *rdK), *rdb = malloc(c->OC * sizeof *rdb), *rdin = malloc(nin * sizeof *rdin);
    double *mK = malloc(nK * sizeof *mK), *min = malloc(nin * sizeof *min);
    fill_uniform(in, nin, -1, 1, 10 * k + 4);
    fill_uniform(K, nK, -1, 1, 10 * k + 5);
    fill_uniform(dout, nout, -1, 1, 10 * k + 6);
    fill_uniform(dK0, nK, -1, 1, 10 * k + 7); /* non-zero start: backward accumulates */
    fill_uniform(db0, c->OC, -1, 1, 10 * k + 8);
    ref_conv_backward(c, in, K, dout, dK0, db0, rdK, rdb, rdin, mK, min);
    size_t budgets[3], nb = budgets_for(c, budgets);
    for (size_t bi = 0; bi < nb + FM_TEST_BACKENDS - 1; bi++) {
      use_dnnl(bi == nb); /* the im2col budgets, then oneDNN */
      test_budget = budgets[bi < nb ? bi : 0];
      float *col = alloc_f(fm__conv2d_col_floats(c->N, c->H, c->W, c->IC, c->KH, c->KW));
      memcpy(dK, dK0, nK * sizeof *dK);
      memcpy(db, db0, c->OC * sizeof *db);
      for (size_t i = 0; i < nin; i++) din[i] = NAN; /* din is overwritten */
      fm__conv2d_backward(din, dK, db, col, dout, in, K, c->N, c->H, c->W, c->IC, c->KH, c->KW, c->OC);
      for (size_t i = 0; i < nK; i++) assert_close(dK[i], rdK[i], 0, 1e-6 * (mK[i] + 1), "dK", i);
      for (size_t o = 0; o < c->OC; o++)
        assert_close(db[o], rdb[o], 0, 1e-6 * (double)(c->N * c->H * c->W + 1), "db", o);
      for (size_t i = 0; i < nin; i++) assert_close(din[i], rdin[i], 0, 1e-6 * (min[i] + 1), "din", i);
      /* din == NULL: the same parameter gradients */
      memcpy(dK2, dK0, nK * sizeof *dK2);
      memcpy(db2, db0, c->OC * sizeof *db2);
      fm__conv2d_backward(NULL, dK2, db2, col, dout, in, K, c->N, c->H, c->W, c->IC, c->KH, c->KW, c->OC);
      for (size_t i = 0; i < nK; i++) assert_close(dK2[i], dK[i], 0, 1e-6 * (mK[i] + 1), "dK (din NULL)", i);
      for (size_t o = 0; o < c->OC; o++)
        assert_close(db2[o], db[o], 0, 1e-6 * (double)(c->N * c->H * c->W + 1), "db (din NULL)", o);
      free(col);
    }
    use_dnnl(1);
    test_budget = (size_t)1 << 15;
    free(in), free(K), free(dout), free(dK0), free(db0), free(dK), free(db), free(din), free(dK2), free(db2);
    free(rdK), free(rdb), free(rdin), free(mK), free(min);
  }
}

/* L = sum G * conv(in, K, b) is linear in each of in, K and b, so central
 * differences in float are exact up to rounding whatever the step; a large
 * step (0.25) keeps that rounding small next to the gradient. */
static double conv_objective(const conv_case *c, const float *G, float *out, float *col, const float *in,
                             const float *K, const float *b, double *absum) {
  size_t nout = c->N * c->H * c->W * c->OC;
  fm__conv2d_forward(out, col, in, K, b, c->N, c->H, c->W, c->IC, c->KH, c->KW, c->OC);
  double L = 0, S = 0;
  for (size_t i = 0; i < nout; i++) {
    L += (double)G[i] * out[i];
    S += fabs((double)G[i] * out[i]);
  }
  if (absum) *absum = S;
  return L;
}

static void check_fd(float *p, size_t n, const float *grad, const conv_case *c, const float *G, float *out, float *col,
                     const float *in, const float *K, const float *b, const char *what) {
  const float eps = 0.25f;
  double S;
  conv_objective(c, G, out, col, in, K, b, &S);
  /* each output carries a few float roundings of its terms: bound the noise
   * of L by 1e-6 * sum |G * out| (with the terms' magnitudes about |out|) */
  double noise = 1e-6 * (S + 1) * (double)(c->KH * c->KW * c->IC > 16 ? 4 : 1);
  size_t stride = n > 200 ? n / 97 : 1; /* a spread-out subset of large tensors */
  for (size_t j = 0; j < n; j += stride) {
    float p0 = p[j];
    p[j] = p0 + eps;
    double lp = conv_objective(c, G, out, col, in, K, b, NULL);
    p[j] = p0 - eps;
    double lm = conv_objective(c, G, out, col, in, K, b, NULL);
    p[j] = p0;
    double step = (double)(p0 + eps) - (double)(p0 - eps);
    double fd = (lp - lm) / step;
    double tol = 1e-4 * fabs(fd) + 2 * noise / step;
    if (!(fabs(grad[j] - fd) <= tol))
      fail_msg("%s[%zu]: analytic %.8g vs float FD %.8g (tol %.3g)", what, j, grad[j], fd, tol);
  }
}

static void test_conv2d_backward_finite_differences(void **state) {
  (void)state;
  for (int be = 0; be < FM_TEST_BACKENDS; be++)
  for (size_t k = 0; k < sizeof conv_cases / sizeof conv_cases[0]; k++) {
    use_dnnl(be == 0);
    const conv_case *c = &conv_cases[k];
    size_t nin = c->N * c->H * c->W * c->IC, nK = c->KH * c->KW * c->IC * c->OC, nout = c->N * c->H * c->W * c->OC;
    float *in = alloc_f(nin), *K = alloc_f(nK), *b = alloc_f(c->OC), *G = alloc_f(nout), *out = alloc_f(nout);
    float *dK = calloc(nK, sizeof *dK), *db = calloc(c->OC, sizeof *db), *din = alloc_f(nin);
    float *col = alloc_f(fm__conv2d_col_floats(c->N, c->H, c->W, c->IC, c->KH, c->KW));
    fill_uniform(in, nin, -1, 1, 10 * k + 11);
    fill_uniform(K, nK, -0.5f, 0.5f, 10 * k + 12);
    fill_uniform(b, c->OC, -0.5f, 0.5f, 10 * k + 13);
    fill_uniform(G, nout, -1, 1, 10 * k + 14);
    fm__conv2d_backward(din, dK, db, col, G, in, K, c->N, c->H, c->W, c->IC, c->KH, c->KW, c->OC);
    check_fd(K, nK, dK, c, G, out, col, in, K, b, "dK");
    check_fd(b, c->OC, db, c, G, out, col, in, K, b, "db");
    check_fd(in, nin, din, c, G, out, col, in, K, b, "din");
    free(in), free(K), free(b), free(G), free(out), free(dK), free(db), free(din), free(col);
  }
  use_dnnl(1);
}

/* oneDNN really runs the convolutions of the usual shapes (when the library
 * has it), and its results are the same bits run after run and whether the
 * conv runs on the main thread or inside a parallel region of 2 threads: the
 * property that keeps layouts bit-identical. */
static void test_conv2d_dnnl_deterministic(void **state) {
  (void)state;
  const conv_case cs[] = {{4, 14, 14, 8, 5, 5, 16}, {3, 12, 12, 32, 3, 3, 64}};
  use_dnnl(1);
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
    const conv_case *c = &cs[k];
    size_t nin = c->N * c->H * c->W * c->IC, nK = c->KH * c->KW * c->IC * c->OC, nout = c->N * c->H * c->W * c->OC;
    float *in = alloc_f(nin), *K = alloc_f(nK), *b = alloc_f(c->OC), *G = alloc_f(nout);
    float *col = alloc_f(fm__conv2d_col_floats(c->N, c->H, c->W, c->IC, c->KH, c->KW));
    float *out[3], *dK[3], *db[3], *din[3];
    fill_uniform(in, nin, -1, 1, 91), fill_uniform(K, nK, -1, 1, 92), fill_uniform(b, c->OC, -1, 1, 93);
    fill_uniform(G, nout, -1, 1, 94);
    for (int r = 0; r < 3; r++) {
      out[r] = alloc_f(nout), din[r] = alloc_f(nin);
      dK[r] = calloc(nK, sizeof(float)), db[r] = calloc(c->OC, sizeof(float));
      assert_non_null(dK[r]), assert_non_null(db[r]);
    }
    int before = dnnl_calls();
    for (int r = 0; r < 2; r++) { /* twice on this thread */
      fm__conv2d_forward(out[r], col, in, K, b, c->N, c->H, c->W, c->IC, c->KH, c->KW, c->OC);
      fm__conv2d_backward(din[r], dK[r], db[r], col, G, in, K, c->N, c->H, c->W, c->IC, c->KH, c->KW, c->OC);
    }
    if (dnnl_expected()) assert_int_equal(dnnl_calls() - before, 4);
#pragma omp parallel num_threads(2)
    {
      float *mycol = malloc(fm__conv2d_col_floats(c->N, c->H, c->W, c->IC, c->KH, c->KW) * sizeof(float));
#pragma omp for schedule(static)
      for (int t = 0; t < 2; t++) {
        if (t == 1 && mycol) { /* the second thread: the same conv, in a parallel region */
          fm__conv2d_forward(out[2], mycol, in, K, b, c->N, c->H, c->W, c->IC, c->KH, c->KW, c->OC);
          fm__conv2d_backward(din[2], dK[2], db[2], mycol, G, in, K, c->N, c->H, c->W, c->IC, c->KH, c->KW, c->OC);
        }
      }
      free(mycol);
    }
    for (int r = 1; r < 3; r++) {
      assert_memory_equal(out[r], out[0], nout * sizeof(float));
      assert_memory_equal(din[r], din[0], nin * sizeof(float));
      assert_memory_equal(dK[r], dK[0], nK * sizeof(float));
      assert_memory_equal(db[r], db[0], c->OC * sizeof(float));
    }
    for (int r = 0; r < 3; r++) free(out[r]), free(dK[r]), free(db[r]), free(din[r]);
    free(in), free(K), free(b), free(G), free(col);
  }
}

/* The chunk is a pure function of the geometry and never exceeds the
 * budget unless one example alone does; col_floats grows with N up to it. */
static void test_conv2d_chunk(void **state) {
  (void)state;
  assert_int_equal(fm__conv2d_chunk(28, 28, 1, 5, 5), 1);  /* 19,600 floats per example */
  assert_int_equal(fm__conv2d_chunk(14, 14, 32, 5, 5), 1); /* 156,800: over the budget alone */
  assert_int_equal(fm__conv2d_chunk(8, 8, 1, 5, 5), 20);   /* 1,600 */
  assert_int_equal(fm__conv2d_col_floats(32, 14, 14, 32, 5, 5), 156800);
  assert_int_equal(fm__conv2d_col_floats(3, 8, 8, 1, 5, 5), 3 * 1600);
  assert_int_equal(fm__conv2d_col_floats(100, 8, 8, 1, 5, 5), 20 * 1600);
  size_t prev = 0;
  for (size_t n = 1; n < 50; n++) {
    size_t f = fm__conv2d_col_floats(n, 8, 8, 1, 5, 5);
    assert_true(f >= prev);
    prev = f;
  }
}

/* ---- max-pool -------------------------------------------------------------------------- */

typedef struct pool_case {
  size_t N, H, W, C;
} pool_case;

static const pool_case pool_cases[] = {
    {1, 1, 1, 1}, {2, 2, 2, 3}, {2, 3, 5, 2}, {3, 7, 7, 4}, {2, 28, 28, 8}, {1, 14, 14, 16}, {2, 5, 4, 1}, {1, 1, 6, 2},
};

/* naive: max and first argmax (row-major window order) per output */
static void ref_pool(const pool_case *c, const float *in, float *out, int32_t *arg) {
  size_t HO = (c->H + 1) / 2, WO = (c->W + 1) / 2;
  for (size_t n = 0; n < c->N; n++)
    for (size_t ho = 0; ho < HO; ho++)
      for (size_t wo = 0; wo < WO; wo++)
        for (size_t ch = 0; ch < c->C; ch++) {
          double best = -INFINITY;
          long bi = -1;
          for (size_t h = 2 * ho; h < 2 * ho + 2; h++)
            for (size_t w = 2 * wo; w < 2 * wo + 2; w++) {
              if (h >= c->H || w >= c->W) continue; /* 'same' padding: after the image */
              size_t i = (h * c->W + w) * c->C + ch;
              if (in[n * c->H * c->W * c->C + i] > best) best = in[n * c->H * c->W * c->C + i], bi = (long)i;
            }
          size_t o = ((n * HO + ho) * WO + wo) * c->C + ch;
          out[o] = (float)best;
          arg[o] = (int32_t)bi;
        }
}

static void test_maxpool_forward_matches_naive(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof pool_cases / sizeof pool_cases[0]; k++) {
    const pool_case *c = &pool_cases[k];
    size_t nin = c->N * c->H * c->W * c->C, nout = c->N * ((c->H + 1) / 2) * ((c->W + 1) / 2) * c->C;
    float *in = alloc_f(nin), *out = alloc_f(nout), *rout = alloc_f(nout);
    int32_t *arg = malloc(nout * sizeof *arg), *rarg = malloc(nout * sizeof *rarg);
    fill_uniform(in, nin, -1, 1, 100 + k);
    /* ties: quantise half of the examples' values to a coarse grid */
    for (size_t i = 0; i < nin; i += 2) in[i] = roundf(in[i] * 2.0f) / 2.0f;
    ref_pool(c, in, rout, rarg);
    for (size_t i = 0; i < nout; i++) out[i] = NAN, arg[i] = -7;
    fm__maxpool2x2_forward(out, arg, in, c->N, c->H, c->W, c->C);
    assert_memory_equal(out, rout, nout * sizeof *out); /* a max is exact */
    assert_memory_equal(arg, rarg, nout * sizeof *arg);
    free(in), free(out), free(rout), free(arg), free(rarg);
  }
}

static void test_maxpool_ties_and_edges(void **state) {
  (void)state;
  /* 3 x 3 x 1: windows {0,1,3,4}, {2,5}, {6,7}, {8}; all-equal windows pick the first */
  const float in[9] = {0, 0, 5, 0, 0, 5, -1, -2, 4};
  float out[4];
  int32_t arg[4];
  fm__maxpool2x2_forward(out, arg, in, 1, 3, 3, 1);
  const float want[4] = {0, 5, -1, 4};
  const int32_t wantarg[4] = {0, 2, 6, 8};
  assert_memory_equal(out, want, sizeof out);
  assert_memory_equal(arg, wantarg, sizeof arg);
  /* the gradient goes to those pixels only, whatever din held before */
  float dout[4] = {1, 2, 3, 4}, din[9];
  for (int i = 0; i < 9; i++) din[i] = NAN;
  fm__maxpool2x2_backward(din, dout, arg, 1, 3, 3, 1);
  const float wantd[9] = {1, 0, 2, 0, 0, 0, 3, 0, 4};
  assert_memory_equal(din, wantd, sizeof din);
  /* the argmax is per channel: 1 x 2 x 2 with channels (a, b) */
  const float in2[8] = {1, 9, 3, 2, 2, 8, 0, 9};
  float out2[2];
  int32_t arg2[2];
  fm__maxpool2x2_forward(out2, arg2, in2, 1, 2, 2, 2);
  assert_true(out2[0] == 3 && out2[1] == 9);
  assert_int_equal(arg2[0], 2);
  assert_int_equal(arg2[1], 1); /* 9 at pixel 0 and pixel 3: the first */
}

static void test_maxpool_backward(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof pool_cases / sizeof pool_cases[0]; k++) {
    const pool_case *c = &pool_cases[k];
    size_t nin = c->N * c->H * c->W * c->C, nout = c->N * ((c->H + 1) / 2) * ((c->W + 1) / 2) * c->C;
    size_t in_per = c->H * c->W * c->C, out_per = nout / c->N;
    float *in = alloc_f(nin), *out = alloc_f(nout), *G = alloc_f(nout), *din = alloc_f(nin);
    int32_t *arg = malloc(nout * sizeof *arg);
    fill_uniform(in, nin, -1, 1, 200 + k);
    fill_uniform(G, nout, -1, 1, 300 + k);
    fm__maxpool2x2_forward(out, arg, in, c->N, c->H, c->W, c->C);
    for (size_t i = 0; i < nin; i++) din[i] = NAN;
    fm__maxpool2x2_backward(din, G, arg, c->N, c->H, c->W, c->C);
    /* analytical: din = G at the argmax (from the naive forward), 0 elsewhere */
    float *rout = alloc_f(nout);
    int32_t *rarg = malloc(nout * sizeof *rarg);
    ref_pool(c, in, rout, rarg);
    float *rdin = calloc(nin, sizeof *rdin);
    for (size_t i = 0; i < nout; i++) rdin[(i / out_per) * in_per + (size_t)rarg[i]] += G[i];
    assert_memory_equal(din, rdin, nin * sizeof *din);
    /* central differences of L = sum G * pool(in), skipping inputs whose
     * window's top two values are within the step (the argmax could move) */
    const float eps = 1e-3f;
    size_t checked = 0;
    for (size_t j = 0; j < nin; j++) {
      float x0 = in[j];
      in[j] = x0 + eps;
      fm__maxpool2x2_forward(out, arg, in, c->N, c->H, c->W, c->C);
      double lp = 0;
      for (size_t i = 0; i < nout; i++) lp += (double)G[i] * out[i];
      in[j] = x0 - eps;
      fm__maxpool2x2_forward(out, arg, in, c->N, c->H, c->W, c->C);
      double lm = 0;
      for (size_t i = 0; i < nout; i++) lm += (double)G[i] * out[i];
      in[j] = x0;
      double fd = (lp - lm) / ((double)(x0 + eps) - (double)(x0 - eps));
      /* fd is 0, G (max stays put), or a mix when the max switches */
      if (fabs(fd - din[j]) <= 1e-3 * (1 + fabs(din[j]))) {
        checked++;
        continue;
      }
      /* only acceptable if another pixel of the window is within 2 eps */
      size_t n = j / in_per, p = (j % in_per) / c->C, ch = j % c->C, h = p / c->W, w = p % c->W;
      int close = 0;
      for (size_t hh = h / 2 * 2; hh < h / 2 * 2 + 2 && hh < c->H; hh++)
        for (size_t ww = w / 2 * 2; ww < w / 2 * 2 + 2 && ww < c->W; ww++) {
          size_t q = n * in_per + (hh * c->W + ww) * c->C + ch;
          if (q != j && fabsf(in[q] - x0) <= 2 * eps) close = 1;
        }
      if (!close) fail_msg("pool case %zu: din[%zu] = %.8g vs float FD %.8g", k, j, din[j], fd);
    }
    assert_true(checked * 10 >= nin * 9);
    free(in), free(out), free(G), free(din), free(arg), free(rout), free(rarg), free(rdin);
  }
}

/* ---- init ------------------------------------------------------------------------------- */

static void test_glorot_uniform_n(void **state) {
  (void)state;
  /* a conv kernel (5, 5, 2, 3): Keras fans 50 and 75, 150 values */
  float a[150], b[150], d[12];
  fm__glorot_uniform_n(a, 150, 50, 75, 9, 2);
  fm__glorot_uniform_n(b, 150, 50, 75, 9, 2);
  assert_memory_equal(a, b, sizeof a);
  double limit = sqrt(6.0 / 125.0);
  fm_rng r;
  fm_rng_init(&r, 9, 0, 2, FM_RNG_INIT);
  for (size_t i = 0; i < 150; i++) {
    assert_true(fabs(a[i]) <= limit);
    assert_true(a[i] == (float)((2.0 * fm_rng_uniform(&r) - 1.0) * limit));
  }
  /* the dense form is the special case numel = fan_in * fan_out */
  float c[12];
  fm__glorot_uniform(c, 3, 4, 9, 5);
  fm__glorot_uniform_n(d, 12, 3, 4, 9, 5);
  assert_memory_equal(c, d, sizeof c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv2d_forward_matches_naive),
      cmocka_unit_test(test_conv2d_backward_matches_naive),
      cmocka_unit_test(test_conv2d_backward_finite_differences),
      cmocka_unit_test(test_conv2d_chunk),
      cmocka_unit_test(test_conv2d_dnnl_deterministic),
      cmocka_unit_test(test_maxpool_forward_matches_naive),
      cmocka_unit_test(test_maxpool_ties_and_edges),
      cmocka_unit_test(test_maxpool_backward),
      cmocka_unit_test(test_glorot_uniform_n),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
