/**
 * The local cache of checkpoints, laid out like the Hugging Face hub cache and
 * drawn once, here; nothing else builds a cache path:
 *
 * ```
 * <cache>/blobs/sha256/<hex>                          verified content, by digest
 * <cache>/blobs/sha256/<hex>.partial                  a download in progress or interrupted, kept for resume
 * <cache>/blobs/sha256/<hex>.lock                     held by the one process downloading <hex>
 * <cache>/models/<ns>/<name>/refs/<tag-or-version>    the version a tag resolved to
 * <cache>/models/<ns>/<name>/versions/<v>/manifest.json  the version document
 * <cache>/models/<ns>/<name>/versions/<v>/files/<path>   links to the blobs (a browsable folder)
 * ```
 *
 * Every blob is hashed when it is used, not only when it is downloaded, so a
 * cached file that was corrupted on disk is noticed, removed and refetched.
 * Hashing happens in the same pass as the read or the download, never as a
 * second read of the bytes.
 *
 * Concurrency: a downloader holds an exclusive lock on `<hex>.lock` for as long
 * as it writes `<hex>.partial`, so two processes never write the same partial;
 * the second one waits, then finds the blob there. A download hashes the bytes
 * as they stream, syncs the partial once and renames it to `<hex>`, which is
 * atomic. A process killed mid-download leaves its partial (and the lock file,
 * whose lock the kernel released): the next download of that digest resumes
 * from the largest partial it finds, including the `<hex>.<random>.partial`
 * names of older versions, and removes the others. When the cache is used,
 * partials and lock files nobody touched for a day are removed.
 *
 * @module
 */

import { dirname, join, relative } from "node:path";
import { DIGEST, FILE_PATH, isSemver, NAME_PART, printable, TAG } from "../../core/names.ts";
import { downloadBlob, type OpenRange } from "./download.ts";
import { hashFile, readHashed } from "./hash.ts";
import { createHash } from "node:crypto";
import { readTextOrNull, removeIfExists, writeAtomic } from "./fs.ts";
import { type PooledRead, readPool } from "./read_pool.ts";
import type { RetryPolicy, VersionDocument } from "./types.ts";

export type { OpenRange } from "./download.ts";
export type { RetryPolicy } from "./types.ts";

/** How many times one download is attempted (resuming each time) before giving up. */
const ATTEMPTS = 5;
/** The first wait between attempts, in ms; each next one doubles (with jitter). */
const BASE_DELAY_MS = 250;
/**
 * Blobs from this size on are verified on the read pool's workers; below it
 * the hop to a worker (and its start-up, the first time) costs more than
 * the hashing it moves.
 */
const POOLED_READ_MIN = 8 << 20;
/** A partial or lock file untouched for this long belongs to no live download. */
const STALE_MS = 24 * 60 * 60 * 1000;

/** Options of {@linkcode ZooCache}. */
export interface ZooCacheOptions {
  /** How downloads retry. */
  retry?: RetryPolicy;
  /**
   * Worker threads that read and verify cached blobs of 8 MiB or more, each
   * on its own core; 0 verifies them on the calling thread. Workers pay off
   * where cores are idle; on a busy 2-core machine they measured slower than
   * hashing on the calling thread. Env `ZOO_VERIFY_WORKERS`.
   * @default {"0 on fewer than 4 cores, else one per core up to 4"}
   */
  verifyWorkers?: number;
}

/** The local cache: content-addressed blobs, refs and version documents. */
export class ZooCache {
  /**
   * Opens the cache rooted at a folder; nothing is created until something is written.
   *
   * @param root the cache folder, e.g. `~/.cache/deno-model-zoo`
   * @param options how downloads retry
   *
   * @example Locate a blob
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ZooCache } from "./cache.ts";
   * const cache = new ZooCache("/tmp/zoo-cache");
   * assertEquals(cache.blobPath(`sha256:${"ab".repeat(32)}`), `/tmp/zoo-cache/blobs/sha256/${"ab".repeat(32)}`);
   * ```
   */
  constructor(readonly root: string, options: ZooCacheOptions = {}) {
    this.retry = {
      attempts: Math.max(1, Math.floor(options.retry?.attempts ?? ATTEMPTS)),
      baseDelayMs: Math.max(0, options.retry?.baseDelayMs ?? BASE_DELAY_MS),
    };
    this.verifyWorkers = Math.max(
      0,
      Math.floor(options.verifyWorkers ?? envWorkers() ?? defaultWorkers()),
    );
  }

  /** Worker threads verifying large cached blobs; 0 when the calling thread does. */
  readonly verifyWorkers: number;

  /** How downloads retry, defaults filled in. */
  readonly retry: Required<RetryPolicy>;
  #swept = false;

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
    let size: number;
    try {
      size = (await Deno.stat(this.blobPath(digest))).size;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
    const bytes = new Uint8Array(size);
    return await this.readBlobInto(digest, bytes) ? bytes : null;
  }

  /**
   * Reads a cached blob into `target`, hashing each chunk while the next one
   * is read, so verifying costs no second pass over the bytes. `target` is
   * exactly as long as the blob should be (for example a slice of one
   * buffer holding every shard of a model). A blob of 8 MiB or more is read
   * and hashed on a worker of the read pool (`read_pool.ts`), so several run
   * on several cores; the bytes are then copied into `target`.
   *
   * @param digest `sha256:<hex>`
   * @param target where the bytes go; its length is the blob's expected size
   * @returns true when the blob was there with the right size and digest;
   *   false when absent or corrupted (a corrupted copy is removed, and
   *   `target` then holds bytes that must not be used)
   */
  async readBlobInto(digest: string, target: Uint8Array): Promise<boolean> {
    const path = this.blobPath(digest);
    const pool = target.byteLength >= POOLED_READ_MIN ? readPool(this.verifyWorkers) : null;
    if (pool) {
      let read: PooledRead | undefined;
      try {
        read = await pool.read(path, target.byteLength);
      } catch {
        // A worker that failed says nothing about the blob: read it here instead.
      }
      if (read === null) return false;
      if (read !== undefined) {
        const good = read.digest === digest;
        if (good) target.set(read.bytes);
        else await removeIfExists(path);
        return good;
      }
    }
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
    let good: boolean;
    try {
      const h = createHash("sha256");
      good = (await file.stat()).size === target.byteLength &&
        await readHashed(file, target, h) === target.byteLength &&
        `sha256:${h.digest("hex")}` === digest;
    } finally {
      file.close();
    }
    if (!good) await removeIfExists(path);
    return good;
  }

  /**
   * Downloads a blob into the cache unless it is there: resumes a kept
   * partial with a Range request, restarts from 0 when the server ignores
   * Range, retries a cut connection or a server error with exponential
   * backoff and jitter, and checks the digest of the bytes as they stream
   * before the blob becomes visible (one sync, one rename). One process at a
   * time downloads a given blob; another one waits for it and then uses its
   * copy.
   *
   * A blob already in the cache is trusted by its size here: its bytes were
   * verified when they arrived, and every read verifies them again.
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
    await downloadBlob(this.blobPath(digest), digest, size, open, onBytes, this.retry);
  }

  /**
   * Removes what interrupted downloads left and no download will use: a
   * partial of a blob that is complete, and partials and lock files nobody
   * touched for a day. Runs once per cache object; the client calls it the
   * first time it looks for a version's files in the cache.
   *
   * @returns the names removed
   */
  async sweep(): Promise<string[]> {
    if (this.#swept) return [];
    this.#swept = true;
    const dir = join(this.root, "blobs", "sha256");
    const removed: string[] = [];
    let names: string[];
    try {
      names = [];
      for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return removed;
      throw e;
    }
    const complete = new Set(names.filter((n) => /^[0-9a-f]{64}$/.test(n)));
    const now = Date.now();
    for (const name of names) {
      const m = /^([0-9a-f]{64})(?:\.[0-9a-z-]+)?\.(partial|lock)$/.exec(name);
      if (!m) continue;
      const mtime = (await Deno.stat(join(dir, name)).catch(() => null))?.mtime?.getTime();
      if (mtime === undefined) continue;
      // A partial of a complete blob is useless once its writer is surely gone
      // (a live writer holds the lock and found no blob when it started).
      const age = now - mtime;
      if ((m[2] === "partial" && complete.has(m[1]!) && age > 60_000) || age > STALE_MS) {
        await removeIfExists(join(dir, name));
        removed.push(name);
      }
    }
    return removed;
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

function hexOf(digest: string): string {
  if (!DIGEST.test(digest)) {
    throw new RangeError(
      `Invalid digest "${printable(digest)}": use "sha256:" followed by 64 lowercase hex digits`,
    );
  }
  return digest.slice("sha256:".length);
}

/** `ZOO_VERIFY_WORKERS` as a count, or undefined when unset, invalid or not readable. */
function envWorkers(): number | undefined {
  try {
    const v = Number(Deno.env.get("ZOO_VERIFY_WORKERS") ?? "");
    return Deno.env.get("ZOO_VERIFY_WORKERS") && Number.isInteger(v) && v >= 0 ? v : undefined;
  } catch {
    return undefined; // no --allow-env
  }
}

/** One verification worker per core up to 4, from 4 cores on; none below. */
function defaultWorkers(): number {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  return cores < 4 ? 0 : Math.min(4, cores);
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
