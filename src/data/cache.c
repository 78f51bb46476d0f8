/* src/data/cache.c — the bounded least-recently-used cache of decoded clients
 * behind fm_client_data_set_cache_bytes.
 *
 * Entries (one client's x (n, D) float32 and y (n, T) int32, T labels per
 * example as the source gives them (1, or L for text), in one allocation
 * with its header) sit in a hash table keyed by client index and on a doubly
 * linked recency list. The accounted bytes (fm__cache_entry_bytes: data plus
 * header plus the entry's share of the hash table) never exceed the limit:
 * put() evicts from the least recently used end and gives up instead of
 * overflowing. A get() copies the entry out without holding the mutex; the
 * entry is pinned meanwhile so no other thread can free it, and pinned
 * entries are skipped by eviction. All state is behind one mutex, distinct
 * from the HDF5 lock, so a hit never waits for another thread's file read.
 *
 * Deliberately does not: cache label-only loads, strings or generic feature
 * reads, prefetch, or share entries between fm_client_data objects. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"
#include "internal.h"

typedef struct fm__centry {
  size_t key;                 /* client index */
  size_t n, D, T, bytes;      /* examples, features, labels per example, accounted bytes */
  unsigned pins;              /* threads copying out of it or borrowing it */
  struct fm__cache *cache;    /* for fm__cache_release */
  struct fm__centry *prev, *next; /* recency list: head = most recent */
  struct fm__centry *hnext;   /* hash chain */
  float *x;                   /* (n, D), inside this allocation */
  int32_t *y;                 /* (n, T) */
} fm__centry;

struct fm__cache {
  pthread_mutex_t mu;
  size_t limit, bytes, peak, entries;
  uint64_t hits, misses, evictions;
  fm__centry *head, *tail;
  fm__centry **buckets;
  size_t nbuckets; /* power of two, or 0 */
};

size_t fm__cache_entry_bytes(size_t n, size_t D, size_t T) {
  /* header (rounded to 64) + x + y + two hash-table pointers (the table has
   * fewer than 2 buckets per entry beyond its first 64) */
  size_t hdr = (sizeof(fm__centry) + 63) / 64 * 64;
  return hdr + n * D * sizeof(float) + n * T * sizeof(int32_t) + 2 * sizeof(fm__centry *);
}

int fm__cache_create(fm__cache **out) {
  fm__cache *c = fm__calloc(1, sizeof *c);
  if (!c) return FM_ERR_NOMEM;
  pthread_mutex_init(&c->mu, NULL);
  *out = c;
  return FM_OK;
}

static size_t fm__bucket(const fm__cache *c, size_t key) {
  return (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ull) >> 20) & (c->nbuckets - 1);
}

static fm__centry *fm__find(const fm__cache *c, size_t key) {
  if (!c->nbuckets) return NULL;
  for (fm__centry *e = c->buckets[fm__bucket(c, key)]; e; e = e->hnext)
    if (e->key == key) return e;
  return NULL;
}

static void fm__list_unlink(fm__cache *c, fm__centry *e) {
  if (e->prev) e->prev->next = e->next; else c->head = e->next;
  if (e->next) e->next->prev = e->prev; else c->tail = e->prev;
  e->prev = e->next = NULL;
}

static void fm__list_push_front(fm__cache *c, fm__centry *e) {
  e->prev = NULL;
  e->next = c->head;
  if (c->head) c->head->prev = e;
  c->head = e;
  if (!c->tail) c->tail = e;
}

static void fm__remove(fm__cache *c, fm__centry *e) {
  fm__centry **pp = &c->buckets[fm__bucket(c, e->key)];
  while (*pp != e) pp = &(*pp)->hnext;
  *pp = e->hnext;
  fm__list_unlink(c, e);
  c->bytes -= e->bytes;
  c->entries--;
  c->evictions++;
  fm__free(e);
}

/* Evict unpinned entries from the least recent end until bytes + extra fits
 * the limit. Returns 1 if it fits. Mutex held. */
static int fm__make_room(fm__cache *c, size_t extra) {
  fm__centry *e = c->tail;
  while (e && c->bytes + extra > c->limit) {
    fm__centry *prev = e->prev;
    if (e->pins == 0) fm__remove(c, e);
    e = prev;
  }
  return c->bytes + extra <= c->limit;
}

/* Grow the table to at least one bucket per entry (mutex held; best effort). */
static void fm__maybe_grow(fm__cache *c) {
  if (c->entries + 1 <= c->nbuckets) return;
  size_t nb = c->nbuckets ? 2 * c->nbuckets : 64;
  fm__centry **b = fm__try_calloc(nb, sizeof *b);
  if (!b) return; /* keep the old table: chains get longer, nothing breaks */
  for (size_t k = 0; k < c->nbuckets; k++) {
    fm__centry *e = c->buckets[k];
    while (e) {
      fm__centry *next = e->hnext;
      size_t h = (size_t)(((uint64_t)e->key * 0x9E3779B97F4A7C15ull) >> 20) & (nb - 1);
      e->hnext = b[h];
      b[h] = e;
      e = next;
    }
  }
  fm__free(c->buckets);
  c->buckets = b;
  c->nbuckets = nb;
}

void fm__cache_destroy(fm__cache *c) {
  if (!c) return;
  fm__centry *e = c->head;
  while (e) {
    fm__centry *next = e->next;
    fm__free(e);
    e = next;
  }
  fm__free(c->buckets);
  pthread_mutex_destroy(&c->mu);
  fm__free(c);
}

void fm__cache_set_limit(fm__cache *c, size_t bytes) {
  pthread_mutex_lock(&c->mu);
  c->limit = bytes;
  fm__make_room(c, 0);
  pthread_mutex_unlock(&c->mu);
}

/* Client i's entry, pinned and made most recent (a hit), or NULL (a miss;
 * not counted while the cache is off and empty). */
static fm__centry *fm__pin(fm__cache *c, size_t i) {
  pthread_mutex_lock(&c->mu);
  fm__centry *e = c->limit == 0 && c->entries == 0 ? NULL : fm__find(c, i);
  if (e) {
    c->hits++;
    e->pins++;
    fm__list_unlink(c, e);
    fm__list_push_front(c, e);
  } else if (c->limit || c->entries) {
    c->misses++;
  }
  pthread_mutex_unlock(&c->mu);
  return e;
}

/* Undo fm__pin; evicts if the bound was lowered while the entry was pinned. */
static void fm__unpin(fm__centry *e) {
  fm__cache *c = e->cache;
  pthread_mutex_lock(&c->mu);
  e->pins--;
  if (c->bytes > c->limit) fm__make_room(c, 0);
  pthread_mutex_unlock(&c->mu);
}

int fm__cache_get(fm__cache *c, size_t i, int want_x, fm_examples *out) {
  fm__centry *e = fm__pin(c, i);
  if (!e) return 0;

  /* Copy out unlocked: the pin keeps the entry alive. */
  int rc = FM_OK;
  float *x = NULL;
  int32_t *y = fm__malloc(e->n * e->T * sizeof *y);
  if (want_x) x = fm__malloc(e->n * e->D * sizeof *x);
  if (!y || (want_x && !x)) {
    fm__free(x);
    fm__free(y);
    rc = FM_ERR_NOMEM;
  } else {
    memcpy(y, e->y, e->n * e->T * sizeof *y);
    if (want_x) memcpy(x, e->x, e->n * e->D * sizeof *x);
    out->n = e->n;
    out->num_features = e->D;
    out->num_targets = e->T;
    out->x = x;
    out->y = y;
  }
  fm__unpin(e);
  return rc == FM_OK ? 1 : rc;
}

int fm__cache_borrow(fm__cache *c, size_t i, fm_examples *out) {
  fm__centry *e = fm__pin(c, i);
  if (!e) return 0;
  out->n = e->n;
  out->num_features = e->D;
  out->num_targets = e->T;
  out->x = e->x;
  out->y = e->y;
  out->owner_ = e;
  return 1;
}

void fm__cache_release(void *owner) { fm__unpin(owner); }

void fm__cache_put(fm__cache *c, size_t i, const fm_examples *ex) {
  if (!ex || !ex->x || !ex->y) return;
  const size_t T = ex->num_targets > 1 ? ex->num_targets : 1;
  const size_t need = fm__cache_entry_bytes(ex->n, ex->num_features, T);
  pthread_mutex_lock(&c->mu);
  int skip = need > c->limit || fm__find(c, i) != NULL;
  pthread_mutex_unlock(&c->mu);
  if (skip) return;

  /* Build the entry unlocked: header, x, y in one block. */
  size_t hdr = (sizeof(fm__centry) + 63) / 64 * 64;
  size_t xs = ex->n * ex->num_features * sizeof(float);
  fm__centry *e = fm__try_malloc(hdr + xs + ex->n * T * sizeof(int32_t));
  if (!e) return; /* a cache that cannot allocate simply does not cache */
  memset(e, 0, sizeof *e);
  e->key = i;
  e->cache = c;
  e->n = ex->n;
  e->D = ex->num_features;
  e->T = T;
  e->bytes = need;
  e->x = (float *)((char *)e + hdr);
  e->y = (int32_t *)((char *)e + hdr + xs);
  memcpy(e->x, ex->x, xs);
  memcpy(e->y, ex->y, ex->n * T * sizeof(int32_t));

  pthread_mutex_lock(&c->mu);
  if (need > c->limit || fm__find(c, i) || !fm__make_room(c, need)) {
    pthread_mutex_unlock(&c->mu);
    fm__free(e);
    return;
  }
  fm__maybe_grow(c);
  if (!c->nbuckets) {
    pthread_mutex_unlock(&c->mu);
    fm__free(e);
    return;
  }
  size_t h = fm__bucket(c, i);
  e->hnext = c->buckets[h];
  c->buckets[h] = e;
  fm__list_push_front(c, e);
  c->bytes += need;
  c->entries++;
  if (c->bytes > c->peak) c->peak = c->bytes;
  pthread_mutex_unlock(&c->mu);
}

void fm__cache_stats(const fm__cache *c, fm_cache_stats *s) {
  fm__cache *m = (fm__cache *)c; /* the mutex is state, not contents */
  pthread_mutex_lock(&m->mu);
  s->hits = c->hits;
  s->misses = c->misses;
  s->evictions = c->evictions;
  s->bytes = c->bytes;
  s->peak_bytes = c->peak;
  s->entries = c->entries;
  s->limit = c->limit;
  pthread_mutex_unlock(&m->mu);
}
