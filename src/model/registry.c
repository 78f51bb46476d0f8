/* src/model/registry.c — the process-wide table of model types that
 * fm_model_create_by_name() understands: "softmax", "mlp[:h1,h2,...]", "2nn",
 * "cnn[:f1,f2,units[,kernel]]" and whatever the application adds with
 * fm_model_register().
 *
 * What it does: splits "type:args" at the first ':', looks the type up and
 * hands the args text (or NULL) to the type's factory; parses the mlp and
 * cnn argument lists strictly (comma-separated positive decimal integers) and
 * names the offending text in every error. The built-in entries live in the
 * static initialiser, so they are always present without any setup call.
 *
 * What it deliberately does not do: lock (registration is documented as
 * not thread-safe: register at start-up, before creating models from several
 * threads), allocate (fixed table of FM__REGISTRY_MAX entries, names and help
 * texts copied into it), or allow unregistering or overriding a type. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedmpi/model.h"
#include "internal.h"
#include "stack.h"

#define FM__REGISTRY_MAX 32
#define FM__REGISTRY_NAME_MAX 32
#define FM__REGISTRY_HELP_MAX 200
#define FM__MLP_MAX_HIDDEN 64

typedef struct fm__model_entry {
  char name[FM__REGISTRY_NAME_MAX];
  char help[FM__REGISTRY_HELP_MAX];
  fm_model_factory_fn factory;
} fm__model_entry;

/* ---- built-in factories ------------------------------------------------------ */

static int fm__factory_softmax(const fm_input_spec *spec, const char *args, fm_model **out) {
  FM_CHECK(!args, FM_ERR_INVALID_ARG, "model 'softmax' takes no arguments (got 'softmax:%s')", args);
  return fm_model_create_softmax(spec, out);
}

/* 1 if [s, end) is a decimal integer in 1..INT_MAX (digits only: no sign,
 * no spaces), stored in *v. */
static int fm__positive_int(const char *s, const char *end, size_t *v) {
  if (end == s) return 0;
  for (const char *c = s; c < end; c++)
    if (!isdigit((unsigned char)*c)) return 0;
  errno = 0;
  unsigned long long u = strtoull(s, NULL, 10);
  if (errno == ERANGE || u == 0 || u > INT_MAX) return 0;
  *v = (size_t)u;
  return 1;
}

/* "200,200" -> hidden = {200, 200}. Strict: digits only, every size > 0. */
static int fm__parse_hidden(const char *args, size_t *hidden, size_t *num_hidden) {
  FM_CHECK(*args, FM_ERR_INVALID_ARG, "model 'mlp:' has an empty hidden-layer list (expected e.g. 'mlp:200,200')");
  size_t n = 0;
  const char *s = args;
  for (;;) {
    const char *end = s;
    while (*end && *end != ',') end++;
    int len = (int)(end - s);
    size_t v = 0;
    FM_CHECK(fm__positive_int(s, end, &v), FM_ERR_INVALID_ARG,
             "model 'mlp:%s': bad hidden size '%.*s' (expected comma-separated integers in 1..%d)", args, len, s,
             INT_MAX);
    FM_CHECK(n < FM__MLP_MAX_HIDDEN, FM_ERR_INVALID_ARG, "model 'mlp:%s': more than %d hidden layers", args,
             FM__MLP_MAX_HIDDEN);
    hidden[n++] = v;
    if (!*end) break;
    s = end + 1;
  }
  *num_hidden = n;
  return FM_OK;
}

static int fm__factory_mlp(const fm_input_spec *spec, const char *args, fm_model **out) {
  size_t hidden[FM__MLP_MAX_HIDDEN] = {200, 200};
  size_t num_hidden = 2; /* bare "mlp" is McMahan et al.'s 2NN */
  if (args) FM_CALL(fm__parse_hidden(args, hidden, &num_hidden));
  return fm_model_create_mlp(spec, hidden, num_hidden, out);
}

/* "32,64,512[,5]" -> F1, F2, U[, K]. Strict like the mlp list; the message
 * names the field and quotes the offending text. */
static int fm__factory_cnn(const fm_input_spec *spec, const char *args, fm_model **out) {
  fm_cnn_config cfg = fm_cnn_config_default(); /* bare "cnn": McMahan et al.'s CNN */
  if (args) {
    static const char *const what[4] = {"conv1 filters", "conv2 filters", "dense units", "kernel size"};
    size_t *field[4] = {&cfg.conv_filters[0], &cfg.conv_filters[1], &cfg.dense_units, &cfg.kernel_size};
    size_t n = 0;
    const char *s = args;
    for (;;) {
      const char *end = s;
      while (*end && *end != ',') end++;
      int len = (int)(end - s);
      FM_CHECK(n < 4, FM_ERR_INVALID_ARG,
               "model 'cnn:%s': too many values (expected F1,F2,UNITS or F1,F2,UNITS,KERNEL, e.g. 'cnn:32,64,512')",
               args);
      FM_CHECK(fm__positive_int(s, end, field[n]), FM_ERR_INVALID_ARG,
               "model 'cnn:%s': bad %s '%.*s' (expected an integer in 1..%d)", args, what[n], len, s, INT_MAX);
      n++;
      if (!*end) break;
      s = end + 1;
    }
    FM_CHECK(n >= 3, FM_ERR_INVALID_ARG,
             "model 'cnn:%s': expected F1,F2,UNITS or F1,F2,UNITS,KERNEL (e.g. 'cnn:32,64,512'), got %zu value%s", args,
             n, n == 1 ? "" : "s");
  }
  return fm_model_create_cnn(spec, &cfg, out);
}

static int fm__factory_2nn(const fm_input_spec *spec, const char *args, fm_model **out) {
  FM_CHECK(!args, FM_ERR_INVALID_ARG, "model '2nn' takes no arguments (got '2nn:%s'; use 'mlp:%s')", args, args);
  const size_t hidden[2] = {200, 200};
  return fm_model_create_mlp(spec, hidden, 2, out);
}

/* TFF's EMNIST baseline create_conv_dropout_model (Keras defaults: 'valid'
 * convolutions, MaxPool2D(2)); 1,199,882 parameters for 10 classes. */
static int fm__factory_emnist_cnn_dropout(const fm_input_spec *spec, const char *args, fm_model **out) {
  FM_CHECK(!args, FM_ERR_INVALID_ARG, "model 'emnist_cnn_dropout' takes no arguments (got 'emnist_cnn_dropout:%s')",
           args);
  FM_CHECK(spec && (spec->ndim == 2 || spec->ndim == 3), FM_ERR_SPEC_MISMATCH,
           "emnist_cnn_dropout: input shape must be (H, W) or (H, W, C) per example, as EMNIST's (28, 28)");
  return fm__stack_create(spec,
                          "conv2d(32,3,valid),relu,conv2d(64,3,valid),relu,maxpool,dropout(0.25),flatten,dense(128),"
                          "relu,dropout(0.5),dense",
                          "emnist_cnn_dropout", out);
}

static int fm__factory_stack(const fm_input_spec *spec, const char *args, fm_model **out) {
  FM_CHECK(args, FM_ERR_INVALID_ARG,
           "model 'stack' needs its layers after ':' (e.g. 'stack:flatten,dense(200),relu,dense')");
  return fm__stack_create(spec, args, NULL, out);
}

/* ---- the table ------------------------------------------------------------------- */

static fm__model_entry fm__registry[FM__REGISTRY_MAX] = {
    {"softmax", "softmax regression (multinomial logistic)", fm__factory_softmax},
    {"mlp", "multi-layer perceptron with ReLU, mlp:H1,H2,... hidden sizes (bare 'mlp' = mlp:200,200)", fm__factory_mlp},
    {"2nn", "McMahan et al. 2NN: mlp:200,200", fm__factory_2nn},
    {"cnn",
     "McMahan et al. CNN (TFF create_original_fedavg_cnn_model), cnn:F1,F2,UNITS[,K] (bare 'cnn' = cnn:32,64,512,"
     " 5x5 kernels); input (H, W) or (H, W, C)",
     fm__factory_cnn},
    {"stack",
     "layers, e.g. stack:conv2d(32,5),relu,maxpool,flatten,dense(128),relu,dense (dense relu sigmoid tanh "
     "dropout(R) conv2d(F,K[,valid]) maxpool flatten reshape softmax)",
     fm__factory_stack},
    {"emnist_cnn_dropout",
     "TFF's EMNIST baseline cnn_dropout: 3x3 valid convs of 32 and 64, maxpool, dropout 0.25, dense 128, "
     "dropout 0.5 (1,199,882 parameters, 10 classes)",
     fm__factory_emnist_cnn_dropout},
};
static size_t fm__registry_n = 6;

static const fm__model_entry *fm__registry_find(const char *name, size_t len) {
  for (size_t i = 0; i < fm__registry_n; i++)
    if (strlen(fm__registry[i].name) == len && strncmp(fm__registry[i].name, name, len) == 0) return &fm__registry[i];
  return NULL;
}

int fm_model_register(const char *name, fm_model_factory_fn factory, const char *help) {
  FM_CHECK(name && *name, FM_ERR_INVALID_ARG, "fm_model_register: model name is NULL or empty");
  FM_CHECK(strlen(name) < FM__REGISTRY_NAME_MAX, FM_ERR_INVALID_ARG, "model name '%s' is too long (max %d characters)",
           name, FM__REGISTRY_NAME_MAX - 1);
  for (const char *c = name; *c; c++)
    FM_CHECK(isalnum((unsigned char)*c) || *c == '_' || *c == '-' || *c == '.', FM_ERR_INVALID_ARG,
             "bad model name '%s': only letters, digits, '_', '-' and '.' are allowed", name);
  FM_CHECK(factory, FM_ERR_INVALID_ARG, "model '%s': factory is NULL", name);
  FM_CHECK(!fm__registry_find(name, strlen(name)), FM_ERR_INVALID_ARG, "model type '%s' is already registered", name);
  FM_CHECK(fm__registry_n < FM__REGISTRY_MAX, FM_ERR_OVERFLOW,
           "cannot register model '%s': the registry is full (%d types)", name, FM__REGISTRY_MAX);
  fm__model_entry *e = &fm__registry[fm__registry_n];
  snprintf(e->name, sizeof e->name, "%s", name);
  snprintf(e->help, sizeof e->help, "%s", help ? help : "");
  e->factory = factory;
  fm__registry_n++;
  return FM_OK;
}

int fm_model_create_by_name(const char *name, const fm_input_spec *spec, fm_model **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm_model_create_by_name: out is NULL");
  *out = NULL;
  FM_CHECK(name && *name, FM_ERR_INVALID_ARG, "fm_model_create_by_name: model name is NULL or empty");
  const char *colon = strchr(name, ':');
  size_t len = colon ? (size_t)(colon - name) : strlen(name);
  const fm__model_entry *e = fm__registry_find(name, len);
  if (!e) {
    char known[FM__REGISTRY_MAX * (FM__REGISTRY_NAME_MAX + 2)];
    size_t k = 0;
    known[0] = '\0';
    for (size_t i = 0; i < fm__registry_n; i++)
      k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "", fm__registry[i].name);
    return FM_ERR(FM_ERR_UNKNOWN_TYPE, "unknown model type '%.*s' (known: %s)", (int)len, name, known);
  }
  int rc = e->factory(spec, colon ? colon + 1 : NULL, out);
  if (rc == FM_OK && !*out)
    return FM_ERR(FM_ERR_INVALID_ARG, "model factory for '%s' returned success without a model", e->name);
  return rc;
}

const char *fm_model_registry_name(size_t i, const char **help) {
  if (i >= fm__registry_n) {
    if (help) *help = NULL;
    return NULL;
  }
  if (help) *help = fm__registry[i].help;
  return fm__registry[i].name;
}
