/* src/model/stack.h — the layer kinds a "stack:" model is built from, as one
 * table (stack_layers.c), and the per-layer record the builder (stack.c)
 * fills. Not installed.
 *
 * A layer kind is a row of fm__layer_kinds[]: its name in a spec, its usage
 * text, its arguments (positive integers), how it maps its input shape to its
 * output shape, the parameter tensors it adds to the layout (with their
 * Glorot fans, or zeros), the per-example cache and the shared scratch it
 * needs, and a forward/backward pair that calls the kernels of layers.h.
 * Adding a layer is adding one row and its functions; the builder, the
 * parser, the layout, the initialisation and the workspace plan are generic.
 *
 * Shapes are per example: (F) flat, (T, F) a sequence of T steps of F
 * features (after an embedding), or (H, W, C) an NHWC image. */
#ifndef FEDMPI_MODEL_STACK_H
#define FEDMPI_MODEL_STACK_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/model.h"

#define FM__LAYER_MAX_ARGS 4
#define FM__LAYER_MAX_TENSORS 4

/* Flags of a kind. */
enum {
  FM__LAYER_VIEW = 1,    /* output IS the input buffer, reinterpreted (flatten, reshape): no compute */
  FM__LAYER_INPLACE = 2, /* forward overwrites its input (ReLU); backward updates the gradient in place */
  FM__LAYER_LOSS = 4,    /* names the loss; must be last; no compute of its own */
  FM__LAYER_RATE = 8,    /* its first argument is a rate in [0, 1) (L->rate), not an integer */
  FM__LAYER_PADDING = 16, /* its last argument may be the word 'same' or 'valid' (L->valid), one of kind->words */
  FM__LAYER_NEEDS_OUT = 32 /* its backward reads its own output: no in-place layer may overwrite it */
};

typedef struct fm__shape {
  int ndim; /* 1: (F); 2: (T, F); 3: (H, W, C) */
  size_t d[FM_MAX_DIMS];
  size_t numel;
} fm__shape;

/* How a parameter tensor starts (Keras's initialisers). */
typedef enum fm__init {
  FM__INIT_GLOROT = 0,   /* Glorot uniform with the fans, or zeros when fan_in == 0 */
  FM__INIT_ORTHOGONAL,   /* Keras Orthogonal (the LSTM's recurrent kernel), a 2-D shape */
  FM__INIT_LSTM_BIAS,    /* zeros but the forget gate's 1 (unit_forget_bias), shape (4U) */
  FM__INIT_UNIFORM       /* U(-0.05, 0.05), Keras's 'uniform' (embeddings), a 2-D shape */
} fm__init;

/* One parameter tensor of a layer: "<prefix>_<i>/<suffix>", its shape, and
 * its initialiser. */
typedef struct fm__tensor_desc {
  const char *suffix;
  int ndim;
  size_t shape[FM_MAX_DIMS];
  size_t fan_in, fan_out;
  fm__init init;
} fm__tensor_desc;

typedef struct fm__layer_kind fm__layer_kind;

typedef struct fm__layer {
  const fm__layer_kind *kind;
  size_t arg[FM__LAYER_MAX_ARGS]; /* the arguments as written */
  size_t nargs;
  double rate;      /* FM__LAYER_RATE: the rate as written */
  int valid;        /* FM__LAYER_PADDING: 1 for 'valid', 0 for 'same' (the default) */
  int padding_given; /* a word argument was written (padding, mask_zero, sequences) */
  int word;         /* which of kind->words it was: 1-based, 0 none */
  int mask_src;     /* the layer whose token mask reaches this one (an embedding with mask_zero), or -1 */
  uint32_t dropout_index; /* dropout layers: its index among the stack's dropout layers */
  size_t pos;       /* 1-based position in the stack */
  const char *spec; /* the whole layer list, and */
  const char *text; /* this layer, as written (both valid while the model is built) */
  int text_len;
  fm__shape in, out;
  size_t num_tensors;
  size_t tensor[FM__LAYER_MAX_TENSORS]; /* their indices in the layout */
  size_t woff[FM__LAYER_MAX_TENSORS];   /* their offsets in the weights */
  /* the workspace plan (stack.c): regions, FM__REG_X for the model's input */
  int in_reg, out_reg, aux_reg, dout_reg, din_reg;
} fm__layer;

/* One pass of one layer over a batch of n: the buffers stack.c resolved. */
typedef struct fm__layer_pass {
  size_t n;
  const float *in; /* (n, in.numel) */
  float *out;      /* (n, out.numel); == in for a view, and for in-place unless in is the model's input */
  void *aux;       /* the layer's own cache (e.g. the pooling argmax), or NULL */
  float *col;      /* scratch shared by all layers (im2col) */
  const float *w[FM__LAYER_MAX_TENSORS];
  float *dw[FM__LAYER_MAX_TENSORS]; /* backward: += into these */
  int training;                     /* forward: a training pass (dropout is active) */
  uint64_t key[4];                  /* forward: seed, round, client, step of fm_model_set_step */
  const uint8_t *mask;              /* (n, T) Keras's mask from an embedding with mask_zero, or NULL */
  const float *dout;                /* backward: (n, out.numel) */
  float *din;                       /* backward: (n, in.numel), NULL when nothing before needs it; may == dout */
} fm__layer_pass;

struct fm__layer_kind {
  const char *name;   /* as written in a spec: "conv2d" */
  const char *usage;  /* "conv2d(filters, kernel)" */
  const char *prefix; /* tensor names "<prefix>_<i>/...", counted per prefix; NULL without tensors */
  int flags;
  size_t min_args, max_args;
  const char *const *arg_names; /* max_args names, for messages */
  const char *const *words;     /* the words its last argument may be (NULL-ended), or NULL */
  const char *word_what;        /* what such a word is called in messages: "padding" */
  /* L->in -> L->out; records an error naming L (use fm__layer_error). NULL: out = in. */
  int (*shape)(fm__layer *L, size_t num_classes);
  /* The parameter tensors, written into t (at most FM__LAYER_MAX_TENSORS). NULL: none. */
  size_t (*tensors)(const fm__layer *L, fm__tensor_desc *t);
  /* Floats per example of the layer's own cache besides its output. NULL: none. */
  size_t (*aux_floats)(const fm__layer *L);
  /* Floats of scratch for a batch of n, shared by every layer. NULL: none. */
  size_t (*col_floats)(const fm__layer *L, size_t n);
  /* Forward GEMM flops per example (2 per multiply-add; docs/performance.md). NULL: none. */
  double (*flops)(const fm__layer *L);
  void (*forward)(const fm__layer *L, const fm__layer_pass *p);
  void (*backward)(const fm__layer *L, const fm__layer_pass *p);
};

/* The table, ended by a row with name NULL. */
extern const fm__layer_kind fm__layer_kinds[];

/* Records code with "model 'stack:SPEC': layer N 'TEXT': <message>". */
int fm__layer_error(const fm__layer *L, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* 1 and *out filled if m is a stack model (the named models included):
 * forward = the layers' flops, backward = each weight gradient (the layer's
 * forward again) plus each input gradient the plan computes (all but the
 * first layer reading the input). 0 for any other model. */
int fm__stack_flops(const fm_model *m, fm_model_flops *out);

/* Add metric to m (a stack model) and free it with the model; on failure it
 * is freed at once. For named models with metrics of their own. */
int fm__stack_add_owned_metric(fm_model *m, fm_metric *metric);

/* Build a stack model from the text after "stack:". type: the type name
 * to record (NULL: "stack:" + the canonical spec). */
int fm__stack_create(const fm_input_spec *spec, const char *layers, const char *type, fm_model **out);

#endif
