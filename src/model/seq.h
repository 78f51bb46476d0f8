/* src/model/seq.h — private building blocks for sequence and autoencoder
 * models: sigmoid and tanh, mean squared error, dropout, embedding (seq.c),
 * LSTM and the orthogonal initialiser (lstm.c), and per-time-step softmax
 * cross-entropy and accuracy with a mask (seq.c). Not installed.
 *
 * Conventions as in layers.h (llm.c style): outputs first, then inputs, then
 * dimensions; row-major arrays with shapes in the comments; backward passes
 * ACCUMULATE (+=) into parameter gradients (dW, dE, db) and OVERWRITE (=) the
 * gradient with respect to their input (din, dx, dpred, dlogits). These
 * functions never allocate (the caller gives scratch, sized by the *_floats
 * functions), never exit and do not check arguments; only
 * fm__orthogonal_init can fail (LAPACK), and says so in its return value.
 *
 * Dimension letters: N batch, T time steps, IN input features, U LSTM units,
 * V vocabulary, D embedding size, C classes, M = N * T positions.
 *
 * Masks are uint8_t arrays, 1 = valid, 0 = masked (Keras's boolean masks);
 * a NULL mask means every position is valid. */
#ifndef FEDMPI_MODEL_SEQ_H
#define FEDMPI_MODEL_SEQ_H

#include <stddef.h>
#include <stdint.h>

/* ---- activations (seq.c) ------------------------------------------------------ */

/* out (n) = 1 / (1 + exp(-in)), computed without overflow for any sign;
 * out may alias in. */
void fm__sigmoid_forward(float *out, const float *in, size_t n);
/* din (n) = dout * out * (1 - out), from the sigmoid OUTPUT; din may alias dout. */
void fm__sigmoid_backward(float *din, const float *dout, const float *out, size_t n);
/* out (n) = tanh(in); out may alias in. */
void fm__tanh_forward(float *out, const float *in, size_t n);
/* din (n) = dout * (1 - out^2), from the tanh OUTPUT; din may alias dout. */
void fm__tanh_backward(float *din, const float *dout, const float *out, size_t n);

/* ---- mean squared error (seq.c) ----------------------------------------------- */

/* Returns mean over all n elements of (pred - target)^2, summed in double.
 * Keras's MeanSquaredError (mean over the last axis, then SUM_OVER_BATCH_SIZE
 * over the batch) is the same number when every row has the same length. */
float fm__mse_forward(const float *pred, const float *target, size_t n);
/* dpred (n) = 2 (pred - target) / n, the gradient of the mean. */
void fm__mse_backward(float *dpred, const float *pred, const float *target, size_t n);

/* ---- dropout (seq.c) ------------------------------------------------------------
 * Keras Dropout(rate), rate in [0, 1): active in training only (at inference
 * the layer is the identity: do not call these). Each unit is kept with
 * probability 1 - rate and a kept unit is scaled by s = (float)(1 / (1 - rate))
 * (TF: x * s * keep_mask), so out is exactly in * s or 0.
 *
 * The mask depends only on the key below, never on the rank, thread or batch
 * layout. The stream is
 *   fm_rng_init(r, seed ^ fm__mix64(step << 8 | layer), round, client, FM_RNG_DROPOUT)
 * where fm__mix64 is splitmix64's finaliser (a bijection of 64-bit words), so
 * within one run (one seed) every (round, client, step, layer) has its own
 * Philox key and counter, and no other purpose can meet it (the purpose is in
 * the counter). Unit i of the layer's (N * units) output, row-major, draws
 * the i-th 32-bit word u_i of that stream and is kept iff
 *   u_i >= floor(rate * 2^32).
 *   seed:   the run seed;
 *   round:  the federated round (as for FM_RNG_SHUFFLE);
 *   client: the client's index in the population (as for FM_RNG_SHUFFLE);
 *   step:   the client's local step in that round, counting batches from 0
 *           across epochs (< 2^56);
 *   layer:  the dropout layer's index among the model's dropout layers (< 256). */
typedef struct fm__dropout_key {
  uint64_t seed, round, client, step;
  uint32_t layer;
} fm__dropout_key;

/* mask (n) <- 1 for kept units, 0 for dropped ones, from the stream of key. */
void fm__dropout_mask(uint8_t *mask, size_t n, float rate, const fm__dropout_key *key);
/* mask (n) <- fm__dropout_mask(key); out (n) = in * s where mask, else 0.
 * out may alias in. Backward needs only mask (or recompute it from key). */
void fm__dropout_forward(float *out, uint8_t *mask, const float *in, size_t n, float rate, const fm__dropout_key *key);
/* din (n) = dout * s where mask, else 0; din may alias dout. Also the forward
 * pass with a given mask (out = fm__dropout_backward(in)). */
void fm__dropout_backward(float *din, const float *dout, const uint8_t *mask, size_t n, float rate);

/* ---- embedding (seq.c) ------------------------------------------------------------
 * Keras Embedding(V, D): a table E (V, D), row v the vector of token v;
 * initialised U(-0.05, 0.05) (Keras's 'uniform'). With mask_zero, token 0 is
 * padding: its rows are still gathered (Keras outputs E[0] there) and the mask
 * fm__token_mask gives goes to the layers downstream, which ignore them. */

/* E (V * D) ~ U(-0.05, 0.05) from the stream fm_rng(seed, round 0,
 * client = tensor_index, FM_RNG_INIT), as fm__glorot_uniform. */
void fm__embedding_init(float *E, size_t V, size_t D, uint64_t seed, size_t tensor_index);
/* out (M, D) = E[tokens[m]] for each of the M positions (a gather); tokens in [0, V). */
void fm__embedding_forward(float *out, const int32_t *tokens, const float *E, size_t M, size_t D);
/* dE (V, D) += dout (M, D) scattered to the rows of their tokens, position by
 * position in order m = 0 .. M - 1 (so repeated tokens sum in a fixed order).
 * With mask_zero != 0, positions whose token is 0 are skipped: Keras's
 * downstream layers give them no gradient. */
void fm__embedding_backward(float *dE, const float *dout, const int32_t *tokens, size_t M, size_t D, int mask_zero);
/* mask (M) = tokens != 0: Keras's compute_mask of Embedding(mask_zero=True). */
void fm__token_mask(uint8_t *mask, const int32_t *tokens, size_t M);

/* ---- LSTM (lstm.c) ------------------------------------------------------------
 * Keras LSTM(U) with its defaults: activation tanh, recurrent_activation
 * sigmoid, use_bias, zero initial state. Weights as Keras stores them:
 *   Wx (IN, 4U) kernel, Wh (U, 4U) recurrent_kernel, b (4U) bias,
 * the 4U columns being the gates in Keras's order i, f, c, o:
 *   z_t = x_t Wx + h_{t-1} Wh + b
 *   i = sigmoid(z[0:U]), f = sigmoid(z[U:2U]), g = tanh(z[2U:3U]), o = sigmoid(z[3U:4U])
 *   c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t).
 * Mask (N, T), optional: at a masked step (mask[n, t] == 0) the state is
 * carried through unchanged, h_t = h_{t-1} and c_t = c_{t-1}, and the output
 * at that step is the carried h (Keras's default zero_output_for_mask=False),
 * so the step's input gets no gradient.
 * Initialisers: fm__glorot_uniform(Wx, IN, 4U, ...), fm__orthogonal_init(Wh,
 * U, 4U, ...), fm__lstm_bias_init(b, U). */

/* Floats the forward pass keeps for backward (the cache): gates (N, T, 4U),
 * h_{t-1} and c_{t-1} entering each step (N, T, U) each, tanh(c_t) (N, T, U),
 * and the last h and c (N, U) each: N * T * 7U + 2 N U. */
size_t fm__lstm_cache_floats(size_t N, size_t T, size_t U);
/* Floats of backward scratch (dz (N, T, 4U), dh and dc (N, U), Wh^T (4U, U)):
 * N * T * 4U + 2 N U + 4 U^2. Only needed during backward: layers may share it. */
size_t fm__lstm_scratch_floats(size_t N, size_t T, size_t U);

/* out = the LSTM over x (N, T, IN): (N, T, U), h_t for every step, when
 * return_sequences != 0; else (N, U), the final state h (after the carried
 * masked steps, as Keras's last output). cache: fm__lstm_cache_floats floats,
 * kept for backward. The input projection of all T steps is ONE sgemm
 * (N * T, IN) @ (IN, 4U), then each step one sgemm (N, U) @ (U, 4U) and one
 * fused pass over the N * 4U gates. mask (N, T) or NULL. out must not alias x.
 * Requires N * T, IN, 4U <= INT_MAX. */
void fm__lstm_forward(float *out, float *cache, const float *x, const uint8_t *mask, const float *Wx, const float *Wh,
                      const float *b, size_t N, size_t T, size_t IN, size_t U, int return_sequences);

/* Backpropagation through time of fm__lstm_forward (same x, mask, weights,
 * return mode; cache as forward left it). dout is (N, T, U) or (N, U).
 *   dWx (IN, 4U) += x^T dz  (one sgemm over the N * T positions)
 *   dWh (U, 4U)  += h_prev^T dz  (one sgemm)
 *   db (4U)      += column sums of dz
 *   dx (N, T, IN) = dz Wx^T  (one sgemm; skipped when dx == NULL)
 * with one sgemm (N, 4U) @ Wh^T per step for dh_{t-1}. scratch:
 * fm__lstm_scratch_floats floats. dx must not alias dout. */
void fm__lstm_backward(float *dx, float *dWx, float *dWh, float *db, float *scratch, const float *dout,
                       const float *cache, const float *x, const uint8_t *mask, const float *Wx, const float *Wh,
                       size_t N, size_t T, size_t IN, size_t U, int return_sequences);

/* b (4U) = 0 except the forget gate's b[U:2U) = 1 (Keras unit_forget_bias=True). */
void fm__lstm_bias_init(float *b, size_t U);

/* Doubles of scratch fm__orthogonal_init needs for a (rows, cols) matrix. */
size_t fm__orthogonal_work_doubles(size_t rows, size_t cols);
/* W (rows, cols) = Keras Orthogonal(gain 1): a (max, min) matrix of N(0, 1)
 * draws from fm_rng(seed, round 0, client = tensor_index, FM_RNG_INIT), its QR
 * factorisation (LAPACK dgeqrf_/dorgqr_ from OpenBLAS, in double), Q's
 * columns multiplied by the signs of R's diagonal, transposed when
 * rows < cols. So W^T W = I (cols) when rows >= cols and W W^T = I (rows)
 * when rows < cols (the LSTM's (U, 4U) recurrent kernel: orthonormal rows),
 * up to float rounding. work: fm__orthogonal_work_doubles doubles. Returns 0,
 * or LAPACK's nonzero info (which only a bad argument gives). */
int fm__orthogonal_init(float *W, double *work, size_t rows, size_t cols, uint64_t seed, size_t tensor_index);

/* ---- per-time-step softmax cross-entropy with a mask (seq.c) ----------------------
 * M positions (N * T flattened), C classes per position. The loss is the
 * mean of -log softmax(logits)[y] over the VALID positions only:
 *   loss = sum over m with mask[m] of (logsumexp(logits[m]) - logits[m, y[m]]) / V,
 *   V = number of valid positions (0 when V = 0: no position, no loss).
 * This is what Keras gives for SparseCategoricalCrossentropy(from_logits=True)
 * on outputs that carry the Embedding's mask (Loss.__call__'s
 * apply_valid_mask: SUM_OVER_BATCH_SIZE over the valid entries), as in TFF's
 * Shakespeare model. (A plain sample_weight = mask without a Keras mask would
 * divide by M instead.) Labels at masked positions are not read. */

/* probs (M, C) = softmax(logits) per row (probs may alias logits); returns
 * the masked mean above and sets *valid to V. */
float fm__seq_xent_forward(float *probs, size_t *valid, const float *logits, const int32_t *y, const uint8_t *mask,
                           size_t M, size_t C);
/* dlogits (M, C) = (probs - onehot(y)) / V at valid positions, 0 at masked
 * ones (all 0 when V = 0). dlogits must not alias probs. */
void fm__seq_xent_backward(float *dlogits, const float *probs, const int32_t *y, const uint8_t *mask, size_t M,
                           size_t C);
/* *correct = valid positions whose argmax (the first maximum on ties, as
 * tf.argmax) equals y; *valid = valid positions. scores are logits or probs.
 * Accuracy = correct / valid, Keras's SparseCategoricalAccuracy with the mask
 * as sample weights. */
void fm__seq_accuracy(size_t *correct, size_t *valid, const float *scores, const int32_t *y, const uint8_t *mask,
                      size_t M, size_t C);

#endif
