/**
 * The local cache of checkpoints, laid out like the Hugging Face hub cache and
 * drawn once, here; nothing else builds a cache path:
 *
 * ```
 * <cache>/blobs/sha256/<hex>                          verified content, by digest
 * <cache>/blobs/sha256/<hex>.partial                  an interrupted download, kept for resume
 * <cache>/blobs/sha256/<hex>.<random>.partial         a download in progress (one per downloader)
 * <cache>/models/<ns>/<name>/refs/<tag-or-version>    the version a tag resolved to
 * <cache>/models/<ns>/<name>/versions/<v>/manifest.json  the version document
 * <cache>/models/<ns>/<name>/versions/<v>/files/<path>   links to the blobs (a browsable folder)
 * ```
 *
 * Every blob is hashed when it is used, not only when it is downloaded, so a
 * cached file that was corrupted on disk is noticed, removed and refetched.
 *
 * Concurrency: a download writes to its own random `.partial` name and becomes
 * visible by an atomic rename to `<hex>`; two processes fetching the same blob
 * both succeed and the second rename replaces identical bytes. To resume, a
 * downloader claims the shared `<hex>.partial` by renaming it to its own
 * random name, so at most one process appends to it; an interrupted download
 * is renamed back to `<hex>.partial` for the next one.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { dirname, join, relative } from "node:path";
import { DIGEST, FILE_PATH, isSemver, NAME_PART, printable, TAG } from "./names.ts";
import { IntegrityError, RegistryError } from "./errors.ts";
import type { VersionDocument } from "./client.ts";

/** How many times one download is attempted (resuming each time) before giving up. */
const ATTEMPTS = 3;

/**
 * The SHA-256 digest of bytes held in memory.
 *
 * @param bytes the content
 * @returns `sha256:<hex>`
 *
 * @example Hash a string
 * ```ts
 * import { sha256 } from "./cache.ts";
 * console.log(sha256(new TextEncoder().encode("abc"))); // sha256:ba7816bf…
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
 * ```ts ignore
 * import { hashFile } from "./cache.ts";
 * console.log(await hashFile("model.json"));
 * ```
 */
export async function hashFile(path: string): Promise<string> {
  const h = createHash("sha256");
  const file = await Deno.open(path);
  const buf = new Uint8Array(1 << 20);
  try {
    for (;;) {
      const n = await file.read(buf);
      if (n === null) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    file.close();
  }
  return `sha256:${h.digest("hex")}`;
}

/**
 * Opens the bytes of a blob from `start` on: a `Range: bytes=<start>-` request
 * when `start > 0`. Resolves to a 206 (range honoured), 200 (whole blob) or
 * 416 response; should throw a {@linkcode RegistryError} for other statuses.
 */
export type OpenRange = (start: number) => Promise<Response>;

/** The local cache: content-addressed blobs, refs and version documents. */
export class ZooCache {
  /**
   * Opens the cache rooted at a folder; nothing is created until something is written.
   *
   * @param root the cache folder, e.g. `~/.cache/deno-model-zoo`
   *
   * @example Locate a blob
   * ```ts
   * import { ZooCache } from "./cache.ts";
   * const cache = new ZooCache("/tmp/zoo-cache");
   * console.log(cache.blobPath(`sha256:${"ab".repeat(32)}`)); // /tmp/zoo-cache/blobs/sha256/abab…
   * ```
   */
  constructor(readonly root: string) {}

  /**
   * The file of a verified blob.
   *
   * @param digest `sha256:<hex>`
   * @returns `<cache>/blobs/sha256/<hex>`
   * @throws {RangeError} when `digest` is not a valid digest
   */
  blobPath(digest: string): string {
    return join(this.root, "blobs", "sha256", hexOf(digest));
  }

  /**
   * The file holding the version a tag (or version) resolved to.
   *
   * @param namespace the namespace
   * @param name the model name
   * @param ref a tag or version
   * @returns `<cache>/models/<ns>/<name>/refs/<ref>`
   * @throws {RangeError} when a part is invalid
   */
  refPath(namespace: string, name: string, ref: string): string {
    if (!isSemver(ref) && !TAG.test(ref)) {
      throw new RangeError(`Invalid version or tag "${printable(ref)}": use a semver or a tag`);
    }
    return join(this.#modelDir(namespace, name), "refs", ref);
  }

  /**
   * The folder of one cached version.
   *
   * @param namespace the namespace
   * @param name the model name
   * @param version an exact version
   * @returns `<cache>/models/<ns>/<name>/versions/<version>`
   * @throws {RangeError} when a part is invalid
   */
  versionDir(namespace: string, name: string, version: string): string {
    if (!isSemver(version)) {
      throw new RangeError(`Invalid version "${printable(version)}": use a semver version`);
    }
    return join(this.#modelDir(namespace, name), "versions", version);
  }

  /**
   * Reads the version a tag resolved to when it was last seen online.
   *
   * @param namespace the namespace
   * @param name the model name
   * @param ref a tag or version
   * @returns the version, or null when the ref was never cached
   */
  async readRef(namespace: string, name: string, ref: string): Promise<string | null> {
    const text = await readTextOrNull(this.refPath(namespace, name, ref));
    if (text === null) return null;
    const version = text.trim();
    return isSemver(version) ? version : null;
  }

  /**
   * Records the version a tag resolved to (atomically).
   *
   * @param namespace the namespace
   * @param name the model name
   * @param ref a tag or version
   * @param version the version it resolved to
   */
  async writeRef(namespace: string, name: string, ref: string, version: string): Promise<void> {
    await writeAtomic(this.refPath(namespace, name, ref), `${version}\n`);
  }

  /**
   * Reads a cached version document.
   *
   * @param namespace the namespace
   * @param name the model name
   * @param version an exact version
   * @returns the document, or null when not cached (or unreadable)
   */
  async readVersion(
    namespace: string,
    name: string,
    version: string,
  ): Promise<VersionDocument | null> {
    const text = await readTextOrNull(
      join(this.versionDir(namespace, name, version), "manifest.json"),
    );
    if (text === null) return null;
    try {
      const doc = JSON.parse(text) as VersionDocument;
      return doc.version === version && Array.isArray(doc.files) ? doc : null;
    } catch {
      return null;
    }
  }

  /**
   * Stores a version document (atomically).
   *
   * @param doc the document the registry returned
   * @throws {RangeError} when its names or file entries are invalid
   */
  async writeVersion(doc: VersionDocument): Promise<void> {
    for (const f of doc.files) checkFileEntry(f);
    const path = join(this.versionDir(doc.namespace, doc.name, doc.version), "manifest.json");
    await writeAtomic(path, JSON.stringify(doc, null, 2));
  }

  /**
   * Tells whether a blob is cached with the right content; a corrupted copy is
   * removed so the caller refetches it.
   *
   * @param digest `sha256:<hex>`
   * @returns true when `<cache>/blobs/sha256/<hex>` hashes to `digest`
   */
  async hasBlob(digest: string): Promise<boolean> {
    const path = this.blobPath(digest);
    let actual: string;
    try {
      actual = await hashFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
    if (actual === digest) return true;
    await removeIfExists(path);
    return false;
  }

  /**
   * Reads a cached blob and checks its bytes against the digest, in one pass
   * over the same bytes that are returned, so nothing unverified is used.
   *
   * @param digest `sha256:<hex>`
   * @returns the bytes, or null when absent or corrupted (a corrupted copy is removed)
   */
  async readBlob(digest: string): Promise<Uint8Array | null> {
    const path = this.blobPath(digest);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
    if (sha256(bytes) === digest) return bytes;
    await removeIfExists(path);
    return null;
  }

  /**
   * Downloads a blob into the cache unless a verified copy is there: resumes a
   * kept `.partial` with a Range request, restarts from 0 when the server
   * ignores Range, retries a cut connection, and verifies the digest before
   * the blob becomes visible.
   *
   * @param digest the expected `sha256:<hex>`
   * @param size the expected length in bytes
   * @param open opens the bytes from an offset (see {@linkcode OpenRange})
   * @param onBytes called with the number of bytes held so far, as they arrive
   * @throws {IntegrityError} when the bytes hash to another digest; nothing is kept
   * @throws {RegistryError} when the server refuses the request
   * @throws {TypeError} when the connection fails on every attempt; what arrived is kept for resume
   */
  async download(
    digest: string,
    size: number,
    open: OpenRange,
    onBytes: (held: number) => void = () => {},
  ): Promise<void> {
    const final = this.blobPath(digest);
    if (await this.hasBlob(digest)) {
      onBytes(size);
      return;
    }
    const dir = dirname(final);
    await Deno.mkdir(dir, { recursive: true });
    const hex = hexOf(digest);
    const shared = join(dir, `${hex}.partial`);
    const mine = join(dir, `${hex}.${crypto.randomUUID().replaceAll("-", "")}.partial`);
    try {
      await Deno.rename(shared, mine);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    let restartedOnMismatch = false;
    for (let attempt = 1;; attempt++) {
      let start = await fileSize(mine);
      try {
        if (start > size) {
          await Deno.truncate(mine, 0);
          start = 0;
        }
        if (start < size || size === 0) {
          start = await fetchInto(mine, start, size, open, onBytes);
        }
        const actual = await hashFile(mine);
        if (actual !== digest) {
          await removeIfExists(mine);
          // A kept partial may hold stale bytes; one fresh download decides.
          if (start > 0 && !restartedOnMismatch) {
            restartedOnMismatch = true;
            continue;
          }
          throw new IntegrityError(`blob ${digest}`, digest, actual);
        }
        await Deno.rename(mine, final);
        return;
      } catch (e) {
        // A cut connection surfaces as a TypeError or an I/O error, depending on
        // where it broke; anything the server or the digest decided is final.
        const retryable = !(e instanceof IntegrityError) && !(e instanceof RangeError) &&
          !(e instanceof RegistryError && e.status < 500);
        if (retryable && attempt < ATTEMPTS) continue;
        if (e instanceof IntegrityError || (await fileSize(mine)) === 0) {
          await removeIfExists(mine);
        } else {
          await Deno.rename(mine, shared).catch(() => removeIfExists(mine));
        }
        throw e;
      }
    }
  }

  /**
   * Makes a browsable folder of a cached version: `files/<path>` links to each
   * blob (relative symlinks; copies where links are not allowed).
   *
   * @param doc the version document, whose blobs are all cached
   * @returns the folder holding the files
   */
  async linkFiles(doc: VersionDocument): Promise<string> {
    const root = join(this.versionDir(doc.namespace, doc.name, doc.version), "files");
    for (const f of doc.files) {
      checkFileEntry(f);
      const target = join(root, f.path);
      await Deno.mkdir(dirname(target), { recursive: true });
      const blob = this.blobPath(f.digest);
      const link = relative(dirname(target), blob);
      if (await Deno.readLink(target).catch(() => null) === link) continue;
      // Build the link under a temporary name and rename it into place: another
      // process may be linking the same file, and copying onto its fresh
      // symlink would write through it into the blob.
      const tmp = `${target}.${crypto.randomUUID()}.tmp`;
      try {
        await Deno.symlink(link, tmp);
      } catch {
        await Deno.copyFile(blob, tmp);
      }
      await Deno.rename(tmp, target);
    }
    return root;
  }

  #modelDir(namespace: string, name: string): string {
    if (!NAME_PART.test(namespace) || !NAME_PART.test(name)) {
      throw new RangeError(
        `Invalid model name "${printable(`${namespace}/${name}`)}": use "namespace/name"`,
      );
    }
    return join(this.root, "models", namespace, name);
  }
}

/**
 * Streams the bytes from `start` into `path`.
 *
 * @returns the offset the written bytes started at (0 when the server sent the whole blob)
 */
async function fetchInto(
  path: string,
  start: number,
  size: number,
  open: OpenRange,
  onBytes: (held: number) => void,
): Promise<number> {
  const res = await open(start);
  let offset = start;
  if (res.status === 206) {
    const m = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "");
    if (!m || Number(m[1]) !== start) {
      await res.body?.cancel();
      await Deno.truncate(path, 0).catch(() => {});
      throw new TypeError(`Range reply starts at the wrong offset: wanted ${start}`);
    }
  } else if (res.status === 200) {
    offset = 0; // the server ignored Range: start over
  } else if (res.status === 416) {
    await res.body?.cancel();
    await Deno.truncate(path, 0);
    return fetchInto(path, 0, size, open, onBytes);
  } else {
    await res.body?.cancel();
    throw new TypeError(`Unexpected status ${res.status} for a blob download: expected 200 or 206`);
  }
  onBytes(offset);
  const file = await Deno.open(path, {
    write: true,
    create: true,
    append: offset > 0,
    truncate: offset === 0,
  });
  // Read and write chunk by chunk (not pipeTo) so every byte that arrived is
  // on disk when the connection breaks: stream errors drop queued chunks.
  let held = offset;
  try {
    const reader = res.body?.getReader();
    for (;;) {
      if (!reader) break;
      const { done, value } = await reader.read();
      if (done) break;
      held += value.byteLength;
      if (held > size) {
        await reader.cancel();
        throw new IntegrityError(
          `blob of ${size} bytes`,
          `${size} bytes`,
          `more than ${size} bytes`,
          "the server sent more bytes than the manifest lists; the download was discarded",
        );
      }
      for (let written = 0; written < value.byteLength;) {
        written += await file.write(value.subarray(written));
      }
      onBytes(held);
    }
  } finally {
    file.close();
  }
  return offset;
}

function hexOf(digest: string): string {
  if (!DIGEST.test(digest)) {
    throw new RangeError(
      `Invalid digest "${printable(digest)}": use "sha256:" followed by 64 lowercase hex digits`,
    );
  }
  return digest.slice("sha256:".length);
}

function checkFileEntry(f: { path: string; digest: string; size: number }): void {
  if (!FILE_PATH.test(f.path)) {
    throw new RangeError(`Invalid file path "${printable(f.path)}" in a version manifest`);
  }
  hexOf(f.digest);
  if (!Number.isSafeInteger(f.size) || f.size < 0) {
    throw new RangeError(`Invalid size ${f.size} for "${f.path}" in a version manifest`);
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

async function readTextOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
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
