/**
 * Partial and full fine-tuning of a pretrained network: replace its
 * classifier with a new one, train the head (optionally alone first), then
 * continue backpropagation into some (`partial`) or all (`full`) pretrained
 * layers with a smaller learning rate than the head's.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { TrainCommonOptions, TrainOutcome } from "../types.ts";
import {
  type CheckpointState,
  readCheckpoint,
  restoreOptimizer,
  writeCheckpoint,
} from "./checkpoint.ts";
import { attachHead } from "../surgery/head.ts";
import { type Phase, runEpochs, splitForward, type VariableGroup } from "./_loop.ts";
import { type MicroBatchPlan, planMicroBatch, type StepCost, stepCost } from "./plan.ts";

/** How a step will run, passed to {@linkcode FineTuneNetworkOptions.onStepPlan} before training. */
export interface StepPlan extends StepCost, MicroBatchPlan {
  /** Weight tensors that train after the head-only epochs. */
  tensors: number;
  /** Values that train after the head-only epochs. */
  params: number;
}

/** The optimizer of each variable group. */
export type OptimizerName = "adam" | "sgd" | "momentum";

/** Options of {@linkcode fineTuneNetwork}. */
export interface FineTuneNetworkOptions extends TrainCommonOptions {
  /** `partial`: layers up to `freezeUntil` stay fixed; `full`: every layer trains. */
  strategy: "partial" | "full";
  /**
   * For `partial`: the last frozen layer, a cut point before `cut`.
   * @default the middle cut point between the input and `cut`
   */
  freezeUntil?: string;
  /** Pretrained layers learn at `lr × baseLrMult`. @default 0.1 */
  baseLrMult?: number;
  /** Epochs that train the new head alone before the base is unfrozen; `epochs` follow them. @default 0 */
  headEpochs?: number;
  /** The cut point the new head reads. @default the penultimate layer, `analyze().classifierCut` (else `featureCut`): only the classifier is replaced */
  cut?: string;
  /** Write a checkpoint to this folder after every epoch. @default none */
  checkpointDir?: string;
  /** Continue from the last checkpoint in `checkpointDir` (a fresh start when there is none). @default false */
  resume?: boolean;
  /** Called when `resume` found a checkpoint, with the number of epochs it had completed. */
  onResume?: (completedEpochs: number) => void;
  /**
   * Accumulate each batch's gradient over micro-batches of this many images.
   * @default the whole batch when its estimated memory fits `memoryBudget`, else the largest micro-batch that does
   */
  microBatch?: number;
  /** Heap bytes one step may use (see `plan.ts`). @default 3.5 GiB, under the wasm backend's 4 GiB */
  memoryBudget?: number;
  /** Called once before training with the step's estimated cost and micro-batch. */
  onStepPlan?: (plan: StepPlan) => void;
  /** `adam`, `sgd`, or `momentum` (SGD with momentum 0.9), one instance per variable group. @default "adam" */
  optimizer?: OptimizerName;
}

function positiveInteger(name: string, value: number | undefined, min = 1): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= min)) {
    throw new RangeError(
      `Cannot fine-tune: option "${name}" is "${value}": use an integer of at least ${min}`,
    );
  }
}

function validate(opts: FineTuneNetworkOptions): void {
  if (opts.strategy !== "partial" && opts.strategy !== "full") {
    throw new RangeError(
      `Cannot fine-tune: strategy "${String(opts.strategy)}" is not "partial" or "full"`,
    );
  }
  positiveInteger("epochs", opts.epochs, 0);
  positiveInteger("headEpochs", opts.headEpochs, 0);
  positiveInteger("batchSize", opts.batchSize);
  positiveInteger("microBatch", opts.microBatch);
  positiveInteger("patience", opts.patience);
  positiveInteger("numClasses", opts.numClasses, 2);
  if (!Number.isInteger(opts.seed)) {
    throw new RangeError(`Cannot fine-tune: seed "${opts.seed}" is not an integer`);
  }
  if (!(opts.lr > 0 && Number.isFinite(opts.lr))) {
    throw new RangeError(`Cannot fine-tune: learning rate "${opts.lr}" is not a positive number`);
  }
  const mult = opts.baseLrMult ?? 0.1;
  if (!(mult >= 0 && Number.isFinite(mult))) {
    throw new RangeError(`Cannot fine-tune: baseLrMult "${mult}" is not a number of at least 0`);
  }
  if (opts.numClasses !== opts.train.classes.length) {
    throw new RangeError(
      `Cannot fine-tune: numClasses "${opts.numClasses}" differs from the ${opts.train.classes.length} classes of "${opts.train.name}"`,
    );
  }
  if (opts.train.size === 0) {
    throw new RangeError(`Cannot fine-tune: the training data "${opts.train.name}" is empty`);
  }
  if (opts.resume && opts.checkpointDir === undefined) {
    throw new TypeError("Cannot resume: no checkpointDir was given");
  }
  const optimizer = opts.optimizer ?? "adam";
  if (!["adam", "sgd", "momentum"].includes(optimizer)) {
    throw new RangeError(
      `Cannot fine-tune: optimizer "${optimizer}" is not "adam", "sgd" or "momentum"`,
    );
  }
}

function makeOptimizer(name: OptimizerName, lr: number): tf.Optimizer {
  switch (name) {
    case "adam":
      return tf.train.adam(lr);
    case "sgd":
      return tf.train.sgd(lr);
    case "momentum":
      return tf.train.momentum(lr, 0.9);
  }
}

/**
 * An out-of-memory failure from a backend (wasm's heap ends at 4 GiB; tfjs
 * and the browser say it in several ways) as an error that says what to
 * change; any other error as it is.
 */
function outOfMemoryAdvice(e: unknown, microBatch: number, batchSize: number): unknown {
  const text = e instanceof Error ? e.message : String(e);
  if (
    !/out of memory|allocation failed|Cannot enlarge memory|could not allocate|memory access out of bounds|Aborted\(OOM\)/i
      .test(text)
  ) {
    return e;
  }
  const smaller = Math.max(1, Math.floor(microBatch / 2));
  return new RangeError(
    `Cannot train: the device ran out of memory with ${microBatch} image(s) per step (${
      text.split("\n")[0]
    }): pass --micro-batch ${smaller}${
      microBatch === batchSize ? ` or --batch-size ${smaller}` : ""
    }, or freeze more layers`,
    { cause: e },
  );
}

function setTrainable(model: tf.LayersModel, layers: Iterable<string>, trainable: boolean): void {
  for (const name of layers) model.getLayer(name).trainable = trainable;
}

function variablesOf(model: tf.LayersModel, layers: Iterable<string>): tf.Variable[] {
  return [...layers].flatMap((name) =>
    model.getLayer(name).trainableWeights.map((w) => w.read() as tf.Variable)
  );
}

/**
 * Fine-tunes a pretrained network on a new classification task, as
 * practitioners do when the new dataset is large enough: the classifier is
 * replaced by a new Dense(numClasses, softmax) at `cut`, then
 *
 * 1. for `headEpochs` epochs only the head trains (every pretrained layer
 *    frozen, BatchNormalization in inference mode), then
 * 2. for `epochs` epochs the head trains at `lr` together with the pretrained
 *    layers after `freezeUntil` (`partial`) or all of them (`full`) at
 *    `lr × baseLrMult`.
 *
 * Frozen layers run in inference mode outside the gradient tape, so their
 * weights and BatchNormalization moving statistics stay exactly as
 * pretrained. Each variable group (head, base) has its own optimizer.
 * With `validation`, training stops after `patience` epochs without a lower
 * validation loss (a stalled head phase moves on to the second phase) and
 * the returned model has the weights of the best epoch. Epoch `e` sees the
 * training data in an order fixed by `seed` and `e`, and Dropout layers in
 * the trained part draw their masks from seeds fixed by `seed`, `e` and the
 * step, so with `checkpointDir` and `resume` a killed run continues to the
 * weights of an uninterrupted one, bit for bit on cpu and on wasm (see
 * `checkpoint.ts` for what a checkpoint holds). tfjs's GaussianNoise,
 * GaussianDropout and AlphaDropout take no seed: a run through them cannot be
 * repeated.
 *
 * The default `freezeUntil` is the middle one of the cut points strictly
 * between the input and `cut` (LeNet-5 at `pool2`: `pool1`); with none, the
 * whole base stays frozen.
 *
 * @param opts the checkpoint (not modified), data, strategy and schedule
 * @returns the trained predictor, its history, the frozen layers, the cut and learning rates
 * @throws {RangeError} for invalid options, or a `cut` or `freezeUntil` that is not a cut point
 * @throws {TypeError} for `resume` without `checkpointDir`, or a model `attachHead()` cannot rebuild
 * @throws {Error} whatever reading the data or writing checkpoints throws
 *
 * @example Fine-tune a tiny net on two synthetic classes
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import type { Dataset } from "../data/types.ts";
 * import { fineTuneNetwork } from "./network.ts";
 * const net = tf.sequential({
 *   layers: [
 *     tf.layers.conv2d({ name: "conv", inputShape: [4, 4, 1], filters: 2, kernelSize: 3 }),
 *     tf.layers.flatten({ name: "flatten" }),
 *     tf.layers.dense({ name: "logits", units: 10, activation: "softmax" }),
 *   ],
 * });
 * const train: Dataset = {
 *   name: "two blobs", identity: "two-blobs", classes: ["dark", "light"], size: 4,
 *   imageShape: [4, 4, 1], counts: [2, 2],
 *   async *batches(n) {
 *     for (let i = 0; i < 4; i += n) {
 *       const k = Math.min(n, 4 - i);
 *       const ys = Array.from({ length: k }, (_, j) => (i + j) % 2);
 *       yield {
 *         xs: tf.stack(ys.map((y) => tf.fill([4, 4, 1], y))) as tf.Tensor4D,
 *         ys: tf.tensor1d(ys, "int32"),
 *       };
 *     }
 *   },
 * };
 * const run = await fineTuneNetwork({
 *   model: net, train, strategy: "full", cut: "conv", numClasses: 2,
 *   preprocess: { height: 4, width: 4, channels: 1, range: [0, 1] },
 *   epochs: 2, batchSize: 2, lr: 0.01, seed: 0,
 * });
 * assertEquals(run.history.map((m) => m.phase), ["all", "all"]);
 * assertEquals(run.learningRates, { head: 0.01, base: 0.001 });
 * run.model.dispose();
 * net.dispose();
 * ```
 */
export async function fineTuneNetwork(opts: FineTuneNetworkOptions): Promise<TrainOutcome> {
  validate(opts);
  const baseLrMult = opts.baseLrMult ?? 0.1;
  const headEpochs = opts.headEpochs ?? 0;
  const optimizerName = opts.optimizer ?? "adam";
  const headOpts = opts.cut === undefined
    ? { numClasses: opts.numClasses, seed: opts.seed }
    : { numClasses: opts.numClasses, seed: opts.seed, cut: opts.cut };
  const headed = attachHead(opts.model, headOpts);
  const { model, cutLayer, baseLayers, headLayers, innerCutPoints } = headed;
  const optimizers: Record<string, tf.Optimizer> = {};
  try {
    let lastFrozen: string | null = null;
    if (opts.strategy === "partial") {
      if (opts.freezeUntil === undefined) {
        lastFrozen = innerCutPoints[Math.floor((innerCutPoints.length - 1) / 2)] ?? cutLayer;
      } else if (opts.freezeUntil === cutLayer || innerCutPoints.includes(opts.freezeUntil)) {
        lastFrozen = opts.freezeUntil;
      } else {
        throw new RangeError(
          `Cannot freeze until layer "${opts.freezeUntil}": it is not a cut point before the head at "${cutLayer}": use one of ${
            JSON.stringify([...innerCutPoints, cutLayer])
          }`,
        );
      }
    }
    const frozenCount = lastFrozen === null ? 0 : baseLayers.indexOf(lastFrozen) + 1;
    const frozen = baseLayers.slice(0, frozenCount);
    const unfrozen = baseLayers.slice(frozenCount);
    // What trains is what the strategy says, not the checkpoint's own flags:
    // nsfwjs ships MobileNetV2 with blocks 0-10 marked trainable: false, and
    // tf.variableGrads silently drops variables that are not trainable. The
    // flags are also what the saved model.json records.
    setTrainable(model, frozen, false);
    setTrainable(model, [...unfrozen, ...headLayers], true);
    optimizers.head = makeOptimizer(optimizerName, opts.lr);
    optimizers.base = makeOptimizer(optimizerName, opts.lr * baseLrMult);
    const headGroup: VariableGroup = {
      name: "head",
      vars: variablesOf(model, headLayers),
      optimizer: optimizers.head,
    };
    const baseGroup: VariableGroup = {
      name: "base",
      vars: variablesOf(model, unfrozen),
      optimizer: optimizers.base,
    };
    const headPhase: Phase = { split: splitForward(model, cutLayer), groups: [headGroup] };
    const allPhase: Phase = {
      split: splitForward(model, lastFrozen),
      groups: baseGroup.vars.length > 0 ? [headGroup, baseGroup] : [headGroup],
    };
    const trainedVars = allPhase.groups.flatMap((g) => g.vars);
    const params = trainedVars.reduce((n, v) => n + v.size, 0);
    const cost = stepCost(model, allPhase.split.trainable.map((n) => n.name), params);
    const micro = planMicroBatch(cost, opts.batchSize, opts.microBatch, opts.memoryBudget);
    opts.onStepPlan?.({ ...cost, ...micro, tensors: trainedVars.length, params });
    const options: CheckpointState["options"] = {
      model: opts.model.name,
      strategy: opts.strategy,
      cut: cutLayer,
      freezeUntil: lastFrozen,
      numClasses: opts.numClasses,
      batchSize: opts.batchSize,
      lr: opts.lr,
      baseLrMult,
      headEpochs,
      optimizer: optimizerName,
      seed: opts.seed,
      train: opts.train.identity,
      validation: opts.validation?.identity ?? null,
      preprocess: JSON.stringify(opts.preprocess),
    };
    let state: CheckpointState = {
      epoch: 0,
      phase: headEpochs > 0 ? "head" : "all",
      headEpochsDone: 0,
      allEpochsDone: 0,
      stopped: false,
      bestEpoch: null,
      bestValLoss: null,
      epochsSinceBest: 0,
      history: [],
      seed: opts.seed,
      options,
    };
    let bestWeights: tf.Tensor[] | undefined;
    const dir = opts.checkpointDir;
    if (opts.resume && dir !== undefined) {
      const last = await readCheckpoint(dir);
      if (last !== null) {
        try {
          for (const [key, value] of Object.entries(options)) {
            if (last.state.options[key] !== value) {
              throw new RangeError(
                `Cannot resume from "${last.path}": option "${key}" was "${
                  last.state.options[key]
                }" there and is "${value}" now`,
              );
            }
          }
          model.setWeights(last.weights);
          for (const [name, weights] of Object.entries(last.optimizers)) {
            const optimizer = optimizers[name];
            if (optimizer !== undefined) {
              await restoreOptimizer(optimizer, weights, last.optimizerScalars[name] ?? {});
            }
          }
          state = last.state;
          opts.onResume?.(state.history.length);
          bestWeights = last.bestWeights ??
            (state.bestEpoch === null ? undefined : last.weights.map((w) => w.clone()));
        } finally {
          tf.dispose([last.weights, Object.values(last.optimizers).flat().map((w) => w.tensor)]);
        }
      }
    }
    let finalState: CheckpointState;
    try {
      finalState = await runEpochs({
        model,
        train: opts.train,
        validation: opts.validation,
        preprocess: opts.preprocess,
        numClasses: opts.numClasses,
        batchSize: opts.batchSize,
        seed: opts.seed,
        patience: opts.patience ?? 3,
        microBatch: micro.microBatch < opts.batchSize ? micro.microBatch : undefined,
        headEpochs,
        epochs: opts.epochs,
        head: headPhase,
        all: allPhase,
        onEpoch: opts.onEpoch,
        onBatch: opts.onBatch,
        checkpoint: dir === undefined
          ? undefined
          : async (s) => void await writeCheckpoint(dir, { model, optimizers, state: s }),
        state,
        bestWeights,
      });
    } catch (e) {
      throw outOfMemoryAdvice(e, micro.microBatch, opts.batchSize);
    }
    const allRan = finalState.allEpochsDone > 0;
    const withWeights = (names: string[]) =>
      names.filter((n) => model.getLayer(n).weights.length > 0);
    const trained = allRan ? trainedVars : headGroup.vars;
    return {
      model,
      history: finalState.history,
      frozenLayers: withWeights(allRan ? frozen : baseLayers),
      trainedLayers: withWeights(allRan ? [...unfrozen, ...headLayers] : headLayers),
      trainedWeights: {
        tensors: trained.length,
        params: trained.reduce((n, v) => n + v.size, 0),
      },
      cutLayer,
      learningRates: { head: opts.lr, base: opts.lr * baseLrMult },
    };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    for (const o of Object.values(optimizers)) o.dispose();
  }
}
