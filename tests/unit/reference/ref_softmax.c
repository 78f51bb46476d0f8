/* tests/unit/reference/ref_softmax.c — the hand-written "softmax" model, kept only as
 * the reference test_stack.c compares its stack against (bit for bit). It
 * was src/model/softmax.c until the named model became an alias of its stack
 * (src/model/named.c); ref_models.h compiles it into the test.
 *
 * It is softmax (multinomial logistic) regression:
 * probs = softmax(x @ kernel + bias), loss = mean cross-entropy.
 *
 * What it does: builds the layout "dense_0/kernel" (D, C) and "dense_0/bias"
 * (C), both trainable; initialises the kernel Glorot-uniform from the stream
 * (seed, 0, tensor index 0, FM_RNG_INIT) and the bias with zeros; forward and
 * backward through the kernels of layers.c. Workspace per example: probs (C)
 * and dlogits (C), laid out for the batch size n of each call.
 *
 * What it deliberately does not do: regularisation, class weights, or any
 * state between calls other than what forward() caches in the workspace for
 * backward(). It keeps no private data (fm_model_data() is NULL). */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "fedmpi/model.h"
#include "internal.h"
#include "layers.h"
#include "model_private.h"

/* Tensor indices in the layout. */
enum { FM__SM_KERNEL = 0, FM__SM_BIAS = 1 };

static size_t fm__softmax_workspace_size(const fm_model *m, size_t max_batch) {
  size_t per = 2 * fm_model_input_spec(m)->num_classes; /* probs + dlogits */
  if (max_batch > SIZE_MAX / sizeof(float) / per) return SIZE_MAX;
  return max_batch * per * sizeof(float);
}

static int fm__softmax_init(const fm_model *m, float *w, uint64_t seed) {
  const fm_input_spec *s = fm_model_input_spec(m);
  const fm_layout *l = fm_model_layout(m);
  const fm_tensor_info *k = fm_layout_tensor(l, FM__SM_KERNEL), *b = fm_layout_tensor(l, FM__SM_BIAS);
  fm__glorot_uniform(w + k->offset, s->num_features, s->num_classes, seed, FM__SM_KERNEL);
  memset(w + b->offset, 0, b->numel * sizeof *w);
  return FM_OK;
}

static int fm__softmax_forward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                               int training, float *loss, float *probs) {
  (void)training; /* the cache (probs) is always written */
  FM_CHECK(n <= INT_MAX, FM_ERR_OVERFLOW, "softmax: batch of %zu examples exceeds the BLAS limit", n);
  const fm_input_spec *s = fm_model_input_spec(m);
  const fm_layout *l = fm_model_layout(m);
  size_t D = s->num_features, C = s->num_classes;
  float *p = ws; /* (n, C): logits, then probs in place */
  fm__dense_forward(p, x, w + fm_layout_tensor(l, FM__SM_KERNEL)->offset, w + fm_layout_tensor(l, FM__SM_BIAS)->offset,
                    n, D, C);
  *loss = fm__softmax_xent_forward(p, p, y, n, C);
  if (probs) memcpy(probs, p, n * C * sizeof *probs);
  return FM_OK;
}

static int fm__softmax_backward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                                float *dw) {
  FM_CHECK(n <= INT_MAX, FM_ERR_OVERFLOW, "softmax: batch of %zu examples exceeds the BLAS limit", n);
  const fm_input_spec *s = fm_model_input_spec(m);
  const fm_layout *l = fm_model_layout(m);
  size_t D = s->num_features, C = s->num_classes;
  const float *p = ws;                  /* (n, C) cached by forward */
  float *dlogits = (float *)ws + n * C; /* (n, C) */
  size_t ko = fm_layout_tensor(l, FM__SM_KERNEL)->offset, bo = fm_layout_tensor(l, FM__SM_BIAS)->offset;
  fm__softmax_xent_backward(dlogits, p, y, n, C);
  fm__dense_backward(NULL, dw + ko, dw + bo, dlogits, x, w + ko, n, D, C);
  return FM_OK;
}

static const fm_model_ops fm__softmax_ops = {
    .workspace_size = fm__softmax_workspace_size,
    .init_weights = fm__softmax_init,
    .forward = fm__softmax_forward,
    .backward = fm__softmax_backward,
    .destroy = NULL,
};

int ref_model_create_softmax(const fm_input_spec *spec, fm_model **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "ref_model_create_softmax: out is NULL");
  *out = NULL;
  FM_CALL(fm__input_spec_check_blas(spec, "softmax"));
  fm_layout *l = NULL;
  int rc;
  FM_CALL(fm_layout_create(&l));
  size_t kshape[2] = {spec->num_features, spec->num_classes}, bshape[1] = {spec->num_classes};
  FM_CALL_GOTO(rc, fm_layout_add(l, "dense_0/kernel", 2, kshape, 1), fail);
  FM_CALL_GOTO(rc, fm_layout_add(l, "dense_0/bias", 1, bshape, 1), fail);
  return fm_model_create("softmax", &fm__softmax_ops, spec, l, NULL, out); /* takes l */
fail:
  fm_layout_destroy(&l);
  return rc;
}
