/**
 * The body of a verification worker (see `read_pool.ts`): reads a whole file
 * into a fresh buffer, hashing each chunk while the next one is read, and
 * hands the buffer back without copying it. Several of these hash on several
 * cores while the calling thread only waits.
 *
 * Messages in: `{ id, path, size }`. Out: `{ id, digest, bytes }` (digest
 * null when the file's size is not `size`), `{ id, absent: true }`, or
 * `{ id, error }`.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { parentPort } from "node:worker_threads";
import { readHashed } from "./hash.ts";

/** A request: read and hash one file. */
export interface ReadRequest {
  /** Matches the answer to the request. */
  id: number;
  /** The file. */
  path: string;
  /** Its expected size; another size answers a null digest. */
  size: number;
}

/** The answer to a {@linkcode ReadRequest}. */
export type ReadAnswer =
  | { id: number; digest: string | null; bytes: Uint8Array<ArrayBuffer> }
  | { id: number; absent: true }
  | { id: number; error: string };

async function answer(m: ReadRequest): Promise<void> {
  const port = parentPort!;
  try {
    using file = await Deno.open(m.path);
    if ((await file.stat()).size !== m.size) {
      port.postMessage({ id: m.id, digest: null, bytes: new Uint8Array(0) });
      return;
    }
    const bytes = new Uint8Array(m.size);
    const h = createHash("sha256");
    const n = await readHashed(file, bytes, h);
    const digest = n === m.size ? `sha256:${h.digest("hex")}` : null;
    port.postMessage({ id: m.id, digest, bytes }, [bytes.buffer]);
  } catch (e) {
    port.postMessage(
      e instanceof Deno.errors.NotFound
        ? { id: m.id, absent: true }
        : { id: m.id, error: e instanceof Error ? e.message : String(e) },
    );
  }
}

parentPort?.on("message", (m: ReadRequest) => void answer(m));
