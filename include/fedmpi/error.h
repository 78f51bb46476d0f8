/* fedmpi/error.h — error codes and the per-thread "last error" message.
 *
 * Every public fedmpi function that can fail returns an int: FM_OK (0) or a
 * negative FM_ERR_* code. The library never prints, never exits and never
 * aborts; the message that names the problem is kept per thread and read with
 * fm_last_error(). The codes, their names and their generic texts come from
 * one X-macro table (libuv style). */
#ifndef FEDMPI_ERROR_H
#define FEDMPI_ERROR_H

#include "fedmpi/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* XX(NAME, value, generic description). Values are stable: -16 and -19
 * (once REMOTE and INTERRUPTED, which nothing raised) are not reused. */
#define FM_ERROR_MAP(XX)                                                        \
  XX(OK, 0, "success")                                                          \
  XX(NOMEM, -1, "out of memory")                                                \
  XX(INVALID_ARG, -2, "invalid argument")                                       \
  XX(UNKNOWN_TYPE, -3, "unknown type name")                                     \
  XX(UNSUPPORTED, -4, "operation not supported")                                \
  XX(IO, -5, "input/output error")                                              \
  XX(FORMAT, -6, "malformed or unexpected file content")                        \
  XX(MPI, -7, "MPI error")                                                      \
  XX(LAYOUT_MISMATCH, -8, "weights layouts differ between process stages")     \
  XX(NOT_WEIGHTED, -9, "aggregator is not weighted")                            \
  XX(HPARAM_UNKNOWN, -10, "unknown hyperparameter key")                         \
  XX(HPARAM_VALUE, -11, "invalid hyperparameter value")                         \
  XX(SPEC_MISMATCH, -12, "data does not match the model's input spec")         \
  XX(COHORT, -13, "invalid cohort or client selection")                         \
  XX(NON_FINITE, -14, "non-finite value")                                       \
  XX(CONFIG, -15, "invalid configuration")                                      \
  XX(MISSING_STAGE, -17, "learning process stage missing")                      \
  XX(STATE_MISMATCH, -18, "state does not belong to this process")             \
  XX(OVERFLOW, -20, "value out of the representable range")

typedef enum fm_error {
#define FM__ERR_ENUM(name, val, msg) FM_ERR_##name = (val),
  FM_ERROR_MAP(FM__ERR_ENUM)
#undef FM__ERR_ENUM
  FM_ERR__END = -21
} fm_error;

#define FM_OK FM_ERR_OK

/* Generic text for a code ("unknown error" for anything else). Not collective. */
FM_EXTERN const char *fm_strerror(int code);
/* Symbolic name of a code, e.g. "FM_ERR_NOMEM". Not collective. */
FM_EXTERN const char *fm_err_name(int code);
/* The message of the most recent error recorded on this thread ("" if none).
 * Borrowed pointer, valid until the next fedmpi call on this thread. */
FM_EXTERN const char *fm_last_error(void);
/* Where that error was raised: "file:line (function)". */
FM_EXTERN const char *fm_last_error_where(void);
/* Clear this thread's last error. */
FM_EXTERN void fm_clear_error(void);
/* Record an error from user code (e.g. a custom model's vtable) and return code. */
FM_EXTERN int fm_set_error(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif
