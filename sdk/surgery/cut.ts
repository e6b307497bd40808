/**
 * Cutting a pretrained network at a layer: {@linkcode cutAt} rebuilds the
 * layers the cut depends on, with copies of their weights, into a new model
 * that ends at the cut; {@linkcode checkCutPoint} says why a layer cannot be
 * cut at. Both the fixed feature extractor (CNN codes) and the fine-tuning
 * head start from such a cut.
 *
 * A cut point is a layer whose output alone carries everything the rest of
 * the network reads (`analyze(model).cutPoints`): cutting anywhere else would
 * drop a branch that bypasses the layer.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { analyze } from "../../core/arch/analyze.ts";
import type { Architecture } from "../../core/arch/types.ts";
import type { LayersModel } from "../_tfjs_types.ts";
import { layerGraph, type LayerNode, rebuild, tensorKey } from "./_rebuild.ts";

/** A network cut at a cut point, by {@linkcode cutAt}. */
export interface CutModel {
  /**
   * Input images to the cut's output: fresh layers with copies of the
   * checkpoint's weights. New layers applied to `model.outputs[0]` build on
   * it: `tf.model({ inputs: model.inputs, outputs })`.
   */
  model: LayersModel;
  /** The cut layer. */
  cut: string;
  /** Names of the checkpoint's layers kept, in topological order, the input layer excluded. */
  keptLayers: string[];
  /**
   * Whether the cut's output is never negative, judged from the layer
   * configs alone: a ReLU, sigmoid or softmax, possibly followed by layers
   * that keep signs (pooling, Flatten, Dropout, Concatenate, …).
   */
  nonNegative: boolean;
}

/** Activations whose outputs are never negative. */
const NON_NEGATIVE_ACTIVATIONS = new Set(["relu", "relu6", "sigmoid", "softmax", "softplus"]);
/** Layers whose output is non-negative when all their inputs are. */
const SIGN_PRESERVING = new Set([
  "MaxPooling2D",
  "AveragePooling2D",
  "GlobalAveragePooling2D",
  "GlobalMaxPooling2D",
  "Flatten",
  "Reshape",
  "Dropout",
  "SpatialDropout2D",
  "ZeroPadding2D",
  "Cropping2D",
  "UpSampling2D",
  "Concatenate",
  "Add",
  "Average",
  "Maximum",
]);

/** Whether `name`'s output is non-negative for every input, judged from the configs alone. */
function nonNegative(byName: Map<string, LayerNode>, name: string): boolean {
  const node = byName.get(name);
  if (node === undefined) return false;
  const config = node.layer.getConfig() as { activation?: unknown; negativeSlope?: unknown };
  if (node.className === "ReLU") return !config.negativeSlope;
  if (node.className === "Softmax") return true;
  if (typeof config.activation === "string" && NON_NEGATIVE_ACTIVATIONS.has(config.activation)) {
    return true;
  }
  if (SIGN_PRESERVING.has(node.className) && config.activation === undefined) {
    return node.inbound.length > 0 && node.inbound.every((i) => nonNegative(byName, i.layer));
  }
  return false;
}

/**
 * Checks that `cut` is a cut point of `arch`.
 *
 * @param arch the analysis of the model to cut
 * @param cut the layer to cut at
 * @throws {RangeError} naming the nearest cut points when it is not
 *
 * @example A layer inside a residual block is not a cut point
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertThrows } from "@std/assert";
 * import { analyze } from "../../core/arch/analyze.ts";
 * import { checkCutPoint } from "./cut.ts";
 * const input = tf.input({ shape: [4] });
 * const inner = tf.layers.dense({ name: "inner", units: 4 }).apply(input) as tf.SymbolicTensor;
 * const sum = tf.layers.add({ name: "sum" }).apply([input, inner]) as tf.SymbolicTensor;
 * const net = tf.model({ inputs: input, outputs: sum });
 * checkCutPoint(analyze(net), "sum");
 * assertThrows(() => checkCutPoint(analyze(net), "inner"), RangeError, "not a cut point");
 * ```
 */
export function checkCutPoint(arch: Architecture, cut: string): void {
  if (arch.cutPoints.includes(cut)) return;
  const order = new Map(arch.layers.map((l, i) => [l.name, i]));
  const at = order.get(cut);
  if (at === undefined) {
    throw new RangeError(
      `Cannot cut "${arch.name}" at "${cut}": there is no such layer; cut points: ${
        arch.cutPoints.map((c) => `"${c}"`).join(", ")
      }`,
    );
  }
  const before = arch.cutPoints.findLast((c) => (order.get(c) ?? -1) < at);
  const after = arch.cutPoints.find((c) => (order.get(c) ?? -1) > at);
  const nearest = [before, after].filter((c) => c !== undefined).map((c) => `"${c}"`);
  throw new RangeError(
    `Cannot cut "${arch.name}" at "${cut}": it is not a cut point (another branch bypasses it, so its output alone does not carry what the rest of the network reads); the nearest cut points are ${
      nearest.join(" and ")
    }`,
  );
}

/**
 * Cuts `model` at `cut`: a new model from its input to the cut's output,
 * built from fresh layers with copies of the weights of every layer the cut
 * depends on; the layers after the cut are dropped. The checkpoint is
 * neither changed nor disposed, and the two can be disposed independently.
 *
 * @param model the pretrained checkpoint (single input and single output)
 * @param cut a cut point (`analyze(model).cutPoints`)
 * @returns the cut model, the layers it kept and whether its output is non-negative
 * @throws {RangeError} when `cut` is not a cut point, naming the nearest ones
 * @throws {TypeError} when the model cannot be rebuilt (several inputs, shared or nested layers)
 *
 * @example Cut a small convnet at its pooling layer
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { cutAt } from "./cut.ts";
 * const net = tf.sequential({ layers: [
 *   tf.layers.conv2d({ name: "conv", inputShape: [8, 8, 1], filters: 4, kernelSize: 3, activation: "relu" }),
 *   tf.layers.maxPooling2d({ name: "pool", poolSize: 2 }),
 *   tf.layers.flatten({ name: "flat" }),
 *   tf.layers.dense({ name: "out", units: 2 }),
 * ] });
 * const { model, keptLayers, nonNegative } = cutAt(net, "pool");
 * assertEquals(model.outputs[0]!.shape, [null, 3, 3, 4]);
 * assertEquals(keptLayers, ["conv", "pool"]);
 * assertEquals(nonNegative, true);
 * ```
 */
export function cutAt(model: LayersModel, cut: string): CutModel {
  checkCutPoint(analyze(model), cut);
  const graph = layerGraph(model, "cut");
  const byName = new Map(graph.layers.map((n) => [n.name, n]));
  const keep = new Set<string>();
  const pending = [cut];
  while (pending.length > 0) {
    const name = pending.pop()!;
    const node = byName.get(name);
    if (node === undefined || keep.has(name)) continue;
    keep.add(name);
    for (const ref of node.inbound) pending.push(ref.layer);
  }
  const input = tf.input({ shape: graph.inputShape as number[], name: graph.inputName });
  const tensors = rebuild(
    graph,
    new Map([[tensorKey({ layer: graph.inputName, tensorIndex: 0 }), input]]),
    { include: (n) => keep.has(n.name) },
  );
  const output = cut === graph.inputName
    ? input
    : tensors.get(tensorKey({ layer: cut, tensorIndex: 0 }));
  if (output === undefined) {
    throw new TypeError(`Cannot cut "${model.name}" at "${cut}": no output`);
  }
  return {
    model: tf.model({ name: `${model.name}_cut_${cut}`, inputs: input, outputs: output }),
    cut,
    keptLayers: graph.layers.filter((n) => keep.has(n.name)).map((n) => n.name),
    nonNegative: nonNegative(byName, cut),
  };
}
