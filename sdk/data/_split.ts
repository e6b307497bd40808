/**
 * Seeded shuffles and the deterministic train/validation/test split shared by
 * every loader. Private to `sdk/data/`.
 *
 * @module
 */
import { mulberry32 } from "../_random.ts";
import type { Split, SplitOptions } from "./types.ts";

export { mulberry32 };

/** Splits {@linkcode selectSplit} accepts, for messages. */
export const SPLITS: readonly Split[] = ["train", "validation", "test", "all"];

/** Default fraction of each class held out for validation. */
export const DEFAULT_VALIDATION_FRACTION = 0.1;
/** Default fraction of each class held out for test. */
export const DEFAULT_TEST_FRACTION = 0.2;

/** Mixes a seed with a stream number so per-class shuffles are independent. */
export function mixSeed(seed: number, stream: number): number {
  let h = Math.imul((seed | 0) ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ (stream | 0), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Fisher-Yates shuffle in place with a seeded PRNG. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(
  items: T,
  seed: number,
): T {
  const rand = mulberry32(seed);
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const tmp = items[i];
    items[i] = items[j];
    items[j] = tmp;
  }
  return items;
}

/** The split options with defaults filled in and checked. */
export interface ResolvedSplit {
  split: Split;
  perClass: number | undefined;
  seed: number;
  validationFraction: number;
  testFraction: number;
}

/**
 * Fills in defaults and checks split options.
 *
 * @throws {RangeError} on an unknown split, a bad fraction or a bad perClass
 */
export function resolveSplit(opts: SplitOptions, defaultSplit: Split): ResolvedSplit {
  const split = opts.split ?? defaultSplit;
  if (!SPLITS.includes(split)) {
    throw new RangeError(`Invalid split "${split}": use one of ${SPLITS.join(", ")}`);
  }
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw new RangeError(`Invalid seed "${seed}": use an integer`);
  const perClass = opts.perClass;
  if (perClass !== undefined && !(Number.isInteger(perClass) && perClass > 0)) {
    throw new RangeError(`Invalid perClass "${perClass}": use a positive integer`);
  }
  const validationFraction = opts.validationFraction ?? DEFAULT_VALIDATION_FRACTION;
  const testFraction = opts.testFraction ?? DEFAULT_TEST_FRACTION;
  for (
    const [key, v] of [["validationFraction", validationFraction], [
      "testFraction",
      testFraction,
    ]] as const
  ) {
    if (!(v >= 0 && v < 1)) throw new RangeError(`Invalid ${key} "${v}": use a number in [0, 1)`);
  }
  if (validationFraction + testFraction >= 1) {
    throw new RangeError(
      `Invalid fractions: validationFraction "${validationFraction}" plus testFraction "${testFraction}" leave no training examples`,
    );
  }
  return { split, perClass, seed, validationFraction, testFraction };
}

/** The canonical query string of split options, part of a dataset's identity. */
export function splitKey(s: ResolvedSplit): string {
  const parts = [`split=${s.split}`, `seed=${s.seed}`];
  if (s.split !== "all") {
    parts.push(`validationFraction=${s.validationFraction}`, `testFraction=${s.testFraction}`);
  }
  if (s.perClass !== undefined) parts.push(`perClass=${s.perClass}`);
  return parts.join("&");
}

/**
 * Selects the examples of one split: per class, shuffle the indices of that
 * class with a seed mixed from `seed` and the class, cut test | validation |
 * train, keep `perClass` of the chosen part, then shuffle the union with
 * `seed` so the base order mixes classes.
 *
 * @param labels the class of every example of the source
 * @param numClasses number of classes
 * @returns indices into the source, in the dataset's base order
 */
export function selectSplit(
  labels: ArrayLike<number>,
  numClasses: number,
  s: ResolvedSplit,
): Int32Array {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]!]!.push(i);
  const chosen: number[] = [];
  byClass.forEach((members, c) => {
    let part = members;
    if (s.split !== "all") {
      shuffleInPlace(members, mixSeed(s.seed, c));
      const nTest = Math.round(members.length * s.testFraction);
      const nVal = Math.round(members.length * s.validationFraction);
      part = s.split === "test"
        ? members.slice(0, nTest)
        : s.split === "validation"
        ? members.slice(nTest, nTest + nVal)
        : members.slice(nTest + nVal);
    } else if (s.perClass !== undefined) {
      shuffleInPlace(members, mixSeed(s.seed, c));
    }
    if (s.perClass !== undefined) part = part.slice(0, s.perClass);
    for (const i of part) chosen.push(i);
  });
  return shuffleInPlace(Int32Array.from(chosen), mixSeed(s.seed, -1));
}
