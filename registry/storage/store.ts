/**
 * The storage interface of the registry: content-addressed blobs, and models,
 * versions, tags, downloads and tokens that point into them. Every backend
 * (SQLite + blob folder, PostgreSQL + S3) implements {@linkcode Store} and
 * passes the shared conformance suite in `tests/registry/storage/conformance.ts`.
 *
 * Values reaching a store are already validated against `core/names.ts`; a store
 * still never builds a path from anything but a checked digest (see `paths.ts`).
 *
 * @module
 */
import type { FileEntry, ModelRecord } from "../../core/wire.ts";

/** A stored blob. */
export interface BlobInfo {
  /** `sha256:<hex>` of its bytes. */
  digest: string;
  /** Its length in bytes. */
  size: number;
}

/**
 * An open blob upload. Bytes become visible to readers only on
 * {@linkcode BlobWriter.commit}; {@linkcode BlobWriter.cancel} (or any error)
 * leaves nothing behind.
 */
export interface BlobWriter {
  /** Appends bytes; the digest is computed as they arrive. */
  write(chunk: Uint8Array): Promise<void>;
  /** Bytes written so far. */
  readonly size: number;
  /**
   * Finishes the upload: computes the digest, checks it against `expected`
   * when given, makes the blob durable (fsync) and visible (rename).
   * Committing content that already exists is not an error.
   *
   * @throws {DigestMismatchError} when `expected` differs; nothing is stored
   */
  commit(expected?: string): Promise<BlobInfo>;
  /** Abandons the upload and removes its temporary data. */
  cancel(): Promise<void>;
}

/** Content-addressed blob storage. */
export interface BlobStore {
  /** Starts an upload. */
  writer(): Promise<BlobWriter>;
  /**
   * The blob's size, or null when absent.
   *
   * @throws {RangeError} when `digest` is not `sha256:<64 lowercase hex>`
   */
  stat(digest: string): Promise<BlobInfo | null>;
  /**
   * The blob's bytes from `start` to `end` inclusive (whole blob by default),
   * or null when absent. The stream holds an open file or connection until it
   * ends or is cancelled: consume it or cancel it.
   *
   * @throws {RangeError} when `digest` is malformed, or the range is not
   *   `0 <= start <= end < size`
   */
  read(
    digest: string,
    range?: { start: number; end: number },
  ): Promise<ReadableStream<Uint8Array> | null>;
  /**
   * Present when blob GETs are to be redirected (`--blob-redirect`): a URL
   * the client can fetch the blob from directly, for a while (a presigned
   * object storage URL), so the registry does not carry the bytes.
   *
   * @param digest a stored blob's digest
   * @returns the URL
   */
  redirectUrl?(digest: string): Promise<string>;
}

/** One file of a version: a path in the checkpoint and the blob holding it (the wire type). */
export type { FileEntry };

/** What a publisher sends and the server computed, stored as one version. */
export interface NewVersion {
  namespace: string;
  name: string;
  /** A semver string. */
  version: string;
  files: FileEntry[];
  /** The model card (task, labels, dataset, license, preprocessing, metrics, parent, description, …). */
  card: Record<string, unknown>;
  /** Architecture metadata computed by the SDK's analysis. */
  architecture: Record<string, unknown>;
  /** Who published it (token label), for the record. */
  publishedBy?: string;
  /** When it was first published, kept when copying between stores; now by default. */
  createdAt?: string;
  /** The downloads it already had, kept when copying between stores; 0 by default. */
  downloads?: number;
}

/** A stored version. */
export interface VersionRecord extends NewVersion {
  /** ISO 8601 time of publication. */
  createdAt: string;
  /** Hidden from tag and `latest` resolution; still downloadable by exact version. */
  yanked: boolean;
  /** Downloads of this version's model.json. */
  downloads: number;
}

/** A model with the summary of its versions, as the API serves it (the wire type). */
export type { ModelRecord };

/** Query of {@linkcode MetadataStore.listModels}. */
export interface ListQuery {
  /** Case-insensitive substring over namespace/name, description, task and labels. */
  search?: string;
  /** Exact task. */
  task?: string;
  /** `downloads` (most first) or `updated` (newest first); ties broken by name. Default `updated`. */
  sort?: "downloads" | "updated";
  /** 1-100, default 20. */
  limit?: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
}

/** A stored API token (only its hash is kept). */
export interface TokenRecord {
  /** Short public id, shown in listings. */
  id: string;
  /** SHA-256 hex of the secret. */
  hash: string;
  /** `read`, `publish:<namespace>`, `admin`. */
  scopes: string[];
  label: string;
  createdAt: string;
}

/** Models, versions, tags, downloads and tokens. */
export interface MetadataStore {
  /**
   * Records a version and its files in one transaction; the version is visible
   * to readers only once all of it is. Sets the tag `latest` to it when it is
   * the highest non-prerelease, non-yanked version by semver precedence, or
   * when the model has no `latest` yet (its first version, even a prerelease).
   *
   * @throws {ConflictError} when the version exists (even if yanked)
   * @throws {RangeError} when `version` is not semver or a file path is listed twice
   */
  publish(v: NewVersion): Promise<VersionRecord>;
  /** One model, or null. */
  getModel(namespace: string, name: string): Promise<ModelRecord | null>;
  /** One exact version, or null. */
  getVersion(
    namespace: string,
    name: string,
    version: string,
  ): Promise<VersionRecord | null>;
  /**
   * Points `tag` at an existing version.
   *
   * @param at the model's new `updatedAt`: now by default (a copy between
   *   stores keeps the source's)
   * @throws {NotFoundError} when the version is absent
   */
  setTag(
    namespace: string,
    name: string,
    tag: string,
    version: string,
    at?: string,
  ): Promise<void>;
  /**
   * Yanks or un-yanks a version. Yanking the version `latest` points at moves
   * `latest` to the highest remaining non-yanked release (else prerelease);
   * un-yanking a release above `latest` (or when `latest` is yanked or a
   * prerelease) moves `latest` back to it. Other tags never move by themselves.
   *
   * @param at the model's new `updatedAt`: now by default (a copy between
   *   stores keeps the source's)
   * @throws {NotFoundError} when absent
   */
  setYanked(
    namespace: string,
    name: string,
    version: string,
    yanked: boolean,
    at?: string,
  ): Promise<void>;
  /**
   * Counts one download of a version. A backend may keep counts in memory and
   * write them in batches (see {@linkcode Store.flush}); this instance's reads
   * include them at once, other instances' reads once they are written.
   *
   * @returns the version's downloads, this one included
   * @throws {NotFoundError} when absent
   */
  countDownload(
    namespace: string,
    name: string,
    version: string,
  ): Promise<number>;
  /**
   * Where a model's data stands, for caches of what {@linkcode getModel} and
   * {@linkcode getVersion} answer: read it before reading the data, and keep
   * what was read while it stays equal. Asking costs far less than reading.
   *
   * @param namespace the model's namespace
   * @param name the model's name
   * @returns the current {@linkcode Revision}
   */
  revision(namespace: string, name: string): Promise<Revision>;
  /**
   * Searches models; `nextCursor` is null on the last page.
   *
   * @throws {RangeError} when `limit` is outside 1-100, `sort` is unknown, or
   *   `cursor` is not one this store returned for the same sort
   */
  listModels(
    q: ListQuery,
  ): Promise<{ items: ModelRecord[]; nextCursor: string | null }>;
  /** Stores a token. @throws {ConflictError} when its id or hash exists */
  addToken(t: TokenRecord): Promise<void>;
  /** Finds a token by the hash of its secret. */
  findToken(hash: string): Promise<TokenRecord | null>;
  /**
   * Runs `fn` while holding a lock named `name` that every instance sharing
   * this store's data respects, in this process or another (a lock file, a
   * PostgreSQL advisory lock). Seeding runs under it, so that replicas
   * starting together seed once.
   *
   * @param name what the lock guards, e.g. `seed`
   * @param fn the work; the lock is released when it settles
   * @returns what `fn` returns
   */
  exclusive<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/**
 * Counters that change when stored data may have: compare them, never order
 * them. See {@linkcode MetadataStore.revision}.
 */
export interface Revision {
  /**
   * Changes whenever a write may have changed any model or version apart from
   * download counts: a publish, tag move or yank by this instance or by any
   * other one sharing its data.
   */
  metadata: number;
  /** Changes whenever this model's download counts may have changed. */
  downloads: number;
}

/**
 * A blob store as a backend opens it: it holds files or connections until
 * closed.
 */
export interface BlobBackend extends BlobStore {
  /** Cancels the uploads in progress and releases files and connections. */
  close(): Promise<void>;
}

/**
 * A metadata store as a backend opens it: it may hold download counts in
 * memory, and holds files or connections until closed.
 */
export interface MetadataBackend extends MetadataStore {
  /** Writes what this instance holds only in memory (download counts) to durable storage. */
  flush(): Promise<void>;
  /** Writes what is held in memory, then releases files and connections. */
  close(): Promise<void>;
}

/** A complete backend. */
export interface Store extends MetadataStore {
  blobs: BlobStore;
  /**
   * Writes what this instance holds only in memory (download counts) to
   * durable storage, where other instances see it. {@linkcode Store.close}
   * does it too.
   */
  flush(): Promise<void>;
  /** Writes what is held in memory (see {@linkcode Store.flush}), then releases files and connections. */
  close(): Promise<void>;
}

/** A version (or token id) exists already. */
export class ConflictError extends Error {
  /** @param key what conflicts, e.g. `zoo/lenet5@1.0.0` */
  constructor(readonly key: string, message: string) {
    super(message);
    this.name = "ConflictError";
  }
}

/** A model, version or blob is absent. */
export class NotFoundError extends Error {
  /** @param key what is missing */
  constructor(readonly key: string, message: string) {
    super(message);
    this.name = "NotFoundError";
  }
}

/** Uploaded bytes do not hash to the digest the uploader announced. */
export class DigestMismatchError extends Error {
  /**
   * @param expected the announced digest
   * @param actual the digest of the bytes received
   */
  constructor(readonly expected: string, readonly actual: string) {
    super(
      `Uploaded bytes hash to "${actual}", not the expected "${expected}": nothing was stored; re-send the file`,
    );
    this.name = "DigestMismatchError";
  }
}
