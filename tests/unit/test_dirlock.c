/* tests/unit/test_dirlock.c — the output-directory lock (fm_dir_lock_open):
 * the holder's host and pid in the file; a second open in the same process
 * conflicts (flock locks belong to the open file description) and names the
 * holder; a refused open leaves the lock file unchanged; another process is
 * refused while the lock is held and gets it once the holder is SIGKILLed (no
 * stale lock); an unsupported flock (simulated through the
 * FEDMPI_TEST_FLOCK_ERRNO seam) is FM_ERR_UNSUPPORTED; a missing directory is
 * FM_ERR_IO. Runs in the test's own work directory. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fedmpi/error.h"
#include "fedmpi/io.h"

static int msg_has(const char *needle) {
  if (strstr(fm_last_error(), needle)) return 1;
  fprintf(stderr, "last error '%s' lacks '%s'\n", fm_last_error(), needle);
  return 0;
}

/* A fresh, empty directory name. */
static void fresh_dir(const char *name) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", name);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(mkdir(name, 0777), 0);
}

static void read_file(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t n = fread(buf, 1, size - 1, f);
  buf[n] = '\0';
  fclose(f);
}

/* "host <this host> pid <this pid>" */
static void expected_holder(char *buf, size_t size) {
  char host[256];
  assert_int_equal(gethostname(host, sizeof host), 0);
  snprintf(buf, size, "host %s pid %ld", host, (long)getpid());
}

static void test_same_process_conflicts(void **state) {
  (void)state;
  fresh_dir("d1");
  fm_dir_lock *a = NULL, *b = (fm_dir_lock *)&b; /* b must be reset to NULL on failure */
  assert_int_equal(fm_dir_lock_open("d1", &a), FM_OK);
  assert_non_null(a);
  char want[512], text[512], before[512];
  expected_holder(want, sizeof want);
  read_file("d1/" FM_DIR_LOCK_FILE, text, sizeof text);
  assert_int_equal(strncmp(text, want, strlen(want)), 0);
  assert_string_equal(text + strlen(want), "\n");
  /* a second open file description of the same file, in the same process */
  memcpy(before, text, sizeof before);
  assert_int_equal(fm_dir_lock_open("d1", &b), FM_ERR_IO);
  assert_null(b);
  assert_true(msg_has("in use by another fedmpi run"));
  assert_true(msg_has(want));
  read_file("d1/" FM_DIR_LOCK_FILE, text, sizeof text);
  assert_string_equal(text, before); /* the refused open wrote nothing */
  /* released: the file stays, and it no longer blocks anyone */
  fm_dir_lock_close(&a);
  assert_null(a);
  fm_dir_lock_close(&a); /* NULL accepted */
  assert_int_equal(access("d1/" FM_DIR_LOCK_FILE, F_OK), 0);
  assert_int_equal(fm_dir_lock_open("d1", &b), FM_OK);
  fm_dir_lock_close(&b);
}

/* A child process takes the lock and waits; the parent is refused, naming the
 * child's pid; after kill -9 of the child the parent gets the lock. */
static void test_killed_holder_leaves_no_lock(void **state) {
  (void)state;
  fresh_dir("d2");
  int ready[2];
  assert_int_equal(pipe(ready), 0);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    fm_dir_lock *l = NULL;
    char c = fm_dir_lock_open("d2", &l) == FM_OK ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(3);
    for (;;) pause();
  }
  char c = 0;
  assert_int_equal(read(ready[0], &c, 1), 1);
  assert_int_equal(c, 'y');
  fm_dir_lock *l = NULL;
  assert_int_equal(fm_dir_lock_open("d2", &l), FM_ERR_IO);
  char pid_text[64];
  snprintf(pid_text, sizeof pid_text, "pid %ld", (long)child);
  assert_true(msg_has(pid_text));
  assert_int_equal(kill(child, SIGKILL), 0);
  int st = 0;
  assert_int_equal(waitpid(child, &st, 0), child);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(fm_dir_lock_open("d2", &l), FM_OK);
  char want[512], text[512];
  expected_holder(want, sizeof want);
  read_file("d2/" FM_DIR_LOCK_FILE, text, sizeof text);
  assert_int_equal(strncmp(text, want, strlen(want)), 0); /* the new holder replaced the old text */
  fm_dir_lock_close(&l);
  close(ready[0]);
  close(ready[1]);
}

static void test_unsupported_and_errors(void **state) {
  (void)state;
  fresh_dir("d3");
  fm_dir_lock *l = NULL;
  char e[16];
  snprintf(e, sizeof e, "%d", ENOSYS); /* what Lustre mounted with noflock returns */
  assert_int_equal(setenv("FEDMPI_TEST_FLOCK_ERRNO", e, 1), 0);
  assert_int_equal(fm_dir_lock_open("d3", &l), FM_ERR_UNSUPPORTED);
  assert_null(l);
  assert_true(msg_has("does not provide flock"));
  snprintf(e, sizeof e, "%d", ENOLCK); /* NFS without a lock manager */
  assert_int_equal(setenv("FEDMPI_TEST_FLOCK_ERRNO", e, 1), 0);
  assert_int_equal(fm_dir_lock_open("d3", &l), FM_ERR_UNSUPPORTED);
  snprintf(e, sizeof e, "%d", EIO); /* any other failure is an I/O error */
  assert_int_equal(setenv("FEDMPI_TEST_FLOCK_ERRNO", e, 1), 0);
  assert_int_equal(fm_dir_lock_open("d3", &l), FM_ERR_IO);
  assert_true(msg_has("flock"));
  assert_int_equal(unsetenv("FEDMPI_TEST_FLOCK_ERRNO"), 0);
  assert_int_equal(fm_dir_lock_open("d3", &l), FM_OK);
  fm_dir_lock_close(&l);

  assert_int_equal(fm_dir_lock_open("no_such_dir", &l), FM_ERR_IO);
  assert_true(msg_has("no_such_dir/" FM_DIR_LOCK_FILE));
  assert_int_equal(fm_dir_lock_open(NULL, &l), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_dir_lock_open("d3", NULL), FM_ERR_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_process_conflicts),
      cmocka_unit_test(test_killed_holder_leaves_no_lock),
      cmocka_unit_test(test_unsupported_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
