/* tests/fuzz/fuzz_idx.c — the IDX importer. The first byte chooses:
 *   even: the rest is one IDX file (raw or gzip), read with any magic;
 *   odd:  bytes 1-2 (little-endian) give the images file's length L; the next
 *         L bytes are the images file, the rest the labels file; both are
 *         read, and when they are small, imported into a ClientData file
 *         that is then opened. */
#include "fuzz_common.h"

static void import(const uint8_t *img, size_t ni, const uint8_t *lab, size_t nl) {
  static char ipath[256], lpath[256], opath[300];
  const char *p = fuzz_write_temp(img, ni, "-images.idx");
  if (!p) return;
  snprintf(ipath, sizeof ipath, "%s", p);
  p = fuzz_write_temp(lab, nl, "-labels.idx");
  if (!p) return;
  snprintf(lpath, sizeof lpath, "%s", p);
  snprintf(opath, sizeof opath, "%s.out.h5", ipath);
  fm_idx a, b;
  int rc = fm_idx_read(ipath, 0x803, &a);
  fuzz_check_rc(rc);
  int small = rc == FM_OK && a.count <= (1u << 16);
  if (rc == FM_OK) fm_idx_free(&a);
  rc = fm_idx_read(lpath, 0x801, &b);
  fuzz_check_rc(rc);
  small = small && rc == FM_OK && b.count <= 4096;
  if (rc == FM_OK) fm_idx_free(&b);
  if (small) {
    fm_idx_import_options o;
    fm_idx_import_defaults(&o);
    o.images_path = ipath;
    o.labels_path = lpath;
    o.partition.num_clients = 3;
    rc = fm_idx_import(&o, opath, NULL);
    fuzz_check_rc(rc);
    if (rc == FM_OK) {
      fm_client_data *cd = NULL;
      rc = fm_client_data_open(opath, NULL, &cd);
      if (rc != FM_OK) {
        fprintf(stderr, "an imported file does not open: %s\n", fm_last_error());
        abort();
      }
      fm_client_data_close(&cd);
    }
    unlink(opath);
  }
  unlink(ipath);
  unlink(lpath);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  if (size < 1) return 0;
  if (data[0] & 1) {
    if (size < 3) return 0;
    size_t L = (size_t)data[1] | (size_t)data[2] << 8;
    if (L > size - 3) L = size - 3;
    import(data + 3, L, data + 3 + L, size - 3 - L);
    return 0;
  }
  const char *path = fuzz_write_temp(data + 1, size - 1, ".idx");
  if (!path) return 0;
  fm_idx x;
  int rc = fm_idx_read(path, 0, &x);
  fuzz_check_rc(rc);
  if (rc == FM_OK) {
    size_t count = 1;
    for (int d = 0; d < x.ndims; d++) count *= x.dims[d];
    if (x.ndims < 1 || x.ndims > 4 || count != x.count) abort();
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < x.count; i++) sink ^= x.data[i];
    (void)sink;
    fm_idx_free(&x);
  }
  unlink(path);
  return 0;
}
