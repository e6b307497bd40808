/**
 * Copying named fields from one record into another, such as a run's
 * outcome into its lineage card, without writing `undefined` for the
 * optional ones that are not set. Private to `sdk/finetune/`.
 *
 * @module
 */

/**
 * The fields `keys` of `from`, in that order, leaving out those that are
 * `undefined` (so an optional field stays absent rather than present and
 * undefined, as `exactOptionalPropertyTypes` and JSON cards want).
 */
export function setFields<T extends object, K extends keyof T>(
  from: T,
  keys: readonly K[],
): Pick<T, K> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (from[key] !== undefined) out[key] = from[key];
  return out as Pick<T, K>;
}
