/* tests/mpi/compare_bins.c — compare raw float weight dumps: prints the
 * largest difference against the first file and fails unless every file is
 * bit-for-bit identical to it (the exact-sum guarantee). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *load(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long bytes = ftell(f);
  fseek(f, 0, SEEK_SET);
  float *w = malloc((size_t)bytes + 1);
  *n = fread(w, 1, (size_t)bytes, f) / sizeof(float);
  fclose(f);
  return w;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: compare_bins REF.bin OTHER.bin...\n");
    return 2;
  }
  size_t n0;
  float *ref = load(argv[1], &n0);
  if (!ref || n0 == 0) {
    fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  int bad = 0;
  for (int i = 2; i < argc; i++) {
    size_t n;
    float *w = load(argv[i], &n);
    if (!w || n != n0) {
      fprintf(stderr, "%s: missing or %zu floats, expected %zu\n", argv[i], w ? n : 0, n0);
      bad = 1;
      free(w);
      continue;
    }
    double maxdiff = 0;
    for (size_t k = 0; k < n; k++) maxdiff = fmax(maxdiff, fabs((double)w[k] - (double)ref[k]));
    int same = memcmp(w, ref, n * sizeof(float)) == 0;
    printf("%s vs %s: %zu weights, maxdiff %.3g, %s\n", argv[i], argv[1], n, maxdiff,
           same ? "bitwise identical" : "DIFFERENT");
    if (!same) bad = 1;
    free(w);
  }
  free(ref);
  return bad;
}
