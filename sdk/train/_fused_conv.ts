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
 * Where a 2×2 stride-2 unpadded max pooling alone reads such a convolution
 * and the active backend has the kernels (wasm), the two run as one
 * `ZooConv2DMaxPoolPositions`, which returns the pooled values and where
 * each maximum was; its gradient puts `dy · step(y)` (for a ReLU) back at
 * those positions (what `MaxPoolGrad`, then the ReLU's gradient, compute
 * from the convolution's output, which this never stores), and takes the
 * convolution's gradients from there, and the bias's from the pooled
 * gradient.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  CONV_MAX_POOL_FILTER_GRAD_KERNEL,
  CONV_MAX_POOL_POSITIONS_KERNEL,
  MAX_POOL_SCATTER_KERNEL,
  RELU_GRAD_KERNEL,
} from "../devices/kernels.ts";

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

/**
 * The gradient of the convolution `x ⊛ filter` (geometry in `attrs`) from
 * `dz()`, the gradient of its biased output: each input's only when asked
 * for.
 */
function convInputGrads(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  dz: () => tf.Tensor4D,
  attrs: ConvAttrs,
): { x: () => tf.Tensor; filter: () => tf.Tensor } {
  const { strides, pad, dataFormat, dimRoundingMode } = attrs;
  const shared = { strides, pad, dataFormat, dimRoundingMode };
  return {
    x: () =>
      tf.engine().runKernel("Conv2DBackpropInput", { dy: dz(), filter }, {
        ...shared,
        inputShape: x.shape,
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
    filter: () =>
      tf.engine().runKernel("Conv2DBackpropFilter", { x, dy: dz() }, {
        ...shared,
        filterShape: filter.shape,
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
  };
}

/** The attributes of a `FusedConv2D` call, as its gradients read them. */
interface ConvAttrs {
  strides: [number, number];
  pad: "same" | "valid";
  dataFormat: string;
  dimRoundingMode?: string;
  dilations: number | [number, number];
  activation: string;
}

/** Throws unless the call's activation and dilations are ones whose gradient is fused here. */
function checkFusedGrad(kernel: string, attrs: ConvAttrs): void {
  const { dilations, activation } = attrs;
  const ones = typeof dilations === "number"
    ? dilations === 1
    : dilations[0] === 1 && dilations[1] === 1;
  if (!ones || (activation !== "linear" && activation !== "relu")) {
    throw new Error(
      `Cannot compute the gradient of ${kernel} with activation "${activation}" and dilations ${
        JSON.stringify(dilations)
      }: only linear or relu, without dilation`,
    );
  }
}

/** `dy · step(y)`: the gradient through a ReLU from its output `y`. */
function reluGrad(y: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  return tf.getKernel(RELU_GRAD_KERNEL, tf.getBackend()) !== undefined && dy.dtype === "float32"
    ? tf.engine().runKernel(RELU_GRAD_KERNEL, { x: y, dy }) as tf.Tensor4D
    : tf.mul(dy, tf.step(y)) as tf.Tensor4D;
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
    const a = attrs as unknown as ConvAttrs;
    checkFusedGrad("FusedConv2D", a);
    const g = dy as tf.Tensor4D;
    // Every input's gradient starts from dz: computed once, here.
    const dz = a.activation === "linear" ? g : reluGrad(y!, g);
    return { ...convInputGrads(x!, filter!, () => dz, a), bias: () => tf.sum(dz, [0, 1, 2]) };
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
  return runConv("FusedConv2D", conv, x) as tf.Tensor4D;
}

/** Runs `kernel` (`FusedConv2D`'s inputs and attributes) for a fusable Conv2D layer on `x`. */
function runConv(kernel: string, conv: FusableConv, x: tf.Tensor4D): tf.Tensor | tf.Tensor[] {
  const { kernel: filter, bias, strides, pad, activation } = conv;
  const inputs: tf.NamedTensorMap = bias === undefined ? { x, filter } : { x, filter, bias };
  return tf.engine().runKernel(kernel, inputs, {
    strides,
    pad,
    dataFormat: "NHWC",
    dilations: [1, 1],
    dimRoundingMode: undefined,
    activation,
  } as unknown as tf.NamedAttrMap);
}

/** The gradient this module registers for `ZooConv2DMaxPoolPositions`, once. */
let registeredPooled: tf.GradFunc | undefined;

/**
 * Registers the gradient of `ZooConv2DMaxPoolPositions`: the pooled
 * gradient through the activation (`dy · step(y)` for a ReLU: at each
 * window's maximum, the convolution's output is the pooled value), put back
 * at the maxima by `ZooMaxPoolScatter`, is the convolution's `dz`, from
 * which the input's and the filter's gradients are taken; for a one-channel
 * convolution at stride 1, the filter's comes from the pooled gradient by
 * `ZooConv2DMaxPoolFilterGrad` instead (a first layer never makes `dz`).
 * The bias's sums the pooled gradient (the same values, the zeros left
 * out). The positions output has no gradient.
 */
function registerPooledGradient(): void {
  const current = tf.getGradient(CONV_MAX_POOL_POSITIONS_KERNEL)?.gradFunc;
  if (registeredPooled !== undefined && current === registeredPooled) return;
  const gradFunc: tf.GradFunc = (dys, saved, attrs) => {
    const [x, filter, y, positions] = saved as tf.Tensor4D[];
    const a = attrs as unknown as ConvAttrs;
    checkFusedGrad(CONV_MAX_POOL_POSITIONS_KERNEL, a);
    const g = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor4D;
    const dzp = a.activation === "linear" ? g : reluGrad(y!, g);
    const convShape = tf.backend_util.computeConv2DInfo(
      x!.shape,
      filter!.shape,
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode as "floor" | undefined,
    ).outShape;
    const pooled = { dy: dzp, y: y!, indices: positions! };
    const scatter = () =>
      tf.engine().runKernel(MAX_POOL_SCATTER_KERNEL, pooled, {
        inputShape: convShape,
      } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
    const { strides, pad, dataFormat, dimRoundingMode } = a;
    const [sh, sw] = typeof strides === "number" ? [strides, strides] : strides;
    // A one-channel, stride-1 convolution's filter gradient (a first layer's) comes from the
    // pooled gradient, and the convolution's output gradient is made only if the input's
    // gradient is asked for (never for an image). Other convolutions make it once, here, for
    // both: each input's gradient runs in a scope of its own, which frees what it made.
    const fromPooled = x!.shape[3] === 1 && sh === 1 && sw === 1 && filter!.shape[3] <= 16;
    const shared = fromPooled ? undefined : scatter();
    const dz = () => shared ?? scatter();
    const grads = convInputGrads(x!, filter!, dz, a);
    return {
      x: grads.x,
      filter: fromPooled
        ? () =>
          tf.engine().runKernel(CONV_MAX_POOL_FILTER_GRAD_KERNEL, { x: x!, ...pooled }, {
            strides,
            pad,
            dataFormat,
            dimRoundingMode,
            filterShape: filter!.shape,
          } as unknown as tf.NamedAttrMap) as tf.Tensor
        : grads.filter,
      bias: () => tf.sum(dzp, [0, 1, 2]),
    };
  };
  tf.registerGradient({
    kernelName: CONV_MAX_POOL_POSITIONS_KERNEL,
    inputsToSave: ["x", "filter"],
    outputsToSave: [true, true],
    gradFunc,
  });
  registeredPooled = gradFunc;
}

/**
 * Whether the active backend runs a fusable convolution and the 2×2 max
 * pooling after it as one op in training (wasm does).
 *
 * @returns whether the three kernels are registered
 */
export function poolsInTraining(): boolean {
  const backend = tf.getBackend();
  return [CONV_MAX_POOL_POSITIONS_KERNEL, MAX_POOL_SCATTER_KERNEL, CONV_MAX_POOL_FILTER_GRAD_KERNEL]
    .every((kernel) => tf.getKernel(kernel, backend) !== undefined);
}

/**
 * `maxPool(act(x ⊛ kernel + bias), 2, 2, "valid")` of a fusable Conv2D layer
 * and the pooling after it as one `ZooConv2DMaxPoolPositions`, recorded on
 * the gradient tape with the gradient above. The values are those of
 * {@linkcode fusedConv} then `tf.maxPool` up to float rounding; from the
 * same values, the gradients are theirs, but for the order in which the
 * bias's sums its terms. Only where {@linkcode poolsInTraining}.
 *
 * @param conv the layer's parts, from {@linkcode fusableConv}
 * @param x its NHWC float32 input
 * @returns the pooled output
 */
export function fusedConvMaxPool(conv: FusableConv, x: tf.Tensor4D): tf.Tensor4D {
  registerPooledGradient();
  // The positions are an intermediate like the rest, left to the enclosing
  // scope; the tape keeps its own copy for the gradient.
  const [y] = runConv(CONV_MAX_POOL_POSITIONS_KERNEL, conv, x) as tf.Tensor4D[];
  return y!;
}
