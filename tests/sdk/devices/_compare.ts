/** Helpers shared by the device tests: seeded data and cpu-vs-wasm comparison. */
import * as tf from "@tensorflow/tfjs";
import { assert } from "@std/assert";

/** Deterministic normal-ish values (sum of uniforms), so both backends see the same inputs. */
export function seeded(shape: number[], seed: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  for (let i = 0; i < n; i++) out[i] = next() + next() + next() - 1.5;
  return out;
}

/**
 * Runs `fn` with `Math.random` drawing from a seeded generator, so that tfjs
 * initializers without a seed of their own (they seed themselves from
 * `Math.random`) give the same weights on every run.
 */
export function withSeededRandom<T>(seed: number, fn: () => T): T {
  const original = Math.random;
  let s = seed >>> 0 || 1;
  Math.random = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}

/** {@linkcode seeded} values with their shape: a tensor's data, to create on either backend. */
export function seededTensor(
  shape: number[],
  seed: number,
): { values: Float32Array; shape: number[] } {
  return { values: seeded(shape, seed), shape };
}

/** Max |a − b| over max |b|. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert(
    actual.length === expected.length,
    `lengths ${actual.length} and ${expected.length} differ`,
  );
  let num = 0, den = 0;
  for (let i = 0; i < actual.length; i++) {
    num = Math.max(num, Math.abs(actual[i]! - expected[i]!));
    den = Math.max(den, Math.abs(expected[i]!));
  }
  return num / (den || 1);
}

/**
 * Asserts that `actual` is within `tol` of `expected` by
 * {@linkcode relativeError}; the message names `what` and the error.
 */
export function assertNear(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  const err = relativeError(actual, expected);
  assert(err <= tol, `${what}: relative error ${err}`);
}

/** Runs `f` on cpu then on wasm and returns both results' values. */
export async function onBoth(
  f: () => tf.Tensor,
): Promise<{ cpu: Float32Array; wasm: Float32Array; shape: number[] }> {
  const values = async (backend: string) => {
    await tf.setBackend(backend);
    const t = tf.tidy(f);
    const v = t.dataSync() as Float32Array;
    const shape = t.shape;
    t.dispose();
    return { v, shape };
  };
  const c = await values("cpu");
  const w = await values("wasm");
  assert(
    JSON.stringify(c.shape) === JSON.stringify(w.shape),
    `shapes ${c.shape} and ${w.shape} differ`,
  );
  return { cpu: c.v, wasm: w.v, shape: w.shape };
}
