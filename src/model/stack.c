/* src/model/stack.c — a model written as a stack of layers,
 * "stack:conv2d(32,5),relu,maxpool,flatten,dense(512),relu,dense", trained
 * with softmax cross-entropy on the last layer's logits.
 *
 * What it does: parses the layer list strictly (every error names the layer
 * or the character, and the spec), runs each kind's shape function from the
 * input spec to the logits, builds the layout (tensors "<prefix>_<i>/<name>",
 * counted per prefix, in stack order, all trainable), initialises every
 * tensor from its own stream fm_rng(seed, 0, tensor index, FM_RNG_INIT)
 * (Glorot uniform with the kind's fans, or zeros), and plans the workspace:
 * one region per layer output that is not a view or in place, one per layer
 * cache (argmax), probs, dlogits, two ping-pong gradient buffers sized by
 * the inputs whose gradient lands in each, and one scratch shared by all
 * layers (im2col). Forward and backward walk the table.
 *
 * The plan reproduces the hand-written models (now kept as tests/unit/reference/ref_*.c)
 * call for call: the same kernels on the same inputs in the same order, the
 * first layer computing no input gradient, so their stacks give the same
 * bits (tests/unit/test_stack.c).
 *
 * What it deliberately does not do: guess shapes (a conv on flat data asks
 * for a reshape, a dense on an image for a flatten), branch or share
 * weights, or any loss but softmax cross-entropy. The layer kinds are in
 * stack_layers.c. */
#include "stack.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedmpi/model.h"
#include "internal.h"
#include "layers.h"
#include "model_private.h"
#include "seq.h"

#define FM__STACK_MAX_LAYERS 1024
#define FM__STACK_ALIGN 16 /* floats: every region is a multiple of 64 bytes per example */
#define FM__REG_X (-1)     /* the model's input x */
#define FM__REG_NONE (-2)

/* The loss the stack ends in. */
enum { FM__LOSS_XENT = 0, FM__LOSS_SEQ_XENT = 1, FM__LOSS_MSE = 2 };
#define FM__STACK_MAX_OWNED 8

typedef struct fm__stack {
  size_t num_layers, cap_layers;
  size_t C;                         /* classes */
  int loss;                         /* FM__LOSS_*: softmax cross-entropy per example or per step, or MSE */
  size_t T;                         /* time steps of the logits (FM__LOSS_SEQ_XENT), else 1 */
  size_t D;                         /* the input's features (the MSE target) */
  size_t max_rows;                  /* the most rows per example any layer multiplies (T of a sequence, else 1) */
  int mask_layer;                   /* the embedding whose mask reaches the loss, or -1 */
  fm_metric *owned[FM__STACK_MAX_OWNED]; /* metrics the model reports and the stack frees */
  size_t num_owned;
  int num_regions;                  /* per-example regions: layer outputs and caches, then */
  int r_logits, r_probs, r_dlogits; /* (the logits are a layer's output region) */
  int r_g[2];                       /* the gradient ping-pong */
  size_t *per;    /* (2 * cap_layers + 4) floats per example of each region, rounded up to FM__STACK_ALIGN */
  size_t *prefix; /* (num_regions + 1) running sums of per: region r of a batch of n starts at n * prefix[r] */
  size_t first_backward; /* layers before it need no backward */
  int has_dropout;       /* a layer draws from the key of fm_model_set_step */
  fm__layer layer[];
} fm__stack;

/* ---- errors -------------------------------------------------------------------------------- */

int fm__layer_error(const fm__layer *L, int code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return FM_ERR(code, "model 'stack:%s': layer %zu '%.*s': %s", L->spec, L->pos, L->text_len, L->text, msg);
}

/* "dense, relu, ..." into buf. */
static const char *fm__kind_names(char *buf, size_t cap) {
  size_t k = 0;
  buf[0] = '\0';
  for (const fm__layer_kind *t = fm__layer_kinds; t->name && k < cap; t++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%s", k ? ", " : "", t->name);
  return buf;
}

/* ---- parsing --------------------------------------------------------------------------------- */

static const char *fm__skip_ws(const char *c) {
  while (isspace((unsigned char)*c)) c++;
  return c;
}

/* A rate argument of L: a decimal number in [0, 1). */
static int fm__parse_rate(fm__layer *L, const char *a, size_t len) {
  char buf[32];
  char *end = NULL;
  int ok = len > 0 && len < sizeof buf;
  if (ok) {
    memcpy(buf, a, len);
    buf[len] = '\0';
    errno = 0;
    L->rate = strtod(buf, &end);
    ok = errno == 0 && end == buf + len && L->rate >= 0 && L->rate < 1 && (isdigit((unsigned char)buf[0]) || buf[0] == '.');
  }
  if (!ok)
    return FM_ERR(FM_ERR_INVALID_ARG, "model 'stack:%s': layer %zu '%s': bad rate '%.*s' (expected a number in [0, 1))",
                  L->spec, L->pos, L->kind->name, (int)len, a);
  L->arg[L->nargs++] = 0;
  return FM_OK;
}

/* One argument [a, a + len) of layer L: a decimal integer in 1..INT_MAX (or
 * the kind's rate, or its padding word). */
static int fm__parse_arg(fm__layer *L, const char *a, size_t len) {
  const fm__layer_kind *k = L->kind;
  if ((k->flags & FM__LAYER_RATE) && L->nargs == 0) return fm__parse_rate(L, a, len);
  FM_CHECK(!L->padding_given, FM_ERR_INVALID_ARG, "model 'stack:%s': layer %zu '%s': an argument after '%s' (it comes last; usage: %s)",
           L->spec, L->pos, k->name, k->words ? k->words[L->word - 1] : "", k->usage);
  if (k->words && len > 0 && isalpha((unsigned char)a[0])) {
    int w = 0;
    for (int j = 0; k->words[j] && !w; j++)
      if (strlen(k->words[j]) == len && !strncmp(a, k->words[j], len)) w = j + 1;
    if (!w || L->nargs < k->min_args) {
      char exp[128];
      size_t e = 0;
      for (int j = 0; k->words[j] && e < sizeof exp; j++)
        e += (size_t)snprintf(exp + e, sizeof exp - e, "%s'%s'", j == 0 ? "" : k->words[j + 1] ? ", " : " or ",
                              k->words[j]);
      return FM_ERR(FM_ERR_INVALID_ARG, "model 'stack:%s': layer %zu '%s': bad %s '%.*s' (expected %s, last; usage: %s)",
                    L->spec, L->pos, k->name, k->word_what, (int)len, a, exp, k->usage);
    }
    L->word = w;
    L->valid = (k->flags & FM__LAYER_PADDING) && w == 2; /* words {"same", "valid"} */
    L->padding_given = 1;
    L->arg[L->nargs++] = 0;
    return FM_OK;
  }
  const char *what = k->arg_names ? k->arg_names[L->nargs] : "argument";
  int ok = len > 0 && len < 12;
  for (size_t i = 0; ok && i < len; i++) ok = isdigit((unsigned char)a[i]) != 0;
  unsigned long long v = ok ? strtoull(a, NULL, 10) : 0;
  if (!ok || v == 0 || v > INT_MAX)
    return FM_ERR(FM_ERR_INVALID_ARG, "model 'stack:%s': layer %zu '%s': bad %s '%.*s' (expected an integer in 1..%d)",
                  L->spec, L->pos, k->name, what, (int)len, a, INT_MAX);
  L->arg[L->nargs++] = (size_t)v;
  return FM_OK;
}

/* The argument list of L from c (just past its '('); *end: past the ')'. */
static int fm__parse_args(fm__layer *L, const char *c, const char **end) {
  const char *spec = L->spec, *open = c - 1;
  for (;;) {
    c = fm__skip_ws(c);
    const char *a = c;
    while (*c && *c != ',' && *c != ')' && *c != '(' && !isspace((unsigned char)*c)) c++;
    size_t len = (size_t)(c - a);
    c = fm__skip_ws(c);
    FM_CHECK(*c, FM_ERR_INVALID_ARG,
             "model 'stack:%s': layer %zu '%s': the '(' at character %zu of the layers is never closed", spec, L->pos,
             L->kind->name, (size_t)(open - spec) + 1);
    FM_CHECK(
        *c == ',' || *c == ')', FM_ERR_INVALID_ARG,
        "model 'stack:%s': layer %zu '%s': unexpected '%c' at character %zu of the layers in the arguments (usage: %s)",
        spec, L->pos, L->kind->name, *c, (size_t)(c - spec) + 1, L->kind->usage);
    FM_CHECK(len > 0, FM_ERR_INVALID_ARG,
             "model 'stack:%s': layer %zu '%s': empty argument at character %zu of the layers (usage: %s)", spec,
             L->pos, L->kind->name, (size_t)(a - spec) + 1, L->kind->usage);
    FM_CHECK(L->nargs < L->kind->max_args, FM_ERR_INVALID_ARG,
             "model 'stack:%s': layer %zu '%s': too many arguments (usage: %s)", spec, L->pos, L->kind->name,
             L->kind->usage);
    FM_CALL(fm__parse_arg(L, a, len));
    if (*c++ == ')') break;
  }
  *end = c;
  return FM_OK;
}

/* One layer from c: its name and arguments; *end: past it. */
static int fm__parse_layer(fm__stack *s, const char *spec, const char *c, const char **end) {
  char known[256];
  const char *name = c;
  while (isalnum((unsigned char)*c) || *c == '_') c++;
  size_t nlen = (size_t)(c - name);
  if (nlen == 0) {
    FM_CHECK(*c || s->num_layers, FM_ERR_INVALID_ARG,
             "model 'stack:%s' has no layers (expected e.g. 'stack:flatten,dense(200),relu,dense')", spec);
    FM_CHECK(*c && *c != ',', FM_ERR_INVALID_ARG,
             "model 'stack:%s': empty layer at character %zu of the layers (a leading, doubled or trailing ',')", spec,
             (size_t)(c - spec) + 1);
    return FM_ERR(FM_ERR_INVALID_ARG,
                  "model 'stack:%s': unexpected '%c' at character %zu of the layers (expected a layer: %s)", spec, *c,
                  (size_t)(c - spec) + 1, fm__kind_names(known, sizeof known));
  }
  const fm__layer_kind *k = fm__layer_kinds;
  while (k->name && !(strlen(k->name) == nlen && strncmp(k->name, name, nlen) == 0)) k++;
  FM_CHECK(k->name, FM_ERR_INVALID_ARG, "model 'stack:%s': layer %zu: unknown layer '%.*s' (known: %s)", spec,
           s->num_layers + 1, (int)nlen, name, fm__kind_names(known, sizeof known));
  fm__layer *L = &s->layer[s->num_layers++];
  L->kind = k;
  L->pos = s->num_layers;
  L->spec = spec;
  L->text = name;
  c = fm__skip_ws(c);
  if (*c == '(') FM_CALL(fm__parse_args(L, c + 1, &c));
  L->text_len = (int)(c - name);
  FM_CHECK(L->nargs >= k->min_args, FM_ERR_INVALID_ARG,
           "model 'stack:%s': layer %zu '%.*s': missing arguments (usage: %s)", spec, L->pos, L->text_len, L->text,
           k->usage);
  *end = c;
  return FM_OK;
}

static int fm__stack_parse(fm__stack *s, const char *spec) {
  const char *c = fm__skip_ws(spec);
  for (;;) {
    FM_CALL(fm__parse_layer(s, spec, c, &c));
    c = fm__skip_ws(c);
    if (!*c) break;
    const fm__layer *L = &s->layer[s->num_layers - 1];
    FM_CHECK(*c != ')', FM_ERR_INVALID_ARG, "model 'stack:%s': unbalanced ')' at character %zu of the layers", spec,
             (size_t)(c - spec) + 1);
    FM_CHECK(*c == ',', FM_ERR_INVALID_ARG,
             "model 'stack:%s': unexpected '%c' at character %zu of the layers after layer %zu '%.*s' (layers are "
             "separated by "
             "',')",
             spec, *c, (size_t)(c - spec) + 1, L->pos, L->text_len, L->text);
    c = fm__skip_ws(c + 1);
  }
  for (size_t i = 0; i + 1 < s->num_layers; i++)
    if (s->layer[i].kind->flags & FM__LAYER_LOSS)
      return fm__layer_error(&s->layer[i], FM_ERR_INVALID_ARG, "the loss must be the last layer");
  uint32_t drops = 0;
  for (size_t i = 0; i < s->num_layers; i++)
    if (s->layer[i].kind->flags & FM__LAYER_RATE) {
      if (drops == 256) return fm__layer_error(&s->layer[i], FM_ERR_INVALID_ARG, "more than 256 dropout layers");
      s->layer[i].dropout_index = drops++;
    }
  s->has_dropout = drops > 0;
  return FM_OK;
}

/* ---- shapes, layout and the workspace plan -------------------------------------------------------- */

static int fm__new_region(fm__stack *s, size_t per) {
  s->per[s->num_regions] = per;
  return s->num_regions++;
}

/* Shapes from the input spec to the logits, and the forward regions. */
static int fm__stack_shapes(fm__stack *s, const fm_input_spec *spec) {
  fm__shape cur;
  memset(&cur, 0, sizeof cur);
  if (spec->ndim == 2 || spec->ndim == 3) {
    cur.ndim = 3;
    cur.d[0] = spec->shape[0], cur.d[1] = spec->shape[1], cur.d[2] = spec->ndim == 3 ? spec->shape[2] : 1;
  } else {
    cur.ndim = spec->ndim;
    memcpy(cur.d, spec->shape, sizeof cur.d);
  }
  cur.numel = spec->num_features;
  int reg = FM__REG_X, reg_needed = 0; /* reg_needed: reg is an output a backward reads */
  int mask = -1;                       /* the embedding whose mask flows along the time axis */
  size_t total = 0;
  s->max_rows = 1;
  for (size_t i = 0; i < s->num_layers; i++) {
    fm__layer *L = &s->layer[i];
    const int fl = L->kind->flags;
    L->in = cur;
    L->out = cur;
    L->mask_src = mask;
    if (L->kind->shape) FM_CALL(L->kind->shape(L, s->C));
    if (L->out.ndim != 2) mask = -1; /* the time axis is gone: so is Keras's mask */
    else if (L->kind->prefix && !strcmp(L->kind->prefix, "embedding") && L->word == 1) mask = (int)i;
    if (L->in.ndim == 2 && L->in.d[0] > s->max_rows) s->max_rows = L->in.d[0];
    L->in_reg = reg;
    L->aux_reg = FM__REG_NONE;
    if ((fl & (FM__LAYER_VIEW | FM__LAYER_LOSS)) || ((fl & FM__LAYER_INPLACE) && reg != FM__REG_X && !reg_needed)) {
      L->out_reg = reg;
      reg_needed |= (fl & FM__LAYER_NEEDS_OUT) != 0;
    } else {
      L->out_reg = fm__new_region(s, L->out.numel);
      reg_needed = (fl & FM__LAYER_NEEDS_OUT) != 0;
    }
    if (L->kind->aux_floats) L->aux_reg = fm__new_region(s, L->kind->aux_floats(L));
    FM_CHECK(total <= SIZE_MAX / 16 - 2 * L->out.numel, FM_ERR_OVERFLOW,
             "model 'stack:%s': the activations per example overflow", L->spec);
    total += 2 * L->out.numel;
    reg = L->out_reg;
    cur = L->out;
  }
  fm__layer *last = &s->layer[s->num_layers - 1];
  s->mask_layer = mask;
  s->T = 1;
  s->D = spec->num_features;
  if (last->kind->flags & FM__LAYER_LOSS && !strcmp(last->kind->name, "mse")) {
    s->loss = FM__LOSS_MSE;
    if (cur.numel != spec->num_features)
      return fm__layer_error(last, FM_ERR_SPEC_MISMATCH,
                             "the mean squared error compares the output with the input, but the stack ends with %zu "
                             "values per example and the input has %zu; end it with 'dense(%zu)'",
                             cur.numel, spec->num_features, spec->num_features);
  } else if (cur.ndim == 2 && cur.d[1] == s->C) {
    s->loss = FM__LOSS_SEQ_XENT; /* a label at each of T steps */
    s->T = cur.d[0];
  } else if (cur.ndim != 1 || cur.numel != s->C) {
    return fm__layer_error(last, FM_ERR_SPEC_MISMATCH,
                           "the stack ends with %zu values per example but the data has %zu classes; end it with "
                           "'dense' (as many units as classes%s)",
                           cur.numel, s->C, cur.ndim == 2 ? ", at every step" : "");
  }
  if (reg == FM__REG_X)
    return fm__layer_error(last, FM_ERR_INVALID_ARG, "the stack computes nothing from its input; add e.g. 'dense'");
  s->r_logits = reg;
  return FM_OK;
}

/* Backward regions: each layer's output gradient, and where its input
 * gradient goes (in place, or the ping-pong buffer dout is not in). */
static int fm__stack_plan_backward(fm__stack *s) {
  const size_t out_numel = s->loss == FM__LOSS_MSE ? s->D : s->T * s->C;
  s->r_probs = fm__new_region(s, out_numel);
  s->r_dlogits = fm__new_region(s, out_numel);
  s->r_g[0] = fm__new_region(s, 0);
  s->r_g[1] = fm__new_region(s, 0);
  int g = s->r_dlogits;
  s->first_backward = 0;
  for (size_t i = s->num_layers; i-- > 0;) {
    fm__layer *L = &s->layer[i];
    L->dout_reg = g;
    const int fl = L->kind->flags;
    if (L->in_reg == FM__REG_X) {
      L->din_reg = FM__REG_NONE; /* nothing before it needs a gradient */
      s->first_backward = i;
      break;
    }
    if ((fl & (FM__LAYER_VIEW | FM__LAYER_LOSS | FM__LAYER_INPLACE))) {
      L->din_reg = g;
      continue;
    }
    L->din_reg = g == s->r_g[0] ? s->r_g[1] : s->r_g[0];
    if (L->in.numel > s->per[L->din_reg]) s->per[L->din_reg] = L->in.numel;
    g = L->din_reg;
  }
  /* every region a multiple of 64 bytes per example, so all start aligned */
  s->prefix[0] = 0;
  for (int r = 0; r < s->num_regions; r++) {
    size_t per = (s->per[r] + FM__STACK_ALIGN - 1) / FM__STACK_ALIGN * FM__STACK_ALIGN;
    FM_CHECK(per >= s->per[r] && s->prefix[r] <= SIZE_MAX / 16 - per, FM_ERR_OVERFLOW,
             "model 'stack': the workspace per example overflows");
    s->per[r] = per;
    s->prefix[r + 1] = s->prefix[r] + per;
  }
  return FM_OK;
}

/* The tensors of every layer into l, in stack order. */
static int fm__stack_layout(fm__stack *s, fm_layout *l) {
  for (size_t i = 0; i < s->num_layers; i++) {
    fm__layer *L = &s->layer[i];
    if (!L->kind->tensors) continue;
    fm__tensor_desc t[FM__LAYER_MAX_TENSORS];
    L->num_tensors = L->kind->tensors(L, t);
    size_t count = 0; /* earlier layers with the same prefix: Keras's dense_0, dense_1, ... */
    for (size_t e = 0; e < i; e++)
      if (s->layer[e].kind->prefix && strcmp(s->layer[e].kind->prefix, L->kind->prefix) == 0) count++;
    for (size_t j = 0; j < L->num_tensors; j++) {
      char name[FM_TENSOR_NAME_MAX];
      snprintf(name, sizeof name, "%s_%zu/%s", L->kind->prefix, count, t[j].suffix);
      FM_CALL(fm_layout_add(l, name, t[j].ndim, t[j].shape, 1));
      L->tensor[j] = fm_layout_num_tensors(l) - 1;
      L->woff[j] = fm_layout_tensor(l, L->tensor[j])->offset;
    }
  }
  return FM_OK;
}

/* ---- the model ops ------------------------------------------------------------------------------------ */

static size_t fm__stack_col_floats(const fm__stack *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < s->num_layers; i++)
    if (s->layer[i].kind->col_floats) {
      size_t ci = s->layer[i].kind->col_floats(&s->layer[i], n);
      if (ci > c) c = ci;
    }
  return c;
}

/* The workspace starts with a header of FM__STACK_HDR floats (64 bytes, so
 * the regions keep their alignment): the key fm_model_set_step wrote. */
#define FM__STACK_HDR 16
#define FM__STACK_KEY_MAGIC UINT64_C(0x6b65797374616b31)

static size_t fm__stack_workspace_size(const fm_model *m, size_t max_batch) {
  const fm__stack *s = fm_model_data(m);
  size_t per = s->prefix[s->num_regions], col = fm__stack_col_floats(s, max_batch) + FM__STACK_HDR;
  if (per && max_batch > (SIZE_MAX / sizeof(float) - col) / per) return SIZE_MAX;
  return (max_batch * per + col) * sizeof(float);
}

/* Region r of a batch of n (FM__REG_X: the input x; num_regions: the shared scratch). */
static float *fm__reg(const fm__stack *s, void *ws, size_t n, int r, const float *x) {
  return r == FM__REG_X ? (float *)x : (float *)ws + FM__STACK_HDR + n * s->prefix[r];
}

static void fm__stack_set_step(const fm_model *m, void *ws, uint64_t seed, uint64_t round, uint64_t client,
                               uint64_t step) {
  (void)m;
  uint64_t h[5] = {FM__STACK_KEY_MAGIC, seed, round, client, step};
  memcpy(ws, h, sizeof h);
}

/* The key of the last fm_model_set_step on ws, or zeros if none was set
 * (the magic tells; a training pass of a model with dropout should follow a
 * fm_model_set_step on its workspace, as the client work does). */
static void fm__stack_key(const void *ws, uint64_t key[4]) {
  uint64_t h[5];
  memcpy(h, ws, sizeof h);
  for (int i = 0; i < 4; i++) key[i] = h[0] == FM__STACK_KEY_MAGIC ? h[i + 1] : 0;
}

static int fm__stack_init(const fm_model *m, float *w, uint64_t seed) {
  const fm__stack *s = fm_model_data(m);
  for (size_t i = 0; i < s->num_layers; i++) {
    const fm__layer *L = &s->layer[i];
    if (!L->num_tensors) continue;
    fm__tensor_desc t[FM__LAYER_MAX_TENSORS];
    L->kind->tensors(L, t);
    for (size_t j = 0; j < L->num_tensors; j++) {
      size_t numel = fm_layout_tensor(fm_model_layout(m), L->tensor[j])->numel;
      float *wt = w + L->woff[j];
      switch (t[j].init) {
        case FM__INIT_ORTHOGONAL: {
          double *work = fm__malloc(fm__orthogonal_work_doubles(t[j].shape[0], t[j].shape[1]) * sizeof *work);
          if (!work) return FM_ERR_NOMEM;
          int info = fm__orthogonal_init(wt, work, t[j].shape[0], t[j].shape[1], seed, L->tensor[j]);
          fm__free(work);
          FM_CHECK(info == 0, FM_ERR_INVALID_ARG, "%s: the orthogonal initialiser of tensor %zu failed (LAPACK info %d)",
                   fm_model_type(m), L->tensor[j], info);
          break;
        }
        case FM__INIT_LSTM_BIAS:
          fm__lstm_bias_init(wt, numel / 4);
          break;
        case FM__INIT_UNIFORM:
          fm__embedding_init(wt, t[j].shape[0], t[j].shape[1], seed, L->tensor[j]);
          break;
        case FM__INIT_GLOROT:
        default:
          if (t[j].fan_in)
            fm__glorot_uniform_n(wt, numel, t[j].fan_in, t[j].fan_out, seed, L->tensor[j]);
          else
            memset(wt, 0, numel * sizeof *w);
      }
    }
  }
  return FM_OK;
}

/* The token mask an embedding keeps in its cache for a batch of n: after the n * T int32 tokens. */
static const uint8_t *fm__mask_of(const fm__stack *s, void *ws, size_t n, int layer, const float *x);

static void fm__stack_pass(const fm__stack *s, const fm__layer *L, void *ws, const float *x, const float *w, float *dw,
                           size_t n, fm__layer_pass *p) {
  memset(p, 0, sizeof *p);
  p->n = n;
  p->in = fm__reg(s, ws, n, L->in_reg, x);
  p->out = fm__reg(s, ws, n, L->out_reg, x);
  p->aux = L->aux_reg >= 0 ? fm__reg(s, ws, n, L->aux_reg, x) : NULL;
  p->col = fm__reg(s, ws, n, s->num_regions, x);
  p->mask = L->mask_src >= 0 ? fm__mask_of(s, ws, n, L->mask_src, x) : NULL;
  for (size_t j = 0; j < L->num_tensors; j++) {
    p->w[j] = w + L->woff[j];
    if (dw) p->dw[j] = dw + L->woff[j];
  }
}

static const uint8_t *fm__mask_of(const fm__stack *s, void *ws, size_t n, int layer, const float *x) {
  const fm__layer *E = &s->layer[layer];
  return (const uint8_t *)((const int32_t *)(const void *)fm__reg(s, ws, n, E->aux_reg, x) + n * E->in.numel);
}

/* An embedding's input: every x an integer id in [0, V). */
static int fm__check_tokens(const fm_model *m, const fm__layer *E, const float *x, size_t n) {
  const size_t T = E->in.numel, V = E->arg[FM__LAYER_MAX_ARGS - 1];
  for (size_t i = 0; i < n * T; i++) {
    float v = x[i];
    FM_CHECK(v >= 0.0f && v < (float)V && v == (float)(int32_t)v, FM_ERR_SPEC_MISMATCH,
             "model '%s': input %zu of example %zu is %g, not a token id in [0, %zu): the embedding reads tokenised "
             "text (for images use a model without an embedding)",
             fm_model_type(m), i % T, i / T, (double)v, V);
  }
  return FM_OK;
}

/* Mean squared and mean absolute error of each example, the autoencoder's
 * "predictions" (Keras's MeanSquaredError / MeanAbsoluteError metrics). */
static void fm__recon_errors(float *out, const float *pred, const float *x, size_t n, size_t D) {
  for (size_t i = 0; i < n; i++) {
    double sq = 0, ab = 0;
    for (size_t j = 0; j < D; j++) {
      double d = (double)pred[i * D + j] - (double)x[i * D + j];
      sq += d * d;
      ab += d < 0 ? -d : d;
    }
    out[2 * i] = (float)(sq / (double)D);
    out[2 * i + 1] = (float)(ab / (double)D);
  }
}

static int fm__stack_forward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                             int training, float *loss, float *probs) {
  /* the activations are always cached; training switches dropout on */
  const fm__stack *s = fm_model_data(m);
  FM_CHECK(n <= INT_MAX / s->max_rows, FM_ERR_OVERFLOW, "%s: batch of %zu examples exceeds the BLAS limit",
           fm_model_type(m), n);
  if (s->layer[0].kind->prefix && !strcmp(s->layer[0].kind->prefix, "embedding"))
    FM_CALL(fm__check_tokens(m, &s->layer[0], x, n));
  uint64_t key[4] = {0, 0, 0, 0};
  if (training && s->has_dropout) fm__stack_key(ws, key); /* only a training pass with dropout reads it */
  for (size_t i = 0; i < s->num_layers; i++) {
    const fm__layer *L = &s->layer[i];
    if (!L->kind->forward) continue; /* views and the loss */
    fm__layer_pass p;
    fm__stack_pass(s, L, ws, x, w, NULL, n, &p);
    p.training = training != 0;
    memcpy(p.key, key, sizeof key);
    L->kind->forward(L, &p);
  }
  const float *p_logits = fm__reg(s, ws, n, s->r_logits, x);
  float *p_probs = fm__reg(s, ws, n, s->r_probs, x);
  if (s->loss == FM__LOSS_MSE) {
    *loss = fm__mse_forward(p_logits, x, n * s->D);
    if (probs) fm__recon_errors(probs, p_logits, x, n, s->D);
    return FM_OK;
  }
  if (s->loss == FM__LOSS_SEQ_XENT) {
    size_t valid = 0;
    const uint8_t *mask = s->mask_layer >= 0 ? fm__mask_of(s, ws, n, s->mask_layer, x) : NULL;
    *loss = fm__seq_xent_forward(p_probs, &valid, p_logits, y, mask, n * s->T, s->C);
  } else {
    *loss = fm__softmax_xent_forward(p_probs, p_logits, y, n, s->C);
  }
  if (probs) memcpy(probs, p_probs, n * s->T * s->C * sizeof *probs);
  return FM_OK;
}

static int fm__stack_backward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                              float *dw) {
  const fm__stack *s = fm_model_data(m);
  FM_CHECK(n <= INT_MAX / s->max_rows, FM_ERR_OVERFLOW, "%s: batch of %zu examples exceeds the BLAS limit",
           fm_model_type(m), n);
  float *dlogits = fm__reg(s, ws, n, s->r_dlogits, x);
  if (s->loss == FM__LOSS_MSE)
    fm__mse_backward(dlogits, fm__reg(s, ws, n, s->r_logits, x), x, n * s->D);
  else if (s->loss == FM__LOSS_SEQ_XENT)
    fm__seq_xent_backward(dlogits, fm__reg(s, ws, n, s->r_probs, x), y,
                          s->mask_layer >= 0 ? fm__mask_of(s, ws, n, s->mask_layer, x) : NULL, n * s->T, s->C);
  else
    fm__softmax_xent_backward(dlogits, fm__reg(s, ws, n, s->r_probs, x), y, n, s->C);
  for (size_t i = s->num_layers; i-- > s->first_backward;) {
    const fm__layer *L = &s->layer[i];
    if (!L->kind->backward) continue; /* views and the loss pass the gradient through */
    fm__layer_pass p;
    fm__stack_pass(s, L, ws, x, w, dw, n, &p);
    p.dout = fm__reg(s, ws, n, L->dout_reg, x);
    p.din = L->din_reg >= 0 ? fm__reg(s, ws, n, L->din_reg, x) : NULL;
    L->kind->backward(L, &p);
  }
  return FM_OK;
}

static void fm__stack_destroy(fm_model *m) {
  fm__stack *s = fm_model_data(m);
  for (size_t i = 0; s && i < s->num_owned; i++) fm_metric_destroy(&s->owned[i]);
  fm__free(s);
}

/* ---- the metrics of sequence models and of the autoencoder ------------------------------------- */

/* probs of an MSE stack: (n, 2) per-example [mean squared error, mean absolute error]. */
static void fm__recon_update(const fm_metric *m, const float *probs, const int32_t *y, size_t n, size_t num_classes,
                             double loss, double *out) {
  (void)y;
  (void)num_classes;
  (void)loss;
  const size_t which = *(const size_t *)m->data; /* 0: squared, 1: absolute */
  for (size_t i = 0; i < n; i++) out[0] += (double)probs[2 * i + which];
  out[1] += (double)n;
}

static double fm__recon_finalize(const fm_metric *m, const double *sums) {
  (void)m;
  return sums[1] > 0 ? sums[0] / sums[1] : 0.0;
}

static const size_t fm__recon_column[2] = {0, 1};
static const fm_metric fm__metric_mse = {.name = "mean_squared_error",
                                         .num_values = 2,
                                         .update = fm__recon_update,
                                         .finalize = fm__recon_finalize,
                                         .data = &fm__recon_column[0]};
static const fm_metric fm__metric_mae = {.name = "mean_absolute_error",
                                         .num_values = 2,
                                         .update = fm__recon_update,
                                         .finalize = fm__recon_finalize,
                                         .data = &fm__recon_column[1]};

int fm__stack_add_owned_metric(fm_model *m, fm_metric *metric) {
  fm__stack *s = fm_model_data(m);
  int rc = s->num_owned < FM__STACK_MAX_OWNED
               ? fm_model_add_metric(m, metric)
               : FM_ERR(FM_ERR_OVERFLOW, "%s: more than %d metrics of its own", fm_model_type(m), FM__STACK_MAX_OWNED);
  if (rc != FM_OK) {
    fm_metric_destroy(&metric);
    return rc;
  }
  s->owned[s->num_owned++] = metric;
  return FM_OK;
}

/* TFF's metrics for the loss the stack ends in: a label per step reports
 * num_tokens and the accuracy with the pad token (0) masked, as its
 * Shakespeare task; the autoencoder mean_squared_error and mean_absolute_error. */
static int fm__stack_set_metrics(fm_model *m) {
  const fm__stack *s = fm_model_data(m);
  if (s->loss == FM__LOSS_XENT) return FM_OK;
  fm__model_clear_user_metrics(m);
  if (s->loss == FM__LOSS_MSE) {
    FM_CALL(fm_model_set_targets(m, 0, 2));
    FM_CALL(fm_model_add_metric(m, &fm__metric_mse));
    return fm_model_add_metric(m, &fm__metric_mae);
  }
  FM_CALL(fm_model_set_targets(m, s->T, s->T * s->C));
  const int32_t pad = 0;
  fm_metric *nt = NULL, *acc = NULL;
  FM_CALL(fm_metric_create_num_tokens(&pad, 1, &nt));
  FM_CALL(fm__stack_add_owned_metric(m, nt));
  FM_CALL(fm_metric_create_masked_accuracy("accuracy", &pad, 1, &acc));
  return fm__stack_add_owned_metric(m, acc);
}

static const fm_model_ops fm__stack_ops = {
    .workspace_size = fm__stack_workspace_size,
    .init_weights = fm__stack_init,
    .forward = fm__stack_forward,
    .backward = fm__stack_backward,
    .destroy = fm__stack_destroy,
    .set_step = fm__stack_set_step,
};

int fm__stack_flops(const fm_model *m, fm_model_flops *out) {
  const fm_model_ops *ops = fm__model_ops(m);
  if (!ops || ops->forward != fm__stack_forward) return 0;
  const fm__stack *s = fm_model_data(m);
  memset(out, 0, sizeof *out);
  for (size_t i = 0; i < s->num_layers; i++) {
    const fm__layer *L = &s->layer[i];
    if (!L->kind->flops) continue;
    double f = L->kind->flops(L);
    out->forward += f;
    out->backward += f;                                          /* weight gradient */
    if (i >= s->first_backward && L->din_reg >= 0) out->backward += f; /* input gradient */
  }
  out->train = out->forward + out->backward;
  return 1;
}

/* ---- creation ---------------------------------------------------------------------------------------------- */

/* "stack:" and the layers as parsed, without spaces and without a final
 * softmax (implied; an mse loss is kept), into a new string. */
/* v with the fewest significant digits that read back as v. */
static const char *fm__shortest(double v, char *buf, size_t cap) {
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, cap, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  return buf;
}

static char *fm__stack_type_name(const fm__stack *s) {
  char num[32];
  size_t cap = 8 + (size_t)s->num_layers * (16 + 28 * FM__LAYER_MAX_ARGS), k = 0;
  char *t = fm__malloc(cap);
  if (!t) return NULL;
  k += (size_t)snprintf(t, cap, "stack:");
  for (size_t i = 0; i < s->num_layers; i++) {
    const fm__layer *L = &s->layer[i];
    if ((L->kind->flags & FM__LAYER_LOSS) && !strcmp(L->kind->name, "softmax")) continue; /* implied; mse is not */
    k += (size_t)snprintf(t + k, cap - k, "%s%s", k > 6 ? "," : "", L->kind->name);
    for (size_t a = 0; a < L->nargs; a++) {
      const char *sep = a ? "," : "(", *close = a + 1 == L->nargs ? ")" : "";
      if ((L->kind->flags & FM__LAYER_RATE) && a == 0)
        k += (size_t)snprintf(t + k, cap - k, "%s%s%s", sep, fm__shortest(L->rate, num, sizeof num), close);
      else if (L->kind->words && L->padding_given && a + 1 == L->nargs)
        k += (size_t)snprintf(t + k, cap - k, "%s%s%s", sep, L->kind->words[L->word - 1], close);
      else
        k += (size_t)snprintf(t + k, cap - k, "%s%zu%s", sep, L->arg[a], close);
    }
  }
  return t;
}

int fm__stack_create(const fm_input_spec *spec, const char *layers, const char *type, fm_model **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm_model_create_stack: out is NULL");
  *out = NULL;
  FM_CHECK(layers, FM_ERR_INVALID_ARG, "fm_model_create_stack: the layer list is NULL");
  FM_CALL(fm__input_spec_check(spec));
  size_t cap = 1; /* every layer but the first follows a ',' */
  for (const char *c = layers; *c; c++) cap += *c == ',';
  FM_CHECK(cap <= FM__STACK_MAX_LAYERS, FM_ERR_INVALID_ARG, "model 'stack:%.64s...': more than %d layers", layers,
           FM__STACK_MAX_LAYERS);
  int rc = FM_OK;
  fm_layout *l = NULL;
  char *name = NULL;
  size_t regions = 2 * cap + 4;
  fm__stack *s = fm__calloc(1, sizeof *s + cap * sizeof(fm__layer) + (2 * regions + 1) * sizeof(size_t));
  if (!s) return FM_ERR_NOMEM;
  s->cap_layers = cap;
  s->per = (size_t *)(void *)(s->layer + cap);
  s->prefix = s->per + regions;
  s->C = spec->num_classes;
  FM_CALL_GOTO(rc, fm__stack_parse(s, layers), fail);
  FM_CALL_GOTO(rc, fm__stack_shapes(s, spec), fail);
  FM_CALL_GOTO(rc, fm__stack_plan_backward(s), fail);
  FM_CALL_GOTO(rc, fm_layout_create(&l), fail);
  FM_CALL_GOTO(rc, fm__stack_layout(s, l), fail);
  for (size_t i = 0; i < s->num_layers; i++) s->layer[i].spec = s->layer[i].text = NULL; /* the caller's text */
  name = type ? fm__strdup(type) : fm__stack_type_name(s);
  if (!name) {
    rc = FM_ERR_NOMEM;
    goto fail;
  }
  rc = fm_model_create(name, &fm__stack_ops, spec, l, s, out); /* takes l, copies name */
  l = NULL;
  fm__free(name);
  if (rc != FM_OK) goto fail;
  rc = fm__stack_set_metrics(*out);
  if (rc != FM_OK) fm_model_destroy(out); /* frees s */
  return rc;

fail:
  fm_layout_destroy(&l);
  fm__free(s);
  return rc;
}

int fm_model_create_stack(const fm_input_spec *spec, const char *layers, fm_model **out) {
  return fm__stack_create(spec, layers, NULL, out);
}
