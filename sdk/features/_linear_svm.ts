/**
 * The Crammer–Singer multiclass SVM by dual coordinate descent with
 * shrinking, the method of liblinear's `Solver_MCSVM_CS` (Keerthi et al.,
 * KDD 2008), with the bias a regularized constant feature 1 as liblinear and
 * scikit-learn's `LinearSVC` have it. A sweep over the codes runs in the
 * compiled kernels (`cs_sweep` in `simd/linear.c`): scores in float32, the
 * sub-problem in float64, the updates of the weights in float32 with
 * compensated summation; the visiting order, the shrinking schedule and the stopping test
 * run here.
 *
 * @module
 */
import { mulberry32 } from "../_random.ts";
import type { CsArrays, HeapArray } from "./_linear_kernels.ts";
import type { Problem } from "./_linear_problem.ts";

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
  const { kern, n, d, k } = p;
  const a = csArrays(p, qd);
  a.w.view.set(st.w);
  // The weights as float32 and the compensation that makes them st.w: wf - wlo.
  const wf = a.wf.view, wlo = a.wlo.view;
  for (let t = 0; t < wf.length; t++) {
    wf[t] = st.w[t]!;
    wlo[t] = wf[t]! - st.w[t]!;
  }
  a.alpha.view.set(st.alpha);
  const index = a.index.view;
  for (let i = 0; i < n; i++) index[i] = i;
  const alphaIndex = a.alphaIndex.view;
  for (let i = 0; i < n; i++) for (let m = 0; m < k; m++) alphaIndex[i * k + m] = m;
  a.yIndex.view.set(p.y);
  a.activeOf.view.fill(k);
  const rand = mulberry32(seed);
  let activeSize = n;
  let epsShrink = Math.max(10 * eps, 1);
  let startFromAll = true;
  let pass = 0;
  while (pass < maxPasses) {
    for (let s = 0; s < activeSize; s++) {
      const j = s + Math.floor(rand() * (activeSize - s));
      const t = index[s]!;
      index[s] = index[j]!;
      index[j] = t;
    }
    const sweep = kern.csSweep(a, n, d, k, activeSize, c);
    activeSize = sweep.active;
    pass++;
    if (onPass) {
      let loss = 0;
      let correct = 0;
      const lastLoss = a.lastLoss.view;
      const lastOk = a.lastOk.view;
      for (let i = 0; i < n; i++) {
        loss += lastLoss[i]!;
        correct += lastOk[i]!;
      }
      onPass(pass, loss / n, correct / n, a.w);
    }
    if (sweep.stopping < epsShrink) {
      if (sweep.stopping < eps && startFromAll) break;
      activeSize = n;
      a.activeOf.view.fill(k);
      epsShrink = Math.max(epsShrink / 2, eps);
      startFromAll = true;
    } else {
      startFromAll = false;
    }
  }
  st.w.set(a.w.view);
  st.alpha.set(a.alpha.view);
  return pass;
}

/**
 * Scales a solution for one `C` to a start for `f · C`: the dual variables
 * times `f` (still feasible: each code's sum to zero, and its label's
 * variable at most `f · C`, the others at most 0), and the weights, their
 * sum over the codes, with them. In the small-`C` regime, where most codes'
 * variables sit at their bounds, the solution itself scales so, which makes
 * this a nearer start for the next `C` of the search than the old solution
 * as it is.
 *
 * @param st the state, scaled in place
 * @param f the ratio of the new `C` to the old
 */
export function scaleSvmState(st: SvmState, f: number): void {
  for (let t = 0; t < st.w.length; t++) st.w[t]! *= f;
  for (let t = 0; t < st.alpha.length; t++) st.alpha[t]! *= f;
}

const laidOut = new WeakMap<Problem, CsArrays>();

/**
 * The problem's arrays in the kernels' memory, with its labels and `qd`
 * (each code's `1 + ||x||²`), laid out on its first solve and reused after.
 */
export function csArrays(p: Problem, qd: Float64Array): CsArrays {
  const known = laidOut.get(p);
  if (known) return known;
  const { kern, n, k, d } = p;
  const a: CsArrays = {
    x: p.x,
    w: kern.alloc(Float64Array, k * (d + 1)),
    wf: kern.alloc(Float32Array, k * (d + 1)),
    wlo: kern.alloc(Float32Array, k * (d + 1)),
    y: kern.alloc(Int32Array, n),
    yIndex: kern.alloc(Int32Array, n),
    qd: kern.alloc(Float64Array, n),
    alpha: kern.alloc(Float64Array, n * k),
    alphaIndex: kern.alloc(Int32Array, n * k),
    activeOf: kern.alloc(Int32Array, n),
    index: kern.alloc(Int32Array, n),
    lastLoss: kern.alloc(Float64Array, n),
    lastOk: kern.alloc(Int32Array, n),
    scratch: kern.alloc(Float64Array, 6 * k),
    indices: kern.alloc(Int32Array, k),
    stopping: kern.alloc(Float64Array, 1),
  };
  a.y.view.set(p.y);
  a.qd.view.set(qd);
  laidOut.set(p, a);
  return a;
}
