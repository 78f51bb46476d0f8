/* src/core/error.c — error codes, names, texts and the per-thread last error.
 * Generated from FM_ERROR_MAP; the message buffer is thread-local so OpenMP
 * threads training different clients never overwrite each other's errors. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char fm__last_msg[1024];
static _Thread_local char fm__last_where[256];

const char *fm_strerror(int code) {
  switch (code) {
#define FM__STR(name, val, msg) \
  case (val):                   \
    return msg;
    FM_ERROR_MAP(FM__STR)
#undef FM__STR
    default:
      return "unknown error";
  }
}

const char *fm_err_name(int code) {
  switch (code) {
#define FM__NAME(name, val, msg) \
  case (val):                    \
    return "FM_ERR_" #name;
    FM_ERROR_MAP(FM__NAME)
#undef FM__NAME
    default:
      return "FM_ERR_UNKNOWN";
  }
}

const char *fm_last_error(void) { return fm__last_msg; }
const char *fm_last_error_where(void) { return fm__last_where; }

void fm_clear_error(void) {
  fm__last_msg[0] = '\0';
  fm__last_where[0] = '\0';
}

static void fm__verror(int code, const char *fmt, va_list ap) {
  /* Format into a scratch buffer first: callers may pass fm_last_error()
   * itself as an argument to add context to it. */
  char tmp[sizeof fm__last_msg];
  if (fmt && *fmt)
    vsnprintf(tmp, sizeof tmp, fmt, ap);
  else
    snprintf(tmp, sizeof tmp, "%s", fm_strerror(code));
  memcpy(fm__last_msg, tmp, sizeof tmp);
}

int fm__error(int code, const char *file, int line, const char *func, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fm__verror(code, fmt, ap);
  va_end(ap);
  const char *base = strrchr(file, '/');
  snprintf(fm__last_where, sizeof fm__last_where, "%s:%d (%s)", base ? base + 1 : file, line, func);
  return code;
}

int fm_set_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fm__verror(code, fmt, ap);
  va_end(ap);
  snprintf(fm__last_where, sizeof fm__last_where, "user code");
  return code;
}
