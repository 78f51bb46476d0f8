/* tests/unit/test_optim.c — SGD with momentum against hand-computed steps,
 * TFF's hparams keys, validation and the registry. */
#include <string.h>

#include "fm_test.h"

static void test_sgd_plain_steps(void **st) {
  (void)st;
  fm_optimizer *o;
  FM_ASSERT_OK(fm_optimizer_create_sgdm(0.5, 0.0, &o));
  fm_hparams h;
  fm_optimizer_get_hparams(o, &h);
  assert_int_equal(h.n, 1); /* no "momentum" key when momentum is 0, as TFF */
  assert_string_equal(h.item[0].name, "learning_rate");
  fm_optimizer_state s;
  FM_ASSERT_OK(fm_optimizer_state_init(o, 2, &s));
  assert_int_equal(s.num_slots, 0);
  float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, 4.0f};
  FM_ASSERT_OK(fm_optimizer_step(o, &s, w, g, 2));
  assert_true(w[0] == 0.75f && w[1] == -4.0f);
  fm_optimizer_state_free(&s);
  fm_optimizer_destroy(&o);
  assert_null(o);
}

static void test_sgd_momentum_steps(void **st) {
  (void)st;
  fm_optimizer *o;
  FM_ASSERT_OK(fm_optimizer_create_sgdm(0.1, 0.9, &o));
  fm_optimizer_state s;
  FM_ASSERT_OK(fm_optimizer_state_init(o, 1, &s));
  assert_int_equal(s.num_slots, 1);
  float w = 1.0f;
  float g1 = 1.0f, g2 = 2.0f, g3 = -1.0f;
  /* v1 = 1, w = 1 - 0.1 = 0.9; v2 = 0.9 + 2 = 2.9, w = 0.9 - 0.29 = 0.61;
   * v3 = 0.9*2.9 - 1 = 1.61, w = 0.61 - 0.161 = 0.449 */
  FM_ASSERT_OK(fm_optimizer_step(o, &s, &w, &g1, 1));
  assert_float_equal(w, 0.9f, 1e-6);
  FM_ASSERT_OK(fm_optimizer_step(o, &s, &w, &g2, 1));
  assert_float_equal(w, 0.61f, 1e-6);
  FM_ASSERT_OK(fm_optimizer_step(o, &s, &w, &g3, 1));
  assert_float_equal(w, 0.449f, 1e-6);
  assert_int_equal(s.step, 3);
  /* reset returns to the initial state (a client's state each round) */
  FM_ASSERT_OK(fm_optimizer_state_reset(o, &s));
  w = 1.0f;
  FM_ASSERT_OK(fm_optimizer_step(o, &s, &w, &g1, 1));
  assert_float_equal(w, 0.9f, 1e-6);
  fm_optimizer_state_free(&s);
  fm_optimizer_destroy(&o);
}

static void test_sgd_validation_and_hparams(void **st) {
  (void)st;
  fm_optimizer *o = NULL;
  FM_ASSERT_ERR(FM_ERR_HPARAM_VALUE, fm_optimizer_create_sgdm(-0.1, 0.0, &o));
  FM_ASSERT_MSG_HAS("learning_rate");
  assert_null(o);
  FM_ASSERT_ERR(FM_ERR_HPARAM_VALUE, fm_optimizer_create_sgdm(0.1, 1.5, &o));
  FM_ASSERT_MSG_HAS("momentum");
  FM_ASSERT_ERR(FM_ERR_HPARAM_VALUE, fm_optimizer_create_sgdm(NAN, 0.0, &o));
  FM_ASSERT_ERR(FM_ERR_UNKNOWN_TYPE, fm_optimizer_create("adamax", NULL, &o));
  FM_ASSERT_MSG_HAS("adamax");
  fm_hparams bad = {0};
  fm_hparams_put(&bad, "beta_1", 0.9);
  FM_ASSERT_ERR(FM_ERR_HPARAM_UNKNOWN, fm_optimizer_create("sgdm", &bad, &o));

  FM_ASSERT_OK(fm_optimizer_create("sgdm", NULL, &o));
  assert_true(fm_optimizer_hparam(o, "learning_rate") == 0.01); /* TFF's default */
  fm_hparams h = {0};
  fm_hparams_put(&h, "learning_rate", 0.3);
  FM_ASSERT_OK(fm_optimizer_set_hparams(o, &h));
  assert_true(fm_optimizer_hparam(o, "learning_rate") == 0.3);
  fm_hparams_put(&h, "momentum", 0.5); /* not present: built without momentum */
  FM_ASSERT_ERR(FM_ERR_HPARAM_UNKNOWN, fm_optimizer_set_hparams(o, &h));
  assert_true(fm_optimizer_hparam(o, "learning_rate") == 0.3);
  fm_hparams neg = {0};
  fm_hparams_put(&neg, "learning_rate", -1);
  FM_ASSERT_ERR(FM_ERR_HPARAM_VALUE, fm_optimizer_set_hparams(o, &neg));
  assert_true(fm_optimizer_hparam(o, "learning_rate") == 0.3);
  assert_string_equal(fm_optimizer_type(o), "sgdm");
  fm_optimizer_destroy(&o);
  assert_string_equal(fm_optimizer_type_name(0), "sgdm");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sgd_plain_steps),
      cmocka_unit_test(test_sgd_momentum_steps),
      cmocka_unit_test(test_sgd_validation_and_hparams),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
