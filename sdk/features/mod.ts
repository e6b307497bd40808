/**
 * The fixed-feature-extractor strategy of transfer learning: cut a pretrained
 * network at a cut point, compute the ReLU'd CNN codes of every image once
 * (cached on disk), and train a linear classifier (SVM or softmax) on them.
 *
 * - {@linkcode featureStrategy}: the whole strategy, returning a complete predictor
 * - {@linkcode codeExtractor}, {@linkcode computeCodes}: cutting and codes
 * - {@linkcode trainLinear}, {@linkcode evaluateLinear}: the classifiers on codes
 * - {@linkcode readCachedCodes}, {@linkcode writeCachedCodes}: the code cache
 *
 * @example A linear SVM on codes already computed
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { evaluateLinear, trainLinear } from "./mod.ts";
 * // Two codes of length 2 per class, the class in the larger value.
 * const train = {
 *   codes: new Float32Array([3, 0, 2, 1, 0, 3, 1, 2]), labels: new Int32Array([0, 0, 1, 1]),
 *   count: 4, dim: 2,
 * };
 * const fit = await trainLinear(train, undefined, { classifier: "svm", numClasses: 2, epochs: 50 });
 * assertEquals((await evaluateLinear(fit.model, train)).accuracy, 1);
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { analyze } from "../../core/arch/analyze.ts";
import type { Dataset, Preprocessing } from "../data/types.ts";
import type { LinearClassifier, TrainCommonOptions, TrainOutcome } from "../types.ts";
import {
  type CnnCodes,
  type CodeKey,
  type CodePooling,
  defaultCodeCacheDir,
  readCachedCodes,
  writeCachedCodes,
} from "./code_cache.ts";
import { type CodeExtractor, codeExtractor, computeCodes, weightsDigest } from "./extract.ts";
import { evaluateLinear, type LinearEvaluation, type LinearModel, trainLinear } from "./linear.ts";

export * from "./code_cache.ts";
export * from "./extract.ts";
export * from "./linear.ts";

/** Options of {@linkcode featureStrategy}. */
export interface FeatureStrategyOptions extends TrainCommonOptions {
  /** The cut point whose codes are used. @default the penultimate layer (`analyze(model).classifierCut`) */
  cut?: string;
  /** `svm` (Crammer–Singer hinge) or `softmax` (cross-entropy). */
  classifier: LinearClassifier;
  /** How spatial codes become one vector: global average pooling or flattening. @default "avg" */
  codes?: CodePooling;
  /** Evaluated after training; its result is in {@linkcode FeatureOutcome.test}. */
  test?: Dataset;
  /** Where codes are cached. @default `$ZOO_CACHE/codes`, else `~/.cache/deno-model-zoo/codes` */
  cacheDir?: string;
  /** Don't read or write the code cache. @default false */
  noCache?: boolean;
  /** The checkpoint's digest, part of the cache key. @default a hash of the model's weights */
  checkpointDigest?: string;
  /** Weight of the L2 penalty on the classifier's weights (over standardized codes). @default chosen on the validation codes (see `trainLinear`), 1e-3 without them */
  l2?: number;
  /** Images per forward pass while computing codes. @default as many as keep a layer's output within 32 MiB, 128 to 1,024 (`defaultCodeBatchSize`) */
  codeBatchSize?: number;
  /** Called once per dataset with whether its codes came from the cache. */
  onCodes?: (info: { dataset: string; cached: boolean; count: number; seconds: number }) => void;
}

/** What {@linkcode featureStrategy} returns: a {@linkcode TrainOutcome} plus the test result. */
export interface FeatureOutcome extends TrainOutcome {
  /** How codes were formed, e.g. `avg-pooled 5x5x16 -> 16`. */
  codes: string;
  /** The linear classifier over raw codes (standardization folded in). */
  linear: LinearModel;
  /** Loss and accuracy on `options.test`, computed on its codes. */
  test?: LinearEvaluation;
}

/**
 * Codes of `data` at the extractor's cut: from the cache when there, else
 * computed and cached.
 */
async function codesOf(
  extractor: CodeExtractor,
  data: Dataset,
  opts: FeatureStrategyOptions,
  key: Omit<CodeKey, "dataset">,
): Promise<CnnCodes> {
  const started = performance.now();
  // The default folder comes from the environment, which a browser lacks: resolve it only to use it.
  const dir = () => opts.cacheDir ?? defaultCodeCacheDir();
  const fullKey: CodeKey = { ...key, dataset: data.identity };
  const report = (cached: boolean, count: number) =>
    opts.onCodes?.({
      dataset: data.name,
      cached,
      count,
      seconds: (performance.now() - started) / 1000,
    });
  if (!opts.noCache) {
    const hit = await readCachedCodes(dir(), fullKey);
    if (hit) {
      report(true, hit.codes.count);
      return hit.codes;
    }
  }
  const codes = await computeCodes(extractor.model, data, opts.preprocess, {
    ...(opts.codeBatchSize !== undefined ? { batchSize: opts.codeBatchSize } : {}),
  });
  if (!opts.noCache) await writeCachedCodes(dir(), fullKey, codes, extractor.description);
  report(false, codes.count);
  return codes;
}

/**
 * Trains the fixed-feature-extractor strategy: cuts `model` at `cut`,
 * computes the ReLU'd CNN codes of every training (and validation and test)
 * image once, in inference mode on the current backend, caches them on disk
 * (keyed by checkpoint, cut, dataset identity, preprocessing and pooling, so
 * a second run skips the forward passes), and trains a linear classifier on
 * the standardized codes to convergence (at most `epochs` passes per fit)
 * with its L2 weight chosen on the validation codes (`trainLinear`). `lr`,
 * `batchSize` and `patience` do not apply to it.
 *
 * The returned `model` is a complete predictor, images in and class
 * probabilities out: the cut network (fresh layers with copies of the
 * checkpoint's weights), a ReLU when the cut's output can be negative, the
 * pooling, and a Dense layer with softmax that carries the classifier with
 * the standardization folded into its weights. For the SVM those
 * "probabilities" are the softmax of its scores: their argmax is the SVM's
 * decision, their values are not calibrated. The checkpoint is not modified.
 *
 * A pass over the codes runs in compiled wasm SIMD kernels (no tensors),
 * the same on every device, so `epochs` in the hundreds is cheap next to
 * computing the codes.
 *
 * @param options the common trainer options plus cut, classifier, pooling, cache and test data
 * @returns the predictor, per-epoch metrics (phase `linear`), the frozen layers, the cut and how codes were formed
 * @throws {RangeError} when `cut` is not a cut point (naming the nearest ones), the model has no feature cut, or options are invalid
 * @throws {TypeError} when the model cannot be rebuilt (several inputs, shared layers)
 *
 * @example Fit ten digits per class on an untrained LeNet's codes
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { featureStrategy } from "./mod.ts";
 * import { loadBuiltin } from "../data/builtin.ts";
 * import { lenet5 } from "../../zoo/_recipes.ts";
 * const train = await loadBuiltin("mnist", { perClass: 10 });
 * const outcome = await featureStrategy({
 *   model: lenet5(), train, numClasses: 10, classifier: "softmax", noCache: true,
 *   preprocess: { height: 28, width: 28, channels: 1, range: [0, 1] },
 *   epochs: 20, batchSize: 50, lr: 0.01, seed: 0,
 * });
 * // The default cut is the penultimate layer: fc2, a vector of 84 codes.
 * assertEquals([outcome.cutLayer, outcome.codes], ["fc2", "84"]);
 * outcome.model.dispose();
 * ```
 */
export async function featureStrategy(options: FeatureStrategyOptions): Promise<FeatureOutcome> {
  const { model, train, numClasses } = options;
  if (train.classes.length !== numClasses) {
    throw new RangeError(
      `Invalid numClasses "${numClasses}": the training data "${train.name}" has ${train.classes.length} classes`,
    );
  }
  // The architecture is analyzed only to find the default cut (cutAt checks a given one).
  const arch = options.cut === undefined ? analyze(model) : undefined;
  const cut = options.cut ?? arch!.classifierCut ?? arch!.featureCut;
  if (cut === null) {
    throw new RangeError(
      `Cannot find the feature cut of "${arch!.name}": pass a cut point as "cut": one of ${
        arch!.cutPoints.map((c) => `"${c}"`).join(", ")
      }`,
    );
  }
  const pooling = options.codes ?? "avg";
  const extractor = codeExtractor(model, cut, pooling);
  let predictor: tf.LayersModel | undefined;
  try {
    const key: Omit<CodeKey, "dataset"> = {
      // Only the cache reads the key: without it, the weights need not be hashed.
      model: options.noCache ? "" : options.checkpointDigest ?? await weightsDigest(model),
      cut,
      preprocess: options.preprocess,
      pooling,
    };
    const trainCodes = await codesOf(extractor, train, options, key);
    const valCodes = options.validation
      ? await codesOf(extractor, options.validation, options, key)
      : undefined;
    const fit = await trainLinear(trainCodes, valCodes, {
      classifier: options.classifier,
      numClasses,
      epochs: options.epochs,
      seed: options.seed,
      ...(options.l2 !== undefined ? { l2: options.l2 } : {}),
      ...(options.onEpoch ? { onEpoch: options.onEpoch } : {}),
      ...(options.onBatch ? { onBatch: options.onBatch } : {}),
    });
    let test: LinearEvaluation | undefined;
    if (options.test) {
      test = await evaluateLinear(fit.model, await codesOf(extractor, options.test, options, key));
    }
    predictor = attachClassifier(extractor, fit.model, options.classifier);
    const outcome: FeatureOutcome = {
      model: predictor,
      history: fit.history,
      frozenLayers: extractor.keptLayers,
      cutLayer: cut,
      learningRates: { head: options.lr, base: 0 },
      codes: extractor.description,
      linear: fit.model,
    };
    if (test) outcome.test = test;
    return outcome;
  } catch (e) {
    (predictor ?? extractor.model).dispose();
    throw e;
  }
}

/** The extractor followed by a softmax Dense layer holding the classifier. */
function attachClassifier(
  extractor: CodeExtractor,
  linear: LinearModel,
  classifier: LinearClassifier,
): tf.LayersModel {
  const dense = tf.layers.dense({
    name: classifier === "svm" ? "linear_svm" : "linear_softmax",
    units: linear.numClasses,
    activation: "softmax",
  });
  const output = dense.apply(extractor.model.outputs[0]!) as tf.SymbolicTensor;
  tf.tidy(() =>
    dense.setWeights([
      tf.tensor2d(linear.kernel, [linear.dim, linear.numClasses]),
      tf.tensor1d(linear.bias),
    ])
  );
  return tf.model({
    name: `${extractor.model.name.replace(/_codes_.*$/, "")}_${extractor.cut}_${classifier}`,
    inputs: extractor.model.inputs,
    outputs: output,
  });
}

export type { Preprocessing };
export type * from "../types.ts";
export type { Batch, BatchOptions, Dataset, Split, SplitOptions } from "../data/types.ts";
export type { Architecture, HeadKind, LayerInfo, Shape } from "../../core/arch/types.ts";
export type { LayersModel, Tensor1D, Tensor4D } from "../_tfjs_types.ts";
