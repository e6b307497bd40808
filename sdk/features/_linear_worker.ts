/**
 * The second thread of the softmax's evaluations (see `_linear_softmax.ts`):
 * a `node:worker_threads` Worker that holds a share of the codes in kernels of its own and, each
 * time the main thread posts weights in the shared buffer and this thread
 * claims the request first, evaluates its share and writes back the summed
 * loss, the number correct and the gradient.
 *
 * @module
 */
import { parentPort } from "node:worker_threads";
import { LinearKernels } from "./_linear_kernels.ts";
import { claim, type HelperStart, helperViews, softmaxArrays } from "./_linear_softmax.ts";

parentPort!.once("message", (start: HelperStart) => {
  const { d, k, shared } = start;
  const labels = new Int32Array(start.labels);
  const n = labels.length;
  const kern = new LinearKernels();
  const x = kern.alloc(Float32Array, n * d);
  x.view.set(new Float32Array(start.codes));
  const a = softmaxArrays({ kern, x, y: labels, n, d, k });
  const { control, w, grad, result } = helperViews(shared, k * (d + 1));
  parentPort!.postMessage("ready");
  let seen = 0;
  for (;;) {
    Atomics.wait(control, 0, seen);
    const seq = Atomics.load(control, 0);
    // Stopped: the main thread terminates this one next.
    if (seq < 0) return;
    seen = seq;
    // The main thread may have evaluated the share itself already.
    if (!claim(control, seq)) continue;
    try {
      a.w.view.set(w);
      a.grad.view.fill(0);
      const r = kern.softmaxEval(a, 0, n, d, k, result[2]!);
      grad.set(a.grad.view);
      result[0] = r.loss;
      result[1] = r.correct;
      Atomics.add(control, 3, 1);
    } catch {
      // The main thread reads a NaN loss as this thread's failure.
      result[0] = NaN;
    }
    Atomics.store(control, 1, seq);
    Atomics.notify(control, 1);
  }
});
