/* tests/fuzz/fuzz_checkpoint.c — the checkpoint loader on a fuzzed file:
 * fm_checkpoint_load (which validates everything) and, when it accepts the
 * file, the view a resume imports. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  const char *path = fuzz_write_temp(data, size, ".h5");
  if (!path) return 0;
  fm_checkpoint ck;
  int rc = fm_checkpoint_load(path, &ck);
  fuzz_check_rc(rc);
  if (rc == FM_OK) {
    fm_state_view v;
    fm_checkpoint_view(&ck, &v);
    /* every array the view claims must be readable in full */
    volatile float sink = 0;
    for (size_t i = 0; i < v.numel; i++) sink += v.weights[i];
    for (size_t i = 0; i < v.opt_num_slots * v.opt_n; i++) sink += v.opt_slots[i];
    for (size_t i = 0; i < v.base_num_slots * v.opt_n; i++) sink += v.base_slots[i];
    for (size_t i = 0; v.control && i < v.opt_n; i++) sink += v.control[i];
    for (size_t i = 0; i < v.num_clients * v.client_floats; i++) sink += v.client_values[i];
    for (size_t i = 0; i < v.num_clients; i++) sink += (float)v.client_ids[i];
    for (size_t i = 0; i < v.eval_num_values; i++) sink += (float)fm_exact_to_double(&v.eval_sums[i]);
    (void)sink;
    if (!ck.config || !ck.model || !ck.fedmpi_version) abort();
    char hash[17];
    fm_config_hash(ck.config, hash);
  }
  fm_checkpoint_free(&ck);
  unlink(path);
  return 0;
}
