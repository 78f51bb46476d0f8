/* tests/unit/h5_fixtures.h — the h5py-written fixture files of the data
 * tests (tests/data/make_h5_fixtures.py), made once per test program into
 * ./fx. Without a python that has h5py and numpy the fixture tests skip;
 * with one, a failing script fails them, showing its status and output.
 * Static functions: include it in one test file per program. */
#ifndef FM_TEST_H5_FIXTURES_H
#define FM_TEST_H5_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int g_have_fixtures = -1; /* -1 unknown, 0 no python with h5py and numpy, 1 written to fx/, 2 script failed */
static char g_fixture_failure[8192]; /* when 2: the script's command, exit status and output */

static const char *python_with_h5py(void) {
  static char chosen[512];
  const char *cands[] = {getenv("FEDMPI_PYTHON"), "python3", "/usr/bin/python3", "python"};
  for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
    char cmd[1024];
    if (!cands[i] || !*cands[i]) continue;
    snprintf(cmd, sizeof cmd, "\"%s\" -c \"import h5py, numpy\" >/dev/null 2>&1", cands[i]);
    if (system(cmd) == 0) {
      snprintf(chosen, sizeof chosen, "%s", cands[i]);
      return chosen;
    }
  }
  return NULL;
}

/* Run cmd (stderr joined to stdout): its wait status, and as much of its
 * output as fits in out (size bytes). -1 if it could not be started. */
static int run_capture(const char *cmd, char *out, size_t size) {
  out[0] = '\0';
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t used = 0;
  char chunk[512];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, p)) > 0) {
    size_t take = used + 1 < size ? size - 1 - used : 0;
    if (take > got) take = got;
    memcpy(out + used, chunk, take);
    used += take;
  }
  out[used] = '\0';
  return pclose(p);
}

/* Run tests/data/make_h5_fixtures.py once into ./fx (source dir from
 * __FILE__). Without a python that has h5py and numpy the fixture tests are
 * skipped; with one, a failing script fails them (REQUIRE_FIXTURES). */
static int have_fixtures(void) {
  if (g_have_fixtures >= 0) return g_have_fixtures;
  g_have_fixtures = 0;
  const char *py = python_with_h5py();
  if (!py) {
    fprintf(stderr, "note: no python3 with h5py found; h5py fixture tests are skipped\n");
    return 0;
  }
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", __FILE__);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0'; else snprintf(dir, sizeof dir, ".");
  char cmd[4096], output[6144];
  snprintf(cmd, sizeof cmd, "\"%s\" \"%s/../data/make_h5_fixtures.py\" fx 2>&1", py, dir);
  int st = run_capture(cmd, output, sizeof output);
  if (st != 0) {
    char status[64];
    if (st == -1) snprintf(status, sizeof status, "could not be started");
    else if (WIFEXITED(st)) snprintf(status, sizeof status, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(status, sizeof status, "killed by signal %d", WTERMSIG(st));
    else snprintf(status, sizeof status, "wait status %d", st);
    snprintf(g_fixture_failure, sizeof g_fixture_failure, "fixture script failed (%s): %s\n%s", status, cmd,
             output);
    g_have_fixtures = 2;
    return 2;
  }
  g_have_fixtures = 1;
  return 1;
}

/* Skip without h5py; fail, showing the script's status and output, if the
 * script itself failed. */
#define REQUIRE_FIXTURES()                                  \
  do {                                                      \
    int fm_fx_ = have_fixtures();                           \
    if (fm_fx_ == 0) skip();                                \
    if (fm_fx_ == 2) fail_msg("%s", g_fixture_failure);     \
  } while (0)

#endif
