/* fedmpi/optim.h — optimizers, TFF style (tff.learning.optimizers).
 *
 * An optimizer is its type plus hyperparameters, readable and settable by
 * TFF's key names. Its state (moments, step counter) is a separate object in
 * the weights layout's trainable prefix, so a client re-initialises it every
 * round while the server's persists. Update rules follow TFF exactly, in
 * float32 and in TFF's order of operations (docs/optimizers.md has the table):
 *   sgdm:    momentum = 0: w -= lr*g;  else v = m*v + g; w -= lr*v
 *   adam:    t += 1; m += (g-m)(1-b1); s += (g^2-s)(1-b2);
 *            lr_t = lr*sqrt(1-b2^t)/(1-b1^t); w -= lr_t*m/(sqrt(s)+eps)
 *   adamw:   as adam, but w -= lr*(sqrt(1-b2^t)/(1-b1^t)*m/(sqrt(s)+eps) + wd*w)
 *   adagrad: s += g^2; w -= lr*g/sqrt(s+eps)             (s starts at 0.1)
 *   yogi:    m as adam; s += (1-b2)*sign(g^2-s)*g^2; w -= lr_t*m/(sqrt(s)+eps)
 *            (s starts at 1e-6)
 *   rmsprop: s += (g^2-s)(1-decay); w -= lr*g/(sqrt(s)+eps)
 * State slots, in order: sgdm [accumulator (only with momentum)]; adam,
 * adamw, yogi [accumulator m, preconditioner s]; adagrad, rmsprop
 * [preconditioner s]. fm_optimizer_state.step is TFF's step counter t (every
 * type counts its steps there). */
#ifndef FEDMPI_OPTIM_H
#define FEDMPI_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/export.h"
#include "fedmpi/hparams.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_optimizer fm_optimizer;

/* Optimizer state over n parameters: num_slots buffers of n floats, stored
 * one after another in slots, plus a step counter. */
typedef struct fm_optimizer_state {
  size_t n;
  size_t num_slots;
  float *slots;  /* (num_slots, n) */
  int64_t step;
} fm_optimizer_state;

typedef struct fm_optimizer_ops {
  const char *type;
  /* Buffers of n floats the state needs (may depend on hparams, e.g. momentum > 0). */
  size_t (*num_slots)(const fm_optimizer *o);
  /* Set the initial state values (slots already zeroed; step = 0). */
  int (*init_state)(const fm_optimizer *o, fm_optimizer_state *s);
  /* One step: w (n) updated in place from gradient g (n). */
  int (*step)(const fm_optimizer *o, fm_optimizer_state *s, float *w, const float *g, size_t n);
  /* Check one hyperparameter value; FM_ERR_HPARAM_VALUE with a message. */
  int (*validate)(const fm_optimizer *o, const char *key, double value);
} fm_optimizer_ops;

/* SGD with optional momentum, as build_sgdm: learning_rate >= 0, momentum in
 * [0, 1]. The hparams hold "momentum" only when momentum > 0 (as TFF). */
FM_EXTERN int fm_optimizer_create_sgdm(double learning_rate, double momentum, fm_optimizer **out);
/* The other TFF builders, arguments in TFF's order. The values are checked
 * as TFF does (FM_ERR_HPARAM_VALUE naming the optimizer, key and value).
 * initial_preconditioner_value is a construction option, not a
 * hyperparameter: it sets the initial state and get_hparams does not list it. */
FM_EXTERN int fm_optimizer_create_adam(double learning_rate, double beta_1, double beta_2, double epsilon,
                                       fm_optimizer **out);
FM_EXTERN int fm_optimizer_create_adamw(double learning_rate, double beta_1, double beta_2, double epsilon,
                                        double weight_decay, fm_optimizer **out);
FM_EXTERN int fm_optimizer_create_adagrad(double learning_rate, double initial_preconditioner_value, double epsilon,
                                          fm_optimizer **out);
FM_EXTERN int fm_optimizer_create_yogi(double learning_rate, double beta_1, double beta_2, double epsilon,
                                       double initial_preconditioner_value, fm_optimizer **out);
FM_EXTERN int fm_optimizer_create_rmsprop(double learning_rate, double decay, double epsilon, fm_optimizer **out);
/* Create by type name ("sgdm" or "sgd", "adam", "adamw", "adagrad", "yogi",
 * "rmsprop") with hparams. Missing keys take TFF's defaults; TFF requires a
 * learning_rate for all but sgdm, and fedmpi then uses 0.001 (adam, adamw,
 * adagrad, rmsprop: Keras' defaults) or 0.01 (yogi: TF Addons' default).
 * hp may also hold the type's construction options
 * ("initial_preconditioner_value" for adagrad and yogi). A key the type does
 * not have -> FM_ERR_HPARAM_UNKNOWN; an invalid value ->
 * FM_ERR_HPARAM_VALUE; unknown type -> FM_ERR_UNKNOWN_TYPE. */
FM_EXTERN int fm_optimizer_create(const char *type, const fm_hparams *hp, fm_optimizer **out);
/* Create from a custom vtable and its initial hparams (each validated). */
FM_EXTERN int fm_optimizer_create_custom(const fm_optimizer_ops *ops, const fm_hparams *hp, fm_optimizer **out);
FM_EXTERN int fm_optimizer_clone(const fm_optimizer *o, fm_optimizer **out);
FM_EXTERN void fm_optimizer_destroy(fm_optimizer **o);

FM_EXTERN const char *fm_optimizer_type(const fm_optimizer *o);
/* Copy of the hyperparameters, TFF key names. */
FM_EXTERN void fm_optimizer_get_hparams(const fm_optimizer *o, fm_hparams *out);
/* Set every key in hp (all validated first; nothing changes on error).
 * FM_ERR_HPARAM_UNKNOWN names a key the optimizer does not have. */
FM_EXTERN int fm_optimizer_set_hparams(fm_optimizer *o, const fm_hparams *hp);
/* Convenience: one key (NaN if the optimizer has no such hyperparameter). */
FM_EXTERN double fm_optimizer_hparam(const fm_optimizer *o, const char *key);
/* Copy of the construction options that are not hyperparameters, e.g.
 * initial_preconditioner_value (empty for sgdm, adam, adamw, rmsprop). */
FM_EXTERN void fm_optimizer_get_options(const fm_optimizer *o, fm_hparams *out);

/* Allocate and initialise state for n parameters. */
FM_EXTERN int fm_optimizer_state_init(const fm_optimizer *o, size_t n, fm_optimizer_state *s);
/* Back to the initial values without reallocating (same optimizer, same n). */
FM_EXTERN int fm_optimizer_state_reset(const fm_optimizer *o, fm_optimizer_state *s);
FM_EXTERN void fm_optimizer_state_free(fm_optimizer_state *s);
/* One optimizer step, w -= ... (checked dispatch). */
FM_EXTERN int fm_optimizer_step(const fm_optimizer *o, fm_optimizer_state *s, float *w, const float *g, size_t n);

/* Registered optimizer type names, NULL past the end. */
FM_EXTERN const char *fm_optimizer_type_name(size_t i);

#ifdef __cplusplus
}
#endif
#endif
