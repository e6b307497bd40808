/**
 * Small file-system helpers of the cache and the client: sizes, absent files
 * as null or false rather than errors, and atomic writes.
 *
 * @module
 */

import { dirname } from "node:path";

/**
 * Whether a file is there.
 *
 * @param path the file
 * @returns true when it exists (a dangling link counts)
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Writes all of `data` at the file's position.
 *
 * @param file an open file
 * @param data the bytes
 */
export async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  for (let written = 0; written < data.byteLength;) {
    written += await file.write(data.subarray(written));
  }
}

/**
 * Whether a file is there with exactly this size.
 *
 * @param path the file
 * @param size the size in bytes
 * @returns false when it is absent or of another size
 */
export async function sizeIs(path: string, size: number): Promise<boolean> {
  try {
    return (await Deno.stat(path)).size === size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * A file's size, 0 when it is absent.
 *
 * @param path the file
 * @returns its size in bytes
 */
export async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

/**
 * A text file's content, null when it is absent.
 *
 * @param path the file
 * @returns its text or null
 */
export async function readTextOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Removes a file; an absent one is no error.
 *
 * @param path the file
 */
export async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * Writes a text file under a temporary name and renames it into place, so a
 * reader sees the old content or the new one, never a part.
 *
 * @param path the file
 * @param text its new content
 */
export async function writeAtomic(path: string, text: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  } catch (e) {
    await removeIfExists(tmp);
    throw e;
  }
}
