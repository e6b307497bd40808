/**
 * Names, versions, tags, digests and references: the strict patterns every
 * value is checked against before it reaches a store, a path or a URL.
 *
 * @module
 */

/** One part of a model name: lowercase letters, digits, `-`, `_`, `.`; 1-64 chars; starts with a letter or digit; no `..`. */
export const NAME_PART = /^(?!.*\.\.)[a-z0-9][a-z0-9._-]{0,63}$/;
/** A semantic version (semver.org 2.0.0), without a leading `v`. */
export const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
/** A tag: starts with a letter, then letters, digits, `-`, `_`, `.`; at most 64 chars. */
export const TAG = /^[a-z][a-z0-9._-]{0,63}$/;
/** A content digest: `sha256:` and 64 lowercase hex digits. */
export const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** A file path inside a checkpoint: relative, `/`-separated, no `.`/`..` segments. */
export const FILE_PATH = /^(?!.*(?:^|\/)\.{1,2}(?:\/|$))[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

/** A parsed model reference. */
export interface ModelRef {
  /** The namespace, e.g. `zoo`. */
  namespace: string;
  /** The model name, e.g. `lenet5`. */
  name: string;
  /** A version or a tag; `latest` when the reference had none. */
  ref: string;
}

/**
 * Checks one part of a model name.
 *
 * @param kind what the value is, for the message ("namespace" or "name")
 * @param value the value to check
 * @throws {RangeError} when it does not match {@linkcode NAME_PART}
 */
export function checkNamePart(kind: string, value: string): void {
  if (!NAME_PART.test(value)) {
    throw new RangeError(
      `Invalid ${kind} "${
        printable(value)
      }": use 1-64 lowercase letters, digits, "-", "_" or ".", starting with a letter or digit`,
    );
  }
}

/**
 * Tells whether a string is a semantic version.
 *
 * @param value the candidate
 * @returns true for `1.2.0`, `1.0.0-rc.1`; false for `v1`, `1.2`
 */
export function isSemver(value: string): boolean {
  return value.length <= 128 && SEMVER.test(value);
}

/**
 * Parses `namespace/name`, `namespace/name@1.2.0` or `namespace/name@tag`;
 * a bare name means `@latest`.
 *
 * @param reference the reference
 * @returns its parts
 * @throws {RangeError} when a part is invalid
 *
 * @example Parse a reference
 * ```ts
 * import { parseRef } from "./names.ts";
 * const r = parseRef("zoo/lenet5@1.0.0");
 * console.log(r.namespace, r.name, r.ref); // zoo lenet5 1.0.0
 * ```
 */
export function parseRef(reference: string): ModelRef {
  const at = reference.indexOf("@");
  const path = at === -1 ? reference : reference.slice(0, at);
  const ref = at === -1 ? "latest" : reference.slice(at + 1);
  const parts = path.split("/");
  if (parts.length !== 2) {
    throw new RangeError(
      `Invalid model reference "${
        printable(reference)
      }": use "namespace/name", "namespace/name@1.2.0" or "namespace/name@tag"`,
    );
  }
  const [namespace = "", name = ""] = parts;
  checkNamePart("namespace", namespace);
  checkNamePart("name", name);
  if (!isSemver(ref) && !TAG.test(ref)) {
    throw new RangeError(
      `Invalid version or tag "${printable(ref)}" in "${
        printable(reference)
      }": use a semver version such as "1.2.0" or a tag such as "latest"`,
    );
  }
  return { namespace, name, ref };
}

/**
 * Formats a reference back to `namespace/name@ref`.
 *
 * @param r the parts
 * @returns the reference string
 */
export function formatRef(r: ModelRef): string {
  return `${r.namespace}/${r.name}@${r.ref}`;
}

/**
 * Compares two semantic versions by precedence (build metadata ignored).
 *
 * @param a a version
 * @param b another version
 * @returns negative when a < b, 0 when equal, positive when a > b
 */
export function compareSemver(a: string, b: string): number {
  const pa = SEMVER.exec(a);
  const pb = SEMVER.exec(b);
  if (!pa || !pb) {
    throw new RangeError(
      `Cannot compare "${a}" and "${b}": not semver versions`,
    );
  }
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return d;
  }
  const ra = pa[4];
  const rb = pb[4];
  if (ra === undefined || rb === undefined) {
    return ra === rb ? 0 : ra === undefined ? 1 : -1;
  }
  const xa = ra.split(".");
  const xb = rb.split(".");
  for (let i = 0; i < Math.max(xa.length, xb.length); i++) {
    const x = xa[i];
    const y = xb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
    } else if (nx !== ny) return nx ? -1 : 1;
    else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Makes a value safe to quote in a message: control characters escaped, long values cut. */
export function printable(value: string): string {
  // deno-lint-ignore no-control-regex
  const controls = /[\u0000-\u001f\u007f]/g;
  const s = value.replace(
    controls,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
