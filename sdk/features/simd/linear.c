/*
 * SIMD kernels of the linear classifiers on CNN codes (see ../linear.ts):
 * the codes' statistics and standardization, the Crammer–Singer SVM's
 * sweep, the softmax's loss and gradient, evaluations (loss and accuracy),
 * and the scores, gradient products and row updates the tests check them
 * by. The module owns its memory (exported) and has no data segment; the
 * caller lays out every array in it and checks every pointer and size first
 * (../_linear_kernels.ts).
 *
 * Codes `x` are float32, `n x d`, row-major. Weights `w` are float64,
 * `k x (d + 1)`, one row per class with that class's bias last. The SVM's
 * sweep, the softmax and evaluate32 score in float32; scores, grad_add,
 * row_update and evaluate in float64 (codes promoted). Plain multiply and
 * add rather than fused or relaxed operations, so results are the same on
 * every machine.
 *
 * Built by build.sh (clang, wasm32, SIMD128).
 */
#include <wasm_simd128.h>

typedef float f32;
typedef double f64;

/* The four codes x[j..j+3] as two pairs of float64. */
static inline void load4(const f32* x, v128_t* lo, v128_t* hi) {
  v128_t v = wasm_v128_load(x);
  *lo = wasm_f64x2_promote_low_f32x4(v);
  *hi = wasm_f64x2_promote_low_f32x4(wasm_i64x2_shuffle(v, v, 1, 0));
}

static inline v128_t fmadd(v128_t a, v128_t b, v128_t c) {
  return wasm_f64x2_add(wasm_f64x2_mul(a, b), c);
}

static inline f64 hsum(v128_t v) {
  return wasm_f64x2_extract_lane(v, 0) + wasm_f64x2_extract_lane(v, 1);
}

/* One code's score for one class (weights wc, bias last), summed as scores() sums it. */
static f64 row_score(const f32* x, int d, const f64* wc) {
  const int d4 = d & ~3;
  v128_t a = wasm_f64x2_splat(0), b = wasm_f64x2_splat(0);
  for (int j = 0; j < d4; j += 4) {
    v128_t lo, hi;
    load4(x + j, &lo, &hi);
    a = fmadd(lo, wasm_v128_load(wc + j), a);
    b = fmadd(hi, wasm_v128_load(wc + j + 2), b);
  }
  f64 s = hsum(wasm_f64x2_add(a, b)) + wc[d];
  for (int j = d4; j < d; j++) s += (f64)x[j] * wc[j];
  return s;
}

/*
 * The scores of two codes (x0, x1) for two classes (w0, w1), each summed
 * exactly as row_score sums it: each code's values are widened once for both
 * classes.
 */
static inline void score_2x2(const f32* x0, const f32* x1, int d, const f64* w0, const f64* w1,
                             f64* s00, f64* s01, f64* s10, f64* s11) {
  const int d4 = d & ~3;
  v128_t a00 = wasm_f64x2_splat(0), b00 = a00, a01 = a00, b01 = a00;
  v128_t a10 = a00, b10 = a00, a11 = a00, b11 = a00;
  for (int j = 0; j < d4; j += 4) {
    v128_t lo0, hi0, lo1, hi1;
    load4(x0 + j, &lo0, &hi0);
    load4(x1 + j, &lo1, &hi1);
    const v128_t u0 = wasm_v128_load(w0 + j), v0 = wasm_v128_load(w0 + j + 2);
    const v128_t u1 = wasm_v128_load(w1 + j), v1 = wasm_v128_load(w1 + j + 2);
    a00 = fmadd(lo0, u0, a00);
    b00 = fmadd(hi0, v0, b00);
    a01 = fmadd(lo0, u1, a01);
    b01 = fmadd(hi0, v1, b01);
    a10 = fmadd(lo1, u0, a10);
    b10 = fmadd(hi1, v0, b10);
    a11 = fmadd(lo1, u1, a11);
    b11 = fmadd(hi1, v1, b11);
  }
  f64 t00 = hsum(wasm_f64x2_add(a00, b00)) + w0[d], t01 = hsum(wasm_f64x2_add(a01, b01)) + w1[d];
  f64 t10 = hsum(wasm_f64x2_add(a10, b10)) + w0[d], t11 = hsum(wasm_f64x2_add(a11, b11)) + w1[d];
  for (int j = d4; j < d; j++) {
    t00 += (f64)x0[j] * w0[j];
    t01 += (f64)x0[j] * w1[j];
    t10 += (f64)x1[j] * w0[j];
    t11 += (f64)x1[j] * w1[j];
  }
  *s00 = t00;
  *s01 = t01;
  *s10 = t10;
  *s11 = t11;
}

/* The k scores of each of the n codes x into out (row-major), two codes by two classes at a time. */
static void score_rows(const f32* x, int n, int d, const f64* w, int k, f64* out) {
  const int ld = d + 1;
  int i = 0;
  for (; i + 2 <= n; i += 2) {
    const f32* x0 = x + (long)i * d;
    f64* o = out + (long)i * k;
    int m = 0;
    for (; m + 2 <= k; m += 2) {
      const f64* wm = w + (long)m * ld;
      score_2x2(x0, x0 + d, d, wm, wm + ld, o + m, o + m + 1, o + k + m, o + k + m + 1);
    }
    for (; m < k; m++) {
      o[m] = row_score(x0, d, w + (long)m * ld);
      o[k + m] = row_score(x0 + d, d, w + (long)m * ld);
    }
  }
  for (; i < n; i++) {
    for (int m = 0; m < k; m++) out[(long)i * k + m] = row_score(x + (long)i * d, d, w + (long)m * ld);
  }
}

/*
 * out[i*k + m] = sum_j x[i*d + j] * w[m*(d+1) + j] + w[m*(d+1) + d] for
 * i < n, m < k.
 */
void scores(const f32* x, int n, int d, const f64* w, int k, f64* out) {
  score_rows(x, n, d, w, k, out);
}

/* wc[j] += v * x[j] for j < d, and the bias wc[d] += v. */
static void add_row(const f32* x, int d, f64 v, f64* wc) {
  const int d4 = d & ~3;
  const v128_t vv = wasm_f64x2_splat(v);
  for (int j = 0; j < d4; j += 4) {
    v128_t lo, hi;
    load4(x + j, &lo, &hi);
    wasm_v128_store(wc + j, fmadd(lo, vv, wasm_v128_load(wc + j)));
    wasm_v128_store(wc + j + 2, fmadd(hi, vv, wasm_v128_load(wc + j + 2)));
  }
  for (int j = d4; j < d; j++) wc[j] += v * x[j];
  wc[d] += v;
}

/*
 * g[m*(d+1) + j] += sum_i delta[i*k + m] * x[i*d + j], and the bias column
 * g[m*(d+1) + d] += sum_i delta[i*k + m], for i < n, m < k. Codes go four at
 * a time so each row of g is read and written once per four codes.
 */
void grad_add(const f32* x, int n, int d, const f64* delta, int k, f64* g) {
  const int ld = d + 1;
  const int d4 = d & ~3;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const f32* x0 = x + (long)i * d;
    const f32* x1 = x0 + d;
    const f32* x2 = x1 + d;
    const f32* x3 = x2 + d;
    const f64* e = delta + (long)i * k;
    /* Each group of four values of the four codes is widened once, for every class. */
    for (int j = 0; j < d4; j += 4) {
      v128_t lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3;
      load4(x0 + j, &lo0, &hi0);
      load4(x1 + j, &lo1, &hi1);
      load4(x2 + j, &lo2, &hi2);
      load4(x3 + j, &lo3, &hi3);
      for (int m = 0; m < k; m++) {
        const v128_t v0 = wasm_v128_load64_splat(e + m);
        const v128_t v1 = wasm_v128_load64_splat(e + k + m);
        const v128_t v2 = wasm_v128_load64_splat(e + 2 * k + m);
        const v128_t v3 = wasm_v128_load64_splat(e + 3 * k + m);
        f64* gm = g + (long)m * ld;
        v128_t lo = wasm_f64x2_mul(lo0, v0), hi = wasm_f64x2_mul(hi0, v0);
        lo = fmadd(lo1, v1, lo);
        hi = fmadd(hi1, v1, hi);
        lo = fmadd(lo2, v2, lo);
        hi = fmadd(hi2, v2, hi);
        lo = fmadd(lo3, v3, lo);
        hi = fmadd(hi3, v3, hi);
        wasm_v128_store(gm + j, wasm_f64x2_add(wasm_v128_load(gm + j), lo));
        wasm_v128_store(gm + j + 2, wasm_f64x2_add(wasm_v128_load(gm + j + 2), hi));
      }
    }
    for (int m = 0; m < k; m++) {
      const f64 e0 = e[m], e1 = e[k + m], e2 = e[2 * k + m], e3 = e[3 * k + m];
      f64* gm = g + (long)m * ld;
      for (int j = d4; j < d; j++) {
        gm[j] += e0 * x0[j] + e1 * x1[j] + e2 * x2[j] + e3 * x3[j];
      }
      gm[d] += e0 + e1 + e2 + e3;
    }
  }
  for (; i < n; i++) {
    for (int m = 0; m < k; m++) add_row(x + (long)i * d, d, delta[(long)i * k + m], g + (long)m * ld);
  }
}

/*
 * One code's update: w[c*(d+1) + j] += v * x[j] and the bias
 * w[c*(d+1) + d] += v, for the nz pairs (c, v) = (cls[t], val[t]).
 */
void row_update(const f32* x, int d, f64* w, const int* cls, const f64* val, int nz) {
  const int ld = d + 1;
  for (int t = 0; t < nz; t++) add_row(x, d, val[t], w + (long)cls[t] * ld);
}

static inline f64 min64(f64 a, f64 b) { return a < b ? a : b; }

/* Whether the m-th active class of a code is at its bound with a gradient below min_g. */
static inline int shrinkable(const f64* alpha, const int* aidx, int m, int yi, f64 c,
                             const f64* g, f64 min_g) {
  return alpha[aidx[m]] == (m == yi ? c : 0) && g[m] < min_g;
}

/*
 * One code's score for one class in float32: x times the float32 weights
 * wc (bias last), summed in two four-lane accumulators (the even and the odd
 * groups of four values), the two added, their lanes added pairwise, then
 * the bias, then the values past the last group of four, in order.
 */
static inline __attribute__((always_inline)) f32 score32_fold(v128_t a0, v128_t a1) {
  const v128_t v = wasm_f32x4_add(a0, a1);
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

/*
 * The float32 scores of one code for classes wc and, when two, wn, as
 * described above; each group of the code's values is loaded once for both.
 */
static inline __attribute__((always_inline)) void score32(const f32* x, int d, const f32* wc,
                                                          const f32* wn, int two, f32* sc,
                                                          f32* sn) {
  const int d4 = d & ~3;
  v128_t a0 = wasm_f32x4_splat(0), a1 = a0, b0 = a0, b1 = a0;
  int j = 0;
  for (; j + 8 <= d4; j += 8) {
    const v128_t x0 = wasm_v128_load(x + j), x1 = wasm_v128_load(x + j + 4);
    a0 = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(wc + j)), a0);
    a1 = wasm_f32x4_add(wasm_f32x4_mul(x1, wasm_v128_load(wc + j + 4)), a1);
    if (two) {
      b0 = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(wn + j)), b0);
      b1 = wasm_f32x4_add(wasm_f32x4_mul(x1, wasm_v128_load(wn + j + 4)), b1);
    }
  }
  if (j < d4) {
    const v128_t x0 = wasm_v128_load(x + j);
    a0 = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(wc + j)), a0);
    if (two) b0 = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(wn + j)), b0);
  }
  f32 s = score32_fold(a0, a1) + wc[d];
  for (j = d4; j < d; j++) s += x[j] * wc[j];
  *sc = s;
  if (two) {
    f32 t = score32_fold(b0, b1) + wn[d];
    for (j = d4; j < d; j++) t += x[j] * wn[j];
    *sn = t;
  }
}

/*
 * The float32 scores of one code for the four classes w0 .. w3, each summed
 * exactly as score32 sums it (so the same values), with each group of the
 * code's values loaded once for all four: eight independent sums in flight.
 */
static inline __attribute__((always_inline)) void score32x4(const f32* x, int d, const f32* w0,
                                                            const f32* w1, const f32* w2,
                                                            const f32* w3, f32* s) {
  const int d4 = d & ~3;
  v128_t a0 = wasm_f32x4_splat(0), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, e0 = a0, e1 = a0;
  int j = 0;
  for (; j + 8 <= d4; j += 8) {
    const v128_t x0 = wasm_v128_load(x + j), x1 = wasm_v128_load(x + j + 4);
    a0 = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(w0 + j)), a0);
    a1 = wasm_f32x4_add(wasm_f32x4_mul(x1, wasm_v128_load(w0 + j + 4)), a1);
    b0 = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(w1 + j)), b0);
    b1 = wasm_f32x4_add(wasm_f32x4_mul(x1, wasm_v128_load(w1 + j + 4)), b1);
    c0 = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(w2 + j)), c0);
    c1 = wasm_f32x4_add(wasm_f32x4_mul(x1, wasm_v128_load(w2 + j + 4)), c1);
    e0 = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(w3 + j)), e0);
    e1 = wasm_f32x4_add(wasm_f32x4_mul(x1, wasm_v128_load(w3 + j + 4)), e1);
  }
  if (j < d4) {
    const v128_t x0 = wasm_v128_load(x + j);
    a0 = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(w0 + j)), a0);
    b0 = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(w1 + j)), b0);
    c0 = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(w2 + j)), c0);
    e0 = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(w3 + j)), e0);
  }
  f32 t0 = score32_fold(a0, a1) + w0[d], t1 = score32_fold(b0, b1) + w1[d];
  f32 t2 = score32_fold(c0, c1) + w2[d], t3 = score32_fold(e0, e1) + w3[d];
  for (j = d4; j < d; j++) t0 += x[j] * w0[j];
  for (j = d4; j < d; j++) t1 += x[j] * w1[j];
  for (j = d4; j < d; j++) t2 += x[j] * w2[j];
  for (j = d4; j < d; j++) t3 += x[j] * w3[j];
  s[0] = t0;
  s[1] = t1;
  s[2] = t2;
  s[3] = t3;
}

/* How many codes ahead cs_sweep reads, and where it leaves the sum of what it read. */
#define READ_AHEAD 4
static volatile f64 read_ahead_sink;

/*
 * wf + wlo (the weights as float32 plus the rounding errors their sums left,
 * negated: the value is wf - wlo) += v * x, with the bias wf[d] last += v:
 * compensated (Kahan) summation, so the weights sum their updates to within
 * about float64's rounding while the codes are scored from wf alone.
 */
static void add_row_comp(const f32* x, int d, f32 v, f32* wf, f32* wlo) {
  const int d4 = d & ~3;
  const v128_t vv = wasm_f32x4_splat(v);
  for (int j = 0; j < d4; j += 4) {
    const v128_t y = wasm_f32x4_sub(wasm_f32x4_mul(wasm_v128_load(x + j), vv), wasm_v128_load(wlo + j));
    const v128_t h = wasm_v128_load(wf + j);
    const v128_t t = wasm_f32x4_add(h, y);
    wasm_v128_store(wlo + j, wasm_f32x4_sub(wasm_f32x4_sub(t, h), y));
    wasm_v128_store(wf + j, t);
  }
  for (int j = d4; j <= d; j++) {
    const f32 y = (j < d ? x[j] * v : v) - wlo[j];
    const f32 t = wf[j] + y;
    wlo[j] = (t - wf[j]) - y;
    wf[j] = t;
  }
}

/*
 * One sweep of the Crammer–Singer dual coordinate descent with shrinking
 * (liblinear's Solver_MCSVM_CS) over the codes index[0 .. active), in that
 * order (../_linear_svm.ts runs the passes; the tests hold a line-by-line
 * JavaScript reference).
 *
 * The sweep keeps the weights as wf - wlo (float32 weights and their
 * compensation, see add_row_comp), scores the codes in float32 from wf
 * (score32), and writes them to the float64 w at its end; the dual
 * variables and the sub-problem are float64.
 *
 * Per code i: alpha[i*k ..] its dual variables, aidx[i*k ..] the order of
 * its classes (the first act_of[i] active), y_index[i] where its label sits
 * in that order, qd[i] = 1 + ||x_i||², last_loss[i] and last_ok[i] its hinge
 * loss and correctness before its update. Scratch: f scratch of 6k float64,
 * iscratch of k int32. Writes the largest violation to *stopping; returns
 * the new number of active codes, or -1 when an index or label read from
 * memory is out of range (nothing is written past the arrays).
 */
int cs_sweep(const f32* x, int n, int d, int k, f64* w, f32* wf, f32* wlo, const int* y,
             int* y_index, const f64* qd, f64* alpha, int* aidx_all, int* act_of, int* index, int active,
             f64 c, f64* last_loss, int* last_ok, f64* f, int* iscratch, f64* stopping) {
  const int ld = d + 1;
  f64* sc = f;
  f64* g = f + k;
  f64* b = f + 2 * k;
  f64* dd = f + 3 * k;
  f64* alpha_new = f + 4 * k;
  f64* d_val = f + 5 * k;
  int* d_ind = iscratch;
  f64 stop = -__builtin_inf();
  f64 ahead = 0;
  for (int s = 0; s < active; s++) {
    /*
     * The code READ_AHEAD places on is read now, one value per cache line:
     * the codes are visited at random, and their data would otherwise
     * arrive only when wanted.
     */
    if (s + READ_AHEAD < active) {
      const int t = index[s + READ_AHEAD];
      if (t >= 0 && t < n) {
        const f32* xt = x + (long)t * d;
        for (int j = 0; j < d; j += 16) ahead += xt[j];
        if (d > 0) ahead += xt[d - 1];
        ahead += alpha[(long)t * k] + alpha[(long)t * k + k - 1] + qd[t] + last_loss[t];
        ahead += aidx_all[(long)t * k] + aidx_all[(long)t * k + k - 1] + act_of[t] + y_index[t] +
                 y[t] + last_ok[t];
      }
    }
    const int i = index[s];
    if (i < 0 || i >= n) return -1;
    const int label = y[i];
    int act = act_of[i];
    int yi = y_index[i];
    if (label < 0 || label >= k || act < 0 || act > k || yi < 0 || yi >= k) return -1;
    const f32* xi = x + (long)i * d;
    f64* al = alpha + (long)i * k;
    int* aidx = aidx_all + (long)i * k;
    for (int m = 0; m < k; m++) {
      if (aidx[m] < 0 || aidx[m] >= k) return -1;
    }
    const f64 ai = qd[i];
    /*
     * Scores of the classes still active for this code, and of its label:
     * as in liblinear, the shrunk classes are neither scored nor updated.
     */
    {
      int m = 0;
      for (; m + 4 <= act; m += 4) {
        f32 s4[4];
        score32x4(xi, d, wf + (long)aidx[m] * ld, wf + (long)aidx[m + 1] * ld,
                  wf + (long)aidx[m + 2] * ld, wf + (long)aidx[m + 3] * ld, s4);
        sc[aidx[m]] = s4[0];
        sc[aidx[m + 1]] = s4[1];
        sc[aidx[m + 2]] = s4[2];
        sc[aidx[m + 3]] = s4[3];
      }
      for (; m + 2 <= act; m += 2) {
        f32 s0, s1;
        score32(xi, d, wf + (long)aidx[m] * ld, wf + (long)aidx[m + 1] * ld, 1, &s0, &s1);
        sc[aidx[m]] = s0;
        sc[aidx[m + 1]] = s1;
      }
      /* The last active class and, when shrunk, the label: two at once where both are wanted. */
      if (m < act && yi >= act) {
        f32 s0, s1;
        score32(xi, d, wf + (long)aidx[m] * ld, wf + (long)label * ld, 1, &s0, &s1);
        sc[aidx[m]] = s0;
        sc[label] = s1;
      } else if (m < act || yi >= act) {
        const int cls = m < act ? aidx[m] : label;
        f32 s0, s1;
        score32(xi, d, wf + (long)cls * ld, wf, 0, &s0, &s1);
        sc[cls] = s0;
      }
    }
    /*
     * The code's hinge loss and correctness now, before its update, over
     * those classes (a shrunk class was below the others' margin when it
     * left): what the pass reports.
     */
    f64 mx = sc[label];
    int ok = 1;
    for (int m = 0; m < act; m++) {
      const int cls = aidx[m];
      if (cls == label) continue;
      if (sc[cls] + 1 > mx) mx = sc[cls] + 1;
      if (sc[cls] > sc[label] || (sc[cls] == sc[label] && cls < label)) ok = 0;
    }
    last_loss[i] = mx - sc[label];
    last_ok[i] = ok;
    for (int m = 0; m < act; m++) {
      const int cls = aidx[m];
      g[m] = sc[cls] + (cls == label ? 0 : 1);
    }
    f64 min_g = __builtin_inf();
    f64 max_g = -__builtin_inf();
    for (int m = 0; m < act; m++) {
      if (al[aidx[m]] < 0 && g[m] < min_g) min_g = g[m];
      if (g[m] > max_g) max_g = g[m];
    }
    if (yi < act && al[label] < c && g[yi] < min_g) min_g = g[yi];
    for (int m = 0; m < act; m++) {
      if (!shrinkable(al, aidx, m, yi, c, g, min_g)) continue;
      act--;
      while (act > m) {
        if (!shrinkable(al, aidx, act, yi, c, g, min_g)) {
          const int t = aidx[m];
          aidx[m] = aidx[act];
          aidx[act] = t;
          const f64 gt = g[m];
          g[m] = g[act];
          g[act] = gt;
          if (yi == act) yi = m;
          else if (yi == m) yi = act;
          break;
        }
        act--;
      }
    }
    y_index[i] = yi;
    act_of[i] = act;
    if (act <= 1) {
      active--;
      const int t = index[s];
      index[s] = index[active];
      index[active] = t;
      s--;
      continue;
    }
    if (max_g - min_g <= 1e-12) continue;
    if (max_g - min_g > stop) stop = max_g - min_g;
    for (int m = 0; m < act; m++) b[m] = g[m] - ai * al[aidx[m]];
    /* The closed-form sub-problem (liblinear's solve_sub_problem). */
    for (int m = 0; m < act; m++) dd[m] = b[m];
    if (yi < act) dd[yi] += ai * c;
    for (int m = 1; m < act; m++) {
      const f64 v = dd[m];
      int t = m - 1;
      while (t >= 0 && dd[t] > v) {
        dd[t + 1] = dd[t];
        t--;
      }
      dd[t + 1] = v;
    }
    f64 beta = dd[act - 1] - ai * c;
    int r = 1;
    while (r < act && beta < r * dd[act - 1 - r]) {
      beta += dd[act - 1 - r];
      r++;
    }
    beta /= r;
    for (int m = 0; m < act; m++) {
      alpha_new[m] = m == yi ? min64(c, (beta - b[m]) / ai) : min64(0, (beta - b[m]) / ai);
    }
    int nz = 0;
    for (int m = 0; m < act; m++) {
      const int cls = aidx[m];
      const f64 delta = alpha_new[m] - al[cls];
      al[cls] = alpha_new[m];
      if (__builtin_fabs(delta) >= 1e-12) {
        d_ind[nz] = cls;
        d_val[nz] = delta;
        nz++;
      }
    }
    for (int t = 0; t < nz; t++) {
      add_row_comp(xi, d, (f32)d_val[t], wf + (long)d_ind[t] * ld, wlo + (long)d_ind[t] * ld);
    }
  }
  for (int t = 0; t < k * ld; t++) w[t] = (f64)wf[t] - (f64)wlo[t];
  read_ahead_sink = ahead;
  *stopping = stop;
  return active;
}

/*
 * The softmax objective's kernel, in float32 four lanes wide: one lane per
 * code, four codes at a time. Plain multiply and add (no fused or relaxed
 * operations) and exp and log of our own, so results are the same on every
 * machine.
 */
typedef v128_t f32x4;

static inline f32x4 splat32(f32 v) { return wasm_f32x4_splat(v); }

/* exp(v) for v <= 0 (Cephes' expf: 2^n times a degree-6 polynomial on |r| <= ln2/2). */
static inline f32x4 exp4(f32x4 v) {
  v = wasm_f32x4_max(v, splat32(-87.0f));
  const f32x4 n = wasm_f32x4_nearest(wasm_f32x4_mul(v, splat32(1.44269504088896341f)));
  f32x4 r = wasm_f32x4_sub(v, wasm_f32x4_mul(n, splat32(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, splat32(-2.12194440e-4f)));
  f32x4 p = splat32(1.9875691500e-4f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat32(1.3981999507e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat32(8.3334519073e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat32(4.1665795894e-2f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat32(1.6666665459e-1f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat32(5.0000001201e-1f));
  p = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(p, r), r), r), splat32(1.0f));
  const v128_t two_n = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(p, two_n);
}

/*
 * log(v) for normal v > 0: v = 2^e * m with m in [sqrt(1/2), sqrt(2)), and
 * log m = 2 atanh(t), t = (m - 1) / (m + 1), |t| < 0.172, to t^9.
 */
static inline f32x4 log4(f32x4 v) {
  const v128_t bits = v;
  v128_t e = wasm_i32x4_sub(wasm_u32x4_shr(bits, 23), wasm_i32x4_splat(127));
  f32x4 m = wasm_v128_or(wasm_v128_and(bits, wasm_i32x4_splat(0x7fffff)), wasm_i32x4_splat(0x3f800000));
  const v128_t big = wasm_f32x4_gt(m, splat32(1.41421356f));
  m = wasm_v128_bitselect(wasm_f32x4_mul(m, splat32(0.5f)), m, big);
  e = wasm_i32x4_sub(e, big);
  const f32x4 t = wasm_f32x4_div(wasm_f32x4_sub(m, splat32(1.0f)), wasm_f32x4_add(m, splat32(1.0f)));
  const f32x4 t2 = wasm_f32x4_mul(t, t);
  f32x4 p = splat32(1.0f / 9);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, t2), splat32(1.0f / 7));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, t2), splat32(1.0f / 5));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, t2), splat32(1.0f / 3));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, t2), splat32(1.0f));
  const f32x4 logm = wasm_f32x4_mul(wasm_f32x4_add(t, t), p);
  return wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(e), splat32(0.693147181f)), logm);
}

/* (sum of a, sum of b, sum of c, sum of d): four dot products' partial sums folded. */
static inline f32x4 fold4(f32x4 a, f32x4 b, f32x4 c, f32x4 d) {
  const f32x4 ab = wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  const f32x4 cd = wasm_f32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

/*
 * Four codes' scores for classes m (wm) and, when two, m + 1 (wn): each
 * code's values are loaded once for both classes. Inlined into its callers
 * with `two` constant, so each gets a loop of its own.
 */
static inline __attribute__((always_inline)) void score2(const f32* x0, const f32* x1,
                                                         const f32* x2, const f32* x3,
                                                         const f32* wm, const f32* wn, int d,
                                                         int two, f32x4* sm, f32x4* sn) {
  const int d4 = d & ~3;
  f32x4 a0 = splat32(0), a1 = splat32(0), a2 = splat32(0), a3 = splat32(0);
  f32x4 b0 = splat32(0), b1 = splat32(0), b2 = splat32(0), b3 = splat32(0);
  for (int j = 0; j < d4; j += 4) {
    const f32x4 v0 = wasm_v128_load(x0 + j), v1 = wasm_v128_load(x1 + j);
    const f32x4 v2 = wasm_v128_load(x2 + j), v3 = wasm_v128_load(x3 + j);
    const f32x4 wv = wasm_v128_load(wm + j);
    a0 = wasm_f32x4_add(wasm_f32x4_mul(v0, wv), a0);
    a1 = wasm_f32x4_add(wasm_f32x4_mul(v1, wv), a1);
    a2 = wasm_f32x4_add(wasm_f32x4_mul(v2, wv), a2);
    a3 = wasm_f32x4_add(wasm_f32x4_mul(v3, wv), a3);
    if (two) {
      const f32x4 wu = wasm_v128_load(wn + j);
      b0 = wasm_f32x4_add(wasm_f32x4_mul(v0, wu), b0);
      b1 = wasm_f32x4_add(wasm_f32x4_mul(v1, wu), b1);
      b2 = wasm_f32x4_add(wasm_f32x4_mul(v2, wu), b2);
      b3 = wasm_f32x4_add(wasm_f32x4_mul(v3, wu), b3);
    }
  }
  *sm = wasm_f32x4_add(fold4(a0, a1, a2, a3), splat32(wm[d]));
  if (two) *sn = wasm_f32x4_add(fold4(b0, b1, b2, b3), splat32(wn[d]));
  for (int j = d4; j < d; j++) {
    const f32x4 v = wasm_f32x4_make(x0[j], x1[j], x2[j], x3[j]);
    *sm = wasm_f32x4_add(*sm, wasm_f32x4_mul(v, splat32(wm[j])));
    if (two) *sn = wasm_f32x4_add(*sn, wasm_f32x4_mul(v, splat32(wn[j])));
  }
}

/* The sum over the four codes of their values times lane r of e (e0..e3 the lanes splat). */
static inline f32x4 wsum4(f32x4 v0, f32x4 v1, f32x4 v2, f32x4 v3, f32x4 e0, f32x4 e1, f32x4 e2,
                          f32x4 e3) {
  return wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(v0, e0), wasm_f32x4_mul(v1, e1)),
                        wasm_f32x4_add(wasm_f32x4_mul(v2, e2), wasm_f32x4_mul(v3, e3)));
}

static inline f32 lane_sum(f32x4 v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

#define SPLAT_LANES(v, p) \
  const f32x4 p##0 = wasm_i32x4_shuffle(v, v, 0, 0, 0, 0); \
  const f32x4 p##1 = wasm_i32x4_shuffle(v, v, 1, 1, 1, 1); \
  const f32x4 p##2 = wasm_i32x4_shuffle(v, v, 2, 2, 2, 2); \
  const f32x4 p##3 = wasm_i32x4_shuffle(v, v, 3, 3, 3, 3)

/*
 * gm += the four codes weighted by the lanes of dm, and gn likewise by dn
 * when two (the bias, last, by the lanes' sum). As score2, inlined with
 * `two` constant.
 */
static inline __attribute__((always_inline)) void grad2(const f32* x0, const f32* x1,
                                                        const f32* x2, const f32* x3, f32* gm,
                                                        f32* gn, f32x4 dm, f32x4 dn, int d,
                                                        int two) {
  const int d4 = d & ~3;
  SPLAT_LANES(dm, e);
  SPLAT_LANES(dn, u);
  for (int j = 0; j < d4; j += 4) {
    const f32x4 v0 = wasm_v128_load(x0 + j), v1 = wasm_v128_load(x1 + j);
    const f32x4 v2 = wasm_v128_load(x2 + j), v3 = wasm_v128_load(x3 + j);
    wasm_v128_store(gm + j, wasm_f32x4_add(wasm_v128_load(gm + j), wsum4(v0, v1, v2, v3, e0, e1, e2, e3)));
    if (two) {
      wasm_v128_store(gn + j, wasm_f32x4_add(wasm_v128_load(gn + j), wsum4(v0, v1, v2, v3, u0, u1, u2, u3)));
    }
  }
  for (int j = d4; j < d; j++) {
    const f32x4 v = wasm_f32x4_make(x0[j], x1[j], x2[j], x3[j]);
    gm[j] += lane_sum(wasm_f32x4_mul(v, dm));
    if (two) gn[j] += lane_sum(wasm_f32x4_mul(v, dn));
  }
  gm[d] += lane_sum(dm);
  if (two) gn[d] += lane_sum(dn);
}

/* Codes per flush of the float32 gradient into the float64 one: the float32 sums stay short. */
#define FLUSH_ROWS 256

static void flush(f32* gf, f64* g, int size, f64 scale) {
  for (int t = 0; t < size; t++) {
    g[t] += (f64)gf[t] * scale;
    gf[t] = 0;
  }
}

/*
 * The four codes from row i of x (n codes of d values, labels y) that a
 * SIMD group scores, a lane each: past the last code, lanes repeat it, and
 * `live` masks them out of every sum.
 */
typedef struct {
  const f32* x[4];
  v128_t yv;
  v128_t live;
  /* The number of real codes, 1 to 4. */
  int valid;
} group4_t;

static inline __attribute__((always_inline)) group4_t group4(const f32* x, const int* y, int n,
                                                             int d, int i) {
  group4_t g;
  const int last = n - 1;
  int rows[4];
  for (int j = 0; j < 4; j++) {
    rows[j] = i + j < last ? i + j : last;
    g.x[j] = x + (long)rows[j] * d;
  }
  g.valid = n - i < 4 ? n - i : 4;
  g.live = wasm_i32x4_lt(wasm_i32x4_make(0, 1, 2, 3), wasm_i32x4_splat(g.valid));
  g.yv = wasm_i32x4_make(y[rows[0]], y[rows[1]], y[rows[2]], y[rows[3]]);
  return g;
}

/* Adds the first `count` lanes of v to *acc in float64, lane by lane. */
static inline void add_lanes(f64* acc, f32x4 v, int count) {
  *acc += (f64)wasm_f32x4_extract_lane(v, 0);
  if (count > 1) *acc += (f64)wasm_f32x4_extract_lane(v, 1);
  if (count > 2) *acc += (f64)wasm_f32x4_extract_lane(v, 2);
  if (count > 3) *acc += (f64)wasm_f32x4_extract_lane(v, 3);
}

/* 1 when every one of the n labels y is a class from 0 to k - 1. */
static inline int labels_ok(const int* y, int n, int k) {
  for (int i = 0; i < n; i++) {
    if (y[i] < 0 || y[i] >= k) return 0;
  }
  return 1;
}

/*
 * Four codes' scores for the k classes (weights wf, float32, bias last) into
 * sf (class by class, a lane per code), with each lane's highest score mx,
 * its first class best, and the score sy of its label (yv).
 */
static inline __attribute__((always_inline)) void forward4(const f32* x0, const f32* x1,
                                                           const f32* x2, const f32* x3, int d,
                                                           const f32* wf, int k, v128_t yv,
                                                           f32* sf, f32x4* mx_out, f32x4* sy_out,
                                                           v128_t* best_out) {
  const int ld = d + 1;
  f32x4 mx = splat32(-__builtin_inff()), sy = splat32(0);
  v128_t best = wasm_i32x4_splat(0);
  for (int m = 0; m < k; m += 2) {
    const f32* wm = wf + (long)m * ld;
    f32x4 pair[2];
    if (m + 1 < k) score2(x0, x1, x2, x3, wm, wm + ld, d, 1, &pair[0], &pair[1]);
    else score2(x0, x1, x2, x3, wm, wm, d, 0, &pair[0], &pair[1]);
    for (int c = m; c < m + 2 && c < k; c++) {
      const f32x4 s = pair[c - m];
      wasm_v128_store(sf + 4 * c, s);
      const v128_t higher = wasm_f32x4_gt(s, mx);
      mx = wasm_v128_bitselect(s, mx, higher);
      best = wasm_v128_bitselect(wasm_i32x4_splat(c), best, higher);
      sy = wasm_v128_bitselect(s, sy, wasm_i32x4_eq(yv, wasm_i32x4_splat(c)));
    }
  }
  *mx_out = mx;
  *sy_out = sy;
  *best_out = best;
}

/*
 * The softmax cross-entropy of the n codes x (labels y) under weights w
 * (k x (d + 1), bias last): out[0] = the summed loss, out[1] = the number
 * whose first highest score is their label, and g += scale * the gradient
 * of the summed loss by w. Scratch: wf and gf of k*(d+1) float32, sf of 4k
 * float32. Returns 0, or -1 when a label read from memory is out of range
 * (nothing is written past the arrays).
 */
int softmax_eval(const f32* x, int n, int d, int k, const int* y, const f64* w, f32* wf, f32* gf,
                 f32* sf, f64 scale, f64* g, f64* out) {
  const int ld = d + 1;
  const int size = k * ld;
  if (!labels_ok(y, n, k)) return -1;
  for (int t = 0; t < size; t++) {
    wf[t] = (f32)w[t];
    gf[t] = 0;
  }
  f64 loss = 0;
  int correct = 0;
  for (int i = 0; i < n; i += 4) {
    const group4_t grp = group4(x, y, n, d, i);
    const f32 *x0 = grp.x[0], *x1 = grp.x[1], *x2 = grp.x[2], *x3 = grp.x[3];
    const v128_t live = grp.live, yv = grp.yv;
    const int valid = grp.valid;
    f32x4 mx, sy;
    v128_t best;
    forward4(x0, x1, x2, x3, d, wf, k, yv, sf, &mx, &sy, &best);
    f32x4 sum = splat32(0);
    for (int m = 0; m < k; m++) {
      const f32x4 e = exp4(wasm_f32x4_sub(wasm_v128_load(sf + 4 * m), mx));
      wasm_v128_store(sf + 4 * m, e);
      sum = wasm_f32x4_add(sum, e);
    }
    const f32x4 lv = wasm_f32x4_sub(wasm_f32x4_add(log4(sum), mx), sy);
    const v128_t hit = wasm_v128_and(wasm_i32x4_eq(best, yv), live);
    correct -= wasm_i32x4_extract_lane(hit, 0) + wasm_i32x4_extract_lane(hit, 1) +
               wasm_i32x4_extract_lane(hit, 2) + wasm_i32x4_extract_lane(hit, 3);
    add_lanes(&loss, lv, valid);
    const f32x4 inv = wasm_f32x4_div(splat32(1.0f), sum);
    /* The gradient by the scores, softmax minus one-hot, into each class's row of gf. */
    f32x4 dv[2];
    for (int m = 0; m < k; m += 2) {
      for (int c = m; c < m + 2 && c < k; c++) {
        const v128_t onehot = wasm_v128_and(wasm_i32x4_eq(yv, wasm_i32x4_splat(c)), splat32(1.0f));
        dv[c - m] = wasm_v128_and(
            wasm_f32x4_sub(wasm_f32x4_mul(wasm_v128_load(sf + 4 * c), inv), onehot), live);
      }
      f32* gm = gf + (long)m * ld;
      if (m + 1 < k) grad2(x0, x1, x2, x3, gm, gm + ld, dv[0], dv[1], d, 1);
      else grad2(x0, x1, x2, x3, gm, gm, dv[0], dv[0], d, 0);
    }
    if ((i + 4) % FLUSH_ROWS == 0) flush(gf, g, size, scale);
  }
  flush(gf, g, size, scale);
  out[0] = loss;
  out[1] = correct;
  return 0;
}

/*
 * The loss and accuracy of the n codes x (labels y) under float64 weights w
 * (k x (d + 1), bias last): scores as scores() has them, then, when softmax,
 * the cross-entropy log(sum_m exp(s_m - max)) + max - s_y with the
 * exponentials and the logarithm in float32 (exp4, log4; the differences to
 * the highest score are float64), else the Crammer–Singer hinge
 * max_m (s_m + [m != y]) - s_y. out[0] = the summed loss, out[1] = the number
 * whose first highest score is their label. Scratch: s of 4k float64.
 * Returns 0, or -1 when a label read from memory is out of range (nothing is
 * written past the arrays).
 */
int evaluate(const f32* x, int n, int d, const f64* w, int k, const int* y, int softmax, f64* s,
             f64* out) {
  if (!labels_ok(y, n, k)) return -1;
  f64 loss = 0;
  int correct = 0;
  for (int i = 0; i < n; i += 4) {
    const int rows = n - i < 4 ? n - i : 4;
    score_rows(x + (long)i * d, rows, d, w, k, s);
    f64 mx[4] = {0, 0, 0, 0};
    for (int r = 0; r < rows; r++) {
      const f64* sr = s + (long)r * k;
      const int label = y[i + r];
      int best = 0;
      for (int m = 1; m < k; m++) {
        if (sr[m] > sr[best]) best = m;
      }
      correct += best == label;
      if (softmax) {
        mx[r] = sr[best];
        loss += mx[r] - sr[label];
      } else {
        f64 h = sr[label];
        for (int m = 0; m < k; m++) {
          if (m != label && sr[m] + 1 > h) h = sr[m] + 1;
        }
        loss += h - sr[label];
      }
    }
    if (!softmax) continue;
    /* Lanes past the last code sum exp(0) and are left out. */
    f32x4 sum = splat32(0);
    for (int m = 0; m < k; m++) {
      f32 e[4] = {0, 0, 0, 0};
      for (int r = 0; r < rows; r++) e[r] = (f32)(s[(long)r * k + m] - mx[r]);
      sum = wasm_f32x4_add(sum, exp4(wasm_f32x4_make(e[0], e[1], e[2], e[3])));
    }
    const f32x4 lg = log4(sum);
    add_lanes(&loss, lg, rows);
  }
  out[0] = loss;
  out[1] = correct;
  return 0;
}

/*
 * As evaluate, with the codes scored in float32 as softmax_eval scores them
 * (weights rounded to float32 into wf), and the hinge, when not softmax, in
 * float32 too. For codes of a moderate range (standardized ones): over raw
 * codes, the float32 sums may cancel. Scratch: wf of k*(d+1) float32, sf of
 * 4k float32.
 */
int evaluate32(const f32* x, int n, int d, const f64* w, int k, const int* y, int softmax,
               f32* wf, f32* sf, f64* out) {
  const int size = k * (d + 1);
  if (!labels_ok(y, n, k)) return -1;
  for (int t = 0; t < size; t++) wf[t] = (f32)w[t];
  f64 loss = 0;
  int correct = 0;
  for (int i = 0; i < n; i += 4) {
    const group4_t grp = group4(x, y, n, d, i);
    const f32 *x0 = grp.x[0], *x1 = grp.x[1], *x2 = grp.x[2], *x3 = grp.x[3];
    const v128_t live = grp.live, yv = grp.yv;
    const int valid = grp.valid;
    f32x4 mx, sy;
    v128_t best;
    forward4(x0, x1, x2, x3, d, wf, k, yv, sf, &mx, &sy, &best);
    const v128_t hit = wasm_v128_and(wasm_i32x4_eq(best, yv), live);
    correct -= wasm_i32x4_extract_lane(hit, 0) + wasm_i32x4_extract_lane(hit, 1) +
               wasm_i32x4_extract_lane(hit, 2) + wasm_i32x4_extract_lane(hit, 3);
    f32x4 lv;
    if (softmax) {
      f32x4 sum = splat32(0);
      for (int m = 0; m < k; m++) {
        sum = wasm_f32x4_add(sum, exp4(wasm_f32x4_sub(wasm_v128_load(sf + 4 * m), mx)));
      }
      lv = wasm_f32x4_sub(wasm_f32x4_add(log4(sum), mx), sy);
    } else {
      f32x4 h = sy;
      for (int m = 0; m < k; m++) {
        const v128_t other = wasm_v128_not(wasm_i32x4_eq(yv, wasm_i32x4_splat(m)));
        const f32x4 v = wasm_f32x4_add(wasm_v128_load(sf + 4 * m),
                                       wasm_v128_and(other, splat32(1.0f)));
        h = wasm_v128_bitselect(v, h, wasm_f32x4_gt(v, h));
      }
      lv = wasm_f32x4_sub(h, sy);
    }
    add_lanes(&loss, lv, valid);
  }
  out[0] = loss;
  out[1] = correct;
  return 0;
}

/* How many values' means code_stats holds at once (on the stack). */
#define STATS_BLOCK 64

/*
 * The per-value sums of the n codes x (d values each) into sum, then the
 * sums of their squared differences to the means sum / n into sq, both
 * float64, code by code in order (two values at a time, each its own sum).
 * The squared differences run over blocks of STATS_BLOCK values, whose
 * means are divided out once per block rather than once per code.
 */
void code_stats(const f32* x, int n, int d, f64* sum, f64* sq) {
  const int d2 = d & ~1;
  for (int j = 0; j < d; j++) sum[j] = sq[j] = 0;
  for (int i = 0; i < n; i++) {
    const f32* xi = x + (long)i * d;
    int j = 0;
    for (; j < d2; j += 2) {
      const v128_t v = wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(xi + j));
      wasm_v128_store(sum + j, wasm_f64x2_add(wasm_v128_load(sum + j), v));
    }
    for (; j < d; j++) sum[j] += xi[j];
  }
  const f64 count = n;
  f64 mean[STATS_BLOCK];
  for (int j0 = 0; j0 < d; j0 += STATS_BLOCK) {
    const int len = d - j0 < STATS_BLOCK ? d - j0 : STATS_BLOCK, len2 = len & ~1;
    for (int j = 0; j < len; j++) mean[j] = sum[j0 + j] / count;
    f64* q = sq + j0;
    for (int i = 0; i < n; i++) {
      const f32* xi = x + (long)i * d + j0;
      int j = 0;
      for (; j < len2; j += 2) {
        const v128_t v = wasm_f64x2_sub(
            wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(xi + j)), wasm_v128_load(mean + j));
        wasm_v128_store(q + j, wasm_f64x2_add(wasm_v128_load(q + j), wasm_f64x2_mul(v, v)));
      }
      for (; j < len; j++) {
        const f64 v = xi[j] - mean[j];
        q[j] += v * v;
      }
    }
  }
}

/*
 * x[i*d + j] = (x[i*d + j] - mean[j]) / std[j] in float64, rounded to
 * float32, in place, for the n codes x (two values at a time); and qd[i] =
 * 1 + the sum of the squares of code i's new values (float64, in order),
 * when qd is not null: four codes at a time, each its own sum, so the four
 * chains of additions overlap.
 */
void standardize(f32* x, int n, int d, const f32* mean, const f32* std, f64* qd) {
  const int d2 = d & ~1;
  for (int i0 = 0; i0 < n; i0 += 4) {
    const int rows = n - i0 < 4 ? n - i0 : 4;
    for (int r = 0; r < rows; r++) {
      f32* xi = x + (long)(i0 + r) * d;
      int j = 0;
      for (; j < d2; j += 2) {
        const v128_t v = wasm_f64x2_div(
            wasm_f64x2_sub(wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(xi + j)),
                           wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(mean + j))),
            wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(std + j)));
        wasm_v128_store64_lane(xi + j, wasm_f32x4_demote_f64x2_zero(v), 0);
      }
      for (; j < d; j++) xi[j] = (f32)(((f64)xi[j] - mean[j]) / std[j]);
    }
    if (!qd) continue;
    if (rows == 4) {
      const f32* x0 = x + (long)i0 * d;
      const f32 *x1 = x0 + d, *x2 = x1 + d, *x3 = x2 + d;
      f64 s0 = 1, s1 = 1, s2 = 1, s3 = 1;
      for (int j = 0; j < d; j++) {
        s0 += (f64)x0[j] * x0[j];
        s1 += (f64)x1[j] * x1[j];
        s2 += (f64)x2[j] * x2[j];
        s3 += (f64)x3[j] * x3[j];
      }
      qd[i0] = s0;
      qd[i0 + 1] = s1;
      qd[i0 + 2] = s2;
      qd[i0 + 3] = s3;
    } else {
      for (int r = 0; r < rows; r++) {
        const f32* xi = x + (long)(i0 + r) * d;
        f64 s = 1;
        for (int j = 0; j < d; j++) s += (f64)xi[j] * xi[j];
        qd[i0 + r] = s;
      }
    }
  }
}
