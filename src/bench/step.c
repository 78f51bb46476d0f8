/* src/bench/step.c — the step profiler of `fedmpi bench`: one model's
 * training step alone (forward, backward, gradient zeroing and the sgdm
 * step) on the first batch of client 0, on one thread of rank 0, repeated
 * until --step-seconds have passed, so that the batch and the weights stay in
 * cache. It is what the model reaches without the round around it.
 *
 * Deliberately does not: load, batch, shuffle, compute metrics or aggregate
 * (a round's cost beyond the step is runner.c's), or use more than one thread. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* At least 5 steps, after 2 untimed ones. */
int fm__bench_measure_step(const bench_cfg *c, const fm_model *model, const fm_model_flops *fl,
                           const fm_client_data *data, step_result *out) {
  const fm_layout *l = fm_model_layout(model);
  size_t P = fm_layout_numel(l), T = fm_layout_trainable_numel(l);
  size_t D = fm_model_input_spec(model)->num_features;
  fm_examples ex = {0};
  fm_optimizer *opt = NULL;
  fm_optimizer_state st = {0};
  int have_state = 0;
  float *w = NULL, *g = NULL, *probs = NULL;
  void *ws = NULL;
  memset(out, 0, sizeof *out);
  int rc = fm_client_data_load(data, 0, &ex);
  size_t n = rc == FM_OK ? ((size_t)c->batch_size < ex.n ? (size_t)c->batch_size : ex.n) : 0;
  if (rc == FM_OK && n == 0) rc = fm_set_error(FM_ERR_INVALID_ARG, "client 0 of %s is empty", c->data);
  if (rc == FM_OK && ex.num_features != D) rc = fm_set_error(FM_ERR_SPEC_MISMATCH, "features differ from the model");
  const size_t mt = fm_model_num_targets(model), dt = ex.num_targets ? ex.num_targets : 1;
  if (rc == FM_OK && mt && mt != dt)
    rc = fm_set_error(FM_ERR_SPEC_MISMATCH, "%s has %zu label(s) per example, model '%s' takes %zu", c->data, dt,
                      fm_model_type(model), mt);
  if (rc == FM_OK) {
    w = malloc(P * sizeof *w);
    g = malloc((T ? T : 1) * sizeof *g);
    probs = malloc(n * fm_model_prediction_size(model) * sizeof *probs);
    ws = malloc(fm_model_workspace_size(model, n));
    if (!w || !g || !probs || !ws) rc = fm_set_error(FM_ERR_NOMEM, "out of memory");
  }
  if (rc == FM_OK) rc = fm_model_init_weights(model, w, (uint64_t)c->seed);
  if (rc == FM_OK) rc = fm_optimizer_create_sgdm(c->client_lr, c->client_momentum, &opt);
  if (rc == FM_OK && (rc = fm_optimizer_state_init(opt, T, &st)) == FM_OK) have_state = 1;
  if (rc == FM_OK) memset(g, 0, T * sizeof *g);
  double t_fwd = 0, t_bwd = 0, t_opt = 0, start = MPI_Wtime();
  long steps = 0;
  for (long i = -2; rc == FM_OK; i++) {
    float loss;
    double t0 = MPI_Wtime();
    fm_model_set_step(model, ws, 1, 1, 0, 0); /* dropout's key: the same masks every step */
    rc = fm_model_forward(model, ws, w, ex.x, ex.y, n, 1, &loss, probs);
    double t1 = MPI_Wtime();
    if (rc == FM_OK) rc = fm_model_backward(model, ws, w, ex.x, ex.y, n, g);
    double t2 = MPI_Wtime();
    if (rc == FM_OK) rc = fm_optimizer_step(opt, &st, w, g, T);
    memset(g, 0, T * sizeof *g); /* for the next backward, as a round does before each one */
    double t3 = MPI_Wtime();
    if (i < 0) {
      start = t3;
      continue;
    }
    t_fwd += t1 - t0;
    t_bwd += t2 - t1;
    t_opt += t3 - t2;
    steps++;
    if (steps >= 5 && t3 - start >= c->step_seconds) break;
  }
  if (rc == FM_OK) {
    out->fwd = 1e3 * t_fwd / (double)steps;
    out->bwd = 1e3 * t_bwd / (double)steps;
    out->opt = 1e3 * t_opt / (double)steps;
    out->total = out->fwd + out->bwd + out->opt;
    out->gflops = out->total > 0 ? fl->train * (double)n / (out->total * 1e-3) * 1e-9 : NAN;
  }
  if (have_state) fm_optimizer_state_free(&st);
  fm_optimizer_destroy(&opt);
  free(w), free(g), free(probs), free(ws);
  fm_examples_free(&ex);
  return rc;
}
