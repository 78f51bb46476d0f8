/* tests/fuzz/fuzz_config.c — the INI config reader (cli_load_config_text:
 * inih and cli_set, as --config and --resume use them). An accepted text must
 * survive the round trip the CLI relies on for resume: written back with
 * cli_ini_text and read again, it gives the same configuration. */
#include "fuzz_common.h"
#include "fuzz_cli_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  char *text = fuzz_string(data, size, 1 << 16);
  if (!text) return 0;
  static fuzz_cfg a, b;
  char err[2048], diff[4096];
  fuzz_cfg_defaults(&a);
  if (cli_load_config_text(&fuzz_cmd, &a, text, "fuzz.ini", err, sizeof err) == 0) {
    char *ini = cli_ini_text(&fuzz_cmd, &a);
    if (!ini) abort();
    fuzz_cfg_defaults(&b);
    if (cli_load_config_text(&fuzz_cmd, &b, ini, "written", err, sizeof err) != 0) {
      fprintf(stderr, "the written configuration does not read back: %s\n--- written:\n%s\n", err, ini);
      abort();
    }
    if (cli_diff(&fuzz_cmd, &a, &b, NULL, diff, sizeof diff) != 0) {
      fprintf(stderr, "the configuration changed on the round trip: %s\n--- written:\n%s\n", diff, ini);
      abort();
    }
    free(ini);
  } else if (!err[0]) {
    abort(); /* refused without a message */
  }
  free(text);
  return 0;
}
