/**
 * Architecture analysis of a TensorFlow.js LayersModel from its Keras
 * topology alone: shapes, parameters, receptive fields, strides, where the
 * network can be cut and what its head accepts. Pure and synchronous: it
 * creates no tensors, so the registry runs it on an uploaded model.json.
 *
 * @module
 */
import {
  COLLAPSE_LAYERS,
  CONTAINERS,
  dilatedKernel,
  ELEMENTWISE_MERGES,
  POINTWISE_LAYERS,
  replay,
  WINDOW_LAYERS,
} from "./_geometry.ts";
import { deconvLength, windowLength } from "./_geometry.ts";
import type { Architecture, HeadKind, LayerInfo, Shape } from "./types.ts";
import type { ModelJson } from "../../core/model_json.ts";

export type { Architecture, HeadKind, LayerInfo, Shape } from "./types.ts";

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

/** Anything with the `toJSON` of a `tf.LayersModel`: what {@linkcode analyze} reads of a model. */
export interface LayersModelLike {
  /** Serializes the topology, as `tf.LayersModel.toJSON(null, false)`. */
  toJSON(unused?: unknown, returnString?: boolean): unknown;
  /** The layers; only their presence tells a model from a model.json. */
  layers: unknown[];
}

type Config = Record<string, unknown>;
type Pair = [number, number];

interface RawLayer {
  name: string;
  className: string;
  config: Config;
  inbound: string[];
  /** The `{ class_name, config }` of a nested model. */
  nested?: Config;
}

interface Graph {
  name: string;
  className: string;
  layers: RawLayer[];
  inputs: string[];
  outputs: string[];
}

/** What flows along an edge during a walk. */
interface Flow {
  shape: Shape;
  rf: Pair | null;
  jump: Pair | null;
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
 * console.log(arch.receptiveField, arch.headKind, arch.totalParams); // 5 "flatten-dense" 23238
 * ```
 */
export function analyze(
  model: LayersModelLike | ModelJson | object,
  options: AnalyzeOptions = {},
): Architecture {
  return analyzeTopology(toKerasModel(model), options.inputShape);
}

function isObject(v: unknown): v is Config {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isLayersModel(v: unknown): v is LayersModelLike {
  return isObject(v) && typeof v.toJSON === "function" && Array.isArray(v.layers);
}

/** Finds the `{ class_name, config }` in whatever form the model came in. */
function toKerasModel(model: unknown): Config {
  let m: unknown = isLayersModel(model) ? model.toJSON(null, false) : model;
  if (isObject(m) && "modelTopology" in m) m = m.modelTopology;
  if (isObject(m) && "model_config" in m) m = m.model_config;
  if (!isObject(m) || typeof m.class_name !== "string" || !CONTAINERS.has(m.class_name)) {
    throw new TypeError(
      `Cannot analyze the model: expected a Keras topology with class_name "Sequential", "Model" or "Functional", got ${
        isObject(m) ? `class_name "${String(m.class_name)}"` : typeof m
      }`,
    );
  }
  return m;
}

function layerRef(ref: unknown): string | undefined {
  return Array.isArray(ref) && typeof ref[0] === "string" ? ref[0] : undefined;
}

/** `input_layers`/`output_layers`: `[[name, 0, 0], …]`, or one `[name, 0, 0]`. */
function layerRefs(refs: unknown): string[] {
  if (!Array.isArray(refs)) return [];
  if (typeof refs[0] === "string") return [refs[0]];
  return refs.map(layerRef).filter((n): n is string => n !== undefined);
}

function toGraph(model: Config, warnings: string[]): Graph {
  const className = String(model.class_name);
  const config = model.config;
  const layerList = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
  const name = isObject(config) && typeof config.name === "string" ? config.name : "model";
  if (!Array.isArray(layerList)) {
    throw new TypeError(`Cannot analyze "${name}": its config has no "layers" array`);
  }
  const layers: RawLayer[] = [];
  for (const [i, raw] of layerList.entries()) {
    if (!isObject(raw) || typeof raw.class_name !== "string" || !isObject(raw.config)) {
      throw new TypeError(`Cannot analyze "${name}": layer ${i} has no class_name and config`);
    }
    const cfg = raw.config;
    const layerName = typeof raw.name === "string"
      ? raw.name
      : typeof cfg.name === "string"
      ? cfg.name
      : `layer_${i}`;
    const layer: RawLayer = {
      name: layerName,
      className: raw.class_name,
      config: cfg,
      inbound: [],
    };
    if (CONTAINERS.has(raw.class_name)) layer.nested = raw;
    layers.push(layer);
  }
  if (className === "Sequential") {
    const first = layers[0];
    if (first && first.className !== "InputLayer") {
      const shape = first.config.batch_input_shape ?? first.config.batch_shape ??
        (Array.isArray(first.config.input_shape) ? [null, ...first.config.input_shape] : undefined);
      if (!Array.isArray(shape)) {
        throw new TypeError(
          `Cannot analyze "${name}": its first layer "${first.name}" has no batch_input_shape`,
        );
      }
      layers.unshift({
        name: `${first.name}_input`,
        className: "InputLayer",
        config: { batch_input_shape: shape },
        inbound: [],
      });
    }
    for (let i = 1; i < layers.length; i++) {
      const prev = layers[i - 1];
      const cur = layers[i];
      if (prev && cur) cur.inbound = [prev.name];
    }
    const last = layers.at(-1);
    return {
      name,
      className,
      layers,
      inputs: layers[0] ? [layers[0].name] : [],
      outputs: last ? [last.name] : [],
    };
  }
  for (const [i, layer] of layers.entries()) {
    const nodes = (layerList[i] as Config).inbound_nodes;
    if (!Array.isArray(nodes) || nodes.length === 0) continue;
    if (nodes.length > 1) {
      warnings.push(
        `Layer "${layer.name}" is called ${nodes.length} times: only its first call is analyzed`,
      );
    }
    const node = nodes[0];
    if (!Array.isArray(node)) {
      warnings.push(`Layer "${layer.name}" has inbound nodes in an unknown format: ignored`);
      continue;
    }
    layer.inbound = node.map(layerRef).filter((n): n is string => n !== undefined);
  }
  const cfg = config as Config;
  const inputs = layerRefs(cfg.input_layers);
  const outputs = layerRefs(cfg.output_layers);
  return {
    name,
    className,
    layers,
    inputs: inputs.length > 0
      ? inputs
      : layers.filter((l) => l.className === "InputLayer").map((l) => l.name),
    outputs: outputs.length > 0 ? outputs : layers.slice(-1).map((l) => l.name),
  };
}

/** Kahn's algorithm, ties broken by config order, so the result is stable. */
function topoSort(graph: Graph): RawLayer[] {
  const byName = new Map(graph.layers.map((l) => [l.name, l]));
  const indegree = new Map<string, number>();
  const consumers = new Map<string, string[]>();
  for (const l of graph.layers) {
    const known = l.inbound.filter((n) => byName.has(n));
    indegree.set(l.name, known.length);
    for (const n of known) consumers.set(n, [...(consumers.get(n) ?? []), l.name]);
  }
  const order = new Map(graph.layers.map((l, i) => [l.name, i]));
  const ready = graph.layers.filter((l) => indegree.get(l.name) === 0);
  const sorted: RawLayer[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
    const next = ready.shift() as RawLayer;
    sorted.push(next);
    for (const c of consumers.get(next.name) ?? []) {
      const d = (indegree.get(c) ?? 0) - 1;
      indegree.set(c, d);
      if (d === 0) ready.push(byName.get(c) as RawLayer);
    }
  }
  if (sorted.length !== graph.layers.length) {
    throw new TypeError(`Cannot analyze "${graph.name}": its layers form a cycle`);
  }
  return sorted;
}

function pair(v: unknown, fallback: number): Pair {
  if (typeof v === "number") return [v, v];
  if (Array.isArray(v)) {
    const a = typeof v[0] === "number" ? v[0] : fallback;
    const b = typeof v[1] === "number" ? v[1] : a;
    return [a, b];
  }
  return [fallback, fallback];
}

/** ZeroPadding2D/Cropping2D amounts as `[top, bottom, left, right]`. */
function pads4(v: unknown): [number, number, number, number] {
  if (typeof v === "number") return [v, v, v, v];
  if (Array.isArray(v) && v.length === 2) {
    const [a, b] = v;
    if (typeof a === "number" && typeof b === "number") return [a, a, b, b];
    const [t, bo] = pair(a, 0);
    const [l, r] = pair(b, 0);
    return [t, bo, l, r];
  }
  return [1, 1, 1, 1];
}

function num(v: unknown, fallback: number): number {
  return typeof v === "number" ? v : fallback;
}

function product(dims: readonly (number | null)[]): number | null {
  let p = 1;
  for (const d of dims) {
    if (d === null) return null;
    p *= d;
  }
  return p;
}

function mulOrNull(...xs: (number | null | undefined)[]): number | null {
  let p = 1;
  for (const x of xs) {
    if (x === null || x === undefined) return null;
    p *= x;
  }
  return p;
}

function maxPair(pairs: (Pair | null)[]): Pair | null {
  const known = pairs.filter((p): p is Pair => p !== null);
  if (known.length === 0 || known.length < pairs.length) return null;
  return [Math.max(...known.map((p) => p[0])), Math.max(...known.map((p) => p[1]))];
}

/** The geometry, params and output of one layer, given what flows into it. */
interface Step {
  info: LayerInfo;
  flow: Flow;
}

function stepLayer(
  layer: RawLayer,
  inputs: Flow[],
  warnings: string[],
): Step {
  const cfg = layer.config;
  const cls = layer.className;
  const trainable = cfg.trainable !== false;
  const info: LayerInfo = {
    name: layer.name,
    className: cls,
    inbound: layer.inbound,
    outputShape: [],
    params: 0,
    trainableParams: 0,
    trainable,
    kernel: null,
    stride: null,
    dilation: null,
    padding: null,
    pads: null,
    receptiveField: null,
    jump: null,
    flops: 0,
  };
  const first = inputs[0];
  const inShape: Shape = first ? first.shape : [];
  const rank4 = inShape.length === 4;
  const h = inShape[1] ?? null;
  const w = inShape[2] ?? null;
  const c = inShape.at(-1) ?? null;
  let shape: Shape = [...inShape];
  let rf = first?.rf ?? null;
  let jump = first?.jump ?? null;
  let trainableWeights = 0;
  const bias = cfg.use_bias !== false;
  if (typeof cfg.data_format === "string" && cfg.data_format === "channels_first") {
    warnings.push(`Layer "${layer.name}" uses channels_first: its geometry is not analyzed`);
  }
  const onMap = (): boolean => {
    if (!rank4) {
      warnings.push(`Layer "${layer.name}" (${cls}) expects a 4D input, got [${inShape}]`);
    }
    return rank4;
  };

  if (cls === "InputLayer") {
    const s = cfg.batch_input_shape ?? cfg.batch_shape;
    shape = Array.isArray(s) ? s.map((d) => (typeof d === "number" ? d : null)) : [null];
    rf = shape.length === 4 ? [1, 1] : null;
    jump = shape.length === 4 ? [1, 1] : null;
  } else if (WINDOW_LAYERS.has(cls) || cls === "Conv2DTranspose") {
    const isPool = cls.endsWith("Pooling2D");
    const kernel = pair(isPool ? cfg.pool_size : cfg.kernel_size, isPool ? 2 : 1);
    const stride = pair(cfg.strides ?? (isPool ? kernel : 1), 1);
    const dilation = pair(cfg.dilation_rate, 1);
    const padding = cfg.padding === "same" ? "same" : "valid";
    Object.assign(info, { kernel, stride, dilation, padding });
    if (onMap()) {
      const transpose = cls === "Conv2DTranspose";
      const len = (l: number | null, i: 0 | 1) =>
        l === null
          ? null
          : transpose
          ? deconvLength(l, kernel[i], stride[i], padding)
          : windowLength(l, kernel[i], stride[i], dilation[i], padding);
      const dm = num(cfg.depth_multiplier, 1);
      const filters = num(cfg.filters, 0);
      const kk = kernel[0] * kernel[1];
      let outC = c;
      const oh = len(h, 0);
      const ow = len(w, 1);
      if (cls === "Conv2D" || cls === "Conv2DTranspose") {
        outC = filters;
        info.params = kk * (c ?? 0) * filters + (bias ? filters : 0);
        info.flops = transpose
          ? mulOrNull(2, h, w, c, filters, kk)
          : mulOrNull(2, oh, ow, c, filters, kk);
      } else if (cls === "DepthwiseConv2D") {
        outC = c === null ? null : c * dm;
        info.params = kk * (c ?? 0) * dm + (bias ? (c ?? 0) * dm : 0);
        info.flops = mulOrNull(2, oh, ow, c, dm, kk);
      } else if (cls === "SeparableConv2D") {
        outC = filters;
        info.params = kk * (c ?? 0) * dm + (c ?? 0) * dm * filters + (bias ? filters : 0);
        const depthwise = mulOrNull(2, oh, ow, c, dm, kk);
        const pointwise = mulOrNull(2, oh, ow, c, dm, filters);
        info.flops = depthwise === null || pointwise === null ? null : depthwise + pointwise;
      }
      trainableWeights = info.params;
      shape = [inShape[0] ?? null, oh, ow, outC];
      if (rf && jump) {
        if (transpose) {
          jump = [jump[0] / stride[0], jump[1] / stride[1]];
          rf = [rf[0] + (kernel[0] - 1) * jump[0], rf[1] + (kernel[1] - 1) * jump[1]];
        } else {
          rf = [
            rf[0] + (dilatedKernel(kernel[0], dilation[0]) - 1) * jump[0],
            rf[1] + (dilatedKernel(kernel[1], dilation[1]) - 1) * jump[1],
          ];
          jump = [jump[0] * stride[0], jump[1] * stride[1]];
        }
      }
    }
  } else if (cls === "ZeroPadding2D" || cls === "Cropping2D") {
    const p = pads4(cls === "ZeroPadding2D" ? cfg.padding : cfg.cropping);
    const sign = cls === "ZeroPadding2D" ? 1 : -1;
    // `|| 0`: an uncropped side would be -0, which strict equality (Object.is) tells from 0.
    const signed = (v: number) => sign * v || 0;
    info.pads = [signed(p[0]), signed(p[1]), signed(p[2]), signed(p[3])];
    info.stride = [1, 1];
    if (onMap()) {
      const [t, b, l, r] = info.pads;
      shape = [inShape[0] ?? null, h === null ? null : h + t + b, w === null ? null : w + l + r, c];
    }
  } else if (cls === "UpSampling2D") {
    const size = pair(cfg.size, 2);
    info.stride = [1 / size[0], 1 / size[1]];
    if (onMap()) {
      shape = [inShape[0] ?? null, mulOrNull(h, size[0]), mulOrNull(w, size[1]), c];
      if (jump) jump = [jump[0] / size[0], jump[1] / size[1]];
    }
  } else if (COLLAPSE_LAYERS.has(cls)) {
    if (cls === "Flatten") {
      shape = [inShape[0] ?? null, product(inShape.slice(1))];
    } else if (onMap()) {
      shape = cfg.keepdims === true ? [inShape[0] ?? null, 1, 1, c] : [inShape[0] ?? null, c];
    }
    // Collapsing a map is a window over all of it: the receptive field grows by the map's extent.
    if (rank4 && rf && jump) {
      rf = h === null || w === null ? null : [rf[0] + (h - 1) * jump[0], rf[1] + (w - 1) * jump[1]];
    }
    jump = null;
  } else if (cls === "Dense") {
    const units = num(cfg.units, 0);
    info.params = (c ?? 0) * units + (bias ? units : 0);
    trainableWeights = info.params;
    const positions = product(inShape.slice(1, -1));
    info.flops = mulOrNull(2, positions, c, units);
    shape = [...inShape.slice(0, -1), units];
  } else if (cls === "BatchNormalization" || cls === "LayerNormalization") {
    const axis = num(cfg.axis, -1);
    const channels = axis < 0 ? inShape.at(axis) ?? null : inShape[axis] ?? null;
    const affine = (cfg.center !== false ? 1 : 0) + (cfg.scale !== false ? 1 : 0);
    const stats = cls === "BatchNormalization" ? 2 : 0;
    info.params = (channels ?? 0) * (affine + stats);
    trainableWeights = (channels ?? 0) * affine;
  } else if (cls === "PReLU") {
    const shared = new Set(Array.isArray(cfg.shared_axes) ? cfg.shared_axes : []);
    info.params = product(inShape.slice(1).map((d, i) => (shared.has(i + 1) ? 1 : d))) ?? 0;
    trainableWeights = info.params;
  } else if (cls === "Embedding") {
    const outDim = num(cfg.output_dim, 0);
    info.params = num(cfg.input_dim, 0) * outDim;
    trainableWeights = info.params;
    shape = [...inShape, outDim];
    rf = null;
    jump = null;
  } else if (cls === "Reshape") {
    const target = Array.isArray(cfg.target_shape) ? cfg.target_shape.map((d) => num(d, -1)) : [];
    const total = product(inShape.slice(1));
    const known = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    shape = [
      inShape[0] ?? null,
      ...target.map((d) => (d !== -1 ? d : total === null ? null : total / known)),
    ];
    rf = null;
    jump = null;
  } else if (cls === "Permute") {
    const dims = Array.isArray(cfg.dims) ? cfg.dims.map((d) => num(d, 1)) : [];
    shape = [inShape[0] ?? null, ...dims.map((d) => inShape[d] ?? null)];
    rf = null;
    jump = null;
  } else if (cls === "RepeatVector") {
    shape = [inShape[0] ?? null, num(cfg.n, 1), ...inShape.slice(1)];
    rf = null;
    jump = null;
  } else if (cls === "Concatenate") {
    const rank = inShape.length;
    const rawAxis = num(cfg.axis, -1);
    const axis = rawAxis < 0 ? rank + rawAxis : rawAxis;
    let sum: number | null = 0;
    for (const f of inputs) {
      const d = f.shape[axis] ?? null;
      sum = sum === null || d === null ? null : sum + d;
    }
    shape[axis] = sum;
    ({ rf, jump } = mergeFlows(layer.name, inputs, warnings));
  } else if (ELEMENTWISE_MERGES.has(cls)) {
    shape = inShape.map((d, i) => {
      let out = d;
      for (const f of inputs.slice(1)) {
        const e = f.shape[i] ?? null;
        if (out === null || out === 1) out = e;
        else if (e !== null && e !== 1 && e !== out) {
          warnings.push(
            `Layer "${layer.name}" (${cls}) merges shapes [${inShape}] and [${f.shape}] that differ`,
          );
        }
      }
      return out;
    });
    ({ rf, jump } = mergeFlows(layer.name, inputs, warnings));
  } else if (!POINTWISE_LAYERS.has(cls)) {
    warnings.push(
      `Layer "${layer.name}" has class "${cls}", which analyze() does not know: its shape is passed through`,
    );
  }
  info.trainableParams = trainable ? trainableWeights : 0;
  info.outputShape = shape;
  info.receptiveField = rf;
  info.jump = jump;
  return { info, flow: { shape, rf, jump } };
}

/** Merged branches: the widest receptive field; jumps must agree for the map to be aligned. */
function mergeFlows(
  name: string,
  inputs: Flow[],
  warnings: string[],
): { rf: Pair | null; jump: Pair | null } {
  const rf = maxPair(inputs.map((f) => f.rf));
  const jumps = inputs.map((f) => f.jump);
  const jump = maxPair(jumps);
  if (jump && jumps.some((j) => j && (j[0] !== jump[0] || j[1] !== jump[1]))) {
    warnings.push(`Layer "${name}" merges branches of different strides: ${JSON.stringify(jumps)}`);
  }
  return { rf, jump };
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
