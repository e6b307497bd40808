/**
 * Inference with BatchNormalization folded into the convolution before it.
 *
 * In inference mode a BatchNormalization layer is a per-channel affine map
 * with fixed coefficients, `y = s·(x − μ) + β` with `s = γ / √(σ² + ε)`. After
 * a convolution `x = W ⊛ h + b` it can be folded into the convolution's
 * weights: `W' = W·s` (per output channel) and `b' = s·(b − μ) + β`. A ReLU
 * (or ReLU6) right after it becomes the convolution's fused activation. A
 * MobileNetV2 block then runs one fused convolution per layer, where the
 * layers would run a convolution, the normalization, a ReLU and a clip: four
 * passes over each activation instead of one.
 *
 * {@linkcode foldForInference} does this for every `Conv2D` and
 * `DepthwiseConv2D` followed by a BatchNormalization over the channel axis
 * that nothing else reads. It also runs a `Conv2D` (folded or not, with a
 * linear, ReLU or ReLU6 activation) and the 2×2, stride-2, unpadded
 * `MaxPooling2D` that alone reads it as one kernel where the active backend
 * has it (`ZooConv2DMaxPool` on wasm: LeNet's first layer pools as it
 * convolves, without storing its output), as the two ops elsewhere. Every
 * other layer runs as the model runs it. The results equal
 * `model.predict`'s up to float rounding.
 *
 * @example Fold a convolution and its normalization
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assert } from "@std/assert";
 * import { foldForInference } from "./fold.ts";
 * const net = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, useBias: false }),
 *   tf.layers.batchNormalization(),
 *   tf.layers.reLU({ maxValue: 6 }),
 * ] });
 * const folded = foldForInference(net);
 * const x = tf.randomNormal([2, 8, 8, 3]);
 * const diff = tf.sub(folded.predict(x), net.predict(x) as tf.Tensor).abs().max();
 * assert((await diff.data())[0]! < 1e-5);
 * folded.dispose();
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { CONV_MAX_POOL_KERNEL } from "../devices/kernels.ts";
import { type Inbound, layerGraph, type LayerNode, pools2x2, tensorKey } from "./_rebuild.ts";
import type { LayersModel, Tensor } from "../_tfjs_types.ts";

/** A model's inference pass with its BatchNormalization layers folded (what {@linkcode foldForInference} returns). */
export interface FoldedModel {
  /**
   * The model's output for `x` in inference mode (a new tensor the caller
   * disposes); `x` is one batch, as `model.predict` takes it.
   */
  predict(x: Tensor): Tensor;
  /** The convolutions that absorbed the layers after them, with those layers' names. */
  readonly folded: readonly { conv: string; into: readonly string[] }[];
  /** The convolutions run with the 2×2 max pooling after them as one op, with the pooling's name. */
  readonly pooled: readonly { conv: string; pool: string }[];
  /** Frees the folded weights (the model's own weights are not touched). */
  dispose(): void;
}

/** A fused activation the convolutions take. */
type Activation = "linear" | "relu" | "relu6";

/** One folded convolution: its weights after folding, and how to call it. */
interface FoldedConv {
  depthwise: boolean;
  filter: tf.Tensor4D;
  /** Absent for a convolution without a bias (only one not folded). */
  bias: tf.Tensor1D | undefined;
  strides: [number, number];
  pad: "same" | "valid";
  dilations: [number, number];
  activation: Activation;
  /** The tensor the folded chain's last layer outputs. */
  output: string;
  /** The 2×2 max pooling run with it as one op, when one is. */
  pooledBy?: string;
}

type Config = Record<string, unknown>;

const pair = (v: unknown): [number, number] =>
  Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)];

/** The activation a layer applies by itself (a ReLU layer or an Activation layer), if it is one we fuse. */
function standaloneActivation(node: LayerNode): Activation | null {
  const config = node.layer.getConfig() as Config;
  if (node.className === "ReLU") {
    const max = config.maxValue ?? null;
    if (max === null) return "relu";
    return max === 6 ? "relu6" : null;
  }
  if (node.className === "Activation") {
    return config.activation === "relu" || config.activation === "relu6" ? config.activation : null;
  }
  return null;
}

/** The arguments of a fused convolution, as the folded ones are called. */
interface ConvArgs {
  x: tf.Tensor4D;
  filter: tf.Tensor4D;
  bias?: tf.Tensor1D;
  strides: [number, number];
  pad: "same" | "valid";
  dilations: [number, number];
  activation: Activation;
}

/**
 * A fused convolution followed by 2×2, stride-2, unpadded max pooling: one
 * kernel where the active backend has {@linkcode CONV_MAX_POOL_KERNEL}, the
 * two ops elsewhere (the same values).
 */
function convMaxPool(args: ConvArgs): tf.Tensor4D {
  if (tf.getKernel(CONV_MAX_POOL_KERNEL, tf.getBackend()) === undefined) {
    return tf.maxPool(tf.fused.conv2d(args), 2, 2, "valid");
  }
  const inputs: tf.NamedTensorMap = { x: args.x, filter: args.filter };
  if (args.bias !== undefined) inputs.bias = args.bias;
  const { strides, pad, dilations, activation } = args;
  return tf.engine().runKernel(CONV_MAX_POOL_KERNEL, inputs, {
    strides,
    pad,
    dilations,
    dataFormat: "NHWC",
    activation,
  }) as tf.Tensor4D;
}

/**
 * The BatchNormalization layer's weights when it normalizes over the last
 * axis with one value per channel: `γ` and `β` (absent without a scale or
 * an offset), the moving mean and variance, and `ε`; null otherwise.
 */
function batchNormWeights(node: LayerNode, channels: number): {
  gamma: tf.Tensor | undefined;
  beta: tf.Tensor | undefined;
  mean: tf.Tensor;
  variance: tf.Tensor;
  epsilon: number;
} | null {
  if (node.className !== "BatchNormalization") return null;
  const config = node.layer.getConfig() as Config;
  const axis = config.axis;
  const last = axis === -1 || axis === 3 || (Array.isArray(axis) && axis.length === 1 &&
    (axis[0] === -1 || axis[0] === 3));
  if (!last) return null;
  const weights = node.layer.getWeights();
  let i = 0;
  const gamma = config.scale !== false ? weights[i++] : undefined;
  const beta = config.center !== false ? weights[i++] : undefined;
  const mean = weights[i++], variance = weights[i++];
  if (mean === undefined || variance === undefined || mean.size !== channels) return null;
  return { gamma, beta, mean, variance, epsilon: Number(config.epsilon ?? 1e-3) };
}

/**
 * Runs `model` in inference mode with every BatchNormalization that follows
 * a `Conv2D` or `DepthwiseConv2D` (channels last, linear activation) folded
 * into it, and a ReLU or ReLU6 after it fused into the convolution. The
 * folded weights are copies taken now: later changes to the model's weights
 * do not reach them (fold again after training).
 *
 * @param model a single-input, single-output LayersModel (Sequential or functional)
 * @returns its inference pass, and which layers were folded
 * @throws {TypeError} for shared layers, nested models or several inputs or outputs
 */
export function foldForInference(model: LayersModel): FoldedModel {
  const graph = layerGraph(model, "fold");
  // Who reads each tensor (the model's output counts as a reader).
  const readers = new Map<string, number>([[tensorKey(graph.output), 1]]);
  for (const node of graph.layers) {
    for (const ref of node.inbound) {
      readers.set(tensorKey(ref), (readers.get(tensorKey(ref)) ?? 0) + 1);
    }
  }
  const byInput = new Map<string, LayerNode>();
  for (const node of graph.layers) {
    if (node.inbound.length === 1) byInput.set(tensorKey(node.inbound[0]!), node);
  }
  /** The one layer reading `name`'s output, when nothing else reads it. */
  const soleReader = (name: string): LayerNode | undefined => {
    const key = tensorKey({ layer: name, tensorIndex: 0 });
    return readers.get(key) === 1 ? byInput.get(key) : undefined;
  };

  const convs = new Map<string, FoldedConv>();
  const skipped = new Set<string>();
  const folded: { conv: string; into: string[] }[] = [];
  const pooled: { conv: string; pool: string }[] = [];
  try {
    for (const node of graph.layers) {
      const depthwise = node.className === "DepthwiseConv2D";
      if (!depthwise && node.className !== "Conv2D") continue;
      const config = node.layer.getConfig() as Config;
      if (
        (config.dataFormat ?? "channelsLast") !== "channelsLast" ||
        (config.activation ?? "linear") !== "linear" ||
        (config.padding !== "same" && config.padding !== "valid")
      ) continue;
      const bn = soleReader(node.name);
      const weights = node.layer.getWeights();
      const kernel = weights[0]!;
      const [, , cin, last] = kernel.shape as [number, number, number, number];
      const channels = depthwise ? cin * last : last;
      const bnw = bn === undefined ? null : batchNormWeights(bn, channels);
      if (bn === undefined || bnw === null) continue;
      const act = soleReader(bn.name);
      const activation = act === undefined ? null : standaloneActivation(act);
      // With tensor ops, so that no backend is read synchronously (webgpu cannot be):
      // s = γ / √(σ² + ε), W' = W·s per output channel, b' = s·(b − μ) + β.
      const { filter, bias } = tf.tidy(() => {
        const s = tf.div(bnw.gamma ?? 1, tf.sqrt(tf.add(bnw.variance, bnw.epsilon)));
        const b = weights[1] ?? tf.zeros([channels]);
        return {
          // The output channel is the last axis (a depthwise kernel's channel × multiplier, flattened).
          filter: tf.mul(kernel, s.reshape(depthwise ? [cin, last] : [last])) as tf.Tensor4D,
          bias: tf.add(tf.mul(s, tf.sub(b, bnw.mean)), bnw.beta ?? 0) as tf.Tensor1D,
        };
      });
      convs.set(node.name, {
        depthwise,
        filter,
        bias,
        strides: pair(config.strides ?? 1),
        pad: config.padding,
        dilations: pair(config.dilationRate ?? 1),
        activation: activation ?? "linear",
        output: activation === null ? bn.name : act!.name,
      });
      skipped.add(bn.name);
      if (activation !== null) skipped.add(act!.name);
      folded.push({
        conv: node.name,
        into: activation === null ? [bn.name] : [bn.name, act!.name],
      });
    }
    // A Conv2D (folded or with a fused activation of its own) whose output only a 2×2, stride-2,
    // unpadded max pooling reads: the two run as one op.
    for (const node of graph.layers) {
      if (node.className !== "Conv2D") continue;
      let conv = convs.get(node.name);
      const config = node.layer.getConfig() as Config;
      const activation = config.activation ?? "linear";
      if (
        conv === undefined &&
        ((config.dataFormat ?? "channelsLast") !== "channelsLast" ||
          (activation !== "linear" && activation !== "relu" && activation !== "relu6") ||
          (config.padding !== "same" && config.padding !== "valid"))
      ) continue;
      const pool = soleReader(conv?.output ?? node.name);
      if (pool === undefined || !pools2x2(pool)) continue;
      if (conv === undefined) {
        const [kernel, bias] = node.layer.getWeights();
        conv = {
          depthwise: false,
          filter: tf.clone(kernel!) as tf.Tensor4D,
          bias: bias === undefined ? undefined : tf.clone(bias) as tf.Tensor1D,
          strides: pair(config.strides ?? 1),
          pad: config.padding as "same" | "valid",
          dilations: pair(config.dilationRate ?? 1),
          activation: activation as Activation,
          output: node.name,
        };
        convs.set(node.name, conv);
      }
      conv.pooledBy = pool.name;
      conv.output = pool.name;
      skipped.add(pool.name);
      pooled.push({ conv: node.name, pool: pool.name });
    }
  } catch (e) {
    for (const c of convs.values()) tf.dispose([c.filter, ...(c.bias ? [c.bias] : [])]);
    throw e;
  }

  const input: Inbound = { layer: graph.inputName, tensorIndex: 0 };
  let disposed = false;
  return {
    folded,
    pooled,
    predict(x: Tensor): Tensor {
      if (disposed) throw new Error("This folded model was disposed: fold the model again");
      return tf.tidy(() => {
        const tensors = new Map<string, tf.Tensor>([[tensorKey(input), x]]);
        for (const node of graph.layers) {
          if (skipped.has(node.name)) continue;
          const inputs = node.inbound.map((ref) => tensors.get(tensorKey(ref))!);
          const conv = convs.get(node.name);
          if (conv !== undefined) {
            const args: ConvArgs = {
              x: inputs[0] as tf.Tensor4D,
              filter: conv.filter,
              strides: conv.strides,
              pad: conv.pad,
              dilations: conv.dilations,
              activation: conv.activation,
            };
            if (conv.bias !== undefined) args.bias = conv.bias;
            const y = conv.pooledBy !== undefined
              ? convMaxPool(args)
              : conv.depthwise
              ? tf.fused.depthwiseConv2d(args)
              : tf.fused.conv2d(args);
            tensors.set(tensorKey({ layer: conv.output, tensorIndex: 0 }), y);
            continue;
          }
          const out = node.layer.apply(inputs.length === 1 ? inputs[0]! : inputs, {
            training: false,
          });
          (Array.isArray(out) ? out : [out]).forEach((t, i) =>
            tensors.set(tensorKey({ layer: node.name, tensorIndex: i }), t as tf.Tensor)
          );
        }
        return tensors.get(tensorKey(graph.output))!;
      });
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      for (const c of convs.values()) tf.dispose([c.filter, ...(c.bias ? [c.bias] : [])]);
    },
  };
}
