/**
 * Compiled SIMD kernels (`simd/kernels.c`) that run on the wasm backend's
 * own heap: the module imports the backend's `WebAssembly.Memory`, so the
 * kernels read and write tensors where they lie, with no copy in or out.
 * The module has no data segment and no shadow stack; scratch space comes
 * from the backend's `malloc`.
 *
 * On the threaded backend (shared memory) a pool of worker threads runs the
 * same module on the same memory, so a kernel call can be split across
 * every thread the backend has ({@linkcode SimdKernels.parallel}).
 *
 * Built with relaxed SIMD (a fused multiply-add); on a runtime that cannot
 * validate it, {@linkcode simdKernels} returns `null` and callers keep their
 * JavaScript paths.
 *
 * @module
 */
import { type BackendWasm, getThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { PLAIN, SHARED } from "./kernels_wasm.ts";
import { SimdPool } from "./_pool.ts";

/**
 * The signature of the two kernels over pooling windows that tile an input
 * `[B, H, W, C]` (a `KH`×`KW` window at a stride of the window, no
 * padding): they read `src` and write `dst`, the input and the pooled
 * output for the forward kernel, the output's gradient and the input's for
 * the gradient.
 */
type TiledPoolKernel = (
  src: number,
  dst: number,
  B: number,
  H: number,
  W: number,
  C: number,
  KH: number,
  KW: number,
) => void;

/** The functions `simd/kernels.c` exports (pointers are byte offsets into the heap). */
export interface SimdExports {
  /** `conv_taps` of `kernels.c`, whose comment there says what it computes. */
  conv_taps(
    x: number,
    base: number,
    koff: number,
    K: number,
    w: number,
    O: number,
    OP: number,
    y: number,
    p0: number,
    p1: number,
    bias: number,
    act: number,
  ): void;
  /** `pw_gemm` of `kernels.c`, whose comment there says what it computes. */
  pw_gemm(
    x: number,
    K: number,
    w: number,
    O: number,
    OP: number,
    y: number,
    p0: number,
    p1: number,
    bias: number,
    act: number,
  ): void;
  /** `dw3x3` of `kernels.c`, whose comment there says what it computes. */
  dw3x3(
    x: number,
    H: number,
    W: number,
    C: number,
    w: number,
    OH: number,
    OW: number,
    sh: number,
    sw: number,
    top: number,
    left: number,
    y: number,
    r0: number,
    r1: number,
    bias: number,
    act: number,
  ): void;
  /** `dw3x3_grad_input` of `kernels.c`, whose comment there says what it computes. */
  dw3x3_grad_input(
    dy: number,
    OH: number,
    OW: number,
    C: number,
    w: number,
    H: number,
    W: number,
    sh: number,
    sw: number,
    top: number,
    left: number,
    dx: number,
    r0: number,
    r1: number,
  ): void;
  /** `conv1_taps` of `kernels.c`, whose comment there says what it computes. */
  conv1_taps(
    x: number,
    XH: number,
    XW: number,
    OH: number,
    OW: number,
    KH: number,
    KW: number,
    w: number,
    O: number,
    y: number,
    r0: number,
    r1: number,
    bias: number,
    act: number,
  ): void;
  /** `conv1_taps_pool` of `kernels.c`, whose comment there says what it computes. */
  conv1_taps_pool(
    x: number,
    XH: number,
    XW: number,
    OH: number,
    OW: number,
    KH: number,
    KW: number,
    w: number,
    O: number,
    y: number,
    r0: number,
    r1: number,
    bias: number,
    act: number,
  ): void;
  /** `conv1_taps_pool_idx` of `kernels.c`, whose comment there says what it computes. */
  conv1_taps_pool_idx(
    x: number,
    XH: number,
    XW: number,
    OH: number,
    OW: number,
    KH: number,
    KW: number,
    w: number,
    O: number,
    y: number,
    r0: number,
    r1: number,
    bias: number,
    act: number,
    idx: number,
  ): void;
  /** `conv1_filter_grad_pooled` of `kernels.c`, whose comment there says what it computes. */
  conv1_filter_grad_pooled(
    x: number,
    XH: number,
    XW: number,
    dp: number,
    y: number,
    idx: number,
    OH: number,
    OW: number,
    KH: number,
    KW: number,
    O: number,
    dw: number,
    tmp: number,
    r0: number,
    r1: number,
  ): void;
  /** `conv1_filter_grad` of `kernels.c`, whose comment there says what it computes. */
  conv1_filter_grad(
    x: number,
    XH: number,
    XW: number,
    dy: number,
    OH: number,
    OW: number,
    KH: number,
    KW: number,
    O: number,
    dw: number,
    tmp: number,
    r0: number,
    r1: number,
  ): void;
  /** `conv_filter_grad` of `kernels.c`, whose comment there says what it computes. */
  conv_filter_grad(
    x: number,
    base: number,
    koff: number,
    k0: number,
    k1: number,
    dy: number,
    O: number,
    dw: number,
    p0: number,
    p1: number,
  ): void;
  /** `conv_input_grad` of `kernels.c`, whose comment there says what it computes. */
  conv_input_grad(
    dy: number,
    O: number,
    wt: number,
    KP: number,
    soff: number,
    S: number,
    L: number,
    base: number,
    dx: number,
    p0: number,
    p1: number,
  ): void;
  /** `pack_rows` of `kernels.c`, whose comment there says what it computes. */
  pack_rows(
    src: number,
    rows: number,
    cols: number,
    rs: number,
    cs: number,
    dst: number,
    DC: number,
  ): void;
  /** `bases3` of `kernels.c`, whose comment there says what it computes. */
  bases3(
    base: number,
    A: number,
    I: number,
    J: number,
    as: number,
    is: number,
    js: number,
    a0: number,
  ): void;
  /** `swap_hw` of `kernels.c`, whose comment there says what it computes. */
  swap_hw(src: number, B: number, H: number, W: number, C: number, dst: number): void;
  /** `pad_copy` of `kernels.c`, whose comment there says what it computes. */
  pad_copy(
    x: number,
    B: number,
    H: number,
    W: number,
    C: number,
    dst: number,
    XH: number,
    XW: number,
    top: number,
    left: number,
  ): void;
  /** `crop_copy` of `kernels.c`, whose comment there says what it computes. */
  crop_copy(
    src: number,
    B: number,
    XH: number,
    XW: number,
    C: number,
    x: number,
    H: number,
    W: number,
    top: number,
    left: number,
  ): void;
  /** `bias_add` of `kernels.c`, whose comment there says what it computes. */
  bias_add(x: number, pattern: number, L: number, rows: number, out: number, mul: number): void;
  /** `sum_rows` of `kernels.c`, whose comment there says what it computes. */
  sum_rows(x: number, L: number, rows: number, tmp: number, acc: number): void;
  /** `max_pool_grad_2x2` of `kernels.c`, whose comment there says what it computes. */
  max_pool_grad_2x2(
    x: number,
    dy: number,
    dx: number,
    B: number,
    H: number,
    W: number,
    C: number,
  ): void;
  /** `relu_grad` of `kernels.c`, whose comment there says what it computes. */
  relu_grad(x: number, dy: number, out: number, n: number): void;
  /** `relu` of `kernels.c`, whose comment there says what it computes. */
  relu(x: number, out: number, n: number): void;
  /** `zero` of `kernels.c`, whose comment there says what it computes. */
  zero(p: number, n: number): void;
  /** `square` of `kernels.c`, whose comment there says what it computes. */
  square(x: number, out: number, n: number): void;
  /** `batch_norm` of `kernels.c`, whose comment there says what it computes. */
  batch_norm(
    x: number,
    mean: number,
    a: number,
    off: number,
    L: number,
    rows: number,
    out: number,
  ): void;
  /** `bn_sums` of `kernels.c`, whose comment there says what it computes (dy 0: none). */
  bn_sums(
    x: number,
    dy: number,
    mean: number,
    L: number,
    rows: number,
    tmp: number,
    acc: number,
  ): void;
  /** `bn_grad_dx` of `kernels.c`, whose comment there says what it computes. */
  bn_grad_dx(
    x: number,
    dy: number,
    mean: number,
    a: number,
    b: number,
    c: number,
    L: number,
    rows: number,
    dx: number,
  ): void;
  /** `clip` of `kernels.c`, whose comment there says what it computes. */
  clip(x: number, out: number, n: number, loBits: number, hiBits: number): void;
  /** `clip_grad` of `kernels.c`, whose comment there says what it computes. */
  clip_grad(x: number, dy: number, out: number, n: number, loBits: number, hiBits: number): void;
  /** `add_into` of `kernels.c`, whose comment there says what it computes. */
  add_into(dst: number, src: number, n: number): void;
  /** `max_pool_2x2` of `kernels.c`, whose comment there says what it computes. */
  max_pool_2x2(x: number, y: number, B: number, H: number, W: number, C: number): void;
  /** `max_pool_2x2_idx` of `kernels.c`, whose comment there says what it computes. */
  max_pool_2x2_idx(
    x: number,
    y: number,
    idx: number,
    B: number,
    H: number,
    W: number,
    C: number,
  ): void;
  /** `max_pool_scatter_2x2` of `kernels.c`, whose comment there says what it computes. */
  max_pool_scatter_2x2(
    dy: number,
    y: number,
    idx: number,
    dz: number,
    B: number,
    H: number,
    W: number,
    C: number,
  ): void;
  /** `avg_pool_tiled` of `kernels.c`, whose comment there says what it computes. */
  avg_pool_tiled: TiledPoolKernel;
  /** `avg_pool_grad_tiled` of `kernels.c`, whose comment there says what it computes. */
  avg_pool_grad_tiled: TiledPoolKernel;
  /** `mul` of `kernels.c`, whose comment there says what it computes. */
  mul(a: number, b: number, out: number, n: number): void;
  /** `pw_filter_grad` of `kernels.c`, whose comment there says what it computes. */
  pw_filter_grad(
    x: number,
    C: number,
    dy: number,
    O: number,
    dw: number,
    p0: number,
    p1: number,
  ): void;
  /** `dw_filter_grad` of `kernels.c`, whose comment there says what it computes. */
  dw_filter_grad(
    x: number,
    H: number,
    W: number,
    C: number,
    dy: number,
    OH: number,
    OW: number,
    KH: number,
    KW: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    top: number,
    left: number,
    out: number,
    r0: number,
    r1: number,
  ): void;
}

/** The kernels bound to one backend's heap. */
export interface SimdKernels {
  /** The module's functions, called on this thread. */
  readonly fn: SimdExports;
  /** How many threads {@linkcode SimdKernels.parallel} spreads jobs over (1 on the single-threaded backend). */
  readonly threads: number;
  /**
   * How many jobs to split a large call into: a few per thread, so a thread
   * that starts late (or is descheduled) takes fewer and no thread waits long
   * for another. 1 on one thread.
   */
  readonly chunks: number;
  /**
   * Runs `fn(...jobs[i])` for every i, each job on whichever of the
   * {@linkcode SimdKernels.threads} threads claims it first, and returns when
   * all are done. Jobs must write disjoint
   * memory, and their arguments must be whole numbers (they reach worker
   * threads as int32).
   */
  parallel<K extends keyof SimdExports>(fn: K, jobs: number[][]): void;
  /** Wakes sleeping worker threads ahead of a {@linkcode SimdKernels.parallel} call (a no-op on one thread). */
  warm(): void;
  /**
   * Allocates `bytes` on the backend's heap (16-byte aligned); may grow the
   * heap. The pointer is unsigned (a heap past 2 GiB has pointers above
   * 2³¹), 0 when the heap is full.
   */
  malloc(bytes: number): number;
  /** Frees what {@linkcode SimdKernels.malloc} allocated. */
  free(ptr: number): void;
  /** A float view of the whole heap, taken now (a `malloc` may replace the buffer). */
  f32(): Float32Array;
  /** An int32 view of the whole heap, taken now. */
  i32(): Int32Array;
}

interface WasmModule {
  asm?: { memory?: WebAssembly.Memory };
  wasmMemory?: WebAssembly.Memory;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

function decode(base64: string): Uint8Array<ArrayBuffer> {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

const bound = new WeakMap<object, SimdKernels | null>();
let poolThreads: number | undefined;

/**
 * Sets how many threads the kernels spread a call over on the threaded
 * backend (the calling thread counts as one), for backends whose kernels
 * are not yet bound. By default they use as many as XNNPACK's pool.
 *
 * @param threads a whole number >= 1
 * @throws {RangeError} for anything else
 */
export function setSimdThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(
      `Cannot run the SIMD kernels on "${threads}" threads: use a positive integer`,
    );
  }
  poolThreads = threads;
}

/**
 * The SIMD kernels for this backend, instantiated on first use, or `null`
 * when the runtime cannot run them (no relaxed SIMD) or the backend's memory
 * cannot be reached.
 *
 * @param backend an initialized wasm backend
 * @returns the kernels, or `null`
 *
 * @example Check that the kernels run here
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
 * import { assertEquals } from "@std/assert";
 * import { initWasmBackend } from "../backend.ts";
 * import { simdKernels } from "./module.ts";
 * await initWasmBackend({ threads: 1 });
 * // Deno's V8 validates relaxed SIMD, so the kernels run here, on one thread.
 * assertEquals(simdKernels(tf.backend() as BackendWasm)?.threads, 1);
 * ```
 */
export function simdKernels(backend: BackendWasm): SimdKernels | null {
  const module = backend.wasm as unknown as WasmModule;
  if (bound.has(module)) return bound.get(module)!;
  let kernels: SimdKernels | null = null;
  const memory = module.asm?.memory ?? module.wasmMemory;
  if (memory instanceof WebAssembly.Memory) {
    const shared = typeof SharedArrayBuffer !== "undefined" &&
      memory.buffer instanceof SharedArrayBuffer;
    const bytes = decode(shared ? SHARED : PLAIN);
    if (WebAssembly.validate(bytes)) {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
        env: { memory },
      });
      const fn = instance.exports as unknown as SimdExports;
      const call = (name: keyof SimdExports) => (args: number[]) =>
        (fn[name] as (...a: number[]) => void)(...args);
      const threads = shared ? (poolThreads ?? Math.max(1, getThreadsCount())) : 1;
      const pool = threads > 1
        ? new SimdPool(memory, bytes, Object.keys(fn), threads - 1)
        : undefined;
      kernels = {
        fn,
        threads,
        chunks: threads > 1 ? 4 * threads : 1,
        parallel: (name, jobs) => {
          if (pool === undefined || jobs.length < 2) {
            for (const args of jobs) call(name)(args);
          } else {
            pool.run(call(name), name, jobs);
          }
        },
        warm: () => pool?.warm(),
        malloc: (n) => module._malloc(n) >>> 0,
        free: (p) => module._free(p),
        f32: () => new Float32Array(memory.buffer),
        i32: () => new Int32Array(memory.buffer),
      };
    }
  }
  bound.set(module, kernels);
  return kernels;
}
