/**
 * The strategy step of `fineTune()`: the one the caller named, or, for
 * `auto`, the advisor's pick from the examples per class and the similarity
 * of the new data to the checkpoint's source data (from the card's
 * `sourceStats`, else from how sure the checkpoint's own classifier is).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { analyze } from "../../core/arch/analyze.ts";
import {
  advise,
  measureSimilarity,
  PREDICTION_SAMPLE,
  PREDICTION_SIMILARITY_THRESHOLD,
  predictionSimilarity,
} from "../advisor/mod.ts";
import type { Dataset, Preprocessing } from "../data/types.ts";
import type { Advice, ResolvedStrategy, SourceStats, Strategy } from "../types.ts";

/** The strategy to run and, for `auto`, the advice behind it. */
export interface StrategyChoice {
  /** The strategy that will run. */
  strategy: ResolvedStrategy;
  /** What the advisor said, for `auto`. */
  advice?: Advice;
}

/** What the caller asks {@linkcode chooseStrategy} for. */
export interface StrategyRequest {
  /** The strategy asked for. */
  strategy: Strategy;
  /** The cut asked for, if any. */
  cut?: string;
  /** Seed of the advisor's sampling. */
  seed: number;
  /** The checkpoint's card, whose `sourceStats` the advisor compares the data with. */
  card?: Record<string, unknown>;
}

/**
 * Resolves the requested strategy against `net` (the checkpoint fitted to
 * the data): `features` becomes `features-early` when `cut` is not the
 * feature cut, `auto` asks the advisor.
 */
export async function chooseStrategy(
  net: tf.LayersModel,
  train: Dataset,
  preprocess: Preprocessing,
  request: StrategyRequest,
  log: (line: string) => void,
): Promise<StrategyChoice> {
  if (request.strategy === "auto") {
    const advice = await adviseStrategy(net, train, preprocess, request, log);
    log(`advisor: ${advice.explanation}`);
    return { strategy: advice.strategy, advice };
  }
  if (request.strategy === "features") {
    const arch = analyze(net);
    const early = request.cut !== undefined &&
      request.cut !== (arch.classifierCut ?? arch.featureCut);
    return { strategy: early ? "features-early" : "features-top" };
  }
  return { strategy: request.strategy };
}

/** The advisor's decision, with the similarity measured as the card allows. */
async function adviseStrategy(
  model: tf.LayersModel,
  train: Dataset,
  preprocess: Preprocessing,
  { card, seed }: StrategyRequest,
  log: (line: string) => void,
): Promise<Advice> {
  const examplesPerClass = Math.min(...train.counts);
  // Imported checkpoints carry `sourceStats: null` (their source data is not at hand).
  const stats = (card?.sourceStats ?? undefined) as SourceStats | undefined;
  let similarity: number;
  let thresholds: { similarity: number } | undefined;
  let source: string | undefined = stats?.dataset;
  if (stats === undefined) {
    const why = typeof card?.sourceStatsNote === "string"
      ? card.sourceStatsNote
      : "its source data was not at hand";
    try {
      const p = await predictionSimilarity(model, train, preprocess, {
        seed,
        sample: PREDICTION_SAMPLE,
      });
      similarity = p.similarity;
      thresholds = { similarity: PREDICTION_SIMILARITY_THRESHOLD };
      source = "its source data, from its own predictions";
      log(
        `advisor: the card has no sourceStats (${why}): similarity measured instead from how sure the checkpoint's own classifier is on ${p.count} training images: mean confidence ${
          p.meanConfidence.toFixed(2)
        }, 1 - entropy/ln ${p.classes} = ${
          p.similarity.toFixed(2)
        } (similar at >= ${PREDICTION_SIMILARITY_THRESHOLD}; a weaker signal than code statistics)`,
      );
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      similarity = 0.5;
      log(
        `advisor: the card has no sourceStats (${why}) and the checkpoint's output cannot be read as class predictions (${e.message}): deciding on the dataset's size with the similarity assumed 0.5`,
      );
    }
  } else {
    similarity = await measureSimilarity(model, stats, train, preprocess, { seed });
  }
  const arch = analyze(model);
  return advise({
    examplesPerClass,
    similarity,
    cutPoints: arch.cutPoints,
    featureCut: arch.featureCut,
    layers: arch.layers,
    ...(source !== undefined ? { source } : {}),
    ...(thresholds !== undefined ? { thresholds } : {}),
  });
}
