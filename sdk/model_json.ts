/**
 * The `model.json` of a TensorFlow.js LayersModel, and the checks the registry
 * runs on it before a version is published.
 *
 * @module
 */

/** How a weight's values were quantized to shrink the shards. */
export interface WeightQuantization {
  /** The stored dtype: `uint8`, `uint16` or `float16`. */
  dtype: string;
  /** Affine quantization: value = min + scale × stored. */
  min?: number;
  /** Affine quantization: value = min + scale × stored. */
  scale?: number;
}

/** One weight of a {@linkcode WeightsManifestGroup}. */
export interface WeightsManifestEntry {
  /** The weight's name, e.g. `conv2d_1/kernel`. */
  name: string;
  /** Its shape. */
  shape: number[];
  /** Its dtype once loaded: `float32`, `int32`, `bool` or `string`. */
  dtype: string;
  /** Present when the stored bytes are quantized. */
  quantization?: WeightQuantization;
}

/** A group of weights stored one after another across the shard files in `paths`. */
export interface WeightsManifestGroup {
  /** Shard file names, relative to the model.json, in order. */
  paths: string[];
  /** The weights, in the order their bytes appear. */
  weights: WeightsManifestEntry[];
}

/**
 * A TensorFlow.js LayersModel `model.json`: a Keras topology and where its
 * weights are. The minimal shape this project relies on; tfjs may add fields.
 */
export interface ModelJson {
  /** The Keras model: `{ class_name, config }` or `{ model_config: { class_name, config }, … }`. */
  modelTopology: object;
  /** Where the weights are and how they are laid out. */
  weightsManifest: WeightsManifestGroup[];
  /** `layers-model` for a LayersModel. */
  format?: string;
  /** The library that produced the model, e.g. `keras v2.2.4`. */
  generatedBy?: string;
  /** The converter that produced the model.json. */
  convertedBy?: string | null;
}
