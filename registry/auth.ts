/**
 * Bearer tokens: minted once, stored as SHA-256 hashes, with scopes `read`,
 * `publish:<namespace>` and `admin`.
 *
 * @module
 */
import { encodeHex } from "./_hex.ts";
import type { MetadataStore, TokenRecord } from "./storage/store.ts";
import { NAME_PART } from "../core/names.ts";

/** How the registry treats requests. */
export interface AuthOptions {
  /**
   * When true, reads need a token with `read` (or `admin`).
   * @default false
   */
  private?: boolean;
}

/** A scope string: `read`, `admin` or `publish:<namespace>`. */
export const SCOPE = /^(read|admin|publish:[a-z0-9][a-z0-9._-]{0,63})$/;

/**
 * Hashes a token secret for storage and lookup.
 *
 * @param token the whole token as the client sends it
 * @returns SHA-256 hex
 */
export async function hashToken(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return encodeHex(new Uint8Array(digest));
}

/**
 * Mints a token, stores its hash and returns the secret (shown once).
 *
 * @param store where tokens live
 * @param scopes what the token may do
 * @param label who or what it is for
 * @returns the token to hand out and its stored record
 * @throws {RangeError} on an unknown scope
 *
 * @example Mint a publishing token
 * ```ts ignore
 * const { token } = await createToken(store, ["publish:zoo"], "ci");
 * ```
 */
export async function createToken(
  store: MetadataStore,
  scopes: string[],
  label = "",
): Promise<{ token: string; record: TokenRecord }> {
  if (scopes.length === 0) {
    throw new RangeError(
      'Cannot create a token without a scope: pass "read", "publish:<namespace>" or "admin"',
    );
  }
  for (const s of scopes) {
    if (!SCOPE.test(s)) {
      throw new RangeError(`Invalid scope "${s}": use "read", "publish:<namespace>" or "admin"`);
    }
  }
  const id = encodeHex(crypto.getRandomValues(new Uint8Array(4)));
  const secret = encodeHex(crypto.getRandomValues(new Uint8Array(24)));
  const token = `zoo_${id}_${secret}`;
  const record: TokenRecord = {
    id,
    hash: await hashToken(token),
    scopes,
    label,
    createdAt: new Date().toISOString(),
  };
  await store.addToken(record);
  return { token, record };
}

/**
 * Tells whether scopes allow publishing (or tagging, yanking) in a namespace.
 *
 * @param scopes the token's scopes
 * @param namespace the model's namespace
 * @returns true with `admin` or `publish:<namespace>`
 */
export function canPublish(scopes: readonly string[], namespace: string): boolean {
  return NAME_PART.test(namespace) &&
    (scopes.includes("admin") || scopes.includes(`publish:${namespace}`));
}

/**
 * Tells whether scopes allow reading a private registry.
 *
 * @param scopes the token's scopes
 * @returns true with `read` or `admin`; a publish scope alone does not read
 */
export function canRead(scopes: readonly string[]): boolean {
  return scopes.some((s) => s === "read" || s === "admin");
}
