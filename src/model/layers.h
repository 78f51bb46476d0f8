/* src/model/layers.h — private building blocks of the built-in models:
 * forward/backward pairs for dense (fully connected), ReLU and softmax
 * cross-entropy layers, plus Glorot-uniform initialisation. Not installed.
 *
 * Conventions (llm.c style): outputs first, then inputs, then dimensions.
 * Arrays are row-major and shapes are given in the comments. Backward passes
 * ACCUMULATE (+=) into parameter gradients (dW, db) and OVERWRITE (=) the
 * gradient with respect to their input (din, dlogits), which is scratch.
 * These functions never fail, never allocate and do not check arguments. */
#ifndef FEDMPI_MODEL_LAYERS_H
#define FEDMPI_MODEL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* out (N, OC) = in (N, IC) @ W (IC, OC) + b (OC). out must not alias in.
 * Requires N, IC, OC <= INT_MAX (BLAS integers). */
void fm__dense_forward(float *out, const float *in, const float *W, const float *b, size_t N, size_t IC, size_t OC);

/* dW (IC, OC) += in^T (IC, N) @ dout (N, OC)
 * db (OC)    += sum over N of dout (N, OC)
 * din (N, IC) = dout (N, OC) @ W^T (OC, IC)     (skipped when din == NULL) */
void fm__dense_backward(float *din, float *dW, float *db, const float *dout, const float *in, const float *W, size_t N,
                        size_t IC, size_t OC);

/* x (n) = max(x, 0), in place. */
void fm__relu_forward(float *x, size_t n);

/* din (n) = dout (n) where out (n) > 0, else 0. out is the ReLU OUTPUT (its
 * sign equals the input's, so no pre-activation copy is needed). din may
 * alias dout. */
void fm__relu_backward(float *din, const float *dout, const float *out, size_t n);

/* probs (N, C) = softmax(logits (N, C)) row by row (numerically stable; probs
 * may alias logits). Returns the mean over N of -log probs[n, y[n]], computed
 * as logsumexp(logits[n]) - logits[n, y[n]] so it stays finite even when a
 * probability underflows to 0. Labels must lie in [0, C). */
float fm__softmax_xent_forward(float *probs, const float *logits, const int32_t *y, size_t N, size_t C);

/* dlogits (N, C) = (probs - onehot(y)) / N, the gradient of the MEAN loss.
 * dlogits must not alias probs. */
void fm__softmax_xent_backward(float *dlogits, const float *probs, const int32_t *y, size_t N, size_t C);

/* W (fan_in * fan_out) ~ U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)),
 * drawn from the stream fm_rng(seed, round 0, client = tensor_index, FM_RNG_INIT). */
void fm__glorot_uniform(float *W, size_t fan_in, size_t fan_out, uint64_t seed, size_t tensor_index);

#endif
