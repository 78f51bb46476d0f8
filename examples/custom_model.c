/* examples/custom_model.c — how to plug your own model into fedmpi.
 *
 * A model is a vtable (fm_model_ops) plus a weights layout. This example
 * writes a tiny linear softmax classifier with plain loops, registers it as
 * "my_linear" so that every fedmpi entry point taking a model name
 * (fm_model_create_by_name, and so the learning process) accepts it, then
 * trains it with federated averaging on in-memory client data in one process.
 *
 * What it deliberately does not do: anything fast — the built-in models use
 * BLAS for that.
 *
 * Build against an installed fedmpi (tests/install does exactly this):
 *   find_package(fedmpi) + target_link_libraries(custom_model fedmpi::fedmpi m)
 * or: cc -std=c11 custom_model.c $(pkg-config --cflags --libs fedmpi) -lm */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedmpi/fedmpi.h"

/* Tensor 0: "linear/kernel" (D, C); tensor 1: "linear/bias" (C). */

static size_t my_workspace_size(const fm_model *m, size_t max_batch) {
  return max_batch * fm_model_input_spec(m)->num_classes * sizeof(float); /* probs (N, C) */
}

static int my_init(const fm_model *m, float *w, uint64_t seed) {
  const fm_tensor_info *k = fm_layout_tensor(fm_model_layout(m), 0), *b = fm_layout_tensor(fm_model_layout(m), 1);
  fm_rng r;
  fm_rng_init(&r, seed, 0, 0, FM_RNG_INIT); /* round 0, client = tensor index */
  for (size_t i = 0; i < k->numel; i++) w[k->offset + i] = (float)(0.01 * fm_rng_normal(&r));
  memset(w + b->offset, 0, b->numel * sizeof *w);
  return FM_OK;
}

static int my_forward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                      int training, float *loss, float *probs) {
  (void)training; /* we always cache probs for backward */
  size_t D = fm_model_input_spec(m)->num_features, C = fm_model_input_spec(m)->num_classes;
  const float *K = w + fm_layout_tensor(fm_model_layout(m), 0)->offset;
  const float *B = w + fm_layout_tensor(fm_model_layout(m), 1)->offset;
  float *p = ws;
  double total = 0;
  for (size_t i = 0; i < n; i++) {
    float mx = -INFINITY;
    for (size_t c = 0; c < C; c++) {
      float z = B[c];
      for (size_t j = 0; j < D; j++) z += x[i * D + j] * K[j * C + c];
      p[i * C + c] = z;
      mx = z > mx ? z : mx;
    }
    double sum = 0;
    for (size_t c = 0; c < C; c++) sum += exp(p[i * C + c] - mx);
    total += log(sum) - (p[i * C + y[i]] - mx);
    for (size_t c = 0; c < C; c++) p[i * C + c] = (float)(exp(p[i * C + c] - mx) / sum);
  }
  *loss = (float)(total / (double)n); /* MEAN loss over the batch */
  if (probs) memcpy(probs, p, n * C * sizeof *probs);
  return FM_OK;
}

/* dw (trainable prefix, same offsets as the layout) += d(mean loss)/dw */
static int my_backward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                       float *dw) {
  (void)w;
  size_t D = fm_model_input_spec(m)->num_features, C = fm_model_input_spec(m)->num_classes;
  float *dK = dw + fm_layout_tensor(fm_model_layout(m), 0)->offset;
  float *dB = dw + fm_layout_tensor(fm_model_layout(m), 1)->offset;
  const float *p = ws;
  for (size_t i = 0; i < n; i++)
    for (size_t c = 0; c < C; c++) {
      float d = (p[i * C + c] - (c == (size_t)y[i])) / (float)n;
      dB[c] += d;
      for (size_t j = 0; j < D; j++) dK[j * C + c] += x[i * D + j] * d;
    }
  return FM_OK;
}

static const fm_model_ops my_ops = {my_workspace_size, my_init, my_forward, my_backward, NULL, NULL};

/* Registry factory: "my_linear" takes no arguments. */
static int my_factory(const fm_input_spec *spec, const char *args, fm_model **out) {
  if (args) return fm_set_error(FM_ERR_INVALID_ARG, "my_linear takes no arguments (got '%s')", args);
  fm_layout *l = NULL;
  int rc = fm_layout_create(&l);
  if (rc) return rc;
  size_t kshape[2] = {spec->num_features, spec->num_classes}, bshape[1] = {spec->num_classes};
  if ((rc = fm_layout_add(l, "linear/kernel", 2, kshape, 1)) || (rc = fm_layout_add(l, "linear/bias", 1, bshape, 1))) {
    fm_layout_destroy(&l);
    return rc;
  }
  return fm_model_create("my_linear", &my_ops, spec, l, NULL, out); /* takes the layout */
}

int main(void) {
  int rc = fm_model_register("my_linear", my_factory, "linear softmax classifier (example)");
  if (rc) return fprintf(stderr, "register: %s\n", fm_last_error()), 1;

  enum { K = 8, N = 40, D = 4, C = 3 };
  size_t shape[1] = {D};
  fm_input_spec spec;
  fm_model *m = NULL;
  if ((rc = fm_input_spec_set(&spec, 1, shape, C)) || (rc = fm_model_create_by_name("my_linear", &spec, &m)))
    return fprintf(stderr, "%s: %s\n", fm_err_name(rc), fm_last_error()), 1;

  /* K clients of N examples: the label is the index of the largest of the
   * first C features. */
  static float x[K * N * D];
  static int32_t y[K * N];
  size_t counts[K];
  fm_rng r;
  fm_rng_init(&r, 1, 0, 0, FM_RNG_SYNTH);
  for (size_t i = 0; i < K * N; i++) {
    for (size_t j = 0; j < D; j++) x[i * D + j] = (float)fm_rng_normal(&r);
    y[i] = 0;
    for (int32_t c = 1; c < C; c++)
      if (x[i * D + c] > x[i * D + y[i]]) y[i] = c;
  }
  for (size_t k = 0; k < K; k++) counts[k] = N;
  fm_client_data *cd = NULL;
  if ((rc = fm_client_data_from_memory(K, NULL, counts, x, y, 1, shape, &cd)))
    return fprintf(stderr, "%s: %s\n", fm_err_name(rc), fm_last_error()), 1;

  /* Federated averaging with the custom model: 4 clients per round, 2 local
   * epochs of batch 8, client SGD 0.2, server SGD 1.0 (plain FedAvg). */
  fm_optimizer *client_opt = NULL, *server_opt = NULL;
  fm_process *p = NULL;
  fm_state *s = NULL;
  if ((rc = fm_optimizer_create_sgdm(0.2, 0.0, &client_opt)) || (rc = fm_optimizer_create_sgdm(1.0, 0.0, &server_opt)) ||
      (rc = fm_process_create_weighted_fed_avg(m, client_opt, server_opt, FM_WEIGHTING_NUM_EXAMPLES, NULL, &p)) ||
      (rc = fm_process_initialize(p, 42, &s)))
    return fprintf(stderr, "%s: %s\n", fm_err_name(rc), fm_last_error()), 1;

  uint64_t cohort[4];
  fm_round_input in = {.data = cd, .batching = {.epochs = 2, .batch_size = 8, .shuffle = 1}, .cohort = cohort, .cohort_size = 4, .num_threads = 1};
  fm_metrics met;
  fm_metrics_init(&met);
  double first = 0, last = 0;
  for (int round = 1; round <= 10; round++) {
    fm_metrics_clear(&met);
    if ((rc = fm_sample_cohort(42, fm_state_round(s), K, 4, cohort)) ||
        (rc = fm_process_next(p, s, &in, fm_comm_serial(), &met)) ||
        (rc = fm_metrics_get(&met, "client_work/train/loss", &last)))
      return fprintf(stderr, "%s: %s\n", fm_err_name(rc), fm_last_error()), 1;
    if (round == 1) first = last;
    printf("round %2d  train loss %.4f\n", round, last);
  }
  fm_metrics_free(&met);
  fm_state_destroy(&s);
  fm_process_destroy(&p);
  fm_client_data_close(&cd);
  fm_model_destroy(&m);
  if (!(last < first)) return fprintf(stderr, "loss did not fall: %.4f -> %.4f\n", first, last), 1;
  return 0;
}
