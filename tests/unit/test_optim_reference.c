/* tests/unit/test_optim_reference.c — every optimizer against trajectories
 * from an independent float32 implementation of TFF's update rules
 * (tests/data/optim_reference.py -> tests/data/optim_reference.h): the
 * weights and the state slots after each of 6 (or 100) steps over 3
 * parameters, relative tolerance 1e-6. It also reports how many values agree
 * to the bit. */
#include <string.h>

#include "data/optim_reference.h"
#include "fm_test.h"

#define REF_TOL 1e-6

/* |a - b| relative to the larger magnitude (0 when both are 0). */
static double rel_diff(float a, float b) {
  double d = fabs((double)a - (double)b), s = fmax(fabs((double)a), fabs((double)b));
  return d == 0.0 ? 0.0 : d / s;
}

typedef struct ref_stats {
  double worst;
  size_t values, identical;
} ref_stats;

static void check_values(const float *got, const float *want, size_t n, const char *name, const char *what,
                         size_t step, ref_stats *st) {
  for (size_t i = 0; i < n; i++) {
    double r = rel_diff(got[i], want[i]);
    st->values++;
    if (memcmp(&got[i], &want[i], sizeof(float)) == 0) st->identical++;
    if (r > st->worst) st->worst = r;
    if (!(r <= REF_TOL))
      fail_msg("%s: %s[%zu] after step %zu: %.9g, reference %.9g (relative difference %.3g > %.1g)", name, what, i,
               step + 1, got[i], want[i], r, REF_TOL);
  }
}

static void run_case(const fm_optim_ref_case *c, ref_stats *total) {
  fm_hparams hp = {0};
  for (size_t k = 0; k < c->num_hp; k++) FM_ASSERT_OK(fm_hparams_put(&hp, c->keys[k], c->values[k]));
  fm_optimizer *o = NULL;
  FM_ASSERT_OK(fm_optimizer_create(c->type, &hp, &o));
  fm_optimizer_state s;
  FM_ASSERT_OK(fm_optimizer_state_init(o, FM_OPTIM_REF_N, &s));
  if (s.num_slots != c->num_slots)
    fail_msg("%s: %zu state slots, the reference has %zu", c->name, s.num_slots, c->num_slots);
  float w[FM_OPTIM_REF_N];
  memcpy(w, c->w0, sizeof w);
  ref_stats st = {0};
  for (size_t k = 0; k < c->steps; k++) {
    FM_ASSERT_OK(fm_optimizer_step(o, &s, w, c->g[k], FM_OPTIM_REF_N));
    check_values(w, c->w[k], FM_OPTIM_REF_N, c->name, "w", k, &st);
    for (size_t j = 0; j < c->num_slots; j++)
      check_values(s.slots + j * FM_OPTIM_REF_N, c->slots[k * c->num_slots + j], FM_OPTIM_REF_N, c->name,
                   j == 0 && c->num_slots == 2 ? "accumulator" : "preconditioner/slot", k, &st);
  }
  assert_int_equal(s.step, (int64_t)c->steps);
  print_message("%-18s %3zu steps: %4zu values, %4zu bit-identical, worst relative difference %.3g\n", c->name,
                c->steps, st.values, st.identical, st.worst);
  total->values += st.values;
  total->identical += st.identical;
  if (st.worst > total->worst) total->worst = st.worst;
  fm_optimizer_state_free(&s);
  fm_optimizer_destroy(&o);
}

static void run_type(const char *type) {
  ref_stats total = {0};
  size_t cases = 0;
  for (size_t i = 0; i < FM_OPTIM_REF_NUM_CASES; i++) {
    const char *t = fm_optim_ref_cases[i].type;
    if (strcmp(t, type) == 0 || (strcmp(type, "sgdm") == 0 && strcmp(t, "sgd") == 0)) {
      run_case(&fm_optim_ref_cases[i], &total);
      cases++;
    }
  }
  if (cases < 2) fail_msg("the fixture has %zu cases for %s, expected at least 2", cases, type);
}

static void test_ref_sgdm(void **st) {
  (void)st;
  run_type("sgdm");
}
static void test_ref_adam(void **st) {
  (void)st;
  run_type("adam");
}
static void test_ref_adamw(void **st) {
  (void)st;
  run_type("adamw");
}
static void test_ref_adagrad(void **st) {
  (void)st;
  run_type("adagrad");
}
static void test_ref_yogi(void **st) {
  (void)st;
  run_type("yogi");
}
static void test_ref_rmsprop(void **st) {
  (void)st;
  run_type("rmsprop");
}

/* Every registered type has reference cases. */
static void test_ref_covers_registry(void **st) {
  (void)st;
  for (size_t i = 0; fm_optimizer_type_name(i); i++) {
    const char *name = fm_optimizer_type_name(i);
    int found = 0;
    for (size_t k = 0; k < FM_OPTIM_REF_NUM_CASES; k++) found |= strcmp(fm_optim_ref_cases[k].type, name) == 0;
    if (!found) fail_msg("optimizer '%s' has no reference trajectory in tests/data/optim_reference.h", name);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ref_sgdm),    cmocka_unit_test(test_ref_adam),
      cmocka_unit_test(test_ref_adamw),   cmocka_unit_test(test_ref_adagrad),
      cmocka_unit_test(test_ref_yogi),    cmocka_unit_test(test_ref_rmsprop),
      cmocka_unit_test(test_ref_covers_registry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
