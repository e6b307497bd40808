/**
 * The zoo's own training loop and evaluation: Adam, softmax cross-entropy,
 * one `tf.tidy` per step, the epoch number as the shuffle seed, and early
 * stopping on validation accuracy that restores the best epoch's weights.
 * Private to `zoo/`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Dataset, Preprocessing } from "../sdk/data/types.ts";

/** How one zoo entry is trained from scratch. */
export interface TrainRecipe {
  /** The entry's name in the zoo, e.g. `lenet5`. */
  name: string;
  /** Builds the untrained model (seeded initializers). */
  build: () => tf.LayersModel;
  /** Epochs unless the command line says otherwise. */
  epochs: number;
  /** Examples per step; {@linkcode RECIPE_DEFAULTS} when left out. */
  batchSize?: number;
  /** Adam's learning rate; {@linkcode RECIPE_DEFAULTS} when left out. */
  learningRate?: number;
  /** Stop after this many epochs without a better validation accuracy. */
  patience: number;
  /** One sentence for the card. */
  description: string;
  /** A paragraph for the README: what the architecture is and why it is in the zoo. */
  about: string;
}

/** The schedule the zoo's entries share unless a recipe sets its own. */
export const RECIPE_DEFAULTS = { batchSize: 32, learningRate: 1e-3 } as const;

/** One finished epoch. */
export interface EpochLog {
  /** 1-based. */
  epoch: number;
  /** Mean training loss over the epoch. */
  loss: number;
  /** Validation accuracy after the epoch. */
  valAccuracy: number;
  /** Training images per second. */
  imagesPerSecond: number;
  /** Wall time of the epoch, training and validation. */
  seconds: number;
}

/** What {@linkcode trainModel} did. */
export interface TrainLog {
  /** Every epoch run. */
  epochs: EpochLog[];
  /** The epoch whose weights the model holds at the end. */
  bestEpoch: number;
  /** Wall time of the whole run. */
  seconds: number;
}

/** Options of {@linkcode trainModel}. */
export interface TrainOptions {
  /** The images trained on, shuffled each epoch with the epoch number as seed. */
  train: Dataset;
  /** The images whose accuracy picks the epoch to keep. */
  validation: Dataset;
  /** How images become the model's input. */
  preprocess: Preprocessing;
  /** Most epochs to run. */
  epochs: number;
  /** Examples per step. */
  batchSize: number;
  /** Adam's learning rate. */
  learningRate: number;
  /** Stop after this many epochs without a better validation accuracy. */
  patience: number;
  /** Called after every epoch. */
  onEpoch?: (log: EpochLog) => void;
}

/** Mean softmax cross-entropy of probabilities `p` against integer labels. */
function crossEntropy(p: tf.Tensor, ys: tf.Tensor1D, numClasses: number): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(ys, numClasses);
    const logP = tf.log(tf.clipByValue(p, 1e-7, 1));
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logP), -1))) as tf.Scalar;
  });
}

/**
 * Trains `model` in place with Adam; at the end it holds the weights of the
 * epoch with the best validation accuracy.
 *
 * @param model a model whose output is class probabilities
 * @param opts data, schedule and callbacks
 * @returns the per-epoch log
 */
export async function trainModel(model: tf.LayersModel, opts: TrainOptions): Promise<TrainLog> {
  const start = performance.now();
  const numClasses = opts.train.classes.length;
  const optimizer = tf.train.adam(opts.learningRate);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const log: TrainLog = { epochs: [], bestEpoch: 0, seconds: 0 };
  let best: tf.Tensor[] | null = null;
  let bestAccuracy = -1;
  try {
    for (let epoch = 1; epoch <= opts.epochs; epoch++) {
      const t0 = performance.now();
      let seen = 0;
      let lossSum: tf.Scalar = tf.scalar(0);
      for await (
        const { xs, ys } of opts.train.batches(opts.batchSize, {
          shuffle: true,
          seed: epoch,
          preprocess: opts.preprocess,
        })
      ) {
        const n = ys.shape[0];
        const loss = optimizer.minimize(
          () =>
            tf.tidy(() => {
              const p = model.apply(xs, { training: true }) as tf.Tensor;
              return crossEntropy(p, ys, numClasses);
            }),
          true,
          vars,
        )!;
        const next = tf.tidy(() => tf.add(lossSum, tf.mul(loss, n)) as tf.Scalar);
        tf.dispose([xs, ys, loss, lossSum]);
        lossSum = next;
        seen += n;
      }
      const trainSeconds = (performance.now() - t0) / 1000;
      const loss = (await lossSum.data())[0]! / Math.max(1, seen);
      lossSum.dispose();
      const valAccuracy = (await evaluateAccuracy(model, opts.validation, opts.preprocess))
        .accuracy;
      const entry: EpochLog = {
        epoch,
        loss,
        valAccuracy,
        imagesPerSecond: seen / trainSeconds,
        seconds: (performance.now() - t0) / 1000,
      };
      log.epochs.push(entry);
      opts.onEpoch?.(entry);
      if (valAccuracy > bestAccuracy) {
        bestAccuracy = valAccuracy;
        log.bestEpoch = epoch;
        if (best) tf.dispose(best);
        best = model.getWeights().map((w) => w.clone());
      } else if (epoch - log.bestEpoch >= opts.patience) break;
    }
    if (best && log.bestEpoch !== log.epochs.length) model.setWeights(best);
  } finally {
    if (best) tf.dispose(best);
    optimizer.dispose();
  }
  log.seconds = (performance.now() - start) / 1000;
  return log;
}

/** What {@linkcode evaluateAccuracy} measured. */
export interface Evaluation {
  /** Fraction of correct top-1 predictions. */
  accuracy: number;
  /** Images evaluated. */
  count: number;
}

/**
 * Top-1 accuracy of a model on a dataset, in inference mode, batched.
 *
 * @param model a model whose output is class scores
 * @param data the images
 * @param preprocess how images become the model's input
 * @param limit evaluate only the first N images of the dataset's order
 * @returns accuracy and count
 */
export async function evaluateAccuracy(
  model: tf.LayersModel,
  data: Dataset,
  preprocess: Preprocessing,
  limit = Infinity,
): Promise<Evaluation> {
  let correct = 0;
  let count = 0;
  for await (const { xs, ys } of data.batches(100, { preprocess })) {
    if (count >= limit) {
      tf.dispose([xs, ys]);
      break;
    }
    const keep = Math.min(ys.shape[0], limit - count);
    const hits = tf.tidy(() => {
      const p = model.predict(xs.slice(0, keep)) as tf.Tensor;
      return tf.sum(tf.cast(tf.equal(tf.argMax(p, -1), ys.slice(0, keep)), "int32"));
    });
    correct += (await hits.data())[0]!;
    tf.dispose([xs, ys, hits]);
    count += keep;
  }
  return { accuracy: count === 0 ? 0 : correct / count, count };
}
