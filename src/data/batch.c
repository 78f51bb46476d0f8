/* src/data/batch.c — one client's example stream as TFF builds it:
 * dataset.shuffle(buffer).repeat(epochs).take(max_examples).batch(batch_size).
 * The stream is the concatenation of `epochs` passes over the n examples; with
 * shuffling, each pass is reshuffled (tf.data's reshuffle_each_iteration),
 * drawing from ONE Philox stream fm_rng(seed, round, client, FM_RNG_SHUFFLE)
 * continued across epochs, so the order depends only on (seed, round,
 * client), never on rank or thread. A buffer of at least n gives a uniform
 * permutation (Fisher-Yates); a smaller one reproduces tf.data's buffered
 * shuffle: fill the buffer with the first examples, then repeatedly emit a
 * uniformly chosen buffer slot and refill it with the next example.
 * Batches are consecutive stream positions and may span epochs; the last one
 * may be shorter. An example's T labels (ex->num_targets: 1, or L for text)
 * travel with it: yb is (batch, T).
 *
 * Deliberately does not allocate (the caller owns order[], xb and yb) and
 * does not drop the remainder batch (TFF keeps it). */
#include <string.h>

#include "fedmpi/data.h"
#include "internal.h"

static int fm__buffered(const fm_batching *b, size_t n) {
  return b->shuffle && b->shuffle_buffer > 0 && b->shuffle_buffer < n;
}

size_t fm_batch_iter_scratch(const fm_batching *b, size_t n) {
  return b && fm__buffered(b, n) ? n + b->shuffle_buffer : n;
}

void fm_batching_counts(const fm_batching *b, size_t n, uint64_t *num_examples, uint64_t *num_batches) {
  uint64_t ex = (b && b->epochs > 0) ? (uint64_t)b->epochs * (uint64_t)n : 0;
  if (b && b->max_examples > 0 && ex > b->max_examples) ex = b->max_examples;
  uint64_t bs = b ? (uint64_t)b->batch_size : 0;
  if (num_examples) *num_examples = ex;
  if (num_batches) *num_batches = bs ? (ex + bs - 1) / bs : 0;
}

void fm_batch_iter_init(fm_batch_iter *it, const fm_batching *b, size_t n, uint32_t *order, uint64_t seed,
                        uint64_t round, uint64_t client) {
  memset(it, 0, sizeof *it);
  if (b) it->b = *b;
  it->n = n;
  fm_batching_counts(&it->b, n, &it->total, NULL);
  if (it->b.batch_size == 0) it->total = 0; /* nothing can be emitted */
  it->pos = 0;
  it->order = order;
  it->seed = seed;
  it->round = round;
  it->client = client;
  fm_rng_init(&it->rng, seed, round, client, FM_RNG_SHUFFLE);
  it->epoch_end = 0;
}

/* Start the next pass: identity order, shuffled if requested. */
static void fm__next_epoch(fm_batch_iter *it) {
  const size_t n = it->n;
  if (it->order && fm__buffered(&it->b, n)) {
    /* tf.data's shuffle(buffer): the buffer lives after the n order slots */
    uint32_t *buf = it->order + n;
    size_t len = it->b.shuffle_buffer, next = len;
    for (size_t i = 0; i < len; i++) buf[i] = (uint32_t)i;
    for (size_t out = 0; out < n; out++) {
      size_t j = (size_t)fm_rng_below(&it->rng, len);
      it->order[out] = buf[j];
      if (next < n)
        buf[j] = (uint32_t)next++;
      else
        buf[j] = buf[--len];
    }
  } else if (it->order) {
    for (size_t i = 0; i < n; i++) it->order[i] = (uint32_t)i;
    if (it->b.shuffle) fm_rng_shuffle_u32(&it->rng, it->order, n);
  }
  it->epoch_end += n;
}

size_t fm_batch_iter_next(fm_batch_iter *it, const fm_examples *ex, float *xb, int32_t *yb) {
  if (!it || it->pos >= it->total) return 0;
  /* xb may be NULL to gather labels only. */
  if (!ex || ex->n != it->n || (it->b.shuffle && !it->order) || !yb) {
    FM_ERR(FM_ERR_INVALID_ARG,
           "fm_batch_iter_next: examples (%zu) do not match the iterator (%zu), or a NULL buffer "
           "(yb is required, and order when shuffling)",
           ex ? ex->n : (size_t)0, it->n);
    return 0;
  }
  const size_t D = ex->num_features, T = ex->num_targets > 1 ? ex->num_targets : 1;
  uint64_t left = it->total - it->pos;
  size_t m = left < (uint64_t)it->b.batch_size ? (size_t)left : it->b.batch_size;
  for (size_t j = 0; j < m; j++) {
    if (it->pos == it->epoch_end) fm__next_epoch(it);
    size_t k = (size_t)(it->pos - (it->epoch_end - it->n)); /* position within this pass */
    size_t idx = it->order ? it->order[k] : k;
    if (xb && ex->x) memcpy(xb + j * D, ex->x + idx * D, D * sizeof *xb);
    if (T == 1)
      yb[j] = ex->y[idx];
    else
      memcpy(yb + j * T, ex->y + idx * T, T * sizeof *yb);
    it->pos++;
  }
  return m;
}
