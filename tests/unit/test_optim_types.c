/* tests/unit/test_optim_types.c — adam, adamw, adagrad, yogi and rmsprop
 * beyond their trajectories (test_optim_reference.c): TFF's defaults and
 * hparams key sets in TFF's order, validation as TFF (messages naming the
 * optimizer, key and value; nothing changes on failure), construction
 * options vs hparams, initial state and reset, adamw(wd=0) == adam bit for
 * bit, and the values TFF's own optimizer unit tests assert. */
#include <string.h>

#include "fm_test.h"

typedef struct kv {
  const char *key;
  double value;
} kv;

/* The hparams of o are exactly keys[0..n) with those values, in that order. */
static void assert_hparams(const fm_optimizer *o, const kv *want, size_t n) {
  fm_hparams h;
  fm_optimizer_get_hparams(o, &h);
  if (h.n != n) fail_msg("%s: %zu hparams, expected %zu", fm_optimizer_type(o), h.n, n);
  for (size_t i = 0; i < n; i++) {
    if (strcmp(h.item[i].name, want[i].key) != 0)
      fail_msg("%s: hparam %zu is '%s', expected '%s'", fm_optimizer_type(o), i, h.item[i].name, want[i].key);
    if (h.item[i].value != want[i].value)
      fail_msg("%s: %s = %.17g, expected %.17g", fm_optimizer_type(o), want[i].key, h.item[i].value, want[i].value);
  }
}

static void assert_options(const fm_optimizer *o, const kv *want, size_t n) {
  fm_hparams h;
  fm_optimizer_get_options(o, &h);
  if (h.n != n) fail_msg("%s: %zu options, expected %zu", fm_optimizer_type(o), h.n, n);
  for (size_t i = 0; i < n; i++) {
    assert_string_equal(h.item[i].name, want[i].key);
    if (h.item[i].value != want[i].value)
      fail_msg("%s: option %s = %.17g, expected %.17g", fm_optimizer_type(o), want[i].key, h.item[i].value,
               want[i].value);
  }
}

static size_t slots_of(const fm_optimizer *o) {
  fm_optimizer_state s;
  FM_ASSERT_OK(fm_optimizer_state_init(o, 4, &s));
  size_t n = s.num_slots;
  fm_optimizer_state_free(&s);
  return n;
}

/* TFF's defaults and hparams keys (get_hparams), in TFF's order. */
static void test_defaults_and_keys(void **st) {
  (void)st;
  static const kv sgdm[] = {{"learning_rate", 0.01}};
  static const kv adam[] = {{"learning_rate", 0.001}, {"beta_1", 0.9}, {"beta_2", 0.999}, {"epsilon", 1e-7}};
  static const kv adamw[] = {
      {"learning_rate", 0.001}, {"beta_1", 0.9}, {"beta_2", 0.999}, {"epsilon", 1e-7}, {"weight_decay", 0.004}};
  static const kv adagrad[] = {{"learning_rate", 0.001}, {"epsilon", 1e-7}};
  static const kv adagrad_opt[] = {{"initial_preconditioner_value", 0.1}};
  static const kv yogi[] = {{"learning_rate", 0.01}, {"beta_1", 0.9}, {"beta_2", 0.999}, {"epsilon", 1e-3}};
  static const kv yogi_opt[] = {{"initial_preconditioner_value", 1e-6}};
  static const kv rmsprop[] = {{"learning_rate", 0.001}, {"decay", 0.9}, {"epsilon", 1e-7}};
  static const struct {
    const char *type, *type_name;
    const kv *hp;
    size_t nhp;
    const kv *opt;
    size_t nopt;
    size_t slots;
  } t[] = {
      {"sgdm", "sgdm", sgdm, 1, NULL, 0, 0},
      {"sgd", "sgdm", sgdm, 1, NULL, 0, 0},
      {"adam", "adam", adam, 4, NULL, 0, 2},
      {"adamw", "adamw", adamw, 5, NULL, 0, 2},
      {"adagrad", "adagrad", adagrad, 2, adagrad_opt, 1, 1},
      {"yogi", "yogi", yogi, 4, yogi_opt, 1, 2},
      {"rmsprop", "rmsprop", rmsprop, 3, NULL, 0, 1},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    fm_optimizer *o = NULL;
    FM_ASSERT_OK(fm_optimizer_create(t[i].type, NULL, &o));
    assert_string_equal(fm_optimizer_type(o), t[i].type_name);
    assert_hparams(o, t[i].hp, t[i].nhp);
    assert_options(o, t[i].opt, t[i].nopt);
    assert_int_equal(slots_of(o), t[i].slots);
    assert_true(isnan(fm_optimizer_hparam(o, "initial_preconditioner_value"))); /* never an hparam */
    fm_optimizer_destroy(&o);
  }
  /* A user learning_rate replaces the fedmpi default; the rest stay TFF's. */
  fm_hparams h = {0};
  fm_hparams_put(&h, "learning_rate", 0.25);
  fm_optimizer *o = NULL;
  FM_ASSERT_OK(fm_optimizer_create("yogi", &h, &o));
  static const kv yogi_lr[] = {{"learning_rate", 0.25}, {"beta_1", 0.9}, {"beta_2", 0.999}, {"epsilon", 1e-3}};
  assert_hparams(o, yogi_lr, 4);
  fm_optimizer_destroy(&o);
}

static void test_registry(void **st) {
  (void)st;
  static const char *want[] = {"sgdm", "sgd", "adam", "adamw", "adagrad", "yogi", "rmsprop"};
  size_t n = 0;
  while (fm_optimizer_type_name(n)) n++;
  assert_int_equal(n, sizeof want / sizeof want[0]);
  for (size_t i = 0; i < n; i++) assert_string_equal(fm_optimizer_type_name(i), want[i]);
  fm_optimizer *o = NULL;
  FM_ASSERT_ERR(FM_ERR_UNKNOWN_TYPE, fm_optimizer_create("adafactor", NULL, &o));
  FM_ASSERT_MSG_HAS("adafactor");
  FM_ASSERT_MSG_HAS("yogi");
  assert_null(o);
}

/* Out-of-range values, as TFF's constructors raise ValueError. */
static void test_validation(void **st) {
  (void)st;
  static const struct {
    const char *type, *key;
    double value;
    const char *shown;
  } bad[] = {
      {"adam", "learning_rate", -0.5, "-0.5"},
      {"adam", "beta_1", 1.5, "1.5"},
      {"adam", "beta_1", -0.25, "-0.25"},
      {"adam", "beta_2", 1.25, "1.25"},
      {"adam", "epsilon", -0.001, "-0.001"},
      {"adamw", "learning_rate", -1, "-1"},
      {"adamw", "beta_2", -0.5, "-0.5"},
      {"adamw", "epsilon", -1e-8, "-1e-08"},
      {"adamw", "weight_decay", -0.004, "-0.004"},
      {"adagrad", "learning_rate", -0.1, "-0.1"},
      {"adagrad", "epsilon", -1, "-1"},
      {"adagrad", "initial_preconditioner_value", -0.1, "-0.1"},
      {"yogi", "learning_rate", -2, "-2"},
      {"yogi", "beta_1", 2, "2"},
      {"yogi", "beta_2", -0.1, "-0.1"},
      {"yogi", "epsilon", -0.001, "-0.001"},
      {"yogi", "initial_preconditioner_value", -1e-6, "-1e-06"},
      {"rmsprop", "learning_rate", -0.01, "-0.01"},
      {"rmsprop", "decay", 1.5, "1.5"},
      {"rmsprop", "decay", -0.5, "-0.5"},
      {"rmsprop", "epsilon", -1e-7, "-1e-07"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    fm_hparams h = {0};
    fm_hparams_put(&h, bad[i].key, bad[i].value);
    fm_optimizer *o = NULL;
    FM_ASSERT_ERR(FM_ERR_HPARAM_VALUE, fm_optimizer_create(bad[i].type, &h, &o));
    assert_null(o);
    FM_ASSERT_MSG_HAS(bad[i].type);
    FM_ASSERT_MSG_HAS(bad[i].key);
    FM_ASSERT_MSG_HAS(bad[i].shown);
  }
  /* Non-finite values, for every key of every type. */
  static const char *types[] = {"adam", "adamw", "adagrad", "yogi", "rmsprop"};
  for (size_t i = 0; i < 5; i++) {
    fm_optimizer *o = NULL;
    FM_ASSERT_OK(fm_optimizer_create(types[i], NULL, &o));
    fm_hparams h;
    fm_optimizer_get_hparams(o, &h);
    fm_optimizer_destroy(&o);
    for (size_t k = 0; k < h.n; k++) {
      fm_hparams b = {0};
      fm_hparams_put(&b, h.item[k].name, k % 2 ? INFINITY : NAN);
      FM_ASSERT_ERR(FM_ERR_HPARAM_VALUE, fm_optimizer_create(types[i], &b, &o));
      FM_ASSERT_MSG_HAS(h.item[k].name);
    }
  }
  /* The closed ends of TFF's ranges are accepted. */
  fm_optimizer *o = NULL;
  FM_ASSERT_OK(fm_optimizer_create_adam(0.0, 0.0, 1.0, 0.0, &o));
  fm_optimizer_destroy(&o);
  FM_ASSERT_OK(fm_optimizer_create_yogi(0.0, 1.0, 0.0, 0.0, 0.0, &o));
  fm_optimizer_destroy(&o);
  FM_ASSERT_OK(fm_optimizer_create_rmsprop(0.0, 0.0, 0.0, &o));
  fm_optimizer_destroy(&o);
  FM_ASSERT_OK(fm_optimizer_create_rmsprop(0.0, 1.0, 0.0, &o));
  fm_optimizer_destroy(&o);
  FM_ASSERT_OK(fm_optimizer_create_adamw(0.0, 1.0, 1.0, 0.0, 0.0, &o));
  fm_optimizer_destroy(&o);
  FM_ASSERT_OK(fm_optimizer_create_adagrad(0.0, 0.0, 0.0, &o));
  fm_optimizer_destroy(&o);
}

/* A key another type has is unknown here, and the message lists the keys. */
static void test_unknown_keys(void **st) {
  (void)st;
  static const struct {
    const char *type, *key;
  } bad[] = {
      {"adam", "momentum"},   {"adam", "weight_decay"}, {"adam", "initial_preconditioner_value"},
      {"adamw", "decay"},     {"adagrad", "beta_1"},    {"adagrad", "decay"},
      {"yogi", "weight_decay"}, {"rmsprop", "beta_2"},  {"rmsprop", "initial_preconditioner_value"},
      {"sgdm", "epsilon"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    fm_hparams h = {0};
    fm_hparams_put(&h, "learning_rate", 0.1);
    fm_hparams_put(&h, bad[i].key, 0.5);
    fm_optimizer *o = NULL;
    FM_ASSERT_ERR(FM_ERR_HPARAM_UNKNOWN, fm_optimizer_create(bad[i].type, &h, &o));
    assert_null(o);
    FM_ASSERT_MSG_HAS(bad[i].type);
    FM_ASSERT_MSG_HAS(bad[i].key);
    FM_ASSERT_MSG_HAS("learning_rate"); /* the keys it does have */
  }
}

static int hparams_equal(const fm_hparams *a, const fm_hparams *b) {
  if (a->n != b->n) return 0;
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->item[i].name, b->item[i].name) != 0 || a->item[i].value != b->item[i].value) return 0;
  return 1;
}

/* set_hparams: everything validated first, nothing changes on failure. */
static void test_set_hparams(void **st) {
  (void)st;
  static const char *types[] = {"adam", "adamw", "adagrad", "yogi", "rmsprop"};
  for (size_t i = 0; i < 5; i++) {
    fm_optimizer *o = NULL;
    FM_ASSERT_OK(fm_optimizer_create(types[i], NULL, &o));
    fm_hparams before, after, h = {0};
    fm_optimizer_get_hparams(o, &before);

    fm_hparams_put(&h, "learning_rate", 0.5); /* valid, but with an invalid key next */
    fm_hparams_put(&h, "epsilon", -1.0);
    FM_ASSERT_ERR(FM_ERR_HPARAM_VALUE, fm_optimizer_set_hparams(o, &h));
    FM_ASSERT_MSG_HAS(types[i]);
    FM_ASSERT_MSG_HAS("epsilon");
    fm_optimizer_get_hparams(o, &after);
    assert_true(hparams_equal(&before, &after));

    fm_hparams_clear(&h);
    fm_hparams_put(&h, "learning_rate", 0.5);
    fm_hparams_put(&h, "momentum", 0.9);
    FM_ASSERT_ERR(FM_ERR_HPARAM_UNKNOWN, fm_optimizer_set_hparams(o, &h));
    FM_ASSERT_MSG_HAS("momentum");
    fm_optimizer_get_hparams(o, &after);
    assert_true(hparams_equal(&before, &after));

    /* initial_preconditioner_value is not an hparam (TFF's set_hparams
     * would fail on it too), even for the types that take it at creation. */
    fm_hparams_clear(&h);
    fm_hparams_put(&h, "initial_preconditioner_value", 0.5);
    FM_ASSERT_ERR(FM_ERR_HPARAM_UNKNOWN, fm_optimizer_set_hparams(o, &h));
    FM_ASSERT_MSG_HAS("initial_preconditioner_value");
    fm_optimizer_get_hparams(o, &after);
    assert_true(hparams_equal(&before, &after));

    /* Setting every key to a new valid value works, order kept. */
    fm_hparams_clear(&h);
    for (size_t k = before.n; k-- > 0;) fm_hparams_put(&h, before.item[k].name, before.item[k].value * 0.5);
    FM_ASSERT_OK(fm_optimizer_set_hparams(o, &h));
    fm_optimizer_get_hparams(o, &after);
    assert_int_equal(after.n, before.n);
    for (size_t k = 0; k < before.n; k++) {
      assert_string_equal(after.item[k].name, before.item[k].name);
      assert_true(after.item[k].value == before.item[k].value * 0.5);
    }
    fm_optimizer_destroy(&o);
  }
}

/* The preconditioner starts at initial_preconditioner_value (adagrad 0.1,
 * yogi 1e-6), every other slot at 0; reset returns there. */
static void test_initial_state_and_reset(void **st) {
  (void)st;
  static const struct {
    const char *type;
    int custom;
    double init;
    size_t pre_slot; /* which slot is the preconditioner */
  } t[] = {
      {"adagrad", 0, 0.1, 0}, {"adagrad", 1, 0.25, 0}, {"yogi", 0, 1e-6, 1},
      {"yogi", 1, 0.5, 1},    {"adam", 0, 0.0, 1},     {"adamw", 0, 0.0, 1},
      {"rmsprop", 0, 0.0, 0},
  };
  const float g[3] = {0.5f, -2.0f, 1.0f};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    fm_hparams h = {0};
    fm_hparams_put(&h, "learning_rate", 0.1);
    if (t[i].custom) fm_hparams_put(&h, "initial_preconditioner_value", t[i].init);
    fm_optimizer *o = NULL;
    FM_ASSERT_OK(fm_optimizer_create(t[i].type, &h, &o));
    fm_optimizer_state s;
    FM_ASSERT_OK(fm_optimizer_state_init(o, 3, &s));
    float w1[3] = {0};
    for (int pass = 0; pass < 2; pass++) {
      assert_int_equal(s.step, 0);
      for (size_t j = 0; j < s.num_slots; j++)
        for (size_t k = 0; k < 3; k++)
          assert_true(s.slots[j * 3 + k] == (j == t[i].pre_slot ? (float)t[i].init : 0.0f));
      float w[3] = {1, 2, 3};
      for (int k = 0; k < 3; k++) FM_ASSERT_OK(fm_optimizer_step(o, &s, w, g, 3));
      assert_int_equal(s.step, 3);
      if (pass == 0) memcpy(w1, w, sizeof w);
      else assert_memory_equal(w, w1, sizeof w); /* a reset state replays exactly */
      FM_ASSERT_OK(fm_optimizer_state_reset(o, &s));
    }
    /* A state for another type does not reset under this one. */
    fm_optimizer *sgd = NULL;
    FM_ASSERT_OK(fm_optimizer_create("sgd", NULL, &sgd));
    FM_ASSERT_ERR(FM_ERR_STATE_MISMATCH, fm_optimizer_state_reset(sgd, &s));
    fm_optimizer_destroy(&sgd);
    float w[2] = {0};
    FM_ASSERT_ERR(FM_ERR_STATE_MISMATCH, fm_optimizer_step(o, &s, w, g, 2));
    /* The clone keeps the construction options. */
    fm_optimizer *c = NULL;
    FM_ASSERT_OK(fm_optimizer_clone(o, &c));
    fm_optimizer_state s2;
    FM_ASSERT_OK(fm_optimizer_state_init(c, 3, &s2));
    assert_memory_equal(s.slots, s2.slots, s.num_slots * 3 * sizeof(float));
    fm_optimizer_state_free(&s2);
    fm_optimizer_destroy(&c);
    fm_optimizer_state_free(&s);
    fm_optimizer_destroy(&o);
  }
}

/* adamw with weight_decay = 0 is adam, bit for bit, over many steps. */
static void test_adamw_zero_decay_is_adam(void **st) {
  (void)st;
  fm_optimizer *a = NULL, *aw = NULL, *aw2 = NULL;
  FM_ASSERT_OK(fm_optimizer_create_adam(0.05, 0.8, 0.99, 1e-3, &a));
  FM_ASSERT_OK(fm_optimizer_create_adamw(0.05, 0.8, 0.99, 1e-3, 0.0, &aw));
  FM_ASSERT_OK(fm_optimizer_create_adamw(0.05, 0.8, 0.99, 1e-3, 0.01, &aw2));
  enum { N = 5 };
  fm_optimizer_state sa, sw, sw2;
  FM_ASSERT_OK(fm_optimizer_state_init(a, N, &sa));
  FM_ASSERT_OK(fm_optimizer_state_init(aw, N, &sw));
  FM_ASSERT_OK(fm_optimizer_state_init(aw2, N, &sw2));
  float wa[N] = {1.0f, -0.5f, 0.25f, 3.0f, -2.0f}, ww[N], ww2[N];
  memcpy(ww, wa, sizeof wa);
  memcpy(ww2, wa, sizeof wa);
  for (int k = 0; k < 200; k++) {
    float g[N];
    for (int i = 0; i < N; i++) g[i] = (float)sin(0.3 * k + i) * (float)(1 + i);
    FM_ASSERT_OK(fm_optimizer_step(a, &sa, wa, g, N));
    FM_ASSERT_OK(fm_optimizer_step(aw, &sw, ww, g, N));
    FM_ASSERT_OK(fm_optimizer_step(aw2, &sw2, ww2, g, N));
    assert_memory_equal(wa, ww, sizeof wa);
    assert_memory_equal(sa.slots, sw.slots, 2 * N * sizeof(float));
  }
  assert_true(memcmp(wa, ww2, sizeof wa) != 0); /* and a nonzero decay does change it */
  fm_optimizer_state_free(&sa);
  fm_optimizer_state_free(&sw);
  fm_optimizer_state_free(&sw2);
  fm_optimizer_destroy(&a);
  fm_optimizer_destroy(&aw);
  fm_optimizer_destroy(&aw2);
}

/* With zero gradients AdamW's moments stay 0 and only the decay acts:
 * w <- w - lr * wd * w, the decay scaled by lr, not by the bias-corrected lr_t. */
static void test_adamw_decay_alone(void **st) {
  (void)st;
  fm_optimizer *o = NULL;
  FM_ASSERT_OK(fm_optimizer_create_adamw(0.5, 0.9, 0.999, 1e-7, 0.1, &o));
  fm_optimizer_state s;
  FM_ASSERT_OK(fm_optimizer_state_init(o, 1, &s));
  float w = 2.0f, g = 0.0f;
  FM_ASSERT_OK(fm_optimizer_step(o, &s, &w, &g, 1));
  assert_float_equal(w, 1.9f, 1e-6); /* 2 - 0.5 * 0.1 * 2 */
  FM_ASSERT_OK(fm_optimizer_step(o, &s, &w, &g, 1));
  assert_float_equal(w, 1.805f, 1e-6); /* 1.9 - 0.5 * 0.1 * 1.9 */
  fm_optimizer_state_free(&s);
  fm_optimizer_destroy(&o);
}

/* Yogi: sign(g^2 - s) = 0 leaves s unchanged; with s > g^2 it shrinks by
 * (1 - beta_2) g^2 (the case Adam does not have). */
static void test_yogi_sign(void **st) {
  (void)st;
  fm_optimizer *o = NULL;
  FM_ASSERT_OK(fm_optimizer_create_yogi(0.1, 0.9, 0.5, 1e-3, 4.0, &o));
  fm_optimizer_state s;
  FM_ASSERT_OK(fm_optimizer_state_init(o, 2, &s));
  float w[2] = {1, 1}, g[2] = {2.0f, 1.0f}; /* g^2 = 4 = s; g^2 = 1 < 4 */
  FM_ASSERT_OK(fm_optimizer_step(o, &s, w, g, 2));
  assert_true(s.slots[2] == 4.0f);
  assert_true(s.slots[3] == 3.5f); /* 4 - 0.5 * 1 */
  fm_optimizer_state_free(&s);
  fm_optimizer_destroy(&o);
}

/* The values TFF's own unit tests assert (test_math in TFF's adam_test.py, yogi_test.py, adagrad_test.py, rmsprop_test.py):
 * w = 1, g = 2, four steps. */
static void run_tff_math(fm_optimizer *o, const float *want, double tol) {
  fm_optimizer_state s;
  FM_ASSERT_OK(fm_optimizer_state_init(o, 1, &s));
  float w = 1.0f, g = 2.0f;
  for (int k = 0; k < 4; k++) {
    FM_ASSERT_OK(fm_optimizer_step(o, &s, &w, &g, 1));
    if (!(fabs(w - want[k]) <= tol + tol * fabs(want[k])))
      fail_msg("%s step %d: w = %.9g, TFF's test expects %.9g", fm_optimizer_type(o), k + 1, w, want[k]);
  }
  fm_optimizer_state_free(&s);
  fm_optimizer_destroy(&o);
}

static void test_tff_unit_test_values(void **st) {
  (void)st;
  fm_optimizer *o = NULL;
  static const float adam[4] = {0.9f, 0.8f, 0.7f, 0.6f};
  FM_ASSERT_OK(fm_optimizer_create_adam(0.1, 0.9, 0.999, 0.0, &o));
  run_tff_math(o, adam, 1e-6); /* assertAllClose defaults */
  FM_ASSERT_OK(fm_optimizer_create_yogi(0.1, 0.9, 0.999, 0.0, 0.0, &o));
  run_tff_math(o, adam, 1e-4);
  static const float adagrad[4] = {0.99f, 0.9829289f, 0.9771554f, 0.9721554f};
  FM_ASSERT_OK(fm_optimizer_create_adagrad(0.01, 0.0, 0.0, &o));
  run_tff_math(o, adagrad, 1e-6);
  static const float rmsprop[4] = {0.98585784f, 0.97431080f, 0.96362036f, 0.95329240f};
  FM_ASSERT_OK(fm_optimizer_create_rmsprop(0.01, 0.5, 0.0, &o));
  run_tff_math(o, rmsprop, 1e-6);
}

/* Epsilon placement on one step from a zero state, by hand:
 * adagrad s = 0.1 + 1 = 1.1, w -= 0.5 * 1 / sqrt(1.1 + 0.9) = 0.5/sqrt(2);
 * rmsprop s = 0.5, w -= 0.5 * 1 / (sqrt(0.5) + 0.25). */
static void test_epsilon_placement(void **st) {
  (void)st;
  fm_optimizer *o = NULL;
  fm_optimizer_state s;
  float w, g = 1.0f;
  FM_ASSERT_OK(fm_optimizer_create_adagrad(0.5, 0.1, 0.9, &o));
  FM_ASSERT_OK(fm_optimizer_state_init(o, 1, &s));
  w = 1.0f;
  FM_ASSERT_OK(fm_optimizer_step(o, &s, &w, &g, 1));
  assert_float_equal(w, 1.0 - 0.5 / sqrt(2.0), 1e-6);
  fm_optimizer_state_free(&s);
  fm_optimizer_destroy(&o);
  FM_ASSERT_OK(fm_optimizer_create_rmsprop(0.5, 0.5, 0.25, &o));
  FM_ASSERT_OK(fm_optimizer_state_init(o, 1, &s));
  w = 1.0f;
  FM_ASSERT_OK(fm_optimizer_step(o, &s, &w, &g, 1));
  assert_float_equal(w, 1.0 - 0.5 / (sqrt(0.5) + 0.25), 1e-6);
  fm_optimizer_state_free(&s);
  fm_optimizer_destroy(&o);
  /* adam, t = 1: m = 0.1, s = 0.001, lr_t = lr*sqrt(0.001)/0.1;
   * w -= lr_t * 0.1 / (sqrt(0.001) + 0.5) — epsilon is not bias-corrected. */
  FM_ASSERT_OK(fm_optimizer_create_adam(0.5, 0.9, 0.999, 0.5, &o));
  FM_ASSERT_OK(fm_optimizer_state_init(o, 1, &s));
  w = 1.0f;
  FM_ASSERT_OK(fm_optimizer_step(o, &s, &w, &g, 1));
  assert_float_equal(w, 1.0 - 0.5 * sqrt(0.001) / 0.1 * 0.1 / (sqrt(0.001) + 0.5), 1e-5);
  fm_optimizer_state_free(&s);
  fm_optimizer_destroy(&o);
}

/* The convenience creators are the registry with TFF's argument names. */
static void test_creators_match_registry(void **st) {
  (void)st;
  fm_optimizer *a = NULL, *b = NULL;
  fm_hparams h = {0}, ha, hb, oa, ob;
  fm_hparams_put(&h, "learning_rate", 0.3);
  fm_hparams_put(&h, "beta_1", 0.7);
  fm_hparams_put(&h, "beta_2", 0.95);
  fm_hparams_put(&h, "epsilon", 1e-4);
  fm_hparams_put(&h, "initial_preconditioner_value", 0.2);
  FM_ASSERT_OK(fm_optimizer_create("yogi", &h, &a));
  FM_ASSERT_OK(fm_optimizer_create_yogi(0.3, 0.7, 0.95, 1e-4, 0.2, &b));
  fm_optimizer_get_hparams(a, &ha);
  fm_optimizer_get_hparams(b, &hb);
  fm_optimizer_get_options(a, &oa);
  fm_optimizer_get_options(b, &ob);
  assert_true(hparams_equal(&ha, &hb));
  assert_true(hparams_equal(&oa, &ob));
  assert_int_equal(ha.n, 4);
  fm_optimizer_destroy(&a);
  fm_optimizer_destroy(&b);
  FM_ASSERT_ERR(FM_ERR_HPARAM_VALUE, fm_optimizer_create_adagrad(0.1, -1.0, 1e-7, &a));
  FM_ASSERT_MSG_HAS("initial_preconditioner_value");
  assert_null(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_and_keys),
      cmocka_unit_test(test_registry),
      cmocka_unit_test(test_validation),
      cmocka_unit_test(test_unknown_keys),
      cmocka_unit_test(test_set_hparams),
      cmocka_unit_test(test_initial_state_and_reset),
      cmocka_unit_test(test_adamw_zero_decay_is_adam),
      cmocka_unit_test(test_adamw_decay_alone),
      cmocka_unit_test(test_yogi_sign),
      cmocka_unit_test(test_tff_unit_test_values),
      cmocka_unit_test(test_epsilon_placement),
      cmocka_unit_test(test_creators_match_registry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
