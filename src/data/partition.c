/* src/data/partition.c — gamma and Dirichlet sampling, and the partitioners
 * that turn a labelled data set into federated clients (fm_partition_labels).
 *
 * Every draw comes from fm_rng(seed, stream, j, FM_RNG_PARTITION):
 *   stream 0, j 0   the global permutation (iid, quantity)
 *   stream 1, j 0   quantity: the clients' log-normal size draws z_0 .. z_{K-1}
 *   stream 2, j k   dirichlet: client k's class mix q_k
 *   stream 3, j c   dirichlet, shards: the order of class c's examples
 *   stream 4, j 0   dirichlet: which client takes the next example
 *   stream 6, j 0   shards: the permutation of the shards
 *   stream 16 + a, j c   hetero-dir attempt a: class c's order and proportions
 * so a partition is a pure function of (method, parameters, labels, seed).
 *
 * Methods (docs/data.md has the same in prose):
 *  iid        permute; client k takes positions [floor(kN/K), floor((k+1)N/K)).
 *  dirichlet  Hsu, Qi, Brown 2019. Quotas as iid. q_k ~ Dir(alpha p), p the
 *             empirical class prior. Until every quota is met: pick a client
 *             with quota left uniformly, draw a class from q_k renormalised
 *             over the classes that still have examples (FedLab/flwr), take
 *             that class's next example. If q_k has no mass on any remaining
 *             class, draw proportionally to the remaining counts. N steps of
 *             O(C): always terminates.
 *  hetero-dir Yurochkin et al. 2019 / FedMA, as FedLab's hetero_dir_partition:
 *             per class, proportions ~ Dir_K(alpha), zeroed for clients that
 *             already hold >= N/K ("balance"; all zero: uncapped), cut at
 *             floor(cumsum * N_c). Accept the first attempt whose smallest
 *             client has >= min_size examples, at most max_attempts; else
 *             keep the attempt with the largest smallest client (earliest on
 *             ties) and repair it: for each client below min_size in index
 *             order, move examples one at a time from the currently largest
 *             client (lowest index on ties), its highest-index example first.
 *  shards     McMahan et al. 2017. S = K k shards. Each class's examples in
 *             a random order; if S >= the number of non-empty classes, every
 *             class gets one shard and the remaining shards go one at a time
 *             to the class whose shards are currently largest (D'Hondt), and
 *             a class is cut into near-equal shards: every shard holds one
 *             label, so a client has at most k labels. Otherwise the
 *             label-sorted order is cut into S near-equal runs (McMahan's
 *             exact scheme). Client k gets shards perm[k k .. k k + k).
 *  quantity   z_k ~ N(0, 1), w_k = exp(sigma z_k); n_k = min_size +
 *             largest-remainder share of N - K min_size by w_k; examples
 *             from the global permutation in runs of n_k (labels iid).
 *
 * Deliberately does not: read or write files (idx.c does), split train/test,
 * or resample without bound. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"
#include "internal.h"

/* ---- gamma and Dirichlet -------------------------------------------------- */

/* Uniform in (0, 1): never 0, so its log is finite. */
static double fm__uniform_open(fm_rng *r) {
  double u = fm_rng_uniform(r);
  return u > 0.0 ? u : 0x1.0p-54;
}

/* Marsaglia and Tsang (2000) for shape >= 1. */
static double fm__gamma_mt(fm_rng *r, double a) {
  const double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = fm_rng_normal(r);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    double u = fm__uniform_open(r);
    if (u < 1.0 - 0.0331 * (x * x) * (x * x)) return d * v;
    if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
  }
}

double fm_sample_gamma(fm_rng *r, double shape) {
  if (!(shape > 0.0)) return 0.0;
  if (shape >= 1.0) return fm__gamma_mt(r, shape);
  double g = fm__gamma_mt(r, shape + 1.0);
  return g * pow(fm__uniform_open(r), 1.0 / shape);
}

double fm_sample_log_gamma(fm_rng *r, double shape) {
  if (!(shape > 0.0)) return -INFINITY;
  if (shape >= 1.0) return log(fm__gamma_mt(r, shape));
  double g = fm__gamma_mt(r, shape + 1.0);
  return log(g) + log(fm__uniform_open(r)) / shape;
}

void fm_sample_dirichlet(fm_rng *r, const double *alpha, size_t k, double *out) {
  double mx = -INFINITY;
  for (size_t j = 0; j < k; j++) {
    out[j] = alpha[j] > 0.0 ? fm_sample_log_gamma(r, alpha[j]) : -INFINITY;
    if (out[j] > mx) mx = out[j];
  }
  double sum = 0.0;
  for (size_t j = 0; j < k; j++) {
    out[j] = isfinite(out[j]) ? exp(out[j] - mx) : 0.0;
    sum += out[j];
  }
  for (size_t j = 0; j < k; j++) out[j] = sum > 0.0 ? out[j] / sum : 0.0;
}

/* ---- options -------------------------------------------------------------- */

static const char *const fm__method_names[] = {"iid", "dirichlet", "hetero-dir", "shards", "quantity"};

const char *fm_partition_method_name(fm_partition_method m) {
  return (unsigned)m < sizeof fm__method_names / sizeof *fm__method_names ? fm__method_names[m] : "unknown";
}

int fm_partition_method_parse(const char *name, fm_partition_method *m) {
  FM_CHECK(name && m, FM_ERR_INVALID_ARG, "fm_partition_method_parse: NULL argument");
  for (size_t j = 0; j < sizeof fm__method_names / sizeof *fm__method_names; j++)
    if (!strcmp(name, fm__method_names[j])) {
      *m = (fm_partition_method)j;
      return FM_OK;
    }
  return FM_ERR(FM_ERR_INVALID_ARG, "unknown partition '%s' (expected iid, dirichlet, hetero-dir, shards or quantity)",
                name);
}

void fm_partition_defaults(fm_partition_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->method = FM_PARTITION_IID;
  o->num_clients = 100;
  o->alpha = 0.5;
  o->classes_per_client = 2;
  o->sigma = 1.0;
  o->min_size = 10;
  o->max_attempts = 100;
  o->seed = 0;
}

/* ---- helpers -------------------------------------------------------------- */

typedef struct {
  size_t n, C, K;
  const int32_t *labels;
  size_t *class_count; /* (C) */
  size_t *class_start; /* (C + 1) offsets into by_class */
  uint32_t *by_class;  /* (n) example indices grouped by class, ascending */
} fm__classes;

static void fm__classes_free(fm__classes *c) {
  fm__free(c->class_count);
  fm__free(c->class_start);
  fm__free(c->by_class);
}

static int fm__classes_build(fm__classes *c, const int32_t *labels, size_t n, size_t C, size_t K) {
  memset(c, 0, sizeof *c);
  c->n = n;
  c->C = C;
  c->K = K;
  c->labels = labels;
  c->class_count = fm__calloc(C, sizeof *c->class_count);
  c->class_start = fm__calloc(C + 1, sizeof *c->class_start);
  c->by_class = fm__malloc((n ? n : 1) * sizeof *c->by_class);
  if (!c->class_count || !c->class_start || !c->by_class) {
    fm__classes_free(c);
    return FM_ERR(FM_ERR_NOMEM, "partition: out of memory for %zu examples, %zu classes", n, C);
  }
  for (size_t i = 0; i < n; i++) c->class_count[labels[i]]++;
  for (size_t k = 0; k < C; k++) c->class_start[k + 1] = c->class_start[k] + c->class_count[k];
  size_t *fill = fm__calloc(C, sizeof *fill);
  if (!fill) {
    fm__classes_free(c);
    return FM_ERR_NOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    size_t k = (size_t)labels[i];
    c->by_class[c->class_start[k] + fill[k]++] = (uint32_t)i;
  }
  fm__free(fill);
  return FM_OK;
}

/* Shuffle each class's examples with its own stream (seed, 3, c). */
static void fm__shuffle_classes(fm__classes *c, uint64_t seed, uint64_t stream) {
  for (size_t k = 0; k < c->C; k++) {
    fm_rng r;
    fm_rng_init(&r, seed, stream, k, FM_RNG_PARTITION);
    fm_rng_shuffle_u32(&r, c->by_class + c->class_start[k], c->class_count[k]);
  }
}

static size_t fm__even_bound(size_t k, size_t n, size_t K) {
  /* floor(k n / K); k <= K and n < 2^32, so k n fits 64 bits */
  return (size_t)(((uint64_t)k * (uint64_t)n) / (uint64_t)K);
}

/* ---- iid and quantity ---------------------------------------------------------- */

/* Client k takes positions [bound_k, bound_{k+1}) of the permutation. */
static int fm__assign_runs(size_t n, size_t K, const size_t *sizes, uint64_t seed, uint32_t *client_of) {
  uint32_t *perm = fm__malloc((n ? n : 1) * sizeof *perm);
  FM_CHECK(perm != NULL, FM_ERR_NOMEM, "partition: out of memory for %zu examples", n);
  for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
  fm_rng r;
  fm_rng_init(&r, seed, 0, 0, FM_RNG_PARTITION);
  fm_rng_shuffle_u32(&r, perm, n);
  size_t pos = 0;
  for (size_t k = 0; k < K; k++) {
    size_t m = sizes ? sizes[k] : fm__even_bound(k + 1, n, K) - fm__even_bound(k, n, K);
    for (size_t j = 0; j < m; j++) client_of[perm[pos + j]] = (uint32_t)k;
    pos += m;
  }
  fm__free(perm);
  return FM_OK;
}

static int fm__quantity(const fm_partition_options *o, size_t n, uint32_t *client_of) {
  const size_t K = o->num_clients;
  FM_CHECK(K * o->min_size <= n, FM_ERR_INVALID_ARG,
           "partition quantity: %zu clients x min_size %zu needs %zu examples; there are %zu", K, o->min_size,
           K * o->min_size, n);
  double *w = fm__malloc(K * sizeof *w), *frac = fm__malloc(K * sizeof *frac);
  size_t *sizes = fm__malloc(K * sizeof *sizes);
  int rc = FM_OK;
  FM_CHECK_GOTO(rc, w && frac && sizes, done, FM_ERR_NOMEM, "partition: out of memory for %zu clients", K);
  fm_rng r;
  fm_rng_init(&r, o->seed, 1, 0, FM_RNG_PARTITION);
  double W = 0.0, mx = -INFINITY;
  for (size_t k = 0; k < K; k++) {
    w[k] = o->sigma * fm_rng_normal(&r); /* log weight */
    if (w[k] > mx) mx = w[k];
  }
  for (size_t k = 0; k < K; k++) {
    w[k] = exp(w[k] - mx); /* scaled: no overflow for large sigma */
    W += w[k];
  }
  const size_t extra = n - K * o->min_size;
  size_t given = 0;
  for (size_t k = 0; k < K; k++) {
    double share = (double)extra * w[k] / W;
    size_t f = (size_t)floor(share);
    if (f > extra - given) f = extra - given;
    sizes[k] = o->min_size + f;
    frac[k] = share - (double)f;
    given += f;
  }
  /* Largest remainders first, lowest index on ties. */
  while (given < extra) {
    size_t best = 0;
    for (size_t k = 1; k < K; k++)
      if (frac[k] > frac[best]) best = k;
    sizes[best]++;
    frac[best] = -1.0;
    given++;
  }
  rc = fm__assign_runs(n, K, sizes, o->seed, client_of);
done:
  fm__free(w);
  fm__free(frac);
  fm__free(sizes);
  return rc;
}

/* ---- dirichlet (Hsu et al.) ----------------------------------------------------- */

static int fm__dirichlet(const fm_partition_options *o, fm__classes *cl, uint32_t *client_of) {
  const size_t K = o->num_clients, C = cl->C, n = cl->n;
  int rc = FM_OK;
  double *q = fm__malloc(K * C * sizeof *q), *a = fm__malloc(C * sizeof *a);
  size_t *quota = fm__malloc(K * sizeof *quota), *left = fm__malloc(C * sizeof *left);
  uint32_t *active = fm__malloc(K * sizeof *active);
  FM_CHECK_GOTO(rc, q && a && quota && left && active, done, FM_ERR_NOMEM,
                "partition dirichlet: out of memory for %zu clients x %zu classes", K, C);
  for (size_t c = 0; c < C; c++) a[c] = o->alpha * (double)cl->class_count[c] / (double)n;
  for (size_t k = 0; k < K; k++) {
    fm_rng r;
    fm_rng_init(&r, o->seed, 2, k, FM_RNG_PARTITION);
    fm_sample_dirichlet(&r, a, C, q + k * C);
    quota[k] = fm__even_bound(k + 1, n, K) - fm__even_bound(k, n, K);
    active[k] = (uint32_t)k;
  }
  fm__shuffle_classes(cl, o->seed, 3);
  for (size_t c = 0; c < C; c++) left[c] = cl->class_count[c];
  size_t nactive = K;
  for (size_t k = K; k-- > 0;)
    if (quota[k] == 0) active[k] = active[--nactive];
  fm_rng r;
  fm_rng_init(&r, o->seed, 4, 0, FM_RNG_PARTITION);
  for (size_t step = 0; step < n && nactive > 0; step++) {
    size_t slot = (size_t)fm_rng_below(&r, nactive);
    size_t k = active[slot];
    const double *qk = q + k * C;
    double total = 0.0;
    for (size_t c = 0; c < C; c++)
      if (left[c]) total += qk[c];
    size_t pick = C;
    double u = fm_rng_uniform(&r);
    if (total > 0.0) {
      double t = u * total, acc = 0.0;
      for (size_t c = 0; c < C && pick == C; c++)
        if (left[c]) {
          acc += qk[c];
          if (t < acc) pick = c;
        }
      for (size_t c = C; pick == C && c-- > 0;) /* rounding at the top end */
        if (left[c] && qk[c] > 0.0) pick = c;
    } else {
      /* no mass left on the remaining classes: follow their counts */
      double t = u * (double)(n - step), acc = 0.0;
      for (size_t c = 0; c < C && pick == C; c++) {
        acc += (double)left[c];
        if (left[c] && t < acc) pick = c;
      }
      for (size_t c = C; pick == C && c-- > 0;)
        if (left[c]) pick = c;
    }
    size_t c = pick;
    size_t taken = cl->class_count[c] - left[c];
    client_of[cl->by_class[cl->class_start[c] + taken]] = (uint32_t)k;
    left[c]--;
    if (--quota[k] == 0) active[slot] = active[--nactive];
  }
done:
  fm__free(q);
  fm__free(a);
  fm__free(quota);
  fm__free(left);
  fm__free(active);
  return rc;
}

/* ---- hetero-dir (Yurochkin et al. / FedMA), bounded ------------------------------ */

/* One attempt: fill client_of and sizes; returns the smallest client size.
 * work (n) is scratch for the classes' example orders. */
static size_t fm__hetero_attempt(const fm_partition_options *o, const fm__classes *cl, unsigned attempt, double *p,
                                 const double *alpha, size_t *sizes, uint32_t *work, uint32_t *client_of) {
  const size_t K = o->num_clients, C = cl->C, n = cl->n;
  const double cap = (double)n / (double)K;
  memset(sizes, 0, K * sizeof *sizes);
  for (size_t c = 0; c < C; c++) {
    size_t nc = cl->class_count[c];
    if (nc == 0) continue;
    uint32_t *idx = work + cl->class_start[c];
    memcpy(idx, cl->by_class + cl->class_start[c], nc * sizeof *idx); /* ascending: the same start each time */
    fm_rng r;
    fm_rng_init(&r, o->seed, 16 + (uint64_t)attempt, c, FM_RNG_PARTITION);
    fm_rng_shuffle_u32(&r, idx, nc);
    fm_sample_dirichlet(&r, alpha, K, p);
    double capped = 0.0;
    for (size_t k = 0; k < K; k++)
      if ((double)sizes[k] < cap) capped += p[k];
    if (capped > 0.0) /* the balance cap, unless every client is full */
      for (size_t k = 0; k < K; k++)
        if ((double)sizes[k] >= cap) p[k] = 0.0;
    double sum = 0.0;
    for (size_t k = 0; k < K; k++) sum += p[k];
    double acc = 0.0;
    size_t start = 0;
    for (size_t k = 0; k < K; k++) {
      size_t end;
      if (k + 1 == K) {
        end = nc;
      } else {
        acc += p[k] / sum;
        double e = floor(acc * (double)nc);
        end = e < 0.0 ? 0 : e > (double)nc ? nc : (size_t)e;
        if (end < start) end = start;
      }
      for (size_t j = start; j < end; j++) client_of[idx[j]] = (uint32_t)k;
      sizes[k] += end - start;
      start = end;
    }
  }
  size_t mn = (size_t)-1;
  for (size_t k = 0; k < K; k++)
    if (sizes[k] < mn) mn = sizes[k];
  return mn;
}

static int fm__hetero_dir(const fm_partition_options *o, fm__classes *cl, uint32_t *client_of,
                          fm_partition_result *res) {
  const size_t K = o->num_clients, n = cl->n;
  FM_CHECK(K * o->min_size <= n, FM_ERR_INVALID_ARG,
           "partition hetero-dir: %zu clients x min_size %zu needs %zu examples; there are %zu", K, o->min_size,
           K * o->min_size, n);
  FM_CHECK(o->max_attempts >= 1, FM_ERR_INVALID_ARG, "partition hetero-dir: max_attempts must be >= 1");
  int rc = FM_OK;
  double *p = fm__malloc(K * sizeof *p), *alpha = fm__malloc(K * sizeof *alpha);
  size_t *sizes = fm__malloc(K * sizeof *sizes), *best_sizes = fm__malloc(K * sizeof *best_sizes);
  uint32_t *best = fm__malloc((n ? n : 1) * sizeof *best), *work = fm__malloc((n ? n : 1) * sizeof *work);
  size_t *start = NULL, *end = NULL;
  uint32_t *members = NULL;
  FM_CHECK_GOTO(rc, p && alpha && sizes && best_sizes && best && work, done, FM_ERR_NOMEM,
                "partition hetero-dir: out of memory for %zu clients", K);
  for (size_t k = 0; k < K; k++) alpha[k] = o->alpha;
  size_t best_min = 0;
  unsigned a;
  int have = 0;
  for (a = 0; a < o->max_attempts; a++) {
    size_t mn = fm__hetero_attempt(o, cl, a, p, alpha, sizes, work, client_of);
    if (!have || mn > best_min) {
      best_min = mn;
      memcpy(best, client_of, n * sizeof *best);
      memcpy(best_sizes, sizes, K * sizeof *sizes);
      have = 1;
    }
    if (mn >= o->min_size) break;
  }
  res->attempts = a < o->max_attempts ? a + 1 : o->max_attempts;
  memcpy(client_of, best, n * sizeof *best);
  memcpy(sizes, best_sizes, K * sizeof *sizes);
  if (best_min >= o->min_size) goto done;

  /* Repair: each client's members in ascending index order; donors give
   * from the end of their list. */
  start = fm__calloc(K + 1, sizeof *start);
  end = fm__malloc(K * sizeof *end);
  members = fm__malloc((n ? n : 1) * sizeof *members);
  FM_CHECK_GOTO(rc, start && end && members, done, FM_ERR_NOMEM, "partition hetero-dir: out of memory");
  for (size_t i = 0; i < n; i++) start[client_of[i] + 1]++;
  for (size_t k = 0; k < K; k++) start[k + 1] += start[k];
  for (size_t k = 0; k < K; k++) end[k] = start[k];
  for (size_t i = 0; i < n; i++) members[end[client_of[i]]++] = (uint32_t)i;
  for (size_t k = 0; k < K; k++) {
    while (sizes[k] < o->min_size) {
      size_t d = 0;
      for (size_t j = 1; j < K; j++)
        if (sizes[j] > sizes[d]) d = j;
      /* d has more than min_size (N >= K min_size) and is never a recipient */
      uint32_t ex = members[--end[d]];
      client_of[ex] = (uint32_t)k;
      sizes[d]--;
      sizes[k]++;
      res->moved++;
    }
  }
done:
  fm__free(p);
  fm__free(alpha);
  fm__free(sizes);
  fm__free(best_sizes);
  fm__free(best);
  fm__free(work);
  fm__free(start);
  fm__free(end);
  fm__free(members);
  return rc;
}

/* ---- shards (McMahan et al.) ---------------------------------------------------- */

static int fm__shards(const fm_partition_options *o, fm__classes *cl, uint32_t *client_of) {
  const size_t K = o->num_clients, k_per = o->classes_per_client, C = cl->C, n = cl->n;
  FM_CHECK(k_per >= 1, FM_ERR_INVALID_ARG, "partition shards: classes_per_client must be >= 1");
  FM_CHECK(K <= n / k_per, FM_ERR_INVALID_ARG,
           "partition shards: %zu clients x %zu shards need at least that many examples; there are %zu", K, k_per, n);
  const size_t S = K * k_per;
  int rc = FM_OK;
  size_t *sh_start = fm__malloc((S + 1) * sizeof *sh_start), *shards_of = fm__calloc(C, sizeof *shards_of);
  uint32_t *perm = fm__malloc(S * sizeof *perm);
  FM_CHECK_GOTO(rc, sh_start && shards_of && perm, done, FM_ERR_NOMEM, "partition shards: out of memory (%zu shards)",
                S);
  fm__shuffle_classes(cl, o->seed, 3);
  size_t nonempty = 0;
  for (size_t c = 0; c < C; c++) nonempty += cl->class_count[c] > 0;
  if (S >= nonempty) {
    /* label-pure shards: one per class, then D'Hondt */
    for (size_t c = 0; c < C; c++) shards_of[c] = cl->class_count[c] > 0;
    for (size_t s = nonempty; s < S; s++) {
      size_t best = C;
      for (size_t c = 0; c < C; c++) {
        if (shards_of[c] == 0 || shards_of[c] >= cl->class_count[c]) continue;
        /* current shard size count/shards: compare a/b > c/d as a d > c b */
        if (best == C || (uint64_t)cl->class_count[c] * shards_of[best] >
                             (uint64_t)cl->class_count[best] * shards_of[c])
          best = c;
      }
      shards_of[best]++; /* best < C: S <= n keeps some class splittable */
    }
    size_t s = 0;
    for (size_t c = 0; c < C; c++)
      for (size_t j = 0; j < shards_of[c]; j++)
        sh_start[s++] = cl->class_start[c] + fm__even_bound(j, cl->class_count[c], shards_of[c]);
    sh_start[S] = n;
  } else {
    for (size_t s = 0; s <= S; s++) sh_start[s] = fm__even_bound(s, n, S);
  }
  for (size_t s = 0; s < S; s++) perm[s] = (uint32_t)s;
  fm_rng r;
  fm_rng_init(&r, o->seed, 6, 0, FM_RNG_PARTITION);
  fm_rng_shuffle_u32(&r, perm, S);
  for (size_t k = 0; k < K; k++)
    for (size_t j = 0; j < k_per; j++) {
      size_t s = perm[k * k_per + j];
      for (size_t e = sh_start[s]; e < sh_start[s + 1]; e++) client_of[cl->by_class[e]] = (uint32_t)k;
    }
done:
  fm__free(sh_start);
  fm__free(shards_of);
  fm__free(perm);
  return rc;
}

/* ---- entry point -------------------------------------------------------------- */

int fm_partition_labels(const fm_partition_options *o, const int32_t *labels, size_t n, size_t num_classes,
                        uint32_t *client_of, fm_partition_result *res) {
  fm_partition_result dummy;
  if (!res) res = &dummy;
  memset(res, 0, sizeof *res);
  res->attempts = 1;
  FM_CHECK(o && (n == 0 || (labels && client_of)), FM_ERR_INVALID_ARG, "fm_partition_labels: NULL argument");
  const char *m = fm_partition_method_name(o->method);
  FM_CHECK((unsigned)o->method <= FM_PARTITION_QUANTITY, FM_ERR_INVALID_ARG, "partition: unknown method %d",
           (int)o->method);
  FM_CHECK(o->num_clients >= 1 && o->num_clients <= UINT32_MAX, FM_ERR_INVALID_ARG,
           "partition %s: num_clients must be in 1..2^32-1 (got %zu)", m, o->num_clients);
  FM_CHECK(n >= o->num_clients, FM_ERR_INVALID_ARG, "partition %s: %zu clients but only %zu examples", m,
           o->num_clients, n);
  FM_CHECK(n <= UINT32_MAX, FM_ERR_INVALID_ARG, "partition %s: at most 2^32-1 examples (got %zu)", m, n);
  FM_CHECK(num_classes >= 1 && num_classes <= ((size_t)1 << 24), FM_ERR_INVALID_ARG,
           "partition %s: num_classes must be in 1..2^24 (got %zu)", m, num_classes);
  for (size_t i = 0; i < n; i++)
    FM_CHECK(labels[i] >= 0 && (size_t)labels[i] < num_classes, FM_ERR_INVALID_ARG,
             "partition %s: label %d of example %zu is outside [0, %zu)", m, (int)labels[i], i, num_classes);
  if (o->method == FM_PARTITION_DIRICHLET || o->method == FM_PARTITION_HETERO_DIR)
    FM_CHECK(isfinite(o->alpha) && o->alpha > 0.0, FM_ERR_INVALID_ARG, "partition %s: alpha must be > 0 (got %g)", m,
             o->alpha);
  if (o->method == FM_PARTITION_QUANTITY)
    FM_CHECK(isfinite(o->sigma) && o->sigma >= 0.0, FM_ERR_INVALID_ARG, "partition %s: sigma must be >= 0 (got %g)",
             m, o->sigma);

  switch (o->method) {
    case FM_PARTITION_IID: return fm__assign_runs(n, o->num_clients, NULL, o->seed, client_of);
    case FM_PARTITION_QUANTITY: return fm__quantity(o, n, client_of);
    default: break;
  }
  fm__classes cl;
  FM_CALL(fm__classes_build(&cl, labels, n, num_classes, o->num_clients));
  int rc;
  if (o->method == FM_PARTITION_DIRICHLET)
    rc = fm__dirichlet(o, &cl, client_of);
  else if (o->method == FM_PARTITION_HETERO_DIR)
    rc = fm__hetero_dir(o, &cl, client_of, res);
  else
    rc = fm__shards(o, &cl, client_of);
  fm__classes_free(&cl);
  return rc;
}
