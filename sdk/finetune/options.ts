/**
 * What `fineTune()` takes and gives: where the checkpoint and the data come
 * from and which strategy to run at the top level, then three groups: the
 * training schedule ({@linkcode FineTuneTraining}), what the run leaves
 * behind ({@linkcode FineTuneOutput}) and what it tells its caller along the
 * way ({@linkcode FineTuneCallbacks}).
 *
 * @module
 */
import type { ZooClient } from "../client/mod.ts";
import type { Dataset, Preprocessing } from "../data/types.ts";
import type { DeviceChoice } from "../devices/select.ts";
import type { DeviceName } from "../devices/types.ts";
import type {
  Advice,
  EpochMetrics,
  LinearClassifier,
  ResolvedStrategy,
  Strategy,
} from "../types.ts";
import type { LayersModel } from "../_tfjs_types.ts";

/** Where the pretrained checkpoint came from: recorded as lineage, read by the advisor. */
export interface SourceInfo {
  /** `namespace/name@version` of the parent. */
  reference?: string;
  /** `sha256:<hex>` of the parent's `model.json`. */
  digest?: string;
  /** The parent's model card (`preprocessing`, `sourceStats`, `labels`, …). */
  card?: Record<string, unknown>;
}

/** The training schedule of {@linkcode FineTuneOptions.training}. */
export interface FineTuneTraining {
  /** Epochs. @default 100 for the feature strategy (cheap epochs over codes), 5 otherwise */
  epochs?: number;
  /** Images per batch. @default 32 */
  batchSize?: number;
  /** Learning rate of the new head or linear classifier. @default 0.01 for features, 0.003 otherwise */
  lr?: number;
  /**
   * Pretrained layers learn at `lr × baseLrMult`.
   * @default 0.1, and 1 for the full strategy: on large, different data the
   * pretrained layers have to move as far as the head (bench/scenarios.ts:
   * LeNet-5 on 1,000 Fashion-MNIST images per class gains with 1)
   */
  baseLrMult?: number;
  /** Epochs that train the new head alone first. @default 0 */
  headEpochs?: number;
  /** Stop after this many epochs without a better validation loss. @default 3 */
  patience?: number;
  /** Accumulate gradients over micro-batches of this many images. @default the whole batch, or the largest micro-batch whose estimated memory fits (said in the log) */
  microBatch?: number;
  /** Seed of shuffles, splits and initializations. @default 0 */
  seed?: number;
}

/** What the run leaves behind, {@linkcode FineTuneOptions.output}. */
export interface FineTuneOutput {
  /** Write the checkpoint, `metrics.jsonl`, `training-curves.svg` and per-epoch checkpoints here. */
  outDir?: string;
  /**
   * Continue from the last per-epoch checkpoint in `outDir/checkpoints`. The
   * features strategies keep no per-epoch checkpoints: their linear
   * classifier trains again on the cached codes, to the same result.
   * @default false
   */
  resume?: boolean;
  /** Where CNN codes are cached. @default `codes/` in `client`'s cache folder, else in the SDK cache (`$ZOO_CACHE/codes`) */
  cacheDir?: string;
}

/** What the run tells its caller along the way, {@linkcode FineTuneOptions.callbacks}. */
export interface FineTuneCallbacks {
  /** Called once the checks passed and the strategy is known, before training starts. */
  onPlan?: (plan: TrainingPlan) => void;
  /** Called after every epoch. */
  onEpoch?: (m: EpochMetrics) => void;
  /** Called when `resume` continues from a checkpoint, with the epochs it had completed. */
  onResume?: (completedEpochs: number) => void;
  /** Called after every batch with images done in the epoch, its size and the batch loss. */
  onBatch?: (done: number, total: number, loss: number) => void;
  /** Where decisions are explained (device, input size, advice). @default console.error */
  log?: (line: string) => void;
}

/** Options of `fineTune`. */
export interface FineTuneOptions {
  /** The pretrained checkpoint; or give `modelRef` and `client`. */
  model?: LayersModel;
  /** A registry reference, e.g. `zoo/lenet5@1.0.0`, loaded with `client`. */
  modelRef?: string;
  /** The registry client that resolves `modelRef`. */
  client?: ZooClient;
  /** The parent's reference, digest and card; filled in from the registry with `modelRef`. */
  source?: SourceInfo;
  /** A data spec (`fashion-mnist?perClass=100`, `dir:PATH`, …): its train, validation and test splits are used. */
  data?: string;
  /** The training split (instead of `data`). */
  train?: Dataset;
  /** The validation split (early stopping). @default from `data`, else none */
  validation?: Dataset;
  /** The test split, evaluated at the end. @default from `data`, else none */
  test?: Dataset;
  /** With `data`: fraction of each class held out for validation. @default 0.1 */
  valSplit?: number;
  /**
   * With a `dir:` spec: leave out unreadable images (logged with their paths
   * and counted) instead of failing with their list; the spec's `skipBad=1`.
   * @default false
   */
  skipBad?: boolean;
  /** Run the model on this input size (images are resized to it; the model through `resizeInput`). @default the data's size */
  inputSize?: { height: number; width: number };
  /** Resize images to the checkpoint's native size in preprocessing. @default false */
  resize?: boolean;
  /** `auto` asks the advisor. @default "auto" */
  strategy?: Strategy;
  /** The feature strategy's linear classifier. @default "svm" */
  classifier?: LinearClassifier;
  /** Cut point the codes (features) or the new head (partial, full) read. @default the feature cut */
  cut?: string;
  /** For `partial`: the last frozen layer. @default the trainer's choice */
  freezeUntil?: string;
  /** `auto`, `webgpu`, `wasm` or `cpu`. @default "auto" */
  device?: DeviceName;
  /** Threads of the wasm backend (1 turns them off). @default env ZOO_WASM_THREADS, else one per core */
  wasmThreads?: number;
  /** Epochs, batch size, learning rates, patience, micro-batches and seed. */
  training?: FineTuneTraining;
  /** The output folder, resuming from it, and the code cache. */
  output?: FineTuneOutput;
  /** Progress, plan and log callbacks. */
  callbacks?: FineTuneCallbacks;
}

/** What `fineTune` is about to train, passed to {@linkcode FineTuneCallbacks.onPlan}. */
export interface TrainingPlan {
  /** The strategy that will run. */
  strategy: ResolvedStrategy;
  /** Epochs planned (the head-only epochs included). */
  epochs: number;
  /** Images per batch. */
  batchSize: number;
  /** Learning rate of the new head (or of the linear classifier). */
  lr: number;
  /** Training images. */
  trainSize: number;
  /** The device now active, and why it was picked. */
  device: DeviceChoice;
}

/** What `fineTune` returns. */
export interface FineTuneResult {
  /** The fine-tuned predictor: images in, class probabilities out. */
  model: LayersModel;
  /** The strategy run. */
  strategy: ResolvedStrategy;
  /** The advisor's decision when the strategy was `auto`. */
  advice?: Advice;
  /** Metrics of every epoch run, in order. */
  history: EpochMetrics[];
  /** Accuracy of the last epoch on the training data. */
  trainAccuracy?: number;
  /** Accuracy of the final model on the validation split. */
  validationAccuracy?: number;
  /** Accuracy of the final model on the test split. */
  testAccuracy?: number;
  /** The device now active, and why it was picked. */
  device: DeviceChoice;
  /** The cut layer: where the codes come from or where the new head is attached. */
  cutLayer: string;
  /** Layers whose weights were kept as pretrained. */
  frozenLayers: string[];
  /** Learning rates used for the new head and for the pretrained layers. */
  learningRates: { head: number; base: number };
  /** For the features strategies: how the codes were formed, e.g. `ReLU'd, flattened 12x12x6 -> 864`. */
  codes?: string;
  /** The model's input `[height, width, channels]`. */
  inputSize: [number, number, number];
  /** How images are turned into the model's input. */
  preprocess: Preprocessing;
  /** The card written to `outDir/card.json`. */
  card: Record<string, unknown>;
  /** The output folder, when one was written. */
  outDir?: string;
  /** Wall time of the whole job. */
  seconds: number;
}
