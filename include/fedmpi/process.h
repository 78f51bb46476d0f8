/* fedmpi/process.h — the learning process: distributor -> client work ->
 * aggregator -> finalizer, composed as tff.learning.templates.compose_learning_process.
 *
 * Semantics (tff.learning.algorithms.build_weighted_fed_avg):
 *   distributor   broadcast of the global weights (and client hparams).
 *   client work   local training from the broadcast weights with a freshly
 *                 initialised client optimizer; update = initial - trained
 *                 (trainable part only); weight = examples iterated
 *                 (NUM_EXAMPLES) or 1 (UNIFORM); a non-finite update is sent as
 *                 zeros with weight 0 and zeroed metrics.
 *   aggregator    mean = sum(w * update) / sum(w) (weighted) or
 *                 sum(update) / number of clients (unweighted); all weights 0
 *                 gives NaN, which the finalizer rejects.
 *   finalizer     server optimizer applied with the mean update as gradient;
 *                 a non-finite mean leaves weights and optimizer state as they
 *                 were and reports update_non_finite = 1.
 *   metrics       sum_then_finalize over the round's clients:
 *                 client_work/train/{accuracy, loss, num_examples, num_batches}.
 *
 * Execution: every client stage is a per-client map whose results are added
 * into one packed buffer of exact sums (fedmpi/exact.h), reduced once per round
 * to rank 0 through fm_comm; rank 0 holds the authoritative state. */
#ifndef FEDMPI_PROCESS_H
#define FEDMPI_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/comm.h"
#include "fedmpi/data.h"
#include "fedmpi/executor.h"
#include "fedmpi/export.h"
#include "fedmpi/hparams.h"
#include "fedmpi/metrics.h"
#include "fedmpi/model.h"
#include "fedmpi/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fm_weighting {
  FM_WEIGHTING_UNIFORM = 1,
  FM_WEIGHTING_NUM_EXAMPLES = 2
} fm_weighting;

/* ---- stages ---------------------------------------------------------------- */

typedef struct fm_client_work fm_client_work;
typedef struct fm_aggregator fm_aggregator;
typedef struct fm_finalizer fm_finalizer;

/* FedAvg client work (build_model_delta_client_work). Takes ownership of
 * client_opt (even on failure); model is borrowed and must outlive it.
 * FM_ERR_INVALID_ARG for an unknown weighting. */
FM_EXTERN int fm_client_work_create_model_delta(const fm_model *model, fm_optimizer *client_opt,
                                                fm_weighting weighting, fm_client_work **out);
/* The client work of any registered algorithm by name (fm_algorithm_info):
 * the build_*_client_work of FedProx, FedSGD, Mime Lite, SCAFFOLD, FedNova.
 * hparams (may be NULL) holds the algorithm's own hyperparameter by its TFF
 * name (FedProx: proximal_strength). client_opt is taken (even on failure);
 * NULL for FedSGD. FM_ERR_INVALID_ARG for an unknown name, a missing client
 * optimizer, or one other than sgdm for SCAFFOLD and FedNova;
 * FM_ERR_HPARAM_UNKNOWN / FM_ERR_HPARAM_VALUE for its hyperparameter. */
FM_EXTERN int fm_client_work_create(const fm_model *model, const char *algorithm, const fm_hparams *hparams,
                                    fm_optimizer *client_opt, fm_weighting weighting, fm_client_work **out);
FM_EXTERN void fm_client_work_destroy(fm_client_work **cw);

/* tff.aggregators.MeanFactory (weighted) and UnweightedMeanFactory. */
FM_EXTERN int fm_aggregator_create_mean(fm_aggregator **out);
FM_EXTERN int fm_aggregator_create_unweighted_mean(fm_aggregator **out);
/* clipping_factory with a fixed clipping_norm (> 0, finite): every client's
 * value is scaled to global L2 norm <= clipping_norm before inner aggregates
 * it. Measurements: clipping (inner's), clipping_norm, clipped_count. Takes
 * inner (even on failure). */
FM_EXTERN int fm_aggregator_create_clipping(double clipping_norm, fm_aggregator *inner, fm_aggregator **out);
/* A quantile estimate of the clients' norms, as
 * PrivateQuantileEstimationProcess.no_noise: C starts at initial_estimate and
 * after each round C <- C * exp(-learning_rate * (b - target_quantile)),
 * b = the fraction of clients whose norm was <= C. The norm an adaptive
 * aggregator applies is multiplier * C + increment. */
typedef struct fm_quantile_estimate {
  double initial_estimate, target_quantile, learning_rate, multiplier, increment;
} fm_quantile_estimate;
/* no_noise(initial_estimate, target_quantile, learning_rate) with multiplier 1, increment 0. */
FM_EXTERN fm_quantile_estimate fm_quantile_estimate_no_noise(double initial_estimate, double target_quantile,
                                                             double learning_rate);
/* clipping_factory with an adaptive clipping_norm (the estimate of q). */
FM_EXTERN int fm_aggregator_create_clipping_adaptive(const fm_quantile_estimate *q, fm_aggregator *inner,
                                                     fm_aggregator **out);
/* zeroing_factory: a client whose value's global norm (norm_order 1, 2 or
 * INFINITY) exceeds zeroing_norm contributes zeros (its weight stays).
 * Measurements: zeroing (inner's), zeroing_norm, zeroed_count. Takes inner. */
FM_EXTERN int fm_aggregator_create_zeroing(double zeroing_norm, double norm_order, fm_aggregator *inner,
                                           fm_aggregator **out);
FM_EXTERN int fm_aggregator_create_zeroing_adaptive(const fm_quantile_estimate *q, double norm_order,
                                                    fm_aggregator *inner, fm_aggregator **out);
/* SumFactory. */
FM_EXTERN int fm_aggregator_create_sum(fm_aggregator **out);
/* tff.learning.robust_aggregator(zeroing, clipping, weighted) with TFF's
 * defaults: zeroing(no_noise(10, 0.98, ln 10, multiplier 2, increment 1),
 * norm inf) over clipping(no_noise(1, 0.8, 0.2)) over mean. */
FM_EXTERN int fm_aggregator_create_robust(int zeroing, int clipping, int weighted, fm_aggregator **out);
/* DifferentiallyPrivateFactory.gaussian_fixed: each client's value clipped
 * to L2 norm clip, summed, N(0, (clip z)^2) added per coordinate on rank 0
 * (Philox keyed by (seed, round)), divided by clients_per_round. Unweighted. */
FM_EXTERN int fm_aggregator_create_dp_gaussian_fixed(double noise_multiplier, uint64_t clients_per_round, double clip,
                                                     fm_aggregator **out);
/* gaussian_adaptive's options; fm_dp_adaptive_defaults gives TFF's:
 * 0.1, 0.5, 0.2 and 0.05 * clients_per_round. */
typedef struct fm_dp_adaptive {
  double initial_l2_norm_clip, target_unclipped_quantile, learning_rate, clipped_count_stddev;
} fm_dp_adaptive;
FM_EXTERN fm_dp_adaptive fm_dp_adaptive_defaults(uint64_t clients_per_round);
/* DifferentiallyPrivateFactory.gaussian_adaptive: the clip follows the
 * noised unclipped fraction; noise_multiplier is the effective total, split
 * as z^-2 = z_v^-2 + (2 clipped_count_stddev)^-2 (FM_ERR_HPARAM_VALUE when
 * z >= 2 clipped_count_stddev). opt NULL: TFF's defaults. */
FM_EXTERN int fm_aggregator_create_dp_gaussian_adaptive(double noise_multiplier, uint64_t clients_per_round,
                                                        const fm_dp_adaptive *opt, fm_aggregator **out);
/* DifferentiallyPrivateFactory.tree_aggregation (DP-FTRL): each client's
 * value clipped to l2_norm_clip and summed; the result adds the residual of a
 * binary tree's cumulative noise (stddev l2_norm_clip * z per node, Philox on
 * rank 0), N_t - N_{t-1}, then divides by clients_per_round. use_efficient:
 * Honaker's estimator (TFF's default). Unweighted. A tree holds 2^20 - 1
 * rounds. See docs/privacy.md. */
FM_EXTERN int fm_aggregator_create_dp_tree_aggregation(double noise_multiplier, uint64_t clients_per_round,
                                                       double l2_norm_clip, int use_efficient, fm_aggregator **out);
/* tree_adaptive's options; fm_dp_tree_adaptive_defaults gives TFF's: 0.1,
 * 128, 1024, 0.5, 0.2 and clients_per_round / 20. */
typedef struct fm_dp_tree_adaptive {
  double initial_l2_norm_clip;
  uint64_t restart_warmup, restart_frequency;
  double target_unclipped_quantile, clip_learning_rate, clipped_count_stddev;
} fm_dp_tree_adaptive;
FM_EXTERN fm_dp_tree_adaptive fm_dp_tree_adaptive_defaults(uint64_t clients_per_round);
/* DifferentiallyPrivateFactory.tree_adaptive: tree aggregation whose clip
 * follows a quantile estimate (its own noised tree) and is adopted when the
 * tree restarts, after restart_warmup rounds and then every
 * restart_frequency. noise_multiplier is the effective total, split as for
 * gaussian_adaptive. opt NULL: TFF's defaults. */
FM_EXTERN int fm_aggregator_create_dp_tree_adaptive(double noise_multiplier, uint64_t clients_per_round,
                                                    const fm_dp_tree_adaptive *opt, fm_aggregator **out);
/* 1 if the chain's DP aggregator is a tree (its restarts: warmup and
 * frequency, 0 for none), else 0. */
FM_EXTERN int fm_aggregator_dp_tree(const fm_aggregator *a, uint64_t *restart_warmup, uint64_t *restart_frequency);
/* tff.learning.dp_aggregator(noise_multiplier, clients_per_round, zeroing). */
FM_EXTERN int fm_aggregator_create_dp(double noise_multiplier, uint64_t clients_per_round, int zeroing,
                                      fm_aggregator **out);
/* TFF's secure mean: MeanFactory (weighted) / UnweightedMeanFactory with
 * value_sum_factory=SecureSumFactory(upper, lower) and the weight sum through
 * SecureSumFactory(2^20 - 1, 0) (the count through SecureSumFactory(1, 0)).
 * upper_estimate NULL: fixed bounds [lower_bound_threshold,
 * upper_bound_threshold] (upper > lower, both finite); otherwise adaptive
 * bounds [-t, t], t = multiplier * C + increment, C tracking the clients'
 * max |w * v| (TFF's secure estimation). masks: SecAgg+ pairwise masks over
 * the cohort (the result is bit-identical to unmasked). See
 * docs/secure-aggregation.md. */
FM_EXTERN int fm_aggregator_create_secure_mean(double upper_bound_threshold, double lower_bound_threshold,
                                               const fm_quantile_estimate *upper_estimate, int weighted, int masks,
                                               fm_aggregator **out);
/* tff.learning.secure_aggregator(zeroing, clipping, weighted): zeroing and
 * clipping as robust_aggregator's around a secure mean with the adaptive upper
 * bound no_noise(initial_estimate=50, target_quantile=0.95, learning_rate=1,
 * multiplier=2). */
FM_EXTERN int fm_aggregator_create_secure(int zeroing, int clipping, int weighted, fm_aggregator **out);
/* An aggregator chain from its text, e.g. "zeroing(clipping(mean, clipping_norm=0.5))"
 * or "dp_aggregator(noise_multiplier=1.0, clients_per_round=10)"; the grammar
 * is in docs/privacy.md. FM_ERR_CONFIG / FM_ERR_HPARAM_VALUE naming the problem. */
FM_EXTERN int fm_aggregator_create_from_spec(const char *spec, fm_aggregator **out);
/* The chain's DP aggregator's effective noise multiplier and
 * clients_per_round: 1 if it has one, else 0. */
FM_EXTERN int fm_aggregator_dp_params(const fm_aggregator *a, double *noise_multiplier, uint64_t *clients_per_round);
/* The value noise multiplier a DP aggregator applies (gaussian_adaptive: z_v), 0 without DP. */
FM_EXTERN double fm_aggregator_value_noise_multiplier(const fm_aggregator *a);
/* FM_OK if a round of cohort_size clients may run (a DP aggregator's
 * clients_per_round must match), else FM_ERR_HPARAM_VALUE with the reason. */
FM_EXTERN int fm_aggregator_check_cohort_size(const fm_aggregator *a, size_t cohort_size);
/* An aggregator on its own, as tff.templates.AggregationProcess over values
 * of n floats: create = initialize (state from the aggregator's defaults,
 * random streams keyed by seed), next = one round over k clients' values
 * (weights NULL: all 1) into out (n doubles), with the measurements under
 * "aggregator" when measurements is not NULL. agg is borrowed and must
 * outlive it. Serial; the learning process runs the same code per round. */
typedef struct fm_aggregation_process fm_aggregation_process;
FM_EXTERN int fm_aggregation_process_create(const fm_aggregator *agg, size_t n, uint64_t seed,
                                            fm_aggregation_process **out);
FM_EXTERN int fm_aggregation_process_next(fm_aggregation_process *ap, const float *const *values,
                                          const float *weights, size_t k, double *out, fm_metrics *measurements);
/* The state's doubles (the chain's adaptive norms, outermost first). */
FM_EXTERN size_t fm_aggregation_process_state(const fm_aggregation_process *ap, const double **state);
FM_EXTERN void fm_aggregation_process_destroy(fm_aggregation_process **ap);
/* Whether the aggregator takes the clients' weights (a wrapper: its inner's). */
FM_EXTERN int fm_aggregator_is_weighted(const fm_aggregator *a);
/* The aggregator a wraps, or NULL. */
FM_EXTERN const fm_aggregator *fm_aggregator_inner(const fm_aggregator *a);
FM_EXTERN const char *fm_aggregator_name(const fm_aggregator *a);
FM_EXTERN void fm_aggregator_destroy(fm_aggregator **a);

/* build_apply_optimizer_finalizer: server optimizer over the trainable part of
 * weights_layout (copied). Takes ownership of server_opt (even on failure). */
FM_EXTERN int fm_finalizer_create_apply_optimizer(fm_optimizer *server_opt, const fm_layout *weights_layout,
                                                  fm_finalizer **out);
FM_EXTERN void fm_finalizer_destroy(fm_finalizer **f);

/* ---- the composed process ------------------------------------------------ */

typedef struct fm_process fm_process;
typedef struct fm_state fm_state;

/* compose_learning_process. Takes ownership of cw, agg and fin (even on
 * failure); model is borrowed. Validation, each with its own code:
 *   FM_ERR_MISSING_STAGE   a stage is NULL
 *   FM_ERR_LAYOUT_MISMATCH the finalizer's weights layout is not the model's
 *   FM_ERR_NOT_WEIGHTED    an unweighted aggregator with NUM_EXAMPLES weighting */
FM_EXTERN int fm_process_compose(const fm_model *model, fm_client_work *cw, fm_aggregator *agg, fm_finalizer *fin,
                                 fm_process **out);
/* The registered algorithms (fedavg, fedprox, fedsgd, mime_lite, scaffold,
 * fednova): what --algorithm accepts. */
typedef struct fm_algorithm_desc {
  const char *name;     /* "fedprox" */
  const char *tff_name; /* the TFF builder it follows */
  const char *help;
  const char *hparam;   /* its hyperparameter ("proximal_strength"), or NULL */
  int needs_client_optimizer;
  int needs_shard_assignment; /* per-client state on the owning rank */
} fm_algorithm_desc;
FM_EXTERN size_t fm_algorithm_count(void);
/* FM_ERR_INVALID_ARG for i >= fm_algorithm_count(). */
FM_EXTERN int fm_algorithm_info(size_t i, fm_algorithm_desc *out);

/* Any registered algorithm by name: its client work (client_opt taken; NULL
 * for an algorithm without one), the apply-optimizer finalizer (server_opt
 * taken) and agg (taken; NULL = mean, or unweighted mean with UNIFORM
 * weighting), composed. hparams (may be NULL) holds the algorithm's own
 * hyperparameter by its TFF name. FM_ERR_INVALID_ARG for an unknown name,
 * FM_ERR_HPARAM_UNKNOWN for a key the algorithm does not have. */
FM_EXTERN int fm_process_create(const fm_model *model, const char *algorithm, const fm_hparams *hparams,
                                fm_optimizer *client_opt, fm_optimizer *server_opt, fm_weighting weighting,
                                fm_aggregator *agg, fm_process **out);

/* build_weighted_fed_avg: client_opt and server_opt are taken (even on
 * failure); agg NULL means MeanFactory (taken otherwise). */
FM_EXTERN int fm_process_create_weighted_fed_avg(const fm_model *model, fm_optimizer *client_opt, fm_optimizer *server_opt,
                                        fm_weighting weighting, fm_aggregator *agg, fm_process **out);
/* build_unweighted_fed_avg: UNIFORM weighting, UnweightedMeanFactory by default. */
FM_EXTERN int fm_process_create_unweighted_fed_avg(const fm_model *model, fm_optimizer *client_opt,
                                          fm_optimizer *server_opt, fm_aggregator *agg, fm_process **out);
/* The other algorithms, same conventions (optimizers and agg taken; agg
 * NULL = weighted mean, or unweighted mean with UNIFORM weighting). */
FM_EXTERN int fm_process_create_fed_prox(const fm_model *model, double proximal_strength, fm_optimizer *client_opt,
                                fm_optimizer *server_opt, fm_weighting weighting, fm_aggregator *agg, fm_process **out);
FM_EXTERN int fm_process_create_fed_sgd(const fm_model *model, fm_optimizer *server_opt, fm_weighting weighting,
                               fm_aggregator *agg, fm_process **out);
FM_EXTERN int fm_process_create_mime_lite(const fm_model *model, fm_optimizer *base_opt, fm_optimizer *server_opt,
                                 fm_weighting weighting, fm_aggregator *agg, fm_process **out);
FM_EXTERN int fm_process_create_scaffold(const fm_model *model, fm_optimizer *client_opt, fm_optimizer *server_opt,
                                fm_weighting weighting, fm_aggregator *agg, fm_process **out);
FM_EXTERN int fm_process_create_fed_nova(const fm_model *model, fm_optimizer *client_opt, fm_optimizer *server_opt,
                                fm_weighting weighting, fm_aggregator *agg, fm_process **out);
FM_EXTERN void fm_process_destroy(fm_process **p);

/* ---- the metrics aggregator (TFF's metrics_aggregator argument) ------------
 * sum_then_finalize (the default): the unfinalized metrics are summed
 * exactly in the clear. secure_sum_then_finalize: each client's unfinalized
 * values are clipped to a range and encoded as SecureSumFactory does (float
 * metrics quantised onto [0, 2^32 - 1], integer metrics (num_examples,
 * num_batches) shifted by the lower bound), summed as integers mod 2^B and
 * decoded on rank 0 before the finalizers run; the report adds
 * client_work/train/secure_sum_measurements/<lower>/<upper>/<dtype>/
 * secure_{upper,lower}_{clipped_count,threshold} per group of values sharing
 * a range and dtype, as TFF's secure_sum_then_finalize. The default range is
 * TFF's [0, 2^20 - 1] (integer metrics use [ceil(lower), floor(upper)]). */
#define FM_SECURE_METRICS_LOWER 0.0
#define FM_SECURE_METRICS_UPPER 1048575.0
typedef struct fm_metric_value_range {
  const char *metric; /* a metric's name (its every value), or NULL / "" for every metric without its own */
  double lower, upper;
} fm_metric_value_range;
/* Switch p to secure_sum_then_finalize with these ranges (none: the
 * defaults). Call between rounds, never during one. FM_ERR_HPARAM_VALUE for a
 * range that is not finite, has lower >= upper, or holds no integer for an
 * integer metric; FM_ERR_HPARAM_UNKNOWN for a metric the model does not have. */
FM_EXTERN int fm_process_set_secure_metrics(fm_process *p, const fm_metric_value_range *ranges, size_t num_ranges);
/* Back to sum_then_finalize. */
FM_EXTERN int fm_process_set_sum_then_finalize(fm_process *p);
/* The metrics aggregator by its text: "sum_then_finalize", or
 * "secure_sum_then_finalize" with optional ranges, e.g.
 * "secure_sum_then_finalize(lower=0, upper=1e6, loss=range(lower=0, upper=100))"
 * (lower= / upper= set the default range; <metric>=range(lower=, upper=) one
 * metric's). FM_ERR_CONFIG for text it does not understand. */
FM_EXTERN int fm_process_set_metrics_aggregator(fm_process *p, const char *spec);
/* "sum_then_finalize" or "secure_sum_then_finalize". */
FM_EXTERN const char *fm_process_metrics_aggregator(const fm_process *p);
FM_EXTERN const fm_model *fm_process_model(const fm_process *p);

/* initialize: weights from the model's initialiser with seed, server
 * optimizer state initialised, round 0. Not collective (every rank calls it
 * with the same seed and gets the same state). */
FM_EXTERN int fm_process_initialize(const fm_process *p, uint64_t seed, fm_state **out);
FM_EXTERN void fm_state_destroy(fm_state **s);
/* Rounds completed. */
FM_EXTERN uint64_t fm_state_round(const fm_state *s);
FM_EXTERN uint64_t fm_state_seed(const fm_state *s);
/* Borrowed view of the global weights (P floats). */
FM_EXTERN const float *fm_state_weights(const fm_state *s);

FM_EXTERN int fm_process_get_model_weights(const fm_process *p, const fm_state *s, float *w);
FM_EXTERN int fm_process_set_model_weights(const fm_process *p, fm_state *s, const float *w);
/* get_hparams: OrderedDict(client_work=..., finalizer=...). */
FM_EXTERN int fm_process_get_hparams(const fm_process *p, const fm_state *s, fm_hparams *client_work,
                                     fm_hparams *finalizer);
/* set_hparams; either may be NULL (unchanged). Every key validated first. */
FM_EXTERN int fm_process_set_hparams(const fm_process *p, fm_state *s, const fm_hparams *client_work,
                                     const fm_hparams *finalizer);

/* Everything a checkpoint needs to continue a run exactly: a flat view of
 * the state. Pointers are borrowed from the state (export) or read from
 * (import). */
typedef struct fm_state_view {
  uint64_t round;            /* rounds completed */
  uint64_t seed;             /* key of every random stream */
  size_t numel;              /* P */
  const float *weights;      /* (P) global model weights */
  fm_hparams client_hparams; /* client_work state */
  fm_hparams server_hparams; /* finalizer state: server optimizer hparams ... */
  size_t opt_num_slots;      /* ... and its buffers */
  size_t opt_n;              /* T */
  const float *opt_slots;    /* (opt_num_slots, T) */
  int64_t opt_step;
  /* Mime Lite: the base optimizer's global state (0 slots otherwise) */
  size_t base_num_slots;
  const float *base_slots;   /* (base_num_slots, T) */
  int64_t base_step;
  const float *control;      /* SCAFFOLD: server control variate (T), else NULL */
  /* per-client state (SCAFFOLD's c_i), sorted by client index */
  size_t num_clients;
  size_t client_floats;      /* floats per client (T) */
  const uint64_t *client_ids;
  const float *client_values; /* (num_clients, client_floats) */
  /* federated evaluation's total_rounds accumulators (fm_eval_process), if any */
  size_t eval_num_values;
  const fm_exact *eval_sums;
  /* the aggregators' state (adaptive norms, quantile estimates), if any */
  size_t agg_state_n;
  const double *agg_state;
  /* their server-only state (tree aggregation's noise buffers), if any */
  size_t agg_server_n;
  const float *agg_server;
} fm_state_view;

/* Borrowed view of s (valid until s changes), without per-client state. */
FM_EXTERN int fm_state_export(const fm_process *p, const fm_state *s, fm_state_view *out);
/* Collective: the per-client states of every rank, on rank 0, sorted by
 * client (*ids and *values allocated, fm_free them; other ranks get NULL, 0).
 * Put them in a view's client fields to checkpoint the complete state. */
FM_EXTERN int fm_state_gather_clients(const fm_process *p, const fm_state *s, fm_comm *comm, uint64_t **ids,
                                      float **values, size_t *num_clients);
/* Overwrite s from v after checking every size against the process
 * (FM_ERR_STATE_MISMATCH naming the part that differs) and the hparams (as
 * set_hparams). Every per-client state in v is installed: pass only the
 * clients this rank owns. Nothing changes on failure. */
FM_EXTERN int fm_state_import(const fm_process *p, fm_state *s, const fm_state_view *v);

/* How a round's clients are spread over ranks. Either way every rank starts
 * its own clients largest first (threads take them dynamically), and the
 * result is bit-identical: only the time changes. */
typedef enum fm_assignment {
  FM_ASSIGN_SHARD = 0,   /* each client trains on the rank owning its shard (fm_client_owner) */
  FM_ASSIGN_BALANCED = 1 /* longest-processing-time first: clients by examples x epochs, largest
                            first, each to the least-loaded rank (ties: lowest rank), computed
                            identically on every rank. Not for algorithms with per-client state. */
} fm_assignment;

/* Where a round's time went (filled on rank 0 when requested on every rank). */
typedef struct fm_round_stats {
  double wall;          /* the whole next() */
  double distribute;    /* broadcasts */
  double map_wall;      /* client map: slowest rank's wall time */
  double busy_max;      /* client map: busiest rank's summed thread time */
  double busy_min;      /* ... least busy rank's */
  double busy_sum;      /* ... summed over every thread of every rank */
  double reduce;        /* agreement + reduction, waiting included */
  double server;        /* aggregator finalize, finalizer, metrics on rank 0 */
  int ranks, threads;
  double idle_fraction; /* 1 - busy_sum / (ranks * threads * map_wall) */
} fm_round_stats;

/* What one round trains on. */
typedef struct fm_round_input {
  const fm_client_data *data;
  fm_batching batching;
  const uint64_t *cohort;  /* client indices, identical on every rank */
  size_t cohort_size;
  int num_threads;         /* OpenMP threads for the client map; 0 = runtime default */
  fm_assignment assignment;
  fm_round_stats *stats;   /* NULL, or non-NULL on every rank: timing of this round */
  fm_executor *executor;   /* keeps the threads' buffers across rounds; NULL: made for this call */
} fm_round_input;

/* The rank that trains each cohort client under a policy: ranks[i] for
 * cohort[i]. work[i] = examples x epochs is used by FM_ASSIGN_BALANCED.
 * Deterministic; O(k log k + k size). */
FM_EXTERN int fm_assign_clients(fm_assignment policy, const uint64_t *cohort, const uint64_t *work, size_t k,
                                uint64_t population, int size, int *ranks);

/* next(state, client data) -> (state, metrics). Collective on comm: every
 * rank calls it with the same input; each trains the cohort clients that
 * in->assignment gives it (fm_assign_clients: shard owners, or balanced) with
 * num_threads threads on in->executor; rank 0's state is authoritative
 * and the others receive its weights. metrics (may be NULL) are filled on
 * rank 0 with distributor, client_work/train/..., aggregator and
 * finalizer/update_non_finite. Errors are agreed across ranks. */
FM_EXTERN int fm_process_next(const fm_process *p, fm_state *s, const fm_round_input *in, fm_comm *comm,
                              fm_metrics *metrics);

/* ---- sampling, ownership, evaluation ------------------------------------- */

/* Uniform sample of k distinct clients of population, sorted, from
 * fm_rng(seed, round, 0, FM_RNG_SAMPLE). O(k) time and memory.
 * FM_ERR_COHORT if k == 0 or k > population. */
FM_EXTERN int fm_sample_cohort(uint64_t seed, uint64_t round, uint64_t population, size_t k, uint64_t *out);
/* Rank that owns client c: contiguous shards of the sorted population. */
FM_EXTERN int fm_client_owner(uint64_t c, uint64_t population, int size);

/* Evaluate weights w on clients (NULL: all clients of data) with forward passes
 * only (training = 0), batch_size examples at a time, one epoch, no shuffle.
 * Collective; w is read on rank 0 and broadcast (pass fm_state_weights(s):
 * other ranks' copies are a round behind). On rank 0, out gets accuracy, loss, num_examples, num_batches
 * (and the model's other metrics), finalized. */
FM_EXTERN int fm_evaluate(const fm_model *model, const float *w, const fm_client_data *data,
                          const uint64_t *clients, size_t num_clients, size_t batch_size, int num_threads,
                          fm_comm *comm, fm_metrics *out);

/* ---- federated evaluation (build_fed_eval) --------------------------------- */

/* Evaluation as a process: forward passes only, sum_then_finalize with the
 * stateful SumThenFinalizeFactory semantics. Each next() reports
 *   distributor {}, client_work/eval/current_round_metrics/<metric>,
 *   client_work/eval/total_rounds_metrics/<metric>, aggregator {}, finalizer {}
 * where total_rounds sums the unfinalized values of every next() so far
 * (initial values 0). The accumulators live on rank 0. */
typedef struct fm_eval_process fm_eval_process;
FM_EXTERN int fm_eval_process_create(const fm_model *model, fm_eval_process **out);
FM_EXTERN void fm_eval_process_destroy(fm_eval_process **e);
/* Collective. w is read on rank 0 and broadcast; clients NULL = all. */
FM_EXTERN int fm_eval_process_next(fm_eval_process *e, const float *w, const fm_client_data *data,
                                   const uint64_t *clients, size_t num_clients, size_t batch_size, int num_threads,
                                   fm_comm *comm, fm_metrics *out);
/* The total_rounds accumulators (borrowed; n values), for checkpoints. */
FM_EXTERN const fm_exact *fm_eval_process_sums(const fm_eval_process *e, size_t *n);
/* Restore them (n must match the model's unfinalized metric values). */
FM_EXTERN int fm_eval_process_set_sums(fm_eval_process *e, const fm_exact *sums, size_t n);

#ifdef __cplusplus
}
#endif
#endif
