/**
 * The errors the SDK throws for conditions a caller will catch: bytes that do
 * not match their digest, a model or version the registry does not have, a
 * registry that refused a request, and a cache that cannot answer offline.
 *
 * @module
 */

/** An RFC 9457 problem document, as the registry sends it. */
export interface Problem {
  /** A URI naming the kind of problem; `about:blank` when none. */
  type: string;
  /** A short summary of the kind of problem, e.g. `Version exists`. */
  title: string;
  /** The HTTP status. */
  status: number;
  /** What went wrong with this request and what to do about it. */
  detail: string;
}

/**
 * Bytes hash to a different digest than the manifest lists. Whatever was
 * downloaded is deleted before this is thrown, so nothing unverified stays in
 * the cache.
 *
 * @example Catch a corrupted download
 * ```ts
 * import { IntegrityError } from "./errors.ts";
 * const e = new IntegrityError("model.json", `sha256:${"a".repeat(64)}`, `sha256:${"b".repeat(64)}`);
 * console.log(e instanceof IntegrityError, e.expected); // true sha256:aaa…
 * ```
 */
export class IntegrityError extends Error {
  /**
   * Builds the error from what was checked and the two digests.
   *
   * @param what what was checked, e.g. a file path or a URL
   * @param expected the digest the manifest lists
   * @param actual the digest of the bytes received
   * @param hint what happened to the bytes or what to do next
   */
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
    hint = "the download was discarded; retry, and report the registry if it persists",
  ) {
    super(`Integrity check failed for "${what}": expected "${expected}", got "${actual}": ${hint}`);
    this.name = "IntegrityError";
  }
}

/**
 * The registry answered with an error. Carries the status and the server's
 * problem document so a caller can branch on `status` (401, 403, 409, 422, …).
 *
 * @example Branch on the status
 * ```ts
 * import { RegistryError } from "./errors.ts";
 * const e = new RegistryError("Cannot publish \"zoo/x@1.0.0\"", "http://localhost:8000/api/models/zoo/x/1.0.0", {
 *   type: "about:blank", title: "Version exists", status: 409, detail: "versions are immutable; bump the version",
 * });
 * console.log(e.status, e.message); // 409 Cannot publish "zoo/x@1.0.0": version exists (409): versions are immutable; bump the version
 * ```
 */
export class RegistryError extends Error {
  /** The HTTP status, e.g. 409. */
  readonly status: number;

  /**
   * Builds the error from the registry's answer; the message joins the action, title, status and detail.
   *
   * @param action what was attempted, e.g. `Cannot publish "zoo/x@1.0.0"`
   * @param url the URL that answered
   * @param problem the server's problem document (or one built from the status line)
   */
  constructor(readonly action: string, readonly url: string, readonly problem: Problem) {
    super(`${action}: ${lowerFirst(problem.title)} (${problem.status}): ${problem.detail}`);
    this.name = "RegistryError";
    this.status = problem.status;
  }
}

/**
 * The registry has no such model, version, tag or blob (HTTP 404).
 *
 * @example Tell a missing model from other failures
 * ```ts
 * import { NotFoundError, RegistryError } from "./errors.ts";
 * const e = new NotFoundError("Cannot resolve \"zoo/nope@latest\"", "http://localhost:8000/api/models/zoo/nope/latest", {
 *   type: "about:blank", title: "Not found", status: 404, detail: "model \"zoo/nope\" does not exist",
 * });
 * console.log(e instanceof RegistryError, e.status); // true 404
 * ```
 */
export class NotFoundError extends RegistryError {
  /**
   * Builds the error from the registry's 404 answer.
   *
   * @param action what was attempted
   * @param url the URL that answered 404
   * @param problem the server's problem document
   */
  constructor(action: string, url: string, problem: Problem) {
    super(action, url, problem);
    this.name = "NotFoundError";
  }
}

/**
 * Offline mode was asked for something the cache does not hold.
 *
 * @example Explain what is missing
 * ```ts
 * import { OfflineError } from "./errors.ts";
 * const e = new OfflineError("zoo/lenet5@latest", "no cached ref \"latest\" for zoo/lenet5");
 * console.log(e.message);
 * ```
 */
export class OfflineError extends Error {
  /**
   * Builds the error from the reference and what the cache lacks.
   *
   * @param reference the reference being loaded, e.g. `zoo/lenet5@latest`
   * @param missing what the cache lacks
   */
  constructor(readonly reference: string, readonly missing: string) {
    super(
      `Cannot load "${reference}" offline: ${missing}; run once online or pass an exact cached version`,
    );
    this.name = "OfflineError";
  }
}

function lowerFirst(s: string): string {
  // "Not Found" and "Version exists" read as "not found", "version exists" mid-sentence;
  // acronyms ("URL too long") stay as they are.
  return /^[A-Z][a-z]*(?: [A-Za-z][a-z]*)*$/.test(s) ? s.toLowerCase() : s;
}
