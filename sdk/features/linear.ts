/**
 * Linear classifiers on CNN codes: a multiclass linear SVM (Crammer–Singer
 * hinge loss) or softmax regression (cross-entropy), each with L2
 * regularization, trained by minibatch Adam on standardized codes, with early
 * stopping on the validation loss.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { EpochMetrics, LinearClassifier } from "../finetune/types.ts";
import type { CnnCodes } from "./code_cache.ts";
import { mulberry32 } from "../_random.ts";

/** Options of {@linkcode trainLinear}. */
export interface LinearTrainOptions {
  /** `svm`: Crammer–Singer multiclass hinge; `softmax`: cross-entropy. */
  classifier: LinearClassifier;
  /** Number of classes; labels are `0 … numClasses - 1`. */
  numClasses: number;
  /** Passes over the training codes. */
  epochs: number;
  /** Codes per Adam step. */
  batchSize: number;
  /** Adam's learning rate. */
  lr: number;
  /** Seed of the minibatch order. */
  seed: number;
  /** Weight of the L2 penalty `l2 * ||W||²` on the standardized-code weights. @default 1e-3 */
  l2?: number;
  /** Stop after this many epochs without a better validation loss. @default 3 */
  patience?: number;
  /** Number of the first epoch in the reported metrics. @default 1 */
  firstEpoch?: number;
  /** Called after every epoch. */
  onEpoch?: (m: EpochMetrics) => void;
  /** Called after every step with the codes done in the epoch, the epoch's size and the step's loss. */
  onBatch?: (done: number, total: number, loss: number) => void;
}

/**
 * A trained linear classifier over raw codes: `scores = codes · kernel + bias`.
 * The standardization it was trained with is folded into `kernel` and `bias`.
 */
export interface LinearModel {
  /** `svm` (Crammer–Singer hinge) or `softmax`. */
  classifier: LinearClassifier;
  /** Code length. */
  dim: number;
  /** Number of classes: the columns of `kernel`. */
  numClasses: number;
  /** `dim x numClasses`, row-major. */
  kernel: Float32Array;
  /** `numClasses` values. */
  bias: Float32Array;
  /** Per-dimension mean of the training codes. */
  mean: Float32Array;
  /** Per-dimension standard deviation of the training codes (1 where it was 0). */
  std: Float32Array;
}

/** What {@linkcode trainLinear} returns. */
export interface LinearFit {
  /** The classifier of the epoch with the best validation loss (the last without validation). */
  model: LinearModel;
  /** Metrics of every epoch run, phase `linear`. */
  history: EpochMetrics[];
  /** The epoch `model` comes from. */
  bestEpoch: number;
}

/** Loss and accuracy of a classifier on some codes. */
export interface LinearEvaluation {
  /** Mean data loss (hinge or cross-entropy), without the L2 penalty. */
  loss: number;
  /** Fraction classified correctly. */
  accuracy: number;
}

function shuffled(n: number, seed: number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const rand = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** One Adam update (β₁ 0.9, β₂ 0.999, ε 1e-8) of `params` by `grads`; call inside `tf.tidy`. */
function adamStep(
  params: tf.Variable[],
  grads: tf.Tensor[],
  moments: { m: tf.Variable; v: tf.Variable }[],
  step: number,
  lr: number,
): void {
  const [beta1, beta2] = [0.9, 0.999];
  params.forEach((p, i) => {
    const g = grads[i]!;
    const { m, v } = moments[i]!;
    m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
    v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
    const mHat = tf.div(m, 1 - beta1 ** step);
    const vHat = tf.div(v, 1 - beta2 ** step);
    p.assign(tf.sub(p, tf.div(tf.mul(mHat, lr), tf.add(tf.sqrt(vHat), 1e-8))));
  });
}

/** Mean data loss of `scores` for integer `labels`. */
function dataLoss(classifier: LinearClassifier, scores: tf.Tensor2D, labels: tf.Tensor1D) {
  return tf.tidy(() => {
    const onehot = tf.oneHot(labels, scores.shape[1]);
    if (classifier === "softmax") return tf.losses.softmaxCrossEntropy(onehot, scores);
    // Crammer–Singer: max over classes of (score + 1 for a wrong class) minus the true score.
    const margins = tf.add(scores, tf.sub(1, onehot));
    return tf.mean(tf.sub(tf.max(margins, 1), tf.sum(tf.mul(scores, onehot), 1)));
  }) as tf.Scalar;
}

async function evaluateTensors(
  classifier: LinearClassifier,
  scores: tf.Tensor2D,
  labels: tf.Tensor1D,
): Promise<LinearEvaluation> {
  const [loss, correct] = tf.tidy(() => [
    dataLoss(classifier, scores, labels),
    tf.sum(tf.cast(tf.equal(tf.argMax(scores, 1), labels), "float32")),
  ]);
  const [l, c] = await Promise.all([loss!.data(), correct!.data()]);
  tf.dispose([loss!, correct!]);
  return { loss: l[0]!, accuracy: labels.shape[0] > 0 ? c[0]! / labels.shape[0] : 0 };
}

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
 * Trains a linear classifier on CNN codes. Codes are standardized with the
 * training codes' per-dimension mean and standard deviation; the weights
 * start at zero and Adam minimizes the mean data loss plus
 * `l2 * ||W||²` over shuffled minibatches. With validation codes, training
 * stops after `patience` epochs without a lower validation loss and the best
 * epoch's weights are kept. The standardization is folded into the returned
 * kernel and bias, so they apply to raw codes.
 *
 * SVM: the Crammer–Singer multiclass hinge loss
 * `max_j (s_j + [j ≠ y]) − s_y` (not squared).
 *
 * @param train training codes
 * @param validation validation codes for early stopping, or `undefined` to run every epoch
 * @param options classifier, epochs, batch size, learning rate, L2, seed
 * @returns the classifier, the metrics of every epoch and the epoch kept
 * @throws {RangeError} on empty or inconsistent codes, labels out of range, or bad options
 *
 * @example A softmax classifier on two separable codes
 * ```ts
 * import { trainLinear } from "./linear.ts";
 * const train = { codes: new Float32Array([0, 1, 1, 0]), labels: new Int32Array([0, 1]), count: 2, dim: 2 };
 * const fit = await trainLinear(train, undefined, {
 *   classifier: "softmax", numClasses: 2, epochs: 20, batchSize: 2, lr: 0.1, seed: 0,
 * });
 * console.log(fit.history.at(-1)?.trainAccuracy); // 1
 * ```
 */
export async function trainLinear(
  train: CnnCodes,
  validation: CnnCodes | undefined,
  options: LinearTrainOptions,
): Promise<LinearFit> {
  const { classifier, numClasses, epochs, batchSize, lr, seed } = options;
  const l2 = options.l2 ?? 1e-3;
  const patience = options.patience ?? 3;
  const firstEpoch = options.firstEpoch ?? 1;
  if (train.count === 0) throw new RangeError("Cannot train a linear classifier on no codes");
  if (!(Number.isInteger(epochs) && epochs > 0)) {
    throw new RangeError(`Invalid epochs "${epochs}": use a positive integer`);
  }
  if (!(Number.isInteger(batchSize) && batchSize > 0)) {
    throw new RangeError(`Invalid batch size "${batchSize}": use a positive integer`);
  }
  if (!(lr > 0)) throw new RangeError(`Invalid learning rate "${lr}": use a positive number`);
  if (!(l2 >= 0)) throw new RangeError(`Invalid L2 weight "${l2}": use a number >= 0`);
  checkCodes(train, numClasses, "training");
  if (validation) {
    checkCodes(validation, numClasses, "validation");
    if (validation.dim !== train.dim) {
      throw new RangeError(
        `Invalid validation codes: length ${validation.dim}, the training codes' is ${train.dim}`,
      );
    }
  }
  const { dim, count } = train;
  const mean = new Float32Array(dim);
  const std = new Float32Array(dim);
  for (let i = 0; i < count; i++) {
    for (let d = 0; d < dim; d++) mean[d]! += train.codes[i * dim + d]! / count;
  }
  for (let i = 0; i < count; i++) {
    for (let d = 0; d < dim; d++) std[d]! += (train.codes[i * dim + d]! - mean[d]!) ** 2 / count;
  }
  for (let d = 0; d < dim; d++) std[d] = Math.sqrt(std[d]!) > 1e-6 ? Math.sqrt(std[d]!) : 1;
  const standardize = (c: CnnCodes) =>
    tf.tidy(() =>
      tf.div(tf.sub(tf.tensor2d(c.codes, [c.count, dim]), tf.tensor1d(mean)), tf.tensor1d(std))
    ) as tf.Tensor2D;

  const xs = standardize(train);
  const ys = tf.tensor1d(train.labels, "int32");
  const valXs = validation ? standardize(validation) : undefined;
  const valYs = validation ? tf.tensor1d(validation.labels, "int32") : undefined;
  // Inside tidy: tf.variable() leaves its initial value as a separate tensor.
  const w = tf.tidy(() => tf.variable(tf.zeros([dim, numClasses]), true));
  const b = tf.tidy(() => tf.variable(tf.zeros([numClasses]), true));
  // Adam by hand: two moments per variable, all of them ours to dispose.
  const moments = [w, b].map((p) => ({
    m: tf.tidy(() => tf.variable(tf.zerosLike(p), false)),
    v: tf.tidy(() => tf.variable(tf.zerosLike(p), false)),
  }));
  let step = 0;
  const scoresOf = (x: tf.Tensor2D) => tf.add(tf.matMul(x, w), b) as tf.Tensor2D;
  const history: EpochMetrics[] = [];
  let best: { loss: number; epoch: number; w: tf.Tensor; b: tf.Tensor } | undefined;
  let sinceBest = 0;
  try {
    for (let e = 0; e < epochs; e++) {
      const started = performance.now();
      const order = shuffled(count, seed * 7919 + e);
      for (let start = 0; start < count; start += batchSize) {
        const idx = order.subarray(start, start + batchSize);
        const loss = tf.tidy(() => {
          const at = tf.tensor1d(idx, "int32");
          const x = tf.gather(xs, at) as tf.Tensor2D;
          const y = tf.gather(ys, at) as tf.Tensor1D;
          const penalized = () =>
            tf.add(
              dataLoss(classifier, scoresOf(x), y),
              tf.mul(l2, tf.sum(tf.square(w))),
            ) as tf.Scalar;
          const { value, grads } = tf.variableGrads(penalized, [w, b]);
          adamStep([w, b], [grads[w.name]!, grads[b.name]!], moments, ++step, lr);
          return value;
        });
        if (options.onBatch) {
          options.onBatch(start + idx.length, count, (await loss.data())[0]!);
        }
        loss.dispose();
      }
      const seconds = (performance.now() - started) / 1000;
      const trainScores = tf.tidy(() => scoresOf(xs));
      const trainEval = await evaluateTensors(classifier, trainScores, ys);
      trainScores.dispose();
      const metrics: EpochMetrics = {
        epoch: firstEpoch + e,
        phase: "linear",
        trainLoss: trainEval.loss,
        trainAccuracy: trainEval.accuracy,
        imagesPerSecond: count / Math.max(seconds, 1e-9),
        seconds,
      };
      if (valXs && valYs) {
        const valScores = tf.tidy(() => scoresOf(valXs));
        const valEval = await evaluateTensors(classifier, valScores, valYs);
        valScores.dispose();
        metrics.valLoss = valEval.loss;
        metrics.valAccuracy = valEval.accuracy;
      }
      history.push(metrics);
      options.onEpoch?.(metrics);
      const monitored = metrics.valLoss ?? metrics.trainLoss;
      if (best === undefined || monitored < best.loss || !valXs) {
        if (best) tf.dispose([best.w, best.b]);
        best = { loss: monitored, epoch: metrics.epoch, w: tf.clone(w), b: tf.clone(b) };
        sinceBest = 0;
      } else if (++sinceBest >= patience) {
        break;
      }
    }
    const folded = tf.tidy(() => {
      const stdT = tf.tensor1d(std);
      const kernel = tf.div(best!.w, tf.expandDims(stdT, 1));
      const bias = tf.sub(best!.b, tf.squeeze(tf.matMul(tf.tensor2d(mean, [1, dim]), kernel), [0]));
      return [kernel, bias];
    });
    const [kernel, bias] = await Promise.all(folded.map((t) => t.data()));
    tf.dispose(folded);
    return {
      model: {
        classifier,
        dim,
        numClasses,
        kernel: kernel as Float32Array,
        bias: bias as Float32Array,
        mean,
        std,
      },
      history,
      bestEpoch: best!.epoch,
    };
  } finally {
    if (best) tf.dispose([best.w, best.b]);
    tf.dispose([xs, ys, w, b]);
    if (valXs) tf.dispose([valXs, valYs!]);
    tf.dispose(moments.flatMap(({ m, v }) => [m, v]));
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
 * import { evaluateLinear, type LinearModel } from "./linear.ts";
 * const model: LinearModel = {
 *   classifier: "svm", dim: 1, numClasses: 2, kernel: new Float32Array([-1, 1]),
 *   bias: new Float32Array([0, 0]), mean: new Float32Array([0]), std: new Float32Array([1]),
 * };
 * const codes = { codes: new Float32Array([-2, 2]), labels: new Int32Array([0, 1]), count: 2, dim: 1 };
 * console.log((await evaluateLinear(model, codes)).accuracy); // 1
 * ```
 */
export async function evaluateLinear(
  model: LinearModel,
  codes: CnnCodes,
): Promise<LinearEvaluation> {
  checkCodes(codes, model.numClasses, "evaluation");
  if (codes.dim !== model.dim) {
    throw new RangeError(
      `Cannot evaluate a classifier of codes of length ${model.dim} on codes of length ${codes.dim}`,
    );
  }
  const [scores, labels] = tf.tidy(() => [
    tf.add(
      tf.matMul(
        tf.tensor2d(codes.codes, [codes.count, codes.dim]),
        tf.tensor2d(model.kernel, [model.dim, model.numClasses]),
      ),
      tf.tensor1d(model.bias),
    ) as tf.Tensor2D,
    tf.tensor1d(codes.labels, "int32"),
  ]);
  try {
    return await evaluateTensors(model.classifier, scores!, labels! as tf.Tensor1D);
  } finally {
    tf.dispose([scores!, labels!]);
  }
}
