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

/* TFF's Shakespeare baseline (char_prediction_models.create_recurrent_model):
 * Embedding(90, 8, mask_zero) -> LSTM(256, return_sequences) x 2 -> Dense(90)
 * at every step; 820,522 parameters on the 90 ids of the character
 * tokenizer. Metrics num_tokens and accuracy with the pad masked. */
static int fm__factory_shakespeare_lstm(const fm_input_spec *spec, const char *args, fm_model **out) {
  FM_CHECK(!args, FM_ERR_INVALID_ARG, "model 'shakespeare_lstm' takes no arguments (got 'shakespeare_lstm:%s')", args);
  FM_CHECK(spec && spec->ndim == 1, FM_ERR_SPEC_MISMATCH,
           "shakespeare_lstm: input must be rows of character ids, (L) per example (Shakespeare's 'snippets' "
           "tokenised), got %d dimensions (%zu features): image data?",
           spec ? spec->ndim : 0, spec ? spec->num_features : 0);
  return fm__stack_create(spec, "embedding(8,mask_zero),lstm(256,sequences),lstm(256,sequences),dense",
                          "shakespeare_lstm", out);
}

/* TFF's Stack Overflow baseline (word_prediction_models.create_recurrent_model
 * with its defaults): Embedding(V + 4, 96, mask_zero) -> LSTM(670,
 * return_sequences) -> Dense(96) -> Dense(V + 4), 4,050,748 parameters for
 * V = 10000. Metrics as its task: num_tokens, accuracy,
 * accuracy_without_out_of_vocab, accuracy_without_out_of_vocab_or_end_of_sentence
 * (pad 0, OOV V + 1, EOS V + 3 of the word tokenizer). */
static int fm__factory_stackoverflow_nwp(const fm_input_spec *spec, const char *args, fm_model **out) {
  FM_CHECK(!args, FM_ERR_INVALID_ARG, "model 'stackoverflow_nwp' takes no arguments (got 'stackoverflow_nwp:%s')", args);
  FM_CHECK(spec && spec->ndim == 1, FM_ERR_SPEC_MISMATCH,
           "stackoverflow_nwp: input must be rows of word ids, (L) per example (Stack Overflow's 'tokens' "
           "tokenised), got %d dimensions (%zu features): image data?",
           spec ? spec->ndim : 0, spec ? spec->num_features : 0);
  FM_CHECK(spec->num_classes >= 5, FM_ERR_SPEC_MISMATCH,
           "stackoverflow_nwp: %zu ids is no word vocabulary (V words + pad, OOV, BOS, EOS)", spec->num_classes);
  FM_CALL(fm__stack_create(spec, "embedding(96,mask_zero),lstm(670,sequences),dense(96),dense", "stackoverflow_nwp",
                           out));
  const int32_t V = (int32_t)spec->num_classes - 4, pad = 0, oov = V + 1, eos = V + 3;
  const int32_t no_oov[2] = {pad, oov}, no_oov_eos[3] = {pad, eos, oov};
  fm_metric *a = NULL, *b = NULL;
  int rc = fm_metric_create_masked_accuracy("accuracy_without_out_of_vocab", no_oov, 2, &a);
  if (rc == FM_OK) rc = fm__stack_add_owned_metric(*out, a);
  if (rc == FM_OK)
    rc = fm_metric_create_masked_accuracy("accuracy_without_out_of_vocab_or_end_of_sentence", no_oov_eos, 3, &b);
  if (rc == FM_OK) rc = fm__stack_add_owned_metric(*out, b);
  if (rc != FM_OK) fm_model_destroy(out);
  return rc;
}

/* TFF's EMNIST autoencoder (emnist_models.create_autoencoder_model): dense
 * 1000-500-250-30-250-500-1000-784, sigmoid but the linear bottleneck, mean
 * squared error against the input; 2,837,314 parameters. */
static int fm__factory_emnist_autoencoder(const fm_input_spec *spec, const char *args, fm_model **out) {
  FM_CHECK(!args, FM_ERR_INVALID_ARG, "model 'emnist_autoencoder' takes no arguments (got 'emnist_autoencoder:%s')",
           args);
  FM_CHECK(spec && spec->num_features == 784, FM_ERR_SPEC_MISMATCH,
           "emnist_autoencoder: input must be EMNIST's 28x28 = 784 pixels per example, got %zu features",
           spec ? spec->num_features : 0);
  return fm__stack_create(spec,
                          "flatten,dense(1000),sigmoid,dense(500),sigmoid,dense(250),sigmoid,dense(30),dense(250),"
                          "sigmoid,dense(500),sigmoid,dense(1000),sigmoid,dense(784),sigmoid,mse",
                          "emnist_autoencoder", out);
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
     "dropout(R) conv2d(F,K[,valid]) maxpool flatten reshape embedding lstm softmax mse)",
     fm__factory_stack},
    {"emnist_cnn_dropout",
     "TFF's EMNIST baseline cnn_dropout: 3x3 valid convs of 32 and 64, maxpool, dropout 0.25, dense 128, "
     "dropout 0.5 (1,199,882 parameters, 10 classes)",
     fm__factory_emnist_cnn_dropout},
    {"shakespeare_lstm",
     "TFF's Shakespeare next-character baseline: embedding 8 (mask_zero), 2 LSTMs of 256, dense per step "
     "(820,522 parameters on 90 ids)",
     fm__factory_shakespeare_lstm},
    {"stackoverflow_nwp",
     "TFF's Stack Overflow next-word baseline: embedding 96 (mask_zero), LSTM 670, dense 96, dense per step "
     "(4,050,748 parameters for 10,000 words)",
     fm__factory_stackoverflow_nwp},
    {"emnist_autoencoder",
     "TFF's EMNIST autoencoder: dense 1000-500-250-30-250-500-1000-784, sigmoid, mean squared error "
     "(2,837,314 parameters)",
     fm__factory_emnist_autoencoder},
};
static size_t fm__registry_n = 9;

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
