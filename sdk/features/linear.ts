/**
 * Linear classifiers on CNN codes: a multiclass linear SVM (Crammer–Singer
 * hinge loss) or softmax regression (cross-entropy), each with L2
 * regularization, trained to convergence on standardized codes, with the
 * regularization chosen on the validation codes. No tensors: the arithmetic
 * runs in a small compiled wasm SIMD module (`simd/linear.c`): codes are
 * scored in float32, and the sums that need more are float64 (the SVM's
 * dual variables and sub-problem, the softmax's gradient, the losses) or
 * compensated float32 (the SVM's weights), with plain multiplies and adds,
 * so the result is the same on every device and machine.
 *
 * - SVM: dual coordinate descent with shrinking, the method of liblinear's
 *   Crammer–Singer solver (`_linear_svm.ts`), with the bias as a
 *   regularized constant feature as liblinear and scikit-learn's `LinearSVC`
 *   have it.
 * - softmax: L-BFGS (10 corrections, backtracking line search) on the mean
 *   cross-entropy plus `l2 · ||W||²`, the bias not penalized, as
 *   scikit-learn's `LogisticRegression` has it (`_linear_softmax.ts`).
 *
 * One epoch is one pass over the training codes: a sweep of coordinate
 * descent over the examples still active, or one evaluation of the loss and
 * its gradient.
 *
 * @module
 */
import type { EpochMetrics, LinearClassifier } from "../types.ts";
import type { CnnCodes } from "./code_cache.ts";
import {
  borrowKernels,
  type HeapArray,
  type LinearKernels,
  returnKernels,
} from "./_linear_kernels.ts";
import {
  evalScratch,
  evaluateRows,
  type LinearEvaluation,
  type Problem,
} from "./_linear_problem.ts";
import { scaleSvmState, svmSolve, type SvmState } from "./_linear_svm.ts";
import { SecondShare, softmaxSolve } from "./_linear_softmax.ts";

export type { LinearEvaluation };

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
  /** Passes the fit took (from the previous trial's solution; the SVM's scaled to this `C`). */
  epochs: number;
}

/** What {@linkcode trainLinear} returns. */
export interface LinearFit {
  /** The classifier at the chosen L2 weight, trained to convergence. */
  model: LinearModel;
  /** Metrics of every epoch of the fit kept (at the chosen L2 weight, from the previous trial's solution; the SVM's scaled to this `C`), phase `linear`. */
  history: EpochMetrics[];
  /** The last epoch: the model is the converged one. */
  bestEpoch: number;
  /** The L2 weights tried on the validation codes, in order; empty when `l2` was given or there were none. */
  trials: L2Trial[];
}

/**
 * The weights of a linear classifier over standardized codes: `k x (d + 1)`,
 * row-major, one row per class with its bias last.
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

/**
 * `codes` laid out in the kernels' memory and standardized there with
 * `mean` and `std`; with `qd`, each code's `1 + ||x||²` after.
 */
function standardized(
  kern: LinearKernels,
  codes: CnnCodes,
  mean: HeapArray<Float32Array>,
  std: HeapArray<Float32Array>,
  qd?: HeapArray<Float64Array>,
): HeapArray<Float32Array> {
  const { count, dim } = codes;
  const out = kern.alloc(Float32Array, count * dim, false);
  out.view.set(codes.codes);
  kern.standardize(out, count, dim, mean, std, qd);
  return out;
}

/**
 * The most passes of each fit while the L2 weight is chosen: by then the
 * validation accuracy has settled to within a code or two (on the main job's
 * codes), and the fit chosen then goes on to convergence.
 */
const TRIAL_PASSES = 20;

/** The metrics of each epoch of one fit, and the weights after each. */
interface Fit {
  history: EpochMetrics[];
  weights: Float64Array[];
}

/**
 * Lets timers and requests of the same process run between two fits: one
 * turn of the event loop, by a message to itself. (A `setTimeout` of 0
 * waits for the timers' clamp, 1 to 2 ms, at every fit.)
 */
function breathe(): Promise<void> {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

/**
 * Trains a linear classifier on CNN codes. Codes are standardized with the
 * training codes' per-dimension mean and standard deviation, and the
 * classifier minimizes the mean data loss plus `l2 · ||W||²` to convergence
 * (at most `epochs` passes; see the module doc for the solvers). Unless
 * `l2` is given, it is chosen on the validation codes: fits along
 * {@linkcode L2_GRID_C} from the strongest penalty down, each starting from
 * the previous solution (the SVM's dual solution scaled by the ratio of the
 * two `C`s: still feasible, and nearer the new one where the penalty is
 * strong) and stopped after 20 passes, until one falls below
 * the best validation accuracy by more than that accuracy's standard error
 * (`√(a(1 − a)/n)` over the `n` validation codes) or two in a row do not
 * raise it; the best one goes on to convergence (or
 * `epochs` passes in all), and its passes are the epochs `history` reports. A training epoch's loss and accuracy are those of the weights
 * when the pass reached each code (the SVM, over the classes still active
 * for that code: as in liblinear, the classes shrinking set aside are not
 * scored) or after the pass (softmax), as minibatch training reports them. The standardization is folded into the returned
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
 * import { assertEquals } from "@std/assert";
 * import { trainLinear } from "./linear.ts";
 * const train = { codes: new Float32Array([0, 1, 1, 0]), labels: new Int32Array([0, 1]), count: 2, dim: 2 };
 * const fit = await trainLinear(train, undefined, { classifier: "softmax", numClasses: 2, epochs: 20 });
 * assertEquals(fit.history.at(-1)?.trainAccuracy, 1);
 * assertEquals(fit.model.kernel.length, 2 * 2);
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
  const kern = borrowKernels();
  try {
    // The codes' statistics and standardization run in the kernels, over the copy laid out there.
    const trainX = kern.alloc(Float32Array, n * d, false);
    trainX.view.set(train.codes);
    const sum = kern.alloc(Float64Array, d);
    const sq = kern.alloc(Float64Array, d);
    kern.codeStats(trainX, n, d, sum, sq);
    const meanX = kern.alloc(Float32Array, d);
    const stdX = kern.alloc(Float32Array, d);
    for (let j = 0; j < d; j++) {
      const s = Math.sqrt(sq.view[j]! / n);
      meanX.view[j] = sum.view[j]! / n;
      stdX.view[j] = s > 1e-6 ? s : 1;
    }
    const qdX = kern.alloc(Float64Array, n);
    kern.standardize(trainX, n, d, meanX, stdX, qdX);
    const mean = meanX.view.slice();
    const std = stdX.view.slice();
    const qd = qdX.view.slice();
    const p: Problem = { kern, x: trainX, y: train.labels, n, d, k };
    const valX = validation ? standardized(kern, validation, meanX, stdX) : undefined;
    // The softmax's evaluations split the codes in two, the second share on a second thread.
    using second = classifier === "softmax" ? await SecondShare.start(p) : undefined;
    const scratch = evalScratch(kern, d, k);
    const trainY = kern.alloc(Int32Array, n);
    trainY.view.set(train.labels);
    const valY = validation ? kern.alloc(Int32Array, validation.count) : undefined;
    valY?.view.set(validation!.labels);
    const valW = kern.alloc(Float64Array, k * (d + 1));
    /**
     * Fills in the validation metrics of the epochs in `fit` that lack them,
     * from the weights kept after each. Only the fit chosen needs every
     * epoch's; a trial needs its last one only, so this runs after the fact.
     */
    const validate = (fit: Fit, from = 0): void => {
      if (!valX) return;
      for (let e = from; e < fit.history.length; e++) {
        const m = fit.history[e]!;
        if (m.valAccuracy !== undefined) continue;
        valW.view.set(fit.weights[e]!);
        const v = evaluateRows(
          classifier,
          kern,
          valX,
          valY!,
          validation!.count,
          d,
          valW,
          k,
          scratch,
          true,
        );
        m.valLoss = v.loss;
        m.valAccuracy = v.accuracy;
      }
    };
    const fresh = (): SvmState => ({
      w: new Float64Array((d + 1) * k),
      alpha: new Float64Array(classifier === "svm" ? n * k : 0),
    });
    /** One fit of at most `passes` passes from `st` (updated in place), with the metrics of each, numbered after `done`, and the weights after each. */
    const fitAt = (l2: number, st: SvmState, passes: number, done = 0): Fit => {
      const fit: Fit = { history: [], weights: [] };
      let last = performance.now();
      const record = (pass: number, loss: number, accuracy: number, w: HeapArray<Float64Array>) => {
        const now = performance.now();
        const seconds = (now - last) / 1000;
        fit.history.push({
          epoch: firstEpoch + done + pass - 1,
          phase: "linear",
          trainLoss: loss,
          trainAccuracy: accuracy,
          imagesPerSecond: n / Math.max(seconds, 1e-9),
          seconds,
        });
        fit.weights.push(w.view.slice());
        last = performance.now();
      };
      if (classifier === "svm") svmSolve(p, qd, 1 / (2 * l2 * n), st, passes, tol, seed, record);
      else softmaxSolve(p, l2, st.w, passes, tol, record, second);
      // Converged before its first pass (the starting weights are optimal): report them once.
      if (fit.history.length === 0) {
        const w = kern.alloc(Float64Array, st.w.length);
        w.view.set(st.w);
        const e = evaluateRows(classifier, kern, p.x, trainY, n, d, w, k, scratch, true);
        record(1, e.loss, e.accuracy, w);
      }
      return fit;
    };

    const trials: L2Trial[] = [];
    let l2 = options.l2 ?? (valX === undefined ? 1e-3 : undefined);
    let w: Weights;
    let history: EpochMetrics[];
    if (l2 !== undefined) {
      const st = fresh();
      const fit = fitAt(l2, st, epochs);
      validate(fit);
      history = fit.history;
      w = st.w;
    } else {
      const st = fresh();
      let best: { trial: L2Trial; state: SvmState; fit: Fit } | undefined;
      let since = 0;
      const cap = Math.min(epochs, TRIAL_PASSES);
      let previousC: number | undefined;
      for (const c of L2_GRID_C) {
        const trialL2 = 1 / (2 * c * n);
        // The SVM's dual solution at the previous C, scaled to this one: still feasible, and
        // where the penalty is strong (most codes' variables at their bounds) near the new one.
        if (classifier === "svm" && previousC !== undefined) scaleSvmState(st, c / previousC);
        previousC = c;
        const fit = fitAt(trialL2, st, cap);
        validate(fit, fit.history.length - 1);
        const end = fit.history.at(-1)!;
        const trial = {
          l2: trialL2,
          c,
          valAccuracy: end.valAccuracy!,
          valLoss: end.valLoss!,
          epochs: fit.history.length,
        };
        trials.push(trial);
        if (best === undefined || trial.valAccuracy > best.trial.valAccuracy) {
          best = { trial, state: { w: st.w.slice(), alpha: st.alpha.slice() }, fit };
          since = 0;
        } else {
          // A fit clearly below the best (by more than the best accuracy's standard error over
          // the validation codes) ends the search; within that noise, one more fit decides.
          const top = best.trial.valAccuracy;
          const noise = Math.sqrt(top * (1 - top) / validation!.count);
          if (++since >= 2 || top - trial.valAccuracy > noise) break;
        }
        await breathe();
      }
      l2 = best!.trial.l2;
      validate(best!.fit);
      history = best!.fit.history;
      w = best!.state.w;
      if (history.length === cap && cap < epochs) {
        // The trial stopped at the cap, not converged: go on to convergence or `epochs`.
        const more = fitAt(l2, best!.state, epochs - cap, cap);
        validate(more);
        history = [...history, ...more.history];
      }
    }
    for (const m of history) {
      options.onBatch?.(n, n, m.trainLoss);
      options.onEpoch?.(m);
    }

    const kernel = new Float32Array(d * k);
    const bias = new Float32Array(k);
    for (let m = 0; m < k; m++) {
      let b = w[m * (d + 1) + d]!;
      for (let j = 0; j < d; j++) {
        const v = w[m * (d + 1) + j]! / std[j]!;
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
  } finally {
    returnKernels(kern);
  }
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
 * import { assertEquals } from "@std/assert";
 * import { evaluateLinear, type LinearModel } from "./linear.ts";
 * const model: LinearModel = {
 *   classifier: "svm", dim: 1, numClasses: 2, kernel: new Float32Array([-1, 1]),
 *   bias: new Float32Array([0, 0]), mean: new Float32Array([0]), std: new Float32Array([1]), l2: 1e-3,
 * };
 * const codes = { codes: new Float32Array([-2, 2]), labels: new Int32Array([0, 1]), count: 2, dim: 1 };
 * assertEquals((await evaluateLinear(model, codes)).accuracy, 1);
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
  const { dim: d, numClasses: k } = model;
  const kern = borrowKernels();
  try {
    const w = kern.alloc(Float64Array, k * (d + 1));
    for (let m = 0; m < k; m++) {
      for (let j = 0; j < d; j++) w.view[m * (d + 1) + j] = model.kernel[j * k + m]!;
      w.view[m * (d + 1) + d] = model.bias[m]!;
    }
    const x = kern.alloc(Float32Array, codes.codes.length, false);
    x.view.set(codes.codes);
    const y = kern.alloc(Int32Array, codes.count);
    y.view.set(codes.labels);
    return evaluateRows(
      model.classifier,
      kern,
      x,
      y,
      codes.count,
      d,
      w,
      k,
      evalScratch(kern, d, k),
    );
  } finally {
    returnKernels(kern);
  }
}
