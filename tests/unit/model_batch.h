/* tests/unit/model_batch.h — a batch and weights for gradient tests of any
 * model, shared by test_model.c and test_cnn.c: random inputs and labels,
 * init_weights(seed) with small random biases so that every gradient entry
 * is generic, the model's analytic gradient, and the check that backward
 * adds into dw. Include after cmocka.h. Every draw comes from fm_rng keyed by
 * the caller's key, so each test file keeps its own data. */
#ifndef FM_TEST_MODEL_BATCH_H
#define FM_TEST_MODEL_BATCH_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fedmpi/error.h"
#include "fedmpi/model.h"
#include "fedmpi/rng.h"

typedef struct batch {
  size_t N, D, C, P, T;
  float *x, *w;
  int32_t *y;
  void *ws;
} batch;

/* a[i] uniform in [lo, hi) from the stream (key, stream). */
static inline void fill_uniform_keyed(float *a, size_t n, double lo, double hi, uint64_t key, uint64_t stream) {
  fm_rng r;
  fm_rng_init(&r, key, 0, stream, FM_RNG_USER);
  for (size_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * fm_rng_uniform(&r));
}

/* N examples for m: x uniform in [x_lo, 1], labels uniform, weights from
 * init_weights(seed) with biases uniform in [-0.1, 0.1]. The workspace is
 * sized for ws_batch >= N examples. */
static inline batch make_batch_keyed(const fm_model *m, size_t N, size_t ws_batch, double x_lo, uint64_t key,
                                     uint64_t seed) {
  batch b;
  const fm_input_spec *s = fm_model_input_spec(m);
  const fm_layout *l = fm_model_layout(m);
  b.N = N;
  b.D = s->num_features;
  b.C = s->num_classes;
  b.P = fm_layout_numel(l);
  b.T = fm_layout_trainable_numel(l);
  b.x = malloc(N * b.D * sizeof *b.x);
  b.w = malloc(b.P * sizeof *b.w);
  b.y = malloc(N * sizeof *b.y);
  b.ws = malloc(fm_model_workspace_size(m, ws_batch));
  assert_non_null(b.x);
  assert_non_null(b.w);
  assert_non_null(b.y);
  assert_non_null(b.ws);
  fill_uniform_keyed(b.x, N * b.D, x_lo, 1, key, seed);
  fm_rng r;
  fm_rng_init(&r, key, 0, seed, FM_RNG_USER + 1);
  for (size_t i = 0; i < N; i++) b.y[i] = (int32_t)fm_rng_below(&r, b.C);
  assert_int_equal(fm_model_init_weights(m, b.w, seed), FM_OK);
  for (size_t t = 0; t < fm_layout_num_tensors(l); t++) {
    const fm_tensor_info *ti = fm_layout_tensor(l, t);
    if (ti->ndim == 1) fill_uniform_keyed(b.w + ti->offset, ti->numel, -0.1, 0.1, key, seed + 1000 + t);
  }
  return b;
}

static inline void free_batch(batch *b) {
  free(b->x);
  free(b->w);
  free(b->y);
  free(b->ws);
}

/* The mean loss at weights w. */
static inline float model_loss(const fm_model *m, batch *b, const float *w) {
  float loss = NAN;
  assert_int_equal(fm_model_forward(m, b->ws, w, b->x, b->y, b->N, 0, &loss, NULL), FM_OK);
  return loss;
}

/* The model's analytic gradient of the mean loss (dw starts at zero). */
static inline float *model_grad(const fm_model *m, batch *b, float *loss) {
  float *g = calloc(b->T, sizeof *g);
  assert_int_equal(fm_model_forward(m, b->ws, b->w, b->x, b->y, b->N, 1, loss, NULL), FM_OK);
  assert_int_equal(fm_model_backward(m, b->ws, b->w, b->x, b->y, b->N, g), FM_OK);
  return g;
}

/* backward adds into dw (exactly T floats of it); the workspace cache
 * survives a backward call. b is a batch of m. */
static inline void check_accumulates(const fm_model *m, batch *b) {
  float loss;
  float *g1 = model_grad(m, b, &loss);
  float *g2 = malloc(b->T * sizeof *g2 + sizeof(float));
  memcpy(g2, g1, b->T * sizeof *g2);
  g2[b->T] = 12345.0f; /* canary: dw has exactly T floats */
  assert_int_equal(fm_model_backward(m, b->ws, b->w, b->x, b->y, b->N, g2), FM_OK);
  /* not bit-exact: BLAS may fold the old dw into its sums in another order */
  float gmax = 0;
  for (size_t j = 0; j < b->T; j++) gmax = fmaxf(gmax, fabsf(g1[j]));
  for (size_t j = 0; j < b->T; j++)
    if (!(fabsf(g2[j] - 2 * g1[j]) <= 1e-5f * gmax))
      fail_msg("param %zu: twice %.9g vs 2 * once %.9g", j, g2[j], 2 * g1[j]);
  assert_true(g2[b->T] == 12345.0f);
  /* non-zero starting values */
  for (size_t j = 0; j < b->T; j++) g2[j] = 1.0f;
  assert_int_equal(fm_model_backward(m, b->ws, b->w, b->x, b->y, b->N, g2), FM_OK);
  for (size_t j = 0; j < b->T; j++) assert_true(fabsf(g2[j] - (1.0f + g1[j])) <= 1e-5f * (1.0f + gmax));
  free(g1), free(g2);
}

#endif
