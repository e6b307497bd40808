/**
 * One call of every kernel that `sdk/devices/wasm/register.ts` adds to or
 * replaces on the wasm backend, with seeded inputs, and a way to run such a
 * call on any backend through the engine (so the registered replacement runs
 * on wasm). The high-heap and fuzz tests compare these against cpu.
 */
import * as tf from "@tensorflow/tfjs";
import { CLIP_GRAD_KERNEL, RELU_GRAD_KERNEL } from "../../../sdk/devices/wasm/register.ts";
import {
  BATCH_NORM_KERNELS,
  CONV_MAX_POOL_FILTER_GRAD_KERNEL,
  CONV_MAX_POOL_KERNEL,
  CONV_MAX_POOL_POSITIONS_KERNEL,
  MAX_POOL_SCATTER_KERNEL,
} from "../../../sdk/devices/kernels.ts";
import { seededTensor } from "./_compare.ts";

/** A tensor's values and shape (created on whichever backend runs the call). */
export interface Values {
  values: Float32Array;
  shape: number[];
  /** The tensor's dtype when not float32. */
  dtype?: "int32";
}

/** A kernel, its inputs and attributes. */
export interface KernelCall {
  kernel: string;
  inputs: Record<string, Values>;
  attrs: Record<string, unknown>;
}

/** Every axis of `x` but the last: the axes BatchNormalization reduces over. */
function leading(x: tf.Tensor): number[] {
  return Array.from({ length: x.rank - 1 }, (_, i) => i);
}

/**
 * `MaxPoolGrad` from the positions of the maxima, on cpu: `dy` at each
 * window's position where `y` is above -Infinity, with the wasm kernel's
 * checks (the same error classes).
 */
function scatterOnCpu({ dy, y, indices }: Record<string, tf.Tensor>, attrs: tf.NamedAttrMap) {
  const shape = attrs.inputShape as number[];
  if (
    !Array.isArray(shape) || shape.length !== 4 ||
    !shape.every((d) => Number.isInteger(d) && d >= 0)
  ) {
    throw new Error(`inputShape of 4 whole sizes >= 0: got ${JSON.stringify(shape)}`);
  }
  if (indices!.dtype !== "int32") throw new TypeError("needs int32 indices");
  const [B, H, W, C] = shape as [number, number, number, number];
  const OH = Math.floor(H / 2), OW = Math.floor(W / 2), NW = Math.ceil(C / 16);
  const pooled = [B, OH, OW, C];
  const wanted: [string, tf.Tensor | undefined, number[]][] = [
    ["dy", dy, pooled],
    ["y", y, pooled],
    ["indices", indices, [B, OH, OW, NW]],
  ];
  for (const [name, t, want] of wanted) {
    if (!tf.util.arraysEqual(t!.shape, want)) throw new Error(`${name} has shape [${t!.shape}]`);
  }
  const g = dy!.dataSync(), v = y!.dataSync(), words = indices!.dataSync();
  const out = new Float32Array(B * H * W * C);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const o = (b * OH + oh) * OW + ow;
        for (let c = 0; c < C; c++) {
          if (!(v[o * C + c]! > -Infinity)) continue;
          const at = (words[o * NW + (c >> 4)]! >>> (2 * (c & 15))) & 3;
          out[((b * H + 2 * oh + (at >> 1)) * W + 2 * ow + (at & 1)) * C + c] = g[o * C + c]!;
        }
      }
    }
  }
  return tf.tensor(out, shape);
}

/**
 * The kernels this project adds have no cpu kernel: on cpu, the ops tfjs
 * runs for them instead.
 */
const CPU_EQUIVALENT: Record<
  string,
  (t: Record<string, tf.Tensor>, attrs: tf.NamedAttrMap) => tf.Tensor
> = {
  [RELU_GRAD_KERNEL]: ({ x, dy }) => tf.mul(dy!, tf.step(x!)),
  [BATCH_NORM_KERNELS.variance]: ({ x, mean }) =>
    tf.mean(tf.square(tf.sub(x!, mean!)), leading(x!)),
  [BATCH_NORM_KERNELS.gradSums]: ({ x, dy, mean }) =>
    tf.stack([tf.sum(dy!, leading(x!)), tf.sum(tf.mul(dy!, tf.sub(x!, mean!)), leading(x!))]),
  [BATCH_NORM_KERNELS.gradInput]: ({ x, dy, mean, coef }) => {
    const [a, b, c] = tf.unstack(tf.reshape(coef!, [3, -1]));
    return tf.add(tf.add(tf.mul(a!, dy!), tf.mul(b!, tf.sub(x!, mean!))), c!);
  },
  // cpu's FusedConv2D kernel (with its checks, in its order), then the pooling.
  [CONV_MAX_POOL_KERNEL]: (t, a) =>
    tf.maxPool(
      tf.engine().runKernel("FusedConv2D", t, a) as tf.Tensor4D,
      2,
      2,
      "valid",
    ),
  // Its pooled output (the values compared; the positions are checked exactly elsewhere).
  [CONV_MAX_POOL_POSITIONS_KERNEL]: (t, a) =>
    tf.maxPool(
      tf.engine().runKernel("FusedConv2D", t, a) as tf.Tensor4D,
      2,
      2,
      "valid",
    ),
  [MAX_POOL_SCATTER_KERNEL]: scatterOnCpu,
  // The scatter onto the convolution's output shape, then cpu's filter gradient.
  [CONV_MAX_POOL_FILTER_GRAD_KERNEL]: ({ x, dy, y, indices }, a) => {
    const shape = tf.backend_util.computeConv2DInfo(
      x!.shape as [number, number, number, number],
      a.filterShape as [number, number, number, number],
      a.strides as [number, number],
      (a.dilations ?? 1) as number,
      a.pad as "same",
    ).outShape;
    // A convolution whose output has a negative size (a RangeError, as for a typed array of
    // that length) or a negative dimension (tfjs's shape check): no pooling read it.
    if (tf.util.sizeFromShape(shape) < 0) throw new RangeError(`the output shape [${shape}]`);
    tf.util.assertNonNegativeIntegerDimensions(shape);
    const dz = scatterOnCpu({ dy: dy!, y: y!, indices: indices! }, { inputShape: shape });
    return tf.engine().runKernel("Conv2DBackpropFilter", { x: x!, dy: dz }, a) as tf.Tensor;
  },
  [CLIP_GRAD_KERNEL]: ({ x, dy }, a) =>
    tf.where(
      tf.logicalAnd(
        tf.greaterEqual(x!, Number(a.clipValueMin)),
        tf.lessEqual(x!, Number(a.clipValueMax)),
      ),
      dy!,
      tf.zerosLike(dy!),
    ),
};

/**
 * Runs `call` through the engine on the current backend and returns the
 * output's values and shape (the first output's, for a kernel with more);
 * every tensor it made is disposed, also when it throws.
 */
export function runNow(call: KernelCall): Values {
  return tf.tidy(() => {
    const ts: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(call.inputs)) {
      ts[k] = tf.tensor(v.values, v.shape, v.dtype ?? "float32");
    }
    const attrs = call.attrs as tf.NamedAttrMap;
    const cpu = tf.getBackend() === "cpu" ? CPU_EQUIVALENT[call.kernel] : undefined;
    const ran = cpu !== undefined
      ? cpu(ts, attrs)
      : tf.engine().runKernel(call.kernel, ts, attrs) as tf.Tensor | tf.Tensor[];
    const out = Array.isArray(ran) ? ran[0]! : ran;
    return { values: out.dataSync() as Float32Array, shape: out.shape };
  });
}

/** Runs `call` on `backend` (then switches back to wasm). */
export async function runOn(backend: string, call: KernelCall): Promise<Values> {
  await tf.setBackend(backend);
  try {
    return runNow(call);
  } finally {
    await tf.setBackend("wasm");
  }
}

/** A convolution kernel's attributes. */
export function convAttrs(
  strides: number | [number, number],
  pad: "same" | "valid" | number,
  dilations: number | [number, number] = 1,
): Record<string, unknown> {
  return { strides, pad, dataFormat: "NHWC", dilations, dimRoundingMode: undefined };
}

/**
 * One call of every added or replaced kernel (each compiled kernel family
 * among them), on NHWC inputs `[B, H, W, C]`. With `big`, sizes are large
 * enough that the compiled kernels split their work across threads.
 */
export function everyKernel(seed: number, big = false): KernelCall[] {
  const B = big ? 4 : 2, H = big ? 40 : 9, W = big ? 36 : 7, C = 5;
  let s = seed;
  const t = (...shape: number[]): Values => (seededTensor(shape, s++));
  const positive = (n: number): Values => {
    const v = t(n);
    return { values: v.values.map((a) => Math.abs(a) + 0.5), shape: v.shape };
  };
  /** Packed window positions: every channel's 2 bits drawn from the seed. */
  const positions = (...shape: number[]): Values => {
    const v = t(...shape);
    return {
      values: v.values.map((a) => Math.floor(Math.abs(a) * 1e4) % 1024),
      shape,
      dtype: "int32",
    };
  };
  const x = t(B, H, W, C), x1 = t(B, H, W, 1), vec = t(C);
  const f = t(3, 3, C, 4), f1 = t(3, 5, 1, 6), df = t(3, 3, C, 2), pw = t(1, 1, C, 4);
  const dy = t(B, H, W, 4), dyS = t(B, Math.ceil(H / 2), Math.ceil(W / 2), 4);
  const dyD = t(B, H, W, 2 * C), dyPool = t(B, Math.floor(H / 2), Math.floor(W / 2), C);
  const dyPool3 = t(B, Math.floor(H / 3), Math.floor(W / 3), C);
  const dyPool6 = t(B, Math.floor(H / 2), Math.floor(W / 2), 6);
  const dyPool4 = t(B, Math.floor(H / 2), Math.floor(W / 2), 4);
  const a = t(big ? 300 : 40, 30), b = t(big ? 300 : 40, 20), b2 = t(30, 20);
  const same = convAttrs(1, "same"), strided = convAttrs(2, "same");
  const fs = { filterShape: [3, 3, C, 4] }, inShape = { inputShape: x.shape };
  // Pooling windows that tile the input (2×2, 3×3) and ones that overlap.
  const pool2 = { filterSize: 2, strides: 2, pad: "valid" };
  const pool3 = { filterSize: 3, strides: 3, pad: "valid" };
  const overlapping3 = { filterSize: 3, strides: 1, pad: "same" };
  const calls: [string, Record<string, Values>, Record<string, unknown>][] = [
    ["Conv2D", { x, filter: f }, same],
    ["Conv2D", { x: x1, filter: f1 }, same],
    ["Conv2D", { x, filter: f }, convAttrs([2, 1], "valid")],
    ["FusedConv2D", { x, filter: f, bias: t(4) }, { ...same, activation: "relu6" }],
    // 1×1, stride 1: the compiled matrix product of rows (and its input gradient below).
    ["FusedConv2D", { x, filter: pw, bias: t(4) }, { ...same, activation: "relu" }],
    // One channel at stride 1: pooled as it is computed; more channels: the two kernels.
    [CONV_MAX_POOL_KERNEL, { x: x1, filter: f1, bias: t(6) }, { ...same, activation: "relu" }],
    [CONV_MAX_POOL_KERNEL, { x, filter: f }, { ...convAttrs(1, "valid"), activation: "linear" }],
    // The same with the maxima's positions; and the gradient put back at given positions.
    [
      CONV_MAX_POOL_POSITIONS_KERNEL,
      { x: x1, filter: f1, bias: t(6) },
      { ...same, activation: "relu" },
    ],
    [
      CONV_MAX_POOL_POSITIONS_KERNEL,
      { x, filter: f },
      { ...convAttrs(1, "valid"), activation: "linear" },
    ],
    [
      MAX_POOL_SCATTER_KERNEL,
      { dy: dyPool, y: dyPool, indices: positions(B, Math.floor(H / 2), Math.floor(W / 2), 1) },
      { inputShape: x.shape },
    ],
    // The filter gradient from a pooled one: one channel (compiled), and five (the two kernels).
    [
      CONV_MAX_POOL_FILTER_GRAD_KERNEL,
      {
        x: x1,
        dy: dyPool6,
        y: dyPool6,
        indices: positions(B, Math.floor(H / 2), Math.floor(W / 2), 1),
      },
      { ...same, filterShape: [3, 5, 1, 6] },
    ],
    [
      CONV_MAX_POOL_FILTER_GRAD_KERNEL,
      {
        x,
        dy: dyPool4,
        y: dyPool4,
        indices: positions(B, Math.floor(H / 2), Math.floor(W / 2), 1),
      },
      { ...same, ...fs },
    ],
    ["Conv2DBackpropFilter", { x, dy }, { ...same, ...fs }],
    ["Conv2DBackpropFilter", { x: x1, dy: t(B, H, W, 6) }, { ...same, filterShape: [3, 5, 1, 6] }],
    ["Conv2DBackpropFilter", { x, dy: dyS }, { ...strided, ...fs }],
    // 1×1, stride 1: the compiled pointwise filter gradient.
    ["Conv2DBackpropFilter", { x, dy }, { ...same, filterShape: [1, 1, C, 4] }],
    ["Conv2DBackpropInput", { dy, filter: f }, { ...same, ...inShape }],
    ["Conv2DBackpropInput", { dy: dyS, filter: f }, { ...strided, ...inShape }],
    ["Conv2DBackpropInput", { dy, filter: pw }, { ...same, ...inShape }],
    ["DepthwiseConv2dNative", { x, filter: df }, strided],
    ["FusedDepthwiseConv2D", { x, filter: df, bias: t(2 * C) }, { ...same, activation: "relu" }],
    ["DepthwiseConv2dNativeBackpropFilter", { x, dy: dyD }, { ...same, filterShape: df.shape }],
    ["DepthwiseConv2dNativeBackpropInput", { dy: dyD, filter: df }, { ...same, ...inShape }],
    ["BatchMatMul", { a, b }, { transposeA: true, transposeB: false }],
    ["BatchMatMul", { a, b: a }, { transposeA: false, transposeB: true }],
    ["BatchMatMul", { a, b: b2 }, { transposeA: false, transposeB: false }],
    [
      "FusedBatchNorm",
      { x, mean: vec, variance: positive(C), offset: t(C), scale: positive(C) },
      { varianceEpsilon: 1e-3 },
    ],
    ["Add", { a: x, b: vec }, {}],
    ["Sub", { a: x, b: vec }, {}],
    ["Multiply", { a: x, b: vec }, {}],
    ["Multiply", { a: x, b: t(1) }, {}],
    ["Mean", { x }, { axis: [0, 1, 2], keepDims: false }],
    ["Sum", { x }, { axis: [0, 1], keepDims: true }],
    ["Relu", { x }, {}],
    ["Square", { x }, {}],
    ["ClipByValue", { x }, { clipValueMin: -0.5, clipValueMax: 0.5 }],
    [RELU_GRAD_KERNEL, { x, dy: t(...x.shape) }, {}],
    [BATCH_NORM_KERNELS.variance, { x, mean: vec }, {}],
    [BATCH_NORM_KERNELS.gradSums, { x, dy: t(...x.shape), mean: vec }, {}],
    [BATCH_NORM_KERNELS.gradInput, { x, dy: t(...x.shape), mean: vec, coef: t(3, C) }, {}],
    [CLIP_GRAD_KERNEL, { x, dy: t(...x.shape) }, { clipValueMin: -0.5, clipValueMax: 0.5 }],
    ["PadV2", { x }, { paddings: [[0, 0], [1, 2], [0, 1], [0, 0]], constantValue: 0 }],
    ["MaxPool", { x }, pool2],
    ["AvgPool", { x }, pool3],
    ["MaxPoolGrad", { dy: dyPool, input: x, output: dyPool }, pool2],
    ["MaxPoolGrad", { dy: t(B, H, W, C), input: x, output: x }, overlapping3],
    ["AvgPoolGrad", { dy: dyPool3, input: x }, pool3],
    ["Slice", { x }, { begin: [0, 1, 2, 1], size: [B, 3, 2, 3] }],
    ["Tile", { x: vec }, { reps: [3] }],
    ["Transpose", { x: a }, { perm: [1, 0] }],
    ["Identity", { x: vec }, {}],
    ["Cast", { x: vec }, { dtype: "float32" }],
  ];
  return calls.map(([kernel, inputs, attrs]) => ({ kernel, inputs, attrs }));
}
