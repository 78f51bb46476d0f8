/* src/data/source_synth.c — the procedural Synthetic(alpha, beta) ClientData
 * source behind fm_client_data_open_synthetic, and its spec
 * ("synthetic:clients=1000000,alpha=1,beta=1,...") as --data takes it.
 *
 * Nothing is stored per client. Client i is drawn on load from the recipe's
 * own streams, fm_rng(seed, 0, i, FM_RNG_SYNTH) and (seed, 0, i,
 * FM_RNG_SPLIT), by the code fm_synth_write uses (synth.c), so it equals
 * client i of the file fm_synth_write writes with the same options, bit for
 * bit, in either split. Its size is the stream's first normal draw: O(1).
 * Its id is f_%05zu (wider for more than 10^5 clients), formatted on demand,
 * exactly as the files name it. Memory: the options, sqrt(Sigma) (d doubles),
 * the shared IID model (d x C doubles) and the spec string, whatever the
 * population; total_examples is the only O(K) computation, done once, on
 * the first call.
 *
 * Deliberately does not: cache generated clients (the module's bounded
 * cache can, fm_client_data_set_cache_bytes), or allow a population beyond
 * 2^47 (the IID model's stream index). */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"
#include "fedmpi/data.h"
#include "internal.h"

#define FM__TOTAL_UNKNOWN UINT64_MAX

/* The procedural source's state (cd->src); read-only after open but for total. */
typedef struct fm__synth_src {
  fm__synth_model m;
  fm_synth_split split;
  _Atomic uint64_t total;    /* FM__TOTAL_UNKNOWN until the first total_examples */
} fm__synth_src;

/* ---- the spec ----------------------------------------------------------------- */

/* The shortest of %.15g .. %.17g that reads back as v. */
static void fm__fmt_double(char *buf, size_t size, double v) {
  for (int p = 15; p <= 17; p++) {
    snprintf(buf, size, "%.*g", p, v);
    if (strtod(buf, NULL) == v) return;
  }
}

/* "synthetic:clients=K,alpha=A,beta=B[,iid=1][,features=D][,classes=C]
 * [,test-fraction=F][,max-examples=N],seed=S,split=train|test": every
 * option that differs from fm_synth_defaults, and always K, alpha, beta,
 * seed and split. fm_synth_parse_spec reads it back to the same options. */
static char *fm__canonical_spec(const fm_synth_options *o, fm_synth_split split) {
  fm_synth_options def;
  fm_synth_defaults(&def);
  char a[40], b[40], f[40], buf[512];
  fm__fmt_double(a, sizeof a, o->alpha);
  fm__fmt_double(b, sizeof b, o->beta);
  fm__fmt_double(f, sizeof f, o->test_fraction);
  size_t used = (size_t)snprintf(buf, sizeof buf, "synthetic:clients=%zu,alpha=%s,beta=%s", o->num_clients, a, b);
#define FM__APPEND(...)                                                             \
  do {                                                                              \
    if (used < sizeof buf) used += (size_t)snprintf(buf + used, sizeof buf - used, __VA_ARGS__); \
  } while (0)
  if (o->iid) FM__APPEND(",iid=1");
  if (o->num_features != def.num_features) FM__APPEND(",features=%zu", o->num_features);
  if (o->num_classes != def.num_classes) FM__APPEND(",classes=%zu", o->num_classes);
  if (o->test_fraction != def.test_fraction) FM__APPEND(",test-fraction=%s", f);
  if (o->max_examples) FM__APPEND(",max-examples=%zu", o->max_examples);
  FM__APPEND(",seed=%llu,split=%s", (unsigned long long)o->seed, split == FM_SYNTH_TEST ? "test" : "train");
#undef FM__APPEND
  return fm__strdup(buf);
}

/* An unsigned integer, decimal ("1000000") or an exact float form ("1e6"). */
static int fm__parse_uint(const char *v, uint64_t max, uint64_t *out) {
  if (!*v || *v == '-' || *v == '+' || *v == ' ') return 0;
  char *end = NULL;
  errno = 0;
  unsigned long long u = strtoull(v, &end, 10);
  if (*end == '\0' && errno == 0) {
    if (u > max) return 0;
    *out = u;
    return 1;
  }
  errno = 0;
  double d = strtod(v, &end);
  if (*end || errno || !(d >= 0) || d != floor(d) || d > 9007199254740992.0 || d > (double)max) return 0;
  *out = (uint64_t)d;
  return 1;
}

static int fm__parse_double(const char *v, double *out) {
  char *end = NULL;
  if (!*v) return 0;
  errno = 0;
  double d = strtod(v, &end);
  if (*end || errno || !isfinite(d)) return 0;
  *out = d;
  return 1;
}

int fm_synth_spec_is_synthetic(const char *spec) {
  return spec && strncmp(spec, "synthetic", 9) == 0 && (spec[9] == '\0' || spec[9] == ':');
}

int fm_synth_parse_spec(const char *spec, fm_synth_options *o, fm_synth_split *split) {
  FM_CHECK(spec && o, FM_ERR_INVALID_ARG, "fm_synth_parse_spec: spec and options must not be NULL");
  FM_CHECK(fm_synth_spec_is_synthetic(spec), FM_ERR_CONFIG,
           "'%s' is not a synthetic data spec (synthetic:clients=K,alpha=A,beta=B,...)", spec);
  static const char *const keys[] = {"clients",       "alpha",        "beta", "iid",  "features", "classes",
                                     "test-fraction", "max-examples", "seed", "split"};
  enum { NKEYS = sizeof keys / sizeof keys[0] };
  static const char *const known =
      "clients, alpha, beta, iid, features, classes, test-fraction, max-examples, seed, split";
  fm_synth_options r;
  fm_synth_defaults(&r);
  fm_synth_split sp = FM_SYNTH_TRAIN;
  int seen[NKEYS] = {0};
  const size_t len = strlen(spec);
  char *buf = fm__strdup(spec[9] == ':' ? spec + 10 : "");
  FM_CHECK(buf != NULL, FM_ERR_NOMEM, "out of memory parsing '%s'", spec);
  int rc = FM_OK;
  char *save = NULL;
  FM_CHECK_GOTO(rc, len < 4096, done, FM_ERR_CONFIG, "synthetic data spec is too long (%zu characters)", len);
  FM_CHECK_GOTO(rc, spec[9] != ':' || spec[10] == '\0' || (spec[10] != ',' && spec[len - 1] != ',' && !strstr(spec, ",,")),
                done, FM_ERR_CONFIG, "%s: empty option (write synthetic:KEY=VALUE,KEY=VALUE,...)", spec);
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    const char *val = eq ? eq + 1 : "";
    if (eq) *eq = '\0';
    size_t j = 0;
    while (j < NKEYS && strcmp(keys[j], tok) != 0) j++;
    FM_CHECK_GOTO(rc, j < NKEYS, done, FM_ERR_CONFIG, "%s: unknown option '%s' (known: %s)", spec, tok, known);
    FM_CHECK_GOTO(rc, !seen[j], done, FM_ERR_CONFIG, "%s: option '%s' given twice", spec, tok);
    seen[j] = 1;
    FM_CHECK_GOTO(rc, eq || !strcmp(tok, "iid"), done, FM_ERR_CONFIG, "%s: option '%s' needs a value (%s=...)", spec,
                  tok, tok);
    uint64_t u = 0;
    int ok = 1;
    const char *want = "";
    if (!strcmp(tok, "clients")) {
      ok = fm__parse_uint(val, FM__SYNTH_SHARED_CLIENT - 1, &u) && u >= 1;
      r.num_clients = (size_t)u;
      want = "an integer in 1..2^47 - 1";
    } else if (!strcmp(tok, "alpha") || !strcmp(tok, "beta")) {
      double d = 0;
      ok = fm__parse_double(val, &d) && d >= 0;
      *(tok[0] == 'a' ? &r.alpha : &r.beta) = d;
      want = "a finite number >= 0";
    } else if (!strcmp(tok, "iid")) {
      ok = !eq || !strcmp(val, "1") || !strcmp(val, "0");
      r.iid = !eq || !strcmp(val, "1");
      want = "0 or 1";
    } else if (!strcmp(tok, "features")) {
      ok = fm__parse_uint(val, (uint64_t)1 << 24, &u) && u >= 1;
      r.num_features = (size_t)u;
      want = "an integer in 1..2^24";
    } else if (!strcmp(tok, "classes")) {
      ok = fm__parse_uint(val, (uint64_t)1 << 30, &u) && u >= 2;
      r.num_classes = (size_t)u;
      want = "an integer in 2..2^30";
    } else if (!strcmp(tok, "test-fraction")) {
      ok = fm__parse_double(val, &r.test_fraction) && r.test_fraction >= 0 && r.test_fraction <= 1;
      want = "a number in [0, 1]";
    } else if (!strcmp(tok, "max-examples")) {
      ok = fm__parse_uint(val, (uint64_t)FM__SYNTH_MAX_N, &u);
      r.max_examples = (size_t)u;
      want = "an integer in 0..10^9 (0: uncapped)";
    } else if (!strcmp(tok, "seed")) {
      ok = fm__parse_uint(val, UINT64_MAX, &u);
      r.seed = u;
      want = "an integer >= 0";
    } else { /* split */
      ok = !strcmp(val, "train") || !strcmp(val, "test");
      sp = !strcmp(val, "test") ? FM_SYNTH_TEST : FM_SYNTH_TRAIN;
      want = "train or test";
    }
    FM_CHECK_GOTO(rc, ok, done, FM_ERR_CONFIG, "%s: %s must be %s (got '%s')", spec, tok, want, val);
  }
  if (fm__synth_check_options(&r) != FM_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", fm_last_error());
    rc = FM_ERR(FM_ERR_CONFIG, "%s: %s", spec, msg);
    goto done;
  }
  *o = r;
  if (split) *split = sp;
done:
  fm__free(buf);
  return rc;
}

/* ---- the source ------------------------------------------------------------------ */

static const fm__synth_src *fm__synth(const fm_client_data *cd) { return cd->src; }

/* Client i's id in a per-thread ring of buffers. */
static const char *fm__synth_client_id(const fm_client_data *cd, size_t i) {
  enum { RING = 16, LEN = 32 };
  static _Thread_local char ring[RING][LEN];
  static _Thread_local unsigned next;
  char *b = ring[next++ % RING];
  fm__client_id(b, LEN, i, cd->num_clients);
  return b;
}

static size_t fm__synth_num_examples(const fm_client_data *cd, size_t i) {
  const fm__synth_src *s = fm__synth(cd);
  double nd = fm__synth_client_size(&s->m.o, (uint64_t)i);
  /* A client beyond the limit cannot be loaded (FM_ERR_OVERFLOW); its size
   * is reported as the limit's split. */
  size_t n = (size_t)(nd <= FM__SYNTH_MAX_N ? nd : FM__SYNTH_MAX_N), n_train, n_test;
  fm__synth_split_sizes(&s->m.o, n, &n_train, &n_test);
  return s->split == FM_SYNTH_TEST ? n_test : n_train;
}

/* Sum over every client: O(K) the first time, then remembered. Thread-safe. */
static uint64_t fm__synth_total_examples(const fm_client_data *cd) {
  fm__synth_src *s = cd->src;
  uint64_t t = atomic_load_explicit(&s->total, memory_order_acquire);
  if (t != FM__TOTAL_UNKNOWN) return t;
  t = 0;
  for (size_t i = 0; i < s->m.o.num_clients; i++) t += fm__synth_num_examples(cd, i);
  /* Every thread computes the same sum: whichever stores first, the value is the same. */
  atomic_store_explicit(&s->total, t, memory_order_release);
  return t;
}

/* Generated on the spot (labels need x anyway); no lock, no file. */
static int fm__synth_load(const fm_client_data *cd, size_t i, int want_x, fm_examples *out) {
  const fm__synth_src *s = fm__synth(cd);
  FM_CALL(fm__synth_client_rows(&s->m, (uint64_t)i, s->split == FM_SYNTH_TEST ? FM__SYNTH_TEST : FM__SYNTH_TRAIN,
                                out));
  if (!want_x) {
    fm__free(out->x);
    out->x = NULL;
  }
  return FM_OK;
}

/* Labels are an argmax over C classes by construction. */
static int fm__synth_scan_num_classes(const fm_client_data *cd, size_t *num_classes) {
  *num_classes = cd->num_classes;
  return FM_OK;
}

static void fm__synth_destroy(fm_client_data *cd) {
  fm__synth_src *s = cd->src;
  if (!s) return;
  fm__synth_model_free(&s->m);
  fm__free(s);
  cd->src = NULL;
}

static const fm__cd_source_ops fm__synth_ops = {
    .name = "synthetic",
    .client_id = fm__synth_client_id,
    .num_examples = fm__synth_num_examples,
    .total_examples = fm__synth_total_examples,
    .load = fm__synth_load,
    .scan_num_classes = fm__synth_scan_num_classes,
    .destroy = fm__synth_destroy,
};

int fm__cd_open_synthetic(const fm_synth_options *o, fm_synth_split split, fm_client_data **out) {
  *out = NULL;
  fm_client_data *cd = fm__calloc(1, sizeof *cd);
  FM_CHECK(cd != NULL, FM_ERR_NOMEM, "out of memory opening synthetic data");
  if (split != FM_SYNTH_TRAIN && split != FM_SYNTH_TEST) {
    fm__free(cd);
    return FM_ERR(FM_ERR_INVALID_ARG, "synthetic data: split must be FM_SYNTH_TRAIN or FM_SYNTH_TEST (got %d)",
                  (int)split);
  }
  fm__synth_src *s = fm__calloc(1, sizeof *s);
  if (!s) {
    fm__free(cd);
    return FM_ERR(FM_ERR_NOMEM, "out of memory opening synthetic data");
  }
  int rc = fm__synth_model_init(&s->m, o);
  if (rc != FM_OK) {
    fm__free(s);
    fm__free(cd);
    return rc;
  }
  s->split = split;
  atomic_init(&s->total, FM__TOTAL_UNKNOWN);
  cd->ops = &fm__synth_ops;
  cd->src = s;
  const size_t d = o->num_features;
  cd->kind = FM_DATA_XY;
  cd->num_clients = o->num_clients;
  cd->num_features = d;
  cd->num_classes = o->num_classes;
  cd->path = fm__canonical_spec(o, split);
  if (!cd->path || fm__cd_set_xy_features(cd, 1, &d) != FM_OK || fm__cache_create(&cd->cache) != FM_OK) {
    fm__cd_free(cd);
    return FM_ERR(FM_ERR_NOMEM, "out of memory opening synthetic data");
  }
  *out = cd;
  return FM_OK;
}

/* "synthetic" or "synthetic:...". */
static int fm__synth_claims(const char *spec) { return fm_synth_spec_is_synthetic(spec); }

static int fm__synth_open_spec(const char *spec, const fm_data_options *opt, fm_client_data **out) {
  fm_synth_options o;
  fm_synth_split split;
  FM_CALL(fm_synth_parse_spec(spec, &o, &split));
  const char *xo = opt ? opt->x_feature : NULL, *yo = opt ? opt->y_feature : NULL;
  FM_CHECK(!xo || !strcmp(xo, "x"), FM_ERR_FORMAT, "%s: no feature '%s' (synthetic data has 'x' and 'y')", spec, xo);
  FM_CHECK(!yo || !strcmp(yo, "y"), FM_ERR_FORMAT, "%s: no feature '%s' (synthetic data has 'x' and 'y')", spec, yo);
  return fm__cd_open_synthetic(&o, split, out);
}

const fm__cd_spec_source fm__cd_spec_synthetic = {"synthetic", fm__synth_claims, fm__synth_open_spec};
