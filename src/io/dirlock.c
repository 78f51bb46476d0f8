/* src/io/dirlock.c — the advisory lock on a run's output directory.
 *
 * One file, DIR/.fedmpi.lock, locked with flock(LOCK_EX | LOCK_NB) and
 * holding "host <name> pid <pid>" of the process that has the lock. The
 * kernel drops the lock when the holder's last descriptor closes, also when
 * it is killed with SIGKILL, so a dead run never leaves a stale lock; the
 * file itself stays and is harmless, only the flock counts. A refused open
 * changes nothing in the directory: the file is created only if it does not
 * exist, and it is truncated and written only after the lock is ours.
 *
 * What this does not do: it does not make flock work where the file system
 * does not provide it (see docs/cluster.md for NFS and Lustre); it reports
 * that as FM_ERR_UNSUPPORTED and leaves the choice to the caller. */
#define _DEFAULT_SOURCE /* flock, gethostname */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "fedmpi/io.h"
#include "internal.h"

struct fm_dir_lock {
  int fd;
};

/* flock, or the failure FEDMPI_TEST_FLOCK_ERRNO names (a test seam: the
 * tests have no file system without flock, so they simulate one). */
static int fm__flock(int fd) {
  const char *fake = getenv("FEDMPI_TEST_FLOCK_ERRNO");
  if (fake && atoi(fake) > 0) {
    errno = atoi(fake);
    return -1;
  }
  return flock(fd, LOCK_EX | LOCK_NB);
}

/* The holder's "host H pid P", read from the lock file. The holder writes it
 * just after taking the lock, so an empty file is read again for up to 0.5 s. */
static void fm__read_holder(int fd, char *buf, size_t size) {
  const struct timespec pause = {0, 25 * 1000000L};
  for (int i = 0; i < 20; i++) {
    ssize_t n = pread(fd, buf, size - 1, 0);
    if (n > 0) {
      buf[n] = '\0';
      buf[strcspn(buf, "\n")] = '\0';
      return;
    }
    nanosleep(&pause, NULL);
  }
  snprintf(buf, size, "an unknown holder: the lock file is empty");
}

static int fm__errno_unsupported(int e) { return e == ENOSYS || e == EOPNOTSUPP || e == ENOTSUP || e == ENOLCK; }

int fm_dir_lock_open(const char *dir, fm_dir_lock **out) {
  FM_CHECK(dir && out, FM_ERR_INVALID_ARG, "NULL argument");
  *out = NULL;
  char path[4096];
  FM_CHECK(snprintf(path, sizeof path, "%s/%s", dir, FM_DIR_LOCK_FILE) < (int)sizeof path, FM_ERR_INVALID_ARG,
           "directory name too long: '%s'", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return FM_ERR(FM_ERR_IO, "cannot open the lock file '%s': %s", path, strerror(errno));
  if (fm__flock(fd) != 0) {
    int e = errno;
    int rc;
    if (e == EWOULDBLOCK) {
      char holder[512];
      fm__read_holder(fd, holder, sizeof holder);
      rc = FM_ERR(FM_ERR_IO,
                  "directory '%s' is in use by another fedmpi run (%s; lock file %s): wait for that run to end, or "
                  "use another directory",
                  dir, holder, path);
    } else if (fm__errno_unsupported(e)) {
      rc = FM_ERR(FM_ERR_UNSUPPORTED, "cannot lock '%s': flock: %s (the file system does not provide flock locks)",
                  path, strerror(e));
    } else {
      rc = FM_ERR(FM_ERR_IO, "cannot lock '%s': flock: %s", path, strerror(e));
    }
    close(fd);
    return rc;
  }
  char host[256] = "unknown", text[512];
  if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
  host[sizeof host - 1] = '\0';
  int n = snprintf(text, sizeof text, "host %s pid %ld\n", host, (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != (ssize_t)n) {
    int e = errno;
    close(fd);
    return FM_ERR(FM_ERR_IO, "cannot write the lock file '%s': %s", path, strerror(e));
  }
  fm_dir_lock *l = fm__malloc(sizeof *l);
  if (!l) {
    close(fd);
    return FM_ERR_NOMEM;
  }
  l->fd = fd;
  *out = l;
  return FM_OK;
}

void fm_dir_lock_close(fm_dir_lock **lock) {
  if (!lock || !*lock) return;
  close((*lock)->fd); /* the last descriptor of the open file: the lock goes with it */
  fm__free(*lock);
  *lock = NULL;
}
