/* tests/fuzz/fuzz_aggregator_spec.c — the aggregator chain's text
 * (src/learning/aggregator_spec.c: "zeroing(clipping(mean, clipping_norm=..."),
 * and the metrics aggregator's ("secure_sum_then_finalize(loss=range(...))")
 * on a small process. An accepted chain must report a name and a slot count;
 * an accepted metrics aggregator must run a round. */
#include "fuzz_common.h"

static void try_metrics(const char *text) {
  enum { D = 3, K = 2 };
  static const size_t counts[K] = {3, 2};
  float x[5 * D] = {0.5f, -1, 2, 1, 0, -0.5f, 3, 1, 1, -2, 0.25f, 0, 1, 1, 1};
  int32_t y[5] = {0, 1, 1, 0, 1};
  size_t shape[1] = {D};
  fm_input_spec spec;
  fm_model *m = NULL;
  fm_client_data *cd = NULL;
  fm_optimizer *co = NULL, *so = NULL;
  fm_process *p = NULL;
  if (fm_input_spec_set(&spec, 1, shape, 2) != FM_OK || fm_model_create_softmax(&spec, &m) != FM_OK ||
      fm_client_data_from_memory(K, NULL, counts, x, y, 1, shape, &cd) != FM_OK ||
      fm_optimizer_create_sgdm(0.1, 0, &co) != FM_OK || fm_optimizer_create_sgdm(1, 0, &so) != FM_OK ||
      fm_process_create_weighted_fed_avg(m, co, so, FM_WEIGHTING_NUM_EXAMPLES, NULL, &p) != FM_OK)
    abort();
  int rc = fm_process_set_metrics_aggregator(p, text);
  fuzz_check_rc(rc);
  if (rc == FM_OK) {
    fm_state *s = NULL;
    uint64_t cohort[K] = {0, 1};
    fm_round_input in = {.data = cd, .batching = {.epochs = 1, .batch_size = 2}, .cohort = cohort, .cohort_size = K,
                         .num_threads = 1};
    fm_metrics out;
    fm_metrics_init(&out);
    if (fm_process_initialize(p, 1, &s) != FM_OK) abort();
    fuzz_check_rc(fm_process_next(p, s, &in, fm_comm_serial(), &out));
    fm_metrics_free(&out);
    fm_state_destroy(&s);
  }
  fm_process_destroy(&p);
  fm_client_data_close(&cd);
  fm_model_destroy(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  char *text = fuzz_string(data, size, 256);
  if (!text) return 0;
  fm_aggregator *a = NULL;
  int rc = fm_aggregator_create_from_spec(text, &a);
  fuzz_check_rc(rc);
  if (rc == FM_OK) {
    if (!fm_aggregator_name(a)) abort();
    fm_aggregator_destroy(&a);
  }
  try_metrics(text);
  free(text);
  return 0;
}
