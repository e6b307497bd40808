/**
 * The pretrained nsfwjs checkpoints (MobileNetV2 at 224×224, InceptionV3 at
 * 299×299; 5 classes), read from the copy the `nsfwjs` npm package ships in
 * `node_modules/nsfwjs/dist/models/`. nsfwjs wraps each file in a UMD bundle:
 * `model.min.js` exports the model.json object and each
 * `group1-shardNofM.min.js` exports one weight shard as a base64 string.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import type { ModelJson } from "../../core/model_json.ts";

/** The nsfwjs checkpoints this module reads. */
export type NsfwjsModelName = "mobilenet_v2" | "inception_v3";

/** The classes nsfwjs predicts, in output order. */
export const NSFWJS_CLASSES: readonly string[] = ["Drawing", "Hentai", "Neutral", "Porn", "Sexy"];

const MODELS_DIR = new URL("../../node_modules/nsfwjs/dist/models/", import.meta.url);

function checkName(name: string): asserts name is NsfwjsModelName {
  if (name !== "mobilenet_v2" && name !== "inception_v3") {
    throw new RangeError(
      `Cannot read nsfwjs model "${name}": use "mobilenet_v2" or "inception_v3"`,
    );
  }
}

/**
 * Reads one nsfwjs checkpoint: its model.json and the bytes of its weight
 * shards, concatenated in manifest order (uint8-quantized, as shipped).
 *
 * @param name which checkpoint
 * @returns the model.json and the weight bytes
 * @throws {RangeError} for an unknown name
 * @throws {Error} when the nsfwjs package is not installed (run `deno install`)
 *
 * @example Read MobileNetV2
 * ```ts
 * import { readNsfwjsModel } from "./source.ts";
 * const { modelJson, weightData } = await readNsfwjsModel("mobilenet_v2");
 * console.log(modelJson.weightsManifest[0]?.paths, weightData.byteLength);
 * ```
 */
export function readNsfwjsModel(
  name: NsfwjsModelName,
): Promise<{ modelJson: ModelJson; weightData: ArrayBuffer }> {
  checkName(name);
  const dir = new URL(`${name}/`, MODELS_DIR);
  // The bundles are CommonJS (the folder's package.json says so); require runs them as such.
  const require = createRequire(dir);
  let modelJson: ModelJson;
  try {
    modelJson = require("./model.min.js") as ModelJson;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return Promise.reject(
      new Error(
        `Cannot read nsfwjs model "${name}" from "${dir.pathname}": ${why}: run \`deno install\``,
      ),
    );
  }
  const shards: Uint8Array[] = [];
  for (const group of modelJson.weightsManifest) {
    for (const path of group.paths) {
      const base64: unknown = require(`./${path}.min.js`);
      if (typeof base64 !== "string") {
        return Promise.reject(
          new Error(`Cannot read nsfwjs model "${name}": shard "${path}" is not base64 text`),
        );
      }
      shards.push(Buffer.from(base64, "base64"));
    }
  }
  const total = shards.reduce((n, s) => n + s.byteLength, 0);
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const s of shards) {
    weightData.set(s, offset);
    offset += s.byteLength;
  }
  return Promise.resolve({ modelJson, weightData: weightData.buffer });
}

/**
 * Loads one nsfwjs checkpoint as a `tf.LayersModel` on the current backend.
 *
 * @param name which checkpoint
 * @returns the model, weights dequantized to float32
 * @throws {RangeError} for an unknown name
 *
 * @example Classify a blank image
 * ```ts
 * import { loadNsfwjsModel } from "./source.ts";
 * const model = await loadNsfwjsModel("mobilenet_v2");
 * console.log(model.outputs[0]?.shape); // [null, 5]
 * ```
 */
export async function loadNsfwjsModel(name: NsfwjsModelName): Promise<tf.LayersModel> {
  const { modelJson, weightData } = await readNsfwjsModel(name);
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: modelJson.modelTopology,
    weightSpecs: modelJson.weightsManifest.flatMap((g) =>
      g.weights as tf.io.WeightsManifestEntry[]
    ),
    weightData,
  };
  return await tf.loadLayersModel(tf.io.fromMemory(artifacts));
}

/** How nsfwjs turns an image into the input of a checkpoint. */
export interface NsfwjsPreprocessing {
  /** Square input side in pixels. */
  inputSize: number;
  /** Channel order of the input. */
  channelOrder: "RGB";
  /** Pixel values are divided by 255: [0, 1]. */
  valueRange: [number, number];
  /** Resizing nsfwjs applies when the image is not `inputSize` square. */
  resize: { method: "bilinear"; alignCorners: boolean };
  /** Class labels in output order. */
  labels: readonly string[];
}

/**
 * The preprocessing nsfwjs applies before a checkpoint (from its `infer`):
 * RGB pixels divided by 255, bilinear resize with aligned corners to a square
 * of 224 (MobileNetV2) or 299 (InceptionV3); no mean subtraction.
 *
 * @param name which checkpoint
 * @returns its preprocessing
 * @throws {RangeError} for an unknown name
 *
 * @example Input size of InceptionV3
 * ```ts
 * import { nsfwjsPreprocessing } from "./source.ts";
 * console.log(nsfwjsPreprocessing("inception_v3").inputSize); // 299
 * ```
 */
export function nsfwjsPreprocessing(name: NsfwjsModelName): NsfwjsPreprocessing {
  checkName(name);
  return {
    inputSize: name === "inception_v3" ? 299 : 224,
    channelOrder: "RGB",
    valueRange: [0, 1],
    resize: { method: "bilinear", alignCorners: true },
    labels: NSFWJS_CLASSES,
  };
}
