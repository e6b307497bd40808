/**
 * Changing a pretrained network while keeping its weights: run it on other
 * input sizes ({@linkcode convolutionalize}, {@linkcode resizeInput}), on
 * another number of channels ({@linkcode adaptInputChannels}), cut it for its
 * CNN codes ({@linkcode codeExtractor}), or freeze its early layers
 * ({@linkcode freeze}).
 *
 * @example A score map from a small convnet at twice its input size
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { convolutionalize } from "./surgery.ts";
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
export * from "./freeze.ts";
export {
  checkCutPoint,
  type CodeExtractor,
  codeExtractor,
  type CodePooling,
} from "./features/extract.ts";
export type { LayersModel } from "./_tfjs_types.ts";
export type { Architecture, HeadKind, LayerInfo, Shape } from "./arch/types.ts";
