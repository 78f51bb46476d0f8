/* src/learning/learning_impl.h — private structs of the learning process. */
#ifndef FEDMPI_LEARNING_IMPL_H
#define FEDMPI_LEARNING_IMPL_H

#include "fedmpi/exact.h"
#include "fedmpi/process.h"

/* The client algorithms. Each is FedAvg's client work with one change. */
typedef enum fm__algo {
  FM__ALGO_FEDAVG,   /* update = initial - trained */
  FM__ALGO_FEDPROX,  /* gradient += mu (w - w0) at every step */
  FM__ALGO_FEDSGD,   /* no local steps: update = example-weighted mean gradient at w0 */
  FM__ALGO_MIME,     /* steps use the server's base optimizer state, frozen; full gradient sent too */
  FM__ALGO_SCAFFOLD, /* gradient += c - c_i; per-client control variates c_i */
  FM__ALGO_FEDNOVA   /* update normalised by the client's local steps; server rescales by tau_eff */
} fm__algo;

struct fm_client_work {
  const fm_model *model;
  fm_optimizer *opt; /* template: type and initial hparams (NULL for FedSGD) */
  fm_weighting weighting;
  fm__algo algo;
  double mu; /* FedProx proximal_strength */
};

/* Per-client state kept across rounds on the owning rank. */
typedef struct fm__client_store {
  size_t n;      /* floats per client */
  size_t cap, count;
  uint64_t *keys;
  float **vals;
} fm__client_store;
void fm__client_store_init(fm__client_store *st, size_t n);
void fm__client_store_free(fm__client_store *st);
/* Existing entry or NULL (thread-safe against other finds). */
float *fm__client_store_find(const fm__client_store *st, uint64_t key);
/* Existing or new zero-filled entry (not thread-safe). */
int fm__client_store_get(fm__client_store *st, uint64_t key, float **out);

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
  fm__algo algo;
  size_t extra_slots; /* algorithm slots after the metrics in the packed sums */
};

struct fm_state {
  const fm_process *owner;
  uint64_t round;
  uint64_t seed;
  float *weights;           /* (P) global model weights */
  fm_optimizer *client_opt; /* client_work state: client optimizer hparams */
  fm_optimizer *server_opt; /* finalizer state: server optimizer hparams ... */
  fm_optim_state server_state; /* ... and its buffers */
  fm_optim_state base_state;   /* Mime Lite: the base (client) optimizer's global state */
  float *control;              /* SCAFFOLD: server control variate c (T) */
  fm__client_store clients;    /* SCAFFOLD: c_i of the clients this rank owns */
  struct fm__worker_pool *pool; /* this rank's per-thread client buffers, kept across rounds (round.c) */
};

/* Frees the worker pool of a state (round.c); NULL is fine. */
void fm__worker_pool_free(struct fm__worker_pool *pool);

/* Packed per-round sum layout:
 *   [sum w*update (T) | denominator | rejected | metrics (M) | algorithm extras]
 * extras: Mime Lite sum w*full_gradient (T); SCAFFOLD sum delta_c (T);
 *         FedNova sum w*a_i (1). */
#define FM__SLOT_DENOM(t) (t)
#define FM__SLOT_REJECTED(t) ((t) + 1)
#define FM__SLOT_METRICS(t) ((t) + 2)
#define FM__SLOT_EXTRA(t, m) ((t) + 2 + (m))
size_t fm__algo_extra_slots(fm__algo algo, size_t t);
/* Client work of any kind; takes opt (even on failure). */
int fm__client_work_new_kind(const fm_model *model, fm_optimizer *opt, fm_weighting weighting, fm__algo algo, double mu,
                             fm_client_work **out);
const char *fm__algo_name(fm__algo algo);

size_t fm__aggregator_prepare(const fm_aggregator *a, const float *delta, float weight, size_t t, fm_exact *slots,
                              double limit);
int fm__aggregator_finalize(const fm_aggregator *a, const fm_exact *slots, size_t t, float *mean);
int fm__aggregator_measurements(const fm_aggregator *a, fm_metrics *meas);

/* Finalized metrics from summed unfinalized values, as "<prefix>/<name>". */
int fm__metrics_finalize(const fm_model *m, const fm_exact *sums, const char *prefix, fm_metrics *out);

#endif
