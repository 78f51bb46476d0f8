/* fedmpi/schedule.h — learning-rate schedules by round.
 *
 * A schedule is a plain struct: a type, the base learning rate it scales and
 * the type's parameters. fm_schedule_value(s, r) is the learning rate of
 * round r, with rounds counted from 0 as in TFF: the round that runs when
 * fm_state_round(state) == r uses value(r). That is TFF's convention in
 * build_weighted_fed_avg_with_optimizer_schedule (client_learning_rate_fn(
 * round_num), round_num starting at 0) and in schedule_learning_rate (fn(0)
 * at initialize, fn(i) after the i-th next).
 *
 * With W = warmup rounds (any type, default 0) and r' = r - W:
 *   r <  W:  base_lr * (r + 1) / (W + 1)      linear warmup, never 0
 *   r >= W:  base_lr * decay(r')              the decay starts after warmup
 * decay(r'):
 *   constant       1
 *   step           gamma^floor(r' / every)                    (staircase)
 *   exp            gamma^(r' / every)    (Keras ExponentialDecay, not staircase)
 *   inverse_sqrt   1 / sqrt(1 + r' / timescale)   timescale defaults to
 *                  max(W, 1); with a warmup that is base_lr*sqrt(W / r)
 *                  for r >= W (the fairseq/Transformer schedule)
 *   cosine         (1 - alpha) * 0.5 * (1 + cos(pi * min(r', rounds) / rounds)) + alpha
 *                  (Keras CosineDecay: alpha is the final fraction)
 *
 * Spec strings ("TYPE" or "TYPE:key=value,key=value"):
 *   "constant"                      "constant:warmup=5"
 *   "step:gamma=0.5,every=10"       every is required, gamma defaults to 0.1
 *   "exp:gamma=0.99"                gamma is required, every defaults to 1
 *   "inverse_sqrt", "inverse_sqrt:warmup=10", "inverse_sqrt:timescale=50"
 *   "cosine:rounds=100,alpha=0.1"   rounds is required, alpha defaults to 0
 * "exponential" is accepted for "exp". Values are computed in double; an
 * optimizer rounds its learning rate to float32 when it steps. */
#ifndef FEDMPI_SCHEDULE_H
#define FEDMPI_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/export.h"
#include "fedmpi/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fm_schedule_type {
  FM_SCHEDULE_CONSTANT = 0,
  FM_SCHEDULE_STEP,
  FM_SCHEDULE_EXP,
  FM_SCHEDULE_INVERSE_SQRT,
  FM_SCHEDULE_COSINE
} fm_schedule_type;

typedef struct fm_schedule {
  fm_schedule_type type;
  double base_lr;    /* the learning rate the schedule scales (>= 0) */
  double gamma;      /* step, exp: factor per `every` rounds (> 0) */
  uint64_t every;    /* step, exp: rounds per factor gamma (>= 1) */
  double timescale;  /* inverse_sqrt: rounds to fall by sqrt(2) (> 0; 0 = max(warmup, 1)) */
  uint64_t rounds;   /* cosine: rounds of decay (>= 1); alpha from then on */
  double alpha;      /* cosine: final fraction of base_lr, in [0, 1] */
  uint64_t warmup;   /* any type: rounds of linear warmup before the decay starts */
} fm_schedule;

/* The constant schedule at lr (no warmup). */
FM_EXTERN fm_schedule fm_schedule_constant(double lr);
/* Parse a spec string for base learning rate base_lr. FM_ERR_INVALID_ARG
 * naming the bad text (unknown type or key, bad or missing value, a
 * duplicated key); *out is untouched on error. NULL or "" = "constant". */
FM_EXTERN int fm_schedule_parse(const char *spec, double base_lr, fm_schedule *out);
/* Check a schedule built by hand (the same rules as parse). */
FM_EXTERN int fm_schedule_check(const fm_schedule *s);
/* The learning rate of round `round` (0-based). */
FM_EXTERN double fm_schedule_value(const fm_schedule *s, uint64_t round);
/* The canonical spec string (parse(format(s)) gives s back, base_lr aside).
 * FM_ERR_INVALID_ARG if buf is too small. */
FM_EXTERN int fm_schedule_format(const fm_schedule *s, char *buf, size_t cap);
/* Set o's "learning_rate" to fm_schedule_value(s, round) (validated as any
 * set_hparams). FM_ERR_HPARAM_UNKNOWN if o has no learning_rate (TFF's
 * KeyError in schedule_learning_rate). */
FM_EXTERN int fm_schedule_apply(const fm_schedule *s, uint64_t round, fm_optimizer *o);

#ifdef __cplusplus
}
#endif
#endif
