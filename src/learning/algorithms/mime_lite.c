/* src/learning/algorithms/mime_lite.c — Mime Lite (build_weighted_mime_lite,
 * Karimireddy et al. 2021). Each client first computes its full-batch
 * gradient at the broadcast weights, then trains with the base optimizer
 * applied from the server's base optimizer state, which the client never
 * changes; it sends its delta and its full gradient (averaged like the
 * update). The server advances the base optimizer state with the mean full
 * gradient. State: the base optimizer's global state, broadcast each round. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "learning_impl.h"

typedef struct mime_state {
  fm_optimizer_state base;
} mime_state;

static mime_state *mime(const fm_state *s) { return s->algo; }

static int mime_state_init(const fm_process *p, fm_state *s) {
  mime_state *m = fm__calloc(1, sizeof *m);
  if (!m) return FM_ERR_NOMEM;
  s->algo = m;
  return fm_optimizer_state_init(s->client_opt, p->trainable, &m->base);
}

static void mime_state_free(fm_state *s) {
  if (!s->algo) return;
  fm_optimizer_state_free(&mime(s)->base);
  fm__free(s->algo);
  s->algo = NULL;
}

static int mime_broadcast(const fm_process *p, fm_state *s, fm_comm *comm) {
  fm_optimizer_state *b = &mime(s)->base;
  FM_CALL(fm_comm_bcast(comm, &b->step, sizeof b->step));
  if (b->num_slots) FM_CALL(fm_comm_bcast(comm, b->slots, b->num_slots * p->trainable * sizeof(float)));
  return FM_OK;
}

/* The example-weighted mean gradient of one pass over the client's examples
 * at w0, into k->gacc. */
static int mime_client_begin(fm__client_ctx *x) {
  const fm_process *p = x->p;
  const size_t t = p->trainable;
  const float *w0 = x->sh->w0;
  fm__worker *k = x->k;
  memset(k->gacc, 0, t * sizeof(float));
  fm_batching one = {.epochs = 1, .batch_size = x->in->batching.batch_size, .shuffle = 0};
  fm_batch_iter it;
  fm_batch_iter_init(&it, &one, x->ex->n, k->order, 0, 0, x->client);
  size_t nb;
  float loss;
  for (uint64_t b = 0; (nb = fm_batch_iter_next(&it, x->ex, k->xb, k->yb)) > 0; b++) {
    /* dropout's key: steps of their own, apart from the local training's */
    fm_model_set_step(p->model, k->ws, x->s->seed, x->s->round, x->client, UINT64_C(1) << 55 | b);
    FM_CALL(fm_model_forward(p->model, k->ws, w0, k->xb, k->yb, nb, 1, &loss, NULL));
    memset(k->grad, 0, t * sizeof(float));
    FM_CALL(fm_model_backward(p->model, k->ws, w0, k->xb, k->yb, nb, k->grad));
    for (size_t i = 0; i < t; i++) k->gacc[i] += (float)nb * k->grad[i];
  }
  if (x->ex->n)
    for (size_t i = 0; i < t; i++) k->gacc[i] /= (float)x->ex->n;
  return FM_OK;
}

/* Every step applies the server's state; the client never keeps the new one. */
static int mime_gradient(fm__client_ctx *x) {
  const fm_optimizer_state *b = &mime(x->s)->base;
  fm_optimizer_state *o = &x->k->opt;
  if (o->num_slots) memcpy(o->slots, b->slots, o->num_slots * x->p->trainable * sizeof(float));
  o->step = b->step;
  return 0;
}

static int mime_client_end(fm__client_ctx *x, int finite) {
  for (size_t i = 0; i < x->p->trainable && finite; i++) finite = isfinite(x->k->gacc[i]);
  return finite;
}

static void mime_extra_value(fm__client_ctx *x, size_t j, int finite, fm__agg_value *v) {
  (void)j, (void)finite; /* gacc is zeroed for a client whose update was not finite */
  *v = (fm__agg_value){.f = x->k->gacc, .n = x->p->trainable};
}

/* Advance the base optimizer's global state with the mean full gradient. */
static int mime_server_step(const fm_process *p, fm_state *s, double *const *extras, uint64_t population,
                            float *mean, int *non_finite) {
  (void)population, (void)mean;
  if (*non_finite) return FM_OK;
  const size_t t = p->trainable;
  float *g = fm__malloc((t ? t : 1) * sizeof *g), *scratch = fm__calloc(t ? t : 1, sizeof *scratch);
  int rc = g && scratch ? FM_OK : FM_ERR_NOMEM;
  for (size_t i = 0; rc == FM_OK && i < t; i++) {
    g[i] = (float)extras[0][i];
    if (!isfinite(g[i])) *non_finite = 1;
  }
  if (rc == FM_OK && !*non_finite) rc = fm_optimizer_step(s->client_opt, &mime(s)->base, scratch, g, t);
  fm__free(g);
  fm__free(scratch);
  return rc;
}

static void mime_export(const fm_process *p, const fm_state *s, fm_state_view *v) {
  (void)p;
  const fm_optimizer_state *b = &mime(s)->base;
  v->base_num_slots = b->num_slots;
  v->base_slots = b->slots;
  v->base_step = b->step;
}

static int mime_import(const fm_process *p, fm_state *s, const fm_state_view *v) {
  fm_optimizer_state *b = &mime(s)->base;
  if (v->base_num_slots) memcpy(b->slots, v->base_slots, v->base_num_slots * p->trainable * sizeof(float));
  b->step = v->base_step;
  return FM_OK;
}

const fm__algorithm_ops fm__algorithm_mime_lite = {
    .name = "mime_lite",
    .tff_name = "build_weighted_mime_lite",
    .help = "Mime Lite: local steps apply the server's frozen base-optimizer state; clients also send their full "
            "gradient, which advances that state",
    .num_extras = 1,
    .extra_kind = {FM__EXTRA_MEAN},
    .state_init = mime_state_init,
    .state_free = mime_state_free,
    .broadcast = mime_broadcast,
    .client_begin = mime_client_begin,
    .gradient = mime_gradient,
    .client_end = mime_client_end,
    .extra_value = mime_extra_value,
    .server_step = mime_server_step,
    .export_state = mime_export,
    .import_state = mime_import,
};
