/**
 * The gradient kernels that `@tensorflow/tfjs-backend-wasm` does not ship
 * (`Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropInput`), and faster replacements for a few
 * kernels it ships that training leans on (`Slice`, `BatchMatMul` with a
 * transposed left operand).
 *
 * Each kernel is written on what the wasm backend does fast (XNNPACK matrix
 * products, depthwise convolutions, elementwise ops): the inputs are
 * rearranged in JavaScript directly on the wasm heap (one pass, contiguous
 * copies), and the arithmetic runs in the backend's own kernels.
 *
 * - Conv2D filter gradient: `dW = im2col(x)ᵀ · dy`, one matrix product per
 *   chunk of images (a 1×1 stride-1 convolution needs no im2col at all).
 * - Depthwise filter gradient: `dW[k, c, m] = Σₙ im2col(x)[n, k, c] · dy[n, c, m]`,
 *   a broadcast product reduced over `n` by a matrix product with ones.
 * - Depthwise input gradient: a stride-1 depthwise convolution of the
 *   zero-upsampled, padded `dy` with the spatially flipped filter.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import {
  checkedOutput,
  setSimdKernelsEnabled,
  simdAvgPoolGradTiled,
  simdAvgPoolTiled,
  simdBatchNorm,
  simdBiasAdd,
  simdClip,
  simdClipGrad,
  simdConv2D,
  simdConv2DBackpropFilter,
  simdConv2DBackpropInput,
  simdDepthwiseConv2DBackpropFilter,
  simdMatMul,
  simdMaxPool2x2,
  simdMaxPoolGrad2x2,
  simdMul,
  simdPadHW,
  simdRelu,
  simdReluGrad,
  simdSquare,
  simdSumLeading,
  simdThreadsBeyondXnnpack,
} from "./kernels/conv.ts";

type Info = tf.TensorInfo;
type Attrs = Record<string, unknown>;
type ConvInfo = tf.backend_util.Conv2DInfo;

/**
 * A convolution's geometry from its kernel's attributes (`strides`,
 * `dilations` (1 when absent), `pad`, `dimRoundingMode`).
 */
function convInfo(
  inShape: unknown,
  filterShape: unknown,
  attrs: Attrs,
  depthwise = false,
): ConvInfo {
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    (attrs.dilations ?? 1) as number | [number, number],
    attrs.pad as "same",
    attrs.dimRoundingMode as "floor" | undefined,
    depthwise,
  );
}

/** The most floats one im2col buffer may hold (64 MiB); larger jobs run in chunks of images. */
const MAX_COLS_FLOATS = 16 * 1024 * 1024;

/**
 * The fused ReLU gradient `dy · step(x)`, a kernel this module adds; the
 * ReLU's registered gradient runs it on wasm (see `installFusedGradient`).
 */
export const RELU_GRAD_KERNEL = "ZooReluGrad";

/**
 * The kernel this module adds for ClipByValue's gradient (ReLU6 in
 * MobileNets): one pass where tfjs runs five kernels (`GreaterEqual`,
 * `LessEqual`, `LogicalAnd`, `ZerosLike`, `Select`). Attributes
 * `clipValueMin`, `clipValueMax`.
 */
export const CLIP_GRAD_KERNEL = "ZooClipGrad";

/** The kernels this module adds to the wasm backend. */
export const WASM_GRAD_KERNEL_NAMES: readonly string[] = [
  "Conv2DBackpropFilter",
  "DepthwiseConv2dNativeBackpropFilter",
  "DepthwiseConv2dNativeBackpropInput",
  RELU_GRAD_KERNEL,
  CLIP_GRAD_KERNEL,
];

/** The shipped wasm kernels this module replaces with faster ones. */
export const WASM_FAST_KERNEL_NAMES: readonly string[] = [
  "Slice",
  "BatchMatMul",
  "Conv2DBackpropInput",
  "Conv2D",
  "Identity",
  "Mean",
  "Sum",
  "Tile",
  "MaxPoolGrad",
  "AvgPoolGrad",
  "Transpose",
  "Add",
  "Relu",
  "MaxPool",
  "AvgPool",
  "FusedBatchNorm",
  "ClipByValue",
  "PadV2",
  "FusedConv2D",
  "Sub",
  "Multiply",
  "Square",
  "Cast",
  "DepthwiseConv2dNative",
  "FusedDepthwiseConv2D",
];

function wasmKernel(name: string): tf.KernelFunc {
  const config = tf.getKernel(name, "wasm");
  if (config === undefined) {
    throw new Error(`Cannot build wasm gradient kernels: kernel "${name}" is not registered`);
  }
  return config.kernelFunc;
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
function shippedConv(
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

/** A shipped depthwise convolution, with {@linkcode shippedConv}'s padding fix. */
function depthwiseForward(name: "DepthwiseConv2dNative" | "FusedDepthwiseConv2D"): tf.KernelFunc {
  return (args) =>
    shippedConv(
      args.backend as BackendWasm,
      name,
      args.inputs as Record<string, Info>,
      (args.attrs ?? {}) as Attrs,
    );
}

/** Runs a shipped wasm kernel directly (no engine bookkeeping); the caller owns the result. */
function run(backend: BackendWasm, name: string, inputs: Record<string, Info>, attrs: Attrs): Info {
  const out = (original.get(name) ?? wasmKernel(name))({
    inputs: inputs as tf.NamedTensorInfoMap,
    backend,
    attrs: attrs as tf.NamedAttrMap,
  });
  return out as Info;
}

function reshape(backend: BackendWasm, x: Info, shape: number[]): Info {
  return run(backend, "Reshape", { x }, { shape });
}

function dispose(backend: BackendWasm, ...infos: Info[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

function heap(backend: BackendWasm, info: Info): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** A zero-filled float32 tensor: the gradient of anything with no elements to sum over. */
function zeros(backend: BackendWasm, shape: number[]): Info {
  const out = checkedOutput(backend, shape, "float32");
  heap(backend, out).fill(0);
  return out;
}

/** Whether any of the tensors has no elements. */
function anyEmpty(...infos: Info[]): boolean {
  return infos.some((t) => tf.util.sizeFromShape(t.shape) === 0);
}

function checkFloat(kernel: string, ...infos: Info[]): void {
  for (const info of infos) {
    if (info.dtype !== "float32") {
      throw new TypeError(`${kernel} on wasm needs float32 tensors: got "${info.dtype}"`);
    }
  }
}

function checkNhwc(kernel: string, dataFormat: unknown): void {
  if (dataFormat !== undefined && dataFormat !== "NHWC") {
    throw new RangeError(`${kernel} on wasm supports data format "NHWC" only: got "${dataFormat}"`);
  }
}

/**
 * Writes the im2col rows of images `[b0, b0 + nb)` of `x` into `cols`:
 * row `(b, oh, ow)` holds the `filterHeight × filterWidth × inChannels`
 * window the convolution reads for that output position (zeros where the
 * window hangs over the padding).
 */
function im2col(x: Float32Array, cols: Float32Array, info: ConvInfo, b0: number, nb: number): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info;
  const pt = info.padInfo.top, pl = info.padInfo.left;
  const rowLen = KH * KW * C;
  let row = 0;
  for (let b = b0; b < b0 + nb; b++) {
    const xb = b * H * W * C;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, row += rowLen) {
        const iw0 = ow * sw - pl;
        // The kw range whose input column lies inside the image.
        const kwLo = iw0 >= 0 ? 0 : Math.min(KW, Math.ceil(-iw0 / dw));
        const kwHi = Math.max(kwLo, Math.min(KW, Math.floor((W - 1 - iw0) / dw) + 1));
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh + kh * dh - pt;
          const dst = row + kh * KW * C;
          if (ih < 0 || ih >= H || kwLo >= kwHi) {
            cols.fill(0, dst, dst + KW * C);
            continue;
          }
          if (kwLo > 0) cols.fill(0, dst, dst + kwLo * C);
          if (kwHi < KW) cols.fill(0, dst + kwHi * C, dst + KW * C);
          const src = xb + (ih * W + iw0) * C;
          if (dw === 1) {
            const s = src + kwLo * C, n = (kwHi - kwLo) * C, d = dst + kwLo * C;
            if (n >= 32) cols.set(x.subarray(s, s + n), d);
            else for (let i = 0; i < n; i++) cols[d + i] = x[s + i]!;
          } else {
            for (let kw = kwLo; kw < kwHi; kw++) {
              const s = src + kw * dw * C, d = dst + kw * C;
              for (let i = 0; i < C; i++) cols[d + i] = x[s + i]!;
            }
          }
        }
      }
    }
  }
}

/**
 * Writes the transposed im2col matrix of images `[b0, b0 + nb)` of `x` into
 * `colsT`: row `(kh, kw, c)` holds, for every output position `(b, oh, ow)`
 * in order, the input value the convolution multiplies by filter tap
 * `(kh, kw, c)` there (zero over the padding). Writing this layout directly
 * is what makes the filter gradient one product `colsT · dy` with the big
 * operand on the left: the wasm `Transpose` of a tall matrix, or a product
 * that packs the big operand, costs many times the product itself.
 */
function im2colT(
  x: Float32Array,
  colsT: Float32Array,
  info: ConvInfo,
  b0: number,
  nb: number,
): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info;
  const pt = info.padInfo.top, pl = info.padInfo.left;
  const P = nb * OH * OW, step = sw * C;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      // The ow range whose input column ow·sw + kw·dw − pl lies inside the image.
      const off = kw * dw - pl;
      const owLo = Math.min(OW, Math.max(0, Math.ceil(-off / sw)));
      const owHi = Math.max(owLo, Math.min(OW, Math.floor((W - 1 - off) / sw) + 1));
      // One input row at a time, all channels: the row stays in cache while
      // each channel's values are gathered into its own output row.
      const rowBase = (kh * KW + kw) * C * P;
      for (let b = b0; b < b0 + nb; b++) {
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * sh + kh * dh - pt;
          const p0 = rowBase + ((b - b0) * OH + oh) * OW;
          const inside = ih >= 0 && ih < H;
          const s0 = ((b * H + ih) * W + owLo * sw + off) * C;
          for (let c = 0; c < C; c++) {
            const d = p0 + c * P;
            if (!inside) {
              for (let ow = 0; ow < OW; ow++) colsT[d + ow] = 0;
              continue;
            }
            for (let ow = 0; ow < owLo; ow++) colsT[d + ow] = 0;
            for (let ow = owHi; ow < OW; ow++) colsT[d + ow] = 0;
            let s = s0 + c;
            for (let ow = owLo; ow < owHi; ow++, s += step) colsT[d + ow] = x[s]!;
          }
        }
      }
    }
  }
}

/** How many images one im2col chunk holds. */
function imagesPerChunk(info: ConvInfo): number {
  const perImage = info.outHeight * info.outWidth * info.filterHeight * info.filterWidth *
    info.inChannels;
  return Math.max(1, Math.min(info.batchSize, Math.floor(MAX_COLS_FLOATS / Math.max(1, perImage))));
}

/** A copy of images `[b0, b0 + nb)` of an NHWC tensor, as `[nb * rest]` rows of `cols` floats. */
function batchRows(backend: BackendWasm, x: Info, b0: number, nb: number, cols: number): Info {
  const batch = x.shape[0]!;
  if (b0 === 0 && nb === batch) return reshape(backend, x, [-1, cols]);
  const perImage = tf.util.sizeFromShape(x.shape) / batch;
  const out = checkedOutput(backend, [(nb * perImage) / cols, cols], "float32");
  heap(backend, out).set(heap(backend, x).subarray(b0 * perImage, (b0 + nb) * perImage));
  return out;
}

/** Adds `b` into `a` on the heap (both small); disposes `b`. */
function accumulate(backend: BackendWasm, a: Info | null, b: Info): Info {
  if (a === null) return b;
  const av = heap(backend, a), bv = heap(backend, b);
  for (let i = 0; i < av.length; i++) av[i] = av[i]! + bv[i]!;
  dispose(backend, b);
  return a;
}

function conv2DBackpropFilter(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const attrs = (args.attrs ?? {}) as Attrs;
  checkFloat("Conv2DBackpropFilter", x, dy);
  checkNhwc("Conv2DBackpropFilter", attrs.dataFormat);
  const filterShape = attrs.filterShape as [number, number, number, number];
  if (anyEmpty(x, dy) || tf.util.sizeFromShape(filterShape) === 0) {
    return zeros(backend, filterShape);
  }
  const info = convInfo(x.shape, filterShape, attrs);
  // A 1×1 filter gradient with many output channels is one XNNPACK matrix
  // product (no im2col), which beats the compiled taps kernel there.
  const pointwiseWide = info.filterHeight * info.filterWidth === 1 && info.outChannels > 64;
  const fast = pointwiseWide ? null : simdConv2DBackpropFilter(backend, x, dy, info);
  if (fast !== null) return fast;
  const kkc = info.filterHeight * info.filterWidth * info.inChannels;
  const chunk = imagesPerChunk(info);
  let sum: Info | null = null;
  for (let b0 = 0; b0 < info.batchSize; b0 += chunk) {
    const nb = Math.min(chunk, info.batchSize - b0);
    const colsT = checkedOutput(backend, [kkc, nb * info.outHeight * info.outWidth], "float32");
    im2colT(heap(backend, x), heap(backend, colsT), info, b0, nb);
    const dyRows = batchRows(backend, dy, b0, nb, info.outChannels);
    const part = run(backend, "BatchMatMul", { a: colsT, b: dyRows }, {
      transposeA: false,
      transposeB: false,
    });
    dispose(backend, colsT, dyRows);
    sum = accumulate(backend, sum, part);
  }
  const dw = reshape(backend, sum!, filterShape);
  dispose(backend, sum!);
  return dw;
}

function depthwiseInfo(x: Info, attrs: Attrs): ConvInfo {
  return convInfo(x.shape, attrs.filterShape, attrs, true);
}

function depthwiseBackpropFilter(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const attrs = (args.attrs ?? {}) as Attrs;
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
}

function depthwiseBackpropInput(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { dy, filter } = args.inputs as { dy: Info; filter: Info };
  const attrs = (args.attrs ?? {}) as Attrs;
  checkFloat("DepthwiseConv2dNativeBackpropInput", dy, filter);
  const inShape = attrs.inputShape as [number, number, number, number];
  if (anyEmpty(dy, filter) || tf.util.sizeFromShape(inShape) === 0) {
    return zeros(backend, inShape);
  }
  const info = convInfo(inShape, filter.shape, attrs, true);
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C } = info;
  const { filterHeight: KH, filterWidth: KW } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info;
  const M = info.outChannels / C;
  if (dh > 1 || dw > 1) return depthwiseBackpropInputDilated(backend, dy, filter, info);
  // dx[i] = Σₖ dyUp[i + padTop − k·d] w[k]: a stride-1 correlation of the
  // zero-upsampled dy, shifted by `top`/`left`, with the flipped filter.
  const top = (KH - 1) * dh - info.padInfo.top, left = (KW - 1) * dw - info.padInfo.left;
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
}

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
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } =
    info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info;
  const M = info.outChannels / C, CM = C * M;
  const top = info.padInfo.top, left = info.padInfo.left;
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
 * `dy` zero-upsampled by the stride and placed at offset (`top`, `left`) in a
 * zero buffer of `inHeight + (filterHeight − 1)·dilation` rows (and as many
 * columns): a stride-1 "valid" correlation of it with the flipped filter is
 * the input gradient.
 */
function upsamplePadded(
  backend: BackendWasm,
  dy: Info,
  info: ConvInfo,
  top: number,
  left: number,
): Info {
  const { batchSize: B, inHeight: H, inWidth: W, outHeight: OH, outWidth: OW } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const CM = dy.shape[3]!;
  const PH = H + (KH - 1) * info.dilationHeight, PW = W + (KW - 1) * info.dilationWidth;
  if (sh === 1 && sw === 1 && top === 0 && left === 0 && PH === OH && PW === OW) {
    return reshape(backend, dy, [B, PH, PW, CM]);
  }
  const padded = checkedOutput(backend, [B, PH, PW, CM], "float32");
  const src = heap(backend, dy), dst = heap(backend, padded);
  dst.fill(0);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      const ph = top + oh * sh;
      if (ph < 0 || ph >= PH) continue;
      for (let ow = 0; ow < OW; ow++) {
        const pw = left + ow * sw;
        if (pw < 0 || pw >= PW) continue;
        const s = ((b * OH + oh) * OW + ow) * CM, d = ((b * PH + ph) * PW + pw) * CM;
        if (CM >= 32) dst.set(src.subarray(s, s + CM), d);
        else for (let i = 0; i < CM; i++) dst[d + i] = src[s + i]!;
      }
    }
  }
  return padded;
}

/**
 * The filter flipped in both spatial axes. For a depthwise filter
 * `[kh, kw, c, m]` the result is `[kh, kw, c·m, 1]`; for a conv filter
 * `[kh, kw, ci, co]` (`swapChannels`) it is `[kh, kw, co, ci]`.
 */
function flippedFilter(backend: BackendWasm, filter: Info, swapChannels: boolean): Info {
  const [KH, KW, C, M] = filter.shape as [number, number, number, number];
  const out = checkedOutput(backend, swapChannels ? [KH, KW, M, C] : [KH, KW, C * M, 1], "float32");
  const w = heap(backend, filter), f = heap(backend, out);
  const CM = C * M;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const s = ((KH - 1 - kh) * KW + (KW - 1 - kw)) * CM, d = (kh * KW + kw) * CM;
      if (!swapChannels) {
        f.set(w.subarray(s, s + CM), d);
        continue;
      }
      for (let ci = 0; ci < C; ci++) {
        for (let co = 0; co < M; co++) f[d + co * C + ci] = w[s + ci * M + co]!;
      }
    }
  }
  return out;
}

/**
 * The input gradient as `col2im(dy · Wᵀ)`: one matrix product per chunk of
 * images gives every window's contribution, scattered back onto the input
 * (the heap view is taken after the product, which may grow the heap).
 */
function conv2DBackpropInputCol2im(
  backend: BackendWasm,
  dy: Info,
  filter: Info,
  info: ConvInfo,
): Info {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } =
    info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top, pl = info.padInfo.left;
  const kkc = KH * KW * C, co = info.outChannels;
  const w2 = reshape(backend, filter, [kkc, co]);
  const wT = transposeLastTwo(backend, w2);
  dispose(backend, w2);
  const dx = checkedOutput(backend, [B, H, W, C], "float32");
  heap(backend, dx).fill(0);
  const chunk = imagesPerChunk(info);
  for (let b0 = 0; b0 < B; b0 += chunk) {
    const nb = Math.min(chunk, B - b0);
    const dyRows = batchRows(backend, dy, b0, nb, co);
    const cols = run(backend, "BatchMatMul", { a: dyRows, b: wT }, {
      transposeA: false,
      transposeB: false,
    });
    dispose(backend, dyRows);
    const src = heap(backend, cols);
    const dst = heap(backend, dx);
    let row = 0;
    for (let b = b0; b < b0 + nb; b++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++, row += kkc) {
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * sh + kh - pt;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < KW; kw++) {
              const iw = ow * sw + kw - pl;
              if (iw < 0 || iw >= W) continue;
              const d = ((b * H + ih) * W + iw) * C, s = row + (kh * KW + kw) * C;
              for (let c = 0; c < C; c++) dst[d + c] = dst[d + c]! + src[s + c]!;
            }
          }
        }
      }
    }
    dispose(backend, cols);
  }
  dispose(backend, wT);
  return dx;
}

/**
 * The wasm `Conv2DBackpropInput` is a scalar loop; this one is one XNNPACK
 * convolution of the zero-upsampled, padded `dy` with the flipped,
 * channel-swapped filter.
 */
function conv2DBackpropInput(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { dy, filter } = args.inputs as { dy: Info; filter: Info };
  const attrs = (args.attrs ?? {}) as Attrs;
  if (
    dy.dtype !== "float32" || filter.dtype !== "float32" || (attrs.dataFormat ?? "NHWC") !== "NHWC"
  ) {
    return run(backend, "Conv2DBackpropInput", { dy, filter }, attrs);
  }
  const inShape = attrs.inputShape as number[];
  if (anyEmpty(dy, filter) || tf.util.sizeFromShape(inShape) === 0) return zeros(backend, inShape);
  const info = convInfo(attrs.inputShape, filter.shape, attrs);
  const strided = info.strideHeight > 1 || info.strideWidth > 1;
  // A 1×1 stride-1 input gradient is one XNNPACK convolution (a matrix
  // product), which beats the compiled scatter kernel there.
  const pointwise = info.filterHeight * info.filterWidth === 1 && !strided;
  const fast = pointwise ? null : simdConv2DBackpropInput(backend, dy, filter, info);
  if (fast !== null) return fast;
  // With a stride, the convolution of the upsampled dy multiplies mostly
  // zeros (3/4 of them at stride 2); col2im does only the real products.
  if (strided && info.filterHeight * info.filterWidth > 1) {
    return conv2DBackpropInputCol2im(backend, dy, filter, info);
  }
  const top = info.filterHeight - 1 - info.padInfo.top;
  const left = info.filterWidth - 1 - info.padInfo.left;
  const padded = upsamplePadded(backend, dy, info, top, left);
  const flipped = flippedFilter(backend, filter, true);
  const dx = run(backend, "Conv2D", { x: padded, filter: flipped }, {
    strides: [1, 1],
    pad: "valid",
    dataFormat: "NHWC",
    dilations: [1, 1],
    dimRoundingMode: undefined,
  });
  dispose(backend, padded, flipped);
  return dx;
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
function conv2D(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { x, filter } = args.inputs as { x: Info; filter: Info };
  const attrs = (args.attrs ?? {}) as Attrs;
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
}

/**
 * The fused convolution (bias and activation after it; MobileNets' 1×1
 * convolutions): on the SIMD pool with the bias and a linear, relu or relu6
 * activation applied as each tile is stored, when the pool has more threads
 * than XNNPACK; XNNPACK's otherwise (where it runs on XNNPACK's own pool).
 */
function fusedConv2D(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { x, filter, bias, preluActivationWeights } = args.inputs as {
    x: Info;
    filter: Info;
    bias?: Info;
    preluActivationWeights?: Info;
  };
  const attrs = (args.attrs ?? {}) as Attrs;
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
  return shippedConv(backend, "FusedConv2D", args.inputs as Record<string, Info>, attrs);
}

/** Shares the input's buffer (as the cpu backend does) instead of copying it. */
function identity(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): Info {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: Info };
  if (x.dtype === "string") return run(backend, "Identity", { x }, {});
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * Reductions over the leading axes (`[0, 1, 2]` of NHWC: BatchNormalization's
 * statistics and their gradients) in one pass over the heap, where the wasm
 * kernels transpose the whole tensor first. (A matrix product with ones was
 * tried: XNNPACK packs the big operand into fresh memory, and growing the
 * wasm heap for it costs more than the sum.)
 */
function leadingReduction(name: "Mean" | "Sum") {
  return (
    args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
  ): Info => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: Info };
    const attrs = (args.attrs ?? {}) as Attrs;
    const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape).sort((a, b) =>
      a - b
    );
    if (x.dtype === "float32" && anyEmpty(x)) {
      // Over an empty tensor the shipped kernels return uninitialized memory;
      // a sum of nothing is 0, and so is cpu's mean of nothing.
      const [outShape] = tf.backend_util.computeOutAndReduceShapes(x.shape, axes);
      const shape = attrs.keepDims
        ? tf.backend_util.expandShapeToKeepDim(outShape, axes)
        : outShape;
      return zeros(backend, shape);
    }
    const k = axes.length;
    const leading = k > 0 && k < x.shape.length && axes.every((a, i) => a === i);
    const rows = tf.util.sizeFromShape(x.shape.slice(0, k));
    if (!leading || x.dtype !== "float32" || rows < 2) return run(backend, name, { x }, attrs);
    const cols = tf.util.sizeFromShape(x.shape.slice(k));
    const shape = attrs.keepDims ? x.shape.map((d, i) => (i < k ? 1 : d)) : x.shape.slice(k);
    const fast = simdSumLeading(backend, x, rows, shape, name === "Mean" ? 1 / rows : 1);
    if (fast !== null) return fast;
    const out = checkedOutput(backend, shape, "float32");
    const src = heap(backend, x), acc = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let c = 0; c < cols; c++) acc[c]! += src[o + c]!;
    }
    const scale = name === "Mean" ? 1 / rows : 1;
    const dst = heap(backend, out);
    for (let c = 0; c < cols; c++) dst[c] = acc[c]! * scale;
    return out;
  };
}

/**
 * The wasm `Tile` computes an index per element; this one copies rows and
 * doubles blocks, heap to heap.
 */
function tile(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: Info };
  const attrs = (args.attrs ?? {}) as Attrs;
  const reps = attrs.reps as number[];
  if (x.dtype === "string" || reps.length !== x.shape.length) {
    return run(backend, "Tile", { x }, attrs);
  }
  const outShape = x.shape.map((d, i) => d * reps[i]!);
  const out = checkedOutput(backend, outShape, x.dtype);
  if (tf.util.sizeFromShape(outShape) === 0) return out;
  const src = backend.typedArrayFromHeap(x), dst = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  const srcStrides = [...tf.util.computeStrides(x.shape), 1];
  const dstStrides = [...tf.util.computeStrides(outShape), 1];
  // Along axis a, output index j·d + i holds input index i: fill the first
  // repetition recursively, then copy it reps[a] − 1 times.
  const fill = (a: number, s: number, d: number): void => {
    const n = x.shape[a]!;
    if (a === rank - 1) {
      dst.set(src.subarray(s, s + n), d);
    } else {
      for (let i = 0; i < n; i++) fill(a + 1, s + i * srcStrides[a]!, d + i * dstStrides[a]!);
    }
    const len = n * dstStrides[a]!;
    for (let j = 1; j < reps[a]!; j++) dst.copyWithin(d + j * len, d, d + len);
  };
  fill(0, 0, 0);
  return out;
}

/**
 * The wasm `Slice` copies the whole input out of the heap on every call
 * (`readSync`); this one copies only the slice, row by row, heap to heap.
 */
function slice(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: Info };
  const attrs = (args.attrs ?? {}) as Attrs;
  if (x.dtype === "string" || x.dtype === "complex64") return run(backend, "Slice", { x }, attrs);
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as tf.Tensor,
    attrs.begin as number[],
    attrs.size as number[],
  ) as [number[], number[]];
  const out = checkedOutput(backend, size, x.dtype);
  if (tf.util.sizeFromShape(size) === 0) return out;
  const src = backend.typedArrayFromHeap(x), dst = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  // Merge the trailing axes that are taken whole into one contiguous run.
  let inner = 1, axis = rank - 1;
  while (axis >= 0 && begin[axis] === 0 && size[axis] === x.shape[axis]) inner *= size[axis--]!;
  if (axis < 0) {
    dst.set(src.subarray(0, inner));
    return out;
  }
  const run1 = size[axis]! * inner;
  const strides = tf.util.computeStrides(x.shape);
  const outer = size.slice(0, axis);
  const count = tf.util.sizeFromShape(outer);
  const idx = new Array<number>(axis).fill(0);
  for (let r = 0; r < count; r++) {
    let s = begin[axis]! * inner;
    for (let a = 0; a < axis; a++) s += (begin[a]! + idx[a]!) * strides[a]!;
    const d = r * run1;
    if (run1 >= 32) dst.set(src.subarray(s, s + run1), d);
    else for (let i = 0; i < run1; i++) dst[d + i] = src[s + i]!;
    for (let a = axis - 1; a >= 0; a--) {
      if (++idx[a]! < outer[a]!) break;
      idx[a] = 0;
    }
  }
  return out;
}

/**
 * Whether `perm` keeps the leading axes and swaps the last two: a batch of
 * matrix transposes.
 */
function swapsLastTwo(perm: number[]): boolean {
  const r = perm.length;
  return r >= 2 && perm[r - 2] === r - 1 && perm[r - 1] === r - 2 &&
    perm.slice(0, r - 2).every((p, i) => p === i);
}

/** Transposes the last two axes of `x` into a new tensor (cache-blocked, heap to heap). */
function transposeLastTwo(backend: BackendWasm, x: Info): Info {
  const r = x.shape.length;
  const rows = x.shape[r - 2]!, cols = x.shape[r - 1]!;
  const shape = [...x.shape.slice(0, r - 2), cols, rows];
  const out = checkedOutput(backend, shape, x.dtype);
  const src = backend.typedArrayFromHeap(x), dst = backend.typedArrayFromHeap(out);
  const batch = tf.util.sizeFromShape(x.shape.slice(0, r - 2)), size = rows * cols, B = 32;
  for (let n = 0; n < batch; n++) {
    const o = n * size;
    for (let i0 = 0; i0 < rows; i0 += B) {
      const i1 = Math.min(rows, i0 + B);
      for (let j0 = 0; j0 < cols; j0 += B) {
        const j1 = Math.min(cols, j0 + B);
        for (let i = i0; i < i1; i++) {
          const s = o + i * cols;
          for (let j = j0; j < j1; j++) dst[o + j * rows + i] = src[s + j]!;
        }
      }
    }
  }
  return out;
}

/**
 * The wasm `Transpose` takes about 20 ns an element; a batch of matrix
 * transposes (what matrix-product gradients ask for) is done here in a few.
 */
function transpose(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: Info };
  const attrs = (args.attrs ?? {}) as Attrs;
  const perm = attrs.perm as number[];
  if (x.dtype === "string" || x.dtype === "complex64" || !swapsLastTwo(perm)) {
    return run(backend, "Transpose", { x }, attrs);
  }
  return transposeLastTwo(backend, x);
}

/**
 * The wasm `BatchMatMul` is many times slower when `transposeA` or
 * `transposeB` is set (the common cases in gradients: `xᵀ · dy` and
 * `dy · Wᵀ`); transposing explicitly first is not.
 */
function batchMatMul(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { a, b } = args.inputs as { a: Info; b: Info };
  const attrs = (args.attrs ?? {}) as Attrs;
  if (anyEmpty(a, b) && a.shape.length >= 2 && b.shape.length >= 2) {
    // An empty product (the shipped kernel leaves its output uninitialized
    // when the inner size is 0): zeros, once the shapes are known to agree.
    const tA0 = attrs.transposeA === true, tB0 = attrs.transposeB === true;
    const [ar, ac] = a.shape.slice(-2) as [number, number];
    const [br, bc] = b.shape.slice(-2) as [number, number];
    if ((tA0 ? ar : ac) === (tB0 ? bc : br)) {
      const outer = tf.broadcast_util.assertAndGetBroadcastShape(
        a.shape.slice(0, -2),
        b.shape.slice(0, -2),
      );
      return zeros(backend, [...outer, tA0 ? ac : ar, tB0 ? br : bc]);
    }
  }
  const fast = simdMatMul(backend, a, b, attrs.transposeA === true, attrs.transposeB === true);
  if (fast !== null) return fast;
  const tA = attrs.transposeA === true && a.dtype === "float32";
  const tB = attrs.transposeB === true && b.dtype === "float32";
  if (!tA && !tB) return run(backend, "BatchMatMul", { a, b }, attrs);
  const aT = tA ? transposeLastTwo(backend, a) : a;
  const bT = tB ? transposeLastTwo(backend, b) : b;
  const out = run(backend, "BatchMatMul", { a: aT, b: bT }, {
    ...attrs,
    transposeA: attrs.transposeA === true && !tA,
    transposeB: attrs.transposeB === true && !tB,
  });
  if (tA) dispose(backend, aT);
  if (tB) dispose(backend, bT);
  return out;
}

/** The pooling geometry a pooling kernel's attributes give an NHWC input of this shape. */
function poolInfo(shape: readonly number[], attrs: Attrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computePool2DInfo(
    shape as [number, number, number, number],
    attrs.filterSize as number | [number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as "same",
    attrs.dimRoundingMode as "floor" | undefined,
  );
}

/**
 * Whether the windows tile the input: stride = window, no padding, and
 * ⌊in / window⌋ outputs along each axis (a rounding mode can ask for one
 * more, which would hang over the edge).
 */
function windowsTile(info: tf.backend_util.Conv2DInfo): boolean {
  const p = info.padInfo, KH = info.filterHeight, KW = info.filterWidth;
  return info.strideHeight === KH && info.strideWidth === KW && p.top === 0 && p.left === 0 &&
    p.bottom === 0 && p.right === 0 && info.outHeight === Math.floor(info.inHeight / KH) &&
    info.outWidth === Math.floor(info.inWidth / KW);
}

/**
 * `MaxPoolGrad` for the common 2×2, stride-2, unpadded pooling: the windows
 * do not overlap, so each `dy` goes to its window's first maximum with no
 * bookkeeping across windows.
 */
function maxPoolGrad2x2(
  x: Float32Array,
  g: Float32Array,
  out: Float32Array,
  B: number,
  H: number,
  W: number,
  C: number,
  OH: number,
  OW: number,
): void {
  const rowStride = W * C;
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const i00 = ((b * H + 2 * oh) * W + 2 * ow) * C, i01 = i00 + C;
        const i10 = i00 + rowStride, i11 = i10 + C;
        const o = ((b * OH + oh) * OW + ow) * C;
        for (let c = 0; c < C; c++) {
          // The first value above all before it (and above -Infinity) in
          // row-major window order, as the cpu backend picks it: a window of
          // NaN or -Infinity only passes no gradient.
          let at = -1, best = -Infinity, v = x[i00 + c]!;
          if (v > best) {
            best = v;
            at = i00 + c;
          }
          v = x[i01 + c]!;
          if (v > best) {
            best = v;
            at = i01 + c;
          }
          v = x[i10 + c]!;
          if (v > best) {
            best = v;
            at = i10 + c;
          }
          if (x[i11 + c]! > best) at = i11 + c;
          if (at >= 0) out[at] = g[o + c]!;
        }
      }
    }
  }
}

/**
 * The wasm `MaxPoolGrad` is a scalar loop over every input position and
 * window tap; this one finds each window's maximum once, for all channels
 * in a row, and scatters `dy` to it (the first maximum, as the cpu backend
 * picks it).
 */
function maxPoolGrad(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { dy, input, output } = args.inputs as { dy: Info; input: Info; output: Info };
  const attrs = (args.attrs ?? {}) as Attrs;
  if (input.dtype !== "float32" || dy.dtype !== "float32") {
    return run(backend, "MaxPoolGrad", { dy, input, output }, attrs);
  }
  const info = poolInfo(input.shape, attrs);
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } =
    info;
  const { effectiveFilterHeight: KH, effectiveFilterWidth: KW } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top, pl = info.padInfo.left;
  const twoByTwo = KH === 2 && KW === 2 && windowsTile(info);
  const fast = twoByTwo ? simdMaxPoolGrad2x2(backend, dy, input) : null;
  if (fast !== null) return fast;
  const dx = checkedOutput(backend, input.shape, "float32");
  const x = heap(backend, input), g = heap(backend, dy), out = heap(backend, dx);
  out.fill(0);
  if (twoByTwo) {
    maxPoolGrad2x2(x, g, out, B, H, W, C, OH, OW);
    return dx;
  }
  const best = new Float32Array(C), at = new Int32Array(C);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      const r0 = oh * sh - pt, rLo = Math.max(0, r0), rHi = Math.min(H, r0 + KH);
      for (let ow = 0; ow < OW; ow++) {
        const c0 = ow * sw - pl, cLo = Math.max(0, c0), cHi = Math.min(W, c0 + KW);
        for (let c = 0; c < C; c++) {
          best[c] = -Infinity;
          at[c] = -1;
        }
        for (let r = rLo; r < rHi; r++) {
          for (let col = cLo; col < cHi; col++) {
            const base = ((b * H + r) * W + col) * C;
            for (let c = 0; c < C; c++) {
              const v = x[base + c]!;
              if (v > best[c]!) {
                best[c] = v;
                at[c] = base + c;
              }
            }
          }
        }
        const o = ((b * OH + oh) * OW + ow) * C;
        for (let c = 0; c < C; c++) {
          const i = at[c]!;
          if (i >= 0) out[i] = out[i]! + g[o + c]!;
        }
      }
    }
  }
  return dx;
}

/**
 * The wasm `AvgPoolGrad` is a scalar loop like its `MaxPoolGrad`; this one
 * spreads each `dy` over its window, for all channels in a row. Windows that
 * reach into padding keep the shipped kernel (and its divisor).
 */
function avgPoolGrad(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { dy, input } = args.inputs as { dy: Info; input: Info };
  const attrs = (args.attrs ?? {}) as Attrs;
  const info = poolInfo(input.shape, attrs);
  const p = info.padInfo;
  if (dy.dtype !== "float32" || p.top !== 0 || p.left !== 0 || p.bottom !== 0 || p.right !== 0) {
    return run(backend, "AvgPoolGrad", { dy, input }, attrs);
  }
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } =
    info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  if (windowsTile(info)) {
    const fast = simdAvgPoolGradTiled(backend, dy, [B, H, W, C], KH, KW);
    if (fast !== null) return fast;
  }
  const dx = checkedOutput(backend, input.shape, "float32");
  const g = heap(backend, dy), out = heap(backend, dx);
  out.fill(0);
  const scale = 1 / (KH * KW), share = new Float32Array(C);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const o = ((b * OH + oh) * OW + ow) * C;
        for (let c = 0; c < C; c++) share[c] = g[o + c]! * scale;
        for (let r = oh * sh; r < oh * sh + KH; r++) {
          for (let col = ow * sw; col < ow * sw + KW; col++) {
            const base = ((b * H + r) * W + col) * C;
            for (let c = 0; c < C; c++) out[base + c] = out[base + c]! + share[c]!;
          }
        }
      }
    }
  }
  return dx;
}

/** Whether `v` is a vector along the last axis of `x` (a bias): all its other axes are 1. */
function isTrailingVector(x: Info, v: Info): boolean {
  const c = x.shape[x.shape.length - 1];
  const n = v.shape.length;
  return c !== undefined && n >= 1 && n <= x.shape.length && v.shape[n - 1] === c &&
    v.shape.slice(0, n - 1).every((d) => d === 1);
}

/**
 * Adding a bias (`[..., C] + [C]`) is a broadcast the wasm `Add` handles
 * element by element through index arithmetic, and the threaded build hands
 * it to the thread pool; on the heap in JS it is one pass.
 */
function add(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { a, b } = args.inputs as { a: Info; b: Info };
  const float = a.dtype === "float32" && b.dtype === "float32";
  const [x, v] = float && isTrailingVector(a, b)
    ? [a, b]
    : float && isTrailingVector(b, a)
    ? [b, a]
    : [null, null];
  if (
    x === null || v === null || tf.util.sizeFromShape(v.shape) === tf.util.sizeFromShape(x.shape)
  ) {
    return run(backend, "Add", { a, b }, {});
  }
  const fast = simdBiasAdd(backend, x, v);
  if (fast !== null) return fast;
  const out = checkedOutput(backend, x.shape, "float32");
  const src = heap(backend, x), bias = heap(backend, v), dst = heap(backend, out);
  const C = bias.length;
  for (let o = 0; o < src.length; o += C) {
    for (let c = 0; c < C; c++) dst[o + c] = src[o + c]! + bias[c]!;
  }
  return out;
}

/**
 * Subtracting a vector along the last axis (`[..., C] − [C]`: batch
 * normalization's `x − mean`) as {@linkcode add} adds one, in one pass on the
 * compiled kernels; anything else on the shipped `Sub`.
 */
const sub = fastOr(
  "Sub",
  (backend, { a, b }) =>
    a!.dtype === "float32" && b!.dtype === "float32" && isTrailingVector(a!, b!) &&
      tf.util.sizeFromShape(b!.shape) !== tf.util.sizeFromShape(a!.shape)
      ? simdBiasAdd(backend, a!, b!, "sub")
      : null,
);

/**
 * Multiplying two tensors of one shape, or by a vector along the last axis or
 * by a single value (batch normalization's gradient scales whole activations
 * so), in one pass on the compiled kernels; anything else on the shipped
 * `Multiply`, whose broadcast is a scalar loop.
 */
const multiply = fastOr("Multiply", (backend, { a, b }) => {
  const size = (t: Info) => tf.util.sizeFromShape(t.shape);
  const scales = (x: Info, v: Info) =>
    size(v) < size(x) && (isTrailingVector(x, v) ||
      (size(v) === 1 && v.shape.length <= x.shape.length));
  if (a!.dtype !== "float32" || b!.dtype !== "float32") return null;
  // Same shapes (batch normalization's gradient multiplies whole
  // activations): one pass on the pool, where XNNPACK's runs on one thread.
  if (tf.util.arraysEqual(a!.shape, b!.shape)) return simdMul(backend, a!, b!);
  const [x, v] = scales(a!, b!) ? [a!, b!] : scales(b!, a!) ? [b!, a!] : [null, null];
  return x === null || v === null ? null : simdBiasAdd(backend, x, v, "mul");
});

/** `Square` on the compiled kernels for float32 (the shipped one is a scalar loop). */
const square = unaryKernel("Square", simdSquare);

/**
 * A cast to the tensor's own dtype shares its buffer, as {@linkcode identity}
 * does (the shipped kernel copies it: `tf.moments` casts every activation to
 * float32). A cast to bool is `x ≠ 0` (the shipped kernel truncates to a byte:
 * -2.5 became 254); other casts run the shipped kernel.
 */
function cast(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: Info };
  const attrs = (args.attrs ?? {}) as Attrs;
  if (attrs.dtype === x.dtype && x.dtype !== "string") {
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  }
  if (attrs.dtype === "bool" && (x.dtype === "float32" || x.dtype === "int32")) {
    const out = checkedOutput(backend, x.shape, "bool");
    const src = backend.typedArrayFromHeap(x), dst = backend.typedArrayFromHeap(out);
    for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0;
    return out;
  }
  return run(backend, "Cast", { x }, attrs);
}

/**
 * A fused elementwise gradient kernel `(x, dy) → dx` on float32 tensors of
 * one shape: `fast` on the compiled kernels, `each(x, dy)` per element in
 * JavaScript when they cannot run.
 */
function fusedGradKernel(
  name: string,
  fast: (backend: BackendWasm, x: Info, dy: Info, attrs: Attrs) => Info | null,
  each: (attrs: Attrs) => (x: number, dy: number) => number,
): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { x, dy } = args.inputs as { x: Info; dy: Info };
    const attrs = (args.attrs ?? {}) as Attrs;
    checkFloat(name, x, dy);
    if (!tf.util.arraysEqual(x.shape, dy.shape)) {
      throw new Error(
        `${name}: x ${JSON.stringify(x.shape)} and dy ${
          JSON.stringify(dy.shape)
        } must have the same shape`,
      );
    }
    const compiled = fast(backend, x, dy, attrs);
    if (compiled !== null) return compiled;
    const out = checkedOutput(backend, x.shape, "float32");
    const xs = heap(backend, x), g = heap(backend, dy), o = heap(backend, out), f = each(attrs);
    for (let i = 0; i < xs.length; i++) o[i] = f(xs[i]!, g[i]!);
    return out;
  };
}

/** ReLU's gradient in one pass where tfjs runs three kernels (`Step`, `Cast`, `Multiply`). */
const reluGrad = fusedGradKernel(
  RELU_GRAD_KERNEL,
  (backend, x, dy) => simdReluGrad(backend, x, dy),
  () => (v, g) => g * (v > 0 ? 1 : Number.isNaN(v) ? NaN : 0),
);

/** `lo ≤ x ≤ hi ? dy : 0` in one pass (tfjs's where over three comparisons). */
const clipGrad = fusedGradKernel(
  CLIP_GRAD_KERNEL,
  (backend, x, dy, attrs) =>
    simdClipGrad(backend, x, dy, Number(attrs.clipValueMin), Number(attrs.clipValueMax)),
  (attrs) => {
    const lo = Number(attrs.clipValueMin), hi = Number(attrs.clipValueMax);
    return (v, g) => (v >= lo && v <= hi ? g : 0);
  },
);

/** tfjs's own gradients of the ops {@linkcode installFusedGradient} reroutes, for other backends and dtypes. */
const shippedGradients = new Map<string, tf.GradConfig>();
/** The gradient functions installed, by op. */
const fusedGradFuncs = new Map<string, tf.GradFunc>();

/**
 * Routes the gradient of the one-input op `op` through the fused `kernel` on
 * wasm for float32 (with the op's attributes named in `attrNames`), and
 * through tfjs's own gradient (the same numbers) everywhere else. Idempotent.
 */
function installFusedGradient(op: string, kernel: string, attrNames: string[] = []): void {
  const current = tf.getGradient(op);
  if (current === undefined || current.gradFunc === fusedGradFuncs.get(op)) return;
  shippedGradients.set(op, current);
  const gradFunc: tf.GradFunc = (dy, saved, attrs) => {
    const [x] = saved as tf.Tensor[];
    const g = dy as tf.Tensor;
    if (
      tf.getBackend() === "wasm" && x !== undefined && x.dtype === "float32" &&
      g.dtype === "float32" && tf.getKernel(kernel, "wasm") !== undefined
    ) {
      const passed = Object.fromEntries(attrNames.map((a) => [a, attrs[a]])) as tf.NamedAttrMap;
      return { x: () => tf.engine().runKernel(kernel, { x, dy: g }, passed) as tf.Tensor };
    }
    return shippedGradients.get(op)!.gradFunc(dy, saved, attrs);
  };
  fusedGradFuncs.set(op, gradFunc);
  tf.registerGradient({ ...current, gradFunc });
}

/**
 * A replacement for the shipped kernel `name`: `fast` (on the compiled
 * kernels), or the shipped kernel where it gives `null`.
 */
function fastOr(
  name: string,
  fast: (
    backend: BackendWasm,
    inputs: Record<string, Info | undefined>,
    attrs: Attrs,
  ) => Info | null,
): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const inputs = args.inputs as Record<string, Info>, attrs = (args.attrs ?? {}) as Attrs;
    return fast(backend, inputs, attrs) ?? run(backend, name, inputs, attrs);
  };
}

/** A one-input kernel on the compiled kernels for float32, the shipped `name` otherwise. */
function unaryKernel(
  name: string,
  fast: (backend: BackendWasm, x: Info) => Info | null,
): tf.KernelFunc {
  return fastOr(name, (backend, { x }) => (x!.dtype === "float32" ? fast(backend, x!) : null));
}

/** ReLU on the compiled kernels (XNNPACK's runs on its pool, often one thread). */
const relu = unaryKernel("Relu", simdRelu);

/**
 * Batch normalization on the compiled kernel when every parameter holds one
 * value per channel (the tfjs wasm kernel is a scalar loop: 39% of a
 * MobileNetV2 forward pass), the shipped kernel otherwise.
 */
const fusedBatchNorm = fastOr("FusedBatchNorm", (backend, inputs, attrs) => {
  const { x, mean, variance, offset, scale } = inputs;
  const floats = [x, mean, variance, offset, scale].every((t) =>
    t === undefined || t.dtype === "float32"
  );
  return floats
    ? simdBatchNorm(backend, x!, mean!, variance!, offset, scale, Number(attrs.varianceEpsilon))
    : null;
});

/** ClipByValue (ReLU6 in MobileNets) on the compiled kernel for float32. */
const clipByValue = fastOr(
  "ClipByValue",
  (backend, { x }, attrs) =>
    x!.dtype === "float32"
      ? simdClip(backend, x!, Number(attrs.clipValueMin), Number(attrs.clipValueMax))
      : null,
);

/**
 * Zero padding of height and width of an NHWC float32 tensor (before a
 * strided depthwise convolution) on the compiled kernel; the shipped kernel
 * for anything else.
 */
const padV2 = fastOr("PadV2", (backend, { x }, attrs) => {
  const p = attrs.paddings as [number, number][] | undefined;
  return x!.dtype === "float32" && x!.shape.length === 4 &&
      Number(attrs.constantValue ?? 0) === 0 && p?.length === 4 && p[0]![0] === 0 &&
      p[0]![1] === 0 && p[3]![0] === 0 && p[3]![1] === 0 && p.every(([a, b]) => a >= 0 && b >= 0)
    ? simdPadHW(backend, x!, p[1]![0], p[1]![1], p[2]![0], p[2]![1])
    : null;
});

/**
 * Max pooling: the compiled kernel for the common 2×2, stride-2, unpadded
 * case, XNNPACK's otherwise.
 */
const maxPool = fastOr("MaxPool", (backend, { x }, attrs) => {
  if (x!.dtype !== "float32" || x!.shape.length !== 4) return null;
  const info = poolInfo(x!.shape, attrs);
  return info.filterHeight === 2 && info.filterWidth === 2 && windowsTile(info)
    ? simdMaxPool2x2(backend, x!)
    : null;
});

/**
 * Average pooling: the compiled kernel where the windows tile the input
 * (stride = window, no padding), XNNPACK's otherwise.
 */
const avgPool = fastOr("AvgPool", (backend, { x }, attrs) => {
  if (x!.dtype !== "float32" || x!.shape.length !== 4) return null;
  const info = poolInfo(x!.shape, attrs);
  return windowsTile(info)
    ? simdAvgPoolTiled(backend, x!, info.filterHeight, info.filterWidth)
    : null;
});

/** Throws unless every tensor in `infos` has rank 4 (NHWC). */
function checkRank4(kernel: string, infos: Record<string, Info | undefined>): void {
  for (const [name, info] of Object.entries(infos)) {
    if (info !== undefined && info.shape.length !== 4) {
      throw new Error(`${kernel} on wasm needs a rank-4 ${name}: got shape [${info.shape}]`);
    }
  }
}

/** Throws unless `shape` is a list of 4 whole numbers >= 0 (an attribute such as filterShape). */
function shape4(kernel: string, name: string, shape: unknown): [number, number, number, number] {
  if (
    !Array.isArray(shape) || shape.length !== 4 ||
    !shape.every((d) => Number.isInteger(d) && d >= 0)
  ) {
    throw new Error(
      `${kernel} on wasm needs ${name} of 4 whole sizes >= 0: got ${JSON.stringify(shape)}`,
    );
  }
  return shape as [number, number, number, number];
}

/** Throws unless `info` has `shape` (what the geometry of the call implies). */
function checkShapeIs(kernel: string, name: string, info: Info, shape: number[]): void {
  if (!tf.util.arraysEqual(info.shape, shape)) {
    throw new Error(
      `${kernel} on wasm: ${name} has shape [${info.shape}] where the geometry needs [${shape}]`,
    );
  }
}

/**
 * Throws for an output shape with a negative size, as the cpu backend does
 * for kernels that allocate their output unchecked: a negative element count
 * fails there as an invalid typed array length (a RangeError); other negative
 * sizes fail tfjs's shape check (an Error).
 */
function checkUncheckedOutput(kernel: string, shape: number[], why: string): void {
  if (tf.util.sizeFromShape(shape) < 0) {
    throw new RangeError(`${kernel}: the output shape [${shape}] has a negative size: ${why}`);
  }
  tf.util.assertNonNegativeIntegerDimensions(shape);
}

/**
 * A convolution's geometry after the checks the cpu backend makes (an
 * output size below zero for a too-small input fails as it does there), and
 * those that keep every kernel inside its tensors: the filter's input
 * channels match x's.
 */
function checkedConv(
  kernel: string,
  xShape: number[],
  filterShape: number[],
  attrs: Attrs,
  depthwise: boolean,
): ConvInfo {
  const info = convInfo(xShape, filterShape, attrs, depthwise);
  checkUncheckedOutput(kernel, info.outShape, "the input is smaller than the filter's window");
  if (xShape[3] !== filterShape[2]) {
    throw new Error(
      `${kernel} on wasm: the input has ${
        xShape[3]
      } channels where the filter [${filterShape}] takes ${filterShape[2]}`,
    );
  }
  return info;
}

/** A pooling's geometry after the cpu backend's check of its output shape. */
function checkedPool(kernel: string, x: Info, attrs: Attrs): ConvInfo {
  checkRank4(kernel, { x });
  const info = poolInfo(x.shape, attrs);
  tf.util.assertNonNegativeIntegerDimensions(info.outShape);
  return info;
}

type Inputs = Record<string, Info | undefined>;

/**
 * What every added or replaced kernel checks before it touches the heap:
 * ranks, the sizes its geometry implies, and output shapes as the cpu
 * backend checks them (with its error). Kernels not listed take any shape
 * (elementwise ones), or hand every call they do not handle to the shipped
 * kernel, which checks it.
 */
const VALIDATE: Record<string, (inputs: Inputs, attrs: Attrs) => void> = {
  Conv2D: ({ x, filter }, attrs) => {
    checkRank4("Conv2D", { x, filter });
    checkedConv("Conv2D", x!.shape, filter!.shape, attrs, false);
  },
  FusedConv2D: ({ x, filter }, attrs) => {
    checkRank4("FusedConv2D", { x, filter });
    checkedConv("FusedConv2D", x!.shape, filter!.shape, attrs, false);
  },
  DepthwiseConv2dNative: ({ x, filter }, attrs) => {
    checkRank4("DepthwiseConv2dNative", { x, filter });
    checkedConv("DepthwiseConv2dNative", x!.shape, filter!.shape, attrs, true);
  },
  FusedDepthwiseConv2D: ({ x, filter }, attrs) => {
    checkRank4("FusedDepthwiseConv2D", { x, filter });
    checkedConv("FusedDepthwiseConv2D", x!.shape, filter!.shape, attrs, true);
  },
  Conv2DBackpropFilter: ({ x, dy }, attrs) => {
    const name = "Conv2DBackpropFilter";
    checkRank4(name, { x, dy });
    const fs = shape4(name, "a filterShape", attrs.filterShape);
    const info = checkedConv(name, x!.shape, fs, attrs, false);
    checkShapeIs(name, "dy", dy!, info.outShape);
  },
  Conv2DBackpropInput: ({ dy, filter }, attrs) => {
    const name = "Conv2DBackpropInput";
    checkRank4(name, { dy, filter });
    const xs = shape4(name, "an inputShape", attrs.inputShape);
    const info = checkedConv(name, xs, filter!.shape, attrs, false);
    checkShapeIs(name, "dy", dy!, info.outShape);
  },
  DepthwiseConv2dNativeBackpropFilter: ({ x, dy }, attrs) => {
    const name = "DepthwiseConv2dNativeBackpropFilter";
    checkRank4(name, { x, dy });
    const fs = shape4(name, "a filterShape", attrs.filterShape);
    const info = checkedConv(name, x!.shape, fs, attrs, true);
    checkShapeIs(name, "dy", dy!, info.outShape);
  },
  DepthwiseConv2dNativeBackpropInput: ({ dy, filter }, attrs) => {
    const name = "DepthwiseConv2dNativeBackpropInput";
    checkRank4(name, { dy, filter });
    const xs = shape4(name, "an inputShape", attrs.inputShape);
    const info = checkedConv(name, xs, filter!.shape, attrs, true);
    checkShapeIs(name, "dy", dy!, info.outShape);
  },
  MaxPool: ({ x }, attrs) => void checkedPool("MaxPool", x!, attrs),
  AvgPool: ({ x }, attrs) => void checkedPool("AvgPool", x!, attrs),
  MaxPoolGrad: ({ dy, input }, attrs) => {
    checkRank4("MaxPoolGrad", { dy });
    checkShapeIs("MaxPoolGrad", "dy", dy!, checkedPool("MaxPoolGrad", input!, attrs).outShape);
  },
  AvgPoolGrad: ({ dy, input }, attrs) => {
    checkRank4("AvgPoolGrad", { dy });
    checkShapeIs("AvgPoolGrad", "dy", dy!, checkedPool("AvgPoolGrad", input!, attrs).outShape);
  },
  Slice: ({ x }, attrs) => {
    const [begin, size] = tf.slice_util.parseSliceParams(
      x as tf.Tensor,
      attrs.begin as number[],
      attrs.size as number[],
    );
    tf.slice_util.assertParamsValid(x!, begin as number[], size as number[]);
  },
  Tile: ({ x }, attrs) => {
    const reps = attrs.reps as number[];
    if (!Array.isArray(reps) || reps.length !== x!.shape.length) {
      throw new Error(
        `Tile on wasm needs one repetition per axis of x [${x!.shape}]: got ${
          JSON.stringify(reps)
        }`,
      );
    }
    tf.util.assertNonNegativeIntegerDimensions(x!.shape.map((d, i) => d * reps[i]!));
  },
  PadV2: ({ x }, attrs) => {
    const p = attrs.paddings as [number, number][];
    if (!Array.isArray(p) || p.length !== x!.shape.length) {
      throw new Error(
        `PadV2 on wasm needs one padding pair per axis of x [${x!.shape}]: got ${
          JSON.stringify(p)
        }`,
      );
    }
    const shape = x!.shape.map((d, i) => p[i]![0] + d + p[i]![1]);
    checkUncheckedOutput("PadV2", shape, "a padding below zero removes more than the axis holds");
    // The shipped kernel writes before its output for a padding below zero.
    if (!p.flat().every((v) => Number.isInteger(v) && v >= 0)) {
      throw new Error(`PadV2 on wasm needs whole paddings >= 0: got ${JSON.stringify(p)}`);
    }
  },
};

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
 * The result of a call with an empty input, for kernels whose shipped
 * versions divide by a zero size (a wasm trap): zeros of the output's shape,
 * or for a forward convolution its bias through the activation; `null` for a
 * call with no empty input.
 */
const EMPTY: Record<string, (backend: BackendWasm, inputs: Inputs, attrs: Attrs) => Info | null> =
  {};
for (
  const [name, depthwise] of [
    ["Conv2D", false],
    ["FusedConv2D", false],
    ["DepthwiseConv2dNative", true],
    ["FusedDepthwiseConv2D", true],
  ] as const
) {
  EMPTY[name] = (backend, inputs, attrs) => {
    const { x, filter } = inputs as { x: Info; filter: Info };
    const outShape = convInfo(x.shape, filter.shape, attrs, depthwise).outShape;
    return anyEmpty(x, filter) || tf.util.sizeFromShape(outShape) === 0
      ? emptyConv(backend, inputs, attrs, outShape)
      : null;
  };
}
for (const name of ["MaxPool", "AvgPool"]) {
  EMPTY[name] = (backend, { x }, attrs) => {
    const outShape = poolInfo(x!.shape, attrs).outShape;
    return anyEmpty(x!) || tf.util.sizeFromShape(outShape) === 0 ? zeros(backend, outShape) : null;
  };
}
for (const name of ["MaxPoolGrad", "AvgPoolGrad"]) {
  EMPTY[name] = (backend, { dy, input }) =>
    anyEmpty(dy!, input!) ? zeros(backend, input!.shape) : null;
}

/**
 * `kernelFunc` behind the checks {@linkcode VALIDATE} lists for `name`, and
 * the answers {@linkcode EMPTY} gives for calls with empty inputs.
 */
function checked(name: string, kernelFunc: tf.KernelFunc): tf.KernelFunc {
  const validate = VALIDATE[name], empty = EMPTY[name];
  if (validate === undefined && empty === undefined) return kernelFunc;
  return (args) => {
    const inputs = args.inputs as Inputs, attrs = (args.attrs ?? {}) as Attrs;
    validate?.(inputs, attrs);
    return empty?.(args.backend as BackendWasm, inputs, attrs) ?? kernelFunc(args);
  };
}

/** The shipped kernels, kept so the replacements can call them. */
const original = new Map<string, tf.KernelFunc>();

const added: tf.KernelConfig[] = ([
  { kernelName: "Conv2DBackpropFilter", backendName: "wasm", kernelFunc: conv2DBackpropFilter },
  {
    kernelName: "DepthwiseConv2dNativeBackpropFilter",
    backendName: "wasm",
    kernelFunc: depthwiseBackpropFilter,
  },
  {
    kernelName: "DepthwiseConv2dNativeBackpropInput",
    backendName: "wasm",
    kernelFunc: depthwiseBackpropInput,
  },
  { kernelName: RELU_GRAD_KERNEL, backendName: "wasm", kernelFunc: reluGrad },
  { kernelName: CLIP_GRAD_KERNEL, backendName: "wasm", kernelFunc: clipGrad },
] as tf.KernelConfig[]).map((c) => ({ ...c, kernelFunc: checked(c.kernelName, c.kernelFunc) }));

const replaced: tf.KernelConfig[] = ([
  { kernelName: "Slice", backendName: "wasm", kernelFunc: slice },
  { kernelName: "BatchMatMul", backendName: "wasm", kernelFunc: batchMatMul },
  { kernelName: "Conv2DBackpropInput", backendName: "wasm", kernelFunc: conv2DBackpropInput },
  { kernelName: "Conv2D", backendName: "wasm", kernelFunc: conv2D },
  { kernelName: "Identity", backendName: "wasm", kernelFunc: identity },
  { kernelName: "Mean", backendName: "wasm", kernelFunc: leadingReduction("Mean") },
  { kernelName: "Sum", backendName: "wasm", kernelFunc: leadingReduction("Sum") },
  { kernelName: "Tile", backendName: "wasm", kernelFunc: tile },
  { kernelName: "MaxPoolGrad", backendName: "wasm", kernelFunc: maxPoolGrad },
  { kernelName: "AvgPoolGrad", backendName: "wasm", kernelFunc: avgPoolGrad },
  { kernelName: "Transpose", backendName: "wasm", kernelFunc: transpose },
  { kernelName: "Add", backendName: "wasm", kernelFunc: add },
  { kernelName: "Relu", backendName: "wasm", kernelFunc: relu },
  { kernelName: "MaxPool", backendName: "wasm", kernelFunc: maxPool },
  { kernelName: "AvgPool", backendName: "wasm", kernelFunc: avgPool },
  { kernelName: "FusedBatchNorm", backendName: "wasm", kernelFunc: fusedBatchNorm },
  { kernelName: "ClipByValue", backendName: "wasm", kernelFunc: clipByValue },
  { kernelName: "PadV2", backendName: "wasm", kernelFunc: padV2 },
  { kernelName: "FusedConv2D", backendName: "wasm", kernelFunc: fusedConv2D },
  { kernelName: "Sub", backendName: "wasm", kernelFunc: sub },
  { kernelName: "Multiply", backendName: "wasm", kernelFunc: multiply },
  { kernelName: "Square", backendName: "wasm", kernelFunc: square },
  { kernelName: "Cast", backendName: "wasm", kernelFunc: cast },
  {
    kernelName: "DepthwiseConv2dNative",
    backendName: "wasm",
    kernelFunc: depthwiseForward("DepthwiseConv2dNative"),
  },
  {
    kernelName: "FusedDepthwiseConv2D",
    backendName: "wasm",
    kernelFunc: depthwiseForward("FusedDepthwiseConv2D"),
  },
] as tf.KernelConfig[]).map((c) => ({ ...c, kernelFunc: checked(c.kernelName, c.kernelFunc) }));

/** Options for {@linkcode registerWasmGradKernels}. */
export interface RegisterWasmGradKernelsOptions {
  /**
   * Also replace the shipped `Slice` and `BatchMatMul` kernels with faster ones.
   * @default {true}
   */
  fastKernels?: boolean;
  /**
   * Run convolutions and their gradients on the compiled SIMD kernels
   * (`wasm_simd_ops.ts`) where they are faster; off, the JavaScript and
   * XNNPACK paths run. Applies to every later call in this process.
   * @default {true}
   */
  simdKernels?: boolean;
}

/**
 * Registers the missing wasm gradient kernels (and, by default, the faster
 * `Slice` and `BatchMatMul`) with TensorFlow.js. Idempotent. Call it after
 * importing `@tensorflow/tfjs-backend-wasm`; the kernels work once the wasm
 * backend is initialized (`await tf.setBackend("wasm")`).
 *
 * @param options which kernels to register
 * @returns the names of the kernels registered by this call (empty when all were there)
 * @throws {Error} when `@tensorflow/tfjs-backend-wasm` has not registered its own kernels
 *
 * @example Register the kernels
 * ```ts
 * import "@tensorflow/tfjs-backend-wasm";
 * import { registerWasmGradKernels } from "./wasm_grad_kernels.ts";
 * const names: string[] = registerWasmGradKernels();
 * console.log(names);
 * ```
 */
export function registerWasmGradKernels(options: RegisterWasmGradKernelsOptions = {}): string[] {
  setSimdKernelsEnabled(options.simdKernels ?? true);
  const names: string[] = [];
  for (const config of added) {
    if (tf.getKernel(config.kernelName, "wasm") === undefined) {
      tf.registerKernel(config);
      names.push(config.kernelName);
    }
  }
  if (options.fastKernels ?? true) {
    installFusedGradient("Relu", RELU_GRAD_KERNEL);
    installFusedGradient("ClipByValue", CLIP_GRAD_KERNEL, ["clipValueMin", "clipValueMax"]);
    for (const config of replaced) {
      const current = tf.getKernel(config.kernelName, "wasm");
      if (current === undefined) {
        throw new Error(
          `Cannot replace wasm kernel "${config.kernelName}": it is not registered (import "@tensorflow/tfjs-backend-wasm" first)`,
        );
      }
      if (current.kernelFunc === config.kernelFunc) continue;
      original.set(config.kernelName, current.kernelFunc);
      tf.unregisterKernel(config.kernelName, "wasm");
      tf.registerKernel({ ...current, kernelFunc: config.kernelFunc });
      names.push(config.kernelName);
    }
  }
  return names;
}
