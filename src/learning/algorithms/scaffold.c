/* src/learning/algorithms/scaffold.c — SCAFFOLD (Karimireddy et al. 2020,
 * option II). Steps use the gradient corrected by c - c_i; after K local
 * steps the client's control variate becomes c_i+ = c_i - c + (w0 - w)/(K lr)
 * and the client sends delta c = c_i+ - c_i; the server's c grows by the sum
 * of the deltas divided by the population. c is broadcast each round; the
 * c_i live on the rank that owns client i (so: shard assignment) and travel
 * to rank 0 only for checkpoints. The client optimizer must be sgdm. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "learning_impl.h"

typedef struct scaffold_state {
  float *control;           /* (T) the server's c */
  fm__client_store clients; /* c_i of the clients this rank owns */
} scaffold_state;

static scaffold_state *scaffold(const fm_state *s) { return s->algo; }

static int scaffold_state_init(const fm_process *p, fm_state *s) {
  scaffold_state *st = fm__calloc(1, sizeof *st);
  if (!st) return FM_ERR_NOMEM;
  s->algo = st;
  fm__client_store_init(&st->clients, p->trainable);
  st->control = fm__calloc(p->trainable ? p->trainable : 1, sizeof(float));
  return st->control ? FM_OK : FM_ERR_NOMEM;
}

static void scaffold_state_free(fm_state *s) {
  if (!s->algo) return;
  fm__free(scaffold(s)->control);
  fm__client_store_free(&scaffold(s)->clients);
  fm__free(s->algo);
  s->algo = NULL;
}

static int scaffold_broadcast(const fm_process *p, fm_state *s, fm_comm *comm) {
  return fm_comm_bcast(comm, scaffold(s)->control, p->trainable * sizeof(float));
}

/* The owned cohort clients' c_i exist before the threads start. */
static int scaffold_round_begin(const fm_process *p, fm_state *s, const fm_round_input *in, fm_comm *comm) {
  (void)p;
  const uint64_t population = fm_client_data_num_clients(in->data);
  for (size_t i = 0; i < in->cohort_size; i++)
    if (fm_client_owner(in->cohort[i], population, fm_comm_size(comm)) == fm_comm_rank(comm)) {
      float *ci;
      FM_CALL(fm__client_store_get(&scaffold(s)->clients, in->cohort[i], &ci));
    }
  return FM_OK;
}

static int scaffold_client_begin(fm__client_ctx *x) {
  x->cstate = fm__client_store_find(&scaffold(x->s)->clients, x->client);
  FM_CHECK(x->cstate, FM_ERR_INVALID_ARG, "internal: no control variate for client %llu",
           (unsigned long long)x->client);
  return FM_OK;
}

static int scaffold_gradient(fm__client_ctx *x) {
  const float *c = scaffold(x->s)->control, *ci = x->cstate;
  fm__worker *k = x->k;
  for (size_t i = 0; i < x->p->trainable; i++) k->grad[i] += c[i] - ci[i];
  return 0;
}

/* c_i+ = c_i - c + (w0 - w) / (K lr); delta c = c_i+ - c_i into gacc. */
static int scaffold_client_end(fm__client_ctx *x, int finite) {
  if (!finite) return 0;
  const float *c = scaffold(x->s)->control;
  float *ci = x->cstate;
  fm__worker *k = x->k;
  const size_t t = x->p->trainable;
  double klr = (double)x->steps * fm_optimizer_hparam(x->s->client_opt, "learning_rate");
  for (size_t i = 0; i < t; i++) {
    float next = klr > 0 ? (float)((double)ci[i] - c[i] + k->grad[i] / klr) : ci[i];
    k->gacc[i] = next - ci[i];
    if (!isfinite(next)) finite = 0;
  }
  if (finite)
    for (size_t i = 0; i < t; i++) ci[i] += k->gacc[i];
  return finite;
}

static void scaffold_extra_value(fm__client_ctx *x, size_t j, int finite, fm__agg_value *v) {
  (void)j, (void)finite; /* gacc is zeroed for a client whose update was not finite */
  *v = (fm__agg_value){.f = x->k->gacc, .n = x->p->trainable};
}

/* c += sum(delta c_i) / N */
static int scaffold_server_step(const fm_process *p, fm_state *s, double *const *extras, uint64_t population,
                                float *mean, int *non_finite) {
  (void)mean;
  if (*non_finite) return FM_OK;
  float *c = scaffold(s)->control;
  for (size_t i = 0; i < p->trainable; i++) c[i] = (float)((double)c[i] + extras[0][i] / (double)population);
  return FM_OK;
}

static void scaffold_export(const fm_process *p, const fm_state *s, fm_state_view *v) {
  (void)p;
  v->control = scaffold(s)->control;
}

static int scaffold_import(const fm_process *p, fm_state *s, const fm_state_view *v) {
  scaffold_state *st = scaffold(s);
  memcpy(st->control, v->control, p->trainable * sizeof(float));
  for (size_t i = 0; i < v->num_clients; i++) {
    float *ci;
    FM_CALL(fm__client_store_get(&st->clients, v->client_ids[i], &ci));
    memcpy(ci, v->client_values + i * p->trainable, p->trainable * sizeof(float));
  }
  return FM_OK;
}

static const fm__client_store *scaffold_client_store(const fm_state *s) { return &scaffold(s)->clients; }

const fm__algorithm_ops fm__algorithm_scaffold = {
    .name = "scaffold",
    .tff_name = "(none in TFF: Karimireddy et al. 2020, option II)",
    .help = "SCAFFOLD: control variates correct client drift; per-client state on the owning rank (shard "
            "assignment); client optimizer sgdm",
    .flags = FM__ALGO_SGD_ONLY | FM__ALGO_SHARD_ONLY,
    .num_extras = 1,
    .extra_kind = {FM__EXTRA_SUM},
    .state_init = scaffold_state_init,
    .state_free = scaffold_state_free,
    .broadcast = scaffold_broadcast,
    .round_begin = scaffold_round_begin,
    .client_begin = scaffold_client_begin,
    .gradient = scaffold_gradient,
    .client_end = scaffold_client_end,
    .extra_value = scaffold_extra_value,
    .server_step = scaffold_server_step,
    .export_state = scaffold_export,
    .import_state = scaffold_import,
    .client_store = scaffold_client_store,
};
