/**
 * The TensorFlow.js types that the SDK's exported signatures use, under one
 * name each, so that every entry module can re-export them and a caller can
 * name them without importing tfjs.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** A TensorFlow.js LayersModel (`tf.LayersModel`). */
export type LayersModel = tf.LayersModel;
/** A tensor (`tf.Tensor`). */
export type Tensor = tf.Tensor;
/** A rank-1 tensor (`tf.Tensor1D`). */
export type Tensor1D = tf.Tensor1D;
/** A rank-4 tensor, `[batch, height, width, channels]` (`tf.Tensor4D`). */
export type Tensor4D = tf.Tensor4D;
/** A scalar tensor (`tf.Scalar`). */
export type Scalar = tf.Scalar;
/** A mutable tensor (`tf.Variable`). */
export type Variable = tf.Variable;
/** What `tf.loadLayersModel` loads from (`tf.io.IOHandler`). */
export type IOHandler = tf.io.IOHandler;
/** A model's topology and weights as loaded (`tf.io.ModelArtifacts`). */
export type ModelArtifacts = tf.io.ModelArtifacts;
/** A training optimizer (`tf.Optimizer`). */
export type Optimizer = tf.Optimizer;
/** Tensors by name (`tf.NamedTensorMap`). */
export type NamedTensorMap = tf.NamedTensorMap;
