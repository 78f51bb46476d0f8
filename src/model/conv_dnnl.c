/* src/model/conv_dnnl.c — conv2d forward and backward through oneDNN's
 * direct convolutions (libdnnl 2.6, Debian's libdnnl-dev), behind the
 * im2col kernels of conv.c.
 *
 * Why: on the CNNs im2col + sgemm spends a third of the step outside the
 * GEMM kernel (im2col, col2im, packing the same matrices 32 times a batch)
 * and is only as fast as the kernel OpenBLAS picked (SSE3 on a CPU it does
 * not know). oneDNN's JIT convolutions pick their own ISA from cpuid, read
 * and write our NHWC activations as they are, and measured 1.5-1.8x the
 * im2col path per conv on AVX-512 (docs/performance.md, "Convolutions").
 *
 * What it does:
 * - One process-wide cache of plans, keyed by the conv's geometry and the
 *   batch size n: the forward, backward-data and backward-weights primitive
 *   descriptors and primitives (activations NHWC, the weights in the formats
 *   oneDNN prefers, bias plain), and three weight reorders (Keras HWIO to the
 *   forward's and the backward-data's formats, the weight gradient back to
 *   HWIO). A mutex guards lookups; a plan is built once and then shared by
 *   every thread: the primitives run in user-scratchpad mode, and each call
 *   passes its thread's own scratch (a thread-local buffer that grows to the
 *   largest plan's need and is freed when the thread ends).
 * - Every oneDNN call, creation included, runs with the calling thread's
 *   OpenMP thread count set to 1 (and restored): the primitives are built
 *   and run single-threaded whether or not the caller is inside the
 *   executor's parallel region, so a client's result depends only on its
 *   data, the geometry and n, never on the ranks x threads layout.
 *   (OpenMP parallelism is over clients, as for BLAS.)
 * - A plan is used only if oneDNN has a JIT implementation for the forward
 *   and backward-weights passes (and the backward-data pass when the caller
 *   asks for the input gradient); otherwise, or if any oneDNN call fails,
 *   the caller runs im2col: the choice depends on the geometry, n and the
 *   CPU only, so it is the same on every rank.
 * - Backward accumulates into dK and db like conv.c (oneDNN writes the
 *   gradient of this batch into scratch, which is then added).
 * - FEDMPI_CONV=im2col in the environment (read once) turns it off.
 *
 * What it deliberately does not do: keep activations in oneDNN's blocked
 * formats across layers (NHWC measured within 10 % of them and needs no
 * reorders), fuse ReLU, or use oneDNN for anything but conv2d. */
#include "fedmpi/blas.h"
#include "layers.h"

#ifdef FM_HAVE_DNNL

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct fm__dnnl_plan {
  fm__conv_dims key;
  int ok;       /* fwd and bwd-weights have JIT implementations */
  int ok_data;  /* so has bwd-data */
  dnnl_primitive_desc_t fpd, dpd, wpd, rfpd, rdpd, rwpd;
  dnnl_primitive_t fwd, bwd_d, bwd_w, r_f, r_d, r_w;
  dnnl_memory_desc_t src, dst, bias, hwio, w_f, w_d, dw;
  size_t w_f_bytes, w_d_bytes, dw_bytes, pad_bytes; /* pad: the largest scratchpad of the six */
  struct fm__dnnl_plan *next;
} fm__dnnl_plan;

static pthread_mutex_t fm__dnnl_lock = PTHREAD_MUTEX_INITIALIZER;
static fm__dnnl_plan *fm__dnnl_plans;
static dnnl_engine_t fm__dnnl_engine;
static int fm__dnnl_state; /* 0 not tried, 1 on, -1 off (FEDMPI_CONV=im2col or no engine) */
static char fm__dnnl_desc[160];
int fm__conv_dnnl_calls; /* convolutions oneDNN ran (for tests: that the path really ran) */

/* ---- the thread-count guard and per-thread scratch ------------------------------------------ */

static int fm__one_thread(void) {
#ifdef _OPENMP
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  return saved;
#else
  return 1;
#endif
}

static void fm__restore_threads(int saved) {
#ifdef _OPENMP
  omp_set_num_threads(saved);
#else
  (void)saved;
#endif
}

static pthread_key_t fm__scratch_key;
static pthread_once_t fm__scratch_once = PTHREAD_ONCE_INIT;
static int fm__scratch_key_ok;

typedef struct fm__scratch {
  size_t bytes;
  void *p;
} fm__scratch;

static void fm__scratch_free(void *v) {
  fm__scratch *s = v;
  if (s) free(s->p);
  free(s);
}

static void fm__scratch_key_make(void) {
  fm__scratch_key_ok = pthread_key_create(&fm__scratch_key, fm__scratch_free) == 0;
}

/* bytes rounded up to a whole number of 64-byte lines */
static size_t fm__up64(size_t bytes) { return (bytes + 63) / 64 * 64; }

/* This thread's scratch of at least bytes (64-byte aligned), or NULL. */
static void *fm__scratch_get(size_t bytes) {
  pthread_once(&fm__scratch_once, fm__scratch_key_make);
  if (!fm__scratch_key_ok) return NULL;
  fm__scratch *s = pthread_getspecific(fm__scratch_key);
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s || pthread_setspecific(fm__scratch_key, s) != 0) {
      free(s);
      return NULL;
    }
  }
  if (s->bytes < bytes) {
    size_t b = fm__up64(bytes);
    void *p = aligned_alloc(64, b);
    if (!p) return NULL;
    free(s->p);
    s->p = p;
    s->bytes = b;
  }
  return s->p;
}

/* ---- plans ------------------------------------------------------------------------------------ */

static void fm__plan_free(fm__dnnl_plan *P) {
  dnnl_primitive_t prims[] = {P->fwd, P->bwd_d, P->bwd_w, P->r_f, P->r_d, P->r_w};
  dnnl_primitive_desc_t pds[] = {P->fpd, P->dpd, P->wpd, P->rfpd, P->rdpd, P->rwpd};
  for (size_t i = 0; i < 6; i++) {
    if (prims[i]) dnnl_primitive_destroy(prims[i]);
    if (pds[i]) dnnl_primitive_desc_destroy(pds[i]);
  }
  free(P);
}

__attribute__((destructor)) static void fm__dnnl_release(void) {
  while (fm__dnnl_plans) {
    fm__dnnl_plan *n = fm__dnnl_plans->next;
    fm__plan_free(fm__dnnl_plans);
    fm__dnnl_plans = n;
  }
  if (fm__dnnl_engine) dnnl_engine_destroy(fm__dnnl_engine);
  fm__dnnl_engine = NULL;
  if (fm__scratch_key_ok) {
    fm__scratch_free(pthread_getspecific(fm__scratch_key));
    pthread_setspecific(fm__scratch_key, NULL);
  }
}

/* A JIT implementation, not a reference loop or oneDNN's own im2col + GEMM. */
static int fm__jit_impl(const_dnnl_primitive_desc_t pd) {
  const char *info = NULL;
  if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info) != dnnl_success || !info) return 0;
  return strncmp(info, "ref", 3) != 0 && !strstr(info, "gemm");
}

static size_t fm__pad_bytes(const_dnnl_primitive_desc_t pd) {
  const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  return md ? dnnl_memory_desc_get_size(md) : 0;
}

static const dnnl_memory_desc_t *fm__md(const_dnnl_primitive_desc_t pd, dnnl_query_t what) {
  return dnnl_primitive_desc_query_md(pd, what, 0);
}

#define FM__DN(x)                          \
  do {                                     \
    if ((x) != dnnl_success) goto failed; \
  } while (0)

/* Builds P's primitives for P->key (called with the lock held, one thread). */
static void fm__plan_build(fm__dnnl_plan *P) {
  const fm__conv_dims *g = &P->key;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_dims_t sd = {(dnnl_dim_t)g->N, (dnnl_dim_t)g->IC, (dnnl_dim_t)g->H, (dnnl_dim_t)g->W};
  dnnl_dims_t wd = {(dnnl_dim_t)g->OC, (dnnl_dim_t)g->IC, (dnnl_dim_t)g->KH, (dnnl_dim_t)g->KW};
  dnnl_dims_t bd = {(dnnl_dim_t)g->OC};
  dnnl_dims_t dd = {(dnnl_dim_t)g->N, (dnnl_dim_t)g->OC, (dnnl_dim_t)g->HO, (dnnl_dim_t)g->WO};
  dnnl_dims_t strides = {1, 1}, pl = {(dnnl_dim_t)g->ph, (dnnl_dim_t)g->pw};
  /* the padding after the image: what the output size needs beyond it */
  dnnl_dims_t pr = {(dnnl_dim_t)(g->HO + g->KH - 1) - (dnnl_dim_t)(g->H + g->ph),
                    (dnnl_dim_t)(g->WO + g->KW - 1) - (dnnl_dim_t)(g->W + g->pw)};
  dnnl_memory_desc_t wany;
  dnnl_convolution_desc_t cd;
  FM__DN(dnnl_primitive_attr_create(&attr));
  FM__DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
  FM__DN(dnnl_memory_desc_init_by_tag(&P->src, 4, sd, dnnl_f32, dnnl_nhwc));
  FM__DN(dnnl_memory_desc_init_by_tag(&P->dst, 4, dd, dnnl_f32, dnnl_nhwc));
  FM__DN(dnnl_memory_desc_init_by_tag(&P->bias, 1, bd, dnnl_f32, dnnl_x));
  FM__DN(dnnl_memory_desc_init_by_tag(&P->hwio, 4, wd, dnnl_f32, dnnl_hwio));
  FM__DN(dnnl_memory_desc_init_by_tag(&wany, 4, wd, dnnl_f32, dnnl_format_tag_any));
  FM__DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &P->src, &wany,
                                            &P->bias, &P->dst, strides, pl, pr));
  FM__DN(dnnl_primitive_desc_create(&P->fpd, &cd, attr, fm__dnnl_engine, NULL));
  FM__DN(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &P->src, &wany, &P->dst, strides, pl,
                                                  pr));
  FM__DN(dnnl_primitive_desc_create(&P->dpd, &cd, attr, fm__dnnl_engine, P->fpd));
  FM__DN(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &P->src, &wany, &P->bias, &P->dst,
                                                     strides, pl, pr));
  FM__DN(dnnl_primitive_desc_create(&P->wpd, &cd, attr, fm__dnnl_engine, P->fpd));
  P->w_f = *fm__md(P->fpd, dnnl_query_weights_md);
  P->w_d = *fm__md(P->dpd, dnnl_query_weights_md);
  P->dw = *fm__md(P->wpd, dnnl_query_diff_weights_md);
  /* the activations must stay NHWC and the bias plain, as asked */
  if (!dnnl_memory_desc_equal(fm__md(P->fpd, dnnl_query_src_md), &P->src) ||
      !dnnl_memory_desc_equal(fm__md(P->fpd, dnnl_query_dst_md), &P->dst) ||
      !dnnl_memory_desc_equal(fm__md(P->dpd, dnnl_query_diff_src_md), &P->src) ||
      !dnnl_memory_desc_equal(fm__md(P->wpd, dnnl_query_diff_dst_md), &P->dst) ||
      !dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(P->wpd, dnnl_query_diff_weights_md, 1), &P->bias))
    goto failed;
  FM__DN(dnnl_reorder_primitive_desc_create(&P->rfpd, &P->hwio, fm__dnnl_engine, &P->w_f, fm__dnnl_engine, attr));
  FM__DN(dnnl_reorder_primitive_desc_create(&P->rdpd, &P->hwio, fm__dnnl_engine, &P->w_d, fm__dnnl_engine, attr));
  FM__DN(dnnl_reorder_primitive_desc_create(&P->rwpd, &P->dw, fm__dnnl_engine, &P->hwio, fm__dnnl_engine, attr));
  P->ok = fm__jit_impl(P->fpd) && fm__jit_impl(P->wpd);
  P->ok_data = P->ok && fm__jit_impl(P->dpd);
  if (!P->ok) goto failed;
  FM__DN(dnnl_primitive_create(&P->fwd, P->fpd));
  FM__DN(dnnl_primitive_create(&P->bwd_w, P->wpd));
  FM__DN(dnnl_primitive_create(&P->r_f, P->rfpd));
  FM__DN(dnnl_primitive_create(&P->r_w, P->rwpd));
  if (P->ok_data) {
    FM__DN(dnnl_primitive_create(&P->bwd_d, P->dpd));
    FM__DN(dnnl_primitive_create(&P->r_d, P->rdpd));
  }
  P->w_f_bytes = dnnl_memory_desc_get_size(&P->w_f);
  P->w_d_bytes = dnnl_memory_desc_get_size(&P->w_d);
  P->dw_bytes = dnnl_memory_desc_get_size(&P->dw);
  const_dnnl_primitive_desc_t all[] = {P->fpd, P->dpd, P->wpd, P->rfpd, P->rdpd, P->rwpd};
  for (size_t i = 0; i < 6; i++)
    if (fm__pad_bytes(all[i]) > P->pad_bytes) P->pad_bytes = fm__pad_bytes(all[i]);
  dnnl_primitive_attr_destroy(attr);
  return;
failed:
  P->ok = P->ok_data = 0;
  if (attr) dnnl_primitive_attr_destroy(attr);
}

static const char *fm__isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41: return "SSE4.1";
    case dnnl_cpu_isa_avx: return "AVX";
    case dnnl_cpu_isa_avx2: return "AVX2";
    case dnnl_cpu_isa_avx2_vnni: return "AVX2-VNNI";
    case dnnl_cpu_isa_avx512_core: return "AVX-512";
    case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 VNNI";
    case dnnl_cpu_isa_avx512_core_bf16: return "AVX-512 BF16";
    case dnnl_cpu_isa_avx512_core_amx: return "AMX";
    default: return "no JIT ISA";
  }
}

/* With the lock held and one OpenMP thread. */
static int fm__dnnl_on(void) {
  if (fm__dnnl_state) return fm__dnnl_state > 0;
  const char *e = getenv("FEDMPI_CONV");
  if (e && strcmp(e, "im2col") == 0) {
    fm__dnnl_state = -1;
    snprintf(fm__dnnl_desc, sizeof fm__dnnl_desc, "im2col + sgemm (FEDMPI_CONV=im2col)");
    return 0;
  }
  const dnnl_version_t *v = dnnl_version();
  if (dnnl_engine_create(&fm__dnnl_engine, dnnl_cpu, 0) != dnnl_success) {
    fm__dnnl_state = -1;
    snprintf(fm__dnnl_desc, sizeof fm__dnnl_desc, "im2col + sgemm (oneDNN %d.%d.%d has no CPU engine)", v->major,
             v->minor, v->patch);
    return 0;
  }
  fm__dnnl_state = 1;
  snprintf(fm__dnnl_desc, sizeof fm__dnnl_desc, "oneDNN %d.%d.%d, %s JIT kernels (im2col + sgemm where none fits)",
           v->major, v->minor, v->patch, fm__isa_name(dnnl_get_effective_cpu_isa()));
  return 1;
}

/* The plan of g, built on first use; NULL when oneDNN is off for it. */
static const fm__dnnl_plan *fm__plan_get(const fm__conv_dims *g) {
  fm__dnnl_plan *P = NULL;
  pthread_mutex_lock(&fm__dnnl_lock);
  int saved = fm__one_thread();
  if (fm__dnnl_on()) {
    for (P = fm__dnnl_plans; P; P = P->next)
      if (memcmp(&P->key, g, sizeof *g) == 0) break;
    if (!P && (P = calloc(1, sizeof *P))) {
      P->key = *g;
      fm__plan_build(P);
      P->next = fm__dnnl_plans;
      fm__dnnl_plans = P;
    }
  }
  fm__restore_threads(saved);
  pthread_mutex_unlock(&fm__dnnl_lock);
  return P && P->ok ? P : NULL;
}

/* ---- running ---------------------------------------------------------------------------------- */

typedef struct fm__run {
  dnnl_stream_t stream;
  dnnl_memory_t mem[12];
  size_t nmem;
  int ok;
} fm__run;

static dnnl_memory_t fm__mem(fm__run *r, const dnnl_memory_desc_t *md, const void *p) {
  dnnl_memory_t m = NULL;
  if (!r->ok || r->nmem == sizeof r->mem / sizeof r->mem[0] ||
      dnnl_memory_create(&m, md, fm__dnnl_engine, (void *)p) != dnnl_success) {
    r->ok = 0;
    return NULL;
  }
  r->mem[r->nmem++] = m;
  return m;
}

/* The user scratchpad: bytes of p as a u8 vector (at least one byte). */
static dnnl_memory_t fm__pad_mem(fm__run *r, size_t bytes, void *p) {
  dnnl_memory_desc_t md;
  dnnl_dims_t dim = {(dnnl_dim_t)(bytes ? bytes : 1)};
  if (r->ok && dnnl_memory_desc_init_by_tag(&md, 1, dim, dnnl_u8, dnnl_x) == dnnl_success) return fm__mem(r, &md, p);
  r->ok = 0;
  return NULL;
}

static void fm__exec(fm__run *r, dnnl_primitive_t prim, int n, const dnnl_exec_arg_t *args) {
  if (r->ok && dnnl_primitive_execute(prim, r->stream, n, args) != dnnl_success) r->ok = 0;
}

static int fm__run_end(fm__run *r) {
  if (r->ok && dnnl_stream_wait(r->stream) != dnnl_success) r->ok = 0;
  for (size_t i = 0; i < r->nmem; i++) dnnl_memory_destroy(r->mem[i]);
  if (r->stream) dnnl_stream_destroy(r->stream);
  return r->ok;
}

/* A failed stream creation leaves r->ok 0: every later step is skipped and fm__run_end says so. */
static void fm__run_begin(fm__run *r) {
  memset(r, 0, sizeof *r);
  r->ok = dnnl_stream_create(&r->stream, fm__dnnl_engine, dnnl_stream_default_flags) == dnnl_success;
}

int fm__conv_dnnl_forward(float *out, const float *in, const float *K, const float *b, const fm__conv_dims *g) {
  const fm__dnnl_plan *P = fm__plan_get(g);
  if (!P) return 0;
  char *s = fm__scratch_get(fm__up64(P->w_f_bytes) + P->pad_bytes);
  if (!s) return 0;
  float *wf = (float *)s;
  void *pad = s + fm__up64(P->w_f_bytes);
  int saved = fm__one_thread();
  fm__run r;
  fm__run_begin(&r);
  dnnl_memory_t mk = fm__mem(&r, &P->hwio, K), mwf = fm__mem(&r, &P->w_f, wf), mpad;
  dnnl_memory_t ms = fm__mem(&r, &P->src, in), mb = fm__mem(&r, &P->bias, b), md = fm__mem(&r, &P->dst, out);
  mpad = fm__pad_mem(&r, P->pad_bytes, pad);
  dnnl_exec_arg_t ra[] = {{DNNL_ARG_FROM, mk}, {DNNL_ARG_TO, mwf}, {DNNL_ARG_SCRATCHPAD, mpad}};
  fm__exec(&r, P->r_f, 3, ra);
  dnnl_exec_arg_t fa[] = {{DNNL_ARG_SRC, ms},
                          {DNNL_ARG_WEIGHTS, mwf},
                          {DNNL_ARG_BIAS, mb},
                          {DNNL_ARG_DST, md},
                          {DNNL_ARG_SCRATCHPAD, mpad}};
  fm__exec(&r, P->fwd, 5, fa);
  int ok = fm__run_end(&r);
  fm__restore_threads(saved);
  if (ok) __atomic_fetch_add(&fm__conv_dnnl_calls, 1, __ATOMIC_RELAXED);
  return ok;
}

int fm__conv_dnnl_backward(float *din, float *dK, float *db, const float *dout, const float *in, const float *K,
                           const fm__conv_dims *g) {
  const fm__dnnl_plan *P = fm__plan_get(g);
  if (!P || (din && !P->ok_data)) return 0;
  size_t kbytes = g->KH * g->KW * g->IC * g->OC * sizeof(float), bbytes = g->OC * sizeof(float);
  /* scratch: the gradient in oneDNN's format, the weights in bwd-data's, dK and db of this batch, the scratchpad */
  size_t off_wd = fm__up64(P->dw_bytes), off_k = off_wd + fm__up64(P->w_d_bytes);
  size_t off_b = off_k + fm__up64(kbytes), off_pad = off_b + fm__up64(bbytes);
  char *s = fm__scratch_get(off_pad + P->pad_bytes);
  if (!s) return 0;
  float *dwb = (float *)s, *wd = (float *)(s + off_wd), *dk = (float *)(s + off_k), *dbb = (float *)(s + off_b);
  int saved = fm__one_thread();
  fm__run r;
  fm__run_begin(&r);
  dnnl_memory_t mpad = fm__pad_mem(&r, P->pad_bytes, s + off_pad);
  dnnl_memory_t ms = fm__mem(&r, &P->src, in), mdd = fm__mem(&r, &P->dst, dout);
  dnnl_memory_t mdw = fm__mem(&r, &P->dw, dwb), mdb = fm__mem(&r, &P->bias, dbb), mdk = fm__mem(&r, &P->hwio, dk);
  dnnl_exec_arg_t wa[] = {{DNNL_ARG_SRC, ms},
                          {DNNL_ARG_DIFF_DST, mdd},
                          {DNNL_ARG_DIFF_WEIGHTS, mdw},
                          {DNNL_ARG_DIFF_BIAS, mdb},
                          {DNNL_ARG_SCRATCHPAD, mpad}};
  fm__exec(&r, P->bwd_w, 5, wa);
  dnnl_exec_arg_t rw[] = {{DNNL_ARG_FROM, mdw}, {DNNL_ARG_TO, mdk}, {DNNL_ARG_SCRATCHPAD, mpad}};
  fm__exec(&r, P->r_w, 3, rw);
  if (din) {
    dnnl_memory_t mk = fm__mem(&r, &P->hwio, K), mwd = fm__mem(&r, &P->w_d, wd), mds = fm__mem(&r, &P->src, din);
    dnnl_exec_arg_t rd[] = {{DNNL_ARG_FROM, mk}, {DNNL_ARG_TO, mwd}, {DNNL_ARG_SCRATCHPAD, mpad}};
    fm__exec(&r, P->r_d, 3, rd);
    dnnl_exec_arg_t da[] = {
        {DNNL_ARG_DIFF_DST, mdd}, {DNNL_ARG_WEIGHTS, mwd}, {DNNL_ARG_DIFF_SRC, mds}, {DNNL_ARG_SCRATCHPAD, mpad}};
    fm__exec(&r, P->bwd_d, 4, da);
  }
  int ok = fm__run_end(&r);
  fm__restore_threads(saved);
  if (!ok) return 0;
  size_t nk = kbytes / sizeof(float);
  for (size_t i = 0; i < nk; i++) dK[i] += dk[i];
  for (size_t o = 0; o < g->OC; o++) db[o] += dbb[o];
  __atomic_fetch_add(&fm__conv_dnnl_calls, 1, __ATOMIC_RELAXED);
  return 1;
}

const char *fm_conv_backend(void) {
  pthread_mutex_lock(&fm__dnnl_lock);
  int saved = fm__one_thread();
  fm__dnnl_on();
  fm__restore_threads(saved);
  pthread_mutex_unlock(&fm__dnnl_lock);
  return fm__dnnl_desc;
}

#else /* no oneDNN */

const char *fm_conv_backend(void) { return "im2col + sgemm (built without oneDNN)"; }

#endif
