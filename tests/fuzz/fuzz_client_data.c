/* tests/fuzz/fuzz_client_data.c — the HDF5 ClientData reader on a fuzzed
 * file: open (as training data, else as any TFF file), then read what a run
 * reads: every feature's metadata, the first clients' examples, labels,
 * string and numeric features, the label scan. */
#include "fuzz_common.h"

static void read_client(const fm_client_data *cd, size_t i) {
  fm_examples ex;
  int rc = fm_client_data_load(cd, i, &ex);
  fuzz_check_rc(rc);
  if (rc == FM_OK) fm_examples_free(&ex);
  rc = fm_client_data_load_labels(cd, i, &ex);
  fuzz_check_rc(rc);
  if (rc == FM_OK) fm_examples_free(&ex);
  for (size_t j = 0; j < fm_client_data_num_feature_infos(cd); j++) {
    const fm_feature_info *fi = fm_client_data_feature_info(cd, j);
    if (fi->dtype == FM_DTYPE_STRING) {
      char **s = NULL;
      size_t n = 0;
      rc = fm_client_data_load_strings(cd, i, fi->name, &s, &n);
      fuzz_check_rc(rc);
      if (rc == FM_OK) fm_strings_free(s, n);
    } else {
      void *v = NULL;
      size_t n = 0;
      rc = fm_client_data_load_feature(cd, i, fi->name, FM_DTYPE_FLOAT64, &v, &n);
      fuzz_check_rc(rc);
      if (rc == FM_OK) fm_data_free(v);
    }
  }
  char id[64];
  rc = fm_client_data_copy_client_id(cd, i, id, sizeof id);
  if (rc != FM_ERR_OVERFLOW) fuzz_check_rc(rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  const char *path = fuzz_write_temp(data, size, ".h5");
  if (!path) return 0;
  fm_client_data *cd = NULL;
  int rc = fm_client_data_open_kind(path, NULL, FM_DATA_XY, &cd);
  fuzz_check_rc(rc);
  if (rc != FM_OK) {
    rc = fm_client_data_open_kind(path, NULL, FM_DATA_ANY, &cd);
    fuzz_check_rc(rc);
  }
  if (rc == FM_OK) {
    size_t n = fm_client_data_num_clients(cd);
    for (size_t i = 0; i < n && i < 8; i++) read_client(cd, i);
    if (n > 8) read_client(cd, n - 1);
    size_t classes = 0;
    rc = fm_client_data_scan_num_classes(cd, &classes);
    fuzz_check_rc(rc);
    if (rc == FM_OK && classes > (size_t)INT32_MAX + 1) abort(); /* labels are int32: at most 2^31 classes */
    fm_client_data_close(&cd);
  }
  unlink(path);
  return 0;
}
