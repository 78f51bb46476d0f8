/* tests/unit/test_schedule.c — learning-rate schedules: values at chosen
 * rounds (0-based, as TFF's round_num), warmup, parse errors naming the bad
 * text, format round trips, hand-built checks and setting an optimizer's
 * learning_rate. */
#include <string.h>

#include "fm_test.h"

static double value_of(const char *spec, double base, uint64_t round) {
  fm_schedule s;
  int rc = fm_schedule_parse(spec, base, &s);
  if (rc != FM_OK) fail_msg("parse '%s': %s", spec, fm_last_error());
  return fm_schedule_value(&s, round);
}

/* Relative 1e-14 (the values are computed in double). */
#define ASSERT_LR(spec, base, round, want)                                                                 \
  do {                                                                                                     \
    double got_ = value_of((spec), (base), (round)), want_ = (want);                                       \
    if (!(fabs(got_ - want_) <= 1e-14 * fmax(1e-300, fabs(want_))))                                        \
      fail_msg("%s (base %g) at round %llu: %.17g, expected %.17g", (spec), (double)(base),                \
               (unsigned long long)(round), got_, want_);                                                  \
  } while (0)

static void test_constant(void **st) {
  (void)st;
  ASSERT_LR("constant", 0.1, 0, 0.1);
  ASSERT_LR("constant", 0.1, 1, 0.1);
  ASSERT_LR("constant", 0.1, 1000000, 0.1);
  ASSERT_LR("", 0.25, 7, 0.25); /* "" is constant */
  fm_schedule s;
  FM_ASSERT_OK(fm_schedule_parse(NULL, 0.5, &s));
  assert_int_equal(s.type, FM_SCHEDULE_CONSTANT);
  assert_true(fm_schedule_value(&s, 3) == 0.5);
  s = fm_schedule_constant(0.125);
  FM_ASSERT_OK(fm_schedule_check(&s));
  assert_true(fm_schedule_value(&s, 99) == 0.125);
}

static void test_step(void **st) {
  (void)st;
  /* lr * gamma^floor(r / every) */
  ASSERT_LR("step:gamma=0.5,every=10", 0.2, 0, 0.2);
  ASSERT_LR("step:gamma=0.5,every=10", 0.2, 9, 0.2);
  ASSERT_LR("step:gamma=0.5,every=10", 0.2, 10, 0.1);
  ASSERT_LR("step:gamma=0.5,every=10", 0.2, 19, 0.1);
  ASSERT_LR("step:gamma=0.5,every=10", 0.2, 20, 0.05);
  ASSERT_LR("step:gamma=0.5,every=10", 0.2, 35, 0.025);
  ASSERT_LR("step:every=3", 1.0, 2, 1.0); /* gamma defaults to 0.1 */
  ASSERT_LR("step:every=3", 1.0, 3, 0.1);
  ASSERT_LR("step:every=3", 1.0, 6, 0.1 * 0.1);
  ASSERT_LR("step:gamma=0.5,every=1", 1.0, 4, 0.0625);
}

static void test_exp(void **st) {
  (void)st;
  /* lr * gamma^(r / every), not staircase */
  ASSERT_LR("exp:gamma=0.99", 1.0, 0, 1.0);
  ASSERT_LR("exp:gamma=0.99", 1.0, 1, 0.99);
  ASSERT_LR("exp:gamma=0.99", 1.0, 3, 0.970299);
  ASSERT_LR("exp:gamma=0.5,every=2", 1.0, 1, 0.7071067811865476);
  ASSERT_LR("exp:gamma=0.5,every=2", 1.0, 2, 0.5);
  ASSERT_LR("exponential:gamma=0.9,every=2", 2.0, 5, 2.0 * 0.7684334714209162);
}

static void test_inverse_sqrt(void **st) {
  (void)st;
  /* lr / sqrt(1 + r / timescale), timescale = max(warmup, 1) by default */
  ASSERT_LR("inverse_sqrt", 1.0, 0, 1.0);
  ASSERT_LR("inverse_sqrt", 1.0, 3, 0.5);
  ASSERT_LR("inverse_sqrt", 1.0, 8, 1.0 / 3.0);
  ASSERT_LR("inverse_sqrt:timescale=50", 0.4, 150, 0.2);
  /* With warmup W: (r + 1) / (W + 1) for r < W, then lr * sqrt(W / r). */
  ASSERT_LR("inverse_sqrt:warmup=10", 1.0, 0, 1.0 / 11.0);
  ASSERT_LR("inverse_sqrt:warmup=10", 1.0, 9, 10.0 / 11.0);
  ASSERT_LR("inverse_sqrt:warmup=10", 1.0, 10, 1.0);
  ASSERT_LR("inverse_sqrt:warmup=10", 1.0, 40, 0.5);
  ASSERT_LR("inverse_sqrt:warmup=10", 1.0, 90, 1.0 / 3.0);
  for (uint64_t r = 10; r < 200; r += 7)
    ASSERT_LR("inverse_sqrt:warmup=10", 0.3, r, 0.3 * sqrt(10.0 / (double)r));
}

static void test_cosine(void **st) {
  (void)st;
  /* lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(r, T) / T)) + alpha) */
  ASSERT_LR("cosine:rounds=100,alpha=0.1", 2.0, 0, 2.0);
  ASSERT_LR("cosine:rounds=100,alpha=0.1", 2.0, 25, 1.7363961030678927);
  ASSERT_LR("cosine:rounds=100,alpha=0.1", 2.0, 50, 1.1);
  ASSERT_LR("cosine:rounds=100,alpha=0.1", 2.0, 75, 0.4636038969321073);
  ASSERT_LR("cosine:rounds=100,alpha=0.1", 2.0, 100, 0.2);
  ASSERT_LR("cosine:rounds=100,alpha=0.1", 2.0, 5000, 0.2);
  fm_schedule s;
  FM_ASSERT_OK(fm_schedule_parse("cosine:rounds=10", 1.0, &s)); /* alpha = 0: down to exactly 0 */
  assert_true(fm_schedule_value(&s, 10) == 0.0);
  assert_true(fm_schedule_value(&s, 11) == 0.0);
  for (uint64_t r = 1; r <= 10; r++) assert_true(fm_schedule_value(&s, r) < fm_schedule_value(&s, r - 1));
}

static void test_warmup(void **st) {
  (void)st;
  ASSERT_LR("constant:warmup=4", 1.0, 0, 0.2);
  ASSERT_LR("constant:warmup=4", 1.0, 3, 0.8);
  ASSERT_LR("constant:warmup=4", 1.0, 4, 1.0);
  ASSERT_LR("constant:warmup=4", 1.0, 100, 1.0);
  /* the decay starts after the warmup */
  ASSERT_LR("step:gamma=0.5,every=10,warmup=5", 1.0, 5, 1.0);
  ASSERT_LR("step:gamma=0.5,every=10,warmup=5", 1.0, 14, 1.0);
  ASSERT_LR("step:gamma=0.5,every=10,warmup=5", 1.0, 15, 0.5);
  ASSERT_LR("cosine:rounds=10,warmup=2", 0.3, 0, 0.1);
  ASSERT_LR("cosine:rounds=10,warmup=2", 0.3, 1, 0.2);
  ASSERT_LR("cosine:rounds=10,warmup=2", 0.3, 2, 0.3);
  ASSERT_LR("cosine:rounds=10,warmup=2", 0.3, 7, 0.15);
  ASSERT_LR("cosine:rounds=10,warmup=2", 0.3, 12, 0.0);
  /* never 0 during the warmup, and never above the base */
  fm_schedule s;
  FM_ASSERT_OK(fm_schedule_parse("exp:gamma=0.9,warmup=100", 0.01, &s));
  for (uint64_t r = 0; r < 300; r++) {
    double v = fm_schedule_value(&s, r);
    assert_true(v > 0.0 && v <= 0.01);
  }
}

static void test_whitespace_and_fields(void **st) {
  (void)st;
  fm_schedule s;
  FM_ASSERT_OK(fm_schedule_parse(" step : gamma = 0.5 , every = 10 , warmup = 3 ", 0.05, &s));
  assert_int_equal(s.type, FM_SCHEDULE_STEP);
  assert_true(s.base_lr == 0.05 && s.gamma == 0.5);
  assert_int_equal(s.every, 10);
  assert_int_equal(s.warmup, 3);
  FM_ASSERT_OK(fm_schedule_parse("cosine:rounds=100,alpha=0.1", 1.0, &s));
  assert_int_equal(s.type, FM_SCHEDULE_COSINE);
  assert_int_equal(s.rounds, 100);
  assert_true(s.alpha == 0.1);
}

static void test_parse_errors(void **st) {
  (void)st;
  static const struct {
    const char *spec, *named;
  } bad[] = {
      {"linear", "linear"},
      {"Constant", "Constant"},
      {"step", "every"},
      {"step:gamma=0.5", "every"},
      {"exp", "gamma"},
      {"exp:every=2", "gamma"},
      {"cosine", "rounds"},
      {"cosine:alpha=0.1", "rounds"},
      {"step:gamma=abc,every=2", "abc"},
      {"step:gamma=0.5,every=10x", "10x"},
      {"step:gamma=0.5,every=2.5", "2.5"},
      {"step:gamma=0.5,every=-1", "-1"},
      {"step:gamma=0.5,every=0", "every"},
      {"step:gamma=0,every=2", "gamma"},
      {"exp:gamma=-0.5", "gamma"},
      {"exp:gamma=nan", "nan"},
      {"exp:gamma=inf", "inf"},
      {"exp:gamma=", "gamma"},
      {"exp:gamma", "'gamma'"},
      {"exp:gamma=0.9,gamma=0.8", "twice"},
      {"step:every=2,,gamma=0.1", "key=value"},
      {"step:", "key=value"},
      {"constant:gamma=0.5", "gamma"},
      {"exp:rounds=5,gamma=0.9", "rounds"},
      {"cosine:rounds=10,alpha=1.5", "alpha"},
      {"cosine:rounds=0", "rounds"},
      {"cosine:rounds=1e30", "rounds"},
      {"inverse_sqrt:timescale=0", "timescale"},
      {"inverse_sqrt:warmup=-3", "warmup"},
      {":gamma=1", "unknown type"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    fm_schedule s = fm_schedule_constant(42.0);
    int rc = fm_schedule_parse(bad[i].spec, 0.1, &s);
    if (rc != FM_ERR_INVALID_ARG)
      fail_msg("'%s' -> %s, expected FM_ERR_INVALID_ARG", bad[i].spec, fm_err_name(rc));
    if (!strstr(fm_last_error(), bad[i].named))
      fail_msg("'%s': message '%s' does not name '%s'", bad[i].spec, fm_last_error(), bad[i].named);
    if (!strstr(fm_last_error(), bad[i].spec))
      fail_msg("'%s': message '%s' does not quote the spec", bad[i].spec, fm_last_error());
    assert_true(s.base_lr == 42.0 && s.type == FM_SCHEDULE_CONSTANT); /* untouched */
  }
  fm_schedule s;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_schedule_parse("constant", -0.1, &s));
  FM_ASSERT_MSG_HAS("-0.1");
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_schedule_parse("constant", NAN, &s));
  char longspec[400];
  memset(longspec, 'a', sizeof longspec - 1);
  longspec[sizeof longspec - 1] = '\0';
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_schedule_parse(longspec, 0.1, &s));
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_schedule_parse("constant", 0.1, NULL));
}

static void test_check_hand_built(void **st) {
  (void)st;
  fm_schedule s = fm_schedule_constant(0.1);
  s.type = FM_SCHEDULE_STEP;
  s.every = 0;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_schedule_check(&s));
  FM_ASSERT_MSG_HAS("every");
  s = fm_schedule_constant(0.1);
  s.type = FM_SCHEDULE_COSINE;
  s.rounds = 10;
  s.alpha = -0.5;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_schedule_check(&s));
  FM_ASSERT_MSG_HAS("alpha");
  s = fm_schedule_constant(0.1);
  s.type = (fm_schedule_type)99;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_schedule_check(&s));
  s = fm_schedule_constant(INFINITY);
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_schedule_check(&s));
  /* timescale 0 on a hand-built inverse_sqrt means max(warmup, 1) */
  s = fm_schedule_constant(1.0);
  s.type = FM_SCHEDULE_INVERSE_SQRT;
  FM_ASSERT_OK(fm_schedule_check(&s));
  assert_true(fm_schedule_value(&s, 3) == 0.5);
}

static void test_format_round_trip(void **st) {
  (void)st;
  static const struct {
    const char *spec, *canonical;
  } t[] = {
      {"constant", "constant"},
      {"", "constant"},
      {"constant:warmup=5", "constant:warmup=5"},
      {"step:every=10", "step:gamma=0.1,every=10"},
      {"step:gamma=0.5,every=10", "step:gamma=0.5,every=10"},
      {"exp:gamma=0.99", "exp:gamma=0.99,every=1"},
      {"exponential:gamma=0.3,every=4,warmup=2", "exp:gamma=0.3,every=4,warmup=2"},
      {"inverse_sqrt", "inverse_sqrt"},
      {"inverse_sqrt:warmup=10", "inverse_sqrt:warmup=10"},
      {"inverse_sqrt:timescale=2.5", "inverse_sqrt:timescale=2.5"},
      {"cosine:rounds=100,alpha=0.1", "cosine:rounds=100,alpha=0.1"},
      {"cosine:rounds=7", "cosine:rounds=7,alpha=0"},
      {"exp:gamma=0.123456789012345678", "exp:gamma=0.12345678901234568,every=1"},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    fm_schedule a, b;
    char buf[128];
    FM_ASSERT_OK(fm_schedule_parse(t[i].spec, 0.3, &a));
    FM_ASSERT_OK(fm_schedule_format(&a, buf, sizeof buf));
    assert_string_equal(buf, t[i].canonical);
    FM_ASSERT_OK(fm_schedule_parse(buf, 0.3, &b));
    for (uint64_t r = 0; r < 300; r += 13) assert_true(fm_schedule_value(&a, r) == fm_schedule_value(&b, r));
  }
  fm_schedule s;
  char tiny[8];
  FM_ASSERT_OK(fm_schedule_parse("cosine:rounds=100,alpha=0.1", 0.3, &s));
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_schedule_format(&s, tiny, sizeof tiny));
}

static size_t no_slots(const fm_optimizer *o) {
  (void)o;
  return 0;
}
static int no_step(const fm_optimizer *o, fm_optimizer_state *s, float *w, const float *g, size_t n) {
  (void)o, (void)s, (void)w, (void)g, (void)n;
  return FM_OK;
}

/* Applying round r sets learning_rate = value(r), as TFF's
 * client_learning_rate_fn(round_num) with round_num counted from 0. */
static void test_apply(void **st) {
  (void)st;
  fm_schedule s;
  FM_ASSERT_OK(fm_schedule_parse("step:gamma=0.5,every=2", 0.1, &s));
  fm_optimizer *o = NULL;
  FM_ASSERT_OK(fm_optimizer_create_adam(0.1, 0.9, 0.999, 1e-7, &o));
  static const double want[6] = {0.1, 0.1, 0.05, 0.05, 0.025, 0.025};
  for (uint64_t r = 0; r < 6; r++) {
    FM_ASSERT_OK(fm_schedule_apply(&s, r, o));
    assert_true(fm_optimizer_hparam(o, "learning_rate") == want[r]);
    assert_true(fm_optimizer_hparam(o, "beta_1") == 0.9); /* the rest untouched */
  }
  fm_optimizer_destroy(&o);
  /* An optimizer without a learning_rate cannot be scheduled (TFF: KeyError). */
  static const fm_optimizer_ops ops = {.type = "fixed", .num_slots = no_slots, .step = no_step};
  FM_ASSERT_OK(fm_optimizer_create_custom(&ops, NULL, &o));
  FM_ASSERT_ERR(FM_ERR_HPARAM_UNKNOWN, fm_schedule_apply(&s, 0, o));
  FM_ASSERT_MSG_HAS("learning_rate");
  fm_optimizer_destroy(&o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_constant),         cmocka_unit_test(test_step),
      cmocka_unit_test(test_exp),              cmocka_unit_test(test_inverse_sqrt),
      cmocka_unit_test(test_cosine),           cmocka_unit_test(test_warmup),
      cmocka_unit_test(test_whitespace_and_fields), cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_check_hand_built), cmocka_unit_test(test_format_round_trip),
      cmocka_unit_test(test_apply),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
