/**
 * The subset of `@std/text` this project uses (the "did you mean" of flags,
 * data specs and layer names), with std's names and call shapes, because JSR
 * cannot be reached from our machines. Point the `@std/text` entry of
 * deno.json at `jsr:@std/text@^1` to use the real one.
 *
 * @module
 */

/**
 * The Levenshtein distance of two strings: the fewest single-character
 * insertions, deletions and substitutions that turn one into the other.
 *
 * @param a one string
 * @param b the other
 * @returns the distance
 *
 * @example Two edits apart
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { levenshteinDistance } from "@std/text";
 * assertEquals(levenshteinDistance("modle", "model"), 2);
 * ```
 */
export function levenshteinDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** Options of {@linkcode closestString}. */
export interface ClosestStringOptions {
  /**
   * Whether case counts as a difference.
   * @default {false}
   */
  caseSensitive?: boolean;
}

/**
 * The word of a list closest to a given word by Levenshtein distance; the
 * first of equally close words.
 *
 * @param givenWord the word to match
 * @param possibleWords the candidates
 * @param options whether case counts
 * @returns the closest candidate
 * @throws {TypeError} when `possibleWords` is empty
 *
 * @example The flag meant
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { closestString } from "@std/text";
 * assertEquals(closestString("modle", ["model", "data", "device"]), "model");
 * ```
 */
export function closestString(
  givenWord: string,
  possibleWords: readonly string[],
  options: ClosestStringOptions = {},
): string {
  if (possibleWords.length === 0) {
    throw new TypeError("When using closestString(), the possibleWords array must not be empty");
  }
  const fold = (s: string) => (options.caseSensitive ? s : s.toLowerCase());
  const given = fold(givenWord);
  let best = possibleWords[0]!;
  let bestDistance = Infinity;
  for (const word of possibleWords) {
    const d = levenshteinDistance(given, fold(word));
    if (d < bestDistance) {
      best = word;
      bestDistance = d;
    }
  }
  return best;
}
