/* tests/fuzz/fuzz_model_spec.c — the model spec parsers (src/model/registry.c:
 * "softmax", "mlp:H1,H2", "2nn", "cnn:F1,F2,DENSE[,KERNEL]"; src/model/stack.c:
 * "stack:LAYER,LAYER,...", embeddings and LSTMs included) on three input specs: a vector, a small image and
 * MNIST's. An accepted model must give a consistent layout and initialise and
 * run one forward and one backward pass. */
#include "fuzz_common.h"

static void try_spec(const char *text, int ndim, const size_t *shape, size_t classes) {
  fm_input_spec spec;
  if (fm_input_spec_set(&spec, ndim, shape, classes) != FM_OK) abort();
  fm_model *m = NULL;
  int rc = fm_model_create_by_name(text, &spec, &m);
  fuzz_check_rc(rc);
  if (rc != FM_OK) return;
  const fm_layout *l = fm_model_layout(m);
  size_t P = fm_layout_numel(l), sum = 0;
  for (size_t i = 0; i < fm_layout_num_tensors(l); i++) sum += fm_layout_tensor(l, i)->numel;
  if (sum != P || fm_layout_trainable_numel(l) > P) abort();
  size_t D = 1;
  for (int d = 0; d < ndim; d++) D *= shape[d];
  size_t ws_bytes = fm_model_workspace_size(m, 2);
  if (P <= (1u << 20) && ws_bytes <= (64u << 20)) {
    float *w = malloc(P * sizeof *w), *dw = calloc(P, sizeof *dw), *x = calloc(2 * D, sizeof *x);
    void *ws = malloc(ws_bytes ? ws_bytes : 1);
    const size_t T = fm_model_num_targets(m) > 1 ? fm_model_num_targets(m) : 1; /* a label per step */
    int32_t *y = calloc(2 * T, sizeof *y);
    if (y) y[2 * T - 1] = (int32_t)(classes - 1);
    float loss = 0;
    if (w && dw && x && ws && y) {
      fuzz_check_rc(fm_model_init_weights(m, w, 1));
      fm_model_set_step(m, ws, 1, 1, 0, 0); /* dropout's key */
      fuzz_check_rc(fm_model_forward(m, ws, w, x, y, 2, 1, &loss, NULL));
      fuzz_check_rc(fm_model_backward(m, ws, w, x, y, 2, dw));
    }
    free(w), free(dw), free(x), free(ws), free(y);
  }
  fm_model_destroy(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  char *text = fuzz_string(data, size, 256);
  if (!text) return 0;
  static const size_t vec[1] = {5}, img[3] = {12, 12, 1}, mnist[2] = {28, 28};
  try_spec(text, 1, vec, 3);
  try_spec(text, 3, img, 4);
  try_spec(text, 2, mnist, 10);
  free(text);
  return 0;
}
