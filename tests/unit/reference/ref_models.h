/* tests/unit/reference/ref_models.h — the hand-written softmax, MLP and CNN
 * models as they were before they became stacks (ref_softmax.c, ref_mlp.c,
 * ref_cnn.c), compiled into the including test with their kernels
 * (src/model/layers.c, conv.c), for test_stack.c to compare the stacks
 * against bit for bit. Include once, after cmocka.h.
 *
 * The library's private helpers those files use (errors, allocation, the
 * input-spec check) are hidden symbols of libfedmpi, so this header gives
 * them small stand-ins: errors go through the public fm_set_error, memory
 * through the C library. */
#ifndef FM_TEST_REF_MODELS_H
#define FM_TEST_REF_MODELS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedmpi/error.h"
#include "fedmpi/model.h"
#include "internal.h"
#include "model_private.h"

int ref_model_create_softmax(const fm_input_spec *spec, fm_model **out);
int ref_model_create_mlp(const fm_input_spec *spec, const size_t *hidden, size_t num_hidden, fm_model **out);
fm_cnn_config ref_cnn_config_default(void);
int ref_model_create_cnn(const fm_input_spec *spec, const fm_cnn_config *config, fm_model **out);

int fm__error(int code, const char *file, int line, const char *func, const char *fmt, ...) {
  (void)file, (void)line, (void)func;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return fm_set_error(code, "%s", msg);
}
void *fm__malloc(size_t bytes) { return malloc(bytes); }
void *fm__calloc(size_t count, size_t size) { return calloc(count, size); }
void fm__free(void *p) { free(p); }
char *fm__strdup(const char *s) {
  char *d = malloc(strlen(s) + 1);
  return d ? strcpy(d, s) : NULL;
}
int fm__input_spec_check(const fm_input_spec *spec) { return spec ? FM_OK : FM_ERR_INVALID_ARG; }
int fm__input_spec_check_blas(const fm_input_spec *spec, const char *model) {
  (void)model;
  return fm__input_spec_check(spec);
}

#include "../../../src/model/conv.c"
#include "../../../src/model/layers.c"
#include "ref_cnn.c"
#include "ref_mlp.c"
#include "ref_softmax.c"

#endif
