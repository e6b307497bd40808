/**
 * The SDK's bridge to `tf.io`: an `IOHandler` that loads a checkpoint from a
 * {@linkcode ZooClient}'s verified cache (through the {@linkcode CheckpointReader}
 * interface it implements, so this module does not import the client), a `zoo://` load router so stock
 * `tf.loadLayersModel("zoo://ns/name@ref")` works, and the save side that
 * turns an in-memory model into publishable files.
 *
 * The only global state is tfjs's own router registry, which has no way to
 * remove a router: {@linkcode registerZooRouter} therefore returns a handle
 * whose `unregister()` turns its router off.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { FILE_PATH, printable } from "../../core/names.ts";
import type { CheckpointReader, TransferOptions, VersionDocument } from "./types.ts";
import type { IOHandler, LayersModel, ModelArtifacts } from "../_tfjs_types.ts";

/** The URL scheme the load router answers: `zoo://namespace/name@ref`. */
export const ZOO_SCHEME = "zoo://";

/** Shards of a model saved from memory are cut at this size, like the tfjs converter's default. */
const SHARD_BYTES = 4 * 1024 * 1024;

/**
 * An `IOHandler` whose `load()` resolves a reference through the client,
 * fetches what the cache lacks, and returns the model artifacts built from
 * verified bytes (weights concatenated in manifest order).
 *
 * @param client a {@linkcode ZooClient} (its registry, cache and offline mode)
 * @param reference `namespace/name[@version-or-tag]`
 * @param options progress callback
 * @returns the handler
 *
 * @example Load through tf.loadLayersModel (needs a running registry)
 * ```ts ignore
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { ZooClient } from "./zoo_client.ts";
 * import { zooIOHandler } from "./io_handler.ts";
 * const model = await tf.loadLayersModel(zooIOHandler(new ZooClient(), "zoo/lenet5@1.0.0"));
 * assertEquals(model.outputs[0]!.shape, [null, 10]);
 * ```
 */
export function zooIOHandler(
  client: CheckpointReader,
  reference: string,
  options: TransferOptions = {},
): IOHandler {
  return { load: () => loadArtifacts(client, reference, options) };
}

/**
 * Loads a checkpoint's model artifacts from verified cached files.
 *
 * @param client the client
 * @param reference `namespace/name[@version-or-tag]`
 * @param options progress callback
 * @returns the artifacts: topology, weight specs and weight data
 * @throws {SyntaxError} when model.json is not valid JSON
 * @throws {RangeError} when model.json lists a weight file the version lacks
 * @throws {IntegrityError} when the registry sends bytes that do not match their digest
 * @throws {OfflineError} in offline mode when something is not cached
 */
export async function loadArtifacts(
  client: CheckpointReader,
  reference: string,
  options: TransferOptions = {},
): Promise<ModelArtifacts> {
  const doc = await client.resolve(reference);
  const shown = `${doc.namespace}/${doc.name}@${doc.version}`;
  const text = new TextDecoder().decode(await client.readFile(doc, "model.json"));
  let modelJson: tf.io.ModelJSON;
  try {
    modelJson = JSON.parse(text) as tf.io.ModelJSON;
  } catch (e) {
    throw new SyntaxError(
      `Cannot load "${shown}": model.json is not valid JSON: ${(e as Error).message}`,
    );
  }
  const shardPaths = (modelJson.weightsManifest ?? []).flatMap((g) =>
    g.paths.map((p) => shardPath(doc, p))
  );
  await client.ensureFiles(doc, shardPaths, options);
  return await tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
    // Each shard is read straight into its place in one buffer and hashed as it is read.
    const weights = await client.readFiles(doc, shardPaths);
    return [tf.io.getWeightSpecs(manifest), weights.buffer];
  });
}

/**
 * Loads a checkpoint as a `tf.LayersModel` through {@linkcode zooIOHandler}.
 *
 * @param client the client
 * @param reference `namespace/name[@version-or-tag]`
 * @param options progress callback
 * @returns the model; the caller disposes it
 * @throws {IntegrityError} when the registry sends bytes that do not match their digest
 * @throws {OfflineError} in offline mode when something is not cached
 */
export function loadZooModel(
  client: CheckpointReader,
  reference: string,
  options: TransferOptions = {},
): Promise<LayersModel> {
  return tf.loadLayersModel(zooIOHandler(client, reference, options));
}

/** A registered `zoo://` router; `unregister()` (or `using`) turns it off. */
export interface ZooRouterRegistration extends Disposable {
  /** Turns the router off; tfjs cannot remove it, so it answers nothing from then on. */
  unregister(): void;
}

/**
 * Registers a tfjs load router so `tf.loadLayersModel("zoo://ns/name@ref")`
 * loads through `client`. tfjs's router registry is global: register one
 * client at a time (two active routers make tfjs refuse the URL as
 * ambiguous), and unregister before registering another.
 *
 * @param client the client the router loads through
 * @returns the registration
 *
 * @example Register, load, unregister
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertRejects } from "@std/assert";
 * import { OfflineError } from "../errors.ts";
 * import { ZooClient } from "./zoo_client.ts";
 * import { registerZooRouter } from "./io_handler.ts";
 * const cacheDir = await Deno.makeTempDir();
 * {
 *   using _router = registerZooRouter(new ZooClient({ offline: true, cacheDir }));
 *   // The router answers zoo:// URLs; this empty cache has nothing to load offline.
 *   await assertRejects(() => tf.loadLayersModel("zoo://zoo/lenet5@1.0.0"), OfflineError);
 * }
 * await Deno.remove(cacheDir, { recursive: true });
 * ```
 */
export function registerZooRouter(client: CheckpointReader): ZooRouterRegistration {
  let active = true;
  const router = (url: string | string[], loadOptions?: tf.io.LoadOptions) => {
    if (!active || typeof url !== "string" || !url.startsWith(ZOO_SCHEME)) return null;
    const options: TransferOptions = {};
    if (loadOptions?.onProgress) options.onProgress = loadOptions.onProgress;
    return zooIOHandler(client, url.slice(ZOO_SCHEME.length), options);
  };
  // tfjs types routers as always returning a handler; it skips null answers.
  tf.io.registerLoadRouter(router as (url: string | string[]) => tf.io.IOHandler);
  const unregister = () => {
    active = false;
  };
  return { unregister, [Symbol.dispose]: unregister };
}

/** A file of a checkpoint held in memory. */
export interface CheckpointFile {
  /** Its path in the checkpoint, e.g. `model.json`, `group1-shard1of1.bin`. */
  path: string;
  /** Its bytes. */
  bytes: Uint8Array<ArrayBuffer>;
}

/**
 * Saves an in-memory model to checkpoint files through a custom save
 * handler: `model.json` whose weightsManifest lists `group1-shard<i>of<n>.bin`,
 * and the shards (4 MiB each at most).
 *
 * @param model the model
 * @returns `model.json` first, then the shards in order
 *
 * @example Save a tiny model
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { modelToFiles } from "./io_handler.ts";
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
 * const files = await modelToFiles(model);
 * assertEquals(files.map((f) => f.path), ["model.json", "group1-shard1of1.bin"]);
 * assertEquals(files[1]!.bytes.byteLength, 3 * 4); // a 2×1 kernel and a bias, float32
 * model.dispose();
 * ```
 */
export async function modelToFiles(model: LayersModel): Promise<CheckpointFile[]> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler((artifacts) => {
    saved = artifacts;
    return Promise.resolve({ modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) });
  }));
  if (!saved) throw new Error("Cannot save the model: tfjs produced no artifacts");
  return artifactsToFiles(saved);
}

/**
 * Turns model artifacts into checkpoint files: `model.json` and its shards.
 *
 * @param artifacts what a tfjs save handler receives
 * @returns `model.json` first, then the shards in order
 * @throws {TypeError} when the topology is binary (not a LayersModel JSON topology)
 */
export function artifactsToFiles(artifacts: ModelArtifacts): CheckpointFile[] {
  if (artifacts.modelTopology instanceof ArrayBuffer) {
    throw new TypeError("Cannot save the model: a binary topology is not a LayersModel model.json");
  }
  const data = artifacts.weightData === undefined
    ? new Uint8Array(0)
    : new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
  const count = Math.max(1, Math.ceil(data.byteLength / SHARD_BYTES));
  const shards: CheckpointFile[] = [];
  for (let i = 0; i < count; i++) {
    shards.push({
      path: `group1-shard${i + 1}of${count}.bin`,
      bytes: data.slice(i * SHARD_BYTES, (i + 1) * SHARD_BYTES),
    });
  }
  const modelJson: Record<string, unknown> = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format ?? "layers-model",
    generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: shards.map((s) => s.path), weights: artifacts.weightSpecs ?? [] }],
  };
  if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
  if (artifacts.userDefinedMetadata) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
  return [
    { path: "model.json", bytes: new TextEncoder().encode(JSON.stringify(modelJson)) },
    ...shards,
  ];
}

function shardPath(doc: VersionDocument, p: string): string {
  // model.json sits at the checkpoint's root, so its relative shard paths are checkpoint paths.
  const path = p.replace(/^\.\//, "");
  if (!FILE_PATH.test(path) || !doc.files.some((f) => f.path === path)) {
    throw new RangeError(
      `Cannot load "${doc.namespace}/${doc.name}@${doc.version}": model.json lists weight file "${
        printable(p)
      }", which the version does not contain`,
    );
  }
  return path;
}
