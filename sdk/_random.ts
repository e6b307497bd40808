/**
 * The seeded PRNG every part of the SDK shuffles with, so a seed means the
 * same order everywhere. Private to the SDK.
 *
 * @module
 */

/**
 * mulberry32: a tiny 32-bit PRNG, good enough for shuffles and the same on
 * every platform (Math.random cannot be seeded).
 *
 * @param seed any integer
 * @returns a function giving numbers in [0, 1)
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
