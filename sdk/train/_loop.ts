/**
 * The custom training loop behind `fineTuneNetwork()`: a forward pass split
 * at a cut point into a frozen part (run outside the gradient tape, in
 * inference mode, so its BatchNormalization layers keep their moving
 * statistics) and a trainable part (run in training mode), one optimizer per
 * variable group so each group has its own learning rate, and the epoch loop
 * with validation, early stopping and per-epoch checkpoints.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  type Inbound,
  layerGraph,
  type LayerNode,
  pools2x2,
  tensorKey,
} from "../surgery/_rebuild.ts";
import type { Batch, Dataset, Preprocessing } from "../data/types.ts";
import type { EpochMetrics } from "../types.ts";
import { accumulatedGradients, type MicroBatch, splitBatch, variableGrads } from "./accumulate.ts";
import { BATCH_NORM_KERNELS, CLIP_GRAD_KERNEL } from "../devices/kernels.ts";
import type { CheckpointState } from "./checkpoint.ts";
import { fusableConv, fusedConv, fusedConvMaxPool, poolsInTraining } from "./_fused_conv.ts";

/** A model's forward pass split after `lastFrozen`. */
export interface SplitForward {
  /** The frozen layers, applied in inference mode. */
  frozen: LayerNode[];
  /** The layers after them, applied in training mode. */
  trainable: LayerNode[];
  /** The model's input tensor. */
  input: Inbound;
  /** The tensor between the two parts. */
  boundary: Inbound;
  /** The model's output tensor. */
  output: Inbound;
}

/**
 * Splits `model` after the cut point `lastFrozen` (`null`: nothing frozen).
 * The model must be one `attachHead()` built: single input, no shared layers.
 */
export function splitForward(model: tf.LayersModel, lastFrozen: string | null): SplitForward {
  const graph = layerGraph(model, "train");
  const input: Inbound = { layer: graph.inputName, tensorIndex: 0 };
  if (lastFrozen === null) {
    return { frozen: [], trainable: graph.layers, input, boundary: input, output: graph.output };
  }
  const at = graph.layers.findIndex((n) => n.name === lastFrozen);
  if (at < 0) throw new RangeError(`Cannot freeze until "${lastFrozen}": no such layer`);
  return {
    frozen: graph.layers.slice(0, at + 1),
    trainable: graph.layers.slice(at + 1),
    input,
    boundary: { layer: lastFrozen, tensorIndex: 0 },
    output: graph.output,
  };
}

/**
 * Applies `nodes` in order to the tensor `start` holds at `from`, with
 * `training` passed to every layer, and returns the tensor at `to`.
 * Intermediate tensors are left to the enclosing scope (tidy or tape).
 */
function walk(
  nodes: LayerNode[],
  from: Inbound,
  start: tf.Tensor,
  to: Inbound,
  training: boolean,
): tf.Tensor {
  const tensors = new Map<string, tf.Tensor>([[tensorKey(from), start]]);
  const pooling = training && poolsInTraining() ? poolings(nodes, to) : NONE;
  const skipped = new Set<string>();
  for (const node of nodes) {
    if (skipped.has(node.name)) continue;
    const inputs = node.inbound.map((ref) => tensors.get(tensorKey(ref))!);
    const input = inputs.length === 1 ? inputs[0]! : inputs;
    const bound = reluBound(node.layer);
    const conv = training ? fusableConv(node.layer, input) : null;
    const pool = conv !== null ? pooling.get(node.name) : undefined;
    if (pool !== undefined) {
      // The convolution and the max pooling that alone reads it, as one op.
      const out = fusedConvMaxPool(conv!, input as tf.Tensor4D);
      tensors.set(tensorKey({ layer: pool, tensorIndex: 0 }), out);
      skipped.add(pool);
      continue;
    }
    const out = training && ownsBatchNorm(node.layer)
      ? batchNormInTraining(node.layer as BatchNormLayer, input as tf.Tensor)
      : bound !== null
      ? boundedRelu(input as tf.Tensor, bound)
      : conv !== null
      ? fusedConv(conv, input as tf.Tensor4D)
      : node.layer.apply(input, { training });
    (Array.isArray(out) ? out : [out]).forEach((t, i) =>
      tensors.set(tensorKey({ layer: node.name, tensorIndex: i }), t as tf.Tensor)
    );
  }
  return tensors.get(tensorKey(to))!;
}

const NONE: ReadonlyMap<string, string> = new Map();
const found = new WeakMap<LayerNode[], { to: string; pools: Map<string, string> }>();

/**
 * The 2×2 stride-2 unpadded max pooling nodes among `nodes` that alone read
 * a Conv2D's output, by the Conv2D's name; not where the Conv2D's output is
 * the walk's result `to`. Found once per list of nodes and result.
 */
function poolings(nodes: LayerNode[], to: Inbound): ReadonlyMap<string, string> {
  const known = found.get(nodes);
  if (known?.to === tensorKey(to)) return known.pools;
  const readers = new Map<string, LayerNode[]>();
  for (const node of nodes) {
    for (const ref of node.inbound) {
      const key = tensorKey(ref);
      readers.set(key, [...(readers.get(key) ?? []), node]);
    }
  }
  const out = new Map<string, string>();
  for (const node of nodes) {
    if (node.className !== "Conv2D" || node.name === to.layer) continue;
    const read = readers.get(tensorKey({ layer: node.name, tensorIndex: 0 })) ?? [];
    if (read.length === 1 && pools2x2(read[0]!) && read[0]!.inbound.length === 1) {
      out.set(node.name, read[0]!.name);
    }
  }
  found.set(nodes, { to: tensorKey(to), pools: out });
  return out;
}

/** The bound of a ReLU layer with a `maxValue` (ReLU6 in MobileNets), or null for any other layer. */
function reluBound(layer: tf.layers.Layer): number | null {
  if (layer.getClassName() !== "ReLU") return null;
  const max = (layer.getConfig() as { maxValue?: number | null }).maxValue;
  return typeof max === "number" && max >= 0 ? max : null;
}

/** The smallest positive float32: `x ≥ it` is `x > 0` for every float32 `x`. */
const SMALLEST_POSITIVE = 2 ** -149;

/**
 * A ReLU bounded at `max` as one operation: `min(max(x, 0), max)`, with the
 * gradient `dy · [0 < x ≤ max]` that tfjs's ReLU layer gets from its `relu`
 * followed by `clipByValue`, in one pass each way where the layer takes two
 * (on wasm, the gradient runs on the clip gradient's kernel). The values
 * are the layer's, except that −0 stays −0 where `relu` makes it 0, and a
 * NaN input gets a gradient of 0 where the layer's is NaN.
 */
function boundedRelu(x: tf.Tensor, max: number): tf.Tensor {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const t = args[0] as tf.Tensor, save = args[1] as tf.GradSaveFunc;
    save([t]);
    return {
      value: tf.clipByValue(t, 0, max),
      gradFunc: (dy, saved) => {
        const [v] = saved as [tf.Tensor];
        const g = dy as tf.Tensor;
        if (
          v.dtype === "float32" && tf.getKernel(CLIP_GRAD_KERNEL, tf.getBackend()) !== undefined
        ) {
          return tf.engine().runKernel(CLIP_GRAD_KERNEL, { x: v, dy: g }, {
            clipValueMin: SMALLEST_POSITIVE,
            clipValueMax: max,
          }) as tf.Tensor;
        }
        return tf.tidy(() =>
          tf.mul(g, tf.cast(tf.logicalAnd(tf.greater(v, 0), tf.lessEqual(v, max)), g.dtype))
        );
      },
    };
  });
  return op(x);
}

/** The members of tfjs's BatchNormalization layer that training mode uses. */
interface BatchNormLayer extends tf.layers.Layer {
  gamma?: { read(): tf.Tensor };
  beta?: { read(): tf.Tensor };
  movingMean: { read(): tf.Tensor; write(t: tf.Tensor): void };
  movingVariance: { read(): tf.Tensor; write(t: tf.Tensor): void };
}

/**
 * Whether the training loop runs this layer's training mode itself: every
 * BatchNormalization over the last axis. tfjs's own path records about a
 * dozen full-size operations on the tape per layer (the moments, then the
 * gradients of `FusedBatchNorm` and of the moments, each a pass over the
 * activations): 38% of a MobileNetV2 step's kernel time on wasm. Ours is one
 * operation with its gradient written out (see {@linkcode batchNormInTraining}).
 * It also trains layers without a scale or an offset (`scale: false` or
 * `center: false`, as in every BatchNormalization of Keras' InceptionV3),
 * where tfjs 4.22 fails with "Cannot read properties of undefined (reading
 * 'read')".
 */
function ownsBatchNorm(layer: tf.layers.Layer): boolean {
  if (layer.getClassName() !== "BatchNormalization") return false;
  const config = layer.getConfig() as { axis?: number };
  const rank = layer.inputSpec?.[0]?.ndim ?? 4;
  return config.axis === -1 || config.axis === rank - 1;
}

/**
 * BatchNormalization in training mode as tfjs computes it (the batch's mean
 * and biased variance over every axis but the last; the moving statistics
 * move by `1 − momentum` toward them), with or without a scale and offset,
 * as one operation on the gradient tape.
 *
 * Its gradient, per channel over the `N` values of a batch, with `x̂ = (x −
 * μ) / σ`, `σ = √(variance + ε)` and `a = γ / σ`:
 * `∂β = Σ dy`, `∂γ = Σ dy · x̂`, `∂x = a · (dy − (∂β + x̂ · ∂γ) / N)`,
 * computed as two per-channel affine maps (`FusedBatchNorm`, one pass each)
 * and a sum, instead of the chain of full-size products, differences and
 * reductions that differentiating each step gives. Where the backend has
 * the kernels of `BATCH_NORM_KERNELS` (wasm), the variance, both sums and
 * `∂x` take one pass over the activations each.
 */
function batchNormInTraining(layer: BatchNormLayer, x: tf.Tensor): tf.Tensor {
  const config = layer.getConfig() as { epsilon: number; momentum: number };
  const gamma = layer.gamma?.read(), beta = layer.beta?.read();
  // The backend's own kernels for the statistics and the gradient, where it has them (wasm).
  const backend = tf.getBackend();
  const compiled = x.dtype === "float32" &&
    Object.values(BATCH_NORM_KERNELS).every((k) => tf.getKernel(k, backend) !== undefined);
  const run = (kernel: string, inputs: tf.NamedTensorMap) =>
    tf.engine().runKernel(kernel, inputs, {}) as tf.Tensor;
  let stats: tf.Tensor[] = [];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.at(-1) as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor;
    const scale = gamma === undefined ? undefined : args[1] as tf.Tensor;
    const offset = beta === undefined ? undefined : args[gamma === undefined ? 1 : 2] as tf.Tensor;
    const axes = Array.from({ length: input.rank - 1 }, (_, i) => i);
    const { mean, variance } = compiled
      ? (() => {
        const mean = tf.mean(input, axes);
        return { mean, variance: run(BATCH_NORM_KERNELS.variance, { x: input, mean }) };
      })()
      : tf.moments(input, axes);
    stats = [tf.keep(mean), tf.keep(variance)];
    const y = tf.batchNorm(input, mean, variance, offset, scale, config.epsilon);
    save([input, mean, variance]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, mu, v] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const n = xs.size / xs.shape[xs.rank - 1]!;
        const invStd = tf.rsqrt(tf.add(v, config.epsilon));
        if (compiled) {
          // One pass for both sums, one for dx = a·dy + b·(x − μ) + c.
          const [sumDy, sumDyDev] = tf.unstack(
            run(BATCH_NORM_KERNELS.gradSums, { x: xs, dy, mean: mu }),
          );
          const dGamma = tf.mul(sumDyDev!, invStd), dBeta = sumDy!;
          const a = scale === undefined ? invStd : tf.mul(scale, invStd);
          const b = tf.mul(tf.mul(a, invStd), tf.div(dGamma, -n));
          const c = tf.mul(a, tf.div(dBeta, -n));
          const coef = tf.stack([a, b, c]);
          const dx = run(BATCH_NORM_KERNELS.gradInput, { x: xs, dy, mean: mu, coef });
          const grads = [dx];
          if (scale !== undefined) grads.push(dGamma);
          if (offset !== undefined) grads.push(dBeta);
          return grads;
        }
        const xHat = tf.batchNorm(xs, mu, v, undefined, undefined, config.epsilon);
        const dBeta = tf.sum(dy, axes);
        const dGamma = tf.sum(tf.mul(dy, xHat), axes);
        const a = scale === undefined ? invStd : tf.mul(scale, invStd);
        const ones = tf.onesLike(a), zeros = tf.zerosLike(a);
        // a·dy − a·∂β/N, then (x − μ)·(−a·∂γ/(N·σ)): both FusedBatchNorm passes.
        const first = tf.batchNorm(dy, zeros, ones, tf.mul(a, tf.div(dBeta, -n)), a, 0);
        const second = tf.batchNorm(
          xs,
          mu,
          ones,
          undefined,
          tf.mul(tf.mul(a, invStd), tf.div(dGamma, -n)),
          0,
        );
        const dx = tf.add(first, second);
        const grads = [dx];
        if (scale !== undefined) grads.push(dGamma);
        if (offset !== undefined) grads.push(dBeta);
        return grads;
      },
    };
  });
  const inputs = [x, gamma, beta].filter((t): t is tf.Tensor => t !== undefined);
  const y = op(...inputs);
  const [mean, variance] = stats as [tf.Tensor, tf.Tensor];
  const decay = 1 - config.momentum;
  for (
    const [variable, value] of [[layer.movingMean, mean], [layer.movingVariance, variance]] as const
  ) {
    // The variable keeps its own reference: the tidy frees the computed tensor.
    tf.tidy(() => {
      const old = variable.read();
      variable.write(tf.sub(old, tf.mul(tf.sub(old, value), decay)));
    });
  }
  tf.dispose(stats);
  return y;
}

/** The frozen part's output for `xs`, computed in inference mode without a gradient tape; the caller disposes it. */
export function frozenForward(split: SplitForward, xs: tf.Tensor): tf.Tensor {
  if (split.frozen.length === 0) return xs.clone();
  return tf.tidy(() => walk(split.frozen, split.input, xs, split.boundary, false));
}

/** The trainable part's output (class probabilities), in training mode. */
export function trainableForward(split: SplitForward, h: tf.Tensor): tf.Tensor {
  return walk(split.trainable, split.boundary, h, split.output, true);
}

/** The mean categorical cross-entropy of probabilities `probs` against integer labels `ys`. */
export function crossEntropy(probs: tf.Tensor, ys: tf.Tensor, numClasses: number): tf.Scalar {
  return tf.tidy(() =>
    tf.mean(tf.metrics.categoricalCrossentropy(tf.oneHot(ys, numClasses), probs)) as tf.Scalar
  );
}

function correctCount(probs: tf.Tensor, ys: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(probs, -1), ys), "int32")));
}

/**
 * The micro-batches with the frozen part applied, one at a time as the
 * accumulation asks for them, outside the gradient tape.
 */
async function* frozenParts(
  split: SplitForward,
  parts: MicroBatch<{ xs: tf.Tensor; ys: tf.Tensor }>[],
): AsyncGenerator<MicroBatch<{ h: tf.Tensor; ys: tf.Tensor }>> {
  for (const part of parts) {
    const h = frozenForward(split, part.data.xs);
    try {
      yield { data: { h, ys: part.data.ys }, size: part.size };
    } finally {
      h.dispose();
    }
  }
}

/** Variables that learn with one optimizer (hence at one learning rate). */
export interface VariableGroup {
  /** `head` or `base`: the name the optimizer's state is checkpointed under. */
  name: string;
  /** The variables, in a fixed order (optimizers keep their state by position). */
  vars: tf.Variable[];
  /** The group's optimizer. */
  optimizer: tf.Optimizer;
}

/** One training step's figures. */
export interface StepResult {
  /** Mean loss over the batch. */
  loss: number;
  /** Correct predictions in the batch. */
  correct: number;
}

/**
 * One optimization step on `batch`: gradients of the mean loss over all
 * groups' variables at once (accumulated over micro-batches when
 * `microBatch` is smaller than the batch), then each group's optimizer
 * applies its share. Disposes nothing of `batch`.
 */
export async function trainStep(
  split: SplitForward,
  groups: VariableGroup[],
  batch: Batch,
  numClasses: number,
  microBatch?: number,
): Promise<StepResult> {
  const vars = groups.flatMap((g) => g.vars);
  const corrects: tf.Scalar[] = [];
  const loss = (d: { h: tf.Tensor; ys: tf.Tensor }) => {
    const probs = trainableForward(split, d.h);
    corrects.push(tf.keep(correctCount(probs, d.ys)));
    return crossEntropy(probs, d.ys, numClasses);
  };
  let result: { value: tf.Scalar; grads: tf.NamedTensorMap };
  if (microBatch === undefined || microBatch >= batch.xs.shape[0]) {
    const h = frozenForward(split, batch.xs);
    try {
      result = variableGrads(() => loss({ h, ys: batch.ys }), vars);
    } finally {
      h.dispose();
    }
  } else {
    const parts = splitBatch({ xs: batch.xs, ys: batch.ys }, microBatch);
    try {
      result = await accumulatedGradients(loss, vars, frozenParts(split, parts));
    } finally {
      tf.dispose(parts.map((p) => p.data));
    }
  }
  const { value, grads } = result;
  try {
    for (const group of groups) {
      const mine: tf.NamedTensorMap = {};
      for (const v of group.vars) {
        const g = grads[v.name];
        if (g !== undefined) mine[v.name] = g;
      }
      group.optimizer.applyGradients(mine);
    }
    const [lossValue, ...counts] = await Promise.all([
      value.data(),
      ...corrects.map((c) => c.data()),
    ]);
    return {
      loss: lossValue![0]!,
      correct: counts.reduce((sum, c) => sum + c[0]!, 0),
    };
  } finally {
    tf.dispose([value, grads, corrects]);
  }
}

/** Mean loss and accuracy of `model` on `data`, in inference mode. */
export async function evaluate(
  model: tf.LayersModel,
  data: Dataset,
  batchSize: number,
  preprocess: Preprocessing,
  numClasses: number,
): Promise<{ loss: number; accuracy: number }> {
  let lossSum = 0;
  let correct = 0;
  let n = 0;
  for await (const { xs, ys } of data.batches(batchSize, { preprocess })) {
    const [l, c] = tf.tidy(() => {
      const probs = model.apply(xs, { training: false }) as tf.Tensor;
      return [tf.mul(crossEntropy(probs, ys, numClasses), xs.shape[0]), correctCount(probs, ys)];
    });
    const [lv, cv] = await Promise.all([l!.data(), c!.data()]);
    lossSum += lv[0]!;
    correct += cv[0]!;
    n += xs.shape[0];
    tf.dispose([xs, ys, l!, c!]);
  }
  return { loss: n === 0 ? NaN : lossSum / n, accuracy: n === 0 ? NaN : correct / n };
}

/**
 * The shuffle seed of epoch `epoch` of a run seeded `seed`: the data order is
 * a pure function of the two, so a resumed run sees what an uninterrupted one does.
 */
export function dataSeed(seed: number, epoch: number): number {
  return (Math.imul(seed | 0, 0x9e3779b1) + Math.imul(epoch, 0x85ebca6b)) | 0;
}

/**
 * The Dropout seed of layer `layer` at step `step` of epoch `epoch`: each
 * step draws new masks, and the masks are a pure function of the run's seed
 * and where it is, so a resumed run draws what an uninterrupted one did.
 */
export function dropoutSeed(seed: number, epoch: number, step: number, layer: number): number {
  return (dataSeed(seed, epoch) ^ Math.imul(step + 1, 0x27d4eb2f) ^
    Math.imul(layer + 1, 0x165667b1)) |
    0;
}

/**
 * The layers of `nodes` whose masks tfjs draws from their `seed` field
 * (Dropout and its subclass SpatialDropout1D). tfjs's GaussianNoise,
 * GaussianDropout and AlphaDropout take no seed: a run through them cannot
 * be repeated, resumed or not.
 */
function seededDropouts(nodes: LayerNode[]): { seed?: number | undefined }[] {
  return nodes.map((n) => n.layer).filter((l) =>
    l.getClassName() === "Dropout" || l.getClassName() === "SpatialDropout1D"
  ) as unknown as { seed?: number | undefined }[];
}

/** What one phase trains. */
export interface Phase {
  split: SplitForward;
  groups: VariableGroup[];
}

/** Everything {@linkcode runEpochs} needs. */
export interface LoopConfig {
  model: tf.LayersModel;
  train: Dataset;
  validation?: Dataset | undefined;
  preprocess: Preprocessing;
  numClasses: number;
  batchSize: number;
  seed: number;
  patience: number;
  microBatch?: number | undefined;
  headEpochs: number;
  epochs: number;
  head: Phase;
  all: Phase;
  onEpoch?: ((m: EpochMetrics) => void) | undefined;
  onBatch?: ((done: number, total: number, loss: number) => void) | undefined;
  /** Called after every epoch with the state to save. */
  checkpoint?: ((state: CheckpointState) => Promise<void>) | undefined;
  /** Where a resumed run starts. */
  state: CheckpointState;
  /** The best epoch's weights when resuming (owned by the loop from then on). */
  bestWeights?: tf.Tensor[] | undefined;
}

function copyWeights(model: tf.LayersModel): tf.Tensor[] {
  return model.weights.map((w) => w.read().clone());
}

/**
 * Runs the epochs `config.state` has not done yet: the head phase, then the
 * all phase; early stopping on validation loss (a stalled head phase moves on
 * to the all phase, a stalled all phase ends the run); restores the best
 * epoch's weights at the end. Returns the final state.
 */
export async function runEpochs(config: LoopConfig): Promise<CheckpointState> {
  const { model, train, validation } = config;
  const state: CheckpointState = structuredClone(config.state);
  let best = config.bestWeights;
  const dropouts = [
    ...new Set([config.head, config.all].flatMap((p) => seededDropouts(p.split.trainable))),
  ];
  const dropoutSeeds = dropouts.map((d) => d.seed);
  try {
    while (!state.stopped) {
      const phaseName: "head" | "all" =
        state.phase === "head" && state.headEpochsDone < config.headEpochs ? "head" : "all";
      if (phaseName === "all" && state.allEpochsDone >= config.epochs) break;
      const phase = phaseName === "head" ? config.head : config.all;
      const epoch = state.epoch + 1;
      const started = performance.now();
      let lossSum = 0;
      let correct = 0;
      let done = 0;
      const batches = train.batches(config.batchSize, {
        shuffle: true,
        seed: dataSeed(config.seed, epoch),
        preprocess: config.preprocess,
      });
      let stepInEpoch = 0;
      for await (const batch of batches) {
        try {
          const n = batch.xs.shape[0];
          dropouts.forEach((d, i) => d.seed = dropoutSeed(config.seed, epoch, stepInEpoch, i));
          stepInEpoch++;
          const step = await trainStep(
            phase.split,
            phase.groups,
            batch,
            config.numClasses,
            config.microBatch,
          );
          lossSum += step.loss * n;
          correct += step.correct;
          done += n;
          config.onBatch?.(done, train.size, step.loss);
        } finally {
          tf.dispose([batch.xs, batch.ys]);
        }
      }
      const trainSeconds = (performance.now() - started) / 1000;
      const metrics: EpochMetrics = {
        epoch,
        phase: phaseName,
        trainLoss: lossSum / done,
        trainAccuracy: correct / done,
        imagesPerSecond: done / trainSeconds,
        seconds: 0,
      };
      if (validation !== undefined) {
        const v = await evaluate(
          model,
          validation,
          config.batchSize,
          config.preprocess,
          config.numClasses,
        );
        metrics.valLoss = v.loss;
        metrics.valAccuracy = v.accuracy;
      }
      metrics.seconds = (performance.now() - started) / 1000;
      state.epoch = epoch;
      state.history.push(metrics);
      if (phaseName === "head") state.headEpochsDone++;
      else state.allEpochsDone++;
      let stalled = false;
      if (metrics.valLoss !== undefined) {
        if (state.bestValLoss === null || metrics.valLoss < state.bestValLoss) {
          state.bestValLoss = metrics.valLoss;
          state.bestEpoch = epoch;
          state.epochsSinceBest = 0;
          tf.dispose(best);
          best = copyWeights(model);
        } else {
          state.epochsSinceBest++;
          stalled = state.epochsSinceBest >= config.patience;
        }
      }
      if (phaseName === "head") {
        if (stalled || state.headEpochsDone >= config.headEpochs) {
          state.phase = "all";
          state.epochsSinceBest = 0;
        }
      } else if (stalled) {
        state.stopped = true;
      }
      await config.checkpoint?.(structuredClone(state));
      config.onEpoch?.(metrics);
    }
    if (best !== undefined && state.bestEpoch !== state.epoch) model.setWeights(best);
    return state;
  } finally {
    // The returned model's config carries the seeds the layers came with.
    dropouts.forEach((d, i) => d.seed = dropoutSeeds[i]);
    tf.dispose(best);
  }
}
