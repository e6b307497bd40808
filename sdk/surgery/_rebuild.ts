/**
 * The graph rebuild every surgery stands on (private to the SDK): read a
 * LayersModel (Sequential or functional) as a graph of layers, and rebuild it
 * layer by layer on a new input with fresh layer objects that get the
 * original's weights. The training loop reads the same graph to find which
 * layers a frozen prefix feeds.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Where a layer takes one of its inputs from: a layer's name and which of its output tensors. */
export interface Inbound {
  layer: string;
  tensorIndex: number;
}

/** One layer of a model graph, in topological order. */
export interface LayerNode {
  name: string;
  className: string;
  layer: tf.layers.Layer;
  inbound: Inbound[];
}

/**
 * Whether a layer is 2×2, stride-2, unpadded max pooling over channels-last
 * data: the pooling a convolution before it can run with as one op.
 *
 * @param node the layer's node
 * @returns whether it is
 */
export function pools2x2(node: LayerNode): boolean {
  if (node.className !== "MaxPooling2D") return false;
  const config = node.layer.getConfig() as Record<string, unknown>;
  const pair = (v: unknown): [number, number] =>
    Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)];
  const [ph, pw] = pair(config.poolSize ?? 2);
  const [sh, sw] = pair(config.strides ?? config.poolSize ?? 2);
  return ph === 2 && pw === 2 && sh === 2 && sw === 2 && (config.padding ?? "valid") === "valid" &&
    (config.dataFormat ?? "channelsLast") === "channelsLast";
}

/** A single-input, single-output model read as a graph of layers. */
export interface LayerGraph {
  /** Name of the InputLayer. */
  inputName: string;
  /** The model's input shape without the batch axis, e.g. `[224, 224, 3]`. */
  inputShape: (number | null)[];
  /** Every layer but the InputLayer, in topological order. */
  layers: LayerNode[];
  /** The layer and tensor the model outputs. */
  output: Inbound;
}

type NodeRef = [string, number, number, unknown?];

/** The graph of `model`, or a TypeError for shapes of model this SDK does not rebuild. */
export function layerGraph(model: tf.LayersModel, what: string): LayerGraph {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new TypeError(
      `Cannot ${what} model "${model.name}": it has ${model.inputs.length} inputs and ${model.outputs.length} outputs: only single-input, single-output models are supported`,
    );
  }
  const input = model.inputs[0]!;
  const inputShape = input.shape.slice(1);
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  const layers: LayerNode[] = [];
  if (model instanceof tf.Sequential) {
    let prev = input.sourceLayer.name;
    for (const layer of model.layers) {
      if (layer.getClassName() === "InputLayer") continue;
      layers.push({
        name: layer.name,
        className: layer.getClassName(),
        layer,
        inbound: [{ layer: prev, tensorIndex: 0 }],
      });
      prev = layer.name;
    }
    return {
      inputName: input.sourceLayer.name,
      inputShape,
      layers,
      output: { layer: prev, tensorIndex: 0 },
    };
  }
  const config = model.getConfig() as unknown as {
    layers: { name: string; className: string; inboundNodes: NodeRef[][] }[];
    outputLayers: NodeRef[];
  };
  for (const l of config.layers) {
    if (l.className === "InputLayer") continue;
    const layer = byName.get(l.name);
    if (layer === undefined) {
      throw new TypeError(`Cannot ${what} model "${model.name}": layer "${l.name}" is missing`);
    }
    if (l.inboundNodes.length !== 1) {
      throw new TypeError(
        `Cannot ${what} model "${model.name}": layer "${l.name}" is called ${l.inboundNodes.length} times: shared layers are not supported`,
      );
    }
    if (["Model", "Sequential", "Functional"].includes(l.className)) {
      throw new TypeError(
        `Cannot ${what} model "${model.name}": layer "${l.name}" is a nested model: flatten it first`,
      );
    }
    layers.push({
      name: l.name,
      className: l.className,
      layer,
      inbound: l.inboundNodes[0]!.map(([name, nodeIndex, tensorIndex]) => {
        if (nodeIndex !== 0) {
          throw new TypeError(
            `Cannot ${what} model "${model.name}": layer "${l.name}" reads node ${nodeIndex} of "${name}": shared layers are not supported`,
          );
        }
        return { layer: name, tensorIndex };
      }),
    });
  }
  const [outName, , outIndex] = config.outputLayers[0]!;
  return {
    inputName: input.sourceLayer.name,
    inputShape,
    layers,
    output: { layer: outName, tensorIndex: outIndex },
  };
}

/** The graph's layers by name. */
export function nodesByName(graph: LayerGraph): Map<string, LayerNode> {
  return new Map(graph.layers.map((n) => [n.name, n]));
}

/** Key of a tensor in the map `rebuild` fills. */
export function tensorKey(ref: Inbound): string {
  return `${ref.layer}:${ref.tensorIndex}`;
}

/**
 * A new, unbuilt layer of the same class and configuration as `layer`, with
 * `overrides` merged into its configuration.
 */
export function cloneLayer(
  layer: tf.layers.Layer,
  overrides: Record<string, unknown> = {},
): tf.layers.Layer {
  const className = layer.getClassName();
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (entry === undefined) {
    throw new TypeError(
      `Cannot rebuild layer "${layer.name}": class "${className}" is not registered with tf.serialization`,
    );
  }
  const config: Record<string, unknown> = { ...layer.getConfig(), ...overrides };
  // A Sequential model stores its input shape on its first layer; here the input comes from tf.input.
  delete config.batchInputShape;
  delete config.inputShape;
  const [cls, fromConfig] = entry;
  return fromConfig(cls, config as tf.serialization.ConfigDict) as tf.layers.Layer;
}

/**
 * Copies `from`'s weights into the built layer `to`, through `transform` when
 * given. The new variables take the values by reference count, so disposing
 * the original model leaves them intact.
 */
export function copyWeights(
  from: tf.layers.Layer,
  to: tf.layers.Layer,
  transform?: (weights: tf.Tensor[]) => tf.Tensor[],
): void {
  tf.tidy(() => {
    const weights = from.getWeights();
    to.setWeights(transform ? transform(weights) : weights);
  });
}

/** Applies `layer` to the symbolic tensors `inputs` (one, or a list for merge layers). */
export function applyLayer(
  layer: tf.layers.Layer,
  inputs: tf.SymbolicTensor[],
): tf.SymbolicTensor[] {
  const out = layer.apply(inputs.length === 1 ? inputs[0]! : inputs);
  return (Array.isArray(out) ? out : [out]) as tf.SymbolicTensor[];
}

/**
 * Rebuilds the layers of `graph` that `include` accepts, in order, on top of
 * `tensors` (which must already hold the input, keyed by `tensorKey`): each a
 * clone with the original's weights, or what `replace` builds instead.
 * Returns `tensors`, filled with every rebuilt layer's outputs.
 */
export function rebuild(
  graph: LayerGraph,
  tensors: Map<string, tf.SymbolicTensor>,
  options: {
    include?: (node: LayerNode) => boolean;
    replace?: (node: LayerNode, inputs: tf.SymbolicTensor[]) => tf.SymbolicTensor[] | undefined;
  } = {},
): Map<string, tf.SymbolicTensor> {
  for (const node of graph.layers) {
    if (options.include && !options.include(node)) continue;
    const inputs = node.inbound.map((ref) => {
      const t = tensors.get(tensorKey(ref));
      if (t === undefined) {
        throw new TypeError(
          `Cannot rebuild layer "${node.name}": its input "${ref.layer}" was not rebuilt`,
        );
      }
      return t;
    });
    let outputs = options.replace?.(node, inputs);
    if (outputs === undefined) {
      const clone = cloneLayer(node.layer);
      outputs = applyLayer(clone, inputs);
      copyWeights(node.layer, clone);
    }
    outputs.forEach((t, i) => tensors.set(tensorKey({ layer: node.name, tensorIndex: i }), t));
  }
  return tensors;
}

/** The shape, batch axis included, of the tensor `ref` names in the original model. */
export function shapeOf(graph: LayerGraph, ref: Inbound): (number | null)[] {
  if (ref.layer === graph.inputName) return [null, ...graph.inputShape];
  const node = graph.layers.find((n) => n.name === ref.layer);
  const shape = node?.layer.outputShape;
  if (shape === undefined) throw new TypeError(`Layer "${ref.layer}" has no known output shape`);
  return (Array.isArray(shape[0]) ? shape[ref.tensorIndex] : shape) as (number | null)[];
}
