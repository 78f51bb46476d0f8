/* src/learning/process.c — the composed learning process
 * (compose_learning_process), the builders of the registered algorithms,
 * the process state and its checkpoint views, cohort sampling and shard
 * ownership. One round of the process is in round.c.
 *
 * Deliberately not here: MPI (through fm_comm only), cohort selection policy
 * (the caller passes the cohort), file output. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "learning_impl.h"

/* ---- composition ------------------------------------------------------------- */

/* The packed sums of a round and the aggregators of the algorithm's extras:
 *   [update aggregator | rejected | metrics (M) | extra aggregator 0 | ...] */
static int fm__process_layout(fm_process *p) {
  const fm__algorithm_ops *algo = p->algo;
  size_t off = fm__aggregator_num_slots(p->agg, p->trainable);
  p->slot_rejected = off++;
  p->slot_metrics = off;
  off += p->num_metric_values;
  for (size_t j = 0; j < algo->num_extras; j++) {
    /* extras averaged like the update get a plain mean of the same weighting
     * (TFF's Mime Lite: full_gradient_aggregator = MeanFactory) */
    FM_CALL(algo->extra_kind[j] == FM__EXTRA_MEAN ? fm__aggregator_create_plain_mean(p->agg->weighted, &p->extra_agg[j])
                                                  : fm__aggregator_create_sum(&p->extra_agg[j]));
    p->extra_size[j] = algo->extra_is_scalar[j] ? 1 : p->trainable;
    p->slot_extra[j] = off;
    off += fm__aggregator_num_slots(p->extra_agg[j], p->extra_size[j]);
  }
  p->num_slots = off;
  /* the chain's aggregators get distinct random streams (DP noise) by depth */
  unsigned id = 0;
  for (fm_aggregator *a = p->agg; a; a = a->inner) a->id = id++;
  p->agg_state_n = fm__aggregator_state_size(p->agg);
  p->agg_server_n = fm__aggregator_server_size(p->agg, p->trainable);
  return FM_OK;
}

int fm_process_compose(const fm_model *model, fm_client_work *cw, fm_aggregator *agg, fm_finalizer *fin,
                       fm_process **out) {
  int rc = FM_OK;
  fm_process *p = NULL;
  FM_CHECK_GOTO(rc, out, fail, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  FM_CHECK_GOTO(rc, model, fail, FM_ERR_MISSING_STAGE, "learning process needs a model");
  FM_CHECK_GOTO(rc, cw, fail, FM_ERR_MISSING_STAGE, "learning process needs a client work stage");
  FM_CHECK_GOTO(rc, agg, fail, FM_ERR_MISSING_STAGE, "learning process needs an aggregator");
  FM_CHECK_GOTO(rc, fin, fail, FM_ERR_MISSING_STAGE, "learning process needs a finalizer");
  FM_CHECK_GOTO(rc, cw->model == model, fail, FM_ERR_LAYOUT_MISMATCH,
                "client work was built for a different model ('%s') than the process ('%s')",
                fm_model_type(cw->model), fm_model_type(model));
  FM_CHECK_GOTO(rc, fm_layout_equal(fin->layout, fm_model_layout(model)), fail, FM_ERR_LAYOUT_MISMATCH,
                "the finalizer's weights layout (%zu tensors, %zu floats) differs from the model's '%s' "
                "(%zu tensors, %zu floats)",
                fm_layout_num_tensors(fin->layout), fm_layout_numel(fin->layout), fm_model_type(model),
                fm_layout_num_tensors(fm_model_layout(model)), fm_layout_numel(fm_model_layout(model)));
  FM_CHECK_GOTO(rc, agg->weighted || cw->weighting == FM_WEIGHTING_UNIFORM, fail, FM_ERR_NOT_WEIGHTED,
                "aggregator '%s' is unweighted but the client work weights clients by NUM_EXAMPLES; "
                "use a weighted aggregator (mean) or UNIFORM weighting",
                agg->name);
  p = fm__calloc(1, sizeof *p);
  if (!p) {
    rc = FM_ERR_NOMEM;
    goto fail;
  }
  p->model = model;
  p->cw = cw;
  p->agg = agg;
  p->fin = fin;
  p->algo = cw->algo;
  p->numel = fm_layout_numel(fm_model_layout(model));
  p->trainable = fm_layout_trainable_numel(fm_model_layout(model));
  p->num_metric_values = fm_model_num_metric_values(model);
  rc = fm__process_layout(p);
  if (rc != FM_OK) {
    fm_process_destroy(&p);
    return rc;
  }
  *out = p;
  return FM_OK;
fail:
  fm_client_work_destroy(&cw);
  fm_aggregator_destroy(&agg);
  fm_finalizer_destroy(&fin);
  return rc;
}

/* Every builder: the algorithm's client work by name, the default
 * aggregator when agg is NULL (weighted mean, or unweighted when
 * weighted_default is 0), the apply-optimizer finalizer, then compose. */
static int fm__build(const fm_model *model, const char *algorithm, const fm_hparams *hparams, fm_optimizer *client_opt,
                     fm_optimizer *server_opt, fm_weighting weighting, fm_aggregator *agg, int weighted_default,
                     fm_process **out) {
  int rc = FM_OK;
  fm_client_work *cw = NULL;
  fm_finalizer *fin = NULL;
  if (!model) rc = FM_ERR(FM_ERR_MISSING_STAGE, "%s needs a model", algorithm ? algorithm : "a process");
  if (rc == FM_OK && !agg) rc = fm__aggregator_create_plain_mean(weighted_default, &agg);
  if (rc != FM_OK) {
    fm_optimizer_destroy(&client_opt);
    fm_optimizer_destroy(&server_opt);
    fm_aggregator_destroy(&agg);
    return rc;
  }
  rc = fm_client_work_create(model, algorithm, hparams, client_opt, weighting, &cw); /* takes client_opt */
  if (rc == FM_OK) rc = fm_finalizer_create_apply_optimizer(server_opt, fm_model_layout(model), &fin);
  else fm_optimizer_destroy(&server_opt);
  if (rc != FM_OK) {
    fm_client_work_destroy(&cw);
    fm_aggregator_destroy(&agg);
    return rc;
  }
  return fm_process_compose(model, cw, agg, fin, out);
}

int fm_process_create(const fm_model *model, const char *algorithm, const fm_hparams *hparams,
                      fm_optimizer *client_opt, fm_optimizer *server_opt, fm_weighting weighting, fm_aggregator *agg,
                      fm_process **out) {
  const fm__algorithm_ops *algo = fm__algorithm_find(algorithm);
  if (algo && (algo->flags & FM__ALGO_NO_CLIENT_OPT)) fm_optimizer_destroy(&client_opt);
  return fm__build(model, algorithm, hparams, client_opt, server_opt, weighting, agg,
                   weighting == FM_WEIGHTING_NUM_EXAMPLES, out);
}

int fm_process_create_weighted_fed_avg(const fm_model *model, fm_optimizer *client_opt, fm_optimizer *server_opt,
                              fm_weighting weighting, fm_aggregator *agg, fm_process **out) {
  return fm__build(model, "fedavg", NULL, client_opt, server_opt, weighting, agg, 1, out);
}

int fm_process_create_unweighted_fed_avg(const fm_model *model, fm_optimizer *client_opt, fm_optimizer *server_opt,
                                fm_aggregator *agg, fm_process **out) {
  return fm__build(model, "fedavg", NULL, client_opt, server_opt, FM_WEIGHTING_UNIFORM, agg, 0, out);
}

int fm_process_create_fed_prox(const fm_model *model, double proximal_strength, fm_optimizer *client_opt,
                      fm_optimizer *server_opt, fm_weighting weighting, fm_aggregator *agg, fm_process **out) {
  fm_hparams hp = {0};
  int rc = fm_hparams_put(&hp, "proximal_strength", proximal_strength);
  if (rc != FM_OK) {
    fm_optimizer_destroy(&client_opt);
    fm_optimizer_destroy(&server_opt);
    fm_aggregator_destroy(&agg);
    return rc;
  }
  return fm_process_create(model, "fedprox", &hp, client_opt, server_opt, weighting, agg, out);
}

int fm_process_create_fed_sgd(const fm_model *model, fm_optimizer *server_opt, fm_weighting weighting, fm_aggregator *agg,
                     fm_process **out) {
  return fm_process_create(model, "fedsgd", NULL, NULL, server_opt, weighting, agg, out);
}

int fm_process_create_mime_lite(const fm_model *model, fm_optimizer *base_opt, fm_optimizer *server_opt, fm_weighting weighting,
                       fm_aggregator *agg, fm_process **out) {
  return fm_process_create(model, "mime_lite", NULL, base_opt, server_opt, weighting, agg, out);
}

int fm_process_create_scaffold(const fm_model *model, fm_optimizer *client_opt, fm_optimizer *server_opt, fm_weighting weighting,
                      fm_aggregator *agg, fm_process **out) {
  return fm_process_create(model, "scaffold", NULL, client_opt, server_opt, weighting, agg, out);
}

int fm_process_create_fed_nova(const fm_model *model, fm_optimizer *client_opt, fm_optimizer *server_opt, fm_weighting weighting,
                      fm_aggregator *agg, fm_process **out) {
  return fm_process_create(model, "fednova", NULL, client_opt, server_opt, weighting, agg, out);
}

void fm_process_destroy(fm_process **p) {
  if (!p || !*p) return;
  fm_client_work_destroy(&(*p)->cw);
  fm_aggregator_destroy(&(*p)->agg);
  for (size_t j = 0; j < FM__MAX_EXTRAS; j++) fm_aggregator_destroy(&(*p)->extra_agg[j]);
  fm_finalizer_destroy(&(*p)->fin);
  fm__secure_metrics_destroy(&(*p)->secure_metrics);
  fm__free(*p);
  *p = NULL;
}

const fm_model *fm_process_model(const fm_process *p) { return p->model; }

/* ---- state ------------------------------------------------------------------ */

int fm_process_initialize(const fm_process *p, uint64_t seed, fm_state **out) {
  FM_CHECK(p && out, FM_ERR_INVALID_ARG, "NULL argument");
  *out = NULL;
  int rc = FM_OK;
  fm_state *s = fm__calloc(1, sizeof *s);
  if (!s) return FM_ERR_NOMEM;
  s->owner = p;
  s->seed = seed;
  s->weights = fm__calloc(p->numel, sizeof(float));
  if (!s->weights) {
    rc = FM_ERR_NOMEM;
    goto fail;
  }
  FM_CALL_GOTO(rc, fm_model_init_weights(p->model, s->weights, seed), fail);
  if (p->cw->opt) FM_CALL_GOTO(rc, fm_optimizer_clone(p->cw->opt, &s->client_opt), fail);
  FM_CALL_GOTO(rc, fm_optimizer_clone(p->fin->opt, &s->server_opt), fail);
  FM_CALL_GOTO(rc, fm_optimizer_state_init(s->server_opt, p->trainable, &s->server_state), fail);
  s->agg_state = fm__calloc(p->agg_state_n + 1, sizeof(double));
  if (!s->agg_state) {
    rc = FM_ERR_NOMEM;
    goto fail;
  }
  fm__aggregator_state_init(p->agg, s->agg_state);
  if (p->agg_server_n) {
    /* calloc'd: pages the tree never reaches are never touched */
    s->agg_server = fm__calloc(p->agg_server_n, sizeof(float));
    if (!s->agg_server) {
      rc = FM_ERR(FM_ERR_NOMEM, "out of memory for the aggregator's server state (%zu floats)", p->agg_server_n);
      goto fail;
    }
    fm__aggregator_server_init(p->agg, s->agg_state, s->agg_server, p->trainable, seed);
  }
  s->algo_free = p->algo->state_free;
  if (p->algo->state_init) FM_CALL_GOTO(rc, p->algo->state_init(p, s), fail);
  *out = s;
  return FM_OK;
fail:
  fm_state_destroy(&s);
  return rc;
}

void fm_state_destroy(fm_state **s) {
  if (!s || !*s) return;
  fm__free((*s)->weights);
  fm__free((*s)->agg_state);
  fm__free((*s)->agg_server);
  fm_optimizer_destroy(&(*s)->client_opt);
  fm_optimizer_destroy(&(*s)->server_opt);
  fm_optimizer_state_free(&(*s)->server_state);
  if ((*s)->algo_free) (*s)->algo_free(*s);
  fm__free(*s);
  *s = NULL;
}

uint64_t fm_state_round(const fm_state *s) { return s->round; }
uint64_t fm_state_seed(const fm_state *s) { return s->seed; }
const float *fm_state_weights(const fm_state *s) { return s->weights; }

#define FM__CHECK_STATE(p, s)                                                                                \
  FM_CHECK((p) && (s), FM_ERR_INVALID_ARG, "NULL process or state");                                       \
  FM_CHECK((s)->owner == (p), FM_ERR_STATE_MISMATCH, "the state was initialized by a different process")

int fm_process_get_model_weights(const fm_process *p, const fm_state *s, float *w) {
  FM__CHECK_STATE(p, s);
  memcpy(w, s->weights, p->numel * sizeof(float));
  return FM_OK;
}

int fm_process_set_model_weights(const fm_process *p, fm_state *s, const float *w) {
  FM__CHECK_STATE(p, s);
  for (size_t i = 0; i < p->numel; i++)
    FM_CHECK(isfinite(w[i]), FM_ERR_NON_FINITE, "model weight %zu is not finite", i);
  memcpy(s->weights, w, p->numel * sizeof(float));
  return FM_OK;
}

int fm_process_get_hparams(const fm_process *p, const fm_state *s, fm_hparams *client_work, fm_hparams *finalizer) {
  FM__CHECK_STATE(p, s);
  if (client_work) {
    if (s->client_opt)
      fm_optimizer_get_hparams(s->client_opt, client_work);
    else
      fm_hparams_clear(client_work); /* FedSGD: no client optimizer */
  }
  if (finalizer) fm_optimizer_get_hparams(s->server_opt, finalizer);
  return FM_OK;
}

int fm_process_set_hparams(const fm_process *p, fm_state *s, const fm_hparams *client_work,
                           const fm_hparams *finalizer) {
  FM__CHECK_STATE(p, s);
  /* Validate both before changing either, so a failure changes nothing. */
  fm_optimizer *c = NULL, *f = NULL;
  int rc = FM_OK;
  if (client_work && client_work->n && !s->client_opt)
    return FM_ERR(FM_ERR_HPARAM_UNKNOWN, "%s has no client hyperparameters ('%s' given)", p->algo->name,
                  client_work->item[0].name);
  if (!s->client_opt) client_work = NULL;
  if (s->client_opt) FM_CALL_GOTO(rc, fm_optimizer_clone(s->client_opt, &c), done);
  FM_CALL_GOTO(rc, fm_optimizer_clone(s->server_opt, &f), done);
  if (client_work) FM_CALL_GOTO(rc, fm_optimizer_set_hparams(c, client_work), done);
  if (finalizer) FM_CALL_GOTO(rc, fm_optimizer_set_hparams(f, finalizer), done);
  if (client_work) FM_CALL_GOTO(rc, fm_optimizer_set_hparams(s->client_opt, client_work), done);
  if (finalizer) FM_CALL_GOTO(rc, fm_optimizer_set_hparams(s->server_opt, finalizer), done);
done:
  fm_optimizer_destroy(&c);
  fm_optimizer_destroy(&f);
  return rc;
}

/* ---- sampling and ownership ----------------------------------------------------- */

static int fm__cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

int fm_sample_cohort(uint64_t seed, uint64_t round, uint64_t population, size_t k, uint64_t *out) {
  FM_CHECK(k > 0, FM_ERR_COHORT, "clients per round must be at least 1");
  FM_CHECK(k <= population, FM_ERR_COHORT, "cannot sample %zu clients per round from a population of %llu clients",
           k, (unsigned long long)population);
  /* Floyd's algorithm: k draws, a hash set of the chosen ids, O(k). */
  size_t cap = 16;
  while (cap < 2 * k) cap <<= 1;
  uint64_t *set = fm__malloc(cap * sizeof *set);
  if (!set) return FM_ERR_NOMEM;
  const uint64_t empty = UINT64_MAX;
  for (size_t i = 0; i < cap; i++) set[i] = empty;
  fm_rng r;
  fm_rng_init(&r, seed, round, 0, FM_RNG_SAMPLE);
  size_t m = 0;
  for (uint64_t j = population - k; j < population; j++) {
    uint64_t t = fm_rng_below(&r, j + 1);
    uint64_t pick = t;
    /* probe for t; if present take j (which cannot be present yet) */
    size_t h = (size_t)((t * 0x9E3779B97F4A7C15ull) >> 7) & (cap - 1);
    while (set[h] != empty && set[h] != t) h = (h + 1) & (cap - 1);
    if (set[h] == t) {
      pick = j;
      h = (size_t)((j * 0x9E3779B97F4A7C15ull) >> 7) & (cap - 1);
      while (set[h] != empty) h = (h + 1) & (cap - 1);
    }
    set[h] = pick;
    out[m++] = pick;
  }
  fm__free(set);
  qsort(out, k, sizeof *out, fm__cmp_u64);
  return FM_OK;
}

int fm_client_owner(uint64_t c, uint64_t population, int size) {
  if (size <= 1 || population == 0) return 0;
  /* Rank r owns the contiguous shard [floor(r N / size), floor((r+1) N / size)),
   * so owner(c) = the largest r with floor(r N / size) <= c
   *             = floor(((c + 1) size - 1) / N).  (No overflow below N * size = 2^64.) */
  return (int)(((c + 1) * (uint64_t)size - 1) / population);
}

/* ---- checkpoint views ------------------------------------------------------ */

int fm_state_export(const fm_process *p, const fm_state *s, fm_state_view *out) {
  FM__CHECK_STATE(p, s);
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  memset(out, 0, sizeof *out);
  out->round = s->round;
  out->seed = s->seed;
  out->numel = p->numel;
  out->weights = s->weights;
  if (s->client_opt) fm_optimizer_get_hparams(s->client_opt, &out->client_hparams);
  fm_optimizer_get_hparams(s->server_opt, &out->server_hparams);
  out->opt_num_slots = s->server_state.num_slots;
  out->opt_n = s->server_state.n;
  out->opt_slots = s->server_state.slots;
  out->opt_step = s->server_state.step;
  out->client_floats = p->trainable;
  out->agg_state_n = p->agg_state_n;
  out->agg_state = p->agg_state_n ? s->agg_state : NULL;
  out->agg_server_n = p->agg_server_n ? fm__aggregator_server_used(p->agg, s->agg_state, p->trainable) : 0;
  out->agg_server = out->agg_server_n ? s->agg_server : NULL;
  if (p->algo->export_state) p->algo->export_state(p, s, out);
  return FM_OK;
}

/* Records are [u64 | T floats]: with T odd, a record's key is only 4-byte aligned. */
static int fm__cmp_entry(const void *a, const void *b) {
  uint64_t x, y;
  memcpy(&x, a, sizeof x);
  memcpy(&y, b, sizeof y);
  return (x > y) - (x < y);
}

int fm_state_gather_clients(const fm_process *p, const fm_state *s, fm_comm *comm, uint64_t **ids, float **values,
                            size_t *num_clients) {
  FM__CHECK_STATE(p, s);
  *ids = NULL;
  *values = NULL;
  *num_clients = 0;
  const fm__client_store none = {.n = p->trainable};
  const fm__client_store *st = p->algo->client_store ? p->algo->client_store(s) : &none;
  const size_t t = st->n, rec = sizeof(uint64_t) + t * sizeof(float);
  /* Pack this rank's entries as [client u64 | T floats] records. */
  size_t mine = st->count;
  char *send = fm__malloc(mine * rec + 1), *all = NULL;
  int rc = send ? FM_OK : FM_ERR_NOMEM;
  size_t k = 0;
  for (size_t i = 0; rc == FM_OK && i < st->cap; i++) {
    if (st->keys[i] == UINT64_MAX) continue;
    memcpy(send + k * rec, &st->keys[i], sizeof(uint64_t));
    memcpy(send + k * rec + sizeof(uint64_t), st->vals[i], t * sizeof(float));
    k++;
  }
  size_t bytes = 0;
  rc = fm_comm_agree(comm, rc);
  if (rc == FM_OK) rc = fm_comm_gather(comm, send, rc == FM_OK ? k * rec : 0, (void **)&all, &bytes);
  fm__free(send);
  if (rc != FM_OK || comm->rank != 0) {
    fm__free(all);
    return rc;
  }
  size_t n = bytes / rec;
  qsort(all, n, rec, fm__cmp_entry); /* the file does not depend on the layout */
  *ids = fm__malloc((n ? n : 1) * sizeof **ids);
  *values = fm__malloc((n ? n : 1) * t * sizeof **values + sizeof **values);
  if (!*ids || !*values) {
    fm__free(*ids);
    fm__free(*values);
    fm__free(all);
    *ids = NULL;
    *values = NULL;
    return FM_ERR_NOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    memcpy(&(*ids)[i], all + i * rec, sizeof(uint64_t));
    memcpy(*values + i * t, all + i * rec + sizeof(uint64_t), t * sizeof(float));
  }
  fm__free(all);
  *num_clients = n;
  return FM_OK;
}

int fm_state_import(const fm_process *p, fm_state *s, const fm_state_view *v) {
  FM__CHECK_STATE(p, s);
  FM_CHECK(v && v->weights, FM_ERR_INVALID_ARG, "NULL state view");
  FM_CHECK(v->numel == p->numel, FM_ERR_STATE_MISMATCH, "saved weights have %zu values, the model has %zu",
           v->numel, p->numel);
  FM_CHECK(v->opt_num_slots == s->server_state.num_slots && v->opt_n == s->server_state.n, FM_ERR_STATE_MISMATCH,
           "saved server optimizer state is %zu x %zu, '%s' needs %zu x %zu", v->opt_num_slots, v->opt_n,
           fm_optimizer_type(s->server_opt), s->server_state.num_slots, s->server_state.n);
  FM_CHECK(v->opt_num_slots == 0 || v->opt_slots, FM_ERR_INVALID_ARG, "saved optimizer slots missing");
  /* What this process's state holds, to compare the saved parts with. */
  fm_state_view want;
  FM_CALL(fm_state_export(p, s, &want));
  FM_CHECK(v->base_num_slots == want.base_num_slots && (!v->base_num_slots || v->base_slots), FM_ERR_STATE_MISMATCH,
           "saved base optimizer state has %zu buffers, the %s process needs %zu", v->base_num_slots, p->algo->name,
           want.base_num_slots);
  FM_CHECK(!want.control == !v->control, FM_ERR_STATE_MISMATCH, "the saved state %s a SCAFFOLD control variate",
           v->control ? "has" : "lacks");
  FM_CHECK(v->num_clients == 0 || (p->algo->client_store && v->client_floats == p->trainable && v->client_ids &&
                                   v->client_values),
           FM_ERR_STATE_MISMATCH, "the saved per-client state (%zu clients x %zu) does not fit the %s process",
           v->num_clients, v->client_floats, p->algo->name);
  FM_CHECK(v->agg_state_n == p->agg_state_n && (!v->agg_state_n || v->agg_state), FM_ERR_STATE_MISMATCH,
           "the saved aggregator state has %zu values, aggregator '%s' keeps %zu", v->agg_state_n, p->agg->name,
           p->agg_state_n);
  for (size_t i = 0; i < v->agg_state_n; i++)
    FM_CHECK(isfinite(v->agg_state[i]), FM_ERR_NON_FINITE, "saved aggregator state value %zu is not finite", i);
  const size_t server_n = p->agg_server_n && v->agg_state_n ? fm__aggregator_server_used(p->agg, v->agg_state, p->trainable) : 0;
  FM_CHECK(v->agg_server_n == server_n && server_n <= p->agg_server_n && (!server_n || v->agg_server),
           FM_ERR_STATE_MISMATCH, "the saved aggregator server state has %zu values, aggregator '%s' needs %zu here",
           v->agg_server_n, p->agg->name, server_n);
  for (size_t i = 0; i < v->agg_server_n; i++)
    FM_CHECK(isfinite(v->agg_server[i]), FM_ERR_NON_FINITE, "saved aggregator server state value %zu is not finite", i);
  for (size_t i = 0; i < p->numel; i++)
    FM_CHECK(isfinite(v->weights[i]), FM_ERR_NON_FINITE, "saved model weight %zu is not finite", i);
  FM_CALL(fm_process_set_hparams(p, s, &v->client_hparams, &v->server_hparams));
  memcpy(s->weights, v->weights, p->numel * sizeof(float));
  if (v->opt_num_slots)
    memcpy(s->server_state.slots, v->opt_slots, v->opt_num_slots * v->opt_n * sizeof(float));
  s->server_state.step = v->opt_step;
  if (v->agg_state_n) memcpy(s->agg_state, v->agg_state, v->agg_state_n * sizeof(double));
  if (v->agg_server_n) memcpy(s->agg_server, v->agg_server, v->agg_server_n * sizeof(float));
  if (p->algo->import_state) FM_CALL(p->algo->import_state(p, s, v));
  s->round = v->round;
  s->seed = v->seed;
  return FM_OK;
}
