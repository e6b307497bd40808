/**
 * The ReLU'd CNN codes of a pretrained network cut at a cut point (the cut
 * itself is `cutAt` of `sdk/surgery/`): the fixed-feature-extractor half of
 * transfer learning.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { createHash } from "node:crypto";
import { cutAt } from "../surgery/cut.ts";
import { type FoldedModel, foldForInference } from "../surgery/fold.ts";
import type { Dataset, Preprocessing } from "../data/types.ts";
import type { CnnCodes, CodePooling } from "./code_cache.ts";
import type { LayersModel } from "../_tfjs_types.ts";

export type { CnnCodes, CodePooling } from "./code_cache.ts";
export { checkCutPoint } from "../surgery/cut.ts";

/** A network cut at a cut point, ending in its codes. */
export interface CodeExtractor {
  /**
   * Input images to codes `[batch, dim]`: fresh layers with copies of the
   * checkpoint's weights up to the cut, then a ReLU when the cut's output can
   * be negative, then global average pooling or Flatten for a spatial output.
   */
  model: LayersModel;
  /** The cut layer. */
  cut: string;
  /** Code length. */
  dim: number;
  /** How codes are formed, e.g. `avg-pooled 5x5x16 -> 16`. */
  description: string;
  /** Names of the checkpoint's layers the extractor keeps (all frozen). */
  keptLayers: string[];
}

/**
 * Builds the code extractor of `model` cut at `cut`: new layers with copies
 * of the weights of every layer the cut depends on, a ReLU when the cut's
 * output can be negative, then pooling of a spatial output. The checkpoint is
 * not modified and can be disposed independently.
 *
 * @param model the pretrained checkpoint (single input and output)
 * @param cut a cut point (`analyze(model).cutPoints`)
 * @param pooling `avg`: global average pooling of a spatial output; `flatten`: all of it
 * @returns the extractor and how its codes are formed
 * @throws {RangeError} when `cut` is not a cut point, naming the nearest ones
 * @throws {TypeError} when the model cannot be rebuilt (several inputs, shared layers)
 *
 * @example Codes of LeNet at its last pooling layer
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { codeExtractor } from "./extract.ts";
 * const net = tf.sequential({ layers: [
 *   tf.layers.conv2d({ name: "conv", inputShape: [8, 8, 1], filters: 4, kernelSize: 3 }),
 *   tf.layers.maxPooling2d({ name: "pool", poolSize: 2 }),
 *   tf.layers.flatten({ name: "flat" }),
 *   tf.layers.dense({ name: "out", units: 2 }),
 * ] });
 * const extractor = codeExtractor(net, "pool", "avg");
 * assertEquals(extractor.description, "ReLU'd, avg-pooled 3x3x4 -> 4");
 * assertEquals(extractor.dim, 4);
 * ```
 */
export function codeExtractor(
  model: LayersModel,
  cut: string,
  pooling: CodePooling = "avg",
): CodeExtractor {
  const base = cutAt(model, cut);
  let x = base.model.outputs[0]!;
  const relu = !base.nonNegative;
  if (relu) x = tf.layers.reLU({ name: `${cut}_codes_relu` }).apply(x) as tf.SymbolicTensor;
  const shape = x.shape.slice(1) as number[];
  let description = shape.join("x");
  if (shape.length === 3) {
    const [h, w, c] = shape as [number, number, number];
    if (pooling === "avg") {
      x = tf.layers.globalAveragePooling2d({ name: `${cut}_codes_avg` }).apply(
        x,
      ) as tf.SymbolicTensor;
      description = `avg-pooled ${h}x${w}x${c} -> ${c}`;
    } else {
      x = tf.layers.flatten({ name: `${cut}_codes_flatten` }).apply(x) as tf.SymbolicTensor;
      description = `flattened ${h}x${w}x${c} -> ${h * w * c}`;
    }
  } else if (shape.length !== 1) {
    x = tf.layers.flatten({ name: `${cut}_codes_flatten` }).apply(x) as tf.SymbolicTensor;
    description = `flattened ${description} -> ${shape.reduce((a, b) => a * b, 1)}`;
  }
  const dim = x.shape[1] as number;
  return {
    model: tf.model({ name: `${model.name}_codes_${cut}`, inputs: base.model.inputs, outputs: x }),
    cut,
    dim,
    description: `${relu ? "ReLU'd, " : ""}${description}`,
    keptLayers: base.keptLayers,
  };
}

/** Values of one layer's output a batch of codes may hold by default: 8M, 32 MiB of float32. */
const BATCH_VALUES = 2 ** 23;

/**
 * The default number of images per forward pass of `extractor`: as many as
 * keep its largest layer output within 8M values (32 MiB), between 128 and
 * 1,024. Small networks on small images run in a few large batches, whose
 * per-batch cost (dispatch, layout, reads) is then paid a few times only;
 * large ones keep batches of 128.
 *
 * @param extractor a model from images to `[batch, dim]`
 * @returns the batch size
 *
 * @example LeNet-sized codes run 1,024 images at a time
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { defaultCodeBatchSize } from "./extract.ts";
 * const small = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 6, kernelSize: 5 })] });
 * assertEquals(defaultCodeBatchSize(small), 1024);
 * const large = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [224, 224, 3], filters: 64, kernelSize: 3 })] });
 * assertEquals(defaultCodeBatchSize(large), 128);
 * ```
 */
export function defaultCodeBatchSize(extractor: LayersModel): number {
  let largest = 1;
  for (const layer of extractor.layers) {
    const shapes = layer.outputShape;
    const list = (Array.isArray(shapes[0]) ? shapes : [shapes]) as (number | null)[][];
    for (const shape of list) {
      const values = shape.slice(1).reduce<number>((a, b) => a * (b ?? 1), 1);
      if (values > largest) largest = values;
    }
  }
  return Math.max(128, Math.min(1024, Math.floor(BATCH_VALUES / largest)));
}

/** Options of {@linkcode computeCodes}. */
export interface ComputeCodesOptions {
  /** Images per forward pass. @default {@linkcode defaultCodeBatchSize} of the extractor */
  batchSize?: number;
  /** Stop after this many examples. @default all */
  limit?: number;
  /** Take the examples in a shuffled order (with `limit`: a random sample). @default false */
  shuffle?: boolean;
  /** Seed of the shuffle. @default 0 */
  seed?: number;
}

/**
 * Computes the codes of every example of `data` (or the first `limit`) with
 * `extractor`, in inference mode on the current backend, one batch at a time.
 * Reads are asynchronous and every tensor is disposed.
 *
 * @param extractor a model from images to `[batch, dim]` (see {@linkcode codeExtractor})
 * @param data the dataset
 * @param preprocess the checkpoint's input preprocessing
 * @param options batch size, sample size and order
 * @returns codes and labels, in the dataset's order (or the shuffled one)
 * @throws {RangeError} on an invalid batch size or preprocessing
 *
 * @example Codes of 20 digits
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { computeCodes } from "./extract.ts";
 * import { loadBuiltin } from "../data/builtin.ts";
 * const data = await loadBuiltin("mnist", { perClass: 2 });
 * const extractor = tf.sequential({ layers: [tf.layers.globalAveragePooling2d({ inputShape: [28, 28, 1] })] });
 * const codes = await computeCodes(extractor, data, { height: 28, width: 28, channels: 1, range: [0, 1] });
 * assertEquals([codes.count, codes.dim], [20, 1]);
 * ```
 */
export async function computeCodes(
  extractor: LayersModel,
  data: Dataset,
  preprocess: Preprocessing,
  options: ComputeCodesOptions = {},
): Promise<CnnCodes> {
  const batchSize = options.batchSize ?? defaultCodeBatchSize(extractor);
  const count = Math.min(data.size, options.limit ?? data.size);
  const dim = extractor.outputs[0]!.shape[1] as number;
  const codes = new Float32Array(count * dim);
  const labels = new Int32Array(count);
  let at = 0;
  const batches = data.batches(batchSize, {
    preprocess,
    shuffle: options.shuffle ?? false,
    seed: options.seed ?? 0,
  });
  // With BatchNormalization after its convolutions (MobileNets, InceptionV3), the
  // extractor runs with them folded in: the same codes up to float rounding, in
  // one pass per layer instead of up to four. A convolution and the 2×2 max pooling
  // after it (LeNet's conv1 and pool1) run as one op.
  const folded = foldedOrNull(extractor);
  try {
    for await (const { xs, ys } of batches) {
      const take = Math.min(xs.shape[0], count - at);
      const out = tf.tidy(() => {
        const x = take < xs.shape[0] ? xs.slice(0, take) : xs;
        // The batch is the forward pass: `apply` runs it without `predict`'s copy of the input.
        return folded !== null
          ? folded.predict(x)
          : extractor.apply(x, { training: false }) as tf.Tensor;
      });
      const [values, ls] = await Promise.all([out.data(), ys.data()]);
      tf.dispose([out, xs, ys]);
      codes.set(values as Float32Array, at * dim);
      labels.set((ls as Int32Array).subarray(0, take), at);
      at += take;
      if (at >= count) break;
    }
  } finally {
    folded?.dispose();
  }
  return { codes, labels, count: at, dim };
}

/**
 * `model`'s inference pass with its BatchNormalization layers folded and
 * its convolutions run with the max pooling after them, or null when it has
 * neither or its graph is not one `foldForInference` reads (the model then
 * runs as it is).
 */
function foldedOrNull(model: LayersModel): FoldedModel | null {
  let folded: FoldedModel;
  try {
    folded = foldForInference(model);
  } catch (e) {
    if (e instanceof TypeError) return null;
    throw e;
  }
  if (folded.folded.length > 0 || folded.pooled.length > 0) return folded;
  folded.dispose();
  return null;
}

/**
 * A digest of a model's weights (shapes and values, in order), for cache keys
 * when the checkpoint's own digest is unknown. Reads every weight
 * asynchronously.
 *
 * @param model the model
 * @returns `weights-sha256:<hex>`
 *
 * @example Two copies of a model hash equally
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { weightsDigest } from "./extract.ts";
 * const build = () => tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1, kernelInitializer: "ones" })] });
 * assertEquals(await weightsDigest(build()), await weightsDigest(build()));
 * ```
 */
export async function weightsDigest(model: LayersModel): Promise<string> {
  const hash = createHash("sha256");
  for (const w of model.weights) {
    const values = await w.read().data();
    hash.update(`${w.shape.join("x")}:${w.dtype};`);
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return `weights-sha256:${hash.digest("hex")}`;
}
