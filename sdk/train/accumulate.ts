/**
 * Gradient accumulation: the gradient of a mean loss over a large batch,
 * computed one micro-batch at a time, so only one micro-batch's activations
 * are alive at once (MobileNetV2 at batch 32 does not fit in the wasm
 * backend's 4 GiB memory in one piece; four micro-batches of 8 do).
 *
 * The result equals the full batch's gradient when the loss is a mean over
 * examples and no layer mixes examples: BatchNormalization in training mode
 * normalizes with each micro-batch's own statistics, as it would with a
 * smaller batch.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { NamedTensorMap, Scalar, Tensor, Variable } from "../_tfjs_types.ts";

/** One micro-batch: the data `f` reads and how many examples it holds. */
export interface MicroBatch<T> {
  /** What the loss function reads (tensors, usually `{ xs, ys }`). */
  data: T;
  /** Examples in this micro-batch: its weight in the mean. */
  size: number;
}

/** What {@linkcode accumulatedGradients} returns, shaped like `tf.variableGrads`'s result. */
export interface AccumulatedGradients {
  /** The mean loss over all examples. */
  value: Scalar;
  /** The gradient of `value` for each variable, by variable name. */
  grads: NamedTensorMap;
}

/**
 * Computes the gradients of a mean loss over all the examples of
 * `microBatches`, one micro-batch at a time: `Σᵢ (nᵢ / N) ∇ f(batchᵢ)`.
 * Every tensor it makes is disposed except the result, which the caller owns
 * (pass `grads` to `optimizer.applyGradients`, then dispose both).
 *
 * @param f the mean loss of one micro-batch; runs inside `tf.variableGrads`
 * @param vars the variables to differentiate (e.g. `model.trainableWeights.map((w) => w.read())`)
 * @param microBatches the micro-batches, in any order, synchronous or asynchronous
 * @returns the mean loss and its gradient for each variable
 * @throws {RangeError} when there are no micro-batches, or one has a size that is not a positive integer
 * @throws {Error} whatever `f` throws
 *
 * @example Two micro-batches give the full batch's gradient
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { accumulatedGradients } from "./accumulate.ts";
 * const w = tf.variable(tf.scalar(2), true, "w");
 * const { value, grads } = await accumulatedGradients(
 *   (x: tf.Tensor1D) => tf.mean(tf.mul(w, x)) as tf.Scalar,
 *   [w],
 *   [{ data: tf.tensor1d([1, 2]), size: 2 }, { data: tf.tensor1d([3]), size: 1 }],
 * );
 * assertEquals([...await value.data()], [4]);
 * assertEquals([...await grads["w"]!.data()], [2]);
 * ```
 */
export async function accumulatedGradients<T>(
  f: (data: T) => Scalar,
  vars: Variable[],
  microBatches: Iterable<MicroBatch<T>> | AsyncIterable<MicroBatch<T>>,
): Promise<AccumulatedGradients> {
  let sums: tf.NamedTensorMap | null = null;
  let lossSum: tf.Scalar | null = null;
  let total = 0;
  try {
    for await (const { data, size } of microBatches) {
      if (!Number.isInteger(size) || size <= 0) {
        throw new RangeError(
          `Cannot accumulate gradients: micro-batch size "${size}" is not a positive integer`,
        );
      }
      const { value, grads } = variableGrads(() => f(data), vars);
      const next: tf.NamedTensorMap = tf.tidy(() => {
        const out: tf.NamedTensorMap = {};
        for (const [name, g] of Object.entries(grads)) {
          const weighted = tf.mul(g, size);
          out[name] = sums === null ? weighted : tf.add(sums[name]!, weighted);
        }
        return out;
      });
      const nextLoss = tf.tidy(() => {
        const weighted = tf.mul(value, size) as tf.Scalar;
        return lossSum === null ? weighted : (tf.add(lossSum, weighted) as tf.Scalar);
      });
      tf.dispose([value, grads, sums ?? {}, lossSum ?? []]);
      sums = next;
      lossSum = nextLoss;
      total += size;
      // Let the event loop breathe between micro-batches (progress bars, webgpu readbacks).
      await Promise.resolve();
    }
  } catch (e) {
    // Whatever was summed so far is of no use to the caller.
    tf.dispose([sums ?? {}, lossSum ?? []]);
    throw e;
  }
  if (sums === null || lossSum === null) {
    throw new RangeError("Cannot accumulate gradients: there are no micro-batches");
  }
  const grads: tf.NamedTensorMap = tf.tidy(() => {
    const out: tf.NamedTensorMap = {};
    for (const [name, s] of Object.entries(sums!)) out[name] = tf.div(s, total);
    return out;
  });
  const value = tf.tidy(() => tf.div(lossSum!, total) as tf.Scalar);
  tf.dispose([sums, lossSum]);
  return { value, grads };
}

/**
 * `tf.variableGrads`, which also frees what the gradient tape holds when `f`
 * or a gradient throws. tfjs keeps the activations that gradients need
 * (every `save`d tensor) until the backward pass ends, and an error on the
 * way (the wasm heap full, a bad shape) leaves them alive and the tape in
 * place: a MobileNetV2 micro-batch that ran out of heap kept 1,000 tensors
 * and the whole heap, so that a retry with a smaller micro-batch failed too.
 *
 * @param f the loss
 * @param vars the variables to differentiate
 * @returns what `tf.variableGrads` returns
 * @throws {Error} whatever `f` or the backward pass throws, once the tape is freed
 *
 * @example A failing loss leaves no tensors behind
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { variableGrads } from "./accumulate.ts";
 * const w = tf.variable(tf.ones([4]), true, "w4");
 * const before = tf.memory().numTensors;
 * assertThrows(() =>
 *   variableGrads(() => {
 *     tf.exp(tf.mul(w, 2));
 *     throw new Error("no loss");
 *   }, [w])
 * );
 * assertEquals(tf.memory().numTensors, before);
 * ```
 */
export function variableGrads(f: () => Scalar, vars: Variable[]): AccumulatedGradients {
  try {
    // The tidy frees the tensors the failed call made outside the tape (the loss).
    return tf.tidy(() => tf.variableGrads(f, vars));
  } catch (e) {
    const state = (tf.engine() as unknown as {
      state: { activeTape: { saved?: Tensor[] }[] | null; gradientDepth: number };
    }).state;
    // At depth 0 the tape is ours alone (no enclosing gradient computation).
    if (state.gradientDepth === 0 && state.activeTape !== null) {
      for (const node of state.activeTape) tf.dispose(node.saved ?? []);
      state.activeTape = null;
    }
    throw e;
  }
}

/**
 * Splits tensors that share a batch axis (axis 0) into micro-batches of at
 * most `microBatchSize` examples, for {@linkcode accumulatedGradients}. Each
 * micro-batch's tensors are fresh slices the caller disposes.
 *
 * @param tensors the batch, e.g. `{ xs, ys }`
 * @param microBatchSize the most examples per micro-batch
 * @returns the micro-batches, in order
 * @throws {RangeError} when `microBatchSize` is not a positive integer, or the tensors' batch sizes differ
 *
 * @example Split a batch of 5 into 2 + 2 + 1
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { splitBatch } from "./accumulate.ts";
 * const parts = splitBatch({ xs: tf.zeros([5, 3]), ys: tf.zeros([5, 2]) }, 2);
 * assertEquals(parts.map((p) => p.size), [2, 2, 1]);
 * ```
 */
export function splitBatch<T extends Record<string, Tensor>>(
  tensors: T,
  microBatchSize: number,
): MicroBatch<T>[] {
  if (!Number.isInteger(microBatchSize) || microBatchSize <= 0) {
    throw new RangeError(
      `Cannot split a batch: micro-batch size "${microBatchSize}" is not a positive integer`,
    );
  }
  const sizes = new Set(Object.values(tensors).map((t) => t.shape[0]));
  if (sizes.size !== 1) {
    throw new RangeError(
      `Cannot split a batch: the tensors' batch sizes differ: "${[...sizes].join(", ")}"`,
    );
  }
  const n = [...sizes][0] ?? 0;
  const parts: MicroBatch<T>[] = [];
  for (let start = 0; start < n; start += microBatchSize) {
    const size = Math.min(microBatchSize, n - start);
    const data = {} as Record<string, tf.Tensor>;
    for (const [key, t] of Object.entries(tensors)) {
      data[key] = tf.slice(t, start, size);
    }
    parts.push({ data: data as T, size });
  }
  return parts;
}
