/* tests/fm_test.h — small helpers on top of cmocka for numeric tests. */
#ifndef FM_TEST_H
#define FM_TEST_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "fedmpi/fedmpi.h"

/* Assert an fm call succeeded, printing fedmpi's message when it did not. */
#define FM_ASSERT_OK(expr)                                                                           \
  do {                                                                                               \
    int fm_t_rc_ = (expr);                                                                           \
    if (fm_t_rc_ != FM_OK) fail_msg("%s -> %s: %s", #expr, fm_err_name(fm_t_rc_), fm_last_error()); \
  } while (0)

/* Assert an fm call failed with the given code. */
#define FM_ASSERT_ERR(code, expr)                                                                     \
  do {                                                                                                \
    int fm_t_rc_ = (expr);                                                                            \
    if (fm_t_rc_ != (code))                                                                           \
      fail_msg("%s -> %s (%s), expected %s", #expr, fm_err_name(fm_t_rc_), fm_last_error(), #code);   \
  } while (0)

/* |a - b| <= tol * max(1, |a|, |b|) element-wise, reporting the worst element. */
static inline void fm_assert_close(const float *a, const float *b, size_t n, double tol, const char *what) {
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    double scale = fmax(1.0, fmax(fabs(a[i]), fabs(b[i])));
    double d = fabs((double)a[i] - (double)b[i]) / scale;
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  if (!(worst <= tol))
    fail_msg("%s: maxdiff %.3g at %zu (%.9g vs %.9g) > tol %.3g", what, worst, at, a[at], b[at], tol);
}

/* The last error message contains needle. */
#define FM_ASSERT_MSG_HAS(needle)                                                                    \
  do {                                                                                               \
    if (!strstr(fm_last_error(), (needle)))                                                          \
      fail_msg("error message '%s' does not mention '%s'", fm_last_error(), (needle));              \
  } while (0)

#endif
