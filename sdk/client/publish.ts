/**
 * Publishing: a checkpoint folder or an in-memory model turned into files,
 * each hashed, asked about and uploaded (four at once, only the blobs the
 * registry lacks), then the version recorded. {@linkcode ZooClient.publish}
 * calls this with its own context.
 *
 * @module
 */

import { join } from "node:path";
import { FILE_PATH, isSemver, printable } from "../../core/names.ts";
import { OfflineError, RegistryError } from "../errors.ts";
import type { LayersModel } from "../_tfjs_types.ts";
import { hashFile, readFileHashed, sha256 } from "./hash.ts";
import type { RegistryHttp, UploadBody } from "./http.ts";
import { modelToFiles } from "./io_handler.ts";
import { pool } from "./pool.ts";
import { readPool } from "./read_pool.ts";
import { parseName } from "./pull.ts";
import type { FileDocument, PublishOptions, PublishResult, VersionDocument } from "./types.ts";

/** Blobs uploaded at once. */
const PARALLEL_UPLOADS = 4;
/**
 * Files up to this size are hashed and uploaded from one read into memory;
 * larger ones are hashed, then streamed from the disk.
 */
const UPLOAD_IN_MEMORY_MAX = 64 << 20;

/** Files from this size on are read and hashed on the read pool's workers, several at once. */
const POOLED_READ_MIN = 8 << 20;

/** A file read and hashed on a worker, or null to do it on this thread. */
async function readHashedOnPool(
  path: string,
  size: number,
  workers: number,
): Promise<{ bytes: Uint8Array<ArrayBuffer>; digest: string } | null> {
  const pool = size >= POOLED_READ_MIN ? readPool(workers) : null;
  const read = await pool?.read(path, size).catch(() => null);
  // A changed size (null digest) is left to the thread's own read to report.
  return read?.digest ? { bytes: read.bytes, digest: read.digest } : null;
}

/** A file about to be published. */
interface OutgoingFile {
  /** Its path in the checkpoint. */
  path: string;
  /** Hashes it; a file uploaded from memory is read once, for both. */
  open(): Promise<OpenedFile>;
}

/** A hashed file about to be published. */
interface OpenedFile extends UploadBody {
  /** Explains a refused upload: the file changed since it was hashed (null when it did not). */
  changed(): Promise<Error | null>;
}

/** What publishing uses of a client. */
export interface PublishContext {
  /** Worker threads that read and hash files of 8 MiB or more; 0 for none. */
  readonly verifyWorkers: number;
  /** The registry. */
  readonly http: RegistryHttp;
  /** Whether the network is never used. */
  readonly offline: boolean;
}

/**
 * Publishes a checkpoint (see {@linkcode ZooClient.publish}).
 *
 * @param ctx the client's context
 * @param source a checkpoint folder or an in-memory model
 * @param options name, version, card and README
 * @returns the reference and its URLs
 * @throws {RangeError} when the name or version is invalid
 * @throws {Deno.errors.NotFound} when the folder lacks `model.json` or a shard it lists
 * @throws {RegistryError} when the registry refuses
 * @throws {OfflineError} in offline mode
 */
export async function publishCheckpoint(
  ctx: PublishContext,
  source: string | LayersModel,
  options: PublishOptions,
): Promise<PublishResult> {
  const r = parseName(options.name);
  if (!isSemver(options.version)) {
    throw new RangeError(
      `Invalid version "${printable(options.version)}": use a semver version such as "1.0.0"`,
    );
  }
  const reference = `${r.namespace}/${r.name}@${options.version}`;
  const action = `Cannot publish "${reference}"`;
  if (ctx.offline) throw new OfflineError(reference, "publishing needs the network");
  const { files, card } = typeof source === "string"
    ? await folderFiles(source, ctx.verifyWorkers)
    : { files: (await modelToFiles(source)).map(memoryFile), card: undefined };
  if (options.readme !== undefined) {
    const readme = memoryFile({
      path: "README.md",
      bytes: new TextEncoder().encode(options.readme),
    });
    const i = files.findIndex((f) => f.path === "README.md");
    if (i === -1) files.push(readme);
    else files[i] = readme;
  }
  let uploaded = 0;
  let reused = 0;
  const entries: FileDocument[] = [];
  const seen = new Set<string>();
  // Each file is hashed, asked about and uploaded in one job, so hashing one
  // file overlaps uploading another; a small file is read once for both.
  await pool(files.map((file, i) => ({ file, i })), PARALLEL_UPLOADS, async ({ file, i }) => {
    const f = await file.open();
    entries[i] = { path: file.path, digest: f.digest, size: f.size };
    if (seen.has(f.digest)) return;
    seen.add(f.digest);
    if (await ctx.http.hasBlob(action, f.digest)) {
      reused++;
      return;
    }
    try {
      await ctx.http.upload(action, f);
    } catch (e) {
      // The registry hashes what it receives and refuses a mismatch: say why.
      if (e instanceof RegistryError && e.status === 400) throw (await f.changed()) ?? e;
      throw e;
    }
    uploaded++;
  });
  const res = await ctx.http.request(
    action,
    `/api/models/${r.namespace}/${r.name}/${encodeURIComponent(options.version)}`,
    {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        files: entries,
        card: options.card ?? card ?? {},
      }),
    },
  );
  const version = await res.json() as VersionDocument;
  const base = `${r.namespace}/${r.name}/${encodeURIComponent(options.version)}`;
  return {
    reference,
    url: `${ctx.http.url}/${base}`,
    modelJsonUrl: `${ctx.http.url}/api/models/${base}/model.json`,
    version,
    uploaded,
    reused,
  };
}

function memoryFile(f: { path: string; bytes: Uint8Array<ArrayBuffer> }): OutgoingFile {
  const opened: OpenedFile = {
    digest: sha256(f.bytes),
    size: f.bytes.byteLength,
    body: f.bytes,
    changed: () => Promise.resolve(null),
  };
  return { path: f.path, open: () => Promise.resolve(opened) };
}

/** The files of a checkpoint folder: model.json, the shards it lists, README.md; and card.json. */
async function folderFiles(
  dir: string,
  workers: number,
): Promise<{ files: OutgoingFile[]; card: Record<string, unknown> | undefined }> {
  const modelJsonPath = join(dir, "model.json");
  let modelJson: { weightsManifest?: { paths?: unknown }[] };
  try {
    modelJson = JSON.parse(await Deno.readTextFile(modelJsonPath));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Cannot publish "${dir}": it has no model.json`);
    }
    throw new SyntaxError(
      `Cannot publish "${dir}": model.json is not valid JSON: ${(e as Error).message}`,
    );
  }
  const paths = ["model.json"];
  for (const g of modelJson.weightsManifest ?? []) {
    for (const p of Array.isArray(g.paths) ? g.paths : []) {
      const path = String(p).replace(/^\.\//, "");
      if (!FILE_PATH.test(path)) {
        throw new RangeError(
          `Cannot publish "${dir}": model.json lists an invalid shard path "${printable(path)}"`,
        );
      }
      if (!paths.includes(path)) paths.push(path);
    }
  }
  try {
    await Deno.stat(join(dir, "README.md"));
    paths.push("README.md");
  } catch { /* optional */ }
  const files: OutgoingFile[] = [];
  for (const path of paths) {
    const full = join(dir, path);
    let size: number;
    try {
      size = (await Deno.stat(full)).size;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Deno.errors.NotFound(
          `Cannot publish "${dir}": model.json lists "${path}", which is missing`,
        );
      }
      throw e;
    }
    files.push({
      path,
      open: async () => {
        if (size <= UPLOAD_IN_MEMORY_MAX) {
          // Sent from the very bytes that were hashed: nothing can change in between.
          const { bytes, digest } = await readHashedOnPool(full, size, workers) ??
            await readFileHashed(full);
          return {
            digest,
            size: bytes.byteLength,
            body: bytes,
            changed: () => Promise.resolve(null),
          };
        }
        const digest = await hashFile(full);
        return {
          digest,
          size,
          body: { file: full },
          changed: async () =>
            await hashFile(full) === digest
              ? null
              : new Error(`Cannot publish "${dir}": "${path}" changed while publishing`),
        };
      },
    });
  }
  let card: Record<string, unknown> | undefined;
  try {
    card = JSON.parse(await Deno.readTextFile(join(dir, "card.json")));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new SyntaxError(
        `Cannot publish "${dir}": card.json is not valid JSON: ${(e as Error).message}`,
      );
    }
  }
  return { files, card };
}
