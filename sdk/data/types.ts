/**
 * The contract between data loaders and the fine-tuning code: a {@linkcode Dataset}
 * streams labelled image batches, the {@linkcode Preprocessing} a checkpoint
 * expects is applied per batch, and {@linkcode SplitOptions} select a
 * deterministic train/validation/test split.
 *
 * @module
 */
import type { Tensor1D, Tensor4D } from "../_tfjs_types.ts";

/**
 * What a checkpoint expects as input. Batches are resized (bilinear) to
 * `height`x`width`, converted to `channels` (gray is repeated to RGB, RGB is
 * reduced to gray by luma 0.299R + 0.587G + 0.114B), reordered to
 * `channelOrder`, scaled from [0, 255] to `range`, then normalized per channel
 * as `(x - mean) / std`.
 *
 * @example Inputs of an ImageNet-style checkpoint
 * ```ts
 * import type { Preprocessing } from "./types.ts";
 * const imagenet: Preprocessing = {
 *   height: 224,
 *   width: 224,
 *   channels: 3,
 *   range: [0, 1],
 *   mean: [0.485, 0.456, 0.406],
 *   std: [0.229, 0.224, 0.225],
 * };
 * ```
 */
export interface Preprocessing {
  /** Input height in pixels. */
  height: number;
  /** Input width in pixels. */
  width: number;
  /** Input channels: 1 (grayscale) or 3 (color). */
  channels: 1 | 3;
  /** The value range pixels are scaled to, e.g. `[0, 1]` or `[-1, 1]`. */
  range: readonly [number, number];
  /** Per-channel mean subtracted after scaling; one value or one per channel. @default none */
  mean?: readonly number[];
  /** Per-channel standard deviation divided by after the mean; one value or one per channel. @default none */
  std?: readonly number[];
  /** Order of color channels. @default "rgb" */
  channelOrder?: "rgb" | "bgr";
  /**
   * Resize images of another size bilinearly with aligned corners
   * (`tf.image.resizeBilinear(x, size, true)`), as Keras-era checkpoints such
   * as nsfwjs's were fed; otherwise with half-pixel centers.
   * @default false
   */
  alignCorners?: boolean;
}

/** One batch: images and their integer class labels. The consumer owns and must dispose both. */
export interface Batch {
  /** Images, `[batch, height, width, channels]`, float32. */
  xs: Tensor4D;
  /** Class indices into {@linkcode Dataset.classes}, `[batch]`, int32. */
  ys: Tensor1D;
}

/** How {@linkcode Dataset.batches} orders and prepares examples. */
export interface BatchOptions {
  /** Shuffle the examples with a PRNG seeded by `seed`. @default false */
  shuffle?: boolean;
  /** Seed of the shuffle; pass the epoch number to get a new order each epoch. @default 0 */
  seed?: number;
  /**
   * What the model expects. Without it, images keep the dataset's
   * {@linkcode Dataset.imageShape} with values scaled to [0, 1].
   * @default native shape, range [0, 1]
   */
  preprocess?: Preprocessing;
}

/**
 * A labelled image dataset that streams batches and is never materialized as
 * one tensor.
 *
 * Every batch's `xs` and `ys` belong to the consumer: dispose them (or create
 * them inside `tf.tidy`-managed code that does) once used, or they leak.
 *
 * @example One training epoch that disposes every batch
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import type { Dataset } from "./types.ts";
 * async function trainEpoch(model: tf.LayersModel, data: Dataset, epoch: number) {
 *   for await (const { xs, ys } of data.batches(32, { shuffle: true, seed: epoch })) {
 *     const labels = tf.oneHot(ys, data.classes.length);
 *     await model.trainOnBatch(xs, labels);
 *     tf.dispose([xs, ys, labels]);
 *   }
 * }
 * ```
 */
export interface Dataset {
  /** A short human-readable name, e.g. `mnist (train)`. */
  readonly name: string;
  /**
   * A stable id for caching derived results (CNN codes, metrics): changes
   * whenever the source, its content, the split or the selection options do.
   */
  readonly identity: string;
  /** Class names; label `i` means `classes[i]`. */
  readonly classes: string[];
  /** Number of examples. */
  readonly size: number;
  /** The shape of one image as stored, `[height, width, channels]`. */
  readonly imageShape: [number, number, number];
  /** Number of examples per class, aligned with {@linkcode Dataset.classes}. */
  readonly counts: number[];
  /**
   * Streams the examples in batches; the last batch may be smaller.
   *
   * @param batchSize examples per batch, a positive integer
   * @param opts order and preprocessing
   * @returns batches whose tensors the caller must dispose
   * @throws {RangeError} when `batchSize` or `opts.preprocess` is invalid
   */
  batches(batchSize: number, opts?: BatchOptions): AsyncIterable<Batch>;
}

/** Which part of a source a dataset takes, see {@linkcode selectSplit} in `_split.ts`. */
export type Split = "train" | "validation" | "test" | "all";

/**
 * A deterministic split of a source. Per class, the examples are shuffled with
 * mulberry32 seeded by `seed` and the class index; the first
 * `round(n * testFraction)` are the test split, the next
 * `round(n * validationFraction)` the validation split, the rest the train
 * split. `perClass` then keeps the first N of each class of the chosen split,
 * so the test split never changes with `perClass`.
 */
export interface SplitOptions {
  /** Which part to take. */
  split?: Split;
  /** Keep at most this many examples of each class of the split. @default all */
  perClass?: number;
  /** Seed of the split and of the dataset's base order. @default 0 */
  seed?: number;
  /** Fraction of each class held out for validation. @default 0.1 */
  validationFraction?: number;
  /** Fraction of each class held out for test. @default 0.2 */
  testFraction?: number;
}
