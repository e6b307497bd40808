/**
 * The result types of architecture analysis: what {@linkcode analyze} reports
 * about a LayersModel and what {@linkcode checkInput} finds about an input.
 * Plain JSON values, so the registry stores them as computed.
 *
 * Shapes include the batch dimension as `null`, as tfjs's `layer.outputShape`
 * does: `[null, 7, 7, 1280]`. Spatial pairs are `[height, width]`.
 *
 * @module
 */

/** A tensor shape with the batch dimension first (`null`); `null` also marks an unknown size. */
export type Shape = (number | null)[];

/** How a classifier head reads the feature map, which decides the input sizes it accepts. */
export type HeadKind =
  /** Flatten then Dense: the Dense weights fix the feature map size, hence the input size. */
  | "flatten-dense"
  /** Global pooling (then Dense layers, if any): any input size that reaches the pooling works. */
  | "global-pool-dense"
  /** A fixed-window pooling, Flatten, then Dense (nsfwjs MobileNetV2: AveragePooling2D(7), Flatten, Dense). */
  | "pool-flatten-dense"
  /** The output is still a spatial map: runs on any size that fits the strides. */
  | "fully-convolutional"
  /** No spatial layers at all. */
  | "dense-only"
  /** None of the above. */
  | "other";

/** One layer of an {@linkcode Architecture}, in topological order. */
export interface LayerInfo {
  /** The layer's name, unique in the model. */
  name: string;
  /** The Keras class, e.g. `Conv2D`. */
  className: string;
  /** Names of the layers whose outputs this layer reads. */
  inbound: string[];
  /** The output shape, batch first. */
  outputShape: Shape;
  /** Number of weights (trainable and not), as tfjs's `countParams()`. */
  params: number;
  /** Weights updated by training: 0 when the layer is frozen; BatchNormalization's moving statistics never are. */
  trainableParams: number;
  /** Whether the layer's config marks it trainable. */
  trainable: boolean;
  /** Window size `[h, w]` of a conv or pooling layer; `null` for other layers. */
  kernel: [number, number] | null;
  /** Step `[h, w]` this layer multiplies the jump by (0.5 for a 2× upsampling); `null` when not spatial. */
  stride: [number, number] | null;
  /** Dilation `[h, w]` of a conv layer; `null` for other layers. */
  dilation: [number, number] | null;
  /** Padding mode of a conv or pooling layer; `null` for other layers. */
  padding: "same" | "valid" | null;
  /** Pixels added `[top, bottom, left, right]` by ZeroPadding2D, negative for Cropping2D; else `null`. */
  pads: [number, number, number, number] | null;
  /** Input pixels `[h, w]` that one output unit sees; `null` when not tracked (e.g. after a Reshape). */
  receptiveField: [number, number] | null;
  /** Input pixels `[h, w]` between neighbouring output units (cumulative stride); `null` once the map is collapsed. */
  jump: [number, number] | null;
  /** Floating-point operations for one example (2 × multiply-adds of conv/dense layers); `null` if a size is unknown. */
  flops: number | null;
  /** A nested Sequential or functional model's own analysis, at the input it receives here. */
  inner?: Architecture;
}

/** What {@linkcode analyze} reports about a model. */
export interface Architecture {
  /** The model's name from its config. */
  name: string;
  /** `Sequential`, `Model` or `Functional`. */
  className: string;
  /** The input shape analyzed (the model's own unless overridden), batch first. */
  inputShape: Shape;
  /** The input shape the model was built for, batch first. */
  nativeInputShape: Shape;
  /** The output shape at {@linkcode Architecture.inputShape}, batch first. */
  outputShape: Shape;
  /** Every layer, in topological order. */
  layers: LayerInfo[];
  /** Number of weights, as tfjs's `model.countParams()`. */
  totalParams: number;
  /** Weights training updates. */
  trainableParams: number;
  /** `totalParams - trainableParams`. */
  nonTrainableParams: number;
  /** Jump at the feature cut: input pixels between neighbouring feature-map units (largest of the two axes). */
  totalStride: number | null;
  /** Receptive field at the feature cut, in input pixels (largest of the two axes). */
  receptiveField: number | null;
  /** Smallest input `[h, w]` for which every layer's output is at least 1×1; `null` without spatial layers. */
  minInputSize: [number, number] | null;
  /** How the classifier head reads the feature map. */
  headKind: HeadKind;
  /** Spatial size `[h, w]` the head's Flatten must receive for the Dense weights to fit; `null` when it accepts any. */
  headInputSize: [number, number] | null;
  /** Layers after the feature cut, in topological order. */
  headLayers: string[];
  /** Layers whose output carries everything the rest of the graph reads, in topological order. */
  cutPoints: string[];
  /** The cut point just before the classifier head: where CNN codes come from; `null` if none is clear. */
  featureCut: string | null;
  /** The output shape of {@linkcode Architecture.featureCut}, batch first. */
  featureShape: Shape | null;
  /**
   * The penultimate representation: the last cut point before the output
   * layer, skipping layers that are the identity at inference (Dropout,
   * Activation). The classifier is what follows it, so this is where transfer
   * learning takes CNN codes and attaches a new classifier by default
   * (LeNet-5: `fc2`, the 84 codes, not the 5x5x16 map `featureCut` names).
   * `null` when the output layer is itself a cut point with nothing before it.
   */
  classifierCut: string | null;
  /** Floating-point operations for one example; `null` if a size is unknown. */
  flops: number | null;
  /** What the analysis could not follow, e.g. unknown layer classes passed through. */
  warnings: string[];
}

/** What {@linkcode checkInput} can find wrong with an input or a cut. */
export type FindingKind =
  | "too-small"
  | "stride-mismatch"
  | "fixed-by-head"
  | "channel-mismatch"
  | "not-a-cut-point";

/** One problem {@linkcode checkInput} found, with the data to act on it. */
export interface Finding {
  /** What kind of problem. */
  kind: FindingKind;
  /** `error`: it cannot run; `warning`: it runs, but not as trained (pixels ignored, misaligned score map). */
  severity: "error" | "warning";
  /** What is wrong and what to do, one sentence-case phrase. */
  message: string;
  /** The layer concerned, when there is one. */
  layer?: string;
  /** The nearest input sizes without this problem: the largest below and the smallest above. */
  nearestSizes?: { height: number; width: number }[];
  /** The nearest cut points before and after a layer that is not one. */
  nearestCutPoints?: string[];
  /** The smallest input the kept layers accept, for `too-small`. */
  minInputSize?: [number, number];
}

/** The outcome of {@linkcode checkInput}. */
export interface InputCheck {
  /** True when no finding is an error. */
  ok: boolean;
  /** Every problem found, errors first. */
  findings: Finding[];
  /** One message summing up, e.g. `Cannot run "lenet" on 20x20x1: …`. */
  message: string;
}

/** Anything with the `toJSON` of a `tf.LayersModel`: what `analyze` reads of a model. */
export interface LayersModelLike {
  /** Serializes the topology, as `tf.LayersModel.toJSON(null, false)`. */
  toJSON(unused?: unknown, returnString?: boolean): unknown;
  /** The layers; only their presence tells a model from a model.json. */
  layers: unknown[];
}
