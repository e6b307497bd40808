/**
 * Softmax regression by L-BFGS (10 corrections, Armijo backtracking) on the
 * mean cross-entropy plus `l2 · ||W||²`, the bias not penalized, as
 * scikit-learn's `LogisticRegression` has it. Each evaluation of the
 * objective is full-batch: the scores of a block of codes as one matrix
 * product in the compiled kernels, the softmax done in place on them, and
 * the gradient as the transposed product, block by block.
 *
 * @module
 */
import type { HeapArray } from "./_linear_kernels.ts";
import { BLOCK_ROWS, type Problem } from "./_linear_problem.ts";

/** The objective at a point: its value, the mean data loss and the training accuracy. */
interface Objective {
  objective: number;
  loss: number;
  accuracy: number;
}

/** Scratch of one solve in the kernels' memory: the point, its gradient and a block of scores. */
interface Scratch {
  w: HeapArray<Float64Array>;
  grad: HeapArray<Float64Array>;
  scores: HeapArray<Float64Array>;
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
 * gradient into `grad`, and the training accuracy.
 */
function objectiveAt(
  p: Problem,
  l2: number,
  sc: Scratch,
  at: Float64Array,
  grad: Float64Array,
): Objective {
  const { kern, x, y, n, d, k } = p;
  const ld = d + 1;
  sc.w.view.set(at);
  sc.grad.view.fill(0);
  let loss = 0;
  let correct = 0;
  for (let start = 0; start < n; start += BLOCK_ROWS) {
    const rows = Math.min(BLOCK_ROWS, n - start);
    kern.scores(x, start, rows, d, sc.w, k, sc.scores);
    const s = sc.scores.view;
    for (let r = 0, o = 0; r < rows; r++, o += k) {
      const yi = y[start + r]!;
      // The first highest score, as argMax has it.
      let best = 0;
      for (let m = 1; m < k; m++) if (s[o + m]! > s[o + best]!) best = m;
      if (best === yi) correct++;
      const max = s[o + best]!;
      loss += max - s[o + yi]!;
      let sum = 0;
      for (let m = 0; m < k; m++) {
        const e = Math.exp(s[o + m]! - max);
        s[o + m] = e;
        sum += e;
      }
      loss += Math.log(sum);
      // In place: (softmax - onehot) / n, the gradient of the mean loss by the scores.
      for (let m = 0; m < k; m++) s[o + m] = (s[o + m]! / sum - (m === yi ? 1 : 0)) / n;
    }
    kern.gradAdd(x, start, rows, d, sc.scores, k, sc.grad);
  }
  grad.set(sc.grad.view);
  let penalty = 0;
  for (let m = 0; m < k; m++) {
    for (let j = 0, t = m * ld; j < d; j++, t++) {
      penalty += at[t]! * at[t]!;
      grad[t]! += 2 * l2 * at[t]!;
    }
  }
  loss /= n;
  return { objective: loss + l2 * penalty, loss, accuracy: correct / n };
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
  const { kern, d, k } = p;
  const size = w.length;
  const sc: Scratch = {
    w: kern.alloc(Float64Array, size),
    grad: kern.alloc(Float64Array, size),
    scores: kern.alloc(Float64Array, BLOCK_ROWS * k),
  };
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
