/**
 * Opens the store a command asked for. Every command that opens a registry
 * store (the registry, `token`, the main job and its seeding) reads the same
 * flags and environment through {@linkcode storeConfig}:
 *
 * | flag                   | environment         | default         | selects                         |
 * | ---------------------- | ------------------- | --------------- | ------------------------------- |
 * | `--data DIR`           | `ZOO_DATA`          | `./.zoo-data`   | the embedded store's folder     |
 * | `--database-url URL`   | `ZOO_DATABASE_URL`  | (SQLite in DIR) | PostgreSQL for metadata         |
 * | `--blobs s3://B/P?...` | `ZOO_BLOBS_URL`     | (folder in DIR) | S3-compatible storage for blobs |
 *
 * S3 credentials come from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
 * Either backend works alone: PostgreSQL with the blob folder, or SQLite with
 * S3.
 *
 * @module
 */

import { combineStores } from "./combine.ts";
import { openFsBlobStore } from "./fs_blobs.ts";
import { openPgMetadataStore } from "./pg_metadata.ts";
import { openS3BlobStore } from "./s3_blobs.ts";
import { openSqliteMetadataStore } from "./sqlite_metadata.ts";
import type { BlobBackend, MetadataBackend, Store } from "./store.ts";
import { type EnvLookup, flagOrEnv } from "../../_std/program.ts";

/** How long a redirected blob URL stays valid, in seconds. */
const REDIRECT_SECONDS = 900;

/** Which backends to open. */
export interface StoreConfig {
  /** The embedded store's data directory (used for what no URL selects). */
  data: string;
  /** `postgres://…`: metadata in PostgreSQL instead of SQLite. */
  databaseUrl?: string;
  /** `s3://BUCKET/PREFIX?endpoint=URL&region=R`: blobs in object storage instead of the folder. */
  blobsUrl?: string;
  /** Blob GETs answer 302 to a presigned URL (needs `blobsUrl`). */
  blobRedirect?: boolean;
}

/** The flags of {@linkcode storeConfig}, for `parseArgs`'s `string` list. */
export const STORE_FLAGS = ["data", "database-url", "blobs"] as const;

/** The flag lines of a command's `--help` for {@linkcode STORE_FLAGS}. */
export const STORE_FLAGS_HELP =
  `  --data DIR             data dir (SQLite + blobs)  ZOO_DATA          ./.zoo-data
  --database-url URL     PostgreSQL for metadata    ZOO_DATABASE_URL  (SQLite in --data)
  --blobs URL            s3://BUCKET/PREFIX?endpoint=URL&region=R
                         S3 storage for blobs       ZOO_BLOBS_URL     (folder in --data)
                         (credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)`;

/**
 * Reads the store flags, then the environment, then the defaults.
 *
 * @param flags parsed flags (`data`, `database-url`, `blobs`)
 * @param env the environment lookup
 * @returns the configuration
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { storeConfig } from "./open.ts";
 * const env = (k: string) => ({ ZOO_DATABASE_URL: "postgres://db/zoo" } as Record<string, string>)[k];
 * assertEquals(storeConfig({ data: "/srv/zoo" }, env), {
 *   data: "/srv/zoo",
 *   databaseUrl: "postgres://db/zoo",
 * });
 * ```
 */
export function storeConfig(
  flags: Record<string, unknown>,
  env: EnvLookup = (k) => Deno.env.get(k),
): StoreConfig {
  const pick = (flag: string, name: string) => flagOrEnv(flags, flag, name, env);
  const config: StoreConfig = { data: pick("data", "ZOO_DATA") ?? "./.zoo-data" };
  const databaseUrl = pick("database-url", "ZOO_DATABASE_URL");
  if (databaseUrl !== undefined) config.databaseUrl = databaseUrl;
  const blobsUrl = pick("blobs", "ZOO_BLOBS_URL");
  if (blobsUrl !== undefined) config.blobsUrl = blobsUrl;
  return config;
}

/**
 * Says where a store keeps its data, without passwords, for logs.
 *
 * @param config the configuration
 * @returns e.g. `metadata: postgres://zoo@db:5432/zoo, blobs: s3://zoo/prod`
 */
export function describeStore(config: StoreConfig): string {
  const hide = (url: string) => {
    try {
      const u = new URL(url);
      if (u.password !== "") u.password = "***";
      return u.href;
    } catch {
      return url;
    }
  };
  if (config.databaseUrl === undefined && config.blobsUrl === undefined) {
    return `data: ${config.data}`;
  }
  return `metadata: ${
    config.databaseUrl === undefined ? `${config.data} (SQLite)` : hide(config.databaseUrl)
  }, blobs: ${config.blobsUrl === undefined ? `${config.data} (folder)` : config.blobsUrl}`;
}

/**
 * Opens the backends a configuration selects, joined as one store.
 *
 * @param config where metadata and blobs live
 * @returns the store; call `close()` when done
 * @throws {TypeError} when a URL is invalid or S3 credentials are missing
 * @throws {Error} when a database or bucket cannot be reached
 *
 * @example The embedded store
 * ```ts
 * import { openStore } from "./open.ts";
 * const data = await Deno.makeTempDir();
 * const store = await openStore({ data });
 * await store.close();
 * await Deno.remove(data, { recursive: true });
 * ```
 */
export async function openStore(config: StoreConfig): Promise<Store> {
  if (config.blobRedirect && config.blobsUrl === undefined) {
    throw new TypeError(
      "Cannot redirect blob downloads without object storage: add --blobs s3://BUCKET/PREFIX?endpoint=URL&region=R, or drop --blob-redirect",
    );
  }
  const blobs: BlobBackend = config.blobsUrl !== undefined
    ? await openS3BlobStore(
      config.blobsUrl,
      config.blobRedirect ? { redirectSeconds: REDIRECT_SECONDS } : {},
    )
    : await openFsBlobStore(config.data);
  let metadata: MetadataBackend;
  try {
    if (config.databaseUrl !== undefined) {
      metadata = await openPgMetadataStore(config.databaseUrl);
    } else {
      await Deno.mkdir(config.data, { recursive: true });
      metadata = await openSqliteMetadataStore(config.data);
    }
  } catch (e) {
    await blobs.close();
    throw e;
  }
  return combineStores(metadata, blobs);
}
