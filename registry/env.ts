/**
 * What every part of the registry app shares: the variables handlers find in
 * `c.var` and the limits. Its own module so that the app, its middleware, its
 * routes and its pages all import it without importing one another.
 *
 * @module
 */
import type { AuthOptions } from "./auth.ts";
import type { Store } from "./storage/store.ts";

/** Size and time limits of a registry. */
export interface Limits {
  /**
   * Largest blob accepted, in bytes.
   * @default 4 GiB
   */
  maxBlobBytes: number;
  /**
   * Largest publish request (the JSON manifest), in bytes.
   * @default 1 MiB
   */
  maxManifestBytes: number;
  /**
   * Longest a request may take before it is answered with 503, in ms.
   * @default 600000
   */
  requestTimeoutMs: number;
}

/** The defaults of {@linkcode Limits}. */
export const DEFAULT_LIMITS: Limits = {
  maxBlobBytes: 4 * 1024 ** 3,
  maxManifestBytes: 1024 ** 2,
  requestTimeoutMs: 10 * 60 * 1000,
};

/** What handlers find in `c.var`. */
export type RegistryEnv = {
  Variables: {
    store: Store;
    limits: Limits;
    auth: AuthOptions;
    /** The request token's scopes; empty when anonymous. */
    scopes: string[];
    /** The token's label, recorded as publisher. */
    tokenLabel: string;
    /** Aborted when the request outlives `requestTimeoutMs`; read bodies through `requestBody`. */
    deadline: AbortSignal;
  };
};
