/**
 * Softmax regression by L-BFGS (10 corrections, Armijo backtracking) on the
 * mean cross-entropy plus `l2 · ||W||²`, the bias not penalized, as
 * scikit-learn's `LogisticRegression` has it. Each evaluation of the
 * objective is full-batch and one call of the compiled kernels
 * (`softmax_eval` in `simd/linear.c`): scores, softmax, loss and gradient,
 * four codes at a time in float32 SIMD, the gradient gathered in float64.
 *
 * @module
 */
import type { HeapArray, SoftmaxArrays } from "./_linear_kernels.ts";
import type { Problem } from "./_linear_problem.ts";

/** The objective at a point: its value, the mean data loss and the training accuracy. */
interface Objective {
  objective: number;
  loss: number;
  accuracy: number;
}

/**
 * Called after each accepted iterate with its number, mean data loss,
 * training accuracy, and the weights (in the kernels' memory, valid during
 * the call).
 */
export type IterationCallback = (
  iteration: number,
  loss: number,
  accuracy: number,
  w: HeapArray<Float64Array>,
) => void;

/**
 * Mean cross-entropy plus `l2 · ||W||²` (bias not penalized) at `at`, its
 * gradient into `grad`, and the training accuracy. The data term is one
 * call of the compiled kernels over all codes, in float32.
 */
function objectiveAt(
  p: Problem,
  l2: number,
  sc: SoftmaxArrays,
  at: Float64Array,
  grad: Float64Array,
): Objective {
  const { kern, n, d, k } = p;
  const ld = d + 1;
  sc.w.view.set(at);
  sc.grad.view.fill(0);
  const data = kern.softmaxEval(sc, n, d, k, 1 / n);
  grad.set(sc.grad.view);
  let penalty = 0;
  for (let m = 0; m < k; m++) {
    for (let j = 0, t = m * ld; j < d; j++, t++) {
      penalty += at[t]! * at[t]!;
      grad[t]! += 2 * l2 * at[t]!;
    }
  }
  const loss = data.loss / n;
  return { objective: loss + l2 * penalty, loss, accuracy: data.correct / n };
}

/** The arrays of the problem's softmax evaluations, laid out in its kernels' memory. */
export function softmaxArrays(p: Problem): SoftmaxArrays {
  const { kern, n, d, k } = p;
  const size = k * (d + 1);
  const a: SoftmaxArrays = {
    x: p.x,
    y: kern.alloc(Int32Array, n),
    w: kern.alloc(Float64Array, size),
    wf: kern.alloc(Float32Array, size),
    gf: kern.alloc(Float32Array, size),
    sf: kern.alloc(Float32Array, 4 * k),
    grad: kern.alloc(Float64Array, size),
    out: kern.alloc(Float64Array, 2),
  };
  a.y.view.set(p.y);
  return a;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let t = 0; t < a.length; t++) s += a[t]! * b[t]!;
  return s;
}

/**
 * Softmax regression by L-BFGS from `w` (`k x (d + 1)`), updated in place,
 * until the gradient's largest entry is at most `tol`, the objective stops
 * decreasing, or `maxIterations`. Returns the iterations taken.
 *
 * @param p the problem
 * @param l2 the weight of the L2 penalty
 * @param w the starting weights, updated in place
 * @param maxIterations the most iterations
 * @param tol the tolerance on the gradient's largest entry
 * @param onIteration called after every accepted iterate
 */
export function softmaxSolve(
  p: Problem,
  l2: number,
  w: Float64Array,
  maxIterations: number,
  tol: number,
  onIteration?: IterationCallback,
): number {
  const { d, k } = p;
  const size = w.length;
  const sc = softmaxArrays(p);
  if (size !== k * (d + 1)) {
    throw new RangeError(`Invalid weights: ${size} values, use ${k * (d + 1)}`);
  }
  const memory = 10;
  const ss: Float64Array[] = [];
  const ys: Float64Array[] = [];
  const rhos: number[] = [];
  let g = new Float64Array(size);
  let cur = objectiveAt(p, l2, sc, w, g);
  const dir = new Float64Array(size);
  const next = new Float64Array(size);
  let gNext = new Float64Array(size);
  const alphas = new Float64Array(memory);
  let sNew: Float64Array = new Float64Array(size);
  let yNew: Float64Array = new Float64Array(size);
  let iteration = 0;
  while (iteration < maxIterations) {
    let gMax = 0;
    for (let t = 0; t < size; t++) gMax = Math.max(gMax, Math.abs(g[t]!));
    if (gMax <= tol) break;
    // Two-loop recursion: dir = -H g.
    for (let t = 0; t < size; t++) dir[t] = -g[t]!;
    for (let h = ss.length - 1; h >= 0; h--) {
      alphas[h] = rhos[h]! * dot(ss[h]!, dir);
      const yh = ys[h]!;
      for (let t = 0; t < size; t++) dir[t]! -= alphas[h]! * yh[t]!;
    }
    let step = 1;
    if (ss.length > 0) {
      const last = ss.length - 1;
      const gamma = dot(ss[last]!, ys[last]!) / dot(ys[last]!, ys[last]!);
      for (let t = 0; t < size; t++) dir[t]! *= gamma;
    } else {
      step = 1 / Math.sqrt(dot(g, g));
    }
    for (let h = 0; h < ss.length; h++) {
      const beta = rhos[h]! * dot(ys[h]!, dir);
      const sh = ss[h]!;
      for (let t = 0; t < size; t++) dir[t]! += (alphas[h]! - beta) * sh[t]!;
    }
    let slope = dot(g, dir);
    if (!(slope < 0)) {
      // Not a descent direction (rounding): start the memory afresh.
      ss.length = ys.length = rhos.length = 0;
      for (let t = 0; t < size; t++) dir[t] = -g[t]!;
      slope = -dot(g, g);
      step = 1 / Math.sqrt(-slope);
    }
    let found: Objective | undefined;
    for (let tries = 0; tries < 30; tries++) {
      for (let t = 0; t < size; t++) next[t] = w[t]! + step * dir[t]!;
      const trial = objectiveAt(p, l2, sc, next, gNext);
      if (trial.objective <= cur.objective + 1e-4 * step * slope) {
        found = trial;
        break;
      }
      step /= 2;
    }
    if (found === undefined) break;
    iteration++;
    for (let t = 0; t < size; t++) {
      sNew[t] = next[t]! - w[t]!;
      yNew[t] = gNext[t]! - g[t]!;
    }
    const sy = dot(sNew, yNew);
    if (sy > 1e-12) {
      ss.push(sNew);
      ys.push(yNew);
      rhos.push(1 / sy);
      // The oldest correction pair's arrays hold the next one.
      if (ss.length > memory) {
        sNew = ss.shift()!;
        yNew = ys.shift()!;
        rhos.shift();
      } else {
        sNew = new Float64Array(size);
        yNew = new Float64Array(size);
      }
    }
    const decrease = cur.objective - found.objective;
    w.set(next);
    [g, gNext] = [gNext, g];
    cur = found;
    if (onIteration) {
      sc.w.view.set(w);
      onIteration(iteration, cur.loss, cur.accuracy, sc.w);
    }
    if (decrease <= 1e-12 * Math.max(1, Math.abs(cur.objective))) break;
  }
  return iteration;
}
