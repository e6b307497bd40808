// Spatial arithmetic shared by analyze() and checkInput(): the output size of
// each layer along one axis, in the same formulas tfjs uses, so that what the
// analysis predicts is what tfjs computes.
import type { LayerInfo } from "./types.ts";

/** Keras layers whose window slides over the map (kernel, stride, padding, dilation). */
export const WINDOW_LAYERS: ReadonlySet<string> = new Set([
  "Conv2D",
  "DepthwiseConv2D",
  "SeparableConv2D",
  "MaxPooling2D",
  "AveragePooling2D",
]);

/** Layers that turn a spatial map into a vector. */
export const COLLAPSE_LAYERS: ReadonlySet<string> = new Set([
  "Flatten",
  "GlobalAveragePooling2D",
  "GlobalMaxPooling2D",
]);

/** Layers that map each position to itself: shape, receptive field and jump pass through. */
export const POINTWISE_LAYERS: ReadonlySet<string> = new Set([
  "Activation",
  "ReLU",
  "LeakyReLU",
  "PReLU",
  "ELU",
  "ThresholdedReLU",
  "Softmax",
  "Dropout",
  "SpatialDropout1D",
  "SpatialDropout2D",
  "GaussianNoise",
  "GaussianDropout",
  "AlphaDropout",
  "BatchNormalization",
  "LayerNormalization",
  "Masking",
]);

/** Elementwise merges: inputs of one shape (or broadcastable), output of that shape. */
export const ELEMENTWISE_MERGES: ReadonlySet<string> = new Set([
  "Add",
  "Subtract",
  "Multiply",
  "Average",
  "Maximum",
  "Minimum",
]);

/** Nested models that appear as one layer of an outer model. */
export const CONTAINERS: ReadonlySet<string> = new Set(["Sequential", "Model", "Functional"]);

/** Kernel extent once dilated: `k + (k - 1)(d - 1)`. */
export function dilatedKernel(kernel: number, dilation: number): number {
  return kernel + (kernel - 1) * (dilation - 1);
}

/** Output length of a conv or pooling window along one axis (tfjs `convOutputLength`). */
export function windowLength(
  length: number,
  kernel: number,
  stride: number,
  dilation: number,
  padding: "same" | "valid",
): number {
  const covered = padding === "same" ? length : length - dilatedKernel(kernel, dilation) + 1;
  return Math.floor((covered + stride - 1) / stride);
}

/** Output length of a transposed conv along one axis (tfjs `deconvLength`). */
export function deconvLength(
  length: number,
  kernel: number,
  stride: number,
  padding: "same" | "valid",
): number {
  return length * stride + (padding === "valid" ? Math.max(kernel - stride, 0) : 0);
}

/**
 * Input pixels a window layer drops at the far border along one axis: the
 * remainder that no stride step reaches ('valid'), or the padding tfjs adds
 * to reach a multiple of the stride ('same', as a negative number).
 */
export function windowRemainder(
  length: number,
  kernel: number,
  stride: number,
  dilation: number,
  padding: "same" | "valid",
): number {
  if (padding === "same") return -((stride - (length % stride)) % stride);
  const span = length - dilatedKernel(kernel, dilation);
  return span < 0 ? 0 : span % stride;
}

/** A spatial size `[h, w]`, or `null` where the tensor is not a map. */
export type Size2 = [number, number] | null;

/** What {@linkcode replay} computes for one layer. */
export interface ReplayedLayer {
  /** Spatial size of the layer's input (its first inbound), `null` when not a map. */
  input: Size2;
  /** Spatial size of its output, `null` when not a map. */
  output: Size2;
}

/**
 * Replays the spatial arithmetic of an analyzed model at another input size.
 * Sizes below 1 are kept (as 0 or negative) so callers see where it breaks.
 *
 * @param layers the analyzed layers, in topological order
 * @param input the input size `[h, w]`
 * @param keep only these layers (a cut model); all when omitted
 * @returns every replayed layer's input and output size, by name
 */
export function replay(
  layers: readonly LayerInfo[],
  input: [number, number],
  keep?: ReadonlySet<string>,
): Map<string, ReplayedLayer> {
  const out = new Map<string, ReplayedLayer>();
  for (const layer of layers) {
    if (keep && !keep.has(layer.name)) continue;
    const first = layer.inbound[0];
    const inSize: Size2 = first === undefined ? null : out.get(first)?.output ?? null;
    let size: Size2 = null;
    if (layer.className === "InputLayer") {
      size = layer.outputShape.length === 4 ? input : null;
    } else if (inSize !== null) {
      size = step(layer, inSize);
    }
    out.set(layer.name, { input: inSize, output: size });
  }
  return out;
}

function step(layer: LayerInfo, [h, w]: [number, number]): Size2 {
  const { className: cls, kernel, stride, dilation, padding, pads } = layer;
  if (WINDOW_LAYERS.has(cls) && kernel && stride && dilation && padding) {
    return [
      windowLength(h, kernel[0], stride[0], dilation[0], padding),
      windowLength(w, kernel[1], stride[1], dilation[1], padding),
    ];
  }
  if (cls === "Conv2DTranspose" && kernel && stride && padding) {
    return [
      deconvLength(h, kernel[0], stride[0], padding),
      deconvLength(w, kernel[1], stride[1], padding),
    ];
  }
  if (pads) return [h + pads[0] + pads[1], w + pads[2] + pads[3]];
  if (cls === "UpSampling2D" && stride) {
    return [Math.round(h / stride[0]), Math.round(w / stride[1])];
  }
  if (layer.inner) {
    const inner = layer.inner;
    const last = inner.layers.at(-1);
    return last ? replay(inner.layers, [h, w]).get(last.name)?.output ?? null : null;
  }
  if (COLLAPSE_LAYERS.has(cls) || layer.outputShape.length !== 4) return null;
  if (cls === "Reshape" || cls === "Permute") return null;
  return [h, w];
}
