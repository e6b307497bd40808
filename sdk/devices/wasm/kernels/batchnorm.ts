/**
 * Batch normalization on the wasm backend: `FusedBatchNorm` (replaced: the
 * shipped kernel is a scalar loop, 39% of a MobileNetV2 forward pass) on
 * the compiled kernel when every parameter holds one value per channel.
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
import { checkedOutput, type Info, offset, Scratch } from "../_heap.ts";
import { kernels, ranges, rowsPerVectorRow } from "../_compiled.ts";
import { fastOr, type WasmKernel } from "../_kernel.ts";

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

/** Batch normalization: `FusedBatchNorm` (replaced). */
export const BATCHNORM_KERNELS: readonly WasmKernel[] = [
  { name: "FusedBatchNorm", kind: "replaced", kernelFunc: fusedBatchNorm },
];
