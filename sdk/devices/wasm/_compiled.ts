/**
 * The compiled SIMD kernels as the kernel families call them: whether they
 * run here ({@linkcode setSimdKernelsEnabled} turns them off process-wide),
 * and how one call is split into jobs for their threads (ranges of images,
 * of rows, of elements, and shares of decreasing size for heavy calls).
 *
 * @module
 */
import { type BackendWasm, getThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { type SimdExports, type SimdKernels, simdKernels } from "./simd/module.ts";
import type { Scratch } from "./_heap.ts";

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
export function kernels(backend: BackendWasm): SimdKernels | null {
  const k = enabled ? simdKernels(backend) : null;
  k?.warm();
  return k;
}

/**
 * Splits `[0, n)` into up to `parts` ranges of near-equal size whose
 * boundaries are multiples of `align` (the last range takes the rest).
 */
export function ranges(n: number, parts: number, align = 1): [number, number][] {
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
export function shares(k: SimdKernels, n: number, align = 1): [number, number][] {
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
export function byImages(k: SimdKernels, B: number, elements: number): [number, number][] {
  return ranges(B, elements >= 65536 ? k.chunks : 1);
}

/** Runs an elementwise kernel `fn(...pointers, count)` over `n` floats in vector-aligned ranges. */
export function elementwise(
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
 * A sum over rows `[0, rows)` of `size` floats into `out`, by a kernel that
 * adds rows `[r0, r1)` into a zeroed buffer: `jobs(r0, r1, buffer)`
 * gives one call's arguments. Each thread sums its own range of rows into
 * its own buffer (the first is `out` itself); the buffers are added at the
 * end. `work` is the multiply-adds in all rows, `minRows` the fewest rows a
 * part may have.
 */
export function sumByRows(
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

/** gcd(c, 4) rows of c floats make whole 4-float vectors: m = 4 / gcd(c, 4) rows at a time. */
export function rowsPerVectorRow(c: number): number {
  return c % 4 === 0 ? 1 : c % 2 === 0 ? 2 : 4;
}
