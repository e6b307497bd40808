/**
 * The registry client: resolves references, pulls checkpoints into a local
 * content-addressed cache (every byte verified against its digest), loads
 * them as `tf.LayersModel`s, and publishes folders or in-memory models.
 *
 * Configuration is flags first (constructor options), then the environment
 * (`ZOO_URL`, `ZOO_TOKEN`, `ZOO_CACHE`, `ZOO_OFFLINE`), then defaults.
 *
 * @module
 */

import http from "node:http";
import https from "node:https";
import { homedir } from "node:os";
import { join } from "node:path";
import {
  DIGEST,
  FILE_PATH,
  formatRef,
  isSemver,
  type ModelRef,
  parseRef,
  printable,
} from "../core/names.ts";
import { hashFile, readFileHashed, type RetryPolicy, sha256, ZooCache } from "./cache.ts";
import {
  IntegrityError,
  NotFoundError,
  OfflineError,
  type Problem,
  RegistryError,
} from "./errors.ts";
import { createProgress, type Progress } from "./_progress.ts";
import { loadZooModel, modelToFiles } from "./io_handler.ts";
import type { LayersModel } from "./_tfjs_types.ts";
import type { ModelDocument } from "../core/wire.ts";

/** The registry's default address. */
export const DEFAULT_URL = "http://localhost:8000";

/**
 * Blobs downloaded at once. Loopback measurements: one stream leaves the
 * receiving side idle while it hashes and writes; four keep the link busy
 * without holding more than two write chunks each in memory.
 */
const PARALLEL_DOWNLOADS = 4;
/** Blobs uploaded at once. */
const PARALLEL_UPLOADS = 4;
/** Cached files read and hashed at once (one hashes while the other waits on the disk). */
const PARALLEL_READS = 2;
/** Uploads stream a file in chunks of this size. */
const UPLOAD_CHUNK = 1 << 20;
/**
 * Files up to this size are hashed and uploaded from one read into memory;
 * larger ones are hashed, then streamed from the disk.
 */
const UPLOAD_IN_MEMORY_MAX = 64 << 20;

/** One file of a version: its path in the checkpoint and the blob holding it. */
export interface FileDocument {
  /** Relative path, e.g. `model.json`, `group1-shard1of1.bin`, `README.md`. */
  path: string;
  /** `sha256:<hex>` of its bytes. */
  digest: string;
  /** Its length in bytes. */
  size: number;
}

/** One version, as `GET /api/models/:ns/:name/:ref` returns it. */
export interface VersionDocument {
  /** The namespace, e.g. `zoo`. */
  namespace: string;
  /** The model name, e.g. `lenet5`. */
  name: string;
  /** The exact version the reference resolved to. */
  version: string;
  /** Hidden from tag resolution; still loadable by exact version. */
  yanked: boolean;
  /** ISO 8601 time of publication. */
  createdAt: string;
  /** Downloads of its model.json. */
  downloads: number;
  /** Every file of the checkpoint. */
  files: FileDocument[];
  /** The model card. */
  card: Record<string, unknown>;
  /** Architecture metadata the registry computed from model.json. */
  architecture: Record<string, unknown>;
}

/** One model, as `GET /api/models/:ns/:name` returns it: the registry's wire type. */
export type { ModelDocument };

/** Options of {@linkcode ZooClient}. Each falls back to its environment variable, then a default. */
export interface ZooClientOptions {
  /**
   * The registry's base URL; env `ZOO_URL`.
   * @default {"http://localhost:8000"}
   */
  url?: string;
  /** A bearer token for publishing; env `ZOO_TOKEN`. */
  token?: string;
  /**
   * The cache folder; env `ZOO_CACHE`.
   * @default {"$XDG_CACHE_HOME/deno-model-zoo, else ~/.cache/deno-model-zoo"}
   */
  cacheDir?: string;
  /**
   * Never touch the network: resolve from cached refs and blobs only; env `ZOO_OFFLINE=1`.
   * @default {false}
   */
  offline?: boolean;
  /**
   * The fetch to use (tests, proxies, custom agents).
   * @default {globalThis.fetch}
   */
  fetch?: typeof fetch;
  /**
   * Show a download bar on stderr: true always, false never.
   * @default {"only when stderr is a terminal"}
   */
  progress?: boolean;
  /**
   * How a download retries a cut connection or a server error.
   * @default {"5 attempts, waits doubling from 250 ms with jitter"}
   */
  retry?: RetryPolicy;
}

/** Options of downloads and loads. */
export interface TransferOptions {
  /** Called with the fraction done, 0 to 1, as bytes arrive (tfjs's `onProgress`). */
  onProgress?: (fraction: number) => void;
}

/** A file of a pulled version, verified in the cache. */
export interface PulledFile extends FileDocument {
  /** The verified blob in the cache. */
  localPath: string;
}

/** What {@linkcode ZooClient.pull} returns. */
export interface PulledModel {
  /** `namespace/name@version`, the exact version. */
  reference: string;
  /** The version document. */
  version: VersionDocument;
  /** A folder holding every file under its checkpoint path (links into the blob cache). */
  dir: string;
  /** Every file, verified. */
  files: PulledFile[];
}

/** What to publish besides the weights. */
export interface PublishOptions {
  /** `namespace/name`. */
  name: string;
  /** A semver version; versions are immutable. */
  version: string;
  /** The model card; by default the folder's `card.json`, else `{}`. */
  card?: Record<string, unknown>;
  /** The model card's markdown, published as `README.md`; by default the folder's `README.md`. */
  readme?: string;
}

/** What {@linkcode ZooClient.publish} returns. */
export interface PublishResult {
  /** `namespace/name@version`. */
  reference: string;
  /** The model's page on the registry. */
  url: string;
  /** A model.json URL that stock `tf.loadLayersModel(url)` loads. */
  modelJsonUrl: string;
  /** The version document the registry stored. */
  version: VersionDocument;
  /** Blobs sent. */
  uploaded: number;
  /** Blobs the registry already had, not sent again. */
  reused: number;
}

/** A file about to be published. */
interface OutgoingFile {
  /** Its path in the checkpoint. */
  path: string;
  /** Hashes it; a file uploaded from memory is read once, for both. */
  open(): Promise<OpenedFile>;
}

/** A hashed file about to be published. */
interface OpenedFile {
  /** `sha256:<hex>` of the bytes {@linkcode body} sends. */
  digest: string;
  /** Its length in bytes. */
  size: number;
  /** The bytes to upload, in memory, or the file to stream them from. */
  body: Uint8Array<ArrayBuffer> | { file: string };
  /** Explains a refused upload: the file changed since it was hashed (null when it did not). */
  changed(): Promise<Error | null>;
}

/**
 * A client of one registry with one local cache.
 *
 * @example Load a checkpoint (needs a running registry)
 * ```ts ignore
 * import { ZooClient } from "./client.ts";
 * const zoo = new ZooClient({ url: "http://localhost:8000" });
 * const model = await zoo.loadModel("zoo/lenet5@1.0.0");
 * model.summary();
 * ```
 */
export class ZooClient {
  /** The registry's base URL, without a trailing slash. */
  readonly url: string;
  /** The cache folder. */
  readonly cacheDir: string;
  /** Whether the network is never used. */
  readonly offline: boolean;
  /** The local cache. */
  readonly cache: ZooCache;
  readonly #token: string | undefined;
  readonly #fetch: typeof fetch;
  readonly #customFetch: boolean;
  readonly #progress: boolean | undefined;

  /**
   * Creates a client; it touches neither the network nor the disk until used.
   *
   * @param options flags; each falls back to its environment variable, then a default
   * @throws {TypeError} when the URL is not an http(s) URL
   *
   * @example Configure a client
   * ```ts
   * import { ZooClient } from "./client.ts";
   * const zoo = new ZooClient({ url: "http://localhost:8000", cacheDir: "/tmp/zoo-cache", offline: true });
   * console.log(zoo.url, zoo.cacheDir, zoo.offline);
   * ```
   */
  constructor(options: ZooClientOptions = {}) {
    const url = options.url ?? env("ZOO_URL") ?? DEFAULT_URL;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TypeError(`Invalid registry URL "${printable(url)}": use e.g. "${DEFAULT_URL}"`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new TypeError(`Invalid registry URL "${printable(url)}": use http or https`);
    }
    this.url = url.replace(/\/+$/, "");
    this.#token = options.token ?? env("ZOO_TOKEN");
    this.cacheDir = options.cacheDir ?? env("ZOO_CACHE") ?? defaultCacheDir();
    this.offline = options.offline ??
      ["1", "true", "yes"].includes((env("ZOO_OFFLINE") ?? "").toLowerCase());
    const f = options.fetch ?? globalThis.fetch;
    this.#customFetch = options.fetch !== undefined;
    this.#fetch = (input, init) => f(input, init);
    this.#progress = options.progress;
    this.cache = new ZooCache(
      this.cacheDir,
      options.retry === undefined ? {} : { retry: options.retry },
    );
  }

  /**
   * Fetches one model's summary: its versions, tags and downloads.
   *
   * @param name `namespace/name`
   * @returns the model document
   * @throws {NotFoundError} when the model does not exist
   * @throws {RegistryError} when the registry refuses
   * @throws {OfflineError} in offline mode
   */
  async getModel(name: string): Promise<ModelDocument> {
    const r = parseName(name);
    const action = `Cannot get "${r.namespace}/${r.name}"`;
    if (this.offline) {
      throw new OfflineError(`${r.namespace}/${r.name}`, "model summaries are not cached");
    }
    const res = await this.#request(action, `/api/models/${r.namespace}/${r.name}`);
    return await res.json() as ModelDocument;
  }

  /**
   * Resolves a reference to a version document. An exact version already in
   * the cache needs no network (versions are immutable); a tag is asked of
   * the registry (tags move) and remembered for offline use.
   *
   * @param reference `namespace/name`, `namespace/name@1.2.0` or `namespace/name@tag`
   * @returns the version document
   * @throws {RangeError} when the reference is invalid
   * @throws {NotFoundError} when the model, version or tag does not exist
   * @throws {OfflineError} in offline mode when the cache cannot answer
   * @throws {RegistryError} when the registry refuses
   *
   * @example Resolve the latest version (needs a running registry)
   * ```ts ignore
   * import { ZooClient } from "./client.ts";
   * const doc = await new ZooClient().resolve("zoo/lenet5");
   * console.log(doc.version, doc.files.map((f) => f.path));
   * ```
   */
  async resolve(reference: string): Promise<VersionDocument> {
    const r = parseRef(reference);
    const shown = formatRef(r);
    if (isSemver(r.ref)) {
      const cached = await this.cache.readVersion(r.namespace, r.name, r.ref);
      if (cached) return cached;
      if (this.offline) {
        throw new OfflineError(
          shown,
          `version ${r.ref} of ${r.namespace}/${r.name} is not cached`,
        );
      }
    } else if (this.offline) {
      const version = await this.cache.readRef(r.namespace, r.name, r.ref);
      if (version === null) {
        throw new OfflineError(shown, `no cached ref "${r.ref}" for ${r.namespace}/${r.name}`);
      }
      const cached = await this.cache.readVersion(r.namespace, r.name, version);
      if (cached === null) {
        throw new OfflineError(
          shown,
          `ref "${r.ref}" points at version ${version}, whose manifest is not cached`,
        );
      }
      return cached;
    }
    const action = `Cannot resolve "${shown}"`;
    const res = await this.#request(
      action,
      `/api/models/${r.namespace}/${r.name}/${encodeURIComponent(r.ref)}`,
    );
    const doc = checkVersionDocument(action, r, await res.json());
    await this.cache.writeVersion(doc);
    await this.cache.writeRef(r.namespace, r.name, r.ref, doc.version);
    return doc;
  }

  /**
   * Downloads every file of a version into the cache (resuming interrupted
   * downloads), verifies every file against its digest, and lays them out in
   * a folder.
   *
   * @param reference `namespace/name[@version-or-tag]`
   * @param options progress callback
   * @returns the version, its folder and its verified files
   * @throws {IntegrityError} when the registry sends bytes that do not match their digest
   * @throws {OfflineError} in offline mode when something is not cached
   * @throws {NotFoundError} when the model, version or tag does not exist
   * @throws {RegistryError} when the registry refuses
   *
   * @example Pull a checkpoint (needs a running registry)
   * ```ts ignore
   * import { ZooClient } from "./client.ts";
   * const pulled = await new ZooClient().pull("zoo/lenet5@1.0.0");
   * console.log(pulled.dir);
   * ```
   */
  async pull(reference: string, options: TransferOptions = {}): Promise<PulledModel> {
    const doc = await this.resolve(reference);
    await this.ensureFiles(doc, doc.files.map((f) => f.path), { ...options, verify: true });
    const dir = await this.cache.linkFiles(doc);
    return {
      reference: `${doc.namespace}/${doc.name}@${doc.version}`,
      version: doc,
      dir,
      files: doc.files.map((f) => ({ ...f, localPath: this.cache.blobPath(f.digest) })),
    };
  }

  /**
   * Makes sure the named files of a version are in the cache, downloading
   * what is missing with one progress bar.
   *
   * @param doc the version document
   * @param paths the checkpoint paths needed
   * @param options progress callback; `verify` hashes cached copies too (else size is trusted until use)
   * @throws {RangeError} when a path is not a file of the version
   * @throws {IntegrityError} when downloaded bytes do not match their digest
   * @throws {OfflineError} in offline mode when a file is not cached
   */
  async ensureFiles(
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
    await this.cache.sweep();
    const missing: FileDocument[] = [];
    // Offline, a copy that is there but wrong is reported as corrupted, not as missing.
    const corrupted: FileDocument[] = [];
    let total = 0;
    let have = 0;
    for (const f of wanted.values()) {
      total += f.size;
      const there = this.offline && await exists(this.cache.blobPath(f.digest));
      const present = options.verify
        ? await this.cache.hasBlob(f.digest)
        : await sizeIs(this.cache.blobPath(f.digest), f.size);
      if (present) have += f.size;
      else (there ? corrupted : missing).push(f);
    }
    const report = (done: number) => options.onProgress?.(total === 0 ? 1 : done / total);
    if (corrupted.length > 0) throw corruptedOffline(shown, corrupted);
    if (missing.length > 0 && this.offline) {
      const list = missing.map((f) => `"${f.path}" (${f.digest})`).join(", ");
      throw new OfflineError(shown, `file ${list} is not cached`);
    }
    const missingBytes = missing.reduce((n, f) => n + f.size, 0);
    const bar: Progress = createProgress(missingBytes > 0 ? this.#progress : false);
    bar.start(shown, missingBytes);
    let arrived = 0;
    try {
      await pool(missing, PARALLEL_DOWNLOADS, async (f) => {
        let held = 0;
        await this.#downloadBlob(shown, f, (now) => {
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
   * Reads files of a version into one buffer, in the order given (a model's
   * weight shards), each verified against its digest while it is read;
   * fetches what is missing and refetches what is corrupted.
   *
   * @param doc the version document
   * @param paths the files' checkpoint paths
   * @returns their verified bytes, one after the other
   * @throws {RangeError} when a path is not a file of the version
   * @throws {IntegrityError} when the registry sends bytes that do not match
   * @throws {OfflineError} in offline mode when a file is not cached or is corrupted
   */
  async readFiles(doc: VersionDocument, paths: string[]): Promise<Uint8Array<ArrayBuffer>> {
    const files = paths.map((p) => fileOf(doc, p));
    const out = new Uint8Array(files.reduce((n, f) => n + f.size, 0));
    let offset = 0;
    const parts = files.map((f) => {
      const part = { f, target: out.subarray(offset, offset + f.size) };
      offset += f.size;
      return part;
    });
    await pool(parts, PARALLEL_READS, async ({ f, target }) => {
      const there = this.offline && await exists(this.cache.blobPath(f.digest));
      if (await this.cache.readBlobInto(f.digest, target)) return;
      if (there) throw corruptedOffline(`${doc.namespace}/${doc.name}@${doc.version}`, [f]);
      await this.ensureFiles(doc, [f.path]);
      if (await this.cache.readBlobInto(f.digest, target)) return;
      throw new Error(
        `Cannot read "${f.path}" of "${doc.namespace}/${doc.name}@${doc.version}": the cached blob changed while in use`,
      );
    });
    return out;
  }

  /**
   * Reads one file of a version from the cache, verified against its digest
   * in the same pass; fetches it when missing, refetches it when corrupted.
   *
   * @param doc the version document
   * @param path the file's checkpoint path, e.g. `model.json`
   * @returns its verified bytes
   * @throws {RangeError} when the path is not a file of the version
   * @throws {IntegrityError} when the registry sends bytes that do not match
   * @throws {OfflineError} in offline mode when the file is not cached or is corrupted
   */
  async readFile(doc: VersionDocument, path: string): Promise<Uint8Array> {
    const f = fileOf(doc, path);
    const there = this.offline && await exists(this.cache.blobPath(f.digest));
    const first = await this.cache.readBlob(f.digest);
    if (first) return first;
    if (there) throw corruptedOffline(`${doc.namespace}/${doc.name}@${doc.version}`, [f]);
    await this.ensureFiles(doc, [path]);
    const again = await this.cache.readBlob(f.digest);
    if (again) return again;
    throw new Error(
      `Cannot read "${path}" of "${doc.namespace}/${doc.name}@${doc.version}": the cached blob changed while in use`,
    );
  }

  /**
   * Loads a checkpoint as a `tf.LayersModel`, through the cache. The caller
   * owns the model: `model.dispose()` frees its weights.
   *
   * @param reference `namespace/name[@version-or-tag]`
   * @param options progress callback
   * @returns the model
   * @throws {IntegrityError} when the registry sends bytes that do not match their digest
   * @throws {OfflineError} in offline mode when something is not cached
   * @throws {NotFoundError} when the model, version or tag does not exist
   *
   * @example Load and predict (needs a running registry)
   * ```ts ignore
   * import * as tf from "@tensorflow/tfjs";
   * import { ZooClient } from "./client.ts";
   * const model = await new ZooClient().loadModel("zoo/lenet5@1.0.0");
   * const y = model.predict(tf.zeros([1, 28, 28, 1])) as tf.Tensor;
   * console.log(await y.data());
   * ```
   */
  loadModel(reference: string, options: TransferOptions = {}): Promise<LayersModel> {
    return loadZooModel(this, reference, options);
  }

  /**
   * Publishes a checkpoint: hashes its files, uploads only the blobs the
   * registry lacks, then records the version.
   *
   * @param source a folder holding `model.json` and its shards (and optionally
   *   `card.json`, `README.md`), or an in-memory `tf.LayersModel`
   * @param options name, version, card and README
   * @returns the reference and its URLs
   * @throws {RangeError} when the name or version is invalid
   * @throws {Deno.errors.NotFound} when the folder lacks `model.json` or a shard it lists
   * @throws {RegistryError} when the registry refuses: 401 (no or bad token), 403
   *   (token lacks `publish:<namespace>`), 409 (version exists), 422 (invalid checkpoint)
   * @throws {OfflineError} in offline mode
   *
   * @example Publish a folder (needs a running registry and a token)
   * ```ts ignore
   * import { ZooClient } from "./client.ts";
   * const zoo = new ZooClient({ token: "zoo_…" });
   * const { reference, url } = await zoo.publish("./out/lenet5", { name: "me/lenet5", version: "1.0.0" });
   * console.log(reference, url);
   * ```
   */
  async publish(
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
    if (this.offline) throw new OfflineError(reference, "publishing needs the network");
    const { files, card } = typeof source === "string"
      ? await folderFiles(source)
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
      if (await this.#hasRemoteBlob(action, f.digest)) {
        reused++;
        return;
      }
      try {
        await this.#upload(action, f);
      } catch (e) {
        // The registry hashes what it receives and refuses a mismatch: say why.
        if (e instanceof RegistryError && e.status === 400) throw (await f.changed()) ?? e;
        throw e;
      }
      uploaded++;
    });
    const res = await this.#request(
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
      url: `${this.url}/${base}`,
      modelJsonUrl: `${this.url}/api/models/${base}/model.json`,
      version,
      uploaded,
      reused,
    };
  }

  /**
   * Points a tag at a version.
   *
   * @param name `namespace/name`
   * @param tag the tag, e.g. `stable`
   * @param version an existing version
   * @throws {RegistryError} when the registry refuses (401, 403, 404, 422)
   */
  async setTag(name: string, tag: string, version: string): Promise<void> {
    const r = parseRef(`${name}@${tag}`);
    const action = `Cannot tag "${r.namespace}/${r.name}@${version}" as "${tag}"`;
    if (this.offline) throw new OfflineError(formatRef(r), "moving a tag needs the network");
    await this.#request(action, `/api/models/${r.namespace}/${r.name}/tags/${r.ref}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ version }),
    });
  }

  /**
   * Yanks a version: hidden from tag and `latest` resolution, still loadable by exact version.
   *
   * @param reference `namespace/name@version`
   * @throws {RangeError} when the reference is not an exact version
   * @throws {RegistryError} when the registry refuses (401, 403, 404)
   */
  async yank(reference: string): Promise<void> {
    const r = parseRef(reference);
    if (!isSemver(r.ref)) {
      throw new RangeError(`Cannot yank "${printable(reference)}": name an exact version`);
    }
    if (this.offline) throw new OfflineError(formatRef(r), "yanking needs the network");
    await this.#request(
      `Cannot yank "${formatRef(r)}"`,
      `/api/models/${r.namespace}/${r.name}/${encodeURIComponent(r.ref)}/yank`,
      { method: "POST" },
    );
  }

  async #downloadBlob(shown: string, f: FileDocument, onBytes: (held: number) => void) {
    const path = `/api/blobs/${f.digest}`;
    const action = `Cannot download "${f.path}" of "${shown}" from "${this.url}"`;
    try {
      await this.cache.download(f.digest, f.size, async (start) => {
        const headers: Record<string, string> = start > 0 ? { range: `bytes=${start}-` } : {};
        const res = await this.#send(action, path, { headers });
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
        `${action}: gave up after ${this.cache.retry.attempts} attempts: ${
          why.startsWith(action) ? why.slice(action.length + 2) : why
        }; what arrived is kept in the cache and the next pull resumes it`,
        { cause: e },
      );
    }
  }

  /**
   * Uploads one blob. Without a custom fetch it goes through node:http with a
   * Content-Length: Deno's fetch sends a streamed body chunked, which costs
   * the registry (a Deno server) about ten times the CPU when four run at
   * once (3.2 s against 0.33 s for 4 × 32 MiB), and even a body in memory
   * costs fetch three times the CPU of node:http (0.28-0.37 s against 0.09
   * s for 4 × 32 MiB on loopback, client and server together).
   */
  async #upload(action: string, f: OpenedFile): Promise<void> {
    const path = `/api/blobs?digest=${encodeURIComponent(f.digest)}`;
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (this.#customFetch) {
      const body = f.body instanceof Uint8Array ? f.body : fileStream(await Deno.open(f.body.file));
      await this.#request(action, path, { method: "POST", headers, body });
      return;
    }
    if (this.#token !== undefined && this.#token !== "") {
      headers.authorization = `Bearer ${this.#token}`;
    }
    headers["content-length"] = String(f.size);
    const url = new URL(`${this.url}${path}`);
    let res: Response;
    try {
      res = await postNode(url, headers, f.body);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new TypeError(
        `${action}: cannot reach the registry at "${this.url}": ${why}; check ZOO_URL or --registry`,
        { cause: e },
      );
    }
    if (!res.ok) throw await problemError(action, res, url.href);
  }

  async #hasRemoteBlob(action: string, digest: string): Promise<boolean> {
    const res = await this.#send(action, `/api/blobs/${digest}`, { method: "HEAD" });
    await res.body?.cancel();
    // A HEAD answer has no problem body to explain a refusal: let the upload
    // itself fail with the registry's detail.
    return res.ok;
  }

  /** Sends a request; network failures become a TypeError naming the registry. */
  async #send(action: string, path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.#token !== undefined && this.#token !== "") {
      headers.set("authorization", `Bearer ${this.#token}`);
    }
    const url = `${this.url}${path}`;
    try {
      return await this.#fetch(url, { ...init, headers });
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new TypeError(
        `${action}: cannot reach the registry at "${this.url}": ${why}; check ZOO_URL or --registry, or use offline mode (ZOO_OFFLINE=1) with a cached version`,
        { cause: e },
      );
    }
  }

  /** Sends a request and throws the registry's problem on a non-2xx answer. */
  async #request(action: string, path: string, init: RequestInit = {}): Promise<Response> {
    const res = await this.#send(action, path, init);
    if (res.ok) return res;
    throw await problemError(action, res);
  }
}

/** Turns an error response into a {@linkcode RegistryError} (or {@linkcode NotFoundError}). */
async function problemError(
  action: string,
  res: Response,
  url = res.url,
): Promise<RegistryError> {
  let problem: Problem = {
    type: "about:blank",
    title: res.statusText || `HTTP ${res.status}`,
    status: res.status,
    detail: "the registry gave no detail",
  };
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as Partial<Problem>;
    problem = {
      type: typeof body.type === "string" ? body.type : problem.type,
      title: typeof body.title === "string" ? body.title : problem.title,
      status: res.status,
      detail: typeof body.detail === "string" ? body.detail : problem.detail,
    };
  } catch {
    if (text.trim() !== "") problem.detail = printable(text.trim());
  }
  return res.status === 404
    ? new NotFoundError(action, url, problem)
    : new RegistryError(action, url, problem);
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

function parseName(name: string): ModelRef {
  if (name.includes("@")) {
    throw new RangeError(
      `Invalid model name "${printable(name)}": use "namespace/name" without a version`,
    );
  }
  return parseRef(name);
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
          const { bytes, digest } = await readFileHashed(full);
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

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
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
 * Runs `run` on every item, at most `limit` at once. After a failure no new
 * item starts; the ones running finish (a download keeps its partial), then
 * the first failure is thrown.
 */
async function pool<T>(items: T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await run(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/**
 * POSTs a body with node:http(s), streaming a file in {@linkcode UPLOAD_CHUNK}s
 * (waiting for the socket to drain), and answers a fetch-like Response.
 */
function postNode(
  url: URL,
  headers: Record<string, string>,
  body: Uint8Array | { file: string },
): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const req = (url.protocol === "https:" ? https : http).request(
      url,
      { method: "POST", headers },
      (res) => {
        const chunks: Uint8Array<ArrayBuffer>[] = [];
        res.on("data", (c: Uint8Array) => chunks.push(new Uint8Array(c)));
        res.on("error", reject);
        res.on("end", () => {
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (typeof v === "string") out.set(k, v);
          }
          const status = res.statusCode ?? 502;
          resolve(
            new Response(status === 204 || status === 304 ? null : new Blob(chunks), {
              status,
              statusText: res.statusMessage ?? "",
              headers: out,
            }),
          );
        });
      },
    );
    req.on("error", reject);
    const drained = () => new Promise<void>((r) => req.once("drain", () => r()));
    (async () => {
      if (body instanceof Uint8Array) {
        for (let off = 0; off < body.byteLength; off += UPLOAD_CHUNK) {
          if (!req.write(body.subarray(off, off + UPLOAD_CHUNK))) await drained();
        }
      } else {
        using file = await Deno.open(body.file);
        for (;;) {
          // A fresh buffer per chunk: the socket may still hold the last one.
          const buf = new Uint8Array(UPLOAD_CHUNK);
          const n = await file.read(buf);
          if (n === null) break;
          if (!req.write(buf.subarray(0, n))) await drained();
        }
      }
      req.end();
    })().catch((e) => req.destroy(e instanceof Error ? e : new Error(String(e))));
  });
}

/** A file's bytes as a stream of large chunks; the file is closed at the end or on cancel. */
function fileStream(file: Deno.FsFile): ReadableStream<Uint8Array> {
  const close = () => {
    try {
      file.close();
    } catch {
      // already closed
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const buf = new Uint8Array(UPLOAD_CHUNK);
        const n = await file.read(buf);
        if (n === null) {
          close();
          controller.close();
        } else {
          controller.enqueue(n === buf.byteLength ? buf : buf.subarray(0, n));
        }
      } catch (e) {
        close();
        controller.error(e);
      }
    },
    cancel: close,
  });
}

async function sizeIs(path: string, size: number): Promise<boolean> {
  try {
    return (await Deno.stat(path)).size === size;
  } catch {
    return false;
  }
}

function env(name: string): string | undefined {
  try {
    const v = Deno.env.get(name);
    return v === "" ? undefined : v;
  } catch {
    return undefined; // no --allow-env: fall back to the default
  }
}

function defaultCacheDir(): string {
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "deno-model-zoo");
  let home = env("HOME") ?? env("USERPROFILE");
  if (!home) {
    try {
      home = homedir();
    } catch {
      home = ".";
    }
  }
  return join(home, ".cache", "deno-model-zoo");
}
