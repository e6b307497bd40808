/**
 * Blobs in a content-addressed folder laid out by `paths.ts`: an upload is
 * written to a locked temporary file under `uploads/`, hashed as it arrives,
 * synced, and renamed under its digest once it checks out, so a blob appears
 * whole or not at all.
 *
 * Several instances, in one process or in several, may share a folder:
 * uploads lock their temporary file, so that removing the uploads a stopped
 * process left behind never removes a live one.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { checkRange } from "./_common.ts";
import {
  blobDir,
  blobPath,
  type StorageLayout,
  storageLayout,
  uploadEntryPath,
  uploadPath,
} from "./paths.ts";
import { type BlobBackend, type BlobInfo, type BlobWriter, DigestMismatchError } from "./store.ts";

/** Bytes per chunk when streaming a blob out. */
const READ_CHUNK = 256 * 1024;

/**
 * Opens (creating when needed) the blob folders of a data directory:
 * `blobs/` for content and `uploads/` for uploads in progress. Uploads left
 * behind by a stopped process are removed.
 *
 * @param dataDir the data directory; created when absent
 * @returns the blob store; `close()` cancels its uploads in progress
 *
 * @example Store a blob and read it back
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { openFsBlobStore } from "./fs_blobs.ts";
 * const dir = await Deno.makeTempDir();
 * const blobs = await openFsBlobStore(dir);
 * const w = await blobs.writer();
 * await w.write(new TextEncoder().encode("{}"));
 * const { digest, size } = await w.commit();
 * assertEquals(size, 2);
 * assertEquals(await new Response(await blobs.read(digest)).text(), "{}");
 * await blobs.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openFsBlobStore(dataDir: string): Promise<BlobBackend> {
  const layout = storageLayout(dataDir);
  await Deno.mkdir(layout.blobs, { recursive: true });
  await Deno.mkdir(layout.uploads, { recursive: true });
  await removeStaleUploads(layout);
  return new FsBlobStore(layout);
}

async function removeStaleUploads(layout: StorageLayout): Promise<void> {
  for await (const entry of Deno.readDir(layout.uploads)) {
    const path = entry.isFile ? uploadEntryPath(layout, entry.name) : null;
    if (path === null) continue;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true, write: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    try {
      // A live upload (this process or another) holds the lock: leave it.
      if (await file.tryLock(true)) await Deno.remove(path).catch(ignoreNotFound);
    } finally {
      file.close();
    }
  }
}

function ignoreNotFound(e: unknown): void {
  if (!(e instanceof Deno.errors.NotFound)) throw e;
}

async function syncDir(path: string): Promise<void> {
  // Makes a rename durable; not every platform can open a directory.
  try {
    const dir = await Deno.open(path, { read: true });
    try {
      await dir.syncData();
    } finally {
      dir.close();
    }
  } catch {
    // best effort
  }
}

async function writeAll(file: Deno.FsFile, chunk: Uint8Array): Promise<void> {
  let done = 0;
  while (done < chunk.length) done += await file.write(chunk.subarray(done));
}

class FsBlobWriter implements BlobWriter {
  readonly #layout: StorageLayout;
  readonly #file: Deno.FsFile;
  readonly #path: string;
  readonly #hash: Hash = createHash("sha256");
  readonly #onDone: (w: FsBlobWriter) => void;
  #size = 0;
  #state: "open" | "committing" | "done" = "open";
  #queue: Promise<void> = Promise.resolve();
  #failure: unknown = undefined;
  #fileClosed = false;

  constructor(
    layout: StorageLayout,
    file: Deno.FsFile,
    path: string,
    onDone: (w: FsBlobWriter) => void,
  ) {
    this.#layout = layout;
    this.#file = file;
    this.#path = path;
    this.#onDone = onDone;
  }

  get size(): number {
    return this.#size;
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.#state !== "open") {
      return Promise.reject(
        new TypeError(
          "Cannot write to a blob upload that was committed or cancelled: start a new upload",
        ),
      );
    }
    // Writes run in call order even when a caller does not await each one.
    const run = this.#queue.then(async () => {
      if (this.#failure !== undefined) {
        throw new TypeError("Cannot write to a blob upload that failed: start a new upload");
      }
      try {
        await writeAll(this.#file, chunk);
      } catch (e) {
        this.#failure = e;
        throw e;
      }
      this.#hash.update(chunk);
      this.#size += chunk.length;
    });
    this.#queue = run.catch(() => {});
    return run.catch(async (e) => {
      await this.#discard();
      throw e;
    });
  }

  async commit(expected?: string): Promise<BlobInfo> {
    if (this.#state !== "open") {
      throw new TypeError(
        "Cannot commit a blob upload that was committed or cancelled: start a new upload",
      );
    }
    this.#state = "committing";
    try {
      await this.#queue;
      if (this.#failure !== undefined) {
        throw new TypeError("Cannot commit a blob upload whose write failed: start a new upload", {
          cause: this.#failure,
        });
      }
      const digest = `sha256:${this.#hash.digest("hex")}`;
      if (expected !== undefined && expected !== digest) {
        throw new DigestMismatchError(expected, digest);
      }
      await this.#file.syncData();
      const dir = blobDir(this.#layout, digest);
      const target = blobPath(this.#layout, digest);
      await Deno.mkdir(dir, { recursive: true });
      if (await exists(target)) {
        await this.#discard();
      } else {
        await Deno.rename(this.#path, target);
        this.#closeFile();
        this.#finish();
        await syncDir(dir);
        await syncDir(this.#layout.blobs);
      }
      return { digest, size: this.#size };
    } catch (e) {
      await this.#discard();
      throw e;
    }
  }

  async cancel(): Promise<void> {
    // A commit in progress finishes or cleans up by itself.
    if (this.#state !== "open") return;
    await this.#queue;
    await this.#discard();
  }

  #closeFile(): void {
    if (this.#fileClosed) return;
    this.#fileClosed = true;
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }

  #finish(): void {
    if (this.#state === "done") return;
    this.#state = "done";
    this.#onDone(this);
  }

  async #discard(): Promise<void> {
    const wasDone = this.#state === "done" && this.#fileClosed;
    this.#finish();
    if (wasDone) return;
    // Remove while still holding the lock, so no cleanup races us.
    await Deno.remove(this.#path).catch(ignoreNotFound);
    this.#closeFile();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

class FsBlobStore implements BlobBackend {
  readonly #layout: StorageLayout;
  readonly #writers = new Set<FsBlobWriter>();

  constructor(layout: StorageLayout) {
    this.#layout = layout;
  }

  async writer(): Promise<BlobWriter> {
    for (;;) {
      const path = uploadPath(this.#layout);
      const file = await Deno.open(path, { createNew: true, write: true, read: true });
      await file.lock(true);
      // A cleanup may have removed the file between its creation and our lock.
      if ((await file.stat()).nlink === 0) {
        file.close();
        continue;
      }
      const w = new FsBlobWriter(this.#layout, file, path, (done) => this.#writers.delete(done));
      this.#writers.add(w);
      return w;
    }
  }

  async stat(digest: string): Promise<BlobInfo | null> {
    try {
      const info = await Deno.stat(blobPath(this.#layout, digest));
      return { digest, size: info.size };
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  }

  async read(
    digest: string,
    range?: { start: number; end: number },
  ): Promise<ReadableStream<Uint8Array> | null> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(blobPath(this.#layout, digest), { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      file.close();
    };
    let remaining: number;
    try {
      const { size } = await file.stat();
      const start = range?.start ?? 0;
      const end = range?.end ?? size - 1;
      if (range) checkRange(digest, size, start, end);
      if (start > 0) await file.seek(start, Deno.SeekMode.Start);
      remaining = end - start + 1;
      // To the end of the file (a whole blob, or a resumed download's
      // "bytes=N-"), the file's own stream lets Deno.serve send it without a
      // trip through JavaScript per chunk: 0.22 server CPU seconds per 256
      // MiB against 0.30 for 256 KiB chunks read here. It closes the file.
      if (end === size - 1) return file.readable;
    } catch (e) {
      close();
      throw e;
    }
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          if (remaining <= 0) {
            close();
            controller.close();
            return;
          }
          const buf = new Uint8Array(Math.min(READ_CHUNK, remaining));
          const n = await file.read(buf);
          if (n === null) {
            throw new Error(
              `Blob "${digest}" ended ${remaining} bytes early: the file was truncated on disk`,
            );
          }
          remaining -= n;
          controller.enqueue(n === buf.length ? buf : buf.slice(0, n));
          if (remaining === 0) {
            close();
            controller.close();
          }
        } catch (e) {
          close();
          controller.error(e);
        }
      },
      cancel() {
        close();
      },
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.#writers].map((w) => w.cancel()));
  }
}
