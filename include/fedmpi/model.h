/* fedmpi/model.h — weights layouts and the model interface.
 *
 * A model's weights live in ONE contiguous float buffer described by an
 * fm_layout: named tensors, trainable ones first, then non-trainable ones.
 * Gradients, client deltas, optimizer moments and aggregation sums all use the
 * same layout (over the trainable prefix), so every update is a flat loop.
 *
 * A model is functional (like tff.learning.models.FunctionalModel): the
 * fm_model object is immutable after creation and holds no weights; forward()
 * and backward() take the weights explicitly plus a per-thread workspace, so
 * one model object serves every OpenMP thread.
 *
 * Dimension legend: N batch size, D = input_spec.num_features (flattened
 * features), C = input_spec.num_classes, P = layout numel, T = trainable numel. */
#ifndef FEDMPI_MODEL_H
#define FEDMPI_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/export.h"
#include "fedmpi/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FM_MAX_DIMS 4
#define FM_TENSOR_NAME_MAX 64

/* ---- layouts ------------------------------------------------------------- */

typedef struct fm_tensor_info {
  char name[FM_TENSOR_NAME_MAX]; /* e.g. "dense_0/kernel" */
  int ndim;
  size_t shape[FM_MAX_DIMS];
  size_t numel;
  size_t offset;  /* in floats, from the start of the buffer */
  int trainable;
} fm_tensor_info;

typedef struct fm_layout fm_layout;

/* Empty layout. FM_ERR_NOMEM. */
FM_EXTERN int fm_layout_create(fm_layout **out);
/* Append a tensor. Trainable tensors must all be added before the first
 * non-trainable one (FM_ERR_INVALID_ARG otherwise, as for a duplicate name,
 * ndim outside 1..FM_MAX_DIMS or a zero dimension). */
FM_EXTERN int fm_layout_add(fm_layout *l, const char *name, int ndim, const size_t *shape, int trainable);
FM_EXTERN size_t fm_layout_num_tensors(const fm_layout *l);
FM_EXTERN const fm_tensor_info *fm_layout_tensor(const fm_layout *l, size_t i);
/* Index of the tensor called name, or -1. */
FM_EXTERN long fm_layout_find(const fm_layout *l, const char *name);
/* Total floats (P) and trainable floats (T, a prefix of the buffer). */
FM_EXTERN size_t fm_layout_numel(const fm_layout *l);
FM_EXTERN size_t fm_layout_trainable_numel(const fm_layout *l);
/* 1 if both have the same tensors (names, shapes, trainability, order). */
FM_EXTERN int fm_layout_equal(const fm_layout *a, const fm_layout *b);
/* Deep copy. */
FM_EXTERN int fm_layout_clone(const fm_layout *l, fm_layout **out);
/* Frees *l (NULL accepted) and sets *l = NULL. */
FM_EXTERN void fm_layout_destroy(fm_layout **l);

/* ---- input spec ---------------------------------------------------------- */

typedef struct fm_input_spec {
  int ndim;                    /* feature dims per example, e.g. 1 for (60,), 3 for (28,28,1) */
  size_t shape[FM_MAX_DIMS];   /* per-example feature shape */
  size_t num_features;         /* product of shape = D */
  size_t num_classes;          /* C; labels are int32 in [0, C) */
} fm_input_spec;

/* Fill spec from a shape; num_features computed. FM_ERR_INVALID_ARG. */
FM_EXTERN int fm_input_spec_set(fm_input_spec *spec, int ndim, const size_t *shape, size_t num_classes);

/* ---- the model interface --------------------------------------------------- */

typedef struct fm_model fm_model;

typedef struct fm_model_ops {
  /* Bytes of per-thread workspace needed for batches of up to max_batch. */
  size_t (*workspace_size)(const fm_model *m, size_t max_batch);
  /* Write initial weights (all P floats, trainable and not) into w,
   * deterministically from seed (use fm_rng with FM_RNG_INIT). */
  int (*init_weights)(const fm_model *m, float *w, uint64_t seed);
  /* Forward pass on a batch: x (N, D), y (N, T) with T = fm_model_num_targets
   * (one label per example unless the model says otherwise; T = 0: y unused,
   * may be NULL); N <= the max_batch ws was sized for.
   *   *loss  <- mean over the batch of the per-example loss
   *   probs  <- (N, P) predictions, P = fm_model_prediction_size: by default the
   *             C class probabilities; (T, C) per example for a label per time
   *             step; if probs != NULL
   * With training = 1 it caches in ws what backward() needs. */
  int (*forward)(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                 int training, float *loss, float *probs);
  /* Backward pass for the batch of the last training forward() on this ws:
   * dw (T) += d(mean batch loss)/d(trainable weights). */
  int (*backward)(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y, size_t n,
                  float *dw);
  /* Release the implementation's data (optional). */
  void (*destroy)(fm_model *m);
  /* The random key of the training forward passes that follow on this ws
   * (optional: models with dropout). The client work sets it before every
   * local step: the run's seed, the round, the client's index in the
   * population and its local step, counting batches from 0 across epochs,
   * so the masks depend on none of ranks, threads or the cohort. */
  void (*set_step)(const fm_model *m, void *ws, uint64_t seed, uint64_t round, uint64_t client, uint64_t step);
} fm_model_ops;

/* Create a model from a vtable. Takes ownership of layout (even on failure).
 * data belongs to the implementation and is released by ops->destroy once
 * the model exists; if creation fails, data stays with the caller.
 * Metrics default to: accuracy, loss, num_examples, num_batches.
 * FM_ERR_INVALID_ARG if a required slot (workspace_size, init_weights,
 * forward, backward) is missing or the spec is invalid. */
FM_EXTERN int fm_model_create(const char *type, const fm_model_ops *ops, const fm_input_spec *spec,
                              fm_layout *layout, void *data, fm_model **out);
FM_EXTERN void fm_model_destroy(fm_model **m);

FM_EXTERN const char *fm_model_type(const fm_model *m);
FM_EXTERN const fm_layout *fm_model_layout(const fm_model *m);
FM_EXTERN const fm_input_spec *fm_model_input_spec(const fm_model *m);
FM_EXTERN void *fm_model_data(const fm_model *m);

/* Metrics reported by the model (user metrics first, then loss,
 * num_examples, num_batches, as from_keras_model). */
FM_EXTERN size_t fm_model_num_metrics(const fm_model *m);
FM_EXTERN const fm_metric *fm_model_metric(const fm_model *m, size_t i);
/* Add a user metric before the built-in loss/num_examples/num_batches. The
 * metric object must outlive the model. FM_ERR_INVALID_ARG on a duplicate name. */
FM_EXTERN int fm_model_add_metric(fm_model *m, const fm_metric *metric);
/* Total unfinalized slots over all metrics. */
FM_EXTERN size_t fm_model_num_metric_values(const fm_model *m);

/* What the model trains on and predicts, for the client work's buffers and the
 * metrics. num_targets T: labels per example in y, 1 by default (a class), T > 1
 * a label per time step (y (N, T), e.g. the next character at each of 80
 * steps), 0 none (the target is the input itself, as an autoencoder's).
 * prediction_size P: floats per example forward() writes into probs, C by
 * default; T * C for a label per step. An implementation sets them once, right
 * after fm_model_create (FM_ERR_INVALID_ARG for P == 0, or T > 1 with P not a
 * multiple of T). The data's labels per example must match T (T == 0 takes
 * data with one label per example, unread). Not collective. */
FM_EXTERN int fm_model_set_targets(fm_model *m, size_t num_targets, size_t prediction_size);
FM_EXTERN size_t fm_model_num_targets(const fm_model *m);
FM_EXTERN size_t fm_model_prediction_size(const fm_model *m);

/* Checked dispatch (argument checks, then the vtable). Not collective. */
FM_EXTERN size_t fm_model_workspace_size(const fm_model *m, size_t max_batch);
FM_EXTERN int fm_model_init_weights(const fm_model *m, float *w, uint64_t seed);
FM_EXTERN int fm_model_forward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y,
                               size_t n, int training, float *loss, float *probs);
FM_EXTERN int fm_model_backward(const fm_model *m, void *ws, const float *w, const float *x, const int32_t *y,
                                size_t n, float *dw);
/* ops->set_step when the model has one; a no-op otherwise (ws may then be anything). */
FM_EXTERN void fm_model_set_step(const fm_model *m, void *ws, uint64_t seed, uint64_t round, uint64_t client,
                                 uint64_t step);

/* ---- built-in models and the registry ------------------------------------ */

/* Softmax (multinomial logistic) regression: kernel (D, C), bias (C). */
FM_EXTERN int fm_model_create_softmax(const fm_input_spec *spec, fm_model **out);
/* MLP: dense+ReLU for each hidden size, then dense to C, softmax cross-entropy.
 * Tensors "dense_<i>/kernel" (in, out) and "dense_<i>/bias" (out). */
FM_EXTERN int fm_model_create_mlp(const fm_input_spec *spec, const size_t *hidden, size_t num_hidden,
                                  fm_model **out);

/* The CNN of McMahan et al. 2017 (TFF's create_original_fedavg_cnn_model):
 *   Conv2D(F1, KxK, 'same') + ReLU -> MaxPool2D(2x2, 'same')
 *   -> Conv2D(F2, KxK, 'same') + ReLU -> MaxPool2D(2x2, 'same')
 *   -> Flatten -> Dense(U) + ReLU -> Dense(C), softmax cross-entropy.
 * The input spec is per example (H, W) (one channel) or (H, W, Cin); x rows
 * are H * W * Cin floats in that row-major (NHWC) order. Tensors
 * "conv2d_<i>/kernel" (K, K, in, out), "conv2d_<i>/bias" (out),
 * "dense_<i>/kernel" (in, out), "dense_<i>/bias" (out), all trainable. The
 * defaults (32, 64, 512, 5) give 1,663,370 parameters for 28x28x1 and 10
 * classes, as Keras. See docs/models.md. */
typedef struct fm_cnn_config {
  size_t conv_filters[2]; /* F1, F2 (default 32, 64) */
  size_t dense_units;     /* U (default 512) */
  size_t kernel_size;     /* K, square kernels (default 5) */
} fm_cnn_config;

/* The defaults above. */
FM_EXTERN fm_cnn_config fm_cnn_config_default(void);
/* config NULL means the defaults. FM_ERR_SPEC_MISMATCH if the spec is not an
 * image shape, FM_ERR_INVALID_ARG for a zero size, FM_ERR_OVERFLOW when the
 * activations exceed the int dimensions BLAS and the pooling indices take.
 * Type name "cnn:F1,F2,U" (",K" appended when K != 5), which
 * fm_model_create_by_name() turns back into the same model. */
FM_EXTERN int fm_model_create_cnn(const fm_input_spec *spec, const fm_cnn_config *config, fm_model **out);

/* A model written as a stack of layers, e.g.
 *   "conv2d(32,5),relu,maxpool,conv2d(64,5),relu,maxpool,flatten,dense(512),relu,dense"
 * (the text after "stack:" in a model name), trained with softmax
 * cross-entropy on the last layer's C logits. Layers: dense(units) (bare
 * 'dense': C units), relu, conv2d(filters, kernel) ('same', stride 1),
 * maxpool[(2)] (2x2 'same'), flatten, reshape(F) / reshape(H, W[, C]),
 * softmax (names the loss, last). Tensors "<layer>_<i>/kernel|bias" counted
 * per layer kind, as the built-in models name them. FM_ERR_INVALID_ARG for a
 * malformed list or an unknown layer, FM_ERR_SPEC_MISMATCH when the shapes
 * do not fit the data, FM_ERR_OVERFLOW past the BLAS limits; each message
 * names the layer (position and text) or the character. Type name
 * "stack:" + the layers as parsed. See docs/models.md. */
FM_EXTERN int fm_model_create_stack(const fm_input_spec *spec, const char *layers, fm_model **out);

/* Factory used by the registry: args is the text after ':' in the model name
 * ("mlp:200,200" -> "200,200"), or NULL. */
typedef int (*fm_model_factory_fn)(const fm_input_spec *spec, const char *args, fm_model **out);

/* Register a model type by name (process-wide; call before creating models
 * by name). FM_ERR_INVALID_ARG on a duplicate or bad name. Not thread-safe. */
FM_EXTERN int fm_model_register(const char *name, fm_model_factory_fn factory, const char *help);
/* Create a model by name, "softmax", "mlp:200,200", or any registered name.
 * FM_ERR_UNKNOWN_TYPE names the unknown type. */
FM_EXTERN int fm_model_create_by_name(const char *name, const fm_input_spec *spec, fm_model **out);
/* Iterate the registry: name and help of entry i, or NULL past the end. */
FM_EXTERN const char *fm_model_registry_name(size_t i, const char **help);

/* ---- performance accounting (src/model/flops.c) ---------------------------- */

/* Floating-point operations per example of a training step, GEMM work only:
 * 2 per multiply-add of every dense and conv layer. forward: the layers'
 * products; backward: weight gradients (= forward) plus input gradients
 * (= forward minus the first layer, whose input gradient is never computed);
 * train = forward + backward. Biases, activations, pooling, softmax and the
 * optimizer step are not counted. See docs/performance.md. */
typedef struct fm_model_flops {
  double forward, backward, train;
} fm_model_flops;
/* Counted from the layout and the input spec: dense kernels ("<name>/kernel",
 * 2-D) in any model; conv kernels in the built-in "cnn" types. Not
 * collective. FM_ERR_UNSUPPORTED for any other tensor. */
FM_EXTERN int fm_model_flops_per_example(const fm_model *m, fm_model_flops *out);
/* This machine's cblas_sgemm speed on one shape: row-major C (m, n) =
 * op(A) (m, k) op(B) (k, n), op = transpose when trans_a / trans_b. The
 * median GFLOP/s of `trials` timings, each repeating the call for at least
 * min_seconds, after one untimed call. BLAS threading is left as it is
 * (single-threaded after fm_runtime_setup_threads). Safe to call from
 * several threads at once. Not collective. */
FM_EXTERN int fm_sgemm_gflops(size_t m, size_t n, size_t k, int trans_a, int trans_b, int trials, double min_seconds,
                              double *gflops);
/* The BLAS kernel set in use, e.g. "Haswell" or "Cooperlake" (OpenBLAS's
 * openblas_get_corename; OPENBLAS_CORETYPE overrides its choice). */
FM_EXTERN const char *fm_blas_corename(void);

#ifdef __cplusplus
}
#endif
#endif
