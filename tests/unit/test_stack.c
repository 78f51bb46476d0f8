/* tests/unit/test_stack.c — models written as layer stacks ("stack:...")
 * through the public API: every named model (softmax, mlp:..., 2nn, cnn:...)
 * against the stack that spells it, with the same parameter count, the same
 * layout (names, shapes, offsets, trainability), the same initial weights bit
 * for bit, and the same losses, probabilities and gradients bit for bit over
 * a few SGD steps; the canonical type name; reshape as a view; a stack with
 * no hand-written twin against central finite differences; and every kind
 * of bad spec, each with a message naming the layer or the character.
 *
 * The named models are themselves stacks now (src/model/named.c), so each is
 * also checked against the hand-written model it replaced, kept in
 * tests/unit/reference/ (ref_models.h compiles it into this test).
 *
 * Deliberately not covered here: the kernels themselves (test_model_layers.c,
 * test_conv_layers.c) and the named models' own numerics (test_model.c,
 * test_cnn.c). */
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
#include "model_batch.h"
#include "reference/ref_models.h"

static fm_input_spec spec_of(int ndim, size_t a, size_t b, size_t c, size_t classes) {
  fm_input_spec s;
  size_t shape[3] = {a, b, c};
  assert_int_equal(fm_input_spec_set(&s, ndim, shape, classes), FM_OK);
  return s;
}

static fm_model *by_name(const char *name, const fm_input_spec *s) {
  fm_model *m = NULL;
  if (fm_model_create_by_name(name, s, &m) != FM_OK) fail_msg("%s: %s", name, fm_last_error());
  return m;
}

/* Same tensors in the same places. */
static void assert_same_layout(const fm_model *a, const fm_model *b) {
  const fm_layout *la = fm_model_layout(a), *lb = fm_model_layout(b);
  assert_int_equal(fm_layout_numel(la), fm_layout_numel(lb));
  assert_int_equal(fm_layout_trainable_numel(la), fm_layout_trainable_numel(lb));
  assert_int_equal(fm_layout_num_tensors(la), fm_layout_num_tensors(lb));
  assert_true(fm_layout_equal(la, lb));
  for (size_t i = 0; i < fm_layout_num_tensors(la); i++) {
    const fm_tensor_info *ta = fm_layout_tensor(la, i), *tb = fm_layout_tensor(lb, i);
    assert_string_equal(ta->name, tb->name);
    assert_int_equal(ta->offset, tb->offset);
    assert_int_equal(ta->ndim, tb->ndim);
    for (int d = 0; d < ta->ndim; d++) assert_int_equal(ta->shape[d], tb->shape[d]);
  }
}

/* The named model and its stack: layout, init and `steps` SGD steps of a
 * batch of N (the stack's workspace sized for more, to show it does not
 * matter), all compared bit for bit. */
static void check_models(fm_model *a, fm_model *b, const char *named, const char *stack, const fm_input_spec *s,
                         size_t N, int steps) {
  assert_same_layout(a, b);
  size_t P = fm_layout_numel(fm_model_layout(a)), C = s->num_classes;
  float *wa = malloc(P * sizeof *wa), *wb = malloc(P * sizeof *wb);
  float *ga = malloc(P * sizeof *ga), *gb = malloc(P * sizeof *gb);
  float *pa = malloc(N * C * sizeof *pa), *pb = malloc(N * C * sizeof *pb);
  float *x = malloc(N * s->num_features * sizeof *x);
  int32_t *y = malloc(N * sizeof *y);
  void *wsa = malloc(fm_model_workspace_size(a, N)), *wsb = malloc(fm_model_workspace_size(b, N + 3));
  assert_true(wa && wb && ga && gb && pa && pb && x && y && wsa && wsb);
  for (uint64_t seed = 1; seed <= 2; seed++) {
    assert_int_equal(fm_model_init_weights(a, wa, seed), FM_OK);
    assert_int_equal(fm_model_init_weights(b, wb, seed), FM_OK);
    if (memcmp(wa, wb, P * sizeof *wa) != 0)
      fail_msg("%s vs %s: initial weights differ (seed %d)", named, stack, (int)seed);
  }
  fill_uniform_keyed(x, N * s->num_features, 0, 1, 91, 5);
  fm_rng r;
  fm_rng_init(&r, 91, 0, 6, FM_RNG_USER);
  for (size_t i = 0; i < N; i++) y[i] = (int32_t)fm_rng_below(&r, C);
  for (int t = 0; t < steps; t++) {
    float la = NAN, lb = NAN;
    assert_int_equal(fm_model_forward(a, wsa, wa, x, y, N, 1, &la, pa), FM_OK);
    assert_int_equal(fm_model_forward(b, wsb, wb, x, y, N, 1, &lb, pb), FM_OK);
    if (memcmp(&la, &lb, sizeof la) != 0) fail_msg("%s vs %s: step %d loss %.9g vs %.9g", named, stack, t, la, lb);
    assert_memory_equal(pa, pb, N * C * sizeof *pa);
    memset(ga, 0, P * sizeof *ga);
    memset(gb, 0, P * sizeof *gb);
    assert_int_equal(fm_model_backward(a, wsa, wa, x, y, N, ga), FM_OK);
    assert_int_equal(fm_model_backward(b, wsb, wb, x, y, N, gb), FM_OK);
    if (memcmp(ga, gb, P * sizeof *ga) != 0) fail_msg("%s vs %s: step %d gradients differ", named, stack, t);
    for (size_t i = 0; i < P; i++) {
      wa[i] -= 0.5f * ga[i];
      wb[i] -= 0.5f * gb[i];
    }
    if (t == 0) assert_true(la > 0);
  }
  assert_memory_equal(wa, wb, P * sizeof *wa);
  free(wa), free(wb), free(ga), free(gb), free(pa), free(pb), free(x), free(y), free(wsa), free(wsb);
  fm_model_destroy(&a);
  fm_model_destroy(&b);
}

static void check_equivalent(const char *named, const char *stack, const fm_input_spec *s, size_t N, int steps) {
  check_models(by_name(named, s), by_name(stack, s), named, stack, s, N, steps);
}

/* The hand-written model (tests/unit/reference) against the stack. */
static void check_reference(fm_model *ref, const char *stack, const fm_input_spec *s, size_t N, int steps) {
  if (!ref) fail_msg("reference model for %s: %s", stack, fm_last_error());
  fm_model *b = by_name(stack, s);
  check_models(ref, b, "reference", stack, s, N, steps);
}

static void test_stack_softmax_equivalent(void **state) {
  (void)state;
  fm_input_spec flat = spec_of(1, 60, 0, 0, 10), image = spec_of(3, 5, 4, 2, 3);
  check_equivalent("softmax", "stack:flatten,dense", &flat, 16, 3);
  check_equivalent("softmax", "stack:dense(10)", &flat, 16, 3);
  check_equivalent("softmax", "stack:flatten,dense,softmax", &image, 7, 3);
  fm_model *ref = NULL;
  ref_model_create_softmax(&flat, &ref);
  check_reference(ref, "stack:flatten,dense", &flat, 16, 3);
  ref_model_create_softmax(&image, &ref);
  check_reference(ref, "softmax", &image, 7, 3);
}

static void test_stack_mlp_equivalent(void **state) {
  (void)state;
  fm_input_spec flat = spec_of(1, 60, 0, 0, 10), image = spec_of(2, 6, 5, 0, 4);
  check_equivalent("mlp:7,5", "stack:flatten,dense(7),relu,dense(5),relu,dense", &flat, 16, 3);
  check_equivalent("mlp:9", "stack: flatten , dense( 9 ), relu, dense(4)", &image, 5, 3);
  fm_input_spec mnist = spec_of(2, 28, 28, 0, 10);
  check_equivalent("2nn", "stack:flatten,dense(200),relu,dense(200),relu,dense", &mnist, 12, 3);
  check_equivalent("mlp", "stack:flatten,dense(200),relu,dense(200),relu,dense", &mnist, 4, 2);
  const size_t h75[2] = {7, 5}, h9[1] = {9}, h200[2] = {200, 200};
  fm_model *ref = NULL;
  ref_model_create_mlp(&flat, h75, 2, &ref);
  check_reference(ref, "stack:flatten,dense(7),relu,dense(5),relu,dense", &flat, 16, 3);
  ref_model_create_mlp(&image, h9, 1, &ref);
  check_reference(ref, "mlp:9", &image, 5, 3);
  ref_model_create_mlp(&mnist, h200, 2, &ref);
  check_reference(ref, "2nn", &mnist, 12, 3);
  ref_model_create_mlp(&flat, NULL, 0, &ref);
  check_reference(ref, "softmax", &flat, 4, 2); /* an MLP without hidden layers is softmax regression */
  fm_model *none = NULL;
  assert_int_equal(fm_model_create_mlp(&flat, NULL, 0, &none), FM_OK);
  assert_string_equal(fm_model_type(none), "softmax");
  fm_model_destroy(&none);
}

static void test_stack_cnn_equivalent(void **state) {
  (void)state;
  fm_input_spec odd = spec_of(3, 9, 7, 2, 5), small = spec_of(2, 8, 8, 0, 3);
  check_equivalent("cnn:4,6,16", "stack:conv2d(4,5),relu,maxpool,conv2d(6,5),relu,maxpool,flatten,dense(16),relu,dense",
                   &odd, 6, 3);
  check_equivalent("cnn:3,4,8,3",
                   "stack:conv2d(3,3),relu,maxpool(2),conv2d(4,3),relu,maxpool(2),flatten,dense(8),relu,dense(3)",
                   &small, 9, 3);
  fm_input_spec mnist = spec_of(3, 28, 28, 1, 10);
  check_equivalent("cnn", "stack:conv2d(32,5),relu,maxpool,conv2d(64,5),relu,maxpool,flatten,dense(512),relu,dense",
                   &mnist, 4, 2);
}

/* reshape is a view: a conv stack on flat data with reshape first is the
 * same model, bit for bit, as the stack on the image spec. */
static void test_stack_reshape_is_a_view(void **state) {
  (void)state;
  fm_input_spec flat = spec_of(1, 64, 0, 0, 3), image = spec_of(3, 8, 8, 1, 3);
  fm_model *a = by_name("stack:reshape(8,8),conv2d(2,3),relu,maxpool,flatten,dense", &flat);
  fm_model *b = by_name("stack:conv2d(2,3),relu,maxpool,flatten,dense", &image);
  assert_same_layout(a, b);
  batch ba = make_batch_keyed(a, 5, 5, 0, 3, 1), bb = make_batch_keyed(b, 5, 5, 0, 3, 1);
  assert_memory_equal(ba.x, bb.x, 5 * 64 * sizeof(float));
  float la, lb;
  float *ga = model_grad(a, &ba, &la), *gb = model_grad(b, &bb, &lb);
  assert_memory_equal(&la, &lb, sizeof la);
  assert_memory_equal(ga, gb, ba.P * sizeof *ga);
  free(ga), free(gb);
  free_batch(&ba), free_batch(&bb);
  fm_model_destroy(&a);
  fm_model_destroy(&b);
}

/* A stack no named model spells (a ReLU on the input, a conv after a pool
 * and before a dense with no pool, an even kernel) against central finite
 * differences in float, and backward accumulating into dw. */
static void test_stack_gradients(void **state) {
  (void)state;
  fm_input_spec s = spec_of(3, 6, 5, 2, 4);
  fm_model *m = by_name("stack:relu,maxpool,conv2d(3,2),relu,flatten,dense(6),relu,dense", &s);
  batch b = make_batch_keyed(m, 3, 3, -0.5, 17, 2);
  float loss;
  float *g = model_grad(m, &b, &loss);
  double maxerr = 0;
  for (size_t i = 0; i < b.T; i += 3) {
    float keep = b.w[i], h = 1e-2f;
    b.w[i] = keep + h;
    double up = model_loss(m, &b, b.w);
    b.w[i] = keep - h;
    double down = model_loss(m, &b, b.w);
    b.w[i] = keep;
    double fd = (up - down) / (2.0 * h), err = fabs(fd - g[i]) / fmax(1e-2, fabs(fd) + fabs(g[i]));
    if (err > maxerr) maxerr = err;
  }
  if (maxerr > 5e-2) fail_msg("finite differences: max relative error %g", maxerr);
  check_accumulates(m, &b);
  free(g);
  free_batch(&b);
  fm_model_destroy(&m);
}

/* The type name is canonical and rebuilds the same model; bare 'stack' and
 * the registry's help. */
static void test_stack_type_name(void **state) {
  (void)state;
  fm_input_spec s = spec_of(3, 8, 8, 1, 3);
  fm_model *m = by_name("stack: conv2d(2, 3) , relu,maxpool ,flatten,dense,softmax", &s);
  assert_string_equal(fm_model_type(m), "stack:conv2d(2,3),relu,maxpool,flatten,dense");
  fm_model *again = by_name(fm_model_type(m), &s);
  assert_string_equal(fm_model_type(again), fm_model_type(m));
  assert_same_layout(m, again);
  const fm_layout *l = fm_model_layout(m);
  assert_int_equal(fm_layout_num_tensors(l), 4);
  assert_string_equal(fm_layout_tensor(l, 0)->name, "conv2d_0/kernel");
  assert_string_equal(fm_layout_tensor(l, 3)->name, "dense_0/bias");
  fm_model_destroy(&m);
  fm_model_destroy(&again);
  assert_int_equal(fm_model_create_by_name("stack", &s, &m), FM_ERR_INVALID_ARG);
  assert_non_null(strstr(fm_last_error(), "stack:"));
  int found = 0;
  const char *help = NULL;
  for (size_t i = 0; fm_model_registry_name(i, &help); i++)
    if (strcmp(fm_model_registry_name(i, NULL), "stack") == 0) found = help && strstr(help, "conv2d") != NULL;
  assert_true(found);
}

static void test_stack_bad_specs(void **state) {
  (void)state;
  fm_input_spec flat = spec_of(1, 60, 0, 0, 10), image = spec_of(3, 8, 8, 1, 10);
  const struct {
    const char *name;
    const fm_input_spec *spec;
    int code;
    const char *needles[3];
  } cases[] = {
      {"stack:", &flat, FM_ERR_INVALID_ARG, {"no layers", NULL, NULL}},
      {"stack:   ", &flat, FM_ERR_INVALID_ARG, {"no layers", NULL, NULL}},
      {"stack:dense(10),", &flat, FM_ERR_INVALID_ARG, {"empty layer", "character 11 of the layers", "trailing"}},
      {"stack:,dense", &flat, FM_ERR_INVALID_ARG, {"empty layer", "character 1", NULL}},
      {"stack:dense,,dense", &flat, FM_ERR_INVALID_ARG, {"empty layer", "character 7", NULL}},
      {"stack:dense(10", &flat, FM_ERR_INVALID_ARG, {"never closed", "character 6", "layer 1"}},
      {"stack:dense(10))", &flat, FM_ERR_INVALID_ARG, {"unbalanced ')'", "character 10", NULL}},
      {"stack:dense((10)", &flat, FM_ERR_INVALID_ARG, {"unexpected '('", "layer 1", NULL}},
      {"stack:dense()", &flat, FM_ERR_INVALID_ARG, {"empty argument", "dense(units)", NULL}},
      {"stack:dense(0)", &flat, FM_ERR_INVALID_ARG, {"bad units '0'", "layer 1", NULL}},
      {"stack:dense(-3)", &flat, FM_ERR_INVALID_ARG, {"bad units '-3'", NULL, NULL}},
      {"stack:dense(2.5)", &flat, FM_ERR_INVALID_ARG, {"bad units '2.5'", NULL, NULL}},
      {"stack:dense(99999999999)", &flat, FM_ERR_INVALID_ARG, {"bad units", NULL, NULL}},
      {"stack:dense(10,3)", &flat, FM_ERR_INVALID_ARG, {"too many arguments", NULL, NULL}},
      {"stack:relu,conv2d(4),dense", &image, FM_ERR_INVALID_ARG, {"layer 2 'conv2d(4)'", "missing", "kernel"}},
      {"stack:dense(10) relu", &flat, FM_ERR_INVALID_ARG, {"unexpected 'r'", "character 11", "separated"}},
      {"stack:dense;relu", &flat, FM_ERR_INVALID_ARG, {"unexpected ';'", NULL, NULL}},
      {"stack:dense,gru(8),dense", &flat, FM_ERR_INVALID_ARG, {"layer 2", "unknown layer 'gru'", "lstm"}},
      {"stack:Dense", &flat, FM_ERR_INVALID_ARG, {"unknown layer 'Dense'", NULL, NULL}},
      {"stack:conv2d(4,3),relu,flatten,dense",
       &flat,
       FM_ERR_SPEC_MISMATCH,
       {"layer 1 'conv2d(4,3)'", "reshape", "(60)"}},
      {"stack:conv2d(4,3),dense", &image, FM_ERR_SPEC_MISMATCH, {"layer 2 'dense'", "flatten", "(8, 8, 4)"}},
      {"stack:flatten,maxpool,dense", &image, FM_ERR_SPEC_MISMATCH, {"layer 2 'maxpool'", "image", NULL}},
      {"stack:flatten,dense(7)", &image, FM_ERR_SPEC_MISMATCH, {"layer 2 'dense(7)'", "7 values", "10 classes"}},
      {"stack:relu", &flat, FM_ERR_SPEC_MISMATCH, {"60 values", NULL, NULL}},
      {"stack:flatten", &image, FM_ERR_SPEC_MISMATCH, {"64 values", NULL, NULL}},
      {"stack:maxpool(3),flatten,dense", &image, FM_ERR_INVALID_ARG, {"layer 1 'maxpool(3)'", "2x2", NULL}},
      {"stack:reshape(7,8),flatten,dense", &flat, FM_ERR_SPEC_MISMATCH, {"layer 1 'reshape(7,8)'", "56", "(60)"}},
      {"stack:dense,softmax,dense", &flat, FM_ERR_INVALID_ARG, {"layer 2 'softmax'", "last", NULL}},
      {"stack:flatten,softmax", &image, FM_ERR_SPEC_MISMATCH, {"layer 2 'softmax'", "one logit per class", NULL}},
      {"stack:reshape(6,10)", &flat, FM_ERR_SPEC_MISMATCH, {"values per example", NULL, NULL}},
      {"stack:reshape(10)", &flat, FM_ERR_SPEC_MISMATCH, {"has 10 values", NULL, NULL}},
      {"stack:conv2d(60000,60000),flatten,dense", &image, FM_ERR_OVERFLOW, {"layer 1", "BLAS", NULL}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fm_model *m = (fm_model *)&m;
    int rc = fm_model_create_by_name(cases[i].name, cases[i].spec, &m);
    if (rc != cases[i].code)
      fail_msg("%s: code %d, expected %d (%s)", cases[i].name, rc, cases[i].code, fm_last_error());
    assert_null(m);
    const char *msg = fm_last_error();
    if (!strstr(msg, cases[i].name + 6) && cases[i].name[6] && !strstr(cases[i].name, "  "))
      fail_msg("%s: message '%s' does not quote the spec", cases[i].name, msg);
    for (int k = 0; k < 3 && cases[i].needles[k]; k++)
      if (!strstr(msg, cases[i].needles[k]))
        fail_msg("%s: message '%s' does not contain \"%s\"", cases[i].name, msg, cases[i].needles[k]);
  }
}

/* fm_model_flops_per_example on stacks: the CNN's count by hand, the 2NN's
 * as the dense-only count of its hand-written twin, an input gradient that
 * only exists after a relu on the input, and a conv model that is not a
 * stack, which is not guessed. */
static void test_stack_flops(void **state) {
  (void)state;
  fm_input_spec mnist = spec_of(3, 28, 28, 1, 10);
  fm_model *m = by_name("cnn", &mnist);
  fm_model_flops f;
  assert_int_equal(fm_model_flops_per_example(m, &f), FM_OK);
  double conv0 = 2.0 * 25 * 1 * 32 * 28 * 28, conv1 = 2.0 * 25 * 32 * 64 * 14 * 14;
  double fwd = conv0 + conv1 + 2.0 * 3136 * 512 + 2.0 * 512 * 10;
  assert_true(f.forward == fwd && f.backward == 2 * fwd - conv0 && f.train == f.forward + f.backward);
  fm_model_destroy(&m);

  fm_model *ref = NULL, *nn = by_name("2nn", &mnist);
  const size_t h[2] = {200, 200};
  assert_int_equal(ref_model_create_mlp(&mnist, h, 2, &ref), FM_OK);
  fm_model_flops fr;
  assert_int_equal(fm_model_flops_per_example(ref, &fr), FM_OK);
  assert_int_equal(fm_model_flops_per_example(nn, &f), FM_OK);
  assert_true(f.forward == fr.forward && f.backward == fr.backward && f.train == fr.train);
  fm_model_destroy(&ref);
  fm_model_destroy(&nn);

  fm_input_spec flat = spec_of(1, 60, 0, 0, 10);
  m = by_name("stack:relu,dense", &flat);
  assert_int_equal(fm_model_flops_per_example(m, &f), FM_OK);
  assert_true(f.forward == 2.0 * 60 * 10 && f.backward == 2 * f.forward); /* dense's input gradient feeds the relu */
  fm_model_destroy(&m);
  m = by_name("stack:flatten,relu,flatten,dense", &flat);
  assert_int_equal(fm_model_flops_per_example(m, &f), FM_OK);
  fm_model_destroy(&m);

  assert_int_equal(ref_model_create_cnn(&mnist, NULL, &ref), FM_OK);
  assert_int_equal(fm_model_flops_per_example(ref, &f), FM_ERR_UNSUPPORTED);
  assert_non_null(strstr(fm_last_error(), "conv2d_0/kernel"));
  fm_model_destroy(&ref);
}

/* Training loss at w with the dropout key (seed 7, round 2, client 5, step). */
static double train_loss(const fm_model *m, batch *b, const float *w, uint64_t step) {
  float loss;
  fm_model_set_step(m, b->ws, 7, 2, 5, step);
  assert_int_equal(fm_model_forward(m, b->ws, w, b->x, b->y, b->N, 1, &loss, NULL), FM_OK);
  return loss;
}

/* Central differences of the training loss against backward, the dropout
 * masks held fixed by the key (every 'stride'-th weight): the fraction of
 * the checked weights whose relative error exceeds 5e-2. */
static double fd_bad_fraction(const fm_model *m, batch *b, uint64_t step, size_t stride, double *maxerr) {
  float loss, *g = calloc(b->T, sizeof *g);
  fm_model_set_step(m, b->ws, 7, 2, 5, step);
  assert_int_equal(fm_model_forward(m, b->ws, b->w, b->x, b->y, b->N, 1, &loss, NULL), FM_OK);
  assert_int_equal(fm_model_backward(m, b->ws, b->w, b->x, b->y, b->N, g), FM_OK);
  size_t bad = 0, checked = 0;
  *maxerr = 0;
  for (size_t i = 0; i < b->T; i += stride, checked++) {
    float keep = b->w[i], h = 1e-2f;
    b->w[i] = keep + h;
    double up = train_loss(m, b, b->w, step);
    b->w[i] = keep - h;
    double down = train_loss(m, b, b->w, step);
    b->w[i] = keep;
    double fd = (up - down) / (2.0 * h), err = fabs(fd - g[i]) / fmax(1e-2, fabs(fd) + fabs(g[i]));
    bad += err > 5e-2;
    if (err > *maxerr) *maxerr = err;
  }
  free(g);
  return (double)bad / (double)checked;
}

/* The sequence-era layers in a stack: 'valid' convolutions, sigmoid, tanh
 * (and a relu after a tanh), dropout with a fixed key; each against finite
 * differences. Smooth stacks must match at every weight; with ReLU and
 * max-pool a few weights may sit within h of a kink (at most 5 %). */
static void test_stack_new_layers_gradients(void **state) {
  (void)state;
  fm_input_spec img = spec_of(3, 7, 6, 2, 4), flat = spec_of(1, 9, 0, 0, 3);
  const struct {
    const char *name;
    const fm_input_spec *spec;
    double allowed;
  } cases[] = {
      {"stack:conv2d(3,3,valid),tanh,conv2d(2,2,valid),sigmoid,flatten,dense", &img, 0},
      {"stack:conv2d(3,2,valid),tanh,dropout(0.3),flatten,dense(5),sigmoid,dropout(0.4),dense", &img, 0},
      {"stack:conv2d(3,2,same),relu,maxpool,dropout(0.3),flatten,dense(5),tanh,relu,dense", &img, 0.05},
      {"stack:dense(8),sigmoid,dropout(0.5),dense(6),tanh,dropout(0.25),dense", &flat, 0},
      {"stack:dense(6),tanh,relu,dense(4),relu,relu,sigmoid,tanh,dense", &flat, 0.05},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    fm_model *m = by_name(cases[c].name, cases[c].spec);
    batch b = make_batch_keyed(m, 5, 5, -1.0, 23 + c, 3);
    double maxerr, bad = fd_bad_fraction(m, &b, 4, 1, &maxerr);
    if (bad > cases[c].allowed)
      fail_msg("%s: finite differences: %.1f %% of the weights off (max relative error %g)", cases[c].name,
               100 * bad, maxerr);
    free_batch(&b);
    fm_model_destroy(&m);
  }
}

/* Dropout: the identity at inference; in training a function of the key
 * only (same key, same loss; another step or client, another mask), with
 * Keras's 1/(1 - rate) scaling, so the units it keeps sum to the input's
 * scale; rate 0 is the identity in training too. */
static void test_stack_dropout(void **state) {
  (void)state;
  fm_input_spec flat = spec_of(1, 40, 0, 0, 3);
  fm_model *m = by_name("stack:dense(200),relu,dropout(0.5),dense", &flat);
  fm_model *none = by_name("stack:dense(200),relu,dense", &flat);
  fm_model *zero = by_name("stack:dense(200),relu,dropout(0),dense", &flat);
  assert_string_equal(fm_model_type(zero), "stack:dense(200),relu,dropout(0),dense");
  assert_string_equal(fm_model_type(m), "stack:dense(200),relu,dropout(0.5),dense");
  batch b = make_batch_keyed(m, 16, 16, -1.0, 3, 1);
  float l_eval, l_none, l_zero;
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, b.N, 0, &l_eval, NULL), FM_OK);
  assert_int_equal(fm_model_forward(none, b.ws, b.w, b.x, b.y, b.N, 0, &l_none, NULL), FM_OK);
  assert_true(l_eval == l_none);
  fm_model_set_step(zero, b.ws, 7, 2, 5, 0);
  assert_int_equal(fm_model_forward(zero, b.ws, b.w, b.x, b.y, b.N, 1, &l_zero, NULL), FM_OK);
  assert_true(l_zero == l_none);
  double a = train_loss(m, &b, b.w, 3), a2 = train_loss(m, &b, b.w, 3), other = train_loss(m, &b, b.w, 4);
  assert_true(a == a2);
  assert_true(a != other && a != l_eval);
  fm_model_set_step(m, b.ws, 7, 2, 6, 3); /* another client */
  float l_client;
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, b.N, 1, &l_client, NULL), FM_OK);
  assert_true(l_client != a);
  free_batch(&b);
  fm_model_destroy(&m);
  fm_model_destroy(&none);
  fm_model_destroy(&zero);
}

/* TFF's EMNIST cnn_dropout: 1,199,882 parameters for 10 classes, Keras's
 * tensor shapes, and it trains (the loss of a batch falls under SGD). */
static void test_emnist_cnn_dropout(void **state) {
  (void)state;
  fm_input_spec s = spec_of(2, 28, 28, 0, 10);
  fm_model *m = by_name("emnist_cnn_dropout", &s);
  const fm_layout *l = fm_model_layout(m);
  assert_int_equal(fm_layout_numel(l), 1199882);
  assert_int_equal(fm_layout_num_tensors(l), 8);
  assert_string_equal(fm_layout_tensor(l, 0)->name, "conv2d_0/kernel");
  assert_int_equal(fm_layout_tensor(l, 2)->numel, 3 * 3 * 32 * 64);
  assert_int_equal(fm_layout_tensor(l, 4)->numel, 12 * 12 * 64 * 128);
  assert_string_equal(fm_model_type(m), "emnist_cnn_dropout");
  fm_input_spec s62 = spec_of(2, 28, 28, 0, 62);
  fm_model *m62 = by_name("emnist_cnn_dropout", &s62);
  assert_int_equal(fm_layout_numel(fm_model_layout(m62)), 1199882 + 52 * 129);
  fm_model_destroy(&m62);
  fm_model *bad = (fm_model *)&bad;
  fm_input_spec flat = spec_of(1, 784, 0, 0, 10);
  assert_int_equal(fm_model_create_by_name("emnist_cnn_dropout", &flat, &bad), FM_ERR_SPEC_MISMATCH);
  assert_int_equal(fm_model_create_by_name("emnist_cnn_dropout:3", &s, &bad), FM_ERR_INVALID_ARG);
  batch b = make_batch_keyed(m, 8, 8, 0.0, 5, 4);
  float *g = calloc(b.T, sizeof *g);
  double first = train_loss(m, &b, b.w, 0), last = first;
  for (int it = 0; it < 8; it++) {
    train_loss(m, &b, b.w, (uint64_t)it);
    memset(g, 0, b.T * sizeof *g);
    assert_int_equal(fm_model_backward(m, b.ws, b.w, b.x, b.y, b.N, g), FM_OK);
    for (size_t i = 0; i < b.T; i++) b.w[i] -= 0.05f * g[i];
  }
  float l_eval;
  assert_int_equal(fm_model_forward(m, b.ws, b.w, b.x, b.y, b.N, 0, &l_eval, NULL), FM_OK);
  last = l_eval;
  if (!(last < first)) fail_msg("emnist_cnn_dropout: loss %g -> %g", first, last);
  free(g);
  free_batch(&b);
  fm_model_destroy(&m);
}

/* Bad dropout rates and paddings name the layer. */
static void test_stack_bad_new_layers(void **state) {
  (void)state;
  fm_input_spec flat = spec_of(1, 60, 0, 0, 10), image = spec_of(3, 8, 8, 1, 10);
  const struct {
    const char *name;
    const fm_input_spec *spec;
    int code;
    const char *needle;
  } cases[] = {
      {"stack:dropout(1),dense", &flat, FM_ERR_INVALID_ARG, "bad rate '1'"},
      {"stack:dropout(-0.1),dense", &flat, FM_ERR_INVALID_ARG, "bad rate '-0.1'"},
      {"stack:dropout(x),dense", &flat, FM_ERR_INVALID_ARG, "bad rate 'x'"},
      {"stack:dropout(nan),dense", &flat, FM_ERR_INVALID_ARG, "bad rate 'nan'"},
      {"stack:dropout,dense", &flat, FM_ERR_INVALID_ARG, "missing arguments"},
      {"stack:dropout(0.1,0.2),dense", &flat, FM_ERR_INVALID_ARG, "too many arguments"},
      {"stack:conv2d(3,3,full),flatten,dense", &image, FM_ERR_INVALID_ARG, "bad padding 'full'"},
      {"stack:conv2d(3,valid),flatten,dense", &image, FM_ERR_INVALID_ARG, "bad padding 'valid'"},
      {"stack:conv2d(3,9,valid),flatten,dense", &image, FM_ERR_SPEC_MISMATCH, "does not fit its 8x8 input"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fm_model *m = (fm_model *)&m;
    int rc = fm_model_create_by_name(cases[i].name, cases[i].spec, &m);
    if (rc != cases[i].code || !strstr(fm_last_error(), cases[i].needle))
      fail_msg("%s: code %d (want %d), message '%s' (want '%s')", cases[i].name, rc, cases[i].code, fm_last_error(),
               cases[i].needle);
    assert_null(m);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stack_softmax_equivalent), cmocka_unit_test(test_stack_mlp_equivalent),
      cmocka_unit_test(test_stack_cnn_equivalent),     cmocka_unit_test(test_stack_reshape_is_a_view),
      cmocka_unit_test(test_stack_gradients),          cmocka_unit_test(test_stack_type_name),
      cmocka_unit_test(test_stack_bad_specs),          cmocka_unit_test(test_stack_flops),
      cmocka_unit_test(test_stack_new_layers_gradients), cmocka_unit_test(test_stack_dropout),
      cmocka_unit_test(test_emnist_cnn_dropout),       cmocka_unit_test(test_stack_bad_new_layers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
