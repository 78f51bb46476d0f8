/* src/core/alloc.c — the library's allocation entry points, through a
 * replaceable allocator (fm_set_allocator, libuv's uv_replace_allocator).
 * Every failure is recorded as FM_ERR_NOMEM with the requested size, so
 * callers only check for NULL and return FM_ERR_NOMEM. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fedmpi/alloc.h"
#include "internal.h"

static struct {
  fm_malloc_fn malloc_fn;
  fm_realloc_fn realloc_fn;
  fm_calloc_fn calloc_fn;
  fm_free_fn free_fn;
} fm__allocator = {malloc, realloc, calloc, free};

int fm_set_allocator(fm_malloc_fn malloc_fn, fm_realloc_fn realloc_fn, fm_calloc_fn calloc_fn, fm_free_fn free_fn) {
  FM_CHECK(malloc_fn && realloc_fn && calloc_fn && free_fn, FM_ERR_INVALID_ARG,
           "fm_set_allocator: every function must be non-NULL");
  fm__allocator.malloc_fn = malloc_fn;
  fm__allocator.realloc_fn = realloc_fn;
  fm__allocator.calloc_fn = calloc_fn;
  fm__allocator.free_fn = free_fn;
  return FM_OK;
}

void *fm__try_malloc(size_t bytes) { return fm__allocator.malloc_fn(bytes ? bytes : 1); }

void *fm__try_calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) return NULL;
  return fm__allocator.calloc_fn(count ? count : 1, size ? size : 1);
}

void *fm__malloc(size_t bytes) {
  void *p = fm__try_malloc(bytes);
  if (!p) FM_ERR(FM_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
  return p;
}

void *fm__calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) {
    FM_ERR(FM_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", count, size);
    return NULL;
  }
  void *p = fm__try_calloc(count, size);
  if (!p) FM_ERR(FM_ERR_NOMEM, "out of memory allocating %zu x %zu bytes", count, size);
  return p;
}

void *fm__realloc(void *old, size_t bytes) {
  void *p = fm__allocator.realloc_fn(old, bytes ? bytes : 1);
  if (!p) FM_ERR(FM_ERR_NOMEM, "out of memory reallocating %zu bytes", bytes);
  return p;
}

void fm__free(void *p) {
  if (p) fm__allocator.free_fn(p);
}

void fm_free(void *p) { fm__free(p); }

char *fm__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = fm__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}
