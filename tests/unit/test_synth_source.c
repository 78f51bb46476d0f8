/* tests/unit/test_synth_source.c — procedural Synthetic(alpha, beta) client
 * data (fm_client_data_open_synthetic): every client equals the same client
 * of fm_synth_write's files bit for bit (train and test splits, capped,
 * IID), ids and sizes computed on demand (recipe sizes, width beyond 10^5
 * clients, sorted order = index order), the lazy exact total, determinism,
 * thread-safe loads under OpenMP, FedAvg on it equal to FedAvg on the file,
 * a 10^12-client population opened in constant memory, the spec parser and
 * its errors, and the other accessors (labels, features, cache, strings). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cmocka.h>

#include "fedmpi/data.h"
#include "fedmpi/error.h"
#include "fedmpi/fedmpi.h"
#include "fm_test.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long maxrss_kb(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

/* The recipe's n_k (before the split), as tests/unit/test_synth.c computes it. */
static size_t recipe_n(const fm_synth_options *o, uint64_t k) {
  fm_rng r;
  fm_rng_init(&r, o->seed, 0, k, FM_RNG_SYNTH);
  size_t n = (size_t)floor(exp(4.0 + 2.0 * fm_rng_normal(&r))) + 50;
  return o->max_examples && n > o->max_examples ? o->max_examples : n;
}

/* a and b hold the same clients: ids, sizes, every x and y bit for bit. */
static void assert_same_data(const fm_client_data *a, const fm_client_data *b) {
  size_t K = fm_client_data_num_clients(a);
  assert_int_equal(K, fm_client_data_num_clients(b));
  assert_int_equal(fm_client_data_total_examples(a), fm_client_data_total_examples(b));
  assert_int_equal(fm_client_data_num_classes(a), fm_client_data_num_classes(b));
  int na, nb;
  size_t sa[FM_MAX_DIMS], sb[FM_MAX_DIMS];
  fm_client_data_feature_shape(a, &na, sa);
  fm_client_data_feature_shape(b, &nb, sb);
  assert_int_equal(na, nb);
  assert_int_equal(sa[0], sb[0]);
  for (size_t i = 0; i < K; i++) {
    assert_string_equal(fm_client_data_client_id(a, i), fm_client_data_client_id(b, i));
    assert_int_equal(fm_client_data_num_examples(a, i), fm_client_data_num_examples(b, i));
    fm_examples ea, eb;
    FM_ASSERT_OK(fm_client_data_load(a, i, &ea));
    FM_ASSERT_OK(fm_client_data_load(b, i, &eb));
    assert_int_equal(ea.n, eb.n);
    assert_int_equal(ea.num_features, eb.num_features);
    if (ea.n) {
      assert_memory_equal(ea.x, eb.x, ea.n * ea.num_features * sizeof(float));
      assert_memory_equal(ea.y, eb.y, ea.n * sizeof(int32_t));
    }
    fm_examples_free(&ea);
    fm_examples_free(&eb);
  }
}

/* Write the files for o, open them and the procedural splits, compare both. */
static void check_equals_file(const fm_synth_options *o) {
  FM_ASSERT_OK(fm_synth_write(o, "ss_train.h5", "ss_test.h5"));
  fm_client_data *ftr, *fte, *ptr, *pte;
  FM_ASSERT_OK(fm_client_data_open("ss_train.h5", NULL, &ftr));
  FM_ASSERT_OK(fm_client_data_open("ss_test.h5", NULL, &fte));
  FM_ASSERT_OK(fm_client_data_open_synthetic(o, &ptr));
  FM_ASSERT_OK(fm_client_data_open_synthetic_split(o, FM_SYNTH_TEST, &pte));
  assert_same_data(ftr, ptr);
  assert_same_data(fte, pte);
  /* the sizes are the recipe's, split as the writer splits them */
  for (size_t i = 0; i < o->num_clients; i++) {
    size_t n = recipe_n(o, i);
    size_t n_test = (size_t)llround(o->test_fraction * (double)n);
    assert_int_equal(fm_client_data_num_examples(pte, i), n_test);
    assert_int_equal(fm_client_data_num_examples(ptr, i), n - n_test);
  }
  fm_client_data_close(&ftr);
  fm_client_data_close(&fte);
  fm_client_data_close(&ptr);
  fm_client_data_close(&pte);
  remove("ss_train.h5");
  remove("ss_test.h5");
}

static void test_equals_file_default(void **state) {
  (void)state;
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = 25;
  o.seed = 11;
  check_equals_file(&o);
}

static void test_equals_file_variants(void **state) {
  (void)state;
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = 12;
  o.alpha = 0.5;
  o.beta = 0.25;
  o.max_examples = 20; /* small clients: 18 train + 2 test each */
  o.seed = 3;
  check_equals_file(&o);
  fm_synth_defaults(&o);
  o.num_clients = 9;
  o.iid = 1;
  o.num_features = 7;
  o.num_classes = 3;
  o.test_fraction = 0.35;
  o.seed = 1234567;
  check_equals_file(&o);
  o.test_fraction = 0.0; /* every example in train, empty test clients */
  check_equals_file(&o);
}

static void test_ids_sizes_total(void **state) {
  (void)state;
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = 100001; /* beyond 10^5: six digits, as the files */
  o.seed = 5;
  fm_client_data *cd;
  FM_ASSERT_OK(fm_client_data_open_synthetic(&o, &cd));
  assert_int_equal(fm_client_data_num_clients(cd), 100001);
  assert_string_equal(fm_client_data_client_id(cd, 0), "f_000000");
  assert_string_equal(fm_client_data_client_id(cd, 100000), "f_100000");
  assert_null(fm_client_data_client_id(cd, 100001));
  char prev[32], id[32];
  FM_ASSERT_OK(fm_client_data_copy_client_id(cd, 0, prev, sizeof prev));
  uint64_t sum = 0;
  for (size_t i = 0; i < o.num_clients; i++) {
    size_t n = fm_client_data_num_examples(cd, i);
    size_t full = recipe_n(&o, i);
    assert_int_equal(n, full - (size_t)llround(0.1 * (double)full));
    sum += n;
    if (i) {
      FM_ASSERT_OK(fm_client_data_copy_client_id(cd, i, id, sizeof id));
      assert_true(strcmp(prev, id) < 0); /* sorted order = index order */
      memcpy(prev, id, sizeof id);
    }
  }
  assert_int_equal(fm_client_data_num_examples(cd, 100001), 0);
  assert_int_equal(fm_client_data_total_examples(cd), sum);
  assert_int_equal(fm_client_data_total_examples(cd), sum); /* remembered */
  char small[5];
  FM_ASSERT_ERR(FM_ERR_OVERFLOW, fm_client_data_copy_client_id(cd, 7, small, sizeof small));
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_client_data_copy_client_id(cd, 100001, id, sizeof id));
  /* the returned id survives 15 further calls on this thread */
  const char *keep = fm_client_data_client_id(cd, 42);
  for (size_t i = 0; i < 15; i++) (void)fm_client_data_client_id(cd, i);
  assert_string_equal(keep, "f_000042");
  fm_client_data_close(&cd);

  o.num_clients = 30;
  FM_ASSERT_OK(fm_client_data_open_synthetic(&o, &cd));
  assert_string_equal(fm_client_data_client_id(cd, 7), "f_00007");
  fm_client_data_close(&cd);
}

static void test_huge_population_constant_memory(void **state) {
  (void)state;
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = (size_t)1000000000000ull; /* 10^12: any per-client array would not fit */
  o.max_examples = 20;
  long rss0 = maxrss_kb();
  double t0 = now_s();
  fm_client_data *cd;
  FM_ASSERT_OK(fm_client_data_open_synthetic(&o, &cd));
  double t_open = now_s() - t0;
  assert_true(t_open < 0.05);
  assert_int_equal(fm_client_data_num_clients(cd), 1000000000000ull);
  assert_string_equal(fm_client_data_client_id(cd, 999999999999ull), "f_999999999999");
  assert_int_equal(fm_client_data_num_examples(cd, 999999999999ull), 18);
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_load(cd, 999999999999ull, &ex));
  assert_int_equal(ex.n, 18);
  assert_int_equal(ex.num_features, 60);
  fm_examples_free(&ex);
  assert_true(maxrss_kb() - rss0 < 2048); /* < 2 MB: nothing per client */
  assert_string_equal(fm_client_data_path(cd),
                      "synthetic:clients=1000000000000,alpha=1,beta=1,max-examples=20,seed=0,split=train");
  fm_client_data_close(&cd);
  o.num_clients = (size_t)1 << 47;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_client_data_open_synthetic(&o, &cd));
  FM_ASSERT_MSG_HAS("num_clients");
  assert_null(cd);
}

static void test_deterministic_and_thread_safe(void **state) {
  (void)state;
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = 200;
  o.max_examples = 300;
  o.seed = 99;
  fm_client_data *a, *b;
  FM_ASSERT_OK(fm_client_data_open_synthetic(&o, &a));
  FM_ASSERT_OK(fm_client_data_open_synthetic(&o, &b));
  /* serial reference: one checksum per client */
  uint64_t ref[200], par[200];
  for (size_t i = 0; i < 200; i++) {
    fm_examples ex;
    FM_ASSERT_OK(fm_client_data_load(a, i, &ex));
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)ex.x;
    for (size_t k = 0; k < ex.n * ex.num_features * sizeof(float); k++) h = (h ^ p[k]) * 1099511628211ull;
    for (size_t k = 0; k < ex.n; k++) h = (h ^ (uint64_t)ex.y[k]) * 1099511628211ull;
    ref[i] = h;
    fm_examples_free(&ex);
  }
  int failures = 0;
  /* every client loaded from 4 threads at once, in a scrambled order, from the other handle */
#pragma omp parallel for num_threads(4) schedule(dynamic, 1) reduction(+ : failures)
  for (size_t j = 0; j < 200; j++) {
    size_t i = (j * 37) % 200;
    fm_examples ex;
    if (fm_client_data_load(b, i, &ex) != FM_OK) {
      failures++;
      continue;
    }
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)ex.x;
    for (size_t k = 0; k < ex.n * ex.num_features * sizeof(float); k++) h = (h ^ p[k]) * 1099511628211ull;
    for (size_t k = 0; k < ex.n; k++) h = (h ^ (uint64_t)ex.y[k]) * 1099511628211ull;
    par[i] = h;
    if (strcmp(fm_client_data_client_id(b, i), fm_client_data_client_id(a, i)) != 0) failures++;
    fm_examples_free(&ex);
  }
  assert_int_equal(failures, 0);
  assert_memory_equal(ref, par, sizeof ref);
  fm_client_data_close(&a);
  fm_client_data_close(&b);
}

/* Three FedAvg rounds (softmax) on data; the final weights into w. */
static void fedavg(const fm_client_data *data, float *w, size_t numel) {
  fm_input_spec spec;
  size_t shape[1] = {60};
  FM_ASSERT_OK(fm_input_spec_set(&spec, 1, shape, 10));
  fm_model *m;
  FM_ASSERT_OK(fm_model_create_by_name("softmax", &spec, &m));
  assert_int_equal(fm_layout_numel(fm_model_layout(m)), numel);
  fm_optimizer *c, *s;
  FM_ASSERT_OK(fm_optimizer_create_sgdm(0.05, 0.0, &c));
  FM_ASSERT_OK(fm_optimizer_create_sgdm(1.0, 0.0, &s));
  fm_process *p;
  FM_ASSERT_OK(fm_process_create_weighted_fed_avg(m, c, s, FM_WEIGHTING_NUM_EXAMPLES, NULL, &p));
  fm_state *st;
  FM_ASSERT_OK(fm_process_initialize(p, 4, &st));
  uint64_t cohort[6];
  fm_round_input in = {.data = data, .batching = {.epochs = 2, .batch_size = 10, .shuffle = 1}, .cohort = cohort,
                       .cohort_size = 6, .num_threads = 2, .assignment = FM_ASSIGN_BALANCED};
  for (int r = 0; r < 3; r++) {
    FM_ASSERT_OK(fm_sample_cohort(4, fm_state_round(st), fm_client_data_num_clients(data), 6, cohort));
    FM_ASSERT_OK(fm_process_next(p, st, &in, fm_comm_serial(), NULL));
  }
  memcpy(w, fm_state_weights(st), numel * sizeof *w);
  fm_state_destroy(&st);
  fm_process_destroy(&p);
  fm_model_destroy(&m);
}

static void test_fedavg_same_as_file(void **state) {
  (void)state;
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = 20;
  o.max_examples = 120;
  o.seed = 8;
  FM_ASSERT_OK(fm_synth_write(&o, "fa_train.h5", NULL));
  fm_client_data *f, *p;
  FM_ASSERT_OK(fm_client_data_open("fa_train.h5", NULL, &f));
  FM_ASSERT_OK(fm_client_data_open_spec("synthetic:clients=20,max-examples=120,seed=8", NULL, &p));
  float wf[610], wp[610];
  fedavg(f, wf, 610);
  fedavg(p, wp, 610);
  assert_memory_equal(wf, wp, sizeof wf);
  fm_client_data_close(&f);
  fm_client_data_close(&p);
  remove("fa_train.h5");
}

static void test_accessors(void **state) {
  (void)state;
  fm_client_data *cd;
  FM_ASSERT_OK(fm_client_data_open_spec("synthetic:clients=10,features=5,classes=4,seed=2,split=test", NULL, &cd));
  assert_string_equal(fm_client_data_x_feature(cd), "x");
  assert_string_equal(fm_client_data_y_feature(cd), "y");
  assert_int_equal(fm_client_data_num_classes(cd), 4);
  size_t nc = 0;
  FM_ASSERT_OK(fm_client_data_scan_num_classes(cd, &nc));
  assert_int_equal(nc, 4);
  assert_int_equal(fm_client_data_num_feature_infos(cd), 2);
  const fm_feature_info *fx = fm_client_data_feature_info(cd, 0), *fy = fm_client_data_feature_info(cd, 1);
  assert_string_equal(fx->name, "x");
  assert_int_equal(fx->dtype, FM_DTYPE_FLOAT32);
  assert_int_equal(fx->ndim, 1);
  assert_int_equal(fx->shape[0], 5);
  assert_string_equal(fy->name, "y");
  assert_int_equal(fy->dtype, FM_DTYPE_INT32);
  assert_int_equal(fy->ndim, 0);
  assert_string_equal(fm_client_data_path(cd), "synthetic:clients=10,alpha=1,beta=1,features=5,classes=4,seed=2,split=test");

  fm_examples ex, lab;
  FM_ASSERT_OK(fm_client_data_load(cd, 3, &ex));
  FM_ASSERT_OK(fm_client_data_load_labels(cd, 3, &lab));
  assert_null(lab.x);
  assert_int_equal(lab.n, ex.n);
  assert_memory_equal(lab.y, ex.y, ex.n * sizeof(int32_t));
  double *xd;
  int64_t *yl;
  size_t cx, cy;
  FM_ASSERT_OK(fm_client_data_load_feature(cd, 3, "x", FM_DTYPE_FLOAT64, (void **)&xd, &cx));
  FM_ASSERT_OK(fm_client_data_load_feature(cd, 3, "y", FM_DTYPE_INT64, (void **)&yl, &cy));
  assert_int_equal(cx, ex.n * 5);
  assert_int_equal(cy, ex.n);
  for (size_t k = 0; k < cx; k++) assert_true(xd[k] == (double)ex.x[k]);
  for (size_t k = 0; k < cy; k++) assert_int_equal(yl[k], ex.y[k]);
  fm_data_free(xd);
  fm_data_free(yl);
  void *junk;
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_load_feature(cd, 3, "pixels", FM_DTYPE_FLOAT32, &junk, &cx));
  char **strs;
  FM_ASSERT_ERR(FM_ERR_UNSUPPORTED, fm_client_data_load_strings(cd, 3, "snippets", &strs, &cx));
  FM_ASSERT_MSG_HAS("synthetic");
  fm_examples_free(&lab); /* before lab is reused as the out-parameter of a failing load */
  fm_examples none;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_client_data_load(cd, 10, &none));

  /* the bounded cache serves a second load, with the same bytes */
  fm_examples again;
  FM_ASSERT_OK(fm_client_data_set_cache_bytes(cd, 1 << 20));
  FM_ASSERT_OK(fm_client_data_load(cd, 3, &again));
  fm_examples_free(&again);
  FM_ASSERT_OK(fm_client_data_load(cd, 3, &again));
  fm_cache_stats cs;
  fm_client_data_cache_stats(cd, &cs);
  assert_int_equal(cs.hits, 1);
  assert_memory_equal(again.x, ex.x, ex.n * 5 * sizeof(float));
  fm_examples_free(&again);
  fm_examples_free(&ex);
  fm_examples_free(&lab);
  fm_client_data_close(&cd);
}

static void test_spec(void **state) {
  (void)state;
  fm_synth_options o, d;
  fm_synth_split sp;
  fm_synth_defaults(&d);
  FM_ASSERT_OK(fm_synth_parse_spec("synthetic", &o, &sp));
  assert_memory_equal(&o, &d, sizeof o);
  assert_int_equal(sp, FM_SYNTH_TRAIN);
  FM_ASSERT_OK(fm_synth_parse_spec("synthetic:", &o, NULL));
  FM_ASSERT_OK(fm_synth_parse_spec("synthetic:clients=1e6,alpha=0.5,beta=1.5e-1,iid,features=20,classes=3,"
                                   "test-fraction=0.25,max-examples=20,seed=18446744073709551615,split=test",
                                   &o, &sp));
  assert_int_equal(o.num_clients, 1000000);
  assert_true(o.alpha == 0.5 && o.beta == 0.15 && o.iid == 1 && o.test_fraction == 0.25);
  assert_int_equal(o.num_features, 20);
  assert_int_equal(o.num_classes, 3);
  assert_int_equal(o.max_examples, 20);
  assert_true(o.seed == UINT64_MAX);
  assert_int_equal(sp, FM_SYNTH_TEST);

  /* the path is a spec that reads back to the same options */
  fm_client_data *cd;
  FM_ASSERT_OK(fm_client_data_open_synthetic_split(&o, sp, &cd));
  fm_synth_options back;
  fm_synth_split bsp;
  FM_ASSERT_OK(fm_synth_parse_spec(fm_client_data_path(cd), &back, &bsp));
  assert_memory_equal(&back, &o, sizeof o);
  assert_int_equal(bsp, sp);
  fm_client_data_close(&cd);
  o.alpha = 0.1;
  o.test_fraction = 1.0 / 3.0;
  FM_ASSERT_OK(fm_client_data_open_synthetic(&o, &cd));
  FM_ASSERT_OK(fm_synth_parse_spec(fm_client_data_path(cd), &back, &bsp));
  assert_true(back.alpha == 0.1 && back.test_fraction == 1.0 / 3.0);
  fm_client_data_close(&cd);

  assert_true(fm_synth_spec_is_synthetic("synthetic:clients=3"));
  assert_false(fm_synth_spec_is_synthetic("synthetic_train.h5"));
  assert_false(fm_synth_spec_is_synthetic("./synthetic:x"));
  static const struct {
    const char *spec, *needle;
  } bad[] = {
      {"synthetic:clients=0", "clients must be an integer in 1..2^47 - 1 (got '0')"},
      {"synthetic:clients=-3", "clients"},
      {"synthetic:clients=1.5", "clients"},
      {"synthetic:clients=10,clients=20", "given twice"},
      {"synthetic:colors=3", "unknown option 'colors' (known: clients,"},
      {"synthetic:alpha=-1", "alpha must be a finite number >= 0"},
      {"synthetic:beta=nan", "beta"},
      {"synthetic:iid=2", "iid must be 0 or 1"},
      {"synthetic:classes=1", "classes must be an integer in 2..2^30"},
      {"synthetic:test-fraction=1.5", "test-fraction"},
      {"synthetic:split=validation", "split must be train or test (got 'validation')"},
      {"synthetic:seed", "seed' needs a value"},
      {"synthetic:clients=5,,seed=1", "empty option"},
      {"synthetic:clients=5,", "empty option"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    FM_ASSERT_ERR(FM_ERR_CONFIG, fm_synth_parse_spec(bad[i].spec, &o, &sp));
    FM_ASSERT_MSG_HAS(bad[i].needle);
    FM_ASSERT_MSG_HAS(bad[i].spec);
    FM_ASSERT_ERR(FM_ERR_CONFIG, fm_client_data_open_spec(bad[i].spec, NULL, &cd));
    assert_null(cd);
  }
  FM_ASSERT_ERR(FM_ERR_CONFIG, fm_synth_parse_spec("train.h5", &o, &sp));
  /* not a spec: a file */
  FM_ASSERT_ERR(FM_ERR_IO, fm_client_data_open_spec("no-such-file.h5", NULL, &cd));
  fm_data_options px = {.x_feature = "pixels"};
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open_spec("synthetic:clients=3", &px, &cd));
  FM_ASSERT_MSG_HAS("'pixels'");
  fm_data_options xy = {.x_feature = "x", .y_feature = "y"};
  FM_ASSERT_OK(fm_client_data_open_spec("synthetic:clients=3", &xy, &cd));
  fm_client_data_close(&cd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_equals_file_default),
      cmocka_unit_test(test_equals_file_variants),
      cmocka_unit_test(test_ids_sizes_total),
      cmocka_unit_test(test_huge_population_constant_memory),
      cmocka_unit_test(test_deterministic_and_thread_safe),
      cmocka_unit_test(test_fedavg_same_as_file),
      cmocka_unit_test(test_accessors),
      cmocka_unit_test(test_spec),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
