/**
 * The embedded backend: metadata in one SQLite file (`sqlite_metadata.ts`)
 * and blobs in a content-addressed folder (`fs_blobs.ts`), both under one
 * data directory laid out by `paths.ts`, joined by `combine.ts`.
 *
 * Several store instances, in one process or in several, may share a data
 * directory: every write to the database is one short synchronous transaction
 * (`BEGIN IMMEDIATE`), uploads lock their temporary file, and blobs appear by
 * an atomic rename.
 *
 * @module
 */

import { combineStores } from "./combine.ts";
import { openFsBlobStore } from "./fs_blobs.ts";
import { openSqliteMetadataStore, type SqliteMetadataOptions } from "./sqlite_metadata.ts";
import type { Store } from "./store.ts";

/** Options of {@linkcode openSqliteFsStore}. */
export type SqliteFsOptions = SqliteMetadataOptions;

/**
 * Opens (creating when needed) the embedded store in a data directory:
 * `zoo.sqlite` for metadata, `blobs/` for content and `uploads/` for uploads
 * in progress. Uploads left behind by a stopped process are removed.
 *
 * @param dataDir the data directory; created when absent
 * @param options how often counted downloads are written
 * @returns the store; call `close()` when done, or lose the downloads it
 *   counted since it last wrote them
 * @throws {Error} when the database was written by a newer schema
 *
 * @example Store a blob and publish a version
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { openSqliteFsStore } from "./sqlite_fs.ts";
 * const dir = await Deno.makeTempDir();
 * const store = await openSqliteFsStore(dir);
 * const w = await store.blobs.writer();
 * await w.write(new TextEncoder().encode("{}"));
 * const blob = await w.commit();
 * await store.publish({
 *   namespace: "zoo",
 *   name: "lenet5",
 *   version: "1.0.0",
 *   files: [{ path: "model.json", ...blob }],
 *   card: { task: "image-classification" },
 *   architecture: {},
 * });
 * assertEquals((await store.getModel("zoo", "lenet5"))?.tags.latest, "1.0.0");
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openSqliteFsStore(
  dataDir: string,
  options: SqliteFsOptions = {},
): Promise<Store> {
  const blobs = await openFsBlobStore(dataDir);
  try {
    return combineStores(await openSqliteMetadataStore(dataDir, options), blobs);
  } catch (e) {
    await blobs.close();
    throw e;
  }
}
