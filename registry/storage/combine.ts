/**
 * Joins a metadata backend and a blob backend into one {@linkcode Store}, so
 * that any metadata store (SQLite, PostgreSQL) runs with any blob store (a
 * folder, S3): the store answers metadata calls from the one and hands out
 * the other as `blobs`.
 *
 * @module
 */

import type { BlobBackend, MetadataBackend, Store } from "./store.ts";

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

/** The metadata calls a combined store answers from its metadata backend. */
type MetadataCalls = Omit<MetadataBackend, "close">;

// Every metadata call goes straight to the metadata backend, bound to it, so
// the signatures are the interface's and are not restated here.
class CombinedStore implements Store {
  readonly blobs: BlobBackend;
  readonly #meta: MetadataBackend;
  readonly publish: MetadataCalls["publish"];
  readonly getModel: MetadataCalls["getModel"];
  readonly getVersion: MetadataCalls["getVersion"];
  readonly setTag: MetadataCalls["setTag"];
  readonly setYanked: MetadataCalls["setYanked"];
  readonly countDownload: MetadataCalls["countDownload"];
  readonly revision: MetadataCalls["revision"];
  readonly listModels: MetadataCalls["listModels"];
  readonly addToken: MetadataCalls["addToken"];
  readonly findToken: MetadataCalls["findToken"];
  readonly exclusive: MetadataCalls["exclusive"];
  readonly flush: MetadataCalls["flush"];

  constructor(metadata: MetadataBackend, blobs: BlobBackend) {
    this.blobs = blobs;
    this.#meta = metadata;
    this.publish = metadata.publish.bind(metadata);
    this.getModel = metadata.getModel.bind(metadata);
    this.getVersion = metadata.getVersion.bind(metadata);
    this.setTag = metadata.setTag.bind(metadata);
    this.setYanked = metadata.setYanked.bind(metadata);
    this.countDownload = metadata.countDownload.bind(metadata);
    this.revision = metadata.revision.bind(metadata);
    this.listModels = metadata.listModels.bind(metadata);
    this.addToken = metadata.addToken.bind(metadata);
    this.findToken = metadata.findToken.bind(metadata);
    this.exclusive = metadata.exclusive.bind(metadata);
    this.flush = metadata.flush.bind(metadata);
  }

  async close(): Promise<void> {
    try {
      await this.blobs.close();
    } finally {
      await this.#meta.close();
    }
  }
}
