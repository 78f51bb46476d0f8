/* src/learning/aggregation_process.c — an aggregator run on its own, as
 * tff.templates.AggregationProcess: initialize() makes the state, next()
 * aggregates one round of client values. The same code paths as a learning
 * process's round (prepare per client into exact sums, finalize,
 * measurements, next state), on one process without MPI: for tests, for
 * studying an aggregator on given values, and for `fedmpi bench`. */
#include <string.h>

#include "internal.h"
#include "learning_impl.h"

struct fm_aggregation_process {
  const fm_aggregator *agg;
  size_t n, num_slots;
  uint64_t seed, round;
  double *state;
  float *server; /* the chain's server-only state, if any */
  fm_exact *slots;
  float *scratch;
  double *out;
};

int fm_aggregation_process_create(const fm_aggregator *agg, size_t n, uint64_t seed, fm_aggregation_process **out) {
  FM_CHECK(agg && out && n > 0, FM_ERR_INVALID_ARG, "aggregation process needs an aggregator, n > 0 and out");
  *out = NULL;
  fm_aggregation_process *ap = fm__calloc(1, sizeof *ap);
  if (!ap) return FM_ERR_NOMEM;
  ap->agg = agg;
  ap->n = n;
  ap->seed = seed;
  ap->num_slots = fm__aggregator_num_slots(agg, n);
  size_t ns = fm__aggregator_state_size(agg);
  ap->state = fm__calloc(ns + 1, sizeof *ap->state);
  ap->slots = fm__malloc(ap->num_slots * sizeof *ap->slots);
  ap->scratch = fm__malloc(n * sizeof *ap->scratch);
  size_t nsv = fm__aggregator_server_size(agg, n);
  if (nsv) ap->server = fm__calloc(nsv, sizeof *ap->server);
  if (!ap->state || !ap->slots || !ap->scratch || (nsv && !ap->server)) {
    fm_aggregation_process_destroy(&ap);
    return FM_ERR_NOMEM;
  }
  /* the chain's depth numbers its random streams, as in a learning process */
  unsigned id = 0;
  for (fm_aggregator *a = (fm_aggregator *)agg; a; a = a->inner) a->id = id++;
  fm__aggregator_state_init(agg, ap->state);
  if (nsv) fm__aggregator_server_init(agg, ap->state, ap->server, n, seed);
  *out = ap;
  return FM_OK;
}

void fm_aggregation_process_destroy(fm_aggregation_process **ap) {
  if (!ap || !*ap) return;
  fm__free((*ap)->state);
  fm__free((*ap)->server);
  fm__free((*ap)->slots);
  fm__free((*ap)->scratch);
  fm__free(*ap);
  *ap = NULL;
}

int fm_aggregation_process_next(fm_aggregation_process *ap, const float *const *values, const float *weights,
                                size_t k, double *out, fm_metrics *measurements) {
  FM_CHECK(ap && out && (values || k == 0), FM_ERR_INVALID_ARG, "NULL argument");
  FM_CALL(fm__aggregator_check_round(ap->agg, k));
  fm_exact_zero(ap->slots, ap->num_slots);
  const double limit = fm_exact_limit(k + 1);
  size_t bad = 0;
  for (size_t i = 0; i < k; i++) {
    fm__agg_value v = {.f = values[i], .n = ap->n, .pos = i, .cohort = k, .seed = ap->seed, .round = ap->round};
    bad += fm__aggregator_prepare(ap->agg, ap->state, &v, weights ? weights[i] : 1.0f, ap->slots, limit, ap->scratch);
  }
  FM_CHECK(bad == 0, FM_ERR_OVERFLOW, "%zu client values do not fit the exact sum's range", bad);
  const fm__agg_round r = {.seed = ap->seed, .round = ap->round, .cohort_size = k, .server = ap->server};
  FM_CALL(fm__aggregator_finalize(ap->agg, ap->state, ap->slots, ap->n, &r, out));
  if (measurements) FM_CALL(fm__aggregator_measurements(ap->agg, ap->state, ap->slots, ap->n, "aggregator", measurements));
  FM_CALL(fm__aggregator_next_state(ap->agg, ap->state, ap->slots, ap->n, &r));
  ap->round++;
  return FM_OK;
}

size_t fm_aggregation_process_state(const fm_aggregation_process *ap, const double **state) {
  if (state) *state = ap->state;
  return fm__aggregator_state_size(ap->agg);
}
