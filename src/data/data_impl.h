/* src/data/data_impl.h — what the data module's files share privately: the
 * bounded client cache (cache.c). Not installed. */
#ifndef FEDMPI_DATA_IMPL_H
#define FEDMPI_DATA_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/data.h"
#include "h5lock.h"

/* ---- cache.c: LRU of decoded clients, bounded in bytes ---------------------- */

typedef struct fm__cache fm__cache;

/* A cache with limit 0 (off). FM_ERR_NOMEM. */
int fm__cache_create(fm__cache **out);
void fm__cache_destroy(fm__cache *c);
/* Change the bound; evicts unpinned entries until the bytes fit. */
void fm__cache_set_limit(fm__cache *c, size_t bytes);
/* Bytes an entry of n examples with D features takes. */
size_t fm__cache_entry_bytes(size_t n, size_t D);
/* Copy client i out of the cache into out (x too if want_x): 1 if it was
 * there, 0 if not (out untouched), FM_ERR_NOMEM. Thread-safe. */
int fm__cache_get(fm__cache *c, size_t i, int want_x, fm_examples *out);
/* Offer a copy of client i's examples (x and y); silently not kept if it is
 * larger than the bound, already cached, or room cannot be made. */
void fm__cache_put(fm__cache *c, size_t i, const fm_examples *ex);
void fm__cache_stats(const fm__cache *c, fm_cache_stats *s);

#endif
