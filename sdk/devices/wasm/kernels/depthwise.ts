/**
 * Depthwise 2-D convolutions on the wasm backend: the forward kernels
 * `DepthwiseConv2dNative` and `FusedDepthwiseConv2D` (replaced: the shipped
 * ones, with their padding made explicit where they get it wrong), and
 * their gradients `DepthwiseConv2dNativeBackpropFilter` and
 * `DepthwiseConv2dNativeBackpropInput` (added: tfjs-backend-wasm has none).
 *
 * - Filter gradient: `dW[kh, kw, c] = Σ x[…, c] · dy[…, c]` on the compiled
 *   kernel (channel multiplier 1); otherwise
 *   `dW[k, c, m] = Σₙ im2col(x)[n, k, c] · dy[n, c, m]`, a broadcast product
 *   reduced over `n` by a matrix product with ones.
 * - Forward, 3×3 with multiplier 1 (MobileNets'), when the compiled kernels
 *   run on more threads than XNNPACK: `dw3x3`, split by output rows, with
 *   the bias and activation applied as it stores.
 * - Input gradient: for those 3×3 convolutions, `dw3x3_grad_input` gathers
 *   each input's taps (at stride 2, only the taps that reach it); otherwise
 *   a stride-1 depthwise convolution of the zero-upsampled, padded `dy` with
 *   the spatially flipped filter (a direct scatter when the convolution is
 *   dilated).
 *
 * @example The gradient of a depthwise convolution's input
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { initWasmBackend } from "../backend.ts";
 * await initWasmBackend({ threads: false });
 * const w = tf.ones([2, 2, 1, 1]) as tf.Tensor4D;
 * const conv = (x: tf.Tensor) => tf.depthwiseConv2d(x as tf.Tensor4D, w, 1, "valid");
 * // Each input gets a gradient of 1 from every 2×2 window that covers it.
 * const dx = await tf.grad(conv)(tf.ones([1, 3, 3, 1])).data();
 * assertEquals(dx, new Float32Array([1, 2, 1, 2, 4, 2, 1, 2, 1]));
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import {
  anyEmpty,
  checkedOutput,
  checkFloat,
  dispose,
  expectShape,
  heap,
  type Info,
  offset,
  Scratch,
  zeros,
} from "../_heap.ts";
import { kernels, shares, simdThreadsBeyondXnnpack, sumByRows } from "../_compiled.ts";
import {
  type Attrs,
  type ConvInfo,
  convInfo,
  dims,
  reshape,
  run,
  unpacked,
  type WasmKernel,
} from "../_kernel.ts";
import { ACTIVATIONS, emptyForward, shippedConv, validateForward } from "./conv.ts";
import { validateGrad } from "./conv_grad.ts";
import { flippedFilter, upsamplePadded } from "./_transposed.ts";
import { accumulate, batchRows, im2col, imagesPerChunk } from "./_im2col.ts";

/**
 * Whether the compiled 3×3 kernels take this depthwise convolution: a 3×3
 * filter, channel multiplier 1, strides of 1 or 2, no dilation, paddings ≥ 0.
 */
function compiled3x3(info: ConvInfo): boolean {
  const one2 = (s: number) => s === 1 || s === 2;
  return info.filterHeight === 3 && info.filterWidth === 3 &&
    info.outChannels === info.inChannels && info.dilationHeight === 1 &&
    info.dilationWidth === 1 && one2(info.strideHeight) && one2(info.strideWidth) &&
    info.padInfo.top >= 0 && info.padInfo.left >= 0;
}

/**
 * A 3×3 depthwise convolution (channel multiplier 1) with an optional bias
 * and a linear, relu or relu6 activation on the compiled kernel (`dw3x3`),
 * split by output rows over the threads, or `null` when it does not apply
 * (see {@linkcode compiled3x3}) or the kernels cannot run.
 *
 * @param backend the wasm backend holding the tensors
 * @param x the NHWC float32 input
 * @param filter the `[3, 3, C, 1]` float32 filter
 * @param info the convolution's geometry (depthwise)
 * @param bias one value per channel, or none
 * @param activation `"linear"`, `"relu"` or `"relu6"`
 * @returns the NHWC output, owned by the caller
 */
export function simdDepthwise3x3(
  backend: BackendWasm,
  x: Info,
  filter: Info,
  info: ConvInfo,
  bias?: Info,
  activation = "linear",
): Info | null {
  const k = kernels(backend);
  const act = (ACTIVATIONS as readonly string[]).indexOf(activation);
  if (k === null || act < 0 || !compiled3x3(info)) return null;
  const { B, H, W, C, OH, OW, sh, sw, pt, pl } = dims(info);
  expectShape("dw3x3", "x", x, [B, H, W, C]);
  expectShape("dw3x3", "the filter", filter, [3, 3, C, 1]);
  if (bias !== undefined) expectShape("dw3x3", "the bias", bias, [C]);
  const y = checkedOutput(backend, [B, OH, OW, C], "float32");
  const xo = offset(backend, x), wo = offset(backend, filter), yo = offset(backend, y);
  const bo = bias === undefined ? 0 : offset(backend, bias);
  k.parallel(
    "dw3x3",
    shares(k, B * OH).map((
      [r0, r1],
    ) => [xo, H, W, C, wo, OH, OW, sh, sw, pt, pl, yo, r0, r1, bo, act]),
  );
  return y;
}

/**
 * A depthwise convolution: the compiled 3×3 kernel when the kernels run on
 * more threads than XNNPACK (XNNPACK's depthwise runs on one), else the
 * shipped one, with {@linkcode shippedConv}'s padding fix.
 */
function depthwiseForward(name: "DepthwiseConv2dNative" | "FusedDepthwiseConv2D"): tf.KernelFunc {
  return unpacked<Record<string, Info>>((backend, inputs, attrs) => {
    const { x, filter, bias, preluActivationWeights } = inputs;
    if (
      simdThreadsBeyondXnnpack(backend) && preluActivationWeights === undefined &&
      x!.dtype === "float32" && filter!.dtype === "float32" &&
      (bias === undefined || bias.dtype === "float32") &&
      (attrs.dataFormat ?? "NHWC") === "NHWC" && x!.shape.length === 4 &&
      filter!.shape.length === 4
    ) {
      const info = convInfo(x!.shape, filter!.shape, attrs, true);
      const fast = simdDepthwise3x3(
        backend,
        x!,
        filter!,
        info,
        bias,
        String(attrs.activation ?? "linear"),
      );
      if (fast !== null) return fast;
    }
    return shippedConv(backend, name, inputs, attrs);
  });
}

/**
 * The input gradient of a 3×3 depthwise convolution (channel multiplier 1)
 * gathered on the compiled kernel (`dw3x3_grad_input`), split by rows of dx
 * over the threads, or `null` when it does not apply or the kernels cannot
 * run. Strided convolutions read only the taps that reach each input.
 */
export function simdDepthwise3x3BackpropInput(
  backend: BackendWasm,
  dy: Info,
  filter: Info,
  info: ConvInfo,
): Info | null {
  const k = kernels(backend);
  if (k === null || !compiled3x3(info)) return null;
  const { B, H, W, C, OH, OW, sh, sw, pt, pl } = dims(info);
  expectShape("dw3x3_grad_input", "dy", dy, [B, OH, OW, C]);
  expectShape("dw3x3_grad_input", "the filter", filter, [3, 3, C, 1]);
  const dx = checkedOutput(backend, [B, H, W, C], "float32");
  const dyo = offset(backend, dy), wo = offset(backend, filter), dxo = offset(backend, dx);
  k.parallel(
    "dw3x3_grad_input",
    shares(k, B * H).map(([r0, r1]) => [dyo, OH, OW, C, wo, H, W, sh, sw, pt, pl, dxo, r0, r1]),
  );
  return dx;
}

function depthwiseInfo(x: Info, attrs: Attrs): ConvInfo {
  return convInfo(x.shape, attrs.filterShape, attrs, true);
}

/**
 * The depthwise filter gradient (channel multiplier 1)
 * `dW[kh, kw, c] = Σ_{b, oh, ow} x[b, oh·sh + kh·dh − top, ow·sw + kw·dw − left, c] · dy[b, oh, ow, c]`,
 * or `null` when the kernels cannot run or the multiplier is not 1. Threads
 * sum ranges of dy's rows into buffers of their own, added at the end.
 *
 * @param backend the wasm backend holding the tensors
 * @param x the NHWC float32 input of the depthwise convolution
 * @param dy the NHWC float32 gradient of its output
 * @param info the convolution's geometry (depthwise)
 * @returns the `[kh, kw, C, 1]` filter gradient, owned by the caller
 */
export function simdDepthwiseConv2DBackpropFilter(
  backend: BackendWasm,
  x: Info,
  dy: Info,
  info: ConvInfo,
): Info | null {
  const k = kernels(backend);
  if (k === null || info.outChannels !== info.inChannels) return null;
  const { B, H, W, C, OH, OW, KH, KW, sh, sw, dh, dw: dwi, pt: top, pl: left } = dims(info);
  expectShape("dw_filter_grad", "x", x, info.inShape);
  expectShape("dw_filter_grad", "dy", dy, info.outShape);
  const dw = checkedOutput(backend, [KH, KW, C, 1], "float32");
  const scratch = new Scratch(k);
  try {
    const xo = offset(backend, x), dyo = offset(backend, dy);
    sumByRows(
      k,
      scratch,
      "dw_filter_grad",
      offset(backend, dw),
      KH * KW * C,
      B * OH,
      B * OH * OW * KH * KW * C,
      4,
      (
        r0,
        r1,
        buffer,
      ) => [xo, H, W, C, dyo, OH, OW, KH, KW, sh, sw, dh, dwi, top, left, buffer, r0, r1],
    );
  } finally {
    scratch.free();
  }
  return dw;
}

const depthwiseBackpropFilter = unpacked<{ x: Info; dy: Info }>((backend, { x, dy }, attrs) => {
  checkFloat("DepthwiseConv2dNativeBackpropFilter", x, dy);
  const filterShape = attrs.filterShape as [number, number, number, number];
  if (anyEmpty(x, dy) || tf.util.sizeFromShape(filterShape) === 0) {
    return zeros(backend, filterShape);
  }
  const info = depthwiseInfo(x, attrs);
  const fast = simdDepthwiseConv2DBackpropFilter(backend, x, dy, info);
  if (fast !== null) return fast;
  const kk = info.filterHeight * info.filterWidth;
  const C = info.inChannels, M = info.outChannels / C;
  const chunk = imagesPerChunk(info);
  let sum: Info | null = null;
  for (let b0 = 0; b0 < info.batchSize; b0 += chunk) {
    const nb = Math.min(chunk, info.batchSize - b0);
    const n = nb * info.outHeight * info.outWidth;
    const cols = checkedOutput(backend, [n, kk, C, 1], "float32");
    im2col(heap(backend, x), heap(backend, cols), info, b0, nb);
    const dyRows = batchRows(backend, dy, b0, nb, C * M);
    const dy4 = reshape(backend, dyRows, [n, 1, C, M]);
    const prod = run(backend, "Multiply", { a: cols, b: dy4 }, {});
    dispose(backend, cols, dyRows, dy4);
    const prod2 = reshape(backend, prod, [n, kk * C * M]);
    const ones = checkedOutput(backend, [1, n], "float32");
    heap(backend, ones).fill(1);
    const part = run(backend, "BatchMatMul", { a: ones, b: prod2 }, {
      transposeA: false,
      transposeB: false,
    });
    dispose(backend, prod, prod2, ones);
    sum = accumulate(backend, sum, part);
  }
  const dw = reshape(backend, sum!, filterShape);
  dispose(backend, sum!);
  return dw;
});

const depthwiseBackpropInput = unpacked<{ dy: Info; filter: Info }>(
  (backend, { dy, filter }, attrs) => {
    checkFloat("DepthwiseConv2dNativeBackpropInput", dy, filter);
    const inShape = attrs.inputShape as [number, number, number, number];
    if (anyEmpty(dy, filter) || tf.util.sizeFromShape(inShape) === 0) {
      return zeros(backend, inShape);
    }
    const info = convInfo(inShape, filter.shape, attrs, true);
    const { B, H, W, C, KH, KW, dh, dw, pt, pl } = dims(info);
    const M = info.outChannels / C;
    if (simdThreadsBeyondXnnpack(backend)) {
      const fast = simdDepthwise3x3BackpropInput(backend, dy, filter, info);
      if (fast !== null) return fast;
    }
    if (dh > 1 || dw > 1) return depthwiseBackpropInputDilated(backend, dy, filter, info);
    // dx[i] = Σₖ dyUp[i + padTop − k·d] w[k]: a stride-1 correlation of the
    // zero-upsampled dy, shifted by `top`/`left`, with the flipped filter.
    const top = (KH - 1) * dh - pt, left = (KW - 1) * dw - pl;
    const padded = upsamplePadded(backend, dy, info, top, left);
    const flipped = flippedFilter(backend, filter, false);
    const conv = run(backend, "DepthwiseConv2dNative", { x: padded, filter: flipped }, {
      strides: [1, 1],
      pad: "valid",
      dilations: [dh, dw],
      dimRoundingMode: undefined,
    });
    dispose(backend, padded, flipped);
    if (M === 1) return conv;
    const conv5 = reshape(backend, conv, [B, H, W, C, M]);
    const dx = run(backend, "Sum", { x: conv5 }, { axis: [4], keepDims: false });
    dispose(backend, conv, conv5);
    return dx;
  },
);

/**
 * The depthwise input gradient with a dilation, by direct scatter:
 * `dx[b, oh·sh + kh·dh − top, ow·sw + kw·dw − left, c] += dy[b, oh, ow, c·M + m] · w[kh, kw, c, m]`.
 * (The shipped depthwise kernel, on which the stride-1 correlation above
 * runs, gives other values than cpu's with a dilated, flipped filter.)
 */
function depthwiseBackpropInputDilated(
  backend: BackendWasm,
  dy: Info,
  filter: Info,
  info: ConvInfo,
): Info {
  const { B, H, W, C, OH, OW, KH, KW, sh, sw, dh, dw, pt: top, pl: left } = dims(info);
  const M = info.outChannels / C, CM = C * M;
  const dx = zeros(backend, [B, H, W, C]);
  const g = heap(backend, dy), w = heap(backend, filter), out = heap(backend, dx);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let kh = 0; kh < KH; kh++) {
        const ih = oh * sh + kh * dh - top;
        if (ih < 0 || ih >= H) continue;
        for (let ow = 0; ow < OW; ow++) {
          const src = ((b * OH + oh) * OW + ow) * CM;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw + kw * dw - left;
            if (iw < 0 || iw >= W) continue;
            const d = ((b * H + ih) * W + iw) * C, f = (kh * KW + kw) * CM;
            for (let c = 0; c < C; c++) {
              let sum = 0;
              for (let m = 0; m < M; m++) sum += g[src + c * M + m]! * w[f + c * M + m]!;
              out[d + c] = out[d + c]! + sum;
            }
          }
        }
      }
    }
  }
  return dx;
}

/**
 * The depthwise convolutions: `DepthwiseConv2dNative` and
 * `FusedDepthwiseConv2D` (replaced), `DepthwiseConv2dNativeBackpropFilter`
 * and `DepthwiseConv2dNativeBackpropInput` (added).
 */
export const DEPTHWISE_KERNELS: readonly WasmKernel[] = [
  {
    name: "DepthwiseConv2dNative",
    kind: "replaced",
    kernelFunc: depthwiseForward("DepthwiseConv2dNative"),
    validate: validateForward("DepthwiseConv2dNative", true),
    empty: emptyForward(true),
  },
  {
    name: "FusedDepthwiseConv2D",
    kind: "replaced",
    kernelFunc: depthwiseForward("FusedDepthwiseConv2D"),
    validate: validateForward("FusedDepthwiseConv2D", true),
    empty: emptyForward(true),
  },
  {
    name: "DepthwiseConv2dNativeBackpropFilter",
    kind: "added",
    kernelFunc: depthwiseBackpropFilter,
    validate: validateGrad("DepthwiseConv2dNativeBackpropFilter", true, "filter"),
  },
  {
    name: "DepthwiseConv2dNativeBackpropInput",
    kind: "added",
    kernelFunc: depthwiseBackpropInput,
    validate: validateGrad("DepthwiseConv2dNativeBackpropInput", true, "input"),
  },
];
