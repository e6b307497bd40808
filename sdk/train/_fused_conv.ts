/**
 * A Conv2D layer's convolution, bias and ReLU as one `FusedConv2D` in the
 * training forward. Under a gradient tape, tfjs's fused convolution falls
 * back to three kernels (`Conv2D`, then `Add` for the bias and `Relu`), each
 * a pass over the layer's output; here the kernel runs once, and its
 * gradient, registered for the `FusedConv2D` kernel, is tfjs's fused
 * convolution's own: `dz = dy · step(y)` for a ReLU, then the input and
 * filter gradients of the convolution and the bias's sum of `dz`. Each
 * input's gradient is computed only when the step needs it (never the
 * image's, under the first layer).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { RELU_GRAD_KERNEL } from "../devices/kernels.ts";

/** What a fused convolution needs of a Conv2D layer. */
export interface FusableConv {
  /** The layer's `[kh, kw, in, out]` kernel variable. */
  kernel: tf.Tensor4D;
  /** Its bias variable, if it has one. */
  bias: tf.Tensor1D | undefined;
  /** Strides along height and width. */
  strides: [number, number];
  /** Its padding. */
  pad: "same" | "valid";
  /** Its activation: only these two have a fused gradient. */
  activation: "relu" | "linear";
}

/**
 * A Conv2D layer whose bias and activation a training step can fuse into
 * its convolution: channels last, no dilation, a linear or ReLU activation,
 * float32 weights, over a rank-4 float32 input. Null for any other layer.
 *
 * @param layer a layer of the model
 * @param input what the layer is applied to
 * @returns the convolution's parts, or null
 */
export function fusableConv(layer: tf.layers.Layer, input: unknown): FusableConv | null {
  if (layer.getClassName() !== "Conv2D" || !(input instanceof tf.Tensor)) return null;
  if (input.rank !== 4 || input.dtype !== "float32") return null;
  const config = layer.getConfig() as {
    strides?: number | number[];
    padding?: string;
    dilationRate?: number | number[];
    activation?: string;
    useBias?: boolean;
    dataFormat?: string;
  };
  const pair = (v: number | number[] | undefined): [number, number] | null =>
    typeof v === "number" ? [v, v] : Array.isArray(v) && v.length === 2 ? [v[0]!, v[1]!] : null;
  const strides = pair(config.strides ?? 1), dilation = pair(config.dilationRate ?? 1);
  const { padding, activation, dataFormat } = config;
  if (strides === null || dilation === null || dilation[0] !== 1 || dilation[1] !== 1) return null;
  if ((padding !== "same" && padding !== "valid") || dataFormat !== "channelsLast") return null;
  if (activation !== "relu" && activation !== "linear") return null;
  const members = layer as unknown as {
    kernel?: { read(): tf.Tensor } | null;
    bias?: { read(): tf.Tensor } | null;
  };
  const kernel = members.kernel?.read();
  const bias = config.useBias ? members.bias?.read() : undefined;
  if (kernel?.rank !== 4 || kernel.dtype !== "float32") return null;
  if (config.useBias && (bias?.rank !== 1 || bias.dtype !== "float32")) return null;
  return {
    kernel: kernel as tf.Tensor4D,
    bias: bias as tf.Tensor1D | undefined,
    strides,
    pad: padding,
    activation,
  };
}

/** The gradient this module registers for `FusedConv2D`, once. */
let registered: tf.GradFunc | undefined;

/**
 * Registers the gradient of the `FusedConv2D` kernel run on its own (tfjs
 * registers none: its fused op carries a gradient of its own, which this
 * does not touch). Linear and ReLU activations, no dilation, no PReLU
 * weights; anything else throws when its gradient is asked for.
 */
function registerFusedConvGradient(): void {
  if (registered !== undefined && tf.getGradient("FusedConv2D")?.gradFunc === registered) return;
  const gradFunc: tf.GradFunc = (dy, saved, attrs) => {
    const [x, filter, y] = saved as tf.Tensor4D[];
    const { strides, pad, dataFormat, dimRoundingMode, dilations, activation } = attrs as {
      strides: [number, number];
      pad: "same" | "valid";
      dataFormat: string;
      dimRoundingMode?: string;
      dilations: number | [number, number];
      activation: string;
    };
    const ones = typeof dilations === "number"
      ? dilations === 1
      : dilations[0] === 1 && dilations[1] === 1;
    if (!ones || (activation !== "linear" && activation !== "relu")) {
      throw new Error(
        `Cannot compute the gradient of FusedConv2D with activation "${activation}" and dilations ${
          JSON.stringify(dilations)
        }: only linear or relu, without dilation`,
      );
    }
    const g = dy as tf.Tensor4D;
    // Every input's gradient starts from dz: computed once, here.
    const dz = activation === "linear"
      ? g
      : tf.getKernel(RELU_GRAD_KERNEL, tf.getBackend()) !== undefined && g.dtype === "float32"
      ? tf.engine().runKernel(RELU_GRAD_KERNEL, { x: y!, dy: g }) as tf.Tensor4D
      : tf.mul(g, tf.step(y!)) as tf.Tensor4D;
    const shared = { strides, pad, dataFormat, dimRoundingMode };
    return {
      x: () =>
        tf.engine().runKernel("Conv2DBackpropInput", { dy: dz, filter: filter! }, {
          ...shared,
          inputShape: x!.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
      filter: () =>
        tf.engine().runKernel("Conv2DBackpropFilter", { x: x!, dy: dz }, {
          ...shared,
          filterShape: filter!.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
      bias: () => tf.sum(dz, [0, 1, 2]),
    };
  };
  tf.registerGradient({
    kernelName: "FusedConv2D",
    inputsToSave: ["x", "filter"],
    outputsToSave: [true],
    gradFunc,
  });
  registered = gradFunc;
}

/**
 * `act(x ⊛ kernel + bias)` of a fusable Conv2D layer as one `FusedConv2D`,
 * recorded on the gradient tape with the gradient above. The values are
 * the layer's up to float rounding (where the backend adds the bias first).
 *
 * @param conv the layer's parts, from {@linkcode fusableConv}
 * @param x its NHWC float32 input
 * @returns its output
 */
export function fusedConv(conv: FusableConv, x: tf.Tensor4D): tf.Tensor4D {
  registerFusedConvGradient();
  const { kernel, bias, strides, pad, activation } = conv;
  const inputs: tf.NamedTensorMap = bias === undefined
    ? { x, filter: kernel }
    : { x, filter: kernel, bias };
  return tf.engine().runKernel("FusedConv2D", inputs, {
    strides,
    pad,
    dataFormat: "NHWC",
    dilations: [1, 1],
    dimRoundingMode: undefined,
    activation,
  } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
