/* fedmpi/export.h — symbol visibility. The library is built with
 * -fvisibility=hidden; only FM_EXTERN symbols are exported. */
#ifndef FEDMPI_EXPORT_H
#define FEDMPI_EXPORT_H

#if defined(__GNUC__)
#define FM_EXTERN __attribute__((visibility("default")))
#else
#define FM_EXTERN
#endif

#endif
