/**
 * Softmax regression by L-BFGS (10 corrections, Armijo backtracking) on the
 * mean cross-entropy plus `l2 · ||W||²`, the bias not penalized, as
 * scikit-learn's `LogisticRegression` has it. Each evaluation of the
 * objective is full-batch and one call of the compiled kernels
 * (`softmax_eval` in `simd/linear.c`): scores, softmax, loss and gradient,
 * four codes at a time in float32 SIMD, the gradient gathered in float64.
 *
 * @module
 */
import type { HeapArray, SoftmaxArrays } from "./_linear_kernels.ts";
import type { Problem } from "./_linear_problem.ts";

/** The objective at a point: its value, the mean data loss and the training accuracy. */
interface Objective {
  objective: number;
  loss: number;
  accuracy: number;
}

/**
 * Called after each accepted iterate with its number, mean data loss,
 * training accuracy, and the weights (in the kernels' memory, valid during
 * the call).
 */
export type IterationCallback = (
  iteration: number,
  loss: number,
  accuracy: number,
  w: HeapArray<Float64Array>,
) => void;

/**
 * Codes from which the softmax's evaluations split in two: below, one call
 * of the kernels does.
 */
export const SPLIT_ROWS = 8192;

/** The first message to the second thread: its share of the codes and the buffer shared with it. */
export interface HelperStart {
  /**
   * `n x d` standardized codes, float32. Bare buffers, transferred: typed
   * arrays are copied value by value on their way, some 100 ms a million.
   */
  codes: ArrayBuffer;
  /** The codes' `n` labels, int32. */
  labels: ArrayBuffer;
  /** Code length. */
  d: number;
  /** Number of classes. */
  k: number;
  /** Laid out as {@linkcode helperViews} reads it. */
  shared: SharedArrayBuffer;
}

/**
 * The shared buffer's parts: `control[0]` the number of the request posted
 * (-1: stop), `control[1]` the number of the last one the Worker answered,
 * `control[2]` the number of the last one claimed (by whichever thread
 * first moves it from the one before: the Worker when it wakes to a
 * request, the main thread when done with its own share), `control[3]` the
 * number of requests the Worker answered; the weights, the gradient of the
 * share's summed loss, then its loss, number correct and the gradient's
 * scale.
 */
export function helperViews(shared: SharedArrayBuffer, size: number): {
  control: Int32Array;
  w: Float64Array;
  grad: Float64Array;
  result: Float64Array;
} {
  return {
    control: new Int32Array(shared, 0, 4),
    w: new Float64Array(shared, 16, size),
    grad: new Float64Array(shared, 16 + 8 * size, size),
    result: new Float64Array(shared, 16 + 16 * size, 3),
  };
}

/** The byte length of the buffer shared with the second thread for `size` weights. */
const sharedBytes = (size: number) => 16 + 8 * (2 * size + 3);

/**
 * Claims request `seq` for the calling thread: true for the first thread
 * to ask, false for the other.
 */
export function claim(control: Int32Array, seq: number): boolean {
  return Atomics.compareExchange(control, 2, seq - 1, seq) === seq - 1;
}

/**
 * Evaluations the Worker takes before the two threads are timed (see
 * {@linkcode SecondShare}), and evaluations the main thread then makes
 * alone when they did not run at once, before trying the Worker again.
 */
const PROBE = 4, ALONE = 16;

/**
 * The second share of a problem's codes, from row `from` on. Each
 * evaluation posts it to a Worker, then evaluates the first share; then,
 * unless the Worker has claimed the second by then, evaluates that too. So
 * the main thread never waits for a Worker that is still starting. Every
 * {@linkcode PROBE} evaluations the Worker made, the process's CPU time is
 * compared with the wall time they took: below 1.5 times, the two threads
 * did not run at once (another process held the other core), and the main
 * thread makes the next {@linkcode ALONE} evaluations alone, claiming the
 * share as it posts it. Whichever thread evaluates it, it is the same kernel
 * call over the same rows into a gradient of its own, so the sum is the
 * same bit for bit.
 */
export class SecondShare {
  /** The first row of the share. */
  readonly from: number;
  #p: Problem;
  #worker: { terminate(): unknown } | undefined;
  #ready: Promise<boolean>;
  #views: ReturnType<typeof helperViews>;
  #seq = 0;
  #local: SoftmaxArrays | undefined;
  #cpu: (() => number) | undefined;
  /** Whether the main thread claimed the current request as it posted it. */
  #mine = false;
  /** Evaluations left that the main thread makes alone. */
  #alone = 0;
  /** The CPU and wall milliseconds of the Worker's evaluations since the last comparison, and their number. */
  #timed = { cpu: 0, wall: 0, count: 0 };
  #began = { cpu: 0, wall: 0 };

  private constructor(
    p: Problem,
    from: number,
    worker: { terminate(): unknown } | undefined,
    ready: Promise<boolean>,
    shared: SharedArrayBuffer,
    cpu: (() => number) | undefined,
  ) {
    this.#p = p;
    this.from = from;
    this.#worker = worker;
    this.#ready = ready;
    this.#views = helperViews(shared, p.k * (p.d + 1));
    this.#cpu = cpu;
  }

  /**
   * The second share of `p`, with a Worker when `thread`, the runtime is
   * Deno and there are two cores or more; undefined when `p` has fewer
   * than {@linkcode SPLIT_ROWS} codes. Does not wait for the Worker to
   * start: until it does, the main thread evaluates both shares.
   */
  static async start(p: Problem, thread = true): Promise<SecondShare | undefined> {
    const { n, d, k } = p;
    if (n < SPLIT_ROWS) return undefined;
    const from = Math.ceil(n / 2);
    const shared = new SharedArrayBuffer(sharedBytes(k * (d + 1)));
    const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
    if (!thread || !("Deno" in globalThis) || cores < 2) {
      return new SecondShare(p, from, undefined, Promise.resolve(false), shared, undefined);
    }
    // A node:worker_threads Worker: a Web Worker does not start once the
    // threaded wasm backend's own workers run.
    const { Worker } = await import("node:worker_threads");
    const { cpuUsage } = await import("node:process");
    const worker = new Worker(new URL("./_linear_worker.ts", import.meta.url));
    const ready = new Promise<boolean>((resolve) => {
      // A Worker not started in 20 s counts as failed; the timer does not keep the process alive.
      const timer = setTimeout(() => resolve(false), 20_000);
      Deno.unrefTimer(timer);
      const settle = (started: boolean) => {
        clearTimeout(timer);
        resolve(started);
      };
      worker.once("message", () => settle(true));
      worker.once("error", () => settle(false));
      worker.once("exit", () => settle(false));
    });
    const start: HelperStart = {
      codes: p.x.view.slice(from * d, n * d).buffer,
      labels: p.y.slice(from, n).buffer,
      d,
      k,
      shared,
    };
    worker.postMessage(start, [start.codes, start.labels]);
    const cpu = () => {
      const u = cpuUsage();
      return (u.user + u.system) / 1000;
    };
    return new SecondShare(p, from, worker, ready, shared, cpu);
  }

  /** Whether a Worker was started for the share (it may still be starting). */
  get threaded(): boolean {
    return this.#worker !== undefined;
  }

  /** Whether the Worker started, once it has or failed to. */
  ready(): Promise<boolean> {
    return this.#ready;
  }

  /** The number of evaluations of the share the Worker made. */
  get workerShares(): number {
    return Atomics.load(this.#views.control, 3);
  }

  /** Posts the weights `at` for the share; a waiting Worker starts on it. */
  begin(at: Float64Array, scale: number): void {
    const { control, w, result } = this.#views;
    w.set(at);
    result[2] = scale;
    const seq = ++this.#seq;
    Atomics.store(control, 0, seq);
    this.#mine = !this.#worker || this.#alone > 0;
    if (this.#mine) {
      if (this.#alone > 0) this.#alone--;
      claim(control, seq);
      return;
    }
    this.#began = { cpu: this.#cpu!(), wall: performance.now() };
    Atomics.notify(control, 0);
  }

  /** The share's summed loss, number correct and gradient (scaled): the Worker's, or evaluated here. */
  end(): { loss: number; correct: number; grad: Float64Array } {
    const { control, w, grad, result } = this.#views;
    const seq = this.#seq;
    if (!this.#mine && !claim(control, seq)) {
      // The Worker claimed it: it answers next.
      for (let v = Atomics.load(control, 1), waited = 0; v !== seq; v = Atomics.load(control, 1)) {
        if (waited++ === 600) {
          throw new Error("The softmax's second thread did not answer in 10 minutes");
        }
        Atomics.wait(control, 1, v, 1000);
      }
      // A NaN loss is the Worker's failure: the share is evaluated here instead.
      if (!Number.isNaN(result[0])) {
        this.#time();
        return { loss: result[0]!, correct: result[1]!, grad };
      }
    }
    const p = this.#p;
    this.#local ??= softmaxArrays(p);
    const a = this.#local;
    a.w.view.set(w);
    a.grad.view.fill(0);
    const r = p.kern.softmaxEval(a, this.from, p.n - this.from, p.d, p.k, result[2]!);
    grad.set(a.grad.view);
    return { ...r, grad };
  }

  /** Times an evaluation the Worker made; after {@linkcode PROBE}, compares CPU and wall time. */
  #time(): void {
    const t = this.#timed;
    t.cpu += this.#cpu!() - this.#began.cpu;
    t.wall += performance.now() - this.#began.wall;
    if (++t.count < PROBE) return;
    if (t.cpu < 1.5 * t.wall) this.#alone = ALONE;
    this.#timed = { cpu: 0, wall: 0, count: 0 };
  }

  /** Stops the Worker, if any. */
  [Symbol.dispose](): void {
    if (!this.#worker) return;
    Atomics.store(this.#views.control, 0, -1);
    Atomics.notify(this.#views.control, 0);
    this.#worker.terminate();
    this.#worker = undefined;
  }
}

/**
 * Mean cross-entropy plus `l2 · ||W||²` (bias not penalized) at `at`, its
 * gradient into `grad`, and the training accuracy. The data term is one
 * call of the compiled kernels over the codes, in float32, or two, one per
 * share, when `second` takes the codes from its row on.
 */
function objectiveAt(
  p: Problem,
  l2: number,
  sc: SoftmaxArrays,
  at: Float64Array,
  grad: Float64Array,
  second: SecondShare | undefined,
): Objective {
  const { kern, n, d, k } = p;
  const ld = d + 1;
  second?.begin(at, 1 / n);
  sc.w.view.set(at);
  sc.grad.view.fill(0);
  const data = kern.softmaxEval(sc, 0, second?.from ?? n, d, k, 1 / n);
  grad.set(sc.grad.view);
  if (second) {
    const rest = second.end();
    data.loss += rest.loss;
    data.correct += rest.correct;
    for (let t = 0; t < grad.length; t++) grad[t]! += rest.grad[t]!;
  }
  let penalty = 0;
  for (let m = 0; m < k; m++) {
    for (let j = 0, t = m * ld; j < d; j++, t++) {
      penalty += at[t]! * at[t]!;
      grad[t]! += 2 * l2 * at[t]!;
    }
  }
  const loss = data.loss / n;
  return { objective: loss + l2 * penalty, loss, accuracy: data.correct / n };
}

/** The arrays of the problem's softmax evaluations, laid out in its kernels' memory. */
export function softmaxArrays(p: Problem): SoftmaxArrays {
  const { kern, n, d, k } = p;
  const size = k * (d + 1);
  const a: SoftmaxArrays = {
    x: p.x,
    y: kern.alloc(Int32Array, n),
    w: kern.alloc(Float64Array, size),
    wf: kern.alloc(Float32Array, size),
    gf: kern.alloc(Float32Array, size),
    sf: kern.alloc(Float32Array, 4 * k),
    grad: kern.alloc(Float64Array, size),
    out: kern.alloc(Float64Array, 2),
  };
  a.y.view.set(p.y);
  return a;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let t = 0; t < a.length; t++) s += a[t]! * b[t]!;
  return s;
}

/**
 * Softmax regression by L-BFGS from `w` (`k x (d + 1)`), updated in place,
 * until the gradient's largest entry is at most `tol`, the objective stops
 * decreasing, or `maxIterations`. Returns the iterations taken.
 *
 * @param p the problem
 * @param l2 the weight of the L2 penalty
 * @param w the starting weights, updated in place
 * @param maxIterations the most iterations
 * @param tol the tolerance on the gradient's largest entry
 * @param onIteration called after every accepted iterate
 * @param second the second share of the codes, when they are split
 */
export function softmaxSolve(
  p: Problem,
  l2: number,
  w: Float64Array,
  maxIterations: number,
  tol: number,
  onIteration?: IterationCallback,
  second?: SecondShare,
): number {
  const { d, k } = p;
  const size = w.length;
  const sc = softmaxArrays(p);
  if (size !== k * (d + 1)) {
    throw new RangeError(`Invalid weights: ${size} values, use ${k * (d + 1)}`);
  }
  const memory = 10;
  const ss: Float64Array[] = [];
  const ys: Float64Array[] = [];
  const rhos: number[] = [];
  let g = new Float64Array(size);
  let cur = objectiveAt(p, l2, sc, w, g, second);
  const dir = new Float64Array(size);
  const next = new Float64Array(size);
  let gNext = new Float64Array(size);
  const alphas = new Float64Array(memory);
  let sNew: Float64Array = new Float64Array(size);
  let yNew: Float64Array = new Float64Array(size);
  let iteration = 0;
  while (iteration < maxIterations) {
    let gMax = 0;
    for (let t = 0; t < size; t++) gMax = Math.max(gMax, Math.abs(g[t]!));
    if (gMax <= tol) break;
    // Two-loop recursion: dir = -H g.
    for (let t = 0; t < size; t++) dir[t] = -g[t]!;
    for (let h = ss.length - 1; h >= 0; h--) {
      alphas[h] = rhos[h]! * dot(ss[h]!, dir);
      const yh = ys[h]!;
      for (let t = 0; t < size; t++) dir[t]! -= alphas[h]! * yh[t]!;
    }
    let step = 1;
    if (ss.length > 0) {
      const last = ss.length - 1;
      const gamma = dot(ss[last]!, ys[last]!) / dot(ys[last]!, ys[last]!);
      for (let t = 0; t < size; t++) dir[t]! *= gamma;
    } else {
      step = 1 / Math.sqrt(dot(g, g));
    }
    for (let h = 0; h < ss.length; h++) {
      const beta = rhos[h]! * dot(ys[h]!, dir);
      const sh = ss[h]!;
      for (let t = 0; t < size; t++) dir[t]! += (alphas[h]! - beta) * sh[t]!;
    }
    let slope = dot(g, dir);
    if (!(slope < 0)) {
      // Not a descent direction (rounding): start the memory afresh.
      ss.length = ys.length = rhos.length = 0;
      for (let t = 0; t < size; t++) dir[t] = -g[t]!;
      slope = -dot(g, g);
      step = 1 / Math.sqrt(-slope);
    }
    let found: Objective | undefined;
    for (let tries = 0; tries < 30; tries++) {
      for (let t = 0; t < size; t++) next[t] = w[t]! + step * dir[t]!;
      const trial = objectiveAt(p, l2, sc, next, gNext, second);
      if (trial.objective <= cur.objective + 1e-4 * step * slope) {
        found = trial;
        break;
      }
      step /= 2;
    }
    if (found === undefined) break;
    iteration++;
    for (let t = 0; t < size; t++) {
      sNew[t] = next[t]! - w[t]!;
      yNew[t] = gNext[t]! - g[t]!;
    }
    const sy = dot(sNew, yNew);
    if (sy > 1e-12) {
      ss.push(sNew);
      ys.push(yNew);
      rhos.push(1 / sy);
      // The oldest correction pair's arrays hold the next one.
      if (ss.length > memory) {
        sNew = ss.shift()!;
        yNew = ys.shift()!;
        rhos.shift();
      } else {
        sNew = new Float64Array(size);
        yNew = new Float64Array(size);
      }
    }
    const decrease = cur.objective - found.objective;
    w.set(next);
    [g, gNext] = [gNext, g];
    cur = found;
    if (onIteration) {
      sc.w.view.set(w);
      onIteration(iteration, cur.loss, cur.accuracy, sc.w);
    }
    if (decrease <= 1e-12 * Math.max(1, Math.abs(cur.objective))) break;
  }
  return iteration;
}
