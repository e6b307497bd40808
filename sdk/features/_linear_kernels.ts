/**
 * The linear classifiers' compiled kernels (`simd/linear.c`, embedded as
 * `simd/linear_wasm.ts`): a small wasm SIMD module with its own memory, in
 * which one {@linkcode LinearKernels} lays out a problem's codes, weights and
 * scratch arrays once, then standardizes the codes, runs the SVM's sweeps,
 * the softmax's evaluations and the evaluations of weights over them. Every
 * call checks its shapes, sizes and offsets against the
 * arrays it was handed before the module touches memory; pointers are passed
 * unsigned.
 *
 * @module
 */
import { LINEAR_WASM } from "./simd/linear_wasm.ts";

interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  scores(x: number, n: number, d: number, w: number, k: number, out: number): void;
  grad_add(x: number, n: number, d: number, delta: number, k: number, g: number): void;
  row_update(x: number, d: number, w: number, cls: number, val: number, nz: number): void;
  cs_sweep(...args: number[]): number;
  softmax_eval(...args: number[]): number;
  evaluate(...args: number[]): number;
  evaluate32(...args: number[]): number;
  code_stats(x: number, n: number, d: number, sum: number, sq: number): void;
  standardize(x: number, n: number, d: number, mean: number, std: number, qd: number): void;
}

/** The arrays of one Crammer–Singer problem in the kernels' memory (see {@linkcode LinearKernels.csSweep}). */
export interface CsArrays {
  /** `n x d` codes. */
  x: HeapArray<Float32Array>;
  /** `k x (d + 1)` weights. */
  w: HeapArray<Float64Array>;
  /** `k x (d + 1)`: the weights in float32, which the sweep scores with and updates. */
  wf: HeapArray<Float32Array>;
  /**
   * `k x (d + 1)`: the compensation of `wf` (the rounding errors its sums
   * left, negated): the weights are `wf - wlo`.
   */
  wlo: HeapArray<Float32Array>;
  /** `n` labels. */
  y: HeapArray<Int32Array>;
  /** `n`: where each code's label sits in its class order. */
  yIndex: HeapArray<Int32Array>;
  /** `n`: `1 + ||x||²` of each code. */
  qd: HeapArray<Float64Array>;
  /** `n x k` dual variables. */
  alpha: HeapArray<Float64Array>;
  /** `n x k`: each code's class order, the active ones first. */
  alphaIndex: HeapArray<Int32Array>;
  /** `n`: each code's number of active classes. */
  activeOf: HeapArray<Int32Array>;
  /** `n`: the visiting order, the active codes first. */
  index: HeapArray<Int32Array>;
  /** `n`: each code's hinge loss when the sweep reached it, over its active classes and its label. */
  lastLoss: HeapArray<Float64Array>;
  /** `n`: whether each code's label outscored its other active classes when the sweep reached it. */
  lastOk: HeapArray<Int32Array>;
  /** `6k` scratch values. */
  scratch: HeapArray<Float64Array>;
  /** `k` scratch indices. */
  indices: HeapArray<Int32Array>;
  /** One value: the sweep's largest dual violation. */
  stopping: HeapArray<Float64Array>;
}

/** The arrays of one softmax evaluation in the kernels' memory (see {@linkcode LinearKernels.softmaxEval}). */
export interface SoftmaxArrays {
  /** `n x d` codes. */
  x: HeapArray<Float32Array>;
  /** `n` labels. */
  y: HeapArray<Int32Array>;
  /** `k x (d + 1)` weights. */
  w: HeapArray<Float64Array>;
  /** `k x (d + 1)` scratch: the weights in float32. */
  wf: HeapArray<Float32Array>;
  /** `k x (d + 1)` scratch: a block's gradient in float32. */
  gf: HeapArray<Float32Array>;
  /** `4k` scratch: four codes' scores. */
  sf: HeapArray<Float32Array>;
  /** `k x (d + 1)`: the gradient, added to. */
  grad: HeapArray<Float64Array>;
  /** Two values: the summed loss and the number classified correctly. */
  out: HeapArray<Float64Array>;
}

let compiled: WebAssembly.Module | undefined;

function module(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(
    Uint8Array.from(atob(LINEAR_WASM), (c) => c.charCodeAt(0)),
  );
  return compiled;
}

/** An array laid out in a {@linkcode LinearKernels}' memory. */
export interface HeapArray<T extends Float32Array | Float64Array | Int32Array> {
  /** Byte offset in the module's memory. */
  ptr: number;
  /** The view; valid until the next {@linkcode LinearKernels.alloc}. */
  view: T;
}

/** The element types an array in the kernels' memory may have. */
export type Typed = Float32Array | Float64Array | Int32Array;
/** The constructor of one of the {@linkcode Typed} arrays. */
export type Ctor<T extends Typed> = {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  BYTES_PER_ELEMENT: number;
};

/** Throws unless every one of `values` is an integer in `[0, 2³¹)`; cheap enough for every call. */
function checkDims(what: string, ...values: number[]): void {
  for (let t = 0; t < values.length; t++) {
    const v = values[t]!;
    if (!(Number.isInteger(v) && v >= 0 && v < 2 ** 31)) {
      throw new RangeError(`Invalid ${what} size or offset "${v}": use a non-negative integer`);
    }
  }
}

function checkSize(what: string, a: HeapArray<Typed>, at: number, need: number): void {
  if (!(Number.isInteger(at) && at >= 0 && at + need <= a.view.length)) {
    throw new RangeError(
      `Invalid ${what}: ${need} values from ${at} do not fit in its ${a.view.length}`,
    );
  }
}

/** The checks both evaluations make: sizes, the rows of codes and labels, the weights, the result. */
function checkEvaluation(
  x: HeapArray<Float32Array>,
  y: HeapArray<Int32Array>,
  row: number,
  n: number,
  d: number,
  w: HeapArray<Float64Array>,
  k: number,
  out: HeapArray<Float64Array>,
): void {
  checkDims("evaluation", row, n, d, k);
  checkSize("codes", x, row * d, n * d);
  checkSize("labels", y, row, n);
  checkSize("weights", w, 0, k * (d + 1));
  checkSize("result", out, 0, 2);
}

/**
 * One instance of the kernels module and the arrays laid out in its memory.
 * Arrays are allocated once per problem (a bump allocator; the memory grows
 * as needed); views are refreshed after every allocation, since growing the
 * memory detaches the old buffer.
 */
export class LinearKernels {
  #ex: Exports;
  #top: number;
  #arrays: { a: HeapArray<Typed>; ctor: Ctor<Typed>; length: number }[] = [];

  constructor() {
    const instance = new WebAssembly.Instance(module(), {});
    this.#ex = instance.exports as unknown as Exports;
    this.#top = (this.#ex.__heap_base.value as number) >>> 0;
  }

  /**
   * Forgets every array laid out so far (their views must not be used
   * after): the next ones reuse the memory, already grown and touched.
   */
  reset(): void {
    this.#top = (this.#ex.__heap_base.value as number) >>> 0;
    this.#arrays = [];
  }

  /** Bytes of memory the instance holds. */
  get bytes(): number {
    return this.#ex.memory.buffer.byteLength;
  }

  /**
   * An array of `length` values of `ctor`'s type, 16-byte aligned: zeroed,
   * or with `zero` false, holding whatever the memory held (for an array the
   * caller fills at once).
   */
  alloc<T extends Typed>(ctor: Ctor<T>, length: number, zero = true): HeapArray<T> {
    checkDims("array", length);
    const ptr = (this.#top + 15) & ~15;
    const end = ptr + length * ctor.BYTES_PER_ELEMENT;
    if (end > 2 ** 32 - 65536) {
      throw new RangeError(
        `Cannot lay out ${length} values: the kernels' memory would pass 4 GiB; use fewer or shorter codes`,
      );
    }
    const mem = this.#ex.memory;
    if (end > mem.buffer.byteLength) {
      mem.grow(Math.ceil((end - mem.buffer.byteLength) / 65536));
    }
    this.#top = end;
    // The module's memory is not shared: its buffer is an ArrayBuffer.
    const buffer = mem.buffer as ArrayBuffer;
    const a = { ptr: ptr >>> 0, view: new ctor(buffer, ptr >>> 0, length) } as HeapArray<T>;
    if (zero) a.view.fill(0);
    this.#arrays.push({ a, ctor: ctor as Ctor<Typed>, length });
    // A detached view reads as empty: each array keeps its own length.
    for (const { a: old, ctor: c, length: n } of this.#arrays) {
      if (old.view.buffer !== buffer) old.view = new c(buffer, old.ptr, n);
    }
    return a;
  }

  /**
   * `out[i·k + m] = x[i] · w[m, :d] + w[m, d]` for the `n` codes from row
   * `row` of `x` (`d` values each), weights `k x (d + 1)` with the bias last.
   */
  scores(
    x: HeapArray<Float32Array>,
    row: number,
    n: number,
    d: number,
    w: HeapArray<Float64Array>,
    k: number,
    out: HeapArray<Float64Array>,
    outRow = 0,
  ): void {
    checkDims("scores", row, n, d, k, outRow);
    checkSize("codes", x, row * d, n * d);
    checkSize("weights", w, 0, k * (d + 1));
    checkSize("scores", out, outRow * k, n * k);
    this.#ex.scores(
      (x.ptr + row * d * 4) >>> 0,
      n,
      d,
      w.ptr >>> 0,
      k,
      (out.ptr + outRow * k * 8) >>> 0,
    );
  }

  /**
   * `g[m, j] += Σᵢ delta[i·k + m] · x[i, j]` and `g[m, d] += Σᵢ delta[i·k + m]`
   * over the `n` codes from row `row` of `x`; `g` is `k x (d + 1)`.
   */
  gradAdd(
    x: HeapArray<Float32Array>,
    row: number,
    n: number,
    d: number,
    delta: HeapArray<Float64Array>,
    k: number,
    g: HeapArray<Float64Array>,
  ): void {
    checkDims("gradient", row, n, d, k);
    checkSize("codes", x, row * d, n * d);
    checkSize("score gradients", delta, 0, n * k);
    checkSize("gradient", g, 0, k * (d + 1));
    this.#ex.grad_add((x.ptr + row * d * 4) >>> 0, n, d, delta.ptr >>> 0, k, g.ptr >>> 0);
  }

  /**
   * `w[cls[t], :d] += val[t] · x[row]` and `w[cls[t], d] += val[t]` for
   * `t < nz`: one code's update of the weights (`k x (d + 1)`).
   */
  rowUpdate(
    x: HeapArray<Float32Array>,
    row: number,
    d: number,
    w: HeapArray<Float64Array>,
    k: number,
    cls: HeapArray<Int32Array>,
    val: HeapArray<Float64Array>,
    nz: number,
  ): void {
    checkDims("update", row, d, k, nz);
    checkSize("codes", x, row * d, d);
    checkSize("weights", w, 0, k * (d + 1));
    checkSize("classes", cls, 0, nz);
    checkSize("updates", val, 0, nz);
    for (let t = 0; t < nz; t++) {
      const c = cls.view[t]!;
      if (!(c >= 0 && c < k)) throw new RangeError(`Invalid class "${c}": use 0 to ${k - 1}`);
    }
    this.#ex.row_update(
      (x.ptr + row * d * 4) >>> 0,
      d,
      w.ptr >>> 0,
      cls.ptr >>> 0,
      val.ptr >>> 0,
      nz,
    );
  }

  /**
   * One sweep of Crammer–Singer dual coordinate descent with shrinking over
   * the first `active` codes of `a.index`, at cost `c`. The sweep holds
   * the weights as `a.wf - a.wlo` (float32, compensated summation), scores
   * the codes in float32 from `a.wf`, and writes the weights to `a.w` at its
   * end. Returns the new
   * number of active codes and the sweep's largest dual violation.
   *
   * @throws {RangeError} when an array is too short for `n`, `d`, `k`, or an
   * index or label in them is out of range
   */
  csSweep(
    a: CsArrays,
    n: number,
    d: number,
    k: number,
    active: number,
    c: number,
  ): { active: number; stopping: number } {
    checkDims("sweep", n, d, k, active);
    if (active > n || !(k > 0) || !(c > 0)) {
      throw new RangeError(`Invalid sweep: ${active} active codes of ${n}, ${k} classes, C ${c}`);
    }
    checkSize("codes", a.x, 0, n * d);
    checkSize("weights", a.w, 0, k * (d + 1));
    checkSize("float32 weights", a.wf, 0, k * (d + 1));
    checkSize("weight compensation", a.wlo, 0, k * (d + 1));
    for (
      const [name, arr] of [["labels", a.y], ["label positions", a.yIndex], [
        "norms",
        a.qd,
      ]] as const
    ) {
      checkSize(name, arr, 0, n);
    }
    for (const [name, arr] of [["active counts", a.activeOf], ["order", a.index]] as const) {
      checkSize(name, arr, 0, n);
    }
    checkSize("losses", a.lastLoss, 0, n);
    checkSize("correctness", a.lastOk, 0, n);
    checkSize("dual variables", a.alpha, 0, n * k);
    checkSize("class orders", a.alphaIndex, 0, n * k);
    checkSize("scratch", a.scratch, 0, 6 * k);
    checkSize("scratch indices", a.indices, 0, k);
    checkSize("violation", a.stopping, 0, 1);
    const left = this.#ex.cs_sweep(
      a.x.ptr >>> 0,
      n,
      d,
      k,
      a.w.ptr >>> 0,
      a.wf.ptr >>> 0,
      a.wlo.ptr >>> 0,
      a.y.ptr >>> 0,
      a.yIndex.ptr >>> 0,
      a.qd.ptr >>> 0,
      a.alpha.ptr >>> 0,
      a.alphaIndex.ptr >>> 0,
      a.activeOf.ptr >>> 0,
      a.index.ptr >>> 0,
      active,
      c,
      a.lastLoss.ptr >>> 0,
      a.lastOk.ptr >>> 0,
      a.scratch.ptr >>> 0,
      a.indices.ptr >>> 0,
      a.stopping.ptr >>> 0,
    );
    if (left < 0) {
      throw new RangeError(
        "Invalid sweep: an index, label or class order in the arrays is out of range",
      );
    }
    return { active: left, stopping: a.stopping.view[0]! };
  }

  /**
   * The summed loss (the Crammer–Singer hinge, or when `softmax` the
   * cross-entropy, its exponentials and logarithm in float32) and the number
   * whose first highest score is their label, of the `n` codes from row
   * `row` of `x` (labels from row `row` of `y`) under the weights `w`
   * (`k x (d + 1)`), scored in float64 as {@linkcode LinearKernels.scores}
   * scores them. `scratch` holds `4k` values.
   *
   * @throws {RangeError} when an array is too short for `n`, `d`, `k`, or a
   * label in `y` is out of range
   */
  evaluate(
    x: HeapArray<Float32Array>,
    y: HeapArray<Int32Array>,
    row: number,
    n: number,
    d: number,
    w: HeapArray<Float64Array>,
    k: number,
    softmax: boolean,
    scratch: HeapArray<Float64Array>,
    out: HeapArray<Float64Array>,
  ): { loss: number; correct: number } {
    checkEvaluation(x, y, row, n, d, w, k, out);
    checkSize("score scratch", scratch, 0, 4 * k);
    const status = this.#ex.evaluate(
      (x.ptr + row * d * 4) >>> 0,
      n,
      d,
      w.ptr >>> 0,
      k,
      (y.ptr + row * 4) >>> 0,
      softmax ? 1 : 0,
      scratch.ptr >>> 0,
      out.ptr >>> 0,
    );
    if (status < 0) throw new RangeError(`Invalid labels: one is outside 0 to ${k - 1}`);
    return { loss: out.view[0]!, correct: out.view[1]! };
  }

  /**
   * As {@linkcode LinearKernels.evaluate}, with the codes scored in float32
   * as {@linkcode LinearKernels.softmaxEval} scores them (the weights rounded
   * into `wf`, `k x (d + 1)`; `sf` holds `4k` values), the hinge in float32
   * too: for standardized codes, whose float32 sums do not cancel.
   *
   * @throws {RangeError} when an array is too short for `n`, `d`, `k`, or a
   * label in `y` is out of range
   */
  evaluate32(
    x: HeapArray<Float32Array>,
    y: HeapArray<Int32Array>,
    row: number,
    n: number,
    d: number,
    w: HeapArray<Float64Array>,
    k: number,
    softmax: boolean,
    scratch: { wf: HeapArray<Float32Array>; sf: HeapArray<Float32Array> },
    out: HeapArray<Float64Array>,
  ): { loss: number; correct: number } {
    checkEvaluation(x, y, row, n, d, w, k, out);
    checkSize("float32 weights", scratch.wf, 0, k * (d + 1));
    checkSize("score scratch", scratch.sf, 0, 4 * k);
    const status = this.#ex.evaluate32(
      (x.ptr + row * d * 4) >>> 0,
      n,
      d,
      w.ptr >>> 0,
      k,
      (y.ptr + row * 4) >>> 0,
      softmax ? 1 : 0,
      scratch.wf.ptr >>> 0,
      scratch.sf.ptr >>> 0,
      out.ptr >>> 0,
    );
    if (status < 0) throw new RangeError(`Invalid labels: one is outside 0 to ${k - 1}`);
    return { loss: out.view[0]!, correct: out.view[1]! };
  }

  /**
   * The per-value sums of the `n` codes in `x` (`d` values each) into
   * `sum`, then the sums of their squared differences to the means
   * (`sum / n`) into `sq`, in float64.
   */
  codeStats(
    x: HeapArray<Float32Array>,
    n: number,
    d: number,
    sum: HeapArray<Float64Array>,
    sq: HeapArray<Float64Array>,
  ): void {
    checkDims("statistics", n, d);
    checkSize("codes", x, 0, n * d);
    checkSize("sums", sum, 0, d);
    checkSize("squared sums", sq, 0, d);
    this.#ex.code_stats(x.ptr >>> 0, n, d, sum.ptr >>> 0, sq.ptr >>> 0);
  }

  /**
   * Standardizes the `n` codes in `x` in place: `(x - mean) / std` value by
   * value (float64, rounded to float32), and, with `qd`, writes each code's
   * `1 + ||x||²` after.
   */
  standardize(
    x: HeapArray<Float32Array>,
    n: number,
    d: number,
    mean: HeapArray<Float32Array>,
    std: HeapArray<Float32Array>,
    qd?: HeapArray<Float64Array>,
  ): void {
    checkDims("standardization", n, d);
    checkSize("codes", x, 0, n * d);
    checkSize("means", mean, 0, d);
    checkSize("deviations", std, 0, d);
    if (qd) checkSize("norms", qd, 0, n);
    this.#ex.standardize(x.ptr >>> 0, n, d, mean.ptr >>> 0, std.ptr >>> 0, qd ? qd.ptr >>> 0 : 0);
  }

  /**
   * The softmax cross-entropy of the `n` codes from row `row` of `a.x`
   * (labels from `a.y[row]`) under `a.w`, in float32: returns the summed
   * loss and the number whose first highest score is their label, and adds
   * `scale` times the summed loss's gradient by the weights to `a.grad`.
   *
   * @throws {RangeError} when an array is too short for `n`, `d`, `k`, or a
   * label in `a.y` is out of range
   */
  softmaxEval(
    a: SoftmaxArrays,
    row: number,
    n: number,
    d: number,
    k: number,
    scale: number,
  ): { loss: number; correct: number } {
    checkDims("softmax", row, n, d, k);
    if (!(n > 0 && k > 0 && Number.isFinite(scale))) {
      throw new RangeError(`Invalid softmax: ${n} codes, ${k} classes, scale ${scale}`);
    }
    checkSize("codes", a.x, row * d, n * d);
    checkSize("labels", a.y, row, n);
    for (
      const [name, arr] of [
        ["weights", a.w],
        ["gradient", a.grad],
        ["float32 weights", a.wf],
        ["float32 gradient", a.gf],
      ] as const
    ) {
      checkSize(name, arr, 0, k * (d + 1));
    }
    checkSize("score scratch", a.sf, 0, 4 * k);
    checkSize("result", a.out, 0, 2);
    const status = this.#ex.softmax_eval(
      (a.x.ptr + row * d * 4) >>> 0,
      n,
      d,
      k,
      (a.y.ptr + row * 4) >>> 0,
      a.w.ptr >>> 0,
      a.wf.ptr >>> 0,
      a.gf.ptr >>> 0,
      a.sf.ptr >>> 0,
      scale,
      a.grad.ptr >>> 0,
      a.out.ptr >>> 0,
    );
    if (status < 0) throw new RangeError(`Invalid labels: one is outside 0 to ${k - 1}`);
    return { loss: a.out.view[0]!, correct: a.out.view[1]! };
  }
}

/** The most memory an idle instance may hold to be kept for the next fit. */
const KEEP_BYTES = 64 * 2 ** 20;
let idle: LinearKernels | undefined;

/**
 * An instance of the kernels for one fit or evaluation: the one the last
 * fit handed back (its memory already grown and touched, so laying out the
 * next problem's codes costs no page faults) or a new one. Hand it back
 * with {@linkcode returnKernels} once no array of it is used any more.
 */
export function borrowKernels(): LinearKernels {
  const kern = idle ?? new LinearKernels();
  idle = undefined;
  return kern;
}

/** Takes back an instance from {@linkcode borrowKernels}, keeping it when it holds at most 64 MiB. */
export function returnKernels(kern: LinearKernels): void {
  if (kern.bytes > KEEP_BYTES) return;
  kern.reset();
  idle = kern;
}
