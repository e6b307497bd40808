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

import { homedir } from "node:os";
import { join } from "node:path";
import { formatRef, isSemver, parseRef, printable } from "../../core/names.ts";
import { OfflineError } from "../errors.ts";
import type { LayersModel } from "../_tfjs_types.ts";
import { ZooCache } from "./cache.ts";
import { RegistryHttp } from "./http.ts";
import { loadZooModel } from "./io_handler.ts";
import { publishCheckpoint, type PublishContext } from "./publish.ts";
import {
  ensureFiles,
  parseName,
  type PullContext,
  readFile,
  readFiles,
  resolveVersion,
} from "./pull.ts";
import type {
  ModelDocument,
  PublishOptions,
  PublishResult,
  PulledModel,
  ResponseJson,
  TransferOptions,
  VersionDocument,
  ZooClientOptions,
} from "./types.ts";

/** The registry's default address. */
export const DEFAULT_URL = "http://localhost:8000";

/**
 * A client of one registry with one local cache.
 *
 * @example Load a checkpoint (needs a running registry)
 * ```ts ignore
 * import { assertEquals } from "@std/assert";
 * import { ZooClient } from "./zoo_client.ts";
 * const zoo = new ZooClient({ url: "http://localhost:8000" });
 * const model = await zoo.loadModel("zoo/lenet5@1.0.0");
 * assertEquals(model.outputs[0]!.shape, [null, 10]);
 * model.dispose();
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
  readonly #ctx: PullContext & PublishContext;

  /**
   * Creates a client; it touches neither the network nor the disk until used.
   *
   * @param options flags; each falls back to its environment variable, then a default
   * @throws {TypeError} when the URL is not an http(s) URL
   *
   * @example Configure a client
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ZooClient } from "./zoo_client.ts";
   * const zoo = new ZooClient({ url: "http://localhost:8000/", cacheDir: "/tmp/zoo-cache", offline: true });
   * assertEquals([zoo.url, zoo.cacheDir, zoo.offline], ["http://localhost:8000", "/tmp/zoo-cache", true]);
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
    this.cacheDir = options.cacheDir ?? env("ZOO_CACHE") ?? defaultCacheDir();
    this.offline = options.offline ??
      ["1", "true", "yes"].includes((env("ZOO_OFFLINE") ?? "").toLowerCase());
    this.cache = new ZooCache(this.cacheDir, {
      ...(options.retry === undefined ? {} : { retry: options.retry }),
      ...(options.verifyWorkers === undefined ? {} : { verifyWorkers: options.verifyWorkers }),
    });
    this.#ctx = {
      http: new RegistryHttp(this.url, options.token ?? env("ZOO_TOKEN"), options.fetch),
      cache: this.cache,
      offline: this.offline,
      progress: options.progress,
      verifyWorkers: this.cache.verifyWorkers,
    };
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
    const res = await this.#ctx.http.request(action, `/api/models/${r.namespace}/${r.name}`);
    const doc: ResponseJson<"getModel"> = await res.json();
    return doc;
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
   * @example Resolve an exact version from the cache, offline
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ZooClient } from "./zoo_client.ts";
   * const zoo = new ZooClient({ cacheDir: await Deno.makeTempDir(), offline: true });
   * const file = { path: "model.json", digest: `sha256:${"0".repeat(64)}`, size: 2 };
   * await zoo.cache.writeVersion({
   *   namespace: "zoo", name: "lenet5", version: "1.0.0", reference: "zoo/lenet5@1.0.0",
   *   yanked: false, createdAt: "2026-01-01T00:00:00Z", downloads: 0, files: [file],
   *   card: {}, architecture: {}, urls: { self: "", modelJson: "", page: "" },
   * });
   * const doc = await zoo.resolve("zoo/lenet5@1.0.0");
   * assertEquals(doc.files.map((f) => f.path), ["model.json"]);
   * await Deno.remove(zoo.cacheDir, { recursive: true });
   * ```
   */
  async resolve(reference: string): Promise<VersionDocument> {
    return await resolveVersion(this.#ctx, reference);
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
   * import { assertEquals } from "@std/assert";
   * import { ZooClient } from "./zoo_client.ts";
   * const pulled = await new ZooClient().pull("zoo/lenet5@1.0.0");
   * assertEquals(pulled.reference, "zoo/lenet5@1.0.0");
   * assertEquals(pulled.files[0]!.path, "model.json");
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
    await ensureFiles(this.#ctx, doc, paths, options);
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
    return await readFiles(this.#ctx, doc, paths);
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
    return await readFile(this.#ctx, doc, path);
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
   * import { assertEquals } from "@std/assert";
   * import { ZooClient } from "./zoo_client.ts";
   * const model = await new ZooClient().loadModel("zoo/lenet5@1.0.0");
   * const y = model.predict(tf.zeros([1, 28, 28, 1])) as tf.Tensor;
   * assertEquals(y.shape, [1, 10]);
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
   * import { assertEquals } from "@std/assert";
   * import { ZooClient } from "./zoo_client.ts";
   * const zoo = new ZooClient({ url: "http://localhost:8000", token: "zoo_…" });
   * const { reference, url } = await zoo.publish("./out/lenet5", { name: "me/lenet5", version: "1.0.0" });
   * assertEquals([reference, url], ["me/lenet5@1.0.0", "http://localhost:8000/me/lenet5/1.0.0"]);
   * ```
   */
  async publish(
    source: string | LayersModel,
    options: PublishOptions,
  ): Promise<PublishResult> {
    return await publishCheckpoint(this.#ctx, source, options);
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
    await this.#ctx.http.request(action, `/api/models/${r.namespace}/${r.name}/tags/${r.ref}`, {
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
    await this.#ctx.http.request(
      `Cannot yank "${formatRef(r)}"`,
      `/api/models/${r.namespace}/${r.name}/${encodeURIComponent(r.ref)}/yank`,
      { method: "POST" },
    );
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
