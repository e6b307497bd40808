/**
 * One layer's step of an analysis walk: from the shapes, receptive fields
 * and jumps flowing into a layer, its output shape, parameters, FLOPs and
 * geometry, read from its Keras config alone.
 *
 * @module
 */
import {
  COLLAPSE_LAYERS,
  dilatedKernel,
  ELEMENTWISE_MERGES,
  POINTWISE_LAYERS,
  WINDOW_LAYERS,
} from "./_geometry.ts";
import { deconvLength, windowLength } from "./_geometry.ts";
import type { LayerInfo, Shape } from "./types.ts";
import type { RawLayer } from "./_topology.ts";

/** A height and a width. */
export type Pair = [number, number];

/** What flows along an edge during a walk. */
export interface Flow {
  shape: Shape;
  rf: Pair | null;
  jump: Pair | null;
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
export interface Step {
  info: LayerInfo;
  flow: Flow;
}

/** The step of a plain (not nested) layer. */
export function stepLayer(
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
