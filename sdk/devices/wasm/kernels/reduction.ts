/**
 * Reductions on the wasm backend: `Mean` and `Sum` (both replaced) over the
 * leading axes (`[0, 1, 2]` of NHWC: BatchNormalization's statistics and
 * their gradients) in one pass over the heap, on the compiled kernel, where
 * the shipped kernels transpose the whole tensor first; other axes run the
 * shipped kernels.
 *
 * @example A mean over the batch
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { initWasmBackend } from "../backend.ts";
 * await initWasmBackend({ threads: false });
 * const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
 * assertEquals(await tf.mean(x, 0).data(), new Float32Array([2, 3]));
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { anyEmpty, checkedOutput, heap, type Info, offset, Scratch, zeros } from "../_heap.ts";
import { kernels, ranges, rowsPerVectorRow } from "../_compiled.ts";
import { run, unpacked, type WasmKernel } from "../_kernel.ts";

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
 * Reductions over the leading axes (`[0, 1, 2]` of NHWC: BatchNormalization's
 * statistics and their gradients) in one pass over the heap, where the wasm
 * kernels transpose the whole tensor first. (A matrix product with ones was
 * tried: XNNPACK packs the big operand into fresh memory, and growing the
 * wasm heap for it costs more than the sum.)
 */
function leadingReduction(name: "Mean" | "Sum"): tf.KernelFunc {
  return unpacked<{ x: Info }>((backend, { x }, attrs) => {
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
  });
}

/** The reductions: `Mean`, `Sum` (both replaced). */
export const REDUCTION_KERNELS: readonly WasmKernel[] = [
  { name: "Mean", kind: "replaced", kernelFunc: leadingReduction("Mean") },
  { name: "Sum", kind: "replaced", kernelFunc: leadingReduction("Sum") },
];
