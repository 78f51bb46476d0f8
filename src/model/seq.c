/* src/model/seq.c — element-wise and gather kernels of the sequence and
 * autoencoder layers: sigmoid, tanh, mean squared error, dropout, embedding,
 * and the masked per-time-step softmax cross-entropy and accuracy. Shapes and
 * semantics are documented per function in seq.h.
 *
 * What it does: plain loops; losses are summed in double, as layers.c's
 * softmax cross-entropy; dropout masks come from the public fm_rng API.
 *
 * What it deliberately does not do: check arguments, allocate, report errors,
 * know about models or layouts, or thread (OpenMP parallelism is over
 * clients). Like layers.c it is compiled straight into unit tests, so it uses
 * only the C library and the public fm_rng API. The LSTM is in lstm.c. */
#include <math.h>
#include <string.h>

#include <Random123/philox.h>

#include "fedmpi/rng.h"
#include "layers.h"
#include "seq.h"

/* ---- activations ------------------------------------------------------------------ */

void fm__sigmoid_forward(float *out, const float *in, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float x = in[i];
    /* exp of a non-positive number only, so neither branch overflows */
    if (x >= 0.0f) {
      out[i] = 1.0f / (1.0f + expf(-x));
    } else {
      float e = expf(x);
      out[i] = e / (1.0f + e);
    }
  }
}

void fm__sigmoid_backward(float *din, const float *dout, const float *out, size_t n) {
  for (size_t i = 0; i < n; i++) din[i] = dout[i] * out[i] * (1.0f - out[i]);
}

void fm__tanh_forward(float *out, const float *in, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = tanhf(in[i]);
}

void fm__tanh_backward(float *din, const float *dout, const float *out, size_t n) {
  for (size_t i = 0; i < n; i++) din[i] = dout[i] * (1.0f - out[i] * out[i]);
}

/* ---- mean squared error ------------------------------------------------------------- */

float fm__mse_forward(const float *pred, const float *target, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)pred[i] - (double)target[i];
    s += d * d;
  }
  return n ? (float)(s / (double)n) : 0.0f;
}

void fm__mse_backward(float *dpred, const float *pred, const float *target, size_t n) {
  float scale = n ? 2.0f / (float)n : 0.0f;
  for (size_t i = 0; i < n; i++) dpred[i] = scale * (pred[i] - target[i]);
}

/* ---- dropout ------------------------------------------------------------------------- */

/* splitmix64's finaliser: a bijection of 64-bit words that spreads the
 * (step, layer) index over the whole key. */
static uint64_t fm__mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void fm__dropout_mask(uint8_t *mask, size_t n, float rate, const fm__dropout_key *key) {
  fm_rng r;
  uint64_t sub = key->step << 8 | (uint64_t)(key->layer & 0xffu);
  fm_rng_init(&r, key->seed ^ fm__mix64(sub), key->round, key->client, FM_RNG_DROPOUT);
  /* rate < 1, so threshold < 2^32; rate 0 keeps everything */
  uint32_t threshold = (uint32_t)((double)rate * 4294967296.0);
  /* mask[i] compares the i-th word of r's stream, fm_rng_u32's sequence:
   * word j of block b (the counter's last word, from 0) is mask[4b + j].
   * Random123's inline philox4x32 per block, not a call per word: 3-4x
   * faster, the same bits (test_seq_layers checks them against fm_rng_u32). */
  philox4x32_key_t k = {{r.key[0], r.key[1]}};
  for (size_t b = 0; 4 * b < n; b++) {
    philox4x32_ctr_t c = {{r.ctr[0], r.ctr[1], r.ctr[2], (uint32_t)b}};
    philox4x32_ctr_t o = philox4x32(c, k);
    size_t m = n - 4 * b < 4 ? n - 4 * b : 4;
    for (size_t j = 0; j < m; j++) mask[4 * b + j] = o.v[j] >= threshold;
  }
}

FM__CLONES
void fm__dropout_backward(float *din, const float *dout, const uint8_t *mask, size_t n, float rate) {
  float s = (float)(1.0 / (1.0 - (double)rate));
  for (size_t i = 0; i < n; i++) din[i] = mask[i] ? dout[i] * s : 0.0f;
}

void fm__dropout_forward(float *out, uint8_t *mask, const float *in, size_t n, float rate, const fm__dropout_key *key) {
  fm__dropout_mask(mask, n, rate, key);
  fm__dropout_backward(out, in, mask, n, rate);
}

/* ---- embedding --------------------------------------------------------------------- */

void fm__embedding_init(float *E, size_t V, size_t D, uint64_t seed, size_t tensor_index) {
  fm_rng r;
  fm_rng_init(&r, seed, 0, (uint64_t)tensor_index, FM_RNG_INIT);
  for (size_t i = 0; i < V * D; i++) E[i] = (float)((2.0 * fm_rng_uniform(&r) - 1.0) * 0.05);
}

void fm__embedding_forward(float *out, const int32_t *tokens, const float *E, size_t M, size_t D) {
  for (size_t m = 0; m < M; m++) memcpy(out + m * D, E + (size_t)tokens[m] * D, D * sizeof *out);
}

void fm__embedding_backward(float *dE, const float *dout, const int32_t *tokens, size_t M, size_t D, int mask_zero) {
  for (size_t m = 0; m < M; m++) {
    if (mask_zero && tokens[m] == 0) continue;
    float *row = dE + (size_t)tokens[m] * D;
    const float *g = dout + m * D;
    for (size_t d = 0; d < D; d++) row[d] += g[d];
  }
}

void fm__token_mask(uint8_t *mask, const int32_t *tokens, size_t M) {
  for (size_t m = 0; m < M; m++) mask[m] = tokens[m] != 0;
}

/* ---- masked per-step softmax cross-entropy ------------------------------------------ */

/* p (C) = softmax(z (C)) (p may alias z); returns -log p[y] as
 * logsumexp(z) - z[y], finite even when p[y] underflows. */
static double fm__softmax_row(float *p, const float *z, int32_t y, size_t C) {
  float maxz = z[0];
  for (size_t c = 1; c < C; c++)
    if (z[c] > maxz) maxz = z[c];
  double zy = (double)z[y] - (double)maxz; /* before p overwrites z */
  double sum = 0.0;
  for (size_t c = 0; c < C; c++) {
    p[c] = expf(z[c] - maxz);
    sum += p[c];
  }
  float inv = (float)(1.0 / sum); /* sum >= 1: the max term is exp(0) */
  for (size_t c = 0; c < C; c++) p[c] *= inv;
  return log(sum) - zy;
}

static size_t fm__count_valid(const uint8_t *mask, size_t M) {
  if (!mask) return M;
  size_t v = 0;
  for (size_t m = 0; m < M; m++) v += mask[m] != 0;
  return v;
}

float fm__seq_xent_forward(float *probs, size_t *valid, const float *logits, const int32_t *y, const uint8_t *mask,
                           size_t M, size_t C) {
  double total = 0.0;
  for (size_t m = 0; m < M; m++) {
    int ok = !mask || mask[m];
    /* a masked position still gets probabilities (for metrics or display),
     * computed against class 0 so its label is never read */
    double l = fm__softmax_row(probs + m * C, logits + m * C, ok ? y[m] : 0, C);
    if (ok) total += l;
  }
  size_t v = fm__count_valid(mask, M);
  *valid = v;
  return v ? (float)(total / (double)v) : 0.0f;
}

void fm__seq_xent_backward(float *dlogits, const float *probs, const int32_t *y, const uint8_t *mask, size_t M,
                           size_t C) {
  size_t v = fm__count_valid(mask, M);
  float inv = v ? 1.0f / (float)v : 0.0f;
  for (size_t m = 0; m < M; m++) {
    float *d = dlogits + m * C;
    if (v == 0 || (mask && !mask[m])) {
      memset(d, 0, C * sizeof *d);
      continue;
    }
    const float *p = probs + m * C;
    for (size_t c = 0; c < C; c++) d[c] = p[c] * inv;
    d[y[m]] -= inv;
  }
}

void fm__seq_accuracy(size_t *correct, size_t *valid, const float *scores, const int32_t *y, const uint8_t *mask,
                      size_t M, size_t C) {
  size_t hit = 0, v = 0;
  for (size_t m = 0; m < M; m++) {
    if (mask && !mask[m]) continue;
    const float *s = scores + m * C;
    size_t best = 0;
    for (size_t c = 1; c < C; c++)
      if (s[c] > s[best]) best = c;
    hit += best == (size_t)y[m];
    v++;
  }
  *correct = hit;
  *valid = v;
}
