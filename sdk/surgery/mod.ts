/**
 * Model surgery: changing a pretrained network while keeping its weights.
 * Every operation returns a new model built from fresh layers with copies of
 * the weights (except {@linkcode freeze}, which changes the model in place),
 * so the checkpoint can be disposed independently.
 *
 * - Run it on other input sizes: {@linkcode convolutionalize} (a score map),
 *   {@linkcode resizeInput} (one prediction per image at any size).
 * - Run it on another number of channels: {@linkcode adaptInputChannels}.
 * - Cut it at a layer: {@linkcode cutAt} (with {@linkcode checkCutPoint}
 *   saying why a layer is not a cut point).
 * - Give it a new classifier: {@linkcode attachHead}.
 * - Freeze its early layers for `model.fit`: {@linkcode freeze}.
 * - Run it faster for inference, with its BatchNormalization layers folded
 *   into the convolutions before them: {@linkcode foldForInference} (an
 *   inference pass, not a new model).
 *
 * All of them read a single-input, single-output LayersModel (Sequential or
 * functional) as a graph of layers and rebuild it layer by layer; shared and
 * nested layers are refused with a clear error.
 *
 * @example A score map from a small convnet at twice its input size
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { convolutionalize } from "./mod.ts";
 * const net = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, strides: 2 }),
 *   tf.layers.flatten(),
 *   tf.layers.dense({ units: 3, activation: "softmax" }),
 * ] });
 * const scores = convolutionalize(net).predict(tf.zeros([1, 16, 16, 1])) as tf.Tensor;
 * assertEquals(scores.shape, [1, 5, 5, 3]);
 * ```
 *
 * @module
 */
export * from "./convolutionalize.ts";
export * from "./adapt_channels.ts";
export * from "./cut.ts";
export * from "./head.ts";
export * from "./freeze.ts";
export * from "./fold.ts";
export type { LayersModel } from "../_tfjs_types.ts";
export type { Architecture, HeadKind, LayerInfo, Shape } from "../../core/arch/types.ts";
