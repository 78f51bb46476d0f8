/* tests/fuzz/fuzz_cli_options.c — CLI option values. The first byte chooses
 * what the rest (a C string) is:
 *   0..N-1 (mod N+2): the value of option N of the table (cli_set: integers,
 *          doubles, choices, flags, strings and their bounds); an accepted
 *          value must read back from the config.ini text cli_ini_text writes;
 *   N:     a K=V,... hyperparameter list (cli_parse_hparams), then given to
 *          each optimizer type as fedmpi train does;
 *   N+1:   a learning-rate schedule (fm_schedule_parse: "exp:gamma=G",
 *          "cosine:rounds=R,alpha=A", "warmup=W", ...). An accepted schedule
 *          must pass fm_schedule_check, give non-negative rates (an infinite
 *          one, from a growing schedule, must be refused when applied), and
 *          read back from fm_schedule_format as the same schedule. */
#include <math.h>

#include "fuzz_common.h"
#include "fuzz_cli_table.h"

static void check_schedule(const char *text) {
  fm_schedule s, t;
  int rc = fm_schedule_parse(text, 0.1, &s);
  fuzz_check_rc(rc);
  if (rc != FM_OK) return;
  if (fm_schedule_check(&s) != FM_OK) {
    fprintf(stderr, "parsed schedule '%s' fails fm_schedule_check: %s\n", text, fm_last_error());
    abort();
  }
  static const uint64_t rounds[] = {0, 1, 2, 7, 100, 12345, UINT64_C(1) << 40, UINT64_MAX};
  for (size_t i = 0; i < sizeof rounds / sizeof *rounds; i++) {
    double v = fm_schedule_value(&s, rounds[i]);
    if (isnan(v) || v < 0) {
      fprintf(stderr, "schedule '%s' gives %g at round %llu\n", text, v, (unsigned long long)rounds[i]);
      abort();
    }
    if (isinf(v)) { /* a growing schedule (gamma > 1) overflows: applying it must be refused, not train on inf */
      fm_optimizer *o = NULL;
      if (fm_optimizer_create_sgdm(0.1, 0, &o) != FM_OK) abort();
      int applied = fm_schedule_apply(&s, rounds[i], o);
      fm_optimizer_destroy(&o);
      if (applied == FM_OK) {
        fprintf(stderr, "schedule '%s' sets an infinite learning rate at round %llu\n", text,
                (unsigned long long)rounds[i]);
        abort();
      }
    }
  }
  char buf[512];
  if (fm_schedule_format(&s, buf, sizeof buf) != FM_OK) return;
  if (fm_schedule_parse(buf, 0.1, &t) != FM_OK) {
    fprintf(stderr, "schedule '%s' formats as '%s', which does not parse: %s\n", text, buf, fm_last_error());
    abort();
  }
  for (size_t i = 0; i < sizeof rounds / sizeof *rounds; i++)
    if (fm_schedule_value(&s, rounds[i]) != fm_schedule_value(&t, rounds[i])) {
      fprintf(stderr, "schedule '%s' formats as '%s', a different schedule\n", text, buf);
      abort();
    }
}

static void check_hparams(const char *text) {
  fm_hparams h = {0};
  int rc = cli_parse_hparams("client-opt", text, &h);
  fuzz_check_rc(rc);
  if (rc != FM_OK) return;
  for (size_t i = 0; fm_optimizer_type_name(i); i++) {
    fm_optimizer *o = NULL;
    rc = fm_optimizer_create(fm_optimizer_type_name(i), &h, &o);
    fuzz_check_rc(rc);
    if (rc == FM_OK) {
      float w[3] = {1, -2, 0.5f}, g[3] = {0.25f, 1, -3};
      fm_optimizer_state st;
      if (fm_optimizer_state_init(o, 3, &st) == FM_OK) {
        fuzz_check_rc(fm_optimizer_step(o, &st, w, g, 3));
        fm_optimizer_state_free(&st);
      }
      fm_optimizer_destroy(&o);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  if (size < 1) return 0;
  char *text = fuzz_string(data + 1, size - 1, CLI_STR_MAX + 16);
  if (!text) return 0;
  size_t n = fuzz_cmd.num_opts, mode = data[0] % (n + 2);
  if (mode < n) {
    static fuzz_cfg c;
    char err[1024] = "";
    fuzz_cfg_defaults(&c);
    if (cli_set(&fuzz_cmd, &c, fuzz_opts[mode].name, text, err, sizeof err) != 0) {
      if (!err[0]) abort(); /* refused without a message */
    } else if (!cli_is_transient(fuzz_opts[mode].name)) {
      /* an accepted value goes into config.ini, which --resume must read back as it was */
      static fuzz_cfg back;
      char *ini = cli_ini_text(&fuzz_cmd, &c), diff[1024];
      if (!ini) abort();
      fuzz_cfg_defaults(&back);
      if (cli_load_config_text(&fuzz_cmd, &back, ini, "written", err, sizeof err) != 0 ||
          cli_diff(&fuzz_cmd, &c, &back, NULL, diff, sizeof diff) != 0) {
        fprintf(stderr, "--%s '%s' is accepted but config.ini does not read it back: %s\n", fuzz_opts[mode].name,
                text, err);
        abort();
      }
      free(ini);
    }
  } else if (mode == n) {
    check_hparams(text);
  } else {
    check_schedule(text);
  }
  free(text);
  return 0;
}
