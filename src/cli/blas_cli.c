/* src/cli/blas_cli.c — the BLAS kernel check at startup (fedmpi/blas.h).
 *
 * OpenBLAS picks its kernels when the library loads, before main, so a
 * correction cannot happen in-process: when the user has not set
 * OPENBLAS_CORETYPE and OpenBLAS chose a weaker kernel than the CPU
 * supports, fedmpi restarts itself (execv, same pid, before MPI_Init, so
 * mpirun and srun see nothing) with OPENBLAS_CORETYPE set to the best one.
 * The restarted process checks that OpenBLAS took it and that a small SGEMM
 * matches a plain loop; if not, it restarts once more with the automatic
 * choice and the correction off, and warns.
 *
 * Environment: FEDMPI_BLAS_CORRECT=0 turns the correction off (a warning
 * instead). FEDMPI_TEST_BLAS_AUTO=NAME is a test seam: fedmpi then takes
 * NAME as OpenBLAS's automatic choice. FEDMPI_BLAS_FROM and
 * FEDMPI_BLAS_FAILED are set by fedmpi itself across the restart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"

static char g_summary[512];
static char g_warning[512];

static void restart(char **argv) {
  fflush(NULL);
  execv("/proc/self/exe", argv);
  execvp(argv[0], argv); /* no /proc */
}

/* The process fedmpi restarted with a corrected kernel: check it took. */
static void after_restart(const fm_cpu_features *f, const char *from, char **argv) {
  const char *want = getenv("OPENBLAS_CORETYPE"), *kernel = fm_blas_corename();
  int took = want && !strcasecmp(kernel, want);
  int ok = took && fm_blas_selfcheck() == FM_OK;
  if (!ok) {
    char why[384];
    snprintf(why, sizeof why, "%s", took ? fm_last_error() : "OpenBLAS did not take OPENBLAS_CORETYPE");
    setenv("FEDMPI_BLAS_FAILED", why, 1);
    setenv("FEDMPI_BLAS_CORRECT", "0", 1);
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("FEDMPI_BLAS_FROM");
    restart(argv);
    snprintf(g_warning, sizeof g_warning, "could not restart with the automatic BLAS kernel; running %s", kernel);
  }
  fm_blas_decision d;
  fm_blas_decide(f, from, NULL, 1, &d);
  snprintf(g_summary, sizeof g_summary, "%s (%s)", kernel, d.reason);
  unsetenv("FEDMPI_BLAS_FROM");
}

void cli_blas_startup(char **argv) {
  fm_cpu_features f;
  fm_cpu_features_detect(&f);
  const char *from = getenv("FEDMPI_BLAS_FROM");
  if (from && *from) {
    after_restart(&f, from, argv);
    return;
  }
  const char *user = getenv("OPENBLAS_CORETYPE"), *seam = getenv("FEDMPI_TEST_BLAS_AUTO");
  const char *off = getenv("FEDMPI_BLAS_CORRECT"), *failed = getenv("FEDMPI_BLAS_FAILED");
  const char *kernel = seam && *seam && !(user && *user) ? seam : fm_blas_corename();
  fm_blas_decision d;
  fm_blas_decide(&f, kernel, user, !(off && !strcmp(off, "0")), &d);
  if (d.action == FM_BLAS_CORRECT) {
    setenv("OPENBLAS_CORETYPE", d.target, 1);
    setenv("FEDMPI_BLAS_FROM", kernel, 1);
    restart(argv);
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("FEDMPI_BLAS_FROM");
    fm_blas_decide(&f, kernel, NULL, 0, &d); /* could not restart: warn instead */
  }
  snprintf(g_summary, sizeof g_summary, "%s (%s)", kernel, d.reason);
  if (d.action == FM_BLAS_WARN_USER || d.action == FM_BLAS_WARN_FORCED)
    snprintf(g_warning, sizeof g_warning, "%s%s%s", d.reason, failed ? "; the corrected kernel failed: " : "",
             failed ? failed : "");
}

const char *cli_blas_summary(void) { return g_summary; }

void cli_blas_warn(const cli_ctx *ctx) {
  if (ctx->rank == 0 && g_warning[0]) {
    fprintf(stderr, "fedmpi: warning: BLAS: %s\n", g_warning);
    fflush(stderr);
  }
}
