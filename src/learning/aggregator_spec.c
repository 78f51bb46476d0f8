/* src/learning/aggregator_spec.c — an aggregator chain from its text, in
 * TFF's names and argument names, for the command line and the config file:
 *
 *   spec  := name [ "(" arg { "," arg } ")" ]
 *   arg   := spec                      the inner aggregator (positional)
 *          | key "=" value
 *   value := number | "inf" | "true" | "false" | spec   (no_noise(...) for a norm)
 *
 * for example "zeroing(clipping(mean, clipping_norm=no_noise(initial_estimate=1,
 * target_quantile=0.8, learning_rate=0.2)))" or "dp_aggregator(noise_multiplier=1,
 * clients_per_round=10)". Every error names what it did not accept. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "learning_impl.h"

#define SPEC_MAX_ARGS 8
#define SPEC_NAME_MAX 40

typedef struct spec_node spec_node;
typedef struct spec_arg {
  char key[SPEC_NAME_MAX]; /* "" for a positional argument */
  spec_node *node;         /* a nested spec, or NULL */
  double num;              /* a number (true = 1, false = 0, inf) */
  int used;
} spec_arg;
struct spec_node {
  char name[SPEC_NAME_MAX];
  size_t nargs;
  spec_arg args[SPEC_MAX_ARGS];
};

typedef struct spec_parser {
  const char *text, *p;
} spec_parser;

static void spec_free(spec_node *n) {
  if (!n) return;
  for (size_t i = 0; i < n->nargs; i++) spec_free(n->args[i].node);
  fm__free(n);
}

static void spec_ws(spec_parser *s) {
  while (isspace((unsigned char)*s->p)) s->p++;
}

static int spec_word(spec_parser *s, char *out) {
  spec_ws(s);
  size_t k = 0;
  while (isalnum((unsigned char)*s->p) || *s->p == '_') {
    if (k + 1 >= SPEC_NAME_MAX)
      return FM_ERR(FM_ERR_CONFIG, "aggregator '%s': a name at offset %zu is too long", s->text,
                    (size_t)(s->p - s->text));
    out[k++] = *s->p++;
  }
  out[k] = '\0';
  if (k == 0)
    return FM_ERR(FM_ERR_CONFIG, "aggregator '%s': expected a name at offset %zu, found '%.10s'", s->text,
                  (size_t)(s->p - s->text), *s->p ? s->p : "end of text");
  return FM_OK;
}

static int spec_parse(spec_parser *s, spec_node **out, int depth);

static int spec_value(spec_parser *s, spec_arg *a, int depth) {
  spec_ws(s);
  if (isalpha((unsigned char)*s->p)) {
    const char *save = s->p;
    char w[SPEC_NAME_MAX];
    FM_CALL(spec_word(s, w));
    if (!strcmp(w, "inf") || !strcmp(w, "true") || !strcmp(w, "false") || !strcmp(w, "True") ||
        !strcmp(w, "False")) {
      a->num = !strcmp(w, "inf") ? INFINITY : (w[0] == 't' || w[0] == 'T');
      return FM_OK;
    }
    s->p = save;
    return spec_parse(s, &a->node, depth + 1);
  }
  char *end;
  a->num = strtod(s->p, &end);
  if (end == s->p)
    return FM_ERR(FM_ERR_CONFIG, "aggregator '%s': %s= needs a number, found '%.10s'", s->text, a->key,
                  *s->p ? s->p : "end of text");
  s->p = end;
  return FM_OK;
}

static int spec_arg_parse(spec_parser *s, spec_node *n, int depth) {
  if (n->nargs == SPEC_MAX_ARGS) return FM_ERR(FM_ERR_CONFIG, "aggregator '%s': %s has too many arguments", s->text, n->name);
  spec_arg *a = &n->args[n->nargs++];
  spec_ws(s);
  const char *save = s->p;
  char w[SPEC_NAME_MAX] = "";
  if (isalpha((unsigned char)*s->p)) FM_CALL(spec_word(s, w));
  spec_ws(s);
  if (*s->p == '=') {
    s->p++;
    snprintf(a->key, sizeof a->key, "%s", w);
    return spec_value(s, a, depth);
  }
  s->p = save; /* positional: a nested aggregator */
  return spec_parse(s, &a->node, depth + 1);
}

static int spec_parse(spec_parser *s, spec_node **out, int depth) {
  *out = NULL;
  if (depth > 16) return FM_ERR(FM_ERR_CONFIG, "aggregator '%s': nested too deeply", s->text);
  spec_node *n = fm__calloc(1, sizeof *n);
  if (!n) return FM_ERR_NOMEM;
  *out = n;
  FM_CALL(spec_word(s, n->name));
  spec_ws(s);
  if (*s->p != '(') return FM_OK;
  s->p++;
  spec_ws(s);
  if (*s->p == ')') {
    s->p++;
    return FM_OK;
  }
  for (;;) {
    FM_CALL(spec_arg_parse(s, n, depth));
    spec_ws(s);
    if (*s->p == ',') {
      s->p++;
      continue;
    }
    if (*s->p == ')') {
      s->p++;
      return FM_OK;
    }
    return FM_ERR(FM_ERR_CONFIG, "aggregator '%s': expected ',' or ')' in %s(...) at offset %zu, found '%.10s'",
                  s->text, n->name, (size_t)(s->p - s->text), *s->p ? s->p : "end of text");
  }
}

/* ---- building ------------------------------------------------------------- */

static int spec_build(const char *text, spec_node *n, fm_aggregator **out);

/* The argument named key (marked used), or NULL. */
static spec_arg *spec_get(spec_node *n, const char *key) {
  for (size_t i = 0; i < n->nargs; i++)
    if (!strcmp(n->args[i].key, key)) {
      n->args[i].used = 1;
      return &n->args[i];
    }
  return NULL;
}

static int spec_num(const char *text, spec_node *n, const char *key, int required, double dflt, double *out) {
  spec_arg *a = spec_get(n, key);
  if (!a) {
    FM_CHECK(!required, FM_ERR_CONFIG, "aggregator '%s': %s needs %s=", text, n->name, key);
    *out = dflt;
    return FM_OK;
  }
  FM_CHECK(!a->node, FM_ERR_CONFIG, "aggregator '%s': %s's %s= must be a number, not %s(...)", text, n->name, key,
           a->node->name);
  *out = a->num;
  return FM_OK;
}

static int spec_count(const char *text, spec_node *n, const char *key, uint64_t *out) {
  double v = 0;
  FM_CALL(spec_num(text, n, key, 1, 0, &v));
  FM_CHECK(isfinite(v) && v >= 1 && v == floor(v) && v < 1e15, FM_ERR_HPARAM_VALUE,
           "aggregator '%s': %s's %s must be a whole number >= 1, got %g", text, n->name, key, v);
  *out = (uint64_t)v;
  return FM_OK;
}

/* Every argument was understood; the positional one (the inner) built into *inner. */
static int spec_inner(const char *text, spec_node *n, int wants_inner, fm_aggregator **inner) {
  *inner = NULL;
  spec_arg *pos = NULL;
  for (size_t i = 0; i < n->nargs; i++)
    if (!n->args[i].key[0]) {
      FM_CHECK(wants_inner && !pos, FM_ERR_CONFIG, "aggregator '%s': %s takes %s", text, n->name,
               wants_inner ? "one inner aggregator" : "no inner aggregator");
      pos = &n->args[i];
      pos->used = 1;
    }
  for (size_t i = 0; i < n->nargs; i++)
    FM_CHECK(n->args[i].used, FM_ERR_CONFIG, "aggregator '%s': %s has no argument '%s'", text, n->name,
             n->args[i].key);
  if (!wants_inner) return FM_OK;
  if (!pos) return fm_aggregator_create_mean(inner); /* TFF's usual inner_agg_factory */
  return spec_build(text, pos->node, inner);
}

/* A norm: a number (fixed) or no_noise(...) (adaptive). */
static int spec_norm(const char *text, spec_node *n, const char *key, double *fixed, fm_quantile_estimate *q,
                     int *adaptive) {
  spec_arg *a = spec_get(n, key);
  FM_CHECK(a, FM_ERR_CONFIG, "aggregator '%s': %s needs %s= (a number, or no_noise(...) for an adaptive one)", text,
           n->name, key);
  *adaptive = a->node != NULL;
  if (!a->node) {
    *fixed = a->num;
    return FM_OK;
  }
  spec_node *e = a->node;
  FM_CHECK(!strcmp(e->name, "no_noise"), FM_ERR_CONFIG, "aggregator '%s': %s= is a number or no_noise(...), not %s",
           text, key, e->name);
  FM_CALL(spec_num(text, e, "initial_estimate", 1, 0, &q->initial_estimate));
  FM_CALL(spec_num(text, e, "target_quantile", 1, 0, &q->target_quantile));
  FM_CALL(spec_num(text, e, "learning_rate", 1, 0, &q->learning_rate));
  FM_CALL(spec_num(text, e, "multiplier", 0, 1.0, &q->multiplier));
  FM_CALL(spec_num(text, e, "increment", 0, 0.0, &q->increment));
  fm_aggregator *none;
  return spec_inner(text, e, 0, &none);
}

static int spec_bounded(const char *text, spec_node *n, int zeroing, fm_aggregator **out) {
  double fixed = 0, order = INFINITY;
  fm_quantile_estimate q = {0};
  int adaptive = 0;
  FM_CALL(spec_norm(text, n, zeroing ? "zeroing_norm" : "clipping_norm", &fixed, &q, &adaptive));
  if (zeroing) FM_CALL(spec_num(text, n, "norm_order", 0, INFINITY, &order));
  fm_aggregator *inner;
  FM_CALL(spec_inner(text, n, 1, &inner));
  if (zeroing)
    return adaptive ? fm_aggregator_create_zeroing_adaptive(&q, order, inner, out)
                    : fm_aggregator_create_zeroing(fixed, order, inner, out);
  return adaptive ? fm_aggregator_create_clipping_adaptive(&q, inner, out)
                  : fm_aggregator_create_clipping(fixed, inner, out);
}

static int spec_dp(const char *text, spec_node *n, fm_aggregator **out) {
  double z = 0;
  uint64_t k = 0;
  fm_aggregator *none;
  FM_CALL(spec_num(text, n, "noise_multiplier", 1, 0, &z));
  FM_CALL(spec_count(text, n, "clients_per_round", &k));
  if (!strcmp(n->name, "gaussian_fixed")) {
    double clip = 0;
    FM_CALL(spec_num(text, n, "clip", 1, 0, &clip));
    FM_CALL(spec_inner(text, n, 0, &none));
    return fm_aggregator_create_dp_gaussian_fixed(z, k, clip, out);
  }
  if (!strcmp(n->name, "gaussian_adaptive")) {
    fm_dp_adaptive d = fm_dp_adaptive_defaults(k);
    FM_CALL(spec_num(text, n, "initial_l2_norm_clip", 0, d.initial_l2_norm_clip, &d.initial_l2_norm_clip));
    FM_CALL(spec_num(text, n, "target_unclipped_quantile", 0, d.target_unclipped_quantile,
                     &d.target_unclipped_quantile));
    FM_CALL(spec_num(text, n, "learning_rate", 0, d.learning_rate, &d.learning_rate));
    FM_CALL(spec_num(text, n, "clipped_count_stddev", 0, d.clipped_count_stddev, &d.clipped_count_stddev));
    FM_CALL(spec_inner(text, n, 0, &none));
    return fm_aggregator_create_dp_gaussian_adaptive(z, k, &d, out);
  }
  if (!strcmp(n->name, "tree_aggregation")) {
    double clip = 0, eff = 1;
    FM_CALL(spec_num(text, n, "l2_norm_clip", 1, 0, &clip));
    FM_CALL(spec_num(text, n, "use_efficient", 0, 1, &eff));
    FM_CALL(spec_inner(text, n, 0, &none));
    return fm_aggregator_create_dp_tree_aggregation(z, k, clip, eff != 0, out);
  }
  if (!strcmp(n->name, "tree_adaptive")) {
    fm_dp_tree_adaptive d = fm_dp_tree_adaptive_defaults(k);
    double warm = (double)d.restart_warmup, freq = (double)d.restart_frequency;
    FM_CALL(spec_num(text, n, "initial_l2_norm_clip", 0, d.initial_l2_norm_clip, &d.initial_l2_norm_clip));
    FM_CALL(spec_num(text, n, "restart_warmup", 0, warm, &warm));
    FM_CALL(spec_num(text, n, "restart_frequency", 0, freq, &freq));
    FM_CALL(spec_num(text, n, "target_unclipped_quantile", 0, d.target_unclipped_quantile,
                     &d.target_unclipped_quantile));
    FM_CALL(spec_num(text, n, "clip_learning_rate", 0, d.clip_learning_rate, &d.clip_learning_rate));
    FM_CALL(spec_num(text, n, "clipped_count_stddev", 0, d.clipped_count_stddev, &d.clipped_count_stddev));
    FM_CALL(spec_inner(text, n, 0, &none));
    FM_CHECK(isfinite(warm) && warm >= 0 && warm == floor(warm) && warm < 1e15 && isfinite(freq) && freq >= 0 &&
                 freq == floor(freq) && freq < 1e15,
             FM_ERR_HPARAM_VALUE, "aggregator '%s': tree_adaptive's restart_warmup and restart_frequency must be whole "
             "numbers, got %g and %g", text, warm, freq);
    d.restart_warmup = (uint64_t)warm;
    d.restart_frequency = (uint64_t)freq;
    return fm_aggregator_create_dp_tree_adaptive(z, k, &d, out);
  }
  double zeroing = 1;
  FM_CALL(spec_num(text, n, "zeroing", 0, 1, &zeroing));
  FM_CALL(spec_inner(text, n, 0, &none));
  return fm_aggregator_create_dp(z, k, zeroing != 0, out);
}

static int spec_secure_mean(const char *text, spec_node *n, fm_aggregator **out) {
  double upper = 0, lower = 0, weighted = 1, masks = 0;
  fm_quantile_estimate q = {0};
  int adaptive = 0;
  fm_aggregator *none;
  FM_CALL(spec_norm(text, n, "upper_bound_threshold", &upper, &q, &adaptive));
  if (adaptive) {
    FM_CHECK(!spec_get(n, "lower_bound_threshold"), FM_ERR_CONFIG,
             "aggregator '%s': secure_mean's lower_bound_threshold= needs a fixed upper_bound_threshold", text);
  }
  FM_CALL(spec_num(text, n, "lower_bound_threshold", 0, -upper, &lower));
  FM_CALL(spec_num(text, n, "weighted", 0, 1, &weighted));
  FM_CALL(spec_num(text, n, "masks", 0, 0, &masks));
  FM_CALL(spec_inner(text, n, 0, &none));
  return fm_aggregator_create_secure_mean(upper, lower, adaptive ? &q : NULL, weighted != 0, masks != 0, out);
}

static int spec_build(const char *text, spec_node *n, fm_aggregator **out) {
  const char *t = n->name;
  if (!strcmp(t, "secure_mean")) return spec_secure_mean(text, n, out);
  if (!strcmp(t, "secure_aggregator")) {
    double z = 1, c = 1, w = 1;
    fm_aggregator *none0;
    FM_CALL(spec_num(text, n, "zeroing", 0, 1, &z));
    FM_CALL(spec_num(text, n, "clipping", 0, 1, &c));
    FM_CALL(spec_num(text, n, "weighted", 0, 1, &w));
    FM_CALL(spec_inner(text, n, 0, &none0));
    return fm_aggregator_create_secure(z != 0, c != 0, w != 0, out);
  }
  fm_aggregator *none;
  if (!strcmp(t, "mean") || !strcmp(t, "unweighted_mean") || !strcmp(t, "sum")) {
    FM_CALL(spec_inner(text, n, 0, &none));
    return !strcmp(t, "mean") ? fm_aggregator_create_mean(out)
           : !strcmp(t, "sum") ? fm_aggregator_create_sum(out)
                               : fm_aggregator_create_unweighted_mean(out);
  }
  if (!strcmp(t, "clipping") || !strcmp(t, "clipping_factory")) return spec_bounded(text, n, 0, out);
  if (!strcmp(t, "zeroing") || !strcmp(t, "zeroing_factory")) return spec_bounded(text, n, 1, out);
  if (!strcmp(t, "robust_aggregator")) {
    double z = 1, c = 1, w = 1;
    FM_CALL(spec_num(text, n, "zeroing", 0, 1, &z));
    FM_CALL(spec_num(text, n, "clipping", 0, 1, &c));
    FM_CALL(spec_num(text, n, "weighted", 0, 1, &w));
    FM_CALL(spec_inner(text, n, 0, &none));
    return fm_aggregator_create_robust(z != 0, c != 0, w != 0, out);
  }
  if (!strcmp(t, "gaussian_fixed") || !strcmp(t, "gaussian_adaptive") || !strcmp(t, "dp_aggregator") ||
      !strcmp(t, "tree_aggregation") || !strcmp(t, "tree_adaptive"))
    return spec_dp(text, n, out);
  return FM_ERR(FM_ERR_CONFIG,
                "aggregator '%s': unknown aggregator '%s' (known: mean, unweighted_mean, sum, clipping, zeroing, "
                "robust_aggregator, gaussian_fixed, gaussian_adaptive, tree_aggregation, tree_adaptive, dp_aggregator, "
                "secure_mean, secure_aggregator)",
                text, t);
}

/* The whole text as one spec (what: "aggregator" or "metrics aggregator", for
 * the message about trailing text). *root is set even on failure (free it). */
static int spec_parse_all(const char *spec, const char *what, spec_node **root) {
  spec_parser s = {spec, spec};
  int rc = spec_parse(&s, root, 0);
  if (rc == FM_OK) {
    spec_ws(&s);
    if (*s.p)
      rc = FM_ERR(FM_ERR_CONFIG, "%s '%s': unexpected '%.10s' at offset %zu", what, spec, s.p, (size_t)(s.p - spec));
  }
  return rc;
}

int fm_aggregator_create_from_spec(const char *spec, fm_aggregator **out) {
  FM_CHECK(spec && out, FM_ERR_INVALID_ARG, "NULL argument");
  *out = NULL;
  spec_node *root = NULL;
  int rc = spec_parse_all(spec, "aggregator", &root);
  if (rc == FM_OK) rc = spec_build(spec, root, out);
  spec_free(root);
  return rc;
}

/* ---- the metrics aggregator ------------------------------------------------ */

/* secure_sum_then_finalize's arguments into ranges r (the default first). */
static int spec_metric_ranges(const char *text, spec_node *n, fm_metric_value_range *r, size_t *nr) {
  r[0].metric = NULL;
  FM_CALL(spec_num(text, n, "lower", 0, FM_SECURE_METRICS_LOWER, &r[0].lower));
  FM_CALL(spec_num(text, n, "upper", 0, FM_SECURE_METRICS_UPPER, &r[0].upper));
  *nr = 1;
  for (size_t i = 0; i < n->nargs; i++) {
    spec_arg *a = &n->args[i];
    if (a->used) continue;
    FM_CHECK(a->key[0], FM_ERR_CONFIG, "metrics aggregator '%s': %s takes no positional argument", text, n->name);
    FM_CHECK(a->node && !strcmp(a->node->name, "range"), FM_ERR_CONFIG,
             "metrics aggregator '%s': %s= must be range(lower=L, upper=U), the range of metric '%s'", text, a->key,
             a->key);
    a->used = 1;
    fm_metric_value_range *m = &r[(*nr)++];
    m->metric = a->key;
    FM_CALL(spec_num(text, a->node, "lower", 1, 0, &m->lower));
    FM_CALL(spec_num(text, a->node, "upper", 1, 0, &m->upper));
    for (size_t j = 0; j < a->node->nargs; j++)
      FM_CHECK(a->node->args[j].used, FM_ERR_CONFIG, "metrics aggregator '%s': range has no argument '%s'", text,
               a->node->args[j].key);
  }
  return FM_OK;
}

int fm_process_set_metrics_aggregator(fm_process *p, const char *spec) {
  FM_CHECK(p && spec, FM_ERR_INVALID_ARG, "NULL argument");
  spec_node *root = NULL;
  int rc = spec_parse_all(spec, "metrics aggregator", &root);
  fm_metric_value_range r[SPEC_MAX_ARGS + 1];
  size_t nr = 0;
  if (rc == FM_OK && !strcmp(root->name, "sum_then_finalize")) {
    if (root->nargs) rc = FM_ERR(FM_ERR_CONFIG, "metrics aggregator '%s': sum_then_finalize takes no arguments", spec);
    if (rc == FM_OK) rc = fm_process_set_sum_then_finalize(p);
  } else if (rc == FM_OK && !strcmp(root->name, "secure_sum_then_finalize")) {
    rc = spec_metric_ranges(spec, root, r, &nr);
    if (rc == FM_OK) rc = fm_process_set_secure_metrics(p, r, nr);
  } else if (rc == FM_OK) {
    rc = FM_ERR(FM_ERR_CONFIG,
                "metrics aggregator '%s': unknown '%s' (known: sum_then_finalize, secure_sum_then_finalize)", spec,
                root->name);
  }
  spec_free(root);
  return rc;
}
