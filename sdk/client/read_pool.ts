/**
 * Verified reads on other cores: a few workers (`hash_worker.ts`) that each
 * read a cached blob and hash it, so the shards of a model are hashed in
 * parallel while the calling thread only waits and copies.
 *
 * The pool starts on the first large read of a process that asks for
 * workers (starting one costs tens to hundreds of milliseconds, so small
 * reads stay on the calling thread) and lives as long as the process; it
 * does not keep the process alive while idle. Where workers cannot start,
 * {@linkcode readPool} answers null and the caller hashes on its own thread.
 *
 * @module
 */

import { Worker } from "node:worker_threads";
import type { ReadAnswer, ReadRequest } from "./hash_worker.ts";

/** What a pooled read found. */
export type PooledRead =
  | { digest: string | null; bytes: Uint8Array<ArrayBuffer> }
  | null;

/** A fixed set of verification workers, each taking one read at a time. */
export class ReadPool {
  readonly #workers: Worker[];
  readonly #pending = new Map<
    number,
    { resolve: (r: PooledRead) => void; reject: (e: Error) => void }
  >();
  readonly #idle: Worker[];
  readonly #queue: (() => void)[] = [];
  #next = 0;
  #answered = 0;
  #broken: Error | null = null;

  /**
   * Starts `count` workers, unreferenced until a read is in flight.
   *
   * @param count how many workers
   */
  constructor(count: number) {
    this.#workers = Array.from({ length: count }, () => {
      const w = new Worker(new URL("./hash_worker.ts", import.meta.url));
      w.unref();
      w.on("message", (m: ReadAnswer) => this.#settle(w, m));
      w.on("error", (e: Error) => this.#fail(e));
      return w;
    });
    this.#idle = [...this.#workers];
  }

  /** Reads the workers answered so far. */
  get answered(): number {
    return this.#answered;
  }

  /** Whether a worker failed; a broken pool takes no more reads. */
  get broken(): boolean {
    return this.#broken !== null;
  }

  /**
   * Reads and hashes a whole file on a worker.
   *
   * @param path the file
   * @param size its expected size
   * @returns its bytes and digest (a null digest when its size is not `size`), or null when absent
   * @throws {Error} when the file cannot be read or a worker fails
   */
  async read(path: string, size: number): Promise<PooledRead> {
    if (this.#broken) throw this.#broken;
    while (this.#idle.length === 0) await new Promise<void>((r) => this.#queue.push(r));
    const w = this.#idle.pop()!;
    // A read in flight keeps the process alive until its answer arrives.
    w.ref();
    const id = this.#next++;
    return await new Promise<PooledRead>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      w.postMessage({ id, path, size } satisfies ReadRequest);
    });
  }

  #settle(w: Worker, m: ReadAnswer): void {
    const p = this.#pending.get(m.id);
    this.#pending.delete(m.id);
    w.unref();
    this.#answered++;
    this.#idle.push(w);
    this.#queue.shift()?.();
    if (!p) return;
    if ("error" in m) p.reject(new Error(m.error));
    else if ("absent" in m) p.resolve(null);
    else p.resolve({ digest: m.digest, bytes: m.bytes });
  }

  #fail(e: Error): void {
    this.#broken = e;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
    for (const w of this.#workers) void w.terminate();
  }
}

let shared: ReadPool | null | undefined;

/**
 * The process's verification pool, started on first use with `workers`
 * workers (later calls share it, whatever they ask for, unless they ask for
 * none); null where workers cannot start or after one failed.
 *
 * @param workers how many workers; 0 for none
 * @returns the pool, or null to hash on the calling thread
 */
export function readPool(workers: number): ReadPool | null {
  if (workers < 1) return null;
  if (shared === undefined) {
    try {
      shared = new ReadPool(workers);
    } catch {
      shared = null;
    }
  }
  if (shared?.broken) shared = null;
  return shared;
}
