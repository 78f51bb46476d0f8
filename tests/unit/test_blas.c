/* tests/unit/test_blas.c — the BLAS kernel decision (fedmpi/blas.h) as a
 * pure function of CPU features x kernel name x the user's
 * OPENBLAS_CORETYPE, the kernel ranking, and the SGEMM self-check. None of
 * it depends on which kernel this machine runs. */
#include <string.h>

#include "fm_test.h"

static fm_cpu_features cpu(const char *isa) {
  fm_cpu_features f;
  memset(&f, 0, sizeof f);
  f.sse3 = 1;
  if (!strcmp(isa, "sse3")) return f;
  f.ssse3 = f.sse4_2 = 1;
  if (!strcmp(isa, "sse4.2")) return f;
  f.avx = 1;
  if (!strcmp(isa, "avx")) return f;
  f.avx2 = f.fma = 1;
  if (!strcmp(isa, "avx2")) return f;
  f.avx512f = f.avx512cd = f.avx512bw = f.avx512dq = f.avx512vl = 1;
  if (!strcmp(isa, "avx512")) return f;
  f.avx512_bf16 = 1;
  return f; /* "avx512bf16" */
}

static void test_kernel_levels(void **st) {
  (void)st;
  assert_int_equal(fm_blas_kernel_level("Prescott"), 1);
  assert_int_equal(fm_blas_kernel_level("prescott"), 1);
  assert_int_equal(fm_blas_kernel_level("Nehalem"), 3);
  assert_int_equal(fm_blas_kernel_level("Sandybridge"), 4);
  assert_int_equal(fm_blas_kernel_level("Haswell"), 5);
  assert_int_equal(fm_blas_kernel_level("Zen"), 5);
  assert_int_equal(fm_blas_kernel_level("SkylakeX"), 6);
  assert_int_equal(fm_blas_kernel_level("Cooperlake"), 7);
  assert_int_equal(fm_blas_kernel_level("Bogus"), -1);
  assert_int_equal(fm_blas_kernel_level(NULL), -1);
  fm_cpu_features f = cpu("avx512bf16");
  assert_string_equal(fm_blas_best_kernel(&f), "Cooperlake");
  f = cpu("avx512");
  assert_string_equal(fm_blas_best_kernel(&f), "SkylakeX");
  f.avx512vl = 0; /* AVX-512F without VL (Knights Landing): not SkylakeX's kernels */
  assert_string_equal(fm_blas_best_kernel(&f), "Haswell");
  f = cpu("avx2");
  assert_string_equal(fm_blas_best_kernel(&f), "Haswell");
  f = cpu("avx");
  assert_string_equal(fm_blas_best_kernel(&f), "Sandybridge");
  f = cpu("sse4.2");
  assert_string_equal(fm_blas_best_kernel(&f), "Nehalem");
  f = cpu("sse3");
  assert_string_equal(fm_blas_best_kernel(&f), "Prescott");
}

typedef struct decision_case {
  const char *isa, *kernel, *user;
  int correct;
  fm_blas_action action;
  const char *target, *reason_has;
} decision_case;

/* CPU features x kernel name x OPENBLAS_CORETYPE -> choice. */
static void test_decisions(void **st) {
  (void)st;
  const decision_case cases[] = {
      /* the misdetected Emerald Rapids: Prescott on an AVX-512 CPU is corrected */
      {"avx512bf16", "Prescott", NULL, 1, FM_BLAS_CORRECT, "Cooperlake", "corrected: OpenBLAS chose Prescott"},
      {"avx512", "Prescott", "", 1, FM_BLAS_CORRECT, "SkylakeX", "about 6x slower than SkylakeX"},
      {"avx2", "Prescott", NULL, 1, FM_BLAS_CORRECT, "Haswell", "AVX2+FMA CPU"},
      {"avx512", "Haswell", NULL, 1, FM_BLAS_CORRECT, "SkylakeX", "about 2x slower"},
      /* the right kernel, or a better-known one, is kept */
      {"avx512bf16", "Cooperlake", NULL, 1, FM_BLAS_KEEP, "Cooperlake", "OpenBLAS chose Cooperlake"},
      {"avx512", "Cooperlake", NULL, 1, FM_BLAS_KEEP, "SkylakeX", "OpenBLAS chose Cooperlake"},
      {"avx2", "Zen", NULL, 1, FM_BLAS_KEEP, "Haswell", "Zen"},
      {"sse3", "Prescott", NULL, 1, FM_BLAS_KEEP, "Prescott", "SSE3 CPU"},
      /* a kernel name fedmpi does not know: OpenBLAS is trusted */
      {"avx512", "FutureLake", NULL, 1, FM_BLAS_KEEP, "SkylakeX", "OpenBLAS chose FutureLake"},
      /* the user's OPENBLAS_CORETYPE is respected, with a warning when weaker */
      {"avx512bf16", "Prescott", "Prescott", 1, FM_BLAS_WARN_USER, "Cooperlake", "OPENBLAS_CORETYPE=Prescott"},
      {"avx512", "Haswell", "Haswell", 1, FM_BLAS_WARN_USER, "SkylakeX", "set it to SkylakeX"},
      {"avx512", "SkylakeX", "SkylakeX", 1, FM_BLAS_KEEP, "SkylakeX", "OPENBLAS_CORETYPE chose SkylakeX"},
      /* correction off: a warning that says what to set */
      {"avx512", "Prescott", NULL, 0, FM_BLAS_WARN_FORCED, "SkylakeX", "set OPENBLAS_CORETYPE=SkylakeX"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const decision_case *c = &cases[i];
    fm_cpu_features f = cpu(c->isa);
    fm_blas_decision d;
    fm_blas_decide(&f, c->kernel, c->user, c->correct, &d);
    if (d.action != c->action || strcmp(d.target, c->target) != 0 || !strstr(d.reason, c->reason_has))
      fail_msg("case %zu (%s, %s, user %s): action %d target %s reason '%s'", i, c->isa, c->kernel,
               c->user ? c->user : "unset", (int)d.action, d.target, d.reason);
    assert_true(d.slowdown >= 1.0);
    if (c->action == FM_BLAS_KEEP) assert_true(d.slowdown == 1.0);
  }
}

/* The kernel this process runs passes its self-check, and the features of
 * this CPU name a best kernel fedmpi knows. */
static void test_selfcheck_and_detect(void **st) {
  (void)st;
  FM_ASSERT_OK(fm_blas_selfcheck());
  fm_cpu_features f;
  fm_cpu_features_detect(&f);
  assert_true(fm_blas_kernel_level(fm_blas_best_kernel(&f)) >= 1);
  assert_non_null(fm_cpu_isa_name(&f));
  assert_non_null(fm_blas_corename());
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kernel_levels),
      cmocka_unit_test(test_decisions),
      cmocka_unit_test(test_selfcheck_and_detect),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
