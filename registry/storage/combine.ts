/**
 * Joins a metadata backend and a blob backend into one {@linkcode Store}, so
 * that any metadata store (SQLite, PostgreSQL) runs with any blob store (a
 * folder, S3): the store answers metadata calls from the one and hands out
 * the other as `blobs`.
 *
 * @module
 */

import type {
  BlobBackend,
  ListQuery,
  MetadataBackend,
  ModelRecord,
  NewVersion,
  Revision,
  Store,
  TokenRecord,
  VersionRecord,
} from "./store.ts";

/**
 * One store from a metadata backend and a blob backend. Closing it closes
 * both: the blobs first (cancelling uploads in progress), then the metadata
 * (writing the download counts it holds).
 *
 * @param metadata models, versions, tags, downloads and tokens
 * @param blobs content-addressed bytes
 * @returns the store; it owns both backends
 *
 * @example Join the embedded backends
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { combineStores } from "./combine.ts";
 * import { openFsBlobStore } from "./fs_blobs.ts";
 * import { openSqliteMetadataStore } from "./sqlite_metadata.ts";
 * const dir = await Deno.makeTempDir();
 * const blobs = await openFsBlobStore(dir);
 * const store = combineStores(await openSqliteMetadataStore(dir), blobs);
 * assertEquals(store.blobs, blobs);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function combineStores(metadata: MetadataBackend, blobs: BlobBackend): Store {
  return new CombinedStore(metadata, blobs);
}

class CombinedStore implements Store {
  readonly blobs: BlobBackend;
  readonly #meta: MetadataBackend;

  constructor(metadata: MetadataBackend, blobs: BlobBackend) {
    this.#meta = metadata;
    this.blobs = blobs;
  }

  publish(v: NewVersion): Promise<VersionRecord> {
    return this.#meta.publish(v);
  }

  getModel(namespace: string, name: string): Promise<ModelRecord | null> {
    return this.#meta.getModel(namespace, name);
  }

  getVersion(namespace: string, name: string, version: string): Promise<VersionRecord | null> {
    return this.#meta.getVersion(namespace, name, version);
  }

  setTag(
    namespace: string,
    name: string,
    tag: string,
    version: string,
    at?: string,
  ): Promise<void> {
    return this.#meta.setTag(namespace, name, tag, version, at);
  }

  setYanked(
    namespace: string,
    name: string,
    version: string,
    yanked: boolean,
    at?: string,
  ): Promise<void> {
    return this.#meta.setYanked(namespace, name, version, yanked, at);
  }

  countDownload(namespace: string, name: string, version: string): Promise<number> {
    return this.#meta.countDownload(namespace, name, version);
  }

  revision(namespace: string, name: string): Promise<Revision> {
    return this.#meta.revision(namespace, name);
  }

  listModels(q: ListQuery): Promise<{ items: ModelRecord[]; nextCursor: string | null }> {
    return this.#meta.listModels(q);
  }

  addToken(t: TokenRecord): Promise<void> {
    return this.#meta.addToken(t);
  }

  findToken(hash: string): Promise<TokenRecord | null> {
    return this.#meta.findToken(hash);
  }

  exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.#meta.exclusive(name, fn);
  }

  flush(): Promise<void> {
    return this.#meta.flush();
  }

  async close(): Promise<void> {
    try {
      await this.blobs.close();
    } finally {
      await this.#meta.close();
    }
  }
}
