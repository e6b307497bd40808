/**
 * Attaches a new classifier head to a pretrained network cut at a layer
 * (`cutAt`): the pretrained layers up to the cut are rebuilt with copies of
 * their weights, the layers after it are dropped, and a freshly initialized
 * Dense(numClasses, softmax) reads the cut's output (through
 * GlobalAveragePooling2D when that output is a spatial map).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { analyze } from "../../core/arch/analyze.ts";
import { cutAt } from "./cut.ts";
import type { LayersModel } from "../_tfjs_types.ts";

/** Options of {@linkcode attachHead}. */
export interface AttachHeadOptions {
  /** Classes of the new task: the units of the new Dense layer. */
  numClasses: number;
  /** The cut point the head reads. @default the penultimate layer, `analyze().classifierCut` (else `featureCut`) */
  cut?: string;
  /** Seed of the head's Glorot-uniform initialization. @default 0 */
  seed?: number;
}

/** What {@linkcode attachHead} built. */
export interface HeadedModel {
  /** The new predictor: the pretrained layers up to `cutLayer`, then the new head. */
  model: LayersModel;
  /** The cut point the head reads. */
  cutLayer: string;
  /** The pretrained layers kept, in topological order, the input layer excluded. */
  baseLayers: string[];
  /** The new layers, in order: an optional pooling or Flatten layer, then the Dense classifier. */
  headLayers: string[];
  /** The cut points among the kept pretrained layers, the input and `cutLayer` excluded, in order. */
  innerCutPoints: string[];
}

function uniqueName(base: string, taken: Set<string>): string {
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  return name;
}

/**
 * Builds a new model from `model`'s layers up to `cut` (weights copied; the
 * original is neither changed nor disposed) and a new classifier: for a
 * spatial cut output (`[batch, h, w, c]`) GlobalAveragePooling2D then
 * Dense(numClasses, softmax); for a flat one the Dense layer directly; for
 * any other rank Flatten then Dense.
 *
 * @param model the pretrained checkpoint, single input and single output
 * @param opts classes of the new task, where to cut, the head's seed
 * @returns the new model and which of its layers are pretrained and which new
 * @throws {RangeError} when `numClasses` is not an integer of at least 2, or `cut` is not a cut point of the model
 * @throws {TypeError} when the model has no clear feature cut and no `cut` is given, or cannot be rebuilt (several inputs, shared or nested layers)
 *
 * @example A LeNet-style net with a new 3-class head
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { attachHead } from "./head.ts";
 * const net = tf.sequential({
 *   layers: [
 *     tf.layers.conv2d({ name: "conv", inputShape: [8, 8, 1], filters: 2, kernelSize: 3 }),
 *     tf.layers.flatten({ name: "flatten" }),
 *     tf.layers.dense({ name: "logits", units: 10, activation: "softmax" }),
 *   ],
 * });
 * const { model, cutLayer, headLayers } = attachHead(net, { numClasses: 3, cut: "conv" });
 * assertEquals(cutLayer, "conv");
 * assertEquals(headLayers, ["head_pool", "head_logits"]);
 * assertEquals(model.outputs[0]!.shape, [null, 3]);
 * model.dispose();
 * net.dispose();
 * ```
 */
export function attachHead(model: LayersModel, opts: AttachHeadOptions): HeadedModel {
  if (!Number.isInteger(opts.numClasses) || opts.numClasses < 2) {
    throw new RangeError(
      `Cannot attach a head with "${opts.numClasses}" classes: use an integer of at least 2`,
    );
  }
  const arch = analyze(model);
  const cut = opts.cut ?? arch.classifierCut ?? arch.featureCut;
  if (cut === null) {
    throw new TypeError(
      `Cannot attach a head to model "${model.name}": it has no clear feature cut: pass a cut point, one of ${
        JSON.stringify(arch.cutPoints)
      }`,
    );
  }
  const cutIndex = arch.cutPoints.indexOf(cut);
  if (cutIndex <= 0) {
    throw new RangeError(
      `Cannot attach a head at layer "${cut}" of model "${model.name}": ${
        cutIndex === 0 ? "it is the input" : "it is not a cut point"
      }: use one of ${JSON.stringify(arch.cutPoints.slice(1))}`,
    );
  }
  const base = cutAt(model, cut);
  const features = base.model.outputs[0]!;
  const keep = new Set(base.keptLayers);
  const taken = new Set([...base.model.inputs.map((i) => i.sourceLayer.name), ...keep]);
  const headLayers: string[] = [];
  let x = features;
  const rank = features.shape.length;
  if (rank !== 2) {
    const name = uniqueName(rank === 4 ? "head_pool" : "head_flatten", taken);
    const layer = rank === 4
      ? tf.layers.globalAveragePooling2d({ name })
      : tf.layers.flatten({ name });
    x = layer.apply(x) as tf.SymbolicTensor;
    headLayers.push(name);
  }
  const denseName = uniqueName("head_logits", taken);
  const out = tf.layers.dense({
    name: denseName,
    units: opts.numClasses,
    activation: "softmax",
    kernelInitializer: tf.initializers.glorotUniform({ seed: opts.seed ?? 0 }),
  }).apply(x) as tf.SymbolicTensor;
  headLayers.push(denseName);
  return {
    model: tf.model({ name: `${model.name}_finetuned`, inputs: base.model.inputs, outputs: out }),
    cutLayer: cut,
    baseLayers: base.keptLayers,
    headLayers,
    innerCutPoints: arch.cutPoints.slice(1, cutIndex).filter((n) => keep.has(n)),
  };
}
