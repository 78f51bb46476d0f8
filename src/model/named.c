/* src/model/named.c — the named built-in models as the layer stacks that
 * spell them (stack.c):
 *   softmax        flatten,dense
 *   mlp:H1,...,Hk  flatten,dense(H1),relu,...,dense(Hk),relu,dense
 *   cnn:F1,F2,U,K  conv2d(F1,K),relu,maxpool,conv2d(F2,K),relu,maxpool,flatten,dense(U),relu,dense
 * (bare 'dense': as many units as classes). Each keeps its C function, its
 * type name ("softmax", "mlp:H1,...", "cnn:F1,F2,U[,K]"), its tensor names
 * and its argument checks and messages; the layout, the initial weights and
 * every loss and gradient are those of the hand-written models they replace,
 * bit for bit (tests/unit/test_stack.c against tests/unit/reference/).
 *
 * What it does: checks the C arguments the way the hand-written models did,
 * writes the layer list and the type name, and builds the stack.
 *
 * What it deliberately does not do: any numerics, or parse names (the
 * registry does: "mlp:200,200" reaches here as sizes). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "fedmpi/model.h"
#include "internal.h"
#include "model_private.h"
#include "stack.h"

int fm_model_create_softmax(const fm_input_spec *spec, fm_model **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm_model_create_softmax: out is NULL");
  *out = NULL;
  FM_CALL(fm__input_spec_check_blas(spec, "softmax"));
  return fm__stack_create(spec, "flatten,dense", "softmax", out);
}

/* Appends to the string *s of length *len (capacity cap); 0 if it did not fit. */
static int fm__append(char *s, size_t cap, size_t *len, const char *what, size_t v) {
  int k = v ? snprintf(s + *len, cap - *len, "%s(%zu)", what, v) : snprintf(s + *len, cap - *len, "%s", what);
  if (k < 0 || (size_t)k >= cap - *len) return 0;
  *len += (size_t)k;
  return 1;
}

int fm_model_create_mlp(const fm_input_spec *spec, const size_t *hidden, size_t num_hidden, fm_model **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm_model_create_mlp: out is NULL");
  *out = NULL;
  FM_CALL(fm__input_spec_check_blas(spec, "mlp"));
  FM_CHECK(hidden || num_hidden == 0, FM_ERR_INVALID_ARG, "mlp: hidden sizes are NULL but num_hidden = %zu",
           num_hidden);
  FM_CHECK(num_hidden < 400, FM_ERR_INVALID_ARG,
           "mlp: num_hidden = %zu is more than the 399 hidden layers a stack takes", num_hidden);
  for (size_t i = 0; i < num_hidden; i++)
    FM_CHECK(hidden[i] > 0 && hidden[i] <= INT_MAX, FM_ERR_INVALID_ARG,
             "mlp: hidden layer %zu has size %zu (must be in 1..%d)", i, hidden[i], INT_MAX);
  /* an MLP without hidden layers is softmax regression, down to its type name */
  size_t cap = 32 + 32 * num_hidden, len = 0, tlen = 0;
  char *layers = fm__malloc(cap), *type = fm__malloc(cap);
  int rc = FM_OK;
  if (!layers || !type) {
    rc = FM_ERR_NOMEM;
    goto done;
  }
  int ok = fm__append(layers, cap, &len, "flatten", 0);
  ok = ok && fm__append(type, cap, &tlen, num_hidden ? "mlp:" : "softmax", 0);
  for (size_t i = 0; ok && i < num_hidden; i++)
    ok = fm__append(layers, cap, &len, ",dense", hidden[i]) && fm__append(layers, cap, &len, ",relu", 0) &&
         (tlen += (size_t)snprintf(type + tlen, cap - tlen, "%s%zu", i ? "," : "", hidden[i])) < cap;
  ok = ok && fm__append(layers, cap, &len, ",dense", 0);
  FM_CHECK_GOTO(rc, ok, done, FM_ERR_OVERFLOW, "mlp: the layer list does not fit");
  rc = fm__stack_create(spec, layers, type, out);
done:
  fm__free(layers);
  fm__free(type);
  return rc;
}

fm_cnn_config fm_cnn_config_default(void) {
  fm_cnn_config c;
  c.conv_filters[0] = 32;
  c.conv_filters[1] = 64;
  c.dense_units = 512;
  c.kernel_size = 5;
  return c;
}

int fm_model_create_cnn(const fm_input_spec *spec, const fm_cnn_config *config, fm_model **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm_model_create_cnn: out is NULL");
  *out = NULL;
  FM_CALL(fm__input_spec_check_blas(spec, "cnn"));
  fm_cnn_config c = config ? *config : fm_cnn_config_default();
  FM_CHECK(spec->ndim == 2 || spec->ndim == 3, FM_ERR_SPEC_MISMATCH,
           "cnn: input shape must be (H, W) or (H, W, C) per example, got %d dimension%s (%zu features); "
           "reshape the data or use an mlp",
           spec->ndim, spec->ndim == 1 ? "" : "s", spec->num_features);
  FM_CHECK(c.conv_filters[0] > 0 && c.conv_filters[1] > 0, FM_ERR_INVALID_ARG,
           "cnn: conv filters must be positive (got %zu, %zu)", c.conv_filters[0], c.conv_filters[1]);
  FM_CHECK(c.dense_units > 0, FM_ERR_INVALID_ARG, "cnn: dense units must be positive (got 0)");
  FM_CHECK(c.kernel_size > 0, FM_ERR_INVALID_ARG, "cnn: kernel size must be positive (got 0)");
  FM_CHECK(c.conv_filters[0] <= INT_MAX && c.conv_filters[1] <= INT_MAX && c.dense_units <= INT_MAX &&
               c.kernel_size <= INT_MAX,
           FM_ERR_OVERFLOW,
           "cnn: %zu and %zu filters of %zux%zu and %zu dense units exceed the BLAS dimension limit (%d)",
           c.conv_filters[0], c.conv_filters[1], c.kernel_size, c.kernel_size, c.dense_units, INT_MAX);
  char layers[256], type[96];
  snprintf(layers, sizeof layers,
           "conv2d(%zu,%zu),relu,maxpool,conv2d(%zu,%zu),relu,maxpool,flatten,dense(%zu),relu,dense", c.conv_filters[0],
           c.kernel_size, c.conv_filters[1], c.kernel_size, c.dense_units);
  int len = snprintf(type, sizeof type, "cnn:%zu,%zu,%zu", c.conv_filters[0], c.conv_filters[1], c.dense_units);
  if (c.kernel_size != 5) snprintf(type + len, sizeof type - (size_t)len, ",%zu", c.kernel_size);
  return fm__stack_create(spec, layers, type, out);
}
