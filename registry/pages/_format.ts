/**
 * Small formatting helpers for the pages. Stored cards and architectures are
 * plain JSON whose shape may predate or postdate this code, so every reader
 * here accepts `unknown` and says "—" rather than throwing.
 *
 * @module
 */

/** What the pages print for a value that is missing. */
export const MISSING = "—";

/**
 * Tells whether a value is a plain object.
 *
 * @param x any value
 * @returns true for `{…}`, false for arrays and null
 */
export function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/**
 * A string field, or undefined.
 *
 * @param x any value
 * @returns the string when `x` is a non-empty string
 */
export function str(x: unknown): string | undefined {
  return typeof x === "string" && x !== "" ? x : undefined;
}

/**
 * A finite number, or undefined.
 *
 * @param x any value
 * @returns the number when `x` is finite
 */
export function num(x: unknown): number | undefined {
  return typeof x === "number" && Number.isFinite(x) ? x : undefined;
}

/**
 * An integer with thousands separators (`1,234,567`).
 *
 * @param x any value
 * @returns the formatted number, or {@linkcode MISSING}
 */
export function count(x: unknown): string {
  const n = num(x);
  return n === undefined ? MISSING : n.toLocaleString("en-US");
}

/**
 * A tensor shape as Keras prints it: `(None, 7, 7, 1280)`.
 *
 * @param x a shape (`(number | null)[]`), possibly missing
 * @returns the formatted shape, or {@linkcode MISSING}
 */
export function shape(x: unknown): string {
  if (!Array.isArray(x)) return MISSING;
  if (x.length > 0 && x.every(Array.isArray)) return x.map(shape).join(", ");
  return `(${x.map((d) => (typeof d === "number" ? String(d) : "None")).join(", ")})`;
}

/**
 * A spatial pair `[h, w]` as `h×w`, or `n` when both are equal.
 *
 * @param x a pair or a single number
 * @returns the formatted pair, or {@linkcode MISSING}
 */
export function pair(x: unknown): string {
  if (typeof x === "number") return String(x);
  if (!Array.isArray(x) || x.length !== 2) return MISSING;
  const [h, w] = x as unknown[];
  if (typeof h !== "number" || typeof w !== "number") return MISSING;
  return h === w ? String(h) : `${h}×${w}`;
}

/**
 * The date part of an ISO 8601 time (`2025-01-31`).
 *
 * @param iso an ISO 8601 time
 * @returns the date, or the input when it is not a time
 */
export function day(iso: string): string {
  return /^\d{4}-\d{2}-\d{2}/.exec(iso)?.[0] ?? iso;
}

/**
 * Cuts text to a length, ending with "…" when cut.
 *
 * @param text any text
 * @param max the longest result
 * @returns the text, at most `max` characters
 */
export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1).trimEnd()}…` : text;
}

/**
 * A JSON value in one line for a fact list: strings as is, arrays joined,
 * objects as `key: value` pairs.
 *
 * @param x any JSON value
 * @returns readable text
 */
export function plain(x: unknown): string {
  if (x === null || x === undefined) return MISSING;
  if (typeof x === "string") return x;
  if (typeof x === "number" || typeof x === "boolean") return String(x);
  if (Array.isArray(x)) return x.map(plain).join(", ");
  if (isRecord(x)) {
    return Object.entries(x).map(([k, v]) =>
      `${k}: ${Array.isArray(v) ? `[${plain(v)}]` : plain(v)}`
    )
      .join("; ");
  }
  return String(x);
}
