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
 * units as the data has classes. */

static int fm__dense_shape(fm__layer *L, size_t num_classes) {
  FM_CALL(fm__need_flat(L));
  size_t units = L->nargs ? L->arg[0] : num_classes;
  if (L->in.numel > INT_MAX || units > INT_MAX)
    return fm__layer_error(L, FM_ERR_OVERFLOW, "%zu inputs x %zu units exceed the BLAS dimension limit (%d)",
                           L->in.numel, units, INT_MAX);
  fm__shape_flat(&L->out, units);
  return FM_OK;
}

static size_t fm__dense_tensors(const fm__layer *L, fm__tensor_desc *t) {
  size_t F = L->in.numel, U = L->out.numel;
  t[0] = (fm__tensor_desc){"kernel", 2, {F, U}, F, U};
  t[1] = (fm__tensor_desc){"bias", 1, {U}, 0, 0};
  return 2;
}

static double fm__dense_flops(const fm__layer *L) { return 2.0 * (double)L->in.numel * (double)L->out.numel; }

static void fm__dense_fwd(const fm__layer *L, const fm__layer_pass *p) {
  fm__dense_forward(p->out, p->in, p->w[0], p->w[1], p->n, L->in.numel, L->out.numel);
}

static void fm__dense_bwd(const fm__layer *L, const fm__layer_pass *p) {
  fm__dense_backward(p->din, p->dw[0], p->dw[1], p->dout, p->in, p->w[0], p->n, L->in.numel, L->out.numel);
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
  t[0] = (fm__tensor_desc){"kernel", 4, {K, K, IC, F}, K * K * IC, K * K * F}; /* Keras's fans */
  t[1] = (fm__tensor_desc){"bias", 1, {F}, 0, 0};
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
  if (L->in.ndim == 1 && L->in.numel == num_classes) return FM_OK;
  return fm__layer_error(L, FM_ERR_SPEC_MISMATCH,
                         "the softmax cross-entropy needs one logit per class, %zu, but gets %s; end the stack with "
                         "'dense' (as many units as classes)",
                         num_classes, fm__shape_str(&L->in, b, sizeof b));
}

/* ---- the table ------------------------------------------------------------------------------ */

static const char *const fm__units_arg[] = {"units"};
static const char *const fm__conv_args[] = {"filters", "kernel size", "padding"};
static const char *const fm__rate_arg[] = {"rate"};
static const char *const fm__pool_args[] = {"pool size"};
static const char *const fm__reshape_args[] = {"height", "width", "channels"};

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
    {.name = "softmax",
     .usage = "softmax (the loss, softmax cross-entropy; last)",
     .flags = FM__LAYER_LOSS,
     .shape = fm__softmax_shape},
    {.name = NULL},
};
