/**
 * Partial and full fine-tuning of a pretrained network: replace its
 * classifier with a new one, train the head (optionally alone first), then
 * continue backpropagation into some (`partial`) or all (`full`) pretrained
 * layers with a smaller learning rate than the head's.
 *
 * @module
 */
import type { TrainCommonOptions, TrainOutcome } from "../finetune/types.ts";

/** The optimizer of each variable group. */
export type OptimizerName = "adam" | "sgd" | "momentum";

/** Options of {@linkcode fineTuneNetwork}. */
export interface FineTuneNetworkOptions extends TrainCommonOptions {
  /** `partial`: layers up to `freezeUntil` stay fixed; `full`: every layer trains. */
  strategy: "partial" | "full";
  /**
   * For `partial`: the last frozen layer, a cut point before `cut`.
   * @default the middle cut point between the input and `cut`
   */
  freezeUntil?: string;
  /** Pretrained layers learn at `lr × baseLrMult`. @default 0.1 */
  baseLrMult?: number;
  /** Epochs that train the new head alone before the base is unfrozen; `epochs` follow them. @default 0 */
  headEpochs?: number;
  /** The cut point the new head reads. @default the feature cut from `analyze()` */
  cut?: string;
  /** Write a checkpoint to this folder after every epoch. @default none */
  checkpointDir?: string;
  /** Continue from the last checkpoint in `checkpointDir` (a fresh start when there is none). @default false */
  resume?: boolean;
  /** Accumulate each batch's gradient over micro-batches of this many images. @default the whole batch */
  microBatch?: number;
  /** `adam`, `sgd`, or `momentum` (SGD with momentum 0.9), one instance per variable group. @default "adam" */
  optimizer?: OptimizerName;
}

/**
 * Fine-tunes a pretrained network on a new classification task.
 *
 * @param opts the checkpoint, data, strategy and schedule
 * @returns the trained predictor and its history
 * @throws {RangeError} for invalid options, a `cut` or `freezeUntil` that is not a cut point
 */
export function fineTuneNetwork(opts: FineTuneNetworkOptions): Promise<TrainOutcome> {
  return Promise.reject(new Error(`Not implemented yet: ${opts.strategy}`));
}
