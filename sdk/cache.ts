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

import { createHash, type Hash } from "node:crypto";
import { dirname, join, relative } from "node:path";
import { DIGEST, FILE_PATH, isSemver, NAME_PART, printable, TAG } from "../core/names.ts";
import { IntegrityError, RegistryError } from "./errors.ts";
import type { VersionDocument } from "./client.ts";

/** How many times one download is attempted (resuming each time) before giving up. */
const ATTEMPTS = 5;
/** The first wait between attempts, in ms; each next one doubles (with jitter). */
const BASE_DELAY_MS = 250;
/** The longest wait between attempts, in ms. */
const MAX_DELAY_MS = 8_000;
/**
 * Downloads write in chunks of this size: few system calls, and memory bounded
 * to two chunks per download whatever the blob's size.
 */
const WRITE_CHUNK = 1 << 20;
/** Cached blobs are read (and hashed) in chunks of this size. */
const READ_CHUNK = 4 << 20;
/** A partial or lock file untouched for this long belongs to no live download. */
const STALE_MS = 24 * 60 * 60 * 1000;

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
 * ```ts ignore
 * import { readFileHashed } from "./cache.ts";
 * const { bytes, digest } = await readFileHashed("group1-shard1of1.bin");
 * console.log(bytes.byteLength, digest);
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
 * Opens the bytes of a blob from `start` on: a `Range: bytes=<start>-` request
 * when `start > 0`. Resolves to a 206 (range honoured), 200 (whole blob) or
 * 416 response; should throw a {@linkcode RegistryError} for other statuses.
 */
export type OpenRange = (start: number) => Promise<Response>;

/** How a download retries after a cut connection or a server error. */
export interface RetryPolicy {
  /**
   * Attempts per blob, the first included; each one resumes what arrived.
   * @default {5}
   */
  attempts?: number;
  /**
   * The wait before the second attempt, in ms; each next wait doubles, up to
   * 8 s, and is drawn at random between half and all of that (jitter), so
   * clients cut off together do not come back together.
   * @default {250}
   */
  baseDelayMs?: number;
}

/** Options of {@linkcode ZooCache}. */
export interface ZooCacheOptions {
  /** How downloads retry. */
  retry?: RetryPolicy;
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
   * import { ZooCache } from "./cache.ts";
   * const cache = new ZooCache("/tmp/zoo-cache");
   * console.log(cache.blobPath(`sha256:${"ab".repeat(32)}`)); // /tmp/zoo-cache/blobs/sha256/abab…
   * ```
   */
  constructor(readonly root: string, options: ZooCacheOptions = {}) {
    this.retry = {
      attempts: Math.max(1, Math.floor(options.retry?.attempts ?? ATTEMPTS)),
      baseDelayMs: Math.max(0, options.retry?.baseDelayMs ?? BASE_DELAY_MS),
    };
  }

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
   * buffer holding every shard of a model).
   *
   * @param digest `sha256:<hex>`
   * @param target where the bytes go; its length is the blob's expected size
   * @returns true when the blob was there with the right size and digest;
   *   false when absent or corrupted (a corrupted copy is removed, and
   *   `target` then holds bytes that must not be used)
   */
  async readBlobInto(digest: string, target: Uint8Array): Promise<boolean> {
    const path = this.blobPath(digest);
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
    const final = this.blobPath(digest);
    if (await sizeIs(final, size)) {
      onBytes(size);
      return;
    }
    const dir = dirname(final);
    await Deno.mkdir(dir, { recursive: true });
    const hex = hexOf(digest);
    const lock = await lockFile(join(dir, `${hex}.lock`));
    try {
      // Another process may have fetched it while this one waited for the lock.
      if (await sizeIs(final, size)) {
        onBytes(size);
        return;
      }
      const partial = join(dir, `${hex}.partial`);
      await adoptPartials(dir, hex, partial);
      let restartedOnMismatch = false;
      for (let attempt = 1;; attempt++) {
        try {
          const { actual, resumedFrom } = await fetchInto(partial, size, open, onBytes);
          if (actual !== digest) {
            await removeIfExists(partial);
            // A kept partial may hold stale bytes; one fresh download decides.
            if (resumedFrom > 0 && !restartedOnMismatch) {
              restartedOnMismatch = true;
              continue;
            }
            throw new IntegrityError(`blob ${digest}`, digest, actual);
          }
          await Deno.rename(partial, final);
          return;
        } catch (e) {
          // A cut connection surfaces as a TypeError or an I/O error, depending on
          // where it broke; anything the server or the digest decided is final.
          const retryable = !(e instanceof IntegrityError) && !(e instanceof RangeError) &&
            !(e instanceof RegistryError && e.status < 500);
          if (retryable && attempt < this.retry.attempts) {
            await sleep(backoff(this.retry.baseDelayMs, attempt));
            continue;
          }
          if (e instanceof IntegrityError || (await fileSize(partial)) === 0) {
            await removeIfExists(partial);
          }
          throw e;
        }
      }
    } finally {
      await lock.release();
    }
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

/**
 * Streams the blob into `path`, resuming from what it holds, and hashes every
 * byte on the way: the kept prefix as it is read back once, the rest as it
 * arrives. Arriving bytes are gathered into {@linkcode WRITE_CHUNK}s and
 * written while the next chunk fills; whatever arrived is on disk when the
 * connection breaks. The file is synced once at the end.
 *
 * @returns the digest of the whole file and the offset the download resumed from
 */
async function fetchInto(
  path: string,
  size: number,
  open: OpenRange,
  onBytes: (held: number) => void,
): Promise<{ actual: string; resumedFrom: number }> {
  let start = await fileSize(path);
  if (start > size) start = 0;
  let res: Response | undefined;
  if (start < size) {
    res = await open(start);
    if (res.status === 416) {
      await res.body?.cancel();
      start = 0;
      res = await open(0);
    }
    if (res.status === 206) {
      const m = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "");
      if (!m || Number(m[1]) !== start) {
        await res.body?.cancel();
        await Deno.truncate(path, 0).catch(() => {});
        throw new TypeError(`Range reply starts at the wrong offset: wanted ${start}`);
      }
    } else if (res.status === 200) {
      start = 0; // the server ignored Range: start over
    } else {
      await res.body?.cancel();
      throw new TypeError(
        `Unexpected status ${res.status} for a blob download: expected 200 or 206`,
      );
    }
  }
  using file = await Deno.open(path, { read: true, write: true, create: true });
  const hash = createHash("sha256");
  const bufs = [new Uint8Array(WRITE_CHUNK), new Uint8Array(WRITE_CHUNK)] as const;
  if (start > 0) {
    // The kept prefix is read once to seed the hash: its hash state died with
    // the process that wrote it.
    if (await readHashed(file, bufs[0], hash, start) !== start) {
      throw new TypeError(`The partial download "${path}" shrank while it was read`);
    }
  }
  await file.truncate(start);
  await file.seek(start, Deno.SeekMode.Start);
  onBytes(start);
  let held = start;
  if (res) {
    let cur = 0;
    let fill = 0;
    let writing: Promise<void> = Promise.resolve();
    // Hashes a full chunk and writes it while the other one fills: the hash
    // covers exactly the bytes that go to the disk.
    const flush = async () => {
      if (fill === 0) return;
      const data = bufs[cur]!.subarray(0, fill);
      hash.update(data);
      await writing;
      writing = writeAll(file, data);
      writing.catch(() => {}); // awaited below; this only marks it handled
      cur ^= 1;
      fill = 0;
    };
    const reader = res.body?.getReader();
    try {
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
        for (let used = 0; used < value.byteLength;) {
          const n = Math.min(value.byteLength - used, WRITE_CHUNK - fill);
          bufs[cur]!.set(value.subarray(used, used + n), fill);
          fill += n;
          used += n;
          if (fill === WRITE_CHUNK) await flush();
        }
        onBytes(held);
      }
    } finally {
      // Keep what arrived, also when the connection broke, for the next resume.
      await flush();
      await writing;
    }
  }
  await file.syncData();
  return { actual: `sha256:${hash.digest("hex")}`, resumedFrom: start };
}

/**
 * Reads `file` from its position into `target` (up to `limit` bytes, by
 * default its length; `target` is reused as a ring when shorter), hashing
 * each chunk while the next one is read.
 *
 * @returns the number of bytes read
 */
async function readHashed(
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

/** Takes the lock of one download; `release()` unlinks the lock file and frees it. */
async function lockFile(path: string): Promise<{ release(): Promise<void> }> {
  for (;;) {
    const file = await Deno.open(path, { write: true, create: true });
    let same = false;
    try {
      await file.lock(true);
      // The holder before us may have unlinked the file we waited on: lock
      // the file that is at the path now instead.
      const [held, now] = await Promise.all([file.stat(), Deno.stat(path)]);
      same = held.ino === now.ino && held.dev === now.dev;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        file.close();
        throw e;
      }
    }
    if (same) {
      return {
        release: async () => {
          try {
            await Deno.remove(path);
          } catch {
            // Already gone, or a system that cannot remove an open file: a
            // lock file left behind is harmless (the next holder checks it).
          } finally {
            file.close();
          }
        },
      };
    }
    file.close();
  }
}

/**
 * Makes `partial` the largest partial of the blob `hex` (also adopting the
 * `<hex>.<random>.partial` names older versions left after a crash) and
 * removes the others. Runs under the blob's lock, so no other download of
 * this version is writing any of them.
 */
async function adoptPartials(dir: string, hex: string, partial: string): Promise<void> {
  const found: { path: string; size: number }[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !e.name.startsWith(`${hex}.`) || !e.name.endsWith(".partial")) continue;
    const path = join(dir, e.name);
    const size = await fileSize(path);
    found.push({ path, size });
  }
  if (found.length === 0) return;
  found.sort((a, b) => b.size - a.size);
  for (const [i, f] of found.entries()) {
    if (i === 0) {
      if (f.path !== partial) await Deno.rename(f.path, partial);
    } else if (f.path !== partial) {
      await removeIfExists(f.path);
    }
  }
}

/** The wait before attempt `attempt + 1`: doubling from `base`, capped, with jitter. */
function backoff(base: number, attempt: number): number {
  const ceiling = Math.min(MAX_DELAY_MS, base * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * ceiling / 2;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  for (let written = 0; written < data.byteLength;) {
    written += await file.write(data.subarray(written));
  }
}

async function sizeIs(path: string, size: number): Promise<boolean> {
  try {
    return (await Deno.stat(path)).size === size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
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
