/**
 * Imports any TensorFlow.js LayersModel served over HTTP into a publishable
 * checkpoint folder: `model.json` and its weight shards byte for byte (a
 * quantized model stays quantized), checked against the manifest, plus a
 * `card.json` skeleton and a `README.md` with the architecture table.
 *
 * ```sh
 * deno run -A zoo/import.ts --url https://host/path/model.json --out DIR [--name NAME] \
 *   [--source-data SPEC]
 * ```
 *
 * With the data the weights were trained on (`--source-data`, any data spec
 * of the SDK), the card gets `sourceStats`, the code statistics the
 * fine-tuning advisor compares new data with; without it the card says why
 * it has none, and the advisor falls back on the checkpoint's own predictions.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { dirname, join } from "node:path";
import { parseArgs } from "@std/cli";
import { codeStatistics } from "../sdk/advisor/similarity.ts";
import { analyze } from "../core/arch/analyze.ts";
import { openDataset } from "../sdk/data/spec.ts";
import type { Preprocessing } from "../sdk/data/types.ts";
import type { Architecture } from "../core/arch/types.ts";
import { checkModelJson } from "../core/model_json.ts";
import { tfjsLayers } from "../sdk/model_layers.ts";
import { NAME_PART } from "../core/names.ts";
import { formatJson, renderReadme, ZOO_VERSION, type ZooCard } from "./_checkpoint.ts";

/** Options of {@linkcode importModel}. */
export interface ImportOptions {
  /** The folder to write; created if missing. */
  outDir: string;
  /** The model's name for the card and README. @default the last folder of the URL */
  name?: string;
  /** The fetch to use (tests, proxies). @default {globalThis.fetch} */
  fetch?: typeof fetch;
  /**
   * A data spec of the data the weights were trained on (e.g.
   * `mnist?perClass=500`, `dir:PATH`): its train split's code statistics at
   * the penultimate layer become the card's `sourceStats`.
   * @default none: the card says the source data was not at hand
   */
  sourceData?: string;
  /** The pixel range the model expects, for `sourceData` and the card. @default [0, 1] */
  range?: [number, number];
  /** Called with progress lines (the statistics take a while on big models). @default nothing */
  log?: (line: string) => void;
}

/** What {@linkcode importModel} wrote. */
export interface ImportResult {
  /** The folder written. */
  dir: string;
  /** The name used. */
  name: string;
  /** Paths written in the folder: `model.json`, the shards, `card.json`, `README.md`. */
  paths: string[];
  /** Bytes of weights fetched. */
  weightBytes: number;
  /** The card skeleton written. */
  card: ZooCard;
  /** The architecture analysis of the imported model. */
  architecture: Architecture;
}

function nameFromUrl(url: URL): string {
  const parts = url.pathname.split("/").filter((p) => p !== "" && p !== "model.json");
  const guess = (parts.at(-1) ?? "model").toLowerCase().replace(/[^a-z0-9._-]+/g, "-");
  return NAME_PART.test(guess) ? guess : "model";
}

async function fetchBytes(
  doFetch: typeof fetch,
  url: URL,
  what: string,
): Promise<Uint8Array<ArrayBuffer>> {
  let res: Response;
  try {
    res = await doFetch(url);
  } catch (e) {
    throw new Error(
      `Cannot import "${url.href}": fetching ${what} failed: ${(e as Error).message}`,
    );
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(
      `Cannot import "${url.href}": ${what} answered ${res.status} ${res.statusText}`,
    );
  }
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * The code statistics of the source data at the penultimate layer (what
 * `zoo/train.ts` stores for the zoo's own checkpoints), on the weights just
 * fetched.
 */
async function sourceStatistics(
  modelJson: { weightsManifest?: { paths?: unknown; weights?: unknown }[] },
  shards: Map<string, Uint8Array<ArrayBuffer>>,
  architecture: Architecture,
  spec: string,
  range: [number, number],
  log?: (line: string) => void,
): Promise<ZooCard["sourceStats"]> {
  const layer = architecture.classifierCut ?? architecture.featureCut;
  const [, height, width, channels] = architecture.nativeInputShape;
  if (layer === null || typeof height !== "number" || typeof width !== "number") {
    throw new RangeError(
      `Cannot compute the source statistics of "${architecture.name}": it has no penultimate layer or no fixed input size: import without --source-data`,
    );
  }
  const data = await openDataset(spec, { split: "train", seed: 0 });
  if (data.imageShape[2] !== channels) {
    throw new RangeError(
      `Cannot compute the source statistics on "${spec}": its images have ${
        data.imageShape[2]
      } channel(s) and the model takes ${channels}: give the data the weights were trained on`,
    );
  }
  const groups = modelJson.weightsManifest ?? [];
  const bytes = groups.flatMap((g) => (g.paths as string[]).map((p) => shards.get(p)!));
  const weightData = new Uint8Array(bytes.reduce((n, b) => n + b.byteLength, 0));
  let at = 0;
  for (const b of bytes) {
    weightData.set(b, at);
    at += b.byteLength;
  }
  const model = await tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: (modelJson as { modelTopology: object }).modelTopology,
    weightSpecs: groups.flatMap((g) => g.weights as tf.io.WeightsManifestEntry[]),
    weightData: weightData.buffer,
  }));
  try {
    const preprocess: Preprocessing = { height, width, channels: channels as 1 | 3, range };
    log?.(`source statistics: codes of ${data.size} images of "${spec}" at "${layer}"`);
    return await codeStatistics(
      model,
      layer,
      data,
      preprocess,
      { batchSize: 32 },
      `${spec} train split, seed 0`,
    );
  } finally {
    model.dispose();
  }
}

/**
 * Imports a LayersModel from the URL of its `model.json`: fetches the
 * model.json and every shard its manifest lists (relative to the URL),
 * checks the shards' sizes against the manifest and the topology with the
 * registry's own checks, and writes the folder with a card skeleton to fill in
 * (labels, license, source dataset, preprocessing).
 *
 * @param url the model.json URL
 * @param opts output folder, name, fetch
 * @returns what was written
 * @throws {TypeError} when the URL is not http(s)
 * @throws {RangeError} when the name is not a valid model name
 * @throws {SyntaxError} when model.json is not JSON
 * @throws {Error} when a request fails or the model.json and shards are not a valid LayersModel
 *
 * @example Import a model served by a registry
 * ```ts ignore
 * import { importModel } from "./import.ts";
 * const { dir, paths } = await importModel(
 *   "http://localhost:8000/api/models/zoo/lenet5/1.0.0/model.json",
 *   { outDir: "./out/lenet5", name: "lenet5" },
 * );
 * console.log(dir, paths);
 * ```
 */
export async function importModel(url: string | URL, opts: ImportOptions): Promise<ImportResult> {
  const source = new URL(url);
  if (source.protocol !== "http:" && source.protocol !== "https:") {
    throw new TypeError(`Cannot import "${source.href}": use an http(s) URL of a model.json`);
  }
  const name = opts.name ?? nameFromUrl(source);
  if (!NAME_PART.test(name)) {
    throw new RangeError(
      `Invalid name "${name}": use lowercase letters, digits, "-", "_" and ".", 1-64 characters`,
    );
  }
  const doFetch = opts.fetch ?? fetch;
  const text = new TextDecoder().decode(await fetchBytes(doFetch, source, "model.json"));
  let modelJson: { weightsManifest?: { paths?: unknown }[] };
  try {
    modelJson = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(
      `Cannot import "${source.href}": model.json is not valid JSON: ${(e as Error).message}`,
    );
  }
  const shards = new Map<string, Uint8Array<ArrayBuffer>>();
  for (const group of modelJson.weightsManifest ?? []) {
    for (const path of Array.isArray(group.paths) ? group.paths : []) {
      if (typeof path !== "string" || shards.has(path)) continue;
      const shardUrl = new URL(path, source);
      if (shardUrl.origin !== source.origin) {
        throw new Error(
          `Cannot import "${source.href}": shard "${path}" is not next to model.json`,
        );
      }
      shards.set(path, await fetchBytes(doFetch, shardUrl, `shard "${path}"`));
    }
  }
  const sizes = new Map([...shards].map(([p, b]) => [p, b.byteLength]));
  const problems = checkModelJson(modelJson, sizes, tfjsLayers);
  if (problems.length > 0) {
    throw new Error(
      `Cannot import "${source.href}": not a valid TensorFlow.js LayersModel: ${problems[0]}`,
    );
  }
  const architecture = analyze(modelJson as Parameters<typeof analyze>[0]);
  const [, height, width, channels] = architecture.nativeInputShape;
  const classes = architecture.outputShape.at(-1);
  const range = opts.range ?? [0, 1];
  const stats = opts.sourceData === undefined
    ? null
    : await sourceStatistics(modelJson, shards, architecture, opts.sourceData, range, opts.log);
  const card: ZooCard = {
    task: "image-classification",
    labels: typeof classes === "number"
      ? Array.from({ length: classes }, (_, i) => `class_${i}`)
      : [],
    description: `${architecture.name} imported from ${source.href}.`,
    dataset: { name: "unknown: fill in the dataset the weights were trained on" },
    datasetSize: null,
    license: "unknown",
    source: source.href,
    preprocessing: {
      height: height ?? 224,
      width: width ?? 224,
      channels: channels === 1 ? 1 : 3,
      range,
      channelOrder: "rgb",
      resize: "bilinear (unverified: check what the model was trained with)",
    },
    metrics: [],
    parent: null,
    sourceStats: stats,
    ...(stats === null
      ? {
        sourceStatsNote:
          "Not computed: the data the weights were trained on was not at hand (import again with --source-data SPEC to add it); the fine-tuning advisor measures similarity from the checkpoint's own predictions instead",
      }
      : {}),
    importedAt: new Date().toISOString(),
  };
  const readme = renderReadme({
    name,
    version: ZOO_VERSION,
    card,
    arch: architecture,
    about: `Imported by \`zoo/import.ts\` from \`${source.href}\`: model.json and ${shards.size}
weight shard(s), byte for byte. Fill in the card (labels, license, source dataset,
preprocessing, metrics) before publishing.`,
    limitations: "Unknown: describe what the model is for and where it fails.",
    rebuild: `\`\`\`sh
deno run -A zoo/import.ts --url ${source.href} --out ${opts.outDir} --name ${name}
\`\`\``,
    exampleInput: [1, height ?? 224, width ?? 224, channels ?? 3],
  });
  await Deno.mkdir(opts.outDir, { recursive: true });
  await Deno.writeTextFile(join(opts.outDir, "model.json"), formatJson(modelJson));
  for (const [path, bytes] of shards) {
    await Deno.mkdir(dirname(join(opts.outDir, path)), { recursive: true });
    await Deno.writeFile(join(opts.outDir, path), bytes);
  }
  await Deno.writeTextFile(join(opts.outDir, "card.json"), formatJson(card));
  await Deno.writeTextFile(join(opts.outDir, "README.md"), readme);
  return {
    dir: opts.outDir,
    name,
    paths: ["model.json", ...shards.keys(), "card.json", "README.md"],
    weightBytes: [...shards.values()].reduce((n, b) => n + b.byteLength, 0),
    card,
    architecture,
  };
}

const HELP = `Import a TensorFlow.js LayersModel served over HTTP into a publishable folder.

Usage: deno run -A zoo/import.ts --url URL/model.json --out DIR [--name NAME] [--source-data SPEC]

Flags (no environment variables):
  --url URL            the model.json URL; shards are fetched next to it   required
  --out DIR            the folder to write                                 required
  --name NAME          the model's name in the card and README              last folder of the URL
  --source-data SPEC   the data the weights were trained on (mnist, dir:PATH, ...):
                       its code statistics become the card's sourceStats    none: the card says so
  --range LO,HI        the pixel range the model expects                    0,1
  -h, --help           this text

Then fill in DIR/card.json and publish: deno task publish DIR --name ns/NAME --version 1.0.0`;

/**
 * Runs the command line.
 *
 * @param args command-line arguments
 * @returns what was written, or `undefined` for `--help`
 * @throws {RangeError} when `--url` or `--out` is missing
 */
export async function main(args: string[]): Promise<ImportResult | undefined> {
  const flags = parseArgs(args, {
    string: ["url", "out", "name", "source-data", "range"],
    boolean: ["help"],
    alias: { h: "help" },
  });
  if (flags.help) {
    console.log(HELP);
    return undefined;
  }
  const url = flags.url as string | undefined;
  const outDir = flags.out as string | undefined;
  if (url === undefined || outDir === undefined) {
    throw new RangeError(`Missing ${url === undefined ? "--url" : "--out"}: see --help`);
  }
  const opts: ImportOptions = { outDir };
  if (flags.name !== undefined) opts.name = flags.name as string;
  if (flags["source-data"] !== undefined) {
    opts.sourceData = flags["source-data"] as string;
    opts.log = (line) => console.error(line);
  }
  if (flags.range !== undefined) {
    const parts = String(flags.range).split(",").map(Number);
    if (parts.length !== 2 || !parts.every(Number.isFinite) || !(parts[0]! < parts[1]!)) {
      throw new RangeError(`Invalid --range "${flags.range}": use LO,HI, e.g. 0,1 or -1,1`);
    }
    opts.range = [parts[0]!, parts[1]!];
  }
  const result = await importModel(url, opts);
  console.log(
    `Imported "${result.name}" (${result.architecture.totalParams} params, ${result.weightBytes} weight bytes) into ${result.dir}: fill in card.json, then publish`,
  );
  console.log(
    result.card.sourceStats === null
      ? "No sourceStats: the source data was not given (--source-data SPEC); the advisor will judge similarity from the model's own predictions"
      : `sourceStats: ${result.card.sourceStats.dim} codes at "${result.card.sourceStats.layer}" over ${result.card.sourceStats.count} images`,
  );
  return result;
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(1);
  }
}
