/**
 * Worker threads that run the compiled SIMD kernels on the threaded wasm
 * backend's shared memory, so one kernel call can use every core. tfjs calls
 * kernels synchronously, so the calling thread hands each worker its share
 * through a shared control block (`Atomics.notify`), runs its own share, and
 * waits until the workers are done.
 *
 * Waiting spins before it sleeps. A worker that has finished a job polls for
 * the next one for {@linkcode SPIN_MS} before it blocks in `Atomics.wait`: a
 * training step calls a heavy kernel every few hundred microseconds, and on a
 * virtual machine waking a sleeping thread (and its idle virtual CPU) can
 * cost more than the job itself. Spinning with `Atomics.pause` uses a core
 * that would otherwise idle between the step's kernels. The calling thread
 * polls for its workers the same way.
 *
 * Workers are unref'd: they never keep a finished program alive.
 *
 * @module
 */
import { Worker } from "node:worker_threads";

/** Ints per worker in the control block. */
const SLOT = 32;
const SEQ = 0, DONE = 1, FN = 2, NARGS = 3, ARGS = 4, READY = 30, FAILED = 31;
const MAX_ARGS = READY - ARGS;
/** How long a worker polls for its next job before it sleeps (ms). */
export const SPIN_MS = 2;

const WORKER = `
const { workerData } = require("node:worker_threads");
const { memory, bytes, ctrl, slot, names } = workerData;
const base = slot * ${SLOT};
const kernels = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
Atomics.store(ctrl, base + ${READY}, 1);
let seq = 0;
for (;;) {
  let until = performance.now() + ${SPIN_MS};
  for (let i = 1; Atomics.load(ctrl, base + ${SEQ}) === seq; i++) {
    Atomics.pause();
    if ((i & 1023) === 0 && performance.now() > until) {
      Atomics.wait(ctrl, base + ${SEQ}, seq);
      // Woken by a job, or by warm(): poll again.
      until = performance.now() + ${SPIN_MS};
    }
  }
  seq = Atomics.load(ctrl, base + ${SEQ});
  const args = [];
  for (let i = 0; i < ctrl[base + ${NARGS}]; i++) args.push(ctrl[base + ${ARGS} + i]);
  let failed = 0;
  try {
    kernels[names[ctrl[base + ${FN}]]](...args);
  } catch {
    failed = 1;
  }
  ctrl[base + ${FAILED}] = failed;
  Atomics.store(ctrl, base + ${DONE}, seq);
  Atomics.notify(ctrl, base + ${DONE});
}
`;

/** Runs one exported kernel on several threads at once. */
export class SimdPool {
  readonly #ctrl: Int32Array;
  readonly #names: string[];
  readonly #seq: number[];
  readonly #workers: Worker[] = [];

  /**
   * @param memory the backend's shared memory
   * @param bytes the kernels module built for shared memory
   * @param names the exported functions workers may run
   * @param workers how many worker threads to start
   */
  constructor(memory: WebAssembly.Memory, bytes: Uint8Array, names: string[], workers: number) {
    this.#ctrl = new Int32Array(new SharedArrayBuffer(4 * SLOT * Math.max(1, workers)));
    this.#names = names;
    this.#seq = new Array(workers).fill(0);
    for (let slot = 0; slot < workers; slot++) {
      const w = new Worker(WORKER, {
        eval: true,
        workerData: { memory, bytes, ctrl: this.#ctrl, slot, names },
      });
      // A worker that fails to start never sets READY: its jobs run here.
      w.on("error", () => {});
      w.unref();
      this.#workers.push(w);
    }
  }

  /**
   * Wakes workers that sleep, so they poll again for {@linkcode SPIN_MS}: a
   * kernel calls it before preparing a job, and the wake-up (about 0.1 ms on
   * a virtual machine) overlaps the preparation.
   */
  warm(): void {
    for (let slot = 0; slot < this.#workers.length; slot++) {
      Atomics.notify(this.#ctrl, slot * SLOT + SEQ);
    }
  }

  /** Worker threads started (the calling thread adds one more). */
  get workers(): number {
    return this.#workers.length;
  }

  /**
   * Runs `fn(...jobs[0])` on this thread and `fn(...jobs[i])` on worker i − 1,
   * and returns when all are done. A worker still starting has its job run
   * here instead. Jobs must not write the same memory.
   *
   * @param run calls the function on this thread
   * @param fn the exported function's name
   * @param jobs integer arguments, one array per thread (at most workers + 1)
   * @throws {Error} when the function trapped on a worker
   */
  run(run: (args: number[]) => void, fn: string, jobs: number[][]): void {
    const ctrl = this.#ctrl, index = this.#names.indexOf(fn);
    if (index < 0) throw new Error(`"${fn}" is not a kernel the workers can run`);
    const sent: number[] = [];
    const local: number[][] = [jobs[0]!];
    for (let i = 1; i < jobs.length; i++) {
      const slot = i - 1, base = slot * SLOT, args = jobs[i]!;
      if (slot >= this.#workers.length || Atomics.load(ctrl, base + READY) !== 1) {
        local.push(args);
        continue;
      }
      if (args.length > MAX_ARGS) throw new RangeError(`at most ${MAX_ARGS} arguments`);
      ctrl[base + FN] = index;
      ctrl[base + NARGS] = args.length;
      for (let a = 0; a < args.length; a++) ctrl[base + ARGS + a] = args[a]!;
      const seq = ++this.#seq[slot]!;
      Atomics.store(ctrl, base + SEQ, seq);
      Atomics.notify(ctrl, base + SEQ);
      sent.push(slot);
    }
    let failed = false;
    try {
      for (const args of local) run(args);
    } finally {
      for (const slot of sent) {
        const base = slot * SLOT, seq = this.#seq[slot]!;
        const until = performance.now() + SPIN_MS;
        for (let i = 1;; i++) {
          const done = Atomics.load(ctrl, base + DONE);
          if (done === seq) break;
          Atomics.pause();
          if ((i & 1023) === 0 && performance.now() > until) Atomics.wait(ctrl, base + DONE, done);
        }
        if (ctrl[base + FAILED] !== 0) failed = true;
      }
    }
    if (failed) throw new Error(`The SIMD kernel "${fn}" failed on a worker thread`);
  }
}
