/* tests/unit/test_model_registry.c — the model registry and user models:
 * creating built-ins by name ("softmax", "mlp", "mlp:H,...", "2nn"; "cnn" is
 * only listed here, its names are tested in test_cnn.c), the error codes and
 * messages for unknown names and bad arguments, registering a user model
 * with its own vtable (a linear model with a NON-trainable per-feature scale
 * tensor), its layout and its gradient, and a full table.
 *
 * The registry is process-wide state, so these tests live in their own
 * executable and run in the order listed in main().
 *
 * Deliberately not covered here: numerics of the built-in models (see
 * test_model.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fedmpi/error.h"
#include "fedmpi/model.h"
#include "fedmpi/rng.h"

static fm_input_spec make_spec(size_t D, size_t C) {
  fm_input_spec s;
  size_t shape[1] = {D};
  assert_int_equal(fm_input_spec_set(&s, 1, shape, C), FM_OK);
  return s;
}

/* ---- a user model: probs = softmax((x * scale) @ kernel + bias) -----------------
 * Tensors: "linear/kernel" (D, C) and "linear/bias" (C), trainable;
 * "feature_scale" (D), NOT trainable (set at init, never in gradients).
 * Args "scaled_linear:<s>" multiply the initial scales by s. */
typedef struct scaled_linear {
  double scale_mult;
} scaled_linear;

static size_t sl_workspace_size(const fm_model *m, size_t max_batch) {
  const fm_input_spec *s = fm_model_input_spec(m);
  return max_batch * (s->num_features + s->num_classes) * sizeof(float); /* xs (N, D), probs (N, C) */
}

static int sl_init(const fm_model *m, float *w, uint64_t seed) {
  const fm_layout *l = fm_model_layout(m);
  const scaled_linear *d = fm_model_data(m);
  const fm_tensor_info *k = fm_layout_tensor(l, 0), *b = fm_layout_tensor(l, 1), *s = fm_layout_tensor(l, 2);
  fm_rng r;
  fm_rng_init(&r, seed, 0, 0, FM_RNG_INIT);
  for (size_t i = 0; i < k->numel; i++) w[k->offset + i] = (float)(0.5 * fm_rng_normal(&r));
  for (size_t i = 0; i < b->numel; i++) w[b->offset + i] = 0.0f;
  for (size_t i = 0; i < s->numel; i++) w[s->offset + i] = (float)(d->scale_mult * (1.0 + 0.25 * (double)i));
  return FM_OK;
}

static int sl_forward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                      int training, float *loss, float *probs) {
  (void)training;
  const fm_input_spec *sp = fm_model_input_spec(m);
  const fm_layout *l = fm_model_layout(m);
  size_t D = sp->num_features, C = sp->num_classes;
  const float *K = w + fm_layout_tensor(l, 0)->offset, *B = w + fm_layout_tensor(l, 1)->offset;
  const float *S = w + fm_layout_tensor(l, 2)->offset;
  float *xs = ws, *p = xs + n * D;
  double total = 0;
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < D; j++) xs[i * D + j] = x[i * D + j] * S[j];
    double z[16], mx = -INFINITY, sum = 0;
    if (C > 16) return fm_set_error(FM_ERR_UNSUPPORTED, "scaled_linear: at most 16 classes");
    for (size_t c = 0; c < C; c++) {
      z[c] = B[c];
      for (size_t j = 0; j < D; j++) z[c] += (double)xs[i * D + j] * K[j * C + c];
      mx = fmax(mx, z[c]);
    }
    for (size_t c = 0; c < C; c++) sum += exp(z[c] - mx);
    for (size_t c = 0; c < C; c++) p[i * C + c] = (float)(exp(z[c] - mx) / sum);
    total += log(sum) - (z[y[i]] - mx);
  }
  *loss = (float)(total / (double)n);
  if (probs) memcpy(probs, p, n * C * sizeof *probs);
  return FM_OK;
}

static int sl_backward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                       float *dw) {
  (void)w, (void)x;
  const fm_input_spec *sp = fm_model_input_spec(m);
  const fm_layout *l = fm_model_layout(m);
  size_t D = sp->num_features, C = sp->num_classes;
  float *dK = dw + fm_layout_tensor(l, 0)->offset, *dB = dw + fm_layout_tensor(l, 1)->offset;
  const float *xs = ws, *p = xs + n * D;
  for (size_t i = 0; i < n; i++)
    for (size_t c = 0; c < C; c++) {
      float d = (p[i * C + c] - (c == (size_t)y[i] ? 1.0f : 0.0f)) / (float)n;
      dB[c] += d;
      for (size_t j = 0; j < D; j++) dK[j * C + c] += xs[i * D + j] * d;
    }
  return FM_OK;
}

static int sl_destroyed;
static void sl_destroy(fm_model *m) {
  sl_destroyed++;
  free(fm_model_data(m));
}

static const fm_model_ops sl_ops = {sl_workspace_size, sl_init, sl_forward, sl_backward, sl_destroy, NULL};

static int sl_factory(const fm_input_spec *spec, const char *args, fm_model **out) {
  double mult = 1.0;
  if (args) {
    char *end;
    mult = strtod(args, &end);
    if (!*args || *end || !(mult > 0)) return fm_set_error(FM_ERR_INVALID_ARG, "scaled_linear: bad scale '%s'", args);
  }
  fm_layout *l = NULL;
  int rc = fm_layout_create(&l);
  if (rc != FM_OK) return rc;
  size_t ks[2] = {spec->num_features, spec->num_classes}, bs[1] = {spec->num_classes}, ss[1] = {spec->num_features};
  if ((rc = fm_layout_add(l, "linear/kernel", 2, ks, 1)) != FM_OK ||
      (rc = fm_layout_add(l, "linear/bias", 1, bs, 1)) != FM_OK ||
      (rc = fm_layout_add(l, "feature_scale", 1, ss, 0)) != FM_OK) {
    fm_layout_destroy(&l);
    return rc;
  }
  scaled_linear *d = malloc(sizeof *d);
  if (!d) {
    fm_layout_destroy(&l);
    return fm_set_error(FM_ERR_NOMEM, "scaled_linear: out of memory");
  }
  d->scale_mult = mult;
  rc = fm_model_create("scaled_linear", &sl_ops, spec, l, d, out);
  if (rc != FM_OK) free(d); /* the layout was taken over; data was not */
  return rc;
}

/* ---- built-ins by name ------------------------------------------------------------------ */

static void test_builtin_names(void **state) {
  (void)state;
  const char *help = NULL;
  assert_string_equal(fm_model_registry_name(0, &help), "softmax");
  assert_string_equal(help, "softmax regression (multinomial logistic)");
  assert_string_equal(fm_model_registry_name(1, &help), "mlp");
  assert_non_null(strstr(help, "200,200"));
  assert_string_equal(fm_model_registry_name(2, NULL), "2nn");
  assert_string_equal(fm_model_registry_name(3, &help), "cnn");
  assert_non_null(strstr(help, "cnn:32,64,512"));
  assert_string_equal(fm_model_registry_name(4, &help), "stack");
  assert_non_null(strstr(help, "stack:conv2d(32,5)"));
  assert_string_equal(fm_model_registry_name(5, &help), "emnist_cnn_dropout");
  assert_non_null(strstr(help, "1,199,882"));
  assert_string_equal(fm_model_registry_name(6, &help), "shakespeare_lstm");
  assert_non_null(strstr(help, "820,522"));
  assert_string_equal(fm_model_registry_name(7, &help), "stackoverflow_nwp");
  assert_non_null(strstr(help, "4,050,748"));
  assert_string_equal(fm_model_registry_name(8, &help), "emnist_autoencoder");
  assert_non_null(strstr(help, "2,837,314"));
  assert_null(fm_model_registry_name(9, &help));
  assert_null(help);
}

static void test_create_builtins_by_name(void **state) {
  (void)state;
  size_t img[3] = {28, 28, 1};
  fm_input_spec s;
  assert_int_equal(fm_input_spec_set(&s, 3, img, 10), FM_OK);
  fm_model *m = NULL, *again = NULL;

  assert_int_equal(fm_model_create_by_name("softmax", &s, &m), FM_OK);
  assert_string_equal(fm_model_type(m), "softmax");
  assert_int_equal(fm_layout_numel(fm_model_layout(m)), 784 * 10 + 10);
  fm_model_destroy(&m);

  /* bare "mlp" and "2nn" are McMahan et al.'s 2NN (199,210 parameters) */
  const char *two_nn[3] = {"mlp", "2nn", "mlp:200,200"};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(fm_model_create_by_name(two_nn[i], &s, &m), FM_OK);
    assert_string_equal(fm_model_type(m), "mlp:200,200");
    assert_int_equal(fm_layout_numel(fm_model_layout(m)), 199210);
    assert_int_equal(fm_layout_num_tensors(fm_model_layout(m)), 6);
    fm_model_destroy(&m);
  }

  assert_int_equal(fm_model_create_by_name("mlp:16,8,4", &s, &m), FM_OK);
  assert_string_equal(fm_model_type(m), "mlp:16,8,4");
  const fm_layout *l = fm_model_layout(m);
  assert_int_equal(fm_layout_num_tensors(l), 8);
  assert_int_equal(fm_layout_tensor(l, 4)->shape[0], 8);
  assert_int_equal(fm_layout_tensor(l, 4)->shape[1], 4);
  /* the type name recreates the same model */
  assert_int_equal(fm_model_create_by_name(fm_model_type(m), &s, &again), FM_OK);
  assert_true(fm_layout_equal(fm_model_layout(m), fm_model_layout(again)));
  fm_model_destroy(&again);
  fm_model_destroy(&m);

  assert_int_equal(fm_model_create_by_name("mlp:007", &s, &m), FM_OK); /* leading zeros are decimal */
  assert_string_equal(fm_model_type(m), "mlp:7");
  fm_model_destroy(&m);

  /* bad spec reaches the factory's checks */
  fm_input_spec bad = s;
  bad.num_classes = 0;
  assert_int_equal(fm_model_create_by_name("softmax", &bad, &m), FM_ERR_INVALID_ARG);
  assert_null(m);
  assert_int_equal(fm_model_create_by_name("softmax", &s, NULL), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_create_by_name(NULL, &s, &m), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_create_by_name("", &s, &m), FM_ERR_INVALID_ARG);
}

static void test_unknown_name(void **state) {
  (void)state;
  fm_input_spec s = make_spec(4, 3);
  fm_model *m = (fm_model *)&s; /* must be reset to NULL */
  assert_int_equal(fm_model_create_by_name("foo", &s, &m), FM_ERR_UNKNOWN_TYPE);
  assert_null(m);
  const char *msg = fm_last_error();
  assert_non_null(strstr(msg, "'foo'"));
  assert_non_null(strstr(msg, "softmax"));
  assert_non_null(strstr(msg, "mlp"));
  assert_non_null(strstr(msg, "2nn"));
  assert_non_null(strstr(msg, "cnn"));
  assert_int_equal(fm_model_create_by_name("resnet:50", &s, &m), FM_ERR_UNKNOWN_TYPE);
  assert_non_null(strstr(fm_last_error(), "'resnet'"));
  /* prefixes and case do not match */
  assert_int_equal(fm_model_create_by_name("soft", &s, &m), FM_ERR_UNKNOWN_TYPE);
  assert_int_equal(fm_model_create_by_name("MLP", &s, &m), FM_ERR_UNKNOWN_TYPE);
  assert_int_equal(fm_model_create_by_name("mlpx:3", &s, &m), FM_ERR_UNKNOWN_TYPE);
}

static void test_bad_args(void **state) {
  (void)state;
  fm_input_spec s = make_spec(4, 3);
  fm_model *m = NULL;
  /* name, text the message must quote */
  const char *cases[][2] = {
      {"mlp:abc", "'abc'"},
      {"mlp:0", "'0'"},
      {"mlp:", "mlp:"},
      {"mlp:200,", "''"},
      {"mlp:,5", "''"},
      {"mlp:-3", "'-3'"},
      {"mlp:+3", "'+3'"},
      {"mlp:1 2", "'1 2'"},
      {"mlp:5,x7", "'x7'"},
      {"mlp:99999999999999999999", "'99999999999999999999'"},
      {"mlp:3000000000", "'3000000000'"},
      {"softmax:3", "softmax:3"},
      {"2nn:100", "2nn:100"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = fm_model_create_by_name(cases[i][0], &s, &m);
    if (rc != FM_ERR_INVALID_ARG) fail_msg("%s: got %s", cases[i][0], fm_err_name(rc));
    assert_null(m);
    if (!strstr(fm_last_error(), cases[i][1]))
      fail_msg("%s: message '%s' does not quote %s", cases[i][0], fm_last_error(), cases[i][1]);
  }
  /* too many hidden layers */
  char many[400] = "mlp:1";
  for (int i = 0; i < 100; i++) strcat(many, ",1");
  assert_int_equal(fm_model_create_by_name(many, &s, &m), FM_ERR_INVALID_ARG);
}

/* ---- a user model ----------------------------------------------------------------------- */

static void test_register_validation(void **state) {
  (void)state;
  assert_int_equal(fm_model_register("softmax", sl_factory, "x"), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "softmax"));
  assert_int_equal(fm_model_register("a:b", sl_factory, "x"), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_register("a b", sl_factory, "x"), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_register("", sl_factory, "x"), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_register(NULL, sl_factory, "x"), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_register("nofactory", NULL, "x"), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_model_register("a_name_that_is_far_too_long_for_the_table", sl_factory, "x"), FM_ERR_INVALID_ARG);
  assert_null(fm_model_registry_name(9, NULL)); /* nothing was added */
}

static void test_user_model(void **state) {
  (void)state;
  assert_int_equal(fm_model_register("scaled_linear", sl_factory, "linear model on scaled features"), FM_OK);
  assert_int_equal(fm_model_register("scaled_linear", sl_factory, "again"), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "scaled_linear"));
  const char *help = NULL;
  assert_string_equal(fm_model_registry_name(9, &help), "scaled_linear");
  assert_string_equal(help, "linear model on scaled features");

  const size_t D = 5, C = 3, N = 6;
  fm_input_spec s = make_spec(D, C);
  fm_model *m = NULL;
  assert_int_equal(fm_model_create_by_name("scaled_linear:2", &s, &m), FM_OK);
  assert_string_equal(fm_model_type(m), "scaled_linear");
  assert_int_equal(((scaled_linear *)fm_model_data(m))->scale_mult, 2);
  const fm_layout *l = fm_model_layout(m);
  size_t P = fm_layout_numel(l), T = fm_layout_trainable_numel(l);
  assert_int_equal(P, D * C + C + D);
  assert_int_equal(T, D * C + C);
  assert_false(fm_layout_tensor(l, 2)->trainable);
  assert_int_equal(fm_layout_tensor(l, 2)->offset, T); /* non-trainable after the prefix */
  /* the model reports the default metrics */
  assert_int_equal(fm_model_num_metrics(m), 4);

  float *w = malloc(P * sizeof *w), *x = malloc(N * D * sizeof *x);
  int32_t y[6] = {0, 1, 2, 2, 1, 0};
  void *ws = malloc(fm_model_workspace_size(m, N));
  assert_int_equal(fm_model_init_weights(m, w, 5), FM_OK);
  for (size_t j = 0; j < D; j++) assert_true(w[T + j] == (float)(2.0 * (1.0 + 0.25 * (double)j)));
  fm_rng r;
  fm_rng_init(&r, 5, 0, 0, FM_RNG_USER);
  for (size_t i = 0; i < N * D; i++) x[i] = (float)(fm_rng_uniform(&r) - 0.5);

  /* gradient over the trainable prefix only; dw[T] is a canary */
  float *g = calloc(T + 1, sizeof *g), loss, lp, lm;
  g[T] = -7.0f;
  assert_int_equal(fm_model_forward(m, ws, w, x, y, N, 1, &loss, NULL), FM_OK);
  assert_int_equal(fm_model_backward(m, ws, w, x, y, N, g), FM_OK);
  assert_true(g[T] == -7.0f);
  const float eps = 1e-2f;
  for (size_t j = 0; j < T; j++) {
    float w0 = w[j];
    w[j] = w0 + eps;
    assert_int_equal(fm_model_forward(m, ws, w, x, y, N, 0, &lp, NULL), FM_OK);
    w[j] = w0 - eps;
    assert_int_equal(fm_model_forward(m, ws, w, x, y, N, 0, &lm, NULL), FM_OK);
    w[j] = w0;
    double fd = ((double)lp - lm) / (2.0 * eps);
    if (!(fabs(g[j] - fd) <= 1e-2 * fmax(fabs(fd), fabs(g[j])) + 5e-4))
      fail_msg("param %zu: analytic %.8g vs FD %.8g", j, g[j], fd);
  }
  /* the non-trainable scale changes the loss but has no gradient slot */
  w[T] *= 3.0f;
  assert_int_equal(fm_model_forward(m, ws, w, x, y, N, 0, &lp, NULL), FM_OK);
  assert_true(lp != loss);

  /* the factory's own argument errors propagate */
  fm_model *bad = NULL;
  assert_int_equal(fm_model_create_by_name("scaled_linear:-1", &s, &bad), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "'-1'"));
  assert_null(bad);
  /* and so do errors raised inside its forward */
  fm_model *wide = NULL;
  fm_input_spec s20 = make_spec(2, 20);
  assert_int_equal(fm_model_create_by_name("scaled_linear", &s20, &wide), FM_OK);
  float w20[2 * 20 + 20 + 2], x20[2] = {1, 1};
  void *ws20 = malloc(fm_model_workspace_size(wide, 1));
  int32_t y20[1] = {3};
  assert_int_equal(fm_model_init_weights(wide, w20, 1), FM_OK);
  assert_int_equal(fm_model_forward(wide, ws20, w20, x20, y20, 1, 0, &lp, NULL), FM_ERR_UNSUPPORTED);
  assert_non_null(strstr(fm_last_error(), "16 classes"));
  free(ws20);
  fm_model_destroy(&wide);

  int before = sl_destroyed;
  fm_model_destroy(&m);
  assert_int_equal(sl_destroyed, before + 1);
  free(w), free(x), free(ws), free(g);
}

static int dummy_factory(const fm_input_spec *spec, const char *args, fm_model **out) {
  (void)args;
  return fm_model_create_softmax(spec, out);
}

static int lying_factory(const fm_input_spec *spec, const char *args, fm_model **out) {
  (void)spec, (void)args, (void)out;
  return FM_OK; /* success without a model */
}

static void test_registry_full(void **state) {
  (void)state;
  assert_int_equal(fm_model_register("liar", lying_factory, NULL), FM_OK);
  fm_input_spec s = make_spec(4, 3);
  fm_model *m = NULL;
  assert_int_not_equal(fm_model_create_by_name("liar", &s, &m), FM_OK);
  assert_null(m);

  size_t n = 0;
  while (fm_model_registry_name(n, NULL)) n++;
  char name[32];
  int rc = FM_OK;
  size_t added = 0;
  for (; added < 100 && rc == FM_OK; added++) {
    snprintf(name, sizeof name, "extra-%zu.v1", added);
    rc = fm_model_register(name, dummy_factory, "filler");
  }
  assert_int_equal(rc, FM_ERR_OVERFLOW);
  assert_non_null(strstr(fm_last_error(), name));
  size_t total = n + added - 1;
  assert_true(total >= 32);
  assert_non_null(fm_model_registry_name(total - 1, NULL));
  assert_null(fm_model_registry_name(total, NULL));
  /* every entry, built-in or added, still works */
  assert_int_equal(fm_model_create_by_name("extra-0.v1", &s, &m), FM_OK);
  fm_model_destroy(&m);
  assert_int_equal(fm_model_create_by_name("2nn", &s, &m), FM_OK);
  fm_model_destroy(&m);
  /* the unknown-type message still fits with a full table */
  assert_int_equal(fm_model_create_by_name("nope", &s, &m), FM_ERR_UNKNOWN_TYPE);
  assert_non_null(strstr(fm_last_error(), "'nope'"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_builtin_names),       cmocka_unit_test(test_create_builtins_by_name),
      cmocka_unit_test(test_unknown_name),        cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_register_validation), cmocka_unit_test(test_user_model),
      cmocka_unit_test(test_registry_full),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
