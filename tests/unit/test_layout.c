/* tests/unit/test_layout.c — fm_layout: contiguous offsets in add order, the
 * trainable-prefix rule, error codes and messages that name the tensor,
 * lookup, equality and cloning.
 *
 * Deliberately not covered here: how models build their layouts (see
 * test_model.c) and saving layouts to files (io tests). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fedmpi/error.h"
#include "fedmpi/model.h"

static void test_offsets_contiguous(void **state) {
  (void)state;
  fm_layout *l = NULL;
  assert_int_equal(fm_layout_create(&l), FM_OK);
  assert_int_equal(fm_layout_num_tensors(l), 0);
  assert_int_equal(fm_layout_numel(l), 0);
  size_t k[2] = {3, 4}, b[1] = {4}, c[4] = {2, 1, 3, 2}, s[1] = {5};
  assert_int_equal(fm_layout_add(l, "dense/kernel", 2, k, 1), FM_OK);
  assert_int_equal(fm_layout_add(l, "dense/bias", 1, b, 1), FM_OK);
  assert_int_equal(fm_layout_add(l, "conv/kernel", 4, c, 1), FM_OK);
  assert_int_equal(fm_layout_add(l, "bn/moving_mean", 1, s, 0), FM_OK);
  assert_int_equal(fm_layout_add(l, "bn/moving_var", 1, s, 0), FM_OK);

  assert_int_equal(fm_layout_num_tensors(l), 5);
  assert_int_equal(fm_layout_numel(l), 12 + 4 + 12 + 5 + 5);
  assert_int_equal(fm_layout_trainable_numel(l), 12 + 4 + 12);
  size_t expect_off[5] = {0, 12, 16, 28, 33}, expect_numel[5] = {12, 4, 12, 5, 5};
  int expect_train[5] = {1, 1, 1, 0, 0};
  for (size_t i = 0; i < 5; i++) {
    const fm_tensor_info *t = fm_layout_tensor(l, i);
    assert_non_null(t);
    assert_int_equal(t->offset, expect_off[i]);
    assert_int_equal(t->numel, expect_numel[i]);
    assert_int_equal(t->trainable, expect_train[i]);
  }
  const fm_tensor_info *t = fm_layout_tensor(l, 2);
  assert_string_equal(t->name, "conv/kernel");
  assert_int_equal(t->ndim, 4);
  for (int d = 0; d < 4; d++) assert_int_equal(t->shape[d], c[d]);
  assert_null(fm_layout_tensor(l, 5));

  assert_int_equal(fm_layout_find(l, "dense/bias"), 1);
  assert_int_equal(fm_layout_find(l, "bn/moving_var"), 4);
  assert_int_equal(fm_layout_find(l, "nope"), -1);
  assert_int_equal(fm_layout_find(NULL, "dense/bias"), -1);
  fm_layout_destroy(&l);
  assert_null(l);
  fm_layout_destroy(&l); /* NULL accepted */
  fm_layout_destroy(NULL);
}

static void test_trainable_flag_normalised(void **state) {
  (void)state;
  fm_layout *l = NULL;
  assert_int_equal(fm_layout_create(&l), FM_OK);
  size_t s[1] = {2};
  assert_int_equal(fm_layout_add(l, "a", 1, s, 7), FM_OK);
  assert_int_equal(fm_layout_tensor(l, 0)->trainable, 1);
  fm_layout_destroy(&l);
}

static void test_errors_name_the_tensor(void **state) {
  (void)state;
  fm_layout *l = NULL;
  assert_int_equal(fm_layout_create(&l), FM_OK);
  size_t s[2] = {2, 3}, z[2] = {2, 0};
  assert_int_equal(fm_layout_add(l, "w", 2, s, 1), FM_OK);

  /* duplicate name */
  assert_int_equal(fm_layout_add(l, "w", 1, s, 1), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "'w'"));
  assert_non_null(strstr(fm_last_error(), "duplicate"));
  /* ndim outside 1..FM_MAX_DIMS */
  assert_int_equal(fm_layout_add(l, "scalar", 0, s, 1), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "scalar"));
  assert_int_equal(fm_layout_add(l, "five_d", FM_MAX_DIMS + 1, s, 1), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "five_d"));
  /* zero dimension */
  assert_int_equal(fm_layout_add(l, "empty", 2, z, 1), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "empty"));
  /* bad names */
  assert_int_equal(fm_layout_add(l, "", 1, s, 1), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_layout_add(l, NULL, 1, s, 1), FM_ERR_INVALID_ARG);
  char longname[FM_TENSOR_NAME_MAX + 1];
  memset(longname, 'x', FM_TENSOR_NAME_MAX);
  longname[FM_TENSOR_NAME_MAX] = '\0';
  assert_int_equal(fm_layout_add(l, longname, 1, s, 1), FM_ERR_INVALID_ARG);
  longname[FM_TENSOR_NAME_MAX - 1] = '\0'; /* exactly the maximum length fits */
  assert_int_equal(fm_layout_add(l, longname, 1, s, 1), FM_OK);
  assert_int_equal(fm_layout_add(l, "noshape", 1, NULL, 1), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_layout_add(NULL, "x", 1, s, 1), FM_ERR_INVALID_ARG);

  /* trainable after non-trainable */
  assert_int_equal(fm_layout_add(l, "stats", 1, s, 0), FM_OK);
  assert_int_equal(fm_layout_add(l, "late_kernel", 1, s, 1), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "late_kernel"));
  assert_non_null(strstr(fm_last_error(), "stats"));
  /* more non-trainable ones are fine */
  assert_int_equal(fm_layout_add(l, "stats2", 1, s, 0), FM_OK);

  /* failed adds changed nothing */
  assert_int_equal(fm_layout_num_tensors(l), 4);
  assert_int_equal(fm_layout_numel(l), 6 + 2 + 2 + 2);
  assert_int_equal(fm_layout_trainable_numel(l), 6 + 2);
  fm_layout_destroy(&l);
}

static void test_overflow_rejected(void **state) {
  (void)state;
  fm_layout *l = NULL;
  assert_int_equal(fm_layout_create(&l), FM_OK);
  size_t huge[2] = {SIZE_MAX / 2, 3};
  int rc = fm_layout_add(l, "huge", 2, huge, 1);
  assert_true(rc == FM_ERR_OVERFLOW || rc == FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "huge"));
  assert_int_equal(fm_layout_num_tensors(l), 0);
  fm_layout_destroy(&l);
}

static void test_many_tensors_grow(void **state) {
  (void)state;
  fm_layout *l = NULL;
  assert_int_equal(fm_layout_create(&l), FM_OK);
  char name[32];
  for (size_t i = 0; i < 100; i++) {
    size_t s[1] = {i + 1};
    snprintf(name, sizeof name, "t%zu", i);
    assert_int_equal(fm_layout_add(l, name, 1, s, 1), FM_OK);
  }
  assert_int_equal(fm_layout_num_tensors(l), 100);
  assert_int_equal(fm_layout_numel(l), 100 * 101 / 2);
  assert_int_equal(fm_layout_tensor(l, 99)->offset, 99 * 100 / 2);
  assert_int_equal(fm_layout_find(l, "t57"), 57);
  fm_layout_destroy(&l);
}

static void test_equal_and_clone(void **state) {
  (void)state;
  fm_layout *a = NULL, *b = NULL, *c = NULL;
  size_t k[2] = {3, 4}, kt[2] = {4, 3}, s[1] = {4};
  assert_int_equal(fm_layout_create(&a), FM_OK);
  assert_int_equal(fm_layout_add(a, "k", 2, k, 1), FM_OK);
  assert_int_equal(fm_layout_add(a, "b", 1, s, 0), FM_OK);

  assert_int_equal(fm_layout_clone(a, &c), FM_OK);
  assert_true(fm_layout_equal(a, c));
  assert_int_equal(fm_layout_numel(c), fm_layout_numel(a));
  assert_int_equal(fm_layout_trainable_numel(c), fm_layout_trainable_numel(a));
  assert_ptr_not_equal(fm_layout_tensor(a, 0), fm_layout_tensor(c, 0));
  /* the clone is independent */
  assert_int_equal(fm_layout_add(c, "extra", 1, s, 0), FM_OK);
  assert_false(fm_layout_equal(a, c));
  assert_int_equal(fm_layout_num_tensors(a), 2);
  fm_layout_destroy(&c);

  /* different shape (same numel), trainability, name, order */
  assert_int_equal(fm_layout_create(&b), FM_OK);
  assert_int_equal(fm_layout_add(b, "k", 2, kt, 1), FM_OK);
  assert_int_equal(fm_layout_add(b, "b", 1, s, 0), FM_OK);
  assert_false(fm_layout_equal(a, b));
  fm_layout_destroy(&b);
  assert_int_equal(fm_layout_create(&b), FM_OK);
  assert_int_equal(fm_layout_add(b, "k", 2, k, 1), FM_OK);
  assert_int_equal(fm_layout_add(b, "b", 1, s, 1), FM_OK);
  assert_false(fm_layout_equal(a, b));
  fm_layout_destroy(&b);
  assert_int_equal(fm_layout_create(&b), FM_OK);
  assert_int_equal(fm_layout_add(b, "k", 2, k, 1), FM_OK);
  assert_int_equal(fm_layout_add(b, "bias", 1, s, 0), FM_OK);
  assert_false(fm_layout_equal(a, b));
  fm_layout_destroy(&b);
  assert_int_equal(fm_layout_create(&b), FM_OK);
  assert_int_equal(fm_layout_add(b, "k", 2, k, 1), FM_OK);
  assert_false(fm_layout_equal(a, b));
  fm_layout_destroy(&b);

  assert_true(fm_layout_equal(a, a));
  assert_false(fm_layout_equal(a, NULL));
  assert_false(fm_layout_equal(NULL, a));

  /* cloning an empty layout */
  assert_int_equal(fm_layout_create(&b), FM_OK);
  assert_int_equal(fm_layout_clone(b, &c), FM_OK);
  assert_true(fm_layout_equal(b, c));
  assert_int_equal(fm_layout_numel(c), 0);
  size_t one[1] = {1};
  assert_int_equal(fm_layout_add(c, "grows", 1, one, 1), FM_OK);
  fm_layout_destroy(&b);
  fm_layout_destroy(&c);

  assert_int_equal(fm_layout_clone(NULL, &c), FM_ERR_INVALID_ARG);
  assert_null(c);
  assert_int_equal(fm_layout_clone(a, NULL), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_layout_create(NULL), FM_ERR_INVALID_ARG);
  fm_layout_destroy(&a);
}

static void test_null_queries(void **state) {
  (void)state;
  assert_int_equal(fm_layout_num_tensors(NULL), 0);
  assert_int_equal(fm_layout_numel(NULL), 0);
  assert_int_equal(fm_layout_trainable_numel(NULL), 0);
  assert_null(fm_layout_tensor(NULL, 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_offsets_contiguous),     cmocka_unit_test(test_trainable_flag_normalised),
      cmocka_unit_test(test_errors_name_the_tensor), cmocka_unit_test(test_overflow_rejected),
      cmocka_unit_test(test_many_tensors_grow),      cmocka_unit_test(test_equal_and_clone),
      cmocka_unit_test(test_null_queries),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
