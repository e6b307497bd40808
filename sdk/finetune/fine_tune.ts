/**
 * `fineTune()`: the whole transfer-learning job in one call. It checks the
 * data and the checkpoint before any work (class counts, image size against
 * the strides, channels, the cut), picks a device, asks the advisor for a
 * strategy when told `auto`, runs the fixed-feature-extractor or the
 * fine-tuning trainer, evaluates on the test split and, with `outDir`,
 * leaves a publishable checkpoint whose card records the lineage.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { adaptInputChannels } from "../adapt_channels.ts";
import {
  advise,
  measureSimilarity,
  PREDICTION_SAMPLE,
  PREDICTION_SIMILARITY_THRESHOLD,
  predictionSimilarity,
} from "../advisor/mod.ts";
import { analyze } from "../arch/analyze.ts";
import type { Architecture } from "../arch/types.ts";
import { checkInput } from "../arch/check_input.ts";
import type { ZooClient } from "../client/mod.ts";
import { resizeInput } from "../convolutionalize.ts";
import type { ImageFolderDataset } from "../data/image_folder.ts";
import { openDataset, parseDataSpec } from "../data/spec.ts";
import type { Dataset, Preprocessing } from "../data/types.ts";
import { type DeviceChoice, selectDevice } from "../devices/select.ts";
import { featureStrategy } from "../features/mod.ts";
import { fineTuneNetwork, type StepPlan } from "../train/network.ts";
import { DEFAULT_MEMORY_BUDGET, formatDuration, TRAINING_FLOPS_PER_SECOND } from "../train/plan.ts";
import { cardReadme, lineageCard, writeCheckpoint } from "./output.ts";
import { appendMetrics, trainingCurvesSvg } from "./report.ts";
import type {
  Advice,
  DeviceName,
  EpochMetrics,
  LinearClassifier,
  ResolvedStrategy,
  SourceStats,
  Strategy,
  TrainOutcome,
} from "./types.ts";
import type { LayersModel } from "../_tfjs_types.ts";

/** Where the pretrained checkpoint came from: recorded as lineage, read by the advisor. */
export interface SourceInfo {
  /** `namespace/name@version` of the parent. */
  reference?: string;
  /** `sha256:<hex>` of the parent's `model.json`. */
  digest?: string;
  /** The parent's model card (`preprocessing`, `sourceStats`, `labels`, …). */
  card?: Record<string, unknown>;
}

/** Options of {@linkcode fineTune}. */
export interface FineTuneOptions {
  /** The pretrained checkpoint; or give `modelRef` and `client`. */
  model?: LayersModel;
  /** A registry reference, e.g. `zoo/lenet5@1.0.0`, loaded with `client`. */
  modelRef?: string;
  /** The registry client that resolves `modelRef`. */
  client?: ZooClient;
  /** A data spec (`fashion-mnist?perClass=100`, `dir:PATH`, …): its train, validation and test splits are used. */
  data?: string;
  /** The training split (instead of `data`). */
  train?: Dataset;
  /** The validation split (early stopping). @default from `data`, else none */
  validation?: Dataset;
  /** The test split, evaluated at the end. @default from `data`, else none */
  test?: Dataset;
  /** With `data`: fraction of each class held out for validation. @default 0.1 */
  valSplit?: number;
  /**
   * With a `dir:` spec: leave out unreadable images (logged with their paths
   * and counted) instead of failing with their list; the spec's `skipBad=1`.
   * @default false
   */
  skipBad?: boolean;
  /** `auto` asks the advisor. @default "auto" */
  strategy?: Strategy;
  /** The feature strategy's linear classifier. @default "svm" */
  classifier?: LinearClassifier;
  /** Cut point the codes (features) or the new head (partial, full) read. @default the feature cut */
  cut?: string;
  /** For `partial`: the last frozen layer. @default the trainer's choice */
  freezeUntil?: string;
  /** Epochs. @default 100 for the feature strategy (cheap epochs over codes), 5 otherwise */
  epochs?: number;
  /** Images per batch. @default 32 */
  batchSize?: number;
  /** Learning rate of the new head or linear classifier. @default 0.01 for features, 0.003 otherwise */
  lr?: number;
  /**
   * Pretrained layers learn at `lr × baseLrMult`.
   * @default 0.1, and 1 for the full strategy: on large, different data the
   * pretrained layers have to move as far as the head (bench/scenarios.ts:
   * LeNet-5 on 1,000 Fashion-MNIST images per class gains with 1)
   */
  baseLrMult?: number;
  /** Epochs that train the new head alone first. @default 0 */
  headEpochs?: number;
  /** Stop after this many epochs without a better validation loss. @default 3 */
  patience?: number;
  /** Accumulate gradients over micro-batches of this many images. @default the whole batch, or the largest micro-batch whose estimated memory fits (said in the log) */
  microBatch?: number;
  /** `auto`, `webgpu`, `wasm` or `cpu`. @default "auto" */
  device?: DeviceName;
  /** Threads of the wasm backend (1 turns them off). @default env ZOO_WASM_THREADS, else one per core */
  wasmThreads?: number;
  /** Run the model on this input size (images are resized to it; the model through `resizeInput`). @default the data's size */
  inputSize?: { height: number; width: number };
  /** Resize images to the checkpoint's native size in preprocessing. @default false */
  resize?: boolean;
  /** Seed of shuffles and initializations. @default 0 */
  seed?: number;
  /** Write the checkpoint, `metrics.jsonl`, `training-curves.svg` and per-epoch checkpoints here. */
  outDir?: string;
  /**
   * Continue from the last per-epoch checkpoint in `outDir/checkpoints`. The
   * features strategies keep no per-epoch checkpoints: their linear
   * classifier trains again on the cached codes, to the same result.
   * @default false
   */
  resume?: boolean;
  /** The parent's reference, digest and card; filled in from the registry with `modelRef`. */
  source?: SourceInfo;
  /** Where CNN codes are cached. @default `codes/` in `client`'s cache folder, else in the SDK cache (`$ZOO_CACHE/codes`) */
  cacheDir?: string;
  /** Called once the checks passed and the strategy is known, before training starts. */
  onPlan?: (plan: TrainingPlan) => void;
  /** Called after every epoch. */
  onEpoch?: (m: EpochMetrics) => void;
  /** Called when `resume` continues from a checkpoint, with the epochs it had completed. */
  onResume?: (completedEpochs: number) => void;
  /** Called after every batch with images done in the epoch, its size and the batch loss. */
  onBatch?: (done: number, total: number, loss: number) => void;
  /** Where decisions are explained (device, input size, advice). @default console.error */
  log?: (line: string) => void;
}

/** What {@linkcode fineTune} is about to train, passed to {@linkcode FineTuneOptions.onPlan}. */
export interface TrainingPlan {
  /** The strategy that will run. */
  strategy: ResolvedStrategy;
  /** Epochs planned (the head-only epochs included). */
  epochs: number;
  /** Images per batch. */
  batchSize: number;
  /** Learning rate of the new head (or of the linear classifier). */
  lr: number;
  /** Training images. */
  trainSize: number;
  /** The device now active, and why it was picked. */
  device: DeviceChoice;
}

/** What {@linkcode fineTune} returns. */
export interface FineTuneResult {
  /** The fine-tuned predictor: images in, class probabilities out. */
  model: LayersModel;
  /** The strategy run. */
  strategy: ResolvedStrategy;
  /** The advisor's decision when the strategy was `auto`. */
  advice?: Advice;
  /** Metrics of every epoch run, in order. */
  history: EpochMetrics[];
  /** Accuracy of the last epoch on the training data. */
  trainAccuracy?: number;
  /** Accuracy of the final model on the validation split. */
  validationAccuracy?: number;
  /** Accuracy of the final model on the test split. */
  testAccuracy?: number;
  /** The device now active, and why it was picked. */
  device: DeviceChoice;
  /** The cut layer: where the codes come from or where the new head is attached. */
  cutLayer: string;
  /** Layers whose weights were kept as pretrained. */
  frozenLayers: string[];
  /** Learning rates used for the new head and for the pretrained layers. */
  learningRates: { head: number; base: number };
  /** For the features strategies: how the codes were formed, e.g. `ReLU'd, flattened 12x12x6 -> 864`. */
  codes?: string;
  /** The model's input `[height, width, channels]`. */
  inputSize: [number, number, number];
  /** How images are turned into the model's input. */
  preprocess: Preprocessing;
  /** The card written to `outDir/card.json`. */
  card: Record<string, unknown>;
  /** The output folder, when one was written. */
  outDir?: string;
  /** Wall time of the whole job. */
  seconds: number;
}

/**
 * Fine-tunes a pretrained checkpoint on a new image classification task.
 *
 * Checks come first, before any training: at least two classes, no empty
 * class, the same classes in every split, the image size against the
 * network (a size the strides do not fit is refused with the nearest valid
 * sizes; any other size is handled either by resizing images to the native
 * size with `resize`, or by `resizeInput`, which convolutionalizes the
 * flatten head and averages the score map), channels (`adaptInputChannels`)
 * and the cut point. `auto` then asks the advisor, which weighs examples per
 * class against the similarity of the new data to the checkpoint's source
 * data (`card.sourceStats`).
 *
 * @param opts the checkpoint, data, strategy, schedule, device and output folder
 * @returns the fine-tuned model, what was done and what it measured
 * @throws {RangeError} when the data or the checkpoint cannot be used as asked: one class,
 *   no examples, an empty class, a size or cut the network cannot take (with what would work)
 * @throws {TypeError} when neither a model nor a reference, or neither data nor a train split, is given
 * @throws {Error} whatever loading the model or data throws (unknown model, unreachable registry, unreadable images)
 *
 * @example Fine-tune LeNet-5 on ten Fashion-MNIST images per class
 * ```ts
 * import { fineTune } from "./fine_tune.ts";
 * import { lenet5 } from "../../zoo/_recipes.ts";
 * const run = await fineTune({
 *   model: lenet5(), data: "fashion-mnist?perClass=10", strategy: "features",
 *   epochs: 5, device: "cpu", log: () => {}, cacheDir: await Deno.makeTempDir(),
 * });
 * console.log(run.strategy, run.testAccuracy !== undefined); // "features-top" true
 * run.model.dispose();
 * ```
 */
export async function fineTune(opts: FineTuneOptions): Promise<FineTuneResult> {
  const started = performance.now();
  const log = opts.log ?? ((line: string) => console.error(line));
  const requested = opts.strategy ?? "auto";
  if (opts.data !== undefined) {
    const spec = parseDataSpec(opts.data);
    if (spec.options.split !== undefined) {
      throw new RangeError(
        `Cannot fine-tune on "${opts.data}": the spec fixes split=${spec.options.split}, but fine-tuning takes the train, validation and test splits of one source: remove "split"`,
      );
    }
    if (opts.skipBad && spec.kind !== "dir") {
      throw new RangeError(
        `Cannot skip bad images of "${opts.data}": skipBad applies to image folders (dir:PATH) only`,
      );
    }
  } else if (opts.train === undefined) {
    throw new TypeError("Cannot fine-tune: pass a data spec as `data` or a `train` dataset");
  }
  if (opts.model === undefined && (opts.modelRef === undefined || opts.client === undefined)) {
    throw new TypeError("Cannot fine-tune: pass `model`, or `modelRef` with a `client`");
  }

  // Files the device setup writes go under the cache, which a scoped write permission covers.
  const cacheRoot = opts.client?.cacheDir ?? opts.cacheDir;
  const device = await selectDevice(opts.device ?? "auto", {
    training: true,
    ...(opts.wasmThreads === undefined ? {} : { wasmThreads: opts.wasmThreads }),
    ...(cacheRoot === undefined ? {} : { workDir: join(cacheRoot, "devices") }),
  });
  log(`device: ${device.reason}`);

  // The checkpoint and its lineage.
  let source: SourceInfo = { ...opts.source };
  let model: tf.LayersModel;
  if (opts.model !== undefined) {
    model = opts.model;
  } else {
    const doc = await opts.client!.resolve(opts.modelRef!);
    const reference = `${doc.namespace}/${doc.name}@${doc.version}`;
    source = {
      reference,
      card: doc.card,
      ...(doc.files.find((f) => f.path === "model.json")
        ? { digest: doc.files.find((f) => f.path === "model.json")!.digest }
        : {}),
      ...opts.source,
    };
    model = await opts.client!.loadModel(reference);
    log(`checkpoint: ${reference} (${source.digest ?? "no digest"})`);
  }

  // The data.
  const seed = opts.seed ?? 0;
  let train: Dataset, validation: Dataset | undefined, test: Dataset | undefined;
  if (opts.data !== undefined) {
    const defaults = {
      seed,
      ...(opts.valSplit === undefined ? {} : { validationFraction: opts.valSplit }),
      ...(opts.skipBad ? { skipBad: true } : {}),
    };
    train = await openDataset(opts.data, { ...defaults, split: "train" });
    validation = opts.validation ??
      await openDataset(opts.data, { ...defaults, split: "validation" });
    test = opts.test ?? await openDataset(opts.data, { ...defaults, split: "test" });
  } else {
    train = opts.train!;
    validation = opts.validation;
    test = opts.test;
  }
  checkData(train, validation, test);
  // Every split of a folder checks all of its images, so the train split lists them all.
  const badImages = (train as Partial<ImageFolderDataset>).badImages ?? [];
  if (badImages.length > 0) {
    const shown = badImages.slice(0, 10).map((b) => `\n  ${b.path}: ${b.reason}`).join("");
    const more = badImages.length > 10 ? `\n  … and ${badImages.length - 10} more` : "";
    log(`data: skipped ${badImages.length} unreadable image(s):${shown}${more}`);
  }

  // The network against the data.
  const arch = analyze(model);
  const plan = planInput(model, arch, train, opts, source.card);
  for (const note of plan.notes) log(note);
  const net = plan.model;
  const preprocess = plan.preprocess;
  if (opts.cut !== undefined) {
    const cutCheck = checkInput(
      analyze(net),
      { height: preprocess.height, width: preprocess.width, channels: preprocess.channels },
      { dropLayer: opts.cut },
    );
    if (!cutCheck.ok) throw new RangeError(cutCheck.message);
  }

  // The strategy.
  let advice: Advice | undefined;
  let strategy: ResolvedStrategy;
  if (requested === "auto") {
    advice = await adviseStrategy(net, train, preprocess, source.card, log, seed);
    strategy = advice.strategy;
    log(`advisor: ${advice.explanation}`);
  } else if (requested === "features") {
    const arch = analyze(net);
    strategy = opts.cut !== undefined && opts.cut !== (arch.classifierCut ?? arch.featureCut)
      ? "features-early"
      : "features-top";
  } else {
    strategy = requested;
  }

  const isFeatures = strategy === "features-top" || strategy === "features-early";
  const epochs = opts.epochs ?? (isFeatures ? 100 : 5);
  const batchSize = opts.batchSize ?? 32;
  // 0.003 for fine-tuning: what bench/scenarios.ts calibrated the advisor with.
  const lr = opts.lr ?? (isFeatures ? 0.01 : 0.003);
  if (opts.outDir !== undefined) await Deno.mkdir(opts.outDir, { recursive: true });
  const metricsPath = opts.outDir === undefined ? undefined : join(opts.outDir, "metrics.jsonl");
  if (metricsPath !== undefined && !opts.resume) await Deno.remove(metricsPath).catch(() => {});
  const history: EpochMetrics[] = [];
  const title = `${source.reference ?? model.name} → ${opts.data ?? train.name} (${strategy})`;
  const persist = async (m: EpochMetrics, curves: EpochMetrics[]) => {
    if (metricsPath === undefined) return;
    await appendMetrics(metricsPath, m);
    await Deno.writeTextFile(
      join(opts.outDir!, "training-curves.svg"),
      trainingCurvesSvg(curves, title),
    );
  };
  // The trainers call onEpoch synchronously and go on with the next epoch:
  // the files are written in order in the background (awaited at the end),
  // while the caller hears of the epoch now, before the next epoch's batches.
  let writes = Promise.resolve();
  const common = {
    model: net,
    train,
    ...(validation ? { validation } : {}),
    preprocess,
    numClasses: train.classes.length,
    epochs,
    batchSize,
    lr,
    seed,
    ...(opts.patience !== undefined ? { patience: opts.patience } : {}),
    onEpoch: (m: EpochMetrics) => {
      history.push(m);
      const curves = history.slice();
      writes = writes.then(() => persist(m, curves));
      opts.onEpoch?.(m);
    },
    ...(opts.onBatch ? { onBatch: opts.onBatch } : {}),
  };
  opts.onPlan?.({
    strategy,
    epochs: epochs + (isFeatures ? 0 : opts.headEpochs ?? 0),
    batchSize,
    lr,
    trainSize: train.size,
    device,
  });
  log(
    `strategy: ${strategy}, ${epochs} epochs, batch ${batchSize}, lr ${lr}, ${train.size} training images`,
  );
  let outcome: TrainOutcome;
  if (isFeatures) {
    if (opts.resume) {
      log(
        "resume: the features strategy keeps no per-epoch checkpoints: its linear classifier trains again on the cached codes (the same seed gives the same result)",
      );
    }
    const cut = opts.cut ?? (strategy === "features-early" ? advice?.cut : undefined);
    // The client's cache folder (--cache) holds the codes too, beside the downloads.
    const codesDir = opts.cacheDir ??
      (opts.client !== undefined ? join(opts.client.cacheDir, "codes") : undefined);
    const features = await featureStrategy({
      ...common,
      classifier: opts.classifier ?? "svm",
      ...(cut !== undefined ? { cut } : {}),
      ...(opts.cut === undefined && advice?.codes ? { codes: advice.codes } : {}),
      ...(codesDir !== undefined ? { cacheDir: codesDir } : {}),
      ...(source.digest !== undefined && net === model ? { checkpointDigest: source.digest } : {}),
      onCodes: (c) =>
        log(
          `codes: ${c.count} of "${c.dataset}" ${
            c.cached ? "read from the cache" : "computed"
          } in ${c.seconds.toFixed(1)} s`,
        ),
    });
    const vector = !/pooled|flattened/.test(features.codes);
    log(
      `codes: ${features.codes}${
        vector ? " values per image (a vector: nothing to pool)" : ""
      } at "${features.cutLayer}"`,
    );
    outcome = features;
  } else {
    outcome = await fineTuneNetwork({
      ...common,
      strategy: strategy as "partial" | "full",
      ...(opts.freezeUntil !== undefined ? { freezeUntil: opts.freezeUntil } : {}),
      baseLrMult: opts.baseLrMult ?? (strategy === "full" ? 1 : 0.1),
      ...(opts.headEpochs !== undefined ? { headEpochs: opts.headEpochs } : {}),
      ...(opts.cut !== undefined ? { cut: opts.cut } : {}),
      ...(opts.microBatch !== undefined ? { microBatch: opts.microBatch } : {}),
      ...(opts.outDir !== undefined ? { checkpointDir: join(opts.outDir, "checkpoints") } : {}),
      ...(opts.resume ? { resume: true } : {}),
      ...(opts.onResume ? { onResume: opts.onResume } : {}),
      // The wasm heap ends at 4 GiB; cpu and webgpu buffers live outside it.
      memoryBudget: device.backend === "wasm" ? DEFAULT_MEMORY_BUDGET : 2 * DEFAULT_MEMORY_BUDGET,
      onStepPlan: (p) => {
        for (const line of stepPlanLines(p, strategy, epochs, train.size, device, opts)) log(line);
      },
    });
  }
  await writes;
  if (metricsPath !== undefined) {
    // The whole run's history, epochs before a resume included: a run killed
    // between its checkpoint and its metrics line, or a features run resumed
    // (which trains again), would otherwise leave a gap or repeated epochs.
    await Deno.writeTextFile(
      metricsPath,
      outcome.history.map((m) => JSON.stringify(m) + "\n").join(""),
    );
  }
  if (net !== model) net.dispose();
  if (opts.model === undefined) model.dispose();

  const evalBatch = Math.max(batchSize, 64);
  const validationAccuracy = validation
    ? await accuracyOn(outcome.model, validation, preprocess, evalBatch)
    : undefined;
  const testAccuracy = test
    ? await accuracyOn(outcome.model, test, preprocess, evalBatch)
    : undefined;
  const trainAccuracy = outcome.history.at(-1)?.trainAccuracy;
  const seconds = (performance.now() - started) / 1000;

  const card = lineageCard({
    lineage: {
      modelName: model.name,
      ...(source.reference !== undefined ? { reference: source.reference } : {}),
      ...(source.digest !== undefined ? { digest: source.digest } : {}),
    },
    labels: train.classes,
    strategy,
    requestedStrategy: requested,
    ...(advice ? { advice } : {}),
    cutLayer: outcome.cutLayer,
    frozenLayers: outcome.frozenLayers,
    ...(outcome.trainedLayers ? { trainedLayers: outcome.trainedLayers } : {}),
    ...(outcome.trainedWeights ? { trainedWeights: outcome.trainedWeights } : {}),
    learningRates: outcome.learningRates,
    preprocessing: preprocess,
    ...(plan.inputNote ? { inputNote: plan.inputNote } : {}),
    ...(plan.channelNote ? { channelNote: plan.channelNote } : {}),
    dataset: {
      ...(opts.data !== undefined ? { spec: opts.data } : {}),
      name: train.name,
      identity: train.identity,
      trainSize: train.size,
      ...(validation ? { validationSize: validation.size } : {}),
      ...(test ? { testSize: test.size } : {}),
    },
    epochs,
    batchSize,
    seed,
    device: device.adapter ? `${device.backend} (${device.adapter})` : device.backend,
    history: outcome.history,
    ...(trainAccuracy !== undefined ? { trainAccuracy } : {}),
    ...(validationAccuracy !== undefined ? { validationAccuracy } : {}),
    ...(testAccuracy !== undefined ? { testAccuracy } : {}),
    seconds,
    ...(outcome.codes ? { codes: outcome.codes } : {}),
  });
  if (opts.outDir !== undefined) {
    await writeCheckpoint(
      opts.outDir,
      outcome.model,
      card,
      cardReadme(`${model.name} fine-tuned`, card),
    );
    await Deno.writeTextFile(
      join(opts.outDir, "training-curves.svg"),
      trainingCurvesSvg(outcome.history, title),
    );
  }
  const result: FineTuneResult = {
    model: outcome.model,
    strategy,
    history: outcome.history,
    device,
    cutLayer: outcome.cutLayer,
    frozenLayers: outcome.frozenLayers,
    learningRates: outcome.learningRates,
    inputSize: [preprocess.height, preprocess.width, preprocess.channels],
    preprocess,
    card,
    seconds,
  };
  if (advice) result.advice = advice;
  if (outcome.codes !== undefined) result.codes = outcome.codes;
  if (trainAccuracy !== undefined) result.trainAccuracy = trainAccuracy;
  if (validationAccuracy !== undefined) result.validationAccuracy = validationAccuracy;
  if (testAccuracy !== undefined) result.testAccuracy = testAccuracy;
  if (opts.outDir !== undefined) result.outDir = opts.outDir;
  return result;
}

/** Estimated training FLOPs per second of `device` (the wasm rate times its threads). */
function trainingRate(device: DeviceChoice, wasmThreads: number | undefined): number {
  const rate = TRAINING_FLOPS_PER_SECOND[device.backend] ?? 1e9;
  if (device.backend !== "wasm") return rate;
  const env = Number(Deno.env.get("ZOO_WASM_THREADS"));
  const threads = wasmThreads ?? (env >= 1 ? env : navigator.hardwareConcurrency ?? 1);
  return rate * Math.max(1, threads);
}

/**
 * What a person should know before a partial or full run starts: the
 * micro-batch chosen for memory, and, when it will take more than a minute,
 * how long, with what to do instead.
 */
function stepPlanLines(
  p: StepPlan,
  strategy: ResolvedStrategy,
  epochs: number,
  trainSize: number,
  device: DeviceChoice,
  opts: FineTuneOptions,
): string[] {
  const lines: string[] = [];
  const mib = Math.round(p.bytesPerImage / 2 ** 20);
  if (p.chosen) {
    lines.push(
      `memory: a step keeps about ${mib} MiB per image: batches of ${
        opts.batchSize ?? 32
      } accumulate gradients over micro-batches of ${p.microBatch} (about ${
        (p.bytes / 2 ** 30).toFixed(1)
      } GiB; --micro-batch to change)`,
    );
  }
  const seconds = epochs * trainSize * p.flopsPerImage /
    trainingRate(device, opts.wasmThreads);
  if (seconds > 60) {
    const gflops = (p.flopsPerImage / 1e9).toFixed(1);
    lines.push(
      `time: ${strategy} trains ${p.tensors} weight tensors (${p.params} values) at ${gflops} GFLOPs per image: expect about ${
        formatDuration(seconds)
      } for ${epochs} epoch(s) of ${trainSize} images on ${device.backend} (an estimate; the progress lines measure it)${
        strategy === "full"
          ? "; --strategy partial with a later --freeze-until, or --strategy features, is faster"
          : ""
      }`,
    );
  }
  return lines;
}

function checkData(train: Dataset, validation?: Dataset, test?: Dataset): void {
  const what = `Cannot fine-tune on "${train.name}"`;
  if (train.size === 0) {
    throw new RangeError(`${what}: the training split has no examples`);
  }
  if (train.classes.length < 2) {
    throw new RangeError(
      `${what}: it has ${train.classes.length} class${
        train.classes.length === 1 ? ` ("${train.classes[0]}")` : "es"
      }: a classifier needs at least 2`,
    );
  }
  if (train.counts.length !== train.classes.length) {
    throw new RangeError(
      `${what}: ${train.counts.length} label counts for ${train.classes.length} classes`,
    );
  }
  const empty = train.classes.filter((_, i) => (train.counts[i] ?? 0) === 0);
  if (empty.length > 0) {
    throw new RangeError(
      `${what}: class${empty.length > 1 ? "es" : ""} ${empty.map((c) => `"${c}"`).join(", ")} ha${
        empty.length > 1 ? "ve" : "s"
      } no training examples`,
    );
  }
  for (const [kind, d] of [["validation", validation], ["test", test]] as const) {
    if (d === undefined) continue;
    if (d.classes.join("\u0000") !== train.classes.join("\u0000")) {
      throw new RangeError(
        `${what}: the ${kind} split's classes (${d.classes.length}) differ from the training split's (${train.classes.length})`,
      );
    }
  }
}

interface InputPlan {
  model: tf.LayersModel;
  preprocess: Preprocessing;
  notes: string[];
  inputNote?: string;
  channelNote?: string;
}

function cardPreprocessing(card: Record<string, unknown> | undefined): Partial<Preprocessing> {
  const p = card?.preprocessing;
  if (typeof p !== "object" || p === null) return {};
  const r = p as Record<string, unknown>;
  const out: Partial<Preprocessing> = {};
  const nums = (v: unknown) =>
    Array.isArray(v) && v.every((x) => typeof x === "number") ? v as number[] : undefined;
  const range = nums(r.range);
  if (range?.length === 2) out.range = [range[0]!, range[1]!];
  const mean = nums(r.mean);
  if (mean) out.mean = mean;
  const std = nums(r.std);
  if (std) out.std = std;
  if (r.channelOrder === "rgb" || r.channelOrder === "bgr") out.channelOrder = r.channelOrder;
  if (r.alignCorners === true) out.alignCorners = true;
  return out;
}

/** One value per channel for `channels`, from a card's per-channel list. */
function perChannel(v: readonly number[] | undefined, channels: number): number[] | undefined {
  if (v === undefined || v.length === channels || v.length === 1) return v?.slice();
  const avg = v.reduce((a, b) => a + b, 0) / v.length;
  return Array.from({ length: channels }, () => avg);
}

function planInput(
  model: tf.LayersModel,
  arch: Architecture,
  train: Dataset,
  opts: FineTuneOptions,
  card: Record<string, unknown> | undefined,
): InputPlan {
  const native = arch.nativeInputShape;
  const [nh, nw, nc] = [native[1], native[2], native[3]];
  if (typeof nh !== "number" || typeof nw !== "number" || typeof nc !== "number") {
    throw new RangeError(
      `Cannot fine-tune "${arch.name}": its input shape [${
        native.join(", ")
      }] is not a fixed image size`,
    );
  }
  const [dh, dw, dc] = train.imageShape;
  const notes: string[] = [];
  const plan: InputPlan = {
    model,
    notes,
    preprocess: { height: nh, width: nw, channels: nc as 1 | 3, range: [0, 1] },
  };
  const fromCard = cardPreprocessing(card);
  let height = dh, width = dw;
  if (opts.inputSize !== undefined) {
    ({ height, width } = opts.inputSize);
  } else if (opts.resize) {
    [height, width] = [nh, nw];
  }
  if (height !== dh || width !== dw) {
    plan.inputNote = `images resized from ${dh}x${dw} to ${height}x${width} in preprocessing${
      opts.resize ? " (resize)" : ""
    }`;
  }
  if (height !== nh || width !== nw) {
    const check = checkInput(analyze(plan.model), { height, width, channels: nc });
    const blocking = check.findings.filter((f) =>
      f.severity === "error" && f.kind !== "fixed-by-head" && f.kind !== "channel-mismatch"
    );
    const hint = opts.resize ? "" : `; or resize the images to the native ${nh}x${nw} (--resize)`;
    if (blocking.length > 0) {
      throw new RangeError(
        `Cannot run "${arch.name}" on ${height}x${width}x${nc}: ${
          blocking.map((f) => f.message).join("; ")
        }${hint}`,
      );
    }
    try {
      const resized = resizeInput(plan.model, { height, width });
      if (plan.model !== model) plan.model.dispose();
      plan.model = resized;
    } catch (e) {
      if (e instanceof RangeError) throw new RangeError(`${e.message}${hint}`);
      throw e;
    }
    const how = arch.headKind === "flatten-dense" || arch.headKind === "pool-flatten-dense"
      ? `resizeInput: the flatten head is convolutionalized and its score map averaged`
      : `resizeInput: the ${arch.headKind} head takes any size`;
    plan.inputNote = `${
      plan.inputNote ? `${plan.inputNote}; ` : ""
    }model runs on ${height}x${width} instead of its native ${nh}x${nw} (${how})`;
  }
  if (plan.inputNote) notes.push(`input size: ${plan.inputNote}`);
  let channels = nc;
  if (dc !== nc) {
    if (dc !== 1 && dc !== 3) {
      throw new RangeError(
        `Cannot fine-tune "${arch.name}" on "${train.name}": its images have ${dc} channels; use 1 or 3`,
      );
    }
    const adapted = adaptInputChannels(plan.model, dc);
    if (plan.model !== model) plan.model.dispose();
    plan.model = adapted;
    channels = dc;
    plan.channelNote =
      `the data has ${dc} channel${dc === 1 ? "" : "s"} and "${arch.name}" ${nc}: ` +
      `adaptInputChannels(model, ${dc}) ${
        dc === 1 ? "summed the first conv's kernels over RGB" : "repeated its kernels"
      }`;
    notes.push(`channels: ${plan.channelNote}`);
  }
  plan.preprocess = {
    height,
    width,
    channels: channels as 1 | 3,
    range: fromCard.range ?? [0, 1],
    ...(fromCard.mean ? { mean: perChannel(fromCard.mean, channels)! } : {}),
    ...(fromCard.std ? { std: perChannel(fromCard.std, channels)! } : {}),
    ...(fromCard.channelOrder ? { channelOrder: fromCard.channelOrder } : {}),
    ...(fromCard.alignCorners ? { alignCorners: true } : {}),
  };
  return plan;
}

async function adviseStrategy(
  model: tf.LayersModel,
  train: Dataset,
  preprocess: Preprocessing,
  card: Record<string, unknown> | undefined,
  log: (line: string) => void,
  seed: number,
): Promise<Advice> {
  const examplesPerClass = Math.min(...train.counts);
  // Imported checkpoints carry `sourceStats: null` (their source data is not at hand).
  const stats = (card?.sourceStats ?? undefined) as SourceStats | undefined;
  let similarity: number;
  let thresholds: { similarity: number } | undefined;
  let source: string | undefined = stats?.dataset;
  if (stats === undefined) {
    const why = typeof card?.sourceStatsNote === "string"
      ? card.sourceStatsNote
      : "its source data was not at hand";
    try {
      const p = await predictionSimilarity(model, train, preprocess, {
        seed,
        sample: PREDICTION_SAMPLE,
      });
      similarity = p.similarity;
      thresholds = { similarity: PREDICTION_SIMILARITY_THRESHOLD };
      source = "its source data, from its own predictions";
      log(
        `advisor: the card has no sourceStats (${why}): similarity measured instead from how sure the checkpoint's own classifier is on ${p.count} training images: mean confidence ${
          p.meanConfidence.toFixed(2)
        }, 1 - entropy/ln ${p.classes} = ${
          p.similarity.toFixed(2)
        } (similar at >= ${PREDICTION_SIMILARITY_THRESHOLD}; a weaker signal than code statistics)`,
      );
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      similarity = 0.5;
      log(
        `advisor: the card has no sourceStats (${why}) and the checkpoint's output cannot be read as class predictions (${e.message}): deciding on the dataset's size with the similarity assumed 0.5`,
      );
    }
  } else {
    similarity = await measureSimilarity(model, stats, train, preprocess, { seed });
  }
  const arch = analyze(model);
  return advise({
    examplesPerClass,
    similarity,
    cutPoints: arch.cutPoints,
    featureCut: arch.featureCut,
    layers: arch.layers,
    ...(source !== undefined ? { source } : {}),
    ...(thresholds !== undefined ? { thresholds } : {}),
  });
}

/**
 * Accuracy of a predictor over a dataset, with asynchronous reads only (webgpu).
 */
async function accuracyOn(
  model: tf.LayersModel,
  data: Dataset,
  preprocess: Preprocessing,
  batchSize: number,
): Promise<number> {
  let correct = 0;
  let seen = 0;
  for await (const { xs, ys } of data.batches(batchSize, { preprocess })) {
    const hits = tf.tidy(() => {
      const p = model.predict(xs) as tf.Tensor;
      return tf.sum(tf.cast(tf.equal(tf.argMax(p, -1), ys), "int32"));
    });
    correct += (await hits.data())[0]!;
    seen += ys.shape[0];
    tf.dispose([xs, ys, hits]);
  }
  return seen === 0 ? NaN : correct / seen;
}
