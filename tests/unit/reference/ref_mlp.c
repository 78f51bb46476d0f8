/* tests/unit/reference/ref_mlp.c — the hand-written "mlp" model, kept only as
 * the reference test_stack.c compares its stack against (bit for bit). It
 * was src/model/mlp.c until the named model became an alias of its stack
 * (src/model/named.c); ref_models.h compiles it into the test.
 *
 * It is multi-layer perceptron: (dense + ReLU) for each hidden
 * size, then a dense layer to C logits and softmax cross-entropy.
 *
 * What it does: builds the layout dense_<i>/kernel (in, out) and
 * dense_<i>/bias (out) for i = 0..num_hidden, all trainable; initialises every
 * kernel Glorot-uniform from the stream (seed, 0, tensor index, FM_RNG_INIT)
 * and every bias with zeros (the same rule as softmax.c, so an MLP without
 * hidden layers IS softmax regression, down to its weights and type name
 * "softmax"); forward keeps every post-ReLU activation in the workspace and
 * backward adds the gradient of the mean batch loss into dw.
 *
 * Workspace for a batch of n (per example, in floats): the activations of
 * all hidden layers (sum of hidden sizes), probs (C), dlogits (C) and two
 * ping-pong gradient buffers (2 * max hidden size). The ReLU is applied in
 * place: its output's sign is all backward needs.
 *
 * What it deliberately does not do: dropout, other activations, or weight
 * sharing; the type name "mlp:h1,h2,..." it records is canonical, so
 * fm_model_create_by_name(fm_model_type(m)) rebuilds the same model. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fedmpi/model.h"
#include "internal.h"
#include "layers.h"
#include "model_private.h"

typedef struct fm__mlp {
  size_t num_layers;  /* L = num_hidden + 1 dense layers */
  size_t sum_hidden;  /* floats per example of all hidden activations */
  size_t max_hidden;  /* widest hidden layer (0 without hidden layers) */
  size_t *dims;       /* (L + 1): D, hidden..., C */
  size_t *kernel_off; /* (L) offsets in the weights buffer */
  size_t *bias_off;   /* (L) */
  size_t buf[];       /* storage for the three arrays above */
} fm__mlp;

static size_t fm__mlp_per_example(const fm__mlp *p) {
  size_t C = p->dims[p->num_layers];
  return p->sum_hidden + 2 * C + 2 * p->max_hidden;
}

static size_t fm__mlp_workspace_size(const fm_model *m, size_t max_batch) {
  const fm__mlp *p = fm_model_data(m);
  size_t per = fm__mlp_per_example(p);
  if (max_batch > SIZE_MAX / sizeof(float) / per) return SIZE_MAX;
  return max_batch * per * sizeof(float);
}

static int fm__mlp_init(const fm_model *m, float *w, uint64_t seed) {
  const fm__mlp *p = fm_model_data(m);
  for (size_t l = 0; l < p->num_layers; l++) {
    fm__glorot_uniform(w + p->kernel_off[l], p->dims[l], p->dims[l + 1], seed, 2 * l);
    memset(w + p->bias_off[l], 0, p->dims[l + 1] * sizeof *w);
  }
  return FM_OK;
}

/* Workspace views for a batch of n. */
typedef struct fm__mlp_ws {
  float *act;        /* hidden activations, (n, hidden[l]) for each l, back to back */
  float *probs;      /* (n, C) */
  float *dlogits;    /* (n, C) */
  float *scratch[2]; /* (n, max_hidden) each */
} fm__mlp_ws;

static fm__mlp_ws fm__mlp_views(const fm__mlp *p, void *ws, size_t n) {
  size_t C = p->dims[p->num_layers];
  fm__mlp_ws v;
  v.act = ws;
  v.probs = v.act + n * p->sum_hidden;
  v.dlogits = v.probs + n * C;
  v.scratch[0] = v.dlogits + n * C;
  v.scratch[1] = v.scratch[0] + n * p->max_hidden;
  return v;
}

static int fm__mlp_forward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                           int training, float *loss, float *probs) {
  (void)training; /* the activations are always cached */
  FM_CHECK(n <= INT_MAX, FM_ERR_OVERFLOW, "%s: batch of %zu examples exceeds the BLAS limit", fm_model_type(m), n);
  const fm__mlp *p = fm_model_data(m);
  fm__mlp_ws v = fm__mlp_views(p, ws, n);
  size_t L = p->num_layers, C = p->dims[L];
  const float *in = x;
  float *act = v.act;
  for (size_t l = 0; l < L; l++) {
    size_t IC = p->dims[l], OC = p->dims[l + 1];
    float *out = (l + 1 < L) ? act : v.probs; /* (n, OC) */
    fm__dense_forward(out, in, w + p->kernel_off[l], w + p->bias_off[l], n, IC, OC);
    if (l + 1 < L) {
      fm__relu_forward(out, n * OC);
      act += n * OC;
    }
    in = out;
  }
  *loss = fm__softmax_xent_forward(v.probs, v.probs, y, n, C);
  if (probs) memcpy(probs, v.probs, n * C * sizeof *probs);
  return FM_OK;
}

static int fm__mlp_backward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                            float *dw) {
  FM_CHECK(n <= INT_MAX, FM_ERR_OVERFLOW, "%s: batch of %zu examples exceeds the BLAS limit", fm_model_type(m), n);
  const fm__mlp *p = fm_model_data(m);
  fm__mlp_ws v = fm__mlp_views(p, ws, n);
  size_t L = p->num_layers, C = p->dims[L];
  fm__softmax_xent_backward(v.dlogits, v.probs, y, n, C);
  const float *dout = v.dlogits; /* (n, dims[l + 1]) */
  /* act_end points just past the input activation of layer l */
  const float *act_end = v.act + n * p->sum_hidden;
  for (size_t l = L; l-- > 0;) {
    size_t IC = p->dims[l], OC = p->dims[l + 1];
    const float *in = l > 0 ? act_end - n * IC : x; /* (n, IC), post-ReLU of layer l - 1 */
    float *din = l > 0 ? v.scratch[l % 2] : NULL;   /* never the buffer dout lives in */
    fm__dense_backward(din, dw + p->kernel_off[l], dw + p->bias_off[l], dout, in, w + p->kernel_off[l], n, IC, OC);
    if (l > 0) {
      fm__relu_backward(din, din, in, n * IC);
      dout = din;
      act_end = in;
    }
  }
  return FM_OK;
}

static void fm__mlp_destroy(fm_model *m) { fm__free(fm_model_data(m)); }

static const fm_model_ops fm__mlp_ops = {
    .workspace_size = fm__mlp_workspace_size,
    .init_weights = fm__mlp_init,
    .forward = fm__mlp_forward,
    .backward = fm__mlp_backward,
    .destroy = fm__mlp_destroy,
};

/* "mlp:h1,h2,..." (or "softmax" without hidden layers) into a new string. */
static char *fm__mlp_type_name(const size_t *hidden, size_t num_hidden) {
  if (num_hidden == 0) return fm__strdup("softmax");
  size_t cap = 8 + 21 * num_hidden, len = 0;
  char *s = fm__malloc(cap);
  if (!s) return NULL;
  len += (size_t)snprintf(s, cap, "mlp:");
  for (size_t i = 0; i < num_hidden; i++) len += (size_t)snprintf(s + len, cap - len, "%s%zu", i ? "," : "", hidden[i]);
  return s;
}

int ref_model_create_mlp(const fm_input_spec *spec, const size_t *hidden, size_t num_hidden, fm_model **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "ref_model_create_mlp: out is NULL");
  *out = NULL;
  FM_CALL(fm__input_spec_check_blas(spec, "mlp"));
  FM_CHECK(hidden || num_hidden == 0, FM_ERR_INVALID_ARG, "mlp: hidden sizes are NULL but num_hidden = %zu",
           num_hidden);
  FM_CHECK(num_hidden < SIZE_MAX / 64, FM_ERR_INVALID_ARG, "mlp: num_hidden = %zu is absurd", num_hidden);
  for (size_t i = 0; i < num_hidden; i++)
    FM_CHECK(hidden[i] > 0 && hidden[i] <= INT_MAX, FM_ERR_INVALID_ARG,
             "mlp: hidden layer %zu has size %zu (must be in 1..%d)", i, hidden[i], INT_MAX);

  size_t L = num_hidden + 1;
  int rc = FM_OK;
  fm_layout *l = NULL;
  char *type = NULL;
  fm__mlp *p = fm__calloc(1, sizeof *p + (3 * L + 1) * sizeof(size_t));
  if (!p) return FM_ERR_NOMEM;
  p->num_layers = L;
  p->dims = p->buf;
  p->kernel_off = p->dims + L + 1;
  p->bias_off = p->kernel_off + L;
  p->dims[0] = spec->num_features;
  for (size_t i = 0; i < num_hidden; i++) {
    p->dims[i + 1] = hidden[i];
    FM_CHECK_GOTO(rc, p->sum_hidden <= SIZE_MAX / 4 - hidden[i], fail, FM_ERR_OVERFLOW, "mlp: hidden sizes overflow");
    p->sum_hidden += hidden[i];
    if (hidden[i] > p->max_hidden) p->max_hidden = hidden[i];
  }
  p->dims[L] = spec->num_classes;

  FM_CALL_GOTO(rc, fm_layout_create(&l), fail);
  for (size_t i = 0; i < L; i++) {
    char name[FM_TENSOR_NAME_MAX];
    size_t kshape[2] = {p->dims[i], p->dims[i + 1]}, bshape[1] = {p->dims[i + 1]};
    snprintf(name, sizeof name, "dense_%zu/kernel", i);
    FM_CALL_GOTO(rc, fm_layout_add(l, name, 2, kshape, 1), fail);
    snprintf(name, sizeof name, "dense_%zu/bias", i);
    FM_CALL_GOTO(rc, fm_layout_add(l, name, 1, bshape, 1), fail);
    p->kernel_off[i] = fm_layout_tensor(l, 2 * i)->offset;
    p->bias_off[i] = fm_layout_tensor(l, 2 * i + 1)->offset;
  }
  type = fm__mlp_type_name(hidden, num_hidden);
  if (!type) {
    rc = FM_ERR_NOMEM;
    goto fail;
  }
  rc = fm_model_create(type, &fm__mlp_ops, spec, l, p, out); /* takes l, copies type */
  l = NULL;
  fm__free(type);
  type = NULL;
  if (rc != FM_OK) goto fail;
  return FM_OK;

fail:
  fm__free(type);
  fm_layout_destroy(&l);
  fm__free(p);
  return rc;
}
