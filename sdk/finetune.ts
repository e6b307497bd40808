/**
 * The fine-tuning command line, the main job of the SDK:
 *
 * ```sh
 * deno run -A sdk/finetune.ts --model zoo/lenet5 --data fashion-mnist?perClass=100 --out out/fashion
 * ```
 *
 * It checks the model, the data and the publish target before any training,
 * shows a progress bar per epoch, prints a final table, and leaves a
 * publishable checkpoint folder (with `metrics.jsonl` and
 * `training-curves.svg`) that `--publish` sends to the registry.
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { DEFAULT_URL, type PublishResult, ZooClient } from "./client/mod.ts";
import { BadImagesError } from "./data/image_folder.ts";
import { DATA_SPEC_FORMS } from "./data/spec.ts";
import { DEVICE_NAMES } from "./devices/select.ts";
import { isSemver, parseRef } from "../core/names.ts";
import { NotFoundError } from "./errors.ts";
import {
  fineTune,
  type FineTuneOptions,
  type FineTuneResult,
  type FineTuneTraining,
} from "./finetune/fine_tune.ts";
import { createEpochProgress, type EpochProgress, summaryTable } from "./finetune/report.ts";
import type { DeviceName } from "./devices/types.ts";
import type { LinearClassifier, Strategy } from "./types.ts";

const STRATEGIES: readonly Strategy[] = ["auto", "features", "partial", "full"];
const CLASSIFIERS: readonly LinearClassifier[] = ["svm", "softmax"];

/** The `--help` text: every flag with its environment variable and default. */
export const HELP = `Fine-tune a pretrained checkpoint from a model zoo registry on new images.

Usage:
  deno run -A sdk/finetune.ts --model REF --data SPEC [flags]

Flags (flag first, then environment variable, then default):
  --model REF            checkpoint, e.g. zoo/lenet5 or zoo/lenet5@1.0.0     (required)
  --data SPEC            images: ${DATA_SPEC_FORMS}
                         its train, validation and test splits are used      (required)
  --strategy S           auto|features|partial|full; auto asks the advisor   default auto
  --classifier C         svm|softmax (features strategy)                     default svm
  --cut LAYER            cut point for the codes or the new head             default the penultimate layer
  --freeze-until LAYER   last frozen layer (partial)                         default the trainer's
  --epochs N             epochs                                              default 100 features, 5 otherwise
  --batch-size N         images per batch                                    default 32
  --lr X                 learning rate of the new head / linear classifier   default 0.01 features, 0.003 otherwise
  --base-lr-mult X       pretrained layers learn at lr × X                   default 0.1, 1 for full
  --head-epochs N        epochs training the new head alone first            default 0
  --patience N           stop after N epochs without a better val loss      default 3
  --micro-batch N        accumulate gradients over micro-batches of N        default the batch, or what fits memory
  --device D             ${DEVICE_NAMES.join("|")}                                default auto
  --wasm-threads N       threads of the wasm device (1: off)   env ZOO_WASM_THREADS, default one per core
  --input-size HxW       run the model on HxW (resizeInput)                  default the data's size
  --resize               resize images to the checkpoint's native size       default off
  --val-split F          fraction of each class held out for validation      default 0.1
  --skip-bad             dir: data: skip unreadable images, listing them     default off: stop with the list
  --seed N               seed of splits, shuffles and initializations        default 0
  --out DIR              output folder: checkpoint, card, metrics, plot      default ./finetune-out
  --resume               continue from DIR/checkpoints                       default off
  --publish NS/NAME@VER  publish the result to the registry                  default off
  --registry URL         registry base URL                env ZOO_URL,   default ${DEFAULT_URL}
  --token TOKEN          bearer token with publish:<ns>   env ZOO_TOKEN, default none
  --cache DIR            download and CNN-code cache      env ZOO_CACHE, default ~/.cache/deno-model-zoo
  -h, --help             show this help

Environment only: ZOO_OFFLINE=1 resolves and loads the model from the --cache
folder without touching the registry (default off).

Outputs in DIR: model.json + group1-shard1of1.bin (the checkpoint), card.json
(lineage: parent and digest, strategy, cut, frozen layers, learning rates,
input size, dataset, metrics), README.md, metrics.jsonl (one epoch per line),
training-curves.svg, checkpoints/ (per epoch, for --resume).
`;

/** Where the command line writes. */
export interface CliIo {
  /** Results: the table and the published URL. */
  out: (line: string) => void;
  /** Explanations and progress lines. */
  err: (line: string) => void;
  /**
   * Show a progress bar.
   * @default {"only when stderr is a terminal"}
   */
  bar?: boolean;
}

/** What {@linkcode main} returns when it trained. */
export interface CliResult {
  run: FineTuneResult;
  published?: PublishResult;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function number(
  flag: string,
  value: string | undefined,
  check: (n: number) => boolean,
  want: string,
) {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || !check(n)) {
    throw new RangeError(`Invalid --${flag} "${value}": use ${want}`);
  }
  return n;
}

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]) {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new RangeError(`Invalid --${flag} "${value}": use one of ${allowed.join(", ")}`);
  }
  return value as T;
}

function parseSize(value: string | undefined): { height: number; width: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)(?:x(\d+))?$/i.exec(value.trim());
  const height = m ? Number(m[1]) : NaN;
  const width = m ? Number(m[2] ?? m[1]) : NaN;
  if (!(height > 0 && width > 0)) {
    throw new RangeError(`Invalid --input-size "${value}": use HxW, e.g. 32x32`);
  }
  return { height, width };
}

const pct = (x: number | undefined) => x === undefined ? "–" : `${(100 * x).toFixed(2)}%`;

/**
 * Runs the fine-tuning command line.
 *
 * @param args the arguments, usually `Deno.args`
 * @param io where results, explanations and progress go
 * @returns what was trained and published, or null when only help was shown
 * @throws {TypeError} on unknown flags or missing required flags
 * @throws {RangeError} on a bad flag value or data the checkpoint cannot take, with the reason
 * @throws {NotFoundError} when the model does not exist, or {RegistryError} when the registry refuses
 *
 * @example Show the help
 * ```ts
 * import { main } from "./finetune.ts";
 * await main(["--help"], { out: () => {}, err: () => {} });
 * ```
 */
export async function main(
  args: string[],
  io: CliIo = { out: console.log, err: console.error },
): Promise<CliResult | null> {
  const flags = parseArgs(args, {
    string: [
      "model",
      "data",
      "strategy",
      "classifier",
      "cut",
      "freeze-until",
      "epochs",
      "batch-size",
      "lr",
      "base-lr-mult",
      "head-epochs",
      "patience",
      "micro-batch",
      "device",
      "wasm-threads",
      "input-size",
      "val-split",
      "seed",
      "out",
      "publish",
      "registry",
      "token",
      "cache",
    ],
    boolean: ["help", "resize", "resume", "skip-bad"],
    alias: { h: "help" },
  });
  if (flags.help) {
    io.out(HELP);
    return null;
  }
  if (flags._.length > 0) {
    throw new TypeError(
      `Cannot fine-tune: unexpected argument "${flags._[0]}": run with --help for usage`,
    );
  }
  const modelRef = str(flags.model);
  const data = str(flags.data);
  if (modelRef === undefined) {
    throw new TypeError("Cannot fine-tune: --model REF is required, e.g. --model zoo/lenet5");
  }
  if (data === undefined) {
    throw new TypeError(
      `Cannot fine-tune: --data SPEC is required, one of ${DATA_SPEC_FORMS}`,
    );
  }
  const int = (f: string, min: number) =>
    number(f, str(flags[f]), (n) => Number.isInteger(n) && n >= min, `a whole number >= ${min}`);
  const positive = (f: string) => number(f, str(flags[f]), (n) => n > 0, "a positive number");
  const opts: FineTuneOptions = { modelRef, data };
  const set = <K extends keyof FineTuneOptions>(k: K, v: FineTuneOptions[K] | undefined) => {
    if (v !== undefined) opts[k] = v;
  };
  const training: FineTuneTraining = {};
  const setTraining = <K extends keyof FineTuneTraining>(
    k: K,
    v: FineTuneTraining[K] | undefined,
  ) => {
    if (v !== undefined) training[k] = v;
  };
  set("strategy", oneOf("strategy", str(flags.strategy), STRATEGIES));
  set("classifier", oneOf("classifier", str(flags.classifier), CLASSIFIERS));
  set("device", oneOf<DeviceName>("device", str(flags.device), DEVICE_NAMES));
  set("wasmThreads", int("wasm-threads", 1));
  set("cut", str(flags.cut));
  set("freezeUntil", str(flags["freeze-until"]));
  setTraining("epochs", int("epochs", 1));
  setTraining("batchSize", int("batch-size", 1));
  setTraining("lr", positive("lr"));
  setTraining(
    "baseLrMult",
    number("base-lr-mult", str(flags["base-lr-mult"]), (n) => n >= 0, "a number >= 0"),
  );
  setTraining("headEpochs", int("head-epochs", 0));
  setTraining("patience", int("patience", 1));
  setTraining("microBatch", int("micro-batch", 1));
  set("inputSize", parseSize(str(flags["input-size"])));
  set(
    "valSplit",
    number(
      "val-split",
      str(flags["val-split"]),
      (n) => n > 0 && n < 1,
      "a fraction between 0 and 1",
    ),
  );
  setTraining("seed", int("seed", 0));
  opts.training = training;
  if (flags.resize) opts.resize = true;
  if (flags["skip-bad"]) opts.skipBad = true;
  if (opts.resize && opts.inputSize) {
    throw new RangeError("Cannot use --resize with --input-size: pick one way to size the input");
  }
  const outDir = str(flags.out) ?? "./finetune-out";
  opts.output = { outDir, ...(flags.resume ? { resume: true } : {}) };

  const publish = str(flags.publish);
  let target: { name: string; version: string } | undefined;
  if (publish !== undefined) {
    const at = publish.lastIndexOf("@");
    const name = at === -1 ? publish : publish.slice(0, at);
    const version = at === -1 ? "" : publish.slice(at + 1);
    try {
      parseRef(publish);
      if (!isSemver(version)) throw new RangeError("no version");
    } catch {
      throw new RangeError(
        `Invalid --publish "${publish}": use NAMESPACE/NAME@VERSION with a semver version, e.g. me/lenet5-fashion@1.0.0`,
      );
    }
    target = { name, version };
  }

  const env = (k: string) => Deno.env.get(k);
  const token = str(flags.token) ?? (env("ZOO_TOKEN") || undefined);
  const client = new ZooClient({
    url: str(flags.registry) ?? env("ZOO_URL") ?? DEFAULT_URL,
    ...(token !== undefined ? { token } : {}),
    ...(str(flags.cache) !== undefined ? { cacheDir: str(flags.cache)! } : {}),
  });
  opts.client = client;
  if (target !== undefined) {
    if (token === undefined) {
      throw new TypeError(
        `Cannot publish "${publish}": no token: pass --token or set ZOO_TOKEN (scope publish:${
          target.name.split("/")[0]
        })`,
      );
    }
    // Refuse a taken version now rather than after training.
    const taken = await client.resolve(`${target.name}@${target.version}`).then(
      () => true,
      (e) => {
        if (e instanceof NotFoundError) return false;
        throw e;
      },
    );
    if (taken) {
      throw new RangeError(
        `Cannot publish "${publish}": version ${target.version} exists and versions are immutable: pick another version`,
      );
    }
  }

  let progress: EpochProgress | undefined;
  opts.callbacks = {
    log: io.err,
    onPlan: (plan) => {
      progress = createEpochProgress({
        epochs: plan.epochs,
        log: io.err,
        ...(io.bar !== undefined ? { bar: io.bar } : {}),
      });
    },
    onBatch: (done, total, loss) => progress?.batch(done, total, loss),
    onEpoch: (m) => progress?.epoch(m),
    onResume: (completed) => progress?.resumeAt(completed),
  };
  let run: FineTuneResult;
  try {
    run = await fineTune(opts);
  } finally {
    progress?.stop();
  }

  const result: CliResult = { run };
  if (target !== undefined) {
    result.published = await client.publish(outDir, { ...target, card: run.card });
  }
  const rows = [
    { name: "model", value: String(run.card.parent ?? modelRef) },
    { name: "data", value: data },
    { name: "strategy", value: run.advice ? `${run.strategy} (advisor)` : run.strategy },
    {
      name: "device",
      value: run.device.adapter
        ? `${run.device.backend} (${run.device.adapter})`
        : run.device.backend,
    },
    { name: "cut layer", value: run.cutLayer },
    ...(run.codes !== undefined ? [{ name: "codes", value: run.codes }] : []),
    { name: "frozen layers", value: String(run.frozenLayers.length) },
    {
      name: "learning rates",
      value: `head ${run.learningRates.head}, base ${run.learningRates.base}`,
    },
    { name: "input", value: run.inputSize.join("x") },
    { name: "epochs", value: String(run.history.length) },
    { name: "train accuracy", value: pct(run.trainAccuracy) },
    { name: "val accuracy", value: pct(run.validationAccuracy) },
    { name: "test accuracy", value: pct(run.testAccuracy) },
    { name: "time", value: `${run.seconds.toFixed(1)} s` },
    { name: "output", value: outDir },
  ];
  if (result.published) rows.push({ name: "published", value: result.published.url });
  io.out(summaryTable(rows));
  if (result.published) {
    io.out(`Published ${result.published.reference}: ${result.published.url}`);
  }
  return result;
}

/** The permissions a run needs: its files, the registry, `ZOO_*` variables, the core count. */
const PERMISSIONS = ["read", "write", "net", "env", "sys"] as const;

/**
 * The one line that stops a run started without the permissions it needs,
 * or `undefined` when they are granted. Asking for them one by one would
 * mean dozens of prompts: npm packages read their own files, the wasm
 * backend starts workers, and every cache file has its own path.
 *
 * @param args the command line, which needs nothing for `--help`
 * @returns the line to print before exiting, or `undefined`
 */
export function missingPermissions(args: readonly string[]): string | undefined {
  if (args.includes("--help") || args.includes("-h")) return undefined;
  const missing = PERMISSIONS.filter((name) =>
    Deno.permissions.querySync({ name }).state !== "granted"
  );
  if (missing.length === 0) return undefined;
  return `Cannot fine-tune without ${missing.join(", ")} permission${
    missing.length === 1 ? "" : "s"
  }: run \`deno task finetune …\` or \`deno run -A sdk/finetune.ts …\``;
}

if (import.meta.main) {
  const refused = missingPermissions(Deno.args);
  if (refused !== undefined) {
    console.error(refused);
    Deno.exit(1);
  }
  try {
    await main(Deno.args);
    Deno.exit(0);
  } catch (e) {
    // One line, except the list of unreadable images, which is what the user must act on.
    console.error(
      e instanceof BadImagesError
        ? e.message
        : e instanceof Error
        ? e.message.split("\n")[0]
        : String(e),
    );
    Deno.exit(1);
  }
}
