/**
 * The run step of `fineTune()`: the schedule a strategy gets by default,
 * then the fixed-feature-extractor or the fine-tuning trainer, with every
 * epoch's metrics and training curves written to the output folder as they
 * come.
 *
 * @module
 */
import { join } from "node:path";
import type { DeviceChoice } from "../devices/select.ts";
import { featureStrategy } from "../features/mod.ts";
import { fineTuneNetwork, type StepPlan } from "../train/network.ts";
import { DEFAULT_MEMORY_BUDGET, formatDuration, TRAINING_FLOPS_PER_SECOND } from "../train/plan.ts";
import type {
  Advice,
  EpochMetrics,
  ResolvedStrategy,
  TrainCommonOptions,
  TrainOutcome,
} from "../types.ts";
import type { FineTuneOptions } from "./options.ts";
import type { InputPlan } from "./_input.ts";
import { appendMetrics, trainingCurvesSvg } from "./report.ts";
import type { Source, Splits } from "./_source.ts";

/** The schedule a run trains with: the caller's, else the strategy's defaults. */
export interface Schedule {
  /** Epochs after the head-only ones. */
  epochs: number;
  /** Images per batch. */
  batchSize: number;
  /** Learning rate of the new head or the linear classifier. */
  lr: number;
  /** Seed of shuffles and initializations. */
  seed: number;
}

/** Whether `strategy` trains a linear classifier on codes. */
export function isFeatures(strategy: ResolvedStrategy): boolean {
  return strategy === "features-top" || strategy === "features-early";
}

/** The caller's schedule with the strategy's defaults filled in. */
export function schedule(strategy: ResolvedStrategy, opts: FineTuneOptions): Schedule {
  const features = isFeatures(strategy);
  const t = opts.training ?? {};
  return {
    epochs: t.epochs ?? (features ? 100 : 5),
    batchSize: t.batchSize ?? 32,
    // 0.003 for fine-tuning: what bench/scenarios.ts calibrated the advisor with.
    lr: t.lr ?? (features ? 0.01 : 0.003),
    seed: t.seed ?? 0,
  };
}

/** Everything the run step needs from the steps before it. */
export interface RunInputs {
  /** The caller's options. */
  opts: FineTuneOptions;
  /** The device now active. */
  device: DeviceChoice;
  /** The checkpoint and its lineage. */
  source: Source;
  /** The data. */
  splits: Splits;
  /** The network fitted to the data and its preprocessing. */
  input: InputPlan;
  /** The strategy to run. */
  strategy: ResolvedStrategy;
  /** The advisor's decision, for `auto` (an early cut and its pooling). */
  advice: Advice | undefined;
  /** Epochs, batch size, learning rate and seed. */
  schedule: Schedule;
  /** Title of the training curves. */
  title: string;
  log: (line: string) => void;
}

/**
 * Trains `strategy` on the fitted network. With an output folder, every
 * epoch's metrics line and the curves so far are written in order in the
 * background while training goes on, and the whole history once at the end.
 */
export async function runStrategy(r: RunInputs): Promise<TrainOutcome> {
  const { opts, device, splits: { train, validation }, input, strategy, log } = r;
  const { epochs, batchSize, lr, seed } = r.schedule;
  const outDir = opts.output?.outDir;
  const resume = opts.output?.resume ?? false;
  const cb = opts.callbacks ?? {};
  if (outDir !== undefined) await Deno.mkdir(outDir, { recursive: true });
  const metricsPath = outDir === undefined ? undefined : join(outDir, "metrics.jsonl");
  if (metricsPath !== undefined && !resume) await Deno.remove(metricsPath).catch(() => {});
  const history: EpochMetrics[] = [];
  const persist = async (m: EpochMetrics, curves: EpochMetrics[]) => {
    if (metricsPath === undefined || outDir === undefined) return;
    await appendMetrics(metricsPath, m);
    await Deno.writeTextFile(
      join(outDir, "training-curves.svg"),
      trainingCurvesSvg(curves, r.title),
    );
  };
  // The trainers call onEpoch synchronously and go on with the next epoch:
  // the files are written in order in the background (awaited at the end),
  // while the caller hears of the epoch now, before the next epoch's batches.
  let writes = Promise.resolve();
  const common: TrainCommonOptions = {
    model: input.model,
    train,
    ...(validation ? { validation } : {}),
    preprocess: input.preprocess,
    numClasses: train.classes.length,
    epochs,
    batchSize,
    lr,
    seed,
    ...(opts.training?.patience !== undefined ? { patience: opts.training.patience } : {}),
    onEpoch: (m: EpochMetrics) => {
      history.push(m);
      const curves = history.slice();
      writes = writes.then(() => persist(m, curves));
      cb.onEpoch?.(m);
    },
    ...(cb.onBatch ? { onBatch: cb.onBatch } : {}),
  };
  const features = isFeatures(strategy);
  cb.onPlan?.({
    strategy,
    epochs: epochs + (features ? 0 : opts.training?.headEpochs ?? 0),
    batchSize,
    lr,
    trainSize: train.size,
    device,
  });
  log(
    `strategy: ${strategy}, ${epochs} epochs, batch ${batchSize}, lr ${lr}, ${train.size} training images`,
  );
  const outcome = features
    ? await runFeatures(r, common)
    : await runNetwork(r, common, strategy as "partial" | "full");
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
  return outcome;
}

/** The fixed feature extractor: a linear classifier on (cached) codes. */
async function runFeatures(r: RunInputs, common: TrainCommonOptions): Promise<TrainOutcome> {
  const { opts, source, input, advice, log } = r;
  if (opts.output?.resume) {
    log(
      "resume: the features strategy keeps no per-epoch checkpoints: its linear classifier trains again on the cached codes (the same seed gives the same result)",
    );
  }
  const cut = opts.cut ?? (r.strategy === "features-early" ? advice?.cut : undefined);
  // The client's cache folder (--cache) holds the codes too, beside the downloads.
  const codesDir = opts.output?.cacheDir ??
    (opts.client !== undefined ? join(opts.client.cacheDir, "codes") : undefined);
  const features = await featureStrategy({
    ...common,
    classifier: opts.classifier ?? "svm",
    ...(cut !== undefined ? { cut } : {}),
    ...(opts.cut === undefined && advice?.codes ? { codes: advice.codes } : {}),
    ...(codesDir !== undefined ? { cacheDir: codesDir } : {}),
    ...(source.info.digest !== undefined && input.model === source.model
      ? { checkpointDigest: source.info.digest }
      : {}),
    onCodes: (c) =>
      log(
        `codes: ${c.count} of "${c.dataset}" ${c.cached ? "read from the cache" : "computed"} in ${
          c.seconds.toFixed(1)
        } s`,
      ),
  });
  const vector = !/pooled|flattened/.test(features.codes);
  log(
    `codes: ${features.codes}${
      vector ? " values per image (a vector: nothing to pool)" : ""
    } at "${features.cutLayer}"`,
  );
  return features;
}

/** Partial or full fine-tuning through the network, with per-epoch checkpoints. */
function runNetwork(
  r: RunInputs,
  common: TrainCommonOptions,
  strategy: "partial" | "full",
): Promise<TrainOutcome> {
  const { opts, device, log } = r;
  const t = opts.training ?? {};
  const outDir = opts.output?.outDir;
  return fineTuneNetwork({
    ...common,
    strategy,
    ...(opts.freezeUntil !== undefined ? { freezeUntil: opts.freezeUntil } : {}),
    baseLrMult: t.baseLrMult ?? (strategy === "full" ? 1 : 0.1),
    ...(t.headEpochs !== undefined ? { headEpochs: t.headEpochs } : {}),
    ...(opts.cut !== undefined ? { cut: opts.cut } : {}),
    ...(t.microBatch !== undefined ? { microBatch: t.microBatch } : {}),
    ...(outDir !== undefined ? { checkpointDir: join(outDir, "checkpoints") } : {}),
    ...(opts.output?.resume ? { resume: true } : {}),
    ...(opts.callbacks?.onResume ? { onResume: opts.callbacks.onResume } : {}),
    // The wasm heap ends at 4 GiB; cpu and webgpu buffers live outside it.
    memoryBudget: device.backend === "wasm" ? DEFAULT_MEMORY_BUDGET : 2 * DEFAULT_MEMORY_BUDGET,
    onStepPlan: (p) => {
      for (const line of stepPlanLines(p, r)) log(line);
    },
  });
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
function stepPlanLines(p: StepPlan, r: RunInputs): string[] {
  const { strategy, device } = r;
  const { epochs, batchSize } = r.schedule;
  const trainSize = r.splits.train.size;
  const lines: string[] = [];
  const mib = Math.round(p.bytesPerImage / 2 ** 20);
  if (p.chosen) {
    lines.push(
      `memory: a step keeps about ${mib} MiB per image: batches of ${batchSize} accumulate gradients over micro-batches of ${p.microBatch} (about ${
        (p.bytes / 2 ** 30).toFixed(1)
      } GiB; --micro-batch to change)`,
    );
  }
  const seconds = epochs * trainSize * p.flopsPerImage /
    trainingRate(device, r.opts.wasmThreads);
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
