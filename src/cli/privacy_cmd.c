/* src/cli/privacy_cmd.c — `fedmpi privacy`: epsilon of a DP training
 * configuration (rounds of a Poisson-subsampled Gaussian mechanism with
 * q = clients per round / population), or the smallest noise multiplier that
 * reaches a target epsilon. The accounting is the library's RDP accountant
 * (fedmpi/privacy.h); this file maps options and prints. Every rank computes
 * (it is cheap and deterministic), rank 0 prints. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"

typedef struct privacy_cfg {
  char q[CLI_STR_MAX], noise[CLI_STR_MAX], delta[CLI_STR_MAX], target[CLI_STR_MAX], participation[CLI_STR_MAX];
  int64_t clients_per_round, population, rounds, restart_warmup, restart_frequency;
  int json, tree;
} privacy_cfg;

#define OFF(f) offsetof(privacy_cfg, f)
static const cli_opt privacy_opts[] = {
    {"q", CLI_STR, OFF(q), "", 0, 0, NULL, "Q", "sampling rate per round, in [0, 1] (or give --clients-per-round and --population)"},
    {"clients-per-round", CLI_INT, OFF(clients_per_round), "0", 0, 9.2e18, NULL, "K", "cohort size per round: q = K/N"},
    {"population", CLI_INT, OFF(population), "0", 0, 9.2e18, NULL, "N", "number of clients the cohort is drawn from"},
    {"noise-multiplier", CLI_STR, OFF(noise), "", 0, 0, NULL, "Z",
     "noise stddev / clipping norm (the effective z of adaptive clipping); not with --target-epsilon"},
    {"rounds", CLI_INT, OFF(rounds), "0", 0, 9.2e18, NULL, "T", "number of rounds (required, >= 1)"},
    {"delta", CLI_STR, OFF(delta), "", 0, 0, NULL, "D", "delta in (0, 1) (default: min(1e-5, 1/population), as train's --dp-delta; required with --q)"},
    {"target-epsilon", CLI_STR, OFF(target), "", 0, 0, NULL, "E", "print the smallest noise multiplier reaching epsilon <= E"},
    {"tree", CLI_FLAG, OFF(tree), "0", 0, 0, NULL, NULL,
     "DP-FTRL's tree aggregation (tree_aggregation, tree_adaptive) instead: no sampling, so no --q; --delta or "
     "--population gives delta"},
    {"restart-warmup", CLI_INT, OFF(restart_warmup), "0", 0, 9.2e18, NULL, "W",
     "with --tree: the first restart after W rounds (tree_adaptive's restart_warmup; 0: no restarts)"},
    {"restart-frequency", CLI_INT, OFF(restart_frequency), "0", 0, 9.2e18, NULL, "F",
     "with --tree: then a restart every F rounds (tree_adaptive's restart_frequency)"},
    {"participation", CLI_CHOICE, OFF(participation), "every-round", 0, 0, "every-round|once-per-tree", NULL,
     "with --tree: a client's participation the accounting assumes, at most (as train's --dp-tree-participation)"},
    {"json", CLI_FLAG, OFF(json), "0", 0, 0, NULL, NULL, "print one JSON object instead of text"},
};
#undef OFF
static const cli_command privacy_cmd = {
    "privacy", "fedmpi privacy (--q Q | --clients-per-round K --population N | --tree [--restart-warmup W --restart-frequency F] [--participation P]) --rounds T (--noise-multiplier Z | --target-epsilon E) [--delta D] [--json]",
    "Differential-privacy accounting of DP federated training: T rounds of the Gaussian mechanism on a cohort\n"
    "sampled with rate q. Renyi-DP accountant (dp_accounting's orders 1.1..1024), Poisson subsampling with\n"
    "q = K/N as the standard approximation of fedmpi's fixed-size cohorts, and the Canonne-Kamath-Steinke\n"
    "conversion to (epsilon, delta); the classic conversion is printed too. See docs/privacy.md.",
    privacy_opts, sizeof privacy_opts / sizeof privacy_opts[0], 0};

/* A number option given as text: 1 if set (value in *v), 0 if empty, -1 with a message in err. */
static int privacy_number(const char *name, const char *text, double *v, char *err, size_t errlen) {
  if (!text[0]) return 0;
  char *end;
  errno = 0;
  *v = strtod(text, &end);
  if (*end || errno || !isfinite(*v)) {
    snprintf(err, errlen, "invalid value '%.200s' for --%s: not a finite number", text, name);
    return -1;
  }
  return 1;
}

typedef struct privacy_args {
  double q, z, delta, target;
  int have_z, have_target;
} privacy_args;

/* Check the options and derive q and delta; -1 with a message naming the option. */
static int privacy_check(const privacy_cfg *c, privacy_args *a, char *err, size_t errlen) {
  int hq, hd;
  if ((hq = privacy_number("q", c->q, &a->q, err, errlen)) < 0) return -1;
  if ((hd = privacy_number("delta", c->delta, &a->delta, err, errlen)) < 0) return -1;
  if ((a->have_z = privacy_number("noise-multiplier", c->noise, &a->z, err, errlen)) < 0) return -1;
  if ((a->have_target = privacy_number("target-epsilon", c->target, &a->target, err, errlen)) < 0) return -1;
  int hk = c->clients_per_round > 0 || c->population > 0;
  if (!c->tree && (c->restart_warmup || c->restart_frequency || strcmp(c->participation, "every-round")))
    return snprintf(err, errlen, "--restart-warmup, --restart-frequency and --participation need --tree"), -1;
  if (c->tree) {
    if (hq || c->clients_per_round > 0)
      return snprintf(err, errlen, "--tree takes no --q or --clients-per-round: tree aggregation's accounting has "
                                   "no amplification by sampling"), -1;
    if (!(c->restart_warmup == 0 && c->restart_frequency == 0) &&
        !(c->restart_warmup >= 1 && c->restart_warmup < c->restart_frequency))
      return snprintf(err, errlen, "--restart-warmup must be between 1 and --restart-frequency - 1 (got %lld and %lld)",
                      (long long)c->restart_warmup, (long long)c->restart_frequency), -1;
    if (!hd && c->population > 0) a->delta = fmin(1e-5, 1.0 / (double)c->population);
    else if (!hd) return snprintf(err, errlen, "--tree needs --delta, or --population for its default"), -1;
    hk = 0;
    hq = 1;
    a->q = 0;
    hd = 1;
  } else if (hq && hk) return snprintf(err, errlen, "--q and --clients-per-round/--population are exclusive"), -1;
  if (!hq && !hk) return snprintf(err, errlen, "give --q, or --clients-per-round with --population"), -1;
  if (hq && !(a->q >= 0 && a->q <= 1)) return snprintf(err, errlen, "--q must be in [0, 1], got %g", a->q), -1;
  if (hk) {
    if (c->clients_per_round < 1 || c->population < 1)
      return snprintf(err, errlen, "--clients-per-round and --population must both be >= 1"), -1;
    if (c->clients_per_round > c->population)
      return snprintf(err, errlen, "--clients-per-round %lld is more than --population %lld",
                      (long long)c->clients_per_round, (long long)c->population), -1;
    a->q = (double)c->clients_per_round / (double)c->population;
    if (!hd) a->delta = fmin(1e-5, 1.0 / (double)c->population); /* as train's --dp-delta */
  } else if (!hd) {
    return snprintf(err, errlen, "--delta is required with --q (it defaults to min(1e-5, 1/population) only with --population)"), -1;
  }
  if (!(a->delta > 0 && a->delta < 1)) return snprintf(err, errlen, "--delta must be in (0, 1), got %g", a->delta), -1;
  if (c->rounds < 1) return snprintf(err, errlen, "--rounds must be >= 1 (got %lld)", (long long)c->rounds), -1;
  if (a->have_z && a->have_target)
    return snprintf(err, errlen, "--noise-multiplier and --target-epsilon are exclusive"), -1;
  if (!a->have_z && !a->have_target) return snprintf(err, errlen, "give --noise-multiplier or --target-epsilon"), -1;
  if (a->have_z && !(a->z >= 0)) return snprintf(err, errlen, "--noise-multiplier must be >= 0, got %g", a->z), -1;
  if (a->have_target && !(a->target > 0))
    return snprintf(err, errlen, "--target-epsilon must be > 0, got %g", a->target), -1;
  return 0;
}

typedef struct privacy_result {
  double eps, order, eps_classic, order_classic;
} privacy_result;

static fm_tree_participation privacy_part(const privacy_cfg *c) {
  return strcmp(c->participation, "once-per-tree") ? FM_TREE_EVERY_ROUND : FM_TREE_ONCE_PER_TREE;
}

static int privacy_account(const privacy_cfg *c, double q, double z, uint64_t rounds, double delta,
                           privacy_result *r) {
  const double *orders;
  size_t n;
  fm_rdp_default_orders(&orders, &n);
  double rdp[256];
  if (n > sizeof rdp / sizeof rdp[0]) return fm_set_error(FM_ERR_OVERFLOW, "too many default orders");
  if (c->tree) {
    FM_CALL_CLI(fm_rdp_tree(z, rounds, (uint64_t)c->restart_warmup, (uint64_t)c->restart_frequency, privacy_part(c),
                            orders, n, rdp));
  } else {
    FM_CALL_CLI(fm_rdp_subsampled_gaussian(q, z, orders, n, rdp));
    for (size_t i = 0; i < n; i++) rdp[i] *= (double)rounds;
  }
  FM_CALL_CLI(fm_rdp_to_epsilon(orders, rdp, n, delta, &r->eps, &r->order));
  return fm_rdp_to_epsilon_classic(orders, rdp, n, delta, &r->eps_classic, &r->order_classic);
}

/* The noise multiplier as printed: 6 significant digits, never below z, so
 * feeding the printed value back still reaches the target. */
static double privacy_round_up(double z) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.6g", z);
  double p = strtod(buf, NULL);
  if (p >= z) return p;
  snprintf(buf, sizeof buf, "%.6g", z * (1 + 1e-6));
  return strtod(buf, NULL);
}

/* An RDP order as JSON: its shortest decimal (6.4, not 6.4000000000000004). */
static json_object *privacy_json_order(double a) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.15g", a);
  return json_object_new_double_s(a, buf);
}

static void privacy_print(const privacy_cfg *c, const privacy_args *a, double z, const privacy_result *r) {
  if (c->json) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "accountant", json_object_new_string(c->tree ? "rdp_tree" : "rdp"));
    if (c->tree) {
      json_object_object_add(o, "participation", json_object_new_string(c->participation));
      json_object_object_add(o, "restart_warmup", json_object_new_int64(c->restart_warmup));
      json_object_object_add(o, "restart_frequency", json_object_new_int64(c->restart_frequency));
    } else {
      json_object_object_add(o, "sampling", json_object_new_string("poisson"));
      json_object_object_add(o, "q", json_object_new_double(a->q));
    }
    if (c->population > 0) {
      json_object_object_add(o, "clients_per_round", json_object_new_int64(c->clients_per_round));
      json_object_object_add(o, "population", json_object_new_int64(c->population));
    }
    json_object_object_add(o, "noise_multiplier", json_object_new_double(z));
    json_object_object_add(o, "rounds", json_object_new_int64(c->rounds));
    json_object_object_add(o, "delta", json_object_new_double(a->delta));
    if (a->have_target) json_object_object_add(o, "target_epsilon", json_object_new_double(a->target));
    json_object_object_add(o, "epsilon", json_object_new_double(r->eps));
    json_object_object_add(o, "order", privacy_json_order(r->order));
    json_object_object_add(o, "epsilon_classic", json_object_new_double(r->eps_classic));
    json_object_object_add(o, "order_classic", privacy_json_order(r->order_classic));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return;
  }
  if (a->have_target) printf("noise-multiplier %.6g reaches epsilon <= %g\n", z, a->target);
  if (c->tree) {
    printf("epsilon %.4f at order %g (z=%.6g rounds=%lld delta=%g, DP-FTRL tree aggregation, restarts %lld/%lld, "
           "participation %s)\n",
           r->eps, r->order, z, (long long)c->rounds, a->delta, (long long)c->restart_warmup,
           (long long)c->restart_frequency, c->participation);
    printf("epsilon %.4f at order %g with the classic RDP conversion\n", r->eps_classic, r->order_classic);
    return;
  }
  printf("epsilon %.4f at order %g (q=%.4g z=%.6g rounds=%lld delta=%g, RDP accountant, Poisson subsampling)\n", r->eps,
         r->order, a->q, z, (long long)c->rounds, a->delta);
  printf("epsilon %.4f at order %g with the classic RDP conversion\n", r->eps_classic, r->order_classic);
}

int cmd_privacy(cli_ctx *ctx, int argc, char **argv) {
  privacy_cfg c;
  char *pos[1], err[1024] = "";
  int npos;
  int ex = cli_parse_or_exit(ctx, &privacy_cmd, &c, argc, argv, pos, 0, &npos);
  if (ex >= 0) return ex;
  privacy_args a = {0};
  if (privacy_check(&c, &a, err, sizeof err) < 0) {
    cli_error(ctx, "privacy", err);
    return CLI_EXIT_USAGE;
  }
  double z = a.z;
  int rc = FM_OK;
  privacy_result r;
  if (a.have_target && c.tree) { /* epsilon falls as z grows: bisection, as for the sampled Gaussian */
    double lo = 0, hi = 1;
    while (rc == FM_OK && (rc = privacy_account(&c, 0, hi, (uint64_t)c.rounds, a.delta, &r)) == FM_OK &&
           r.eps > a.target) {
      lo = hi;
      hi *= 2;
      if (hi > 1e9) rc = fm_set_error(FM_ERR_HPARAM_VALUE, "no noise multiplier below 1e9 reaches epsilon %g", a.target);
    }
    while (rc == FM_OK && hi - lo > 1e-7 * hi) {
      double mid = 0.5 * (lo + hi);
      rc = privacy_account(&c, 0, mid, (uint64_t)c.rounds, a.delta, &r);
      if (r.eps <= a.target) hi = mid;
      else lo = mid;
    }
    z = privacy_round_up(hi);
  } else if (a.have_target) {
    rc = fm_privacy_noise_for_epsilon(a.q, (uint64_t)c.rounds, a.delta, a.target, &z);
    if (rc == FM_OK) z = privacy_round_up(z);
  }
  if (rc == FM_OK) rc = privacy_account(&c, a.q, z, (uint64_t)c.rounds, a.delta, &r);
  if (rc != FM_OK) {
    cli_error(ctx, "privacy", fm_last_error());
    return CLI_EXIT_FAILURE;
  }
  if (ctx->rank == 0) privacy_print(&c, &a, z, &r);
  return CLI_EXIT_OK;
}
