/**
 * 2-D pooling on the wasm backend: `MaxPool`, `AvgPool` and their gradients
 * `MaxPoolGrad`, `AvgPoolGrad` (all four replaced), and `ZooMaxPoolScatter`
 * (added: the gradient of 2×2 max pooling from the positions of its maxima,
 * without the pooling's input). The compiled kernels
 * take the common cases, windows that tile the input (stride = window, no
 * padding: 2×2 for max pooling); the gradients' other cases run here in
 * JavaScript (the shipped ones are scalar loops over every input position
 * and window tap), the forward ones on XNNPACK.
 *
 * @example Max pooling and its gradient
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { initWasmBackend } from "../backend.ts";
 * await initWasmBackend({ threads: false });
 * const x = tf.tensor4d([1, 5, 3, 2], [1, 2, 2, 1]);
 * const dx = tf.grad((t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, 2, 2, "valid"))(x);
 * assertEquals(await dx.data(), new Float32Array([0, 1, 0, 0]));
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
  checkRank4,
  checkShapeIs,
  expectShape,
  heap,
  type Info,
  offset,
  shape4,
  view,
  zeros,
} from "../_heap.ts";
import { byImages, kernels } from "../_compiled.ts";
import {
  type Attrs,
  type ConvInfo,
  dims,
  fastOr,
  type Inputs,
  run,
  unpacked,
  type WasmKernel,
} from "../_kernel.ts";
import type { SimdExports, SimdKernels } from "../simd/module.ts";
import { MAX_POOL_SCATTER_KERNEL } from "../../kernels.ts";

/**
 * Runs a pooling kernel `fn(...pointers, images, H, W, C, ...extra)` over
 * ranges of the B images of an NHWC input `[B, H, W, C]`; each pointer comes
 * with its bytes per image and is advanced to the range's first image.
 */
function poolByImages(
  k: SimdKernels,
  fn: keyof SimdExports,
  [B, H, W, C]: number[],
  pointers: [number, number][],
  extra: number[] = [],
): void {
  k.parallel(
    fn,
    byImages(k, B!, B! * H! * W! * C!).map(([b0, b1]) => [
      ...pointers.map(([ptr, bytes]) => ptr + b0 * bytes),
      b1 - b0,
      H!,
      W!,
      C!,
      ...extra,
    ]),
  );
}

/**
 * A pooling whose windows tile `x` (`KH × KW`, stride = window, no padding)
 * by the kernel `fn(x, y, images, H, W, C, ...extra)`, or `null` when the
 * kernels cannot run.
 */
function tiledPool(
  backend: BackendWasm,
  x: Info,
  fn: keyof SimdExports,
  KH: number,
  KW: number,
  extra: number[],
): Info | null {
  const k = kernels(backend);
  if (k === null) return null;
  if (x.shape.length !== 4 || !(KH >= 1 && KW >= 1)) {
    throw new RangeError(`${fn}: needs an NHWC input and a window of at least 1×1`);
  }
  const [B, H, W, C] = x.shape as [number, number, number, number];
  const OH = Math.floor(H / KH), OW = Math.floor(W / KW);
  const y = checkedOutput(backend, [B, OH, OW, C], "float32");
  poolByImages(k, fn, x.shape, [
    [offset(backend, x), 4 * H * W * C],
    [offset(backend, y), 4 * OH * OW * C],
  ], extra);
  return y;
}

/**
 * 2×2 stride-2 unpadded max pooling (the cpu backend's maximum: NaN never
 * wins), or `null` when the kernels cannot run.
 *
 * @param backend the wasm backend holding the tensor
 * @param x the NHWC float32 input
 * @returns the pooled `[B, ⌊H/2⌋, ⌊W/2⌋, C]` output, owned by the caller
 */
export function simdMaxPool2x2(backend: BackendWasm, x: Info): Info | null {
  return tiledPool(backend, x, "max_pool_2x2", 2, 2, []);
}

/**
 * Average pooling whose windows tile the input (stride = window, no
 * padding), or `null` when the kernels cannot run.
 *
 * @param backend the wasm backend holding the tensor
 * @param x the NHWC float32 input
 * @param KH the window's height (and vertical stride)
 * @param KW the window's width (and horizontal stride)
 * @returns the pooled `[B, ⌊H/KH⌋, ⌊W/KW⌋, C]` output, owned by the caller
 */
export function simdAvgPoolTiled(
  backend: BackendWasm,
  x: Info,
  KH: number,
  KW: number,
): Info | null {
  return tiledPool(backend, x, "avg_pool_tiled", KH, KW, [KH, KW]);
}

/**
 * The gradient of 2×2 stride-2 unpadded max pooling, or `null` when the
 * kernels cannot run.
 *
 * @param backend the wasm backend holding the tensors
 * @param dy the NHWC float32 gradient of the pooled output
 * @param x the NHWC float32 input of the pooling
 * @returns the input gradient, shaped as x, owned by the caller
 */
export function simdMaxPoolGrad2x2(backend: BackendWasm, dy: Info, x: Info): Info | null {
  const k = kernels(backend);
  if (k === null) return null;
  if (x.shape.length !== 4) throw new RangeError(`max_pool_grad_2x2: needs an NHWC input`);
  const [B, H, W, C] = x.shape as [number, number, number, number];
  expectShape("max_pool_grad_2x2", "dy", dy, [B, Math.floor(H / 2), Math.floor(W / 2), C]);
  const dx = checkedOutput(backend, x.shape, "float32");
  const inImage = 4 * H * W * C, outImage = 4 * Math.floor(H / 2) * Math.floor(W / 2) * C;
  poolByImages(k, "max_pool_grad_2x2", x.shape, [
    [offset(backend, x), inImage],
    [offset(backend, dy), outImage],
    [offset(backend, dx), inImage],
  ]);
  return dx;
}

/**
 * The gradient of average pooling whose windows tile the input (stride =
 * window, no padding), or `null` when the kernels cannot run.
 *
 * @param backend the wasm backend holding the tensors
 * @param dy the NHWC float32 gradient of the pooled output
 * @param shape the pooling input's NHWC shape
 * @param KH the window's height (and vertical stride)
 * @param KW the window's width (and horizontal stride)
 * @returns the input gradient, owned by the caller
 */
export function simdAvgPoolGradTiled(
  backend: BackendWasm,
  dy: Info,
  shape: [number, number, number, number],
  KH: number,
  KW: number,
): Info | null {
  const k = kernels(backend);
  if (k === null) return null;
  if (!(KH >= 1 && KW >= 1)) {
    throw new RangeError(`avg_pool_grad_tiled: needs a window of at least 1×1`);
  }
  const [B, H, W, C] = shape;
  expectShape("avg_pool_grad_tiled", "dy", dy, [B, Math.floor(H / KH), Math.floor(W / KW), C]);
  const dx = checkedOutput(backend, shape, "float32");
  poolByImages(k, "avg_pool_grad_tiled", shape, [
    [offset(backend, dy), 4 * Math.floor(H / KH) * Math.floor(W / KW) * C],
    [offset(backend, dx), 4 * H * W * C],
  ], [KH, KW]);
  return dx;
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

/** A pooling's geometry after the cpu backend's check of its output shape. */
function checkedPool(kernel: string, x: Info, attrs: Attrs): ConvInfo {
  checkRank4(kernel, { x });
  const info = poolInfo(x.shape, attrs);
  tf.util.assertNonNegativeIntegerDimensions(info.outShape);
  return info;
}

/**
 * Calls `visit` with each 2×2 stride-2 unpadded window of an NHWC input of
 * `shape`: the window's pooled position (its index among them) and the
 * offsets of channel 0 at its four positions, row-major.
 */
function forEachWindow(
  [B, H, W, C]: readonly number[],
  visit: (o: number, at: readonly number[]) => void,
): void {
  const OH = Math.floor(H! / 2), OW = Math.floor(W! / 2);
  for (let b = 0; b < B!; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const i00 = ((b * H! + 2 * oh) * W! + 2 * ow) * C!;
        visit((b * OH + oh) * OW + ow, [i00, i00 + C!, i00 + W! * C!, i00 + W! * C! + C!]);
      }
    }
  }
}

/**
 * The window position (0 to 3, row-major) of channel `c`'s first value
 * above all before it and above -Infinity, as the cpu backend picks it, or
 * -1 when none is (NaN never wins). `at`: the window's four offsets of
 * channel 0.
 */
function firstMaximum(x: Float32Array, at: readonly number[], c: number): number {
  let where = -1, best = -Infinity;
  for (let q = 0; q < 4; q++) {
    const v = x[at[q]! + c]!;
    if (v > best) {
      best = v;
      where = q;
    }
  }
  return where;
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
  shape: readonly number[],
): void {
  const C = shape[3]!;
  forEachWindow(shape, (o, at) => {
    for (let c = 0; c < C; c++) {
      // A window of NaN or -Infinity only passes no gradient.
      const where = firstMaximum(x, at, c);
      if (where >= 0) out[at[where]! + c] = g[o * C + c]!;
    }
  });
}

/**
 * The wasm `MaxPoolGrad` is a scalar loop over every input position and
 * window tap; this one finds each window's maximum once, for all channels
 * in a row, and scatters `dy` to it (the first maximum, as the cpu backend
 * picks it).
 */
const maxPoolGrad = unpacked<{ dy: Info; input: Info; output: Info }>(
  (backend, { dy, input, output }, attrs) => {
    if (input.dtype !== "float32" || dy.dtype !== "float32") {
      return run(backend, "MaxPoolGrad", { dy, input, output }, attrs);
    }
    const info = poolInfo(input.shape, attrs);
    const { B, H, W, C, OH, OW, sh, sw, pt, pl } = dims(info);
    const { effectiveFilterHeight: KH, effectiveFilterWidth: KW } = info;
    const twoByTwo = KH === 2 && KW === 2 && windowsTile(info);
    const fast = twoByTwo ? simdMaxPoolGrad2x2(backend, dy, input) : null;
    if (fast !== null) return fast;
    const dx = checkedOutput(backend, input.shape, "float32");
    const x = heap(backend, input), g = heap(backend, dy), out = heap(backend, dx);
    out.fill(0);
    if (twoByTwo) {
      maxPoolGrad2x2(x, g, out, input.shape);
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
  },
);

/**
 * The wasm `AvgPoolGrad` is a scalar loop like its `MaxPoolGrad`; this one
 * spreads each `dy` over its window, for all channels in a row. Windows that
 * reach into padding keep the shipped kernel (and its divisor).
 */
const avgPoolGrad = unpacked<{ dy: Info; input: Info }>((backend, { dy, input }, attrs) => {
  const info = poolInfo(input.shape, attrs);
  const p = info.padInfo;
  if (dy.dtype !== "float32" || p.top !== 0 || p.left !== 0 || p.bottom !== 0 || p.right !== 0) {
    return run(backend, "AvgPoolGrad", { dy, input }, attrs);
  }
  const { B, H, W, C, OH, OW, KH, KW, sh, sw } = dims(info);
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

/** Zeros of the pooled shape for an empty input or output; `null` for other calls. */
function emptyPool(backend: BackendWasm, { x }: Inputs, attrs: Attrs): Info | null {
  const outShape = poolInfo(x!.shape, attrs).outShape;
  return anyEmpty(x!) || tf.util.sizeFromShape(outShape) === 0 ? zeros(backend, outShape) : null;
}

/** Zeros of the input's shape for a gradient with an empty input; `null` for other calls. */
function emptyPoolGrad(backend: BackendWasm, { dy, input }: Inputs): Info | null {
  return anyEmpty(dy!, input!) ? zeros(backend, input!.shape) : null;
}

/**
 * Words of packed window positions per pooled position, for `C` channels:
 * 2 bits a channel, 16 channels a word.
 *
 * @param C the channels
 * @returns `⌈C / 16⌉`
 */
export function positionWords(C: number): number {
  return Math.ceil(C / 16);
}

/** The window position (0 to 3, row-major) of channel `c` in one pooled position's words. */
function positionOf(words: Int32Array, at: number, c: number): number {
  return (words[at + (c >> 4)]! >>> (2 * (c & 15))) & 3;
}

/**
 * 2×2 stride-2 unpadded max pooling of `x`, and where each maximum was: the
 * pooled values as `MaxPool` takes them, and per pooled position
 * {@linkcode positionWords} int32 words holding each channel's window
 * position (0 to 3, row-major) of its first maximum above -Infinity (0 when
 * none is), as `MaxPoolGrad` picks it.
 *
 * @param backend the wasm backend holding the tensors
 * @param x the NHWC float32 input
 * @returns the pooled `[B, ⌊H/2⌋, ⌊W/2⌋, C]` values and the `[B, ⌊H/2⌋, ⌊W/2⌋, ⌈C/16⌉]` positions, owned by the caller
 */
export function maxPool2x2Positions(backend: BackendWasm, x: Info): [Info, Info] {
  checkRank4("max_pool_2x2_idx", { x });
  checkFloat("max_pool_2x2_idx", x);
  const [B, H, W, C] = x.shape as [number, number, number, number];
  const OH = Math.floor(H / 2), OW = Math.floor(W / 2), NW = positionWords(C);
  const y = checkedOutput(backend, [B, OH, OW, C], "float32");
  const idx = checkedOutput(backend, [B, OH, OW, NW], "int32");
  if (B * OH * OW * C === 0) return [y, idx];
  const k = kernels(backend);
  if (k !== null) {
    poolByImages(k, "max_pool_2x2_idx", x.shape, [
      [offset(backend, x), 4 * H * W * C],
      [offset(backend, y), 4 * OH * OW * C],
      [offset(backend, idx), 4 * OH * OW * NW],
    ]);
    return [y, idx];
  }
  const v = heap(backend, x), out = heap(backend, y), words = view(backend, idx) as Int32Array;
  words.fill(0);
  forEachWindow(x.shape, (o, at) => {
    for (let c = 0; c < C; c++) {
      const where = firstMaximum(v, at, c);
      out[o * C + c] = where < 0 ? -Infinity : v[at[where]! + c]!;
      words[o * NW + (c >> 4)]! |= Math.max(where, 0) << (2 * (c & 15));
    }
  });
  return [y, idx];
}

/**
 * {@linkcode MAX_POOL_SCATTER_KERNEL}: the gradient of 2×2 stride-2
 * unpadded max pooling from where its maxima were. `dy` goes to the window
 * position `indices` names where the pooled value `y` is above -Infinity;
 * every other position of the `inputShape` output gets 0. With positions
 * from {@linkcode maxPool2x2Positions}, the values are `MaxPoolGrad`'s.
 */
const maxPoolScatter = unpacked<{ dy: Info; y: Info; indices: Info }>(
  (backend, { dy, y, indices }, attrs) => {
    const shape = attrs.inputShape as [number, number, number, number];
    const [, H, W, C] = shape;
    const OH = Math.floor(H / 2), OW = Math.floor(W / 2), NW = positionWords(C);
    const dz = checkedOutput(backend, shape, "float32");
    const k = kernels(backend);
    if (k !== null) {
      poolByImages(k, "max_pool_scatter_2x2", shape, [
        [offset(backend, dy), 4 * OH * OW * C],
        [offset(backend, y), 4 * OH * OW * C],
        [offset(backend, indices), 4 * OH * OW * NW],
        [offset(backend, dz), 4 * H * W * C],
      ]);
      return dz;
    }
    const g = heap(backend, dy), v = heap(backend, y), out = heap(backend, dz);
    const words = view(backend, indices) as Int32Array;
    out.fill(0);
    forEachWindow(shape, (o, at) => {
      for (let c = 0; c < C; c++) {
        if (v[o * C + c]! > -Infinity) out[at[positionOf(words, o * NW, c)]! + c] = g[o * C + c]!;
      }
    });
    return dz;
  },
);

/** The checks of {@linkcode MAX_POOL_SCATTER_KERNEL}: float32 `dy` and `y` and int32 `indices` of the shapes `inputShape` pools to. */
function validateScatter(inputs: Inputs, attrs: Attrs): void {
  const name = MAX_POOL_SCATTER_KERNEL;
  const { dy, y, indices } = inputs;
  if (dy === undefined || y === undefined || indices === undefined) {
    throw new Error(`${name} on wasm needs the inputs dy, y and indices`);
  }
  const [B, H, W, C] = shape4(name, "inputShape", attrs.inputShape);
  checkFloat(name, dy, y);
  if (indices.dtype !== "int32") {
    throw new TypeError(`${name} on wasm needs int32 indices: got "${indices.dtype}"`);
  }
  const pooled = [B, Math.floor(H / 2), Math.floor(W / 2), C];
  checkShapeIs(name, "dy", dy, pooled);
  checkShapeIs(name, "y", y, pooled);
  checkShapeIs(name, "indices", indices, [B, pooled[1]!, pooled[2]!, positionWords(C)]);
}

/** The checks of a pooling gradient: a rank-4 `dy` of the shape that pooling `input` gives. */
function validatePoolGrad(name: string): NonNullable<WasmKernel["validate"]> {
  return ({ dy, input }, attrs) => {
    checkRank4(name, { dy });
    checkShapeIs(name, "dy", dy!, checkedPool(name, input!, attrs).outShape);
  };
}

/**
 * The pooling kernels: `MaxPool`, `AvgPool`, `MaxPoolGrad`, `AvgPoolGrad`
 * (all replaced), {@linkcode MAX_POOL_SCATTER_KERNEL} (added).
 */
export const POOL_KERNELS: readonly WasmKernel[] = [
  {
    name: MAX_POOL_SCATTER_KERNEL,
    kind: "added",
    kernelFunc: maxPoolScatter,
    validate: validateScatter,
    empty: (backend, _inputs, attrs) => {
      // No input, or no window: every value is 0.
      const shape = attrs.inputShape as number[];
      return tf.util.sizeFromShape(shape) === 0 || shape[1]! < 2 || shape[2]! < 2
        ? zeros(backend, shape)
        : null;
    },
  },
  {
    name: "MaxPool",
    kind: "replaced",
    kernelFunc: maxPool,
    validate: ({ x }, attrs) => void checkedPool("MaxPool", x!, attrs),
    empty: emptyPool,
  },
  {
    name: "AvgPool",
    kind: "replaced",
    kernelFunc: avgPool,
    validate: ({ x }, attrs) => void checkedPool("AvgPool", x!, attrs),
    empty: emptyPool,
  },
  {
    name: "MaxPoolGrad",
    kind: "replaced",
    kernelFunc: maxPoolGrad,
    validate: validatePoolGrad("MaxPoolGrad"),
    empty: emptyPoolGrad,
  },
  {
    name: "AvgPoolGrad",
    kind: "replaced",
    kernelFunc: avgPoolGrad,
    validate: validatePoolGrad("AvgPoolGrad"),
    empty: emptyPoolGrad,
  },
];
