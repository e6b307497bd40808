/**
 * What the linear classifiers' solvers share: a problem laid out in the
 * kernels' memory (standardized codes, labels, sizes), the weights' layout,
 * and the loss and accuracy of weights on codes.
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

/** The kernels' scratch of an evaluation. */
export interface EvalScratch {
  /** `4k` values: four codes' scores (float64). */
  scores: HeapArray<Float64Array>;
  /** `k x (d + 1)`: the weights rounded to float32. */
  wf: HeapArray<Float32Array>;
  /** `4k` values: four codes' scores (float32). */
  sf: HeapArray<Float32Array>;
  /** Two values: the summed loss and the number correct. */
  out: HeapArray<Float64Array>;
}

/** The scratch of evaluations with codes of length `d` and `k` classes, laid out in `kern`'s memory. */
export function evalScratch(kern: LinearKernels, d: number, k: number): EvalScratch {
  return {
    scores: kern.alloc(Float64Array, 4 * k),
    wf: kern.alloc(Float32Array, k * (d + 1)),
    sf: kern.alloc(Float32Array, 4 * k),
    out: kern.alloc(Float64Array, 2),
  };
}

/**
 * Mean loss (hinge or cross-entropy) and accuracy over the `count` codes in
 * `x` (`d` values each, labels in `labels`) under weights `w`: one call of
 * the kernels, the scores in float64 (`evaluate`), or when `float32` in
 * float32 (`evaluate32`, for standardized codes).
 */
export function evaluateRows(
  classifier: LinearClassifier,
  kern: LinearKernels,
  x: HeapArray<Float32Array>,
  labels: HeapArray<Int32Array>,
  count: number,
  d: number,
  w: HeapArray<Float64Array>,
  k: number,
  scratch: EvalScratch,
  float32 = false,
): LinearEvaluation {
  if (count === 0) return { loss: NaN, accuracy: 0 };
  const softmax = classifier === "softmax";
  const r = float32
    ? kern.evaluate32(x, labels, 0, count, d, w, k, softmax, scratch, scratch.out)
    : kern.evaluate(x, labels, 0, count, d, w, k, softmax, scratch.scores, scratch.out);
  return { loss: r.loss / count, accuracy: r.correct / count };
}
