/* tests/unit/test_data_batch.c — shuffle -> repeat(epochs) -> batch(B):
 * counts, every example exactly once per epoch, batches spanning epochs,
 * determinism per (seed, round, client), distinct streams for distinct
 * clients/rounds, identity order without shuffling, empty clients, T labels
 * per example (yb (B, T), labels following their example). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fedmpi/data.h"
#include "fedmpi/error.h"

/* n examples with D = 2: x[i] = (i, -i), y[i] = i. */
static fm_examples make_examples(size_t n, float *x, int32_t *y) {
  for (size_t i = 0; i < n; i++) {
    x[2 * i] = (float)i;
    x[2 * i + 1] = -(float)i;
    y[i] = (int32_t)i;
  }
  fm_examples ex = {.n = n, .num_features = 2, .x = x, .y = y};
  return ex;
}

/* Run the whole stream; labels in stream order into out (epochs * n), batch
 * sizes into sizes. Returns the number of batches. */
static size_t run_stream(const fm_batching *b, const fm_examples *ex, uint64_t seed, uint64_t round, uint64_t client,
                         int32_t *out, size_t *sizes) {
  uint32_t *order = malloc((fm_batch_iter_scratch(b, ex->n) + 1) * sizeof *order);
  float *xb = malloc(b->batch_size * 2 * sizeof *xb);
  int32_t *yb = malloc(b->batch_size * sizeof *yb);
  fm_batch_iter it;
  fm_batch_iter_init(&it, b, ex->n, order, seed, round, client);
  size_t nb = 0, pos = 0, m;
  while ((m = fm_batch_iter_next(&it, ex, xb, yb)) > 0) {
    assert_true(m <= b->batch_size);
    for (size_t j = 0; j < m; j++) {
      /* features travel with their label */
      assert_true(xb[2 * j] == (float)yb[j]);
      assert_true(xb[2 * j + 1] == -(float)yb[j]);
      out[pos++] = yb[j];
    }
    if (sizes) sizes[nb] = m;
    nb++;
  }
  assert_int_equal(fm_batch_iter_next(&it, ex, xb, yb), 0); /* stays exhausted */
  free(order);
  free(xb);
  free(yb);
  return nb;
}

static void test_counts(void **state) {
  (void)state;
  fm_batching b = {.epochs = 3, .batch_size = 4, .shuffle = 1};
  uint64_t ne, nb;
  fm_batching_counts(&b, 10, &ne, &nb);
  assert_int_equal(ne, 30);
  assert_int_equal(nb, 8);
  fm_batching_counts(&b, 0, &ne, &nb);
  assert_int_equal(ne, 0);
  assert_int_equal(nb, 0);
  b.epochs = 1;
  b.batch_size = 5;
  fm_batching_counts(&b, 10, &ne, &nb);
  assert_int_equal(ne, 10);
  assert_int_equal(nb, 2);
  b.batch_size = 1000;
  fm_batching_counts(&b, 7, &ne, &nb);
  assert_int_equal(nb, 1);
}

static void test_each_example_once_per_epoch(void **state) {
  (void)state;
  enum { N = 23, E = 4, B = 5 };
  float x[2 * N];
  int32_t y[N], out[E * N];
  size_t sizes[E * N];
  fm_examples ex = make_examples(N, x, y);
  fm_batching b = {.epochs = E, .batch_size = B, .shuffle = 1};
  size_t nb = run_stream(&b, &ex, 7, 3, 11, out, sizes);
  uint64_t want_ex, want_nb;
  fm_batching_counts(&b, N, &want_ex, &want_nb);
  assert_int_equal(nb, want_nb);
  for (size_t i = 0; i + 1 < nb; i++) assert_int_equal(sizes[i], B);
  assert_int_equal(sizes[nb - 1], (E * N) % B ? (E * N) % B : B);
  int identity_epochs = 0;
  for (int e = 0; e < E; e++) {
    int seen[N] = {0}, identity = 1;
    for (int i = 0; i < N; i++) {
      int32_t v = out[e * N + i];
      assert_true(v >= 0 && v < N);
      seen[v]++;
      if (v != i) identity = 0;
    }
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    identity_epochs += identity;
  }
  assert_int_equal(identity_epochs, 0);
  /* fresh permutation per epoch */
  assert_memory_not_equal(out, out + N, N * sizeof *out);
}

static void test_batches_span_epochs(void **state) {
  (void)state;
  enum { N = 5, E = 3, B = 4 };
  float x[2 * N];
  int32_t y[N], out[E * N];
  size_t sizes[E * N];
  fm_examples ex = make_examples(N, x, y);
  fm_batching b = {.epochs = E, .batch_size = B, .shuffle = 0};
  size_t nb = run_stream(&b, &ex, 1, 1, 1, out, sizes);
  assert_int_equal(nb, 4); /* 15 examples: 4 + 4 + 4 + 3 */
  assert_int_equal(sizes[0], 4);
  assert_int_equal(sizes[1], 4);
  assert_int_equal(sizes[3], 3);
  /* no shuffle: identity order, repeated; batch 1 = {4, 0, 1, 2} spans epochs 0 and 1 */
  for (int i = 0; i < E * N; i++) assert_int_equal(out[i], i % N);
}

static void test_deterministic_and_distinct(void **state) {
  (void)state;
  enum { N = 40, E = 2, B = 8 };
  float x[2 * N];
  int32_t y[N], a[E * N], b2[E * N], c[E * N], d[E * N], s[E * N];
  fm_examples ex = make_examples(N, x, y);
  fm_batching b = {.epochs = E, .batch_size = B, .shuffle = 1};
  run_stream(&b, &ex, 5, 2, 9, a, NULL);
  run_stream(&b, &ex, 5, 2, 9, b2, NULL);
  assert_memory_equal(a, b2, sizeof a);
  run_stream(&b, &ex, 5, 2, 10, c, NULL); /* other client */
  assert_memory_not_equal(a, c, sizeof a);
  run_stream(&b, &ex, 5, 3, 9, d, NULL); /* other round */
  assert_memory_not_equal(a, d, sizeof a);
  run_stream(&b, &ex, 6, 2, 9, s, NULL); /* other seed */
  assert_memory_not_equal(a, s, sizeof a);
  /* The permutation is the shuffle stream's, so it is independent of B. */
  fm_batching b1 = {.epochs = E, .batch_size = 1, .shuffle = 1}, b3 = {.epochs = E, .batch_size = 3, .shuffle = 1};
  run_stream(&b1, &ex, 5, 2, 9, c, NULL);
  run_stream(&b3, &ex, 5, 2, 9, d, NULL);
  assert_memory_equal(a, c, sizeof a);
  assert_memory_equal(a, d, sizeof a);
  /* ... and matches fm_rng_shuffle_u32 on the identity, epoch after epoch. */
  fm_rng r;
  fm_rng_init(&r, 5, 2, 9, FM_RNG_SHUFFLE);
  for (int e = 0; e < E; e++) {
    uint32_t ord[N];
    for (uint32_t i = 0; i < N; i++) ord[i] = i;
    fm_rng_shuffle_u32(&r, ord, N);
    for (int i = 0; i < N; i++) assert_int_equal(a[e * N + i], (int32_t)ord[i]);
  }
}

static void test_empty_client_and_edge_cases(void **state) {
  (void)state;
  float x[2], xb[8];
  int32_t y[1], yb[4];
  fm_examples ex = make_examples(0, x, y);
  ex.x = NULL;
  ex.y = NULL;
  fm_batching b = {.epochs = 3, .batch_size = 4, .shuffle = 1};
  fm_batch_iter it;
  fm_batch_iter_init(&it, &b, 0, NULL, 1, 1, 1);
  assert_int_equal(it.total, 0);
  assert_int_equal(fm_batch_iter_next(&it, &ex, xb, yb), 0);

  /* a single example, several epochs */
  ex = make_examples(1, x, y);
  uint32_t order[1];
  fm_batch_iter_init(&it, &b, 1, order, 1, 1, 1);
  assert_int_equal(fm_batch_iter_next(&it, &ex, xb, yb), 3);
  assert_int_equal(yb[0], 0);
  assert_int_equal(yb[2], 0);
  assert_int_equal(fm_batch_iter_next(&it, &ex, xb, yb), 0);

  /* without shuffling the order buffer is optional; labels-only gathering */
  float x5[10];
  int32_t y5[5];
  ex = make_examples(5, x5, y5);
  fm_batching ns = {.epochs = 1, .batch_size = 2, .shuffle = 0};
  fm_batch_iter_init(&it, &ns, 5, NULL, 1, 1, 1);
  assert_int_equal(fm_batch_iter_next(&it, &ex, NULL, yb), 2);
  assert_int_equal(yb[0], 0);
  assert_int_equal(yb[1], 1);

  /* examples of another size than the iterator's: refused, error recorded */
  fm_clear_error();
  fm_batch_iter_init(&it, &ns, 4, NULL, 1, 1, 1);
  assert_int_equal(fm_batch_iter_next(&it, &ex, xb, yb), 0);
  assert_true(strlen(fm_last_error()) > 0);
}

/* take(max_examples) after repeat: the stream stops early, counts follow. */
static void test_max_examples_cap(void **state) {
  (void)state;
  enum { N = 10 };
  float x[2 * N];
  int32_t y[N], out[3 * N];
  fm_examples ex = make_examples(N, x, y);
  fm_batching capped = {.epochs = 3, .batch_size = 4, .shuffle = 1, .max_examples = 13};
  fm_batching full = {.epochs = 3, .batch_size = 4, .shuffle = 1};
  uint64_t ne, nb;
  fm_batching_counts(&capped, N, &ne, &nb);
  assert_int_equal(ne, 13);
  assert_int_equal(nb, 4);
  int32_t ref[3 * N];
  run_stream(&full, &ex, 1, 1, 1, ref, NULL);
  size_t batches = run_stream(&capped, &ex, 1, 1, 1, out, NULL);
  assert_int_equal(batches, 4);
  assert_memory_equal(out, ref, 13 * sizeof *out); /* the same stream, cut */
  fm_batching big = {.epochs = 1, .batch_size = 4, .max_examples = 100};
  fm_batching_counts(&big, N, &ne, NULL);
  assert_int_equal(ne, N); /* a cap above the stream changes nothing */
}

/* tf.data's shuffle(buffer) with a buffer smaller than the client: each pass
 * is still a permutation, the first output is one of the first `buffer`
 * examples, and example i can never come out before position i - buffer + 1. */
static void test_shuffle_buffer(void **state) {
  (void)state;
  enum { N = 40, BUF = 5, E = 2 };
  float x[2 * N];
  int32_t y[N], out[E * N];
  fm_examples ex = make_examples(N, x, y);
  fm_batching b = {.epochs = E, .batch_size = 7, .shuffle = 1, .shuffle_buffer = BUF};
  assert_int_equal(fm_batch_iter_scratch(&b, N), N + BUF);
  run_stream(&b, &ex, 3, 0, 2, out, NULL);
  for (int e = 0; e < E; e++) {
    int seen[N] = {0};
    for (int k = 0; k < N; k++) {
      int v = out[e * N + k];
      seen[v]++;
      assert_true(v <= k + BUF - 1); /* only the first k+BUF examples can have entered the buffer */
    }
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);
  }
  assert_true(out[0] < BUF);
  /* a buffer of at least n is the full permutation */
  fm_batching full = {.epochs = E, .batch_size = 7, .shuffle = 1}, big = full;
  big.shuffle_buffer = N;
  int32_t a[E * N], c[E * N];
  run_stream(&full, &ex, 3, 0, 2, a, NULL);
  run_stream(&big, &ex, 3, 0, 2, c, NULL);
  assert_memory_equal(a, c, sizeof a);
}

/* T = 3 labels per example (a label per time step): yb is (B, T), each
 * example's labels together, in order, beside its features, and the example
 * order is the T = 1 stream's (shuffled and not, batches across epochs). */
static void test_several_targets(void **state) {
  (void)state;
  enum { N = 11, T = 3, E = 2, B = 4 };
  float x[2 * N], xb[2 * B];
  int32_t y1[N], y3[N * T], yb[B * T], ref[E * N];
  fm_examples one = make_examples(N, x, y1);
  for (int i = 0; i < N; i++)
    for (int t = 0; t < T; t++) y3[i * T + t] = 100 * i + t; /* example i's labels: 100 i, 100 i + 1, 100 i + 2 */
  fm_examples ex = {.n = N, .num_features = 2, .x = x, .y = y3, .num_targets = T};
  for (int shuffle = 0; shuffle <= 1; shuffle++) {
    fm_batching b = {.epochs = E, .batch_size = B, .shuffle = shuffle};
    run_stream(&b, &one, 7, 2, 5, ref, NULL); /* the order of the examples with one label each */
    uint32_t order[N];
    fm_batch_iter it;
    fm_batch_iter_init(&it, &b, N, order, 7, 2, 5);
    size_t m, pos = 0, moved = 0;
    while ((m = fm_batch_iter_next(&it, &ex, xb, yb)) > 0) {
      for (size_t j = 0; j < m; j++, pos++) {
        const int i = (int)xb[2 * j]; /* the example, from its features */
        assert_int_equal(i, ref[pos]);
        assert_true(xb[2 * j + 1] == -(float)i);
        for (int t = 0; t < T; t++) assert_int_equal(yb[j * T + t], 100 * i + t);
        moved += i != (int)(pos % N);
      }
    }
    assert_int_equal(pos, E * N);
    if (shuffle) assert_true(moved > 0); else assert_int_equal(moved, 0);
  }
  /* num_targets 0 and 1 both mean one label: the same batches as before */
  fm_batching b = {.epochs = 1, .batch_size = B, .shuffle = 1};
  one.num_targets = 1;
  int32_t out[N];
  run_stream(&b, &one, 3, 1, 1, out, NULL);
  one.num_targets = 0;
  run_stream(&b, &one, 3, 1, 1, ref, NULL);
  assert_memory_equal(out, ref, sizeof out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counts),
      cmocka_unit_test(test_each_example_once_per_epoch),
      cmocka_unit_test(test_batches_span_epochs),
      cmocka_unit_test(test_deterministic_and_distinct),
      cmocka_unit_test(test_empty_client_and_edge_cases),
      cmocka_unit_test(test_max_examples_cap),
      cmocka_unit_test(test_shuffle_buffer),
      cmocka_unit_test(test_several_targets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
