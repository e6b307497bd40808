/**
 * Architecture analysis of a TensorFlow.js LayersModel from its Keras
 * topology alone: shapes, parameters, receptive fields, strides, where the
 * network can be cut and what its head accepts. Pure and synchronous: it
 * creates no tensors, so the registry runs it on an uploaded model.json.
 *
 * @module
 */
import { POINTWISE_LAYERS, replay, WINDOW_LAYERS } from "./_geometry.ts";
import type { Architecture, HeadKind, LayerInfo, LayersModelLike, Shape } from "./types.ts";
import type { ModelJson } from "../model_json.ts";
import {
  type Config,
  type Graph,
  type RawLayer,
  toGraph,
  toKerasModel,
  topoSort,
} from "./_topology.ts";
import { type Flow, type Pair, type Step, stepLayer } from "./_layer_step.ts";

export type { Architecture, HeadKind, LayerInfo, LayersModelLike, Shape } from "./types.ts";

/** Layers that pass their input through unchanged at inference. */
const INFERENCE_IDENTITY = new Set([
  "Dropout",
  "SpatialDropout2D",
  "GaussianDropout",
  "GaussianNoise",
  "AlphaDropout",
  "Activation",
]);
/** Options of {@linkcode analyze}. */
export interface AnalyzeOptions {
  /**
   * Analyze at this input `[height, width, channels]` instead of the model's
   * own batch input shape, e.g. `[448, 448, 3]` to see what a 224 model does
   * at 448. Parameter counts stay those of the model's own input.
   *
   * @default the model's batch input shape
   */
  inputShape?: [number, number, number];
}

/**
 * Analyzes a LayersModel: per-layer output shapes and parameters, receptive
 * field and cumulative stride, the cut points usable for feature extraction,
 * the classifier head's kind and the smallest input the network accepts.
 * Shapes are batch first, as tfjs reports them: `[null, 7, 7, 1280]`.
 *
 * @param model a `tf.LayersModel`, a whole model.json, its `modelTopology`,
 *   or a Keras `{ class_name, config }`
 * @param options `inputShape` to analyze at another input size
 * @returns the architecture, plain JSON
 * @throws {TypeError} when the value is not a Keras Sequential or functional topology
 *
 * @example Receptive field of two 3×3 convs
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { analyze } from "./analyze.ts";
 * const model = tf.sequential({
 *   layers: [
 *     tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3 }),
 *     tf.layers.conv2d({ filters: 4, kernelSize: 3 }),
 *     tf.layers.flatten(),
 *     tf.layers.dense({ units: 10 }),
 *   ],
 * });
 * const arch = analyze(model);
 * assertEquals([arch.receptiveField, arch.headKind, arch.totalParams], [5, "flatten-dense", 23238]);
 * ```
 */
export function analyze(
  model: LayersModelLike | ModelJson | object,
  options: AnalyzeOptions = {},
): Architecture {
  return analyzeTopology(toKerasModel(model), options.inputShape);
}

/** One pass over the graph at one input shape. */
function walk(
  graph: Graph,
  sorted: RawLayer[],
  inputShape: Shape | null,
  warnings: string[],
): LayerInfo[] {
  const flows = new Map<string, Flow>();
  const infos: LayerInfo[] = [];
  for (const layer of sorted) {
    const inputs = layer.inbound.map((n) => flows.get(n)).filter((f): f is Flow => !!f);
    let step: Step;
    if (layer.nested) {
      step = stepNested(layer, inputs, warnings);
    } else {
      step = stepLayer(layer, inputs, warnings);
    }
    if (
      inputShape && layer.className === "InputLayer" && layer.name === graph.inputs[0]
    ) {
      step.flow.shape = inputShape;
      step.info.outputShape = inputShape;
    }
    flows.set(layer.name, step.flow);
    infos.push(step.info);
  }
  return infos;
}

function stepNested(layer: RawLayer, inputs: Flow[], warnings: string[]): Step {
  const first = inputs[0];
  const inShape = first?.shape ?? [];
  const dims = inShape.slice(1);
  const inner = analyzeTopology(
    layer.nested as Config,
    dims.length === 3 && dims.every((d) => typeof d === "number")
      ? (dims as [number, number, number])
      : undefined,
  );
  for (const wn of inner.warnings) warnings.push(`In "${layer.name}": ${wn}`);
  const out = inner.layers.at(-1);
  let rf: Pair | null = null;
  let jump: Pair | null = null;
  if (first?.rf && first.jump && out?.receptiveField) {
    const [r0, r1] = first.rf;
    const [j0, j1] = first.jump;
    rf = [r0 + (out.receptiveField[0] - 1) * j0, r1 + (out.receptiveField[1] - 1) * j1];
    jump = out.jump ? [j0 * out.jump[0], j1 * out.jump[1]] : null;
  }
  const trainable = layer.config.trainable !== false;
  const info: LayerInfo = {
    name: layer.name,
    className: layer.className,
    inbound: layer.inbound,
    outputShape: inner.outputShape,
    params: inner.totalParams,
    trainableParams: trainable ? inner.trainableParams : 0,
    trainable,
    kernel: null,
    stride: out?.jump ?? null,
    dilation: null,
    padding: null,
    pads: null,
    receptiveField: rf,
    jump,
    flops: inner.flops,
    inner,
  };
  return { info, flow: { shape: inner.outputShape, rf, jump } };
}

/** Layers every input-to-output path passes through, in topological order. */
function findCutPoints(
  graph: Graph,
  sorted: RawLayer[],
): { cutPoints: string[]; live: Set<string> } {
  const pos = new Map(sorted.map((l, i) => [l.name, i]));
  const consumers = new Map<string, string[]>();
  for (const l of sorted) {
    for (const n of l.inbound) consumers.set(n, [...(consumers.get(n) ?? []), l.name]);
  }
  const reach = (starts: string[], next: (n: string) => string[]): Set<string> => {
    const seen = new Set<string>();
    const stack = [...starts];
    while (stack.length > 0) {
      const n = stack.pop() as string;
      if (seen.has(n) || !pos.has(n)) continue;
      seen.add(n);
      stack.push(...next(n));
    }
    return seen;
  };
  const byName = new Map(sorted.map((l) => [l.name, l]));
  const fromInputs = reach(graph.inputs, (n) => consumers.get(n) ?? []);
  const toOutputs = reach(graph.outputs, (n) => byName.get(n)?.inbound ?? []);
  const live = sorted.filter((l) => fromInputs.has(l.name) && toOutputs.has(l.name));
  // With a virtual source before all inputs and a virtual sink after all
  // outputs, a node is on every path iff no edge jumps over it in a
  // topological order.
  const end = sorted.length;
  const reachOf = new Map<string, number>();
  for (const l of live) {
    let far = graph.outputs.includes(l.name) ? end : -1;
    for (const c of consumers.get(l.name) ?? []) {
      if (fromInputs.has(c) && toOutputs.has(c)) far = Math.max(far, pos.get(c) ?? -1);
    }
    reachOf.set(l.name, far);
  }
  const cuts: string[] = [];
  let maxTarget = Math.max(-1, ...graph.inputs.map((n) => pos.get(n) ?? -1));
  for (const l of live) {
    const p = pos.get(l.name) ?? 0;
    if (maxTarget <= p) cuts.push(l.name);
    maxTarget = Math.max(maxTarget, reachOf.get(l.name) ?? -1);
  }
  return { cutPoints: cuts, live: new Set(live.map((l) => l.name)) };
}

const HEAD_PASS_THROUGH = new Set([...POINTWISE_LAYERS]);

interface Head {
  kind: HeadKind;
  start: string | null;
  collapse: string | null;
}

function findHead(layers: LayerInfo[], live: ReadonlySet<string>): Head {
  const byName = new Map(layers.map((l) => [l.name, l]));
  const ordered = layers.filter((l) => live.has(l.name));
  const isMap = (l: LayerInfo | undefined) => l !== undefined && l.jump !== null;
  const collapse = ordered.find((l) => {
    const src = byName.get(l.inbound[0] ?? "");
    return isMap(src) && !isMap(l) && l.className !== "InputLayer";
  });
  const anyMap = ordered.some((l) => isMap(l));
  if (!collapse) {
    const last = ordered.at(-1);
    if (isMap(last)) {
      const lastWindow = ordered.findLast((l) =>
        WINDOW_LAYERS.has(l.className) && !l.className.endsWith("Pooling2D")
      );
      return { kind: "fully-convolutional", start: lastWindow?.name ?? null, collapse: null };
    }
    const denseOnly = !anyMap &&
      ordered.every((l) =>
        l.className === "InputLayer" || l.className === "Dense" ||
        HEAD_PASS_THROUGH.has(l.className)
      );
    const lastDense = ordered.findLast((l) => l.className === "Dense");
    return denseOnly
      ? { kind: "dense-only", start: lastDense?.name ?? null, collapse: null }
      : { kind: "other", start: null, collapse: null };
  }
  const after = ordered.slice(ordered.indexOf(collapse) + 1);
  const denseTail = after.length > 0 &&
    after.some((l) => l.className === "Dense") &&
    after.every((l) => l.className === "Dense" || HEAD_PASS_THROUGH.has(l.className));
  if (collapse.className.startsWith("Global")) {
    const tailOk = after.every((l) =>
      l.className === "Dense" || HEAD_PASS_THROUGH.has(l.className)
    );
    return { kind: tailOk ? "global-pool-dense" : "other", start: collapse.name, collapse: null };
  }
  if (collapse.className !== "Flatten" || !denseTail) {
    return { kind: "other", start: collapse.name, collapse: null };
  }
  // A pooling whose window covers the whole map, right before Flatten, is a
  // global pooling at the native size only: the Dense still fixes the size.
  let src = byName.get(collapse.inbound[0] ?? "");
  while (src && HEAD_PASS_THROUGH.has(src.className)) src = byName.get(src.inbound[0] ?? "");
  if (
    src && src.className.endsWith("Pooling2D") && !src.className.startsWith("Global") &&
    src.outputShape[1] === 1 && src.outputShape[2] === 1
  ) {
    return { kind: "pool-flatten-dense", start: src.name, collapse: collapse.name };
  }
  return { kind: "flatten-dense", start: collapse.name, collapse: collapse.name };
}

function minSize(layers: LayerInfo[]): [number, number] | null {
  if (layers[0]?.outputShape.length !== 4) return null;
  const fits = (size: number, axis: 0 | 1): boolean => {
    for (const r of replay(layers, [size, size]).values()) {
      if (r.output && r.output[axis] < 1) return false;
    }
    return true;
  };
  const search = (axis: 0 | 1): number => {
    let lo = 1;
    let hi = 1 << 16;
    if (!fits(hi, axis)) return hi;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (fits(mid, axis)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  return [search(0), search(1)];
}

function analyzeTopology(model: Config, inputShape?: [number, number, number]): Architecture {
  const warnings: string[] = [];
  const graph = toGraph(model, warnings);
  const sorted = topoSort(graph);
  if (graph.inputs.length > 1) {
    warnings.push(
      `"${graph.name}" has ${graph.inputs.length} inputs: sizes and strides follow "${
        graph.inputs[0]
      }"`,
    );
  }
  if (graph.outputs.length > 1) {
    warnings.push(
      `"${graph.name}" has ${graph.outputs.length} outputs: the output shape is that of "${
        graph.outputs[0]
      }"`,
    );
  }
  const native = walk(graph, sorted, null, warnings);
  const nativeInput = native.find((l) => l.name === graph.inputs[0])?.outputShape ?? [];
  let layers = native;
  let analyzedInput = nativeInput;
  if (inputShape) {
    if (nativeInput.length !== 4) {
      warnings.push(
        `The inputShape option is ignored: "${graph.name}" takes [${nativeInput}], not images`,
      );
    } else {
      analyzedInput = [nativeInput[0] ?? null, ...inputShape];
      const resized = walk(graph, sorted, analyzedInput, []);
      // Weights are what they are: parameter counts come from the model's own input.
      const features = (infos: LayerInfo[]) => {
        const shapes = new Map(infos.map((l) => [l.name, l.outputShape]));
        return (l: LayerInfo) => shapes.get(l.inbound[0] ?? "")?.at(-1) ?? null;
      };
      const nativeFeatures = features(native);
      const resizedFeatures = features(resized);
      // Weights are what they are: parameter counts come from the model's own input.
      layers = resized.map((l, i) => {
        const n = native[i] as LayerInfo;
        const want = nativeFeatures(n);
        const got = resizedFeatures(l);
        if (l.className === "Dense" && want !== got) {
          warnings.push(
            `Layer "${l.name}" (Dense) has weights for ${want} input features but gets ${got} at ${
              inputShape[0]
            }x${inputShape[1]}: convolutionalize the model to run it at this size`,
          );
        }
        return { ...l, params: n.params, trainableParams: n.trainableParams };
      });
    }
  }
  const { cutPoints, live } = findCutPoints(graph, sorted);
  // The head is what the weights were trained as: judge it at the model's own input.
  const head = findHead(native, live);
  const pos = new Map(layers.map((l, i) => [l.name, i]));
  const startPos = head.start === null ? -1 : pos.get(head.start) ?? -1;
  const featureCut = head.start === null
    ? null
    : cutPoints.findLast((n) => (pos.get(n) ?? 0) < startPos) ?? null;
  const featureLayer = layers.find((l) => l.name === featureCut);
  const featurePos = featureCut === null ? Infinity : pos.get(featureCut) ?? Infinity;
  let headInputSize: [number, number] | null = null;
  if (head.kind === "flatten-dense" || head.kind === "pool-flatten-dense") {
    const flatten = native.find((l) => l.name === head.collapse);
    const src = native.find((l) => l.name === flatten?.inbound[0]);
    const [, hh, ww] = src?.outputShape ?? [];
    if (typeof hh === "number" && typeof ww === "number") headInputSize = [hh, ww];
  }
  let totalParams = 0;
  let trainableParams = 0;
  let flops: number | null = 0;
  for (const l of layers) {
    totalParams += l.params;
    trainableParams += l.trainableParams;
    flops = flops === null || l.flops === null ? null : flops + l.flops;
  }
  const maxOf = (p: [number, number] | null | undefined) => (p ? Math.max(p[0], p[1]) : null);
  const byName = new Map(layers.map((l) => [l.name, l]));
  const classifierCut = cutPoints.slice(0, -1).findLast((n) => {
    const c = byName.get(n)?.className;
    return c !== undefined && c !== "InputLayer" && !INFERENCE_IDENTITY.has(c);
  }) ?? null;
  const outputLayer = layers.find((l) => l.name === graph.outputs[0]);
  return {
    name: graph.name,
    className: graph.className,
    inputShape: analyzedInput,
    nativeInputShape: nativeInput,
    outputShape: outputLayer?.outputShape ?? [],
    layers,
    totalParams,
    trainableParams,
    nonTrainableParams: totalParams - trainableParams,
    totalStride: maxOf(featureLayer?.jump),
    receptiveField: maxOf(featureLayer?.receptiveField),
    minInputSize: minSize(layers),
    headKind: head.kind,
    headInputSize,
    headLayers: layers.filter((l) => (pos.get(l.name) ?? 0) > featurePos).map((l) => l.name),
    cutPoints,
    featureCut,
    featureShape: featureLayer?.outputShape ?? null,
    classifierCut,
    flops,
    warnings,
  };
}
