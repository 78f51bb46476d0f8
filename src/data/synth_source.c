/* src/data/synth_source.c — procedural Synthetic(alpha, beta) client data:
 * the spec parser ("synthetic:clients=1000000,alpha=1,beta=1,...") and the
 * source behind fm_client_data_open_synthetic (data.c holds the
 * fm_client_data around it).
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

struct fm__synth_src {
  fm__synth_model m;
  fm_synth_split split;
  char *spec;                /* canonical spec, fm_client_data_path */
  _Atomic uint64_t total;    /* FM__TOTAL_UNKNOWN until the first fm__synth_src_total */
};

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

int fm__synth_src_create(const fm_synth_options *o, fm_synth_split split, fm__synth_src **out) {
  *out = NULL;
  FM_CHECK(split == FM_SYNTH_TRAIN || split == FM_SYNTH_TEST, FM_ERR_INVALID_ARG,
           "synthetic data: split must be FM_SYNTH_TRAIN or FM_SYNTH_TEST (got %d)", (int)split);
  fm__synth_src *s = fm__calloc(1, sizeof *s);
  FM_CHECK(s != NULL, FM_ERR_NOMEM, "out of memory opening synthetic data");
  int rc = fm__synth_model_init(&s->m, o);
  if (rc != FM_OK) {
    fm__free(s);
    return rc;
  }
  s->split = split;
  atomic_init(&s->total, FM__TOTAL_UNKNOWN);
  s->spec = fm__canonical_spec(o, split);
  if (!s->spec) {
    fm__synth_src_destroy(s);
    return FM_ERR(FM_ERR_NOMEM, "out of memory opening synthetic data");
  }
  *out = s;
  return FM_OK;
}

void fm__synth_src_destroy(fm__synth_src *s) {
  if (!s) return;
  fm__synth_model_free(&s->m);
  fm__free(s->spec);
  fm__free(s);
}

const fm_synth_options *fm__synth_src_options(const fm__synth_src *s) { return &s->m.o; }

const char *fm__synth_src_spec(const fm__synth_src *s) { return s->spec; }

size_t fm__synth_src_num_examples(const fm__synth_src *s, size_t i) {
  double nd = fm__synth_client_size(&s->m.o, (uint64_t)i);
  /* A client beyond the limit cannot be loaded (FM_ERR_OVERFLOW); its size
   * is reported as the limit's split. */
  size_t n = (size_t)(nd <= FM__SYNTH_MAX_N ? nd : FM__SYNTH_MAX_N), n_train, n_test;
  fm__synth_split_sizes(&s->m.o, n, &n_train, &n_test);
  return s->split == FM_SYNTH_TEST ? n_test : n_train;
}

uint64_t fm__synth_src_total(const fm__synth_src *s) {
  uint64_t t = atomic_load_explicit(&s->total, memory_order_acquire);
  if (t != FM__TOTAL_UNKNOWN) return t;
  t = 0;
  for (size_t i = 0; i < s->m.o.num_clients; i++) t += fm__synth_src_num_examples(s, i);
  /* Every thread computes the same sum: whichever stores first, the value is the same. */
  atomic_store_explicit(&((fm__synth_src *)s)->total, t, memory_order_release);
  return t;
}

int fm__synth_src_load(const fm__synth_src *s, size_t i, fm_examples *out) {
  return fm__synth_client_rows(&s->m, (uint64_t)i, s->split == FM_SYNTH_TEST ? FM__SYNTH_TEST : FM__SYNTH_TRAIN,
                               out);
}
