/* src/cli/eval.c — `fedmpi eval`: forward passes of a saved weights file over
 * every client of a ClientData file, distributed like training. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

typedef struct eval_cfg {
  char weights[CLI_STR_MAX], data[CLI_STR_MAX], model[CLI_STR_MAX], x_feature[CLI_STR_MAX], y_feature[CLI_STR_MAX];
  char vocab[CLI_STR_MAX];
  int64_t batch_size, threads, num_classes, vocab_size, seq_len;
} eval_cfg;

#define OFF(f) offsetof(eval_cfg, f)
static const cli_opt eval_opts[] = {
    {"weights", CLI_STR, OFF(weights), "", 0, 0, NULL, "FILE", "weights file (fedmpi train writes OUT/weights.h5)"},
    {"data", CLI_STR, OFF(data), "", 0, 0, NULL, "FILE", "ClientData file to evaluate on"},
    {"model", CLI_STR, OFF(model), "softmax", 0, 0, NULL, "NAME", "model the weights belong to"},
    {"batch-size", CLI_INT, OFF(batch_size), "256", 1, 1e7, NULL, "B", "evaluation batch size"},
    {"threads", CLI_INT, OFF(threads), "0", 0, 4096, NULL, "T", "OpenMP threads per rank (0: OMP_NUM_THREADS if set, else the rank's share of its CPUs)"},
    {"num-classes", CLI_INT, OFF(num_classes), "0", 0, 1e7, NULL, "C", "number of classes (0: from the file)"},
    {"x-feature", CLI_STR, OFF(x_feature), "", 0, 0, NULL, "NAME", "input feature (default: x, pixels or image)"},
    {"y-feature", CLI_STR, OFF(y_feature), "", 0, 0, NULL, "NAME", "label feature (default: y or label)"},
    {"vocab", CLI_STR, OFF(vocab), "", 0, 0, NULL, "FILE",
     "text data: word count file for a string feature of words (Stack Overflow's 'tokens'), 'word count' per "
     "line, most frequent first (default: the --vocab-size most frequent words of --data, which differ from "
     "training's unless --data is the training file: give training's --vocab)"},
    {"vocab-size", CLI_INT, OFF(vocab_size), "10000", 1, 2.1e9, NULL, "V", "text data: words in the vocabulary"},
    {"seq-len", CLI_INT, OFF(seq_len), "0", 0, 16777216, NULL, "L",
     "text data: length of x and y per example (0: the tokenizer's, 80 characters or 20 words)"},
};
static const cli_command eval_cmd = {"eval", "fedmpi eval --weights FILE --data FILE [options]",
                                     "Evaluate a weights file on every client of a ClientData file (forward passes "
                                     "only) and print loss, accuracy and counts.",
                                     eval_opts, sizeof eval_opts / sizeof eval_opts[0], 1};

int cmd_eval(cli_ctx *ctx, int argc, char **argv) {
  eval_cfg c;
  char *pos[1];
  int npos, status = CLI_EXIT_FAILURE;
  int ex = cli_parse_or_exit(ctx, &eval_cmd, &c, argc, argv, pos, 0, &npos);
  if (ex >= 0) return ex;
  if (!c.weights[0] || !c.data[0]) {
    cli_error(ctx, "eval", "--weights and --data are required");
    return CLI_EXIT_USAGE;
  }
  int nt = 1;
  if (cli_threads(ctx, "eval", c.threads, &nt) != FM_OK) return CLI_EXIT_FAILURE;
  fm_client_data *cd = NULL;
  fm_model *model = NULL;
  float *w = NULL;
  fm_metrics m;
  fm_metrics_init(&m);
  fm_tokenizer *tok = NULL;
  const cli_text_opts text = {c.data, c.x_feature, c.vocab, c.vocab_size, c.seq_len};
  int rc = cli_text_tokenizer(&text, &tok);
  if (cli_agree(ctx, "eval", rc) != FM_OK) {
    status = CLI_EXIT_USAGE;
    goto done;
  }
  fm_data_options dopt = {.x_feature = c.x_feature[0] ? c.x_feature : NULL,
                          .y_feature = c.y_feature[0] ? c.y_feature : NULL,
                          .tokenizer = tok};
  rc = fm_client_data_open_spec(c.data, &dopt, &cd);
  if (cli_agree(ctx, "eval", rc) != FM_OK) goto done;
  fm_input_spec spec;
  rc = cli_input_spec(cd, c.num_classes, &spec);
  if (rc == FM_OK) rc = fm_model_create_by_name(c.model, &spec, &model);
  if (rc == FM_OK) rc = cli_check_targets(cd, model);
  if (rc == FM_OK) {
    w = malloc(fm_layout_numel(fm_model_layout(model)) * sizeof *w);
    rc = w ? fm_weights_load(c.weights, fm_model_layout(model), w) : fm_set_error(FM_ERR_NOMEM, "out of memory");
  }
  if (cli_agree(ctx, "eval", rc) != FM_OK) goto done;
  rc = fm_evaluate(model, w, cd, NULL, 0, (size_t)c.batch_size, nt, ctx->comm, &m);
  if (rc != FM_OK) {
    cli_error(ctx, "eval", fm_last_error());
    goto done;
  }
  if (ctx->rank == 0) {
    char *json = fm_metrics_to_json(&m, 0);
    for (size_t i = 0; i < m.n; i++)
      printf(m.entry[i].kind == FM_METRIC_INT ? "%s %.0f\n" : "%s %.6f\n", m.entry[i].path, m.entry[i].value);
    free(json);
  }
  status = CLI_EXIT_OK;
done:
  fm_metrics_free(&m);
  free(w);
  fm_model_destroy(&model);
  fm_client_data_close(&cd);
  fm_tokenizer_destroy(&tok); /* after the data that borrow it */
  return status;
}
