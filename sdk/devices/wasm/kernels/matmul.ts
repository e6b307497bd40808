/**
 * Matrix products on the wasm backend: `BatchMatMul` (replaced). A product
 * is a 1×1 convolution: `a · b` and `a · bᵀ` run the compiled forward
 * kernel on `b` packed by rows of output columns, `aᵀ · b` the compiled
 * filter-gradient kernel; other cases (a batch, both operands transposed)
 * run XNNPACK's product, with a transposed operand transposed first (the
 * shipped kernel is many times slower with `transposeA` or `transposeB`).
 *
 * @example A product with a transposed left operand
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { initWasmBackend } from "../backend.ts";
 * await initWasmBackend({ threads: false });
 * const a = tf.tensor2d([1, 2, 3, 4], [2, 2]), b = tf.tensor2d([1, 0, 0, 1], [2, 2]);
 * assertEquals(await tf.matMul(a, b, true, false).data(), new Float32Array([1, 3, 2, 4]));
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { anyEmpty, checkedOutput, dispose, type Info, offset, Scratch, zeros } from "../_heap.ts";
import { kernels, shares } from "../_compiled.ts";
import { run, unpacked, type WasmKernel } from "../_kernel.ts";
import { sumOverRows } from "./conv_grad.ts";
import { transposeLastTwo } from "./layout.ts";

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

/**
 * The wasm `BatchMatMul` is many times slower when `transposeA` or
 * `transposeB` is set (the common cases in gradients: `xᵀ · dy` and
 * `dy · Wᵀ`); transposing explicitly first is not.
 */
const batchMatMul = unpacked<{ a: Info; b: Info }>((backend, { a, b }, attrs) => {
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
});

/** The matrix products: `BatchMatMul` (replaced). */
export const MATMUL_KERNELS: readonly WasmKernel[] = [
  { name: "BatchMatMul", kind: "replaced", kernelFunc: batchMatMul },
];
