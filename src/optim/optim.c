/* src/optim/optim.c — the optimizer object (type + TFF-named hparams +
 * construction options), its state buffers, checked dispatch, the registry
 * by type name and the helpers the update rules share (defaults tables, TFF's
 * range checks). The update rules themselves live one per file (sgdm.c,
 * adam.c, adamw.c, adagrad.c, yogi.c, rmsprop.c); learning-rate schedules are
 * in schedule.c. This file does no arithmetic on weights. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fedmpi/optim.h"
#include "internal.h"
#include "optim_impl.h"

struct fm_optimizer {
  const fm_optimizer_ops *ops;
  fm_hparams hp;   /* TFF's hparams: what get_hparams/set_hparams see */
  fm_hparams opts; /* construction options (initial_preconditioner_value): state init only */
};

typedef struct fm__optim_entry {
  const char *name;
  const fm_optimizer_ops *ops;
  /* Fill hp (and the options) with the type's TFF defaults given what the user passed. */
  fm__optim_defaults_fn defaults;
} fm__optim_entry;

static const fm__optim_entry fm__optim_registry[] = {
    {"sgdm", &fm__sgdm_ops, fm__sgdm_defaults},       {"sgd", &fm__sgdm_ops, fm__sgdm_defaults},
    {"adam", &fm__adam_ops, fm__adam_defaults},       {"adamw", &fm__adamw_ops, fm__adamw_defaults},
    {"adagrad", &fm__adagrad_ops, fm__adagrad_defaults}, {"yogi", &fm__yogi_ops, fm__yogi_defaults},
    {"rmsprop", &fm__rmsprop_ops, fm__rmsprop_defaults},
};
#define FM__NUM_OPTIM (sizeof fm__optim_registry / sizeof fm__optim_registry[0])

const char *fm_optimizer_type_name(size_t i) { return i < FM__NUM_OPTIM ? fm__optim_registry[i].name : NULL; }

static int fm__optim_validate_all(const fm_optimizer_ops *ops, const fm_optimizer *o, const fm_hparams *hp) {
  for (size_t i = 0; i < hp->n; i++) {
    FM_CHECK(isfinite(hp->item[i].value), FM_ERR_HPARAM_VALUE, "%s: hyperparameter '%s' must be finite",
             ops->type, hp->item[i].name);
    if (ops->validate) FM_CALL(ops->validate(o, hp->item[i].name, hp->item[i].value));
  }
  return FM_OK;
}

static int fm__optimizer_new(const fm_optimizer_ops *ops, const fm_hparams *hp, const fm_hparams *opts,
                             fm_optimizer **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  FM_CHECK(ops && ops->type && ops->step && ops->num_slots, FM_ERR_INVALID_ARG,
           "optimizer vtable needs type, num_slots and step");
  fm_optimizer *o = fm__calloc(1, sizeof *o);
  if (!o) return FM_ERR_NOMEM;
  o->ops = ops;
  if (hp) o->hp = *hp;
  if (opts) o->opts = *opts;
  int rc = fm__optim_validate_all(ops, o, &o->hp);
  if (rc == FM_OK) rc = fm__optim_validate_all(ops, o, &o->opts);
  if (rc != FM_OK) {
    fm__free(o);
    return rc;
  }
  *out = o;
  return FM_OK;
}

int fm_optimizer_create_custom(const fm_optimizer_ops *ops, const fm_hparams *hp, fm_optimizer **out) {
  return fm__optimizer_new(ops, hp, NULL, out);
}

int fm_optimizer_create(const char *type, const fm_hparams *user, fm_optimizer **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  FM_CHECK(type, FM_ERR_INVALID_ARG, "optimizer type is NULL");
  for (size_t i = 0; i < FM__NUM_OPTIM; i++) {
    if (strcmp(type, fm__optim_registry[i].name) != 0) continue;
    fm_hparams empty = {0}, hp = {0}, opts = {0};
    FM_CALL(fm__optim_registry[i].defaults(user ? user : &empty, &hp, &opts));
    return fm__optimizer_new(fm__optim_registry[i].ops, &hp, &opts, out);
  }
  char known[256] = "";
  for (size_t i = 0; i < FM__NUM_OPTIM; i++) {
    strncat(known, fm__optim_registry[i].name, sizeof known - strlen(known) - 3);
    if (i + 1 < FM__NUM_OPTIM) strcat(known, ", ");
  }
  return FM_ERR(FM_ERR_UNKNOWN_TYPE, "unknown optimizer type '%s' (known: %s)", type, known);
}

int fm_optimizer_clone(const fm_optimizer *o, fm_optimizer **out) {
  FM_CHECK(o && out, FM_ERR_INVALID_ARG, "NULL argument");
  return fm__optimizer_new(o->ops, &o->hp, &o->opts, out);
}

void fm_optimizer_destroy(fm_optimizer **o) {
  if (!o || !*o) return;
  fm__free(*o);
  *o = NULL;
}

const char *fm_optimizer_type(const fm_optimizer *o) { return o->ops->type; }

void fm_optimizer_get_hparams(const fm_optimizer *o, fm_hparams *out) { *out = o->hp; }

void fm_optimizer_get_options(const fm_optimizer *o, fm_hparams *out) { *out = o->opts; }

int fm_optimizer_set_hparams(fm_optimizer *o, const fm_hparams *hp) {
  FM_CHECK(o && hp, FM_ERR_INVALID_ARG, "NULL argument");
  for (size_t i = 0; i < hp->n; i++) {
    FM_CHECK(!fm_hparams_has(&o->opts, hp->item[i].name), FM_ERR_HPARAM_UNKNOWN,
             "optimizer '%s': '%s' is not a hyperparameter but a construction option (it sets the initial state)",
             o->ops->type, hp->item[i].name);
    FM_CHECK(fm_hparams_has(&o->hp, hp->item[i].name), FM_ERR_HPARAM_UNKNOWN,
             "optimizer '%s' has no hyperparameter '%s'", o->ops->type, hp->item[i].name);
  }
  FM_CALL(fm__optim_validate_all(o->ops, o, hp));
  for (size_t i = 0; i < hp->n; i++) FM_CALL(fm_hparams_put(&o->hp, hp->item[i].name, hp->item[i].value));
  return FM_OK;
}

double fm_optimizer_hparam(const fm_optimizer *o, const char *key) {
  double v = NAN;
  if (fm_hparams_get(&o->hp, key, &v) != FM_OK) return NAN;
  return v;
}

int fm_optimizer_state_init(const fm_optimizer *o, size_t n, fm_optimizer_state *s) {
  FM_CHECK(o && s, FM_ERR_INVALID_ARG, "NULL argument");
  s->n = n;
  s->num_slots = o->ops->num_slots(o);
  s->step = 0;
  s->slots = NULL;
  if (s->num_slots) {
    s->slots = fm__calloc(s->num_slots * n, sizeof(float));
    if (!s->slots) return FM_ERR_NOMEM;
  }
  if (o->ops->init_state) return o->ops->init_state(o, s);
  return FM_OK;
}

int fm_optimizer_state_reset(const fm_optimizer *o, fm_optimizer_state *s) {
  FM_CHECK(o->ops->num_slots(o) == s->num_slots, FM_ERR_STATE_MISMATCH,
           "optimizer state has %zu buffers, optimizer '%s' needs %zu", s->num_slots, o->ops->type,
           o->ops->num_slots(o));
  if (s->num_slots) memset(s->slots, 0, s->num_slots * s->n * sizeof(float));
  s->step = 0;
  if (o->ops->init_state) return o->ops->init_state(o, s);
  return FM_OK;
}

void fm_optimizer_state_free(fm_optimizer_state *s) {
  if (!s) return;
  fm__free(s->slots);
  s->slots = NULL;
  s->n = s->num_slots = 0;
}

int fm_optimizer_step(const fm_optimizer *o, fm_optimizer_state *s, float *w, const float *g, size_t n) {
  FM_CHECK(s->n == n, FM_ERR_STATE_MISMATCH, "optimizer state is for %zu parameters, step given %zu", s->n, n);
  return o->ops->step(o, s, w, g, n);
}

/* Accessors for implementations (optim_impl.h). */
const fm_hparams *fm__optimizer_hp(const fm_optimizer *o) { return &o->hp; }
const fm_hparams *fm__optimizer_options(const fm_optimizer *o) { return &o->opts; }

/* "learning_rate, beta_1, ..." for messages. */
static void fm__spec_keys(const fm__hp_spec *spec, size_t nspec, char *buf, size_t cap) {
  buf[0] = '\0';
  for (size_t i = 0; i < nspec; i++) {
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", spec[i].key);
  }
}

int fm__optim_unknown_key(const char *type, const fm__hp_spec *spec, size_t nspec, const char *key) {
  char keys[256];
  fm__spec_keys(spec, nspec, keys, sizeof keys);
  return FM_ERR(FM_ERR_HPARAM_UNKNOWN, "%s has no hyperparameter '%s' (it takes %s)", type, key, keys);
}

int fm__optim_fill(const char *type, const fm__hp_spec *spec, size_t nspec, const fm_hparams *user, fm_hparams *hp,
                   fm_hparams *opts) {
  for (size_t i = 0; i < user->n; i++) {
    size_t j = 0;
    while (j < nspec && strcmp(user->item[i].name, spec[j].key) != 0) j++;
    if (j == nspec) return fm__optim_unknown_key(type, spec, nspec, user->item[i].name);
  }
  fm_hparams_clear(hp);
  fm_hparams_clear(opts);
  for (size_t j = 0; j < nspec; j++) {
    double v = spec[j].def;
    if (fm_hparams_has(user, spec[j].key)) fm_hparams_get(user, spec[j].key, &v);
    FM_CALL(fm_hparams_put(spec[j].option ? opts : hp, spec[j].key, v));
  }
  return FM_OK;
}

int fm__check_nonneg(const char *type, const char *key, double value) {
  FM_CHECK(value >= 0.0, FM_ERR_HPARAM_VALUE, "%s: %s must be nonnegative, got %g", type, key, value);
  return FM_OK;
}

int fm__check_unit(const char *type, const char *key, double value) {
  FM_CHECK(value >= 0.0 && value <= 1.0, FM_ERR_HPARAM_VALUE, "%s: %s must be in [0, 1], got %g", type, key, value);
  return FM_OK;
}
