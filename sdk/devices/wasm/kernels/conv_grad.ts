/**
 * The gradients of a 2-D convolution on the wasm backend:
 * `Conv2DBackpropFilter` (added: tfjs-backend-wasm has none),
 * `Conv2DBackpropInput` (replaced: the shipped one is a scalar loop) and
 * `ZooConv2DMaxPoolFilterGrad` (added: the filter gradient of a convolution
 * whose output a 2×2 max pooling read, from the pooling's gradient and the
 * positions of its maxima).
 *
 * - Filter gradient: `dW[k, o] = Σₚ x[p, k] · dy[p, o]` on the compiled
 *   kernel, tiles of 4 taps × 8 channels; a wide 1×1 filter as one XNNPACK
 *   matrix product `im2col(x)ᵀ · dy` per chunk of images instead.
 * - Input gradient: `dy · Wᵀ` scattered back onto the input (col2im) on the
 *   compiled kernel, a filter row of taps at a time (strides and dilations
 *   included); a 1×1 stride-1 one as one XNNPACK convolution of `dy` with the
 *   flipped, channel-swapped filter.
 *
 * @example The gradient of a convolution's filter
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { initWasmBackend } from "../backend.ts";
 * await initWasmBackend({ threads: false });
 * const x = tf.ones([1, 3, 3, 1]) as tf.Tensor4D;
 * const conv = (w: tf.Tensor) => tf.conv2d(x, w as tf.Tensor4D, 1, "same");
 * // Each of the 9 outputs passes a gradient of 1 times an input of 1 to the one tap.
 * assertEquals(await tf.grad(conv)(tf.ones([1, 1, 1, 1])).data(), new Float32Array([9]));
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
  checkNhwc,
  checkRank4,
  checkShapeIs,
  dispose,
  expectShape,
  heap,
  type Info,
  offset,
  Scratch,
  shape4,
  zeros,
} from "../_heap.ts";
import { byImages, elementwise, kernels, shares, sumByRows } from "../_compiled.ts";
import {
  type Attrs,
  checkedConv,
  type ConvInfo,
  convInfo,
  dims,
  type Inputs,
  reshape,
  run,
  unpacked,
  type WasmKernel,
} from "../_kernel.ts";
import type { SimdKernels } from "../simd/module.ts";
import {
  contiguousRows,
  oneChannelStride1,
  padded,
  paddedInput,
  registered,
  tapOffsets,
  windowBases,
} from "./conv.ts";
import { positionWords } from "./pool.ts";
import { CONV_MAX_POOL_FILTER_GRAD_KERNEL, MAX_POOL_SCATTER_KERNEL } from "../../kernels.ts";
import { type Padded, transposeLastTwo } from "./layout.ts";
import { accumulate, batchRows, im2colT, imagesPerChunk } from "./_im2col.ts";
import { flippedFilter, upsamplePadded } from "./_transposed.ts";

/**
 * `out[k·O + o] = Σ_{p < P} x[base[p] + koff[k]] · dy[p·O + o]` (the
 * filter-gradient kernel).
 */
export function sumOverRows(
  k: SimdKernels,
  scratch: Scratch,
  x: number,
  base: number,
  koff: number,
  K: number,
  dy: number,
  O: number,
  out: number,
  P: number,
): void {
  if (K >= P && K >= 8 && P * K * O >= 1 << 20) {
    // More taps than rows (the weight gradient of a dense layer, xᵀ·dy):
    // each thread takes a range of taps over every row, so no thread sums
    // into a buffer of its own and nothing is added up afterwards.
    k.fn.zero(out, K * O);
    k.parallel(
      "conv_filter_grad",
      shares(k, K, 4).map(([k0, k1]) => [x, base, koff, k0, k1, dy, O, out, 0, P]),
    );
    return;
  }
  sumByRows(
    k,
    scratch,
    "conv_filter_grad",
    out,
    K * O,
    P,
    P * K * O,
    32,
    (p0, p1, buffer) => [x, base, koff, 0, K, dy, O, buffer, p0, p1],
  );
}

/**
 * A one-channel, stride-1 convolution's filter gradient into `dw` by `fn`
 * (`conv1_filter_grad`, or `conv1_filter_grad_pooled`), whose arguments
 * after the padded input `xp` are the `gradient` pointers, then the
 * geometry: its rows split across threads, each part summed into a buffer
 * of its own, the same way for both, so both sum alike.
 */
function oneChannelFilterGrad(
  k: SimdKernels,
  scratch: Scratch,
  fn: "conv1_filter_grad" | "conv1_filter_grad_pooled",
  xp: number,
  pad: Padded,
  info: ConvInfo,
  gradient: number[],
  dw: number,
): void {
  const { B, OH, OW, O, KH, KW, C } = dims(info);
  const K = KH * KW * C, P = B * OH * OW;
  const OWP = Math.ceil(OW / 4) * 4, tmp = 8 * O * OWP + K * O * 4;
  sumByRows(k, scratch, fn, dw, K * O, B * OH, P * K * O, 4, (r0, r1, buffer) => [
    xp,
    pad.XH,
    pad.XW,
    ...gradient,
    OH,
    OW,
    KH,
    KW,
    O,
    buffer,
    scratch.alloc(tmp),
    r0,
    r1,
  ]);
}

/**
 * The filter gradient `Σₚ x[p, k] · dy[p, o]`, or `null` when the kernels cannot run.
 *
 * @param backend the wasm backend holding the tensors
 * @param x the NHWC float32 input of the convolution
 * @param dy the NHWC float32 gradient of its output
 * @param info the convolution's geometry
 * @returns the `[kh, kw, in, out]` filter gradient, owned by the caller
 */
export function simdConv2DBackpropFilter(
  backend: BackendWasm,
  x: Info,
  dy: Info,
  info: ConvInfo,
): Info | null {
  const k = kernels(backend);
  if (k === null) return null;
  const { B, OH, OW, O, KH, KW, C } = dims(info);
  const K = KH * KW * C, P = B * OH * OW;
  expectShape("conv_filter_grad", "x", x, info.inShape);
  expectShape("conv_filter_grad", "dy", dy, info.outShape);
  const dw = checkedOutput(backend, [KH, KW, C, O], "float32");
  const scratch = new Scratch(k);
  try {
    const pad = padded(info);
    const xp = paddedInput(backend, k, scratch, x, info, pad);
    if (oneChannelStride1(info)) {
      // One input channel: vectors along the output row (conv1_filter_grad).
      oneChannelFilterGrad(k, scratch, "conv1_filter_grad", xp, pad, info, [
        offset(backend, dy),
      ], offset(backend, dw));
      return dw;
    }
    const base = windowBases(k, scratch, info, pad);
    const koff = tapOffsets(k, scratch, info, pad.XW);
    sumOverRows(k, scratch, xp, base, koff, K, offset(backend, dy), O, offset(backend, dw), P);
  } finally {
    scratch.free();
  }
  return dw;
}

/** Whether a convolution is 1×1, stride 1 and unpadded: its input rows are the windows. */
export function pointwise(info: ConvInfo): boolean {
  const p = info.padInfo;
  return info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 &&
    info.strideWidth === 1 && p.top === 0 && p.left === 0 && p.bottom === 0 && p.right === 0 &&
    info.outHeight === info.inHeight && info.outWidth === info.inWidth;
}

/**
 * The filter gradient of a 1×1, stride-1, unpadded convolution, `xᵀ · dy`
 * over the rows of x and dy (no window bases, no padded copy), or `null`
 * when the kernels cannot run. Threads sum ranges of rows into buffers of
 * their own, added at the end.
 *
 * @param backend the wasm backend holding the tensors
 * @param x the NHWC float32 input of the convolution
 * @param dy the NHWC float32 gradient of its output
 * @param info the convolution's geometry, 1×1, stride 1, unpadded
 * @returns the `[1, 1, in, out]` filter gradient, owned by the caller
 * @throws {RangeError} for another geometry, or tensors whose shapes it does not imply
 */
export function simdPointwiseFilterGrad(
  backend: BackendWasm,
  x: Info,
  dy: Info,
  info: ConvInfo,
): Info | null {
  const k = kernels(backend);
  if (k === null) return null;
  if (!pointwise(info)) {
    throw new RangeError(
      `pw_filter_grad: needs a 1×1, stride-1, unpadded convolution: got a ${info.filterHeight}×${info.filterWidth} filter at stride ${info.strideHeight}×${info.strideWidth}`,
    );
  }
  expectShape("pw_filter_grad", "x", x, info.inShape);
  expectShape("pw_filter_grad", "dy", dy, info.outShape);
  const { batchSize: B, outHeight: OH, outWidth: OW, inChannels: C, outChannels: O } = info;
  const P = B * OH * OW;
  const dw = checkedOutput(backend, [1, 1, C, O], "float32");
  const scratch = new Scratch(k);
  try {
    const xo = offset(backend, x), dyo = offset(backend, dy);
    sumByRows(
      k,
      scratch,
      "pw_filter_grad",
      offset(backend, dw),
      C * O,
      P,
      P * C * O,
      32,
      (r0, r1, buffer) => [xo, C, dyo, O, buffer, r0, r1],
    );
  } finally {
    scratch.free();
  }
  return dw;
}

/**
 * The input gradient `col2im(dy · Wᵀ)`, or `null` when the kernels cannot run.
 *
 * @param backend the wasm backend holding the tensors
 * @param dy the NHWC float32 gradient of the convolution's output
 * @param filter the `[kh, kw, in, out]` float32 filter
 * @param info the convolution's geometry
 * @returns the NHWC input gradient, owned by the caller
 */
export function simdConv2DBackpropInput(
  backend: BackendWasm,
  dy: Info,
  filter: Info,
  info: ConvInfo,
): Info | null {
  const k = kernels(backend);
  if (k === null) return null;
  const { B, H, W, C, KH, KW, O } = dims(info);
  const K = KH * KW * C, KP = K + 8, P = B * info.outHeight * info.outWidth;
  expectShape("conv_input_grad", "dy", dy, info.outShape);
  expectShape("conv_input_grad", "the filter", filter, [KH, KW, C, O]);
  const dx = checkedOutput(backend, [B, H, W, C], "float32");
  const scratch = new Scratch(k);
  try {
    const pad = padded(info);
    const inPlace = pad.XH === H && pad.XW === W;
    const dxp = inPlace ? offset(backend, dx) : scratch.alloc(B * pad.XH * pad.XW * C);
    // Output positions in (b, ow, oh) order, dy rows to match: the four
    // rows of a tile then share a column and differ in row, so their
    // windows' filter rows never overlap in dx (overlapping read-add-writes
    // stall on store-to-load forwarding).
    const { outHeight: OH, outWidth: OW } = info, row = pad.XW * C;
    const base = scratch.alloc(P);
    const as = pad.XH * row, ws = info.strideWidth * C, hs = info.strideHeight * row;
    k.parallel(
      "bases3",
      byImages(k, B, P).map((
        [b0, b1],
      ) => [base + 4 * b0 * OW * OH, b1 - b0, OW, OH, as, ws, hs, b0]),
    );
    const dyT = scratch.alloc(P * O);
    const dyImage = 4 * OH * OW * O, dyo = offset(backend, dy);
    k.parallel(
      "swap_hw",
      byImages(k, B, P * O).map((
        [b0, b1],
      ) => [dyo + b0 * dyImage, b1 - b0, OH, OW, O, dyT + b0 * dyImage]),
    );
    // Segments of consecutive taps: a whole filter row without width dilation.
    const rows = info.dilationWidth === 1;
    const S = rows ? KH : KH * KW, L = rows ? KW * C : C;
    const soff = scratch.alloc(S);
    const wt = scratch.alloc(O * KP);
    const i32 = k.i32();
    for (let s = 0; s < S; s++) {
      const kh = rows ? s : Math.floor(s / KW), kw = rows ? 0 : s % KW;
      i32[(soff >>> 2) + s] = (kh * info.dilationHeight * pad.XW + kw * info.dilationWidth) * C;
    }
    k.fn.pack_rows(offset(backend, filter), O, K, 1, O, wt, KP);
    elementwise(k, "zero", B * pad.XH * pad.XW * C, [dxp]);
    if (P > 0 && O > 0 && K > 0) {
      // Threads take whole images: windows of different images never overlap in dx.
      const perImage = OH * OW;
      k.parallel(
        "conv_input_grad",
        shares(k, B).map(([b0, b1]) => [
          dyT,
          O,
          wt,
          KP,
          soff,
          S,
          L,
          base,
          dxp,
          b0 * perImage,
          b1 * perImage,
        ]),
      );
    }
    if (!inPlace) {
      const { XH, XW, top, left } = pad, dxo = offset(backend, dx);
      k.parallel(
        "crop_copy",
        byImages(k, B, B * H * W * C).map(([b0, b1]) => [
          dxp + 4 * b0 * XH * XW * C,
          b1 - b0,
          XH,
          XW,
          C,
          dxo + 4 * b0 * H * W * C,
          H,
          W,
          top,
          left,
        ]),
      );
    }
  } finally {
    scratch.free();
  }
  return dx;
}

const conv2DBackpropFilter = unpacked<{ x: Info; dy: Info }>((backend, { x, dy }, attrs) => {
  checkFloat("Conv2DBackpropFilter", x, dy);
  checkNhwc("Conv2DBackpropFilter", attrs.dataFormat);
  const filterShape = attrs.filterShape as [number, number, number, number];
  if (anyEmpty(x, dy) || tf.util.sizeFromShape(filterShape) === 0) {
    return zeros(backend, filterShape);
  }
  const info = convInfo(x.shape, filterShape, attrs);
  // A 1×1 stride-1 filter gradient is xᵀ·dy over rows: the compiled
  // pointwise kernel (a third faster than the XNNPACK product at
  // MobileNetV2's 1×1 layers, see simdPointwiseFilterGrad). A strided 1×1 one
  // with many output channels is one XNNPACK product of im2col(x)ᵀ and dy,
  // which beats the compiled taps kernel there.
  const wide1x1 = info.filterHeight * info.filterWidth === 1 && info.outChannels > 64;
  const fast = pointwise(info)
    ? simdPointwiseFilterGrad(backend, x, dy, info)
    : wide1x1
    ? null
    : simdConv2DBackpropFilter(backend, x, dy, info);
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
});

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
  const { B, H, W, C, OH, OW, KH, KW, sh, sw, pt, pl } = dims(info);
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
 * A 1×1 stride-1 input gradient `dx = dy · Wᵀ` as the compiled matrix
 * product (`pw_gemm`) on every thread, or `null` when the kernels cannot run
 * or run on one thread (XNNPACK's convolution then: on one thread the two
 * are about as fast).
 */
function pointwiseInputGrad(
  backend: BackendWasm,
  dy: Info,
  filter: Info,
  info: ConvInfo,
): Info | null {
  const k = kernels(backend);
  if (k === null || k.threads < 2) return null;
  const { B, H, W, C, O } = dims(info);
  const P = B * H * W;
  expectShape("pointwise input gradient", "dy", dy, [B, H, W, O]);
  expectShape("pointwise input gradient", "the filter", filter, [1, 1, C, O]);
  const dx = checkedOutput(backend, [B, H, W, C], "float32");
  const scratch = new Scratch(k);
  try {
    // Wᵀ packed as O rows of CP floats.
    const CP = Math.ceil(C / 16) * 16;
    const w = scratch.alloc(O * CP);
    k.fn.pack_rows(offset(backend, filter), O, C, 1, O, w, CP);
    const dyo = offset(backend, dy), dxo = offset(backend, dx);
    k.parallel(
      "pw_gemm",
      shares(k, P, 2).map(([p0, p1]) => [dyo, O, w, C, CP, dxo, p0, p1, 0, 0]),
    );
    return dx;
  } catch (e) {
    dispose(backend, dx);
    throw e;
  } finally {
    scratch.free();
  }
}

/**
 * The wasm `Conv2DBackpropInput` is a scalar loop; this one is one XNNPACK
 * convolution of the zero-upsampled, padded `dy` with the flipped,
 * channel-swapped filter.
 */
const conv2DBackpropInput = unpacked<{ dy: Info; filter: Info }>(
  (backend, { dy, filter }, attrs) => {
    if (
      dy.dtype !== "float32" || filter.dtype !== "float32" ||
      (attrs.dataFormat ?? "NHWC") !== "NHWC"
    ) {
      return run(backend, "Conv2DBackpropInput", { dy, filter }, attrs);
    }
    const inShape = attrs.inputShape as number[];
    if (anyEmpty(dy, filter) || tf.util.sizeFromShape(inShape) === 0) {
      return zeros(backend, inShape);
    }
    const info = convInfo(attrs.inputShape, filter.shape, attrs);
    const strided = info.strideHeight > 1 || info.strideWidth > 1;
    // A 1×1 stride-1 unpadded input gradient is a matrix product, which
    // beats the compiled scatter kernel there (so does XNNPACK's).
    const pointwise = contiguousRows(info);
    const fast = pointwise
      ? pointwiseInputGrad(backend, dy, filter, info)
      : simdConv2DBackpropInput(backend, dy, filter, info);
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
  },
);

/**
 * The filter gradient of a one-channel, stride-1 convolution whose output
 * a 2×2 max pooling read, from the pooling's gradient `dy`, its values `y`
 * and its maxima's positions (one word each): `conv1_filter_grad_pooled`,
 * which makes the convolution's output gradient a row at a time as it reads
 * it. The same values as `max_pool_scatter_2x2`, then the one-channel filter
 * gradient. `null` when the kernels cannot run or the call is not one
 * channel at stride 1, undilated, with 1 to 16 output channels.
 *
 * @param backend the wasm backend holding the tensors
 * @param x the NHWC float32 input of the convolution
 * @param dy the float32 gradient of the pooled output
 * @param y the pooled output
 * @param positions the int32 positions, `[B, ⌊OH/2⌋, ⌊OW/2⌋, 1]`
 * @param info the convolution's geometry
 * @returns the `[kh, kw, 1, out]` filter gradient, owned by the caller
 */
export function simdConv2DMaxPoolFilterGrad(
  backend: BackendWasm,
  x: Info,
  dy: Info,
  y: Info,
  positions: Info,
  info: ConvInfo,
): Info | null {
  const k = kernels(backend);
  const { B, OH, OW, O, KH, KW, C } = dims(info);
  if (k === null || !oneChannelStride1(info) || O < 1 || O > 16) return null;
  const fn = "conv1_filter_grad_pooled";
  const pooled = [B, Math.floor(OH / 2), Math.floor(OW / 2), O];
  expectShape(fn, "x", x, info.inShape);
  expectShape(fn, "dy", dy, pooled);
  expectShape(fn, "y", y, pooled);
  expectShape(fn, "the positions", positions, [...pooled.slice(0, 3), 1]);
  const dw = checkedOutput(backend, [KH, KW, C, O], "float32");
  const scratch = new Scratch(k);
  try {
    const pad = padded(info);
    const xp = paddedInput(backend, k, scratch, x, info, pad);
    // The rows split as Conv2DBackpropFilter splits them: the same sums.
    const gradient = [dy, y, positions].map((t) => offset(backend, t));
    oneChannelFilterGrad(k, scratch, fn, xp, pad, info, gradient, offset(backend, dw));
    return dw;
  } catch (e) {
    dispose(backend, dw);
    throw e;
  } finally {
    scratch.free();
  }
}

/**
 * {@linkcode CONV_MAX_POOL_FILTER_GRAD_KERNEL}: on the compiled kernel for
 * a one-channel, stride-1 convolution; otherwise `ZooMaxPoolScatter`, then
 * `Conv2DBackpropFilter`, as registered.
 */
const convMaxPoolFilterGrad = unpacked<{ x: Info; dy: Info; y: Info; indices: Info }>(
  (backend, { x, dy, y, indices }, attrs) => {
    const info = convInfo(x.shape, attrs.filterShape, attrs);
    const fast = (attrs.dataFormat ?? "NHWC") === "NHWC" && !anyEmpty(x, dy)
      ? simdConv2DMaxPoolFilterGrad(backend, x, dy, y, indices, info)
      : null;
    if (fast !== null) return fast;
    const dz = registered(backend, MAX_POOL_SCATTER_KERNEL, { dy, y, indices }, {
      inputShape: info.outShape,
    });
    try {
      return registered(backend, "Conv2DBackpropFilter", { x, dy: dz }, attrs);
    } finally {
      dispose(backend, dz);
    }
  },
);

/**
 * The checks of {@linkcode CONV_MAX_POOL_FILTER_GRAD_KERNEL}: the
 * convolution's geometry as `Conv2DBackpropFilter` checks it, float32 `x`,
 * `dy` and `y`, int32 `indices`, and the pooled shapes that geometry gives.
 */
function validatePooledFilterGrad(inputs: Inputs, attrs: Attrs): void {
  const name = CONV_MAX_POOL_FILTER_GRAD_KERNEL;
  const { x, dy, y, indices } = inputs;
  if (!x || !dy || !y || !indices) {
    throw new Error(`${name} on wasm needs the inputs x, dy, y and indices`);
  }
  checkRank4(name, { x, dy, y, indices });
  checkFloat(name, x, dy, y);
  if (indices.dtype !== "int32") {
    throw new TypeError(`${name} on wasm needs int32 indices: got "${indices.dtype}"`);
  }
  const fs = shape4(name, "a filterShape", attrs.filterShape);
  const [B, OH, OW, O] = checkedConv(name, x.shape, fs, attrs, false).outShape;
  const pooled = [B!, Math.floor(OH! / 2), Math.floor(OW! / 2), O!];
  checkShapeIs(name, "dy", dy, pooled);
  checkShapeIs(name, "y", y, pooled);
  checkShapeIs(name, "indices", indices, [...pooled.slice(0, 3), positionWords(O!)]);
}

/**
 * The checks of a convolution gradient: rank-4 tensors, a whole shape in
 * the attribute `shapeAttr`, an output size the cpu backend accepts, and a
 * `dy` of the output's shape.
 *
 * @param name the kernel's name, for the messages
 * @param depthwise whether the convolution is depthwise
 * @param of `"filter"`: the inputs are `x` and `dy`; `"input"`: `dy` and `filter`
 * @returns the {@linkcode WasmKernel.validate} of such a kernel
 */
export function validateGrad(
  name: string,
  depthwise: boolean,
  of: "filter" | "input",
): NonNullable<WasmKernel["validate"]> {
  return ({ x, dy, filter }, attrs) => {
    if (of === "filter") {
      checkRank4(name, { x, dy });
      const fs = shape4(name, "a filterShape", attrs.filterShape);
      const info = checkedConv(name, x!.shape, fs, attrs, depthwise);
      checkShapeIs(name, "dy", dy!, info.outShape);
    } else {
      checkRank4(name, { dy, filter });
      const xs = shape4(name, "an inputShape", attrs.inputShape);
      const info = checkedConv(name, xs, filter!.shape, attrs, depthwise);
      checkShapeIs(name, "dy", dy!, info.outShape);
    }
  };
}

/**
 * The convolution gradients: `Conv2DBackpropFilter` (added),
 * `Conv2DBackpropInput` (replaced), {@linkcode CONV_MAX_POOL_FILTER_GRAD_KERNEL}
 * (added).
 */
export const CONV_GRAD_KERNELS: readonly WasmKernel[] = [
  {
    name: CONV_MAX_POOL_FILTER_GRAD_KERNEL,
    kind: "added",
    kernelFunc: convMaxPoolFilterGrad,
    validate: validatePooledFilterGrad,
  },
  {
    name: "Conv2DBackpropFilter",
    kind: "added",
    kernelFunc: conv2DBackpropFilter,
    validate: validateGrad("Conv2DBackpropFilter", false, "filter"),
  },
  {
    name: "Conv2DBackpropInput",
    kind: "replaced",
    kernelFunc: conv2DBackpropInput,
    validate: validateGrad("Conv2DBackpropInput", false, "input"),
  },
];
