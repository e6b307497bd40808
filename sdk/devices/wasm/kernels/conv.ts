/**
 * Forward 2-D convolutions on the wasm backend: `Conv2D` and `FusedConv2D`
 * (both replace the shipped kernels), `ZooConv2DMaxPool` (added: a fused
 * convolution followed by 2×2 stride-2 max pooling, which for a
 * one-channel input at stride 1 pools as it convolves, without storing the
 * convolution's output), `ZooConv2DMaxPoolPositions` (added: the same, also
 * returning where each maximum was, for training), and what the other
 * convolution families share: the zero-padded input, the window bases and
 * tap offsets the compiled kernels take, and the shipped convolution with
 * its padding made explicit.
 *
 * The compiled forward kernel is a sum over filter taps on a zero-padded
 * copy of the input (no copy when the convolution does not pad):
 * `y[p, o] = Σₖ x[p, k] · W[k, o]`, tiles of 4 output positions × 8 channels
 * (a one-channel input with stride 1: 4 columns × every output channel, up
 * to 8). It runs for inputs with few channels (a network's first layer),
 * and for every input when its threads outnumber XNNPACK's; XNNPACK's
 * convolution runs otherwise.
 *
 * @example Run a convolution on the compiled kernel
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertAlmostEquals } from "@std/assert";
 * import { initWasmBackend } from "../backend.ts";
 * await initWasmBackend({ threads: false });
 * const x = tf.ones([1, 4, 4, 1]) as tf.Tensor4D, w = tf.ones([3, 3, 1, 2]) as tf.Tensor4D;
 * const y = await tf.conv2d(x, w, 1, "same").data();
 * // Position (1, 1) sees the whole 3×3 window of ones.
 * assertAlmostEquals(y[(1 * 4 + 1) * 2]!, 9);
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import {
  anyEmpty,
  checkedOutput,
  checkRank4,
  dispose,
  expectShape,
  heap,
  type Info,
  offset,
  Scratch,
  zeros,
} from "../_heap.ts";
import { byImages, kernels, ranges, shares, simdThreadsBeyondXnnpack } from "../_compiled.ts";
import {
  type Attrs,
  checkedConv,
  type ConvInfo,
  convInfo,
  type Inputs,
  run,
  unpacked,
  type WasmKernel,
} from "../_kernel.ts";
import type { SimdKernels } from "../simd/module.ts";
import { CONV_MAX_POOL_KERNEL, CONV_MAX_POOL_POSITIONS_KERNEL } from "../../kernels.ts";
import { padCopy, type Padded, simdPadHW } from "./layout.ts";
import { maxPool2x2Positions } from "./pool.ts";

/**
 * The zero-padded input's size: the padding on each side, and at least what
 * the windows reach ((out − 1)·stride + window): a numeric padding gives the
 * output size of a square filter even for a non-square one (tfjs computes
 * it from the filter's height alone), and the cpu backend reads zeros past
 * the edge there.
 */
export function padded(info: ConvInfo): Padded {
  const { top, left, bottom, right } = info.padInfo;
  const reachH = (info.outHeight - 1) * info.strideHeight + info.effectiveFilterHeight;
  const reachW = (info.outWidth - 1) * info.strideWidth + info.effectiveFilterWidth;
  return {
    XH: Math.max(info.inHeight + top + bottom, reachH),
    XW: Math.max(info.inWidth + left + right, reachW),
    top,
    left,
  };
}

/** x itself when the convolution does not pad, else a zero-padded copy in scratch. */
export function paddedInput(
  backend: BackendWasm,
  k: SimdKernels,
  scratch: Scratch,
  x: Info,
  info: ConvInfo,
  pad: Padded,
): number {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C } = info;
  if (pad.XH === H && pad.XW === W) return offset(backend, x);
  const ptr = scratch.alloc(B * pad.XH * pad.XW * C);
  padCopy(k, offset(backend, x), [B, H, W, C], ptr, pad);
  return ptr;
}

/** The tap offsets `(kh·dh·XW + kw·dw)·C + c`, in filter order. */
export function tapOffsets(k: SimdKernels, scratch: Scratch, info: ConvInfo, XW: number): number {
  const { filterHeight: KH, filterWidth: KW, inChannels: C } = info;
  const ptr = scratch.alloc(KH * KW * C);
  const i32 = k.i32();
  let at = ptr >>> 2;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const o = (kh * info.dilationHeight * XW + kw * info.dilationWidth) * C;
      for (let c = 0; c < C; c++) i32[at++] = o + c;
    }
  }
  return ptr;
}

/** The start of every output position's window in the padded input. */
export function windowBases(
  k: SimdKernels,
  scratch: Scratch,
  info: ConvInfo,
  pad: Padded,
): number {
  const { batchSize: B, outHeight: OH, outWidth: OW, inChannels: C } = info;
  const ptr = scratch.alloc(B * OH * OW);
  const row = pad.XW * C, as = pad.XH * row, is = info.strideHeight * row;
  k.parallel(
    "bases3",
    byImages(k, B, B * OH * OW).map((
      [b0, b1],
    ) => [ptr + 4 * b0 * OH * OW, b1 - b0, OH, OW, as, is, info.strideWidth * C, b0]),
  );
  return ptr;
}

/** One input channel, stride 1, no dilation: a first layer on grey images. */
export function oneChannelStride1(info: ConvInfo): boolean {
  return info.inChannels === 1 && info.strideHeight === 1 && info.strideWidth === 1 &&
    info.dilationHeight === 1 && info.dilationWidth === 1;
}

/**
 * A 1×1 filter at stride 1 over an unpadded input: output row p reads input
 * row p alone, so the convolution is a matrix product of x's rows.
 */
export function contiguousRows(info: ConvInfo): boolean {
  const { top, bottom, left, right } = info.padInfo;
  return info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 &&
    info.strideWidth === 1 && top === 0 && bottom === 0 && left === 0 && right === 0 &&
    info.outHeight === info.inHeight && info.outWidth === info.inWidth;
}

/** The activations a fused convolution can apply, by their code in conv_taps. */
export const ACTIVATIONS = ["linear", "relu", "relu6"] as const;

/** What a fused convolution adds to `x ⊛ filter`: a bias per output channel, then an activation. */
export interface ConvEpilogue {
  /** One value per output channel (none when absent). */
  bias?: Info | undefined;
  /**
   * `"linear"`, `"relu"` or `"relu6"` (others are not fused here).
   * @default {"linear"}
   */
  activation?: string;
}

/**
 * Runs a one-channel convolution kernel of `kernels.c` (`conv1_taps`, or
 * `conv1_taps_pool` with its pooling, or `conv1_taps_pool_idx` with the
 * positions' pointer in `extra`) over its `rows` rows, split across the
 * SIMD pool when the convolution's output holds 64 Ki values or more.
 */
function oneChannel(
  k: SimdKernels,
  fn: "conv1_taps" | "conv1_taps_pool" | "conv1_taps_pool_idx",
  rows: number,
  info: ConvInfo,
  pad: Padded,
  xp: number,
  w: number,
  yo: number,
  bo: number,
  act: number,
  extra: number[] = [],
): void {
  const { batchSize: B, outHeight: OH, outWidth: OW, outChannels: O } = info;
  const { filterHeight: KH, filterWidth: KW } = info;
  k.parallel(
    fn,
    (B * OH * OW * O >= 65536 ? shares(k, rows) : ranges(rows, 1)).map((
      [r0, r1],
    ) => [xp, pad.XH, pad.XW, OH, OW, KH, KW, w, O, yo, r0, r1, bo, act, ...extra]),
  );
}

/**
 * The forward convolution `act(x ⊛ filter + bias)`, or `null` when the
 * kernels cannot run (or the bias is not one value per output channel, or
 * the activation is not linear, relu or relu6).
 *
 * @param backend the wasm backend holding the tensors
 * @param x the NHWC float32 input
 * @param filter the `[kh, kw, in, out]` float32 filter
 * @param info the convolution's geometry
 * @param epilogue a fused convolution's bias and activation (none by default)
 * @returns the NHWC output, owned by the caller
 */
export function simdConv2D(
  backend: BackendWasm,
  x: Info,
  filter: Info,
  info: ConvInfo,
  epilogue: ConvEpilogue = {},
): Info | null {
  const k = kernels(backend);
  if (k === null) return null;
  expectShape("conv_taps", "x", x, info.inShape);
  expectShape("conv_taps", "the filter", filter, [
    info.filterHeight,
    info.filterWidth,
    info.inChannels,
    info.outChannels,
  ]);
  const { bias, activation = "linear" } = epilogue;
  if (bias !== undefined && tf.util.sizeFromShape(bias.shape) !== info.outChannels) return null;
  const act = (ACTIVATIONS as readonly string[]).indexOf(activation);
  const bo = bias === undefined ? 0 : offset(backend, bias);
  if (act < 0) return null;
  const { batchSize: B, outHeight: OH, outWidth: OW, outChannels: O } = info;
  const K = info.filterHeight * info.filterWidth * info.inChannels;
  const OP = Math.ceil(O / 8) * 8, P = B * OH * OW;
  const y = checkedOutput(backend, [B, OH, OW, O], "float32");
  const scratch = new Scratch(k);
  try {
    const pad = padded(info);
    const xp = paddedInput(backend, k, scratch, x, info, pad);
    if (oneChannelStride1(info) && O >= 1 && O <= 8 && OW >= 4) {
      // One input channel: tiles of 4 columns × every output channel, bias and activation fused.
      oneChannel(
        k,
        "conv1_taps",
        B * OH,
        info,
        pad,
        xp,
        offset(backend, filter),
        offset(backend, y),
        bo,
        act,
      );
      return y;
    }
    if (xp === offset(backend, x) && contiguousRows(info)) {
      // Every output row reads one input row: a matrix product of x's rows.
      const C = info.inChannels, OP = Math.ceil(O / 16) * 16;
      const w = scratch.alloc(C * OP);
      k.fn.pack_rows(offset(backend, filter), C, O, O, 1, w, OP);
      const yo = offset(backend, y);
      k.parallel(
        "pw_gemm",
        shares(k, P, 2).map(([p0, p1]) => [xp, C, w, O, OP, yo, p0, p1, bo, act]),
      );
      return y;
    }
    const base = windowBases(k, scratch, info, pad);
    const koff = tapOffsets(k, scratch, info, pad.XW);
    const w = scratch.alloc(K * OP);
    k.fn.pack_rows(offset(backend, filter), K, O, O, 1, w, OP);
    const yo = offset(backend, y);
    if (O > 0) {
      k.parallel(
        "conv_taps",
        shares(k, P, 4).map(([p0, p1]) => [xp, base, koff, K, w, O, OP, yo, p0, p1, bo, act]),
      );
    }
  } finally {
    scratch.free();
  }
  return y;
}

/**
 * The forward convolution `act(x ⊛ filter + bias)` of a one-channel input at
 * stride 1, pooled by 2×2 stride-2 unpadded max pooling in the same pass
 * (the convolution's output is never stored), or `null` when this kernel
 * does not cover the call (not one channel at stride 1, undilated; more than
 * 8 output channels; an output under 2×4; an activation other than linear,
 * relu or relu6; a bias not one value per output channel).
 *
 * @param backend the wasm backend holding the tensors
 * @param x the NHWC float32 input
 * @param filter the `[kh, kw, 1, out]` float32 filter
 * @param info the convolution's geometry
 * @param epilogue the bias and activation
 * @returns the pooled `[B, ⌊OH/2⌋, ⌊OW/2⌋, out]` output, owned by the caller
 */
export function simdConv2DMaxPool(
  backend: BackendWasm,
  x: Info,
  filter: Info,
  info: ConvInfo,
  epilogue: ConvEpilogue = {},
): Info | null {
  return conv1Pooled(backend, x, filter, info, epilogue, false)?.[0] ?? null;
}

/**
 * {@linkcode simdConv2DMaxPool} that also says where each maximum was:
 * int32 positions `[B, ⌊OH/2⌋, ⌊OW/2⌋, 1]`, channel `o`'s window position
 * (0 to 3, row-major) at bits `2·o` (the layout of
 * {@linkcode maxPool2x2Positions}), or `null` for the calls
 * `simdConv2DMaxPool` does not cover.
 *
 * @param backend the wasm backend holding the tensors
 * @param x the NHWC float32 input
 * @param filter the `[kh, kw, 1, out]` float32 filter
 * @param info the convolution's geometry
 * @param epilogue the bias and activation
 * @returns the pooled output and the positions, owned by the caller
 */
export function simdConv2DMaxPoolPositions(
  backend: BackendWasm,
  x: Info,
  filter: Info,
  info: ConvInfo,
  epilogue: ConvEpilogue = {},
): [Info, Info] | null {
  const out = conv1Pooled(backend, x, filter, info, epilogue, true);
  return out === null ? null : [out[0], out[1]!];
}

/** The pooled one-channel convolution, with its maxima's positions when `positions`. */
function conv1Pooled(
  backend: BackendWasm,
  x: Info,
  filter: Info,
  info: ConvInfo,
  epilogue: ConvEpilogue,
  positions: boolean,
): [Info, Info | undefined] | null {
  const k = kernels(backend);
  if (k === null) return null;
  const { bias, activation = "linear" } = epilogue;
  const act = (ACTIVATIONS as readonly string[]).indexOf(activation);
  const { batchSize: B, outHeight: OH, outWidth: OW, outChannels: O } = info;
  if (
    !oneChannelStride1(info) || O < 1 || O > 8 || OH < 2 || OW < 4 || act < 0 ||
    (bias !== undefined && tf.util.sizeFromShape(bias.shape) !== O)
  ) return null;
  const fn = positions ? "conv1_taps_pool_idx" : "conv1_taps_pool";
  expectShape(fn, "x", x, info.inShape);
  expectShape(fn, "the filter", filter, [info.filterHeight, info.filterWidth, 1, O]);
  const PH = Math.floor(OH / 2), PW = Math.floor(OW / 2);
  const y = checkedOutput(backend, [B, PH, PW, O], "float32");
  let idx: Info | undefined;
  const scratch = new Scratch(k);
  try {
    idx = positions ? checkedOutput(backend, [B, PH, PW, 1], "int32") : undefined;
    const pad = padded(info);
    const xp = paddedInput(backend, k, scratch, x, info, pad);
    const bo = bias === undefined ? 0 : offset(backend, bias);
    oneChannel(
      k,
      fn,
      B * PH,
      info,
      pad,
      xp,
      offset(backend, filter),
      offset(backend, y),
      bo,
      act,
      idx === undefined ? [] : [offset(backend, idx)],
    );
  } catch (e) {
    dispose(backend, y, ...(idx === undefined ? [] : [idx]));
    throw e;
  } finally {
    scratch.free();
  }
  return [y, idx];
}

/**
 * Runs a shipped convolution (`Conv2D`, `FusedConv2D`, `DepthwiseConv2dNative`,
 * `FusedDepthwiseConv2D`) with its padding made explicit where the shipped
 * kernels get it wrong, and runs it 'valid' on a zero-padded (or cropped)
 * copy of the input:
 * - 'same' with a non-square filter at a stride above 1: 91 of 1,404 small
 *   geometries tried gave other values than the cpu backend (every one of
 *   them such a case; square filters and stride 1 always agreed);
 * - a numeric or explicit padding: the shipped depthwise kernels compute a
 *   wrong output size for it and then write outside their output.
 */
export function shippedConv(
  backend: BackendWasm,
  name: string,
  inputs: Record<string, Info>,
  attrs: Attrs,
): Info {
  const { x, filter } = inputs as { x: Info; filter: Info };
  const numeric = typeof attrs.pad !== "string";
  if (
    (attrs.pad === "same" || numeric) && x.dtype === "float32" && x.shape.length === 4 &&
    (attrs.dataFormat ?? "NHWC") === "NHWC"
  ) {
    const info = convInfo(x.shape, filter.shape, attrs, name.includes("Depthwise"));
    const strided = info.strideHeight > 1 || info.strideWidth > 1;
    if (numeric || (strided && filter.shape[0] !== filter.shape[1])) {
      const { top, left } = info.padInfo;
      if (top < 0 || left < 0) {
        throw new Error(`${name} on wasm needs paddings >= 0: got ${JSON.stringify(attrs.pad)}`);
      }
      // The rows and columns the windows reach: (out − 1)·stride + window.
      const PH = (info.outHeight - 1) * info.strideHeight + info.effectiveFilterHeight;
      const PW = (info.outWidth - 1) * info.strideWidth + info.effectiveFilterWidth;
      const [B, H, W, C] = x.shape as [number, number, number, number];
      const h = Math.min(H, PH - top), w = Math.min(W, PW - left);
      // Windows that see only padding (a numeric padding wider than they reach).
      if (h <= 0 || w <= 0) return emptyConv(backend, inputs, attrs, info.outShape);
      const cropped = h < H || w < W
        ? run(backend, "Slice", { x }, { begin: [0, 0, 0, 0], size: [B, h, w, C] })
        : x;
      const bottom = PH - top - h, right = PW - left - w;
      const padded = simdPadHW(backend, cropped, top, bottom, left, right) ??
        run(backend, "PadV2", { x: cropped }, {
          paddings: [[0, 0], [top, bottom], [left, right], [0, 0]],
          constantValue: 0,
        });
      if (cropped !== x) dispose(backend, cropped);
      const out = run(backend, name, { ...inputs, x: padded }, {
        ...attrs,
        pad: "valid",
        dimRoundingMode: undefined,
      });
      dispose(backend, padded);
      return out;
    }
  }
  return run(backend, name, inputs, attrs);
}

/** A fused activation of one value, as tfjs's `applyActivation` computes it. */
function activate(activation: unknown, v: number, alpha: number, prelu: number): number {
  switch (activation) {
    case "relu":
      return Math.max(0, v);
    case "relu6":
      return Math.min(6, Math.max(0, v));
    case "elu":
      return v >= 0 ? v : Math.exp(v) - 1;
    case "sigmoid":
      return 1 / (1 + Math.exp(-v));
    case "leakyrelu":
      return v < 0 ? alpha * v : v;
    case "prelu":
      return v < 0 ? prelu * v : v;
    default:
      return v;
  }
}

/**
 * A forward convolution over nothing (an empty input or filter): every
 * output is the activation of its channel's bias (0 without one).
 */
function emptyConv(backend: BackendWasm, inputs: Inputs, attrs: Attrs, outShape: number[]): Info {
  const out = zeros(backend, outShape);
  const { bias, preluActivationWeights: pw } = inputs;
  const O = outShape[3] ?? 0, n = tf.util.sizeFromShape(outShape);
  if (n === 0 || (bias === undefined && pw === undefined)) return out;
  const b = bias === undefined ? null : heap(backend, bias);
  const p = pw === undefined ? null : heap(backend, pw);
  const alpha = Number(attrs.leakyreluAlpha ?? 0.2);
  const o = heap(backend, out);
  for (let i = 0; i < n; i++) {
    const c = i % O;
    const v = b === null || b.length === 0 ? 0 : b[c % b.length]!;
    o[i] = activate(
      attrs.activation,
      v,
      alpha,
      p === null || p.length === 0 ? 0 : p[c % p.length]!,
    );
  }
  return out;
}

/**
 * The answer of a forward convolution to a call with an empty input or
 * output: every output is the activation of its channel's bias (0 without
 * one); `null` for other calls.
 *
 * @param depthwise whether the convolution is depthwise
 * @returns the {@linkcode WasmKernel.empty} of such a kernel
 */
export function emptyForward(depthwise: boolean): NonNullable<WasmKernel["empty"]> {
  return (backend, inputs, attrs) => {
    const { x, filter } = inputs as { x: Info; filter: Info };
    const outShape = convInfo(x.shape, filter.shape, attrs, depthwise).outShape;
    return anyEmpty(x, filter) || tf.util.sizeFromShape(outShape) === 0
      ? emptyConv(backend, inputs, attrs, outShape)
      : null;
  };
}

/**
 * The checks of a forward convolution: rank-4 input and filter, an output
 * size the cpu backend accepts, the filter's input channels those of x.
 *
 * @param name the kernel's name, for the messages
 * @param depthwise whether the convolution is depthwise
 * @returns the {@linkcode WasmKernel.validate} of such a kernel
 */
export function validateForward(
  name: string,
  depthwise: boolean,
): NonNullable<WasmKernel["validate"]> {
  return ({ x, filter }, attrs) => {
    checkRank4(name, { x, filter });
    checkedConv(name, x!.shape, filter!.shape, attrs, depthwise);
  };
}

/**
 * Input channels up to which the compiled forward convolution beats
 * XNNPACK's (measured on MNIST-size first layers; XNNPACK wins from a few
 * channels up).
 */
const SIMD_CONV_MAX_IN_CHANNELS = 4;

/**
 * The forward convolution: the compiled SIMD kernel for inputs with few
 * channels (a network's first layer), and for every input when the kernels
 * run on more threads than XNNPACK; XNNPACK's otherwise.
 */
const conv2D = unpacked<{ x: Info; filter: Info }>((backend, { x, filter }, attrs) => {
  const inChannels = x.shape[3] ?? 0;
  if (
    x.dtype === "float32" && filter.dtype === "float32" &&
    (attrs.dataFormat ?? "NHWC") === "NHWC" &&
    (inChannels <= SIMD_CONV_MAX_IN_CHANNELS || simdThreadsBeyondXnnpack(backend))
  ) {
    const info = convInfo(x.shape, filter.shape, attrs);
    const fast = simdConv2D(backend, x, filter, info);
    if (fast !== null) return fast;
  }
  return shippedConv(backend, "Conv2D", { x, filter }, attrs);
});

/**
 * The fused convolution (bias and activation after it; MobileNets' 1×1
 * convolutions): on the SIMD pool with the bias and a linear, relu or relu6
 * activation applied as each tile is stored, when the pool has more threads
 * than XNNPACK; XNNPACK's otherwise (where it runs on XNNPACK's own pool).
 */
type FusedConvInputs = { x: Info; filter: Info; bias?: Info; preluActivationWeights?: Info };
const fusedConv2D = unpacked<FusedConvInputs>((backend, inputs, attrs) => {
  const { x, filter, bias, preluActivationWeights } = inputs;
  if (
    simdThreadsBeyondXnnpack(backend) && preluActivationWeights === undefined &&
    x.dtype === "float32" && filter.dtype === "float32" &&
    (bias === undefined || bias.dtype === "float32") &&
    (attrs.dataFormat ?? "NHWC") === "NHWC"
  ) {
    const info = convInfo(x.shape, filter.shape, attrs);
    const fast = simdConv2D(backend, x, filter, info, {
      bias,
      activation: String(attrs.activation ?? "linear"),
    });
    if (fast !== null) return fast;
  }
  return shippedConv(backend, "FusedConv2D", inputs as Record<string, Info>, attrs);
});

/** The pooled shape of {@linkcode CONV_MAX_POOL_KERNEL}: the convolution's output, halved and floored. */
function convMaxPoolShape(inputs: Inputs, attrs: Attrs): number[] {
  const [B, OH, OW, O] = convInfo(inputs.x!.shape, inputs.filter!.shape, attrs).outShape;
  return [B!, Math.floor(OH! / 2), Math.floor(OW! / 2), O!];
}

/**
 * The pooled one-channel convolution of a {@linkcode CONV_MAX_POOL_KERNEL}
 * or {@linkcode CONV_MAX_POOL_POSITIONS_KERNEL} call, by `pooled` (one of
 * {@linkcode simdConv2DMaxPool} and {@linkcode simdConv2DMaxPoolPositions}),
 * or `null` for a call it does not cover.
 */
function pooledFast<R>(
  backend: BackendWasm,
  inputs: FusedConvInputs,
  attrs: Attrs,
  pooled: (b: BackendWasm, x: Info, f: Info, info: ConvInfo, e: ConvEpilogue) => R | null,
): R | null {
  const { x, filter, bias, preluActivationWeights } = inputs;
  if (
    preluActivationWeights !== undefined || x.dtype !== "float32" ||
    filter.dtype !== "float32" || (bias !== undefined && bias.dtype !== "float32") ||
    (attrs.dataFormat ?? "NHWC") !== "NHWC" || anyEmpty(x, filter)
  ) return null;
  const info = convInfo(x.shape, filter.shape, attrs);
  return pooled(backend, x, filter, info, {
    bias,
    activation: String(attrs.activation ?? "linear"),
  });
}

/**
 * Runs the registered wasm kernel `name`, with its checks and its answers
 * for empty inputs.
 *
 * @param backend the wasm backend
 * @param name the kernel
 * @param args its inputs
 * @param attrs its attributes
 * @returns its output, owned by the caller
 */
export function registered(backend: BackendWasm, name: string, args: object, attrs: Attrs): Info {
  return tf.getKernel(name, "wasm")!.kernelFunc({
    inputs: args as tf.NamedTensorInfoMap,
    backend,
    attrs: attrs as tf.NamedAttrMap,
  }) as Info;
}

/**
 * {@linkcode CONV_MAX_POOL_KERNEL}: a one-channel, stride-1 convolution
 * pooled as it is computed (`conv1_taps_pool`); any other one (or one of an
 * empty input) as the registered `FusedConv2D`, then `MaxPool`.
 */
const convMaxPool = unpacked<FusedConvInputs>((backend, inputs, attrs) => {
  const fast = pooledFast(backend, inputs, attrs, simdConv2DMaxPool);
  if (fast !== null) return fast;
  const conv = registered(backend, "FusedConv2D", inputs, attrs);
  try {
    return registered(backend, "MaxPool", { x: conv }, {
      filterSize: 2,
      strides: 2,
      pad: "valid",
    });
  } finally {
    dispose(backend, conv);
  }
});

/**
 * {@linkcode CONV_MAX_POOL_POSITIONS_KERNEL}: the pooled output and where
 * each maximum was, for a one-channel, stride-1 convolution as it is
 * computed (`conv1_taps_pool_idx`); any other one as the registered
 * `FusedConv2D`, then `max_pool_2x2_idx`.
 */
const convMaxPoolPositions: tf.KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const inputs = args.inputs as unknown as FusedConvInputs;
  const attrs = (args.attrs ?? {}) as Attrs;
  const fast = pooledFast(backend, inputs, attrs, simdConv2DMaxPoolPositions);
  if (fast !== null) return fast;
  const conv = registered(backend, "FusedConv2D", inputs, attrs);
  try {
    return maxPool2x2Positions(backend, conv);
  } finally {
    dispose(backend, conv);
  }
};

/** The forward convolutions: `Conv2D`, `FusedConv2D` (both replaced), {@linkcode CONV_MAX_POOL_KERNEL} (added). */
export const CONV_KERNELS: readonly WasmKernel[] = [
  {
    name: "Conv2D",
    kind: "replaced",
    kernelFunc: conv2D,
    validate: validateForward("Conv2D", false),
    empty: emptyForward(false),
  },
  {
    name: "FusedConv2D",
    kind: "replaced",
    kernelFunc: fusedConv2D,
    validate: validateForward("FusedConv2D", false),
    empty: emptyForward(false),
  },
  {
    name: CONV_MAX_POOL_POSITIONS_KERNEL,
    kind: "added",
    kernelFunc: convMaxPoolPositions,
    validate: validateForward(CONV_MAX_POOL_POSITIONS_KERNEL, false),
  },
  {
    name: CONV_MAX_POOL_KERNEL,
    kind: "added",
    kernelFunc: convMaxPool,
    validate: validateForward(CONV_MAX_POOL_KERNEL, false),
    empty: (backend, inputs, attrs) => {
      const shape = convMaxPoolShape(inputs, attrs);
      return tf.util.sizeFromShape(shape) === 0 ? zeros(backend, shape) : null;
    },
  },
];
