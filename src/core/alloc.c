/* src/core/alloc.c — the library's allocation entry points. Every failure is
 * recorded as FM_ERR_NOMEM with the requested size, so callers only check for
 * NULL and return FM_ERR_NOMEM. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void *fm__malloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) FM_ERR(FM_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
  return p;
}

void *fm__calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) {
    FM_ERR(FM_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", count, size);
    return NULL;
  }
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) FM_ERR(FM_ERR_NOMEM, "out of memory allocating %zu x %zu bytes", count, size);
  return p;
}

void *fm__realloc(void *old, size_t bytes) {
  void *p = realloc(old, bytes ? bytes : 1);
  if (!p) FM_ERR(FM_ERR_NOMEM, "out of memory reallocating %zu bytes", bytes);
  return p;
}

void fm__free(void *p) { free(p); }

char *fm__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = fm__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}
