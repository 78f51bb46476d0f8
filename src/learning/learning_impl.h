/* src/learning/learning_impl.h — the private interfaces of the learning
 * process: the algorithm type (one file per algorithm in algorithms/), the
 * aggregator type (aggregators.c), the client work's per-thread worker
 * (client_work.c) and the process and state structs. Not installed.
 *
 * One round is the TFF composition (round.c):
 *   distributor  -> state broadcast: weights, client hparams, the algorithm's payload
 *   client work  -> per client on a worker thread: local training shaped by
 *                   the algorithm's hooks, then the aggregators' prepare steps
 *                   into the thread's packed exact sums
 *   exact sum    -> threads, then one reduce over ranks (fm_comm)
 *   aggregator   -> finalize on rank 0: the mean update, the algorithm's extras
 *   finalizer    -> the algorithm's server step, then the server optimizer */
#ifndef FEDMPI_LEARNING_IMPL_H
#define FEDMPI_LEARNING_IMPL_H

#include "fedmpi/exact.h"
#include "fedmpi/process.h"

/* ---- per-client state kept across rounds on the owning rank (SCAFFOLD) ---------- */

typedef struct fm__client_store {
  size_t n; /* floats per client */
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

/* ---- aggregators ------------------------------------------------------------- */

/* A client's value for an aggregator: n floats, or n doubles (FedNova's a_i,
 * kept in double as it always was). */
typedef struct fm__agg_value {
  const float *f;
  const double *d;
  size_t n;
  /* The client's position in the round's cohort, the cohort's size and the
   * round's random key (secure_mean's SecAgg+ masks); cohort 0: unknown. */
  size_t pos, cohort;
  uint64_t seed, round;
} fm__agg_value;

/* What the server side of an aggregator knows of the round: the key of its
 * random streams (DP noise is drawn on rank 0 from Philox keyed by
 * (seed, round)) and the cohort's size. */
typedef struct fm__agg_round {
  uint64_t seed, round;
  size_t cohort_size;
  /* The chain's server-only state (floats kept on rank 0, never broadcast,
   * saved in checkpoints: tree aggregation's noise buffers), or NULL. */
  float *server;
} fm__agg_round;

/* An aggregator type. A wrapping aggregator (clipping, zeroing, DP) has an
 * inner one and places the inner's slots after its own, and the inner's
 * state after its own. Slots are exact sums in the round's packed buffer;
 * prepare runs per client on a worker thread, the rest on rank 0 after the
 * reduction.
 *
 * State (TFF's aggregator state: an adaptive norm, a quantile estimate) is a
 * run of doubles in the process state: made by state_init, broadcast with the
 * weights, read by prepare, reported by measurements and advanced on rank 0
 * by next_state, saved in checkpoints. Every st below is the aggregator's own
 * state followed by its inner's. */
typedef struct fm__aggregator_ops {
  const char *type;
  /* Exact slots for a value of n elements (its inner's included). */
  size_t (*num_slots)(const fm_aggregator *a, size_t n);
  /* Doubles of state of its own (NULL: none), and their initial values. */
  size_t (*state_size)(const fm_aggregator *a);
  void (*state_init)(const fm_aggregator *a, double *st);
  /* Add one client's value with weight w (the client's weight, 0 when its
   * update was not finite); scratch has n floats. Returns the number of
   * contributions that did not fit the exact range (limit). */
  size_t (*prepare)(const fm_aggregator *a, const double *st, const fm__agg_value *v, float w, fm_exact *slots,
                    double limit, float *scratch);
  /* The aggregate (n doubles) from the summed slots. */
  int (*finalize)(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n, const fm__agg_round *r,
                  double *out);
  /* Measurements under prefix ("aggregator"), TFF's names and nesting, of
   * the state this round used. */
  int (*measurements)(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n, const char *prefix,
                      fm_metrics *out);
  /* The state for the next round, on rank 0, from this round's sums (NULL: unchanged). */
  int (*next_state)(const fm_aggregator *a, double *st, const fm_exact *slots, size_t n, const fm__agg_round *r);
  /* Whether a round of this cohort size may run (NULL: any). */
  int (*check_round)(const fm_aggregator *a, size_t cohort_size);
  /* Server-only state (NULL: none; only a leaf of a chain may have it): the
   * floats it may need for values of n (allocated once, on every rank, used
   * on rank 0), the prefix of them in use for the state st (what a
   * checkpoint saves), and its initialisation from the run's seed (which may
   * also set st). finalize reads it and next_state advances it through
   * fm__agg_round.server. */
  size_t (*server_size)(const fm_aggregator *a, size_t n);
  size_t (*server_used)(const fm_aggregator *a, const double *st, size_t n);
  void (*server_init)(const fm_aggregator *a, double *st, float *sv, size_t n, uint64_t seed);
  void (*destroy)(fm_aggregator *a); /* frees what the type added (may be NULL) */
} fm__aggregator_ops;

#define FM__AGG_MAX_PARAMS 16

struct fm_aggregator {
  const fm__aggregator_ops *ops;
  char name[160];       /* as fm_aggregator_name reports it */
  int weighted;         /* takes the client's weight (else every client counts 1) */
  fm_aggregator *inner; /* owned; NULL for a leaf */
  double param;         /* the type's parameter (clipping: the L2 norm) */
  double params[FM__AGG_MAX_PARAMS]; /* further parameters, as the type defines them */
  int adaptive;         /* the norm is a quantile estimate kept in the state */
  unsigned id;          /* position in its chain from the outermost (0): distinct random streams */
};

size_t fm__aggregator_num_slots(const fm_aggregator *a, size_t n);
/* The doubles of state of a and every aggregator it wraps. */
size_t fm__aggregator_state_size(const fm_aggregator *a);
void fm__aggregator_state_init(const fm_aggregator *a, double *st);
size_t fm__aggregator_prepare(const fm_aggregator *a, const double *st, const fm__agg_value *v, float w,
                              fm_exact *slots, double limit, float *scratch);
int fm__aggregator_finalize(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                            const fm__agg_round *r, double *out);
int fm__aggregator_measurements(const fm_aggregator *a, const double *st, const fm_exact *slots, size_t n,
                                const char *prefix, fm_metrics *out);
int fm__aggregator_next_state(const fm_aggregator *a, double *st, const fm_exact *slots, size_t n,
                              const fm__agg_round *r);
int fm__aggregator_check_round(const fm_aggregator *a, size_t cohort_size);
/* The chain's server-only state: capacity for values of n, the prefix in use
 * for state st, and its initialisation (after fm__aggregator_state_init). */
size_t fm__aggregator_server_size(const fm_aggregator *a, size_t n);
size_t fm__aggregator_server_used(const fm_aggregator *a, const double *st, size_t n);
void fm__aggregator_server_init(const fm_aggregator *a, double *st, float *sv, size_t n, uint64_t seed);
/* The chain's tree aggregator (tree_aggregation / tree_adaptive) and its
 * effective and value noise multipliers and clients_per_round, or NULL. */
const fm_aggregator *fm__aggregator_tree(const fm_aggregator *a, double *z, uint64_t *k, double *zv);
/* Global norm of a value (order 1, 2, or anything else: inf), and adding
 * w * v into slots[0..n) (returns the contributions out of range). */
double fm__agg_norm(const fm__agg_value *v, double order);
size_t fm__agg_add_value(const fm__agg_value *v, float w, fm_exact *slots, double limit);
/* Shared by the aggregator types (aggregators.c, aggregator_secure.c). */
int fm__aggregator_new(const fm__aggregator_ops *ops, const char *name, int weighted, fm_aggregator *inner,
                       fm_aggregator **out);
int fm__put(fm_metrics *out, const char *prefix, const char *name, double v, fm_metric_kind kind);
/* A quantile estimate's parameters in params[Q_INIT..Q_INCR] and its state
 * (the estimate C) in st[0]; see aggregators.c. */
enum { Q_INIT, Q_TARGET, Q_LR, Q_MULT, Q_INCR };
double fm__estimate_norm(const fm_aggregator *a, const double *st); /* multiplier * C + increment */
void fm__quantile_init(const fm_aggregator *a, double *st);
size_t fm__quantile_state_size(const fm_aggregator *a);
double fm__quantile_step(const fm_aggregator *a, double estimate, double below_fraction);
int fm__check_quantile(const char *who, const fm_quantile_estimate *q);
void fm__set_quantile(fm_aggregator *a, const fm_quantile_estimate *q);
/* robust_aggregator's default adaptive zeroing around inner. */
int fm__default_zeroing(fm_aggregator *inner, fm_aggregator **out);
/* A plain mean (weighted or not) / a sum, for values an algorithm adds. */
int fm__aggregator_create_plain_mean(int weighted, fm_aggregator **out);
int fm__aggregator_create_sum(fm_aggregator **out);

/* ---- the client work's worker: one thread's buffers ------------------------------ */

typedef struct fm__worker {
  void *ws;           /* model workspace */
  float *w;           /* (P) local model weights */
  float *grad;        /* (T) gradient, then the client's update */
  float *gacc;        /* (T) the algorithm's per-client vector (FedSGD's gradient sum, Mime's full gradient, SCAFFOLD's delta c) */
  float *scratch;     /* (T) for aggregators (a clipped copy) */
  float *xb;          /* (B, D) batch features */
  int32_t *yb;        /* (B) batch labels */
  float *probs;       /* (B, C) predictions */
  uint32_t *order;    /* (n) shuffle scratch, grown as needed */
  size_t order_cap;
  double *msum;       /* (M) this client's unfinalized metrics */
  double *mbatch;     /* (max metric values) one batch's contributions */
  fm_optimizer_state opt; /* client optimizer state */
  int has_opt;
} fm__worker;

/* What makes a worker (compared byte for byte by the executor to reuse one). */
typedef struct fm__worker_cfg {
  const fm_model *model;
  const fm_optimizer *client_opt; /* NULL: none */
  size_t batch;
} fm__worker_cfg;
int fm__worker_create(const void *cfg, void **out);
void fm__worker_destroy(void *worker);
int fm__worker_order(fm__worker *k, size_t n);
/* Load client c and check it fits the model. */
int fm__load_client(const fm_model *model, const fm_client_data *data, uint64_t c, fm_examples *ex);
/* Add one batch's metric contributions into k->msum. */
void fm__metrics_update(const fm_model *model, fm__worker *k, size_t nb, float loss);
/* Finalized metrics from summed unfinalized values, as "<prefix>/<name>". */
int fm__metrics_finalize(const fm_model *m, const fm_exact *sums, const char *prefix, fm_metrics *out);
/* The same from the summed values as doubles. */
int fm__metrics_finalize_values(const fm_model *m, const double *vals, const char *prefix, fm_metrics *out);

/* ---- secure_sum_then_finalize (metrics_secure.c) ---- */
typedef struct fm__secure_metrics fm__secure_metrics;
int fm__secure_metrics_create(const fm_model *model, const fm_metric_value_range *ranges, size_t num_ranges,
                              fm__secure_metrics **out);
void fm__secure_metrics_destroy(fm__secure_metrics **s);
size_t fm__secure_metrics_num_slots(const fm__secure_metrics *s);
/* One client's unfinalized values msum (M) into the section's slots; returns
 * the number of values that could not be added (NaN, exact-sum overflow). */
size_t fm__secure_metrics_prepare(const fm__secure_metrics *s, const double *msum, fm_exact *slots, double limit);
/* On rank 0: the secure sums decoded, the group measurements under
 * <prefix>/secure_sum_measurements/<key>/, and the finalized metrics. */
int fm__secure_metrics_report(const fm__secure_metrics *s, const fm_model *model, const fm_exact *slots,
                              const char *prefix, fm_metrics *out);

/* ---- algorithms ---------------------------------------------------------------- */

/* What the round broadcast, as the clients see it. */
typedef struct fm__round_shared {
  const float *w0; /* (P) global weights */
  double limit;    /* exact-sum limit per contribution */
} fm__round_shared;

/* One client's training, as the algorithm hooks see it. */
typedef struct fm__client_ctx {
  const fm_process *p;
  fm_state *s;
  const fm__round_shared *sh;
  const fm_round_input *in;
  uint64_t client;
  fm__worker *k;
  const fm_examples *ex;
  void *cstate;            /* the algorithm's per-client state (SCAFFOLD's c_i) */
  size_t nb;                /* examples in the current batch */
  uint64_t examples, steps; /* examples iterated, optimizer steps taken */
  double norm;             /* FedNova's a_i */
} fm__client_ctx;

/* How the server combines a value the algorithm's clients send besides the
 * update: averaged like the update (a plain mean with the same weighting),
 * or summed. */
typedef enum fm__extra_kind { FM__EXTRA_MEAN, FM__EXTRA_SUM } fm__extra_kind;
#define FM__MAX_EXTRAS 2

/* Flags of an algorithm. */
#define FM__ALGO_NO_CLIENT_OPT 1u /* no client optimizer (FedSGD) */
#define FM__ALGO_SGD_ONLY 2u      /* the client optimizer must be sgdm */
#define FM__ALGO_SHARD_ONLY 4u    /* per-client state on the owning rank: shard assignment */

/* An algorithm: FedAvg's client work and server with hooks. Every hook may
 * be NULL (FedAvg's behaviour). */
typedef struct fm__algorithm_ops {
  const char *name;     /* --algorithm NAME */
  const char *tff_name; /* the TFF builder it follows, for the docs and --help */
  const char *help;
  unsigned flags;
  const char *hparam;   /* its one hyperparameter's name (FedProx: proximal_strength), or NULL */
  /* Extra values each client sends: kind and size (T, or 1). */
  size_t num_extras;
  fm__extra_kind extra_kind[FM__MAX_EXTRAS];
  int extra_is_scalar[FM__MAX_EXTRAS];

  /* state: made at initialize, freed with the state */
  int (*state_init)(const fm_process *p, fm_state *s);
  void (*state_free)(fm_state *s);
  /* distributor: the algorithm's payload, rank 0 -> every rank (collective) */
  int (*broadcast)(const fm_process *p, fm_state *s, fm_comm *comm);
  /* before the client map, on every rank (not threaded) */
  int (*round_begin)(const fm_process *p, fm_state *s, const fm_round_input *in, fm_comm *comm);
  /* client work, on a worker thread */
  int (*client_begin)(fm__client_ctx *x);
  /* after each backward pass, before the optimizer step: may change the
   * gradient; returns 1 to skip the step (FedSGD) */
  int (*gradient)(fm__client_ctx *x);
  /* the update into k->grad (default: initial - trained) */
  void (*update)(fm__client_ctx *x);
  /* after the update's finite check: returns the final finiteness */
  int (*client_end)(fm__client_ctx *x, int finite);
  /* the j-th extra value of this client (zeros when not finite) */
  void (*extra_value)(fm__client_ctx *x, size_t j, int finite, fm__agg_value *v);
  /* server, rank 0: after the mean update, with the extras' aggregates */
  int (*server_step)(const fm_process *p, fm_state *s, double *const *extras, uint64_t population, float *mean,
                     int *non_finite);
  /* checkpoints */
  void (*export_state)(const fm_process *p, const fm_state *s, fm_state_view *v);
  int (*check_import)(const fm_process *p, const fm_state *s, const fm_state_view *v);
  int (*import_state)(const fm_process *p, fm_state *s, const fm_state_view *v);
  /* the per-client state this rank keeps, or NULL */
  const fm__client_store *(*client_store)(const fm_state *s);
} fm__algorithm_ops;

/* The registry (algorithms/registry.c): by name, or NULL. */
const fm__algorithm_ops *fm__algorithm_find(const char *name);

/* ---- stages, process, state ---------------------------------------------------- */

struct fm_client_work {
  const fm_model *model;
  fm_optimizer *opt; /* template: type and initial hparams (NULL for FedSGD) */
  fm_weighting weighting;
  const fm__algorithm_ops *algo;
  double hparam; /* the algorithm's hyperparameter (FedProx: proximal_strength) */
};
/* Client work of any algorithm; takes opt (even on failure). */
int fm__client_work_new(const fm_model *model, fm_optimizer *opt, fm_weighting weighting,
                        const fm__algorithm_ops *algo, double hparam, fm_client_work **out);
/* One client's work: local training, then every aggregator's prepare into acc. */
int fm__client_work_run(const fm_process *p, fm_state *s, const fm__round_shared *sh, const fm_round_input *in,
                        uint64_t c, fm__worker *k, fm_exact *acc);

struct fm_finalizer {
  fm_optimizer *opt; /* template: type and initial hparams */
  fm_layout *layout;
};
/* The finalizer's step on rank 0: non_finite gets 1 if the mean is not
 * finite (or already was); otherwise the server optimizer applies it. */
int fm__finalizer_apply(const fm_finalizer *f, fm_state *s, const float *mean, size_t t, int *non_finite);

struct fm_process {
  const fm_model *model;
  fm_client_work *cw;
  fm_aggregator *agg;                     /* the update's */
  fm_aggregator *extra_agg[FM__MAX_EXTRAS]; /* the algorithm's extras' */
  fm_finalizer *fin;
  const fm__algorithm_ops *algo;
  size_t numel;     /* P */
  size_t trainable; /* T */
  size_t num_metric_values;
  /* Packed per-round sums:
   *   [update aggregator | rejected | metrics (M) | extra aggregator 0 | extra 1]
   * slot offsets: */
  size_t slot_rejected, slot_metrics, slot_extra[FM__MAX_EXTRAS];
  size_t extra_size[FM__MAX_EXTRAS];
  size_t num_slots;
  size_t agg_state_n; /* doubles of the update aggregator's state */
  size_t agg_server_n; /* floats of its server-only state (capacity) */
  /* The metrics aggregator: NULL = sum_then_finalize (the metrics section
   * holds the M values), else secure_sum_then_finalize with
   * secure_metrics_slots slots (metrics_secure.c). */
  struct fm__secure_metrics *secure_metrics;
  size_t secure_metrics_slots;
};

struct fm_state {
  const fm_process *owner;
  uint64_t round;
  uint64_t seed;
  float *weights;              /* (P) global model weights */
  fm_optimizer *client_opt;    /* client_work state: client optimizer hparams */
  fm_optimizer *server_opt;    /* finalizer state: server optimizer hparams ... */
  fm_optimizer_state server_state; /* ... and its buffers */
  double *agg_state;           /* aggregator state (p->agg_state_n doubles) */
  float *agg_server;           /* its server-only state (p->agg_server_n floats, used on rank 0) */
  void *algo;                  /* the algorithm's state (its state_init) ... */
  void (*algo_free)(fm_state *s); /* ... and how to free it */
};

#endif
