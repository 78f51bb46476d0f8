/* tests/unit/reference/ref_cnn.c — the hand-written "cnn" model, kept only as
 * the reference test_stack.c compares its stack against (bit for bit). It
 * was src/model/cnn.c until the named model became an alias of its stack
 * (src/model/named.c); ref_models.h compiles it into the test.
 *
 * It is the CNN of McMahan et al. 2017, as TFF's
 * create_original_fedavg_cnn_model builds it in Keras:
 *   x (N, H, W, C0)
 *   -> conv2d_0: Conv2D(F1, KxK, 'same') + ReLU   a1 (N, H, W, F1)
 *   -> MaxPool2D(2x2, stride 2, 'same')           p1 (N, H1, W1, F1)   H1 = ceil(H / 2)
 *   -> conv2d_1: Conv2D(F2, KxK, 'same') + ReLU   a2 (N, H1, W1, F2)
 *   -> MaxPool2D(2x2, stride 2, 'same')           p2 (N, H2, W2, F2)   H2 = ceil(H1 / 2)
 *   -> Flatten (row-major h, w, c, as Keras)      (N, D2 = H2 * W2 * F2)
 *   -> dense_0: Dense(U) + ReLU                   a3 (N, U)
 *   -> dense_1: Dense(C)                          logits -> probs (N, C)
 *   loss = mean softmax cross-entropy.
 *
 * What it does: builds the layout conv2d_0/kernel (K, K, C0, F1),
 * conv2d_0/bias (F1), conv2d_1/kernel (K, K, F1, F2), conv2d_1/bias (F2),
 * dense_0/kernel (D2, U), dense_0/bias (U), dense_1/kernel (U, C),
 * dense_1/bias (C), all trainable; initialises every kernel Glorot-uniform
 * with Keras's fans (conv: fan_in = K*K*in, fan_out = K*K*out) from the
 * stream (seed, 0, tensor index, FM_RNG_INIT) and every bias with zeros, like
 * mlp.c; forward caches every activation and the pooling argmaxes in the
 * workspace and backward adds the gradient of the mean batch loss into dw.
 *
 * Workspace for a batch of n, in floats per example: a1, p1, arg1 (int32),
 * a2, p2, arg2 (int32), a3, probs, dlogits, two ping-pong gradient buffers
 * g0 = max(U, H1*W1*F2, H*W*F1) and g1 = max(D2, H1*W1*F1); plus ONE im2col
 * buffer shared by both conv layers, the larger of their
 * min(n, chunk) * pixels * K*K*in floats (see conv.c: 128 KiB, or one
 * example's patches if larger). Every region starts on a 64-byte boundary
 * relative to the workspace. For the default model on 28x28x1 that is
 * 353 KB per example plus 627 KB (conv 2's patches of one example): 11.9 MB
 * for a batch of 32. The ReLUs run in place: their output's sign is all
 * backward needs.
 *
 * What it deliberately does not do: dropout (the TFF model has none; its
 * "cnn_dropout" EMNIST variant is a different model), batch normalisation,
 * strides, NCHW input, or guessing an image shape from a flat (D,) spec. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fedmpi/model.h"
#include "internal.h"
#include "layers.h"
#include "model_private.h"

/* Tensor indices in the layout (also the init stream of each kernel). */
enum {
  FM__CNN_CONV0_K,
  FM__CNN_CONV0_B,
  FM__CNN_CONV1_K,
  FM__CNN_CONV1_B,
  FM__CNN_DENSE0_K,
  FM__CNN_DENSE0_B,
  FM__CNN_DENSE1_K,
  FM__CNN_DENSE1_B,
  FM__CNN_NUM_TENSORS
};

/* Workspace regions, in the order they are laid out. */
enum {
  FM__R_A1,
  FM__R_P1,
  FM__R_ARG1,
  FM__R_A2,
  FM__R_P2,
  FM__R_ARG2,
  FM__R_A3,
  FM__R_PROBS,
  FM__R_DLOGITS,
  FM__R_G0,
  FM__R_G1,
  FM__R_COL,
  FM__R_NUM
};

#define FM__CNN_ALIGN 16 /* floats: regions start 64 bytes apart */

typedef struct fm__cnn {
  size_t H, W, C0, K;    /* input image and kernel size */
  size_t F1, F2, U, C;   /* filters, dense units, classes */
  size_t H1, W1, H2, W2; /* after the first and second pooling */
  size_t D2;             /* H2 * W2 * F2, the flattened features */
  size_t per[FM__R_NUM]; /* floats per example of each region (COL: 0) */
  size_t off[FM__CNN_NUM_TENSORS];
} fm__cnn;

/* Floats of im2col scratch for a batch of n: the larger of the two convs. */
static size_t fm__cnn_col_floats(const fm__cnn *p, size_t n) {
  size_t c0 = fm__conv2d_col_floats(n, p->H, p->W, p->C0, p->K, p->K);
  size_t c1 = fm__conv2d_col_floats(n, p->H1, p->W1, p->F1, p->K, p->K);
  return c0 > c1 ? c0 : c1;
}

static size_t fm__round_up(size_t v) { return (v + FM__CNN_ALIGN - 1) / FM__CNN_ALIGN * FM__CNN_ALIGN; }

/* Region sizes in floats for a batch of n (int32 regions count as floats of
 * the same size). n <= the max_batch workspace_size accepted, so no overflow. */
static void fm__cnn_region_sizes(const fm__cnn *p, size_t n, size_t size[FM__R_NUM]) {
  for (int r = 0; r < FM__R_NUM; r++) size[r] = fm__round_up(n * p->per[r]);
  size[FM__R_COL] = fm__round_up(fm__cnn_col_floats(p, n));
}

static size_t fm__cnn_workspace_size(const fm_model *m, size_t max_batch) {
  const fm__cnn *p = fm_model_data(m);
  size_t per = 0;
  for (int r = 0; r < FM__R_NUM; r++) per += p->per[r]; /* checked at creation */
  /* room for rounding every region up, and the col buffer */
  size_t fixed = FM__R_NUM * FM__CNN_ALIGN + fm__cnn_col_floats(p, max_batch);
  if (max_batch > (SIZE_MAX / sizeof(float) - fixed) / per) return SIZE_MAX;
  return (max_batch * per + fixed) * sizeof(float);
}

/* Workspace views for a batch of n. */
typedef struct fm__cnn_ws {
  float *a1, *p1, *a2, *p2, *a3, *probs, *dlogits, *g0, *g1, *col;
  int32_t *arg1, *arg2;
} fm__cnn_ws;

static fm__cnn_ws fm__cnn_views(const fm__cnn *p, void *ws, size_t n) {
  size_t size[FM__R_NUM];
  float *base[FM__R_NUM];
  fm__cnn_region_sizes(p, n, size);
  float *at = ws;
  for (int r = 0; r < FM__R_NUM; r++) {
    base[r] = at;
    at += size[r];
  }
  fm__cnn_ws v;
  v.a1 = base[FM__R_A1];
  v.p1 = base[FM__R_P1];
  v.arg1 = (int32_t *)(void *)base[FM__R_ARG1];
  v.a2 = base[FM__R_A2];
  v.p2 = base[FM__R_P2];
  v.arg2 = (int32_t *)(void *)base[FM__R_ARG2];
  v.a3 = base[FM__R_A3];
  v.probs = base[FM__R_PROBS];
  v.dlogits = base[FM__R_DLOGITS];
  v.g0 = base[FM__R_G0];
  v.g1 = base[FM__R_G1];
  v.col = base[FM__R_COL];
  return v;
}

static int fm__cnn_init(const fm_model *m, float *w, uint64_t seed) {
  const fm__cnn *p = fm_model_data(m);
  size_t KK = p->K * p->K;
  fm__glorot_uniform_n(w + p->off[FM__CNN_CONV0_K], KK * p->C0 * p->F1, KK * p->C0, KK * p->F1, seed, FM__CNN_CONV0_K);
  fm__glorot_uniform_n(w + p->off[FM__CNN_CONV1_K], KK * p->F1 * p->F2, KK * p->F1, KK * p->F2, seed, FM__CNN_CONV1_K);
  fm__glorot_uniform(w + p->off[FM__CNN_DENSE0_K], p->D2, p->U, seed, FM__CNN_DENSE0_K);
  fm__glorot_uniform(w + p->off[FM__CNN_DENSE1_K], p->U, p->C, seed, FM__CNN_DENSE1_K);
  memset(w + p->off[FM__CNN_CONV0_B], 0, p->F1 * sizeof *w);
  memset(w + p->off[FM__CNN_CONV1_B], 0, p->F2 * sizeof *w);
  memset(w + p->off[FM__CNN_DENSE0_B], 0, p->U * sizeof *w);
  memset(w + p->off[FM__CNN_DENSE1_B], 0, p->C * sizeof *w);
  return FM_OK;
}

static int fm__cnn_forward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                           int training, float *loss, float *probs) {
  (void)training; /* the activations are always cached */
  FM_CHECK(n <= INT_MAX, FM_ERR_OVERFLOW, "%s: batch of %zu examples exceeds the BLAS limit", fm_model_type(m), n);
  const fm__cnn *p = fm_model_data(m);
  fm__cnn_ws v = fm__cnn_views(p, ws, n);
  const size_t *o = p->off;
  /* a1 (n, H, W, F1) = relu(conv(x (n, H, W, C0))) */
  fm__conv2d_forward(v.a1, v.col, x, w + o[FM__CNN_CONV0_K], w + o[FM__CNN_CONV0_B], n, p->H, p->W, p->C0, p->K, p->K,
                     p->F1);
  fm__relu_forward(v.a1, n * p->H * p->W * p->F1);
  /* p1 (n, H1, W1, F1) = maxpool(a1) */
  fm__maxpool2x2_forward(v.p1, v.arg1, v.a1, n, p->H, p->W, p->F1);
  /* a2 (n, H1, W1, F2) = relu(conv(p1)) */
  fm__conv2d_forward(v.a2, v.col, v.p1, w + o[FM__CNN_CONV1_K], w + o[FM__CNN_CONV1_B], n, p->H1, p->W1, p->F1, p->K,
                     p->K, p->F2);
  fm__relu_forward(v.a2, n * p->H1 * p->W1 * p->F2);
  /* p2 (n, H2, W2, F2) = maxpool(a2), read as (n, D2) */
  fm__maxpool2x2_forward(v.p2, v.arg2, v.a2, n, p->H1, p->W1, p->F2);
  /* a3 (n, U) = relu(p2 @ dense_0) */
  fm__dense_forward(v.a3, v.p2, w + o[FM__CNN_DENSE0_K], w + o[FM__CNN_DENSE0_B], n, p->D2, p->U);
  fm__relu_forward(v.a3, n * p->U);
  /* logits (n, C) = a3 @ dense_1, then probs in place */
  fm__dense_forward(v.probs, v.a3, w + o[FM__CNN_DENSE1_K], w + o[FM__CNN_DENSE1_B], n, p->U, p->C);
  *loss = fm__softmax_xent_forward(v.probs, v.probs, y, n, p->C);
  if (probs) memcpy(probs, v.probs, n * p->C * sizeof *probs);
  return FM_OK;
}

static int fm__cnn_backward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                            float *dw) {
  FM_CHECK(n <= INT_MAX, FM_ERR_OVERFLOW, "%s: batch of %zu examples exceeds the BLAS limit", fm_model_type(m), n);
  const fm__cnn *p = fm_model_data(m);
  fm__cnn_ws v = fm__cnn_views(p, ws, n);
  const size_t *o = p->off;
  /* dlogits (n, C) */
  fm__softmax_xent_backward(v.dlogits, v.probs, y, n, p->C);
  /* dense_1: da3 (n, U) in g0, through its ReLU */
  fm__dense_backward(v.g0, dw + o[FM__CNN_DENSE1_K], dw + o[FM__CNN_DENSE1_B], v.dlogits, v.a3, w + o[FM__CNN_DENSE1_K],
                     n, p->U, p->C);
  fm__relu_backward(v.g0, v.g0, v.a3, n * p->U);
  /* dense_0: dp2 (n, D2) in g1 */
  fm__dense_backward(v.g1, dw + o[FM__CNN_DENSE0_K], dw + o[FM__CNN_DENSE0_B], v.g0, v.p2, w + o[FM__CNN_DENSE0_K], n,
                     p->D2, p->U);
  /* pool 2: da2 (n, H1, W1, F2) in g0, through its ReLU */
  fm__maxpool2x2_backward(v.g0, v.g1, v.arg2, n, p->H1, p->W1, p->F2);
  fm__relu_backward(v.g0, v.g0, v.a2, n * p->H1 * p->W1 * p->F2);
  /* conv2d_1: dp1 (n, H1, W1, F1) in g1 */
  fm__conv2d_backward(v.g1, dw + o[FM__CNN_CONV1_K], dw + o[FM__CNN_CONV1_B], v.col, v.g0, v.p1, w + o[FM__CNN_CONV1_K],
                      n, p->H1, p->W1, p->F1, p->K, p->K, p->F2);
  /* pool 1: da1 (n, H, W, F1) in g0, through its ReLU */
  fm__maxpool2x2_backward(v.g0, v.g1, v.arg1, n, p->H, p->W, p->F1);
  fm__relu_backward(v.g0, v.g0, v.a1, n * p->H * p->W * p->F1);
  /* conv2d_0: parameters only, the input needs no gradient */
  fm__conv2d_backward(NULL, dw + o[FM__CNN_CONV0_K], dw + o[FM__CNN_CONV0_B], v.col, v.g0, x, w + o[FM__CNN_CONV0_K], n,
                      p->H, p->W, p->C0, p->K, p->K, p->F1);
  return FM_OK;
}

static void fm__cnn_destroy(fm_model *m) { fm__free(fm_model_data(m)); }

static const fm_model_ops fm__cnn_ops = {
    .workspace_size = fm__cnn_workspace_size,
    .init_weights = fm__cnn_init,
    .forward = fm__cnn_forward,
    .backward = fm__cnn_backward,
    .destroy = fm__cnn_destroy,
};

fm_cnn_config ref_cnn_config_default(void) {
  fm_cnn_config c;
  c.conv_filters[0] = 32;
  c.conv_filters[1] = 64;
  c.dense_units = 512;
  c.kernel_size = 5;
  return c;
}

/* a * b into *out unless it exceeds limit. */
static int fm__mul_le(size_t a, size_t b, size_t limit, size_t *out) {
  if (a && b > limit / a) return 0;
  *out = a * b;
  return 1;
}

/* Geometry and per-example sizes; every product the kernels form is checked
 * against INT_MAX once here (BLAS dimensions, int32 pooling indices). */
static int fm__cnn_geometry(fm__cnn *p, const fm_input_spec *spec, const fm_cnn_config *cfg) {
  FM_CHECK(spec->ndim == 2 || spec->ndim == 3, FM_ERR_SPEC_MISMATCH,
           "cnn: input shape must be (H, W) or (H, W, C) per example, got %d dimension%s (%zu features); "
           "reshape the data or use an mlp",
           spec->ndim, spec->ndim == 1 ? "" : "s", spec->num_features);
  p->H = spec->shape[0];
  p->W = spec->shape[1];
  p->C0 = spec->ndim == 3 ? spec->shape[2] : 1;
  p->F1 = cfg->conv_filters[0];
  p->F2 = cfg->conv_filters[1];
  p->U = cfg->dense_units;
  p->K = cfg->kernel_size;
  p->C = spec->num_classes;
  FM_CHECK(p->F1 > 0 && p->F2 > 0, FM_ERR_INVALID_ARG, "cnn: conv filters must be positive (got %zu, %zu)", p->F1,
           p->F2);
  FM_CHECK(p->U > 0, FM_ERR_INVALID_ARG, "cnn: dense units must be positive (got 0)");
  FM_CHECK(p->K > 0, FM_ERR_INVALID_ARG, "cnn: kernel size must be positive (got 0)");
  p->H1 = (p->H + 1) / 2;
  p->W1 = (p->W + 1) / 2;
  p->H2 = (p->H1 + 1) / 2;
  p->W2 = (p->W1 + 1) / 2;

  /* BLAS dimensions and int32 pooling indices must fit an int; checked in
   * order, so each product below only involves already-checked factors
   * (H1 * W1 <= H * W, H2 * W2 <= H1 * W1) */
  const size_t lim = INT_MAX, big = SIZE_MAX / 8;
  size_t hw, kk, a1, p1, a2, kkc0, kkc1, unused;
  int ok = fm__mul_le(p->H, p->W, lim, &hw) && fm__mul_le(hw, p->F1, lim, &a1) &&
           fm__mul_le(p->H1 * p->W1, p->F1, lim, &p1) && fm__mul_le(p->H1 * p->W1, p->F2, lim, &a2) &&
           fm__mul_le(p->H2 * p->W2, p->F2, lim, &p->D2) && fm__mul_le(p->K, p->K, lim, &kk) &&
           fm__mul_le(kk, p->C0, lim, &kkc0) && fm__mul_le(kk, p->F1, lim, &kkc1) && p->U <= lim &&
           /* kernel sizes and one example's im2col matrix (the smallest chunk) */
           fm__mul_le(kkc0, p->F1, big, &unused) && fm__mul_le(kkc1, p->F2, big, &unused) &&
           fm__mul_le(hw, kkc0, big, &unused) && fm__mul_le(p->H1 * p->W1, kkc1, big, &unused);
  FM_CHECK(ok, FM_ERR_OVERFLOW,
           "cnn: a %zux%zux%zu input with %zu and %zu filters of %zux%zu and %zu dense units exceeds the BLAS "
           "dimension limit (%d)",
           p->H, p->W, p->C0, p->F1, p->F2, p->K, p->K, p->U, INT_MAX);

  size_t *per = p->per;
  per[FM__R_A1] = a1;
  per[FM__R_P1] = per[FM__R_ARG1] = p1;
  per[FM__R_A2] = a2;
  per[FM__R_P2] = per[FM__R_ARG2] = p->D2;
  per[FM__R_A3] = p->U;
  per[FM__R_PROBS] = per[FM__R_DLOGITS] = p->C;
  per[FM__R_G0] = p->U > a2 ? p->U : a2;
  if (a1 > per[FM__R_G0]) per[FM__R_G0] = a1;
  per[FM__R_G1] = p->D2 > p1 ? p->D2 : p1;
  per[FM__R_COL] = 0;
  size_t total = 0;
  for (int r = 0; r < FM__R_NUM; r++) {
    FM_CHECK(total <= SIZE_MAX / 8 - per[r], FM_ERR_OVERFLOW, "cnn: workspace per example overflows");
    total += per[r];
  }
  return FM_OK;
}

int ref_model_create_cnn(const fm_input_spec *spec, const fm_cnn_config *config, fm_model **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "ref_model_create_cnn: out is NULL");
  *out = NULL;
  FM_CALL(fm__input_spec_check_blas(spec, "cnn"));
  fm_cnn_config cfg = config ? *config : ref_cnn_config_default();
  int rc = FM_OK;
  fm_layout *l = NULL;
  fm__cnn *p = fm__calloc(1, sizeof *p);
  if (!p) return FM_ERR_NOMEM;
  FM_CALL_GOTO(rc, fm__cnn_geometry(p, spec, &cfg), fail);

  const size_t K = p->K;
  const struct {
    const char *name;
    int ndim;
    size_t shape[4];
  } t[FM__CNN_NUM_TENSORS] = {
      {"conv2d_0/kernel", 4, {K, K, p->C0, p->F1}}, {"conv2d_0/bias", 1, {p->F1, 0, 0, 0}},
      {"conv2d_1/kernel", 4, {K, K, p->F1, p->F2}}, {"conv2d_1/bias", 1, {p->F2, 0, 0, 0}},
      {"dense_0/kernel", 2, {p->D2, p->U, 0, 0}},   {"dense_0/bias", 1, {p->U, 0, 0, 0}},
      {"dense_1/kernel", 2, {p->U, p->C, 0, 0}},    {"dense_1/bias", 1, {p->C, 0, 0, 0}},
  };
  FM_CALL_GOTO(rc, fm_layout_create(&l), fail);
  for (size_t i = 0; i < FM__CNN_NUM_TENSORS; i++) {
    FM_CALL_GOTO(rc, fm_layout_add(l, t[i].name, t[i].ndim, t[i].shape, 1), fail);
    p->off[i] = fm_layout_tensor(l, i)->offset;
  }

  char type[96];
  int len = snprintf(type, sizeof type, "cnn:%zu,%zu,%zu", p->F1, p->F2, p->U);
  if (K != 5) snprintf(type + len, sizeof type - (size_t)len, ",%zu", K);
  rc = fm_model_create(type, &fm__cnn_ops, spec, l, p, out); /* takes l, copies type */
  l = NULL;
  if (rc != FM_OK) goto fail;
  return FM_OK;

fail:
  fm_layout_destroy(&l);
  fm__free(p);
  return rc;
}
