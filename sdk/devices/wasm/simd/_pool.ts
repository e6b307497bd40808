/**
 * Worker threads that run the compiled SIMD kernels on the threaded wasm
 * backend's shared memory, so one kernel call can use every core. tfjs calls
 * kernels synchronously, so the calling thread posts a list of jobs in a
 * shared control block, wakes the workers (`Atomics.notify`), and then every
 * thread, itself included, claims jobs one at a time (a compare-and-swap on
 * each job's flag) until none are left. Each thread starts with its own
 * share of the list and then takes what is left of the others' (see
 * {@linkcode claimOrder}): the same thread then works on the same part of
 * the data call after call; in six paired runs this made a two-thread MNIST
 * step 0.7–4.4% faster than taking jobs from one shared counter. A thread that
 * is late (a worker still waking up, or one the system has descheduled)
 * simply claims fewer jobs, so callers split their work into more jobs than
 * threads.
 *
 * Waiting polls before it sleeps. A worker that has finished a call looks
 * for the next one for {@linkcode POLL_MS}, in naps of {@linkcode NAP_MS}
 * (`Atomics.wait` with a timeout), before it sleeps until woken: a training
 * step calls a heavy kernel every few hundred microseconds, and on a virtual
 * machine waking a thread that has slept long (and its idle virtual CPU) can
 * cost more than the job itself. Napping rather than spinning leaves the core
 * to other threads when the machine is busy: with a busy process beside it,
 * an MNIST training step took 16–17 ms this way against 24–28 ms spinning.
 * When the calling thread has run out of jobs it cancels the workers that
 * have not started yet, and waits for the ones still running a job
 * (spinning for {@linkcode SPIN_MS}, then sleeping until notified).
 *
 * Workers are unref'd: they never keep a finished program alive.
 *
 * @module
 */
import { Worker } from "node:worker_threads";

/** How long a worker polls for its next call before it sleeps until woken (ms). */
export const POLL_MS = 2;
/** The naps a polling worker takes between looks (ms): it sleeps, so a busy core can run something else. */
export const NAP_MS = 0.02;
/** How long the calling thread spins for a worker's last job before it sleeps until notified (ms). */
export const SPIN_MS = 0.2;
/** The most jobs one call posts; longer lists go in several calls. */
export const MAX_JOBS = 64;
/** The most integer arguments a job may have. */
export const MAX_ARGS = 28;

// Control block, in int32 slots. Per worker w (at WORKERS + w·PER_WORKER):
// SEQ (the call number it is woken for), STATE (2·seq: posted, 2·seq + 1:
// claimed by the worker, -1: cancelled by the caller), DONE (the last call
// it finished), READY, FAILED, ASLEEP (1 while it sleeps until woken).
// Shared: FN, NJOBS, THREADS (workers + 1), NARGS, then the job table
// (MAX_JOBS rows of MAX_ARGS), then one claim flag per job (1: taken).
const FN = 0, NJOBS = 1, THREADS = 2, NARGS = 3, WORKERS = 16, PER_WORKER = 16;
const SEQ = 0, STATE = 1, DONE = 2, READY = 3, FAILED = 4, ASLEEP = 5;
const TABLE = (n: number) => WORKERS + n * PER_WORKER;

/**
 * The i-th job a thread tries to claim, of n jobs, when its own share is
 * [h0, h1): its share in order first, then the others' from the top down
 * (h0 - 1, h0 - 2, … wrapping past 0 to n - 1), so that two threads meet
 * in the middle of the jobs they both want rather than at the start.
 * Callers split work by position in memory (image ranges, element ranges),
 * so a thread that takes the same share in call after call finds that part
 * of the data in its own core's cache.
 */
function claimOrder(i: number, h0: number, h1: number, n: number): number {
  if (i < h1 - h0) return h0 + i;
  const j = h0 - 1 - (i - (h1 - h0));
  return j < 0 ? j + n : j;
}

const WORKER = `
const { workerData } = require("node:worker_threads");
const { memory, bytes, ctrl, slot, names, table } = workerData;
const claims = table + ${MAX_JOBS * MAX_ARGS};
${claimOrder.toString()}
const base = ${WORKERS} + slot * ${PER_WORKER};
const kernels = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
Atomics.store(ctrl, base + ${READY}, 1);
let seq = 0;
const args = [];
for (;;) {
  let until = performance.now() + ${POLL_MS};
  while (Atomics.load(ctrl, base + ${SEQ}) === seq) {
    if (performance.now() < until) {
      Atomics.wait(ctrl, base + ${SEQ}, seq, ${NAP_MS});
    } else {
      Atomics.store(ctrl, base + ${ASLEEP}, 1);
      Atomics.wait(ctrl, base + ${SEQ}, seq);
      Atomics.store(ctrl, base + ${ASLEEP}, 0);
      // Woken by a call, or by warm(): poll again.
      until = performance.now() + ${POLL_MS};
    }
  }
  seq = Atomics.load(ctrl, base + ${SEQ});
  // The caller may have run every job already and cancelled this call.
  if (Atomics.compareExchange(ctrl, base + ${STATE}, 2 * seq, 2 * seq + 1) !== 2 * seq) continue;
  let failed = 0;
  try {
    const fn = kernels[names[ctrl[${FN}]]], n = ctrl[${NJOBS}], nargs = ctrl[${NARGS}];
    args.length = nargs;
    const threads = ctrl[${THREADS}], h0 = Math.floor(((slot + 1) * n) / threads);
    const h1 = Math.floor(((slot + 2) * n) / threads);
    for (let i = 0; i < n; i++) {
      const j = claimOrder(i, h0, h1, n);
      if (Atomics.load(ctrl, claims + j) !== 0 || Atomics.compareExchange(ctrl, claims + j, 0, 1) !== 0) continue;
      const row = table + j * ${MAX_ARGS};
      for (let a = 0; a < nargs; a++) args[a] = ctrl[row + a];
      fn(...args);
    }
  } catch {
    failed = 1;
  }
  ctrl[base + ${FAILED}] = failed;
  Atomics.store(ctrl, base + ${DONE}, seq);
  Atomics.notify(ctrl, base + ${DONE});
}
`;

/** Runs one exported kernel's jobs on several threads at once. */
export class SimdPool {
  readonly #ctrl: Int32Array;
  readonly #names: string[];
  readonly #table: number;
  readonly #workers: Worker[] = [];
  #seq = 0;

  /**
   * Starts the workers, each running the kernels module on `memory`.
   *
   * @param memory the backend's shared memory
   * @param bytes the kernels module built for shared memory
   * @param names the exported functions workers may run
   * @param workers how many worker threads to start
   */
  constructor(memory: WebAssembly.Memory, bytes: Uint8Array, names: string[], workers: number) {
    if (workers > WORKERS) throw new RangeError(`at most ${WORKERS} workers`);
    const table = TABLE(Math.max(1, workers));
    this.#ctrl = new Int32Array(
      new SharedArrayBuffer(4 * (table + MAX_JOBS * MAX_ARGS + MAX_JOBS)),
    );
    this.#ctrl[THREADS] = workers + 1;
    this.#names = names;
    this.#table = table;
    for (let slot = 0; slot < workers; slot++) {
      const w = new Worker(WORKER, {
        eval: true,
        workerData: { memory, bytes, ctrl: this.#ctrl, slot, names, table },
      });
      // A worker that fails to start never sets READY and is never woken.
      w.on("error", () => {});
      w.unref();
      this.#workers.push(w);
    }
  }

  /**
   * Wakes workers that sleep, so they poll again for {@linkcode POLL_MS}: a
   * kernel calls it before preparing its jobs, and the wake-up (about 0.1 ms
   * on a virtual machine) overlaps the preparation. Workers that are polling
   * are left alone: notifying a thread in a timed wait is a system call (a
   * few microseconds; 30 µs for one in a long sleep) on the calling thread,
   * and a training step calls kernels a few hundred times.
   */
  warm(): void {
    for (let w = 0; w < this.#workers.length; w++) {
      const base = WORKERS + w * PER_WORKER;
      if (Atomics.load(this.#ctrl, base + ASLEEP) === 1) Atomics.notify(this.#ctrl, base + SEQ);
    }
  }

  /** Worker threads started (the calling thread adds one more). */
  get workers(): number {
    return this.#workers.length;
  }

  /** Worker threads sleeping until woken (they polled for {@linkcode POLL_MS} and no call came). */
  get asleep(): number {
    let n = 0;
    for (let w = 0; w < this.#workers.length; w++) {
      if (Atomics.load(this.#ctrl, WORKERS + w * PER_WORKER + ASLEEP) === 1) n++;
    }
    return n;
  }

  /** Worker threads that have loaded the kernels and take jobs. */
  get ready(): number {
    let n = 0;
    for (let w = 0; w < this.#workers.length; w++) {
      if (Atomics.load(this.#ctrl, WORKERS + w * PER_WORKER + READY) === 1) n++;
    }
    return n;
  }

  /**
   * Runs `fn(...jobs[i])` for every i across this thread and the workers,
   * each job on whichever thread claims it first, and returns when all are
   * done. Jobs must not write the same memory.
   *
   * @param run calls the function on this thread
   * @param fn the exported function's name
   * @param jobs integer arguments, one array per job, all of one length
   * @throws {Error} when the function trapped on a worker
   */
  run(run: (args: number[]) => void, fn: string, jobs: number[][]): void {
    const index = this.#names.indexOf(fn);
    if (index < 0) throw new Error(`"${fn}" is not a kernel the workers can run`);
    for (let i = 0; i < jobs.length; i += MAX_JOBS) {
      this.#call(run, index, jobs.slice(i, i + MAX_JOBS));
    }
  }

  #call(run: (args: number[]) => void, index: number, jobs: number[][]): void {
    const ctrl = this.#ctrl, nargs = jobs[0]?.length ?? 0;
    if (nargs > MAX_ARGS) throw new RangeError(`at most ${MAX_ARGS} arguments`);
    for (const [j, args] of jobs.entries()) {
      if (args.length !== nargs) {
        throw new RangeError("every job needs the same number of arguments");
      }
      const row = this.#table + j * MAX_ARGS;
      for (let a = 0; a < nargs; a++) ctrl[row + a] = args[a]!;
    }
    ctrl[FN] = index;
    ctrl[NJOBS] = jobs.length;
    ctrl[NARGS] = nargs;
    const claims = this.#table + MAX_JOBS * MAX_ARGS;
    for (let j = 0; j < jobs.length; j++) ctrl[claims + j] = 0;
    const seq = ++this.#seq;
    const woken: number[] = [];
    for (let w = 0; w < this.#workers.length && w < jobs.length - 1; w++) {
      const base = WORKERS + w * PER_WORKER;
      if (Atomics.load(ctrl, base + READY) !== 1) continue;
      Atomics.store(ctrl, base + STATE, 2 * seq);
      Atomics.store(ctrl, base + SEQ, seq);
      Atomics.notify(ctrl, base + SEQ);
      woken.push(base);
    }
    let failed = false;
    try {
      const n = jobs.length, h1 = Math.floor(n / (this.#workers.length + 1));
      for (let i = 0; i < n; i++) {
        const j = claimOrder(i, 0, h1, n);
        if (Atomics.load(ctrl, claims + j) !== 0) continue;
        if (Atomics.compareExchange(ctrl, claims + j, 0, 1) === 0) run(jobs[j]!);
      }
    } finally {
      for (const base of woken) {
        // A worker that has not claimed the call yet never will.
        if (Atomics.compareExchange(ctrl, base + STATE, 2 * seq, -1) === 2 * seq) continue;
        const until = performance.now() + SPIN_MS;
        for (let i = 1; Atomics.load(ctrl, base + DONE) !== seq; i++) {
          Atomics.pause();
          if ((i & 63) === 0 && performance.now() > until) {
            Atomics.wait(ctrl, base + DONE, Atomics.load(ctrl, base + DONE), 1);
          }
        }
        if (ctrl[base + FAILED] !== 0) failed = true;
      }
    }
    if (failed) {
      throw new Error(`The SIMD kernel "${this.#names[index]}" failed on a worker thread`);
    }
  }
}
