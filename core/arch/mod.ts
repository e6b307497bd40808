/**
 * What a checkpoint's architecture allows: {@linkcode analyze} gives each
 * layer's shapes, parameters, strides and receptive field, the head kind and
 * the cut points; {@linkcode checkInput} says whether an input size (or a cut)
 * works and what to do when it does not.
 *
 * @example Check an input size against a small convnet
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { analyze, checkInput } from "./mod.ts";
 * const net = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 5 }),
 *   tf.layers.maxPooling2d({ poolSize: 2 }),
 * ] });
 * assertEquals(checkInput(analyze(net), { height: 64, width: 64, channels: 1 }).ok, true);
 * ```
 *
 * @module
 */
export * from "./analyze.ts";
export * from "./check_input.ts";
export type * from "./types.ts";
export type {
  ModelJson,
  WeightQuantization,
  WeightsManifestEntry,
  WeightsManifestGroup,
} from "../model_json.ts";
