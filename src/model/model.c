/* src/model/model.c — the fm_model object: a type name, a copy of the
 * implementation's vtable, the input spec, the weights layout (owned), the
 * implementation's private data, and the list of metrics the model reports.
 *
 * What it does: validates vtables and input specs at creation, keeps the
 * metric list (user metrics — accuracy by default — followed by the built-in
 * loss, num_examples and num_batches), and provides the checked dispatch
 * functions (NULL pointers, empty batches and out-of-range labels are caught
 * here once, so implementations can trust their arguments).
 *
 * What it deliberately does not do: hold weights or workspaces (models are
 * functional and shared read-only by all threads), run any numerics, or
 * release the implementation's data when fm_model_create fails (only the
 * layout is taken over on failure; data is released by ops->destroy once a
 * model exists). */
#include <limits.h>
#include <string.h>

#include "fedmpi/model.h"
#include "internal.h"
#include "model_private.h"

#define FM__NUM_BUILTIN_METRICS 3

struct fm_model {
  char *type;
  fm_model_ops ops;
  fm_input_spec spec;
  fm_layout *layout;
  void *data;
  /* user metrics (accuracy first by default); the built-ins follow them */
  const fm_metric **user;
  size_t num_user, cap_user;
  size_t num_targets; /* labels per example (T): 1 by default */
  size_t pred_size;   /* floats of probs per example (P): C by default */
};

/* ---- input spec ------------------------------------------------------------ */

int fm__input_spec_check(const fm_input_spec *spec) {
  FM_CHECK(spec, FM_ERR_INVALID_ARG, "input spec is NULL");
  FM_CHECK(spec->ndim >= 1 && spec->ndim <= FM_MAX_DIMS, FM_ERR_INVALID_ARG, "input spec: ndim %d outside 1..%d",
           spec->ndim, FM_MAX_DIMS);
  size_t d = 1;
  for (int i = 0; i < spec->ndim; i++) {
    FM_CHECK(spec->shape[i] > 0, FM_ERR_INVALID_ARG, "input spec: feature dimension %d is zero", i);
    FM_CHECK(d <= SIZE_MAX / spec->shape[i], FM_ERR_OVERFLOW, "input spec: number of features overflows");
    d *= spec->shape[i];
  }
  FM_CHECK(spec->num_features == d, FM_ERR_INVALID_ARG,
           "input spec: num_features %zu is not the product of the shape (%zu)", spec->num_features, d);
  FM_CHECK(spec->num_classes > 0, FM_ERR_INVALID_ARG, "input spec: num_classes is zero");
  FM_CHECK(spec->num_classes <= INT32_MAX, FM_ERR_INVALID_ARG, "input spec: num_classes %zu does not fit int32 labels",
           spec->num_classes);
  return FM_OK;
}

int fm__input_spec_check_blas(const fm_input_spec *spec, const char *model) {
  FM_CALL(fm__input_spec_check(spec));
  FM_CHECK(spec->num_features <= INT_MAX && spec->num_classes <= INT_MAX, FM_ERR_OVERFLOW,
           "model '%s': %zu features x %zu classes exceed the BLAS dimension limit (%d)", model, spec->num_features,
           spec->num_classes, INT_MAX);
  return FM_OK;
}

int fm_input_spec_set(fm_input_spec *spec, int ndim, const size_t *shape, size_t num_classes) {
  FM_CHECK(spec, FM_ERR_INVALID_ARG, "fm_input_spec_set: spec is NULL");
  FM_CHECK(ndim >= 1 && ndim <= FM_MAX_DIMS, FM_ERR_INVALID_ARG, "input spec: ndim %d outside 1..%d", ndim,
           FM_MAX_DIMS);
  FM_CHECK(shape, FM_ERR_INVALID_ARG, "fm_input_spec_set: shape is NULL");
  fm_input_spec s;
  memset(&s, 0, sizeof s);
  s.ndim = ndim;
  s.num_features = 1;
  for (int i = 0; i < ndim; i++) {
    s.shape[i] = shape[i];
    FM_CHECK(shape[i] > 0, FM_ERR_INVALID_ARG, "input spec: feature dimension %d is zero", i);
    FM_CHECK(s.num_features <= SIZE_MAX / shape[i], FM_ERR_OVERFLOW, "input spec: number of features overflows");
    s.num_features *= shape[i];
  }
  s.num_classes = num_classes;
  FM_CALL(fm__input_spec_check(&s));
  *spec = s;
  return FM_OK;
}

/* ---- creation / destruction ------------------------------------------------ */

int fm_model_create(const char *type, const fm_model_ops *ops, const fm_input_spec *spec, fm_layout *layout, void *data,
                    fm_model **out) {
  int rc = FM_OK;
  fm_model *m = NULL;
  FM_CHECK_GOTO(rc, out, fail, FM_ERR_INVALID_ARG, "fm_model_create: out is NULL");
  *out = NULL;
  FM_CHECK_GOTO(rc, type && *type, fail, FM_ERR_INVALID_ARG, "fm_model_create: type name is NULL or empty");
  FM_CHECK_GOTO(rc, ops, fail, FM_ERR_INVALID_ARG, "model '%s': ops is NULL", type);
  FM_CHECK_GOTO(rc, ops->workspace_size, fail, FM_ERR_INVALID_ARG, "model '%s': ops->workspace_size is NULL", type);
  FM_CHECK_GOTO(rc, ops->init_weights, fail, FM_ERR_INVALID_ARG, "model '%s': ops->init_weights is NULL", type);
  FM_CHECK_GOTO(rc, ops->forward, fail, FM_ERR_INVALID_ARG, "model '%s': ops->forward is NULL", type);
  FM_CHECK_GOTO(rc, ops->backward, fail, FM_ERR_INVALID_ARG, "model '%s': ops->backward is NULL", type);
  FM_CHECK_GOTO(rc, layout, fail, FM_ERR_INVALID_ARG, "model '%s': layout is NULL", type);
  FM_CALL_GOTO(rc, fm__input_spec_check(spec), fail);

  m = fm__calloc(1, sizeof *m);
  if (!m) {
    rc = FM_ERR_NOMEM;
    goto fail;
  }
  m->type = fm__strdup(type);
  m->cap_user = 4;
  m->user = fm__malloc(m->cap_user * sizeof *m->user);
  if (!m->type || !m->user) {
    rc = FM_ERR_NOMEM;
    goto fail;
  }
  m->user[m->num_user++] = fm_metric_accuracy();
  m->ops = *ops;
  m->spec = *spec;
  m->layout = layout;
  m->data = data;
  m->num_targets = 1;
  m->pred_size = spec->num_classes;
  *out = m;
  return FM_OK;

fail:
  if (m) {
    fm__free(m->type);
    fm__free(m->user);
    fm__free(m);
  }
  fm_layout_destroy(&layout);
  return rc;
}

void fm_model_destroy(fm_model **mp) {
  if (!mp || !*mp) return;
  fm_model *m = *mp;
  if (m->ops.destroy) m->ops.destroy(m);
  fm_layout_destroy(&m->layout);
  fm__free(m->user);
  fm__free(m->type);
  fm__free(m);
  *mp = NULL;
}

/* ---- accessors --------------------------------------------------------------- */

const char *fm_model_type(const fm_model *m) { return m ? m->type : NULL; }
const fm_layout *fm_model_layout(const fm_model *m) { return m ? m->layout : NULL; }
const fm_input_spec *fm_model_input_spec(const fm_model *m) { return m ? &m->spec : NULL; }
void *fm_model_data(const fm_model *m) { return m ? m->data : NULL; }
const fm_model_ops *fm__model_ops(const fm_model *m) { return m ? &m->ops : NULL; }

int fm_model_set_targets(fm_model *m, size_t num_targets, size_t prediction_size) {
  FM_CHECK(m, FM_ERR_INVALID_ARG, "fm_model_set_targets: model is NULL");
  FM_CHECK(prediction_size > 0, FM_ERR_INVALID_ARG, "model '%s': a prediction size of 0", m->type);
  FM_CHECK(num_targets <= 1 || prediction_size % num_targets == 0, FM_ERR_INVALID_ARG,
           "model '%s': a prediction size of %zu is not a whole number of values for each of %zu targets", m->type,
           prediction_size, num_targets);
  FM_CHECK(num_targets <= (size_t)INT32_MAX, FM_ERR_INVALID_ARG, "model '%s': %zu targets per example", m->type,
           num_targets);
  m->num_targets = num_targets;
  m->pred_size = prediction_size;
  return FM_OK;
}

size_t fm_model_num_targets(const fm_model *m) { return m ? m->num_targets : 0; }
size_t fm_model_prediction_size(const fm_model *m) { return m ? m->pred_size : 0; }

void fm__model_clear_user_metrics(fm_model *m) {
  if (m) m->num_user = 0;
}

/* ---- metrics ------------------------------------------------------------------ */

static const fm_metric *fm__builtin_metric(size_t i) {
  switch (i) {
    case 0:
      return fm_metric_loss();
    case 1:
      return fm_metric_num_examples();
    case 2:
      return fm_metric_num_batches();
    default:
      return NULL;
  }
}

size_t fm_model_num_metrics(const fm_model *m) { return m ? m->num_user + FM__NUM_BUILTIN_METRICS : 0; }

const fm_metric *fm_model_metric(const fm_model *m, size_t i) {
  if (!m) return NULL;
  if (i < m->num_user) return m->user[i];
  return fm__builtin_metric(i - m->num_user);
}

int fm_model_add_metric(fm_model *m, const fm_metric *metric) {
  FM_CHECK(m, FM_ERR_INVALID_ARG, "fm_model_add_metric: model is NULL");
  FM_CHECK(metric, FM_ERR_INVALID_ARG, "fm_model_add_metric: metric is NULL");
  FM_CHECK(metric->name && *metric->name, FM_ERR_INVALID_ARG, "fm_model_add_metric: metric has no name");
  FM_CHECK(metric->update && metric->finalize, FM_ERR_INVALID_ARG,
           "metric '%s': update and finalize functions are required", metric->name);
  FM_CHECK(metric->num_values >= 1 && metric->num_values <= FM_METRIC_MAX_VALUES, FM_ERR_INVALID_ARG,
           "metric '%s': num_values %zu outside 1..%d", metric->name, metric->num_values, FM_METRIC_MAX_VALUES);
  for (size_t i = 0; i < fm_model_num_metrics(m); i++)
    FM_CHECK(strcmp(fm_model_metric(m, i)->name, metric->name) != 0, FM_ERR_INVALID_ARG,
             "model '%s' already reports a metric named '%s'", m->type, metric->name);
  if (m->num_user == m->cap_user) {
    size_t cap = 2 * m->cap_user;
    const fm_metric **u = fm__realloc((void *)m->user, cap * sizeof *u);
    if (!u) return FM_ERR_NOMEM;
    m->user = u;
    m->cap_user = cap;
  }
  m->user[m->num_user++] = metric;
  return FM_OK;
}

size_t fm_model_num_metric_values(const fm_model *m) {
  size_t total = 0;
  for (size_t i = 0; i < fm_model_num_metrics(m); i++) total += fm_model_metric(m, i)->num_values;
  return total;
}

/* ---- checked dispatch ------------------------------------------------------------ */

size_t fm_model_workspace_size(const fm_model *m, size_t max_batch) {
  if (!m) {
    FM_ERR(FM_ERR_INVALID_ARG, "fm_model_workspace_size: model is NULL");
    return 0;
  }
  return m->ops.workspace_size(m, max_batch);
}

int fm_model_init_weights(const fm_model *m, float *w, uint64_t seed) {
  FM_CHECK(m, FM_ERR_INVALID_ARG, "fm_model_init_weights: model is NULL");
  FM_CHECK(w, FM_ERR_INVALID_ARG, "model '%s': init_weights: weights buffer is NULL", m->type);
  return m->ops.init_weights(m, w, seed);
}

/* Arguments shared by forward and backward. */
static int fm__check_batch(const fm_model *m, const char *what, const void *ws, const float *w, const float *x,
                           const int32_t *y, size_t n) {
  FM_CHECK(m, FM_ERR_INVALID_ARG, "fm_model_%s: model is NULL", what);
  FM_CHECK(n > 0, FM_ERR_INVALID_ARG, "model '%s': %s on an empty batch (n = 0)", m->type, what);
  FM_CHECK(ws || m->ops.workspace_size(m, n) == 0, FM_ERR_INVALID_ARG, "model '%s': %s: workspace is NULL", m->type,
           what);
  FM_CHECK(w, FM_ERR_INVALID_ARG, "model '%s': %s: weights are NULL", m->type, what);
  FM_CHECK(x, FM_ERR_INVALID_ARG, "model '%s': %s: features x are NULL", m->type, what);
  if (m->num_targets == 0) return FM_OK; /* no labels: the target is the input */
  FM_CHECK(y, FM_ERR_INVALID_ARG, "model '%s': %s: labels y are NULL", m->type, what);
  const size_t T = m->num_targets;
  for (size_t i = 0; i < n * T; i++)
    FM_CHECK(y[i] >= 0 && (size_t)y[i] < m->spec.num_classes, FM_ERR_SPEC_MISMATCH,
             "model '%s': %s: label %ld of example %zu%s outside [0, %zu)", m->type, what, (long)y[i], i / T,
             T > 1 ? " (at a time step)" : "", m->spec.num_classes);
  return FM_OK;
}

int fm_model_forward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                     int training, float *loss, float *probs) {
  FM_CALL(fm__check_batch(m, "forward", ws, w, x, y, n));
  FM_CHECK(loss, FM_ERR_INVALID_ARG, "model '%s': forward: loss pointer is NULL", m->type);
  return m->ops.forward(m, ws, w, x, y, n, training ? 1 : 0, loss, probs);
}

int fm_model_backward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                      float *dw) {
  FM_CALL(fm__check_batch(m, "backward", ws, w, x, y, n));
  FM_CHECK(dw, FM_ERR_INVALID_ARG, "model '%s': backward: gradient buffer dw is NULL", m->type);
  return m->ops.backward(m, ws, w, x, y, n, dw);
}

void fm_model_set_step(const fm_model *m, void *ws, uint64_t seed, uint64_t round, uint64_t client, uint64_t step) {
  if (m && ws && m->ops.set_step) m->ops.set_step(m, ws, seed, round, client, step);
}
