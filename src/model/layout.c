/* src/model/layout.c — fm_layout: the ordered list of named tensors that
 * describes one flat float buffer of model weights.
 *
 * What it does: keeps a growable array of fm_tensor_info whose offsets are
 * contiguous in the order tensors are added, enforces the "trainable prefix"
 * rule (every trainable tensor precedes every non-trainable one, so gradients
 * and deltas are simply the first T floats), and rejects bad entries
 * (duplicate names, ndim outside 1..FM_MAX_DIMS, zero dimensions, sizes that
 * overflow size_t) with a message that names the tensor.
 *
 * What it deliberately does not do: hold or allocate weight values, align
 * tensors (offsets are dense, in floats), or allow removing/reordering
 * tensors — a layout only grows, and once a model owns it, it is frozen. */
#include <stdint.h>
#include <string.h>

#include "fedmpi/model.h"
#include "internal.h"

struct fm_layout {
  size_t n, cap;
  fm_tensor_info *t;
  size_t numel;           /* P: total floats */
  size_t trainable_numel; /* T: floats in the trainable prefix */
};

int fm_layout_create(fm_layout **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm_layout_create: out is NULL");
  *out = NULL;
  fm_layout *l = fm__calloc(1, sizeof *l);
  if (!l) return FM_ERR_NOMEM;
  *out = l;
  return FM_OK;
}

long fm_layout_find(const fm_layout *l, const char *name) {
  if (!l || !name) return -1;
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->t[i].name, name) == 0) return (long)i;
  return -1;
}

int fm_layout_add(fm_layout *l, const char *name, int ndim, const size_t *shape, int trainable) {
  FM_CHECK(l, FM_ERR_INVALID_ARG, "fm_layout_add: layout is NULL");
  FM_CHECK(name && *name, FM_ERR_INVALID_ARG, "fm_layout_add: tensor name is NULL or empty");
  FM_CHECK(strlen(name) < FM_TENSOR_NAME_MAX, FM_ERR_INVALID_ARG, "tensor name '%s' is too long (max %d characters)",
           name, FM_TENSOR_NAME_MAX - 1);
  FM_CHECK(fm_layout_find(l, name) < 0, FM_ERR_INVALID_ARG, "duplicate tensor name '%s' in layout", name);
  FM_CHECK(ndim >= 1 && ndim <= FM_MAX_DIMS, FM_ERR_INVALID_ARG, "tensor '%s': ndim %d outside 1..%d", name, ndim,
           FM_MAX_DIMS);
  FM_CHECK(shape, FM_ERR_INVALID_ARG, "tensor '%s': shape is NULL", name);
  FM_CHECK(!trainable || l->n == 0 || l->t[l->n - 1].trainable, FM_ERR_INVALID_ARG,
           "trainable tensor '%s' added after non-trainable tensor '%s' (trainable tensors must come first)", name,
           l->t[l->n - 1].name);

  size_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    FM_CHECK(shape[d] > 0, FM_ERR_INVALID_ARG, "tensor '%s': dimension %d is zero", name, d);
    FM_CHECK(numel <= SIZE_MAX / shape[d], FM_ERR_OVERFLOW, "tensor '%s': element count overflows", name);
    numel *= shape[d];
  }
  FM_CHECK(numel <= SIZE_MAX / sizeof(float) - l->numel, FM_ERR_OVERFLOW, "tensor '%s': layout size overflows", name);

  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 8;
    fm_tensor_info *t = fm__realloc(l->t, cap * sizeof *t);
    if (!t) return FM_ERR_NOMEM;
    l->t = t;
    l->cap = cap;
  }
  fm_tensor_info *ti = &l->t[l->n];
  memset(ti, 0, sizeof *ti);
  memcpy(ti->name, name, strlen(name) + 1);
  ti->ndim = ndim;
  for (int d = 0; d < ndim; d++) ti->shape[d] = shape[d];
  ti->numel = numel;
  ti->offset = l->numel;
  ti->trainable = trainable ? 1 : 0;
  l->n++;
  l->numel += numel;
  if (ti->trainable) l->trainable_numel += numel;
  return FM_OK;
}

size_t fm_layout_num_tensors(const fm_layout *l) { return l ? l->n : 0; }

const fm_tensor_info *fm_layout_tensor(const fm_layout *l, size_t i) {
  if (!l || i >= l->n) return NULL;
  return &l->t[i];
}

size_t fm_layout_numel(const fm_layout *l) { return l ? l->numel : 0; }

size_t fm_layout_trainable_numel(const fm_layout *l) { return l ? l->trainable_numel : 0; }

int fm_layout_equal(const fm_layout *a, const fm_layout *b) {
  if (a == b) return 1;
  if (!a || !b || a->n != b->n) return 0;
  for (size_t i = 0; i < a->n; i++) {
    const fm_tensor_info *x = &a->t[i], *y = &b->t[i];
    if (strcmp(x->name, y->name) != 0 || x->ndim != y->ndim || x->trainable != y->trainable) return 0;
    for (int d = 0; d < x->ndim; d++)
      if (x->shape[d] != y->shape[d]) return 0;
  }
  return 1;
}

int fm_layout_clone(const fm_layout *l, fm_layout **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm_layout_clone: out is NULL");
  *out = NULL;
  FM_CHECK(l, FM_ERR_INVALID_ARG, "fm_layout_clone: layout is NULL");
  fm_layout *c = fm__calloc(1, sizeof *c);
  if (!c) return FM_ERR_NOMEM;
  if (l->n) {
    c->t = fm__malloc(l->n * sizeof *c->t);
    if (!c->t) {
      fm__free(c);
      return FM_ERR_NOMEM;
    }
    memcpy(c->t, l->t, l->n * sizeof *c->t);
  }
  c->n = c->cap = l->n;
  c->numel = l->numel;
  c->trainable_numel = l->trainable_numel;
  *out = c;
  return FM_OK;
}

void fm_layout_destroy(fm_layout **l) {
  if (!l || !*l) return;
  fm__free((*l)->t);
  fm__free(*l);
  *l = NULL;
}
