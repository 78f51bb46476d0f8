/* src/model/stack_layers.c — the table of layer kinds a "stack:" model is
 * made of (stack.h): dense, relu, sigmoid, tanh, dropout, conv2d ('same' or
 * 'valid'), maxpool (2x2 'same'), flatten, reshape and the softmax
 * cross-entropy loss, each as a shape
 * function, its parameter tensors with their initialisers, and a
 * forward/backward pair over the kernels of layers.h.
 *
 * What it does: the per-layer semantics and their checks (shapes, the int
 * dimensions BLAS and the pooling indices take), with messages that name the
 * layer and say how to fix the stack.
 *
 * What it deliberately does not do: parse, plan the workspace or run the
 * loss (stack.c), or compute anything itself: every number comes from the
 * kernels the hand-written models use, called with the same arguments, so a
 * named model and its stack give the same bits.
 *
 * Adding a layer: write its functions here (and its kernels in layers.h if
 * it needs new ones), add a row to fm__layer_kinds[] (designated
 * initialisers: a slot left out is NULL or 0), document it in
 * docs/models.md. Dimension legend: n batch, F features, (H, W, C) image. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "layers.h"
#include "seq.h"
#include "stack.h"

/* a * b into *out unless it exceeds limit. */
static int fm__mul_le(size_t a, size_t b, size_t limit, size_t *out) {
  if (a && b > limit / a) return 0;
  *out = a * b;
  return 1;
}

static void fm__shape_flat(fm__shape *s, size_t f) {
  memset(s, 0, sizeof *s);
  s->ndim = 1;
  s->d[0] = s->numel = f;
}

static void fm__shape_seq(fm__shape *s, size_t t, size_t f) {
  memset(s, 0, sizeof *s);
  s->ndim = 2;
  s->d[0] = t, s->d[1] = f;
  s->numel = t * f;
}

static void fm__shape_image(fm__shape *s, size_t h, size_t w, size_t c) {
  memset(s, 0, sizeof *s);
  s->ndim = 3;
  s->d[0] = h, s->d[1] = w, s->d[2] = c;
  s->numel = h * w * c;
}

/* "(60)" or "(28, 28, 1)" into buf. */
static const char *fm__shape_str(const fm__shape *s, char *buf, size_t cap) {
  size_t k = (size_t)snprintf(buf, cap, "(");
  for (int i = 0; i < s->ndim && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%zu", i ? ", " : "", s->d[i]);
  if (k < cap) snprintf(buf + k, cap - k, ")");
  return buf;
}

static int fm__need_flat(const fm__layer *L) {
  char b[96];
  if (L->in.ndim == 1) return FM_OK;
  return fm__layer_error(L, FM_ERR_SPEC_MISMATCH, "needs a flat input but gets %s; add 'flatten' before it",
                         fm__shape_str(&L->in, b, sizeof b));
}

static int fm__need_image(const fm__layer *L) {
  char b[96];
  if (L->in.ndim == 3) return FM_OK;
  return fm__layer_error(L, FM_ERR_SPEC_MISMATCH,
                         "needs an image input (H, W) or (H, W, C) but gets %s, %zu features; add "
                         "'reshape(H,W,C)' before it",
                         fm__shape_str(&L->in, b, sizeof b), L->in.numel);
}

/* ---- dense(units) --------------------------------------------------------------------
 * out (n, U) = in (n, F) @ kernel (F, U) + bias (U). Bare "dense" has as many
 * units as the data has classes. On a sequence (T, F) it is applied at every
 * step (Keras's Dense on a 3-D input): out (n * T, U) = in (n * T, F) @ kernel. */

/* Rows per example (T of a sequence, else 1) and features per row. */
static size_t fm__rows(const fm__shape *s) { return s->ndim == 2 ? s->d[0] : 1; }
static size_t fm__row_features(const fm__shape *s) { return s->ndim == 2 ? s->d[1] : s->numel; }

static int fm__dense_shape(fm__layer *L, size_t num_classes) {
  if (L->in.ndim != 2) FM_CALL(fm__need_flat(L));
  size_t units = L->nargs ? L->arg[0] : num_classes, F = fm__row_features(&L->in), T = fm__rows(&L->in);
  if (F > INT_MAX || units > INT_MAX || (T > 1 && units > SIZE_MAX / 8 / T))
    return fm__layer_error(L, FM_ERR_OVERFLOW, "%zu inputs x %zu units exceed the BLAS dimension limit (%d)", F, units,
                           INT_MAX);
  if (L->in.ndim == 2)
    fm__shape_seq(&L->out, T, units);
  else
    fm__shape_flat(&L->out, units);
  return FM_OK;
}

static size_t fm__dense_tensors(const fm__layer *L, fm__tensor_desc *t) {
  size_t F = fm__row_features(&L->in), U = fm__row_features(&L->out);
  t[0] = (fm__tensor_desc){"kernel", 2, {F, U}, F, U, FM__INIT_GLOROT};
  t[1] = (fm__tensor_desc){"bias", 1, {U}, 0, 0, FM__INIT_GLOROT};
  return 2;
}

static double fm__dense_flops(const fm__layer *L) { return 2.0 * (double)L->in.numel * (double)fm__row_features(&L->out); }

static void fm__dense_fwd(const fm__layer *L, const fm__layer_pass *p) {
  fm__dense_forward(p->out, p->in, p->w[0], p->w[1], p->n * fm__rows(&L->in), fm__row_features(&L->in),
                    fm__row_features(&L->out));
}

static void fm__dense_bwd(const fm__layer *L, const fm__layer_pass *p) {
  fm__dense_backward(p->din, p->dw[0], p->dw[1], p->dout, p->in, p->w[0], p->n * fm__rows(&L->in),
                     fm__row_features(&L->in), fm__row_features(&L->out));
}

/* ---- embedding([vocab,] dim[, mask_zero]): Keras Embedding ------------------------------
 * The first layer: x (n, T) holds token ids (floats that are integers in
 * [0, vocab), checked by stack.c before the pass). out (n, T, D) = E[x].
 * vocab defaults to the data's number of classes (for next-token tasks the
 * ids and the classes are the same set). aux: the tokens as int32 (n * T),
 * then the mask (n * T bytes), batch-major. */

static size_t fm__emb_vocab(const fm__layer *L, size_t num_classes) {
  size_t ints = L->nargs - (L->padding_given ? 1u : 0u);
  return ints == 2 ? L->arg[0] : num_classes;
}
static size_t fm__emb_dim(const fm__layer *L) {
  size_t ints = L->nargs - (L->padding_given ? 1u : 0u);
  return L->arg[ints - 1];
}

static int fm__embedding_shape(fm__layer *L, size_t num_classes) {
  char b[96];
  if (L->pos != 1) return fm__layer_error(L, FM_ERR_INVALID_ARG, "an embedding must be the first layer (it reads token ids)");
  if (L->in.ndim != 1)
    return fm__layer_error(L, FM_ERR_SPEC_MISMATCH,
                           "needs token ids, a flat (T) input per example, but gets %s (image data? an embedding reads "
                           "tokenised text)",
                           fm__shape_str(&L->in, b, sizeof b));
  if (L->nargs - (L->padding_given ? 1u : 0u) > 2)
    return fm__layer_error(L, FM_ERR_INVALID_ARG, "too many numbers (usage: %s)", L->kind->usage);
  size_t V = fm__emb_vocab(L, num_classes), D = fm__emb_dim(L), T = L->in.numel, unused;
  if (V > (size_t)1 << 24 || !fm__mul_le(T, D, INT_MAX, &unused) || !fm__mul_le(V, D, SIZE_MAX / 8, &unused))
    return fm__layer_error(L, FM_ERR_OVERFLOW, "a vocabulary of %zu x %zu dimensions over %zu steps exceeds the limits "
                           "(ids up to 2^24, BLAS's int dimensions)", V, D, T);
  L->arg[FM__LAYER_MAX_ARGS - 1] = V; /* the resolved vocabulary */
  fm__shape_seq(&L->out, T, D);
  return FM_OK;
}

static size_t fm__embedding_tensors(const fm__layer *L, fm__tensor_desc *t) {
  size_t V = L->arg[FM__LAYER_MAX_ARGS - 1], D = fm__emb_dim(L);
  t[0] = (fm__tensor_desc){"embeddings", 2, {V, D}, 0, 0, FM__INIT_UNIFORM};
  return 1;
}

static size_t fm__embedding_aux(const fm__layer *L) { return L->in.numel + (L->in.numel + 3) / 4; }

static void fm__embedding_fwd(const fm__layer *L, const fm__layer_pass *p) {
  const size_t M = p->n * L->in.numel;
  int32_t *tok = p->aux;
  for (size_t m = 0; m < M; m++) tok[m] = (int32_t)p->in[m]; /* checked: integers in [0, V) */
  fm__token_mask((uint8_t *)(tok + M), tok, M);
  fm__embedding_forward(p->out, tok, p->w[0], M, fm__emb_dim(L));
}

static void fm__embedding_bwd(const fm__layer *L, const fm__layer_pass *p) {
  const size_t M = p->n * L->in.numel;
  fm__embedding_backward(p->dw[0], p->dout, p->aux, M, fm__emb_dim(L), L->word == 1);
}

/* ---- lstm(units[, sequences|last]): Keras LSTM ----------------------------------------------
 * in (T, F) -> (T, U) with 'sequences' (return_sequences=True), else (U), the
 * last state (Keras's default). The mask of an embedding with mask_zero
 * before it carries the state through padded steps. aux: the cache
 * fm__lstm_forward keeps; the shared scratch: backward's. */

static int fm__lstm_shape(fm__layer *L, size_t num_classes) {
  (void)num_classes;
  char b[96];
  if (L->in.ndim != 2)
    return fm__layer_error(L, FM_ERR_SPEC_MISMATCH,
                           "needs a sequence (T, F) per example, e.g. after 'embedding', but gets %s",
                           fm__shape_str(&L->in, b, sizeof b));
  size_t T = L->in.d[0], F = L->in.d[1], U = L->arg[0], g, unused;
  if (!fm__mul_le(U, 4, INT_MAX, &g) || F > INT_MAX || !fm__mul_le(T, g * 2, SIZE_MAX / 8, &unused))
    return fm__layer_error(L, FM_ERR_OVERFLOW, "%zu units over %zu steps of %zu features exceed the BLAS limits", U, T, F);
  if (L->word == 1)
    fm__shape_seq(&L->out, T, U);
  else
    fm__shape_flat(&L->out, U);
  return FM_OK;
}

static size_t fm__lstm_tensors(const fm__layer *L, fm__tensor_desc *t) {
  size_t F = L->in.d[1], U = L->arg[0];
  t[0] = (fm__tensor_desc){"kernel", 2, {F, 4 * U}, F, 4 * U, FM__INIT_GLOROT};
  t[1] = (fm__tensor_desc){"recurrent_kernel", 2, {U, 4 * U}, 0, 0, FM__INIT_ORTHOGONAL};
  t[2] = (fm__tensor_desc){"bias", 1, {4 * U}, 0, 0, FM__INIT_LSTM_BIAS};
  return 3;
}

static size_t fm__lstm_aux(const fm__layer *L) { return fm__lstm_cache_floats(1, L->in.d[0], L->arg[0]); }

static size_t fm__lstm_col(const fm__layer *L, size_t n) { return fm__lstm_scratch_floats(n, L->in.d[0], L->arg[0]); }

/* 2 T (F + U) 4U: the input projection and the recurrent product of every step */
static double fm__lstm_flops(const fm__layer *L) {
  return 2.0 * (double)L->in.d[0] * ((double)L->in.d[1] + (double)L->arg[0]) * 4.0 * (double)L->arg[0];
}

static void fm__lstm_fwd(const fm__layer *L, const fm__layer_pass *p) {
  fm__lstm_forward(p->out, p->aux, p->in, p->mask, p->w[0], p->w[1], p->w[2], p->n, L->in.d[0], L->in.d[1],
                   L->arg[0], L->word == 1);
}

static void fm__lstm_bwd(const fm__layer *L, const fm__layer_pass *p) {
  fm__lstm_backward(p->din, p->dw[0], p->dw[1], p->dw[2], p->col, p->dout, p->aux, p->in, p->mask, p->w[0], p->w[1],
                    p->n, L->in.d[0], L->in.d[1], L->arg[0], L->word == 1);
}

/* ---- relu ------------------------------------------------------------------------------ */

static void fm__relu_fwd(const fm__layer *L, const fm__layer_pass *p) {
  size_t k = p->n * L->out.numel;
  if (p->out != p->in) memcpy(p->out, p->in, k * sizeof *p->out); /* never overwrite the model's input */
  fm__relu_forward(p->out, k);
}

static void fm__relu_bwd(const fm__layer *L, const fm__layer_pass *p) {
  if (p->din) fm__relu_backward(p->din, p->dout, p->out, p->n * L->out.numel);
}

/* ---- sigmoid, tanh: backward from the output ------------------------------------------- */

static void fm__sigmoid_fwd(const fm__layer *L, const fm__layer_pass *p) {
  fm__sigmoid_forward(p->out, p->in, p->n * L->out.numel);
}

static void fm__sigmoid_bwd(const fm__layer *L, const fm__layer_pass *p) {
  if (p->din) fm__sigmoid_backward(p->din, p->dout, p->out, p->n * L->out.numel);
}

static void fm__tanh_fwd(const fm__layer *L, const fm__layer_pass *p) {
  fm__tanh_forward(p->out, p->in, p->n * L->out.numel);
}

static void fm__tanh_bwd(const fm__layer *L, const fm__layer_pass *p) {
  if (p->din) fm__tanh_backward(p->din, p->dout, p->out, p->n * L->out.numel);
}

/* ---- dropout(rate): Keras Dropout, training only ---------------------------------------- */

static size_t fm__dropout_aux(const fm__layer *L) { return (L->out.numel + 3) / 4; /* one byte per unit */ }

static void fm__dropout_fwd(const fm__layer *L, const fm__layer_pass *p) {
  const size_t k = p->n * L->out.numel;
  if (!p->training) { /* the identity at inference */
    if (p->out != p->in) memcpy(p->out, p->in, k * sizeof *p->out);
    return;
  }
  fm__dropout_key key = {p->key[0], p->key[1], p->key[2], p->key[3], L->dropout_index};
  fm__dropout_forward(p->out, p->aux, p->in, k, (float)L->rate, &key);
}

static void fm__dropout_bwd(const fm__layer *L, const fm__layer_pass *p) {
  if (p->din) fm__dropout_backward(p->din, p->dout, p->aux, p->n * L->out.numel, (float)L->rate);
}

/* ---- conv2d(filters, kernel[, same|valid]): stride 1, TF padding ------------------------ */

static int fm__conv_shape(fm__layer *L, size_t num_classes) {
  (void)num_classes;
  FM_CALL(fm__need_image(L));
  size_t H = L->in.d[0], W = L->in.d[1], IC = L->in.d[2], F = L->arg[0], K = L->arg[1];
  const size_t lim = INT_MAX, big = SIZE_MAX / 8;
  size_t hw, outn, kk, kkc, unused;
  int ok = fm__mul_le(H, W, lim, &hw) && fm__mul_le(hw, F, lim, &outn) && fm__mul_le(hw, IC, lim, &unused) &&
           fm__mul_le(K, K, lim, &kk) && fm__mul_le(kk, IC, lim, &kkc) && fm__mul_le(kkc, F, big, &unused) &&
           fm__mul_le(hw, kkc, big, &unused);
  if (!ok)
    return fm__layer_error(L, FM_ERR_OVERFLOW,
                           "a %zux%zux%zu input with %zu filters of %zux%zu exceeds the BLAS dimension limit (%d)", H,
                           W, IC, F, K, K, INT_MAX);
  if (L->valid) {
    if (K > H || K > W)
      return fm__layer_error(L, FM_ERR_SPEC_MISMATCH, "a %zux%zu 'valid' kernel does not fit its %zux%zu input", K, K,
                             H, W);
    fm__shape_image(&L->out, H - K + 1, W - K + 1, F);
  } else {
    fm__shape_image(&L->out, H, W, F);
  }
  return FM_OK;
}

static size_t fm__conv_tensors(const fm__layer *L, fm__tensor_desc *t) {
  size_t IC = L->in.d[2], F = L->arg[0], K = L->arg[1];
  t[0] = (fm__tensor_desc){"kernel", 4, {K, K, IC, F}, K * K * IC, K * K * F, FM__INIT_GLOROT}; /* Keras's fans */
  t[1] = (fm__tensor_desc){"bias", 1, {F}, 0, 0, FM__INIT_GLOROT};
  return 2;
}

static size_t fm__conv_col(const fm__layer *L, size_t n) {
  if (L->valid) return fm__conv2d_valid_col_floats(n, L->in.d[0], L->in.d[1], L->in.d[2], L->arg[1], L->arg[1]);
  return fm__conv2d_col_floats(n, L->in.d[0], L->in.d[1], L->in.d[2], L->arg[1], L->arg[1]);
}

/* 2 * K * K * IC * F per output pixel */
static double fm__conv_flops(const fm__layer *L) {
  return 2.0 * (double)L->arg[1] * (double)L->arg[1] * (double)L->in.d[2] * (double)L->out.numel;
}

static void fm__conv_fwd(const fm__layer *L, const fm__layer_pass *p) {
  if (L->valid) {
    fm__conv2d_valid_forward(p->out, p->col, p->in, p->w[0], p->w[1], p->n, L->in.d[0], L->in.d[1], L->in.d[2],
                             L->arg[1], L->arg[1], L->arg[0]);
    return;
  }
  fm__conv2d_forward(p->out, p->col, p->in, p->w[0], p->w[1], p->n, L->in.d[0], L->in.d[1], L->in.d[2], L->arg[1],
                     L->arg[1], L->arg[0]);
}

static void fm__conv_bwd(const fm__layer *L, const fm__layer_pass *p) {
  if (L->valid) {
    fm__conv2d_valid_backward(p->din, p->dw[0], p->dw[1], p->col, p->dout, p->in, p->w[0], p->n, L->in.d[0],
                              L->in.d[1], L->in.d[2], L->arg[1], L->arg[1], L->arg[0]);
    return;
  }
  fm__conv2d_backward(p->din, p->dw[0], p->dw[1], p->col, p->dout, p->in, p->w[0], p->n, L->in.d[0], L->in.d[1],
                      L->in.d[2], L->arg[1], L->arg[1], L->arg[0]);
}

/* ---- maxpool[(2)]: 2x2, stride 2, Keras 'same' ----------------------------------------- */

static int fm__pool_shape(fm__layer *L, size_t num_classes) {
  (void)num_classes;
  if (L->nargs && L->arg[0] != 2)
    return fm__layer_error(L, FM_ERR_INVALID_ARG, "only 2x2 pooling is supported (got pool size %zu)", L->arg[0]);
  FM_CALL(fm__need_image(L));
  if (L->in.numel > INT32_MAX)
    return fm__layer_error(L, FM_ERR_OVERFLOW, "an input of %zu values exceeds the int32 pooling indices", L->in.numel);
  fm__shape_image(&L->out, (L->in.d[0] + 1) / 2, (L->in.d[1] + 1) / 2, L->in.d[2]);
  return FM_OK;
}

static size_t fm__pool_aux(const fm__layer *L) { return L->out.numel; /* int32 argmax */ }

static void fm__pool_fwd(const fm__layer *L, const fm__layer_pass *p) {
  fm__maxpool2x2_forward(p->out, p->aux, p->in, p->n, L->in.d[0], L->in.d[1], L->in.d[2]);
}

static void fm__pool_bwd(const fm__layer *L, const fm__layer_pass *p) {
  if (p->din) fm__maxpool2x2_backward(p->din, p->dout, p->aux, p->n, L->in.d[0], L->in.d[1], L->in.d[2]);
}

/* ---- flatten, reshape(...): views ------------------------------------------------------ */

static int fm__flatten_shape(fm__layer *L, size_t num_classes) {
  (void)num_classes;
  fm__shape_flat(&L->out, L->in.numel); /* row-major (h, w, c), as Keras */
  return FM_OK;
}

static int fm__reshape_shape(fm__layer *L, size_t num_classes) {
  (void)num_classes;
  size_t numel = 1;
  for (size_t i = 0; i < L->nargs; i++)
    if (!fm__mul_le(numel, L->arg[i], SIZE_MAX / 8, &numel)) numel = SIZE_MAX;
  char b[96];
  if (numel != L->in.numel)
    return fm__layer_error(L, FM_ERR_SPEC_MISMATCH, "has %zu values per example but its input %s has %zu", numel,
                           fm__shape_str(&L->in, b, sizeof b), L->in.numel);
  if (L->nargs == 1)
    fm__shape_flat(&L->out, L->arg[0]);
  else
    fm__shape_image(&L->out, L->arg[0], L->arg[1], L->nargs == 3 ? L->arg[2] : 1);
  return FM_OK;
}

/* ---- softmax: the loss, named explicitly -------------------------------------------------- */

static int fm__softmax_shape(fm__layer *L, size_t num_classes) {
  char b[96];
  if ((L->in.ndim == 1 && L->in.numel == num_classes) || (L->in.ndim == 2 && L->in.d[1] == num_classes)) return FM_OK;
  return fm__layer_error(L, FM_ERR_SPEC_MISMATCH,
                         "the softmax cross-entropy needs one logit per class, %zu, but gets %s; end the stack with "
                         "'dense' (as many units as classes)",
                         num_classes, fm__shape_str(&L->in, b, sizeof b));
}

/* ---- mse: the loss, mean squared error against the input (an autoencoder) ----------------------- */

static int fm__mse_shape(fm__layer *L, size_t num_classes) {
  (void)num_classes;
  (void)L;
  return FM_OK; /* stack.c compares the output with the input: it knows the input */
}

/* ---- the table ------------------------------------------------------------------------------ */

static const char *const fm__units_arg[] = {"units"};
static const char *const fm__conv_args[] = {"filters", "kernel size", "padding"};
static const char *const fm__rate_arg[] = {"rate"};
static const char *const fm__pool_args[] = {"pool size"};
static const char *const fm__reshape_args[] = {"height", "width", "channels"};
static const char *const fm__padding_words[] = {"same", "valid", NULL};
static const char *const fm__embedding_args[] = {"vocabulary size or dimension", "dimension", "mask_zero"};
static const char *const fm__mask_words[] = {"mask_zero", NULL};
static const char *const fm__lstm_args[] = {"units", "return"};
static const char *const fm__return_words[] = {"sequences", "last", NULL};

const fm__layer_kind fm__layer_kinds[] = {
    {.name = "dense",
     .usage = "dense(units), or bare 'dense' for as many units as classes",
     .prefix = "dense",
     .max_args = 1,
     .arg_names = fm__units_arg,
     .shape = fm__dense_shape,
     .tensors = fm__dense_tensors,
     .flops = fm__dense_flops,
     .forward = fm__dense_fwd,
     .backward = fm__dense_bwd},
    {.name = "relu",
     .usage = "relu",
     .flags = FM__LAYER_INPLACE | FM__LAYER_NEEDS_OUT,
     .forward = fm__relu_fwd,
     .backward = fm__relu_bwd},
    {.name = "sigmoid",
     .usage = "sigmoid",
     .flags = FM__LAYER_NEEDS_OUT,
     .forward = fm__sigmoid_fwd,
     .backward = fm__sigmoid_bwd},
    {.name = "tanh", .usage = "tanh", .flags = FM__LAYER_NEEDS_OUT, .forward = fm__tanh_fwd, .backward = fm__tanh_bwd},
    {.name = "dropout",
     .usage = "dropout(rate), rate in [0, 1)",
     .flags = FM__LAYER_RATE,
     .min_args = 1,
     .max_args = 1,
     .arg_names = fm__rate_arg,
     .aux_floats = fm__dropout_aux,
     .forward = fm__dropout_fwd,
     .backward = fm__dropout_bwd},
    {.name = "conv2d",
     .usage = "conv2d(filters, kernel size[, same|valid])",
     .prefix = "conv2d",
     .flags = FM__LAYER_PADDING,
     .min_args = 2,
     .max_args = 3,
     .arg_names = fm__conv_args,
     .words = fm__padding_words,
     .word_what = "padding",
     .shape = fm__conv_shape,
     .tensors = fm__conv_tensors,
     .col_floats = fm__conv_col,
     .flops = fm__conv_flops,
     .forward = fm__conv_fwd,
     .backward = fm__conv_bwd},
    {.name = "maxpool",
     .usage = "maxpool or maxpool(2)",
     .max_args = 1,
     .arg_names = fm__pool_args,
     .shape = fm__pool_shape,
     .aux_floats = fm__pool_aux,
     .forward = fm__pool_fwd,
     .backward = fm__pool_bwd},
    {.name = "flatten", .usage = "flatten", .flags = FM__LAYER_VIEW, .shape = fm__flatten_shape},
    {.name = "reshape",
     .usage = "reshape(features) or reshape(height, width[, channels])",
     .flags = FM__LAYER_VIEW,
     .min_args = 1,
     .max_args = 3,
     .arg_names = fm__reshape_args,
     .shape = fm__reshape_shape},
    {.name = "embedding",
     .usage = "embedding([vocabulary,] dimension[, mask_zero]), first; vocabulary defaults to the classes",
     .prefix = "embedding",
     .min_args = 1,
     .max_args = 3,
     .arg_names = fm__embedding_args,
     .words = fm__mask_words,
     .word_what = "option",
     .shape = fm__embedding_shape,
     .tensors = fm__embedding_tensors,
     .aux_floats = fm__embedding_aux,
     .forward = fm__embedding_fwd,
     .backward = fm__embedding_bwd},
    {.name = "lstm",
     .usage = "lstm(units[, sequences|last]), on a sequence (T, F)",
     .prefix = "lstm",
     .min_args = 1,
     .max_args = 2,
     .arg_names = fm__lstm_args,
     .words = fm__return_words,
     .word_what = "return mode",
     .shape = fm__lstm_shape,
     .tensors = fm__lstm_tensors,
     .aux_floats = fm__lstm_aux,
     .col_floats = fm__lstm_col,
     .flops = fm__lstm_flops,
     .forward = fm__lstm_fwd,
     .backward = fm__lstm_bwd},
    {.name = "softmax",
     .usage = "softmax (the loss, softmax cross-entropy; last)",
     .flags = FM__LAYER_LOSS,
     .shape = fm__softmax_shape},
    {.name = "mse",
     .usage = "mse (the loss, mean squared error against the input: an autoencoder; last)",
     .flags = FM__LAYER_LOSS,
     .shape = fm__mse_shape},
    {.name = NULL},
};
