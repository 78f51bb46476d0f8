/* src/learning/client_store.c — per-client state that persists across rounds
 * (SCAFFOLD's control variates), kept only on the rank that owns the client.
 * An open-addressing map from client index to a vector of n floats, created
 * zero-filled on first use. Lookups of existing entries are safe from several
 * threads at once; creation is not (the round creates the entries of its
 * owned cohort clients before its parallel region). */
#include <string.h>

#include "internal.h"
#include "learning_impl.h"

#define FM__EMPTY UINT64_MAX

static size_t fm__slot(uint64_t key, size_t cap) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1); }

void fm__client_store_init(fm__client_store *st, size_t n) {
  memset(st, 0, sizeof *st);
  st->n = n;
}

void fm__client_store_free(fm__client_store *st) {
  for (size_t i = 0; i < st->cap; i++)
    if (st->keys[i] != FM__EMPTY) fm__free(st->vals[i]);
  fm__free(st->keys);
  fm__free(st->vals);
  memset(st, 0, sizeof *st);
}

static int fm__client_store_grow(fm__client_store *st) {
  size_t cap = st->cap ? 2 * st->cap : 64;
  uint64_t *keys = fm__malloc(cap * sizeof *keys);
  float **vals = fm__calloc(cap, sizeof *vals);
  if (!keys || !vals) {
    fm__free(keys);
    fm__free(vals);
    return FM_ERR_NOMEM;
  }
  for (size_t i = 0; i < cap; i++) keys[i] = FM__EMPTY;
  for (size_t i = 0; i < st->cap; i++) {
    if (st->keys[i] == FM__EMPTY) continue;
    size_t h = fm__slot(st->keys[i], cap);
    while (keys[h] != FM__EMPTY) h = (h + 1) & (cap - 1);
    keys[h] = st->keys[i];
    vals[h] = st->vals[i];
  }
  fm__free(st->keys);
  fm__free(st->vals);
  st->keys = keys;
  st->vals = vals;
  st->cap = cap;
  return FM_OK;
}

float *fm__client_store_find(const fm__client_store *st, uint64_t key) {
  if (!st->cap) return NULL;
  size_t h = fm__slot(key, st->cap);
  while (st->keys[h] != FM__EMPTY) {
    if (st->keys[h] == key) return st->vals[h];
    h = (h + 1) & (st->cap - 1);
  }
  return NULL;
}

int fm__client_store_get(fm__client_store *st, uint64_t key, float **out) {
  *out = fm__client_store_find(st, key);
  if (*out) return FM_OK;
  if (2 * (st->count + 1) > st->cap) FM_CALL(fm__client_store_grow(st));
  float *v = fm__calloc(st->n ? st->n : 1, sizeof *v);
  if (!v) return FM_ERR_NOMEM;
  size_t h = fm__slot(key, st->cap);
  while (st->keys[h] != FM__EMPTY) h = (h + 1) & (st->cap - 1);
  st->keys[h] = key;
  st->vals[h] = v;
  st->count++;
  *out = v;
  return FM_OK;
}
