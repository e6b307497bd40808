/**
 * What the linear classifiers' solvers share: a problem laid out in the
 * kernels' memory (standardized codes, labels, sizes), the weights' layout,
 * and the loss and accuracy of scores.
 *
 * Weights are `k x (d + 1)` float64, one row per class with its bias last,
 * so a class's weights are contiguous for the kernels and the whole vector
 * is one array for L-BFGS.
 *
 * @module
 */
import type { LinearClassifier } from "../types.ts";
import type { HeapArray, LinearKernels } from "./_linear_kernels.ts";

/** Standardized training data of one problem, in the kernels' memory. */
export interface Problem {
  /** The kernels whose memory holds `x`. */
  kern: LinearKernels;
  /** `n x d` standardized codes, row-major. */
  x: HeapArray<Float32Array>;
  /** `n` labels. */
  y: Int32Array;
  /** Number of codes. */
  n: number;
  /** Code length. */
  d: number;
  /** Number of classes. */
  k: number;
}

/** Loss and accuracy of a classifier on some codes. */
export interface LinearEvaluation {
  /** Mean data loss (hinge or cross-entropy), without the L2 penalty. */
  loss: number;
  /** Fraction classified correctly. */
  accuracy: number;
}

/** Rows scored per kernel call where whole blocks are scored: the scores stay in cache. */
export const BLOCK_ROWS = 512;

/** Loss (hinge or cross-entropy) of the `k` scores of one code at `at` in `s`. */
export function rowLoss(
  classifier: LinearClassifier,
  s: Float64Array,
  at: number,
  k: number,
  y: number,
): number {
  let max = -Infinity;
  if (classifier === "svm") {
    for (let m = 0; m < k; m++) max = Math.max(max, s[at + m]! + (m === y ? 0 : 1));
    return max - s[at + y]!;
  }
  for (let m = 0; m < k; m++) max = Math.max(max, s[at + m]!);
  let sum = 0;
  for (let m = 0; m < k; m++) sum += Math.exp(s[at + m]! - max);
  return Math.log(sum) + max - s[at + y]!;
}

/** The class with the highest of the `k` scores at `at` in `s` (the first on ties). */
export function argMax(s: Float64Array, at: number, k: number): number {
  let best = 0;
  for (let m = 1; m < k; m++) if (s[at + m]! > s[at + best]!) best = m;
  return best;
}

/**
 * Mean loss and accuracy over the `count` codes in `x` (`d` values each)
 * under weights `w`, scored a block at a time into `scratch` (at least
 * {@linkcode BLOCK_ROWS}` · k` values).
 */
export function evaluateRows(
  classifier: LinearClassifier,
  kern: LinearKernels,
  x: HeapArray<Float32Array>,
  labels: Int32Array,
  count: number,
  d: number,
  w: HeapArray<Float64Array>,
  k: number,
  scratch: HeapArray<Float64Array>,
): LinearEvaluation {
  let loss = 0;
  let correct = 0;
  for (let start = 0; start < count; start += BLOCK_ROWS) {
    const rows = Math.min(BLOCK_ROWS, count - start);
    kern.scores(x, start, rows, d, w, k, scratch);
    const s = scratch.view;
    for (let r = 0; r < rows; r++) {
      const y = labels[start + r]!;
      loss += rowLoss(classifier, s, r * k, k, y);
      if (argMax(s, r * k, k) === y) correct++;
    }
  }
  return { loss: count > 0 ? loss / count : NaN, accuracy: count > 0 ? correct / count : 0 };
}
