/**
 * The `model.json` of a TensorFlow.js LayersModel, and the checks the registry
 * runs on it before a version is published.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** How a weight's values were quantized to shrink the shards. */
export interface WeightQuantization {
  /** The stored dtype: `uint8`, `uint16` or `float16`. */
  dtype: string;
  /** Affine quantization: value = min + scale × stored. */
  min?: number;
  /** Affine quantization: value = min + scale × stored. */
  scale?: number;
}

/** One weight of a {@linkcode WeightsManifestGroup}. */
export interface WeightsManifestEntry {
  /** The weight's name, e.g. `conv2d_1/kernel`. */
  name: string;
  /** Its shape. */
  shape: number[];
  /** Its dtype once loaded: `float32`, `int32`, `bool` or `string`. */
  dtype: string;
  /** Present when the stored bytes are quantized. */
  quantization?: WeightQuantization;
}

/** A group of weights stored one after another across the shard files in `paths`. */
export interface WeightsManifestGroup {
  /** Shard file names, relative to the model.json, in order. */
  paths: string[];
  /** The weights, in the order their bytes appear. */
  weights: WeightsManifestEntry[];
}

/**
 * A TensorFlow.js LayersModel `model.json`: a Keras topology and where its
 * weights are. The minimal shape this project relies on; tfjs may add fields.
 */
export interface ModelJson {
  /** The Keras model: `{ class_name, config }` or `{ model_config: { class_name, config }, … }`. */
  modelTopology: object;
  /** Where the weights are and how they are laid out. */
  weightsManifest: WeightsManifestGroup[];
  /** `layers-model` for a LayersModel. */
  format?: string;
  /** The library that produced the model, e.g. `keras v2.2.4`. */
  generatedBy?: string;
  /** The converter that produced the model.json. */
  convertedBy?: string | null;
}

const CONTAINER_CLASSES = new Set(["Sequential", "Model", "Functional"]);
const DTYPE_BYTES: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function knownLayerClasses(): ReadonlySet<string> {
  return new Set(Object.keys(tf.serialization.SerializationMap.getMap().classNameMap));
}

/** Walks a Keras model config, nested models included, reporting layers tfjs cannot build. */
function checkTopology(
  model: unknown,
  where: string,
  known: ReadonlySet<string>,
  problems: string[],
): void {
  if (!isRecord(model) || typeof model.class_name !== "string") {
    problems.push(`${where} must be an object with "class_name" and "config"`);
    return;
  }
  if (!CONTAINER_CLASSES.has(model.class_name)) {
    problems.push(
      `${where} has class_name "${model.class_name}": expected "Sequential", "Model" or "Functional" (a Keras LayersModel; graph models are not supported)`,
    );
    return;
  }
  const config = model.config;
  const layers = Array.isArray(config) ? config : isRecord(config) ? config.layers : undefined;
  if (!Array.isArray(layers)) {
    problems.push(`${where} has no "config.layers" array`);
    return;
  }
  if (layers.length === 0) problems.push(`${where} has no layers`);
  for (const [i, layer] of layers.entries()) {
    const name = isRecord(layer) && isRecord(layer.config) && typeof layer.config.name === "string"
      ? layer.config.name
      : `#${i}`;
    if (!isRecord(layer) || typeof layer.class_name !== "string" || !isRecord(layer.config)) {
      problems.push(`${where} layer ${name} must be an object with "class_name" and "config"`);
    } else if (CONTAINER_CLASSES.has(layer.class_name)) {
      checkTopology(layer, `Nested model "${name}"`, known, problems);
    } else if (!known.has(layer.class_name)) {
      problems.push(
        `${where} layer "${name}" has class "${layer.class_name}", which TensorFlow.js does not know: replace it with a built-in layer or register the custom class before loading`,
      );
    }
  }
}

/** A plain file name or relative path: no scheme, no leading `/`, no `.`/`..` segment. */
function isPlainPath(path: string): boolean {
  return path.length > 0 && !path.startsWith("/") && !path.includes("\\") &&
    !/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(path) &&
    path.split("/").every((seg) => seg !== "" && seg !== "." && seg !== "..");
}

/**
 * Checks a `model.json` before it is published: a Keras LayersModel topology
 * whose layer classes TensorFlow.js knows, and a weights manifest whose shard
 * files are all present with exactly the bytes the weights need.
 *
 * @param json the parsed model.json
 * @param files the version's other files: path → size in bytes
 * @returns the problems, each a sentence saying what to fix; empty when valid
 *
 * @example A model.json whose shard is missing
 * ```ts
 * import { checkModelJson } from "./model_json.ts";
 * const json = {
 *   modelTopology: {
 *     class_name: "Sequential",
 *     config: {
 *       name: "s",
 *       layers: [{ class_name: "Dense", config: { name: "d", units: 1, batch_input_shape: [null, 2] } }],
 *     },
 *   },
 *   weightsManifest: [{
 *     paths: ["group1-shard1of1.bin"],
 *     weights: [
 *       { name: "d/kernel", shape: [2, 1], dtype: "float32" },
 *       { name: "d/bias", shape: [1], dtype: "float32" },
 *     ],
 *   }],
 * };
 * console.log(checkModelJson(json, new Map([["group1-shard1of1.bin", 12]]))); // []
 * console.log(checkModelJson(json, new Map()).length); // 1
 * ```
 */
export function checkModelJson(json: unknown, files: ReadonlyMap<string, number>): string[] {
  const problems: string[] = [];
  if (!isRecord(json)) {
    return [
      `model.json must be a JSON object, got ${Array.isArray(json) ? "an array" : typeof json}`,
    ];
  }
  if (!("modelTopology" in json)) {
    problems.push(`model.json has no "modelTopology": export the model with model.save()`);
  } else {
    let topology = json.modelTopology;
    if (isRecord(topology) && "model_config" in topology) topology = topology.model_config;
    checkTopology(topology, "modelTopology", knownLayerClasses(), problems);
  }
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) {
    problems.push(
      `model.json has no "weightsManifest" array: export the weights with model.save()`,
    );
    return problems;
  }
  const seen = new Set<string>();
  const listedPaths = new Set<string>();
  for (const [g, group] of manifest.entries()) {
    const where = `weightsManifest[${g}]`;
    if (!isRecord(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      problems.push(`${where} must be an object with "paths" and "weights" arrays`);
      continue;
    }
    let shardBytes = 0;
    let shardsKnown = true;
    for (const path of group.paths) {
      if (typeof path !== "string" || !isPlainPath(path)) {
        problems.push(
          `${where} path ${
            JSON.stringify(path)
          } must be a relative file name next to model.json (no URL, no leading "/", no ".." segment)`,
        );
        shardsKnown = false;
        continue;
      }
      if (listedPaths.has(path)) problems.push(`${where} lists shard "${path}" a second time`);
      listedPaths.add(path);
      const size = files.get(path);
      if (size === undefined) {
        problems.push(`${where} needs shard "${path}", which is not among the uploaded files`);
        shardsKnown = false;
      } else {
        shardBytes += size;
      }
    }
    let weightBytes = 0;
    let weightsKnown = true;
    for (const [i, weight] of group.weights.entries()) {
      if (
        !isRecord(weight) || typeof weight.name !== "string" || !Array.isArray(weight.shape) ||
        !weight.shape.every((d) => Number.isInteger(d) && d >= 0) ||
        typeof weight.dtype !== "string"
      ) {
        problems.push(`${where} weight ${i} must have a "name", a "shape" of sizes and a "dtype"`);
        weightsKnown = false;
        continue;
      }
      if (seen.has(weight.name)) {
        problems.push(`Weight "${weight.name}" is listed twice in the weights manifest`);
      }
      seen.add(weight.name);
      const q = weight.quantization;
      const dtype = isRecord(q) && typeof q.dtype === "string" ? q.dtype : weight.dtype;
      if (weight.dtype === "string") {
        problems.push(
          `Weight "${weight.name}" has dtype "string", which a LayersModel checkpoint cannot hold: store it as float32 or int32`,
        );
        weightsKnown = false;
        continue;
      }
      const bytes = DTYPE_BYTES[dtype];
      if (bytes === undefined) {
        problems.push(
          `Weight "${weight.name}" has dtype "${dtype}": use float32, int32, bool, or a uint8, uint16 or float16 quantization`,
        );
        weightsKnown = false;
        continue;
      }
      weightBytes += bytes * (weight.shape as number[]).reduce((a, b) => a * b, 1);
    }
    if (shardsKnown && weightsKnown && weightBytes !== shardBytes) {
      problems.push(
        `${where} weights take ${weightBytes} bytes but its shards ${
          (group.paths as string[]).map((p) => `"${p}"`).join(", ")
        } hold ${shardBytes}: upload the shards that belong to this model.json`,
      );
    }
  }
  return problems;
}
