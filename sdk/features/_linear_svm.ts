/**
 * The Crammer–Singer multiclass SVM by dual coordinate descent with
 * shrinking, the method of liblinear's `Solver_MCSVM_CS` (Keerthi et al.,
 * KDD 2008), with the bias a regularized constant feature 1 as liblinear and
 * scikit-learn's `LinearSVC` have it. Each code's scores and its weight
 * update run in the compiled kernels; the dual bookkeeping runs here, on
 * preallocated typed arrays, with no allocation per code.
 *
 * @module
 */
import { mulberry32 } from "../_random.ts";
import type { HeapArray } from "./_linear_kernels.ts";
import { argMax, type Problem, rowLoss } from "./_linear_problem.ts";

/** Dual state of the solver: the weights (`k x (d + 1)`) and the dual variables (`n x k`). */
export interface SvmState {
  /** Weights, one row per class with its bias last. */
  w: Float64Array;
  /** Dual variables, one row per code. */
  alpha: Float64Array;
}

/**
 * Called after each pass with its number, the mean hinge loss and accuracy
 * of the codes as the pass reached them, and the current weights (in the
 * kernels' memory, valid during the call).
 */
export type PassCallback = (
  pass: number,
  loss: number,
  accuracy: number,
  w: HeapArray<Float64Array>,
) => void;

/**
 * Minimizes `½||W||² + C Σ ξᵢ` by dual coordinate descent with shrinking.
 * Continues from `st` (a solution for a smaller `C` is feasible), updating
 * it in place, until the largest dual violation is below `eps` over all
 * codes, or `maxPasses`. Returns the passes taken.
 *
 * @param p the problem
 * @param qd each code's `1 + ||x||²`
 * @param c the cost `C`
 * @param st the starting state, updated in place
 * @param maxPasses the most passes
 * @param eps the tolerance on the dual violation
 * @param seed the seed of the visiting order
 * @param onPass called after every pass
 */
export function svmSolve(
  p: Problem,
  qd: Float64Array,
  c: number,
  st: SvmState,
  maxPasses: number,
  eps: number,
  seed: number,
  onPass?: PassCallback,
): number {
  const { kern, x, y, n, d, k } = p;
  const { alpha } = st;
  const w = kern.alloc(Float64Array, k * (d + 1));
  w.view.set(st.w);
  const scoresOut = kern.alloc(Float64Array, k);
  const dInd = kern.alloc(Int32Array, k);
  const dVal = kern.alloc(Float64Array, k);
  const lastLoss = new Float64Array(n);
  const lastCorrect = new Uint8Array(n);
  const index = Int32Array.from({ length: n }, (_, i) => i);
  const activeOf = new Int32Array(n).fill(k);
  const alphaIndex = new Int32Array(n * k);
  for (let i = 0; i < n; i++) for (let m = 0; m < k; m++) alphaIndex[i * k + m] = m;
  const yIndex = Int32Array.from(y);
  const g = new Float64Array(k);
  const b = new Float64Array(k);
  const dd = new Float64Array(k);
  const alphaNew = new Float64Array(k);
  const rand = mulberry32(seed);
  let activeSize = n;
  let epsShrink = Math.max(10 * eps, 1);
  let startFromAll = true;
  let pass = 0;
  while (pass < maxPasses) {
    let stopping = -Infinity;
    for (let s = 0; s < activeSize; s++) {
      const j = s + Math.floor(rand() * (activeSize - s));
      const t = index[s]!;
      index[s] = index[j]!;
      index[j] = t;
    }
    const sc = scoresOut.view;
    const ind = dInd.view;
    const val = dVal.view;
    for (let s = 0; s < activeSize; s++) {
      const i = index[s]!;
      const ai = qd[i]!;
      const base = i * k;
      let act = activeOf[i]!;
      kern.scores(x, i, 1, d, w, k, scoresOut);
      const label = y[i]!;
      // The code's loss and correctness now, before its update: what the pass reports.
      lastLoss[i] = rowLoss("svm", sc, 0, k, label);
      lastCorrect[i] = argMax(sc, 0, k) === label ? 1 : 0;
      for (let m = 0; m < act; m++) {
        const cls = alphaIndex[base + m]!;
        g[m] = sc[cls]! + (cls === label ? 0 : 1);
      }
      let minG = Infinity;
      let maxG = -Infinity;
      for (let m = 0; m < act; m++) {
        if (alpha[base + alphaIndex[base + m]!]! < 0 && g[m]! < minG) minG = g[m]!;
        if (g[m]! > maxG) maxG = g[m]!;
      }
      let yi = yIndex[i]!;
      if (yi < act && alpha[base + label]! < c && g[yi]! < minG) minG = g[yi]!;
      // Shrinking: a class whose dual variable sits at its bound with a small gradient leaves.
      for (let m = 0; m < act; m++) {
        if (!shrinkable(alpha, alphaIndex, base, m, yi, c, g, minG)) continue;
        act--;
        while (act > m) {
          if (!shrinkable(alpha, alphaIndex, base, act, yi, c, g, minG)) {
            const t = alphaIndex[base + m]!;
            alphaIndex[base + m] = alphaIndex[base + act]!;
            alphaIndex[base + act] = t;
            const gt = g[m]!;
            g[m] = g[act]!;
            g[act] = gt;
            if (yi === act) yi = m;
            else if (yi === m) yi = act;
            break;
          }
          act--;
        }
      }
      yIndex[i] = yi;
      activeOf[i] = act;
      if (act <= 1) {
        activeSize--;
        const t = index[s]!;
        index[s] = index[activeSize]!;
        index[activeSize] = t;
        s--;
        continue;
      }
      if (maxG - minG <= 1e-12) continue;
      stopping = Math.max(stopping, maxG - minG);
      for (let m = 0; m < act; m++) b[m] = g[m]! - ai * alpha[base + alphaIndex[base + m]!]!;
      solveSubProblem(ai, yi, c, act, b, dd, alphaNew);
      let nz = 0;
      for (let m = 0; m < act; m++) {
        const at = base + alphaIndex[base + m]!;
        const delta = alphaNew[m]! - alpha[at]!;
        alpha[at] = alphaNew[m]!;
        if (Math.abs(delta) >= 1e-12) {
          ind[nz] = alphaIndex[base + m]!;
          val[nz] = delta;
          nz++;
        }
      }
      if (nz > 0) kern.rowUpdate(x, i, d, w, k, dInd, dVal, nz);
    }
    pass++;
    if (onPass) {
      let loss = 0;
      let correct = 0;
      for (let i = 0; i < n; i++) {
        loss += lastLoss[i]!;
        correct += lastCorrect[i]!;
      }
      onPass(pass, loss / n, correct / n, w);
    }
    if (stopping < epsShrink) {
      if (stopping < eps && startFromAll) break;
      activeSize = n;
      activeOf.fill(k);
      epsShrink = Math.max(epsShrink / 2, eps);
      startFromAll = true;
    } else {
      startFromAll = false;
    }
  }
  st.w.set(w.view);
  return pass;
}

/** Whether the `m`-th active class of the code at `base` is at its bound with a gradient below `minG`. */
function shrinkable(
  alpha: Float64Array,
  alphaIndex: Int32Array,
  base: number,
  m: number,
  yi: number,
  c: number,
  g: Float64Array,
  minG: number,
): boolean {
  return alpha[base + alphaIndex[base + m]!] === (m === yi ? c : 0) && g[m]! < minG;
}

/** The closed-form update of one code's dual variables (liblinear's `solve_sub_problem`). */
function solveSubProblem(
  ai: number,
  yi: number,
  c: number,
  act: number,
  b: Float64Array,
  dd: Float64Array,
  alphaNew: Float64Array,
): void {
  for (let m = 0; m < act; m++) dd[m] = b[m]!;
  if (yi < act) dd[yi]! += ai * c;
  // Insertion sort, ascending: at most k values, and no allocation.
  for (let m = 1; m < act; m++) {
    const v = dd[m]!;
    let t = m - 1;
    while (t >= 0 && dd[t]! > v) {
      dd[t + 1] = dd[t]!;
      t--;
    }
    dd[t + 1] = v;
  }
  let beta = dd[act - 1]! - ai * c;
  let r = 1;
  while (r < act && beta < r * dd[act - 1 - r]!) {
    beta += dd[act - 1 - r]!;
    r++;
  }
  beta /= r;
  for (let m = 0; m < act; m++) {
    alphaNew[m] = m === yi ? Math.min(c, (beta - b[m]!) / ai) : Math.min(0, (beta - b[m]!) / ai);
  }
}
