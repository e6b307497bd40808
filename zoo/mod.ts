/**
 * The zoo's built-in checkpoints, ready to publish: three small networks
 * trained on MNIST digits by this repository (`lenet5`, `vggish`,
 * `resnet-mini`; committed under `zoo/<name>/checkpoint/`) and two
 * pretrained networks imported from `npm:nsfwjs@4.4.0` (`mobilenet-v2`,
 * `inception-v3`; built from `node_modules` in memory).
 *
 * - {@linkcode zooEntries}: every entry's files and card, for seeding a registry
 * - source statistics in each card: `codeStatistics` in `sdk/advisor/similarity.ts`
 * - {@linkcode importModel}: any LayersModel served over HTTP into a publishable folder
 *
 * @example List the entries without the big imported ones
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { zooEntries } from "./mod.ts";
 * const entries = await zooEntries({ imported: false });
 * assertEquals(entries.map((e) => e.name), ["lenet5", "vggish", "resnet-mini"]);
 * for (const entry of entries) {
 *   assertEquals(entry.files.map((f) => f.path).slice(0, 2), ["model.json", "group1-shard1of1.bin"]);
 * }
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readCheckpoint, ZOO_VERSION } from "./_checkpoint.ts";
import { buildNsfwjsEntry } from "./_nsfwjs_entry.ts";
import { recipe as mobilenetV2 } from "./mobilenet-v2/recipe.ts";
import { recipe as inceptionV3 } from "./inception-v3/recipe.ts";

export { ZOO_VERSION };
export { importModel, type ImportOptions, type ImportResult } from "./import.ts";

/** The namespace the zoo publishes into. */
export const ZOO_NAMESPACE = "zoo";

/** The entries trained by this repository, committed under `zoo/<name>/checkpoint/`. */
export const TRAINED_ENTRIES: readonly string[] = ["lenet5", "vggish", "resnet-mini"];

/** The entries imported from nsfwjs at seed time. */
export const IMPORTED_ENTRIES: readonly string[] = ["mobilenet-v2", "inception-v3"];

/** One checkpoint ready to publish. */
export interface ZooEntry {
  /** The model's name in the `zoo` namespace, e.g. `lenet5`. */
  name: string;
  /** A semver version. */
  version: string;
  /** `model.json`, its weight shards and `README.md`. */
  files: { path: string; bytes: Uint8Array<ArrayBuffer> }[];
  /** The model card (`card.json`). */
  card: Record<string, unknown>;
}

/** Options of {@linkcode zooEntries}. */
export interface ZooEntriesOptions {
  /**
   * Include the entries imported from nsfwjs (MobileNetV2, 2.6 MB; InceptionV3, 22 MB).
   * @default {true}
   */
  imported?: boolean;
  /** Only these entries, by name. @default all */
  only?: readonly string[];
}

const ZOO_DIR = fileURLToPath(new URL(".", import.meta.url));

/**
 * Every zoo entry's files and card: the trained ones read from their
 * committed folders, the imported ones built from the installed nsfwjs package.
 *
 * @param opts leave out the imported entries, or pick entries by name
 * @returns the entries, trained ones first
 * @throws {RangeError} when `only` names an entry the zoo does not have
 * @throws {Deno.errors.NotFound} when a trained checkpoint is missing (run `deno task zoo:train`)
 * @throws {Error} when nsfwjs is not installed (run `deno install`)
 *
 * @example Seed-time view of LeNet-5
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { zooEntries } from "./mod.ts";
 * const [lenet] = await zooEntries({ only: ["lenet5"] });
 * assertEquals(lenet?.card.task, "image-classification");
 * const metrics = lenet?.card.metrics as { name: string; value: number }[];
 * assertEquals(metrics[0]?.name, "accuracy");
 * ```
 */
export async function zooEntries(opts: ZooEntriesOptions = {}): Promise<ZooEntry[]> {
  const known = [...TRAINED_ENTRIES, ...IMPORTED_ENTRIES];
  for (const name of opts.only ?? []) {
    if (!known.includes(name)) {
      throw new RangeError(`Unknown zoo entry "${name}": use one of ${known.join(", ")}`);
    }
  }
  const wanted = (name: string) => opts.only === undefined || opts.only.includes(name);
  const entries: ZooEntry[] = [];
  for (const name of TRAINED_ENTRIES.filter(wanted)) {
    const dir = join(ZOO_DIR, name, "checkpoint");
    let checkpoint: Awaited<ReturnType<typeof readCheckpoint>>;
    try {
      checkpoint = await readCheckpoint(dir);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Deno.errors.NotFound(
          `Cannot read zoo entry "${name}" from "${dir}": ${e.message}: run \`deno task zoo:train --only ${name}\``,
        );
      }
      throw e;
    }
    entries.push({ name, version: ZOO_VERSION, ...checkpoint });
  }
  if (opts.imported ?? true) {
    for (const recipe of [mobilenetV2, inceptionV3].filter((r) => wanted(r.name))) {
      const { files, card } = await buildNsfwjsEntry(recipe, ZOO_VERSION);
      entries.push({ name: recipe.name, version: ZOO_VERSION, files, card });
    }
  }
  return entries;
}
