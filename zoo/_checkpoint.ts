/**
 * A zoo checkpoint folder: `model.json`, its weight shards, `card.json` and
 * the `README.md` model card generated from the card and the architecture.
 * JSON is written as `JSON.stringify(value, null, 2)` and tables are padded
 * the way `deno fmt` pads them, so committed checkpoints stay fmt-clean.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import type { Architecture } from "../core/arch/types.ts";
import type { Preprocessing } from "../sdk/data/types.ts";
import type { SourceStats } from "../sdk/types.ts";
import type { CheckpointFile } from "../sdk/client/mod.ts";

/** The version every built-in zoo entry is published at. */
export const ZOO_VERSION = "1.0.0";

/** The preprocessing a card records: the SDK's {@linkcode Preprocessing} plus how images are resized. */
export interface CardPreprocessing extends Preprocessing {
  /** Order of color channels. */
  channelOrder: "rgb" | "bgr";
  /** How an image of another size is brought to `height`×`width`. */
  resize: string;
}

/** One measured metric. */
export interface CardMetric {
  /** E.g. `accuracy`. */
  name: string;
  /** The value, a fraction for accuracy. */
  value: number;
  /** What it was measured on. */
  dataset: string;
}

/** The model card every zoo entry carries as `card.json`. */
export interface ZooCard {
  /** Always `image-classification` in this zoo. */
  task: "image-classification";
  /** Class names in output order. */
  labels: string[];
  /** One sentence. */
  description: string;
  /** The source dataset. */
  dataset: Record<string, unknown>;
  /** Training examples in the source dataset; `null` when unknown. */
  datasetSize: number | null;
  /** License of the weights (SPDX). */
  license: string;
  /** Where the weights come from. */
  source: string;
  /** What the checkpoint expects as input. */
  preprocessing: CardPreprocessing;
  /** Measured metrics. */
  metrics: CardMetric[];
  /** The checkpoint this one was fine-tuned from; `null` for the zoo's roots. */
  parent: string | null;
  /** Code statistics over the source training split; `null` when that data is not available. */
  sourceStats: SourceStats | null;
  /** Anything else the entry records (training schedule, quantization, command). */
  [key: string]: unknown;
}

/**
 * Serializes JSON the way `deno fmt` leaves it.
 *
 * @param value any JSON value
 * @returns two-space indented JSON and a final newline
 */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * Writes a checkpoint folder: the files, `card.json` and `README.md`.
 *
 * @param dir the folder, created if missing
 * @param files `model.json` and its shards
 * @param card the card
 * @param readme the model card's markdown
 */
export async function writeCheckpoint(
  dir: string,
  files: CheckpointFile[],
  card: ZooCard,
  readme: string,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const f of files) {
    const bytes = f.path === "model.json"
      ? new TextEncoder().encode(formatJson(JSON.parse(new TextDecoder().decode(f.bytes))))
      : f.bytes;
    await Deno.writeFile(join(dir, f.path), bytes);
  }
  await Deno.writeTextFile(join(dir, "card.json"), formatJson(card));
  await Deno.writeTextFile(join(dir, "README.md"), readme);
}

/**
 * Reads a checkpoint folder: `model.json`, the shards it lists and
 * `README.md`, in that order, and the parsed `card.json`.
 *
 * @param dir the folder
 * @returns the files and the card
 * @throws {Deno.errors.NotFound} when a file is missing
 * @throws {SyntaxError} when model.json or card.json is not JSON
 */
export async function readCheckpoint(
  dir: string,
): Promise<{ files: CheckpointFile[]; card: Record<string, unknown> }> {
  const modelJson = await Deno.readFile(join(dir, "model.json"));
  const parsed = JSON.parse(new TextDecoder().decode(modelJson)) as {
    weightsManifest?: { paths: string[] }[];
  };
  const files: CheckpointFile[] = [{ path: "model.json", bytes: modelJson }];
  for (const group of parsed.weightsManifest ?? []) {
    for (const path of group.paths) {
      files.push({ path, bytes: await Deno.readFile(join(dir, path)) });
    }
  }
  files.push({ path: "README.md", bytes: await Deno.readFile(join(dir, "README.md")) });
  const card = JSON.parse(await Deno.readTextFile(join(dir, "card.json")));
  return { files, card };
}

/**
 * Loads the model of a checkpoint folder with one weight group, such as a
 * committed zoo entry's `checkpoint/`, straight from its files (no registry).
 *
 * @param dir the folder, as a path or a `file:` URL ending in `/`
 * @returns the LayersModel, on the current tfjs backend
 * @throws {Deno.errors.NotFound} when model.json or its shard is missing
 */
export async function loadCheckpointModel(dir: string | URL): Promise<tf.LayersModel> {
  const at = (name: string) => typeof dir === "string" ? join(dir, name) : new URL(name, dir);
  const json = JSON.parse(await Deno.readTextFile(at("model.json")));
  const group = json.weightsManifest[0];
  const bin = await Deno.readFile(at(group.paths[0]));
  return await tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: group.weights,
    weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
  }));
}

/**
 * A markdown table with cells padded as `deno fmt` pads them.
 *
 * @param header the column names
 * @param rows the cells, row by row
 * @returns markdown without a final newline
 */
export function markdownTable(header: string[], rows: string[][]): string {
  const esc = (s: string) => s.replaceAll("|", "\\|");
  const all = [header, ...rows].map((r) => r.map(esc));
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => `| ${widths.map((w, i) => (r[i] ?? "").padEnd(w)).join(" | ")} |`;
  return [
    line(all[0]!),
    `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`,
    ...all.slice(1).map(line),
  ].join("\n");
}

const shape = (s: (number | null)[] | null) =>
  s === null ? "" : `[${s.map((d) => d ?? "?").join(", ")}]`;
const pair = (p: [number, number] | null) => (p === null ? "" : `${p[0]}x${p[1]}`);

/**
 * The architecture summary of a README: one row per layer with its output
 * shape, parameters, receptive field and jump, and the cut points marked.
 *
 * @param arch the analysis
 * @returns markdown
 */
export function architectureSummary(arch: Architecture): string {
  const cuts = new Set(arch.cutPoints);
  const rows = arch.layers.map((l) => [
    l.name + (l.name === arch.featureCut ? " (feature cut)" : ""),
    l.className,
    shape(l.outputShape),
    l.params.toLocaleString("en-US"),
    pair(l.receptiveField),
    pair(l.jump),
    cuts.has(l.name) ? "yes" : "",
  ]);
  const facts = [
    `- Input: \`${shape(arch.inputShape)}\`, output: \`${shape(arch.outputShape)}\``,
    `- Parameters: ${arch.totalParams.toLocaleString("en-US")} (${
      arch.trainableParams.toLocaleString("en-US")
    } trainable)`,
    `- Head: ${arch.headKind} (${arch.headLayers.join(", ")})`,
    `- Feature cut: \`${arch.featureCut ?? "none"}\` ${shape(arch.featureShape)}, total stride ${
      arch.totalStride ?? "n/a"
    }, receptive field ${arch.receptiveField ?? "n/a"}`,
    `- Smallest input: ${pair(arch.minInputSize) || "n/a"}`,
  ];
  if (arch.flops !== null) {
    facts.push(`- FLOPs per image: ${(arch.flops / 1e6).toFixed(1)} M`);
  }
  return `${facts.join("\n")}\n\n${
    markdownTable(
      ["layer", "class", "output", "params", "receptive field", "jump", "cut point"],
      rows,
    )
  }\n`;
}

/** What {@linkcode renderReadme} writes about an entry beyond its card. */
export interface ReadmeInput {
  /** The entry's name, e.g. `lenet5`. */
  name: string;
  /** The version the zoo publishes. */
  version: string;
  /** The card. */
  card: ZooCard;
  /** The analysis of the model. */
  arch: Architecture;
  /** Markdown: what the model is and where it comes from. */
  about: string;
  /** Markdown: intended use and limitations. */
  limitations: string;
  /** Markdown: how to rebuild it. */
  rebuild: string;
  /** A `[batch, h, w, c]` input for the code examples. */
  exampleInput: number[];
}

/** Splits text into words, keeping each inline code span whole. */
function words(text: string): string[] {
  return text.match(/(?:`[^`]*`|[^\s`])+/g) ?? [];
}

function wrapWords(text: string, first: string, rest: string, width: number): string {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const w of words(text)) {
    if (!empty && line.length + 1 + w.length > width) {
      lines.push(line);
      line = rest + w;
    } else {
      line += (empty ? "" : " ") + w;
    }
    empty = false;
  }
  lines.push(line);
  return lines.join("\n");
}

/**
 * Wraps the prose of a markdown document at `width` columns as `deno fmt`
 * does (paragraphs and list items); headings, tables and code blocks are
 * left as they are.
 *
 * @param markdown the document
 * @param width the project's line width
 * @returns the wrapped document
 */
export function wrapMarkdown(markdown: string, width = 100): string {
  const out: string[] = [];
  let inCode = false;
  let block: string[] = [];
  const flush = () => {
    if (block.length === 0) return;
    const items: string[][] = [];
    for (const l of block) {
      if (l.startsWith("- ") || items.length === 0) items.push([l]);
      else items[items.length - 1]!.push(l);
    }
    for (const item of items) {
      const text = item.map((l) => l.trim()).join(" ");
      out.push(
        text.startsWith("- ")
          ? wrapWords(text.slice(2), "- ", "  ", width)
          : wrapWords(text, "", "", width),
      );
    }
    block = [];
  };
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) {
      flush();
      inCode = !inCode;
      out.push(line);
    } else if (inCode || line.startsWith("#") || line.startsWith("|") || line.trim() === "") {
      flush();
      out.push(line);
    } else {
      block.push(line);
    }
  }
  flush();
  return out.join("\n");
}

/**
 * Generates a model card README from the card and the architecture.
 *
 * @param input the entry, its card and analysis, and the prose
 * @returns markdown, fmt-clean
 */
export function renderReadme(input: ReadmeInput): string {
  const { name, version, card, arch } = input;
  const ref = `zoo/${name}@${version}`;
  const p = card.preprocessing;
  const pre = [
    `- Input: ${p.height}x${p.width}x${p.channels}, ${
      p.channels === 1 ? "grayscale" : `channel order ${p.channelOrder.toUpperCase()}`
    }`,
    `- Values scaled to [${p.range.join(", ")}]${
      p.mean ? `, then (x - mean) / std with mean ${p.mean} and std ${p.std ?? 1}` : ""
    }`,
    `- Resize: ${p.resize}`,
  ].join("\n");
  const metrics = card.metrics.length === 0 ? "None measured by the zoo." : markdownTable(
    ["metric", "value", "dataset"],
    card.metrics.map((m) => [m.name, m.value.toFixed(4), m.dataset]),
  );
  const stats = card.sourceStats === null
    ? "None: the source training data is not available, so the card has no `sourceStats`."
    : `\`sourceStats\` in card.json: mean and standard deviation of each of the ${card.sourceStats.dim} ReLU'd CNN codes at \`${card.sourceStats.layer}\` over ${card.sourceStats.count} images (${card.sourceStats.dataset}), for the fine-tuning advisor.`;
  const facts = markdownTable(["fact", "value"], [
    ["task", card.task],
    ["labels", card.labels.join(", ")],
    ["license", card.license],
    ["source", card.source],
  ]);
  const readme = `# ${ref}

${card.description}

${input.about.trim()}

${facts}

## Intended use and limitations

${input.limitations.trim()}

## Preprocessing

${pre}

## Metrics

${metrics}

## Source statistics

${stats}

## Use it

With the SDK (verified, cached download):

\`\`\`ts ignore
import * as tf from "@tensorflow/tfjs";
import { ZooClient } from "@zoo/model-zoo";
const zoo = new ZooClient({ url: "http://localhost:8000" });
const model = await zoo.loadModel("${ref}");
const probs = model.predict(tf.zeros([${input.exampleInput.join(", ")}])) as tf.Tensor;
console.log(await probs.data());
\`\`\`

With plain TensorFlow.js, from any registry that serves the zoo:

\`\`\`ts ignore
import * as tf from "@tensorflow/tfjs";
const model = await tf.loadLayersModel(
  "http://localhost:8000/api/models/zoo/${name}/${version}/model.json",
);
\`\`\`

## Rebuild

${input.rebuild.trim()}

## Architecture

${architectureSummary(arch)}`;
  return wrapMarkdown(readme);
}
