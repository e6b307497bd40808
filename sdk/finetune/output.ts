/**
 * The output folder of a fine-tuning run as a publishable checkpoint:
 * `model.json` and its weight shard, `card.json` recording the lineage
 * (parent reference and digest, strategy, cut layer, frozen layers, learning
 * rates, input size, dataset, metrics) and a `README.md` model card, next to
 * the run's `metrics.jsonl` and training-curve plot.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import type { Preprocessing } from "../data/types.ts";
import type { Advice, EpochMetrics, ResolvedStrategy } from "./types.ts";

/** Where a fine-tuned model came from. */
export interface Lineage {
  /** The parent checkpoint, `namespace/name@version`, when it came from a registry. */
  reference?: string;
  /** The parent's `model.json` digest, `sha256:<hex>`. */
  digest?: string;
  /** The parent's model name when it did not come from a registry. */
  modelName: string;
}

/** What {@linkcode lineageCard} records about a run. */
export interface RunFacts {
  /** The parent checkpoint. */
  lineage: Lineage;
  /** Class names in label order. */
  labels: string[];
  /** The strategy run. */
  strategy: ResolvedStrategy;
  /** The strategy asked for (`auto` when the advisor chose). */
  requestedStrategy: string;
  /** The advisor's advice, when it was asked. */
  advice?: Advice;
  /** The layer whose output the new head reads. */
  cutLayer: string;
  /** Layers whose weights stayed fixed. */
  frozenLayers: string[];
  /** Layers with weights that trained (`partial`, `full`). */
  trainedLayers?: string[];
  /** Weight tensors and values the optimizers updated (`partial`, `full`). */
  trainedWeights?: { tensors: number; params: number };
  /** The head's and the base's learning rates. */
  learningRates: { head: number; base: number };
  /** How the images reach the model. */
  preprocessing: Preprocessing;
  /** How the input size was handled, e.g. `images resized from 32x32 to 28x28 in preprocessing`. */
  inputNote?: string;
  /** How channels were handled, e.g. `adaptInputChannels(model, 1)`. */
  channelNote?: string;
  /** The data spec and identities of the splits. */
  dataset: {
    /** The data spec, e.g. `fashion-mnist?perClass=10`. */
    spec?: string;
    /** The dataset's name. */
    name: string;
    /** The training split's identity. */
    identity: string;
    /** Training examples. */
    trainSize: number;
    /** Validation examples. */
    validationSize?: number;
    /** Test examples. */
    testSize?: number;
  };
  /** Epochs run. */
  epochs: number;
  /** Examples per batch. */
  batchSize: number;
  /** The seed of shuffling and initialization. */
  seed: number;
  /** The device (backend) that ran. */
  device: string;
  /** One entry per epoch. */
  history: EpochMetrics[];
  /** Accuracy on the training split at the end. */
  trainAccuracy?: number;
  /** Accuracy on the validation split at the end. */
  validationAccuracy?: number;
  /** Accuracy on the test split. */
  testAccuracy?: number;
  /** Wall time of the run. */
  seconds: number;
  /** The codes the head reads, e.g. `1176 (pool1, flattened)`. */
  codes?: string;
}

/**
 * Builds the model card of a fine-tuned checkpoint. `parent` is the parent
 * reference (the registry's pages link it); `parentDigest` pins the exact
 * bytes; `fineTuning` holds what was done.
 *
 * @param facts what the run did and measured
 * @returns a JSON card for `card.json` and the registry
 *
 * @example The card of a run
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { lineageCard } from "./output.ts";
 * const card = lineageCard({
 *   lineage: { reference: "zoo/lenet5@1.0.0", digest: "sha256:" + "0".repeat(64), modelName: "lenet5" },
 *   labels: ["a", "b"], strategy: "partial", requestedStrategy: "auto", cutLayer: "flatten",
 *   frozenLayers: ["conv1"], learningRates: { head: 1e-3, base: 1e-4 },
 *   preprocessing: { height: 28, width: 28, channels: 1, range: [0, 1] },
 *   dataset: { name: "toy", identity: "toy#1", trainSize: 20 }, epochs: 1, batchSize: 8, seed: 0,
 *   device: "cpu", history: [], testAccuracy: 0.9, seconds: 1,
 * });
 * assertEquals(card.parent, "zoo/lenet5@1.0.0");
 * ```
 */
export function lineageCard(facts: RunFacts): Record<string, unknown> {
  const test = facts.dataset.spec ?? facts.dataset.name;
  const metrics: { name: string; value: number; dataset: string }[] = [];
  if (facts.testAccuracy !== undefined) {
    metrics.push({ name: "accuracy", value: round(facts.testAccuracy), dataset: `${test} test` });
  }
  if (facts.validationAccuracy !== undefined) {
    metrics.push({
      name: "accuracy",
      value: round(facts.validationAccuracy),
      dataset: `${test} validation`,
    });
  }
  if (facts.trainAccuracy !== undefined) {
    metrics.push({ name: "accuracy", value: round(facts.trainAccuracy), dataset: `${test} train` });
  }
  const card: Record<string, unknown> = {
    task: "image-classification",
    description: `${facts.lineage.reference ?? facts.lineage.modelName} fine-tuned on ${
      facts.dataset.spec ?? facts.dataset.name
    } (${facts.strategy})`,
    labels: facts.labels,
    dataset: {
      name: facts.dataset.spec ?? facts.dataset.name,
      identity: facts.dataset.identity,
      train: facts.dataset.trainSize,
      ...(facts.dataset.validationSize === undefined
        ? {}
        : { validation: facts.dataset.validationSize }),
      ...(facts.dataset.testSize === undefined ? {} : { test: facts.dataset.testSize }),
    },
    datasetSize: facts.dataset.trainSize,
    preprocessing: facts.preprocessing,
    metrics,
  };
  if (facts.lineage.reference !== undefined) card.parent = facts.lineage.reference;
  if (facts.lineage.digest !== undefined) card.parentDigest = facts.lineage.digest;
  card.fineTuning = {
    parent: facts.lineage.reference ?? facts.lineage.modelName,
    ...(facts.lineage.digest === undefined ? {} : { parentDigest: facts.lineage.digest }),
    strategy: facts.strategy,
    requestedStrategy: facts.requestedStrategy,
    ...(facts.advice ? { advice: facts.advice } : {}),
    cutLayer: facts.cutLayer,
    frozenLayers: facts.frozenLayers,
    ...(facts.trainedLayers ? { trainedLayers: facts.trainedLayers } : {}),
    ...(facts.trainedWeights ? { trainedWeights: facts.trainedWeights } : {}),
    learningRates: facts.learningRates,
    inputSize: [
      facts.preprocessing.height,
      facts.preprocessing.width,
      facts.preprocessing.channels,
    ],
    ...(facts.inputNote ? { inputSize_note: facts.inputNote } : {}),
    ...(facts.channelNote ? { channels_note: facts.channelNote } : {}),
    ...(facts.codes ? { codes: facts.codes } : {}),
    epochs: facts.history.length,
    epochsPlanned: facts.epochs,
    batchSize: facts.batchSize,
    seed: facts.seed,
    device: facts.device,
    seconds: round(facts.seconds),
  };
  return card;
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

/**
 * Writes a model card as Markdown for `README.md`.
 *
 * @param name the checkpoint's name, e.g. `me/lenet5-fashion`
 * @param card the card from {@linkcode lineageCard}
 * @returns the Markdown
 *
 * @example A card's README
 * ```ts
 * import { cardReadme } from "./output.ts";
 * console.log(cardReadme("me/demo", { description: "demo", labels: ["a", "b"] }).split("\n")[0]);
 * // "# me/demo"
 * ```
 */
export function cardReadme(name: string, card: Record<string, unknown>): string {
  const ft = (card.fineTuning ?? {}) as Record<string, unknown>;
  const lr = ft.learningRates as { head?: number; base?: number } | undefined;
  const metrics = (card.metrics ?? []) as { name: string; value: number; dataset: string }[];
  const frozen = (ft.frozenLayers ?? []) as string[];
  const trained = ft.trainedLayers as string[] | undefined;
  const weights = ft.trainedWeights as { tensors?: number; params?: number } | undefined;
  const lines = [
    `# ${name}`,
    "",
    String(card.description ?? ""),
    "",
    "## Lineage",
    "",
    `- parent: \`${String(ft.parent ?? card.parent ?? "unknown")}\`${
      ft.parentDigest ? ` (model.json \`${String(ft.parentDigest)}\`)` : ""
    }`,
    `- strategy: ${String(ft.strategy ?? "")}${
      ft.requestedStrategy === "auto" ? " (chosen by the advisor)" : ""
    }`,
    `- cut layer: \`${String(ft.cutLayer ?? "")}\``,
    `- frozen layers: ${frozen.length === 0 ? "none" : frozen.map((l) => `\`${l}\``).join(", ")}`,
    ...(trained === undefined ? [] : [
      `- trained layers: ${trained.length}${
        weights ? ` (${weights.tensors} weight tensors, ${weights.params} values)` : ""
      }`,
    ]),
    `- learning rates: head ${lr?.head ?? "?"}, pretrained layers ${lr?.base ?? "?"}`,
    `- input: ${(ft.inputSize as number[] | undefined)?.join("×") ?? "?"}${
      ft.inputSize_note ? ` (${String(ft.inputSize_note)})` : ""
    }`,
    `- trained ${String(ft.epochs ?? "?")} epochs, batch ${String(ft.batchSize ?? "?")}, seed ${
      String(ft.seed ?? "?")
    }, on ${String(ft.device ?? "?")}`,
  ];
  const advice = ft.advice as { explanation?: string } | undefined;
  if (advice?.explanation) lines.push(`- advisor: ${advice.explanation}`);
  lines.push("", "## Metrics", "");
  if (metrics.length === 0) lines.push("none recorded");
  for (const m of metrics) {
    lines.push(`- ${m.name} ${(100 * m.value).toFixed(2)}% on ${m.dataset}`);
  }
  const labels = (card.labels ?? []) as string[];
  lines.push("", "## Labels", "", labels.map((l, i) => `${i}: ${l}`).join(", "), "");
  return lines.join("\n");
}

/**
 * Saves a model as a TensorFlow.js checkpoint folder (`model.json` and one
 * weight shard, `group1-shard1of1.bin`) with its `card.json` and
 * `README.md`. Weights are read asynchronously, so it works on webgpu.
 *
 * @param dir the folder; created when missing
 * @param model the model to save
 * @param card the model card, written as `card.json`
 * @param readme the model card as Markdown, written as `README.md`
 * @returns the paths written
 * @throws {Deno.errors.PermissionDenied} when the folder cannot be written
 *
 * @example Save a tiny model
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { writeCheckpoint } from "./output.ts";
 * const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1 })] });
 * const dir = await Deno.makeTempDir();
 * const paths = await writeCheckpoint(dir, model, { task: "demo" }, "# demo\n");
 * assertEquals(paths.length, 4);
 * ```
 */
export async function writeCheckpoint(
  dir: string,
  model: tf.LayersModel,
  card: Record<string, unknown>,
  readme: string,
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const shard = "group1-shard1of1.bin";
  const written: string[] = [];
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const weights = artifacts.weightData === undefined
      ? new Uint8Array()
      : new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
    const modelJson = {
      format: "layers-model",
      generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
      convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: [shard], weights: artifacts.weightSpecs ?? [] }],
    };
    await Deno.writeFile(join(dir, shard), weights);
    await Deno.writeTextFile(join(dir, "model.json"), JSON.stringify(modelJson));
    written.push(join(dir, "model.json"), join(dir, shard));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
  }));
  await Deno.writeTextFile(join(dir, "card.json"), JSON.stringify(card, null, 2) + "\n");
  await Deno.writeTextFile(join(dir, "README.md"), readme);
  written.push(join(dir, "card.json"), join(dir, "README.md"));
  return written;
}
