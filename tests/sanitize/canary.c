/* tests/sanitize/canary.c — a deliberately faulty program that proves the
 * sanitizer and valgrind runs in scripts/test-sanitize can fail: each mode
 * commits one kind of error that the tools must report with a non-zero exit.
 *   canary ok | heap-overflow | use-after-free | ubsan-shift | leak | uninit */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int sink;

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "ok";
  if (!strcmp(mode, "ok")) return 0;
  if (!strcmp(mode, "heap-overflow")) {
    int *a = malloc(4 * sizeof *a);
    for (volatile int i = 0; i <= 4; i++) sink += a ? (a[i] = i) : 0;
    free(a);
    return 0;
  }
  if (!strcmp(mode, "use-after-free")) {
    int *a = malloc(sizeof *a);
    if (!a) return 2;
    *a = 1;
    free(a);
    sink = *(volatile int *)a;
    return 0;
  }
  if (!strcmp(mode, "ubsan-shift")) {
    volatile int s = 40;
    sink = 1 << s;
    return 0;
  }
  if (!strcmp(mode, "leak")) {
    void *volatile p = malloc(1000);
    sink = p != NULL;
    p = NULL;
    return 0;
  }
  if (!strcmp(mode, "uninit")) {
    int *a = malloc(4 * sizeof *a);
    if (!a) return 2;
    if (a[2] > 0) puts("positive"); /* branch on uninitialised memory */
    free(a);
    return 0;
  }
  fprintf(stderr, "canary: unknown mode '%s'\n", mode);
  return 2;
}
