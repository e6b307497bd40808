/**
 * Pulling: resolving a reference to a version document (cached when exact),
 * downloading a version's missing blobs in parallel into the cache, and
 * reading cached files back verified. {@linkcode ZooClient} calls these with
 * its own context.
 *
 * @module
 */

import {
  DIGEST,
  FILE_PATH,
  formatRef,
  isSemver,
  type ModelRef,
  parseRef,
  printable,
} from "../../core/names.ts";
import { IntegrityError, OfflineError, RegistryError } from "../errors.ts";
import { createProgress, type Progress } from "../_progress.ts";
import type { ZooCache } from "./cache.ts";
import { exists, sizeIs } from "./fs.ts";
import { problemError, type RegistryHttp } from "./http.ts";
import { pool } from "./pool.ts";
import type { FileDocument, TransferOptions, VersionDocument } from "./types.ts";

/**
 * Blobs downloaded at once. Loopback measurements: one stream leaves the
 * receiving side idle while it hashes and writes; four keep the link busy
 * without holding more than two write chunks each in memory.
 */
const PARALLEL_DOWNLOADS = 4;
/**
 * Cached files read and hashed at once: large ones each on a worker of the
 * read pool (one per core, up to four), small ones on this thread, where
 * one hashes while the other waits on the disk.
 */
const PARALLEL_READS = 4;

/** What the pull functions use of a client. */
export interface PullContext {
  /** The registry. */
  readonly http: RegistryHttp;
  /** The local cache. */
  readonly cache: ZooCache;
  /** Whether the network is never used. */
  readonly offline: boolean;
  /** Show a download bar: true always, false never, undefined when stderr is a terminal. */
  readonly progress: boolean | undefined;
}

/**
 * Resolves a reference to a version document (see {@linkcode ZooClient.resolve}).
 *
 * @param ctx the client's context
 * @param reference `namespace/name`, `namespace/name@1.2.0` or `namespace/name@tag`
 * @returns the version document
 * @throws {RangeError} when the reference is invalid
 * @throws {NotFoundError} when the model, version or tag does not exist
 * @throws {OfflineError} in offline mode when the cache cannot answer
 * @throws {RegistryError} when the registry refuses
 */
export async function resolveVersion(
  ctx: PullContext,
  reference: string,
): Promise<VersionDocument> {
  const r = parseRef(reference);
  const shown = formatRef(r);
  if (isSemver(r.ref)) {
    const cached = await ctx.cache.readVersion(r.namespace, r.name, r.ref);
    if (cached) return cached;
    if (ctx.offline) {
      throw new OfflineError(
        shown,
        `version ${r.ref} of ${r.namespace}/${r.name} is not cached`,
      );
    }
  } else if (ctx.offline) {
    const version = await ctx.cache.readRef(r.namespace, r.name, r.ref);
    if (version === null) {
      throw new OfflineError(shown, `no cached ref "${r.ref}" for ${r.namespace}/${r.name}`);
    }
    const cached = await ctx.cache.readVersion(r.namespace, r.name, version);
    if (cached === null) {
      throw new OfflineError(
        shown,
        `ref "${r.ref}" points at version ${version}, whose manifest is not cached`,
      );
    }
    return cached;
  }
  const action = `Cannot resolve "${shown}"`;
  const res = await ctx.http.request(
    action,
    `/api/models/${r.namespace}/${r.name}/${encodeURIComponent(r.ref)}`,
  );
  const doc = checkVersionDocument(action, r, await res.json());
  await ctx.cache.writeVersion(doc);
  await ctx.cache.writeRef(r.namespace, r.name, r.ref, doc.version);
  return doc;
}

/**
 * Makes sure the named files of a version are in the cache (see
 * {@linkcode ZooClient.ensureFiles}).
 *
 * @param ctx the client's context
 * @param doc the version document
 * @param paths the checkpoint paths needed
 * @param options progress callback; `verify` hashes cached copies too
 * @throws {RangeError} when a path is not a file of the version
 * @throws {IntegrityError} when downloaded bytes do not match their digest
 * @throws {OfflineError} in offline mode when a file is not cached
 */
export async function ensureFiles(
  ctx: PullContext,
  doc: VersionDocument,
  paths: string[],
  options: TransferOptions & { verify?: boolean } = {},
): Promise<void> {
  const shown = `${doc.namespace}/${doc.name}@${doc.version}`;
  const wanted = new Map<string, FileDocument>();
  for (const p of paths) {
    const f = fileOf(doc, p);
    wanted.set(f.digest, f);
  }
  // Once per cache object: what killed downloads left behind and no download will use.
  await ctx.cache.sweep();
  const missing: FileDocument[] = [];
  // Offline, a copy that is there but wrong is reported as corrupted, not as missing.
  const corrupted: FileDocument[] = [];
  let total = 0;
  let have = 0;
  for (const f of wanted.values()) {
    total += f.size;
    const there = ctx.offline && await exists(ctx.cache.blobPath(f.digest));
    const present = options.verify
      ? await ctx.cache.hasBlob(f.digest)
      : await sizeIs(ctx.cache.blobPath(f.digest), f.size);
    if (present) have += f.size;
    else (there ? corrupted : missing).push(f);
  }
  const report = (done: number) => options.onProgress?.(total === 0 ? 1 : done / total);
  if (corrupted.length > 0) throw corruptedOffline(shown, corrupted);
  if (missing.length > 0 && ctx.offline) {
    const list = missing.map((f) => `"${f.path}" (${f.digest})`).join(", ");
    throw new OfflineError(shown, `file ${list} is not cached`);
  }
  const missingBytes = missing.reduce((n, f) => n + f.size, 0);
  const bar: Progress = createProgress(missingBytes > 0 ? ctx.progress : false);
  bar.start(shown, missingBytes);
  let arrived = 0;
  try {
    await pool(missing, PARALLEL_DOWNLOADS, async (f) => {
      let held = 0;
      await downloadOne(ctx, shown, f, (now) => {
        arrived += now - held;
        held = now;
        bar.update(arrived);
        report(have + arrived);
      });
    });
  } finally {
    bar.stop();
  }
  report(total);
}

/**
 * Reads files of a version into one buffer, each verified while it is read
 * (see {@linkcode ZooClient.readFiles}).
 *
 * @param ctx the client's context
 * @param doc the version document
 * @param paths the files' checkpoint paths
 * @returns their verified bytes, one after the other
 * @throws {RangeError} when a path is not a file of the version
 * @throws {IntegrityError} when the registry sends bytes that do not match
 * @throws {OfflineError} in offline mode when a file is not cached or is corrupted
 */
export async function readFiles(
  ctx: PullContext,
  doc: VersionDocument,
  paths: string[],
): Promise<Uint8Array<ArrayBuffer>> {
  const files = paths.map((p) => fileOf(doc, p));
  const out = new Uint8Array(files.reduce((n, f) => n + f.size, 0));
  let offset = 0;
  const parts = files.map((f) => {
    const part = { f, target: out.subarray(offset, offset + f.size) };
    offset += f.size;
    return part;
  });
  await pool(parts, PARALLEL_READS, async ({ f, target }) => {
    const there = ctx.offline && await exists(ctx.cache.blobPath(f.digest));
    if (await ctx.cache.readBlobInto(f.digest, target)) return;
    if (there) throw corruptedOffline(`${doc.namespace}/${doc.name}@${doc.version}`, [f]);
    await ensureFiles(ctx, doc, [f.path]);
    if (await ctx.cache.readBlobInto(f.digest, target)) return;
    throw new Error(
      `Cannot read "${f.path}" of "${doc.namespace}/${doc.name}@${doc.version}": the cached blob changed while in use`,
    );
  });
  return out;
}

/**
 * Reads one file of a version, verified in the same pass (see
 * {@linkcode ZooClient.readFile}).
 *
 * @param ctx the client's context
 * @param doc the version document
 * @param path the file's checkpoint path
 * @returns its verified bytes
 * @throws {RangeError} when the path is not a file of the version
 * @throws {IntegrityError} when the registry sends bytes that do not match
 * @throws {OfflineError} in offline mode when the file is not cached or is corrupted
 */
export async function readFile(
  ctx: PullContext,
  doc: VersionDocument,
  path: string,
): Promise<Uint8Array> {
  const f = fileOf(doc, path);
  const there = ctx.offline && await exists(ctx.cache.blobPath(f.digest));
  const first = await ctx.cache.readBlob(f.digest);
  if (first) return first;
  if (there) throw corruptedOffline(`${doc.namespace}/${doc.name}@${doc.version}`, [f]);
  await ensureFiles(ctx, doc, [path]);
  const again = await ctx.cache.readBlob(f.digest);
  if (again) return again;
  throw new Error(
    `Cannot read "${path}" of "${doc.namespace}/${doc.name}@${doc.version}": the cached blob changed while in use`,
  );
}

async function downloadOne(
  ctx: PullContext,
  shown: string,
  f: FileDocument,
  onBytes: (held: number) => void,
): Promise<void> {
  const path = `/api/blobs/${f.digest}`;
  const action = `Cannot download "${f.path}" of "${shown}" from "${ctx.http.url}"`;
  try {
    await ctx.cache.download(f.digest, f.size, async (start) => {
      const headers: Record<string, string> = start > 0 ? { range: `bytes=${start}-` } : {};
      const res = await ctx.http.send(action, path, { headers });
      if (res.ok || res.status === 416) return res;
      throw await problemError(action, res);
    }, onBytes);
  } catch (e) {
    if (e instanceof IntegrityError || e instanceof RegistryError || e instanceof RangeError) {
      throw e;
    }
    // A cut connection's own message names neither the file nor the registry.
    const why = e instanceof Error ? e.message : String(e);
    throw new TypeError(
      `${action}: gave up after ${ctx.cache.retry.attempts} attempts: ${
        why.startsWith(action) ? why.slice(action.length + 2) : why
      }; what arrived is kept in the cache and the next pull resumes it`,
      { cause: e },
    );
  }
}

function checkVersionDocument(action: string, r: ModelRef, value: unknown): VersionDocument {
  const doc = value as Partial<VersionDocument>;
  const bad = (why: string) =>
    new TypeError(`${action}: the registry sent an invalid version document: ${why}`);
  if (typeof doc !== "object" || doc === null) throw bad("not an object");
  if (doc.namespace !== r.namespace || doc.name !== r.name) {
    throw bad(`it names "${printable(`${doc.namespace}/${doc.name}`)}"`);
  }
  if (typeof doc.version !== "string" || !isSemver(doc.version)) throw bad("no valid version");
  if (isSemver(r.ref) && doc.version !== r.ref) {
    throw bad(`asked for version ${r.ref}, got ${printable(doc.version)}`);
  }
  if (!Array.isArray(doc.files)) throw bad("no files");
  for (const f of doc.files) {
    if (
      typeof f?.path !== "string" || !FILE_PATH.test(f.path) || typeof f.digest !== "string" ||
      !DIGEST.test(f.digest) || !Number.isSafeInteger(f.size) || f.size < 0
    ) {
      throw bad(`invalid file entry ${printable(JSON.stringify(f))}`);
    }
  }
  return doc as VersionDocument;
}

function fileOf(doc: VersionDocument, path: string): FileDocument {
  const f = doc.files.find((x) => x.path === path);
  if (!f) {
    throw new RangeError(
      `Cannot find "${printable(path)}" in "${doc.namespace}/${doc.name}@${doc.version}": it has ${
        doc.files.map((x) => `"${x.path}"`).join(", ")
      }`,
    );
  }
  return f;
}

/** Offline, cached copies whose bytes do not match their digest or size. */
function corruptedOffline(shown: string, files: FileDocument[]): OfflineError {
  const list = files.map((f) => `"${f.path}" (${f.digest})`).join(", ");
  return new OfflineError(
    shown,
    `the cached copy of file ${list} is corrupted (its bytes do not match the file's digest or size)`,
  );
}

/**
 * Parses `namespace/name`, refusing a version.
 *
 * @param name `namespace/name`
 * @returns the parts (ref is `latest`)
 * @throws {RangeError} when the name is invalid or names a version
 */
export function parseName(name: string): ModelRef {
  if (name.includes("@")) {
    throw new RangeError(
      `Invalid model name "${printable(name)}": use "namespace/name" without a version`,
    );
  }
  return parseRef(name);
}
