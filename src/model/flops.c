/* src/model/flops.c — performance accounting for the built-in models: the
 * floating-point operations a training step costs per example, counted from
 * a model's layout and input spec, and a timer of this machine's
 * single-threaded cblas_sgemm (the BLAS the models run on), so that
 * `fedmpi bench` can say what fraction of the machine a round uses.
 *
 * The count (docs/performance.md): every dense or conv layer costs 2 flops
 * per multiply-add. Forward: dense (in, out) 2*in*out per example; conv
 * (K, K, in, out) over an H x W output 2*K*K*in*out*H*W. Backward: the weight
 * gradient costs the same again, and the input gradient the same again for
 * every layer but the first (the models never compute the gradient of the
 * input). Training = forward + backward = 3 x forward - first layer. Biases,
 * ReLU, pooling, softmax, im2col and the optimizer step are not counted: they
 * are O(activations) or O(parameters), not O(multiply-adds), and counting
 * only the GEMM work is what makes the figure comparable with SGEMM's.
 *
 * The built-in models are layer stacks, counted from their layers
 * (fm__stack_flops: each layer's shapes, and which input gradients the plan
 * computes). What it deliberately does not do: guess the cost of other
 * models. Dense layers are recognised in any model whose trainable tensors
 * are all "<name>/kernel" (2-D) and "<name>/bias"; anything else is
 * FM_ERR_UNSUPPORTED. The SGEMM timer does not change BLAS threading: call
 * it after fm_runtime_setup_threads (single-threaded BLAS) to time one core. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "fedmpi/model.h"
#include "internal.h"
#include "stack.h"

static int fm__ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

int fm_model_flops_per_example(const fm_model *m, fm_model_flops *out) {
  FM_CHECK(m && out, FM_ERR_INVALID_ARG, "fm_model_flops_per_example: NULL argument");
  memset(out, 0, sizeof *out);
  if (fm__stack_flops(m, out)) { /* every built-in model: counted from its layers */
    FM_CHECK(out->forward > 0, FM_ERR_UNSUPPORTED, "model '%s' has no dense or conv layer to count",
             fm_model_type(m));
    return FM_OK;
  }
  const fm_layout *l = fm_model_layout(m);
  const char *type = fm_model_type(m);
  double first = -1.0; /* forward flops of the first layer */
  for (size_t i = 0; i < fm_layout_num_tensors(l); i++) {
    const fm_tensor_info *t = fm_layout_tensor(l, i);
    if (!t->trainable || fm__ends_with(t->name, "/bias")) continue;
    FM_CHECK(fm__ends_with(t->name, "/kernel"), FM_ERR_UNSUPPORTED,
             "model '%s': cannot count the flops of tensor '%s' (only dense and conv kernels are known)", type,
             t->name);
    FM_CHECK(t->ndim == 2, FM_ERR_UNSUPPORTED, "model '%s': cannot count the flops of the %d-D kernel '%s'", type,
             t->ndim, t->name);
    double f = 2.0 * (double)t->shape[0] * (double)t->shape[1];
    if (first < 0) first = f;
    out->forward += f;
  }
  FM_CHECK(first >= 0, FM_ERR_UNSUPPORTED, "model '%s' has no dense or conv kernel to count", type);
  out->backward = 2.0 * out->forward - first;
  out->train = out->forward + out->backward;
  return FM_OK;
}

static double fm__seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fm__cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int fm_sgemm_gflops(size_t m, size_t n, size_t k, int trans_a, int trans_b, int trials, double min_seconds,
                    double *gflops) {
  FM_CHECK(gflops && m && n && k && trials >= 1 && trials <= 1000 && min_seconds >= 0, FM_ERR_INVALID_ARG,
           "fm_sgemm_gflops: bad arguments");
  FM_CHECK(m <= 65536 && n <= 65536 && k <= 65536, FM_ERR_OVERFLOW, "fm_sgemm_gflops: %zux%zux%zu is too large", m, n,
           k);
  *gflops = 0;
  float *a = fm__malloc(m * k * sizeof *a), *b = fm__malloc(k * n * sizeof *b), *c = fm__malloc(m * n * sizeof *c);
  double *rate = fm__malloc((size_t)trials * sizeof *rate);
  if (!a || !b || !c || !rate) {
    fm__free(a), fm__free(b), fm__free(c), fm__free(rate);
    return FM_ERR_NOMEM;
  }
  /* small values that neither overflow nor go subnormal over many calls */
  for (size_t i = 0; i < m * k; i++) a[i] = (float)((i * 7 + 3) % 17) * (1.0f / 64);
  for (size_t i = 0; i < k * n; i++) b[i] = (float)((i * 5 + 1) % 13) * (1.0f / 64);
  memset(c, 0, m * n * sizeof *c);
  const int M = (int)m, N = (int)n, K = (int)k;
  const int lda = trans_a ? M : K, ldb = trans_b ? K : N;
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  const double flops = 2.0 * (double)m * (double)n * (double)k;
  /* one untimed call (packing buffers, page faults, BLAS initialisation) */
  cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, a, lda, b, ldb, 0.0f, c, N);
  for (int t = 0; t < trials; t++) {
    long calls = 0;
    double t0 = fm__seconds(), el;
    do {
      cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, a, lda, b, ldb, 0.0f, c, N);
      calls++;
      el = fm__seconds() - t0;
    } while (el < min_seconds);
    rate[t] = el > 0 ? flops * (double)calls / el * 1e-9 : 0.0;
  }
  qsort(rate, (size_t)trials, sizeof *rate, fm__cmp_double);
  *gflops = trials % 2 ? rate[trials / 2] : 0.5 * (rate[trials / 2 - 1] + rate[trials / 2]);
  fm__free(a), fm__free(b), fm__free(c), fm__free(rate);
  return FM_OK;
}

const char *fm_blas_corename(void) {
#ifdef OPENBLAS_VERSION
  return openblas_get_corename();
#else
  return "unknown";
#endif
}
