/* src/cli/data_cmd.c — `fedmpi data synth` (Synthetic(alpha, beta) in TFF's
 * layout) and `fedmpi data info` (what a ClientData file holds). Rank 0 does
 * the work; the other ranks only agree on the outcome. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct synth_cfg {
  char out_train[CLI_STR_MAX], out_test[CLI_STR_MAX];
  int64_t clients, features, classes, max_examples, seed;
  double alpha, beta, test_fraction;
  int iid;
} synth_cfg;

#define OFF(f) offsetof(synth_cfg, f)
static const cli_opt synth_opts[] = {
    {"out-train", CLI_STR, OFF(out_train), "synthetic_train.h5", 0, 0, NULL, "FILE", "training file to write"},
    {"out-test", CLI_STR, OFF(out_test), "synthetic_test.h5", 0, 0, NULL, "FILE",
     "test file to write (empty: none; every example goes to training)"},
    {"clients", CLI_INT, OFF(clients), "30", 1, 1e9, NULL, "K", "number of clients"},
    {"alpha", CLI_DOUBLE, OFF(alpha), "1", 0, INFINITY, NULL, "A", "model heterogeneity (std of u_k)"},
    {"beta", CLI_DOUBLE, OFF(beta), "1", 0, INFINITY, NULL, "B", "data heterogeneity (std of B_k)"},
    {"iid", CLI_FLAG, OFF(iid), "0", 0, 0, NULL, NULL, "Synthetic-IID: one shared model, v_k = 0"},
    {"features", CLI_INT, OFF(features), "60", 1, 1e6, NULL, "D", "features per example"},
    {"classes", CLI_INT, OFF(classes), "10", 2, 1e6, NULL, "C", "classes"},
    {"test-fraction", CLI_DOUBLE, OFF(test_fraction), "0.1", 0, 1, NULL, "F",
     "fraction of each client's examples held out for the test file"},
    {"max-examples", CLI_INT, OFF(max_examples), "0", 0, 9.2e18, NULL, "N",
     "cap on a client's examples (0: the recipe's log-normal sizes, uncapped)"},
    {"seed", CLI_INT, OFF(seed), "0", 0, 9.2e18, NULL, "S", "generator seed"},
};
#undef OFF
static const cli_command synth_cmd = {
    "synth", "fedmpi data synth [options]",
    "Write Synthetic(alpha, beta) (Li et al., FedProx, MLSys 2020): per-client softmax models W_k ~ N(u_k, 1),\n"
    "u_k ~ N(0, alpha^2); inputs x ~ N(v_k, diag(j^-1.2)), v_k ~ N(B_k, 1), B_k ~ N(0, beta^2); client sizes\n"
    "floor(LogNormal(4, 2)) + 50. Files use TFF's layout /examples/<client>/{x,y}, seeded and reproducible.",
    synth_opts, sizeof synth_opts / sizeof synth_opts[0], 1};

typedef struct info_cfg {
  char x_feature[CLI_STR_MAX], y_feature[CLI_STR_MAX];
} info_cfg;
#define OFF(f) offsetof(info_cfg, f)
static const cli_opt info_opts[] = {
    {"x-feature", CLI_STR, OFF(x_feature), "", 0, 0, NULL, "NAME", "input feature (default: x, pixels or image)"},
    {"y-feature", CLI_STR, OFF(y_feature), "", 0, 0, NULL, "NAME", "label feature (default: y or label)"},
};
#undef OFF
static const cli_command info_cmd = {"info", "fedmpi data info FILE [options]",
                                     "Print the number of clients and examples, the feature shape, the number of "
                                     "classes and the quantiles of client sizes.",
                                     info_opts, sizeof info_opts / sizeof info_opts[0], 0};

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}

static int data_info(cli_ctx *ctx, int argc, char **argv) {
  info_cfg c;
  char *pos[1];
  int npos = 0;
  int ex = cli_parse_or_exit(ctx, &info_cmd, &c, argc, argv, pos, 1, &npos);
  if (ex >= 0) return ex;
  if (npos != 1) {
    cli_error(ctx, "data info", "expected one ClientData file");
    return CLI_EXIT_USAGE;
  }
  int status = CLI_EXIT_FAILURE, rc = FM_OK;
  fm_client_data *cd = NULL;
  size_t *sizes = NULL;
  if (ctx->rank == 0) {
    fm_data_options dopt = {c.x_feature[0] ? c.x_feature : NULL, c.y_feature[0] ? c.y_feature : NULL};
    rc = fm_client_data_open(pos[0], &dopt, &cd);
    size_t ncls = 0;
    if (rc == FM_OK) {
      ncls = fm_client_data_num_classes(cd);
      if (!ncls) rc = fm_client_data_scan_num_classes(cd, &ncls);
    }
    if (rc == FM_OK) {
      size_t n = fm_client_data_num_clients(cd);
      sizes = malloc((n ? n : 1) * sizeof *sizes);
      if (!sizes) rc = fm_set_error(FM_ERR_NOMEM, "out of memory");
      for (size_t i = 0; sizes && i < n; i++) sizes[i] = fm_client_data_num_examples(cd, i);
      if (sizes) {
        qsort(sizes, n, sizeof *sizes, cmp_size);
        int ndim;
        size_t shape[FM_MAX_DIMS];
        fm_client_data_feature_shape(cd, &ndim, shape);
        printf("file        %s\nclients     %zu\nexamples    %llu\nfeatures    (", pos[0], n,
               (unsigned long long)fm_client_data_total_examples(cd));
        for (int d = 0; d < ndim; d++) printf("%s%zu", d ? ", " : "", shape[d]);
        printf(")\nclasses     %zu\n", ncls);
        if (n) {
          printf("client size min %zu  p10 %zu  p50 %zu  p90 %zu  max %zu  mean %.1f\n", sizes[0], sizes[n / 10],
                 sizes[n / 2], sizes[(9 * n) / 10 < n ? (9 * n) / 10 : n - 1], sizes[n - 1],
                 (double)fm_client_data_total_examples(cd) / (double)n);
        }
      }
    }
  }
  if (cli_agree(ctx, "data info", rc) == FM_OK) status = CLI_EXIT_OK;
  free(sizes);
  fm_client_data_close(&cd);
  return status;
}

static int data_synth(cli_ctx *ctx, int argc, char **argv) {
  synth_cfg c;
  char *pos[1];
  int npos;
  int ex = cli_parse_or_exit(ctx, &synth_cmd, &c, argc, argv, pos, 0, &npos);
  if (ex >= 0) return ex;
  int rc = FM_OK;
  if (ctx->rank == 0) {
    fm_synth_options o;
    fm_synth_defaults(&o);
    o.alpha = c.alpha;
    o.beta = c.beta;
    o.iid = c.iid;
    o.num_clients = (size_t)c.clients;
    o.num_features = (size_t)c.features;
    o.num_classes = (size_t)c.classes;
    o.test_fraction = c.out_test[0] ? c.test_fraction : 0.0;
    o.max_examples = (size_t)c.max_examples;
    o.seed = (uint64_t)c.seed;
    rc = fm_synth_write(&o, c.out_train, c.out_test[0] ? c.out_test : NULL);
    if (rc == FM_OK) printf("wrote %s%s%s\n", c.out_train, c.out_test[0] ? " and " : "", c.out_test);
  }
  return cli_agree(ctx, "data synth", rc) == FM_OK ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

int cmd_data(cli_ctx *ctx, int argc, char **argv) {
  const char *sub = argc > 1 ? argv[1] : NULL;
  if (sub && !strcmp(sub, "synth")) return data_synth(ctx, argc - 1, argv + 1);
  if (sub && !strcmp(sub, "info")) return data_info(ctx, argc - 1, argv + 1);
  if (sub && (!strcmp(sub, "--help") || !strcmp(sub, "-h"))) {
    if (ctx->rank == 0) printf("usage: fedmpi data synth [options] | fedmpi data info FILE\n");
    return CLI_EXIT_OK;
  }
  char msg[256];
  snprintf(msg, sizeof msg, "unknown data command '%s' (expected synth or info)", sub ? sub : "");
  cli_error(ctx, "data", msg);
  return CLI_EXIT_USAGE;
}
