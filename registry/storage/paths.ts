/**
 * The on-disk layout of the embedded store, drawn once. Nothing else in the
 * registry builds a storage path:
 *
 * ```
 * <data>/zoo.sqlite                     metadata (SQLite, WAL)
 * <data>/blobs/sha256/<ab>/<abcdef…>    committed blobs, by digest
 * <data>/uploads/<random>.tmp           uploads in progress
 * ```
 *
 * A blob path is built only from a digest that matches `DIGEST`, so no request
 * value can reach the file system unchecked.
 *
 * @module
 */

import { join } from "node:path";
import { DIGEST, printable } from "../../core/names.ts";

/** The paths of one data directory. */
export interface StorageLayout {
  /** The data directory itself. */
  root: string;
  /** The SQLite database file. */
  database: string;
  /** The folder holding committed blobs (`blobs/sha256`). */
  blobs: string;
  /** The folder holding uploads in progress. */
  uploads: string;
}

/**
 * Draws the layout of a data directory.
 *
 * @param dataDir the data directory
 * @returns its paths
 *
 * @example Locate the database
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { storageLayout } from "./paths.ts";
 * const layout = storageLayout("/var/lib/zoo");
 * assertEquals(layout.database, "/var/lib/zoo/zoo.sqlite");
 * ```
 */
export function storageLayout(dataDir: string): StorageLayout {
  return {
    root: dataDir,
    database: join(dataDir, "zoo.sqlite"),
    blobs: join(dataDir, "blobs", "sha256"),
    uploads: join(dataDir, "uploads"),
  };
}

/**
 * The hex part of a digest, after checking it.
 *
 * @param digest `sha256:<64 lowercase hex>`
 * @returns the 64 hex digits
 * @throws {RangeError} when `digest` is not a valid digest
 */
export function digestHex(digest: string): string {
  if (!DIGEST.test(digest)) {
    throw new RangeError(
      `Invalid digest "${printable(digest)}": use "sha256:" followed by 64 lowercase hex digits`,
    );
  }
  return digest.slice("sha256:".length);
}

/**
 * The folder holding a blob: `<data>/blobs/sha256/<first two hex>`.
 *
 * @param layout the layout of the data directory
 * @param digest a digest
 * @returns the folder path
 * @throws {RangeError} when `digest` is not a valid digest
 */
export function blobDir(layout: StorageLayout, digest: string): string {
  return join(layout.blobs, digestHex(digest).slice(0, 2));
}

/**
 * The file holding a blob: `<data>/blobs/sha256/<first two hex>/<hex>`.
 *
 * @param layout the layout of the data directory
 * @param digest a digest
 * @returns the file path
 * @throws {RangeError} when `digest` is not a valid digest
 *
 * @example Locate a blob
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { blobPath, storageLayout } from "./paths.ts";
 * const digest = `sha256:${"ab".repeat(32)}`;
 * assertEquals(blobPath(storageLayout("/data"), digest), `/data/blobs/sha256/ab/${"ab".repeat(32)}`);
 * ```
 */
export function blobPath(layout: StorageLayout, digest: string): string {
  const hex = digestHex(digest);
  return join(layout.blobs, hex.slice(0, 2), hex);
}

/**
 * A fresh, unguessable path for an upload in progress:
 * `<data>/uploads/<random>.tmp`.
 *
 * @param layout the layout of the data directory
 * @returns the temporary file path
 */
export function uploadPath(layout: StorageLayout): string {
  return join(layout.uploads, `${crypto.randomUUID()}.tmp`);
}

/**
 * The path of an entry found in the uploads folder, when it names an upload
 * in progress (`<random>.tmp`).
 *
 * @param layout the layout of the data directory
 * @param fileName a bare file name, as listed by `Deno.readDir`
 * @returns the path, or null when the name is not an upload's
 */
export function uploadEntryPath(layout: StorageLayout, fileName: string): string | null {
  if (!/^[A-Za-z0-9-]+\.tmp$/.test(fileName)) return null;
  return join(layout.uploads, fileName);
}
