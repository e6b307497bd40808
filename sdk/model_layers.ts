/**
 * The model.json checks that need TensorFlow.js: which layer classes it
 * knows, and building the layers from a topology as `tf.loadLayersModel`
 * does to check every weight's shape. `core/model_json.ts` runs them through
 * {@linkcode tfjsLayers}.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  CONTAINER_CLASSES,
  type LayerBuilder,
  type ModelJson,
  type WeightsManifestGroup,
} from "../core/model_json.ts";

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The {@linkcode LayerBuilder} of the loaded TensorFlow.js: its registered
 * layer classes (custom ones included once registered) and
 * {@linkcode checkLayerWeights}.
 */
export const tfjsLayers: LayerBuilder = {
  knownClasses: () => new Set(Object.keys(tf.serialization.SerializationMap.getMap().classNameMap)),
  checkWeights: (json) => checkLayerWeights(json),
};

/** tfjs's `toCamelCase` (tfjs-layers 4.22 `generic_utils`), which it does not export. */
function toCamelCase(identifier: string): string {
  if (identifier.length <= 1 || !identifier.includes("_")) return identifier;
  return identifier.replace(/[_]+(\w|$)/g, (_m, p1: string) => p1.toUpperCase());
}

/**
 * tfjs's `convertPythonicToTs` (tfjs-layers 4.22 `serialization_utils`), which
 * `tf.loadLayersModel` applies to a topology before deserializing it and which
 * tfjs does not export. Its recursion is bounded by the nesting limit that
 * `checkModelJson` checks first.
 */
function pythonicToTs(config: unknown, key?: string): unknown {
  if (config === null || typeof config === "number" || typeof config === "boolean") return config;
  if (typeof config === "string") return toCamelCase(config);
  if (Array.isArray(config)) {
    const isNameList = key === "inboundNodes" || key === "outputLayers" || key === "inputLayers";
    return config.map((item, i) =>
      isNameList && i === 0 && typeof item === "string" ? item : pythonicToTs(item, key)
    );
  }
  if (typeof config !== "object") return config;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (k === "name" && typeof v === "string") out[k] = v;
    else {
      const tsKey = toCamelCase(k);
      out[tsKey] = pythonicToTs(v, tsKey);
    }
  }
  return out;
}

type FromConfig = (
  cls: unknown,
  config: tf.serialization.ConfigDict,
  customObjects: tf.serialization.ConfigDict,
  fastWeightInit: boolean,
) => tf.LayersModel;

/** Names the first layer whose config tfjs refuses on its own, to point a build failure at it. */
function firstBadLayer(topology: Record<string, unknown>): string | undefined {
  const classes = tf.serialization.SerializationMap.getMap().classNameMap;
  const config = topology.config;
  const layers = Array.isArray(config) ? config : isRecord(config) ? config.layers : undefined;
  for (const layer of Array.isArray(layers) ? layers : []) {
    if (!isRecord(layer) || typeof layer.className !== "string" || !isRecord(layer.config)) {
      continue;
    }
    const name = `"${String(layer.config.name)}" (${layer.className})`;
    if (CONTAINER_CLASSES.has(layer.className)) {
      const inner = firstBadLayer(layer);
      if (inner !== undefined) return inner;
      continue;
    }
    const entry = classes[layer.className];
    if (!entry) return name;
    try {
      // Constructing without building allocates no weights.
      (entry[1] as unknown as FromConfig)(
        entry[0],
        layer.config as tf.serialization.ConfigDict,
        {},
        true,
      );
    } catch {
      return name;
    }
  }
  return undefined;
}

/**
 * Builds the model's layers from its topology the way `tf.loadLayersModel`
 * does (its fast initialization: zero-filled weights, no random initializers,
 * no weights read) and checks every weight of the weights manifest against
 * the shape its layer expects, matching names as tfjs's `loadWeights` does.
 * A checkpoint that passes loads with the stock `tf.loadLayersModel`.
 *
 * The built weights are allocated for the duration of the check (zero-filled
 * memory the operating system hands out lazily on the CPU backend) and
 * released before it returns; so is anything a failed build left behind.
 *
 * @param json a model.json whose structure {@linkcode checkModelJson} accepts
 * @returns the problems, each naming the layer and both shapes; empty when every weight fits
 *
 * @example A Dense layer of 5 units with a kernel saved for 4
 * ```ts
 * import { assertStringIncludes } from "@std/assert";
 * import { checkLayerWeights } from "./model_layers.ts";
 * const problems = checkLayerWeights({
 *   modelTopology: {
 *     class_name: "Sequential",
 *     config: {
 *       name: "s",
 *       layers: [{ class_name: "Dense", config: { name: "d", units: 5, batch_input_shape: [null, 16] } }],
 *     },
 *   },
 *   weightsManifest: [{
 *     paths: ["w.bin"],
 *     weights: [
 *       { name: "d/kernel", shape: [16, 4], dtype: "float32" },
 *       { name: "d/bias", shape: [5], dtype: "float32" },
 *     ],
 *   }],
 * });
 * assertStringIncludes(
 *   problems[0] ?? "",
 *   'Layer "d" (Dense) expects weight "d/kernel" of shape [16,5], but the weights manifest gives [16,4]',
 * );
 * ```
 */
export function checkLayerWeights(json: ModelJson): string[] {
  let topology = json.modelTopology as Record<string, unknown>;
  if (isRecord(topology.model_config)) topology = topology.model_config;
  const ts = pythonicToTs(topology) as Record<string, unknown>;
  const className = String(ts.className);
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (!entry) {
    return [`modelTopology has class_name "${className}", which TensorFlow.js does not know`];
  }
  const variablesBefore = new Set(Object.keys(tf.engine().registeredVariables));
  let model: tf.LayersModel | undefined;
  try {
    return tf.tidy(() => {
      try {
        model = (entry[1] as unknown as FromConfig)(
          entry[0],
          ts.config as tf.serialization.ConfigDict,
          {},
          true,
        );
      } catch (e) {
        // fromConfig took the layers out of the config it was given: convert again.
        const layer = firstBadLayer(pythonicToTs(topology) as Record<string, unknown>);
        return [
          `TensorFlow.js cannot build the model from its topology${
            layer === undefined ? "" : ` at layer ${layer}`
          }: ${
            (e instanceof Error ? e.message : String(e)).split("\n")[0]
          }: fix the layer's config in modelTopology`,
        ];
      }
      return compareWeights(model, json.weightsManifest);
    });
  } finally {
    model?.dispose();
    // A build that failed half way leaves the variables it made registered.
    const registered = tf.engine().registeredVariables;
    for (const name of Object.keys(registered)) {
      if (!variablesBefore.has(name)) registered[name]?.dispose();
    }
  }
}

function shapeText(shape: readonly (number | null)[]): string {
  return `[${shape.join(",")}]`;
}

/** The weights manifest against the built model's variables, by tfjs's `loadWeights` rules. */
function compareWeights(model: tf.LayersModel, manifest: WeightsManifestGroup[]): string[] {
  const specs = manifest.flatMap((g) => g.weights).filter((w) =>
    (w as { group?: string }).group !== "optimizer"
  );
  // Keras 3 names weights "<layer>/<index>"; tfjs matches them by position.
  const lastPart = specs[0]?.name.split("/").at(-1) ?? "";
  const keras3 = specs.length > 0 && !Number.isNaN(parseInt(lastPart, 10));
  const expected = new Map<string, { layer: tf.layers.Layer; shape: number[] }>();
  for (const layer of model.layers) {
    for (const [index, w] of layer.weights.entries()) {
      const name = keras3 ? `${w.name.split("/").slice(0, -1).join("/")}/${index}` : w.originalName;
      expected.set(name, { layer, shape: w.shape as number[] });
    }
  }
  const problems: string[] = [];
  for (const spec of specs) {
    let name = spec.name;
    if (!expected.has(name)) {
      // As tfjs: TF 2.2 put a cell's name between the layer's and the weight's.
      const parts = name.split("/");
      name = [...parts.slice(0, -2), parts.at(-1)].join("/");
    }
    const want = expected.get(name);
    if (!want) {
      problems.push(
        `Weight "${spec.name}" of the weights manifest belongs to no layer of modelTopology: remove it or save the model.json and its weights together`,
      );
      continue;
    }
    expected.delete(name);
    const same = want.shape.length === spec.shape.length &&
      want.shape.every((d, i) => d === spec.shape[i]);
    if (!same) {
      problems.push(
        `Layer "${want.layer.name}" (${want.layer.getClassName()}) expects weight "${spec.name}" of shape ${
          shapeText(want.shape)
        }, but the weights manifest gives ${
          shapeText(spec.shape)
        }: the weights were saved for another configuration of this layer`,
      );
    }
  }
  for (const [name, { layer, shape }] of expected) {
    problems.push(
      `Layer "${layer.name}" (${layer.getClassName()}) needs weight "${name}" of shape ${
        shapeText(shape)
      }, which the weights manifest does not list`,
    );
  }
  return problems;
}
