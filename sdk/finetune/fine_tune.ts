/**
 * `fineTune()`: the whole transfer-learning job in one call. It checks the
 * data and the checkpoint before any work (class counts, image size against
 * the strides, channels, the cut), picks a device, asks the advisor for a
 * strategy when told `auto`, runs the fixed-feature-extractor or the
 * fine-tuning trainer, evaluates on the test split and, with an output
 * folder, leaves a publishable checkpoint whose card records the lineage.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import type { Dataset, Preprocessing } from "../data/types.ts";
import { type DeviceChoice, selectDevice } from "../devices/select.ts";
import type { Advice, ResolvedStrategy, Strategy, TrainOutcome } from "../types.ts";
import { cardReadme, lineageCard, writeCheckpoint } from "./output.ts";
import type { FineTuneOptions, FineTuneResult } from "./options.ts";
import { trainingCurvesSvg } from "./report.ts";
import { fitInput, type InputPlan } from "./_input.ts";
import { runStrategy, type Schedule, schedule } from "./_run.ts";
import { setFields } from "./_fields.ts";
import { checkRequest, openSource, openSplits, type Source, type Splits } from "./_source.ts";
import { chooseStrategy } from "./_strategy.ts";

export type * from "./options.ts";

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
 * It runs as five steps: the source (the checkpoint and its lineage), the
 * splits, the strategy (the network fitted to the data, then the advisor or
 * the caller's choice), the run (the trainer, with metrics written as it
 * goes) and the output (evaluation, the lineage card and the publishable
 * folder).
 *
 * @param opts the checkpoint, data, strategy and device; `training`, `output` and `callbacks` groups
 * @returns the fine-tuned model, what was done and what it measured
 * @throws {RangeError} when the data or the checkpoint cannot be used as asked: one class,
 *   no examples, an empty class, a size or cut the network cannot take (with what would work)
 * @throws {TypeError} when neither a model nor a reference, or neither data nor a train split, is given,
 *   or an option of a group is given at the top level
 * @throws {Error} whatever loading the model or data throws (unknown model, unreachable registry, unreadable images)
 *
 * @example Fine-tune LeNet-5 on ten Fashion-MNIST images per class
 * ```ts
 * import { assert, assertEquals } from "@std/assert";
 * import { fineTune } from "./fine_tune.ts";
 * import { lenet5 } from "../../zoo/_recipes.ts";
 * const run = await fineTune({
 *   model: lenet5(), data: "fashion-mnist?perClass=10", strategy: "features",
 *   device: "cpu", training: { epochs: 5 }, output: { cacheDir: await Deno.makeTempDir() },
 *   callbacks: { log: () => {} },
 * });
 * assertEquals(run.strategy, "features-top");
 * assert(run.testAccuracy !== undefined && run.testAccuracy >= 0 && run.testAccuracy <= 1);
 * run.model.dispose();
 * ```
 */
export async function fineTune(opts: FineTuneOptions): Promise<FineTuneResult> {
  const started = performance.now();
  const log = opts.callbacks?.log ?? ((line: string) => console.error(line));
  const requested = opts.strategy ?? "auto";
  checkRequest(opts);
  const device = await openDevice(opts, log);
  const source = await openSource(opts, log);
  const splits = await openSplits(opts, log);
  const input = fitInput(source.model, splits.train, opts, source.info.card, log);
  const { strategy, advice } = await chooseStrategy(input.model, splits.train, input.preprocess, {
    strategy: requested,
    seed: opts.training?.seed ?? 0,
    ...(opts.cut !== undefined ? { cut: opts.cut } : {}),
    ...(source.info.card !== undefined ? { card: source.info.card } : {}),
  }, log);
  const plan = schedule(strategy, opts);
  const title = `${source.info.reference ?? source.model.name} → ${
    opts.data ?? splits.train.name
  } (${strategy})`;
  const outcome = await runStrategy({
    opts,
    device,
    source,
    splits,
    input,
    strategy,
    advice,
    schedule: plan,
    title,
    log,
  });
  if (input.model !== source.model) input.model.dispose();
  if (opts.model === undefined) source.model.dispose();
  return await writeOutput({
    opts,
    device,
    source,
    splits,
    input,
    requested,
    strategy,
    advice,
    schedule: plan,
    title,
    outcome,
    started,
  });
}

/** Picks the device; the files its setup writes go under the cache, which a scoped write permission covers. */
async function openDevice(
  opts: FineTuneOptions,
  log: (line: string) => void,
): Promise<DeviceChoice> {
  const cacheRoot = opts.client?.cacheDir ?? opts.output?.cacheDir;
  const device = await selectDevice(opts.device ?? "auto", {
    training: true,
    ...(opts.wasmThreads === undefined ? {} : { wasmThreads: opts.wasmThreads }),
    ...(cacheRoot === undefined ? {} : { workDir: join(cacheRoot, "devices") }),
  });
  log(`device: ${device.reason}`);
  return device;
}

/** What the output step reads of the run. */
interface Finished {
  opts: FineTuneOptions;
  device: DeviceChoice;
  source: Source;
  splits: Splits;
  input: InputPlan;
  requested: Strategy;
  strategy: ResolvedStrategy;
  advice: Advice | undefined;
  schedule: Schedule;
  title: string;
  outcome: TrainOutcome;
  started: number;
}

/**
 * The output step: the trained model measured on the validation and test
 * splits, the lineage card, and with an output folder the publishable
 * checkpoint, its README and the final training curves.
 */
async function writeOutput(f: Finished): Promise<FineTuneResult> {
  const { opts, device, source, splits: { train, validation, test }, outcome, strategy } = f;
  const { preprocess } = f.input;
  const { epochs, batchSize, seed } = f.schedule;
  const outDir = opts.output?.outDir;
  const evalBatch = Math.max(batchSize, 64);
  const validationAccuracy = validation
    ? await accuracyOn(outcome.model, validation, preprocess, evalBatch)
    : undefined;
  const testAccuracy = test
    ? await accuracyOn(outcome.model, test, preprocess, evalBatch)
    : undefined;
  const trainAccuracy = outcome.history.at(-1)?.trainAccuracy;
  const seconds = (performance.now() - f.started) / 1000;
  const card = lineageCard({
    lineage: {
      modelName: source.model.name,
      ...(source.info.reference !== undefined ? { reference: source.info.reference } : {}),
      ...(source.info.digest !== undefined ? { digest: source.info.digest } : {}),
    },
    labels: train.classes,
    strategy,
    requestedStrategy: f.requested,
    ...(f.advice ? { advice: f.advice } : {}),
    ...setFields(outcome, [
      "cutLayer",
      "frozenLayers",
      "trainedLayers",
      "trainedWeights",
      "learningRates",
    ]),
    preprocessing: preprocess,
    ...(f.input.inputNote ? { inputNote: f.input.inputNote } : {}),
    ...(f.input.channelNote ? { channelNote: f.input.channelNote } : {}),
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
    ...setFields(outcome, ["codes"]),
  });
  if (outDir !== undefined) {
    await writeCheckpoint(
      outDir,
      outcome.model,
      card,
      cardReadme(`${source.model.name} fine-tuned`, card),
    );
    await Deno.writeTextFile(
      join(outDir, "training-curves.svg"),
      trainingCurvesSvg(outcome.history, f.title),
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
  if (f.advice) result.advice = f.advice;
  if (outcome.codes !== undefined) result.codes = outcome.codes;
  if (trainAccuracy !== undefined) result.trainAccuracy = trainAccuracy;
  if (validationAccuracy !== undefined) result.validationAccuracy = validationAccuracy;
  if (testAccuracy !== undefined) result.testAccuracy = testAccuracy;
  if (outDir !== undefined) result.outDir = outDir;
  return result;
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
