/**
 * The `model.json` of a TensorFlow.js LayersModel, and the checks the registry
 * runs on it before a version is published: its structure, the bytes of its
 * shards, the nesting depth of every JSON document (so that no stored
 * document can overflow a recursive serializer later) and, through a
 * {@linkcode LayerBuilder} that `sdk/model_layers.ts` backs with TensorFlow.js,
 * the layer classes and every weight's shape. This module imports no tfjs, so
 * the registry and the SDK's client read it without loading a backend.
 *
 * @module
 */

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

/**
 * The deepest nesting of objects and arrays accepted in any JSON document the
 * registry stores (a card, a model.json, its `userDefinedMetadata`). Keras
 * topologies need about 10 levels, plus about 4 per nested model.
 */
export const MAX_JSON_DEPTH = 64;

/** The largest `userDefinedMetadata` accepted, serialized: tfjs warns above the same size. */
export const MAX_USER_METADATA_BYTES = 1024 * 1024;

/** One step into a JSON document: an object key or an array index. */
export type JsonPathSegment = string | number;

/**
 * Finds where a JSON text first nests more than `limit` objects and arrays,
 * without parsing it and without recursion, so that a text nested 200,000
 * levels deep costs one pass and no stack. The text need not be valid JSON:
 * only brackets outside strings count.
 *
 * @param text the JSON text
 * @param limit the most levels allowed
 * @returns the keys and indices down to the first container past the limit, or null when within it
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { jsonTextTooDeep } from "./model_json.ts";
 * assertEquals(jsonTextTooDeep('{"a":[{"b":1}]}', 2), ["a", 0]);
 * assertEquals(jsonTextTooDeep('{"a":[{"b":1}]}', 3), null);
 * ```
 */
export function jsonTextTooDeep(text: string, limit: number): JsonPathSegment[] | null {
  // One entry per open container: its current key (objects) or index (arrays).
  const path: JsonPathSegment[] = [];
  const isArray: boolean[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22) { // '"': skip the string, remembering it when it is a key
      let j = i + 1;
      while (j < text.length) {
        const c = text.charCodeAt(j);
        if (c === 0x5c) j += 2;
        else if (c === 0x22) break;
        else j++;
      }
      if (expectKey && path.length > 0) {
        path[path.length - 1] = text.slice(i + 1, Math.min(j, i + 1 + 64));
        expectKey = false;
      }
      i = j;
    } else if (ch === 0x7b || ch === 0x5b) { // '{' or '['
      if (path.length >= limit) return path.slice();
      path.push(ch === 0x5b ? 0 : "");
      isArray.push(ch === 0x5b);
      expectKey = ch === 0x7b;
    } else if (ch === 0x7d || ch === 0x5d) { // '}' or ']'
      path.pop();
      isArray.pop();
      expectKey = false;
    } else if (ch === 0x2c && path.length > 0) { // ','
      if (isArray[isArray.length - 1]) path[path.length - 1] = (path.at(-1) as number) + 1;
      else expectKey = true;
    }
  }
  return null;
}

/**
 * Finds where a parsed JSON value first nests more than `limit` objects and
 * arrays, walking it with an explicit stack (no recursion).
 *
 * @param value the value
 * @param limit the most levels allowed
 * @returns the keys and indices down to the first container past the limit, or null when within it
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { jsonValueTooDeep } from "./model_json.ts";
 * assertEquals(jsonValueTooDeep({ a: [{ b: 1 }] }, 2), ["a", 0]);
 * ```
 */
export function jsonValueTooDeep(value: unknown, limit: number): JsonPathSegment[] | null {
  interface Step {
    value: unknown;
    depth: number;
    key: JsonPathSegment;
    parent: Step | null;
  }
  const stack: Step[] = [{ value, depth: 0, key: "", parent: null }];
  while (stack.length > 0) {
    const step = stack.pop()!;
    if (typeof step.value !== "object" || step.value === null) continue;
    if (step.depth >= limit) {
      const path: JsonPathSegment[] = [];
      for (let s: Step | null = step; s?.parent; s = s.parent) path.push(s.key);
      return path.reverse();
    }
    const entries: [JsonPathSegment, unknown][] = Array.isArray(step.value)
      ? step.value.map((v, i) => [i, v])
      : Object.entries(step.value);
    for (const [key, v] of entries) {
      if (typeof v === "object" && v !== null) {
        stack.push({ value: v, depth: step.depth + 1, key, parent: step });
      }
    }
  }
  return null;
}

/**
 * Writes a path from {@linkcode jsonTextTooDeep} for a message: the first
 * segments, then `…`.
 *
 * @param root what the path starts from, e.g. `card`
 * @param path the keys and indices
 * @param shown how many segments to show
 * @returns e.g. `card.a.b[0]…`
 */
export function formatJsonPath(root: string, path: readonly JsonPathSegment[], shown = 6): string {
  let out = root;
  for (const seg of path.slice(0, shown)) {
    out += typeof seg === "number"
      ? `[${seg}]`
      : /^[A-Za-z_$][\w$]*$/.test(seg)
      ? `${out === "" ? "" : "."}${seg}`
      : `[${JSON.stringify(seg)}]`;
  }
  return path.length > shown ? `${out}…` : out;
}

/** The `class_name`s of a whole Keras model (as opposed to one layer) in a topology. */
export const CONTAINER_CLASSES: ReadonlySet<string> = new Set([
  "Sequential",
  "Model",
  "Functional",
]);
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

/**
 * What checking the layers takes from a TensorFlow.js runtime;
 * `sdk/model_layers.ts` exports the one backed by tfjs (`tfjsLayers`).
 */
export interface LayerBuilder {
  /** The layer class names the runtime can build. */
  knownClasses(): ReadonlySet<string>;
  /**
   * Builds the layers from the topology and checks each weight's shape.
   *
   * @param json a model.json whose structure {@linkcode checkModelJson} accepts
   * @returns the problems, each naming the layer and both shapes; empty when every weight fits
   */
  checkWeights(json: ModelJson): string[];
}

/** Walks a Keras model config, nested models included, reporting layers tfjs cannot build. */
function checkTopology(
  model: unknown,
  where: string,
  known: ReadonlySet<string> | undefined,
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
    } else if (known !== undefined && !known.has(layer.class_name)) {
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

function nestingProblem(deep: readonly JsonPathSegment[]): string {
  const what = deep[0] === "userDefinedMetadata" ? "Its userDefinedMetadata" : "model.json";
  return `${what} nests more than ${MAX_JSON_DEPTH} levels of objects and arrays (at ${
    formatJsonPath("", deep)
  }): flatten it to at most ${MAX_JSON_DEPTH} levels`;
}

/**
 * Checks the nesting of a model.json's text before it is parsed (parsing a
 * deep text builds all of it in memory first): the same limit and message as
 * {@linkcode checkModelJson}, in one pass without recursion.
 *
 * @param text the model.json text
 * @returns the problem, or null when it nests at most {@linkcode MAX_JSON_DEPTH} levels
 *
 * @example
 * ```ts
 * import { assertStringIncludes } from "@std/assert";
 * import { checkModelJsonNesting } from "./model_json.ts";
 * const deep = '{"userDefinedMetadata":' + "[".repeat(200_000) + "]".repeat(200_000) + "}";
 * assertStringIncludes(checkModelJsonNesting(deep) ?? "", "Its userDefinedMetadata nests more than 64 levels");
 * ```
 */
export function checkModelJsonNesting(text: string): string | null {
  const deep = jsonTextTooDeep(text, MAX_JSON_DEPTH);
  return deep ? nestingProblem(deep) : null;
}

/**
 * Checks a `model.json` before it is published: a Keras LayersModel topology
 * whose layer classes TensorFlow.js knows, and a weights manifest whose shard
 * files are all present with exactly the bytes the weights need.
 *
 * @param json the parsed model.json
 * @param files the version's other files: path → size in bytes
 * @param layers checks the layer classes and builds the layers to check every
 *   weight's shape (`tfjsLayers` of `sdk/model_layers.ts`); without it, only the
 *   document and its shards are checked
 * @returns the problems, each a sentence saying what to fix; empty when valid
 *
 * @example A model.json whose shard is missing
 * ```ts
 * import { assertEquals } from "@std/assert";
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
 * assertEquals(checkModelJson(json, new Map([["group1-shard1of1.bin", 12]])), []);
 * assertEquals(checkModelJson(json, new Map()).length, 1);
 * ```
 */
export function checkModelJson(
  json: unknown,
  files: ReadonlyMap<string, number>,
  layers?: LayerBuilder,
): string[] {
  const problems: string[] = [];
  if (!isRecord(json)) {
    return [
      `model.json must be a JSON object, got ${Array.isArray(json) ? "an array" : typeof json}`,
    ];
  }
  // First, so that nothing below (nor anything that stores or serializes the
  // document later) recurses into a deep document.
  const deep = jsonValueTooDeep(json, MAX_JSON_DEPTH);
  if (deep) return [nestingProblem(deep)];
  if (json.userDefinedMetadata !== undefined) {
    const bytes = new TextEncoder().encode(JSON.stringify(json.userDefinedMetadata)).byteLength;
    if (bytes > MAX_USER_METADATA_BYTES) {
      problems.push(
        `Its userDefinedMetadata takes ${bytes} bytes, over the limit of ${MAX_USER_METADATA_BYTES}: keep large data in a file of its own`,
      );
    }
  }
  if (!("modelTopology" in json)) {
    problems.push(`model.json has no "modelTopology": export the model with model.save()`);
  } else {
    let topology = json.modelTopology;
    if (isRecord(topology) && "model_config" in topology) topology = topology.model_config;
    checkTopology(topology, "modelTopology", layers?.knownClasses(), problems);
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
  // Building the layers is worth it only once the document itself is sound.
  if (problems.length === 0 && layers) {
    problems.push(...layers.checkWeights(json as unknown as ModelJson));
  }
  return problems;
}
