/**
 * Convolutionalization: run a pretrained classifier on inputs larger than it
 * was trained at by turning its fully-connected layers into convolutions. The
 * converted net slides the original over the image in one pass and gives a
 * map of class scores, one cell per crop at a stride of the net's total
 * stride, far cheaper than running the original on every crop.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  applyLayer,
  cloneLayer,
  copyWeights,
  type Inbound,
  type LayerGraph,
  layerGraph,
  type LayerNode,
  nodesByName,
  rebuild,
  shapeOf,
  tensorKey,
} from "./_rebuild.ts";
import type { LayersModel } from "../_tfjs_types.ts";

/** Layers a head may hold besides Dense: they act per element (or on the last axis). */
const ELEMENTWISE = new Set([
  "Dropout",
  "Activation",
  "ReLU",
  "LeakyReLU",
  "ELU",
  "ThresholdedReLU",
  "Softmax",
]);
const GLOBAL_POOLS = new Set(["GlobalAveragePooling2D", "GlobalMaxPooling2D"]);
const WINDOW_POOLS = new Set(["AveragePooling2D", "MaxPooling2D"]);
const STRIDED = new Set([
  "Conv2D",
  "DepthwiseConv2D",
  "SeparableConv2D",
  "MaxPooling2D",
  "AveragePooling2D",
]);
const UNSUPPORTED = new Set([
  "Conv2DTranspose",
  "UpSampling2D",
  "Reshape",
  "Permute",
  "Cropping2D",
]);

/** The classifier on top of a convnet, found by walking back from the output. */
interface Head {
  kind: "flatten" | "global-pool";
  /** The Flatten or global pooling layer. */
  start: LayerNode;
  /** A pooling layer right before the Flatten whose window is the whole native map: it slides with stride 1. */
  slidingPool: LayerNode | undefined;
  /** The tensor the head reads (the input of `slidingPool`, or of `start`). */
  trunkOutput: Inbound;
  /** Spatial size and channels the first Dense reads at the native size: `[1, 1, c]` for a global-pool head. */
  featureShape: [number, number, number];
  /** The layers after `start`, in order. */
  layers: LayerNode[];
}

function describe(node: LayerNode): string {
  return `"${node.name}" (${node.className})`;
}

function findHead(graph: LayerGraph, modelName: string, what: string): Head {
  const nodes = nodesByName(graph);
  const layers: LayerNode[] = [];
  let node = nodes.get(graph.output.layer);
  while (
    node !== undefined && !(node.className === "Flatten" || GLOBAL_POOLS.has(node.className))
  ) {
    if (node.className !== "Dense" && !ELEMENTWISE.has(node.className)) {
      throw new TypeError(
        `Cannot ${what} model "${modelName}": layer ${
          describe(node)
        } sits between the output and the Flatten or global pooling layer: a head may hold only Dense, Dropout and activation layers`,
      );
    }
    if (node.inbound.length !== 1) {
      throw new TypeError(
        `Cannot ${what} model "${modelName}": head layer ${describe(node)} has several inputs`,
      );
    }
    layers.unshift(node);
    node = nodes.get(node.inbound[0]!.layer);
  }
  if (node === undefined) {
    throw new TypeError(
      `Cannot ${what} model "${modelName}": no Flatten or global pooling layer leads to its output`,
    );
  }
  if (!layers.some((l) => l.className === "Dense")) {
    throw new TypeError(`Cannot ${what} model "${modelName}": its head has no Dense layer`);
  }
  const start = node;
  const trunkOutputOfStart = start.inbound[0]!;
  if (start.className !== "Flatten") {
    const c = shapeOf(graph, trunkOutputOfStart)[3];
    if (typeof c !== "number") {
      throw new TypeError(`Cannot ${what} model "${modelName}": unknown channel count`);
    }
    return {
      kind: "global-pool",
      start,
      slidingPool: undefined,
      trunkOutput: trunkOutputOfStart,
      featureShape: [1, 1, c],
      layers,
    };
  }
  const before = nodes.get(trunkOutputOfStart.layer);
  if (before !== undefined && WINDOW_POOLS.has(before.className)) {
    const inShape = shapeOf(graph, before.inbound[0]!);
    const config = before.layer.getConfig() as { poolSize: number[] };
    if (
      inShape[1] !== null && inShape[2] !== null && config.poolSize[0] === inShape[1] &&
      config.poolSize[1] === inShape[2]
    ) {
      const c = inShape[3] as number;
      return {
        kind: "flatten",
        start,
        slidingPool: before,
        trunkOutput: before.inbound[0]!,
        featureShape: [1, 1, c],
        layers,
      };
    }
  }
  const shape = shapeOf(graph, trunkOutputOfStart);
  const [h, w, c] = [shape[1], shape[2], shape[3]];
  if (
    typeof h !== "number" || typeof w !== "number" || typeof c !== "number" || shape.length !== 4
  ) {
    throw new TypeError(
      `Cannot ${what} model "${modelName}": the Flatten layer ${describe(start)} reads shape ${
        JSON.stringify(shape)
      }: a fixed [batch, height, width, channels] input size is needed`,
    );
  }
  return {
    kind: "flatten",
    start,
    slidingPool: undefined,
    trunkOutput: trunkOutputOfStart,
    featureShape: [h, w, c],
    layers,
  };
}

/** The total stride `[rows, cols]` of the tensor the head reads, with a sliding pool at stride 1. */
function totalStrideOf(
  graph: LayerGraph,
  head: Head,
  modelName: string,
  what: string,
): [number, number] {
  const strides = new Map<string, [number, number]>([[graph.inputName, [1, 1]]]);
  for (const node of graph.layers) {
    if (UNSUPPORTED.has(node.className)) {
      throw new TypeError(
        `Cannot ${what} model "${modelName}": layer ${
          describe(node)
        } changes the spatial grid in a way this SDK does not track`,
      );
    }
    let [sh, sw] = [1, 1];
    for (const ref of node.inbound) {
      const s = strides.get(ref.layer) ?? [1, 1];
      [sh, sw] = [Math.max(sh, s[0]), Math.max(sw, s[1])];
    }
    if (STRIDED.has(node.className) && node !== head.slidingPool) {
      const s = (node.layer.getConfig() as { strides?: number[] }).strides ?? [1, 1];
      [sh, sw] = [sh * (s[0] ?? 1), sw * (s[1] ?? s[0] ?? 1)];
    }
    strides.set(node.name, [sh, sw]);
  }
  return strides.get(head.trunkOutput.layer) ?? [1, 1];
}

function layerFromConfig(className: string, config: Record<string, unknown>): tf.layers.Layer {
  const [cls, fromConfig] = tf.serialization.SerializationMap.getMap().classNameMap[className]!;
  return fromConfig(cls, config as tf.serialization.ConfigDict) as tf.layers.Layer;
}

/** What the builder should put after the last Dense's linear part. */
type Ending = "score-map" | "pooled";

/**
 * Builds the convolutionalized model of `graph` on an input of `inputShape`.
 * With "pooled", the last Dense's pre-activation map is averaged over space
 * before its activation and the layers after it.
 */
function build(
  model: tf.LayersModel,
  graph: LayerGraph,
  head: Head,
  inputShape: (number | null)[],
  ending: Ending,
): tf.LayersModel {
  const input = tf.input({ shape: inputShape, name: graph.inputName });
  const tensors = new Map([[tensorKey({ layer: graph.inputName, tensorIndex: 0 }), input]]);
  const headNames = new Set([head.start, ...head.layers].map((n) => n.name));
  if (head.slidingPool) headNames.add(head.slidingPool.name);
  rebuild(graph, tensors, { include: (n) => !headNames.has(n.name) });
  let x = tensors.get(tensorKey(head.trunkOutput))!;
  if (head.slidingPool) {
    x = applyLayer(cloneLayer(head.slidingPool.layer, { strides: [1, 1], padding: "valid" }), [
      x,
    ])[0]!;
  }
  const lastDense = head.layers.findLastIndex((n) => n.className === "Dense");
  let cin = head.featureShape[2];
  let [kh, kw] = [head.featureShape[0], head.featureShape[1]];
  head.layers.forEach((node, i) => {
    if (node.className !== "Dense") {
      const overrides = node.className === "Softmax" ? { axis: -1 } : {};
      x = applyLayer(cloneLayer(node.layer, overrides), [x])[0]!;
      return;
    }
    const dense = node.layer.getConfig() as Record<string, unknown> & {
      units: number;
      activation: string;
    };
    const last = i === lastDense;
    const conv = layerFromConfig("Conv2D", {
      name: node.name,
      trainable: dense.trainable,
      filters: dense.units,
      kernelSize: [kh, kw],
      strides: [1, 1],
      padding: "valid",
      dataFormat: "channelsLast",
      dilationRate: [1, 1],
      activation: last ? "linear" : dense.activation,
      useBias: dense.useBias,
      kernelInitializer: dense.kernelInitializer,
      biasInitializer: dense.biasInitializer,
      kernelRegularizer: dense.kernelRegularizer,
      biasRegularizer: dense.biasRegularizer,
      activityRegularizer: dense.activityRegularizer,
      kernelConstraint: dense.kernelConstraint,
      biasConstraint: dense.biasConstraint,
    });
    x = applyLayer(conv, [x])[0]!;
    const shape: [number, number, number, number] = [kh, kw, cin, dense.units];
    copyWeights(node.layer, conv, ([kernel, ...rest]) => [kernel!.reshape(shape), ...rest]);
    if (last && ending === "pooled") {
      x = applyLayer(tf.layers.globalAveragePooling2d({ name: `${node.name}_pool` }), [x])[0]!;
    }
    if (last && dense.activation !== "linear") {
      x = applyLayer(
        tf.layers.activation({
          name: `${node.name}_activation`,
          activation: dense.activation as "softmax",
        }),
        [x],
      )[0]!;
    }
    cin = dense.units;
    [kh, kw] = [1, 1];
  });
  return tf.model({ inputs: input, outputs: x, name: `${model.name}_fcn` });
}

/**
 * Converts a convnet classifier into a fully convolutional net that runs on
 * any input size that fits and outputs a map of class scores.
 *
 * - Flatten head (`… → [pool] → Flatten → Dense → …`): the first Dense
 *   becomes a `k×k` 'valid' Conv2D, `k×k` being the spatial size the Flatten
 *   read at the native size, its kernel `[h*w*c, units]` reshaped to
 *   `[h, w, c, units]` (the channels-last order Flatten used); every later
 *   Dense becomes a 1×1 Conv2D. A pooling layer right before the Flatten
 *   whose window is the whole native feature map (nsfwjs MobileNetV2:
 *   `AveragePooling2D(7, strides 7)`) slides with stride 1. Cell `(i, j)` of
 *   the score map is the original net applied to the crop at
 *   `(i * totalStride, j * totalStride)`; at the native size the map is 1×1
 *   and equals the original's output. The crop equality is exact for nets
 *   without 'same' padding; with it, a cell sees the real pixels around its
 *   crop where the original saw zero padding.
 * - Global-pool head (`… → GlobalAveragePooling2D → Dense → …`): the Dense
 *   layers become 1×1 convs on the feature map BEFORE the pooling, which is
 *   dropped, so the map has one cell per feature-map position (a class
 *   activation map). For a head with a single Dense and average pooling, the
 *   original's output is the last activation of the spatial mean of the
 *   pre-activation map (see below); {@linkcode resizeInput} builds it.
 *
 * Dropout and activation layers are kept. The last Dense's activation becomes
 * a separate Activation layer named `<dense name>_activation` (softmax on the
 * channel axis), so the pre-activation (logit) map is
 * `fcn.getLayer("<dense name>").output`. Every layer before the head is rebuilt
 * from its config with a copy of its weights: disposing either model leaves
 * the other intact.
 *
 * @param model a Sequential or functional model with one image input
 *   `[null, height, width, channels]` and one output
 * @returns a new model taking `[null, null, null, channels]` and giving
 *   `[batch, rows, cols, classes]`
 * @throws {TypeError} when the model has no Flatten or global pooling head,
 *   its head holds layers other than Dense, Dropout and activations, it has
 *   several inputs or outputs, shared layers, or a Flatten whose input size is
 *   unknown
 *
 * @example Score map of a small convnet
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { convolutionalize } from "./convolutionalize.ts";
 * const net = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3 }),
 *   tf.layers.flatten(),
 *   tf.layers.dense({ units: 3, activation: "softmax" }),
 * ] });
 * const fcn = convolutionalize(net);
 * assertEquals(fcn.outputs[0]?.shape, [null, null, null, 3]);
 * ```
 */
export function convolutionalize(model: LayersModel): LayersModel {
  const graph = layerGraph(model, "convolutionalize");
  const head = findHead(graph, model.name, "convolutionalize");
  totalStrideOf(graph, head, model.name, "convolutionalize");
  const c = graph.inputShape[graph.inputShape.length - 1] ?? null;
  return build(model, graph, head, [null, null, c], "score-map");
}

/** The input size at which a model was trained, and how its score map steps. */
export interface ScoreMapGeometry {
  /** Native input `[height, width]`. */
  inputSize: [number, number];
  /** Total stride `[rows, cols]`: one score-map cell per this many input pixels. */
  totalStride: [number, number];
}

function nearest(n: number, native: number, stride: number): string {
  if (n < native) return `${native}`;
  const below = native + Math.floor((n - native) / stride) * stride;
  return `${below} and ${below + stride}`;
}

/**
 * The model with a new input size, still giving class scores
 * `[batch, classes]`: for fine-tuning on images of another size.
 *
 * For a flatten head it is {@linkcode convolutionalize}d, and the last
 * Dense's pre-activation score map (the logits) is averaged over space before
 * the activation (softmax). Averaging logits rather than probabilities keeps
 * the model a standard "global average pool, then classifier" net: the result
 * is exact at the native size (1×1 map), equal to the original on the whole
 * image when the head is linear, and softmax cross-entropy on averaged logits
 * keeps well-scaled gradients, where averaged probabilities saturate and
 * dilute them. A global-pool head already accepts any size: the model is
 * rebuilt on the new input with its head unchanged.
 *
 * @param model a model {@linkcode convolutionalize} accepts
 * @param size the new input size in pixels
 * @returns a new model taking `[null, height, width, channels]`
 * @throws {RangeError} when the size is smaller than the native input or, for
 *   a flatten head, is not the native size plus a multiple of the total
 *   stride; the message gives the nearest valid sizes
 * @throws {TypeError} as {@linkcode convolutionalize}
 *
 * @example Take 36×36 inputs
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { resizeInput } from "./convolutionalize.ts";
 * const net = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, strides: 2 }),
 *   tf.layers.flatten(),
 *   tf.layers.dense({ units: 3, activation: "softmax" }),
 * ] });
 * const big = resizeInput(net, { height: 36, width: 36 });
 * assertEquals(big.outputs[0]?.shape, [null, 3]);
 * ```
 */
export function resizeInput(
  model: LayersModel,
  size: { height: number; width: number },
): LayersModel {
  const graph = layerGraph(model, "resize the input of");
  const head = findHead(graph, model.name, "resize the input of");
  const geometry = geometryOf(model, graph, head, "resize the input of");
  const { height, width } = size;
  const [nh, nw] = geometry.inputSize;
  const [sh, sw] = geometry.totalStride;
  const checks: [string, number, number, number][] = [["height", height, nh, sh], [
    "width",
    width,
    nw,
    sw,
  ]];
  for (const [axis, n, native, stride] of checks) {
    if (!Number.isInteger(n) || n < native) {
      throw new RangeError(
        `Cannot resize the input of model "${model.name}" to ${height}×${width}: ${axis} "${n}" is smaller than the native ${axis} ${native}: nearest valid ${axis} is ${native}`,
      );
    }
    if (head.kind === "flatten" && (n - native) % stride !== 0) {
      throw new RangeError(
        `Cannot resize the input of model "${model.name}" to ${height}×${width}: ${axis} "${n}" is not the native ${native} plus a multiple of the total stride ${stride}: nearest valid ${axis}s are ${
          nearest(n, native, stride)
        }`,
      );
    }
  }
  const c = graph.inputShape[2] ?? null;
  if (head.kind === "flatten") return build(model, graph, head, [height, width, c], "pooled");
  const input = tf.input({ shape: [height, width, c], name: graph.inputName });
  const tensors = rebuild(
    graph,
    new Map([[tensorKey({ layer: graph.inputName, tensorIndex: 0 }), input]]),
  );
  return tf.model({
    inputs: input,
    outputs: tensors.get(tensorKey(graph.output))!,
    name: `${model.name}_resized`,
  });
}

function geometryOf(
  model: tf.LayersModel,
  graph: LayerGraph,
  head: Head,
  what: string,
): ScoreMapGeometry {
  const [h, w] = graph.inputShape;
  if (typeof h !== "number" || typeof w !== "number") {
    throw new TypeError(
      `Cannot ${what} model "${model.name}": its input shape ${
        JSON.stringify(graph.inputShape)
      } has no fixed native size`,
    );
  }
  return { inputSize: [h, w], totalStride: totalStrideOf(graph, head, model.name, what) };
}

/**
 * The native input size of a model and the total stride of the score map
 * {@linkcode convolutionalize} makes of it: score-map cell `(i, j)` matches
 * the crop of the native size at `(i * totalStride[0], j * totalStride[1])`,
 * and an input of size `native + k * totalStride` gives a map of `k + 1` cells
 * along that axis.
 *
 * @param model a model {@linkcode convolutionalize} accepts, with a fixed input size
 * @returns its native input size and total stride
 * @throws {TypeError} as {@linkcode convolutionalize}, or when the input size is not fixed
 *
 * @example Stride of a small convnet
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { scoreMapGeometry } from "./convolutionalize.ts";
 * const net = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, strides: 2 }),
 *   tf.layers.flatten(),
 *   tf.layers.dense({ units: 3 }),
 * ] });
 * assertEquals(scoreMapGeometry(net).totalStride, [2, 2]);
 * ```
 */
export function scoreMapGeometry(model: LayersModel): ScoreMapGeometry {
  const graph = layerGraph(model, "convolutionalize");
  const head = findHead(graph, model.name, "convolutionalize");
  return geometryOf(model, graph, head, "convolutionalize");
}
