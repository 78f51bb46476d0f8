/* src/model/layers.c — forward/backward kernels of the built-in models:
 * dense (BLAS sgemm), ReLU, softmax cross-entropy, and Glorot-uniform init.
 *
 * What it does: the numerics, with shapes documented per function in
 * layers.h; matrix products go through CBLAS (OpenBLAS) in row-major order.
 *
 * What it deliberately does not do: check arguments, allocate, report errors
 * or know about layouts and models — callers (the layer kinds of stack_layers.c) validate once
 * and pass raw pointers. It is also compiled into a unit test directly, so it
 * uses nothing but the C library, CBLAS and the public fm_rng API. */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "fedmpi/rng.h"
#include "layers.h"

void fm__dense_forward(float *out, const float *in, const float *W, const float *b, size_t N, size_t IC, size_t OC) {
  /* out[n, :] = b, then out += in @ W */
  for (size_t n = 0; n < N; n++) memcpy(out + n * OC, b, OC * sizeof *out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)N, (blasint)OC, (blasint)IC, 1.0f, in, (blasint)IC, W,
              (blasint)OC, 1.0f, out, (blasint)OC);
}

void fm__dense_backward(float *din, float *dW, float *db, const float *dout, const float *in, const float *W, size_t N,
                        size_t IC, size_t OC) {
  /* dW (IC, OC) += in^T (IC, N) @ dout (N, OC) */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)IC, (blasint)OC, (blasint)N, 1.0f, in, (blasint)IC,
              dout, (blasint)OC, 1.0f, dW, (blasint)OC);
  /* db (OC) += column sums of dout */
  for (size_t n = 0; n < N; n++) {
    const float *row = dout + n * OC;
    for (size_t o = 0; o < OC; o++) db[o] += row[o];
  }
  /* din (N, IC) = dout (N, OC) @ W^T (OC, IC) */
  if (din)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)N, (blasint)IC, (blasint)OC, 1.0f, dout, (blasint)OC,
                W, (blasint)OC, 0.0f, din, (blasint)IC);
}

FM__CLONES
void fm__relu_forward(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

FM__CLONES
void fm__relu_backward(float *din, const float *dout, const float *out, size_t n) {
  /* both loads unconditional, so the select compiles to a vector blend
   * instead of a branch that mispredicts on every other unit */
  for (size_t i = 0; i < n; i++) {
    float g = dout[i];
    din[i] = out[i] > 0.0f ? g : 0.0f;
  }
}

float fm__softmax_xent_forward(float *probs, const float *logits, const int32_t *y, size_t N, size_t C) {
  double total = 0.0;
  for (size_t n = 0; n < N; n++) {
    const float *z = logits + n * C;
    float *p = probs + n * C;
    float maxz = z[0];
    for (size_t c = 1; c < C; c++)
      if (z[c] > maxz) maxz = z[c];
    /* read the label's logit before p (which may alias z) is overwritten */
    double zy = (double)z[y[n]] - (double)maxz;
    double sum = 0.0;
    for (size_t c = 0; c < C; c++) {
      p[c] = expf(z[c] - maxz);
      sum += p[c];
    }
    /* sum >= 1 (the max term is exp(0)), so the log and division are safe */
    float inv = (float)(1.0 / sum);
    for (size_t c = 0; c < C; c++) p[c] *= inv;
    total += log(sum) - zy; /* -log p[y] without ever taking log(0) */
  }
  return (float)(total / (double)N);
}

void fm__softmax_xent_backward(float *dlogits, const float *probs, const int32_t *y, size_t N, size_t C) {
  float inv_n = 1.0f / (float)N;
  for (size_t n = 0; n < N; n++) {
    const float *p = probs + n * C;
    float *d = dlogits + n * C;
    for (size_t c = 0; c < C; c++) d[c] = p[c] * inv_n;
    d[y[n]] -= inv_n;
  }
}

void fm__glorot_uniform_n(float *W, size_t numel, size_t fan_in, size_t fan_out, uint64_t seed, size_t tensor_index) {
  fm_rng r;
  fm_rng_init(&r, seed, 0, (uint64_t)tensor_index, FM_RNG_INIT);
  double limit = sqrt(6.0 / ((double)fan_in + (double)fan_out));
  for (size_t i = 0; i < numel; i++) W[i] = (float)((2.0 * fm_rng_uniform(&r) - 1.0) * limit);
}

void fm__glorot_uniform(float *W, size_t fan_in, size_t fan_out, uint64_t seed, size_t tensor_index) {
  fm__glorot_uniform_n(W, fan_in * fan_out, fan_in, fan_out, seed, tensor_index);
}
