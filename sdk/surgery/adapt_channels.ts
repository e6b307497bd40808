/**
 * Input-channel adaptation: reuse an RGB checkpoint on grayscale or
 * multispectral images by rewriting the first convolution's kernel, as timm's
 * `adapt_input_conv` does.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  applyLayer,
  cloneLayer,
  copyWeights,
  layerGraph,
  type LayerNode,
  rebuild,
  tensorKey,
} from "./_rebuild.ts";
import type { LayersModel } from "../_tfjs_types.ts";

/** The first layer with weights on the path from the input: the convolution to adapt. */
function firstConv(graph: ReturnType<typeof layerGraph>, modelName: string): LayerNode {
  let from = graph.inputName;
  for (;;) {
    const readers = graph.layers.filter((n) => n.inbound.some((ref) => ref.layer === from));
    if (readers.length !== 1) {
      throw new TypeError(
        `Cannot adapt the input channels of model "${modelName}": "${from}" feeds ${readers.length} layers before the first convolution: only a single path is supported`,
      );
    }
    const node = readers[0]!;
    if (node.layer.weights.length === 0) {
      from = node.name;
      continue;
    }
    if (node.className !== "Conv2D") {
      throw new TypeError(
        `Cannot adapt the input channels of model "${modelName}": the first layer with weights, "${node.name}", is a ${node.className}, not a Conv2D`,
      );
    }
    return node;
  }
}

/**
 * The kernel `[kh, kw, cin, out]` adapted to `channels` inputs: summed over the
 * input-channel axis for 1 channel, else repeated `ceil(channels / cin)` times,
 * truncated to `channels` and scaled by `cin / channels` so that an image
 * whose channels repeat the original ones gives the same activations.
 */
function adaptKernel(kernel: tf.Tensor, channels: number): tf.Tensor {
  const cin = kernel.shape[2]!;
  if (channels === cin) return kernel.clone();
  if (channels === 1) return kernel.sum(2, true);
  const repeats = Math.ceil(channels / cin);
  return tf.tile(kernel, [1, 1, repeats, 1])
    .slice([0, 0, 0, 0], [-1, -1, channels, -1])
    .mul(cin / channels);
}

/**
 * A copy of the model taking `channels` input channels, its first Conv2D's
 * kernel adapted the way timm does it: for 1 channel the kernels are summed
 * over the input-channel axis (a grayscale image `x` gives exactly what the
 * RGB image `(x, x, x)` gave); for N channels the RGB kernels are repeated
 * `ceil(N / 3)` times, truncated to N and rescaled by `3 / N`, which keeps the
 * activations' scale. Every other layer is rebuilt with a copy of its weights.
 *
 * @param model a single-input, single-output image model whose first layer
 *   with weights is a Conv2D (weightless layers such as ZeroPadding2D may come
 *   before it)
 * @param channels the new number of input channels, a positive integer
 * @returns a new model taking `[null, height, width, channels]`
 * @throws {RangeError} when `channels` is not a positive integer
 * @throws {TypeError} when the first layer with weights is not a Conv2D, or
 *   the input feeds several layers before it
 *
 * @example A grayscale copy of an RGB convnet
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { adaptInputChannels } from "./adapt_channels.ts";
 * const rgb = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 2, kernelSize: 3 }),
 * ] });
 * const gray = adaptInputChannels(rgb, 1);
 * assertEquals(gray.inputs[0]?.shape, [null, 8, 8, 1]);
 * ```
 */
export function adaptInputChannels(model: LayersModel, channels: number): LayersModel {
  if (!Number.isInteger(channels) || channels < 1) {
    throw new RangeError(
      `Cannot adapt the input channels of model "${model.name}" to "${channels}": use a positive integer`,
    );
  }
  const graph = layerGraph(model, "adapt the input channels of");
  const conv = firstConv(graph, model.name);
  const inputShape = [...graph.inputShape.slice(0, -1), channels];
  const input = tf.input({ shape: inputShape, name: graph.inputName });
  const tensors = rebuild(
    graph,
    new Map([[tensorKey({ layer: graph.inputName, tensorIndex: 0 }), input]]),
    {
      replace: (node, inputs) => {
        if (node !== conv) return undefined;
        const clone = cloneLayer(node.layer);
        const out = applyLayer(clone, inputs);
        copyWeights(
          node.layer,
          clone,
          ([kernel, ...rest]) => [adaptKernel(kernel!, channels), ...rest],
        );
        return out;
      },
    },
  );
  return tf.model({
    inputs: input,
    outputs: tensors.get(tensorKey(graph.output))!,
    name: `${model.name}_${channels}ch`,
  });
}
