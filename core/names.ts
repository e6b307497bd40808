/**
 * Names, versions, tags, digests and references: the strict patterns every
 * value is checked against before it reaches a store, a path or a URL.
 * Versions are parsed and compared by the `semver` package (the one npm
 * itself uses), so precedence and prerelease rules follow semver.org exactly.
 *
 * @module
 */
import * as semver from "semver";

/** One part of a model name: lowercase letters, digits, `-`, `_`, `.`; 1-64 chars; starts with a letter or digit; no `..`. */
export const NAME_PART = /^(?!.*\.\.)[a-z0-9][a-z0-9._-]{0,63}$/;
/** A semantic version (semver.org 2.0.0), without a leading `v`: the pattern {@linkcode isSemver} accepts. */
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
  if (value.length > 128) return false;
  // Every GET of a version checks its reference; the same few come again and again.
  const known = SEMVER_SEEN.get(value);
  if (known !== undefined) return known;
  const answer = parseSemver(value);
  if (SEMVER_SEEN.size >= SEMVER_SEEN_MAX) SEMVER_SEEN.clear();
  SEMVER_SEEN.set(value, answer);
  return answer;
}

/** Answers of {@linkcode isSemver} by value; emptied when full. */
const SEMVER_SEEN = new Map<string, boolean>();
const SEMVER_SEEN_MAX = 4096;

function parseSemver(value: string): boolean {
  // semver.parse also accepts "v1.2.0", "=1.2.0" and spaces; only the canonical text is a version.
  const parsed = semver.parse(value);
  if (parsed === null) return false;
  const build = parsed.build.length > 0 ? `+${parsed.build.join(".")}` : "";
  return `${parsed.version}${build}` === value;
}

/**
 * Tells whether a semantic version is a prerelease (`1.0.0-rc.1`).
 *
 * @param version a version that {@linkcode isSemver} accepts
 * @returns true when it has a prerelease part
 *
 * @example A release candidate is a prerelease
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { isPrerelease } from "./names.ts";
 * assertEquals(isPrerelease("1.0.0-rc.1"), true);
 * assertEquals(isPrerelease("1.0.0+build.5"), false);
 * ```
 */
export function isPrerelease(version: string): boolean {
  return semver.prerelease(version) !== null;
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
 * import { assertEquals } from "@std/assert";
 * import { parseRef } from "./names.ts";
 * const r = parseRef("zoo/lenet5@1.0.0");
 * assertEquals([r.namespace, r.name, r.ref], ["zoo", "lenet5", "1.0.0"]);
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
  if (!isSemver(a) || !isSemver(b)) {
    throw new RangeError(
      `Cannot compare "${printable(a)}" and "${printable(b)}": not semver versions`,
    );
  }
  return semver.compare(a, b);
}

/**
 * The highest of some versions, releases first: a prerelease only when no
 * release is among them.
 *
 * @param versions semantic versions
 * @returns the highest, or undefined when there are none
 *
 * @example The highest release wins over a higher prerelease
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { highestVersion } from "./names.ts";
 * assertEquals(highestVersion(["1.0.0", "1.2.0", "2.0.0-rc.1"]), "1.2.0");
 * assertEquals(highestVersion(["2.0.0-rc.1", "2.0.0-rc.2"]), "2.0.0-rc.2");
 * ```
 */
export function highestVersion(versions: readonly string[]): string | undefined {
  // The range "*" matches releases only, unless prereleases are included.
  return semver.maxSatisfying([...versions], "*") ??
    semver.maxSatisfying([...versions], "*", { includePrerelease: true }) ?? undefined;
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
