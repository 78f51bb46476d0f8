/* src/learning/learning_impl.h — private structs of the learning process. */
#ifndef FEDMPI_LEARNING_IMPL_H
#define FEDMPI_LEARNING_IMPL_H

#include "fedmpi/exact.h"
#include "fedmpi/process.h"

struct fm_client_work {
  const fm_model *model;
  fm_optimizer *opt; /* template: type and initial hparams */
  fm_weighting weighting;
};

struct fm_aggregator {
  const char *name;
  int weighted;
};

struct fm_finalizer {
  fm_optimizer *opt; /* template: type and initial hparams */
  fm_layout *layout;
};

struct fm_process {
  const fm_model *model;
  fm_client_work *cw;
  fm_aggregator *agg;
  fm_finalizer *fin;
  size_t numel;     /* P */
  size_t trainable; /* T */
  size_t num_metric_values;
};

struct fm_state {
  const fm_process *owner;
  uint64_t round;
  uint64_t seed;
  float *weights;           /* (P) global model weights */
  fm_optimizer *client_opt; /* client_work state: client optimizer hparams */
  fm_optimizer *server_opt; /* finalizer state: server optimizer hparams ... */
  fm_optim_state server_state; /* ... and its buffers */
};

/* Packed per-round sum layout: [sum w*delta (T) | denominator | rejected | metrics (M)] */
#define FM__SLOT_DENOM(t) (t)
#define FM__SLOT_REJECTED(t) ((t) + 1)
#define FM__SLOT_METRICS(t) ((t) + 2)

size_t fm__aggregator_prepare(const fm_aggregator *a, const float *delta, float weight, size_t t, fm_exact *slots,
                              double limit);
int fm__aggregator_finalize(const fm_aggregator *a, const fm_exact *slots, size_t t, float *mean);
int fm__aggregator_measurements(const fm_aggregator *a, fm_metrics *meas);

/* Finalized metrics from summed unfinalized values, as "<prefix>/<name>". */
int fm__metrics_finalize(const fm_model *m, const fm_exact *sums, const char *prefix, fm_metrics *out);

#endif
