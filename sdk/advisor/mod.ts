/**
 * The transfer-learning advisor: measure how similar a new dataset is to a
 * checkpoint's source data ({@linkcode measureSimilarity}, from the card's
 * `sourceStats`), then pick one of the four scenarios in the README's advisor table from the
 * dataset's size and that similarity ({@linkcode advise}).
 *
 * @example Advice for 2,000 digits per class, close to the source
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { advise } from "./mod.ts";
 * const advice = advise({ examplesPerClass: 2000, similarity: 0.98, cutPoints: [], source: "mnist" });
 * assertEquals(advice.strategy, "partial");
 * ```
 *
 * @module
 */
export * from "./similarity.ts";
export * from "./advise.ts";
export type * from "../types.ts";
export type { DeviceName } from "../devices/types.ts";
export type * from "../data/types.ts";
export type { LayersModel, Tensor1D, Tensor4D } from "../_tfjs_types.ts";
