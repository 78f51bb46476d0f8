/* src/optim/schedule.c — learning-rate schedules by round (constant, step,
 * exp, inverse_sqrt, cosine, each with an optional linear warmup): parsing
 * "TYPE:key=value,..." specs, checking, evaluating and formatting them, and
 * setting an optimizer's learning_rate for a round. The formulas and the
 * 0-based round convention are in include/fedmpi/schedule.h.
 * It keeps no state and does not decide which rounds or which optimizer
 * (client or server) a schedule drives: the caller passes the round. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedmpi/schedule.h"
#include "internal.h"

#define FM__PI 3.14159265358979323846
#define FM__SPEC_MAX 256
/* Integer parameters must be exact in a double. */
#define FM__INT_MAX 9007199254740992.0 /* 2^53 */

enum { K_WARMUP = 1, K_GAMMA = 2, K_EVERY = 4, K_TIMESCALE = 8, K_ROUNDS = 16, K_ALPHA = 32 };

typedef struct fm__sched_type {
  const char *name;
  fm_schedule_type type;
  unsigned keys; /* the keys the type accepts */
} fm__sched_type;

static const fm__sched_type fm__sched_types[] = {
    {"constant", FM_SCHEDULE_CONSTANT, K_WARMUP},
    {"step", FM_SCHEDULE_STEP, K_WARMUP | K_GAMMA | K_EVERY},
    {"exp", FM_SCHEDULE_EXP, K_WARMUP | K_GAMMA | K_EVERY},
    {"exponential", FM_SCHEDULE_EXP, K_WARMUP | K_GAMMA | K_EVERY},
    {"inverse_sqrt", FM_SCHEDULE_INVERSE_SQRT, K_WARMUP | K_TIMESCALE},
    {"cosine", FM_SCHEDULE_COSINE, K_WARMUP | K_ROUNDS | K_ALPHA},
};
#define FM__NUM_SCHED (sizeof fm__sched_types / sizeof fm__sched_types[0])

static const struct {
  const char *name;
  unsigned bit;
  int integer;
} fm__sched_keys[] = {
    {"warmup", K_WARMUP, 1},       {"gamma", K_GAMMA, 0},   {"every", K_EVERY, 1},
    {"timescale", K_TIMESCALE, 0}, {"rounds", K_ROUNDS, 1}, {"alpha", K_ALPHA, 0},
};
#define FM__NUM_KEYS (sizeof fm__sched_keys / sizeof fm__sched_keys[0])

static const char *fm__sched_name(fm_schedule_type t) {
  for (size_t i = 0; i < FM__NUM_SCHED; i++)
    if (fm__sched_types[i].type == t) return fm__sched_types[i].name;
  return "?";
}

fm_schedule fm_schedule_constant(double lr) {
  fm_schedule s;
  memset(&s, 0, sizeof s);
  s.type = FM_SCHEDULE_CONSTANT;
  s.base_lr = lr;
  s.gamma = 1.0;
  s.every = 1;
  s.rounds = 1;
  return s;
}

int fm_schedule_check(const fm_schedule *s) {
  FM_CHECK(s, FM_ERR_INVALID_ARG, "schedule is NULL");
  const char *n = fm__sched_name(s->type);
  FM_CHECK(strcmp(n, "?") != 0, FM_ERR_INVALID_ARG, "unknown schedule type %d", (int)s->type);
  FM_CHECK(isfinite(s->base_lr) && s->base_lr >= 0.0, FM_ERR_INVALID_ARG,
           "%s schedule: the base learning rate must be finite and >= 0, got %g", n, s->base_lr);
  switch (s->type) {
    case FM_SCHEDULE_STEP:
    case FM_SCHEDULE_EXP:
      FM_CHECK(isfinite(s->gamma) && s->gamma > 0.0, FM_ERR_INVALID_ARG,
               "%s schedule: gamma must be finite and > 0, got %g", n, s->gamma);
      FM_CHECK(s->every >= 1, FM_ERR_INVALID_ARG, "%s schedule: every must be >= 1", n);
      break;
    case FM_SCHEDULE_INVERSE_SQRT:
      FM_CHECK(isfinite(s->timescale) && s->timescale >= 0.0, FM_ERR_INVALID_ARG,
               "%s schedule: timescale must be > 0 (0 = the default), got %g", n, s->timescale);
      break;
    case FM_SCHEDULE_COSINE:
      FM_CHECK(s->rounds >= 1, FM_ERR_INVALID_ARG, "%s schedule: rounds must be >= 1", n);
      FM_CHECK(s->alpha >= 0.0 && s->alpha <= 1.0, FM_ERR_INVALID_ARG,
               "%s schedule: alpha must be in [0, 1], got %g", n, s->alpha);
      break;
    case FM_SCHEDULE_CONSTANT:
      break;
  }
  return FM_OK;
}

/* Trim ASCII blanks in place; returns the first non-blank. */
static char *fm__trim(char *p) {
  while (isspace((unsigned char)*p)) p++;
  char *e = p + strlen(p);
  while (e > p && isspace((unsigned char)e[-1])) *--e = '\0';
  return p;
}

static void fm__key_list(unsigned keys, char *buf, size_t cap) {
  buf[0] = '\0';
  for (size_t i = 0; i < FM__NUM_KEYS; i++) {
    if (!(keys & fm__sched_keys[i].bit)) continue;
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", fm__sched_keys[i].name);
  }
}

int fm_schedule_parse(const char *spec, double base_lr, fm_schedule *out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  fm_schedule s = fm_schedule_constant(base_lr);
  if (!spec) spec = "";
  FM_CHECK(strlen(spec) < FM__SPEC_MAX, FM_ERR_INVALID_ARG, "learning-rate schedule '%.40s...' is too long (max %d)",
           spec, FM__SPEC_MAX - 1);
  char buf[FM__SPEC_MAX];
  strcpy(buf, spec);
  char *params = strchr(buf, ':');
  if (params) *params++ = '\0';
  const char *tname = fm__trim(buf);
  if (!*tname && !params) tname = "constant";

  const fm__sched_type *ty = NULL;
  for (size_t i = 0; i < FM__NUM_SCHED; i++)
    if (strcmp(tname, fm__sched_types[i].name) == 0) ty = &fm__sched_types[i];
  FM_CHECK(ty, FM_ERR_INVALID_ARG,
           "learning-rate schedule '%s': unknown type '%s' (known: constant, step, exp, inverse_sqrt, cosine)", spec,
           tname);
  s.type = ty->type;
  if (ty->type == FM_SCHEDULE_STEP) s.gamma = 0.1;

  unsigned seen = 0;
  char *item = params;
  while (item) {
    char *next = strchr(item, ',');
    if (next) *next++ = '\0';
    char *eq = strchr(item, '=');
    FM_CHECK(eq, FM_ERR_INVALID_ARG, "learning-rate schedule '%s': '%s' is not key=value", spec, fm__trim(item));
    *eq = '\0';
    const char *key = fm__trim(item), *val = fm__trim(eq + 1);
    size_t k = 0;
    while (k < FM__NUM_KEYS && strcmp(key, fm__sched_keys[k].name) != 0) k++;
    if (k == FM__NUM_KEYS || !(ty->keys & fm__sched_keys[k].bit)) {
      char keys[128];
      fm__key_list(ty->keys, keys, sizeof keys);
      return FM_ERR(FM_ERR_INVALID_ARG, "learning-rate schedule '%s': %s takes no key '%s' (it takes %s)", spec,
                    ty->name, key, keys);
    }
    FM_CHECK(!(seen & fm__sched_keys[k].bit), FM_ERR_INVALID_ARG, "learning-rate schedule '%s': '%s' given twice",
             spec, key);
    seen |= fm__sched_keys[k].bit;
    char *end = NULL;
    double v = strtod(val, &end);
    FM_CHECK(*val && end && !*end && isfinite(v), FM_ERR_INVALID_ARG,
             "learning-rate schedule '%s': %s must be a finite number, got '%s'", spec, key, val);
    if (fm__sched_keys[k].integer) {
      FM_CHECK(v >= 0.0 && v <= FM__INT_MAX && v == floor(v), FM_ERR_INVALID_ARG,
               "learning-rate schedule '%s': %s must be a whole number of rounds >= 0, got '%s'", spec, key, val);
    }
    switch (fm__sched_keys[k].bit) {
      case K_WARMUP: s.warmup = (uint64_t)v; break;
      case K_GAMMA: s.gamma = v; break;
      case K_EVERY: s.every = (uint64_t)v; break;
      case K_TIMESCALE:
        FM_CHECK(v > 0.0, FM_ERR_INVALID_ARG, "learning-rate schedule '%s': timescale must be > 0, got '%s'", spec,
                 val);
        s.timescale = v;
        break;
      case K_ROUNDS: s.rounds = (uint64_t)v; break;
      case K_ALPHA: s.alpha = v; break;
      default: break;
    }
    item = next;
  }
  FM_CHECK(ty->type != FM_SCHEDULE_STEP || (seen & K_EVERY), FM_ERR_INVALID_ARG,
           "learning-rate schedule '%s': step needs every=K (decay by gamma every K rounds)", spec);
  FM_CHECK(ty->type != FM_SCHEDULE_EXP || (seen & K_GAMMA), FM_ERR_INVALID_ARG,
           "learning-rate schedule '%s': exp needs gamma=G (lr * G^(round/every))", spec);
  FM_CHECK(ty->type != FM_SCHEDULE_COSINE || (seen & K_ROUNDS), FM_ERR_INVALID_ARG,
           "learning-rate schedule '%s': cosine needs rounds=T (the length of the decay)", spec);
  int rc = fm_schedule_check(&s);
  if (rc != FM_OK) return FM_ERR(rc, "learning-rate schedule '%s': %s", spec, fm_last_error());
  *out = s;
  return FM_OK;
}

double fm_schedule_value(const fm_schedule *s, uint64_t round) {
  const double base = s->base_lr;
  if (round < s->warmup) return base * ((double)round + 1.0) / ((double)s->warmup + 1.0);
  const uint64_t q = round - s->warmup;
  const uint64_t every = s->every ? s->every : 1, rounds = s->rounds ? s->rounds : 1;
  switch (s->type) {
    case FM_SCHEDULE_STEP:
      return base * pow(s->gamma, (double)(q / every));
    case FM_SCHEDULE_EXP:
      return base * pow(s->gamma, (double)q / (double)every);
    case FM_SCHEDULE_INVERSE_SQRT: {
      const double ts = s->timescale > 0.0 ? s->timescale : (s->warmup > 0 ? (double)s->warmup : 1.0);
      return base / sqrt(1.0 + (double)q / ts);
    }
    case FM_SCHEDULE_COSINE: {
      const double t = (double)(q < rounds ? q : rounds);
      const double c = 0.5 * (1.0 + cos(FM__PI * t / (double)rounds));
      return base * ((1.0 - s->alpha) * c + s->alpha);
    }
    case FM_SCHEDULE_CONSTANT:
    default:
      return base;
  }
}

/* Shortest of %.15g / %.17g that reads back as v. */
static void fm__fmt_double(double v, char *buf, size_t cap) {
  snprintf(buf, cap, "%.15g", v);
  if (strtod(buf, NULL) != v) snprintf(buf, cap, "%.17g", v);
}

int fm_schedule_format(const fm_schedule *s, char *buf, size_t cap) {
  FM_CHECK(s && buf && cap > 0, FM_ERR_INVALID_ARG, "NULL argument");
  char out[FM__SPEC_MAX], a[40], b[40];
  int len = 0;
  const char *name = fm__sched_name(s->type);
  switch (s->type) {
    case FM_SCHEDULE_STEP:
    case FM_SCHEDULE_EXP:
      fm__fmt_double(s->gamma, a, sizeof a);
      len = snprintf(out, sizeof out, "%s:gamma=%s,every=%llu", name, a, (unsigned long long)s->every);
      break;
    case FM_SCHEDULE_INVERSE_SQRT:
      if (s->timescale > 0.0) {
        fm__fmt_double(s->timescale, a, sizeof a);
        len = snprintf(out, sizeof out, "%s:timescale=%s", name, a);
      } else {
        len = snprintf(out, sizeof out, "%s", name);
      }
      break;
    case FM_SCHEDULE_COSINE:
      fm__fmt_double(s->alpha, b, sizeof b);
      len = snprintf(out, sizeof out, "%s:rounds=%llu,alpha=%s", name, (unsigned long long)s->rounds, b);
      break;
    case FM_SCHEDULE_CONSTANT:
    default:
      len = snprintf(out, sizeof out, "%s", name);
      break;
  }
  if (s->warmup)
    len += snprintf(out + len, sizeof out - (size_t)len, "%swarmup=%llu", strchr(out, ':') ? "," : ":",
                    (unsigned long long)s->warmup);
  FM_CHECK((size_t)len < cap, FM_ERR_INVALID_ARG, "schedule spec '%s' needs %d bytes, buffer has %zu", out, len + 1,
           cap);
  memcpy(buf, out, (size_t)len + 1);
  return FM_OK;
}

int fm_schedule_apply(const fm_schedule *s, uint64_t round, fm_optimizer *o) {
  FM_CHECK(s && o, FM_ERR_INVALID_ARG, "NULL argument");
  fm_hparams cur;
  fm_optimizer_get_hparams(o, &cur);
  FM_CHECK(fm_hparams_has(&cur, "learning_rate"), FM_ERR_HPARAM_UNKNOWN,
           "optimizer '%s' has no learning_rate for a schedule to set", fm_optimizer_type(o));
  fm_hparams h = {0};
  FM_CALL(fm_hparams_put(&h, "learning_rate", fm_schedule_value(s, round)));
  return fm_optimizer_set_hparams(o, &h);
}
