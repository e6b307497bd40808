/**
 * Kernels that move data on the wasm backend, heap to heap with no
 * arithmetic: `Slice` (the shipped one copies the whole input out of the
 * heap on every call), `Tile`, `Transpose` of the last two axes, and `PadV2`
 * with zeros along height and width (on the compiled kernel); all four
 * replaced, with the shipped kernel for the cases they do not handle.
 *
 * @example Slice and pad
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { initWasmBackend } from "../backend.ts";
 * await initWasmBackend({ threads: false });
 * const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
 * assertEquals(await tf.slice(x, [1, 1], [1, 2]).data(), new Float32Array([5, 6]));
 * const padded = tf.pad(tf.ones([1, 1, 1, 1]), [[0, 0], [1, 0], [0, 1], [0, 0]]);
 * assertEquals(await padded.data(), new Float32Array([0, 0, 1, 0]));
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { checkedOutput, checkUncheckedOutput, type Info, offset, view } from "../_heap.ts";
import { byImages, kernels } from "../_compiled.ts";
import { fastOr, run, unpacked, type WasmKernel } from "../_kernel.ts";
import type { SimdKernels } from "../simd/module.ts";

/** A zero-padded NHWC copy's size and where the original lies in it. */
export interface Padded {
  /** Rows of the padded copy. */
  XH: number;
  /** Columns of the padded copy. */
  XW: number;
  /** Rows of zeros above the original. */
  top: number;
  /** Columns of zeros left of it. */
  left: number;
}

/** Copies the NHWC tensor at `x` into `dst` zero-padded to `XH × XW` at (top, left), split by images. */
export function padCopy(
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
 * The wasm `Tile` computes an index per element; this one copies rows and
 * doubles blocks, heap to heap.
 */
const tile = unpacked<{ x: Info }>((backend, { x }, attrs) => {
  const reps = attrs.reps as number[];
  if (x.dtype === "string" || reps.length !== x.shape.length) {
    return run(backend, "Tile", { x }, attrs);
  }
  const outShape = x.shape.map((d, i) => d * reps[i]!);
  const out = checkedOutput(backend, outShape, x.dtype);
  if (tf.util.sizeFromShape(outShape) === 0) return out;
  const src = view(backend, x), dst = view(backend, out);
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
});

/**
 * The wasm `Slice` copies the whole input out of the heap on every call
 * (`readSync`); this one copies only the slice, row by row, heap to heap.
 */
const slice = unpacked<{ x: Info }>((backend, { x }, attrs) => {
  if (x.dtype === "string" || x.dtype === "complex64") return run(backend, "Slice", { x }, attrs);
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as tf.Tensor,
    attrs.begin as number[],
    attrs.size as number[],
  ) as [number[], number[]];
  const out = checkedOutput(backend, size, x.dtype);
  if (tf.util.sizeFromShape(size) === 0) return out;
  const src = view(backend, x), dst = view(backend, out);
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
});

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
export function transposeLastTwo(backend: BackendWasm, x: Info): Info {
  const r = x.shape.length;
  const rows = x.shape[r - 2]!, cols = x.shape[r - 1]!;
  const shape = [...x.shape.slice(0, r - 2), cols, rows];
  const out = checkedOutput(backend, shape, x.dtype);
  const src = view(backend, x), dst = view(backend, out);
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
const transpose = unpacked<{ x: Info }>((backend, { x }, attrs) => {
  const perm = attrs.perm as number[];
  if (x.dtype === "string" || x.dtype === "complex64" || !swapsLastTwo(perm)) {
    return run(backend, "Transpose", { x }, attrs);
  }
  return transposeLastTwo(backend, x);
});

/**
 * The data-moving kernels: `Slice`, `Tile`, `Transpose`, `PadV2` (all
 * replaced).
 */
export const LAYOUT_KERNELS: readonly WasmKernel[] = [
  {
    name: "Slice",
    kind: "replaced",
    kernelFunc: slice,
    validate: ({ x }, attrs) => {
      const [begin, size] = tf.slice_util.parseSliceParams(
        x as tf.Tensor,
        attrs.begin as number[],
        attrs.size as number[],
      );
      tf.slice_util.assertParamsValid(x!, begin as number[], size as number[]);
    },
  },
  {
    name: "Tile",
    kind: "replaced",
    kernelFunc: tile,
    validate: ({ x }, attrs) => {
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
  },
  { name: "Transpose", kind: "replaced", kernelFunc: transpose },
  {
    name: "PadV2",
    kind: "replaced",
    kernelFunc: padV2,
    validate: ({ x }, attrs) => {
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
  },
];
