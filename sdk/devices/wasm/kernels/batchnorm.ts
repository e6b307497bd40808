/**
 * Batch normalization on the wasm backend: `FusedBatchNorm` (replaced: the
 * shipped kernel is a scalar loop, 39% of a MobileNetV2 forward pass) on
 * the compiled kernel when every parameter holds one value per channel;
 * and the three kernels of training mode this project adds,
 * `ZooBatchNormVariance`, `ZooBatchNormGradSums` and `ZooBatchNormGradInput`
 * (the variance, the gradient's sums, the input gradient: one pass each over
 * the activations, where tfjs's ops take two to four), which the training
 * loop runs where the backend has them.
 *
 * @example Normalize with given statistics
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { initWasmBackend } from "../backend.ts";
 * await initWasmBackend({ threads: false });
 * const x = tf.tensor2d([1, 10, 3, 20], [2, 2]);
 * const y = tf.batchNorm(x, [2, 15], [1, 25], [0, 1], [1, 2], 0);
 * assertEquals(await y.data(), new Float32Array([-1, -1, 1, 3]));
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { checkedOutput, checkFloat, heap, type Info, offset, Scratch } from "../_heap.ts";
import { kernels, ranges, rowsPerVectorRow } from "../_compiled.ts";
import { fastOr, unpacked, type WasmKernel } from "../_kernel.ts";
import type { SimdKernels } from "../simd/module.ts";
import { BATCH_NORM_KERNELS } from "../../kernels.ts";

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

/**
 * Throws unless `x` is a float32 tensor with channels last and every vector
 * of `vectors` holds `times` values per channel, as float32.
 */
function checkPerChannel(
  kernel: string,
  x: Info,
  vectors: [name: string, info: Info, times: number][],
): number {
  checkFloat(kernel, x, ...vectors.map((v) => v[1]));
  const C = x.shape.at(-1) ?? 0;
  for (const [name, info, times] of vectors) {
    if (tf.util.sizeFromShape(info.shape) !== times * C) {
      throw new Error(
        `${kernel}: ${name} has shape [${info.shape}]: x has ${C} channels, so it needs ${
          times * C
        } values`,
      );
    }
  }
  return C;
}

/** Throws as cpu's ops do when `dy` is not shaped as `x` (they cannot broadcast it). */
function sameShape(kernel: string, x: Info, dy: Info): void {
  checkFloat(kernel, dy);
  if (!tf.util.arraysEqual(x.shape, dy.shape)) {
    throw new Error(`${kernel}: dy has shape [${dy.shape}]; it needs x's, [${x.shape}]`);
  }
}

/** Each channel's values of a per-channel vector, repeated to `L` floats on the heap. */
function tiled(k: SimdKernels, scratch: Scratch, values: ArrayLike<number>, L: number): number {
  const at = scratch.alloc(L);
  const f32 = k.f32(), C = values.length;
  for (let j = 0; j < L; j++) f32[(at >>> 2) + j] = values[j % C]!;
  return at;
}

/**
 * Per channel over the rows of `x` (every axis but the last): without `dy`,
 * `Σ (x − mean)²`; with it, `Σ dy` then `Σ dy · (x − mean)` (2C values).
 * Float64 totals of float32 blocks of 64 rows, on the compiled kernel when
 * it runs.
 */
function channelSums(backend: BackendWasm, x: Info, dy: Info | null, mean: Info): Float64Array {
  const C = x.shape.at(-1)!, n = tf.util.sizeFromShape(x.shape), rows = n / C;
  const parts = dy === null ? 1 : 2;
  const total = new Float64Array(parts * C);
  const mu = Float64Array.from(heap(backend, mean));
  let done = 0;
  const k = kernels(backend);
  if (k !== null && C > 0) {
    const m = rowsPerVectorRow(C), L = C * m, vrows = Math.floor(rows / m);
    const scratch = new Scratch(k);
    try {
      const meanAt = tiled(k, scratch, mu, L);
      const ranged = ranges(vrows, vrows * L >= 65536 ? k.chunks : 1, 64);
      const bufs = ranged.map(() => ({ tmp: scratch.alloc(2 * L), acc: scratch.alloc(4 * L) }));
      for (const { acc } of bufs) new Float64Array(k.f32().buffer, acc, 2 * L).fill(0);
      const xo = offset(backend, x), dyo = dy === null ? 0 : offset(backend, dy);
      k.parallel(
        "bn_sums",
        ranged.map((
          [r0, r1],
          i,
        ) => [
          xo + 4 * r0 * L,
          dy === null ? 0 : dyo + 4 * r0 * L,
          meanAt,
          L,
          r1 - r0,
          bufs[i]!.tmp,
          bufs[i]!.acc,
        ]),
      );
      for (const { acc } of bufs) {
        const sums = new Float64Array(k.f32().buffer, acc, parts * L);
        for (let p = 0; p < parts; p++) {
          for (let j = 0; j < L; j++) total[p * C + (j % C)]! += sums[p * L + j]!;
        }
      }
      done = vrows * L;
    } finally {
      scratch.free();
    }
  }
  const xs = heap(backend, x), g = dy === null ? null : heap(backend, dy);
  for (let i = done; i < n; i++) {
    const c = i % C, d = xs[i]! - mu[c]!;
    if (g === null) total[c]! += d * d;
    else {
      total[c]! += g[i]!;
      total[C + c]! += g[i]! * d;
    }
  }
  return total;
}

/** The biased variance of each channel of `x` about the given means: `Σ (x − mean)² / N`. */
const batchNormVariance = unpacked<{ x: Info; mean: Info }>((backend, { x, mean }) => {
  const C = checkPerChannel(BATCH_NORM_KERNELS.variance, x, [["mean", mean, 1]]);
  const out = checkedOutput(backend, [C], "float32");
  const rows = C === 0 ? 0 : tf.util.sizeFromShape(x.shape) / C;
  const sums = channelSums(backend, x, null, mean);
  const o = heap(backend, out);
  // Over no rows: 0, as cpu's mean of nothing.
  for (let c = 0; c < C; c++) o[c] = rows === 0 ? 0 : sums[c]! / rows;
  return out;
});

/** `[Σ dy, Σ dy · (x − mean)]` per channel, `[2, C]`. */
const batchNormGradSums = unpacked<{ x: Info; dy: Info; mean: Info }>(
  (backend, { x, dy, mean }) => {
    const C = checkPerChannel(BATCH_NORM_KERNELS.gradSums, x, [["mean", mean, 1]]);
    sameShape(BATCH_NORM_KERNELS.gradSums, x, dy);
    const out = checkedOutput(backend, [2, C], "float32");
    heap(backend, out).set(channelSums(backend, x, dy, mean));
    return out;
  },
);

/** `a · dy + b · (x − mean) + c` with `coef` `[3, C]` holding a, b and c per channel. */
const batchNormGradInput = unpacked<{ x: Info; dy: Info; mean: Info; coef: Info }>(
  (backend, { x, dy, mean, coef }) => {
    const name = BATCH_NORM_KERNELS.gradInput;
    const C = checkPerChannel(name, x, [["mean", mean, 1], ["coef", coef, 3]]);
    sameShape(name, x, dy);
    const out = checkedOutput(backend, x.shape, "float32");
    const n = tf.util.sizeFromShape(x.shape);
    if (n === 0) return out;
    const mu = Float32Array.from(heap(backend, mean)), abc = Float32Array.from(heap(backend, coef));
    let done = 0;
    const k = kernels(backend);
    if (k !== null) {
      const m = rowsPerVectorRow(C), L = C * m, rows = Math.floor(n / L);
      const scratch = new Scratch(k);
      try {
        const at = [mu, abc.subarray(0, C), abc.subarray(C, 2 * C), abc.subarray(2 * C)].map((v) =>
          tiled(k, scratch, v, L)
        ) as [number, number, number, number];
        const xo = offset(backend, x), dyo = offset(backend, dy), oo = offset(backend, out);
        k.parallel(
          "bn_grad_dx",
          ranges(rows, rows * L >= 65536 ? k.chunks : 1).map((
            [r0, r1],
          ) => [xo + 4 * r0 * L, dyo + 4 * r0 * L, ...at, L, r1 - r0, oo + 4 * r0 * L]),
        );
        done = rows * L;
      } finally {
        scratch.free();
      }
    }
    const xs = heap(backend, x), g = heap(backend, dy), o = heap(backend, out);
    for (let i = done; i < n; i++) {
      const c = i % C;
      o[i] = abc[c]! * g[i]! + abc[C + c]! * (xs[i]! - mu[c]!) + abc[2 * C + c]!;
    }
    return out;
  },
);

/**
 * Batch normalization: `FusedBatchNorm` (replaced), and for training mode
 * the variance, gradient sums and input gradient (added; see
 * `BATCH_NORM_KERNELS` in `sdk/devices/kernels.ts`).
 */
export const BATCHNORM_KERNELS: readonly WasmKernel[] = [
  { name: "FusedBatchNorm", kind: "replaced", kernelFunc: fusedBatchNorm },
  { name: BATCH_NORM_KERNELS.variance, kind: "added", kernelFunc: batchNormVariance },
  { name: BATCH_NORM_KERNELS.gradSums, kind: "added", kernelFunc: batchNormGradSums },
  { name: BATCH_NORM_KERNELS.gradInput, kind: "added", kernelFunc: batchNormGradInput },
];
