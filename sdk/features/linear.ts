/**
 * Linear classifiers on CNN codes: a multiclass linear SVM (Crammer–Singer
 * hinge loss) or softmax regression (cross-entropy), each with L2
 * regularization, trained to convergence on standardized codes with
 * full-batch solvers written as typed-array arithmetic (no tensors, the same
 * result on every device), with the regularization chosen on the validation
 * codes.
 *
 * - SVM: dual coordinate descent with shrinking, the method of liblinear's
 *   Crammer–Singer solver (Keerthi et al., KDD 2008), with the bias as a
 *   regularized constant feature as liblinear and scikit-learn's `LinearSVC`
 *   have it.
 * - softmax: L-BFGS (10 corrections, backtracking line search) on the mean
 *   cross-entropy plus `l2 · ||W||²`, the bias not penalized, as
 *   scikit-learn's `LogisticRegression` has it.
 *
 * One epoch is one pass over the training codes: a sweep of coordinate
 * descent over the examples still active, or one evaluation of the loss and
 * its gradient.
 *
 * @module
 */
import type { EpochMetrics, LinearClassifier } from "../types.ts";
import type { CnnCodes } from "./code_cache.ts";
import { mulberry32 } from "../_random.ts";

/** Options of {@linkcode trainLinear}. */
export interface LinearTrainOptions {
  /** `svm`: Crammer–Singer multiclass hinge; `softmax`: cross-entropy. */
  classifier: LinearClassifier;
  /** Number of classes; labels are `0 … numClasses - 1`. */
  numClasses: number;
  /** The most passes over the training codes one fit may take; a fit stops earlier once converged. */
  epochs: number;
  /** Seed of the order coordinate descent visits the codes in. @default 0 */
  seed?: number;
  /**
   * Weight of the L2 penalty `l2 · ||W||²` next to the mean loss over the
   * standardized codes. @default chosen on the validation codes among
   * {@linkcode L2_GRID_C}; without validation codes, 1e-3
   */
  l2?: number;
  /** Convergence tolerance: the SVM's largest dual violation, the softmax gradient's largest entry. @default 0.1 (SVM), 1e-4 (softmax) */
  tolerance?: number;
  /** Number of the first epoch in the reported metrics. @default 1 */
  firstEpoch?: number;
  /** Called for every epoch of the fit kept, once the L2 weight is chosen. */
  onEpoch?: (m: EpochMetrics) => void;
  /** Called for every epoch of the fit kept with the codes done, the training codes' count and the epoch's loss. */
  onBatch?: (done: number, total: number, loss: number) => void;
}

/**
 * The L2 weights {@linkcode trainLinear} chooses among: `1 / (2 · C · n)` for
 * `C` from 1e-4 to 10 by decades (scikit-learn's `C` over `n` training
 * codes), tried from the strongest penalty down.
 */
export const L2_GRID_C: readonly number[] = Array.from({ length: 6 }, (_, i) => 10 ** (i - 4));

/**
 * A trained linear classifier over raw codes: `scores = codes · kernel + bias`.
 * The standardization it was trained with is folded into `kernel` and `bias`.
 */
export interface LinearModel {
  /** `svm` or `softmax`: which loss it was trained with. */
  classifier: LinearClassifier;
  /** Code length. */
  dim: number;
  /** Number of classes. */
  numClasses: number;
  /** `dim x numClasses`, row-major. */
  kernel: Float32Array;
  /** `numClasses` values. */
  bias: Float32Array;
  /** Per-dimension mean of the training codes. */
  mean: Float32Array;
  /** Per-dimension standard deviation of the training codes (1 where it was 0). */
  std: Float32Array;
  /** The L2 weight it was trained with. */
  l2: number;
}

/** One L2 weight tried on the validation codes. */
export interface L2Trial {
  /** The L2 weight. */
  l2: number;
  /** scikit-learn's equivalent `C`: `1 / (2 · l2 · n)`. */
  c: number;
  /** Accuracy on the validation codes. */
  valAccuracy: number;
  /** Mean data loss on the validation codes. */
  valLoss: number;
  /** Passes the fit took (warm-started from the previous trial's solution). */
  epochs: number;
}

/** What {@linkcode trainLinear} returns. */
export interface LinearFit {
  /** The classifier at the chosen L2 weight, trained to convergence. */
  model: LinearModel;
  /** Metrics of every epoch of the fit kept (at the chosen L2 weight, from the previous trial's solution), phase `linear`. */
  history: EpochMetrics[];
  /** The last epoch: the model is the converged one. */
  bestEpoch: number;
  /** The L2 weights tried on the validation codes, in order; empty when `l2` was given or there were none. */
  trials: L2Trial[];
}

/** Loss and accuracy of a classifier on some codes. */
export interface LinearEvaluation {
  /** Mean data loss (hinge or cross-entropy), without the L2 penalty. */
  loss: number;
  /** Fraction classified correctly. */
  accuracy: number;
}

/** Standardized training data of one problem. */
interface Problem {
  /** `n x d` standardized codes, row-major. */
  x: Float32Array;
  y: Int32Array;
  n: number;
  d: number;
  k: number;
}

/**
 * The weights of a linear classifier over standardized codes: `(d + 1) x k`,
 * row-major, the last row the bias.
 */
type Weights = Float64Array;

function checkCodes(codes: CnnCodes, numClasses: number, what: string): void {
  if (codes.codes.length !== codes.count * codes.dim || codes.labels.length !== codes.count) {
    throw new RangeError(
      `Invalid ${what} codes: ${codes.codes.length} values and ${codes.labels.length} labels for ${codes.count} codes of length ${codes.dim}`,
    );
  }
  const bad = codes.labels.find((l) => !(l >= 0 && l < numClasses));
  if (bad !== undefined) {
    throw new RangeError(`Invalid ${what} label "${bad}": use 0 to ${numClasses - 1}`);
  }
}

/** `codes` standardized with `mean` and `std`. */
function standardized(codes: CnnCodes, mean: Float32Array, std: Float32Array): Float32Array {
  const { count, dim } = codes;
  const out = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    const row = i * dim;
    for (let j = 0; j < dim; j++) out[row + j] = (codes.codes[row + j]! - mean[j]!) / std[j]!;
  }
  return out;
}

/**
 * `out = x[row] · W + bias` for one code. Classes go four at a time with
 * their sums in locals, which V8 keeps in registers: about twice as fast as
 * one loop over the classes inside the loop over the code.
 */
function scoreRow(
  x: Float32Array,
  row: number,
  d: number,
  w: Float64Array,
  k: number,
  out: Float64Array,
): void {
  const biasAt = d * k;
  let m = 0;
  for (; m + 4 <= k; m += 4) {
    let s0 = w[biasAt + m]!, s1 = w[biasAt + m + 1]!, s2 = w[biasAt + m + 2]!;
    let s3 = w[biasAt + m + 3]!;
    for (let j = 0, o = m; j < d; j++, o += k) {
      const v = x[row + j]!;
      s0 += v * w[o]!;
      s1 += v * w[o + 1]!;
      s2 += v * w[o + 2]!;
      s3 += v * w[o + 3]!;
    }
    out[m] = s0;
    out[m + 1] = s1;
    out[m + 2] = s2;
    out[m + 3] = s3;
  }
  for (; m < k; m++) {
    let s0 = w[biasAt + m]!;
    for (let j = 0, o = m; j < d; j++, o += k) s0 += x[row + j]! * w[o]!;
    out[m] = s0;
  }
}

/** `w[j, :] += x[row + j] · delta` for every `j < d`, and the bias row `+= delta`: the gradient (or dual) update of one code. */
function addOuter(
  x: Float32Array,
  row: number,
  d: number,
  w: Float64Array,
  k: number,
  delta: Float64Array,
): void {
  const biasAt = d * k;
  let m = 0;
  for (; m + 4 <= k; m += 4) {
    const d0 = delta[m]!, d1 = delta[m + 1]!, d2 = delta[m + 2]!, d3 = delta[m + 3]!;
    for (let j = 0, o = m; j < d; j++, o += k) {
      const v = x[row + j]!;
      w[o]! += v * d0;
      w[o + 1]! += v * d1;
      w[o + 2]! += v * d2;
      w[o + 3]! += v * d3;
    }
    w[biasAt + m]! += d0;
    w[biasAt + m + 1]! += d1;
    w[biasAt + m + 2]! += d2;
    w[biasAt + m + 3]! += d3;
  }
  for (; m < k; m++) {
    const d0 = delta[m]!;
    for (let j = 0, o = m; j < d; j++, o += k) w[o]! += x[row + j]! * d0;
    w[biasAt + m]! += d0;
  }
}

/** Loss (hinge or cross-entropy) of one code's scores, and whether its argmax is right. */
function rowLoss(classifier: LinearClassifier, s: Float64Array, k: number, y: number): number {
  let max = -Infinity;
  if (classifier === "svm") {
    for (let m = 0; m < k; m++) max = Math.max(max, s[m]! + (m === y ? 0 : 1));
    return max - s[y]!;
  }
  for (let m = 0; m < k; m++) max = Math.max(max, s[m]!);
  let sum = 0;
  for (let m = 0; m < k; m++) sum += Math.exp(s[m]! - max);
  return Math.log(sum) + max - s[y]!;
}

function argMax(s: Float64Array, k: number): number {
  let best = 0;
  for (let m = 1; m < k; m++) if (s[m]! > s[best]!) best = m;
  return best;
}

/** Mean loss and accuracy over `count` codes in `x` (`d` values each) under weights `w` (`(d + 1) x k`). */
function evaluateRows(
  classifier: LinearClassifier,
  x: Float32Array,
  labels: Int32Array,
  count: number,
  d: number,
  w: Float64Array,
  k: number,
): LinearEvaluation {
  const s = new Float64Array(k);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < count; i++) {
    scoreRow(x, i * d, d, w, k, s);
    const y = labels[i]!;
    loss += rowLoss(classifier, s, k, y);
    if (argMax(s, k) === y) correct++;
  }
  return { loss: count > 0 ? loss / count : NaN, accuracy: count > 0 ? correct / count : 0 };
}

/** Dual state of the Crammer–Singer solver: the weights and the dual variables `n x k`. */
interface SvmState {
  w: Weights;
  alpha: Float64Array;
}

/**
 * Crammer–Singer SVM by dual coordinate descent with shrinking (liblinear's
 * `Solver_MCSVM_CS`): minimizes `½||W||² + C Σ ξᵢ` with the bias a constant
 * feature 1. Continues from `st` (a solution for a smaller `C` is feasible),
 * updating it in place. Returns the passes taken.
 */
function svmSolve(
  p: Problem,
  qd: Float64Array,
  c: number,
  st: SvmState,
  maxPasses: number,
  eps: number,
  seed: number,
  onPass?: (pass: number, loss: number, accuracy: number) => void,
): number {
  const { x, y, n, d, k } = p;
  const { w, alpha } = st;
  const sc = new Float64Array(k);
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
  const dInd = new Int32Array(k);
  const dVal = new Float64Array(k);
  const rand = mulberry32(seed);
  const biasAt = d * k;
  let activeSize = n;
  let epsShrink = Math.max(10 * eps, 1);
  let startFromAll = true;
  let pass = 0;
  const shrinkable = (i: number, m: number, minG: number) =>
    alpha[i * k + alphaIndex[i * k + m]!] === (m === yIndex[i] ? c : 0) && g[m]! < minG;
  while (pass < maxPasses) {
    let stopping = -Infinity;
    for (let s = 0; s < activeSize; s++) {
      const j = s + Math.floor(rand() * (activeSize - s));
      [index[s], index[j]] = [index[j]!, index[s]!];
    }
    for (let s = 0; s < activeSize; s++) {
      const i = index[s]!;
      const ai = qd[i]!;
      const base = i * k;
      const row = i * d;
      let act = activeOf[i]!;
      scoreRow(x, row, d, w, k, sc);
      const label = y[i]!;
      // The code's loss and correctness now, before its update: what the epoch reports.
      lastLoss[i] = rowLoss("svm", sc, k, label);
      lastCorrect[i] = argMax(sc, k) === label ? 1 : 0;
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
      const yi = yIndex[i]!;
      if (yi < act && alpha[base + y[i]!]! < c && g[yi]! < minG) minG = g[yi]!;
      for (let m = 0; m < act; m++) {
        if (!shrinkable(i, m, minG)) continue;
        act--;
        while (act > m) {
          if (!shrinkable(i, act, minG)) {
            [alphaIndex[base + m], alphaIndex[base + act]] = [
              alphaIndex[base + act]!,
              alphaIndex[base + m]!,
            ];
            [g[m], g[act]] = [g[act]!, g[m]!];
            if (yIndex[i] === act) yIndex[i] = m;
            else if (yIndex[i] === m) yIndex[i] = act;
            break;
          }
          act--;
        }
      }
      activeOf[i] = act;
      if (act <= 1) {
        activeSize--;
        [index[s], index[activeSize]] = [index[activeSize]!, index[s]!];
        s--;
        continue;
      }
      if (maxG - minG <= 1e-12) continue;
      stopping = Math.max(stopping, maxG - minG);
      for (let m = 0; m < act; m++) b[m] = g[m]! - ai * alpha[base + alphaIndex[base + m]!]!;
      solveSubProblem(ai, yIndex[i]!, c, act, b, dd, alphaNew);
      let nz = 0;
      for (let m = 0; m < act; m++) {
        const at = base + alphaIndex[base + m]!;
        const delta = alphaNew[m]! - alpha[at]!;
        alpha[at] = alphaNew[m]!;
        if (Math.abs(delta) >= 1e-12) {
          dInd[nz] = alphaIndex[base + m]!;
          dVal[nz] = delta;
          nz++;
        }
      }
      if (nz === 2) {
        const [c0, c1, v0, v1] = [dInd[0]!, dInd[1]!, dVal[0]!, dVal[1]!];
        for (let j = 0, o = 0; j < d; j++, o += k) {
          const v = x[row + j]!;
          w[o + c0]! += v0 * v;
          w[o + c1]! += v1 * v;
        }
      } else {
        for (let j = 0, o = 0; j < d; j++, o += k) {
          const v = x[row + j]!;
          for (let t = 0; t < nz; t++) w[o + dInd[t]!]! += dVal[t]! * v;
        }
      }
      for (let t = 0; t < nz; t++) w[biasAt + dInd[t]!]! += dVal[t]!;
    }
    pass++;
    if (onPass) {
      let loss = 0;
      let correct = 0;
      for (let i = 0; i < n; i++) {
        loss += lastLoss[i]!;
        correct += lastCorrect[i]!;
      }
      onPass(pass, loss / n, correct / n);
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
  return pass;
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
  const sorted = dd.subarray(0, act).sort();
  let beta = sorted[act - 1]! - ai * c;
  let r = 1;
  while (r < act && beta < r * sorted[act - 1 - r]!) {
    beta += sorted[act - 1 - r]!;
    r++;
  }
  beta /= r;
  for (let m = 0; m < act; m++) {
    alphaNew[m] = m === yi ? Math.min(c, (beta - b[m]!) / ai) : Math.min(0, (beta - b[m]!) / ai);
  }
}

/**
 * Mean cross-entropy plus `l2 · ||W||²` (bias not penalized) at `w`, its
 * gradient into `grad`, and the training accuracy.
 */
function softmaxObjective(
  p: Problem,
  l2: number,
  w: Weights,
  grad: Float64Array,
): { objective: number; loss: number; accuracy: number } {
  const { x, y, n, d, k } = p;
  const s = new Float64Array(k);
  grad.fill(0);
  const biasAt = d * k;
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const row = i * d;
    scoreRow(x, row, d, w, k, s);
    const yi = y[i]!;
    if (argMax(s, k) === yi) correct++;
    let max = -Infinity;
    for (let m = 0; m < k; m++) max = Math.max(max, s[m]!);
    let sum = 0;
    for (let m = 0; m < k; m++) {
      s[m] = Math.exp(s[m]! - max);
      sum += s[m]!;
    }
    loss += Math.log(sum) - Math.log(s[yi]!);
    // s becomes (softmax - onehot) / n: the gradient of the mean loss by the scores.
    for (let m = 0; m < k; m++) s[m] = (s[m]! / sum - (m === yi ? 1 : 0)) / n;
    addOuter(x, row, d, grad, k, s);
  }
  let penalty = 0;
  for (let t = 0; t < biasAt; t++) {
    penalty += w[t]! * w[t]!;
    grad[t]! += 2 * l2 * w[t]!;
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
 * Softmax regression by L-BFGS (10 corrections, Armijo backtracking) from
 * `w`, updated in place, until the gradient's largest entry is at most
 * `tol`, the objective stops decreasing, or `maxIterations`. Returns the
 * iterations taken; `onIteration` sees each accepted iterate's data loss and
 * training accuracy.
 */
function softmaxSolve(
  p: Problem,
  l2: number,
  w: Weights,
  maxIterations: number,
  tol: number,
  onIteration?: (iteration: number, loss: number, accuracy: number) => void,
): number {
  const size = w.length;
  const memory = 10;
  const ss: Float64Array[] = [];
  const ys: Float64Array[] = [];
  const rhos: number[] = [];
  let g = new Float64Array(size);
  let cur = softmaxObjective(p, l2, w, g);
  const dir = new Float64Array(size);
  const next = new Float64Array(size);
  let gNext = new Float64Array(size);
  const alphas = new Float64Array(memory);
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
    let found: ReturnType<typeof softmaxObjective> | undefined;
    for (let tries = 0; tries < 30; tries++) {
      for (let t = 0; t < size; t++) next[t] = w[t]! + step * dir[t]!;
      const trial = softmaxObjective(p, l2, next, gNext);
      if (trial.objective <= cur.objective + 1e-4 * step * slope) {
        found = trial;
        break;
      }
      step /= 2;
    }
    if (found === undefined) break;
    iteration++;
    const s = new Float64Array(size);
    const yv = new Float64Array(size);
    for (let t = 0; t < size; t++) {
      s[t] = next[t]! - w[t]!;
      yv[t] = gNext[t]! - g[t]!;
    }
    const sy = dot(s, yv);
    if (sy > 1e-12) {
      if (ss.length === memory) {
        ss.shift();
        ys.shift();
        rhos.shift();
      }
      ss.push(s);
      ys.push(yv);
      rhos.push(1 / sy);
    }
    const decrease = cur.objective - found.objective;
    w.set(next);
    [g, gNext] = [gNext, g];
    cur = found;
    onIteration?.(iteration, cur.loss, cur.accuracy);
    if (decrease <= 1e-12 * Math.max(1, Math.abs(cur.objective))) break;
  }
  return iteration;
}

/**
 * The most passes of each fit while the L2 weight is chosen: by then the
 * validation accuracy has settled to within a code or two (on the main job's
 * codes), and the fit chosen then goes on to convergence.
 */
const TRIAL_PASSES = 20;

/** Lets timers and requests of the same process run between two fits. */
function breathe(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Trains a linear classifier on CNN codes. Codes are standardized with the
 * training codes' per-dimension mean and standard deviation, and the
 * classifier minimizes the mean data loss plus `l2 · ||W||²` to convergence
 * (at most `epochs` passes; see the module doc for the solvers). Unless
 * `l2` is given, it is chosen on the validation codes: fits along
 * {@linkcode L2_GRID_C} from the strongest penalty down, each starting from
 * the previous solution and stopped after 20 passes, until two in a row do
 * not raise the validation accuracy; the best one goes on to convergence (or
 * `epochs` passes in all), and its passes are the epochs `history` reports. A training epoch's loss and accuracy are those of the weights
 * when the pass reached each code (the SVM) or after the pass (softmax),
 * as minibatch training reports them. The standardization is folded into the returned
 * kernel and bias, so they apply to raw codes. The result depends on the
 * codes, the options and the seed only, not on the device.
 *
 * SVM: the Crammer–Singer multiclass hinge loss `max_j (s_j + [j ≠ y]) − s_y`
 * (not squared), `l2 = 1 / (2 · C · n)` for liblinear's `C`.
 *
 * @param train training codes
 * @param validation validation codes to choose `l2` on and report, or `undefined`
 * @param options classifier, classes, most epochs per fit, seed, L2 weight or its choice
 * @returns the classifier, the metrics of every epoch of the fit kept and the L2 weights tried
 * @throws {RangeError} on empty or inconsistent codes, labels out of range, or bad options
 *
 * @example A softmax classifier on two separable codes
 * ```ts
 * import { trainLinear } from "./linear.ts";
 * const train = { codes: new Float32Array([0, 1, 1, 0]), labels: new Int32Array([0, 1]), count: 2, dim: 2 };
 * const fit = await trainLinear(train, undefined, { classifier: "softmax", numClasses: 2, epochs: 20 });
 * console.log(fit.history.at(-1)?.trainAccuracy); // 1
 * ```
 */
export async function trainLinear(
  train: CnnCodes,
  validation: CnnCodes | undefined,
  options: LinearTrainOptions,
): Promise<LinearFit> {
  const { classifier, numClasses: k, epochs } = options;
  const seed = options.seed ?? 0;
  const firstEpoch = options.firstEpoch ?? 1;
  if (train.count === 0) throw new RangeError("Cannot train a linear classifier on no codes");
  if (!(Number.isInteger(epochs) && epochs > 0)) {
    throw new RangeError(`Invalid epochs "${epochs}": use a positive integer`);
  }
  if (classifier !== "svm" && classifier !== "softmax") {
    throw new RangeError(`Invalid classifier "${String(classifier)}": use "svm" or "softmax"`);
  }
  if (options.l2 !== undefined && !(options.l2 > 0 && Number.isFinite(options.l2))) {
    throw new RangeError(`Invalid L2 weight "${options.l2}": use a positive number`);
  }
  const tol = options.tolerance ?? (classifier === "svm" ? 0.1 : 1e-4);
  if (!(tol > 0)) throw new RangeError(`Invalid tolerance "${tol}": use a positive number`);
  checkCodes(train, k, "training");
  if (validation) {
    checkCodes(validation, k, "validation");
    if (validation.dim !== train.dim) {
      throw new RangeError(
        `Invalid validation codes: length ${validation.dim}, the training codes' is ${train.dim}`,
      );
    }
  }
  const { dim: d, count: n } = train;
  const sum = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) sum[j]! += train.codes[i * d + j]!;
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) sq[j]! += (train.codes[i * d + j]! - sum[j]! / n) ** 2;
  }
  const mean = Float32Array.from(sum, (s) => s / n);
  const std = Float32Array.from(sq, (s) => Math.sqrt(s / n) > 1e-6 ? Math.sqrt(s / n) : 1);
  const p: Problem = { x: standardized(train, mean, std), y: train.labels, n, d, k };
  const valX = validation ? standardized(validation, mean, std) : undefined;
  const qd = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 1;
    for (let j = 0; j < d; j++) s += p.x[i * d + j]! ** 2;
    qd[i] = s;
  }
  const onValidation = (w: Weights) =>
    evaluateRows(classifier, valX!, validation!.labels, validation!.count, d, w, k);
  const fresh = (): SvmState => ({
    w: new Float64Array((d + 1) * k),
    alpha: new Float64Array(classifier === "svm" ? n * k : 0),
  });
  /** One fit of at most `passes` passes from `st` (updated in place), with the metrics of each, numbered after `done`. */
  const fitAt = (l2: number, st: SvmState, passes: number, done = 0): EpochMetrics[] => {
    const history: EpochMetrics[] = [];
    let last = performance.now();
    const record = (pass: number, loss: number, accuracy: number) => {
      const now = performance.now();
      const seconds = (now - last) / 1000;
      const metrics: EpochMetrics = {
        epoch: firstEpoch + done + pass - 1,
        phase: "linear",
        trainLoss: loss,
        trainAccuracy: accuracy,
        imagesPerSecond: n / Math.max(seconds, 1e-9),
        seconds,
      };
      if (valX) {
        const v = onValidation(st.w);
        metrics.valLoss = v.loss;
        metrics.valAccuracy = v.accuracy;
      }
      history.push(metrics);
      last = performance.now();
    };
    if (classifier === "svm") svmSolve(p, qd, 1 / (2 * l2 * n), st, passes, tol, seed, record);
    else softmaxSolve(p, l2, st.w, passes, tol, record);
    // Converged before its first pass (the starting weights are optimal): report them once.
    if (history.length === 0) {
      const e = evaluateRows(classifier, p.x, p.y, n, d, st.w, k);
      record(1, e.loss, e.accuracy);
    }
    return history;
  };

  const trials: L2Trial[] = [];
  let l2 = options.l2 ?? (valX === undefined ? 1e-3 : undefined);
  let w: Weights;
  let history: EpochMetrics[];
  if (l2 !== undefined) {
    const st = fresh();
    history = fitAt(l2, st, epochs);
    w = st.w;
  } else {
    const st = fresh();
    let best: { trial: L2Trial; state: SvmState; history: EpochMetrics[] } | undefined;
    let since = 0;
    const cap = Math.min(epochs, TRIAL_PASSES);
    for (const c of L2_GRID_C) {
      const trialL2 = 1 / (2 * c * n);
      const passes = fitAt(trialL2, st, cap);
      const end = passes.at(-1)!;
      const trial = {
        l2: trialL2,
        c,
        valAccuracy: end.valAccuracy!,
        valLoss: end.valLoss!,
        epochs: passes.length,
      };
      trials.push(trial);
      if (best === undefined || trial.valAccuracy > best.trial.valAccuracy) {
        best = { trial, state: { w: st.w.slice(), alpha: st.alpha.slice() }, history: passes };
        since = 0;
      } else if (++since >= 2) {
        break;
      }
      await breathe();
    }
    l2 = best!.trial.l2;
    history = best!.history;
    w = best!.state.w;
    if (history.length === cap && cap < epochs) {
      // The trial stopped at the cap, not converged: go on to convergence or `epochs`.
      history = [...history, ...fitAt(l2, best!.state, epochs - cap, cap)];
    }
  }
  for (const m of history) {
    options.onBatch?.(n, n, m.trainLoss);
    options.onEpoch?.(m);
  }

  const kernel = new Float32Array(d * k);
  const bias = new Float32Array(k);
  for (let m = 0; m < k; m++) {
    let b = w[d * k + m]!;
    for (let j = 0; j < d; j++) {
      const v = w[j * k + m]! / std[j]!;
      kernel[j * k + m] = v;
      b -= mean[j]! * v;
    }
    bias[m] = b;
  }
  return {
    model: { classifier, dim: d, numClasses: k, kernel, bias, mean, std, l2 },
    history,
    bestEpoch: history.at(-1)!.epoch,
    trials,
  };
}

/**
 * Loss and accuracy of a trained linear classifier on codes.
 *
 * @param model the classifier
 * @param codes codes of the same length, labels in range
 * @returns mean data loss (without L2) and accuracy
 * @throws {RangeError} when the codes' length or labels do not fit the classifier
 *
 * @example Perfect on the codes it separates
 * ```ts
 * import { evaluateLinear, type LinearModel } from "./linear.ts";
 * const model: LinearModel = {
 *   classifier: "svm", dim: 1, numClasses: 2, kernel: new Float32Array([-1, 1]),
 *   bias: new Float32Array([0, 0]), mean: new Float32Array([0]), std: new Float32Array([1]), l2: 1e-3,
 * };
 * const codes = { codes: new Float32Array([-2, 2]), labels: new Int32Array([0, 1]), count: 2, dim: 1 };
 * console.log((await evaluateLinear(model, codes)).accuracy); // 1
 * ```
 */
export function evaluateLinear(model: LinearModel, codes: CnnCodes): Promise<LinearEvaluation> {
  try {
    return Promise.resolve(evaluateChecked(model, codes));
  } catch (e) {
    return Promise.reject(e);
  }
}

function evaluateChecked(model: LinearModel, codes: CnnCodes): LinearEvaluation {
  checkCodes(codes, model.numClasses, "evaluation");
  if (codes.dim !== model.dim) {
    throw new RangeError(
      `Cannot evaluate a classifier of codes of length ${model.dim} on codes of length ${codes.dim}`,
    );
  }
  const w = new Float64Array((model.dim + 1) * model.numClasses);
  w.set(model.kernel);
  w.set(model.bias, model.dim * model.numClasses);
  return evaluateRows(
    model.classifier,
    codes.codes,
    codes.labels,
    codes.count,
    codes.dim,
    w,
    model.numClasses,
  );
}
