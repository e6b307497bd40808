/**
 * SHA-256 of bytes in memory, of files, and of files read into memory in the
 * same pass: every digest the client computes or checks comes from here.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";

/** Files are read (and hashed) in chunks of this size. */
const READ_CHUNK = 4 << 20;

/**
 * The SHA-256 digest of bytes held in memory.
 *
 * @param bytes the content
 * @returns `sha256:<hex>`
 *
 * @example Hash a string
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { sha256 } from "./hash.ts";
 * assertEquals(
 *   sha256(new TextEncoder().encode("abc")),
 *   "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
 * );
 * ```
 */
export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/**
 * The SHA-256 digest of a file, read as a stream so large shards are not held in memory.
 *
 * @param path the file
 * @returns `sha256:<hex>`
 * @throws {Deno.errors.NotFound} when the file does not exist
 *
 * @example Hash a file
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { hashFile, sha256 } from "./hash.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * assertEquals(await hashFile(path), sha256(new TextEncoder().encode("abc")));
 * await Deno.remove(path);
 * ```
 */
export async function hashFile(path: string): Promise<string> {
  using file = await Deno.open(path);
  const h = createHash("sha256");
  await readHashed(file, new Uint8Array(2 * READ_CHUNK), h, Infinity);
  return `sha256:${h.digest("hex")}`;
}

/**
 * Reads a whole file into memory and hashes it in the same pass (each chunk
 * while the next one is read).
 *
 * @param path the file
 * @returns its bytes and `sha256:<hex>`
 * @throws {Deno.errors.NotFound} when the file does not exist
 *
 * @example Read and hash a file
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { readFileHashed, sha256 } from "./hash.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, new Uint8Array([1, 2, 3]));
 * const { bytes, digest } = await readFileHashed(path);
 * assertEquals([bytes.byteLength, digest], [3, sha256(new Uint8Array([1, 2, 3]))]);
 * await Deno.remove(path);
 * ```
 */
export async function readFileHashed(
  path: string,
): Promise<{ bytes: Uint8Array<ArrayBuffer>; digest: string }> {
  using file = await Deno.open(path);
  const size = (await file.stat()).size;
  const h = createHash("sha256");
  const bytes = new Uint8Array(size);
  const n = await readHashed(file, bytes, h);
  if (n !== size) throw new Error(`Cannot read "${path}": it changed size while it was read`);
  return { bytes, digest: `sha256:${h.digest("hex")}` };
}

/**
 * Reads `file` from its position into `target` (up to `limit` bytes, by
 * default its length; `target` is reused as a ring when shorter), hashing
 * each chunk while the next one is read.
 *
 * @returns the number of bytes read
 */
export async function readHashed(
  file: Deno.FsFile,
  target: Uint8Array,
  hash: Hash,
  limit = target.byteLength,
): Promise<number> {
  const ring = limit > target.byteLength;
  const chunk = ring ? target.byteLength >>> 1 : READ_CHUNK;
  let total = 0;
  let slot = 0;
  let last: Uint8Array | undefined;
  for (;;) {
    // In a ring, the half being read is never the half being hashed.
    const at = ring ? slot * chunk : total;
    const want = Math.min(chunk, limit - total);
    const reading = want > 0 ? file.read(target.subarray(at, at + want)) : null;
    if (last) hash.update(last);
    last = undefined;
    const n = reading === null ? null : await reading;
    if (n === null || n === 0) break;
    last = target.subarray(at, at + n);
    total += n;
    slot ^= 1;
  }
  return total;
}
