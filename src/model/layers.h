/* src/model/layers.h — private building blocks of the built-in models:
 * forward/backward pairs for dense (fully connected), ReLU and softmax
 * cross-entropy layers (layers.c), conv2d ('same' and 'valid') and 2x2
 * max-pool (conv.c), plus Glorot-uniform initialisation. The sequence layers
 * (sigmoid, tanh, MSE, dropout, embedding, LSTM, masked per-step
 * cross-entropy) are in seq.h. Not installed.
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

/* Elementwise loops compiled for AVX-512, AVX2 and the baseline, picked at
 * load time (GCC's target_clones): no reassociation and no FMA contraction
 * (ISO C, -ffp-contract=off), so every clone gives the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(FM_NO_CLONES)
#define FM__CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FM__CLONES
#endif

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

/* The same for a tensor whose size is not fan_in * fan_out: W (numel), same
 * limit and stream. A conv kernel (KH, KW, IC, OC) uses Keras's fans,
 * fan_in = KH * KW * IC and fan_out = KH * KW * OC.
 * fm__glorot_uniform(W, a, b, ...) == fm__glorot_uniform_n(W, a * b, a, b, ...). */
void fm__glorot_uniform_n(float *W, size_t numel, size_t fan_in, size_t fan_out, uint64_t seed, size_t tensor_index);

/* ---- conv2d through oneDNN (src/model/conv_dnnl.c) -------------------------
 * One conv of a batch: input (N, H, W, IC), kernel KH x KW, output
 * (N, HO, WO, OC), ph/pw zero rows/columns before the image. */
typedef struct fm__conv_dims {
  size_t N, H, W, IC, OC, KH, KW, HO, WO, ph, pw;
} fm__conv_dims;

/* out = conv(in, K) + b, as fm__conv2d_forward. 1 done; 0 not done (built
 * without oneDNN, FEDMPI_CONV=im2col, no JIT kernel for this geometry, or a
 * oneDNN failure): the caller runs im2col. Single-threaded, deterministic. */
int fm__conv_dnnl_forward(float *out, const float *in, const float *K, const float *b, const fm__conv_dims *g);

/* dK += , db += the batch's gradients, din = the input gradient (skipped when
 * NULL), as fm__conv2d_backward. 1 done; 0 nothing written to dK or db. */
int fm__conv_dnnl_backward(float *din, float *dK, float *db, const float *dout, const float *in, const float *K,
                           const fm__conv_dims *g);
/* What runs convolutions in this process: fm_conv_backend() (fedmpi/blas.h). */

/* ---- conv2d and max-pool (src/model/conv.c) ----------------------------------
 * Layout NHWC (channels last, as Keras and the data reader): an image batch
 * (N, H, W, C) is row-major, so example n, row h, column w, channel c sits at
 * ((n * H + h) * W + w) * C + c. Kernels are (KH, KW, IC, OC) as Keras stores
 * them, i.e. row-major (KH * KW * IC, OC). */

/* Examples per im2col chunk of a conv over (H, W, IC) with a KH x KW kernel:
 * the largest count whose im2col buffer stays within FM__CONV_COL_BUDGET
 * floats, at least 1. A pure function of the geometry (never of the batch or
 * workspace size), so every call sums in the same order. */
size_t fm__conv2d_chunk(size_t H, size_t W, size_t IC, size_t KH, size_t KW);

/* Floats of im2col scratch the conv forward/backward below need for a batch
 * of N: min(N, chunk) * H * W * KH * KW * IC. Non-decreasing in N. */
size_t fm__conv2d_col_floats(size_t N, size_t H, size_t W, size_t IC, size_t KH, size_t KW);

/* out (N, H, W, OC) = conv2d(in (N, H, W, IC), K (KH, KW, IC, OC)) + b (OC),
 * stride 1, TF 'same' padding: (KH - 1) / 2 zero rows above and KH / 2 below
 * (likewise for columns), so out[n, h, w, o] = b[o] + sum over kh, kw, i of
 * in[n, h + kh - (KH - 1) / 2, w + kw - (KW - 1) / 2, i] * K[kh, kw, i, o],
 * out-of-image terms being zero. Per chunk of examples: col (chunk * H * W,
 * KH * KW * IC) = im2col(in), then out = col @ K (one sgemm). col is scratch of
 * fm__conv2d_col_floats(N, ...) floats. out must not alias in.
 * Requires chunk * H * W, KH * KW * IC, OC <= INT_MAX (BLAS integers). */
void fm__conv2d_forward(float *out, float *col, const float *in, const float *K, const float *b, size_t N, size_t H,
                        size_t W, size_t IC, size_t KH, size_t KW, size_t OC);

/* Backward of fm__conv2d_forward, per chunk (im2col is recomputed from in):
 * dK (KH * KW * IC, OC) += col^T @ dout (chunk * H * W, OC)
 * db (OC)               += sum over N, H, W of dout (N, H, W, OC)
 * din (N, H, W, IC)      = col2im(dout @ K^T)      (skipped when din == NULL)
 * col is scratch as for forward; din must not alias dout or in. */
void fm__conv2d_backward(float *din, float *dK, float *db, float *col, const float *dout, const float *in,
                         const float *K, size_t N, size_t H, size_t W, size_t IC, size_t KH, size_t KW, size_t OC);

/* The same conv with TF 'valid' padding (no padding): requires KH <= H and
 * KW <= W; HO = H - KH + 1, WO = W - KW + 1 and
 * out (N, HO, WO, OC)[n, h, w, o] = b[o] + sum over kh, kw, i of
 * in[n, h + kh, w + kw, i] * K[kh, kw, i, o]. The chunk is the largest
 * example count whose col (chunk * HO * WO, KH * KW * IC) fits the budget, at
 * least 1; col is scratch of fm__conv2d_valid_col_floats(N, ...) floats =
 * min(N, chunk) * HO * WO * KH * KW * IC. Backward as for 'same': dK and db
 * accumulate, din (N, H, W, IC) is overwritten (skipped when NULL). */
size_t fm__conv2d_valid_chunk(size_t H, size_t W, size_t IC, size_t KH, size_t KW);
size_t fm__conv2d_valid_col_floats(size_t N, size_t H, size_t W, size_t IC, size_t KH, size_t KW);
void fm__conv2d_valid_forward(float *out, float *col, const float *in, const float *K, const float *b, size_t N,
                              size_t H, size_t W, size_t IC, size_t KH, size_t KW, size_t OC);
void fm__conv2d_valid_backward(float *din, float *dK, float *db, float *col, const float *dout, const float *in,
                               const float *K, size_t N, size_t H, size_t W, size_t IC, size_t KH, size_t KW,
                               size_t OC);

/* out (N, HO, WO, C) = max over each 2 x 2 window of in (N, H, W, C), stride 2,
 * HO = ceil(H / 2), WO = ceil(W / 2): Keras MaxPool2D(2, padding='same'),
 * whose padding sits after the image (an odd last row/column is a window of
 * its own). arg (N, HO, WO, C) <- the argmax's index within its example,
 * (h * W + w) * C + c; ties go to the first in row-major window order, as in
 * TF's CPU kernel. Requires H * W * C <= INT32_MAX. */
void fm__maxpool2x2_forward(float *out, int32_t *arg, const float *in, size_t N, size_t H, size_t W, size_t C);

/* din (N, H, W, C) = dout (N, HO, WO, C) routed to the argmax of its window,
 * 0 elsewhere (windows do not overlap, so each input gets at most one term). */
void fm__maxpool2x2_backward(float *din, const float *dout, const int32_t *arg, size_t N, size_t H, size_t W, size_t C);

#endif
