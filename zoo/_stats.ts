/**
 * Source statistics for a checkpoint's card: the per-dimension mean and
 * standard deviation of the ReLU'd CNN codes at the penultimate cut point over
 * the source training split, which the fine-tuning advisor compares a new
 * dataset against.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Architecture } from "../sdk/arch/types.ts";
import type { Dataset, Preprocessing } from "../sdk/data/types.ts";
import type { SourceStats } from "../sdk/finetune/types.ts";

/** Layers that are the identity at inference: a cut after one reads the same codes as before it. */
const INFERENCE_IDENTITY = new Set(["Dropout", "SpatialDropout2D", "GaussianNoise", "Activation"]);

/**
 * The penultimate representation of a classifier: the last cut point before
 * the output layer, stepping back over layers that are the identity at
 * inference (Dropout). LeNet-5 gives `fc2`, a VGG-style net with
 * Dense-Dropout-Dense gives the first Dense, a global-pool net gives the pool.
 *
 * @param arch the architecture from `analyze(model)`
 * @returns the layer name
 * @throws {RangeError} when the model has no cut point before its output layer
 *
 * @example LeNet-5's penultimate layer
 * ```ts
 * import { analyze } from "../sdk/arch/analyze.ts";
 * import { lenet5 } from "./_recipes.ts";
 * import { penultimateCut } from "./_stats.ts";
 * const model = lenet5();
 * console.log(penultimateCut(analyze(model))); // "fc2"
 * model.dispose();
 * ```
 */
export function penultimateCut(arch: Architecture): string {
  const byName = new Map(arch.layers.map((l) => [l.name, l]));
  const cuts = arch.cutPoints.slice(0, -1);
  for (let i = cuts.length - 1; i >= 0; i--) {
    const layer = byName.get(cuts[i]!);
    if (layer && !INFERENCE_IDENTITY.has(layer.className) && layer.className !== "InputLayer") {
      return layer.name;
    }
  }
  throw new RangeError(`Cannot find a cut point before the output layer of "${arch.name}"`);
}

/**
 * Computes the mean and standard deviation (population) of each dimension of
 * the ReLU'd CNN codes at `layerName` over a dataset. Spatial codes
 * `[h, w, c]` are average-pooled to `c` values per image. Runs batched in
 * inference mode; only per-batch sums are read back (asynchronously), and
 * every tensor is disposed.
 *
 * @param model the checkpoint
 * @param layerName the cut layer whose output the codes are
 * @param dataset the source training split
 * @param preprocess how the dataset's images become the model's input
 * @param opts `datasetLabel` for the result's `dataset`, `batchSize`
 * @returns the statistics, as a card's `sourceStats`
 * @throws {RangeError} when `layerName` is not a layer of the model or the dataset is empty
 *
 * @example Statistics of LeNet-5's fc2 codes over 20 digits
 * ```ts
 * import { loadBuiltin } from "../sdk/data/mod.ts";
 * import { lenet5 } from "./_recipes.ts";
 * import { codeStatistics } from "./_stats.ts";
 * const model = lenet5();
 * const data = await loadBuiltin("mnist", { split: "train", perClass: 2 });
 * const preprocess = { height: 28, width: 28, channels: 1, range: [0, 1] } as const;
 * const stats = await codeStatistics(model, "fc2", data, preprocess);
 * console.log(stats.dim, stats.count); // 84 20
 * model.dispose();
 * ```
 */
export async function codeStatistics(
  model: tf.LayersModel,
  layerName: string,
  dataset: Dataset,
  preprocess: Preprocessing,
  opts: { datasetLabel?: string; batchSize?: number } = {},
): Promise<SourceStats> {
  let layer: tf.layers.Layer;
  try {
    layer = model.getLayer(layerName);
  } catch {
    throw new RangeError(
      `Cannot compute code statistics: "${model.name}" has no layer "${layerName}"`,
    );
  }
  const codesModel = tf.model({
    inputs: model.inputs,
    outputs: layer.output as tf.SymbolicTensor,
  });
  let sum: Float64Array | null = null;
  let sumSq: Float64Array | null = null;
  let count = 0;
  for await (const { xs, ys } of dataset.batches(opts.batchSize ?? 100, { preprocess })) {
    const moments = tf.tidy(() => {
      let codes = tf.relu(codesModel.predict(xs) as tf.Tensor);
      if (codes.rank === 4) codes = tf.mean(codes, [1, 2]);
      codes = codes.reshape([codes.shape[0]!, -1]);
      return tf.stack([tf.sum(codes, 0), tf.sum(tf.square(codes), 0)]);
    });
    const n = xs.shape[0];
    tf.dispose([xs, ys]);
    const values = await moments.data();
    const dim = moments.shape[1]!;
    moments.dispose();
    sum ??= new Float64Array(dim);
    sumSq ??= new Float64Array(dim);
    for (let i = 0; i < dim; i++) {
      sum[i]! += values[i]!;
      sumSq[i]! += values[dim + i]!;
    }
    count += n;
  }
  if (sum === null || sumSq === null || count === 0) {
    throw new RangeError(`Cannot compute code statistics over "${dataset.name}": it is empty`);
  }
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sumSq, (s, i) => Math.sqrt(Math.max(0, s / count - mean[i]! ** 2)));
  return {
    layer: layerName,
    dim: mean.length,
    count,
    mean: mean.map(round),
    std: std.map(round),
    dataset: opts.datasetLabel ?? dataset.identity,
  };
}

/** Six significant digits keep the card readable; the advisor needs no more. */
function round(v: number): number {
  return Number(v.toPrecision(6));
}
