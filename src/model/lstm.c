/* src/model/lstm.c — Keras's LSTM layer as a forward/backward pair, and the
 * orthogonal initialiser of its recurrent kernel; semantics in seq.h.
 *
 * What it does: the batch (N, T, IN) stays row-major, position (n, t) being
 * row n * T + t of every (N * T, ·) buffer. Step t's rows are then every T-th
 * row, which sgemm reads and writes through its leading dimension (T * 4U or
 * T * U), so no buffer is ever transposed to time-major:
 *   forward:  z (N*T, 4U) = b; z += x (N*T, IN) @ Wx          ONE sgemm
 *             per step t: z_t (N, 4U) += h_{t-1} (N, U) @ Wh   one product
 *             (fm__rec_gemm: a kernel of its own up to 16 rows, else sgemm)
 *             then one fused pass over the N rows of 4U contiguous gates
 *             (activations in place, c_t, tanh(c_t), h_t)
 *   backward: per step t from T - 1 down: one fused pass giving dz_t and
 *             dc_{t-1}, then dh_{t-1} (N, U) = dz_t @ Wh^T     one product
 *             after the loop, over all N * T positions at once:
 *             dWx += x^T dz, dWh += h_prev^T dz, dx = dz Wx^T  three sgemms
 * The cache keeps h_{t-1} and c_{t-1} as they ENTER each step (h_prev,
 * c_prev; zeros at t = 0), so dWh is one sgemm with h_prev as its
 * (N * T, U) left operand. A masked step skips its gates (its dz is 0) and
 * copies the state through.
 *
 * The orthogonal initialiser runs LAPACK's QR (dgeqrf_, dorgqr_), which
 * OpenBLAS ships with its BLAS; the prototypes are declared here, with
 * OpenBLAS's integer type.
 *
 * What it deliberately does not do: bidirectional or stateful LSTMs,
 * dropout inside the cell (recurrent_dropout), peepholes, go_backwards,
 * initial states other than zero, argument checks, allocation or threading
 * (BLAS runs single-threaded; OpenMP parallelism is over clients). Like
 * layers.c it is compiled straight into unit tests. */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "fedmpi/rng.h"
#include "layers.h"
#include "seq.h"

void dgeqrf_(const blasint *m, const blasint *n, double *a, const blasint *lda, double *tau, double *work,
             const blasint *lwork, blasint *info);
void dorgqr_(const blasint *m, const blasint *n, const blasint *k, double *a, const blasint *lda, const double *tau,
             double *work, const blasint *lwork, blasint *info);

/* The cache's views (see fm__lstm_cache_floats). */
typedef struct fm__lstm_views {
  float *gates;  /* (N, T, 4U) i, f, g, o after their activations */
  float *h_prev; /* (N, T, U) h_{t-1} entering step t */
  float *c_prev; /* (N, T, U) c_{t-1} entering step t */
  float *tanh_c; /* (N, T, U) tanh(c_t) (unset at masked steps) */
  float *h_last; /* (N, U) the final h */
  float *c_last; /* (N, U) the final c */
} fm__lstm_views;

static fm__lstm_views fm__lstm_view(float *cache, size_t N, size_t T, size_t U) {
  fm__lstm_views v;
  size_t nt = N * T;
  v.gates = cache;
  v.h_prev = v.gates + nt * 4 * U;
  v.c_prev = v.h_prev + nt * U;
  v.tanh_c = v.c_prev + nt * U;
  v.h_last = v.tanh_c + nt * U;
  v.c_last = v.h_last + N * U;
  return v;
}

size_t fm__lstm_cache_floats(size_t N, size_t T, size_t U) { return N * T * 7 * U + 2 * N * U; }

size_t fm__lstm_scratch_floats(size_t N, size_t T, size_t U) { return N * T * 4 * U + 2 * N * U + 4 * U * U; }

/* ---- the recurrent product for small batches ------------------------------------
 * C (N, M) += A (N, K) @ B (K, M), B row-major and contiguous, N small (a
 * client's batch: 4 for Shakespeare, 16 for Stack Overflow). sgemm packs B
 * on every call, and with N = 4 rows that copy of the 1 MB recurrent kernel
 * took a third of a Shakespeare training step (perf, OpenBLAS 0.3.21,
 * Cooperlake); here B is streamed once per 4 rows and never copied.
 *
 * Every C element is C + A[r][0] B[0][j] + A[r][1] B[1][j] + ..., added in
 * order of k, each product rounded then added (ISO C's default
 * -ffp-contract=off: no fused multiply-add), so the result is the same
 * bits whichever of the clones below runs, on any x86 CPU: they differ only
 * in how many lanes they add at once. The clones are GCC's function
 * multi-versioning, chosen once at load time by the CPU's features. */
typedef float fm__v16 __attribute__((vector_size(64)));

/* unaligned loads and stores as macros: a vector passed by value would change the ABI between clones */
#define FM__LD16(v, p) memcpy(&(v), (p), sizeof(fm__v16))
#define FM__ST16(p, v) memcpy((p), &(v), sizeof(fm__v16))

/* FM__CLONES: layers.h */

FM__CLONES
static void fm__gemm_small(float *C, size_t ldc, const float *A, size_t lda, const float *B, size_t N, size_t K,
                           size_t M) {
  size_t r = 0;
  for (; r + 4 <= N; r += 4) { /* 4 rows at once: each B row read once for all four */
    const float *a0 = A + r * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
    float *c0 = C + r * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
    size_t j = 0;
    for (; j + 32 <= M; j += 32) {
      fm__v16 x0, y0, x1, y1, x2, y2, x3, y3, p, q;
      FM__LD16(x0, c0 + j), FM__LD16(y0, c0 + j + 16), FM__LD16(x1, c1 + j), FM__LD16(y1, c1 + j + 16);
      FM__LD16(x2, c2 + j), FM__LD16(y2, c2 + j + 16), FM__LD16(x3, c3 + j), FM__LD16(y3, c3 + j + 16);
      for (size_t k = 0; k < K; k++) {
        const float *b = B + k * M + j;
        FM__LD16(p, b), FM__LD16(q, b + 16);
        x0 += a0[k] * p, y0 += a0[k] * q;
        x1 += a1[k] * p, y1 += a1[k] * q;
        x2 += a2[k] * p, y2 += a2[k] * q;
        x3 += a3[k] * p, y3 += a3[k] * q;
      }
      FM__ST16(c0 + j, x0), FM__ST16(c0 + j + 16, y0), FM__ST16(c1 + j, x1), FM__ST16(c1 + j + 16, y1);
      FM__ST16(c2 + j, x2), FM__ST16(c2 + j + 16, y2), FM__ST16(c3 + j, x3), FM__ST16(c3 + j + 16, y3);
    }
    for (; j < M; j++) { /* a tail narrower than 32 columns */
      float s0 = c0[j], s1 = c1[j], s2 = c2[j], s3 = c3[j];
      for (size_t k = 0; k < K; k++) {
        float bk = B[k * M + j];
        s0 += a0[k] * bk, s1 += a1[k] * bk, s2 += a2[k] * bk, s3 += a3[k] * bk;
      }
      c0[j] = s0, c1[j] = s1, c2[j] = s2, c3[j] = s3;
    }
  }
  for (; r < N; r++) { /* the last 1 to 3 rows, one at a time, the same order of k */
    const float *a = A + r * lda;
    float *c = C + r * ldc;
    size_t j = 0;
    for (; j + 32 <= M; j += 32) {
      fm__v16 x, y, p, q;
      FM__LD16(x, c + j), FM__LD16(y, c + j + 16);
      for (size_t k = 0; k < K; k++) {
        FM__LD16(p, B + k * M + j), FM__LD16(q, B + k * M + j + 16);
        x += a[k] * p, y += a[k] * q;
      }
      FM__ST16(c + j, x), FM__ST16(c + j + 16, y);
    }
    for (; j < M; j++) {
      float sum = c[j];
      for (size_t k = 0; k < K; k++) sum += a[k] * B[k * M + j];
      c[j] = sum;
    }
  }
}

/* Rows up to which the small kernel beats sgemm (above it sgemm's packing pays off). */
#define FM__SMALL_ROWS 16

/* C (N, M) += A (N, K) @ B (K, M): the small kernel for a client's batch, sgemm beyond. */
static void fm__rec_gemm(float *C, size_t ldc, const float *A, size_t lda, const float *B, size_t N, size_t K,
                         size_t M) {
  if (N <= FM__SMALL_ROWS) {
    fm__gemm_small(C, ldc, A, lda, B, N, K, M);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)N, (blasint)M, (blasint)K, 1.0f, A, (blasint)lda, B,
              (blasint)M, 1.0f, C, (blasint)ldc);
}

static inline float fm__sigm(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

/* One row of step t: z (4U) -> gates in place; c_{t-1} (cp) -> h_t (hn), c_t (cn), tanh(c_t) (tc). */
static void fm__lstm_cell(float *restrict z, float *restrict hn, float *restrict cn, float *restrict tc,
                          const float *restrict cp, size_t U) {
  float *zi = z, *zf = z + U, *zg = z + 2 * U, *zo = z + 3 * U;
  for (size_t u = 0; u < U; u++) {
    float i = fm__sigm(zi[u]), f = fm__sigm(zf[u]), g = tanhf(zg[u]), o = fm__sigm(zo[u]);
    zi[u] = i, zf[u] = f, zg[u] = g, zo[u] = o;
    float c = f * cp[u] + i * g, th = tanhf(c);
    cn[u] = c;
    tc[u] = th;
    hn[u] = o * th;
  }
}

void fm__lstm_forward(float *out, float *cache, const float *x, const uint8_t *mask, const float *Wx, const float *Wh,
                      const float *b, size_t N, size_t T, size_t IN, size_t U, int return_sequences) {
  fm__lstm_views v = fm__lstm_view(cache, N, T, U);
  size_t G = 4 * U, NT = N * T;
  /* z (N*T, 4U) = b, then += x @ Wx for all steps at once */
  for (size_t r = 0; r < NT; r++) memcpy(v.gates + r * G, b, G * sizeof *b);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)NT, (blasint)G, (blasint)IN, 1.0f, x, (blasint)IN,
              Wx, (blasint)G, 1.0f, v.gates, (blasint)G);
  for (size_t n = 0; n < N; n++) { /* zero initial state */
    memset(v.h_prev + n * T * U, 0, U * sizeof *v.h_prev);
    memset(v.c_prev + n * T * U, 0, U * sizeof *v.c_prev);
  }
  for (size_t t = 0; t < T; t++) {
    /* z_t (N, 4U) += h_{t-1} (N, U) @ Wh (U, 4U); rows T apart. h_{-1} = 0. */
    if (t > 0) fm__rec_gemm(v.gates + t * G, T * G, v.h_prev + t * U, T * U, Wh, N, U, G);
    for (size_t n = 0; n < N; n++) {
      size_t r = n * T + t;
      const float *hp = v.h_prev + r * U, *cp = v.c_prev + r * U;
      float *hn = t + 1 < T ? v.h_prev + (r + 1) * U : v.h_last + n * U;
      float *cn = t + 1 < T ? v.c_prev + (r + 1) * U : v.c_last + n * U;
      if (mask && !mask[r]) { /* carry the state through */
        memcpy(hn, hp, U * sizeof *hn);
        memcpy(cn, cp, U * sizeof *cn);
      } else {
        fm__lstm_cell(v.gates + r * G, hn, cn, v.tanh_c + r * U, cp, U);
      }
      if (return_sequences) memcpy(out + r * U, hn, U * sizeof *out);
    }
  }
  if (!return_sequences) memcpy(out, v.h_last, N * U * sizeof *out);
}

/* One unmasked row of step t: dh (U) the gradient reaching h_t, dc (U) the
 * one reaching c_t (in), becoming dc_{t-1} (out); dz (4U) <- dz_t. */
static void fm__lstm_cell_backward(float *restrict dz, float *restrict dc, const float *restrict dh,
                                   const float *restrict gates, const float *restrict cp, const float *restrict tc,
                                   size_t U) {
  const float *gi = gates, *gf = gates + U, *gg = gates + 2 * U, *go = gates + 3 * U;
  for (size_t u = 0; u < U; u++) {
    float i = gi[u], f = gf[u], g = gg[u], o = go[u], th = tc[u], h = dh[u];
    float c = dc[u] + h * o * (1.0f - th * th);
    dz[u] = c * g * i * (1.0f - i);
    dz[U + u] = c * cp[u] * f * (1.0f - f);
    dz[2 * U + u] = c * i * (1.0f - g * g);
    dz[3 * U + u] = h * th * o * (1.0f - o);
    dc[u] = c * f;
  }
}

void fm__lstm_backward(float *dx, float *dWx, float *dWh, float *db, float *scratch, const float *dout,
                       const float *cache, const float *x, const uint8_t *mask, const float *Wx, const float *Wh,
                       size_t N, size_t T, size_t IN, size_t U, int return_sequences) {
  fm__lstm_views v = fm__lstm_view((float *)cache, N, T, U); /* read only */
  size_t G = 4 * U, NT = N * T;
  float *dz = scratch, *dh = dz + NT * G, *dc = dh + N * U, *WhT = dc + N * U; /* (N*T, 4U), (N, U), (N, U), (4U, U) */
  /* Wh^T once, so each step's sgemm reads a plain (4U, U) operand: with
   * N = 4 rows, dz_t @ Wh^T through CblasTrans measured 3x slower
   * (OpenBLAS 0.3.21, one thread) than the copy plus CblasNoTrans */
  for (size_t j = 0; j < U; j++)
    for (size_t k = 0; k < G; k++) WhT[k * U + j] = Wh[j * G + k];
  if (return_sequences)
    memset(dh, 0, N * U * sizeof *dh);
  else
    memcpy(dh, dout, N * U * sizeof *dh); /* the last output is the final h */
  memset(dc, 0, N * U * sizeof *dc);
  for (size_t t = T; t-- > 0;) {
    for (size_t n = 0; n < N; n++) {
      size_t r = n * T + t;
      float *dhn = dh + n * U, *dzr = dz + r * G;
      if (return_sequences) /* out[n, t] is h_t, also at a masked step (the carried h) */
        for (size_t u = 0; u < U; u++) dhn[u] += dout[r * U + u];
      if (mask && !mask[r]) { /* h_t = h_{t-1}, c_t = c_{t-1}: dh and dc pass through */
        memset(dzr, 0, G * sizeof *dzr);
        continue;
      }
      fm__lstm_cell_backward(dzr, dc + n * U, dhn, v.gates + r * G, v.c_prev + r * U, v.tanh_c + r * U, U);
      memset(dhn, 0, U * sizeof *dhn); /* h_{t-1} gets only dz_t Wh^T, added below */
    }
    /* dh_{t-1} (N, U) += dz_t (N, 4U) @ Wh^T (4U, U); masked rows add dz = 0 */
    if (t > 0) fm__rec_gemm(dh, U, dz + t * G, T * G, WhT, N, G, U);
  }
  /* dWx (IN, 4U) += x^T (IN, N*T) @ dz (N*T, 4U) */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)IN, (blasint)G, (blasint)NT, 1.0f, x, (blasint)IN, dz,
              (blasint)G, 1.0f, dWx, (blasint)G);
  /* dWh (U, 4U) += h_prev^T (U, N*T) @ dz (N*T, 4U) */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)U, (blasint)G, (blasint)NT, 1.0f, v.h_prev,
              (blasint)U, dz, (blasint)G, 1.0f, dWh, (blasint)G);
  for (size_t r = 0; r < NT; r++) {
    const float *row = dz + r * G;
    for (size_t k = 0; k < G; k++) db[k] += row[k];
  }
  /* dx (N*T, IN) = dz (N*T, 4U) @ Wx^T (4U, IN) */
  if (dx)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)NT, (blasint)IN, (blasint)G, 1.0f, dz, (blasint)G,
                Wx, (blasint)G, 0.0f, dx, (blasint)IN);
}

void fm__lstm_bias_init(float *b, size_t U) {
  memset(b, 0, 4 * U * sizeof *b);
  for (size_t u = U; u < 2 * U; u++) b[u] = 1.0f;
}

/* LAPACK's workspace per column: a generous block size, so dgeqrf_/dorgqr_
 * run blocked without a workspace query. */
#define FM__QR_NB 64

size_t fm__orthogonal_work_doubles(size_t rows, size_t cols) {
  size_t m = rows > cols ? rows : cols, n = rows > cols ? cols : rows;
  return m * n + 2 * n + FM__QR_NB * n; /* A, tau, signs, LAPACK work */
}

int fm__orthogonal_init(float *W, double *work, size_t rows, size_t cols, uint64_t seed, size_t tensor_index) {
  size_t m = rows > cols ? rows : cols, n = rows > cols ? cols : rows;
  double *A = work, *tau = A + m * n, *sign = tau + n, *lw = sign + n; /* A (m, n) column-major */
  blasint M = (blasint)m, Nn = (blasint)n, lwork = (blasint)(FM__QR_NB * n), info = 0;
  fm_rng r;
  fm_rng_init(&r, seed, 0, (uint64_t)tensor_index, FM_RNG_INIT);
  /* the (m, n) normal matrix, drawn in row-major order as Keras draws it */
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) A[i + j * m] = fm_rng_normal(&r);
  dgeqrf_(&M, &Nn, A, &M, tau, lw, &lwork, &info);
  if (info) return (int)info;
  for (size_t j = 0; j < n; j++) sign[j] = A[j + j * m] < 0.0 ? -1.0 : 1.0; /* sign(diag R), 0 counted as + */
  dorgqr_(&M, &Nn, &Nn, A, &M, tau, lw, &lwork, &info);
  if (info) return (int)info;
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < m; i++) A[i + j * m] *= sign[j];
  if (rows >= cols) { /* W (m, n) row-major = Q */
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j < n; j++) W[i * n + j] = (float)A[i + j * m];
  } else { /* W (n, m) row-major = Q^T: Q's column-major storage as it is */
    for (size_t k = 0; k < m * n; k++) W[k] = (float)A[k];
  }
  return 0;
}
