/**
 * The transfer-learning advisor: which of the four transfer-learning scenarios (README, "The advisor") a
 * new dataset falls in, from its size and its similarity to the source data.
 *
 * @module
 */
import type { Advice, ResolvedStrategy } from "../types.ts";

/** The thresholds the advisor compares with. */
export interface AdviceThresholds {
  /** At or above this many training examples per class (the smallest class) a dataset is large. */
  examplesPerClass: number;
  /** At or above this similarity a dataset is similar to the source. */
  similarity: number;
}

/**
 * The default thresholds, calibrated by `bench/scenarios.ts` (tables in
 * `bench/results/scenarios.md` and `scenarios-large.md`, lenet5 and
 * resnet-mini):
 *
 * - `examplesPerClass: 1000`: at 200 per class (3 seeds) a linear classifier
 *   on codes was the best or within 1.2 points in all four cells (lenet5
 *   and resnet-mini, held-out digits and Fashion-MNIST), while fine-tuning
 *   resnet-mini on 200 Fashion-MNIST images per class fell 15 points short
 *   of it (66.7 vs 81.8); at 1,000 Fashion-MNIST images per class (3 seeds)
 *   full fine-tuning beat the best linear classifier by 5.6 points on lenet5
 *   (86.7 vs 81.1) and came within 0.3 of it on resnet-mini (82.5 vs 82.8).
 *   Between 200 and 1,000 nothing was measured, nor similar data at 1,000
 *   per class (the held-out digits number about 300 per class), so
 *   large/similar (`partial`) rests on practice, not on this experiment.
 * - `similarity: 0.8`: measured at each zoo checkpoint's `sourceStats`
 *   layer (its penultimate codes), 10 and 100 images per class, seed 1:
 *   held-out MNIST digits 0.994-0.998 on lenet5 (fc2), vggish (fc1) and
 *   resnet-mini (pool); Fashion-MNIST 0.56 (lenet5), 0.57 (vggish) and
 *   0.03-0.04 (resnet-mini). 0.8 separates every pair with margin; 0.5 would
 *   call Fashion-MNIST similar on the two FC-headed nets.
 */
export const DEFAULT_THRESHOLDS: Readonly<AdviceThresholds> = Object.freeze({
  examplesPerClass: 1000,
  similarity: 0.8,
});

/** Early-cut codes up to this length are flattened rather than average-pooled. */
export const MAX_FLATTENED_CODES = 16384;

/** One layer as `analyze()` reports it, as far as the advisor reads it. */
export interface AdvisorLayer {
  /** The layer's name. */
  name: string;
  /** Batch-first output shape: rank 4 means a spatial map. */
  outputShape: (number | null)[];
}

/** What {@linkcode advise} decides from. */
export interface AdviseInput {
  /** Training examples per class: the smallest class's count. */
  examplesPerClass: number;
  /** Similarity to the source data in [0, 1] (`measureSimilarity`). */
  similarity: number;
  /** The checkpoint's cut points in order (`analyze(model).cutPoints`). */
  cutPoints: readonly string[];
  /** The top cut point; earlier cut points are chosen before it. @default the last of `cutPoints` */
  featureCut?: string | null;
  /** The layers (`analyze(model).layers`), to keep to cut points with a spatial output (the conv trunk). @default every cut point counts */
  layers?: readonly AdvisorLayer[];
  /** The source dataset's name, for the explanation. @default "the source data" */
  source?: string;
  /** Thresholds to use instead of {@linkcode DEFAULT_THRESHOLDS}. */
  thresholds?: Partial<AdviceThresholds>;
}

/**
 * The earlier cut point for features-early: the middle one of the conv
 * trunk's cut points before the feature cut (the input excluded, and with
 * `layers`, only cut points whose output is a spatial map). Halfway up the
 * trunk the codes are generic edge and stroke detectors rather than the
 * source's class parts.
 *
 * @param cutPoints the cut points in order
 * @param featureCut the top cut point @default the last of `cutPoints`
 * @param layers the analyzed layers, to keep spatial outputs only
 * @returns the cut point, or `undefined` when there is none before the feature cut
 *
 * @example LeNet-5's earlier cut point
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { earlyCutPoint } from "./advise.ts";
 * const cuts = ["conv1_input", "conv1", "pool1", "conv2", "pool2", "flatten", "fc1"];
 * assertEquals(earlyCutPoint(cuts, "pool2"), "pool1");
 * ```
 */
export function earlyCutPoint(
  cutPoints: readonly string[],
  featureCut?: string | null,
  layers?: readonly AdvisorLayer[],
): string | undefined {
  const top = featureCut ?? cutPoints.at(-1);
  const end = top === undefined ? -1 : cutPoints.indexOf(top);
  const shapes = new Map(layers?.map((l) => [l.name, l.outputShape]));
  const candidates = cutPoints.slice(1, end < 0 ? cutPoints.length : end).filter((c) => {
    if (!layers) return true;
    return shapes.get(c)?.length === 4;
  });
  return candidates[Math.floor((candidates.length - 1) / 2)];
}

function round2(x: number): string {
  return x.toFixed(2);
}

/**
 * Picks the transfer-learning scenario (the README's advisor table):
 *
 * | examples per class | similarity ≥ threshold | similarity < threshold |
 * | --- | --- | --- |
 * | < threshold (small) | `features-top` | `features-early` (with `cut`) |
 * | ≥ threshold (large) | `partial` | `full` |
 *
 * The thresholds default to {@linkcode DEFAULT_THRESHOLDS} (1,000 examples per
 * class, similarity 0.8), calibrated by `bench/scenarios.ts` and the similarity figures above. When no earlier
 * cut point exists, small and different data falls back to `features-top`.
 *
 * @param input examples per class, similarity, the cut points, optional thresholds
 * @returns the strategy, the figures and thresholds behind it, the cut for features-early, and an explanation
 * @throws {RangeError} when examples per class is negative or the similarity is outside [0, 1]
 *
 * @example Ten fashion images per class on an MNIST LeNet
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { advise } from "./advise.ts";
 * const advice = advise({
 *   examplesPerClass: 10, similarity: 0.02, source: "mnist",
 *   cutPoints: ["conv1_input", "conv1", "pool1", "conv2", "pool2", "flatten", "fc1"], featureCut: "pool2",
 * });
 * assertEquals([advice.strategy, advice.cut], ["features-early", "pool1"]);
 * ```
 */
export function advise(input: AdviseInput): Advice {
  const { examplesPerClass, similarity } = input;
  if (!(Number.isFinite(examplesPerClass) && examplesPerClass >= 0)) {
    throw new RangeError(
      `Invalid examples per class "${examplesPerClass}": use a number >= 0`,
    );
  }
  if (!(similarity >= 0 && similarity <= 1)) {
    throw new RangeError(`Invalid similarity "${similarity}": use a number in [0, 1]`);
  }
  const thresholds: AdviceThresholds = { ...DEFAULT_THRESHOLDS, ...input.thresholds };
  const source = input.source ?? "the source data";
  const large = examplesPerClass >= thresholds.examplesPerClass;
  const similar = similarity >= thresholds.similarity;
  const sizeText = `${examplesPerClass} examples per class (${
    large ? "≥" : "<"
  } ${thresholds.examplesPerClass})`;
  const simText = `similarity ${round2(similarity)} to ${source} (${
    similar ? "≥" : "<"
  } ${thresholds.similarity})`;
  let strategy: ResolvedStrategy;
  let cut: string | undefined;
  let action: string;
  if (!large && similar) {
    strategy = "features-top";
    action = "training a linear classifier on codes from the top cut point";
  } else if (!large) {
    cut = earlyCutPoint(input.cutPoints, input.featureCut, input.layers);
    if (cut === undefined) {
      strategy = "features-top";
      action =
        "training a linear classifier on codes from the top cut point (the network has no earlier cut point)";
    } else {
      strategy = "features-early";
      action = `training a linear classifier on codes from the earlier cut point "${cut}"`;
    }
  } else if (similar) {
    strategy = "partial";
    action = "fine-tuning the later layers with the early layers frozen";
  } else {
    strategy = "full";
    action = "fine-tuning the whole network from the pretrained weights";
  }
  const advice: Advice = {
    strategy,
    examplesPerClass,
    similarity,
    thresholds,
    explanation: `${sizeText} and ${simText}: ${action}.`,
  };
  if (cut !== undefined) {
    advice.cut = cut;
    const shape = input.layers?.find((l) => l.name === cut)?.outputShape ?? [];
    const size = shape.slice(1).reduce<number>((a, d) => a * (d ?? Infinity), 1);
    // The scenarios bench: LeNet-5's pool1 codes flattened beat the same codes pooled by 26-35 points.
    advice.codes = size <= MAX_FLATTENED_CODES ? "flatten" : "avg";
  }
  return advice;
}
