/* tests/fuzz/fuzz_data_spec.c — the --data spec parser
 * ("synthetic:clients=K,alpha=A,...", src/data/source_synth.c). An accepted
 * spec must hold options the generator accepts; when it is small, the
 * procedural source is opened and its first and last clients loaded. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  char *text = fuzz_string(data, size, 512);
  if (!text) return 0;
  int synthetic = fm_synth_spec_is_synthetic(text);
  fm_synth_options o;
  fm_synth_split split = FM_SYNTH_TRAIN;
  int rc = fm_synth_parse_spec(text, &o, &split);
  fuzz_check_rc(rc);
  if (rc == FM_OK && !synthetic) abort(); /* parsed, yet not recognised as synthetic */
  if (rc == FM_OK && o.num_clients <= 64 && o.num_features <= 64 && o.num_classes <= 64 && o.max_examples &&
      o.max_examples <= 64) {
    fm_client_data *cd = NULL;
    rc = fm_client_data_open_synthetic_split(&o, split, &cd);
    fuzz_check_rc(rc);
    if (rc == FM_OK) {
      size_t n = fm_client_data_num_clients(cd);
      for (size_t i = 0; i < n; i += n > 1 ? n - 1 : 1) {
        fm_examples ex;
        rc = fm_client_data_load(cd, i, &ex);
        fuzz_check_rc(rc);
        if (rc == FM_OK) fm_examples_free(&ex);
      }
      fm_client_data_close(&cd);
    }
  }
  free(text);
  return 0;
}
