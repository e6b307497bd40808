/**
 * The client's data types: the registry's version and model documents as they
 * arrive on the wire, the client's options, and what pulls and publishes
 * return. Nothing here runs; every other client module imports from here, so
 * it imports from none of them.
 *
 * @module
 */

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
export type { ModelDocument } from "../../core/wire.ts";

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
  /**
   * Worker threads that read and verify cached blobs of 8 MiB or more, each
   * on its own core; 0 verifies them on the calling thread. Workers pay off
   * where cores are idle; on a busy 2-core machine they measured slower than
   * hashing on the calling thread. Env `ZOO_VERIFY_WORKERS`.
   * @default {"0 on fewer than 4 cores, else one per core up to 4"}
   */
  verifyWorkers?: number;
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

/**
 * What loading a checkpoint needs from a client: {@linkcode ZooClient}
 * implements it. The `tf.io` bridge takes this rather than the class, so it
 * does not import the client that imports it.
 */
export interface CheckpointReader {
  /** Resolves a reference to its version document. */
  resolve(reference: string): Promise<VersionDocument>;
  /** Reads one file of a version, verified. */
  readFile(doc: VersionDocument, path: string): Promise<Uint8Array>;
  /** Makes sure files of a version are in the cache, reporting progress. */
  ensureFiles(doc: VersionDocument, paths: string[], options?: TransferOptions): Promise<void>;
  /** Reads files of a version into one buffer, in order, each verified. */
  readFiles(doc: VersionDocument, paths: string[]): Promise<Uint8Array<ArrayBuffer>>;
}
