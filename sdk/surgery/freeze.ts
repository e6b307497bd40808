/**
 * Freezing the early layers of a pretrained network before training it with
 * `model.fit`: the layers up to a chosen one keep their pretrained weights and
 * the rest train.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { closestString } from "@std/text";
import type { LayersModel } from "../_tfjs_types.ts";

/** Options of {@linkcode freeze}. */
export interface FreezeOptions {
  /**
   * The last layer to freeze: it and every layer before it (in `model.layers`
   * order, which is topological) stop training; every layer after it trains.
   * A cut point from `analyze(model).cutPoints` freezes whole blocks.
   */
  until: string;
}

/** What {@linkcode freeze} did. */
export interface FrozenLayers {
  /** The layers now frozen, in order. */
  frozen: string[];
  /** The layers now trainable, in order. */
  trainable: string[];
}

type Layer = tf.layers.Layer;
type Call = Layer["call"];

/** The prototype `call` of a BatchNormalization layer pinned to inference mode. */
const pinned = new WeakMap<Layer, Call>();

/**
 * A frozen BatchNormalization layer must normalize with the moving statistics
 * it was pretrained with: tfjs runs it in training mode under `model.fit`,
 * where it would normalize with each batch's statistics and overwrite the
 * moving ones, although none of its weights is trainable.
 */
function pinInference(layer: Layer): void {
  if (pinned.has(layer)) return;
  const call = layer.call;
  pinned.set(layer, call);
  layer.call = function (this: Layer, inputs, kwargs) {
    return call.call(this, inputs, { ...kwargs, training: false });
  };
}

function unpin(layer: Layer): void {
  const call = pinned.get(layer);
  if (call === undefined) return;
  layer.call = call;
  pinned.delete(layer);
}

/**
 * Freezes a model's layers up to and including `until` and makes the layers
 * after it trainable, in place. Frozen BatchNormalization layers run in
 * inference mode (their moving statistics stay as pretrained), as Keras does.
 * Call it before `model.compile`: tfjs collects the trainable weights when it
 * compiles. Calling it again with another layer moves the boundary.
 *
 * @param model the model to freeze, changed in place
 * @param options `until`: the last frozen layer
 * @returns the names of the frozen and of the trainable layers
 * @throws {RangeError} when the model has no layer `until`, naming the closest layer name
 *
 * @example Freeze a small convnet up to its first pooling layer
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { freeze } from "./freeze.ts";
 * const net = tf.sequential({ layers: [
 *   tf.layers.conv2d({ name: "conv1", inputShape: [8, 8, 1], filters: 2, kernelSize: 3 }),
 *   tf.layers.maxPooling2d({ name: "pool1", poolSize: 2 }),
 *   tf.layers.flatten({ name: "flat" }),
 *   tf.layers.dense({ name: "logits", units: 3 }),
 * ] });
 * const { frozen } = freeze(net, { until: "pool1" });
 * assertEquals(frozen, ["conv1", "pool1"]);
 * assertEquals(net.trainableWeights.map((w) => w.name), ["logits/kernel", "logits/bias"]);
 * ```
 */
export function freeze(model: LayersModel, options: FreezeOptions): FrozenLayers {
  const names = model.layers.map((l) => l.name);
  const at = names.indexOf(options.until);
  if (at === -1) {
    throw new RangeError(
      `Cannot freeze "${model.name}" until "${options.until}": there is no such layer: did you mean "${
        closestString(options.until, names)
      }"?`,
    );
  }
  model.layers.forEach((layer, i) => {
    const frozen = i <= at;
    layer.trainable = !frozen;
    if (layer.getClassName() !== "BatchNormalization") return;
    if (frozen) pinInference(layer);
    else unpin(layer);
  });
  return { frozen: names.slice(0, at + 1), trainable: names.slice(at + 1) };
}
