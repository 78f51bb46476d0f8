/* src/model/conv.c — forward/backward kernels for 2-D convolution (stride 1,
 * TF 'same' or 'valid' padding) and 2x2 max-pooling (stride 2, Keras padding='same'),
 * channels last (NHWC), with shapes documented per function in layers.h.
 *
 * What it does: conv2d as im2col + one cblas_sgemm per chunk of examples.
 * im2col turns a chunk of images (chunk, H, W, IC) into the matrix
 * col (chunk * H * W, KH * KW * IC) whose row (n, h, w) holds the KH x KW x IC
 * patch centred on (h, w), zeros where the patch leaves the image; the column
 * order (kh, kw, ic) is the row order of a Keras kernel (KH, KW, IC, OC), so
 *   forward:  out (rows, OC)   = col @ K          + b
 *   backward: dK (KKC, OC)    += col^T @ dout,    db += column sums of dout
 *             dcol (rows, KKC) = dout @ K^T,      din = col2im(dcol)
 * where col2im adds each patch entry back onto the input pixel it came from.
 * Backward recomputes im2col from the layer input instead of keeping col from
 * the forward pass, and writes dcol over col once dK has been accumulated, so
 * a conv layer needs ONE scratch buffer of min(N, chunk) * H * W * KKC floats
 * per thread, whatever the batch size.
 *
 * 'valid' padding runs the same code with no padding rows/columns and an
 * output of (H - KH + 1, W - KW + 1): an fm__conv_geom carries the output
 * size and the padding before the image, and 'same' keeps exactly the loops
 * and sgemm shapes it had, so its results are unchanged to the bit.
 *
 * The chunk (examples per sgemm) is the largest count whose col fits
 * FM__CONV_COL_BUDGET floats (128 KiB), at least one example. For 28x28
 * images both convs of the EMNIST CNN therefore run one example per sgemm:
 * 784 x 25 @ 25 x 32 and 196 x 800 @ 800 x 64, 1.3 and 20 MFLOP each. That
 * measured fastest (single-threaded OpenBLAS 0.3.21, AVX-512): col is still
 * in L2 when the sgemm packs it, while chunks of 6 or of the whole batch
 * (32) lose 5-10% on conv 2 and 10-20% on conv 1. Small images (8x8 in the
 * tests) get many examples per chunk, so their sgemms are not tiny. The
 * chunk depends only on the layer geometry, so the summation order of dK
 * (over chunks), hence every bit of the result, is independent of the batch
 * size the workspace was sized for.
 *
 * Max-pool keeps, per output, the input index of the window's maximum
 * (first in row-major window order on ties, as TF's CPU kernel); backward
 * scatters the gradient there.
 *
 * What it deliberately does not do: strides other than 1 (conv) and 2 (pool),
 * dilation, other conv paddings, groups, other pool sizes, NCHW, fused
 * activations (ReLU stays in layers.c), threading (OpenMP parallelism is over
 * clients; BLAS runs single-threaded), argument checks, allocation or error
 * reporting — callers (the layer kinds of stack_layers.c) validate the geometry once. Like layers.c it is
 * compiled straight into unit tests, so it uses only the C library and CBLAS. */
#include <stdint.h>
#include <string.h>

#include <cblas.h>

#include "layers.h"

/* Floats of im2col scratch per conv layer and thread (128 KiB) unless one
 * example needs more. A unit test may define it before including this file,
 * to exercise other chunkings. */
#ifndef FM__CONV_COL_BUDGET
#define FM__CONV_COL_BUDGET ((size_t)1 << 15)
#endif

/* The geometry of one conv: input (H, W, IC), kernel KH x KW, output
 * (HO, WO) and the zero rows/columns before the image (ph, pw). 'same' is
 * HO = H, ph = (KH - 1) / 2; 'valid' is HO = H - KH + 1, ph = 0. */
typedef struct fm__conv_geom {
  size_t H, W, IC, KH, KW, HO, WO, ph, pw;
} fm__conv_geom;

static fm__conv_geom fm__geom_same(size_t H, size_t W, size_t IC, size_t KH, size_t KW) {
  fm__conv_geom g = {H, W, IC, KH, KW, H, W, (KH - 1) / 2, (KW - 1) / 2};
  return g;
}

static fm__conv_geom fm__geom_valid(size_t H, size_t W, size_t IC, size_t KH, size_t KW) {
  fm__conv_geom g = {H, W, IC, KH, KW, H - KH + 1, W - KW + 1, 0, 0};
  return g;
}

/* Patch columns [kw0, kw1) of output column w fall inside the image: input
 * column w + kw - pw must lie in [0, W). Always kw0 < kw1 for 'same' (kw = pw
 * is the pixel itself) and kw0 = 0, kw1 = KW for 'valid' (w + KW <= W). */
static void fm__patch_cols(size_t w, const fm__conv_geom *g, size_t *kw0, size_t *kw1) {
  *kw0 = g->pw > w ? g->pw - w : 0;
  size_t end = g->W + g->pw - w; /* > 0 as w < WO <= W + pw */
  *kw1 = end < g->KW ? end : g->KW;
}

/* col (n * HO * WO, KH * KW * IC) = im2col(in (n, H, W, IC)). For a fixed
 * output pixel and kernel row kh the KW * IC patch entries are contiguous in
 * both col and in (channels last), so each is one clipped memcpy. */
static void fm__im2col(float *col, const float *in, size_t n, const fm__conv_geom *g) {
  size_t H = g->H, W = g->W, IC = g->IC, KH = g->KH, KW = g->KW, ph = g->ph, pw = g->pw;
  size_t run = KW * IC, KKC = KH * run;
  for (size_t e = 0; e < n; e++) {
    const float *img = in + e * H * W * IC;
    for (size_t h = 0; h < g->HO; h++)
      for (size_t w = 0; w < g->WO; w++) {
        float *row = col + ((e * g->HO + h) * g->WO + w) * KKC;
        size_t kw0, kw1;
        fm__patch_cols(w, g, &kw0, &kw1);
        for (size_t kh = 0; kh < KH; kh++) {
          float *dst = row + kh * run;
          if (h + kh < ph || h + kh - ph >= H) { /* kernel row above or below the image */
            memset(dst, 0, run * sizeof *dst);
            continue;
          }
          const float *src = img + ((h + kh - ph) * W + (w + kw0 - pw)) * IC;
          if (kw0) memset(dst, 0, kw0 * IC * sizeof *dst);
          memcpy(dst + kw0 * IC, src, (kw1 - kw0) * IC * sizeof *dst);
          if (kw1 < KW) memset(dst + kw1 * IC, 0, (KW - kw1) * IC * sizeof *dst);
        }
      }
  }
}

/* din (n, H, W, IC) = col2im(col (n * HO * WO, KH * KW * IC)): the adjoint of
 * fm__im2col, every in-image patch entry added onto its source pixel. */
static void fm__col2im(float *din, const float *col, size_t n, const fm__conv_geom *g) {
  size_t H = g->H, W = g->W, IC = g->IC, KH = g->KH, KW = g->KW, ph = g->ph, pw = g->pw;
  size_t run = KW * IC, KKC = KH * run;
  memset(din, 0, n * H * W * IC * sizeof *din);
  for (size_t e = 0; e < n; e++) {
    float *img = din + e * H * W * IC;
    for (size_t h = 0; h < g->HO; h++)
      for (size_t w = 0; w < g->WO; w++) {
        const float *row = col + ((e * g->HO + h) * g->WO + w) * KKC;
        size_t kw0, kw1;
        fm__patch_cols(w, g, &kw0, &kw1);
        for (size_t kh = 0; kh < KH; kh++) {
          if (h + kh < ph || h + kh - ph >= H) continue;
          float *dst = img + ((h + kh - ph) * W + (w + kw0 - pw)) * IC;
          const float *src = row + kh * run + kw0 * IC;
          size_t len = (kw1 - kw0) * IC;
          for (size_t i = 0; i < len; i++) dst[i] += src[i];
        }
      }
  }
}

/* Examples per im2col chunk: the largest count whose col fits the budget. */
static size_t fm__geom_chunk(const fm__conv_geom *g) {
  size_t per = g->HO * g->WO * g->KH * g->KW * g->IC; /* col floats per example */
  size_t chunk = per ? FM__CONV_COL_BUDGET / per : 1;
  return chunk ? chunk : 1;
}

static void fm__conv_forward(float *out, float *col, const float *in, const float *K, const float *b, size_t N,
                             const fm__conv_geom *g, size_t OC) {
#ifdef FM_HAVE_DNNL
  fm__conv_dims d = {N, g->H, g->W, g->IC, OC, g->KH, g->KW, g->HO, g->WO, g->ph, g->pw};
  if (fm__conv_dnnl_forward(out, in, K, b, &d)) return;
#endif
  size_t HWI = g->H * g->W * g->IC, HWO = g->HO * g->WO, KKC = g->KH * g->KW * g->IC, chunk = fm__geom_chunk(g);
  /* out[n, h, w, :] = b */
  for (size_t r = 0; r < N * HWO; r++) memcpy(out + r * OC, b, OC * sizeof *out);
  for (size_t n0 = 0; n0 < N; n0 += chunk) {
    size_t cn = N - n0 < chunk ? N - n0 : chunk, rows = cn * HWO;
    fm__im2col(col, in + n0 * HWI, cn, g);
    /* out (rows, OC) += col (rows, KKC) @ K (KKC, OC) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)rows, (blasint)OC, (blasint)KKC, 1.0f, col,
                (blasint)KKC, K, (blasint)OC, 1.0f, out + n0 * HWO * OC, (blasint)OC);
  }
}

static void fm__conv_backward(float *din, float *dK, float *db, float *col, const float *dout, const float *in,
                              const float *K, size_t N, const fm__conv_geom *g, size_t OC) {
#ifdef FM_HAVE_DNNL
  fm__conv_dims d = {N, g->H, g->W, g->IC, OC, g->KH, g->KW, g->HO, g->WO, g->ph, g->pw};
  if (fm__conv_dnnl_backward(din, dK, db, dout, in, K, &d)) return;
#endif
  size_t HWI = g->H * g->W * g->IC, HWO = g->HO * g->WO, KKC = g->KH * g->KW * g->IC, chunk = fm__geom_chunk(g);
  /* db (OC) += column sums of dout (N * HO * WO, OC) */
  for (size_t r = 0; r < N * HWO; r++) {
    const float *row = dout + r * OC;
    for (size_t o = 0; o < OC; o++) db[o] += row[o];
  }
  for (size_t n0 = 0; n0 < N; n0 += chunk) {
    size_t cn = N - n0 < chunk ? N - n0 : chunk, rows = cn * HWO;
    const float *dc = dout + n0 * HWO * OC; /* (rows, OC) */
    fm__im2col(col, in + n0 * HWI, cn, g);
    /* dK (KKC, OC) += col^T (KKC, rows) @ dout (rows, OC) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)KKC, (blasint)OC, (blasint)rows, 1.0f, col,
                (blasint)KKC, dc, (blasint)OC, 1.0f, dK, (blasint)OC);
    if (!din) continue;
    /* dcol (rows, KKC) = dout (rows, OC) @ K^T (OC, KKC), over col */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)rows, (blasint)KKC, (blasint)OC, 1.0f, dc,
                (blasint)OC, K, (blasint)OC, 0.0f, col, (blasint)KKC);
    fm__col2im(din + n0 * HWI, col, cn, g);
  }
}

size_t fm__conv2d_chunk(size_t H, size_t W, size_t IC, size_t KH, size_t KW) {
  fm__conv_geom g = fm__geom_same(H, W, IC, KH, KW);
  return fm__geom_chunk(&g);
}

size_t fm__conv2d_col_floats(size_t N, size_t H, size_t W, size_t IC, size_t KH, size_t KW) {
  size_t chunk = fm__conv2d_chunk(H, W, IC, KH, KW);
  return (N < chunk ? N : chunk) * H * W * KH * KW * IC;
}

void fm__conv2d_forward(float *out, float *col, const float *in, const float *K, const float *b, size_t N, size_t H,
                        size_t W, size_t IC, size_t KH, size_t KW, size_t OC) {
  fm__conv_geom g = fm__geom_same(H, W, IC, KH, KW);
  fm__conv_forward(out, col, in, K, b, N, &g, OC);
}

void fm__conv2d_backward(float *din, float *dK, float *db, float *col, const float *dout, const float *in,
                         const float *K, size_t N, size_t H, size_t W, size_t IC, size_t KH, size_t KW, size_t OC) {
  fm__conv_geom g = fm__geom_same(H, W, IC, KH, KW);
  fm__conv_backward(din, dK, db, col, dout, in, K, N, &g, OC);
}

size_t fm__conv2d_valid_chunk(size_t H, size_t W, size_t IC, size_t KH, size_t KW) {
  fm__conv_geom g = fm__geom_valid(H, W, IC, KH, KW);
  return fm__geom_chunk(&g);
}

size_t fm__conv2d_valid_col_floats(size_t N, size_t H, size_t W, size_t IC, size_t KH, size_t KW) {
  size_t chunk = fm__conv2d_valid_chunk(H, W, IC, KH, KW);
  return (N < chunk ? N : chunk) * (H - KH + 1) * (W - KW + 1) * KH * KW * IC;
}

void fm__conv2d_valid_forward(float *out, float *col, const float *in, const float *K, const float *b, size_t N,
                              size_t H, size_t W, size_t IC, size_t KH, size_t KW, size_t OC) {
  fm__conv_geom g = fm__geom_valid(H, W, IC, KH, KW);
  fm__conv_forward(out, col, in, K, b, N, &g, OC);
}

void fm__conv2d_valid_backward(float *din, float *dK, float *db, float *col, const float *dout, const float *in,
                               const float *K, size_t N, size_t H, size_t W, size_t IC, size_t KH, size_t KW,
                               size_t OC) {
  fm__conv_geom g = fm__geom_valid(H, W, IC, KH, KW);
  fm__conv_backward(din, dK, db, col, dout, in, K, N, &g, OC);
}

/* One window: out (C), arg (C) <- max over the np pixels whose offsets (in
 * floats, within the example) are pix[0..np), the first maximum on ties.
 * Locals, 32-bit indices (arg's type; the caller guarantees they fit) and
 * selects only, so the loop over channels vectorizes on plain SSE2. */
static void fm__pool_window(float *restrict out, int32_t *restrict arg, const float *restrict img, const int32_t *pix,
                            size_t np, size_t C) {
  const float *r0 = img + pix[0];
  if (np == 4) { /* the common, full window */
    const float *r1 = img + pix[1], *r2 = img + pix[2], *r3 = img + pix[3];
    const int32_t p0 = pix[0], p1 = pix[1], p2 = pix[2], p3 = pix[3];
    for (size_t c = 0; c < C; c++) {
      float best = r0[c], v1 = r1[c], v2 = r2[c], v3 = r3[c];
      int32_t bi = p0;
      bi = v1 > best ? p1 : bi;
      best = v1 > best ? v1 : best;
      bi = v2 > best ? p2 : bi;
      best = v2 > best ? v2 : best;
      bi = v3 > best ? p3 : bi;
      best = v3 > best ? v3 : best;
      out[c] = best;
      arg[c] = bi + (int32_t)c;
    }
    return;
  }
  for (size_t c = 0; c < C; c++) { /* a window cut by the image's last row or column */
    float best = r0[c];
    int32_t bi = pix[0];
    for (size_t k = 1; k < np; k++) {
      float v = img[pix[k] + (int32_t)c];
      bi = v > best ? pix[k] : bi;
      best = v > best ? v : best;
    }
    out[c] = best;
    arg[c] = bi + (int32_t)c;
  }
}

void fm__maxpool2x2_forward(float *out, int32_t *arg, const float *in, size_t N, size_t H, size_t W, size_t C) {
  size_t HO = (H + 1) / 2, WO = (W + 1) / 2;
  for (size_t n = 0; n < N; n++) {
    const float *img = in + n * H * W * C;
    for (size_t ho = 0; ho < HO; ho++)
      for (size_t wo = 0; wo < WO; wo++) {
        /* the window's pixels in row-major order; 'same' padding only ever
         * cuts the last row (odd H) or column (odd W) */
        int32_t pix[4] = {0, 0, 0, 0};
        size_t np = 0;
        for (size_t h = 2 * ho; h < 2 * ho + 2 && h < H; h++)
          for (size_t w = 2 * wo; w < 2 * wo + 2 && w < W; w++) pix[np++] = (int32_t)((h * W + w) * C);
        size_t o = ((n * HO + ho) * WO + wo) * C;
        fm__pool_window(out + o, arg + o, img, pix, np, C);
      }
  }
}

void fm__maxpool2x2_backward(float *din, const float *dout, const int32_t *arg, size_t N, size_t H, size_t W,
                             size_t C) {
  size_t in_per = H * W * C, out_per = ((H + 1) / 2) * ((W + 1) / 2) * C;
  memset(din, 0, N * in_per * sizeof *din);
  for (size_t n = 0; n < N; n++) {
    float *d = din + n * in_per;
    const float *g = dout + n * out_per;
    const int32_t *a = arg + n * out_per;
    for (size_t i = 0; i < out_per; i++) d[a[i]] += g[i];
  }
}
