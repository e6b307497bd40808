/**
 * Registry storage: the {@linkcode Store} interface every backend implements,
 * and the embedded backend (SQLite metadata plus a content-addressed blob
 * folder) opened with {@linkcode openSqliteFsStore}.
 *
 * @example Open the embedded store
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { openSqliteFsStore, type Store } from "./mod.ts";
 * const dir = await Deno.makeTempDir();
 * const store: Store = await openSqliteFsStore(dir);
 * assertEquals(await store.getModel("zoo", "lenet5"), null);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

export * from "./store.ts";
export { openSqliteFsStore, type SqliteFsOptions } from "./sqlite_fs.ts";
export { combineStores } from "./combine.ts";
export { openFsBlobStore } from "./fs_blobs.ts";
export { openSqliteMetadataStore, type SqliteMetadataOptions } from "./sqlite_metadata.ts";
