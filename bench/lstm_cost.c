/* bench/lstm_cost.c — the cost of one local training step of TFF's
 * Shakespeare next-character model, from the private layer kernels.
 *
 * Times forward + backward (no optimizer step) of
 *   Embedding(V, 8, mask_zero) -> LSTM 256 (sequences) -> LSTM 256 (sequences)
 *   -> Dense 256 -> V per step -> masked per-step softmax cross-entropy
 * on a batch of N = 4 rows of T = 80 characters (Reddi et al.'s batch size,
 * TFF's sequence length), one BLAS thread as in training, and prints the
 * median ms per step (forward, backward, both) and the GF/s of the matrix
 * products: the LSTMs' 2 * N * T * (IN + U) * 4U flops forward and twice
 * that backward, the dense layer's 2 * N * T * U * V forward and twice that
 * backward (the gate and softmax arithmetic is not counted).
 *
 * The kernels are private to libfedmpi, so CMake compiles their sources into
 * this program (target fm_bench_lstm).
 *
 * usage: fm_bench_lstm [REPS [V]]   default REPS = 20, V = 86 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "fedmpi/rng.h"
#include "layers.h"
#include "seq.h"
#include "timing.h"

enum { N = 4, T = 80, D = 8, U = 256 };

typedef struct net {
  size_t V;
  float *E, *W1x, *W1h, *b1, *W2x, *W2h, *b2, *Wd, *bd;             /* weights */
  float *dE, *dW1x, *dW1h, *db1, *dW2x, *dW2h, *db2, *dWd, *dbd;    /* gradients */
  float *emb, *h1, *h2, *logits, *c1, *c2, *scratch, *dh2, *dh1, *demb; /* activations */
  int32_t *tok, *y;
  uint8_t *mask;
} net;

static int alloc_failed; /* set by fl on a failed allocation */

static float *fl(size_t n) {
  float *p = calloc(n, sizeof(float));
  alloc_failed |= !p;
  return p;
}

static int net_init(net *m, size_t V) {
  size_t G = 4 * U, NT = (size_t)N * T;
  m->V = V;
  m->E = fl(V * D), m->W1x = fl(D * G), m->W1h = fl(U * G), m->b1 = fl(G);
  m->W2x = fl(U * G), m->W2h = fl(U * G), m->b2 = fl(G), m->Wd = fl(U * V), m->bd = fl(V);
  m->dE = fl(V * D), m->dW1x = fl(D * G), m->dW1h = fl(U * G), m->db1 = fl(G);
  m->dW2x = fl(U * G), m->dW2h = fl(U * G), m->db2 = fl(G), m->dWd = fl(U * V), m->dbd = fl(V);
  m->emb = fl(NT * D), m->h1 = fl(NT * U), m->h2 = fl(NT * U), m->logits = fl(NT * V);
  m->c1 = fl(fm__lstm_cache_floats(N, T, U)), m->c2 = fl(fm__lstm_cache_floats(N, T, U));
  m->scratch = fl(fm__lstm_scratch_floats(N, T, U));
  m->dh2 = fl(NT * U), m->dh1 = fl(NT * U), m->demb = fl(NT * D);
  m->tok = calloc(NT, sizeof *m->tok), m->y = calloc(NT, sizeof *m->y), m->mask = calloc(NT, 1);
  double *work = calloc(fm__orthogonal_work_doubles(U, G), sizeof *work);
  if (alloc_failed || !m->tok || !m->y || !m->mask || !work) {
    free(work);
    return 1;
  }
  fm__embedding_init(m->E, V, D, 1, 0);
  fm__glorot_uniform(m->W1x, D, G, 1, 1);
  int rc = fm__orthogonal_init(m->W1h, work, U, G, 1, 2);
  fm__lstm_bias_init(m->b1, U);
  fm__glorot_uniform(m->W2x, U, G, 1, 4);
  rc |= fm__orthogonal_init(m->W2h, work, U, G, 1, 5);
  fm__lstm_bias_init(m->b2, U);
  fm__glorot_uniform(m->Wd, U, V, 1, 7);
  free(work);
  /* characters 1 .. V-1; the last row ends in 17 padding positions, as a
   * snippet's final row does */
  fm_rng r;
  fm_rng_init(&r, 1, 0, 0, FM_RNG_USER);
  for (size_t i = 0; i < NT; i++) m->tok[i] = 1 + (int32_t)fm_rng_below(&r, V - 1);
  for (size_t t = T - 17; t < T; t++) m->tok[(N - 1) * T + t] = 0;
  for (size_t i = 0; i < NT; i++) m->y[i] = i + 1 < NT ? m->tok[i + 1] : 0;
  fm__token_mask(m->mask, m->tok, NT);
  return rc;
}

static void net_free(net *m) {
  float *f[] = {m->E,    m->W1x,  m->W1h, m->b1,     m->W2x, m->W2h, m->b2,      m->Wd,  m->bd,  m->dE,
                m->dW1x, m->dW1h, m->db1, m->dW2x,   m->dW2h, m->db2, m->dWd,     m->dbd, m->emb, m->h1,
                m->h2,   m->logits, m->c1, m->c2,    m->scratch, m->dh2, m->dh1, m->demb};
  for (size_t i = 0; i < sizeof f / sizeof *f; i++) free(f[i]);
  free(m->tok), free(m->y), free(m->mask);
}

static float net_forward(net *m) {
  size_t NT = (size_t)N * T, valid;
  fm__embedding_forward(m->emb, m->tok, m->E, NT, D);
  fm__lstm_forward(m->h1, m->c1, m->emb, m->mask, m->W1x, m->W1h, m->b1, N, T, D, U, 1);
  fm__lstm_forward(m->h2, m->c2, m->h1, m->mask, m->W2x, m->W2h, m->b2, N, T, U, U, 1);
  fm__dense_forward(m->logits, m->h2, m->Wd, m->bd, NT, U, m->V);
  return fm__seq_xent_forward(m->logits, &valid, m->logits, m->y, m->mask, NT, m->V); /* probs over logits */
}

static void net_backward(net *m) {
  size_t NT = (size_t)N * T;
  float *dlogits = m->dh1; /* (NT, V) fits in (NT, U) scratch as V <= U */
  fm__seq_xent_backward(dlogits, m->logits, m->y, m->mask, NT, m->V);
  fm__dense_backward(m->dh2, m->dWd, m->dbd, dlogits, m->h2, m->Wd, NT, U, m->V);
  fm__lstm_backward(m->dh1, m->dW2x, m->dW2h, m->db2, m->scratch, m->dh2, m->c2, m->h1, m->mask, m->W2x, m->W2h, N,
                    T, U, U, 1);
  fm__lstm_backward(m->demb, m->dW1x, m->dW1h, m->db1, m->scratch, m->dh1, m->c1, m->emb, m->mask, m->W1x, m->W1h, N,
                    T, D, U, 1);
  fm__embedding_backward(m->dE, m->demb, m->tok, NT, D, 1);
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 20;
  size_t V = argc > 2 ? (size_t)atol(argv[2]) : 86;
  if (reps < 1 || V < 2 || V > U) {
    fprintf(stderr, "usage: fm_bench_lstm [REPS >= 1 [2 <= V <= %d]]\n", U);
    return 2;
  }
  openblas_set_num_threads(1);
  net m;
  if (net_init(&m, V)) {
    fprintf(stderr, "fm_bench_lstm: out of memory or QR failure\n");
    net_free(&m);
    return 1;
  }
  double *tf = malloc((size_t)reps * sizeof *tf), *tb = malloc((size_t)reps * sizeof *tb);
  double *tt = malloc((size_t)reps * sizeof *tt);
  if (!tf || !tb || !tt) return 1;
  float loss = net_forward(&m); /* warm-up */
  net_backward(&m);
  for (int i = 0; i < reps; i++) {
    double t0 = bench_now();
    net_forward(&m);
    double t1 = bench_now();
    net_backward(&m);
    double t2 = bench_now();
    tf[i] = t1 - t0, tb[i] = t2 - t1, tt[i] = t2 - t0;
  }
  double NT = (double)N * T, G = 4.0 * U;
  double fwd = 2 * NT * (D + U) * G + 2 * NT * (U + U) * G + 2 * NT * U * (double)V;
  double f = bench_median(tf, reps), b = bench_median(tb, reps), s = bench_median(tt, reps);
  printf("Shakespeare LSTM: Embedding(%zu, %d) -> LSTM %d -> LSTM %d -> Dense %zu; batch %d x %d steps\n", V, D, U, U,
         V, N, T);
  printf("initial loss %.4f (ln V = %.4f); median of %d steps, 1 BLAS thread\n", loss, log((double)V), reps);
  printf("%-10s %10s %10s\n", "pass", "ms/step", "GF/s");
  printf("%-10s %10.2f %10.2f\n", "forward", 1e3 * f, 1e-9 * fwd / f);
  printf("%-10s %10.2f %10.2f\n", "backward", 1e3 * b, 1e-9 * 2 * fwd / b);
  printf("%-10s %10.2f %10.2f\n", "step", 1e3 * s, 1e-9 * 3 * fwd / s);
  net_free(&m);
  free(tf), free(tb), free(tt);
  return 0;
}
