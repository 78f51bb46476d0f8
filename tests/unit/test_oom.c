/* tests/unit/test_oom.c — out of memory on the main paths (libuv's
 * test-loop-oom.c). A counting allocator installed with fm_set_allocator
 * fails the n-th allocation, for every n from 1 until the operation succeeds
 * without reaching it. Each failing n must return FM_ERR_NOMEM (or an error
 * whose message says out of memory), leave no block allocated (the allocator
 * counts live blocks; LSan and valgrind check the rest in test-sanitize), and
 * the run that succeeds must give the same result as one without failures.
 * Allocations made by HDF5, OpenBLAS and json-c are their own and not
 * counted.
 *
 * Paths: model creation (softmax, mlp:8,4, cnn:2,4,8), process creation and
 * initialize for every registered algorithm, a round of each (serial comm,
 * in-memory data, without and with an fm_executor, and on 2 threads), fm_evaluate and
 * fm_eval_process_next, checkpoint save and load, weights save and load,
 * ClientData open and load (an fm_synth_write file, with and without the
 * client cache, and in-memory), fm_synth_write. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "fedmpi/executor.h"
#include "fedmpi/fedmpi.h"

/* ---- the counting allocator ---------------------------------------------------- */

/* A 16-byte header keeps malloc's alignment and lets free count blocks. */
typedef struct hdr {
  size_t size;
  size_t magic;
} hdr;
#define HDR_MAGIC ((size_t)0x6f6f6d21u)

static atomic_long n_calls, n_failed, fail_at, live;

static int should_fail(void) {
  long c = atomic_fetch_add(&n_calls, 1) + 1;
  long f = atomic_load(&fail_at);
  if (f && c == f) {
    atomic_fetch_add(&n_failed, 1);
    return 1;
  }
  return 0;
}

static void *t_malloc(size_t n) {
  if (should_fail() || n > SIZE_MAX - sizeof(hdr)) return NULL;
  hdr *h = malloc(sizeof *h + n);
  if (!h) return NULL;
  h->size = n;
  h->magic = HDR_MAGIC;
  atomic_fetch_add(&live, 1);
  return h + 1;
}

static void *t_calloc(size_t count, size_t size) {
  if (size && count > (SIZE_MAX - sizeof(hdr)) / size) return NULL;
  void *p = t_malloc(count * size);
  if (p) memset(p, 0, count * size);
  return p;
}

static void *t_realloc(void *p, size_t n) {
  if (!p) return t_malloc(n);
  if (should_fail() || n > SIZE_MAX - sizeof(hdr)) return NULL;
  hdr *h = (hdr *)p - 1;
  assert_true(h->magic == HDR_MAGIC);
  hdr *g = realloc(h, sizeof *g + n);
  if (!g) return NULL;
  g->size = n;
  return g + 1;
}

static void t_free(void *p) {
  if (!p) return;
  hdr *h = (hdr *)p - 1;
  assert_true(h->magic == HDR_MAGIC); /* a block not from this allocator */
  h->magic = 0;
  atomic_fetch_sub(&live, 1);
  free(h);
}

/* ---- the sweep ---------------------------------------------------------------------- */

/* One operation under test. setup (not counted, may be NULL) prepares the
 * inputs; run is the operation; check (run succeeded) compares its outputs
 * with the reference, taking the reference when ref is 1; cleanup frees what
 * setup and run made (after success or failure). */
typedef struct oom_op {
  const char *name;
  void (*setup)(void *ctx);
  int (*run)(void *ctx);
  void (*check)(void *ctx, int ref);
  void (*cleanup)(void *ctx);
} oom_op;

/* Fail allocation n = 1, 2, ... until run succeeds without reaching it.
 * Returns the number of allocations of a successful run. */
static long sweep(const oom_op *op, void *ctx) {
  atomic_store(&fail_at, 0);
  if (op->setup) op->setup(ctx);
  int rc = op->run(ctx);
  if (rc != FM_OK) fail_msg("%s: reference run: %s: %s", op->name, fm_err_name(rc), fm_last_error());
  op->check(ctx, 1);
  op->cleanup(ctx);
  long base = atomic_load(&live);
  for (long n = 1;; n++) {
    if (op->setup) op->setup(ctx);
    fm_clear_error();
    atomic_store(&n_calls, 0);
    atomic_store(&n_failed, 0);
    atomic_store(&fail_at, n);
    rc = op->run(ctx);
    atomic_store(&fail_at, 0);
    long calls = atomic_load(&n_calls), failed = atomic_load(&n_failed);
    if (rc == FM_OK) {
      op->check(ctx, 0); /* also when a best-effort allocation failed */
    } else {
      if (!failed)
        fail_msg("%s: n=%ld: %s (%s) without a failed allocation", op->name, n, fm_err_name(rc), fm_last_error());
      if (rc != FM_ERR_NOMEM && !strstr(fm_last_error(), "out of memory"))
        fail_msg("%s: allocation %ld failed: got %s (%s), expected FM_ERR_NOMEM", op->name, n, fm_err_name(rc),
                 fm_last_error());
    }
    op->cleanup(ctx);
    long leaked = atomic_load(&live) - base;
    if (leaked) fail_msg("%s: allocation %ld failed (%s): %ld blocks leaked", op->name, n, fm_err_name(rc), leaked);
    if (rc == FM_OK && !failed) {
      printf("  %-52s %ld allocations, each failed once\n", op->name, calls);
      return calls;
    }
  }
}

/* ---- fixtures ------------------------------------------------------------------------- */

enum { D = 4, C = 3, K = 3 };
static const size_t counts[K] = {5, 3, 4};

/* In-memory data: K clients of D features, deterministic. */
static int make_data_rc(fm_client_data **cd) {
  float x[12 * D];
  int32_t y[12];
  for (int i = 0; i < 12; i++) {
    for (int j = 0; j < D; j++) x[i * D + j] = (float)((i * 7 + j * 3) % 11) / 11.0f - 0.4f;
    y[i] = (i * 5 + 1) % C;
  }
  size_t shape[1] = {D};
  return fm_client_data_from_memory(K, NULL, counts, x, y, 1, shape, cd);
}
static fm_client_data *make_data(void) {
  fm_client_data *cd = NULL;
  if (make_data_rc(&cd) != FM_OK) fail_msg("%s", fm_last_error());
  return cd;
}

static fm_input_spec vec_spec(void) {
  fm_input_spec s;
  size_t shape[1] = {D};
  assert_int_equal(fm_input_spec_set(&s, 1, shape, C), FM_OK);
  return s;
}

static int same_floats(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

/* ---- models ----------------------------------------------------------------------------- */

typedef struct model_ctx {
  const char *name;
  fm_input_spec spec;
  fm_model *m;
  size_t ref_numel;
  float ref_w[4096];
} model_ctx;

static int model_run(void *v) {
  model_ctx *c = v;
  return fm_model_create_by_name(c->name, &c->spec, &c->m);
}
static void model_check(void *v, int ref) {
  model_ctx *c = v;
  size_t P = fm_layout_numel(fm_model_layout(c->m));
  assert_true(P <= 4096);
  float w[4096];
  assert_int_equal(fm_model_init_weights(c->m, w, 3), FM_OK);
  if (ref) {
    c->ref_numel = P;
    memcpy(c->ref_w, w, P * sizeof *w);
  } else {
    assert_int_equal(P, c->ref_numel);
    assert_true(same_floats(w, c->ref_w, P));
  }
}
static void model_cleanup(void *v) { fm_model_destroy(&((model_ctx *)v)->m); }

static void test_model_create(void **st) {
  (void)st;
  model_ctx c = {.name = "softmax", .spec = vec_spec()};
  oom_op op = {"fm_model_create_by_name(softmax)", NULL, model_run, model_check, model_cleanup};
  sweep(&op, &c);
  c.name = "mlp:8,4";
  op.name = "fm_model_create_by_name(mlp:8,4)";
  sweep(&op, &c);
  size_t hw[3] = {12, 12, 1};
  assert_int_equal(fm_input_spec_set(&c.spec, 3, hw, C), FM_OK);
  c.name = "cnn:2,4,8";
  op.name = "fm_model_create_by_name(cnn:2,4,8)";
  sweep(&op, &c);
}

/* ---- processes ---------------------------------------------------------------------------- */

typedef struct proc_ctx {
  const fm_model *m;
  fm_algorithm_desc alg;
  fm_process *p;
  fm_state *s;
  fm_client_data *cd;
  fm_executor *ex;
  int use_executor;
  int threads; /* 2: worker threads allocate too, in no fixed order */
  fm_metrics met;
  float *ref_w;
  double ref_loss;
  size_t P;
} proc_ctx;

static int make_process(const proc_ctx *c, fm_process **out) {
  fm_optimizer *co = NULL, *so = NULL;
  int rc = FM_OK;
  if (c->alg.needs_client_optimizer) rc = fm_optimizer_create_sgdm(0.1, 0.0, &co);
  if (rc == FM_OK) rc = fm_optimizer_create_sgdm(1.0, 0.9, &so);
  if (rc != FM_OK) {
    fm_optimizer_destroy(&co);
    return rc;
  }
  return fm_process_create(c->m, c->alg.name, NULL, co, so, FM_WEIGHTING_NUM_EXAMPLES, NULL, out);
}

static int create_run(void *v) { return make_process(v, &((proc_ctx *)v)->p); }
static void create_check(void *v, int ref) {
  proc_ctx *c = v;
  (void)ref;
  assert_ptr_equal(fm_process_model(c->p), c->m);
}
static void create_cleanup(void *v) { fm_process_destroy(&((proc_ctx *)v)->p); }

static int init_run(void *v) {
  proc_ctx *c = v;
  return fm_process_initialize(c->p, 17, &c->s);
}
static void init_check(void *v, int ref) {
  proc_ctx *c = v;
  const float *w = fm_state_weights(c->s);
  if (ref)
    memcpy(c->ref_w, w, c->P * sizeof *w);
  else
    assert_true(same_floats(w, c->ref_w, c->P));
}
static void init_cleanup(void *v) { fm_state_destroy(&((proc_ctx *)v)->s); }

/* A round: a fresh state each time (setup), the whole cohort. */
static void round_setup(void *v) {
  proc_ctx *c = v;
  assert_int_equal(fm_process_initialize(c->p, 17, &c->s), FM_OK);
  fm_metrics_init(&c->met);
}
static int round_run(void *v) {
  proc_ctx *c = v;
  static const uint64_t cohort[K] = {0, 1, 2};
  int rc = FM_OK;
  if (c->use_executor) rc = fm_executor_create(&c->ex);
  if (rc != FM_OK) return rc;
  fm_round_input in = {.data = c->cd,
                       .batching = {.epochs = 1, .batch_size = 2, .shuffle = 1},
                       .cohort = cohort,
                       .cohort_size = K,
                       .num_threads = c->threads,
                       .executor = c->ex};
  rc = fm_process_next(c->p, c->s, &in, fm_comm_serial(), &c->met);
  if (rc == FM_OK && c->use_executor) { /* a second round on the executor that made the first */
    in.cohort_size = 2;
    rc = fm_process_next(c->p, c->s, &in, fm_comm_serial(), &c->met);
  }
  return rc;
}
static void round_check(void *v, int ref) {
  proc_ctx *c = v;
  double loss = 0;
  assert_int_equal(fm_metrics_get(&c->met, "client_work/train/loss", &loss), FM_OK);
  assert_int_equal(fm_state_round(c->s), c->use_executor ? 2 : 1);
  if (ref) {
    memcpy(c->ref_w, fm_state_weights(c->s), c->P * sizeof *c->ref_w);
    c->ref_loss = loss;
  } else {
    if (!same_floats(fm_state_weights(c->s), c->ref_w, c->P)) fail_msg("%s: weights differ", c->alg.name);
    assert_true(loss == c->ref_loss);
  }
}
static void round_cleanup(void *v) {
  proc_ctx *c = v;
  fm_executor_destroy(&c->ex);
  fm_state_destroy(&c->s);
  fm_metrics_free(&c->met);
}

static void test_processes(void **st) {
  (void)st;
  fm_input_spec spec = vec_spec();
  fm_model *m = NULL;
  assert_int_equal(fm_model_create_by_name("mlp:3", &spec, &m), FM_OK);
  proc_ctx c = {.m = m, .cd = make_data(), .threads = 1, .P = fm_layout_numel(fm_model_layout(m))};
  c.ref_w = malloc(c.P * sizeof *c.ref_w);
  size_t n_alg = fm_algorithm_count();
  assert_true(n_alg >= 6);
  char name[128];
  for (size_t i = 0; i < n_alg; i++) {
    assert_int_equal(fm_algorithm_info(i, &c.alg), FM_OK);
    snprintf(name, sizeof name, "fm_process_create(%s)", c.alg.name);
    oom_op create = {name, NULL, create_run, create_check, create_cleanup};
    sweep(&create, &c);

    assert_int_equal(make_process(&c, &c.p), FM_OK);
    snprintf(name, sizeof name, "fm_process_initialize(%s)", c.alg.name);
    oom_op init = {name, NULL, init_run, init_check, init_cleanup};
    sweep(&init, &c);
    for (c.use_executor = 0; c.use_executor < 2; c.use_executor++) {
      snprintf(name, sizeof name, "fm_process_next(%s, %s executor)", c.alg.name, c.use_executor ? "with" : "no");
      oom_op round = {name, round_setup, round_run, round_check, round_cleanup};
      sweep(&round, &c);
    }
    c.use_executor = 1;
    c.threads = 2;
    snprintf(name, sizeof name, "fm_process_next(%s, executor, 2 threads)", c.alg.name);
    oom_op round2 = {name, round_setup, round_run, round_check, round_cleanup};
    sweep(&round2, &c);
    c.use_executor = 0;
    c.threads = 1;
    fm_process_destroy(&c.p);
  }
  free(c.ref_w);
  fm_client_data_close(&c.cd);
  fm_model_destroy(&m);
}

/* ---- evaluation --------------------------------------------------------------------------- */

typedef struct eval_ctx {
  const fm_model *m;
  const float *w;
  const fm_client_data *cd;
  fm_eval_process *e;
  fm_metrics met;
  double ref[2];
  const char *keys[2];
} eval_ctx;

static void eval_setup(void *v) { fm_metrics_init(&((eval_ctx *)v)->met); }
static int evaluate_run(void *v) {
  eval_ctx *c = v;
  return fm_evaluate(c->m, c->w, c->cd, NULL, 0, 2, 1, fm_comm_serial(), &c->met);
}
static int eval_process_run(void *v) {
  eval_ctx *c = v;
  int rc = fm_eval_process_create(c->m, &c->e);
  if (rc != FM_OK) return rc;
  static const uint64_t clients[2] = {0, 2};
  rc = fm_eval_process_next(c->e, c->w, c->cd, clients, 2, 2, 1, fm_comm_serial(), &c->met);
  if (rc == FM_OK) rc = fm_eval_process_next(c->e, c->w, c->cd, NULL, 0, 3, 1, fm_comm_serial(), &c->met);
  return rc;
}
static void eval_check(void *v, int ref) {
  eval_ctx *c = v;
  for (int k = 0; k < 2; k++) {
    double x = 0;
    if (fm_metrics_get(&c->met, c->keys[k], &x) != FM_OK) fail_msg("no metric %s", c->keys[k]);
    if (ref)
      c->ref[k] = x;
    else
      assert_true(x == c->ref[k]);
  }
}
static void eval_cleanup(void *v) {
  eval_ctx *c = v;
  fm_eval_process_destroy(&c->e);
  fm_metrics_free(&c->met);
}

static void test_evaluation(void **st) {
  (void)st;
  fm_input_spec spec = vec_spec();
  fm_model *m = NULL;
  assert_int_equal(fm_model_create_by_name("mlp:5", &spec, &m), FM_OK);
  float w[256];
  assert_true(fm_layout_numel(fm_model_layout(m)) <= 256);
  assert_int_equal(fm_model_init_weights(m, w, 9), FM_OK);
  eval_ctx c = {.m = m, .w = w, .cd = make_data(), .keys = {"accuracy", "loss"}};
  oom_op ev = {"fm_evaluate", eval_setup, evaluate_run, eval_check, eval_cleanup};
  sweep(&ev, &c);
  c.keys[0] = "client_work/eval/current_round_metrics/loss";
  c.keys[1] = "client_work/eval/total_rounds_metrics/loss";
  oom_op ep = {"fm_eval_process_next", eval_setup, eval_process_run, eval_check, eval_cleanup};
  sweep(&ep, &c);
  fm_client_data *cd = (fm_client_data *)c.cd;
  fm_client_data_close(&cd);
  fm_model_destroy(&m);
}

/* ---- checkpoints and weights ---------------------------------------------------------------- */

typedef struct ckpt_ctx {
  const fm_process *p;
  const fm_state *s;
  const fm_layout *layout;
  size_t P;
  uint64_t *ids;
  float *values;
  size_t num_clients;
  fm_checkpoint ck;
  float *w;
  const char *path;
} ckpt_ctx;

static int ckpt_save_run(void *v) {
  ckpt_ctx *c = v;
  fm_state_view view;
  int rc = fm_state_export(c->p, c->s, &view);
  if (rc == FM_OK) rc = fm_state_gather_clients(c->p, c->s, fm_comm_serial(), &c->ids, &c->values, &c->num_clients);
  if (rc != FM_OK) return rc;
  view.num_clients = c->num_clients;
  view.client_ids = c->ids;
  view.client_values = c->values;
  return fm_checkpoint_save("oom_ckpt", &view, "mlp:3", "[train]\nrounds = 1\n", 1);
}
static void ckpt_save_check(void *v, int ref) {
  ckpt_ctx *c = v;
  (void)ref;
  fm_checkpoint ck;
  assert_int_equal(fm_checkpoint_load_latest("oom_ckpt", &ck, NULL, NULL), FM_OK);
  assert_true(same_floats(ck.weights, fm_state_weights(c->s), c->P));
  assert_int_equal(ck.info.num_clients, c->num_clients);
  assert_int_equal(ck.info.round, 1);
  fm_checkpoint_free(&ck);
}
static void ckpt_save_cleanup(void *v) {
  ckpt_ctx *c = v;
  fm_free(c->ids);
  fm_free(c->values);
  c->ids = NULL;
  c->values = NULL;
}

static int ckpt_load_run(void *v) {
  ckpt_ctx *c = v;
  return fm_checkpoint_load(c->path, &c->ck);
}
static int ckpt_load_latest_run(void *v) {
  ckpt_ctx *c = v;
  return fm_checkpoint_load_latest("oom_ckpt", &c->ck, NULL, NULL);
}
/* The loaded state must import into a fresh state and equal the saved one. */
static void ckpt_load_check(void *v, int ref) {
  ckpt_ctx *c = v;
  (void)ref;
  assert_true(same_floats(c->ck.weights, fm_state_weights(c->s), c->P));
  fm_state *fresh = NULL;
  assert_int_equal(fm_process_initialize(c->p, 1, &fresh), FM_OK);
  fm_state_view view;
  fm_checkpoint_view(&c->ck, &view);
  assert_int_equal(fm_state_import(c->p, fresh, &view), FM_OK);
  assert_true(same_floats(fm_state_weights(fresh), fm_state_weights(c->s), c->P));
  assert_int_equal(fm_state_round(fresh), 1);
  fm_state_destroy(&fresh);
}
static void ckpt_load_cleanup(void *v) { fm_checkpoint_free(&((ckpt_ctx *)v)->ck); }

static int weights_save_run(void *v) {
  ckpt_ctx *c = v;
  return fm_weights_save("oom_weights.h5", c->layout, fm_state_weights(c->s), "mlp:3");
}
static int weights_load_run(void *v) {
  ckpt_ctx *c = v;
  memset(c->w, 0, c->P * sizeof *c->w);
  return fm_weights_load("oom_weights.h5", c->layout, c->w);
}
static void weights_save_check(void *v, int ref) {
  ckpt_ctx *c = v;
  (void)ref;
  float *w = calloc(c->P, sizeof *w);
  assert_int_equal(fm_weights_load("oom_weights.h5", c->layout, w), FM_OK);
  assert_true(same_floats(w, fm_state_weights(c->s), c->P));
  free(w);
}
static void weights_load_check(void *v, int ref) {
  ckpt_ctx *c = v;
  (void)ref;
  assert_true(same_floats(c->w, fm_state_weights(c->s), c->P));
}
static void nothing(void *v) { (void)v; }

static void test_checkpoint_and_weights(void **st) {
  (void)st;
  fm_input_spec spec = vec_spec();
  fm_model *m = NULL;
  assert_int_equal(fm_model_create_by_name("mlp:3", &spec, &m), FM_OK);
  fm_client_data *cd = make_data();
  fm_executor *ex = NULL;
  assert_int_equal(fm_executor_create(&ex), FM_OK);
  mkdir("oom_ckpt", 0755);
  static const char *algs[] = {"scaffold", "mime_lite", "fedavg"};
  for (size_t a = 0; a < sizeof algs / sizeof *algs; a++) {
    fm_optimizer *co = NULL, *so = NULL;
    assert_int_equal(fm_optimizer_create_sgdm(0.1, 0.0, &co), FM_OK);
    assert_int_equal(fm_optimizer_create_adam(0.1, 0.9, 0.99, 1e-3, &so), FM_OK);
    fm_process *p = NULL;
    assert_int_equal(fm_process_create(m, algs[a], NULL, co, so, FM_WEIGHTING_NUM_EXAMPLES, NULL, &p), FM_OK);
    fm_state *s = NULL;
    assert_int_equal(fm_process_initialize(p, 5, &s), FM_OK);
    static const uint64_t cohort[K] = {0, 1, 2};
    fm_round_input in = {.data = cd, .batching = {.epochs = 1, .batch_size = 2}, .cohort = cohort,
                         .cohort_size = K, .num_threads = 1, .executor = ex};
    assert_int_equal(fm_process_next(p, s, &in, fm_comm_serial(), NULL), FM_OK);

    ckpt_ctx c = {.p = p, .s = s, .layout = fm_model_layout(m), .P = fm_layout_numel(fm_model_layout(m)),
                  .path = "oom_ckpt/ckpt_00000001.h5"};
    char name[96];
    snprintf(name, sizeof name, "fm_checkpoint_save(%s)", algs[a]);
    oom_op save = {name, NULL, ckpt_save_run, ckpt_save_check, ckpt_save_cleanup};
    sweep(&save, &c);
    snprintf(name, sizeof name, "fm_checkpoint_load(%s)", algs[a]);
    oom_op load = {name, NULL, ckpt_load_run, ckpt_load_check, ckpt_load_cleanup};
    sweep(&load, &c);
    snprintf(name, sizeof name, "fm_checkpoint_load_latest(%s)", algs[a]);
    oom_op latest = {name, NULL, ckpt_load_latest_run, ckpt_load_check, ckpt_load_cleanup};
    sweep(&latest, &c);
    if (a == 0) {
      c.w = malloc(c.P * sizeof *c.w);
      oom_op ws = {"fm_weights_save", NULL, weights_save_run, weights_save_check, nothing};
      sweep(&ws, &c);
      oom_op wl = {"fm_weights_load", NULL, weights_load_run, weights_load_check, nothing};
      sweep(&wl, &c);
      free(c.w);
    }
    fm_state_destroy(&s);
    fm_process_destroy(&p);
  }
  fm_executor_destroy(&ex);
  fm_client_data_close(&cd);
  fm_model_destroy(&m);
}

/* ---- ClientData ---------------------------------------------------------------------------- */

typedef struct data_ctx {
  fm_client_data *cd;
  size_t cache_bytes;
  int in_memory;
  double ref_sum;
  size_t ref_n;
  double sum;
  size_t n;
} data_ctx;

/* Open, load every client (twice, so a cache serves the second), close. */
static int data_run(void *v) {
  data_ctx *c = v;
  c->sum = 0;
  c->n = 0;
  int rc = c->in_memory ? make_data_rc(&c->cd) : fm_client_data_open("oom_train.h5", NULL, &c->cd);
  if (rc == FM_OK && c->cache_bytes) rc = fm_client_data_set_cache_bytes(c->cd, c->cache_bytes);
  for (int pass = 0; pass < 2 && rc == FM_OK; pass++)
    for (size_t i = 0; i < fm_client_data_num_clients(c->cd) && rc == FM_OK; i++) {
      fm_examples ex;
      rc = fm_client_data_load(c->cd, i, &ex);
      if (rc != FM_OK) break;
      for (size_t j = 0; j < ex.n; j++) c->sum += ex.y[j] + (double)ex.x[j * ex.num_features];
      c->n += ex.n;
      fm_examples_free(&ex);
    }
  return rc;
}
static void data_check(void *v, int ref) {
  data_ctx *c = v;
  if (ref) {
    c->ref_sum = c->sum;
    c->ref_n = c->n;
  } else {
    assert_int_equal(c->n, c->ref_n);
    assert_true(c->sum == c->ref_sum);
  }
}
static void data_cleanup(void *v) { fm_client_data_close(&((data_ctx *)v)->cd); }

static int synth_run(void *v) {
  (void)v;
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = 4;
  o.num_features = 5;
  o.num_classes = 3;
  o.max_examples = 12;
  o.seed = 7;
  return fm_synth_write(&o, "oom_train.h5", "oom_test.h5");
}
static void synth_check(void *v, int ref) {
  (void)v;
  (void)ref;
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open("oom_test.h5", NULL, &cd), FM_OK);
  assert_int_equal(fm_client_data_num_clients(cd), 4);
  fm_client_data_close(&cd);
}

static void test_client_data(void **st) {
  (void)st;
  oom_op synth = {"fm_synth_write", NULL, synth_run, synth_check, nothing};
  sweep(&synth, NULL);
  data_ctx c = {0};
  oom_op op = {"fm_client_data_open+load (HDF5)", NULL, data_run, data_check, data_cleanup};
  sweep(&op, &c);
  c.cache_bytes = 1 << 20;
  op.name = "fm_client_data_open+load (HDF5, cached)";
  sweep(&op, &c);
  c.cache_bytes = 0;
  c.in_memory = 1;
  op.name = "fm_client_data_from_memory+load";
  sweep(&op, &c);
}

/* The allocator is refused with any NULL function, and the refusal changes nothing. */
static void test_set_allocator_refuses_null(void **st) {
  (void)st;
  assert_int_equal(fm_set_allocator(NULL, t_realloc, t_calloc, t_free), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_set_allocator(t_malloc, NULL, t_calloc, t_free), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_set_allocator(t_malloc, t_realloc, NULL, t_free), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_set_allocator(t_malloc, t_realloc, t_calloc, NULL), FM_ERR_INVALID_ARG);
  long before = atomic_load(&live);
  fm_metrics met;
  fm_metrics_init(&met);
  assert_int_equal(fm_metrics_put(&met, "a/b", 1.0, FM_METRIC_FLOAT), FM_OK);
  assert_true(atomic_load(&live) > before); /* still the counting allocator */
  fm_metrics_free(&met);
  assert_int_equal(atomic_load(&live), before);
}

int main(void) {
  /* Before any other fedmpi call, as documented. */
  if (fm_set_allocator(t_malloc, t_realloc, t_calloc, t_free) != FM_OK) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_set_allocator_refuses_null),
      cmocka_unit_test(test_model_create),
      cmocka_unit_test(test_processes),
      cmocka_unit_test(test_evaluation),
      cmocka_unit_test(test_checkpoint_and_weights),
      cmocka_unit_test(test_client_data),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
