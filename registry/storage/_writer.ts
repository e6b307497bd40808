/**
 * What every blob upload does whatever holds its bytes: it hashes them as
 * they arrive, runs writes in call order, refuses use after commit or cancel
 * and after a failed write, and checks the digest before the blob is stored.
 * A backend says only where the bytes go ({@linkcode HashingBlobWriter.accept}),
 * how the finished blob is stored under its digest and how a failed one is
 * removed.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { type BlobInfo, type BlobWriter, DigestMismatchError } from "./store.ts";

/** A blob upload that hashes its bytes and checks its digest; backends extend it. */
export abstract class HashingBlobWriter implements BlobWriter {
  readonly #hash: Hash = createHash("sha256");
  readonly #onDone: (w: BlobWriter) => void;
  #size = 0;
  #state: "open" | "committing" | "done" = "open";
  #queue: Promise<void> = Promise.resolve();
  #failure: unknown = undefined;

  /**
   * Starts an upload with nothing written.
   *
   * @param onDone called once, when the upload is stored or discarded
   */
  constructor(onDone: (w: BlobWriter) => void) {
    this.#onDone = onDone;
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#size;
  }

  /** Whether the upload was stored or discarded. */
  protected get done(): boolean {
    return this.#state === "done";
  }

  /**
   * Takes a chunk in at the backend. Runs after the previous one has.
   *
   * @param chunk the bytes, as {@linkcode HashingBlobWriter.hold} kept them
   */
  protected abstract accept(chunk: Uint8Array): Promise<void>;

  /**
   * Stores the whole upload under its digest, which matched.
   *
   * @param digest the `sha256:<hex>` of the bytes
   */
  protected abstract store(digest: string): Promise<void>;

  /** Removes what the upload left behind; calls {@linkcode HashingBlobWriter.finish} first. */
  protected abstract discard(): Promise<void>;

  /**
   * What a queued write keeps of the caller's chunk until it runs: the chunk
   * itself, unless the backend keeps bytes past the write's promise.
   *
   * @param chunk the caller's bytes
   * @returns the bytes to hash and accept
   */
  protected hold(chunk: Uint8Array): Uint8Array {
    return chunk;
  }

  /** Marks the upload done and tells its store, once. */
  protected finish(): void {
    if (this.#state === "done") return;
    this.#state = "done";
    this.#onDone(this);
  }

  /**
   * Appends bytes; writes run in call order even when a caller does not
   * await each one.
   *
   * @param chunk the bytes
   */
  write(chunk: Uint8Array): Promise<void> {
    if (this.#state !== "open") {
      return Promise.reject(
        new TypeError(
          "Cannot write to a blob upload that was committed or cancelled: start a new upload",
        ),
      );
    }
    const held = this.hold(chunk);
    const run = this.#queue.then(async () => {
      if (this.#failure !== undefined) {
        throw new TypeError("Cannot write to a blob upload that failed: start a new upload");
      }
      try {
        await this.accept(held);
      } catch (e) {
        this.#failure = e;
        throw e;
      }
      this.#hash.update(held);
      this.#size += held.length;
    });
    this.#queue = run.catch(() => {});
    return run.catch(async (e) => {
      await this.discard();
      throw e;
    });
  }

  /**
   * Stores the blob once every write has run and its digest matched.
   *
   * @param expected the digest the client announced, if any
   * @returns the stored blob's digest and size
   */
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
      await this.store(digest);
      this.finish();
      return { digest, size: this.#size };
    } catch (e) {
      await this.discard();
      throw e;
    }
  }

  /** Drops the upload; a commit in progress finishes or cleans up by itself. */
  async cancel(): Promise<void> {
    if (this.#state !== "open") return;
    await this.#queue;
    await this.discard();
  }
}
