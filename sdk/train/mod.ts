/**
 * Training strategies that fine-tune a pretrained network:
 *
 * - {@linkcode fineTuneNetwork}: partial and full fine-tuning with a new head,
 *   discriminative learning rates, a head-only warm-up, early stopping and
 *   resumable per-epoch checkpoints
 * - {@linkcode attachHead}: cut a checkpoint at a layer and attach a new classifier
 * - {@linkcode writeCheckpoint} and {@linkcode readCheckpoint}: the checkpoints
 * - {@linkcode accumulatedGradients}: gradients of a large batch, one micro-batch at a time
 *
 * @example Attach a 2-class head to a tiny net
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { attachHead } from "./mod.ts";
 * const net = tf.sequential({
 *   layers: [
 *     tf.layers.dense({ name: "features", inputShape: [4], units: 3 }),
 *     tf.layers.dense({ name: "logits", units: 10, activation: "softmax" }),
 *   ],
 * });
 * const { model } = attachHead(net, { numClasses: 2 });
 * assertEquals(model.outputs[0]!.shape, [null, 2]);
 * ```
 *
 * @module
 */
export * from "./network.ts";
export * from "../surgery/head.ts";
export * from "./checkpoint.ts";
export * from "./accumulate.ts";
export * from "./plan.ts";
export type * from "../types.ts";
export type { DeviceName } from "../devices/types.ts";
export type * from "../data/types.ts";
export type {
  LayersModel,
  NamedTensorMap,
  Optimizer,
  Scalar,
  Tensor,
  Tensor1D,
  Tensor4D,
  Variable,
} from "../_tfjs_types.ts";
