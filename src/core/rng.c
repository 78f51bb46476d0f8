/* src/core/rng.c — Philox4x32-10 streams (Random123) keyed by the seed, with
 * (round, client, purpose, block) in the counter. Deliberately no global state. */
#include <math.h>

#include <Random123/philox.h>

#include "fedmpi/rng.h"

void fm_rng_init(fm_rng *r, uint64_t seed, uint64_t round, uint64_t client, uint32_t purpose) {
  r->key[0] = (uint32_t)seed;
  r->key[1] = (uint32_t)(seed >> 32);
  /* round: 32 bits; client: 48 bits; purpose: 16 bits; block: 32 bits. */
  r->ctr[0] = (uint32_t)round ^ (uint32_t)(round >> 32);
  r->ctr[1] = (uint32_t)client;
  r->ctr[2] = (uint32_t)((client >> 32) & 0xffffu) | (purpose << 16);
  r->ctr[3] = 0;
  r->used = 4;
}

static void fm__rng_refill(fm_rng *r) {
  philox4x32_ctr_t c = {{r->ctr[0], r->ctr[1], r->ctr[2], r->ctr[3]}};
  philox4x32_key_t k = {{r->key[0], r->key[1]}};
  philox4x32_ctr_t out = philox4x32(c, k);
  for (int i = 0; i < 4; i++) r->buf[i] = out.v[i];
  r->ctr[3]++;
  r->used = 0;
}

uint32_t fm_rng_u32(fm_rng *r) {
  if (r->used >= 4) fm__rng_refill(r);
  return r->buf[r->used++];
}

uint64_t fm_rng_u64(fm_rng *r) {
  uint64_t hi = fm_rng_u32(r);
  return (hi << 32) | fm_rng_u32(r);
}

double fm_rng_uniform(fm_rng *r) { return (double)(fm_rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t fm_rng_below(fm_rng *r, uint64_t n) {
  /* Rejection from the top of the 64-bit range keeps it unbiased. */
  uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
  uint64_t x;
  do x = fm_rng_u64(r);
  while (x >= limit);
  return x % n;
}

double fm_rng_normal(fm_rng *r) {
  double u1 = fm_rng_uniform(r);
  double u2 = fm_rng_uniform(r);
  if (u1 <= 0.0) u1 = 0x1.0p-53;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925286766559 * u2);
}

void fm_rng_shuffle_u32(fm_rng *r, uint32_t *idx, size_t n) {
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)fm_rng_below(r, i);
    uint32_t t = idx[i - 1];
    idx[i - 1] = idx[j];
    idx[j] = t;
  }
}
