/**
 * The embedded backend: metadata in one SQLite file (Deno's built-in
 * `node:sqlite`, WAL mode) and blobs in a content-addressed folder, both under
 * one data directory laid out by `paths.ts`.
 *
 * Several store instances, in one process or in several, may share a data
 * directory: every write to the database is one short synchronous transaction
 * (`BEGIN IMMEDIATE`), uploads lock their temporary file, and blobs appear by
 * an atomic rename.
 *
 * Downloads are counted in memory and written in one transaction about once a
 * second, and on `flush()` and `close()`, so that a read never waits for a
 * write: an instance's reads include its own counts at once, and other
 * instances see them once written.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import {
  DatabaseSync,
  type SQLInputValue,
  type SQLOutputValue,
  type StatementSync,
} from "node:sqlite";
import { compareSemver, isSemver, printable, SEMVER } from "../../sdk/names.ts";
import {
  blobDir,
  blobPath,
  type StorageLayout,
  storageLayout,
  uploadEntryPath,
  uploadPath,
} from "./paths.ts";
import {
  type BlobInfo,
  type BlobStore,
  type BlobWriter,
  ConflictError,
  DigestMismatchError,
  type FileEntry,
  type ListQuery,
  type ModelRecord,
  type NewVersion,
  NotFoundError,
  type Revision,
  type Store,
  type TokenRecord,
  type VersionRecord,
} from "./store.ts";

/** How long a connection waits for another writer before giving up, in ms. */
const BUSY_TIMEOUT_MS = 10_000;
/** How often counted downloads are written to the database, in ms. */
const DOWNLOAD_FLUSH_MS = 1000;
/** Bytes per chunk when streaming a blob out. */
const READ_CHUNK = 256 * 1024;
/** The schema this code writes; `PRAGMA user_version` of the database. */
const SCHEMA_VERSION = 1;
/** Smallest, default and largest page of `listModels`. */
const LIMIT = { min: 1, default: 20, max: 100 } as const;

const SCHEMA = `
CREATE TABLE models (
  id          INTEGER PRIMARY KEY,
  namespace   TEXT NOT NULL,
  name        TEXT NOT NULL,
  full_name   TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL DEFAULT '',
  task        TEXT NOT NULL DEFAULT '',
  labels      TEXT NOT NULL DEFAULT '[]',
  search_text TEXT NOT NULL DEFAULT '',
  updated_at  TEXT NOT NULL,
  downloads   INTEGER NOT NULL DEFAULT 0,
  UNIQUE (namespace, name)
) STRICT;
CREATE INDEX models_by_updated ON models (updated_at DESC, full_name);
CREATE INDEX models_by_downloads ON models (downloads DESC, full_name);
CREATE INDEX models_by_task ON models (task);

CREATE TABLE versions (
  id           INTEGER PRIMARY KEY,
  model_id     INTEGER NOT NULL REFERENCES models (id),
  version      TEXT NOT NULL,
  card         TEXT NOT NULL,
  architecture TEXT NOT NULL,
  published_by TEXT,
  created_at   TEXT NOT NULL,
  yanked       INTEGER NOT NULL DEFAULT 0,
  downloads    INTEGER NOT NULL DEFAULT 0,
  UNIQUE (model_id, version)
) STRICT;

CREATE TABLE files (
  version_id INTEGER NOT NULL REFERENCES versions (id),
  position   INTEGER NOT NULL,
  path       TEXT NOT NULL,
  digest     TEXT NOT NULL,
  size       INTEGER NOT NULL,
  PRIMARY KEY (version_id, position),
  UNIQUE (version_id, path)
) STRICT;
CREATE INDEX files_by_digest ON files (digest);

CREATE TABLE tags (
  model_id   INTEGER NOT NULL REFERENCES models (id),
  tag        TEXT NOT NULL,
  version_id INTEGER NOT NULL REFERENCES versions (id),
  PRIMARY KEY (model_id, tag)
) STRICT;

CREATE TABLE tokens (
  id         TEXT PRIMARY KEY,
  hash       TEXT NOT NULL UNIQUE,
  scopes     TEXT NOT NULL,
  label      TEXT NOT NULL,
  created_at TEXT NOT NULL
) STRICT;

-- A model's downloads are the sum of its versions', kept in step so that
-- sorting by downloads needs no aggregate.
CREATE TRIGGER versions_downloads AFTER UPDATE OF downloads ON versions
BEGIN
  UPDATE models SET downloads = downloads + NEW.downloads - OLD.downloads
  WHERE id = NEW.model_id;
END;
`;

/** Options of {@linkcode openSqliteFsStore}. */
export interface SqliteFsOptions {
  /**
   * How long counted downloads may stay in memory before they are written to
   * the database, in ms. A crash loses at most this much counting.
   *
   * @default {1000}
   */
  downloadFlushMs?: number;
}

/**
 * Opens (creating when needed) the embedded store in a data directory:
 * `zoo.sqlite` for metadata, `blobs/` for content and `uploads/` for uploads
 * in progress. Uploads left behind by a stopped process are removed.
 *
 * @param dataDir the data directory; created when absent
 * @param options how often counted downloads are written
 * @returns the store; call `close()` when done, or lose the downloads it
 *   counted since it last wrote them
 * @throws {Error} when the database was written by a newer schema
 *
 * @example Store a blob and publish a version
 * ```ts
 * import { openSqliteFsStore } from "./sqlite_fs.ts";
 * const dir = await Deno.makeTempDir();
 * const store = await openSqliteFsStore(dir);
 * const w = await store.blobs.writer();
 * await w.write(new TextEncoder().encode("{}"));
 * const blob = await w.commit();
 * await store.publish({
 *   namespace: "zoo",
 *   name: "lenet5",
 *   version: "1.0.0",
 *   files: [{ path: "model.json", ...blob }],
 *   card: { task: "image-classification" },
 *   architecture: {},
 * });
 * console.log((await store.getModel("zoo", "lenet5"))?.tags.latest); // 1.0.0
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openSqliteFsStore(
  dataDir: string,
  options: SqliteFsOptions = {},
): Promise<Store> {
  const flushMs = options.downloadFlushMs ?? DOWNLOAD_FLUSH_MS;
  if (!Number.isFinite(flushMs) || flushMs < 0) {
    throw new RangeError(
      `Invalid downloadFlushMs ${flushMs}: use a number of milliseconds of at least 0`,
    );
  }
  const layout = storageLayout(dataDir);
  await Deno.mkdir(layout.blobs, { recursive: true });
  await Deno.mkdir(layout.uploads, { recursive: true });
  await removeStaleUploads(layout);
  const db = openDatabase(layout.database);
  return new SqliteFsStore(layout, db, flushMs);
}

function openDatabase(path: string): DatabaseSync {
  const db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
  try {
    db.exec("PRAGMA journal_mode = WAL");
    // FULL: a publish the client saw succeed survives a power cut, like its blobs.
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA foreign_keys = ON");
    transaction(db, () => {
      const row = db.prepare("PRAGMA user_version").get();
      const current = Number(row?.user_version ?? 0);
      if (current === 0) {
        db.exec(SCHEMA);
        db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      } else if (current > SCHEMA_VERSION) {
        throw new Error(
          `Cannot open "${path}": it has schema version ${current}, this registry knows up to ${SCHEMA_VERSION}; upgrade the registry`,
        );
      }
    });
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

/**
 * Runs `fn` in one write transaction. `fn` must be synchronous: nothing else
 * may run on this connection between BEGIN and COMMIT.
 */
function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw e;
  }
}

/** SQLITE_BUSY and its extended codes: another connection holds the lock. */
function isBusy(e: unknown): boolean {
  const code = (e as { errcode?: unknown } | null)?.errcode;
  return typeof code === "number" && (code & 0xff) === 5;
}

/** SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_PRIMARYKEY. */
function isUniqueViolation(e: unknown): boolean {
  const code = (e as { errcode?: unknown } | null)?.errcode;
  return code === 2067 || code === 1555;
}

function isPrerelease(version: string): boolean {
  return SEMVER.exec(version)?.[4] !== undefined;
}

function now(): string {
  return new Date().toISOString();
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function parseJson<T>(value: unknown, fallback: T): T {
  return typeof value === "string" ? JSON.parse(value) as T : fallback;
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

class FsBlobStore implements BlobStore {
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

  async cancelAll(): Promise<void> {
    await Promise.all([...this.#writers].map((w) => w.cancel()));
  }
}

function checkRange(digest: string, size: number, start: number, end: number): void {
  if (
    !Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start ||
    end >= size
  ) {
    throw new RangeError(
      `Invalid range ${start}-${end} of blob "${digest}": it has ${size} bytes; ask for 0 <= start <= end < ${size}`,
    );
  }
}

type Row = Record<string, SQLOutputValue>;

interface Cursor {
  /** The sort it belongs to. */
  s: "downloads" | "updated";
  /** The sort key of the last item. */
  k: string | number;
  /** The full name of the last item. */
  n: string;
}

function encodeCursor(c: Cursor): string {
  const bytes = new TextEncoder().encode(JSON.stringify(c));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

function decodeCursor(cursor: string, sort: Cursor["s"]): Cursor {
  const invalid = () =>
    new RangeError(
      `Invalid cursor "${
        printable(cursor)
      }": pass the nextCursor of a previous page with the same sort, or omit it to start over`,
    );
  let c: unknown;
  try {
    const b64 = cursor.replaceAll("-", "+").replaceAll("_", "/");
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    c = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw invalid();
  }
  if (typeof c !== "object" || c === null) throw invalid();
  const { s, k, n } = c as Record<string, unknown>;
  if (s !== sort || typeof n !== "string") throw invalid();
  if (sort === "updated" && typeof k !== "string") throw invalid();
  if (sort === "downloads" && !Number.isSafeInteger(k)) throw invalid();
  return { s: sort, k: k as string | number, n };
}

/**
 * A version this instance counted downloads of. Versions are never deleted,
 * so its id stays valid for the life of the store.
 */
interface CountedVersion {
  id: number;
  /** `namespace/name` of its model. */
  model: string;
  /** Its downloads in the database when last read or written here. */
  stored: number;
  /** The {@linkcode SqliteFsStore} generation `stored` was read in. */
  generation: number;
  /** Downloads counted here and not yet written. */
  unwritten: number;
}

class SqliteFsStore implements Store {
  readonly blobs: FsBlobStore;
  readonly #db: DatabaseSync;
  readonly #path: string;
  readonly #statements = new Map<string, StatementSync>();
  readonly #flushMs: number;
  #closed = false;
  /** Counted versions by `namespace/name@version` and by id. */
  readonly #counted = new Map<string, CountedVersion>();
  readonly #countedById = new Map<number, CountedVersion>();
  /** The counted versions with downloads not yet written. */
  readonly #unwritten = new Set<CountedVersion>();
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped by this instance's publishes, tag moves and yanks. */
  #ownWrites = 0;
  /** Bumped whenever another connection committed: its `stored` counts may be stale. */
  #generation = 0;
  /** `PRAGMA data_version` when last read: it changes when another connection commits. */
  #dataVersion: number;
  /** Downloads counted here per `namespace/name`. */
  readonly #countsByModel = new Map<string, number>();

  constructor(layout: StorageLayout, db: DatabaseSync, flushMs: number) {
    this.blobs = new FsBlobStore(layout);
    this.#db = db;
    this.#path = layout.database;
    this.#flushMs = flushMs;
    this.#dataVersion = this.#readDataVersion();
  }

  #readDataVersion(): number {
    return Number(this.#sql("PRAGMA data_version").get()?.data_version);
  }

  /** Notices commits by other connections, in this process or another. */
  #noticeOtherWriters(): void {
    const v = this.#readDataVersion();
    if (v !== this.#dataVersion) {
      this.#dataVersion = v;
      this.#generation++;
    }
  }

  /** Remembers a version's downloads as just read from the database; returns its unwritten count. */
  #stored(id: number, downloads: number): number {
    const c = this.#countedById.get(id);
    if (c === undefined) return 0;
    c.stored = downloads;
    c.generation = this.#generation;
    return c.unwritten;
  }

  /** A prepared statement, cached by its SQL. */
  #sql(sql: string): StatementSync {
    let s = this.#statements.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  #modelId(namespace: string, name: string): number | null {
    const row = this.#sql("SELECT id FROM models WHERE namespace = ? AND name = ?").get(
      namespace,
      name,
    );
    return row ? Number(row.id) : null;
  }

  #versionRow(namespace: string, name: string, version: string): Row | undefined {
    return this.#sql(
      `SELECT v.id, v.model_id, v.version, v.yanked FROM versions v
       JOIN models m ON m.id = v.model_id
       WHERE m.namespace = ? AND m.name = ? AND v.version = ?`,
    ).get(namespace, name, version);
  }

  #missingVersion(namespace: string, name: string, version: string): NotFoundError {
    const key = `${namespace}/${name}@${version}`;
    return new NotFoundError(
      key,
      `Version "${printable(key)}" does not exist: publish it first or pick an existing version`,
    );
  }

  #latest(modelId: number): string | null {
    const row = this.#sql(
      `SELECT v.version FROM tags t JOIN versions v ON v.id = t.version_id
       WHERE t.model_id = ? AND t.tag = 'latest'`,
    ).get(modelId);
    return row ? String(row.version) : null;
  }

  #setTagRow(modelId: number, tag: string, versionId: number): void {
    this.#sql(
      `INSERT INTO tags (model_id, tag, version_id) VALUES (?, ?, ?)
       ON CONFLICT (model_id, tag) DO UPDATE SET version_id = excluded.version_id`,
    ).run(modelId, tag, versionId);
  }

  #touch(modelId: number, at: string): void {
    this.#sql("UPDATE models SET updated_at = ? WHERE id = ?").run(at, modelId);
  }

  /** Copies description, task and labels from the card `latest` points at. */
  #refreshSummary(modelId: number): void {
    const row = this.#sql(
      `SELECT m.namespace, m.name, v.card FROM models m
       LEFT JOIN tags t ON t.model_id = m.id AND t.tag = 'latest'
       LEFT JOIN versions v ON v.id = t.version_id
       WHERE m.id = ?`,
    ).get(modelId);
    if (!row) return;
    const card = parseJson<Record<string, unknown>>(row.card, {});
    const description = text(card.description);
    const task = text(card.task);
    const labels = Array.isArray(card.labels)
      ? card.labels.filter((l): l is string => typeof l === "string")
      : [];
    const searchText = [`${row.namespace}/${row.name}`, description, task, ...labels]
      .join("\n").toLowerCase();
    this.#sql(
      "UPDATE models SET description = ?, task = ?, labels = ?, search_text = ? WHERE id = ?",
    ).run(description, task, JSON.stringify(labels), searchText, modelId);
  }

  /** The versions of a model, oldest first. */
  #versions(modelId: number): Row[] {
    return this.#sql(
      `SELECT id, version, created_at, yanked, downloads FROM versions
       WHERE model_id = ? ORDER BY id`,
    ).all(modelId);
  }

  #modelRecord(m: Row): ModelRecord {
    const id = Number(m.id);
    const tags: Record<string, string> = {};
    for (
      const t of this.#sql(
        `SELECT t.tag, v.version FROM tags t JOIN versions v ON v.id = t.version_id
         WHERE t.model_id = ? ORDER BY t.tag`,
      ).all(id)
    ) tags[String(t.tag)] = String(t.version);
    let unwritten = 0;
    const versions = this.#versions(id).map((v) => {
      const pending = this.#stored(Number(v.id), Number(v.downloads));
      unwritten += pending;
      return {
        version: String(v.version),
        createdAt: String(v.created_at),
        yanked: v.yanked === 1,
        downloads: Number(v.downloads) + pending,
      };
    });
    return {
      namespace: String(m.namespace),
      name: String(m.name),
      description: String(m.description),
      task: String(m.task),
      labels: parseJson<string[]>(m.labels, []),
      updatedAt: String(m.updated_at),
      downloads: Number(m.downloads) + unwritten,
      versions,
      tags,
    };
  }

  publish(v: NewVersion): Promise<VersionRecord> {
    return this.#write(() => {
      const key = `${v.namespace}/${v.name}@${v.version}`;
      if (!isSemver(v.version)) {
        throw new RangeError(
          `Cannot publish "${printable(key)}": "${
            printable(v.version)
          }" is not a semver version such as "1.2.0"`,
        );
      }
      const paths = new Set<string>();
      for (const f of v.files) {
        if (paths.has(f.path)) {
          throw new RangeError(
            `Cannot publish "${printable(key)}": file "${
              printable(f.path)
            }" is listed twice; list each path once`,
          );
        }
        paths.add(f.path);
      }
      const createdAt = now();
      return transaction(this.#db, () => {
        let modelId = this.#modelId(v.namespace, v.name);
        if (modelId === null) {
          const r = this.#sql(
            "INSERT INTO models (namespace, name, full_name, updated_at) VALUES (?, ?, ?, ?)",
          ).run(v.namespace, v.name, `${v.namespace}/${v.name}`, createdAt);
          modelId = Number(r.lastInsertRowid);
        }
        let versionId: number;
        try {
          versionId = Number(
            this.#sql(
              `INSERT INTO versions (model_id, version, card, architecture, published_by, created_at)
               VALUES (?, ?, ?, ?, ?, ?)`,
            ).run(
              modelId,
              v.version,
              JSON.stringify(v.card),
              JSON.stringify(v.architecture),
              v.publishedBy ?? null,
              createdAt,
            ).lastInsertRowid,
          );
        } catch (e) {
          if (!isUniqueViolation(e)) throw e;
          throw new ConflictError(
            key,
            `Version "${
              printable(key)
            }" exists already: published versions are immutable; publish a new version number`,
          );
        }
        const insertFile = this.#sql(
          "INSERT INTO files (version_id, position, path, digest, size) VALUES (?, ?, ?, ?, ?)",
        );
        v.files.forEach((f, i) => insertFile.run(versionId, i, f.path, f.digest, f.size));

        if (this.#takesLatest(modelId, versionId, v.version)) {
          this.#setTagRow(modelId, "latest", versionId);
        }
        this.#touch(modelId, createdAt);
        this.#refreshSummary(modelId);
        const record: VersionRecord = {
          namespace: v.namespace,
          name: v.name,
          version: v.version,
          files: v.files.map((f) => ({ path: f.path, digest: f.digest, size: f.size })),
          card: v.card,
          architecture: v.architecture,
          createdAt,
          yanked: false,
          downloads: 0,
        };
        if (v.publishedBy !== undefined) record.publishedBy = v.publishedBy;
        return record;
      });
    });
  }

  /**
   * A new version takes `latest` when the model has none yet, or when it is a
   * release above every other non-yanked release.
   */
  #takesLatest(modelId: number, versionId: number, version: string): boolean {
    if (this.#latest(modelId) === null) return true;
    if (isPrerelease(version)) return false;
    return this.#versions(modelId).every((o) =>
      Number(o.id) === versionId || o.yanked === 1 || isPrerelease(String(o.version)) ||
      compareSemver(version, String(o.version)) > 0
    );
  }

  /** The best non-yanked version: the highest release, else the highest prerelease. */
  #bestVersion(modelId: number): Row | undefined {
    const live = this.#versions(modelId).filter((o) => o.yanked !== 1);
    const releases = live.filter((o) => !isPrerelease(String(o.version)));
    const pool = releases.length > 0 ? releases : live;
    return pool.reduce<Row | undefined>(
      (best, o) =>
        best === undefined || compareSemver(String(o.version), String(best.version)) > 0 ? o : best,
      undefined,
    );
  }

  getModel(namespace: string, name: string): Promise<ModelRecord | null> {
    return run(() => {
      const m = this.#sql("SELECT * FROM models WHERE namespace = ? AND name = ?").get(
        namespace,
        name,
      );
      return m ? this.#modelRecord(m) : null;
    });
  }

  getVersion(namespace: string, name: string, version: string): Promise<VersionRecord | null> {
    return run(() => {
      const v = this.#sql(
        `SELECT v.* FROM versions v JOIN models m ON m.id = v.model_id
         WHERE m.namespace = ? AND m.name = ? AND v.version = ?`,
      ).get(namespace, name, version);
      if (!v) return null;
      const files: FileEntry[] = this.#sql(
        "SELECT path, digest, size FROM files WHERE version_id = ? ORDER BY position",
      ).all(Number(v.id)).map((f) => ({
        path: String(f.path),
        digest: String(f.digest),
        size: Number(f.size),
      }));
      const record: VersionRecord = {
        namespace,
        name,
        version: String(v.version),
        files,
        card: parseJson(v.card, {}),
        architecture: parseJson(v.architecture, {}),
        createdAt: String(v.created_at),
        yanked: v.yanked === 1,
        downloads: Number(v.downloads) + this.#stored(Number(v.id), Number(v.downloads)),
      };
      if (typeof v.published_by === "string") record.publishedBy = v.published_by;
      return record;
    });
  }

  setTag(namespace: string, name: string, tag: string, version: string): Promise<void> {
    return this.#write(() =>
      transaction(this.#db, () => {
        const v = this.#versionRow(namespace, name, version);
        if (!v) throw this.#missingVersion(namespace, name, version);
        const modelId = Number(v.model_id);
        this.#setTagRow(modelId, tag, Number(v.id));
        this.#touch(modelId, now());
        if (tag === "latest") this.#refreshSummary(modelId);
      })
    );
  }

  setYanked(namespace: string, name: string, version: string, yanked: boolean): Promise<void> {
    return this.#write(() =>
      transaction(this.#db, () => {
        const v = this.#versionRow(namespace, name, version);
        if (!v) throw this.#missingVersion(namespace, name, version);
        const modelId = Number(v.model_id);
        this.#sql("UPDATE versions SET yanked = ? WHERE id = ?").run(yanked ? 1 : 0, Number(v.id));
        const latest = this.#latest(modelId);
        if (yanked && latest === version) {
          const best = this.#bestVersion(modelId);
          if (best) this.#setTagRow(modelId, "latest", Number(best.id));
        } else if (!yanked && !isPrerelease(version)) {
          const current = latest === null
            ? undefined
            : this.#versions(modelId).find((o) => o.version === latest);
          if (
            current === undefined || current.yanked === 1 ||
            isPrerelease(String(current.version)) ||
            compareSemver(version, String(current.version)) > 0
          ) this.#setTagRow(modelId, "latest", Number(v.id));
        }
        this.#touch(modelId, now());
        this.#refreshSummary(modelId);
      })
    );
  }

  /** Runs a write that may change models or versions, and says so in the next revision. */
  #write<T>(fn: () => T): Promise<T> {
    try {
      return run(fn);
    } finally {
      this.#ownWrites++;
    }
  }

  revision(namespace: string, name: string): Promise<Revision> {
    return run(() => {
      this.#noticeOtherWriters();
      // Both parts only grow, so their sum changes whenever either does.
      const own = this.#countsByModel.get(`${namespace}/${name}`) ?? 0;
      return { metadata: this.#ownWrites + this.#generation, downloads: this.#generation + own };
    });
  }

  countDownload(namespace: string, name: string, version: string): Promise<number> {
    return run(() => {
      if (this.#closed) {
        throw new TypeError(
          `Cannot count a download of "${namespace}/${name}@${version}": the store is closed`,
        );
      }
      // A GET must not wait for a write (an fsync, or another process holding
      // the lock for up to BUSY_TIMEOUT_MS): count in memory, write later.
      const key = `${namespace}/${name}@${version}`;
      let c = this.#counted.get(key);
      if (c === undefined || c.generation !== this.#generation) {
        const row = this.#sql(
          `SELECT v.id, v.downloads FROM versions v JOIN models m ON m.id = v.model_id
           WHERE m.namespace = ? AND m.name = ? AND v.version = ?`,
        ).get(namespace, name, version);
        if (!row) throw this.#missingVersion(namespace, name, version);
        if (c === undefined) {
          c = {
            id: Number(row.id),
            model: `${namespace}/${name}`,
            stored: 0,
            generation: 0,
            unwritten: 0,
          };
          this.#counted.set(key, c);
          this.#countedById.set(c.id, c);
        }
        c.stored = Number(row.downloads);
        c.generation = this.#generation;
      }
      c.unwritten++;
      this.#unwritten.add(c);
      this.#countsByModel.set(c.model, (this.#countsByModel.get(c.model) ?? 0) + 1);
      this.#scheduleFlush();
      return c.stored + c.unwritten;
    });
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#closed) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      try {
        // Never wait for another writer here: that would stall every request.
        this.#writeDownloads(0);
      } catch (e) {
        if (!isBusy(e)) {
          console.error(
            `Cannot write download counts to "${this.#path}": ${
              (e as Error).message
            }; retrying in ${this.#flushMs} ms`,
          );
        }
      }
      if (this.#unwritten.size > 0) this.#scheduleFlush();
    }, this.#flushMs);
  }

  /**
   * Writes the unwritten download counts in one transaction.
   *
   * @throws {Error} SQLITE_BUSY when another writer holds the lock for longer
   *   than `busyTimeoutMs`; the counts stay unwritten
   */
  #writeDownloads(busyTimeoutMs: number): void {
    if (this.#unwritten.size === 0) return;
    const db = this.#db;
    db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    // A counter is not worth an fsync (2.6 ms against 0.14 ms measured in
    // bench/results/registry.md): commit without syncing the WAL; the next
    // publish's FULL commit or a checkpoint makes it durable.
    db.exec("PRAGMA synchronous = NORMAL");
    try {
      const add = this.#sql(
        "UPDATE versions SET downloads = downloads + ? WHERE id = ? RETURNING downloads",
      );
      // A statement, not exec(): only statements tell SQLITE_BUSY by its code.
      this.#sql("BEGIN IMMEDIATE").run();
      const stored: number[] = [];
      try {
        for (const c of this.#unwritten) stored.push(Number(add.get(c.unwritten, c.id)?.downloads));
        db.exec("COMMIT");
      } catch (e) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw e;
      }
      // All of this ran synchronously, so nothing was counted meanwhile.
      [...this.#unwritten].forEach((c, i) => {
        c.stored = stored[i] ?? c.stored + c.unwritten;
        c.generation = this.#generation;
        c.unwritten = 0;
      });
      this.#unwritten.clear();
    } finally {
      db.exec("PRAGMA synchronous = FULL");
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  }

  flush(): Promise<void> {
    return run(() => this.#writeDownloads(BUSY_TIMEOUT_MS));
  }

  listModels(q: ListQuery): Promise<{ items: ModelRecord[]; nextCursor: string | null }> {
    return run(() => {
      // Sorting and cursors use the stored counts: write ours first when the
      // lock is free; if it is not, the page shows them but sorts without them.
      try {
        this.#writeDownloads(0);
      } catch (e) {
        if (!isBusy(e)) throw e;
      }
      const sort = q.sort ?? "updated";
      if (sort !== "updated" && sort !== "downloads") {
        throw new RangeError(
          `Invalid sort "${printable(String(sort))}": use "downloads" or "updated"`,
        );
      }
      const limit = q.limit ?? LIMIT.default;
      if (!Number.isInteger(limit) || limit < LIMIT.min || limit > LIMIT.max) {
        throw new RangeError(
          `Invalid limit ${limit}: use an integer from ${LIMIT.min} to ${LIMIT.max}`,
        );
      }
      const column = sort === "updated" ? "updated_at" : "downloads";
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      if (q.search !== undefined && q.search !== "") {
        where.push("instr(search_text, ?) > 0");
        params.push(q.search.toLowerCase());
      }
      if (q.task !== undefined) {
        where.push("task = ?");
        params.push(q.task);
      }
      if (q.cursor !== undefined) {
        const c = decodeCursor(q.cursor, sort);
        where.push(`(${column} < ? OR (${column} = ? AND full_name > ?))`);
        params.push(c.k, c.k, c.n);
      }
      const rows = this.#sql(
        `SELECT * FROM models ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY ${column} DESC, full_name ASC LIMIT ?`,
      ).all(...params, limit + 1);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const nextCursor = rows.length > limit && last
        ? encodeCursor({
          s: sort,
          k: sort === "updated" ? String(last.updated_at) : Number(last.downloads),
          n: String(last.full_name),
        })
        : null;
      return { items: page.map((m) => this.#modelRecord(m)), nextCursor };
    });
  }

  addToken(t: TokenRecord): Promise<void> {
    return run(() => {
      try {
        this.#sql(
          "INSERT INTO tokens (id, hash, scopes, label, created_at) VALUES (?, ?, ?, ?, ?)",
        ).run(t.id, t.hash, JSON.stringify(t.scopes), t.label, t.createdAt);
      } catch (e) {
        if (!isUniqueViolation(e)) throw e;
        throw new ConflictError(
          t.id,
          `Token "${
            printable(t.id)
          }" or a token with the same secret exists already: generate a new token`,
        );
      }
    });
  }

  findToken(hash: string): Promise<TokenRecord | null> {
    return run(() => {
      const row = this.#sql("SELECT * FROM tokens WHERE hash = ?").get(hash);
      if (!row) return null;
      return {
        id: String(row.id),
        hash: String(row.hash),
        scopes: parseJson<string[]>(row.scopes, []),
        label: String(row.label),
        createdAt: String(row.created_at),
      };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    try {
      await this.blobs.cancelAll();
      this.#writeDownloads(BUSY_TIMEOUT_MS);
    } finally {
      this.#statements.clear();
      this.#db.close();
    }
  }
}

/** Runs synchronous work so that its errors reject the returned promise. */
function run<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e);
  }
}
