/**
 * One call of every kernel that `sdk/devices/wasm/register.ts` adds to or
 * replaces on the wasm backend, with seeded inputs, and a way to run such a
 * call on any backend through the engine (so the registered replacement runs
 * on wasm). The high-heap and fuzz tests compare these against cpu.
 */
import * as tf from "@tensorflow/tfjs";
import { CLIP_GRAD_KERNEL, RELU_GRAD_KERNEL } from "../../../sdk/devices/wasm/register.ts";
import { seeded } from "./_compare.ts";

/** A tensor's values and shape (created on whichever backend runs the call). */
export interface Values {
  values: Float32Array;
  shape: number[];
}

/** A kernel, its inputs and attributes. */
export interface KernelCall {
  kernel: string;
  inputs: Record<string, Values>;
  attrs: Record<string, unknown>;
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
 * output's values and shape; every tensor it made is disposed, also when it
 * throws.
 */
export function runNow(call: KernelCall): Values {
  return tf.tidy(() => {
    const ts: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(call.inputs)) ts[k] = tf.tensor(v.values, v.shape);
    const attrs = call.attrs as tf.NamedAttrMap;
    const cpu = tf.getBackend() === "cpu" ? CPU_EQUIVALENT[call.kernel] : undefined;
    const out = cpu !== undefined
      ? cpu(ts, attrs)
      : tf.engine().runKernel(call.kernel, ts, attrs) as tf.Tensor;
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
  const t = (...shape: number[]): Values => ({ values: seeded(shape, s++), shape });
  const positive = (n: number): Values => {
    const v = t(n);
    return { values: v.values.map((a) => Math.abs(a) + 0.5), shape: v.shape };
  };
  const x = t(B, H, W, C), x1 = t(B, H, W, 1), vec = t(C);
  const f = t(3, 3, C, 4), f1 = t(3, 5, 1, 6), df = t(3, 3, C, 2);
  const dy = t(B, H, W, 4), dyS = t(B, Math.ceil(H / 2), Math.ceil(W / 2), 4);
  const dyD = t(B, H, W, 2 * C), dyPool = t(B, Math.floor(H / 2), Math.floor(W / 2), C);
  const dyPool3 = t(B, Math.floor(H / 3), Math.floor(W / 3), C);
  const a = t(big ? 300 : 40, 30), b = t(big ? 300 : 40, 20), b2 = t(30, 20);
  const same = convAttrs(1, "same"), strided = convAttrs(2, "same");
  const fs = { filterShape: [3, 3, C, 4] };
  return [
    { kernel: "Conv2D", inputs: { x, filter: f }, attrs: same },
    { kernel: "Conv2D", inputs: { x: x1, filter: f1 }, attrs: same },
    { kernel: "Conv2D", inputs: { x, filter: f }, attrs: convAttrs([2, 1], "valid") },
    {
      kernel: "FusedConv2D",
      inputs: { x, filter: f, bias: t(4) },
      attrs: { ...same, activation: "relu6" },
    },
    { kernel: "Conv2DBackpropFilter", inputs: { x, dy }, attrs: { ...same, ...fs } },
    {
      kernel: "Conv2DBackpropFilter",
      inputs: { x: x1, dy: t(B, H, W, 6) },
      attrs: { ...same, filterShape: [3, 5, 1, 6] },
    },
    {
      kernel: "Conv2DBackpropFilter",
      inputs: { x, dy: dyS },
      attrs: { ...strided, ...fs },
    },
    // 1×1, stride 1: the compiled pointwise filter gradient.
    {
      kernel: "Conv2DBackpropFilter",
      inputs: { x, dy },
      attrs: { ...same, filterShape: [1, 1, C, 4] },
    },
    {
      kernel: "Conv2DBackpropInput",
      inputs: { dy, filter: f },
      attrs: { ...same, inputShape: x.shape },
    },
    {
      kernel: "Conv2DBackpropInput",
      inputs: { dy: dyS, filter: f },
      attrs: { ...strided, inputShape: x.shape },
    },
    { kernel: "DepthwiseConv2dNative", inputs: { x, filter: df }, attrs: strided },
    {
      kernel: "FusedDepthwiseConv2D",
      inputs: { x, filter: df, bias: t(2 * C) },
      attrs: { ...same, activation: "relu" },
    },
    {
      kernel: "DepthwiseConv2dNativeBackpropFilter",
      inputs: { x, dy: dyD },
      attrs: { ...same, filterShape: df.shape },
    },
    {
      kernel: "DepthwiseConv2dNativeBackpropInput",
      inputs: { dy: dyD, filter: df },
      attrs: { ...same, inputShape: x.shape },
    },
    { kernel: "BatchMatMul", inputs: { a, b }, attrs: { transposeA: true, transposeB: false } },
    { kernel: "BatchMatMul", inputs: { a, b: a }, attrs: { transposeA: false, transposeB: true } },
    {
      kernel: "BatchMatMul",
      inputs: { a, b: b2 },
      attrs: { transposeA: false, transposeB: false },
    },
    {
      kernel: "FusedBatchNorm",
      inputs: { x, mean: vec, variance: positive(C), offset: t(C), scale: positive(C) },
      attrs: { varianceEpsilon: 1e-3 },
    },
    { kernel: "Add", inputs: { a: x, b: vec }, attrs: {} },
    { kernel: "Sub", inputs: { a: x, b: vec }, attrs: {} },
    { kernel: "Multiply", inputs: { a: x, b: vec }, attrs: {} },
    { kernel: "Multiply", inputs: { a: x, b: t(1) }, attrs: {} },
    { kernel: "Mean", inputs: { x }, attrs: { axis: [0, 1, 2], keepDims: false } },
    { kernel: "Sum", inputs: { x }, attrs: { axis: [0, 1], keepDims: true } },
    { kernel: "Relu", inputs: { x }, attrs: {} },
    { kernel: "Square", inputs: { x }, attrs: {} },
    { kernel: "ClipByValue", inputs: { x }, attrs: { clipValueMin: -0.5, clipValueMax: 0.5 } },
    { kernel: RELU_GRAD_KERNEL, inputs: { x, dy: t(...x.shape) }, attrs: {} },
    {
      kernel: CLIP_GRAD_KERNEL,
      inputs: { x, dy: t(...x.shape) },
      attrs: { clipValueMin: -0.5, clipValueMax: 0.5 },
    },
    {
      kernel: "PadV2",
      inputs: { x },
      attrs: { paddings: [[0, 0], [1, 2], [0, 1], [0, 0]], constantValue: 0 },
    },
    { kernel: "MaxPool", inputs: { x }, attrs: { filterSize: 2, strides: 2, pad: "valid" } },
    { kernel: "AvgPool", inputs: { x }, attrs: { filterSize: 3, strides: 3, pad: "valid" } },
    {
      kernel: "MaxPoolGrad",
      inputs: { dy: dyPool, input: x, output: dyPool },
      attrs: { filterSize: 2, strides: 2, pad: "valid" },
    },
    {
      kernel: "MaxPoolGrad",
      inputs: { dy: t(B, H, W, C), input: x, output: x },
      attrs: { filterSize: 3, strides: 1, pad: "same" },
    },
    {
      kernel: "AvgPoolGrad",
      inputs: { dy: dyPool3, input: x },
      attrs: { filterSize: 3, strides: 3, pad: "valid" },
    },
    { kernel: "Slice", inputs: { x }, attrs: { begin: [0, 1, 2, 1], size: [B, 3, 2, 3] } },
    { kernel: "Tile", inputs: { x: vec }, attrs: { reps: [3] } },
    { kernel: "Transpose", inputs: { x: a }, attrs: { perm: [1, 0] } },
    { kernel: "Identity", inputs: { x: vec }, attrs: {} },
    { kernel: "Cast", inputs: { x: vec }, attrs: { dtype: "float32" } },
  ];
}
