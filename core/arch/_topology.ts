/**
 * Reading a Keras topology (a `tf.LayersModel`'s `toJSON`, a model.json, its
 * `modelTopology` or a bare `{ class_name, config }`) as a graph of raw layer
 * configs in a stable topological order: the input of every walk of
 * `analyze`.
 *
 * @module
 */
import { CONTAINERS } from "./_geometry.ts";
import type { LayersModelLike } from "./types.ts";

/** A layer's or a model's config, as the topology stores it. */
export type Config = Record<string, unknown>;

/** One layer of the topology: its config and the layers it reads. */
export interface RawLayer {
  name: string;
  className: string;
  config: Config;
  inbound: string[];
  /** The `{ class_name, config }` of a nested model. */
  nested?: Config;
}

/** A topology read as a graph of raw layers. */
export interface Graph {
  name: string;
  className: string;
  layers: RawLayer[];
  inputs: string[];
  outputs: string[];
}

/** Whether `v` is a plain object (not null, not an array). */
export function isObject(v: unknown): v is Config {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isLayersModel(v: unknown): v is LayersModelLike {
  return isObject(v) && typeof v.toJSON === "function" && Array.isArray(v.layers);
}

/** Finds the `{ class_name, config }` in whatever form the model came in. */
export function toKerasModel(model: unknown): Config {
  let m: unknown = isLayersModel(model) ? model.toJSON(null, false) : model;
  if (isObject(m) && "modelTopology" in m) m = m.modelTopology;
  if (isObject(m) && "model_config" in m) m = m.model_config;
  if (!isObject(m) || typeof m.class_name !== "string" || !CONTAINERS.has(m.class_name)) {
    throw new TypeError(
      `Cannot analyze the model: expected a Keras topology with class_name "Sequential", "Model" or "Functional", got ${
        isObject(m) ? `class_name "${String(m.class_name)}"` : typeof m
      }`,
    );
  }
  return m;
}

function layerRef(ref: unknown): string | undefined {
  return Array.isArray(ref) && typeof ref[0] === "string" ? ref[0] : undefined;
}

/** `input_layers`/`output_layers`: `[[name, 0, 0], …]`, or one `[name, 0, 0]`. */
function layerRefs(refs: unknown): string[] {
  if (!Array.isArray(refs)) return [];
  if (typeof refs[0] === "string") return [refs[0]];
  return refs.map(layerRef).filter((n): n is string => n !== undefined);
}

/** The graph of a `{ class_name, config }`; oddities are pushed to `warnings`. */
export function toGraph(model: Config, warnings: string[]): Graph {
  const className = String(model.class_name);
  const config = model.config;
  const layerList = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
  const name = isObject(config) && typeof config.name === "string" ? config.name : "model";
  if (!Array.isArray(layerList)) {
    throw new TypeError(`Cannot analyze "${name}": its config has no "layers" array`);
  }
  const layers: RawLayer[] = [];
  for (const [i, raw] of layerList.entries()) {
    if (!isObject(raw) || typeof raw.class_name !== "string" || !isObject(raw.config)) {
      throw new TypeError(`Cannot analyze "${name}": layer ${i} has no class_name and config`);
    }
    const cfg = raw.config;
    const layerName = typeof raw.name === "string"
      ? raw.name
      : typeof cfg.name === "string"
      ? cfg.name
      : `layer_${i}`;
    const layer: RawLayer = {
      name: layerName,
      className: raw.class_name,
      config: cfg,
      inbound: [],
    };
    if (CONTAINERS.has(raw.class_name)) layer.nested = raw;
    layers.push(layer);
  }
  if (className === "Sequential") {
    const first = layers[0];
    if (first && first.className !== "InputLayer") {
      const shape = first.config.batch_input_shape ?? first.config.batch_shape ??
        (Array.isArray(first.config.input_shape) ? [null, ...first.config.input_shape] : undefined);
      if (!Array.isArray(shape)) {
        throw new TypeError(
          `Cannot analyze "${name}": its first layer "${first.name}" has no batch_input_shape`,
        );
      }
      layers.unshift({
        name: `${first.name}_input`,
        className: "InputLayer",
        config: { batch_input_shape: shape },
        inbound: [],
      });
    }
    for (let i = 1; i < layers.length; i++) {
      const prev = layers[i - 1];
      const cur = layers[i];
      if (prev && cur) cur.inbound = [prev.name];
    }
    const last = layers.at(-1);
    return {
      name,
      className,
      layers,
      inputs: layers[0] ? [layers[0].name] : [],
      outputs: last ? [last.name] : [],
    };
  }
  for (const [i, layer] of layers.entries()) {
    const nodes = (layerList[i] as Config).inbound_nodes;
    if (!Array.isArray(nodes) || nodes.length === 0) continue;
    if (nodes.length > 1) {
      warnings.push(
        `Layer "${layer.name}" is called ${nodes.length} times: only its first call is analyzed`,
      );
    }
    const node = nodes[0];
    if (!Array.isArray(node)) {
      warnings.push(`Layer "${layer.name}" has inbound nodes in an unknown format: ignored`);
      continue;
    }
    layer.inbound = node.map(layerRef).filter((n): n is string => n !== undefined);
  }
  const cfg = config as Config;
  const inputs = layerRefs(cfg.input_layers);
  const outputs = layerRefs(cfg.output_layers);
  return {
    name,
    className,
    layers,
    inputs: inputs.length > 0
      ? inputs
      : layers.filter((l) => l.className === "InputLayer").map((l) => l.name),
    outputs: outputs.length > 0 ? outputs : layers.slice(-1).map((l) => l.name),
  };
}

/** Kahn's algorithm, ties broken by config order, so the result is stable. */
export function topoSort(graph: Graph): RawLayer[] {
  const byName = new Map(graph.layers.map((l) => [l.name, l]));
  const indegree = new Map<string, number>();
  const consumers = new Map<string, string[]>();
  for (const l of graph.layers) {
    const known = l.inbound.filter((n) => byName.has(n));
    indegree.set(l.name, known.length);
    for (const n of known) consumers.set(n, [...(consumers.get(n) ?? []), l.name]);
  }
  const order = new Map(graph.layers.map((l, i) => [l.name, i]));
  const ready = graph.layers.filter((l) => indegree.get(l.name) === 0);
  const sorted: RawLayer[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
    const next = ready.shift() as RawLayer;
    sorted.push(next);
    for (const c of consumers.get(next.name) ?? []) {
      const d = (indegree.get(c) ?? 0) - 1;
      indegree.set(c, d);
      if (d === 0) ready.push(byName.get(c) as RawLayer);
    }
  }
  if (sorted.length !== graph.layers.length) {
    throw new TypeError(`Cannot analyze "${graph.name}": its layers form a cycle`);
  }
  return sorted;
}
