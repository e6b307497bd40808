/*
 * SIMD kernels for training small convolutional nets on the tfjs wasm
 * backend. This module shares the backend's linear memory (it imports it):
 * every pointer is an offset into the backend's heap, scratch space comes
 * from the backend's malloc, and the module has no data segment and no
 * shadow stack, so it never writes anything the caller did not hand it.
 *
 * Convolutions are written as sums over filter taps. For an NHWC input `x`
 * (already zero-padded when the convolution pads) and output position
 * p = (b, oh, ow), tap k = (kh, kw, c) reads x[base(p) + koff[k]] with
 * base(p) = ((b·XH + oh·sh)·XW + ow·sw)·C and koff[k] = (kh·dh·XW + kw·dw)·C + c.
 * The caller computes base(p) for all p and koff for all k (int32 arrays).
 *
 * Built by build.sh (clang, wasm32, SIMD128 + relaxed SIMD for the fused
 * multiply-add).
 */
#include <wasm_simd128.h>

typedef float f32;

static inline v128_t madd(v128_t a, v128_t b, v128_t c) {
#ifdef RELAXED
  return __builtin_wasm_relaxed_madd_f32x4(a, b, c);
#else
  return wasm_f32x4_add(wasm_f32x4_mul(a, b), c);
#endif
}

/*
 * One row of a 4 × 8 tile: (c0, c1) += a (one float in every lane) times the
 * 8 floats (v0, v1). The tiled kernels below take four of these a step, one
 * per row of the tile.
 */
static inline void madd_row(v128_t* c0, v128_t* c1, v128_t a, v128_t v0, v128_t v1) {
  *c0 = madd(a, v0, *c0);
  *c1 = madd(a, v1, *c1);
}

/* Loads n floats (n < 4 reads only those) into the low lanes, zeros above. */
static inline v128_t load_n(const f32* p, int n) {
  if (n >= 4) return wasm_v128_load(p);
  if (n == 3) return wasm_f32x4_make(p[0], p[1], p[2], 0.0f);
  if (n == 2) return wasm_v128_load64_zero(p);
  if (n == 1) return wasm_v128_load32_zero(p);
  return wasm_f32x4_splat(0.0f);
}

/* Stores the low n lanes of v (n >= 4: all four). */
static inline void store_n(f32* p, v128_t v, int n) {
  if (n >= 4) {
    wasm_v128_store(p, v);
  } else if (n == 3) {
    wasm_v128_store64_lane(p, v, 0);
    wasm_v128_store32_lane(p + 2, v, 2);
  } else if (n == 2) {
    wasm_v128_store64_lane(p, v, 0);
  } else if (n == 1) {
    wasm_v128_store32_lane(p, v, 0);
  }
}

/*
 * Adds the first `rows` rows of a 4 × 8 tile of sums (c00 c01 | c10 c11 |
 * c20 c21 | c30 c31) into out, whose rows lie O floats apart, n floats of
 * each (n < 8 at the last channels).
 */
static inline __attribute__((always_inline)) void add_tile(f32* out, int O, int n, int rows,
                                                           v128_t c00, v128_t c01, v128_t c10,
                                                           v128_t c11, v128_t c20, v128_t c21,
                                                           v128_t c30, v128_t c31) {
#define ACC(ptr, v, m) store_n(ptr, wasm_f32x4_add(load_n(ptr, m), v), m)
  ACC(out, c00, n);
  ACC(out + 4, c01, n - 4);
  if (rows > 1) {
    ACC(out + O, c10, n);
    ACC(out + O + 4, c11, n - 4);
  }
  if (rows > 2) {
    ACC(out + 2 * O, c20, n);
    ACC(out + 2 * O + 4, c21, n - 4);
  }
  if (rows > 3) {
    ACC(out + 3 * O, c30, n);
    ACC(out + 3 * O + 4, c31, n - 4);
  }
#undef ACC
}

/* A fused convolution's activation (act: 0 none, 1 relu, 2 relu6; NaN stays NaN, -0 becomes 0 as Math.max(0, x)). */
static inline v128_t activate(v128_t v, int act) {
  if (act == 0) return v;
  v = wasm_f32x4_max(wasm_f32x4_splat(0.0f), v);
  return act == 2 ? wasm_f32x4_min(v, wasm_f32x4_splat(6.0f)) : v;
}

/*
 * Forward convolution over taps, for output rows [p0, p1):
 *   y[p·O + o] = act(bias[o] + Σ_k x[base[p] + koff[k]] · w[k·OP + o])
 * w is the filter packed as K rows of OP floats (OP = O rounded up to 8, the
 * padding zero). bias (O floats) may be 0 (none); act as activate() takes it.
 * Tiles of 4 rows × 8 output channels (with more rows V8 spills accumulators).
 */
void conv_taps(const f32* x, const int* base, const int* koff, int K, const f32* w, int O,
               int OP, f32* y, int p0, int p1, const f32* bias, int act) {
  int p = p0;
  for (; p + 4 <= p1; p += 4) {
    const f32* x0 = x + base[p];
    const f32* x1 = x + base[p + 1];
    const f32* x2 = x + base[p + 2];
    const f32* x3 = x + base[p + 3];
    for (int o0 = 0; o0 < O; o0 += 8) {
      const int n = O - o0;
      const v128_t b0 = bias ? load_n(bias + o0, n) : wasm_f32x4_splat(0.0f);
      const v128_t b1 = bias ? load_n(bias + o0 + 4, n - 4) : b0;
      v128_t c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1, c30 = b0, c31 = b1;
      const f32* wk = w + o0;
      for (int k = 0; k < K; k++, wk += OP) {
        const int off = koff[k];
        const v128_t w0 = wasm_v128_load(wk), w1 = wasm_v128_load(wk + 4);
        madd_row(&c00, &c01, wasm_v128_load32_splat(x0 + off), w0, w1);
        madd_row(&c10, &c11, wasm_v128_load32_splat(x1 + off), w0, w1);
        madd_row(&c20, &c21, wasm_v128_load32_splat(x2 + off), w0, w1);
        madd_row(&c30, &c31, wasm_v128_load32_splat(x3 + off), w0, w1);
      }
      f32* yp = y + p * O + o0;
      store_n(yp, activate(c00, act), n);
      store_n(yp + 4, activate(c01, act), n - 4);
      yp += O;
      store_n(yp, activate(c10, act), n);
      store_n(yp + 4, activate(c11, act), n - 4);
      yp += O;
      store_n(yp, activate(c20, act), n);
      store_n(yp + 4, activate(c21, act), n - 4);
      yp += O;
      store_n(yp, activate(c30, act), n);
      store_n(yp + 4, activate(c31, act), n - 4);
    }
  }
  for (; p < p1; p++) {
    const f32* x0 = x + base[p];
    for (int o0 = 0; o0 < O; o0 += 8) {
      const int n = O - o0;
      v128_t c00 = bias ? load_n(bias + o0, n) : wasm_f32x4_splat(0.0f);
      v128_t c01 = bias ? load_n(bias + o0 + 4, n - 4) : wasm_f32x4_splat(0.0f);
      const f32* wk = w + o0;
      for (int k = 0; k < K; k++, wk += OP) {
        const v128_t a = wasm_v128_load32_splat(x0 + koff[k]);
        c00 = madd(a, wasm_v128_load(wk), c00);
        c01 = madd(a, wasm_v128_load(wk + 4), c01);
      }
      store_n(y + p * O + o0, activate(c00, act), n);
      store_n(y + p * O + o0 + 4, activate(c01, act), n - 4);
    }
  }
}

/* Stores a row's 16 sums (c0..c3) after act: all 16, or the first n when n < 16. */
static inline __attribute__((always_inline)) void store16(f32* p, int n, int act, v128_t c0,
                                                          v128_t c1, v128_t c2, v128_t c3) {
  if (n >= 16) {
    wasm_v128_store(p, activate(c0, act));
    wasm_v128_store(p + 4, activate(c1, act));
    wasm_v128_store(p + 8, activate(c2, act));
    wasm_v128_store(p + 12, activate(c3, act));
  } else {
    store_n(p, activate(c0, act), n);
    store_n(p + 4, activate(c1, act), n - 4);
    store_n(p + 8, activate(c2, act), n - 8);
    store_n(p + 12, activate(c3, act), n - 12);
  }
}

/*
 * A matrix product over contiguous rows (a 1×1, stride-1, unpadded
 * convolution, or its input gradient), for rows [p0, p1):
 *   y[p·O + o] = act(bias[o] + Σ_k x[p·K + k] · w[k·OP + o])
 * w is packed as K rows of OP floats, OP = O rounded up to 16 (the padding
 * zero); bias (O floats) may be 0. Tiles of 2 rows × 16 channels: per k,
 * four weight vectors and two broadcast inputs feed eight multiply-adds
 * (conv_taps' 4 × 8 tiles load four broadcasts for eight, and look each
 * tap up in koff). Reads exactly the rows' K floats; writes exactly O
 * floats per row.
 */
void pw_gemm(const f32* x, int K, const f32* w, int O, int OP, f32* y, int p0, int p1,
             const f32* bias, int act) {
  for (int p = p0; p < p1; p += 2) {
    const f32* x0 = x + p * K;
    const int two = p + 1 < p1;
    const f32* x1 = two ? x0 + K : x0;
    for (int o0 = 0; o0 < O; o0 += 16) {
      const int n = O - o0;
      v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c02 = c00, c03 = c00;
      if (bias) {
        c00 = load_n(bias + o0, n);
        c01 = load_n(bias + o0 + 4, n - 4);
        c02 = load_n(bias + o0 + 8, n - 8);
        c03 = load_n(bias + o0 + 12, n - 12);
      }
      v128_t c10 = c00, c11 = c01, c12 = c02, c13 = c03;
      const f32* wk = w + o0;
      for (int k = 0; k < K; k++, wk += OP) {
        const v128_t w0 = wasm_v128_load(wk), w1 = wasm_v128_load(wk + 4);
        const v128_t w2 = wasm_v128_load(wk + 8), w3 = wasm_v128_load(wk + 12);
        const v128_t a = wasm_v128_load32_splat(x0 + k), b = wasm_v128_load32_splat(x1 + k);
        c00 = madd(a, w0, c00);
        c01 = madd(a, w1, c01);
        c02 = madd(a, w2, c02);
        c03 = madd(a, w3, c03);
        c10 = madd(b, w0, c10);
        c11 = madd(b, w1, c11);
        c12 = madd(b, w2, c12);
        c13 = madd(b, w3, c13);
      }
      store16(y + p * O + o0, n, act, c00, c01, c02, c03);
      if (two) store16(y + (p + 1) * O + o0, n, act, c10, c11, c12, c13);
    }
  }
}

/*
 * Filter gradient over taps [k0, k1), summed over rows [p0, p1) and added
 * into dw (the caller zeroes it):
 *   dw[k·O + o] += Σ_p x[base[p] + koff[k]] · dy[p·O + o]
 * Tiles of 4 taps × 8 output channels, over blocks of 256 rows so that a
 * block's dy rows and input windows stay in the L1 cache while every tap
 * tile passes over them. A dy row is read as 8 floats even when fewer are
 * left in it (the extra lanes are discarded), except in the last row, which
 * is read exactly.
 */
void conv_filter_grad(const f32* x, const int* base, const int* koff, int k0, int k1,
                      const f32* dy, int O, f32* dw, int p0, int p1) {
  for (int b0 = p0; b0 < p1; b0 += 256) {
    const int b1 = p1 - b0 < 256 ? p1 : b0 + 256;
    for (int k = k0; k < k1; k += 4) {
      const int nk = k1 - k < 4 ? k1 - k : 4;
      /* Taps past k1 repeat the last one; their sums are not stored. */
      const int o0f = koff[k], o1f = koff[k + (nk > 1)], o2f = koff[k + (nk > 2 ? 2 : nk - 1)],
                o3f = koff[k + (nk > 3 ? 3 : nk - 1)];
      for (int o0 = 0; o0 < O; o0 += 8) {
        const int n = O - o0;
        v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00, c20 = c00,
               c21 = c00, c30 = c00, c31 = c00;
        const int pFull = n >= 8 || b1 < p1 ? b1 : b1 - 1;
        const f32* d = dy + b0 * O + o0;
        for (int p = b0; p < b1; p++, d += O) {
          v128_t d0, d1;
          if (p < pFull) {
            d0 = wasm_v128_load(d);
            d1 = wasm_v128_load(d + 4);
          } else {
            d0 = load_n(d, n);
            d1 = load_n(d + 4, n - 4);
          }
          const f32* xp = x + base[p];
          madd_row(&c00, &c01, wasm_v128_load32_splat(xp + o0f), d0, d1);
          madd_row(&c10, &c11, wasm_v128_load32_splat(xp + o1f), d0, d1);
          madd_row(&c20, &c21, wasm_v128_load32_splat(xp + o2f), d0, d1);
          madd_row(&c30, &c31, wasm_v128_load32_splat(xp + o3f), d0, d1);
        }
        f32* out = dw + k * O + o0;
        add_tile(out, O, n, nk, c00, c01, c10, c11, c20, c21, c30, c31);
      }
    }
  }
}

/*
 * dst[r·DC + c] = src[r·rs + c·cs] for c < cols, 0 for cols ≤ c < DC: a
 * matrix (or its transpose, with strides swapped) packed into rows of DC floats.
 */
void pack_rows(const f32* src, int rows, int cols, int rs, int cs, f32* dst, int DC) {
  for (int r = 0; r < rows; r++) {
    const f32* s = src + r * rs;
    f32* d = dst + r * DC;
    int c = 0;
    if (cs == 1) {
      for (; c + 4 <= cols; c += 4) wasm_v128_store(d + c, wasm_v128_load(s + c));
    }
    for (; c < cols; c++) d[c] = s[c * cs];
    for (; c < DC; c++) d[c] = 0.0f;
  }
}

/*
 * Input gradient by scattering (col2im), for dy rows [p0, p1):
 *   dx[base[p] + soff[s] + j] += Σ_o dy[p·O + o] · wt[o·KP + s·L + j]
 * for each segment s < S of L consecutive taps (with no dilation along the
 * width, the KW·C taps of one filter row are consecutive in x, so a segment
 * is a filter row). wt is the filter transposed to [O][K] and packed with a
 * row stride KP ≥ S·L + 8 (the padding zero). dx must hold the padded input
 * (zeroed by the caller). The sums are deterministic
 *  * in the order one thread runs them (rows of a tile may overlap in dx: each
 * row's read-add-write follows the previous row's).
 */
void conv_input_grad(const f32* dy, int O, const f32* wt, int KP, const int* soff, int S, int L,
                     const int* base, f32* dx, int p0, int p1) {
  int p = p0;
  for (; p + 4 <= p1; p += 4) {
    const f32* d0 = dy + p * O;
    f32* x0 = dx + base[p];
    f32* x1 = dx + base[p + 1];
    f32* x2 = dx + base[p + 2];
    f32* x3 = dx + base[p + 3];
    for (int s = 0; s < S; s++) {
      const int so = soff[s];
      for (int j = 0; j < L; j += 8) {
        v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00, c20 = c00,
               c21 = c00, c30 = c00, c31 = c00;
        const f32* wo = wt + s * L + j;
        const f32* dp = d0;
        for (int o = 0; o < O; o++, wo += KP, dp++) {
          const v128_t w0 = wasm_v128_load(wo), w1 = wasm_v128_load(wo + 4);
          madd_row(&c00, &c01, wasm_v128_load32_splat(dp), w0, w1);
          madd_row(&c10, &c11, wasm_v128_load32_splat(dp + O), w0, w1);
          madd_row(&c20, &c21, wasm_v128_load32_splat(dp + 2 * O), w0, w1);
          madd_row(&c30, &c31, wasm_v128_load32_splat(dp + 3 * O), w0, w1);
        }
        const int n = L - j, at = so + j;
#define ADD_ROW(xr, ca, cb)                                                   \
  store_n(xr + at, wasm_f32x4_add(load_n(xr + at, n), ca), n);                \
  if (n > 4) store_n(xr + at + 4, wasm_f32x4_add(load_n(xr + at + 4, n - 4), cb), n - 4);
        ADD_ROW(x0, c00, c01)
        ADD_ROW(x1, c10, c11)
        ADD_ROW(x2, c20, c21)
        ADD_ROW(x3, c30, c31)
      }
    }
  }
  for (; p < p1; p++) {
    f32* x0 = dx + base[p];
    for (int s = 0; s < S; s++) {
      for (int j = 0; j < L; j += 8) {
        v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00;
        const f32* wo = wt + s * L + j;
        for (int o = 0; o < O; o++, wo += KP) {
          const v128_t a = wasm_v128_load32_splat(dy + p * O + o);
          c00 = madd(a, wasm_v128_load(wo), c00);
          c01 = madd(a, wasm_v128_load(wo + 4), c01);
        }
        const int n = L - j, at = soff[s] + j;
        ADD_ROW(x0, c00, c01)
      }
    }
  }
}

/*
 * base[(a·I + i)·J + j] = (a0 + a)·as + i·is + j·js: window starts for any
 * order of (b, oh, ow); a0 lets a thread fill the rows of images a0 onwards.
 */
void bases3(int* base, int A, int I, int J, int as, int is, int js, int a0) {
  int p = 0;
  for (int a = 0; a < A; a++) {
    for (int i = 0; i < I; i++) {
      int at = (a0 + a) * as + i * is;
      for (int j = 0; j < J; j++, at += js) base[p++] = at;
    }
  }
}

/* dst [B, W, H, C] = src [B, H, W, C] with the two spatial axes swapped. */
void swap_hw(const f32* src, int B, int H, int W, int C, f32* dst) {
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < H; h++) {
      const f32* s = src + ((b * H + h) * W) * C;
      for (int w = 0; w < W; w++, s += C) {
        f32* d = dst + ((b * W + w) * H + h) * C;
        int c = 0;
        for (; c + 4 <= C; c += 4) wasm_v128_store(d + c, wasm_v128_load(s + c));
        for (; c < C; c++) d[c] = s[c];
      }
    }
  }
}

/*
 * Copies x [B, H, W, C] into dst [B, XH, XW, C] at (top, left), zero around
 * it (top and left may be negative: rows and columns before 0 are dropped,
 * and so are those past XH, XW).
 */
void pad_copy(const f32* x, int B, int H, int W, int C, f32* dst, int XH, int XW, int top,
              int left) {
  const int w0 = left < 0 ? -left : 0;
  const int w1 = W + left > XW ? XW - left : W;
  const unsigned long row = (unsigned long)XW * C * sizeof(f32);
  if (w1 <= w0) {
    __builtin_memset(dst, 0, (unsigned long)B * XH * row);
    return;
  }
  /* Each output row once: zeros where nothing is copied, the input row between. */
  const int c0 = (left + w0) * C, c1 = (left + w1) * C;
  for (int b = 0; b < B; b++) {
    for (int xh = 0; xh < XH; xh++) {
      f32* d = dst + (b * XH + xh) * XW * C;
      const int h = xh - top;
      if (h < 0 || h >= H) {
        __builtin_memset(d, 0, row);
        continue;
      }
      if (c0 > 0) __builtin_memset(d, 0, (unsigned long)c0 * sizeof(f32));
      __builtin_memcpy(d + c0, x + ((b * H + h) * W + w0) * C, (unsigned long)(c1 - c0) * sizeof(f32));
      if (c1 < XW * C) __builtin_memset(d + c1, 0, (unsigned long)(XW * C - c1) * sizeof(f32));
    }
  }
}

/* The inverse of pad_copy: the [B, H, W, C] window at (top, left) of src [B, XH, XW, C]. */
void crop_copy(const f32* src, int B, int XH, int XW, int C, f32* x, int H, int W, int top,
               int left) {
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < H; h++) {
      __builtin_memcpy(x + (b * H + h) * W * C, src + ((b * XH + h + top) * XW + left) * C,
                       (unsigned long)W * C * sizeof(f32));
    }
  }
}

/*
 * A [R, C] row-major matrix read as rows of L = C·m floats (m = 4 / gcd(C, 4)),
 * so every row is whole 4-float vectors; the R % m rows left over go one by
 * one. pattern holds L floats (the bias repeated m times for bias_add).
 */

/*
 * out[r, c] = x[r, c] + bias[c] (mul: x[r, c] · bias[c]); pattern is the
 * bias tiled to L floats.
 */
void bias_add(const f32* x, const f32* pattern, int L, int rows, f32* out, int mul) {
  for (int r = 0; r < rows; r++) {
    for (int j = 0; j < L; j += 4) {
      const v128_t a = wasm_v128_load(x + j), b = wasm_v128_load(pattern + j);
      wasm_v128_store(out + j, mul ? wasm_f32x4_mul(a, b) : wasm_f32x4_add(a, b));
    }
    x += L;
    out += L;
  }
}

/*
 * acc[j] += Σ over `rows` rows of L floats of x[r·L + j], in float32 blocks
 * of 64 rows added into float64 (the sums stay exact to float32 precision
 * over millions of rows). tmp holds L floats.
 */
void sum_rows(const f32* x, int L, int rows, f32* tmp, double* acc) {
  if (L <= 16) {
    /* Rows of up to four vectors: the block sums stay in registers. */
    const int nv = (L + 3) / 4;
    for (int r0 = 0; r0 < rows; r0 += 64) {
      const int r1 = rows - r0 < 64 ? rows : r0 + 64;
      v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
      const f32* row = x + (long)r0 * L;
      for (int r = r0; r < r1; r++, row += L) {
        s0 = wasm_f32x4_add(s0, wasm_v128_load(row));
        if (nv > 1) s1 = wasm_f32x4_add(s1, wasm_v128_load(row + 4));
        if (nv > 2) s2 = wasm_f32x4_add(s2, wasm_v128_load(row + 8));
        if (nv > 3) s3 = wasm_f32x4_add(s3, wasm_v128_load(row + 12));
      }
      wasm_v128_store(tmp, s0);
      if (nv > 1) wasm_v128_store(tmp + 4, s1);
      if (nv > 2) wasm_v128_store(tmp + 8, s2);
      if (nv > 3) wasm_v128_store(tmp + 12, s3);
      for (int j = 0; j < L; j++) acc[j] += (double)tmp[j];
    }
    return;
  }
  for (int r0 = 0; r0 < rows; r0 += 64) {
    const int r1 = rows - r0 < 64 ? rows : r0 + 64;
    for (int j = 0; j < L; j += 4) wasm_v128_store(tmp + j, wasm_f32x4_splat(0.0f));
    for (int r = r0; r < r1; r++) {
      const f32* row = x + (long)r * L;
      for (int j = 0; j < L; j += 4) {
        wasm_v128_store(tmp + j, wasm_f32x4_add(wasm_v128_load(tmp + j), wasm_v128_load(row + j)));
      }
    }
    for (int j = 0; j < L; j++) acc[j] += (double)tmp[j];
  }
}

/* The odd last column of a row pair of an [H, W, C] gradient (r: the pair's first row), which no 2×2 window covers: 0. */
static inline void zero_last_column(f32* r, int W, int C) {
  for (int i = 0; i < 2; i++) {
    f32* p = r + i * W * C + (W - 1) * C;
    for (int c = 0; c < C; c++) p[c] = 0.0f;
  }
}

/* The odd last row of an image's [H, W, C] gradient at img (row floats a row), which no 2×2 window covers: 0. */
static inline void zero_last_row(f32* img, int H, int row) {
  f32* p = img + (H - 1) * row;
  for (int i = 0; i < row; i++) p[i] = 0.0f;
}

/*
 * Four channels from c of one 2×2 window of max_pool_grad_2x2: the window's
 * positions start at a00, a01, a10, a11 in x and dx; its dy at g.
 */
static inline void max_pool_grad_vec(const f32* x, const f32* g, f32* dx, int a00, int a01,
                                     int a10, int a11, int c, v128_t ninf) {
  const v128_t v00 = wasm_v128_load(x + a00 + c), v01 = wasm_v128_load(x + a01 + c);
  const v128_t v10 = wasm_v128_load(x + a10 + c), v11 = wasm_v128_load(x + a11 + c);
  const v128_t m00 = wasm_f32x4_gt(v00, ninf);
  v128_t best = wasm_v128_bitselect(v00, ninf, m00);
  const v128_t m01 = wasm_f32x4_gt(v01, best);
  best = wasm_v128_bitselect(v01, best, m01);
  const v128_t m10 = wasm_f32x4_gt(v10, best);
  best = wasm_v128_bitselect(v10, best, m10);
  const v128_t m11 = wasm_f32x4_gt(v11, best);
  /* The last window position whose value beat all before it wins. */
  const v128_t s10 = wasm_v128_andnot(m10, m11);
  const v128_t later = wasm_v128_or(m10, m11);
  const v128_t s01 = wasm_v128_andnot(m01, later);
  const v128_t s00 = wasm_v128_andnot(m00, wasm_v128_or(m01, later));
  const v128_t gv = wasm_v128_load(g + c);
  wasm_v128_store(dx + a00 + c, wasm_v128_and(gv, s00));
  wasm_v128_store(dx + a01 + c, wasm_v128_and(gv, s01));
  wasm_v128_store(dx + a10 + c, wasm_v128_and(gv, s10));
  wasm_v128_store(dx + a11 + c, wasm_v128_and(gv, m11));
}

/*
 * The gradient of 2×2 stride-2 unpadded max pooling over x [B, H, W, C]
 * (windows do not overlap): each window's dy goes to its first maximum in
 * row-major order that is above -Infinity (a window of NaN or -Infinity
 * passes none), as the cpu backend picks it; every other input position,
 * and rows or columns no window covers, get 0.
 */
void max_pool_grad_2x2(const f32* x, const f32* dy, f32* dx, int B, int H, int W, int C) {
  const int OH = H / 2, OW = W / 2, row = W * C;
  const int CV = C & ~3;
  const v128_t ninf = wasm_f32x4_splat(-__builtin_inff());
  for (int b = 0; b < B; b++) {
    for (int oh = 0; oh < OH; oh++) {
      const int i0 = ((b * H + 2 * oh) * W) * C;
      const f32* g = dy + ((b * OH + oh) * OW) * C;
      for (int ow = 0; ow < OW; ow++, g += C) {
        const int a00 = i0 + 2 * ow * C, a01 = a00 + C, a10 = a00 + row, a11 = a10 + C;
        int c = 0;
        for (; c < CV; c += 4) max_pool_grad_vec(x, g, dx, a00, a01, a10, a11, c, ninf);
        /* C > 4 not a multiple of 4: one more vector over the last 4 channels,
           overlapping the one before (it writes the same values there). */
        if (c < C && C > 4) {
          max_pool_grad_vec(x, g, dx, a00, a01, a10, a11, C - 4, ninf);
          c = C;
        }
        for (; c < C; c++) {
          const f32 v00 = x[a00 + c], v01 = x[a01 + c], v10 = x[a10 + c], v11 = x[a11 + c];
          int at = -1;
          f32 best = -__builtin_inff();
          if (v00 > best) { best = v00; at = a00; }
          if (v01 > best) { best = v01; at = a01; }
          if (v10 > best) { best = v10; at = a10; }
          if (v11 > best) at = a11;
          dx[a00 + c] = at == a00 ? g[c] : 0.0f;
          dx[a01 + c] = at == a01 ? g[c] : 0.0f;
          dx[a10 + c] = at == a10 ? g[c] : 0.0f;
          dx[a11 + c] = at == a11 ? g[c] : 0.0f;
        }
      }
      if (W & 1) zero_last_column(dx + i0, W, C);
    }
    if (H & 1) zero_last_row(dx + b * H * row, H, row);
  }
}

/*
 * The ReLU gradient dy · step(x) for n floats, as tfjs computes it
 * (step(x) = 1 for x > 0, 0 otherwise, NaN for NaN; so dy = ±Infinity where
 * x <= 0 gives NaN, as the product does).
 */
void relu_grad(const f32* x, const f32* dy, f32* out, int n) {
  const v128_t one = wasm_f32x4_splat(1.0f), zero = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    v128_t s = wasm_v128_bitselect(one, zero, wasm_f32x4_gt(v, zero));
    s = wasm_v128_bitselect(v, s, wasm_f32x4_ne(v, v));
    wasm_v128_store(out + i, wasm_f32x4_mul(wasm_v128_load(dy + i), s));
  }
  for (; i < n; i++) {
    const f32 v = x[i];
    const f32 s = v > 0.0f ? 1.0f : v != v ? v : 0.0f;
    out[i] = dy[i] * s;
  }
}

/* Stores v at 4 channels of every position of one KH×KW window starting at d. */
static inline void window_fill(f32* d, int C, int row, int KH, int KW, v128_t v) {
  for (int i = 0; i < KH; i++) {
    for (int j = 0; j < KW; j++) wasm_v128_store(d + i * row + j * C, v);
  }
}

/*
 * The gradient of average pooling over x [B, H, W, C] when the windows tile
 * it (stride = window, no padding): each of a window's KH·KW inputs gets
 * its dy divided by KH·KW; rows and columns no window covers get 0.
 */
void avg_pool_grad_tiled(const f32* dy, f32* dx, int B, int H, int W, int C, int KH, int KW) {
  const f32 scale = 1.0f / (f32)(KH * KW);
  const int OH = H / KH, OW = W / KW, row = W * C;
  const v128_t sv = wasm_f32x4_splat(scale);
  __builtin_memset(dx, 0, (unsigned long)B * H * W * C * sizeof(f32));
  for (int b = 0; b < B; b++) {
    for (int oh = 0; oh < OH; oh++) {
      const f32* g = dy + ((b * OH + oh) * OW) * C;
      for (int ow = 0; ow < OW; ow++, g += C) {
        f32* d0 = dx + ((b * H + oh * KH) * W + ow * KW) * C;
        int c = 0;
        for (; c + 4 <= C; c += 4) {
          window_fill(d0 + c, C, row, KH, KW, wasm_f32x4_mul(wasm_v128_load(g + c), sv));
        }
        if (c < C && C > 4) {
          window_fill(d0 + C - 4, C, row, KH, KW, wasm_f32x4_mul(wasm_v128_load(g + C - 4), sv));
          c = C;
        }
        for (; c < C; c++) {
          const f32 v = g[c] * scale;
          for (int i = 0; i < KH; i++) {
            for (int j = 0; j < KW; j++) d0[i * row + j * C + c] = v;
          }
        }
      }
    }
  }
}

/* out = max(0, x) for n floats (NaN stays NaN, -0 becomes 0, as Math.max(0, x)). */
void relu(const f32* x, f32* out, int n) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, wasm_f32x4_max(zero, wasm_v128_load(x + i)));
  for (; i < n; i++) {
    const f32 v = x[i];
    out[i] = v != v ? v : v > 0.0f ? v : 0.0f;
  }
}

/* One window's maximum over 4 channels, as max_pool_2x2 takes it. */
static inline v128_t window_max(const f32* p, int C, int row, v128_t ninf) {
  v128_t best = ninf;
  const v128_t v00 = wasm_v128_load(p), v01 = wasm_v128_load(p + C);
  const v128_t v10 = wasm_v128_load(p + row), v11 = wasm_v128_load(p + row + C);
  best = wasm_v128_bitselect(v00, best, wasm_f32x4_gt(v00, best));
  best = wasm_v128_bitselect(v01, best, wasm_f32x4_gt(v01, best));
  best = wasm_v128_bitselect(v10, best, wasm_f32x4_gt(v10, best));
  return wasm_v128_bitselect(v11, best, wasm_f32x4_gt(v11, best));
}

/*
 * 2×2 stride-2 unpadded max pooling of x [B, H, W, C] into y [B, H/2, W/2, C]:
 * the largest value above -Infinity in each window, -Infinity when none is
 * (NaN never wins), as the cpu backend takes it.
 */
void max_pool_2x2(const f32* x, f32* y, int B, int H, int W, int C) {
  const int OH = H / 2, OW = W / 2, row = W * C;
  const v128_t ninf = wasm_f32x4_splat(-__builtin_inff());
  for (int b = 0; b < B; b++) {
    for (int oh = 0; oh < OH; oh++) {
      const f32* x0 = x + ((b * H + 2 * oh) * W) * C;
      f32* yo = y + ((b * OH + oh) * OW) * C;
      for (int ow = 0; ow < OW; ow++, yo += C) {
        const f32* p = x0 + 2 * ow * C;
        int c = 0;
        for (; c + 4 <= C; c += 4) wasm_v128_store(yo + c, window_max(p + c, C, row, ninf));
        if (c < C && C > 4) {
          wasm_v128_store(yo + C - 4, window_max(p + C - 4, C, row, ninf));
          c = C;
        }
        for (; c < C; c++) {
          f32 best = -__builtin_inff();
          if (p[c] > best) best = p[c];
          if (p[c + C] > best) best = p[c + C];
          if (p[c + row] > best) best = p[c + row];
          if (p[c + row + C] > best) best = p[c + row + C];
          yo[c] = best;
        }
      }
    }
  }
}

/*
 * Four channels from c of one window of max_pool_2x2_idx (p: the window's
 * first value of channel 0): their maxima to yo + c, and their positions
 * ORed into the words at io.
 */
static inline void pool_idx_vec(const f32* p, int C, int row, int c, f32* yo, int* io,
                                v128_t ninf) {
  const v128_t v00 = wasm_v128_load(p + c), v01 = wasm_v128_load(p + C + c);
  const v128_t v10 = wasm_v128_load(p + row + c), v11 = wasm_v128_load(p + row + C + c);
  v128_t best = wasm_v128_bitselect(v00, ninf, wasm_f32x4_gt(v00, ninf));
  v128_t at = wasm_i32x4_splat(0);
  v128_t m = wasm_f32x4_gt(v01, best);
  best = wasm_v128_bitselect(v01, best, m);
  at = wasm_v128_bitselect(wasm_i32x4_splat(1), at, m);
  m = wasm_f32x4_gt(v10, best);
  best = wasm_v128_bitselect(v10, best, m);
  at = wasm_v128_bitselect(wasm_i32x4_splat(2), at, m);
  m = wasm_f32x4_gt(v11, best);
  best = wasm_v128_bitselect(v11, best, m);
  at = wasm_v128_bitselect(wasm_i32x4_splat(3), at, m);
  wasm_v128_store(yo + c, best);
  if ((c & 15) <= 12) {
    /* The four in one word: 2 bits each, lane l at bit 2·l, then shifted to channel c's. */
    const v128_t sh = wasm_i32x4_mul(at, wasm_i32x4_make(1, 4, 16, 64));
    const int bits = wasm_i32x4_extract_lane(sh, 0) | wasm_i32x4_extract_lane(sh, 1) |
                     wasm_i32x4_extract_lane(sh, 2) | wasm_i32x4_extract_lane(sh, 3);
    io[c >> 4] |= (int)((unsigned)bits << (2 * (c & 15)));
  } else {
    io[c >> 4] |= (int)((unsigned)wasm_i32x4_extract_lane(at, 0) << (2 * (c & 15)));
    io[(c + 1) >> 4] |= (int)((unsigned)wasm_i32x4_extract_lane(at, 1) << (2 * ((c + 1) & 15)));
    io[(c + 2) >> 4] |= (int)((unsigned)wasm_i32x4_extract_lane(at, 2) << (2 * ((c + 2) & 15)));
    io[(c + 3) >> 4] |= (int)((unsigned)wasm_i32x4_extract_lane(at, 3) << (2 * ((c + 3) & 15)));
  }
}

/*
 * max_pool_2x2 that also writes where each maximum was: y as max_pool_2x2
 * writes it, and idx [B, H/2, W/2, ⌈C/16⌉] one 2-bit window position (0 to
 * 3, row-major) per channel, channel c in word c/16 at bit 2·(c mod 16): the
 * first value above all before it and above -Infinity, as max_pool_grad_2x2
 * picks it; 0 where none is.
 */
void max_pool_2x2_idx(const f32* x, f32* y, int* idx, int B, int H, int W, int C) {
  const int OH = H / 2, OW = W / 2, row = W * C, NW = (C + 15) >> 4;
  const v128_t ninf = wasm_f32x4_splat(-__builtin_inff());
  for (int b = 0; b < B; b++) {
    for (int oh = 0; oh < OH; oh++) {
      const f32* x0 = x + ((b * H + 2 * oh) * W) * C;
      for (int ow = 0; ow < OW; ow++) {
        const int o = (b * OH + oh) * OW + ow;
        const f32* p = x0 + 2 * ow * C;
        f32* yo = y + o * C;
        int* io = idx + o * NW;
        for (int q = 0; q < NW; q++) io[q] = 0;
        int c = 0;
        for (; c + 4 <= C; c += 4) pool_idx_vec(p, C, row, c, yo, io, ninf);
        /* C > 4 not a multiple of 4: the last 4 channels again, overlapping
           (the same values and positions, ORed in twice). */
        if (c < C && C > 4) {
          pool_idx_vec(p, C, row, C - 4, yo, io, ninf);
          c = C;
        }
        for (; c < C; c++) {
          f32 best = -__builtin_inff();
          int at = 0;
          if (p[c] > best) best = p[c];
          if (p[c + C] > best) {
            best = p[c + C];
            at = 1;
          }
          if (p[c + row] > best) {
            best = p[c + row];
            at = 2;
          }
          if (p[c + row + C] > best) {
            best = p[c + row + C];
            at = 3;
          }
          yo[c] = best;
          io[c >> 4] |= (int)((unsigned)at << (2 * (c & 15)));
        }
      }
    }
  }
}

/*
 * Four channels from c of one window of max_pool_scatter_2x2: dy where the
 * pooled value is above -Infinity, at the window position its idx word
 * names, 0 at the other three.
 */
static inline void scatter_vec(const f32* g, const f32* yv, const int* io, f32* dz, int a00,
                               int a01, int a10, int a11, int c, v128_t ninf) {
  /* Lane l's 2 bits at bit 2·l, the others cleared. */
  v128_t at;
  if ((c & 15) <= 12) {
    at = wasm_v128_and(wasm_i32x4_splat((int)((unsigned)io[c >> 4] >> (2 * (c & 15)))),
                       wasm_i32x4_make(3, 3 << 2, 3 << 4, 3 << 6));
  } else {
    at = wasm_i32x4_make((io[c >> 4] >> (2 * (c & 15))) & 3,
                         ((io[(c + 1) >> 4] >> (2 * ((c + 1) & 15))) & 3) << 2,
                         ((io[(c + 2) >> 4] >> (2 * ((c + 2) & 15))) & 3) << 4,
                         ((io[(c + 3) >> 4] >> (2 * ((c + 3) & 15))) & 3) << 6);
  }
  const v128_t v = wasm_v128_and(wasm_v128_load(g + c), wasm_f32x4_gt(wasm_v128_load(yv + c), ninf));
  wasm_v128_store(dz + a00 + c, wasm_v128_and(v, wasm_i32x4_eq(at, wasm_i32x4_splat(0))));
  wasm_v128_store(dz + a01 + c,
                  wasm_v128_and(v, wasm_i32x4_eq(at, wasm_i32x4_make(1, 1 << 2, 1 << 4, 1 << 6))));
  wasm_v128_store(dz + a10 + c,
                  wasm_v128_and(v, wasm_i32x4_eq(at, wasm_i32x4_make(2, 2 << 2, 2 << 4, 2 << 6))));
  wasm_v128_store(dz + a11 + c,
                  wasm_v128_and(v, wasm_i32x4_eq(at, wasm_i32x4_make(3, 3 << 2, 3 << 4, 3 << 6))));
}

/*
 * The gradient of 2×2 stride-2 unpadded max pooling from the positions of
 * its maxima: dz [B, H, W, C] gets each window's dy [B, H/2, W/2, C] at the
 * position idx names (max_pool_2x2_idx's layout) where the pooled value y
 * is above -Infinity (where it is not, no value won and none passes), and 0
 * everywhere else, rows or columns no window covers included. With idx from
 * max_pool_2x2_idx, the values are max_pool_grad_2x2's.
 */
void max_pool_scatter_2x2(const f32* dy, const f32* y, const int* idx, f32* dz, int B, int H,
                          int W, int C) {
  const int OH = H / 2, OW = W / 2, row = W * C, NW = (C + 15) >> 4;
  const int CV = C & ~3;
  const v128_t ninf = wasm_f32x4_splat(-__builtin_inff());
  for (int b = 0; b < B; b++) {
    for (int oh = 0; oh < OH; oh++) {
      const int i0 = ((b * H + 2 * oh) * W) * C;
      for (int ow = 0; ow < OW; ow++) {
        const int o = (b * OH + oh) * OW + ow;
        const f32* g = dy + o * C;
        const f32* yv = y + o * C;
        const int* io = idx + o * NW;
        const int a00 = i0 + 2 * ow * C, a01 = a00 + C, a10 = a00 + row, a11 = a10 + C;
        int c = 0;
        for (; c < CV; c += 4) scatter_vec(g, yv, io, dz, a00, a01, a10, a11, c, ninf);
        /* C > 4 not a multiple of 4: one more vector over the last 4 channels,
           overlapping the one before (it writes the same values there). */
        if (c < C && C > 4) {
          scatter_vec(g, yv, io, dz, a00, a01, a10, a11, C - 4, ninf);
          c = C;
        }
        for (; c < C; c++) {
          const int at = (io[c >> 4] >> (2 * (c & 15))) & 3;
          const f32 v = yv[c] > -__builtin_inff() ? g[c] : 0.0f;
          dz[a00 + c] = at == 0 ? v : 0.0f;
          dz[a01 + c] = at == 1 ? v : 0.0f;
          dz[a10 + c] = at == 2 ? v : 0.0f;
          dz[a11 + c] = at == 3 ? v : 0.0f;
        }
      }
      if (W & 1) zero_last_column(dz + i0, W, C);
    }
    if (H & 1) zero_last_row(dz + b * H * row, H, row);
  }
}

/* One window's mean over 4 channels: the sum in row-major window order, divided by KH·KW. */
static inline v128_t window_mean(const f32* p, int C, int row, int KH, int KW, v128_t count) {
  v128_t sum = wasm_f32x4_splat(0.0f);
  for (int i = 0; i < KH; i++) {
    for (int j = 0; j < KW; j++) sum = wasm_f32x4_add(sum, wasm_v128_load(p + i * row + j * C));
  }
  return wasm_f32x4_div(sum, count);
}

/*
 * Average pooling of x [B, H, W, C] when the windows tile it (stride =
 * window, no padding) into y [B, H/KH, W/KW, C]: each window summed in
 * row-major order and divided by KH·KW.
 */
void avg_pool_tiled(const f32* x, f32* y, int B, int H, int W, int C, int KH, int KW) {
  const int OH = H / KH, OW = W / KW, row = W * C;
  const f32 n = (f32)(KH * KW);
  const v128_t count = wasm_f32x4_splat(n);
  for (int b = 0; b < B; b++) {
    for (int oh = 0; oh < OH; oh++) {
      const f32* x0 = x + ((b * H + oh * KH) * W) * C;
      f32* yo = y + ((b * OH + oh) * OW) * C;
      for (int ow = 0; ow < OW; ow++, yo += C) {
        const f32* p = x0 + ow * KW * C;
        int c = 0;
        for (; c + 4 <= C; c += 4) {
          wasm_v128_store(yo + c, window_mean(p + c, C, row, KH, KW, count));
        }
        if (c < C && C > 4) {
          wasm_v128_store(yo + C - 4, window_mean(p + C - 4, C, row, KH, KW, count));
          c = C;
        }
        for (; c < C; c++) {
          f32 sum = 0.0f;
          for (int i = 0; i < KH; i++) {
            for (int j = 0; j < KW; j++) sum += p[i * row + j * C + c];
          }
          yo[c] = sum / n;
        }
      }
    }
  }
}

/*
 * The sums of one group of four columns (from ow) of conv1_taps for a
 * compile-time channel count O: acc0 for the output row whose input starts
 * at xr and, when two, acc1 for the row after it, both summed at once so
 * that each weight is loaded once for both. Each accumulator starts from
 * the bias and takes its products in filter order (kh, then kw), whether or
 * not the second row is summed with it.
 */
static inline __attribute__((always_inline)) void conv1_sums(const f32* xr, int XW, int KH, int KW,
                                                             const f32* w, int ow,
                                                             const f32* bias, v128_t* acc0,
                                                             v128_t* acc1, const int O,
                                                             const int two) {
  for (int o = 0; o < O; o++) {
    acc0[o] = wasm_f32x4_splat(bias ? bias[o] : 0.0f);
    if (two) acc1[o] = acc0[o];
  }
  for (int kh = 0; kh < KH; kh++) {
    const f32* xk = xr + kh * XW + ow;
    const f32* wk = w + kh * KW * O;
    for (int kw = 0; kw < KW; kw++, wk += O) {
      const v128_t v0 = wasm_v128_load(xk + kw);
      const v128_t v1 = two ? wasm_v128_load(xk + XW + kw) : v0;
      for (int o = 0; o < O; o++) {
        const v128_t wv = wasm_v128_load32_splat(wk + o);
        acc0[o] = madd(v0, wv, acc0[o]);
        if (two) acc1[o] = madd(v1, wv, acc1[o]);
      }
    }
  }
}

/* Stores the activated lanes of acc (four columns × O channels) at y, column by column. */
static inline __attribute__((always_inline)) void conv1_store(f32* y, const v128_t* acc, int act,
                                                              const int O) {
  for (int o = 0; o < O; o++) {
    const v128_t a = activate(acc[o], act);
    y[o] = wasm_f32x4_extract_lane(a, 0);
    y[O + o] = wasm_f32x4_extract_lane(a, 1);
    y[2 * O + o] = wasm_f32x4_extract_lane(a, 2);
    y[3 * O + o] = wasm_f32x4_extract_lane(a, 3);
  }
}

/*
 * One output row of conv1_taps (yr, from input row xr) and, when two, the
 * row after it, for a compile-time channel count O, four columns at a time
 * (the last group overlaps the one before when OW is not a multiple of 4;
 * it writes the same values there). The values do not depend on two.
 */
static inline __attribute__((always_inline)) void conv1_rows(const f32* xr, int XW, int KH, int KW,
                                                             const f32* w, f32* yr, int OW,
                                                             const f32* bias, int act,
                                                             const int O, const int two) {
  for (int ow0 = 0; ow0 < OW; ow0 += 4) {
    const int ow = ow0 + 4 <= OW ? ow0 : OW - 4;
    v128_t acc0[8], acc1[8];
    conv1_sums(xr, XW, KH, KW, w, ow, bias, acc0, acc1, O, two);
    conv1_store(yr + ow * O, acc0, act, O);
    if (two) conv1_store(yr + (OW + ow) * O, acc1, act, O);
  }
}

/* Calls CALL(n) with the compile-time channel count n equal to O (1 to 8). */
#define BY_CHANNELS(O, CALL) \
  switch (O) {               \
    case 1: CALL(1); break;  \
    case 2: CALL(2); break;  \
    case 3: CALL(3); break;  \
    case 4: CALL(4); break;  \
    case 5: CALL(5); break;  \
    case 6: CALL(6); break;  \
    case 7: CALL(7); break;  \
    default: CALL(8); break; \
  }

/*
 * Forward convolution of a one-channel input, stride 1, no dilation (a
 * first layer on grey images), for output rows r in [r0, r1) of (b, oh):
 *   y[(r·OW + ow)·O + o] = act(bias[o] + Σ_{kh, kw} x[(b·XH + oh + kh)·XW + ow + kw] · w[(kh·KW + kw)·O + o])
 * x is the zero-padded input [B, XH, XW]; OW >= 4 and 1 <= O <= 8; bias (O
 * floats) may be 0 (none); act as activate() takes it. One
 * accumulator per output channel over four columns, so no lane is spent on
 * channels past O (conv_taps' tiles are 8 channels wide), and no window
 * starts are needed. Two rows of one image run together where they can,
 * one alone otherwise: the same values either way.
 */
void conv1_taps(const f32* x, int XH, int XW, int OH, int OW, int KH, int KW, const f32* w, int O,
                f32* y, int r0, int r1, const f32* bias, int act) {
  for (int r = r0; r < r1;) {
    const int b = r / OH, oh = r % OH;
    const f32* xr = x + (b * XH + oh) * XW;
    f32* yr = y + r * OW * O;
    if (r + 1 < r1 && oh + 1 < OH) {
#define ROWS2(n) conv1_rows(xr, XW, KH, KW, w, yr, OW, bias, act, n, 1)
      BY_CHANNELS(O, ROWS2)
#undef ROWS2
      r += 2;
    } else {
#define ROW1(n) conv1_rows(xr, XW, KH, KW, w, yr, OW, bias, act, n, 0)
      BY_CHANNELS(O, ROW1)
#undef ROW1
      r++;
    }
  }
}

/*
 * One row of activated values of two 2×2 windows (lanes 0 and 1 of a hold
 * the left window's row, lanes 2 and 3 the right one's) taken into their
 * running maxima best (lane 0: the left window, lane 1: the right), left to
 * right, each replacing the maximum only when greater.
 */
static inline __attribute__((always_inline)) v128_t pool_pairs(v128_t a, v128_t best) {
  const v128_t left = wasm_i32x4_shuffle(a, a, 0, 2, 0, 2);
  const v128_t right = wasm_i32x4_shuffle(a, a, 1, 3, 1, 3);
  best = wasm_v128_bitselect(left, best, wasm_f32x4_gt(left, best));
  return wasm_v128_bitselect(right, best, wasm_f32x4_gt(right, best));
}

/*
 * pool_pairs, also tracking where each maximum came from: at (lanes 0 and
 * 1, as in best) takes 2·row for the window's left column and 2·row + 1 for
 * its right one whenever that value replaces the maximum, so it ends at the
 * window position (0 to 3, row-major) of the first maximum.
 */
static inline __attribute__((always_inline)) v128_t pool_pairs_at(v128_t a, v128_t best,
                                                                   v128_t* at, const int row) {
  const v128_t left = wasm_i32x4_shuffle(a, a, 0, 2, 0, 2);
  const v128_t right = wasm_i32x4_shuffle(a, a, 1, 3, 1, 3);
  const v128_t ml = wasm_f32x4_gt(left, best);
  best = wasm_v128_bitselect(left, best, ml);
  *at = wasm_v128_bitselect(wasm_i32x4_splat(2 * row), *at, ml);
  const v128_t mr = wasm_f32x4_gt(right, best);
  *at = wasm_v128_bitselect(wasm_i32x4_splat(2 * row + 1), *at, mr);
  return wasm_v128_bitselect(right, best, mr);
}

/*
 * One group of four columns (from ow) of the two output rows of a row of
 * 2×2 windows (xr: the first row's input), pooled into yp (two pooled
 * columns × O channels). The sums are conv1_rows' (conv1_sums, both rows at
 * once). Each window's values are taken in max_pool_2x2's order (row by
 * row, left to right) from -Infinity, each replacing the maximum only when
 * greater, so NaN never wins and the same value is chosen. With where, the
 * window position of each maximum goes to ip[0] and ip[1] (one word per
 * pooled column, 2 bits per channel: channel o at bit 2·o).
 */
static inline __attribute__((always_inline)) void conv1_pool_group(
    const f32* xr, int XW, int KH, int KW, const f32* w, int ow, const f32* bias, int act,
    f32* yp, int* ip, const int O, const int where) {
  v128_t acc0[8], acc1[8];
  conv1_sums(xr, XW, KH, KW, w, ow, bias, acc0, acc1, O, 1);
  const v128_t ninf = wasm_f32x4_splat(-__builtin_inff());
  int w0 = 0, w1 = 0;
  for (int o = 0; o < O; o++) {
    v128_t best;
    if (where) {
      v128_t at = wasm_i32x4_splat(0);
      best = pool_pairs_at(activate(acc0[o], act), ninf, &at, 0);
      best = pool_pairs_at(activate(acc1[o], act), best, &at, 1);
      w0 |= wasm_i32x4_extract_lane(at, 0) << (2 * o);
      w1 |= wasm_i32x4_extract_lane(at, 1) << (2 * o);
    } else {
      best = pool_pairs(activate(acc1[o], act), pool_pairs(activate(acc0[o], act), ninf));
    }
    yp[o] = wasm_f32x4_extract_lane(best, 0);
    yp[O + o] = wasm_f32x4_extract_lane(best, 1);
  }
  if (where) {
    ip[0] = w0;
    ip[1] = w1;
  }
}

/* conv1_taps_pool's rows, with the maxima's positions written to idx when where. */
static inline __attribute__((always_inline)) void conv1_pool_rows(
    const f32* x, int XH, int XW, int OH, int OW, int KH, int KW, const f32* w, int O, f32* y,
    int r0, int r1, const f32* bias, int act, int* idx, const int where) {
  const int PH = OH / 2, PW = OW / 2;
  for (int r = r0; r < r1; r++) {
    const int b = r / PH, ph = r % PH;
    f32* yr = y + r * PW * O;
    int* ir = where ? idx + r * PW : idx;
    const f32* xr = x + (b * XH + 2 * ph) * XW;
    for (int g = 0; g < PW; g += 2) {
      const int pw = g + 2 <= PW ? g : PW - 2;
      f32* yp = yr + pw * O;
      int* ip = where ? ir + pw : ir;
      const int ow = 2 * pw;
#define GROUP(n) conv1_pool_group(xr, XW, KH, KW, w, ow, bias, act, yp, ip, n, where)
      BY_CHANNELS(O, GROUP)
#undef GROUP
    }
  }
}

/*
 * conv1_taps followed by 2×2 stride-2 unpadded max pooling, without the
 * convolution's output: pooled rows r in [r0, r1) of (b, ph), each from
 * output rows 2ph and 2ph + 1 of conv1_taps (same arguments; OH, OW its
 * output size), into y [B, OH/2, OW/2, O]. The values are conv1_taps'
 * pooled as max_pool_2x2 pools them. Needs OW >= 4 and 1 <= O <= 8. Groups
 * of four columns start at even columns; where the pooled columns are not a
 * multiple of two, the last group overlaps the one before and computes the
 * same windows again.
 */
void conv1_taps_pool(const f32* x, int XH, int XW, int OH, int OW, int KH, int KW, const f32* w,
                     int O, f32* y, int r0, int r1, const f32* bias, int act) {
  conv1_pool_rows(x, XH, XW, OH, OW, KH, KW, w, O, y, r0, r1, bias, act, 0, 0);
}

/*
 * conv1_taps_pool that also writes where each maximum was: idx [B, OH/2,
 * OW/2] holds one word per pooled position, the window position (0 to 3,
 * row-major) of channel o's first maximum at bits 2·o (max_pool_2x2_idx's
 * layout for up to 16 channels). A window with no value above -Infinity
 * gets position 0.
 */
void conv1_taps_pool_idx(const f32* x, int XH, int XW, int OH, int OW, int KH, int KW,
                         const f32* w, int O, f32* y, int r0, int r1, const f32* bias, int act,
                         int* idx) {
  conv1_pool_rows(x, XH, XW, OH, OW, KH, KW, w, O, y, r0, r1, bias, act, idx, 1);
}

/*
 * One pass of conv1_filter_grad: nr rows of transposed dy (t0, and t1 for a
 * second channel when two) against the filter row's windows of x, into the
 * accumulators a0/a1 of nk taps. Inlined with constant nk and two for the
 * common 5-wide filter, so the taps unroll and stay in registers.
 */
static inline __attribute__((always_inline)) void conv1_fg_pass(
    const f32* x, int XH, int XW, int OH, int OW, int OWP, const f32* dyT, int O, int o, int kh,
    int kw0, f32* A, int rb, int nr, const int nk, const int two) {
  v128_t a0[5], a1[5];
  const int full = OW & ~3, tail = OW - full;
  for (int j = 0; j < nk; j++) {
    a0[j] = wasm_v128_load(A + j * O * 4);
    a1[j] = two ? wasm_v128_load(A + j * O * 4 + 4) : wasm_f32x4_splat(0.0f);
  }
  for (int r = 0; r < nr; r++) {
    const int b = (rb + r) / OH, oh = (rb + r) % OH;
    const f32* xr = x + (b * XH + oh + kh) * XW + kw0;
    const f32* t0 = dyT + (r * O + o) * OWP;
    const f32* t1 = two ? t0 + OWP : t0;
    int ow = 0;
    for (; ow < full; ow += 4) {
      const v128_t d0 = wasm_v128_load(t0 + ow), d1 = wasm_v128_load(t1 + ow);
      for (int j = 0; j < nk; j++) {
        const v128_t v = wasm_v128_load(xr + ow + j);
        a0[j] = madd(v, d0, a0[j]);
        if (two) a1[j] = madd(v, d1, a1[j]);
      }
    }
    if (tail) {
      const v128_t d0 = wasm_v128_load(t0 + ow), d1 = wasm_v128_load(t1 + ow);
      for (int j = 0; j < nk; j++) {
        const v128_t v = load_n(xr + ow + j, tail);
        a0[j] = madd(v, d0, a0[j]);
        if (two) a1[j] = madd(v, d1, a1[j]);
      }
    }
  }
  for (int j = 0; j < nk; j++) {
    wasm_v128_store(A + j * O * 4, a0[j]);
    if (two) wasm_v128_store(A + j * O * 4 + 4, a1[j]);
  }
}

/* t[o·OWP + ow] = d[ow·O + o] for ow < OW, 0 up to OWP (inlined for constant O). */
static inline __attribute__((always_inline)) void transpose_rows(const f32* d, int OW, int OWP,
                                                                 f32* t, const int O) {
  for (int ow = 0; ow < OW; ow++, d += O)
    for (int o = 0; o < O; o++) t[o * OWP + ow] = d[o];
  for (int ow = OW; ow < OWP; ow++)
    for (int o = 0; o < O; o++) t[o * OWP + ow] = 0.0f;
}

/*
 * One row (b, oh) of the gradient max_pool_scatter_2x2 makes from a 2×2
 * pooling's gradient dp, values y and positions idx ([B, OH/2, OW/2, O]
 * and one word per pooled position: O <= 16), transposed to t [O][OWP]:
 * t[o][ow] is dp at the window's position the word names where y is above
 * -Infinity, 0 elsewhere, in rows or columns no window covers and past OW.
 */
static inline __attribute__((always_inline)) void scatter_row_t(const f32* dp, const f32* y,
                                                                const int* idx, int b, int oh,
                                                                int OH, int OW, int OWP, f32* t,
                                                                const int O) {
  const int PH = OH / 2, PW = OW / 2;
  int ow = 0;
  if (oh < 2 * PH) {
    const int p0 = (b * PH + oh / 2) * PW;
    /* Columns 2pw, 2pw + 1, 2pw + 2, 2pw + 3 take window positions 2·(oh mod 2) + 0, 1, 0, 1. */
    const int at = 2 * (oh & 1);
    const v128_t want = wasm_i32x4_make(at, at + 1, at, at + 1);
    const v128_t ninf = wasm_f32x4_splat(-__builtin_inff());
    for (; ow + 4 <= 2 * PW; ow += 4) {
      const int p = p0 + ow / 2;
      const unsigned w0 = (unsigned)idx[p], w1 = (unsigned)idx[p + 1];
      const f32* g0 = dp + p * O;
      const f32* y0 = y + p * O;
      for (int o = 0; o < O; o++) {
        const int c0 = (int)((w0 >> (2 * o)) & 3), c1 = (int)((w1 >> (2 * o)) & 3);
        const v128_t g = wasm_f32x4_make(g0[o], g0[o], g0[O + o], g0[O + o]);
        const v128_t v = wasm_f32x4_make(y0[o], y0[o], y0[O + o], y0[O + o]);
        const v128_t hit = wasm_v128_and(wasm_i32x4_eq(wasm_i32x4_make(c0, c0, c1, c1), want),
                                         wasm_f32x4_gt(v, ninf));
        wasm_v128_store(t + o * OWP + ow, wasm_v128_and(g, hit));
      }
    }
    for (; ow < 2 * PW; ow++) {
      const int p = p0 + ow / 2;
      const unsigned word = (unsigned)idx[p], w = (unsigned)(at + (ow & 1));
      for (int o = 0; o < O; o++) {
        const int hit = ((word >> (2 * o)) & 3) == w && y[p * O + o] > -__builtin_inff();
        t[o * OWP + ow] = hit ? dp[p * O + o] : 0.0f;
      }
    }
  }
  for (; ow < OWP; ow++)
    for (int o = 0; o < O; o++) t[o * OWP + ow] = 0.0f;
}

/*
 * conv1_filter_grad's body, its rows of dy read from dy or, when pooled,
 * made from a 2×2 pooling's gradient, values and positions (scatter_row_t).
 */
static inline __attribute__((always_inline)) void conv1_fg_body(
    const f32* x, int XH, int XW, const f32* dy, const f32* py, const int* idx, int OH, int OW,
    int KH, int KW, int O, f32* dw, f32* tmp, int r0, int r1, const int pooled) {
  const int OWP = (OW + 3) & ~3, R = 8;
  f32* dyT = tmp;
  f32* acc = tmp + R * O * OWP;
  for (int i = 0; i < KH * KW * O * 4; i++) acc[i] = 0.0f;
  for (int rb = r0; rb < r1; rb += R) {
    const int nr = r1 - rb < R ? r1 - rb : R;
    for (int r = 0; r < nr; r++) {
      f32* t = dyT + r * O * OWP;
      if (pooled) {
        const int b = (rb + r) / OH, oh = (rb + r) % OH;
        switch (O) {
          case 6: scatter_row_t(dy, py, idx, b, oh, OH, OW, OWP, t, 6); break;
          default: scatter_row_t(dy, py, idx, b, oh, OH, OW, OWP, t, O); break;
        }
        continue;
      }
      const f32* d = dy + (rb + r) * OW * O;
      switch (O) {
        case 4: transpose_rows(d, OW, OWP, t, 4); break;
        case 6: transpose_rows(d, OW, OWP, t, 6); break;
        case 8: transpose_rows(d, OW, OWP, t, 8); break;
        default: transpose_rows(d, OW, OWP, t, O); break;
      }
    }
    for (int kh = 0; kh < KH; kh++) {
      for (int o = 0; o < O;) {
        const int two = o + 1 < O;
        for (int kw0 = 0; kw0 < KW; kw0 += 5) {
          const int nk = KW - kw0 < 5 ? KW - kw0 : 5;
          f32* A = acc + ((kh * KW + kw0) * O + o) * 4;
          /* Constant nk and two in every case: the accumulators stay in
           * registers (with a variable count they would need a stack). */
#define PASS(n, t) conv1_fg_pass(x, XH, XW, OH, OW, OWP, dyT, O, o, kh, kw0, A, rb, nr, n, t)
          switch (nk * 2 + two) {
            case 11: PASS(5, 1); break;
            case 10: PASS(5, 0); break;
            case 9: PASS(4, 1); break;
            case 8: PASS(4, 0); break;
            case 7: PASS(3, 1); break;
            case 6: PASS(3, 0); break;
            case 5: PASS(2, 1); break;
            case 4: PASS(2, 0); break;
            case 3: PASS(1, 1); break;
            default: PASS(1, 0); break;
          }
#undef PASS
        }
        o += two ? 2 : 1;
      }
    }
  }
  for (int i = 0; i < KH * KW * O; i++) {
    const f32* a = acc + i * 4;
    dw[i] += (a[0] + a[1]) + (a[2] + a[3]);
  }
}

/*
 * Filter gradient of a one-channel, stride-1, undilated convolution (the
 * first layer on grey images), over output rows r in [r0, r1) of (b, oh):
 *   dw[(kh·KW + kw)·O + o] += Σ_{r, ow} x[(b·XH + oh + kh)·XW + ow + kw] · dy[(r·OW + ow)·O + o]
 * x is the zero-padded input [B, XH, XW] (XW >= OW + KW - 1); the caller
 * zeroes dw. Vectors run along ow, so every lane does useful work whatever
 * O is (lanes over o waste a quarter of them at O = 6): each block of up to
 * 8 rows of dy is transposed to [row][o][ow] in `tmp`, zero-padded to OWP =
 * OW rounded up to 4 columns (x's lanes past OW are zeroed too, so nothing
 * past a row is ever multiplied in). The accumulators (one vector per tap
 * and channel) live in `tmp` across blocks; a pass holds a pair of channels
 * × 5 taps of one filter row in registers. They are summed across lanes at
 * the end. tmp: 8·O·OWP + KH·KW·O·4 floats.
 */
void conv1_filter_grad(const f32* x, int XH, int XW, const f32* dy, int OH, int OW, int KH, int KW,
                       int O, f32* dw, f32* tmp, int r0, int r1) {
  conv1_fg_body(x, XH, XW, dy, 0, 0, OH, OW, KH, KW, O, dw, tmp, r0, r1, 0);
}

/*
 * conv1_filter_grad with dy the gradient that max_pool_scatter_2x2 makes of
 * a 2×2 pooling's gradient dp, its values y and positions idx (pooled
 * [B, OH/2, OW/2, O], one word of positions each: O <= 16), made a row at a
 * time as it is read, never stored whole: the same values as
 * max_pool_scatter_2x2, then conv1_filter_grad.
 */
void conv1_filter_grad_pooled(const f32* x, int XH, int XW, const f32* dp, const f32* y,
                              const int* idx, int OH, int OW, int KH, int KW, int O, f32* dw,
                              f32* tmp, int r0, int r1) {
  conv1_fg_body(x, XH, XW, dp, y, idx, OH, OW, KH, KW, O, dw, tmp, r0, r1, 1);
}

/* p[i] = 0 for n floats (memory.fill). */
void zero(f32* p, int n) {
  if (n > 0) __builtin_memset(p, 0, (unsigned)n * sizeof(f32));
}

/* dst[i] += src[i] for n floats (a thread's partial sums into the total). */
void add_into(f32* dst, const f32* src, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4)
    wasm_v128_store(dst + i, wasm_f32x4_add(wasm_v128_load(dst + i), wasm_v128_load(src + i)));
  for (; i < n; i++) dst[i] += src[i];
}

/*
 * Batch normalization with per-channel parameters tiled to L floats (L a
 * multiple of 4 holding whole channel rows): out = (x - mean) · a + offset,
 * where the caller folded the scale and 1/√(variance + ε) into a.
 */
void batch_norm(const f32* x, const f32* mean, const f32* a, const f32* off, int L, int rows,
                f32* out) {
  for (int r = 0; r < rows; r++) {
    for (int j = 0; j < L; j += 4) {
      const v128_t d = wasm_f32x4_sub(wasm_v128_load(x + j), wasm_v128_load(mean + j));
      wasm_v128_store(out + j,
                      wasm_f32x4_add(wasm_f32x4_mul(d, wasm_v128_load(a + j)), wasm_v128_load(off + j)));
    }
    x += L;
    out += L;
  }
}

/*
 * Batch normalization's statistics and gradient sums over `rows` rows of L
 * floats (L a multiple of 4 holding whole channel rows; mean tiled to L),
 * in float32 blocks of 64 rows added into float64, as sum_rows does:
 * without dy, acc[j] += Σ (x − mean)²; with dy, acc[j] += Σ dy and
 * acc[L + j] += Σ dy · (x − mean). tmp holds 2L floats.
 */
void bn_sums(const f32* x, const f32* dy, const f32* mean, int L, int rows, f32* tmp,
             double* acc) {
  for (int r0 = 0; r0 < rows; r0 += 64) {
    const int r1 = rows - r0 < 64 ? rows : r0 + 64;
    for (int j = 0; j < 2 * L; j += 4) wasm_v128_store(tmp + j, wasm_f32x4_splat(0.0f));
    for (int r = r0; r < r1; r++) {
      const f32* xr = x + (long)r * L;
      if (dy == 0) {
        for (int j = 0; j < L; j += 4) {
          const v128_t d = wasm_f32x4_sub(wasm_v128_load(xr + j), wasm_v128_load(mean + j));
          wasm_v128_store(tmp + j, madd(d, d, wasm_v128_load(tmp + j)));
        }
      } else {
        const f32* gr = dy + (long)r * L;
        for (int j = 0; j < L; j += 4) {
          const v128_t g = wasm_v128_load(gr + j);
          const v128_t d = wasm_f32x4_sub(wasm_v128_load(xr + j), wasm_v128_load(mean + j));
          wasm_v128_store(tmp + j, wasm_f32x4_add(wasm_v128_load(tmp + j), g));
          wasm_v128_store(tmp + L + j, madd(g, d, wasm_v128_load(tmp + L + j)));
        }
      }
    }
    const int n = dy == 0 ? L : 2 * L;
    for (int j = 0; j < n; j++) acc[j] += (double)tmp[j];
  }
}

/*
 * Batch normalization's input gradient over `rows` rows of L floats (the
 * per-channel a, b, c and mean tiled to L): dx = a · dy + b · (x − mean) + c.
 */
void bn_grad_dx(const f32* x, const f32* dy, const f32* mean, const f32* a, const f32* b,
                const f32* c, int L, int rows, f32* dx) {
  for (int r = 0; r < rows; r++) {
    for (int j = 0; j < L; j += 4) {
      const v128_t d = wasm_f32x4_sub(wasm_v128_load(x + j), wasm_v128_load(mean + j));
      const v128_t t = madd(wasm_v128_load(a + j), wasm_v128_load(dy + j), wasm_v128_load(c + j));
      wasm_v128_store(dx + j, madd(wasm_v128_load(b + j), d, t));
    }
    x += L;
    dy += L;
    dx += L;
  }
}

/*
 * out = x > hi ? hi : x < lo ? lo : x for n floats (NaN and -0 stay as they
 * are, as in the cpu backend); lo and hi come as their float bits.
 */
void clip(const f32* x, f32* out, int n, int lo_bits, int hi_bits) {
  union { int i; f32 f; } lo = {lo_bits}, hi = {hi_bits};
  const v128_t vlo = wasm_f32x4_splat(lo.f), vhi = wasm_f32x4_splat(hi.f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    /* pmin(a, b) = b < a ? b : a; pmax(a, b) = a < b ? b : a. */
    const v128_t v = wasm_f32x4_pmin(wasm_v128_load(x + i), vhi);
    wasm_v128_store(out + i, wasm_f32x4_pmax(v, vlo));
  }
  for (; i < n; i++) {
    const f32 v = x[i];
    out[i] = v > hi.f ? hi.f : v < lo.f ? lo.f : v;
  }
}

/*
 * ClipByValue's gradient for n floats: out = lo ≤ x ≤ hi ? dy : 0 (x NaN
 * gives 0, and so does any dy outside the range, NaN included, as tfjs's
 * where(x ≥ lo && x ≤ hi, dy, 0)); lo and hi come as their float bits.
 */
void clip_grad(const f32* x, const f32* dy, f32* out, int n, int lo_bits, int hi_bits) {
  union { int i; f32 f; } lo = {lo_bits}, hi = {hi_bits};
  const v128_t vlo = wasm_f32x4_splat(lo.f), vhi = wasm_f32x4_splat(hi.f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    const v128_t in = wasm_v128_and(wasm_f32x4_ge(v, vlo), wasm_f32x4_le(v, vhi));
    wasm_v128_store(out + i, wasm_v128_and(wasm_v128_load(dy + i), in));
  }
  for (; i < n; i++) out[i] = x[i] >= lo.f && x[i] <= hi.f ? dy[i] : 0.0f;
}

/* out = x · x for n floats. */
void square(const f32* x, f32* out, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    wasm_v128_store(out + i, wasm_f32x4_mul(v, v));
  }
  for (; i < n; i++) out[i] = x[i] * x[i];
}

/*
 * Depthwise filter gradient (channel multiplier 1) over output rows [r0, r1)
 * of the B·OH rows of dy, added into out ([KH·KW, C]):
 *   out[(kh·KW + kw)·C + c] += Σ_ow x[b, oh·sh + kh·dh − top, ow·sw + kw·dw − left, c] · dy[b, oh, ow, c]
 * x is the unpadded NHWC input [B, H, W, C]: taps over its edge (the
 * padding's zeros) are skipped. Vectors along the channels, 16 at a time,
 * summed over a tap's output columns in registers.
 */
void dw_filter_grad(const f32* x, int H, int W, int C, const f32* dy, int OH, int OW, int KH,
                    int KW, int sh, int sw, int dh, int dw, int top, int left, f32* out, int r0,
                    int r1) {
  for (int r = r0; r < r1; r++) {
    const int b = r / OH, oh = r % OH;
    const f32* dyr = dy + r * OW * C;
    for (int kh = 0; kh < KH; kh++) {
      const int ih = oh * sh + kh * dh - top;
      if (ih < 0 || ih >= H) continue;
      const f32* xr = x + (b * H + ih) * W * C;
      for (int kw = 0; kw < KW; kw++) {
        /* The output columns whose input column ow·sw + off lies in [0, W). */
        const int off = kw * dw - left;
        const int ow0 = off >= 0 ? 0 : (-off + sw - 1) / sw;
        int ow1 = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;
        if (ow1 > OW) ow1 = OW;
        if (ow0 >= ow1) continue;
        f32* o = out + (kh * KW + kw) * C;
        const int step = sw * C;
        int c = 0;
        for (; c + 16 <= C; c += 16) {
          v128_t a0 = wasm_v128_load(o + c), a1 = wasm_v128_load(o + c + 4);
          v128_t a2 = wasm_v128_load(o + c + 8), a3 = wasm_v128_load(o + c + 12);
          const f32* xp = xr + (ow0 * sw + off) * C + c;
          const f32* dp = dyr + ow0 * C + c;
          for (int ow = ow0; ow < ow1; ow++, xp += step, dp += C) {
            a0 = madd(wasm_v128_load(xp), wasm_v128_load(dp), a0);
            a1 = madd(wasm_v128_load(xp + 4), wasm_v128_load(dp + 4), a1);
            a2 = madd(wasm_v128_load(xp + 8), wasm_v128_load(dp + 8), a2);
            a3 = madd(wasm_v128_load(xp + 12), wasm_v128_load(dp + 12), a3);
          }
          wasm_v128_store(o + c, a0);
          wasm_v128_store(o + c + 4, a1);
          wasm_v128_store(o + c + 8, a2);
          wasm_v128_store(o + c + 12, a3);
        }
        for (; c + 4 <= C; c += 4) {
          v128_t a = wasm_v128_load(o + c);
          const f32* xp = xr + (ow0 * sw + off) * C + c;
          const f32* dp = dyr + ow0 * C + c;
          for (int ow = ow0; ow < ow1; ow++, xp += step, dp += C) {
            a = madd(wasm_v128_load(xp), wasm_v128_load(dp), a);
          }
          wasm_v128_store(o + c, a);
        }
        for (; c < C; c++) {
          f32 s = o[c];
          const f32* xp = xr + (ow0 * sw + off) * C + c;
          const f32* dp = dyr + ow0 * C + c;
          for (int ow = ow0; ow < ow1; ow++, xp += step, dp += C) s += *xp * *dp;
          o[c] = s;
        }
      }
    }
  }
}

/* out[i] = a[i] · b[i] for n floats (the same float products as the cpu backend's). */
void mul(const f32* a, const f32* b, f32* out, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    wasm_v128_store(out + i, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    wasm_v128_store(out + i + 4,
                    wasm_f32x4_mul(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4)));
    wasm_v128_store(out + i + 8,
                    wasm_f32x4_mul(wasm_v128_load(a + i + 8), wasm_v128_load(b + i + 8)));
    wasm_v128_store(out + i + 12,
                    wasm_f32x4_mul(wasm_v128_load(a + i + 12), wasm_v128_load(b + i + 12)));
  }
  for (; i + 4 <= n; i += 4)
    wasm_v128_store(out + i, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  for (; i < n; i++) out[i] = a[i] * b[i];
}

/* Lane i of v in all four lanes. */
#define LANE(v, i) wasm_i32x4_shuffle(v, v, i, i, i, i)

/*
 * The filter gradient of a 1×1, stride-1, unpadded convolution, a product
 * xᵀ·dy over rows [p0, p1), added into dw (the caller zeroes it):
 *   dw[c·O + o] += Σ_p x[p·C + c] · dy[p·O + o]
 * Tiles of 4 input × 8 output channels. A row's 4 inputs are one vector
 * load, broadcast lane by lane (conv_filter_grad loads each tap on its own,
 * through the window bases and tap offsets). Rows go in blocks of R, sized
 * so that a block of x and dy (R·(C + O) floats) stays in a 32 KiB L1
 * cache while every tile passes over it. Reads exactly the rows' C and O
 * floats (partial tiles read only what is there).
 */
void pw_filter_grad(const f32* x, int C, const f32* dy, int O, f32* dw, int p0, int p1) {
  int R = 8192 / (C + O);
  R = R < 16 ? 16 : R > 256 ? 256 : R;
  for (int b0 = p0; b0 < p1; b0 += R) {
    const int b1 = p1 - b0 < R ? p1 : b0 + R;
    for (int c = 0; c < C; c += 4) {
      const int nc = C - c;
      for (int o0 = 0; o0 < O; o0 += 8) {
        const int n = O - o0;
        v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00, c20 = c00,
               c21 = c00, c30 = c00, c31 = c00;
        const f32* xp = x + b0 * C + c;
        const f32* d = dy + b0 * O + o0;
        if (nc >= 4 && n >= 8) {
          for (int p = b0; p < b1; p++, xp += C, d += O) {
            const v128_t xv = wasm_v128_load(xp), d0 = wasm_v128_load(d),
                         d1 = wasm_v128_load(d + 4);
            madd_row(&c00, &c01, LANE(xv, 0), d0, d1);
            madd_row(&c10, &c11, LANE(xv, 1), d0, d1);
            madd_row(&c20, &c21, LANE(xv, 2), d0, d1);
            madd_row(&c30, &c31, LANE(xv, 3), d0, d1);
          }
        } else {
          for (int p = b0; p < b1; p++, xp += C, d += O) {
            const v128_t xv = load_n(xp, nc), d0 = load_n(d, n), d1 = load_n(d + 4, n - 4);
            madd_row(&c00, &c01, LANE(xv, 0), d0, d1);
            madd_row(&c10, &c11, LANE(xv, 1), d0, d1);
            madd_row(&c20, &c21, LANE(xv, 2), d0, d1);
            madd_row(&c30, &c31, LANE(xv, 3), d0, d1);
          }
        }
        f32* out = dw + c * O + o0;
        add_tile(out, O, n, nc, c00, c01, c10, c11, c20, c21, c30, c31);
      }
    }
  }
}

/*
 * Declares w00 .. w22, the nine weight vectors of a 3×3 depthwise filter laid
 * out [3, 3, C] (wc points at its first tap's channel c), n channels each.
 */
#define DW3X3_WEIGHTS(wc, C, n)                                                       \
  const v128_t w00 = load_n(wc, n), w01 = load_n((wc) + (C), n),                     \
               w02 = load_n((wc) + 2 * (C), n), w10 = load_n((wc) + 3 * (C), n),     \
               w11 = load_n((wc) + 4 * (C), n), w12 = load_n((wc) + 5 * (C), n),     \
               w20 = load_n((wc) + 6 * (C), n), w21 = load_n((wc) + 7 * (C), n),     \
               w22 = load_n((wc) + 8 * (C), n)

/*
 * Depthwise 3×3 convolution, channel multiplier 1, strides sh and sw of 1
 * or 2, no dilation, over output rows [r0, r1) of the B·OH rows:
 *   y[b, oh, ow, c] = act(bias[c] + Σ_{kh, kw} x[b, oh·sh + kh − top, ow·sw + kw − left, c] · w[kh, kw, c])
 * x is the unpadded input [B, H, W, C]: taps over its edge (the padding's
 * zeros) are skipped. For each 4 channels the nine weight vectors stay in
 * registers while the row's outputs are computed. bias (C floats) may be 0.
 */
void dw3x3(const f32* x, int H, int W, int C, const f32* w, int OH, int OW, int sh, int sw,
           int top, int left, f32* y, int r0, int r1, const f32* bias, int act) {
  for (int r = r0; r < r1; r++) {
    const int b = r / OH, oh = r % OH, ih = oh * sh - top;
    const int v0 = ih >= 0 && ih < H, v1 = ih + 1 >= 0 && ih + 1 < H, v2 = ih + 2 >= 0 && ih + 2 < H;
    const f32* x0 = x + ((b * H + ih) * W) * C;
    const f32* x1 = x0 + W * C;
    const f32* x2 = x1 + W * C;
    f32* yr = y + r * OW * C;
    // Output columns whose three taps all lie inside the row: [lo, hi).
    int lo = (left + sw - 1) / sw, hi = (W - 3 + left) / sw + 1;
    if (W - 3 + left < 0) hi = 0;
    if (hi > OW) hi = OW;
    if (lo > hi) lo = hi;
    for (int c = 0; c < C; c += 4) {
      const int n = C - c;
      DW3X3_WEIGHTS(w + c, C, n);
      const v128_t b0 = bias ? load_n(bias + c, n) : wasm_f32x4_splat(0.0f);
      for (int ow = 0; ow < OW; ow++) {
        const int iw = ow * sw - left;
        v128_t acc = b0;
        if (ow >= lo && ow < hi && n >= 4) {
          const int o = iw * C + c;
          if (v0) {
            acc = madd(wasm_v128_load(x0 + o), w00, acc);
            acc = madd(wasm_v128_load(x0 + o + C), w01, acc);
            acc = madd(wasm_v128_load(x0 + o + 2 * C), w02, acc);
          }
          if (v1) {
            acc = madd(wasm_v128_load(x1 + o), w10, acc);
            acc = madd(wasm_v128_load(x1 + o + C), w11, acc);
            acc = madd(wasm_v128_load(x1 + o + 2 * C), w12, acc);
          }
          if (v2) {
            acc = madd(wasm_v128_load(x2 + o), w20, acc);
            acc = madd(wasm_v128_load(x2 + o + C), w21, acc);
            acc = madd(wasm_v128_load(x2 + o + 2 * C), w22, acc);
          }
        } else {
          const int c0 = iw >= 0 && iw < W, c1 = iw + 1 >= 0 && iw + 1 < W,
                    c2 = iw + 2 >= 0 && iw + 2 < W;
          const int o = iw * C + c;
#define TAP(v, cv, xr, k, wv) \
  if (v && cv) acc = madd(load_n(xr + o + (k) * C, n), wv, acc);
          TAP(v0, c0, x0, 0, w00) TAP(v0, c1, x0, 1, w01) TAP(v0, c2, x0, 2, w02)
          TAP(v1, c0, x1, 0, w10) TAP(v1, c1, x1, 1, w11) TAP(v1, c2, x1, 2, w12)
          TAP(v2, c0, x2, 0, w20) TAP(v2, c1, x2, 1, w21) TAP(v2, c2, x2, 2, w22)
#undef TAP
        }
        store_n(yr + ow * C + c, activate(acc, act), n);
      }
    }
  }
}

/*
 * The input gradient of dw3x3 (no bias or activation), over rows [r0, r1)
 * of the B·H rows of dx, gathered:
 *   dx[b, ih, iw, c] = Σ_{kh, kw} dy[b, oh, ow, c] · w[kh, kw, c]
 * over the taps with oh·sh = ih + top − kh and ow·sw = iw + left − kw inside
 * dy (sh, sw of 1 or 2). Writes every element of its rows.
 */
void dw3x3_grad_input(const f32* dy, int OH, int OW, int C, const f32* w, int H, int W, int sh,
                      int sw, int top, int left, f32* dx, int r0, int r1) {
  const int hs = sh - 1, ws = sw - 1;
  for (int r = r0; r < r1; r++) {
    const int b = r / H, ih = r % H;
    // Row tap kh reads dy row (ih + top − kh) / sh when that is whole and inside.
    const int t0 = ih + top, t1 = t0 - 1, t2 = t0 - 2;
    const int v0 = t0 >= 0 && !(t0 & hs) && (t0 >> hs) < OH;
    const int v1 = t1 >= 0 && !(t1 & hs) && (t1 >> hs) < OH;
    const int v2 = t2 >= 0 && !(t2 & hs) && (t2 >> hs) < OH;
    const f32* d0 = dy + (b * OH + (v0 ? t0 >> hs : 0)) * OW * C;
    const f32* d1 = dy + (b * OH + (v1 ? t1 >> hs : 0)) * OW * C;
    const f32* d2 = dy + (b * OH + (v2 ? t2 >> hs : 0)) * OW * C;
    f32* xr = dx + r * W * C;
    for (int c = 0; c < C; c += 4) {
      const int n = C - c;
      DW3X3_WEIGHTS(w + c, C, n);
      for (int iw = 0; iw < W; iw++) {
        const int s0 = iw + left, s1 = s0 - 1, s2 = s0 - 2;
        const int c0 = s0 >= 0 && !(s0 & ws) && (s0 >> ws) < OW;
        const int c1 = s1 >= 0 && !(s1 & ws) && (s1 >> ws) < OW;
        const int c2 = s2 >= 0 && !(s2 & ws) && (s2 >> ws) < OW;
        const int o0 = c0 ? (s0 >> ws) * C + c : 0, o1 = c1 ? (s1 >> ws) * C + c : 0,
                  o2 = c2 ? (s2 >> ws) * C + c : 0;
        v128_t acc = wasm_f32x4_splat(0.0f);
        // The taps that reach this input, whole vectors or the last n channels.
#define TAP(v, cv, d, o, wv, LOAD) \
  if (v && cv) acc = madd(LOAD(d + o), wv, acc);
#define TAPS(LOAD)                                                                        \
  TAP(v0, c0, d0, o0, w00, LOAD) TAP(v0, c1, d0, o1, w01, LOAD) TAP(v0, c2, d0, o2, w02, LOAD) \
  TAP(v1, c0, d1, o0, w10, LOAD) TAP(v1, c1, d1, o1, w11, LOAD) TAP(v1, c2, d1, o2, w12, LOAD) \
  TAP(v2, c0, d2, o0, w20, LOAD) TAP(v2, c1, d2, o1, w21, LOAD) TAP(v2, c2, d2, o2, w22, LOAD)
#define LOAD_TAIL(p) load_n(p, n)
        if (n >= 4) {
          TAPS(wasm_v128_load)
        } else {
          TAPS(LOAD_TAIL)
        }
#undef LOAD_TAIL
#undef TAPS
#undef TAP
        store_n(xr + iw * C + c, acc, n);
      }
    }
  }
}
