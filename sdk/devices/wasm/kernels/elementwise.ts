/**
 * Elementwise kernels on the wasm backend, in one pass on the compiled
 * kernels: `Add` and `Sub` of a vector along the last axis (a bias),
 * `Multiply` of two tensors of one shape or by such a vector, `Square`,
 * `Relu`, `ClipByValue` (ReLU6), plus `Cast` and `Identity`, which share the
 * input's buffer where they can (all replaced); and two fused gradients this
 * project adds, `ZooReluGrad` and `ZooClipGrad`, one pass where tfjs runs
 * three and five kernels ({@linkcode installFusedGradients} routes the
 * gradients of `Relu` and `ClipByValue` through them on wasm).
 *
 * @example ReLU6 and its gradient
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { initWasmBackend } from "../backend.ts";
 * await initWasmBackend({ threads: false });
 * const x = tf.tensor1d([-1, 3, 7]);
 * const relu6 = (t: tf.Tensor) => tf.clipByValue(t, 0, 6);
 * assertEquals(await relu6(x).data(), new Float32Array([0, 3, 6]));
 * assertEquals(await tf.grad(relu6)(x).data(), new Float32Array([0, 1, 0]));
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import {
  checkedOutput,
  checkFloat,
  expectShape,
  heap,
  type Info,
  offset,
  Scratch,
  view,
} from "../_heap.ts";
import { elementwise, kernels, ranges, rowsPerVectorRow } from "../_compiled.ts";
import { type Attrs, fastOr, run, unaryKernel, unpacked, type WasmKernel } from "../_kernel.ts";
import type { SimdExports } from "../simd/module.ts";
import { CLIP_GRAD_KERNEL, RELU_GRAD_KERNEL } from "../../kernels.ts";

/**
 * The kernels this module adds: ClipByValue's gradient (ReLU6 in
 * MobileNets), one pass where tfjs runs five kernels (`GreaterEqual`,
 * `LessEqual`, `LogicalAnd`, `ZerosLike`, `Select`), attributes
 * `clipValueMin` and `clipValueMax`; and the fused ReLU gradient
 * `dy · step(x)`, which the ReLU's registered gradient runs on wasm (see
 * `installFusedGradient`).
 */
export { CLIP_GRAD_KERNEL, RELU_GRAD_KERNEL };

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
const add = unpacked<{ a: Info; b: Info }>((backend, { a, b }) => {
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
});

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

/** ReLU on the compiled kernels (XNNPACK's runs on its pool, often one thread). */
const relu = unaryKernel("Relu", simdRelu);

/** ClipByValue (ReLU6 in MobileNets) on the compiled kernel for float32. */
const clipByValue = fastOr(
  "ClipByValue",
  (backend, { x }, attrs) =>
    x!.dtype === "float32"
      ? simdClip(backend, x!, Number(attrs.clipValueMin), Number(attrs.clipValueMax))
      : null,
);

/**
 * A cast to the tensor's own dtype shares its buffer, as {@linkcode identity}
 * does (the shipped kernel copies it: `tf.moments` casts every activation to
 * float32). A cast to bool is `x ≠ 0` (the shipped kernel truncates to a byte:
 * -2.5 became 254); other casts run the shipped kernel.
 */
const cast = unpacked<{ x: Info }>((backend, { x }, attrs) => {
  if (attrs.dtype === x.dtype && x.dtype !== "string") {
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  }
  if (attrs.dtype === "bool" && (x.dtype === "float32" || x.dtype === "int32")) {
    const out = checkedOutput(backend, x.shape, "bool");
    const src = view(backend, x), dst = view(backend, out);
    for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0;
    return out;
  }
  return run(backend, "Cast", { x }, attrs);
});

/** Shares the input's buffer (as the cpu backend does) instead of copying it. */
const identity = unpacked<{ x: Info }>((backend, { x }) => {
  if (x.dtype === "string") return run(backend, "Identity", { x }, {});
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
});

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
  return unpacked<{ x: Info; dy: Info }>((backend, { x, dy }, attrs) => {
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
  });
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
 * Routes the gradients of `Relu` and `ClipByValue` through the fused
 * kernels on wasm for float32 (tfjs's own gradients everywhere else).
 * Idempotent.
 */
export function installFusedGradients(): void {
  installFusedGradient("Relu", RELU_GRAD_KERNEL);
  installFusedGradient("ClipByValue", CLIP_GRAD_KERNEL, ["clipValueMin", "clipValueMax"]);
}

/**
 * The elementwise kernels: `Add`, `Sub`, `Multiply`, `Square`, `Relu`,
 * `ClipByValue`, `Cast`, `Identity` (replaced), {@linkcode RELU_GRAD_KERNEL}
 * and {@linkcode CLIP_GRAD_KERNEL} (added).
 */
export const ELEMENTWISE_KERNELS: readonly WasmKernel[] = [
  { name: "Add", kind: "replaced", kernelFunc: add },
  { name: "Sub", kind: "replaced", kernelFunc: sub },
  { name: "Multiply", kind: "replaced", kernelFunc: multiply },
  { name: "Square", kind: "replaced", kernelFunc: square },
  { name: "Relu", kind: "replaced", kernelFunc: relu },
  { name: "ClipByValue", kind: "replaced", kernelFunc: clipByValue },
  { name: "Cast", kind: "replaced", kernelFunc: cast },
  { name: "Identity", kind: "replaced", kernelFunc: identity },
  { name: RELU_GRAD_KERNEL, kind: "added", kernelFunc: reluGrad },
  { name: CLIP_GRAD_KERNEL, kind: "added", kernelFunc: clipGrad },
];
