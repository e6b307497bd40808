/**
 * The first steps of `fineTune()`: the request checked before any work, the
 * pretrained checkpoint with its lineage (from the caller or the registry),
 * and the train, validation and test splits checked against each other.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { ImageFolderDataset } from "../data/image_folder.ts";
import { openDataset, parseDataSpec } from "../data/spec.ts";
import type { Dataset } from "../data/types.ts";
import type { FineTuneOptions, SourceInfo } from "./options.ts";

/** Which group each option that moved into a group now lives in. */
const GROUPED_OPTIONS: Readonly<Record<string, "training" | "output" | "callbacks">> = {
  epochs: "training",
  batchSize: "training",
  lr: "training",
  baseLrMult: "training",
  headEpochs: "training",
  patience: "training",
  microBatch: "training",
  seed: "training",
  outDir: "output",
  resume: "output",
  cacheDir: "output",
  onPlan: "callbacks",
  onEpoch: "callbacks",
  onResume: "callbacks",
  onBatch: "callbacks",
  log: "callbacks",
};

/** The checkpoint to fine-tune and where it came from. */
export interface Source {
  /** The checkpoint: the caller's, or loaded from the registry (then `fineTune` disposes it). */
  model: tf.LayersModel;
  /** Its lineage and card. */
  info: SourceInfo;
}

/** The splits a run trains, validates and tests on. */
export interface Splits {
  /** What the trainer learns from. */
  train: Dataset;
  /** For early stopping and the validation accuracy. */
  validation?: Dataset;
  /** Evaluated once at the end. */
  test?: Dataset;
}

/**
 * Refuses a request that cannot run, before anything is loaded: an option
 * given at the top level that belongs to a group, a data spec that fixes
 * one split, `skipBad` on data that is not a folder, no data, no model.
 */
export function checkRequest(opts: FineTuneOptions): void {
  for (const [key, group] of Object.entries(GROUPED_OPTIONS)) {
    if (key in opts) {
      throw new TypeError(
        `Cannot fine-tune with option "${key}" at the top level: it belongs to the "${group}" group: pass { ${group}: { ${key} } }`,
      );
    }
  }
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
}

/** The checkpoint and its lineage: the caller's model, or `modelRef` resolved and loaded. */
export async function openSource(
  opts: FineTuneOptions,
  log: (line: string) => void,
): Promise<Source> {
  if (opts.model !== undefined) return { model: opts.model, info: { ...opts.source } };
  const doc = await opts.client!.resolve(opts.modelRef!);
  const reference = `${doc.namespace}/${doc.name}@${doc.version}`;
  const modelJson = doc.files.find((f) => f.path === "model.json");
  const info: SourceInfo = {
    reference,
    card: doc.card,
    ...(modelJson ? { digest: modelJson.digest } : {}),
    ...opts.source,
  };
  const model = await opts.client!.loadModel(reference);
  log(`checkpoint: ${reference} (${info.digest ?? "no digest"})`);
  return { model, info };
}

/**
 * The splits: from the data spec (train, validation and test of one
 * source, the caller's own validation or test split taking precedence), or
 * the caller's datasets; checked against each other, unreadable images
 * logged.
 */
export async function openSplits(
  opts: FineTuneOptions,
  log: (line: string) => void,
): Promise<Splits> {
  let splits: Splits;
  if (opts.data !== undefined) {
    const defaults = {
      seed: opts.training?.seed ?? 0,
      ...(opts.valSplit === undefined ? {} : { validationFraction: opts.valSplit }),
      ...(opts.skipBad ? { skipBad: true } : {}),
    };
    splits = {
      train: await openDataset(opts.data, { ...defaults, split: "train" }),
      validation: opts.validation ??
        await openDataset(opts.data, { ...defaults, split: "validation" }),
      test: opts.test ?? await openDataset(opts.data, { ...defaults, split: "test" }),
    };
  } else {
    splits = {
      train: opts.train!,
      ...(opts.validation ? { validation: opts.validation } : {}),
      ...(opts.test ? { test: opts.test } : {}),
    };
  }
  checkData(splits);
  // Every split of a folder checks all of its images, so the train split lists them all.
  const badImages = (splits.train as Partial<ImageFolderDataset>).badImages ?? [];
  if (badImages.length > 0) {
    const shown = badImages.slice(0, 10).map((b) => `\n  ${b.path}: ${b.reason}`).join("");
    const more = badImages.length > 10 ? `\n  … and ${badImages.length - 10} more` : "";
    log(`data: skipped ${badImages.length} unreadable image(s):${shown}${more}`);
  }
  return splits;
}

/** Refuses splits a classifier cannot be trained and measured on. */
function checkData({ train, validation, test }: Splits): void {
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
