/**
 * Training ops on the compiled SIMD kernels of {@linkcode simdKernels}, for
 * NHWC float32 tensors on the wasm backend: 2-D convolutions and their
 * gradients, bias addition, sums over leading axes, and the 2×2 max-pooling
 * gradient. Each function returns `null` when the kernels cannot run here,
 * so the caller falls back to its own path.
 *
 * All three are sums over filter taps on a zero-padded copy of the input
 * (no copy when the convolution does not pad):
 * - forward: `y[p, o] = Σₖ x[p, k] · W[k, o]`, tiles of 4 output positions × 8 channels
 *   (a one-channel input with stride 1: 4 columns × every output channel, up to 8);
 * - filter gradient: `dW[k, o] = Σₚ x[p, k] · dy[p, o]`, tiles of 4 taps × 8 channels;
 * - input gradient: `dy · Wᵀ` scattered back onto the input (col2im), a
 *   filter row of taps at a time, which handles strides and dilations.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type BackendWasm, getThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { type SimdExports, type SimdKernels, simdKernels } from "../simd/module.ts";

type Info = tf.TensorInfo;
type ConvInfo = tf.backend_util.Conv2DInfo;

let enabled = true;

/**
 * Turns the compiled kernels on or off for every wasm backend in this
 * process (off: the callers' JavaScript and XNNPACK paths run instead).
 *
 * @param on whether to use them
 */
export function setSimdKernelsEnabled(on: boolean): void {
  enabled = on;
}

/** Whether the compiled kernels are on and can run on this backend. */
export function simdKernelsAvailable(backend: BackendWasm): boolean {
  return enabled && simdKernels(backend) !== null;
}

/** Whether the compiled kernels are on here and split calls over more threads than XNNPACK's pool. */
export function simdThreadsBeyondXnnpack(backend: BackendWasm): boolean {
  const k = kernels(backend);
  return k !== null && k.threads > getThreadsCount();
}

/** The kernels, with sleeping workers woken while the caller prepares its job. */
function kernels(backend: BackendWasm): SimdKernels | null {
  const k = enabled ? simdKernels(backend) : null;
  k?.warm();
  return k;
}

/**
 * Splits `[0, n)` into up to `parts` ranges of near-equal size whose
 * boundaries are multiples of `align` (the last range takes the rest).
 */
function ranges(n: number, parts: number, align = 1): [number, number][] {
  const units = Math.ceil(n / align), count = Math.max(1, Math.min(parts, units));
  const out: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const from = Math.min(n, Math.round((units * i) / count) * align);
    const to = i === count - 1 ? n : Math.min(n, Math.round((units * (i + 1)) / count) * align);
    if (to > from) out.push([from, to]);
  }
  return out;
}

/** Relative sizes of the jobs in one thread's share of a heavy call, largest first. */
const SHARE_WEIGHTS = [4, 3, 2, 1];

/**
 * Splits `[0, n)` for a heavy call (a convolution): one share per thread,
 * each cut into jobs of decreasing size ({@linkcode SHARE_WEIGHTS}), with
 * boundaries at multiples of `align`. Threads start on their own share and
 * then take the others' from the end (the pool's claim order), so whoever
 * finishes first steals the smallest jobs and the threads end close
 * together; with jobs of one size, the last one is an eighth of the call on
 * two threads. One range on one thread.
 */
function shares(k: SimdKernels, n: number, align = 1): [number, number][] {
  if (k.threads === 1 || n === 0) return [[0, n]];
  const units = Math.ceil(n / align), total = SHARE_WEIGHTS.reduce((a, b) => a + b, 0);
  const cuts = new Set<number>([0]);
  for (let t = 0; t < k.threads; t++) {
    let at = (units * t) / k.threads;
    const size = units / k.threads;
    for (const w of SHARE_WEIGHTS) {
      at += (size * w) / total;
      cuts.add(Math.min(units, Math.round(at)));
    }
  }
  const bounds = [...cuts].sort((a, b) => a - b).map((u) => Math.min(n, u * align));
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const to = i + 2 === bounds.length ? n : bounds[i + 1]!;
    if (to > bounds[i]!) out.push([bounds[i]!, to]);
  }
  return out;
}

/**
 * Ranges of images for the threads: a few per thread when the job touches at
 * least 64 Ki elements, else one range (waking a thread costs more).
 */
function byImages(k: SimdKernels, B: number, elements: number): [number, number][] {
  return ranges(B, elements >= 65536 ? k.chunks : 1);
}

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

/** Runs an elementwise kernel `fn(...pointers, count)` over `n` floats in vector-aligned ranges. */
function elementwise(
  k: SimdKernels,
  fn: keyof SimdExports,
  n: number,
  pointers: number[],
  extra: number[] = [],
): void {
  k.parallel(
    fn,
    ranges(n, n >= 65536 ? k.chunks : 1, 4).map((
      [i0, i1],
    ) => [...pointers.map((ptr) => ptr + 4 * i0), i1 - i0, ...extra]),
  );
}

/**
 * A new float32 tensor shaped as `inputs[0]`, computed by the elementwise
 * kernel `fn(...inputs, out, count, ...extra)`, or `null` when the kernels
 * cannot run.
 */
function mapped(
  backend: BackendWasm,
  fn: keyof SimdExports,
  inputs: Info[],
  extra: number[] = [],
): Info | null {
  const k = kernels(backend);
  if (k === null) return null;
  for (const t of inputs.slice(1)) expectShape(fn, "an input", t, inputs[0]!.shape);
  const out = checkedOutput(backend, inputs[0]!.shape, "float32");
  const pointers = [...inputs, out].map((t) => offset(backend, t));
  elementwise(k, fn, tf.util.sizeFromShape(out.shape), pointers, extra);
  return out;
}

/** The float32 bits of `lo` and `hi`, as kernels take floats among integer arguments. */
function floatBits(lo: number, hi: number): number[] {
  return Array.from(new Int32Array(new Float32Array([lo, hi]).buffer));
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
 * A new tensor on the heap, after the checks the cpu backend makes of an
 * output shape (a too-small input gives a negative size, which the cpu
 * backend rejects with this same error) and a check that the heap had room:
 * the backend's allocator gives address 0 when it has none, and a kernel
 * writing there would overwrite the heap's own bookkeeping.
 *
 * @param backend the wasm backend
 * @param shape the output's shape
 * @param dtype its dtype
 * @returns the output, owned by the caller
 * @throws {Error} for a shape with a negative or fractional size (cpu's message)
 * @throws {RangeError} when the heap has no room for it
 */
export function checkedOutput(
  backend: BackendWasm,
  shape: number[],
  dtype: tf.DataType = "float32",
): Info {
  tf.util.assertNonNegativeIntegerDimensions(shape);
  const bytes = tf.util.sizeFromShape(shape) * (dtype === "bool" ? 1 : 4);
  if (bytes >= 2 ** 32) {
    throw new RangeError(
      `Cannot allocate a tensor of shape [${shape}] (${bytes} bytes): the wasm heap holds at most 4 GiB`,
    );
  }
  const out = backend.makeOutput(shape, dtype);
  if (bytes > 0 && offset(backend, out) === 0) {
    backend.disposeData(out.dataId);
    throw new RangeError(
      `Cannot allocate a tensor of shape [${shape}] (${bytes} bytes): the wasm heap is full`,
    );
  }
  return out;
}

/**
 * Throws unless `info` has `shape`: a compiled kernel reads and writes as
 * many elements as its geometry says, with no bounds of its own.
 */
function expectShape(kernel: string, what: string, info: Info, shape: readonly number[]): void {
  if (!tf.util.arraysEqual(info.shape, shape as number[])) {
    throw new RangeError(
      `${kernel}: ${what} has shape [${info.shape}]: its geometry needs [${shape}]`,
    );
  }
}

/**
 * The byte offset of a tensor's data on the heap, as an unsigned number: a
 * heap past 2 GiB has offsets that read as negative int32.
 */
function offset(backend: BackendWasm, info: Info): number {
  const data = (backend as unknown as { dataIdMap: { get(id: object): { memoryOffset: number } } })
    .dataIdMap.get(info.dataId);
  return data.memoryOffset >>> 0;
}

/** Scratch allocations on the heap, freed together. */
class Scratch {
  #ptrs: number[] = [];
  constructor(private readonly k: SimdKernels) {}
  alloc(elements: number): number {
    const ptr = this.k.malloc(Math.max(1, elements) * 4);
    if (ptr === 0) throw new RangeError(`Cannot allocate ${elements * 4} bytes on the wasm heap`);
    this.#ptrs.push(ptr);
    return ptr;
  }
  free(): void {
    for (const p of this.#ptrs) this.k.free(p);
    this.#ptrs = [];
  }
}

interface Padded {
  XH: number;
  XW: number;
  top: number;
  left: number;
}

/**
 * The zero-padded input's size: the padding on each side, and at least what
 * the windows reach ((out − 1)·stride + window): a numeric padding gives the
 * output size of a square filter even for a non-square one (tfjs computes
 * it from the filter's height alone), and the cpu backend reads zeros past
 * the edge there.
 */
function padded(info: ConvInfo): Padded {
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
function paddedInput(
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

/** Copies the NHWC tensor at `x` into `dst` zero-padded to `XH × XW` at (top, left), split by images. */
function padCopy(
  k: SimdKernels,
  x: number,
  [B, H, W, C]: [number, number, number, number],
  dst: number,
  { XH, XW, top, left }: Padded,
): void {
  k.parallel(
    "pad_copy",
    byImages(k, B, B * XH * XW * C).map(([b0, b1]) => [
      x + 4 * b0 * H * W * C,
      b1 - b0,
      H,
      W,
      C,
      dst + 4 * b0 * XH * XW * C,
      XH,
      XW,
      top,
      left,
    ]),
  );
}

/** The tap offsets `(kh·dh·XW + kw·dw)·C + c`, in filter order. */
function tapOffsets(k: SimdKernels, scratch: Scratch, info: ConvInfo, XW: number): number {
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
function windowBases(
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

/**
 * A sum over rows `[0, rows)` of `size` floats into `out`, by a kernel that
 * adds rows `[r0, r1)` into a zeroed buffer: `jobs(r0, r1, buffer)`
 * gives one call's arguments. Each thread sums its own range of rows into
 * its own buffer (the first is `out` itself); the buffers are added at the
 * end. `work` is the multiply-adds in all rows, `minRows` the fewest rows a
 * part may have.
 */
function sumByRows(
  k: SimdKernels,
  scratch: Scratch,
  fn: keyof SimdExports,
  out: number,
  size: number,
  rows: number,
  work: number,
  minRows: number,
  jobs: (r0: number, r1: number, buffer: number) => number[],
): void {
  // Split the rows when there is work enough for every thread. Each part
  // sums into its own buffer: a few parts per thread while those are small
  // (a late thread then takes fewer), one per thread otherwise.
  const smallest = rows / k.threads * SHARE_WEIGHTS.at(-1)! /
    SHARE_WEIGHTS.reduce((a, b) => a + b, 0);
  const parts = rows < minRows || work < 1 << 20
    ? [[0, rows] as [number, number]]
    : size <= 65536 && smallest >= minRows
    ? shares(k, rows)
    : ranges(rows, Math.min(size <= 65536 ? k.chunks : k.threads, Math.floor(rows / minRows)));
  const buffers = parts.map((_, i) => (i === 0 ? out : scratch.alloc(size)));
  for (const b of buffers) k.fn.zero(b, size);
  if (rows === 0 || size === 0) return;
  k.parallel(fn, parts.map(([r0, r1], i) => jobs(r0, r1, buffers[i]!)));
  for (const b of buffers.slice(1)) elementwise(k, "add_into", size, [out, b]);
}

/**
 * `out[k·O + o] = Σ_{p < P} x[base[p] + koff[k]] · dy[p·O + o]` (the
 * filter-gradient kernel).
 */
function sumOverRows(
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

/** One input channel, stride 1, no dilation: a first layer on grey images. */
function oneChannelStride1(info: ConvInfo): boolean {
  return info.inChannels === 1 && info.strideHeight === 1 && info.strideWidth === 1 &&
    info.dilationHeight === 1 && info.dilationWidth === 1;
}

/** The activations a fused convolution can apply, by their code in conv_taps. */
const ACTIVATIONS = ["linear", "relu", "relu6"] as const;

/** What a fused convolution adds to `x ⊛ filter`: a bias per output channel, then an activation. */
export interface ConvEpilogue {
  /** One value per output channel (none when absent). */
  bias?: Info | undefined;
  /** @default {"linear"} */
  activation?: string;
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
    if (oneChannelStride1(info) && O >= 1 && O <= 8 && OW >= 4 && bo === 0 && act === 0) {
      // One input channel: tiles of 4 columns × every output channel.
      const { filterHeight: KH, filterWidth: KW } = info, w = offset(backend, filter);
      const yo = offset(backend, y);
      k.parallel(
        "conv1_taps",
        (P * O >= 65536 ? shares(k, B * OH) : ranges(B * OH, 1)).map((
          [r0, r1],
        ) => [xp, pad.XH, pad.XW, OH, OW, KH, KW, w, O, yo, r0, r1]),
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
  const { batchSize: B, outHeight: OH, outWidth: OW, outChannels: O } = info;
  const { filterHeight: KH, filterWidth: KW, inChannels: C } = info;
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
      const rows = B * OH, OWP = Math.ceil(OW / 4) * 4, tmp = 8 * O * OWP + K * O * 4;
      const dyo = offset(backend, dy);
      sumByRows(k, scratch, "conv1_filter_grad", offset(backend, dw), K * O, rows, P * K * O, 4, (
        r0,
        r1,
        buffer,
      ) => [xp, pad.XH, pad.XW, dyo, OH, OW, KH, KW, O, buffer, scratch.alloc(tmp), r0, r1]);
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
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C } = info;
  const { outHeight: OH, outWidth: OW, filterHeight: KH, filterWidth: KW } = info;
  expectShape("dw_filter_grad", "x", x, info.inShape);
  expectShape("dw_filter_grad", "dy", dy, info.outShape);
  const dw = checkedOutput(backend, [KH, KW, C, 1], "float32");
  const scratch = new Scratch(k);
  try {
    const xo = offset(backend, x), dyo = offset(backend, dy);
    const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dwi } = info;
    const { top, left } = info.padInfo;
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
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C } = info;
  const { filterHeight: KH, filterWidth: KW, outChannels: O } = info;
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

/** gcd(c, 4) rows of c floats make whole 4-float vectors: m = 4 / gcd(c, 4) rows at a time. */
function rowsPerVectorRow(c: number): number {
  return c % 4 === 0 ? 1 : c % 2 === 0 ? 2 : 4;
}

/**
 * `x + bias`, `x − bias` or `x · bias` for a bias along the last axis (or a
 * single value), or `null` when the kernels cannot run. The results are the
 * cpu backend's to the bit (`x − bias` is computed as `x + (−bias)`, the same
 * float result).
 *
 * @param backend the wasm backend holding the tensors
 * @param x a float32 tensor whose last axis has `bias.length` entries
 * @param bias the float32 bias
 * @param op the operation
 * @returns the result, shaped as x, owned by the caller
 */
export function simdBiasAdd(
  backend: BackendWasm,
  x: Info,
  bias: Info,
  op: "add" | "sub" | "mul" = "add",
): Info | null {
  const k = kernels(backend);
  if (k === null) return null;
  const C = tf.util.sizeFromShape(bias.shape), n = tf.util.sizeFromShape(x.shape);
  if (C === 0 || n % C !== 0) return null;
  const out = checkedOutput(backend, x.shape, "float32");
  const m = rowsPerVectorRow(C), L = C * m, rows = Math.floor(n / L);
  const scratch = new Scratch(k);
  try {
    const pattern = scratch.alloc(L);
    const f32 = k.f32(), b = offset(backend, bias) >>> 2;
    const sign = op === "sub" ? -1 : 1;
    for (let j = 0; j < L; j++) f32[(pattern >>> 2) + j] = sign * f32[b + (j % C)]!;
    const xo = offset(backend, x), oo = offset(backend, out);
    k.parallel(
      "bias_add",
      ranges(rows, rows >= 4096 ? k.chunks : 1).map((
        [r0, r1],
      ) => [xo + 4 * r0 * L, pattern, L, r1 - r0, oo + 4 * r0 * L, op === "mul" ? 1 : 0]),
    );
    for (let i = rows * L; i < n; i++) {
      const v = f32[(xo >>> 2) + i]!, w = sign * f32[b + (i % C)]!;
      f32[(oo >>> 2) + i] = op === "mul" ? v * w : v + w;
    }
  } finally {
    scratch.free();
  }
  return out;
}

/**
 * Batch normalization along the last axis, `(x − mean) · scale / √(variance
 * + ε) + offset`, or `null` when the kernels cannot run or a parameter is not
 * one value per channel.
 *
 * @param backend the wasm backend holding the tensors
 * @param x a float32 tensor
 * @param mean the channels' means
 * @param variance the channels' variances
 * @param beta the channels' offsets (0 when absent)
 * @param gamma the channels' scales (1 when absent)
 * @param epsilon added to the variance
 * @returns the normalized tensor, owned by the caller
 */
export function simdBatchNorm(
  backend: BackendWasm,
  x: Info,
  mean: Info,
  variance: Info,
  beta: Info | undefined,
  gamma: Info | undefined,
  epsilon: number,
): Info | null {
  const k = kernels(backend);
  if (k === null) return null;
  const C = x.shape.at(-1) ?? 0, n = tf.util.sizeFromShape(x.shape);
  const params = [mean, variance, beta, gamma];
  if (C === 0 || params.some((p) => p !== undefined && tf.util.sizeFromShape(p.shape) !== C)) {
    return null;
  }
  const out = checkedOutput(backend, x.shape, "float32");
  const m = rowsPerVectorRow(C), L = C * m, rows = Math.floor(n / L);
  const scratch = new Scratch(k);
  try {
    const f32 = k.f32();
    const at = (p: Info | undefined) => (p === undefined ? -1 : offset(backend, p) >>> 2);
    const [mo, vo, oo, so] = params.map(at) as [number, number, number, number];
    // Per channel, in float64 as the cpu backend computes: a = scale / √(var + ε).
    const a = new Float32Array(C), mu = new Float32Array(C), off = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      a[c] = (so < 0 ? 1 : f32[so + c]!) / Math.sqrt(f32[vo + c]! + epsilon);
      mu[c] = f32[mo + c]!;
      off[c] = oo < 0 ? 0 : f32[oo + c]!;
    }
    // Allocate first, then take a new view: a malloc that grows the heap
    // detaches the old buffer, and writes through a stale view are lost.
    const tiled = [mu, a, off].map(() => scratch.alloc(L)) as [number, number, number];
    const heap = k.f32();
    [mu, a, off].forEach((v, t) => {
      for (let j = 0; j < L; j++) heap[(tiled[t]! >>> 2) + j] = v[j % C]!;
    });
    const xo = offset(backend, x), yo = offset(backend, out);
    k.parallel(
      "batch_norm",
      ranges(rows, rows * L >= 65536 ? k.chunks : 1).map((
        [r0, r1],
      ) => [xo + 4 * r0 * L, ...tiled, L, r1 - r0, yo + 4 * r0 * L]),
    );
    const v = k.f32();
    for (let i = rows * L; i < n; i++) {
      const c = i % C;
      v[(yo >>> 2) + i] = (v[(xo >>> 2) + i]! - mu[c]!) * a[c]! + off[c]!;
    }
  } finally {
    scratch.free();
  }
  return out;
}

/**
 * `x` clipped to `[lo, hi]` (NaN and -0 kept, as the cpu backend does), or
 * `null` when the kernels cannot run.
 *
 * @param backend the wasm backend holding the tensor
 * @param x a float32 tensor
 * @param lo the lower bound
 * @param hi the upper bound
 * @returns the clipped tensor, owned by the caller
 */
export function simdClip(backend: BackendWasm, x: Info, lo: number, hi: number): Info | null {
  return mapped(backend, "clip", [x], floatBits(lo, hi));
}

/**
 * ClipByValue's gradient, `lo ≤ x ≤ hi ? dy : 0` (tfjs's `where`), or `null`
 * when the kernels cannot run.
 *
 * @param backend the wasm backend holding the tensors
 * @param x the float32 input of the clip
 * @param dy the float32 gradient of its output, x's shape
 * @param lo the lower bound
 * @param hi the upper bound
 * @returns the gradient of x, owned by the caller
 */
export function simdClipGrad(
  backend: BackendWasm,
  x: Info,
  dy: Info,
  lo: number,
  hi: number,
): Info | null {
  return mapped(backend, "clip_grad", [x, dy], floatBits(lo, hi));
}

/**
 * An NHWC tensor zero-padded along height and width, or `null` when the
 * kernels cannot run.
 *
 * @param backend the wasm backend holding the tensor
 * @param x the NHWC float32 input
 * @param top rows before
 * @param bottom rows after
 * @param left columns before
 * @param right columns after
 * @returns the `[B, H + top + bottom, W + left + right, C]` output, owned by the caller
 */
export function simdPadHW(
  backend: BackendWasm,
  x: Info,
  top: number,
  bottom: number,
  left: number,
  right: number,
): Info | null {
  const k = kernels(backend);
  if (k === null) return null;
  const pads = [top, bottom, left, right];
  if (x.shape.length !== 4 || !pads.every((p) => Number.isInteger(p) && p >= 0)) {
    throw new RangeError(
      `pad_copy: needs an NHWC input and whole paddings >= 0: got [${x.shape}] and [${pads}]`,
    );
  }
  const [B, H, W, C] = x.shape as [number, number, number, number];
  const XH = H + top + bottom, XW = W + left + right;
  const out = checkedOutput(backend, [B, XH, XW, C], "float32");
  padCopy(k, offset(backend, x), [B, H, W, C], offset(backend, out), { XH, XW, top, left });
  return out;
}

/**
 * The column sums of x read as `[rows, cols]` (a sum over leading axes),
 * times `scale`, or `null` when the kernels cannot run.
 *
 * @param backend the wasm backend holding the tensor
 * @param x the float32 tensor
 * @param rows the product of the leading axes summed over
 * @param shape the output's shape (`cols` entries)
 * @param scale 1 for a sum, `1 / rows` for a mean
 * @returns the sums, owned by the caller
 */
export function simdSumLeading(
  backend: BackendWasm,
  x: Info,
  rows: number,
  shape: number[],
  scale: number,
): Info | null {
  const k = kernels(backend);
  if (k === null) return null;
  const cols = tf.util.sizeFromShape(shape);
  if (cols === 0 || rows * cols !== tf.util.sizeFromShape(x.shape)) return null;
  const m = rowsPerVectorRow(cols), L = cols * m, vrows = Math.floor(rows / m);
  const out = checkedOutput(backend, shape, "float32");
  const scratch = new Scratch(k);
  try {
    const xo = offset(backend, x);
    const parts = ranges(vrows, vrows * L >= 65536 ? k.chunks : 1, 64);
    const bufs = parts.map(() => ({ tmp: scratch.alloc(L), acc: scratch.alloc(2 * L) }));
    for (const { acc } of bufs) new Float64Array(k.f32().buffer, acc, L).fill(0);
    k.parallel(
      "sum_rows",
      parts.map(([r0, r1], i) => [xo + 4 * r0 * L, L, r1 - r0, bufs[i]!.tmp, bufs[i]!.acc]),
    );
    const f32 = k.f32();
    const total = new Float64Array(cols);
    for (const { acc } of bufs) {
      const sums = new Float64Array(f32.buffer, acc, L);
      for (let j = 0; j < L; j++) total[j % cols]! += sums[j]!;
    }
    for (let i = vrows * L; i < rows * cols; i++) total[i % cols]! += f32[(xo >>> 2) + i]!;
    const o = offset(backend, out) >>> 2;
    for (let c = 0; c < cols; c++) f32[o + c] = total[c]! * scale;
  } finally {
    scratch.free();
  }
  return out;
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
 * The ReLU gradient `dy · step(x)` in one pass, or `null` when the kernels
 * cannot run.
 *
 * @param backend the wasm backend holding the tensors
 * @param x the float32 input of the ReLU
 * @param dy the float32 gradient of its output, shaped as x
 * @returns the input gradient, owned by the caller
 */
export function simdReluGrad(backend: BackendWasm, x: Info, dy: Info): Info | null {
  return mapped(backend, "relu_grad", [x, dy]);
}

/**
 * `a · b` element by element for two float32 tensors of one shape (the cpu
 * backend's products to the bit), or `null` when the kernels cannot run.
 *
 * @param backend the wasm backend holding the tensors
 * @param a a float32 tensor
 * @param b a float32 tensor of a's shape
 * @returns the products, owned by the caller
 */
export function simdMul(backend: BackendWasm, a: Info, b: Info): Info | null {
  return mapped(backend, "mul", [a, b]);
}

/**
 * `x · x`, or `null` when the kernels cannot run.
 *
 * @param backend the wasm backend holding the tensor
 * @param x a float32 tensor
 * @returns the squares, owned by the caller
 */
export function simdSquare(backend: BackendWasm, x: Info): Info | null {
  return mapped(backend, "square", [x]);
}

/**
 * `max(0, x)`, or `null` when the kernels cannot run.
 *
 * @param backend the wasm backend holding the tensor
 * @param x a float32 tensor
 * @returns the ReLU of x, owned by the caller
 */
export function simdRelu(backend: BackendWasm, x: Info): Info | null {
  return mapped(backend, "relu", [x]);
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

/**
 * `op(a) · op(b)` for float32 matrices (rank 2, or rank 3 with a batch of
 * one), where op transposes when asked; `null` when the kernels cannot run or
 * the case is not one of these (both transposed, or a batch). A product is a
 * 1×1 convolution: `a · b` and `a · bᵀ` run the forward kernel on `b` packed
 * by rows of output columns, `aᵀ · b` the filter-gradient kernel.
 *
 * @param backend the wasm backend holding the tensors
 * @param a the left operand
 * @param b the right operand
 * @param transposeA use `aᵀ`
 * @param transposeB use `bᵀ`
 * @returns the product, owned by the caller
 */
export function simdMatMul(
  backend: BackendWasm,
  a: Info,
  b: Info,
  transposeA: boolean,
  transposeB: boolean,
): Info | null {
  const k = kernels(backend);
  if (k === null || (transposeA && transposeB)) return null;
  if (a.dtype !== "float32" || b.dtype !== "float32") return null;
  if (a.shape.length !== b.shape.length || a.shape.length < 2 || a.shape.length > 3) return null;
  if (a.shape.length === 3 && (a.shape[0] !== 1 || b.shape[0] !== 1)) return null;
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const M = transposeA ? ac : ar, K = transposeA ? ar : ac;
  const N = transposeB ? br : bc;
  if ((transposeB ? bc : br) !== K) return null;
  const out = checkedOutput(backend, [...a.shape.slice(0, -2), M, N], "float32");
  const scratch = new Scratch(k);
  try {
    const ao = offset(backend, a), bo = offset(backend, b), oo = offset(backend, out);
    if (M * N === 0) return out;
    if (K === 0) {
      k.fn.zero(oo, M * N);
      return out;
    }
    if (transposeA) {
      // out[m, n] = Σ_r a[r, m] · b[r, n]: taps m over rows r of a.
      const base = scratch.alloc(K), koff = scratch.alloc(M);
      k.fn.bases3(base, 1, 1, K, 0, 0, M, 0);
      k.fn.bases3(koff, 1, 1, M, 0, 0, 1, 0);
      sumOverRows(k, scratch, ao, base, koff, M, bo, N, oo, K);
      return out;
    }
    // out[m, n] = Σ_k a[m, k] · w[k, n], w = b or bᵀ packed to rows of NP floats.
    const NP = Math.ceil(N / 8) * 8;
    let w = bo;
    if (transposeB || NP !== N) {
      w = scratch.alloc(K * NP);
      k.fn.pack_rows(bo, K, N, transposeB ? 1 : N, transposeB ? K : 1, w, NP);
    }
    const base = scratch.alloc(M), koff = scratch.alloc(K);
    k.fn.bases3(base, 1, 1, M, 0, 0, K, 0);
    k.fn.bases3(koff, 1, 1, K, 0, 0, 1, 0);
    k.parallel(
      "conv_taps",
      shares(k, M, 4).map(([m0, m1]) => [ao, base, koff, K, w, N, NP, oo, m0, m1, 0, 0]),
    );
  } finally {
    scratch.free();
  }
  return out;
}
